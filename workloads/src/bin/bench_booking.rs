//! Booking-pipeline benchmark: starts the workloads in-process (embedded or
//! Kafka+Redis backends, decider included), admits N customers through the
//! queue (not timed), then every customer books at once and the clock runs
//! until the decider has decided all N requests (HTTP → bookings log →
//! decider → outcomes log in a transaction → Redis projection). The
//! baseline, in the same run: Redis executing a decision script by itself
//! under `redis-benchmark`, one decision per call — the script the decider
//! ran before it decided against its ledger (`bench_booking_baseline.lua`,
//! kept so figures stay comparable across changes). Results go to BENCHMARKS.md.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use futures::{StreamExt, stream};
use serde::Serialize;
use twinkle_domain::Slot;
use twinkle_workloads::{
    backend::kafka::{Topics, create_topics},
    proc_stats,
    runtime::{self, Backends, RunOptions},
    web::WebConfig,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Parser)]
#[command(about = "Benchmark the booking pipeline against the bare decision script")]
struct Args {
    /// Customers, each booking once.
    #[arg(long, default_value_t = 20_000)]
    customers: u32,
    /// Concurrent booking requests in flight.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Kafka bootstrap servers (with --redis: real backends; else embedded).
    #[arg(long, requires = "redis")]
    kafka: Option<String>,
    /// Redis URL (the baseline always needs one).
    #[arg(long)]
    redis: Option<String>,
    /// Partitions of the topics created for the run (real backends).
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Calls the redis-benchmark baseline makes.
    #[arg(long, default_value_t = 200_000)]
    baseline_calls: u32,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Results {
    backend: String,
    customers: u32,
    /// Seconds from the first booking request to the last decision.
    seconds: f64,
    decisions_per_second: f64,
    confirmed: u64,
    confirmed_per_second: f64,
    accept_p50_ms: f64,
    accept_p99_ms: f64,
    /// CPU seconds this process used per second of the timed part: the
    /// cores the API, the decider, their Kafka/Redis clients and the
    /// in-process load generator (reqwest) had together.
    process_cores: f64,
    /// decisions/s ÷ process_cores. Conservative for the server alone, as
    /// the load generator's share is counted too.
    decisions_per_core_second: f64,
    /// redis-benchmark running the decision script alone (one per call).
    baseline_script_calls_per_second: Option<f64>,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap_or_default()
}

/// Enters and waits for admission; returns every admission token.
async fn admit(
    http: &reqwest::Client,
    base: &str,
    event: &str,
    n: u32,
) -> anyhow::Result<Vec<String>> {
    let tickets: Vec<String> = stream::iter(0..n)
        .map(|_| async move {
            let r = http
                .post(format!("{base}/api/events/{event}/queue"))
                .send()
                .await?;
            let body: serde_json::Value = r.json().await?;
            body["ticket"]
                .as_str()
                .map(str::to_owned)
                .context("no ticket in the enter answer")
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let mut tokens = Vec::with_capacity(tickets.len());
    let mut waiting = tickets;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !waiting.is_empty() {
        if Instant::now() > deadline {
            bail!("{} customers not admitted after 5 min", waiting.len());
        }
        let polled: Vec<(String, Option<String>)> = stream::iter(waiting)
            .map(|ticket| async move {
                let token = async {
                    let r = http
                        .get(format!("{base}/api/events/{event}/queue/status"))
                        .bearer_auth(&ticket)
                        .send()
                        .await
                        .ok()?;
                    let s: serde_json::Value = r.json().await.ok()?;
                    s["token"].as_str().map(str::to_owned)
                }
                .await;
                (ticket, token)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        waiting = Vec::new();
        for (ticket, token) in polled {
            match token {
                Some(t) => tokens.push(t),
                None => waiting.push(ticket),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(tokens)
}

/// Sum of a counter family in the Prometheus text, optionally one label value.
fn counter_sum(metrics: &str, name: &str, label: Option<&str>) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && label.is_none_or(|v| l.contains(v)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// redis-benchmark running the decision script, one fresh request per call
/// on a slot with plenty of seats (every call takes the full write path).
async fn baseline(redis_url: &str, calls: u32) -> anyhow::Result<f64> {
    let hostport = redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "6379"));
    let tag = format!("bench-{}", std::process::id());
    let key = |k: &str| format!("tt:{{{tag}}}:b:{k}");
    let mut con = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let _: () = redis::cmd("HSET")
        .arg(key("left"))
        .arg("s")
        .arg(1_000_000_000)
        .query_async(&mut con)
        .await?;
    let script = include_str!("bench_booking_baseline.lua");
    let out = tokio::process::Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-c",
            "50",
            "-r",
            "100000000",
            "--csv",
        ])
        .args(["-n", &calls.to_string()])
        .args(["EVAL", script, "4"])
        .args([key("out"), key("left"), key("conf"), key("cust")])
        .args(["1", "r__rand_int__", "c__rand_int__", "s"])
        .output()
        .await
        .context("running redis-benchmark (apt redis-tools)")?;
    let _: () = redis::cmd("DEL")
        .arg(&[key("out"), key("left"), key("conf"), key("cust")])
        .query_async(&mut con)
        .await?;
    if !out.status.success() {
        bail!("redis-benchmark: {}", String::from_utf8_lossy(&out.stderr));
    }
    // CSV: "test","rps",... — the second field of the last line.
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .last()
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .with_context(|| format!("unexpected redis-benchmark output: {text}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.customers;
    let mut event = runtime::demo_event(jiff::Timestamp::now());
    event.id = format!("bench-{}", std::process::id()).parse()?;
    event.queue.admission_per_second = n;
    event.queue.max_active_sessions = n;
    event.queue.heartbeat_timeout = Duration::from_secs(3600);
    // Half the customers can get a seat: both decision paths are exercised.
    event.slots = (0..4)
        .map(|i| Slot {
            id: format!("s{i}").parse().expect("static slot id"),
            label: format!("slot {i}"),
            capacity: n / 8,
        })
        .collect();
    let backends = match (&args.kafka, &args.redis) {
        (Some(kafka), Some(redis)) => {
            create_topics(kafka, &Topics::for_event(&event.id), args.partitions).await?;
            Backends::Real {
                kafka: kafka.clone(),
                redis: redis.clone(),
            }
        }
        _ => Backends::Embedded,
    };
    let backend = match backends {
        Backends::Embedded => "embedded",
        Backends::Real { .. } => "kafka+redis",
    };
    let running = runtime::start(RunOptions {
        listen: "127.0.0.1:0".parse()?,
        events: vec![event.clone()],
        backends,
        token_secret: (0..32).map(|_| rand::random::<u8>()).collect(),
        web: WebConfig {
            cookie_secure: false,
            enter_per_second: std::num::NonZeroU32::MAX,
            enter_burst: std::num::NonZeroU32::MAX,
            trust_forwarded_for: false,
        },
        keeper: true,
        decider: true,
        holder: "bench".to_owned(),
        group: format!("bench-{}", std::process::id()),
        topic_prefix: None,
        ownership: None,
        replicate_from: None,
    })
    .await?;
    let base = format!("http://{}", running.addr);
    let id = event.id.to_string();
    let http = client();
    eprintln!("admitting {n} customers through the queue (not timed)…");
    let tokens = admit(&http, &base, &id, n).await?;

    eprintln!("{n} customers book at once…");
    let me = std::process::id();
    let cpu_before = proc_stats::cpu_seconds(me).context("reading /proc/self/stat")?;
    let started = Instant::now();
    let booking = {
        let (http, base, id) = (&http, &base, &id);
        stream::iter(tokens.iter().enumerate())
            .map(move |(i, token)| async move {
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/api/events/{id}/bookings"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "slot": format!("s{}", i % 4) }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 202 => Ok(t.elapsed().as_secs_f64() * 1000.0),
                    Ok(r) => bail!("booking answered {}", r.status()),
                    Err(e) => bail!("booking failed: {e}"),
                }
            })
            .buffer_unordered(args.concurrency)
            .collect::<Vec<_>>()
    };
    let latencies = booking
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let (decided_at, confirmed, cpu_seconds) = loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let decided = counter_sum(&text, "twinkle_booking_decisions_total", None);
        if decided >= u64::from(n) {
            let confirmed = counter_sum(
                &text,
                "twinkle_booking_decisions_total",
                Some("decision=\"confirmed\""),
            );
            let cpu = proc_stats::cpu_seconds(me).context("reading /proc/self/stat")?;
            break (started.elapsed(), confirmed, cpu - cpu_before);
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {decided} of {n} decided after 10 min");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    running.shutdown().await?;

    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    let seconds = decided_at.as_secs_f64();
    let process_cores = cpu_seconds / seconds;
    let baseline_rate = match &args.redis {
        Some(url) => {
            eprintln!("baseline: redis-benchmark running the decision script…");
            Some(baseline(url, args.baseline_calls).await?)
        }
        None => None,
    };
    let results = Results {
        backend: backend.to_owned(),
        customers: n,
        seconds,
        decisions_per_second: f64::from(n) / seconds,
        confirmed,
        confirmed_per_second: confirmed as f64 / seconds,
        accept_p50_ms: percentile(&sorted, 0.50),
        accept_p99_ms: percentile(&sorted, 0.99),
        process_cores,
        decisions_per_core_second: f64::from(n) / cpu_seconds.max(1e-3),
        baseline_script_calls_per_second: baseline_rate,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Output::Table => {
            println!("backend                 {}", results.backend);
            println!("customers               {}", results.customers);
            println!("first request → last decision  {:.2} s", results.seconds);
            println!(
                "decisions/s             {:.0}",
                results.decisions_per_second
            );
            println!(
                "confirmed               {} ({:.0}/s)",
                results.confirmed, results.confirmed_per_second
            );
            println!(
                "202 latency p50/p99     {:.1} / {:.1} ms",
                results.accept_p50_ms, results.accept_p99_ms
            );
            println!(
                "process CPU             {:.2} cores → {:.0} decisions per core-second (load generator included)",
                results.process_cores, results.decisions_per_core_second
            );
            if let Some(b) = results.baseline_script_calls_per_second {
                println!(
                    "baseline: decision script alone (redis-benchmark, 1/call, 50 clients) {b:.0} calls/s"
                );
                println!(
                    "pipeline decisions/s are {:.0}% of the bare script's rate",
                    100.0 * results.decisions_per_second / b
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_counter_families() {
        let text = "# TYPE twinkle_booking_decisions counter\ntwinkle_booking_decisions_total{event=\"e\",decision=\"confirmed\"} 5\ntwinkle_booking_decisions_total{event=\"e\",decision=\"sold_out\"} 7\n";
        assert_eq!(
            counter_sum(text, "twinkle_booking_decisions_total", None),
            12
        );
        assert_eq!(
            counter_sum(
                text,
                "twinkle_booking_decisions_total",
                Some("decision=\"confirmed\"")
            ),
            5
        );
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 0.5) - 3.0).abs() < 1e-9);
    }
}
