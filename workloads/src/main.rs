//! `twinkle`: the workloads binary.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "twinkle", version, about = "Twinkle Ticket workloads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process with embedded backends (no Kafka, Redis or cluster).
    Local {
        /// Address to serve the customer pages and API on.
        #[arg(long, env = "TWINKLE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Local { listen } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| twinkle_workloads::Error::Bind {
                    addr: listen,
                    source,
                })?;
            let addr = listener.local_addr().context("reading the bound address")?;
            println!("Twinkle Ticket local stack: http://{addr}/");
            println!(
                "(placeholder: the queue, booking and customer pages arrive with issues #3-#5)"
            );
            axum::serve(listener, twinkle_workloads::web::app())
                .with_graceful_shutdown(twinkle_workloads::shutdown::signal())
                .await
                .map_err(twinkle_workloads::Error::Serve)?;
        }
    }
    Ok(())
}
