//! The decoding of stored values under the fuzzer ([`crate::fuzzing::stored`]).
//!
//! A database can hold anything a disk, an old binary or a bug left in it; reading it must
//! refuse what it does not understand (a [`StoreError::Corrupt`] naming the value), never
//! panic or misread. Whatever decodes is written back and read again: the second encoding
//! must equal the first, so nothing the decoder accepts is lost on the next write.

use super::stored::meta::{MarkV1, SchemaVersionV1};
use super::stored::{agent, chat, notification, routing, service, template};
use super::{accounts, by_time, codec, decode_service, StoreError};

/// What fuzzed values are named in errors.
const FUZZED: &str = "fuzzed value";

/// The first byte of `data` picks the kind of stored value (by the tree it lives in), the
/// rest is the value's bytes as sled would return them. Panics when a property fails.
pub(crate) fn fuzz_stored(data: &[u8]) {
    let Some((&kind, value)) = data.split_first() else {
        return;
    };
    match kind % 11 {
        0 => round_trip(
            value,
            "service fuzz",
            |bytes| decode_service("fuzz", bytes),
            service::encode,
        ),
        1 => typed(value, notification::decode, notification::encode),
        2 => typed(value, chat::decode_session, chat::encode_session),
        3 => typed(value, chat::decode_event, chat::encode_event),
        4 => typed(value, template::decode, template::encode),
        5 => typed(value, agent::decode, agent::encode),
        6 => typed(
            value,
            codec::read::<SchemaVersionV1>,
            codec::write::<SchemaVersionV1>,
        ),
        7 => typed(value, codec::read::<MarkV1>, codec::write::<MarkV1>),
        8 => account(value),
        9 => time_entry(value),
        _ => typed(value, routing::decode, routing::encode),
    }
}

/// A value read with `decode(bytes, what)` and written with `encode`.
fn typed<T: PartialEq + std::fmt::Debug>(
    value: &[u8],
    decode: impl Fn(&[u8], &str) -> Result<T, StoreError>,
    encode: impl Fn(&T) -> Result<Vec<u8>, StoreError>,
) {
    round_trip(value, FUZZED, |bytes| decode(bytes, FUZZED), encode);
}

/// Checks one decoding: an error is `Corrupt` and names `what`; a value encodes, decodes to
/// itself and encodes to the same bytes again.
fn round_trip<T: PartialEq + std::fmt::Debug>(
    value: &[u8],
    what: &str,
    decode: impl Fn(&[u8]) -> Result<T, StoreError>,
    encode: impl Fn(&T) -> Result<Vec<u8>, StoreError>,
) {
    let value = match decode(value) {
        Ok(value) => value,
        Err(err) => return assert_corrupt(&err, what),
    };
    let bytes = encode(&value).expect("a decoded value encodes");
    let again =
        decode(&bytes).unwrap_or_else(|err| panic!("{value:?} encoded does not decode: {err}"));
    assert_eq!(again, value, "a decoded value changes when written back");
    let bytes_again = encode(&again).expect("a decoded value encodes");
    assert_eq!(
        bytes_again, bytes,
        "the encoding of {value:?} is not stable"
    );
}

/// An unreadable value is refused as corrupt, naming the value.
fn assert_corrupt(err: &StoreError, what: &str) {
    match err {
        StoreError::Corrupt {
            what: named,
            reason,
        } => {
            assert_eq!(named, what, "the error names another value");
            assert!(!reason.is_empty(), "no reason given for {what}");
        }
        other => panic!("decoding {what} failed with {other:?}, not as corrupt"),
    }
}

/// An `accounts` value (decoded through its stored form, then checked as an account).
fn account(value: &[u8]) {
    let account = match accounts::decode(value, "fuzz") {
        Ok(account) => account,
        Err(err) => return assert_corrupt(&err, "account fuzz"),
    };
    let bytes = accounts::encode(&account).expect("a decoded account encodes");
    let again = accounts::decode(&bytes, "fuzz").expect("an encoded account decodes");
    assert_eq!(again, account, "an account changes when written back");
}

