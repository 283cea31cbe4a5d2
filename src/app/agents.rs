//! Agents of the embedded contact center: configuration (admin API) and state (agent
//! desktop API). Every change is stored durably before it is answered.

use super::{AppError, AppState};
use crate::domain::agent::{Agent, AgentConfig, AgentRecord, AgentState};
use crate::domain::options::FieldError;
use crate::router::core::Event;

/// Creates or replaces agent `config.id`. A new agent is logged out; a replaced one keeps its
/// state. Returns the stored agent and whether it is new.
///
/// # Errors
/// A bad field (400), storage failure.
pub async fn put_agent(
    state: &AppState,
    config: AgentConfig,
) -> Result<(AgentRecord, bool), AppError> {
    config
        .validate()
        .map_err(|(field, message)| FieldError::new(field, message))?;
    let _serialized = state.agent_writes.lock().await;
    let now = state.clock.now();
    let existing = state.store.agent(&config.id)?;
    let created = existing.is_none();
    let record = match existing {
        Some(old) => AgentRecord { config, ..old },
        None => AgentRecord {
            config,
            state: AgentState::LoggedOut,
            state_since: now,
            idle_since: now,
            reason: None,
        },
    };
    state.store.put_agent(&record)?.durable().await?;
    state
        .router
        .send(Event::AgentUpdated(record.clone().into_agent()));
    tracing::info!(agent = %record.config.id, created, "agent saved");
    Ok((record, created))
}

/// Removes an agent.
///
/// # Errors
/// Unknown agent (404), storage failure.
pub async fn delete_agent(state: &AppState, id: &str) -> Result<(), AppError> {
    let _serialized = state.agent_writes.lock().await;
    let Some(deleted) = state.store.delete_agent(id)?.if_changed() else {
        return Err(unknown_agent(id));
    };
    deleted.durable().await?;
    state.router.send(Event::AgentRemoved {
        agent: id.to_string(),
    });
    tracing::info!(agent = %id, "agent deleted");
    Ok(())
}

/// Every agent with its live state (reservations and interactions), by id. The router owns
/// the live state; if it has stopped, the stored agents are listed without it.
///
/// # Errors
/// Storage failure.
pub async fn list_agents(state: &AppState) -> Result<Vec<Agent>, AppError> {
    let live = state
        .router
        .query(|router, _| router.agents().cloned().collect::<Vec<Agent>>())
        .await;
    match live {
        Some(mut agents) => {
            agents.sort_by(|a, b| a.config.id.cmp(&b.config.id));
            Ok(agents)
        }
        None => Ok(state
            .store
            .agents()?
            .into_iter()
            .map(AgentRecord::into_agent)
            .collect()),
    }
}

/// One stored agent (configuration and last state, without its live work).
///
/// # Errors
/// Unknown agent (404), storage failure.
pub fn get_agent(state: &AppState, id: &str) -> Result<AgentRecord, AppError> {
    state.store.agent(id)?.ok_or_else(|| unknown_agent(id))
}

/// Sets an agent's state, with the reason code of a Not Ready state (`None` for the others;
/// see [`crate::domain::agent::parse_reason`]). Becoming ready starts its idle time (longest
/// idle is routed first). Another reason code while Not Ready starts a new Not Ready spell.
///
/// # Errors
/// Unknown agent (404), storage failure.
pub async fn set_agent_state(
    state: &AppState,
    id: &str,
    new_state: AgentState,
    reason: Option<String>,
) -> Result<AgentRecord, AppError> {
    let _serialized = state.agent_writes.lock().await;
    let mut record = state.store.agent(id)?.ok_or_else(|| unknown_agent(id))?;
    let reason = reason.filter(|_| new_state == AgentState::NotReady);
    if record.state != new_state || record.reason != reason {
        let now = state.clock.now();
        record.state = new_state;
        record.reason = reason;
        record.state_since = now;
        if new_state == AgentState::Ready {
            record.idle_since = now;
        }
        state.store.put_agent(&record)?.durable().await?;
        state
            .router
            .send(Event::AgentUpdated(record.clone().into_agent()));
        tracing::info!(agent = %id, state = %new_state, "agent state changed");
    }
    Ok(record)
}

fn unknown_agent(id: &str) -> AppError {
    AppError::NotFound(format!(
        "no agent has the id `{id}`: list them with GET /genesys/1/admin/agents"
    ))
}
