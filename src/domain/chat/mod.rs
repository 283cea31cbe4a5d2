//! The chat transcript as Chat API v1 shows it (seed 003): numbered events, each one row
//! `[type, nickname, text, seconds since start, "AGENT"|"CLIENT"|"EXTERNAL"]`.
//!
//! Positions start at 1 and never change: event `n` is the `n`th thing that happened in the
//! session, whoever may see it. A client's `transcriptPosition` is the position of the first
//! event it has not seen yet, so `refresh?transcriptPosition=1` replays everything.

pub mod session;
pub mod v2;

use crate::domain::time::Timestamp;

/// What a transcript event is (seed 003's event types, plus `Notice.Custom` for
/// `customNotice` and ESP `USER_CUSTOM` notices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A chat message.
    Message,
    /// A participant joined.
    Joined,
    /// A participant left.
    Left,
    /// A participant started typing.
    TypingStarted,
    /// A participant stopped typing.
    TypingStopped,
    /// A URL pushed to the customer.
    PushUrl,
    /// A custom notice, opaque to the chat server.
    Custom,
    /// The customer changed their nickname (Chat API v2 `updateNickname`); the text is the
    /// new nickname. Last, so that stored transcripts keep their encoding.
    NicknameUpdated,
}

impl EventKind {
    /// The wire name (`Message.Text`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "Message.Text",
            EventKind::Joined => "Notice.Joined",
            EventKind::Left => "Notice.Left",
            EventKind::TypingStarted => "Notice.TypingStarted",
            EventKind::TypingStopped => "Notice.TypingStopped",
            EventKind::PushUrl => "Notice.PushUrl",
            EventKind::Custom => "Notice.Custom",
            EventKind::NicknameUpdated => "Notice.NicknameUpdated",
        }
    }

    /// Notices (everything but messages) reset idle control only when it includes notices.
    pub fn is_notice(self) -> bool {
        self != EventKind::Message
    }

    /// The text a notice shows when it carries none of its own (seed 003).
    pub fn default_text(self) -> &'static str {
        match self {
            EventKind::Joined => "has joined the session",
            EventKind::Left => "has left the session",
            EventKind::TypingStarted => "is typing",
            EventKind::TypingStopped => "stopped typing",
            EventKind::Message
            | EventKind::PushUrl
            | EventKind::Custom
            | EventKind::NicknameUpdated => "",
        }
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    /// The agent.
    Agent,
    /// The customer.
    Client,
    /// The system: a workflow (ESP request) or idle control.
    External,
}

impl UserType {
    /// The wire name (`AGENT`).
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Agent => "AGENT",
            UserType::Client => "CLIENT",
            UserType::External => "EXTERNAL",
        }
    }
}

/// Who may see an event (ESP `Visibility`, seeds 002 and 004).
pub use crate::domain::esp::Visibility;

/// One event of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptEvent {
    /// Its position, from 1.
    pub position: u64,
    /// What happened.
    pub kind: EventKind,
    /// Who, as shown in the chat.
    pub nickname: String,
    /// The message text, notice text or pushed URL.
    pub text: String,
    /// When.
    pub at: Timestamp,
    /// Which side.
    pub user_type: UserType,
    /// Who may see it.
    pub visibility: Visibility,
    /// ESP `MessageType` (opaque).
    pub message_type: Option<String>,
    /// ESP `EventAttributes`, parsed into a nested key-value list and kept as JSON text.
    pub attributes: Option<String>,
}

impl TranscriptEvent {
    /// The row clients see: `[type, nickname, text, seconds since start, user type]`, every
    /// element a string as in seed 003.
    pub fn row(&self, started_at: Timestamp) -> [String; 5] {
        let secs = self.at.as_millis().saturating_sub(started_at.as_millis()) / 1000;
        [
            self.kind.as_str().to_string(),
            self.nickname.clone(),
            self.text.clone(),
            secs.to_string(),
            self.user_type.as_str().to_string(),
        ]
    }
}

/// An event about to be appended; the transcript gives it its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// Who, as shown.
    pub nickname: String,
    /// Text; empty takes the kind's default text.
    pub text: String,
    /// Which side.
    pub user_type: UserType,
    /// Who may see it.
    pub visibility: Visibility,
    /// ESP `MessageType`.
    pub message_type: Option<String>,
    /// ESP `EventAttributes` as JSON text.
    pub attributes: Option<String>,
}

