//! # callbackd
//!
//! A single-binary callback and chat-routing service that speaks the Genesys Mobile Services
//! (GMS) wire API, with its storage embedded (sled).
//!
//! # Layout
//!
//! From the top down; a module uses only those below it, never one beside or above it
//! (`tests/layers.rs` checks this from the source, and that no folder's files use each other
//! in a circle):
//!
//! - `fuzzing` (hidden): one entry point per parser for the fuzz targets in `fuzz/`.
//! - [`http`]: warp filters that parse, call one `app` function, and reply. [`startup`]:
//!   building an [`App`] (opening the store, seeding configured services, the admin token,
//!   binding the listener). [`cli`]: `callbackd user ...`, through the database or the
//!   running server.
//! - [`app`]: the use cases handlers call; each returns only once its writes are durable.
//! - [`metrics`]: the Prometheus registry behind `GET /metrics`.
//! - [`expiry`]: the `_ttl` removal job (tokio-cron-scheduler). [`server`]: the HTTP
//!   connection loop (connection limit, header-read and idle timeouts, accept backoff,
//!   graceful stop).
//! - [`router`]: the routing state machine (`core`, composed of the priority `lanes` over a
//!   counted set, `ranked`) and the task that owns it. [`config`]: typed configuration (file,
//!   `CALLBACKD_*` environment, flags).
//! - [`push`]: notification fan-out: stored first, then pushed over CometD or HTTP callback.
//! - [`center`]: the embedded contact center's live parts: the Chat Server owning the open
//!   sessions, and the Stat Server statistics. [`cometd`]: the CometD (Bayeux 1.0) server:
//!   clients, held connects, pushes.
//! - [`store`]: storage behind the [`store::engine`] traits, in the domain's words; [`store::Store`]
//!   is the handle every module above holds. Its sled engine is the only code that knows sled
//!   and bincode: trees, keys, codec, migrations, group commit.
//! - [`clock`]: injected time, so that time-driven rules are tested without sleeping.
//! - [`domain`]: pure types and rules (options, `_target`, the service lifecycle, agents, the
//!   rules of a chat session), no I/O. [`supervisor`]: the named background tasks and their
//!   shared shutdown.

pub mod app;
pub mod center;
pub mod cli;
pub mod clock;
pub mod cometd;
pub mod config;
pub mod domain;
pub mod expiry;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod push;
pub mod router;
pub mod server;
pub mod startup;
pub mod store;
pub mod supervisor;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use startup::StartupError;

use crate::app::AppState;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;

/// A built server: listener bound, not yet serving. On sled, or on PostgreSQL holding the
/// lease, its storage is open and the router runs; a follower of another node over the same
/// PostgreSQL database relays requests to that node until it takes the lease itself.
pub struct App {
    listener: TcpListener,
    node: startup::Start,
    config: Config,
    clock: Arc<dyn Clock>,
    supervisor: supervisor::Supervisor,
}

/// How long the background tasks get to stop once shutdown is raised.
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

