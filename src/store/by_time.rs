//! The time index `by_time`: every stored service under `desired_time (u64 BE) ++ id`, so that
//! the console's time windows (Last 24 Hours ... Custom Date Range, issue 10) are a range scan
//! of what lies in the window instead of a read of every record.
//!
//! The value carries what the console filters on besides time (state, configured service,
//! customer number), so a window is filtered and counted from the index alone and only the
//! records of the page shown are read. Unlike `by_desired_time` (SCHEDULED services only, for
//! the router), it holds services in every state. Every write that creates, changes or deletes
//! a service keeps it in step in the record's own transaction (`IndexKeys` in `mod.rs`);
//! migration 0008 builds it for older databases.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::codec::{self, Versioned};
use super::{keys, time_counts, SledStore, StoreError, TimeIndex};
use crate::domain::service::{CallbackState, ServiceRecord};
use crate::domain::time::Timestamp;

/// Counts every entry of the time index `index` in one pass: the count index as the store
/// opens. An unreadable entry is left out of the counts (and logged): the pages that would
/// show it report it when they scan it; refusing to open the whole database for one index
/// entry would be worse.
///
/// # Errors
/// Storage failed.
pub(super) fn count_all(index: &sled::Tree) -> Result<time_counts::TimeCounts, StoreError> {
    let mut counts = time_counts::TimeCounts::default();
    let mut unreadable = 0u64;
    for item in index.iter() {
        let (key, value) = item?;
        match summary(&key, &value) {
            Ok(summary) => counts.count(&time_counts::Place {
                desired_time: summary.desired_time,
                service_name: summary.service_name,
                state: summary.state,
            }),
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            unreadable,
            "time index entries cannot be read: the console's counts leave them out"
        );
    }
    Ok(counts)
}

/// What the time index knows of one service, read without its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSummary<'a> {
    /// The service id.
    pub id: &'a str,
    /// Its desired time (the index's order).
    pub desired_time: Timestamp,
    /// Its state.
    pub state: CallbackState,
    /// Its configured service.
    pub service_name: &'a str,
    /// `_customer_number`, if it has one.
    pub customer_number: Option<&'a str>,
}

/// The stored value of a `by_time` entry, format 1: the store's own type, borrowed when read.
/// The state is its one-byte code ([`CallbackState::code`]), as in the `by_service_state`
/// keys.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TimeEntry<'a> {
    state: u8,
    service_name: &'a str,
    #[serde(borrow)]
    customer_number: Option<&'a str>,
}

impl Versioned for TimeEntry<'_> {
    const VERSION: u8 = 1;
}

/// The key and value of `record`'s `by_time` entry.
///
/// # Errors
/// The value cannot be encoded.
pub(super) fn entry_of(record: &ServiceRecord) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    entry(
        record.desired_time,
        &record.id,
        record.state,
        &record.service_name,
        record.customer_number.as_deref(),
    )
}

/// The key and value of a `by_time` entry from its parts (the migration reads them from a
/// frozen view of the record).
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn entry(
    desired_time: Timestamp,
    id: &str,
    state: CallbackState,
    service_name: &str,
    customer_number: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    let value = TimeEntry {
        state: state.code(),
        service_name,
        customer_number,
    };
    Ok((keys::time_key(desired_time, id), codec::write(&value)?))
}

/// Reads one `by_time` entry back.
pub(super) fn summary<'a>(
    key: &'a [u8],
    value: &'a [u8],
) -> Result<ServiceSummary<'a>, StoreError> {
    let unreadable = |reason: &str| StoreError::Corrupt {
        what: format!("time index entry {}", String::from_utf8_lossy(key)),
        reason: reason.to_string(),
    };
    let (desired_time, id) = keys::split_time_key(key).ok_or_else(|| unreadable("bad key"))?;
    let entry: TimeEntry<'a> = codec::read_borrowed(value, id)?;
    let state = CallbackState::from_code(entry.state).ok_or_else(|| unreadable("bad state"))?;
    Ok(ServiceSummary {
        id,
        desired_time,
        state,
        service_name: entry.service_name,
        customer_number: entry.customer_number,
    })
}

