//! `twinkle-operator`: the TicketEvent controller, DR watchdog and CLI.
//!
//! Not built yet: the controller is issue #6, the DR watchdog issue #7. This
//! binary exists so the workspace layout, images and chart have a target; it
//! refuses to pretend to work.
#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "twinkle-operator", version, about = "Twinkle Ticket operator")]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    anyhow::bail!(
        "the operator is not implemented yet (issue #6: controller, issue #7: DR watchdog)"
    )
}
