//! The booking pipeline on real Kafka + Redis with the decider in its own
//! process, for fault tests: admitted customers book through the HTTP API
//! (retrying a failed request with the same Idempotency-Key, as the pages
//! do) while a test kills, empties or rolls back something; then every
//! invariant is checked against what customers were told, and against the
//! outcomes topic read by a consumer of its own (the truth), and the Redis
//! projection is checked against that.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
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
    /// The Redis the API and deciders use (the stack's, or a test's own).
    pub redis_url: String,
    pub event: EventConfig,
    pub dir: PathBuf,
    pub group: String,
    pub api: Running,
    pub base: String,
    pub customers: Vec<Customer>,
    /// Every customer's number once all were admitted (index = customer).
    pub places: Vec<u64>,
}

impl Pipeline {
    /// Topics, an in-process API (queue + booking, queue keeper), one
    /// decider process, and `CUSTOMERS` admitted customers.
    pub async fn start() -> (Self, tokio::process::Child) {
        let redis_url = Stack::require().redis_url;
        Self::start_on(redis_url).await
    }

    /// [`Self::start`] on a Redis of the test's own.
    pub async fn start_on(redis_url: String) -> (Self, tokio::process::Child) {
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
                redis: redis_url.clone(),
            },
            token_secret: SECRET.to_vec(),
            web: open_web(),
            keeper: true,
            decider: false,
            holder: unique("api"),
            group: group.clone(),
            topic_prefix: None,
            ownership: None,
            replicate_from: None,
        })
        .await
        .unwrap();
        let base = format!("http://{}", api.addr);
        let mut pipeline = Self {
            stack,
            redis_url,
            event,
            dir,
            group,
            api,
            base,
            customers: Vec::new(),
            places: Vec::new(),
        };
        let decider = pipeline.spawn_decider();
        pipeline.customers =
            admitted_customers(&pipeline.base, pipeline.event.id.as_str(), CUSTOMERS).await;
        pipeline.places = pipeline
            .sequences()
            .await
            .into_iter()
            .map(Option::unwrap)
            .collect();
        (pipeline, decider)
    }

    /// Every customer's number in the queue projection now.
    pub async fn sequences(&self) -> Vec<Option<u64>> {
        use twinkle_workloads::ports::QueueStore;
        let ids: Vec<twinkle_domain::QueueId> = self
            .customers
            .iter()
            .map(|c| c.queue_id.parse().unwrap())
            .collect();
        self.store()
            .await
            .sequences(&self.event.id, &ids)
            .await
            .unwrap()
            .value
    }

    /// After a fault: every customer still has the place they had, and is
    /// still admitted (a status of theirs says admitted, or that the
    /// session they were admitted to has ended, booked — never a place
    /// lost); the queue projection is whole again.
    pub async fn check_places(&self) {
        let event = self.event.id.as_str();
        let statuses: Vec<serde_json::Value> = stream::iter(&self.customers)
            .map(|c| super::status(&self.base, event, &c.ticket))
            .buffered(40)
            .collect()
            .await;
        for (i, s) in statuses.iter().enumerate() {
            assert!(
                s["admitted"] == true || s["sessionEnded"] == true,
                "customer {i} is no longer admitted: {s}"
            );
        }
        assert_eq!(
            self.sequences().await,
            self.places.iter().copied().map(Some).collect::<Vec<_>>(),
            "every customer kept their number"
        );
    }

    /// A `twinkle booking-consumer` process of the pipeline's group (each
    /// with its own lease identity: host + pid).
    pub fn spawn_decider(&self) -> tokio::process::Child {
        super::spawn_role(
            "booking-consumer",
            &self.dir,
            &self.stack.kafka_bootstrap,
            &self.redis_url,
            &self.group,
        )
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
        // Customers watching on the slots WebSocket hear the same outcome
        // (a sample: every 12th).
        let heard: Vec<(usize, String, String)> = stream::iter(outcomes.iter().step_by(12))
            .map(|(i, status)| {
                let request = &accepted.iter().find(|(c, _)| c == i).unwrap().1;
                let ticket = &self.customers[*i].ticket;
                let event = &event;
                async move {
                    let on_socket = watched_outcome(&self.base, event, ticket, request).await;
                    (*i, status.clone(), on_socket)
                }
            })
            .buffer_unordered(20)
            .collect()
            .await;
        for (i, by_get, on_socket) in &heard {
            assert_eq!(by_get, on_socket, "customer {i}: GET and WebSocket agree");
        }

        // The outcomes topic (read by a consumer of its own) holds exactly
        // one decision for every 202 — none twice, none contradicted — the
        // same seats customers were told, no slot or customer beyond its
        // bound; and the Redis projection reflects all of it.
        let report = rebuild::check(
            &self.event,
            &self.outcomes_log(),
            &self.store().await,
            &|_, _| {},
        )
        .await
        .unwrap();
        assert!(report.violations.is_empty(), "{report:#?}");
        assert_eq!(report.decided, CUSTOMERS, "{report:#?}");
        assert_eq!(
            report.records,
            u64::try_from(CUSTOMERS).unwrap(),
            "one outcome record per request: {report:#?}"
        );
        for (slot, in_log) in report.slots.iter().enumerate() {
            assert_eq!(
                in_log.confirmed_in_log,
                confirmed_per_slot.get(&slot).copied().unwrap_or(0),
                "slot s{slot}: the log confirms what customers were told"
            );
        }
        assert!(
            report.ok(),
            "the projection agrees with the log: {report:#?}"
        );
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
        RedisStore::connect(&self.redis_url).await.unwrap()
    }

    /// Waits until the Redis projection reflects at least `watermark`
    /// decisions; returns how long that took.
    pub async fn projection_reaches(&self, watermark: u64, within: Duration) -> Duration {
        use twinkle_workloads::ports::BookingStore;
        let started = tokio::time::Instant::now();
        let store = self.store().await;
        loop {
            if let Ok(read) = store.slot_counts(&self.event.id).await
                && read.watermark.is_some_and(|w| w >= watermark)
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "the projection did not reach watermark {watermark} in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the API has accepted `n` distinct booking requests (its
    /// `twinkle_booking_requests_total{result="accepted"}`), at most 60 s.
    pub async fn accepted_reaches(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let accepted: usize = super::metrics(&self.base)
                .await
                .lines()
                .filter(|l| {
                    l.starts_with("twinkle_booking_requests_total{")
                        && l.contains("result=\"accepted\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .map(|v| v as usize)
                .sum();
            if accepted >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {accepted} of {n} requests accepted in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The projection's watermark now (`None`: empty or unreachable).
    pub async fn projected_watermark(&self) -> Option<u64> {
        use twinkle_workloads::ports::BookingStore;
        let store = RedisStore::connect(&self.redis_url).await.ok()?;
        store.slot_counts(&self.event.id).await.ok()?.watermark
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
    let mut last;
    loop {
        let sent = client()
            .post(format!("{base}/api/events/{event}/bookings"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({ "slot": slot }))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match sent {
            Ok(r) => {
                let code = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                match code {
                    202 => return body["requestId"].as_str().unwrap().to_owned(),
                    503 => last = format!("503 {body}"),
                    other => panic!("booking {key}: unexpected {other} {body}"),
                }
            }
            Err(err) => last = err.to_string(),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "booking {key}: no 202 in 120 s (last answer: {last})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Watches a booking on the slots WebSocket until its outcome arrives.
async fn watched_outcome(base: &str, event: &str, ticket: &str, request: &str) -> String {
    use futures::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let url = format!(
        "{}/ws/events/{event}/slots?ticket={ticket}",
        base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text(
        serde_json::json!({ "watch": request }).to_string(),
    ))
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("booking {request}: nothing on the socket in 60 s"));
        let Some(Ok(Message::Text(text))) = next else {
            panic!("booking {request}: socket ended: {next:?}");
        };
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        match message["type"].as_str() {
            Some("slots") => {}
            Some("booking") => return message["booking"]["status"].as_str().unwrap().to_owned(),
            _ => panic!("booking {request}: unexpected {message}"),
        }
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
