//! Group commit: durable acknowledgement shared by concurrent requests, and the free-space
//! watch of the database's filesystem.
//!
//! Each write takes a ticket ([`Committer::ticket`], numbered in the order writes end) and its
//! request waits with [`Committer::wait_durable`] for the flush that covers it. One thread takes
//! every waiter queued so far, runs a single `db.flush()` for all of them, then (with
//! [`SyncMode::Device`]) `fdatasync`s the database's files, then answers them together. The
//! thread notes the last ticket issued before each flush, so a request whose ticket a finished
//! flush already covers (a second write of the same unit of work, after the first waited) does
//! not wait at all. Never
//! `flush_async` from many tasks: sled 0.34.7 deadlocks with 7 or more in flight (sled issue
//! #1308). A write made before its waiter was queued is covered by the next flush, because the
//! thread only starts a flush after taking the waiter.
//!
//! sled's `flush()` ends in `sync_file_range`, which survives a crash of the process but not a
//! power cut: it neither flushes the device's cache nor writes the metadata of a file that
//! grew, and sled's own `fsync` runs only every 500 ms. So the committer keeps the log (`db`)
//! open read-only and `fdatasync`s it after each flush; files sled creates later (`snap.*`
//! snapshots, `blobs/*`) are synced once when they appear, and their directory with them.
//!
//! The same thread measures the free space of the filesystem (one `fstatvfs`) after a flush
//! and when idle, at most every [`SPACE_CHECK_EVERY`], and publishes it in a [`SpaceGauge`]
//! that the store's write paths read: no request pays for a system call.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::flush_stats::CommitStats;
use super::{StoreError, SyncMode};

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// How often the free space is measured at most (after flushes, and while idle so that
/// refused writes resume by themselves once space returns).
pub const SPACE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Tells the free bytes of the database's filesystem (injected in tests).
pub type SpaceProbe = Box<dyn FnMut() -> std::io::Result<u64> + Send>;

/// The last free-space measurement, shared by the committer (writer) and the store's write
/// paths (readers). Reading it is two atomic loads.
#[derive(Debug)]
pub struct SpaceGauge {
    /// Writes that add data are refused below this many free bytes (0: never).
    min_free_bytes: u64,
    /// Free bytes at the last measurement (`u64::MAX` before the first, or without a probe).
    free_bytes: AtomicU64,
    /// Whether the last measurement was below `min_free_bytes`.
    low: AtomicBool,
}

impl SpaceGauge {
    fn new(min_free_bytes: u64) -> Self {
        Self {
            min_free_bytes,
            free_bytes: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
        }
    }

    /// `Err(StoreError::LowSpace)` while the filesystem is nearly full.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.low.load(Ordering::Relaxed) {
            return Err(StoreError::LowSpace {
                free_bytes: self.free_bytes.load(Ordering::Relaxed),
                min_free_bytes: self.min_free_bytes,
            });
        }
        Ok(())
    }

    /// Records a measurement; returns whether the low state changed.
    fn record(&self, free_bytes: u64) -> bool {
        self.free_bytes.store(free_bytes, Ordering::Relaxed);
        let low = free_bytes < self.min_free_bytes;
        self.low.swap(low, Ordering::Relaxed) != low
    }
}

/// What the committer needs besides the database.
pub struct CommitOptions {
    /// Whether a flush is followed by `fdatasync` of the database's files.
    pub sync: SyncMode,
    /// The database directory (`None`: a temporary database, nothing synced or measured).
    pub dir: Option<PathBuf>,
    /// Where the free space comes from (`None`: from `fstatvfs` of `dir`, if any).
    pub probe: Option<SpaceProbe>,
    /// See [`SpaceGauge`].
    pub min_free_bytes: u64,
}

impl CommitOptions {
    /// Flushed to the operating system only, free space not watched (temporary databases).
    pub fn unwatched() -> Self {
        Self {
            sync: SyncMode::Os,
            dir: None,
            probe: None,
            min_free_bytes: 0,
        }
    }
}

/// Write tickets: the last issued, and the last a finished flush covers.
#[derive(Debug, Default)]
struct Tickets {
    issued: AtomicU64,
    durable: AtomicU64,
}

/// Handle to the committer thread. Dropping it lets the thread do a last flush and exit.
#[derive(Debug)]
pub struct Committer {
    tickets: Arc<Tickets>,
    queue: Mutex<Option<mpsc::Sender<Waiter>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Free space as last measured by the thread.
    pub space: Arc<SpaceGauge>,
    /// Flushes and syncs done, batch sizes and flush latencies.
    pub stats: Arc<CommitStats>,
}

