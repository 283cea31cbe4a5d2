//! Scheduling: the office hours of an office-hours service (Calendar Service API), the free
//! time slots of a callback service (`availability`), and the checks a desired time passes
//! when a callback is created or rescheduled.
//!
//! The rules live in `domain::schedule`; this module finds the linked services in the catalog
//! and counts the callbacks already booked in each time bucket: from the store's count index
//! for a window, by a scan of the time index for the one bucket a booking is judged by.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use super::{AppError, AppState};
use crate::domain::options::FieldError;
use crate::domain::options::ScheduleService;
use crate::domain::schedule::{
    parse_wall_time, parse_zone, DayHours, Period, Refusal, ScheduleRules, Tz,
};
use crate::domain::service::CallbackState;
use crate::domain::time::Timestamp;

/// The most days one office-hours query covers.
pub const MAX_OFFICE_DAYS: u32 = 366;

/// The most days one availability query covers.
pub const MAX_AVAILABILITY_DAYS: u32 = 92;

/// The most time slots one availability reply holds.
pub const MAX_TIME_SLOTS: usize = 10_000;

/// How many free slots a refused desired time is answered with.
pub const NEAREST_SLOTS: usize = 10;

const DAY_MILLIS: u64 = 86_400_000;

/// The window of a Calendar Service or availability query: `start`, and `end` or
/// `number-of-days` (`timestamp`: the older availability form, the same as `start`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowQuery {
    /// `start` (or `timestamp`).
    pub start: Option<Timestamp>,
    /// `end`.
    pub end: Option<Timestamp>,
    /// `number-of-days`.
    pub number_of_days: Option<u32>,
    /// `max-time-slots` (availability only).
    pub max_time_slots: Option<usize>,
}

impl WindowQuery {
    /// Reads the query fields; other fields are ignored (GMS clients send more).
    ///
    /// # Errors
    /// A bad value, named.
    pub fn parse(fields: &[(String, String)], max_days: u32) -> Result<Self, FieldError> {
        let mut query = WindowQuery::default();
        for (key, value) in fields {
            let value = value.trim();
            match key.as_str() {
                "start" | "timestamp" => query.start = Some(parse_time(key, value)?),
                "end" => query.end = Some(parse_time(key, value)?),
                "number-of-days" => {
                    query.number_of_days = Some(
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|n| (1..=max_days).contains(n))
                            .ok_or_else(|| {
                                FieldError::new(
                                    key,
                                    format!(
                                        "`{value}` is not a number of days from 1 to {max_days}"
                                    ),
                                )
                            })?,
                    )
                }
                "max-time-slots" => {
                    query.max_time_slots = Some(
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=MAX_TIME_SLOTS).contains(n))
                            .ok_or_else(|| {
                                FieldError::new(
                                    key,
                                    format!(
                                    "`{value}` is not a number of slots from 1 to {MAX_TIME_SLOTS}"
                                ),
                                )
                            })?,
                    )
                }
                _ => {}
            }
        }
        if query.end.is_some() && query.number_of_days.is_some() {
            return Err(FieldError::new(
                "number-of-days",
                "give either end or number-of-days, not both",
            ));
        }
        Ok(query)
    }

    /// The window from `start` (default `now`) to `end`, `start` plus `number-of-days`, or
    /// `start` plus `default_days`.
    ///
    /// # Errors
    /// `end` before `start`, or a window longer than `max_days`.
    fn window(
        &self,
        now: Timestamp,
        default_days: u64,
        max_days: u32,
    ) -> Result<(Timestamp, Timestamp), FieldError> {
        let start = self.start.unwrap_or(now);
        let end = match (self.end, self.number_of_days) {
            (Some(end), _) => end,
            (None, Some(days)) => start.plus_secs(u64::from(days) * 86_400),
            (None, None) => start.plus_secs(default_days * 86_400),
        };
        if end < start {
            return Err(FieldError::new(
                "end",
                format!("{} is before start {}: give a later end", end, start),
            ));
        }
        if end.as_millis() - start.as_millis() > u64::from(max_days) * DAY_MILLIS {
            return Err(FieldError::new(
                "end",
                format!("the window is longer than {max_days} days: ask for a shorter one"),
            ));
        }
        Ok((start, end))
    }
}

