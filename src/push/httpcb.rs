//! `_device_os=httpcb`: notifications POSTed to the URL in `_device_notification_id`.
//!
//! Each POST carries the push envelope (`{"id","message","tag"}`, as CometD pushes it) with
//! `Content-Type: application/json`, has a timeout, and is retried with doubling backoff;
//! the first 2xx marks the notification delivered. Redirects are not followed (a 3xx is a
//! failure) and no proxy is used, so the connection goes where [`egress`](super::egress)
//! checked it may go. Before a retry the worker checks that nobody polled the notification
//! meanwhile. Whatever is not delivered stays for `retrieve-notifications`. `https://` URLs
//! are reached over TLS (rustls, certificates checked against the system's roots).
//!
//! Destinations are isolated from one another, so that one endpoint that never answers
//! cannot hold back everyone else's pushes (issue 9, item 9). A destination is the URL's
//! origin (scheme, host and port). One worker task (the dispatcher) owns all the state, without locks:
//!
//! - each destination has its own bounded queue and at most
//!   [`HttpCallbackSettings::destination_concurrency`] POSTs in flight; beyond its queue, its
//!   notifications wait for polling;
//! - free slots of the global limit ([`MAX_IN_FLIGHT`]) go round-robin to the destinations
//!   with work, so a busy destination cannot starve a quiet one;
//! - a circuit breaker per destination: after [`HttpCallbackSettings::breaker_failures`]
//!   failures in a row it opens for [`HttpCallbackSettings::breaker_open`], dropping its
//!   queue (the notifications stay stored) and every new job for it; then one probe POST
//!   decides whether it closes again.
//!
//! Retries wait in a timer list, not in a task holding a slot.
//!
//! The same worker sends FCM pushes ([`super::fcm`]): jobs of [`JobKind::Fcm`] go to the
//! operator's configured endpoint, which is not screened by the egress policy, and a refusal
//! of one message (a stale token) is neither retried nor held against the shared endpoint.
//!
//! At shutdown the worker stops and drops the POSTs in flight: they were not acknowledged,
//! so the notifications stay for polling.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::egress::{AllowRule, CheckedResolver, EgressPolicy, Route};
use crate::clock::{self, Clock};
use crate::domain::time::Timestamp;
use crate::store::{self, Store};
use crate::supervisor::Shutdown;

/// POSTs running at once, over all destinations.
pub const MAX_IN_FLIGHT: usize = 256;

/// Jobs handed over and not yet sorted by destination; beyond that, notifications wait for
/// polling. The dispatcher empties it at once, so it fills only if the dispatcher stalls.
const QUEUE: usize = 4096;

/// Destinations remembered at most; past this, idle ones and expired breakers are forgotten.
const TRACKED_DESTINATIONS: usize = 4096;

/// How hard the worker tries to deliver, and where it may deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCallbackSettings {
    /// Limit of one POST, connecting included.
    pub timeout: Duration,
    /// POSTs tried per notification (at least 1).
    pub attempts: u32,
    /// Wait before the first retry; doubled before each further one.
    pub backoff: Duration,
    /// Internal destinations the operator allows (`[httpcb] allow`); empty: public only.
    pub allow: Vec<AllowRule>,
    /// POSTs in flight at once to one destination.
    pub destination_concurrency: usize,
    /// Jobs waiting for one destination; more wait for polling.
    pub destination_queue: usize,
    /// Failed POSTs in a row that open a destination's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses jobs before one probe is let through.
    pub breaker_open: Duration,
}

impl Default for HttpCallbackSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 4,
            backoff: Duration::from_millis(500),
            allow: Vec::new(),
            destination_concurrency: 4,
            destination_queue: 256,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(30),
        }
    }
}

