//! The administrator API (`/genesys/1/admin/...`). Every route checks the bearer token after
//! its path matched (so unknown paths stay 404), and fails closed: with no token configured
//! every call is 403.

use std::collections::BTreeMap;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::respond;
use super::form::{self, Fields};
use super::views::{configured_service, query_entry, record_detail};
use super::{reply, with_state};
use crate::app::admin::{self, QueueQuery};
use crate::app::{queues, AppError, AppState};
use crate::domain::options::{FieldError, Preset};

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
fn stats_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "stats")
        .and(warp::get())
        .and(admin_auth(&state))
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
fn queues_list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "queues")
        .and(warp::get())
        .and(admin_auth(&state))
        .and(with_state(state))
        .then(|state: AppState| async move {
            respond(queues::queues(&state).await, |list| {
                reply::json(StatusCode::OK, &list)
            })
        })
}

/// Passes only requests carrying `Authorization: Bearer <admin token>`.
pub(super) fn admin_auth(state: &AppState) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    super::auth::admin_token(state)
}

/// GET /genesys/1/admin/services
fn services_list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "services")
        .and(warp::get())
        .and(admin_auth(&state))
        .and(with_state(state))
        .map(|state: AppState| {
            let services: Vec<_> = state
                .catalog
                .all()
                .iter()
                .map(|s| configured_service(s))
                .collect();
            reply::json(StatusCode::OK, &services)
        })
}

/// GET /genesys/1/admin/services/{name}
fn services_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "services" / String)
        .and(warp::get())
        .and(admin_auth(&state))
        .and(with_state(state))
        .map(|name: String, state: AppState| {
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceBody {
    preset: String,
    #[serde(default)]
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
fn services_put(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "services" / String)
        .and(warp::put())
        .and(admin_auth(&state))
        .and(with_state(state))
        .and(form::json_body::<ServiceBody>(limit))
        .then(put_service)
}

async fn put_service(name: String, state: AppState, body: ServiceBody) -> Response {
    let result = match body.into_parts() {
        Ok((preset, options)) => admin::put_service(&state, &name, preset, options).await,
        Err(err) => Err(err),
    };
    respond(result, |(service, created)| {
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        reply::json(status, &configured_service(&service))
    })
}

/// DELETE /genesys/1/admin/services/{name}
fn services_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "services" / String)
        .and(warp::delete())
        .and(admin_auth(&state))
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

/// GET /genesys/1/admin/callback/{id}
fn callback_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "callback" / String)
        .and(warp::get())
        .and(admin_auth(&state))
        .and(with_state(state))
        .then(|id: String, state: AppState| async move {
            respond(admin::callback_detail(&state, &id).await, |detail| {
                let mut view = record_detail(&detail.record);
                if let Some(map) = view.as_object_mut() {
                    map.insert(
                        "notifications".into(),
                        notifications_view(&detail.notifications),
                    );
                    map.insert(
                        "agent_notifications".into(),
                        notifications_view(&detail.agent_notifications),
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
fn callback_queues(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "callback" / "queues")
        .and(warp::get())
        .and(admin_auth(&state))
        .and(with_state(state))
        .and(form::query_fields())
        .map(|state: AppState, fields: Fields| {
            let grouped = QueueQuery::parse(fields)
                .map_err(AppError::from)
                .and_then(|query| admin::queues(&state, &query));
            respond(grouped, |grouped| {
                let body: BTreeMap<_, Vec<_>> = grouped
                    .iter()
                    .map(|(name, records)| (name, records.iter().map(query_entry).collect()))
                    .collect();
                reply::json(StatusCode::OK, &body)
            })
        })
}

/// GET /genesys/1/admin/callback/watermarks[?service_name=]
fn callback_watermarks(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "callback" / "watermarks")
        .and(warp::get())
        .and(admin_auth(&state))
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: Option<String>,
    ids: Vec<String>,
}

/// POST /genesys/1/admin/callback/cancel
fn callback_cancel(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "callback" / "cancel")
        .and(warp::post())
        .and(admin_auth(&state))
        .and(with_state(state))
        .and(form::json_body::<CancelBody>(limit))
        .then(|state: AppState, body: CancelBody| async move {
            let outcome = admin::bulk_cancel(&state, body.reason.as_deref(), &body.ids).await;
            respond(outcome, |outcome| reply::json(StatusCode::OK, &outcome))
        })
}