/// Whether an ISO 8601 date and time carries its zone (`Z` or an offset).
fn has_zone(value: &str) -> bool {
    value.ends_with(['Z', 'z'])
        || value
            .rsplit_once('T')
            .is_some_and(|(_, time)| time.contains(['+', '-']))
}

/// An ISO 8601 time; one without a zone (`2026-03-17T09:15:00.000`, as the Capacity API
/// writes them) is read as UTC.
fn parse_time(field: &str, value: &str) -> Result<Timestamp, FieldError> {
    Timestamp::parse_iso(value)
        .or_else(|message| {
            if value.contains('T') && !has_zone(value) {
                Timestamp::parse_iso(&format!("{value}Z")).map_err(|_| message)
            } else {
                Err(message)
            }
        })
        .map_err(|message| FieldError::new(field, message))
}

/// The most days one Capacity API query covers.
pub const MAX_CAPACITY_DAYS: u32 = 92;

/// A Capacity API query (`?start=&end=&timezone=`), as given: its times are read once the
/// zone is known, which defaults to the capacity service's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityQuery {
    /// `start`: ISO 8601, a wall time in the zone when it has no zone of its own.
    start: String,
    /// `end`, read as `start`.
    end: String,
    /// `timezone` (IANA), if given.
    zone: Option<Tz>,
}

impl CapacityQuery {
    /// Reads `start` and `end` (both required, as the Capacity API lists them) and
    /// `timezone`; other fields are ignored.
    ///
    /// # Errors
    /// A missing time or a zone that is not an IANA name, named.
    pub fn parse(fields: &[(String, String)]) -> Result<Self, FieldError> {
        let field = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let required = |name: &str| {
            field(name).ok_or_else(|| {
                FieldError::new(
                    name,
                    "required: give a date and time such as 2026-03-30T08:00:00.000 (in timezone) or 2026-03-30T06:00:00Z",
                )
            })
        };
        let zone = field("timezone")
            .map(|zone| {
                parse_zone("timezone", &zone)
                    .map_err(|err| FieldError::new("timezone", err.message))
            })
            .transpose()?;
        Ok(Self {
            start: required("start")?,
            end: required("end")?,
            zone,
        })
    }

    /// The window in `zone` (the query's own zone if it gave one).
    ///
    /// # Errors
    /// A time that cannot be read, `end` before `start`, a window over [`MAX_CAPACITY_DAYS`].
    fn window(&self, zone: Tz) -> Result<(Timestamp, Timestamp), FieldError> {
        let read = |field: &str, value: &str| {
            if has_zone(value) {
                Timestamp::parse_iso(value).map_err(|message| FieldError::new(field, message))
            } else {
                parse_wall_time(zone, value).ok_or_else(|| {
                    FieldError::new(
                        field,
                        format!("`{value}` is not a date and time: write ISO 8601 such as 2026-03-30T08:00:00.000"),
                    )
                })
            }
        };
        let (start, end) = (read("start", &self.start)?, read("end", &self.end)?);
        if end < start {
            return Err(FieldError::new(
                "end",
                format!("{end} is before start {start}: give a later end"),
            ));
        }
        if end.as_millis() - start.as_millis() > u64::from(MAX_CAPACITY_DAYS) * DAY_MILLIS {
            return Err(FieldError::new(
                "end",
                format!(
                    "the window is longer than {MAX_CAPACITY_DAYS} days: ask for a shorter one"
                ),
            ));
        }
        Ok((start, end))
    }
}

/// What the Capacity API query answers.
#[derive(Debug, Clone)]
pub struct CapacityReply {
    /// The zone the times are written in: the query's `timezone`, else the service's.
    pub zone: Tz,
    /// Each hour of the capacity service's zone in the window, clipped to it, with what one
    /// time bucket starting in it takes.
    pub hours: Vec<(Period, u32)>,
}

/// The configured capacity of capacity service `name` over the query's window.
///
/// # Errors
/// No capacity service of that name (404), a bad window (400).
pub fn capacity(
    state: &AppState,
    name: &str,
    query: &CapacityQuery,
) -> Result<CapacityReply, AppError> {
    let service = state
        .catalog
        .schedule(name)
        .ok_or_else(|| AppError::UnknownService(name.to_string()))?;
    let capacity = service.capacity().ok_or_else(|| {
        AppError::NotFound(format!(
            "service `{name}` is an office-hours service, not a capacity service: ask it without timezone for its office hours"
        ))
    })?;
    let zone = query.zone.unwrap_or(capacity.zone());
    let (start, end) = query.window(zone)?;
    let max_hours = (MAX_CAPACITY_DAYS as usize + 1) * 24;
    Ok(CapacityReply {
        zone,
        hours: capacity.hours(start, end, max_hours),
    })
}

