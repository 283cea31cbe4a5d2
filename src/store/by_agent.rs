//! The agent index `by_agent`: one entry `agent ++ 0 ++ id -> state code` per agent who
//! handled a service ([`ServiceRecord::handling_agents`]: the agents the desktop's History
//! attributes its turns to), so that an agent's History (and the version every desktop
//! snapshot computes from it) reads only that agent's services instead of every SCHEDULED,
//! PROCESSING and COMPLETED record (issue 11).
//!
//! The value is the service's state as its one-byte code ([`CallbackState::code`]), so the
//! wanted states are picked from the index alone. Every write that creates, changes or deletes
//! a service keeps it in step in the record's own transaction (`IndexKeys` in `mod.rs`); a
//! routing append with a reservation in it (which the record keeps, and which may change who
//! handled it) takes that transaction too ([`Store::append_routing`]); migration 0010 builds
//! it for older databases.

use super::{keys, SledStore, StoreError};
use crate::domain::service::{CallbackState, ServiceRecord};

/// The `by_agent` entries of `record`: key and value, one per agent who handled it.
pub(super) fn entries_of(record: &ServiceRecord) -> Vec<(Vec<u8>, [u8; 1])> {
    entries(&record.handling_agents(), &record.id, record.state)
}

/// The `by_agent` entries of a service from its parts (the migration reads them through a
/// frozen view of the record).
pub(crate) fn entries(agents: &[&str], id: &str, state: CallbackState) -> Vec<(Vec<u8>, [u8; 1])> {
    agents
        .iter()
        .map(|agent| (keys::agent_key(agent, id), [state.code()]))
        .collect()
}

