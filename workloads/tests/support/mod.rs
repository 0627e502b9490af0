//! Starting a workloads process for tests, on embedded or real backends.

#![allow(dead_code, clippy::unwrap_used)]

use std::{num::NonZeroU32, time::Duration};

use jiff::Timestamp;
use twinkle_domain::{EventConfig, OpeningMode};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::kafka::{self, Topics},
    runtime::{self, Backends, RunOptions, Running},
    web::WebConfig,
};

pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Embedded,
    Real,
}

/// An event open now, unique per test.
pub fn event(admission_per_second: u32, max_active: u32) -> EventConfig {
    let mut e = runtime::demo_event(
        Timestamp::now()
            .checked_sub(Duration::from_secs(5))
            .unwrap(),
    );
    e.id = unique("ev").parse().unwrap();
    e.queue.admission_per_second = admission_per_second;
    e.queue.max_active_sessions = max_active;
    e.queue.opening_mode = OpeningMode::Fifo;
    e
}

/// Creates the event's topics (queue, bookings, outcomes, journal).
pub async fn create_topics(stack: &Stack, event: &EventConfig, partitions: i32) {
    kafka::create_topics(
        &stack.kafka_bootstrap,
        &Topics::for_event(&event.id),
        partitions,
    )
    .await
    .unwrap();
}

pub fn backends(kind: Kind) -> Backends {
    match kind {
        Kind::Embedded => Backends::Embedded,
        Kind::Real => {
            let stack = Stack::require();
            Backends::Real {
                kafka: stack.kafka_bootstrap,
                redis: stack.redis_url,
            }
        }
    }
}

/// Starts API + queue keeper + decider in-process; creates the
/// topics first for real backends. Returns once the decider trusts its
/// projection (before that the booking API answers 503, as a fresh sale's
/// does until its decider is up).
pub async fn start(kind: Kind, event: EventConfig, web: WebConfig) -> Running {
    if let Kind::Real = kind {
        create_topics(&Stack::require(), &event, 1).await;
    }
    let id = event.id.to_string();
    let running = runtime::start(RunOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        events: vec![event],
        backends: backends(kind),
        token_secret: SECRET.to_vec(),
        web,
        keeper: true,
        decider: true,
        holder: unique("pod"),
        group: group(&id),
        topic_prefix: None,
        ownership: None,
        replicate_from: None,
    })
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let trusted = format!("twinkle_booking_projection_trusted{{event=\"{id}\"}} 1");
    let queue_whole = format!("twinkle_queue_projection_lag{{event=\"{id}\"}} 0");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics(&base).await;
        if text.lines().any(|l| l == trusted) && text.lines().any(|l| l == queue_whole) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the decider never trusted its projection, or the keeper never made its whole"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running
}

/// A `twinkle <role>` process (`queue-consumer`, `booking-consumer`) on
/// real Kafka + Redis, for the event and secret in `dir` (`event.json`,
/// `secret`), in consumer group `group`; logs at `RUST_LOG=warn` unless
/// `TT_CHILD_LOG` says otherwise. Killed when dropped.
pub fn spawn_role(
    role: &str,
    dir: &std::path::Path,
    kafka: &str,
    redis: &str,
    group: &str,
) -> tokio::process::Child {
    role_command(role, dir, kafka, redis, group)
        .spawn()
        .unwrap()
}

