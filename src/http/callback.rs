//! Customer-facing routes: the GMS Callback API (`/genesys/1/service/callback/...`) and the
//! generic Service API (`/genesys/1/service/{name}`).

use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::{respond, ApiError};
use super::form::{self, Fields, Json};
use super::views::{
    dialog_reply, older_query_entry, query_entry, status_view, ConfirmationDialog,
    DialNumberDialog, DisplayMenuDialog, ServiceCreated, StartChatDialog,
};
use super::{callback_access, client, reply, service_access, with_state, Client};
use crate::app::callbacks::{self, CallbackQuery, Created, Reschedule};
use crate::app::lifecycle::{self, Connect};
use crate::app::{dialogs, queues, records, AppError, AppState};
use crate::domain::dialog::{self, Choice};
use crate::domain::service::CallbackState;

use super::error::ErrorBody;
use super::params::{GmsUser, NoFields, ServiceId};
use super::views::CallbackEntry;

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
        .or(queue_position(state.clone()))
        .unify()
        .or(service_dialog(state))
        .unify()
}

/// GET /genesys/1/service/{id}/{_action}
///
/// The follow-ups of the customer's app: after the `service.agentavailable` push it GETs the
/// push's `_id` and `_action` under `/genesys/1/service/` (the Genesys Android sample app builds
/// exactly this URL), and a `DisplayMenu` choice is the GET of its `_user_action_url`. A chat
/// confirms the reserved agent as `connect` does and starts; a voice callback asks first
/// (`DisplayMenu`), then an accept confirms the agent and a decline cancels.
#[utoipa::path(get, path = "/genesys/1/service/{id}/{action}", tag = "callback",
    params(ServiceId, ("action" = String, Path, description = "`get-dialog-user-confirmation-provide_code-false` (or `-true`) after the agentavailable push; `dialog-user-confirmation-accept` or `-decline` from a DisplayMenu", example = "get-dialog-user-confirmation-provide_code-false"), GmsUser),
    responses((status = 200, description = "The next dialog", body = FollowUpReply),
        (status = 503, description = "No agent is available for this service yet", body = ErrorBody)))]
fn service_dialog(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / String / String)
        .and(warp::get())
        .and_then(|id: String, action: String| async move {
            // Only the dialog actions; other paths belong to other routes.
            match FollowUp::parse(&action) {
                Some(step) => Ok((id, step)),
                None => Err(warp::reject::not_found()),
            }
        })
        .untuple_one()
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(
            |id: String, step: FollowUp, state: AppState, client: Client| async move {
                let (id, state, client) = service_access(id, state, client).await?;
                Ok::<_, Rejection>((id, step, state, client))
            },
        )
        .untuple_one()
        .then(
            |id: String, step: FollowUp, state: AppState, client: Client| async move {
                let shown = match step {
                    FollowUp::AgentAvailable => {
                        dialogs::agent_available(&state, &id, client.gms_user()).await
                    }
                    FollowUp::Choice(choice) => {
                        dialogs::choose(&state, &id, client.gms_user(), choice).await
                    }
                };
                respond(shown, |shown| match shown {
                    Some(shown) => reply::json(
                        StatusCode::OK,
                        &dialog_reply(&shown.dialog, &shown.record, &client.base_url),
                    ),
                    None => connect_reply(Connect::NotYet, &client),
                })
            },
        )
}

/// A follow-up GET of [`service_dialog`].
#[derive(Debug, Clone, Copy)]
enum FollowUp {
    /// After the `service.agentavailable` push.
    AgentAvailable,
    /// A `DisplayMenu` choice.
    Choice(Choice),
}

impl FollowUp {
    fn parse(segment: &str) -> Option<FollowUp> {
        if segment == dialog::USER_CONFIRMATION || segment == dialog::USER_CONFIRMATION_WITH_CODE {
            return Some(FollowUp::AgentAvailable);
        }
        Choice::parse(segment).map(FollowUp::Choice)
    }
}

