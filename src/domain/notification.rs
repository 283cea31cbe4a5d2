//! Customer-bound notifications: stored before they are pushed, so a client that polls
//! (`retrieve-notifications`) or reconnects still gets what it missed.

use super::options::FieldError;
use super::service::CallbackReason;
use super::time::Timestamp;

/// One notification for the customer of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
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
/// their confirmation (seed 000); `action` is seed 000's
/// `get-dialog-user-confirmation-provide_code-false`, or `...-true` for a user-originated
/// callback with an access code. The app GETs `/genesys/1/service/{_id}/{_action}` next.
pub fn agent_available(service_id: &str, action: &str) -> (String, serde_json::Value) {
    (
        format!("service.agentavailable.{service_id}"),
        serde_json::json!({
            "_action": action,
            "_id": service_id,
        }),
    )
}

/// The push that tells the customer of a service that no agent came within
/// `_urs_queued_ttl`: the service is COMPLETED with `FAIL_TIMEOUT_TTL`.
pub fn queue_timeout(service_id: &str) -> (String, serde_json::Value) {
    (
        format!("service.queuetimeout.{service_id}"),
        serde_json::json!({
            "_id": service_id,
            "_callback_state": "COMPLETED",
            "_callback_reason": "FAIL_TIMEOUT_TTL",
        }),
    )
}

/// The push that tells the customer their service was cancelled (by them or an
/// administrator); `reason` is `CANCELLED` or `CANCELLED_BY_ADMIN`.
pub fn cancelled(service_id: &str, reason: CallbackReason) -> (String, serde_json::Value) {
    (
        format!("service.cancelled.{service_id}"),
        serde_json::json!({
            "_id": service_id,
            "_callback_state": "COMPLETED",
            "_callback_reason": reason.as_str(),
        }),
    )
}

/// The availability of a Request-Chat-Poll service as seed 003's `POST /{id}/status` reports
/// it, and as it is pushed when it changes: `(tag, message)`.
pub fn poll_status(service_id: &str, available: bool) -> (String, serde_json::Value) {
    let (status, dialog, tag) = if available {
        (
            "available",
            "agent_available.html",
            format!("a2c.advanced.service.agentavailable.{service_id}"),
        )
    } else {
        (
            "waiting",
            "waiting_for_agent.html",
            format!("a2c.advanced.service.statuschanged.{service_id}"),
        )
    };
    (
        tag,
        serde_json::json!({ "_id": service_id, "_status": status, "_dialog": dialog }),
    )
}

/// The fields of `internal-notification` and `agent-notification` (seed 000).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationText {
    /// `_display_message`: text for the person.
    pub display: Option<String>,
    /// `_application_message`: data for the app or the desktop.
    pub application: Option<String>,
}

impl NotificationText {
    /// Reads the request fields; other fields are ignored (GMS clients send extra ones).
    ///
    /// # Errors
    /// Neither field given.
    pub fn parse(fields: Vec<(String, String)>) -> Result<Self, FieldError> {
        let mut text = NotificationText::default();
        for (key, value) in fields {
            match key.as_str() {
                "_display_message" => text.display = Some(value),
                "_application_message" => text.application = Some(value),
                _ => {}
            }
        }
        if text.display.is_none() && text.application.is_none() {
            return Err(FieldError::new(
                "_display_message",
                "nothing to send: give _display_message and/or _application_message",
            ));
        }
        Ok(text)
    }

    /// The customer-bound `internal-notification` message (seed 000):
    /// `{"_internal_message","_id","_display_message"}`, a missing field left out. Tag
    /// `service.internal.<id>`.
    pub fn to_customer(&self, service_id: &str) -> (String, serde_json::Value) {
        let mut message = serde_json::Map::new();
        if let Some(application) = &self.application {
            message.insert("_internal_message".into(), application.clone().into());
        }
        message.insert("_id".into(), service_id.into());
        if let Some(display) = &self.display {
            message.insert("_display_message".into(), display.clone().into());
        }
        (format!("service.internal.{service_id}"), message.into())
    }

    /// The agent-bound `agent-notification` message: tag `agent.message.<id>` and the JSON
    /// text `{"_id","_internal_message","_display_message"}` in the seed's order (the agent
    /// desktop receives it as a string, so the order shows).
    pub fn to_agent(&self, service_id: &str) -> (String, String) {
        #[derive(serde::Serialize)]
        struct AgentMessage<'a> {
            _id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            _internal_message: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            _display_message: Option<&'a str>,
        }
        let message = AgentMessage {
            _id: service_id,
            _internal_message: self.application.as_deref(),
            _display_message: self.display.as_deref(),
        };
        // Serializing a struct of strings cannot fail.
        let text = serde_json::to_string(&message).unwrap_or_default();
        (format!("agent.message.{service_id}"), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_agent_message_is_the_seeds_text() {
        let text = NotificationText::parse(fields(&[
            ("_display_message", "Message to be displayed to agent"),
            (
                "_application_message",
                "MESSAGE_FOR_AGENT_DESKTOP_INTERNAL_USE",
            ),
        ]))
        .unwrap();

        let (tag, message) = text.to_agent("369-1");

        assert_eq!(tag, "agent.message.369-1");
        assert_eq!(
            message,
            r#"{"_id":"369-1","_internal_message":"MESSAGE_FOR_AGENT_DESKTOP_INTERNAL_USE","_display_message":"Message to be displayed to agent"}"#
        );
    }

    #[test]
    fn the_customer_message_carries_both_texts_and_the_id() {
        let text = NotificationText::parse(fields(&[
            ("_display_message", "shown"),
            ("_application_message", "internal"),
            ("other", "ignored"),
        ]))
        .unwrap();

        let (tag, message) = text.to_customer("s1");

        assert_eq!(tag, "service.internal.s1");
        assert_eq!(
            message,
            serde_json::json!({"_internal_message": "internal", "_id": "s1", "_display_message": "shown"})
        );
    }

    #[test]
    fn a_notification_without_text_names_the_field() {
        let err = NotificationText::parse(fields(&[("x", "y")])).unwrap_err();
        assert_eq!(err.field, "_display_message");
        let only_display = NotificationText::parse(fields(&[("_display_message", "")])).unwrap();
        assert_eq!(
            only_display.to_customer("s").1,
            serde_json::json!({"_id": "s", "_display_message": ""})
        );
    }

    #[test]
    fn poll_status_matches_seed_003() {
        let (tag, message) = poll_status("s1", true);
        assert_eq!(tag, "a2c.advanced.service.agentavailable.s1");
        assert_eq!(message["_status"], "available");
        let (tag, message) = poll_status("s1", false);
        assert_eq!(tag, "a2c.advanced.service.statuschanged.s1");
        assert_eq!(message["_dialog"], "waiting_for_agent.html");
    }
}
