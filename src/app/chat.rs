//! Chat: the customer's Chat API v1 (seed 003), the agent's side of a chat, and what a chat
//! means for its service.
//!
//! A chat starts on `ixn/chat`. A service whose agent is already reserved (Chat-Delayed,
//! Request-Chat-Poll) becomes PROCESSING at once and its agent joins; one that did not wait
//! (Chat-Immediate, Request-Chat) enters its virtual
//! queue now, and the router task hands its agent over when it finds one. When the session
//! closes (either side leaves, a workflow closes it, idle control closes it) the service
//! completes and the agent's capacity is freed.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::callbacks::route;
use super::records::{self, check_owner, not_found, settings_of, update};
use super::{AppError, AppState, Requester};
use crate::center::chat::{
    ChatError, ChatOf, Closed, CustomerView, EspOutcome, Refusal, StartChat,
};
use crate::clock;
use crate::domain::chat::{is_web_url, EventKind, TranscriptEvent};
use crate::domain::esp;
use crate::domain::options::{self, FieldError};
use crate::domain::service::{
    found_by, CallbackReason, CallbackState, LifecycleError, ServiceRecord,
};
use crate::domain::voice;
use crate::router::core::Event;
use crate::router::task::ChatCommand;
use crate::supervisor::Shutdown;

/// A chat reply for the customer: the session view plus how to render it.
#[derive(Debug)]
pub struct ChatReply {
    /// The service id.
    pub service_id: String,
    /// The session and the rows to show.
    pub view: CustomerView,
    /// The chat was just created (`chatIxnState` `CONNECTED`).
    pub created: bool,
}

/// Starts the chat of a service (`POST /genesys/1/service/{id}/ixn/chat`). A second call
/// returns the existing chat: one service has exactly one chat session. An id that matches
/// no service is a 404 (ids are chosen by the server, DESIGN §7).
///
/// # Errors
/// Unknown id (404), another user's service (403), a finished service
/// (400), no agent available yet for a service that waits for one (503), storage failure.
pub async fn start_chat(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
    start: StartChat,
) -> Result<ChatReply, AppError> {
    let record = state
        .store
        .service(service_id)?
        .ok_or_else(|| not_found(service_id))?;
    check_owner(&record, requester)?;
    if record.chat_session_id.is_some() {
        let view = state.chat.view(&record).await?;
        return Ok(ChatReply {
            service_id: record.id,
            view,
            created: false,
        });
    }
    if !record.is_active() {
        return Err(completed(&record, "chatted with").into());
    }
    let waits = options::waits_for_agent(&record.options);
    if waits && !matches!(record.state, CallbackState::Routing) {
        return Err(no_agent_yet(&record.id));
    }
    if start.comet && record.owner.is_none() {
        return Err(FieldError::new(
            "notify_by",
            "comet mode pushes the transcript to the CometD clients of the service's gms_user, and this service has none: send the gms_user header when creating the service, or leave notify_by out and poll with refresh",
        )
        .into());
    }
    let settings = settings_of(state, &record)?;

    let (view, created) = state.chat.create(&record, start).await?;
    if !created {
        // Another ixn/chat for this service got there first: its session is the chat.
        return Ok(ChatReply {
            service_id: record.id,
            view,
            created: false,
        });
    }
    let session_id = view.session.id.clone();
    let now = state.clock.now();
    let linked = update(state, service_id, |r| {
        let changed_meanwhile = r.chat_session_id.is_some() || !r.is_active();
        match r.start_chat(&session_id, waits, now) {
            Ok(_) => Ok(()),
            Err(_) if changed_meanwhile => Err(AppError::Lifecycle(LifecycleError::Completed {
                id: r.id.clone(),
                reason: "its chat changed meanwhile".into(),
                action: "chatted with",
            })),
            Err(_) => Err(no_agent_yet(&r.id)),
        }
    });
    let linked = match linked {
        Ok(linked) => linked.durable().await?,
        Err(err) => {
            // The service moved on between the two writes: the new session is not its chat.
            let _ = state.chat.close(service_id, None).await;
            return Err(err);
        }
    };
    tracing::info!(service_id = %service_id, state = %linked.state, "chat started");

    match (&linked.state, &linked.reserved_agent) {
        (CallbackState::Processing, Some(agent)) => {
            state.router.chat_started(linked.id.clone(), agent.clone());
        }
        _ => route(state, &linked, &settings),
    }
    Ok(ChatReply {
        service_id: linked.id,
        view,
        created: true,
    })
}

/// What the customer asks of a started chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerAction {
    /// `refresh`, optionally from a position and with a message.
    Refresh {
        /// `transcriptPosition`.
        from: Option<u64>,
        /// `message`.
        message: Option<String>,
    },
    /// `send` a message.
    Send(String),
    /// `startTyping`.
    StartTyping,
    /// `stopTyping`.
    StopTyping,
    /// `customNotice` with its text.
    CustomNotice(String),
    /// `disconnect`.
    Disconnect,
}