/// One notification to POST.
#[derive(Clone)]
pub struct Job {
    /// The service it belongs to (for a Notification API event: the subscription).
    pub service_id: String,
    /// The stored notification's sequence number, to mark it delivered; `None` for a
    /// Notification API event, which is not stored (nothing to check before a retry or to
    /// mark after a 2xx).
    pub seq: Option<u64>,
    /// Where to POST.
    pub url: String,
    /// The body.
    pub body: String,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// An `Authorization` header to send (a `customhttp` subscription's `authorization`, the
    /// FCM bearer token).
    pub authorization: Option<String>,
    /// Who chose the URL, which decides how it is reached and what a refusal means.
    pub kind: JobKind,
}

impl std::fmt::Debug for Job {
    // Never print the credentials (a bearer token) or the body (an FCM body names the
    // device's registration token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("service_id", &self.service_id)
            .field("seq", &self.seq)
            .field("url", &self.url)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("content_type", &self.content_type)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<set>"),
            )
            .field("kind", &self.kind)
            .finish()
    }
}

/// Who chose a job's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A customer or subscriber (httpcb, customhttp): reached only where the egress policy
    /// permits, and any answer but a 2xx is a failure of the destination.
    Callback,
    /// The operator (`[push.fcm] endpoint`): reached without the egress check, like any
    /// configured server. The destination is shared by every device, so an answer that
    /// refuses this one message (400 bad request or token, 403 sender mismatch, 404 token no
    /// longer registered) is not retried and does not count towards the breaker: one stale
    /// token must not stop everyone's pushes.
    Fcm,
}

impl Job {
    /// The POST of stored notification `seq` of service `service_id`: the JSON envelope.
    pub fn notification(service_id: String, seq: u64, url: String, body: String) -> Job {
        Job {
            service_id,
            seq: Some(seq),
            url,
            body,
            content_type: "application/json",
            authorization: None,
            kind: JobKind::Callback,
        }
    }
}

/// Hands jobs to the worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpCallbacks {
    jobs: mpsc::Sender<Job>,
    counters: HttpcbCounters,
}

/// What the worker counts for `/metrics`, per POST. Clones share the values.
#[derive(Debug, Clone, Default)]
pub struct HttpcbCounters {
    /// POSTs answered 2xx: the notification is delivered.
    pub deliveries: Counter,
    /// Failed POSTs that are tried again later.
    pub retries: Counter,
    /// POSTs that failed (unreachable, timeout, not 2xx), retried or not.
    pub failures: Counter,
}

impl HttpCallbacks {
    /// Makes the worker, to be started by the supervisor: it sends only where `policy`
    /// permits, times its retries and breakers on `clock`, and stops at `shutdown`.
    pub fn start(
        store: Store,
        settings: HttpCallbackSettings,
        policy: Arc<EgressPolicy>,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> (
        HttpCallbacks,
        impl std::future::Future<Output = Result<(), String>> + Send + 'static,
    ) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = HttpcbCounters::default();
        let worker = run(
            store,
            settings,
            policy,
            clock,
            rx,
            shutdown,
            counters.clone(),
        );
        (HttpCallbacks { jobs: tx, counters }, worker)
    }

    /// Deliveries, retries and failures so far, for `/metrics`.
    pub fn counters(&self) -> &HttpcbCounters {
        &self.counters
    }

    /// A sender without worker: every job is dropped (logged) and its notification waits
    /// for polling. For tests and tools that never push.
    pub fn disabled() -> HttpCallbacks {
        let (tx, _) = mpsc::channel(1);
        HttpCallbacks {
            jobs: tx,
            counters: HttpcbCounters::default(),
        }
    }

    /// Queues a POST; when the queue is full or the worker stopped, the notification waits
    /// for polling. Returns whether it was queued.
    pub fn post(&self, job: Job) -> bool {
        match self.jobs.try_send(job) {
            Ok(()) => true,
            Err(err) => {
                let job = match err {
                    mpsc::error::TrySendError::Full(job)
                    | mpsc::error::TrySendError::Closed(job) => job,
                };
                tracing::warn!(service_id = %job.service_id, "http callback not queued (worker busy or stopped); left for retrieve-notifications");
                false
            }
        }
    }
}

