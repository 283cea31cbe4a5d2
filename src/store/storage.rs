//! The Storage API's areas and the Notification API's subscriptions.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `storage` | area id | [`StorageArea`] |
//! | `storage_by_expiry` | expire_at ++ area id | () |
//! | `service_storage` | service id | [`StorageArea`] (removed with its service) |
//! | `subscriptions` | subscription id | [`Subscription`] |
//! | `subscriptions_by_expiry` | expire_at ++ subscription id | () |
//!
//! An area or a subscription is written with its expiry-index entry in one transaction, and
//! removed by the same kind of index range scan as services ([`Store::purge_expired`]): the
//! expiry job's work is proportional to what is due.

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::stored::storage::{StorageAreaV1, SubscriptionV1};
use super::{
    codec, keys, tx_error, Pending, Refusal, SledStore, StorageApi, StoreError, UpdateError,
};
use crate::domain::storage::StorageArea;
use crate::domain::subscription::Subscription;
use crate::domain::time::Timestamp;

/// Something with an id and an expiry time, kept in a record tree and a time index (and, by
/// the PostgreSQL engine, in a table with an expiry column).
pub(super) trait Expiring: Sized {
    const WHAT: &'static str;
    fn id(&self) -> &str;
    fn expire_at(&self) -> Timestamp;
    /// The value as stored.
    fn encode(&self) -> Result<Vec<u8>, StoreError>;
    /// A value read back; `what` names it in errors.
    fn decode(bytes: &[u8], what: &str) -> Result<Self, StoreError>;
}

impl Expiring for StorageArea {
    const WHAT: &'static str = "storage area";
    fn id(&self) -> &str {
        &self.id
    }
    fn expire_at(&self) -> Timestamp {
        self.expire_at
    }
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        codec::write(&StorageAreaV1::from(self))
    }
    fn decode(bytes: &[u8], what: &str) -> Result<Self, StoreError> {
        codec::read::<StorageAreaV1>(bytes, what).map(Into::into)
    }
}

impl Expiring for Subscription {
    const WHAT: &'static str = "subscription";
    fn id(&self) -> &str {
        &self.id
    }
    fn expire_at(&self) -> Timestamp {
        self.expire_at
    }
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        codec::write(&SubscriptionV1::from(self))
    }
    fn decode(bytes: &[u8], what: &str) -> Result<Self, StoreError> {
        codec::read::<SubscriptionV1>(bytes, what).map(Into::into)
    }
}

fn decode<T: Expiring>(id: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    T::decode(
        bytes,
        &format!("{} {}", T::WHAT, String::from_utf8_lossy(id)),
    )
}

/// Writes `value` (replacing the one with its id, and its old index entry) in one transaction.
fn put<T: Expiring>(records: &Tree, index: &Tree, value: &T) -> Result<(), StoreError> {
    let bytes = value.encode()?;
    let id = value.id().as_bytes();
    let new_key = keys::time_key(value.expire_at(), value.id());
    (records, index)
        .transaction(|(records, index)| {
            if let Some(old) = records.insert(id, bytes.as_slice())? {
                let old: T =
                    decode(id, &old).map_err(|_| ConflictableTransactionError::Abort(()))?;
                index.remove(keys::time_key(old.expire_at(), old.id()))?;
            }
            index.insert(new_key.as_slice(), &[])?;
            Ok(())
        })
        .map_err(tx_error)
}

fn get<T: Expiring>(records: &Tree, id: &str) -> Result<Option<T>, StoreError> {
    records
        .get(id.as_bytes())?
        .map(|bytes| decode(id.as_bytes(), &bytes))
        .transpose()
}

/// Reads, changes and writes back the value `id` (whose expiry `change` keeps) atomically.
fn update<T: Expiring>(
    records: &Tree,
    id: &str,
    change: impl Fn(&mut T),
) -> Result<Option<T>, StoreError> {
    records
        .transaction(|tx| {
            let Some(bytes) = tx.get(id.as_bytes())? else {
                return Ok(None);
            };
            let mut value: T = decode(id.as_bytes(), &bytes)
                .map_err(|_| ConflictableTransactionError::Abort(()))?;
            change(&mut value);
            let bytes = value
                .encode()
                .map_err(|_| ConflictableTransactionError::Abort(()))?;
            tx.insert(id.as_bytes(), bytes)?;
            Ok(Some(value))
        })
        .map_err(tx_error)
}

