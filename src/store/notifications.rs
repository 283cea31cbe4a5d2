//! Notifications, both ways.
//!
//! - Customer-bound (`notifications`): what the push layer sends and `retrieve-notifications`
//!   returns. A notification of a service that pushes over CometD is also listed in the
//!   `undelivered` index under its owner's `gms_user` until it is delivered, in the same
//!   transaction as the notification itself, so a CometD client that subscribes can be sent
//!   what its user missed without scanning every notification.
//! - Agent-bound (`agent_notifications`): what the customer sends the agent desktop, returned
//!   once by `retrieve-agent-notifications`.
//!
//! Both trees are keyed `service id ++ 0 ++ seq`, with `seq` from `sled::Db::generate_id`
//! (increasing across the database, and across restarts), so one prefix scan gives a service's
//! notifications in order, and the index keys `gms_user ++ 0 ++ seq` order a user's
//! notifications across services.

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::{keys, stored, Notifications, Pending, SledStore, StoreError};
use crate::domain::notification::Notification;
use crate::domain::time::Timestamp;

/// A customer-bound notification to store ([`Notifications::add_notifications`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// The service it is about.
    pub service_id: String,
    /// The `gms_user` whose CometD clients should receive it, if any: it is then indexed as
    /// undelivered under that user.
    pub comet_user: Option<String>,
    /// Its tag, e.g. `service.internal.<id>`.
    pub tag: String,
    /// The message, as JSON text.
    pub message: String,
    /// When it was sent.
    pub created_at: Timestamp,
}

