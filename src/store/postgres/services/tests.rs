//! The PostgreSQL engine's services, routing history, time index and status outbox, each
//! against a fresh database of the throwaway cluster: what each method's contract promises,
//! with the sled engine's own tests ported where it has them.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use crate::domain::options::Preset;
use crate::domain::service::{
    CallbackReason, CallbackState, RouteProgress, RoutingEvent, RoutingEventKind, ServiceRecord,
};
use crate::domain::status::{Delivery, StatusEvent};
use crate::domain::time::Timestamp;
use crate::store::engine::{RoutingHistory, Services, StatusOutbox, TimeIndex};
use crate::store::postgres::{throwaway, PgStore};
use crate::store::{time_counts, Database, Refusal, TimeSelection, UpdateError};

fn open() -> PgStore {
    PgStore::open(&throwaway::shared().fresh_database(), 2).unwrap()
}

/// A service `id` of "chat-delay", desired at `desired`, expiring at `expire_at`.
fn record(id: &str, desired: u64, expire_at: u64) -> ServiceRecord {
    let mut record = ServiceRecord::new(
        id,
        "chat-delay",
        Preset::ChatDelayed,
        Timestamp::from_millis(desired),
    );
    record.desired_time = Timestamp::from_millis(desired);
    record.expire_at = Timestamp::from_millis(expire_at);
    record
}

fn insert(store: &PgStore, record: &ServiceRecord) {
    store.insert_service(record).unwrap().without_waiting();
}

/// Changes service `id` with `change` (no routing events); the new record.
fn update(
    store: &PgStore,
    id: &str,
    mut change: impl FnMut(&mut ServiceRecord),
) -> Option<ServiceRecord> {
    store
        .change_service(id, &mut |r, _| {
            change(r);
            Ok(())
        })
        .unwrap()
        .without_waiting()
}

