//! `twinkle-operator`: the TicketEvent controller, DR watchdog and CLI.
//!
//! Today it offers `plan` (what the controller would create, offline). The
//! controller is issue #6, the DR watchdog issue #7; without a subcommand
//! the binary says so instead of pretending to work.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser as _;

use cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Some(Command::Plan(args)) => {
            print!("{}", cli::plan(&args)?);
            Ok(())
        }
        None => anyhow::bail!(
            "the controller is not implemented yet (issue #6: controller, issue #7: DR watchdog); \
             `twinkle-operator plan -f EVENT.yaml` shows what it would create"
        ),
    }
}
