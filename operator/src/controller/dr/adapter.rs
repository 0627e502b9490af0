//! From a TicketEvent's `spec.dr` to the watchdog's config (the same
//! structure `dr.yaml` describes, see `watchdog/src/config.rs`), and from
//! its override and mode to the pin the operator keeps on the machine.
//!
//! Pure: no I/O, so every mapping rule is unit-tested. What the resource
//! does not carry comes from the operator's environment ([`DrEnv`]):
//! the Route53 endpoint override and webhook URLs. Credentials never come
//! from the resource; the AWS SDK's default chain (IRSA, the standard
//! `AWS_*` variables) provides them, as for `twinkle-operator dr watch`.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::json;
use twinkle_crd::{Dr, DrMode, DrTarget, FailbackPolicy, Weights as CrdWeights};
use twinkle_dr::{Hysteresis, Millis, PerTarget, RouteState, Target};
use twinkle_watchdog::WatchdogConfig;

/// Route53 set identifiers of the three weighted records: the names the
/// plan shows and Terraform's `route53-dr` module creates.
pub const SET_IDENTIFIERS: PerTarget<&str> = PerTarget {
    primary: "primary",
    dr_eks: "dr-eks",
    dr_ecs: "dr-ecs",
};

/// The shortest lease the in-cluster watchdogs take. Long enough that a
/// slow Route53 renewal never loses it; a graceful stop (deletion,
/// leadership change) releases it at once anyway.
const MIN_LEASE: Duration = Duration::from_secs(30);

/// What the operator's environment adds to every event's watchdog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrEnv {
    /// Route53 endpoint override (`TWINKLE_ROUTE53_ENDPOINT`; moto in
    /// tests). `None`: the real Route53 (or the SDK's own
    /// `AWS_ENDPOINT_URL_ROUTE_53`).
    pub route53_endpoint: Option<String>,
    /// This operator replica (`POD_NAME`): part of every lease holder id,
    /// so the TXT lease says which pod writes.
    pub identity: String,
    /// Slack-compatible webhook for transitions and alarms
    /// (`TWINKLE_DR_NOTIFY_URL`; its path is a credential, so it comes from
    /// the environment, i.e. a Secret, never from the resource).
    pub notify_url: Option<String>,
    /// Called when traffic leaves the primary, to build the standby EKS
    /// (`TWINKLE_DR_PROVISIONING_URL`).
    pub provisioning_url: Option<String>,
}

impl DrEnv {
    pub fn from_env() -> DrEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        DrEnv {
            route53_endpoint: var("TWINKLE_ROUTE53_ENDPOINT"),
            identity: var("POD_NAME")
                .or_else(|| var("HOSTNAME"))
                .unwrap_or_else(|| "twinkle-operator".to_owned()),
            notify_url: var("TWINKLE_DR_NOTIFY_URL"),
            provisioning_url: var("TWINKLE_DR_PROVISIONING_URL"),
        }
    }
}

/// Why a `spec.dr` cannot become a watchdog config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn threshold(value: i32, field: &str) -> Result<u32, AdapterError> {
    u32::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| AdapterError(format!("spec.dr.probe.{field} must be at least 1")))
}

/// `A` when every endpoint is an IPv4 address, `CNAME` when none is: the
/// three weighted records share one name and so one type.
fn record_type(targets: &PerTarget<&DrTarget>) -> Result<&'static str, AdapterError> {
    let ipv4 = |t: &DrTarget| t.endpoint.parse::<Ipv4Addr>().is_ok();
    let count = targets.iter().filter(|(_, t)| ipv4(t)).count();
    match count {
        3 => Ok("A"),
        0 => Ok("CNAME"),
        _ => Err(AdapterError(
            "spec.dr.targets: endpoints must be all IPv4 addresses (A records) or all host names \
             (CNAME records): the three weighted records share one name and type"
                .to_owned(),
        )),
    }
}

/// The lease holder id of this replica's watchdog for one event:
/// `<identity>:<namespace>.<name>`, limited to the characters and length a
/// lease record allows. Stable across restarts of the same pod, so a
/// restarted operator takes back its own lease at once.
pub fn holder_id(identity: &str, namespace: &str, name: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut id = format!("{}:{}.{}", clean(identity), clean(namespace), clean(name));
    id.truncate(128);
    id
}

