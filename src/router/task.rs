//! The router task: the one owner of the routing state.
//!
//! Everything that changes routing arrives as a [`Command`] on one channel and is applied in
//! order: events for the [`Router`] core, questions about it (positions, statistics), and
//! nudges when a SCHEDULED service appears. The task wakes by itself for the next step
//! timeout, queue deadline, confirmation deadline or scheduled start. Each effect of the
//! core is written to the store, then the batch is group-committed before the task takes
//! the next command, so what was routed survives a crash and is never routed twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::core::{Effect, Event, Priority, Progress, QueuedService, Router};
use crate::center::agent::Agent;
use crate::clock::Clock;
use crate::domain::notification;
use crate::domain::options::{self, ServiceSettings};
use crate::domain::service::{CallbackReason, CallbackState, RouteProgress, ServiceRecord};
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError, UpdateError};

/// A question answered on the task, with the routing state and the current time.
type Query = Box<dyn FnOnce(&Router, Timestamp) + Send>;

/// What the task is asked to do.
enum Command {
    /// Apply an event to the router (boxed: an agent or a service is large).
    Event(Box<Event>),
    /// Answer a question about the routing state.
    Query(Query),
    /// A SCHEDULED service was created or moved: look at the scheduled index again.
    Scheduled,
}

/// Sends work to the router task. Cheap to clone.
#[derive(Clone)]
pub struct RouterHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for RouterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterHandle").finish_non_exhaustive()
    }
}

impl RouterHandle {
    /// Hands an event to the router (after the caller's own write is durable).
    pub fn send(&self, event: Event) {
        // The task only stops at shutdown, when nothing needs routing any more.
        let _ = self.commands.send(Command::Event(Box::new(event)));
    }

    /// Tells the router that the scheduled services changed.
    pub fn scheduled_changed(&self) {
        let _ = self.commands.send(Command::Scheduled);
    }

    /// Runs `question` on the routing state; `None` when the task has stopped.
    pub async fn query<T: Send + 'static>(
        &self,
        question: impl FnOnce(&Router, Timestamp) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let query: Query = Box::new(move |router, now| {
            let _ = tx.send(question(router, now));
        });
        self.commands.send(Command::Query(query)).ok()?;
        rx.await.ok()
    }
}

/// What the task needs from the rest of the service.
pub struct RouterContext {
    /// The database.
    pub store: Store,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Stat Server names accepted in targets (to re-read stored options).
    pub stat_servers: Vec<String>,
}

/// Loads agents and unfinished services into a new router and starts its task.
///
/// # Errors
/// The store could not be read.
pub fn start(
    context: RouterContext,
    shutdown: watch::Receiver<bool>,
) -> Result<(RouterHandle, tokio::task::JoinHandle<()>), StoreError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut task = RouterTask {
        router: Router::new(),
        confirm_deadlines: BTreeSet::new(),
        context,
    };
    task.restore()?;
    let handle = tokio::spawn(task.run(rx, shutdown));
    Ok((RouterHandle { commands: tx }, handle))
}

/// The QueuedService the router needs for a stored service that waits for an agent.
///
/// # Errors
/// The stored options no longer validate (a message for the log).
pub fn queued_service(
    record: &ServiceRecord,
    stat_servers: &[String],
) -> Result<QueuedService, String> {
    let settings = ServiceSettings::from_options(&record.options, stat_servers)
        .map_err(|err| err.to_string())?;
    let queued_at = record.queued_at.unwrap_or(record.created_at);
    Ok(QueuedService {
        id: record.id.clone(),
        virtual_queue: settings
            .virtual_queue
            .clone()
            .unwrap_or_else(|| record.service_name.clone()),
        media: settings.media_type.clone(),
        targets: settings.target.clone(),
        queued_at,
        deadline: queued_at.plus_secs(settings.queued_ttl_secs),
        priority: Priority {
            base: settings.priority,
            increment: settings.priority_increment,
            interval_secs: settings.priority_increment_interval_secs,
        },
        progress: record.route.as_ref().map(|route| Progress {
            step: usize::from(route.step),
            step_entered_at: route.step_entered_at,
            target_set: route.target_set.iter().map(|i| usize::from(*i)).collect(),
        }),
    })
}

struct RouterTask {
    router: Router,
    /// (deadline, service): reservations waiting for the customer's `connect`.
    confirm_deadlines: BTreeSet<(Timestamp, String)>,
    context: RouterContext,
}

/// Scheduled services started per wake-up.
const SCHEDULED_BATCH: usize = 1000;