/// The two HTTP clients: one whose resolver drops refused addresses, one for allowed
/// prefixes. Neither follows redirects or uses a proxy (either would send the request
/// somewhere that was not checked). Shared by the worker and the status-notification
/// outbox, so that both reach only what the egress policy permits.
pub struct Clients {
    checked: reqwest::Client,
    trusted: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl Clients {
    /// The clients for `settings` (timeout) under `policy`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn build(
        settings: &HttpCallbackSettings,
        policy: Arc<EgressPolicy>,
    ) -> reqwest::Result<Self> {
        let base = || {
            reqwest::Client::builder()
                .timeout(settings.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
        };
        Ok(Clients {
            checked: base()
                .dns_resolver(Arc::new(CheckedResolver::new(policy.clone())))
                .build()?,
            trusted: base().build()?,
            policy,
        })
    }

    /// POSTs `job`: what came of it.
    async fn send(&self, job: &Job, attempt: u32) -> Sent {
        let client = match job.kind {
            JobKind::Callback => self.client_for(&job.url),
            JobKind::Fcm => Ok(&self.trusted),
        };
        let result = match client {
            Ok(client) => {
                send_with(
                    client,
                    &job.url,
                    job.content_type,
                    job.body.clone(),
                    job.authorization.as_deref(),
                )
                .await
            }
            Err(refusal) => Err((None, refusal)),
        };
        match result {
            Ok(()) => Sent::Delivered,
            Err((Some(status), error)) if job.kind == JobKind::Fcm && refuses_message(status) => {
                tracing::warn!(attempt, %error, "FCM refused the message (bad or unregistered token); not retried, it waits for retrieve-notifications");
                Sent::Refused
            }
            Err((_, error)) => {
                tracing::warn!(attempt, %error, url = %job.url, "http push failed");
                Sent::Failed
            }
        }
    }

    /// The client that may reach `url` under the egress policy, or why none may.
    fn client_for(&self, url: &str) -> Result<&reqwest::Client, String> {
        match self.policy.screen(url) {
            Ok((_, Route::Checked)) => Ok(&self.checked),
            Ok((_, Route::Trusted)) => Ok(&self.trusted),
            Err(refusal) => Err(format!("refused before connecting: {refusal}")),
        }
    }

    /// One POST of `body` to `url`, where the egress policy permits it; `Err` says why it
    /// was not answered with a 2xx (refused address, connection, timeout, status).
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: String,
        authorization: Option<&str>,
    ) -> Result<(), String> {
        let client = self.client_for(url)?;
        send_with(client, url, content_type, body, authorization)
            .await
            .map_err(|(_, error)| error)
    }
}

/// What one POST came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// A 2xx.
    Delivered,
    /// No 2xx: the destination failed (or refused it), worth a retry.
    Failed,
    /// An FCM answer that refuses this message only ([`refuses_message`]).
    Refused,
}

/// FCM HTTP v1 statuses that are about the one message, not the service: 400
/// `INVALID_ARGUMENT` (a malformed token or payload), 403 `SENDER_ID_MISMATCH` (a token of
/// another project), 404 `UNREGISTERED` (the app was uninstalled or its token expired).
/// Sending the same message again cannot succeed. 401 (the access token) and 429 or 5xx (the
/// service) are failures of the destination.
fn refuses_message(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 403 | 404)
}

/// One POST through `client`; `Err` carries the status when there was an answer.
async fn send_with(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
    authorization: Option<&str>,
) -> Result<(), (Option<reqwest::StatusCode>, String)> {
    let mut request = client
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err((
            Some(response.status()),
            format!("answered {}", response.status()),
        )),
        Err(err) => Err((None, error_chain(&err))),
    }
}

/// An error with its causes (reqwest's own message hides a refused address's reason).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A job with the number of the attempt it is waiting for.
struct Pending {
    job: Job,
    attempt: u32,
}

