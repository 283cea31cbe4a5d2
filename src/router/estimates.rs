//! The waiting-time estimates of one virtual queue, from its recent departures (services that
//! got an agent): the ETA of a waiting service (`check-queue-position`'s `eta`) and the queue's
//! EWT (the admin queues' `ewt`).
//!
//! - ETA: the position times the mean interval between the kept departures; unknown until two
//!   departures were seen.
//! - EWT: the mean wait of the kept departures; unknown until one was seen.
//!
//! Both are rounded to the nearest second and kept to the last [`DEPARTURES_KEPT`].

use std::collections::VecDeque;

use crate::domain::time::Timestamp;

/// How many departures per virtual queue the estimates look at.
pub(super) const DEPARTURES_KEPT: usize = 50;

/// One virtual queue's recent departures (its waiting services are in the lanes).
#[derive(Debug, Clone, Default)]
pub(super) struct Departures {
    /// When a service was reserved, and how long it had waited (ms); oldest first.
    kept: VecDeque<(Timestamp, u64)>,
}

impl Departures {
    /// A service left the queue at `at` after waiting `waited_ms`.
    pub(super) fn record(&mut self, at: Timestamp, waited_ms: u64) {
        self.kept.push_back((at, waited_ms));
        while self.kept.len() > DEPARTURES_KEPT {
            self.kept.pop_front();
        }
    }

    /// Seconds until the service at 1-based `position` gets an agent, if two departures were
    /// seen.
    pub(super) fn eta_secs(&self, position: usize) -> Option<u64> {
        let (first, _) = self.kept.front()?;
        let (last, _) = self.kept.back()?;
        let intervals = self.kept.len().checked_sub(1).filter(|n| *n > 0)?;
        let span = u128::from(last.as_millis().saturating_sub(first.as_millis()));
        let eta_ms = span * position as u128 / intervals as u128;
        Some(u64::try_from(round_to_secs(eta_ms)).unwrap_or(u64::MAX))
    }

    /// The mean wait of the kept departures in seconds, if one was seen.
    pub(super) fn ewt_secs(&self) -> Option<u64> {
        if self.kept.is_empty() {
            return None;
        }
        let total: u128 = self
            .kept
            .iter()
            .map(|(_, waited)| u128::from(*waited))
            .sum();
        let mean = total / self.kept.len() as u128;
        Some(u64::try_from(round_to_secs(mean)).unwrap_or(u64::MAX))
    }
}

fn round_to_secs(millis: u128) -> u128 {
    (millis + 500) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn eta_needs_two_departures_and_scales_with_the_position() {
        let mut queue = Departures::default();
        assert_eq!(queue.eta_secs(1), None);
        assert_eq!(queue.ewt_secs(), None);
        queue.record(at(100), 4_000);
        assert_eq!(queue.eta_secs(1), None, "one departure gives no interval");
        assert_eq!(queue.ewt_secs(), Some(4));
        queue.record(at(130), 6_000);
        queue.record(at(160), 8_400);
        assert_eq!(queue.eta_secs(1), Some(30));
        assert_eq!(queue.eta_secs(3), Some(90));
        assert_eq!(
            queue.ewt_secs(),
            Some(6),
            "(4 + 6 + 8.4) / 3 = 6.13 rounds to 6"
        );
    }

    #[test]
    fn only_the_last_departures_are_kept() {
        let mut queue = Departures::default();
        // A slow start, then one departure per second for longer than is kept.
        queue.record(at(0), 600_000);
        for secs in 1000..1000 + DEPARTURES_KEPT as u64 {
            queue.record(at(secs), 1_000);
        }
        assert_eq!(queue.kept.len(), DEPARTURES_KEPT);
        assert_eq!(queue.eta_secs(10), Some(10), "the slow start is forgotten");
        assert_eq!(queue.ewt_secs(), Some(1));
    }

    #[test]
    fn half_seconds_round_up_and_huge_waits_do_not_overflow() {
        assert_eq!(round_to_secs(1_499), 1);
        assert_eq!(round_to_secs(1_500), 2);
        let mut queue = Departures::default();
        queue.record(at(0), u64::MAX);
        assert_eq!(queue.ewt_secs(), Some(u64::MAX / 1000 + 1));
    }
}
