//! One stored service on a request's behalf: found (404), reachable by the requester (403),
//! changed atomically, and its typed settings. Every use case that names a service by id goes
//! through here first (DESIGN §7: 404, then 403, then 400), so this module depends on no other
//! use case and they all depend on it.

use super::{AppError, AppState, Requester};
use std::sync::Arc;

use crate::domain::options::ServiceSettings;
use crate::domain::service::{RoutingEvent, ServiceAccess, ServiceRecord};
use crate::store::{Pending, UpdateError};

/// Runs `change` on the stored service atomically; 404 when it does not exist. The new record
/// comes with the change's durability (`.durable().await`).
pub(crate) fn update(
    state: &AppState,
    id: &str,
    mut change: impl FnMut(&mut ServiceRecord) -> Result<(), AppError>,
) -> Result<Pending<ServiceRecord>, AppError> {
    update_routed(state, id, |record, _| change(record))
}

/// [`update`] for a change that also appends routing history (pushed onto its second
/// argument), in the same transaction.
pub(crate) fn update_routed(
    state: &AppState,
    id: &str,
    change: impl FnMut(&mut ServiceRecord, &mut Vec<RoutingEvent>) -> Result<(), AppError>,
) -> Result<Pending<ServiceRecord>, AppError> {
    match state.store.update_service_routed(id, change) {
        Ok(changed) => changed.transpose().ok_or_else(|| not_found(id)),
        Err(UpdateError::Rejected(err)) => Err(err),
        Err(UpdateError::Store(err)) => Err(err.into()),
    }
}

pub(crate) fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!(
        "no service has the id `{id}`: it may have expired (its _ttl passed) or never existed"
    ))
}

pub(crate) fn check_service(record: &ServiceRecord, service_name: &str) -> Result<(), AppError> {
    check_service_name(&record.id, &record.service_name, service_name)
}

/// 404 unless service `id`, of configured service `belongs_to`, is one of `service_name`.
fn check_service_name(id: &str, belongs_to: &str, service_name: &str) -> Result<(), AppError> {
    if belongs_to == service_name {
        Ok(())
    } else {
        Err(AppError::NotFound(format!(
            "service `{service_name}` has no callback `{id}`: it belongs to `{belongs_to}`"
        )))
    }
}

/// The stored service `id`, if `requester` may see it.
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub(crate) fn owned_service(
    state: &AppState,
    id: &str,
    requester: Requester<'_>,
) -> Result<ServiceRecord, AppError> {
    let record = state.store.service(id)?.ok_or_else(|| not_found(id))?;
    check_owner(&record, requester)?;
    Ok(record)
}

/// Checks that service `id` exists and that `requester` may reach it, before a request's
/// body is looked at (DESIGN §7: 404, then 403, then 400).
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub fn check_access(state: &AppState, id: &str, requester: Requester<'_>) -> Result<(), AppError> {
    reachable(state, id, requester).map(drop)
}

/// The [`ServiceAccess`] of service `id` if `requester` may reach it: [`owned_service`]'s
/// checks, reading no more of the record than they need.
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub(crate) fn reachable(
    state: &AppState,
    id: &str,
    requester: Requester<'_>,
) -> Result<ServiceAccess, AppError> {
    let access = state
        .store
        .service_access(id)?
        .ok_or_else(|| not_found(id))?;
    if may_reach(access.owner.as_deref(), requester) {
        Ok(access)
    } else {
        Err(belongs_to_another(id))
    }
}

/// Like [`check_access`] for `.../callback/{name}/{id}`: the configured service and the
/// service instance exist, the requester may reach it, and it belongs to that service.
///
/// # Errors
/// Unknown name or id, or an id of another configured service (404); another user's
/// service (403); storage failure.
pub fn check_callback_access(
    state: &AppState,
    service_name: &str,
    id: &str,
    requester: Requester<'_>,
) -> Result<(), AppError> {
    if state.catalog.get(service_name).is_none() {
        return Err(AppError::UnknownService(service_name.to_string()));
    }
    let access = reachable(state, id, requester)?;
    check_service_name(id, &access.service_name, service_name)
}

/// Whether `requester` may reach `record` by its id: see [`may_reach`].
pub(crate) fn owned_by(record: &ServiceRecord, requester: Requester<'_>) -> bool {
    may_reach(record.owner.as_deref(), requester)
}

/// Whether `requester` may reach a service created by `owner`. A service created without a
/// `gms_user` (only where `[security] allow_anonymous_services` is set) is reachable by
/// whoever holds its unguessable id, as in GMS; it is never listed.
fn may_reach(owner: Option<&str>, requester: Requester<'_>) -> bool {
    owner.is_none() || owner == requester
}

pub(crate) fn check_owner(
    record: &ServiceRecord,
    requester: Requester<'_>,
) -> Result<(), AppError> {
    if owned_by(record, requester) {
        Ok(())
    } else {
        Err(belongs_to_another(&record.id))
    }
}

fn belongs_to_another(id: &str) -> AppError {
    AppError::Forbidden(format!(
        "service `{id}` belongs to another user: send the gms_user header it was created with"
    ))
}

/// The stored services among `ids`, in the order given (ids not stored are left out).
///
/// # Errors
/// Storage failure.
pub fn stored(state: &AppState, ids: &[String]) -> Result<Vec<ServiceRecord>, AppError> {
    ids.iter()
        .filter_map(|id| state.store.service(id).transpose())
        .collect::<Result<_, _>>()
        .map_err(AppError::from)
}

/// The typed settings of a stored service; 503 (logged) when its options no longer validate.
pub(crate) fn settings_of(
    state: &AppState,
    record: &ServiceRecord,
) -> Result<Arc<ServiceSettings>, AppError> {
    state.typed_settings.settings(&record.options).map_err(|err| {
        tracing::error!(service_id = %record.id, error = %err, "stored options no longer validate");
        AppError::Unavailable(format!(
            "service `{}` cannot be routed with its stored options ({err}): ask the administrator",
            record.id
        ))
    })
}
