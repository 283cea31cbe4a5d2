//! The in-memory cache of configured services.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::domain::options::ValidService;

/// Validated configured services by name. A std `RwLock`: it is held only to clone an `Arc`
/// or insert one, never across an `.await`.
#[derive(Clone, Default)]
pub struct Catalog {
    services: Arc<RwLock<BTreeMap<String, Arc<ValidService>>>>,
    /// Held by an admin change across "write the store, flush, update this cache", so two
    /// concurrent changes of one service reach the store and the cache in the same order.
    writes: Arc<tokio::sync::Mutex<()>>,
}

impl Catalog {
    /// Serializes changes to configured services (see the `writes` field).
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    /// The service named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<ValidService>> {
        self.read().get(name).cloned()
    }

    /// Every service, by name.
    pub fn all(&self) -> Vec<Arc<ValidService>> {
        self.read().values().cloned().collect()
    }

    /// Adds or replaces a service; true if it is new.
    pub fn insert(&self, service: ValidService) -> bool {
        let mut map = self.services.write().unwrap_or_else(|e| e.into_inner());
        map.insert(service.config.name.clone(), Arc::new(service))
            .is_none()
    }

    /// Removes a service; true if it was there.
    pub fn remove(&self, name: &str) -> bool {
        let mut map = self.services.write().unwrap_or_else(|e| e.into_inner());
        map.remove(name).is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ValidService>>> {
        self.services.read().unwrap_or_else(|e| e.into_inner())
    }
}
