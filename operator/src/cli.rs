//! Command-line interface of `twinkle-operator`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use twinkle_operator::plan::{self, Plan};

#[derive(Debug, Parser)]
#[command(name = "twinkle-operator", version, about = "Twinkle Ticket operator")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what the operator would create for a TicketEvent manifest:
    /// topics, replicas per workload and why, initial DNS weights. Reads the
    /// file only; no cluster needed.
    Plan(PlanArgs),
    /// Run the TicketEvent controller (only while holding the leader Lease).
    Run(RunArgs),
    /// The DR watchdog (SPEC §4): `dr watch` runs it standalone (no
    /// Kubernetes needed, e.g. on ECS in Singapore); `dr status`,
    /// `dr failover --to …`, `dr failback` and `dr clear-override` are
    /// one-shot commands recorded as manual.
    Dr {
        #[command(subcommand)]
        command: twinkle_operator::dr_cli::DrCommand,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The `twinkle` workloads image the Deployments run.
    #[arg(long, env = "TWINKLE_WORKLOAD_IMAGE")]
    pub workload_image: String,
    /// Secret (in each event's namespace) holding the token signing key.
    #[arg(long, env = "TWINKLE_TOKEN_SECRET", default_value = "twinkle-token")]
    pub token_secret: String,
    /// Key of that Secret.
    #[arg(long, env = "TWINKLE_TOKEN_SECRET_KEY", default_value = "secret")]
    pub token_secret_key: String,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "TWINKLE_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// This cluster's region in a DR pair (`primary` in Seoul, `dr` in
    /// Singapore): the queue keepers and deciders of events with a `dr`
    /// section write only while its ownership record names this region.
    /// Unset: the only region, always writing.
    #[arg(long, env = "TWINKLE_SELL_REGION", value_parser = parse_region)]
    pub sell_region: Option<twinkle_dr::Region>,
    /// Service account the event's workload pods run as (in a DR pair, its
    /// IAM role reads the ownership record). Unset: the namespace's default.
    #[arg(long, env = "TWINKLE_WORKLOAD_SERVICE_ACCOUNT")]
    pub workload_service_account: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "TWINKLE_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: std::net::SocketAddr,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, env = "TWINKLE_LEASE", default_value = "twinkle-operator")]
    pub lease: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME", default_value = "twinkle-operator")]
    pub identity: String,
    /// Seconds of Kafka being unreachable during deletion after which the
    /// finalizer gives up on the topics (with a Warning Event).
    #[arg(long, env = "TWINKLE_DELETE_GIVE_UP_SECS", default_value_t = 300)]
    pub delete_give_up_secs: u64,
    /// Seconds between reconciles while something is converging.
    #[arg(long, env = "TWINKLE_POLL_SECS", default_value_t = 5)]
    pub poll_secs: u64,
    /// Log as JSON lines.
    #[arg(long, env = "TWINKLE_LOG_JSON")]
    pub log_json: bool,
}

fn parse_region(name: &str) -> Result<twinkle_dr::Region, String> {
    twinkle_dr::Region::parse(name)
        .ok_or_else(|| format!("{name:?} is not a region: primary or dr"))
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The TicketEvent manifest (YAML or JSON); `-` reads stdin.
    #[arg(short = 'f', long = "filename", env = "TWINKLE_EVENT_FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short, long, env = "TWINKLE_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Namespace for a manifest that names none (as `kubectl apply -n`).
    #[arg(short, long, env = "TWINKLE_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Evaluate the sale window at this instant (RFC 3339) instead of now.
    #[arg(long)]
    pub at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable tables.
    Table,
    Json,
    Yaml,
}

/// Runs `plan`, returning what to print.
pub fn plan(args: &PlanArgs) -> anyhow::Result<String> {
    let event = plan::load(&args.file)?;
    let plan = Plan::new(
        &event,
        &args.namespace,
        args.at.unwrap_or_else(Timestamp::now),
    )?;
    Ok(match args.output {
        Output::Table => plan::table(&plan),
        Output::Json => {
            let mut json = serde_json::to_string_pretty(&plan).context("serializing the plan")?;
            json.push('\n');
            json
        }
        Output::Yaml => yaml_serde::to_string(&plan).context("serializing the plan")?,
    })
}