fn ids(records: &[ServiceRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn record_writes(store: &PgStore) -> u64 {
    store.commit_stats().service_record_writes.get()
}

/// How many rows of `table` belong to service `id` (`column` names it).
fn rows_of(store: &PgStore, table: &str, column: &str, id: &str) -> i64 {
    store
        .read(|sql| {
            Ok(sql
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE {column} = $1"),
                    &[&id],
                )?
                .get(0))
        })
        .unwrap()
}

// Services.

#[test]
fn an_inserted_service_reads_back_and_is_found_by_each_of_its_indexes() {
    let store = open();
    let mut r = record("s1", 5_000, 90_000);
    r.customer_number = Some("555".into());
    r.owner = Some("me".into());
    r.state = CallbackState::Scheduled;
    insert(&store, &r);

    let all = |_: &ServiceRecord| true;
    assert_eq!(store.service("s1").unwrap(), Some(r.clone()));
    assert_eq!(store.service("s2").unwrap(), None);
    assert_eq!(
        ids(&store.services_by_customer("555", &all, 10).unwrap()),
        ["s1"]
    );
    assert!(store
        .services_by_customer("55", &all, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&store
            .services_of_owner("me", "chat-delay", &all, 10)
            .unwrap()),
        ["s1"]
    );
    assert!(store
        .services_of_owner("me", "other", &all, 10)
        .unwrap()
        .is_empty());
    let scheduled = [CallbackState::Scheduled];
    assert_eq!(
        ids(&store
            .services_in_states(Some("chat-delay"), &scheduled, &all, 10)
            .unwrap()),
        ["s1"]
    );
    assert_eq!(
        store.next_scheduled().unwrap(),
        Some(Timestamp::from_millis(5_000))
    );
    assert!(store
        .due_scheduled(Timestamp::from_millis(4_999), 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .due_scheduled(Timestamp::from_millis(5_000), 10)
            .unwrap(),
        ["s1"]
    );
    assert_eq!(
        store.count_in_states("chat-delay", &scheduled, 10).unwrap(),
        1
    );
    assert_eq!(record_writes(&store), 1);
}

#[test]
fn a_second_insert_of_an_id_is_refused_and_writes_nothing() {
    let store = open();
    insert(&store, &record("s1", 1, 100));
    let mut again = record("s1", 2, 200);
    again.customer_number = Some("555".into());

    assert!(store.insert_service(&again).is_err());
    assert_eq!(store.service("s1").unwrap(), Some(record("s1", 1, 100)));
    assert!(store
        .services_by_customer("555", &|_| true, 10)
        .unwrap()
        .is_empty());
}

#[test]
fn queries_filter_before_they_limit() {
    let store = open();
    for i in 0..10 {
        let mut r = record(&format!("s{i}"), 0, 1_000);
        r.customer_number = Some("555".into());
        r.owner = Some(if i < 8 { "other" } else { "me" }.into());
        insert(&store, &r);
    }
    let mine = |r: &ServiceRecord| r.owner.as_deref() == Some("me");

    let by_customer = store.services_by_customer("555", &mine, 2).unwrap();
    let by_state = store
        .services_in_states(Some("chat-delay"), &[CallbackState::Queued], &mine, 2)
        .unwrap();
    let completed = store
        .services_in_states(None, &[CallbackState::Completed], &|_| true, 100)
        .unwrap();

    assert_eq!(
        ids(&by_customer),
        ["s8", "s9"],
        "both of mine, past 8 of another user's"
    );
    assert_eq!(ids(&by_state), ["s8", "s9"]);
    assert!(completed.is_empty());
    assert!(store
        .services_by_customer("555", &|_| true, 0)
        .unwrap()
        .is_empty());
}

#[test]
fn reads_page_past_what_keep_refuses_in_byte_order() {
    let store = open();
    // More than a page of refused rows before the ones kept; ids whose byte order differs
    // from a natural language's ("B" < "a" in bytes).
    let mut records: Vec<ServiceRecord> = (0..600)
        .map(|i| {
            let mut r = record(&format!("a{i:04}"), 0, 1_000);
            r.customer_number = Some("555".into());
            r
        })
        .collect();
    for id in ["B", "b"] {
        let mut r = record(id, 0, 1_000);
        r.customer_number = Some("555".into());
        records.push(r);
    }
    store.insert_services(&records).unwrap().without_waiting();
    let not_a = |r: &ServiceRecord| !r.id.starts_with('a');

    assert_eq!(
        ids(&store.services_by_customer("555", &not_a, 10).unwrap()),
        ["B", "b"]
    );
    let first = store.services_by_customer("555", &|_| true, 1).unwrap();
    assert_eq!(ids(&first), ["B"]);
    assert_eq!(record_writes(&store), 602, "a bulk load books every record");
}

#[test]
fn services_in_states_reads_names_then_states_in_code_order() {
    let store = open();
    let placed = |id: &str, name: &str, state| {
        let mut r = record(id, 0, 1_000);
        r.service_name = name.into();
        r.state = state;
        r
    };
    store
        .insert_services(&[
            placed("1", "b", CallbackState::Queued),
            placed("2", "b", CallbackState::Scheduled),
            placed("3", "a", CallbackState::Completed),
            placed("4", "a", CallbackState::Queued),
            placed("5", "c", CallbackState::Routing),
        ])
        .unwrap()
        .without_waiting();
    let all = |_: &ServiceRecord| true;
    let states = [
        CallbackState::Completed,
        CallbackState::Queued,
        CallbackState::Scheduled,
        CallbackState::Queued,
    ];

    assert_eq!(
        ids(&store.services_in_states(None, &states, &all, 10).unwrap()),
        ["4", "3", "2", "1"]
    );
    assert_eq!(
        ids(&store.services_in_states(None, &states, &all, 3).unwrap()),
        ["4", "3", "2"]
    );
    assert_eq!(
        ids(&store
            .services_in_states(Some("b"), &states, &all, 10)
            .unwrap()),
        ["2", "1"]
    );
    assert_eq!(
        store.count_in_states("a", &CallbackState::ALL, 10).unwrap(),
        2
    );
    assert_eq!(
        store.count_in_states("a", &CallbackState::ALL, 1).unwrap(),
        1,
        "limited"
    );
    assert_eq!(
        store
            .count_in_states("b", &[CallbackState::Queued, CallbackState::Queued], 10)
            .unwrap(),
        2,
        "a state given twice counts twice, as in the sled engine"
    );
}

#[test]
fn a_change_moves_the_record_and_every_index_with_it() {
    let store = open();
    let mut r = record("s1", 5_000, 90_000);
    r.state = CallbackState::Scheduled;
    r.customer_number = Some("555".into());
    insert(&store, &r);

    let changed = update(&store, "s1", |r| {
        r.state = CallbackState::Queued;
        r.customer_number = Some("777".into());
        r.owner = Some("me".into());
    })
    .unwrap();

    let all = |_: &ServiceRecord| true;
    assert_eq!(store.service("s1").unwrap(), Some(changed));
    assert!(store
        .services_by_customer("555", &all, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&store.services_by_customer("777", &all, 10).unwrap()),
        ["s1"]
    );
    assert_eq!(
        ids(&store
            .services_of_owner("me", "chat-delay", &all, 10)
            .unwrap()),
        ["s1"]
    );
    assert_eq!(store.next_scheduled().unwrap(), None, "no longer SCHEDULED");
    assert!(store
        .due_scheduled(Timestamp::from_millis(u64::MAX), 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .count_in_states("chat-delay", &[CallbackState::Queued], 10)
            .unwrap(),
        1
    );
    assert_eq!(record_writes(&store), 2);
    assert!(update(&store, "gone", |_| {}).is_none(), "no such service");
    assert_eq!(record_writes(&store), 2, "nothing written for it");
}

#[test]
fn changes_of_one_service_from_several_connections_never_interleave() {
    let store = open();
    insert(&store, &record("s1", 0, 1_000));
    let bump = |r: &mut ServiceRecord| {
        let n: u32 = r.user_data.get("n").map_or(0, |n| n.parse().unwrap());
        r.user_data.insert("n".into(), (n + 1).to_string());
    };

    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..25 {
                    update(&store, "s1", bump).unwrap();
                }
            });
        }
    });

    let stored = store.service("s1").unwrap().unwrap();
    assert_eq!(
        stored.user_data["n"], "50",
        "each change read the one before it"
    );
}

