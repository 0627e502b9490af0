//! The human-readable form of a [`Plan`] (the default `-o table`).

use std::fmt::Write as _;

use super::{Plan, RecordType, WeightsFrom};
use crate::sizing::{self, PerPodSource};

/// Columns separated by two spaces, each as wide as its widest cell.
fn columns(out: &mut String, rows: &[Vec<String>]) {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|row| row.get(i))
            .map(|cell| cell.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len)).map(width).collect();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn row<const N: usize>(cells: [&dyn std::fmt::Display; N]) -> Vec<String> {
    cells.iter().map(ToString::to_string).collect()
}

/// Renders the plan as text tables.
pub fn table(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "TicketEvent {}/{}: {:?}",
        plan.namespace, plan.name, plan.title
    );
    let _ = writeln!(
        out,
        "Sale:    opens {}, closes {}",
        plan.opens_at, plan.closes_at
    );
    let next = plan.window.next_change.map_or_else(
        || "no further change".to_owned(),
        |t| format!("next change {t}"),
    );
    let _ = writeln!(
        out,
        "Window:  {:?} at {}; {next}; replicas go up at {}",
        plan.window.window, plan.at, plan.window.pre_scale_at
    );
    let _ = writeln!(
        out,
        "Sizing:  ceil({} rps × {}% / {} rps per pod) = {} pods, bounds [{}, {}]",
        plan.expected_peak_rps,
        100 + u64::from(plan.headroom_percent),
        plan.sizing.per_pod_rps,
        plan.sizing.forecast,
        plan.min_replicas,
        plan.max_replicas,
    );
    if plan.sizing.per_pod_source == PerPodSource::Default {
        let _ = writeln!(
            out,
            "         {}",
            sizing::capacity::default_rate_explained()
        );
    }

    out.push('\n');
    let mut rows = vec![row([
        &"TOPIC",
        &"PARTITIONS",
        &"RF",
        &"RETENTION",
        &"ON DELETE",
        &"WHY",
    ])];
    for t in &plan.topics {
        rows.push(row([
            &t.name,
            &t.partitions,
            &t.replication_factor,
            &t.retention,
            &format!("{:?}", t.deletion_policy),
            &t.why,
        ]));
    }
    columns(&mut out, &rows);

    out.push('\n');
    let mut rows = vec![row([
        &"WORKLOAD",
        &"DEPLOYMENT",
        &"PEAK",
        &"BASELINE",
        &"NOW",
        &"WHY",
    ])];
    for w in &plan.workloads {
        rows.push(row([
            &w.workload.name(),
            &w.deployment,
            &w.peak_replicas,
            &w.baseline_replicas,
            &w.replicas_now,
            &w.why,
        ]));
    }
    columns(&mut out, &rows);

    out.push('\n');
    match &plan.dr {
        None => out.push_str("DNS:     no dr section: no Route53 records are managed\n"),
        Some(dr) => {
            let from = match dr.weights_from {
                WeightsFrom::Initial => "initial weights",
                WeightsFrom::ManualOverride => "weights from manualOverride",
            };
            let _ = writeln!(
                out,
                "DNS:     {} in zone {}, TTL {}s, mode {:?}, failback {:?}, {from}",
                dr.record_name, dr.hosted_zone_id, dr.ttl, dr.mode, dr.failback_policy
            );
            let mut rows = vec![row([
                &"SET ID",
                &"TYPE",
                &"ENDPOINT",
                &"WEIGHT",
                &"HEALTH URL",
            ])];
            for r in &dr.records {
                let kind = match r.record_type {
                    RecordType::A => "A",
                    RecordType::Cname => "CNAME",
                };
                rows.push(row([
                    &r.set_identifier,
                    &kind,
                    &r.endpoint,
                    &r.weight,
                    &r.health_url,
                ]));
            }
            columns(&mut out, &rows);
        }
    }
    out
}
