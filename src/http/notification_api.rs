//! The GMS Notification API: `POST /genesys/1/notification/subscription`,
//! `DELETE /genesys/1/notification/subscription/{id}` and `POST /genesys/1/notification/publish`.
//!
//! JSON only, as GMS ("The servlet expects JSON"): any other or no Content-Type is 415.
//! Publishing is for workflows (GMS: "intended for use only from Orchestration Server-based
//! Services"), so it takes the admin bearer token, as ESP requests do.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::admin_token;
use super::error::respond;
use super::form;
use super::params::GmsUser;
use super::{client, reply, with_state, Client};
use crate::app::{subscriptions, AppState};
use crate::domain::subscription::{PublishRequest, SubscriptionRequest};

/// The largest Notification API body.
const MAX_BODY: u64 = 96 * 1024;

/// The Notification API routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    subscription_create(state.clone())
        .or(subscription_delete(state.clone()))
        .unify()
        .or(notification_publish(state))
        .unify()
}

/// The id of a new subscription.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionCreated {
    /// The subscription id (for `DELETE /genesys/1/notification/subscription/{id}`).
    id: String,
}

/// What a publish reached.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Published {
    /// Subscriptions the event was handed to (comet: a connected client got it; httpcb and
    /// customhttp: the POST was queued).
    delivered: usize,
}

/// POST /genesys/1/notification/subscription
#[utoipa::path(post, path = "/genesys/1/notification/subscription", tag = "notification",
    params(GmsUser),
    request_body(content((SubscriptionRequest = "application/json"))),
    responses((status = 200, description = "Stored and durable; expires after `expire` seconds", body = SubscriptionCreated)))]
fn subscription_create(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "notification" / "subscription")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and(form::strict_json_body::<SubscriptionRequest>(MAX_BODY))
        .then(
            |state: AppState, client: Client, request: SubscriptionRequest| async move {
                let created = subscriptions::subscribe(&state, client.gms_user(), request).await;
                respond(created, |id| {
                    reply::json(StatusCode::OK, &SubscriptionCreated { id })
                })
            },
        )
}

/// DELETE /genesys/1/notification/subscription/{id}
#[utoipa::path(delete, path = "/genesys/1/notification/subscription/{id}", tag = "notification",
    params(("id" = String, Path, description = "The subscription id"), GmsUser),
    responses((status = 200, description = "Deleted", body = Object)))]
fn subscription_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "notification" / "subscription" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(client(&state))
        .then(|id: String, state: AppState, client: Client| async move {
            let deleted = subscriptions::unsubscribe(&state, &id, client.gms_user()).await;
            respond(deleted, |()| {
                reply::json(StatusCode::OK, &serde_json::json!({}))
            })
        })
}

/// POST /genesys/1/notification/publish
#[utoipa::path(post, path = "/genesys/1/notification/publish", tag = "notification", security(("admin_token" = [])),
    request_body(content((PublishRequest = "application/json"))),
    responses((status = 200, description = "Sent to every live subscription whose filter matches the tag", body = Published)))]
fn notification_publish(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "notification" / "publish")
        .and(warp::post())
        .and(admin_token(&state))
        .and(with_state(state))
        .and(form::strict_json_body::<PublishRequest>(MAX_BODY))
        .map(|state: AppState, request: PublishRequest| {
            respond(subscriptions::publish(&state, &request), |delivered| {
                reply::json(StatusCode::OK, &Published { delivered })
            })
        })
}
