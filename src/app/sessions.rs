//! Who is signed in to the console and the agent desktop, and who failed to sign in lately.
//!
//! Sessions live in memory: a restart signs everyone out (see docs/decisions.md). Each session
//! has an unguessable token (the cookie) and its own CSRF token, ends after
//! `[sessions] idle_timeout_secs` without a request, and on sign-out. Time comes from the
//! injected clock, so idle expiry and the sign-in throttle are tested by stepping a
//! `ManualClock`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::domain::account::Role;
use crate::domain::time::Timestamp;

/// Failed sign-ins for one name within [`THROTTLE_WINDOW_MS`] before that name is slowed down.
pub const MAX_FAILURES: usize = 5;
/// The window failed sign-ins are counted in.
pub const THROTTLE_WINDOW_MS: u64 = 60_000;
/// Names whose failures are remembered at most (older entries are dropped first), so that
/// made-up names cannot grow the table without bound.
const MAX_THROTTLED_NAMES: usize = 10_000;
/// Sessions at most; the oldest idle one ends when a new one would exceed it.
const MAX_SESSIONS: usize = 10_000;

/// Who a session acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account's name (`admin` for the admin-token sign-in).
    pub username: String,
    /// What it may do.
    pub role: Role,
    /// The agent an agent account acts as.
    pub agent_id: Option<String>,
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The cookie's value: 256 random bits, hex.
    pub token: String,
    /// Sent back with every state change from the page (form field or header).
    pub csrf: String,
    /// Who is signed in.
    pub principal: Principal,
    /// When it started.
    pub started: Timestamp,
    /// The last request made with it.
    pub last_seen: Timestamp,
}

/// The sign-in state of the server. Cheap to clone; clones share one table.
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: Arc<Mutex<Inner>>,
    idle_timeout_ms: u64,
}

#[derive(Debug, Default)]
struct Inner {
    by_token: HashMap<String, Session>,
    /// Failed sign-ins per (lower-cased) name, oldest first, within the window.
    failures: HashMap<String, VecDeque<Timestamp>>,
    /// Sessions that idled out when next used, kept for the next [`Sessions::sweep`] so that
    /// their agents are logged out as if the sweep had found them.
    expired: Vec<Session>,
}

