//! Scheduling routes: an office-hours service's opening hours (GMS Calendar Service API) and a
//! callback service's free time slots (Callback Services API `availability`).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::respond;
use super::form::{self, Fields};
use super::{reply, with_state};
use crate::app::schedule::{self, OfficeHoursReply, WindowQuery};
use crate::app::{AppError, AppState};
use crate::domain::schedule::Period;

/// The scheduling routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    availability_get(state.clone())
        .or(office_hours_get(state))
        .unify()
}

/// GET /genesys/1/service/callback/{name}/availability?start=&end=|number-of-days=&max-time-slots=
#[utoipa::path(get, path = "/genesys/1/service/callback/{name}/availability", tag = "callback",
    params(("name" = String, Path, description = "A configured callback service", example = "chat-delay"), AvailabilityParams),
    responses((status = 200, description = "The free time slots, each with the callbacks it can still take", body = Availability)))]
fn availability_get(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / "callback" / String / "availability")
        .and(warp::get())
        .and(with_state(state))
        .and(form::query_fields())
        .map(|name: String, state: AppState, fields: Fields| {
            // The service first (404), then the query (400).
            if state.catalog.get(&name).is_none() {
                return super::ApiError::from(AppError::UnknownService(name)).into_response();
            }
            let slots = WindowQuery::parse(&fields, schedule::MAX_AVAILABILITY_DAYS)
                .map_err(AppError::from)
                .and_then(|query| schedule::availability(&state, &name, &query));
            respond(slots, |slots| {
                let map: BTreeMap<String, u32> = slots
                    .into_iter()
                    .map(|(at, room)| (at.to_iso(), room))
                    .collect();
                reply::json(StatusCode::OK, &map)
            })
        })
}

/// GET /genesys/1/service/{name}?start=&end=|number-of-days=
#[utoipa::path(get, path = "/genesys/1/service/{name}", tag = "callback",
    params(("name" = String, Path, description = "A configured office-hours service", example = "business-hours"), OfficeHoursParams),
    responses((status = 200, description = "The office's opening periods in the window, and per local date", body = OfficeHours)))]
fn office_hours_get(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let office_hours = move |name: String| {
        let state = state.clone();
        async move {
            // `/service/callback` is the callback query's path, which answers (or refuses)
            // it itself: never an office-hours name, never this route's 404.
            if name == "callback" {
                return Err(warp::reject::not_found());
            }
            Ok((name, state))
        }
    };
    warp::path!("genesys" / "1" / "service" / String)
        .and(warp::get())
        .and_then(office_hours)
        .untuple_one()
        .and(form::query_fields())
        .map(|name: String, state: AppState, fields: Fields| {
            if state.catalog.schedule(&name).is_none() {
                return super::ApiError::from(AppError::UnknownService(name)).into_response();
            }
            let hours = WindowQuery::parse(&fields, schedule::MAX_OFFICE_DAYS)
                .map_err(AppError::from)
                .and_then(|query| schedule::office_hours(&state, &name, &query));
            respond(hours, |hours| {
                reply::json(StatusCode::OK, &OfficeHours::from(hours))
            })
        })
}

/// The Calendar Service reply: `error` is null, `periods` lists the opening periods that
/// share an instant with the window (empty: closed), `days` each local date of the window.
#[derive(Serialize, ToSchema)]
pub struct OfficeHours {
    /// Always null on success (GMS: "check in the response that the field error is null").
    #[schema(value_type = Option<String>)]
    error: Option<String>,
    /// The office's `_timezone` (IANA).
    timezone: String,
    /// Opening periods that share an instant with `[start, end]`, in time order.
    periods: Vec<PeriodView>,
    /// Each local date from `start`'s to `end`'s, with the periods that begin on it.
    days: Vec<DayView>,
}

/// One opening, as UTC instants.
#[derive(Serialize, ToSchema)]
pub struct PeriodView {
    /// When the office opens (`2026-03-30T06:00:00.000Z`).
    start: String,
    /// When it closes.
    end: String,
}

/// One local date's openings.
#[derive(Serialize, ToSchema)]
pub struct DayView {
    /// The date in the office's zone (`2026-03-29`).
    date: String,
    /// Its openings (none: closed that day).
    periods: Vec<PeriodView>,
}

impl From<&Period> for PeriodView {
    fn from(period: &Period) -> Self {
        Self {
            start: period.start.to_iso(),
            end: period.end.to_iso(),
        }
    }
}

impl From<OfficeHoursReply> for OfficeHours {
    fn from(reply: OfficeHoursReply) -> Self {
        Self {
            error: None,
            timezone: reply.zone,
            periods: reply.periods.iter().map(PeriodView::from).collect(),
            days: reply
                .days
                .iter()
                .map(|day| DayView {
                    date: day.date.format("%Y-%m-%d").to_string(),
                    periods: day.periods.iter().map(PeriodView::from).collect(),
                })
                .collect(),
        }
    }
}

/// The availability reply: `{"<ISO time>": remainingCapacity, ...}`, a free time slot's start
/// and the callbacks it can still take.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
pub struct Availability(BTreeMap<String, u32>);

/// The window of a Calendar Service query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document only
struct OfficeHoursParams {
    /// ISO 8601 (`2026-03-29T00:00:00Z`; without a zone: UTC). Default: now.
    start: Option<String>,
    /// ISO 8601, not before `start`. Default: `start` (is the office open then?).
    end: Option<String>,
    /// Days after `start`, instead of `end` (1 to 366).
    #[param(rename = "number-of-days", minimum = 1, maximum = 366)]
    number_of_days: Option<u32>,
}

/// The window of an availability query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document only
struct AvailabilityParams {
    /// ISO 8601 (`2026-03-30T08:00:00Z`; without a zone: UTC). Default: now.
    start: Option<String>,
    /// The older form of `start`.
    timestamp: Option<String>,
    /// ISO 8601, not before `start`. Default: a day after `start`.
    end: Option<String>,
    /// Days after `start`, instead of `end` (1 to 92).
    #[param(rename = "number-of-days", minimum = 1, maximum = 92)]
    number_of_days: Option<u32>,
    /// At most this many slots, the earliest first (1 to 10000).
    #[param(rename = "max-time-slots", minimum = 1, maximum = 10000)]
    max_time_slots: Option<u32>,
}
