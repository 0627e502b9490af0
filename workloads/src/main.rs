//! `twinkle`: the workloads binary.
//!
//! * `twinkle local` — everything in one process with embedded backends (or
//!   real ones with `--kafka`/`--redis`): the README's first command.
//! * `twinkle queue-api` — the queue API.
//! * `twinkle queue-consumer` — the queue keeper (places and admission,
//!   journaled to Kafka, projected to Redis).
//! * `twinkle booking-api` — the booking API and the slots WebSocket.
//! * `twinkle booking-consumer` — the decider (bookings topic → ledger →
//!   outcomes topic, then the Redis projection).
//! * `twinkle booking check|rebuild` — compare the Redis projection with the
//!   outcomes topic, or restore it from there.
#![forbid(unsafe_code)]

mod booking_cli;

use std::io::IsTerminal as _;
use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use twinkle_crd::TicketEvent;
use twinkle_domain::EventConfig;
use twinkle_workloads::{
    runtime::{self, Backends, RunOptions},
    web::WebConfig,
};

#[derive(Debug, Parser)]
#[command(name = "twinkle", version, about = "Twinkle Ticket workloads")]
struct Cli {
    /// Log as JSON lines (for log shippers) instead of human text.
    #[arg(long, env = "TWINKLE_LOG_JSON", global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process (embedded backends unless --kafka/--redis).
    Local {
        /// Address to serve the pages and API on.
        #[arg(long, env = "TWINKLE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Serve this event (JSON/YAML event config) instead of the demo.
        #[arg(long, env = "TWINKLE_EVENT")]
        event: Option<PathBuf>,
        /// Kafka bootstrap servers (with --redis: real backends).
        #[arg(long, env = "TWINKLE_KAFKA", requires = "redis")]
        kafka: Option<String>,
        /// Redis URL (with --kafka: real backends).
        #[arg(
            long,
            env = "TWINKLE_REDIS",
            requires = "kafka",
            hide_env_values = true
        )]
        redis: Option<String>,
    },
    /// The queue API: enter, status, WebSocket, session.
    QueueApi(ServiceArgs),
    /// The queue keeper: consumes the queue topic, gives places, runs the
    /// draw and admission; journals each step, then projects it to Redis
    /// (only the lease holder keeps the queue).
    QueueConsumer(ServiceArgs),
    /// The booking API: book, booking status, live seats (HTTP + WebSocket).
    BookingApi(ServiceArgs),
    /// The decider: consumes the bookings topic, decides each request
    /// against the ledger replayed from the outcomes topic, commits the
    /// outcome with the consumed offset (one transaction), projects to Redis.
    BookingConsumer(ServiceArgs),
    /// Operations on the seat inventory.
    #[command(subcommand)]
    Booking(BookingCommand),
}

#[derive(Debug, Subcommand)]
enum BookingCommand {
    /// Compare the Redis projection (seats, decisions, watermark) with the
    /// outcomes topic (exit 1 if it is behind or an invariant is broken in
    /// the log).
    Check(InventoryArgs),
    /// Restore the Redis projection from the outcomes topic if it is behind
    /// (refused while a decider runs: it does this by itself).
    Rebuild(InventoryArgs),
}

#[derive(Debug, Args)]
struct InventoryArgs {
    /// The event (TicketEvent manifest or event config).
    #[arg(long, env = "TWINKLE_EVENT")]
    event: PathBuf,
    #[arg(long, env = "TWINKLE_KAFKA")]
    kafka: String,
    #[arg(long, env = "TWINKLE_REDIS", hide_env_values = true)]
    redis: String,
    /// Kafka topic prefix (see the services' `--topic-prefix`).
    #[arg(long, env = "TWINKLE_TOPIC_PREFIX")]
    topic_prefix: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Human)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Human,
    Json,
}

#[derive(Debug, Args)]
struct ServiceArgs {
    #[arg(long, env = "TWINKLE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// The event config (the operator mounts it from a ConfigMap).
    #[arg(long, env = "TWINKLE_EVENT")]
    event: PathBuf,
    #[arg(long, env = "TWINKLE_KAFKA")]
    kafka: String,
    #[arg(long, env = "TWINKLE_REDIS", hide_env_values = true)]
    redis: String,
    /// File holding the token signing secret (≥ 32 bytes).
    #[arg(long, env = "TWINKLE_TOKEN_SECRET_FILE")]
    token_secret_file: PathBuf,
    /// Admission-lease identity: the pod name on Kubernetes; elsewhere (ECS
    /// tasks) host name + pid, so two processes never share an identity and
    /// both believe they hold the lease.
    #[arg(long, env = "POD_NAME")]
    holder: Option<String>,
    /// Kafka consumer-group prefix (`<group>.assigner`, `<group>.decider`).
    #[arg(long, env = "TWINKLE_GROUP", default_value = "twinkle")]
    group: String,
    /// Trust X-Forwarded-For for client IPs (only behind a trusted LB).
    #[arg(long, env = "TWINKLE_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// Kafka topic prefix: topics are `<prefix>.queue|bookings|outcomes`.
    /// Unset: `twinkle.<event>`; the operator passes `<namespace>.<name>`.
    #[arg(long, env = "TWINKLE_TOPIC_PREFIX")]
    topic_prefix: Option<String>,
    #[command(flatten)]
    dr: DrPairArgs,
}

