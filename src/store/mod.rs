//! Storage: what an engine provides, in the domain's words ([`engine`]: the traits, and
//! [`Store`], the handle every other module holds), and the sled engine ([`SledStore`]: every
//! other file here), the only code that knows sled and bincode.
//!
//! The sled engine owns the named trees, builds their keys (big-endian, so range scans follow time order),
//! encodes values behind a format-version byte, keeps a record and its index entries in one
//! transaction, runs the data migrations, and acknowledges durable writes through one group
//! committer. Nothing outside this module sees a `sled::IVec` or a `sled::Tree`.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | name | schema version, seeding marks |
//! | `templates` | service name | [`ConfiguredService`] |
//! | `services` | service id | [`ServiceRecord`] (without its routing history) |
//! | `routing_history` | service id ++ 0 ++ seq | [`RoutingEvent`] (a service's routing history, appended: `routing.rs`) |
//! | `by_expiry` | expire_at ++ id | () |
//! | `by_desired_time` | desired_time ++ id (SCHEDULED only) | () |
//! | `by_time` | desired_time ++ id (every service) | state, service name, customer number (`by_time.rs`) |
//! | `by_customer` | customer number ++ 0 ++ id | () |
//! | `by_service_state` | service name ++ 0 ++ state ++ id | () |
//! | `by_owner` | gms_user ++ 0 ++ service name ++ 0 ++ id (owned services only) | () |
//! | `by_agent` | agent ++ 0 ++ id (one per agent who handled it) | state code (`by_agent.rs`) |
//! | `agents` | agent id | [`AgentRecord`] |
//! | `notifications` | service id ++ 0 ++ seq | [`Notification`](crate::domain::notification::Notification) (customer-bound) |
//! | `undelivered` | gms_user ++ 0 ++ seq (comet services only) | service id |
//! | `agent_notifications` | service id ++ 0 ++ seq | [`Notification`](crate::domain::notification::Notification) (agent-bound) |
//! | `chat_sessions` | chat session id | [`ChatSession`](crate::domain::chat::session::ChatSession) |
//! | `transcripts` | chat session id ++ 0 ++ position | [`TranscriptEvent`](crate::domain::chat::TranscriptEvent) |
//! | `accounts` | user name | a stored account (`accounts.rs`: its own versioned type, not the domain's) |
//! | `storage`, `storage_by_expiry`, `service_storage` | area id / expire_at ++ id / service id | Storage API areas (`storage.rs`) |
//! | `subscriptions`, `subscriptions_by_expiry` | id / expire_at ++ id | Notification API subscriptions (`storage.rs`) |
//! | `throttles` | service ++ throttle / day ++ service ++ parameter ++ value | GMS's throttle counts (`throttle.rs`) |
//!
//! The routing history's methods live in `routing.rs`, the notification methods in
//! `notifications.rs`, the chat ones in `chat.rs`, the
//! console users' in `accounts.rs`, the time index's in `by_time.rs`, the agent index's in
//! `by_agent.rs`; the
//! in-memory counts of active services in `counts.rs`, and of the time index per hour,
//! configured service and state in `time_counts.rs`.

mod accounts;
mod by_agent;
mod by_time;
mod chat;
mod codec;
mod commit;
mod counts;
pub mod engine;
mod flush_stats;
mod fuzz;
mod keys;
pub mod migrate;
mod notifications;
mod pending;
pub mod postgres;
mod routing;
mod status;
mod storage;
mod stored;
mod throttle;
mod time_counts;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use crate::domain::agent::AgentRecord;
use crate::domain::options::ConfiguredService;
use crate::domain::service::{
    CallbackState, RouteProgress, RoutingEvent, ServiceAccess, ServiceRecord,
};
use crate::domain::storage::StorageArea;
use crate::domain::time::Timestamp;
pub use by_time::{ServiceSummary, StateCounts, TimeSelection};
use commit::{CommitOptions, Committer};
pub use engine::{
    Accounts, Agents, Chats, Configuration, Database, Engine, Notifications, RoutingHistory,
    ServiceChange, Services, StatusOutbox, StorageApi, Throttles, TimeIndex,
};
pub use flush_stats::{CommitStats, FlushLatency, FLUSH_WINDOW};
use futures_util::future::BoxFuture;
pub(crate) use fuzz::fuzz_stored;
pub use notifications::NewNotification;
use pending::Commit;
pub use pending::{Pending, Receipts};

/// Tree names, in one place.
pub(crate) mod tree {
    pub const META: &str = "meta";
    pub const TEMPLATES: &str = "templates";
    pub const SERVICES: &str = "services";
    pub const ROUTING_HISTORY: &str = "routing_history";
    pub const BY_EXPIRY: &str = "by_expiry";
    pub const BY_DESIRED_TIME: &str = "by_desired_time";
    pub const BY_TIME: &str = "by_time";
    pub const BY_CUSTOMER: &str = "by_customer";
    pub const BY_SERVICE_STATE: &str = "by_service_state";
    pub const BY_OWNER: &str = "by_owner";
    pub const BY_AGENT: &str = "by_agent";
    pub const AGENTS: &str = "agents";
    pub const NOTIFICATIONS: &str = "notifications";
    pub const CHAT_SESSIONS: &str = "chat_sessions";
    pub const TRANSCRIPTS: &str = "transcripts";
    pub const UNDELIVERED: &str = "undelivered";
    pub const AGENT_NOTIFICATIONS: &str = "agent_notifications";
    pub const ACCOUNTS: &str = "accounts";
    pub const STORAGE: &str = "storage";
    pub const STORAGE_BY_EXPIRY: &str = "storage_by_expiry";
    pub const SERVICE_STORAGE: &str = "service_storage";
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    pub const SUBSCRIPTIONS_BY_EXPIRY: &str = "subscriptions_by_expiry";
    pub const THROTTLES: &str = "throttles";
    pub const STATUS_OUTBOX: &str = "status_outbox";
    pub const STATUS_PENDING: &str = "status_pending";
}

/// Services removed per expiry transaction.
const PURGE_CHUNK: usize = 100;

/// Keys of the `meta` tree.
mod meta_key {
    pub const TEMPLATES_SEEDED: &[u8] = b"templates_seeded";
    pub const AGENTS_SEEDED: &[u8] = b"agents_seeded";
}

