//! Notification routes of seed 000: between the agent desktop and the customer's app.
//!
//! Bodies are urlencoded or multipart (JSON is 415), and the `gms_user` rule applies: another
//! user's service is 403, an unknown one 404.

use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::{respond, ApiError};
use super::form::{self, Fields, Json};
use super::{client, reply, service_access, with_state, Client};
use crate::app::{notifications, AppError, AppState};
use crate::domain::notification::NotificationText;

use super::params::{GmsUser, NoFields, ServiceId};
use crate::app::notifications::AgentNotification;

/// The notification routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    notifications_retrieve(state.clone())
        .or(internal_notification_send(state.clone()))
        .unify()
        .or(agent_notification_send(state.clone()))
        .unify()
        .or(agent_notifications_retrieve(state))
        .unify()
}

/// `POST /genesys/1/service/{id}/<action>` with the request fields and the caller.
fn service_post(
    state: AppState,
    action: &'static str,
) -> impl Filter<Extract = (String, AppState, Client, Fields), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / String / ..)
        .and(warp::path(action))
        .and(warp::path::end())
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(service_access)
        .untuple_one()
        .and(form::fields(limit, Json::Refused))
}

/// POST /genesys/1/service/{id}/retrieve-notifications
#[utoipa::path(post, path = "/genesys/1/service/{id}/retrieve-notifications", tag = "notification",
    params(ServiceId, GmsUser), request_body(content(
        (NoFields = "application/x-www-form-urlencoded"), (NoFields = "multipart/form-data"))),
    responses((status = 200, description = "The customer's notifications no push delivered, oldest first, each once (seed 000)", body = Vec<Object>)))]
fn notifications_retrieve(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_post(state, "retrieve-notifications").then(
        |id: String, state: AppState, client: Client, _fields: Fields| async move {
            let messages = notifications::retrieve(&state, &id, client.gms_user()).await;
            respond(messages, |messages| reply::json(StatusCode::OK, &messages))
        },
    )
}

/// POST /genesys/1/service/{id}/internal-notification
#[utoipa::path(post, path = "/genesys/1/service/{id}/internal-notification", tag = "notification",
    params(ServiceId, GmsUser), request_body(content(
        (NotificationForm = "application/x-www-form-urlencoded"), (NotificationForm = "multipart/form-data"))),
    responses((status = 200, description = "Stored, then pushed to the customer", body = NotificationSent)))]
fn internal_notification_send(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_post(state, "internal-notification").then(send_internal_notification)
}

#[tracing::instrument(skip(state, client, fields), fields(service_id = %id))]
async fn send_internal_notification(
    id: String,
    state: AppState,
    client: Client,
    fields: Fields,
) -> Response {
    let text = match NotificationText::parse(fields) {
        Ok(text) => text,
        Err(err) => return ApiError::from(AppError::from(err)).into_response(),
    };
    let sent = notifications::send_to_customer(&state, &id, client.gms_user(), &text).await;
    respond(sent, |()| notification_sent())
}

/// POST /genesys/1/service/{id}/agent-notification
#[utoipa::path(post, path = "/genesys/1/service/{id}/agent-notification", tag = "notification",
    params(ServiceId, GmsUser), request_body(content(
        (NotificationForm = "application/x-www-form-urlencoded"), (NotificationForm = "multipart/form-data"))),
    responses((status = 200, description = "Stored for the agent desktop", body = NotificationSent)))]
fn agent_notification_send(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_post(state, "agent-notification").then(send_agent_notification)
}

#[tracing::instrument(skip(state, client, fields), fields(service_id = %id))]
async fn send_agent_notification(
    id: String,
    state: AppState,
    client: Client,
    fields: Fields,
) -> Response {
    let text = match NotificationText::parse(fields) {
        Ok(text) => text,
        Err(err) => return ApiError::from(AppError::from(err)).into_response(),
    };
    let sent = notifications::send_to_agent(&state, &id, client.gms_user(), &text).await;
    respond(sent, |()| notification_sent())
}

/// POST /genesys/1/service/{id}/retrieve-agent-notifications
#[utoipa::path(post, path = "/genesys/1/service/{id}/retrieve-agent-notifications", tag = "notification",
    params(ServiceId, GmsUser), request_body(content(
        (NoFields = "application/x-www-form-urlencoded"), (NoFields = "multipart/form-data"))),
    responses((status = 200, description = "The customer's messages the desktop has not retrieved, each once (seed 000)", body = Vec<AgentNotification>)))]
fn agent_notifications_retrieve(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_post(state, "retrieve-agent-notifications").then(
        |id: String, state: AppState, client: Client, _fields: Fields| async move {
            let messages = notifications::retrieve_for_agent(&state, &id, client.gms_user()).await;
            respond(messages, |messages| reply::json(StatusCode::OK, &messages))
        },
    )
}

/// `{"message":"Notification Sent"}` (seed 000).
fn notification_sent() -> Response {
    reply::json(
        StatusCode::OK,
        &serde_json::json!({ "message": "Notification Sent" }),
    )
}

/// `{"message":"Notification Sent"}` ([`notification_sent`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct NotificationSent {
    message: String,
}

/// The fields of a notification ([`NotificationText::parse`]): at least one of the two.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
struct NotificationForm {
    /// Text for the person.
    _display_message: Option<String>,
    /// Data for the app or the desktop.
    _application_message: Option<String>,
}