/// Removes the value `id` and its index entry; false if there was none.
fn remove<T: Expiring>(records: &Tree, index: &Tree, id: &str) -> Result<bool, StoreError> {
    (records, index)
        .transaction(|(records, index)| remove_in::<T>(records, index, id))
        .map_err(tx_error)
}

fn remove_in<T: Expiring>(
    records: &TransactionalTree,
    index: &TransactionalTree,
    id: &str,
) -> Result<bool, ConflictableTransactionError<()>> {
    let Some(old) = records.remove(id.as_bytes())? else {
        return Ok(false);
    };
    let old: T =
        decode(id.as_bytes(), &old).map_err(|_| ConflictableTransactionError::Abort(()))?;
    index.remove(keys::time_key(old.expire_at(), old.id()))?;
    Ok(true)
}

/// Removes up to `limit` values due at `now` by a range scan of `index`; returns (entries
/// looked at, ids removed).
fn purge<T: Expiring>(
    records: &Tree,
    index: &Tree,
    now: Timestamp,
    limit: usize,
) -> Result<(usize, Vec<String>), StoreError> {
    let due = super::due_entries(index, now, limit)?;
    let removed = (records, index)
        .transaction(|(records, index)| {
            let mut removed = Vec::new();
            for (key, id) in &due {
                index.remove(key.as_slice())?;
                // Re-check: a replaced value has a later expiry (and its own index entry).
                let Some(bytes) = records.get(id.as_bytes())? else {
                    continue;
                };
                let value: T = decode(id.as_bytes(), &bytes)
                    .map_err(|_| ConflictableTransactionError::Abort(()))?;
                if value.expire_at() <= now {
                    records.remove(id.as_bytes())?;
                    removed.push(id.clone());
                }
            }
            Ok(removed)
        })
        .map_err(tx_error)?;
    Ok((due.len(), removed))
}

impl StorageApi for SledStore {
    fn put_storage(&self, area: &StorageArea) -> Result<Pending<()>, StoreError> {
        self.check_space()?;
        let t = &self.inner.trees;
        Ok(self.pending(put(&t.storage, &t.storage_by_expiry, area)?))
    }

    fn storage(&self, id: &str) -> Result<Option<StorageArea>, StoreError> {
        get(&self.inner.trees.storage, id)
    }

    fn delete_storage(&self, id: &str) -> Result<Pending<bool>, StoreError> {
        let t = &self.inner.trees;
        Ok(self.pending(remove::<StorageArea>(&t.storage, &t.storage_by_expiry, id)?))
    }

    fn update_storage(
        &self,
        id: &str,
        change: &dyn Fn(&mut StorageArea),
    ) -> Result<Pending<Option<StorageArea>>, StoreError> {
        Ok(self.pending(update(&self.inner.trees.storage, id, change)?))
    }

    fn change_service_storage(
        &self,
        service_id: &str,
        change: &dyn Fn(Option<StorageArea>) -> Result<StorageArea, Refusal>,
    ) -> Result<Pending<StorageArea>, UpdateError<Refusal>> {
        self.check_space()?;
        let tree = &self.inner.trees.service_storage;
        let changed = tree
            .transaction(|tx| {
                let current: Option<StorageArea> = tx
                    .get(service_id.as_bytes())?
                    .map(|bytes| decode(service_id.as_bytes(), &bytes))
                    .transpose()
                    .map_err(|err| ConflictableTransactionError::Abort(UpdateError::Store(err)))?;
                let changed = change(current).map_err(|err| {
                    ConflictableTransactionError::Abort(UpdateError::Rejected(err))
                })?;
                let bytes = changed
                    .encode()
                    .map_err(|err| ConflictableTransactionError::Abort(UpdateError::Store(err)))?;
                tx.insert(service_id.as_bytes(), bytes)?;
                Ok(changed)
            })
            .map_err(|err| match err {
                TransactionError::Abort(err) => err,
                TransactionError::Storage(err) => UpdateError::Store(err.into()),
            })?;
        Ok(self.pending(changed))
    }

