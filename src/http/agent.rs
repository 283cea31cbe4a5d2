//! Agents: the admin API for their configuration (`/genesys/1/admin/agents`) and the agent
//! desktop API for their state (`/genesys/1/agent/{id}/state`). Both need the bearer token.

use std::collections::BTreeMap;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::admin_token;
use super::error::respond;
use super::form;
use super::{reply, with_state};
use crate::app::{agents, AppError, AppState};
use crate::domain::agent::{parse_reason, Agent, AgentConfig, AgentRecord, AgentState};
use crate::domain::options::FieldError;

/// The agent routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    agents_list(state.clone())
        .or(agents_put(state.clone()))
        .unify()
        .or(agents_delete(state.clone()))
        .unify()
        .or(agent_state(state))
        .unify()
}

/// An agent with its live work, as the admin list shows it.
fn live_agent_view(agent: &Agent) -> serde_json::Value {
    let mut view = agent_view(&AgentRecord::from(agent));
    if let Some(object) = view.as_object_mut() {
        object.insert("reserved".into(), serde_json::json!(agent.reserved));
        object.insert("active".into(), serde_json::json!(agent.active));
    }
    view
}

/// An agent as the API shows it.
fn agent_view(agent: &AgentRecord) -> serde_json::Value {
    let config = &agent.config;
    serde_json::json!({
        "id": config.id,
        "name": config.name,
        "groups": config.groups,
        "place": config.place,
        "place_groups": config.place_groups,
        "skills": config.skills,
        "capacity": config.capacity,
        "auto_answer": config.auto_answer,
        "state": agent.state.as_str(),
        "reason": agent.reason,
        "state_since": agent.state_since.to_iso(),
        "idle_since": agent.idle_since.to_iso(),
    })
}

/// GET /genesys/1/admin/agents
#[utoipa::path(get, path = "/genesys/1/admin/agents", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Every agent with its live work", body = Vec<AgentView>)))]
fn agents_list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "agents")
        .and(warp::get())
        .and(admin_token(&state))
        .and(with_state(state))
        .then(|state: AppState| async move {
            respond(agents::list_agents(&state).await, |list| {
                let views: Vec<_> = list.iter().map(live_agent_view).collect();
                reply::json(StatusCode::OK, &views)
            })
        })
}

/// The body of `PUT /genesys/1/admin/agents/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    place: Option<String>,
    #[serde(default)]
    place_groups: Vec<String>,
    #[serde(default)]
    skills: BTreeMap<String, i64>,
    #[serde(default)]
    capacity: BTreeMap<String, u32>,
    #[serde(default)]
    auto_answer: bool,
}

/// PUT /genesys/1/admin/agents/{id}
#[utoipa::path(put, path = "/genesys/1/admin/agents/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "The agent id")),
    request_body = AgentBody,
    responses((status = 200, description = "Replaced", body = AgentView),
        (status = 201, description = "Created", body = AgentView)))]
fn agents_put(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "agents" / String)
        .and(warp::put())
        .and(admin_token(&state))
        .and(with_state(state))
        .and(form::json_body::<AgentBody>(limit))
        .then(|id: String, state: AppState, body: AgentBody| async move {
            let config = AgentConfig {
                id,
                name: body.name,
                groups: body.groups,
                place: body.place,
                place_groups: body.place_groups,
                skills: body.skills,
                capacity: body.capacity,
                auto_answer: body.auto_answer,
            };
            respond(
                agents::put_agent(&state, config).await,
                |(agent, created)| {
                    let status = if created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    reply::json(status, &agent_view(&agent))
                },
            )
        })
}

/// DELETE /genesys/1/admin/agents/{id}
#[utoipa::path(delete, path = "/genesys/1/admin/agents/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "The agent id")),
    responses((status = 200, description = "Deleted", body = super::params::Deleted)))]
fn agents_delete(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "agents" / String)
        .and(warp::delete())
        .and(admin_token(&state))
        .and(with_state(state))
        .then(|id: String, state: AppState| async move {
            respond(agents::delete_agent(&state, &id).await, |()| {
                reply::json(StatusCode::OK, &serde_json::json!({ "deleted": id }))
            })
        })
}

/// The body of `POST /genesys/1/agent/{id}/state`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StateBody {
    /// `ready`, `not_ready` or `logged_out`.
    state: String,
    /// With `not_ready` only: a reason code (`Break`), at most 64 characters.
    #[serde(default)]
    reason: Option<String>,
}

/// POST /genesys/1/agent/{id}/state
#[utoipa::path(post, path = "/genesys/1/agent/{agent}/state", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi")),
    request_body = StateBody,
    responses((status = 200, description = "The agent in its new state", body = AgentView)))]
fn agent_state(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "agent" / String / "state")
        .and(warp::post())
        .and(super::auth::agent_caller(&state))
        .and_then(super::auth::act_as)
        .and(with_state(state))
        .and(form::json_body::<StateBody>(limit))
        .then(|id: String, state: AppState, body: StateBody| async move {
            let parsed = body
                .state
                .parse::<AgentState>()
                .map_err(|message| FieldError::new("state", message))
                .and_then(|new_state| {
                    parse_reason(new_state, body.reason.as_deref())
                        .map(|reason| (new_state, reason))
                        .map_err(|(field, message)| FieldError::new(field, message))
                });
            let result = match parsed {
                Ok((new_state, reason)) => {
                    agents::set_agent_state(&state, &id, new_state, reason).await
                }
                Err(err) => Err(AppError::from(err)),
            };
            respond(result, |agent| {
                reply::json(StatusCode::OK, &agent_view(&agent))
            })
        })
}

/// An agent as [`agent_view`] and [`live_agent_view`] show it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct AgentView {
    id: String,
    name: String,
    groups: Vec<String>,
    place: Option<String>,
    place_groups: Vec<String>,
    skills: BTreeMap<String, i64>,
    /// Interactions at once per media (`chat`, `voice`).
    capacity: BTreeMap<String, u32>,
    auto_answer: bool,
    /// `ready`, `not_ready` or `logged_out`.
    state: String,
    /// The reason code of a Not Ready state, if one was given.
    reason: Option<String>,
    state_since: String,
    idle_since: String,
    /// The admin list only: services reserved for the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    reserved: Option<Vec<String>>,
    /// The admin list only: services the agent handles now, by media.
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<BTreeMap<String, Vec<String>>>,
}
