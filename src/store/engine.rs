//! What a storage engine provides, in the domain's words: services and their indexes
//! (customer, owner, state, agent, desired time), routing history, notifications, chat
//! sessions and transcripts, agents, configured services, console accounts, Storage API areas
//! and subscriptions, throttle counts, the status outbox; and for every write a [`Pending`]
//! receipt, acknowledged only once the engine has made it durable (the unit of work).
//!
//! The traits are split by subject so that each reads on its own; [`Engine`] is all of them,
//! and [`Store`](super::Store) is a cheap handle to whichever engine was opened. The rules (router, Chat
//! Server, use cases) see only these traits: nothing here names sled, bincode or a key. The
//! sled engine ([`super::SledStore`], the rest of this module) is the one implementation today.
//!
//! Methods take closures as `&dyn Fn` so that an engine is an object ([`Store`](super::Store) holds a
//! `dyn Engine`); a change with its own error type goes through [`Store::update_service`](super::Store::update_service) and
//! [`Store::change_service_storage`](super::Store::change_service_storage), which carry that error across as a [`Refusal`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use futures_util::future::BoxFuture;

use crate::domain::account::Account;
use crate::domain::agent::AgentRecord;
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;
use crate::domain::notification::Notification;
use crate::domain::options::ConfiguredService;
use crate::domain::service::{
    CallbackState, RouteProgress, RoutingEvent, ServiceAccess, ServiceRecord,
};
use crate::domain::status::StatusNotification;
use crate::domain::storage::StorageArea;
use crate::domain::subscription::Subscription;
use crate::domain::throttle::Window;
use crate::domain::time::Timestamp;

use super::{
    CommitStats, FlushLatency, NewNotification, Pending, Purged, Refusal, ServiceSummary,
    StateCounts, StoreError, TimeSelection, UpdateError,
};

/// A change to one service inside its transaction: the record to change, and the routing
/// events to append to its history; `Err` writes nothing.
pub type ServiceChange<'a> =
    dyn FnMut(&mut ServiceRecord, &mut Vec<RoutingEvent>) -> Result<(), Refusal> + 'a;

/// Every subject of storage: what [`Store`](super::Store) hands out. Implemented for each type that
/// implements them all.
pub trait Engine:
    Database
    + Configuration
    + Agents
    + Services
    + RoutingHistory
    + TimeIndex
    + Notifications
    + Chats
    + Accounts
    + StorageApi
    + Throttles
    + StatusOutbox
    + std::fmt::Debug
    + Send
    + Sync
{
}

impl<T> Engine for T where
    T: Database
        + Configuration
        + Agents
        + Services
        + RoutingHistory
        + TimeIndex
        + Notifications
        + Chats
        + Accounts
        + StorageApi
        + Throttles
        + StatusOutbox
        + std::fmt::Debug
        + Send
        + Sync
{
}

/// The database itself: its schema, its durability counters, its size.
pub trait Database {
    /// How long counting the time index took when the store opened (one pass over
    /// `by_time`: the console's count index; for the benchmark and the start-up log).
    fn time_counts_built_in(&self) -> std::time::Duration;

    /// Names of the migrations applied when this store was opened.
    fn migrations_applied(&self) -> &[String];

    /// The schema version on disk.
    ///
    /// # Errors
    /// The version cannot be read.
    fn schema_version(&self) -> Result<u32, StoreError>;

    /// The newest schema version this binary knows for this engine (what it migrates to).
    fn supported_schema_version(&self) -> u32;

    /// Group-commit flushes and device syncs done since the store was opened.
    fn sync_counts(&self) -> (u64, u64);

    /// Flushes now, blocking the thread (start-up and shutdown only).
    ///
    /// # Errors
    /// The flush failed.
    fn flush_blocking(&self) -> Result<(), StoreError>;

    /// The group committer's measurements (batch sizes, flush latencies) for `/metrics`.
    fn commit_stats(&self) -> &CommitStats;

    /// p50, p99 and count of the group commit's flushes in the last [`FLUSH_WINDOW`](super::FLUSH_WINDOW).
    fn flush_latency_last_minute(&self) -> FlushLatency;

    /// The database's size on disk, in bytes, as the engine counts it.
    ///
    /// # Errors
    /// The engine cannot tell its files' sizes.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}

/// Configured services (the templates a service is created from).
pub trait Configuration {
    /// Whether the configured services were ever seeded from the services file.
    ///
    /// # Errors
    /// Storage failed.
    fn templates_seeded(&self) -> Result<bool, StoreError>;

