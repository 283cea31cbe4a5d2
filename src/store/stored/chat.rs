//! Chat sessions (`chat_sessions` tree) and their transcripts' events (`transcripts`),
//! format 1.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
use super::{optional, owned, same_variants, text};
use crate::domain::chat::session::{ChatSession, Customer, SessionAgent};
use crate::domain::chat::{EventKind, TranscriptEvent, UserType, Visibility};
use crate::domain::idle::{IdleSettings, IdleState};
use crate::domain::time::Timestamp;

/// A chat session as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSessionV1<'a> {
    id: Cow<'a, str>,
    service_id: Cow<'a, str>,
    owner: Option<Cow<'a, str>>,
    created_at_ms: u64,
    customer: CustomerV1<'a>,
    comet: bool,
    agent: Option<SessionAgentV1<'a>>,
    closed_at_ms: Option<u64>,
    next_position: u64,
    client_position: u64,
    on_hold: bool,
    language: Option<Cow<'a, str>>,
    restored: bool,
    idle: IdleSettingsV1<'a>,
    idle_state: IdleStateV1,
}

impl Versioned for ChatSessionV1<'_> {
    const VERSION: u8 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CustomerV1<'a> {
    first_name: Option<Cow<'a, str>>,
    last_name: Option<Cow<'a, str>>,
    email: Option<Cow<'a, str>>,
    subject: Option<Cow<'a, str>>,
    nickname: Cow<'a, str>,
    time_zone_offset: Option<Cow<'a, str>>,
    user_id: Cow<'a, str>,
    secure_key: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SessionAgentV1<'a> {
    id: Cow<'a, str>,
    nickname: Cow<'a, str>,
    joined: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IdleSettingsV1<'a> {
    enabled: bool,
    include_notices: bool,
    timeout_alert_secs: u64,
    message_alert: Cow<'a, str>,
    timeout_alert2_secs: u64,
    message_alert2: Cow<'a, str>,
    timeout_close_secs: u64,
    message_close: Cow<'a, str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct IdleStateV1 {
    last_activity_ms: u64,
    alerts_sent: u8,
}

/// A transcript event as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEventV1<'a> {
    position: u64,
    kind: EventKindV1,
    nickname: Cow<'a, str>,
    text: Cow<'a, str>,
    at_ms: u64,
    user_type: UserTypeV1,
    visibility: VisibilityV1,
    message_type: Option<Cow<'a, str>>,
    attributes: Option<Cow<'a, str>>,
}

impl Versioned for TranscriptEventV1<'_> {
    const VERSION: u8 = 1;
}

/// What a transcript event is, by variant index. New kinds are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum EventKindV1 {
    Message,
    Joined,
    Left,
    TypingStarted,
    TypingStopped,
    PushUrl,
    Custom,
    NicknameUpdated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum UserTypeV1 {
    Agent,
    Client,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum VisibilityV1 {
    All,
    Int,
    Vip,
}

same_variants!(EventKind <=> EventKindV1 {
    Message,
    Joined,
    Left,
    TypingStarted,
    TypingStopped,
    PushUrl,
    Custom,
    NicknameUpdated,
});
same_variants!(UserType <=> UserTypeV1 { Agent, Client, External });
same_variants!(Visibility <=> VisibilityV1 { All, Int, Vip });

/// `session` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode_session(session: &ChatSession) -> Result<Vec<u8>, StoreError> {
    codec::write(&ChatSessionV1::from(session))
}

/// A chat session read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-1 chat session.
pub(crate) fn decode_session(bytes: &[u8], what: &str) -> Result<ChatSession, StoreError> {
    codec::read::<ChatSessionV1>(bytes, what).map(ChatSession::from)
}

/// `event` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode_event(event: &TranscriptEvent) -> Result<Vec<u8>, StoreError> {
    codec::write(&TranscriptEventV1::from(event))
}

/// A transcript event read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-1 transcript event.
pub(crate) fn decode_event(bytes: &[u8], what: &str) -> Result<TranscriptEvent, StoreError> {
    codec::read::<TranscriptEventV1>(bytes, what).map(TranscriptEvent::from)
}

