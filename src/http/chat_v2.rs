//! Chat API version 2, REST form: `POST /genesys/2/chat/{chatServiceName}` (requestChat) and
//! `POST /genesys/2/chat/{chatServiceName}/{chatId}/{operation}` (`send`, `refresh`,
//! `startTyping`, `stopTyping`, `updateNickname`, `updateData`, `customNotice`, `pushUrl`,
//! `disconnect`). Its CometD form (`/service/chatV2/{chatServiceName}`) reads the same
//! fields and answers the same objects: see [`CometdChats`].
//!
//! Every reply is GMS's Digital Channels shape: `statusCode` 0 with `messages`, `chatEnded`,
//! `alias`, `secureKey`, `userId`, `chatId` and `nextPosition`; a refusal is `statusCode` 1
//! (try again) or 2 (do not) with `errors: [{code, advice}]` (see [`error_body`]). The chat is
//! found (404) and the `secureKey` checked (403) before any other field is read.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::form::{self, Fields, Json};
use super::params::GmsUser;
use super::{client, reply, to_completion, with_state, ApiError, Client};
use crate::app::chat_v2::{self, Credentials, Operation, RequestChat, V2Chat, ALIAS};
use crate::app::{AppError, AppState};
use crate::cometd::{Bayeux, Push, ServiceChannel};
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::{v2, TranscriptEvent};
use crate::domain::options::{check_field_name, FieldError};

/// The Chat API v2 routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    request(state.clone()).or(operation(state)).unify()
}

/// POST /genesys/2/chat/{chatServiceName}
#[utoipa::path(post, path = "/genesys/2/chat/{chatServiceName}", tag = "chat-v2",
    params(("chatServiceName" = String, Path, description = "A configured chat service (Request-Chat or Chat-Immediate); any other name is routed to the `[inbound_chat]` group"), GmsUser),
    request_body(content(
        (RequestChatForm = "application/x-www-form-urlencoded"), (RequestChatForm = "multipart/form-data"))),
    responses((status = 200, description = "The chat: `chatId`, `secureKey`, `userId`, `alias` and the customer's `ParticipantJoined`", body = V2Reply),
        (status = 400, description = "A bad field, or a service that waits for an agent (`statusCode` 2); a bad header or body in GMS's error shape", body = V2BadRequest),
        (status = 404, description = "No such service and no `[inbound_chat]` fallback", body = V2Error)))]
fn request(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "2" / "chat" / String)
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and(form::fields(limit, Json::Refused))
        .then(
            |name: String, state: AppState, client: Client, fields: Fields| async move {
                let result = match parse_request(&fields) {
                    Ok(request) => {
                        let owner = client.gms_user.clone();
                        to_completion(async move {
                            chat_v2::request_chat(&state, &name, owner.as_deref(), request).await
                        })
                        .await
                    }
                    Err(err) => Err(err.into()),
                };
                answer(result)
            },
        )
}

/// POST /genesys/2/chat/{chatServiceName}/{chatId}/{operation}
#[utoipa::path(post, path = "/genesys/2/chat/{chatServiceName}/{chatId}/{operation}", tag = "chat-v2",
    params(("chatServiceName" = String, Path, description = "The service the chat was requested on"),
        ("chatId" = String, Path, description = "The `chatId` requestChat answered"),
        ("operation" = inline(V2Operation), Path, description = "The operation"), GmsUser),
    request_body(content(
        (OperationForm = "application/x-www-form-urlencoded"), (OperationForm = "multipart/form-data"))),
    responses((status = 200, description = "The chat, with the events from `transcriptPosition` in `messages`", body = V2Reply),
        (status = 400, description = "A bad field, no such operation, or the chat has ended (`statusCode` 2); a bad header or body in GMS's error shape", body = V2BadRequest),
        (status = 403, description = "The `secureKey` or `userId` does not match the chat", body = V2Error),
        (status = 404, description = "No such chat", body = V2Error),
        (status = 429, description = "The customer sends too fast (`statusCode` 1: try again)", body = V2Error)))]
fn operation(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "2" / "chat" / String / String / String)
        .and(warp::post())
        .and(with_state(state))
        .and(form::fields(limit, Json::Refused))
        .then(
            |_service: String, chat_id: String, name: String, state: AppState, fields: Fields| async move {
                let result = to_completion(async move {
                    run_operation(&state, &chat_id, &name, &fields).await
                })
                .await;
                answer(result)
            },
        )
}

