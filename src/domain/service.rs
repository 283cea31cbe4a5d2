//! The service record and its lifecycle (DESIGN.md §4).
//!
//! A *service* is one customer request created from a configured service: a callback, a chat
//! request. This module holds its stored shape and the rules for moving between GMS
//! `_callback_state`s. It performs no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::options::{self, Preset};
use super::time::Timestamp;

/// GMS `_callback_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallbackState {
    /// The desired time is in the future.
    Scheduled,
    /// Waiting in a virtual queue for an agent (or, for immediate chats, for the chat to start).
    Queued,
    /// An agent is found and reserved; waiting for the customer.
    Routing,
    /// An agent is handling the interaction; it can no longer be cancelled.
    Processing,
    /// Finished; `_callback_reason` says how.
    Completed,
}

impl CallbackState {
    /// Every state, in lifecycle order.
    pub const ALL: [CallbackState; 5] = [
        CallbackState::Scheduled,
        CallbackState::Queued,
        CallbackState::Routing,
        CallbackState::Processing,
        CallbackState::Completed,
    ];

    /// The wire name (`QUEUED`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Scheduled => "SCHEDULED",
            CallbackState::Queued => "QUEUED",
            CallbackState::Routing => "ROUTING",
            CallbackState::Processing => "PROCESSING",
            CallbackState::Completed => "COMPLETED",
        }
    }

    /// A one-byte code, stable on disk (used in index keys).
    pub fn code(self) -> u8 {
        match self {
            CallbackState::Scheduled => 1,
            CallbackState::Queued => 2,
            CallbackState::Routing => 3,
            CallbackState::Processing => 4,
            CallbackState::Completed => 5,
        }
    }

    /// The state for a code written by [`CallbackState::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for CallbackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallbackState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a callback state: use one of SCHEDULED, QUEUED, ROUTING, PROCESSING, COMPLETED"
                )
            })
    }
}

/// GMS `_callback_reason`: why a service is COMPLETED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackReason {
    /// The customer cancelled.
    Cancelled,
    /// An administrator cancelled.
    CancelledByAdmin,
    /// `_urs_queued_ttl` passed without an agent.
    FailTimeoutTtl,
    /// The customer did not confirm a reserved agent in time.
    FailUserNoConfirm,
    /// No routing target could be found.
    FailTargetNotFound,
    /// An internal failure.
    FailError,
    /// The interaction reached an agent and ended normally.
    AgentConnected,
    /// The agent could not reach the customer: a wrong number, or no answer (or busy) on
    /// every attempt `_max_dial_attempts` allows (GMS 8.5.102.14+, formerly
    /// `FAIL_USER_UNREACHABLE`).
    FailCallToCustomer,
}

impl CallbackReason {
    /// The wire name (`CANCELLED`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackReason::Cancelled => "CANCELLED",
            CallbackReason::CancelledByAdmin => "CANCELLED_BY_ADMIN",
            CallbackReason::FailTimeoutTtl => "FAIL_TIMEOUT_TTL",
            CallbackReason::FailUserNoConfirm => "FAIL_USER_NO_CONFIRM",
            CallbackReason::FailTargetNotFound => "FAIL_TARGET_NOT_FOUND",
            CallbackReason::FailError => "FAIL_ERROR",
            CallbackReason::AgentConnected => "AGENT_CONNECTED",
            CallbackReason::FailCallToCustomer => "FAIL_CALL_TO_CUSTOMER",
        }
    }
}

impl fmt::Display for CallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a service's state history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// When it happened.
    pub at: Timestamp,
    /// The state entered.
    pub state: CallbackState,
    /// The reason, for COMPLETED.
    pub reason: Option<CallbackReason>,
    /// A short human note ("created", "rescheduled to ...").
    pub note: String,
}

/// One entry of a service's routing history (written by the router).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingEvent {
    /// When it happened.
    pub at: Timestamp,
    /// 1-based step of the `_target` list, 0 when not about a step.
    pub step: u16,
    /// What happened.
    pub kind: RoutingEventKind,
}

/// What happened in routing. New kinds are only ever appended (stored by position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingEventKind {
    /// The step's target joined the target set.
    Entered { target: String },
    /// The step was skipped because its statistic held.
    Skipped { statistic: String, value: i64 },
    /// The step's timeout passed without an agent.
    TimedOut,
    /// An agent was reserved.
    Reserved { agent: String },
    /// A reservation was released.
    Released { agent: String, why: String },
    /// The agent dialed the customer of a voice callback and recorded how the call went
    /// (`connected`, `no_answer`, `busy`, `wrong_number`); each one is a dial attempt.
    Dialed { agent: String, outcome: String },
}

