//! The queue's places and admissions survive any loss of Redis, because the
//! queue keeper's journal (Kafka) is their truth: with the queue API in
//! this process and the keeper in a `twinkle queue-consumer` process of its
//! own (real Kafka + Redis), 1,500 customers enter over HTTP and are being
//! admitted when Redis is emptied (`FLUSHALL`); later the keeper is killed
//! with `kill -9`, Redis emptied again while no keeper runs, and a new
//! keeper started. After each: every customer has the number they had,
//! everyone admitted before is still admitted (their token's session
//! answers heartbeats), the serving counter as customers see it never went
//! back, the active-session cap held, and admission goes on.
//! Its own test binary: it empties the shared Redis.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, stream};
use support::{client, enter};
use twinkle_domain::{EventConfig, QueueId};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::redis_store::RedisStore,
    ports::QueueStore,
    runtime::{self, Backends, RunOptions},
};

const CUSTOMERS: usize = 1500;
const ADMIT_PER_SECOND: u32 = 200;
const MAX_ACTIVE: u32 = 600;

fn spawn_keeper(stack: &Stack, dir: &std::path::Path, group: &str) -> tokio::process::Child {
    support::spawn_role(
        "queue-consumer",
        dir,
        &stack.kafka_bootstrap,
        &stack.redis_url,
        group,
    )
}

async fn flushall(stack: &Stack) {
    let mut con = redis::Client::open(stack.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
}

/// GET status: `None` while the API answers 503 (being restored).
async fn status(base: &str, event: &str, ticket: &str) -> Option<serde_json::Value> {
    let r = client()
        .get(format!("{base}/api/events/{event}/queue/status"))
        .bearer_auth(ticket)
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => Some(r.json().await.unwrap()),
        503 => None,
        other => panic!("status: unexpected {other} {:?}", r.text().await),
    }
}

/// What one customer has: number, and admission token if admitted.
#[derive(Debug, Clone, PartialEq)]
struct Held {
    sequence: u64,
    admitted: bool,
    /// The status it was read from (for failure messages).
    status: serde_json::Value,
}

struct Sale {
    stack: Stack,
    event: EventConfig,
    base: String,
    tickets: Vec<(QueueId, String)>,
    store: RedisStore,
}

impl Sale {
    fn id(&self) -> &str {
        self.event.id.as_str()
    }