    /// Stores `services` and marks the seeding done, in one transaction.
    ///
    /// # Errors
    /// Storage failed.
    fn seed_templates(&self, services: &[ConfiguredService]) -> Result<Pending<()>, StoreError>;

    /// Every configured service.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn templates(&self) -> Result<Vec<ConfiguredService>, StoreError>;

    /// Creates or replaces a configured service.
    ///
    /// # Errors
    /// Storage failed.
    fn put_template(&self, service: &ConfiguredService) -> Result<Pending<()>, StoreError>;

    /// Removes a configured service; false if there was none.
    ///
    /// # Errors
    /// Storage failed.
    fn delete_template(&self, name: &str) -> Result<Pending<bool>, StoreError>;
}

/// The contact center's agents.
pub trait Agents {
    /// Whether the agents were ever seeded from the agents file.
    ///
    /// # Errors
    /// Storage failed.
    fn agents_seeded(&self) -> Result<bool, StoreError>;

    /// Stores `agents` and marks the seeding done, in one transaction.
    ///
    /// # Errors
    /// Storage failed.
    fn seed_agents(&self, agents: &[AgentRecord]) -> Result<Pending<()>, StoreError>;

    /// Every stored agent.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;

    /// The agent with this id.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError>;

    /// Creates or replaces an agent.
    ///
    /// # Errors
    /// Storage failed.
    fn put_agent(&self, agent: &AgentRecord) -> Result<Pending<()>, StoreError>;

    /// Removes an agent; false if there was none.
    ///
    /// # Errors
    /// Storage failed.
    fn delete_agent(&self, id: &str) -> Result<Pending<bool>, StoreError>;
}

/// Service records, their lifecycle's writes and the indexes that find them.
pub trait Services {
    /// Stores a new service record with its index entries, in one transaction.
    ///
    /// # Errors
    /// Storage failed.
    fn insert_service(&self, record: &ServiceRecord) -> Result<Pending<()>, StoreError>;

    /// Stores many new service records with their index entries, all in one transaction: a
    /// bulk load (the benchmark's million services, an import) without paying a transaction
    /// per record. Keep a call to a few thousand records (the engine holds the transaction's
    /// writes in memory).
    ///
    /// # Errors
    /// Storage failed; nothing of this call was written.
    fn insert_services(&self, records: &[ServiceRecord]) -> Result<Pending<()>, StoreError>;

    /// The service record with this id.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn service(&self, id: &str) -> Result<Option<ServiceRecord>, StoreError>;

    /// The [`ServiceAccess`] of service `id`: the access check's read, which decodes no more
    /// of the stored record than that.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn service_access(&self, id: &str) -> Result<Option<ServiceAccess>, StoreError>;

    /// Reads, changes and writes back one service atomically, keeping its index entries
    /// right, and appends the routing events `change` pushes onto its second argument to the
    /// service's history in the same transaction (noted in the record by
    /// [`ServiceRecord::note_routing`]), so that a reservation and its `Reserved` event, or a
    /// dial outcome and its `Dialed` event, are one unit of work. `change` may run more than
    /// once (an engine may retry a conflicting transaction), so it must only touch the record.
    /// Returns the new record, or `None` if there is no such service. Callers use
    /// [`Store::update_service`](super::Store::update_service) and [`Store::update_service_routed`](super::Store::update_service_routed), which give `change`
    /// its own error type.
    ///
    /// # Errors
    /// [`UpdateError::Rejected`] with `change`'s refusal (nothing written), or a storage error.
    fn change_service(
        &self,
        id: &str,
        change: &mut ServiceChange<'_>,
    ) -> Result<Pending<Option<ServiceRecord>>, UpdateError<Refusal>>;

    /// Services of one customer number that pass `keep`, at most `limit`.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn services_by_customer(
        &self,
        customer_number: &str,
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError>;

    /// Services of configured services in `states` that pass `keep`, at most `limit`.
    /// `service_name: None` means every configured service. Only the index keys of the wanted
    /// states lead to a record being read.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn services_in_states(
        &self,
        service_name: Option<&str>,
        states: &[CallbackState],
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError>;

    /// Services of `service_name` owned by `owner` that pass `keep`, at most `limit`: only
    /// that user's index keys are read, so asking as a user with no services costs one seek.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn services_of_owner(
        &self,
        owner: &str,
        service_name: &str,
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError>;

