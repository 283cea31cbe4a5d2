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

/// A built server: storage open, configuration loaded, router running, listener bound, not
/// yet serving.
pub struct App {
    listener: TcpListener,
    state: AppState,
    config: Config,
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

    /// Opens the database (applying migrations), seeds the configured services on first start,
    /// resolves the admin token, removes services that expired while it was down, and binds
    /// the listener on `config.listen` (port 0 picks a free port).
    ///
    /// # Errors
    /// See [`StartupError`]; each names what to fix.
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartupError> {
        let built = startup::build(&config, clock).await?;
        Ok(App {
            listener: built.listener,
            state: built.state,
            config,
            supervisor: built.supervisor,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// The shared state (for in-process tools such as the benchmark).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes in-flight requests,
    /// stops the background jobs and flushes the database.
    ///
    /// # Errors
    /// A background job could not start.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let App {
            listener,
            state,
            config,
            mut supervisor,
        } = self;
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

        let routes = http::routes(state.clone());
        let bayeux = state.bayeux.clone();
        // A failed task stops the server as the signal does.
        let failed = Arc::new(tokio::sync::Notify::new());
        let stop = {
            let failed = failed.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = failed.notified() => {}
                }
                // Answer held long-polls now, or the graceful stop would wait out their timeouts.
                bayeux.shutdown();
            }
        };
        let limits = server::ConnectionLimits::from_config(&config.http);
        let serving = server::serve(listener, routes, limits, stop);
        tokio::pin!(serving);
        let failure = tokio::select! {
            // Stopped by the signal.
            () = &mut serving => None,
            // A background task panicked or ended: stop serving, then report it.
            failure = supervisor.failed() => {
                failed.notify_one();
                serving.await;
                Some(failure)
            }
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
            Some(failure) => Err(StartupError::TaskFailed(failure)),
            None => Ok(()),
        }
    }
}
