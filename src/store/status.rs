//! The status-notification outbox (issue 15).
//!
//! - `status_outbox`: `service id ++ 0 ++ seq (u64 BE)` -> [`StatusNotification`], every
//!   event of a service in order, delivered, pending or failed (the console shows them); removed
//!   with the service.
//! - `status_pending`: the same keys, for the entries not yet delivered or given up, so that the
//!   worker finds its work after a restart by reading only what is pending.
//!
//! Entries are written by [`outbox_in`] inside the transaction that writes the service's change
//! ([`Store::insert_service`], [`Store::update_service`]), so an event exists exactly when its
//! change does, `kill -9` or not. The worker's bookkeeping goes through
//! [`StatusOutbox::record_status_attempt`], the one other write.

use std::collections::BTreeSet;
use std::sync::Mutex;

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::{abort_store, keys, stored, Pending, SledStore, StatusOutbox, StoreError, UpdateError};
use crate::domain::service::ServiceRecord;
use crate::domain::status::{Delivery, StatusNotification};
use crate::domain::status_events;
use futures_util::future::BoxFuture;

/// Services whose outbox got entries since the worker last looked, and the worker's bell.
#[derive(Debug, Default)]
pub(super) struct StatusWake {
    dirty: Mutex<BTreeSet<String>>,
    bell: tokio::sync::Notify,
}

impl StatusWake {
    pub(super) fn ring(&self, service_id: &str) {
        self.dirty
            .lock()
            .expect("status wake lock")
            .insert(service_id.to_string());
        self.bell.notify_one();
    }
}

/// Whether `record` reports status events (its options turn them on), read without parsing
/// the rest.
pub(super) fn reports(record: &ServiceRecord) -> bool {
    crate::domain::status::enabled(&record.options)
}

/// Inside a service's transaction: writes the outbox entries of its change from `before` to
/// `after` into `outbox` and `pending`; returns whether there were any.
pub(super) fn outbox_in<E>(
    outbox: &TransactionalTree,
    pending: &TransactionalTree,
    before: Option<&ServiceRecord>,
    after: &ServiceRecord,
) -> Result<bool, ConflictableTransactionError<UpdateError<E>>> {
    let entries = status_events::outbox_entries(before, after, || {
        outbox
            .generate_id()
            .map_err(|err| abort_store(StoreError::from(err)))
    })?;
    for entry in &entries {
        let key = keys::service_seq_key(&after.id, entry.seq);
        let bytes = stored::status::encode(entry).map_err(abort_store)?;
        outbox.insert(key.as_slice(), bytes)?;
        pending.insert(key, &[])?;
    }
    Ok(!entries.is_empty())
}

impl StatusOutbox for SledStore {
    fn status_written(&self) -> BoxFuture<'_, Pending<BTreeSet<String>>> {
        Box::pin(async move {
            let wake = &self.inner.status_wake;
            loop {
                let notified = wake.bell.notified();
                let dirty = std::mem::take(&mut *wake.dirty.lock().expect("status wake lock"));
                if !dirty.is_empty() {
                    return self.pending(dirty);
                }
                notified.await;
            }
        })
    }

    fn status_pending_services(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut services = BTreeSet::new();
        for item in self.inner.trees.status_pending.iter() {
            let (key, _) = item?;
            if let Some(id) = keys::service_of_seq_key(&key) {
                services.insert(id.to_string());
            }
        }
        Ok(services)
    }

    fn next_status_notification(
        &self,
        service_id: &str,
    ) -> Result<Option<StatusNotification>, StoreError> {
        let trees = &self.inner.trees;
        for item in trees
            .status_pending
            .scan_prefix(keys::service_seq_prefix(service_id))
        {
            let (key, _) = item?;
            match trees.status_outbox.get(&key)? {
                Some(bytes) => return decode(service_id, &bytes).map(Some),
                // Left behind by a removal that stopped half-way: drop it.
                None => {
                    trees.status_pending.remove(&key)?;
                }
            }
        }
        Ok(None)
    }

    fn status_notifications(
        &self,
        service_id: &str,
    ) -> Result<Vec<StatusNotification>, StoreError> {
        self.inner
            .trees
            .status_outbox
            .scan_prefix(keys::service_seq_prefix(service_id))
            .map(|item| {
                let (_, value) = item?;
                decode(service_id, &value)
            })
            .collect()
    }

    fn record_status_attempt(
        &self,
        service_id: &str,
        entry: &StatusNotification,
    ) -> Result<Pending<()>, StoreError> {
        let key = keys::service_seq_key(service_id, entry.seq);
        let bytes = stored::status::encode(entry)?;
        let trees = &self.inner.trees;
        (&trees.status_outbox, &trees.status_pending)
            .transaction(|(outbox, pending)| {
                if outbox.get(&key)?.is_none() {
                    return Ok(());
                }
                outbox.insert(key.as_slice(), bytes.as_slice())?;
                if entry.delivery != Delivery::Pending {
                    pending.remove(key.as_slice())?;
                }
                Ok(())
            })
            .map_err(super::tx_error)?;
        Ok(self.pending(()))
    }
}