/// What the Calendar Service query answers.
#[derive(Debug, Clone)]
pub struct OfficeHoursReply {
    /// The office's `_timezone`.
    pub zone: String,
    /// The periods that share an instant with the window, in time order.
    pub periods: Vec<Period>,
    /// Every local date of the window with its periods.
    pub days: Vec<DayHours>,
}

/// The office hours of the office-hours service `name` over the query's window (default:
/// now, as the Calendar Service API says: "the start and end parameters are assumed to be
/// now").
///
/// # Errors
/// No office-hours service of that name (404), a bad window (400).
pub fn office_hours(
    state: &AppState,
    name: &str,
    query: &WindowQuery,
) -> Result<OfficeHoursReply, AppError> {
    let service = state
        .catalog
        .schedule(name)
        .ok_or_else(|| AppError::UnknownService(name.to_string()))?;
    let office = service.office_hours().ok_or_else(|| {
        AppError::NotFound(format!(
            "service `{name}` is a capacity service, not an office-hours service: ask a callback service's availability instead"
        ))
    })?;
    let (start, end) = query.window(state.clock.now(), 0, MAX_OFFICE_DAYS)?;
    let days = office.days(start, end, MAX_OFFICE_DAYS as usize + 1);
    let mut periods: Vec<Period> = office
        .local_date(start)
        .pred_opt()
        .map(|before| office.periods_on(before))
        .unwrap_or_default()
        .into_iter()
        .chain(days.iter().flat_map(|day| day.periods.iter().copied()))
        .filter(|period| period.overlaps(start, end))
        .collect();
    periods.dedup();
    Ok(OfficeHoursReply {
        zone: office.zone().name().to_string(),
        periods,
        days,
    })
}

/// The free time slots of callback service `name` over the query's window (default: one day
/// from now), each with the callbacks it can still take.
///
/// # Errors
/// No callback service of that name (404), a bad window (400), a linked service missing (503).
pub fn availability(
    state: &AppState,
    name: &str,
    query: &WindowQuery,
) -> Result<Vec<(Timestamp, u32)>, AppError> {
    let service = state
        .catalog
        .get(name)
        .ok_or_else(|| AppError::UnknownService(name.to_string()))?;
    let now = state.clock.now();
    let window = query.window(now, 1, MAX_AVAILABILITY_DAYS)?;
    let max = query.max_time_slots.unwrap_or(MAX_TIME_SLOTS);
    free_slots(state, name, &service.settings.schedule, window, max, None)
}

/// A callback service's office-hours and capacity services, each if it names one.
type Linked = (Option<Arc<ScheduleService>>, Option<Arc<ScheduleService>>);

/// The office-hours and capacity services a callback service's rules name.
///
/// # Errors
/// A named service that is not configured, or of the other kind (503: the configuration is
/// wrong, not the request).
fn linked(state: &AppState, service_name: &str, rules: &ScheduleRules) -> Result<Linked, AppError> {
    let find = |option: &str, linked: &Option<String>, office: bool| {
        let Some(linked) = linked else {
            return Ok(None);
        };
        match state.catalog.schedule(linked) {
            Some(found) if found.office_hours().is_some() == office => Ok(Some(found)),
            _ => Err(AppError::Unavailable(format!(
                "service `{service_name}` names `{linked}` in {option}, which is not a configured {} service: an administrator must configure it",
                if office { "office-hours" } else { "capacity" }
            ))),
        }
    };
    Ok((
        find(
            "_business_hours_service",
            &rules.business_hours_service,
            true,
        )?,
        find("_capacity_service", &rules.capacity_service, false)?,
    ))
}

