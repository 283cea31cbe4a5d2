//! The router task: the one owner of the routing state.
//!
//! Everything that changes routing arrives as a [`Command`] on one channel and is applied in
//! order: events for the [`Router`] core, questions about it (positions, statistics), and
//! nudges when a SCHEDULED service appears. The task wakes by itself for the next step
//! timeout, queue deadline, confirmation deadline or scheduled start. Each effect of the
//! core is written to the store; a batch that changed what a customer can see (a reservation,
//! a release, a timeout) is group-committed before anyone's question is answered, so what a
//! client was told survives a crash and is never routed twice. Routing history alone rides on
//! the next group commit: the router redoes it from the last stored progress. Notifications
//! are stored with the batch and pushed only after its group commit.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::core::{Effect, Event, Priority, Progress, QueuedService, Router};
use crate::clock::{self, Clock};
use crate::domain::agent::Agent;
use crate::domain::lifecycle::{self, Refused};
use crate::domain::notification::Notification;
use crate::domain::options::ServiceSettings;
use crate::domain::service::{CallbackState, RouteProgress, RoutingEvent, ServiceRecord};
use crate::domain::settings_cache::SettingsCache;
use crate::domain::time::Timestamp;
use crate::domain::voice;
use crate::push::{Notifier, PushTarget};
use crate::store::{Pending, Receipts, Store, StoreError, UpdateError};
use crate::supervisor::Shutdown;

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
    /// A chat started with its reserved agent: the reservation becomes an interaction and
    /// the chat side is told to let the agent in.
    ChatStarted {
        /// The service.
        service: String,
        /// The reserved agent.
        agent: String,
    },
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

    /// Tells the router that the chat of `service` started with its reserved `agent` (or, at
    /// start-up, that a started chat never got its agent): the router counts the interaction
    /// and hands the chat over to the agent through the chat channel.
    pub fn chat_started(&self, service: String, agent: String) {
        let _ = self.commands.send(Command::ChatStarted { service, agent });
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

/// The handover of a chat to the agent the router reserved for it .
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatAssigned {
    /// The service.
    pub service: String,
    /// The agent.
    pub agent: String,
    /// The agent's display name.
    pub nickname: String,
    /// The agent joins without accepting.
    pub auto_answer: bool,
}

/// What the router task asks of chats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// An agent was found for a waiting chat.
    Assigned(ChatAssigned),
    /// The service ended without an agent (its queue timed out): close its chat with a
    /// last message.
    Close {
        /// The service.
        service: String,
        /// The message shown to the customer.
        message: String,
    },
}

/// What the task needs from the rest of the service.
pub struct RouterContext {
    /// The database.
    pub store: Store,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The typed settings of stored services' options, parsed once per options.
    pub settings: Arc<SettingsCache>,
    /// Where chats that found their agent, or lost their queue, are announced.
    pub chats: mpsc::UnboundedSender<ChatCommand>,
    /// Stores customer notifications, and pushes them once the batch is durable.
    pub notifier: Notifier,
}

/// Loads agents and unfinished services into a new router; answers its handle and the task
/// to run (the supervisor starts it).
///
/// # Errors
/// The store could not be read.
pub fn start(
    context: RouterContext,
    shutdown: Shutdown,
) -> Result<(RouterHandle, impl Future<Output = ()> + Send + 'static), StoreError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut task = RouterTask {
        router: Router::new(),
        confirm_deadlines: BTreeSet::new(),
        scheduled_retry_at: None,
        next_scheduled: None,
        outbox: Vec::new(),
        receipts: Receipts::default(),
        context,
    };
    task.restore()?;
    Ok((RouterHandle { commands: tx }, task.run(rx, shutdown)))
}

/// The QueuedService the router needs for a stored service that waits for an agent, with
/// the settings its options give.
pub fn queued_service(record: &ServiceRecord, settings: &ServiceSettings) -> QueuedService {
    let queued_at = record.queued_at.unwrap_or(record.created_at);
    QueuedService {
        id: record.id.clone(),
        virtual_queue: settings.queue_name(&record.service_name),
        media: settings.media_type.clone(),
        targets: settings.target.clone(),
        queued_at,
        deadline: queued_at.plus_secs(settings.queued_ttl_secs),
        priority: Priority {
            base: settings.priority,
            increment: settings.priority_increment,
            interval_secs: settings.priority_increment_interval_secs,
        },
        progress: record.route.as_ref().map(progress_of),
        entering: false,
    }
}

