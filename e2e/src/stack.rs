//! Where the real servers of the test stack listen, and how to control them.

use std::path::PathBuf;

use crate::{Error, Result};

/// Addresses and tools of the running test stack.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Kafka bootstrap servers (`host:port`): Seoul's cluster.
    pub kafka_bootstrap: String,
    /// Singapore's Kafka cluster, which MirrorMaker 2 replicates the topics
    /// of `dr-*` events into, names kept.
    pub kafka_dr_bootstrap: String,
    /// Redis URL (`redis://host:port`).
    pub redis_url: String,
    /// kubeconfig of the real kube-apiserver (also exported as `KUBECONFIG`).
    pub kubeconfig: PathBuf,
    /// kubectl matching the apiserver's version.
    pub kubectl: PathBuf,
    /// moto's Route53 endpoint (`http://host:port`).
    pub route53_endpoint: String,
    /// The Chromium executable Playwright drives.
    pub chromium: PathBuf,
    /// `node_modules` holding `playwright-core`.
    pub playwright_modules: PathBuf,
    /// `scripts/stack/ctl.sh`: stop, start, restart or kill -9 a server.
    pub ctl: PathBuf,
}

fn var(name: &'static str) -> Result<String> {
    std::env::var(name).map_err(|_| Error::MissingEnv { var: name })
}

impl Stack {
    /// Reads the stack's addresses from the environment.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            kafka_bootstrap: var("TT_KAFKA_BOOTSTRAP")?,
            kafka_dr_bootstrap: var("TT_KAFKA_DR_BOOTSTRAP")?,
            redis_url: var("TT_REDIS_URL")?,
            kubeconfig: var("KUBECONFIG")?.into(),
            kubectl: var("TT_KUBECTL")?.into(),
            route53_endpoint: var("TT_ROUTE53_ENDPOINT")?,
            chromium: var("TT_CHROMIUM")?.into(),
            playwright_modules: var("TT_PLAYWRIGHT_MODULES")?.into(),
            ctl: var("TT_STACK_CTL")?.into(),
        })
    }

    /// Like [`Stack::from_env`], but a missing server is a test failure
    /// with instructions, never a skip.
    pub fn require() -> Self {
        match Self::from_env() {
            Ok(stack) => stack,
            Err(err) => panic!("{err}"),
        }
    }

    /// Runs `ctl.sh <action> <server>` (e.g. `restart redis`, `kill9 kafka`),
    /// waiting until the server is healthy again for start/restart.
    pub async fn ctl(&self, action: &str, server: &str) -> Result<()> {
        run(tokio::process::Command::new(&self.ctl).args([action, server])).await
    }

    /// Runs kubectl against the test apiserver.
    pub async fn kubectl(&self, args: &[&str]) -> Result<String> {
        let mut cmd = tokio::process::Command::new(&self.kubectl);
        cmd.args(args).env("KUBECONFIG", &self.kubeconfig);
        output(&mut cmd).await
    }
}

fn describe(cmd: &tokio::process::Command) -> String {
    let std = cmd.as_std();
    let mut parts = vec![std.get_program().to_string_lossy().into_owned()];
    parts.extend(std.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs a command to completion, whatever its exit status.
pub async fn capture(cmd: &mut tokio::process::Command) -> Result<std::process::Output> {
    let command = describe(cmd);
    cmd.kill_on_drop(true)
        .output()
        .await
        .map_err(|source| Error::Spawn { command, source })
}

/// Runs a command to completion; its stdout on success, a described error otherwise.
pub async fn output(cmd: &mut tokio::process::Command) -> Result<String> {
    let command = describe(cmd);
    let out = capture(cmd).await?;
    if !out.status.success() {
        return Err(Error::Command {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn run(cmd: &mut tokio::process::Command) -> Result<()> {
    output(cmd).await.map(drop)
}

/// A name unique to this test process and call, for topics, zones, keys.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
