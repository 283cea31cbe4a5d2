//! Expiry: removes every service whose `desired_time + _ttl` has passed, with everything stored
//! for it, and every Storage API area and Notification API subscription past its time (their
//! own time indexes, scanned the same way). The job body ([`run_once`]) takes the time as an argument, so tests drive it with any
//! clock; [`schedule`] runs it on a tokio-cron-scheduler schedule, and start-up runs it once
//! to catch up after downtime.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::center::chat::ChatServer;
use crate::clock::Clock;
use crate::domain::time::Timestamp;
use crate::router::core::Event;
use crate::router::RouterHandle;
use crate::store::{Pending, Store, StoreError};
use crate::supervisor::Shutdown;

/// Services removed per storage batch.
pub(crate) const BATCH: usize = 1000;

/// What the expiry job counts for `/metrics`. Clones share the values.
#[derive(Debug, Clone, Default)]
pub struct ExpiryCounters {
    /// Runs that finished (successfully or not).
    pub runs: Counter,
    /// Services removed.
    pub removed: Counter,
    /// The last run, for the console's Health page (in memory: a restart forgets it, and
    /// start-up's catch-up run sets it again).
    pub last_run: std::sync::Arc<std::sync::Mutex<Option<ExpiryRun>>>,
}

/// One finished run of the expiry job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryRun {
    /// When it ran (the job's clock).
    pub at: Timestamp,
    /// Services it removed.
    pub removed: usize,
}

impl ExpiryCounters {
    /// Books one run that removed `removed` services.
    pub fn ran(&self, removed: usize) {
        self.runs.inc();
        self.removed.inc_by(removed as u64);
    }

    /// Books one run at `at` that removed `removed` services, and remembers it as the last.
    pub fn ran_at(&self, at: Timestamp, removed: usize) {
        self.ran(removed);
        if let Ok(mut last) = self.last_run.lock() {
            *last = Some(ExpiryRun { at, removed });
        }
    }

    /// The last finished run, if any.
    pub fn last(&self) -> Option<ExpiryRun> {
        self.last_run.lock().ok().and_then(|last| *last)
    }
}

/// Removes every service due at `now`. Work is proportional to the number due (an index range
/// scan), not to the number stored. Returns the ids removed.
///
/// # Errors
/// Storage failure (what was removed before it stays removed).
pub fn run_once(store: &Store, now: Timestamp) -> Result<Vec<String>, StoreError> {
    let mut removed = Vec::new();
    loop {
        // Not waited for: nobody is answered, and a purge a crash undoes is done again.
        let purged = store.purge_expired(now, BATCH)?.without_waiting();
        for id in &purged.removed {
            tracing::debug!(service_id = %id, "service expired and removed");
        }
        removed.extend(purged.removed);
        if purged.scanned < BATCH {
            break;
        }
    }
    if !removed.is_empty() {
        tracing::info!(removed = removed.len(), "expired services removed");
    }
    let areas = purge_all(|limit| {
        store
            .purge_expired_storage(now, limit)
            .map(Pending::without_waiting)
    })?;
    let subscriptions = purge_all(|limit| {
        store
            .purge_expired_subscriptions(now, limit)
            .map(Pending::without_waiting)
    })?;
    if areas + subscriptions > 0 {
        tracing::info!(
            areas,
            subscriptions,
            "expired storage areas and subscriptions removed"
        );
    }
    Ok(removed)
}

/// Runs `purge` in batches until nothing due is left; returns how many it removed.
fn purge_all(
    mut purge: impl FnMut(usize) -> Result<(usize, Vec<String>), StoreError>,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    loop {
        let (scanned, gone) = purge(BATCH)?;
        removed += gone.len();
        if scanned < BATCH {
            return Ok(removed);
        }
    }
}

/// Starts a scheduler running [`run_once`] on the cron `schedule` (six fields, with seconds).
///
/// # Errors
/// A bad cron expression or a scheduler failure, as text.
pub async fn schedule(
    store: Store,
    clock: Arc<dyn Clock>,
    router: RouterHandle,
    chat: ChatServer,
    counters: ExpiryCounters,
    schedule: &str,
) -> Result<JobScheduler, String> {
    let scheduler = JobScheduler::new()
        .await
        .map_err(|err| format!("cannot create the scheduler: {err}"))?;
    let job = Job::new_async(schedule, move |_id, _scheduler| {
        let store = store.clone();
        let clock = clock.clone();
        let router = router.clone();
        let chat = chat.clone();
        let counters = counters.clone();
        Box::pin(async move {
            let now = clock.now();
            // sled calls block; keep them off the async workers.
            match tokio::task::spawn_blocking(move || run_once(&store, now)).await {
                Ok(Ok(removed)) => {
                    counters.ran_at(now, removed.len());
                    for service in removed {
                        chat.forget(&service);
                        router.send(Event::Removed { service });
                    }
                }
                Ok(Err(err)) => {
                    counters.ran_at(now, 0);
                    tracing::error!(error = %err, "expiry run failed");
                }
                Err(err) => tracing::error!(error = %err, "expiry task panicked"),
            }
        })
    })
    .map_err(|err| format!("expiry_schedule `{schedule}` is not a valid cron expression: {err}"))?;
    scheduler
        .add(job)
        .await
        .map_err(|err| format!("cannot add the expiry job: {err}"))?;
    scheduler
        .start()
        .await
        .map_err(|err| format!("cannot start the scheduler: {err}"))?;
    Ok(scheduler)
}

