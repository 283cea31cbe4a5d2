//! The time index `by_time`: every stored service under `desired_time (u64 BE) ++ id`, so that
//! the console's time windows (Last 24 Hours ... Custom Date Range, issue 10) are a range scan
//! of what lies in the window instead of a read of every record.
//!
//! The value carries what the console filters on besides time (state, configured service,
//! customer number), so a window is filtered and counted from the index alone and only the
//! records of the page shown are read. Unlike `by_desired_time` (SCHEDULED services only, for
//! the router), it holds services in every state. Every write that creates, changes or deletes
//! a service keeps it in step in the record's own transaction (`IndexKeys` in `mod.rs`);
//! migration 0008 builds it for older databases.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::{codec, format, keys, Store, StoreError};
use crate::domain::service::{CallbackState, ServiceRecord};
use crate::domain::time::Timestamp;

/// What the time index knows of one service, read without its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSummary<'a> {
    /// The service id.
    pub id: &'a str,
    /// Its desired time (the index's order).
    pub desired_time: Timestamp,
    /// Its state.
    pub state: CallbackState,
    /// Its configured service.
    pub service_name: &'a str,
    /// `_customer_number`, if it has one.
    pub customer_number: Option<&'a str>,
}

/// The stored value of a `by_time` entry (format [`format::TIME_ENTRY`]). The state is its
/// one-byte code ([`CallbackState::code`]), as in the `by_service_state` keys.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TimeEntry<'a> {
    state: u8,
    service_name: &'a str,
    #[serde(borrow)]
    customer_number: Option<&'a str>,
}

/// The key and value of `record`'s `by_time` entry.
///
/// # Errors
/// The value cannot be encoded.
pub(super) fn entry_of(record: &ServiceRecord) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    entry(
        record.desired_time,
        &record.id,
        record.state,
        &record.service_name,
        record.customer_number.as_deref(),
    )
}

/// The key and value of a `by_time` entry from its parts (the migration reads them from a
/// frozen view of the record).
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn entry(
    desired_time: Timestamp,
    id: &str,
    state: CallbackState,
    service_name: &str,
    customer_number: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    let value = TimeEntry {
        state: state.code(),
        service_name,
        customer_number,
    };
    Ok((
        keys::time_key(desired_time, id),
        codec::encode(format::TIME_ENTRY, &value)?,
    ))
}

/// Reads one `by_time` entry back.
pub(super) fn summary<'a>(
    key: &'a [u8],
    value: &'a [u8],
) -> Result<ServiceSummary<'a>, StoreError> {
    let unreadable = |reason: &str| StoreError::Corrupt {
        what: format!("time index entry {}", String::from_utf8_lossy(key)),
        reason: reason.to_string(),
    };
    let (desired_time, id) = keys::split_time_key(key).ok_or_else(|| unreadable("bad key"))?;
    let entry: TimeEntry<'a> = codec::decode_borrowed(format::TIME_ENTRY, value, id)?;
    let state = CallbackState::from_code(entry.state).ok_or_else(|| unreadable("bad state"))?;
    Ok(ServiceSummary {
        id,
        desired_time,
        state,
        service_name: entry.service_name,
        customer_number: entry.customer_number,
    })
}

