//! Routing events (`routing_history` tree), format 1: one event a value, keyed
//! `service id ++ 0 ++ seq`. Format 2 of the service record embedded the same struct in its
//! `routing_history` field, so an event moved out of such a record by migration 0011 has the
//! same bincode body it had inside it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
use super::text;
use crate::domain::service::{RoutingEvent, RoutingEventKind};
use crate::domain::time::Timestamp;

/// A routing event as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingEventV1<'a> {
    at_ms: u64,
    step: u16,
    kind: RoutingKindV1<'a>,
}

impl Versioned for RoutingEventV1<'_> {
    const VERSION: u8 = 1;
}

/// What happened in routing, by variant index. New kinds are only ever appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum RoutingKindV1<'a> {
    Entered {
        target: Cow<'a, str>,
    },
    Skipped {
        statistic: Cow<'a, str>,
        value: i64,
    },
    TimedOut,
    Reserved {
        agent: Cow<'a, str>,
    },
    Released {
        agent: Cow<'a, str>,
        why: Cow<'a, str>,
    },
    Dialed {
        agent: Cow<'a, str>,
        outcome: Cow<'a, str>,
    },
}

/// `event` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode(event: &RoutingEvent) -> Result<Vec<u8>, StoreError> {
    codec::write(&RoutingEventV1::from(event))
}

/// An event read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-1 routing event.
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<RoutingEvent, StoreError> {
    codec::read::<RoutingEventV1>(bytes, what).map(RoutingEvent::from)
}

impl<'a> From<&'a RoutingEvent> for RoutingEventV1<'a> {
    fn from(event: &'a RoutingEvent) -> Self {
        Self {
            at_ms: event.at.as_millis(),
            step: event.step,
            kind: match &event.kind {
                RoutingEventKind::Entered { target } => RoutingKindV1::Entered {
                    target: text(target),
                },
                RoutingEventKind::Skipped { statistic, value } => RoutingKindV1::Skipped {
                    statistic: text(statistic),
                    value: *value,
                },
                RoutingEventKind::TimedOut => RoutingKindV1::TimedOut,
                RoutingEventKind::Reserved { agent } => {
                    RoutingKindV1::Reserved { agent: text(agent) }
                }
                RoutingEventKind::Released { agent, why } => RoutingKindV1::Released {
                    agent: text(agent),
                    why: text(why),
                },
                RoutingEventKind::Dialed { agent, outcome } => RoutingKindV1::Dialed {
                    agent: text(agent),
                    outcome: text(outcome),
                },
            },
        }
    }
}

impl From<RoutingEventV1<'_>> for RoutingEvent {
    fn from(event: RoutingEventV1<'_>) -> Self {
        Self {
            at: Timestamp::from_millis(event.at_ms),
            step: event.step,
            kind: match event.kind {
                RoutingKindV1::Entered { target } => RoutingEventKind::Entered {
                    target: target.into_owned(),
                },
                RoutingKindV1::Skipped { statistic, value } => RoutingEventKind::Skipped {
                    statistic: statistic.into_owned(),
                    value,
                },
                RoutingKindV1::TimedOut => RoutingEventKind::TimedOut,
                RoutingKindV1::Reserved { agent } => RoutingEventKind::Reserved {
                    agent: agent.into_owned(),
                },
                RoutingKindV1::Released { agent, why } => RoutingEventKind::Released {
                    agent: agent.into_owned(),
                    why: why.into_owned(),
                },
                RoutingKindV1::Dialed { agent, outcome } => RoutingEventKind::Dialed {
                    agent: agent.into_owned(),
                    outcome: outcome.into_owned(),
                },
            },
        }
    }
}
