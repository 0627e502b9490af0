//! The queue API end to end over HTTP and WebSocket, on the embedded
//! backends and on real Kafka + Redis (same cases, see `suite!`).

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::{collections::HashSet, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use support::{Kind, admission_rate, client, enter, eventually, open_web, place_of, start, status};
use twinkle_domain::tokens::{TokenKeys, TokenKind};
use twinkle_workloads::web::WebConfig;

fn base(running: &twinkle_workloads::runtime::Running) -> String {
    format!("http://{}", running.addr)
}

/// Customers entering one after another get increasing positions and are
/// admitted strictly in that order.
async fn fifo_admission_follows_queue_order(kind: Kind) {
    let event = support::event(4, 1000);
    let id = event.id.to_string();
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let mut tickets = Vec::new();
    for _ in 0..12 {
        tickets.push(enter(&base, &id).await.1);
    }
    let mut first_admitted_at: Vec<Option<usize>> = vec![None; tickets.len()];
    for poll in 0..60 {
        // Read from the back of the queue to the front: the serving counter
        // only grows, so if FIFO holds, a later customer seen admitted
        // implies every earlier one (read afterwards) is admitted too, and
        // positions read this way strictly increase with entry order.
        let mut admitted = vec![false; tickets.len()];
        let mut positions = vec![None; tickets.len()];
        for (i, t) in tickets.iter().enumerate().rev() {
            let s = status(&base, &id, t).await;
            admitted[i] = s["admitted"].as_bool().unwrap();
            positions[i] = s["position"].as_u64();
        }
        // The admitted are always a prefix of the queue order.
        let prefix = admitted.iter().take_while(|a| **a).count();
        assert!(
            admitted[prefix..].iter().all(|a| !a),
            "poll {poll}: admission out of order: {admitted:?}"
        );
        // Those waiting with a number stand in entry order.
        let waiting: Vec<u64> = positions[prefix..].iter().flatten().copied().collect();
        assert!(
            waiting.windows(2).all(|w| w[0] < w[1]),
            "poll {poll}: positions out of order: {positions:?}"
        );
        for (i, a) in admitted.iter().enumerate() {
            if *a && first_admitted_at[i].is_none() {
                first_admitted_at[i] = Some(poll);
            }
        }
        if prefix == tickets.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        first_admitted_at.iter().all(Option::is_some),
        "everyone is admitted in time: {first_admitted_at:?}"
    );
    running.shutdown().await.unwrap();
}

/// Many customers entering at once each get exactly one place; re-entering
/// with a ticket keeps it.
async fn concurrent_entry_gives_one_place_each(kind: Kind) {
    let event = support::event(1, 1);
    let id = event.id.to_string();
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let entries = futures::future::join_all((0..40).map(|_| enter(&base, &id))).await;
    let ids: HashSet<&str> = entries.iter().map(|(q, _)| q.as_str()).collect();
    assert_eq!(ids.len(), 40);

    // Everyone re-enters three times at once: same place, nothing new queued.
    let (b, i) = (&base, &id);
    let reentries = futures::future::join_all(entries.iter().flat_map(|(qid, ticket)| {
        (0..3).map(move |_| async move {
            let (base, id) = (b, i);
            let r = client()
                .post(format!("{base}/api/events/{id}/queue"))
                .bearer_auth(ticket)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["queueId"], qid.as_str());
            assert_eq!(body["reentered"], true);
        })
    }))
    .await;
    assert_eq!(reentries.len(), 120);

    // Every place is distinct: positions of those waiting + admitted = 40.
    let all_placed = eventually(Duration::from_secs(20), || async {
        let mut positions = Vec::new();
        let mut admitted = 0;
        for (_, ticket) in &entries {
            let s = status(&base, &id, ticket).await;
            if s["admitted"].as_bool().unwrap() || s["sessionEnded"] == true {
                admitted += 1;
            } else if let Some(p) = s["position"].as_u64() {
                positions.push(p);
            }
        }
        let distinct: HashSet<u64> = positions.iter().copied().collect();
        distinct.len() == positions.len() && positions.len() + admitted == 40
    })
    .await;
    assert!(all_placed, "all 40 customers placed exactly once");
    running.shutdown().await.unwrap();
}

