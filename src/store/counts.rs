//! Counts of services not yet COMPLETED, per configured service, kept in memory so that the
//! admin watermarks answer without reading the index.
//!
//! They are rebuilt when the store opens from the `by_service_state` index, reading only the
//! keys of the active states of each configured service (the COMPLETED ones, which pile up
//! until their `_ttl`, are skipped by seeking past them), and then moved by every committed
//! write: the write's transaction returns what it changed and the count follows after the
//! commit, so a retried transaction counts once.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sled::Tree;

use super::{keys, StoreError};
use crate::domain::service::CallbackState;

/// Active services per configured service name.
#[derive(Debug, Default)]
pub(super) struct ActiveCounts {
    counts: Mutex<BTreeMap<String, u64>>,
}

/// The states that count: every one but COMPLETED.
pub(super) fn counted(state: CallbackState) -> bool {
    state != CallbackState::Completed
}

impl ActiveCounts {
    /// Counts the active services in the `by_service_state` index.
    ///
    /// # Errors
    /// Storage failed.
    pub(super) fn rebuild(index: &Tree) -> Result<Self, StoreError> {
        let mut counts = BTreeMap::new();
        for name in indexed_service_names(index)? {
            let mut count = 0;
            for state in CallbackState::ALL.into_iter().filter(|s| counted(*s)) {
                for item in index.scan_prefix(keys::service_state_prefix(&name, state)) {
                    item?;
                    count += 1;
                }
            }
            if count > 0 {
                counts.insert(name, count);
            }
        }
        Ok(ActiveCounts {
            counts: Mutex::new(counts),
        })
    }

    /// A committed write moved one service of `name` from `was` to `is` (`None`: absent).
    pub(super) fn moved(&self, name: &str, was: Option<CallbackState>, is: Option<CallbackState>) {
        let was = was.is_some_and(counted);
        let is = is.is_some_and(counted);
        if was == is {
            return;
        }
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if is {
            *counts.entry(name.to_string()).or_insert(0) += 1;
        } else if let Some(count) = counts.get_mut(name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(name);
            }
        }
    }

    /// The counts now; names without active services are absent.
    pub(super) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The configured-service names that have index keys, in key order: one seek per name, past
/// all of its keys, instead of reading them.
///
/// # Errors
/// Storage failed.
pub(super) fn indexed_service_names(index: &Tree) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let Some(item) = index.range(from.as_slice()..).next() else {
            break;
        };
        let (key, _) = item?;
        let Some((name, _, _)) = keys::split_service_state_key(&key) else {
            // Not ours to read: step over this one key.
            from = key.to_vec();
            from.push(0);
            continue;
        };
        names.push(name.to_string());
        match keys::prefix_end(&keys::service_prefix(name)) {
            Some(end) => from = end,
            None => break,
        }
    }
    Ok(names)
}
