//! `dr.yaml`: everything one watchdog needs, validated at load time so a bad
//! setting fails on start-up with its field name rather than as a wrong DNS
//! answer during an outage.
//!
//! ```yaml
//! route53:
//!   hostedZoneId: Z0123456789ABCDEFGHIJ
//!   recordName: tickets.example.com
//!   recordType: A            # A or CNAME
//!   ttl: 60
//!   # endpointUrl: http://127.0.0.1:39050   # moto, tests only
//! targets:
//!   primary: { setIdentifier: primary-seoul-eks, values: [192.0.2.10],
//!              healthUrl: "https://seoul.tickets.example.com/healthz",
//!              healthCheckId: 0b7a... }   # optional
//!   drEks:   { setIdentifier: dr-singapore-eks, values: [192.0.2.20],
//!              healthUrl: "https://sg-eks.tickets.example.com/healthz" }
//!   drEcs:   { setIdentifier: dr-singapore-ecs, values: [192.0.2.30],
//!              healthUrl: "https://sg-ecs.tickets.example.com/healthz" }
//! probe: { intervalMs: 5000, timeoutMs: 2000, route53HealthChecks: false }
//! failover: { minStateDwellMs: 60000 }   # twinkle_dr::Config, all optional
//! lease: { durationMs: 30000 }           # record name and holder id default
//! webhooks:
//!   notifyUrl: https://hooks.slack.com/services/...
//!   provisioningUrl: https://provisioner.example.com/standby-eks
//! ```

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use twinkle_dr::{PerTarget, Target};

use crate::{Error, Result};

/// The whole `dr.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchdogConfig {
    pub route53: Route53Config,
    /// The three weighted records, keyed `primary`, `drEks`, `drEcs`.
    pub targets: PerTarget<TargetConfig>,
    #[serde(default)]
    pub probe: ProbeConfig,
    /// The state machine's thresholds and dwells (see `twinkle_dr::Config`).
    #[serde(default)]
    pub failover: twinkle_dr::Config,
    #[serde(default)]
    pub lease: LeaseConfig,
    #[serde(default)]
    pub webhooks: WebhookConfig,
    /// How many probe rounds and transitions `status()` keeps.
    #[serde(default = "defaults::history")]
    pub history: usize,
}

/// Where the weighted records live and how they are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route53Config {
    /// `Z…` (a `/hostedzone/` prefix is accepted and dropped).
    pub hosted_zone_id: String,
    /// The name all three weighted records share. Normalised to lower case
    /// with a trailing dot, the form Route53 lists.
    pub record_name: String,
    pub record_type: RecordType,
    #[serde(default = "defaults::ttl")]
    pub ttl: i64,
    /// Endpoint override (moto in tests); `None` is the real Route53.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Route53 is global and signs in us-east-1.
    #[serde(default = "defaults::region")]
    pub region: String,
    #[serde(default)]
    pub retry: RetryConfig,
    /// How often `GetChange` is polled until INSYNC.
    #[serde(default = "defaults::insync_poll_ms")]
    pub insync_poll_ms: u64,
    /// Give up waiting for INSYNC after this long (the change still applies;
    /// only the confirmation is missing). Real Route53 takes up to a minute.
    #[serde(default = "defaults::insync_timeout_ms")]
    pub insync_timeout_ms: u64,
}

/// Record types a weighted endpoint can have here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RecordType {
    A,
    #[serde(rename = "CNAME")]
    Cname,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Cname => "CNAME",
        }
    }
}

/// Backoff for Route53 calls. Route53 allows five requests per second per
/// account, shared with every other tool, so throttling during an incident
/// is expected rather than exceptional.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetryConfig {
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            min_delay_ms: 200,
            max_delay_ms: 5_000,
            max_retries: 6,
        }
    }
}

