//! From the custom resource to the workloads' event config.
//!
//! The operator mounts the result as JSON into the workloads, and
//! `twinkle local --event` serves a TicketEvent manifest through the same
//! conversion, so what a manifest means to the workloads is decided once,
//! here.

use twinkle_domain::{
    EventConfig, QueueConfig,
    event::{DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_PRE_QUEUE_WINDOW},
};

use crate::{Error, OpeningMode, Result, TicketEvent};

impl TryFrom<&TicketEvent> for EventConfig {
    type Error = Error;

    /// The event id is `metadata.name`; durations become plain durations;
    /// an unset heartbeatTimeout or preQueueWindow gets the domain's default.
    /// The result is validated like a hand-written event config.
    fn try_from(event: &TicketEvent) -> Result<Self> {
        let name = event.metadata.name.clone().unwrap_or_default();
        let fail = |why: String| Error::Convert {
            name: if name.is_empty() {
                "(unnamed)".to_owned()
            } else {
                name.clone()
            },
            why,
        };
        let id = name
            .parse()
            .map_err(|e: twinkle_domain::Error| fail(format!("metadata.name: {e}")))?;
        let spec = &event.spec;
        let count = |field: &str, v: i32| {
            u32::try_from(v).map_err(|_| fail(format!("{field} must not be negative")))
        };
        let slots = spec
            .slots
            .iter()
            .map(|slot| {
                Ok(twinkle_domain::Slot {
                    id: slot
                        .id
                        .parse()
                        .map_err(|e: twinkle_domain::Error| fail(format!("slot id: {e}")))?,
                    label: slot.label.clone(),
                    capacity: count("slot capacity", slot.capacity)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let q = &spec.queue;
        let config = EventConfig {
            id,
            title: spec.title.clone(),
            opens_at: spec.opens_at,
            closes_at: spec.closes_at,
            slots,
            per_customer_limit: count("perCustomerLimit", spec.per_customer_limit)?,
            queue: QueueConfig {
                admission_per_second: count("admissionPerSecond", q.admission_per_second)?,
                max_active_sessions: count("maxActiveSessions", q.max_active_sessions)?,
                session_ttl: q.session_ttl.get(),
                heartbeat_timeout: q
                    .heartbeat_timeout
                    .as_ref()
                    .map_or(DEFAULT_HEARTBEAT_TIMEOUT, |d| d.get()),
                opening_mode: match q.opening_mode {
                    OpeningMode::Fifo => twinkle_domain::OpeningMode::Fifo,
                    OpeningMode::ShuffleAtOpen => twinkle_domain::OpeningMode::ShuffleAtOpen,
                },
                pre_queue_window: q
                    .pre_queue_window
                    .as_ref()
                    .map_or(DEFAULT_PRE_QUEUE_WINDOW, |d| d.get()),
            },
            dr_reserve_per_slot: spec
                .dr
                .as_ref()
                .and_then(|dr| dr.reserve_per_slot)
                .map(|seats| count("dr.reservePerSlot", seats))
                .transpose()?,
        };
        config.validate().map_err(|e| fail(e.to_string()))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DEMO: &str = include_str!("../../examples/demo-event.yaml");

    fn parse(yaml: &str) -> TicketEvent {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn converts_the_demo_manifest() {
        let config = EventConfig::try_from(&parse(DEMO)).unwrap();
        assert_eq!(config.id.as_str(), "winter-popup");
        assert_eq!(config.title, "Twinkle Pop-up Store: Winter Collection");
        assert_eq!(config.opens_at.to_string(), "2026-12-05T01:00:00Z");
        assert_eq!(config.closes_at.to_string(), "2026-12-05T09:00:00Z");
        assert_eq!(config.slots.len(), 4);
        assert_eq!(config.slots[3].id.as_str(), "s1500");
        assert_eq!(config.slots[3].capacity, 8);
        assert_eq!(config.per_customer_limit, 1);
        assert_eq!(config.queue.admission_per_second, 200);
        assert_eq!(config.queue.max_active_sessions, 2000);
        assert_eq!(config.queue.session_ttl, Duration::from_secs(600));
        assert_eq!(config.queue.heartbeat_timeout, Duration::from_secs(30));
        assert_eq!(config.queue.pre_queue_window, Duration::from_secs(600));
        assert_eq!(
            config.queue.opening_mode,
            twinkle_domain::OpeningMode::ShuffleAtOpen
        );
    }

    const MINIMAL: &str = r#"
apiVersion: ticket.twinkle.dev/v1alpha1
kind: TicketEvent
metadata: {name: tiny}
spec:
  title: Tiny
  opensAt: "2026-12-05T10:00:00+09:00"
  closesAt: "2026-12-05T12:00:00+09:00"
  slots: [{id: a, label: A, capacity: 1}]
  perCustomerLimit: 2
  traffic: {expectedPeakRps: 100, maxReplicas: 3}
  queue: {admissionPerSecond: 10, maxActiveSessions: 10, sessionTtl: 1h30m}
  kafka: {bootstrapServers: "kafka:9092"}
  redis: {secretRef: {name: redis, key: url}}
"#;

    #[test]
    fn unset_durations_get_the_domain_defaults() {
        let config = EventConfig::try_from(&parse(MINIMAL)).unwrap();
        assert_eq!(config.queue.session_ttl, Duration::from_secs(5400));
        assert_eq!(config.queue.heartbeat_timeout, DEFAULT_HEARTBEAT_TIMEOUT);
        assert_eq!(config.queue.pre_queue_window, DEFAULT_PRE_QUEUE_WINDOW);
        assert_eq!(config.queue.opening_mode, twinkle_domain::OpeningMode::Fifo);
        assert_eq!(config.per_customer_limit, 2);
        // The JSON the operator mounts is what `--event` reads back.
        let json = serde_json::to_string(&config).unwrap();
        let back: EventConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn refuses_what_the_api_server_would_have() {
        let mut event = parse(MINIMAL);
        event.metadata.name = None;
        let err = EventConfig::try_from(&event).unwrap_err().to_string();
        assert!(err.contains("(unnamed)"), "{err}");

        let mut event = parse(MINIMAL);
        event.metadata.name = Some("Not_A_Label".into());
        assert!(EventConfig::try_from(&event).is_err());

        let mut event = parse(MINIMAL);
        event.spec.closes_at = event.spec.opens_at;
        let err = EventConfig::try_from(&event).unwrap_err().to_string();
        assert!(err.contains("tiny") && err.contains("closesAt"), "{err}");

        let mut event = parse(MINIMAL);
        event.spec.slots[0].capacity = -1;
        let err = EventConfig::try_from(&event).unwrap_err().to_string();
        assert!(err.contains("negative"), "{err}");
    }
}