/// A storage failure. Messages are for operators (logs), not for API clients.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The storage engine reported an error.
    #[error("database error: {0}")]
    Engine(String),
    /// A value could not be encoded.
    #[error("cannot encode a value: {0}")]
    Encode(String),
    /// A stored value could not be read.
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which value.
        what: String,
        /// Why.
        reason: String,
    },
    /// The database was written by a newer callbackd.
    #[error("the database has schema version {found}, newer than this callbackd understands ({supported}): run a callbackd at least as new as the one that wrote it, or restore a backup")]
    SchemaTooNew {
        /// Version found on disk.
        found: u32,
        /// Newest version this binary knows.
        supported: u32,
    },
    /// Another process (a running server) holds the database's lock; sled lets one process
    /// open it at a time.
    #[error("the database is in use by another process (a running callbackd?): {0}")]
    Locked(String),
    /// A flush failed; the change may not be durable.
    #[error("flushing the database failed: {0}")]
    Flush(String),
    /// The store is closing.
    #[error("the database is shutting down")]
    ShuttingDown,
    /// The database server cannot be reached (down, restarting, the network to it failed):
    /// the change was not acknowledged. The engine reconnects by itself when it returns.
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    /// The connection failed while a COMMIT was on its way: the change may or may not have
    /// been stored, and nothing can tell which until the database answers again.
    #[error("the database connection failed during a commit, so whether the change was stored is unknown: {0}")]
    CommitUnknown(String),
    /// An operating-system error.
    #[error("i/o error: {0}")]
    Io(String),
    /// A write that adds data was refused before it was made: the database's filesystem has
    /// less free space than `[store] min_free_bytes`. Nothing was written.
    #[error("the database's disk is nearly full ({free_bytes} bytes free, min_free_bytes is {min_free_bytes}): new data is refused until space is freed")]
    LowSpace {
        /// Free bytes at the last measurement.
        free_bytes: u64,
        /// The configured minimum.
        min_free_bytes: u64,
    },
    /// The filesystem was full (ENOSPC) when sled wrote or flushed. sled 0.34.7 keeps this
    /// error for every later write and flush until the database is opened again.
    #[error("the database's disk is full: {0}")]
    NoSpace(String),
}

impl StoreError {
    /// An I/O error while `what`; ENOSPC becomes [`StoreError::NoSpace`].
    pub(crate) fn from_io(what: &str, err: std::io::Error) -> Self {
        if is_no_space(&err) {
            StoreError::NoSpace(format!("{what}: {err}"))
        } else {
            StoreError::Io(format!("{what}: {err}"))
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        match &err {
            sled::Error::Io(io) if is_no_space(io) => StoreError::NoSpace(err.to_string()),
            _ => StoreError::Engine(err.to_string()),
        }
    }
}

fn is_no_space(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::StorageFull || err.raw_os_error() == Some(28)
}

/// How far an acknowledged write has gone (`[store] sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// On the device: after each group-commit flush the database's files are `fdatasync`ed,
    /// so an acknowledged write survives a power cut.
    #[default]
    Device,
    /// Handed to the operating system (sled's `sync_file_range`): survives a crash of
    /// callbackd, not necessarily a power cut. Faster.
    Os,
}

/// Which engine holds the data (`[store] engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// sled, embedded in the data directory: one node, nothing else to run.
    #[default]
    Sled,
    /// A PostgreSQL database at `[store] url`, shared by any number of nodes.
    Postgres,
}

/// `[store]`: the engine; for sled, durability, the free-space floor and the cache; for
/// PostgreSQL, its address and connection count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// See [`EngineKind`].
    pub engine: EngineKind,
    /// The PostgreSQL database (`postgres://user:password@host:port/database`; also
    /// `CALLBACKD_STORE_URL`). Required with `engine = "postgres"`.
    pub url: Option<String>,
    /// The most connections this node opens to PostgreSQL
    /// ([`postgres::DEFAULT_POOL_SIZE`]).
    pub pool_size: usize,
    /// Where the other nodes over the same PostgreSQL database reach this one (`host:port`;
    /// also `CALLBACKD_STORE_ADVERTISE`) to relay requests while it is the active node. Unset:
    /// the listen address, with a wildcard IP replaced by the host's name.
    pub advertise: Option<String>,
    /// The lease epoch this node holds on PostgreSQL, set by start-up once it took the lease
    /// (never from the file): its writes are fenced by it ([`postgres::PgStore::open_fenced`]).
    #[serde(skip)]
    pub lease_epoch: Option<i64>,
    /// See [`SyncMode`].
    pub sync: SyncMode,
    /// Writes that add data are refused (503) while the filesystem of the database has less
    /// free space than this; 0 turns the check off.
    pub min_free_bytes: u64,
    /// The most memory sled's page cache may hold ([`DEFAULT_CACHE_BYTES`]; sled's own default
    /// is 1 GiB, more than a small box should give it).
    pub cache_bytes: u64,
}

/// 64 MiB: room for sled's log segments, a snapshot and the writes that go on (routing,
/// deletions) while new data is refused.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

/// 256 MiB: sled's page cache on a small box. What routing restores at start-up and the pages
/// read most stay cached; a larger database reads the rest from the OS's own file cache.
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// The smallest `cache_bytes` accepted: below it sled would evict the pages a single request
/// reads.
pub const MIN_CACHE_BYTES: u64 = 1024 * 1024;

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            engine: EngineKind::Sled,
            url: None,
            pool_size: postgres::DEFAULT_POOL_SIZE,
            advertise: None,
            lease_epoch: None,
            sync: SyncMode::Device,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// What one [`Services::purge_expired`] call did.
#[derive(Debug, Default)]
pub struct Purged {
    /// Expiry-index entries looked at.
    pub scanned: usize,
    /// Ids of the services removed.
    pub removed: Vec<String>,
}

/// Either the caller's closure refused the update, or storage failed.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The closure returned this error; nothing was written.
    Rejected(E),
    /// Storage failed.
    Store(StoreError),
}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(err: StoreError) -> Self {
        UpdateError::Store(err)
    }
}

struct Trees {
    meta: Tree,
    templates: Tree,
    services: Tree,
    routing_history: Tree,
    by_expiry: Tree,
    by_desired_time: Tree,
    by_time: Tree,
    by_customer: Tree,
    by_service_state: Tree,
    by_owner: Tree,
    by_agent: Tree,
    agents: Tree,
    notifications: Tree,
    chat_sessions: Tree,
    transcripts: Tree,
    undelivered: Tree,
    agent_notifications: Tree,
    accounts: Tree,
    storage: Tree,
    storage_by_expiry: Tree,
    service_storage: Tree,
    subscriptions: Tree,
    subscriptions_by_expiry: Tree,
    throttles: Tree,
    status_outbox: Tree,
    status_pending: Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            meta: db.open_tree(tree::META)?,
            templates: db.open_tree(tree::TEMPLATES)?,
            services: db.open_tree(tree::SERVICES)?,
            routing_history: db.open_tree(tree::ROUTING_HISTORY)?,
            by_expiry: db.open_tree(tree::BY_EXPIRY)?,
            by_desired_time: db.open_tree(tree::BY_DESIRED_TIME)?,
            by_time: db.open_tree(tree::BY_TIME)?,
            by_customer: db.open_tree(tree::BY_CUSTOMER)?,
            by_service_state: db.open_tree(tree::BY_SERVICE_STATE)?,
            by_owner: db.open_tree(tree::BY_OWNER)?,
            by_agent: db.open_tree(tree::BY_AGENT)?,
            agents: db.open_tree(tree::AGENTS)?,
            notifications: db.open_tree(tree::NOTIFICATIONS)?,
            chat_sessions: db.open_tree(tree::CHAT_SESSIONS)?,
            transcripts: db.open_tree(tree::TRANSCRIPTS)?,
            undelivered: db.open_tree(tree::UNDELIVERED)?,
            agent_notifications: db.open_tree(tree::AGENT_NOTIFICATIONS)?,
            accounts: db.open_tree(tree::ACCOUNTS)?,
            storage: db.open_tree(tree::STORAGE)?,
            storage_by_expiry: db.open_tree(tree::STORAGE_BY_EXPIRY)?,
            service_storage: db.open_tree(tree::SERVICE_STORAGE)?,
            subscriptions: db.open_tree(tree::SUBSCRIPTIONS)?,
            subscriptions_by_expiry: db.open_tree(tree::SUBSCRIPTIONS_BY_EXPIRY)?,
            throttles: db.open_tree(tree::THROTTLES)?,
            status_outbox: db.open_tree(tree::STATUS_OUTBOX)?,
            status_pending: db.open_tree(tree::STATUS_PENDING)?,
        })
    }
}

