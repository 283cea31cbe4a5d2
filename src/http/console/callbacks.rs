//! The Callbacks pages (`/admin/callbacks`, `/admin/callbacks/{id}`) and the exports and bulk
//! cancel they use, which are also API calls (token or console session):
//!
//! - `POST /genesys/1/admin/callback/reportcancelled`: cancel ids or a filter, per-id report.
//! - `GET /genesys/1/admin/callbacks/export?<filter>`: CSV of a filter (every page).
//! - `POST /genesys/1/admin/callbacks/export` `{"ids": [...]}`: CSV of those ids.
//!
//! One callback's page shows everything stored for it and, for roles that may manage
//! callbacks, posts its changes (`cancel`, `reschedule`, `user-data`, `recreate` under
//! `/admin/callbacks/{id}/`) through `signed_form`; each answers 303 back with a notice, or
//! the page again with the refusal beside its field.
//!
//! Filtering is `app::console`; cancelling is `app::admin::bulk_cancel` behind it; the
//! detail page's changes are `app::console`'s functions over the GMS API's use cases.

use std::collections::BTreeSet;

use askama::Template;
use serde::Deserialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{render, see_other, Layout};
use crate::app::accounts::Portal;
use crate::app::admin::{self, CallbackDetail};
use crate::app::console::{self, CallbackFilter, Listing, TranscriptViews, UserDataEdit, RANGES};
use crate::app::sessions::Session;
use crate::app::{records, AppError, AppState};
use crate::domain::account::Action;
use crate::domain::chat::Visibility;
use crate::domain::options::FieldError;
use crate::domain::service::{CallbackState, RoutingEventKind, ServiceRecord};
use crate::domain::time::Timestamp;
use crate::http::auth::{api_caller, page_session, signed_form, Caller};
use crate::http::error::{respond, ApiError};
use crate::http::form::{self, Fields};
use crate::http::{reply, with_state};

/// One row of the list.
struct Row {
    id: String,
    state: &'static str,
    reason: String,
    desired: String,
    created: String,
    customer: String,
    service: String,
    agent: String,
    /// The user-data value for each of the page's keys (empty when absent).
    user_data: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/callbacks.html")]
struct ListPage {
    layout: Layout,
    ranges: Vec<(&'static str, &'static str, bool)>,
    start: String,
    end: String,
    tz: i64,
    states: Vec<(&'static str, bool)>,
    services: Vec<(String, bool)>,
    search: String,
    error: Option<String>,
    total: usize,
    /// How many of `total` "cancel all" would cancel.
    cancellable: usize,
    /// How many of `total` it would leave as they are (COMPLETED or PROCESSING).
    left_alone: usize,
    rows: Vec<Row>,
    user_keys: Vec<String>,
    page: usize,
    pages: usize,
    prev_href: Option<String>,
    next_href: Option<String>,
    /// The filter as a query string (no page), for exports and bulk cancel.
    query: String,
    can_manage: bool,
}

/// One line of the routing timeline.
struct Step {
    at: String,
    step: u16,
    what: String,
    class: &'static str,
}

/// One line of a history or notification list.
struct Line {
    at: String,
    text: String,
}

/// The visible input of the detail page's date-time pickers (reschedule, recreate); the
/// field a refusal names.
const TIME_FIELD: &str = "desired_time";
/// The hidden input the page's script fills with the picked time as UTC ISO 8601.
const TIME_UTC_FIELD: &str = "desired_time_utc";

/// A date-time picker of the detail page.
struct TimeField {
    /// The picker's value (`YYYY-MM-DDTHH:MM`): in UTC as rendered (static/callback.js shows
    /// it in the browser's zone), or what was typed when a refusal shows the form again.
    local: String,
    /// The absolute time `local` stands for, for the script; `None` for typed input.
    utc: Option<String>,
    /// Why the last post of this form was refused, beside the field.
    error: Option<String>,
}

impl TimeField {
    /// A picker set to `at` (empty for `None`).
    fn at(at: Option<Timestamp>) -> Self {
        let iso = at.map(Timestamp::to_iso);
        Self {
            local: iso
                .as_deref()
                .map(|t| t[..16].to_string())
                .unwrap_or_default(),
            utc: iso,
            error: None,
        }
    }