#[test]
fn a_refused_change_writes_nothing() {
    let store = open();
    insert(&store, &record("s1", 0, 1_000));
    let reserved = RoutingEvent {
        at: Timestamp::from_millis(3),
        step: 1,
        kind: RoutingEventKind::Reserved {
            agent: "ann".into(),
        },
    };

    let refused = store.change_service("s1", &mut |r, appended| {
        r.state = CallbackState::Completed;
        appended.push(reserved.clone());
        Err(Refusal::of("no"))
    });

    match refused {
        Err(UpdateError::Rejected(refusal)) => assert_eq!(refusal.into_inner::<&str>(), "no"),
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert_eq!(store.service("s1").unwrap(), Some(record("s1", 0, 1_000)));
    assert!(store.routing_history("s1").unwrap().is_empty());
    assert_eq!(record_writes(&store), 1, "the insert only");
    assert!(
        store.change_service("s1", &mut |_, _| Ok(())).is_ok(),
        "the row lock went with the rolled-back transaction"
    );
}

#[test]
fn active_counts_follow_every_write() {
    let store = open();
    for i in 0..5 {
        let mut r = record(&format!("s{i}"), 0, 50 + i);
        r.service_name = if i < 3 { "chat-delay" } else { "other" }.into();
        insert(&store, &r);
    }
    update(&store, "s0", |r| r.state = CallbackState::Completed);
    update(&store, "s1", |r| r.state = CallbackState::Routing);
    store
        .purge_expired(Timestamp::from_millis(53), 100)
        .unwrap()
        .without_waiting();

    assert_eq!(
        store.active_counts(),
        BTreeMap::from([("other".to_string(), 1)]),
        "s0 completed, s1-s3 expired, s4 left"
    );
}

#[test]
fn purge_removes_the_due_services_with_everything_stored_for_them() {
    let store = open();
    let mut due = record("due", 0, 10);
    due.chat_session_id = Some("chat-1".into());
    due.options.insert(
        "_enable_status_notification".into(),
        "subscribe_notify".into(),
    );
    due.options
        .insert("_status_notification_target".into(), "http://h/x".into());
    due.mark_created(CallbackState::Queued, Timestamp::from_millis(0));
    insert(&store, &due);
    insert(&store, &record("later", 0, 20));
    let moved = record("moved", 0, 10);
    insert(&store, &moved);
    update(&store, "moved", |r| {
        r.expire_at = Timestamp::from_millis(1_000)
    });
    store
        .change_service("due", &mut |r, appended| {
            appended.push(reserved_by("ann", 1));
            r.reserved_agent = Some("ann".into());
            r.enter(CallbackState::Processing, None, agent_at(2), "handled");
            Ok(())
        })
        .unwrap()
        .without_waiting();
    // What the other subjects store for it, as their engines write it.
    store
        .transaction(|tx| {
            let bytes: &[u8] = b"x";
            for statement in [
                "INSERT INTO notifications (service_id, seq, value) VALUES ($1, 1, $2)",
                "INSERT INTO agent_notifications (service_id, seq, value) VALUES ($1, 1, $2)",
                "INSERT INTO service_storage (service_id, value) VALUES ($1, $2)",
            ] {
                tx.execute(statement, &[&"due", &bytes])?;
            }
            tx.execute(
                "INSERT INTO chat_sessions (id, value) VALUES ('chat-1', $1), ('chat-2', $1)",
                &[&bytes],
            )?;
            tx.execute(
                "INSERT INTO transcripts (session_id, position, value) VALUES ('chat-1', 0, $1)",
                &[&bytes],
            )
        })
        .unwrap();
    assert!(rows_of(&store, "status_outbox", "service_id", "due") > 0);
    assert_eq!(rows_of(&store, "service_agents", "service_id", "due"), 1);

    let purged = store
        .purge_expired(Timestamp::from_millis(10), 100)
        .unwrap()
        .without_waiting();

    assert_eq!(
        purged.removed,
        ["due"],
        "the rescheduled one and the later one stay"
    );
    assert_eq!(purged.scanned, 1);
    assert!(store.service("due").unwrap().is_none());
    for (table, column) in [
        ("routing_history", "service_id"),
        ("service_agents", "service_id"),
        ("status_outbox", "service_id"),
        ("notifications", "service_id"),
        ("agent_notifications", "service_id"),
        ("service_storage", "service_id"),
    ] {
        assert_eq!(rows_of(&store, table, column, "due"), 0, "{table}");
    }
    assert_eq!(rows_of(&store, "chat_sessions", "id", "chat-1"), 0);
    assert_eq!(rows_of(&store, "transcripts", "session_id", "chat-1"), 0);
    assert_eq!(
        rows_of(&store, "chat_sessions", "id", "chat-2"),
        1,
        "not its session"
    );
    assert!(store.service("later").unwrap().is_some());
    assert!(store.service("moved").unwrap().is_some());
    let limited = store
        .purge_expired(Timestamp::from_millis(u64::MAX), 1)
        .unwrap()
        .without_waiting();
    assert_eq!(
        (limited.scanned, limited.removed),
        (1, vec!["later".to_string()])
    );
}

// Routing history (ported from the sled engine's `routing.rs` and `by_agent.rs`).

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

fn reserved_event(agent: &str, millis: u64) -> RoutingEvent {
    event(
        millis,
        RoutingEventKind::Reserved {
            agent: agent.into(),
        },
    )
}

/// A QUEUED service stored with the start of its walk, as a create stores it.
fn created(store: &PgStore) -> ServiceRecord {
    let mut record = ServiceRecord::new("s1", "chat-delay", Preset::ChatDelayed, at(0));
    record.expire_at = at(100_000);
    record.queued_at = Some(at(0));
    record.route = Some(RouteProgress::start(at(0)));
    insert(store, &record);
    record
}

fn stored_bytes(store: &PgStore) -> Vec<u8> {
    store
        .read(|sql| {
            Ok(sql
                .query_one("SELECT value FROM services WHERE id = 's1'", &[])?
                .get(0))
        })
        .unwrap()
}

#[test]
fn history_at_the_stored_progress_writes_the_history_only() {
    let store = open();
    let record = created(&store);
    let before = stored_bytes(&store);

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
    assert_eq!(stored_bytes(&store), before, "the record is not rewritten");
    assert_eq!(
        store.routing_history("s1").unwrap(),
        [event(1, entered()), timed_out],
        "in the order appended"
    );
}

#[test]
fn steps_walked_from_the_start_write_the_history_only_until_a_reservation_writes_the_record() {
    let store = open();
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
        record
            .route
            .as_ref()
            .map(|start| start.replayed(&store.routing_history("s1").unwrap(), &[false, false])),
        Some(moved.clone()),
        "the start and its history give the router's progress"
    );

    store
        .append_routing("s1", &[reserved_event("ann", 31)], Some(&moved))
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
    assert_eq!(store.routing_history("s1").unwrap().len(), 2);
}