/// Finds the chat (404), checks its keys (403), then reads the operation's fields (400) and
/// runs it: the order of checks of every v2 request, REST or CometD.
async fn run_operation(
    state: &AppState,
    chat_id: &str,
    name: &str,
    fields: &Fields,
) -> Result<V2Chat, AppError> {
    let credentials = Credentials {
        secure_key: text(fields, "secureKey"),
        user_id: text(fields, "userId"),
    };
    let record = chat_v2::authorize(state, chat_id, &credentials).await?;
    let operation = parse_operation(name, fields)?;
    let from = transcript_position(fields)?;
    chat_v2::operate(state, &record, operation, from).await
}

/// The reply: the chat (200, `statusCode` 0) or the error in v2's shape.
fn answer(result: Result<V2Chat, AppError>) -> Response {
    match result {
        Ok(chat) => reply::json(StatusCode::OK, &chat_reply(&chat.session, &chat.events)),
        Err(err) => {
            let (status, body) = error_body(err);
            reply::json(status, &body)
        }
    }
}

fn chat_reply(session: &ChatSession, events: &[TranscriptEvent]) -> Value {
    v2::reply(session, events, ALIAS)
}

/// The v2 error codes (GMS's Digital Channels documentation gives the `errors` shape, not
/// this table; see docs/decisions.md).
mod code {
    /// The server could not do it now (storage, shutting down): try again.
    pub const INTERNAL: u32 = 100;
    /// A parameter is missing or bad; the advice names it.
    pub const BAD_PARAMETER: u32 = 101;
    /// No chat has that `chatId`.
    pub const CHAT_NOT_FOUND: u32 = 102;
    /// The `secureKey` or `userId` does not match the chat.
    pub const BAD_KEY: u32 = 103;
    /// A `[chat]` limit: too fast (try again) or too large.
    pub const LIMIT: u32 = 104;
    /// The chat has ended.
    pub const CHAT_ENDED: u32 = 105;
    /// No service has that `chatServiceName`, and there is no `[inbound_chat]` fallback.
    pub const SERVICE_NOT_FOUND: u32 = 106;
}

/// An error as v2 answers it: the HTTP status and `{"statusCode","chatEnded","errors":[{code,
/// advice}]}`; `statusCode` 1 when trying again can succeed, 2 when it cannot.
fn error_body(err: AppError) -> (StatusCode, Value) {
    let ended =
        matches!(&err, AppError::InvalidField(f) if f.field == "chatId" || f.field == "chat");
    let unknown_service = matches!(err, AppError::UnknownService(_));
    let api = ApiError::from(err);
    let status = api.status();
    let (code, retry) = match status {
        StatusCode::BAD_REQUEST if ended => (code::CHAT_ENDED, false),
        StatusCode::BAD_REQUEST => (code::BAD_PARAMETER, false),
        StatusCode::NOT_FOUND if unknown_service => (code::SERVICE_NOT_FOUND, false),
        StatusCode::NOT_FOUND => (code::CHAT_NOT_FOUND, false),
        StatusCode::FORBIDDEN => (code::BAD_KEY, false),
        StatusCode::TOO_MANY_REQUESTS => (code::LIMIT, true),
        StatusCode::PAYLOAD_TOO_LARGE => (code::LIMIT, false),
        _ => (code::INTERNAL, true),
    };
    let chat_ended = ended || status == StatusCode::NOT_FOUND && !unknown_service;
    let body = json!({
        "statusCode": if retry { 1 } else { 2 },
        "chatEnded": chat_ended,
        "errors": [{"code": code, "advice": api.into_message()}],
    });
    (status, body)
}

/// The fields of requestChat: `nickname` or both `firstName` and `lastName`, `subject`,
/// `emailAddress`, `text`, `userData[key]`.
fn parse_request(fields: &Fields) -> Result<RequestChat, FieldError> {
    let nickname = text(fields, "nickname");
    let first_name = text(fields, "firstName");
    let last_name = text(fields, "lastName");
    if nickname.is_none() && (first_name.is_none() || last_name.is_none()) {
        return Err(FieldError::new(
            "nickname",
            "requestChat needs the customer's name: send `nickname`, or both `firstName` and `lastName`",
        ));
    }
    let user_data = user_data(fields)?;
    let time_zone = user_data
        .iter()
        .find(|(key, _)| key == "TimeZone")
        .map(|(_, value)| value.clone());
    Ok(RequestChat {
        nickname,
        first_name,
        last_name,
        subject: text(fields, "subject"),
        email: text(fields, "emailAddress"),
        text: text(fields, "text"),
        user_data,
        time_zone,
    })
}

