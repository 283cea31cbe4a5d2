//! The GMS Storage API: storage areas on their own (`/genesys/1/storage/...`) and a service's
//! storage (`/genesys/1/service/{id}/storage`).
//!
//! An area made with a `gms_user` belongs to it (another user gets 403, as for services); a
//! custom id is always bound to its creator. Reads compare the area's expiry with the
//! injected clock, so an area past its time is gone (404) before the expiry job removes it.
//! Every change is durable (group commit) before it returns.

use uuid::Uuid;

use super::records::owned_service;
use super::{AppError, AppState, Requester};
use crate::domain::options::FieldError;
use crate::domain::storage::{self, EntryError, StorageArea, StorageEntry, StorageLimit};
use crate::store::UpdateError;

/// Stores `entries` for `ttl` (GMS's `{ttl}` text) as a new area; returns its id.
///
/// # Errors
/// A TTL over the maximum or a bad key (400), a limit passed (413), storage failure.
pub async fn create(
    state: &AppState,
    ttl: &str,
    requester: Requester<'_>,
    entries: Vec<StorageEntry>,
) -> Result<String, AppError> {
    let ttl = storage::parse_ttl(ttl)?;
    check(&entries)?;
    let id = Uuid::new_v4().to_string();
    let area = storage::new_area(
        id.clone(),
        requester.map(str::to_string),
        state.clock.now(),
        ttl,
        entries,
    )
    .map_err(too_large)?;
    state.store.put_storage(&area)?.durable().await?;
    tracing::info!(storage_id = %id, ttl, keys = area.entries.len(), "storage area created");
    Ok(id)
}

/// Checks that `requester` may write the custom area `custom_id` before its body is judged:
/// an area of that id that belongs to someone else is 403.
///
/// # Errors
/// Another user's id (403), storage failure.
pub fn check_custom_access(
    state: &AppState,
    custom_id: &str,
    requester: Requester<'_>,
) -> Result<(), AppError> {
    match state.store.storage(custom_id)? {
        Some(area) if !area.expired(state.clock.now()) && area.owner.as_deref() != requester => {
            Err(AppError::Forbidden(format!(
                "storage `{custom_id}` belongs to another user: send the gms_user header it was created with, or choose another custom id"
            )))
        }
        _ => Ok(()),
    }
}

/// Stores `entries` under the custom id `custom_id` for `ttl`, bound to `requester`
/// (required); an area of the same id and user is replaced. Returns the id.
///
/// # Errors
/// Another user's id (403), no `gms_user`, a bad id, TTL or key (400), a limit (413),
/// storage failure.
pub async fn create_custom(
    state: &AppState,
    custom_id: &str,
    ttl: &str,
    requester: Requester<'_>,
    entries: Vec<StorageEntry>,
) -> Result<String, AppError> {
    check_custom_access(state, custom_id, requester)?;
    let Some(owner) = requester else {
        return Err(FieldError::new(
            "gms_user",
            "a custom storage id is bound to its user: send the gms_user header",
        )
        .into());
    };
    storage::check_custom_id(custom_id)?;
    let ttl = storage::parse_ttl(ttl)?;
    check(&entries)?;
    let area = storage::new_area(
        custom_id.to_string(),
        Some(owner.to_string()),
        state.clock.now(),
        ttl,
        entries,
    )
    .map_err(too_large)?;
    state.store.put_storage(&area)?.durable().await?;
    tracing::info!(storage_id = %custom_id, ttl, "custom storage area stored");
    Ok(custom_id.to_string())
}

/// The area `id`, if it exists, is not past its time and `requester` may read it.
///
/// # Errors
/// Unknown or expired (404), another user's (403), storage failure.
pub fn area(state: &AppState, id: &str, requester: Requester<'_>) -> Result<StorageArea, AppError> {
    let area = state
        .store
        .storage(id)?
        .filter(|area| !area.expired(state.clock.now()))
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no storage `{id}`: it never existed or its time to live has passed"
            ))
        })?;
    if area.owner.is_some() && area.owner.as_deref() != requester {
        return Err(AppError::Forbidden(format!(
            "storage `{id}` belongs to another user: send the gms_user header it was created with"
        )));
    }
    Ok(area)
}

