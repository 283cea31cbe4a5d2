//! Notifications (`notifications` and `agent_notifications` trees), format 1.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
use super::text;
use crate::domain::notification::Notification;
use crate::domain::time::Timestamp;

/// A notification as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationV1<'a> {
    seq: u64,
    tag: Cow<'a, str>,
    message: Cow<'a, str>,
    created_at_ms: u64,
    delivered: bool,
}

impl Versioned for NotificationV1<'_> {
    const VERSION: u8 = 1;
}

/// `notification` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode(notification: &Notification) -> Result<Vec<u8>, StoreError> {
    codec::write(&NotificationV1::from(notification))
}

/// A notification read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-1 notification.
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<Notification, StoreError> {
    codec::read::<NotificationV1>(bytes, what).map(Notification::from)
}

impl<'a> From<&'a Notification> for NotificationV1<'a> {
    fn from(n: &'a Notification) -> Self {
        Self {
            seq: n.seq,
            tag: text(&n.tag),
            message: text(&n.message),
            created_at_ms: n.created_at.as_millis(),
            delivered: n.delivered,
        }
    }
}

impl From<NotificationV1<'_>> for Notification {
    fn from(n: NotificationV1<'_>) -> Self {
        Self {
            seq: n.seq,
            tag: n.tag.into_owned(),
            message: n.message.into_owned(),
            created_at: Timestamp::from_millis(n.created_at_ms),
            delivered: n.delivered,
        }
    }
}
