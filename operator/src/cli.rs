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
