//! Schema 4: service records gain `route` (routing progress, so routing resumes where it was
//! after a restart) and `confirmed_at` (when the customer confirmed the reserved agent).
//! Rewrites every format-1 record as format 2; the format-1 type is frozen below.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Migration;
use crate::domain::options::Preset;
use crate::domain::service::{
    CallbackReason, CallbackState, RoutingEvent, ServiceRecord, StateChange,
};
use crate::domain::time::Timestamp;
use crate::store::{codec, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 4,
    name: "service_format_2",
    apply,
};

/// `ServiceRecord` as format 1 stored it. Frozen: never change it. (Serialize lets tests
/// write a format-1 database.)
#[derive(Deserialize, Serialize)]
pub struct ServiceRecordV1 {
    pub id: String,
    pub service_name: String,
    pub preset: Preset,
    pub options: BTreeMap<String, String>,
    pub user_data: BTreeMap<String, String>,
    pub owner: Option<String>,
    pub customer_number: Option<String>,
    pub device_os: Option<String>,
    pub device_notification_id: Option<String>,
    pub state: CallbackState,
    pub reason: Option<CallbackReason>,
    pub created_at: Timestamp,
    pub desired_time: Timestamp,
    pub expire_at: Timestamp,
    pub queued_at: Option<Timestamp>,
    pub state_history: Vec<StateChange>,
    pub routing_history: Vec<RoutingEvent>,
    pub reserved_agent: Option<String>,
    pub chat_session_id: Option<String>,
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
        let new = ServiceRecord {
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
            created_at: old.created_at,
            desired_time: old.desired_time,
            expire_at: old.expire_at,
            queued_at: old.queued_at,
            state_history: old.state_history,
            routing_history: old.routing_history,
            reserved_agent: old.reserved_agent,
            chat_session_id: old.chat_session_id,
            route: None,
            confirmed_at: None,
        };
        services.insert(key, codec::encode(2, &new)?)?;
    }
    Ok(())
}
