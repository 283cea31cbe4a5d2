//! What the group committer measures about its flushes: batch sizes and flush latencies as
//! Prometheus histograms (read by `/metrics`), and the flush latencies of the last minute
//! (read by the console's Health page through [`Store::flush_latency_last_minute`]).
//!
//! Time here is [`std::time::Instant`], not the injected [`Clock`](crate::clock::Clock): a
//! flush's latency is a property of the disk, measured on the committer's own thread, and the
//! window must keep moving in tests that stand the domain clock still. The window itself takes
//! the instant as an argument, so its rules are tested without sleeping.
//!
//! [`Store::flush_latency_last_minute`]: super::Store::flush_latency_last_minute

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// How far back [`FlushWindow`] looks.
pub const FLUSH_WINDOW: Duration = Duration::from_secs(60);

/// Flushes kept in the window at most: at thousands of flushes a second the oldest are
/// dropped early, which leaves the percentiles of the most recent ones.
const WINDOW_CAPACITY: usize = 65_536;

/// Flush latency over the last minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushLatency {
    /// The median flush.
    pub p50: Duration,
    /// The 99th percentile flush.
    pub p99: Duration,
    /// Flushes in the window (0: none, and both percentiles are zero).
    pub count: usize,
}

/// Flush latencies of the last [`FLUSH_WINDOW`], oldest first.
#[derive(Debug, Default)]
pub struct FlushWindow {
    flushes: VecDeque<(Instant, Duration)>,
}

impl FlushWindow {
    /// Records a flush that ended at `at` and took `took`.
    pub fn record(&mut self, at: Instant, took: Duration) {
        self.forget_before(at);
        if self.flushes.len() >= WINDOW_CAPACITY {
            self.flushes.pop_front();
        }
        self.flushes.push_back((at, took));
    }

    /// The percentiles of the flushes in the minute before `now` (nearest rank).
    pub fn summary(&mut self, now: Instant) -> FlushLatency {
        self.forget_before(now);
        let mut took: Vec<Duration> = self.flushes.iter().map(|(_, took)| *took).collect();
        if took.is_empty() {
            return FlushLatency::default();
        }
        took.sort_unstable();
        let rank = |percent: usize| took[(took.len() * percent).div_ceil(100).max(1) - 1];
        FlushLatency {
            p50: rank(50),
            p99: rank(99),
            count: took.len(),
        }
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some((at, _)) = self.flushes.front() {
            if now.saturating_duration_since(*at) <= FLUSH_WINDOW {
                break;
            }
            self.flushes.pop_front();
        }
    }
}

/// The committer's measurements. Shared between the committer thread (writes) and readers.
#[derive(Debug)]
pub struct CommitStats {
    /// Group-commit flushes done (the benchmark's syncs per second with `sync = "os"`).
    pub flushes: AtomicU64,
    /// `fdatasync`/`fsync` calls made after flushes (0 with `sync = "os"`).
    pub device_syncs: AtomicU64,
    /// Waiters answered by one flush.
    pub batch_size: Histogram,
    /// Waiters answered by all flushes (with `flushes`, the mean batch size).
    pub waiters: AtomicU64,
    /// How long one `db.flush()` took, in seconds.
    pub flush_seconds: Histogram,
    /// Service records written (created or changed), booked by the store after each commit:
    /// with the creates counted, the writes a create costs (routing history is appended
    /// beside the record and is not counted).
    pub service_record_writes: Counter,
    /// The last minute of flushes. A std mutex: held for a push or a sort, never across IO.
    window: Mutex<FlushWindow>,
}

impl Default for CommitStats {
    fn default() -> Self {
        Self {
            flushes: AtomicU64::new(0),
            device_syncs: AtomicU64::new(0),
            waiters: AtomicU64::new(0),
            // 1, 2, 4, ... 4096 waiters.
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            // 50 µs to about 3.3 s.
            flush_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 17)),
            service_record_writes: Counter::default(),
            window: Mutex::default(),
        }
    }
}

impl CommitStats {
    /// Books one flush of `batch` waiters that ended at `at` and took `took`.
    pub fn flushed(&self, batch: usize, at: Instant, took: Duration) {
        self.batch_size.observe(batch as f64);
        self.waiters
            .fetch_add(batch as u64, std::sync::atomic::Ordering::Relaxed);
        self.flush_seconds.observe(took.as_secs_f64());
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(at, took);
    }

    /// The flush latency of the minute before `now`.
    pub fn last_minute(&self, now: Instant) -> FlushLatency {
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .summary(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_window_gives_nearest_rank_percentiles_of_the_last_minute_only() {
        let start = Instant::now();
        let mut window = FlushWindow::default();
        assert_eq!(window.summary(start), FlushLatency::default(), "empty");

        // 100 flushes of 1..=100 ms, one every 100 ms.
        for i in 1..=100u64 {
            window.record(start + ms(i * 100), ms(i));
        }
        let now = start + ms(10_000);
        assert_eq!(
            window.summary(now),
            FlushLatency {
                p50: ms(50),
                p99: ms(99),
                count: 100
            }
        );

        // 65 s after the start, the flushes that ended before 5 s are out of the window.
        let later = start + ms(65_000);
        let summary = window.summary(later);
        assert_eq!(summary.count, 51, "flushes at 5.0 s .. 10.0 s remain");
        assert_eq!(summary.p50, ms(75));
        assert_eq!(summary.p99, ms(100));

        assert_eq!(window.summary(start + ms(71_000)).count, 0, "all aged out");
    }

    #[test]
    fn one_flush_is_both_percentiles() {
        let start = Instant::now();
        let stats = CommitStats::default();
        stats.flushed(3, start, ms(7));
        assert_eq!(
            stats.last_minute(start),
            FlushLatency {
                p50: ms(7),
                p99: ms(7),
                count: 1
            }
        );
    }
}
