use std::path::Path;

use super::*;
use crate::{crd::TicketEvent, sizing::Window};

fn example() -> TicketEvent {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo-event.yaml"
    ));
    load(path).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn example_plan_a_day_before() {
    let plan = Plan::new(&example(), "popup", ts("2026-12-04T10:00:00+09:00")).unwrap();
    assert_eq!(
        (plan.namespace.as_str(), plan.name.as_str()),
        ("popup", "winter-popup")
    );
    assert_eq!(plan.window(), Window::Idle);
    assert_eq!(plan.window.pre_scale_at, ts("2026-12-05T09:45:00+09:00"));
    assert_eq!(plan.window.next_change, Some(plan.window.pre_scale_at));

    let topics: Vec<_> = plan
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.partitions,
                t.replication_factor,
                t.retention_ms,
            )
        })
        .collect();
    assert_eq!(
        topics,
        [
            ("popup.winter-popup.queue", 14, 3, Some(604_800_000)),
            ("popup.winter-popup.bookings", 14, 3, Some(604_800_000)),
            // The outcomes log and the queue journal are the truth: kept
            // forever; the journal's one partition is the order of places.
            ("popup.winter-popup.outcomes", 14, 3, None),
            ("popup.winter-popup.journal", 1, 3, None),
        ]
    );
    assert_eq!(plan.topics[0].why, "auto: one per consumer replica (14)");

    let workloads: Vec<_> = plan
        .workloads
        .iter()
        .map(|w| {
            (
                w.deployment.as_str(),
                w.peak_replicas,
                w.baseline_replicas,
                w.replicas_now,
            )
        })
        .collect();
    assert_eq!(
        workloads,
        [
            ("winter-popup-queue-api", 14, 2, 2),
            ("winter-popup-booking-api", 14, 2, 2),
            ("winter-popup-queue-consumer", 14, 2, 2),
            ("winter-popup-booking-consumer", 14, 2, 2),
        ]
    );
    assert_eq!(
        plan.workloads[0].why,
        "ceil(50000 rps × 130% / 4970 rps per pod (default)) = 14"
    );

    let dr = plan.dr.as_ref().unwrap();
    assert_eq!(dr.weights_from, WeightsFrom::Initial);
    let weights: Vec<_> = dr
        .records
        .iter()
        .map(|r| (r.set_identifier, r.record_type, r.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("primary", RecordType::Cname, 100),
            ("dr-eks", RecordType::Cname, 0),
            ("dr-ecs", RecordType::Cname, 0),
        ]
    );
}

#[test]
fn replicas_are_up_during_the_window_and_down_after() {
    let event = example();
    let at = |s| Plan::new(&event, "popup", ts(s)).unwrap();
    let pre = at("2026-12-05T09:50:00+09:00");
    assert_eq!(pre.window(), Window::PreScaled);
    assert!(pre.workloads.iter().all(|w| w.replicas_now == 14));
    assert_eq!(at("2026-12-05T10:00:00+09:00").window(), Window::Open);
    let closed = at("2026-12-05T18:00:00+09:00");
    assert_eq!(closed.window(), Window::Closed);
    assert_eq!(closed.window.next_change, None);
    assert!(closed.workloads.iter().all(|w| w.replicas_now == 2));
}

#[test]
fn manifest_namespace_wins_and_override_weights_are_used() {
    let mut event = example();
    event.metadata.namespace = Some("shop".into());
    let dr = event.spec.dr.as_mut().unwrap();
    dr.manual_override = Some(Weights {
        primary: 0,
        dr_eks: 0,
        dr_ecs: 100,
    });
    dr.targets.dr_ecs.endpoint = "203.0.113.7".into();
    let plan = Plan::new(&event, "ignored", ts("2026-12-01T00:00:00Z")).unwrap();
    assert_eq!(plan.topics[0].name, "shop.winter-popup.queue");
    let dr = plan.dr.unwrap();
    assert_eq!(dr.weights_from, WeightsFrom::ManualOverride);
    assert_eq!(dr.records[2].record_type, RecordType::A);
    assert_eq!(
        dr.records.iter().map(|r| r.weight).collect::<Vec<_>>(),
        [0, 0, 100]
    );
}

#[test]
fn no_dr_section_means_no_records() {
    let mut event = example();
    event.spec.dr = None;
    let plan = Plan::new(&event, "popup", ts("2026-12-01T00:00:00Z")).unwrap();
    assert!(plan.dr.is_none());
    assert!(table(&plan).contains("no Route53 records are managed"));
}

#[test]
fn refuses_what_the_api_server_would() {
    let mut event = example();
    event.spec.closes_at = event.spec.opens_at;
    let err = Plan::new(&event, "popup", ts("2026-12-01T00:00:00Z")).unwrap_err();
    assert!(
        err.to_string().contains("closesAt must be after opensAt"),
        "{err}"
    );

    let mut event = example();
    event.spec.traffic.min_replicas = 50;
    let err = Plan::new(&event, "popup", ts("2026-12-01T00:00:00Z")).unwrap_err();
    assert!(
        err.to_string().contains("must not exceed maxReplicas"),
        "{err}"
    );
}

#[test]
fn table_shows_topics_replicas_and_weights() {
    let plan = Plan::new(&example(), "popup", ts("2026-12-04T10:00:00+09:00")).unwrap();
    let text = table(&plan);
    for needle in [
        "TicketEvent popup/winter-popup",
        "popup.winter-popup.bookings  14",
        "winter-popup-booking-consumer  14",
        "Sizing:  ceil(50000 rps × 130% / 4970 rps per pod) = 14 pods",
        "default per-pod rate 4970 rps = 7100 requests per core-second",
        "× 1 core requested × 70% HPA CPU target",
        "primary  CNAME  seoul-ingress.twinkle.example",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn json_uses_camel_case() {
    let plan = Plan::new(&example(), "popup", ts("2026-12-04T10:00:00+09:00")).unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["window"], "Idle");
    assert_eq!(json["nextChange"], "2026-12-05T00:45:00Z");
    assert_eq!(json["sizing"]["perPodRps"], 4970);
    assert_eq!(json["topics"][0]["replicationFactor"], 3);
    assert_eq!(json["workloads"][3]["workload"], "booking-consumer");
    assert_eq!(json["workloads"][3]["reason"], "forecast");
    assert_eq!(json["dr"]["records"][0]["recordType"], "CNAME");
}

#[test]
fn wrong_kind_is_named() {
    let err = manifest::parse(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        Path::new("d.yaml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "d.yaml is a Deployment (apps/v1), expected TicketEvent (ticket.twinkle.dev/v1alpha1)"
    );
}
