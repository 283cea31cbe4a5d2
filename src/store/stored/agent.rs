//! Agents (`agents` tree), format 2.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
use super::{optional, owned, same_variants, text};
use crate::domain::agent::{AgentConfig, AgentRecord, AgentState};
use crate::domain::time::Timestamp;

/// An agent as format 2 stores it: format 1 and the reason code of a Not Ready state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentV2<'a> {
    config: AgentConfigV1<'a>,
    state: AgentStateV1,
    state_since_ms: u64,
    idle_since_ms: u64,
    reason: Option<Cow<'a, str>>,
}

impl Versioned for AgentV2<'_> {
    const VERSION: u8 = 2;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AgentConfigV1<'a> {
    id: Cow<'a, str>,
    name: Cow<'a, str>,
    groups: Cow<'a, [String]>,
    place: Option<Cow<'a, str>>,
    place_groups: Cow<'a, [String]>,
    skills: Cow<'a, BTreeMap<String, i64>>,
    capacity: Cow<'a, BTreeMap<String, u32>>,
    auto_answer: bool,
}

/// An agent's state, by variant index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum AgentStateV1 {
    LoggedOut,
    NotReady,
    Ready,
}

same_variants!(AgentState <=> AgentStateV1 { LoggedOut, NotReady, Ready });

/// `agent` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode(agent: &AgentRecord) -> Result<Vec<u8>, StoreError> {
    codec::write(&AgentV2::from(agent))
}

/// An agent read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-2 agent.
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<AgentRecord, StoreError> {
    codec::read::<AgentV2>(bytes, what).map(AgentRecord::from)
}

impl<'a> From<&'a AgentRecord> for AgentV2<'a> {
    fn from(agent: &'a AgentRecord) -> Self {
        let config = &agent.config;
        Self {
            config: AgentConfigV1 {
                id: text(&config.id),
                name: text(&config.name),
                groups: Cow::Borrowed(&config.groups),
                place: optional(&config.place),
                place_groups: Cow::Borrowed(&config.place_groups),
                skills: Cow::Borrowed(&config.skills),
                capacity: Cow::Borrowed(&config.capacity),
                auto_answer: config.auto_answer,
            },
            state: agent.state.into(),
            state_since_ms: agent.state_since.as_millis(),
            idle_since_ms: agent.idle_since.as_millis(),
            reason: optional(&agent.reason),
        }
    }
}

impl From<AgentV2<'_>> for AgentRecord {
    fn from(agent: AgentV2<'_>) -> Self {
        let config = agent.config;
        Self {
            config: AgentConfig {
                id: config.id.into_owned(),
                name: config.name.into_owned(),
                groups: config.groups.into_owned(),
                place: owned(config.place),
                place_groups: config.place_groups.into_owned(),
                skills: config.skills.into_owned(),
                capacity: config.capacity.into_owned(),
                auto_answer: config.auto_answer,
            },
            state: agent.state.into(),
            state_since: Timestamp::from_millis(agent.state_since_ms),
            idle_since: Timestamp::from_millis(agent.idle_since_ms),
            reason: owned(agent.reason),
        }
    }
}