/// An agent reserved for a service: a `Reserved` routing event, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// When the agent was reserved.
    pub at: Timestamp,
    /// The agent.
    pub agent: String,
}

/// Where a waiting service is in its `_target` list, kept so that routing resumes at the same
/// step, with the same target set and the same remaining step time, after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProgress {
    /// 0-based index of the current step.
    pub step: u16,
    /// When the current step was entered.
    pub step_entered_at: Timestamp,
    /// Indices of the steps whose targets form the current target set.
    pub target_set: Vec<u16>,
}

impl RouteProgress {
    /// The start of the walk: the first step, entered at `at` (when the service entered its
    /// queue), alone in the target set. A service created straight into its queue is stored
    /// with it, so that the router's first step adds routing history only, not a second
    /// write of the record.
    pub fn start(at: Timestamp) -> Self {
        Self {
            step: 0,
            step_entered_at: at,
            target_set: vec![0],
        }
    }

    /// Where the walk is after `history` (a service's routing events in the order they were
    /// appended), for a record that holds this progress since its last reservation or dial
    /// (the events the record keeps, [`ServiceRecord::keeps`], are written with the progress
    /// of their moment). A record that holds the start of its walk is not rewritten when
    /// routing only walks steps (a step skipped by its statistic or timed out): its history
    /// says how far it went, and a restart replays it here. `clears[i]` is the `clear` flag
    /// of step `i`; each step that ended goes to the next as the router's does: `clear`
    /// restarts the target set from the next step, else the next step joins it. Events from
    /// before this progress began (an earlier walk) and events of another step are ignored.
    pub fn replayed(&self, history: &[RoutingEvent], clears: &[bool]) -> RouteProgress {
        self.replay(history, clears).0
    }

    /// How a waiting service stored with this start of a walk resumes after a restart, from
    /// its routing history: `None` when no event of this walk was recorded (the history is
    /// empty or holds an earlier walk's: the process stopped between the write that began the
    /// walk and the router's first one, so the first step is entered again), else where the
    /// walk is ([`RouteProgress::replayed`]) and whether that step must be entered: each
    /// history append is its own write, so a walk whose last event ended a step may have lost
    /// the next step's `Entered`.
    pub fn resumed(
        &self,
        history: &[RoutingEvent],
        clears: &[bool],
    ) -> Option<(RouteProgress, bool)> {
        if !history.iter().any(|event| event.at >= self.step_entered_at) {
            return None;
        }
        Some(self.replay(history, clears))
    }

    /// [`RouteProgress::replayed`], and whether the last event of the history moved the walk.
    fn replay(&self, history: &[RoutingEvent], clears: &[bool]) -> (RouteProgress, bool) {
        let since_kept = history
            .iter()
            .rposition(ServiceRecord::keeps)
            .map_or(0, |i| i + 1);
        let mut progress = self.clone();
        let mut moved_by_last = false;
        for event in &history[since_kept..] {
            moved_by_last = false;
            let ends_step = matches!(
                event.kind,
                RoutingEventKind::Skipped { .. } | RoutingEventKind::TimedOut
            );
            // `current` is the 0-based index of the step the walk is on; `next` is that of the
            // step after it, which is also the 1-based number events give the current one.
            let current = usize::from(progress.step);
            let next = current + 1;
            if !ends_step
                || event.at < self.step_entered_at
                || usize::from(event.step) != next
                || next >= clears.len()
            {
                continue;
            }
            let Ok(next_step) = u16::try_from(next) else {
                break;
            };
            if clears[current] {
                progress.target_set = vec![next_step];
            } else if !progress.target_set.contains(&next_step) {
                progress.target_set.push(next_step);
            }
            progress.step = next_step;
            progress.step_entered_at = event.at;
            moved_by_last = true;
        }
        (progress, moved_by_last)
    }
}

/// What the access check before a request's input reads of a stored service (DESIGN §7):
/// which configured service it belongs to and who may reach it. The store reads it without
/// decoding the rest of the record, since every request that names a service by id asks it
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccess {
    /// The configured service it was created from.
    pub service_name: String,
    /// The `gms_user` it was created with, if any.
    pub owner: Option<String>,
}

