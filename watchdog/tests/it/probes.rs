//! The second health signal (Route53 health-check status, canned Success
//! on moto), health checks attached to the records, and webhook retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType, RrType};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use twinkle_dr::Weights;
use twinkle_e2e::stack::unique;
use twinkle_watchdog::config::SecretUrl;
use twinkle_watchdog::probe::probe_all;
use twinkle_watchdog::route53::Route53;
use twinkle_watchdog::webhook;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route53_health_checks_are_read_and_attached() {
    let h = Harness::new(true, false, true).await;
    let check = h
        .moto
        .create_health_check()
        .caller_reference(unique("hc"))
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Http)
                .ip_address("192.0.2.10")
                .port(80)
                .resource_path("/healthz")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let check_id = check.health_check().unwrap().id().to_owned();
    let mut config = h.config("probe");
    config.targets.primary.health_check_id = Some(check_id.clone());
    config.probe.route53_health_checks = true;
    let clients = h.clients(&config);

    let round = probe_all(&config, &clients.probe, &clients.route53).await;
    assert!(round.results.primary.healthy);
    assert_eq!(round.results.primary.route53_healthy, Some(true));
    assert_eq!(
        round.results.dr_eks.route53_healthy, None,
        "no check configured"
    );
    assert!(!round.results.dr_eks.healthy);
    assert_eq!(round.results.dr_eks.status, Some(503));
    assert_eq!(h.front.calls().get("GetHealthCheckStatus"), Some(&1));

    // Probes of a stopped target fail fast with a reason, without the URL.
    h.targets.dr_ecs.stop();
    let round = probe_all(&config, &clients.probe, &clients.route53).await;
    let error = round.results.dr_ecs.error.clone().unwrap();
    assert!(error.starts_with("connect"), "{error}");
    assert!(!error.contains("127.0.0.1"), "{error}");

    // The UPSERT attaches the health check to the primary's record.
    let r53 = Route53::new(&config, clients.route53.clone(), Default::default());
    r53.change(
        r53.weight_changes(Weights::new(100, 0, 0)).unwrap(),
        "attach",
    )
    .await
    .unwrap();
    let sets = h
        .moto
        .list_resource_record_sets()
        .hosted_zone_id(&h.zone.id)
        .send()
        .await
        .unwrap();
    let attached: Vec<_> = sets
        .resource_record_sets()
        .iter()
        .filter(|s| s.r#type() == &RrType::A)
        .map(|s| {
            (
                s.set_identifier().unwrap().to_owned(),
                s.health_check_id().map(str::to_owned),
            )
        })
        .collect();
    assert!(
        attached.contains(&(SET_IDS[0].to_owned(), Some(check_id))),
        "{attached:?}"
    );
    assert!(
        attached.contains(&(SET_IDS[1].to_owned(), None)),
        "{attached:?}"
    );
    let read = r53.read_weights().await.unwrap();
    assert_eq!(read.weights, Some(Weights::new(100, 0, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_retry_server_errors_but_not_client_errors() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new()
        .route(
            "/flaky",
            post(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .route("/gone", post(|| async { StatusCode::NOT_FOUND }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let body = serde_json::json!({"text": "DR test"});

    let flaky = SecretUrl::try_from(format!("{base}/flaky")).unwrap();
    webhook::post(&client, &flaky, &body, 3).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    let gone = SecretUrl::try_from(format!("{base}/gone")).unwrap();
    let error = webhook::post(&client, &gone, &body, 3).await.unwrap_err();
    assert_eq!(error, "HTTP 404");
}