/// A window of the time index and what it selects besides time: the console's Callbacks
/// filter without its search.
#[derive(Debug, Clone, Copy)]
pub struct TimeSelection<'a> {
    /// Desired time at or after this (`None`: no bound).
    pub from: Option<Timestamp>,
    /// Desired time before this (`None`: no bound).
    pub to: Option<Timestamp>,
    /// Only these states (empty: all).
    pub states: &'a [CallbackState],
    /// Only these configured services (empty: all).
    pub services: &'a [String],
}

impl TimeSelection<'_> {
    /// Whether the entry `summary` is selected (its time aside: it was read from the window).
    pub fn keeps(&self, summary: &ServiceSummary<'_>) -> bool {
        (self.states.is_empty() || self.states.contains(&summary.state))
            && (self.services.is_empty() || self.services.iter().any(|n| n == summary.service_name))
    }
}

/// How many services a [`TimeSelection`] holds, per state (0 for states it does not select).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts(pub(super) [u64; time_counts::STATES]);

impl StateCounts {
    /// How many are in `state`.
    pub fn of(&self, state: CallbackState) -> u64 {
        self.0[time_counts::slot(state)]
    }

    /// How many in all.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A window in milliseconds, `[from, to)`, `to: None` for no end.
type Span = (u64, Option<u64>);

/// A window split into the partial hour at its start (`head`, scanned), the whole buckets
/// inside it (`whole`: first bucket, end bucket exclusive, `None` for no end; counted), and
/// the partial hour at its end (`tail`, scanned). A window inside one or two partial hours
/// is all `head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split {
    head: Option<Span>,
    whole: Option<(u64, Option<u64>)>,
    tail: Option<Span>,
}

fn split(from: Option<Timestamp>, to: Option<Timestamp>) -> Split {
    const W: u64 = time_counts::BUCKET_MS;
    let from = from.map_or(0, Timestamp::as_millis);
    let to = to.map(Timestamp::as_millis);
    let first_whole = from.div_ceil(W);
    let Some(first_start) = first_whole.checked_mul(W) else {
        // No whole hour fits before time runs out.
        return Split {
            head: Some((from, to)),
            whole: None,
            tail: None,
        };
    };
    let head = (from < first_start).then_some((from, Some(first_start)));
    match to {
        None => Split {
            head,
            whole: Some((first_whole, None)),
            tail: None,
        },
        Some(to) if to / W <= first_whole => Split {
            head: (from < to).then_some((from, Some(to))),
            whole: None,
            tail: None,
        },
        Some(to) => {
            let end = to / W;
            let tail_start = end * W;
            Split {
                head,
                whole: Some((first_whole, Some(end))),
                tail: (tail_start < to).then_some((tail_start, Some(to))),
            }
        }
    }
}

/// The span of bucket `bucket` (its end `None` past the last representable time).
fn bucket_span(bucket: u64) -> Span {
    let start = bucket * time_counts::BUCKET_MS;
    (start, start.checked_add(time_counts::BUCKET_MS))
}

impl TimeIndex for SledStore {
    fn count_by_time(&self, selection: &TimeSelection<'_>) -> Result<StateCounts, StoreError> {
        let parts = split(selection.from, selection.to);
        let counts = &self.inner.time_counts;
        let mut total = match parts.whole {
            Some((first, end)) => counts.sum(
                first,
                end,
                &counts.wanted(selection.states, selection.services),
            ),
            None => [0; time_counts::STATES],
        };
        for span in [parts.head, parts.tail].into_iter().flatten() {
            self.visit_span(span, &mut |summary| {
                if selection.keeps(summary) {
                    total[time_counts::slot(summary.state)] += 1;
                }
                ControlFlow::Continue(())
            })?;
        }
        Ok(StateCounts(total))
    }

