//! What `GET /metrics` reads at scrape time: the gauges of state, from the same sources the
//! admin API answers from (the in-memory active counts and the state index, the router's
//! queues and agents, the CometD clients, sled's size on disk).

use std::collections::BTreeSet;

use super::{queues, AppError, AppState};
use crate::domain::agent::AgentState;
use crate::domain::service::CallbackState;
use crate::metrics::{QueueGauge, Snapshot};

/// Counted per configured service and state at most this far: a scrape must stay cheap.
const COUNT_LIMIT: usize = 1_000_000;

/// The gauges of this moment.
///
/// # Errors
/// Storage failed, or the router has stopped (503).
pub async fn snapshot(state: &AppState) -> Result<Snapshot, AppError> {
    let services = services_by_state(state).await?;
    let store = state.store.clone();
    // sled calls block; keep them off the async workers.
    let store_bytes = tokio::task::spawn_blocking(move || store.size_on_disk().ok())
        .await
        .map_err(|err| AppError::Unavailable(format!("the metrics scan failed: {err}")))?;

    let queues = queues::queues(state)
        .await?
        .into_iter()
        .map(|q| QueueGauge {
            name: q.name,
            waiting: q.waiting as u64,
            oldest_wait_secs: q.oldest_wait_secs,
        })
        .collect();
    let agents = state
        .router
        .query(|router, _| {
            let mut counts = [0u64; 3];
            for agent in router.agents() {
                counts[agent_slot(agent.state)] += 1;
            }
            counts
        })
        .await
        .ok_or(AppError::Store(crate::store::StoreError::ShuttingDown))?;
    let agents = [
        AgentState::LoggedOut,
        AgentState::NotReady,
        AgentState::Ready,
    ]
    .into_iter()
    .map(|s| (s.as_str(), agents[agent_slot(s)]))
    .collect();
    Ok(Snapshot {
        services,
        queues,
        agents,
        cometd_clients: state.bayeux.client_count() as u64,
        store_bytes,
    })
}

/// Services not COMPLETED, per configured service (and any deleted one that still has
/// active services) and state: `(service, state, count)`. Shared by `/metrics` and the
/// console's live overview.
///
/// # Errors
/// Storage failed.
pub async fn services_by_state(
    state: &AppState,
) -> Result<Vec<(String, &'static str, u64)>, AppError> {
    let store = state.store.clone();
    let names: BTreeSet<String> = state
        .catalog
        .all()
        .iter()
        .map(|s| s.config.name.clone())
        .chain(store.active_counts().into_keys())
        .collect();
    // sled calls block; keep them off the async workers.
    tokio::task::spawn_blocking(move || {
        let mut services = Vec::new();
        for name in &names {
            for callback_state in CallbackState::ALL {
                if callback_state == CallbackState::Completed {
                    continue;
                }
                let count = store.count_in_states(name, &[callback_state], COUNT_LIMIT)?;
                services.push((name.clone(), callback_state.as_str(), count as u64));
            }
        }
        Ok::<_, crate::store::StoreError>(services)
    })
    .await
    .map_err(|err| AppError::Unavailable(format!("the services count failed: {err}")))?
    .map_err(AppError::from)
}

fn agent_slot(state: AgentState) -> usize {
    match state {
        AgentState::LoggedOut => 0,
        AgentState::NotReady => 1,
        AgentState::Ready => 2,
    }
}