/// The active callbacks of `service_name` per bucket start in `[from, to)`, leaving out
/// `except` (the service being rescheduled), counted exactly by a scan of the time index:
/// for the one bucket a create or reschedule is judged by (see [`booked_per_bucket`] for
/// windows).
fn booked(
    state: &AppState,
    service_name: &str,
    rules: &ScheduleRules,
    (from, to): (Timestamp, Timestamp),
    except: Option<&str>,
) -> Result<BTreeMap<Timestamp, u32>, AppError> {
    let mut counts = BTreeMap::new();
    let from = rules.bucket_of(from);
    let to = to.plus_secs(u64::from(rules.bucket_minutes) * 60);
    state
        .store
        .visit_by_time(Some(from), Some(to), &mut |entry| {
            if entry.service_name == service_name
                && entry.state != CallbackState::Completed
                && Some(entry.id) != except
            {
                *counts
                    .entry(rules.bucket_of(entry.desired_time))
                    .or_insert(0) += 1;
            }
            ControlFlow::Continue(())
        })?;
    Ok(counts)
}

/// The states that take a place in a bucket: every state but COMPLETED.
const ACTIVE: [CallbackState; 4] = [
    CallbackState::Scheduled,
    CallbackState::Queued,
    CallbackState::Routing,
    CallbackState::Processing,
];

/// The callbacks booked in each bucket of a window, as [`booked_per_bucket`] counts them:
/// one cell per bucket from the first, so a bucket's count is an index, not a map lookup.
struct BookedBuckets {
    /// The first bucket's start.
    first: u64,
    /// The bucket length in milliseconds.
    size: u64,
    /// Per bucket from the first.
    counts: Vec<u32>,
}

impl BookedBuckets {
    /// The cell of the bucket starting at `bucket`, if it is in the window.
    fn cell(&mut self, bucket: Timestamp) -> Option<&mut u32> {
        let offset = bucket.as_millis().checked_sub(self.first)?;
        self.counts
            .get_mut(usize::try_from(offset / self.size).ok()?)
    }

    /// The callbacks booked in the bucket starting at `bucket` (0 outside the window).
    fn at(&self, bucket: Timestamp) -> u32 {
        bucket
            .as_millis()
            .checked_sub(self.first)
            .and_then(|offset| usize::try_from(offset / self.size).ok())
            .and_then(|at| self.counts.get(at).copied())
            .unwrap_or(0)
    }
}

/// [`booked`] for a window of many buckets, read from the store's count index per five
/// minutes instead of scanning every service in the window: an availability query over 30
/// days with 100,000 callbacks booked costs its 8,640 slots. The counts follow each write
/// once it has committed, which is what a client asking for free slots can see; a create or
/// reschedule judging its own bucket still counts it exactly, under the bookings lock
/// ([`check_desired_time`]).
fn booked_per_bucket(
    state: &AppState,
    service_name: &str,
    rules: &ScheduleRules,
    (from, to): (Timestamp, Timestamp),
    except: Option<&str>,
) -> Result<BookedBuckets, AppError> {
    let from = rules.bucket_of(from);
    let to = to.plus_secs(u64::from(rules.bucket_minutes) * 60);
    let size = rules.bucket_millis();
    let buckets = (to.as_millis() - from.as_millis()).div_ceil(size);
    let mut counts = BookedBuckets {
        first: from.as_millis(),
        size,
        counts: vec![0; usize::try_from(buckets).unwrap_or(0)],
    };
    for (slot, n) in state.store.count_per_slot(from, to, service_name, &ACTIVE) {
        if let Some(held) = counts.cell(rules.bucket_of(slot)) {
            *held = held.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        }
    }
    // The service being rescheduled does not count against its own move.
    if let Some(record) = except
        .map(|id| state.store.service(id))
        .transpose()?
        .flatten()
    {
        if record.service_name == service_name && record.state != CallbackState::Completed {
            if let Some(held) = counts.cell(rules.bucket_of(record.desired_time)) {
                *held = held.saturating_sub(1);
            }
        }
    }
    Ok(counts)
}

fn free_slots(
    state: &AppState,
    service_name: &str,
    rules: &ScheduleRules,
    window: (Timestamp, Timestamp),
    max: usize,
    except: Option<&str>,
) -> Result<Vec<(Timestamp, u32)>, AppError> {
    let (office, capacity) = linked(state, service_name, rules)?;
    let counts = booked_per_bucket(state, service_name, rules, window, except)?;
    Ok(rules.free_slots(
        office.as_deref().and_then(ScheduleService::office_hours),
        capacity.as_deref().and_then(ScheduleService::capacity),
        window,
        state.clock.now(),
        max,
        |bucket| counts.at(bucket),
    ))
}

