//! The Storage API's areas and the Notification API's subscriptions on PostgreSQL.
//!
//! | table | key | columns beside the value |
//! |---|---|---|
//! | `storage_areas` | area id | `expire_at_ms`, indexed |
//! | `service_storage` | service id (cascades from `services`) | |
//! | `subscriptions` | subscription id | `expire_at_ms`, indexed |
//!
//! The `expire_at_ms` column is the value's own expiry, written in the same statement as the
//! value, so it cannot fall out of step with it as an index tree entry can: an expiry purge
//! looks only at rows that are due, and removes every row it looks at.
//!
//! Several nodes share the database: every read-modify-write takes the row's lock (`SELECT
//! ... FOR UPDATE`) for its transaction, and the first write of a service's storage inserts
//! with `ON CONFLICT DO NOTHING`, so that of two nodes making it at once the second runs its
//! change again over what the first made instead of failing or overwriting it. A change of
//! the storage of a service purged meanwhile stores nothing and answers as the sled engine
//! does (see `change_service_storage`).

use std::cell::Cell;

use super::super::{PgStore, Sql, Tx};
use super::{column, millis};
use crate::domain::storage::StorageArea;
use crate::domain::subscription::Subscription;
use crate::domain::time::Timestamp;
use crate::store::storage::Expiring;
use crate::store::{Pending, Refusal, StorageApi, StoreError, UpdateError};

/// A value kept in a table with an expiry column: the sled engine's [`Expiring`] values (their
/// id, expiry and stored format), and the table each one is kept in.
trait ExpiringRow: Expiring {
    /// The table.
    const TABLE: &'static str;
}

impl ExpiringRow for StorageArea {
    const TABLE: &'static str = "storage_areas";
}

impl ExpiringRow for Subscription {
    const TABLE: &'static str = "subscriptions";
}

/// The value of `id` as errors name it.
fn name<T: ExpiringRow>(id: &str) -> String {
    format!("{} {id}", T::WHAT)
}

/// The storage of service `id` as errors name it (the sled engine names it as an area).
fn service_area_name(id: &str) -> String {
    name::<StorageArea>(id)
}

/// The row `statement` returns for `id`, its first column decoded as a value of `what`.
fn decoded<T: ExpiringRow, C: tokio_postgres::GenericClient + Sync>(
    sql: &Sql<'_, C>,
    statement: &str,
    id: &str,
    what: &str,
) -> Result<Option<T>, StoreError> {
    sql.query_opt(statement, &[&id])?
        .map(|row| T::decode(column(&row, 0, what)?, what))
        .transpose()
}

impl PgStore {
    /// Writes `value`, replacing the one with its id.
    fn put_expiring<T: ExpiringRow>(&self, value: &T) -> Result<Pending<()>, StoreError> {
        let bytes = value.encode()?;
        let statement = format!(
            "INSERT INTO {} (id, expire_at_ms, value) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE
             SET expire_at_ms = EXCLUDED.expire_at_ms, value = EXCLUDED.value",
            T::TABLE
        );
        let expire_at = millis(value.expire_at());
        self.write(|tx| {
            tx.execute(&statement, &[&value.id(), &expire_at, &bytes])?;
            Ok(())
        })
    }

    /// The value `id`, expired or not.
    fn get_expiring<T: ExpiringRow>(&self, id: &str) -> Result<Option<T>, StoreError> {
        let statement = format!("SELECT value FROM {} WHERE id = $1", T::TABLE);
        self.read(|sql| decoded(sql, &statement, id, &name::<T>(id)))
    }

    /// Removes the value `id`; false if there was none.
    fn delete_expiring<T: ExpiringRow>(&self, id: &str) -> Result<Pending<bool>, StoreError> {
        let statement = format!("DELETE FROM {} WHERE id = $1", T::TABLE);
        self.write(|tx| Ok(tx.execute(&statement, &[&id])? > 0))
    }

