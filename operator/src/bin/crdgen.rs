//! `crdgen`: prints the TicketEvent CRD generated from the Rust types, or
//! with `--write` updates `crds/ticketevent.yaml` (the committed copy that
//! the Helm chart and `kubectl apply` use; a test fails when it drifts).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use twinkle_operator::crd;

#[derive(Debug, Parser)]
#[command(name = "crdgen", about = "Generate the TicketEvent CRD YAML")]
struct Cli {
    /// Write to the repository's crds/ticketevent.yaml instead of stdout.
    #[arg(long, conflicts_with = "output")]
    write: bool,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let yaml = crd::crd_yaml()?;
    let target = if cli.write {
        // The repository root is the operator crate's parent directory.
        let operator = Path::new(env!("CARGO_MANIFEST_DIR"));
        Some(operator.parent().unwrap_or(operator).join(crd::CRD_FILE))
    } else {
        cli.output
    };
    match target {
        Some(path) => {
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{yaml}"),
    }
    Ok(())
}