#[test]
fn history_that_moves_the_progress_writes_the_record_with_it() {
    let store = open();
    created(&store);
    update(&store, "s1", |r| {
        r.route = Some(RouteProgress {
            step: 1,
            step_entered_at: at(10),
            target_set: vec![0, 1],
        })
    });
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
    assert_eq!(store.routing_history("s1").unwrap().len(), 1);
}

#[test]
fn history_of_a_gone_or_completed_service_is_not_appended() {
    let store = open();
    created(&store);
    update(&store, "s1", |r| r.state = CallbackState::Completed);

    let completed = store
        .append_routing("s1", &[event(1, entered())], None)
        .unwrap()
        .without_waiting();
    let gone = store
        .append_routing("nobody", &[event(1, entered())], None)
        .unwrap()
        .without_waiting();

    assert!(!completed && !gone);
    assert!(store.routing_history("s1").unwrap().is_empty());
}

/// The agent tests' clock (`by_agent.rs`'s).
fn agent_at(secs: u64) -> Timestamp {
    Timestamp::from_millis(1_000_000 + secs * 1000)
}

/// `agent` reserved at `secs` on the agent tests' clock.
fn reserved_by(agent: &str, secs: u64) -> RoutingEvent {
    RoutingEvent {
        at: agent_at(secs),
        step: 1,
        kind: RoutingEventKind::Reserved {
            agent: agent.into(),
        },
    }
}

/// A service in `state` handled by `agent` (or by nobody), as `by_agent.rs` builds it.
fn handled(id: &str, agent: Option<&str>, state: CallbackState) -> ServiceRecord {
    let at = agent_at;
    let mut record = ServiceRecord::new(id, "callback", Preset::ChatDelayed, at(0));
    if let Some(agent) = agent {
        record.note_routing(&[reserved_by(agent, 1)]);
        record.reserved_agent = Some(agent.into());
        record.enter(CallbackState::Processing, None, at(2), "handled");
    }
    if state != CallbackState::Processing || agent.is_none() {
        record.enter(state, None, at(3), "moved");
    }
    record
}

const HISTORY_STATES: [CallbackState; 3] = [
    CallbackState::Scheduled,
    CallbackState::Processing,
    CallbackState::Completed,
];

