//! # callbackd
//!
//! A single-binary callback and chat-routing service that speaks the Genesys Mobile Services
//! (GMS) wire API, with its storage embedded (sled).
//!
//! # Layout
//!
//! - [`cli`]: `callbackd user ...`, through the database or the running server.
//! - [`config`]: typed configuration (file, `CALLBACKD_*` environment, flags).
//! - [`clock`]: injected time, so that time-driven rules are tested without sleeping.
//! - [`domain`]: pure types and rules: options, `_target`, the service lifecycle.
//! - [`center`]: the embedded contact center: agents, their states, Stat Server statistics.
//! - [`store`]: the only module that knows sled and bincode: trees, keys, codec, migrations,
//!   group commit.
//! - [`app`]: the use cases handlers call; each returns only once its writes are durable.
//! - [`http`]: warp filters that parse, call one `app` function, and reply.
//! - [`router`]: the routing state machine (`core`, composed of the priority `lanes` over a
//!   counted set, `ranked`) and the task that owns it.
//! - [`push`]: notification fan-out: stored first, then pushed over CometD or HTTP callback.
//! - [`cometd`]: the CometD (Bayeux 1.0) server: clients, held connects, pushes.
//! - [`expiry`]: the `_ttl` removal job (tokio-cron-scheduler).
//! - [`metrics`]: the Prometheus registry behind `GET /metrics`.
//! - [`server`]: the HTTP connection loop: connection limit, header-read and idle timeouts,
//!   accept backoff, graceful stop.
//! - [`startup`]: building an [`App`]: opening the store, seeding configured services,
//!   the admin token, binding the listener.
//!
//! Dependencies point one way: `http` -> `app` -> `domain` and `store`.

pub mod app;
pub mod center;
pub mod cli;
pub mod clock;
pub mod cometd;
pub mod config;
pub mod domain;
pub mod expiry;
pub mod http;
pub mod metrics;
pub mod push;
pub mod router;
pub mod server;
pub mod startup;
pub mod store;

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
    shutdown: tokio::sync::watch::Sender<bool>,
    router_task: tokio::task::JoinHandle<()>,
    push_task: tokio::task::JoinHandle<()>,
}

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
            shutdown: built.shutdown,
            router_task: built.router_task,
            push_task: built.push_task,
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
            shutdown: stop_tasks,
            router_task,
            push_task,
        } = self;
        let mut scheduler = expiry::schedule(
            state.store.clone(),
            state.clock.clone(),
            state.router.clone(),
            state.chat.clone(),
            state.metrics.expiry().clone(),
            &config.expiry_schedule,
        )
        .await
        .map_err(StartupError::Jobs)?;

        let cometd_sweeper = tokio::spawn(state.bayeux.clone().sweep_until(stop_tasks.subscribe()));
        let presence_sweeper = tokio::spawn(crate::app::presence::run_until(
            state.clone(),
            stop_tasks.subscribe(),
        ));

        let routes = http::routes(state.clone());
        let bayeux = state.bayeux.clone();
        let shutdown = async move {
            shutdown.await;
            // Answer held long-polls now, or the graceful stop would wait out their timeouts.
            bayeux.shutdown();
        };
        let limits = server::ConnectionLimits::from_config(&config.http);
        server::serve(listener, routes, limits, shutdown).await;
        tracing::info!("stopped accepting; in-flight requests are answered");

        if let Err(err) = scheduler.shutdown().await {
            tracing::warn!(error = %err, "expiry scheduler did not stop cleanly");
        }
        let _ = stop_tasks.send(true);
        match tokio::time::timeout(std::time::Duration::from_secs(10), router_task).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "router task failed"),
            Err(_) => tracing::error!("router task did not stop within 10 s"),
        }
        match tokio::time::timeout(std::time::Duration::from_secs(10), push_task).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "http callback worker failed"),
            Err(_) => tracing::error!("http callback worker did not stop within 10 s"),
        }
        match tokio::time::timeout(std::time::Duration::from_secs(10), cometd_sweeper).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "CometD sweeper failed"),
            Err(_) => tracing::error!("CometD sweeper did not stop within 10 s"),
        }
        match tokio::time::timeout(std::time::Duration::from_secs(10), presence_sweeper).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "desktop presence sweeper failed"),
            Err(_) => tracing::error!("desktop presence sweeper did not stop within 10 s"),
        }
        let store = state.store.clone();
        match tokio::task::spawn_blocking(move || store.flush_blocking()).await {
            Ok(Ok(())) => tracing::info!("database flushed"),
            Ok(Err(err)) => tracing::error!(error = %err, "final flush failed"),
            Err(err) => tracing::error!(error = %err, "final flush task failed"),
        }
        Ok(())
    }
}
