//! The administrator API (`/genesys/1/admin/...`). Every route checks the bearer token after
//! its path matched (so unknown paths stay 404), and fails closed: with no token configured
//! every call is 403.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::{respond, ApiError};
use super::form::{self, Fields};
use super::views::{admin_queue_entry, configured_schedule, configured_service, record_detail};
use super::{client, reply, with_state, Client};
use crate::app::admin::{self, QueueQuery};
use crate::app::{queues, AppError, AppState};
use crate::domain::options::{FieldError, Preset};

use super::auth::admin_token;
use super::params::{Deleted, ServiceId};
use super::views::{CallbackEntry, ConfiguredServiceView, RecordDetail};
use crate::app::admin::BulkCancel;
use crate::router::core::QueueSummary;
use utoipa::ToSchema;

/// The admin routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    services_list(state.clone())
        .or(services_get(state.clone()))
        .unify()
        .or(services_put(state.clone()))
        .unify()
        .or(services_delete(state.clone()))
        .unify()
        .or(callback_queues(state.clone()))
        .unify()
        .or(callback_watermarks(state.clone()))
        .unify()
        .or(callback_cancel(state.clone()))
        .unify()
        .or(callback_get(state.clone()))
        .unify()
        .or(stats_get(state.clone()))
        .unify()
        .or(queues_list(state))
        .unify()
}

/// GET /genesys/1/admin/stats?target=<target string>
#[utoipa::path(get, path = "/genesys/1/admin/stats", tag = "admin", security(("admin_token" = [])),
    params(("target" = String, Query, description = "A target string, e.g. `Billing@StatServer.GA`", example = "Billing@StatServer.GA")),
    responses((status = 200, description = "The statistics of that target", body = StatsReply)))]
fn stats_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "stats")
        .and(warp::get())
        .and(admin_token(&state))
        .and(with_state(state))
        .and(form::query_fields())
        .then(|state: AppState, fields: Fields| async move {
            let target = fields
                .iter()
                .rev()
                .find(|(k, _)| k == "target")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let stats = if target.is_empty() {
                Err(FieldError::new(
                    "target",
                    "give a target, e.g. ?target=Billing@StatServer.GA",
                )
                .into())
            } else {
                queues::stats(&state, &target).await
            };
            respond(stats, |stats| {
                let mut body = serde_json::to_value(stats).unwrap_or_default();
                if let Some(object) = body.as_object_mut() {
                    object.insert("target".into(), serde_json::Value::String(target));
                }
                reply::json(StatusCode::OK, &body)
            })
        })
}

/// GET /genesys/1/admin/queues
#[utoipa::path(get, path = "/genesys/1/admin/queues", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Every virtual queue: waiting, oldest wait, EWT", body = Vec<QueueSummary>)))]
fn queues_list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "queues")
        .and(warp::get())
        .and(admin_token(&state))
        .and(with_state(state))
        .then(|state: AppState| async move {
            respond(queues::queues(&state).await, |list| {
                reply::json(StatusCode::OK, &list)
            })
        })
}

/// GET /genesys/1/admin/services
#[utoipa::path(get, path = "/genesys/1/admin/services", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "The configured services", body = Vec<ConfiguredServiceView>)))]
fn services_list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "services")
        .and(warp::get())
        .and(admin_token(&state))
        .and(with_state(state))
        .map(|state: AppState| {
            let mut services: Vec<_> = state
                .catalog
                .all()
                .iter()
                .map(|s| configured_service(s))
                .collect();
            services.extend(
                state
                    .catalog
                    .all_schedules()
                    .iter()
                    .map(|s| configured_schedule(s)),
            );
            reply::json(StatusCode::OK, &services)
        })
}

/// GET /genesys/1/admin/services/{name}
#[utoipa::path(get, path = "/genesys/1/admin/services/{name}", tag = "admin", security(("admin_token" = [])),
    params(("name" = String, Path, description = "A configured service", example = "chat-delay")),
    responses((status = 200, description = "The configured service", body = ConfiguredServiceView)))]
