//! Chat API version 2 (`/genesys/2/chat/{chatServiceName}[/{chatId}/...]`, REST and CometD):
//! a translation onto the same chat as version 1.
//!
//! `requestChat` creates a service of the configured service `chatServiceName` (or, when no
//! service has that name, of the `[inbound_chat]` fallback group), starts its chat through
//! [`super::chat::start_chat`] and lets the customer join it. Every later operation names the
//! chat by its `chatId` (the chat session id) and proves it is the customer's with the
//! `secureKey` (and `userId`, when given) that `requestChat` answered; the operations run on
//! the Chat Server exactly as version 1's do. Nothing here keeps session rules of its own.

use std::collections::BTreeMap;

use super::callbacks::create_instance;
use super::chat::{customer_action, start_chat, CustomerAction};
use super::records::{not_found, update};
use super::{AppError, AppState, Requester};
use crate::center::chat::StartChat;
use crate::domain::chat::session::{ChatSession, Customer};
use crate::domain::chat::{is_web_url, EventKind, TranscriptEvent};
use crate::domain::options::{self, ConfiguredService, FieldError, Preset, ValidService};
use crate::domain::service::ServiceRecord;

/// The `alias` every reply carries: GMS names the Chat Server instance that served the
/// request; there is one embedded Chat Server here.
pub const ALIAS: &str = "1";

/// The service name of chats routed by the `[inbound_chat]` fallback.
pub const INBOUND_SERVICE: &str = "inbound-chat";

/// What a v2 reply shows: the session, the transcript events asked for, and the service.
#[derive(Debug, Clone)]
pub struct V2Chat {
    /// The service the chat belongs to (never shown to the v2 client).
    pub service_id: String,
    /// The session as it is now: `chatId`, `secureKey`, `userId`, `nextPosition`.
    pub session: ChatSession,
    /// The events the customer may see from the position asked for (`messages`).
    pub events: Vec<TranscriptEvent>,
}

impl V2Chat {
    /// `chatEnded`.
    pub fn chat_ended(&self) -> bool {
        self.session.closed_at.is_some()
    }
}

/// The fields of `requestChat`.
#[derive(Debug, Clone, Default)]
pub struct RequestChat {
    /// `nickname`; else `firstName` and `lastName` make one.
    pub nickname: Option<String>,
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `emailAddress`.
    pub email: Option<String>,
    /// `text`: a first message from the customer.
    pub text: Option<String>,
    /// `userData[key]=value`: the service's user data (and, for `_` keys, its overridable
    /// options, as in a Service API create).
    pub user_data: Vec<(String, String)>,
    /// `userData[TimeZone]`, the customer's offset in minutes.
    pub time_zone: Option<String>,
}

/// Requests a chat on `service_name` for `owner` (the `gms_user`, if any; v2 chats are
/// guarded by their `secureKey`, so none is needed). Answers the chat with its transcript
/// so far (the customer's `ParticipantJoined`, and the first message when `text` was given).
///
/// # Errors
/// Unknown service name with no `[inbound_chat]` fallback (404), a service that waits for
/// an agent before its chat (400, `chatServiceName`), bad fields (400), storage failure.
pub async fn request_chat(
    state: &AppState,
    service_name: &str,
    owner: Requester<'_>,
    request: RequestChat,
) -> Result<V2Chat, AppError> {
    let service = chat_service(state, service_name)?;
    if options::waits_for_agent(&service.effective) {
        return Err(FieldError::new(
            "chatServiceName",
            format!("service `{service_name}` waits for an agent before its chat starts (`_wait_for_agent=true`), and a Chat API v2 chat starts at once: use a Request-Chat or Chat-Immediate service"),
        )
        .into());
    }
    let customer = Customer {
        nickname: crate::domain::chat::customer_nickname(
            request.nickname.as_deref(),
            request.first_name.as_deref(),
            request.last_name.as_deref(),
        ),
        first_name: request.first_name,
        last_name: request.last_name,
        email: request.email,
        subject: request.subject,
        time_zone_offset: request.time_zone,
        user_id: String::new(),
        secure_key: String::new(),
    };
    let created = create_instance(state, &service, owner, request.user_data).await?;
    let service_id = created.record.id;
    let start = StartChat {
        customer,
        comet: false,
    };
    start_chat(state, &service_id, owner, start).await?;
    let record = service_record(state, &service_id)?;
    // The customer is the chat's first participant (GMS answers `requestChat` with its
    // `ParticipantJoined` at index 1).
    state
        .chat
        .customer_notice(&record, EventKind::Joined, "")
        .await?;
    if let Some(text) = request.text.filter(|t| !t.trim().is_empty()) {
        customer_action(state, &service_id, owner, CustomerAction::Send(text)).await?;
    }
    tracing::info!(service_id = %service_id, service = service_name, "chat requested (Chat API v2)");
    transcript(state, &record, Some(1)).await
}