/// The router's progress for a stored one.
fn progress_of(route: &RouteProgress) -> Progress {
    Progress {
        step: usize::from(route.step),
        step_entered_at: route.step_entered_at,
        target_set: route.target_set.iter().map(|i| usize::from(*i)).collect(),
    }
}

/// A service created straight into its queue or started at its desired time, stored with the
/// start of its walk ([`RouteProgress::start`]): the router enters its first step (recording
/// it in the routing history) from that progress, which it then finds already stored.
pub fn entering_service(record: &ServiceRecord, settings: &ServiceSettings) -> QueuedService {
    QueuedService {
        entering: true,
        ..queued_service(record, settings)
    }
}

struct RouterTask {
    router: Router,
    /// (deadline, service): reservations waiting for the customer's `connect`.
    confirm_deadlines: BTreeSet<(Timestamp, String)>,
    /// Set after a storage failure on scheduled services: do not look again before then.
    scheduled_retry_at: Option<Timestamp>,
    /// The earliest desired time in the scheduled index, as last read (re-read when a
    /// request says the schedule changed and after each look): kept so the request path
    /// never reads the index.
    next_scheduled: Option<Timestamp>,
    /// Notifications stored by the current batch, pushed once it is durable.
    outbox: Vec<(PushTarget, Notification)>,
    /// The current batch's writes a customer can see (states, notifications): answers and
    /// pushes wait until they are durable. Routing history is not among them: it is progress
    /// the router can redo, riding on the next group commit.
    receipts: Receipts,
    context: RouterContext,
}

/// Scheduled services started per wake-up.
const SCHEDULED_BATCH: usize = 1000;

/// How long to wait before looking at scheduled services again after a storage failure.
const SCHEDULED_RETRY_SECS: u64 = 5;