    fn page_by_time(
        &self,
        selection: &TimeSelection<'_>,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let parts = split(selection.from, selection.to);
        let mut page = Vec::with_capacity(limit.min(1_024));
        if limit == 0 {
            return Ok(page);
        }
        let mut skip = offset;
        if let Some(head) = parts.head {
            if self.take_span(head, selection, &mut skip, &mut page, limit)? {
                return Ok(page);
            }
        }
        if let Some((first, end)) = parts.whole {
            let counts = &self.inner.time_counts;
            let wanted = counts.wanted(selection.states, selection.services);
            for (bucket, held) in counts.per_bucket(first, end, &wanted) {
                if skip >= held {
                    skip -= held;
                    continue;
                }
                if self.take_span(bucket_span(bucket), selection, &mut skip, &mut page, limit)? {
                    return Ok(page);
                }
                // Past the offset now (`skip` is left over only if the counts moved meanwhile).
                skip = 0;
            }
        }
        if let Some(tail) = parts.tail {
            self.take_span(tail, selection, &mut skip, &mut page, limit)?;
        }
        Ok(page)
    }

    fn count_per_slot(
        &self,
        from: Timestamp,
        to: Timestamp,
        service_name: &str,
        states: &[CallbackState],
    ) -> Vec<(Timestamp, u64)> {
        let counts = &self.inner.time_counts;
        let wanted = counts.wanted(states, &[service_name.to_string()]);
        let first = from.as_millis() / time_counts::SLOT_MS;
        let end = to.as_millis().div_ceil(time_counts::SLOT_MS);
        counts
            .per_slot(first, end, &wanted)
            .into_iter()
            .map(|(slot, n)| (Timestamp::from_millis(slot * time_counts::SLOT_MS), n))
            .collect()
    }

