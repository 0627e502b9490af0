//! The operator's side of a DR drill: `dr failover` through the watchdog
//! library, which writes the weights and the ownership record in one batch.

use std::time::Duration;

use jiff::Timestamp;
use twinkle_domain::EventConfig;
use twinkle_e2e::{
    route53::Zone,
    stack::{Stack, unique},
};
use twinkle_workloads::{
    ports::BookingRequest,
    runtime::{self, Backends, RunOptions, Running},
};

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

/// The processes of one event in a DR pair: each region's roles write
/// only while the ownership record in `zone` names their region. A 4 s
/// ownership lease read every 200 ms keeps a drill short.
pub struct Pair<'a> {
    pub stack: &'a Stack,
    pub zone: &'a Zone,
    /// Holds `event.json` and `secret` (see [`super::role_command`]).
    pub dir: &'a std::path::Path,
    pub group: String,
}

impl Pair<'_> {
    /// `twinkle <role>` (`queue-consumer`, `booking-consumer`) of `region`
    /// (`primary` or `dr`) on that region's Kafka and Redis.
    pub fn spawn(
        &self,
        role: &str,
        region: &str,
        kafka: &str,
        redis: &str,
    ) -> tokio::process::Child {
        let owner_record = format!("_twinkle-dr-owner.{}", self.zone.record);
        super::role_command(role, self.dir, kafka, redis, &self.group)
            .args(["--sell-region", region, "--owner-zone-id", &self.zone.id])
            .args(["--owner-record", &owner_record])
            .args(["--owner-lease-ms", "4000", "--owner-poll-ms", "200"])
            .env("TWINKLE_ROUTE53_ENDPOINT", &self.stack.route53_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .spawn()
            .unwrap()
    }
}

/// A region's queue and booking API (stateless: in the test's process) on
/// that region's Kafka and Redis; `replicate_from`: the primary's Kafka,
/// to report the replication lag.
pub async fn region_api(
    event: &EventConfig,
    kafka: &str,
    redis: &str,
    replicate_from: Option<String>,
) -> (Running, String) {
    let api = runtime::start(RunOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        events: vec![event.clone()],
        backends: Backends::Real {
            kafka: kafka.to_owned(),
            redis: redis.to_owned(),
        },
        token_secret: super::SECRET.to_vec(),
        web: super::open_web(),
        keeper: false,
        decider: false,
        holder: unique("api"),
        group: unique("api"),
        topic_prefix: None,
        ownership: None,
        replicate_from,
    })
    .await
    .unwrap();
    let base = format!("http://{}", api.addr);
    (api, base)
}

/// Request `i` of customer `i` for the event's first slot.
pub fn request(event: &EventConfig, i: usize) -> BookingRequest {
    BookingRequest {
        event: event.id.clone(),
        request_id: format!("r{i}").parse().unwrap(),
        queue_id: format!("c{i}").parse().unwrap(),
        slot: event.slots[0].id.clone(),
        requested_at: Timestamp::now(),
    }
}

/// Polls `done` every 200 ms; fails with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Brings the shared servers a drill stops back if it fails midway (the
/// rest of the suite needs Seoul's broker and a running MirrorMaker).
pub struct RestoreOnPanic(pub std::path::PathBuf);

impl Drop for RestoreOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (action, server) in [("resume", "mirror"), ("start", "kafka")] {
                let _ = std::process::Command::new(&self.0)
                    .args([action, server])
                    .status();
            }
        }
    }
}
