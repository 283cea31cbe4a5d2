//! The routing history (`routing_history` tree): what routing did for each service (steps
//! entered, skipped and timed out, agents reserved and released, dial outcomes), appended one
//! event a value under `service id ++ 0 ++ seq`, with `seq` from sled's id generator
//! (increasing, so a service's events scan in the order they were appended; the key is the
//! notifications' key, [`keys::service_seq_key`]).
//!
//! The history lives beside the record, not in it, so that routing progress appends a small
//! value instead of rewriting the record: a create routed at once writes its record once.
//! An event that comes with a change of the record (a reservation, a dial outcome) is
//! appended in the record's own transaction ([`Store::update_service_routed`]); history
//! alone writes this tree only ([`Store::append_routing`]). It is removed with its service.

use std::convert::Infallible;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::{
    abort_store, infallible, keys, stored, Pending, Refusal, RouteProgress, RoutingEvent,
    RoutingHistory, ServiceRecord, Services, SledStore, StoreError, UpdateError,
};

/// Appends `events` to the history of service `id` inside a transaction over `history`.
/// Their sequence numbers are drawn as they are written, so a retried transaction draws new
/// ones (gaps are harmless: only order matters). They come from the transaction's own
/// generator: `sled::Db::generate_id` takes the lock the transaction holds, and would wait
/// for it forever.
pub(super) fn append_in<E>(
    history: &TransactionalTree,
    id: &str,
    events: &[RoutingEvent],
) -> Result<(), ConflictableTransactionError<UpdateError<E>>> {
    for event in events {
        let seq = history.generate_id()?;
        let value = stored::routing::encode(event).map_err(abort_store)?;
        history.insert(keys::service_seq_key(id, seq), value)?;
    }
    Ok(())
}

impl RoutingHistory for SledStore {
    fn routing_history(&self, id: &str) -> Result<Vec<RoutingEvent>, StoreError> {
        self.inner
            .trees
            .routing_history
            .scan_prefix(keys::service_seq_prefix(id))
            .map(|item| {
                let (_, value) = item?;
                stored::routing::decode(&value, &format!("routing event of service {id}"))
            })
            .collect()
    }

    fn append_routing(
        &self,
        id: &str,
        events: &[RoutingEvent],
        progress: Option<&RouteProgress>,
    ) -> Result<Pending<bool>, StoreError> {
        let trees = &self.inner.trees;
        // The record is read inside the transaction, once: appended only while it is still
        // there, active, and needs no change (else the record's transaction does it).
        let appended = (&trees.services, &trees.routing_history)
            .transaction(|(services, history)| {
                let Some(bytes) = services.get(id.as_bytes())? else {
                    return Ok(Some(false));
                };
                let record = super::decode_service(id, &bytes).map_err(abort_store)?;
                if !record.is_active() {
                    return Ok(Some(false));
                }
                if changes_record(&record, events, progress) {
                    return Ok(None);
                }
                append_in::<Infallible>(history, id, events)?;
                Ok(Some(true))
            })
            .map_err(|err| match err {
                TransactionError::Abort(err) => err,
                TransactionError::Storage(err) => UpdateError::Store(err.into()),
            });
        let appended = infallible(appended)?;
        match appended {
            Some(appended) => Ok(self.pending(appended)),
            // The record itself changes: its own transaction does it.
            None => self.append_routing_to_record(id, events, progress),
        }
    }
}

impl SledStore {
    /// [`RoutingHistory::append_routing`] through the record's transaction.
    fn append_routing_to_record(
        &self,
        id: &str,
        events: &[RoutingEvent],
        progress: Option<&RouteProgress>,
    ) -> Result<Pending<bool>, StoreError> {
        struct Inactive;
        let appended = self.change_service(id, &mut |record, appended| {
            if !record.is_active() {
                return Err(Refusal::of(Inactive));
            }
            appended.extend(events.iter().cloned());
            if let Some(progress) = progress {
                record.route = Some(progress.clone());
            }
            Ok(())
        });
        match appended {
            Ok(found) => Ok(found.map(|found| found.is_some())),
            Err(UpdateError::Rejected(_inactive)) => Ok(self.pending(false)),
            Err(UpdateError::Store(err)) => Err(err),
        }
    }

    /// Removes the routing history of service `id` (the expiry job, before it removes the
    /// record: a crash in between leaves a record that the next run removes, never history
    /// that belongs to nothing).
    ///
    /// # Errors
    /// Storage failed.
    pub(super) fn delete_routing_history_of(&self, id: &str) -> Result<(), StoreError> {
        super::remove_prefix(
            &self.inner.trees.routing_history,
            &keys::service_seq_prefix(id),
        )
    }
}

