//! One chat session's rules, pure: participants, transcript positions, typing and notices,
//! the `[chat]` limits, idle control and the close rules.
//!
//! [`Session::apply`] takes a [`Request`] and the time and answers a [`Step`]: the session as
//! it would be, the events to append (numbered), what to store, and what closed. Nothing
//! changes until the caller has made the step's write and calls [`Session::commit`], so a
//! failed write leaves the session as it was. No locks, no store, no clock, no tokio: the
//! owner (`center::chat::ChatServer`) holds the lock, writes, waits for the group commit and
//! pushes. The rules that were pure already stay where they are: ESP parsing in
//! [`crate::domain::esp`], the idle sequence in [`crate::domain::idle`], limits in
//! [`crate::domain::chat_limits`], transcript rows in [`crate::domain::chat`].

use crate::domain::chat::{customer_rows, EventKind, NewEvent, TranscriptEvent, UserType};
use crate::domain::chat_limits::{ChatLimits, LimitError, MessageBucket};
use crate::domain::esp::{EspCommon, EspRequest, Language, NoticeType};
use crate::domain::idle::{IdleAction, IdleSettings, IdleState};
use crate::domain::time::Timestamp;

/// A chat session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSession {
    /// The chat session id (`chatSessionId`), 16 characters as Chat Server's.
    pub id: String,
    /// The service it belongs to.
    pub service_id: String,
    /// The service's `gms_user`, whose CometD clients get its pushes.
    pub owner: Option<String>,
    /// When it was created (`startedAt`; transcript seconds count from here).
    pub created_at: Timestamp,
    /// Who the customer is.
    pub customer: Customer,
    /// `notify_by=comet`: transcript changes are pushed, and replies are short.
    pub comet: bool,
    /// The agent routed to it, once there is one.
    pub agent: Option<SessionAgent>,
    /// When it was closed; a closed session takes no new events.
    pub closed_at: Option<Timestamp>,
    /// The position the next event gets (events are numbered from 1).
    pub next_position: u64,
    /// The first position the customer has not been shown by a poll-mode refresh.
    pub client_position: u64,
    /// Placed on hold by a workflow (ESP `PlaceOnHold`).
    pub on_hold: bool,
    /// The language set by ESP `ConfigureSession`.
    pub language: Option<String>,
    /// Loaded back from storage after a restart (ESP `GetSessionInfo` `IsRestored`).
    pub restored: bool,
    /// Inactivity control for this session: the configured defaults, changed by ESP
    /// `IdleControlConfigure`.
    pub idle: IdleSettings,
    /// When the session was last active and which idle alerts it has had.
    pub idle_state: IdleState,
}

impl ChatSession {
    /// `chatIxnState`: `DISCONNECTED` once closed, else `CONNECTED` for the reply that
    /// created it and `TRANSCRIPT` afterwards.
    pub fn ixn_state(&self, just_created: bool) -> &'static str {
        if self.closed_at.is_some() {
            "DISCONNECTED"
        } else if just_created {
            "CONNECTED"
        } else {
            "TRANSCRIPT"
        }
    }

    /// The chat object of seed 003 without the verbose fields: state, session id, position,
    /// service message, start time and, when given, the rows to show. Pushes
    /// (`service.chat.refresh.<id>`) carry the same object.
    pub fn wire(&self, state: &str, rows: Option<&[[String; 5]]>) -> serde_json::Value {
        let message = if self.closed_at.is_some() {
            "Chat was finished"
        } else {
            "Chat service is available"
        };
        let mut object = serde_json::json!({
            "chatIxnState": state,
            "chatSessionId": self.id,
            "transcriptPosition": self.next_position.to_string(),
            "chatServiceMessage": message,
            "startedAt": self.created_at.to_iso(),
        });
        if let (Some(rows), Some(map)) = (rows, object.as_object_mut()) {
            map.insert("transcriptToShow".into(), serde_json::json!(rows));
        }
        object
    }

    /// The events of `events` the customer may see, when they are pushed at all (comet
    /// sessions only; poll-mode customers read them with `refresh`).
    pub fn pushes(&self, events: &[TranscriptEvent]) -> Vec<TranscriptEvent> {
        if !self.comet {
            return Vec::new();
        }
        events
            .iter()
            .filter(|e| e.visibility.visible_to_customer())
            .cloned()
            .collect()
    }

    /// The agent in the session, once it joined.
    fn joined(&self) -> Option<&SessionAgent> {
        self.agent.as_ref().filter(|agent| agent.joined)
    }
}

/// The customer of a chat session, as `ixn/chat` gave it (seed 003).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// The nickname shown in the transcript.
    pub nickname: String,
    /// `clientTimeZoneOffset`, echoed in verbose replies.
    pub time_zone_offset: Option<String>,
    /// `userId`, as Chat Server assigns one to each participant.
    pub user_id: String,
    /// `secureKey`.
    pub secure_key: String,
}

/// The agent of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAgent {
    /// The agent id.
    pub id: String,
    /// The nickname shown (the agent's name).
    pub nickname: String,
    /// Whether the agent joined (at once with `auto_answer`, else on accept).
    pub joined: bool,
}

/// A session was closed by this operation; the caller settles its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The service of the session.
    pub service_id: String,
    /// The agent that was in it, if any.
    pub agent: Option<SessionAgent>,
}

/// What an ESP request did (the fields of Chat Server's `Event3rdServerResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EspOutcome {
    /// A message or notice was added at this transcript position (`ScriptPos`, from 0).
    Posted {
        /// `ScriptPos`.
        script_pos: u64,
    },
    /// Done; nothing to report but the time.
    Done,
    /// `CloseSession`: whether the session is closed now (`IsClosed`), and what closed.
    Close {
        /// `IsClosed`.
        is_closed: bool,
        /// Set when this request closed it: the caller settles the service.
        closed: Option<Closed>,
    },
    /// `GetSessionInfo`.
    Info {
        /// `CreatedAt`.
        created_at: Timestamp,
        /// `IsRestored`.
        restored: bool,
    },
}