fn handled_ids(store: &PgStore, agent: &str, states: &[CallbackState]) -> Vec<String> {
    store
        .services_handled_by(agent, states, &|_| true, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[test]
fn an_agent_reads_only_the_services_it_handled_in_the_wanted_states() {
    let store = open();
    store
        .insert_services(&[
            handled("ann-done", Some("ann"), CallbackState::Completed),
            handled("ann-live", Some("ann"), CallbackState::Processing),
            handled("ann-redial", Some("ann"), CallbackState::Scheduled),
            handled("ann-requeued", Some("ann"), CallbackState::Queued),
            handled("bob-done", Some("bob"), CallbackState::Completed),
            handled("bob-live", Some("bob"), CallbackState::Processing),
            handled("nobody-waiting", None, CallbackState::Scheduled),
            handled("nobody-done", None, CallbackState::Completed),
        ])
        .unwrap()
        .without_waiting();

    assert_eq!(
        handled_ids(&store, "ann", &HISTORY_STATES),
        ["ann-done", "ann-live", "ann-redial"]
    );
    assert_eq!(
        handled_ids(&store, "bob", &HISTORY_STATES),
        ["bob-done", "bob-live"]
    );
    assert!(
        handled_ids(&store, "an", &HISTORY_STATES).is_empty(),
        "a prefix is not it"
    );
    let read = store
        .services_handled_by("ann", &HISTORY_STATES, &|r| r.id != "ann-live", 10)
        .unwrap();
    assert_eq!(ids(&read), ["ann-done", "ann-redial"]);
}

#[test]
fn the_agents_follow_updates_requeues_appends_and_purges() {
    let store = open();
    insert(&store, &handled("s1", None, CallbackState::Queued));
    let at = agent_at;
    assert!(handled_ids(&store, "ann", &HISTORY_STATES).is_empty());

    store
        .change_service("s1", &mut |r, appended| {
            appended.push(reserved_by("ann", 4));
            r.reserved_agent = Some("ann".into());
            r.enter(CallbackState::Processing, None, at(5), "handled");
            Ok(())
        })
        .unwrap()
        .without_waiting();
    assert_eq!(handled_ids(&store, "ann", &HISTORY_STATES), ["s1"]);

    update(&store, "s1", |r| {
        r.reserved_agent = None;
        r.enter(CallbackState::Queued, None, at(6), "no answer");
    });
    assert!(handled_ids(&store, "ann", &HISTORY_STATES).is_empty());
    assert_eq!(handled_ids(&store, "ann", &[CallbackState::Queued]), ["s1"]);
    store
        .change_service("s1", &mut |r, appended| {
            appended.push(reserved_by("bob", 7));
            r.reserved_agent = Some("bob".into());
            r.enter(CallbackState::Processing, None, at(8), "handled");
            r.enter(CallbackState::Completed, None, at(9), "done");
            Ok(())
        })
        .unwrap()
        .without_waiting();
    assert_eq!(handled_ids(&store, "ann", &HISTORY_STATES), ["s1"]);
    assert_eq!(handled_ids(&store, "bob", &HISTORY_STATES), ["s1"]);
    assert_eq!(
        store.routing_history("s1").unwrap(),
        [reserved_by("ann", 4), reserved_by("bob", 7)],
        "the events appended with the changes, in order"
    );

    let purged = store
        .purge_expired(Timestamp::from_millis(u64::MAX), 10)
        .unwrap()
        .without_waiting();
    assert_eq!(purged.removed, ["s1"]);
    assert!(handled_ids(&store, "ann", &CallbackState::ALL).is_empty());
    assert!(handled_ids(&store, "bob", &CallbackState::ALL).is_empty());
}

#[test]
fn a_routing_append_that_names_the_handling_agent_updates_the_agents() {
    let store = open();
    let mut record = handled("s1", None, CallbackState::Queued);
    record.enter(CallbackState::Processing, None, agent_at(5), "handled");
    insert(&store, &record);

    assert!(store
        .append_routing("s1", &[reserved_by("ann", 5)], None)
        .unwrap()
        .without_waiting());
    assert_eq!(
        store.service("s1").unwrap().unwrap().handling_agents(),
        ["ann"]
    );
    assert_eq!(handled_ids(&store, "ann", &HISTORY_STATES), ["s1"]);

    assert!(store
        .append_routing("s1", &[reserved_by("bob", 6)], None)
        .unwrap()
        .without_waiting());
    assert_eq!(handled_ids(&store, "ann", &HISTORY_STATES), ["s1"]);
    assert!(handled_ids(&store, "bob", &HISTORY_STATES).is_empty());
}

// The time index (ported from the sled engine's `by_time.rs`).

/// A service `id` at `desired` of configured service `name` in `state`.
fn placed(id: &str, desired: u64, name: &str, state: CallbackState) -> ServiceRecord {
    let mut r = record(id, desired, desired + 1_000_000);
    r.customer_number = Some(format!("555{id}"));
    r.service_name = name.to_string();
    r.state = state;
    r
}

fn selection<'a>(
    from: Option<u64>,
    to: Option<u64>,
    states: &'a [CallbackState],
    services: &'a [String],
) -> TimeSelection<'a> {
    TimeSelection {
        from: from.map(Timestamp::from_millis),
        to: to.map(Timestamp::from_millis),
        states,
        services,
    }
}

