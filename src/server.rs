//! The HTTP connection loop: accepts TCP connections and serves each with hyper, so that no
//! connection costs the server more than `[http]` allows.
//!
//! warp's own `serve` holds a connection for as long as the peer keeps it open, accepts
//! without limit, and logs `accept error` every second when descriptors run out. Here:
//!
//! - at most `max_connections` connections are open; further ones wait in the listen backlog
//!   (the accept loop stops accepting), with one log line when the limit is reached;
//! - a connection's first request, and every request's headers from their first byte, must
//!   arrive within `header_read_timeout`, or the connection is dropped;
//! - a keep-alive connection with no request in flight is closed after `idle_timeout`. A held
//!   CometD long-poll is a request in flight, so its own timeout decides;
//! - when `accept` fails for want of descriptors (EMFILE, ENFILE) or memory, the loop backs
//!   off (100 ms doubling to 1 s), logging once when it starts and once when it recovers.
//!
//! Shutdown is graceful as warp's was: stop accepting, let each connection finish the
//! request in flight (held long-polls are answered by the caller's shutdown future), close
//! idle ones. A websocket keeps its connection's slot until it closes.
//!
//! These timeouts are about sockets, so they use tokio's clock, not the injected domain clock.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use warp::filters::BoxedFilter;

use crate::config::HttpConfig;

/// Descriptors kept free for the database, logs and outgoing HTTP callbacks when the
/// connection limit is derived from the open-file limit.
const FD_HEADROOM: usize = 128;
/// The connection limit when the open-file limit cannot be read.
const FALLBACK_MAX_CONNECTIONS: usize = 896;
/// How often, at most, "connection limit reached" is logged again while it persists.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(60);

/// What one connection may cost: the `[http]` settings, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Headers (and a new connection's first request) must arrive within this long.
    pub header_read_timeout: Duration,
    /// A connection with nothing in flight is closed after this long.
    pub idle_timeout: Duration,
    /// At most this many connections at once.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits of `config`; an absent `max_connections` is derived from the process's
    /// open-file limit.
    pub fn from_config(config: &HttpConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
            max_connections: config
                .max_connections
                .unwrap_or_else(|| connections_for(open_file_limit())),
        }
    }
}

/// The connection limit for an open-file limit: every connection is one descriptor, and the
/// rest of the server needs some (sled's files, logs, sockets of HTTP callbacks).
fn connections_for(fd_limit: Option<u64>) -> usize {
    match fd_limit.and_then(|limit| usize::try_from(limit).ok()) {
        Some(limit) => limit
            .saturating_sub(FD_HEADROOM + limit / 10)
            .max(FD_HEADROOM),
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// The soft "Max open files" of this process (Linux `/proc/self/limits`), read without
/// `unsafe` and without another crate; `None` elsewhere or when unlimited.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// The routes that answer every request (their rejections recovered).
pub type Routes = BoxedFilter<(warp::reply::Response,)>;

/// Serves the routes `routes` holds (which may change while serving: each request is answered
/// by the routes of its arrival) on `listener` within `limits` until `shutdown` completes, then
/// lets the open connections finish their requests and returns once every one has closed.
pub async fn serve(
    listener: TcpListener,
    routes: watch::Receiver<Routes>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tracing::info!(
        max_connections = limits.max_connections,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
        "serving HTTP"
    );
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop_signal) = watch::channel(false);
    // Every connection task holds a clone; `recv` returns None once all have ended.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let mut backoff = AcceptBackoff::default();
    let mut limit_logged: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if limit_logged.is_none_or(|at| at.elapsed() >= LIMIT_LOG_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait in the listen backlog until one closes (raise [http] max_connections and the open-file limit if this is legitimate load)"
                    );
                    limit_logged = Some(Instant::now());
                }
                tokio::select! {
                    // A connection closed and gave its slot back.
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break, // never closed; nothing left to serve with
                    },
                    // Stop accepting.
                    () = &mut shutdown => break,
                }
            }
        };
        let accepted = tokio::select! {
            // The next connection from the backlog.
            accepted = listener.accept() => accepted,
            // Stop accepting.
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                if let Some(failures) = backoff.succeeded() {
                    tracing::info!(failures, "accepting connections again");
                }
                let routes = routes.clone();
                let stop_signal = stop_signal.clone();
                let alive = alive.clone();
                tokio::spawn(async move {
                    serve_connection(stream, slot, routes, limits, stop_signal).await;
                    drop(alive);
                });
            }
            // The peer gave up before we accepted it: nothing to do.
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                let (delay, first) = backoff.failed();
                if first {
                    tracing::error!(error = %err, "accept failed (out of descriptors or memory?); backing off up to 1 s between attempts until it works again");
                }
                tokio::select! {
                    // Give the process a moment to close descriptors.
                    () = tokio::time::sleep(delay) => {}
                    // Stop accepting.
                    () = &mut shutdown => break,
                }
            }
        }
    }

    drop(listener);
    let _ = stopping.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
}

