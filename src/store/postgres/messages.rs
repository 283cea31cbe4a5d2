//! Notifications, chat sessions and transcripts, and throttle counts on PostgreSQL: the
//! [`Notifications`](crate::store::engine::Notifications),
//! [`Chats`](crate::store::engine::Chats) and [`Throttles`](crate::store::engine::Throttles)
//! traits, one file each, with the same meaning as the sled engine's (`store/notifications.rs`,
//! `store/chat.rs`, `store/throttle.rs`), since the same black-box suite runs against both.
//!
//! | table | key | what |
//! |---|---|---|
//! | `notifications` | service id, seq | customer-bound notifications; `comet_user` and `delivered` beside the value |
//! | `agent_notifications` | service id, seq | agent-bound notifications; `retrieved` beside the value |
//! | `chat_sessions` | id | chat sessions |
//! | `transcripts` | session id, position | their events |
//! | `throttle_windows` | service, slot | interval throttles' windows |
//! | `throttle_counts` | day, service, parameter, value | creates per UTC day |
//!
//! Both notification tables reference `services` with `ON DELETE CASCADE`: removing a service
//! removes its notifications, which is how the purge of an expired service reaches them.
//! Several nodes may share the database, so every "exactly once" is one statement's row locks,
//! never a read followed by a write.

use crate::store::StoreError;

mod chats;
mod notifications;
mod throttles;

/// `value` as a `bigint`; `what` names it in the error (PostgreSQL has no unsigned integers).
fn to_bigint(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Encode(format!("{what} {value} exceeds a bigint")))
}

/// A `bigint` read back as the unsigned number it was written from; `what` names it.
fn from_bigint(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what: what.to_string(),
        reason: format!("negative value {value}"),
    })
}

#[cfg(test)]
mod test_support {
    //! What the tests of the three files share: a fresh database, and the service rows the
    //! notification tables reference.

    use crate::store::postgres::{throwaway, PgStore};

    /// Two stores on one fresh database: two nodes, each with its own connections.
    pub(super) fn two_nodes() -> (PgStore, PgStore) {
        let url = throwaway::shared().fresh_database();
        let first = PgStore::open(&url, 4).expect("open the first node");
        let second = PgStore::open(&url, 4).expect("open the second node");
        (first, second)
    }

    /// A store on a fresh database.
    pub(super) fn store() -> PgStore {
        PgStore::open(&throwaway::shared().fresh_database(), 4).expect("open the store")
    }

    /// Stores bare service rows `ids` (the notification tables' foreign keys need them).
    pub(super) fn services(store: &PgStore, ids: &[&str]) {
        crate::store::postgres::test_rows::bare_services(store, ids);
    }

    /// Removes service `id`'s row, as the purge of an expired service does.
    pub(super) fn remove_service(store: &PgStore, id: &str) {
        store
            .transaction(|tx| tx.execute("DELETE FROM services WHERE id = $1", &[&id]))
            .expect("remove the service row");
    }

    /// The number of rows `sql` (a `SELECT count(*) ...`) counts.
    pub(super) fn count(store: &PgStore, sql: &str) -> i64 {
        store
            .read(|read| Ok(read.query_one(sql, &[])?.get(0)))
            .expect("count rows")
    }
}
