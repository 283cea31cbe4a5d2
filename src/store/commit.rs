//! Group commit: durable acknowledgement shared by concurrent requests.
//!
//! A request that changed data calls [`Committer::wait_durable`] after its write. One thread
//! takes every waiter queued so far, runs a single `db.flush()` for all of them, then answers
//! them together. Never `flush_async` from many tasks: sled 0.34.7 deadlocks with 7 or more in
//! flight (sled issue #1308). A write made before its waiter was queued is covered by the next
//! flush, because the thread only starts a flush after taking the waiter.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::flush_stats::CommitStats;
use super::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the committer thread. Dropping it lets the thread do a last flush and exit.
#[derive(Debug)]
pub struct Committer {
    queue: Mutex<Option<mpsc::Sender<Waiter>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    /// Starts the committer thread for `db`; it books every flush in `stats`.
    pub fn start(db: sled::Db, stats: Arc<CommitStats>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("sled-committer".into())
            .spawn(move || run(db, rx, &stats))
            .map_err(|err| StoreError::Io(err.to_string()))?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Waits until everything written before this call is flushed to the operating system.
    ///
    /// # Errors
    /// The flush failed, or the store is shutting down.
    pub async fn wait_durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let sender = queue.as_ref().ok_or(StoreError::ShuttingDown)?;
            sender.send(tx).map_err(|_| StoreError::ShuttingDown)?;
        }
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Flush(message)),
            Err(_) => Err(StoreError::ShuttingDown),
        }
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

fn run(db: sled::Db, rx: mpsc::Receiver<Waiter>, stats: &CommitStats) {
    // `recv` returns Err once every sender is gone: the store is closing.
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let started = Instant::now();
        let result = db.flush().map(|_| ()).map_err(|err| err.to_string());
        let ended = Instant::now();
        let size = batch.len();
        if let Err(message) = &result {
            tracing::error!(error = %message, "flushing the database failed");
        }
        for waiter in batch {
            // The request may have gone away (client disconnected); nothing to tell then.
            let _ = waiter.send(result.clone());
        }
        // Booked after the answers, so that the waiters do not wait for the bookkeeping.
        stats.flushed(size, ended, ended - started);
    }
    if let Err(err) = db.flush() {
        tracing::error!(error = %err, "final flush of the database failed");
    }
}
