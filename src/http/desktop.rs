//! The agent desktop's chat routes (DESIGN §6.4, bearer token): the agent's interactions,
//! accepting a chat, chatting in it, and the agent's history.

use serde::Deserialize;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{act_as, act_as_in, agent_caller};
use super::error::respond;
use super::{form, reply, to_completion, with_state};
use crate::app::chat::{self, AgentAction, Interaction};
use crate::app::AppState;
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;
use crate::domain::options::FieldError;

/// The agent desktop chat routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    interactions(state.clone())
        .or(accept(state.clone()))
        .unify()
        .or(transcript(state.clone()))
        .unify()
        .or(message(state.clone()))
        .unify()
        .or(typing(state.clone()))
        .unify()
        .or(push_url(state.clone()))
        .unify()
        .or(leave(state.clone()))
        .unify()
        .or(history(state))
        .unify()
}

/// GET /genesys/1/agent/{agent}/history?since=ISO (default: the last 24 hours)
#[utoipa::path(get, path = "/genesys/1/agent/{agent}/history", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("since" = Option<String>, Query, description = "From this time on (ISO 8601; default: the last 24 hours)", example = "2026-01-31T09:00:00.000Z")),
    responses((status = 200, description = "The agent's turns at services since then, newest first", body = Vec<crate::app::history::HistoryEntry>)))]
fn history(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "agent" / String / "history")
        .and(warp::get())
        .and(agent_caller(&state))
        .and_then(act_as)
        .and(with_state(state))
        .and(form::query_fields())
        .map(|agent: String, state: AppState, query: form::Fields| {
            let since = match query.iter().rev().find(|(k, _)| k == "since") {
                None => Ok(crate::domain::time::Timestamp::from_millis(
                    state
                        .clock
                        .now()
                        .as_millis()
                        .saturating_sub(crate::app::history::DAY_MS),
                )),
                Some((_, v)) => crate::domain::time::Timestamp::parse_iso(v).map_err(|err| {
                    crate::app::AppError::from(FieldError::new(
                        "since",
                        format!("`{v}` is not a time ({err}): use ISO 8601, e.g. 2026-01-31T09:00:00.000Z"),
                    ))
                }),
            };
            let result = since.and_then(|since| crate::app::history::history(&state, &agent, since));
            respond(result, |entries| reply::json(StatusCode::OK, &entries))
        })
}

/// GET /genesys/1/agent/{agent}/interactions
#[utoipa::path(get, path = "/genesys/1/agent/{agent}/interactions", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi")),
    responses((status = 200, description = "Reserved and active interactions with customer data", body = Vec<InteractionView>)))]
fn interactions(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "agent" / String / "interactions")
        .and(warp::get())
        .and(agent_caller(&state))
        .and_then(act_as)
        .and(with_state(state))
        .then(|agent: String, state: AppState| async move {
            respond(chat::interactions(&state, &agent).await, |list| {
                let views: Vec<Value> = list.iter().map(interaction_view).collect();
                reply::json(StatusCode::OK, &views)
            })
        })
}

/// POST /genesys/1/agent/{agent}/interactions/{service}/accept
#[utoipa::path(post, path = "/genesys/1/agent/{agent}/interactions/{service}/accept", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("service" = String, Path, description = "The service id")),
    responses((status = 200, description = "Accepted", body = Accepted)))]
fn accept(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "agent" / String / "interactions" / String / "accept")
        .and(warp::post())
        .and(agent_caller(&state))
        .and_then(act_as_in)
        .untuple_one()
        .and(with_state(state))
        .then(
            |agent: String, service: String, state: AppState| async move {
                let result = agent_action(
                    state.clone(),
                    agent.clone(),
                    service.clone(),
                    AgentAction::Accept,
                )
                .await;
                respond(result, |_| {
                    reply::json(StatusCode::OK, &json!({ "accepted": service }))
                })
            },
        )
}

/// GET /genesys/1/agent/{agent}/chat/{service}?transcriptPosition=N
#[utoipa::path(get, path = "/genesys/1/agent/{agent}/chat/{service}", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("service" = String, Path, description = "The service id"), ("transcriptPosition" = Option<u64>, Query, description = "From this position (1, the default, is the whole transcript)", minimum = 1)),
    responses((status = 200, description = "The chat as its agent sees it", body = ChatView)))]