/// A stored service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// Unguessable id (UUID v4).
    pub id: String,
    /// The configured service it was created from.
    pub service_name: String,
    /// The configured service's preset.
    pub preset: Preset,
    /// Every option in force for this instance (preset defaults, configuration, request overrides).
    pub options: BTreeMap<String, String>,
    /// Business data: request keys without a leading `_`.
    pub user_data: BTreeMap<String, String>,
    /// The `gms_user` header the service was created with; only that user may see it.
    pub owner: Option<String>,
    /// `_customer_number`.
    pub customer_number: Option<String>,
    /// `_device_os`: the push provider chosen by the customer's app.
    pub device_os: Option<String>,
    /// `_device_notification_id`: where pushes go.
    pub device_notification_id: Option<String>,
    /// Current state.
    pub state: CallbackState,
    /// Why it completed.
    pub reason: Option<CallbackReason>,
    /// Creation time.
    pub created_at: Timestamp,
    /// `_desired_time`, or the creation time.
    pub desired_time: Timestamp,
    /// When the record is removed: `desired_time + _ttl`.
    pub expire_at: Timestamp,
    /// When it entered its virtual queue, if it has.
    pub queued_at: Option<Timestamp>,
    /// Every state entered, oldest first.
    pub state_history: Vec<StateChange>,
    /// The agents reserved for it, oldest first: the `Reserved` events of its routing
    /// history. The history itself (steps entered, skipped, timed out; reservations made and
    /// released; dial outcomes) is appended to the store beside the record, not kept in it,
    /// so that routing progress does not rewrite the record; the record keeps these, which
    /// tell who handled it ([`ServiceRecord::processing_agents`]), by [`ServiceRecord::note_routing`].
    pub reservations: Vec<Reservation>,
    /// Dial attempts recorded so far: the `Dialed` events of its routing history (noted the
    /// same way).
    pub dial_attempts: u32,
    /// The agent reserved for it, if any.
    pub reserved_agent: Option<String>,
    /// The chat session carrying its chat, if started.
    pub chat_session_id: Option<String>,
    /// Routing progress while it waits in a virtual queue.
    pub route: Option<RouteProgress>,
    /// When the customer confirmed the reserved agent (`connect`).
    pub confirmed_at: Option<Timestamp>,
}

/// A lifecycle rule that a request broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The service is being handled by an agent.
    #[error(
        "service {id} is PROCESSING: an agent is handling it, so it can no longer be {action}"
    )]
    Processing {
        /// The service.
        id: String,
        /// "cancelled" or "rescheduled".
        action: &'static str,
    },
    /// The service has already finished.
    #[error("service {id} is already COMPLETED ({reason}): it can no longer be {action}")]
    Completed {
        /// The service.
        id: String,
        /// Its completion reason.
        reason: String,
        /// "cancelled" or "rescheduled".
        action: &'static str,
    },
    /// An agent is already reserved; moving the time would strand them.
    #[error("service {id} is ROUTING: an agent is reserved, so it can no longer be rescheduled; cancel it instead")]
    Routing {
        /// The service.
        id: String,
    },
}

impl ServiceRecord {
    /// Its [`ServiceAccess`].
    pub fn access(&self) -> ServiceAccess {
        ServiceAccess {
            service_name: self.service_name.clone(),
            owner: self.owner.clone(),
        }
    }

    /// A QUEUED service created at `now`, desired now, expiring at `now`, with no options, user
    /// data or history yet: the caller fills in what it knows.
    pub fn new(
        id: impl Into<String>,
        service_name: impl Into<String>,
        preset: Preset,
        now: Timestamp,
    ) -> Self {
        ServiceRecord {
            id: id.into(),
            service_name: service_name.into(),
            preset,
            options: BTreeMap::new(),
            user_data: BTreeMap::new(),
            owner: None,
            customer_number: None,
            device_os: None,
            device_notification_id: None,
            state: CallbackState::Queued,
            reason: None,
            created_at: now,
            desired_time: now,
            expire_at: now,
            queued_at: None,
            state_history: Vec::new(),
            reservations: Vec::new(),
            dial_attempts: 0,
            reserved_agent: None,
            chat_session_id: None,
            route: None,
            confirmed_at: None,
        }
    }

    /// Takes note of routing events appended to the service's history: the reservations and
    /// dial attempts among them, which the record keeps. Returns whether the record changed
    /// (the other kinds live in the history only). The store calls it for every event it
    /// appends, in the same transaction, so that the record and its history agree.
    pub fn note_routing(&mut self, events: &[RoutingEvent]) -> bool {
        let mut changed = false;
        for event in events {
            match &event.kind {
                RoutingEventKind::Reserved { agent } => self.reservations.push(Reservation {
                    at: event.at,
                    agent: agent.clone(),
                }),
                RoutingEventKind::Dialed { .. } => {
                    self.dial_attempts = self.dial_attempts.saturating_add(1);
                }
                _ => continue,
            }
            changed = true;
        }
        changed
    }