impl SledStore {
    /// Removes the outbox of service `service_id` (the expiry job, before its record, as its
    /// notifications are).
    pub(super) fn delete_status_of(&self, service_id: &str) -> Result<(), StoreError> {
        let trees = &self.inner.trees;
        let prefix = keys::service_seq_prefix(service_id);
        // Pending marks first: a crash in between leaves entries nobody delivers, never a
        // mark without its entry.
        super::remove_prefix(&trees.status_pending, &prefix)?;
        super::remove_prefix(&trees.status_outbox, &prefix)
    }
}

fn decode(service_id: &str, bytes: &[u8]) -> Result<StatusNotification, StoreError> {
    stored::status::decode(
        bytes,
        &format!("status notification of service {service_id}"),
    )
}

#[cfg(test)]
mod tests {
    use crate::store::{SledStore, Store};
    use std::convert::Infallible;

    use crate::domain::options::Preset;
    use crate::domain::service::{CallbackReason, CallbackState, ServiceRecord};
    use crate::domain::status::{Delivery, StatusEvent};
    use crate::domain::time::Timestamp;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    fn queued(id: &str, reporting: bool) -> ServiceRecord {
        let mut record = ServiceRecord::new(id, "sn", Preset::ChatDelayed, NOW);
        if reporting {
            record.options.insert(
                "_enable_status_notification".into(),
                "subscribe_notify".into(),
            );
            record
                .options
                .insert("_status_notification_target".into(), "http://h/x".into());
        }
        record.expire_at = NOW.plus_secs(3600);
        record.queued_at = Some(NOW);
        record.mark_created(CallbackState::Queued, NOW);
        record
    }

    fn cancel(store: &Store, id: &str) {
        store
            .update_service(id, |r| {
                r.cancel(CallbackReason::Cancelled, NOW)
                    .expect("cancellable");
                Ok::<(), Infallible>(())
            })
            .expect("updated")
            .without_waiting() // a unit test: no acknowledgement depends on it
            .expect("found");
    }

    #[test]
    fn a_reporting_service_gets_its_events_from_create_and_from_a_change() {
        let store = Store::open_temporary().unwrap();
        store
            .insert_service(&queued("s1", true))
            .unwrap()
            .without_waiting();
        // The change goes through the first, narrow transaction and then the wide one.
        cancel(&store, "s1");
        let entries = store.status_notifications("s1").unwrap();
        let events: Vec<StatusEvent> = entries.iter().map(|e| e.event).collect();
        assert_eq!(
            events,
            [
                StatusEvent::ServiceCreate,
                StatusEvent::VirtualIxnCreate,
                StatusEvent::ServiceExit
            ],
            "GMS's defaults, from the create and the cancel"
        );
        assert!(entries.iter().all(|e| e.delivery == Delivery::Pending));
        assert_eq!(
            store.status_pending_services().unwrap(),
            ["s1".to_string()].into()
        );
        let state = store.service("s1").unwrap().unwrap().state;
        assert_eq!(
            state,
            CallbackState::Completed,
            "the change itself is written"
        );
    }

    #[test]
    fn a_service_without_status_notifications_leaves_the_outbox_empty() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        store
            .insert_service(&queued("s2", false))
            .unwrap()
            .without_waiting();
        cancel(&store, "s2");
        assert!(store.status_notifications("s2").unwrap().is_empty());
        assert!(store.status_pending_services().unwrap().is_empty());
        assert!(engine.inner.trees.status_outbox.is_empty());
        assert!(engine.inner.trees.status_pending.is_empty());
    }
}
