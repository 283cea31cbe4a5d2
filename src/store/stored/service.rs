//! Service records (`services` tree): format 3, written and read; format 2, which carried the
//! routing history inside the record, kept to prove that its golden bytes still read (the
//! live path refuses it: migration 0011, with its own frozen copy, rewrites every format-2
//! record as format 3 and moves its history into the `routing_history` tree).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
#[cfg(test)]
use super::routing::RoutingEventV1;
use super::{optional, owned, same_variants, text};
use crate::domain::options::Preset;
#[cfg(test)]
use crate::domain::service::RoutingEvent;
use crate::domain::service::{
    CallbackReason, CallbackState, Reservation, RouteProgress, ServiceAccess, ServiceRecord,
    StateChange,
};
use crate::domain::time::Timestamp;

/// A service record as format 3 stores it: format 2 without the routing history (in its own
/// tree since format 3), with the two facts of that history the record's own rules read
/// (its reservations and its number of dial attempts). Strings and maps borrow from the
/// record when it is written, so encoding copies nothing; read back, they are owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceV3<'a> {
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
    reservations: Vec<ReservationV1<'a>>,
    dial_attempts: u32,
    reserved_agent: Option<Cow<'a, str>>,
    chat_session_id: Option<Cow<'a, str>>,
    route: Option<RouteV1<'a>>,
    confirmed_at_ms: Option<u64>,
}

impl Versioned for ServiceV3<'_> {
    const VERSION: u8 = 3;
}

/// The leading fields of a format-3 record, up to its owner: all that an access check reads.
/// bincode writes a struct's fields in order with nothing between them, so decoding this
/// prefix reads only the record's first bytes; its strings borrow from them and its two maps
/// are stepped over without being built. Its fields must stay the first fields of
/// [`ServiceV3`] (the golden-bytes test reads every fixture record through it).
#[derive(Deserialize)]
struct ServiceHeadV3<'a> {
    _id: &'a str,
    service_name: &'a str,
    _preset: PresetV1,
    _options: Skipped,
    _user_data: Skipped,
    owner: Option<&'a str>,
}

impl Versioned for ServiceHeadV3<'_> {
    const VERSION: u8 = 3;
}

/// A map of strings read past without keeping it.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Skipped;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Skipped, A::Error> {
                while map.next_entry::<&'de str, &'de str>()?.is_some() {}
                Ok(Skipped)
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// A service record as format 2 stored it, its routing history inside. Read and written only
/// by the golden-bytes tests and the tests that seed a format-2 database: nothing live reads
/// or writes format 2 any more.
#[cfg(test)]
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

#[cfg(test)]
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
struct ReservationV1<'a> {
    at_ms: u64,
    agent: Cow<'a, str>,
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
    codec::write(&ServiceV3::from(record))
}

/// A record read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-3 record.
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<ServiceRecord, StoreError> {
    codec::read::<ServiceV3>(bytes, what).map(ServiceRecord::from)
}

/// The [`ServiceAccess`] of a stored record, read from its first bytes only; `what` names it
/// in errors.
///
/// # Errors
/// The value is not a format-3 record.
pub(crate) fn decode_access(bytes: &[u8], what: &str) -> Result<ServiceAccess, StoreError> {
    codec::read_borrowed::<ServiceHeadV3>(bytes, what).map(|head| ServiceAccess {
        service_name: head.service_name.to_string(),
        owner: head.owner.map(str::to_string),
    })
}

/// `record` with its routing `history`, as format 2 stored them together (for tests that
/// seed a format-2 database and the golden bytes).
///
/// # Errors
/// The value cannot be encoded.
#[cfg(test)]
pub(crate) fn encode_v2(
    record: &ServiceRecord,
    history: &[RoutingEvent],
) -> Result<Vec<u8>, StoreError> {
    let v3 = ServiceV3::from(record);
    codec::write(&ServiceV2 {
        id: v3.id,
        service_name: v3.service_name,
        preset: v3.preset,
        options: v3.options,
        user_data: v3.user_data,
        owner: v3.owner,
        customer_number: v3.customer_number,
        device_os: v3.device_os,
        device_notification_id: v3.device_notification_id,
        state: v3.state,
        reason: v3.reason,
        created_at_ms: v3.created_at_ms,
        desired_time_ms: v3.desired_time_ms,
        expire_at_ms: v3.expire_at_ms,
        queued_at_ms: v3.queued_at_ms,
        state_history: v3.state_history,
        routing_history: history.iter().map(RoutingEventV1::from).collect(),
        reserved_agent: v3.reserved_agent,
        chat_session_id: v3.chat_session_id,
        route: v3.route,
        confirmed_at_ms: v3.confirmed_at_ms,
    })
}

/// A format-2 record read back as the record and its routing history; the record notes the
/// history's reservations and dial attempts, as format 3 keeps them.
///
/// # Errors
/// The value is not a format-2 record.
#[cfg(test)]
pub(crate) fn decode_v2(
    bytes: &[u8],
    what: &str,
) -> Result<(ServiceRecord, Vec<RoutingEvent>), StoreError> {
    let s = codec::read::<ServiceV2>(bytes, what)?;
    let history: Vec<RoutingEvent> = s.routing_history.into_iter().map(Into::into).collect();
    let mut record = ServiceRecord::from(ServiceV3 {
        id: s.id,
        service_name: s.service_name,
        preset: s.preset,
        options: s.options,
        user_data: s.user_data,
        owner: s.owner,
        customer_number: s.customer_number,
        device_os: s.device_os,
        device_notification_id: s.device_notification_id,
        state: s.state,
        reason: s.reason,
        created_at_ms: s.created_at_ms,
        desired_time_ms: s.desired_time_ms,
        expire_at_ms: s.expire_at_ms,
        queued_at_ms: s.queued_at_ms,
        state_history: s.state_history,
        reservations: Vec::new(),
        dial_attempts: 0,
        reserved_agent: s.reserved_agent,
        chat_session_id: s.chat_session_id,
        route: s.route,
        confirmed_at_ms: s.confirmed_at_ms,
    });
    record.note_routing(&history);
    Ok((record, history))
}

impl<'a> From<&'a ServiceRecord> for ServiceV3<'a> {
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
            reservations: r
                .reservations
                .iter()
                .map(|reservation| ReservationV1 {
                    at_ms: reservation.at.as_millis(),
                    agent: text(&reservation.agent),
                })
                .collect(),
            dial_attempts: r.dial_attempts,
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

impl From<ServiceV3<'_>> for ServiceRecord {
    fn from(s: ServiceV3<'_>) -> Self {
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
            reservations: s
                .reservations
                .into_iter()
                .map(|reservation| Reservation {
                    at: Timestamp::from_millis(reservation.at_ms),
                    agent: reservation.agent.into_owned(),
                })
                .collect(),
            dial_attempts: s.dial_attempts,
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
