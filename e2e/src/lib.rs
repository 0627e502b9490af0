//! Shared helpers for tests that run against the real servers started by
//! `scripts/test.sh` (see `scripts/stack/`).
//!
//! The stack publishes where each server listens through environment
//! variables (`$TT_RUN/env.sh`). A test that needs a server and does not find
//! it fails with instructions: it never skips.
#![forbid(unsafe_code)]

pub mod kube_schemas;
pub mod kubelet;
pub mod route53;
pub mod stack;

/// Errors of the test helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{var} is not set: the real test servers are not running. Run `scripts/test.sh`, \
         or `scripts/stack/up.sh` and `source ~/.cache/twinkle-ticket/run/env.sh`"
    )]
    MissingEnv { var: &'static str },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
