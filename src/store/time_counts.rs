//! The count index of the time index: how many services `by_time` holds per hour of desired
//! time, per configured service and per state, kept in memory so that the console's "N
//! callbacks found" costs what a window's two edge hours hold, not what the window holds.
//!
//! It is built when the store opens, by one pass over `by_time` (`by_time::count_all`) (after the migrations, so a
//! database that migration 0008 indexed is counted too), and then moved by the store's own
//! write paths right after each transaction that changes a service's desired time, state or
//! configured service has committed: the transaction returns what it changed, and the count
//! follows, so a retried transaction counts once. Nothing is stored: a per-bucket counter kept
//! in the record's transaction would put one hot key in every create (conflicts under
//! concurrent creates), and a count in memory needs no format, migration or repair.
//!
//! Cells are signed: two writes that commit one after the other may move the count in the
//! other order (a create's +1 after the reschedule's -1 that followed it), and the sum comes
//! out right only if neither step is clipped. A reader that lands between the two sees the
//! moment's cell clamped at 0.
//!
//! This module only counts; `by_time.rs` splits a window into whole hours (counted here) and
//! the partial hours at its edges (scanned from `by_time`). Beside the hours it keeps the same
//! counts per five minutes, which a callback service's availability reads per time bucket.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

use crate::domain::service::CallbackState;
use crate::domain::time::Timestamp;

/// The width of a bucket: one hour of desired time. A window's count reads one bucket per
/// hour inside it and scans at most the two partial hours at its edges.
pub(super) const BUCKET_MS: u64 = 3_600_000;

/// The width of a slot: five minutes of desired time, the finest `_request_time_bucket`.
/// Every bucket size GMS allows (5 to 120 minutes) is a whole number of slots, and buckets and
/// slots are both aligned on the Unix epoch, so a bucket's count is the sum of its slots'.
pub(super) const SLOT_MS: u64 = 300_000;

/// States per cell row, in [`CallbackState::ALL`]'s order.
pub(super) const STATES: usize = CallbackState::ALL.len();

/// The bucket of a desired time.
pub(super) fn bucket_of(at: Timestamp) -> u64 {
    at.as_millis() / BUCKET_MS
}

/// Where a state's count sits in a row: its position in [`CallbackState::ALL`].
pub(super) fn slot(state: CallbackState) -> usize {
    match state {
        CallbackState::Scheduled => 0,
        CallbackState::Queued => 1,
        CallbackState::Routing => 2,
        CallbackState::Processing => 3,
        CallbackState::Completed => 4,
    }
}

/// What the count index knows of one service: where it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place<'a> {
    /// Its desired time (which bucket).
    pub desired_time: Timestamp,
    /// Its configured service.
    pub service_name: &'a str,
    /// Its state.
    pub state: CallbackState,
}

/// Which of the counts a window wants: the states (`None`: all) and configured services
/// (`None`: all) it selects, read into the counts' own terms once per query.
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    states: [bool; STATES],
    /// Positions in [`Counts::names`]; `None`: every name.
    names: Option<Vec<usize>>,
}