/// (id, desired time, state) of every service in `[from, to)`, as visited.
fn window(
    store: &PgStore,
    from: Option<u64>,
    to: Option<u64>,
) -> Vec<(String, u64, CallbackState)> {
    let mut seen = Vec::new();
    store
        .visit_by_time(
            from.map(Timestamp::from_millis),
            to.map(Timestamp::from_millis),
            &mut |s| {
                seen.push((s.id.to_string(), s.desired_time.as_millis(), s.state));
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    seen
}

/// The ids `selection` holds, read the slow way: every service of its window.
fn walked(store: &PgStore, selection: &TimeSelection<'_>) -> Vec<(String, CallbackState)> {
    let mut ids = Vec::new();
    store
        .visit_by_time(selection.from, selection.to, &mut |s| {
            if selection.keeps(s) {
                ids.push((s.id.to_string(), s.state));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    ids
}

#[test]
fn a_window_holds_what_is_in_it_in_time_order_with_its_summary() {
    let store = open();
    for (id, at) in [("c", 30), ("a", 10), ("b", 20), ("b2", 20), ("d", 40)] {
        insert(&store, &placed(id, at, "x", CallbackState::Queued));
    }
    let ids =
        |from, to| -> Vec<String> { window(&store, from, to).into_iter().map(|e| e.0).collect() };

    assert_eq!(
        ids(Some(20), Some(40)),
        ["b", "b2", "c"],
        "from inclusive, to exclusive"
    );
    assert_eq!(ids(None, Some(20)), ["a"]);
    assert_eq!(ids(Some(31), None), ["d"]);
    assert_eq!(ids(None, None).len(), 5);
    let mut first = Vec::new();
    store
        .visit_by_time(None, None, &mut |s| {
            first.push((
                s.id.to_string(),
                s.desired_time,
                s.state,
                s.service_name.to_string(),
                s.customer_number.map(str::to_string),
            ));
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(
        first,
        [(
            "a".to_string(),
            Timestamp::from_millis(10),
            CallbackState::Queued,
            "x".to_string(),
            Some("555a".to_string())
        )],
        "a break stops the visit"
    );
}

#[test]
fn a_visit_pages_through_a_window_larger_than_a_page() {
    let store = open();
    // Three services at each time, so that the first page (256 rows) ends between two of one
    // time (rows 255 and 256 are both at 85): the next page starts after the id, not the time.
    let records: Vec<ServiceRecord> = (0..700u64)
        .map(|i| placed(&format!("s{i:03}"), i / 3, "x", CallbackState::Queued))
        .collect();
    store.insert_services(&records).unwrap().without_waiting();

    let seen: Vec<String> = window(&store, None, None)
        .into_iter()
        .map(|e| e.0)
        .collect();
    let expected: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(seen, expected);
    let mut visited = 0;
    store
        .visit_by_time(None, None, &mut |_| {
            visited += 1;
            if visited == 300 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(visited, 300, "stopped where the visit broke");
}

#[test]
fn changes_reschedules_and_deletions_keep_the_time_index_in_step() {
    let store = open();
    insert(&store, &placed("moved", 100, "x", CallbackState::Queued));
    insert(&store, &placed("done", 200, "x", CallbackState::Queued));
    insert(&store, &placed("expires", 300, "x", CallbackState::Queued));

    store
        .change_service("moved", &mut |r, _| {
            r.reschedule(
                Timestamp::from_millis(5_000),
                Timestamp::from_millis(9_000_000),
                Timestamp::from_millis(150),
            )
            .map_err(Refusal::of)
        })
        .unwrap()
        .without_waiting();
    store
        .change_service("done", &mut |r, _| {
            r.cancel(
                CallbackReason::CancelledByAdmin,
                Timestamp::from_millis(250),
            )
            .map_err(Refusal::of)
        })
        .unwrap()
        .without_waiting();
    update(&store, "expires", |r| {
        r.expire_at = Timestamp::from_millis(400)
    });
    let purged = store
        .purge_expired(Timestamp::from_millis(400), 100)
        .unwrap()
        .without_waiting();

    assert_eq!(purged.removed, ["expires"]);
    assert_eq!(
        window(&store, None, None),
        [
            ("done".to_string(), 200, CallbackState::Completed),
            ("moved".to_string(), 5_000, CallbackState::Scheduled),
        ],
        "rescheduled moved, cancelled shows its new state, expired gone"
    );
}

const HOUR: u64 = time_counts::BUCKET_MS;

fn count(store: &PgStore, selection: &TimeSelection<'_>) -> u64 {
    store.count_by_time(selection).unwrap().total()
}

#[test]
fn counts_follow_creates_reschedules_state_changes_and_expiry() {
    let store = open();
    let queued = CallbackState::Queued;
    insert(&store, &placed("a", 10 * HOUR + 100, "x", queued));
    insert(&store, &placed("b", 10 * HOUR + 200, "y", queued));
    store
        .insert_services(&[
            placed("c", 12 * HOUR, "x", CallbackState::Scheduled),
            placed("d", 13 * HOUR - 1, "x", CallbackState::Completed),
        ])
        .unwrap()
        .without_waiting();
    let everything = selection(None, None, &[], &[]);
    let hours_10_to_12 = selection(Some(10 * HOUR), Some(12 * HOUR), &[], &[]);
    assert_eq!(count(&store, &everything), 4);
    assert_eq!(count(&store, &hours_10_to_12), 2);

    update(&store, "a", |r| {
        r.desired_time = Timestamp::from_millis(12 * HOUR + 5)
    });
    assert_eq!(count(&store, &hours_10_to_12), 1, "a left hours 10-11");
    assert_eq!(
        count(
            &store,
            &selection(Some(12 * HOUR), Some(13 * HOUR), &[], &[])
        ),
        3
    );

    update(&store, "b", |r| r.state = CallbackState::Routing);
    let states = [queued];
    let queued_only = selection(None, None, &states, &[]);
    assert_eq!(walked(&store, &queued_only), [("a".to_string(), queued)]);
    assert_eq!(count(&store, &queued_only), 1);
    let counts = store.count_by_time(&everything).unwrap();
    assert_eq!(
        (
            counts.of(CallbackState::Routing),
            counts.of(CallbackState::Scheduled),
            counts.of(CallbackState::Completed),
            counts.of(CallbackState::Queued),
        ),
        (1, 1, 1, 1)
    );

    update(&store, "d", |r| r.expire_at = Timestamp::from_millis(1));
    store
        .purge_expired(Timestamp::from_millis(2), 100)
        .unwrap()
        .without_waiting();
    let services = ["x".to_string()];
    assert_eq!(count(&store, &selection(None, None, &[], &services)), 2);
    let unknown = ["unknown".to_string()];
    assert_eq!(count(&store, &selection(None, None, &[], &unknown)), 0);
}

#[test]
fn pages_agree_with_a_walk() {
    let store = open();
    let records: Vec<ServiceRecord> = [0u64, 1, 3, 4]
        .iter()
        .flat_map(|&hour| {
            (0..7).map(move |i| {
                let state = if i % 2 == 0 {
                    CallbackState::Completed
                } else {
                    CallbackState::Scheduled
                };
                placed(
                    &format!("h{hour}-{i}"),
                    hour * HOUR + i * 8 * 60_000,
                    "x",
                    state,
                )
            })
        })
        .collect();
    store.insert_services(&records).unwrap().without_waiting();
    let window = selection(Some(HOUR / 2), Some(4 * HOUR + 20 * 60_000), &[], &[]);
    let all: Vec<String> = walked(&store, &window).into_iter().map(|e| e.0).collect();
    assert_eq!(all.len(), 3 + 7 + 7 + 3);
    assert_eq!(count(&store, &window), 20);

    for (offset, limit) in [(0, 5), (2, 3), (3, 7), (9, 10), (17, 10), (19, 5), (40, 5)] {
        let page = store.page_by_time(&window, offset, limit).unwrap();
        let start = (offset as usize).min(all.len());
        let end = (start + limit).min(all.len());
        assert_eq!(page, all[start..end], "offset {offset}, limit {limit}");
    }
    assert!(store.page_by_time(&window, 0, 0).unwrap().is_empty());
    let states = [CallbackState::Scheduled];
    let scheduled = selection(Some(HOUR / 2), None, &states, &[]);
    let page = store.page_by_time(&scheduled, 1, 2).unwrap();
    assert_eq!(
        page,
        ["h1-1", "h1-3"],
        "h0-5 is the first SCHEDULED one in the window"
    );
}

#[test]
fn counts_and_pages_match_a_walk_on_random_data() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let mut rng = StdRng::seed_from_u64(0x00c0_0a75);
    let store = open();
    let names = ["a", "b", "c"];
    let state_of = |rng: &mut StdRng| CallbackState::ALL[rng.random_range(0..5)];
    let time_of = |rng: &mut StdRng| {
        let hour = rng.random_range(0..40u64) * HOUR;
        if rng.random_range(0..4) == 0 {
            hour
        } else {
            hour + rng.random_range(0..HOUR)
        }
    };
    let records: Vec<ServiceRecord> = (0..400)
        .map(|i| {
            let mut r = placed(
                &format!("s{i:04}"),
                time_of(&mut rng),
                names[rng.random_range(0..3)],
                state_of(&mut rng),
            );
            r.expire_at = Timestamp::from_millis(1_000_000_000 + rng.random_range(0..2u64));
            r
        })
        .collect();
    store.insert_services(&records).unwrap().without_waiting();
    for _ in 0..100 {
        let id = format!("s{:04}", rng.random_range(0..400));
        let (at, state) = (time_of(&mut rng), state_of(&mut rng));
        let move_it = rng.random_range(0..3);
        update(&store, &id, |r| {
            if move_it != 1 {
                r.desired_time = Timestamp::from_millis(at);
            }
            if move_it != 0 {
                r.state = state;
            }
        });
    }
    store
        .purge_expired(Timestamp::from_millis(1_000_000_000), 10_000)
        .unwrap()
        .without_waiting();

    let bound = |rng: &mut StdRng| match rng.random_range(0..4) {
        0 => None,
        1 => Some(rng.random_range(0..42u64) * HOUR),
        _ => Some(rng.random_range(0..42 * HOUR)),
    };
    for round in 0..100 {
        let (from, to) = (bound(&mut rng), bound(&mut rng));
        let states: Vec<CallbackState> = CallbackState::ALL
            .into_iter()
            .filter(|_| rng.random_range(0..3) == 0)
            .collect();
        let services: Vec<String> = names
            .iter()
            .chain(&["unknown"])
            .filter(|_| rng.random_range(0..3) == 0)
            .map(|n| n.to_string())
            .collect();
        let window = selection(from, to, &states, &services);
        let all = walked(&store, &window);

        let counts = store.count_by_time(&window).unwrap();
        for state in CallbackState::ALL {
            let expected = all.iter().filter(|e| e.1 == state).count() as u64;
            assert_eq!(
                counts.of(state),
                expected,
                "round {round}: {state} in {from:?}..{to:?}"
            );
        }
        let offset = rng.random_range(0..=all.len() as u64 + 3);
        let limit = rng.random_range(1..60);
        let page = store.page_by_time(&window, offset, limit).unwrap();
        let start = (offset as usize).min(all.len());
        let end = (start + limit).min(all.len());
        let expected: Vec<String> = all[start..end].iter().map(|e| e.0.clone()).collect();
        assert_eq!(page, expected, "round {round}: page at {offset} of {limit}");
    }
}

#[test]
fn slots_count_one_configured_service_in_five_minute_steps() {
    let store = open();
    const SLOT: u64 = time_counts::SLOT_MS;
    store
        .insert_services(&[
            placed("a", SLOT + 1, "x", CallbackState::Queued),
            placed("b", 2 * SLOT - 1, "x", CallbackState::Completed),
            placed("c", 3 * SLOT, "x", CallbackState::Queued),
            placed("d", 3 * SLOT, "y", CallbackState::Queued),
            placed("e", 5 * SLOT, "x", CallbackState::Queued),
        ])
        .unwrap()
        .without_waiting();
    let slots = |from, to, states: &[CallbackState]| {
        store.count_per_slot(
            Timestamp::from_millis(from),
            Timestamp::from_millis(to),
            "x",
            states,
        )
    };
    let at = |slot: u64| Timestamp::from_millis(slot * SLOT);

    assert_eq!(
        slots(SLOT + 7, 3 * SLOT + 1, &[]),
        [(at(1), 2), (at(3), 1)],
        "rounded out"
    );
    assert_eq!(
        slots(0, 5 * SLOT, &[]),
        [(at(1), 2), (at(3), 1)],
        "the end's slot is out"
    );
    assert_eq!(
        slots(0, 6 * SLOT, &[CallbackState::Queued]),
        [(at(1), 1), (at(3), 1), (at(5), 1)]
    );
    assert!(slots(4 * SLOT, 4 * SLOT, &[]).is_empty());
}

// The status outbox (ported from the sled engine's `status.rs`).

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

fn cancel(store: &PgStore, id: &str) {
    store
        .change_service(id, &mut |r, _| {
            r.cancel(CallbackReason::Cancelled, NOW)
                .map_err(Refusal::of)
        })
        .unwrap()
        .without_waiting()
        .expect("found");
}

#[test]
fn a_reporting_service_gets_its_events_from_create_and_from_a_change_in_order() {
    let store = open();
    insert(&store, &queued("s1", true));
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
    assert!(
        entries.windows(2).all(|w| w[0].seq < w[1].seq),
        "seqs increase"
    );
    assert!(entries.iter().all(|e| e.delivery == Delivery::Pending));
    assert_eq!(
        store.status_pending_services().unwrap(),
        ["s1".to_string()].into()
    );
    assert_eq!(
        store.service("s1").unwrap().unwrap().state,
        CallbackState::Completed
    );
}

#[test]
fn a_service_without_status_notifications_leaves_the_outbox_empty() {
    let store = open();
    insert(&store, &queued("s2", false));
    cancel(&store, "s2");
    assert!(store.status_notifications("s2").unwrap().is_empty());
    assert!(store.status_pending_services().unwrap().is_empty());
    assert_eq!(rows_of(&store, "status_outbox", "service_id", "s2"), 0);
}

#[test]
fn attempts_are_recorded_and_delivered_entries_leave_the_pending_ones() {
    let store = open();
    insert(&store, &queued("s1", true));
    let first = store.next_status_notification("s1").unwrap().unwrap();
    assert_eq!(first.event, StatusEvent::ServiceCreate, "the oldest first");

    let mut tried = first.clone();
    tried.attempts = 1;
    store
        .record_status_attempt("s1", &tried)
        .unwrap()
        .without_waiting();
    assert_eq!(
        store.next_status_notification("s1").unwrap(),
        Some(tried.clone()),
        "still pending"
    );
    let mut delivered = tried;
    delivered.delivery = Delivery::Delivered;
    store
        .record_status_attempt("s1", &delivered)
        .unwrap()
        .without_waiting();

    let next = store.next_status_notification("s1").unwrap().unwrap();
    assert_eq!(next.event, StatusEvent::VirtualIxnCreate);
    assert_eq!(
        store.status_notifications("s1").unwrap()[0],
        delivered,
        "kept for the console"
    );
    let mut gone = next.clone();
    gone.seq += 1_000;
    store
        .record_status_attempt("s1", &gone)
        .unwrap()
        .without_waiting();
    assert_eq!(
        store.status_notifications("s1").unwrap().len(),
        2,
        "no entry is made up"
    );
    store
        .record_status_attempt("nobody", &next)
        .unwrap()
        .without_waiting();
}

#[tokio::test]
async fn the_status_worker_is_woken_after_a_commit_that_wrote_outbox_entries() {
    let store = open();
    insert(&store, &queued("quiet", false));
    insert(&store, &queued("s1", true));

    let woken = tokio::time::timeout(Duration::from_secs(5), store.status_written())
        .await
        .expect("woken by the create");
    assert_eq!(woken.durable().await.unwrap(), ["s1".to_string()].into());

    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.status_written().await.without_waiting() })
    };
    cancel(&store, "quiet");
    cancel(&store, "s1");
    let woken = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken by the cancel")
        .unwrap();
    assert_eq!(
        woken,
        ["s1".to_string()].into(),
        "only the reporting service"
    );
}
