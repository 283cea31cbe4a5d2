//! Customer-bound notifications, for clients without a push channel (seed 000
//! `retrieve-notifications`).

use super::callbacks::{check_owner, not_found};
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
    let record = state
        .store
        .service(service_id)?
        .ok_or_else(|| not_found(service_id))?;
    check_owner(&record, requester)?;
    let taken = state.store.take_undelivered(service_id)?;
    state.store.wait_durable().await?;
    Ok(taken
        .into_iter()
        .map(|n| serde_json::from_str(&n.message).unwrap_or(serde_json::Value::String(n.message)))
        .collect())
}