impl NewEvent {
    /// An event everyone sees, with the kind's default text when `text` is empty.
    pub fn new(kind: EventKind, nickname: &str, text: &str, user_type: UserType) -> Self {
        let text = if text.is_empty() {
            kind.default_text()
        } else {
            text
        };
        NewEvent {
            kind,
            nickname: nickname.to_string(),
            text: text.to_string(),
            user_type,
            visibility: Visibility::All,
            message_type: None,
            attributes: None,
        }
    }

    /// Numbers the event.
    pub fn at(self, position: u64, at: Timestamp) -> TranscriptEvent {
        TranscriptEvent {
            position,
            kind: self.kind,
            nickname: self.nickname,
            text: self.text,
            at,
            user_type: self.user_type,
            visibility: self.visibility,
            message_type: self.message_type,
            attributes: self.attributes,
        }
    }
}

/// The customer's view of `events` from `from` on: what they may see, in order.
pub fn customer_rows<'a>(
    events: impl IntoIterator<Item = &'a TranscriptEvent>,
    from: u64,
    started_at: Timestamp,
) -> Vec<[String; 5]> {
    events
        .into_iter()
        .filter(|e| e.position >= from && e.visibility.visible_to_customer())
        .map(|e| e.row(started_at))
        .collect()
}

/// The nickname a customer gets: `userDisplayName`, else the first name and the initial of
/// the last name (seed 003 shows `VasyaP` for Vasya Pupkin), else the first name, else
/// `Customer`.
pub fn customer_nickname(
    display_name: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> String {
    fn clean(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    if let Some(name) = clean(display_name) {
        return name.to_string();
    }
    match (clean(first_name), clean(last_name)) {
        (Some(first), Some(last)) => {
            let initial: String = last.chars().take(1).collect();
            format!("{first}{initial}")
        }
        (Some(first), None) => first.to_string(),
        (None, Some(last)) => last.to_string(),
        (None, None) => "Customer".to_string(),
    }
}

/// Whether `url` is an absolute `http(s)` URL with a host (pushed URLs must be valid).
pub fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64, kind: EventKind, secs: u64, visibility: Visibility) -> TranscriptEvent {
        let mut new = NewEvent::new(kind, "kSippO", "", UserType::Agent);
        new.visibility = visibility;
        new.at(position, Timestamp::from_millis(1_000_000 + secs * 1000))
    }

    #[test]
    fn rows_are_the_seed_shape_with_seconds_since_start() {
        let joined = event(1, EventKind::Joined, 15, Visibility::All);
        assert_eq!(
            joined.row(Timestamp::from_millis(1_000_000)),
            [
                "Notice.Joined",
                "kSippO",
                "has joined the session",
                "15",
                "AGENT"
            ]
        );
    }

    #[test]
    fn the_customer_sees_only_visible_events_from_the_position_on() {
        let events = [
            event(1, EventKind::Joined, 1, Visibility::All),
            event(2, EventKind::Message, 2, Visibility::Int),
            event(3, EventKind::Message, 3, Visibility::Vip),
            event(4, EventKind::TypingStarted, 4, Visibility::All),
        ];
        let start = Timestamp::from_millis(1_000_000);
        let all = customer_rows(&events, 1, start);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1][0], "Notice.TypingStarted");
        assert_eq!(customer_rows(&events, 2, start).len(), 1);
        assert!(customer_rows(&events, 5, start).is_empty());
    }

    #[test]
    fn nicknames_follow_the_seed() {
        assert_eq!(
            customer_nickname(None, Some("Vasya"), Some("Pupkin")),
            "VasyaP"
        );
        assert_eq!(
            customer_nickname(Some("Buzz"), Some("Vasya"), Some("P")),
            "Buzz"
        );
        assert_eq!(customer_nickname(Some("  "), None, None), "Customer");
    }

    #[test]
    fn pushed_urls_must_be_web_urls() {
        assert!(is_web_url("https://example.com/offer?id=1"));
        assert!(is_web_url("http://localhost:8080"));
        assert!(!is_web_url("ftp://example.com"));
        assert!(!is_web_url("https://"));
        assert!(!is_web_url("https://exa mple.com"));
        assert!(!is_web_url("example.com"));
    }
}
