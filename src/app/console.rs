//! The console's Callbacks page filter (issue 10, pages 1 and 3): GMS's time windows, states,
//! configured services and a search, read once at the edge into [`CallbackFilter`]. The list
//! ([`list`]), the CSV export ([`matching`]) and "cancel everything the filter covers"
//! ([`cancel_matching`]) all read the same window of the store's time index, filtering on what
//! the index holds (state, service, customer number) so that only the records shown or
//! exported are read; cancelling goes through [`super::admin::bulk_cancel`]: there is no
//! second way to cancel.

use std::ops::ControlFlow;

use super::admin::{bulk_cancel, BulkCancel};
use super::callbacks::{create_service, reschedule_callback, Reschedule};
use super::{AppError, AppState};
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::{customer_rows, TranscriptEvent, Visibility};
use crate::domain::options::FieldError;
use crate::domain::service::{CallbackState, ServiceRecord};
use crate::domain::time::Timestamp;
use crate::store::{ServiceSummary, StateCounts, TimeSelection};

/// GMS's message when a custom range does not start before it ends.
pub const START_NOT_BEFORE_END: &str = "Start date is not before the end date!";
/// GMS's message when a custom range is longer than a month.
pub const RANGE_TOO_LONG: &str = "Maximum range is one month!";
/// Rows per page of the list.
pub const PAGE_SIZE: usize = 250;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// "One month" of a custom range: 31 days.
const MONTH_MS: u64 = 31 * DAY_MS;

/// The time filter's choices, in the order GMS shows them (plus "any time").
pub const RANGES: &[(&str, &str)] = &[
    ("last24h", "Last 24 Hours"),
    ("last7d", "Last 7 Days"),
    ("last30d", "Last 30 Days"),
    ("today", "Today"),
    ("next24h", "Next 24 Hours"),
    ("next7d", "Next 7 Days"),
    ("next30d", "Next 30 Days"),
    ("custom", "Custom Date Range"),
    ("any", "Any time"),
];

/// Which services the list shows. Times are desired times (see docs/decisions.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackFilter {
    /// The chosen range's key (one of [`RANGES`]).
    pub range: String,
    /// Desired time at or after this (inclusive).
    pub from: Option<Timestamp>,
    /// Desired time before this (exclusive).
    pub to: Option<Timestamp>,
    /// The custom range as typed, to show it again.
    pub start_text: String,
    /// The custom range's end as typed.
    pub end_text: String,
    /// The browser's `Date.getTimezoneOffset()` (minutes west of UTC), for Today and typed times.
    pub tz_offset_min: i64,
    /// Only these states (empty: all).
    pub states: Vec<CallbackState>,
    /// Only these configured services (empty: all).
    pub services: Vec<String>,
    /// A customer number (part of it) or a service id.
    pub search: String,
    /// 1-based page.
    pub page: usize,
}

