//! Delivers the status-notification outbox (issue 15): at least once, in order per service,
//! with retries and doubling backoff on the injected clock.
//!
//! One task owns the schedule: which services have pending entries and when each is due.
//! A service has at most one attempt in flight, and its next entry is read only after the
//! previous one is delivered or given up, so a receiver sees a service's events in the
//! order they happened. Services are independent: up to [`IN_FLIGHT`] POSTs run at once, so
//! one receiver that hangs holds back only its own services, for one timeout per attempt.
//!
//! `subscribe_notify` entries are POSTed to their target through the httpcb clients (the
//! egress policy's address checks, no redirects, no proxy). `notify` entries are handed to the
//! Notification API's subscriptions whose filter matches their tag, as a publish is.
//! Each attempt is stored ([`crate::store::StatusOutbox::record_status_attempt`]) and made durable
//! before the next, so a restart goes on with the count where it was; an entry delivered but
//! not yet recorded when the process dies is sent again (at least once).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::AppState;
use crate::clock;
use crate::domain::status::{Mode, StatusNotification};
use crate::domain::time::Timestamp;
use crate::push::httpcb::Clients;
use crate::supervisor::Shutdown;

/// Attempts running at once, over all services.
pub const IN_FLIGHT: usize = 64;

/// Due at once.
const NOW: Timestamp = Timestamp::from_millis(0);

/// Runs the outbox until `shutdown`: `base` is the wait before the first retry.
///
/// # Errors
/// The pending entries cannot be read at start.
pub async fn run(
    state: AppState,
    clients: Arc<Clients>,
    base: Duration,
    mut shutdown: Shutdown,
) -> Result<(), String> {
    // Every service with pending entries, due at once: what a restart left is sent first.
    let mut due: HashMap<String, Timestamp> = state
        .store
        .status_pending_services()
        .map_err(|err| format!("cannot read the pending status notifications: {err}"))?
        .into_iter()
        .map(|id| (id, NOW))
        .collect();
    if !due.is_empty() {
        tracing::info!(services = due.len(), "pending status notifications resumed");
    }
    let mut busy: HashSet<String> = HashSet::new();
    let mut running: JoinSet<String> = JoinSet::new();
    // Whose attempt each task is, so that one that panics frees its service too.
    let mut attempts: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        start_due(
            &state,
            &clients,
            base,
            &mut due,
            &mut busy,
            &mut running,
            &mut attempts,
        );
        // With every slot taken, the next start waits for an attempt to finish.
        let next = (running.len() < IN_FLIGHT)
            .then(|| {
                due.iter()
                    .filter(|(id, _)| !busy.contains(*id))
                    .map(|(_, at)| *at)
                    .min()
            })
            .flatten();
        let timer = clock::sleep_until(&*state.clock, next);
        tokio::select! {
            // New entries were written: they are sent once durable.
            written = state.store.status_written() => {
                match written.durable().await {
                    Ok(written) => {
                        for id in written {
                            due.insert(id, NOW);
                        }
                    }
                    // Left pending in the store; the next start resumes them.
                    Err(err) => tracing::error!(error = %err, "status notifications not durable; not sent"),
                }
            }
            // An attempt finished (and is stored): the service's next entry decides its time.
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let (task, next_at) = match done {
                    Ok((task, _)) => (task, NOW),
                    // A panicked attempt stored nothing: its entry is tried again after the
                    // base backoff, not left waiting for a restart.
                    Err(err) => {
                        tracing::error!(error = %err, "a status notification attempt panicked");
                        (err.id(), Timestamp::from_millis(state.clock.now().as_millis().saturating_add(base.as_millis() as u64)))
                    }
                };
                if let Some(id) = attempts.remove(&task) {
                    busy.remove(&id);
                    due.insert(id, next_at);
                }
            }
            // A retry is due.
            () = timer => {}
            // The server is stopping: attempts in flight are dropped and sent again later.
            () = shutdown.wait() => break,
        }
    }
    running.abort_all();
    tracing::info!("status notification worker stopped");
    Ok(())
}

/// Starts an attempt for each service whose next entry is due, while slots are free.
fn start_due(
    state: &AppState,
    clients: &Arc<Clients>,
    base: Duration,
    due: &mut HashMap<String, Timestamp>,
    busy: &mut HashSet<String>,
    running: &mut JoinSet<String>,
    attempts: &mut HashMap<tokio::task::Id, String>,
) {
    let now = state.clock.now();
    let ready: Vec<String> = due
        .iter()
        .filter(|(id, at)| **at <= now && !busy.contains(*id))
        .map(|(id, _)| id.clone())
        .collect();
    for id in ready {
        if running.len() >= IN_FLIGHT {
            break;
        }
        match state.store.next_status_notification(&id) {
            Ok(None) => {
                due.remove(&id);
            }
            Ok(Some(entry)) if entry.next_at > now => {
                due.insert(id, entry.next_at);
            }
            Ok(Some(entry)) => {
                busy.insert(id.clone());
                let task = running.spawn(attempt(
                    state.clone(),
                    clients.clone(),
                    base,
                    id.clone(),
                    entry,
                ));
                attempts.insert(task.id(), id);
            }
            Err(err) => {
                // Tried again after the first retry wait rather than in a tight loop.
                tracing::error!(service_id = %id, error = %err, "cannot read the next status notification");
                due.insert(id, now + base);
            }
        }
    }
}

/// One attempt at `entry`, booked in the store; returns the service id.
#[tracing::instrument(skip_all, fields(service_id = %service_id, seq = entry.seq, event = entry.event.as_str()))]
async fn attempt(
    state: AppState,
    clients: Arc<Clients>,
    base: Duration,
    service_id: String,
    mut entry: StatusNotification,
) -> String {
    let outcome = match (entry.mode, &entry.url) {
        (Mode::SubscribeNotify, Some(url)) => {
            clients
                .post(url, "application/json", entry.body.clone(), None)
                .await
        }
        (Mode::SubscribeNotify, None) => Err("no _status_notification_target".to_string()),
        (Mode::Notify, _) => publish(&state, &entry),
    };
    let now = state.clock.now();
    match outcome {
        Ok(()) => {
            entry.delivered(now);
            tracing::debug!(attempts = entry.attempts, "status notification delivered");
        }
        Err(error) => {
            tracing::warn!(attempt = entry.attempts + 1, %error, "status notification not delivered");
            entry.failed(error, base, now);
            if entry.delivery == crate::domain::status::Delivery::Failed {
                tracing::warn!(
                    attempts = entry.attempts,
                    "status notification failed: every attempt used"
                );
            }
        }
    }
    let stored = match state.store.record_status_attempt(&service_id, &entry) {
        Ok(written) => written.durable().await,
        Err(err) => Err(err),
    };
    if let Err(err) = stored {
        tracing::error!(error = %err, "cannot store the status notification's attempt");
    }
    service_id
}

/// `notify`: hands the event to every live Notification API subscription whose filter matches
/// its tag (as `POST /genesys/1/notification/publish` does).
fn publish(state: &AppState, entry: &StatusNotification) -> Result<(), String> {
    let matching = state
        .store
        .subscriptions_matching(&entry.tag, state.clock.now())
        .map_err(|err| format!("cannot read the subscriptions: {err}"))?;
    let handed = matching
        .iter()
        .filter(|s| state.notifier.publish_event(s, &entry.tag, &entry.body))
        .count();
    tracing::debug!(tag = %entry.tag, matching = matching.len(), handed, "status notification published");
    Ok(())
}