    /// A picker showing what was typed, with why it was refused.
    fn refused(typed: &str, error: String) -> Self {
        Self {
            local: typed.to_string(),
            utc: None,
            error: Some(error),
        }
    }
}

/// One user-data key with its edit form.
struct UserDataRow {
    key: String,
    value: String,
    error: Option<String>,
}

/// One transcript event as shown.
struct ChatRow {
    position: u64,
    kind: String,
    nickname: String,
    text: String,
    secs: String,
    user_type: String,
    /// Set when the customer does not see the event (agent's view only).
    hidden: Option<&'static str>,
}

/// One status notification as shown: its event, where it is, its attempts and last error,
/// and the time that matters for its state.
struct StatusRow {
    event: &'static str,
    /// `pending`, `delivered` or `failed` (also the row's class).
    state: &'static str,
    /// The state's badge class (`warn`, `ok`, `bad`).
    badge: &'static str,
    attempts: String,
    last_error: String,
    /// When the event happened.
    at: String,
    /// What `when` is: the next attempt (pending), delivered or given up.
    when_label: &'static str,
    when: String,
}

/// The transcript in its two views.
struct ChatViews {
    customer: Vec<ChatRow>,
    agent: Vec<ChatRow>,
}

#[derive(Template)]
#[template(path = "console/callback.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    summary: Vec<(&'static str, String)>,
    options: Vec<(String, String)>,
    user_data: Vec<UserDataRow>,
    new_key: String,
    new_value: String,
    new_error: Option<String>,
    history: Vec<Line>,
    routing: Vec<Step>,
    notifications: Vec<Line>,
    agent_notifications: Vec<Line>,
    /// `None` when the service has status notifications off (and none stored).
    status_notifications: Option<Vec<StatusRow>>,
    chat: Option<ChatViews>,
    /// A chat service whose chat has not started.
    chat_pending: bool,
    active: bool,
    can_manage: bool,
    reschedule: TimeField,
    recreate: TimeField,
    notice: Option<String>,
    error: Option<String>,
}

/// What a form post leaves for the detail page to show.
#[derive(Default)]
struct Feedback {
    /// The page's status (a refusal's 400, say).
    status: StatusCode,
    /// A message at the top, after a 303.
    notice: Option<String>,
    /// An error at the top (one that belongs to no field).
    error: Option<String>,
    /// The reschedule picker as posted, with its error.
    reschedule: Option<TimeField>,
    /// The recreate picker as posted, with its error.
    recreate: Option<TimeField>,
    /// A refused user-data edit.
    user_data: Option<UserDataRefusal>,
}

/// A refused user-data edit: which row (`None`: the add form), what was typed, why.
struct UserDataRefusal {
    row: Option<String>,
    key: String,
    value: String,
    error: String,
}

/// The Callbacks pages, their form posts and the export/cancel API.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    list_page(state.clone())
        .or(detail_page(state.clone()))
        .unify()
        .or(detail_cancel(state.clone()))
        .unify()
        .or(detail_reschedule(state.clone()))
        .unify()
        .or(detail_user_data(state.clone()))
        .unify()
        .or(detail_recreate(state.clone()))
        .unify()
        .or(report_cancelled(state.clone()))
        .unify()
        .or(export_filter(state.clone()))
        .unify()
        .or(export_ids(state))
        .unify()
        .boxed()
}

/// GET /admin/callbacks?range=&start=&end=&tz=&state=&service=&q=&page=
fn list_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "callbacks")
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and(form::query_fields())
        .map(|session: Session, state: AppState, fields: Fields| list(&state, &session, &fields))
}

