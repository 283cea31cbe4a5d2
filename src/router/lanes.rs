//! The priority lanes: which waiting service comes first, and how many come before one.
//!
//! It owns every index of the waiting services by order: one [`Lane`] per virtual queue (for
//! `check-queue-position` and the queue summaries, with the queue times for the oldest wait),
//! one per (target in S, media) (for the service a freed agent should take), and the count of
//! waiting services per target (`StatCallsWaiting`). It must not decide anything about
//! routing: the core says who waits, the lanes keep them in order.
//!
//! Invariant: a service is in its queue's lane, its age index, and the lane of every target of
//! its S for its media, or in none of them; a lane or count that becomes empty is dropped,
//! so `calls_waiting` is the number of waiting services whose S has the target.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::ranked::RankedSet;
use super::Id;
use crate::domain::time::Timestamp;

/// A service's priority in its virtual queue: `_urs_vq_priority`, growing by
/// `_urs_vq_priority_increment` every `_urs_vq_priority_increment_interval` seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Priority {
    /// `_urs_vq_priority`: the priority when queued.
    pub base: i64,
    /// `_urs_vq_priority_increment`: added once per interval waited.
    pub increment: i64,
    /// `_urs_vq_priority_increment_interval` in seconds; 0 means the priority never grows.
    pub interval_secs: u64,
}

impl Priority {
    /// The priority at `now` of a service queued at `queued_at`:
    /// `base + increment * floor(elapsed / interval)`, saturating instead of overflowing.
    pub fn at(&self, queued_at: Timestamp, now: Timestamp) -> i64 {
        if !self.grows() {
            return self.base;
        }
        let elapsed = now.as_millis().saturating_sub(queued_at.as_millis());
        let intervals = elapsed / self.interval_secs.saturating_mul(1000);
        let intervals = i64::try_from(intervals).unwrap_or(i64::MAX);
        self.base
            .saturating_add(self.increment.saturating_mul(intervals))
    }

    /// Whether the priority changes with time; services whose priority does not can be kept
    /// in ordered sets, the others are ordered at the moment they are compared.
    fn grows(&self) -> bool {
        self.increment != 0 && self.interval_secs != 0
    }
}

/// The order of waiting services: higher priority first, then earlier queued, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct OrderKey {
    rank: Reverse<i64>,
    queued_at: Timestamp,
    /// The service.
    pub(super) id: Id,
}

impl OrderKey {
    /// The key of a service in router order at `now`.
    pub(super) fn at(priority: &Priority, queued_at: Timestamp, id: &Id, now: Timestamp) -> Self {
        Self {
            rank: Reverse(priority.at(queued_at, now)),
            queued_at,
            id: id.clone(),
        }
    }
}

/// What the lanes need to know of a waiting service to place it, and to find it again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Waiter<'a> {
    /// The service.
    pub(super) id: &'a Id,
    /// `_urs_virtual_queue`.
    pub(super) queue: &'a str,
    /// `_media_type`.
    pub(super) media: &'a str,
    /// Its priority.
    pub(super) priority: Priority,
    /// When it entered the queue.
    pub(super) queued_at: Timestamp,
    /// The distinct targets of its S.
    pub(super) targets: &'a [Id],
}

impl Waiter<'_> {
    /// Its key at `now`.
    pub(super) fn key_at(&self, now: Timestamp) -> OrderKey {
        OrderKey::at(&self.priority, self.queued_at, self.id, now)
    }
}

/// A set of waiting services that answers "who is first at `now`" and "how many are before
/// this one at `now`" without looking at each of them.
///
/// Fixed priorities never change order, so they live in one counted set. A rising priority
/// (positive increment) keeps services of the same (base, increment, interval) in queue-time
/// order, since an earlier service has waited at least as many intervals: one counted set per
/// such class, whose first element is the class's best and in which the services ahead of a
/// key are a prefix. Falling priorities (negative increment) reorder services of one class
/// over time; they are rare, so they are compared one by one.
#[derive(Debug, Clone, Default)]
pub(super) struct Lane {
    fixed: RankedSet<OrderKey>,
    rising: HashMap<Priority, RankedSet<(Timestamp, Id)>>,
    falling: BTreeMap<(Timestamp, Id), Priority>,
}

