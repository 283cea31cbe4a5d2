//! Chat sessions and their transcripts.
//!
//! A session and the event that changed it are written in one transaction, so a stored
//! session's `next_position` always says how many events its transcript has.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::{decode_service, keys, stored, tx_error, Pending, Store, StoreError};
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;
use crate::domain::time::Timestamp;

impl Store {
    /// Stores a chat session (new, or changed without a new event).
    ///
    /// # Errors
    /// Storage failed.
    pub fn put_chat_session(&self, session: &ChatSession) -> Result<Pending<()>, StoreError> {
        self.inner.trees.chat_sessions.insert(
            session.id.as_bytes(),
            stored::chat::encode_session(session)?,
        )?;
        Ok(self.pending(()))
    }

    /// Appends `events` to a session's transcript and stores the session with them, in one
    /// transaction.
    ///
    /// # Errors
    /// Storage failed.
    pub fn append_transcript(
        &self,
        session: &ChatSession,
        events: &[TranscriptEvent],
    ) -> Result<Pending<()>, StoreError> {
        // A chat that is being closed may still say so: ending things frees no space, but
        // refusing it would leave sessions that can never end.
        if session.closed_at.is_none() {
            self.check_space()?;
        }
        let session_bytes = stored::chat::encode_session(session)?;
        let event_bytes = events
            .iter()
            .map(|event| {
                Ok((
                    keys::transcript_key(&session.id, event.position),
                    stored::chat::encode_event(event)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let trees = &self.inner.trees;
        (&trees.chat_sessions, &trees.transcripts)
            .transaction(|(sessions, transcripts)| {
                sessions.insert(session.id.as_bytes(), session_bytes.as_slice())?;
                for (key, value) in &event_bytes {
                    transcripts.insert(key.as_slice(), value.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)?;
        Ok(self.pending(()))
    }

    /// The chat session `id`.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    pub fn chat_session(&self, id: &str) -> Result<Option<ChatSession>, StoreError> {
        self.inner
            .trees
            .chat_sessions
            .get(id.as_bytes())?
            .map(|bytes| stored::chat::decode_session(&bytes, &format!("chat session {id}")))
            .transpose()
    }

    /// Every stored chat session that `keep` accepts (start-up restores the open ones).
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    pub fn chat_sessions(
        &self,
        mut keep: impl FnMut(&ChatSession) -> bool,
    ) -> Result<Vec<ChatSession>, StoreError> {
        let mut found = Vec::new();
        for item in self.inner.trees.chat_sessions.iter() {
            let (_, bytes) = item?;
            let session: ChatSession = stored::chat::decode_session(&bytes, "chat session")?;
            if keep(&session) {
                found.push(session);
            }
        }
        Ok(found)
    }

    /// The transcript of a session, in order.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    pub fn transcript(&self, session_id: &str) -> Result<Vec<TranscriptEvent>, StoreError> {
        self.inner
            .trees
            .transcripts
            .scan_prefix(keys::transcript_prefix(session_id))
            .map(|item| {
                let (_, bytes) = item?;
                stored::chat::decode_event(&bytes, "transcript event")
            })
            .collect()
    }

    /// Removes a chat session and its transcript.
    ///
    /// # Errors
    /// Storage failed.
    pub fn delete_chat_session(&self, session_id: &str) -> Result<Pending<()>, StoreError> {
        let transcripts = &self.inner.trees.transcripts;
        let mut batch = sled::Batch::default();
        for item in transcripts.scan_prefix(keys::transcript_prefix(session_id)) {
            let (key, _) = item?;
            batch.remove(key);
        }
        transcripts.apply_batch(batch)?;
        self.inner
            .trees
            .chat_sessions
            .remove(session_id.as_bytes())?;
        Ok(self.pending(()))
    }

    /// Removes the chat session of a service that is due to expire at `now` (a service
    /// rescheduled meanwhile keeps it).
    pub(super) fn delete_chat_of(
        &self,
        service_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(bytes) = self.inner.trees.services.get(service_id.as_bytes())? else {
            return Ok(());
        };
        let record = decode_service(service_id, &bytes)?;
        match record.chat_session_id {
            Some(session_id) if record.expire_at <= now => self
                .delete_chat_session(&session_id)
                .map(Pending::without_waiting),
            _ => Ok(()),
        }
    }
}
