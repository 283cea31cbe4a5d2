//! Scheduling rules: office hours, capacity, and the limits on a callback's desired time.
//!
//! GMS configures these as services of their own (`_service=office-hours`,
//! `_service=capacity`) that a callback service names in `_business_hours_service` and
//! `_capacity_service`. This module parses their options once into typed values
//! ([`OfficeHours`], [`Capacity`], [`ScheduleRules`]), each error naming the option, and answers
//! the questions requests ask: the opening periods of a day, whether the office is open at an
//! instant, how many callbacks a time bucket takes, and which buckets are still free. No I/O and
//! no clock: the caller passes `now` and the counts of callbacks already booked.
//!
//! Wall times are turned into instants with the IANA database that `chrono-tz` carries, so a
//! day on which the clocks change is as long as it really is. A wall time that does not exist
//! (the hour skipped in spring) means the first instant after the gap; one that happens twice
//! (the hour repeated in autumn) means its first occurrence.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, Offset, TimeZone,
    Timelike, Utc,
};
/// An IANA time zone; re-exported so that the layers above name zones without naming the
/// time-zone crate (only this module knows chrono).
pub use chrono_tz::Tz;

use super::option_error::OptionError;
use super::time::Timestamp;

/// `_request_time_bucket` values GMS accepts, in minutes.
pub const BUCKET_MINUTES: [u32; 7] = [5, 10, 15, 20, 30, 60, 120];

/// `_request_time_bucket` when unset (GMS's default).
pub const DEFAULT_BUCKET_MINUTES: u32 = 5;

/// The room availability reports for a bucket of a service with neither `_capacity_service`
/// nor `_max_request_by_time_bucket` (GMS's documented default of the latter); such a service
/// refuses no desired time for capacity.
pub const DEFAULT_MAX_PER_BUCKET: u32 = 100;

/// `_max_capacity` of GMS's capacity section: the most a capacity service may give one slot.
pub const MAX_CAPACITY: u32 = 1000;

/// A time zone read from `_timezone` (an IANA name such as `Europe/Paris`).
///
/// # Errors
/// An empty or unknown zone, naming `option`.
pub fn parse_zone(option: &str, value: &str) -> Result<Tz, OptionError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(OptionError::new(
            option,
            "required: give an IANA time zone such as Europe/Paris or America/New_York",
        ));
    }
    Tz::from_str(value).map_err(|_| {
        OptionError::new(
            option,
            format!("`{value}` is not an IANA time zone: write it like Europe/Paris, America/New_York or UTC (not EST or PST)"),
        )
    })
}

/// The instant at which the wall clock of `zone` shows `date` at `minutes` past midnight
/// (`1440` is the next midnight). A wall time skipped by a spring change is the first instant
/// after the gap; a wall time repeated in autumn is its first occurrence.
pub fn local_instant(zone: Tz, date: NaiveDate, minutes: u16) -> Timestamp {
    let (date, minutes) = if minutes >= 1440 {
        (date.succ_opt().unwrap_or(date), minutes - 1440)
    } else {
        (date, minutes)
    };
    let Some(wall) = date.and_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0) else {
        return Timestamp::from_millis(0);
    };
    wall_instant(zone, wall)
}

/// The instant at which the wall clock of `zone` shows `wall`, read as [`local_instant`]
/// reads one: a skipped wall time is the first instant after the gap, a repeated one its first
/// occurrence.
pub fn wall_instant(zone: Tz, wall: NaiveDateTime) -> Timestamp {
    // Gaps are at most a few hours (usually one); step a minute at a time to the gap's end.
    for step in 0..=240 {
        let candidate = wall + Duration::minutes(step);
        match zone.from_local_datetime(&candidate) {
            LocalResult::Single(at) => return to_timestamp(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return to_timestamp(first.with_timezone(&Utc)),
            LocalResult::None => continue,
        }
    }
    to_timestamp(Utc.from_utc_datetime(&wall))
}

fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp::from_millis(u64::try_from(at.timestamp_millis()).unwrap_or(0))
}

fn to_utc(at: Timestamp) -> DateTime<Utc> {
    let millis = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The wall-clock date and time of `at` in `zone`.
pub fn local_time(zone: Tz, at: Timestamp) -> NaiveDateTime {
    to_utc(at).with_timezone(&zone).naive_local()
}

/// `at` as ISO 8601 in `zone`'s wall time with its offset (`2026-03-30T08:00:00.000+02:00`):
/// unambiguous even in the hour that autumn repeats.
pub fn format_in(zone: Tz, at: Timestamp) -> String {
    to_utc(at)
        .with_timezone(&zone)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// A wall time without a zone (`2015-03-17T09:15:00.000`, `2015-03-17T09:15:00`,
/// `2015-03-17T09:15`) as an instant in `zone`; `None` if it is not one.
pub fn parse_wall_time(zone: Tz, text: &str) -> Option<Timestamp> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
    .map(|wall| wall_instant(zone, wall))
}

/// A span of time, `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    /// When it begins.
    pub start: Timestamp,
    /// When it ends.
    pub end: Timestamp,
}

impl Period {
    /// Whether `at` lies in it.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    /// Whether it shares an instant with `[from, to]` (`to` included, so that `from == to`
    /// asks about one instant).
    pub fn overlaps(&self, from: Timestamp, to: Timestamp) -> bool {
        self.start <= to && from < self.end
    }
}

/// One day's opening, from `open` to `close` minutes past midnight. A `close` at or before
/// `open` runs past midnight into the next day (`19:00-07:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Opening {
    open: u16,
    close: u16,
}

impl Opening {
    /// `HH:mm-HH:mm` (or `H:mm`); `24:00` closes at midnight.
    fn parse(option: &str, text: &str) -> Result<Self, OptionError> {
        let bad = || {
            OptionError::new(
                option,
                format!("`{text}` is not an opening: write hours as HH:mm-HH:mm in 24-hour time, e.g. 08:00-20:00 (19:00-07:00 runs past midnight)"),
            )
        };
        let (open, close) = text.trim().split_once('-').ok_or_else(bad)?;
        let open = wall_minutes(open).filter(|m| *m < 1440).ok_or_else(bad)?;
        let close = wall_minutes(close).ok_or_else(bad)?;
        if open == close || (open == 0 && close == 0) {
            return Err(OptionError::new(
                option,
                format!(
                    "`{text}` opens and closes at the same time: for a whole day write 00:00-24:00"
                ),
            ));
        }
        Ok(Self { open, close })
    }

    /// Its period on `date` in `zone`.
    fn on(self, zone: Tz, date: NaiveDate) -> Period {
        let start = local_instant(zone, date, self.open);
        let end = if self.close > self.open {
            local_instant(zone, date, self.close)
        } else {
            local_instant(zone, date.succ_opt().unwrap_or(date), self.close)
        };
        Period { start, end }
    }
}

/// `HH:mm` as minutes past midnight, up to `24:00`.
fn wall_minutes(text: &str) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    if hours.is_empty() || hours.len() > 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    if minutes > 59 || hours > 24 || (hours == 24 && minutes != 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

/// A date: one day (`2026-12-24`) or the same day every year (`12-24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateRule {
    Fixed(NaiveDate),
    Annual { month: u32, day: u32 },
}

impl DateRule {
    fn parse(option: &str, text: &str) -> Result<Self, OptionError> {
        let text = text.trim();
        let bad = || {
            OptionError::new(
                option,
                format!("`{text}` is not a date: write YYYY-MM-dd (e.g. 2026-12-24) or, for every year, MM-dd (e.g. 12-24)"),
            )
        };
        let parts: Vec<&str> = text.split('-').collect();
        match parts.as_slice() {
            [year, month, day] if year.len() == 4 => {
                let date = NaiveDate::from_ymd_opt(
                    year.parse().map_err(|_| bad())?,
                    month.parse().map_err(|_| bad())?,
                    day.parse().map_err(|_| bad())?,
                )
                .ok_or_else(bad)?;
                Ok(DateRule::Fixed(date))
            }
            [month, day] => {
                let month: u32 = month.parse().map_err(|_| bad())?;
                let day: u32 = day.parse().map_err(|_| bad())?;
                // 2024 is a leap year, so 02-29 is a valid yearly date.
                NaiveDate::from_ymd_opt(2024, month, day).ok_or_else(bad)?;
                Ok(DateRule::Annual { month, day })
            }
            _ => Err(bad()),
        }
    }

