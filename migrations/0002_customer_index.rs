//! Schema 2: the `by_customer` index (customer number ++ 0 ++ id), so that the GMS query
//! `?_customer_number=` reads only that customer's services instead of every record.
//! Built from the service records that exist (service format 1; only the customer number
//! is read, with a frozen view of the format-1 record).

use serde::Deserialize;

use super::Migration;
use crate::store::{codec, keys, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 2,
    name: "customer_index",
    apply,
};

/// The leading fields of a format-1 service record, up to the customer number (bincode reads
/// fields in order and ignores what follows). Frozen: never change it.
#[derive(Deserialize)]
struct ServiceHeadV1 {
    id: String,
    _service_name: String,
    _preset: u32,
    _options: std::collections::BTreeMap<String, String>,
    _user_data: std::collections::BTreeMap<String, String>,
    _owner: Option<String>,
    customer_number: Option<String>,
}

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let services = db.open_tree(tree::SERVICES)?;
    let by_customer = db.open_tree(tree::BY_CUSTOMER)?;
    for item in services.iter() {
        let (key, value) = item?;
        let id = String::from_utf8_lossy(&key);
        let record: ServiceHeadV1 = codec::decode(1, &value, &format!("service {id}"))?;
        if let Some(number) = &record.customer_number {
            by_customer.insert(keys::customer_key(number, &record.id), &[])?;
        }
    }
    Ok(())
}
