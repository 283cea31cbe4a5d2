//! Numbered data migrations, applied in order at start-up (and by `callbackd migrate`).
//!
//! Each file `NNNN_name.rs` turns a database of schema version NNNN-1 into version NNNN.
//! A migration runs once, before the server serves; the runner (`src/store/migrate.rs`)
//! records the new version in the `meta` tree after each one and flushes.
//!
//! Adding one: write `NNNN_name.rs` exposing `MIGRATION`, list it at the end of
//! [`MIGRATIONS`], and add a test that opens a database in the previous layout. A migration
//! that reads stored records must decode the format they had then, with its own frozen copy of
//! that format (every type in it, enums by variant index, times as milliseconds), never a
//! domain type or the store's current stored type (`src/store/stored/`): those change with
//! the code, the bytes already on disk do not. A migration that rewrites records writes them
//! with a frozen copy of the format it produces, for the same reason.

#[path = "0001_initial.rs"]
mod m0001_initial;
#[path = "0002_customer_index.rs"]
mod m0002_customer_index;
#[path = "0003_agents.rs"]
mod m0003_agents;
#[path = "0004_service_format_2.rs"]
mod m0004_service_format_2;
#[path = "0005_notifications.rs"]
mod m0005_notifications;
#[path = "0006_push.rs"]
mod m0006_push;
#[path = "0007_owner_index.rs"]
mod m0007_owner_index;
#[path = "0008_time_index.rs"]
mod m0008_time_index;
#[path = "0009_agent_reason.rs"]
mod m0009_agent_reason;
#[path = "0010_agent_index.rs"]
mod m0010_agent_index;
#[path = "0011_routing_history.rs"]
mod m0011_routing_history;

use crate::store::StoreError;

#[cfg(test)]
pub use m0004_service_format_2::{PresetV1, ServiceRecordV1, StateV1};
#[cfg(test)]
pub use m0009_agent_reason::{AgentConfigV1, AgentRecordV1, AgentStateV1};

/// One migration step.
pub struct Migration {
    /// The schema version it produces.
    pub version: u32,
    /// A short name, for logs.
    pub name: &'static str,
    /// Transforms the database from `version - 1` to `version`.
    pub apply: fn(&sled::Db) -> Result<(), StoreError>,
}

/// Every migration, oldest first. Versions are consecutive from 1.
pub const MIGRATIONS: &[Migration] = &[
    m0001_initial::MIGRATION,
    m0002_customer_index::MIGRATION,
    m0003_agents::MIGRATION,
    m0004_service_format_2::MIGRATION,
    m0005_notifications::MIGRATION,
    m0006_push::MIGRATION,
    m0007_owner_index::MIGRATION,
    m0008_time_index::MIGRATION,
    m0009_agent_reason::MIGRATION,
    m0010_agent_index::MIGRATION,
    m0011_routing_history::MIGRATION,
];