/// Admission never exceeds the active-session cap; leaving frees a place at
/// once; abandoned sessions (no heartbeat) are reclaimed.
async fn cap_leave_and_abandonment(kind: Kind) {
    let mut event = support::event(50, 5);
    event.queue.heartbeat_timeout = Duration::from_secs(2);
    let id = event.id.to_string();
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let mut entries = Vec::new();
    for _ in 0..12 {
        entries.push(enter(&base, &id).await.1);
    }
    let admitted_tokens = |want: usize| {
        let entries = entries.clone();
        let base = base.clone();
        let id = id.clone();
        async move {
            let mut tokens = Vec::new();
            for t in &entries {
                let s = status(&base, &id, t).await;
                if let Some(tok) = s["token"].as_str() {
                    tokens.push(tok.to_owned());
                }
            }
            assert!(
                tokens.len() <= 5,
                "cap of 5 live sessions exceeded: {}",
                tokens.len()
            );
            (tokens.len() == want).then_some(tokens)
        }
    };
    let mut live = None;
    for _ in 0..50 {
        live = admitted_tokens(5).await;
        if live.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = live.expect("5 admitted within 5 s");
    // The three who stay keep heartbeating while we look, as a real page
    // does; otherwise a slow machine lets them hit the 2 s abandonment
    // timeout before this check sees the reuse.
    let heartbeat = |tok: String| {
        let (base, id) = (base.clone(), id.clone());
        async move {
            let r = client()
                .post(format!("{base}/api/events/{id}/session/heartbeat"))
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204, "heartbeat of a live session");
        }
    };
    // Stays at the cap (sample for a while).
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = admitted_tokens(5).await;
        for tok in &live[2..] {
            heartbeat(tok.clone()).await;
        }
    }
    // Two leave: two more are admitted within a second or so.
    for tok in &live[..2] {
        let r = client()
            .delete(format!("{base}/api/events/{id}/session"))
            .bearer_auth(tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let ended_count = || {
        let (entries, base, id) = (entries.clone(), base.clone(), id.clone());
        async move {
            let mut ended = 0;
            for t in &entries {
                if status(&base, &id, t).await["sessionEnded"] == true {
                    ended += 1;
                }
            }
            ended
        }
    };
    // Everyone holding a session heartbeats, the two newcomers included:
    // they too must not be abandoned before the check sees them.
    let holders = || {
        let (entries, base, id) = (entries.clone(), base.clone(), id.clone());
        async move {
            let mut tokens = Vec::new();
            for t in &entries {
                let s = status(&base, &id, t).await;
                if let (Some(tok), false) = (s["token"].as_str(), s["sessionEnded"] == true) {
                    tokens.push(tok.to_owned());
                }
            }
            tokens
        }
    };
    assert!(
        eventually(Duration::from_secs(5), || async {
            for tok in holders().await {
                heartbeat(tok).await;
            }
            ended_count().await == 2 && admitted_tokens(5).await.is_some()
        })
        .await,
        "left sessions end and their places are reused"
    );
    // Nobody heartbeats: after the 2 s timeout the sessions are reclaimed
    // and the last 5 are admitted.
    assert!(
        eventually(Duration::from_secs(8), || async {
            ended_count().await == 7
        })
        .await,
        "abandoned sessions are reclaimed"
    );
    running.shutdown().await.unwrap();
}

/// The serving counter advances at admissionPerSecond (measured over a window).
async fn admission_rate_is_respected(kind: Kind) {
    let event = support::event(5, 1000);
    let id = event.id.to_string();
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let mut tickets = Vec::new();
    for _ in 0..40 {
        tickets.push(enter(&base, &id).await.1);
    }
    // The last in line's place shrinks by one per admission.
    let last = tickets.last().expect("40 tickets").clone();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = place_of(&base, &id, &last).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = place_of(&base, &id, &last).await;
    let rate = admission_rate(a, b);
    assert!(
        (3.5..=6.5).contains(&rate),
        "measured {rate}/s, configured 5/s (place {} → {})",
        a.0,
        b.0
    );
    running.shutdown().await.unwrap();
}

/// Forged, tampered, expired, cross-event and wrong-kind tokens get 401.
async fn bad_tokens_are_refused(kind: Kind) {
    let event = support::event(100, 100);
    let id = event.id.clone();
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let (qid, ticket) = enter(&base, id.as_str()).await;
    let qid = qid.parse().unwrap();
    let keys = TokenKeys::from_secret(support::SECRET).unwrap();
    let forger = TokenKeys::from_secret(&[9u8; 32]).unwrap();
    let now = Timestamp::now();
    let later = now.checked_add(Duration::from_secs(600)).unwrap();
    let earlier = now.checked_sub(Duration::from_secs(600)).unwrap();
    let mut tampered = ticket.clone();
    tampered.insert(tampered.len() - 3, 'x');
    let cases = [
        (
            "forged",
            forger
                .issue(TokenKind::Queue, &id, &qid, now, later)
                .unwrap(),
            "invalid_token",
        ),
        ("tampered", tampered, "invalid_token"),
        (
            "expired",
            keys.issue(TokenKind::Queue, &id, &qid, earlier, earlier)
                .unwrap(),
            "expired_token",
        ),
        (
            "cross-event",
            keys.issue(
                TokenKind::Queue,
                &"other-event".parse().unwrap(),
                &qid,
                now,
                later,
            )
            .unwrap(),
            "wrong_event",
        ),
        (
            "admission as ticket",
            keys.issue(TokenKind::Admission, &id, &qid, now, later)
                .unwrap(),
            "invalid_token",
        ),
    ];
    for (name, token, code) in cases {
        let r = client()
            .get(format!("{base}/api/events/{id}/queue/status"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], code, "{name}: {body}");
    }
    // A queue ticket is no admission token.
    let r = client()
        .post(format!("{base}/api/events/{id}/session/heartbeat"))
        .bearer_auth(&ticket)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // No ticket at all.
    let r = client()
        .get(format!("{base}/api/events/{id}/queue/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "missing_ticket"
    );
    running.shutdown().await.unwrap();
}

/// Bad input gets JSON errors with stable codes, never a 5xx.
async fn bad_input_gets_json_errors(kind: Kind) {
    let event = support::event(100, 100);
    let id = event.id.to_string();
    let running = start(
        kind,
        event,
        WebConfig {
            cookie_secure: false,
            ..WebConfig::default()
        },
    )
    .await;
    let base = base(&running);
    let c = client();
    let check = |status: u16, code: &'static str| {
        move |r: reqwest::Response| async move {
            assert_eq!(r.status(), status, "expected {code}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["code"], code);
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    };
    let url = format!("{base}/api/events/{id}/queue");
    check(400, "invalid_json")(c.post(&url).body("{not json").send().await.unwrap()).await;
    check(400, "invalid_json")(c.post(&url).body(r#"{"surprise":1}"#).send().await.unwrap()).await;
    check(413, "payload_too_large")(c.post(&url).body(vec![b' '; 10_000]).send().await.unwrap())
        .await;
    check(404, "unknown_event")(
        c.post(format!("{base}/api/events/nope/queue"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check(404, "unknown_event")(
        c.post(format!("{base}/api/events/..%2F/queue"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check(404, "not_found")(c.get(format!("{base}/api/nothing")).send().await.unwrap()).await;
    check(405, "method_not_allowed")(c.get(&url).send().await.unwrap()).await;
    // The default limit allows a burst of 10 per client, then 429 + Retry-After.
    // Sent at once: one after another, a slow durable produce (Kafka on a
    // loaded machine) would let the 5/s refill keep up with the test.
    let responses = futures::future::join_all((0..12).map(|_| c.post(&url).send())).await;
    let mut statuses = Vec::new();
    for r in responses {
        let r = r.unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
    running.shutdown().await.unwrap();
}

/// The WebSocket pushes position updates and then admission with a token;
/// shutdown closes it with 1012 so the client reconnects.
async fn websocket_pushes_until_admitted(kind: Kind) {
    let event = support::event(2, 1000);
    let id = event.id.to_string();
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let mut tickets = Vec::new();
    for _ in 0..5 {
        tickets.push(enter(&base, &id).await.1);
    }
    let url = format!(
        "ws://{}/ws/events/{id}/queue?ticket={}",
        running.addr, tickets[4]
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        else {
            break;
        };
        let status: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        let admitted = status["admitted"] == true;
        seen.push(status);
        if admitted {
            break;
        }
    }
    let last = seen.last().unwrap();
    assert_eq!(last["admitted"], true, "admitted in the end: {seen:?}");
    assert!(last["token"].as_str().is_some());
    let positions: Vec<u64> = seen
        .iter()
        .filter_map(|s| s["position"].as_u64())
        .filter(|p| *p > 0)
        .collect();
    assert!(
        !positions.is_empty(),
        "saw a waiting position first: {seen:?}"
    );
    assert!(
        positions.windows(2).all(|w| w[0] >= w[1]),
        "positions only go down: {positions:?}"
    );

    // A second client is connected when the server drains: it is told to reconnect.
    let url = format!(
        "ws://{}/ws/events/{id}/queue?ticket={}",
        running.addr, tickets[0]
    );
    let (mut ws2, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _first = ws2.next().await;
    let shutdown = tokio::spawn(running.shutdown());
    let mut close_code = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws2.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Close(Some(frame)) = msg {
            close_code = Some(u16::from(frame.code));
            break;
        }
    }
    assert_eq!(close_code, Some(1012));
    drop(ws);
    drop(ws2);
    shutdown.await.unwrap().unwrap();
}

/// Shuffle at opening: the pre-queue waits without a number, is ordered
/// randomly once at opening, and later arrivals queue behind all of them.
async fn shuffle_at_open_permutes_the_pre_queue(kind: Kind) {
    // One live session at most: after the first admission the serving
    // counter stands still, so positions read one by one are comparable.
    let mut event = support::event(2, 1);
    let now = Timestamp::now();
    event.opens_at = now.checked_add(Duration::from_secs(3)).unwrap();
    event.queue.opening_mode = twinkle_domain::OpeningMode::ShuffleAtOpen;
    let id = event.id.to_string();
    let opens_at = event.opens_at;
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let mut early = Vec::new();
    for _ in 0..20 {
        early.push(enter(&base, &id).await.1);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for t in &early {
        let s = status(&base, &id, t).await;
        assert_eq!(
            s["position"],
            serde_json::Value::Null,
            "no number before the draw: {s}"
        );
        assert_eq!(s["admitted"], false);
    }
    // After opening (+ the draw grace), later arrivals join.
    let wait = opens_at
        .duration_since(Timestamp::now())
        .as_secs_f64()
        .max(0.0)
        + 2.5;
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    let mut late = Vec::new();
    for _ in 0..3 {
        late.push(enter(&base, &id).await.1);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Read the late arrivals first: the serving counter only grows, so any
    // pre-queue position read afterwards is comparable (smaller if fair).
    let mut late_positions = Vec::new();
    for t in &late {
        late_positions.push(
            status(&base, &id, t).await["position"]
                .as_u64()
                .expect("late arrival has a number"),
        );
    }
    let mut early_positions = Vec::new();
    let mut admitted = 0;
    for t in &early {
        let s = status(&base, &id, t).await;
        if s["admitted"] == true {
            admitted += 1;
        } else {
            early_positions.push(s["position"].as_u64().expect("drawn number"));
        }
    }
    let distinct: HashSet<u64> = early_positions.iter().copied().collect();
    assert_eq!(
        distinct.len() + admitted,
        20,
        "each pre-queue customer has one place"
    );
    let max_early = early_positions.iter().max().copied().unwrap_or(0);
    assert!(
        late_positions.iter().all(|p| *p > max_early),
        "later arrivals queue behind the whole pre-queue: late {late_positions:?}, early max {max_early}"
    );
    assert!(
        early_positions.windows(2).any(|w| w[0] > w[1]),
        "the pre-queue is shuffled, not in arrival order: {early_positions:?}"
    );
    running.shutdown().await.unwrap();
}

/// Before the pre-queue window and after closing, entering is refused (409).
async fn entering_outside_the_sale_window_is_refused(kind: Kind) {
    let now = Timestamp::now();
    let mut not_yet = support::event(10, 10);
    not_yet.opens_at = now.checked_add(Duration::from_secs(3600)).unwrap();
    not_yet.closes_at = now.checked_add(Duration::from_secs(7200)).unwrap();
    let id = not_yet.id.to_string();
    let running = start(kind, not_yet, open_web()).await;
    let r = client()
        .post(format!("{}/api/events/{id}/queue", base(&running)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "queue_not_open", "{body}");
    running.shutdown().await.unwrap();

    let mut closed = support::event(10, 10);
    closed.opens_at = now.checked_sub(Duration::from_secs(7200)).unwrap();
    closed.closes_at = now.checked_sub(Duration::from_secs(3600)).unwrap();
    let id = closed.id.to_string();
    let running = start(kind, closed, open_web()).await;
    let r = client()
        .post(format!("{}/api/events/{id}/queue", base(&running)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "sale_closed"
    );
    running.shutdown().await.unwrap();
}

/// A ticket signed with the event's key for an entry this region never saw
/// (made in the other region of a DR pair just before it died, and not
/// replicated) is placed on re-entry, once however often it re-enters.
async fn a_ticket_from_the_other_region_is_placed_on_reentry(kind: Kind) {
    let event = support::event(1, 1);
    let id = event.id.clone();
    let running = start(kind, event, open_web()).await;
    let base = base(&running);
    let (_, first) = enter(&base, id.as_str()).await;
    let keys = TokenKeys::from_secret(support::SECRET).unwrap();
    let now = Timestamp::now();
    let elsewhere = keys
        .issue(
            TokenKind::Queue,
            &id,
            &"seoul0customer".parse().unwrap(),
            now,
            now.checked_add(Duration::from_secs(600)).unwrap(),
        )
        .unwrap();
    for _ in 0..3 {
        let r = client()
            .post(format!("{base}/api/events/{id}/queue"))
            .bearer_auth(&elsewhere)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["queueId"], "seoul0customer");
        assert_eq!(body["reentered"], true);
    }
    // One admitted at a time: the first customer is served, the one from
    // elsewhere waits right behind (number 2: placed once).
    let placed = eventually(Duration::from_secs(20), || async {
        status(&base, id.as_str(), &elsewhere).await["position"].as_u64() == Some(1)
    })
    .await;
    assert!(placed, "placed right behind the first customer");
    let s = status(&base, id.as_str(), &first).await;
    assert_eq!(s["admitted"], true, "{s}");
    running.shutdown().await.unwrap();
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread")] async fn $case() { super::$case(super::Kind::Embedded).await })*
        }
        mod kafka_redis {
            $(#[tokio::test(flavor = "multi_thread")] async fn $case() { super::$case(super::Kind::Real).await })*
        }
    };
}

suite!(
    fifo_admission_follows_queue_order,
    concurrent_entry_gives_one_place_each,
    cap_leave_and_abandonment,
    admission_rate_is_respected,
    bad_tokens_are_refused,
    bad_input_gets_json_errors,
    websocket_pushes_until_admitted,
    shuffle_at_open_permutes_the_pre_queue,
    entering_outside_the_sale_window_is_refused,
    a_ticket_from_the_other_region_is_placed_on_reentry,
);
