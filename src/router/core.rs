//! The routing core: a pure, steppable state machine that decides which waiting service gets
//! which agent (DESIGN.md §5, the rules marked "decided").
//!
//! It owns
//! - the waiting services, in their virtual queues, with their current `_target` step and
//!   target set S;
//! - the reservations (service -> agent) until the customer confirms, and which agent handles
//!   which started interaction;
//! - its own copy of every agent (configuration, state, idle time, reservations, interactions),
//!   kept current by [`Event::AgentUpdated`];
//! - the recent departures of each virtual queue, for ETA and EWT.
//!
//! It must not do I/O, spawn tasks or read the clock: every call takes `now`, and everything
//! that has to be persisted comes back as an [`Effect`]. The task that wraps it feeds it events,
//! persists the effects, and calls [`Event::Tick`] at [`Router::next_wakeup`].
//!
//! Cost: work per event is proportional to the agents or targets involved, never to
//! waiting services × agents. Its parts, each a module of its own with its invariant tests:
//! - waiting services in ordered sets per virtual queue and per (target, media) (`lanes`, for
//!   priorities that grow, over `ranked::RankedSet`, which counts the services ahead of one in
//!   O(log n)), and their timers in a set ordered by time;
//! - available agents in sets ordered by idle time per media (`available`);
//! - the members of every target in use, computed once and updated only when an agent's
//!   configuration changes (`targets`);
//! - each virtual queue's recent departures, for ETA and EWT (`estimates`).
//!
//! Restart: send every agent first (with the reservations it held, in [`Agent::reserved`]),
//! then every queued or reserved service as [`Event::Queued`] with its stored [`Progress`]. A
//! service an agent already holds is attached to that reservation instead of being queued, so
//! nothing is routed twice; services that were waiting keep their place, step and remaining
//! step time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::available::Availability;
use super::estimates::Departures;
pub use super::lanes::Priority;
use super::lanes::{Lanes, OrderKey, Waiter};
use super::targets::{Interned, Targets};
use super::Id;

use crate::center::stats::Stats;
use crate::domain::agent::{Agent, AgentState};
use crate::domain::service::{RoutingEvent, RoutingEventKind};
use crate::domain::target::{StatCheck, Statistic, Target, TargetList};
use crate::domain::time::Timestamp;

/// Why a reservation was released, as written in the routing history.
const WHY_LOGGED_OUT: &str = "agent logged out";
/// See [`WHY_LOGGED_OUT`].
const WHY_AGENT_REMOVED: &str = "agent removed";
/// See [`WHY_LOGGED_OUT`].
const WHY_NOT_CONFIRMED: &str = "not confirmed";
/// See [`WHY_LOGGED_OUT`].
const WHY_SERVICE_REMOVED: &str = "service removed";

/// A service entering its virtual queue, or resuming there after a restart or a requeue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedService {
    /// The service id.
    pub id: String,
    /// `_urs_virtual_queue`: the queue that position, ETA and EWT are about.
    pub virtual_queue: String,
    /// `_media_type`: agents need free capacity for it.
    pub media: String,
    /// `_target`: the steps to walk.
    pub targets: TargetList,
    /// When it entered the queue; orders services of equal priority and keeps their place
    /// across restarts.
    pub queued_at: Timestamp,
    /// `queued_at + _urs_queued_ttl`: the last step waits until here, then the service fails
    /// with `FAIL_TIMEOUT_TTL`.
    pub deadline: Timestamp,
    /// Its priority.
    pub priority: Priority,
    /// Where it was in its `_target` list; `Some` when resuming after a restart.
    pub progress: Option<Progress>,
    /// It enters its queue now with `progress` at the start of its walk (a create stores
    /// that progress with the record): its first step is entered and recorded as for a
    /// service without progress, while the step's time counts from `progress`.
    pub entering: bool,
}

/// Where a service is in its `_target` list; persisted so a restart resumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The current step, 0-based.
    pub step: usize,
    /// When the current step was entered; its timeout counts from here.
    pub step_entered_at: Timestamp,
    /// Indices of the steps whose targets form the target set S.
    pub target_set: Vec<usize>,
}

/// Something that happened, for the router to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A service enters its virtual queue (or resumes, when it carries [`Progress`]). A service
    /// the router already knows is ignored, so nothing is routed twice.
    Queued(QueuedService),
    /// The service was cancelled or expired: it leaves the queue, or releases its reservation
    /// (the agent becomes free, idle since now), or frees its agent's capacity.
    Removed {
        /// The service id.
        service: String,
    },
    /// An agent was configured or changed configuration or state. A new agent is taken as
    /// given, reservations, interactions and idle time included (that is how a restart
    /// restores them); for a known agent only configuration and state are taken, since the
    /// router is the one that reserves agents, and becoming ready sets its idle time to now.
    AgentUpdated(Agent),
    /// An agent was deleted; a reservation it held goes back to the queue.
    AgentRemoved {
        /// The agent id.
        agent: String,
    },
    /// The customer confirmed: the reservation becomes an interaction of the service's media.
    Started {
        /// The service id.
        service: String,
        /// The reserved agent.
        agent: String,
    },
    /// The reservation was dropped without work (the customer never confirmed); the service
    /// does not return to the queue.
    Released {
        /// The service id.
        service: String,
    },
    /// The interaction is over: the agent's capacity is freed and it is idle since now.
    Ended {
        /// The service id.
        service: String,
        /// The agent that handled it.
        agent: String,
    },
    /// Time passed; the wrapping task sends this at [`Router::next_wakeup`].
    Tick,
}

/// Something the caller must persist or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Append to the service's routing history. Afterwards [`Router::progress`] has the
    /// service's new progress to store with it.
    History {
        /// The service id.
        service: String,
        /// What happened, and when.
        event: RoutingEvent,
    },
    /// The service is ROUTING with this agent reserved.
    Reserved {
        /// The service id.
        service: String,
        /// The reserved agent.
        agent: String,
    },
    /// The reserved agent logged out or was removed: the service is QUEUED again, in its
    /// original place.
    Requeued {
        /// The service id.
        service: String,
        /// The agent that held it.
        agent: String,
    },
    /// The deadline passed while waiting: the service is gone from the queue and completes
    /// with `FAIL_TIMEOUT_TTL`.
    QueueTimedOut {
        /// The service id.
        service: String,
    },
}

/// One virtual queue at a glance (`GET /genesys/1/admin/queues`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueSummary {
    /// `_urs_virtual_queue`.
    pub name: String,
    /// Services waiting in it.
    pub waiting: usize,
    /// How long the oldest waiting service has waited, in whole seconds (0 when none waits).
    pub oldest_wait_secs: u64,
    /// Estimated waiting time: the mean wait of the recent departures; `None` before any.
    pub ewt_secs: Option<u64>,
}

/// One step of a service's `_target` list, with its target interned.
#[derive(Debug, Clone)]
struct Step {
    /// The target's Display string, the key of [`Router::targets`].
    key: Id,
    timeout_secs: u64,
    clear: bool,
    check: Option<StatCheck>,
}

/// What the router knows about one service it may still have to route.
#[derive(Debug, Clone)]
struct Entry {
    id: Id,
    vq: String,
    media: String,
    steps: Vec<Step>,
    queued_at: Timestamp,
    deadline: Timestamp,
    priority: Priority,
    /// Current step, 0-based.
    step: usize,
    step_entered_at: Timestamp,
    /// Indices of the steps in S.
    target_set: Vec<usize>,
    /// The timer set while waiting, so that it can be found in [`Router::timers`] again.
    timer: Option<Timestamp>,
}

/// What ends a service's current wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// The current step's timeout.
    StepTimeout,
    /// `_urs_queued_ttl`.
    Deadline,
}

impl Entry {
    fn is_last_step(&self) -> bool {
        self.step + 1 >= self.steps.len()
    }

    /// The 1-based step number written in the routing history.
    fn step_number(&self) -> u16 {
        u16::try_from(self.step + 1).unwrap_or(u16::MAX)
    }

    /// How the lanes place it, with `targets` its [`Entry::set_keys`].
    fn waiter<'a>(&'a self, targets: &'a [Id]) -> Waiter<'a> {
        Waiter {
            id: &self.id,
            queue: &self.vq,
            media: &self.media,
            priority: self.priority,
            queued_at: self.queued_at,
            targets,
        }
    }

    /// The distinct targets of S: two steps may name the same target, and counting it twice
    /// would inflate `StatCallsWaiting`.
    fn set_keys(&self) -> Vec<Id> {
        let mut keys: Vec<Id> = Vec::with_capacity(self.target_set.len());
        for step in self.target_set.iter().filter_map(|&i| self.steps.get(i)) {
            if !keys.contains(&step.key) {
                keys.push(step.key.clone());
            }
        }
        keys
    }

    /// When the current wait ends and why: the step's timeout, unless the deadline comes
    /// first (or at the same time); the last step waits for the deadline only.
    fn next_due(&self) -> (Timestamp, Due) {
        match self.steps.get(self.step) {
            Some(step) if !self.is_last_step() => {
                let end = self.step_entered_at.plus_secs(step.timeout_secs);
                if end < self.deadline {
                    (end, Due::StepTimeout)
                } else {
                    (self.deadline, Due::Deadline)
                }
            }
            _ => (self.deadline, Due::Deadline),
        }
    }

