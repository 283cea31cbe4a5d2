//! The customer's side of routing: confirming a reserved agent (`connect`, seed 000) and
//! polling for one (`status`, seed 003).

use super::records::{owned_service, update};
use super::{AppError, AppState, Requester};
use crate::domain::service::{CallbackState, LifecycleError, ServiceRecord};
use crate::domain::{options, voice};

/// What `connect` found.
#[derive(Debug)]
pub enum Connect {
    /// An agent is reserved (or none is needed): the customer may start the chat.
    Ready(Box<ServiceRecord>),
    /// No agent is available yet (503).
    NotYet,
}

/// The customer confirms they are ready for the reserved agent. Records the first
/// confirmation time, which stops the no-confirmation timeout.
///
/// # Errors
/// Unknown id (404), another user's service (403), a finished service (400), storage failure.
pub async fn connect(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<Connect, AppError> {
    let record = owned_service(state, service_id, requester)?;
    if !record.is_active() {
        return Err(LifecycleError::Completed {
            id: record.id.clone(),
            reason: record.reason.map(|r| r.to_string()).unwrap_or_default(),
            action: "connected",
        }
        .into());
    }
    if !is_agent_available(&record) {
        return Ok(Connect::NotYet);
    }
    if record.state != CallbackState::Routing || record.confirmed_at.is_some() {
        return Ok(Connect::Ready(Box::new(record)));
    }
    // First confirmation of a reservation: record it, unless the reservation ended meanwhile.
    let now = state.clock.now();
    let confirmed = update(state, service_id, |record| {
        record.confirm(now);
        Ok(())
    })?;
    if !is_agent_available(confirmed.written()) {
        // The customer is told "not yet", which no durable state stands behind.
        confirmed.without_waiting();
        return Ok(Connect::NotYet);
    }
    let confirmed = confirmed.durable().await?;
    // A voice callback's agent with auto answer takes it now that the customer confirmed,
    // as a chat is joined automatically.
    if let Some(agent) = confirmed.reserved_agent.as_deref() {
        if voice::is_voice(&confirmed) && super::voice::auto_answer(state, agent).await? {
            super::voice::take(state, agent, service_id).await?;
            let taken = owned_service(state, service_id, requester)?;
            return Ok(Connect::Ready(Box::new(taken)));
        }
    }
    Ok(Connect::Ready(Box::new(confirmed)))
}

/// What `status` reports (seed 003).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Still waiting for an agent.
    Waiting,
    /// An agent is available.
    Available,
}

/// The service's availability as the customer's app polls for it.
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub fn status(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<Status, AppError> {
    let record = owned_service(state, service_id, requester)?;
    Ok(if is_agent_available(&record) {
        Status::Available
    } else {
        Status::Waiting
    })
}

/// A service that waits for an agent has one once it is ROUTING (reserved) or PROCESSING;
/// one that does not wait may start its chat while it is active.
fn is_agent_available(record: &ServiceRecord) -> bool {
    if options::waits_for_agent(&record.options) {
        matches!(
            record.state,
            CallbackState::Routing | CallbackState::Processing
        )
    } else {
        record.is_active()
    }
}
