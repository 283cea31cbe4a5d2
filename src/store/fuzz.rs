//! The decoding of stored values under the fuzzer ([`crate::fuzzing::stored`]).
//!
//! A database can hold anything a disk, an old binary or a bug left in it; reading it must
//! refuse what it does not understand (a [`StoreError::Corrupt`] naming the value), never
//! panic or misread. Whatever decodes is written back and read again: the second encoding
//! must equal the first, so nothing the decoder accepts is lost on the next write.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{accounts, by_time, codec, decode_service, format, StoreError};
use crate::domain::agent::AgentRecord;
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;
use crate::domain::notification::Notification;
use crate::domain::options::ConfiguredService;

/// The first byte of `data` picks the kind of stored value (by the tree it lives in), the
/// rest is the value's bytes as sled would return them. Panics when a property fails.
pub(crate) fn fuzz_stored(data: &[u8]) {
    let Some((&kind, value)) = data.split_first() else {
        return;
    };
    match kind % 10 {
        0 => {
            let decoded = decode_service("fuzz", value);
            round_trip(format::SERVICE, decoded, "service fuzz", |bytes| {
                decode_service("fuzz", bytes)
            });
        }
        1 => typed::<Notification>(format::NOTIFICATION, value),
        2 => typed::<ChatSession>(format::CHAT_SESSION, value),
        3 => typed::<TranscriptEvent>(format::TRANSCRIPT_EVENT, value),
        4 => typed::<ConfiguredService>(format::TEMPLATE, value),
        5 => typed::<AgentRecord>(format::AGENT, value),
        6 => typed::<u32>(format::META, value),
        7 => typed::<bool>(format::META, value),
        8 => account(value),
        _ => time_entry(value),
    }
}

/// A value stored with `codec::encode(version, &T)`.
fn typed<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(version: u8, value: &[u8]) {
    let decoded = codec::decode::<T>(version, value, "fuzzed value");
    round_trip(version, decoded, "fuzzed value", |bytes| {
        codec::decode(version, bytes, "fuzzed value")
    });
}

/// Checks one decoding: an error is `Corrupt` and names `what`; a value encodes, decodes to
/// itself and encodes to the same bytes again.
fn round_trip<T: Serialize + PartialEq + std::fmt::Debug>(
    version: u8,
    decoded: Result<T, StoreError>,
    what: &str,
    decode: impl Fn(&[u8]) -> Result<T, StoreError>,
) {
    let value = match decoded {
        Ok(value) => value,
        Err(err) => return assert_corrupt(&err, what),
    };
    let bytes = codec::encode(version, &value).expect("a decoded value encodes");
    let again =
        decode(&bytes).unwrap_or_else(|err| panic!("{value:?} encoded does not decode: {err}"));
    assert_eq!(again, value, "a decoded value changes when written back");
    let bytes_again = codec::encode(version, &again).expect("a decoded value encodes");
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
    use crate::domain::agent::AgentConfig;
    use crate::domain::chat::session::Customer;
    use crate::domain::chat::{EventKind, NewEvent, UserType};
    use crate::domain::idle::{IdleSettings, IdleState};
    use crate::domain::options::Preset;
    use crate::domain::service::{CallbackState, ServiceRecord};
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
            (
                "service",
                0,
                codec::encode(format::SERVICE, &service).unwrap(),
            ),
            (
                "notification",
                1,
                codec::encode(format::NOTIFICATION, &notification).unwrap(),
            ),
            (
                "chat_session",
                2,
                codec::encode(format::CHAT_SESSION, &session).unwrap(),
            ),
            (
                "transcript_event",
                3,
                codec::encode(format::TRANSCRIPT_EVENT, &event).unwrap(),
            ),
            (
                "template",
                4,
                codec::encode(format::TEMPLATE, &template).unwrap(),
            ),
            ("agent", 5, codec::encode(format::AGENT, &agent).unwrap()),
            (
                "schema_version",
                6,
                codec::encode(format::META, &3u32).unwrap(),
            ),
            ("account", 8, accounts::encode(&account).unwrap()),
            ("time_entry", 9, time_entry),
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
