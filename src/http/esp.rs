//! ESP requests to chat sessions (seeds 002 and 004), as a workflow sends them:
//! `POST /genesys/1/admin/chat/{chatSessionId}/esp/{Method}` with form parameters, answered
//! with the fields of Chat Server's `Event3rdServerResponse` as JSON.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::admin_token;
use super::error::respond;
use super::form::{self, Fields, Json};
use super::{reply, to_completion, with_state};
use crate::app::{chat, AppState};
use crate::center::chat::EspOutcome;

/// The ESP route.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    esp_request(state)
}

/// POST /genesys/1/admin/chat/{chatSessionId}/esp/{Method}
#[utoipa::path(post, path = "/genesys/1/admin/chat/{id}/esp/{method}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "The chat session id (or the service id)"),
        ("method" = String, Path, description = "`Message`, `Notice`, `PlaceOnHold`, `CloseSession`, `GetSessionInfo`, `IdleControlConfigure` or `ConfigureSession`")),
    request_body(content(
        (EspForm = "application/x-www-form-urlencoded"), (EspForm = "multipart/form-data"))),
    responses((status = 200, description = "The fields of Chat Server's Event3rdServerResponse", body = EspReply)))]
fn esp_request(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "chat" / String / "esp" / String)
        .and(warp::post())
        .and(admin_token(&state))
        .and(with_state(state))
        .and(form::fields(limit, Json::Refused))
        .then(
            |target: String, method: String, state: AppState, fields: Fields| async move {
                // Chat Server takes every value as a string; a repeated key keeps the last.
                let params: BTreeMap<String, String> = fields.into_iter().collect();
                let now = state.clock.now();
                let result = {
                    let state = state.clone();
                    to_completion(async move { chat::esp(&state, &target, &method, &params).await })
                        .await
                };
                respond(result, |outcome| {
                    reply::json(StatusCode::OK, &response(&outcome, &now.to_iso()))
                })
            },
        )
}

/// `Event3rdServerResponse` (seed 004's spelling `OccuredAt`).
fn response(outcome: &EspOutcome, occurred_at: &str) -> Value {
    match outcome {
        EspOutcome::Posted { script_pos } => {
            json!({ "OccuredAt": occurred_at, "ScriptPos": script_pos })
        }
        EspOutcome::Done => json!({ "OccuredAt": occurred_at }),
        EspOutcome::Close { is_closed, .. } => {
            json!({ "OccuredAt": occurred_at, "IsClosed": u8::from(*is_closed) })
        }
        EspOutcome::Info {
            created_at,
            restored,
        } => json!({
            "OccuredAt": occurred_at,
            "SessionInfo": { "CreatedAt": created_at.to_iso(), "IsRestored": u8::from(*restored) },
        }),
    }
}

/// The form parameters of an ESP request (seeds 002, 004): every value text.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
struct EspForm {
    #[serde(flatten)]
    params: BTreeMap<String, String>,
}

/// `Event3rdServerResponse` as [`response`] builds it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct EspReply {
    /// When the request was handled, ISO 8601 (seed 004's spelling).
    #[serde(rename = "OccuredAt")]
    occured_at: String,
    /// `Message`, `Notice`: the transcript position of the posted event.
    #[serde(rename = "ScriptPos", skip_serializing_if = "Option::is_none")]
    script_pos: Option<u64>,
    /// `CloseSession`: 1 when the session is closed.
    #[serde(rename = "IsClosed", skip_serializing_if = "Option::is_none")]
    is_closed: Option<u8>,
    /// `GetSessionInfo`.
    #[serde(rename = "SessionInfo", skip_serializing_if = "Option::is_none")]
    session_info: Option<EspSessionInfo>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct EspSessionInfo {
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "IsRestored")]
    is_restored: u8,
}
