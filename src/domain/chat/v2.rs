//! The transcript as Chat API version 2 shows it: each event one object
//! `{"from":{"nickname","participantId","type"},"index","type","text","utcTime"}`, as GMS's
//! Digital Channels responses carry them in `messages`.
//!
//! `index` is the event's transcript position (so `nextPosition` is the session's next
//! position, and a client asks `refresh?transcriptPosition=<nextPosition>` for what is new);
//! `utcTime` is milliseconds since the epoch. A notice's text is left out when it is only the
//! kind's default (`has joined the session`): v2 clients read the `type`.

use serde_json::{json, Map, Value};

use super::session::ChatSession;
use super::{EventKind, TranscriptEvent, UserType};

/// The v2 `type` of an event.
pub fn message_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Message => "Message",
        EventKind::Joined => "ParticipantJoined",
        EventKind::Left => "ParticipantLeft",
        EventKind::TypingStarted => "TypingStarted",
        EventKind::TypingStopped => "TypingStopped",
        EventKind::PushUrl => "PushUrl",
        EventKind::Custom => "Notice",
        EventKind::NicknameUpdated => "NicknameUpdated",
    }
}

/// The v2 party type (`from.type`).
pub fn party_type(user_type: UserType) -> &'static str {
    match user_type {
        UserType::Client => "Client",
        UserType::Agent => "Agent",
        UserType::External => "External",
    }
}

/// The party's `participantId`: one per side, since a session has one customer, at most one
/// agent and the system (workflows, idle control).
pub fn participant_id(user_type: UserType) -> u32 {
    match user_type {
        UserType::Client => 1,
        UserType::Agent => 2,
        UserType::External => 3,
    }
}

/// One event as a v2 `messages` entry.
pub fn message(event: &TranscriptEvent) -> Value {
    // A rename is shown under the name taken, which the event carries as its text.
    let nickname = if event.kind == EventKind::NicknameUpdated {
        &event.text
    } else {
        &event.nickname
    };
    let mut object = Map::new();
    object.insert(
        "from".into(),
        json!({
            "nickname": nickname,
            "participantId": participant_id(event.user_type),
            "type": party_type(event.user_type),
        }),
    );
    object.insert("index".into(), json!(event.position));
    object.insert("type".into(), json!(message_type(event.kind)));
    let own_text = !event.text.is_empty()
        && event.text != event.kind.default_text()
        && event.kind != EventKind::NicknameUpdated;
    if own_text {
        object.insert("text".into(), json!(event.text));
    }
    if let Some(message_type) = &event.message_type {
        object.insert("messageType".into(), json!(message_type));
    }
    object.insert("utcTime".into(), json!(event.at.as_millis()));
    Value::Object(object)
}

/// The reply to every Chat API v2 request that succeeded (and each CometD notification):
/// `statusCode` 0, the session's keys, `chatEnded`, `nextPosition` and `events` as
/// `messages`. `alias` names the Chat Server that served it.
pub fn reply(session: &ChatSession, events: &[TranscriptEvent], alias: &str) -> Value {
    json!({
        "messages": events.iter().map(message).collect::<Vec<_>>(),
        "chatEnded": session.closed_at.is_some(),
        "statusCode": 0,
        "alias": alias,
        "secureKey": session.customer.secure_key,
        "userId": session.customer.user_id,
        "chatId": session.id,
        "nextPosition": session.next_position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chat::NewEvent;
    use crate::domain::time::Timestamp;

    fn event(kind: EventKind, nickname: &str, text: &str, user_type: UserType) -> TranscriptEvent {
        NewEvent::new(kind, nickname, text, user_type)
            .at(4, Timestamp::from_millis(1_432_845_088_000))
    }

    #[test]
    fn a_message_is_the_gms_shape() {
        let said = event(EventKind::Message, "Kristi", "Hello", UserType::Agent);
        assert_eq!(
            message(&said),
            json!({
                "from": {"nickname": "Kristi", "participantId": 2, "type": "Agent"},
                "index": 4,
                "type": "Message",
                "text": "Hello",
                "utcTime": 1_432_845_088_000u64,
            })
        );
    }

    #[test]
    fn notices_name_their_type_and_carry_only_their_own_text() {
        for (kind, text, expected_type, expected_text) in [
            (EventKind::Joined, "", "ParticipantJoined", None),
            (EventKind::Left, "", "ParticipantLeft", None),
            (EventKind::TypingStarted, "", "TypingStarted", None),
            (
                EventKind::TypingStarted,
                "I wa",
                "TypingStarted",
                Some("I wa"),
            ),
            (EventKind::TypingStopped, "", "TypingStopped", None),
            (
                EventKind::PushUrl,
                "https://example.com",
                "PushUrl",
                Some("https://example.com"),
            ),
            (EventKind::Custom, "{\"x\":1}", "Notice", Some("{\"x\":1}")),
        ] {
            let shown = message(&event(kind, "Ann", text, UserType::Client));
            assert_eq!(shown["type"], expected_type, "{kind:?}");
            assert_eq!(shown["text"].as_str(), expected_text, "{kind:?} {text}");
            assert_eq!(shown["from"]["type"], "Client", "{kind:?}");
        }
    }

    #[test]
    fn a_rename_is_shown_under_the_new_name() {
        let renamed = event(EventKind::NicknameUpdated, "Ann", "Annie", UserType::Client);
        let shown = message(&renamed);
        assert_eq!(shown["type"], "NicknameUpdated");
        assert_eq!(shown["from"]["nickname"], "Annie");
        assert!(shown.get("text").is_none());
    }

    #[test]
    fn the_system_is_an_external_party_of_its_own() {
        let said = event(
            EventKind::Message,
            "system",
            "Please wait",
            UserType::External,
        );
        let shown = message(&said);
        assert_eq!(shown["from"]["type"], "External");
        assert_eq!(shown["from"]["participantId"], 3);
    }
}