/// What one attempt came to.
enum Outcome {
    /// A 2xx: marked delivered.
    Delivered,
    /// No 2xx.
    Failed,
    /// Refused for this message only (an FCM token problem): not retried, and not held
    /// against the destination.
    Refused,
    /// Nothing sent: polled meanwhile, the service expired, or the store failed.
    Settled,
}

/// A destination's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    /// POSTs flow, up to the destination's concurrency.
    Closed,
    /// Jobs are dropped until then.
    Open { until: Timestamp },
    /// One probe POST may run; its outcome closes or reopens the breaker.
    HalfOpen,
}

/// One destination (origin): its queue, what is in flight, and its breaker.
struct Destination {
    queue: VecDeque<Pending>,
    in_flight: usize,
    failures: u32,
    breaker: Breaker,
    /// Listed in the dispatcher's round-robin `ready` list.
    listed: bool,
}

impl Destination {
    fn new() -> Self {
        Destination {
            queue: VecDeque::new(),
            in_flight: 0,
            failures: 0,
            breaker: Breaker::Closed,
            listed: false,
        }
    }

    /// Whether one more POST may start now (an expired open breaker turns half-open).
    fn can_start(&mut self, limit: usize, now: Timestamp) -> bool {
        if let Breaker::Open { until } = self.breaker {
            if now >= until {
                self.breaker = Breaker::HalfOpen;
            }
        }
        match self.breaker {
            Breaker::Closed => self.in_flight < limit,
            Breaker::HalfOpen => self.in_flight == 0,
            Breaker::Open { .. } => false,
        }
    }

    /// Whether new jobs are refused (breaker open and not yet expired).
    fn refuses(&self, now: Timestamp) -> bool {
        matches!(self.breaker, Breaker::Open { until } if now < until)
    }

    /// Nothing queued, in flight or remembered: can be forgotten.
    fn idle(&self, now: Timestamp) -> bool {
        self.queue.is_empty() && self.in_flight == 0 && (self.failures == 0 || !self.refuses(now))
    }
}

/// The destination of a URL: its origin (scheme, host, port), as HTTP clients pool
/// connections; an unparsable URL is its own destination (it fails at once).
fn destination_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => url.to_string(),
    }
}

/// The worker's state; only the dispatcher task touches it.
struct Dispatcher {
    store: Store,
    settings: HttpCallbackSettings,
    clients: Arc<Clients>,
    destinations: HashMap<String, Destination>,
    /// Destinations with queued jobs, in the order they get the next free slot.
    ready: VecDeque<String>,
    /// Retries by due time (the counter keeps equal times apart).
    retries: BTreeMap<(Timestamp, u64), (String, Pending)>,
    retry_counter: u64,
    running: JoinSet<(String, Pending, Outcome)>,
    /// Shared with [`HttpCallbacks::counters`].
    counters: HttpcbCounters,
}

impl Dispatcher {
    /// Queues a job for its destination, or drops it (left for polling) if the
    /// destination's breaker is open or its queue is full.
    fn enqueue(&mut self, host: String, pending: Pending, now: Timestamp) {
        if self.destinations.len() >= TRACKED_DESTINATIONS && !self.destinations.contains_key(&host)
        {
            self.destinations.retain(|_, d| !d.idle(now));
        }
        let limit = self.settings.destination_queue;
        let destination = self
            .destinations
            .entry(host.clone())
            .or_insert_with(Destination::new);
        if destination.refuses(now) {
            tracing::debug!(destination = %host, service_id = %pending.job.service_id, "circuit open; left for retrieve-notifications");
            return;
        }
        if destination.queue.len() >= limit {
            tracing::warn!(destination = %host, service_id = %pending.job.service_id, "destination queue full; left for retrieve-notifications");
            return;
        }
        destination.queue.push_back(pending);
        if !destination.listed {
            destination.listed = true;
            self.ready.push_back(host);
        }
    }