    /// Everyone's number (from Redis) and admission (as their status says),
    /// once the projection answers for all of them.
    async fn held(&self) -> Vec<Held> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            // In ticket order (`buffered`): zipped with the numbers below.
            let statuses: Vec<Option<serde_json::Value>> = stream::iter(&self.tickets)
                .map(|(_, t)| status(&self.base, self.id(), t))
                .buffered(50)
                .collect()
                .await;
            let ids: Vec<QueueId> = self.tickets.iter().map(|(id, _)| id.clone()).collect();
            let seqs = self
                .store
                .sequences(&self.event.id, &ids)
                .await
                .unwrap()
                .value;
            if statuses.iter().all(Option::is_some) && seqs.iter().all(Option::is_some) {
                return statuses
                    .into_iter()
                    .zip(seqs)
                    .map(|(s, seq)| {
                        let status = s.unwrap();
                        Held {
                            sequence: seq.unwrap(),
                            admitted: status["admitted"] == true,
                            status,
                        }
                    })
                    .collect();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not every customer has a status and a number after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the queue API answers a status again; returns how long.
    async fn whole_again(&self) -> Duration {
        let started = tokio::time::Instant::now();
        let ticket = &self.tickets[0].1;
        while status(&self.base, self.id(), ticket).await.is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "still 503 after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }

    /// After a fault: the same numbers, and everyone admitted before still
    /// admitted, with a session that answers a heartbeat.
    async fn check_kept(&self, before: &[Held]) {
        let after = self.held().await;
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert_eq!(b.sequence, a.sequence, "customer {i} kept their number");
            if b.admitted && !a.admitted {
                let s = status(&self.base, self.id(), &self.tickets[i].1).await;
                let c = self.store.counters(&self.event.id).await.unwrap();
                let q = self
                    .store
                    .sessions(&self.event.id, std::slice::from_ref(&self.tickets[i].0))
                    .await
                    .unwrap();
                panic!(
                    "customer {i} was admitted and is no longer: before {b:?}, after {a:?}, now {s:?}, {c:?}, {q:?}"
                );
            }
        }
        let admitted: Vec<usize> = (0..before.len()).filter(|i| before[*i].admitted).collect();
        let live = stream::iter(admitted.iter().step_by(10))
            .map(|i| async move {
                let ticket = &self.tickets[*i].1;
                let s = status(&self.base, self.id(), ticket).await.unwrap();
                let token = s["token"].as_str().unwrap().to_owned();
                client()
                    .post(format!(
                        "{}/api/events/{}/session/heartbeat",
                        self.base,
                        self.id()
                    ))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
            .buffer_unordered(20)
            .collect::<Vec<u16>>()
            .await;
        assert!(
            live.iter().all(|c| *c == 204),
            "admitted sessions answer heartbeats: {live:?}"
        );
        let counters = self.store.counters(&self.event.id).await.unwrap().value;
        // The cap holds within one admission tick's budget.
        let tick_budget = u64::from(ADMIT_PER_SECOND) / 10 + 1;
        assert!(
            counters.active <= u64::from(MAX_ACTIVE) + tick_budget,
            "active sessions {} within the cap {MAX_ACTIVE}",
            counters.active
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn places_and_admissions_survive_flushall_and_a_killed_keeper() {
    let stack = Stack::require();
    let mut event = support::event(ADMIT_PER_SECOND, MAX_ACTIVE);
    // Faults take seconds: nobody is abandoned meanwhile.
    event.queue.heartbeat_timeout = Duration::from_secs(600);
    support::create_topics(&stack, &event, 3).await;
    let dir = std::env::temp_dir().join(unique("queue-faults"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
    std::fs::write(dir.join("secret"), support::SECRET).unwrap();
    let group = support::group(event.id.as_str());
    let api = runtime::start(RunOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        events: vec![event.clone()],
        backends: Backends::Real {
            kafka: stack.kafka_bootstrap.clone(),
            redis: stack.redis_url.clone(),
        },
        token_secret: support::SECRET.to_vec(),
        web: support::open_web(),
        keeper: false,
        decider: false,
        holder: unique("api"),
        group: group.clone(),
        topic_prefix: None,
        ownership: None,
        replicate_from: None,
    })
    .await
    .unwrap();
    let mut keeper = spawn_keeper(&stack, &dir, &group);
    let base = format!("http://{}", api.addr);
    let id = event.id.to_string();
    let tickets: Vec<(QueueId, String)> = stream::iter(0..CUSTOMERS)
        .map(|_| enter(&base, &id))
        .buffer_unordered(64)
        .map(|(q, t)| (q.parse().unwrap(), t))
        .collect()
        .await;
    let sale = Sale {
        store: RedisStore::connect(&stack.redis_url).await.unwrap(),
        stack,
        event,
        base,
        tickets,
    };

    // The last customer in line watches how many are ahead of them: as
    // they see it, the line only ever moves forward.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (base, id, watching) = (sale.base.clone(), id.clone(), watching.clone());
        let last = sale.tickets.last().unwrap().1.clone();
        tokio::spawn(async move {
            let (mut seen, mut refused) = (Vec::new(), 0);
            while watching.load(Ordering::Relaxed) {
                match status(&base, &id, &last).await {
                    Some(s) => {
                        if let Some(ahead) = s["ahead"].as_u64() {
                            seen.push(ahead);
                        }
                    }
                    None => refused += 1,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (seen, refused)
        })
    };

    // Fault 1: Redis emptied while admission is under way.
    let mid = support::eventually(Duration::from_secs(60), || async {
        let c = sale.store.counters(&sale.event.id).await.unwrap().value;
        c.assigned as usize == CUSTOMERS && c.serving >= 300
    })
    .await;
    assert!(mid, "everyone placed and admission under way");
    let before = sale.held().await;
    let admitted_before = before.iter().filter(|h| h.admitted).count();
    flushall(&sale.stack).await;
    let took = sale.whole_again().await;
    sale.check_kept(&before).await;
    eprintln!(
        "FLUSHALL with {admitted_before} admitted of {CUSTOMERS}: queue whole again {took:?} later"
    );

    // Fault 2: the keeper killed (-9), Redis emptied with no keeper running,
    // a new keeper started: it rebuilds everything from the journal.
    let before = sale.held().await;
    keeper.start_kill().unwrap();
    keeper.wait().await.unwrap();
    flushall(&sale.stack).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        status(&sale.base, &id, &sale.tickets[0].1).await.is_none(),
        "with Redis empty and no keeper, customers are told to retry — not that their place is gone"
    );
    let mut keeper = spawn_keeper(&sale.stack, &dir, &group);
    let took = sale.whole_again().await;
    sale.check_kept(&before).await;
    eprintln!(
        "keeper killed and Redis emptied: queue whole again {took:?} after a new keeper started"
    );

    // Admission goes on: 100 admitted customers leave, and as many more are
    // admitted (the cap was reached; nobody else leaves).
    let serving = sale
        .store
        .counters(&sale.event.id)
        .await
        .unwrap()
        .value
        .serving;
    let leaving: Vec<usize> = (0..CUSTOMERS)
        .filter(|i| before[*i].admitted)
        .take(100)
        .collect();
    for i in &leaving {
        let s = status(&sale.base, &id, &sale.tickets[*i].1).await.unwrap();
        let r = client()
            .delete(format!("{}/api/events/{id}/session", sale.base))
            .bearer_auth(s["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let moved = support::eventually(Duration::from_secs(20), || async {
        sale.store
            .counters(&sale.event.id)
            .await
            .unwrap()
            .value
            .serving
            >= serving + 100
    })
    .await;
    assert!(moved, "admission goes on after the faults");

    watching.store(false, Ordering::Relaxed);
    let (seen, refused) = watcher.await.unwrap();
    assert!(seen.len() > 10, "the watcher saw the line: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[1] <= w[0]),
        "the line never moved back: {seen:?}"
    );
    eprintln!(
        "the last in line: {} statuses, {refused} answered 503 while restoring",
        seen.len()
    );
    keeper.start_kill().unwrap();
    api.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}
