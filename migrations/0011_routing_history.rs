//! Schema 11: the routing history moves out of the service record into its own tree,
//! `routing_history` (service id ++ 0 ++ seq -> one routing event, format 1), so that routing
//! appends a small value instead of rewriting the record (issue 13: a create routed at once
//! writes its record once). Every format-2 record is rewritten as format 3: format 2 without
//! `routing_history`, with the two facts of it the record's rules read (its reservations, its
//! number of dial attempts) in its place.
//!
//! Records are moved in batches, each one transaction over both trees: a record's events and
//! its format-3 rewrite commit together, so a migration killed half-way leaves every record
//! either format 2 with no events in the tree or format 3 with all of them, and the next run
//! moves only what is still format 2. Every format is frozen below, with every type it holds
//! (enums by variant index, times as milliseconds): nothing here reads a live type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::Transactional;

use super::Migration;
use crate::store::{codec, keys, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 11,
    name: "routing_history",
    apply,
};

/// Records moved per transaction: sled holds a transaction's writes in memory.
const BATCH: usize = 500;

/// A service record as format 2 stored it. Enums are read as bincode writes them, by variant
/// index. Frozen: never change it.
#[derive(Deserialize)]
struct ServiceV2 {
    id: String,
    service_name: String,
    preset: u32,
    options: BTreeMap<String, String>,
    user_data: BTreeMap<String, String>,
    owner: Option<String>,
    customer_number: Option<String>,
    device_os: Option<String>,
    device_notification_id: Option<String>,
    state: u32,
    reason: Option<u32>,
    created_at_ms: u64,
    desired_time_ms: u64,
    expire_at_ms: u64,
    queued_at_ms: Option<u64>,
    state_history: Vec<StateChangeV1>,
    routing_history: Vec<RoutingEventV1>,
    reserved_agent: Option<String>,
    chat_session_id: Option<String>,
    route: Option<RouteV1>,
    confirmed_at_ms: Option<u64>,
}

/// A service record as format 3 stores it when this migration was written. Frozen: never
/// change it.
#[derive(Serialize)]
struct ServiceV3 {
    id: String,
    service_name: String,
    preset: u32,
    options: BTreeMap<String, String>,
    user_data: BTreeMap<String, String>,
    owner: Option<String>,
    customer_number: Option<String>,
    device_os: Option<String>,
    device_notification_id: Option<String>,
    state: u32,
    reason: Option<u32>,
    created_at_ms: u64,
    desired_time_ms: u64,
    expire_at_ms: u64,
    queued_at_ms: Option<u64>,
    state_history: Vec<StateChangeV1>,
    reservations: Vec<ReservationV1>,
    dial_attempts: u32,
    reserved_agent: Option<String>,
    chat_session_id: Option<String>,
    route: Option<RouteV1>,
    confirmed_at_ms: Option<u64>,
}

/// A state change, in formats 2 and 3. Frozen: never change it.
#[derive(Deserialize, Serialize)]
struct StateChangeV1 {
    at_ms: u64,
    state: u32,
    reason: Option<u32>,
    note: String,
}

/// A routing event: inside a format-2 record, and as format 1 of the `routing_history`
/// tree's values (the same fields). Frozen: never change it.
#[derive(Deserialize, Serialize)]
struct RoutingEventV1 {
    at_ms: u64,
    step: u16,
    kind: RoutingKindV1,
}

/// Routing event kinds, in their stored order. Frozen: never change it.
#[derive(Deserialize, Serialize)]
enum RoutingKindV1 {
    Entered { target: String },
    Skipped { statistic: String, value: i64 },
    TimedOut,
    Reserved { agent: String },
    Released { agent: String, why: String },
    Dialed { agent: String, outcome: String },
}

/// Format 3's reservation: a `Reserved` event's time and agent. Frozen: never change it.
#[derive(Serialize)]
struct ReservationV1 {
    at_ms: u64,
    agent: String,
}

