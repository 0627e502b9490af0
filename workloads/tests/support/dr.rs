//! The operator's side of a DR drill: `dr failover` through the watchdog
//! library, which writes the weights and the ownership record in one batch.

use twinkle_e2e::{route53::Zone, stack::Stack};

/// The `dr.yaml` of the operator's `dr failover`: the zone, and targets
/// nobody probes (a failover command needs no health).
pub fn watchdog_config(zone: &Zone, endpoint: &str) -> twinkle_watchdog::WatchdogConfig {
    let yaml = format!(
        r#"
route53:
  hostedZoneId: {id}
  recordName: {record}
  recordType: A
  ttl: 60
  endpointUrl: {endpoint}
  insyncPollMs: 50
  insyncTimeoutMs: 5000
targets:
  primary: {{ setIdentifier: primary-seoul, values: [192.0.2.10], healthUrl: "http://127.0.0.1:9/healthz" }}
  drEks: {{ setIdentifier: dr-singapore-eks, values: [192.0.2.20], healthUrl: "http://127.0.0.1:9/healthz" }}
  drEcs: {{ setIdentifier: dr-singapore-ecs, values: [192.0.2.30], healthUrl: "http://127.0.0.1:9/healthz" }}
probe: {{ intervalMs: 500, timeoutMs: 300 }}
lease: {{ durationMs: 5000, holderId: drill-operator }}
"#,
        id = zone.id,
        record = zone.record,
    );
    twinkle_watchdog::WatchdogConfig::from_yaml(&yaml).unwrap()
}

/// `dr failover --to drEks`: weights and ownership move to Singapore.
pub async fn fail_over(stack: &Stack, zone: &Zone) -> twinkle_watchdog::ManualOutcome {
    let config = watchdog_config(zone, &stack.route53_endpoint);
    let sdk = twinkle_e2e::route53::sdk_config(&stack.route53_endpoint).await;
    let clients = twinkle_watchdog::Clients::from_sdk_config(&sdk, &config).unwrap();
    twinkle_watchdog::manual_command(
        &config,
        &clients,
        twinkle_dr::Command::FailoverTo {
            target: twinkle_dr::Target::DrEks,
        },
    )
    .await
    .unwrap()
}