struct Inner {
    db: sled::Db,
    trees: Trees,
    /// Declared after `db` users; dropped with the store, which makes it flush one last time.
    committer: Committer,
    migrations_applied: Vec<String>,
    /// Active services per configured service, moved after each committed write.
    active: counts::ActiveCounts,
    /// The time index counted per hour, configured service and state (the console's "N
    /// found"), moved after each committed write like `active`.
    time_counts: time_counts::TimeCounts,
    /// How long the count index took to build when the store opened.
    time_counts_built_in: std::time::Duration,
    /// Services whose status outbox got entries, for the status worker.
    status_wake: status::StatusWake,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

/// The group commit, as a [`Pending`] receipt waits for it.
impl Commit for Inner {
    fn wait_durable(&self, ticket: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.committer.wait_durable(ticket))
    }
}

/// The sled engine: every [`engine`] trait over one sled database and one group committer.
/// Cheap to clone; all clones share them.
#[derive(Clone, Debug)]
pub struct SledStore {
    inner: Arc<Inner>,
}

/// A handle to the database, whichever [`Engine`] holds it: the methods of the [`engine`]
/// traits, reached through `Deref`, and the generic conveniences below. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store(Arc<dyn Engine>);

impl std::ops::Deref for Store {
    type Target = dyn Engine;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A change's own error, carried through an engine's transaction as an object
/// ([`Services::change_service`]) and given back to the caller as its type by
/// [`Store::update_service`].
#[derive(Debug)]
pub struct Refusal(Box<dyn std::any::Any + Send>);

impl Refusal {
    pub(super) fn of<E: Send + 'static>(err: E) -> Self {
        Self(Box::new(err))
    }

    /// The error this refusal was made of. Only [`Store`]'s methods make and open refusals,
    /// each with its own change's error type, so another type cannot be found here.
    fn into_inner<E: 'static>(self) -> E {
        *self
            .0
            .downcast::<E>()
            .unwrap_or_else(|_| unreachable!("a refusal is opened as the type it was made of"))
    }
}

impl<E> UpdateError<E> {
    fn map_rejected<F>(self, f: impl FnOnce(E) -> F) -> UpdateError<F> {
        match self {
            UpdateError::Rejected(err) => UpdateError::Rejected(f(err)),
            UpdateError::Store(err) => UpdateError::Store(err),
        }
    }
}

impl Store {
    /// A handle to `engine`.
    pub fn new(engine: impl Engine + 'static) -> Self {
        Self(Arc::new(engine))
    }

    /// Opens (or creates) the sled database in `path` with the default [`StoreSettings`]
    /// and applies pending migrations.
    ///
    /// # Errors
    /// sled cannot open it, or it was written by a newer callbackd ([`StoreError::SchemaTooNew`]).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        SledStore::open(path).map(Store::new)
    }

    /// Opens the engine `settings` name: sled in `path` (like [`Store::open`], with
    /// `settings`), or the PostgreSQL database at `settings.url`, applying pending migrations
    /// either way.
    ///
    /// # Errors
    /// See [`Store::open`]; also the database's files cannot be opened for syncing, or
    /// PostgreSQL cannot be reached.
    pub fn open_with(path: &Path, settings: &StoreSettings) -> Result<Store, StoreError> {
        match settings.engine {
            EngineKind::Sled => SledStore::open_with(path, settings).map(Store::new),
            EngineKind::Postgres => {
                let url = settings.url.as_deref().ok_or_else(|| {
                    StoreError::Engine("[store] engine = \"postgres\" needs [store] url".into())
                })?;
                postgres::PgStore::open_fenced(url, settings.pool_size, settings.lease_epoch)
                    .map(Store::new)
            }
        }
    }

    /// A database in a temporary directory, removed on drop (for tests and benchmarks):
    /// flushed to the operating system only, free space not watched.
    ///
    /// # Errors
    /// sled cannot create it.
    pub fn open_temporary() -> Result<Store, StoreError> {
        SledStore::open_temporary().map(Store::new)
    }

    /// Reads, changes and writes back one service atomically, keeping its index entries right
    /// ([`Services::change_service`]). `change` may run more than once, so it must only touch
    /// the record. Returns the new record, or `None` if there is no such service.
    ///
    /// # Errors
    /// [`UpdateError::Rejected`] with `change`'s error (nothing written), or a storage error.
    pub fn update_service<E: Send + 'static>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut ServiceRecord) -> Result<(), E>,
    ) -> Result<Pending<Option<ServiceRecord>>, UpdateError<E>> {
        self.update_service_routed(id, |record, _| change(record))
    }

    /// [`Store::update_service`] for a change that also appends routing history: the events
    /// `change` pushes onto its second argument are appended to the service's history in the
    /// same transaction as the record.
    ///
    /// # Errors
    /// As [`Store::update_service`].
    pub fn update_service_routed<E: Send + 'static>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut ServiceRecord, &mut Vec<RoutingEvent>) -> Result<(), E>,
    ) -> Result<Pending<Option<ServiceRecord>>, UpdateError<E>> {
        self.0
            .change_service(id, &mut |record, events| {
                change(record, events).map_err(Refusal::of)
            })
            .map_err(|err| err.map_rejected(Refusal::into_inner))
    }

    /// Reads, changes (or makes, from `None`) and writes back the storage of service
    /// `service_id` atomically ([`StorageApi::change_service_storage`]); `change` returning
    /// `Err` writes nothing. `change` may run more than once.
    ///
    /// # Errors
    /// [`UpdateError::Rejected`] with `change`'s error, or a storage error.
    pub fn change_service_storage<E: Send + 'static>(
        &self,
        service_id: &str,
        change: impl Fn(Option<StorageArea>) -> Result<StorageArea, E>,
    ) -> Result<Pending<StorageArea>, UpdateError<E>> {
        self.0
            .change_service_storage(service_id, &|current| change(current).map_err(Refusal::of))
            .map_err(|err| err.map_rejected(Refusal::into_inner))
    }
}

/// Transactional views of the record tree, every index tree and the routing history:
/// services, by_expiry, by_desired_time, by_customer, by_service_state, by_owner, by_time,
/// by_agent, routing_history.
type ServiceTx<'a> = (
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
    &'a TransactionalTree,
);

/// Transactional views of the status outbox and its pending marks, in the transactions of a
/// service that reports status events only ([`SledStore::service_transaction`]).
type StatusTx<'a> = (&'a TransactionalTree, &'a TransactionalTree);

