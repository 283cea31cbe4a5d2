//! Voice callbacks on the agent desktop (no telephony here): the agent takes a reserved voice
//! callback (Accept) and, once they have dialed the customer's number, records the outcome
//! (`POST /genesys/1/agent/{agent}/interactions/{service}/outcome`). The rules are in
//! [`crate::domain::voice`]; this module stores their result durably and tells the router
//! that the agent is free and, for a redial, when the callback comes back.

use super::callbacks::route;
use super::records::{not_found, settings_of, update, update_routed};
use super::{AppError, AppState};
use crate::domain::options::FieldError;
use crate::domain::service::{CallbackState, ServiceRecord};
use crate::domain::voice::{self, DialOutcome, Recorded, RedialPolicy, VoiceError};
use crate::router::core::Event;

impl From<VoiceError> for AppError {
    fn from(err: VoiceError) -> Self {
        AppError::InvalidField(FieldError::new("interaction", err.to_string()))
    }
}

/// An outcome recorded, and the callback as it is now.
#[derive(Debug, Clone)]
pub struct OutcomeRecorded {
    /// The callback after the outcome.
    pub record: ServiceRecord,
    /// What the outcome did.
    pub recorded: Recorded,
}

/// Checks that service `service_id` exists, before the request's body is read.
///
/// # Errors
/// Unknown id (404), storage failure.
pub fn check_exists(state: &AppState, service_id: &str) -> Result<(), AppError> {
    state
        .store
        .service(service_id)?
        .map(drop)
        .ok_or_else(|| not_found(service_id))
}

/// The agent takes the voice callback `service_id` to dial it (Accept): it is PROCESSING and
/// the router counts it as the agent's interaction. Taking it twice changes nothing.
///
/// # Errors
/// Unknown id (404), not a voice callback of this agent or not confirmed yet (400), storage
/// failure.
pub async fn take(state: &AppState, agent_id: &str, service_id: &str) -> Result<(), AppError> {
    let now = state.clock.now();
    let mut changed = false;
    update(state, service_id, |record| {
        changed = voice::take(record, agent_id, now)?;
        Ok(())
    })?
    .durable()
    .await?;
    if changed {
        state.router.send(Event::Started {
            service: service_id.to_string(),
            agent: agent_id.to_string(),
        });
        tracing::info!(service_id = %service_id, agent = %agent_id, "voice callback taken");
    }
    Ok(())
}

/// Records how `agent_id`'s call to the customer of `service_id` went: the callback completes
/// or is dialed again after the service's `_dial_retry_timeout`, durably, and the agent is
/// free again.
///
/// # Errors
/// Unknown service or agent (404), not a voice callback of this agent, not confirmed or not
/// accepted yet (400), stored options that no longer validate (503), storage failure.
pub async fn record_outcome(
    state: &AppState,
    agent_id: &str,
    service_id: &str,
    outcome: DialOutcome,
) -> Result<OutcomeRecorded, AppError> {
    let record = state
        .store
        .service(service_id)?
        .ok_or_else(|| not_found(service_id))?;
    let settings = settings_of(state, &record)?;
    let policy = RedialPolicy::from(&*settings);
    let auto_answer = auto_answer(state, agent_id).await?;
    let now = state.clock.now();
    let mut recorded = None;
    let record = update_routed(state, service_id, |record, appended| {
        let done = voice::record_outcome(record, agent_id, outcome, policy, auto_answer, now)?;
        appended.push(done.dialed.clone());
        recorded = Some(done);
        Ok(())
    })?
    .durable()
    .await?;
    let recorded = recorded.ok_or_else(|| not_found(service_id))?;

    // The agent is free: a reservation is counted as taken, then ended, so the router frees
    // the agent the same way whether they accepted first or not.
    let (service, agent) = (service_id.to_string(), agent_id.to_string());
    if recorded.was == CallbackState::Routing {
        state.router.send(Event::Started {
            service: service.clone(),
            agent: agent.clone(),
        });
    }
    state.router.send(Event::Ended { service, agent });
    match record.state {
        CallbackState::Scheduled => state.router.scheduled_changed(),
        CallbackState::Queued => route(state, &record, &settings),
        _ => {}
    }
    tracing::info!(
        service_id = %service_id,
        agent = %agent_id,
        outcome = %outcome,
        attempts = recorded.attempts,
        state = %record.state,
        "voice callback outcome recorded"
    );
    Ok(OutcomeRecorded { record, recorded })
}

/// Whether `agent_id` answers automatically (may record an outcome without accepting).
pub(super) async fn auto_answer(state: &AppState, agent_id: &str) -> Result<bool, AppError> {
    let agent = agent_id.to_string();
    state
        .router
        .query(move |router, _| router.agent(&agent).map(|a| a.config.auto_answer))
        .await
        .ok_or_else(|| AppError::Unavailable("the router is stopping: try again".into()))?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no agent has the id `{agent_id}`: list them with GET /genesys/1/admin/agents"
            ))
        })
}