/// The value of `key` in area `id`.
///
/// # Errors
/// As [`area`]; an unknown key (404).
pub fn value(
    state: &AppState,
    id: &str,
    key: &str,
    requester: Requester<'_>,
) -> Result<StorageEntry, AppError> {
    entry_of(area(state, id, requester)?, key)
}

/// Removes area `id`.
///
/// # Errors
/// As [`area`].
pub async fn delete(state: &AppState, id: &str, requester: Requester<'_>) -> Result<(), AppError> {
    area(state, id, requester)?;
    state.store.delete_storage(id)?.durable().await?;
    tracing::info!(storage_id = %id, "storage area deleted");
    Ok(())
}

/// Removes `key` from area `id`.
///
/// # Errors
/// As [`value`].
pub async fn delete_key(
    state: &AppState,
    id: &str,
    key: &str,
    requester: Requester<'_>,
) -> Result<(), AppError> {
    entry_of(area(state, id, requester)?, key)?;
    state
        .store
        .update_storage(id, &|area| {
            area.remove(key);
        })?
        .durable()
        .await?;
    Ok(())
}

// ----- a service's storage -----

/// The storage of service `service_id` (empty if it has none).
///
/// # Errors
/// Unknown service (404), another user's (403), storage failure.
pub fn service_area(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<Vec<StorageEntry>, AppError> {
    owned_service(state, service_id, requester)?;
    Ok(state
        .store
        .service_storage(service_id)?
        .map(|area| area.entries)
        .unwrap_or_default())
}

/// The value of `key` in the storage of service `service_id`.
///
/// # Errors
/// As [`service_area`]; an unknown key (404).
pub fn service_value(
    state: &AppState,
    service_id: &str,
    key: &str,
    requester: Requester<'_>,
) -> Result<StorageEntry, AppError> {
    owned_service(state, service_id, requester)?;
    let area = state
        .store
        .service_storage(service_id)?
        .ok_or_else(|| no_key(key))?;
    entry_of(area, key)
}

/// Sets `entries` in the storage of service `service_id` (a key sent again is replaced).
///
/// # Errors
/// As [`service_area`]; a bad key (400), a limit (413).
pub async fn service_store(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
    entries: Vec<StorageEntry>,
) -> Result<(), AppError> {
    let record = owned_service(state, service_id, requester)?;
    check(&entries)?;
    let now = state.clock.now();
    let stored = state.store.change_service_storage(service_id, |current| {
        let mut area = current.unwrap_or_else(|| StorageArea {
            id: record.id.clone(),
            owner: record.owner.clone(),
            created_at: now,
            expire_at: record.expire_at,
            entries: Vec::new(),
        });
        area.merge(entries.clone())?;
        Ok::<_, StorageLimit>(area)
    });
    match stored {
        Ok(stored) => stored.durable().await?,
        Err(UpdateError::Rejected(limit)) => return Err(too_large(limit)),
        Err(UpdateError::Store(err)) => return Err(err.into()),
    };
    Ok(())
}

/// Removes the storage of service `service_id` (nothing to remove is fine).
///
/// # Errors
/// As [`service_area`].
pub async fn service_delete(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<(), AppError> {
    owned_service(state, service_id, requester)?;
    state
        .store
        .delete_service_storage(service_id)?
        .durable()
        .await?;
    Ok(())
}

/// Removes `key` from the storage of service `service_id`.
///
/// # Errors
/// As [`service_value`].
pub async fn service_delete_key(
    state: &AppState,
    service_id: &str,
    key: &str,
    requester: Requester<'_>,
) -> Result<(), AppError> {
    service_value(state, service_id, key, requester)?;
    state
        .store
        .update_service_storage(service_id, &|area| {
            area.remove(key);
        })?
        .durable()
        .await?;
    Ok(())
}

fn check(entries: &[StorageEntry]) -> Result<(), AppError> {
    storage::check_entries(entries).map_err(|err| match err {
        EntryError::Field(err) => AppError::InvalidField(err),
        EntryError::Limit(limit) => too_large(limit),
    })
}

fn entry_of(area: StorageArea, key: &str) -> Result<StorageEntry, AppError> {
    area.entries
        .into_iter()
        .find(|e| e.key == key)
        .ok_or_else(|| no_key(key))
}

fn no_key(key: &str) -> AppError {
    AppError::NotFound(format!("the storage has no key `{key}`"))
}

fn too_large(limit: StorageLimit) -> AppError {
    AppError::TooLarge(limit.0)
}