/// One weighted record and how to probe what it points at.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetConfig {
    /// Route53 `SetIdentifier`: together with the record name and type, what
    /// makes this record the watchdog's to write.
    pub set_identifier: String,
    /// Record values: IPv4 addresses for A, one host name for CNAME.
    pub values: Vec<String>,
    /// GET; any 2xx within the timeout is healthy.
    pub health_url: String,
    /// Attached to the record (Route53 then also stops answering with it when
    /// unhealthy) and read as the second signal when enabled.
    #[serde(default)]
    pub health_check_id: Option<String>,
}

/// Probe cadence.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProbeConfig {
    pub interval_ms: u64,
    /// Per probe; must be shorter than the interval so rounds never overlap.
    pub timeout_ms: u64,
    /// Also read `GetHealthCheckStatus` for targets with a `healthCheckId`
    /// (three more Route53 calls per round).
    pub route53_health_checks: bool,
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig {
            interval_ms: 5_000,
            timeout_ms: 2_000,
            route53_health_checks: false,
        }
    }
}

impl ProbeConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The TXT-record lease.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// Defaults to `_twinkle-dr-lease.<recordName>`.
    pub record_name: Option<String>,
    /// How long a taken or renewed lease lasts. The holder renews at half
    /// time, so one failed renewal does not lose it.
    pub duration_ms: u64,
    /// Clocks of watchdogs in two regions disagree a little: the holder
    /// stops trusting its lease this long before expiry, and others take it
    /// only this long after.
    pub clock_skew_margin_ms: u64,
    /// Defaults to `<hostname>-<pid>`. Must be unique per running watchdog:
    /// two processes with one id would both believe they hold the lease.
    pub holder_id: Option<String>,
}

impl Default for LeaseConfig {
    fn default() -> LeaseConfig {
        LeaseConfig {
            record_name: None,
            duration_ms: 30_000,
            clock_skew_margin_ms: 1_000,
            holder_id: None,
        }
    }
}

/// Slack-compatible notification and standby provisioning hooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Every transition and alarm, as `{"text": …}`.
    pub notify_url: Option<SecretUrl>,
    /// Called when traffic leaves the primary, to start building the
    /// standby EKS.
    pub provisioning_url: Option<SecretUrl>,
    pub timeout_ms: u64,
    /// Attempts per message (first try included).
    pub attempts: usize,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            notify_url: None,
            provisioning_url: None,
            timeout_ms: 5_000,
            attempts: 4,
        }
    }
}

/// A URL whose path and query are credentials (Slack puts the token in the
/// path): `Debug` and `Display` show only scheme and host, so it can never
/// reach a log line in full.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct SecretUrl(Url);

impl SecretUrl {
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl TryFrom<String> for SecretUrl {
    type Error = String;

    fn try_from(value: String) -> std::result::Result<SecretUrl, String> {
        let url = Url::parse(&value).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("scheme {} is not http(s)", url.scheme()));
        }
        Ok(SecretUrl(url))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({self})")
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}/…",
            self.0.scheme(),
            self.0.host_str().unwrap_or("?")
        )
    }
}