/// A `by_time` entry: the first byte is the key's length, then the key, then the value.
fn time_entry(data: &[u8]) {
    let Some((&key_len, rest)) = data.split_first() else {
        return;
    };
    let (key, value) = rest.split_at(usize::from(key_len).min(rest.len()));
    let summary = match by_time::summary(key, value) {
        Ok(summary) => summary,
        Err(StoreError::Corrupt { reason, .. }) => {
            return assert!(!reason.is_empty(), "no reason given");
        }
        Err(other) => panic!("a time entry failed with {other:?}, not as corrupt"),
    };
    let (key, value) = by_time::entry(
        summary.desired_time,
        summary.id,
        summary.state,
        summary.service_name,
        summary.customer_number,
    )
    .expect("a decoded time entry encodes");
    let again = by_time::summary(&key, &value).expect("an encoded time entry decodes");
    assert_eq!(again, summary, "a time entry changes when written back");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::domain::account::{Account, Role, Username};
    use crate::domain::agent::{AgentConfig, AgentRecord};
    use crate::domain::chat::session::ChatSession;
    use crate::domain::chat::session::Customer;
    use crate::domain::chat::{EventKind, NewEvent, UserType};
    use crate::domain::idle::{IdleSettings, IdleState};
    use crate::domain::notification::Notification;
    use crate::domain::options::ConfiguredService;
    use crate::domain::options::Preset;
    use crate::domain::service::{CallbackState, RoutingEvent, RoutingEventKind, ServiceRecord};
    use crate::domain::time::Timestamp;

    /// One stored value of each kind `fuzz_stored` reads, as `(seed file, kind byte, bytes)`.
    fn samples() -> Vec<(&'static str, u8, Vec<u8>)> {
        let at = Timestamp::from_millis(1_764_676_800_000);
        let mut service = ServiceRecord::new("svc-1", "chat-delay", Preset::ChatDelayed, at);
        service.owner = Some("customer-1".into());
        let notification = Notification {
            seq: 7,
            tag: "service.agentavailable.svc-1".into(),
            message: r#"{"_id":"svc-1"}"#.into(),
            created_at: at,
            delivered: false,
        };
        let session = ChatSession {
            id: "0123456789abcdef".into(),
            service_id: "svc-1".into(),
            owner: Some("customer-1".into()),
            created_at: at,
            customer: Customer {
                nickname: "Bob".into(),
                ..Customer::default()
            },
            comet: true,
            agent: None,
            closed_at: None,
            next_position: 2,
            client_position: 1,
            on_hold: false,
            language: None,
            restored: false,
            idle: IdleSettings::default(),
            idle_state: IdleState::new(at),
        };
        let event = NewEvent::new(EventKind::Message, "Bob", "hello", UserType::Client).at(1, at);
        let template = ConfiguredService {
            name: "chat-delay".into(),
            preset: Preset::ChatDelayed,
            options: BTreeMap::from([("_ttl".to_string(), "600".to_string())]),
        };
        let agent = AgentRecord::from(&crate::domain::agent::Agent::new(
            AgentConfig {
                id: "agent1".into(),
                name: "Kristi".into(),
                groups: vec!["Billing".into()],
                place: Some("Place1".into()),
                place_groups: vec![],
                skills: BTreeMap::from([("English".to_string(), 20)]),
                capacity: BTreeMap::from([("chat".to_string(), 2)]),
                auto_answer: true,
            },
            at,
        ));
        let account = Account {
            username: Username::parse("kristi").unwrap(),
            role: Role::Agent,
            agent_id: Some("agent1".into()),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created_at: at,
        };
        let (key, value) = by_time::entry(
            at,
            "svc-1",
            CallbackState::Queued,
            "chat-delay",
            Some("5551234"),
        )
        .unwrap();
        let mut time_entry = vec![key.len() as u8];
        time_entry.extend(key);
        time_entry.extend(value);
        vec![
            ("service", 0, service::encode(&service).unwrap()),
            (
                "notification",
                1,
                notification::encode(&notification).unwrap(),
            ),
            ("chat_session", 2, chat::encode_session(&session).unwrap()),
            ("transcript_event", 3, chat::encode_event(&event).unwrap()),
            ("template", 4, template::encode(&template).unwrap()),
            ("agent", 5, agent::encode(&agent).unwrap()),
            (
                "schema_version",
                6,
                codec::write(&SchemaVersionV1(3)).unwrap(),
            ),
            ("account", 8, accounts::encode(&account).unwrap()),
            ("time_entry", 9, time_entry),
            (
                "routing_event",
                10,
                routing::encode(&RoutingEvent {
                    at,
                    step: 1,
                    kind: RoutingEventKind::Reserved {
                        agent: "agent1".into(),
                    },
                })
                .unwrap(),
            ),
        ]
    }

    /// The committed seeds of the `stored` fuzz target are values of today's formats, so the
    /// fuzzer starts from what the store really writes. After a format change, rewrite them
    /// with `CALLBACKD_WRITE_FUZZ_SEEDS=1 cargo test --lib stored_fuzz_seeds`.
    #[test]
    fn stored_fuzz_seeds_are_values_of_the_current_formats() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/stored");
        let write = std::env::var_os("CALLBACKD_WRITE_FUZZ_SEEDS").is_some();
        for (name, kind, bytes) in samples() {
            let mut seed = vec![kind];
            seed.extend(bytes);
            let path = dir.join(name);
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &seed).unwrap();
            }
            let committed =
                std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert_eq!(
                committed, seed,
                "{name}: the seed is not today's encoding; rewrite it (see this test's doc)"
            );
            fuzz_stored(&seed);
        }
    }
}