    fn visit_by_time(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        visit: &mut dyn FnMut(&ServiceSummary<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let start = from.map_or_else(Vec::new, |t| t.as_millis().to_be_bytes().to_vec());
        let index = &self.inner.trees.by_time;
        let entries = match to {
            // Every key of a time before `to` sorts before `to`'s eight bytes; one at `to`
            // (eight bytes, then its id) sorts after them.
            Some(to) => index.range(start..to.as_millis().to_be_bytes().to_vec()),
            None => index.range(start..),
        };
        for item in entries {
            let (key, value) = item?;
            if visit(&summary(&key, &value)?).is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl SledStore {
    /// Adds the ids of what `span` holds of `selection` to `page`, past the first `skip` of
    /// them (counted down), until `page` holds `limit`; true when it does.
    fn take_span(
        &self,
        span: Span,
        selection: &TimeSelection<'_>,
        skip: &mut u64,
        page: &mut Vec<String>,
        limit: usize,
    ) -> Result<bool, StoreError> {
        self.visit_span(span, &mut |summary| {
            if !selection.keeps(summary) {
                return ControlFlow::Continue(());
            }
            if *skip > 0 {
                *skip -= 1;
                return ControlFlow::Continue(());
            }
            page.push(summary.id.to_string());
            if page.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(page.len() >= limit)
    }

    /// [`Store::visit_by_time`] over a span in milliseconds.
    fn visit_span(
        &self,
        (from, to): Span,
        visit: &mut dyn FnMut(&ServiceSummary<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.visit_by_time(
            Some(Timestamp::from_millis(from)),
            to.map(Timestamp::from_millis),
            visit,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::CallbackReason;
    use crate::store::Store;

    fn record(id: &str, desired: u64) -> ServiceRecord {
        let mut record = ServiceRecord::new(
            id,
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(desired),
        );
        record.desired_time = Timestamp::from_millis(desired);
        record.expire_at = Timestamp::from_millis(desired + 1_000_000);
        record.customer_number = Some(format!("555{id}"));
        record
    }

    /// (id, desired time, state) of every entry in `[from, to)`.
    fn window(
        store: &Store,
        from: Option<u64>,
        to: Option<u64>,
    ) -> Vec<(String, u64, CallbackState)> {
        let mut seen = Vec::new();
        store
            .visit_by_time(
                from.map(Timestamp::from_millis),
                to.map(Timestamp::from_millis),
                &mut |s| {
                    seen.push((s.id.to_string(), s.desired_time.as_millis(), s.state));
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
        seen
    }

    #[test]
    fn the_stored_entry_has_a_fixed_layout() {
        let (key, value) = entry(
            Timestamp::from_millis(0x0102),
            "ab",
            CallbackState::Queued,
            "svc",
            Some("55"),
        )
        .unwrap();
        assert_eq!(key, [0, 0, 0, 0, 0, 0, 1, 2, b'a', b'b']);
        // Format byte, state code, then bincode's length-prefixed strings (Some is 1).
        assert_eq!(value, [1, 2, 3, b's', b'v', b'c', 1, 2, b'5', b'5']);
        let (_, none) = entry(
            Timestamp::from_millis(1),
            "x",
            CallbackState::Completed,
            "s",
            None,
        )
        .unwrap();
        assert_eq!(none, [1, 5, 1, b's', 0]);
        assert_eq!(
            summary(&key, &value).unwrap(),
            ServiceSummary {
                id: "ab",
                desired_time: Timestamp::from_millis(0x0102),
                state: CallbackState::Queued,
                service_name: "svc",
                customer_number: Some("55"),
            }
        );
        assert!(
            summary(&key, &[2, 2, 3]).is_err(),
            "another format is refused"
        );
    }

    #[test]
    fn a_window_holds_what_is_in_it_in_time_order() {
        let store = Store::open_temporary().unwrap();
        for (id, at) in [("c", 30), ("a", 10), ("b", 20), ("b2", 20), ("d", 40)] {
            store
                .insert_service(&record(id, at))
                .unwrap()
                .without_waiting();
        }
        let ids = |from, to| -> Vec<String> {
            window(&store, from, to).into_iter().map(|e| e.0).collect()
        };

        assert_eq!(
            ids(Some(20), Some(40)),
            ["b", "b2", "c"],
            "from inclusive, to exclusive"
        );
        assert_eq!(ids(None, Some(20)), ["a"]);
        assert_eq!(ids(Some(31), None), ["d"]);
        assert_eq!(ids(None, None).len(), 5);
        let mut first = Vec::new();
        store
            .visit_by_time(None, None, &mut |s| {
                first.push(s.id.to_string());
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(first, ["a"], "a break stops the scan");
    }

    #[test]
    fn changes_reschedules_and_deletions_keep_the_index_in_step() {
        let store = Store::open_temporary().unwrap();
        store
            .insert_service(&record("moved", 100))
            .unwrap()
            .without_waiting();
        store
            .insert_service(&record("done", 200))
            .unwrap()
            .without_waiting();
        store
            .insert_service(&record("expires", 300))
            .unwrap()
            .without_waiting();

        store
            .update_service::<()>("moved", |r| {
                r.reschedule(
                    Timestamp::from_millis(5_000),
                    Timestamp::from_millis(9_000_000),
                    Timestamp::from_millis(150),
                )
                .map_err(|_| ())
            })
            .unwrap()
            .without_waiting();
        store
            .update_service::<()>("done", |r| {
                r.cancel(
                    CallbackReason::CancelledByAdmin,
                    Timestamp::from_millis(250),
                )
                .map_err(|_| ())
            })
            .unwrap()
            .without_waiting();
        let mut due = record("expires", 300);
        due.expire_at = Timestamp::from_millis(400);
        store
            .update_service::<()>("expires", |r| {
                r.expire_at = due.expire_at;
                Ok(())
            })
            .unwrap()
            .without_waiting();
        let purged = store
            .purge_expired(Timestamp::from_millis(400), 100)
            .unwrap()
            .without_waiting();

        assert_eq!(purged.removed, ["expires"]);
        assert_eq!(
            window(&store, None, None),
            [
                ("done".to_string(), 200, CallbackState::Completed),
                ("moved".to_string(), 5_000, CallbackState::Scheduled),
            ],
            "rescheduled moved, cancelled shows its new state, expired gone"
        );
    }

    const HOUR: u64 = time_counts::BUCKET_MS;

    #[test]
    fn a_window_splits_into_edge_hours_and_whole_hours() {
        let at = |ms: u64| Some(Timestamp::from_millis(ms));
        let table = [
            // (from, to, head, whole, tail)
            (at(0), at(HOUR), None, Some((0, Some(1))), None),
            (
                at(HOUR / 2),
                at(HOUR + HOUR / 2),
                Some((HOUR / 2, Some(HOUR + HOUR / 2))),
                None,
                None,
            ),
            (
                at(HOUR / 2),
                at(2 * HOUR + 5),
                Some((HOUR / 2, Some(HOUR))),
                Some((1, Some(2))),
                Some((2 * HOUR, Some(2 * HOUR + 5))),
            ),
            (
                at(HOUR + 1),
                at(HOUR + 2),
                Some((HOUR + 1, Some(HOUR + 2))),
                None,
                None,
            ),
            (at(HOUR), at(HOUR), None, None, None),
            (at(5), at(3), None, None, None),
            (None, None, None, Some((0, None)), None),
            (at(7), None, Some((7, Some(HOUR))), Some((1, None)), None),
            (None, at(3 * HOUR), None, Some((0, Some(3))), None),
            (
                at(u64::MAX - 3),
                None,
                Some((u64::MAX - 3, None)),
                None,
                None,
            ),
        ];
        for (from, to, head, whole, tail) in table {
            assert_eq!(
                split(from, to),
                Split { head, whole, tail },
                "from {from:?} to {to:?}"
            );
        }
    }

    /// A service `id` at `desired` of configured service `name` in `state`.
    fn placed(id: &str, desired: u64, name: &str, state: CallbackState) -> ServiceRecord {
        let mut r = record(id, desired);
        r.service_name = name.to_string();
        r.state = state;
        r
    }

    fn selection<'a>(
        from: Option<u64>,
        to: Option<u64>,
        states: &'a [CallbackState],
        services: &'a [String],
    ) -> TimeSelection<'a> {
        TimeSelection {
            from: from.map(Timestamp::from_millis),
            to: to.map(Timestamp::from_millis),
            states,
            services,
        }
    }

    /// The ids `selection` holds, read the slow way: every entry of its window.
    fn walked(store: &Store, selection: &TimeSelection<'_>) -> Vec<(String, CallbackState)> {
        let mut ids = Vec::new();
        store
            .visit_by_time(selection.from, selection.to, &mut |s| {
                if selection.keeps(s) {
                    ids.push((s.id.to_string(), s.state));
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        ids
    }

    fn count(store: &Store, selection: &TimeSelection<'_>) -> u64 {
        store.count_by_time(selection).unwrap().total()
    }

    #[test]
    fn counts_follow_creates_reschedules_state_changes_and_expiry() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        let queued = CallbackState::Queued;
        store
            .insert_service(&placed("a", 10 * HOUR + 100, "x", queued))
            .unwrap()
            .without_waiting();
        store
            .insert_service(&placed("b", 10 * HOUR + 200, "y", queued))
            .unwrap()
            .without_waiting();
        store
            .insert_services(&[
                placed("c", 12 * HOUR, "x", CallbackState::Scheduled),
                placed("d", 13 * HOUR - 1, "x", CallbackState::Completed),
            ])
            .unwrap()
            .without_waiting();
        let everything = selection(None, None, &[], &[]);
        let hours_10_to_12 = selection(Some(10 * HOUR), Some(12 * HOUR), &[], &[]);
        assert_eq!(count(&store, &everything), 4);
        assert_eq!(count(&store, &hours_10_to_12), 2);

        // A reschedule moves "a" from hour 10 to hour 12 (a whole bucket to another).
        store
            .update_service::<()>("a", |r| {
                r.desired_time = Timestamp::from_millis(12 * HOUR + 5);
                Ok(())
            })
            .unwrap()
            .without_waiting();
        assert_eq!(count(&store, &hours_10_to_12), 1, "a left hours 10-11");
        let hour_12 = selection(Some(12 * HOUR), Some(13 * HOUR), &[], &[]);
        assert_eq!(count(&store, &hour_12), 3);

        // A state change moves "b" between states, not buckets.
        store
            .update_service::<()>("b", |r| {
                r.state = CallbackState::Routing;
                Ok(())
            })
            .unwrap()
            .without_waiting();
        let states = [queued];
        let queued_only = selection(None, None, &states, &[]);
        assert_eq!(
            walked(&store, &queued_only),
            [("a".to_string(), queued)],
            "only a is still QUEUED"
        );
        assert_eq!(count(&store, &queued_only), 1);
        let counts = store.count_by_time(&everything).unwrap();
        assert_eq!(
            (
                counts.of(CallbackState::Routing),
                counts.of(CallbackState::Scheduled),
                counts.of(CallbackState::Completed)
            ),
            (1, 1, 1)
        );

        // Expiry removes "d" (and only it).
        store
            .update_service::<()>("d", |r| {
                r.expire_at = Timestamp::from_millis(1);
                Ok(())
            })
            .unwrap()
            .without_waiting();
        store
            .purge_expired(Timestamp::from_millis(2), 100)
            .unwrap()
            .without_waiting();
        let services = ["x".to_string()];
        assert_eq!(count(&store, &selection(None, None, &[], &services)), 2);
        assert_eq!(
            engine.inner.time_counts.cells(),
            count_all(&engine.inner.trees.by_time).unwrap().cells(),
            "what was moved equals a count from scratch"
        );
    }

    #[test]
    fn pages_skip_whole_hours_and_agree_with_a_walk() {
        let store = Store::open_temporary().unwrap();
        // Hours 0-4, 7 services each, one hour with none; ids sort with time within an hour.
        let records: Vec<ServiceRecord> = [0u64, 1, 3, 4]
            .iter()
            .flat_map(|&hour| {
                (0..7).map(move |i| {
                    let state = if i % 2 == 0 {
                        CallbackState::Completed
                    } else {
                        CallbackState::Scheduled
                    };
                    placed(
                        &format!("h{hour}-{i}"),
                        hour * HOUR + i * 8 * 60_000,
                        "x",
                        state,
                    )
                })
            })
            .collect();
        store.insert_services(&records).unwrap().without_waiting();
        // Minutes 32-48 of hour 0 (scanned), hours 1-3 (counted), minutes 0-16 of hour 4.
        let window = selection(Some(HOUR / 2), Some(4 * HOUR + 20 * 60_000), &[], &[]);
        let all: Vec<String> = walked(&store, &window).into_iter().map(|e| e.0).collect();
        assert_eq!(all.len(), 3 + 7 + 7 + 3);
        assert_eq!(count(&store, &window), 20);

        for (offset, limit) in [(0, 5), (2, 3), (3, 7), (9, 10), (17, 10), (19, 5), (40, 5)] {
            let page = store.page_by_time(&window, offset, limit).unwrap();
            let start = (offset as usize).min(all.len());
            let end = (start + limit).min(all.len());
            assert_eq!(page, all[start..end], "offset {offset}, limit {limit}");
        }
        assert!(store.page_by_time(&window, 0, 0).unwrap().is_empty());
    }

    #[test]
    fn counts_and_pages_match_a_walk_on_random_data() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        let mut rng = StdRng::seed_from_u64(0x00c0_0a75);
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        let names = ["a", "b", "c"];
        let state_of = |rng: &mut StdRng| CallbackState::ALL[rng.random_range(0..5)];
        // Desired times over 40 hours, a quarter of them exactly on an hour.
        let time_of = |rng: &mut StdRng| {
            let hour = rng.random_range(0..40u64) * HOUR;
            if rng.random_range(0..4) == 0 {
                hour
            } else {
                hour + rng.random_range(0..HOUR)
            }
        };
        let mut chunk = Vec::new();
        for i in 0..1_500 {
            let mut r = placed(
                &format!("s{i:04}"),
                time_of(&mut rng),
                names[rng.random_range(0..3)],
                state_of(&mut rng),
            );
            r.expire_at = Timestamp::from_millis(1_000_000_000 + rng.random_range(0..2u64));
            if i % 3 == 0 {
                store.insert_service(&r).unwrap().without_waiting();
            } else {
                chunk.push(r);
            }
        }
        store.insert_services(&chunk).unwrap().without_waiting();
        // Reschedules and state changes, then expiry of about half of the services.
        for _ in 0..600 {
            let id = format!("s{:04}", rng.random_range(0..1_500));
            let (at, state) = (time_of(&mut rng), state_of(&mut rng));
            let move_it = rng.random_range(0..3);
            store
                .update_service::<()>(&id, |r| {
                    if move_it != 1 {
                        r.desired_time = Timestamp::from_millis(at);
                    }
                    if move_it != 0 {
                        r.state = state;
                    }
                    Ok(())
                })
                .unwrap()
                .without_waiting();
        }
        store
            .purge_expired(Timestamp::from_millis(1_000_000_000), 10_000)
            .unwrap()
            .without_waiting();
        assert_eq!(
            engine.inner.time_counts.cells(),
            count_all(&engine.inner.trees.by_time).unwrap().cells(),
            "what was moved equals a count from scratch"
        );

        let bound = |rng: &mut StdRng| match rng.random_range(0..4) {
            0 => None,
            1 => Some(rng.random_range(0..42u64) * HOUR),
            _ => Some(rng.random_range(0..42 * HOUR)),
        };
        for round in 0..300 {
            let (from, to) = (bound(&mut rng), bound(&mut rng));
            let states: Vec<CallbackState> = CallbackState::ALL
                .into_iter()
                .filter(|_| rng.random_range(0..3) == 0)
                .collect();
            let services: Vec<String> = names
                .iter()
                .chain(&["unknown"])
                .filter(|_| rng.random_range(0..3) == 0)
                .map(|n| n.to_string())
                .collect();
            let window = selection(from, to, &states, &services);
            let all = walked(&store, &window);

            let counts = store.count_by_time(&window).unwrap();
            for state in CallbackState::ALL {
                let expected = all.iter().filter(|e| e.1 == state).count() as u64;
                assert_eq!(
                    counts.of(state),
                    expected,
                    "round {round}: {state} in {from:?}..{to:?}, {states:?}, {services:?}"
                );
            }
            let offset = rng.random_range(0..=all.len() as u64 + 3);
            let limit = rng.random_range(1..60);
            let page = store.page_by_time(&window, offset, limit).unwrap();
            let start = (offset as usize).min(all.len());
            let end = (start + limit).min(all.len());
            let expected: Vec<String> = all[start..end].iter().map(|e| e.0.clone()).collect();
            assert_eq!(
                page, expected,
                "round {round}: page at {offset} of {limit} in {from:?}..{to:?}"
            );
        }
    }

    #[test]
    fn a_bulk_load_indexes_every_record() {
        let store = Store::open_temporary().unwrap();
        let records: Vec<ServiceRecord> =
            (0..250).map(|i| record(&format!("r{i:03}"), i)).collect();

        store.insert_services(&records).unwrap().without_waiting();

        assert_eq!(window(&store, None, None).len(), 250);
        assert_eq!(window(&store, Some(100), Some(110)).len(), 10);
        assert_eq!(store.service("r007").unwrap().unwrap(), records[7]);
        assert_eq!(
            store.active_counts()["chat-delay"],
            250,
            "counted as inserts are"
        );
    }
}