impl CallbackFilter {
    /// Reads the filter from query or form fields at `now`. Unknown fields are ignored (the
    /// page's form carries its CSRF token and buttons).
    ///
    /// # Errors
    /// A bad field, named; the two custom-range messages are GMS's.
    pub fn parse(fields: &[(String, String)], now: Timestamp) -> Result<Self, FieldError> {
        let mut filter = CallbackFilter {
            range: "last24h".into(),
            from: None,
            to: None,
            start_text: String::new(),
            end_text: String::new(),
            tz_offset_min: 0,
            states: Vec::new(),
            services: Vec::new(),
            search: String::new(),
            page: 1,
        };
        for (key, value) in fields {
            let value = value.trim();
            match key.as_str() {
                "range" if !value.is_empty() => filter.range = value.to_string(),
                "start" => filter.start_text = value.to_string(),
                "end" => filter.end_text = value.to_string(),
                "tz" if !value.is_empty() => {
                    filter.tz_offset_min =
                        value
                            .parse()
                            .ok()
                            .filter(|m: &i64| m.abs() <= 14 * 60)
                            .ok_or_else(|| FieldError::new("tz", "give minutes west of UTC"))?
                }
                "state" | "states" => {
                    for part in value.split(',').filter(|p| !p.is_empty()) {
                        let state = part.parse().map_err(|m| FieldError::new("state", m))?;
                        if !filter.states.contains(&state) {
                            filter.states.push(state);
                        }
                    }
                }
                "service" if !value.is_empty() => filter.services.push(value.to_string()),
                "q" => filter.search = value.to_string(),
                "page" if !value.is_empty() => {
                    filter.page = value
                        .parse()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| FieldError::new("page", "give a page number from 1"))?
                }
                _ => {}
            }
        }
        let now_ms = now.as_millis();
        let (from, to) = match filter.range.as_str() {
            "last24h" => (now_ms.saturating_sub(DAY_MS), now_ms + 1),
            "last7d" => (now_ms.saturating_sub(7 * DAY_MS), now_ms + 1),
            "last30d" => (now_ms.saturating_sub(30 * DAY_MS), now_ms + 1),
            "next24h" => (now_ms, now_ms + DAY_MS),
            "next7d" => (now_ms, now_ms + 7 * DAY_MS),
            "next30d" => (now_ms, now_ms + 30 * DAY_MS),
            "today" => {
                let offset = filter.tz_offset_min * 60_000;
                let local = now_ms as i64 - offset;
                let midnight = local - local.rem_euclid(DAY_MS as i64) + offset;
                let midnight = midnight.max(0) as u64;
                (midnight, midnight + DAY_MS)
            }
            "custom" => {
                let start = local_time(&filter.start_text, filter.tz_offset_min)
                    .map_err(|m| FieldError::new("start", m))?;
                let end = local_time(&filter.end_text, filter.tz_offset_min)
                    .map_err(|m| FieldError::new("end", m))?;
                if start >= end {
                    return Err(FieldError::new("start", START_NOT_BEFORE_END));
                }
                if end - start > MONTH_MS {
                    return Err(FieldError::new("end", RANGE_TOO_LONG));
                }
                (start, end)
            }
            "any" => {
                return Ok(filter);
            }
            other => {
                return Err(FieldError::new(
                    "range",
                    format!(
                        "`{other}` is not a time range: use one of {}",
                        RANGES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
        };
        filter.from = Some(Timestamp::from_millis(from));
        filter.to = Some(Timestamp::from_millis(to));
        Ok(filter)
    }

    /// The filter without its search: the window, states and configured services, which
    /// the store counts without walking the window.
    pub fn selection(&self) -> TimeSelection<'_> {
        TimeSelection {
            from: self.from,
            to: self.to,
            states: &self.states,
            services: &self.services,
        }
    }

    /// Whether the service `summary` describes passes the state, service and search parts
    /// of the filter (the time part is the window the summaries are read from).
    pub fn keeps(&self, summary: &ServiceSummary<'_>) -> bool {
        let search = self.search.as_str();
        self.selection().keeps(summary)
            && (search.is_empty()
                || summary.id == search
                || summary.customer_number.is_some_and(|n| n.contains(search)))
    }

    /// Shows `visit` every service the filter covers, in desired-time order, from the time
    /// index alone (no record is read).
    fn visit(
        &self,
        state: &AppState,
        mut visit: impl FnMut(&ServiceSummary<'_>),
    ) -> Result<(), AppError> {
        state
            .store
            .visit_by_time(self.from, self.to, &mut |summary| {
                if self.keeps(summary) {
                    visit(summary);
                }
                ControlFlow::Continue(())
            })?;
        Ok(())
    }
}

/// Whether cancelling a service in `state` cancels it: COMPLETED ones are done and PROCESSING
/// ones cannot be cancelled ([`ServiceRecord::cancel`] refuses both).
fn cancellable(state: CallbackState) -> bool {
    matches!(
        state,
        CallbackState::Scheduled | CallbackState::Queued | CallbackState::Routing
    )
}

/// A custom-range time as the browser's `datetime-local` sends it (`2026-11-21T15:30`, the
/// browser's zone, `tz` minutes west of UTC), or a full ISO 8601 time. Millis since the epoch.
fn local_time(text: &str, tz_offset_min: i64) -> Result<u64, String> {
    if text.is_empty() {
        return Err("give a date and time".into());
    }
    let zoned = text.ends_with('Z') || text.len() > 19 && text[19..].contains(['+', '-']);
    if zoned {
        return Timestamp::parse_iso(text).map(Timestamp::as_millis);
    }
    let iso = match text.len() {
        16 => format!("{text}:00Z"),
        _ => format!("{text}Z"),
    };
    let utc = Timestamp::parse_iso(&iso)?.as_millis() as i64 + tz_offset_min * 60_000;
    u64::try_from(utc).map_err(|_| "give a time after 1970".to_string())
}

/// One page of the list, with the counts the page shows.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Services the filter covers, on every page ("N callbacks found").
    pub found: usize,
    /// How many of them a cancel of everything the filter covers would cancel (the others
    /// are COMPLETED, or PROCESSING, which cannot be cancelled).
    pub cancellable: usize,
    /// The page shown: the one asked for, or the last one when that is past the end.
    pub page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// The page's services ([`PAGE_SIZE`] at most), in desired-time order.
    pub records: Vec<ServiceRecord>,
}

/// The page `filter.page` of the services `filter` covers, and their counts. Offsets count
/// within the window, in (desired time, id) order, so pages do not shift while nothing in the
/// window changes; only that page's records are read.
///
/// Without a search, the store counts the window from its count index (whole hours) and the
/// two partial hours at its edges, and finds the page by skipping whole hours by their
/// counts: the cost does not grow with the window. A search (part of a customer number, or
/// a service id) is not counted by the index, so it walks the window once, counting and
/// picking the page as it goes.
///
/// # Errors
/// Storage failure.
pub fn list(state: &AppState, filter: &CallbackFilter) -> Result<Listing, AppError> {
    if !filter.search.is_empty() {
        return list_searched(state, filter);
    }
    let selection = filter.selection();
    let counts = state.store.count_by_time(&selection)?;
    let found = usize::try_from(counts.total()).unwrap_or(usize::MAX);
    let pages = found.div_ceil(PAGE_SIZE).max(1);
    let page = filter.page.min(pages);
    let offset = u64::try_from((page - 1) * PAGE_SIZE).unwrap_or(u64::MAX);
    let ids = state.store.page_by_time(&selection, offset, PAGE_SIZE)?;
    Ok(Listing {
        found,
        cancellable: cancellable_in(&counts),
        page,
        pages,
        records: super::records::stored(state, &ids)?,
    })
}

/// How many of `counts` a cancel would cancel.
fn cancellable_in(counts: &StateCounts) -> usize {
    CallbackState::ALL
        .into_iter()
        .filter(|s| cancellable(*s))
        .map(|s| usize::try_from(counts.of(s)).unwrap_or(usize::MAX))
        .sum()
}

/// [`list`] with a search: one pass over the window of the time index counts and picks the
/// page's ids.
fn list_searched(state: &AppState, filter: &CallbackFilter) -> Result<Listing, AppError> {
    let (mut found, mut cancellable_count) = (0, 0);
    // The ids of the page asked for, or of the last page begun before it.
    let mut page_ids: Vec<String> = Vec::with_capacity(PAGE_SIZE);
    filter.visit(state, |summary| {
        if found / PAGE_SIZE < filter.page {
            if found % PAGE_SIZE == 0 {
                page_ids.clear();
            }
            page_ids.push(summary.id.to_string());
        }
        found += 1;
        cancellable_count += usize::from(cancellable(summary.state));
    })?;
    let pages = found.div_ceil(PAGE_SIZE).max(1);
    Ok(Listing {
        found,
        cancellable: cancellable_count,
        page: filter.page.min(pages),
        pages,
        records: super::records::stored(state, &page_ids)?,
    })
}

/// Every service `filter` covers (every page), in desired-time order.
///
/// # Errors
/// Storage failure.
pub fn matching(state: &AppState, filter: &CallbackFilter) -> Result<Vec<ServiceRecord>, AppError> {
    let mut ids = Vec::new();
    filter.visit(state, |summary| ids.push(summary.id.to_string()))?;
    super::records::stored(state, &ids)
}

/// One line of a cancellation report (GMS's `_ok_title`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReportEntry {
    /// The service.
    #[serde(rename = "_id")]
    pub id: String,
    /// `Ok`, `FAILURE_MISSING` or `FAILURE_COMPLETED`.
    #[serde(rename = "_ok_title")]
    pub ok_title: &'static str,
    /// Why it was left alone, when it was.
    #[serde(rename = "_message", skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The per-id report of a bulk cancel, in the order the ids were given.
pub fn report(ids: &[String], outcome: &BulkCancel) -> Vec<ReportEntry> {
    ids.iter()
        .map(|id| {
            if outcome.cancelled.contains(id) {
                ReportEntry {
                    id: id.clone(),
                    ok_title: "Ok",
                    message: None,
                }
            } else if let Some(refused) = outcome.refused.iter().find(|r| &r.id == id) {
                ReportEntry {
                    id: id.clone(),
                    ok_title: "FAILURE_COMPLETED",
                    message: Some(refused.message.clone()),
                }
            } else {
                ReportEntry {
                    id: id.clone(),
                    ok_title: "FAILURE_MISSING",
                    message: None,
                }
            }
        })
        .collect()
}

/// Cancels `ids` with CANCELLED_BY_ADMIN, in chunks the bulk cancel accepts, and reports
/// each id.
///
/// # Errors
/// Storage failure (what was cancelled before it stays cancelled).
pub async fn cancel_report(state: &AppState, ids: &[String]) -> Result<Vec<ReportEntry>, AppError> {
    let mut entries = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(10_000) {
        let outcome = bulk_cancel(state, Some("CANCELLED_BY_ADMIN"), chunk).await?;
        entries.extend(report(chunk, &outcome));
    }
    Ok(entries)
}

/// Cancels every active service `filter` covers (every page, not only the shown one). A
/// PROCESSING one is tried too, so the report says why it was left alone.
///
/// # Errors
/// Storage failure.
pub async fn cancel_matching(
    state: &AppState,
    filter: &CallbackFilter,
) -> Result<Vec<ReportEntry>, AppError> {
    let mut ids = Vec::new();
    filter.visit(state, |summary| {
        if summary.state != CallbackState::Completed {
            ids.push(summary.id.to_string());
        }
    })?;
    cancel_report(state, &ids).await
}

/// The CSV header of an export.
pub const CSV_HEADER: &str =
    "id,service,state,reason,desired_time,customer_number,created_at,reserved_agent";

/// One CSV line of `record` (RFC 4180 quoting).
pub fn csv_line(record: &ServiceRecord) -> String {
    let fields = [
        record.id.clone(),
        record.service_name.clone(),
        record.state.as_str().to_string(),
        record
            .reason
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        record.desired_time.to_iso(),
        record.customer_number.clone().unwrap_or_default(),
        record.created_at.to_iso(),
        record.reserved_agent.clone().unwrap_or_default(),
    ];
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

// One callback's page (issue 10, page 2): its changes go through the same use cases as the
// GMS API (`callbacks::reschedule_callback`, `callbacks::create_service`), acting as the
// callback's own `gms_user` so that the owner checks pass for the console's supervisors.

/// How long a time picked on the page still counts as "now": the picker's own resolution
/// (a minute), so that choosing the current minute queues the callback instead of being
/// refused as past.
pub const PICKER_GRACE_MS: u64 = 60_000;

/// A time sent by the page's date-time picker: `utc`, the absolute time the page's script
/// filled in (ISO 8601 with a zone), or else `local`, the picker's own value, which without
/// the script is read as UTC (the page says so). `None` when both are empty.
///
/// # Errors
/// A value that is not a date and time, naming `field`.
pub fn picked_time(field: &str, utc: &str, local: &str) -> Result<Option<Timestamp>, FieldError> {
    let (utc, local) = (utc.trim(), local.trim());
    let text = if utc.is_empty() { local } else { utc };
    if text.is_empty() {
        return Ok(None);
    }
    local_time(text, 0)
        .map(|millis| Some(Timestamp::from_millis(millis)))
        .map_err(|message| FieldError::new(field, message))
}

/// Refuses a picked time that has passed (more than [`PICKER_GRACE_MS`] before `now`).
fn check_not_past(field: &str, at: Timestamp, now: Timestamp) -> Result<(), FieldError> {
    if at.as_millis() + PICKER_GRACE_MS <= now.as_millis() {
        return Err(FieldError::new(
            field,
            format!(
                "{} is in the past (it is now {}): choose a time from now on",
                at.to_iso(),
                now.to_iso()
            ),
        ));
    }
    Ok(())
}

/// The stored callback `id`, or 404.
fn stored_one(state: &AppState, id: &str) -> Result<ServiceRecord, AppError> {
    state
        .store
        .service(id)?
        .ok_or_else(|| super::records::not_found(id))
}

/// Whether callback `id` is stored (the pages' 404 before any field is read).
///
/// # Errors
/// Storage failure.
pub fn exists(state: &AppState, id: &str) -> Result<bool, AppError> {
    Ok(state.store.service(id)?.is_some())
}

/// Moves callback `id` to `desired` (from the console): refused when `desired` has passed
/// (named `field`), otherwise exactly the GMS API's reschedule.
///
/// # Errors
/// Unknown id (404), a past time (400, `field`), a state that cannot be rescheduled (400),
/// storage failure.
pub async fn reschedule(
    state: &AppState,
    id: &str,
    field: &str,
    desired: Timestamp,
) -> Result<ServiceRecord, AppError> {
    let record = stored_one(state, id)?;
    check_not_past(field, desired, state.clock.now())?;
    let change = Reschedule {
        new_desired_time: Some(desired),
        user_data: Vec::new(),
    };
    reschedule_callback(
        state,
        &record.service_name,
        id,
        record.owner.as_deref(),
        &change,
    )
    .await
}

/// A change to one user-data key from the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDataEdit {
    /// A key that must not exist yet.
    Add {
        /// The new key.
        key: String,
        /// Its value (not empty).
        value: String,
    },
    /// A new value for a key.
    Set {
        /// The key.
        key: String,
        /// Its new value (not empty).
        value: String,
    },
    /// Removes a key.
    Remove {
        /// The key.
        key: String,
    },
}

impl UserDataEdit {
    /// The key it changes.
    pub fn key(&self) -> &str {
        match self {
            UserDataEdit::Add { key, .. }
            | UserDataEdit::Set { key, .. }
            | UserDataEdit::Remove { key } => key,
        }
    }
}

/// Changes one user-data key of callback `id` through the GMS API's update path (an empty
/// value removes a key there). Keys that start with `_` are options, not user data.
///
/// # Errors
/// Unknown id (404); a `_` key, a bad key, an empty value, adding a key that exists or
/// removing one that does not (400, naming the key or `value`); a COMPLETED callback (400);
/// storage failure.
pub async fn edit_user_data(
    state: &AppState,
    id: &str,
    edit: &UserDataEdit,
) -> Result<ServiceRecord, AppError> {
    let record = stored_one(state, id)?;
    let key = edit.key();
    if key.is_empty() {
        return Err(FieldError::new("key", "give the user-data key's name").into());
    }
    if key.starts_with('_') {
        return Err(FieldError::new(
            key,
            format!("`{key}` starts with `_`: such keys are service options, not user data; choose a key without the leading `_`"),
        )
        .into());
    }
    let present = record.user_data.contains_key(key);
    let value = match edit {
        UserDataEdit::Add { .. } if present => {
            return Err(FieldError::new(
                key,
                format!("`{key}` is already in the user data: change its value in its own row"),
            )
            .into())
        }
        UserDataEdit::Add { value, .. } | UserDataEdit::Set { value, .. } if value.is_empty() => {
            return Err(FieldError::new(
                "value",
                format!("give a value for `{key}` (Remove deletes the key)"),
            )
            .into())
        }
        UserDataEdit::Remove { .. } if !present => {
            return Err(FieldError::new(key, format!("`{key}` is not in the user data")).into())
        }
        UserDataEdit::Add { value, .. } | UserDataEdit::Set { value, .. } => value.clone(),
        UserDataEdit::Remove { .. } => String::new(),
    };
    let change = Reschedule::parse(vec![(key.to_string(), value)])?;
    reschedule_callback(
        state,
        &record.service_name,
        id,
        record.owner.as_deref(),
        &change,
    )
    .await
}

/// Creates a new callback from callback `id` ("recreate", as GMS's Service Management UI
/// has): the same configured service, owner, customer number and user data, at `desired`
/// (now when `None`), through the GMS API's create. The options are the configured
/// service's as they are now, not the old one's overrides.
///
/// # Errors
/// Unknown id (404), a past time (400, `field`), the configured service deleted (404),
/// what a create refuses (400, 503), storage failure.
pub async fn recreate(
    state: &AppState,
    id: &str,
    field: &str,
    desired: Option<Timestamp>,
) -> Result<ServiceRecord, AppError> {
    let record = stored_one(state, id)?;
    if let Some(at) = desired {
        check_not_past(field, at, state.clock.now())?;
    }
    let mut fields: Vec<(String, String)> = record.user_data.clone().into_iter().collect();
    if let Some(number) = &record.customer_number {
        fields.push(("_customer_number".into(), number.clone()));
    }
    if let Some(at) = desired {
        fields.push(("_desired_time".into(), at.to_iso()));
    }
    let created =
        create_service(state, &record.service_name, record.owner.as_deref(), fields).await?;
    Ok(created.record)
}

/// One event of a transcript as an agent (or supervisor) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLine {
    /// Its transcript position.
    pub position: u64,
    /// The row: `[type, nickname, text, seconds since start, user type]`.
    pub row: [String; 5],
    /// Who may see it.
    pub visibility: Visibility,
}

/// A chat's transcript in the two views the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptViews {
    /// What the customer's chat API returns for the whole transcript (`transcriptPosition=1`).
    pub customer: Vec<[String; 5]>,
    /// Every event, with its visibility, as the agent desktop's transcript shows it.
    pub agent: Vec<AgentLine>,
}