/// What `connect` and its GET form answer.
fn connect_reply(connected: Connect, client: &Client) -> Response {
    match connected {
        Connect::Ready(record) => reply::json(
            StatusCode::OK,
            &StartChatDialog::new(&record, &client.base_url),
        ),
        Connect::NotYet => ApiError::ServiceUnavailable(
            "no agent is available for this service yet: wait for the service.agentavailable notification".into(),
        )
        .into_response(),
    }
}

/// POST or GET /genesys/1/service/{id}/check-queue-position
#[utoipa::path(method(post, get), path = "/genesys/1/service/{id}/check-queue-position", tag = "callback",
    params(ServiceId, GmsUser), request_body(content(
        (NoFields = "application/x-www-form-urlencoded"), (NoFields = "multipart/form-data"))),
    responses((status = 200, description = "Place in the virtual queue (seed 000)", body = QueuePositionReply)))]
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
#[utoipa::path(post, path = "/genesys/1/service/{id}/connect", tag = "callback",
    params(ServiceId, GmsUser), request_body(content(
        (NoFields = "application/x-www-form-urlencoded"), (NoFields = "multipart/form-data"))),
    responses((status = 200, description = "The reserved agent is confirmed: the StartChat dialog", body = StartChatDialog),
        (status = 503, description = "No agent is available for this service yet", body = ErrorBody)))]
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
        .then(
            |id: String, state: AppState, client: Client, _fields: Fields| async move {
                let connected = lifecycle::connect(&state, &id, client.gms_user()).await;
                respond(connected, |connected| connect_reply(connected, &client))
            },
        )
}

/// POST /genesys/1/service/{id}/status
#[utoipa::path(post, path = "/genesys/1/service/{id}/status", tag = "callback",
    params(ServiceId, GmsUser), request_body(content(
        (NoFields = "application/x-www-form-urlencoded"), (NoFields = "multipart/form-data"))),
    responses((status = 200, description = "Waiting or available (seed 003)", body = StatusReply)))]
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
#[utoipa::path(post, path = "/genesys/1/service/callback/{name}", tag = "callback",
    params(("name" = String, Path, description = "A configured service", example = "chat-delay"), GmsUser),
    request_body(content(
        (CallbackForm = "application/x-www-form-urlencoded"), (CallbackForm = "multipart/form-data"),
        (CallbackForm = "application/json"))),
    responses((status = 200, description = "Created: a ConfirmationDialog with seed 000's `_id` and `_text` when the service waits for an agent, else the StartChat dialog (seed 001)",
        body = CreatedReply),
        (status = 404, description = "No configured service of that name", body = ErrorBody)))]
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
        let scheduled = created.record.state == CallbackState::Scheduled;
        let dialog = dialogs::created(&created.record, &created.settings, scheduled);
        reply::json(
            StatusCode::OK,
            &dialog_reply(&dialog, &created.record, &client.base_url),
        )
    })
}

/// POST /genesys/1/service/{name}
#[utoipa::path(post, path = "/genesys/1/service/{name}", tag = "callback",
    params(("name" = String, Path, description = "A configured service", example = "request-chat"), GmsUser),
    request_body(content(
        (CallbackForm = "application/x-www-form-urlencoded"), (CallbackForm = "multipart/form-data"))),
    responses((status = 200, description = "Created (seed 003)", body = ServiceCreated),
        (status = 404, description = "No configured service of that name", body = ErrorBody)))]
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
#[utoipa::path(get, path = "/genesys/1/service/callback", tag = "callback",
    params(CallbackQueryParams, GmsUser),
    responses((status = 200, description = "The caller's matching services", body = Vec<CallbackEntry>)))]
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
#[utoipa::path(get, path = "/genesys/1/service/callback/{name}", tag = "callback",
    params(("name" = String, Path, description = "A configured service", example = "chat-delay"), CallbackQueryParams, GmsUser),
    responses((status = 200, description = "The caller's services of that configured service", body = Vec<CallbackEntry>)))]
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
        if let Err(err) = records::check_access(state, id.trim(), client.gms_user()) {
            return ApiError::from(err).into_response();
        }
    }
    let query = match CallbackQuery::parse(service_name, fields) {
        Ok(query) => query,
        Err(err) => return ApiError::from(AppError::from(err)).into_response(),
    };
    let found = callbacks::query_callbacks(state, client.gms_user(), &query);
    respond(found, |records| {
        let entries: Vec<_> = if query.operand.is_some() {
            records
                .iter()
                .map(|r| older_query_entry(r, &client.base_url))
                .collect()
        } else {
            records.iter().map(query_entry).collect()
        };
        reply::json(StatusCode::OK, &entries)
    })
}

