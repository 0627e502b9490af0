//! Probing the three targets: the watchdog's own HTTP GET (the primary
//! signal) and, optionally, Route53's health-check status (the second one).

use std::time::{Duration, Instant};

use aws_sdk_route53::Client as Route53Client;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use twinkle_dr::{Observation, Observations, PerTarget, Target, TargetObservation};

use crate::config::WatchdogConfig;
use crate::route53::sdk_error;
use crate::{Error, Result};

/// The outcome of one HTTP probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    pub healthy: bool,
    /// HTTP status, when an answer came back in time.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed, without the URL (it may carry a token).
    pub error: Option<String>,
    /// Route53's health-check verdict, when read.
    pub route53_healthy: Option<bool>,
}

/// All three targets probed at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeRound {
    /// Wall clock, for humans reading `dr status`.
    pub at_unix_ms: u64,
    pub results: PerTarget<ProbeResult>,
}

impl ProbeRound {
    /// What the state machine consumes.
    pub fn observations(&self) -> Observations {
        self.results.map(|_, result| TargetObservation {
            probe: Some(Observation::from(result.healthy)),
            route53: result.route53_healthy.map(Observation::from),
        })
    }
}

/// The probe client: no redirects (a redirect to a login page answering 200
/// is not a healthy ticket service), no connection reuse (each probe pays
/// the TCP and TLS handshake a new customer would, so a listener that stopped
/// accepting is seen at once rather than hidden behind a pooled connection),
/// and the probe timeout on the whole request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("twinkle-dr-watchdog/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::HttpClient)
}

/// GETs one health URL: 2xx within the timeout is healthy; anything else,
/// including no answer, is a failure.
pub async fn probe_http(client: &reqwest::Client, url: &str) -> ProbeResult {
    let started = Instant::now();
    let outcome = client.get(url).send().await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(response) => {
            let status = response.status();
            ProbeResult {
                healthy: status.is_success(),
                status: Some(status.as_u16()),
                latency_ms,
                error: (!status.is_success()).then(|| format!("HTTP {}", status.as_u16())),
                route53_healthy: None,
            }
        }
        Err(error) => ProbeResult {
            healthy: false,
            status: None,
            latency_ms,
            error: Some(describe(error)),
            route53_healthy: None,
        },
    }
}

/// A reqwest error and its innermost cause (e.g. "Connection refused"),
/// with the URL stripped: health URLs may carry tokens and end up in logs.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "request"
    };
    let error = error.without_url();
    let mut root: &dyn std::error::Error = &error;
    while let Some(source) = root.source() {
        root = source;
    }
    let mut text = format!("{kind}: {error}");
    if !std::ptr::addr_eq(root, &error) {
        text.push_str(&format!(": {root}"));
    }
    text.chars().take(300).collect()
}

/// Route53's health-check verdict: Route53 itself calls an endpoint healthy
/// when more than 18% of its checkers report success, so the same rule here.
pub async fn route53_health(client: &Route53Client, health_check_id: &str) -> Result<bool> {
    let output = client
        .get_health_check_status()
        .health_check_id(health_check_id)
        .send()
        .await
        .map_err(|e| sdk_error("GetHealthCheckStatus", e))?;
    let observations = output.health_check_observations();
    let total = observations.len();
    let successes = observations
        .iter()
        .filter(|o| {
            o.status_report()
                .and_then(|r| r.status())
                .is_some_and(|s| s.starts_with("Success"))
        })
        .count();
    Ok(total > 0 && successes * 100 > total * 18)
}

/// Probes all three targets concurrently (and their Route53 health checks
/// when enabled). Never fails: an unreachable target is a result.
pub async fn probe_all(
    config: &WatchdogConfig,
    http: &reqwest::Client,
    route53: &Route53Client,
) -> ProbeRound {
    let at_unix_ms = crate::lease::unix_ms_now();
    let probes = Target::ALL.map(|target| async move {
        let target_config = config.target(target);
        let http_probe = probe_http(http, &target_config.health_url);
        let r53_probe = async {
            match (
                config.probe.route53_health_checks,
                &target_config.health_check_id,
            ) {
                (true, Some(id)) => match route53_health(route53, id).await {
                    Ok(healthy) => Some(healthy),
                    Err(error) => {
                        // No reading is not an unhealthy reading: abstain.
                        tracing::warn!(%target, %error, "Route53 health-check status unavailable");
                        None
                    }
                },
                _ => None,
            }
        };
        let (mut result, route53_healthy) = futures::join!(http_probe, r53_probe);
        result.route53_healthy = route53_healthy;
        result
    });
    let mut results = join_all(probes).await.into_iter();
    let mut next = || {
        results.next().unwrap_or(ProbeResult {
            healthy: false,
            status: None,
            latency_ms: 0,
            error: Some("not probed".to_owned()),
            route53_healthy: None,
        })
    };
    let results = PerTarget {
        primary: next(),
        dr_eks: next(),
        dr_ecs: next(),
    };
    ProbeRound {
        at_unix_ms,
        results,
    }
}