    fn matches(self, date: NaiveDate) -> bool {
        match self {
            DateRule::Fixed(fixed) => fixed == date,
            DateRule::Annual { month, day } => date.month() == month && date.day() == day,
        }
    }
}

/// Days of the week, Monday first.
type Weekdays = [bool; 7];

fn day_index(option: &str, text: &str) -> Result<usize, OptionError> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let name = text.trim().to_ascii_lowercase();
    FULL.iter()
        .position(|full| name.len() >= 3 && full.starts_with(&name))
        .ok_or_else(|| {
            OptionError::new(
                option,
                format!(
                    "`{}` is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun",
                    text.trim()
                ),
            )
        })
}

/// `Mon-Fri`, `Sat-Mon` (wrapping past Sunday), `Sun`, or a comma list of those.
fn parse_days(option: &str, text: &str) -> Result<Weekdays, OptionError> {
    let mut days = [false; 7];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day_index(option, from)?, day_index(option, to)?);
                let mut day = from;
                loop {
                    days[day] = true;
                    if day == to {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => days[day_index(option, part)?] = true,
        }
    }
    Ok(days)
}

/// Options named `<prefix><n>` (`_bh_regular1`, `_bh_regular2`, ...) with a value.
fn numbered<'a>(
    options: &'a BTreeMap<String, String>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    options.iter().filter_map(move |(name, value)| {
        let suffix = name.strip_prefix(prefix)?;
        let numbered = !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit());
        (numbered && !value.trim().is_empty()).then_some((name.as_str(), value.as_str()))
    })
}

/// `_effective_dates<n>`: the local dates a scheduling service applies on (`2026-04-01`, or
/// `2026-04-01 to 2026-10-31`, both ends included). With none configured it applies every
/// day; with any, it applies only inside them (GMS: "the office is considered closed outside
/// of the configured `_effective_dates<n>` ranges").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveDates(Vec<(NaiveDate, NaiveDate)>);

impl EffectiveDates {
    /// Reads `_effective_dates` and `_effective_dates<n>`.
    ///
    /// # Errors
    /// A value that is not a date or a range of dates, or a range that ends before it starts,
    /// naming the option.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        let bare = options
            .get_key_value("_effective_dates")
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| (name.as_str(), value.as_str()));
        let mut ranges = Vec::new();
        for (name, value) in bare
            .into_iter()
            .chain(numbered(options, "_effective_dates"))
        {
            ranges.push(Self::parse_range(name, value)?);
        }
        ranges.sort();
        Ok(Self(ranges))
    }

    fn parse_range(option: &str, text: &str) -> Result<(NaiveDate, NaiveDate), OptionError> {
        let text = text.trim();
        let date = |part: &str| {
            NaiveDate::parse_from_str(part.trim(), "%Y-%m-%d").map_err(|_| {
                OptionError::new(
                    option,
                    format!("`{text}` is not a date or a range of dates: write YYYY-MM-dd (2026-04-01) or YYYY-MM-dd to YYYY-MM-dd (2026-04-01 to 2026-10-31)"),
                )
            })
        };
        let (first, last) = match text.split_once(" to ") {
            Some((first, last)) => (date(first)?, date(last)?),
            None => (date(text)?, date(text)?),
        };
        if last < first {
            return Err(OptionError::new(
                option,
                format!("`{text}` ends before it starts: write the earlier date first"),
            ));
        }
        Ok((first, last))
    }

    /// Whether the service applies on local `date`.
    pub fn allows(&self, date: NaiveDate) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|(first, last)| *first <= date && date <= *last)
    }
}

/// An office-hours service: when the office is open, in its own time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeHours {
    zone: Tz,
    /// `_bh_regular<n>`: weekly openings.
    regular: Vec<(Weekdays, Opening)>,
    /// `_bh_add<n>`: openings on a given date, holidays or not.
    added: Vec<(DateRule, Opening)>,
    /// `_holiday<n>`: dates without the weekly openings.
    holidays: Vec<DateRule>,
    /// `_effective_dates<n>`: outside them the office is closed, additions included.
    effective: EffectiveDates,
}

/// The opening periods of one local date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayHours {
    /// The date, in the office's zone.
    pub date: NaiveDate,
    /// When the office opens and closes that day, in time order (a period that starts that
    /// day may end the next).
    pub periods: Vec<Period>,
}

impl OfficeHours {
    /// Reads `_timezone`, `_bh_regular<n>` (`Mon-Fri 08:00-20:00`), `_bh_add<n>`
    /// (`2026-12-24 09:00-12:00` or `12-24 09:00-12:00`) and `_holiday<n>` (`2026-12-25` or
    /// `12-25`).
    ///
    /// # Errors
    /// The first bad option, named.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        let zone = parse_zone(
            "_timezone",
            options.get("_timezone").map(String::as_str).unwrap_or(""),
        )?;
        let mut regular = Vec::new();
        for (name, value) in numbered(options, "_bh_regular") {
            let (days, hours) = value
                .trim()
                .split_once(char::is_whitespace)
                .ok_or_else(|| {
                    OptionError::new(
                        name,
                        format!(
                            "`{value}` needs days and hours: write it like Mon-Fri 08:00-20:00"
                        ),
                    )
                })?;
            regular.push((parse_days(name, days)?, Opening::parse(name, hours)?));
        }
        let mut added = Vec::new();
        for (name, value) in numbered(options, "_bh_add") {
            let (date, hours) = value.trim().split_once(char::is_whitespace).ok_or_else(|| {
                OptionError::new(
                    name,
                    format!("`{value}` needs a date and hours: write it like 2026-12-24 09:00-12:00 or 12-24 09:00-12:00"),
                )
            })?;
            added.push((DateRule::parse(name, date)?, Opening::parse(name, hours)?));
        }
        let mut holidays = Vec::new();
        for (name, value) in numbered(options, "_holiday") {
            holidays.push(DateRule::parse(name, value)?);
        }
        Ok(Self {
            zone,
            regular,
            added,
            holidays,
            effective: EffectiveDates::from_options(options)?,
        })
    }

    /// The office's time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The local date of `at` in the office's zone.
    pub fn local_date(&self, at: Timestamp) -> NaiveDate {
        local_time(self.zone, at).date()
    }

    /// The periods that start on local `date`, merged where they touch or overlap (none
    /// outside `_effective_dates`; a night that starts on the last effective date runs to its
    /// end).
    pub fn periods_on(&self, date: NaiveDate) -> Vec<Period> {
        if !self.effective.allows(date) {
            return Vec::new();
        }
        let weekday = date.weekday().num_days_from_monday() as usize;
        let holiday = self.holidays.iter().any(|h| h.matches(date));
        let mut periods: Vec<Period> = self
            .regular
            .iter()
            .filter(|(days, _)| !holiday && days[weekday])
            .map(|(_, opening)| opening.on(self.zone, date))
            .chain(
                self.added
                    .iter()
                    .filter(|(rule, _)| rule.matches(date))
                    .map(|(_, opening)| opening.on(self.zone, date)),
            )
            .collect();
        periods.sort();
        let mut merged: Vec<Period> = Vec::with_capacity(periods.len());
        for period in periods {
            match merged.last_mut() {
                Some(last) if period.start <= last.end => last.end = last.end.max(period.end),
                _ => merged.push(period),
            }
        }
        merged
    }

    /// Every local date from that of `from` to that of `to` with its periods (at most
    /// `max_days` dates).
    pub fn days(&self, from: Timestamp, to: Timestamp, max_days: usize) -> Vec<DayHours> {
        let (first, last) = (self.local_date(from), self.local_date(to));
        first
            .iter_days()
            .take_while(|date| *date <= last)
            .take(max_days)
            .map(|date| DayHours {
                date,
                periods: self.periods_on(date),
            })
            .collect()
    }

    /// Every instant the office is open from `from` until `to`, as disjoint periods in time
    /// order (overlapping or touching openings merged, a night from the day before
    /// included): what [`OfficeHours::is_open`] answers for each instant, computed once for a
    /// window.
    pub fn open_periods(&self, from: Timestamp, to: Timestamp) -> Vec<Period> {
        let first = self
            .local_date(from)
            .pred_opt()
            .unwrap_or(self.local_date(from));
        let last = self.local_date(to);
        let mut periods: Vec<Period> = first
            .iter_days()
            .take_while(|date| *date <= last)
            .flat_map(|date| self.periods_on(date))
            .filter(|period| period.overlaps(from, to))
            .collect();
        periods.sort();
        let mut merged: Vec<Period> = Vec::with_capacity(periods.len());
        for period in periods {
            match merged.last_mut() {
                Some(last) if period.start <= last.end => last.end = last.end.max(period.end),
                _ => merged.push(period),
            }
        }
        merged
    }

    /// Whether the office is open at `at` (a period of the day before may run past midnight).
    pub fn is_open(&self, at: Timestamp) -> bool {
        let date = self.local_date(at);
        date.pred_opt()
            .into_iter()
            .chain(Some(date))
            .any(|day| self.periods_on(day).iter().any(|p| p.contains(at)))
    }
}