/// Keeps the cron scheduler running until shutdown, then shuts it down (it runs its own
/// tasks on the wall clock; the job body reads the injected clock). Supervised like any
/// other task.
///
/// # Errors
/// The scheduler did not stop cleanly.
pub async fn supervise(mut scheduler: JobScheduler, mut shutdown: Shutdown) -> Result<(), String> {
    shutdown.wait().await;
    scheduler
        .shutdown()
        .await
        .map_err(|err| format!("the expiry scheduler did not stop cleanly: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::ServiceRecord;

    fn record(id: &str, expire_at: u64) -> ServiceRecord {
        let mut record = ServiceRecord::new(
            id,
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(0),
        );
        record.customer_number = Some("555".into());
        record.owner = Some("alice".into());
        record.expire_at = Timestamp::from_millis(expire_at);
        record
    }

    #[test]
    fn only_services_due_at_the_given_time_are_removed_with_their_indexes() {
        let store = Store::open_temporary().unwrap();
        for (id, at) in [("a", 10), ("b", 20), ("c", 30)] {
            store
                .insert_service(&record(id, at))
                .unwrap()
                .without_waiting();
        }

        let removed = run_once(&store, Timestamp::from_millis(20)).unwrap();

        assert_eq!(removed, ["a", "b"]);
        assert!(store.service("a").unwrap().is_none());
        assert!(store.service("b").unwrap().is_none());
        assert!(store.service("c").unwrap().is_some());
        let left: Vec<String> = store
            .services_by_customer("555", &|_| true, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, ["c"], "the customer index forgot the removed ones");
        let owned: Vec<String> = store
            .services_of_owner("alice", "chat-delay", &|_| true, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(owned, ["c"], "the owner index forgot the removed ones");
        assert_eq!(store.active_counts()["chat-delay"], 1);
        assert_eq!(
            run_once(&store, Timestamp::from_millis(20)).unwrap().len(),
            0,
            "nothing twice"
        );
    }

    #[test]
    fn a_rescheduled_service_is_not_removed_at_its_old_expiry() {
        let store = Store::open_temporary().unwrap();
        store
            .insert_service(&record("a", 10))
            .unwrap()
            .without_waiting();
        store
            .update_service("a", |r| {
                r.expire_at = Timestamp::from_millis(100);
                Ok::<(), ()>(())
            })
            .unwrap()
            .without_waiting();

        assert_eq!(
            run_once(&store, Timestamp::from_millis(50)).unwrap().len(),
            0
        );
        assert!(store.service("a").unwrap().is_some());
        assert_eq!(
            run_once(&store, Timestamp::from_millis(100)).unwrap().len(),
            1
        );
    }

    #[test]
    fn storage_areas_subscriptions_and_a_services_storage_expire_in_the_same_run() {
        use crate::domain::storage::{new_area, StorageEntry};
        let store = Store::open_temporary().unwrap();
        store
            .insert_service(&record("svc", 10))
            .unwrap()
            .without_waiting();
        let area = |id: &str, ttl| {
            new_area(
                id.into(),
                None,
                Timestamp::from_millis(0),
                ttl,
                vec![StorageEntry::text("k", "v")],
            )
            .unwrap()
        };
        store
            .put_service_storage(&area("svc", 1_000))
            .unwrap()
            .without_waiting();
        store
            .put_storage(&area("due", 1))
            .unwrap()
            .without_waiting();
        store
            .put_storage(&area("later", 100))
            .unwrap()
            .without_waiting();

        run_once(&store, Timestamp::from_millis(1_000)).unwrap();

        assert!(store.storage("due").unwrap().is_none());
        assert!(store.storage("later").unwrap().is_some());
        assert!(
            store.service_storage("svc").unwrap().is_none(),
            "a service's storage goes with it"
        );
    }

    #[test]
    fn more_than_one_batch_is_removed_in_one_run() {
        let store = Store::open_temporary().unwrap();
        for i in 0..(BATCH + 5) {
            store
                .insert_service(&record(&format!("s{i}"), 5))
                .unwrap()
                .without_waiting();
        }
        assert_eq!(
            run_once(&store, Timestamp::from_millis(5)).unwrap().len(),
            BATCH + 5
        );
    }
}