    /// Starts POSTs while global slots are free, one destination at a time in turn.
    fn start_ready(&mut self, now: Timestamp) {
        let limit = self.settings.destination_concurrency;
        let mut turns = self.ready.len();
        while self.running.len() < MAX_IN_FLIGHT && turns > 0 {
            turns -= 1;
            let Some(host) = self.ready.pop_front() else {
                break;
            };
            let Some(destination) = self.destinations.get_mut(&host) else {
                continue;
            };
            if !destination.can_start(limit, now) {
                // Relisted when one of its POSTs finishes or its breaker expires.
                destination.listed = false;
                continue;
            }
            let Some(pending) = destination.queue.pop_front() else {
                destination.listed = false;
                continue;
            };
            destination.in_flight += 1;
            if destination.queue.is_empty() {
                destination.listed = false;
            } else {
                self.ready.push_back(host.clone());
                turns += 1;
            }
            self.running.spawn(attempt(
                self.store.clone(),
                self.clients.clone(),
                host,
                pending,
            ));
        }
    }

    /// Books an attempt's outcome: breaker, retry, relisting.
    fn finished(&mut self, host: String, pending: Pending, outcome: Outcome, now: Timestamp) {
        let Some(destination) = self.destinations.get_mut(&host) else {
            return;
        };
        destination.in_flight = destination.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Delivered => {
                self.counters.deliveries.inc();
                destination.failures = 0;
                destination.breaker = Breaker::Closed;
            }
            Outcome::Refused => {
                self.counters.failures.inc();
                // The destination answered: it works, whatever it thought of the message.
                destination.failures = 0;
                destination.breaker = Breaker::Closed;
            }
            Outcome::Settled => {
                if destination.breaker == Breaker::HalfOpen {
                    // The probe sent nothing: let the next job probe.
                    destination.breaker = Breaker::Open { until: now };
                }
            }
            Outcome::Failed => {
                self.counters.failures.inc();
                destination.failures += 1;
                if destination.failures >= self.settings.breaker_failures {
                    let dropped = destination.queue.len();
                    destination.queue.clear();
                    destination.breaker = Breaker::Open {
                        until: now + self.settings.breaker_open,
                    };
                    tracing::warn!(destination = %host, failures = destination.failures, dropped, "http callback destination keeps failing; circuit open, its notifications wait for retrieve-notifications");
                } else if pending.attempt < self.settings.attempts.max(1) {
                    let wait = self
                        .settings
                        .backoff
                        .saturating_mul(1 << (pending.attempt - 1).min(16));
                    self.retry_counter += 1;
                    self.counters.retries.inc();
                    self.retries.insert(
                        (now + wait, self.retry_counter),
                        (
                            host.clone(),
                            Pending {
                                job: pending.job,
                                attempt: pending.attempt + 1,
                            },
                        ),
                    );
                } else {
                    tracing::warn!(service_id = %pending.job.service_id, attempts = pending.attempt, "http callback gave up; the notification waits for retrieve-notifications");
                }
            }
        }
        let destination = self.destinations.get_mut(&host).expect("looked up above");
        if !destination.queue.is_empty() && !destination.listed {
            destination.listed = true;
            self.ready.push_back(host);
        }
    }

    /// Moves the retries that are due into their destinations' queues.
    fn release_retries(&mut self, now: Timestamp) {
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (host, pending) = entry.remove();
            self.enqueue(host, pending, now);
        }
    }

    /// When the next retry is due.
    fn next_retry(&self) -> Option<Timestamp> {
        self.retries.keys().next().map(|(due, _)| *due)
    }
}

