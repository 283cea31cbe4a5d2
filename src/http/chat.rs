//! Chat API v1 (seed 003): `POST /genesys/1/service/{id}/ixn/chat` and
//! `/ixn/chat/{refresh,send,startTyping,stopTyping,customNotice,disconnect}`.
//!
//! Poll mode answers the chat object; comet mode (`notify_by=comet` when the chat started)
//! answers `{"_id","comet_channel":"/_genesys"}` and pushes the transcript instead, unless
//! `_verbose=true` asks for the whole object. Starting and disconnecting always answer the
//! chat object (seeds 000 and 003).

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::respond;
use super::form::{self, Fields, Json};
use super::{client, reply, service_access, to_completion, with_state, Client};
use crate::app::chat::{self, ChatReply, CustomerAction};
use crate::app::{AppError, AppState};
use crate::center::chat::StartChat;
use crate::domain::chat::customer_nickname;
use crate::domain::chat::session::Customer;
use crate::domain::options::FieldError;

use super::error::ErrorBody;
use super::params::{GmsUser, ServiceId};

/// The customer's chat routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    start(state.clone()).or(action(state)).unify()
}

/// POST /genesys/1/service/{id}/ixn/chat
#[utoipa::path(post, path = "/genesys/1/service/{id}/ixn/chat", tag = "chat",
    params(ServiceId, GmsUser), request_body(content(
        (ChatStartForm = "application/x-www-form-urlencoded"), (ChatStartForm = "multipart/form-data"))),
    responses((status = 200, description = "The chat started: the chat object (seed 003), or in comet mode the channel to listen on", body = ChatReplyView)))]
fn start(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / String / "ixn" / "chat")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(service_access)
        .untuple_one()
        .and(form::fields(limit, Json::Refused))
        .then(
            |id: String, state: AppState, client: Client, fields: Fields| async move {
                let verbose = verbose(&fields);
                let started = match parse_start(&fields) {
                    Ok(request) => {
                        let (state, id, user) =
                            (state.clone(), id.clone(), client.gms_user.clone());
                        to_completion(async move {
                            chat::start_chat(&state, &id, user.as_deref(), request).await
                        })
                        .await
                    }
                    Err(err) => Err(err.into()),
                };
                respond(started, |reply| {
                    let body = if reply.view.session.comet && !verbose {
                        // Seed 000: the comet-mode start answers the channel to listen on.
                        short_reply(&reply)
                    } else {
                        chat_object(&reply, verbose, &client)
                    };
                    reply::json(StatusCode::OK, &body)
                })
            },
        )
}

/// POST /genesys/1/service/{id}/ixn/chat/{action}
#[utoipa::path(post, path = "/genesys/1/service/{id}/ixn/chat/{action}", tag = "chat",
    params(ServiceId, ("action" = inline(ChatOperation), Path, description = "The chat operation"), GmsUser),
    request_body(content(
        (ChatActionForm = "application/x-www-form-urlencoded"), (ChatActionForm = "multipart/form-data"))),
    responses((status = 200, description = "The chat object with what is new (poll mode, or `_verbose=true`), or the channel in comet mode", body = ChatReplyView),
        (status = 404, description = "No such service, or no such chat operation", body = ErrorBody),
        (status = 503, description = "The chat has not started: no agent is available yet", body = ErrorBody)))]
fn action(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / String / "ixn" / "chat" / String)
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(
            |id: String, name: String, state: AppState, client: Client| async move {
                let (id, state, client) = service_access(id, state, client).await?;
                Ok::<_, Rejection>((id, name, state, client))
            },
        )
        .untuple_one()
        .and(form::fields(limit, Json::Refused))
        .then(
            |id: String, name: String, state: AppState, client: Client, fields: Fields| async move {
                let verbose = verbose(&fields);
                let disconnect = name == "disconnect";
                let result = match parse_action(&name, &fields) {
                    Ok(action) => {
                        let (state, id, user) =
                            (state.clone(), id.clone(), client.gms_user.clone());
                        to_completion(async move {
                            chat::customer_action(&state, &id, user.as_deref(), action).await
                        })
                        .await
                    }
                    Err(err) => Err(err),
                };
                respond(result, |reply| {
                    let body = if reply.view.session.comet && !verbose && !disconnect {
                        short_reply(&reply)
                    } else {
                        chat_object(&reply, verbose, &client)
                    };
                    reply::json(StatusCode::OK, &body)
                })
            },
        )
}

