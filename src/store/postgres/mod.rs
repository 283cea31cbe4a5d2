//! The PostgreSQL engine: every [`engine`](super::engine) trait over one PostgreSQL database,
//! for several callbackd nodes sharing it (`[store] engine = "postgres"`).
//!
//! A write is one transaction, committed with `synchronous_commit` on before the method
//! returns: its [`Pending`] receipt is durable already, and PostgreSQL's own group commit
//! batches the WAL flushes of concurrent transactions (the sled engine's committer does that
//! job there). Rows carry, as columns, what the engine queries by (ids, states, times, owners);
//! the values themselves are the same versioned stored types the sled engine writes
//! ([`super::stored`], golden-bytes tested), in a `bytea` column, so that one conversion and
//! one format serve both engines.
//!
//! | table | key | what |
//! |---|---|---|
//! | `callbackd_schema` | version | migrations applied (`schema.rs`) |
//! | `callbackd_meta` | name | seeding marks, the lease's epoch (`lease.rs`) |
//! | `services` | id | a service record, with its name, state, customer, owner, desired time and expiry as columns |
//! | `service_agents` | agent, service id | the agents who handled a service, with its state |
//! | `routing_history` | service id, seq | a service's routing history, appended |
//! | `status_outbox` | service id, seq | status notifications to deliver, `pending` until done |
//! | `notifications`, `agent_notifications` | service id, seq | notifications, with their delivered (retrieved) mark as a column |
//! | `chat_sessions`, `transcripts` | id / session id, position | chat sessions and their transcripts |
//! | `throttle_windows`, `throttle_counts` | service, slot / day, service, parameter, value | GMS's throttle counts |
//! | `templates`, `agents`, `accounts` | name / id / user name | configured services, agents, console users |
//! | `storage_areas`, `service_storage`, `subscriptions` | id / service id / id | Storage API areas and Notification API subscriptions, with their expiry |
//!
//! Rows that belong to a service reference it with `ON DELETE CASCADE`, so the purge of an
//! expired service removes them with it. Key columns are `COLLATE "C"`, so lists come back in
//! the byte order the sled engine gives. Each subject's methods live in their own file, as in
//! the sled engine: `services.rs` (services, routing history, time index, status outbox),
//! `messages/` (notifications, chats, throttles), `configuration.rs` and
//! `configuration/storage.rs` (configured services, agents, accounts; Storage API). The lease
//! that makes one node of several the active one is `lease.rs`.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Transaction};

use super::pending::Commit;
use super::{CommitStats, Database, FlushLatency, Pending, StoreError};

mod configuration;
mod lease;
mod messages;
mod pool;
mod schema;
mod services;
pub mod throwaway;

pub use lease::{Acquired, Holder, Lease, LeaseView};
pub use schema::latest_version;

use pool::{wait, Pool};

/// `[store] pool_size` when unset: enough for a node's concurrent requests on a small box.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The PostgreSQL engine. Cheap to clone; clones share the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    migrations_applied: Vec<String>,
    /// Each committed write is booked as a flush of one: PostgreSQL syncs its WAL at commit.
    stats: CommitStats,
    /// Services whose status outbox got entries, for the status worker (`services.rs`).
    pub(super) status_wake: services::StatusWake,
    /// The lease epoch every write checks ([`PgStore::open_fenced`]).
    fence: Option<i64>,
}