async fn run(
    store: Store,
    settings: HttpCallbackSettings,
    policy: Arc<EgressPolicy>,
    clock: Arc<dyn Clock>,
    mut jobs: mpsc::Receiver<Job>,
    mut shutdown: Shutdown,
    counters: HttpcbCounters,
) -> Result<(), String> {
    let clients = match Clients::build(&settings, policy) {
        Ok(clients) => Arc::new(clients),
        Err(err) => return Err(format!("cannot build the http callback client: {err}")),
    };
    let mut dispatcher = Dispatcher {
        store,
        settings,
        clients,
        destinations: HashMap::new(),
        ready: VecDeque::new(),
        retries: BTreeMap::new(),
        retry_counter: 0,
        running: JoinSet::new(),
        counters,
    };
    loop {
        let next_retry = clock::sleep_until(&*clock, dispatcher.next_retry());
        tokio::select! {
            // A new notification: sorted into its destination's queue.
            job = jobs.recv() => match job {
                Some(job) => {
                    let host = destination_of(&job.url);
                    dispatcher.enqueue(host, Pending { job, attempt: 1 }, clock.now());
                }
                None => break,
            },
            // A POST finished: book it (breaker, retry).
            Some(done) = dispatcher.running.join_next(), if !dispatcher.running.is_empty() => {
                if let Ok((host, pending, outcome)) = done {
                    dispatcher.finished(host, pending, outcome, clock.now());
                }
            }
            // A retry is due.
            () = next_retry => {
                dispatcher.release_retries(clock.now());
            }
            // The service is stopping.
            () = shutdown.wait() => break,
        }
        dispatcher.start_ready(clock.now());
    }
    dispatcher.running.abort_all();
    tracing::info!("http callback worker stopped");
    Ok(())
}