impl Lane {
    /// Adds a service.
    pub(super) fn insert(&mut self, priority: Priority, queued_at: Timestamp, id: &Id) {
        if !priority.grows() {
            self.fixed
                .insert(OrderKey::at(&priority, queued_at, id, queued_at));
        } else if priority.increment > 0 {
            self.rising
                .entry(priority)
                .or_default()
                .insert((queued_at, id.clone()));
        } else {
            self.falling.insert((queued_at, id.clone()), priority);
        }
    }

    /// Takes a service out (given what it was inserted with).
    pub(super) fn remove(&mut self, priority: Priority, queued_at: Timestamp, id: &Id) {
        let at = (queued_at, id.clone());
        if !priority.grows() {
            self.fixed
                .remove(&OrderKey::at(&priority, queued_at, id, queued_at));
        } else if priority.increment > 0 {
            if let Some(class) = self.rising.get_mut(&priority) {
                class.remove(&at);
                if class.is_empty() {
                    self.rising.remove(&priority);
                }
            }
        } else {
            self.falling.remove(&at);
        }
    }

    /// How many services it holds.
    pub(super) fn len(&self) -> usize {
        self.fixed.len()
            + self.rising.values().map(RankedSet::len).sum::<usize>()
            + self.falling.len()
    }

    /// Whether it holds none.
    pub(super) fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.rising.is_empty() && self.falling.is_empty()
    }

    /// The first service in router order at `now`.
    pub(super) fn first_at(&self, now: Timestamp) -> Option<OrderKey> {
        let rising = self.rising.iter().filter_map(|(priority, class)| {
            let (queued_at, id) = class.first()?;
            Some(OrderKey::at(priority, *queued_at, id, now))
        });
        let falling = self
            .falling
            .iter()
            .map(|((queued_at, id), priority)| OrderKey::at(priority, *queued_at, id, now));
        self.fixed
            .first()
            .cloned()
            .into_iter()
            .chain(rising)
            .chain(falling)
            .min()
    }

    /// How many services come before `key` at `now`: O(log n) per fixed set and rising
    /// class, plus one comparison per falling-priority service.
    pub(super) fn ahead_of(&self, key: &OrderKey, now: Timestamp) -> usize {
        let fixed = self.fixed.rank(key);
        // Keys within a rising class grow along its queue-time order: count the prefix.
        let rising: usize = self
            .rising
            .iter()
            .map(|(priority, class)| {
                class.count_while(|(queued_at, id)| {
                    OrderKey::at(priority, *queued_at, id, now) < *key
                })
            })
            .sum();
        let falling = self
            .falling
            .iter()
            .filter(|((queued_at, id), priority)| {
                OrderKey::at(priority, *queued_at, id, now) < *key
            })
            .count();
        fixed + rising + falling
    }
}

/// One virtual queue's waiting services.
#[derive(Debug, Clone, Default)]
struct QueueLane {
    lane: Lane,
    /// Every waiting service by queue time, for the oldest wait.
    by_age: BTreeSet<(Timestamp, Id)>,
}

/// Every lane of the waiting services. See the module documentation.
#[derive(Debug, Clone, Default)]
pub(super) struct Lanes {
    /// By virtual queue name; a queue stays once it has had a waiting service.
    queues: BTreeMap<String, QueueLane>,
    /// By a target in S and the media: the best service for a freed agent is the first of
    /// one of the lanes of the targets it belongs to.
    by_target: HashMap<Id, HashMap<String, Lane>>,
    /// How many waiting services have each target in S (`StatCallsWaiting`).
    waiting_for: HashMap<Id, usize>,
}