fn list(state: &AppState, session: &Session, fields: &Fields) -> Response {
    let parsed = CallbackFilter::parse(fields, state.clock.now());
    let (filter, error) = match parsed {
        Ok(filter) => (filter, None),
        Err(err) => {
            // Show the form again as typed, with no rows, and the message in place.
            let mut shown = CallbackFilter::parse(&[], state.clock.now()).expect("defaults");
            for (k, v) in fields {
                match k.as_str() {
                    "range" => shown.range = v.clone(),
                    "start" => shown.start_text = v.clone(),
                    "end" => shown.end_text = v.clone(),
                    _ => {}
                }
            }
            (shown, Some(err.message))
        }
    };
    let empty = || Listing {
        found: 0,
        cancellable: 0,
        page: 1,
        pages: 1,
        records: Vec::new(),
    };
    let listing = match error {
        Some(_) => Ok(empty()),
        None => console::list(state, &filter),
    };
    let (listing, error) = match listing {
        Ok(listing) => (listing, error),
        Err(err) => {
            tracing::error!(error = %err, "callbacks list");
            (
                empty(),
                Some("The callbacks could not be read: the server log says why.".into()),
            )
        }
    };
    let (total, page, pages) = (listing.found, listing.page, listing.pages);
    let shown = &listing.records;
    let user_keys: Vec<String> = shown
        .iter()
        .flat_map(|r| r.user_data.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = shown
        .iter()
        .map(|r| Row {
            id: r.id.clone(),
            state: r.state.as_str(),
            reason: r.reason.map(|x| x.as_str().to_string()).unwrap_or_default(),
            desired: r.desired_time.to_iso(),
            created: r.created_at.to_iso(),
            customer: r.customer_number.clone().unwrap_or_default(),
            service: r.service_name.clone(),
            agent: r.reserved_agent.clone().unwrap_or_default(),
            user_data: user_keys
                .iter()
                .map(|k| r.user_data.get(k).cloned().unwrap_or_default())
                .collect(),
        })
        .collect();
    let query = filter_query(fields);
    let href = |p: usize| format!("/admin/callbacks?{query}&page={p}");
    let mut names: BTreeSet<String> = state
        .catalog
        .all()
        .iter()
        .map(|s| s.config.name.clone())
        .collect();
    names.extend(filter.services.iter().cloned());
    let page_view = ListPage {
        layout: Layout::new(session, "/admin/callbacks"),
        ranges: RANGES
            .iter()
            .map(|&(key, label)| (key, label, key == filter.range))
            .collect(),
        start: filter.start_text.clone(),
        end: filter.end_text.clone(),
        tz: filter.tz_offset_min,
        states: CallbackState::ALL
            .iter()
            .map(|s| (s.as_str(), filter.states.contains(s)))
            .collect(),
        services: names
            .into_iter()
            .map(|n| {
                let on = filter.services.contains(&n);
                (n, on)
            })
            .collect(),
        search: filter.search.clone(),
        error,
        total,
        cancellable: listing.cancellable,
        left_alone: total - listing.cancellable,
        rows,
        user_keys,
        page,
        pages,
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: (page < pages).then(|| href(page + 1)),
        query,
        can_manage: session.principal.role.allows(Action::ManageCallbacks),
    };
    render(StatusCode::OK, &page_view)
}

/// The filter fields of `fields` as a query string (no page, no CSRF token).
fn filter_query(fields: &Fields) -> String {
    let kept: Vec<&(String, String)> = fields
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "range" | "start" | "end" | "tz" | "state" | "states" | "service" | "q"
            )
        })
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// The notice a `?done=` after a detail form's 303 shows (only these, never text from the URL).
fn done_notice(fields: &Fields) -> Option<String> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    Some(match get("done")? {
        "cancelled" => "Callback cancelled (CANCELLED_BY_ADMIN).".to_string(),
        "rescheduled" => "Callback rescheduled: the summary shows its new desired time.".into(),
        "user-data" => "User data saved.".into(),
        "recreated" => match get("from") {
            Some(from) => format!("Callback created from callback {from}."),
            None => "Callback created.".into(),
        },
        _ => return None,
    })
}