impl RouterTask {
    /// Rebuilds the routing state from storage: agents with their reservations and
    /// interactions, then the services that wait or are reserved. A reservation whose agent is
    /// gone or logged out (the change was stored, the requeue was not) is put back in its
    /// queue first, so the store and the router start from the same picture.
    fn restore(&mut self) -> Result<(), StoreError> {
        let now = self.context.clock.now();
        let store = self.context.store.clone();
        let mut unfinished = store.services_in_states(
            None,
            &[
                CallbackState::Queued,
                CallbackState::Routing,
                CallbackState::Processing,
            ],
            &|_| true,
            usize::MAX,
        )?;
        let mut agents: Vec<Agent> = store
            .agents()?
            .into_iter()
            .map(|record| record.into_agent())
            .collect();
        for record in &mut unfinished {
            if record.state != CallbackState::Routing {
                continue;
            }
            let holder = record
                .reserved_agent
                .as_ref()
                .and_then(|id| agents.iter().find(|a| a.config.id == *id));
            if holder.is_some_and(Agent::is_logged_in) {
                continue;
            }
            let requeued = self.update(&record.id, |r| {
                r.requeue(None, now, "its agent left while stopped; back in the queue")
            });
            if let Outcome::Applied(requeued, effects) = requeued {
                self.carry_out(&requeued, effects, now);
                *record = *requeued;
            }
        }
        for record in &unfinished {
            let Some(agent) = record
                .reserved_agent
                .as_ref()
                .and_then(|id| agents.iter_mut().find(|a| a.config.id == *id))
            else {
                continue;
            };
            if record.state == CallbackState::Processing {
                let media = self
                    .settings_of(record)
                    .map_or_else(|| "chat".to_string(), |s| s.media_type.clone());
                agent
                    .active
                    .entry(media)
                    .or_default()
                    .insert(record.id.clone());
            } else if record.state == CallbackState::Routing {
                agent.reserved.insert(record.id.clone());
            }
        }
        let mut effects = Vec::new();
        for agent in agents {
            effects.extend(self.router.handle(Event::AgentUpdated(agent), now));
        }
        for record in &unfinished {
            // Being handled by an agent, or an immediate chat not started: not in a queue.
            let routable = matches!(record.state, CallbackState::Queued | CallbackState::Routing);
            if !routable || record.queued_at.is_none() {
                continue;
            }
            let Some(settings) = self.settings_of(record) else {
                continue;
            };
            let service = self.restored_service(record, &settings);
            effects.extend(self.router.handle(Event::Queued(service), now));
            if record.state == CallbackState::Routing {
                self.track_confirmation(record, &settings);
            }
        }
        // Services whose desired time passed while stopped start on the first wake-up.
        self.next_scheduled = store.next_scheduled()?;
        tracing::info!(
            agents = self.router.agents().count(),
            services = unfinished.len(),
            "routing state restored"
        );
        self.persist(effects, now);
        Ok(())
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, mut shutdown: Shutdown) {
        // Changes and notifications stored while restoring.
        let durable = std::mem::take(&mut self.receipts).durable().await;
        self.deliver_outbox(durable);
        loop {
            let sleep = clock::sleep_until(&*self.context.clock, self.next_wakeup());
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
                () = sleep => {
                    let wake = vec![Command::Event(Box::new(Event::Tick)), Command::Scheduled];
                    self.apply(wake).await
                }
                // The service is stopping.
                () = shutdown.wait() => break,
            }
        }
        tracing::info!("router task stopped");
    }

    /// The earliest of the router's timers, the confirmation deadlines and scheduled starts.
    fn next_wakeup(&self) -> Option<Timestamp> {
        let scheduled = match (self.next_scheduled, self.scheduled_retry_at) {
            (Some(at), Some(retry)) => Some(at.max(retry)),
            (at, _) => at,
        };
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
        let mut questions = Vec::new();
        let mut look_at_schedule = false;
        for command in batch {
            match command {
                Command::Event(event) => effects.extend(self.router.handle(*event, now)),
                Command::Query(question) => questions.push(question),
                Command::Scheduled => look_at_schedule = true,
                Command::ChatStarted { service, agent } => {
                    let started = Event::Started {
                        service: service.clone(),
                        agent: agent.clone(),
                    };
                    effects.extend(self.router.handle(started, now));
                    self.assign_chat(service, agent);
                }
            }
        }
        let scheduled = if look_at_schedule {
            self.start_scheduled(now)
        } else {
            Vec::new()
        };
        let released = self.release_unconfirmed(now);
        effects.extend(scheduled);
        effects.extend(released);
        self.persist(effects, now);
        // Flush what customers can see before answering anyone or pushing notifications.
        let receipts = std::mem::take(&mut self.receipts);
        if !receipts.is_empty() {
            let durable = receipts.durable().await;
            if let Err(err) = &durable {
                tracing::error!(error = %err, "routing changes may not be durable");
            }
            self.deliver_outbox(durable);
        }
        // Answered once the batch is durable, so no answer reports what a crash could undo.
        for question in questions {
            question(&self.router, now);
        }
    }

    /// Pushes the notifications stored so far, given the outcome of the group commit that
    /// followed them. If the flush failed nothing is pushed: what survives is polled.
    fn deliver_outbox(&mut self, durable: Result<(), StoreError>) {
        let outbox = std::mem::take(&mut self.outbox);
        if outbox.is_empty() {
            return;
        }
        match durable {
            Ok(()) => {
                for (target, notification) in &outbox {
                    self.context.notifier.deliver(target, notification);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, count = outbox.len(), "notifications may not be durable; not pushed");
            }
        }
    }

    /// Moves SCHEDULED services whose time has come into their queues. Returns the router's
    /// effects.
    fn start_scheduled(&mut self, now: Timestamp) -> Vec<Effect> {
        if self.scheduled_retry_at.is_some_and(|at| at > now) {
            return Vec::new();
        }
        self.scheduled_retry_at = None;
        let due = match self.context.store.due_scheduled(now, SCHEDULED_BATCH) {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(error = %err, "cannot read scheduled services");
                self.scheduled_retry_at = Some(now.plus_secs(SCHEDULED_RETRY_SECS));
                return Vec::new();
            }
        };
        let mut effects = Vec::new();
        for id in due {
            let started = self.update(&id, |record| record.start_queueing(now));
            let record = match started {
                Outcome::Applied(record, ()) => record,
                Outcome::Gone => continue,
                // Not SCHEDULED any more is fine; an unreadable record would be due forever:
                // look again later instead of spinning on it.
                Outcome::Refused => {
                    if self.context.store.service(&id).is_err() {
                        self.scheduled_retry_at = Some(now.plus_secs(SCHEDULED_RETRY_SECS));
                    }
                    continue;
                }
            };
            if record.queued_at.is_some() {
                if let Some(settings) = self.settings_of(&record) {
                    // Stored with the start of its walk by `start_queueing`: the first step
                    // is entered from there, and found stored.
                    let service = entering_service(&record, &settings);
                    effects.extend(self.router.handle(Event::Queued(service), now));
                }
            }
        }
        self.next_scheduled = self.context.store.next_scheduled().unwrap_or_else(|err| {
            tracing::error!(error = %err, "cannot read scheduled services");
            None
        });
        effects
    }

    /// Releases reservations the customer did not confirm in time. The check and the release
    /// are one transaction, so a `connect` that commits first wins. Returns the router's
    /// effects.
    fn release_unconfirmed(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some((at, id)) = self.confirm_deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.confirm_deadlines.remove(&(at, id.clone()));
            let cache = self.context.settings.clone();
            let outcome = self.update(&id, |record| {
                // Only the unconfirmed reservation this deadline was set for.
                let settings = routable_settings(record, &cache)?;
                record.fail_unconfirmed(at, &settings, now)
            });
            if let Outcome::Applied(..) = outcome {
                effects.extend(self.router.handle(
                    Event::Released {
                        service: id.clone(),
                    },
                    now,
                ));
                tracing::info!(service_id = %id, "reservation released: not confirmed");
            }
        }
        effects
    }

    /// Writes the router's effects to the store. Each effect is written only if the record is
    /// still in the state the router assumed; when a request changed it first (a cancel, an
    /// expiry), the router is told to forget the service, and what that frees is persisted too.
    ///
    /// Changes a customer can see (a state, a notification) join the batch's receipts;
    /// routing history alone is progress the router can redo, and need not wait for a flush.
    fn persist(&mut self, effects: Vec<Effect>, now: Timestamp) {
        let mut pending: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = pending.pop_front() {
            let forget = match effect {
                Effect::History { service, event } => {
                    // A step entered, skipped and the next entered come together: one write.
                    let mut events = vec![event];
                    while let Some(Effect::History { service: next, .. }) = pending.front() {
                        if *next != service {
                            break;
                        }
                        if let Some(Effect::History { event, .. }) = pending.pop_front() {
                            events.push(event);
                        }
                    }
                    // History that ends in a reservation is written with it: the reservation
                    // and its `Reserved` event are one unit of work.
                    let reserved = match pending.front() {
                        Some(Effect::Reserved {
                            service: next,
                            agent,
                        }) if *next == service => Some(agent.clone()),
                        _ => None,
                    };
                    match reserved {
                        Some(agent) => {
                            pending.pop_front();
                            self.reserve(&service, &agent, events, now, &mut pending)
                        }
                        None => {
                            self.append_history(&service, &events);
                            None
                        }
                    }
                }
                Effect::Reserved { service, agent } => {
                    self.reserve(&service, &agent, Vec::new(), now, &mut pending)
                }
                Effect::Requeued { service, agent } => {
                    self.confirm_deadlines.retain(|(_, id)| *id != service);
                    let outcome = self.update(&service, |record| {
                        record.requeue(
                            Some(&agent),
                            now,
                            format!("agent {agent} left; back in the queue"),
                        )
                    });
                    match outcome {
                        Outcome::Applied(record, effects) => {
                            pending.extend(self.carry_out(&record, effects, now));
                            None
                        }
                        Outcome::Refused | Outcome::Gone => Some(service),
                    }
                }
                Effect::QueueTimedOut { service } => {
                    let outcome = self.update(&service, |record| record.time_out(now));
                    if let Outcome::Applied(record, effects) = outcome {
                        pending.extend(self.carry_out(&record, effects, now));
                    }
                    None
                }
            };
            if let Some(service) = forget {
                tracing::debug!(service_id = %service, "routing change refused: the service changed first");
                pending.extend(self.router.handle(Event::Removed { service }, now));
            }
        }
    }

    /// Appends routing history that comes with no change of state, with the router's
    /// progress: only the history tree is written, unless the progress moved (a step skipped
    /// or timed out), which the record keeps for a restart.
    fn append_history(&mut self, service: &str, events: &[RoutingEvent]) {
        let progress = self.router.progress(service).map(to_route);
        let stored = self
            .context
            .store
            .append_routing(service, events, progress.as_ref())
            .map(Pending::without_waiting);
        if let Err(err) = stored {
            tracing::error!(service_id = %service, error = %err, "cannot store routing history");
        }
    }

    /// Reserves `agent` for `service`, appending `history` (the events that led to it, its
    /// `Reserved` event among them) and the router's progress in the same transaction.
    /// Returns the service when the router must forget it (the record changed first).
    fn reserve(
        &mut self,
        service: &str,
        agent: &str,
        history: Vec<RoutingEvent>,
        now: Timestamp,
        pending: &mut std::collections::VecDeque<Effect>,
    ) -> Option<String> {
        let cache = self.context.settings.clone();
        let progress = self.router.progress(service).map(to_route);
        let outcome = self.update_routed(service, |record, appended| {
            // Options that no longer validate (stat_servers changed) cannot be routed: the
            // router forgets the service, as a restart would.
            let settings = routable_settings(record, &cache)?;
            let effects = record.reserve(agent, &settings, now)?;
            appended.extend(history.iter().cloned());
            if let Some(progress) = &progress {
                record.route = Some(progress.clone());
            }
            Ok(effects)
        });
        match outcome {
            Outcome::Applied(record, effects) => {
                let awaits_customer = effects
                    .iter()
                    .any(|e| matches!(e, lifecycle::Effect::AwaitConfirmation { .. }));
                pending.extend(self.carry_out(&record, effects, now));
                if !awaits_customer && voice::is_voice(&record) && self.answers_automatically(agent)
                {
                    pending.extend(self.take_voice(&record, agent, now));
                }
                None
            }
            Outcome::Refused | Outcome::Gone => Some(service.to_string()),
        }
    }

    /// Carries out what a transition of `record` implies (see [`lifecycle::Effect`]):
    /// notifications are stored with the batch and pushed once it is durable; the router's
    /// own consequences are returned for [`RouterTask::persist`] to write in turn.
    fn carry_out(
        &mut self,
        record: &ServiceRecord,
        effects: Vec<lifecycle::Effect>,
        now: Timestamp,
    ) -> Vec<Effect> {
        let mut routing = Vec::new();
        for effect in effects {
            match effect {
                lifecycle::Effect::Notify { tag, message } => {
                    self.notify(record, tag, &message, now);
                }
                lifecycle::Effect::CloseChat { message } => {
                    let _ = self.context.chats.send(ChatCommand::Close {
                        service: record.id.clone(),
                        message,
                    });
                }
                lifecycle::Effect::AwaitConfirmation { deadline } => {
                    self.confirm_deadlines.insert((deadline, record.id.clone()));
                }
                lifecycle::Effect::StartChat { agent } => {
                    routing.extend(self.router.handle(
                        Event::Started {
                            service: record.id.clone(),
                            agent: agent.clone(),
                        },
                        now,
                    ));
                    self.assign_chat(record.id.clone(), agent);
                }
            }
        }
        routing
    }

    /// Whether `agent` joins its interactions without an Accept.
    fn answers_automatically(&self, agent: &str) -> bool {
        self.router
            .agent(agent)
            .is_some_and(|a| a.config.auto_answer)
    }

    /// A voice callback reserved for an agent with auto answer, with nobody to wait for: the
    /// agent takes it at once (PROCESSING, dialing), as a chat is joined automatically.
    fn take_voice(&mut self, record: &ServiceRecord, agent: &str, now: Timestamp) -> Vec<Effect> {
        let outcome = self.update(&record.id, |r| match voice::take(r, agent, now) {
            Ok(true) => Ok(()),
            _ => Err(Refused { state: r.state }),
        });
        if !matches!(outcome, Outcome::Applied(..)) {
            return Vec::new();
        }
        tracing::info!(service_id = %record.id, agent = %agent, "voice callback taken automatically");
        self.router.handle(
            Event::Started {
                service: record.id.clone(),
                agent: agent.to_string(),
            },
            now,
        )
    }

    /// Tells the chat side to let `agent` into the chat of `service`, with the agent's name
    /// and auto-answer setting.
    fn assign_chat(&self, service: String, agent: String) {
        let (nickname, auto_answer) = self.router.agent(&agent).map_or_else(
            || (agent.clone(), true),
            |a| (a.config.name.clone(), a.config.auto_answer),
        );
        let _ = self.context.chats.send(ChatCommand::Assigned(ChatAssigned {
            service,
            agent,
            nickname,
            auto_answer,
        }));
    }

    /// The QueuedService that restores a waiting `record`. A record stored with the start of
    /// its walk ([`RouteProgress::start`]) keeps it while routing only walks steps, so its
    /// routing history says where it is ([`RouteProgress::replayed`]). With no event of this
    /// walk in the history, the process stopped between the write that began the walk (a
    /// create, a scheduled start, a move to now) and the router's first one (routing history
    /// is not waited for): the service enters its first step again, so that the step's
    /// statistic is checked and its `Entered` event written, as if the walk had just begun.
    /// Any other record holds its progress itself.
    fn restored_service(
        &self,
        record: &ServiceRecord,
        settings: &ServiceSettings,
    ) -> QueuedService {
        let queued = queued_service(record, settings);
        let Some(start) = record.route.as_ref().filter(|_| record.walk_at_start()) else {
            return queued;
        };
        match self.context.store.routing_history(&record.id) {
            Ok(history) => {
                let clears: Vec<bool> = settings.target.steps().iter().map(|s| s.clear).collect();
                match start.resumed(&history, &clears) {
                    None => entering_service(record, settings),
                    Some((progress, entering)) => QueuedService {
                        progress: Some(progress_of(&progress)),
                        entering,
                        ..queued
                    },
                }
            }
            Err(err) => {
                tracing::warn!(service_id = %record.id, error = %err, "cannot read the routing history: the service resumes at the start of its walk");
                queued
            }
        }
    }

    /// A reserved service that waits for the customer's confirmation gets a deadline for it.
    fn track_confirmation(&mut self, record: &ServiceRecord, settings: &ServiceSettings) {
        if let Some(deadline) = record.confirmation_deadline(settings) {
            self.confirm_deadlines.insert((deadline, record.id.clone()));
        }
    }

    /// The typed settings of a stored service; `None` (logged) when its options no longer
    /// validate, e.g. after `stat_servers` changed.
    fn settings_of(&self, record: &ServiceRecord) -> Option<Arc<ServiceSettings>> {
        match self.context.settings.settings(&record.options) {
            Ok(settings) => Some(settings),
            Err(err) => {
                tracing::error!(service_id = %record.id, error = %err, "cannot route the service");
                None
            }
        }
    }

    /// Stores a notification for the customer of `record`; it is pushed once the batch is
    /// durable.
    fn notify(
        &mut self,
        record: &ServiceRecord,
        tag: String,
        message: &serde_json::Value,
        now: Timestamp,
    ) {
        let target = PushTarget::of(record);
        match self.context.notifier.record(&target, tag, message, now) {
            Ok(stored) => {
                let stored = self.receipts.add(stored);
                self.outbox.push((target, stored));
            }
            Err(err) => {
                tracing::error!(service_id = %record.id, error = %err, "cannot store a notification")
            }
        }
    }

    /// Changes a stored service by a transition of its lifecycle, if its current state
    /// allows it. The transition may run more than once (the store retries a conflicting
    /// transaction); the effects of the run that was written are returned.
    fn update<T>(
        &mut self,
        id: &str,
        mut transition: impl FnMut(&mut ServiceRecord) -> Result<T, Refused>,
    ) -> Outcome<T> {
        self.update_routed(id, |record, _| transition(record))
    }

    /// [`RouterTask::update`] for a transition that also appends routing history (pushed
    /// onto its second argument), in the same transaction.
    fn update_routed<T>(
        &mut self,
        id: &str,
        mut transition: impl FnMut(&mut ServiceRecord, &mut Vec<RoutingEvent>) -> Result<T, Refused>,
    ) -> Outcome<T> {
        let mut written = None;
        let result = self
            .context
            .store
            .update_service_routed::<Refused>(id, |record, appended| {
                written = Some(transition(record, appended)?);
                Ok(())
            });
        let result = result.map(|changed| changed.transpose().map(|r| self.receipts.add(r)));
        match result {
            Ok(Some(record)) => match written {
                Some(effects) => Outcome::Applied(Box::new(record), effects),
                None => Outcome::Refused,
            },
            Ok(None) => Outcome::Gone,
            Err(UpdateError::Rejected(_)) => Outcome::Refused,
            Err(UpdateError::Store(err)) => {
                tracing::error!(service_id = %id, error = %err, "cannot store a routing change");
                Outcome::Refused
            }
        }
    }
}

/// What became of a transition of a stored service.
enum Outcome<T> {
    /// Written; the record as it is now, and what the transition implies.
    Applied(Box<ServiceRecord>, T),
    /// The record's state no longer allows it (a cancel or a release got there first).
    Refused,
    /// The service no longer exists (expired).
    Gone,
}

/// The typed settings of a stored service inside a transition: a service whose options no
/// longer validate (`stat_servers` changed) refuses the transition, and the router forgets it.
fn routable_settings(
    record: &ServiceRecord,
    cache: &SettingsCache,
) -> Result<Arc<ServiceSettings>, Refused> {
    cache.settings(&record.options).map_err(|_| Refused {
        state: record.state,
    })
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
