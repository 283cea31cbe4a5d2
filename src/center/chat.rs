//! The embedded Chat Server: chat sessions, their participants and transcripts.
//!
//! Split like the router: [`crate::domain::chat::session`] holds the rules of one session,
//! pure ([`Session::apply`] takes a request and the time and answers a step); this
//! module is their thin owner: the map of open sessions behind locks, the store, the group
//! commit, the pushes and the idle-control deadlines.
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

use crate::clock::Clock;
use crate::domain::chat::{EventKind, TranscriptEvent};
use crate::domain::chat_limits::ChatLimits;
use crate::domain::esp::EspRequest;
use crate::domain::idle::{IdleSettings, IdleState};
use crate::domain::service::{CallbackState, ServiceRecord};
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError};

use crate::domain::chat::session::{
    ChatSession, Committed, Customer, Request, Rules, Session, SessionAgent, Write,
};
pub use crate::domain::chat::session::{Closed, EspOutcome, Refusal};

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

/// Why a chat operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// There is no such session (or no session for the service).
    #[error("{0}")]
    NotFound(String),
    /// The session's rules refused the request: closed, not this agent's, or a `[chat]` limit.
    #[error(transparent)]
    Refused(#[from] Refusal),
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

type Slot = Arc<tokio::sync::Mutex<Session>>;

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
    /// A second listener, told of every customer-visible change of every session (comet or
    /// not): Chat API v2's CometD form, which decides itself which chats it delivers.
    observer: std::sync::OnceLock<Arc<dyn TranscriptListener>>,
    /// Open sessions by service id.
    open: Mutex<HashMap<String, Slot>>,
    /// Open sessions' service ids by chat session id.
    by_session: Mutex<HashMap<String, String>>,
    /// The `[chat]` limits and the idle control for new sessions and `reset-parameters`.
    rules: Rules,
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
                observer: std::sync::OnceLock::new(),
                open: Mutex::new(HashMap::new()),
                by_session: Mutex::new(HashMap::new()),
                rules: Rules {
                    limits,
                    idle_defaults,
                },
                idle_deadlines: Mutex::new(BTreeSet::new()),
                idle_changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Adds the listener told of every customer-visible change of any session (once; a second
    /// is ignored). It is called after the write is durable, under the session's lock, like
    /// the comet pushes.
    pub fn add_listener(&self, observer: Arc<dyn TranscriptListener>) {
        if self.inner.observer.set(observer).is_err() {
            tracing::warn!("a transcript observer is installed already; the second is ignored");
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
        for mut session in store.chat_sessions(&mut |s| s.closed_at.is_none())? {
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
            // Redone by the next start if a crash loses it: nobody is told of it.
            if !current {
                session.closed_at = Some(now);
                store.put_chat_session(&session)?.without_waiting();
                continue;
            }
            store.put_chat_session(&session)?.without_waiting();
            let transcript = store.transcript(&session.id)?;
            let live = Session::new(session, transcript, &self.inner.rules, now);
            self.watch_idle(&live);
            self.insert_open(live);
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
            idle: self.inner.rules.idle_defaults.clone(),
            idle_state: IdleState::new(now),
        };
        // Claim the service's place first, so a concurrent create finds this session.
        let slot = Arc::new(tokio::sync::Mutex::new(Session::new(
            session.clone(),
            Vec::new(),
            &self.inner.rules,
            now,
        )));
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
                    session: other.state().clone(),
                    rows: Vec::new(),
                },
                false,
            ));
        }
        lock(&self.inner.by_session).insert(session.id.clone(), record.id.clone());
        let stored = match self.inner.store.put_chat_session(&session) {
            Ok(written) => written.durable().await,
            Err(err) => Err(err),
        };
        if let Err(err) = stored {
            lock(&self.inner.open).remove(&record.id);
            lock(&self.inner.by_session).remove(&session.id);
            return Err(err.into());
        }
        self.watch_idle(&live);
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
    pub async fn view(&self, chat: impl Into<ChatOf<'_>>) -> Result<CustomerView, ChatError> {
        let slot = self.slot(chat.into())?;
        let live = slot.lock().await;
        Ok(CustomerView {
            session: live.state().clone(),
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
        chat: impl Into<ChatOf<'_>>,
        from: Option<u64>,
        message: Option<String>,
    ) -> Result<CustomerView, ChatError> {
        let slot = self.slot(chat.into())?;
        let mut live = slot.lock().await;
        if let Some(text) = message {
            self.run(&mut live, Request::CustomerMessage { text })
                .await?;
        }
        let rows = live.show_customer(from);
        Ok(CustomerView {
            session: live.state().clone(),
            rows,
        })
    }

    /// The customer's notice: typing started or stopped, or a custom notice.
    ///
    /// # Errors
    /// No session, a closed session, storage failure.
    pub async fn customer_notice(
        &self,
        chat: impl Into<ChatOf<'_>>,
        kind: EventKind,
        text: &str,
    ) -> Result<CustomerView, ChatError> {
        let slot = self.slot(chat.into())?;
        let mut live = slot.lock().await;
        let text = text.to_string();
        self.run(&mut live, Request::CustomerNotice { kind, text })
            .await?;
        // Like a refresh: what the customer had not been shown, this notice included.
        let rows = live.show_customer(None);
        Ok(CustomerView {
            session: live.state().clone(),
            rows,
        })
    }

    /// The customer takes another nickname (Chat API v2 `updateNickname`).
    ///
    /// # Errors
    /// No session, a closed session, a `[chat]` limit, storage failure.
    pub async fn rename_customer(
        &self,
        chat: impl Into<ChatOf<'_>>,
        nickname: &str,
    ) -> Result<ChatSession, ChatError> {
        let slot = self.slot(chat.into())?;
        let mut live = slot.lock().await;
        let nickname = nickname.to_string();
        self.run(&mut live, Request::CustomerRenames { nickname })
            .await?;
        Ok(live.state().clone())
    }

    /// The customer leaves: the session closes. Disconnecting a closed session changes
    /// nothing and closes nothing.
    ///
    /// # Errors
    /// No session, storage failure.
    pub async fn disconnect(
        &self,
        chat: impl Into<ChatOf<'_>>,
    ) -> Result<(CustomerView, Option<Closed>), ChatError> {
        let slot = self.slot(chat.into())?;
        let mut live = slot.lock().await;
        let done = self.run(&mut live, Request::CustomerLeaves).await?;
        let view = CustomerView {
            session: live.state().clone(),
            rows: Vec::new(),
        };
        Ok((view, done.closed))
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
        let request = Request::AssignAgent {
            agent_id: agent_id.to_string(),
            nickname: nickname.to_string(),
            auto_answer,
        };
        self.run_open(service_id, request).await.map(drop)
    }

    /// The invited agent accepts the chat and joins it.
    ///
    /// # Errors
    /// No open session, another agent's, already joined, storage failure.
    pub async fn accept(&self, service_id: &str, agent_id: &str) -> Result<(), ChatError> {
        let agent_id = agent_id.to_string();
        self.run_open(service_id, Request::Accept { agent_id })
            .await
            .map(drop)
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
        let request = Request::AgentEvent {
            agent_id: agent_id.to_string(),
            kind,
            text: text.to_string(),
        };
        let mut done = self.run_open(service_id, request).await?;
        Ok(done.events.remove(0))
    }

    /// The agent leaves: the session closes (one agent per session).
    ///
    /// # Errors
    /// No open session, not this agent's, storage failure.
    pub async fn agent_leave(&self, service_id: &str, agent_id: &str) -> Result<Closed, ChatError> {
        let agent_id = agent_id.to_string();
        let done = self
            .run_open(service_id, Request::AgentLeaves { agent_id })
            .await?;
        done.closed
            .ok_or_else(|| Refusal::Closed(service_id.to_string()).into())
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
        let message = message.map(str::to_string);
        let done = self.run(&mut live, Request::Close { message }).await?;
        Ok(done.closed)
    }

    /// The session and its transcript from position `from` on, as the agent (or an
    /// administrator) sees it; `from` 1 is the whole transcript. Only the events asked for
    /// are copied, so a poll for what is new costs what is new.
    ///
    /// # Errors
    /// No session, storage failure.
    pub async fn full_view(
        &self,
        chat: impl Into<ChatOf<'_>>,
        from: u64,
    ) -> Result<(ChatSession, Vec<TranscriptEvent>), ChatError> {
        let slot = self.slot(chat.into())?;
        let live = slot.lock().await;
        Ok((live.state().clone(), live.transcript_from(from).to_vec()))
    }

    /// The session of `record` without its transcript (the agent's interaction list).
    ///
    /// # Errors
    /// No session, storage failure.
    pub async fn session(&self, chat: impl Into<ChatOf<'_>>) -> Result<ChatSession, ChatError> {
        let slot = self.slot(chat.into())?;
        let live = slot.lock().await;
        Ok(live.state().clone())
    }

    /// Whether the service `service_id` has an open chat session.
    pub fn is_open(&self, service_id: &str) -> bool {
        lock(&self.inner.open).contains_key(service_id)
    }

    /// The agent of the open session of `service_id`, if any.
    pub async fn agent_of(&self, service_id: &str) -> Option<SessionAgent> {
        let slot = self.open_slot(service_id).ok()?;
        let live = slot.lock().await;
        live.state().agent.clone()
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
            match self.run(&mut live, Request::IdleDue).await {
                Ok(done) => closed.extend(done.closed),
                Err(err) => {
                    tracing::warn!(service_id = %service_id, error = %err, "idle control failed");
                }
            }
        }
        closed
    }

    /// Registers the session's next idle-control deadline.
    fn watch_idle(&self, live: &Session) {
        let Some(at) = live.next_idle_deadline() else {
            return;
        };
        let earliest = {
            let mut deadlines = lock(&self.inner.idle_deadlines);
            deadlines.insert((at, live.state().service_id.clone()));
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
        chat: impl Into<ChatOf<'_>>,
        request: EspRequest,
    ) -> Result<EspOutcome, ChatError> {
        let slot = self.slot(chat.into())?;
        let mut live = slot.lock().await;
        let done = self.run(&mut live, Request::Esp(request)).await?;
        Ok(done.outcome.unwrap_or(EspOutcome::Done))
    }

    // ----- inside a session's lock -----

    /// Runs `request` on the open session of `service_id`.
    async fn run_open(&self, service_id: &str, request: Request) -> Result<Committed, ChatError> {
        let slot = self.open_slot(service_id)?;
        let mut live = slot.lock().await;
        self.run(&mut live, request).await
    }

    /// Applies `request` to `live` at the clock's now: the session decides, then its step
    /// is written, taken into memory, made durable, pushed (comet sessions) and, when it
    /// closed the session, the session leaves the map of open ones. Memory changes only once
    /// the write is made; the caller hears of it only once it is durable.
    async fn run(&self, live: &mut Session, request: Request) -> Result<Committed, ChatError> {
        let now = self.inner.clock.now();
        let step = live.apply(request, now, &self.inner.rules)?;
        let store = &self.inner.store;
        let written = match step.write {
            Write::Nothing => None,
            Write::Session => Some(store.put_chat_session(step.session())?),
            Write::Transcript => Some(store.append_transcript(step.session(), &step.events)?),
        };
        let done = live.commit(step);
        self.watch_idle(live);
        if let Some(written) = written {
            written.durable().await?;
        }
        let pushes = live.state().pushes(&done.events);
        if !pushes.is_empty() {
            self.inner
                .listener
                .transcript_changed(live.state(), &pushes);
        }
        if let Some(observer) = self.inner.observer.get() {
            let visible: Vec<TranscriptEvent> = done
                .events
                .iter()
                .filter(|e| e.visibility.visible_to_customer())
                .cloned()
                .collect();
            if !visible.is_empty() {
                observer.transcript_changed(live.state(), &visible);
            }
        }
        if done.closed.is_some() {
            let session = live.state();
            lock(&self.inner.open).remove(&session.service_id);
            lock(&self.inner.by_session).remove(&session.id);
            tracing::info!(service_id = %session.service_id, chat_session_id = %session.id, "chat session closed");
        }
        Ok(done)
    }

    // ----- finding sessions -----

    fn insert_open(&self, live: Session) {
        let service_id = live.state().service_id.clone();
        lock(&self.inner.by_session).insert(live.state().id.clone(), service_id.clone());
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

    /// The session of `chat`: the open one, or the closed one read back from storage (through
    /// the service record, read here when the caller named the service by id only).
    fn slot(&self, chat: ChatOf<'_>) -> Result<Slot, ChatError> {
        let service_id = match chat {
            ChatOf::Record(record) => &record.id,
            ChatOf::Service(id) => id,
        };
        if let Ok(slot) = self.open_slot(service_id) {
            return Ok(slot);
        }
        match chat {
            ChatOf::Record(record) => self.stored_slot(record),
            ChatOf::Service(id) => match self.inner.store.service(id)? {
                Some(record) => self.stored_slot(&record),
                None => Err(ChatError::NotFound(format!(
                    "no service has the id `{id}`: it may have expired (its _ttl passed) or never existed"
                ))),
            },
        }
    }

    /// The closed session of `record`, read back from storage.
    fn stored_slot(&self, record: &ServiceRecord) -> Result<Slot, ChatError> {
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
        let now = self.inner.clock.now();
        Ok(Arc::new(tokio::sync::Mutex::new(Session::new(
            session,
            transcript,
            &self.inner.rules,
            now,
        ))))
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

/// The chat a request is about: a service's, found among the open sessions by the service id,
/// else read back through the session its record links.
#[derive(Debug, Clone, Copy)]
pub enum ChatOf<'a> {
    /// A service whose record the caller has read already.
    Record(&'a ServiceRecord),
    /// A service named by its id, whose record is read only if its session is not open: a
    /// poll of an open chat, the commonest request, reads no record.
    Service(&'a str),
}

impl<'a> From<&'a ServiceRecord> for ChatOf<'a> {
    fn from(record: &'a ServiceRecord) -> Self {
        Self::Record(record)
    }
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