/// The operation `name` (a REST path segment, or a CometD `operation`) with its fields.
fn parse_operation(name: &str, fields: &Fields) -> Result<Operation, AppError> {
    let message = || text(fields, "message");
    let required = |field: &str, what: &str| {
        text(fields, field).ok_or_else(|| FieldError::new(field, what.to_string()))
    };
    Ok(match name {
        "refresh" | "refreshChat" => Operation::Refresh(message()),
        "send" | "sendMessage" => Operation::Send(required(
            "message",
            "sendMessage needs the text to send in `message`",
        )?),
        "startTyping" => Operation::StartTyping(message().unwrap_or_default()),
        "stopTyping" => Operation::StopTyping(message().unwrap_or_default()),
        "updateNickname" => Operation::UpdateNickname(required(
            "nickname",
            "updateNickname needs the new name in `nickname`",
        )?),
        "updateData" => {
            let changes = user_data(fields)?;
            if changes.is_empty() {
                return Err(FieldError::new(
                    "userData",
                    "updateData needs the data to set as userData[key]=value (an empty value removes the key)",
                )
                .into());
            }
            if let Some((key, _)) = changes.iter().find(|(key, _)| key.starts_with('_')) {
                return Err(FieldError::new(
                    format!("userData[{key}]"),
                    "keys starting with `_` are the service's options, which a chat cannot change: send user data only",
                )
                .into());
            }
            Operation::UpdateData(changes)
        }
        "customNotice" => Operation::CustomNotice(message().unwrap_or_default()),
        "pushUrl" => Operation::PushUrl(required(
            "pushUrl",
            "pushUrl needs the address in `pushUrl`",
        )?),
        "disconnect" => Operation::Disconnect,
        other => {
            return Err(FieldError::new(
                "operation",
                format!("there is no Chat API v2 operation `{other}`: use send, refresh, startTyping, stopTyping, updateNickname, updateData, customNotice, pushUrl or disconnect (sendMessage and refreshChat on CometD)"),
            )
            .into())
        }
    })
}

/// `userData[key]=value` fields, in order.
fn user_data(fields: &Fields) -> Result<Vec<(String, String)>, FieldError> {
    let mut data = Vec::new();
    for (name, value) in fields {
        let Some(key) = name
            .strip_prefix("userData[")
            .and_then(|rest| rest.strip_suffix(']'))
        else {
            continue;
        };
        check_field_name(key).map_err(|err| FieldError::new(name.clone(), err.message))?;
        data.push((key.to_string(), value.clone()));
    }
    Ok(data)
}

/// `transcriptPosition`: the first event to show (1: all; 0 or absent: none).
fn transcript_position(fields: &Fields) -> Result<Option<u64>, FieldError> {
    match text(fields, "transcriptPosition") {
        None => Ok(None),
        Some(value) => value.parse::<u64>().map(Some).map_err(|_| {
            FieldError::new(
                "transcriptPosition",
                format!("`{value}` is not a transcript position: use a whole number (1 shows the whole transcript, the last reply's nextPosition what is new, 0 nothing)"),
            )
        }),
    }
}