/// What a scheduling service knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Calendar {
    /// An office-hours service.
    OfficeHours(OfficeHours),
    /// A capacity service (boxed: a week of hours is much larger than office hours).
    Capacity(Box<Capacity>),
}

/// Callbacks allowed per bucket for each hour of a day (`None`: the hour is not listed).
type HourCapacity = [Option<u32>; 24];

/// A capacity service: how many scheduled callbacks each time bucket of each hour of the week
/// takes, in its own time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    zone: Tz,
    /// `_capacity_<n>`: per weekday, Monday first.
    weekly: [HourCapacity; 7],
    /// `_capacity_add`: dates whose hours replace their weekday's.
    added: BTreeMap<NaiveDate, HourCapacity>,
    /// `_effective_dates<n>`: outside them every hour takes none.
    effective: EffectiveDates,
}

impl Capacity {
    /// Reads `_timezone`, `_capacity_<n>` (`{"1":{"0800":10,"0900":10}}`: weekday 1 = Monday to
    /// 7 = Sunday, then `HHMM` hours and the callbacks each bucket of that hour takes) and
    /// `_capacity_add` (`{"2026-12-24":{"0900":2}}`: dates whose hours replace their
    /// weekday's), and `_effective_dates<n>` as office hours read it (outside those dates no
    /// hour takes any). `_capacity` (`[Mon, Tue, ...]`) must list day names.
    ///
    /// # Errors
    /// The first bad option, named.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        let zone = parse_zone(
            "_timezone",
            options.get("_timezone").map(String::as_str).unwrap_or(""),
        )?;
        if let Some(days) = options.get("_capacity").map(|v| v.trim()) {
            if !days.is_empty() {
                let inner = days
                    .strip_prefix('[')
                    .and_then(|d| d.strip_suffix(']'))
                    .ok_or_else(|| {
                        OptionError::new(
                            "_capacity",
                            format!("`{days}` is not a list of days: write [Mon, Tue, Wed, Thu, Fri, Sat, Sun]"),
                        )
                    })?;
                for day in inner.split(',').filter(|d| !d.trim().is_empty()) {
                    day_index("_capacity", day)?;
                }
            }
        }
        let mut weekly = [[None; 24]; 7];
        for (name, value) in numbered(options, "_capacity_") {
            let days: BTreeMap<String, BTreeMap<String, u32>> = serde_json::from_str(value)
                .map_err(|_| {
                    OptionError::new(
                        name,
                        format!("`{value}` is not a capacity: write JSON like {{\"1\":{{\"0800\":10,\"0900\":10}}}} (weekday 1 = Monday, hour HHMM, callbacks per bucket)"),
                    )
                })?;
            for (day, hours) in days {
                let index = day
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|d| (1..=7).contains(d))
                    .ok_or_else(|| {
                        OptionError::new(
                            name,
                            format!("`{day}` is not a weekday: use 1 (Monday) to 7 (Sunday)"),
                        )
                    })?;
                fill_hours(name, &hours, &mut weekly[index - 1])?;
            }
        }
        let mut added = BTreeMap::new();
        if let Some(value) = options
            .get("_capacity_add")
            .filter(|v| !v.trim().is_empty())
        {
            let dates: BTreeMap<String, BTreeMap<String, u32>> = serde_json::from_str(value)
                .map_err(|_| {
                    OptionError::new(
                        "_capacity_add",
                        format!("`{value}` is not a list of dates: write JSON like {{\"2026-12-24\":{{\"0900\":2}}}} (or {{}})"),
                    )
                })?;
            for (date, hours) in dates {
                let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
                    OptionError::new(
                        "_capacity_add",
                        format!("`{date}` is not a date: write YYYY-MM-dd"),
                    )
                })?;
                let mut day = [None; 24];
                fill_hours("_capacity_add", &hours, &mut day)?;
                added.insert(date, day);
            }
        }
        Ok(Self {
            zone,
            weekly,
            added,
            effective: EffectiveDates::from_options(options)?,
        })
    }

    /// The capacity service's time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The capacity of each local hour (in the service's zone) that shares time with
    /// `[from, to)`, clipped to it, in time order: what one bucket starting in that hour takes.
    /// An hour that a spring change skips is left out; the hour that autumn repeats is one
    /// period of two hours. At most `max_hours` periods.
    pub fn hours(&self, from: Timestamp, to: Timestamp, max_hours: usize) -> Vec<(Period, u32)> {
        let first = local_time(self.zone, from).date();
        let last = local_time(self.zone, to).date();
        let mut hours = Vec::new();
        for date in first.iter_days().take_while(|date| *date <= last) {
            for hour in 0..24u16 {
                let start = local_instant(self.zone, date, hour * 60);
                let end = local_instant(self.zone, date, (hour + 1) * 60);
                let period = Period {
                    start: start.max(from),
                    end: end.min(to),
                };
                if period.start >= period.end {
                    continue;
                }
                if hours.len() == max_hours {
                    return hours;
                }
                hours.push((period, self.per_bucket(start)));
            }
        }
        hours
    }

    /// The callbacks one bucket starting at `at` takes: the value of its local hour, 0 when
    /// the hour is not listed or the date is outside `_effective_dates`.
    pub fn per_bucket(&self, at: Timestamp) -> u32 {
        let local = local_time(self.zone, at);
        if !self.effective.allows(local.date()) {
            return 0;
        }
        let day = self
            .added
            .get(&local.date())
            .unwrap_or(&self.weekly[local.date().weekday().num_days_from_monday() as usize]);
        day[local.hour() as usize].unwrap_or(0)
    }

    /// [`Capacity::per_bucket`] for many buckets in time order: each bucket costs its zone
    /// offset, and the local date's hours (weekday, `_capacity_add`, `_effective_dates`) are
    /// looked up once per local date instead of once per bucket.
    pub fn walk(&self) -> CapacityWalk<'_> {
        CapacityWalk {
            capacity: self,
            day: None,
        }
    }
}

/// See [`Capacity::walk`].
#[derive(Debug)]
pub struct CapacityWalk<'a> {
    capacity: &'a Capacity,
    /// The last local date asked (days since the epoch) and its hours (`None`: outside
    /// `_effective_dates`, every hour takes none).
    day: Option<(i64, Option<&'a HourCapacity>)>,
}