/// Applies a customer's chat action (`/ixn/chat/{refresh,send,...}`).
///
/// # Errors
/// Unknown id (404), another user's (403), no agent available yet (503), no chat started
/// (404), a closed session for anything but refresh and disconnect (400), storage failure.
pub async fn customer_action(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
    action: CustomerAction,
) -> Result<ChatReply, AppError> {
    records::reachable(state, service_id, requester)?;
    // An open chat needs nothing else of its record (polls of open chats are most of the
    // requests here); without one, the record says why, or links the closed session.
    let record = if state.chat.is_open(service_id) {
        None
    } else {
        let record = state
            .store
            .service(service_id)?
            .ok_or_else(|| not_found(service_id))?;
        no_chat_yet(&record)?;
        Some(record)
    };
    let chat = record
        .as_ref()
        .map_or(ChatOf::Service(service_id), ChatOf::Record);
    let view = match action {
        CustomerAction::Refresh { from, message } => {
            state.chat.refresh(chat, from, message).await?
        }
        CustomerAction::Send(message) => state.chat.refresh(chat, None, Some(message)).await?,
        CustomerAction::StartTyping => {
            state
                .chat
                .customer_notice(chat, EventKind::TypingStarted, "")
                .await?
        }
        CustomerAction::StopTyping => {
            state
                .chat
                .customer_notice(chat, EventKind::TypingStopped, "")
                .await?
        }
        CustomerAction::CustomNotice(text) => {
            state
                .chat
                .customer_notice(chat, EventKind::Custom, &text)
                .await?
        }
        CustomerAction::Disconnect => {
            let (view, closed) = state.chat.disconnect(chat).await?;
            if let Some(closed) = closed {
                settle(state, &closed, CallbackReason::Cancelled).await?;
            }
            view
        }
    };
    Ok(ChatReply {
        service_id: service_id.to_string(),
        view,
        created: false,
    })
}

/// 503 (no agent yet) or 404 (no chat started) for a service without a chat session.
fn no_chat_yet(record: &ServiceRecord) -> Result<(), AppError> {
    let service_id = record.id.as_str();
    if record.chat_session_id.is_none() {
        let waiting = options::waits_for_agent(&record.options)
            && matches!(
                record.state,
                CallbackState::Scheduled | CallbackState::Queued
            );
        return Err(if waiting {
            no_agent_yet(service_id)
        } else {
            AppError::NotFound(format!(
                "service `{service_id}` has no chat yet: start it with POST /genesys/1/service/{service_id}/ixn/chat"
            ))
        });
    }
    Ok(())
}

/// One interaction of an agent, for the agent desktop.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// The service.
    pub record: ServiceRecord,
    /// `reserved` (waiting for the customer), `invited` (chat or voice callback waiting for
    /// accept) or `active`.
    pub status: &'static str,
    /// The chat, when one started: the session, which says its transcript position. The
    /// transcript itself is read through [`agent_transcript`] from a position, so a poll of
    /// the list does not carry it again and again.
    pub chat: Option<crate::domain::chat::session::ChatSession>,
    /// How long the customer waited for this agent, in whole seconds (stored times, so the
    /// injected clock's): see [`ServiceRecord::waited_secs`].
    pub waited_secs: Option<u64>,
    /// The routing step whose target found this agent.
    pub routing_step: Option<crate::domain::service::FoundBy>,
}

/// The interactions reserved for or handled by `agent_id`.
///
/// # Errors
/// Unknown agent (404), storage failure.
pub async fn interactions(state: &AppState, agent_id: &str) -> Result<Vec<Interaction>, AppError> {
    let agent = agent_id.to_string();
    let work = state
        .router
        .query(move |router, _| {
            router.agent(&agent).map(|a| {
                let mut ids: Vec<String> = a.reserved.iter().cloned().collect();
                ids.extend(a.active.values().flatten().cloned());
                (ids, a.clone())
            })
        })
        .await
        .ok_or_else(|| AppError::Unavailable("the router is stopping: try again".into()))?
        .ok_or_else(|| unknown_agent(agent_id))?;
    let (work, agent) = work;
    let is_member = |target: &str| {
        crate::domain::target::Target::parse(target).is_ok_and(|t| agent.is_member_of(&t))
    };
    let mut found = Vec::with_capacity(work.len());
    for id in work {
        let Some(record) = state.store.service(&id)? else {
            continue;
        };
        let chat = match record.chat_session_id {
            Some(_) => Some(state.chat.session(&record).await?),
            None => None,
        };
        let status = match (&record.state, &chat) {
            _ if voice::is_voice(&record) => {
                voice::Stage::of(&record).map_or("active", |s| s.status())
            }
            (CallbackState::Routing, _) => "reserved",
            (_, Some(session)) if session.agent.as_ref().is_some_and(|a| !a.joined) => "invited",
            _ => "active",
        };
        found.push(Interaction {
            waited_secs: record.waited_secs(),
            routing_step: found_by(&state.store.routing_history(&id)?, agent_id, is_member),
            record,
            status,
            chat,
        });
    }
    Ok(found)
}