fn transcript(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "agent" / String / "chat" / String)
        .and(warp::get())
        .and(agent_caller(&state))
        .and_then(act_as_in)
        .untuple_one()
        .and(with_state(state))
        .and(form::query_fields())
        .then(
            |agent: String, service: String, state: AppState, query: form::Fields| async move {
                let from = match query.iter().rev().find(|(k, _)| k == "transcriptPosition") {
                    None => Ok(1),
                    Some((_, v)) => {
                        v.trim()
                            .parse::<u64>()
                            .ok()
                            .filter(|p| *p >= 1)
                            .ok_or_else(|| {
                                crate::app::AppError::from(FieldError::new(
                                    "transcriptPosition",
                                    format!(
                                    "`{v}` is not a transcript position: use a whole number from 1"
                                ),
                                ))
                            })
                    }
                };
                let result = match from {
                    Ok(from) => chat::agent_transcript(&state, &agent, &service, from)
                        .await
                        .map(|view| (view, from)),
                    Err(err) => Err(err),
                };
                respond(result, |((session, events), from)| {
                    reply::json(StatusCode::OK, &chat_view(&session, &events, from))
                })
            },
        )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TypingBody {
    typing: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PushUrlBody {
    url: String,
}

/// POST /genesys/1/agent/{agent}/chat/{service}/message `{"text"}`
#[utoipa::path(post, path = "/genesys/1/agent/{agent}/chat/{service}/message", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("service" = String, Path, description = "The service id")), request_body = MessageBody,
    responses((status = 200, description = "The transcript event added", body = Option<EventView>)))]
fn message(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    chat_post(state, "message", |body: MessageBody| {
        AgentAction::Message(body.text)
    })
}

/// POST /genesys/1/agent/{agent}/chat/{service}/typing `{"typing":bool}`
#[utoipa::path(post, path = "/genesys/1/agent/{agent}/chat/{service}/typing", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("service" = String, Path, description = "The service id")), request_body = TypingBody,
    responses((status = 200, description = "The transcript event added, or null", body = Option<EventView>)))]
fn typing(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    chat_post(state, "typing", |body: TypingBody| {
        AgentAction::Typing(body.typing)
    })
}

/// POST /genesys/1/agent/{agent}/chat/{service}/push-url `{"url"}`
#[utoipa::path(post, path = "/genesys/1/agent/{agent}/chat/{service}/push-url", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("service" = String, Path, description = "The service id")), request_body = PushUrlBody,
    responses((status = 200, description = "The transcript event added", body = Option<EventView>)))]
fn push_url(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    chat_post(state, "push-url", |body: PushUrlBody| {
        AgentAction::PushUrl(body.url)
    })
}

/// POST /genesys/1/agent/{agent}/chat/{service}/{name} with a JSON body `B`, turned into the
/// agent's action by `action`; answers the transcript event it added.
fn chat_post<B>(
    state: AppState,
    name: &'static str,
    action: fn(B) -> AgentAction,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone
where
    B: serde::de::DeserializeOwned + Send + 'static,
{
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "agent" / String / "chat" / String / ..)
        .and(warp::path(name))
        .and(warp::path::end())
        .and(warp::post())
        .and(agent_caller(&state))
        .and_then(act_as_in)
        .untuple_one()
        .and(with_state(state))
        .and(form::json_body::<B>(limit))
        .then(
            move |agent: String, service: String, state: AppState, body: B| async move {
                event_reply(agent_action(state, agent, service, action(body)).await)
            },
        )
}

/// POST /genesys/1/agent/{agent}/chat/{service}/leave
#[utoipa::path(post, path = "/genesys/1/agent/{agent}/chat/{service}/leave", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("service" = String, Path, description = "The service id")),
    responses((status = 200, description = "Left the chat", body = Left)))]
fn leave(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "agent" / String / "chat" / String / "leave")
        .and(warp::post())
        .and(agent_caller(&state))
        .and_then(act_as_in)
        .untuple_one()
        .and(with_state(state))
        .then(
            |agent: String, service: String, state: AppState| async move {
                let result = agent_action(
                    state.clone(),
                    agent.clone(),
                    service.clone(),
                    AgentAction::Leave,
                )
                .await;
                respond(result, |_| {
                    reply::json(StatusCode::OK, &json!({ "left": service }))
                })
            },
        )
}

/// An agent's chat action, run to its end even if the desktop goes away.
async fn agent_action(
    state: AppState,
    agent: String,
    service: String,
    action: AgentAction,
) -> Result<Option<TranscriptEvent>, crate::app::AppError> {
    to_completion(async move { chat::agent_action(&state, &agent, &service, action).await }).await
}

fn event_reply(result: Result<Option<TranscriptEvent>, crate::app::AppError>) -> Response {
    respond(result, |event| {
        let body = event.map_or(Value::Null, |e| {
            json!({ "transcriptPosition": e.position, "type": e.kind.as_str(), "text": e.text })
        });
        reply::json(StatusCode::OK, &body)
    })
}

