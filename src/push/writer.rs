//! Stores the customer notifications of concurrent requests together: every notification
//! that arrives while one batch is being written and made durable goes into the next batch,
//! which is one store transaction and one group commit however many it holds.
//!
//! Why a writer of its own rather than a transaction per request: sled 0.34 runs a transaction
//! under a lock that excludes every flush and every other transaction, and gives each one its
//! own log buffer, written and `sync_file_range`d on its own. At a thousand
//! `internal-notification`s a second that was a thousand exclusive locks and disk syncs a
//! second, taken on the runtime's worker threads, which then waited behind every group-commit
//! flush: the pushes stalled, and with other work on the cores the queue grew without bound
//! (issue 13). Here the transaction runs off the worker threads (`spawn_blocking`) and only
//! between this writer's own flushes, and the batch grows with the load instead of the queue.
//!
//! A request waits for the batch holding its notification to be durable, as a lone write
//! waits for its group commit: at most the batch being written, then its own.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::domain::notification::Notification;
use crate::store::{NewNotification, Store, StoreError};
use crate::supervisor::Shutdown;

/// Notifications written in one transaction at most; more wait for the next batch.
const MAX_BATCH: usize = 1024;

/// A notification to store, and whom to tell once it is durable.
struct Job {
    notification: NewNotification,
    answer: oneshot::Sender<Result<Notification, StoreError>>,
}

/// Hands notifications to the writer task. Cheap to clone; clones share the task.
#[derive(Debug, Clone)]
pub struct NotificationWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl NotificationWriter {
    /// A writer storing into `store`, and its task (to run under the supervisor until
    /// `shutdown`; what is queued then is still written).
    pub fn start(
        store: Store,
        shutdown: Shutdown,
    ) -> (
        NotificationWriter,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let (jobs, queue) = mpsc::unbounded_channel();
        (NotificationWriter { jobs }, run(store, queue, shutdown))
    }

    /// Stores `notification`; returns it once durable.
    ///
    /// # Errors
    /// Storage or the group commit failed, or the writer has stopped (shutdown): the
    /// notification must not be pushed.
    pub async fn write(&self, notification: NewNotification) -> Result<Notification, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job {
                notification,
                answer,
            })
            .map_err(|_| StoreError::ShuttingDown)?;
        answered.await.unwrap_or(Err(StoreError::ShuttingDown))
    }
}

/// Writes batches until shutdown, then what is still queued.
async fn run(store: Store, mut queue: mpsc::UnboundedReceiver<Job>, mut shutdown: Shutdown) {
    loop {
        let first = tokio::select! {
            // A notification to store: it and whatever queued meanwhile form a batch.
            job = queue.recv() => match job {
                Some(job) => job,
                None => return,
            },
            // The service is stopping.
            () = shutdown.wait() => break,
        };
        let batch = fill(first, &mut queue);
        write(&store, batch).await;
    }
    // Requests in flight are answered before the background tasks stop: any still queued
    // get their answer.
    queue.close();
    while let Some(first) = queue.recv().await {
        let batch = fill(first, &mut queue);
        write(&store, batch).await;
    }
}

/// `first` and what is queued behind it, up to [`MAX_BATCH`].
fn fill(first: Job, queue: &mut mpsc::UnboundedReceiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Stores `batch` in one transaction, waits for its group commit and answers each job.
async fn write(store: &Store, batch: Vec<Job>) {
    let (notifications, answers): (Vec<NewNotification>, Vec<_>) = batch
        .into_iter()
        .map(|job| (job.notification, job.answer))
        .unzip();
    let size = notifications.len();
    let writer = store.clone();
    // Off the worker threads: the transaction waits for sled's lock while anything flushes.
    let written = tokio::task::spawn_blocking(move || writer.add_notifications(notifications))
        .await
        .unwrap_or_else(|err| {
            Err(StoreError::Io(format!(
                "storing a batch of notifications failed: {err}"
            )))
        });
    let durable = match written {
        Ok(pending) => pending.durable().await,
        Err(err) => Err(err),
    };
    match durable {
        Ok(stored) => {
            for (answer, notification) in answers.into_iter().zip(stored) {
                // The request may have gone away (its client disconnected): the notification
                // stays stored, for retrieve-notifications.
                let _ = answer.send(Ok(notification));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, notifications = size, "cannot store customer notifications");
            for answer in answers {
                let _ = answer.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::Timestamp;
    use crate::supervisor::Supervisor;

    fn new(service_id: &str, tag: &str) -> NewNotification {
        NewNotification {
            service_id: service_id.into(),
            comet_user: Some("alice".into()),
            tag: tag.into(),
            message: "{}".into(),
            created_at: Timestamp::from_millis(1),
        }
    }

    #[tokio::test]
    async fn concurrent_notifications_are_stored_once_each_and_answered_when_durable() {
        let store = Store::open_temporary().unwrap();
        let supervisor = Supervisor::new();
        let (writer, task) = NotificationWriter::start(store.clone(), supervisor.shutdown());
        let task = tokio::spawn(task);
        let (flushes_before, _) = store.sync_counts();

        // On this single-threaded runtime every write is queued before the writer runs again.
        let writes: Vec<_> = (0..100)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(new("s1", &i.to_string())).await })
            })
            .collect();
        let mut seqs = Vec::new();
        for write in writes {
            let stored = write.await.unwrap().unwrap();
            assert!(!stored.delivered);
            seqs.push(stored.seq);
        }

        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 100, "each its own sequence number");
        assert_eq!(store.notifications("s1").unwrap().len(), 100);
        assert_eq!(
            store.undelivered_for_user("alice", 1000).unwrap().len(),
            100
        );
        let (flushes, _) = store.sync_counts();
        assert_eq!(flushes - flushes_before, 1, "one batch, one group commit");
        drop(writer);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn what_is_queued_at_shutdown_is_still_written_and_later_writes_are_refused() {
        let store = Store::open_temporary().unwrap();
        let supervisor = Supervisor::new();
        let (writer, task) = NotificationWriter::start(store.clone(), supervisor.shutdown());
        let queued = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(new("s1", "queued")).await }
        });
        // Queued, then shutdown is raised before the writer task first runs.
        tokio::task::yield_now().await;
        let _report = supervisor.stop(std::time::Duration::from_secs(5)).await;
        tokio::spawn(task).await.unwrap();

        assert_eq!(queued.await.unwrap().unwrap().tag, "queued");
        assert!(matches!(
            writer.write(new("s1", "late")).await,
            Err(StoreError::ShuttingDown)
        ));
        assert_eq!(store.notifications("s1").unwrap().len(), 1);
    }
}