mod defaults {
    pub fn history() -> usize {
        50
    }
    pub fn ttl() -> i64 {
        60
    }
    pub fn region() -> String {
        "us-east-1".to_owned()
    }
    pub fn insync_poll_ms() -> u64 {
        5_000
    }
    pub fn insync_timeout_ms() -> u64 {
        180_000
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `Name.` in lower case: the form Route53 lists names in, so a configured
/// name compares equal to a listed one.
pub fn fqdn(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

fn valid_dns_name(name: &str) -> bool {
    let bare = name.trim_end_matches('.');
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A lease holder id goes inside a TXT value next to `expires=`: no spaces,
/// quotes or `=`.
pub(crate) fn valid_holder_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// `<hostname>-<pid>`: unique per process, and says where to look.
fn default_holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let host = if host.is_empty() {
        "watchdog".to_owned()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

impl WatchdogConfig {
    /// Reads, parses and validates `dr.yaml`.
    pub fn load(path: impl AsRef<Path>) -> Result<WatchdogConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.display().to_string(),
            source,
        })?;
        WatchdogConfig::from_yaml_named(&text, &path.display().to_string())
    }

    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<WatchdogConfig> {
        WatchdogConfig::from_yaml_named(text, "<inline>")
    }

    fn from_yaml_named(text: &str, path: &str) -> Result<WatchdogConfig> {
        let mut config: WatchdogConfig =
            yaml_serde::from_str(text).map_err(|source| Error::ConfigParse {
                path: path.to_owned(),
                source,
            })?;
        config.normalize_and_validate()?;
        Ok(config)
    }

    /// Fills defaults that depend on other fields, normalises names and
    /// refuses settings that cannot work. Call after building a config in
    /// code; [`load`](Self::load) does it already.
    pub fn normalize_and_validate(&mut self) -> Result<()> {
        self.normalize();
        self.validate()
    }

    fn normalize(&mut self) {
        let zone = self.route53.hosted_zone_id.trim();
        self.route53.hosted_zone_id = zone.trim_start_matches("/hostedzone/").to_owned();
        self.route53.record_name = fqdn(&self.route53.record_name);
        let lease_name = self
            .lease
            .record_name
            .as_deref()
            .map(fqdn)
            .unwrap_or_else(|| format!("_twinkle-dr-lease.{}", self.route53.record_name));
        self.lease.record_name = Some(lease_name);
        if self.lease.holder_id.is_none() {
            self.lease.holder_id = Some(default_holder_id());
        }
    }

    fn validate(&self) -> Result<()> {
        let r53 = &self.route53;
        if r53.hosted_zone_id.is_empty() {
            return Err(invalid("route53.hostedZoneId", "must not be empty"));
        }
        if !valid_dns_name(&r53.record_name) {
            return Err(invalid(
                "route53.recordName",
                format!("{:?} is not a DNS name", r53.record_name),
            ));
        }
        if !(0..=2_147_483_647).contains(&r53.ttl) {
            return Err(invalid("route53.ttl", "must be 0..=2147483647 seconds"));
        }
        if r53.retry.min_delay_ms == 0 || r53.retry.min_delay_ms > r53.retry.max_delay_ms {
            return Err(invalid(
                "route53.retry",
                "need 0 < minDelayMs <= maxDelayMs",
            ));
        }
        if r53.insync_poll_ms == 0 {
            return Err(invalid("route53.insyncPollMs", "must be greater than 0"));
        }
        self.validate_targets()?;

        let probe = &self.probe;
        if probe.interval_ms == 0 || probe.timeout_ms == 0 {
            return Err(invalid("probe", "intervalMs and timeoutMs must be > 0"));
        }
        if probe.timeout_ms >= probe.interval_ms {
            return Err(invalid(
                "probe.timeoutMs",
                format!(
                    "{} ms must be shorter than intervalMs ({} ms) so probe rounds never overlap",
                    probe.timeout_ms, probe.interval_ms
                ),
            ));
        }
        self.failover.validate()?;

        let lease = &self.lease;
        if let Some(name) = &lease.record_name
            && (!valid_dns_name(name) || *name == r53.record_name)
        {
            return Err(invalid(
                "lease.recordName",
                format!("{name:?} must be a DNS name other than route53.recordName"),
            ));
        }
        if lease.duration_ms < 3 * probe.interval_ms {
            return Err(invalid(
                "lease.durationMs",
                format!(
                    "{} ms must be at least three probe intervals ({} ms): the holder renews \
                     at half time from the loop",
                    lease.duration_ms,
                    3 * probe.interval_ms
                ),
            ));
        }
        if lease.clock_skew_margin_ms.saturating_mul(4) > lease.duration_ms {
            return Err(invalid(
                "lease.clockSkewMarginMs",
                "must be at most a quarter of durationMs",
            ));
        }
        if let Some(id) = &lease.holder_id
            && !valid_holder_id(id)
        {
            return Err(invalid(
                "lease.holderId",
                format!("{id:?}: use 1-128 of A-Z a-z 0-9 - _ . :"),
            ));
        }
        if self.webhooks.attempts == 0 || self.webhooks.timeout_ms == 0 {
            return Err(invalid("webhooks", "attempts and timeoutMs must be > 0"));
        }
        if self.history == 0 {
            return Err(invalid("history", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_targets(&self) -> Result<()> {
        let mut ids = Vec::new();
        for (target, t) in self.targets.iter() {
            let field = |f: &str| format!("targets.{}.{f}", target_key(target));
            if t.set_identifier.is_empty() || t.set_identifier.len() > 128 {
                return Err(invalid(field("setIdentifier"), "must be 1-128 characters"));
            }
            if ids.contains(&t.set_identifier) {
                return Err(invalid(
                    field("setIdentifier"),
                    format!("{:?} is used by two targets", t.set_identifier),
                ));
            }
            ids.push(t.set_identifier.clone());
            match self.route53.record_type {
                RecordType::A => {
                    if t.values.is_empty() {
                        return Err(invalid(field("values"), "needs at least one IPv4 address"));
                    }
                    if let Some(bad) = t.values.iter().find(|v| v.parse::<Ipv4Addr>().is_err()) {
                        return Err(invalid(
                            field("values"),
                            format!("{bad:?} is not an IPv4 address (record type A)"),
                        ));
                    }
                }
                RecordType::Cname => {
                    let host_name =
                        |v: &String| valid_dns_name(v) && v.parse::<Ipv4Addr>().is_err();
                    if t.values.len() != 1 || !t.values.iter().all(host_name) {
                        return Err(invalid(
                            field("values"),
                            "a CNAME record needs exactly one host name (not an address)",
                        ));
                    }
                }
            }
            match Url::parse(&t.health_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => {
                    return Err(invalid(
                        field("healthUrl"),
                        format!("{:?} is not an http(s) URL", t.health_url),
                    ));
                }
            }
            if t.health_check_id.as_deref() == Some("") {
                return Err(invalid(field("healthCheckId"), "must not be empty"));
            }
        }
        Ok(())
    }

    /// The lease TXT record's name (normalised, defaulted).
    pub fn lease_record_name(&self) -> String {
        self.lease
            .record_name
            .clone()
            .unwrap_or_else(|| format!("_twinkle-dr-lease.{}", self.route53.record_name))
    }

    /// The ownership TXT record's name: `_twinkle-dr-owner.<recordName>`.
    pub fn owner_record_name(&self) -> String {
        twinkle_dr::Ownership::record_name(&self.route53.record_name)
    }

    /// This process's lease holder id (configured or defaulted).
    pub fn holder_id(&self) -> String {
        self.lease
            .holder_id
            .clone()
            .unwrap_or_else(default_holder_id)
    }

    pub fn target(&self, target: Target) -> &TargetConfig {
        &self.targets[target]
    }
}

/// The YAML key of a target, for error messages.
pub fn target_key(target: Target) -> &'static str {
    match target {
        Target::Primary => "primary",
        Target::DrEks => "drEks",
        Target::DrEcs => "drEcs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
route53:
  hostedZoneId: /hostedzone/Z0123
  recordName: Tickets.Example.com
  recordType: A
targets:
  primary: { setIdentifier: primary-seoul-eks, values: [192.0.2.10],
             healthUrl: "https://seoul.example.com/healthz", healthCheckId: hc-1 }
  drEks: { setIdentifier: dr-singapore-eks, values: [192.0.2.20],
           healthUrl: "https://sg-eks.example.com/healthz" }
  drEcs: { setIdentifier: dr-singapore-ecs, values: [192.0.2.30, 192.0.2.31],
           healthUrl: "http://sg-ecs.example.com/healthz" }
failover:
  minStateDwellMs: 2000
lease:
  holderId: watchdog-a
webhooks:
  notifyUrl: https://hooks.slack.com/services/T000/B000/very-secret-token
"#;

    fn with(replace: &str, by: &str) -> Result<WatchdogConfig> {
        assert!(EXAMPLE.contains(replace), "fixture lacks {replace:?}");
        WatchdogConfig::from_yaml(&EXAMPLE.replace(replace, by))
    }

    fn field_of(result: Result<WatchdogConfig>) -> String {
        match result {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn example_parses_with_defaults_and_normalised_names() {
        let config = WatchdogConfig::from_yaml(EXAMPLE).unwrap();
        assert_eq!(config.route53.hosted_zone_id, "Z0123");
        assert_eq!(config.route53.record_name, "tickets.example.com.");
        assert_eq!(config.route53.ttl, 60);
        assert_eq!(
            config.lease_record_name(),
            "_twinkle-dr-lease.tickets.example.com."
        );
        assert_eq!(config.holder_id(), "watchdog-a");
        assert_eq!(config.failover.min_state_dwell_ms.as_millis(), 2000);
        assert_eq!(config.failover.probe.failures_to_down, 3);
        assert_eq!(config.probe.interval_ms, 5000);
        assert_eq!(config.targets.dr_ecs.values.len(), 2);
        assert_eq!(
            config.targets.primary.health_check_id.as_deref(),
            Some("hc-1")
        );
    }

    #[test]
    fn default_holder_id_is_host_and_pid() {
        let config =
            WatchdogConfig::from_yaml(&EXAMPLE.replace("  holderId: watchdog-a\n", "")).unwrap();
        let id = config.holder_id();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        assert!(valid_holder_id(&id), "{id}");
    }

    #[test]
    fn webhook_urls_never_print_their_secret() {
        let config = WatchdogConfig::from_yaml(EXAMPLE).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("very-secret-token"), "{printed}");
        assert!(printed.contains("hooks.slack.com"));
    }

    #[test]
    fn bad_settings_name_their_field() {
        assert_eq!(
            field_of(with("values: [192.0.2.20]", "values: [sg.example.com]")),
            "targets.drEks.values"
        );
        assert_eq!(
            field_of(with(
                "setIdentifier: dr-singapore-ecs",
                "setIdentifier: dr-singapore-eks"
            )),
            "targets.drEcs.setIdentifier"
        );
        assert_eq!(
            field_of(with(
                "\"https://seoul.example.com/healthz\"",
                "seoul/healthz"
            )),
            "targets.primary.healthUrl"
        );
        assert_eq!(
            field_of(with(
                "lease:\n",
                "probe: { intervalMs: 1000, timeoutMs: 1000 }\nlease:\n"
            )),
            "probe.timeoutMs"
        );
        assert_eq!(
            field_of(with("  holderId: watchdog-a", "  holderId: \"a b\"")),
            "lease.holderId"
        );
        assert_eq!(
            field_of(with("  holderId: watchdog-a", "  durationMs: 5000")),
            "lease.durationMs"
        );
        assert_eq!(
            field_of(with("recordType: A", "recordType: CNAME")),
            "targets.primary.values"
        );
    }

    #[test]
    fn machine_config_errors_and_typos_are_refused() {
        let zero = with("minStateDwellMs: 2000", "minStateDwellMs: 0").unwrap_err();
        assert!(matches!(zero, Error::Machine(_)), "{zero:?}");
        let typo = with("minStateDwellMs: 2000", "minDwellMs: 2000").unwrap_err();
        assert!(matches!(typo, Error::ConfigParse { .. }), "{typo:?}");
        assert!(typo.to_string().contains("minDwellMs"), "{typo}");
        let scheme = with("notifyUrl: https://", "notifyUrl: ftp://").unwrap_err();
        assert!(scheme.to_string().contains("ftp"), "{scheme}");
    }

    #[test]
    fn a_fourth_target_is_refused_not_ignored() {
        let fourth = with(
            "targets:\n",
            "targets:\n  drGke: { setIdentifier: dr-gke, values: [192.0.2.40], healthUrl: \"https://gke.example.com/healthz\" }\n",
        )
        .unwrap_err();
        assert!(matches!(fourth, Error::ConfigParse { .. }), "{fourth:?}");
        assert!(fourth.to_string().contains("drGke"), "{fourth}");
    }
}