    /// Step `step` ended without an agent: `clear` decides whether S restarts from the next
    /// target or grows by it; the next step starts at `at`. Callers check it is not the last.
    fn end_step(&mut self, at: Timestamp) {
        let clear = self.steps.get(self.step).is_some_and(|s| s.clear);
        let next = self.step + 1;
        if clear {
            self.target_set = vec![next];
        } else if !self.target_set.contains(&next) {
            self.target_set.push(next);
        }
        self.step = next;
        self.step_entered_at = at;
    }

    fn progress(&self) -> Progress {
        Progress {
            step: self.step,
            step_entered_at: self.step_entered_at,
            target_set: self.target_set.clone(),
        }
    }
}

/// A service held by an agent until the customer confirms.
#[derive(Debug, Clone)]
struct Reservation {
    agent: String,
    /// `None` for a reservation restored from an agent before its service was queued again;
    /// the next [`Event::Queued`] for the service fills it in.
    entry: Option<Entry>,
}

/// The routing state machine. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// Every agent, by id: the router's own copy.
    agents: BTreeMap<String, Agent>,
    /// Agents available for a media, longest idle first.
    available: Availability,
    /// Targets named by known services, with their members.
    targets: Targets,
    /// Services waiting for an agent.
    waiting: HashMap<Id, Entry>,
    /// Services with an agent reserved.
    reserved: HashMap<Id, Reservation>,
    /// Started interactions: service -> agent.
    active: HashMap<Id, String>,
    /// Virtual queues by name, with their recent departures.
    queues: BTreeMap<String, Departures>,
    /// The waiting services in order: by virtual queue, and by target in S and media.
    lanes: Lanes,
    /// The time each waiting service's current wait ends.
    timers: BTreeSet<(Timestamp, Id)>,
}

