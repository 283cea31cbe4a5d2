//! The migration runner. The migrations themselves are numbered files in the repository's
//! top-level `migrations/` folder, compiled into this module.
//!
//! The schema version lives in the `meta` tree. Opening a database applies every migration
//! newer than it, in order, flushing after each; a database newer than this binary is refused.

use sled::Tree;

use super::stored::meta::SchemaVersionV1;
use super::{codec, tree, StoreError};

#[path = "../../migrations/mod.rs"]
mod steps;

pub use steps::{Migration, MIGRATIONS};

const SCHEMA_VERSION: &[u8] = b"schema_version";

/// The schema version this binary writes: the newest migration's number.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Applies pending migrations to `db`; returns the names of those applied.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] for a database from a newer binary, or a failing migration.
pub fn run(db: &sled::Db) -> Result<Vec<String>, StoreError> {
    let meta = db.open_tree(tree::META)?;
    let current = read_version(&meta)?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest,
        });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        (migration.apply)(db)?;
        write_version(&meta, migration.version)?;
        db.flush()?;
        let name = format!("{:04}_{}", migration.version, migration.name);
        tracing::info!(migration = %name, "applied data migration");
        applied.push(name);
    }
    Ok(applied)
}

/// The schema version stored in `meta` (0 for a new database).
///
/// # Errors
/// The value is unreadable.
pub fn read_version(meta: &Tree) -> Result<u32, StoreError> {
    match meta.get(SCHEMA_VERSION)? {
        Some(bytes) => Ok(codec::read::<SchemaVersionV1>(&bytes, "schema version")?.0),
        None => Ok(0),
    }
}

