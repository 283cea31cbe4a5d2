//! The lease: which node of those sharing one database is the active one, running the
//! router, the Chat Server's timers and the background jobs, and serving requests (the others
//! relay to it, at the address it publishes in the lease's row: [`Lease::publish`],
//! [`LeaseView`]).
//!
//! It is a session-level advisory lock held on a connection of its own. PostgreSQL releases it
//! the moment that session ends, so when the active node dies (`kill -9`, a crash, a lost
//! machine whose connection the server drops) a follower waiting in `pg_advisory_lock` holds it
//! at once, and two nodes can never hold it together.
//!
//! Every taking of the lease counts one more epoch (`callbackd_lease`), and every write of the
//! holder's store first checks, under a share lock on that row, that the epoch is still its own
//! ([`super::PgStore::open_fenced`]): a node that lost the lease can write nothing more, even
//! before it notices. The holder watches its session; when the session is gone (the database restarted, the network
//! to it failed) it takes the lock again on a new session as soon as the database answers,
//! and goes on as if nothing happened if the epoch is still its own: nobody else held the lease
//! meanwhile, so its routing state is still the truth. Only when another node holds the lease,
//! or held it in between, does [`Lease::lost`] resolve, and the node must stop.

use std::time::Duration;

use super::pool::{wait, Pool};
use crate::store::StoreError;

/// The advisory lock's key: a constant every node shares ("callbkd!" in ASCII).
const LEASE_KEY: i64 = 0x6361_6c6c_626b_6421;

/// Lifts the session's statement and lock timeouts (a role or database may set them), which
/// would otherwise end a follower's wait for the lease with an error.
const WAIT_WITHOUT_TIMEOUTS: &str = "SET statement_timeout = 0; SET lock_timeout = 0";

/// How often the holder checks that its session (and so the lease) is still there.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The lease, held until dropped or lost.
#[derive(Debug)]
pub struct Lease {
    /// One connection, the lock's session, used for nothing else.
    pool: Pool,
    /// The epoch this node took the lease in.
    epoch: i64,
}

/// Whether [`Lease::acquire`] found the lease free or waited for another node to let it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Nobody held it.
    AtOnce,
    /// Another node held it until its session ended.
    AfterWaiting,
}

/// What a look at the lease's session found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// This node holds it.
    Held,
    /// The database does not answer: nobody can take the lease meanwhile; look again later.
    Unreachable,
    /// Another node holds it, or held it since this node took it.
    Lost,
}

/// The node holding the lease, as the others see it ([`LeaseView`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its epoch: a new holder counts a new one.
    pub epoch: i64,
    /// Where it serves (`host:port`); `None` until it does ([`Lease::publish`]).
    pub address: Option<String>,
}

/// A follower's look at the lease, on a connection of its own.
#[derive(Debug)]
pub struct LeaseView {
    pool: Pool,
}

impl LeaseView {
    /// Connects to the database at `url`. Blocks the thread while it connects.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub fn open(url: &str) -> Result<LeaseView, StoreError> {
        Ok(LeaseView {
            pool: Pool::open(url, 1)?,
        })
    }

    /// The holder now; `None` when no node ever held the lease of this database.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn holder(&self) -> Result<Option<Holder>, StoreError> {
        let conn = self.pool.get()?;
        let rows = conn
            .query(
                "SELECT epoch, address FROM callbackd_lease WHERE id = 1",
                &[],
            )
            .await;
        match rows {
            Ok(rows) => Ok(rows.first().map(|row| Holder {
                epoch: row.get(0),
                address: row.get(1),
            })),
            // A database no node has served from yet: the lease's table comes with the first.
            Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }
}

impl Lease {
    /// Takes the lease of the database at `url`, waiting as long as another node holds it;
    /// `waiting` is called once if it has to wait (to log it). Blocks the thread.
    ///
    /// # Errors
    /// The database cannot be reached, or the session ended while waiting.
    pub fn acquire(url: &str, waiting: impl FnOnce()) -> Result<(Lease, Acquired), StoreError> {
        let pool = Pool::open(url, 1)?;
        let mut waiting = Some(waiting);
        let acquired = loop {
            match Self::lock(&pool, &mut waiting) {
                Ok(acquired) => break acquired,
                // The database restarted while this node waited: wait again on a new session.
                Err(StoreError::Unreachable(why)) => {
                    tracing::warn!(error = %why, "waiting for the lease: the database does not answer; trying again");
                    std::thread::sleep(CHECK_EVERY);
                }
                Err(other) => return Err(other),
            }
        };
        Ok((Self::begin_epoch(pool)?, acquired))
    }