/// Accept errors that concern one peer only, not the listener.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The accept loop's pause after failures: 100 ms, doubling to 1 s, reset by a success.
#[derive(Debug, Default)]
struct AcceptBackoff {
    /// Failures since the last success.
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    /// One more failure: how long to wait, and whether it is the first of a run (to log).
    fn failed(&mut self) -> (Duration, bool) {
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(8))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        (delay, self.failures == 1)
    }

    /// A success: the number of failures it ends, if any (to log the recovery once).
    fn succeeded(&mut self) -> Option<u32> {
        (self.failures > 0).then(|| std::mem::take(&mut self.failures))
    }
}

/// Why a connection's watchdog fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// A request's headers (or a new connection's first request) did not arrive in time.
    HeaderRead,
    /// Nothing in flight for `idle_timeout`.
    Idle,
}

/// Serves one connection until it closes, times out or the server stops.
async fn serve_connection(
    stream: TcpStream,
    slot: OwnedSemaphorePermit,
    routes: watch::Receiver<Routes>,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
        _slot: slot,
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request| {
            let in_flight = InFlight::start(activity.clone());
            // The routes of the request's arrival: a follower's relay until it takes the lease.
            let routes = routes.borrow().clone();
            let warp_service = TowerToHyperService::new(warp::service(routes));
            let response = hyper::service::Service::call(&warp_service, request);
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        })
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            // The connection ended: the peer closed, an error, or it became a websocket
            // (which then owns the socket and its slot).
            ended = conn.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            // Too slow to send a request, or idle too long.
            expired = activity.expired(limits) => match expired {
                // Nothing of a request has been answered or acknowledged: just drop it.
                Expired::HeaderRead => {
                    tracing::debug!("closing a connection whose request headers did not arrive in time");
                    return;
                }
                // hyper closes an idle connection at once, and finishes a request that has
                // just arrived; if it still lingers, the header-read timeout ends it.
                Expired::Idle => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    activity.restart_wait();
                }
            },
            // The server is stopping: finish what is in flight, then close.
            changed = stopping.changed(), if !closing => {
                if changed.is_err() || *stopping.borrow() {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// What a connection is doing, shared by its IO, its service and its watchdog. Times are
/// milliseconds since `born`, so that they fit in atomics.
#[derive(Debug)]
struct Activity {
    born: Instant,
    /// Requests handed to the service and not yet answered.
    in_flight: AtomicUsize,
    /// When the connection last had nothing in flight (the accept, or the last answer).
    idle_since: AtomicU64,
    /// When the first byte arrived since then, plus one; 0: none yet.
    head_since: AtomicU64,
    /// Whether a request has been answered (a keep-alive connection, not a new one).
    served: AtomicBool,
    /// Signalled when a request is answered, for a watchdog waiting on one.
    answered: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            answered: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.born + Duration::from_millis(ms)
    }

    /// Bytes were read: if nothing was in flight, a request's headers start arriving now.
    fn bytes_arrived(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            let _ = self.head_since.compare_exchange(
                0,
                self.now_ms() + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// Starts the wait for a first request again, from now (after an idle close was asked).
    fn restart_wait(&self) {
        self.served.store(false, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        self.idle_since.store(self.now_ms(), Ordering::Release);
    }

    /// When the connection expires if nothing changes, and why; `None` while a request is in
    /// flight.
    fn deadline(&self, limits: ConnectionLimits) -> Option<(Instant, Expired)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head_since = self.head_since.load(Ordering::Acquire);
        if head_since > 0 {
            return Some((
                self.at(head_since - 1) + limits.header_read_timeout,
                Expired::HeaderRead,
            ));
        }
        let idle_since = self.at(self.idle_since.load(Ordering::Acquire));
        Some(if self.served.load(Ordering::Acquire) {
            (idle_since + limits.idle_timeout, Expired::Idle)
        } else {
            (idle_since + limits.header_read_timeout, Expired::HeaderRead)
        })
    }

    /// Resolves when the connection has expired.
    async fn expired(&self, limits: ConnectionLimits) -> Expired {
        loop {
            let notified = self.answered.notified();
            let Some((deadline, why)) = self.deadline(limits) else {
                // A request is in flight: it has no deadline here; wait for its answer.
                notified.await;
                continue;
            };
            if Instant::now() >= deadline {
                return why;
            }
            tokio::select! {
                // Time is up, unless something happened meanwhile (checked on the next turn).
                () = tokio::time::sleep_until(deadline) => {}
                // A request was answered: the deadline moved.
                () = notified => {}
            }
        }
    }
}

/// Marks a request in flight on its connection for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(0, Ordering::Release);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        // The idle time starts now; set it before the count drops so the watchdog sees it.
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Release);
        activity.head_since.store(0, Ordering::Release);
        activity.served.store(true, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.answered.notify_one();
    }
}

/// A connection's socket, telling its [`Activity`] when bytes arrive, and holding its slot
/// under the connection limit for as long as the socket lives (a websocket included).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_backoff_doubles_to_a_second_and_logs_once_per_run() {
        let mut backoff = AcceptBackoff::default();
        let delays: Vec<(u64, bool)> = (0..6)
            .map(|_| {
                let (delay, first) = backoff.failed();
                (delay.as_millis() as u64, first)
            })
            .collect();
        assert_eq!(
            delays,
            [
                (100, true),
                (200, false),
                (400, false),
                (800, false),
                (1000, false),
                (1000, false)
            ]
        );
        assert_eq!(backoff.succeeded(), Some(6), "the recovery is logged once");
        assert_eq!(backoff.succeeded(), None);
        assert_eq!(
            backoff.failed(),
            (Duration::from_millis(100), true),
            "a new run"
        );
    }

    #[test]
    fn the_default_connection_limit_leaves_room_below_the_descriptor_limit() {
        for (limit, expected) in [
            (Some(20_000), 17_872),
            (Some(1_024), 794),
            (Some(65_536), 58_855),
            (Some(100), 128),
            (None, FALLBACK_MAX_CONNECTIONS),
        ] {
            assert_eq!(connections_for(limit), expected, "fd limit {limit:?}");
        }
    }

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10,
        }
    }

    /// `deadline - born`, which is exact up to the milliseconds this test takes.
    fn after_birth(activity: &Activity) -> Option<(Duration, Expired)> {
        activity
            .deadline(limits())
            .map(|(deadline, why)| (deadline - activity.born, why))
    }

    fn about(got: Duration, expected: Duration) -> bool {
        got >= expected && got < expected + Duration::from_secs(1)
    }

    #[test]
    fn a_new_connection_has_the_header_read_timeout_and_a_served_one_the_idle_timeout() {
        let activity = Arc::new(Activity::new());
        let (deadline, why) = after_birth(&activity).unwrap();
        assert_eq!(why, Expired::HeaderRead, "waiting for the first request");
        assert!(about(deadline, Duration::from_secs(10)), "{deadline:?}");

        activity.bytes_arrived();
        let (deadline, why) = after_birth(&activity).unwrap();
        assert_eq!(why, Expired::HeaderRead, "headers are arriving");
        assert!(about(deadline, Duration::from_secs(10)), "{deadline:?}");

        let in_flight = InFlight::start(activity.clone());
        assert_eq!(after_birth(&activity), None, "no deadline while in flight");
        activity.bytes_arrived();
        assert_eq!(
            after_birth(&activity),
            None,
            "body bytes are not a new request"
        );
        drop(in_flight);

        let (deadline, why) = after_birth(&activity).unwrap();
        assert_eq!(
            why,
            Expired::Idle,
            "answered: now it is a keep-alive connection"
        );
        assert!(about(deadline, Duration::from_secs(60)), "{deadline:?}");

        activity.restart_wait();
        let (_, why) = after_birth(&activity).unwrap();
        assert_eq!(why, Expired::HeaderRead, "after an idle close was asked");
    }
}
