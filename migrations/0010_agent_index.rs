//! Schema 10: the `by_agent` index (agent ++ 0 ++ id -> state code), one entry per agent who
//! handled a service, so that an agent's desktop History, and the version every desktop
//! snapshot computes from it, reads only that agent's services instead of every SCHEDULED,
//! PROCESSING and COMPLETED record (issue 11). Built from the stored records (service format
//! 2, read up to the reserved agent with a frozen view), in batches; who handled a service is
//! the domain's answer ([`ServiceRecord::handling_agents`]), as for the live index.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Migration;
use crate::domain::options::Preset;
use crate::domain::service::{CallbackState, Reservation, ServiceRecord, StateChange};
use crate::domain::time::Timestamp;
use crate::store::{by_agent, codec, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 10,
    name: "agent_index",
    apply,
};

/// A format-2 service record up to its reserved agent (bincode reads fields in order and
/// ignores what follows). Enums are read as bincode writes them, by variant index. Frozen:
/// never change it.
#[derive(Deserialize)]
struct ServiceV2 {
    id: String,
    _service_name: String,
    _preset: u32,
    _options: BTreeMap<String, String>,
    _user_data: BTreeMap<String, String>,
    _owner: Option<String>,
    _customer_number: Option<String>,
    _device_os: Option<String>,
    _device_notification_id: Option<String>,
    state: u32,
    _reason: Option<u32>,
    _created_at: u64,
    _desired_time: u64,
    _expire_at: u64,
    _queued_at: Option<u64>,
    state_history: Vec<StateChangeV2>,
    routing_history: Vec<RoutingEventV2>,
    reserved_agent: Option<String>,
}

/// Format 2's state change. Frozen: never change it.
#[derive(Deserialize)]
struct StateChangeV2 {
    at: u64,
    state: u32,
    _reason: Option<u32>,
    _note: String,
}

/// Format 2's routing event. Frozen: never change it.
#[derive(Deserialize)]
struct RoutingEventV2 {
    at: u64,
    _step: u16,
    kind: RoutingKindV2,
}

/// Format 2's routing event kinds, in their stored order. Frozen: never change it (kinds added
/// later come after these, and none of them names a reservation).
#[derive(Deserialize)]
#[allow(dead_code)]
enum RoutingKindV2 {
    Entered { target: String },
    Skipped { statistic: String, value: i64 },
    TimedOut,
    Reserved { agent: String },
    Released { agent: String, why: String },
    Dialed { agent: String, outcome: String },
}

/// Format 2's states by variant index. Frozen: never change it.
const STATES_V2: [CallbackState; 5] = [
    CallbackState::Scheduled,
    CallbackState::Queued,
    CallbackState::Routing,
    CallbackState::Processing,
    CallbackState::Completed,
];

fn state_v2(variant: u32, what: &str) -> Result<CallbackState, StoreError> {
    usize::try_from(variant)
        .ok()
        .and_then(|i| STATES_V2.get(i).copied())
        .ok_or_else(|| StoreError::Corrupt {
            what: what.to_string(),
            reason: format!("state variant {variant}"),
        })
}

/// The parts of `old` that say who handled it, as a domain record (the rest left empty).
fn handling_view(old: ServiceV2, what: &str) -> Result<(ServiceRecord, CallbackState), StoreError> {
    let state = state_v2(old.state, what)?;
    let mut record = ServiceRecord::new(old.id, "", Preset::ChatDelayed, Timestamp::from_millis(0));
    record.state = state;
    record.state_history = old
        .state_history
        .into_iter()
        .map(|change| {
            Ok(StateChange {
                at: Timestamp::from_millis(change.at),
                state: state_v2(change.state, what)?,
                reason: None,
                note: String::new(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    record.reservations = old
        .routing_history
        .into_iter()
        .filter_map(|event| match event.kind {
            RoutingKindV2::Reserved { agent } => Some(Reservation {
                at: Timestamp::from_millis(event.at),
                agent,
            }),
            _ => None,
        })
        .collect();
    record.reserved_agent = old.reserved_agent;
    Ok((record, state))
}

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let services = db.open_tree(tree::SERVICES)?;
    let by_agent = db.open_tree(tree::BY_AGENT)?;
    // One batch per chunk: a large database is indexed without one huge write.
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for item in services.iter() {
        let (key, value) = item?;
        let what = format!("service {}", String::from_utf8_lossy(&key));
        let old: ServiceV2 = codec::decode(2, &value, &what)?;
        let (record, state) = handling_view(old, &what)?;
        for (key, value) in by_agent::entries(&record.handling_agents(), &record.id, state) {
            batch.insert(key, &value);
            pending += 1;
        }
        if pending >= 10_000 {
            by_agent.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    by_agent.apply_batch(batch)?;
    Ok(())
}
