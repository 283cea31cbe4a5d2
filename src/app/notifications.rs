//! Notifications between the customer and the agent desktop (seed 000):
//! `internal-notification` (agent desktop -> customer, pushed), `retrieve-notifications`
//! (what the customer was not pushed), `agent-notification` (customer -> agent desktop) and
//! `retrieve-agent-notifications`, plus the push that tells a customer their service was
//! cancelled.
//!
//! Every one of them follows the `gms_user` rule: another user's service is 403.

use super::records::owned_service;
use super::{AppError, AppState, Requester};
use crate::domain::notification::{self, Notification, NotificationText};
use crate::domain::service::{CallbackReason, ServiceRecord};
use crate::push::{self, PushTarget};

/// An agent-bound notification as `retrieve-agent-notifications` returns it: the message is
/// JSON text (seed 000).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AgentNotification {
    /// `{"_id","_internal_message","_display_message"}` as a string.
    pub message: String,
    /// `agent.message.<id>`.
    pub tag: String,
}

/// The messages not yet delivered to the customer of `service_id`, oldest first; they count
/// as delivered once returned.
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub async fn retrieve(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<Vec<serde_json::Value>, AppError> {
    // 404 or 403 before anything is marked delivered.
    let record = owned_service(state, service_id, requester)?;
    let target = PushTarget::of(&record);
    let taken = state
        .store
        .take_undelivered(service_id, target.comet_user())?;
    state.store.wait_durable().await?;
    Ok(taken.iter().map(|n| push::parse(&n.message)).collect())
}

/// Sends the agent desktop's message to the customer of `service_id` (`internal-notification`):
/// stored, durable, then pushed over the service's channel.
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub async fn send_to_customer(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
    text: &NotificationText,
) -> Result<(), AppError> {
    let record = owned_service(state, service_id, requester)?;
    let (tag, message) = text.to_customer(&record.id);
    notify_customer(state, &record, tag, &message).await?;
    tracing::info!(service_id = %service_id, "internal notification sent");
    Ok(())
}

/// Stores the customer's message for the agent desktop (`agent-notification`).
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub async fn send_to_agent(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
    text: &NotificationText,
) -> Result<(), AppError> {
    let record = owned_service(state, service_id, requester)?;
    let (tag, message) = text.to_agent(&record.id);
    state
        .store
        .add_agent_notification(&record.id, tag, message, state.clock.now())?;
    state.store.wait_durable().await?;
    tracing::info!(service_id = %service_id, "agent notification stored");
    Ok(())
}

/// The customer's messages the agent desktop has not retrieved yet, oldest first; each is
/// returned once.
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub async fn retrieve_for_agent(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<Vec<AgentNotification>, AppError> {
    owned_service(state, service_id, requester)?;
    let taken = state.store.take_agent_notifications(service_id)?;
    state.store.wait_durable().await?;
    Ok(taken
        .into_iter()
        .map(|n| AgentNotification {
            message: n.message,
            tag: n.tag,
        })
        .collect())
}

/// Tells the customers of services just cancelled (by themselves or an administrator), after
/// the cancellation was stored and before it is made durable by the caller's one group
/// commit; returns what to push once it is. A notification that cannot be stored is logged:
/// the cancellation itself stands.
pub(crate) fn record_cancelled<'a>(
    state: &AppState,
    cancelled: impl IntoIterator<Item = &'a ServiceRecord>,
    reason: CallbackReason,
) -> Vec<(PushTarget, Notification)> {
    let now = state.clock.now();
    let mut outbox = Vec::new();
    for record in cancelled {
        let target = PushTarget::of(record);
        let (tag, message) = notification::cancelled(&record.id, reason);
        match state.notifier.record(&target, tag, &message, now) {
            Ok(stored) => outbox.push((target, stored)),
            Err(err) => {
                tracing::error!(service_id = %record.id, error = %err, "cannot store the cancellation notification")
            }
        }
    }
    outbox
}

/// Pushes what [`record_cancelled`] stored, once the caller's group commit made it durable.
pub(crate) fn deliver(state: &AppState, outbox: &[(PushTarget, Notification)]) {
    for (target, stored) in outbox {
        state.notifier.deliver(target, stored);
    }
}

/// Stores a notification for the customer of `record`, waits until it is durable, pushes it.
async fn notify_customer(
    state: &AppState,
    record: &ServiceRecord,
    tag: String,
    message: &serde_json::Value,
) -> Result<(), AppError> {
    let target = PushTarget::of(record);
    let stored = state
        .notifier
        .record(&target, tag, message, state.clock.now())?;
    state.store.wait_durable().await?;
    state.notifier.deliver(&target, &stored);
    Ok(())
}
