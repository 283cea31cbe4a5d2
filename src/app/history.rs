//! An agent's handled interactions, for the desktop's History
//! (`GET /genesys/1/agent/{agent}/history`).
//!
//! A service record says who handled it: every time it entered PROCESSING, the agent reserved
//! for it then (the last reservation the record keeps before that moment, else
//! `reserved_agent`: [`ServiceRecord::processing_agents`]) took it, and the next state entered
//! ended that attempt. A callback that was requeued and handled again has one attempt per
//! agent turn. The services are found through the store's agent index, which holds the agents
//! [`ServiceRecord::handling_agents`] names, so only this agent's records are read: see
//! docs/decisions.md.

use serde::Serialize;

use super::{AppError, AppState};
use crate::domain::service::{CallbackState, RoutingEvent, RoutingEventKind, ServiceRecord};
use crate::domain::time::Timestamp;
use crate::domain::voice::RedialPolicy;

/// Records read at most for one history.
const MAX_ENTRIES: usize = 1_000;

/// One turn of one agent at one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The service.
    pub service_id: String,
    /// Its configured service.
    pub service_name: String,
    /// `_media_type` (`chat`, `voice`).
    pub media: String,
    /// `_customer_number`.
    pub customer_number: Option<String>,
    /// The completion reason (`AGENT_CONNECTED`), `active` while handled, the dial outcome of
    /// a voice callback that is dialed again (`NO_ANSWER`, `BUSY`), or the state the service
    /// went back to (`QUEUED`: requeued).
    pub outcome: String,
    /// For a voice callback whose agent recorded how the call went: that outcome, which
    /// attempt it was, and when the customer is dialed again.
    pub dial: Option<DialSummary>,
    /// When the agent took it (ISO).
    pub started_at: String,
    /// When the turn ended (ISO), `None` while active.
    pub ended_at: Option<String>,
    /// Whole seconds from start to end (or to now while active).
    pub duration_secs: u64,
    #[serde(skip)]
    started: Timestamp,
}

/// The dial attempt an agent's turn at a voice callback ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DialSummary {
    /// `connected`, `no_answer`, `busy`, `wrong_number`.
    pub outcome: String,
    /// Which attempt this was (1 for the first).
    pub attempt: u64,
    /// The service's `_max_dial_attempts`, when its stored options still read.
    pub max_attempts: Option<u64>,
    /// When the callback is dialed again (ISO); `None` when it completed.
    pub redial_at: Option<String>,
}

/// The turns of `agent` that started at or after `since`, newest first.
///
/// # Errors
/// Unknown agent (404), storage failure.
pub fn history(
    state: &AppState,
    agent: &str,
    since: Timestamp,
) -> Result<Vec<HistoryEntry>, AppError> {
    if state.store.agent(agent)?.is_none() {
        return Err(AppError::NotFound(format!(
            "no agent has the id `{agent}`: list them with GET /genesys/1/admin/agents"
        )));
    }
    let now = state.clock.now();
    // Who took a turn and when is the record's; only the dial outcomes are read from the
    // routing history, below.
    let handled_since = |record: &ServiceRecord| {
        turns(record, &[])
            .iter()
            .any(|t| t.agent == agent && t.started >= since)
    };
    let records = state.store.services_handled_by(
        agent,
        // SCHEDULED too: a voice callback waiting for its redial was handled already.
        &[
            CallbackState::Scheduled,
            CallbackState::Processing,
            CallbackState::Completed,
        ],
        &handled_since,
        MAX_ENTRIES,
    )?;
    let mut entries: Vec<HistoryEntry> = Vec::new();
    for record in &records {
        // Only a voice callback dialed at least once has outcomes to show: the others cost
        // no read of their routing history.
        let history = if record.dial_attempts > 0 {
            state.store.routing_history(&record.id)?
        } else {
            Vec::new()
        };
        let policy = crate::app::records::settings_of(state, record)
            .ok()
            .map(|settings| RedialPolicy::from(&*settings));
        entries.extend(
            turns(record, &history)
                .into_iter()
                .filter(|t| t.agent == agent && t.started >= since)
                .map(|t| entry(record, t, policy, now)),
        );
    }
    entries.sort_by(|a, b| {
        b.started
            .cmp(&a.started)
            .then_with(|| a.service_id.cmp(&b.service_id))
    });
    Ok(entries)
}