/// What an agent does in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Accept an invitation (agents without `auto_answer`).
    Accept,
    /// Send a message.
    Message(String),
    /// Start or stop typing.
    Typing(bool),
    /// Push a URL to the customer.
    PushUrl(String),
    /// Leave: the chat ends.
    Leave,
}

/// Applies an agent's chat action. Returns the event it added, if any.
///
/// # Errors
/// Unknown service (404), a chat that is not this agent's or not joined (400), an invalid
/// URL (400), storage failure.
pub async fn agent_action(
    state: &AppState,
    agent_id: &str,
    service_id: &str,
    action: AgentAction,
) -> Result<Option<TranscriptEvent>, AppError> {
    let chat = &state.chat;
    // The actions but accepting need an open chat, whose service exists, so they read nothing
    // then (an agent's messages are a good part of a chat's requests). Without one, an unknown
    // service is 404 before all else, from the record's first bytes.
    if !matches!(action, AgentAction::Accept) && !chat.is_open(service_id) {
        state
            .store
            .service_access(service_id)?
            .ok_or_else(|| not_found(service_id))?;
    }
    let event = match action {
        AgentAction::Accept => {
            let record = state
                .store
                .service(service_id)?
                .ok_or_else(|| not_found(service_id))?;
            if voice::is_voice(&record) {
                super::voice::take(state, agent_id, service_id).await?;
            } else {
                chat.accept(service_id, agent_id).await?;
            }
            None
        }
        AgentAction::Message(text) => {
            if text.trim().is_empty() {
                return Err(FieldError::new("text", "the message is empty: send some text").into());
            }
            Some(
                chat.agent_event(service_id, agent_id, EventKind::Message, &text)
                    .await?,
            )
        }
        AgentAction::Typing(typing) => {
            let kind = if typing {
                EventKind::TypingStarted
            } else {
                EventKind::TypingStopped
            };
            Some(chat.agent_event(service_id, agent_id, kind, "").await?)
        }
        AgentAction::PushUrl(url) => {
            if !is_web_url(url.trim()) {
                return Err(FieldError::new(
                    "url",
                    format!(
                        "`{url}` is not a web address: send an absolute http:// or https:// URL"
                    ),
                )
                .into());
            }
            Some(
                chat.agent_event(service_id, agent_id, EventKind::PushUrl, url.trim())
                    .await?,
            )
        }
        AgentAction::Leave => {
            let closed = chat.agent_leave(service_id, agent_id).await?;
            settle(state, &closed, CallbackReason::Cancelled).await?;
            None
        }
    };
    Ok(event)
}

/// The chat of a service as its agent sees it (hidden events included), from transcript
/// position `from` on.
///
/// # Errors
/// Unknown service (404), no chat (404), not this agent's (400), storage failure.
pub async fn agent_transcript(
    state: &AppState,
    agent_id: &str,
    service_id: &str,
    from: u64,
) -> Result<
    (
        crate::domain::chat::session::ChatSession,
        Vec<TranscriptEvent>,
    ),
    AppError,
> {
    let (session, transcript) = state
        .chat
        .full_view(ChatOf::Service(service_id), from)
        .await?;
    if session.agent.as_ref().map(|a| a.id.as_str()) != Some(agent_id) {
        return Err(ChatError::Refused(Refusal::Refused(format!(
            "the chat of service `{service_id}` is not routed to agent `{agent_id}`"
        )))
        .into());
    }
    Ok((session, transcript))
}

/// An ESP request to a chat session (`POST /genesys/1/admin/chat/{id}/esp/{Method}`, seeds
/// 002 and 004). `target` is the chat session id or the interaction (service) id; an explicit
/// `InteractionId` parameter wins over it, as in Chat Server.
///
/// # Errors
/// Bad method or parameters (400, naming them), no such session (404), a closed session
/// for a request that changes it (400), storage failure.
pub async fn esp(
    state: &AppState,
    target: &str,
    method: &str,
    params: &BTreeMap<String, String>,
) -> Result<EspOutcome, AppError> {
    let request = esp::parse(method, params)?;
    let key = request.interaction_id().unwrap_or(target).to_string();
    let service_id = match state.store.service(&key)? {
        Some(_) => key,
        None => state.chat.service_of_session(&key)?.ok_or_else(|| {
            AppError::NotFound(format!(
                "no chat session or interaction has the id `{key}`: use the chatSessionId of a chat, or its service id"
            ))
        })?,
    };
    let record = state
        .store
        .service(&service_id)?
        .ok_or_else(|| not_found(&service_id))?;
    let outcome = state.chat.esp(&record, request).await?;
    if let EspOutcome::Close {
        closed: Some(closed),
        ..
    } = &outcome
    {
        settle(state, closed, CallbackReason::CancelledByAdmin).await?;
    }
    Ok(outcome)
}

