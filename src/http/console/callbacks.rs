//! The Callbacks pages (`/admin/callbacks`, `/admin/callbacks/{id}`) and the exports and bulk
//! cancel they use, which are also API calls (token or console session):
//!
//! - `POST /genesys/1/admin/callback/reportcancelled`: cancel ids or a filter, per-id report.
//! - `GET /genesys/1/admin/callbacks/export?<filter>`: CSV of a filter (every page).
//! - `POST /genesys/1/admin/callbacks/export` `{"ids": [...]}`: CSV of those ids.
//!
//! Filtering is `app::console`; cancelling is `app::admin::bulk_cancel` behind it.

use std::collections::BTreeSet;

use askama::Template;
use serde::Deserialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{render, see_other, Layout};
use crate::app::accounts::Portal;
use crate::app::admin::{self, CallbackDetail};
use crate::app::console::{self, CallbackFilter, PAGE_SIZE, RANGES};
use crate::app::sessions::Session;
use crate::app::{AppError, AppState};
use crate::domain::account::Action;
use crate::domain::service::{CallbackState, RoutingEventKind, ServiceRecord};
use crate::http::auth::{api_caller, page_session, signed_form, Caller};
use crate::http::error::respond;
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

#[derive(Template)]
#[template(path = "console/callback.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    summary: Vec<(&'static str, String)>,
    options: Vec<(String, String)>,
    user_data: Vec<(String, String)>,
    history: Vec<Line>,
    routing: Vec<Step>,
    notifications: Vec<Line>,
    agent_notifications: Vec<Line>,
    chat: Option<String>,
    active: bool,
    can_manage: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// The Callbacks pages, their form posts and the export/cancel API.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    list_page(state.clone())
        .or(detail_page(state.clone()))
        .unify()
        .or(detail_cancel(state.clone()))
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
    let records = match error {
        Some(_) => Ok(Vec::new()),
        None => console::matching(state, &filter),
    };
    let (records, error) = match records {
        Ok(records) => (records, error),
        Err(err) => {
            tracing::error!(error = %err, "callbacks list");
            (
                Vec::new(),
                Some("The callbacks could not be read: the server log says why.".into()),
            )
        }
    };
    let total = records.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = filter.page.min(pages);
    let shown: Vec<&ServiceRecord> = records
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
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

/// GET /admin/callbacks/{id}
fn detail_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "callbacks" / String)
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and(form::query_fields())
        .then(
            |id: String, session: Session, state: AppState, fields: Fields| async move {
                let notice = fields
                    .iter()
                    .any(|(k, _)| k == "cancelled")
                    .then(|| "Callback cancelled (CANCELLED_BY_ADMIN).".to_string());
                detail(&state, &session, &id, notice, None).await
            },
        )
}

async fn detail(
    state: &AppState,
    session: &Session,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let detail = match admin::callback_detail(state, id).await {
        Ok(detail) => detail,
        Err(AppError::NotFound(_)) => {
            return super::message(
                StatusCode::NOT_FOUND,
                "No such callback",
                format!("There is no stored callback with id {id}."),
            )
        }
        Err(err) => {
            tracing::error!(error = %err, "callback detail");
            return super::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The callback could not be read: the server log says why.".into(),
            );
        }
    };
    render(StatusCode::OK, &detail_view(session, detail, notice, error))
}

fn detail_view(
    session: &Session,
    detail: CallbackDetail,
    notice: Option<String>,
    error: Option<String>,
) -> DetailPage {
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
    let routing = r
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
    DetailPage {
        layout: Layout::new(session, "/admin/callbacks"),
        id: r.id.clone(),
        summary,
        options: r.options.clone().into_iter().collect(),
        user_data: r.user_data.clone().into_iter().collect(),
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
        chat: detail.chat.as_ref().map(|(_, events)| {
            events
                .iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        }),
        active: r.is_active(),
        can_manage: session.principal.role.allows(Action::ManageCallbacks),
        notice,
        error,
    }
}

/// POST /admin/callbacks/{id}/cancel (field `csrf`)
fn detail_cancel(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "callbacks" / String / "cancel")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ManageCallbacks),
        ))
        .and(with_state(state))
        .and_then(
            |id: String, session: Session, _fields: Fields, state: AppState| async move {
                let ids = [id.clone()];
                Ok::<_, Rejection>(match console::cancel_report(&state, &ids).await {
                    Ok(report) if report.iter().all(|e| e.ok_title == "Ok") => see_other(&format!(
                        "/admin/callbacks/{}?cancelled",
                        super::encode_component(&id)
                    )),
                    Ok(report) => {
                        let why = report
                            .first()
                            .and_then(|e| e.message.clone())
                            .unwrap_or_else(|| "it is not stored".into());
                        detail(
                            &state,
                            &session,
                            &id,
                            None,
                            Some(format!("Not cancelled: {why}.")),
                        )
                        .await
                    }
                    Err(err) => detail(&state, &session, &id, None, Some(err.to_string())).await,
                })
            },
        )
}

/// The body of `reportcancelled`: ids, or a filter (the list page's fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    ids: Option<Vec<String>>,
    filter: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// POST /genesys/1/admin/callback/reportcancelled `{"ids": [...]}` or `{"filter": {...}}`:
/// cancels with CANCELLED_BY_ADMIN and answers one entry per id with `_ok_title`.
fn report_cancelled(
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
fn export_filter(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsBody {
    ids: Vec<String>,
}

/// POST /genesys/1/admin/callbacks/export `{"ids": [...]}`: CSV of those services (the
/// ones still stored), e.g. the ones a bulk cancel just cancelled.
fn export_ids(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
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
            respond(console::stored(&state, &body.ids), |records| csv(&records))
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
