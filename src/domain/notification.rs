//! Customer-bound notifications: stored before they are pushed, so a client that polls
//! (`retrieve-notifications`) or reconnects still gets what it missed.

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// One notification for the customer of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Increasing across the whole database; orders a service's notifications.
    pub seq: u64,
    /// The push tag (`service.agentavailable.<id>`).
    pub tag: String,
    /// The message, as JSON text (stored as text: it is opaque to storage).
    pub message: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Whether a push or a poll has delivered it.
    pub delivered: bool,
}

/// The message telling the customer of a Chat-Delayed service that an agent is waiting for
/// their confirmation (seed 000).
pub fn agent_available(service_id: &str) -> (String, serde_json::Value) {
    (
        format!("service.agentavailable.{service_id}"),
        serde_json::json!({
            "_action": "get-dialog-user-confirmation-provide_code-false",
            "_id": service_id,
        }),
    )
}