    fn update_service_storage(
        &self,
        service_id: &str,
        change: &dyn Fn(&mut StorageArea),
    ) -> Result<Pending<Option<StorageArea>>, StoreError> {
        Ok(self.pending(update(
            &self.inner.trees.service_storage,
            service_id,
            change,
        )?))
    }

    fn purge_expired_storage(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Pending<(usize, Vec<String>)>, StoreError> {
        let t = &self.inner.trees;
        Ok(self.pending(purge::<StorageArea>(
            &t.storage,
            &t.storage_by_expiry,
            now,
            limit,
        )?))
    }

    fn service_storage(&self, service_id: &str) -> Result<Option<StorageArea>, StoreError> {
        get(&self.inner.trees.service_storage, service_id)
    }

    fn put_service_storage(&self, area: &StorageArea) -> Result<Pending<()>, StoreError> {
        self.check_space()?;
        let bytes = area.encode()?;
        self.inner
            .trees
            .service_storage
            .insert(area.id.as_bytes(), bytes)?;
        Ok(self.pending(()))
    }

    fn delete_service_storage(&self, service_id: &str) -> Result<Pending<bool>, StoreError> {
        let removed = self
            .inner
            .trees
            .service_storage
            .remove(service_id.as_bytes())?
            .is_some();
        Ok(self.pending(removed))
    }

    fn put_subscription(&self, subscription: &Subscription) -> Result<Pending<()>, StoreError> {
        self.check_space()?;
        let t = &self.inner.trees;
        Ok(self.pending(put(
            &t.subscriptions,
            &t.subscriptions_by_expiry,
            subscription,
        )?))
    }

    fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        get(&self.inner.trees.subscriptions, id)
    }

    fn delete_subscription(&self, id: &str) -> Result<Pending<bool>, StoreError> {
        let t = &self.inner.trees;
        Ok(self.pending(remove::<Subscription>(
            &t.subscriptions,
            &t.subscriptions_by_expiry,
            id,
        )?))
    }

    fn subscription_count(&self) -> usize {
        self.inner.trees.subscriptions.len()
    }

    fn subscriptions_matching(
        &self,
        tag: &str,
        now: Timestamp,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut matching = Vec::new();
        for item in self.inner.trees.subscriptions.iter() {
            let (id, bytes) = item?;
            let subscription: Subscription = decode(&id, &bytes)?;
            if !subscription.expired(now) && subscription.matches(tag) {
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
        let t = &self.inner.trees;
        Ok(self.pending(purge::<Subscription>(
            &t.subscriptions,
            &t.subscriptions_by_expiry,
            now,
            limit,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::storage::{new_area, StorageEntry};
    use crate::domain::subscription::Channel;
    use crate::store::Store;

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

    #[test]
    fn areas_round_trip_and_expire_by_the_index() {
        let store = Store::open_temporary().unwrap();
        store
            .put_storage(&area("a", 0, 10))
            .unwrap()
            .without_waiting();
        store
            .put_storage(&area("b", 0, 20))
            .unwrap()
            .without_waiting();
        // Replaced with a later expiry: its old index entry must not remove it.
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
        assert_eq!(
            scanned, 1,
            "the replaced area's old entry went with the replacement"
        );
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
    fn deleting_an_area_removes_its_index_entry() {
        let store = Store::open_temporary().unwrap();
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
    fn subscriptions_match_tags_until_they_expire() {
        let store = Store::open_temporary().unwrap();
        let subscription = |id: &str, filter: &str, expire_at: u64| Subscription {
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
        };
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
        let (_, removed) = store
            .purge_expired_subscriptions(Timestamp::from_millis(1000), 10)
            .unwrap()
            .without_waiting();
        assert_eq!(removed, ["x"]);
        assert_eq!(store.subscription_count(), 2);
        assert!(store.delete_subscription("y").unwrap().without_waiting());
        assert!(store.subscription("y").unwrap().is_none());
    }
}