impl CapacityWalk<'_> {
    /// What [`Capacity::per_bucket`] answers for `at`.
    pub fn per_bucket(&mut self, at: Timestamp) -> u32 {
        let capacity = self.capacity;
        let utc = to_utc(at);
        let offset = capacity
            .zone
            .offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc();
        let local = utc
            .timestamp_millis()
            .saturating_add(i64::from(offset) * 1000);
        let days = local.div_euclid(DAY_MS);
        let hour = usize::try_from(local.rem_euclid(DAY_MS) / HOUR_MS).unwrap_or(0);
        let hours = match self.day {
            Some((known, hours)) if known == days => hours,
            _ => {
                let Some(date) = i32::try_from(days + EPOCH_DAYS_FROM_CE)
                    .ok()
                    .and_then(NaiveDate::from_num_days_from_ce_opt)
                else {
                    // Beyond chrono's dates: ask as one bucket does.
                    return capacity.per_bucket(at);
                };
                let hours = capacity.effective.allows(date).then(|| {
                    capacity
                        .added
                        .get(&date)
                        .unwrap_or(&capacity.weekly[date.weekday().num_days_from_monday() as usize])
                });
                self.day = Some((days, hours));
                hours
            }
        };
        hours
            .and_then(|hours| hours.get(hour).copied().flatten())
            .unwrap_or(0)
    }
}

/// Milliseconds in a day and an hour of local wall time.
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 1970-01-01 counted in days from 0001-01-01 (chrono's common era), day 1 being that day.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

fn fill_hours(
    option: &str,
    hours: &BTreeMap<String, u32>,
    day: &mut HourCapacity,
) -> Result<(), OptionError> {
    for (hour, count) in hours {
        let index = (hour.len() == 4 && hour.ends_with("00"))
            .then(|| hour[..2].parse::<usize>().ok())
            .flatten()
            .filter(|h| *h < 24)
            .ok_or_else(|| {
                OptionError::new(
                    option,
                    format!("`{hour}` is not an hour: write HHMM on the hour, 0000 to 2300"),
                )
            })?;
        if *count > MAX_CAPACITY {
            return Err(OptionError::new(
                option,
                format!("{count} callbacks per bucket at {hour} is more than the maximum capacity {MAX_CAPACITY}"),
            ));
        }
        day[index] = Some(*count);
    }
    Ok(())
}

/// How far from now a desired time may be: `_reject_future_desired_time` and
/// `_reject_past_desired_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLimit {
    /// A number of seconds (`3600`, `30m`, `12h`, `7d`, `2w`).
    Secs(u64),
    /// Calendar months, in UTC (`1M`, `1y` = 12 months).
    Months(u32),
}

impl TimeLimit {
    /// `<n>` seconds or `<n><unit>` with unit `s`, `m` (minutes), `h`, `d`, `w`, `M` (months)
    /// or `y`.
    ///
    /// # Errors
    /// Not such a value, naming `option`.
    pub fn parse(option: &str, text: &str) -> Result<Self, OptionError> {
        let text = text.trim();
        let bad = || {
            OptionError::new(
                option,
                format!("`{text}` is not a duration: write a number with a unit, s, m (minutes), h, d, w, M (months) or y, e.g. 1M or 14d"),
            )
        };
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let secs = |per: u64| number.checked_mul(per).map(TimeLimit::Secs).ok_or_else(bad);
        match unit {
            "" | "s" => secs(1),
            "m" => secs(60),
            "h" => secs(3600),
            "d" => secs(86_400),
            "w" => secs(7 * 86_400),
            "M" => u32::try_from(number)
                .map(TimeLimit::Months)
                .map_err(|_| bad()),
            "y" => u32::try_from(number)
                .ok()
                .and_then(|n| n.checked_mul(12))
                .map(TimeLimit::Months)
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }

    /// `at` plus this limit.
    pub fn after(self, at: Timestamp) -> Timestamp {
        match self {
            TimeLimit::Secs(secs) => at.plus_secs(secs),
            TimeLimit::Months(months) => to_utc(at)
                .checked_add_months(Months::new(months))
                .map_or(Timestamp::from_millis(u64::MAX), to_timestamp),
        }
    }

    /// `at` minus this limit.
    pub fn before(self, at: Timestamp) -> Timestamp {
        match self {
            TimeLimit::Secs(secs) => {
                Timestamp::from_millis(at.as_millis().saturating_sub(secs.saturating_mul(1000)))
            }
            TimeLimit::Months(months) => to_utc(at)
                .checked_sub_months(Months::new(months))
                .map_or(Timestamp::from_millis(0), to_timestamp),
        }
    }
}

/// A callback service's scheduling options, parsed once with its other settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRules {
    /// `_business_hours_service`: the office-hours service it follows.
    pub business_hours_service: Option<String>,
    /// `_capacity_service`: the capacity service that sizes its buckets.
    pub capacity_service: Option<String>,
    /// `_request_time_bucket`, in minutes.
    pub bucket_minutes: u32,
    /// `_max_request_by_time_bucket`.
    pub max_per_bucket: Option<u32>,
    /// `_enable_reject_out_of_office_hours`.
    pub reject_out_of_office_hours: bool,
    /// `_reject_future_desired_time`.
    pub reject_future: Option<TimeLimit>,
    /// `_reject_past_desired_time`.
    pub reject_past: Option<TimeLimit>,
}

impl Default for ScheduleRules {
    fn default() -> Self {
        Self {
            business_hours_service: None,
            capacity_service: None,
            bucket_minutes: DEFAULT_BUCKET_MINUTES,
            max_per_bucket: None,
            reject_out_of_office_hours: false,
            reject_future: None,
            reject_past: None,
        }
    }
}

/// Why a desired time is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Later than `_reject_future_desired_time` allows.
    TooFarAhead {
        /// The latest time accepted.
        latest: Timestamp,
    },
    /// Earlier than `_reject_past_desired_time` allows.
    TooFarBack {
        /// The earliest time accepted.
        earliest: Timestamp,
    },
    /// The office is closed then (`_enable_reject_out_of_office_hours`).
    OutOfOfficeHours,
    /// Its bucket has no room left.
    BucketFull {
        /// The bucket's start.
        bucket: Timestamp,
        /// What the bucket takes.
        limit: u32,
    },
}

