//! Tuning of the failover machine: every threshold and dwell it obeys.
//!
//! Defaults favour not flapping over reacting fast: a false failover moves a
//! ticket rush to a smaller standby, which costs more than 30 extra seconds of
//! errors from a primary that is really down.

use serde::{Deserialize, Serialize};

use crate::time::Millis;
use crate::{Error, Result};

/// Consecutive-observation thresholds for one health signal. Separate counts
/// for each edge: trusting a target again should take at least as much
/// evidence as distrusting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hysteresis {
    /// Consecutive unhealthy observations before a target counts as down.
    pub failures_to_down: u32,
    /// Consecutive healthy observations before a target counts as up again.
    pub successes_to_up: u32,
}

/// How the watchdog's own probe and the Route53 health check combine into
/// one verdict per target. A signal with no observations yet abstains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignalPolicy {
    /// Only the watchdog's probes count; Route53 status is ignored.
    #[default]
    ProbeOnly,
    /// Down if either signal says down: the cautious choice when both
    /// observers are trusted.
    EitherDown,
    /// Down only if both say down (or the only one voting does): tolerates one
    /// observer being cut off, e.g. the watchdog's own network partitioned.
    BothDown,
}

/// Whether traffic returns to the primary without a human.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailbackPolicy {
    /// Only an operator's `FailbackToPrimary` (or override) returns traffic:
    /// a region that just failed is not trusted by a probe alone.
    #[default]
    Manual,
    /// Return once the primary has stayed up for `automaticFailbackAfterMs`.
    Automatic,
}

/// Configuration of [`crate::FailoverMachine`]. Every field has a default, so
/// `{}` is a valid JSON/YAML config; unknown fields are refused so a typo is
/// not silently a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    /// Thresholds for the watchdog's own probes (counts of probes).
    /// Default: down after 3 failures, up after 5 successes.
    pub probe: Hysteresis,
    /// Thresholds for Route53 health-check status readings (counts of
    /// readings). Route53 already applies its own failure threshold, so
    /// these are lower. Default: 2 and 2.
    pub route53: Hysteresis,
    /// How probe and Route53 verdicts combine. Default: `probeOnly`.
    pub signals: SignalPolicy,
    /// Minimum time in a state (milliseconds) before any transition that is
    /// an improvement rather than an escape from a down target. Must be > 0.
    /// Default: 60 000 (1 minute).
    pub min_state_dwell_ms: Millis,
    /// How long (milliseconds) DR EKS must have stayed up before it gets a
    /// share (0/50/50). Default: 120 000 (2 minutes).
    pub dr_eks_split_after_ms: Millis,
    /// How long (milliseconds) the 0/50/50 split must have run before DR EKS
    /// takes everything (0/100/0). Default: 300 000 (5 minutes).
    pub dr_eks_full_after_ms: Millis,
    /// Failback to the primary policy. Default: `manual`.
    pub failback: FailbackPolicy,
    /// With `automatic` failback: how long (milliseconds) the primary must
    /// have stayed up before traffic returns to it. Must be > 0 then.
    /// Default: 900 000 (15 minutes).
    pub automatic_failback_after_ms: Millis,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            probe: Hysteresis {
                failures_to_down: 3,
                successes_to_up: 5,
            },
            route53: Hysteresis {
                failures_to_down: 2,
                successes_to_up: 2,
            },
            signals: SignalPolicy::ProbeOnly,
            min_state_dwell_ms: Millis::from_mins(1),
            dr_eks_split_after_ms: Millis::from_mins(2),
            dr_eks_full_after_ms: Millis::from_mins(5),
            failback: FailbackPolicy::Manual,
            automatic_failback_after_ms: Millis::from_mins(15),
        }
    }
}

impl Config {
    /// Refuses settings that would defeat the hysteresis or the dwell, so a
    /// bad config fails at load time rather than as a flapping DNS record.
    pub fn validate(&self) -> Result<()> {
        let thresholds = [
            ("probe.failuresToDown", self.probe.failures_to_down),
            ("probe.successesToUp", self.probe.successes_to_up),
            ("route53.failuresToDown", self.route53.failures_to_down),
            ("route53.successesToUp", self.route53.successes_to_up),
        ];
        if let Some((field, _)) = thresholds.iter().find(|(_, value)| *value == 0) {
            return Err(Error::ZeroThreshold { field });
        }
        // Zero dwell would let weights change on every step; the machine
        // also relies on it to make at most one automatic move per step.
        if self.min_state_dwell_ms == Millis::ZERO {
            return Err(Error::ZeroDuration {
                field: "minStateDwellMs",
            });
        }
        if self.failback == FailbackPolicy::Automatic
            && self.automatic_failback_after_ms == Millis::ZERO
        {
            return Err(Error::ZeroDuration {
                field: "automaticFailbackAfterMs",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_manual() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.failback, FailbackPolicy::Manual);
        assert_eq!(config.signals, SignalPolicy::ProbeOnly);
    }

    #[test]
    fn empty_json_is_the_default_config() {
        let config: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn json_uses_camel_case_and_refuses_unknown_fields() {
        let config: Config = serde_json::from_str(
            r#"{"probe": {"failuresToDown": 2, "successesToUp": 4},
                "failback": "automatic", "automaticFailbackAfterMs": 5000,
                "signals": "eitherDown"}"#,
        )
        .unwrap();
        assert_eq!(config.probe.failures_to_down, 2);
        assert_eq!(config.failback, FailbackPolicy::Automatic);
        assert_eq!(config.automatic_failback_after_ms, Millis(5000));
        assert_eq!(config.signals, SignalPolicy::EitherDown);

        let typo = serde_json::from_str::<Config>(r#"{"minDwellMs": 1}"#);
        assert!(typo.is_err(), "unknown field accepted: {typo:?}");
    }

    #[test]
    fn zero_thresholds_are_refused_with_the_field_name() {
        let mut config = Config::default();
        config.probe.failures_to_down = 0;
        assert!(matches!(
            config.validate(),
            Err(Error::ZeroThreshold {
                field: "probe.failuresToDown"
            })
        ));

        let mut config = Config::default();
        config.route53.successes_to_up = 0;
        let error = config.validate().unwrap_err();
        assert!(matches!(
            error,
            Error::ZeroThreshold {
                field: "route53.successesToUp"
            }
        ));
        assert!(error.to_string().contains("route53.successesToUp"));
    }

    #[test]
    fn zero_dwell_is_refused() {
        let config = Config {
            min_state_dwell_ms: Millis::ZERO,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::ZeroDuration {
                field: "minStateDwellMs"
            })
        ));
    }

    #[test]
    fn zero_failback_time_is_refused_only_when_automatic() {
        let manual = Config {
            automatic_failback_after_ms: Millis::ZERO,
            ..Config::default()
        };
        manual.validate().unwrap();

        let automatic = Config {
            failback: FailbackPolicy::Automatic,
            ..manual
        };
        assert!(matches!(
            automatic.validate(),
            Err(Error::ZeroDuration {
                field: "automaticFailbackAfterMs"
            })
        ));
    }
}