impl Lanes {
    /// Places a waiting service in its queue's lane and the lanes of its targets.
    pub(super) fn insert(&mut self, waiter: &Waiter<'_>) {
        let id = waiter.id;
        let queue = self.queues.entry(waiter.queue.to_owned()).or_default();
        queue.by_age.insert((waiter.queued_at, id.clone()));
        queue.lane.insert(waiter.priority, waiter.queued_at, id);
        for key in waiter.targets {
            self.by_target
                .entry(key.clone())
                .or_default()
                .entry(waiter.media.to_owned())
                .or_default()
                .insert(waiter.priority, waiter.queued_at, id);
            *self.waiting_for.entry(key.clone()).or_default() += 1;
        }
    }

    /// Takes a service out of every lane it was placed in (given the same [`Waiter`]).
    pub(super) fn remove(&mut self, waiter: &Waiter<'_>) {
        let id = waiter.id;
        if let Some(queue) = self.queues.get_mut(waiter.queue) {
            queue.by_age.remove(&(waiter.queued_at, id.clone()));
            queue.lane.remove(waiter.priority, waiter.queued_at, id);
        }
        for key in waiter.targets {
            if let Some(by_media) = self.by_target.get_mut(key) {
                if let Some(lane) = by_media.get_mut(waiter.media) {
                    lane.remove(waiter.priority, waiter.queued_at, id);
                    if lane.is_empty() {
                        by_media.remove(waiter.media);
                    }
                }
                if by_media.is_empty() {
                    self.by_target.remove(key);
                }
            }
            if let Some(count) = self.waiting_for.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.waiting_for.remove(key);
                }
            }
        }
    }

    /// `(1-based position, total waiting)` of a placed service in its virtual queue at `now`.
    pub(super) fn position(&self, waiter: &Waiter<'_>, now: Timestamp) -> Option<(usize, usize)> {
        let lane = &self.queues.get(waiter.queue)?.lane;
        let ahead = lane.ahead_of(&waiter.key_at(now), now);
        Some((ahead + 1, lane.len()))
    }

    /// The first service at `now` among the lanes of `targets` for any of `medias`.
    pub(super) fn first_for<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a Id>,
        medias: &[&String],
        now: Timestamp,
    ) -> Option<OrderKey> {
        let mut best: Option<OrderKey> = None;
        for key in targets {
            let Some(by_media) = self.by_target.get(key) else {
                continue;
            };
            for media in medias {
                let first = by_media
                    .get(media.as_str())
                    .and_then(|lane| lane.first_at(now));
                if let Some(first) = first {
                    if best.as_ref().is_none_or(|b| first < *b) {
                        best = Some(first);
                    }
                }
            }
        }
        best
    }

    /// How many waiting services have the target in S.
    pub(super) fn calls_waiting(&self, key: &str) -> usize {
        self.waiting_for.get(key).copied().unwrap_or(0)
    }

    /// How many wait in one virtual queue now, and since when the oldest has waited.
    pub(super) fn queue(&self, name: &str) -> (usize, Option<Timestamp>) {
        self.queues.get(name).map_or((0, None), |queue| {
            let oldest = queue.by_age.first().map(|(queued_at, _)| *queued_at);
            (queue.lane.len(), oldest)
        })
    }

    /// Every virtual queue that has had a waiting service, by name: how many wait now, and
    /// since when the oldest has waited.
    #[cfg(test)]
    pub(super) fn queues(&self) -> impl Iterator<Item = (&str, usize, Option<Timestamp>)> {
        self.queues.iter().map(|(name, queue)| {
            let oldest = queue.by_age.first().map(|(queued_at, _)| *queued_at);
            (name.as_str(), queue.lane.len(), oldest)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(T0 + secs * 1000)
    }

    fn fixed(base: i64) -> Priority {
        Priority {
            base,
            ..Priority::default()
        }
    }

    fn growing(base: i64, increment: i64, interval_secs: u64) -> Priority {
        Priority {
            base,
            increment,
            interval_secs,
        }
    }

    /// Every service of `lane` at `now` in router order, by comparing them one by one: the
    /// model the lane's counted answers must agree with.
    fn model_order(services: &[(Priority, u64, Id)], now: Timestamp) -> Vec<OrderKey> {
        let mut keys: Vec<OrderKey> = services
            .iter()
            .map(|(p, queued, id)| OrderKey::at(p, at(*queued), id, now))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn positions_and_the_first_agree_with_sorting_every_service_at_that_moment() {
        // (priority, queued at): fixed, rising (two classes) and falling, mixed in one lane.
        let services: Vec<(Priority, u64, Id)> = [
            (fixed(5), 0),
            (fixed(5), 3),
            (fixed(0), 1),
            (fixed(9), 7),
            (growing(0, 2, 10), 0),
            (growing(0, 2, 10), 15),
            (growing(1, 1, 5), 4),
            (growing(20, -3, 10), 2),
            (growing(20, -3, 10), 30),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (p, q))| (p, q, Arc::from(format!("s{i}"))))
        .collect();
        let mut lane = Lane::default();
        for (priority, queued, id) in &services {
            lane.insert(*priority, at(*queued), id);
        }
        assert_eq!(lane.len(), services.len());
        for now in [30, 45, 60, 120, 600] {
            let order = model_order(&services, at(now));
            assert_eq!(
                lane.first_at(at(now)).as_ref(),
                order.first(),
                "first at {now}s"
            );
            for (expected, key) in order.iter().enumerate() {
                assert_eq!(
                    lane.ahead_of(key, at(now)),
                    expected,
                    "{} at {now}s",
                    key.id
                );
            }
        }
    }

    #[test]
    fn removing_what_was_inserted_empties_the_lane() {
        let ids: Vec<Id> = (0..4).map(|i| Arc::from(format!("s{i}"))).collect();
        let priorities = [fixed(1), growing(0, 1, 1), growing(0, -1, 1), fixed(1)];
        let mut lane = Lane::default();
        for (id, p) in ids.iter().zip(priorities) {
            lane.insert(p, at(1), id);
        }
        for (id, p) in ids.iter().zip(priorities) {
            lane.remove(p, at(1), id);
        }
        assert!(lane.is_empty(), "{lane:?}");
        assert_eq!(lane.first_at(at(5)), None);
    }

    #[test]
    fn lanes_count_each_target_once_per_service_and_drop_what_empties() {
        let (billing, sales): (Id, Id) = (Arc::from("Billing"), Arc::from("Sales"));
        let (a, b): (Id, Id) = (Arc::from("a"), Arc::from("b"));
        let both = [billing.clone(), sales.clone()];
        let only_sales = [sales.clone()];
        let first = Waiter {
            id: &a,
            queue: "VQ",
            media: "chat",
            priority: Priority::default(),
            queued_at: at(1),
            targets: &both,
        };
        let second = Waiter {
            id: &b,
            queued_at: at(2),
            targets: &only_sales,
            ..first
        };
        let mut lanes = Lanes::default();
        lanes.insert(&first);
        lanes.insert(&second);
        // (target, waiting for it)
        for (target, count) in [("Billing", 1), ("Sales", 2), ("Other", 0)] {
            assert_eq!(lanes.calls_waiting(target), count, "{target}");
        }
        assert_eq!(lanes.position(&second, at(3)), Some((2, 2)));
        let chat = "chat".to_owned();
        let best = lanes
            .first_for([&sales], &[&chat], at(3))
            .expect("a waiting service");
        assert_eq!(best.id, a, "the earlier queued first");
        let voice = "voice".to_owned();
        assert_eq!(
            lanes.first_for([&sales], &[&voice], at(3)),
            None,
            "no voice waits"
        );

        lanes.remove(&first);
        lanes.remove(&second);
        assert!(lanes.by_target.is_empty() && lanes.waiting_for.is_empty());
        let queues: Vec<_> = lanes.queues().collect();
        assert_eq!(
            queues,
            [("VQ", 0, None)],
            "the queue is still listed, empty"
        );
    }
}