/// The watchdog config for one event's `spec.dr`, validated.
pub fn from_resource(
    namespace: &str,
    name: &str,
    dr: &Dr,
    env: &DrEnv,
) -> Result<WatchdogConfig, AdapterError> {
    let targets = PerTarget {
        primary: &dr.targets.primary,
        dr_eks: &dr.targets.dr_eks,
        dr_ecs: &dr.targets.dr_ecs,
    };
    let record_type = record_type(&targets)?;
    let probe = &dr.probe;
    let interval_ms = millis(probe.interval.get());
    // The resource allows timeout == interval; the watchdog wants rounds
    // that cannot overlap, so the timeout ends a millisecond earlier.
    let timeout_ms = millis(probe.timeout.get()).min(interval_ms.saturating_sub(1));
    let dwell = Millis(millis(probe.min_dwell.get()));
    let failover = twinkle_dr::Config {
        probe: Hysteresis {
            failures_to_down: threshold(probe.failure_threshold, "failureThreshold")?,
            successes_to_up: threshold(probe.success_threshold, "successThreshold")?,
        },
        min_state_dwell_ms: dwell,
        failback: match dr.failback_policy {
            FailbackPolicy::Manual => twinkle_dr::FailbackPolicy::Manual,
            FailbackPolicy::Automatic => twinkle_dr::FailbackPolicy::Automatic,
        },
        // "Automatic: it returns after the primary stays healthy for
        // probe.minDwell" (the resource's documentation).
        automatic_failback_after_ms: dwell,
        // Ramp dwells (DR EKS sharing, then taking everything) are not in
        // the resource: the machine's defaults (2 and 5 minutes).
        ..twinkle_dr::Config::default()
    };
    let target = |t: Target| {
        json!({
            "setIdentifier": SET_IDENTIFIERS[t],
            "values": [targets[t].endpoint],
            "healthUrl": targets[t].health_url,
        })
    };
    let mut webhooks = serde_json::Map::new();
    if let Some(url) = &env.notify_url {
        webhooks.insert("notifyUrl".into(), json!(url));
    }
    if let Some(url) = &env.provisioning_url {
        webhooks.insert("provisioningUrl".into(), json!(url));
    }
    // Built as the dr.yaml document and parsed, so every field the
    // resource does not set keeps the watchdog's own default.
    let document = json!({
        "route53": {
            "hostedZoneId": dr.hosted_zone_id,
            "recordName": dr.record_name,
            "recordType": record_type,
            "ttl": dr.ttl,
            "endpointUrl": env.route53_endpoint,
        },
        "targets": {
            "primary": target(Target::Primary),
            "drEks": target(Target::DrEks),
            "drEcs": target(Target::DrEcs),
        },
        "probe": { "intervalMs": interval_ms, "timeoutMs": timeout_ms },
        "failover": failover,
        "lease": {
            "durationMs": millis(MIN_LEASE).max(interval_ms.saturating_mul(3)),
            "holderId": holder_id(&env.identity, namespace, name),
        },
        "webhooks": webhooks,
    });
    let mut config: WatchdogConfig =
        serde_json::from_value(document).map_err(|e| AdapterError(format!("spec.dr: {e}")))?;
    config
        .normalize_and_validate()
        .map_err(|e| AdapterError(format!("spec.dr: {e}")))?;
    Ok(config)
}

/// What the resource asks of the routing, beyond automatic control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// Automatic mode, no override: the machine decides.
    None,
    /// manualOverride with a single positive weight: pin that target.
    Target(Target),
    /// Manual mode without an override: "the watchdog only reports", so the
    /// weights stay where they are — the current target is pinned (the
    /// only way the state machine holds still).
    HoldCurrent,
    /// manualOverride splitting traffic over several targets: the state
    /// machine only pins one target, so this is reported, not applied.
    Unsupported(CrdWeights),
}

/// The pin `spec.dr` asks for.
pub fn desired_pin(dr: &Dr) -> Pin {
    match (dr.manual_override, dr.mode) {
        (Some(w), _) => {
            let positive: Vec<Target> = [
                (Target::Primary, w.primary),
                (Target::DrEks, w.dr_eks),
                (Target::DrEcs, w.dr_ecs),
            ]
            .into_iter()
            .filter(|(_, weight)| *weight > 0)
            .map(|(t, _)| t)
            .collect();
            match positive.as_slice() {
                [one] => Pin::Target(*one),
                _ => Pin::Unsupported(w),
            }
        }
        (None, DrMode::Manual) => Pin::HoldCurrent,
        (None, DrMode::Automatic) => Pin::None,
    }
}

/// The single target these weights send everything to, if any.
pub fn sole_target(weights: twinkle_dr::Weights) -> Option<Target> {
    let mut serving = weights.serving();
    match (serving.next(), serving.next()) {
        (Some(t), None) => Some(t),
        _ => None,
    }
}