    /// Removes up to `limit` values due at `now`, earliest first; returns (rows looked at,
    /// ids removed, in expiry order). Rows another transaction holds locked (another node's
    /// purge, an update under way) are skipped rather than waited for: the next run takes
    /// those still due.
    fn purge_expiring<T: ExpiringRow>(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Pending<(usize, Vec<String>)>, StoreError> {
        let statement = format!(
            "DELETE FROM {table} WHERE id IN (
                 SELECT id FROM {table} WHERE expire_at_ms <= $1
                 ORDER BY expire_at_ms, id LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING expire_at_ms, id",
            table = T::TABLE
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(|tx| {
            let rows = tx.query(&statement, &[&millis(now), &limit])?;
            let mut removed = rows
                .iter()
                .map(|row| {
                    let expire_at: i64 = column(row, 0, T::TABLE)?;
                    let id: String = column(row, 1, T::TABLE)?;
                    Ok((expire_at, id))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            // RETURNING follows no order; the sled engine removes in (expiry, id) order.
            removed.sort();
            Ok((
                removed.len(),
                removed.into_iter().map(|(_, id)| id).collect(),
            ))
        })
    }

    /// Reads the area `id` (column `key`) of `table` under its row lock, changes it and
    /// writes it back, with its expiry when the table `has_expiry`, in one transaction.
    fn update_locked(
        &self,
        table: &str,
        key: &str,
        has_expiry: bool,
        id: &str,
        change: &dyn Fn(&mut StorageArea),
    ) -> Result<Pending<Option<StorageArea>>, StoreError> {
        let select = format!("SELECT value FROM {table} WHERE {key} = $1 FOR UPDATE");
        self.write(|tx| {
            let Some(mut area) =
                decoded::<StorageArea, _>(tx, &select, id, &name::<StorageArea>(id))?
            else {
                return Ok(None);
            };
            change(&mut area);
            let bytes = area.encode()?;
            if has_expiry {
                // The contract keeps the expiry; should a change move it anyway, the column
                // follows the value, so the area is still purged at its own time.
                let statement =
                    format!("UPDATE {table} SET value = $2, expire_at_ms = $3 WHERE {key} = $1");
                tx.execute(&statement, &[&id, &bytes, &millis(area.expire_at)])?;
            } else {
                let statement = format!("UPDATE {table} SET value = $2 WHERE {key} = $1");
                tx.execute(&statement, &[&id, &bytes])?;
            }
            Ok(Some(area))
        })
    }

    /// Runs `work` in one transaction that commits when it returns `Ok(Ok(_))`; its
    /// `Ok(Err(refusal))` rolls back (nothing written) and is returned as
    /// [`UpdateError::Rejected`].
    fn refusable<T>(
        &self,
        mut work: impl FnMut(&Tx<'_, '_>) -> Result<Result<T, Refusal>, StoreError>,
    ) -> Result<Pending<T>, UpdateError<Refusal>> {
        let refused = Cell::new(None);
        let done = self.write(|tx| {
            // Only the attempt that commits or refuses counts (an attempt may run again).
            refused.set(None);
            match work(tx)? {
                Ok(value) => Ok(value),
                Err(refusal) => {
                    refused.set(Some(refusal));
                    // Any error rolls the transaction back; this one is replaced below.
                    Err(StoreError::Engine("the change was refused".into()))
                }
            }
        });
        match (done, refused.into_inner()) {
            (_, Some(refusal)) => Err(UpdateError::Rejected(refusal)),
            (Ok(pending), None) => Ok(pending),
            (Err(err), None) => Err(UpdateError::Store(err)),
        }
    }
}

impl StorageApi for PgStore {
    fn put_storage(&self, area: &StorageArea) -> Result<Pending<()>, StoreError> {
        self.put_expiring(area)
    }

    fn storage(&self, id: &str) -> Result<Option<StorageArea>, StoreError> {
        self.get_expiring(id)
    }

    fn delete_storage(&self, id: &str) -> Result<Pending<bool>, StoreError> {
        self.delete_expiring::<StorageArea>(id)
    }

    fn update_storage(
        &self,
        id: &str,
        change: &dyn Fn(&mut StorageArea),
    ) -> Result<Pending<Option<StorageArea>>, StoreError> {
        self.update_locked("storage_areas", "id", true, id, change)
    }

    fn change_service_storage(
        &self,
        service_id: &str,
        change: &dyn Fn(Option<StorageArea>) -> Result<StorageArea, Refusal>,
    ) -> Result<Pending<StorageArea>, UpdateError<Refusal>> {
        let what = service_area_name(service_id);
        self.refusable(|tx| {
            // The service's row, key-share locked so that no purge removes it before this
            // commits. None: the service was purged after the caller looked it up, and the
            // foreign key would turn the insert into an engine error (a 500). The sled
            // engine, whose storage keeps no link to its service, runs the change on no
            // storage (the purge removed it) and answers with what the change made or its
            // refusal: so does this, storing nothing. The caller cannot tell it from a
            // change committed just before the purge, which removes it with the service.
            let service = tx.query_opt(
                "SELECT 1 FROM services WHERE id = $1 FOR KEY SHARE",
                &[&service_id],
            )?;
            if service.is_none() {
                return Ok(change(None));
            }
            loop {
                let current: Option<StorageArea> = decoded(
                    tx,
                    "SELECT value FROM service_storage WHERE service_id = $1 FOR UPDATE",
                    service_id,
                    &what,
                )?;
                let existed = current.is_some();
                let changed = match change(current) {
                    Ok(changed) => changed,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let bytes = changed.encode()?;
                if existed {
                    // Locked above: the row is still there.
                    tx.execute(
                        "UPDATE service_storage SET value = $2 WHERE service_id = $1",
                        &[&service_id, &bytes],
                    )?;
                    return Ok(Ok(changed));
                }
                // The insert waits for another transaction inserting the same row; when that
                // one commits, nothing is inserted here, and the next turn reads (and locks)
                // its row, which this statement-level snapshot (read committed) now sees.
                let inserted = tx.execute(
                    "INSERT INTO service_storage (service_id, value) VALUES ($1, $2)
                     ON CONFLICT (service_id) DO NOTHING",
                    &[&service_id, &bytes],
                )?;
                if inserted == 1 {
                    return Ok(Ok(changed));
                }
            }
        })
    }

    fn update_service_storage(
        &self,
        service_id: &str,
        change: &dyn Fn(&mut StorageArea),
    ) -> Result<Pending<Option<StorageArea>>, StoreError> {
        self.update_locked("service_storage", "service_id", false, service_id, change)
    }

    fn purge_expired_storage(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Pending<(usize, Vec<String>)>, StoreError> {
        self.purge_expiring::<StorageArea>(now, limit)
    }

    fn service_storage(&self, service_id: &str) -> Result<Option<StorageArea>, StoreError> {
        self.read(|sql| {
            decoded(
                sql,
                "SELECT value FROM service_storage WHERE service_id = $1",
                service_id,
                &service_area_name(service_id),
            )
        })
    }

    fn put_service_storage(&self, area: &StorageArea) -> Result<Pending<()>, StoreError> {
        let bytes = area.encode()?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO service_storage (service_id, value) VALUES ($1, $2)
                 ON CONFLICT (service_id) DO UPDATE SET value = EXCLUDED.value",
                &[&area.id, &bytes],
            )?;
            Ok(())
        })
    }

    fn delete_service_storage(&self, service_id: &str) -> Result<Pending<bool>, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM service_storage WHERE service_id = $1",
                &[&service_id],
            )? > 0)
        })
    }

    fn put_subscription(&self, subscription: &Subscription) -> Result<Pending<()>, StoreError> {
        self.put_expiring(subscription)
    }

    fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        self.get_expiring(id)
    }

    fn delete_subscription(&self, id: &str) -> Result<Pending<bool>, StoreError> {
        self.delete_expiring::<Subscription>(id)
    }

    fn subscription_count(&self) -> usize {
        let counted = self.read(|sql| {
            let row = sql.query_one("SELECT count(*) FROM subscriptions", &[])?;
            let count: i64 = column(&row, 0, "the subscription count")?;
            Ok(usize::try_from(count).unwrap_or(0))
        });
        counted.unwrap_or_else(|err| {
            // The trait gives no way to fail here; its caller (the subscription limit) then
            // sees no subscriptions, as a database that cannot answer stores none.
            tracing::warn!(error = %err, "counting the subscriptions failed");
            0
        })
    }

    fn subscriptions_matching(
        &self,
        tag: &str,
        now: Timestamp,
    ) -> Result<Vec<Subscription>, StoreError> {
        // Expired as `Subscription::expired` says: at or past `expire_at`.
        let rows = self.read(|sql| {
            sql.query(
                "SELECT id, value FROM subscriptions WHERE expire_at_ms > $1 ORDER BY id",
                &[&millis(now)],
            )
        })?;
        let mut matching = Vec::new();
        for row in &rows {
            let id: &str = column(row, 0, Subscription::WHAT)?;
            let what = name::<Subscription>(id);
            let subscription = Subscription::decode(column(row, 1, &what)?, &what)?;
            if subscription.matches(tag) {
                matching.push(subscription);
            }
        }
        Ok(matching)
    }

    fn purge_expired_subscriptions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Pending<(usize, Vec<String>)>, StoreError> {
        self.purge_expiring::<Subscription>(now, limit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::super::super::throwaway;
    use super::*;
    use crate::domain::storage::{new_area, StorageEntry};
    use crate::domain::subscription::Channel;

    fn store() -> PgStore {
        PgStore::open(&throwaway::shared().fresh_database(), 4).unwrap()
    }

    fn area(id: &str, created: u64, ttl: u64) -> StorageArea {
        new_area(
            id.into(),
            Some("alice".into()),
            Timestamp::from_millis(created),
            ttl,
            vec![
                StorageEntry::text("k", "v"),
                StorageEntry::from_part(
                    "bin",
                    vec![0, 159, 146, 150],
                    Some("image/png".into()),
                    true,
                ),
            ],
        )
        .unwrap()
    }

    fn subscription(id: &str, filter: &str, expire_at: u64) -> Subscription {
        Subscription {
            id: id.into(),
            owner: None,
            subscriber_id: "sub".into(),
            provider_name: None,
            filter: filter.into(),
            channel: Channel::HttpCallback {
                url: "http://example.com/".into(),
            },
            properties: Default::default(),
            created_at: Timestamp::from_millis(0),
            expire_at: Timestamp::from_millis(expire_at),
        }
    }

    /// A row of `services` for the storage of `id` to belong to.
    fn insert_service(store: &PgStore, id: &str) {
        crate::store::postgres::test_rows::bare_services(store, &[id]);
    }

    fn keys(area: &StorageArea) -> Vec<&str> {
        area.entries.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn areas_round_trip_and_expire_by_their_time() {
        let store = store();
        store
            .put_storage(&area("a", 0, 10))
            .unwrap()
            .without_waiting();
        store
            .put_storage(&area("b", 0, 20))
            .unwrap()
            .without_waiting();
        // Replaced with a later expiry: its first expiry must not remove it.
        store
            .put_storage(&area("c", 0, 5))
            .unwrap()
            .without_waiting();
        store
            .put_storage(&area("c", 0, 100))
            .unwrap()
            .without_waiting();

        assert_eq!(store.storage("a").unwrap().unwrap(), area("a", 0, 10));
        let (scanned, removed) = store
            .purge_expired_storage(Timestamp::from_millis(10_000), 100)
            .unwrap()
            .without_waiting();

        assert_eq!(removed, ["a"]);
        assert_eq!(scanned, 1, "the replaced area is not looked at");
        assert!(store.storage("a").unwrap().is_none());
        assert!(store.storage("b").unwrap().is_some());
        assert!(
            store.storage("c").unwrap().is_some(),
            "replaced: expires later"
        );
        let (_, later) = store
            .purge_expired_storage(Timestamp::from_millis(100_000), 100)
            .unwrap()
            .without_waiting();
        assert_eq!(later, ["b", "c"]);
        assert!(
            !store.delete_storage("b").unwrap().without_waiting(),
            "already gone"
        );
    }

    #[test]
    fn deleting_an_area_leaves_nothing_to_purge() {
        let store = store();
        store
            .put_storage(&area("a", 0, 10))
            .unwrap()
            .without_waiting();
        assert!(store.delete_storage("a").unwrap().without_waiting());
        let (scanned, removed) = store
            .purge_expired_storage(Timestamp::from_millis(10_000), 100)
            .unwrap()
            .without_waiting();
        assert_eq!((scanned, removed.len()), (0, 0));
    }

    #[test]
    fn a_purge_takes_at_most_limit_earliest_first_and_says_when_more_is_due() {
        let store = store();
        for (id, ttl) in [("late", 3), ("early", 1), ("middle", 2), ("tie", 2)] {
            store
                .put_storage(&area(id, 0, ttl))
                .unwrap()
                .without_waiting();
        }
        store
            .put_storage(&area("not-due", 0, 60))
            .unwrap()
            .without_waiting();
        let now = Timestamp::from_millis(3_000);

        let first = store
            .purge_expired_storage(now, 3)
            .unwrap()
            .without_waiting();
        assert_eq!(
            first,
            (3, vec!["early".into(), "middle".into(), "tie".into()])
        );
        let second = store
            .purge_expired_storage(now, 3)
            .unwrap()
            .without_waiting();
        assert_eq!(
            second,
            (1, vec!["late".into()]),
            "below limit: nothing due is left"
        );
        let third = store
            .purge_expired_storage(now, 3)
            .unwrap()
            .without_waiting();
        assert_eq!(third, (0, vec![]));
        assert!(store.storage("not-due").unwrap().is_some());
    }

    #[test]
    fn an_area_is_due_at_its_expiry_not_before() {
        let store = store();
        store
            .put_storage(&area("a", 0, 10))
            .unwrap()
            .without_waiting();
        let before = store
            .purge_expired_storage(Timestamp::from_millis(9_999), 10)
            .unwrap()
            .without_waiting();
        assert_eq!(before, (0, vec![]));
        let at = store
            .purge_expired_storage(Timestamp::from_millis(10_000), 10)
            .unwrap()
            .without_waiting();
        assert_eq!(at, (1, vec!["a".into()]));
    }

    #[test]
    fn updating_an_area_changes_it_in_place_and_a_missing_one_is_none() {
        let store = store();
        store
            .put_storage(&area("a", 0, 10))
            .unwrap()
            .without_waiting();
        let updated = store
            .update_storage("a", &|area| {
                area.remove("k");
            })
            .unwrap()
            .without_waiting()
            .unwrap();
        assert_eq!(keys(&updated), ["bin"]);
        assert_eq!(store.storage("a").unwrap(), Some(updated));
        let missing = store
            .update_storage("nobody", &|_| panic!("no area to change"))
            .unwrap()
            .without_waiting();
        assert_eq!(missing, None);
        assert!(store.storage("nobody").unwrap().is_none());
    }

    #[test]
    fn concurrent_updates_of_one_area_lose_nothing() {
        let store = store();
        store
            .put_storage(&area("a", 0, 10))
            .unwrap()
            .without_waiting();
        let writers = 8;
        let start = Arc::new(Barrier::new(writers));
        let threads: Vec<_> = (0..writers)
            .map(|n| {
                let (store, start) = (store.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let key = format!("writer{n}");
                    store
                        .update_storage("a", &|area| {
                            area.merge(vec![StorageEntry::text(&key, "x")]).unwrap();
                        })
                        .unwrap()
                        .without_waiting();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let stored = store.storage("a").unwrap().unwrap();
        assert_eq!(stored.entries.len(), 2 + writers, "{:?}", keys(&stored));
    }

    #[test]
    fn a_services_storage_is_made_changed_refused_and_removed_with_its_service() {
        let store = store();
        insert_service(&store, "svc");
        let add = |key: &'static str| {
            move |current: Option<StorageArea>| {
                let mut area = current.unwrap_or_else(|| area("svc", 0, 60));
                area.merge(vec![StorageEntry::text(key, "v")]).unwrap();
                Ok(area)
            }
        };

        let made = store
            .change_service_storage("svc", &add("first"))
            .unwrap()
            .without_waiting();
        assert_eq!(keys(&made), ["k", "bin", "first"]);
        store
            .change_service_storage("svc", &add("second"))
            .unwrap()
            .without_waiting();
        let refused = store.change_service_storage("svc", &|current| {
            assert!(current.is_some(), "the refusal sees the stored area");
            Err(Refusal::of("too large"))
        });
        match refused {
            Err(UpdateError::Rejected(refusal)) => {
                assert_eq!(refusal.into_inner::<&str>(), "too large")
            }
            other => panic!("expected the refusal, got {other:?}"),
        }
        let stored = store.service_storage("svc").unwrap().unwrap();
        assert_eq!(
            keys(&stored),
            ["k", "bin", "first", "second"],
            "refusal wrote nothing"
        );

        let updated = store
            .update_service_storage("svc", &|area| {
                area.remove("first");
            })
            .unwrap()
            .without_waiting();
        assert_eq!(updated.as_ref().map(keys), Some(vec!["k", "bin", "second"]));
        assert_eq!(store.service_storage("svc").unwrap(), updated);

        store
            .transaction(|tx| tx.execute("DELETE FROM services WHERE id = 'svc'", &[]))
            .unwrap();
        assert!(
            store.service_storage("svc").unwrap().is_none(),
            "gone with its service"
        );
    }

    #[test]
    fn changing_the_storage_of_a_purged_service_answers_as_sled_and_stores_nothing() {
        let store = store();
        insert_service(&store, "svc");
        store
            .transaction(|tx| tx.execute("DELETE FROM services WHERE id = 'svc'", &[]))
            .unwrap();

        // The sled engine keeps no link from the storage to its service: it runs the change
        // on no storage (the purge removed it) and answers with what the change made.
        let changed = store
            .change_service_storage("svc", &|current| {
                assert!(current.is_none(), "the purge left no storage");
                Ok(area("svc", 0, 60))
            })
            .unwrap()
            .without_waiting();
        let refused = store.change_service_storage("svc", &|_| Err(Refusal::of("too large")));

        assert_eq!(keys(&changed), ["k", "bin"]);
        assert!(
            matches!(refused, Err(UpdateError::Rejected(_))),
            "a refusal is still the caller's: {refused:?}"
        );
        assert!(
            store.service_storage("svc").unwrap().is_none(),
            "nothing is kept for a service that is gone"
        );
    }

    #[test]
    fn a_refused_first_write_makes_no_storage() {
        let store = store();
        insert_service(&store, "svc");
        let refused = store.change_service_storage("svc", &|_| Err(Refusal::of("no")));
        assert!(matches!(refused, Err(UpdateError::Rejected(_))));
        assert!(store.service_storage("svc").unwrap().is_none());
        let none = store
            .update_service_storage("svc", &|_| panic!("no storage to change"))
            .unwrap()
            .without_waiting();
        assert_eq!(none, None);
    }

    #[test]
    fn concurrent_first_writes_of_a_services_storage_all_land() {
        let store = store();
        insert_service(&store, "svc");
        // One writer per connection of the pool: each holds its own while it waits below.
        let writers = 4;
        // Every writer finds no storage before any of them makes it: all race to insert.
        let all_found_none = Arc::new(Barrier::new(writers));
        let threads: Vec<_> = (0..writers)
            .map(|n| {
                let (store, all_found_none) = (store.clone(), all_found_none.clone());
                std::thread::spawn(move || {
                    let key = format!("writer{n}");
                    let first_turn = Cell::new(true);
                    store
                        .change_service_storage("svc", &|current| {
                            if first_turn.replace(false) {
                                assert!(current.is_none(), "nobody wrote before the barrier");
                                all_found_none.wait();
                            }
                            let mut area = current.unwrap_or_else(|| StorageArea {
                                entries: Vec::new(),
                                ..area("svc", 0, 60)
                            });
                            area.merge(vec![StorageEntry::text(&key, "x")]).unwrap();
                            Ok(area)
                        })
                        .unwrap()
                        .without_waiting();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let stored = store.service_storage("svc").unwrap().unwrap();
        assert_eq!(stored.entries.len(), writers, "{:?}", keys(&stored));
    }

    #[test]
    fn put_and_delete_of_a_services_storage() {
        let store = store();
        insert_service(&store, "svc");
        store
            .put_service_storage(&area("svc", 0, 60))
            .unwrap()
            .without_waiting();
        store
            .put_service_storage(&area("svc", 5, 60))
            .unwrap()
            .without_waiting();
        assert_eq!(
            store.service_storage("svc").unwrap(),
            Some(area("svc", 5, 60))
        );
        assert!(store
            .delete_service_storage("svc")
            .unwrap()
            .without_waiting());
        assert!(!store
            .delete_service_storage("svc")
            .unwrap()
            .without_waiting());
        assert!(store.service_storage("svc").unwrap().is_none());
    }

    #[test]
    fn subscriptions_match_tags_until_they_expire() {
        let store = store();
        store
            .put_subscription(&subscription("x", "ors.*", 1000))
            .unwrap()
            .without_waiting();
        store
            .put_subscription(&subscription("y", "ors.one", 2000))
            .unwrap()
            .without_waiting();
        store
            .put_subscription(&subscription("z", "other", 2000))
            .unwrap()
            .without_waiting();

        let ids = |tag: &str, now: u64| -> Vec<String> {
            store
                .subscriptions_matching(tag, Timestamp::from_millis(now))
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(ids("ors.one", 10), ["x", "y"]);
        assert_eq!(ids("ors.one", 1000), ["y"], "x expired");
        assert_eq!(ids("ors.two", 10), ["x"], "a prefix filter");
        let (scanned, removed) = store
            .purge_expired_subscriptions(Timestamp::from_millis(1000), 10)
            .unwrap()
            .without_waiting();
        assert_eq!((scanned, removed), (1, vec!["x".to_string()]));
        assert_eq!(store.subscription_count(), 2);
        assert_eq!(
            store.subscription("z").unwrap(),
            Some(subscription("z", "other", 2000))
        );
        assert!(store.delete_subscription("y").unwrap().without_waiting());
        assert!(!store.delete_subscription("y").unwrap().without_waiting());
        assert!(store.subscription("y").unwrap().is_none());
        assert_eq!(store.subscription_count(), 1);
    }

    #[test]
    fn a_replaced_subscription_expires_at_its_new_time() {
        let store = store();
        store
            .put_subscription(&subscription("x", "t", 1000))
            .unwrap()
            .without_waiting();
        store
            .put_subscription(&subscription("x", "t", 5000))
            .unwrap()
            .without_waiting();
        let early = store
            .purge_expired_subscriptions(Timestamp::from_millis(1000), 10)
            .unwrap()
            .without_waiting();
        assert_eq!(early, (0, vec![]));
        assert_eq!(store.subscription_count(), 1);
    }

    #[test]
    fn counting_subscriptions_on_a_failing_database_is_zero() {
        let store = store();
        store
            .put_subscription(&subscription("x", "t", 1000))
            .unwrap()
            .without_waiting();
        assert_eq!(store.subscription_count(), 1);
        store
            .transaction(|tx| tx.execute("DROP TABLE subscriptions", &[]))
            .unwrap();
        assert_eq!(store.subscription_count(), 0);
    }

    #[test]
    fn an_unreadable_area_is_corrupt_and_named_by_its_id() {
        let store = store();
        store
            .transaction(|tx| {
                tx.execute(
                    "INSERT INTO storage_areas (id, expire_at_ms, value) VALUES ('bad', 0, '\\x07')",
                    &[],
                )
            })
            .unwrap();
        match store.storage("bad") {
            Err(StoreError::Corrupt { what, .. }) => assert_eq!(what, "storage area bad"),
            other => panic!("expected a corrupt area, got {other:?}"),
        }
        let unchanged = store.update_storage("bad", &|_| panic!("not decoded"));
        assert!(matches!(unchanged, Err(StoreError::Corrupt { .. })));
    }
}
