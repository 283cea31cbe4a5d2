//! The PostgreSQL schema: SQL migrations under `migrations/postgres/`, compiled in, applied in
//! order when a node opens the database, each in its own transaction under an advisory lock,
//! so that nodes started together apply each migration once. The `callbackd_schema` table
//! lists what was applied; a database holding a migration this binary does not know (written
//! by a newer callbackd) is refused ([`StoreError::SchemaTooNew`]).

use super::pool::{wait, Pool};
use super::Sql;
use crate::store::StoreError;

/// Every migration of the PostgreSQL schema, in order: (name, SQL).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_schema",
        include_str!("../../../migrations/postgres/0001_schema.sql"),
    ),
    (
        "0002_services",
        include_str!("../../../migrations/postgres/0002_services.sql"),
    ),
    (
        "0003_notifications",
        include_str!("../../../migrations/postgres/0003_notifications.sql"),
    ),
    (
        "0004_configuration",
        include_str!("../../../migrations/postgres/0004_configuration.sql"),
    ),
];

/// Any constant shared by every node: the key of the advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x6361_6c6c_6261_636b; // "callback"

/// The newest schema version this binary knows (the number of its migrations).
pub fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Applies the migrations `pool`'s database lacks; returns their names.
pub(super) fn run(pool: &Pool) -> Result<Vec<String>, StoreError> {
    let mut conn = pool.get()?;
    wait(conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS callbackd_schema (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    ))
    .or_else(|err| {
        // Two nodes creating the table at once: one of them loses the race, harmlessly.
        if err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            Ok(())
        } else {
            Err(err)
        }
    })?;
    let mut applied = Vec::new();
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = index as i32 + 1;
        let tx = wait(conn.transaction())?;
        let sql_tx = Sql::new(&tx);
        sql_tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        let done = sql_tx
            .query_opt(
                "SELECT 1 FROM callbackd_schema WHERE version = $1",
                &[&version],
            )?
            .is_some();
        if !done {
            wait(tx.batch_execute(sql)).map_err(|err| {
                StoreError::Engine(format!("migration {name}: {}", StoreError::from(err)))
            })?;
            sql_tx.execute(
                "INSERT INTO callbackd_schema (version, name) VALUES ($1, $2)",
                &[&version, name],
            )?;
            applied.push((*name).to_string());
        }
        wait(tx.commit())?;
    }
    let found = read_version(&Sql::new(&*conn))?;
    if found > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest_version(),
        });
    }
    Ok(applied)
}

/// The newest migration recorded in the database.
pub(super) fn read_version<C: tokio_postgres::GenericClient + Sync>(
    sql: &Sql<'_, C>,
) -> Result<u32, StoreError> {
    let row = sql.query_one(
        "SELECT coalesce(max(version), 0) FROM callbackd_schema",
        &[],
    )?;
    let version: i32 = row.get(0);
    Ok(version as u32)
}
