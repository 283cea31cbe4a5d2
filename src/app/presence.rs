//! Which agents have the desktop open, and logging out the ones who left.
//!
//! Each open `GET /agent/events` stream is one connected tab of its agent ([`Presence::connect`]
//! hands out a [`Tab`]; dropping it closes the tab). When an agent's last tab closes, the grace
//! period `[agents] logout_after_disconnect_secs` starts; a tab that reconnects within it
//! cancels it. [`run_once`] logs out every agent whose grace has passed and every agent whose
//! last desktop session idled out, through [`agents::set_agent_state`], the same path as a
//! logout from the desktop: reservations waiting for the customer go back to the queue in
//! place. Only agents that a desktop session put on this table are ever logged out here: an
//! agent driven by the API token alone never opens a stream and is left alone.
//!
//! The table lives in memory, like the sessions: after a restart no tab is connected, and an
//! agent whose page reconnects is tracked again from then on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::sessions::Session;
use super::{agents, AppError, AppState};
use crate::clock::{self, Clock};
use crate::domain::account::Role;
use crate::domain::agent::AgentState;
use crate::domain::time::Timestamp;
use crate::supervisor::Shutdown;

/// How often [`run_until`] looks for agents to log out.
pub const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// The connected desktop tabs of every agent. Cheap to clone; clones share one table.
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Mutex<HashMap<String, Tabs>>>,
    clock: Arc<dyn Clock>,
    grace_ms: u64,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("grace_ms", &self.grace_ms)
            .finish_non_exhaustive()
    }
}

/// One agent's tabs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tabs {
    /// Open streams.
    open: usize,
    /// When the last one closed, while none is open.
    left_at: Option<Timestamp>,
}

/// One open desktop tab; closing it (dropping) may start its agent's grace period.
#[derive(Debug)]
pub struct Tab {
    presence: Presence,
    agent: String,
}

impl Drop for Tab {
    fn drop(&mut self) {
        self.presence.disconnect(&self.agent);
    }
}

impl Presence {
    /// An empty table; agents are logged out `grace_secs` after their last tab closed.
    pub fn new(clock: Arc<dyn Clock>, grace_secs: u64) -> Self {
        Self {
            inner: Arc::default(),
            clock,
            grace_ms: grace_secs.saturating_mul(1000),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tabs>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a tab of `agent` (a grace period running for it ends).
    pub fn connect(&self, agent: &str) -> Tab {
        let mut table = self.lock();
        let tabs = table.entry(agent.to_string()).or_default();
        tabs.open += 1;
        tabs.left_at = None;
        Tab {
            presence: self.clone(),
            agent: agent.to_string(),
        }
    }

    fn disconnect(&self, agent: &str) {
        let now = self.clock.now();
        let mut table = self.lock();
        if let Some(tabs) = table.get_mut(agent) {
            tabs.open = tabs.open.saturating_sub(1);
            if tabs.open == 0 {
                tabs.left_at = Some(now);
            }
        }
    }

    /// How many tabs of `agent` are open.
    pub fn open_tabs(&self, agent: &str) -> usize {
        self.lock().get(agent).map_or(0, |t| t.open)
    }

    /// The agents without a tab whose grace has passed at `now`. They stay on the table
    /// until logged out ([`Presence::forget`]), so that a failed logout is tried again.
    fn gone(&self, now: Timestamp) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, t)| {
                t.open == 0
                    && t.left_at.is_some_and(|at| {
                        now.as_millis().saturating_sub(at.as_millis()) >= self.grace_ms
                    })
            })
            .map(|(agent, _)| agent.clone())
            .collect()
    }

    /// Forgets `agent` once it is logged out, unless a tab of it is open again.
    fn forget(&self, agent: &str) {
        let mut table = self.lock();
        if table.get(agent).is_some_and(|t| t.open == 0) {
            table.remove(agent);
        }
    }
}

/// Logs out, at `now`, every agent whose last tab closed longer than the grace period ago and
/// every agent whose desktop session idled out with no other desktop session of theirs left.
/// Returns the agents logged out.
///
/// # Errors
/// Storage failure (the agents not reached yet are tried again at the next run).
pub async fn run_once(state: &AppState, now: Timestamp) -> Result<Vec<String>, AppError> {
    let mut leaving = state.presence.gone(now);
    for session in state.sessions.sweep(now) {
        if let Some(agent) = desktop_agent(&session) {
            if !has_desktop_session(state, agent) {
                leaving.push(agent.to_string());
            }
        }
    }
    leaving.sort();
    leaving.dedup();
    let mut logged_out = Vec::with_capacity(leaving.len());
    for agent in leaving {
        if log_out(state, &agent, "left the desktop").await? {
            logged_out.push(agent);
        }
    }
    Ok(logged_out)
}