/// What happens to a session: from the customer, the agent, a workflow (ESP), the service
/// (closed from outside) or the clock (idle control).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The customer's message (`refresh` with `message`).
    CustomerMessage {
        /// The text.
        text: String,
    },
    /// The customer's notice: typing started or stopped, or a custom notice.
    CustomerNotice {
        /// Which notice.
        kind: EventKind,
        /// Its text (empty: the kind's default).
        text: String,
    },
    /// The customer leaves (`disconnect`): the session closes.
    CustomerLeaves,
    /// The customer takes another nickname (Chat API v2 `updateNickname`): later events
    /// carry it, and a `NicknameUpdated` event (under the old one) says so.
    CustomerRenames {
        /// The new nickname, not empty.
        nickname: String,
    },
    /// An agent was routed to the session; with `auto_answer` it joins at once.
    AssignAgent {
        /// The agent id.
        agent_id: String,
        /// The nickname it is shown under.
        nickname: String,
        /// Join at once instead of waiting for [`Request::Accept`].
        auto_answer: bool,
    },
    /// The invited agent accepts and joins.
    Accept {
        /// The agent id.
        agent_id: String,
    },
    /// The agent's message, typing notice or pushed URL.
    AgentEvent {
        /// The agent id.
        agent_id: String,
        /// What it is.
        kind: EventKind,
        /// Its text or URL.
        text: String,
    },
    /// The agent leaves: the session closes (one agent per session).
    AgentLeaves {
        /// The agent id.
        agent_id: String,
    },
    /// Closed from outside (the queue timed out, the service was cancelled), with an optional
    /// last message from the system.
    Close {
        /// The last message.
        message: Option<String>,
    },
    /// An ESP request from a workflow.
    Esp(EspRequest),
    /// An idle-control deadline of this session came due.
    IdleDue,
}

/// Why a session refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request needs an open session; this one (its id) is closed.
    #[error(
        "chat session `{0}` is closed: no more events can be added; refresh to read its transcript"
    )]
    Closed(String),
    /// Not this agent's session, not joined yet or joined already, or a bad idle-control
    /// configuration.
    #[error("{0}")]
    Refused(String),
    /// A `[chat]` limit refused the event (413 or 429).
    #[error(transparent)]
    Limit(#[from] LimitError),
}

/// What must be stored before a [`Step`] is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Nothing changed.
    Nothing,
    /// The session changed, no event was added.
    Session,
    /// The session and its new events (possibly none, when it closed silently), in one write.
    Transcript,
}

/// What one request does to a session, not applied yet.
#[derive(Debug, Clone)]
#[must_use = "a step changes nothing until it is written and committed"]
pub struct Step {
    /// The session as it is once committed.
    next: ChatSession,
    /// The customer's rate bucket once committed.
    bucket: MessageBucket,
    /// The events the request adds, numbered.
    pub events: Vec<TranscriptEvent>,
    /// What to store before committing.
    pub write: Write,
    /// Set when the request closed the session.
    pub closed: Option<Closed>,
    /// The `Event3rdServerResponse` of an ESP request.
    pub outcome: Option<EspOutcome>,
}

impl Step {
    /// The session to store.
    pub fn session(&self) -> &ChatSession {
        &self.next
    }
}

/// What every session is held to: the `[chat]` limits and the configured idle control.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Message size, customer rate, transcript length.
    pub limits: ChatLimits,
    /// Idle control for new sessions and for `reset-parameters`.
    pub idle_defaults: IdleSettings,
}

/// Who adds an event, for the limits: the customer is rate-limited, every participant is
/// held to the size and transcript limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    Customer,
    Participant,
}

/// One session with its transcript and its customer's rate bucket.
#[derive(Debug, Clone)]
pub struct Session {
    state: ChatSession,
    transcript: Vec<TranscriptEvent>,
    /// How fast its customer may add events (memory only: a restart refills it).
    bucket: MessageBucket,
}

impl Session {
    /// `state` with its stored `transcript` (empty for a new session), its customer's bucket
    /// full at `now`.
    pub fn new(
        state: ChatSession,
        transcript: Vec<TranscriptEvent>,
        rules: &Rules,
        now: Timestamp,
    ) -> Self {
        Session {
            state,
            transcript,
            bucket: MessageBucket::new(&rules.limits, now),
        }
    }

    /// The session as it is.
    pub fn state(&self) -> &ChatSession {
        &self.state
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.state.closed_at.is_some()
    }

    /// The transcript from position `from` on (1: all of it).
    pub fn transcript_from(&self, from: u64) -> &[TranscriptEvent] {
        // Positions are 1, 2, 3, ... in order; the search only guards against a gap.
        let start = self.transcript.partition_point(|e| e.position < from);
        &self.transcript[start..]
    }

    /// The rows the customer may see from `from`, or from the first they have not been
    /// shown; marks everything shown. Only memory changes: stored with the next write (after
    /// a restart a poll-mode customer may be shown a few rows again).
    pub fn show_customer(&mut self, from: Option<u64>) -> Vec<[String; 5]> {
        let from = from.unwrap_or(self.state.client_position).max(1);
        let rows = customer_rows(&self.transcript, from, self.state.created_at);
        self.state.client_position = self.state.next_position;
        rows
    }

    /// When idle control acts next on this session, if it is open and watched.
    pub fn next_idle_deadline(&self) -> Option<Timestamp> {
        if self.is_closed() {
            return None;
        }
        self.state.idle_state.next_deadline(&self.state.idle)
    }