/// The configured service `name`, or the `[inbound_chat]` fallback when none has that name.
fn chat_service(state: &AppState, name: &str) -> Result<std::sync::Arc<ValidService>, AppError> {
    if let Some(service) = state.catalog.get(name) {
        return Ok(service);
    }
    let inbound = &state.settings.inbound_chat;
    let group = inbound.app_selected_agent_group.trim();
    let Some(stat_server) = state.settings.stat_servers.first() else {
        return Err(AppError::UnknownService(name.to_string()));
    };
    if group.is_empty() {
        return Err(AppError::UnknownService(name.to_string()));
    }
    let options = BTreeMap::from([
        ("_target".to_string(), format!("{group}@{stat_server}.GA")),
        (
            "_urs_queued_ttl".to_string(),
            inbound.find_agent_timeout_secs.to_string(),
        ),
    ]);
    let service = ConfiguredService {
        name: INBOUND_SERVICE.to_string(),
        preset: Preset::RequestChat,
        options,
    }
    .validate(&state.settings.stat_servers)
    .map_err(|err| {
        tracing::error!(error = %err, "the [inbound_chat] fallback does not validate");
        AppError::Unavailable(format!(
            "chats without a configured service cannot be routed ({err}): ask the administrator to fix [inbound_chat]"
        ))
    })?;
    Ok(std::sync::Arc::new(service))
}

/// What proves a request is the customer's: `secureKey`, and `userId` when given.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `secureKey`.
    pub secure_key: Option<String>,
    /// `userId`.
    pub user_id: Option<String>,
}

/// The service of chat `chat_id` once `credentials` prove the caller is its customer.
/// Checked before anything else of a request is read.
///
/// # Errors
/// No chat has that id (404); a missing or wrong `secureKey` or `userId` (403); storage
/// failure.
pub async fn authorize(
    state: &AppState,
    chat_id: &str,
    credentials: &Credentials,
) -> Result<ServiceRecord, AppError> {
    let unknown = || {
        AppError::NotFound(format!(
            "no chat has the id `{chat_id}`: it may have ended and expired; request a new chat with POST /genesys/2/chat/{{chatServiceName}}"
        ))
    };
    let service_id = state
        .chat
        .service_of_session(chat_id)?
        .ok_or_else(unknown)?;
    let record = state.store.service(&service_id)?.ok_or_else(unknown)?;
    if record.chat_session_id.as_deref() != Some(chat_id) {
        return Err(unknown());
    }
    let session = state.chat.session(&record).await?;
    let customer = &session.customer;
    let key_matches = credentials
        .secure_key
        .as_deref()
        .is_some_and(|key| same(key, &customer.secure_key));
    let user_matches = credentials
        .user_id
        .as_deref()
        .is_none_or(|user| same(user, &customer.user_id));
    if !key_matches || !user_matches {
        return Err(AppError::Forbidden(format!(
            "the secureKey (or userId) does not match chat `{chat_id}`: send the ones requestChat answered"
        )));
    }
    Ok(record)
}

/// Compares two secrets without stopping at the first difference.
fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// A v2 operation on a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `refreshChat`, optionally with a `message` to send first.
    Refresh(Option<String>),
    /// `sendMessage`.
    Send(String),
    /// `startTyping`, with the text typed so far.
    StartTyping(String),
    /// `stopTyping`.
    StopTyping(String),
    /// `updateNickname`.
    UpdateNickname(String),
    /// `updateData`: user data to set (an empty value removes the key).
    UpdateData(Vec<(String, String)>),
    /// `customNotice`.
    CustomNotice(String),
    /// `pushUrl`.
    PushUrl(String),
    /// `disconnect`.
    Disconnect,
}