impl Store {
    /// Shows `visit` every service whose desired time is at or after `from` and before `to`
    /// (`None`: no bound), in (desired time, id) order, as the time index summarises it: no
    /// record is read, so a window costs what it holds, not what the database holds. Stops
    /// early when `visit` breaks.
    ///
    /// # Errors
    /// Storage failed or an entry is unreadable.
    pub fn visit_by_time(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        mut visit: impl FnMut(&ServiceSummary<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let start = from.map_or_else(Vec::new, |t| t.as_millis().to_be_bytes().to_vec());
        let index = &self.inner.trees.by_time;
        let entries = match to {
            // Every key of a time before `to` sorts before `to`'s eight bytes; one at `to`
            // (eight bytes, then its id) sorts after them.
            Some(to) => index.range(start..to.as_millis().to_be_bytes().to_vec()),
            None => index.range(start..),
        };
        for item in entries {
            let (key, value) = item?;
            if visit(&summary(&key, &value)?).is_break() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::CallbackReason;

    fn record(id: &str, desired: u64) -> ServiceRecord {
        let mut record = ServiceRecord::new(
            id,
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(desired),
        );
        record.desired_time = Timestamp::from_millis(desired);
        record.expire_at = Timestamp::from_millis(desired + 1_000_000);
        record.customer_number = Some(format!("555{id}"));
        record
    }

    /// (id, desired time, state) of every entry in `[from, to)`.
    fn window(
        store: &Store,
        from: Option<u64>,
        to: Option<u64>,
    ) -> Vec<(String, u64, CallbackState)> {
        let mut seen = Vec::new();
        store
            .visit_by_time(
                from.map(Timestamp::from_millis),
                to.map(Timestamp::from_millis),
                |s| {
                    seen.push((s.id.to_string(), s.desired_time.as_millis(), s.state));
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
        seen
    }

    #[test]
    fn the_stored_entry_has_a_fixed_layout() {
        let (key, value) = entry(
            Timestamp::from_millis(0x0102),
            "ab",
            CallbackState::Queued,
            "svc",
            Some("55"),
        )
        .unwrap();
        assert_eq!(key, [0, 0, 0, 0, 0, 0, 1, 2, b'a', b'b']);
        // Format byte, state code, then bincode's length-prefixed strings (Some is 1).
        assert_eq!(value, [1, 2, 3, b's', b'v', b'c', 1, 2, b'5', b'5']);
        let (_, none) = entry(
            Timestamp::from_millis(1),
            "x",
            CallbackState::Completed,
            "s",
            None,
        )
        .unwrap();
        assert_eq!(none, [1, 5, 1, b's', 0]);
        assert_eq!(
            summary(&key, &value).unwrap(),
            ServiceSummary {
                id: "ab",
                desired_time: Timestamp::from_millis(0x0102),
                state: CallbackState::Queued,
                service_name: "svc",
                customer_number: Some("55"),
            }
        );
        assert!(
            summary(&key, &[2, 2, 3]).is_err(),
            "another format is refused"
        );
    }

    #[test]
    fn a_window_holds_what_is_in_it_in_time_order() {
        let store = Store::open_temporary().unwrap();
        for (id, at) in [("c", 30), ("a", 10), ("b", 20), ("b2", 20), ("d", 40)] {
            store.insert_service(&record(id, at)).unwrap();
        }
        let ids = |from, to| -> Vec<String> {
            window(&store, from, to).into_iter().map(|e| e.0).collect()
        };

        assert_eq!(
            ids(Some(20), Some(40)),
            ["b", "b2", "c"],
            "from inclusive, to exclusive"
        );
        assert_eq!(ids(None, Some(20)), ["a"]);
        assert_eq!(ids(Some(31), None), ["d"]);
        assert_eq!(ids(None, None).len(), 5);
        let mut first = Vec::new();
        store
            .visit_by_time(None, None, |s| {
                first.push(s.id.to_string());
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(first, ["a"], "a break stops the scan");
    }

    #[test]
    fn changes_reschedules_and_deletions_keep_the_index_in_step() {
        let store = Store::open_temporary().unwrap();
        store.insert_service(&record("moved", 100)).unwrap();
        store.insert_service(&record("done", 200)).unwrap();
        store.insert_service(&record("expires", 300)).unwrap();

        store
            .update_service::<()>("moved", |r| {
                r.reschedule(
                    Timestamp::from_millis(5_000),
                    Timestamp::from_millis(9_000_000),
                    Timestamp::from_millis(150),
                )
                .map_err(|_| ())
            })
            .unwrap();
        store
            .update_service::<()>("done", |r| {
                r.cancel(
                    CallbackReason::CancelledByAdmin,
                    Timestamp::from_millis(250),
                )
                .map_err(|_| ())
            })
            .unwrap();
        let mut due = record("expires", 300);
        due.expire_at = Timestamp::from_millis(400);
        store
            .update_service::<()>("expires", |r| {
                r.expire_at = due.expire_at;
                Ok(())
            })
            .unwrap();
        let purged = store
            .purge_expired(Timestamp::from_millis(400), 100)
            .unwrap();

        assert_eq!(purged.removed, ["expires"]);
        assert_eq!(
            window(&store, None, None),
            [
                ("done".to_string(), 200, CallbackState::Completed),
                ("moved".to_string(), 5_000, CallbackState::Scheduled),
            ],
            "rescheduled moved, cancelled shows its new state, expired gone"
        );
    }

    #[test]
    fn a_bulk_load_indexes_every_record() {
        let store = Store::open_temporary().unwrap();
        let records: Vec<ServiceRecord> =
            (0..250).map(|i| record(&format!("r{i:03}"), i)).collect();

        store.insert_services(&records).unwrap();

        assert_eq!(window(&store, None, None).len(), 250);
        assert_eq!(window(&store, Some(100), Some(110)).len(), 10);
        assert_eq!(store.service("r007").unwrap().unwrap(), records[7]);
        assert_eq!(
            store.active_counts()["chat-delay"],
            250,
            "counted as inserts are"
        );
    }
}
