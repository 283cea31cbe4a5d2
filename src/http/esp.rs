//! ESP requests to chat sessions (seeds 002 and 004), as a workflow sends them:
//! `POST /genesys/1/admin/chat/{chatSessionId}/esp/{Method}` with form parameters, answered
//! with the fields of Chat Server's `Event3rdServerResponse` as JSON.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::admin::admin_auth;
use super::error::respond;
use super::form::{self, Fields, Json};
use super::{reply, to_completion, with_state};
use crate::app::{chat, AppState};
use crate::center::chat::EspOutcome;

/// The ESP route.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "chat" / String / "esp" / String)
        .and(warp::post())
        .and(admin_auth(&state))
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