/// An interaction as the agent desktop shows it.
pub(crate) fn interaction_view(interaction: &Interaction) -> Value {
    let record = &interaction.record;
    let mut view = json!({
        "service_id": record.id,
        "service_name": record.service_name,
        "status": interaction.status,
        "media": crate::domain::voice::media_of(record),
        "callback_state": record.state.as_str(),
        "customer_number": record.customer_number,
        "user_data": record.user_data,
        "waited_secs": interaction.waited_secs,
        "routing_step": interaction.routing_step,
    });
    if let (Some(session), Some(map)) = (&interaction.chat, view.as_object_mut()) {
        map.insert("chat".into(), chat_summary(session));
    }
    if let (true, Some(map)) = (crate::domain::voice::is_voice(record), view.as_object_mut()) {
        map.insert("dial".into(), super::voice::dial_summary(record));
    }
    view
}

/// A chat without its transcript: where the transcript stands (`transcriptPosition`, the
/// position the next event gets; `lastPosition` and `transcriptCount`, both the number of
/// events so far), for the desktop to fetch what is new with
/// `GET .../chat/{service}?transcriptPosition=N`.
fn chat_summary(session: &ChatSession) -> Value {
    let customer = &session.customer;
    let count = session.next_position.saturating_sub(1);
    json!({
        "chatSessionId": session.id,
        "state": session.ixn_state(false),
        "startedAt": session.created_at.to_iso(),
        "transcriptPosition": session.next_position,
        "lastPosition": count,
        "transcriptCount": count,
        "customer": {
            "nickname": customer.nickname,
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "email": customer.email,
            "subject": customer.subject,
        },
        "agent": session.agent.as_ref().map(|a| json!({"id": a.id, "nickname": a.nickname, "joined": a.joined})),
    })
}

/// A chat as its agent sees it: every event from `from`, hidden ones included, with their
/// visibility.
pub(super) fn chat_view(session: &ChatSession, events: &[TranscriptEvent], from: u64) -> Value {
    let rows: Vec<Value> = events
        .iter()
        .filter(|e| e.position >= from)
        .map(|e| {
            let attributes = e
                .attributes
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            json!({
                "position": e.position,
                "row": e.row(session.created_at),
                "visibility": e.visibility.as_str(),
                "message_type": e.message_type,
                "attributes": attributes,
            })
        })
        .collect();
    let mut view = chat_summary(session);
    if let Some(map) = view.as_object_mut() {
        map.insert("transcript".into(), Value::Array(rows));
    }
    view
}

/// `{"accepted": "<service id>"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct Accepted {
    accepted: String,
}

/// `{"left": "<service id>"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct Left {
    left: String,
}

/// A transcript event the agent added ([`event_reply`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct EventView {
    #[serde(rename = "transcriptPosition")]
    transcript_position: u64,
    #[serde(rename = "type")]
    kind: String,
    text: String,
}

/// An interaction ([`interaction_view`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct InteractionView {
    service_id: String,
    service_name: String,
    /// `reserved` or `active`.
    status: String,
    callback_state: String,
    customer_number: Option<String>,
    user_data: std::collections::BTreeMap<String, String>,
    /// Whole seconds the customer waited until this agent was found (null before).
    waited_secs: Option<u64>,
    /// The routing step whose target found this agent.
    routing_step: Option<RoutingStepView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chat: Option<ChatSummary>,
}

/// `{"step": 2, "target": "Billing@StatServer.GA"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct RoutingStepView {
    /// 1-based step of the `_target` list.
    step: u16,
    target: String,
}

/// A chat without its transcript ([`chat_summary`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct ChatSummary {
    chat_session_id: String,
    state: String,
    started_at: String,
    transcript_position: u64,
    last_position: u64,
    transcript_count: u64,
    customer: ChatCustomer,
    agent: Option<ChatAgent>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
#[serde(rename_all = "camelCase")]
struct ChatCustomer {
    nickname: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    subject: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct ChatAgent {
    id: String,
    nickname: String,
    joined: bool,
}

/// A chat with its transcript as its agent sees it ([`chat_view`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
pub(super) struct ChatView {
    #[serde(flatten)]
    summary: ChatSummary,
    transcript: Vec<TranscriptRowView>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct TranscriptRowView {
    position: u64,
    /// `[type, nickname, text, seconds since start, party]`.
    row: [String; 5],
    /// `ALL`, `INT` or `VIP`.
    visibility: String,
    message_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Value>,
}