impl SledStore {
    /// The ids of the services `agent` handled whose state is in `states`, read from the
    /// index alone: the records [`Services::services_handled_by`] reads.
    pub(super) fn handled_ids<'a>(
        &'a self,
        agent: &str,
        states: &'a [CallbackState],
    ) -> impl Iterator<Item = Result<String, StoreError>> + 'a {
        self.inner
            .trees
            .by_agent
            .scan_prefix(keys::agent_prefix(agent))
            .map(move |item| {
                let (key, value) = item?;
                let wanted = value
                    .first()
                    .and_then(|code| CallbackState::from_code(*code))
                    .is_some_and(|state| states.contains(&state));
                Ok(wanted
                    .then(|| keys::id_after_separator(&key).map(str::to_string))
                    .flatten())
            })
            .filter_map(Result::transpose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::{RoutingEvent, RoutingEventKind};
    use crate::domain::time::Timestamp;
    use crate::store::{SledStore, Store};

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + secs * 1000)
    }

    fn reserved_event(agent: &str, secs: u64) -> RoutingEvent {
        RoutingEvent {
            at: at(secs),
            step: 1,
            kind: RoutingEventKind::Reserved {
                agent: agent.into(),
            },
        }
    }

    /// A service in `state` handled by `agent` (or by nobody).
    fn service(id: &str, agent: Option<&str>, state: CallbackState) -> ServiceRecord {
        let mut record = ServiceRecord::new(id, "callback", Preset::ChatDelayed, at(0));
        if let Some(agent) = agent {
            record.note_routing(&[reserved_event(agent, 1)]);
            record.reserved_agent = Some(agent.into());
            record.enter(CallbackState::Processing, None, at(2), "handled");
        }
        if state != CallbackState::Processing || agent.is_none() {
            record.enter(state, None, at(3), "moved");
        }
        record
    }

    fn ids(store: &SledStore, agent: &str, states: &[CallbackState]) -> Vec<String> {
        store
            .handled_ids(agent, states)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    const HISTORY_STATES: [CallbackState; 3] = [
        CallbackState::Scheduled,
        CallbackState::Processing,
        CallbackState::Completed,
    ];

    #[test]
    fn an_agent_reads_only_the_services_it_handled_in_the_wanted_states() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        store
            .insert_services(&[
                service("ann-done", Some("ann"), CallbackState::Completed),
                service("ann-live", Some("ann"), CallbackState::Processing),
                service("ann-redial", Some("ann"), CallbackState::Scheduled),
                service("ann-requeued", Some("ann"), CallbackState::Queued),
                service("bob-done", Some("bob"), CallbackState::Completed),
                service("bob-live", Some("bob"), CallbackState::Processing),
                service("nobody-waiting", None, CallbackState::Scheduled),
                service("nobody-done", None, CallbackState::Completed),
            ])
            .unwrap()
            .without_waiting();

        assert_eq!(
            ids(&engine, "ann", &HISTORY_STATES),
            ["ann-done", "ann-live", "ann-redial"],
            "neither bob's services, nor unhandled SCHEDULED and COMPLETED ones, nor ann's \
             QUEUED one are read"
        );
        assert_eq!(
            ids(&engine, "bob", &HISTORY_STATES),
            ["bob-done", "bob-live"]
        );
        assert!(
            ids(&engine, "an", &HISTORY_STATES).is_empty(),
            "a prefix of an id is not it"
        );
        assert!(ids(&engine, "carol", &HISTORY_STATES).is_empty());

        let read = store
            .services_handled_by("ann", &HISTORY_STATES, &|r| r.id != "ann-live", 10)
            .unwrap();
        let read: Vec<&str> = read.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(read, ["ann-done", "ann-redial"]);
    }

    #[test]
    fn the_index_follows_updates_requeues_and_deletes() {
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        store
            .insert_service(&service("s1", None, CallbackState::Queued))
            .unwrap()
            .without_waiting();
        assert!(ids(&engine, "ann", &HISTORY_STATES).is_empty());

        store
            .update_service_routed::<()>("s1", |r, appended| {
                appended.push(reserved_event("ann", 4));
                r.reserved_agent = Some("ann".into());
                r.enter(CallbackState::Processing, None, at(5), "handled");
                Ok(())
            })
            .unwrap()
            .without_waiting();
        assert_eq!(ids(&engine, "ann", &HISTORY_STATES), ["s1"]);

        // Requeued, then handled by bob: both handled it, and it is QUEUED in between.
        store
            .update_service::<()>("s1", |r| {
                r.reserved_agent = None;
                r.enter(CallbackState::Queued, None, at(6), "no answer");
                Ok(())
            })
            .unwrap()
            .without_waiting();
        assert!(ids(&engine, "ann", &HISTORY_STATES).is_empty());
        assert_eq!(ids(&engine, "ann", &[CallbackState::Queued]), ["s1"]);
        store
            .update_service_routed::<()>("s1", |r, appended| {
                appended.push(reserved_event("bob", 7));
                r.reserved_agent = Some("bob".into());
                r.enter(CallbackState::Processing, None, at(8), "handled");
                r.enter(CallbackState::Completed, None, at(9), "done");
                Ok(())
            })
            .unwrap()
            .without_waiting();
        assert_eq!(ids(&engine, "ann", &HISTORY_STATES), ["s1"]);
        assert_eq!(ids(&engine, "bob", &HISTORY_STATES), ["s1"]);
        assert_eq!(
            store.routing_history("s1").unwrap(),
            [reserved_event("ann", 4), reserved_event("bob", 7)],
            "the events appended with the changes, in order"
        );

        let purged = store
            .purge_expired(Timestamp::from_millis(u64::MAX), 10)
            .unwrap()
            .without_waiting();
        assert_eq!(purged.removed, ["s1"]);
        assert!(ids(&engine, "ann", &CallbackState::ALL).is_empty());
        assert!(ids(&engine, "bob", &CallbackState::ALL).is_empty());
        assert!(
            store.routing_history("s1").unwrap().is_empty(),
            "the history goes with its service"
        );
    }

    #[test]
    fn a_routing_append_that_names_the_handling_agent_updates_the_index() {
        // A PROCESSING entry with no reservation before it and no reserved agent has no
        // agent; a `Reserved` event appended with the same millisecond gives it one. The
        // append must then keep the index right, although history alone changes.
        let engine = SledStore::open_temporary().unwrap();
        let store = Store::new(engine.clone());
        let mut record = service("s1", None, CallbackState::Queued);
        record.enter(CallbackState::Processing, None, at(5), "handled");
        store.insert_service(&record).unwrap().without_waiting();
        assert!(record.handling_agents().is_empty());

        assert!(store
            .append_routing("s1", &[reserved_event("ann", 5)], None)
            .unwrap()
            .without_waiting());
        let stored = store.service("s1").unwrap().unwrap();
        assert_eq!(stored.handling_agents(), ["ann"]);
        assert_eq!(ids(&engine, "ann", &HISTORY_STATES), ["s1"]);

        // An append that changes nobody's turn (later than every PROCESSING entry) leaves it.
        assert!(store
            .append_routing("s1", &[reserved_event("bob", 6)], None)
            .unwrap()
            .without_waiting());
        assert_eq!(ids(&engine, "ann", &HISTORY_STATES), ["s1"]);
        assert!(ids(&engine, "bob", &HISTORY_STATES).is_empty());
    }
}
