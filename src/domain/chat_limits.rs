//! Limits on what one chat session takes in: the size of one message, how fast its customer
//! may add events, and how long its transcript may grow.
//!
//! Chat Server itself has no such per-session limits; its administration guide recommends a
//! 4 KB message and 50 messages per second for a whole server. Here a cheap request (one
//! small form post) must not buy an unbounded amount of storage, pushes and transcript that
//! every later poll carries, so each session is held to the `[chat]` settings. A limit of 0
//! turns that limit off (Chat Server's behaviour).
//!
//! This module is pure: the token bucket takes the time it is given (the injected clock).

use serde::Deserialize;

use super::time::Timestamp;

/// The `[chat]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatLimits {
    /// Largest text of one message or notice, in bytes (UTF-8); larger ones get 413.
    /// Chat Server's guide names 4 KB as the message size its desktops handle.
    pub max_message_bytes: usize,
    /// Events (messages, typing and custom notices) one session's customer may add per
    /// second, sustained; a burst of as many is allowed. Faster ones get 429.
    pub max_messages_per_second: u32,
    /// Events one transcript may hold; once reached, new messages and notices from either
    /// side get 413. Closing the session still adds its last event.
    pub max_transcript_events: u64,
}

impl Default for ChatLimits {
    fn default() -> Self {
        ChatLimits {
            max_message_bytes: 4096,
            max_messages_per_second: 5,
            max_transcript_events: 1000,
        }
    }
}

/// Why a chat event was refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The text is over `max_message_bytes`.
    #[error("`{field}` is {size} bytes, more than the {limit} a chat message may have (max_message_bytes): send it in shorter parts")]
    TooLarge {
        /// The request field that carried the text.
        field: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The transcript holds `max_transcript_events` already.
    #[error("`{field}` cannot be added: the transcript of this chat is full ({limit} events, max_transcript_events); end this chat and start a new one")]
    TranscriptFull {
        /// The request field that carried the text.
        field: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The customer sends faster than `max_messages_per_second`.
    #[error("too many chat messages: at most {limit} per second per chat (max_messages_per_second); retry in {retry_after_secs} s")]
    TooFast {
        /// The limit.
        limit: u32,
        /// Whole seconds until one more is allowed.
        retry_after_secs: u64,
    },
}

impl ChatLimits {
    /// Refuses a text over `max_message_bytes`; `field` names the request field.
    ///
    /// # Errors
    /// [`LimitError::TooLarge`].
    pub fn check_size(&self, field: &'static str, text: &str) -> Result<(), LimitError> {
        if self.max_message_bytes > 0 && text.len() > self.max_message_bytes {
            return Err(LimitError::TooLarge {
                field,
                size: text.len(),
                limit: self.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Refuses one more event when a transcript of `events` events is full.
    ///
    /// # Errors
    /// [`LimitError::TranscriptFull`].
    pub fn check_room(&self, field: &'static str, events: u64) -> Result<(), LimitError> {
        if self.max_transcript_events > 0 && events >= self.max_transcript_events {
            return Err(LimitError::TranscriptFull {
                field,
                limit: self.max_transcript_events,
            });
        }
        Ok(())
    }
}

/// A token bucket: `rate` tokens per second, holding at most `rate`. Kept per session in
/// memory only (a restart refills it, which costs nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageBucket {
    /// Tokens left (fractions accrue between events).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Timestamp,
}

impl MessageBucket {
    /// A full bucket at `now`.
    pub fn new(limits: &ChatLimits, now: Timestamp) -> Self {
        MessageBucket {
            tokens: f64::from(limits.max_messages_per_second),
            updated: now,
        }
    }

    /// Takes one token at `now`, or says how long until there is one. Nothing is taken when
    /// refused, so a client that backs off as told gets through.
    ///
    /// # Errors
    /// [`LimitError::TooFast`].
    pub fn take(&mut self, limits: &ChatLimits, now: Timestamp) -> Result<(), LimitError> {
        let rate = limits.max_messages_per_second;
        if rate == 0 {
            return Ok(());
        }
        let rate_f = f64::from(rate);
        // A clock that went back (a manual clock, an NTP step) adds nothing and takes nothing.
        let elapsed_ms = now.as_millis().saturating_sub(self.updated.as_millis());
        self.tokens = (self.tokens + elapsed_ms as f64 * rate_f / 1000.0).min(rate_f);
        self.updated = Timestamp::from_millis(self.updated.as_millis().max(now.as_millis()));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let missing_ms = (1.0 - self.tokens) * 1000.0 / rate_f;
        Err(LimitError::TooFast {
            limit: rate,
            retry_after_secs: (missing_ms / 1000.0).ceil().max(1.0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32) -> ChatLimits {
        ChatLimits {
            max_messages_per_second: rate,
            ..ChatLimits::default()
        }
    }

    #[test]
    fn a_burst_of_the_rate_passes_and_the_next_waits_for_a_refill() {
        let limits = limits(3);
        let start = Timestamp::from_millis(10_000);
        let mut bucket = MessageBucket::new(&limits, start);
        for n in 0..3 {
            assert!(
                bucket.take(&limits, start).is_ok(),
                "message {n} of the burst"
            );
        }
        let refused = bucket.take(&limits, start).unwrap_err();
        assert_eq!(
            refused,
            LimitError::TooFast {
                limit: 3,
                retry_after_secs: 1
            }
        );
        assert!(
            bucket
                .take(&limits, Timestamp::from_millis(10_200))
                .is_err(),
            "0.6 of a token after 200 ms"
        );
        assert!(bucket.take(&limits, Timestamp::from_millis(10_400)).is_ok());
        assert!(
            bucket.take(&limits, Timestamp::from_millis(5_000)).is_err(),
            "a clock that went back adds nothing"
        );
    }

    #[test]
    fn the_bucket_never_holds_more_than_one_second() {
        let limits = limits(2);
        let mut bucket = MessageBucket::new(&limits, Timestamp::from_millis(0));
        let later = Timestamp::from_millis(3_600_000);
        assert!(bucket.take(&limits, later).is_ok());
        assert!(bucket.take(&limits, later).is_ok());
        assert!(
            bucket.take(&limits, later).is_err(),
            "an hour idle buys 2, not 7200"
        );
    }

    #[test]
    fn zero_turns_each_limit_off() {
        let off = ChatLimits {
            max_message_bytes: 0,
            max_messages_per_second: 0,
            max_transcript_events: 0,
        };
        let mut bucket = MessageBucket::new(&off, Timestamp::from_millis(0));
        for _ in 0..100 {
            assert!(bucket.take(&off, Timestamp::from_millis(0)).is_ok());
        }
        assert!(off.check_size("message", &"x".repeat(1 << 20)).is_ok());
        assert!(off.check_room("message", u64::MAX).is_ok());
    }

    #[test]
    fn size_and_room_errors_name_the_field() {
        let limits = ChatLimits::default();
        let err = limits.check_size("message", &"é".repeat(2049)).unwrap_err();
        assert!(err.to_string().contains("`message` is 4098 bytes"), "{err}");
        assert!(limits.check_size("message", &"x".repeat(4096)).is_ok());
        let err = limits.check_room("text", 1000).unwrap_err();
        assert!(err.to_string().starts_with("`text`"), "{err}");
        assert!(limits.check_room("text", 999).is_ok());
    }
}
