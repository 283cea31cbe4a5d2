//! Expiry: removes every service whose `desired_time + _ttl` has passed, with everything stored
//! for it. The job body ([`run_once`]) takes the time as an argument, so tests drive it with any
//! clock; [`schedule`] runs it on a tokio-cron-scheduler schedule, and start-up runs it once
//! to catch up after downtime.

use std::sync::Arc;

use tokio_cron_scheduler::{Job, JobScheduler};

use crate::clock::Clock;
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError};

/// Services removed per storage batch.
const BATCH: usize = 1000;

/// Removes every service due at `now`. Work is proportional to the number due (an index range
/// scan), not to the number stored. Returns how many were removed.
///
/// # Errors
/// Storage failure (what was removed before it stays removed).
pub fn run_once(store: &Store, now: Timestamp) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let removed = store.purge_expired(now, BATCH)?;
        total += removed.len();
        for id in &removed {
            tracing::debug!(service_id = %id, "service expired and removed");
        }
        if removed.len() < BATCH {
            break;
        }
    }
    if total > 0 {
        tracing::info!(removed = total, "expired services removed");
    }
    Ok(total)
}

/// Starts a scheduler running [`run_once`] on the cron `schedule` (six fields, with seconds).
///
/// # Errors
/// A bad cron expression or a scheduler failure, as text.
pub async fn schedule(
    store: Store,
    clock: Arc<dyn Clock>,
    schedule: &str,
) -> Result<JobScheduler, String> {
    let scheduler = JobScheduler::new()
        .await
        .map_err(|err| format!("cannot create the scheduler: {err}"))?;
    let job = Job::new_async(schedule, move |_id, _scheduler| {
        let store = store.clone();
        let clock = clock.clone();
        Box::pin(async move {
            let now = clock.now();
            // sled calls block; keep them off the async workers.
            match tokio::task::spawn_blocking(move || run_once(&store, now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::error!(error = %err, "expiry run failed"),
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