    /// What `request` at `now` does to the session. Nothing changes until [`Session::commit`].
    ///
    /// # Errors
    /// A [`Refusal`]: the session is closed, the agent is not the session's (or not joined,
    /// or joined already), a bad idle-control change, or a `[chat]` limit.
    pub fn apply(&self, request: Request, now: Timestamp, rules: &Rules) -> Result<Step, Refusal> {
        let customer = || self.state.customer.nickname.clone();
        match request {
            Request::CustomerMessage { text } => {
                let event = NewEvent::new(EventKind::Message, &customer(), &text, UserType::Client);
                self.add(event, "message", Sender::Customer, now, rules)
            }
            Request::CustomerNotice { kind, text } => {
                let event = NewEvent::new(kind, &customer(), &text, UserType::Client);
                self.add(event, "message", Sender::Customer, now, rules)
            }
            Request::CustomerRenames { nickname } => {
                let event = NewEvent::new(
                    EventKind::NicknameUpdated,
                    &customer(),
                    &nickname,
                    UserType::Client,
                );
                let mut step = self.add(event, "nickname", Sender::Customer, now, rules)?;
                step.next.customer.nickname = nickname;
                Ok(step)
            }
            Request::CustomerLeaves => {
                if self.is_closed() {
                    return Ok(self.unchanged());
                }
                let left = NewEvent::new(EventKind::Left, &customer(), "", UserType::Client);
                Ok(self.close(Some(left), now))
            }
            Request::AssignAgent {
                agent_id,
                nickname,
                auto_answer,
            } => {
                self.check_open()?;
                let mut next = self.state.clone();
                next.agent = Some(SessionAgent {
                    id: agent_id,
                    nickname,
                    joined: false,
                });
                if auto_answer {
                    Ok(self.join(next, now))
                } else {
                    Ok(self.changed(next))
                }
            }
            Request::Accept { agent_id } => match &self.state.agent {
                Some(agent) if agent.id == agent_id && !agent.joined => {
                    self.check_open()?;
                    Ok(self.join(self.state.clone(), now))
                }
                Some(agent) if agent.id == agent_id => Err(Refusal::Refused(format!(
                    "agent `{agent_id}` has already joined the chat of service `{}`",
                    self.state.service_id
                ))),
                _ => Err(self.not_agents(&agent_id)),
            },
            Request::AgentEvent {
                agent_id,
                kind,
                text,
            } => {
                let nickname = self.joined_agent(&agent_id)?;
                let field = match kind {
                    EventKind::PushUrl => "url",
                    EventKind::TypingStarted | EventKind::TypingStopped => "typing",
                    _ => "text",
                };
                let event = NewEvent::new(kind, &nickname, &text, UserType::Agent);
                self.add(event, field, Sender::Participant, now, rules)
            }
            Request::AgentLeaves { agent_id } => {
                let nickname = match &self.state.agent {
                    Some(agent) if agent.id == agent_id => agent.nickname.clone(),
                    _ => return Err(self.not_agents(&agent_id)),
                };
                self.check_open()?;
                let left = NewEvent::new(EventKind::Left, &nickname, "", UserType::Agent);
                Ok(self.close(Some(left), now))
            }
            Request::Close { message } => {
                if self.is_closed() {
                    return Ok(self.unchanged());
                }
                let last = message.map(|text| system_message(&text));
                Ok(self.close(last, now))
            }
            Request::Esp(request) => self.esp(request, now, rules),
            Request::IdleDue => {
                if self.is_closed() {
                    return Ok(self.unchanged());
                }
                let mut next = self.state.clone();
                let idle = next.idle.clone();
                match next.idle_state.due(&idle, now) {
                    // Stale: the session was active since; its real deadline is later.
                    None => Ok(self.unchanged()),
                    Some(IdleAction::Alert { text } | IdleAction::SecondAlert { text }) => {
                        Ok(self.append(next, vec![system_message(&text)], now))
                    }
                    Some(IdleAction::Close { text }) => {
                        Ok(self.close_from(next, Some(system_message(&text)), now))
                    }
                }
            }
        }
    }

    /// Makes `step` the session's state (its write was made).
    pub fn commit(&mut self, step: Step) -> Committed {
        self.state = step.next;
        self.bucket = step.bucket;
        self.transcript.extend(step.events.iter().cloned());
        Committed {
            events: step.events,
            closed: step.closed,
            outcome: step.outcome,
        }
    }

    /// ESP requests (seeds 002 and 004).
    fn esp(&self, request: EspRequest, now: Timestamp, rules: &Rules) -> Result<Step, Refusal> {
        match request {
            EspRequest::GetSessionInfo { .. } => Ok(self.unchanged().answer(EspOutcome::Info {
                created_at: self.state.created_at,
                restored: self.state.restored,
            })),
            EspRequest::Message {
                text,
                message_type,
                common,
            } => {
                let mut event = esp_event(EventKind::Message, &text, &common);
                event.message_type = message_type;
                self.post(event, "MessageText", now, rules)
            }
            EspRequest::Notice {
                notice_type,
                text,
                common,
            } => {
                let kind = match notice_type {
                    NoticeType::PushedUrl => EventKind::PushUrl,
                    NoticeType::Custom => EventKind::Custom,
                };
                let event = esp_event(kind, text.as_deref().unwrap_or(""), &common);
                self.post(event, "NoticeText", now, rules)
            }
            EspRequest::CloseSession {
                close_if_no_agents,
                purge,
                ..
            } => {
                let not_closed = |is_closed| EspOutcome::Close {
                    is_closed,
                    closed: None,
                };
                if self.is_closed() {
                    return Ok(self.unchanged().answer(not_closed(true)));
                }
                if close_if_no_agents && self.state.joined().is_some() {
                    return Ok(self.unchanged().answer(not_closed(false)));
                }
                // Purge closes without telling anyone; a normal close says so in the chat.
                let last = (!purge).then(|| {
                    NewEvent::new(
                        EventKind::Left,
                        "system",
                        "the session was closed",
                        UserType::External,
                    )
                });
                let step = self.close(last, now);
                let closed = step.closed.clone();
                Ok(step.answer(EspOutcome::Close {
                    is_closed: true,
                    closed,
                }))
            }
            EspRequest::PlaceOnHold { .. } => {
                self.check_open()?;
                let mut next = self.state.clone();
                next.on_hold = true;
                Ok(self.changed(next).answer(EspOutcome::Done))
            }
            EspRequest::IdleControlConfigure { changes, .. } => {
                self.check_open()?;
                let mut next = self.state.clone();
                next.idle = next
                    .idle
                    .apply(&changes, &rules.idle_defaults)
                    .map_err(|err| Refusal::Refused(err.to_string()))?;
                Ok(self.changed(next).answer(EspOutcome::Done))
            }
            EspRequest::ConfigureSession {
                async_idle_reset,
                language,
                ..
            } => {
                self.check_open()?;
                let mut next = self.state.clone();
                if async_idle_reset {
                    next.idle_state = IdleState::new(now);
                }
                if let Some(language) = language {
                    next.language = Some(match language {
                        Language::Code(code) => code,
                        Language::Name(name) => name,
                    });
                }
                Ok(self.changed(next).answer(EspOutcome::Done))
            }
        }
    }