/// The free slots nearest to `desired`: from a day before it (not before now) to a week
/// after it, the [`NEAREST_SLOTS`] closest, in time order.
fn nearest_slots(
    state: &AppState,
    service_name: &str,
    rules: &ScheduleRules,
    desired: Timestamp,
    except: Option<&str>,
) -> Result<Vec<(Timestamp, u32)>, AppError> {
    let from = Timestamp::from_millis(desired.as_millis().saturating_sub(DAY_MILLIS));
    let to = desired.plus_secs(7 * 86_400);
    let mut slots = free_slots(state, service_name, rules, (from, to), usize::MAX, except)?;
    slots.sort_by_key(|(at, _)| at.as_millis().abs_diff(desired.as_millis()));
    slots.truncate(NEAREST_SLOTS);
    slots.sort_by_key(|(at, _)| *at);
    Ok(slots)
}

/// Whether a callback at `desired` takes a place in a limited time bucket: it is scheduled
/// (later than `now`) and the service limits its buckets. Such a create or reschedule holds
/// [`crate::app::Catalog::lock_bookings`] from [`check_desired_time`] until it is stored.
pub(crate) fn takes_bucket(rules: &ScheduleRules, desired: Timestamp, now: Timestamp) -> bool {
    desired > now && (rules.max_per_bucket.is_some() || rules.capacity_service.is_some())
}

/// A desired time on its way into the store: the checks of `_reject_future_desired_time`,
/// `_reject_past_desired_time` (when the request gave one), office hours (when
/// `_enable_reject_out_of_office_hours` is set) and the bucket's room (for a scheduled
/// callback, when capacity is limited). Hold [`crate::app::Catalog::lock_bookings`] from this
/// check until the service is stored.
///
/// # Errors
/// 400 naming the option that refuses it, with the nearest free slots for office hours and a
/// full bucket; 503 when a linked service is missing.
pub(crate) fn check_desired_time(
    state: &AppState,
    service_name: &str,
    rules: &ScheduleRules,
    desired: Timestamp,
    requested: bool,
    except: Option<&str>,
) -> Result<(), AppError> {
    let now = state.clock.now();
    if requested {
        if let Err(refusal) = rules.check_limits(desired, now) {
            return Err(refused(service_name, desired, &refusal, Vec::new()));
        }
    }
    let scheduled = desired > now;
    let limited = takes_bucket(rules, desired, now);
    if !rules.reject_out_of_office_hours && !limited {
        return Ok(());
    }
    let (office, capacity) = linked(state, service_name, rules)?;
    let bucket = rules.bucket_of(desired);
    let in_bucket = if limited {
        let end = Timestamp::from_millis(bucket.as_millis() + rules.bucket_millis());
        booked(state, service_name, rules, (bucket, end), except)?
            .get(&bucket)
            .copied()
            .unwrap_or(0)
    } else {
        0
    };
    let checked = rules.check_slot(
        office.as_deref().and_then(ScheduleService::office_hours),
        capacity.as_deref().and_then(ScheduleService::capacity),
        desired,
        scheduled,
        in_bucket,
    );
    match checked {
        Ok(()) => Ok(()),
        Err(refusal) => {
            let nearest = nearest_slots(state, service_name, rules, desired, except)?;
            Err(refused(service_name, desired, &refusal, nearest))
        }
    }
}

/// The 400 of a refused desired time, in words that name the option.
fn refused(
    service_name: &str,
    desired: Timestamp,
    refusal: &Refusal,
    availability: Vec<(Timestamp, u32)>,
) -> AppError {
    let message = match refusal {
        Refusal::TooFarAhead { latest } => format!(
            "desired time {desired} is too far in the future for service `{service_name}`: the latest accepted is {latest} (_reject_future_desired_time)"
        ),
        Refusal::TooFarBack { earliest } => format!(
            "desired time {desired} is too far in the past for service `{service_name}`: the earliest accepted is {earliest} (_reject_past_desired_time)"
        ),
        Refusal::OutOfOfficeHours => format!(
            "desired time {desired} is out of office hours for service `{service_name}` (_enable_reject_out_of_office_hours): choose one of the available times"
        ),
        Refusal::BucketFull { bucket, limit } => format!(
            "desired time {desired} is not available for service `{service_name}`: the time slot starting {bucket} is full ({limit} callbacks, _capacity_service / _max_request_by_time_bucket): choose one of the available times"
        ),
    };
    AppError::Unschedulable {
        message,
        availability,
    }
}