/// A field's value, trimmed; absent when empty.
fn text(fields: &Fields, name: &str) -> Option<String> {
    form::last(fields, name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

// ----- the CometD form -----

/// The CometD form of Chat API v2: requests published on `/service/chatV2/{chatServiceName}`
/// (the operation in `operation`, the fields as in the REST form, `userData` an object) are
/// answered on the same channel to the client that published, and every later change of the
/// chat's transcript is delivered there too, as `messages` from the last position sent.
/// After requestChat, the chat is named by its `secureKey` alone (or `chatId` with it).
#[derive(Clone)]
pub struct CometdChats {
    state: AppState,
    bindings: Arc<Mutex<Bindings>>,
}

/// Which CometD client listens to which chat. In memory only: after a restart a client binds
/// its chat again by sending any operation with the `chatId` and `secureKey`.
#[derive(Default)]
struct Bindings {
    /// chatId -> (client id, channel).
    by_chat: std::collections::HashMap<String, (String, String)>,
    /// secureKey -> chatId, for operations that name the chat by its key only.
    by_key: std::collections::HashMap<String, String>,
}

impl CometdChats {
    /// Serves the chatV2 channels of `state`'s CometD server, and delivers transcript changes
    /// of the chats requested through it.
    pub fn install(state: &AppState) {
        let chats = CometdChats {
            state: state.clone(),
            bindings: Arc::default(),
        };
        state.bayeux.serve_service_channels(Arc::new(chats.clone()));
        state.chat.add_listener(Arc::new(chats));
    }

    fn bind(&self, client_id: &str, channel: &str, session: &ChatSession) {
        let mut bindings = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
        bindings.by_chat.insert(
            session.id.clone(),
            (client_id.to_string(), channel.to_string()),
        );
        bindings
            .by_key
            .insert(session.customer.secure_key.clone(), session.id.clone());
        if session.closed_at.is_some() {
            bindings.by_chat.remove(&session.id);
            bindings.by_key.remove(&session.customer.secure_key);
        }
    }

    /// Runs one published request; answers the data to deliver on the channel.
    async fn serve(&self, client_id: &str, gms_user: &str, channel: &str, data: &Value) -> Value {
        let service = channel.trim_start_matches("/service/chatV2/");
        let fields = fields_of(data);
        let operation = text(&fields, "operation").unwrap_or_default();
        let state = self.state.clone();
        let result = if operation == "requestChat" {
            let (service, user) = (service.to_string(), gms_user.to_string());
            to_completion(async move {
                let request = parse_request(&fields)?;
                chat_v2::request_chat(&state, &service, Some(&user), request).await
            })
            .await
        } else {
            let chat_id = text(&fields, "chatId").or_else(|| {
                let key = text(&fields, "secureKey")?;
                let bindings = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
                bindings.by_key.get(&key).cloned()
            });
            let user = gms_user.to_string();
            to_completion(async move {
                let chat_id = chat_id.ok_or_else(|| {
                    AppError::Forbidden("name the chat: send the `secureKey` requestChat answered (and its `chatId` after a reconnect)".into())
                })?;
                // A CometD chat belongs to the gms_user whose client requested it.
                let record = chat_v2::authorize(&state, &chat_id, &Credentials {
                    secure_key: text(&fields, "secureKey"),
                    user_id: text(&fields, "userId"),
                })
                .await?;
                if record.owner.as_deref() != Some(user.as_str()) {
                    return Err(AppError::Forbidden(format!(
                        "chat `{chat_id}` belongs to another user"
                    )));
                }
                let parsed = parse_operation(&operation, &fields)?;
                let from = transcript_position(&fields)?;
                chat_v2::operate(&state, &record, parsed, from).await
            })
            .await
        };
        match result {
            Ok(chat) => {
                self.bind(client_id, channel, &chat.session);
                chat_reply(&chat.session, &chat.events)
            }
            Err(err) => error_body(err).1,
        }
    }
}

impl ServiceChannel for CometdChats {
    fn handles(&self, channel: &str) -> bool {
        channel
            .strip_prefix("/service/chatV2/")
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
    }

    fn publish<'a>(
        &'a self,
        client_id: &'a str,
        gms_user: &'a str,
        channel: &'a str,
        data: &'a Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send + 'a>> {
        Box::pin(self.serve(client_id, gms_user, channel, data))
    }
}

impl crate::center::chat::TranscriptListener for CometdChats {
    fn transcript_changed(&self, session: &ChatSession, events: &[TranscriptEvent]) {
        let bound = {
            let mut bindings = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
            let bound = bindings.by_chat.get(&session.id).cloned();
            if session.closed_at.is_some() {
                bindings.by_chat.remove(&session.id);
                bindings.by_key.remove(&session.customer.secure_key);
            }
            bound
        };
        let Some((client_id, channel)) = bound else {
            return;
        };
        let push = Push::on_channel(channel, chat_reply(session, events));
        Bayeux::publish_to(&self.state.bayeux, &client_id, &push);
    }
}

/// A CometD request's data as form fields: strings as they are, numbers and booleans as
/// text, `userData: {k: v}` as `userData[k]=v`.
fn fields_of(data: &Value) -> Fields {
    let mut fields = Vec::new();
    let Some(object) = data.as_object() else {
        return fields;
    };
    let as_text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    for (key, value) in object {
        if key == "userData" {
            if let Some(data) = value.as_object() {
                for (k, v) in data {
                    if let Some(v) = as_text(v) {
                        fields.push((format!("userData[{k}]"), v));
                    }
                }
            }
        } else if let Some(v) = as_text(value) {
            fields.push((key.clone(), v));
        }
    }
    fields
}

// ----- the OpenAPI description -----

/// The operations of `/genesys/2/chat/{chatServiceName}/{chatId}/{operation}`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the path for the OpenAPI document only
enum V2Operation {
    #[serde(rename = "send")]
    Send,
    #[serde(rename = "refresh")]
    Refresh,
    #[serde(rename = "startTyping")]
    StartTyping,
    #[serde(rename = "stopTyping")]
    StopTyping,
    #[serde(rename = "updateNickname")]
    UpdateNickname,
    #[serde(rename = "updateData")]
    UpdateData,
    #[serde(rename = "customNotice")]
    CustomNotice,
    #[serde(rename = "pushUrl")]
    PushUrl,
    #[serde(rename = "disconnect")]
    Disconnect,
}

/// The fields of requestChat ([`parse_request`]); `userData[key]=value` fields are the
/// chat's user data.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct RequestChatForm {
    /// The customer's name in the chat (else `firstName` and `lastName`).
    nickname: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    subject: Option<String>,
    email_address: Option<String>,
    /// A first message.
    text: Option<String>,
}

/// The fields of an operation ([`parse_operation`]).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct OperationForm {
    /// The key requestChat answered (required).
    secure_key: String,
    /// The customer's `userId`; checked when given.
    user_id: Option<String>,
    /// The Chat Server's alias (there is one; taken and not used).
    alias: Option<String>,
    /// The text (`send`, `refresh`, `startTyping`, `stopTyping`, `customNotice`).
    message: Option<String>,
    /// The first event to answer in `messages` (1: all; 0 or absent: none).
    transcript_position: Option<String>,
    /// `updateNickname`: the new name.
    nickname: Option<String>,
    /// `pushUrl`: the address.
    push_url: Option<String>,
}

