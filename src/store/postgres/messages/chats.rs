//! Chat sessions and their transcripts on PostgreSQL (the sled engine's `store/chat.rs`).
//!
//! A session and the events that changed it are written in one transaction, the session's
//! row first: the upsert locks it, so two nodes appending to one chat write their (session,
//! events) pairs one after the other, and a stored session's `next_position` says how many
//! events its transcript has. Events are stored at the positions the caller numbered them
//! with (the Chat Server's session rules), as sled stores them: an event at a position
//! already stored replaces it.

use std::collections::BTreeMap;

use super::to_bigint;
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;
use crate::store::engine::Chats;
use crate::store::postgres::PgStore;
use crate::store::{stored, Pending, StoreError};

/// Creates or replaces a session, locking its row until the transaction ends.
const UPSERT_SESSION: &str = "
    INSERT INTO chat_sessions (id, value) VALUES ($1, $2)
    ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value";

/// Stores a session's events (arrays of positions and values), replacing any at the same
/// positions; in position order, so that two writers lock the rows in one order.
const UPSERT_EVENTS: &str = "
    INSERT INTO transcripts (session_id, position, value)
    SELECT $1::text, event.position, event.value
    FROM UNNEST($2::bigint[], $3::bytea[]) AS event (position, value)
    ORDER BY event.position
    ON CONFLICT (session_id, position) DO UPDATE SET value = EXCLUDED.value";

impl Chats for PgStore {
    fn put_chat_session(&self, session: &ChatSession) -> Result<Pending<()>, StoreError> {
        let value = stored::chat::encode_session(session)?;
        self.write(|tx| {
            tx.execute(UPSERT_SESSION, &[&session.id, &value])?;
            Ok(())
        })
    }

    fn append_transcript(
        &self,
        session: &ChatSession,
        events: &[TranscriptEvent],
    ) -> Result<Pending<()>, StoreError> {
        let session_value = stored::chat::encode_session(session)?;
        // One row per position, the last event given for it winning, as sled's inserts in
        // order would leave it (one statement may not change a row twice).
        let mut by_position = BTreeMap::new();
        for event in events {
            by_position.insert(
                to_bigint(event.position, "transcript position")?,
                stored::chat::encode_event(event)?,
            );
        }
        let (positions, values): (Vec<i64>, Vec<Vec<u8>>) = by_position.into_iter().unzip();
        self.write(|tx| {
            tx.execute(UPSERT_SESSION, &[&session.id, &session_value])?;
            if !positions.is_empty() {
                tx.execute(UPSERT_EVENTS, &[&session.id, &positions, &values])?;
            }
            Ok(())
        })
    }

    fn chat_session(&self, id: &str) -> Result<Option<ChatSession>, StoreError> {
        self.read(|sql| {
            sql.query_opt("SELECT value FROM chat_sessions WHERE id = $1", &[&id])?
                .map(|row| {
                    stored::chat::decode_session(row.try_get(0)?, &format!("chat session {id}"))
                })
                .transpose()
        })
    }

    fn chat_sessions(
        &self,
        keep: &mut dyn FnMut(&ChatSession) -> bool,
    ) -> Result<Vec<ChatSession>, StoreError> {
        // In id order (the column's collation is "C"), as sled's iteration gives them.
        let rows =
            self.read(|sql| sql.query("SELECT value FROM chat_sessions ORDER BY id", &[]))?;
        let mut found = Vec::new();
        for row in &rows {
            let session = stored::chat::decode_session(row.try_get(0)?, "chat session")?;
            if keep(&session) {
                found.push(session);
            }
        }
        Ok(found)
    }

    fn transcript(&self, session_id: &str) -> Result<Vec<TranscriptEvent>, StoreError> {
        self.read(|sql| {
            sql.query(
                "SELECT value FROM transcripts WHERE session_id = $1 ORDER BY position",
                &[&session_id],
            )?
            .iter()
            .map(|row| stored::chat::decode_event(row.try_get(0)?, "transcript event"))
            .collect()
        })
    }

