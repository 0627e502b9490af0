//! The booking API end to end, in-process, on the embedded backends and on
//! real Kafka + Redis alike: HTTP → bookings log → decider → store →
//! outcomes log → GET / WebSocket.

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, time::Duration};

use futures::{SinkExt, StreamExt, stream};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use twinkle_domain::{
    EventConfig, QueueId, Slot,
    tokens::{TokenKeys, TokenKind},
};

mod support;
use support::{Customer, Kind, admitted_customers, book, client, open_web, outcome, status};

fn base(running: &twinkle_workloads::runtime::Running) -> String {
    format!("http://{}", running.addr)
}

/// An open event admitting `n` customers at once, with the given slots.
fn event_with(n: u32, slots: &[(&str, u32)]) -> EventConfig {
    let mut e = support::event(n, n);
    // Admitting thousands takes longer than the demo's 30 s heartbeat
    // timeout on a loaded machine, and these customers send no heartbeats.
    e.queue.heartbeat_timeout = Duration::from_secs(600);
    e.slots = slots
        .iter()
        .map(|(id, capacity)| Slot {
            id: id.parse().unwrap(),
            label: format!("slot {id}"),
            capacity: *capacity,
        })
        .collect();
    e
}

/// 2,000 admitted customers race for 50 seats: exactly 50 confirmed, the
/// rest sold out, nobody twice.
async fn race_for_the_last_seats(kind: Kind) {
    let event = event_with(2000, &[("hot", 50), ("cold", 10)]);
    let id = event.id.to_string();
    let running = support::start(kind, event, open_web()).await;
    let base = base(&running);
    let customers = admitted_customers(&base, &id, 2000).await;

    let accepted: Vec<(Customer, String)> = stream::iter(customers)
        .map(|c| {
            let (base, id) = (base.clone(), id.clone());
            async move {
                let (code, body) = book(&base, &id, &c.token, "hot", None).await;
                assert_eq!(code, 202, "{body}");
                assert_eq!(body["status"], "pending");
                assert_eq!(body["slot"], "hot");
                (c, body["requestId"].as_str().unwrap().to_owned())
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let outcomes: Vec<(String, String)> = stream::iter(accepted)
        .map(|(c, request)| {
            let (base, id) = (base.clone(), id.clone());
            async move { (c.queue_id, outcome(&base, &id, &c.token, &request).await) }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let confirmed: Vec<&String> = outcomes
        .iter()
        .filter(|(_, s)| s == "confirmed")
        .map(|(c, _)| c)
        .collect();
    let sold_out = outcomes.iter().filter(|(_, s)| s == "sold_out").count();
    assert_eq!(confirmed.len(), 50);
    assert_eq!(sold_out, 1950);
    assert_eq!(confirmed.iter().collect::<HashSet<_>>().len(), 50);

    let slots: Value = support::slots(&base, &id).await;
    assert_eq!(
        slots["slots"][0],
        json!({"id": "hot", "label": "slot hot", "capacity": 50, "remaining": 0, "soldOut": true}),
        "{slots}"
    );
    assert_eq!(slots["slots"][1]["remaining"], 10);
    running.shutdown().await.unwrap();
}

/// Retries with an Idempotency-Key name one request; the key cannot be
/// reused for another slot; only the owner sees a booking.
async fn idempotent_retries_and_ownership(kind: Kind) {
    let event = event_with(10, &[("a", 5), ("b", 5)]);
    let id = event.id.to_string();
    let running = support::start(kind, event, open_web()).await;
    let base = base(&running);
    let mut customers = admitted_customers(&base, &id, 2).await;
    let (alice, bob) = (customers.remove(0), customers.remove(0));

    let (code, first) = book(&base, &id, &alice.token, "a", Some("click-1")).await;
    assert_eq!(code, 202, "{first}");
    let request = first["requestId"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        let (code, again) = book(&base, &id, &alice.token, "a", Some("click-1")).await;
        assert_eq!(code, 202, "{again}");
        assert_eq!(again["requestId"], request.as_str());
    }
    assert_eq!(
        outcome(&base, &id, &alice.token, &request).await,
        "confirmed"
    );
    // A retry after the decision (the session has ended by now) still
    // answers with the same request and its outcome.
    let (code, late) = book(&base, &id, &alice.token, "a", Some("click-1")).await;
    assert_eq!((code, late["status"].as_str()), (202, Some("confirmed")));
    let (code, err) = book(&base, &id, &alice.token, "b", Some("click-1")).await;
    assert_eq!(
        (code, err["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    // One seat taken, once (the pod's seat cache refreshes every tick).
    let seats = || async {
        let slots: Value = support::slots(&base, &id).await;
        slots["slots"][0]["remaining"].as_u64()
    };
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            seats().await == Some(4)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(seats().await, Some(4));

    // Alice booked her one: her session ended, freeing her place.
    let s = status(&base, &id, &alice.ticket).await;
    assert_eq!(s["sessionEnded"], true, "{s}");
    let (code, err) = book(&base, &id, &alice.token, "b", None).await;
    assert_eq!((code, err["code"].as_str()), (410, Some("session_ended")));

    // The booking is Alice's: readable with her token or ticket, not Bob's.
    let url = format!("{base}/api/events/{id}/bookings/{request}");
    let r = client()
        .get(&url)
        .bearer_auth(&alice.ticket)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(&url)
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unknown_booking");
    let r = client()
        .get(format!("{base}/api/events/{id}/bookings/no-such-request"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    running.shutdown().await.unwrap();
}

/// Missing, forged, expired, cross-event and wrong-kind tokens → 401; unknown
/// slot → 404; bad bodies → 400/413; bad Idempotency-Key → 400.
async fn bad_requests_are_refused(kind: Kind) {
    let event = event_with(10, &[("a", 5)]);
    let id = event.id.to_string();
    let running = support::start(kind, event.clone(), open_web()).await;
    let base = base(&running);
    let customer = admitted_customers(&base, &id, 1).await.remove(0);
    let url = format!("{base}/api/events/{id}/bookings");
    let post = |token: Option<&str>, body: &'static str| {
        let mut r = client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.unwrap();
            let code = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (code, body["code"].as_str().unwrap_or_default().to_owned())
        }
    };
    let slot = r#"{"slot":"a"}"#;
    let keys = TokenKeys::from_secret(support::SECRET).unwrap();
    let me: QueueId = customer.queue_id.parse().unwrap();
    let now = Timestamp::now();
    let past = now.checked_sub(Duration::from_secs(120)).unwrap();
    let hour = now.checked_add(Duration::from_secs(3600)).unwrap();
    let expired = keys
        .issue(
            TokenKind::Admission,
            &event.id,
            &me,
            past,
            past.checked_add(Duration::from_secs(60)).unwrap(),
        )
        .unwrap();
    let other_event = keys
        .issue(
            TokenKind::Admission,
            &"elsewhere".parse().unwrap(),
            &me,
            now,
            hour,
        )
        .unwrap();
    let forged = TokenKeys::from_secret(&[9; 32])
        .unwrap()
        .issue(TokenKind::Admission, &event.id, &me, now, hour)
        .unwrap();

    assert_eq!(post(None, slot).await, (401, "missing_token".into()));
    assert_eq!(
        post(Some("garbage"), slot).await,
        (401, "invalid_token".into())
    );
    assert_eq!(
        post(Some(&forged), slot).await,
        (401, "invalid_token".into())
    );
    assert_eq!(
        post(Some(&expired), slot).await,
        (401, "expired_token".into())
    );
    assert_eq!(
        post(Some(&other_event), slot).await,
        (401, "wrong_event".into())
    );
    // A queue ticket is not an admission token.
    assert_eq!(
        post(Some(&customer.ticket), slot).await,
        (401, "invalid_token".into())
    );
    let t = Some(customer.token.as_str());
    assert_eq!(
        post(t, r#"{"slot":"zz"}"#).await,
        (404, "unknown_slot".into())
    );
    assert_eq!(
        post(t, r#"{"slot":"../x"}"#).await,
        (404, "unknown_slot".into())
    );
    assert_eq!(post(t, "{not json").await, (400, "invalid_json".into()));
    assert_eq!(post(t, "").await, (400, "invalid_json".into()));
    assert_eq!(post(t, r#"{"slot":1}"#).await, (400, "invalid_json".into()));
    assert_eq!(
        post(t, r#"{"slot":"a","extra":1}"#).await,
        (400, "invalid_json".into())
    );
    let big = Box::leak(format!(r#"{{"slot":"{}"}}"#, "a".repeat(10_000)).into_boxed_str());
    assert_eq!(post(t, big).await, (413, "payload_too_large".into()));
    let (code, body) = book(&base, &id, &customer.token, "a", Some("has space")).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (400, Some("invalid_idempotency_key"))
    );
    let r = client()
        .post(format!("{base}/api/events/nope/bookings"))
        .bearer_auth(&customer.token)
        .json(&json!({"slot": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Nothing was booked by any of that.
    let slots: Value = support::slots(&base, &id).await;
    assert_eq!(slots["slots"][0]["remaining"], 5);
    running.shutdown().await.unwrap();
}

async fn next_json(
    ws: &mut (impl StreamExt<Item = tokio_tungstenite::tungstenite::Result<Message>> + Unpin),
) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a WebSocket message within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The slots WebSocket pushes seats at connect and on change, and the
/// outcome of a watched booking; someone else's booking is not revealed.
async fn slots_websocket_pushes_seats_and_outcomes(kind: Kind) {
    let event = event_with(10, &[("last", 1), ("other", 3)]);
    let id = event.id.to_string();
    let running = support::start(kind, event, open_web()).await;
    let addr = running.addr;
    let base = base(&running);
    let mut customers = admitted_customers(&base, &id, 2).await;
    let (alice, bob) = (customers.remove(0), customers.remove(0));

    let url = format!("ws://{addr}/ws/events/{id}/slots?ticket={}", bob.ticket);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "slots");
    assert_eq!(first["slots"][0]["remaining"], 1, "{first}");
    assert_eq!(first["slots"][0]["soldOut"], false);

    // Alice takes the last seat; Bob's picker sees it sold out, no reload.
    let (code, body) = book(&base, &id, &alice.token, "last", None).await;
    assert_eq!(code, 202);
    let alices = body["requestId"].as_str().unwrap().to_owned();
    let update = next_json(&mut ws).await;
    assert_eq!(update["type"], "slots");
    assert_eq!(update["slots"][0]["remaining"], 0, "{update}");
    assert_eq!(update["slots"][0]["soldOut"], true);

    // Bob watches his own booking and hears its outcome.
    let (code, body) = book(&base, &id, &bob.token, "last", None).await;
    assert_eq!(code, 202);
    let bobs = body["requestId"].as_str().unwrap();
    ws.send(Message::text(json!({ "watch": bobs }).to_string()))
        .await
        .unwrap();
    let decided = next_json(&mut ws).await;
    assert_eq!(decided["type"], "booking", "{decided}");
    assert_eq!(decided["booking"]["requestId"], bobs);
    assert_eq!(decided["booking"]["status"], "sold_out");
    // Watching Alice's booking reveals nothing; garbage gets an error.
    ws.send(Message::text(json!({ "watch": alices }).to_string()))
        .await
        .unwrap();
    let refused = next_json(&mut ws).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("unknown_booking"))
    );
    ws.send(Message::text("hello")).await.unwrap();
    let refused = next_json(&mut ws).await;
    assert_eq!(refused["code"], "invalid_message");

    // A bad ticket is refused before the upgrade.
    let bad = format!("ws://{addr}/ws/events/{id}/slots?ticket=forged");
    assert!(tokio_tungstenite::connect_async(bad).await.is_err());
    // Draining closes with 1012 ("service restart").
    let shutdown = tokio::spawn(running.shutdown());
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.unwrap().code), 1012);
    shutdown.await.unwrap().unwrap();
}

macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread")] async fn $case() { super::$case(super::Kind::Embedded).await })*
        }
        mod kafka_redis {
            $(#[tokio::test(flavor = "multi_thread")] async fn $case() { super::$case(super::Kind::Real).await })*
        }
    };
}

both!(
    race_for_the_last_seats,
    idempotent_retries_and_ownership,
    bad_requests_are_refused,
    slots_websocket_pushes_seats_and_outcomes,
);