    /// Whether the record holds the start of a walk through its `_target` list (its first
    /// step, that step's target alone: [`RouteProgress::start`]), as a create, a scheduled
    /// start, a move to now and a redial store it. Such a record is not rewritten while
    /// routing only walks steps; its routing history says how far it went
    /// ([`RouteProgress::replayed`]).
    pub fn walk_at_start(&self) -> bool {
        self.route
            .as_ref()
            .is_some_and(|route| *route == RouteProgress::start(route.step_entered_at))
    }

    /// Whether the record keeps something of `event` ([`ServiceRecord::note_routing`]): a
    /// reservation or a dial outcome. Other events live in the routing history only.
    pub fn keeps(event: &RoutingEvent) -> bool {
        matches!(
            event.kind,
            RoutingEventKind::Reserved { .. } | RoutingEventKind::Dialed { .. }
        )
    }

    /// True until the service is COMPLETED.
    pub fn is_active(&self) -> bool {
        self.state != CallbackState::Completed
    }

    /// Moves to `state`, recording it in the history. Only the transitions of
    /// [`super::lifecycle`], cancel, reschedule and [`super::voice`] call it: everything else
    /// asks for a transition by name, so a state is never entered from a state that does not
    /// allow it.
    pub(crate) fn enter(
        &mut self,
        state: CallbackState,
        reason: Option<CallbackReason>,
        at: Timestamp,
        note: impl Into<String>,
    ) {
        self.state = state;
        self.reason = reason;
        self.state_history.push(StateChange {
            at,
            state,
            reason,
            note: note.into(),
        });
    }

    /// Cancels the service (customer or administrator).
    ///
    /// # Errors
    /// PROCESSING and COMPLETED services cannot be cancelled.
    pub fn cancel(&mut self, reason: CallbackReason, now: Timestamp) -> Result<(), LifecycleError> {
        self.check_changeable("cancelled")?;
        self.reserved_agent = None;
        self.enter(CallbackState::Completed, Some(reason), now, "cancelled");
        Ok(())
    }

    /// Moves the desired time to `desired` and the expiry time to `expire_at` (see
    /// [`expiry_time`]). A time in the future makes the service SCHEDULED; otherwise it is
    /// QUEUED, and enters its virtual queue now if it waits for an agent.
    ///
    /// # Errors
    /// Only SCHEDULED and QUEUED services can be rescheduled.
    pub fn reschedule(
        &mut self,
        desired: Timestamp,
        expire_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), LifecycleError> {
        self.check_changeable("rescheduled")?;
        if self.state == CallbackState::Routing {
            return Err(LifecycleError::Routing {
                id: self.id.clone(),
            });
        }
        self.desired_time = desired;
        self.expire_at = expire_at;
        let state = if desired > now {
            // Out of its queue until then: it starts its `_target` list afresh at that time.
            self.queued_at = None;
            self.route = None;
            CallbackState::Scheduled
        } else {
            if self.queued_at.is_none() && options::waits_for_agent(&self.options) {
                self.queued_at = Some(now);
                // Into its queue now, stored with the start of its walk as a create is: the
                // router's first step appends history without writing the record again.
                self.route = Some(RouteProgress::start(now));
            }
            CallbackState::Queued
        };
        self.enter(state, None, now, format!("rescheduled to {desired}"));
        Ok(())
    }

    fn check_changeable(&self, action: &'static str) -> Result<(), LifecycleError> {
        match self.state {
            CallbackState::Processing => Err(LifecycleError::Processing {
                id: self.id.clone(),
                action,
            }),
            CallbackState::Completed => Err(LifecycleError::Completed {
                id: self.id.clone(),
                reason: self
                    .reason
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
                action,
            }),
            _ => Ok(()),
        }
    }
}

/// The latest time the GMS ISO form can write: `9999-12-31T23:59:59.999Z`.
pub const LATEST_WRITABLE: Timestamp = Timestamp::from_millis(253_402_300_799_999);

/// The expiry time of a service desired at `desired` with `_ttl` of `ttl_secs`, as seen at
/// `now` (DESIGN.md §4: `desired_time + _ttl`).
///
/// # Errors
/// A message when the service would already be expired (it would vanish right after being
/// acknowledged), or would expire after [`LATEST_WRITABLE`].
pub fn expiry_time(desired: Timestamp, ttl_secs: u64, now: Timestamp) -> Result<Timestamp, String> {
    let expire_at = desired.plus_secs(ttl_secs);
    if expire_at <= now {
        return Err(format!(
            "{desired} is more than the service's _ttl ({ttl_secs} s) in the past, so the service would expire at once: give a later time, or none for now"
        ));
    }
    if expire_at > LATEST_WRITABLE {
        return Err(format!(
            "the service would expire ({desired} + _ttl of {ttl_secs} s) after {LATEST_WRITABLE}, the latest time GMS can write: give an earlier time or a shorter _ttl"
        ));
    }
    Ok(expire_at)
}

