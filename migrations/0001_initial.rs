//! Schema 1: the trees of the first release (meta, templates, services, by_expiry,
//! by_desired_time, by_service_state).

use super::Migration;
use crate::store::{tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 1,
    name: "initial",
    apply,
};

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    for name in [
        tree::META,
        tree::TEMPLATES,
        tree::SERVICES,
        tree::BY_EXPIRY,
        tree::BY_DESIRED_TIME,
        tree::BY_SERVICE_STATE,
    ] {
        db.open_tree(name)?;
    }
    Ok(())
}
