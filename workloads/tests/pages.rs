//! The customer pages in a real browser: Debian's Chromium, driven by
//! playwright-core (`e2e/browser/walk.cjs`), walks an in-process workload
//! (embedded backends, then real Kafka + Redis) from the event page through the waiting screen and the
//! slot picker to the confirmation, while a second customer takes the last
//! seat of a slot the first one is looking at (the first sees it disabled
//! without reloading); a third walks without WebSockets (polling), a fourth
//! has its queue socket closed with 1012 mid-wait. Screenshots of every page
//! land in `$CARGO_TARGET_DIR/pages-screenshots/<backend>/` (the test prints
//! the paths).

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use support::{Kind, enter, open_web, start};
use twinkle_domain::Slot;
use twinkle_e2e::stack::{Stack, capture};

/// One Chromium walk at a time: two at once on a 2-core machine would only
/// measure the machine.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn screenshot_dir(kind: Kind) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        PathBuf::from,
    );
    let backend = match kind {
        Kind::Embedded => "embedded",
        Kind::Real => "kafka-redis",
    };
    target.join("pages-screenshots").join(backend)
}

fn slot(id: &str, label: &str, capacity: u32) -> Slot {
    Slot {
        id: id.parse().unwrap(),
        label: label.to_owned(),
        capacity,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_walks_the_pages_in_chromium_embedded() {
    walk(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_walks_the_pages_in_chromium_kafka_redis() {
    walk(Kind::Real).await;
}

async fn walk(kind: Kind) {
    let _one = ONE_BROWSER.lock().await;
    let stack = Stack::require();
    // Slow enough admission that the waiting screen shows a number.
    let mut event = support::event(3, 100);
    event.slots = vec![
        slot("early", "10:00–11:00", 20),
        slot("late", "11:00–12:00", 20),
        slot("tiny", "13:00–14:00 (last seat)", 1),
    ];
    let id = event.id.to_string();
    let running = start(kind, event, open_web()).await;
    let base = format!("http://{}", running.addr);
    // Customers ahead of the browser: a few seconds of waiting at 3/s.
    for _ in 0..20 {
        enter(&base, &id).await;
    }

    let dir = screenshot_dir(kind);
    let _ = std::fs::remove_dir_all(&dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../e2e/browser/walk.cjs");
    let out = capture(
        tokio::process::Command::new("node")
            .arg(script)
            .arg(&base)
            .arg(&id)
            .arg(&dir)
            .env("NODE_PATH", &stack.playwright_modules)
            .env("TT_CHROMIUM", &stack.chromium),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "walk.cjs failed ({}); screenshots in {}:\n{stdout}\n{stderr}",
        out.status,
        dir.display()
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    println!("timings: {}", result["timings"]);
    for shot in result["screenshots"].as_array().unwrap() {
        println!("screenshot: {}", shot.as_str().unwrap());
    }
    assert!(result["screenshots"].as_array().unwrap().len() >= 7);

    // What the browsers did really happened, once each: B took tiny's only
    // seat, A one in early (after its raced click on tiny was sold out), C
    // one in late.
    let slots: serde_json::Value = support::slots(&base, &id).await;
    let remaining = |slot: &str| {
        slots["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == slot)
            .unwrap()["remaining"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (remaining("early"), remaining("late"), remaining("tiny")),
        (19, 19, 0),
        "{slots}"
    );

    running.shutdown().await.unwrap();
}