fn services_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "services" / String)
        .and(warp::get())
        .and(admin_token(&state))
        .and(with_state(state))
        .map(|name: String, state: AppState| {
            if let Some(schedule) = state.catalog.schedule(&name) {
                return reply::json(StatusCode::OK, &configured_schedule(&schedule));
            }
            let found = state
                .catalog
                .get(&name)
                .ok_or(AppError::UnknownService(name));
            respond(found, |service| {
                reply::json(StatusCode::OK, &configured_service(&service))
            })
        })
}

/// The body of `PUT /genesys/1/admin/services/{name}`. Option values are strings, as in GMS
/// configuration; anything else is refused with the option named.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ServiceBody {
    /// `Chat-Immediate`, `Chat-Delayed`, `Request-Chat`, `Request-Chat-Poll`, `Office-Hours`
    /// or `Capacity`.
    preset: String,
    /// GMS options, every value a string.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    options: BTreeMap<String, serde_json::Value>,
}

impl ServiceBody {
    fn into_parts(self) -> Result<(Preset, BTreeMap<String, String>), AppError> {
        let preset = self
            .preset
            .parse::<Preset>()
            .map_err(|m| FieldError::new("preset", m))?;
        let options = self
            .options
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(s) => Ok((name, s)),
                other => Err(FieldError::new(
                    format!("options.{name}"),
                    format!(
                        "option values are strings, as in GMS configuration: write \"{}\"",
                        other.to_string().trim_matches('"')
                    ),
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok((preset, options))
    }
}

/// PUT /genesys/1/admin/services/{name}
#[utoipa::path(put, path = "/genesys/1/admin/services/{name}", tag = "admin", security(("admin_token" = [])),
    params(("name" = String, Path, description = "The configured service's name")),
    request_body = ServiceBody,
    responses((status = 200, description = "Replaced", body = ConfiguredServiceView),
        (status = 201, description = "Created", body = ConfiguredServiceView)))]
fn services_put(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "services" / String)
        .and(warp::put())
        .and(admin_token(&state))
        .and(with_state(state))
        .and(form::json_body::<ServiceBody>(limit))
        .then(put_service)
}

async fn put_service(name: String, state: AppState, body: ServiceBody) -> Response {
    let status = |created: bool| {
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    };
    let (preset, options) = match body.into_parts() {
        Ok(parts) => parts,
        Err(err) => return ApiError::from(err).into_response(),
    };
    if preset.is_scheduling() {
        let result = admin::put_schedule_service(&state, &name, preset, options).await;
        return respond(result, |(service, created)| {
            reply::json(status(created), &configured_schedule(&service))
        });
    }
    let result = admin::put_service(&state, &name, preset, options).await;
    respond(result, |(service, created)| {
        reply::json(status(created), &configured_service(&service))
    })
}

/// DELETE /genesys/1/admin/services/{name}
#[utoipa::path(delete, path = "/genesys/1/admin/services/{name}", tag = "admin", security(("admin_token" = [])),
    params(("name" = String, Path, description = "A configured service")),
    responses((status = 200, description = "Deleted", body = Deleted)))]
fn services_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "services" / String)
        .and(warp::delete())
        .and(admin_token(&state))
        .and(with_state(state))
        .then(|name: String, state: AppState| async move {
            let deleted = admin::delete_service(&state, &name).await;
            respond(deleted, |()| {
                reply::json(StatusCode::OK, &serde_json::json!({ "deleted": name }))
            })
        })
}

/// Stored notifications as the admin detail shows them.
fn notifications_view(
    notifications: &[crate::domain::notification::Notification],
) -> serde_json::Value {
    notifications
        .iter()
        .map(|n| {
            serde_json::json!({
                "seq": n.seq,
                "tag": n.tag,
                "message": serde_json::from_str::<serde_json::Value>(&n.message)
                    .unwrap_or_else(|_| serde_json::Value::String(n.message.clone())),
                "created_at": n.created_at.to_iso(),
                "delivered": n.delivered,
            })
        })
        .collect()
}