impl RouterTask {
    /// Rebuilds the routing state from storage: agents with their reservations and
    /// interactions, then the services that wait, are reserved or are being handled.
    fn restore(&mut self) -> Result<(), StoreError> {
        let now = self.context.clock.now();
        let store = &self.context.store;
        let unfinished = store.services_in_states(
            None,
            &[
                CallbackState::Queued,
                CallbackState::Routing,
                CallbackState::Processing,
            ],
            |_| true,
            usize::MAX,
        )?;
        let mut agents: Vec<Agent> = store
            .agents()?
            .into_iter()
            .map(|record| record.into_agent())
            .collect();
        for record in &unfinished {
            let Some(agent_id) = &record.reserved_agent else {
                continue;
            };
            let Some(agent) = agents.iter_mut().find(|a| a.config.id == *agent_id) else {
                continue;
            };
            if record.state == CallbackState::Processing {
                let media = record
                    .options
                    .get("_media_type")
                    .cloned()
                    .unwrap_or_else(|| "chat".into());
                agent
                    .active
                    .entry(media)
                    .or_default()
                    .insert(record.id.clone());
            } else {
                agent.reserved.insert(record.id.clone());
                self.track_confirmation(record);
            }
        }
        for agent in agents {
            self.router.handle(Event::AgentUpdated(agent), now);
        }
        let mut effects = Vec::new();
        for record in &unfinished {
            if record.queued_at.is_none() {
                continue; // an immediate chat that has not started: not in a queue
            }
            match queued_service(record, &self.context.stat_servers) {
                Ok(service) => effects.extend(self.router.handle(Event::Queued(service), now)),
                Err(message) => {
                    tracing::error!(service_id = %record.id, %message, "cannot resume routing")
                }
            }
        }
        tracing::info!(
            agents = self.router.agents().count(),
            services = unfinished.len(),
            "routing state restored"
        );
        self.persist(effects, now);
        Ok(())
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let wake = self.next_wakeup();
            let sleep = async {
                match wake {
                    Some(at) => {
                        let now = self.context.clock.now();
                        let wait = at.as_millis().saturating_sub(now.as_millis());
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Work from a request handler.
                command = commands.recv() => match command {
                    Some(command) => {
                        let mut batch = vec![command];
                        while let Ok(more) = commands.try_recv() {
                            batch.push(more);
                        }
                        self.apply(batch).await;
                    }
                    None => break,
                },
                // A timer of the router, a confirmation deadline or a scheduled start is due.
                () = sleep => self.apply(vec![Command::Event(Box::new(Event::Tick))]).await,
                // The service is stopping.
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!("router task stopped");
    }

    /// The earliest of the router's timers, the confirmation deadlines and scheduled starts.
    fn next_wakeup(&self) -> Option<Timestamp> {
        let scheduled = self.context.store.next_scheduled().unwrap_or_else(|err| {
            tracing::error!(error = %err, "cannot read scheduled services");
            None
        });
        [
            self.router.next_wakeup(),
            self.confirm_deadlines.first().map(|(at, _)| *at),
            scheduled,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn apply(&mut self, batch: Vec<Command>) {
        let now = self.context.clock.now();
        let mut effects = Vec::new();
        for command in batch {
            match command {
                Command::Event(event) => effects.extend(self.router.handle(*event, now)),
                Command::Query(question) => question(&self.router, now),
                Command::Scheduled => {}
            }
        }
        effects.extend(self.start_scheduled(now));
        effects.extend(self.release_unconfirmed(now));
        self.persist(effects, now);
        if let Err(err) = self.context.store.wait_durable().await {
            tracing::error!(error = %err, "routing changes may not be durable");
        }
    }

    /// Moves SCHEDULED services whose time has come into their queues.
    fn start_scheduled(&mut self, now: Timestamp) -> Vec<Effect> {
        let due = match self.context.store.due_scheduled(now, SCHEDULED_BATCH) {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(error = %err, "cannot read scheduled services");
                return Vec::new();
            }
        };
        let mut effects = Vec::new();
        for id in due {
            let started = self.update(&id, |record| {
                if record.state == CallbackState::Scheduled && record.desired_time <= now {
                    if options::waits_for_agent(&record.options) {
                        record.queued_at = Some(now);
                    }
                    record.enter(CallbackState::Queued, None, now, "desired time reached");
                }
            });
            let Some(record) = started else { continue };
            if record.queued_at.is_some() {
                match queued_service(&record, &self.context.stat_servers) {
                    Ok(service) => effects.extend(self.router.handle(Event::Queued(service), now)),
                    Err(message) => tracing::error!(service_id = %id, %message, "cannot route"),
                }
            }
        }
        effects
    }

    /// Releases reservations the customer did not confirm in time.
    fn release_unconfirmed(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some((at, id)) = self.confirm_deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.confirm_deadlines.remove(&(at, id.clone()));
            let Ok(Some(record)) = self.context.store.service(&id) else {
                continue;
            };
            if record.state != CallbackState::Routing || record.confirmed_at.is_some() {
                continue;
            }
            effects.extend(self.router.handle(
                Event::Released {
                    service: id.clone(),
                },
                now,
            ));
            self.update(&id, |record| {
                record.reserved_agent = None;
                record.enter(
                    CallbackState::Completed,
                    Some(CallbackReason::FailUserNoConfirm),
                    now,
                    "the customer did not confirm the agent in time",
                );
            });
            tracing::info!(service_id = %id, "reservation released: not confirmed");
        }
        effects
    }

    /// Writes the router's effects to the store.
    fn persist(&mut self, effects: Vec<Effect>, now: Timestamp) {
        for effect in effects {
            match effect {
                Effect::History { service, event } => {
                    let progress = self.router.progress(&service).map(to_route);
                    self.update(&service, |record| {
                        record.routing_history.push(event.clone());
                        if progress.is_some() {
                            record.route = progress.clone();
                        }
                    });
                }
                Effect::Reserved { service, agent } => {
                    let reserved = self.update(&service, |record| {
                        record.reserved_agent = Some(agent.clone());
                        record.enter(
                            CallbackState::Routing,
                            None,
                            now,
                            format!("agent {agent} reserved"),
                        );
                    });
                    if let Some(record) = reserved {
                        self.on_reserved(&record, now);
                    }
                }
                Effect::Requeued { service, agent } => {
                    self.confirm_deadlines.retain(|(_, id)| *id != service);
                    self.update(&service, |record| {
                        record.reserved_agent = None;
                        record.confirmed_at = None;
                        record.enter(
                            CallbackState::Queued,
                            None,
                            now,
                            format!("agent {agent} left; back in the queue"),
                        );
                    });
                }
                Effect::QueueTimedOut { service } => {
                    let timed_out = self.update(&service, |record| {
                        record.enter(
                            CallbackState::Completed,
                            Some(CallbackReason::FailTimeoutTtl),
                            now,
                            "no agent within _urs_queued_ttl",
                        );
                    });
                    if timed_out.is_some() {
                        let message = serde_json::json!({
                            "_id": service,
                            "_callback_state": "COMPLETED",
                            "_callback_reason": "FAIL_TIMEOUT_TTL",
                        });
                        self.notify(
                            &service,
                            format!("service.queuetimeout.{service}"),
                            &message,
                            now,
                        );
                    }
                }
            }
        }
    }

    /// After a reservation: tell the customer, and start waiting for their confirmation.
    fn on_reserved(&mut self, record: &ServiceRecord, now: Timestamp) {
        if !options::waits_for_agent(&record.options) {
            return;
        }
        let (tag, message) = notification::agent_available(&record.id);
        self.notify(&record.id, tag, &message, now);
        self.track_confirmation(record);
    }

    /// Services that wait for the customer's confirmation get a deadline for it.
    fn track_confirmation(&mut self, record: &ServiceRecord) {
        let confirm = record
            .options
            .get("_wait_for_user_confirm")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if !confirm || record.confirmed_at.is_some() {
            return;
        }
        let timeout = ServiceSettings::from_options(&record.options, &self.context.stat_servers)
            .map(|s| s.user_confirm_timeout_secs)
            .unwrap_or(options::DEFAULT_USER_CONFIRM_TIMEOUT_SECS);
        let reserved_at = record
            .state_history
            .iter()
            .rev()
            .find(|change| change.state == CallbackState::Routing)
            .map_or(record.created_at, |change| change.at);
        self.confirm_deadlines
            .insert((reserved_at.plus_secs(timeout), record.id.clone()));
    }

    fn notify(&self, service: &str, tag: String, message: &serde_json::Value, now: Timestamp) {
        if let Err(err) = self
            .context
            .store
            .add_notification(service, tag, message, now)
        {
            tracing::error!(service_id = %service, error = %err, "cannot store a notification");
        }
    }

    /// Changes a stored service; `None` (logged) when it is gone or storage failed.
    fn update(
        &self,
        id: &str,
        mut change: impl FnMut(&mut ServiceRecord),
    ) -> Option<ServiceRecord> {
        let result = self
            .context
            .store
            .update_service::<std::convert::Infallible>(id, |record| {
                change(record);
                Ok(())
            });
        match result {
            Ok(record) => record,
            Err(UpdateError::Store(err)) => {
                tracing::error!(service_id = %id, error = %err, "cannot store a routing change");
                None
            }
            Err(UpdateError::Rejected(never)) => match never {},
        }
    }
}

fn to_route(progress: Progress) -> RouteProgress {
    RouteProgress {
        step: u16::try_from(progress.step).unwrap_or(u16::MAX),
        step_entered_at: progress.step_entered_at,
        target_set: progress
            .target_set
            .into_iter()
            .map(|i| u16::try_from(i).unwrap_or(u16::MAX))
            .collect(),
    }
}
