//! Enter-endpoint benchmark: starts the queue service in-process (embedded
//! or Kafka+Redis backends), then drives it with `wrk` (apt) on loopback:
//! first `GET /healthz` as the baseline (the same server doing no work),
//! then `POST /api/events/{event}/queue`, in the same run. Prints a table or
//! JSON (`-o json`). Results go to BENCHMARKS.md.
#![forbid(unsafe_code)]

use std::num::NonZeroU32;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;
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
#[command(about = "Benchmark the enter endpoint against a /healthz baseline")]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Open connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads (the server shares the machine: keep it small).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Kafka bootstrap servers (with --redis: real backends; else embedded).
    #[arg(long, requires = "redis")]
    kafka: Option<String>,
    #[arg(long, requires = "kafka")]
    redis: Option<String>,
    /// Partitions of the queue topic created for the run (real backends).
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Serialize)]
struct Measurement {
    name: String,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    /// Requests wrk completed.
    requests: u64,
    /// CPU seconds this process (the server: API, queue keeper,
    /// Kafka client threads; wrk is a child and not counted) used per
    /// second of the measurement: the cores the server really had.
    server_cores: f64,
    /// requests/s ÷ server_cores: what one fully used core serves, the
    /// number the operator's capacity model is built on.
    requests_per_core_second: f64,
}

fn millis(text: &str) -> Option<f64> {
    let (num, factor) = if let Some(v) = text.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * factor)
}

/// Parses wrk's `--latency` report.
fn parse_wrk(name: &str, report: &str) -> anyhow::Result<Measurement> {
    let field = |prefix: &str| {
        report
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    Ok(Measurement {
        name: name.to_owned(),
        requests_per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .context("no Requests/sec in wrk output")?,
        p50_ms: field("50%").and_then(|v| millis(&v)).context("no p50")?,
        p99_ms: field("99%").and_then(|v| millis(&v)).context("no p99")?,
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        requests: report
            .lines()
            .find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok())
            .unwrap_or(0),
        server_cores: 0.0,
        requests_per_core_second: 0.0,
    })
}

async fn wrk(
    args: &Args,
    name: &str,
    url: &str,
    script: Option<&str>,
) -> anyhow::Result<Measurement> {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.arg("--latency")
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}s", args.duration));
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let me = std::process::id();
    let cpu_before = proc_stats::cpu_seconds(me).context("reading /proc/self/stat")?;
    let started = std::time::Instant::now();
    let out = cmd
        .arg(url)
        .output()
        .await
        .context("running wrk (apt-get install wrk)")?;
    let cores = (proc_stats::cpu_seconds(me).context("reading /proc/self/stat")? - cpu_before)
        / started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut m = parse_wrk(name, &String::from_utf8_lossy(&out.stdout))?;
    m.server_cores = cores;
    m.requests_per_core_second = m.requests_per_second / cores.max(1e-3);
    Ok(m)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut event = runtime::demo_event(jiff::Timestamp::now());
    event.id = format!("bench-{}", std::process::id()).parse()?;
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
    let backend_name = match backends {
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
            // Per client: each wrk request claims its own X-Forwarded-For.
            enter_per_second: NonZeroU32::new(5).context("nonzero")?,
            enter_burst: NonZeroU32::new(10).context("nonzero")?,
            trust_forwarded_for: true,
        },
        keeper: true,
        decider: false,
        holder: "bench".to_owned(),
        group: format!("bench-{}", std::process::id()),
        topic_prefix: None,
        ownership: None,
        replicate_from: None,
    })
    .await?;
    let base = format!("http://{}", running.addr);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/enter.lua");
    eprintln!("warming up…");
    let warm = Args {
        duration: 2,
        ..args.clone()
    };
    wrk(&warm, "warm-up", &format!("{base}/healthz"), None).await?;
    let baseline = wrk(
        &args,
        "GET /healthz (baseline)",
        &format!("{base}/healthz"),
        None,
    )
    .await?;
    let enter = wrk(
        &args,
        &format!("POST enter ({backend_name})"),
        &format!("{base}/api/events/{}/queue", event.id),
        Some(script),
    )
    .await?;
    let placing = match &args.redis {
        Some(redis) => {
            Some(keeper_catch_up(redis, &event.id, enter.requests - enter.non_2xx).await?)
        }
        None => None,
    };
    running.shutdown().await?;
    let ratio = 100.0 * enter.requests_per_second / baseline.requests_per_second;
    let results = [baseline, enter];
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "measurements": results,
                "keeper": placing,
            }))?
        ),
        Output::Table => {
            println!(
                "{:<34} {:>10} {:>9} {:>9} {:>8} {:>7} {:>12}",
                "MEASUREMENT", "REQ/S", "P50 MS", "P99 MS", "NON-2XX", "CORES", "REQ/CORE-S"
            );
            for m in &results {
                println!(
                    "{:<34} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>7.2} {:>12.0}",
                    m.name,
                    m.requests_per_second,
                    m.p50_ms,
                    m.p99_ms,
                    m.non_2xx,
                    m.server_cores,
                    m.requests_per_core_second
                );
            }
            println!("enter throughput is {ratio:.0}% of the baseline");
            if let Some(p) = &placing {
                println!(
                    "queue keeper: {} of {} entries placed (journaled, then projected) when the load ended, all {:.0} ms later",
                    p.placed_when_load_ended, p.entered, p.caught_up_ms
                );
            }
        }
    }
    Ok(())
}

/// How far the queue keeper was behind the API when the load ended.
#[derive(Debug, Serialize)]
struct Placing {
    entered: u64,
    placed_when_load_ended: u64,
    /// From the load's end until every entry had its number in Redis.
    caught_up_ms: f64,
}

async fn keeper_catch_up(
    redis: &str,
    event: &twinkle_domain::EventId,
    entered: u64,
) -> anyhow::Result<Placing> {
    use twinkle_workloads::{backend::redis_store::RedisStore, ports::QueueStore};
    let store = RedisStore::connect(redis).await?;
    let started = std::time::Instant::now();
    let placed_when_load_ended = store.counters(event).await?.value.assigned;
    loop {
        if store.counters(event).await?.value.assigned >= entered {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            bail!("the keeper did not place all {entered} entries within 120 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(Placing {
        entered,
        placed_when_load_ended,
        caught_up_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_latency_report() {
        let report = "Running 10s test @ http://x\n  Latency Distribution\n     50%  512.00us\n     75%    1.10ms\n     90%    2.00ms\n     99%   12.34ms\n  100 requests in 10.00s, 1.00MB read\n  Non-2xx or 3xx responses: 7\nRequests/sec:   12345.67\nTransfer/sec:      1.00MB\n";
        let m = parse_wrk("x", report).unwrap();
        assert!((m.requests_per_second - 12345.67).abs() < 1e-9);
        assert!((m.p50_ms - 0.512).abs() < 1e-9);
        assert!((m.p99_ms - 12.34).abs() < 1e-9);
        assert_eq!(m.non_2xx, 7);
        assert_eq!(m.requests, 100);
    }
}