/// A committed transaction is durable: nothing is left to wait for.
impl Commit for Inner {
    fn wait_durable(&self, _ticket: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// How many times [`PgStore::transaction`] runs a transaction that PostgreSQL keeps aborting
/// as transient (see [`is_transient`]) before it reports the failure.
const ATTEMPTS: u32 = 5;

/// The wait before the second attempt of an aborted transaction, doubled before each later
/// one (10, 20, 40, 80 ms: 150 ms in all), so that the transaction it collided with can
/// commit first.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Whether PostgreSQL aborted the transaction only because of concurrent ones: chosen as a
/// deadlock's victim (`40P01`) or unable to serialize it (`40001`). Neither says anything
/// about the transaction itself, and the same work run again in a new transaction normally
/// succeeds.
fn is_transient(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    err.code().is_some_and(|code| {
        *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Statements run synchronously on a connection or inside a transaction (see `pool.rs`).
pub(crate) struct Sql<'a, C> {
    client: &'a C,
    /// Set when a statement failed as [`is_transient`]: PostgreSQL aborted the transaction,
    /// whatever the work running in it makes of the error, and [`PgStore::transaction`] runs
    /// the work again. The error itself reaches the work as a [`StoreError`], which no longer
    /// says why.
    aborted_transiently: Cell<bool>,
}

/// Parameters of one statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

impl<'a, C: GenericClient + Sync> Sql<'a, C> {
    /// Statements on `client`.
    pub(crate) fn new(client: &'a C) -> Self {
        Sql {
            client,
            aborted_transiently: Cell::new(false),
        }
    }

    /// `err` as a [`StoreError`], noting first whether it aborted the transaction transiently.
    fn failed(&self, err: tokio_postgres::Error) -> StoreError {
        if is_transient(&err) {
            self.aborted_transiently.set(true);
        }
        StoreError::from(err)
    }

    /// Runs `statement`; the number of rows it changed.
    pub(crate) fn execute(&self, statement: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        wait(self.client.execute(statement, params)).map_err(|err| self.failed(err))
    }

    /// Every row `statement` returns.
    pub(crate) fn query(
        &self,
        statement: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        wait(self.client.query(statement, params)).map_err(|err| self.failed(err))
    }

    /// The row `statement` returns, if any (an error if more than one).
    pub(crate) fn query_opt(
        &self,
        statement: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        wait(self.client.query_opt(statement, params)).map_err(|err| self.failed(err))
    }

    /// The one row `statement` returns.
    pub(crate) fn query_one(
        &self,
        statement: &str,
        params: &Params<'_>,
    ) -> Result<Row, StoreError> {
        wait(self.client.query_one(statement, params)).map_err(|err| self.failed(err))
    }
}

/// A transaction's statements.
pub(crate) type Tx<'a, 'b> = Sql<'a, Transaction<'b>>;

/// Statements outside a transaction (single reads).
pub(crate) type Read<'a> = Sql<'a, tokio_postgres::Client>;

/// `url` with its password, if any, replaced by `***` (for logs and messages).
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl PgStore {
    /// Connects to the database at `url` with at most `pool_size` connections and applies the
    /// schema's pending migrations.
    ///
    /// # Errors
    /// The database cannot be reached, a migration failed, or the schema is newer than this
    /// binary ([`StoreError::SchemaTooNew`]).
    pub fn open(url: &str, pool_size: usize) -> Result<PgStore, StoreError> {
        Self::open_fenced(url, pool_size, None)
    }

    /// Like [`PgStore::open`], for the node holding the lease of `epoch`
    /// ([`Lease::epoch`]): every write first checks, under a share lock on the lease's row,
    /// that the epoch is still this node's, and fails with [`StoreError::Unreachable`] once
    /// another node has taken the lease, so that a node which lost it cannot write beside the
    /// new holder even before it notices.
    ///
    /// # Errors
    /// See [`PgStore::open`].
    pub fn open_fenced(
        url: &str,
        pool_size: usize,
        epoch: Option<i64>,
    ) -> Result<PgStore, StoreError> {
        let pool = Pool::open(url, pool_size)?;
        let migrations_applied = schema::run(&pool)?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                migrations_applied,
                stats: CommitStats::default(),
                status_wake: services::StatusWake::default(),
                fence: epoch,
            }),
        })
    }

    /// A receipt for a write already committed.
    pub(crate) fn pending<T>(&self, value: T) -> Pending<T> {
        Pending::new(self.inner.clone(), 0, value)
    }

