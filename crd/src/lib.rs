//! The `TicketEvent` custom resource (`ticket.twinkle.dev/v1alpha1`).
//!
//! A crate of its own so that both the operator (which reconciles it) and
//! the workloads (which serve the event a manifest describes, `twinkle local
//! --event`) read the same types without the workloads depending on the
//! operator and its controller stack.
//!
//! The Rust types are the source of truth: the CRD's OpenAPI schema is
//! generated from them (field docs become descriptions) and written to
//! `crds/ticketevent.yaml` by `crdgen`. What the API server must refuse is
//! declared here too, so it cannot drift from the types:
//!
//! * bounds, lengths, patterns and enums through `#[schemars(...)]`
//!   attributes and Rust enums;
//! * cross-field rules as CEL (`x-kubernetes-validations`) through kube's
//!   `KubeSchema` derive: `#[x_kube(validation = Rule::new(..).message(..))]`
//!   on a struct or a field, and `#[kube(validation = ..)]` on the root for
//!   rules about metadata.

#![forbid(unsafe_code)]

mod convert;
mod dr;
mod duration;
mod kafka;
mod queue;
mod refs;
mod spec;
mod status;
mod traffic;

use kube::CustomResourceExt as _;

pub use dr::{Dr, DrMode, DrTarget, DrTargets, FailbackPolicy, Probe, Weights};
pub use duration::Duration;
pub use kafka::{DeletionPolicy, Kafka, MAX_PARTITIONS, Partitions};
pub use queue::{OpeningMode, Queue};
pub use refs::SecretKeyRef;
pub use spec::{MAX_NAME_LENGTH, Redis, Slot, TicketEvent, TicketEventSpec};
pub use status::{
    ConditionType, DrHealth, DrHealthStatus, DrStatus, DrTargetName, DrTransitionStatus, Phase,
    SizingStatus, TicketEventStatus,
};
pub use traffic::Traffic;

/// Errors of the CRD crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid duration {value:?}: {why}")]
    Duration { value: String, why: &'static str },
    /// A TicketEvent that cannot become the workloads' event config (only
    /// reachable for manifests that never went through the API server).
    #[error("TicketEvent {name} cannot be served: {why}")]
    Convert { name: String, why: String },
    #[error("cannot serialize {what}: {source}")]
    Yaml {
        what: &'static str,
        source: yaml_serde::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the generated CRD is committed, relative to the repository root.
pub const CRD_FILE: &str = "crds/ticketevent.yaml";

const HEADER: &str = "\
# Generated from crd/src by `cargo run -p twinkle-operator --bin crdgen -- --write`.
# Do not edit: change the Rust types and regenerate (a test fails on drift).
";

/// The TicketEvent CRD as committed YAML: a header, then the CRD.
pub fn crd_yaml() -> Result<String> {
    let body = yaml_serde::to_string(&TicketEvent::crd()).map_err(|source| Error::Yaml {
        what: "the TicketEvent CRD",
        source,
    })?;
    Ok(format!("{HEADER}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the required fields: everything else comes from defaults, which
    /// serde and the schema take from the same functions.
    const MINIMAL: &str = r#"
apiVersion: ticket.twinkle.dev/v1alpha1
kind: TicketEvent
metadata: {name: tiny}
spec:
  title: Tiny
  opensAt: "2026-12-05T10:00:00+09:00"
  closesAt: "2026-12-05T12:00:00+09:00"
  slots: [{id: a, label: A, capacity: 1}]
  perCustomerLimit: 1
  traffic: {expectedPeakRps: 100, maxReplicas: 3}
  queue: {admissionPerSecond: 10, maxActiveSessions: 10, sessionTtl: 5m}
  kafka: {bootstrapServers: "kafka:9092"}
  redis: {secretRef: {name: redis, key: url}}
"#;

    #[test]
    fn defaults_fill_what_the_manifest_leaves_out() {
        let event: TicketEvent = yaml_serde::from_str(MINIMAL).unwrap();
        let spec = &event.spec;
        assert_eq!(spec.traffic.headroom_percent, 30);
        assert_eq!(spec.traffic.min_replicas, 2);
        assert_eq!(spec.traffic.per_pod_rps, None);
        assert_eq!(spec.traffic.pre_scale_lead.as_str(), "15m");
        assert_eq!(spec.queue.opening_mode, OpeningMode::Fifo);
        assert_eq!(spec.kafka.partitions, Partitions::Auto);
        assert_eq!(spec.kafka.replication_factor, 3);
        assert_eq!(spec.kafka.retention.as_str(), "168h");
        assert_eq!(spec.kafka.deletion_policy, DeletionPolicy::Retain);
        assert!(spec.dr.is_none());
        assert_eq!(Probe::default().interval.as_str(), "10s");
        assert_eq!(Probe::default().min_dwell.get().as_secs(), 300);
        assert_eq!(spec.opens_at.to_string(), "2026-12-05T01:00:00Z");
    }

    #[test]
    fn partitions_are_auto_or_a_count() {
        let parse = |v: &str| yaml_serde::from_str::<Partitions>(v);
        assert_eq!(parse("auto").unwrap(), Partitions::Auto);
        assert_eq!(parse("12").unwrap(), Partitions::Count(12));
        assert_eq!(parse("null").unwrap(), Partitions::Auto);
        for bad in ["0", "-3", "many", "\"12\"", "10001", "1.5"] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(
            serde_json::to_string(&Partitions::Auto).unwrap(),
            "\"auto\""
        );
        assert_eq!(serde_json::to_string(&Partitions::Count(7)).unwrap(), "7");
    }

    #[test]
    fn crd_has_the_names_columns_and_subresource_kubectl_needs() {
        let crd = TicketEvent::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("ticketevents.ticket.twinkle.dev")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["te".to_owned()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.subresources.as_ref().unwrap().status.is_some());
        let columns: Vec<_> = version
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .filter(|c| c.priority.unwrap_or(0) == 0)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            ["Phase", "Peak RPS", "Replicas", "DR State", "Age"]
        );
    }

    #[test]
    fn schema_carries_descriptions_and_cel_rules() {
        let yaml = crd_yaml().unwrap();
        assert!(yaml.starts_with("# Generated from crd/src"));
        for needle in [
            "rule: self.closesAt > self.opensAt",
            "rule: self.minReplicas <= self.maxReplicas",
            "x-kubernetes-int-or-string: true",
            "x-kubernetes-list-type: map",
            "description: Seats in the slot; never oversold.",
            "pattern: ^([0-9]+(h|m|s|ms))+$",
        ] {
            assert!(yaml.contains(needle), "CRD lacks {needle:?}");
        }
        // Credentials only ever by reference.
        for field in ["password", "token", "apiKey"] {
            assert!(
                !yaml.contains(&format!("{field}:")),
                "CRD has a {field} field"
            );
        }
    }
}
