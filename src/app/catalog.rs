//! The in-memory cache of configured services.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::domain::options::ScheduleService;
use crate::domain::options::ValidService;

/// Validated configured services by name. A std `RwLock`: it is held only to clone an `Arc`
/// or insert one, never across an `.await`.
#[derive(Clone, Default)]
pub struct Catalog {
    services: Arc<RwLock<BTreeMap<String, Arc<ValidService>>>>,
    /// Office-hours and capacity services, which callback services name; one name is in at
    /// most one of the two maps.
    schedules: Arc<RwLock<BTreeMap<String, Arc<ScheduleService>>>>,
    /// Held by a create or reschedule from checking a time bucket's room to storing the
    /// service in it, so two requests cannot both take a bucket's last place.
    bookings: Arc<tokio::sync::Mutex<()>>,
    /// Held by a create of a service with a queue limit or a throttle from reading the counts
    /// to moving them (`app::limits`), so two creates cannot both take a limit's last place.
    /// Taken before `bookings` when a create needs both.
    limits: Arc<tokio::sync::Mutex<()>>,
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
        let was_schedule = self.remove_schedule(&service.config.name);
        let mut map = self.services.write().unwrap_or_else(|e| e.into_inner());
        map.insert(service.config.name.clone(), Arc::new(service))
            .is_none()
            && !was_schedule
    }

    /// Removes a service of either kind; true if it was there.
    pub fn remove(&self, name: &str) -> bool {
        let removed = {
            let mut map = self.services.write().unwrap_or_else(|e| e.into_inner());
            map.remove(name).is_some()
        };
        self.remove_schedule(name) || removed
    }

    /// The office-hours or capacity service named `name`.
    pub fn schedule(&self, name: &str) -> Option<Arc<ScheduleService>> {
        self.schedules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every office-hours and capacity service, by name.
    pub fn all_schedules(&self) -> Vec<Arc<ScheduleService>> {
        self.schedules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Adds or replaces an office-hours or capacity service; true if the name is new.
    pub fn insert_schedule(&self, service: ScheduleService) -> bool {
        let was_service = {
            let mut map = self.services.write().unwrap_or_else(|e| e.into_inner());
            map.remove(&service.config.name).is_some()
        };
        let mut map = self.schedules.write().unwrap_or_else(|e| e.into_inner());
        map.insert(service.config.name.clone(), Arc::new(service))
            .is_none()
            && !was_service
    }

    fn remove_schedule(&self, name: &str) -> bool {
        let mut map = self.schedules.write().unwrap_or_else(|e| e.into_inner());
        map.remove(name).is_some()
    }

    /// Serializes bookings into time buckets (see the `bookings` field).
    pub async fn lock_bookings(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.bookings.lock().await
    }

    /// Serializes creates that a limit counts (see the `limits` field).
    pub async fn lock_limits(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.limits.lock().await
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ValidService>>> {
        self.services.read().unwrap_or_else(|e| e.into_inner())
    }
}