/// The command [`spawn_role`] runs, for a test to add flags to.
pub fn role_command(
    role: &str,
    dir: &std::path::Path,
    kafka: &str,
    redis: &str,
    group: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle"));
    command
        .args([role, "--listen", "127.0.0.1:0"])
        .arg("--event")
        .arg(dir.join("event.json"))
        .arg("--token-secret-file")
        .arg(dir.join("secret"))
        .args(["--kafka", kafka, "--redis", redis, "--group", group])
        .env(
            "RUST_LOG",
            std::env::var("TT_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// The consumer-group prefix every process of one test event shares (as
/// the pods of one TicketEvent do): their keepers and deciders fence each
/// other.
pub fn group(event: &str) -> String {
    format!("group-{event}")
}

/// Generous rate limits so tests that enter many customers from one IP pass.
pub fn open_web() -> WebConfig {
    WebConfig {
        cookie_secure: false,
        enter_per_second: NonZeroU32::new(100_000).unwrap(),
        enter_burst: NonZeroU32::new(100_000).unwrap(),
        trust_forwarded_for: false,
    }
}

/// The process's `/metrics` text.
pub async fn metrics(base: &str) -> String {
    client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// Enters the queue; returns (queue id, ticket).
pub async fn enter(base: &str, event: &str) -> (String, String) {
    let r = client()
        .post(format!("{base}/api/events/{event}/queue"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    (
        body["queueId"].as_str().unwrap().to_owned(),
        body["ticket"].as_str().unwrap().to_owned(),
    )
}

/// A queue status; rides out 503s (a fresh sale before its keeper's first
/// projection, or one being restored), for at most 60 s.
pub async fn status(base: &str, event: &str, ticket: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = client()
            .get(format!("{base}/api/events/{event}/queue/status"))
            .bearer_auth(ticket)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        match code {
            200 => return r.json().await.unwrap(),
            503 if tokio::time::Instant::now() < deadline => {}
            other => panic!("status: {other} {:?}", r.text().await),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many of these customers have been admitted so far (including those
/// whose session has since ended): the serving counter as they see it.
pub async fn ever_admitted(base: &str, event: &str, tickets: &[String]) -> usize {
    let mut n = 0;
    for t in tickets {
        let s = status(base, event, t).await;
        if s["admitted"] == true || s["sessionEnded"] == true {
            n += 1;
        }
    }
    n
}

/// The place of a customer still waiting, read in one request and dated at
/// the middle of it. The last in line's place shrinks by one per admission,
/// so two samples give the admission rate: sharper on a loaded machine than
/// counting many statuses one by one, which smears a sample over a second.
pub async fn place_of(base: &str, event: &str, ticket: &str) -> (u64, std::time::Instant) {
    let start = std::time::Instant::now();
    let s = status(base, event, ticket).await;
    let place = s["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("{ticket} is no longer waiting: {s}"));
    (place, start + start.elapsed() / 2)
}

/// Admissions per second between two `place_of` samples of one customer.
#[allow(clippy::cast_precision_loss)]
pub fn admission_rate(a: (u64, std::time::Instant), b: (u64, std::time::Instant)) -> f64 {
    a.0.saturating_sub(b.0) as f64 / (b.1 - a.1).as_secs_f64()
}

/// Polls until `check` holds or the timeout passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// An admitted customer: queue id, queue ticket, admission token.
#[derive(Debug, Clone)]
pub struct Customer {
    pub queue_id: String,
    pub ticket: String,
    pub token: String,
}

/// Enters `n` customers and waits until every one is admitted (the event
/// must admit fast enough: admission rate and cap ≥ n).
pub async fn admitted_customers(base: &str, event: &str, n: usize) -> Vec<Customer> {
    use futures::{StreamExt, stream};
    let entered: Vec<(String, String)> = stream::iter(0..n)
        .map(|_| enter(base, event))
        .buffer_unordered(64)
        .collect()
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut customers = Vec::with_capacity(n);
    let mut waiting = entered;
    while !waiting.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} customers still not admitted",
            waiting.len()
        );
        let statuses: Vec<((String, String), serde_json::Value)> = stream::iter(waiting)
            .map(|(id, ticket)| async move {
                let s = status(base, event, &ticket).await;
                ((id, ticket), s)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        waiting = Vec::new();
        for ((queue_id, ticket), s) in statuses {
            match s["token"].as_str() {
                Some(token) => customers.push(Customer {
                    queue_id,
                    ticket,
                    token: token.to_owned(),
                }),
                None => waiting.push((queue_id, ticket)),
            }
        }
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    customers
}

/// Books `slot`; returns the response status and JSON body.
pub async fn book(
    base: &str,
    event: &str,
    token: &str,
    slot: &str,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = client()
        .post(format!("{base}/api/events/{event}/bookings"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "slot": slot }));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// `GET /slots`: every slot's seats as the API shows them.
pub async fn slots(base: &str, event: &str) -> serde_json::Value {
    client()
        .get(format!("{base}/api/events/{event}/slots"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls a booking until it is final; returns its status.
pub async fn outcome(base: &str, event: &str, token: &str, request_id: &str) -> String {
    let url = format!("{base}/api/events/{event}/bookings/{request_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = client().get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET booking: {:?}", r.text().await);
        let body: serde_json::Value = r.json().await.unwrap();
        let status = body["status"].as_str().unwrap().to_owned();
        if status != "pending" {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "booking {request_id} still pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
pub mod dr;
pub mod pipeline;
