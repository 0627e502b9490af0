//! References to Secrets: the only way credentials reach a TicketEvent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key of a Secret in the TicketEvent's namespace. The TicketEvent never
/// holds credentials itself: it is readable by everyone who can list events,
/// and shows up in `kubectl get -o yaml`, logs and backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the TicketEvent's own namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}