    /// Runs `work` in one transaction and commits it before returning; an error from `work`
    /// rolls it back.
    ///
    /// A transaction PostgreSQL aborts as a deadlock's victim or a serialization failure
    /// ([`is_transient`]) is rolled back and `work` runs again in a new one, up to
    /// [`ATTEMPTS`] times in all, after a short wait that doubles each time; the last
    /// attempt's error is returned as it is. `work` must therefore change nothing but the
    /// database through its transaction (the engine traits say the same of their `change`
    /// closures: sled retries its own transactions too).
    pub(crate) fn transaction<T>(
        &self,
        mut work: impl FnMut(&Tx<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.pool.get()?;
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let value = loop {
            match self.attempt(&mut conn, &mut work) {
                Ok(done) => break done?,
                Err(aborted) if attempt < ATTEMPTS => {
                    tracing::debug!(
                        error = %aborted,
                        attempt,
                        "PostgreSQL aborted a transaction; running it again"
                    );
                    pool::blocking(|| std::thread::sleep(backoff));
                    backoff *= 2;
                    attempt += 1;
                }
                Err(aborted) => return Err(aborted),
            }
        };
        let stats = &self.inner.stats;
        stats
            .flushes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats
            .device_syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.flushed(1, Instant::now(), started.elapsed());
        Ok(value)
    }

    /// One attempt of [`PgStore::transaction`] on `conn`: `Ok` with what the transaction
    /// ended with (committed or not), `Err` with the error that aborted it as
    /// [`is_transient`], to be run again.
    fn attempt<T>(
        &self,
        conn: &mut tokio_postgres::Client,
        work: &mut impl FnMut(&Tx<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Result<T, StoreError>, StoreError> {
        let tx = match wait(conn.transaction()) {
            Ok(tx) => tx,
            Err(err) => return Ok(Err(err.into())),
        };
        let sql = Sql::new(&tx);
        let done = self.fenced(&sql).and_then(|()| work(&sql));
        if sql.aborted_transiently.get() {
            // Whatever `work` answered: its transaction is aborted, and a commit would only
            // roll it back. Dropping `tx` rolls it back.
            return Err(done.err().unwrap_or_else(|| {
                StoreError::Engine("PostgreSQL aborted the transaction".into())
            }));
        }
        let value = match done {
            Ok(value) => value,
            Err(err) => return Ok(Err(err)),
        };
        match wait(tx.commit()) {
            Ok(()) => Ok(Ok(value)),
            // A serialization failure can also be found at commit: nothing was stored.
            Err(err) if is_transient(&err) => Err(err.into()),
            Err(err) => Ok(Err(match StoreError::from(err) {
                StoreError::Unreachable(why) => StoreError::CommitUnknown(why),
                other => other,
            })),
        }
    }

    /// Checks, on a node opened with [`PgStore::open_fenced`], that its lease epoch is still
    /// the current one, and keeps the lease's row share-locked for the transaction of `sql`.
    fn fenced(&self, sql: &Tx<'_, '_>) -> Result<(), StoreError> {
        let Some(epoch) = self.inner.fence else {
            return Ok(());
        };
        let still_ours = sql.query_opt(
            "SELECT 1 FROM callbackd_lease WHERE id = 1 AND epoch = $1 FOR SHARE",
            &[&epoch],
        )?;
        if still_ours.is_none() {
            return Err(StoreError::Unreachable(
                "this node no longer holds the lease: another node is the active one".into(),
            ));
        }
        Ok(())
    }

    /// [`PgStore::transaction`], answered with a receipt.
    pub(crate) fn write<T>(
        &self,
        work: impl FnMut(&Tx<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Pending<T>, StoreError> {
        self.transaction(work).map(|value| self.pending(value))
    }

    /// Runs `work`'s reads on one connection, outside a transaction.
    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&Read<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.inner.pool.get()?;
        work(&Sql::new(&*conn))
    }
}

impl Database for PgStore {
    fn time_counts_built_in(&self) -> std::time::Duration {
        // PostgreSQL counts with its indexes when asked; nothing is built at start-up.
        std::time::Duration::ZERO
    }

    fn migrations_applied(&self) -> &[String] {
        &self.inner.migrations_applied
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(schema::read_version)
    }

    fn supported_schema_version(&self) -> u32 {
        latest_version()
    }

    fn sync_counts(&self) -> (u64, u64) {
        let stats = &self.inner.stats;
        (
            stats.flushes.load(std::sync::atomic::Ordering::Relaxed),
            stats
                .device_syncs
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        // Every acknowledged write was committed already.
        Ok(())
    }

    fn commit_stats(&self) -> &CommitStats {
        &self.inner.stats
    }

    fn flush_latency_last_minute(&self) -> FlushLatency {
        self.inner.stats.last_minute(Instant::now())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.read(|sql| {
            let row = sql.query_one("SELECT pg_database_size(current_database())", &[])?;
            let size: i64 = row.get(0);
            Ok(size as u64)
        })
    }
}

/// Rows other subjects' tests need.
#[cfg(test)]
pub(crate) mod test_rows {
    use super::PgStore;

    /// Stores bare `services` rows `ids`, for the tables that reference a service (their
    /// foreign keys need the row; its value is never read by those tests).
    pub(crate) fn bare_services(store: &PgStore, ids: &[&str]) {
        store
            .transaction(|tx| {
                for id in ids {
                    tx.execute(
                        "INSERT INTO services (id, service_name, state, desired_time_ms, expire_at_ms, value)
                         VALUES ($1, 'chat-delay', 'QUEUED', 0, 0, '\\x00')",
                        &[id],
                    )?;
                }
                Ok(())
            })
            .expect("insert the service rows");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_every_migration_once() {
        let url = throwaway::shared().fresh_database();
        let store = PgStore::open(&url, 2).unwrap();
        assert_eq!(store.migrations_applied().len(), latest_version() as usize);
        assert_eq!(store.schema_version().unwrap(), latest_version());
        assert_eq!(store.supported_schema_version(), latest_version());
        drop(store);
        let again = PgStore::open(&url, 2).unwrap();
        assert!(again.migrations_applied().is_empty());
        assert_eq!(again.schema_version().unwrap(), latest_version());
    }

    #[test]
    fn a_schema_newer_than_this_binary_is_refused() {
        let url = throwaway::shared().fresh_database();
        let store = PgStore::open(&url, 1).unwrap();
        store
            .transaction(|tx| {
                tx.execute(
                    "INSERT INTO callbackd_schema (version, name) VALUES ($1, 'from_the_future')",
                    &[&(latest_version() as i32 + 1)],
                )
            })
            .unwrap();
        drop(store);
        let err = PgStore::open(&url, 1).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, supported }
                if found == latest_version() + 1 && supported == latest_version()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_write_is_durable_once_committed_and_counted() {
        let store = PgStore::open(&throwaway::shared().fresh_database(), 2).unwrap();
        let pending = store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO callbackd_meta (name, value) VALUES ('probe', 'yes')",
                    &[],
                )
            })
            .unwrap();
        assert_eq!(pending.durable().await.unwrap(), 1);
        assert_eq!(store.sync_counts(), (1, 1));
        let value: String = store
            .read(|sql| {
                Ok(sql
                    .query_one("SELECT value FROM callbackd_meta WHERE name = 'probe'", &[])?
                    .get(0))
            })
            .unwrap();
        assert_eq!(value, "yes");
        assert!(store.size_on_disk().unwrap() > 0);
    }

    #[test]
    fn a_node_whose_lease_was_taken_over_can_write_nothing_more() {
        let url = throwaway::shared().fresh_database();
        let (lease, _) = Lease::acquire(&url, || {}).unwrap();
        let epoch = lease.epoch();
        let store = PgStore::open_fenced(&url, 2, Some(epoch)).unwrap();
        let mark = |name: &'static str| {
            store.write(move |tx| {
                tx.execute(
                    "INSERT INTO callbackd_meta (name, value) VALUES ($1, 'x')",
                    &[&name],
                )
            })
        };
        assert!(mark("while_held").is_ok());
        // This node's lease session ends and another node takes the lease.
        drop(lease);
        let (other, _) = Lease::acquire(&url, || {}).unwrap();
        assert_eq!(other.epoch(), epoch + 1);
        let err = mark("after_the_takeover").unwrap_err();
        assert!(matches!(err, StoreError::Unreachable(_)), "{err}");
        let kept: i64 = store
            .read(|sql| {
                Ok(sql
                    .query_one("SELECT count(*) FROM callbackd_meta WHERE value = 'x'", &[])?
                    .get(0))
            })
            .unwrap();
        assert_eq!(kept, 1, "only the write made while the lease was held");
    }

    #[test]
    fn two_transactions_that_deadlock_both_commit_once() {
        let store = PgStore::open(&throwaway::shared().fresh_database(), 2).unwrap();
        store
            .transaction(|tx| {
                tx.execute(
                    "INSERT INTO callbackd_meta (name, value) VALUES ('a', ''), ('b', '')",
                    &[],
                )
            })
            .unwrap();
        // Each locks its first row, waits until the other holds its own, then asks for the
        // other's row: a deadlock, which PostgreSQL breaks by aborting one of the two.
        let both_hold_one = std::sync::Arc::new(std::sync::Barrier::new(2));
        let writer = |mark: &'static str, first: &'static str, second: &'static str| {
            let (store, both_hold_one) = (store.clone(), both_hold_one.clone());
            std::thread::spawn(move || {
                let attempts = std::cell::Cell::new(0);
                let done = store.transaction(|tx| {
                    attempts.set(attempts.get() + 1);
                    for (n, row) in [first, second].into_iter().enumerate() {
                        tx.execute(
                            "UPDATE callbackd_meta SET value = value || $1 WHERE name = $2",
                            &[&mark, &row],
                        )?;
                        if n == 0 && attempts.get() == 1 {
                            both_hold_one.wait();
                        }
                    }
                    Ok(())
                });
                (done, attempts.get())
            })
        };
        let one = writer("1", "a", "b");
        let two = writer("2", "b", "a");
        let (one, two) = (one.join().unwrap(), two.join().unwrap());

        assert!(one.0.is_ok(), "the first writer: {:?}", one.0);
        assert!(two.0.is_ok(), "the second writer: {:?}", two.0);
        assert_eq!(one.1 + two.1, 3, "the deadlock's victim ran again, once");
        let values: Vec<String> = store
            .read(|sql| {
                Ok(sql
                    .query(
                        "SELECT value FROM callbackd_meta WHERE name IN ('a', 'b') ORDER BY name",
                        &[],
                    )?
                    .iter()
                    .map(|row| row.get(0))
                    .collect())
            })
            .unwrap();
        for value in &values {
            let mut marks: Vec<char> = value.chars().collect();
            marks.sort_unstable();
            assert_eq!(marks, ['1', '2'], "each writer's change once in {values:?}");
        }
    }

    #[test]
    fn a_transaction_aborted_every_time_is_reported_after_its_last_attempt() {
        let store = PgStore::open(&throwaway::shared().fresh_database(), 1).unwrap();
        let run = |statement: &'static str| {
            let attempts = std::cell::Cell::new(0);
            let done = store.transaction(|tx| {
                attempts.set(attempts.get() + 1);
                tx.execute(statement, &[])
            });
            (done, attempts.get())
        };

        let (aborted, tries) = run(
            "DO $$ BEGIN RAISE EXCEPTION 'collided' USING ERRCODE = 'serialization_failure'; END $$",
        );
        let (broken, runs) = run("DO $$ BEGIN RAISE EXCEPTION 'broken'; END $$");

        assert_eq!(tries, ATTEMPTS, "a transient abort is tried again");
        assert!(
            matches!(&aborted, Err(StoreError::Engine(why)) if why.contains("collided")),
            "then reported as it is: {aborted:?}"
        );
        assert_eq!(runs, 1, "any other error is not");
        assert!(
            matches!(&broken, Err(StoreError::Engine(why)) if why.contains("broken")),
            "{broken:?}"
        );
    }

    #[test]
    fn a_password_is_left_out_of_messages() {
        assert_eq!(
            without_password("postgres://callbackd:s3cret@db:5432/cb"),
            "postgres://callbackd:***@db:5432/cb"
        );
        assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(without_password("host=db user=u"), "host=db user=u");
    }

    #[test]
    fn an_unreachable_database_is_an_error_naming_it() {
        let err = PgStore::open("postgres://nobody@127.0.0.1:1/none", 1).unwrap_err();
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
    }
}