/// The writers' DR pairing (queue and booking consumers): with
/// `--sell-region`, the queue keeper and the decider write only while the
/// ownership record names their region.
#[derive(Debug, Args)]
struct DrPairArgs {
    /// This region in the DR pair (`primary` or `dr`). Unset: the only
    /// region, always deciding.
    #[arg(long, env = "TWINKLE_SELL_REGION", requires_all = ["owner_zone_id", "owner_record"], value_parser = parse_region)]
    sell_region: Option<twinkle_dr::Region>,
    /// Hosted zone of the ownership record.
    #[arg(long, env = "TWINKLE_OWNER_ZONE_ID")]
    owner_zone_id: Option<String>,
    /// The ownership record's name (`_twinkle-dr-owner.<record>`).
    #[arg(long, env = "TWINKLE_OWNER_RECORD")]
    owner_record: Option<String>,
    /// How long one read of the record proves ownership (ms).
    #[arg(long, env = "TWINKLE_OWNER_LEASE_MS", default_value_t = 10_000)]
    owner_lease_ms: u64,
    /// How often the record is read (ms).
    #[arg(long, env = "TWINKLE_OWNER_POLL_MS", default_value_t = 1_000)]
    owner_poll_ms: u64,
    /// Route53 endpoint override (moto in tests).
    #[arg(long, env = "TWINKLE_ROUTE53_ENDPOINT")]
    route53_endpoint: Option<String>,
    /// In the DR region: the primary's Kafka bootstrap, read to report how
    /// far this region's replicated topics trail it
    /// (`twinkle_replication_lag_seconds`).
    #[arg(long, env = "TWINKLE_REPLICATE_FROM")]
    replicate_from: Option<String>,
}

fn parse_region(name: &str) -> Result<twinkle_dr::Region, String> {
    twinkle_dr::Region::parse(name)
        .ok_or_else(|| format!("{name:?} is not a region: primary or dr"))
}

impl DrPairArgs {
    async fn settings(
        self,
    ) -> anyhow::Result<Option<twinkle_workloads::ownership::OwnershipSettings>> {
        use twinkle_workloads::ownership::{OwnershipSettings, Route53Ownership};
        let (Some(region), Some(zone), Some(record)) =
            (self.sell_region, self.owner_zone_id, self.owner_record)
        else {
            return Ok(None);
        };
        let timing = twinkle_dr::OwnershipTiming {
            lease: twinkle_dr::Millis(self.owner_lease_ms),
            ..twinkle_dr::OwnershipTiming::default()
        };
        timing.validate()?;
        let source = Route53Ownership::load(zone, record, self.route53_endpoint).await;
        Ok(Some(OwnershipSettings {
            region,
            source: std::sync::Arc::new(source),
            timing,
            poll: std::time::Duration::from_millis(self.owner_poll_ms.max(100)),
        }))
    }
}

/// Reads the event to serve: a `TicketEvent` manifest (what `kubectl apply`
/// takes; converted exactly as the operator converts it for the ConfigMap it
/// mounts) or a plain event config (JSON or YAML, what that ConfigMap holds).
fn load_event(path: &PathBuf) -> anyhow::Result<EventConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_event(&text).with_context(|| format!("loading the event from {}", path.display()))
}

fn parse_event(text: &str) -> anyhow::Result<EventConfig> {
    // One YAML parse to look at `kind`, then the typed parse of the right
    // shape, so errors name the fields of the type the file claims to be.
    let value: serde_json::Value = yaml_serde::from_str(text).context("not JSON or YAML")?;
    let event = match value.get("kind").and_then(|k| k.as_str()) {
        Some("TicketEvent") => {
            let resource: TicketEvent =
                serde_json::from_value(value).context("not a valid TicketEvent manifest")?;
            EventConfig::try_from(&resource)?
        }
        Some(other) => anyhow::bail!(
            "it is a {other}; expected a TicketEvent manifest (kind: TicketEvent) or an event config (no kind)"
        ),
        None => serde_json::from_value(value).context(
            "neither a TicketEvent manifest (kind: TicketEvent) nor a valid event config",
        )?,
    };
    event.validate()?;
    Ok(event)
}

fn default_holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "twinkle".to_owned());
    format!("{host}-{}", std::process::id())
}

fn read_secret(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let secret = std::fs::read(path)
        .with_context(|| format!("reading the token secret {}", path.display()))?;
    Ok(secret.trim_ascii().to_vec())
}

/// Which background loop a service process runs besides its HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    QueueApi,
    QueueConsumer,
    BookingApi,
    BookingConsumer,
}