/// Routing progress, in formats 2 and 3. Frozen: never change it.
#[derive(Deserialize, Serialize)]
struct RouteV1 {
    step: u16,
    step_entered_at_ms: u64,
    target_set: Vec<u16>,
}

/// The format version of a routing event value.
const EVENT_FORMAT: u8 = 1;
/// The format version of the records this migration writes.
const SERVICE_FORMAT: u8 = 3;

/// `old` as format 3, and its routing history.
fn split(old: ServiceV2) -> (ServiceV3, Vec<RoutingEventV1>) {
    let reservations = old
        .routing_history
        .iter()
        .filter_map(|event| match &event.kind {
            RoutingKindV1::Reserved { agent } => Some(ReservationV1 {
                at_ms: event.at_ms,
                agent: agent.clone(),
            }),
            _ => None,
        })
        .collect();
    let dialed = old
        .routing_history
        .iter()
        .filter(|event| matches!(event.kind, RoutingKindV1::Dialed { .. }))
        .count();
    let new = ServiceV3 {
        id: old.id,
        service_name: old.service_name,
        preset: old.preset,
        options: old.options,
        user_data: old.user_data,
        owner: old.owner,
        customer_number: old.customer_number,
        device_os: old.device_os,
        device_notification_id: old.device_notification_id,
        state: old.state,
        reason: old.reason,
        created_at_ms: old.created_at_ms,
        desired_time_ms: old.desired_time_ms,
        expire_at_ms: old.expire_at_ms,
        queued_at_ms: old.queued_at_ms,
        state_history: old.state_history,
        reservations,
        dial_attempts: u32::try_from(dialed).unwrap_or(u32::MAX),
        reserved_agent: old.reserved_agent,
        chat_session_id: old.chat_session_id,
        route: old.route,
        confirmed_at_ms: old.confirmed_at_ms,
    };
    (new, old.routing_history)
}

/// One record's writes: its key and format-3 value, and its history's keys and values.
struct Moved {
    key: sled::IVec,
    record: Vec<u8>,
    events: Vec<(Vec<u8>, Vec<u8>)>,
}

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let services = db.open_tree(tree::SERVICES)?;
    let history = db.open_tree(tree::ROUTING_HISTORY)?;
    let mut batch = Vec::with_capacity(BATCH);
    for item in services.iter() {
        let (key, value) = item?;
        // Format 3 already: moved by an earlier run that was stopped part-way.
        if value.first() == Some(&SERVICE_FORMAT) {
            continue;
        }
        let what = format!("service {}", String::from_utf8_lossy(&key));
        let old: ServiceV2 = codec::decode(2, &value, &what)?;
        let id = old.id.clone();
        let (new, events) = split(old);
        let events = events
            .iter()
            .map(|event| {
                // Drawn from the same generator as live appends, so that events appended
                // after the migration sort after these.
                let seq = db.generate_id()?;
                Ok((
                    keys::service_seq_key(&id, seq),
                    codec::encode(EVENT_FORMAT, event)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        batch.push(Moved {
            key,
            record: codec::encode(SERVICE_FORMAT, &new)?,
            events,
        });
        if batch.len() == BATCH {
            commit(&services, &history, &batch)?;
            batch.clear();
        }
    }
    commit(&services, &history, &batch)
}

/// Writes one batch of moved records and their histories in one transaction.
fn commit(services: &sled::Tree, history: &sled::Tree, batch: &[Moved]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    (services, history)
        .transaction(|(services, history)| {
            for moved in batch {
                for (key, value) in &moved.events {
                    history.insert(key.as_slice(), value.as_slice())?;
                }
                services.insert(&moved.key, moved.record.as_slice())?;
            }
            Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
        })
        .map_err(|err| match err {
            sled::transaction::TransactionError::Abort(()) => {
                StoreError::Engine("migration transaction aborted".into())
            }
            sled::transaction::TransactionError::Storage(err) => err.into(),
        })
}
