//! The booking pipeline on real Kafka + Redis with the decider in its own
//! process, for fault tests: admitted customers book through the HTTP API
//! (retrying a failed request with the same Idempotency-Key, as the pages
//! do) while a test kills or restarts something; then every invariant is
//! checked against the API, the store and the outcomes topic.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, stream};
use twinkle_domain::EventConfig;
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::{
        kafka::{self, KafkaLog, Topics},
        redis_store::RedisStore,
    },
    ports::BookingOutcome,
    rebuild,
    runtime::{self, Backends, RunOptions, Running},
};

use super::{Customer, SECRET, admitted_customers, client, open_web};

/// Seats per slot, slots, customers: every customer books once, round-robin
/// over the slots, so exactly `SLOTS × CAPACITY` are confirmed.
pub const SLOTS: usize = 3;
pub const CAPACITY: u32 = 200;
pub const CUSTOMERS: usize = 1200;

pub struct Pipeline {
    pub stack: Stack,
    pub event: EventConfig,
    pub dir: PathBuf,
    pub group: String,
    pub api: Running,
    pub base: String,
    pub customers: Vec<Customer>,
}

impl Pipeline {
    /// Topics, an in-process API (queue + booking, admission loop), one
    /// decider process, and `CUSTOMERS` admitted customers.
    pub async fn start() -> (Self, tokio::process::Child) {
        let stack = Stack::require();
        let mut event = super::event(
            u32::try_from(CUSTOMERS).unwrap(),
            u32::try_from(CUSTOMERS).unwrap(),
        );
        event.slots = (0..SLOTS)
            .map(|i| twinkle_domain::Slot {
                id: format!("s{i}").parse().unwrap(),
                label: format!("slot {i}"),
                capacity: CAPACITY,
            })
            .collect();
        // Faults take tens of seconds: nobody is abandoned meanwhile.
        event.queue.heartbeat_timeout = Duration::from_secs(600);
        super::create_topics(&stack, &event, 3).await;
        let dir = std::env::temp_dir().join(unique("pipeline"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
        std::fs::write(dir.join("secret"), SECRET).unwrap();
        let group = unique("group");
        let api = runtime::start(RunOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            events: vec![event.clone()],
            backends: Backends::Real {
                kafka: stack.kafka_bootstrap.clone(),
                redis: stack.redis_url.clone(),
            },
            token_secret: SECRET.to_vec(),
            web: open_web(),
            assigner: true,
            decider: false,
            admission: true,
            holder: unique("api"),
            group: group.clone(),
            topic_prefix: None,
        })
        .await
        .unwrap();
        let base = format!("http://{}", api.addr);
        let mut pipeline = Self {
            stack,
            event,
            dir,
            group,
            api,
            base,
            customers: Vec::new(),
        };
        let decider = pipeline.spawn_decider();
        pipeline.customers =
            admitted_customers(&pipeline.base, pipeline.event.id.as_str(), CUSTOMERS).await;
        (pipeline, decider)
    }

    /// A `twinkle booking-consumer` process of the pipeline's group.
    pub fn spawn_decider(&self) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle"))
            .args(["booking-consumer", "--listen", "127.0.0.1:0"])
            .arg("--event")
            .arg(self.dir.join("event.json"))
            .arg("--token-secret-file")
            .arg(self.dir.join("secret"))
            .args([
                "--kafka",
                &self.stack.kafka_bootstrap,
                "--redis",
                &self.stack.redis_url,
                "--group",
                &self.group,
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// Every customer books once (slot by index), retrying with the same
    /// Idempotency-Key until a 202; `fault` runs once `trigger` requests
    /// have been accepted. Returns (customer index, request id) per 202.
    pub async fn book_all<F, Fut>(&self, trigger: usize, fault: F) -> Vec<(usize, String)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let accepted_so_far = Arc::new(AtomicUsize::new(0));
        let event = self.event.id.to_string();
        let booking = stream::iter(self.customers.iter().enumerate())
            .map(|(i, c)| {
                let (base, event, counter) = (&self.base, &event, accepted_so_far.clone());
                async move {
                    let slot = format!("s{}", i % SLOTS);
                    let key = format!("book-{i}");
                    let request = book_until_accepted(base, event, &c.token, &slot, &key).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    (i, request)
                }
            })
            .buffer_unordered(40)
            .collect::<Vec<_>>();
        let injected = async {
            while accepted_so_far.load(Ordering::SeqCst) < trigger {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            fault().await;
        };
        let (accepted, ()) = tokio::join!(booking, injected);
        accepted
    }

    /// Waits for every accepted request's final outcome and checks the
    /// invariants: one final outcome each, no oversell, nobody twice, the
    /// outcomes topic agrees, the store agrees with the topic.
    pub async fn check_invariants(&self, accepted: &[(usize, String)]) {
        assert_eq!(accepted.len(), CUSTOMERS, "every customer got a 202");
        let event = self.event.id.to_string();
        let outcomes: Vec<(usize, String)> = stream::iter(accepted)
            .map(|(i, request)| {
                let (base, event, token) = (&self.base, &event, &self.customers[*i].token);
                async move { (*i, final_outcome(base, event, token, request).await) }
            })
            .buffer_unordered(40)
            .collect()
            .await;
        let mut confirmed_per_slot: HashMap<usize, u32> = HashMap::new();
        let mut confirmed_customers = HashSet::new();
        for (i, status) in &outcomes {
            match status.as_str() {
                "confirmed" => {
                    *confirmed_per_slot.entry(i % SLOTS).or_default() += 1;
                    assert!(
                        confirmed_customers.insert(*i),
                        "customer {i} confirmed twice"
                    );
                }
                "sold_out" => {}
                other => panic!("customer {i}: unexpected outcome {other}"),
            }
        }
        for slot in 0..SLOTS {
            assert_eq!(
                confirmed_per_slot.get(&slot).copied().unwrap_or(0),
                CAPACITY,
                "slot s{slot}: every seat sold exactly once ({confirmed_per_slot:?})"
            );
        }

        // The outcomes topic holds a decision for every 202, contradicting
        // none, and the Redis inventory agrees with it.
        let report = rebuild::check(
            &self.event,
            &self.outcomes_log(),
            &self.store().await,
            &|_, _| {},
        )
        .await
        .unwrap();
        assert!(report.ok(), "{report:#?}");
        assert_eq!(report.decided, CUSTOMERS, "{report:#?}");
        let total: u32 = report.slots.iter().map(|s| s.confirmed_in_log).sum();
        assert_eq!(total, CAPACITY * u32::try_from(SLOTS).unwrap());
        eprintln!(
            "{} outcome records for {} requests ({} repeats from redelivery)",
            report.records, report.decided, report.repeats
        );
    }

    pub fn outcomes_log(&self) -> KafkaLog<BookingOutcome> {
        KafkaLog::new(
            kafka::producer(&self.stack.kafka_bootstrap).unwrap(),
            &self.stack.kafka_bootstrap,
            Topics::for_event(&self.event.id).outcomes,
        )
    }

    pub async fn store(&self) -> RedisStore {
        RedisStore::connect(&self.stack.redis_url).await.unwrap()
    }
}

/// POSTs until a 202, retrying failures (503, connection errors) with the
/// same Idempotency-Key — what the pages do.
async fn book_until_accepted(
    base: &str,
    event: &str,
    token: &str,
    slot: &str,
    key: &str,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let sent = client()
            .post(format!("{base}/api/events/{event}/bookings"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({ "slot": slot }))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        if let Ok(r) = sent {
            let code = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            match code {
                202 => return body["requestId"].as_str().unwrap().to_owned(),
                503 => {}
                other => panic!("booking {key}: unexpected {other} {body}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "booking {key}: no 202 in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls a booking until final, riding out 503s while a server restarts.
async fn final_outcome(base: &str, event: &str, token: &str, request: &str) -> String {
    let url = format!("{base}/api/events/{event}/bookings/{request}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client().get(&url).bearer_auth(token).send().await {
            let code = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            match (code, body["status"].as_str()) {
                (200, Some("pending")) | (503, _) => {}
                (200, Some(status)) => return status.to_owned(),
                other => panic!("booking {request}: unexpected {other:?} {body}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "booking {request}: no outcome in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