async fn service(args: ServiceArgs, role: Role) -> anyhow::Result<RunOptions> {
    let replicate_from = args.dr.replicate_from.clone();
    let ownership = if matches!(role, Role::BookingConsumer | Role::QueueConsumer) {
        args.dr.settings().await?
    } else {
        None
    };
    Ok(RunOptions {
        listen: args.listen,
        events: vec![load_event(&args.event)?],
        backends: Backends::Real {
            kafka: args.kafka,
            redis: args.redis,
        },
        token_secret: read_secret(&args.token_secret_file)?,
        web: WebConfig {
            trust_forwarded_for: args.trust_forwarded_for,
            ..WebConfig::default()
        },
        keeper: role == Role::QueueConsumer,
        decider: role == Role::BookingConsumer,
        holder: args.holder.unwrap_or_else(default_holder),
        group: args.group,
        topic_prefix: args.topic_prefix,
        ownership,
        replicate_from,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Logs go to stderr: stdout carries what a command prints (the
    // `booking check -o json` report, the local stack's banner).
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    } else {
        // Colour only on a terminal: piped into a log collector or a
        // file, ANSI codes are noise.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(filter)
            .init();
    }

    let (opts, banner) = match cli.command {
        Command::Local {
            listen,
            event,
            kafka,
            redis,
        } => {
            let events = match event {
                Some(path) => vec![load_event(&path)?],
                None => vec![runtime::demo_event(jiff::Timestamp::now())],
            };
            let backends = match (kafka, redis) {
                (Some(kafka), Some(redis)) => Backends::Real { kafka, redis },
                _ => Backends::Embedded,
            };
            // A fresh secret per run: tickets do not outlive the local process.
            let token_secret: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
            let opts = RunOptions {
                listen,
                events,
                backends,
                token_secret,
                web: WebConfig {
                    cookie_secure: false,
                    ..WebConfig::default()
                },
                keeper: true,
                decider: true,
                holder: format!("local-{}", std::process::id()),
                group: "twinkle-local".to_owned(),
                topic_prefix: None,
                ownership: None,
                replicate_from: None,
            };
            (opts, true)
        }
        Command::QueueApi(args) => (service(args, Role::QueueApi).await?, false),
        Command::QueueConsumer(args) => (service(args, Role::QueueConsumer).await?, false),
        Command::BookingApi(args) => (service(args, Role::BookingApi).await?, false),
        Command::BookingConsumer(args) => (service(args, Role::BookingConsumer).await?, false),
        Command::Booking(command) => return booking_cli::run(command).await,
    };
    let first_event = opts
        .events
        .first()
        .map(|e| e.id.to_string())
        .unwrap_or_default();
    let running = runtime::start(opts).await?;
    if banner {
        println!("Twinkle Ticket local stack: http://{}/", running.addr);
        println!(
            "  event {first_event}: http://{}/api/events/{first_event}",
            running.addr
        );
        println!(
            "  API description: http://{}/api/openapi.json",
            running.addr
        );
    }
    tracing::info!(addr = %running.addr, "serving");
    twinkle_workloads::shutdown::signal().await;
    running.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report

    use super::*;

    const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo-event.yaml");

    #[test]
    fn reads_a_ticket_event_manifest_and_a_plain_config() {
        let event = load_event(&PathBuf::from(DEMO)).unwrap();
        assert_eq!(event.id.as_str(), "winter-popup");
        assert_eq!(event.slots.len(), 4);

        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(parse_event(&json).unwrap(), event);
    }

    #[test]
    fn lease_identity_defaults_to_host_and_pid() {
        let holder = default_holder();
        assert!(
            holder.ends_with(&format!("-{}", std::process::id())),
            "{holder}"
        );
        assert!(holder.len() > 2, "{holder}");
    }

    #[test]
    fn refuses_other_kinds_and_garbage_clearly() {
        let err = parse_event("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ConfigMap") && err.contains("TicketEvent"),
            "{err}"
        );
        let err = format!("{:#}", parse_event("title: only a title\n").unwrap_err());
        assert!(err.contains("neither a TicketEvent"), "{err}");
        let err = format!(
            "{:#}",
            parse_event("kind: TicketEvent\nspec: {}\n").unwrap_err()
        );
        assert!(err.contains("not a valid TicketEvent manifest"), "{err}");
    }

    /// `twinkle local --event examples/demo-event.yaml` serves that event:
    /// the same load and start `main` does, then the event's API.
    #[tokio::test]
    async fn demo_manifest_is_served() {
        let event = load_event(&PathBuf::from(DEMO)).unwrap();
        let running = runtime::start(RunOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            events: vec![event],
            backends: Backends::Embedded,
            token_secret: vec![7; 32],
            web: WebConfig::default(),
            keeper: true,
            decider: true,
            holder: "test".to_owned(),
            group: "test".to_owned(),
            topic_prefix: None,
            ownership: None,
            replicate_from: None,
        })
        .await
        .unwrap();
        let url = format!("http://{}/api/events/winter-popup", running.addr);
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["id"], "winter-popup", "{body}");
        running.shutdown().await.unwrap();
    }
}