/// Runs idle control until shutdown: sleeps until the next session's deadline, posts its
/// alert or closes it (completing its service).
pub async fn run_idle_control(state: AppState, mut shutdown: Shutdown) {
    loop {
        let sleep = clock::sleep_until(&*state.clock, state.chat.next_idle_deadline());
        tokio::select! {
            // A session's idle deadline passed on the clock.
            () = sleep => {
                for closed in state.chat.run_idle_control().await {
                    if let Err(err) = settle(&state, &closed, CallbackReason::Cancelled).await {
                        tracing::warn!(service_id = %closed.service_id, error = %err, "cannot complete an idle chat's service");
                    }
                }
            }
            // A new deadline was set, maybe earlier than the one slept for.
            () = state.chat.idle_changed() => {}
            // The service is stopping.
            () = shutdown.wait() => break,
        }
    }
}

/// Runs what the router task asks of chats until shutdown (or until the router stops).
pub async fn run_commands(
    state: AppState,
    mut commands: mpsc::UnboundedReceiver<ChatCommand>,
    mut shutdown: Shutdown,
) {
    loop {
        let command = tokio::select! {
            // The router found an agent for a chat, or closed one.
            command = commands.recv() => match command {
                Some(command) => command,
                None => break,
            },
            // The service is stopping.
            () = shutdown.wait() => break,
        };
        match command {
            ChatCommand::Assigned(assigned) => {
                if let Err(err) = state
                    .chat
                    .assign_agent(
                        &assigned.service,
                        &assigned.agent,
                        &assigned.nickname,
                        assigned.auto_answer,
                    )
                    .await
                {
                    tracing::warn!(service_id = %assigned.service, error = %err, "cannot hand the chat to its agent");
                }
            }
            ChatCommand::Close { service, message } => {
                if let Err(err) = state.chat.close(&service, Some(&message)).await {
                    tracing::warn!(service_id = %service, error = %err, "cannot close the chat");
                }
            }
        }
    }
}

/// Completes the service of a closed chat: `AGENT_CONNECTED` when an agent joined, else
/// `unanswered`; the agent's capacity is freed, or the service leaves its queue.
///
/// # Errors
/// Storage failure.
pub async fn settle(
    state: &AppState,
    closed: &Closed,
    unanswered: CallbackReason,
) -> Result<(), AppError> {
    let now = state.clock.now();
    let joined = closed.agent.as_ref().is_some_and(|a| a.joined);
    let reason = if joined {
        CallbackReason::AgentConnected
    } else {
        unanswered
    };
    let mut was_processing = false;
    let result = state
        .store
        .update_service::<()>(&closed.service_id, |record| {
            let was = record.complete(reason, now, "chat ended").map_err(drop)?;
            was_processing = was == CallbackState::Processing;
            Ok(())
        });
    match result {
        Ok(closed) => {
            closed.durable().await?;
        }
        Err(crate::store::UpdateError::Rejected(())) => {}
        Err(crate::store::UpdateError::Store(err)) => return Err(err.into()),
    }
    let service = closed.service_id.clone();
    match (&closed.agent, was_processing) {
        (Some(agent), true) => state.router.send(Event::Ended {
            service,
            agent: agent.id.clone(),
        }),
        _ => state.router.send(Event::Removed { service }),
    }
    tracing::info!(service_id = %closed.service_id, reason = %reason, "chat ended; service completed");
    Ok(())
}

fn no_agent_yet(service_id: &str) -> AppError {
    AppError::Unavailable(format!(
        "no agent is available for service `{service_id}` yet: wait for the agent-available notification (or poll POST /genesys/1/service/{service_id}/status)"
    ))
}

fn completed(record: &ServiceRecord, action: &'static str) -> LifecycleError {
    LifecycleError::Completed {
        id: record.id.clone(),
        reason: record.reason.map(|r| r.to_string()).unwrap_or_default(),
        action,
    }
}

fn unknown_agent(agent_id: &str) -> AppError {
    AppError::NotFound(format!(
        "no agent has the id `{agent_id}`: list them with GET /genesys/1/admin/agents"
    ))
}
