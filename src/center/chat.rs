//! The embedded Chat Server: chat sessions, their participants and transcripts.
//!
//! One service has at most one chat session. Sessions that are open live in memory (with
//! their transcript, so a refresh reads no storage); every change is written to the store and
//! group-committed before the caller hears of it, and only then pushed to the customer. A
//! session's lock is held across that wait, so the events of one session are numbered,
//! stored and pushed in one order. Closed sessions leave memory and are read back from the
//! store when a customer fetches their last transcript.
//!
//! What a closed session means for its service (completing it, freeing the agent) is the
//! caller's business: operations that close a session return [`Closed`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::domain::chat::{customer_rows, EventKind, NewEvent, TranscriptEvent, UserType};
use crate::domain::chat_limits::{ChatLimits, LimitError, MessageBucket};
use crate::domain::esp::{EspCommon, EspRequest, Language, NoticeType};
use crate::domain::idle::{IdleAction, IdleSettings, IdleState};
use crate::domain::service::{CallbackState, ServiceRecord};
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError};

/// A chat session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The customer of a chat session, as `ixn/chat` gave it (seed 003).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAgent {
    /// The agent id.
    pub id: String,
    /// The nickname shown (the agent's name).
    pub nickname: String,
    /// Whether the agent joined (at once with `auto_answer`, else on accept).
    pub joined: bool,
}

/// What `ixn/chat` asks for.
#[derive(Debug, Clone, Default)]
pub struct StartChat {
    /// The customer's details.
    pub customer: Customer,
    /// `notify_by=comet`.
    pub comet: bool,
}

/// The customer's view after an operation: the session and what is new for them.
#[derive(Debug, Clone)]
pub struct CustomerView {
    /// The session as it is now.
    pub session: ChatSession,
    /// Transcript rows the customer had not seen (or from the asked position).
    pub rows: Vec<[String; 5]>,
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

/// Why a chat operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// There is no such session (or no session for the service).
    #[error("{0}")]
    NotFound(String),
    /// The operation needs an open session.
    #[error(
        "chat session `{0}` is closed: no more events can be added; refresh to read its transcript"
    )]
    Closed(String),
    /// The agent is not the one in the session, or has not joined.
    #[error("{0}")]
    Refused(String),
    /// A `[chat]` limit refused the event (413 or 429).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Told about transcript changes once they are durable (the push layer implements it).
pub trait TranscriptListener: Send + Sync + 'static {
    /// `events` (only those the customer may see, never empty) were added to `session`.
    fn transcript_changed(&self, session: &ChatSession, events: &[TranscriptEvent]);
}

/// A listener that does nothing.
#[derive(Debug, Default)]
pub struct NoListener;

impl TranscriptListener for NoListener {
    fn transcript_changed(&self, _session: &ChatSession, _events: &[TranscriptEvent]) {}
}

/// An open session in memory.
struct Live {
    session: ChatSession,
    transcript: Vec<TranscriptEvent>,
    /// How fast its customer may add events (memory only: a restart refills it).
    bucket: MessageBucket,
}

/// Who adds an event, for the limits: the customer is rate-limited, every participant is
/// held to the size and transcript limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    Customer,
    Participant,
}

type Slot = Arc<tokio::sync::Mutex<Live>>;

/// The chat server. Cheap to clone.
#[derive(Clone)]
pub struct ChatServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChatServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatServer").finish_non_exhaustive()
    }
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    listener: Arc<dyn TranscriptListener>,
    /// Open sessions by service id.
    open: Mutex<HashMap<String, Slot>>,
    /// Open sessions' service ids by chat session id.
    by_session: Mutex<HashMap<String, String>>,
    /// Idle control for new sessions and for `reset-parameters`.
    idle_defaults: IdleSettings,
    /// The `[chat]` limits on message size, rate and transcript length.
    limits: ChatLimits,
    /// (when, service id): idle-control deadlines. An entry may be stale (the session was
    /// active since); it is checked against the session when it comes due.
    idle_deadlines: Mutex<BTreeSet<(Timestamp, String)>>,
    /// Wakes the idle-control task when an earlier deadline appears.
    idle_changed: tokio::sync::Notify,
}

