//! Scheduling routes: an office-hours service's opening hours (GMS Calendar Service API), a
//! capacity service's configured capacity (Capacity API), and a callback service's free time
//! slots (Callback Services API `availability`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use utoipa::{IntoParams, ToSchema};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::{respond, NoSuchResource};
use super::form::{self, Fields};
use super::{reply, with_state};
use crate::app::schedule::{self, CapacityQuery, CapacityReply, OfficeHoursReply, WindowQuery};
use crate::app::{AppError, AppState};
use crate::domain::options::ScheduleService;
use crate::domain::schedule::{format_in, Period};
use crate::domain::time::{IsoText, Timestamp};

/// The scheduling routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    availability_get(state.clone())
        .or(schedule_get(state))
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
            respond(slots, |slots| availability_reply(&slots))
        })
}

/// The availability reply, `{"<ISO time>": room, ...}` in key order.
fn availability_reply(slots: &[(Timestamp, u32)]) -> Response {
    match availability_body(slots) {
        Some(body) => reply::json_bytes(StatusCode::OK, body),
        None => {
            let map: BTreeMap<String, u32> = slots
                .iter()
                .map(|(at, room)| (at.to_iso(), *room))
                .collect();
            reply::json(StatusCode::OK, &map)
        }
    }
}

/// [`availability_reply`]'s body written straight from the slots into one buffer sized for
/// them (a month of 5-minute buckets is 8,640 keys), without a string per key or a map to
/// sort them: the slots come in time order, and up to year 9999 ISO times sort as the times
/// do, so the map would write the same keys in the same order. `None` when that does not
/// hold (slots out of order, or a time past year 9999): the map writes those.
fn availability_body(slots: &[(Timestamp, u32)]) -> Option<Vec<u8>> {
    if !slots.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return None;
    }
    let texts = slots
        .iter()
        .map(|(at, _)| at.iso_text())
        .collect::<Option<Vec<IsoText>>>()?;
    // `"2026-11-21T15:30:00.000Z":1000,` is 32 bytes; a room has at most 10 digits.
    let mut body = Vec::with_capacity(2 + slots.len() * 38);
    let mut writer = serde_json::Serializer::new(&mut body);
    writer
        .collect_map(
            texts
                .iter()
                .zip(slots)
                .map(|(text, (_, room))| (text.as_str(), room)),
        )
        .ok()?;
    Some(body)
}

/// GET /genesys/1/service/{name}?start=&end=|number-of-days= (an office-hours service) and
/// ?start=&end=&timezone= (a capacity service)
#[utoipa::path(get, path = "/genesys/1/service/{name}", tag = "callback",
    params(("name" = String, Path, description = "A configured office-hours or capacity service", example = "business-hours"), ScheduleParams),
    responses((status = 200, description = "An office-hours service: its opening periods in the window, and per local date (Calendar Service API). A capacity service: its configured capacity per hour of the window (Capacity API)", body = ScheduleReply)))]
fn schedule_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / String)
        .and(warp::get())
        .and(with_state(state))
        .and_then(schedule_service)
        .untuple_one()
        .and(form::query_fields())
        .map(
            |service: Arc<ScheduleService>, state: AppState, fields: Fields| {
                let name = service.config.name.as_str();
                if service.capacity().is_some() {
                    let hours = CapacityQuery::parse(&fields)
                        .map_err(AppError::from)
                        .and_then(|query| schedule::capacity(&state, name, &query));
                    return respond(hours, |hours| {
                        reply::json(StatusCode::OK, &ScheduleReply::from(hours))
                    });
                }
                let hours = WindowQuery::parse(&fields, schedule::MAX_OFFICE_DAYS)
                    .map_err(AppError::from)
                    .and_then(|query| schedule::office_hours(&state, name, &query));
                respond(hours, |hours| {
                    reply::json(StatusCode::OK, &ScheduleReply::from(hours))
                })
            },
        )
}

/// The office-hours or capacity service `{name}` names, before anything else of the request
/// is read. Any other name is [`NoSuchResource`]: this route is not about it, so another
/// route sharing the path pattern (the callback query's `/service/callback`) answers, with
/// its own errors, whichever of the two is tried first.
async fn schedule_service(
    name: String,
    state: AppState,
) -> Result<(Arc<ScheduleService>, AppState), Rejection> {
    match state.catalog.schedule(&name) {
        Some(service) => Ok((service, state)),
        None => Err(warp::reject::custom(NoSuchResource(super::ApiError::from(
            AppError::UnknownService(name),
        )))),
    }
}

/// The reply of `GET /genesys/1/service/{name}`: office hours or capacity, by the service's
/// kind.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScheduleReply {
    /// An office-hours service's Calendar Service reply.
    OfficeHours(OfficeHours),
    /// A capacity service's Capacity API reply.
    Capacity(CapacityHours),
}

impl From<OfficeHoursReply> for ScheduleReply {
    fn from(reply: OfficeHoursReply) -> Self {
        ScheduleReply::OfficeHours(OfficeHours::from(reply))
    }
}

impl From<CapacityReply> for ScheduleReply {
    fn from(reply: CapacityReply) -> Self {
        ScheduleReply::Capacity(CapacityHours {
            error: None,
            timezone: reply.zone.name().to_string(),
            periods: reply
                .hours
                .iter()
                .map(|(period, capacity)| CapacityPeriod {
                    start: format_in(reply.zone, period.start),
                    end: format_in(reply.zone, period.end),
                    capacity: *capacity,
                })
                .collect(),
        })
    }
}

/// The Capacity API reply: "a list of time periods and available capacity for each period".
#[derive(Serialize, ToSchema)]
pub struct CapacityHours {
    /// Always null on success, as in the Calendar Service reply.
    #[schema(value_type = Option<String>)]
    error: Option<String>,
    /// The zone the periods are written in: the query's `timezone`, else the service's
    /// `_timezone`.
    timezone: String,
    /// Each hour of the capacity service's zone in `[start, end)`, clipped to it, in time order.
    periods: Vec<CapacityPeriod>,
}

/// One hour's capacity.
#[derive(Serialize, ToSchema)]
pub struct CapacityPeriod {
    /// When it begins, in `timezone` with its offset (`2026-03-30T08:00:00.000+02:00`).
    start: String,
    /// When it ends.
    end: String,
    /// The callbacks one `_request_time_bucket` starting in this hour takes (0: none).
    capacity: u32,
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

/// The window of a Calendar Service query (office hours) or a Capacity API query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document only
struct ScheduleParams {
    /// ISO 8601 (`2026-03-29T00:00:00Z`). Office hours: without a zone it is UTC; default
    /// now. Capacity: required; without a zone (`2026-03-30T08:00:00.000`) it is a wall time
    /// in `timezone`.
    start: Option<String>,
    /// ISO 8601, not before `start`, read as `start`. Office hours: default `start` (is the
    /// office open then?). Capacity: required, at most 92 days after `start`.
    end: Option<String>,
    /// Office hours only: days after `start`, instead of `end` (1 to 366).
    #[param(rename = "number-of-days", minimum = 1, maximum = 366)]
    number_of_days: Option<u32>,
    /// Capacity only: the IANA zone that zone-less times are read in and the periods are
    /// written in (`Europe/Paris`). Default: the capacity service's `_timezone`.
    timezone: Option<String>,
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