    /// The earliest desired time of a SCHEDULED service.
    ///
    /// # Errors
    /// Storage failed.
    fn next_scheduled(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Ids of up to `limit` SCHEDULED services whose desired time is at or before `now`.
    ///
    /// # Errors
    /// Storage failed.
    fn due_scheduled(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Number of services of `service_name` in `states`, counting no further than `limit`
    /// (index keys only).
    ///
    /// # Errors
    /// Storage failed.
    fn count_in_states(
        &self,
        service_name: &str,
        states: &[CallbackState],
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Number of services not yet COMPLETED, per configured service (kept in memory: no
    /// storage is read).
    fn active_counts(&self) -> BTreeMap<String, u64>;

    /// Looks at up to `limit` expiry-index entries due at `now` and removes their services with
    /// everything stored for them (entries left behind by a reschedule are only dropped). Work
    /// is proportional to what is due: a range scan of `by_expiry`. When `scanned < limit`,
    /// nothing due is left.
    ///
    /// # Errors
    /// Storage failed.
    fn purge_expired(&self, now: Timestamp, limit: usize) -> Result<Pending<Purged>, StoreError>;

    /// Services `agent` handled that are in `states` and pass `keep`, at most `limit`. Only
    /// that agent's index entries are read, and only the records of those in a wanted state
    /// are read and decoded: services of other agents, and services nobody handled, cost
    /// nothing.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn services_handled_by(
        &self,
        agent: &str,
        states: &[CallbackState],
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError>;
}

/// Console and agent-desktop accounts.
pub trait Accounts {
    /// Creates or replaces an account.
    ///
    /// # Errors
    /// Storage failed.
    fn put_account(&self, account: &Account) -> Result<Pending<()>, StoreError>;

    /// The account named `username`.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn account(&self, username: &str) -> Result<Option<Account>, StoreError>;

    /// Every account, by name.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// Removes an account; false if there was none.
    ///
    /// # Errors
    /// Storage failed.
    fn delete_account(&self, username: &str) -> Result<Pending<bool>, StoreError>;
}

/// Services by desired time: counted, paged and visited in time order without reading records.
pub trait TimeIndex {
    /// How many services `selection` holds, per state. Exact, and independent of the
    /// window's size: the whole hours inside the window are read from the in-memory count
    /// index (`time_counts.rs`), and only the partial hours at its two edges are scanned.
    ///
    /// # Errors
    /// Storage failed or an entry of an edge hour is unreadable.
    fn count_by_time(&self, selection: &TimeSelection<'_>) -> Result<StateCounts, StoreError>;

    /// The ids of at most `limit` services of `selection` from the `offset`-th on (0-based),
    /// in (desired time, id) order. The offset is found without walking the window: whole
    /// hours before it are skipped by their counts, and only the hours the page lies in (and
    /// the partial hours at the window's edges) are scanned. Hours that hold nothing the
    /// selection wants are not read at all.
    ///
    /// # Errors
    /// Storage failed or a scanned entry is unreadable.
    fn page_by_time(
        &self,
        selection: &TimeSelection<'_>,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// How many services of configured service `service_name` in `states` (empty: all)
    /// each five-minute slot of desired time from `from` until `to` holds, as (slot start,
    /// count) in time order, leaving out empty slots. Read from the in-memory count index
    /// alone (no entry is scanned), so a window costs its slots, not the services in it. Both
    /// ends are rounded out to whole slots; the counts follow each write once it has
    /// committed (see `time_counts.rs`).
    fn count_per_slot(
        &self,
        from: Timestamp,
        to: Timestamp,
        service_name: &str,
        states: &[CallbackState],
    ) -> Vec<(Timestamp, u64)>;

    /// Shows `visit` every service whose desired time is at or after `from` and before `to`
    /// (`None`: no bound), in (desired time, id) order, as the time index summarises it: no
    /// record is read, so a window costs what it holds, not what the database holds. Stops
    /// early when `visit` breaks.
    ///
    /// # Errors
    /// Storage failed or an entry is unreadable.
    fn visit_by_time(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        visit: &mut dyn FnMut(&ServiceSummary<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;
}

/// Chat sessions and their transcripts.
pub trait Chats {
    /// Stores a chat session (new, or changed without a new event).
    ///
    /// # Errors
    /// Storage failed.
    fn put_chat_session(&self, session: &ChatSession) -> Result<Pending<()>, StoreError>;

    /// Appends `events` to a session's transcript and stores the session with them, in one
    /// transaction.
    ///
    /// # Errors
    /// Storage failed.
    fn append_transcript(
        &self,
        session: &ChatSession,
        events: &[TranscriptEvent],
    ) -> Result<Pending<()>, StoreError>;

    /// The chat session `id`.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn chat_session(&self, id: &str) -> Result<Option<ChatSession>, StoreError>;

    /// Every stored chat session that `keep` accepts (start-up restores the open ones).
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn chat_sessions(
        &self,
        keep: &mut dyn FnMut(&ChatSession) -> bool,
    ) -> Result<Vec<ChatSession>, StoreError>;

    /// The transcript of a session, in order.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn transcript(&self, session_id: &str) -> Result<Vec<TranscriptEvent>, StoreError>;

    /// Removes a chat session and its transcript.
    ///
    /// # Errors
    /// Storage failed.
    fn delete_chat_session(&self, session_id: &str) -> Result<Pending<()>, StoreError>;
}

/// Notifications kept for a service until they are delivered or it expires.
pub trait Notifications {
    // Customer-bound notifications.
    /// Stores a notification for the customer of `service_id`. `comet_user` is the
    /// `gms_user` whose CometD clients should receive it (a comet service with an owner): it
    /// is then listed in the `undelivered` index until delivered, in the same transaction.
    ///
    /// # Errors
    /// Storage failed.
    fn add_notification(
        &self,
        service_id: &str,
        comet_user: Option<&str>,
        tag: String,
        message: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Pending<Notification>, StoreError>;

    /// Stores several customer notifications, each as [`Notifications::add_notification`]
    /// does, in one transaction: sled 0.34 gives every transaction its own log buffer
    /// (written and `sync_file_range`d on its own) and runs it under a lock that excludes
    /// flushes and every other transaction, so a burst of notifications costs one of each this
    /// way instead of one per notification. Returned in the order given.
    ///
    /// # Errors
    /// Storage failed: none of them is stored.
    fn add_notifications(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Pending<Vec<Notification>>, StoreError>;

    /// The customer-bound notifications of a service, oldest first.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn notifications(&self, service_id: &str) -> Result<Vec<Notification>, StoreError>;

    /// Whether notification `seq` of `service_id` is stored and not yet delivered.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn is_undelivered(&self, service_id: &str, seq: u64) -> Result<bool, StoreError>;

    /// Marks one notification delivered and drops it from the `undelivered` index
    /// (`comet_user` as given to [`Notifications::add_notification`]). Returns true if this call
    /// delivered it: false when it was delivered already (a poll or another push got there
    /// first) or is gone.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn mark_delivered(
        &self,
        service_id: &str,
        comet_user: Option<&str>,
        seq: u64,
    ) -> Result<Pending<bool>, StoreError>;

    /// [`Notifications::mark_delivered`] for several notifications of `comet_user`'s services
    /// (`(service_id, seq)` each), as one write where the engine has transactions, so that a
    /// connect reply carrying many pushes costs one commit. Returns how many this call
    /// delivered; `None` if given none (nothing was written).
    ///
    /// # Errors
    /// Storage failed or a value is unreadable (the ones before may be marked).
    fn mark_all_delivered(
        &self,
        comet_user: Option<&str>,
        notifications: &[(&str, u64)],
    ) -> Result<Option<Pending<usize>>, StoreError> {
        let mut receipt: Option<Pending<usize>> = None;
        for &(service_id, seq) in notifications {
            let marked = self
                .mark_delivered(service_id, comet_user, seq)?
                .map(usize::from);
            receipt = Some(match receipt {
                None => marked,
                Some(so_far) => so_far.and(marked).map(|(before, this)| before + this),
            });
        }
        Ok(receipt)
    }

    /// The undelivered notifications of a service, oldest first, each marked delivered by
    /// this call (so two concurrent polls never both get one).
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn take_undelivered(
        &self,
        service_id: &str,
        comet_user: Option<&str>,
    ) -> Result<Pending<Vec<Notification>>, StoreError>;

    /// Up to `limit` undelivered comet notifications of `gms_user`, oldest first, with their
    /// service ids. Index entries left behind (the notification is gone or was delivered
    /// without the index being told) are dropped on the way.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn undelivered_for_user(
        &self,
        gms_user: &str,
        limit: usize,
    ) -> Result<Vec<(String, Notification)>, StoreError>;

    // Agent-bound notifications (from the customer, for the agent desktop).
    /// Stores a notification from the customer of `service_id` for the agent desktop;
    /// `message` is JSON text, kept as given (the agent desktop gets it as a string).
    ///
    /// # Errors
    /// Storage failed.
    fn add_agent_notification(
        &self,
        service_id: &str,
        tag: String,
        message: String,
        now: Timestamp,
    ) -> Result<Pending<Notification>, StoreError>;

    /// The agent-bound notifications of a service, oldest first.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn agent_notifications(&self, service_id: &str) -> Result<Vec<Notification>, StoreError>;

    /// The agent-bound notifications of a service not yet retrieved, oldest first, each
    /// marked retrieved by this call.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn take_agent_notifications(
        &self,
        service_id: &str,
    ) -> Result<Pending<Vec<Notification>>, StoreError>;
}

/// A service's routing history, appended beside its record.
pub trait RoutingHistory {
    /// The routing history of service `id`, oldest first (one prefix scan).
    ///
    /// # Errors
    /// Storage failed or an event is unreadable.
    fn routing_history(&self, id: &str) -> Result<Vec<RoutingEvent>, StoreError>;

    /// Appends routing history to an active service, with the router's `progress` through
    /// its `_target` list. History that changes nothing in the record (a step entered,
    /// skipped or timed out, a release, at the progress already stored) writes the history
    /// tree only, not the record; a reservation or a dial outcome (which the record keeps,
    /// [`ServiceRecord::note_routing`]) or new progress goes through the record's
    /// transaction, which moves its index entries too. Returns false when the service is gone
    /// or no longer active.
    ///
    /// Routing history alone is progress the router can redo: the caller need not wait for
    /// the receipt to be durable.
    ///
    /// # Errors
    /// Storage failed or the record is unreadable.
    fn append_routing(
        &self,
        id: &str,
        events: &[RoutingEvent],
        progress: Option<&RouteProgress>,
    ) -> Result<Pending<bool>, StoreError>;
}

/// The status notifications a service's changes implied, in order, until delivered.
pub trait StatusOutbox {
    /// Waits until some service's outbox got entries, and returns those services (the status
    /// worker's wake-up) as a receipt: its ticket is taken after the entries were written, so
    /// its [`Pending::durable`] covers them, and an event is sent only once its change is
    /// durable (a change lost in a crash is never reported).
    fn status_written(&self) -> BoxFuture<'_, Pending<BTreeSet<String>>>;

    /// Every service with pending status notifications (a read of `status_pending` only).
    ///
    /// # Errors
    /// Storage failed.
    fn status_pending_services(&self) -> Result<BTreeSet<String>, StoreError>;

    /// The oldest pending status notification of a service: the next to deliver.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn next_status_notification(
        &self,
        service_id: &str,
    ) -> Result<Option<StatusNotification>, StoreError>;

    /// A service's status notifications, oldest first (the console).
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn status_notifications(&self, service_id: &str)
        -> Result<Vec<StatusNotification>, StoreError>;

    /// Stores an attempt's outcome (`entry` as the worker changed it): the entry, and its
    /// pending mark dropped once it is delivered or failed. Does nothing when the service's
    /// outbox no longer has it (the service expired meanwhile).
    ///
    /// # Errors
    /// Storage failed.
    fn record_status_attempt(
        &self,
        service_id: &str,
        entry: &StatusNotification,
    ) -> Result<Pending<()>, StoreError>;
}

/// The GMS Storage API's areas and the Notification API's subscriptions, each with an expiry.
pub trait StorageApi {
    // Storage API areas, free-standing and of a service.
    /// Stores (or replaces) a storage area with its expiry-index entry, in one transaction.
    ///
    /// # Errors
    /// The disk is nearly full, or storage failed.
    fn put_storage(&self, area: &StorageArea) -> Result<Pending<()>, StoreError>;

    /// The storage area `id`, expired or not (the caller compares with its clock).
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn storage(&self, id: &str) -> Result<Option<StorageArea>, StoreError>;

    /// Removes the storage area `id`; false if there was none.
    ///
    /// # Errors
    /// Storage failed.
    fn delete_storage(&self, id: &str) -> Result<Pending<bool>, StoreError>;

    /// Reads, changes and writes back the storage area `id` atomically; `change` must not
    /// move its expiry (the index entry stays). Returns the new area, `None` if there is none.
    /// `change` may run more than once (an engine may retry a conflicting transaction).
    ///
    /// # Errors
    /// Storage failed.
    fn update_storage(
        &self,
        id: &str,
        change: &dyn Fn(&mut StorageArea),
    ) -> Result<Pending<Option<StorageArea>>, StoreError>;

    /// Reads, changes (or makes, from `None`) and writes back the storage of service
    /// `service_id` atomically; `change` returning `Err` writes nothing. `change` may run
    /// more than once.
    ///
    /// # Errors
    /// [`UpdateError::Rejected`] with `change`'s error, or a storage error.
    fn change_service_storage(
        &self,
        service_id: &str,
        change: &dyn Fn(Option<StorageArea>) -> Result<StorageArea, Refusal>,
    ) -> Result<Pending<StorageArea>, UpdateError<Refusal>>;

    /// Like [`StorageApi::update_storage`], for the storage of service `service_id`.
    ///
    /// # Errors
    /// Storage failed.
    fn update_service_storage(
        &self,
        service_id: &str,
        change: &dyn Fn(&mut StorageArea),
    ) -> Result<Pending<Option<StorageArea>>, StoreError>;

    /// Removes up to `limit` storage areas due at `now`; returns (index entries looked at,
    /// ids removed). When the first is below `limit`, nothing due is left.
    ///
    /// # Errors
    /// Storage failed.
    fn purge_expired_storage(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Pending<(usize, Vec<String>)>, StoreError>;

    /// The storage of service `service_id`, if it has any.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn service_storage(&self, service_id: &str) -> Result<Option<StorageArea>, StoreError>;

    /// Stores (or replaces) the storage of service `area.id`. It has no index of its own: it
    /// is removed with its service.
    ///
    /// # Errors
    /// The disk is nearly full, or storage failed.
    fn put_service_storage(&self, area: &StorageArea) -> Result<Pending<()>, StoreError>;

    /// Removes the storage of service `service_id`; false if it had none.
    ///
    /// # Errors
    /// Storage failed.
    fn delete_service_storage(&self, service_id: &str) -> Result<Pending<bool>, StoreError>;

    // Notification API subscriptions.
    /// Stores a subscription with its expiry-index entry.
    ///
    /// # Errors
    /// The disk is nearly full, or storage failed.
    fn put_subscription(&self, subscription: &Subscription) -> Result<Pending<()>, StoreError>;

    /// The subscription `id`, expired or not.
    ///
    /// # Errors
    /// Storage failed or the value is unreadable.
    fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError>;

    /// Removes the subscription `id`; false if there was none.
    ///
    /// # Errors
    /// Storage failed.
    fn delete_subscription(&self, id: &str) -> Result<Pending<bool>, StoreError>;

    /// How many subscriptions are stored (expired ones not yet removed included).
    fn subscription_count(&self) -> usize;

    /// Every subscription not expired at `now` whose filter matches `tag`. Reads every
    /// subscription (a filter may be a prefix, so no index narrows it): their number is
    /// bounded by the caller.
    ///
    /// # Errors
    /// Storage failed or a value is unreadable.
    fn subscriptions_matching(
        &self,
        tag: &str,
        now: Timestamp,
    ) -> Result<Vec<Subscription>, StoreError>;

    /// Removes up to `limit` subscriptions due at `now`; like [`StorageApi::purge_expired_storage`].
    ///
    /// # Errors
    /// Storage failed.
    fn purge_expired_subscriptions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Pending<(usize, Vec<String>)>, StoreError>;
}

/// GMS throttle counts per service, parameter and day.
pub trait Throttles {
    /// The interval counts of `service`'s throttles `slots`, in that order (`None`: never
    /// counted).
    ///
    /// # Errors
    /// Storage failed or a count is unreadable.
    fn throttle_windows(
        &self,
        service: &str,
        slots: &[u8],
    ) -> Result<Vec<Option<Window>>, StoreError>;

    /// How many creates of `service` each `(parameter, value)` counted on UTC `day`.
    ///
    /// # Errors
    /// Storage failed or a count is unreadable.
    fn throttle_requests_on(
        &self,
        day: u32,
        service: &str,
        values: &[(&str, &str)],
    ) -> Result<Vec<u64>, StoreError>;

    /// Counts one create of `service`: writes its interval counts `windows` (throttle number
    /// and new count) and adds one to each `(parameter, value)` of UTC `day`, in one
    /// transaction; then removes a few counts of the days before `day`.
    ///
    /// # Errors
    /// Storage failed; nothing of the transaction was written.
    fn count_throttled(
        &self,
        service: &str,
        windows: &[(u8, Window)],
        day: u32,
        values: &[(&str, &str)],
    ) -> Result<Pending<()>, StoreError>;
}