/// Runs `operation` on the chat of `record` (from [`authorize`]) and answers the chat with the
/// events from `from` (`transcriptPosition`; `None` or 0: none).
///
/// # Errors
/// A closed chat for anything but refresh and disconnect (400), a bad URL (400), a `[chat]`
/// limit (413, 429), storage failure.
pub async fn operate(
    state: &AppState,
    record: &ServiceRecord,
    operation: Operation,
    from: Option<u64>,
) -> Result<V2Chat, AppError> {
    let id = record.id.as_str();
    // The v2 customer proved who they are with the secure key; v1's owner check is theirs.
    let owner = record.owner.as_deref();
    let chat = &state.chat;
    let changes = !matches!(operation, Operation::Refresh(None) | Operation::Disconnect);
    if changes {
        let session = chat.session(record).await?;
        if session.closed_at.is_some() {
            return Err(FieldError::new(
                "chatId",
                format!("chat `{}` has ended: nothing more can be sent to it; refresh to read its transcript, or request a new chat", session.id),
            )
            .into());
        }
    }
    match operation {
        Operation::Refresh(None) => {}
        Operation::Refresh(Some(message)) | Operation::Send(message) => {
            customer_action(state, id, owner, CustomerAction::Send(message)).await?;
        }
        Operation::StartTyping(text) => {
            chat.customer_notice(record, EventKind::TypingStarted, &text)
                .await?;
        }
        Operation::StopTyping(text) => {
            chat.customer_notice(record, EventKind::TypingStopped, &text)
                .await?;
        }
        Operation::UpdateNickname(nickname) => {
            chat.rename_customer(record, &nickname).await?;
        }
        Operation::UpdateData(changes) => {
            update(state, id, |r| {
                for (key, value) in &changes {
                    if value.is_empty() {
                        r.user_data.remove(key);
                    } else {
                        r.user_data.insert(key.clone(), value.clone());
                    }
                }
                Ok(())
            })?
            .durable()
            .await?;
        }
        Operation::CustomNotice(text) => {
            customer_action(state, id, owner, CustomerAction::CustomNotice(text)).await?;
        }
        Operation::PushUrl(url) => {
            let url = url.trim().to_string();
            if !is_web_url(&url) {
                return Err(FieldError::new(
                    "pushUrl",
                    format!(
                        "`{url}` is not a web address: send an absolute http:// or https:// URL"
                    ),
                )
                .into());
            }
            chat.customer_notice(record, EventKind::PushUrl, &url)
                .await?;
        }
        Operation::Disconnect => {
            customer_action(state, id, owner, CustomerAction::Disconnect).await?;
        }
    }
    transcript(state, record, from).await
}

/// The chat of `record` with the events the customer may see from `from` (none for `None`
/// or 0).
async fn transcript(
    state: &AppState,
    record: &ServiceRecord,
    from: Option<u64>,
) -> Result<V2Chat, AppError> {
    let (session, events) = match from.filter(|&position| position >= 1) {
        Some(from) => {
            let (session, events) = state.chat.full_view(record, from).await?;
            let visible = events
                .into_iter()
                .filter(|e| e.visibility.visible_to_customer())
                .collect();
            (session, visible)
        }
        None => (state.chat.session(record).await?, Vec::new()),
    };
    Ok(V2Chat {
        service_id: record.id.clone(),
        session,
        events,
    })
}

fn service_record(state: &AppState, id: &str) -> Result<ServiceRecord, AppError> {
    state.store.service(id)?.ok_or_else(|| not_found(id))
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same("4ee15d7e1c343c8e", "4ee15d7e1c343c8e"));
        assert!(!same("4ee15d7e1c343c8f", "4ee15d7e1c343c8e"));
        assert!(!same("4ee15d7e1c343c8", "4ee15d7e1c343c8e"));
        assert!(!same("", "4ee15d7e1c343c8e"));
    }
}