/// A v2 reply (`statusCode` 0).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct V2Reply {
    messages: Vec<V2Message>,
    chat_ended: bool,
    /// 0.
    status_code: u32,
    alias: String,
    secure_key: String,
    user_id: String,
    chat_id: String,
    /// The `transcriptPosition` to ask for what is new.
    next_position: u64,
}

/// One transcript event.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct V2Message {
    from: V2Party,
    /// The event's transcript position.
    index: u64,
    /// `Message`, `ParticipantJoined`, `ParticipantLeft`, `TypingStarted`, `TypingStopped`,
    /// `PushUrl`, `Notice` or `NicknameUpdated`.
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    /// Milliseconds since the epoch.
    utc_time: u64,
}

/// Who caused an event.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct V2Party {
    nickname: String,
    /// 1 the customer, 2 the agent, 3 the system.
    participant_id: u32,
    /// `Client`, `Agent` or `External`.
    #[serde(rename = "type")]
    kind: String,
}

/// A refusal: `statusCode` 1 (try again) or 2 (do not).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct V2Error {
    status_code: u32,
    chat_ended: bool,
    errors: Vec<V2ErrorEntry>,
}

/// A 400 on a Chat API v2 path: v2's refusal once the request reached the chat, or GMS's
/// `{exception, message}` when a check every GMS route shares refused it first (a `gms_user`
/// header over 256 bytes, a malformed multipart body): those run before the route knows it
/// speaks v2.
struct V2BadRequest;

impl utoipa::PartialSchema for V2BadRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::OneOfBuilder;
        use utoipa::openapi::Ref;
        OneOfBuilder::new()
            .item(Ref::from_schema_name("V2Error"))
            .item(Ref::from_schema_name("ErrorBody"))
            .into()
    }
}

impl utoipa::ToSchema for V2BadRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "V2BadRequest".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("V2Error".into(), V2Error::schema()));
        <V2Error as utoipa::ToSchema>::schemas(schemas);
    }
}