/// Status notifications as the admin detail shows them: where each is, its attempts, its
/// last error and its times (the next attempt's while pending).
fn status_notifications_view(
    entries: &[crate::domain::status::StatusNotification],
) -> serde_json::Value {
    use crate::domain::status::Delivery;
    entries
        .iter()
        .map(|n| {
            serde_json::json!({
                "seq": n.seq,
                "event": n.event.as_str(),
                "state": n.delivery.as_str(),
                "attempts": n.attempts,
                "max_attempts": n.max_attempts,
                "last_error": n.last_error,
                "created_at": n.created_at.to_iso(),
                "next_attempt_at": (n.delivery == Delivery::Pending).then(|| n.next_at.to_iso()),
                "finished_at": n.finished_at.map(|t| t.to_iso()),
                "body": serde_json::from_str::<serde_json::Value>(&n.body)
                    .unwrap_or_else(|_| serde_json::Value::String(n.body.clone())),
            })
        })
        .collect()
}

/// GET /genesys/1/admin/callback/{id}
#[utoipa::path(get, path = "/genesys/1/admin/callback/{id}", tag = "admin", security(("admin_token" = [])),
    params(ServiceId),
    responses((status = 200, description = "One record in full", body = CallbackDetail)))]
fn callback_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "callback" / String)
        .and(warp::get())
        .and(admin_token(&state))
        .and(with_state(state))
        .then(|id: String, state: AppState| async move {
            respond(admin::callback_detail(&state, &id).await, |detail| {
                let mut view = record_detail(&detail.record, &detail.routing_history);
                if let Some(map) = view.as_object_mut() {
                    map.insert(
                        "notifications".into(),
                        notifications_view(&detail.notifications),
                    );
                    map.insert(
                        "agent_notifications".into(),
                        notifications_view(&detail.agent_notifications),
                    );
                    map.insert(
                        "status_notifications".into(),
                        status_notifications_view(&detail.status_notifications),
                    );
                    if let Some((session, events)) = &detail.chat {
                        map.insert("chat".into(), super::desktop::chat_view(session, events, 1));
                    }
                }
                reply::json(StatusCode::OK, &view)
            })
        })
}

/// GET /genesys/1/admin/callback/queues?target=&states=&start_time=&end_time=&max=
#[utoipa::path(get, path = "/genesys/1/admin/callback/queues", tag = "admin", security(("admin_token" = [])),
    params(QueueQueryParams),
    responses((status = 200, description = "Callbacks grouped by service", body = BTreeMap<String, Vec<CallbackEntry>>)))]
fn callback_queues(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "callback" / "queues")
        .and(warp::get())
        .and(admin_token(&state))
        .and(client(&state))
        .and(with_state(state))
        .and(form::query_fields())
        .map(|client: Client, state: AppState, fields: Fields| {
            let grouped = QueueQuery::parse(fields)
                .map_err(AppError::from)
                .and_then(|query| admin::queues(&state, &query));
            respond(grouped, |grouped| {
                let body: BTreeMap<_, Vec<_>> = grouped
                    .iter()
                    .map(|(name, records)| {
                        let entries = records
                            .iter()
                            .map(|r| admin_queue_entry(r, &client.base_url))
                            .collect();
                        (name, entries)
                    })
                    .collect();
                reply::json(StatusCode::OK, &body)
            })
        })
}

/// GET /genesys/1/admin/callback/watermarks[?service_name=]
#[utoipa::path(get, path = "/genesys/1/admin/callback/watermarks", tag = "admin", security(("admin_token" = [])),
    params(("service_name" = Option<String>, Query, description = "Only this configured service")),
    responses((status = 200, description = "Stored services per configured service", body = Watermarks)))]
