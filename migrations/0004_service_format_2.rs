//! Schema 4: service records gain `route` (routing progress, so routing resumes where it was
//! after a restart) and `confirmed_at` (when the customer confirmed the reserved agent).
//! Rewrites every format-1 record as format 2. Both formats are frozen below, with every type
//! they hold (enums by variant index, times as milliseconds): the conversion reads no live
//! type, so a change to the domain or to the store's current types cannot change what it
//! reads or writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Migration;
use crate::store::{codec, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 4,
    name: "service_format_2",
    apply,
};

/// A service record as format 1 stored it. Frozen: never change it. (Serialize lets tests
/// write a format-1 database.)
#[derive(Deserialize, Serialize)]
pub struct ServiceRecordV1 {
    pub id: String,
    pub service_name: String,
    pub preset: PresetV1,
    pub options: BTreeMap<String, String>,
    pub user_data: BTreeMap<String, String>,
    pub owner: Option<String>,
    pub customer_number: Option<String>,
    pub device_os: Option<String>,
    pub device_notification_id: Option<String>,
    pub state: StateV1,
    pub reason: Option<ReasonV1>,
    pub created_at_ms: u64,
    pub desired_time_ms: u64,
    pub expire_at_ms: u64,
    pub queued_at_ms: Option<u64>,
    pub state_history: Vec<StateChangeV1>,
    pub routing_history: Vec<RoutingEventV1>,
    pub reserved_agent: Option<String>,
    pub chat_session_id: Option<String>,
}

/// A service record as format 2 stored it when this migration was written: format 1, then
/// the routing progress and the confirmation time. Frozen: never change it.
#[derive(Serialize)]
struct ServiceRecordV2 {
    v1: ServiceRecordV1,
    route: Option<RouteProgressV2>,
    confirmed_at_ms: Option<u64>,
}

/// Presets, by variant index (the first four existed in format 1; the rest were appended
/// later and read the same). Frozen: never change it.
#[derive(Deserialize, Serialize, Clone, Copy)]
pub enum PresetV1 {
    ChatImmediate,
    ChatDelayed,
    RequestChat,
    RequestChatPoll,
    OfficeHours,
    Capacity,
    UserTerminatedImmediate,
    UserTerminatedDelayed,
    UserTerminatedScheduled,
    UserOriginatedImmediate,
    UserOriginatedDelayed,
}

/// `_callback_state`, by variant index. Frozen: never change it.
#[derive(Deserialize, Serialize, Clone, Copy)]
pub enum StateV1 {
    Scheduled,
    Queued,
    Routing,
    Processing,
    Completed,
}

/// `_callback_reason`, by variant index. Frozen: never change it.
#[derive(Deserialize, Serialize, Clone, Copy)]
pub enum ReasonV1 {
    Cancelled,
    CancelledByAdmin,
    FailTimeoutTtl,
    FailUserNoConfirm,
    FailTargetNotFound,
    FailError,
    AgentConnected,
    FailCallToCustomer,
}

/// One entry of the state history. Frozen: never change it.
#[derive(Deserialize, Serialize)]
pub struct StateChangeV1 {
    pub at_ms: u64,
    pub state: StateV1,
    pub reason: Option<ReasonV1>,
    pub note: String,
}

/// One entry of the routing history. Frozen: never change it.
#[derive(Deserialize, Serialize)]
pub struct RoutingEventV1 {
    pub at_ms: u64,
    pub step: u16,
    pub kind: RoutingKindV1,
}

/// Routing event kinds, by variant index. Frozen: never change it.
#[derive(Deserialize, Serialize)]
pub enum RoutingKindV1 {
    Entered { target: String },
    Skipped { statistic: String, value: i64 },
    TimedOut,
    Reserved { agent: String },
    Released { agent: String, why: String },
    Dialed { agent: String, outcome: String },
}

/// Format 2's routing progress. Frozen: never change it. (Always `None` here: a format-1
/// service had not been routed by this binary.)
#[allow(dead_code)]
#[derive(Serialize)]
struct RouteProgressV2 {
    step: u16,
    step_entered_at_ms: u64,
    target_set: Vec<u16>,
}

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let services = db.open_tree(tree::SERVICES)?;
    for item in services.iter() {
        let (key, value) = item?;
        if value.first() != Some(&1) {
            continue; // already format 2
        }
        let id = String::from_utf8_lossy(&key).to_string();
        let old: ServiceRecordV1 = codec::decode(1, &value, &format!("service {id}"))?;
        // bincode writes a struct's fields in order, nested or not: format 2 is format 1's
        // fields followed by the two new ones.
        let new = ServiceRecordV2 {
            v1: old,
            route: None,
            confirmed_at_ms: None,
        };
        services.insert(key, codec::encode(2, &new)?)?;
    }
    Ok(())
}