impl Committer {
    /// Opens the files to sync, measures the free space once, and starts the committer
    /// thread for `db`.
    ///
    /// # Errors
    /// A file of the database cannot be opened or synced, or the thread cannot start.
    pub fn start(db: sled::Db, options: CommitOptions) -> Result<Self, StoreError> {
        let io = |err: std::io::Error| StoreError::from_io("starting the committer", err);
        let device = match (&options.dir, options.sync) {
            (Some(dir), SyncMode::Device) => Some(DeviceSync::open(dir).map_err(io)?),
            _ => None,
        };
        let probe = match (options.probe, &options.dir) {
            (Some(probe), _) => Some(probe),
            (None, Some(dir)) => Some(statvfs_probe(dir).map_err(io)?),
            (None, None) => None,
        };
        let space = Arc::new(SpaceGauge::new(options.min_free_bytes));
        let stats = Arc::new(CommitStats::default());
        let tickets = Arc::new(Tickets::default());
        let mut worker = Worker {
            tickets: tickets.clone(),
            db,
            device,
            probe,
            space: space.clone(),
            stats: stats.clone(),
            last_check: Instant::now(),
        };
        worker.measure();
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("sled-committer".into())
            .spawn(move || worker.run(rx))
            .map_err(io)?;
        Ok(Self {
            tickets,
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            space,
            stats,
        })
    }