/// The command that brings the machine (now in `state`) to what `pin`
/// asks, given the target the operator pinned earlier (`applied`).
/// `None`: nothing to do. Only a pin the operator made is ever cleared: an
/// on-call's `dr failover` from the CLI stands until they clear it.
pub fn pin_command(
    pin: Pin,
    applied: Option<Target>,
    state: RouteState,
) -> Option<twinkle_dr::Command> {
    use twinkle_dr::Command;
    match pin {
        Pin::Target(target) if state.pinned_target() != Some(target) => {
            Some(Command::FailoverTo { target })
        }
        Pin::Target(_) => None,
        Pin::HoldCurrent if state.pinned_target().is_some() => None,
        Pin::HoldCurrent => {
            sole_target(state.weights()).map(|target| Command::FailoverTo { target })
        }
        Pin::None | Pin::Unsupported(_) => match (applied, state.pinned_target()) {
            (Some(ours), Some(pinned)) if ours == pinned => Some(Command::ClearOverride),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinkle_crd::TicketEvent;
    use twinkle_watchdog::config::RecordType;

    fn dr() -> Dr {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/demo-event.yaml"
        ))
        .unwrap();
        let te: TicketEvent = yaml_serde::from_str(&text).unwrap();
        te.spec.dr.unwrap()
    }

    fn env() -> DrEnv {
        DrEnv {
            route53_endpoint: Some("http://127.0.0.1:39050".into()),
            identity: "twinkle-operator-7f9c/0".into(),
            notify_url: None,
            provisioning_url: None,
        }
    }

    #[test]
    fn example_maps_field_by_field() {
        let c = from_resource("popup", "winter-popup", &dr(), &env()).unwrap();
        assert_eq!(c.route53.hosted_zone_id, "Z0123456789ABCDEFGHIJ");
        assert_eq!(c.route53.record_name, "tickets.twinkle.example.");
        assert_eq!(c.route53.record_type, RecordType::Cname);
        assert_eq!(c.route53.ttl, 60);
        assert_eq!(
            c.route53.endpoint_url.as_deref(),
            Some("http://127.0.0.1:39050")
        );
        assert_eq!(c.route53.region, "us-east-1");
        assert_eq!(c.targets.primary.set_identifier, "primary");
        assert_eq!(c.targets.dr_eks.set_identifier, "dr-eks");
        assert_eq!(c.targets.dr_ecs.set_identifier, "dr-ecs");
        assert_eq!(
            c.targets.dr_ecs.values,
            ["singapore-ecs-alb.twinkle.example"]
        );
        assert_eq!(
            c.targets.primary.health_url,
            "https://seoul-ingress.twinkle.example/readyz"
        );
        assert_eq!(c.targets.primary.health_check_id, None);
        assert_eq!((c.probe.interval_ms, c.probe.timeout_ms), (10_000, 3_000));
        assert!(!c.probe.route53_health_checks);
        let f = &c.failover;
        assert_eq!((f.probe.failures_to_down, f.probe.successes_to_up), (3, 3));
        assert_eq!(f.min_state_dwell_ms, Millis::from_mins(5));
        assert_eq!(f.failback, twinkle_dr::FailbackPolicy::Manual);
        assert_eq!(f.dr_eks_split_after_ms, Millis::from_mins(2));
        assert_eq!(c.lease.duration_ms, 30_000);
        assert_eq!(c.holder_id(), "twinkle-operator-7f9c-0:popup.winter-popup");
        assert_eq!(
            c.lease_record_name(),
            "_twinkle-dr-lease.tickets.twinkle.example."
        );
        assert!(c.webhooks.notify_url.is_none());
    }

    #[test]
    fn addresses_make_a_records_and_mixed_endpoints_are_refused() {
        let mut d = dr();
        d.targets.primary.endpoint = "192.0.2.10".into();
        d.targets.dr_eks.endpoint = "192.0.2.20".into();
        d.targets.dr_ecs.endpoint = "192.0.2.30".into();
        let c = from_resource("ns", "e", &d, &env()).unwrap();
        assert_eq!(c.route53.record_type, RecordType::A);
        assert_eq!(c.targets.dr_eks.values, ["192.0.2.20"]);

        d.targets.dr_ecs.endpoint = "alb.example.com".into();
        let e = from_resource("ns", "e", &d, &env()).unwrap_err();
        assert!(e.0.contains("all IPv4 addresses"), "{e}");
    }

    #[test]
    fn probe_timings_failback_and_lease_follow_the_resource() {
        let mut d = dr();
        d.probe.interval = "20s".parse().unwrap();
        d.probe.timeout = "20s".parse().unwrap();
        d.probe.failure_threshold = 2;
        d.probe.min_dwell = "90s".parse().unwrap();
        d.failback_policy = FailbackPolicy::Automatic;
        let c = from_resource("ns", "e", &d, &env()).unwrap();
        // Equal timeout and interval (allowed by the CRD) end 1 ms early.
        assert_eq!((c.probe.interval_ms, c.probe.timeout_ms), (20_000, 19_999));
        assert_eq!(c.failover.probe.failures_to_down, 2);
        assert_eq!(c.failover.failback, twinkle_dr::FailbackPolicy::Automatic);
        assert_eq!(c.failover.automatic_failback_after_ms, Millis(90_000));
        // Three probe intervals when that is longer than the minimum.
        assert_eq!(c.lease.duration_ms, 60_000);
    }

    #[test]
    fn webhooks_come_from_the_environment_only() {
        let mut e = env();
        e.notify_url = Some("https://hooks.slack.com/services/T/B/secret".into());
        let c = from_resource("ns", "e", &dr(), &e).unwrap();
        let shown = format!("{:?}", c.webhooks.notify_url);
        assert!(shown.contains("hooks.slack.com") && !shown.contains("secret"));
        e.notify_url = Some("ftp://nope".into());
        assert!(from_resource("ns", "e", &dr(), &e).is_err());
    }

    #[test]
    fn invalid_values_the_api_server_would_refuse_are_errors_not_panics() {
        let mut d = dr();
        d.probe.success_threshold = 0;
        let e = from_resource("ns", "e", &d, &env()).unwrap_err();
        assert!(e.0.contains("successThreshold"), "{e}");
        let mut d = dr();
        d.probe.min_dwell = "0s".parse().unwrap();
        assert!(from_resource("ns", "e", &d, &env()).is_err());
    }

    #[test]
    fn holder_ids_are_lease_safe() {
        assert_eq!(holder_id("pod a", "ns", "n"), "pod-a:ns.n");
        let long = "x".repeat(300);
        assert_eq!(holder_id(&long, "ns", "n").len(), 128);
    }

    #[test]
    fn override_and_mode_become_a_pin() {
        let mut d = dr();
        assert_eq!(desired_pin(&d), Pin::None);
        d.mode = DrMode::Manual;
        assert_eq!(desired_pin(&d), Pin::HoldCurrent);
        d.manual_override = Some(CrdWeights {
            primary: 0,
            dr_eks: 0,
            dr_ecs: 100,
        });
        assert_eq!(desired_pin(&d), Pin::Target(Target::DrEcs));
        // Any positive weight on a single target pins it.
        d.manual_override = Some(CrdWeights {
            primary: 0,
            dr_eks: 1,
            dr_ecs: 0,
        });
        assert_eq!(desired_pin(&d), Pin::Target(Target::DrEks));
        let split = CrdWeights {
            primary: 0,
            dr_eks: 30,
            dr_ecs: 70,
        };
        d.manual_override = Some(split);
        assert_eq!(desired_pin(&d), Pin::Unsupported(split));
    }

    #[test]
    fn pin_commands_are_minimal_and_only_clear_our_own_pins() {
        use twinkle_dr::Command::{ClearOverride, FailoverTo};
        let to = |target| Some(FailoverTo { target });
        // Pin a target unless already pinned there.
        assert_eq!(
            pin_command(Pin::Target(Target::DrEcs), None, RouteState::Normal),
            to(Target::DrEcs)
        );
        assert_eq!(
            pin_command(
                Pin::Target(Target::DrEcs),
                Some(Target::DrEcs),
                RouteState::OverrideDrEcs
            ),
            None
        );
        // Manual mode holds what is there: a single target, never a split.
        assert_eq!(
            pin_command(Pin::HoldCurrent, None, RouteState::DrEcsOnly),
            to(Target::DrEcs)
        );
        assert_eq!(
            pin_command(Pin::HoldCurrent, None, RouteState::Normal),
            to(Target::Primary)
        );
        assert_eq!(
            pin_command(Pin::HoldCurrent, None, RouteState::DrSplit),
            None
        );
        assert_eq!(
            pin_command(Pin::HoldCurrent, None, RouteState::OverrideDrEks),
            None
        );
        // Override removed: clear our pin, never someone else's.
        assert_eq!(
            pin_command(Pin::None, Some(Target::DrEcs), RouteState::OverrideDrEcs),
            Some(ClearOverride)
        );
        assert_eq!(
            pin_command(Pin::None, Some(Target::DrEcs), RouteState::OverrideDrEks),
            None
        );
        assert_eq!(
            pin_command(Pin::None, None, RouteState::OverrideDrEks),
            None
        );
        assert_eq!(pin_command(Pin::None, None, RouteState::DrEks), None);
    }
}