/// A number that changes whenever `agent`'s history of the last 24 hours does (compare it
/// for equality only): a hash of its entries' ids, outcomes and ends.
///
/// # Errors
/// Storage failure.
pub fn version(state: &AppState, agent: &str) -> Result<u64, AppError> {
    use std::hash::{Hash, Hasher};
    let since = Timestamp::from_millis(state.clock.now().as_millis().saturating_sub(DAY_MS));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for entry in history(state, agent, since)? {
        (
            &entry.service_id,
            &entry.outcome,
            &entry.started_at,
            &entry.ended_at,
        )
            .hash(&mut hasher);
    }
    // JavaScript reads numbers exactly up to 2^53.
    Ok(hasher.finish() & ((1 << 53) - 1))
}

/// A day, the History's default reach.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// One agent's turn at a service, as the record tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Turn {
    agent: String,
    started: Timestamp,
    ended: Option<Timestamp>,
    outcome: String,
    /// The dial outcome recorded in the turn and which attempt it was.
    dialed: Option<(String, u64)>,
}

/// Every turn of every agent at `record`, oldest first, with the dial outcomes of its
/// `routing` history (oldest first; empty leaves the turns without them).
fn turns(record: &ServiceRecord, routing: &[RoutingEvent]) -> Vec<Turn> {
    let history = &record.state_history;
    record
        .processing_agents()
        .map(|(i, agent)| {
            let change = &history[i];
            let agent = agent.to_string();
            let next = history.get(i + 1);
            let ended = next.map(|n| n.at);
            let dialed = dial_attempt(routing, &agent, change.at, ended);
            let outcome = match (next, &dialed) {
                (None, _) => "active".to_string(),
                (Some(next), _) if next.state == CallbackState::Completed => next
                    .reason
                    .map_or_else(|| "COMPLETED".to_string(), |r| r.as_str().to_string()),
                (Some(_), Some((dial, _))) => dial.to_ascii_uppercase(),
                (Some(next), None) => next.state.as_str().to_string(),
            };
            Turn {
                agent,
                started: change.at,
                ended,
                outcome,
                dialed,
            }
        })
        .collect()
}

/// The last dial outcome `agent` recorded between `from` and `to` (or since `from` while the
/// turn lasts), with its attempt number counted over the whole routing history.
fn dial_attempt(
    history: &[RoutingEvent],
    agent: &str,
    from: Timestamp,
    to: Option<Timestamp>,
) -> Option<(String, u64)> {
    let mut attempt = 0;
    let mut last = None;
    for event in history {
        if let RoutingEventKind::Dialed {
            agent: who,
            outcome,
        } = &event.kind
        {
            attempt += 1;
            let within = event.at >= from && to.is_none_or(|to| event.at <= to);
            if who == agent && within {
                last = Some((outcome.clone(), attempt));
            }
        }
    }
    last
}

