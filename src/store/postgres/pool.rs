//! Connections to PostgreSQL for the engine's synchronous methods.
//!
//! The engine traits are synchronous (sled's calls are), while `tokio-postgres` is async. The
//! connections' I/O therefore runs on a small runtime of the engine's own, and a method waits
//! for its statements with [`wait`]: the client's futures talk to their connection task over
//! channels only, so they can be driven from any thread, the caller's included, without
//! touching the caller's runtime. On a multi-threaded runtime the wait is
//! `block_in_place`, which hands that worker's other tasks to another thread meanwhile; on a
//! current-thread runtime (the tests') it simply blocks, as a sled call does.
//!
//! The pool keeps up to `size` connections; a connection found closed (the database
//! restarted, the network failed) is dropped and replaced at the next checkout, so a node
//! recovers by itself when the database returns.

use std::future::Future;
use std::sync::{Condvar, Mutex};

use tokio::runtime::RuntimeFlavor;
use tokio_postgres::{Client, NoTls};

use crate::store::StoreError;

/// Drives `future` to its end from synchronous code (see the module's documentation).
pub(crate) fn wait<F: Future>(future: F) -> F::Output {
    blocking(|| futures_executor::block_on(future))
}

/// Runs `block`, which blocks the thread: inside `block_in_place` on a multi-threaded runtime,
/// so that the worker's other tasks move to another thread meanwhile.
pub(crate) fn blocking<T>(block: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(block)
        }
        _ => block(),
    }
}

/// Up to `size` connections to one database, opened on demand.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    /// Runs every connection's I/O task. `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    size: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Client>,
    /// Connections open, idle or checked out.
    open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("size", &self.size).finish()
    }
}

impl Pool {
    /// A pool over `url` (`postgres://user:password@host:port/database`) of at most `size`
    /// connections; opens one at once, so that a wrong address or password fails here.
    pub(crate) fn open(url: &str, size: usize) -> Result<Pool, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StoreError::Engine(format!("store url: {err}")))?;
        // Acknowledged means committed to the WAL on disk, whatever the server's or the role's
        // default says.
        // And the server's notices ("already exists, skipping") stay out of callbackd's log.
        let ours = "-c synchronous_commit=on -c client_min_messages=warning";
        let options = match config.get_options() {
            Some(given) => format!("{given} {ours}"),
            None => ours.to_string(),
        };
        config.options(&options);
        // A server that is gone must show as gone within seconds, not after TCP's two-hour
        // keepalive: the lease depends on it (a half-open socket would hold it forever).
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        config
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(5))
            .keepalives_interval(std::time::Duration::from_secs(1))
            .keepalives_retries(3)
            .tcp_user_timeout(std::time::Duration::from_secs(10));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("callbackd-postgres")
            .enable_all()
            .build()
            .map_err(|err| StoreError::Io(format!("starting the PostgreSQL runtime: {err}")))?;
        let pool = Pool {
            config,
            runtime: Some(runtime),
            size: size.max(1),
            state: Mutex::new(PoolState::default()),
            returned: Condvar::new(),
        };
        let first = pool.connect()?;
        let mut state = pool.state.lock().expect("pool lock");
        state.open = 1;
        state.idle.push(first);
        drop(state);
        Ok(pool)
    }

    /// Opens a new connection, its I/O task on the pool's runtime.
    fn connect(&self) -> Result<Client, StoreError> {
        let config = self.config.clone();
        let runtime = self
            .runtime
            .as_ref()
            .expect("the pool's runtime runs until drop");
        let connecting = runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::warn!(error = %err, "PostgreSQL connection ended");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        match wait(connecting) {
            Ok(connected) => connected.map_err(StoreError::from),
            Err(join) => Err(StoreError::Engine(format!("connecting: {join}"))),
        }
    }

    /// A connection for one method's statements, back in the pool when dropped. Waits while
    /// all `size` are in use.
    pub(crate) fn get(&self) -> Result<Conn<'_>, StoreError> {
        let mut state = self.state.lock().expect("pool lock");
        loop {
            while let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Conn {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(client) => Ok(Conn {
                        pool: self,
                        client: Some(client),
                    }),
                    Err(err) => {
                        self.state.lock().expect("pool lock").open -= 1;
                        self.returned.notify_one();
                        Err(err)
                    }
                };
            }
            // Every connection is in use: wait for one back without holding up the
            // runtime's other tasks.
            state = blocking(|| self.returned.wait(state)).expect("pool lock");
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.state.lock().expect("pool lock").idle.clear();
        // A runtime may not be dropped where blocking is not allowed (inside a test's or the
        // server's runtime); its connection tasks end with their clients anyway.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A pooled connection (see [`Pool::get`]).
pub(crate) struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("held until drop")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("held until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let mut state = self.pool.state.lock().expect("pool lock");
            if client.is_closed() {
                state.open -= 1;
            } else {
                state.idle.push(client);
            }
            drop(state);
            self.pool.returned.notify_one();
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        // The server's own message (with its detail) says more than the client's summary.
        match err.as_db_error() {
            // Class 08 (connection exception) and 57P0x (the server shutting down, starting,
            // or this session terminated): the server is away, not the request wrong.
            Some(db)
                if db.code().code().starts_with("08")
                    || [
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                    ]
                    .contains(db.code()) =>
            {
                StoreError::Unreachable(format!("PostgreSQL: {}", db.message()))
            }
            Some(db) => StoreError::Engine(format!(
                "PostgreSQL: {}{}",
                db.message(),
                db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
            )),
            // No answer from the server at all: the connection failed or was closed.
            None if err.is_closed()
                || std::error::Error::source(&err)
                    .is_some_and(|source| source.is::<std::io::Error>()) =>
            {
                StoreError::Unreachable(format!("PostgreSQL: {err}"))
            }
            // The client's own complaint (a value of an unexpected type, say): not an outage.
            None => StoreError::Engine(format!("PostgreSQL: {err}")),
        }
    }
}
