//! What the console's live overview and Health page show, built from the same sources as
//! `GET /metrics` ([`super::metrics::snapshot`]), the router's queues and agents, and a
//! bounded read of the last day's services for the charts. Nothing here writes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{agents, metrics, queues, AppError, AppState};
use crate::domain::agent::{Agent, AgentState};
use crate::domain::service::{CallbackState, ServiceRecord};
use crate::domain::time::Timestamp;

/// Services read for the charts at most: a chart must stay cheap to draw.
pub const CHART_SCAN_LIMIT: usize = 20_000;

/// The charts' window: the last 24 hours.
const DAY_MILLIS: u64 = 24 * 3600 * 1000;
const HOUR_MILLIS: u64 = 3600 * 1000;

/// The live numbers of this moment, sent to the overview page on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// Per configured service: (state, count) for the states that are not COMPLETED.
    pub services: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Every virtual queue.
    pub queues: Vec<QueueRow>,
    /// Agents per state: ready, not ready, busy (handling or reserved), logged out.
    pub agents: AgentCounts,
    /// Handshaken CometD clients.
    pub cometd_clients: u64,
}

/// One virtual queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueRow {
    /// `_urs_virtual_queue`.
    pub name: String,
    /// Services waiting.
    pub waiting: u64,
    /// Oldest wait, in seconds.
    pub oldest_wait_secs: u64,
    /// Estimated waiting time, seconds; `None` before any departure.
    pub ewt_secs: Option<u64>,
}

/// Agents per state. An agent with work (reserved or in an interaction) counts as busy,
/// whatever its own state says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentCounts {
    /// Ready and without work.
    pub ready: u64,
    /// Not ready and without work.
    pub not_ready: u64,
    /// With a reservation or an interaction.
    pub busy: u64,
    /// Logged out.
    pub logged_out: u64,
}

impl AgentCounts {
    /// Counts `agents` by their live state.
    pub fn of<'a>(agents: impl IntoIterator<Item = &'a Agent>) -> Self {
        let mut counts = Self::default();
        for agent in agents {
            let working =
                !agent.reserved.is_empty() || agent.active.values().any(|ids| !ids.is_empty());
            match agent.state {
                AgentState::LoggedOut => counts.logged_out += 1,
                _ if working => counts.busy += 1,
                AgentState::Ready => counts.ready += 1,
                AgentState::NotReady => counts.not_ready += 1,
            }
        }
        counts
    }
}

/// The live numbers of this moment.
///
/// # Errors
/// Storage failed, or the router has stopped (503).
pub async fn overview(state: &AppState) -> Result<Overview, AppError> {
    let mut services: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for (name, callback_state, count) in metrics::services_by_state(state).await? {
        services
            .entry(name)
            .or_default()
            .insert(callback_state, count);
    }
    let queues = queues::queues(state)
        .await?
        .into_iter()
        .map(|q| QueueRow {
            name: q.name,
            waiting: q.waiting as u64,
            oldest_wait_secs: q.oldest_wait_secs,
            ewt_secs: q.ewt_secs,
        })
        .collect();
    let agents = AgentCounts::of(&agents::list_agents(state).await?);
    Ok(Overview {
        services,
        queues,
        agents,
        cometd_clients: state.bayeux.client_count() as u64,
    })
}

/// What the charts draw: the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartData {
    /// Created per hour, oldest hour first (24 entries).
    pub created_per_hour: Vec<u64>,
    /// Completed per hour, oldest hour first (24 entries).
    pub completed_per_hour: Vec<u64>,
    /// Completed by reason (wire name).
    pub completed_by_reason: BTreeMap<String, u64>,
    /// Queue waits in seconds of the services that entered a queue and left it (or still wait).
    pub queue_waits_secs: Vec<u64>,
    /// The scan stopped at [`CHART_SCAN_LIMIT`]: the charts show only part of the day.
    pub truncated: bool,
}

/// The charts' data for the 24 hours before `now`.
///
/// There is no index by creation time yet, so this reads the services of every state
/// through the state index, bounded by [`CHART_SCAN_LIMIT`], and keeps those of the window.
///
/// # Errors
/// Storage failed.
pub async fn chart_data(state: &AppState) -> Result<ChartData, AppError> {
    let store = state.store.clone();
    let now = state.clock.now();
    let since = Timestamp::from_millis(now.as_millis().saturating_sub(DAY_MILLIS));
    let records = tokio::task::spawn_blocking(move || {
        store.services_in_states(
            None,
            &CallbackState::ALL,
            &|r| r.created_at >= since || completed_at(r).is_some_and(|at| at >= since),
            CHART_SCAN_LIMIT,
        )
    })
    .await
    .map_err(|err| AppError::Unavailable(format!("the chart scan failed: {err}")))??;
    Ok(tally(&records, now))
}

/// Sorts `records` into the charts' buckets for the day before `now`.
pub fn tally(records: &[ServiceRecord], now: Timestamp) -> ChartData {
    let now = now.as_millis();
    let mut data = ChartData {
        created_per_hour: vec![0; 24],
        completed_per_hour: vec![0; 24],
        truncated: records.len() >= CHART_SCAN_LIMIT,
        ..ChartData::default()
    };
    // Hour 23 is the hour ending now.
    let slot = |at: Timestamp| {
        let ago = now.checked_sub(at.as_millis())?;
        (ago < DAY_MILLIS).then(|| 23 - (ago / HOUR_MILLIS) as usize)
    };
    for record in records {
        if let Some(i) = slot(record.created_at) {
            data.created_per_hour[i] += 1;
        }
        if let Some(at) = completed_at(record) {
            if let Some(i) = slot(at) {
                data.completed_per_hour[i] += 1;
                let reason = record.reason.map_or("UNKNOWN", |r| r.as_str());
                *data
                    .completed_by_reason
                    .entry(reason.to_string())
                    .or_default() += 1;
            }
        }
        if let Some(queued) = record.queued_at {
            // Until it left the queue: the first later state change, or now.
            let left = record
                .state_history
                .iter()
                .find(|c| c.at > queued && c.state != CallbackState::Queued)
                .map_or(now, |c| c.at.as_millis());
            data.queue_waits_secs
                .push(left.saturating_sub(queued.as_millis()) / 1000);
        }
    }
    data
}

/// When `record` completed, if it has.
fn completed_at(record: &ServiceRecord) -> Option<Timestamp> {
    (record.state == CallbackState::Completed)
        .then(|| {
            record
                .state_history
                .iter()
                .rev()
                .find(|c| c.state == CallbackState::Completed)
                .map(|c| c.at)
        })
        .flatten()
}
