//! What the agent desktop shows of one agent at a time: the agent's live state, the
//! interactions reserved for or handled by it, and where its history stands. The desktop's
//! event stream (`GET /agent/events`) sends this whenever it changes.

use super::chat::{self, Interaction};
use super::{history, AppError, AppState};
use crate::domain::agent::Agent;

/// One agent as its desktop sees it.
#[derive(Debug, Clone)]
pub struct DesktopView {
    /// The agent with its live state (from the router).
    pub agent: Agent,
    /// Its reserved and active interactions, as `GET .../interactions` lists them.
    pub interactions: Vec<Interaction>,
    /// Changes whenever the agent's history does (see [`history::version`]).
    pub history_version: u64,
}

/// The desktop view of `agent_id`.
///
/// # Errors
/// Unknown agent (404), the router stopping (503), storage failure.
pub async fn desktop_view(state: &AppState, agent_id: &str) -> Result<DesktopView, AppError> {
    let id = agent_id.to_string();
    let agent = state
        .router
        .query(move |router, _| router.agent(&id).cloned())
        .await
        .ok_or_else(|| AppError::Unavailable("the router is stopping: try again".into()))?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no agent has the id `{agent_id}`: list them with GET /genesys/1/admin/agents"
            ))
        })?;
    let interactions = chat::interactions(state, agent_id).await?;
    let history_version = history::version(state, agent_id)?;
    Ok(DesktopView {
        agent,
        interactions,
        history_version,
    })
}
