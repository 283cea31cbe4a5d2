//! The lease: which node of those sharing one database is the active one, running the
//! router, the Chat Server's timers and the background jobs, and serving requests.
//!
//! It is a session-level advisory lock held on a connection of its own. PostgreSQL releases it
//! the moment that session ends, so when the active node dies (`kill -9`, a crash, a lost
//! machine whose connection the server drops) a standby waiting in `pg_advisory_lock` holds it
//! at once, and two nodes can never hold it together. The holder watches its connection: when
//! the session is gone (the database restarted, the network failed), so is the lease, and
//! [`Lease::lost`] resolves so that the node stops before another one takes over.

use std::time::Duration;

use super::pool::{wait, Pool};
use crate::store::StoreError;

/// The advisory lock's key: a constant every node shares ("callbkd!" in ASCII).
const LEASE_KEY: i64 = 0x6361_6c6c_626b_6421;

/// How often the holder checks that its session (and so the lease) is still there.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The lease, held until dropped or lost.
#[derive(Debug)]
pub struct Lease {
    /// One connection, the lock's session, used for nothing else.
    pool: Pool,
}

/// Whether [`Lease::acquire`] found the lease free or waited for another node to let it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Nobody held it.
    AtOnce,
    /// Another node held it until its session ended.
    AfterWaiting,
}

impl Lease {
    /// Takes the lease of the database at `url`, waiting as long as another node holds it;
    /// `waiting` is called once if it has to wait (to log it). Blocks the thread.
    ///
    /// # Errors
    /// The database cannot be reached, or the session ended while waiting.
    pub fn acquire(url: &str, waiting: impl FnOnce()) -> Result<(Lease, Acquired), StoreError> {
        let pool = Pool::open(url, 1)?;
        let conn = pool.get()?;
        let free: bool =
            wait(conn.query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY]))?.get(0);
        let acquired = if free {
            Acquired::AtOnce
        } else {
            waiting();
            wait(conn.execute("SELECT pg_advisory_lock($1)", &[&LEASE_KEY]))?;
            Acquired::AfterWaiting
        };
        drop(conn);
        Ok((Lease { pool }, acquired))
    }

    /// Resolves when the lease is lost: its session has ended, so another node may hold it
    /// now. Checks the session every [`CHECK_EVERY`].
    pub async fn lost(&self) {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            if !self.holds().await {
                return;
            }
        }
    }

    /// Whether the lock's session still holds the lease.
    async fn holds(&self) -> bool {
        let Ok(conn) = self.pool.get() else {
            return false;
        };
        // A new session (the pool reconnected after losing the old one) holds nothing: ask
        // the server whether this session holds the lock, not merely whether it answers.
        let held = conn
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted \
                 AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&LEASE_KEY],
            )
            .await;
        matches!(held.map(|row| row.get::<_, i64>(0)), Ok(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::throwaway;

    #[test]
    fn a_second_node_waits_until_the_first_lets_the_lease_go() {
        let url = throwaway::shared().fresh_database();
        let (first, acquired) = Lease::acquire(&url, || panic!("nobody held it")).unwrap();
        assert_eq!(acquired, Acquired::AtOnce);
        let (tx, rx) = std::sync::mpsc::channel();
        let second = std::thread::spawn({
            let url = url.clone();
            move || {
                Lease::acquire(&url, || tx.send("waiting").unwrap())
                    .unwrap()
                    .1
            }
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("waiting"));
        assert!(!second.is_finished(), "the lease is held by the first");
        drop(first);
        assert_eq!(second.join().unwrap(), Acquired::AfterWaiting);
    }

    #[tokio::test]
    async fn the_holder_learns_when_its_session_ends() {
        let url = throwaway::shared().fresh_database();
        let (lease, _) = Lease::acquire(&url, || {}).unwrap();
        assert!(lease.holds().await);
        // What a database restart or a dropped connection does to the lock's session.
        let admin = Pool::open(&url, 1).unwrap();
        let conn = admin.get().unwrap();
        wait(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND pid <> pg_backend_pid()",
            &[],
        ))
        .unwrap();
        tokio::time::timeout(Duration::from_secs(10), lease.lost())
            .await
            .expect("the lost lease is noticed");
        assert!(!lease.holds().await, "a new session holds nothing");
    }
}
