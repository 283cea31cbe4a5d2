//! The counts of GMS's throttles of callback creation, so that they hold across a restart.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `throttles` | `I` ++ service name ++ 0 ++ throttle number (1 or 2) | [`Window`]: interval start and count |
//! | `throttles` | `D` ++ UTC day (u32 BE) ++ service name ++ 0 ++ parameter ++ 0 ++ value | creates that day (u64) |
//!
//! The day comes first in the daily keys, so the days before today are one range at the
//! front of the `D` keys: each count removes a few of them ([`PURGE_PER_WRITE`]), so the
//! tree holds about one day of keys without a sweep of its own. The caller (`app::limits`)
//! reads and writes these under one lock, so a read count is still true when it is moved.

use sled::transaction::ConflictableTransactionError;

use super::stored::throttle::{CountV1, WindowV1};
use super::{codec, tx_error, Pending, SledStore, StoreError, Throttles};
use crate::domain::throttle::Window;

const INTERVAL: u8 = b'I';
const DAILY: u8 = b'D';

/// Keys of past days removed per count.
const PURGE_PER_WRITE: usize = 32;

fn interval_key(service: &str, slot: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(service.len() + 3);
    key.push(INTERVAL);
    key.extend_from_slice(service.as_bytes());
    key.push(0);
    key.push(slot);
    key
}

fn daily_key(day: u32, service: &str, parameter: &str, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(service.len() + parameter.len() + value.len() + 7);
    key.push(DAILY);
    key.extend_from_slice(&day.to_be_bytes());
    key.extend_from_slice(service.as_bytes());
    key.push(0);
    key.extend_from_slice(parameter.as_bytes());
    key.push(0);
    key.extend_from_slice(value.as_bytes());
    key
}

fn day_start(day: u32) -> Vec<u8> {
    let mut key = vec![DAILY];
    key.extend_from_slice(&day.to_be_bytes());
    key
}

fn decode_count(key: &[u8], bytes: &[u8]) -> Result<u64, StoreError> {
    codec::read::<CountV1>(
        bytes,
        &format!("throttle count {}", String::from_utf8_lossy(key)),
    )
    .map(|count| count.0)
}

impl Throttles for SledStore {
    fn throttle_windows(
        &self,
        service: &str,
        slots: &[u8],
    ) -> Result<Vec<Option<Window>>, StoreError> {
        let tree = &self.inner.trees.throttles;
        slots
            .iter()
            .map(|slot| {
                let key = interval_key(service, *slot);
                match tree.get(&key)? {
                    Some(bytes) => Ok(Some(
                        codec::read::<WindowV1>(
                            &bytes,
                            &format!("throttle window of {service} {slot}"),
                        )?
                        .into(),
                    )),
                    None => Ok(None),
                }
            })
            .collect()
    }

    fn throttle_requests_on(
        &self,
        day: u32,
        service: &str,
        values: &[(&str, &str)],
    ) -> Result<Vec<u64>, StoreError> {
        let tree = &self.inner.trees.throttles;
        values
            .iter()
            .map(|(parameter, value)| {
                let key = daily_key(day, service, parameter, value);
                match tree.get(&key)? {
                    Some(bytes) => decode_count(&key, &bytes),
                    None => Ok(0),
                }
            })
            .collect()
    }

    fn count_throttled(
        &self,
        service: &str,
        windows: &[(u8, Window)],
        day: u32,
        values: &[(&str, &str)],
    ) -> Result<Pending<()>, StoreError> {
        self.check_space()?;
        let tree = &self.inner.trees.throttles;
        let encoded = windows
            .iter()
            .map(|(slot, window)| {
                Ok((
                    interval_key(service, *slot),
                    codec::write(&WindowV1::from(window))?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let daily: Vec<Vec<u8>> = values
            .iter()
            .map(|(parameter, value)| daily_key(day, service, parameter, value))
            .collect();
        tree.transaction(|tx| {
            for (key, bytes) in &encoded {
                tx.insert(key.as_slice(), bytes.as_slice())?;
            }
            for key in &daily {
                let count = match tx.get(key)? {
                    Some(bytes) => decode_count(key, &bytes)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?,
                    None => 0,
                };
                let bytes = codec::write(&CountV1(count.saturating_add(1)))
                    .map_err(|_| ConflictableTransactionError::Abort(()))?;
                tx.insert(key.as_slice(), bytes)?;
            }
            Ok(())
        })
        .map_err(tx_error)?;
        let past: Vec<sled::IVec> = tree
            .range(day_start(0)..day_start(day))
            .keys()
            .take(PURGE_PER_WRITE)
            .collect::<Result<_, _>>()?;
        for key in past {
            tree.remove(key)?;
        }
        Ok(self.pending(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::Timestamp;
    use crate::store::Store;

    #[test]
    fn counts_are_kept_per_service_parameter_value_and_day() {
        let store = Store::open_temporary().unwrap();
        let window = Window {
            start: Timestamp::from_millis(5_000),
            count: 3,
        };
        store
            .count_throttled("cb", &[(2, window)], 10, &[("_customer_number", "5115")])
            .unwrap()
            .without_waiting();
        store
            .count_throttled("cb", &[], 10, &[("_customer_number", "5115")])
            .unwrap()
            .without_waiting();

        assert_eq!(
            store.throttle_windows("cb", &[1, 2]).unwrap(),
            vec![None, Some(window)]
        );
        assert_eq!(store.throttle_windows("other", &[2]).unwrap(), vec![None]);
        let counts = store
            .throttle_requests_on(
                10,
                "cb",
                &[("_customer_number", "5115"), ("_customer_number", "5125")],
            )
            .unwrap();
        assert_eq!(counts, vec![2, 0]);
        assert_eq!(
            store
                .throttle_requests_on(10, "cb2", &[("_customer_number", "5115")])
                .unwrap(),
            vec![0],
            "another service counts apart"
        );
    }

    #[test]
    fn counting_a_day_removes_the_days_before_it() {
        let store = Store::open_temporary().unwrap();
        store
            .count_throttled("cb", &[], 9, &[("_customer_number", "1")])
            .unwrap()
            .without_waiting();
        store
            .count_throttled("cb", &[], 10, &[("_customer_number", "2")])
            .unwrap()
            .without_waiting();
        assert_eq!(
            store
                .throttle_requests_on(9, "cb", &[("_customer_number", "1")])
                .unwrap(),
            vec![0],
            "day 9's key is gone"
        );
        assert_eq!(
            store
                .throttle_requests_on(10, "cb", &[("_customer_number", "2")])
                .unwrap(),
            vec![1]
        );
    }
}
