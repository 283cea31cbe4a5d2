//! Schema 2: the `by_customer` index (customer number ++ 0 ++ id), so that the GMS query
//! `?_customer_number=` reads only that customer's services instead of every record.
//! Built from the service records that exist (service format 1).

use super::Migration;
use crate::domain::service::ServiceRecord;
use crate::store::{codec, format, keys, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 2,
    name: "customer_index",
    apply,
};

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    let services = db.open_tree(tree::SERVICES)?;
    let by_customer = db.open_tree(tree::BY_CUSTOMER)?;
    for item in services.iter() {
        let (key, value) = item?;
        let id = String::from_utf8_lossy(&key);
        let record: ServiceRecord =
            codec::decode(format::SERVICE, &value, &format!("service {id}"))?;
        if let Some(number) = &record.customer_number {
            by_customer.insert(keys::customer_key(number, &record.id), &[])?;
        }
    }
    Ok(())
}