/// The action named in the URL, with its fields.
fn parse_action(name: &str, fields: &Fields) -> Result<CustomerAction, AppError> {
    let message = form::last(fields, "message").map(str::to_string);
    Ok(match name {
        "refresh" => CustomerAction::Refresh {
            from: transcript_position(fields)?,
            message: message.filter(|m| !m.trim().is_empty()),
        },
        "send" => CustomerAction::Send(message.filter(|m| !m.trim().is_empty()).ok_or_else(
            || FieldError::new("message", "send needs the text to send in `message`"),
        )?),
        "startTyping" => CustomerAction::StartTyping,
        "stopTyping" => CustomerAction::StopTyping,
        "customNotice" => CustomerAction::CustomNotice(message.unwrap_or_default()),
        "disconnect" => CustomerAction::Disconnect,
        other => {
            return Err(AppError::NotFound(format!(
                "there is no chat operation `{other}`: use refresh, send, startTyping, stopTyping, customNotice or disconnect"
            )))
        }
    })
}

/// The fields of `ixn/chat` (seed 003): `firstName`, `lastName`, `email`, `subject`,
/// `userDisplayName`, `notify_by` and `clientTimeZoneOffset`; other fields (`_verbose`,
/// `subscriptionID`, business data) are not the chat's.
fn parse_start(fields: &Fields) -> Result<StartChat, FieldError> {
    let get = |name: &str| {
        form::last(fields, name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let comet = match get("notify_by").as_deref() {
        None => false,
        Some("comet") => true,
        Some(other) => {
            return Err(FieldError::new(
                "notify_by",
                format!("`{other}` is not a notification mode: use `comet`, or leave it out to poll with refresh"),
            ))
        }
    };
    let first_name = get("firstName");
    let last_name = get("lastName");
    let nickname = customer_nickname(
        get("userDisplayName").as_deref(),
        first_name.as_deref(),
        last_name.as_deref(),
    );
    Ok(StartChat {
        customer: Customer {
            first_name,
            last_name,
            email: get("email"),
            subject: get("subject"),
            nickname,
            time_zone_offset: get("clientTimeZoneOffset"),
            user_id: String::new(),
            secure_key: String::new(),
        },
        comet,
    })
}

/// `transcriptPosition`: a position from 1.
fn transcript_position(fields: &Fields) -> Result<Option<u64>, FieldError> {
    match form::last(fields, "transcriptPosition") {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(position) if position >= 1 => Ok(Some(position)),
            _ => Err(FieldError::new(
                "transcriptPosition",
                format!("`{text}` is not a transcript position: use a whole number from 1 (1 replays the whole transcript)"),
            )),
        },
    }
}

fn verbose(fields: &Fields) -> bool {
    form::last(fields, "_verbose").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `{"_id","comet_channel":"/_genesys"}`.
fn short_reply(reply: &ChatReply) -> Value {
    json!({ "_id": reply.service_id, "comet_channel": "/_genesys" })
}

/// The chat object of seed 003; `verbose` adds the participant, server and URL fields.
fn chat_object(reply: &ChatReply, verbose: bool, client: &Client) -> Value {
    let session = &reply.view.session;
    let state = session.ixn_state(reply.created);
    // The start reply and the disconnect reply carry no transcript rows (seed 003); every
    // other reply shows what is new for the customer, possibly nothing.
    let start_or_end = reply.created || session.closed_at.is_some();
    let has_rows = !reply.view.rows.is_empty();
    let rows = (has_rows || !start_or_end).then_some(reply.view.rows.as_slice());
    let mut object = session.wire(state, rows);
    if !verbose {
        return object;
    }
    let (host, port, tls) = host_and_port(&client.base_url);
    let base = format!("/genesys/1/service/{}/ixn/chat", reply.service_id);
    if let Some(map) = object.as_object_mut() {
        let customer = &session.customer;
        let mut add = |key: &str, value: Value| {
            map.insert(key.to_string(), value);
        };
        add("userId", json!(customer.user_id));
        add("secureKey", json!(customer.secure_key));
        add("checkChatServiceLoadBalancerPath", json!(""));
        add("chatServerLoadBalancerAlias", json!("callbackd"));
        add("chatServerHost", json!(host));
        add("chatWebApiPort", json!(port));
        add("isTLSrequired", json!(tls.to_string()));
        add(
            "clientTimeZoneOffset",
            json!(customer
                .time_zone_offset
                .clone()
                .unwrap_or_else(|| "0".into())),
        );
        add("_chatIxnAPI_SEND_URL", json!(format!("{base}/send")));
        add("_chatIxnAPI_REFRESH_URL", json!(format!("{base}/refresh")));
        add(
            "_chatIxnAPI_START_TYPING_URL",
            json!(format!("{base}/startTyping")),
        );
        add(
            "_chatIxnAPI_STOP_TYPING_URL",
            json!(format!("{base}/stopTyping")),
        );
        add(
            "_chatIxnAPI_DISCONNECT_URL",
            json!(format!("{base}/disconnect")),
        );
        add(
            "_chatIxnAPI_REFRESH_FROM_START_URL",
            json!(format!("{base}/refresh?transcriptPosition=1")),
        );
        add(
            "_chatIxnAPI_SEND_CUSTOM_URL",
            json!(format!("{base}/customNotice")),
        );
        if session.comet {
            add("comet_channel", json!("/_genesys"));
        }
    }
    object
}

/// The host, the port and whether TLS is used, of `http[s]://host[:port][/prefix]`.
fn host_and_port(base_url: &str) -> (String, String, bool) {
    let (tls, rest) = match base_url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, base_url.trim_start_matches("http://")),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let default_port = if tls { "443" } else { "80" };
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() => {
            (host.to_string(), port.to_string(), tls)
        }
        _ => (authority.to_string(), default_port.to_string(), tls),
    }
}