    /// A workflow's message or notice; answers its `ScriptPos` (positions from 0).
    fn post(
        &self,
        event: NewEvent,
        field: &'static str,
        now: Timestamp,
        rules: &Rules,
    ) -> Result<Step, Refusal> {
        let step = self.add(event, field, Sender::Participant, now, rules)?;
        let script_pos = step.events[0].position - 1;
        Ok(step.answer(EspOutcome::Posted { script_pos }))
    }

    /// One event from a participant, once the `[chat]` limits allow it: its text (carried
    /// in the request field `field`) is not too large, the transcript has room, and a
    /// customer is not sending too fast. The rate token is taken last, so a refused message
    /// costs the sender none. What the system adds itself (joins, idle alerts, the last event
    /// of a close) is not limited: it cannot be flooded from outside.
    fn add(
        &self,
        event: NewEvent,
        field: &'static str,
        sender: Sender,
        now: Timestamp,
        rules: &Rules,
    ) -> Result<Step, Refusal> {
        self.check_open()?;
        let limits = &rules.limits;
        limits.check_size(field, &event.text)?;
        limits.check_room(field, self.state.next_position.saturating_sub(1))?;
        let mut bucket = self.bucket;
        if sender == Sender::Customer {
            bucket.take(limits, now)?;
        }
        let mut step = self.append(self.state.clone(), vec![event], now);
        step.bucket = bucket;
        Ok(step)
    }

    /// The agent of `next` joins (`Notice.Joined`).
    fn join(&self, mut next: ChatSession, now: Timestamp) -> Step {
        let Some(agent) = next.agent.as_mut() else {
            return self.changed(next);
        };
        agent.joined = true;
        let joined = NewEvent::new(EventKind::Joined, &agent.nickname, "", UserType::Agent);
        self.append(next, vec![joined], now)
    }

    /// Closes the session after adding `last`, if any.
    fn close(&self, last: Option<NewEvent>, now: Timestamp) -> Step {
        self.close_from(self.state.clone(), last, now)
    }

    fn close_from(&self, mut next: ChatSession, last: Option<NewEvent>, now: Timestamp) -> Step {
        next.closed_at = Some(now);
        let mut step = self.append(next, last.into_iter().collect(), now);
        step.closed = Some(Closed {
            service_id: step.next.service_id.clone(),
            agent: step.next.agent.clone(),
        });
        step
    }

    /// Numbers `events` after the transcript of `next`; what the participants do counts as
    /// activity, what the system says does not.
    fn append(&self, mut next: ChatSession, events: Vec<NewEvent>, now: Timestamp) -> Step {
        let numbered: Vec<TranscriptEvent> = events
            .into_iter()
            .map(|event| {
                let position = next.next_position;
                next.next_position += 1;
                event.at(position, now)
            })
            .collect();
        for event in &numbered {
            if event.user_type != UserType::External {
                let idle = next.idle.clone();
                next.idle_state.activity(&idle, event.kind.is_notice(), now);
            }
        }
        Step {
            next,
            bucket: self.bucket,
            events: numbered,
            write: Write::Transcript,
            closed: None,
            outcome: None,
        }
    }

    /// A change of the session that adds no event.
    fn changed(&self, next: ChatSession) -> Step {
        Step {
            next,
            bucket: self.bucket,
            events: Vec::new(),
            write: Write::Session,
            closed: None,
            outcome: None,
        }
    }

    /// No change at all.
    fn unchanged(&self) -> Step {
        Step {
            write: Write::Nothing,
            ..self.changed(self.state.clone())
        }
    }

    fn check_open(&self) -> Result<(), Refusal> {
        match self.state.closed_at {
            Some(_) => Err(Refusal::Closed(self.state.id.clone())),
            None => Ok(()),
        }
    }

    /// The nickname of agent `agent_id`, if it is the session's and joined.
    fn joined_agent(&self, agent_id: &str) -> Result<String, Refusal> {
        let service_id = &self.state.service_id;
        match &self.state.agent {
            Some(agent) if agent.id == agent_id && agent.joined => Ok(agent.nickname.clone()),
            Some(agent) if agent.id == agent_id => Err(Refusal::Refused(format!(
                "agent `{agent_id}` has not joined the chat of service `{service_id}` yet: accept it first (POST /genesys/1/agent/{agent_id}/interactions/{service_id}/accept)"
            ))),
            _ => Err(self.not_agents(agent_id)),
        }
    }

    fn not_agents(&self, agent_id: &str) -> Refusal {
        let service_id = &self.state.service_id;
        Refusal::Refused(format!(
            "the chat of service `{service_id}` is not routed to agent `{agent_id}`: see GET /genesys/1/agent/{agent_id}/interactions"
        ))
    }
}

impl Step {
    fn answer(mut self, outcome: EspOutcome) -> Step {
        self.outcome = Some(outcome);
        self
    }
}

/// What a committed step did, for the owner to store, push and settle.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The events added, numbered.
    pub events: Vec<TranscriptEvent>,
    /// Set when the session closed.
    pub closed: Option<Closed>,
    /// The `Event3rdServerResponse` of an ESP request.
    pub outcome: Option<EspOutcome>,
}

