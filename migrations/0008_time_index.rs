//! Schema 8: the `by_time` index (desired_time ++ id -> state, service name, customer number)
//! over every stored service, so that the console's time windows read only the services in
//! the window (issue 10) instead of every record. Built from the stored records (service
//! format 2; only the head of the record is read, with a frozen view), in batches.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Migration;
use crate::domain::service::CallbackState;
use crate::domain::time::Timestamp;
use crate::store::{by_time, codec, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 8,
    name: "time_index",
    apply,
};

/// The leading fields of a format-2 service record, up to the desired time (bincode reads
/// fields in order and ignores what follows). Enums are read as bincode writes them, by
/// variant index. Frozen: never change it.
#[derive(Deserialize)]
struct ServiceHeadV2 {
    id: String,
    service_name: String,
    _preset: u32,
    _options: BTreeMap<String, String>,
    _user_data: BTreeMap<String, String>,
    _owner: Option<String>,
    customer_number: Option<String>,
    _device_os: Option<String>,
    _device_notification_id: Option<String>,
    state: u32,
    _reason: Option<u32>,
    _created_at: u64,
    desired_time: u64,
}

/// Format 2's states by variant index. Frozen: never change it.
const STATES_V2: [CallbackState; 5] = [
    CallbackState::Scheduled,
    CallbackState::Queued,
    CallbackState::Routing,
    CallbackState::Processing,
    CallbackState::Completed,
];

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let services = db.open_tree(tree::SERVICES)?;
    let by_time = db.open_tree(tree::BY_TIME)?;
    // One batch per chunk: a large database is indexed without one huge write.
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for item in services.iter() {
        let (key, value) = item?;
        let what = format!("service {}", String::from_utf8_lossy(&key));
        let record: ServiceHeadV2 = codec::decode(2, &value, &what)?;
        let state = usize::try_from(record.state)
            .ok()
            .and_then(|i| STATES_V2.get(i).copied())
            .ok_or_else(|| StoreError::Corrupt {
                what,
                reason: format!("state variant {}", record.state),
            })?;
        let (key, value) = by_time::entry(
            Timestamp::from_millis(record.desired_time),
            &record.id,
            state,
            &record.service_name,
            record.customer_number.as_deref(),
        )?;
        batch.insert(key, value);
        pending += 1;
        if pending == 10_000 {
            by_time.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    by_time.apply_batch(batch)?;
    Ok(())
}
