//! Schema 9: agent records gain `reason`, the reason code of a Not Ready state (issue 11's
//! desktop: "Not Ready (with an optional reason code)"). Rewrites every format-1 agent as
//! format 2 with no reason; both formats are frozen below, so no live type is read or written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Migration;
use crate::store::{codec, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 9,
    name: "agent_reason",
    apply,
};

/// `AgentConfig` as agent format 1 stored it. Frozen: never change it.
#[derive(Deserialize, Serialize)]
pub struct AgentConfigV1 {
    pub id: String,
    pub name: String,
    pub groups: Vec<String>,
    pub place: Option<String>,
    pub place_groups: Vec<String>,
    pub skills: BTreeMap<String, i64>,
    pub capacity: BTreeMap<String, u32>,
    pub auto_answer: bool,
}

/// `AgentState` as agent format 1 stored it (by variant index). Frozen: never change it.
#[derive(Deserialize, Serialize, Clone, Copy)]
pub enum AgentStateV1 {
    LoggedOut,
    NotReady,
    Ready,
}

/// `AgentRecord` as agent format 1 stored it. Frozen: never change it. (Serialize lets tests
/// write a format-1 database.)
#[derive(Deserialize, Serialize)]
pub struct AgentRecordV1 {
    pub config: AgentConfigV1,
    pub state: AgentStateV1,
    pub state_since_ms: u64,
    pub idle_since_ms: u64,
}

/// An agent as format 2 stored it when this migration was written: format 1 and the reason
/// code (bincode writes nested fields in order). Frozen: never change it.
#[derive(Serialize)]
struct AgentRecordV2 {
    v1: AgentRecordV1,
    reason: Option<String>,
}

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let agents = db.open_tree(tree::AGENTS)?;
    for item in agents.iter() {
        let (key, value) = item?;
        if value.first() != Some(&1) {
            continue; // already format 2
        }
        let what = format!("agent {}", String::from_utf8_lossy(&key));
        let old: AgentRecordV1 = codec::decode(1, &value, &what)?;
        let new = AgentRecordV2 {
            v1: old,
            reason: None,
        };
        agents.insert(key, codec::encode(2, &new)?)?;
    }
    Ok(())
}