impl App {
    /// Builds the server with the system clock. See [`App::build_with_clock`].
    ///
    /// # Errors
    /// See [`StartupError`].
    pub async fn build(config: Config) -> Result<App, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Binds the listener on `config.listen` (port 0 picks a free port); then, unless another
    /// node holds the PostgreSQL lease, opens the database (applying migrations), seeds the
    /// configured services on first start, resolves the admin token, removes services that
    /// expired while it was down, and starts the router.
    ///
    /// # Errors
    /// See [`StartupError`]; each names what to fix.
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartupError> {
        let mut supervisor = supervisor::Supervisor::new();
        let (listener, node) = startup::build(&config, clock.clone(), &mut supervisor).await?;
        Ok(App {
            listener,
            node,
            config,
            clock,
            supervisor,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// The shared state (for in-process tools such as the benchmark); `None` on a follower,
    /// which holds none.
    pub fn state(&self) -> Option<&AppState> {
        match &self.node {
            startup::Start::Active(built) => Some(&built.state),
            startup::Start::Follower { .. } => None,
        }
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes in-flight requests,
    /// stops the background jobs and flushes the database. A follower relays until it takes
    /// the lease, then serves as the active node.
    ///
    /// # Errors
    /// A background job could not start, or a follower could not take over.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let App {
            listener,
            node,
            config,
            clock,
            mut supervisor,
        } = self;
        let local = listener.local_addr().unwrap_or(config.listen);
        // Raised when the server stops accepting: relayed requests end a moment later (the relay's grace).
        let (stopping, relay_stops) = tokio::sync::watch::channel(false);
        let first_routes = match &node {
            startup::Start::Active(built) => http::boxed_routes(built.state.clone()),
            startup::Start::Follower { url } => {
                let (holder, looking) = tokio::sync::watch::channel(None);
                supervisor.spawn(
                    "lease follower",
                    http::relay::follow_holder(url.clone(), holder, supervisor.shutdown()),
                );
                http::relay::Relay::new(looking, config.max_body_bytes, relay_stops).routes()
            }
        };
        let (routes, serving_routes) = tokio::sync::watch::channel(first_routes);
        // Set once the node serves: held long-polls are answered at once when it stops.
        let bayeux = Arc::new(std::sync::OnceLock::<cometd::Bayeux>::new());
        // A failed task or take-over stops the server as the signal does.
        let failed = Arc::new(tokio::sync::Notify::new());
        let stop = {
            let failed = failed.clone();
            let bayeux = bayeux.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = failed.notified() => {}
                }
                // Answer held long-polls now (this node's own, and those it relays), or the
                // graceful stop would wait out their timeouts.
                let _ = stopping.send(true);
                if let Some(bayeux) = bayeux.get() {
                    bayeux.shutdown();
                }
            }
        };
        let limits = server::ConnectionLimits::from_config(&config.http);
        let serving = server::serve(listener, serving_routes, limits, stop);
        tokio::pin!(serving);

        let taking_over = async {
            match node {
                startup::Start::Active(built) => Ok(*built),
                startup::Start::Follower { url } => {
                    let lease = startup::take_over(&config, &url).await?;
                    startup::build_active(
                        &config,
                        clock.clone(),
                        Some(lease),
                        local,
                        &mut supervisor,
                    )
                    .await
                }
            }
        };
        let outcome = tokio::select! {
            // Stopped by the signal while following.
            () = &mut serving => None,
            built = taking_over => Some(built),
        };
        let built = match outcome {
            None => {
                supervisor.stop(STOP_DEADLINE).await;
                return Ok(());
            }
            Some(Err(err)) => {
                failed.notify_one();
                serving.await;
                supervisor.stop(STOP_DEADLINE).await;
                return Err(err);
            }
            Some(Ok(built)) => built,
        };
        let startup::Built { state, lease } = built;
        let _ = bayeux.set(state.bayeux.clone());
        let activated = activate(&config, &state, &mut supervisor, &routes, lease, local).await;
        let failure = match activated {
            // A job or the lease's address could not start: stop as a failed task does.
            Err(err) => {
                failed.notify_one();
                serving.await;
                Some(Err(err))
            }
            Ok(()) => tokio::select! {
                // Stopped by the signal.
                () = &mut serving => None,
                // A background task panicked or ended: stop serving, then report it.
                failure = supervisor.failed() => {
                    failed.notify_one();
                    serving.await;
                    Some(Ok(failure))
                }
            },
        };
        tracing::info!("stopped accepting; in-flight requests are answered");
        supervisor.stop(STOP_DEADLINE).await;
        let store = state.store.clone();
        match tokio::task::spawn_blocking(move || store.flush_blocking()).await {
            Ok(Ok(())) => tracing::info!("database flushed"),
            Ok(Err(err)) => tracing::error!(error = %err, "final flush failed"),
            Err(err) => tracing::error!(error = %err, "final flush task failed"),
        }
        match failure {
            Some(Ok(failure)) => Err(StartupError::TaskFailed(failure)),
            Some(Err(err)) => Err(err),
            None => Ok(()),
        }
    }
}

/// Starts what an active node runs besides the router (the expiry job, the sweepers), serves
/// its own routes, and, on PostgreSQL, publishes where it serves and watches its lease.
async fn activate(
    config: &Config,
    state: &AppState,
    supervisor: &mut supervisor::Supervisor,
    routes: &tokio::sync::watch::Sender<server::Routes>,
    lease: Option<store::postgres::Lease>,
    local: SocketAddr,
) -> Result<(), StartupError> {
    let scheduler = expiry::schedule(
        state.store.clone(),
        state.clock.clone(),
        state.router.clone(),
        state.chat.clone(),
        state.metrics.expiry().clone(),
        &config.expiry_schedule,
    )
    .await
    .map_err(StartupError::Jobs)?;
    supervisor.spawn(
        "expiry scheduler",
        expiry::supervise(scheduler, supervisor.shutdown()),
    );
    supervisor.spawn(
        "CometD sweeper",
        state.bayeux.clone().sweep_until(supervisor.shutdown()),
    );
    supervisor.spawn(
        "desktop presence sweeper",
        crate::app::presence::run_until(state.clone(), supervisor.shutdown()),
    );
    // A follower's requests from now on are this node's own; then the others may relay here.
    routes.send_replace(http::boxed_routes(state.clone()));
    if let Some(lease) = lease {
        let address = startup::advertised_address(config, local);
        startup::serve_lease(config, lease, &address, supervisor).await?;
    }
    Ok(())
}