/// One error: `code` (100 internal, 101 bad parameter, 102 no such chat, 103 wrong key, 104
/// limit, 105 chat ended, 106 no such service) and what to do.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct V2ErrorEntry {
    code: u32,
    advice: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn request_chat_needs_a_nickname_or_both_names() {
        assert!(parse_request(&form(&[("nickname", "Ann")])).is_ok());
        assert!(parse_request(&form(&[("firstName", "A"), ("lastName", "B")])).is_ok());
        let err = parse_request(&form(&[("firstName", "A")])).unwrap_err();
        assert_eq!(err.field, "nickname");
    }

    #[test]
    fn user_data_comes_from_bracketed_keys() {
        let request = parse_request(&form(&[
            ("nickname", "Ann"),
            ("userData[TimeZone]", "-480"),
            ("userData[order]", "42"),
            ("other", "x"),
        ]))
        .unwrap();
        assert_eq!(
            request.user_data,
            [
                ("TimeZone".into(), "-480".into()),
                ("order".into(), "42".into())
            ]
        );
        assert_eq!(request.time_zone.as_deref(), Some("-480"));
    }

    #[test]
    fn operations_read_their_fields_under_rest_and_cometd_names() {
        for (name, fields, expected) in [
            (
                "send",
                form(&[("message", "hi")]),
                Operation::Send("hi".into()),
            ),
            (
                "sendMessage",
                form(&[("message", "hi")]),
                Operation::Send("hi".into()),
            ),
            ("refresh", form(&[]), Operation::Refresh(None)),
            (
                "refreshChat",
                form(&[("message", "x")]),
                Operation::Refresh(Some("x".into())),
            ),
            (
                "startTyping",
                form(&[("message", "I wa")]),
                Operation::StartTyping("I wa".into()),
            ),
            (
                "stopTyping",
                form(&[]),
                Operation::StopTyping(String::new()),
            ),
            (
                "updateNickname",
                form(&[("nickname", "Bo")]),
                Operation::UpdateNickname("Bo".into()),
            ),
            (
                "updateData",
                form(&[("userData[a]", "1")]),
                Operation::UpdateData(vec![("a".into(), "1".into())]),
            ),
            (
                "customNotice",
                form(&[("message", "n")]),
                Operation::CustomNotice("n".into()),
            ),
            (
                "pushUrl",
                form(&[("pushUrl", "https://x.example")]),
                Operation::PushUrl("https://x.example".into()),
            ),
            ("disconnect", form(&[]), Operation::Disconnect),
        ] {
            assert_eq!(parse_operation(name, &fields).unwrap(), expected, "{name}");
        }
        for (name, fields, field) in [
            ("send", form(&[]), "message"),
            ("updateNickname", form(&[("nickname", " ")]), "nickname"),
            ("updateData", form(&[]), "userData"),
            (
                "updateData",
                form(&[("userData[_target]", "x")]),
                "userData[_target]",
            ),
            ("pushUrl", form(&[]), "pushUrl"),
        ] {
            match parse_operation(name, &fields) {
                Err(AppError::InvalidField(err)) => assert_eq!(err.field, field, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_operation("fly", &form(&[])),
            Err(AppError::InvalidField(err)) if err.field == "operation"
        ));
    }

    #[test]
    fn transcript_positions_are_whole_numbers() {
        assert_eq!(transcript_position(&form(&[])).unwrap(), None);
        assert_eq!(
            transcript_position(&form(&[("transcriptPosition", "3")])).unwrap(),
            Some(3)
        );
        assert_eq!(
            transcript_position(&form(&[("transcriptPosition", "-1")]))
                .unwrap_err()
                .field,
            "transcriptPosition"
        );
    }

    #[test]
    fn errors_say_whether_to_try_again() {
        let (status, body) = error_body(AppError::Forbidden("no".into()));
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["statusCode"], 2);
        assert_eq!(body["errors"][0]["code"], 103);
        let (status, body) = error_body(AppError::Unavailable("later".into()));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["statusCode"], 1);
        let (_, body) = error_body(FieldError::new("chatId", "ended").into());
        assert_eq!(body["errors"][0]["code"], 105);
        assert_eq!(body["chatEnded"], true);
        let (status, body) = error_body(AppError::UnknownService("x".into()));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["errors"][0]["code"], 106);
        assert_eq!(body["chatEnded"], false);
    }

    #[test]
    fn cometd_data_becomes_fields() {
        let fields = fields_of(&json!({
            "operation": "requestChat",
            "nickname": "Ann",
            "transcriptPosition": 2,
            "userData": {"order": "42", "vip": true},
        }));
        assert!(fields.contains(&("operation".into(), "requestChat".into())));
        assert!(fields.contains(&("transcriptPosition".into(), "2".into())));
        assert!(fields.contains(&("userData[order]".into(), "42".into())));
        assert!(fields.contains(&("userData[vip]".into(), "true".into())));
    }
}