impl ChatServer {
    /// A chat server over `store`, pushing through `listener`, with `idle_defaults` for
    /// new sessions and `limits` for every session.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        listener: Arc<dyn TranscriptListener>,
        idle_defaults: IdleSettings,
        limits: ChatLimits,
    ) -> Self {
        ChatServer {
            inner: Arc::new(Inner {
                store,
                clock,
                listener,
                open: Mutex::new(HashMap::new()),
                by_session: Mutex::new(HashMap::new()),
                idle_defaults,
                limits,
                idle_deadlines: Mutex::new(BTreeSet::new()),
                idle_changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Loads the open sessions after a restart; they report `IsRestored`. A session whose
    /// service is gone or finished (the crash came between the two writes) is closed.
    /// Returns how many were restored, and the (service, agent) pairs whose service went
    /// PROCESSING but whose agent was never let into the chat (the crash came between
    /// those two writes): the caller hands them over again.
    ///
    /// # Errors
    /// Storage failed.
    pub fn restore(&self) -> Result<(usize, Vec<(String, String)>), StoreError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now();
        let mut restored = 0;
        let mut unassigned = Vec::new();
        for mut session in store.chat_sessions(|s| s.closed_at.is_none())? {
            let service = store.service(&session.service_id)?;
            let current = service.as_ref().is_some_and(|record| {
                record.is_active() && record.chat_session_id.as_deref() == Some(&session.id)
            });
            session.restored = true;
            let handed_over = session.agent.is_some();
            let waiting_agent = service
                .as_ref()
                .filter(|record| {
                    current && !handed_over && record.state == CallbackState::Processing
                })
                .and_then(|record| record.reserved_agent.clone());
            if let Some(agent) = waiting_agent {
                unassigned.push((session.service_id.clone(), agent));
            }
            if !current {
                session.closed_at = Some(now);
                store.put_chat_session(&session)?;
                continue;
            }
            store.put_chat_session(&session)?;
            let transcript = store.transcript(&session.id)?;
            self.watch_idle(&session);
            self.insert_open(Live {
                session,
                transcript,
                bucket: MessageBucket::new(&self.inner.limits, now),
            });
            restored += 1;
        }
        Ok((restored, unassigned))
    }

    /// Creates the chat session of `record` (not yet linked to it: the caller stores the
    /// link). Durable when this returns. When the service already has an open session (two
    /// `ixn/chat` at once), that one is returned with `false`: one service, one chat.
    ///
    /// # Errors
    /// Storage failed.
    pub async fn create(
        &self,
        record: &ServiceRecord,
        start: StartChat,
    ) -> Result<(CustomerView, bool), ChatError> {
        let now = self.inner.clock.now();
        let mut customer = start.customer;
        customer.user_id = random_id(16);
        customer.secure_key = random_id(16);
        let session = ChatSession {
            id: random_id(16),
            service_id: record.id.clone(),
            owner: record.owner.clone(),
            created_at: now,
            customer,
            comet: start.comet,
            agent: None,
            closed_at: None,
            next_position: 1,
            client_position: 1,
            on_hold: false,
            language: None,
            restored: false,
            idle: self.inner.idle_defaults.clone(),
            idle_state: IdleState::new(now),
        };
        // Claim the service's place first, so a concurrent create finds this session.
        let slot = Arc::new(tokio::sync::Mutex::new(Live {
            session: session.clone(),
            transcript: Vec::new(),
            bucket: MessageBucket::new(&self.inner.limits, now),
        }));
        let live = slot.clone().lock_owned().await;
        let existing = {
            let mut open = lock(&self.inner.open);
            match open.get(&record.id) {
                Some(existing) => Some(existing.clone()),
                None => {
                    open.insert(record.id.clone(), slot);
                    None
                }
            }
        };
        if let Some(existing) = existing {
            drop(live);
            let other = existing.lock().await;
            return Ok((
                CustomerView {
                    session: other.session.clone(),
                    rows: Vec::new(),
                },
                false,
            ));
        }
        lock(&self.inner.by_session).insert(session.id.clone(), record.id.clone());
        let stored = match self.inner.store.put_chat_session(&session) {
            Ok(()) => self.inner.store.wait_durable().await,
            Err(err) => Err(err),
        };
        if let Err(err) = stored {
            lock(&self.inner.open).remove(&record.id);
            lock(&self.inner.by_session).remove(&session.id);
            return Err(err.into());
        }
        self.watch_idle(&live.session);
        tracing::info!(service_id = %record.id, chat_session_id = %session.id, "chat session created");
        Ok((
            CustomerView {
                session,
                rows: Vec::new(),
            },
            true,
        ))
    }

    /// The session of `record` as it is, showing no rows and marking nothing seen.
    ///
    /// # Errors
    /// No session, storage failure.
    pub async fn view(&self, record: &ServiceRecord) -> Result<CustomerView, ChatError> {
        let slot = self.slot(record)?;
        let live = slot.lock().await;
        Ok(CustomerView {
            session: live.session.clone(),
            rows: Vec::new(),
        })
    }

    /// The customer's view of the session of `service_id`: the rows from `from`, or those not
    /// shown yet; with `message`, the customer's message is added first.
    ///
    /// # Errors
    /// No session, a message for a closed session, storage failure.
    pub async fn refresh(
        &self,
        record: &ServiceRecord,
        from: Option<u64>,
        message: Option<String>,
    ) -> Result<CustomerView, ChatError> {
        let slot = self.slot(record)?;
        let mut live = slot.lock().await;
        if let Some(text) = message {
            let nickname = live.session.customer.nickname.clone();
            let event = NewEvent::new(EventKind::Message, &nickname, &text, UserType::Client);
            self.append_limited(&mut live, event, "message", Sender::Customer)
                .await?;
        }
        let from = from.unwrap_or(live.session.client_position).max(1);
        let rows = customer_rows(&live.transcript, from, live.session.created_at);
        // Only poll mode tracks what the customer was shown; kept in memory, stored with
        // the next write (after a restart a customer may be shown a few rows again).
        live.session.client_position = live.session.next_position;
        Ok(CustomerView {
            session: live.session.clone(),
            rows,
        })
    }

    /// The customer's notice: typing started or stopped, or a custom notice.
    ///
    /// # Errors
    /// No session, a closed session, storage failure.
    pub async fn customer_notice(
        &self,
        record: &ServiceRecord,
        kind: EventKind,
        text: &str,
    ) -> Result<CustomerView, ChatError> {
        let slot = self.slot(record)?;
        let mut live = slot.lock().await;
        let nickname = live.session.customer.nickname.clone();
        let event = NewEvent::new(kind, &nickname, text, UserType::Client);
        self.append_limited(&mut live, event, "message", Sender::Customer)
            .await?;
        // Like a refresh: what the customer had not been shown, this notice included.
        let from = live.session.client_position.max(1);
        let rows = customer_rows(&live.transcript, from, live.session.created_at);
        live.session.client_position = live.session.next_position;
        Ok(CustomerView {
            session: live.session.clone(),
            rows,
        })
    }

    /// The customer leaves: the session closes. Disconnecting a closed session changes
    /// nothing and closes nothing.
    ///
    /// # Errors
    /// No session, storage failure.
    pub async fn disconnect(
        &self,
        record: &ServiceRecord,
    ) -> Result<(CustomerView, Option<Closed>), ChatError> {
        let slot = self.slot(record)?;
        let mut live = slot.lock().await;
        let closed = if live.session.closed_at.is_none() {
            let nickname = live.session.customer.nickname.clone();
            let left = NewEvent::new(EventKind::Left, &nickname, "", UserType::Client);
            Some(self.close_live(&mut live, Some(left)).await?)
        } else {
            None
        };
        Ok((
            CustomerView {
                session: live.session.clone(),
                rows: Vec::new(),
            },
            closed,
        ))
    }

    /// An agent was routed to the session of `service_id`; with `auto_answer` it joins at
    /// once (`Notice.Joined`), else it is invited and joins on [`ChatServer::accept`].
    ///
    /// # Errors
    /// No open session, storage failure.
    pub async fn assign_agent(
        &self,
        service_id: &str,
        agent_id: &str,
        nickname: &str,
        auto_answer: bool,
    ) -> Result<(), ChatError> {
        let slot = self.open_slot(service_id)?;
        let mut live = slot.lock().await;
        if live.session.closed_at.is_some() {
            return Err(ChatError::Closed(live.session.id.clone()));
        }
        live.session.agent = Some(SessionAgent {
            id: agent_id.to_string(),
            nickname: nickname.to_string(),
            joined: false,
        });
        if auto_answer {
            self.join(&mut live).await
        } else {
            self.inner.store.put_chat_session(&live.session)?;
            self.inner.store.wait_durable().await?;
            Ok(())
        }
    }

    /// The invited agent accepts the chat and joins it.
    ///
    /// # Errors
    /// No open session, another agent's, already joined, storage failure.
    pub async fn accept(&self, service_id: &str, agent_id: &str) -> Result<(), ChatError> {
        let slot = self.open_slot(service_id)?;
        let mut live = slot.lock().await;
        match &live.session.agent {
            Some(agent) if agent.id == agent_id && !agent.joined => self.join(&mut live).await,
            Some(agent) if agent.id == agent_id => Err(ChatError::Refused(format!(
                "agent `{agent_id}` has already joined the chat of service `{service_id}`"
            ))),
            _ => Err(not_agents(service_id, agent_id)),
        }
    }

    /// Adds the agent's event (message, typing, pushed URL).
    ///
    /// # Errors
    /// No open session, not this agent's or not joined yet, storage failure.
    pub async fn agent_event(
        &self,
        service_id: &str,
        agent_id: &str,
        kind: EventKind,
        text: &str,
    ) -> Result<TranscriptEvent, ChatError> {
        let slot = self.open_slot(service_id)?;
        let mut live = slot.lock().await;
        let nickname = self.joined_agent(&live.session, service_id, agent_id)?;
        let field = match kind {
            EventKind::PushUrl => "url",
            EventKind::TypingStarted | EventKind::TypingStopped => "typing",
            _ => "text",
        };
        let event = NewEvent::new(kind, &nickname, text, UserType::Agent);
        self.append_limited(&mut live, event, field, Sender::Participant)
            .await
    }

    /// The agent leaves: the session closes (one agent per session).
    ///
    /// # Errors
    /// No open session, not this agent's, storage failure.
    pub async fn agent_leave(&self, service_id: &str, agent_id: &str) -> Result<Closed, ChatError> {
        let slot = self.open_slot(service_id)?;
        let mut live = slot.lock().await;
        let nickname = match &live.session.agent {
            Some(agent) if agent.id == agent_id => agent.nickname.clone(),
            _ => return Err(not_agents(service_id, agent_id)),
        };
        let left = NewEvent::new(EventKind::Left, &nickname, "", UserType::Agent);
        self.close_live(&mut live, Some(left)).await
    }

    /// Closes the session of `service_id` from outside (the queue timed out, the service
    /// was cancelled), with an optional last message from the system. `None` when it has
    /// no open session.
    ///
    /// # Errors
    /// Storage failure.
    pub async fn close(
        &self,
        service_id: &str,
        message: Option<&str>,
    ) -> Result<Option<Closed>, ChatError> {
        let Ok(slot) = self.open_slot(service_id) else {
            return Ok(None);
        };
        let mut live = slot.lock().await;
        if live.session.closed_at.is_some() {
            return Ok(None);
        }
        let last = message
            .map(|text| NewEvent::new(EventKind::Message, "system", text, UserType::External));
        self.close_live(&mut live, last).await.map(Some)
    }

    /// The session and its transcript from position `from` on, as the agent (or an
    /// administrator) sees it; `from` 1 is the whole transcript. Only the events asked for
    /// are copied, so a poll for what is new costs what is new.
    ///
    /// # Errors
    /// No session, storage failure.
    pub async fn full_view(
        &self,
        record: &ServiceRecord,
        from: u64,
    ) -> Result<(ChatSession, Vec<TranscriptEvent>), ChatError> {
        let slot = self.slot(record)?;
        let live = slot.lock().await;
        // Positions are 1, 2, 3, ... in order; the search only guards against a gap.
        let start = live.transcript.partition_point(|e| e.position < from);
        Ok((live.session.clone(), live.transcript[start..].to_vec()))
    }

    /// The session of `record` without its transcript (the agent's interaction list).
    ///
    /// # Errors
    /// No session, storage failure.
    pub async fn session(&self, record: &ServiceRecord) -> Result<ChatSession, ChatError> {
        let slot = self.slot(record)?;
        let live = slot.lock().await;
        Ok(live.session.clone())
    }

    /// The agent of the open session of `service_id`, if any.
    pub async fn agent_of(&self, service_id: &str) -> Option<SessionAgent> {
        let slot = self.open_slot(service_id).ok()?;
        let live = slot.lock().await;
        live.session.agent.clone()
    }

    /// Drops the session of an expired service from memory (the store already removed it).
    pub fn forget(&self, service_id: &str) {
        if lock(&self.inner.open).remove(service_id).is_some() {
            lock(&self.inner.by_session).retain(|_, service| service != service_id);
        }
    }

    /// Open sessions in memory.
    pub fn open_count(&self) -> usize {
        lock(&self.inner.open).len()
    }

    // ----- idle control -----

    /// The earliest idle-control deadline, if any session has one.
    pub fn next_idle_deadline(&self) -> Option<Timestamp> {
        lock(&self.inner.idle_deadlines).first().map(|(at, _)| *at)
    }

    /// Resolves when a new idle-control deadline was set (it may be earlier than the one
    /// being waited for).
    pub async fn idle_changed(&self) {
        self.inner.idle_changed.notified().await;
    }

    /// Runs the idle-control actions due at the clock's now: alerts are posted as system
    /// messages, and a session idle for `timeout-close` is closed with its closing message.
    /// Returns the sessions it closed, for the caller to settle their services.
    pub async fn run_idle_control(&self) -> Vec<Closed> {
        let now = self.inner.clock.now();
        let due: Vec<String> = {
            let mut deadlines = lock(&self.inner.idle_deadlines);
            let mut due = Vec::new();
            while let Some((at, service)) = deadlines.first().cloned() {
                if at > now {
                    break;
                }
                deadlines.remove(&(at, service.clone()));
                due.push(service);
            }
            due
        };
        let mut closed = Vec::new();
        for service_id in due {
            let Ok(slot) = self.open_slot(&service_id) else {
                continue;
            };
            let mut live = slot.lock().await;
            if live.session.closed_at.is_some() {
                continue;
            }
            let idle = live.session.idle.clone();
            let action = live.session.idle_state.due(&idle, now);
            let result = match action {
                None => {
                    // Stale entry: the session was active since; watch its real deadline.
                    self.watch_idle(&live.session);
                    continue;
                }
                Some(IdleAction::Alert { text } | IdleAction::SecondAlert { text }) => {
                    let alert =
                        NewEvent::new(EventKind::Message, "system", &text, UserType::External);
                    self.append(&mut live, vec![alert]).await.map(|_| None)
                }
                Some(IdleAction::Close { text }) => {
                    let last =
                        NewEvent::new(EventKind::Message, "system", &text, UserType::External);
                    self.close_live(&mut live, Some(last)).await.map(Some)
                }
            };
            match result {
                Ok(Some(done)) => closed.push(done),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(service_id = %service_id, error = %err, "idle control failed");
                }
            }
        }
        closed
    }

    /// Registers the session's next idle-control deadline.
    fn watch_idle(&self, session: &ChatSession) {
        if session.closed_at.is_some() {
            return;
        }
        let Some(at) = session.idle_state.next_deadline(&session.idle) else {
            return;
        };
        let earliest = {
            let mut deadlines = lock(&self.inner.idle_deadlines);
            deadlines.insert((at, session.service_id.clone()));
            deadlines.first().map(|(first, _)| *first)
        };
        if earliest == Some(at) {
            self.inner.idle_changed.notify_one();
        }
    }

    // ----- ESP requests (seeds 002 and 004) -----

    /// Applies an ESP request to the session of `record`.
    ///
    /// # Errors
    /// No session, a closed session for a request that changes it, a bad idle-control
    /// configuration, storage failure.
    pub async fn esp(
        &self,
        record: &ServiceRecord,
        request: EspRequest,
    ) -> Result<EspOutcome, ChatError> {
        let slot = self.slot(record)?;
        let mut live = slot.lock().await;
        let now = self.inner.clock.now();
        match request {
            EspRequest::GetSessionInfo { .. } => Ok(EspOutcome::Info {
                created_at: live.session.created_at,
                restored: live.session.restored,
            }),
            EspRequest::Message {
                text,
                message_type,
                common,
            } => {
                let mut event = esp_event(EventKind::Message, &text, &common);
                event.message_type = message_type;
                self.post(&mut live, event, "MessageText").await
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
                self.post(&mut live, event, "NoticeText").await
            }
            EspRequest::CloseSession {
                close_if_no_agents,
                purge,
                ..
            } => {
                if live.session.closed_at.is_some() {
                    return Ok(EspOutcome::Close {
                        is_closed: true,
                        closed: None,
                    });
                }
                let agent_present = live.session.agent.as_ref().is_some_and(|a| a.joined);
                if close_if_no_agents && agent_present {
                    return Ok(EspOutcome::Close {
                        is_closed: false,
                        closed: None,
                    });
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
                let closed = self.close_live(&mut live, last).await?;
                Ok(EspOutcome::Close {
                    is_closed: true,
                    closed: Some(closed),
                })
            }
            EspRequest::PlaceOnHold { .. } => {
                self.check_open(&live)?;
                live.session.on_hold = true;
                self.save(&live).await?;
                Ok(EspOutcome::Done)
            }
            EspRequest::IdleControlConfigure { changes, .. } => {
                self.check_open(&live)?;
                let idle = live
                    .session
                    .idle
                    .apply(&changes, &self.inner.idle_defaults)
                    .map_err(|err| ChatError::Refused(err.to_string()))?;
                live.session.idle = idle;
                self.save(&live).await?;
                Ok(EspOutcome::Done)
            }
            EspRequest::ConfigureSession {
                async_idle_reset,
                language,
                ..
            } => {
                self.check_open(&live)?;
                if async_idle_reset {
                    live.session.idle_state = IdleState::new(now);
                }
                if let Some(language) = language {
                    live.session.language = Some(match language {
                        Language::Code(code) => code,
                        Language::Name(name) => name,
                    });
                }
                self.save(&live).await?;
                Ok(EspOutcome::Done)
            }
        }
    }

    async fn post(
        &self,
        live: &mut Live,
        event: NewEvent,
        field: &'static str,
    ) -> Result<EspOutcome, ChatError> {
        let added = self
            .append_limited(live, event, field, Sender::Participant)
            .await?;
        Ok(EspOutcome::Posted {
            script_pos: added.position - 1,
        })
    }

    fn check_open(&self, live: &Live) -> Result<(), ChatError> {
        match live.session.closed_at {
            Some(_) => Err(ChatError::Closed(live.session.id.clone())),
            None => Ok(()),
        }
    }

    // ----- inside a session's lock -----

    /// Appends one event from a participant after the `[chat]` limits allow it: its text
    /// (carried in the request field `field`) is not too large, the transcript has room,
    /// and a customer is not sending too fast. The rate token is taken last, so a refused
    /// message costs the sender none. What the system adds itself (joins, idle alerts, the
    /// last event of a close) is not limited: it cannot be flooded from outside.
    async fn append_limited(
        &self,
        live: &mut Live,
        event: NewEvent,
        field: &'static str,
        sender: Sender,
    ) -> Result<TranscriptEvent, ChatError> {
        if live.session.closed_at.is_some() {
            return Err(ChatError::Closed(live.session.id.clone()));
        }
        let limits = &self.inner.limits;
        limits.check_size(field, &event.text)?;
        limits.check_room(field, live.session.next_position.saturating_sub(1))?;
        if sender == Sender::Customer {
            live.bucket.take(limits, self.inner.clock.now())?;
        }
        let mut added = self.append(live, vec![event]).await?;
        Ok(added.remove(0))
    }

    /// Numbers, stores and (once durable) pushes `events`. Returns them numbered.
    async fn append(
        &self,
        live: &mut Live,
        events: Vec<NewEvent>,
    ) -> Result<Vec<TranscriptEvent>, ChatError> {
        if live.session.closed_at.is_some() {
            return Err(ChatError::Closed(live.session.id.clone()));
        }
        self.append_unchecked(live, events, false).await
    }

    /// Appends without checking that the session is open; with `closing`, the session is
    /// closed in the same write (memory changes only once the write is made).
    async fn append_unchecked(
        &self,
        live: &mut Live,
        events: Vec<NewEvent>,
        closing: bool,
    ) -> Result<Vec<TranscriptEvent>, ChatError> {
        let now = self.inner.clock.now();
        let mut session = live.session.clone();
        if closing {
            session.closed_at = Some(now);
        }
        let numbered: Vec<TranscriptEvent> = events
            .into_iter()
            .map(|event| {
                let position = session.next_position;
                session.next_position += 1;
                event.at(position, now)
            })
            .collect();
        // What the participants do counts as activity; what the system says does not.
        for event in &numbered {
            if event.user_type != UserType::External {
                let idle = session.idle.clone();
                session
                    .idle_state
                    .activity(&idle, event.kind.is_notice(), now);
            }
        }
        self.inner.store.append_transcript(&session, &numbered)?;
        live.session = session;
        live.transcript.extend(numbered.iter().cloned());
        self.watch_idle(&live.session);
        self.inner.store.wait_durable().await?;
        self.announce(&live.session, &numbered);
        Ok(numbered)
    }

    /// Stores a change of the session that adds no event.
    async fn save(&self, live: &Live) -> Result<(), ChatError> {
        self.inner.store.put_chat_session(&live.session)?;
        self.watch_idle(&live.session);
        self.inner.store.wait_durable().await?;
        Ok(())
    }

    /// Hands the customer-visible part of `events` to the listener (comet sessions only).
    fn announce(&self, session: &ChatSession, events: &[TranscriptEvent]) {
        if !session.comet {
            return;
        }
        let visible: Vec<TranscriptEvent> = events
            .iter()
            .filter(|e| e.visibility.visible_to_customer())
            .cloned()
            .collect();
        if !visible.is_empty() {
            self.inner.listener.transcript_changed(session, &visible);
        }
    }

    async fn join(&self, live: &mut Live) -> Result<(), ChatError> {
        let Some(agent) = live.session.agent.as_mut() else {
            return Ok(());
        };
        agent.joined = true;
        let nickname = agent.nickname.clone();
        let joined = NewEvent::new(EventKind::Joined, &nickname, "", UserType::Agent);
        self.append(live, vec![joined]).await.map(drop)
    }

    /// Adds `last` (if any), marks the session closed and takes it out of memory.
    async fn close_live(
        &self,
        live: &mut Live,
        last: Option<NewEvent>,
    ) -> Result<Closed, ChatError> {
        self.append_unchecked(live, last.into_iter().collect(), true)
            .await?;
        lock(&self.inner.open).remove(&live.session.service_id);
        lock(&self.inner.by_session).remove(&live.session.id);
        tracing::info!(service_id = %live.session.service_id, chat_session_id = %live.session.id, "chat session closed");
        Ok(Closed {
            service_id: live.session.service_id.clone(),
            agent: live.session.agent.clone(),
        })
    }

    fn joined_agent(
        &self,
        session: &ChatSession,
        service_id: &str,
        agent_id: &str,
    ) -> Result<String, ChatError> {
        match &session.agent {
            Some(agent) if agent.id == agent_id && agent.joined => Ok(agent.nickname.clone()),
            Some(agent) if agent.id == agent_id => Err(ChatError::Refused(format!(
                "agent `{agent_id}` has not joined the chat of service `{service_id}` yet: accept it first (POST /genesys/1/agent/{agent_id}/interactions/{service_id}/accept)"
            ))),
            _ => Err(not_agents(service_id, agent_id)),
        }
    }

    // ----- finding sessions -----

    fn insert_open(&self, live: Live) {
        let service_id = live.session.service_id.clone();
        lock(&self.inner.by_session).insert(live.session.id.clone(), service_id.clone());
        lock(&self.inner.open).insert(service_id, Arc::new(tokio::sync::Mutex::new(live)));
    }

    /// The open session of a service.
    fn open_slot(&self, service_id: &str) -> Result<Slot, ChatError> {
        lock(&self.inner.open)
            .get(service_id)
            .cloned()
            .ok_or_else(|| {
                ChatError::NotFound(format!("service `{service_id}` has no open chat session"))
            })
    }

    /// The session of `record`: the open one, or the closed one read back from storage.
    fn slot(&self, record: &ServiceRecord) -> Result<Slot, ChatError> {
        if let Ok(slot) = self.open_slot(&record.id) {
            return Ok(slot);
        }
        let missing = || {
            ChatError::NotFound(format!(
                "service `{}` has no chat session: start one with POST /genesys/1/service/{}/ixn/chat",
                record.id, record.id
            ))
        };
        let session_id = record.chat_session_id.as_deref().ok_or_else(missing)?;
        let session = self
            .inner
            .store
            .chat_session(session_id)?
            .ok_or_else(missing)?;
        let transcript = self.inner.store.transcript(session_id)?;
        let bucket = MessageBucket::new(&self.inner.limits, self.inner.clock.now());
        Ok(Arc::new(tokio::sync::Mutex::new(Live {
            session,
            transcript,
            bucket,
        })))
    }

    /// The service id of the chat session `session_id` (open or stored).
    ///
    /// # Errors
    /// Storage failure.
    pub fn service_of_session(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        if let Some(service) = lock(&self.inner.by_session).get(session_id) {
            return Ok(Some(service.clone()));
        }
        Ok(self
            .inner
            .store
            .chat_session(session_id)?
            .map(|s| s.service_id))
    }
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

fn not_agents(service_id: &str, agent_id: &str) -> ChatError {
    ChatError::Refused(format!(
        "the chat of service `{service_id}` is not routed to agent `{agent_id}`: see GET /genesys/1/agent/{agent_id}/interactions"
    ))
}

/// A random alphanumeric id of `len` characters (about 5.95 bits each).
fn random_id(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// Locks a std mutex; a panic elsewhere while holding it does not make the map unusable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
