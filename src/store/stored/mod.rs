//! The store's own types for the values it writes, one per value kind, each a format
//! ([`Versioned`](super::codec::Versioned): its format-version byte), with conversions to and
//! from the domain's types.
//!
//! The domain's types are free to change: renaming a field or reordering an enum there changes
//! nothing on disk, because only these types are encoded. A change to one of these is a
//! change of format: make a new type with the next version, keep the old one readable, and
//! add a migration. The golden-bytes tests below hold every type to the bytes the release
//! before this module wrote (`src/store/golden/`), so an accidental change fails a test.
//!
//! Strings, maps and byte values borrow from the domain value when it is written (`Cow`), so
//! encoding copies no more than before; read back, they are owned. Enums are stored by
//! variant index, as bincode writes them; their stored copies list the variants in their
//! stored order, and [`same_variants!`] converts between the two by name, so a variant added
//! to the domain enum fails to compile until it is given a stored one (appended: existing
//! indices never move).
//!
//! | kind | tree | type |
//! |---|---|---|
//! | service record | `services` | [`service::ServiceV3`] (format 2 readable in tests only: migration 0011 rewrote it) |
//! | routing event | `routing_history` | [`routing::RoutingEventV1`] |
//! | notification | `notifications`, `agent_notifications` | [`notification::NotificationV1`] |
//! | chat session | `chat_sessions` | [`chat::ChatSessionV1`] |
//! | transcript event | `transcripts` | [`chat::TranscriptEventV1`] |
//! | configured service | `templates` | [`template::TemplateV1`] |
//! | agent | `agents` | [`agent::AgentV2`] |
//! | storage area | `storage`, `service_storage` | [`storage::StorageAreaV1`] |
//! | subscription | `subscriptions` | [`storage::SubscriptionV1`] |
//! | status notification | `status_outbox` | [`status::StatusNotificationV1`] |
//! | throttle window and daily count | `throttles` | [`throttle::WindowV1`], [`throttle::CountV1`] |
//! | schema version, seeding mark | `meta` | [`meta::SchemaVersionV1`], [`meta::MarkV1`] |
//!
//! Two kinds had their own types before this module and keep them beside their code: the
//! account (`accounts.rs`) and the time index entry (`by_time.rs`, borrowed when read).

use std::borrow::Cow;

pub(crate) mod agent;
pub(crate) mod chat;
pub(crate) mod meta;
pub(crate) mod notification;
pub(crate) mod routing;
pub(crate) mod service;
pub(crate) mod status;
pub(crate) mod storage;
pub(crate) mod template;
pub(crate) mod throttle;

#[cfg(test)]
pub(crate) mod golden;

/// Converts both ways between a domain enum and its stored copy, variant by variant: a
/// variant added to one but not the other fails to compile here.
macro_rules! same_variants {
    ($domain:ident <=> $stored:ident { $($variant:ident),+ $(,)? }) => {
        impl From<$domain> for $stored {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain::$variant => $stored::$variant,)+
                }
            }
        }
        impl From<$stored> for $domain {
            fn from(value: $stored) -> Self {
                match value {
                    $($stored::$variant => $domain::$variant,)+
                }
            }
        }
    };
}
pub(crate) use same_variants;

fn text(value: &str) -> Cow<'_, str> {
    Cow::Borrowed(value)
}

fn optional(value: &Option<String>) -> Option<Cow<'_, str>> {
    value.as_deref().map(Cow::Borrowed)
}

fn owned(value: Option<Cow<'_, str>>) -> Option<String> {
    value.map(Cow::into_owned)
}