fn callback_watermarks(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "callback" / "watermarks")
        .and(warp::get())
        .and(admin_token(&state))
        .and(with_state(state))
        .and(form::query_fields())
        .map(|state: AppState, fields: Fields| {
            let service = fields
                .iter()
                .rev()
                .find(|(k, _)| k == "service_name")
                .map(|(_, v)| v.clone());
            respond(admin::watermarks(&state, service.as_deref()), |counts| {
                let total: u64 = counts.values().sum();
                reply::json(
                    StatusCode::OK,
                    &serde_json::json!({ "services": counts, "total": total }),
                )
            })
        })
}

/// The body of a bulk cancel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    /// `CANCELLED_BY_ADMIN` (the default) or `CANCELLED`.
    reason: Option<String>,
    ids: Vec<String>,
}

/// POST /genesys/1/admin/callback/cancel
#[utoipa::path(post, path = "/genesys/1/admin/callback/cancel", operation_id = "admin_callback_cancel", tag = "admin", security(("admin_token" = [])),
    request_body = CancelBody,
    responses((status = 200, description = "What was cancelled, not found or refused", body = BulkCancel)))]
fn callback_cancel(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "callback" / "cancel")
        .and(warp::post())
        .and(admin_token(&state))
        .and(with_state(state))
        .and(form::json_body::<CancelBody>(limit))
        .then(|state: AppState, body: CancelBody| async move {
            let outcome = admin::bulk_cancel(&state, body.reason.as_deref(), &body.ids).await;
            respond(outcome, |outcome| reply::json(StatusCode::OK, &outcome))
        })
}

/// The reply of [`stats_get`]: the statistics of `crate::center::stats::Stats` and the target.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct StatsReply {
    #[serde(rename = "RStatAgentsReady")]
    ready: i64,
    #[serde(rename = "RStatAgentsReadyvoice")]
    ready_voice: i64,
    #[serde(rename = "RStatAgentsReadychat")]
    ready_chat: i64,
    #[serde(rename = "RStatAgentsTotal")]
    total: i64,
    #[serde(rename = "StatCallsWaiting")]
    calls_waiting: i64,
    /// The target asked for.
    target: String,
}

/// `{"services":{"<name>":n},"total":n}` ([`callback_watermarks`]).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct Watermarks {
    services: BTreeMap<String, u64>,
    total: u64,
}

/// The record of [`callback_get`], with its notifications and chat.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct CallbackDetail {
    #[serde(flatten)]
    record: RecordDetail,
    notifications: Vec<NotificationView>,
    agent_notifications: Vec<NotificationView>,
    status_notifications: Vec<StatusNotificationView>,
    /// The chat, when the service has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    chat: Option<super::desktop::ChatView>,
}

/// A stored notification ([`notifications_view`]).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct NotificationView {
    seq: u64,
    tag: String,
    /// The message: JSON as stored, or text.
    #[schema(value_type = Object)]
    message: serde_json::Value,
    created_at: String,
    delivered: bool,
}

/// A status notification ([`status_notifications_view`]).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct StatusNotificationView {
    seq: u64,
    /// GMS's event name (`_cbe_on_service_create`).
    event: String,
    /// `pending`, `delivered` or `failed`.
    state: String,
    attempts: u32,
    max_attempts: u32,
    last_error: Option<String>,
    created_at: String,
    /// While pending: when the next attempt is due.
    next_attempt_at: Option<String>,
    /// When it was delivered or given up.
    finished_at: Option<String>,
    /// The JSON body sent.
    #[schema(value_type = Object)]
    body: serde_json::Value,
}

/// The query of [`callback_queues`] (`QueueQuery::parse`).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document only
struct QueueQueryParams {
    /// Only this configured service (GMS's `target`).
    target: Option<String>,
    /// States, comma-separated (`QUEUED,SCHEDULED`).
    states: Option<String>,
    /// Desired time from (ISO 8601).
    start_time: Option<String>,
    /// Desired time until (ISO 8601).
    end_time: Option<String>,
    /// At most this many services.
    max: Option<String>,
}
