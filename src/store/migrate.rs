//! The migration runner. The migrations themselves are numbered files in the repository's
//! top-level `migrations/` folder, compiled into this module.
//!
//! The schema version lives in the `meta` tree. Opening a database applies every migration
//! newer than it, in order, flushing after each; a database newer than this binary is refused.

use sled::Tree;

use super::{codec, format, tree, StoreError};

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
        Some(bytes) => codec::decode(format::META, &bytes, "schema version"),
        None => Ok(0),
    }
}

fn write_version(meta: &Tree, version: u32) -> Result<(), StoreError> {
    meta.insert(SCHEMA_VERSION, codec::encode(format::META, &version)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::ServiceRecord;
    use crate::domain::time::Timestamp;
    use crate::store::{keys, Store};

    fn record(id: &str, customer: &str) -> ServiceRecord {
        let created = Timestamp::from_millis(1_000);
        let mut record = ServiceRecord::new(id, "chat-delay", Preset::ChatDelayed, created);
        record
            .user_data
            .insert("usr_reason".into(), "billing".into());
        record.customer_number = Some(customer.into());
        record.expire_at = created.plus_secs(86_400);
        record.queued_at = Some(created);
        record
    }

    /// Writes a database exactly as schema version 1 laid it out: records, expiry and
    /// service-state index, and no customer index.
    fn write_schema_v1(db: &sled::Db, records: &[ServiceRecord]) {
        (MIGRATIONS[0].apply)(db).unwrap();
        let meta = db.open_tree(tree::META).unwrap();
        write_version(&meta, 1).unwrap();
        let services = db.open_tree(tree::SERVICES).unwrap();
        let by_expiry = db.open_tree(tree::BY_EXPIRY).unwrap();
        let by_state = db.open_tree(tree::BY_SERVICE_STATE).unwrap();
        for r in records {
            services
                .insert(r.id.as_bytes(), codec::encode(format::SERVICE, r).unwrap())
                .unwrap();
            by_expiry
                .insert(keys::time_key(r.expire_at, &r.id), &[])
                .unwrap();
            by_state
                .insert(
                    keys::service_state_key(&r.service_name, r.state, &r.id),
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
            &[record("a", "555"), record("b", "555"), record("c", "777")],
        );

        let store = Store::from_db(db).unwrap();

        assert_eq!(store.schema_version().unwrap(), latest_version());
        assert_eq!(
            store.migrations_applied(),
            ["0002_customer_index", "0003_agents"]
        );
        let ids: Vec<String> = store
            .services_by_customer("555", |_| true, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            store
                .services_by_customer("777", |_| true, 10)
                .unwrap()
                .len(),
            1
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
        let err = Store::from_db(db).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