/// DELETE /genesys/1/service/callback/{name}/{id}
#[utoipa::path(delete, path = "/genesys/1/service/callback/{name}/{id}", tag = "callback",
    params(("name" = String, Path, description = "The configured service"), ServiceId, GmsUser),
    responses((status = 200, description = "Cancelled (COMPLETED, CANCELLED)", body = CallbackEntry)))]
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
#[utoipa::path(put, path = "/genesys/1/service/callback/{name}/{id}", tag = "callback",
    params(("name" = String, Path, description = "The configured service"), ServiceId, GmsUser),
    request_body(content(
        (RescheduleForm = "application/x-www-form-urlencoded"), (RescheduleForm = "multipart/form-data"),
        (RescheduleForm = "application/json"))),
    responses((status = 200, description = "Rescheduled and/or user data changed", body = CallbackEntry)))]
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

/// The reply of `check-queue-position`, built with `json!` in [`queue_position`].
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct QueuePositionReply {
    /// 1-based place in the router's order; 0 once an agent is reserved.
    _position: u64,
    /// Seconds until an agent, or `"n/a"` without data yet.
    #[schema(schema_with = eta_schema)]
    _eta: serde_json::Value,
    /// Services waiting in the same virtual queue.
    _total_waiting: u64,
    /// Whether an agent is about ready.
    _agent_ready_threshold_passed: bool,
    /// Why, in GMS's words (`"eta n/a"`, `"eta <= 35 and position <=5"`).
    _agent_ready_threshold_passed_reason: String,
}

/// `_eta`: whole seconds or `"n/a"`.
fn eta_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["n/a"])),
            )
            .build(),
    )
}

/// The reply of `status` (seed 003), built by [`status_view`].
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct StatusReply {
    /// What a push would carry.
    message: StatusMessage,
    /// `a2c.advanced.service.statuschanged.<id>` or `a2c.advanced.service.agentavailable.<id>`.
    tag: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct StatusMessage {
    _id: String,
    #[schema(pattern = "^(waiting|available)$")]
    _status: String,
    _dialog: String,
}

/// What callback create answers ([`create_callback`]): a ConfirmationDialog (waiting, or a
/// voice callback the agent places), the StartChat dialog, or a DialNumber dialog (a
/// user-originated voice callback).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
enum CreatedReply {
    Confirmation(ConfirmationDialog),
    StartChat(StartChatDialog),
    DialNumber(DialNumberDialog),
}

/// What a follow-up answers ([`service_dialog`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
enum FollowUpReply {
    StartChat(StartChatDialog),
    Menu(DisplayMenuDialog),
    Confirmation(ConfirmationDialog),
    DialNumber(DialNumberDialog),
}

/// The fields of a create (callback or Service API): GMS options (a leading `_`, accepted only
/// when the configured service lists them in `_overwritable_options`) and user data (the
/// other keys). Every value is text.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
struct CallbackForm {
    /// The customer's number.
    _customer_number: Option<String>,
    /// When to start, ISO 8601 (`2026-12-02T10:00:00.000Z`); now when left out.
    _desired_time: Option<String>,
    /// `_verbose=true` adds the chat URL to a Service API reply.
    _verbose: Option<String>,
    /// User data and overridden options.
    #[schema(inline)]
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, String>,
}

/// The fields of a reschedule: `_new_desired_time`, and user data to change (an empty value
/// removes the key).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the OpenAPI document only
struct RescheduleForm {
    /// The new desired time, ISO 8601.
    _new_desired_time: Option<String>,
    /// User data changes.
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, String>,
}

/// The query fields of the callback queries.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document only
struct CallbackQueryParams {
    /// One service by id.
    _id: Option<String>,
    /// The caller's services for this customer number.
    _customer_number: Option<String>,
    /// A state (`QUEUED`) or its negation (`!COMPLETED`).
    _callback_state: Option<String>,
}
