//! Customer-bound notifications, for clients without a push channel (seed 000
//! `retrieve-notifications`).

use super::callbacks::owned_service;
use super::{AppError, AppState, Requester};

/// The messages not yet delivered to the customer of `service_id`, oldest first; they count
/// as delivered once returned.
///
/// # Errors
/// Unknown id (404), another user's service (403), storage failure.
pub async fn retrieve(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<Vec<serde_json::Value>, AppError> {
    // 404 or 403 before anything is marked delivered.
    owned_service(state, service_id, requester)?;
    let taken = state.store.take_undelivered(service_id)?;
    state.store.wait_durable().await?;
    Ok(taken
        .into_iter()
        .map(|n| serde_json::from_str(&n.message).unwrap_or(serde_json::Value::String(n.message)))
        .collect())
}