/// Whether appending `events` with `progress` changes `record` itself: events it keeps
/// (reservations, dial attempts), or progress other than what it stores. A record that
/// holds the start of its walk (as a create stores it) keeps it while routing only walks
/// steps: the history appended says how far it went ([`RouteProgress::replayed`], which
/// the router's restore reads), so that a create whose first step is skipped at once (no
/// agent ready) is still written once.
pub(super) fn changes_record(
    record: &ServiceRecord,
    events: &[RoutingEvent],
    progress: Option<&RouteProgress>,
) -> bool {
    let moved = !record.walk_at_start()
        && progress.is_some_and(|progress| record.route.as_ref() != Some(progress));
    moved || events.iter().any(ServiceRecord::keeps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::{CallbackState, RoutingEventKind};
    use crate::domain::time::Timestamp;
    use crate::store::Store;

    fn at(millis: u64) -> Timestamp {
        Timestamp::from_millis(1_000 + millis)
    }

    fn event(millis: u64, kind: RoutingEventKind) -> RoutingEvent {
        RoutingEvent {
            at: at(millis),
            step: 1,
            kind,
        }
    }

    fn entered() -> RoutingEventKind {
        RoutingEventKind::Entered {
            target: "Billing@StatServer.GA".into(),
        }
    }

    /// A QUEUED service stored with the start of its walk, as a create stores it.
    fn created(store: &Store) -> ServiceRecord {
        let mut record = ServiceRecord::new("s1", "chat-delay", Preset::ChatDelayed, at(0));
        record.expire_at = at(100_000);
        record.queued_at = Some(at(0));
        record.route = Some(RouteProgress::start(at(0)));
        store.insert_service(&record).unwrap().without_waiting();
        record
    }

    fn record_writes(store: &Store) -> u64 {
        store.commit_stats().service_record_writes.get()
    }

    fn stored_bytes(engine: &SledStore) -> sled::IVec {
        engine.inner.trees.services.get("s1").unwrap().unwrap()
    }

    #[test]
    fn history_at_the_stored_progress_writes_the_history_tree_only() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        let record = created(&store);
        let before = stored_bytes(&engine);

        let appended = store
            .append_routing("s1", &[event(1, entered())], record.route.as_ref())
            .unwrap()
            .without_waiting();
        let timed_out = event(2, RoutingEventKind::TimedOut);
        store
            .append_routing("s1", std::slice::from_ref(&timed_out), None)
            .unwrap()
            .without_waiting();

        assert!(appended);
        assert_eq!(record_writes(&store), 1, "the insert only");
        assert_eq!(stored_bytes(&engine), before, "the record is not rewritten");
        assert_eq!(
            store.routing_history("s1").unwrap(),
            [event(1, entered()), timed_out],
            "in the order appended"
        );
    }

    #[test]
    fn steps_walked_from_the_start_write_the_history_only_until_a_reservation_writes_the_record() {
        let store = Store::open_temporary().unwrap();
        created(&store);
        let moved = RouteProgress {
            step: 1,
            step_entered_at: at(30),
            target_set: vec![0, 1],
        };

        store
            .append_routing("s1", &[event(30, RoutingEventKind::TimedOut)], Some(&moved))
            .unwrap()
            .without_waiting();
        assert_eq!(
            record_writes(&store),
            1,
            "the history tells how far it went"
        );
        let record = store.service("s1").unwrap().unwrap();
        assert_eq!(
            record.route.as_ref().map(|start| start.replayed(
                &store.routing_history("s1").unwrap(),
                &[false, false]
            )),
            Some(moved.clone()),
            "the start and its history give the router's progress"
        );

        let reserved = event(
            31,
            RoutingEventKind::Reserved {
                agent: "ann".into(),
            },
        );
        store
            .append_routing("s1", std::slice::from_ref(&reserved), Some(&moved))
            .unwrap()
            .without_waiting();
        let record = store.service("s1").unwrap().unwrap();
        assert_eq!(
            record_writes(&store),
            2,
            "a reservation is kept by the record"
        );
        assert_eq!(record.route, Some(moved), "with the progress of its moment");
        assert_eq!(record.reservations[0].agent, "ann");
    }

    #[test]
    fn history_that_moves_the_progress_or_reserves_writes_the_record_with_it() {
        let store = Store::open_temporary().unwrap();
        created(&store);
        // Past the start of its walk (a reservation stored its progress): the record holds it.
        store
            .update_service::<()>("s1", |r| {
                r.route = Some(RouteProgress {
                    step: 1,
                    step_entered_at: at(10),
                    target_set: vec![0, 1],
                });
                Ok(())
            })
            .unwrap()
            .without_waiting();
        let moved = RouteProgress {
            step: 2,
            step_entered_at: at(30),
            target_set: vec![0, 1, 2],
        };

        store
            .append_routing("s1", &[event(30, RoutingEventKind::TimedOut)], Some(&moved))
            .unwrap()
            .without_waiting();
        assert_eq!(record_writes(&store), 3, "new progress is the record's");
        assert_eq!(store.service("s1").unwrap().unwrap().route, Some(moved));

        let reserved = event(
            31,
            RoutingEventKind::Reserved {
                agent: "ann".into(),
            },
        );
        store
            .append_routing("s1", std::slice::from_ref(&reserved), None)
            .unwrap()
            .without_waiting();
        assert_eq!(
            record_writes(&store),
            4,
            "a reservation is kept by the record"
        );
        let record = store.service("s1").unwrap().unwrap();
        assert_eq!(record.reservations.len(), 1);
        assert_eq!(record.reservations[0].agent, "ann");
        assert_eq!(store.routing_history("s1").unwrap().len(), 2);
    }

    #[test]
    fn history_of_a_gone_or_completed_service_is_not_appended() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        created(&store);
        store
            .update_service::<()>("s1", |r| {
                r.state = CallbackState::Completed;
                Ok(())
            })
            .unwrap()
            .without_waiting();

        let completed = store
            .append_routing("s1", &[event(1, entered())], None)
            .unwrap()
            .without_waiting();
        let gone = store
            .append_routing("nobody", &[event(1, entered())], None)
            .unwrap()
            .without_waiting();

        assert!(!completed && !gone);
        assert!(engine.inner.trees.routing_history.is_empty());
    }
}
