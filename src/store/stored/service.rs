//! Service records (`services` tree), format 2.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
use super::{optional, owned, same_variants, text};
use crate::domain::options::Preset;
use crate::domain::service::{
    CallbackReason, CallbackState, RouteProgress, RoutingEvent, RoutingEventKind, ServiceRecord,
    StateChange,
};
use crate::domain::time::Timestamp;

/// A service record as format 2 stores it. Strings and maps borrow from the record when it is
/// written, so encoding copies nothing; read back, they are owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceV2<'a> {
    id: Cow<'a, str>,
    service_name: Cow<'a, str>,
    preset: PresetV1,
    options: Cow<'a, BTreeMap<String, String>>,
    user_data: Cow<'a, BTreeMap<String, String>>,
    owner: Option<Cow<'a, str>>,
    customer_number: Option<Cow<'a, str>>,
    device_os: Option<Cow<'a, str>>,
    device_notification_id: Option<Cow<'a, str>>,
    state: CallbackStateV1,
    reason: Option<CallbackReasonV1>,
    created_at_ms: u64,
    desired_time_ms: u64,
    expire_at_ms: u64,
    queued_at_ms: Option<u64>,
    state_history: Vec<StateChangeV1<'a>>,
    routing_history: Vec<RoutingEventV1<'a>>,
    reserved_agent: Option<Cow<'a, str>>,
    chat_session_id: Option<Cow<'a, str>>,
    route: Option<RouteV1<'a>>,
    confirmed_at_ms: Option<u64>,
}

impl Versioned for ServiceV2<'_> {
    const VERSION: u8 = 2;
}

/// `preset`, by variant index. New presets are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PresetV1 {
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

/// `_callback_state`, by variant index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum CallbackStateV1 {
    Scheduled,
    Queued,
    Routing,
    Processing,
    Completed,
}

/// `_callback_reason`, by variant index. New reasons are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum CallbackReasonV1 {
    Cancelled,
    CancelledByAdmin,
    FailTimeoutTtl,
    FailUserNoConfirm,
    FailTargetNotFound,
    FailError,
    AgentConnected,
    FailCallToCustomer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateChangeV1<'a> {
    at_ms: u64,
    state: CallbackStateV1,
    reason: Option<CallbackReasonV1>,
    note: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RoutingEventV1<'a> {
    at_ms: u64,
    step: u16,
    kind: RoutingKindV1<'a>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RouteV1<'a> {
    step: u16,
    step_entered_at_ms: u64,
    target_set: Cow<'a, [u16]>,
}

/// `record` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode(record: &ServiceRecord) -> Result<Vec<u8>, StoreError> {
    codec::write(&ServiceV2::from(record))
}

/// A record read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-2 record.
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<ServiceRecord, StoreError> {
    codec::read::<ServiceV2>(bytes, what).map(ServiceRecord::from)
}

impl<'a> From<&'a ServiceRecord> for ServiceV2<'a> {
    fn from(r: &'a ServiceRecord) -> Self {
        Self {
            id: text(&r.id),
            service_name: text(&r.service_name),
            preset: r.preset.into(),
            options: Cow::Borrowed(&r.options),
            user_data: Cow::Borrowed(&r.user_data),
            owner: optional(&r.owner),
            customer_number: optional(&r.customer_number),
            device_os: optional(&r.device_os),
            device_notification_id: optional(&r.device_notification_id),
            state: r.state.into(),
            reason: r.reason.map(Into::into),
            created_at_ms: r.created_at.as_millis(),
            desired_time_ms: r.desired_time.as_millis(),
            expire_at_ms: r.expire_at.as_millis(),
            queued_at_ms: r.queued_at.map(Timestamp::as_millis),
            state_history: r
                .state_history
                .iter()
                .map(|change| StateChangeV1 {
                    at_ms: change.at.as_millis(),
                    state: change.state.into(),
                    reason: change.reason.map(Into::into),
                    note: text(&change.note),
                })
                .collect(),
            routing_history: r.routing_history.iter().map(RoutingEventV1::from).collect(),
            reserved_agent: optional(&r.reserved_agent),
            chat_session_id: optional(&r.chat_session_id),
            route: r.route.as_ref().map(|route| RouteV1 {
                step: route.step,
                step_entered_at_ms: route.step_entered_at.as_millis(),
                target_set: Cow::Borrowed(&route.target_set),
            }),
            confirmed_at_ms: r.confirmed_at.map(Timestamp::as_millis),
        }
    }
}

impl From<ServiceV2<'_>> for ServiceRecord {
    fn from(s: ServiceV2<'_>) -> Self {
        Self {
            id: s.id.into_owned(),
            service_name: s.service_name.into_owned(),
            preset: s.preset.into(),
            options: s.options.into_owned(),
            user_data: s.user_data.into_owned(),
            owner: owned(s.owner),
            customer_number: owned(s.customer_number),
            device_os: owned(s.device_os),
            device_notification_id: owned(s.device_notification_id),
            state: s.state.into(),
            reason: s.reason.map(Into::into),
            created_at: Timestamp::from_millis(s.created_at_ms),
            desired_time: Timestamp::from_millis(s.desired_time_ms),
            expire_at: Timestamp::from_millis(s.expire_at_ms),
            queued_at: s.queued_at_ms.map(Timestamp::from_millis),
            state_history: s
                .state_history
                .into_iter()
                .map(|change| StateChange {
                    at: Timestamp::from_millis(change.at_ms),
                    state: change.state.into(),
                    reason: change.reason.map(Into::into),
                    note: change.note.into_owned(),
                })
                .collect(),
            routing_history: s
                .routing_history
                .into_iter()
                .map(RoutingEvent::from)
                .collect(),
            reserved_agent: owned(s.reserved_agent),
            chat_session_id: owned(s.chat_session_id),
            route: s.route.map(|route| RouteProgress {
                step: route.step,
                step_entered_at: Timestamp::from_millis(route.step_entered_at_ms),
                target_set: route.target_set.into_owned(),
            }),
            confirmed_at: s.confirmed_at_ms.map(Timestamp::from_millis),
        }
    }
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

same_variants!(Preset <=> PresetV1 {
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
});

same_variants!(CallbackState <=> CallbackStateV1 {
    Scheduled,
    Queued,
    Routing,
    Processing,
    Completed,
});

same_variants!(CallbackReason <=> CallbackReasonV1 {
    Cancelled,
    CancelledByAdmin,
    FailTimeoutTtl,
    FailUserNoConfirm,
    FailTargetNotFound,
    FailError,
    AgentConnected,
    FailCallToCustomer,
});