/// The chat operations of `ixn/chat/{action}` ([`parse_action`]).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the path for the OpenAPI document only
enum ChatOperation {
    #[serde(rename = "refresh")]
    Refresh,
    #[serde(rename = "send")]
    Send,
    #[serde(rename = "startTyping")]
    StartTyping,
    #[serde(rename = "stopTyping")]
    StopTyping,
    #[serde(rename = "customNotice")]
    CustomNotice,
    #[serde(rename = "disconnect")]
    Disconnect,
}

/// The fields of `ixn/chat` ([`parse_start`]); other fields are taken and not used.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct ChatStartForm {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    subject: Option<String>,
    /// The customer's nickname in the transcript (else first and last name).
    user_display_name: Option<String>,
    /// `comet` pushes the transcript instead of answering it; leave it out to poll.
    #[schema(pattern = "^comet$")]
    notify_by: Option<String>,
    client_time_zone_offset: Option<String>,
    /// `true` answers the whole chat object even in comet mode.
    #[serde(rename = "_verbose")]
    verbose: Option<String>,
}

/// The fields of `ixn/chat/{action}` ([`parse_action`]).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct ChatActionForm {
    /// The text (`send`, `customNotice`; a `refresh` may carry one to send).
    message: Option<String>,
    /// `refresh`: replay from this position (1 is the whole transcript).
    transcript_position: Option<String>,
    /// `true` answers the whole chat object even in comet mode.
    #[serde(rename = "_verbose")]
    verbose: Option<String>,
}

/// A chat reply: [`chat_object`] (poll mode, verbose) or [`short_reply`] (comet mode).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
enum ChatReplyView {
    Chat(ChatObject),
    Comet(CometChannel),
}

/// `{"_id","comet_channel":"/_genesys"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct CometChannel {
    _id: String,
    comet_channel: String,
}

/// The chat object of seed 003 (`ChatSession::wire`); `_verbose=true` adds the participant,
/// server and `_chatIxnAPI_*` URL fields, all text.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct ChatObject {
    /// `CONNECTED` (just started), `TRANSCRIPT` or `DISCONNECTED`.
    chat_ixn_state: String,
    chat_session_id: String,
    /// The position of the next event, as text.
    transcript_position: String,
    chat_service_message: String,
    started_at: String,
    /// Rows `[type, nickname, text, seconds since start, party]`, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript_to_show: Option<Vec<[String; 5]>>,
    /// The verbose fields.
    #[serde(flatten)]
    verbose: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn host_and_port_read_the_base_url() {
        for (base, expected) in [
            ("http://127.0.0.1:8080", ("127.0.0.1", "8080", false)),
            ("http://gms.example.com", ("gms.example.com", "80", false)),
            ("https://gms.example.com", ("gms.example.com", "443", true)),
            (
                "https://gms.example.com:8443/gms",
                ("gms.example.com", "8443", true),
            ),
        ] {
            let (host, port, tls) = host_and_port(base);
            assert_eq!((host.as_str(), port.as_str(), tls), expected, "{base}");
        }
    }
}
