//! Schema 6: the `agent_notifications` tree (service id ++ 0 ++ seq -> agent-bound
//! notification), and the `undelivered` index (gms_user ++ 0 ++ seq -> service id) of the
//! undelivered notifications of comet services, built from what is stored (service format 2,
//! notification format 1).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Migration;
use crate::store::{codec, keys, tree, StoreError};

pub const MIGRATION: Migration = Migration {
    version: 6,
    name: "push",
    apply,
};

/// The leading fields of a format-2 service record, up to `_device_os` (bincode reads fields
/// in order and ignores what follows). Frozen: never change it.
#[derive(Deserialize)]
struct ServiceHeadV2 {
    _id: String,
    _service_name: String,
    _preset: u32,
    _options: BTreeMap<String, String>,
    _user_data: BTreeMap<String, String>,
    owner: Option<String>,
    _customer_number: Option<String>,
    device_os: Option<String>,
}

/// A notification as format 1 stored it, up to whether it was delivered. Frozen: never
/// change it.
#[derive(Deserialize)]
struct NotificationV1 {
    seq: u64,
    _tag: String,
    _message: String,
    _created_at_ms: u64,
    delivered: bool,
}

fn apply(db: &sled::Db) -> Result<(), StoreError> {
    db.open_tree(tree::AGENT_NOTIFICATIONS)?;
    let services = db.open_tree(tree::SERVICES)?;
    let notifications = db.open_tree(tree::NOTIFICATIONS)?;
    let undelivered = db.open_tree(tree::UNDELIVERED)?;
    // Notifications are grouped by service: read each service's record once.
    let mut current: Option<(String, Option<String>)> = None;
    for item in notifications.iter() {
        let (key, value) = item?;
        let Some(sep) = key.iter().position(|b| *b == 0) else {
            continue;
        };
        let service_id = String::from_utf8_lossy(&key[..sep]).into_owned();
        if current.as_ref().is_none_or(|(id, _)| *id != service_id) {
            let comet_user = match services.get(service_id.as_bytes())? {
                Some(bytes) => {
                    let record: ServiceHeadV2 =
                        codec::decode(2, &bytes, &format!("service {service_id}"))?;
                    record
                        .owner
                        .filter(|_| record.device_os.as_deref() == Some("comet"))
                }
                None => None,
            };
            current = Some((service_id.clone(), comet_user));
        }
        let Some((_, Some(user))) = &current else {
            continue;
        };
        let notification: NotificationV1 = codec::decode(1, &value, "notification")?;
        if !notification.delivered {
            undelivered.insert(
                keys::undelivered_key(user, notification.seq),
                service_id.as_bytes(),
            )?;
        }
    }
    Ok(())
}