impl<'a> From<&'a ChatSession> for ChatSessionV1<'a> {
    fn from(s: &'a ChatSession) -> Self {
        let c = &s.customer;
        let idle = &s.idle;
        Self {
            id: text(&s.id),
            service_id: text(&s.service_id),
            owner: optional(&s.owner),
            created_at_ms: s.created_at.as_millis(),
            customer: CustomerV1 {
                first_name: optional(&c.first_name),
                last_name: optional(&c.last_name),
                email: optional(&c.email),
                subject: optional(&c.subject),
                nickname: text(&c.nickname),
                time_zone_offset: optional(&c.time_zone_offset),
                user_id: text(&c.user_id),
                secure_key: text(&c.secure_key),
            },
            comet: s.comet,
            agent: s.agent.as_ref().map(|agent| SessionAgentV1 {
                id: text(&agent.id),
                nickname: text(&agent.nickname),
                joined: agent.joined,
            }),
            closed_at_ms: s.closed_at.map(Timestamp::as_millis),
            next_position: s.next_position,
            client_position: s.client_position,
            on_hold: s.on_hold,
            language: optional(&s.language),
            restored: s.restored,
            idle: IdleSettingsV1 {
                enabled: idle.enabled,
                include_notices: idle.include_notices,
                timeout_alert_secs: idle.timeout_alert_secs,
                message_alert: text(&idle.message_alert),
                timeout_alert2_secs: idle.timeout_alert2_secs,
                message_alert2: text(&idle.message_alert2),
                timeout_close_secs: idle.timeout_close_secs,
                message_close: text(&idle.message_close),
            },
            idle_state: IdleStateV1 {
                last_activity_ms: s.idle_state.last_activity.as_millis(),
                alerts_sent: s.idle_state.alerts_sent,
            },
        }
    }
}

impl From<ChatSessionV1<'_>> for ChatSession {
    fn from(s: ChatSessionV1<'_>) -> Self {
        let c = s.customer;
        let idle = s.idle;
        Self {
            id: s.id.into_owned(),
            service_id: s.service_id.into_owned(),
            owner: owned(s.owner),
            created_at: Timestamp::from_millis(s.created_at_ms),
            customer: Customer {
                first_name: owned(c.first_name),
                last_name: owned(c.last_name),
                email: owned(c.email),
                subject: owned(c.subject),
                nickname: c.nickname.into_owned(),
                time_zone_offset: owned(c.time_zone_offset),
                user_id: c.user_id.into_owned(),
                secure_key: c.secure_key.into_owned(),
            },
            comet: s.comet,
            agent: s.agent.map(|agent| SessionAgent {
                id: agent.id.into_owned(),
                nickname: agent.nickname.into_owned(),
                joined: agent.joined,
            }),
            closed_at: s.closed_at_ms.map(Timestamp::from_millis),
            next_position: s.next_position,
            client_position: s.client_position,
            on_hold: s.on_hold,
            language: owned(s.language),
            restored: s.restored,
            idle: IdleSettings {
                enabled: idle.enabled,
                include_notices: idle.include_notices,
                timeout_alert_secs: idle.timeout_alert_secs,
                message_alert: idle.message_alert.into_owned(),
                timeout_alert2_secs: idle.timeout_alert2_secs,
                message_alert2: idle.message_alert2.into_owned(),
                timeout_close_secs: idle.timeout_close_secs,
                message_close: idle.message_close.into_owned(),
            },
            idle_state: IdleState {
                last_activity: Timestamp::from_millis(s.idle_state.last_activity_ms),
                alerts_sent: s.idle_state.alerts_sent,
            },
        }
    }
}

impl<'a> From<&'a TranscriptEvent> for TranscriptEventV1<'a> {
    fn from(e: &'a TranscriptEvent) -> Self {
        Self {
            position: e.position,
            kind: e.kind.into(),
            nickname: text(&e.nickname),
            text: text(&e.text),
            at_ms: e.at.as_millis(),
            user_type: e.user_type.into(),
            visibility: e.visibility.into(),
            message_type: optional(&e.message_type),
            attributes: optional(&e.attributes),
        }
    }
}

impl From<TranscriptEventV1<'_>> for TranscriptEvent {
    fn from(e: TranscriptEventV1<'_>) -> Self {
        Self {
            position: e.position,
            kind: e.kind.into(),
            nickname: e.nickname.into_owned(),
            text: e.text.into_owned(),
            at: Timestamp::from_millis(e.at_ms),
            user_type: e.user_type.into(),
            visibility: e.visibility.into(),
            message_type: owned(e.message_type),
            attributes: owned(e.attributes),
        }
    }
}