impl Router {
    /// An empty router: no agents, nothing waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event at `now` and returns what must be persisted, in order.
    ///
    /// Timers that fell due by `now` are handled first, whatever the event, so that a service
    /// whose step or deadline already passed is never routed as if it had not.
    pub fn handle(&mut self, event: Event, now: Timestamp) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.fire_due_timers(now, &mut fx);
        match event {
            Event::Queued(service) => self.queued(service, now, &mut fx),
            Event::Removed { service } => self.removed(&service, now, &mut fx),
            Event::AgentUpdated(agent) => self.agent_updated(agent, now, &mut fx),
            Event::AgentRemoved { agent } => self.agent_removed(&agent, now, &mut fx),
            Event::Started { service, agent } => self.started(&service, &agent, now, &mut fx),
            Event::Released { service } => {
                if self.reserved.contains_key(service.as_str()) {
                    self.release(&service, WHY_NOT_CONFIRMED, now, &mut fx);
                }
            }
            Event::Ended { service, agent } => self.ended(&service, &agent, now, &mut fx),
            Event::Tick => {}
        }
        fx
    }

    /// The earliest step timeout or deadline of any waiting service: when to send
    /// [`Event::Tick`]. `None` when nothing waits.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// `(1-based position, total waiting)` of a waiting service in its virtual queue, in the
    /// order the router hands out agents. `None` when the service is not waiting.
    pub fn position(&self, service: &str, now: Timestamp) -> Option<(usize, usize)> {
        let entry = self.waiting.get(service)?;
        self.lanes.position(&entry.waiter(&[]), now)
    }

    /// Estimated seconds until a waiting service gets an agent: its position times the mean
    /// interval between the recent departures of its queue. `None` ("n/a") when it is not
    /// waiting or fewer than two departures were seen.
    pub fn eta_secs(&self, service: &str, now: Timestamp) -> Option<u64> {
        let (position, _) = self.position(service, now)?;
        self.queues
            .get(&self.waiting.get(service)?.vq)?
            .eta_secs(position)
    }

    /// Every virtual queue that has had a waiting service: waiting count, oldest wait and EWT.
    pub fn queues(&self, now: Timestamp) -> Vec<QueueSummary> {
        self.queues
            .iter()
            .map(|(name, queue)| {
                let (waiting, oldest) = self.lanes.queue(name);
                let oldest_wait_secs = oldest.map_or(0, |queued_at| {
                    now.as_millis().saturating_sub(queued_at.as_millis()) / 1000
                });
                QueueSummary {
                    name: name.clone(),
                    waiting,
                    oldest_wait_secs,
                    ewt_secs: queue.ewt_secs(),
                }
            })
            .collect()
    }

    /// The Stat Server statistics of `target` over the router's agents; `StatCallsWaiting` is
    /// the number of waiting services whose current S contains the target (targets compare
    /// by their Display string).
    pub fn stats(&self, target: &Target) -> Stats {
        let key = target.to_string();
        let waiting = self.calls_waiting(&key);
        match self.targets.get(key.as_str()) {
            Some(interned) => Stats::of(
                target,
                interned.members.iter().filter_map(|a| self.agents.get(a)),
                waiting,
            ),
            None => Stats::of(target, self.agents.values(), waiting),
        }
    }

    /// Every agent the router knows, by id.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// One agent, as the router sees it (reservations and interactions included).
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    /// The step progress of a waiting or reserved service, to persist with its history.
    pub fn progress(&self, service: &str) -> Option<Progress> {
        self.waiting
            .get(service)
            .or_else(|| self.reserved.get(service)?.entry.as_ref())
            .map(Entry::progress)
    }

    /// The agent reserved for a service, if any.
    pub fn reserved_agent(&self, service: &str) -> Option<&str> {
        self.reserved.get(service).map(|r| r.agent.as_str())
    }

    // ---- events ----

    fn queued(&mut self, service: QueuedService, now: Timestamp, fx: &mut Vec<Effect>) {
        let id: Id = Arc::from(service.id.as_str());
        if self.waiting.contains_key(&id) || self.active.contains_key(&id) {
            return;
        }
        if let Some(reservation) = self.reserved.get(&id) {
            // Restored from an agent before the service itself: keep the details so that the
            // service can be requeued should the agent log out.
            if reservation.entry.is_none() {
                let entry = self.build_entry(service, id.clone(), now);
                if let Some(reservation) = self.reserved.get_mut(&id) {
                    reservation.entry = Some(entry);
                }
            }
            return;
        }
        let resuming = service.progress.is_some() && !service.entering;
        let mut entry = self.build_entry(service, id, now);
        if !resuming {
            self.enter_step(&mut entry, now, fx);
        }
        self.settle(entry, now, fx);
    }

    fn removed(&mut self, service: &str, now: Timestamp, fx: &mut Vec<Effect>) {
        if let Some(entry) = self.take_waiting(service) {
            self.release_targets(&entry);
        } else if self.reserved.contains_key(service) {
            self.release(service, WHY_SERVICE_REMOVED, now, fx);
        } else if let Some(agent) = self.active.get(service).cloned() {
            // Its record is gone, so no Ended will come: free the capacity now.
            self.ended(service, &agent, now, fx);
        }
    }

    fn agent_updated(&mut self, incoming: Agent, now: Timestamp, fx: &mut Vec<Effect>) {
        let id = incoming.config.id.clone();
        match self.agents.get_mut(&id) {
            Some(agent) => {
                let config_changed = agent.config != incoming.config;
                if agent.state != AgentState::Ready && incoming.state == AgentState::Ready {
                    agent.idle_since = now;
                }
                agent.config = incoming.config;
                agent.state = incoming.state;
                agent.state_since = incoming.state_since;
                agent.reason = incoming.reason;
                if config_changed {
                    self.recompute_membership(&id);
                }
            }
            None => self.add_agent(incoming),
        }
        // Re-index before any requeue below retries routing, so that the agent's new state
        // is what the retry sees.
        self.refresh_agent(&id);
        let logged_out = self
            .agents
            .get(&id)
            .is_some_and(|a| a.state == AgentState::LoggedOut);
        if logged_out {
            let held: Vec<String> = self
                .agents
                .get(&id)
                .map(|a| a.reserved.iter().cloned().collect())
                .unwrap_or_default();
            for service in held {
                self.requeue(&service, WHY_LOGGED_OUT, now, fx);
            }
        }
        self.refresh_agent(&id);
        self.route_agent(&id, now, fx);
    }

    /// A new agent is taken as given; reservations and interactions it carries are
    /// registered, unless the router already has the service elsewhere.
    fn add_agent(&mut self, mut agent: Agent) {
        let id = agent.config.id.clone();
        let claimed: Vec<String> = agent.reserved.iter().cloned().collect();
        for service in claimed {
            let key: Id = Arc::from(service.as_str());
            if let Some(entry) = self.take_waiting(&service) {
                self.reserved.insert(
                    key,
                    Reservation {
                        agent: id.clone(),
                        entry: Some(entry),
                    },
                );
            } else if self.reserved.contains_key(&key) || self.active.contains_key(&key) {
                // The router's own view wins: the service is already held elsewhere.
                agent.reserved.remove(&service);
            } else {
                self.reserved.insert(
                    key,
                    Reservation {
                        agent: id.clone(),
                        entry: None,
                    },
                );
            }
        }
        for service in agent.active.values().flatten() {
            self.active.insert(Arc::from(service.as_str()), id.clone());
        }
        self.agents.insert(id.clone(), agent);
        self.recompute_membership(&id);
    }

    fn agent_removed(&mut self, id: &str, now: Timestamp, fx: &mut Vec<Effect>) {
        let Some(agent) = self.agents.remove(id) else {
            return;
        };
        self.refresh_agent(id);
        self.targets.forget_agent(id);
        for service in agent.active.values().flatten() {
            self.active.remove(service.as_str());
        }
        for service in &agent.reserved {
            self.requeue(service, WHY_AGENT_REMOVED, now, fx);
        }
    }

    fn started(&mut self, service: &str, agent_id: &str, now: Timestamp, fx: &mut Vec<Effect>) {
        if self.reserved.get(service).map(|r| r.agent.as_str()) != Some(agent_id) {
            return;
        }
        let Some((id, reservation)) = self.reserved.remove_entry(service) else {
            return;
        };
        let media = reservation.entry.as_ref().map(|e| e.media.clone());
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.reserved.remove(service);
            if let Some(media) = &media {
                agent
                    .active
                    .entry(media.clone())
                    .or_default()
                    .insert(service.to_owned());
            }
        }
        // Without its details (a restored reservation never queued again) the media is
        // unknown, so no capacity can be counted for it.
        if media.is_some() {
            self.active.insert(id, agent_id.to_owned());
        }
        if let Some(entry) = reservation.entry {
            self.release_targets(&entry);
        }
        self.refresh_agent(agent_id);
        self.route_agent(agent_id, now, fx);
    }

    fn ended(&mut self, service: &str, agent_id: &str, now: Timestamp, fx: &mut Vec<Effect>) {
        if self.active.get(service).map(String::as_str) == Some(agent_id) {
            self.active.remove(service);
        }
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        let mut freed = false;
        for services in agent.active.values_mut() {
            freed |= services.remove(service);
        }
        agent.active.retain(|_, services| !services.is_empty());
        if freed {
            agent.idle_since = now;
        }
        self.refresh_agent(agent_id);
        self.route_agent(agent_id, now, fx);
    }

    // ---- services ----

    /// Interns the service's targets and places it at its first step, or where its progress
    /// says; progress from an older `_target` list is clamped to the current one.
    fn build_entry(&mut self, service: QueuedService, id: Id, now: Timestamp) -> Entry {
        let steps: Vec<Step> = service
            .targets
            .steps()
            .iter()
            .map(|step| Step {
                key: self.intern(&step.target),
                timeout_secs: step.timeout_secs,
                clear: step.clear,
                check: step.check.clone(),
            })
            .collect();
        let (step, step_entered_at, target_set) = match service.progress {
            Some(progress) => {
                let step = progress.step.min(steps.len().saturating_sub(1));
                let mut set: Vec<usize> = Vec::new();
                for i in progress.target_set {
                    if i <= step && !set.contains(&i) {
                        set.push(i);
                    }
                }
                if set.is_empty() {
                    set.push(step);
                }
                (step, progress.step_entered_at, set)
            }
            None => (0, now, vec![0]),
        };
        Entry {
            id,
            vq: service.virtual_queue,
            media: service.media,
            steps,
            queued_at: service.queued_at,
            deadline: service.deadline,
            priority: service.priority,
            step,
            step_entered_at,
            target_set,
            timer: None,
        }
    }

    /// Records the current step as entered at `at`, then skips it and the steps after it for
    /// as long as their statistic check holds. The last step is never skipped.
    fn enter_step(&mut self, entry: &mut Entry, at: Timestamp, fx: &mut Vec<Effect>) {
        loop {
            let Some(step) = entry.steps.get(entry.step) else {
                return;
            };
            let kind = RoutingEventKind::Entered {
                target: step.key.to_string(),
            };
            let check = step.check.clone();
            let key = step.key.clone();
            history(fx, entry, at, kind);
            if entry.is_last_step() {
                return;
            }
            let Some(check) = check else {
                return;
            };
            // The entry is not indexed while it is being evaluated, so StatCallsWaiting
            // excludes it.
            let value = self.stat_value(&key, check.statistic);
            if !check.holds(value) {
                return;
            }
            let kind = RoutingEventKind::Skipped {
                statistic: check.statistic.name().to_owned(),
                value,
            };
            history(fx, entry, at, kind);
            entry.end_step(at);
        }
    }

    /// Brings an un-indexed service up to `now`: steps whose timeout passed end at the time
    /// they would have (so a late tick or a restart keeps the schedule); the deadline removes
    /// it; otherwise it takes an eligible agent or waits for its next timer.
    fn settle(&mut self, mut entry: Entry, now: Timestamp, fx: &mut Vec<Effect>) {
        loop {
            let (due, why) = entry.next_due();
            if why == Due::Deadline && due <= now {
                history(fx, &entry, due, RoutingEventKind::TimedOut);
                fx.push(Effect::QueueTimedOut {
                    service: entry.id.to_string(),
                });
                self.release_targets(&entry);
                return;
            }
            // A step that is still running, or was entered just now (a zero timeout still
            // gets one look), may take an agent; steps that ended in the past are only
            // recorded.
            if due > now || entry.step_entered_at >= now {
                entry = match self.try_route(entry, now, fx) {
                    Some(entry) => entry,
                    None => return,
                };
            }
            if due > now {
                entry.timer = Some(due);
                self.insert_waiting(entry);
                return;
            }
            history(fx, &entry, due, RoutingEventKind::TimedOut);
            entry.end_step(due);
            self.enter_step(&mut entry, due, fx);
        }
    }

    /// Reserves the longest-idle eligible agent for the service; gives the service back when
    /// there is none.
    fn try_route(&mut self, entry: Entry, now: Timestamp, fx: &mut Vec<Effect>) -> Option<Entry> {
        match self.best_agent_for(&entry) {
            Some(agent) => {
                self.reserve(entry, agent, now, fx);
                None
            }
            None => Some(entry),
        }
    }

    /// The agent idle longest among those available for the service's media and in S.
    fn best_agent_for(&self, entry: &Entry) -> Option<String> {
        let set: Vec<&Interned> = entry
            .set_keys()
            .iter()
            .filter_map(|key| self.targets.get(key))
            .collect();
        self.available
            .longest_idle(&entry.media, |agent| {
                set.iter().any(|t| t.members.contains(agent))
                    // The index is refreshed after every change; checking again costs little
                    // and keeps a missed refresh from ever reserving a busy agent.
                    && self
                        .agents
                        .get(agent)
                        .is_some_and(|a| a.is_available_for(&entry.media))
            })
            .map(str::to_owned)
    }

    fn reserve(
        &mut self,
        mut entry: Entry,
        agent_id: String,
        now: Timestamp,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(agent) = self.agents.get_mut(&agent_id) {
            agent.reserved.insert(entry.id.to_string());
        }
        self.refresh_agent(&agent_id);
        let kind = RoutingEventKind::Reserved {
            agent: agent_id.clone(),
        };
        history(fx, &entry, now, kind);
        fx.push(Effect::Reserved {
            service: entry.id.to_string(),
            agent: agent_id.clone(),
        });
        let waited = now.as_millis().saturating_sub(entry.queued_at.as_millis());
        self.queues
            .entry(entry.vq.clone())
            .or_default()
            .record(now, waited);
        entry.timer = None;
        self.reserved.insert(
            entry.id.clone(),
            Reservation {
                agent: agent_id,
                entry: Some(entry),
            },
        );
    }

    /// Drops a reservation without work: the agent is free again, idle since now, and the
    /// service is gone.
    fn release(&mut self, service: &str, why: &str, now: Timestamp, fx: &mut Vec<Effect>) {
        let Some(reservation) = self.reserved.remove(service) else {
            return;
        };
        let agent_id = reservation.agent;
        if let Some(agent) = self.agents.get_mut(&agent_id) {
            agent.reserved.remove(service);
            agent.idle_since = now;
        }
        let step = reservation.entry.as_ref().map_or(0, Entry::step_number);
        fx.push(released(service, step, &agent_id, why, now));
        if let Some(entry) = reservation.entry {
            self.release_targets(&entry);
        }
        self.refresh_agent(&agent_id);
        self.route_agent(&agent_id, now, fx);
    }

    /// The reserved agent is gone: the service goes back to its place (original queue time
    /// and progress) and routing is retried at once.
    fn requeue(&mut self, service: &str, why: &str, now: Timestamp, fx: &mut Vec<Effect>) {
        let Some(reservation) = self.reserved.remove(service) else {
            return;
        };
        let agent_id = reservation.agent;
        if let Some(agent) = self.agents.get_mut(&agent_id) {
            agent.reserved.remove(service);
        }
        let step = reservation.entry.as_ref().map_or(0, Entry::step_number);
        fx.push(released(service, step, &agent_id, why, now));
        fx.push(Effect::Requeued {
            service: service.to_owned(),
            agent: agent_id,
        });
        // Without details (a restored reservation whose service was never queued again) the
        // router forgets it; a later Queued for it is accepted as new.
        if let Some(entry) = reservation.entry {
            self.settle(entry, now, fx);
        }
    }

    /// Handles every timer due by `now`, earliest first.
    fn fire_due_timers(&mut self, now: Timestamp, fx: &mut Vec<Effect>) {
        while let Some((at, id)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            match self.take_waiting(&id) {
                Some(entry) => self.settle(entry, now, fx),
                // Cannot happen (timers belong to waiting services), but never loop forever.
                None => {
                    self.timers.remove(&(at, id));
                }
            }
        }
    }

    // ---- agents ----

    /// Offers a free agent to the best waiting service that can take it: the first, at `now`,
    /// of the lanes of each target the agent is a member of and each media it is free for.
    fn route_agent(&mut self, agent_id: &str, now: Timestamp, fx: &mut Vec<Effect>) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let medias: Vec<&String> = agent
            .config
            .capacity
            .keys()
            .filter(|media| agent.is_available_for(media))
            .collect();
        if medias.is_empty() {
            return;
        }
        let Some(member_of) = self.targets.of_agent(agent_id) else {
            return;
        };
        let best: Option<OrderKey> = self.lanes.first_for(member_of, &medias, now);
        if let Some(best) = best {
            if let Some(entry) = self.take_waiting(&best.id) {
                self.reserve(entry, agent_id.to_owned(), now, fx);
            }
        }
    }

    /// Re-enters an agent in the `available` index after any change to it (or takes it out
    /// when it is gone).
    fn refresh_agent(&mut self, id: &str) {
        self.available.refresh(id, self.agents.get(id));
    }

    /// Recomputes which interned targets an agent belongs to (its configuration is new or
    /// changed).
    fn recompute_membership(&mut self, id: &str) {
        if let Some(agent) = self.agents.get(id) {
            self.targets.recompute(agent);
        }
    }

    // ---- targets ----

    /// Shares one entry per distinct target, computing its members once.
    fn intern(&mut self, target: &Target) -> Id {
        self.targets.intern(target, self.agents.values())
    }

    /// The service no longer needs its targets; targets nobody names are forgotten.
    fn release_targets(&mut self, entry: &Entry) {
        for step in &entry.steps {
            self.targets.release(&step.key);
        }
    }

    fn calls_waiting(&self, key: &str) -> i64 {
        i64::try_from(self.lanes.calls_waiting(key)).unwrap_or(i64::MAX)
    }

    /// One statistic of an interned target, from its memoized members.
    fn stat_value(&self, key: &Id, statistic: Statistic) -> i64 {
        let Some(interned) = self.targets.get(key) else {
            return Stats::default().get(statistic);
        };
        let members = interned.members.iter().filter_map(|a| self.agents.get(a));
        Stats::of(&interned.target, members, self.calls_waiting(key)).get(statistic)
    }

    // ---- the waiting set and its indexes ----

    fn insert_waiting(&mut self, entry: Entry) {
        self.queues.entry(entry.vq.clone()).or_default();
        let keys = entry.set_keys();
        self.lanes.insert(&entry.waiter(&keys));
        if let Some(at) = entry.timer {
            self.timers.insert((at, entry.id.clone()));
        }
        self.waiting.insert(entry.id.clone(), entry);
    }

    /// Takes a waiting service out of the waiting set and every index.
    fn take_waiting(&mut self, id: &str) -> Option<Entry> {
        let (id, entry) = self.waiting.remove_entry(id)?;
        if let Some(at) = entry.timer {
            self.timers.remove(&(at, id.clone()));
        }
        let keys = entry.set_keys();
        self.lanes.remove(&entry.waiter(&keys));
        Some(entry)
    }
}