/// Logs `session`'s agent out when the session signs out of the desktop (only an agent's
/// own desktop session does; a console user signing out changes no agent).
///
/// # Errors
/// Storage failure.
pub async fn signed_out(state: &AppState, session: &Session) -> Result<(), AppError> {
    if let Some(agent) = desktop_agent(session) {
        log_out(state, agent, "signed out of the desktop").await?;
    }
    Ok(())
}

/// Runs [`run_once`] every [`SWEEP_EVERY`] of the injected clock until shutdown.
pub async fn run_until(state: AppState, mut shutdown: Shutdown) {
    loop {
        let tick = clock::sleep_for(&*state.clock, SWEEP_EVERY);
        tokio::select! {
            // Time to look for agents who left.
            () = tick => {
                if let Err(err) = run_once(&state, state.clock.now()).await {
                    tracing::warn!(error = %err, "could not log out agents who left the desktop");
                }
            }
            // The server is stopping.
            () = shutdown.wait() => break,
        }
    }
}

/// The agent a desktop session acts as.
fn desktop_agent(session: &Session) -> Option<&str> {
    match session.principal.role {
        Role::Agent => session.principal.agent_id.as_deref(),
        _ => None,
    }
}

/// Whether a live session of `agent` is left.
fn has_desktop_session(state: &AppState, agent: &str) -> bool {
    state
        .sessions
        .list()
        .iter()
        .any(|s| desktop_agent(s) == Some(agent))
}

/// Logs `agent` out unless it already is; whether it was logged in. An agent removed
/// meanwhile is not an error.
async fn log_out(state: &AppState, agent: &str, why: &str) -> Result<bool, AppError> {
    let was_logged_in = match state.store.agent(agent)? {
        Some(record) => record.state != AgentState::LoggedOut,
        None => false,
    };
    let changed = was_logged_in
        && match agents::set_agent_state(state, agent, AgentState::LoggedOut, None).await {
            Ok(_) => true,
            Err(AppError::NotFound(_)) => false,
            Err(err) => return Err(err),
        };
    state.presence.forget(agent);
    if changed {
        tracing::info!(agent = %agent, why, "agent logged out");
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + secs * 1000)
    }

    fn presence(clock: &ManualClock, grace_secs: u64) -> Presence {
        Presence::new(Arc::new(clock.clone()), grace_secs)
    }

    #[test]
    fn an_agent_is_gone_only_after_the_grace_following_its_last_tab() {
        let clock = ManualClock::new(at(0));
        let table = presence(&clock, 120);
        let first = table.connect("kristi");
        let second = table.connect("kristi");
        drop(first);
        clock.set(at(10));
        assert_eq!(table.gone(at(500)), Vec::<String>::new(), "a tab is open");
        drop(second);
        assert_eq!(table.gone(at(129)), Vec::<String>::new(), "within grace");
        assert_eq!(table.gone(at(130)), vec!["kristi".to_string()]);
        table.forget("kristi");
        assert_eq!(table.gone(at(900)), Vec::<String>::new(), "logged out once");
    }

    #[test]
    fn a_tab_reconnecting_within_the_grace_cancels_it() {
        let clock = ManualClock::new(at(0));
        let table = presence(&clock, 120);
        drop(table.connect("kristi"));
        clock.set(at(60));
        let again = table.connect("kristi");
        assert_eq!(table.gone(at(200)), Vec::<String>::new());
        assert_eq!(table.open_tabs("kristi"), 1);
        clock.set(at(300));
        drop(again);
        assert_eq!(table.gone(at(419)), Vec::<String>::new(), "grace restarted");
        assert_eq!(table.gone(at(420)), vec!["kristi".to_string()]);
    }

    #[test]
    fn an_agent_that_never_opened_the_desktop_is_never_gone() {
        let clock = ManualClock::new(at(0));
        let table = presence(&clock, 0);
        let _other = table.connect("ann");
        assert_eq!(table.gone(at(10_000)), Vec::<String>::new());
        assert_eq!(table.open_tabs("kristi"), 0);
    }
}
