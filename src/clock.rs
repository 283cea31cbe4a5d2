//! Time, injected, and the one timer every background loop waits on.
//!
//! Routing, expiry and idle control never read the system clock directly: they take a
//! [`Clock`], so that tests can move time forward by hand instead of sleeping. Loops wait
//! through [`Clock::sleep_until`] too (never through `tokio::time` directly), so a
//! [`ManualClock`] steps them: advancing it wakes every sleeper whose deadline it passed.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::domain::time::Timestamp;

/// A sleep handed out by [`Clock::sleep_until`]; it owns what it needs, so it can be held in
/// a `select!` next to borrows of the caller's state.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of the current time, and sleeps measured on it.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in milliseconds since the Unix epoch.
    fn now(&self) -> Timestamp;

    /// Resolves once this clock reads `deadline` or later (at once if it already does).
    fn sleep_until(&self, deadline: Timestamp) -> Sleep;
}

/// Sleeps until `deadline` on `clock`, or forever when there is none: the "next wake-up" arm
/// of a loop's `select!`, next to its nudge and its shutdown.
pub fn sleep_until(clock: &dyn Clock, deadline: Option<Timestamp>) -> Sleep {
    match deadline {
        Some(at) => clock.sleep_until(at),
        None => Box::pin(std::future::pending()),
    }
}

/// Sleeps for `period` measured on `clock`: the tick of a periodic sweep.
pub fn sleep_for(clock: &dyn Clock, period: Duration) -> Sleep {
    let millis = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    clock.sleep_until(Timestamp::from_millis(
        clock.now().as_millis().saturating_add(millis),
    ))
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Timestamp::from_millis(millis)
    }

    /// Sleeps on tokio time for the distance to `deadline` as read now. A wall clock that
    /// jumps later is not followed: the loops re-read their deadline after every wake-up.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let wait = deadline.as_millis().saturating_sub(self.now().as_millis());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that only moves when told to. Cloning shares the same time, and moving it wakes
/// the sleepers of every clone whose deadline was reached.
#[derive(Debug, Clone)]
pub struct ManualClock {
    /// The time in milliseconds; a watch so that sleepers see every move.
    millis: std::sync::Arc<watch::Sender<u64>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(Timestamp::from_millis(0))
    }
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            millis: std::sync::Arc::new(watch::Sender::new(start.as_millis())),
        }
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: u64) {
        self.advance_millis(secs.saturating_mul(1000));
    }

    /// Moves the clock forward by `millis` milliseconds.
    pub fn advance_millis(&self, millis: u64) {
        self.millis
            .send_modify(|now| *now = now.saturating_add(millis));
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        self.millis.send_replace(at.as_millis());
    }

    /// How many sleeps wait on this clock (any clone) right now: lets a test step a loop only
    /// once it is parked on its timer, without sleeping itself.
    pub fn sleepers(&self) -> usize {
        self.millis.receiver_count()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(*self.millis.borrow())
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let mut moves = self.millis.subscribe();
        let target = deadline.as_millis();
        Box::pin(async move {
            // The sender lives in every clone of the clock; if all are gone, time stops.
            if moves.wait_for(|now| *now >= target).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_manual_sleep_ends_when_the_clock_reaches_its_deadline_and_not_before() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let mut sleep = clock.sleep_until(Timestamp::from_millis(3_000));
        assert_eq!(clock.sleepers(), 1);

        clock.advance_secs(1);
        assert!(
            (&mut sleep).now_or_never().is_none(),
            "one second short of the deadline"
        );
        clock.advance_millis(1_000);
        assert!((&mut sleep).now_or_never().is_some(), "at the deadline");
        drop(sleep);
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_manual_sleep_for_a_past_deadline_ends_at_once() {
        let clock = ManualClock::new(Timestamp::from_millis(5_000));
        let sleep = clock.sleep_until(Timestamp::from_millis(4_000));
        tokio::time::timeout(Duration::from_millis(0), sleep)
            .await
            .expect("a past deadline does not wait");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_deadline_sleeps_until_dropped() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let mut sleep = sleep_until(&clock, None);
        clock.advance_secs(1_000_000);
        assert!((&mut sleep).now_or_never().is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_system_clock_does_not_wait_for_a_deadline_it_passed() {
        let clock = SystemClock;
        let past = Timestamp::from_millis(clock.now().as_millis() - 1);
        tokio::time::timeout(Duration::from_secs(5), clock.sleep_until(past))
            .await
            .expect("a passed deadline ends at once");
        let ahead = Timestamp::from_millis(clock.now().as_millis() + 60_000);
        assert!(clock.sleep_until(ahead).now_or_never().is_none());
    }
}
