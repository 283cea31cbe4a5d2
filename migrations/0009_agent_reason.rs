//! Schema 9: agent records gain `reason`, the reason code of a Not Ready state (issue 11's
//! desktop: "Not Ready (with an optional reason code)"). Rewrites every format-1 agent as
//! format 2 with no reason; the format-1 types are frozen below.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Migration;
use crate::domain::agent::{AgentConfig, AgentRecord, AgentState};
use crate::domain::time::Timestamp;
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
    pub state_since: Timestamp,
    pub idle_since: Timestamp,
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
        let config = old.config;
        let new = AgentRecord {
            config: AgentConfig {
                id: config.id,
                name: config.name,
                groups: config.groups,
                place: config.place,
                place_groups: config.place_groups,
                skills: config.skills,
                capacity: config.capacity,
                auto_answer: config.auto_answer,
            },
            state: match old.state {
                AgentStateV1::LoggedOut => AgentState::LoggedOut,
                AgentStateV1::NotReady => AgentState::NotReady,
                AgentStateV1::Ready => AgentState::Ready,
            },
            state_since: old.state_since,
            idle_since: old.idle_since,
            reason: None,
        };
        agents.insert(key, codec::encode(2, &new)?)?;
    }
    Ok(())
}