fn entry(
    record: &ServiceRecord,
    turn: Turn,
    policy: Option<RedialPolicy>,
    now: Timestamp,
) -> HistoryEntry {
    let end = turn.ended.unwrap_or(now);
    let redialed = record
        .state_history
        .iter()
        .any(|c| Some(c.at) == turn.ended && c.state == CallbackState::Scheduled);
    let dial = turn.dialed.as_ref().map(|(outcome, attempt)| DialSummary {
        outcome: outcome.clone(),
        attempt: *attempt,
        max_attempts: policy.map(|p| p.max_attempts),
        redial_at: match (redialed, turn.ended, policy) {
            (true, Some(ended), Some(p)) => Some(ended.plus_secs(p.retry_timeout_secs).to_iso()),
            _ => None,
        },
    });
    HistoryEntry {
        service_id: record.id.clone(),
        service_name: record.service_name.clone(),
        media: record
            .options
            .get("_media_type")
            .cloned()
            .unwrap_or_else(|| "chat".into()),
        customer_number: record.customer_number.clone(),
        outcome: turn.outcome,
        dial,
        started_at: turn.started.to_iso(),
        ended_at: turn.ended.map(Timestamp::to_iso),
        duration_secs: end.as_millis().saturating_sub(turn.started.as_millis()) / 1000,
        started: turn.started,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::CallbackReason;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + secs * 1000)
    }

    fn reserved(record: &mut ServiceRecord, agent: &str, secs: u64) {
        record.note_routing(&[RoutingEvent {
            at: at(secs),
            step: 1,
            kind: RoutingEventKind::Reserved {
                agent: agent.into(),
            },
        }]);
        record.reserved_agent = Some(agent.into());
    }

    #[test]
    fn each_processing_spell_is_a_turn_of_the_agent_reserved_then() {
        let mut record = ServiceRecord::new("s1", "callback", Preset::ChatDelayed, at(0));
        reserved(&mut record, "ann", 1);
        record.enter(CallbackState::Processing, None, at(2), "handled");
        record.reserved_agent = None;
        record.enter(CallbackState::Queued, None, at(5), "no answer");
        reserved(&mut record, "bob", 10);
        record.enter(CallbackState::Processing, None, at(11), "handled");
        let open = turns(&record, &[]);
        assert_eq!(open.len(), 2, "{open:?}");
        assert_eq!(
            (open[0].agent.as_str(), open[0].outcome.as_str()),
            ("ann", "QUEUED")
        );
        assert_eq!(open[0].ended, Some(at(5)));
        assert_eq!(
            (open[1].agent.as_str(), open[1].outcome.as_str()),
            ("bob", "active")
        );
        record.enter(
            CallbackState::Completed,
            Some(CallbackReason::AgentConnected),
            at(71),
            "done",
        );
        let done = turns(&record, &[]);
        assert_eq!(done[1].outcome, "AGENT_CONNECTED");
        let shown = entry(&record, done[1].clone(), None, at(500));
        assert_eq!(shown.duration_secs, 60);
    }

    /// The agents `turns` finds, each once, in byte order.
    fn turn_agents(record: &ServiceRecord) -> Vec<String> {
        let mut agents: Vec<String> = turns(record, &[]).into_iter().map(|t| t.agent).collect();
        agents.sort();
        agents.dedup();
        agents
    }

    #[test]
    fn the_handling_agents_are_exactly_the_agents_of_the_turns() {
        let mut fixtures = Vec::new();
        // Requeued from ann to bob, then completed (the first test's record).
        let mut record = ServiceRecord::new("s1", "callback", Preset::ChatDelayed, at(0));
        fixtures.push(record.clone());
        reserved(&mut record, "ann", 1);
        fixtures.push(record.clone());
        record.enter(CallbackState::Processing, None, at(2), "handled");
        fixtures.push(record.clone());
        record.reserved_agent = None;
        record.enter(CallbackState::Queued, None, at(5), "no answer");
        fixtures.push(record.clone());
        reserved(&mut record, "bob", 10);
        record.enter(CallbackState::Processing, None, at(11), "handled");
        fixtures.push(record.clone());
        record.enter(
            CallbackState::Completed,
            Some(CallbackReason::AgentConnected),
            at(71),
            "done",
        );
        fixtures.push(record);
        // Reserved but never handled (the second test's record).
        let mut unhandled = ServiceRecord::new("s2", "chat-delay", Preset::ChatDelayed, at(0));
        reserved(&mut unhandled, "ann", 1);
        unhandled.enter(
            CallbackState::Completed,
            Some(CallbackReason::FailUserNoConfirm),
            at(60),
            "no confirm",
        );
        fixtures.push(unhandled);
        // PROCESSING with no `Reserved` event: the reserved agent took it; with neither,
        // nobody did.
        let mut bare = ServiceRecord::new("s3", "callback", Preset::ChatDelayed, at(0));
        bare.enter(CallbackState::Processing, None, at(2), "handled");
        fixtures.push(bare.clone());
        bare.reserved_agent = Some("carol".into());
        fixtures.push(bare);
        // A later reservation does not change who took an earlier turn; the same agent twice
        // is named once.
        let mut twice = ServiceRecord::new("s4", "callback", Preset::ChatDelayed, at(0));
        reserved(&mut twice, "carol", 1);
        twice.enter(CallbackState::Processing, None, at(2), "handled");
        twice.enter(CallbackState::Scheduled, None, at(3), "redial");
        reserved(&mut twice, "carol", 4);
        twice.enter(CallbackState::Processing, None, at(5), "handled");
        reserved(&mut twice, "dave", 6);
        fixtures.push(twice);

        let mut seen = std::collections::BTreeSet::new();
        for record in &fixtures {
            let agents: Vec<String> = record
                .handling_agents()
                .into_iter()
                .map(str::to_string)
                .collect();
            assert_eq!(agents, turn_agents(record), "{record:?}");
            seen.extend(agents);
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["ann", "bob", "carol"],
            "the fixtures cover several agents (and dave, reserved after every turn, is none)"
        );
    }

    #[test]
    fn a_service_never_handled_has_no_turns() {
        let mut record = ServiceRecord::new("s2", "chat-delay", Preset::ChatDelayed, at(0));
        reserved(&mut record, "ann", 1);
        record.enter(
            CallbackState::Completed,
            Some(CallbackReason::FailUserNoConfirm),
            at(60),
            "no confirm",
        );
        assert!(turns(&record, &[]).is_empty());
    }
}
