//! Schema 5: the `notifications` tree (service id ++ 0 ++ seq -> customer notification).
//! New tree, nothing to convert.

use super::Migration;
use crate::store::{tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 5,
    name: "notifications",
    apply,
};

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    db.open_tree(tree::NOTIFICATIONS)?;
    Ok(())
}