/// 303 back to callback `id`'s page with the `?done=` notice `what` (and `extra` query).
fn done(id: &str, what: &str, extra: &str) -> Response {
    see_other(&format!(
        "/admin/callbacks/{}?done={what}{extra}",
        super::encode_component(id)
    ))
}

/// The first value of form field `name` (empty when absent).
fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The status and message of a refused change, for the page.
fn refusal(err: AppError) -> (StatusCode, String) {
    let api = ApiError::from(err);
    (api.status(), api.into_message())
}

/// GET /admin/callbacks/{id}
fn detail_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "callbacks" / String)
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and(form::query_fields())
        .then(
            |id: String, session: Session, state: AppState, fields: Fields| async move {
                let feedback = Feedback {
                    notice: done_notice(&fields),
                    ..Feedback::default()
                };
                detail(&state, &session, &id, feedback).await
            },
        )
}

/// The 404 page for an unknown callback.
fn no_such_callback(id: &str) -> Response {
    super::message(
        StatusCode::NOT_FOUND,
        "No such callback",
        format!("There is no stored callback with id {id}."),
    )
}

/// The answer when callback `id` is not stored (404) or cannot be read (500), before a form
/// post reads any of its fields; `None` when it is stored.
fn unknown_callback(state: &AppState, id: &str) -> Option<Response> {
    match console::exists(state, id) {
        Ok(true) => None,
        Ok(false) => Some(no_such_callback(id)),
        Err(err) => Some(read_failure(err)),
    }
}

fn read_failure(err: AppError) -> Response {
    tracing::error!(error = %err, "callback detail");
    super::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Error",
        "The callback could not be read: the server log says why.".into(),
    )
}

async fn detail(state: &AppState, session: &Session, id: &str, feedback: Feedback) -> Response {
    let detail = match admin::callback_detail(state, id).await {
        Ok(detail) => detail,
        Err(AppError::NotFound(_)) => return no_such_callback(id),
        Err(err) => return read_failure(err),
    };
    let status = feedback.status;
    render(status, &detail_view(session, detail, feedback))
}