/// Why [`Store::update_service`]'s first transaction stopped: the closure's refusal, or a
/// record that reports status events and so needs the transaction over the status trees.
enum Escalation<E> {
    Rejected(E),
    NeedsStatusTrees,
}

impl Database for SledStore {
    fn time_counts_built_in(&self) -> std::time::Duration {
        self.inner.time_counts_built_in
    }

    fn migrations_applied(&self) -> &[String] {
        &self.inner.migrations_applied
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        migrate::read_version(&self.inner.trees.meta)
    }

    fn supported_schema_version(&self) -> u32 {
        migrate::latest_version()
    }

    fn sync_counts(&self) -> (u64, u64) {
        let stats = &self.inner.committer.stats;
        (
            stats.flushes.load(std::sync::atomic::Ordering::Relaxed),
            stats
                .device_syncs
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        Ok(())
    }

    fn commit_stats(&self) -> &CommitStats {
        &self.inner.committer.stats
    }

    fn flush_latency_last_minute(&self) -> FlushLatency {
        self.inner
            .committer
            .stats
            .last_minute(std::time::Instant::now())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.inner.db.size_on_disk()?)
    }
}

impl Configuration for SledStore {
    fn templates_seeded(&self) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .trees
            .meta
            .contains_key(meta_key::TEMPLATES_SEEDED)?)
    }

    fn seed_templates(&self, services: &[ConfiguredService]) -> Result<Pending<()>, StoreError> {
        let encoded = services
            .iter()
            .map(|s| Ok((s.name.clone(), stored::template::encode(s)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let marker = codec::write(&stored::meta::MarkV1(true))?;
        let trees = &self.inner.trees;
        (&trees.templates, &trees.meta)
            .transaction(|(templates, meta)| {
                for (name, bytes) in &encoded {
                    templates.insert(name.as_bytes(), bytes.as_slice())?;
                }
                meta.insert(meta_key::TEMPLATES_SEEDED, marker.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.pending(()))
    }

    fn templates(&self) -> Result<Vec<ConfiguredService>, StoreError> {
        self.inner
            .trees
            .templates
            .iter()
            .map(|item| {
                let (key, value) = item?;
                stored::template::decode(
                    &value,
                    &format!("configured service {}", String::from_utf8_lossy(&key)),
                )
            })
            .collect()
    }

    fn put_template(&self, service: &ConfiguredService) -> Result<Pending<()>, StoreError> {
        self.check_space()?;
        let bytes = stored::template::encode(service)?;
        self.inner
            .trees
            .templates
            .insert(service.name.as_bytes(), bytes)?;
        Ok(self.pending(()))
    }

    fn delete_template(&self, name: &str) -> Result<Pending<bool>, StoreError> {
        let removed = self
            .inner
            .trees
            .templates
            .remove(name.as_bytes())?
            .is_some();
        Ok(self.pending(removed))
    }
}

impl Agents for SledStore {
    fn agents_seeded(&self) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .trees
            .meta
            .contains_key(meta_key::AGENTS_SEEDED)?)
    }

    fn seed_agents(&self, agents: &[AgentRecord]) -> Result<Pending<()>, StoreError> {
        let encoded = agents
            .iter()
            .map(|a| Ok((a.config.id.clone(), stored::agent::encode(a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let marker = codec::write(&stored::meta::MarkV1(true))?;
        let trees = &self.inner.trees;
        (&trees.agents, &trees.meta)
            .transaction(|(tree, meta)| {
                for (id, bytes) in &encoded {
                    tree.insert(id.as_bytes(), bytes.as_slice())?;
                }
                meta.insert(meta_key::AGENTS_SEEDED, marker.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.pending(()))
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.inner
            .trees
            .agents
            .iter()
            .map(|item| {
                let (key, value) = item?;
                stored::agent::decode(&value, &format!("agent {}", String::from_utf8_lossy(&key)))
            })
            .collect()
    }

    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        match self.inner.trees.agents.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(stored::agent::decode(&bytes, &format!("agent {id}"))?)),
            None => Ok(None),
        }
    }

    fn put_agent(&self, agent: &AgentRecord) -> Result<Pending<()>, StoreError> {
        let bytes = stored::agent::encode(agent)?;
        self.inner
            .trees
            .agents
            .insert(agent.config.id.as_bytes(), bytes)?;
        Ok(self.pending(()))
    }

    fn delete_agent(&self, id: &str) -> Result<Pending<bool>, StoreError> {
        let removed = self.inner.trees.agents.remove(id.as_bytes())?.is_some();
        Ok(self.pending(removed))
    }
}

impl Services for SledStore {
    fn insert_service(&self, record: &ServiceRecord) -> Result<Pending<()>, StoreError> {
        self.check_space()?;
        let bytes = stored::service::encode(record)?;
        let index = IndexKeys::of(record)?;
        let reporting = status::reports(record);
        let outboxed = infallible(self.service_transaction(reporting, |tx, status| {
            tx.0.insert(record.id.as_bytes(), bytes.as_slice())?;
            index.insert(tx)?;
            match status {
                Some((outbox, pending)) => status::outbox_in(outbox, pending, None, record),
                None => Ok(false),
            }
        }))?;
        self.count_record_writes(1);
        self.inner
            .active
            .moved(&record.service_name, None, Some(record.state));
        self.inner.time_counts.moved(None, Some(place(record)));
        if outboxed {
            self.inner.status_wake.ring(&record.id);
        }
        Ok(self.pending(()))
    }

    fn insert_services(&self, records: &[ServiceRecord]) -> Result<Pending<()>, StoreError> {
        self.check_space()?;
        let encoded = records
            .iter()
            .map(|r| Ok((stored::service::encode(r)?, IndexKeys::of(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let reporting = records.iter().any(status::reports);
        let outboxed = infallible(self.service_transaction(reporting, |tx, status| {
            let mut outboxed = Vec::new();
            for (record, (bytes, index)) in records.iter().zip(&encoded) {
                tx.0.insert(record.id.as_bytes(), bytes.as_slice())?;
                index.insert(tx)?;
                if let Some((outbox, pending)) = status {
                    if status::outbox_in(outbox, pending, None, record)? {
                        outboxed.push(record.id.as_str());
                    }
                }
            }
            Ok(outboxed)
        }))?;
        for id in outboxed {
            self.inner.status_wake.ring(id);
        }
        self.count_record_writes(records.len());
        for record in records {
            self.inner
                .active
                .moved(&record.service_name, None, Some(record.state));
            self.inner.time_counts.moved(None, Some(place(record)));
        }
        Ok(self.pending(()))
    }

    fn service(&self, id: &str) -> Result<Option<ServiceRecord>, StoreError> {
        match self.inner.trees.services.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(decode_service(id, &bytes)?)),
            None => Ok(None),
        }
    }

    fn service_access(&self, id: &str) -> Result<Option<ServiceAccess>, StoreError> {
        match self.inner.trees.services.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(stored::service::decode_access(
                &bytes,
                &format!("service {id}"),
            )?)),
            None => Ok(None),
        }
    }

    fn change_service(
        &self,
        id: &str,
        change: &mut ServiceChange<'_>,
    ) -> Result<Pending<Option<ServiceRecord>>, UpdateError<Refusal>> {
        let change = RefCell::new(change);
        // A service that does not report status events (the usual one) is changed in a
        // transaction that leaves the status trees out; one that does is found so by the
        // first transaction before it writes anything, and changed in the wider one. A
        // service's options do not change after it is created, so the second one decides
        // the same way.
        let attempt = |reporting: bool| {
            self.service_transaction(reporting, |tx, status| {
                let Some(bytes) = tx.0.get(id.as_bytes())? else {
                    return Ok(None);
                };
                let mut record = decode_service(id, &bytes).map_err(abort_store)?;
                if status.is_none() && status::reports(&record) {
                    return Err(ConflictableTransactionError::Abort(UpdateError::Rejected(
                        Escalation::NeedsStatusTrees,
                    )));
                }
                let was = (
                    record.desired_time,
                    record.service_name.clone(),
                    record.state,
                );
                // The record as it was, to tell its status events (only when it reports any).
                let original = status::reports(&record).then(|| record.clone());
                let before = IndexKeys::of(&record).map_err(abort_store)?;
                let mut appended = Vec::new();
                (change.borrow_mut())(&mut record, &mut appended).map_err(|err| {
                    ConflictableTransactionError::Abort(UpdateError::Rejected(
                        Escalation::Rejected(err),
                    ))
                })?;
                record.note_routing(&appended);
                let after = IndexKeys::of(&record).map_err(abort_store)?;
                before.move_to(&after, tx)?;
                routing::append_in(tx.8, id, &appended)?;
                let bytes = stored::service::encode(&record).map_err(abort_store)?;
                tx.0.insert(id.as_bytes(), bytes)?;
                let outboxed = match (&original, status) {
                    (Some(original), Some((outbox, pending))) => {
                        status::outbox_in(outbox, pending, Some(original), &record)?
                    }
                    _ => false,
                };
                Ok(Some((record, was, outboxed)))
            })
        };
        let escalated = |err: UpdateError<Escalation<Refusal>>| match err {
            UpdateError::Rejected(Escalation::Rejected(err)) => Some(UpdateError::Rejected(err)),
            UpdateError::Rejected(Escalation::NeedsStatusTrees) => None,
            UpdateError::Store(err) => Some(UpdateError::Store(err)),
        };
        let changed = match attempt(false) {
            Ok(changed) => changed,
            Err(err) => match escalated(err) {
                Some(err) => return Err(err),
                None => attempt(true).map_err(|err| {
                    escalated(err).unwrap_or_else(|| {
                        UpdateError::Store(StoreError::Engine(
                            "status trees missing from a reporting transaction".into(),
                        ))
                    })
                })?,
            },
        };
        Ok(self.pending(
            changed.map(|(record, (desired_time, service_name, state), outboxed)| {
                self.count_record_writes(1);
                if outboxed {
                    self.inner.status_wake.ring(&record.id);
                }
                self.inner
                    .active
                    .moved(&record.service_name, Some(state), Some(record.state));
                self.inner.time_counts.moved(
                    Some(time_counts::Place {
                        desired_time,
                        service_name: &service_name,
                        state,
                    }),
                    Some(place(&record)),
                );
                record
            }),
        ))
    }

    fn services_by_customer(
        &self,
        customer_number: &str,
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let ids = index_ids(
            &self.inner.trees.by_customer,
            keys::customer_prefix(customer_number),
            keys::id_after_separator,
        );
        self.collect_records(ids, keep, limit)
    }

    fn services_in_states(
        &self,
        service_name: Option<&str>,
        states: &[CallbackState],
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let index = &self.inner.trees.by_service_state;
        let names = match service_name {
            Some(name) => vec![name.to_string()],
            None => counts::indexed_service_names(index)?,
        };
        // Key order (name, then state code, then id), reading only the wanted states' keys.
        let mut states = states.to_vec();
        states.sort_by_key(|s| s.code());
        states.dedup();
        let ids = names.into_iter().flat_map(move |name| {
            let states = states.clone();
            states.into_iter().flat_map(move |state| {
                index_ids(index, keys::service_state_prefix(&name, state), |key| {
                    keys::split_service_state_key(key).map(|(_, _, id)| id)
                })
            })
        });
        self.collect_records(ids, keep, limit)
    }

    fn services_of_owner(
        &self,
        owner: &str,
        service_name: &str,
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let ids = index_ids(
            &self.inner.trees.by_owner,
            keys::owner_prefix(owner, service_name),
            keys::id_after_owner_prefix,
        );
        self.collect_records(ids, keep, limit)
    }

    fn services_handled_by(
        &self,
        agent: &str,
        states: &[CallbackState],
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let ids = self.handled_ids(agent, states);
        self.collect_records(ids, keep, limit)
    }

    fn next_scheduled(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .inner
            .trees
            .by_desired_time
            .first()?
            .and_then(|(key, _)| keys::split_time_key(&key).map(|(at, _)| at)))
    }

    fn due_scheduled(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        self.inner
            .trees
            .by_desired_time
            .range(..keys::time_upper_bound(now))
            .take(limit)
            .map(|item| {
                let (key, _) = item?;
                Ok(keys::split_time_key(&key)
                    .map(|(_, id)| id.to_string())
                    .unwrap_or_default())
            })
            .collect()
    }

    fn count_in_states(
        &self,
        service_name: &str,
        states: &[CallbackState],
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for state in states {
            let mut prefix = keys::service_prefix(service_name);
            prefix.push(state.code());
            for item in self.inner.trees.by_service_state.scan_prefix(prefix) {
                item?;
                count += 1;
                if count >= limit {
                    return Ok(count);
                }
            }
        }
        Ok(count)
    }

    fn active_counts(&self) -> BTreeMap<String, u64> {
        self.inner.active.snapshot()
    }

    fn purge_expired(&self, now: Timestamp, limit: usize) -> Result<Pending<Purged>, StoreError> {
        let due = due_entries(&self.inner.trees.by_expiry, now, limit)?;
        // What belongs to a service goes before the record: a crash in between leaves a record
        // that the next run removes, never things that belong to nothing. Each record is read
        // once; one whose expiry moved (rescheduled) keeps everything.
        for (_, id) in &due {
            let record = self.service(id)?;
            if matches!(&record, Some(record) if record.expire_at > now) {
                continue;
            }
            self.delete_belongings(id, record.as_ref())?;
        }
        let mut removed = Vec::with_capacity(due.len());
        // One transaction per chunk: atomic per service, without paying a commit per service.
        for chunk in due.chunks(PURGE_CHUNK) {
            let gone = infallible(self.service_transaction(false, |tx, _| {
                let mut gone = Vec::with_capacity(chunk.len());
                for (index_key, id) in chunk {
                    // Re-check inside the transaction: a reschedule may have moved it.
                    let Some(bytes) = tx.0.get(id.as_bytes())? else {
                        tx.1.remove(index_key.as_slice())?;
                        continue;
                    };
                    let record = decode_service(id, &bytes).map_err(abort_store)?;
                    if record.expire_at > now {
                        tx.1.remove(index_key.as_slice())?;
                        continue;
                    }
                    if let Some(record) = delete_in(tx, id)? {
                        gone.push(record);
                    }
                }
                Ok(gone)
            }))?;
            for record in gone {
                self.inner
                    .active
                    .moved(&record.service_name, Some(record.state), None);
                self.inner.time_counts.moved(Some(place(&record)), None);
                removed.push(record.id);
            }
        }
        // Once more for what a writer may have added between the first sweep and the record's
        // removal (the router appending history or a notification, a change reporting a
        // status event): with the record gone, every writer finds nothing to change and backs
        // off, so nothing can be added after this sweep.
        for id in &removed {
            self.delete_belongings(id, None)?;
        }
        Ok(self.pending(Purged {
            scanned: due.len(),
            removed,
        }))
    }
}

impl SledStore {
    /// Opens (or creates) the database in `path` with the default [`StoreSettings`] and
    /// applies pending migrations.
    ///
    /// # Errors
    /// sled cannot open it, or it was written by a newer callbackd ([`StoreError::SchemaTooNew`]).
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        Self::open_with(path, &StoreSettings::default())
    }

    /// Like [`Store::open`], with `settings`.
    ///
    /// # Errors
    /// See [`Store::open`]; also the database's files cannot be opened for syncing.
    pub fn open_with(path: &Path, settings: &StoreSettings) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(settings.cache_bytes)
            .open()
            .map_err(|err| match err {
                // sled words its lock failure as an `Other` I/O error; this is how to know it.
                sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock") => {
                    StoreError::Locked(io.to_string())
                }
                other => StoreError::from(other),
            })?;
        Self::from_db(
            db,
            CommitOptions {
                sync: settings.sync,
                dir: Some(path.to_path_buf()),
                probe: None,
                min_free_bytes: settings.min_free_bytes,
            },
        )
    }

    /// A database in a temporary directory, removed on drop (for tests and benchmarks):
    /// flushed to the operating system only, free space not watched.
    ///
    /// # Errors
    /// sled cannot create it.
    pub fn open_temporary() -> Result<SledStore, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::from_db(db, CommitOptions::unwatched())
    }

    /// A temporary database whose free space is told by `probe` (for tests).
    #[cfg(test)]
    pub(crate) fn open_temporary_with_probe(
        min_free_bytes: u64,
        probe: commit::SpaceProbe,
    ) -> Result<SledStore, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::from_db(
            db,
            CommitOptions {
                sync: SyncMode::Os,
                dir: None,
                probe: Some(probe),
                min_free_bytes,
            },
        )
    }

    pub(crate) fn from_db(db: sled::Db, options: CommitOptions) -> Result<SledStore, StoreError> {
        let migrations_applied = migrate::run(&db)?;
        let trees = Trees::open(&db)?;
        let active = counts::ActiveCounts::rebuild(&trees.by_service_state)?;
        // After the migrations: a database that 0008 indexed is counted too.
        let counting = std::time::Instant::now();
        let time_counts = by_time::count_all(&trees.by_time)?;
        let time_counts_built_in = counting.elapsed();
        // Migrations and tree creation are flushed before the committer opens the log.
        db.flush()?;
        let committer = Committer::start(db.clone(), options)?;
        Ok(SledStore {
            inner: Arc::new(Inner {
                db,
                trees,
                committer,
                migrations_applied,
                active,
                time_counts,
                time_counts_built_in,
                status_wake: status::StatusWake::default(),
            }),
        })
    }

    /// `Err(StoreError::LowSpace)` while the disk is nearly full: called first by every
    /// write that adds data (new services, notifications, chat messages, configured services).
    /// Changes to what exists and deletions are not refused: they keep routing, delivery and
    /// expiry consistent and fit in the margin. Two atomic loads; no system call.
    fn check_space(&self) -> Result<(), StoreError> {
        self.inner.committer.space.check()
    }

    /// Books `n` service records written (created or changed) by a committed transaction:
    /// `/metrics`' writes per create.
    fn count_record_writes(&self, n: usize) {
        self.inner
            .committer
            .stats
            .service_record_writes
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// The receipt of a write made just now (see [`Pending`]).
    fn pending<T>(&self, value: T) -> Pending<T> {
        Pending::new(self.inner.clone(), self.inner.committer.ticket(), value)
    }

    /// Reads the records of `ids` (skipping ones gone since the index was read), keeping those
    /// that pass `keep`, until `limit` are found.
    fn collect_records(
        &self,
        ids: impl Iterator<Item = Result<String, StoreError>>,
        keep: impl Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            if out.len() >= limit {
                break;
            }
            if let Some(record) = self.service(&id?)? {
                if keep(&record) {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// Removes what is stored for service `id` beside its record, `record` as read (`None`:
    /// already gone): its notifications, routing history and status outbox always, its chat
    /// session and service storage when the record names them. Not waited for: the purge's
    /// receipt covers it.
    fn delete_belongings(
        &self,
        id: &str,
        record: Option<&ServiceRecord>,
    ) -> Result<(), StoreError> {
        self.delete_notifications_of(id, record.and_then(|r| r.owner.as_deref()))?;
        self.delete_routing_history_of(id)?;
        if let Some(record) = record {
            if let Some(session_id) = &record.chat_session_id {
                self.delete_chat_session(session_id)?.without_waiting();
            }
            self.delete_service_storage(id)?.without_waiting();
        }
        self.delete_status_of(id)
    }

    /// One transaction over the record and index trees, and over the status trees too when
    /// `reporting` (a service with status notifications on): a service without them does
    /// not touch those trees at all.
    fn service_transaction<T, E>(
        &self,
        reporting: bool,
        body: impl Fn(
            ServiceTx<'_>,
            Option<StatusTx<'_>>,
        ) -> Result<T, ConflictableTransactionError<UpdateError<E>>>,
    ) -> Result<T, UpdateError<E>> {
        let t = &self.inner.trees;
        let trees = (
            &t.services,
            &t.by_expiry,
            &t.by_desired_time,
            &t.by_customer,
            &t.by_service_state,
            &t.by_owner,
            &t.by_time,
            &t.by_agent,
            &t.routing_history,
        );
        let result = if reporting {
            let (s, e, d, c, ss, o, bt, a, rh) = trees;
            (
                s,
                e,
                d,
                c,
                ss,
                o,
                bt,
                a,
                rh,
                &t.status_outbox,
                &t.status_pending,
            )
                .transaction(|(s, e, d, c, ss, o, bt, a, rh, so, sp)| {
                    body((s, e, d, c, ss, o, bt, a, rh), Some((so, sp)))
                })
        } else {
            trees.transaction(|(s, e, d, c, ss, o, bt, a, rh)| {
                body((s, e, d, c, ss, o, bt, a, rh), None)
            })
        };
        result.map_err(|err| match err {
            TransactionError::Abort(err) => err,
            TransactionError::Storage(err) => UpdateError::Store(err.into()),
        })
    }
}

/// Unwraps the result of a transaction whose body cannot be rejected.
fn infallible<T>(result: Result<T, UpdateError<Infallible>>) -> Result<T, StoreError> {
    result.map_err(|err| match err {
        UpdateError::Store(err) => err,
        UpdateError::Rejected(never) => match never {},
    })
}

/// The first `limit` entries of a time-keyed expiry index (`time_key`) due by `now`: each
/// key with the id it names (empty when the key is unreadable, so that it is still removed).
///
/// # Errors
/// Storage failed.
fn due_entries(
    index: &Tree,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
    index
        .range(..keys::time_upper_bound(now))
        .take(limit)
        .map(|item| {
            let (key, _) = item?;
            let id = keys::split_time_key(&key)
                .map(|(_, id)| id.to_string())
                .unwrap_or_default();
            Ok((key.to_vec(), id))
        })
        .collect()
}

/// Where the count index counts `record`.
fn place(record: &ServiceRecord) -> time_counts::Place<'_> {
    time_counts::Place {
        desired_time: record.desired_time,
        service_name: &record.service_name,
        state: record.state,
    }
}

/// Removes a record and its index entries inside a transaction; returns what was removed
/// (`None` if it was not there).
fn delete_in<E>(
    tx: ServiceTx<'_>,
    id: &str,
) -> Result<Option<ServiceRecord>, ConflictableTransactionError<UpdateError<E>>> {
    let Some(bytes) = tx.0.remove(id.as_bytes())? else {
        return Ok(None);
    };
    let record = decode_service(id, &bytes).map_err(abort_store)?;
    IndexKeys::of(&record).map_err(abort_store)?.remove(tx)?;
    Ok(Some(record))
}

fn decode_service(id: &str, bytes: &[u8]) -> Result<ServiceRecord, StoreError> {
    stored::service::decode(bytes, &format!("service {id}"))
}

fn abort_store<E>(err: StoreError) -> ConflictableTransactionError<UpdateError<E>> {
    ConflictableTransactionError::Abort(UpdateError::Store(err))
}

fn tx_error(err: TransactionError<()>) -> StoreError {
    match err {
        TransactionError::Abort(()) => StoreError::Engine("transaction aborted".into()),
        TransactionError::Storage(err) => err.into(),
    }
}

/// The index entries one record owns.
struct IndexKeys {
    expiry: Vec<u8>,
    desired: Option<Vec<u8>>,
    customer: Option<Vec<u8>>,
    service_state: Vec<u8>,
    owner: Option<Vec<u8>>,
    /// The `by_time` key and its value (which carries the state: it changes with the record).
    time: (Vec<u8>, Vec<u8>),
    /// The `by_agent` keys, one per agent who handled it, and their value (the state).
    agents: Vec<(Vec<u8>, [u8; 1])>,
}

impl IndexKeys {
    fn of(record: &ServiceRecord) -> Result<Self, StoreError> {
        Ok(Self {
            expiry: keys::time_key(record.expire_at, &record.id),
            desired: (record.state == CallbackState::Scheduled)
                .then(|| keys::time_key(record.desired_time, &record.id)),
            customer: record
                .customer_number
                .as_deref()
                .map(|number| keys::customer_key(number, &record.id)),
            service_state: keys::service_state_key(&record.service_name, record.state, &record.id),
            owner: record
                .owner
                .as_deref()
                .map(|owner| keys::owner_key(owner, &record.service_name, &record.id)),
            time: by_time::entry_of(record)?,
            agents: by_agent::entries_of(record),
        })
    }

    fn insert<E>(&self, tx: ServiceTx<'_>) -> Result<(), ConflictableTransactionError<E>> {
        tx.1.insert(self.expiry.as_slice(), &[])?;
        if let Some(key) = &self.desired {
            tx.2.insert(key.as_slice(), &[])?;
        }
        if let Some(key) = &self.customer {
            tx.3.insert(key.as_slice(), &[])?;
        }
        tx.4.insert(self.service_state.as_slice(), &[])?;
        if let Some(key) = &self.owner {
            tx.5.insert(key.as_slice(), &[])?;
        }
        tx.6.insert(self.time.0.as_slice(), self.time.1.as_slice())?;
        for (key, value) in &self.agents {
            tx.7.insert(key.as_slice(), value.as_slice())?;
        }
        Ok(())
    }

    /// Moves a record's index entries from `self` (as it was) to `after` (as it is now),
    /// writing only the entries that differ: a change that keeps the state, times, owner
    /// and agents (a step of routing progress) leaves every index untouched, instead of
    /// removing and inserting each entry again (each a sled write at commit).
    fn move_to<E>(
        &self,
        after: &IndexKeys,
        tx: ServiceTx<'_>,
    ) -> Result<(), ConflictableTransactionError<E>> {
        fn key<E>(
            tree: &TransactionalTree,
            before: Option<&[u8]>,
            after: Option<&[u8]>,
        ) -> Result<(), ConflictableTransactionError<E>> {
            if before == after {
                return Ok(());
            }
            if let Some(before) = before {
                tree.remove(before)?;
            }
            if let Some(after) = after {
                tree.insert(after, &[])?;
            }
            Ok(())
        }
        key(tx.1, Some(&self.expiry), Some(&after.expiry))?;
        key(tx.2, self.desired.as_deref(), after.desired.as_deref())?;
        key(tx.3, self.customer.as_deref(), after.customer.as_deref())?;
        key(tx.4, Some(&self.service_state), Some(&after.service_state))?;
        key(tx.5, self.owner.as_deref(), after.owner.as_deref())?;
        if self.time != after.time {
            if self.time.0 != after.time.0 {
                tx.6.remove(self.time.0.as_slice())?;
            }
            tx.6.insert(after.time.0.as_slice(), after.time.1.as_slice())?;
        }
        for (key, _) in &self.agents {
            if !after.agents.iter().any(|(k, _)| k == key) {
                tx.7.remove(key.as_slice())?;
            }
        }
        for entry in &after.agents {
            if !self.agents.contains(entry) {
                tx.7.insert(entry.0.as_slice(), entry.1.as_slice())?;
            }
        }
        Ok(())
    }

    fn remove<E>(&self, tx: ServiceTx<'_>) -> Result<(), ConflictableTransactionError<E>> {
        tx.1.remove(self.expiry.as_slice())?;
        if let Some(key) = &self.desired {
            tx.2.remove(key.as_slice())?;
        }
        if let Some(key) = &self.customer {
            tx.3.remove(key.as_slice())?;
        }
        tx.4.remove(self.service_state.as_slice())?;
        if let Some(key) = &self.owner {
            tx.5.remove(key.as_slice())?;
        }
        tx.6.remove(self.time.0.as_slice())?;
        for (key, _) in &self.agents {
            tx.7.remove(key.as_slice())?;
        }
        Ok(())
    }
}

/// Removes every key under `prefix` of `tree`, in one batch.
fn remove_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for item in tree.scan_prefix(prefix) {
        batch.remove(item?.0);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// The service ids named by the keys under `prefix` of the index `tree`, each read from its
/// key by `id_of` (keys it cannot read are skipped).
fn index_ids(
    tree: &sled::Tree,
    prefix: Vec<u8>,
    id_of: fn(&[u8]) -> Option<&str>,
) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
    tree.scan_prefix(prefix)
        .map(move |item| {
            let (key, _) = item?;
            Ok(id_of(&key).map(str::to_string))
        })
        .filter_map(Result::transpose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;

    fn record(id: &str, expire_at: u64) -> ServiceRecord {
        let mut record = ServiceRecord::new(
            id,
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(0),
        );
        record.expire_at = Timestamp::from_millis(expire_at);
        record
    }

    #[test]
    fn stale_expiry_entries_are_dropped_without_ending_the_run_early() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        // Entries whose service is gone (as a race with a delete could leave them), sorted
        // before the one service that is really due.
        let stale = crate::expiry::BATCH + 3;
        for i in 0..stale {
            let key = keys::time_key(Timestamp::from_millis(5), &format!("gone{i:05}"));
            engine.inner.trees.by_expiry.insert(key, &[]).unwrap();
        }
        store
            .insert_service(&record("zz-due", 6))
            .unwrap()
            .without_waiting();

        let removed = crate::expiry::run_once(&store, Timestamp::from_millis(10)).unwrap();

        assert_eq!(
            removed,
            ["zz-due"],
            "the due service behind a full batch of stale entries"
        );
        assert!(store.service("zz-due").unwrap().is_none());
        assert!(
            engine.inner.trees.by_expiry.is_empty(),
            "stale entries dropped"
        );
    }

    #[test]
    fn a_nearly_full_disk_refuses_new_data_keeps_reads_and_resumes_by_itself() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let free = Arc::new(AtomicU64::new(10_000));
        let probe = {
            let free = free.clone();
            Box::new(move || Ok(free.load(Ordering::SeqCst)))
        };
        let store = Store::new(SledStore::open_temporary_with_probe(1_000, probe).unwrap());
        store
            .insert_service(&record("before", 50))
            .unwrap()
            .without_waiting();

        free.store(999, Ordering::SeqCst);
        // Until the committer measures again, creates still go through.
        let mut n = 0;
        wait_until(|| {
            n += 1;
            store
                .insert_service(&record(&format!("racing{n}"), 50))
                .err()
        });
        let refused = store.insert_service(&record("during", 50)).unwrap_err();

        assert!(
            matches!(
                refused,
                StoreError::LowSpace {
                    free_bytes: 999,
                    min_free_bytes: 1_000
                }
            ),
            "{refused:?}"
        );
        assert!(store.service("before").unwrap().is_some(), "reads go on");
        assert!(
            store.service("during").unwrap().is_none(),
            "nothing written"
        );
        assert!(
            store
                .update_service::<()>("before", |r| {
                    r.state = CallbackState::Completed;
                    Ok(())
                })
                .is_ok(),
            "changes to what exists go on"
        );

        free.store(1_000, Ordering::SeqCst);
        wait_until(|| {
            store
                .insert_service(&record("after", 50))
                .ok()
                .map(Pending::without_waiting)
        });
        assert!(store.service("after").unwrap().is_some());
    }

    /// Retries `attempt` until it gives `Some` (the committer measures every 100 ms).
    fn wait_until<T>(mut attempt: impl FnMut() -> Option<T>) -> T {
        let start = std::time::Instant::now();
        loop {
            if let Some(value) = attempt() {
                return value;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "the committer never measured"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn enospc_from_sled_is_no_space_not_a_generic_error() {
        let full = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        let other = sled::Error::Io(std::io::Error::from_raw_os_error(5));
        assert!(matches!(StoreError::from(full), StoreError::NoSpace(_)));
        assert!(matches!(StoreError::from(other), StoreError::Engine(_)));
    }

    #[test]
    fn queries_filter_before_they_limit() {
        let store = Store::open_temporary().unwrap();
        for i in 0..10 {
            let mut r = record(&format!("s{i}"), 1_000);
            r.customer_number = Some("555".into());
            r.owner = Some(if i < 8 { "other" } else { "me" }.into());
            store.insert_service(&r).unwrap().without_waiting();
        }
        let mine = |r: &ServiceRecord| r.owner.as_deref() == Some("me");

        let by_customer = store.services_by_customer("555", &mine, 2).unwrap();
        let by_state = store
            .services_in_states(Some("chat-delay"), &[CallbackState::Queued], &mine, 2)
            .unwrap();
        let completed = store
            .services_in_states(None, &[CallbackState::Completed], &|_| true, 100)
            .unwrap();

        assert_eq!(
            by_customer.len(),
            2,
            "both of mine, past 8 of another user's"
        );
        assert_eq!(by_state.len(), 2);
        assert!(completed.is_empty());
    }

    #[test]
    fn active_counts_follow_every_write_and_match_a_rebuild() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        for i in 0..5 {
            let mut r = record(&format!("s{i}"), 50 + i);
            r.service_name = if i < 3 { "chat-delay" } else { "other" }.into();
            store.insert_service(&r).unwrap().without_waiting();
        }
        store
            .update_service::<()>("s0", |r| {
                r.state = CallbackState::Completed;
                Ok(())
            })
            .unwrap()
            .without_waiting();
        store
            .update_service::<()>("s1", |r| {
                r.state = CallbackState::Routing;
                Ok(())
            })
            .unwrap()
            .without_waiting();
        crate::expiry::run_once(&store, Timestamp::from_millis(53)).unwrap();

        let counted = store.active_counts();
        let rebuilt = counts::ActiveCounts::rebuild(&engine.inner.trees.by_service_state).unwrap();

        assert_eq!(
            counted,
            BTreeMap::from([("other".to_string(), 1)]),
            "s0 completed, s1-s3 expired, s4 left"
        );
        assert_eq!(rebuilt.snapshot(), counted, "memory and index agree");
    }

    #[test]
    fn notifications_are_taken_once_in_order_and_expire_with_their_service() {
        let store = Store::open_temporary().unwrap();
        store
            .insert_service(&record("s1", 50))
            .unwrap()
            .without_waiting();
        let now = Timestamp::from_millis(1);
        for n in 0..3 {
            let message = serde_json::json!({ "n": n });
            store
                .add_notification("s1", None, format!("tag.{n}"), &message, now)
                .unwrap()
                .without_waiting();
        }
        store
            .add_notification("s10", None, "other".into(), &serde_json::json!({}), now)
            .unwrap()
            .without_waiting();

        let first: Vec<String> = store
            .take_undelivered("s1", None)
            .unwrap()
            .without_waiting()
            .into_iter()
            .map(|n| n.tag)
            .collect();
        let second = store
            .take_undelivered("s1", None)
            .unwrap()
            .without_waiting();

        assert_eq!(
            first,
            ["tag.0", "tag.1", "tag.2"],
            "in order, only this service's"
        );
        assert!(second.is_empty(), "delivered ones are not taken again");
        assert!(store
            .notifications("s1")
            .unwrap()
            .iter()
            .all(|n| n.delivered));
        crate::expiry::run_once(&store, Timestamp::from_millis(50)).unwrap();
        assert!(
            store.notifications("s1").unwrap().is_empty(),
            "gone with the service"
        );
        assert_eq!(
            store.notifications("s10").unwrap().len(),
            1,
            "the other one stays"
        );
    }
}