/// The two views of a chat: the customer's (the same rule as the chat API) and the agent's.
pub fn transcript_views(session: &ChatSession, events: &[TranscriptEvent]) -> TranscriptViews {
    TranscriptViews {
        customer: customer_rows(events, 1, session.created_at),
        agent: events
            .iter()
            .map(|e| AgentLine {
                position: e.position,
                row: e.row(session.created_at),
                visibility: e.visibility,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(fields: &[(&str, &str)], now: u64) -> Result<CallbackFilter, String> {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CallbackFilter::parse(&fields, Timestamp::from_millis(now)).map_err(|e| e.to_string())
    }

    const NOW: u64 = 1_764_633_600_000 + 10 * HOUR_MS; // 2025-12-02T10:00Z

    #[test]
    fn windows_are_relative_to_now() {
        let table = [
            ("last24h", NOW - DAY_MS, NOW + 1),
            ("last7d", NOW - 7 * DAY_MS, NOW + 1),
            ("last30d", NOW - 30 * DAY_MS, NOW + 1),
            ("next24h", NOW, NOW + DAY_MS),
            ("next7d", NOW, NOW + 7 * DAY_MS),
            ("next30d", NOW, NOW + 30 * DAY_MS),
            ("today", NOW - 10 * HOUR_MS, NOW + 14 * HOUR_MS),
        ];
        for (range, from, to) in table {
            let filter = parse(&[("range", range)], NOW).unwrap();
            assert_eq!(filter.from, Some(Timestamp::from_millis(from)), "{range}");
            assert_eq!(filter.to, Some(Timestamp::from_millis(to)), "{range}");
        }
    }

    #[test]
    fn today_follows_the_browsers_zone() {
        // UTC-5 (offset +300): local 05:00, so local midnight is 05:00Z.
        let filter = parse(&[("range", "today"), ("tz", "300")], NOW).unwrap();
        assert_eq!(filter.from, Some(Timestamp::from_millis(NOW - 5 * HOUR_MS)));
    }

    #[test]
    fn custom_ranges_are_checked_with_gmss_messages() {
        let custom = |start: &str, end: &str| {
            parse(&[("range", "custom"), ("start", start), ("end", end)], NOW)
        };
        assert!(custom("2025-12-02T10:00", "2025-12-02T10:00")
            .unwrap_err()
            .contains(START_NOT_BEFORE_END));
        assert!(custom("2025-12-03T10:00", "2025-12-02T10:00")
            .unwrap_err()
            .contains(START_NOT_BEFORE_END));
        assert!(custom("2025-11-01T00:00", "2025-12-02T00:01")
            .unwrap_err()
            .contains(RANGE_TOO_LONG));
        let ok = custom("2025-11-01T00:00", "2025-12-02T00:00").unwrap();
        assert_eq!(ok.to.unwrap().to_iso(), "2025-12-02T00:00:00.000Z");
        assert!(custom("", "2025-12-02T00:00").is_err());
    }

    #[test]
    fn states_services_and_bad_values() {
        let filter = parse(
            &[
                ("state", "QUEUED"),
                ("state", "SCHEDULED"),
                ("service", "a"),
            ],
            NOW,
        )
        .unwrap();
        assert_eq!(
            filter.states,
            vec![CallbackState::Queued, CallbackState::Scheduled]
        );
        assert_eq!(filter.services, vec!["a".to_string()]);
        assert!(parse(&[("state", "NOPE")], NOW).is_err());
        assert!(parse(&[("range", "yesterday")], NOW).is_err());
        assert!(parse(&[("page", "0")], NOW).is_err());
    }
}
