//! Schema 7: the `by_owner` index (gms_user ++ 0 ++ service name ++ 0 ++ id), so that the
//! per-service query `GET /genesys/1/service/callback/{name}` reads only the asker's own
//! services instead of every service of that name. Built from the stored records (service
//! format 2; only the head of the record is read, with a frozen view).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Migration;
use crate::store::{codec, keys, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 7,
    name: "owner_index",
    apply,
};

/// The leading fields of a format-2 service record, up to the owner (bincode reads fields in
/// order and ignores what follows). Frozen: never change it.
#[derive(Deserialize)]
struct ServiceHeadV2 {
    id: String,
    service_name: String,
    _preset: u32,
    _options: BTreeMap<String, String>,
    _user_data: BTreeMap<String, String>,
    owner: Option<String>,
}

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let services = db.open_tree(tree::SERVICES)?;
    let by_owner = db.open_tree(tree::BY_OWNER)?;
    // One batch per chunk: a large database is indexed without one huge write.
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for item in services.iter() {
        let (key, value) = item?;
        let id = String::from_utf8_lossy(&key);
        let record: ServiceHeadV2 = codec::decode(2, &value, &format!("service {id}"))?;
        if let Some(owner) = &record.owner {
            batch.insert(
                keys::owner_key(owner, &record.service_name, &record.id),
                &[],
            );
            pending += 1;
        }
        if pending == 10_000 {
            by_owner.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    by_owner.apply_batch(batch)?;
    Ok(())
}