/// A `_callback_state` query filter: `QUEUED`, `SCHEDULED,QUEUED`, `!COMPLETED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFilter {
    states: Vec<CallbackState>,
    negated: bool,
}

impl StateFilter {
    /// Parses the filter.
    ///
    /// # Errors
    /// A message naming the unknown state.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        let (negated, list) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let states = list
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<CallbackState>, String>>()?;
        Ok(Self { states, negated })
    }

    /// Whether a service in `state` passes the filter.
    pub fn matches(&self, state: CallbackState) -> bool {
        self.states.contains(&state) != self.negated
    }

    /// Every state that passes the filter.
    pub fn states(&self) -> Vec<CallbackState> {
        CallbackState::ALL
            .into_iter()
            .filter(|s| self.matches(*s))
            .collect()
    }
}

/// The step of a service's `_target` list whose target found its agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundBy {
    /// 1-based step of the `_target` list.
    pub step: u16,
    /// That step's target (`Billing@StatServer.GA`).
    pub target: String,
}

/// The routing step that found `agent` for the current reservation: of the steps entered
/// in that routing round (since the last step 1), the latest whose target `is_member`
/// says the agent belongs to; else the step the reservation was made in. `events` is the
/// service's routing history, oldest first (`Store::routing_history`).
pub fn found_by(
    events: &[RoutingEvent],
    agent: &str,
    is_member: impl Fn(&str) -> bool,
) -> Option<FoundBy> {
    let reserved = events
        .iter()
        .rposition(|e| matches!(&e.kind, RoutingEventKind::Reserved { agent: a } if a == agent))?;
    let mut fallback = None;
    for event in events[..reserved].iter().rev() {
        if let RoutingEventKind::Entered { target } = &event.kind {
            let found = FoundBy {
                step: event.step,
                target: target.clone(),
            };
            if is_member(target) {
                return Some(found);
            }
            if fallback.is_none() && event.step == events[reserved].step {
                fallback = Some(found);
            }
            if event.step <= 1 {
                break;
            }
        }
    }
    fallback
}

impl ServiceRecord {
    /// When the current reservation was made: the last entry into ROUTING.
    pub fn reserved_at(&self) -> Option<Timestamp> {
        self.state_history
            .iter()
            .rev()
            .find(|change| change.state == CallbackState::Routing)
            .map(|change| change.at)
    }

    /// How long the customer waited for the agent of the current reservation, in whole
    /// seconds: from the start of the unbroken QUEUED/ROUTING spell that ends in that
    /// reservation (a requeue after an agent left keeps counting; a redial, which is
    /// SCHEDULED in between, starts a new wait) to the reservation. `None` before any.
    pub fn waited_secs(&self) -> Option<u64> {
        let history = &self.state_history;
        let reserved = history
            .iter()
            .rposition(|change| change.state == CallbackState::Routing)?;
        let waiting = |state| matches!(state, CallbackState::Queued | CallbackState::Routing);
        let start = history[..reserved]
            .iter()
            .rposition(|change| !waiting(change.state))
            .map_or(0, |i| i + 1);
        let queued = history[start..reserved]
            .iter()
            .find(|change| change.state == CallbackState::Queued)?;
        Some(
            history[reserved]
                .at
                .as_millis()
                .saturating_sub(queued.at.as_millis())
                / 1000,
        )
    }

    /// The agent who took each PROCESSING entry of the state history, with that entry's
    /// index, oldest first: the last reservation at or before the entry, else
    /// `reserved_agent`; an entry with neither has no agent and is left out. The desktop's
    /// History (`app::history`) builds its turns from this, and the store's by-agent index
    /// from [`ServiceRecord::handling_agents`], so both name the same agents.
    pub fn processing_agents(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.state_history
            .iter()
            .enumerate()
            .filter(|(_, change)| change.state == CallbackState::Processing)
            .filter_map(|(i, change)| {
                self.reservations
                    .iter()
                    .rev()
                    .find(|reservation| reservation.at <= change.at)
                    .map(|reservation| reservation.agent.as_str())
                    .or(self.reserved_agent.as_deref())
                    .map(|agent| (i, agent))
            })
    }