fn detail_view(session: &Session, detail: CallbackDetail, feedback: Feedback) -> DetailPage {
    let r = &detail.record;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let summary = vec![
        ("State", r.state.as_str().to_string()),
        (
            "Reason",
            r.reason
                .map(|x| x.as_str().to_string())
                .unwrap_or_else(|| "—".into()),
        ),
        ("Service", r.service_name.clone()),
        ("Customer number", opt(&r.customer_number)),
        ("Desired time", r.desired_time.to_iso()),
        ("Created", r.created_at.to_iso()),
        ("Expires", r.expire_at.to_iso()),
        ("Reserved agent", opt(&r.reserved_agent)),
        ("Owner", opt(&r.owner)),
    ];
    let routing = detail
        .routing_history
        .iter()
        .map(|e| {
            let (what, class) = match &e.kind {
                RoutingEventKind::Entered { target } => (format!("entered: {target}"), "entered"),
                RoutingEventKind::Skipped { statistic, value } => {
                    (format!("skipped: {statistic} = {value}"), "skipped")
                }
                RoutingEventKind::TimedOut => ("timed out".to_string(), "timedout"),
                RoutingEventKind::Reserved { agent } => {
                    (format!("reserved agent {agent}"), "reserved")
                }
                RoutingEventKind::Released { agent, why } => {
                    (format!("released agent {agent}: {why}"), "released")
                }
                RoutingEventKind::Dialed { agent, outcome } => {
                    (format!("agent {agent} dialed: {outcome}"), "dialed")
                }
            };
            Step {
                at: e.at.to_iso(),
                step: e.step,
                what,
                class,
            }
        })
        .collect();
    let notes = |list: &[crate::domain::notification::Notification]| -> Vec<Line> {
        list.iter()
            .map(|n| Line {
                at: n.created_at.to_iso(),
                text: format!(
                    "{} — {}: {}",
                    if n.delivered {
                        "delivered"
                    } else {
                        "waiting for a poll"
                    },
                    n.tag,
                    n.message
                ),
            })
            .collect()
    };
    let refused_row = feedback.user_data.as_ref().filter(|f| f.row.is_some());
    let user_data = r
        .user_data
        .iter()
        .map(|(key, value)| match refused_row {
            Some(f) if f.row.as_deref() == Some(key) => UserDataRow {
                key: key.clone(),
                value: f.value.clone(),
                error: Some(f.error.clone()),
            },
            _ => UserDataRow {
                key: key.clone(),
                value: value.clone(),
                error: None,
            },
        })
        .collect();
    // A refusal about a key with no row (a forged or stale post) shows on the add form.
    let refused_add = feedback
        .user_data
        .as_ref()
        .filter(|f| f.row.as_ref().is_none_or(|k| !r.user_data.contains_key(k)));
    let chat_service = r.options.get("_media_type").map(String::as_str) == Some("chat");
    DetailPage {
        layout: Layout::new(session, "/admin/callbacks"),
        id: r.id.clone(),
        summary,
        options: r.options.clone().into_iter().collect(),
        user_data,
        new_key: refused_add.map(|f| f.key.clone()).unwrap_or_default(),
        new_value: refused_add.map(|f| f.value.clone()).unwrap_or_default(),
        new_error: refused_add.map(|f| f.error.clone()),
        history: r
            .state_history
            .iter()
            .map(|c| Line {
                at: c.at.to_iso(),
                text: match c.reason {
                    Some(reason) => format!("{} ({reason}) {}", c.state, c.note),
                    None => format!("{} {}", c.state, c.note),
                },
            })
            .collect(),
        routing,
        notifications: notes(&detail.notifications),
        agent_notifications: notes(&detail.agent_notifications),
        status_notifications: status_rows(r, &detail.status_notifications),
        chat_pending: chat_service && detail.chat.is_none(),
        chat: detail
            .chat
            .as_ref()
            .map(|(chat, events)| chat_views(&console::transcript_views(chat, events))),
        active: r.is_active(),
        can_manage: session.principal.role.allows(Action::ManageCallbacks),
        reschedule: feedback
            .reschedule
            .unwrap_or_else(|| TimeField::at(Some(r.desired_time))),
        recreate: feedback.recreate.unwrap_or_else(|| TimeField::at(None)),
        notice: feedback.notice,
        error: feedback.error,
    }
}

/// The status-notification rows of a service; `None` when it has them off and none stored.
fn status_rows(
    record: &crate::domain::service::ServiceRecord,
    entries: &[crate::domain::status::StatusNotification],
) -> Option<Vec<StatusRow>> {
    use crate::domain::status::Delivery;
    if !crate::domain::status::enabled(&record.options) && entries.is_empty() {
        return None;
    }
    let rows = entries
        .iter()
        .map(|n| {
            let (when_label, when) = match (n.delivery, n.finished_at) {
                (Delivery::Pending, _) => ("next attempt", Some(n.next_at.max(n.created_at))),
                (Delivery::Delivered, at) => ("delivered", at),
                (Delivery::Failed, at) => ("given up", at),
            };
            StatusRow {
                event: n.event.as_str(),
                state: n.delivery.as_str(),
                badge: match n.delivery {
                    Delivery::Pending => "warn",
                    Delivery::Delivered => "ok",
                    Delivery::Failed => "bad",
                },
                attempts: format!("{} of {}", n.attempts, n.max_attempts),
                last_error: n.last_error.clone().unwrap_or_default(),
                at: n.created_at.to_iso(),
                when_label,
                when: when.map(|t| t.to_iso()).unwrap_or_default(),
            }
        })
        .collect();
    Some(rows)
}

