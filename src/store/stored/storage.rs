//! The Storage API's areas (`storage`, `service_storage`) and the Notification API's
//! subscriptions (`subscriptions`), format 1.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::codec::Versioned;
use super::{optional, owned, text};
use crate::domain::storage::{StorageArea, StorageEntry};
use crate::domain::subscription::{Channel, Subscription};
use crate::domain::time::Timestamp;

/// A storage area as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageAreaV1<'a> {
    id: Cow<'a, str>,
    owner: Option<Cow<'a, str>>,
    created_at_ms: u64,
    expire_at_ms: u64,
    entries: Vec<StorageEntryV1<'a>>,
}

impl Versioned for StorageAreaV1<'_> {
    const VERSION: u8 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StorageEntryV1<'a> {
    key: Cow<'a, str>,
    /// A sequence of bytes (a length, then each byte), as bincode writes a `Vec<u8>`.
    value: Cow<'a, [u8]>,
    content_type: Option<Cow<'a, str>>,
}

/// A subscription as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionV1<'a> {
    id: Cow<'a, str>,
    owner: Option<Cow<'a, str>>,
    subscriber_id: Cow<'a, str>,
    provider_name: Option<Cow<'a, str>>,
    filter: Cow<'a, str>,
    channel: ChannelV1<'a>,
    properties: Cow<'a, BTreeMap<String, String>>,
    created_at_ms: u64,
    expire_at_ms: u64,
}

impl Versioned for SubscriptionV1<'_> {
    const VERSION: u8 = 1;
}

/// Where a subscription's events go, by variant index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum ChannelV1<'a> {
    Comet {
        gms_user: Cow<'a, str>,
    },
    HttpCallback {
        url: Cow<'a, str>,
    },
    CustomHttp {
        url: Cow<'a, str>,
        device_id: Cow<'a, str>,
        authorization: Option<Cow<'a, str>>,
    },
}

impl<'a> From<&'a StorageArea> for StorageAreaV1<'a> {
    fn from(area: &'a StorageArea) -> Self {
        Self {
            id: text(&area.id),
            owner: optional(&area.owner),
            created_at_ms: area.created_at.as_millis(),
            expire_at_ms: area.expire_at.as_millis(),
            entries: area
                .entries
                .iter()
                .map(|entry| StorageEntryV1 {
                    key: text(&entry.key),
                    value: Cow::Borrowed(&entry.value),
                    content_type: optional(&entry.content_type),
                })
                .collect(),
        }
    }
}

impl From<StorageAreaV1<'_>> for StorageArea {
    fn from(area: StorageAreaV1<'_>) -> Self {
        Self {
            id: area.id.into_owned(),
            owner: owned(area.owner),
            created_at: Timestamp::from_millis(area.created_at_ms),
            expire_at: Timestamp::from_millis(area.expire_at_ms),
            entries: area
                .entries
                .into_iter()
                .map(|entry| StorageEntry {
                    key: entry.key.into_owned(),
                    value: entry.value.into_owned(),
                    content_type: owned(entry.content_type),
                })
                .collect(),
        }
    }
}

impl<'a> From<&'a Subscription> for SubscriptionV1<'a> {
    fn from(s: &'a Subscription) -> Self {
        Self {
            id: text(&s.id),
            owner: optional(&s.owner),
            subscriber_id: text(&s.subscriber_id),
            provider_name: optional(&s.provider_name),
            filter: text(&s.filter),
            channel: match &s.channel {
                Channel::Comet { gms_user } => ChannelV1::Comet {
                    gms_user: text(gms_user),
                },
                Channel::HttpCallback { url } => ChannelV1::HttpCallback { url: text(url) },
                Channel::CustomHttp {
                    url,
                    device_id,
                    authorization,
                } => ChannelV1::CustomHttp {
                    url: text(url),
                    device_id: text(device_id),
                    authorization: optional(authorization),
                },
            },
            properties: Cow::Borrowed(&s.properties),
            created_at_ms: s.created_at.as_millis(),
            expire_at_ms: s.expire_at.as_millis(),
        }
    }
}

impl From<SubscriptionV1<'_>> for Subscription {
    fn from(s: SubscriptionV1<'_>) -> Self {
        Self {
            id: s.id.into_owned(),
            owner: owned(s.owner),
            subscriber_id: s.subscriber_id.into_owned(),
            provider_name: owned(s.provider_name),
            filter: s.filter.into_owned(),
            channel: match s.channel {
                ChannelV1::Comet { gms_user } => Channel::Comet {
                    gms_user: gms_user.into_owned(),
                },
                ChannelV1::HttpCallback { url } => Channel::HttpCallback {
                    url: url.into_owned(),
                },
                ChannelV1::CustomHttp {
                    url,
                    device_id,
                    authorization,
                } => Channel::CustomHttp {
                    url: url.into_owned(),
                    device_id: device_id.into_owned(),
                    authorization: owned(authorization),
                },
            },
            properties: s.properties.into_owned(),
            created_at: Timestamp::from_millis(s.created_at_ms),
            expire_at: Timestamp::from_millis(s.expire_at_ms),
        }
    }
}