impl Sessions {
    /// An empty table; sessions end after `idle_timeout_secs` without a request.
    pub fn new(idle_timeout_secs: u64) -> Self {
        Self {
            inner: Arc::default(),
            idle_timeout_ms: idle_timeout_secs.saturating_mul(1000),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a session lives without a request.
    pub fn idle_timeout_secs(&self) -> u64 {
        self.idle_timeout_ms / 1000
    }

    /// Starts a session for `principal`.
    pub fn start(&self, principal: Principal, now: Timestamp) -> Session {
        let session = Session {
            token: random_token(),
            csrf: random_token(),
            principal,
            started: now,
            last_seen: now,
        };
        let mut inner = self.lock();
        if inner.by_token.len() >= MAX_SESSIONS {
            let idle_ms = self.idle_timeout_ms;
            inner
                .by_token
                .retain(|_, s| now.as_millis().saturating_sub(s.last_seen.as_millis()) < idle_ms);
            if inner.by_token.len() >= MAX_SESSIONS {
                let oldest = inner
                    .by_token
                    .values()
                    .min_by_key(|s| s.last_seen)
                    .map(|s| s.token.clone());
                if let Some(token) = oldest {
                    inner.by_token.remove(&token);
                }
            }
        }
        inner
            .by_token
            .insert(session.token.clone(), session.clone());
        session
    }

    /// The live session with this token, its idle time restarted; `None` if there is none or
    /// it has been idle too long (it then ends).
    pub fn touch(&self, token: &str, now: Timestamp) -> Option<Session> {
        let mut inner = self.lock();
        let session = inner.by_token.get_mut(token)?;
        if now
            .as_millis()
            .saturating_sub(session.last_seen.as_millis())
            >= self.idle_timeout_ms
        {
            if let Some(expired) = inner.by_token.remove(token) {
                inner.expired.push(expired);
            }
            return None;
        }
        session.last_seen = session.last_seen.max(now);
        Some(session.clone())
    }

    /// Ends a session (sign-out); returns it if it existed.
    pub fn end(&self, token: &str) -> Option<Session> {
        self.lock().by_token.remove(token)
    }

    /// Ends every session of `username` (account removed, password or role changed).
    pub fn end_user(&self, username: &str) -> Vec<Session> {
        let mut inner = self.lock();
        let tokens: Vec<String> = inner
            .by_token
            .values()
            .filter(|s| s.principal.username == username)
            .map(|s| s.token.clone())
            .collect();
        tokens
            .iter()
            .filter_map(|t| inner.by_token.remove(t))
            .collect()
    }

    /// Ends and returns every session idle for too long at `now`, and those found idle for
    /// too long since the last sweep (for a periodic sweep, so that an agent whose session
    /// expired is logged out whether or not it comes back).
    pub fn sweep(&self, now: Timestamp) -> Vec<Session> {
        let mut inner = self.lock();
        let expired: Vec<String> = inner
            .by_token
            .values()
            .filter(|s| {
                now.as_millis().saturating_sub(s.last_seen.as_millis()) >= self.idle_timeout_ms
            })
            .map(|s| s.token.clone())
            .collect();
        let mut swept = std::mem::take(&mut inner.expired);
        swept.extend(expired.iter().filter_map(|t| inner.by_token.remove(t)));
        swept
    }

    /// Live sessions (for the Users page and tests).
    pub fn list(&self) -> Vec<Session> {
        self.lock().by_token.values().cloned().collect()
    }

    /// `Some(wait)` if `username` failed to sign in [`MAX_FAILURES`] times within the last
    /// minute: it may try again once the oldest of those failures is a minute old.
    pub fn throttled(&self, username: &str, now: Timestamp) -> Option<std::time::Duration> {
        let mut inner = self.lock();
        let key = username.to_ascii_lowercase();
        let failures = inner.failures.get_mut(&key)?;
        prune(failures, now);
        if failures.len() < MAX_FAILURES {
            return None;
        }
        let oldest = failures.front()?.as_millis();
        let until = oldest + THROTTLE_WINDOW_MS;
        Some(std::time::Duration::from_millis(
            until.saturating_sub(now.as_millis()).max(1),
        ))
    }

    /// Counts a failed sign-in for `username`.
    pub fn record_failure(&self, username: &str, now: Timestamp) {
        let mut inner = self.lock();
        if inner.failures.len() >= MAX_THROTTLED_NAMES {
            inner.failures.retain(|_, f| {
                prune(f, now);
                !f.is_empty()
            });
            if inner.failures.len() >= MAX_THROTTLED_NAMES {
                // Still full of fresh failures: forget the name whose last failure is oldest.
                let stalest = inner
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.back().copied())
                    .map(|(name, _)| name.clone());
                if let Some(name) = stalest {
                    inner.failures.remove(&name);
                }
            }
        }
        let failures = inner
            .failures
            .entry(username.to_ascii_lowercase())
            .or_default();
        prune(failures, now);
        failures.push_back(now);
        // Only the last MAX_FAILURES matter for the rule.
        while failures.len() > MAX_FAILURES {
            failures.pop_front();
        }
    }

    /// Forgets the failures of `username` after a good sign-in.
    pub fn clear_failures(&self, username: &str) {
        self.lock().failures.remove(&username.to_ascii_lowercase());
    }
}

fn prune(failures: &mut VecDeque<Timestamp>, now: Timestamp) {
    while failures
        .front()
        .is_some_and(|t| now.as_millis().saturating_sub(t.as_millis()) >= THROTTLE_WINDOW_MS)
    {
        failures.pop_front();
    }
}

/// 256 random bits as 64 hex digits.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that depends on their lengths only, not on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Principal {
        Principal {
            username: "ada".into(),
            role: Role::Administrator,
            agent_id: None,
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + secs * 1000)
    }

    #[test]
    fn a_session_lives_while_used_and_ends_after_the_idle_timeout() {
        let sessions = Sessions::new(1200);
        let session = sessions.start(admin(), at(0));
        assert!(
            sessions.touch(&session.token, at(1199)).is_some(),
            "used before the timeout"
        );
        assert!(
            sessions.touch(&session.token, at(2398)).is_some(),
            "idle time restarted"
        );
        assert!(
            sessions.touch(&session.token, at(3598)).is_none(),
            "idle 20 minutes"
        );
        assert!(
            sessions.touch(&session.token, at(3598)).is_none(),
            "and gone"
        );
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let sessions = Sessions::new(60);
        let a = sessions.start(admin(), at(0));
        let b = sessions.start(admin(), at(0));
        assert_eq!(a.token.len(), 64);
        assert_ne!(a.token, b.token);
        assert_ne!(a.token, a.csrf);
    }

    #[test]
    fn sign_out_and_user_removal_end_sessions() {
        let sessions = Sessions::new(60);
        let a = sessions.start(admin(), at(0));
        let b = sessions.start(admin(), at(0));
        assert!(sessions.end(&a.token).is_some());
        assert!(sessions.touch(&a.token, at(1)).is_none());
        assert_eq!(sessions.end_user("ada").len(), 1);
        assert!(sessions.touch(&b.token, at(1)).is_none());
    }

    #[test]
    fn the_sweep_returns_only_expired_sessions() {
        let sessions = Sessions::new(60);
        let old = sessions.start(admin(), at(0));
        let fresh = sessions.start(admin(), at(30));
        let swept = sessions.sweep(at(60));
        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].token, old.token);
        assert!(sessions.touch(&fresh.token, at(61)).is_some());
        assert!(sessions.sweep(at(61)).is_empty(), "swept once");
    }

    #[test]
    fn a_session_found_expired_when_used_is_still_swept() {
        let sessions = Sessions::new(60);
        let old = sessions.start(admin(), at(0));
        assert!(sessions.touch(&old.token, at(60)).is_none(), "idled out");
        let swept = sessions.sweep(at(60));
        assert_eq!(swept.len(), 1, "reported by the next sweep");
        assert_eq!(swept[0].token, old.token);
    }

    #[test]
    fn five_failures_within_a_minute_slow_that_name_down_until_the_minute_passes() {
        let sessions = Sessions::new(60);
        for i in 0..4 {
            sessions.record_failure("Ada", at(i));
            assert!(
                sessions.throttled("ada", at(i)).is_none(),
                "after {} failures",
                i + 1
            );
        }
        sessions.record_failure("ada", at(10));
        let wait = sessions.throttled("ADA", at(10)).expect("five failures");
        assert_eq!(
            wait.as_secs(),
            50,
            "until the first failure is a minute old"
        );
        assert!(
            sessions.throttled("bob", at(10)).is_none(),
            "other names are not slowed"
        );
        assert!(
            sessions.throttled("ada", at(60)).is_none(),
            "the oldest left the window"
        );
        sessions.record_failure("ada", at(61));
        assert!(
            sessions.throttled("ada", at(61)).is_none(),
            "four within the last minute"
        );
        sessions.record_failure("ada", at(61));
        assert!(
            sessions.throttled("ada", at(61)).is_some(),
            "five in the last minute again"
        );
        sessions.clear_failures("ada");
        assert!(sessions.throttled("ada", at(61)).is_none());
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