impl Wanted {
    /// Whether a row's state slot counts.
    fn state(&self, slot: usize) -> bool {
        self.states[slot]
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// Configured-service names in the order first seen; a bucket's rows are indexed by a
    /// name's position here (a few names, each stored once instead of once per bucket).
    names: Vec<String>,
    positions: HashMap<String, usize>,
    /// Per bucket, per name position, per state slot. A bucket whose cells are all 0 is
    /// removed, so a range over the map visits only hours that hold something.
    buckets: BTreeMap<u64, Vec<[i64; STATES]>>,
    /// The same per five-minute slot ([`SLOT_MS`]): what a callback service's availability
    /// reads per time bucket, so that a window of 30 days costs its 8,640 slots, not a scan of
    /// every service in it.
    slots: BTreeMap<u64, Vec<[i64; STATES]>>,
}

impl Counts {
    fn position(&mut self, name: &str) -> usize {
        if let Some(&at) = self.positions.get(name) {
            return at;
        }
        self.names.push(name.to_string());
        self.positions
            .insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn add(&mut self, place: &Place<'_>, delta: i64) {
        let name = self.position(place.service_name);
        let state = slot(place.state);
        let at = place.desired_time.as_millis();
        Self::add_cell(
            &mut self.buckets,
            bucket_of(place.desired_time),
            name,
            state,
            delta,
        );
        Self::add_cell(&mut self.slots, at / SLOT_MS, name, state, delta);
    }

    /// Moves one cell of `map`, removing its key when all its cells are back at 0.
    fn add_cell(
        map: &mut BTreeMap<u64, Vec<[i64; STATES]>>,
        key: u64,
        name: usize,
        state: usize,
        delta: i64,
    ) {
        let rows = map.entry(key).or_default();
        if rows.len() <= name {
            rows.resize(name + 1, [0; STATES]);
        }
        rows[name][state] += delta;
        if rows.iter().all(|row| row.iter().all(|n| *n == 0)) {
            map.remove(&key);
        }
    }

    /// The counts of `rows` that `wanted` selects, per state slot (0 where not wanted).
    fn matching(rows: &[[i64; STATES]], wanted: &Wanted) -> [u64; STATES] {
        let mut out = [0u64; STATES];
        let mut add = |row: &[i64; STATES]| {
            for (slot, n) in row.iter().enumerate() {
                if wanted.state(slot) {
                    // A cell is below 0 only between two commits' moves (see the module note).
                    out[slot] += u64::try_from(*n).unwrap_or(0);
                }
            }
        };
        match &wanted.names {
            None => rows.iter().for_each(&mut add),
            Some(names) => names
                .iter()
                .filter_map(|&name| rows.get(name))
                .for_each(&mut add),
        }
        out
    }
}

/// The count index (see the module note).
#[derive(Debug, Default)]
pub(super) struct TimeCounts {
    counts: Mutex<Counts>,
}

impl TimeCounts {
    /// Counts one more service at `place`, while the index is being built (no lock taken:
    /// the builder owns it).
    pub(super) fn count(&mut self, place: &Place<'_>) {
        self.counts
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .add(place, 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A committed write moved one service from `was` to `is` (`None`: absent).
    pub(super) fn moved(&self, was: Option<Place<'_>>, is: Option<Place<'_>>) {
        if was == is {
            return;
        }
        let mut counts = self.lock();
        if let Some(was) = was {
            counts.add(&was, -1);
        }
        if let Some(is) = is {
            counts.add(&is, 1);
        }
    }

    /// `states` (empty: all) and `services` (empty: all) in the counts' terms. A service the
    /// counts have never seen selects nothing; repeated states or names count once.
    pub(super) fn wanted(&self, states: &[CallbackState], services: &[String]) -> Wanted {
        let mut wanted_states = [states.is_empty(); STATES];
        for state in states {
            wanted_states[slot(*state)] = true;
        }
        let names = (!services.is_empty()).then(|| {
            let counts = self.lock();
            let mut names: Vec<usize> = services
                .iter()
                .filter_map(|name| counts.positions.get(name).copied())
                .collect();
            names.sort_unstable();
            names.dedup();
            names
        });
        Wanted {
            states: wanted_states,
            names,
        }
    }

    /// The services in the whole buckets from `first` up to `end` (exclusive; `None`: no
    /// end) that `wanted` selects, per state slot.
    pub(super) fn sum(&self, first: u64, end: Option<u64>, wanted: &Wanted) -> [u64; STATES] {
        let counts = self.lock();
        let mut total = [0u64; STATES];
        for rows in counts
            .buckets
            .range(range(first, end))
            .map(|(_, rows)| rows)
        {
            for (sum, n) in total.iter_mut().zip(Counts::matching(rows, wanted)) {
                *sum += n;
            }
        }
        total
    }

    /// The buckets from `first` up to `end` (exclusive; `None`: no end) that hold a service
    /// `wanted` selects, in time order, with how many they hold.
    pub(super) fn per_bucket(
        &self,
        first: u64,
        end: Option<u64>,
        wanted: &Wanted,
    ) -> Vec<(u64, u64)> {
        let counts = self.lock();
        counts
            .buckets
            .range(range(first, end))
            .filter_map(|(bucket, rows)| {
                let n: u64 = Counts::matching(rows, wanted).iter().sum();
                (n > 0).then_some((*bucket, n))
            })
            .collect()
    }

    /// The five-minute slots from `first` up to `end` (exclusive) that hold a service `wanted`
    /// selects, in time order, with how many they hold.
    pub(super) fn per_slot(&self, first: u64, end: u64, wanted: &Wanted) -> Vec<(u64, u64)> {
        let counts = self.lock();
        counts
            .slots
            .range(range(first, Some(end)))
            .filter_map(|(slot, rows)| {
                let n: u64 = Counts::matching(rows, wanted).iter().sum();
                (n > 0).then_some((*slot, n))
            })
            .collect()
    }

    /// Every non-zero cell as (bucket, service, state, count), in bucket and name order
    /// (tests compare it with a rebuild).
    #[cfg(test)]
    pub(super) fn cells(&self) -> Vec<(u64, String, CallbackState, i64)> {
        let counts = self.lock();
        let mut cells = Vec::new();
        for (bucket, rows) in &counts.buckets {
            let mut named: Vec<(&str, &[i64; STATES])> = rows
                .iter()
                .enumerate()
                .map(|(at, row)| (counts.names[at].as_str(), row))
                .collect();
            named.sort_by_key(|(name, _)| *name);
            for (name, row) in named {
                for state in CallbackState::ALL {
                    if row[slot(state)] != 0 {
                        cells.push((*bucket, name.to_string(), state, row[slot(state)]));
                    }
                }
            }
        }
        cells
    }
}

fn range(first: u64, end: Option<u64>) -> (Bound<u64>, Bound<u64>) {
    (
        Bound::Included(first),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(hour: u64, minute: u64, name: &str, state: CallbackState) -> Place<'_> {
        Place {
            desired_time: Timestamp::from_millis(hour * BUCKET_MS + minute * 60_000),
            service_name: name,
            state,
        }
    }

    fn wanted_all(counts: &TimeCounts) -> Wanted {
        counts.wanted(&[], &[])
    }

    #[test]
    fn slots_follow_the_order_of_all_states() {
        for (at, state) in CallbackState::ALL.into_iter().enumerate() {
            assert_eq!(slot(state), at, "{state}");
        }
    }

    #[test]
    fn moves_between_buckets_states_and_services_leave_nothing_behind() {
        let counts = TimeCounts::default();
        let queued = place(10, 5, "a", CallbackState::Queued);
        counts.moved(None, Some(queued));
        counts.moved(None, Some(place(10, 59, "a", CallbackState::Queued)));
        counts.moved(None, Some(place(11, 0, "b", CallbackState::Scheduled)));

        // A reschedule into the next hour, then a state change, then a delete.
        let moved = place(11, 30, "a", CallbackState::Queued);
        counts.moved(Some(queued), Some(moved));
        let completed = Place {
            state: CallbackState::Completed,
            ..moved
        };
        counts.moved(Some(moved), Some(completed));

        assert_eq!(
            counts.cells(),
            [
                (10, "a".to_string(), CallbackState::Queued, 1),
                (11, "a".to_string(), CallbackState::Completed, 1),
                (11, "b".to_string(), CallbackState::Scheduled, 1),
            ],
            "each service counted once, where it is now"
        );
        counts.moved(Some(completed), None);
        counts.moved(Some(place(11, 0, "b", CallbackState::Scheduled)), None);
        assert_eq!(
            counts.per_bucket(0, None, &wanted_all(&counts)),
            [(10, 1)],
            "an emptied bucket is gone"
        );
        counts.moved(Some(place(10, 59, "a", CallbackState::Queued)), None);
        assert!(counts.cells().is_empty());
    }

    #[test]
    fn slots_count_five_minutes_each_and_follow_moves() {
        let counts = TimeCounts::default();
        let early = place(10, 2, "a", CallbackState::Scheduled);
        counts.moved(None, Some(early));
        counts.moved(None, Some(place(10, 4, "a", CallbackState::Queued)));
        counts.moved(None, Some(place(10, 5, "a", CallbackState::Scheduled)));
        counts.moved(None, Some(place(10, 7, "b", CallbackState::Scheduled)));
        counts.moved(None, Some(place(10, 9, "a", CallbackState::Completed)));
        let first = 10 * BUCKET_MS / SLOT_MS;
        let active = counts.wanted(
            &[CallbackState::Scheduled, CallbackState::Queued],
            &["a".to_string()],
        );
        assert_eq!(
            counts.per_slot(first, first + 12, &active),
            [(first, 2), (first + 1, 1)],
            "10:00-10:05 holds two of a, 10:05-10:10 one (b and the completed one left out)"
        );
        // A reschedule into the next hour moves its slot too; an emptied slot is gone.
        counts.moved(
            Some(early),
            Some(place(11, 0, "a", CallbackState::Scheduled)),
        );
        assert_eq!(
            counts.per_slot(first, first + 13, &active),
            [(first, 1), (first + 1, 1), (first + 12, 1)]
        );
        assert_eq!(counts.per_slot(first + 2, first + 12, &active), []);
    }

    #[test]
    fn moves_applied_out_of_order_still_sum_right() {
        let counts = TimeCounts::default();
        let created = place(3, 0, "a", CallbackState::Scheduled);
        let rescheduled = place(7, 0, "a", CallbackState::Scheduled);
        // The reschedule committed after the create, but its move is applied first.
        counts.moved(Some(created), Some(rescheduled));
        assert_eq!(
            counts.sum(0, None, &wanted_all(&counts)),
            [1, 0, 0, 0, 0],
            "the moment's -1 reads as 0, not as -1"
        );
        counts.moved(None, Some(created));

        assert_eq!(
            counts.cells(),
            [(7, "a".to_string(), CallbackState::Scheduled, 1)]
        );
    }

    #[test]
    fn sums_and_buckets_select_states_and_services() {
        let counts = TimeCounts::default();
        for (hour, name, state) in [
            (1, "a", CallbackState::Queued),
            (1, "b", CallbackState::Queued),
            (2, "a", CallbackState::Completed),
            (2, "a", CallbackState::Completed),
            (4, "c", CallbackState::Routing),
        ] {
            counts.moved(None, Some(place(hour, 0, name, state)));
        }
        let a_or_c = ["a".to_string(), "c".to_string(), "a".to_string()];
        let table = [
            (counts.wanted(&[], &[]), 0, None, [0, 2, 1, 0, 2]),
            (counts.wanted(&[], &[]), 2, Some(4), [0, 0, 0, 0, 2]),
            (counts.wanted(&[], &a_or_c), 0, None, [0, 1, 1, 0, 2]),
            (
                counts.wanted(&[CallbackState::Queued, CallbackState::Queued], &[]),
                0,
                None,
                [0, 2, 0, 0, 0],
            ),
            (counts.wanted(&[], &["nope".to_string()]), 0, None, [0; 5]),
        ];
        for (at, (wanted, first, end, expected)) in table.into_iter().enumerate() {
            assert_eq!(counts.sum(first, end, &wanted), expected, "row {at}");
        }
        assert_eq!(
            counts.per_bucket(0, None, &counts.wanted(&[], &a_or_c)),
            [(1, 1), (2, 2), (4, 1)]
        );
        assert_eq!(
            counts.per_bucket(2, Some(5), &counts.wanted(&[CallbackState::Routing], &[])),
            [(4, 1)]
        );
    }
}
