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
use crate::store::Pending;

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
        .take_undelivered(service_id, target.comet_user())?
        .durable()
        .await?;
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
        .add_agent_notification(&record.id, tag, message, state.clock.now())?
        .durable()
        .await?;
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
    let taken = state
        .store
        .take_agent_notifications(service_id)?
        .durable()
        .await?;
    Ok(taken
        .into_iter()
        .map(|n| AgentNotification {
            message: n.message,
            tag: n.tag,
        })
        .collect())
}

/// Tells the customers of services just cancelled (by themselves or an administrator), after
/// the cancellation was stored and before it is durable: the caller's wait for the
/// cancellation covers these writes too. Returns what to push once they are ([`deliver`]). A
/// notification that cannot be stored is logged: the cancellation itself stands.
pub(crate) fn record_cancelled<'s, 'r>(
    state: &'s AppState,
    cancelled: impl IntoIterator<Item = &'r ServiceRecord>,
    reason: CallbackReason,
) -> Outbox<'s> {
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
    Outbox { state, outbox }
}

/// Notifications stored but not yet durable, and whom to push them to.
#[must_use = "push the notifications with `deliver` once durable"]
pub(crate) struct Outbox<'a> {
    state: &'a AppState,
    outbox: Vec<(PushTarget, Pending<Notification>)>,
}

/// Pushes what [`record_cancelled`] stored, each once durable (the caller's wait for the
/// cancellation already covers them).
///
/// # Errors
/// The group commit failed: nothing is pushed.
pub(crate) async fn deliver(outbox: Outbox<'_>) -> Result<(), AppError> {
    let Outbox { state, outbox } = outbox;
    let mut durable = Vec::with_capacity(outbox.len());
    for (target, stored) in outbox {
        durable.push((target, stored.durable().await?));
    }
    for (target, stored) in &durable {
        state.notifier.deliver(target, stored);
    }
    Ok(())
}

/// Stores a notification for the customer of `record`, waits until it is durable (batched with
/// concurrent requests' notifications), pushes it.
async fn notify_customer(
    state: &AppState,
    record: &ServiceRecord,
    tag: String,
    message: &serde_json::Value,
) -> Result<(), AppError> {
    let target = PushTarget::of(record);
    let stored = state
        .notifier
        .record_durable(&target, tag, message, state.clock.now())
        .await?;
    state.notifier.deliver(&target, &stored);
    Ok(())
}