    /// Every agent who handled this service (took one of its PROCESSING entries), each once,
    /// in byte order.
    pub fn handling_agents(&self) -> Vec<&str> {
        let mut agents: Vec<&str> = self.processing_agents().map(|(_, a)| a).collect();
        agents.sort_unstable();
        agents.dedup();
        agents
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(at: u64, step: u16, kind: RoutingEventKind) -> RoutingEvent {
        RoutingEvent {
            at: Timestamp::from_millis(at),
            step,
            kind,
        }
    }

    fn progress(step: u16, entered: u64, target_set: &[u16]) -> RouteProgress {
        RouteProgress {
            step,
            step_entered_at: Timestamp::from_millis(entered),
            target_set: target_set.to_vec(),
        }
    }

    #[test]
    fn replayed_history_walks_the_steps_as_the_router_did() {
        use RoutingEventKind as K;
        let entered = || K::Entered {
            target: "Billing@StatServer.GA".into(),
        };
        let skipped = || K::Skipped {
            statistic: "RStatAgentsReady".into(),
            value: 0,
        };
        let reserved = || K::Reserved {
            agent: "ann".into(),
        };
        let start = RouteProgress::start(Timestamp::from_millis(100));
        // (case, clear flags of the steps, history, progress after it)
        let cases: Vec<(&str, Vec<bool>, Vec<RoutingEvent>, RouteProgress)> = vec![
            ("no history", vec![false, false], vec![], start.clone()),
            (
                "first step entered only",
                vec![false, false],
                vec![routing(101, 1, entered())],
                start.clone(),
            ),
            (
                "first step skipped at entry: the second joins the set",
                vec![false, false],
                vec![
                    routing(101, 1, entered()),
                    routing(101, 1, skipped()),
                    routing(101, 2, entered()),
                ],
                progress(1, 101, &[0, 1]),
            ),
            (
                "a clear step restarts the set from the next",
                vec![true, false],
                vec![routing(101, 1, entered()), routing(130, 1, K::TimedOut)],
                progress(1, 130, &[1]),
            ),
            (
                "two steps end: the walk is on the third",
                vec![false, true, false],
                vec![
                    routing(101, 1, skipped()),
                    routing(101, 2, entered()),
                    routing(160, 2, K::TimedOut),
                ],
                progress(2, 160, &[2]),
            ),
            (
                "the last step never ends (the queue's deadline completes the service)",
                vec![false, false],
                vec![routing(101, 1, K::TimedOut), routing(900, 2, K::TimedOut)],
                progress(1, 101, &[0, 1]),
            ),
            (
                "events before a reservation were written with it: only later ones count",
                vec![false, false, false],
                vec![
                    routing(101, 1, skipped()),
                    routing(102, 2, reserved()),
                    routing(140, 1, K::TimedOut),
                ],
                progress(1, 140, &[0, 1]),
            ),
            (
                "an earlier walk's events (before this progress began) are ignored",
                vec![false, false],
                vec![routing(50, 1, K::TimedOut)],
                start.clone(),
            ),
            (
                "an event of another step is ignored",
                vec![false, false, false],
                vec![routing(120, 2, K::TimedOut)],
                start.clone(),
            ),
        ];
        for (case, clears, history, expected) in cases {
            assert_eq!(start.replayed(&history, &clears), expected, "{case}");
        }
    }

    #[test]
    fn a_restart_resumes_the_walk_its_history_records_and_enters_a_step_it_may_have_lost() {
        use RoutingEventKind as K;
        let entered = || K::Entered {
            target: "Billing@StatServer.GA".into(),
        };
        let skipped = || K::Skipped {
            statistic: "RStatAgentsReady".into(),
            value: 0,
        };
        let start = RouteProgress::start(Timestamp::from_millis(100));
        let clears = [false, false];
        // (case, history, how it resumes: None = enter the first step again)
        type Resumed = Option<(RouteProgress, bool)>;
        let cases: Vec<(&str, Vec<RoutingEvent>, Resumed)> = vec![
            ("nothing recorded", vec![], None),
            (
                "only an earlier walk's events",
                vec![routing(40, 1, entered()), routing(50, 1, K::TimedOut)],
                None,
            ),
            (
                "the first step entered: resumes there",
                vec![routing(101, 1, entered())],
                Some((start.clone(), false)),
            ),
            (
                "the first step skipped, the second's Entered lost: enters the second",
                vec![routing(101, 1, entered()), routing(101, 1, skipped())],
                Some((progress(1, 101, &[0, 1]), true)),
            ),
            (
                "the second step entered after the skip: resumes there",
                vec![
                    routing(101, 1, entered()),
                    routing(101, 1, skipped()),
                    routing(101, 2, entered()),
                ],
                Some((progress(1, 101, &[0, 1]), false)),
            ),
            (
                "the last step timed out (ignored): resumes on it",
                vec![routing(101, 1, K::TimedOut), routing(900, 2, K::TimedOut)],
                Some((progress(1, 101, &[0, 1]), false)),
            ),
        ];
        for (case, history, expected) in cases {
            assert_eq!(start.resumed(&history, &clears), expected, "{case}");
        }
    }

    fn record(state: CallbackState) -> ServiceRecord {
        let mut record = ServiceRecord::new(
            "s1",
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(0),
        );
        record.state = state;
        record.expire_at = Timestamp::from_millis(86_400_000);
        record
    }

    #[test]
    fn the_wait_runs_from_queued_to_the_reservation_and_a_redial_starts_a_new_one() {
        let at = |secs: u64| Timestamp::from_millis(secs * 1000);
        let mut rec = record(CallbackState::Scheduled);
        assert_eq!(rec.waited_secs(), None, "never reserved");
        rec.enter(CallbackState::Queued, None, at(10), "queued");
        rec.enter(CallbackState::Routing, None, at(15), "reserved");
        rec.enter(CallbackState::Queued, None, at(20), "agent left");
        rec.enter(CallbackState::Routing, None, at(52), "reserved again");
        assert_eq!(rec.waited_secs(), Some(42), "a requeue keeps counting");
        rec.enter(CallbackState::Processing, None, at(60), "taken");
        rec.enter(CallbackState::Scheduled, None, at(70), "no answer");
        rec.enter(CallbackState::Queued, None, at(100), "redial");
        rec.enter(CallbackState::Routing, None, at(107), "reserved");
        assert_eq!(rec.waited_secs(), Some(7), "a redial waits anew");
    }

    #[test]
    fn the_step_that_found_the_agent_is_the_latest_entered_that_holds_it() {
        // A ROUTING service's history: three steps entered, then ann reserved in step 3.
        let event = |step, kind| RoutingEvent {
            at: Timestamp::from_millis(1),
            step,
            kind,
        };
        let entered = |step, target: &str| {
            event(
                step,
                RoutingEventKind::Entered {
                    target: target.into(),
                },
            )
        };
        let history = vec![
            entered(1, "A@StatServer.GA"),
            entered(2, "B@StatServer.GA"),
            entered(3, "C@StatServer.GA"),
            event(
                3,
                RoutingEventKind::Reserved {
                    agent: "ann".into(),
                },
            ),
        ];
        let found = found_by(&history, "ann", |t| t.starts_with('B'));
        assert_eq!(
            found,
            Some(FoundBy {
                step: 2,
                target: "B@StatServer.GA".into()
            }),
            "ann is in B, kept in the set"
        );
        let fallback = found_by(&history, "ann", |_| false).unwrap();
        assert_eq!(
            fallback.step, 3,
            "no membership known: the step reserved in"
        );
        assert_eq!(
            found_by(&history, "bob", |_| true),
            None,
            "never reserved for bob"
        );
    }

    #[test]
    fn the_record_notes_reservations_and_dial_attempts_and_nothing_else_of_its_history() {
        let event = |kind| RoutingEvent {
            at: Timestamp::from_millis(7),
            step: 1,
            kind,
        };
        let cases = [
            (
                RoutingEventKind::Entered {
                    target: "A@StatServer.GA".into(),
                },
                false,
            ),
            (
                RoutingEventKind::Skipped {
                    statistic: "RStatAgentsReady".into(),
                    value: 0,
                },
                false,
            ),
            (RoutingEventKind::TimedOut, false),
            (
                RoutingEventKind::Released {
                    agent: "ann".into(),
                    why: "left".into(),
                },
                false,
            ),
            (
                RoutingEventKind::Reserved {
                    agent: "ann".into(),
                },
                true,
            ),
            (
                RoutingEventKind::Dialed {
                    agent: "ann".into(),
                    outcome: "busy".into(),
                },
                true,
            ),
        ];
        for (kind, kept) in cases {
            let mut rec = record(CallbackState::Queued);
            let before = rec.clone();
            let changed = rec.note_routing(&[event(kind.clone())]);
            assert_eq!(changed, kept, "{kind:?}: changed");
            assert_eq!(ServiceRecord::keeps(&event(kind.clone())), kept, "{kind:?}");
            assert_eq!(rec != before, kept, "{kind:?}: the record");
        }
        let mut rec = record(CallbackState::Queued);
        rec.note_routing(&[
            event(RoutingEventKind::Reserved {
                agent: "ann".into(),
            }),
            event(RoutingEventKind::Dialed {
                agent: "ann".into(),
                outcome: "busy".into(),
            }),
            event(RoutingEventKind::Dialed {
                agent: "ann".into(),
                outcome: "connected".into(),
            }),
        ]);
        assert_eq!(
            rec.reservations,
            [Reservation {
                at: Timestamp::from_millis(7),
                agent: "ann".into()
            }]
        );
        assert_eq!(rec.dial_attempts, 2);
    }

    #[test]
    fn cancel_is_allowed_until_processing() {
        let now = Timestamp::from_millis(5);
        for state in CallbackState::ALL {
            let mut rec = record(state);
            let result = rec.cancel(CallbackReason::Cancelled, now);
            let allowed = matches!(
                state,
                CallbackState::Scheduled | CallbackState::Queued | CallbackState::Routing
            );
            assert_eq!(result.is_ok(), allowed, "cancel from {state}");
            if allowed {
                assert_eq!(rec.state, CallbackState::Completed);
                assert_eq!(rec.reason, Some(CallbackReason::Cancelled));
                assert_eq!(rec.state_history.len(), 1);
            }
        }
    }

    #[test]
    fn reschedule_into_the_future_makes_it_scheduled_and_moves_expiry() {
        let mut rec = record(CallbackState::Queued);
        let now = Timestamp::from_millis(1_000);
        let (desired, expire) = (
            Timestamp::from_millis(61_000),
            Timestamp::from_millis(161_000),
        );
        rec.reschedule(desired, expire, now).unwrap();
        assert_eq!(rec.state, CallbackState::Scheduled);
        assert_eq!(rec.expire_at, expire);
        assert_eq!(rec.queued_at, None);

        rec.options.insert("_wait_for_agent".into(), "true".into());
        rec.reschedule(Timestamp::from_millis(500), expire, now)
            .unwrap();
        assert_eq!(rec.state, CallbackState::Queued, "a past time queues it");
        assert_eq!(
            rec.queued_at,
            Some(now),
            "and it waits for an agent from now"
        );
        assert_eq!(
            rec.route,
            Some(RouteProgress::start(now)),
            "from the start of its walk"
        );
    }

    #[test]
    fn reschedule_is_refused_once_an_agent_is_involved() {
        for state in [
            CallbackState::Routing,
            CallbackState::Processing,
            CallbackState::Completed,
        ] {
            let mut rec = record(state);
            assert!(
                rec.reschedule(
                    Timestamp::from_millis(1),
                    Timestamp::from_millis(2),
                    Timestamp::from_millis(0)
                )
                .is_err(),
                "reschedule from {state}"
            );
        }
    }

    #[test]
    fn state_filters_support_lists_and_negation() {
        let cases = [
            ("QUEUED", CallbackState::Queued, true),
            ("QUEUED", CallbackState::Completed, false),
            ("!COMPLETED", CallbackState::Routing, true),
            ("!COMPLETED", CallbackState::Completed, false),
            ("scheduled,queued", CallbackState::Scheduled, true),
            ("!SCHEDULED,QUEUED", CallbackState::Queued, false),
        ];
        for (filter, state, expected) in cases {
            let parsed = StateFilter::parse(filter).expect(filter);
            assert_eq!(parsed.matches(state), expected, "{filter} vs {state}");
        }
        assert!(StateFilter::parse("DONE").unwrap_err().contains("DONE"));
    }

    #[test]
    fn expiry_time_refuses_services_that_would_expire_at_once_or_after_year_9999() {
        let now = Timestamp::from_millis(100_000);
        let cases = [
            (50_000, 100, Ok(150_000)),
            (0, 100, Err(())),
            (0, 101, Ok(101_000)),
            (
                LATEST_WRITABLE.as_millis() - 1_000,
                1,
                Ok(LATEST_WRITABLE.as_millis()),
            ),
            (LATEST_WRITABLE.as_millis(), 1, Err(())),
        ];
        for (desired, ttl, expected) in cases {
            let got = expiry_time(Timestamp::from_millis(desired), ttl, now)
                .map(Timestamp::as_millis)
                .map_err(|_| ());
            assert_eq!(got, expected, "desired {desired} ttl {ttl}");
        }
    }

    #[test]
    fn state_codes_round_trip() {
        for state in CallbackState::ALL {
            assert_eq!(CallbackState::from_code(state.code()), Some(state));
        }
    }
}