/// A message from the system (idle alerts, closing texts).
fn system_message(text: &str) -> NewEvent {
    NewEvent::new(EventKind::Message, "system", text, UserType::External)
}

/// An event from a workflow: the given nickname or `system`, its visibility and attributes.
fn esp_event(kind: EventKind, text: &str, common: &EspCommon) -> NewEvent {
    let nickname = common.nickname.as_deref().unwrap_or("system");
    let mut event = NewEvent::new(kind, nickname, text, UserType::External);
    event.visibility = common.visibility;
    event.attributes = common
        .event_attributes
        .as_ref()
        .and_then(|attributes| serde_json::to_string(attributes).ok());
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::esp::Visibility;
    use crate::domain::idle::IdleChanges;

    const AGENT: &str = "agent-1";

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000).plus_secs(secs)
    }

    fn rules() -> Rules {
        Rules {
            limits: ChatLimits::default(),
            idle_defaults: IdleSettings::default(),
        }
    }

    /// An open session, created at `at(0)`, with no agent yet.
    fn session() -> Session {
        let state = ChatSession {
            id: "S".repeat(16),
            service_id: "svc-1".into(),
            owner: Some("customer".into()),
            created_at: at(0),
            customer: Customer {
                nickname: "Ann".into(),
                ..Customer::default()
            },
            comet: false,
            agent: None,
            closed_at: None,
            next_position: 1,
            client_position: 1,
            on_hold: false,
            language: None,
            restored: false,
            idle: IdleSettings::default(),
            idle_state: IdleState::new(at(0)),
        };
        Session::new(state, Vec::new(), &rules(), at(0))
    }

    /// Applies and commits `request` at `now`, as the owner does once the write is made.
    fn run(session: &mut Session, request: Request, now: Timestamp) -> Result<Committed, Refusal> {
        let step = session.apply(request, now, &rules())?;
        Ok(session.commit(step))
    }

    /// An open session whose agent `AGENT` joined at once (position 1: `Notice.Joined`).
    fn with_agent() -> Session {
        let mut session = session();
        run(&mut session, assign(true), at(0)).expect("agent joins");
        session
    }

    fn assign(auto_answer: bool) -> Request {
        Request::AssignAgent {
            agent_id: AGENT.into(),
            nickname: "Bob".into(),
            auto_answer,
        }
    }

    fn customer_says(text: &str) -> Request {
        Request::CustomerMessage { text: text.into() }
    }

    fn agent(kind: EventKind, text: &str) -> Request {
        Request::AgentEvent {
            agent_id: AGENT.into(),
            kind,
            text: text.into(),
        }
    }

    fn esp_message(text: &str, visibility: Visibility) -> Request {
        Request::Esp(EspRequest::Message {
            text: text.into(),
            message_type: Some("greeting".into()),
            common: EspCommon {
                visibility,
                ..EspCommon::default()
            },
        })
    }

    fn close_session(close_if_no_agents: bool, purge: bool) -> Request {
        Request::Esp(EspRequest::CloseSession {
            interaction_id: None,
            close_if_no_agents,
            purge,
        })
    }

    /// (kind, nickname, text, user type) of each event.
    fn summary(events: &[TranscriptEvent]) -> Vec<(EventKind, &str, &str, UserType)> {
        events
            .iter()
            .map(|e| (e.kind, e.nickname.as_str(), e.text.as_str(), e.user_type))
            .collect()
    }

    #[test]
    fn nothing_changes_until_the_step_is_committed() {
        let session = with_agent();
        let before = session.state().clone();

        let step = session
            .apply(customer_says("hello"), at(1), &rules())
            .expect("allowed");

        assert_eq!(step.write, Write::Transcript);
        assert_eq!(
            step.session().next_position,
            3,
            "the step holds the new state"
        );
        assert_eq!(session.state(), &before, "the session itself is unchanged");
        assert_eq!(session.transcript_from(1).len(), 1, "only the join so far");
    }

    #[test]
    fn a_renamed_customer_is_announced_under_the_old_name_and_speaks_under_the_new() {
        let mut session = with_agent();
        let renamed = Request::CustomerRenames {
            nickname: "Annie".into(),
        };
        run(&mut session, renamed, at(1)).unwrap();
        run(&mut session, customer_says("hi"), at(2)).unwrap();

        assert_eq!(
            summary(session.transcript_from(2)),
            [
                (EventKind::NicknameUpdated, "Ann", "Annie", UserType::Client),
                (EventKind::Message, "Annie", "hi", UserType::Client),
            ]
        );
        assert_eq!(session.state().customer.nickname, "Annie");

        run(&mut session, Request::CustomerLeaves, at(3)).unwrap();
        let refused = session.apply(
            Request::CustomerRenames {
                nickname: "Late".into(),
            },
            at(4),
            &rules(),
        );
        assert!(matches!(refused, Err(Refusal::Closed(_))), "{refused:?}");
    }

    #[test]
    fn events_are_numbered_from_one_in_order_whoever_adds_them() {
        let mut session = with_agent();
        run(&mut session, customer_says("hi"), at(1)).unwrap();
        run(&mut session, agent(EventKind::Message, "hello"), at(2)).unwrap();
        run(&mut session, esp_message("note", Visibility::Int), at(3)).unwrap();

        let positions: Vec<u64> = session
            .transcript_from(1)
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(positions, [1, 2, 3, 4]);
        assert_eq!(session.state().next_position, 5);
        assert_eq!(session.transcript_from(3).len(), 2, "from a position on");
    }

    #[test]
    fn the_customer_is_shown_each_visible_row_once_unless_asking_from_a_position() {
        let mut session = with_agent();
        run(
            &mut session,
            esp_message("agents only", Visibility::Int),
            at(1),
        )
        .unwrap();
        run(&mut session, customer_says("hi"), at(2)).unwrap();

        let first = session.show_customer(None);
        let again = session.show_customer(None);
        let replay = session.show_customer(Some(1));

        let texts = |rows: &[[String; 5]]| rows.iter().map(|r| r[2].clone()).collect::<Vec<_>>();
        assert_eq!(
            texts(&first).len(),
            2,
            "joined and hi; the INT message is hidden"
        );
        assert_eq!(first[1][2], "hi");
        assert!(again.is_empty(), "nothing new");
        assert_eq!(
            texts(&replay),
            texts(&first),
            "transcriptPosition=1 replays"
        );
    }

    #[test]
    fn the_agent_joins_at_once_with_auto_answer_else_on_accept() {
        let mut invited = session();
        let step = invited.apply(assign(false), at(0), &rules()).unwrap();
        assert_eq!(step.write, Write::Session, "an invitation adds no event");
        invited.commit(step);
        assert_eq!(
            invited.state().agent.as_ref().map(|a| a.joined),
            Some(false)
        );

        let done = run(
            &mut invited,
            Request::Accept {
                agent_id: AGENT.into(),
            },
            at(1),
        )
        .unwrap();
        assert_eq!(
            summary(&done.events),
            [(EventKind::Joined, "Bob", "", UserType::Agent)].map(|(k, n, _, u)| (
                k,
                n,
                k.default_text(),
                u
            ))
        );

        let joined = with_agent();
        assert_eq!(joined.state().agent.as_ref().map(|a| a.joined), Some(true));
    }

    #[test]
    fn esp_requests_answer_and_store_as_chat_server_does() {
        let idle_on = IdleChanges {
            enabled: Some(true),
            ..IdleChanges::default()
        };
        // (what, request, expected outcome, write, events added)
        let cases: Vec<(&str, Request, EspOutcome, Write, usize)> = vec![
            (
                "Message answers its ScriptPos, from 0",
                esp_message("welcome", Visibility::All),
                EspOutcome::Posted { script_pos: 1 },
                Write::Transcript,
                1,
            ),
            (
                "Notice USER_PUSHED_URL is a pushed URL",
                Request::Esp(EspRequest::Notice {
                    notice_type: NoticeType::PushedUrl,
                    text: Some("https://example.com".into()),
                    common: EspCommon::default(),
                }),
                EspOutcome::Posted { script_pos: 1 },
                Write::Transcript,
                1,
            ),
            (
                "GetSessionInfo changes nothing",
                Request::Esp(EspRequest::GetSessionInfo {
                    interaction_id: None,
                }),
                EspOutcome::Info {
                    created_at: at(0),
                    restored: false,
                },
                Write::Nothing,
                0,
            ),
            (
                "PlaceOnHold stores the session",
                Request::Esp(EspRequest::PlaceOnHold {
                    interaction_id: None,
                }),
                EspOutcome::Done,
                Write::Session,
                0,
            ),
            (
                "IdleControlConfigure stores the settings",
                Request::Esp(EspRequest::IdleControlConfigure {
                    interaction_id: None,
                    changes: idle_on,
                }),
                EspOutcome::Done,
                Write::Session,
                0,
            ),
            (
                "ConfigureSession stores the language",
                Request::Esp(EspRequest::ConfigureSession {
                    interaction_id: None,
                    async_idle_reset: true,
                    language: Some(Language::Name("English".into())),
                }),
                EspOutcome::Done,
                Write::Session,
                0,
            ),
            (
                "CloseSession with CloSelfNoAgents keeps a session with its agent",
                close_session(true, false),
                EspOutcome::Close {
                    is_closed: false,
                    closed: None,
                },
                Write::Nothing,
                0,
            ),
        ];
        for (what, request, outcome, write, added) in cases {
            let mut session = with_agent();
            let step = session.apply(request, at(5), &rules()).expect(what);
            assert_eq!(step.write, write, "{what}: write");
            assert_eq!(step.events.len(), added, "{what}: events");
            let done = session.commit(step);
            assert_eq!(done.outcome, Some(outcome), "{what}: outcome");
            assert!(done.closed.is_none(), "{what}: still open");
        }
    }

    #[test]
    fn esp_changes_show_in_the_session() {
        let mut session = with_agent();
        let hold = Request::Esp(EspRequest::PlaceOnHold {
            interaction_id: None,
        });
        let language = Request::Esp(EspRequest::ConfigureSession {
            interaction_id: None,
            async_idle_reset: false,
            language: Some(Language::Code("fr".into())),
        });
        let idle = Request::Esp(EspRequest::IdleControlConfigure {
            interaction_id: None,
            changes: IdleChanges {
                enabled: Some(true),
                timeout_alert_secs: Some(30),
                ..IdleChanges::default()
            },
        });
        for request in [hold, language, idle] {
            run(&mut session, request, at(1)).unwrap();
        }
        let state = session.state();
        assert!(state.on_hold);
        assert_eq!(state.language.as_deref(), Some("fr"));
        assert!(state.idle.enabled);
        assert_eq!(state.idle.timeout_alert_secs, 30);
    }

    #[test]
    fn esp_message_keeps_its_nickname_visibility_and_type() {
        let mut session = with_agent();
        let done = run(
            &mut session,
            esp_message("internal", Visibility::Int),
            at(1),
        )
        .unwrap();
        let event = &done.events[0];
        assert_eq!(event.nickname, "system");
        assert_eq!(event.user_type, UserType::External);
        assert_eq!(event.visibility, Visibility::Int);
        assert_eq!(event.message_type.as_deref(), Some("greeting"));
    }

    #[test]
    fn a_bad_idle_control_configuration_is_refused_and_changes_nothing() {
        let session = with_agent();
        let before = session.state().clone();
        let request = Request::Esp(EspRequest::IdleControlConfigure {
            interaction_id: None,
            changes: IdleChanges {
                enabled: Some(true),
                timeout_alert_secs: Some(200),
                timeout_close_secs: Some(100),
                ..IdleChanges::default()
            },
        });
        let refused = session.apply(request, at(1), &rules());
        assert!(
            matches!(refused, Err(Refusal::Refused(_))),
            "alert after close: {refused:?}"
        );
        assert_eq!(session.state(), &before);
    }

    /// Idle control on: alert after 10 s, second alert after 20 s, close after 30 s.
    fn idle_session() -> Session {
        let mut session = with_agent();
        let request = Request::Esp(EspRequest::IdleControlConfigure {
            interaction_id: None,
            changes: IdleChanges {
                enabled: Some(true),
                timeout_alert_secs: Some(10),
                message_alert: Some("still there?".into()),
                timeout_alert2_secs: Some(20),
                message_alert2: Some("last call".into()),
                timeout_close_secs: Some(30),
                message_close: Some("bye".into()),
                ..IdleChanges::default()
            },
        });
        run(&mut session, request, at(0)).unwrap();
        session
    }

    #[test]
    fn idle_control_warns_twice_then_closes_at_its_deadlines() {
        let mut session = idle_session();
        // (seconds, system text posted or none, closed)
        let cases = [
            (5, None, false),
            (10, Some("still there?"), false),
            (15, None, false),
            (20, Some("last call"), false),
            (30, Some("bye"), true),
        ];
        for (secs, text, closes) in cases {
            assert!(
                session.next_idle_deadline() <= Some(at(secs)) || text.is_none(),
                "at {secs} s the deadline has come: {:?}",
                session.next_idle_deadline()
            );
            let done = run(&mut session, Request::IdleDue, at(secs)).unwrap();
            let posted: Vec<&str> = done.events.iter().map(|e| e.text.as_str()).collect();
            assert_eq!(posted, text.into_iter().collect::<Vec<_>>(), "at {secs} s");
            if let Some(event) = done.events.first() {
                assert_eq!(
                    (event.kind, event.nickname.as_str(), event.user_type),
                    (EventKind::Message, "system", UserType::External),
                    "at {secs} s the system says it"
                );
            }
            assert_eq!(done.closed.is_some(), closes, "at {secs} s closed");
        }
        assert!(session.is_closed());
        assert_eq!(session.next_idle_deadline(), None, "nothing left to watch");
        let after = run(&mut session, Request::IdleDue, at(60)).unwrap();
        assert!(after.events.is_empty() && after.closed.is_none());
    }

    #[test]
    fn participants_restart_idle_control_and_the_system_does_not() {
        let mut session = idle_session();
        run(&mut session, Request::IdleDue, at(10)).unwrap();
        assert_eq!(
            session.next_idle_deadline(),
            Some(at(20)),
            "after the alert"
        );

        run(&mut session, customer_says("here"), at(12)).unwrap();
        assert_eq!(
            session.next_idle_deadline(),
            Some(at(22)),
            "from the message"
        );

        run(
            &mut session,
            esp_message("from a workflow", Visibility::All),
            at(14),
        )
        .unwrap();
        assert_eq!(
            session.next_idle_deadline(),
            Some(at(22)),
            "system messages do not count"
        );

        run(&mut session, agent(EventKind::TypingStarted, ""), at(16)).unwrap();
        assert_eq!(
            session.next_idle_deadline(),
            Some(at(22)),
            "notices do not count by default"
        );

        let stale = run(&mut session, Request::IdleDue, at(20)).unwrap();
        assert!(stale.events.is_empty(), "a stale deadline posts nothing");
    }

    #[test]
    fn a_restart_long_after_the_deadlines_closes_at_once() {
        let mut session = idle_session();
        let done = run(&mut session, Request::IdleDue, at(300)).unwrap();
        assert_eq!(
            summary(&done.events)[0].2,
            "bye",
            "close wins over the alerts"
        );
        assert!(done.closed.is_some());
    }

    #[test]
    fn the_close_rules() {
        let agent_left = Request::AgentLeaves {
            agent_id: AGENT.into(),
        };
        let closed_outside = Request::Close {
            message: Some("the service was cancelled".into()),
        };
        // (what, request, last event (kind, nickname, user type) or none)
        type LastEvent<'a> = Option<(EventKind, &'a str, UserType)>;
        let cases: Vec<(&str, Request, LastEvent)> = vec![
            (
                "the customer leaves",
                Request::CustomerLeaves,
                Some((EventKind::Left, "Ann", UserType::Client)),
            ),
            (
                "the agent leaves",
                agent_left,
                Some((EventKind::Left, "Bob", UserType::Agent)),
            ),
            (
                "closed from outside with a message",
                closed_outside,
                Some((EventKind::Message, "system", UserType::External)),
            ),
            (
                "closed from outside silently",
                Request::Close { message: None },
                None,
            ),
            (
                "ESP CloseSession",
                close_session(false, false),
                Some((EventKind::Left, "system", UserType::External)),
            ),
            (
                "ESP CloseSession with Purge",
                close_session(false, true),
                None,
            ),
        ];
        for (what, request, last) in cases {
            let mut session = with_agent();
            let step = session.apply(request, at(7), &rules()).expect(what);
            assert_eq!(step.write, Write::Transcript, "{what}: stored in one write");
            assert_eq!(
                step.session().closed_at,
                Some(at(7)),
                "{what}: closed in it"
            );
            let done = session.commit(step);
            let got: Vec<_> = done
                .events
                .iter()
                .map(|e| (e.kind, e.nickname.as_str(), e.user_type))
                .collect();
            assert_eq!(
                got,
                last.into_iter().collect::<Vec<_>>(),
                "{what}: last event"
            );
            assert_eq!(
                done.closed,
                Some(Closed {
                    service_id: "svc-1".into(),
                    agent: session.state().agent.clone(),
                }),
                "{what}: the caller settles the service and frees the agent"
            );
            assert!(session.is_closed(), "{what}");
        }
    }

    #[test]
    fn close_if_no_agents_closes_a_session_nobody_joined() {
        let mut session = session();
        run(&mut session, assign(false), at(0)).unwrap();
        let done = run(&mut session, close_session(true, false), at(1)).unwrap();
        assert!(done.closed.is_some(), "the invited agent has not joined");
        assert!(matches!(
            done.outcome,
            Some(EspOutcome::Close {
                is_closed: true,
                closed: Some(_)
            })
        ));
    }

    #[test]
    fn closing_a_closed_session_closes_nothing_again() {
        let mut session = with_agent();
        run(&mut session, Request::CustomerLeaves, at(1)).unwrap();
        let again = [
            Request::CustomerLeaves,
            Request::Close { message: None },
            close_session(false, false),
            Request::IdleDue,
        ];
        for request in again {
            let what = format!("{request:?}");
            let step = session.apply(request, at(2), &rules()).expect(&what);
            assert_eq!(step.write, Write::Nothing, "{what}");
            assert!(step.events.is_empty() && step.closed.is_none(), "{what}");
        }
        let step = session.apply(close_session(false, false), at(2), &rules());
        assert!(matches!(
            step.map(|s| s.outcome),
            Ok(Some(EspOutcome::Close {
                is_closed: true,
                closed: None
            }))
        ));
    }

    #[test]
    fn a_closed_session_refuses_what_would_change_it() {
        let mut session = with_agent();
        run(&mut session, Request::CustomerLeaves, at(1)).unwrap();
        let refused = [
            customer_says("anyone?"),
            Request::CustomerNotice {
                kind: EventKind::TypingStarted,
                text: String::new(),
            },
            agent(EventKind::Message, "hello?"),
            Request::AgentLeaves {
                agent_id: AGENT.into(),
            },
            assign(true),
            esp_message("late", Visibility::All),
            Request::Esp(EspRequest::PlaceOnHold {
                interaction_id: None,
            }),
            Request::Esp(EspRequest::ConfigureSession {
                interaction_id: None,
                async_idle_reset: true,
                language: None,
            }),
        ];
        for request in refused {
            let what = format!("{request:?}");
            let result = session.apply(request, at(2), &rules());
            assert!(
                matches!(result, Err(Refusal::Closed(ref id)) if id == &session.state().id),
                "{what}: {result:?}"
            );
        }
        let info = Request::Esp(EspRequest::GetSessionInfo {
            interaction_id: None,
        });
        assert!(
            session.apply(info, at(2), &rules()).is_ok(),
            "info still answers"
        );
    }

    #[test]
    fn agents_are_refused_what_is_not_theirs_to_do() {
        let other = |request: fn(String) -> Request| request("agent-2".into());
        let invited = {
            let mut session = session();
            run(&mut session, assign(false), at(0)).unwrap();
            session
        };
        // (what, session, request, words the refusal must hold)
        let cases: Vec<(&str, Session, Request, &str)> = vec![
            (
                "another agent's message",
                with_agent(),
                other(|agent_id| Request::AgentEvent {
                    agent_id,
                    kind: EventKind::Message,
                    text: "hi".into(),
                }),
                "not routed to agent `agent-2`",
            ),
            (
                "another agent leaves",
                with_agent(),
                other(|agent_id| Request::AgentLeaves { agent_id }),
                "not routed to agent `agent-2`",
            ),
            (
                "another agent accepts",
                invited.clone(),
                other(|agent_id| Request::Accept { agent_id }),
                "not routed to agent `agent-2`",
            ),
            (
                "a message before accepting",
                invited,
                agent(EventKind::Message, "hi"),
                "has not joined",
            ),
            (
                "accepting twice",
                with_agent(),
                Request::Accept {
                    agent_id: AGENT.into(),
                },
                "already joined",
            ),
            (
                "no agent routed yet",
                session(),
                agent(EventKind::Message, "hi"),
                "not routed to agent",
            ),
        ];
        for (what, session, request, words) in cases {
            match session.apply(request, at(1), &rules()) {
                Err(Refusal::Refused(message)) => {
                    assert!(message.contains(words), "{what}: {message}");
                }
                other => panic!("{what}: refused expected, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_chat_limits_refuse_events_without_changing_the_session() {
        let tight = Rules {
            limits: ChatLimits {
                max_message_bytes: 5,
                max_messages_per_second: 2,
                max_transcript_events: 4,
            },
            idle_defaults: IdleSettings::default(),
        };
        let mut session = with_agent();
        let too_large = session.apply(customer_says("too long"), at(1), &tight);
        assert!(matches!(
            too_large,
            Err(Refusal::Limit(LimitError::TooLarge {
                field: "message",
                ..
            }))
        ));

        for text in ["a", "b"] {
            let step = session.apply(customer_says(text), at(1), &tight).unwrap();
            session.commit(step);
        }
        let too_fast = session.apply(customer_says("c"), at(1), &tight);
        assert!(
            matches!(too_fast, Err(Refusal::Limit(LimitError::TooFast { .. }))),
            "{too_fast:?}"
        );
        let agent_step = session
            .apply(agent(EventKind::Message, "ok"), at(1), &tight)
            .expect("the agent is not rate-limited");
        session.commit(agent_step);

        let full = session.apply(agent(EventKind::Message, "more"), at(5), &tight);
        assert!(
            matches!(
                full,
                Err(Refusal::Limit(LimitError::TranscriptFull {
                    field: "text",
                    ..
                }))
            ),
            "{full:?}"
        );
        let closed = session
            .apply(Request::CustomerLeaves, at(5), &tight)
            .unwrap();
        assert_eq!(closed.events.len(), 1, "closing still adds its last event");
    }

    #[test]
    fn comet_sessions_push_what_the_customer_may_see_and_poll_sessions_nothing() {
        let mut session = with_agent();
        let done = run(
            &mut session,
            esp_message("internal", Visibility::Int),
            at(1),
        )
        .unwrap();
        let mut events = done.events;
        events.extend(
            run(&mut session, customer_says("hi"), at(2))
                .unwrap()
                .events,
        );

        assert!(session.state().pushes(&events).is_empty(), "poll mode");
        let mut comet = session.state().clone();
        comet.comet = true;
        let pushed = comet.pushes(&events);
        assert_eq!(
            summary(&pushed),
            [(EventKind::Message, "Ann", "hi", UserType::Client)]
        );
    }
}
