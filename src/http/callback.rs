//! Customer-facing routes: the GMS Callback API (`/genesys/1/service/callback/...`) and the
//! generic Service API (`/genesys/1/service/{name}`).

use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::{respond, ApiError};
use super::form::{self, Fields, Json};
use super::views::{query_entry, status_view, ServiceCreated, StartChatDialog, WillNotify};
use super::{callback_access, client, reply, service_access, with_state, Client};
use crate::app::callbacks::{self, CallbackQuery, Created, Reschedule};
use crate::app::lifecycle::{self, Connect};
use crate::app::{queues, AppError, AppState};

/// The customer-facing routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    callback_create(state.clone())
        .or(callback_query(state.clone()))
        .unify()
        .or(callback_query_service(state.clone()))
        .unify()
        .or(callback_cancel(state.clone()))
        .unify()
        .or(callback_reschedule(state.clone()))
        .unify()
        .or(service_create(state.clone()))
        .unify()
        .or(service_connect(state.clone()))
        .unify()
        .or(service_status(state.clone()))
        .unify()
        .or(queue_position(state))
        .unify()
}

/// POST or GET /genesys/1/service/{id}/check-queue-position
fn queue_position(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / String / "check-queue-position")
        .and(warp::post().or(warp::get()).unify())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(service_access)
        .untuple_one()
        .and(form::fields(limit, Json::Refused))
        .then(
            |id: String, state: AppState, client: Client, _fields: Fields| async move {
                let position = queues::check_queue_position(&state, &id, client.gms_user()).await;
                respond(position, |p| {
                    let eta = p
                        .eta_secs
                        .map_or_else(|| serde_json::json!("n/a"), |e| serde_json::json!(e));
                    reply::json(
                        StatusCode::OK,
                        &serde_json::json!({
                            "_position": p.position,
                            "_eta": eta,
                            "_total_waiting": p.total_waiting,
                            "_agent_ready_threshold_passed": p.threshold_passed,
                            "_agent_ready_threshold_passed_reason": p.reason,
                        }),
                    )
                })
            },
        )
}

/// POST /genesys/1/service/{id}/connect
fn service_connect(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / String / "connect")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(service_access)
        .untuple_one()
        .and(form::fields(limit, Json::Refused))
        .then(|id: String, state: AppState, client: Client, _fields: Fields| async move {
            let connected = lifecycle::connect(&state, &id, client.gms_user()).await;
            respond(connected, |connected| match connected {
                Connect::Ready(record) => reply::json(
                    StatusCode::OK,
                    &StartChatDialog::new(&record, &client.base_url),
                ),
                Connect::NotYet => ApiError::ServiceUnavailable(
                    "no agent is available for this service yet: wait for the service.agentavailable notification".into(),
                )
                .into_response(),
            })
        })
}

/// POST /genesys/1/service/{id}/status
fn service_status(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / String / "status")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(service_access)
        .untuple_one()
        .and(form::fields(limit, Json::Refused))
        .map(
            |id: String, state: AppState, client: Client, _fields: Fields| {
                respond(
                    lifecycle::status(&state, &id, client.gms_user()),
                    |status| reply::json(StatusCode::OK, &status_view(&id, status)),
                )
            },
        )
}

/// POST /genesys/1/service/callback/{name}
fn callback_create(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / "callback" / String)
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and(form::fields(limit, Json::Accepted))
        .then(create_callback)
}

async fn create_callback(
    name: String,
    state: AppState,
    client: Client,
    fields: Fields,
) -> Response {
    let created = callbacks::create_service(&state, &name, client.gms_user(), fields).await;
    respond(created, |created: Created| {
        if created.settings.wait_for_agent {
            reply::json(StatusCode::OK, &WillNotify::new(&created.record))
        } else {
            reply::json(
                StatusCode::OK,
                &StartChatDialog::new(&created.record, &client.base_url),
            )
        }
    })
}

/// POST /genesys/1/service/{name}
fn service_create(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / String)
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and(form::fields(limit, Json::Refused))
        .then(create_service)
}

async fn create_service(name: String, state: AppState, client: Client, fields: Fields) -> Response {
    let created = callbacks::create_service(&state, &name, client.gms_user(), fields).await;
    respond(created, |created: Created| {
        reply::json(
            StatusCode::OK,
            &ServiceCreated::new(&created.record, created.verbose),
        )
    })
}

/// GET /genesys/1/service/callback?_id=..|_customer_number=..[&_callback_state=..]
fn callback_query(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / "callback")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and(form::query_fields())
        .map(|state: AppState, client: Client, fields: Fields| {
            query_callbacks(None, &state, &client, fields)
        })
}

/// GET /genesys/1/service/callback/{name}?...
fn callback_query_service(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / "callback" / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and(form::query_fields())
        .map(
            |name: String, state: AppState, client: Client, fields: Fields| {
                query_callbacks(Some(name), &state, &client, fields)
            },
        )
}

fn query_callbacks(
    service_name: Option<String>,
    state: &AppState,
    client: &Client,
    fields: Fields,
) -> Response {
    if let Some(name) = &service_name {
        if state.catalog.get(name).is_none() {
            return ApiError::from(AppError::UnknownService(name.clone())).into_response();
        }
    }
    // A query by `_id` is about one service: who may reach it comes before its filters.
    if let Some((_, id)) = fields.iter().find(|(key, _)| key == "_id") {
        if let Err(err) = callbacks::check_access(state, id.trim(), client.gms_user()) {
            return ApiError::from(err).into_response();
        }
    }
    let found = CallbackQuery::parse(service_name, fields)
        .map_err(AppError::from)
        .and_then(|query| callbacks::query_callbacks(state, client.gms_user(), &query));
    respond(found, |records| {
        let entries: Vec<_> = records.iter().map(query_entry).collect();
        reply::json(StatusCode::OK, &entries)
    })
}

/// DELETE /genesys/1/service/callback/{name}/{id}
fn callback_cancel(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / "callback" / String / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(callback_access)
        .untuple_one()
        .then(cancel_callback)
}

async fn cancel_callback(name: String, id: String, state: AppState, client: Client) -> Response {
    let cancelled = callbacks::cancel_callback(&state, &name, &id, client.gms_user()).await;
    respond(cancelled, |record| {
        reply::json(StatusCode::OK, &query_entry(&record))
    })
}

/// PUT /genesys/1/service/callback/{name}/{id}
fn callback_reschedule(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "service" / "callback" / String / String)
        .and(warp::put())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(callback_access)
        .untuple_one()
        .and(form::fields(limit, Json::Accepted))
        .then(reschedule_callback)
}

async fn reschedule_callback(
    name: String,
    id: String,
    state: AppState,
    client: Client,
    fields: Fields,
) -> Response {
    let change = match Reschedule::parse(fields) {
        Ok(change) => change,
        Err(err) => return ApiError::from(AppError::from(err)).into_response(),
    };
    let updated =
        callbacks::reschedule_callback(&state, &name, &id, client.gms_user(), &change).await;
    respond(updated, |record| {
        reply::json(StatusCode::OK, &query_entry(&record))
    })
}