impl ScheduleRules {
    /// Reads the scheduling options of a callback service.
    ///
    /// # Errors
    /// The first bad option, named.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        let text = |name: &str| {
            options
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let bucket_minutes = match text("_request_time_bucket") {
            None => DEFAULT_BUCKET_MINUTES,
            Some(value) => value
                .parse::<u32>()
                .ok()
                .filter(|m| BUCKET_MINUTES.contains(m))
                .ok_or_else(|| {
                    OptionError::new(
                        "_request_time_bucket",
                        format!("`{value}` is not a bucket size: use 5, 10, 15, 20, 30, 60 or 120 (minutes)"),
                    )
                })?,
        };
        let max_per_bucket = text("_max_request_by_time_bucket")
            .map(|value| {
                value.parse::<u32>().map_err(|_| {
                    OptionError::new(
                        "_max_request_by_time_bucket",
                        format!("`{value}` is not a count: write the callbacks one bucket takes, e.g. 100"),
                    )
                })
            })
            .transpose()?;
        let reject_out_of_office_hours = match text("_enable_reject_out_of_office_hours") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(OptionError::new(
                    "_enable_reject_out_of_office_hours",
                    format!("`{v}` is not valid: write true or false"),
                ))
            }
        };
        let business_hours_service = text("_business_hours_service").map(str::to_string);
        if reject_out_of_office_hours && business_hours_service.is_none() {
            return Err(OptionError::new(
                "_enable_reject_out_of_office_hours",
                "`true` needs office hours to check against: set _business_hours_service to an office-hours service",
            ));
        }
        Ok(Self {
            business_hours_service,
            capacity_service: text("_capacity_service").map(str::to_string),
            bucket_minutes,
            max_per_bucket,
            reject_out_of_office_hours,
            reject_future: text("_reject_future_desired_time")
                .map(|v| TimeLimit::parse("_reject_future_desired_time", v))
                .transpose()?,
            reject_past: text("_reject_past_desired_time")
                .map(|v| TimeLimit::parse("_reject_past_desired_time", v))
                .transpose()?,
        })
    }

    /// The bucket length in milliseconds.
    pub fn bucket_millis(&self) -> u64 {
        u64::from(self.bucket_minutes) * 60_000
    }

    /// The start of the bucket `at` falls in (buckets are aligned on the Unix epoch, so on UTC
    /// hours).
    pub fn bucket_of(&self, at: Timestamp) -> Timestamp {
        let size = self.bucket_millis();
        Timestamp::from_millis(at.as_millis() - at.as_millis() % size)
    }

    /// What the bucket starting at `bucket` takes: the capacity service's value for its hour,
    /// capped by `_max_request_by_time_bucket`, or that option alone. `None` when neither is
    /// set: GMS checks capacity only then (`_request_time_bucket` "applicable if the
    /// `_max_request_by_time_bucket` option is set").
    pub fn limit_at(&self, capacity: Option<&Capacity>, bucket: Timestamp) -> Option<u32> {
        match (capacity, self.max_per_bucket) {
            (Some(capacity), Some(max)) => Some(capacity.per_bucket(bucket).min(max)),
            (Some(capacity), None) => Some(capacity.per_bucket(bucket)),
            (None, max) => max,
        }
    }

    /// Checks the limits on how far a requested desired time may be from `now`.
    ///
    /// # Errors
    /// The limit it breaks.
    pub fn check_limits(&self, desired: Timestamp, now: Timestamp) -> Result<(), Refusal> {
        if let Some(limit) = self.reject_future {
            let latest = limit.after(now);
            if desired > latest {
                return Err(Refusal::TooFarAhead { latest });
            }
        }
        if let Some(limit) = self.reject_past {
            let earliest = limit.before(now);
            if desired < earliest {
                return Err(Refusal::TooFarBack { earliest });
            }
        }
        Ok(())
    }

    /// Checks a desired time against office hours (when rejection is enabled) and, for a
    /// scheduled callback, its bucket's room (`booked`: callbacks already in that bucket).
    ///
    /// # Errors
    /// Why the time is refused.
    pub fn check_slot(
        &self,
        office: Option<&OfficeHours>,
        capacity: Option<&Capacity>,
        desired: Timestamp,
        scheduled: bool,
        booked: u32,
    ) -> Result<(), Refusal> {
        if self.reject_out_of_office_hours {
            if let Some(office) = office {
                if !office.is_open(desired) {
                    return Err(Refusal::OutOfOfficeHours);
                }
            }
        }
        let bucket = self.bucket_of(desired);
        if let (true, Some(limit)) = (scheduled, self.limit_at(capacity, bucket)) {
            if booked >= limit {
                return Err(Refusal::BucketFull { bucket, limit });
            }
        }
        Ok(())
    }

    /// The free buckets from `window.0` (or `now`, if later) until `window.1`, each with the callbacks it
    /// can still take, in time order, at most `max_slots`. A bucket is offered when it starts
    /// at or after that time, while the office is open (when the service follows office
    /// hours), within `_reject_future_desired_time`, and has room. `booked` gives the
    /// callbacks already in the bucket starting at a time. A service without a capacity
    /// limit reports GMS's default of [`DEFAULT_MAX_PER_BUCKET`] per bucket.
    pub fn free_slots(
        &self,
        office: Option<&OfficeHours>,
        capacity: Option<&Capacity>,
        window: (Timestamp, Timestamp),
        now: Timestamp,
        max_slots: usize,
        booked: impl Fn(Timestamp) -> u32,
    ) -> Vec<(Timestamp, u32)> {
        let size = self.bucket_millis();
        let earliest = window.0.max(now).as_millis();
        let mut start = earliest.div_ceil(size).saturating_mul(size);
        let latest = self
            .reject_future
            .map_or(Timestamp::from_millis(u64::MAX), |limit| limit.after(now));
        // The office's openings over the window, computed once and walked with the buckets
        // (asking `is_open` per bucket would compute two days of openings 8,640 times a month).
        let open = office.map(|o| o.open_periods(Timestamp::from_millis(start), window.1));
        let mut next_open = 0;
        let mut capacity = capacity.map(Capacity::walk);
        let mut slots = Vec::new();
        while Timestamp::from_millis(start) < window.1
            && Timestamp::from_millis(start) <= latest
            && slots.len() < max_slots
        {
            let bucket = Timestamp::from_millis(start);
            let is_open = open.as_ref().is_none_or(|open| {
                while open.get(next_open).is_some_and(|p| p.end <= bucket) {
                    next_open += 1;
                }
                open.get(next_open).is_some_and(|p| p.start <= bucket)
            });
            if is_open {
                let limit = match (capacity.as_mut(), self.max_per_bucket) {
                    (Some(capacity), Some(max)) => Some(capacity.per_bucket(bucket).min(max)),
                    (Some(capacity), None) => Some(capacity.per_bucket(bucket)),
                    (None, max) => max,
                };
                let room = limit
                    .unwrap_or(DEFAULT_MAX_PER_BUCKET)
                    .saturating_sub(booked(bucket));
                if room > 0 {
                    slots.push((bucket, room));
                }
            }
            start = match start.checked_add(size) {
                Some(next) => next,
                None => break,
            };
        }
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at(iso: &str) -> Timestamp {
        Timestamp::parse_iso(iso).unwrap()
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn iso(periods: &[Period]) -> Vec<(String, String)> {
        periods
            .iter()
            .map(|p| (p.start.to_iso(), p.end.to_iso()))
            .collect()
    }

    fn hours(zone: &str, pairs: &[(&str, &str)]) -> OfficeHours {
        let mut all = options(pairs);
        all.insert("_timezone".into(), zone.into());
        OfficeHours::from_options(&all).unwrap()
    }

    #[test]
    fn weekday_hours_follow_the_zone_through_the_spring_change() {
        let paris = hours("Europe/Paris", &[("_bh_regular1", "Mon-Fri 08:00-20:00")]);
        // Friday before the change (UTC+1), Monday after it (UTC+2).
        assert_eq!(
            iso(&paris.periods_on(date("2026-03-27"))),
            [(
                "2026-03-27T07:00:00.000Z".to_string(),
                "2026-03-27T19:00:00.000Z".to_string()
            )]
        );
        assert_eq!(
            iso(&paris.periods_on(date("2026-03-30"))),
            [(
                "2026-03-30T06:00:00.000Z".to_string(),
                "2026-03-30T18:00:00.000Z".to_string()
            )]
        );
        assert!(paris.periods_on(date("2026-03-29")).is_empty(), "Sunday");
    }

    #[test]
    fn the_spring_forward_day_is_an_hour_short() {
        // Europe/Paris, 2026-03-29: 02:00 CET becomes 03:00 CEST.
        let paris = hours("Europe/Paris", &[("_bh_regular1", "Sun 01:00-04:00")]);
        let periods = paris.periods_on(date("2026-03-29"));
        assert_eq!(
            iso(&periods),
            [(
                "2026-03-29T00:00:00.000Z".to_string(),
                "2026-03-29T02:00:00.000Z".to_string()
            )],
            "01:00 CET to 04:00 CEST is two hours"
        );
        // A wall time in the skipped hour opens when the gap ends (03:00 CEST = 01:00Z).
        let gap = hours("Europe/Paris", &[("_bh_regular1", "Sun 02:30-05:00")]);
        assert_eq!(
            gap.periods_on(date("2026-03-29"))[0].start.to_iso(),
            "2026-03-29T01:00:00.000Z"
        );
        // America/New_York, 2026-03-08: 02:00 EST becomes 03:00 EDT.
        let new_york = hours("America/New_York", &[("_bh_regular1", "Sun 00:00-24:00")]);
        let day = new_york.periods_on(date("2026-03-08"))[0];
        assert_eq!(day.start.to_iso(), "2026-03-08T05:00:00.000Z");
        assert_eq!(day.end.to_iso(), "2026-03-09T04:00:00.000Z");
        assert_eq!(day.end.as_millis() - day.start.as_millis(), 23 * 3_600_000);
    }

    #[test]
    fn the_fall_back_day_is_an_hour_long() {
        // Europe/Paris, 2026-10-25: 03:00 CEST becomes 02:00 CET.
        let paris = hours("Europe/Paris", &[("_bh_regular1", "Sun 01:00-04:00")]);
        assert_eq!(
            iso(&paris.periods_on(date("2026-10-25"))),
            [(
                "2026-10-24T23:00:00.000Z".to_string(),
                "2026-10-25T03:00:00.000Z".to_string()
            )],
            "01:00 CEST to 04:00 CET is four hours"
        );
        // A repeated wall time means its first occurrence (02:30 CEST = 00:30Z).
        let twice = hours("Europe/Paris", &[("_bh_regular1", "Sun 02:30-05:00")]);
        assert_eq!(
            twice.periods_on(date("2026-10-25"))[0].start.to_iso(),
            "2026-10-25T00:30:00.000Z"
        );
        // America/New_York, 2026-11-01: a whole day is 25 hours.
        let new_york = hours("America/New_York", &[("_bh_regular1", "Sun 00:00-24:00")]);
        let day = new_york.periods_on(date("2026-11-01"))[0];
        assert_eq!(day.end.as_millis() - day.start.as_millis(), 25 * 3_600_000);
        assert!(
            new_york.is_open(at("2026-11-01T06:30:00Z")),
            "the first 01:30"
        );
        assert!(new_york.is_open(at("2026-11-01T05:30:00Z")));
    }

    #[test]
    fn overnight_wrapping_days_holidays_and_additions() {
        let office = hours(
            "UTC",
            &[
                ("_bh_regular1", "Sat-Mon 19:00-07:00"),
                ("_holiday1", "2026-12-28"),
                ("_bh_add1", "12-24 09:00-12:00"),
                ("_bh_add2", "2026-12-28 10:00-11:00"),
            ],
        );
        // Saturday 2026-12-26 19:00 to Sunday 07:00.
        assert!(office.is_open(at("2026-12-27T03:00:00Z")));
        assert!(!office.is_open(at("2026-12-26T18:59:59Z")));
        // Monday 2026-12-28 is a holiday: only the added hour.
        assert_eq!(
            iso(&office.periods_on(date("2026-12-28"))),
            [(
                "2026-12-28T10:00:00.000Z".to_string(),
                "2026-12-28T11:00:00.000Z".to_string()
            )]
        );
        // Sunday's night still ends on Monday morning (the holiday stops Monday's own).
        assert!(office.is_open(at("2026-12-28T06:00:00Z")));
        // Every year on 12-24 (a Thursday in 2026, a Friday in 2027).
        assert!(office.is_open(at("2026-12-24T10:00:00Z")));
        assert!(office.is_open(at("2027-12-24T10:00:00Z")));
        assert!(!office.is_open(at("2026-12-23T10:00:00Z")));
    }

    #[test]
    fn bad_office_hours_name_the_option() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("_timezone", "EST5")], "_timezone"),
            (&[("_timezone", "Mars/Olympus")], "_timezone"),
            (&[("_timezone", "")], "_timezone"),
            (
                &[
                    ("_timezone", "UTC"),
                    ("_bh_regular1", "Mon-Fry 08:00-20:00"),
                ],
                "_bh_regular1",
            ),
            (
                &[
                    ("_timezone", "UTC"),
                    ("_bh_regular2", "Mon-Fri 08:00-25:00"),
                ],
                "_bh_regular2",
            ),
            (
                &[("_timezone", "UTC"), ("_bh_regular1", "Mon-Fri")],
                "_bh_regular1",
            ),
            (
                &[("_timezone", "UTC"), ("_bh_regular1", "Mon 08:00-08:00")],
                "_bh_regular1",
            ),
            (
                &[("_timezone", "UTC"), ("_holiday1", "2026-02-30")],
                "_holiday1",
            ),
            (
                &[("_timezone", "UTC"), ("_bh_add1", "13-01 09:00-10:00")],
                "_bh_add1",
            ),
        ];
        for (pairs, option) in cases {
            let err = OfficeHours::from_options(&options(pairs)).expect_err(option);
            assert_eq!(err.option, *option, "{pairs:?}: {err}");
        }
    }

    fn capacity(pairs: &[(&str, &str)]) -> Capacity {
        Capacity::from_options(&options(pairs)).unwrap()
    }

    #[test]
    fn capacity_follows_the_local_hour_and_weekday() {
        let c = capacity(&[
            ("_timezone", "Europe/Paris"),
            ("_capacity", "[Mon, Tue, Wed, Thu, Fri, Sat, Sun]"),
            ("_capacity_1", r#"{"1":{"0800":3,"0900":6}}"#),
            ("_capacity_7", r#"{"7":{"0100":2,"0200":4,"0300":5}}"#),
            ("_capacity_add", r#"{"2026-04-06":{"0800":1}}"#),
        ]);
        // Monday 2026-03-30 08:10 CEST = 06:10Z.
        assert_eq!(c.per_bucket(at("2026-03-30T06:10:00Z")), 3);
        assert_eq!(c.per_bucket(at("2026-03-30T07:55:00Z")), 6);
        assert_eq!(
            c.per_bucket(at("2026-03-30T08:00:00Z")),
            0,
            "10:00 is unlisted"
        );
        // Easter Monday 2026-04-06 replaces Monday's hours.
        assert_eq!(c.per_bucket(at("2026-04-06T06:10:00Z")), 1);
        assert_eq!(c.per_bucket(at("2026-04-06T07:10:00Z")), 0);
        // Spring forward: 01:59 CET is 00:59Z, 03:00 CEST is 01:00Z (no 02:00 hour that day).
        assert_eq!(c.per_bucket(at("2026-03-29T00:55:00Z")), 2);
        assert_eq!(c.per_bucket(at("2026-03-29T01:00:00Z")), 5);
        // Fall back: 02:xx happens twice, and both are the 02:00 hour.
        assert_eq!(c.per_bucket(at("2026-10-25T00:30:00Z")), 4, "02:30 CEST");
        assert_eq!(c.per_bucket(at("2026-10-25T01:30:00Z")), 4, "02:30 CET");
    }

    #[test]
    fn bad_capacity_names_the_option() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("_timezone", "UTC"), ("_capacity_1", "lots")],
                "_capacity_1",
            ),
            (
                &[("_timezone", "UTC"), ("_capacity_2", r#"{"8":{"0800":1}}"#)],
                "_capacity_2",
            ),
            (
                &[("_timezone", "UTC"), ("_capacity_3", r#"{"3":{"0830":1}}"#)],
                "_capacity_3",
            ),
            (
                &[
                    ("_timezone", "UTC"),
                    ("_capacity_3", r#"{"3":{"0800":5000}}"#),
                ],
                "_capacity_3",
            ),
            (
                &[("_timezone", "UTC"), ("_capacity_add", r#"{"24-12":{}}"#)],
                "_capacity_add",
            ),
            (&[("_timezone", "UTC"), ("_capacity", "Mon")], "_capacity"),
            (&[("_capacity_1", r#"{"1":{}}"#)], "_timezone"),
        ];
        for (pairs, option) in cases {
            let err = Capacity::from_options(&options(pairs)).expect_err(option);
            assert_eq!(err.option, *option, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn rules_parse_and_name_bad_options() {
        let rules = ScheduleRules::from_options(&options(&[
            ("_business_hours_service", "office"),
            ("_capacity_service", "capacity"),
            ("_request_time_bucket", "15"),
            ("_max_request_by_time_bucket", "4"),
            ("_enable_reject_out_of_office_hours", "true"),
            ("_reject_future_desired_time", "1M"),
            ("_reject_past_desired_time", "30m"),
        ]))
        .unwrap();
        assert_eq!(rules.bucket_minutes, 15);
        assert_eq!(rules.max_per_bucket, Some(4));
        assert_eq!(rules.reject_future, Some(TimeLimit::Months(1)));
        assert_eq!(rules.reject_past, Some(TimeLimit::Secs(1800)));
        assert_eq!(
            ScheduleRules::from_options(&BTreeMap::new()).unwrap(),
            ScheduleRules::default()
        );
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("_request_time_bucket", "7")], "_request_time_bucket"),
            (&[("_request_time_bucket", "-5")], "_request_time_bucket"),
            (
                &[("_max_request_by_time_bucket", "many")],
                "_max_request_by_time_bucket",
            ),
            (
                &[("_enable_reject_out_of_office_hours", "yes")],
                "_enable_reject_out_of_office_hours",
            ),
            (
                &[("_enable_reject_out_of_office_hours", "true")],
                "_enable_reject_out_of_office_hours",
            ),
            (
                &[("_reject_future_desired_time", "1 month")],
                "_reject_future_desired_time",
            ),
            (
                &[("_reject_past_desired_time", "5q")],
                "_reject_past_desired_time",
            ),
        ];
        for (pairs, option) in cases {
            let err = ScheduleRules::from_options(&options(pairs)).expect_err(option);
            assert_eq!(err.option, *option, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn limits_months_and_seconds() {
        let now = at("2026-01-31T10:00:00Z");
        assert_eq!(
            TimeLimit::Months(1).after(now).to_iso(),
            "2026-02-28T10:00:00.000Z"
        );
        assert_eq!(
            TimeLimit::parse("x", "2w").unwrap().after(now).to_iso(),
            "2026-02-14T10:00:00.000Z"
        );
        let rules = ScheduleRules {
            reject_future: Some(TimeLimit::Secs(3600)),
            reject_past: Some(TimeLimit::Secs(60)),
            ..ScheduleRules::default()
        };
        assert!(rules.check_limits(at("2026-01-31T11:00:00Z"), now).is_ok());
        assert!(matches!(
            rules.check_limits(at("2026-01-31T11:00:01Z"), now),
            Err(Refusal::TooFarAhead { .. })
        ));
        assert!(rules.check_limits(at("2026-01-31T09:59:00Z"), now).is_ok());
        assert!(matches!(
            rules.check_limits(at("2026-01-31T09:58:59Z"), now),
            Err(Refusal::TooFarBack { .. })
        ));
    }

    #[test]
    fn free_slots_follow_office_hours_capacity_and_bookings() {
        let office = hours("Europe/Paris", &[("_bh_regular1", "Mon-Fri 08:00-09:00")]);
        let c = capacity(&[
            ("_timezone", "Europe/Paris"),
            ("_capacity_1", r#"{"1":{"0800":2}}"#),
        ]);
        let rules = ScheduleRules {
            bucket_minutes: 15,
            ..ScheduleRules::default()
        };
        let monday = at("2026-03-30T06:00:00Z");
        let booked = |bucket: Timestamp| u32::from(bucket == at("2026-03-30T06:15:00Z")) * 2;
        let slots = rules.free_slots(
            Some(&office),
            Some(&c),
            (at("2026-03-30T00:00:00Z"), at("2026-03-31T00:00:00Z")),
            at("2026-03-29T12:00:00Z"),
            100,
            booked,
        );
        let shown: Vec<(String, u32)> = slots.iter().map(|(t, n)| (t.to_iso(), *n)).collect();
        assert_eq!(
            shown,
            [
                (monday.to_iso(), 2),
                ("2026-03-30T06:30:00.000Z".to_string(), 2),
                ("2026-03-30T06:45:00.000Z".to_string(), 2),
            ],
            "08:15 is fully booked; 09:00 is closed"
        );
        let first = rules.free_slots(
            Some(&office),
            Some(&c),
            (at("2026-03-30T00:00:00Z"), at("2026-03-31T00:00:00Z")),
            at("2026-03-30T06:20:00Z"),
            1,
            |_| 0,
        );
        assert_eq!(
            first,
            [(at("2026-03-30T06:30:00Z"), 2)],
            "from now, at most one"
        );
    }

    /// The walk over a window's buckets answers what the straightforward computation answers
    /// bucket by bucket (`is_open`, `limit_at`, the bookings), on a fixed-seed random fill, in
    /// zones with both changes, a half-hour offset and a half-hour change, with `_capacity_add`
    /// and `_effective_dates`, for every bucket size.
    #[test]
    fn free_slots_agree_with_each_bucket_asked_alone() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(0x5107_5eed);
        let window = (at("2026-03-20T00:00:00Z"), at("2026-04-19T00:00:00Z"));
        let fall = (at("2026-10-20T00:00:00Z"), at("2026-11-09T00:00:00Z"));
        for zone in [
            "Europe/Paris",
            "America/New_York",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ] {
            let mut pairs: Vec<(String, String)> = vec![
                ("_timezone".into(), zone.into()),
                (
                    "_effective_dates1".into(),
                    "2026-03-22 to 2026-11-05".into(),
                ),
                (
                    "_capacity_add".into(),
                    r#"{"2026-04-06":{"0800":1,"2300":3},"2026-10-26":{"0000":7}}"#.into(),
                ),
            ];
            for day in 1..=7 {
                let hours: Vec<String> = (0..24)
                    .filter_map(|hour| {
                        // The count is drawn only for an hour that is kept (a `filter` then
                        // `map` would need the generator in both closures).
                        if rng.random_bool(0.8) {
                            Some(format!("\"{hour:02}00\":{}", rng.random_range(0..12)))
                        } else {
                            None
                        }
                    })
                    .collect();
                pairs.push((
                    format!("_capacity_{day}"),
                    format!("{{\"{day}\":{{{}}}}}", hours.join(",")),
                ));
            }
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let c = capacity(&pairs);
            let office = hours(
                zone,
                &[
                    ("_bh_regular1", "Mon-Fri 07:30-19:00"),
                    ("_bh_regular2", "Sat 22:00-02:00"),
                    ("_bh_add1", "2026-04-05 09:00-12:00"),
                ],
            );
            for bucket_minutes in BUCKET_MINUTES {
                for max_per_bucket in [None, Some(5)] {
                    let rules = ScheduleRules {
                        bucket_minutes,
                        max_per_bucket,
                        ..ScheduleRules::default()
                    };
                    let booked: BTreeMap<Timestamp, u32> = (0..2_000)
                        .map(|_| {
                            let span = window.1.as_millis() - window.0.as_millis();
                            let t = Timestamp::from_millis(
                                window.0.as_millis() + rng.random_range(0..span),
                            );
                            (rules.bucket_of(t), rng.random_range(0..8))
                        })
                        .collect();
                    let count = |bucket: Timestamp| booked.get(&bucket).copied().unwrap_or(0);
                    for (from, to) in [window, fall] {
                        for office in [None, Some(&office)] {
                            let now = Timestamp::from_millis(from.as_millis() + 7 * 60_000);
                            let fast = rules.free_slots(
                                office,
                                Some(&c),
                                (from, to),
                                now,
                                usize::MAX,
                                count,
                            );
                            let size = rules.bucket_millis();
                            let mut expected = Vec::new();
                            let mut start = now.as_millis().div_ceil(size) * size;
                            while start < to.as_millis() {
                                let bucket = Timestamp::from_millis(start);
                                if office.is_none_or(|office| office.is_open(bucket)) {
                                    let room = rules
                                        .limit_at(Some(&c), bucket)
                                        .unwrap_or(DEFAULT_MAX_PER_BUCKET)
                                        .saturating_sub(count(bucket));
                                    if room > 0 {
                                        expected.push((bucket, room));
                                    }
                                }
                                start += size;
                            }
                            assert_eq!(
                                fast, expected,
                                "{zone}, {bucket_minutes} minutes, max {max_per_bucket:?}, from {from}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_slot_is_refused_when_closed_or_full() {
        let office = hours("UTC", &[("_bh_regular1", "Mon-Fri 08:00-20:00")]);
        let rules = ScheduleRules {
            business_hours_service: Some("office".into()),
            reject_out_of_office_hours: true,
            max_per_bucket: Some(1),
            ..ScheduleRules::default()
        };
        let open = at("2026-03-30T08:02:00Z");
        assert!(rules.check_slot(Some(&office), None, open, true, 0).is_ok());
        assert_eq!(
            rules.check_slot(Some(&office), None, open, true, 1),
            Err(Refusal::BucketFull {
                bucket: at("2026-03-30T08:00:00Z"),
                limit: 1
            })
        );
        assert!(
            rules
                .check_slot(Some(&office), None, open, false, 1)
                .is_ok(),
            "an immediate callback takes no bucket"
        );
        assert_eq!(
            rules.check_slot(Some(&office), None, at("2026-03-29T10:00:00Z"), true, 0),
            Err(Refusal::OutOfOfficeHours)
        );
    }

    #[test]
    fn effective_dates_read_single_days_and_ranges_and_name_bad_ones() {
        let dates = EffectiveDates::from_options(&options(&[
            ("_effective_dates1", "2026-04-01 to 2026-04-30"),
            ("_effective_dates2", "2026-06-15"),
        ]))
        .unwrap();
        for (day, allowed) in [
            ("2026-03-31", false),
            ("2026-04-01", true),
            ("2026-04-30", true),
            ("2026-05-01", false),
            ("2026-06-15", true),
            ("2026-06-16", false),
        ] {
            assert_eq!(dates.allows(date(day)), allowed, "{day}");
        }
        assert!(
            EffectiveDates::default().allows(date("1999-01-01")),
            "none configured: every day"
        );
        let bad: &[(&str, &str)] = &[
            ("_effective_dates1", "April"),
            ("_effective_dates2", "2026-04-01 - 2026-04-30"),
            ("_effective_dates3", "2026-04-30 to 2026-04-01"),
            ("_effective_dates", "2026-02-30"),
        ];
        for (option, value) in bad {
            let err = EffectiveDates::from_options(&options(&[(option, value)])).expect_err(value);
            assert_eq!(err.option, *option, "{value}: {err}");
        }
    }

    #[test]
    fn office_hours_are_closed_outside_their_effective_dates() {
        let office = hours(
            "Europe/Paris",
            &[
                ("_bh_regular1", "Mon-Fri 19:00-07:00"),
                ("_bh_add1", "2026-05-02 10:00-12:00"),
                ("_effective_dates1", "2026-04-27 to 2026-04-30"),
            ],
        );
        assert!(office.periods_on(date("2026-04-24")).is_empty(), "before");
        assert_eq!(office.periods_on(date("2026-04-27")).len(), 1, "inside");
        assert!(office.periods_on(date("2026-05-01")).is_empty(), "after");
        assert!(
            office.periods_on(date("2026-05-02")).is_empty(),
            "an addition outside the dates is closed too"
        );
        // The night that starts on the last effective day runs to its end the next morning.
        assert!(
            office.is_open(at("2026-05-01T04:00:00Z")),
            "06:00 CEST on May 1st"
        );
        assert!(
            !office.is_open(at("2026-05-01T17:30:00Z")),
            "19:30 CEST on May 1st"
        );
    }

    #[test]
    fn capacity_takes_none_outside_its_effective_dates() {
        let c = capacity(&[
            ("_timezone", "Europe/Paris"),
            ("_capacity_1", r#"{"1":{"0800":3}}"#),
            ("_capacity_add", r#"{"2026-04-13":{"0800":7}}"#),
            ("_effective_dates1", "2026-04-06 to 2026-04-12"),
        ]);
        // Mondays at 08:10 CEST (06:10Z).
        assert_eq!(c.per_bucket(at("2026-03-30T06:10:00Z")), 0, "before");
        assert_eq!(c.per_bucket(at("2026-04-06T06:10:00Z")), 3, "inside");
        assert_eq!(
            c.per_bucket(at("2026-04-13T06:10:00Z")),
            0,
            "an added date outside the range takes none"
        );
    }

    #[test]
    fn capacity_hours_follow_the_zone_and_are_clipped_to_the_window() {
        let c = capacity(&[
            ("_timezone", "Europe/Paris"),
            ("_capacity_7", r#"{"7":{"0100":2,"0200":4,"0300":5}}"#),
        ]);
        let view = |from: &str, to: &str| -> Vec<(String, String, u32)> {
            c.hours(at(from), at(to), 100)
                .into_iter()
                .map(|(p, n)| (p.start.to_iso(), p.end.to_iso(), n))
                .collect()
        };
        // Spring forward, Sunday 2026-03-29: 01:00 CET, then 03:00 CEST (no 02:00 hour).
        assert_eq!(
            view("2026-03-29T00:30:00Z", "2026-03-29T02:00:00Z"),
            [
                (
                    "2026-03-29T00:30:00.000Z".into(),
                    "2026-03-29T01:00:00.000Z".into(),
                    2
                ),
                (
                    "2026-03-29T01:00:00.000Z".into(),
                    "2026-03-29T02:00:00.000Z".into(),
                    5
                ),
            ]
        );
        // Fall back, Sunday 2026-10-25: the 02:00 hour happens twice and is one period.
        assert_eq!(
            view("2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z"),
            [
                (
                    "2026-10-24T23:00:00.000Z".into(),
                    "2026-10-25T00:00:00.000Z".into(),
                    2
                ),
                (
                    "2026-10-25T00:00:00.000Z".into(),
                    "2026-10-25T02:00:00.000Z".into(),
                    4
                ),
                (
                    "2026-10-25T02:00:00.000Z".into(),
                    "2026-10-25T03:00:00.000Z".into(),
                    5
                ),
            ]
        );
        assert_eq!(
            c.hours(at("2026-03-29T00:00:00Z"), at("2026-03-30T00:00:00Z"), 3)
                .len(),
            3
        );
    }

    #[test]
    fn wall_times_are_read_and_written_in_a_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        for (text, expected) in [
            ("2026-03-30T08:15:00.000", "2026-03-30T06:15:00.000Z"),
            ("2026-03-30T08:15:00", "2026-03-30T06:15:00.000Z"),
            ("2026-03-30T08:15", "2026-03-30T06:15:00.000Z"),
            // 02:30 does not exist on the spring-forward day: the first instant after the gap.
            ("2026-03-29T02:30:00", "2026-03-29T01:00:00.000Z"),
        ] {
            assert_eq!(
                parse_wall_time(paris, text).map(|t| t.to_iso()),
                Some(expected.to_string()),
                "{text}"
            );
        }
        assert_eq!(parse_wall_time(paris, "tomorrow"), None);
        assert_eq!(
            format_in(paris, at("2026-10-25T00:30:00Z")),
            "2026-10-25T02:30:00.000+02:00"
        );
        assert_eq!(
            format_in(paris, at("2026-10-25T01:30:00Z")),
            "2026-10-25T02:30:00.000+01:00"
        );
    }

    #[test]
    fn open_periods_agree_with_is_open_at_every_five_minutes_across_both_changes() {
        let office = hours(
            "Europe/Paris",
            &[
                ("_bh_regular1", "Mon-Fri 08:00-20:00"),
                ("_bh_regular2", "Sat-Sun 19:00-03:00"),
                ("_bh_regular3", "Sun 01:00-04:00"),
                ("_holiday1", "2026-03-30"),
            ],
        );
        for (from, to) in [
            ("2026-03-27T00:00:00Z", "2026-04-01T00:00:00Z"),
            ("2026-10-23T00:00:00Z", "2026-10-27T00:00:00Z"),
        ] {
            let (from, to) = (at(from), at(to));
            let open = office.open_periods(from, to);
            assert!(
                open.windows(2).all(|w| w[0].end < w[1].start),
                "disjoint and in order: {open:?}"
            );
            let mut t = from;
            while t < to {
                assert_eq!(
                    open.iter().any(|p| p.contains(t)),
                    office.is_open(t),
                    "{}",
                    t.to_iso()
                );
                t = t.plus_secs(300);
            }
        }
    }
}