fn chat_views(views: &TranscriptViews) -> ChatViews {
    let row = |position: u64, row: &[String; 5], hidden: Option<&'static str>| ChatRow {
        position,
        kind: row[0].clone(),
        nickname: row[1].clone(),
        text: row[2].clone(),
        secs: row[3].clone(),
        user_type: row[4].clone(),
        hidden,
    };
    ChatViews {
        customer: views
            .customer
            .iter()
            .enumerate()
            .map(|(i, r)| row(i as u64 + 1, r, None))
            .collect(),
        agent: views
            .agent
            .iter()
            .map(|line| {
                let hidden = match line.visibility {
                    Visibility::All => None,
                    Visibility::Int => {
                        Some("hidden from the customer (INT: agents and supervisors)")
                    }
                    Visibility::Vip => Some("hidden from the customer (VIP: supervisors only)"),
                };
                row(line.position, &line.row, hidden)
            })
            .collect(),
    }
}

/// A detail-page form post: `POST /admin/callbacks/{id}/{action}` with the CSRF field,
/// for roles that may manage callbacks.
fn detail_form(
    state: &AppState,
    action: &'static str,
) -> impl Filter<Extract = (String, Session, Fields, AppState), Error = Rejection> + Clone {
    warp::path!("admin" / "callbacks" / String / String)
        .and_then(move |id: String, path_action: String| async move {
            if path_action == action {
                Ok(id)
            } else {
                Err(warp::reject::not_found())
            }
        })
        .and(warp::post())
        .and(signed_form(
            state,
            Portal::Console,
            Some(Action::ManageCallbacks),
        ))
        .and(with_state(state.clone()))
}

/// POST /admin/callbacks/{id}/cancel (field `csrf`)
fn detail_cancel(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    detail_form(&state, "cancel").then(
        |id: String, session: Session, _fields: Fields, state: AppState| async move {
            if let Some(unknown) = unknown_callback(&state, &id) {
                return unknown;
            }
            let ids = [id.clone()];
            let error = match console::cancel_report(&state, &ids).await {
                Ok(report) if report.iter().all(|e| e.ok_title == "Ok") => {
                    return done(&id, "cancelled", "")
                }
                Ok(report) => {
                    let why = report
                        .first()
                        .and_then(|e| e.message.clone())
                        .unwrap_or_else(|| "it is not stored".into());
                    format!("Not cancelled: {why}.")
                }
                Err(err) => refusal(err).1,
            };
            let feedback = Feedback {
                status: StatusCode::BAD_REQUEST,
                error: Some(error),
                ..Feedback::default()
            };
            detail(&state, &session, &id, feedback).await
        },
    )
}

/// POST /admin/callbacks/{id}/reschedule (fields `csrf`, `desired_time` from the picker,
/// `desired_time_utc` filled by the page's script): GMS's reschedule, refused in the past.
fn detail_reschedule(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    detail_form(&state, "reschedule").then(
        |id: String, session: Session, fields: Fields, state: AppState| async move {
            let (state, id) = (&state, id.as_str());
            picker_form(
                state,
                &session,
                id,
                &fields,
                |picked| async move {
                    match picked {
                        Some(at) => console::reschedule(state, id, TIME_FIELD, at).await,
                        None => Err(FieldError::new(
                            TIME_FIELD,
                            "choose the new desired date and time",
                        )
                        .into()),
                    }
                },
                |_| done(id, "rescheduled", ""),
                |feedback, field| feedback.reschedule = Some(field),
            )
            .await
        },
    )
}