    /// The ticket of a write that has just ended: the flush that starts after this call
    /// covers it.
    pub fn ticket(&self) -> u64 {
        self.tickets.issued.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until the write holding `ticket` is flushed (and, with [`SyncMode::Device`], on
    /// the device): at once if a finished flush covers it, else with the next batch.
    ///
    /// # Errors
    /// The flush or sync failed, or the store is shutting down.
    pub async fn wait_durable(&self, ticket: u64) -> Result<(), StoreError> {
        if self.tickets.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let sender = queue.as_ref().ok_or(StoreError::ShuttingDown)?;
            sender.send(tx).map_err(|_| StoreError::ShuttingDown)?;
        }
        rx.await.unwrap_or(Err(StoreError::ShuttingDown))
    }

    /// Stops taking waiters, lets the thread answer the last batch and joins it.
    fn stop(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The committer thread's state.
struct Worker {
    tickets: Arc<Tickets>,
    db: sled::Db,
    device: Option<DeviceSync>,
    probe: Option<SpaceProbe>,
    space: Arc<SpaceGauge>,
    /// Counts, batch sizes and flush latencies, for the benchmark, `/metrics` and the
    /// console's Health page.
    stats: Arc<CommitStats>,
    last_check: Instant,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Waiter>) {
        loop {
            match rx.recv_timeout(SPACE_CHECK_EVERY) {
                Ok(first) => {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let started = Instant::now();
                    // Every write that took its ticket before this line has ended: the flush
                    // covers it.
                    let covered = self.tickets.issued.load(Ordering::SeqCst);
                    let result = self.commit();
                    if result.is_ok() {
                        self.tickets.durable.fetch_max(covered, Ordering::SeqCst);
                    }
                    let ended = Instant::now();
                    let size = batch.len();
                    if let Err(err) = &result {
                        tracing::error!(error = %err, "flushing the database failed");
                    }
                    for waiter in batch {
                        // The request may have gone away (client disconnected); nothing to
                        // tell then.
                        let _ = waiter.send(result.clone());
                    }
                    // Booked after the answers, so that the waiters do not wait for it.
                    self.stats.flushed(size, ended, ended - started);
                }
                // Idle: only the free space to look at.
                Err(RecvTimeoutError::Timeout) => {}
                // Every sender is gone: the store is closing.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.last_check.elapsed() >= SPACE_CHECK_EVERY {
                self.measure();
            }
        }
        if let Err(err) = self.commit() {
            tracing::error!(error = %err, "final flush of the database failed");
        }
    }

    /// One flush, then the device syncs.
    fn commit(&mut self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        if let Some(device) = &mut self.device {
            let syncs = device
                .sync()
                .map_err(|err| StoreError::from_io("syncing the database to the device", err))?;
            self.stats.device_syncs.fetch_add(syncs, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Measures the free space and publishes it; logs when writes stop or resume.
    fn measure(&mut self) {
        self.last_check = Instant::now();
        let Some(probe) = &mut self.probe else {
            return;
        };
        match probe() {
            Ok(free) => {
                if self.space.record(free) {
                    if self.space.check().is_err() {
                        tracing::error!(
                            free_bytes = free,
                            min_free_bytes = self.space.min_free_bytes,
                            "the database's disk is nearly full: writes that add data are refused (503) until space is freed"
                        );
                    } else {
                        tracing::warn!(
                            free_bytes = free,
                            "the database's disk has room again: writes are accepted"
                        );
                    }
                }
            }
            // Keep the last state: a probe that fails says nothing about the disk.
            Err(err) => tracing::warn!(error = %err, "cannot measure the free space"),
        }
    }
}

/// Free bytes available to callbackd (`f_bavail`, not the root-reserved `f_bfree`) of the
/// filesystem holding `dir`, from a handle opened once.
fn statvfs_probe(dir: &Path) -> std::io::Result<SpaceProbe> {
    let handle = File::open(dir)?;
    Ok(Box::new(move || {
        let stat = rustix::fs::fstatvfs(&handle)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }))
}

/// The database's files, kept open read-only, synced after each flush.
struct DeviceSync {
    /// sled's log: every write lands here.
    log: File,
    /// The database directory and its `blobs/`, watched for files sled creates.
    dirs: Vec<WatchedDir>,
    /// Files of the watched directories already synced once (write-once files: snapshots,
    /// blobs, `conf`).
    synced: HashSet<PathBuf>,
}

struct WatchedDir {
    path: PathBuf,
    handle: File,
    /// Modification time at the last scan.
    seen: Option<SystemTime>,
}

impl DeviceSync {
    /// Opens the log and the directories, and syncs what exists now (the parent directory
    /// too: it holds the database directory's own entry).
    fn open(dir: &Path) -> std::io::Result<Self> {
        let log = File::open(dir.join("db"))?;
        let mut dirs = vec![WatchedDir::open(dir.to_path_buf())?];
        let blobs = dir.join("blobs");
        if blobs.is_dir() {
            dirs.push(WatchedDir::open(blobs)?);
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        let mut device = Self {
            log,
            dirs,
            synced: HashSet::new(),
        };
        device.sync()?;
        Ok(device)
    }

    /// `fdatasync` of the log, then of any file created since the last call and of its
    /// directory. Returns the number of syncs made.
    fn sync(&mut self) -> std::io::Result<u64> {
        self.log.sync_data()?;
        let mut syncs = 1;
        for dir in &mut self.dirs {
            let modified = dir.handle.metadata()?.modified()?;
            // Timestamps are coarse (a clock tick): a change within the last second may have
            // been followed by another with the same time, so look again until it is older.
            let settled = SystemTime::now()
                .duration_since(modified)
                .is_ok_and(|age| age > Duration::from_secs(1));
            if dir.seen == Some(modified) && settled {
                continue;
            }
            let mut present = HashSet::new();
            let mut created = false;
            for entry in std::fs::read_dir(&dir.path)? {
                let entry = entry?;
                let path = entry.path();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // `db` is synced above; `*.generating` is a snapshot being written, synced by
                // sled and renamed when done.
                if name == "db" || name.ends_with(".generating") || !entry.file_type()?.is_file() {
                    continue;
                }
                if !self.synced.contains(&path) {
                    match File::open(&path) {
                        Ok(file) => file.sync_data()?,
                        // Removed meanwhile (an old snapshot, a collected blob).
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(err) => return Err(err),
                    }
                    syncs += 1;
                    created = true;
                }
                present.insert(path);
            }
            let removed = self
                .synced
                .iter()
                .any(|p| p.parent() == Some(&dir.path) && !present.contains(p));
            self.synced.retain(|p| p.parent() != Some(&dir.path));
            self.synced.extend(present);
            if created || removed || dir.seen.is_none() {
                dir.handle.sync_all()?;
                syncs += 1;
            }
            dir.seen = Some(modified);
        }
        Ok(syncs)
    }
}

impl WatchedDir {
    fn open(path: PathBuf) -> std::io::Result<Self> {
        Ok(Self {
            handle: File::open(&path)?,
            path,
            seen: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_refuses_below_the_minimum_and_clears_when_space_returns() {
        let gauge = SpaceGauge::new(100);
        assert!(gauge.check().is_ok(), "nothing measured yet");

        assert!(gauge.record(99), "becomes low");
        let refused = gauge.check().unwrap_err();
        assert!(
            matches!(
                refused,
                StoreError::LowSpace {
                    free_bytes: 99,
                    min_free_bytes: 100
                }
            ),
            "{refused:?}"
        );
        assert!(!gauge.record(50), "still low: no change to log");
        assert!(gauge.record(100), "room again");
        assert!(gauge.check().is_ok());
    }

    #[test]
    fn device_sync_syncs_the_log_and_picks_up_files_created_later() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let mut device = DeviceSync::open(dir.path()).unwrap();
        db.insert(b"k", b"v").unwrap();
        db.flush().unwrap();
        assert_eq!(device.sync().unwrap(), 1, "just the log: nothing new");

        std::fs::write(dir.path().join("snap.0000000000000001"), b"x").unwrap();
        let syncs = device.sync().unwrap();

        assert_eq!(syncs, 3, "the log, the new snapshot and the directory");
        assert!(device
            .synced
            .contains(&dir.path().join("snap.0000000000000001")));
    }
}