fn write_version(meta: &Tree, version: u32) -> Result<(), StoreError> {
    meta.insert(SCHEMA_VERSION, codec::write(&SchemaVersionV1(version))?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::CallbackState;
    use crate::domain::time::Timestamp;
    use crate::store::{keys, stored, SledStore, Store};

    /// A service as schema 1 stored it (service format 1).
    fn record_v1(id: &str, customer: &str) -> steps::ServiceRecordV1 {
        let created = 1_000;
        steps::ServiceRecordV1 {
            id: id.into(),
            service_name: "chat-delay".into(),
            preset: steps::PresetV1::ChatDelayed,
            options: BTreeMap::from([("_ttl".to_string(), "86400".to_string())]),
            user_data: BTreeMap::from([("usr_reason".to_string(), "billing".to_string())]),
            owner: Some("alice".into()),
            customer_number: Some(customer.into()),
            device_os: None,
            device_notification_id: None,
            state: steps::StateV1::Queued,
            reason: None,
            created_at_ms: created,
            desired_time_ms: created,
            expire_at_ms: created + 86_400_000,
            queued_at_ms: Some(created),
            state_history: Vec::new(),
            routing_history: Vec::new(),
            reserved_agent: None,
            chat_session_id: None,
        }
    }

    fn state_of(state: steps::StateV1) -> CallbackState {
        match state {
            steps::StateV1::Scheduled => CallbackState::Scheduled,
            steps::StateV1::Queued => CallbackState::Queued,
            steps::StateV1::Routing => CallbackState::Routing,
            steps::StateV1::Processing => CallbackState::Processing,
            steps::StateV1::Completed => CallbackState::Completed,
        }
    }

    /// Writes a database exactly as schema version 1 laid it out: format-1 records, expiry
    /// and service-state index, and no customer index.
    fn write_schema_v1(db: &sled::Db, records: &[steps::ServiceRecordV1]) {
        (MIGRATIONS[0].apply)(db).unwrap();
        let meta = db.open_tree(tree::META).unwrap();
        write_version(&meta, 1).unwrap();
        let services = db.open_tree(tree::SERVICES).unwrap();
        let by_expiry = db.open_tree(tree::BY_EXPIRY).unwrap();
        let by_state = db.open_tree(tree::BY_SERVICE_STATE).unwrap();
        for r in records {
            services
                .insert(r.id.as_bytes(), codec::encode(1, r).unwrap())
                .unwrap();
            by_expiry
                .insert(
                    keys::time_key(Timestamp::from_millis(r.expire_at_ms), &r.id),
                    &[],
                )
                .unwrap();
            by_state
                .insert(
                    keys::service_state_key(&r.service_name, state_of(r.state), &r.id),
                    &[],
                )
                .unwrap();
        }
    }

    #[test]
    fn a_schema_v1_database_is_migrated_and_its_customers_become_searchable() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        write_schema_v1(
            &db,
            &[
                record_v1("a", "555"),
                record_v1("b", "555"),
                record_v1("c", "777"),
            ],
        );

        let store = Store::new(
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap(),
        );

        assert_eq!(store.schema_version().unwrap(), latest_version());
        assert_eq!(
            store.migrations_applied(),
            [
                "0002_customer_index",
                "0003_agents",
                "0004_service_format_2",
                "0005_notifications",
                "0006_push",
                "0007_owner_index",
                "0008_time_index",
                "0009_agent_reason",
                "0010_agent_index",
                "0011_routing_history"
            ]
        );
        let a = store
            .service("a")
            .unwrap()
            .expect("a readable in the new format");
        assert_eq!(a.owner.as_deref(), Some("alice"));
        assert_eq!(a.user_data["usr_reason"], "billing");
        assert_eq!(a.expire_at, Timestamp::from_millis(1_000).plus_secs(86_400));
        assert_eq!(a.route, None);
        let ids: Vec<String> = store
            .services_by_customer("555", &|_| true, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            store
                .services_by_customer("777", &|_| true, 10)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_schema_v5_database_gets_its_undelivered_comet_notifications_indexed() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        for migration in &MIGRATIONS[..5] {
            (migration.apply)(&db).unwrap();
        }
        write_version(&db.open_tree(tree::META).unwrap(), 5).unwrap();
        let services = db.open_tree(tree::SERVICES).unwrap();
        let notifications = db.open_tree(tree::NOTIFICATIONS).unwrap();
        let now = Timestamp::from_millis(1_000);
        for (id, device_os, delivered) in [
            ("comet-1", Some("comet"), false),
            ("comet-2", Some("comet"), true),
            ("polling", None, false),
        ] {
            let mut record = crate::domain::service::ServiceRecord::new(
                id,
                "chat-delay",
                Preset::ChatDelayed,
                now,
            );
            record.owner = Some("alice".into());
            record.device_os = device_os.map(str::to_string);
            services
                .insert(id, stored::service::encode_v2(&record, &[]).unwrap())
                .unwrap();
            let notification = crate::domain::notification::Notification {
                seq: 7,
                tag: format!("t.{id}"),
                message: "{}".into(),
                created_at: now,
                delivered,
            };
            notifications
                .insert(
                    keys::service_seq_key(id, 7),
                    stored::notification::encode(&notification).unwrap(),
                )
                .unwrap();
        }

        let store = Store::new(
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap(),
        );

        assert_eq!(
            store.migrations_applied(),
            [
                "0006_push",
                "0007_owner_index",
                "0008_time_index",
                "0009_agent_reason",
                "0010_agent_index",
                "0011_routing_history"
            ]
        );
        let listed: Vec<String> = store
            .undelivered_for_user("alice", 10)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(listed, ["comet-1"], "undelivered and comet only");
    }

    #[test]
    fn a_schema_v6_database_gets_its_services_indexed_by_owner() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        for migration in &MIGRATIONS[..6] {
            (migration.apply)(&db).unwrap();
        }
        write_version(&db.open_tree(tree::META).unwrap(), 6).unwrap();
        let services = db.open_tree(tree::SERVICES).unwrap();
        let by_state = db.open_tree(tree::BY_SERVICE_STATE).unwrap();
        let now = Timestamp::from_millis(1_000);
        for (id, service, owner) in [
            ("a1", "chat-delay", Some("alice")),
            ("a2", "chat-delay", Some("alice")),
            ("a3", "chat-immediate", Some("alice")),
            ("b1", "chat-delay", Some("bob")),
            ("n1", "chat-delay", None),
        ] {
            let mut record =
                crate::domain::service::ServiceRecord::new(id, service, Preset::ChatDelayed, now);
            record.owner = owner.map(str::to_string);
            services
                .insert(id, stored::service::encode_v2(&record, &[]).unwrap())
                .unwrap();
            by_state
                .insert(keys::service_state_key(service, record.state, id), &[])
                .unwrap();
        }

        let store = Store::new(
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap(),
        );

        assert_eq!(
            store.migrations_applied(),
            [
                "0007_owner_index",
                "0008_time_index",
                "0009_agent_reason",
                "0010_agent_index",
                "0011_routing_history"
            ]
        );
        let owned = |owner: &str, service: &str| -> Vec<String> {
            store
                .services_of_owner(owner, service, &|_| true, 10)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(owned("alice", "chat-delay"), ["a1", "a2"]);
        assert_eq!(owned("alice", "chat-immediate"), ["a3"]);
        assert_eq!(owned("bob", "chat-delay"), ["b1"]);
        assert!(owned("carol", "chat-delay").is_empty());
        assert_eq!(
            store.active_counts()["chat-delay"],
            4,
            "the counts are rebuilt from the index too"
        );
    }

    #[test]
    fn a_schema_v7_database_gets_every_service_indexed_by_desired_time() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        for migration in &MIGRATIONS[..7] {
            (migration.apply)(&db).unwrap();
        }
        write_version(&db.open_tree(tree::META).unwrap(), 7).unwrap();
        let services = db.open_tree(tree::SERVICES).unwrap();
        for (id, desired, state, customer) in [
            ("late", 3_000, CallbackState::Scheduled, Some("555")),
            ("early", 1_000, CallbackState::Completed, None),
            ("middle", 2_000, CallbackState::Processing, Some("777")),
        ] {
            let mut record = crate::domain::service::ServiceRecord::new(
                id,
                "chat-delay",
                Preset::ChatDelayed,
                Timestamp::from_millis(500),
            );
            record.desired_time = Timestamp::from_millis(desired);
            record.state = state;
            record.customer_number = customer.map(str::to_string);
            record.reason = (state == CallbackState::Completed)
                .then_some(crate::domain::service::CallbackReason::FailTimeoutTtl);
            record.user_data.insert("usr_k".into(), "v".into());
            services
                .insert(id, stored::service::encode_v2(&record, &[]).unwrap())
                .unwrap();
        }

        let store = Store::new(
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap(),
        );

        assert_eq!(
            store.migrations_applied(),
            [
                "0008_time_index",
                "0009_agent_reason",
                "0010_agent_index",
                "0011_routing_history"
            ]
        );
        let mut seen = Vec::new();
        store
            .visit_by_time(None, None, &mut |s| {
                seen.push((
                    s.id.to_string(),
                    s.desired_time.as_millis(),
                    s.state,
                    s.customer_number.map(str::to_string),
                ));
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(
            seen,
            [
                ("early".into(), 1_000, CallbackState::Completed, None),
                (
                    "middle".into(),
                    2_000,
                    CallbackState::Processing,
                    Some("777".into())
                ),
                (
                    "late".into(),
                    3_000,
                    CallbackState::Scheduled,
                    Some("555".into())
                ),
            ],
            "every record, in desired-time order, with its state and customer"
        );
    }

    #[test]
    fn a_schema_v8_agent_still_reads_with_no_reason_code() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        for migration in &MIGRATIONS[..8] {
            (migration.apply)(&db).unwrap();
        }
        write_version(&db.open_tree(tree::META).unwrap(), 8).unwrap();
        let old = steps::AgentRecordV1 {
            config: steps::AgentConfigV1 {
                id: "kristi".into(),
                name: "Kristi Sippola".into(),
                groups: vec!["Billing".into()],
                place: Some("place_101".into()),
                place_groups: Vec::new(),
                skills: BTreeMap::from([("English".to_string(), 20)]),
                capacity: BTreeMap::from([("chat".to_string(), 2)]),
                auto_answer: true,
            },
            state: steps::AgentStateV1::NotReady,
            state_since_ms: 7_000,
            idle_since_ms: 6_000,
        };
        db.open_tree(tree::AGENTS)
            .unwrap()
            .insert("kristi", codec::encode(1, &old).unwrap())
            .unwrap();

        let store = Store::new(
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap(),
        );

        assert_eq!(
            store.migrations_applied(),
            [
                "0009_agent_reason",
                "0010_agent_index",
                "0011_routing_history"
            ]
        );
        let agent = store.agent("kristi").unwrap().expect("the agent is kept");
        assert_eq!(agent.config.name, "Kristi Sippola");
        assert_eq!(agent.config.skills["English"], 20);
        assert!(agent.config.auto_answer);
        assert_eq!(agent.state, crate::domain::agent::AgentState::NotReady);
        assert_eq!(agent.state_since, Timestamp::from_millis(7_000));
        assert_eq!(agent.idle_since, Timestamp::from_millis(6_000));
        assert_eq!(agent.reason, None, "format 1 had no reason code");
    }

    #[test]
    fn a_schema_v9_database_gets_its_handled_services_indexed_by_agent() {
        use crate::domain::service::{CallbackReason, RoutingEvent, RoutingEventKind};

        let db = sled::Config::new().temporary(true).open().unwrap();
        for migration in &MIGRATIONS[..9] {
            (migration.apply)(&db).unwrap();
        }
        write_version(&db.open_tree(tree::META).unwrap(), 9).unwrap();
        let at = |secs: u64| Timestamp::from_millis(1_000_000 + secs * 1000);
        let reserved = |agent: &str, secs: u64| RoutingEvent {
            at: at(secs),
            step: 1,
            kind: RoutingEventKind::Reserved {
                agent: agent.into(),
            },
        };
        let new = |id: &str| {
            let mut record = crate::domain::service::ServiceRecord::new(
                id,
                "chat-delay",
                Preset::ChatDelayed,
                at(0),
            );
            record.expire_at = at(100_000);
            let entered = RoutingEvent {
                at: at(0),
                step: 1,
                kind: RoutingEventKind::Entered {
                    target: "Billing@StatServer.GA".into(),
                },
            };
            (record, vec![entered])
        };
        // Handled by kristi, requeued, handled by ann and completed.
        let (mut both, mut both_history) = new("both");
        both_history.push(reserved("kristi", 1));
        both.enter(CallbackState::Processing, None, at(2), "handled");
        both.enter(CallbackState::Queued, None, at(3), "requeued");
        both_history.push(RoutingEvent {
            at: at(3),
            step: 1,
            kind: RoutingEventKind::Released {
                agent: "kristi".into(),
                why: "left".into(),
            },
        });
        both_history.push(reserved("ann", 4));
        both.reserved_agent = Some("ann".into());
        both.enter(CallbackState::Processing, None, at(5), "handled");
        both.enter(
            CallbackState::Completed,
            Some(CallbackReason::AgentConnected),
            at(6),
            "done",
        );
        // A voice callback kristi dialed, waiting for its redial.
        let (mut redial, mut redial_history) = new("redial");
        redial_history.push(reserved("kristi", 1));
        redial.reserved_agent = Some("kristi".into());
        redial.enter(CallbackState::Processing, None, at(2), "handled");
        redial_history.push(RoutingEvent {
            at: at(3),
            step: 0,
            kind: RoutingEventKind::Dialed {
                agent: "kristi".into(),
                outcome: "busy".into(),
            },
        });
        redial.reserved_agent = None;
        redial.enter(CallbackState::Scheduled, None, at(3), "redial");
        // Nobody handled these.
        let (mut waiting, waiting_history) = new("waiting");
        waiting.enter(CallbackState::Scheduled, None, at(1), "scheduled");
        let (mut expired, expired_history) = new("expired");
        expired.enter(
            CallbackState::Completed,
            Some(CallbackReason::FailTimeoutTtl),
            at(1),
            "ttl",
        );
        let services = db.open_tree(tree::SERVICES).unwrap();
        for (record, history) in [
            (&both, &both_history),
            (&redial, &redial_history),
            (&waiting, &waiting_history),
            (&expired, &expired_history),
        ] {
            services
                .insert(
                    record.id.as_str(),
                    stored::service::encode_v2(record, history).unwrap(),
                )
                .unwrap();
        }
        // As the store reads it back: the reservations noted from its history.
        both.note_routing(&both_history);

        let store = Store::new(
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap(),
        );

        assert_eq!(
            store.migrations_applied(),
            ["0010_agent_index", "0011_routing_history"]
        );
        assert_eq!(store.schema_version().unwrap(), 11);
        let history_states = [
            CallbackState::Scheduled,
            CallbackState::Processing,
            CallbackState::Completed,
        ];
        let handled = |agent: &str| -> Vec<String> {
            store
                .services_handled_by(agent, &history_states, &|_| true, 100)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(handled("kristi"), ["both", "redial"]);
        assert_eq!(handled("ann"), ["both"]);
        assert!(handled("nobody").is_empty());
        let found = store
            .services_handled_by("ann", &history_states, &|_| true, 100)
            .unwrap();
        assert_eq!(found, [both.clone()], "the whole record, as stored");
        assert_eq!(store.routing_history("both").unwrap(), both_history);
        // The built index is the live one: completing it again moves its entries.
        store
            .update_service::<()>("redial", |r| {
                r.enter(
                    CallbackState::Completed,
                    Some(CallbackReason::FailCallToCustomer),
                    at(7),
                    "gave up",
                );
                Ok(())
            })
            .unwrap()
            .without_waiting();
        assert_eq!(handled("kristi"), ["both", "redial"]);
        assert!(store
            .services_handled_by("kristi", &[CallbackState::Scheduled], &|_| true, 100)
            .unwrap()
            .is_empty());
    }

    /// A database at schema 10 holding the golden format-2 records (bytes an older release
    /// wrote), the first of them already moved by a run of 0011 that was killed before it
    /// recorded the new version.
    fn write_schema_v10_half_migrated(db: &sled::Db) -> Vec<Vec<u8>> {
        for migration in &MIGRATIONS[..10] {
            (migration.apply)(db).unwrap();
        }
        write_version(&db.open_tree(tree::META).unwrap(), 10).unwrap();
        let services = db.open_tree(tree::SERVICES).unwrap();
        let golden = stored::golden::fixture("service");
        let (first, rest) = golden.split_first().unwrap();
        let (record, _) = stored::service::decode_v2(first, "golden").unwrap();
        services
            .insert(record.id.as_str(), first.as_slice())
            .unwrap();
        (MIGRATIONS[10].apply)(db).unwrap();
        for bytes in rest {
            let (record, _) = stored::service::decode_v2(bytes, "golden").unwrap();
            services
                .insert(record.id.as_str(), bytes.as_slice())
                .unwrap();
        }
        golden
    }

    #[test]
    fn a_schema_v10_database_gets_its_routing_history_moved_once_into_its_own_tree() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let golden = write_schema_v10_half_migrated(&db);
        let history_tree = db.open_tree(tree::ROUTING_HISTORY).unwrap();
        assert_eq!(
            history_tree.len(),
            6,
            "the killed run moved the first record's six events"
        );

        let engine =
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap();
        let store = Store::new(engine.clone());

        assert_eq!(store.migrations_applied(), ["0011_routing_history"]);
        assert_eq!(store.schema_version().unwrap(), latest_version());
        assert_eq!(golden.len(), stored::golden::services().len());
        for (bytes, (expected, history)) in golden.iter().zip(stored::golden::services()) {
            let (old, old_history) = stored::service::decode_v2(bytes, "golden").unwrap();
            assert_eq!(
                (&old, &old_history),
                (&expected, &history),
                "the fixture reads"
            );
            let read = store
                .service(&expected.id)
                .unwrap()
                .unwrap_or_else(|| panic!("{} kept", expected.id));
            assert_eq!(
                read, expected,
                "{}: format 3, every field kept",
                expected.id
            );
            assert_eq!(
                store.routing_history(&expected.id).unwrap(),
                history,
                "{}: its history, in order, moved once",
                expected.id
            );
        }
        let rich = &stored::golden::services()[0].0;
        assert_eq!(rich.reservations.len(), 1, "kristi's reservation is kept");
        assert_eq!(rich.dial_attempts, 1, "ann's dial is counted");
        assert_eq!(
            engine.inner.trees.routing_history.len(),
            6,
            "no event was moved twice"
        );
        // Appended after the migration, an event sorts after the moved ones.
        let later = crate::domain::service::RoutingEvent {
            at: Timestamp::from_millis(1),
            step: 1,
            kind: crate::domain::service::RoutingEventKind::TimedOut,
        };
        store
            .update_service_routed::<()>(&rich.id, |_, appended| {
                appended.push(later.clone());
                Ok(())
            })
            .unwrap()
            .without_waiting();
        assert_eq!(
            store.routing_history(&rich.id).unwrap().last(),
            Some(&later)
        );
    }

    #[test]
    fn a_new_database_gets_every_migration_and_reopening_applies_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.migrations_applied().len(), MIGRATIONS.len());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.migrations_applied().is_empty());
        assert_eq!(store.schema_version().unwrap(), latest_version());
    }

    #[test]
    fn a_database_newer_than_the_binary_is_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let meta = db.open_tree(tree::META).unwrap();
        write_version(&meta, latest_version() + 1).unwrap();
        let err =
            SledStore::from_db(db, crate::store::commit::CommitOptions::unwatched()).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
