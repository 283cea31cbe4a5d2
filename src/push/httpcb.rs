//! `_device_os=httpcb`: notifications POSTed to the URL in `_device_notification_id`.
//!
//! One worker task takes jobs from a bounded queue and runs up to [`MAX_IN_FLIGHT`] POSTs at
//! once. Each POST carries the push envelope (`{"id","message","tag"}`, as CometD pushes it)
//! with `Content-Type: application/json`, has a timeout, and is retried with doubling backoff;
//! the first 2xx marks the notification delivered. Redirects are not followed (a 3xx is a
//! failure). Before a retry the worker checks that nobody polled the notification meanwhile.
//! After the last failure the notification stays undelivered for `retrieve-notifications`.
//! Only `http://` URLs can be reached (the HTTP client is built without TLS); an `https://`
//! one fails like an unreachable URL.
//!
//! At shutdown the worker stops and drops the POSTs in flight: they were not acknowledged,
//! so the notifications stay for polling.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::store::Store;

/// POSTs running at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// Jobs waiting for the worker; beyond that, notifications wait for polling.
const QUEUE: usize = 4096;

/// How hard the worker tries to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCallbackSettings {
    /// Limit of one POST, connecting included.
    pub timeout: Duration,
    /// POSTs tried per notification (at least 1).
    pub attempts: u32,
    /// Wait before the first retry; doubled before each further one.
    pub backoff: Duration,
}

impl Default for HttpCallbackSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

/// One notification to POST.
#[derive(Debug, Clone)]
pub struct Job {
    /// The service it belongs to.
    pub service_id: String,
    /// Its sequence number (to mark it delivered).
    pub seq: u64,
    /// Where to POST.
    pub url: String,
    /// The JSON body.
    pub body: String,
}

/// Hands jobs to the worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpCallbacks {
    jobs: mpsc::Sender<Job>,
}

impl HttpCallbacks {
    /// Starts the worker; it stops when `shutdown` turns true.
    pub fn start(
        store: Store,
        settings: HttpCallbackSettings,
        shutdown: watch::Receiver<bool>,
    ) -> (HttpCallbacks, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = tokio::spawn(run(store, settings, rx, shutdown));
        (HttpCallbacks { jobs: tx }, handle)
    }

    /// A sender without worker: every job is dropped (logged) and its notification waits
    /// for polling. For tests and tools that never push.
    pub fn disabled() -> HttpCallbacks {
        let (tx, _) = mpsc::channel(1);
        HttpCallbacks { jobs: tx }
    }

    /// Queues a POST; when the queue is full or the worker stopped, the notification waits
    /// for polling.
    pub fn post(&self, job: Job) {
        if let Err(err) = self.jobs.try_send(job) {
            let job = match err {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job
                }
            };
            tracing::warn!(service_id = %job.service_id, "http callback not queued (worker busy or stopped); left for retrieve-notifications");
        }
    }
}

async fn run(
    store: Store,
    settings: HttpCallbackSettings,
    mut jobs: mpsc::Receiver<Job>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the http callback client; httpcb notifications wait for polling");
            return;
        }
    };
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            // A new notification, while there is room for one more POST.
            job = jobs.recv(), if running.len() < MAX_IN_FLIGHT => match job {
                Some(job) => {
                    running.spawn(deliver(store.clone(), client.clone(), settings.clone(), job));
                }
                None => break,
            },
            // A POST finished (its outcome is logged by itself).
            Some(_) = running.join_next(), if !running.is_empty() => {}
            // The service is stopping.
            _ = shutdown.changed() => break,
        }
    }
    running.abort_all();
    tracing::info!("http callback worker stopped");
}

/// POSTs one notification until a 2xx or the last attempt.
#[tracing::instrument(skip_all, fields(service_id = %job.service_id, seq = job.seq))]
async fn deliver(store: Store, client: reqwest::Client, settings: HttpCallbackSettings, job: Job) {
    let mut backoff = settings.backoff;
    let attempts = settings.attempts.max(1);
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            match store.is_undelivered(&job.service_id, job.seq) {
                Ok(true) => {}
                Ok(false) => return, // polled meanwhile, or the service expired
                Err(err) => {
                    tracing::error!(error = %err, "cannot read the notification; giving up");
                    return;
                }
            }
        }
        let sent = client
            .post(&job.url)
            .header("content-type", "application/json")
            .body(job.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                if let Err(err) = store.mark_delivered(&job.service_id, None, job.seq) {
                    tracing::error!(error = %err, "cannot mark the notification delivered");
                }
                tracing::debug!(attempt, "http callback delivered");
                return;
            }
            Ok(response) => {
                tracing::warn!(attempt, status = %response.status(), url = %job.url, "http callback refused")
            }
            Err(err) => {
                tracing::warn!(attempt, error = %err, url = %job.url, "http callback failed")
            }
        }
    }
    tracing::warn!(
        attempts,
        "http callback gave up; the notification waits for retrieve-notifications"
    );
}