    /// Takes the lease of the database at `url` if nobody holds it; `None` when another node
    /// does. Blocks the thread while it connects.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub fn try_acquire(url: &str) -> Result<Option<Lease>, StoreError> {
        let pool = Pool::open(url, 1)?;
        let conn = pool.get()?;
        let free: bool =
            wait(conn.query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY]))?.get(0);
        drop(conn);
        if !free {
            return Ok(None);
        }
        Self::begin_epoch(pool).map(Some)
    }

    /// Waits, without holding up a thread, until the node holding the lease of the database at
    /// `url` lets it go, then takes it. While the database does not answer it tries again every
    /// [`CHECK_EVERY`]; dropping the future gives up the wait (its session closes with it).
    ///
    /// # Errors
    /// The database refused the connection for another reason than being unreachable (a wrong
    /// password, a missing database).
    pub async fn acquire_when_free(url: &str) -> Result<Lease, StoreError> {
        loop {
            match Self::wait_for_lock(url).await {
                Ok(pool) => match Self::begin_epoch(pool) {
                    Ok(lease) => return Ok(lease),
                    // The session ended between the lock and the epoch: nothing was written.
                    Err(StoreError::Unreachable(why)) => {
                        tracing::warn!(error = %why, "taking the lease: the database stopped answering; trying again");
                    }
                    Err(other) => return Err(other),
                },
                Err(StoreError::Unreachable(why)) => {
                    tracing::debug!(error = %why, "waiting for the lease: the database does not answer; trying again");
                }
                Err(other) => return Err(other),
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    /// A new session of its own that holds the advisory lock, once it is free.
    async fn wait_for_lock(url: &str) -> Result<Pool, StoreError> {
        let pool = Pool::open(url, 1)?;
        let conn = pool.get()?;
        // A role's or database's statement or lock timeout must not end the wait.
        conn.batch_execute(WAIT_WITHOUT_TIMEOUTS).await?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&LEASE_KEY])
            .await?;
        drop(conn);
        Ok(pool)
    }

    /// Counts the new holder's epoch on `pool`, whose session holds the advisory lock. The
    /// address is cleared: followers wait until the new holder publishes its own
    /// ([`Lease::publish`]), once it serves.
    fn begin_epoch(pool: Pool) -> Result<Lease, StoreError> {
        let conn = pool.get()?;
        // Taken before the migrations run (a node of a newer version must not change the
        // schema under the active one), so the lease keeps a table of its own.
        wait(conn.batch_execute(
            "CREATE TABLE IF NOT EXISTS callbackd_lease (
                 id integer PRIMARY KEY CHECK (id = 1),
                 epoch bigint NOT NULL,
                 address text
             );
             ALTER TABLE callbackd_lease ADD COLUMN IF NOT EXISTS address text",
        ))?;
        let epoch: i64 = wait(conn.query_one(
            "INSERT INTO callbackd_lease (id, epoch, address) VALUES (1, 1, NULL) \
             ON CONFLICT (id) DO UPDATE SET epoch = callbackd_lease.epoch + 1, address = NULL \
             RETURNING epoch",
            &[],
        ))?
        .get(0);
        drop(conn);
        Ok(Lease { pool, epoch })
    }

    /// Tells the other nodes where to relay requests: `address` (`host:port`) serves this
    /// node's routes now. Only written while the epoch is still this node's.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub fn publish(&self, address: &str) -> Result<(), StoreError> {
        let conn = self.pool.get()?;
        wait(conn.execute(
            "UPDATE callbackd_lease SET address = $1 WHERE id = 1 AND epoch = $2",
            &[&address, &self.epoch],
        ))?;
        Ok(())
    }

    /// The epoch this node took the lease in: its writes check it ([`super::PgStore::open_fenced`]).
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Takes the advisory lock on a session of `pool`, waiting while another session holds it.
    fn lock(pool: &Pool, waiting: &mut Option<impl FnOnce()>) -> Result<Acquired, StoreError> {
        let conn = pool.get()?;
        let free: bool =
            wait(conn.query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY]))?.get(0);
        if free {
            return Ok(Acquired::AtOnce);
        }
        if let Some(waiting) = waiting.take() {
            waiting();
        }
        wait(conn.batch_execute(WAIT_WITHOUT_TIMEOUTS))?;
        wait(conn.execute("SELECT pg_advisory_lock($1)", &[&LEASE_KEY]))?;
        Ok(Acquired::AfterWaiting)
    }

    /// Resolves when the lease is lost to another node (see the module's documentation).
    /// Looks every [`CHECK_EVERY`].
    pub async fn lost(&self) {
        let mut away = false;
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            match self.check().await {
                Check::Held if away => {
                    tracing::info!(
                        "the database answers again, and this node still holds the lease"
                    );
                    away = false;
                }
                Check::Held => {}
                Check::Unreachable if !away => {
                    tracing::warn!("the database does not answer: requests that need it get 503 until it returns");
                    away = true;
                }
                Check::Unreachable => {}
                Check::Lost => return,
            }
        }
    }

    /// Whether this node still holds the lease, taking it again on a new session if the old
    /// one ended while nobody else took it.
    async fn check(&self) -> Check {
        let Ok(conn) = self.pool.get() else {
            return Check::Unreachable;
        };
        // A new session (the pool reconnected after losing the old one) holds nothing: ask
        // whether this session holds the lock, not merely whether the server answers.
        let held = conn
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted \
                 AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&LEASE_KEY],
            )
            .await;
        match held.map(|row| row.get::<_, i64>(0)) {
            Ok(1) => return Check::Held,
            Ok(_) => {}
            Err(_) => return Check::Unreachable,
        }
        let Ok(row) = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY])
            .await
        else {
            return Check::Unreachable;
        };
        if !row.get::<_, bool>(0) {
            return Check::Lost;
        }
        let epoch = conn
            .query_one("SELECT epoch FROM callbackd_lease WHERE id = 1", &[])
            .await
            .map(|row| row.get::<_, i64>(0));
        let check = match epoch {
            Ok(epoch) if epoch == self.epoch => return Check::Held,
            // Another node held the lease in between.
            Ok(_) => Check::Lost,
            Err(_) => Check::Unreachable,
        };
        // Not known to be still ours: let the lock go again, so that the next look compares
        // the epoch anew instead of finding the lock held.
        let _ = conn
            .execute("SELECT pg_advisory_unlock($1)", &[&LEASE_KEY])
            .await;
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::throwaway;

    /// A new empty database (the lease makes its own table).
    fn database() -> String {
        throwaway::shared().fresh_database()
    }

    /// Ends every session holding advisory locks on `url`'s database but the caller's: what a
    /// dropped connection does to the lease's session.
    fn end_lease_sessions(url: &str) {
        let admin = Pool::open(url, 1).unwrap();
        let conn = admin.get().unwrap();
        wait(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        ))
        .unwrap();
    }

    /// The lease's check once it has seen its old session gone: the first look may still use
    /// the dead connection and find the database unreachable, as the holder's loop would.
    async fn check_past_the_drop(lease: &Lease) -> Check {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let check = lease.check().await;
            if check != Check::Unreachable || std::time::Instant::now() > deadline {
                return check;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_sees_where_the_holder_serves_and_takes_over_when_it_lets_go() {
        let url = database();
        let view = LeaseView::open(&url).unwrap();
        assert_eq!(view.holder().await.unwrap(), None, "nobody held it yet");
        let first = Lease::try_acquire(&url).unwrap().expect("free");
        assert!(Lease::try_acquire(&url).unwrap().is_none(), "held");
        let taken = view.holder().await.unwrap().expect("a holder");
        assert_eq!(taken.address, None, "not serving yet");
        first.publish("10.0.0.1:8080").unwrap();
        let serving = view.holder().await.unwrap().expect("a holder");
        assert_eq!(serving.epoch, taken.epoch);
        assert_eq!(serving.address.as_deref(), Some("10.0.0.1:8080"));

        let waiting = tokio::spawn({
            let url = url.clone();
            async move { Lease::acquire_when_free(&url).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the lease is still held");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("taken once let go")
            .unwrap()
            .unwrap();
        let now = view.holder().await.unwrap().expect("a holder");
        assert_eq!(now.epoch, second.epoch());
        assert!(now.epoch > serving.epoch);
        assert_eq!(now.address, None, "the old address is gone with its epoch");
    }

    #[tokio::test]
    async fn a_lost_session_is_taken_again_when_nobody_else_took_the_lease() {
        let url = database();
        let (lease, _) = Lease::acquire(&url, || {}).unwrap();
        assert_eq!(lease.check().await, Check::Held);
        end_lease_sessions(&url);
        assert_eq!(
            check_past_the_drop(&lease).await,
            Check::Held,
            "taken again on a new session"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let url_again = url.clone();
        std::thread::spawn(move || {
            let _ = Lease::acquire(&url_again, || tx.send(()).unwrap());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("another node has to wait: the lease is held again");
    }

    #[tokio::test]
    async fn the_holder_learns_when_another_node_took_the_lease_meanwhile() {
        let url = database();
        let (lease, _) = Lease::acquire(&url, || {}).unwrap();
        end_lease_sessions(&url);
        // Another node takes the lease while the first one's session is gone, then dies.
        let (other, acquired) = Lease::acquire(&url, || {}).unwrap();
        assert_eq!(acquired, Acquired::AtOnce);
        assert_eq!(
            check_past_the_drop(&lease).await,
            Check::Lost,
            "held by the other node"
        );
        drop(other);
        assert_eq!(
            lease.check().await,
            Check::Lost,
            "free again, but another node held it in between"
        );
        tokio::time::timeout(Duration::from_secs(10), lease.lost())
            .await
            .expect("the lost lease is reported");
    }
}