/// A detail-page form of one date-time picker (reschedule, recreate): 404 for an unknown
/// callback before any field is read; then `act` with the picked time (`None`: left empty),
/// answered by `answer` with the callback it gives, or the page again with the refusal and
/// the typed value in the picker `beside` puts into the page's feedback.
async fn picker_form<Act, Acted>(
    state: &AppState,
    session: &Session,
    id: &str,
    fields: &Fields,
    act: Act,
    answer: impl FnOnce(ServiceRecord) -> Response,
    beside: fn(&mut Feedback, TimeField),
) -> Response
where
    Act: FnOnce(Option<Timestamp>) -> Acted,
    Acted: std::future::Future<Output = Result<ServiceRecord, AppError>>,
{
    if let Some(unknown) = unknown_callback(state, id) {
        return unknown;
    }
    let typed = field(fields, TIME_FIELD);
    let result = match console::picked_time(TIME_FIELD, field(fields, TIME_UTC_FIELD), typed) {
        Ok(picked) => act(picked).await,
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(record) => answer(record),
        Err(err) => {
            let (status, message) = refusal(err);
            let mut feedback = Feedback {
                status,
                ..Feedback::default()
            };
            beside(&mut feedback, TimeField::refused(typed, message));
            detail(state, session, id, feedback).await
        }
    }
}

/// POST /admin/callbacks/{id}/user-data (fields `csrf`, `key`, `value`, `op` = `set`,
/// `remove` or `add`): one user-data key, through the GMS API's update path.
fn detail_user_data(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    detail_form(&state, "user-data").then(
        |id: String, session: Session, fields: Fields, state: AppState| async move {
            if let Some(unknown) = unknown_callback(&state, &id) {
                return unknown;
            }
            let key = field(&fields, "key").trim().to_string();
            let value = field(&fields, "value").to_string();
            let op = field(&fields, "op");
            let edit = match op {
                "add" => Ok(UserDataEdit::Add {
                    key: key.clone(),
                    value: value.clone(),
                }),
                "set" => Ok(UserDataEdit::Set {
                    key: key.clone(),
                    value: value.clone(),
                }),
                "remove" => Ok(UserDataEdit::Remove { key: key.clone() }),
                other => Err(AppError::from(FieldError::new(
                    "op",
                    format!("`{other}` is not a user-data change: use set, remove or add"),
                ))),
            };
            let result = match edit {
                Ok(edit) => console::edit_user_data(&state, &id, &edit).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(_) => done(&id, "user-data", ""),
                Err(err) => {
                    let (status, message) = refusal(err);
                    let feedback = Feedback {
                        status,
                        user_data: Some(UserDataRefusal {
                            row: (op != "add").then(|| key.clone()),
                            key,
                            value,
                            error: message,
                        }),
                        ..Feedback::default()
                    };
                    detail(&state, &session, &id, feedback).await
                }
            }
        },
    )
}

/// POST /admin/callbacks/{id}/recreate (fields `csrf`, `desired_time`, `desired_time_utc`;
/// empty: now): a new callback from this one, through the GMS API's create; 303 to it.
fn detail_recreate(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    detail_form(&state, "recreate").then(
        |id: String, session: Session, fields: Fields, state: AppState| async move {
            let (state, id) = (&state, id.as_str());
            picker_form(
                state,
                &session,
                id,
                &fields,
                |picked| console::recreate(state, id, TIME_FIELD, picked),
                |created| {
                    done(
                        &created.id,
                        "recreated",
                        &format!("&from={}", super::encode_component(id)),
                    )
                },
                |feedback, field| feedback.recreate = Some(field),
            )
            .await
        },
    )
}

/// The body of `reportcancelled`: ids, or a filter (the list page's fields).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    ids: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    filter: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// The reply of [`report_cancelled`].
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct CancelReport {
    cancelled: u64,
    report: Vec<crate::app::console::ReportEntry>,
}

#[utoipa::path(post, path = "/genesys/1/admin/callback/reportcancelled", tag = "admin", security(("admin_token" = []), ("console_session" = [])),
    request_body = ReportBody,
    responses((status = 200, description = "How many were cancelled, and one entry per id", body = CancelReport)))]