/// Tries one POST of a notification (checking first, on a retry, that it still waits).
#[tracing::instrument(skip_all, fields(service_id = %pending.job.service_id, seq = ?pending.job.seq))]
async fn attempt(
    store: Store,
    clients: Arc<Clients>,
    host: String,
    pending: Pending,
) -> (String, Pending, Outcome) {
    let job = &pending.job;
    if let (true, Some(seq)) = (pending.attempt > 1, job.seq) {
        match store.is_undelivered(&job.service_id, seq) {
            Ok(true) => {}
            Ok(false) => return (host, pending, Outcome::Settled), // polled, or expired
            Err(err) => {
                tracing::error!(error = %err, "cannot read the notification; giving up");
                return (host, pending, Outcome::Settled);
            }
        }
    }
    match clients.send(job, pending.attempt).await {
        Sent::Delivered => {}
        Sent::Failed => return (host, pending, Outcome::Failed),
        Sent::Refused => return (host, pending, Outcome::Refused),
    }
    if let Some(seq) = job.seq {
        // Not waited for: a mark lost in a crash only posts it again (at least once).
        if let Err(err) = store
            .mark_delivered(&job.service_id, None, seq)
            .map(store::Pending::without_waiting)
        {
            tracing::error!(error = %err, "cannot mark the notification delivered");
        }
    }
    tracing::debug!(attempt = pending.attempt, "http callback delivered");
    (host, pending, Outcome::Delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_prints_neither_its_credentials_nor_its_body() {
        let job = Job {
            service_id: "s1".into(),
            seq: Some(1),
            url: "https://fcm.example/v1/projects/p/messages:send".into(),
            body: r#"{"message":{"token":"device-secret"}}"#.into(),
            content_type: "application/json",
            authorization: Some("Bearer ya29.secret".into()),
            kind: JobKind::Fcm,
        };
        let printed = format!("{job:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(
            printed.contains("<set>") && printed.contains("s1"),
            "{printed}"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_connect() {
        // Arrange: a listener on loopback, reached by name, with the default policy.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let settings = HttpCallbackSettings::default();
        let clients = Clients::build(&settings, Arc::new(EgressPolicy::new(&[]))).unwrap();
        let job = Job {
            service_id: "s".into(),
            seq: Some(1),
            url: format!("http://localhost:{port}/push"),
            body: "{}".into(),
            content_type: "application/json",
            authorization: None,
            kind: JobKind::Callback,
        };

        // Act
        let sent = clients.send(&job, 1).await;

        // Assert: the send failed without the listener ever seeing a connection.
        assert_eq!(sent, Sent::Failed);
        assert_eq!(
            listener.accept().map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::WouldBlock),
            "no connection reached the loopback listener"
        );
    }

    #[tokio::test]
    async fn an_allowed_network_is_reached_by_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
        });
        let rules = ["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let clients = Clients::build(
            &HttpCallbackSettings::default(),
            Arc::new(EgressPolicy::new(&rules)),
        )
        .unwrap();
        let job = Job {
            service_id: "s".into(),
            seq: Some(1),
            url: format!("http://localhost:{port}/push"),
            body: "{}".into(),
            content_type: "application/json",
            authorization: None,
            kind: JobKind::Callback,
        };

        assert_eq!(clients.send(&job, 1).await, Sent::Delivered);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_https_endpoint_is_spoken_to_with_tls() {
        // Arrange: a plain TCP listener that records the first bytes it is sent.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 3];
            socket.read_exact(&mut first).await.unwrap();
            first
        });
        let clients = Clients::build(
            &HttpCallbackSettings::default(),
            Arc::new(EgressPolicy::new(&[])),
        )
        .unwrap();
        let job = Job {
            service_id: "s".into(),
            seq: Some(1),
            url: format!("https://127.0.0.1:{port}/v1/projects/p/messages:send"),
            body: "{}".into(),
            content_type: "application/json",
            authorization: Some("Bearer t".into()),
            kind: JobKind::Fcm,
        };

        // Act: the listener never answers the handshake; the send fails by timeout or close.
        let sending = tokio::spawn(async move { clients.send(&job, 1).await });
        let first = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the client connected and sent its first bytes")
            .unwrap();

        // Assert: a TLS handshake record (content type 22, version 3.x), not HTTP text.
        assert_eq!((first[0], first[1]), (0x16, 0x03), "{first:?}");
        assert_eq!(sending.await.unwrap(), Sent::Failed);
    }

    fn pending(url: &str) -> Pending {
        Pending {
            job: Job {
                service_id: "s".into(),
                seq: Some(1),
                url: url.into(),
                body: String::new(),
                content_type: "application/json",
                authorization: None,
                kind: JobKind::Callback,
            },
            attempt: 1,
        }
    }

    #[test]
    fn a_breaker_opens_after_failures_in_a_row_then_lets_one_probe_through() {
        let mut destination = Destination::new();
        let now = Timestamp::from_millis(1_000_000);
        assert!(destination.can_start(2, now));
        destination.breaker = Breaker::Open {
            until: now + Duration::from_secs(1),
        };
        assert!(destination.refuses(now));
        assert!(!destination.can_start(2, now));
        let later = now + Duration::from_secs(1);
        assert!(!destination.refuses(later));
        assert!(destination.can_start(2, later), "one probe");
        destination.in_flight = 1;
        assert!(!destination.can_start(2, later), "only one probe");
    }

    fn dispatcher(settings: HttpCallbackSettings) -> Dispatcher {
        let policy = Arc::new(EgressPolicy::new(&[]));
        Dispatcher {
            store: Store::open_temporary().unwrap(),
            clients: Arc::new(Clients::build(&settings, policy).unwrap()),
            settings,
            destinations: HashMap::new(),
            ready: VecDeque::new(),
            retries: BTreeMap::new(),
            retry_counter: 0,
            running: JoinSet::new(),
            counters: HttpcbCounters::default(),
        }
    }

    #[tokio::test]
    async fn failures_in_a_row_open_the_breaker_drop_the_queue_and_refuse_new_jobs() {
        let mut dispatcher = dispatcher(HttpCallbackSettings {
            breaker_failures: 2,
            breaker_open: Duration::from_secs(30),
            ..HttpCallbackSettings::default()
        });
        let now = Timestamp::from_millis(1_000_000);
        for _ in 0..5 {
            dispatcher.enqueue("dead".into(), pending("http://10.0.0.1/"), now);
        }
        dispatcher.destinations.get_mut("dead").unwrap().in_flight = 2;

        dispatcher.finished(
            "dead".into(),
            pending("http://10.0.0.1/"),
            Outcome::Failed,
            now,
        );
        assert_eq!(dispatcher.retries.len(), 1, "the first failure is retried");
        dispatcher.finished(
            "dead".into(),
            pending("http://10.0.0.1/"),
            Outcome::Failed,
            now,
        );
        dispatcher.enqueue("dead".into(), pending("http://10.0.0.1/"), now);

        let dead = &dispatcher.destinations["dead"];
        assert!(dead.refuses(now), "open");
        assert!(
            dead.queue.is_empty(),
            "queued jobs dropped, new ones refused"
        );
        assert_eq!(dispatcher.retries.len(), 1, "no retry once open");
        dispatcher.release_retries(now + Duration::from_secs(10));
        assert!(
            dispatcher.destinations["dead"].queue.is_empty(),
            "a due retry is refused too"
        );

        let later = now + Duration::from_secs(30);
        dispatcher.enqueue("dead".into(), pending("http://10.0.0.1/"), later);
        let dead = dispatcher.destinations.get_mut("dead").unwrap();
        assert!(
            dead.can_start(4, later),
            "after the open time one probe may run"
        );
        dead.in_flight = 1;
        dispatcher.finished(
            "dead".into(),
            pending("http://10.0.0.1/"),
            Outcome::Delivered,
            later,
        );
        assert_eq!(
            dispatcher.destinations["dead"].breaker,
            Breaker::Closed,
            "the probe closed it"
        );
    }

    #[tokio::test]
    async fn a_refused_fcm_message_is_not_retried_and_does_not_count_towards_the_breaker() {
        let mut dispatcher = dispatcher(HttpCallbackSettings {
            breaker_failures: 2,
            ..HttpCallbackSettings::default()
        });
        let now = Timestamp::from_millis(1_000_000);
        let fcm = "http://fcm.example";
        dispatcher.enqueue(fcm.into(), pending(fcm), now);
        let endpoint = dispatcher.destinations.get_mut(fcm).unwrap();
        endpoint.failures = 1;
        endpoint.in_flight = 3;

        for _ in 0..3 {
            dispatcher.finished(fcm.into(), pending(fcm), Outcome::Refused, now);
        }

        assert!(dispatcher.retries.is_empty(), "nothing to retry");
        let endpoint = &dispatcher.destinations[fcm];
        assert_eq!(endpoint.failures, 0, "the endpoint answered");
        assert!(!endpoint.refuses(now), "the breaker stays closed");
        assert_eq!(endpoint.queue.len(), 1, "other devices' pushes still go");
    }

    #[test]
    fn only_fcm_statuses_about_the_message_refuse_it() {
        for (status, refuses) in [
            (400, true),
            (403, true),
            (404, true),
            (401, false),
            (429, false),
            (500, false),
            (503, false),
        ] {
            assert_eq!(
                refuses_message(reqwest::StatusCode::from_u16(status).unwrap()),
                refuses,
                "{status}"
            );
        }
    }

    #[tokio::test]
    async fn one_destination_fills_only_its_own_queue_and_slots() {
        let mut dispatcher = dispatcher(HttpCallbackSettings {
            destination_concurrency: 2,
            destination_queue: 3,
            ..HttpCallbackSettings::default()
        });
        let now = Timestamp::from_millis(1_000_000);
        for _ in 0..10 {
            dispatcher.enqueue("busy".into(), pending("http://10.0.0.1/"), now);
        }
        dispatcher.enqueue("quiet".into(), pending("http://10.0.0.2/"), now);

        dispatcher.start_ready(now);

        assert_eq!(dispatcher.destinations["busy"].in_flight, 2);
        assert_eq!(
            dispatcher.destinations["busy"].queue.len(),
            1,
            "3 queued, 2 started"
        );
        assert_eq!(dispatcher.destinations["quiet"].in_flight, 1);
        assert_eq!(dispatcher.running.len(), 3);
        dispatcher.running.abort_all();
    }
}
