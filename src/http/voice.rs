//! The agent desktop's voice callback route (no telephony here): the agent records how the
//! call they dialed went. Taking a voice callback is the desktop's Accept
//! (`POST .../interactions/{service}/accept`), shared with chats.

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{act_as_in, agent_caller, Caller};
use super::error::{respond, ApiError};
use super::{form, reply, to_completion, with_state};
use crate::app::dialogs;
use crate::app::voice::{self, OutcomeRecorded};
use crate::app::AppState;
use crate::domain::service::ServiceRecord;
use crate::domain::voice::{attempts, DialOutcome};

/// The voice callback routes of the agent desktop, and the inbound-call API.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    outcome(state.clone()).or(inbound_call(state)).unify()
}

/// POST /genesys/1/voice/inbound-call, form or JSON `access_code` and/or `caller_number`:
/// a call reached the access number of a user-originated voice callback. A telephony
/// integration (admin token) or the agent who answered it (desktop session) reports it; the
/// callback it is for enters its queue (immediate) or keeps its reserved agent (delayed).
#[utoipa::path(post, path = "/genesys/1/voice/inbound-call", tag = "agent", security(("admin_token" = []), ("desktop_session" = [])),
    request_body(content((InboundCallBody = "application/x-www-form-urlencoded"), (InboundCallBody = "multipart/form-data"), (InboundCallBody = "application/json"))),
    responses((status = 200, description = "The callback the call is for", body = InboundCallView),
        (status = 404, description = "No user-originated callback waits for this call", body = super::error::ErrorBody)))]
fn inbound_call(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "voice" / "inbound-call")
        .and(warp::post())
        .and(agent_caller(&state))
        .and(with_state(state))
        .and(form::fields(limit, form::Json::Accepted))
        .then(
            |_caller: Caller, state: AppState, fields: form::Fields| async move {
                let result = match dialogs::InboundCall::parse(&fields) {
                    Ok(call) => {
                        to_completion(async move { dialogs::inbound_call(&state, &call).await })
                            .await
                    }
                    Err(err) => Err(err.into()),
                };
                respond(result, |record| {
                    reply::json(
                        StatusCode::OK,
                        &json!({
                            "_id": record.id,
                            "_callback_state": record.state.as_str(),
                            "_customer_number": record.customer_number,
                            "_reserved_agent": record.reserved_agent,
                        }),
                    )
                })
            },
        )
}

/// The body of an inbound call.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
struct InboundCallBody {
    /// The access code the caller keyed in (from the DialNumber dialog's `_tel_url`).
    #[schema(example = "482913")]
    access_code: Option<String>,
    /// The caller's number, matched against `_customer_number`.
    caller_number: Option<String>,
}

/// The reply of an inbound call.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct InboundCallView {
    _id: String,
    /// `QUEUED` (waiting for an agent) or `ROUTING` (its agent is reserved).
    _callback_state: String,
    _customer_number: Option<String>,
    /// The agent the call goes to, once one is reserved.
    _reserved_agent: Option<String>,
}

/// POST /genesys/1/agent/{agent}/interactions/{service}/outcome, form or JSON `outcome` =
/// `connected` | `no_answer` | `busy` | `wrong_number`. The agent (403) and the service (404)
/// are checked before the body is read.
#[utoipa::path(post, path = "/genesys/1/agent/{agent}/interactions/{service}/outcome", tag = "agent", security(("admin_token" = []), ("desktop_session" = []), ("console_session" = [])),
    params(("agent" = String, Path, description = "The agent id", example = "kristi"), ("service" = String, Path, description = "The service id of a voice callback")),
    request_body(content((OutcomeBody = "application/x-www-form-urlencoded"), (OutcomeBody = "multipart/form-data"), (OutcomeBody = "application/json"))),
    responses((status = 200, description = "The outcome recorded and where the callback stands now", body = OutcomeView)))]
fn outcome(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "agent" / String / "interactions" / String / "outcome")
        .and(warp::post())
        .and(agent_caller(&state))
        .and_then(act_as_in)
        .untuple_one()
        .and(with_state(state))
        .and_then(service_exists)
        .untuple_one()
        .and(form::fields(limit, form::Json::Accepted))
        .then(
            |agent: String, service: String, state: AppState, fields: form::Fields| async move {
                let result = match DialOutcome::parse(form::last(&fields, "outcome")) {
                    Ok(outcome) => {
                        to_completion(async move {
                            voice::record_outcome(&state, &agent, &service, outcome).await
                        })
                        .await
                    }
                    Err(err) => Err(err.into()),
                };
                respond(result, |done| {
                    reply::json(StatusCode::OK, &outcome_view(&done))
                })
            },
        )
}

/// 404 for an unknown service, before the body is read.
async fn service_exists(
    agent: String,
    service: String,
    state: AppState,
) -> Result<(String, String, AppState), Rejection> {
    voice::check_exists(&state, &service)
        .map_err(|err| warp::reject::custom(ApiError::from(err)))?;
    Ok((agent, service, state))
}

/// The body of an outcome.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
struct OutcomeBody {
    /// How the call went: `connected`, `no_answer`, `busy` or `wrong_number`.
    #[schema(example = "no_answer")]
    outcome: String,
}

/// [`outcome_view`]'s reply.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct OutcomeView {
    /// The outcome recorded.
    outcome: String,
    /// The callback's state now: `COMPLETED`, or `SCHEDULED` for a redial.
    callback_state: String,
    /// The completion reason (`AGENT_CONNECTED`, `FAIL_CALL_TO_CUSTOMER`), null for a redial.
    reason: Option<String>,
    /// Attempts made so far, this one included.
    attempts: u64,
    /// When the customer is dialed again (ISO), null when the callback completed.
    redial_at: Option<String>,
}

/// The answer to an outcome: what was recorded and where the callback stands now.
fn outcome_view(done: &OutcomeRecorded) -> Value {
    json!({
        "outcome": done.recorded.outcome.as_str(),
        "callback_state": done.record.state.as_str(),
        "reason": done.record.reason.map(|r| r.as_str()),
        "attempts": done.recorded.attempts,
        "redial_at": done.recorded.redial_at.map(|at| at.to_iso()),
    })
}

/// What the desktop shows of a voice callback: the number to dial and the attempts made.
pub(super) fn dial_summary(record: &ServiceRecord) -> Value {
    json!({
        "number": record.customer_number,
        "attempts": attempts(record),
    })
}