/// POST /genesys/1/admin/callback/reportcancelled `{"ids": [...]}` or `{"filter": {...}}`:
/// cancels with CANCELLED_BY_ADMIN and answers one entry per id with `_ok_title`.
pub(in crate::http) fn report_cancelled(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "callback" / "reportcancelled")
        .and(warp::post())
        .and(api_caller(
            &state,
            &[Portal::Console],
            Action::ManageCallbacks,
        ))
        .and(with_state(state))
        .and(form::json_body::<ReportBody>(limit))
        .then(
            |_caller: Caller, state: AppState, body: ReportBody| async move {
                let report = match (body.ids, body.filter) {
                    (Some(ids), None) => console::cancel_report(&state, &ids).await,
                    (None, Some(filter)) => {
                        match CallbackFilter::parse(&json_fields(filter), state.clock.now()) {
                            Ok(filter) => console::cancel_matching(&state, &filter).await,
                            Err(err) => Err(err.into()),
                        }
                    }
                    _ => Err(crate::domain::options::FieldError::new(
                        "ids",
                        "give either `ids` (a list of service ids) or `filter` (the list's fields)",
                    )
                    .into()),
                };
                respond(report, |report| {
                    let cancelled = report.iter().filter(|e| e.ok_title == "Ok").count();
                    reply::json(
                        StatusCode::OK,
                        &serde_json::json!({ "cancelled": cancelled, "report": report }),
                    )
                })
            },
        )
}

/// A JSON filter object as fields: strings as they are, arrays as repeated fields.
fn json_fields(filter: std::collections::BTreeMap<String, serde_json::Value>) -> Fields {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    filter
        .into_iter()
        .flat_map(|(k, v)| match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| (k.clone(), text(i)))
                .collect::<Vec<_>>(),
            other => vec![(k, text(&other))],
        })
        .collect()
}

/// GET /genesys/1/admin/callbacks/export?<filter>: CSV of every service the filter covers.
#[utoipa::path(get, path = "/genesys/1/admin/callbacks/export", tag = "admin", security(("admin_token" = []), ("console_session" = [])),
    description = "The query takes the Callbacks page's filter fields.",
    responses((status = 200, description = "CSV, one line per service", content_type = "text/csv", body = String)))]
pub(in crate::http) fn export_filter(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "callbacks" / "export")
        .and(warp::get())
        .and(api_caller(
            &state,
            &[Portal::Console],
            Action::ManageCallbacks,
        ))
        .and(with_state(state))
        .and(form::query_fields())
        .map(|_caller: Caller, state: AppState, fields: Fields| {
            let records = CallbackFilter::parse(&fields, state.clock.now())
                .map_err(AppError::from)
                .and_then(|filter| console::matching(&state, &filter));
            respond(records, |records| csv(&records))
        })
}

/// The body of an export by ids.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct IdsBody {
    ids: Vec<String>,
}

/// POST /genesys/1/admin/callbacks/export `{"ids": [...]}`: CSV of those services (the
/// ones still stored), e.g. the ones a bulk cancel just cancelled.
#[utoipa::path(post, path = "/genesys/1/admin/callbacks/export", tag = "admin", security(("admin_token" = []), ("console_session" = [])),
    request_body = IdsBody,
    responses((status = 200, description = "CSV, one line per stored service", content_type = "text/csv", body = String)))]
pub(in crate::http) fn export_ids(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    warp::path!("genesys" / "1" / "admin" / "callbacks" / "export")
        .and(warp::post())
        .and(api_caller(
            &state,
            &[Portal::Console],
            Action::ManageCallbacks,
        ))
        .and(with_state(state))
        .and(form::json_body::<IdsBody>(limit))
        .map(|_caller: Caller, state: AppState, body: IdsBody| {
            respond(records::stored(&state, &body.ids), |records| csv(&records))
        })
}

/// A CSV download of `records`.
fn csv(records: &[ServiceRecord]) -> Response {
    let mut body = String::from(console::CSV_HEADER);
    body.push_str("\r\n");
    for record in records {
        body.push_str(&console::csv_line(record));
        body.push_str("\r\n");
    }
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"callbacks.csv\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
