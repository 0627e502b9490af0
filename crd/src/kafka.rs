//! Where the event's Kafka topics live and how they are shaped.

use std::{borrow::Cow, fmt};

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{Duration, SecretKeyRef};

/// Most partitions a topic may be given (explicitly or by `auto`).
pub const MAX_PARTITIONS: i32 = 10_000;

/// The Kafka cluster and the event's topics (queue, bookings, outcomes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.bootstrapServers) != has(self.bootstrapSecretRef)")
    .message("set exactly one of bootstrapServers or bootstrapSecretRef"))]
pub struct Kafka {
    /// Bootstrap servers, `host:port` separated by commas. Either this or
    /// bootstrapSecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^[A-Za-z0-9.\[\]:-]+:[0-9]{1,5}(,[A-Za-z0-9.\[\]:-]+:[0-9]{1,5})*$")
    )]
    pub bootstrap_servers: Option<String>,
    /// A Secret key holding the bootstrap servers, for clusters whose
    /// addresses should not be in the resource. Either this or
    /// bootstrapServers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_secret_ref: Option<SecretKeyRef>,
    /// Partitions of each topic: "auto" (enough for the consumers the
    /// forecast needs, at least 6) or a number. Partitions are only ever
    /// increased; asking for fewer than a topic has is reported in the
    /// status, not applied.
    #[serde(default)]
    pub partitions: Partitions,
    /// Replicas of each partition across brokers (3 for production).
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1, max = 7))]
    pub replication_factor: i32,
    /// How long records are kept (the topics' retention.ms), e.g. 168h.
    #[serde(default = "default_retention")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')")
        .message("retention must be at least 1m"))]
    pub retention: Duration,
    /// What deleting the TicketEvent does to its topics: Retain (default)
    /// keeps them for audit and replay, Delete removes them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_replication_factor() -> i32 {
    3
}

fn default_retention() -> Duration {
    Duration::known("168h")
}

/// What deleting a TicketEvent does to its Kafka topics: `Retain` keeps
/// them (bookings are records worth keeping), `Delete` removes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// Partitions per topic: `auto` or an explicit count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Partitions {
    /// As many as the consumers need at the forecast peak, at least
    /// the operator's `sizing::AUTO_PARTITIONS_FLOOR`.
    #[default]
    Auto,
    /// Exactly this many (≥ 1); validated by the API server.
    Count(i32),
}

const AUTO: &str = "auto";

impl Serialize for Partitions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => serializer.serialize_str(AUTO),
            Self::Count(n) => serializer.serialize_i32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Partitions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Partitions;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a positive integer")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Partitions, E> {
                if v == AUTO {
                    Ok(Partitions::Auto)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Partitions, E> {
                i32::try_from(v)
                    .ok()
                    .filter(|n| (1..=MAX_PARTITIONS).contains(n))
                    .map(Partitions::Count)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            /// An explicit `null` (the schema is nullable because the
            /// field has a default) means the default.
            fn visit_unit<E: de::Error>(self) -> Result<Partitions, E> {
                Ok(Partitions::Auto)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Partitions, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Partitions {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Partitions".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // int-or-string is the only structural way to say "a word or a
        // number"; CEL narrows it to the two shapes we accept.
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "x-kubernetes-validations": [{
                "rule": format!(
                    "type(self) == int ? (self >= 1 && self <= {MAX_PARTITIONS}) : self == '{AUTO}'"
                ),
                "message": format!(
                    "partitions must be \"{AUTO}\" or an integer from 1 to {MAX_PARTITIONS}"
                ),
            }],
        })
    }
}
