//! Chat sessions and their transcripts.
//!
//! A session and the event that changed it are written in one transaction, so a stored
//! session's `next_position` always says how many events its transcript has.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::{keys, stored, tx_error, Chats, Pending, SledStore, StoreError};
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;

impl Chats for SledStore {
    fn put_chat_session(&self, session: &ChatSession) -> Result<Pending<()>, StoreError> {
        self.inner.trees.chat_sessions.insert(
            session.id.as_bytes(),
            stored::chat::encode_session(session)?,
        )?;
        Ok(self.pending(()))
    }

    fn append_transcript(
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

    fn chat_session(&self, id: &str) -> Result<Option<ChatSession>, StoreError> {
        self.inner
            .trees
            .chat_sessions
            .get(id.as_bytes())?
            .map(|bytes| stored::chat::decode_session(&bytes, &format!("chat session {id}")))
            .transpose()
    }

    fn chat_sessions(
        &self,
        keep: &mut dyn FnMut(&ChatSession) -> bool,
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

    fn transcript(&self, session_id: &str) -> Result<Vec<TranscriptEvent>, StoreError> {
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

    fn delete_chat_session(&self, session_id: &str) -> Result<Pending<()>, StoreError> {
        super::remove_prefix(
            &self.inner.trees.transcripts,
            &keys::transcript_prefix(session_id),
        )?;
        self.inner
            .trees
            .chat_sessions
            .remove(session_id.as_bytes())?;
        Ok(self.pending(()))
    }
}
