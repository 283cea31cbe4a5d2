//! The `status_outbox` tree's values, format 1: one status notification each (issue 15).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
use super::{optional, owned, same_variants, text};
use crate::domain::status::{Delivery, Mode, StatusEvent, StatusNotification};
use crate::domain::time::Timestamp;

/// A status notification as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusNotificationV1<'a> {
    seq: u64,
    event: StatusEventV1,
    mode: ModeV1,
    url: Option<Cow<'a, str>>,
    tag: Cow<'a, str>,
    body: Cow<'a, str>,
    created_at_ms: u64,
    attempts: u32,
    max_attempts: u32,
    delivery: DeliveryV1,
    next_at_ms: u64,
    last_error: Option<Cow<'a, str>>,
    finished_at_ms: Option<u64>,
}

impl Versioned for StatusNotificationV1<'_> {
    const VERSION: u8 = 1;
}

/// [`StatusEvent`] in its stored order (append only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum StatusEventV1 {
    ServiceCreate,
    CallbackSubmitted,
    VirtualIxnCreate,
    CallbackScheduled,
    CallbackQueued,
    CallbackRescheduled,
    CallbackStatusUpdated,
    TargetFound,
    RouteToAgent,
    CallbackCancelled,
    ServiceExit,
}

same_variants!(StatusEvent <=> StatusEventV1 {
    ServiceCreate,
    CallbackSubmitted,
    VirtualIxnCreate,
    CallbackScheduled,
    CallbackQueued,
    CallbackRescheduled,
    CallbackStatusUpdated,
    TargetFound,
    RouteToAgent,
    CallbackCancelled,
    ServiceExit,
});

/// [`Mode`] in its stored order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ModeV1 {
    SubscribeNotify,
    Notify,
}

same_variants!(Mode <=> ModeV1 { SubscribeNotify, Notify });

/// [`Delivery`] in its stored order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum DeliveryV1 {
    Pending,
    Delivered,
    Failed,
}

same_variants!(Delivery <=> DeliveryV1 { Pending, Delivered, Failed });

/// `entry` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode(entry: &StatusNotification) -> Result<Vec<u8>, StoreError> {
    codec::write(&StatusNotificationV1::from(entry))
}

/// A status notification read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-1 status notification.
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<StatusNotification, StoreError> {
    codec::read::<StatusNotificationV1>(bytes, what).map(StatusNotification::from)
}

impl<'a> From<&'a StatusNotification> for StatusNotificationV1<'a> {
    fn from(n: &'a StatusNotification) -> Self {
        Self {
            seq: n.seq,
            event: n.event.into(),
            mode: n.mode.into(),
            url: optional(&n.url),
            tag: text(&n.tag),
            body: text(&n.body),
            created_at_ms: n.created_at.as_millis(),
            attempts: n.attempts,
            max_attempts: n.max_attempts,
            delivery: n.delivery.into(),
            next_at_ms: n.next_at.as_millis(),
            last_error: optional(&n.last_error),
            finished_at_ms: n.finished_at.map(Timestamp::as_millis),
        }
    }
}

impl From<StatusNotificationV1<'_>> for StatusNotification {
    fn from(n: StatusNotificationV1<'_>) -> Self {
        Self {
            seq: n.seq,
            event: n.event.into(),
            mode: n.mode.into(),
            url: owned(n.url),
            tag: n.tag.into_owned(),
            body: n.body.into_owned(),
            created_at: Timestamp::from_millis(n.created_at_ms),
            attempts: n.attempts,
            max_attempts: n.max_attempts,
            delivery: n.delivery.into(),
            next_at: Timestamp::from_millis(n.next_at_ms),
            last_error: owned(n.last_error),
            finished_at: n.finished_at_ms.map(Timestamp::from_millis),
        }
    }
}