impl Notifications for SledStore {
    fn add_notification(
        &self,
        service_id: &str,
        comet_user: Option<&str>,
        tag: String,
        message: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Pending<Notification>, StoreError> {
        let one = NewNotification {
            service_id: service_id.to_string(),
            comet_user: comet_user.map(str::to_string),
            tag,
            message: message.to_string(),
            created_at: now,
        };
        let stored = self.add_notifications(vec![one])?;
        Ok(stored.map(|mut stored| stored.remove(0)))
    }

    fn add_notifications(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Pending<Vec<Notification>>, StoreError> {
        let mut rows = Vec::with_capacity(batch.len());
        let mut stored = Vec::with_capacity(batch.len());
        for new in batch {
            let seq = self.inner.db.generate_id()?;
            let notification = Notification {
                seq,
                tag: new.tag,
                message: new.message,
                created_at: new.created_at,
                delivered: false,
            };
            let key = keys::service_seq_key(&new.service_id, seq);
            let bytes = stored::notification::encode(&notification)?;
            let index = new
                .comet_user
                .as_deref()
                .map(|user| keys::undelivered_key(user, seq));
            rows.push((key, bytes, index, new.service_id));
            stored.push(notification);
        }
        let trees = &self.inner.trees;
        (&trees.notifications, &trees.undelivered)
            .transaction(|(notifications, undelivered)| {
                for (key, bytes, index, service_id) in &rows {
                    notifications.insert(key.as_slice(), bytes.as_slice())?;
                    if let Some(index) = index {
                        undelivered.insert(index.as_slice(), service_id.as_bytes())?;
                    }
                }
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.pending(stored))
    }

    fn notifications(&self, service_id: &str) -> Result<Vec<Notification>, StoreError> {
        scan(&self.inner.trees.notifications, service_id)
    }

    fn is_undelivered(&self, service_id: &str, seq: u64) -> Result<bool, StoreError> {
        match self
            .inner
            .trees
            .notifications
            .get(keys::service_seq_key(service_id, seq))?
        {
            Some(bytes) => {
                let notification: Notification =
                    stored::notification::decode(&bytes, "notification")?;
                Ok(!notification.delivered)
            }
            None => Ok(false),
        }
    }

    // No transaction: one per push would cost a log buffer and a `sync_file_range` each (see
    // `add_notifications`). The notification is marked by compare-and-swap, so of two
    // concurrent marks exactly one returns true, and the index entry is removed after; a crash
    // in between leaves an index entry for a delivered notification, which
    // `undelivered_for_user` drops when it next meets it.
    fn mark_delivered(
        &self,
        service_id: &str,
        comet_user: Option<&str>,
        seq: u64,
    ) -> Result<Pending<bool>, StoreError> {
        let key = keys::service_seq_key(service_id, seq);
        let trees = &self.inner.trees;
        let marked = loop {
            let Some(bytes) = trees.notifications.get(&key)? else {
                break false;
            };
            let mut notification: Notification =
                stored::notification::decode(&bytes, "notification")?;
            if notification.delivered {
                break false;
            }
            notification.delivered = true;
            let marked = stored::notification::encode(&notification)?;
            match trees
                .notifications
                .compare_and_swap(&key, Some(bytes), Some(marked))?
            {
                Ok(()) => break true,
                // Changed meanwhile (marked by a concurrent call, or removed): look again.
                Err(_) => continue,
            }
        };
        if let Some(user) = comet_user {
            trees.undelivered.remove(keys::undelivered_key(user, seq))?;
        }
        Ok(self.pending(marked))
    }

    fn take_undelivered(
        &self,
        service_id: &str,
        comet_user: Option<&str>,
    ) -> Result<Pending<Vec<Notification>>, StoreError> {
        let mut taken = Vec::new();
        for mut notification in self.notifications(service_id)? {
            if notification.delivered {
                continue;
            }
            if self
                .mark_delivered(service_id, comet_user, notification.seq)?
                .without_waiting()
            {
                notification.delivered = true;
                taken.push(notification);
            }
        }
        Ok(self.pending(taken))
    }

    fn undelivered_for_user(
        &self,
        gms_user: &str,
        limit: usize,
    ) -> Result<Vec<(String, Notification)>, StoreError> {
        let trees = &self.inner.trees;
        let mut found = Vec::new();
        for item in trees
            .undelivered
            .scan_prefix(keys::undelivered_prefix(gms_user))
        {
            if found.len() >= limit {
                break;
            }
            let (index_key, service_id) = item?;
            let service_id = String::from_utf8_lossy(&service_id).into_owned();
            let stored = match keys::seq_at_end(&index_key) {
                Some(seq) => trees
                    .notifications
                    .get(keys::service_seq_key(&service_id, seq))?,
                None => None,
            };
            let notification = match stored {
                Some(bytes) => Some(stored::notification::decode(
                    &bytes,
                    &format!("notification of service {service_id}"),
                )?),
                None => None,
            };
            match notification {
                Some(notification) if !notification.delivered => {
                    found.push((service_id, notification))
                }
                _ => {
                    trees.undelivered.remove(index_key)?;
                }
            }
        }
        Ok(found)
    }

    fn add_agent_notification(
        &self,
        service_id: &str,
        tag: String,
        message: String,
        now: Timestamp,
    ) -> Result<Pending<Notification>, StoreError> {
        let seq = self.inner.db.generate_id()?;
        let notification = Notification {
            seq,
            tag,
            message,
            created_at: now,
            delivered: false,
        };
        self.inner.trees.agent_notifications.insert(
            keys::service_seq_key(service_id, seq),
            stored::notification::encode(&notification)?,
        )?;
        Ok(self.pending(notification))
    }

    fn agent_notifications(&self, service_id: &str) -> Result<Vec<Notification>, StoreError> {
        scan(&self.inner.trees.agent_notifications, service_id)
    }

    fn take_agent_notifications(
        &self,
        service_id: &str,
    ) -> Result<Pending<Vec<Notification>>, StoreError> {
        let tree = &self.inner.trees.agent_notifications;
        let mut taken = Vec::new();
        for mut notification in self.agent_notifications(service_id)? {
            if notification.delivered {
                continue;
            }
            let key = keys::service_seq_key(service_id, notification.seq);
            if tree.transaction(|tx| mark_in(tx, &key)).map_err(tx_error)? {
                notification.delivered = true;
                taken.push(notification);
            }
        }
        Ok(self.pending(taken))
    }
}

impl SledStore {
    // ----- expiry -----

    /// Removes every notification of service `service_id`, both ways, and its `undelivered`
    /// index entries under `owner` (the expiry job, before it removes the record; with the
    /// record already gone the owner is unknown, and index entries left behind point at
    /// nothing and are dropped when next read).
    pub(super) fn delete_notifications_of(
        &self,
        service_id: &str,
        owner: Option<&str>,
    ) -> Result<(), StoreError> {
        let trees = &self.inner.trees;
        let prefix = keys::service_seq_prefix(service_id);
        // Index entries first: a crash part-way leaves index entries that point at nothing
        // (dropped when next read), never a notification that replay cannot find.
        let mut index = sled::Batch::default();
        let mut notifications = sled::Batch::default();
        for item in trees.notifications.scan_prefix(&prefix) {
            let (key, _) = item?;
            if let (Some(owner), Some(seq)) = (owner, keys::seq_at_end(&key)) {
                index.remove(keys::undelivered_key(owner, seq));
            }
            notifications.remove(key);
        }
        trees.undelivered.apply_batch(index)?;
        trees.notifications.apply_batch(notifications)?;
        super::remove_prefix(&trees.agent_notifications, &prefix)
    }
}

/// Every notification under `service_id` in `tree`, oldest first.
fn scan(tree: &sled::Tree, service_id: &str) -> Result<Vec<Notification>, StoreError> {
    tree.scan_prefix(keys::service_seq_prefix(service_id))
        .map(|item| {
            let (_, value) = item?;
            stored::notification::decode(&value, &format!("notification of service {service_id}"))
        })
        .collect()
}

/// Inside a transaction: marks the notification at `key` delivered; false if it already was
/// or is gone.
fn mark_in(
    tree: &TransactionalTree,
    key: &[u8],
) -> Result<bool, ConflictableTransactionError<StoreError>> {
    let Some(bytes) = tree.get(key)? else {
        return Ok(false);
    };
    let mut notification: Notification = stored::notification::decode(&bytes, "notification")
        .map_err(ConflictableTransactionError::Abort)?;
    if notification.delivered {
        return Ok(false);
    }
    notification.delivered = true;
    let bytes =
        stored::notification::encode(&notification).map_err(ConflictableTransactionError::Abort)?;
    tree.insert(key, bytes)?;
    Ok(true)
}

fn tx_error(err: TransactionError<StoreError>) -> StoreError {
    match err {
        TransactionError::Abort(err) => err,
        TransactionError::Storage(err) => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use serde_json::json;

    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::ServiceRecord;

    fn service(store: &Store, id: &str, owner: Option<&str>, expire_at: u64) {
        let mut record = ServiceRecord::new(
            id,
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(0),
        );
        record.owner = owner.map(str::to_string);
        record.expire_at = Timestamp::from_millis(expire_at);
        store.insert_service(&record).unwrap().without_waiting();
    }

    fn tags(notifications: &[Notification]) -> Vec<&str> {
        notifications.iter().map(|n| n.tag.as_str()).collect()
    }

    const NOW: Timestamp = Timestamp::from_millis(1);

    #[test]
    fn a_users_undelivered_comet_notifications_are_listed_in_order_across_services() {
        let store = Store::open_temporary().unwrap();
        service(&store, "s1", Some("alice"), 50);
        service(&store, "s2", Some("alice"), 50);
        let add = |id: &str, user: Option<&str>, tag: &str| {
            store
                .add_notification(id, user, tag.into(), &json!({}), NOW)
                .unwrap()
                .without_waiting()
        };
        let first = add("s1", Some("alice"), "a");
        add("s2", Some("alice"), "b");
        add("s1", Some("alice"), "c");
        add("s1", None, "not comet");
        add("s3", Some("bob"), "bob's");

        store
            .mark_delivered("s1", Some("alice"), first.seq)
            .unwrap()
            .without_waiting();
        let listed = store.undelivered_for_user("alice", 100).unwrap();

        let listed: Vec<(&str, &str)> = listed
            .iter()
            .map(|(id, n)| (id.as_str(), n.tag.as_str()))
            .collect();
        assert_eq!(
            listed,
            [("s2", "b"), ("s1", "c")],
            "oldest first, delivered and non-comet ones left out"
        );
        assert_eq!(store.undelivered_for_user("alice", 1).unwrap().len(), 1);
    }

    #[test]
    fn delivering_twice_counts_once_and_a_poll_empties_the_index() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        let n = store
            .add_notification("s1", Some("alice"), "t".into(), &json!({"x": 1}), NOW)
            .unwrap()
            .without_waiting();
        store
            .add_notification("s1", Some("alice"), "u".into(), &json!({}), NOW)
            .unwrap()
            .without_waiting();

        assert!(store
            .mark_delivered("s1", Some("alice"), n.seq)
            .unwrap()
            .without_waiting());
        assert!(!store
            .mark_delivered("s1", Some("alice"), n.seq)
            .unwrap()
            .without_waiting());
        let polled = store
            .take_undelivered("s1", Some("alice"))
            .unwrap()
            .without_waiting();

        assert_eq!(tags(&polled), ["u"], "the pushed one is not polled again");
        assert!(store
            .take_undelivered("s1", Some("alice"))
            .unwrap()
            .without_waiting()
            .is_empty());
        assert!(engine.inner.trees.undelivered.is_empty(), "index emptied");
    }

    #[test]
    fn a_batch_is_stored_in_order_and_indexed_like_single_notifications() {
        let store = Store::open_temporary().unwrap();
        let new = |service: &str, user: Option<&str>, tag: &str| NewNotification {
            service_id: service.into(),
            comet_user: user.map(str::to_string),
            tag: tag.into(),
            message: "{}".into(),
            created_at: NOW,
        };
        let stored = store
            .add_notifications(vec![
                new("s1", Some("alice"), "a"),
                new("s2", None, "b"),
                new("s1", Some("alice"), "c"),
            ])
            .unwrap()
            .without_waiting();

        assert_eq!(tags(&stored), ["a", "b", "c"]);
        assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(tags(&store.notifications("s1").unwrap()), ["a", "c"]);
        assert_eq!(tags(&store.notifications("s2").unwrap()), ["b"]);
        let indexed: Vec<String> = store
            .undelivered_for_user("alice", 10)
            .unwrap()
            .into_iter()
            .map(|(_, n)| n.tag)
            .collect();
        assert_eq!(indexed, ["a", "c"], "only the comet ones");
        assert!(store
            .add_notifications(Vec::new())
            .unwrap()
            .without_waiting()
            .is_empty());
    }

    #[test]
    fn marking_several_at_once_counts_what_this_call_delivered() {
        let store = Store::open_temporary().unwrap();
        service(&store, "s1", Some("alice"), 50);
        service(&store, "s2", Some("alice"), 50);
        let add = |id: &str| {
            store
                .add_notification(id, Some("alice"), "t".into(), &json!({}), NOW)
                .unwrap()
                .without_waiting()
                .seq
        };
        let (a, b, c) = (add("s1"), add("s2"), add("s1"));
        store
            .mark_delivered("s2", Some("alice"), b)
            .unwrap()
            .without_waiting();

        let marked = store
            .mark_all_delivered(Some("alice"), &[("s1", a), ("s2", b), ("s9", 1)])
            .unwrap()
            .expect("a write")
            .without_waiting();

        assert_eq!(marked, 1, "b was delivered already; s9 is not stored");
        let left: Vec<u64> = store
            .undelivered_for_user("alice", 10)
            .unwrap()
            .into_iter()
            .map(|(_, n)| n.seq)
            .collect();
        assert_eq!(left, [c]);
        assert!(store
            .mark_all_delivered(Some("alice"), &[])
            .unwrap()
            .is_none());
    }

    #[test]
    fn of_concurrent_marks_of_one_notification_exactly_one_delivers_it() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        let seqs: Vec<u64> = (0..50)
            .map(|_| {
                store
                    .add_notification("s1", Some("alice"), "t".into(), &json!({}), NOW)
                    .unwrap()
                    .without_waiting()
                    .seq
            })
            .collect();

        let delivered: usize = std::thread::scope(|scope| {
            let markers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        seqs.iter()
                            .filter(|seq| {
                                store
                                    .mark_delivered("s1", Some("alice"), **seq)
                                    .unwrap()
                                    .without_waiting()
                            })
                            .count()
                    })
                })
                .collect();
            markers.into_iter().map(|m| m.join().unwrap()).sum()
        });

        assert_eq!(delivered, seqs.len(), "each one delivered once");
        assert!(store
            .notifications("s1")
            .unwrap()
            .iter()
            .all(|n| n.delivered));
        assert!(engine.inner.trees.undelivered.is_empty(), "index emptied");
    }

    #[test]
    fn stale_index_entries_are_dropped_when_read() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        engine
            .inner
            .trees
            .undelivered
            .insert(keys::undelivered_key("alice", 9), "gone".as_bytes())
            .unwrap();

        assert!(store.undelivered_for_user("alice", 10).unwrap().is_empty());
        assert!(engine.inner.trees.undelivered.is_empty());
    }

    #[test]
    fn agent_notifications_are_taken_once_in_order() {
        let store = Store::open_temporary().unwrap();
        for tag in ["a", "b"] {
            store
                .add_agent_notification("s1", tag.into(), "{}".into(), NOW)
                .unwrap()
                .without_waiting();
        }
        store
            .add_agent_notification("s10", "other".into(), "{}".into(), NOW)
            .unwrap()
            .without_waiting();

        assert_eq!(
            tags(
                &store
                    .take_agent_notifications("s1")
                    .unwrap()
                    .without_waiting()
            ),
            ["a", "b"]
        );
        assert!(store
            .take_agent_notifications("s1")
            .unwrap()
            .without_waiting()
            .is_empty());
        assert_eq!(
            store.agent_notifications("s1").unwrap().len(),
            2,
            "kept for the admin view"
        );
    }

    #[test]
    fn expiry_removes_notifications_both_ways_and_their_index_entries() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        service(&store, "s1", Some("alice"), 50);
        service(&store, "s2", Some("alice"), 500);
        for id in ["s1", "s2"] {
            store
                .add_notification(id, Some("alice"), format!("{id}.c"), &json!({}), NOW)
                .unwrap()
                .without_waiting();
            store
                .add_agent_notification(id, format!("{id}.a"), "{}".into(), NOW)
                .unwrap()
                .without_waiting();
        }

        crate::expiry::run_once(&store, Timestamp::from_millis(50)).unwrap();

        assert!(store.notifications("s1").unwrap().is_empty());
        assert!(store.agent_notifications("s1").unwrap().is_empty());
        let left = store.undelivered_for_user("alice", 10).unwrap();
        assert_eq!(left.len(), 1, "only the live service's entry is left");
        assert_eq!(left[0].0, "s2");
        assert_eq!(store.agent_notifications("s2").unwrap().len(), 1);
        assert_eq!(
            engine.inner.trees.undelivered.len(),
            1,
            "no index entry left behind"
        );
    }
}