/// Appends a routing-history effect about the entry's current step.
fn history(fx: &mut Vec<Effect>, entry: &Entry, at: Timestamp, kind: RoutingEventKind) {
    fx.push(Effect::History {
        service: entry.id.to_string(),
        event: RoutingEvent {
            at,
            step: entry.step_number(),
            kind,
        },
    });
}

/// The history effect of a released reservation.
fn released(service: &str, step: u16, agent: &str, why: &str, at: Timestamp) -> Effect {
    Effect::History {
        service: service.to_owned(),
        event: RoutingEvent {
            at,
            step,
            kind: RoutingEventKind::Released {
                agent: agent.to_owned(),
                why: why.to_owned(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::agent::AgentConfig;

    const T0: u64 = 1_700_000_000_000;
    const BILLING: &str = "Billing@StatServer.GA";
    const SUPPORT: &str = "Support@StatServer.GA";
    const SALES: &str = "Sales@StatServer.GA";

    /// `secs` seconds after an arbitrary origin.
    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(T0 + secs * 1000)
    }

    fn secs(t: Timestamp) -> u64 {
        (t.as_millis() - T0) / 1000
    }

    /// A ready agent in `groups`, one chat and one voice at a time, idle since `idle`.
    fn agent(id: &str, groups: &[&str], idle: u64) -> Agent {
        let config = AgentConfig {
            id: id.into(),
            name: id.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            place: None,
            place_groups: Vec::new(),
            skills: BTreeMap::new(),
            capacity: BTreeMap::from([("chat".into(), 1), ("voice".into(), 1)]),
            auto_answer: false,
        };
        let mut agent = Agent::new(config, at(idle));
        agent.state = AgentState::Ready;
        agent
    }

    fn with_state(mut agent: Agent, state: AgentState) -> Agent {
        agent.state = state;
        agent
    }

    /// A chat in `VQ_Billing`, queued at `queued`, with an hour to wait.
    fn service(id: &str, targets: &str, queued: u64) -> QueuedService {
        QueuedService {
            id: id.into(),
            virtual_queue: "VQ_Billing".into(),
            media: "chat".into(),
            targets: TargetList::parse(targets).expect("test targets parse"),
            queued_at: at(queued),
            deadline: at(queued + 3600),
            priority: Priority::default(),
            progress: None,
            entering: false,
        }
    }

    /// A JSON `_target` list of (target, timeout, clear) steps.
    fn steps(list: &[(&str, u64, bool)]) -> String {
        let items: Vec<String> = list
            .iter()
            .map(|(target, timeout, clear)| {
                format!(r#"{{"target":"{target}","timeout":{timeout},"clear":{clear}}}"#)
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    fn router_with(agents: impl IntoIterator<Item = Agent>) -> Router {
        let mut router = Router::new();
        for agent in agents {
            router.handle(Event::AgentUpdated(agent), at(0));
        }
        router
    }

    fn queue(router: &mut Router, service: QueuedService, now: u64) -> Vec<Effect> {
        router.handle(Event::Queued(service), at(now))
    }

    /// Changes the state of an agent the router knows.
    fn set_state(router: &mut Router, id: &str, state: AgentState, now: u64) -> Vec<Effect> {
        let mut agent = router.agent(id).cloned().expect("known agent");
        agent.state = state;
        router.handle(Event::AgentUpdated(agent), at(now))
    }

    fn tick(router: &mut Router, now: u64) -> Vec<Effect> {
        router.handle(Event::Tick, at(now))
    }

    fn reservations(effects: &[Effect]) -> Vec<(String, String)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Reserved { service, agent } => Some((service.clone(), agent.clone())),
                _ => None,
            })
            .collect()
    }

    fn pair(service: &str, agent: &str) -> (String, String) {
        (service.to_owned(), agent.to_owned())
    }

    /// The history effects about one service, as (seconds, step, kind).
    fn history_of(effects: &[Effect], id: &str) -> Vec<(u64, u16, RoutingEventKind)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::History { service, event } if service == id => {
                    Some((secs(event.at), event.step, event.kind.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn entered(target: &str) -> RoutingEventKind {
        RoutingEventKind::Entered {
            target: target.to_owned(),
        }
    }

    fn reserved_kind(agent: &str) -> RoutingEventKind {
        RoutingEventKind::Reserved {
            agent: agent.to_owned(),
        }
    }

    fn released_kind(agent: &str, why: &str) -> RoutingEventKind {
        RoutingEventKind::Released {
            agent: agent.to_owned(),
            why: why.to_owned(),
        }
    }

    #[test]
    fn priority_grows_by_whole_intervals_and_never_overflows() {
        let cases = [
            (
                Priority {
                    base: 3,
                    increment: 0,
                    interval_secs: 10,
                },
                100,
                3,
                "no increment",
            ),
            (
                Priority {
                    base: 3,
                    increment: 5,
                    interval_secs: 0,
                },
                100,
                3,
                "interval 0 never grows",
            ),
            (
                Priority {
                    base: 3,
                    increment: 5,
                    interval_secs: 10,
                },
                9,
                3,
                "before one interval",
            ),
            (
                Priority {
                    base: 3,
                    increment: 5,
                    interval_secs: 10,
                },
                10,
                8,
                "one interval",
            ),
            (
                Priority {
                    base: 3,
                    increment: 5,
                    interval_secs: 10,
                },
                35,
                18,
                "three intervals",
            ),
            (
                Priority {
                    base: -1,
                    increment: -2,
                    interval_secs: 10,
                },
                20,
                -5,
                "negative increment",
            ),
            (
                Priority {
                    base: i64::MAX,
                    increment: 1,
                    interval_secs: 1,
                },
                5,
                i64::MAX,
                "saturates",
            ),
        ];
        for (priority, elapsed, expected, why) in cases {
            assert_eq!(priority.at(at(100), at(100 + elapsed)), expected, "{why}");
        }
        let growing = Priority {
            base: 3,
            increment: 5,
            interval_secs: 10,
        };
        assert_eq!(
            growing.at(at(100), at(50)),
            3,
            "a clock before queued_at counts as no wait"
        );
    }

    #[test]
    fn a_single_target_goes_to_the_longest_idle_ready_agent() {
        let mut router = router_with([
            agent("a", &["Billing"], 30),
            agent("b", &["Billing"], 10),
            agent("c", &["Billing"], 20),
        ]);

        let effects = queue(&mut router, service("s1", BILLING, 100), 100);

        assert_eq!(reservations(&effects), [pair("s1", "b")]);
        assert_eq!(
            history_of(&effects, "s1"),
            [(100, 1, entered(BILLING)), (100, 1, reserved_kind("b"))]
        );
        assert_eq!(router.reserved_agent("s1"), Some("b"));
        assert!(router.agent("b").is_some_and(|b| b.reserved.contains("s1")));
        let effects = queue(&mut router, service("s2", BILLING, 101), 101);
        assert_eq!(
            reservations(&effects),
            [pair("s2", "c")],
            "next longest idle"
        );
    }

    #[test]
    fn ties_in_idle_time_go_to_the_smallest_agent_id() {
        let mut router = router_with([
            agent("zed", &["Billing"], 10),
            agent("amy", &["Billing"], 10),
            agent("max", &["Billing"], 10),
        ]);

        let effects = queue(&mut router, service("s1", BILLING, 100), 100);

        assert_eq!(reservations(&effects), [pair("s1", "amy")]);
    }

    #[test]
    fn only_a_ready_member_with_free_capacity_and_no_reservation_is_eligible() {
        let busy = {
            let mut a = agent("a", &["Billing"], 0);
            a.active
                .entry("chat".into())
                .or_default()
                .insert("other".into());
            a
        };
        let reserved = {
            let mut a = agent("a", &["Billing"], 0);
            a.reserved.insert("other".into());
            a
        };
        let voice_only = {
            let mut a = agent("a", &["Billing"], 0);
            a.config.capacity = BTreeMap::from([("voice".into(), 1)]);
            a
        };
        let cases = [
            (agent("a", &["Billing"], 0), true, "ready member"),
            (busy, false, "busy: chat capacity used"),
            (
                with_state(agent("a", &["Billing"], 0), AgentState::NotReady),
                false,
                "not ready",
            ),
            (
                with_state(agent("a", &["Billing"], 0), AgentState::LoggedOut),
                false,
                "logged out",
            ),
            (reserved, false, "already holds a reservation"),
            (voice_only, false, "no capacity for chat"),
            (agent("a", &["Support"], 0), false, "not in the target"),
        ];
        for (candidate, eligible, why) in cases {
            let mut router = router_with([candidate]);

            let effects = queue(&mut router, service("s1", BILLING, 10), 10);

            let expected = if eligible {
                vec![pair("s1", "a")]
            } else {
                Vec::new()
            };
            assert_eq!(reservations(&effects), expected, "{why}");
            let position = if eligible { None } else { Some((1, 1)) };
            assert_eq!(router.position("s1", at(10)), position, "{why}");
        }
    }

    #[test]
    fn an_agent_with_capacity_two_takes_two_chats() {
        let mut two = agent("a", &["Billing"], 0);
        two.config.capacity = BTreeMap::from([("chat".into(), 2)]);
        let mut router = router_with([two]);

        let first = queue(&mut router, service("s1", BILLING, 1), 1);
        let second = queue(&mut router, service("s2", BILLING, 2), 2);
        let third = queue(&mut router, service("s3", BILLING, 3), 3);
        assert_eq!(reservations(&first), [pair("s1", "a")]);
        assert!(
            reservations(&second).is_empty(),
            "one reservation at a time"
        );

        let started = router.handle(
            Event::Started {
                service: "s1".into(),
                agent: "a".into(),
            },
            at(4),
        );
        assert_eq!(
            reservations(&started),
            [pair("s2", "a")],
            "one chat active, room for one more"
        );
        let started = router.handle(
            Event::Started {
                service: "s2".into(),
                agent: "a".into(),
            },
            at(5),
        );
        assert!(
            reservations(&started).is_empty(),
            "two chats fill a capacity of 2"
        );
        assert!(reservations(&third).is_empty());
        assert_eq!(router.agent("a").map(|a| a.active_count("chat")), Some(2));

        let ended = router.handle(
            Event::Ended {
                service: "s1".into(),
                agent: "a".into(),
            },
            at(9),
        );
        assert_eq!(reservations(&ended), [pair("s3", "a")]);
        assert_eq!(router.agent("a").map(|a| a.idle_since), Some(at(9)));
    }

    /// A two-step list whose first step checks `check` on Billing.
    fn checked(check: &str, clear: bool) -> String {
        format!(
            r#"[{{"target":"{BILLING}","timeout":30,"clear":{clear},{check}}},{{"target":"{SUPPORT}"}}]"#
        )
    }

    #[test]
    fn a_step_whose_statistic_holds_is_skipped_with_the_observed_value() {
        let cases = [
            (
                r#""stat_to_check":"RStatAgentsReady","stat_operator":"<","stat_value":1"#,
                Some(("RStatAgentsReady", 0)),
            ),
            (
                r#""stat_to_check":"RStatAgentsTotal","stat_operator":">","stat_value":1"#,
                Some(("RStatAgentsTotal", 2)),
            ),
            (
                r#""stat_to_check":"RStatAgentsTotal","stat_operator":">","stat_value":2"#,
                None,
            ),
            (
                r#""stat_to_check":"RStatAgentsReadychat","stat_operator":"<","stat_value":0"#,
                None,
            ),
        ];
        for (check, skipped) in cases {
            // Two Billing agents logged in, neither ready: nobody takes the service.
            let mut router = router_with([
                with_state(agent("a", &["Billing"], 0), AgentState::NotReady),
                with_state(agent("b", &["Billing"], 0), AgentState::NotReady),
            ]);

            let effects = queue(&mut router, service("s1", &checked(check, false), 100), 100);

            let history = history_of(&effects, "s1");
            match skipped {
                Some((statistic, value)) => {
                    let skip = RoutingEventKind::Skipped {
                        statistic: statistic.into(),
                        value,
                    };
                    assert_eq!(
                        history,
                        [
                            (100, 1, entered(BILLING)),
                            (100, 1, skip),
                            (100, 2, entered(SUPPORT))
                        ],
                        "{check}"
                    );
                    assert_eq!(
                        router.next_wakeup(),
                        Some(at(3700)),
                        "{check}: last step waits for the deadline"
                    );
                }
                None => {
                    assert_eq!(history, [(100, 1, entered(BILLING))], "{check}");
                    assert_eq!(
                        router.next_wakeup(),
                        Some(at(130)),
                        "{check}: waits out the step"
                    );
                }
            }
        }
    }

    #[test]
    fn the_last_step_is_never_skipped_even_when_its_check_holds() {
        let check = r#""stat_to_check":"RStatAgentsReady","stat_operator":"<","stat_value":1"#;
        let list = format!(
            r#"[{{"target":"{BILLING}","timeout":30,{check}}},{{"target":"{SUPPORT}",{check}}}]"#
        );
        let mut router = Router::new();

        let effects = queue(&mut router, service("s1", &list, 0), 0);

        let skip = RoutingEventKind::Skipped {
            statistic: "RStatAgentsReady".into(),
            value: 0,
        };
        assert_eq!(
            history_of(&effects, "s1"),
            [
                (0, 1, entered(BILLING)),
                (0, 1, skip),
                (0, 2, entered(SUPPORT))
            ],
            "step 1 skipped, step 2 entered and kept"
        );
        assert_eq!(router.position("s1", at(0)), Some((1, 1)));
    }

    #[test]
    fn calls_waiting_excludes_the_service_being_evaluated() {
        let check = r#""stat_to_check":"StatCallsWaiting","stat_operator":">","stat_value":0"#;
        let list = checked(check, true);
        let mut router = Router::new();

        let first = queue(&mut router, service("s1", &list, 0), 0);
        let second = queue(&mut router, service("s2", &list, 1), 1);

        assert_eq!(
            history_of(&first, "s1"),
            [(0, 1, entered(BILLING))],
            "alone: 0 waiting"
        );
        let skip = RoutingEventKind::Skipped {
            statistic: "StatCallsWaiting".into(),
            value: 1,
        };
        assert_eq!(
            history_of(&second, "s2"),
            [
                (1, 1, entered(BILLING)),
                (1, 1, skip),
                (1, 2, entered(SUPPORT))
            ],
            "s1 waits for Billing"
        );
        let billing = Target::parse(BILLING).expect("target");
        let support = Target::parse(SUPPORT).expect("target");
        assert_eq!(
            router.stats(&billing).calls_waiting,
            1,
            "s2 cleared Billing from its set"
        );
        assert_eq!(router.stats(&support).calls_waiting, 1);
    }

    #[test]
    fn step_timeouts_move_to_the_next_step_at_their_scheduled_time() {
        let list = steps(&[
            (BILLING, 30, false),
            (SUPPORT, 60, false),
            (SALES, 0, false),
        ]);
        let mut router = Router::new();
        queue(&mut router, service("s1", &list, 100), 100);
        assert_eq!(router.next_wakeup(), Some(at(130)));

        let early = tick(&mut router, 129);
        let late = tick(&mut router, 131);

        assert!(early.is_empty(), "nothing due yet");
        assert_eq!(
            history_of(&late, "s1"),
            [
                (130, 1, RoutingEventKind::TimedOut),
                (130, 2, entered(SUPPORT))
            ],
            "recorded when due, not when the tick came"
        );
        assert_eq!(
            router.next_wakeup(),
            Some(at(190)),
            "step 2 counts from 130"
        );
        let effects = tick(&mut router, 190);
        assert_eq!(
            history_of(&effects, "s1"),
            [
                (190, 2, RoutingEventKind::TimedOut),
                (190, 3, entered(SALES))
            ]
        );
        assert_eq!(router.next_wakeup(), Some(at(3700)));
        assert_eq!(
            router.progress("s1"),
            Some(Progress {
                step: 2,
                step_entered_at: at(190),
                target_set: vec![0, 1, 2]
            })
        );
    }

    #[test]
    fn clear_true_replaces_the_target_set_and_clear_false_expands_it() {
        for clear in [false, true] {
            let list = steps(&[(BILLING, 30, clear), (SUPPORT, 0, false)]);
            let mut router = router_with([with_state(
                agent("b", &["Billing"], 0),
                AgentState::NotReady,
            )]);
            queue(&mut router, service("s1", &list, 0), 0);
            tick(&mut router, 30);

            let effects = set_state(&mut router, "b", AgentState::Ready, 40);

            let (expected, set) = if clear {
                (Vec::new(), vec![1])
            } else {
                (vec![pair("s1", "b")], vec![0, 1])
            };
            assert_eq!(
                reservations(&effects),
                expected,
                "clear={clear}: a Billing agent in step 2"
            );
            assert_eq!(
                router.progress("s1").map(|p| p.target_set),
                Some(set),
                "clear={clear}"
            );
        }
    }

    #[test]
    fn a_fifteen_step_list_is_walked_to_the_end() {
        let names: Vec<String> = (1..=15).map(|i| format!("G{i}@StatServer.GA")).collect();
        let list: Vec<(&str, u64, bool)> = names.iter().map(|n| (n.as_str(), 10, true)).collect();
        let mut router = router_with([
            with_state(agent("first", &["G1"], 0), AgentState::NotReady),
            with_state(agent("last", &["G15"], 0), AgentState::NotReady),
        ]);
        let mut effects = queue(&mut router, service("s1", &steps(&list), 0), 0);

        let mut ticks = 0;
        while let Some(due) = router.next_wakeup().filter(|due| *due < at(3600)) {
            effects.extend(router.handle(Event::Tick, due));
            ticks += 1;
        }

        assert_eq!(ticks, 14, "one tick per step timeout");
        let history = history_of(&effects, "s1");
        assert_eq!(history.len(), 15 + 14, "15 entered, 14 timed out");
        assert_eq!(history.last(), Some(&(140, 15, entered(&names[14]))));
        assert_eq!(
            router.progress("s1").map(|p| (p.step, p.target_set)),
            Some((14, vec![14]))
        );
        let effects = set_state(&mut router, "first", AgentState::Ready, 150);
        assert!(reservations(&effects).is_empty(), "G1 was cleared long ago");
        let effects = set_state(&mut router, "last", AgentState::Ready, 160);
        assert_eq!(reservations(&effects), [pair("s1", "last")]);
        assert_eq!(
            history_of(&effects, "s1"),
            [(160, 15, reserved_kind("last"))]
        );
    }

    #[test]
    fn the_queue_times_out_at_the_deadline() {
        // (list, deadline after queueing, step in force at the deadline)
        let cases = [
            (
                steps(&[(BILLING, 10, false), (SUPPORT, 0, false)]),
                60,
                2,
                "last step waits for it",
            ),
            (
                steps(&[(BILLING, 100, false), (SUPPORT, 0, false)]),
                60,
                1,
                "deadline cuts a step short",
            ),
            (BILLING.to_owned(), 60, 1, "single target"),
        ];
        for (list, ttl, step, why) in cases {
            let mut router = Router::new();
            let mut s1 = service("s1", &list, 0);
            s1.deadline = at(ttl);
            queue(&mut router, s1, 0);

            let before = tick(&mut router, ttl - 1);
            let after = tick(&mut router, ttl);

            assert!(
                !before.contains(&Effect::QueueTimedOut {
                    service: "s1".into()
                }),
                "{why}"
            );
            assert!(
                after.contains(&Effect::QueueTimedOut {
                    service: "s1".into()
                }),
                "{why}"
            );
            assert_eq!(
                history_of(&after, "s1").last(),
                Some(&(ttl, step, RoutingEventKind::TimedOut)),
                "{why}"
            );
            assert_eq!(
                router.position("s1", at(ttl)),
                None,
                "{why}: gone from the queue"
            );
            assert_eq!(router.next_wakeup(), None, "{why}");
            assert_eq!(router.queues(at(ttl))[0].waiting, 0, "{why}");
        }
    }

    #[test]
    fn higher_priority_gets_a_freed_agent_first() {
        let mut router = router_with([with_state(
            agent("b", &["Billing"], 0),
            AgentState::NotReady,
        )]);
        queue(&mut router, service("low", BILLING, 0), 0);
        let mut high = service("high", BILLING, 10);
        high.priority.base = 5;
        queue(&mut router, high, 10);

        assert_eq!(router.position("high", at(15)), Some((1, 2)));
        assert_eq!(router.position("low", at(15)), Some((2, 2)));
        let effects = set_state(&mut router, "b", AgentState::Ready, 20);

        assert_eq!(reservations(&effects), [pair("high", "b")]);
    }

    #[test]
    fn a_growing_priority_overtakes_a_fixed_one_once_it_is_higher() {
        // "grow" starts at 0 and gains 2 every 10 s; "fixed" stays at 5.
        let cases = [(20, "fixed"), (25, "fixed"), (30, "grow"), (100, "grow")];
        for (free_at, winner) in cases {
            let mut router = router_with([with_state(
                agent("b", &["Billing"], 0),
                AgentState::NotReady,
            )]);
            let mut grow = service("grow", BILLING, 0);
            grow.priority = Priority {
                base: 0,
                increment: 2,
                interval_secs: 10,
            };
            let mut fixed = service("fixed", BILLING, 10);
            fixed.priority.base = 5;
            queue(&mut router, grow, 0);
            queue(&mut router, fixed, 10);

            assert_eq!(
                router.position(winner, at(free_at)),
                Some((1, 2)),
                "at {free_at}"
            );
            let effects = set_state(&mut router, "b", AgentState::Ready, free_at);

            assert_eq!(reservations(&effects), [pair(winner, "b")], "at {free_at}");
        }
    }

    #[test]
    fn rising_falling_and_fixed_priorities_are_ordered_at_the_moment_asked() {
        // rise: 0 +2 every 10 s from 0; rise2: the same class from 5; fixed: 5;
        // fall: 10 -3 every 10 s from 0.
        let cases = [
            (10, ["fall", "fixed", "rise", "rise2"]),
            (30, ["rise", "fixed", "rise2", "fall"]),
            (35, ["rise", "rise2", "fixed", "fall"]),
            (40, ["rise", "rise2", "fixed", "fall"]),
        ];
        for (now, order) in cases {
            let mut router = router_with([with_state(
                agent("b", &["Billing"], 0),
                AgentState::NotReady,
            )]);
            let rising = Priority {
                base: 0,
                increment: 2,
                interval_secs: 10,
            };
            for (id, queued, priority) in [
                ("rise", 0, rising),
                ("rise2", 5, rising),
                (
                    "fixed",
                    10,
                    Priority {
                        base: 5,
                        ..Priority::default()
                    },
                ),
                (
                    "fall",
                    0,
                    Priority {
                        base: 10,
                        increment: -3,
                        interval_secs: 10,
                    },
                ),
            ] {
                let mut s = service(id, BILLING, queued);
                s.priority = priority;
                queue(&mut router, s, 10);
            }

            for (index, id) in order.iter().enumerate() {
                assert_eq!(
                    router.position(id, at(now)),
                    Some((index + 1, 4)),
                    "{id} at {now}"
                );
            }
            let effects = set_state(&mut router, "b", AgentState::Ready, now);
            assert_eq!(reservations(&effects), [pair(order[0], "b")], "at {now}");
        }
    }

    #[test]
    fn equal_priorities_go_by_queue_time_then_by_id() {
        let mut router = router_with([with_state(
            agent("b", &["Billing"], 0),
            AgentState::NotReady,
        )]);
        queue(&mut router, service("s-late", BILLING, 20), 20);
        queue(&mut router, service("s-b", BILLING, 10), 20);
        queue(&mut router, service("s-a", BILLING, 10), 20);

        let order: Vec<_> = ["s-a", "s-b", "s-late"]
            .iter()
            .map(|s| router.position(s, at(30)))
            .collect();
        assert_eq!(order, [Some((1, 3)), Some((2, 3)), Some((3, 3))]);
        let effects = set_state(&mut router, "b", AgentState::Ready, 30);
        assert_eq!(reservations(&effects), [pair("s-a", "b")]);
    }

    #[test]
    fn an_agent_going_not_ready_keeps_its_reservation() {
        let mut router = router_with([agent("b", &["Billing"], 0)]);
        queue(&mut router, service("s1", BILLING, 0), 0);

        let effects = set_state(&mut router, "b", AgentState::NotReady, 10);

        assert!(effects.is_empty(), "{effects:?}");
        assert_eq!(router.reserved_agent("s1"), Some("b"));
        router.handle(
            Event::Started {
                service: "s1".into(),
                agent: "b".into(),
            },
            at(20),
        );
        assert_eq!(router.agent("b").map(|b| b.active_count("chat")), Some(1));
    }

    #[test]
    fn an_agent_logging_out_requeues_its_service_at_the_original_place() {
        let mut router = router_with([agent("b", &["Billing"], 0)]);
        queue(
            &mut router,
            service(
                "s1",
                &steps(&[(BILLING, 600, false), (SUPPORT, 0, false)]),
                0,
            ),
            0,
        );
        queue(&mut router, service("s2", BILLING, 10), 10);
        let before = router.progress("s1");

        let effects = set_state(&mut router, "b", AgentState::LoggedOut, 20);

        assert_eq!(
            history_of(&effects, "s1"),
            [(20, 1, released_kind("b", WHY_LOGGED_OUT))]
        );
        assert!(effects.contains(&Effect::Requeued {
            service: "s1".into(),
            agent: "b".into()
        }));
        assert_eq!(router.reserved_agent("s1"), None);
        assert_eq!(
            router.position("s1", at(20)),
            Some((1, 2)),
            "ahead of s2, queued later"
        );
        assert_eq!(router.progress("s1"), before, "same step and step time");
        assert_eq!(
            router.next_wakeup(),
            Some(at(600)),
            "the step timeout still counts from 0"
        );
        let effects = router.handle(Event::AgentUpdated(agent("c", &["Billing"], 5)), at(30));
        assert_eq!(reservations(&effects), [pair("s1", "c")]);
    }

    #[test]
    fn removing_a_reserved_agent_requeues_its_service_and_retries_at_once() {
        let mut router = router_with([agent("b", &["Billing"], 0)]);
        queue(&mut router, service("s1", BILLING, 0), 0);
        router.handle(Event::AgentUpdated(agent("c", &["Billing"], 5)), at(5));

        let effects = router.handle(Event::AgentRemoved { agent: "b".into() }, at(10));

        assert_eq!(
            history_of(&effects, "s1"),
            [
                (10, 1, released_kind("b", WHY_AGENT_REMOVED)),
                (10, 1, reserved_kind("c"))
            ]
        );
        assert!(effects.contains(&Effect::Requeued {
            service: "s1".into(),
            agent: "b".into()
        }));
        assert!(router.agent("b").is_none());
    }

    #[test]
    fn releasing_an_unconfirmed_reservation_frees_the_agent_for_the_next_service() {
        let mut router = router_with([agent("b", &["Billing"], 0)]);
        queue(&mut router, service("s1", BILLING, 0), 0);
        queue(&mut router, service("s2", BILLING, 1), 1);

        let effects = router.handle(
            Event::Released {
                service: "s1".into(),
            },
            at(50),
        );

        assert_eq!(
            history_of(&effects, "s1"),
            [(50, 1, released_kind("b", WHY_NOT_CONFIRMED))]
        );
        assert_eq!(reservations(&effects), [pair("s2", "b")]);
        assert_eq!(router.agent("b").map(|b| b.idle_since), Some(at(50)));
        assert_eq!(
            router.progress("s1"),
            None,
            "s1 does not return to the queue"
        );
        assert_eq!(router.position("s1", at(50)), None);
    }

    #[test]
    fn an_ended_interaction_frees_capacity_and_resets_idle_time() {
        let mut router = router_with([agent("b", &["Billing"], 0)]);
        queue(&mut router, service("s1", BILLING, 0), 0);
        router.handle(
            Event::Started {
                service: "s1".into(),
                agent: "b".into(),
            },
            at(10),
        );
        let busy = queue(&mut router, service("s2", BILLING, 20), 20);
        assert!(reservations(&busy).is_empty(), "chat capacity 1 is used");

        let effects = router.handle(
            Event::Ended {
                service: "s1".into(),
                agent: "b".into(),
            },
            at(80),
        );

        assert_eq!(reservations(&effects), [pair("s2", "b")]);
        assert_eq!(
            router
                .agent("b")
                .map(|b| (b.active_count("chat"), b.idle_since)),
            Some((0, at(80)))
        );
    }

    #[test]
    fn removing_a_service_takes_it_out_of_the_queue_or_releases_its_agent() {
        let mut router = router_with([agent("b", &["Billing"], 0)]);
        queue(&mut router, service("s1", BILLING, 0), 0);
        queue(
            &mut router,
            service(
                "s2",
                &steps(&[(BILLING, 30, false), (SUPPORT, 0, false)]),
                1,
            ),
            1,
        );
        queue(&mut router, service("s3", BILLING, 2), 2);

        let waiting = router.handle(
            Event::Removed {
                service: "s2".into(),
            },
            at(5),
        );
        let reserved = router.handle(
            Event::Removed {
                service: "s1".into(),
            },
            at(6),
        );

        assert!(waiting.is_empty(), "{waiting:?}");
        assert_eq!(router.position("s2", at(5)), None);
        assert_eq!(
            history_of(&reserved, "s1"),
            [(6, 1, released_kind("b", WHY_SERVICE_REMOVED))]
        );
        assert_eq!(reservations(&reserved), [pair("s3", "b")]);
        assert_eq!(router.next_wakeup(), None, "nothing waits any more");
        let billing = Target::parse(BILLING).expect("target");
        assert_eq!(router.stats(&billing).calls_waiting, 0);
    }

    #[test]
    fn a_restart_keeps_the_step_and_its_remaining_time() {
        let list = steps(&[
            (BILLING, 30, false),
            (SUPPORT, 60, false),
            (SALES, 0, false),
        ]);
        let mut before = Router::new();
        queue(&mut before, service("s1", &list, 0), 0);
        tick(&mut before, 30);
        let progress = before.progress("s1");
        assert_eq!(
            progress.as_ref().map(|p| (p.step, p.step_entered_at)),
            Some((1, at(30)))
        );

        let mut after = Router::new();
        let mut resumed = service("s1", &list, 0);
        resumed.progress = progress;
        let effects = queue(&mut after, resumed, 50);

        assert!(effects.is_empty(), "nothing to record: {effects:?}");
        assert_eq!(
            after.next_wakeup(),
            Some(at(90)),
            "40 s of step 2 left, not 60"
        );
        assert_eq!(after.position("s1", at(50)), Some((1, 1)));
        let effects = tick(&mut after, 90);
        assert_eq!(
            history_of(&effects, "s1"),
            [(90, 2, RoutingEventKind::TimedOut), (90, 3, entered(SALES))]
        );
    }

    #[test]
    fn a_service_entering_with_its_stored_start_records_its_first_step_and_keeps_that_start() {
        // A create stores the start of the walk at its creation (0 s); the router sees it a
        // moment later (2 s) and must record the step as entered, timed from the creation.
        let list = steps(&[(BILLING, 30, false), (SUPPORT, 60, false)]);
        let start = Progress {
            step: 0,
            step_entered_at: at(0),
            target_set: vec![0],
        };
        let mut router = Router::new();
        let mut created = service("s1", &list, 0);
        created.progress = Some(start.clone());
        created.entering = true;

        let effects = queue(&mut router, created, 2);

        assert_eq!(history_of(&effects, "s1"), [(2, 1, entered(BILLING))]);
        assert_eq!(
            router.progress("s1"),
            Some(start),
            "the progress already stored: nothing to write back"
        );
        assert_eq!(router.next_wakeup(), Some(at(30)), "30 s from the creation");
    }

    #[test]
    fn a_restart_catches_up_steps_that_timed_out_while_stopped() {
        let list = steps(&[(BILLING, 30, false), (SUPPORT, 60, true), (SALES, 0, false)]);
        let mut router = router_with([agent("s", &["Sales"], 0), agent("b", &["Billing"], 0)]);
        let mut resumed = service("s1", &list, 0);
        resumed.progress = Some(Progress {
            step: 0,
            step_entered_at: at(0),
            target_set: vec![0],
        });
        // The Billing agent is taken first, so routing happens only after the catch-up.
        router.handle(Event::AgentRemoved { agent: "b".into() }, at(0));

        let effects = queue(&mut router, resumed, 100);

        assert_eq!(
            history_of(&effects, "s1"),
            [
                (30, 1, RoutingEventKind::TimedOut),
                (30, 2, entered(SUPPORT)),
                (90, 2, RoutingEventKind::TimedOut),
                (90, 3, entered(SALES)),
                (100, 3, reserved_kind("s")),
            ]
        );
        assert_eq!(
            router.progress("s1"),
            Some(Progress {
                step: 2,
                step_entered_at: at(90),
                target_set: vec![2]
            })
        );

        let mut expired = service("s2", &list, 0);
        expired.deadline = at(60);
        expired.progress = Some(Progress {
            step: 0,
            step_entered_at: at(0),
            target_set: vec![0],
        });
        let effects = queue(&mut router, expired, 100);
        assert!(effects.contains(&Effect::QueueTimedOut {
            service: "s2".into()
        }));
        assert_eq!(
            history_of(&effects, "s2"),
            [
                (30, 1, RoutingEventKind::TimedOut),
                (30, 2, entered(SUPPORT)),
                (60, 2, RoutingEventKind::TimedOut),
            ],
            "steps up to the deadline, then the deadline"
        );
    }

    #[test]
    fn progress_that_no_longer_fits_the_target_list_is_clamped() {
        let mut router = Router::new();
        let mut resumed = service(
            "s1",
            &steps(&[(BILLING, 30, false), (SUPPORT, 0, false)]),
            0,
        );
        resumed.progress = Some(Progress {
            step: 9,
            step_entered_at: at(0),
            target_set: vec![7, 0, 0],
        });

        queue(&mut router, resumed, 10);

        assert_eq!(
            router.progress("s1"),
            Some(Progress {
                step: 1,
                step_entered_at: at(0),
                target_set: vec![0]
            })
        );
    }

    #[test]
    fn a_second_queued_for_a_known_service_is_ignored() {
        let mut router = router_with([with_state(
            agent("b", &["Billing"], 0),
            AgentState::NotReady,
        )]);
        queue(&mut router, service("waiting", BILLING, 0), 0);
        let again = queue(&mut router, service("waiting", BILLING, 5), 5);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(router.position("waiting", at(5)), Some((1, 1)));

        set_state(&mut router, "b", AgentState::Ready, 10);
        let again = queue(&mut router, service("waiting", BILLING, 5), 20);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(router.reserved_agent("waiting"), Some("b"));
        assert_eq!(
            router.position("waiting", at(20)),
            None,
            "not queued a second time"
        );
    }

    #[test]
    fn a_reservation_restored_after_a_restart_is_not_routed_again() {
        let held = || {
            let mut b = agent("b", &["Billing"], 0);
            b.reserved.insert("s1".into());
            b
        };
        let mut resumed = service("s1", BILLING, 0);
        resumed.progress = Some(Progress {
            step: 0,
            step_entered_at: at(0),
            target_set: vec![0],
        });

        // Agents first, then services (the documented order).
        let mut router = router_with([held(), agent("c", &["Billing"], 0)]);
        let effects = queue(&mut router, resumed.clone(), 10);
        assert!(effects.is_empty(), "{effects:?}");
        assert_eq!(router.reserved_agent("s1"), Some("b"));
        assert_eq!(
            router.progress("s1").map(|p| p.step),
            Some(0),
            "details kept for a requeue"
        );
        let effects = set_state(&mut router, "b", AgentState::LoggedOut, 20);
        assert_eq!(
            reservations(&effects),
            [pair("s1", "c")],
            "requeued and routed"
        );

        // Services first, then agents.
        let mut router = Router::new();
        queue(&mut router, resumed, 10);
        let effects = router.handle(Event::AgentUpdated(held()), at(10));
        assert!(effects.is_empty(), "{effects:?}");
        assert_eq!(router.reserved_agent("s1"), Some("b"));
        assert_eq!(router.position("s1", at(10)), None);
    }

    #[test]
    fn position_and_total_count_only_the_services_own_virtual_queue() {
        let mut router = Router::new();
        for (id, vq, queued) in [
            ("a1", "A", 0),
            ("b1", "B", 1),
            ("a2", "A", 2),
            ("b2", "B", 3),
            ("a3", "A", 4),
        ] {
            let mut s = service(id, BILLING, queued);
            s.virtual_queue = vq.into();
            queue(&mut router, s, queued);
        }

        let cases = [
            ("a1", (1, 3)),
            ("a2", (2, 3)),
            ("a3", (3, 3)),
            ("b1", (1, 2)),
            ("b2", (2, 2)),
        ];
        for (id, expected) in cases {
            assert_eq!(router.position(id, at(10)), Some(expected), "{id}");
        }
        assert_eq!(router.position("unknown", at(10)), None);
        let summary: Vec<_> = router
            .queues(at(10))
            .into_iter()
            .map(|q| (q.name, q.waiting, q.oldest_wait_secs))
            .collect();
        assert_eq!(summary, [("A".to_owned(), 3, 10), ("B".to_owned(), 2, 9)]);
    }

    #[test]
    fn eta_is_unknown_until_two_departures_then_follows_their_pace() {
        let mut router = router_with([with_state(
            agent("b", &["Billing"], 0),
            AgentState::NotReady,
        )]);
        for id in ["s1", "s2", "s3"] {
            queue(&mut router, service(id, BILLING, 0), 0);
        }
        assert_eq!(router.eta_secs("s1", at(5)), None, "no departures");
        assert_eq!(router.queues(at(5))[0].ewt_secs, None);

        set_state(&mut router, "b", AgentState::Ready, 10);
        assert_eq!(
            router.eta_secs("s2", at(10)),
            None,
            "one departure gives no interval"
        );
        router.handle(
            Event::Started {
                service: "s1".into(),
                agent: "b".into(),
            },
            at(20),
        );
        router.handle(
            Event::Ended {
                service: "s1".into(),
                agent: "b".into(),
            },
            at(40),
        );
        queue(&mut router, service("s4", BILLING, 40), 40);

        assert_eq!(
            router.eta_secs("s3", at(50)),
            Some(30),
            "first in line, one per 30 s"
        );
        assert_eq!(router.eta_secs("s4", at(50)), Some(60), "second in line");
        assert_eq!(router.eta_secs("s2", at(50)), None, "reserved, not waiting");
        let summary = &router.queues(at(50))[0];
        assert_eq!(
            (summary.waiting, summary.oldest_wait_secs, summary.ewt_secs),
            (2, 50, Some(25))
        );
    }

    #[test]
    fn next_wakeup_is_the_earliest_timer() {
        let mut router = Router::new();
        assert_eq!(router.next_wakeup(), None);
        queue(
            &mut router,
            service(
                "s1",
                &steps(&[(BILLING, 30, false), (SUPPORT, 0, false)]),
                0,
            ),
            0,
        );
        queue(
            &mut router,
            service(
                "s2",
                &steps(&[(BILLING, 10, false), (SUPPORT, 0, false)]),
                5,
            ),
            5,
        );
        let mut s3 = service("s3", BILLING, 0);
        s3.deadline = at(100);
        queue(&mut router, s3, 5);

        assert_eq!(router.next_wakeup(), Some(at(15)));
        router.handle(
            Event::Removed {
                service: "s2".into(),
            },
            at(6),
        );
        assert_eq!(router.next_wakeup(), Some(at(30)));
        tick(&mut router, 30);
        assert_eq!(router.next_wakeup(), Some(at(100)), "s3's deadline");
    }

    #[test]
    fn any_event_first_handles_the_timers_that_fell_due() {
        let mut router = Router::new();
        queue(
            &mut router,
            service(
                "s1",
                &steps(&[(BILLING, 30, false), (SUPPORT, 0, false)]),
                0,
            ),
            0,
        );

        let effects = router.handle(Event::AgentUpdated(agent("s", &["Support"], 0)), at(40));

        assert_eq!(
            history_of(&effects, "s1"),
            [
                (30, 1, RoutingEventKind::TimedOut),
                (30, 2, entered(SUPPORT)),
                (40, 2, reserved_kind("s"))
            ]
        );
    }

    #[test]
    fn skill_targets_and_configuration_changes_are_seen_by_routing() {
        let mut english = agent("e", &[], 0);
        english.config.skills = BTreeMap::from([("English".into(), 7)]);
        let mut router = router_with([english, agent("x", &["Support"], 0)]);
        let skill = "?:English>=5@StatServer.GA";

        let by_skill = queue(&mut router, service("s1", skill, 1), 1);
        let waits = queue(&mut router, service("s2", BILLING, 2), 2);

        assert_eq!(reservations(&by_skill), [pair("s1", "e")]);
        assert!(reservations(&waits).is_empty());
        let billing = Target::parse(BILLING).expect("target");
        assert_eq!(
            router.stats(&billing),
            Stats {
                calls_waiting: 1,
                ..Stats::default()
            }
        );
        let mut moved = router.agent("x").cloned().expect("x");
        moved.config.groups = vec!["Billing".into()];
        let effects = router.handle(Event::AgentUpdated(moved), at(3));
        assert_eq!(
            reservations(&effects),
            [pair("s2", "x")],
            "x joined Billing"
        );
        let stats = router.stats(&billing);
        assert_eq!(
            (stats.total, stats.calls_waiting),
            (1, 0),
            "x is a member, s2 left"
        );
    }

    #[test]
    fn a_media_the_agent_cannot_take_does_not_block_another_it_can() {
        let mut router = router_with([with_state(
            agent("b", &["Billing"], 0),
            AgentState::NotReady,
        )]);
        let mut email = service("email", BILLING, 0);
        email.media = "email".into();
        queue(&mut router, email, 0);
        queue(&mut router, service("chat", BILLING, 5), 5);

        let effects = set_state(&mut router, "b", AgentState::Ready, 10);

        assert_eq!(reservations(&effects), [pair("chat", "b")]);
        assert_eq!(router.position("email", at(10)), Some((1, 1)));
    }

    #[test]
    fn events_about_unknown_services_or_agents_change_nothing() {
        let mut router = router_with([agent("b", &["Billing"], 0)]);
        queue(&mut router, service("s1", BILLING, 0), 0);
        let events = [
            Event::Removed {
                service: "nope".into(),
            },
            Event::Released {
                service: "nope".into(),
            },
            Event::Started {
                service: "nope".into(),
                agent: "b".into(),
            },
            Event::Started {
                service: "s1".into(),
                agent: "someone-else".into(),
            },
            Event::Ended {
                service: "nope".into(),
                agent: "b".into(),
            },
            Event::Ended {
                service: "s1".into(),
                agent: "nope".into(),
            },
            Event::AgentRemoved {
                agent: "nope".into(),
            },
            Event::Tick,
        ];
        for event in events {
            let effects = router.handle(event.clone(), at(10));
            assert!(effects.is_empty(), "{event:?}: {effects:?}");
        }
        assert_eq!(router.reserved_agent("s1"), Some("b"));
        assert_eq!(router.agent("b").map(|b| b.idle_since), Some(at(0)));
        assert_eq!(router.agents().count(), 1);
    }
}
