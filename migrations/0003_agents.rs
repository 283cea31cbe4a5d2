//! Schema 3: the `agents` tree (agent id -> configuration and last state) of the embedded
//! contact center. New tree, nothing to convert.

use super::Migration;
use crate::store::{tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 3,
    name: "agents",
    apply,
};

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    db.open_tree(tree::AGENTS)?;
    Ok(())
}