    fn delete_chat_session(&self, session_id: &str) -> Result<Pending<()>, StoreError> {
        // The transcript goes with it (ON DELETE CASCADE).
        self.write(|tx| {
            tx.execute("DELETE FROM chat_sessions WHERE id = $1", &[&session_id])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{count, store, two_nodes};
    use super::*;
    use crate::domain::chat::session::Customer;
    use crate::domain::chat::{EventKind, NewEvent, UserType};
    use crate::domain::idle::{IdleSettings, IdleState};
    use crate::domain::time::Timestamp;

    const AT: Timestamp = Timestamp::from_millis(1_764_676_800_000);

    /// A session `id` whose next event gets `next_position`; `nickname` tells writers apart.
    fn session(id: &str, nickname: &str, next_position: u64) -> ChatSession {
        ChatSession {
            id: id.into(),
            service_id: "svc-1".into(),
            owner: Some("alice".into()),
            created_at: AT,
            customer: Customer {
                nickname: nickname.into(),
                ..Customer::default()
            },
            comet: true,
            agent: None,
            closed_at: None,
            next_position,
            client_position: 1,
            on_hold: false,
            language: None,
            restored: false,
            idle: IdleSettings::default(),
            idle_state: IdleState::new(AT),
        }
    }

    fn event(position: u64, text: &str) -> TranscriptEvent {
        NewEvent::new(EventKind::Message, "Bob", text, UserType::Client).at(position, AT)
    }

    fn texts(events: &[TranscriptEvent]) -> Vec<(u64, &str)> {
        events
            .iter()
            .map(|e| (e.position, e.text.as_str()))
            .collect()
    }

    #[test]
    fn a_session_is_stored_replaced_and_read_back() {
        let store = store();
        assert_eq!(store.chat_session("c1").unwrap(), None);

        store
            .put_chat_session(&session("c1", "Bob", 1))
            .unwrap()
            .without_waiting();
        let mut changed = session("c1", "Bobby", 1);
        changed.closed_at = Some(AT);
        store.put_chat_session(&changed).unwrap().without_waiting();

        assert_eq!(store.chat_session("c1").unwrap(), Some(changed));
        assert!(store.transcript("c1").unwrap().is_empty());
    }

    #[test]
    fn appended_events_are_read_in_position_order_with_their_session() {
        let store = store();
        store
            .append_transcript(&session("c1", "Bob", 3), &[event(2, "b"), event(1, "a")])
            .unwrap()
            .without_waiting();
        store
            .append_transcript(&session("c1", "Bob", 4), &[event(3, "c")])
            .unwrap()
            .without_waiting();
        store
            .append_transcript(&session("c2", "Eve", 2), &[event(1, "other chat")])
            .unwrap()
            .without_waiting();

        let transcript = store.transcript("c1").unwrap();
        assert_eq!(texts(&transcript), [(1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(transcript[0], event(1, "a"), "read back whole");
        assert_eq!(
            store.chat_session("c1").unwrap().map(|s| s.next_position),
            Some(4),
            "the session written with the last events"
        );
        assert_eq!(texts(&store.transcript("c2").unwrap()), [(1, "other chat")]);
    }

    #[test]
    fn an_event_at_a_stored_position_replaces_it_as_in_sled() {
        let store = store();
        store
            .append_transcript(&session("c1", "Bob", 2), &[event(1, "first")])
            .unwrap()
            .without_waiting();
        store
            .append_transcript(
                &session("c1", "Bob", 3),
                &[event(1, "again"), event(2, "b"), event(1, "last")],
            )
            .unwrap()
            .without_waiting();

        assert_eq!(
            texts(&store.transcript("c1").unwrap()),
            [(1, "last"), (2, "b")],
            "the last one given for a position wins"
        );
    }

    #[test]
    fn sessions_are_listed_in_id_order_through_keep() {
        let store = store();
        for id in ["b", "a", "C", "c"] {
            store
                .put_chat_session(&session(id, id, 1))
                .unwrap()
                .without_waiting();
        }
        let mut seen = Vec::new();

        let kept = store
            .chat_sessions(&mut |s| {
                seen.push(s.id.clone());
                s.id != "b"
            })
            .unwrap();

        assert_eq!(seen, ["C", "a", "b", "c"], "byte order, as sled's keys");
        let kept: Vec<&str> = kept.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(kept, ["C", "a", "c"]);
    }

    #[test]
    fn deleting_a_session_removes_its_transcript_only() {
        let store = store();
        store
            .append_transcript(&session("c1", "Bob", 2), &[event(1, "a")])
            .unwrap()
            .without_waiting();
        store
            .append_transcript(&session("c10", "Eve", 2), &[event(1, "kept")])
            .unwrap()
            .without_waiting();

        store.delete_chat_session("c1").unwrap().without_waiting();
        store
            .delete_chat_session("never")
            .unwrap()
            .without_waiting();

        assert_eq!(store.chat_session("c1").unwrap(), None);
        assert!(store.transcript("c1").unwrap().is_empty());
        assert_eq!(texts(&store.transcript("c10").unwrap()), [(1, "kept")]);
        assert_eq!(count(&store, "SELECT count(*) FROM transcripts"), 1);
    }

    #[test]
    fn concurrent_appends_from_two_nodes_store_each_position_once_with_its_session() {
        let (one, other) = two_nodes();
        let last = 30;

        // Both nodes number the same positions (as two Chat Servers that each think they
        // own the chat would): each write is a (session, event) pair told apart by name.
        std::thread::scope(|scope| {
            for (store, name) in [(&one, "one"), (&other, "other")] {
                scope.spawn(move || {
                    for position in 1..=last {
                        store
                            .append_transcript(
                                &session("c1", name, position + 1),
                                &[event(position, name)],
                            )
                            .unwrap()
                            .without_waiting();
                    }
                });
            }
        });

        let transcript = one.transcript("c1").unwrap();
        let positions: Vec<u64> = transcript.iter().map(|e| e.position).collect();
        assert_eq!(
            positions,
            (1..=last).collect::<Vec<_>>(),
            "each position once, in order"
        );
        let stored = other.chat_session("c1").unwrap().unwrap();
        assert_eq!(stored.next_position, last + 1);
        assert_eq!(
            stored.customer.nickname,
            transcript[transcript.len() - 1].text,
            "the session is the one written with the last event: one writer's pair, not a mix"
        );
    }
}
