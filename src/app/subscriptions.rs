//! The GMS Notification API: subscriptions to tagged events, and the publishing of events
//! to every subscription whose filter matches (delivered by the push layer's channels).
//!
//! Subscriptions are stored durably and expire by their `expire` through the expiry job's
//! index scan; one made with a `gms_user` can be deleted by that user only. Published events
//! are not stored (GMS sends them on and forgets them).

use uuid::Uuid;

use super::{AppError, AppState, Requester};
use crate::domain::options::FieldError;
use crate::domain::subscription::{Channel, PublishRequest, Subscription, SubscriptionRequest};

/// The most subscriptions stored at once: a publish reads them all, so their number is
/// bounded (503 beyond it, until some expire).
pub const MAX_SUBSCRIPTIONS: usize = 100_000;

/// Stores the subscription `request` of `requester`; returns its id.
///
/// # Errors
/// A bad field (400), an httpcb URL that points inside (400), too many subscriptions (503),
/// storage failure.
pub async fn subscribe(
    state: &AppState,
    requester: Requester<'_>,
    request: SubscriptionRequest,
) -> Result<String, AppError> {
    let id = Uuid::new_v4().to_string();
    let subscription = Subscription::from_request(
        request,
        id.clone(),
        requester.map(str::to_string),
        state.clock.now(),
    )?;
    if let Some(url) = subscription.channel.url() {
        let field = match subscription.channel {
            Channel::CustomHttp { .. } => "notificationDetails.properties.url",
            _ => "notificationDetails.deviceId",
        };
        state
            .settings
            .egress
            .check_at_creation(url)
            .await
            .map_err(|refusal| FieldError::new(field, refusal.to_string()))?;
    }
    if state.store.subscription_count() >= MAX_SUBSCRIPTIONS {
        return Err(AppError::Unavailable(format!(
            "Limit of {MAX_SUBSCRIPTIONS} notification subscriptions is reached: retry when some have expired"
        )));
    }
    state
        .store
        .put_subscription(&subscription)?
        .durable()
        .await?;
    tracing::info!(subscription_id = %id, filter = %subscription.filter, "notification subscription stored");
    Ok(id)
}

/// The subscription `id` if it exists, has not expired, and `requester` may delete it.
///
/// # Errors
/// Unknown or expired (404), another user's (403), storage failure.
pub fn check_access(
    state: &AppState,
    id: &str,
    requester: Requester<'_>,
) -> Result<Subscription, AppError> {
    let subscription = state
        .store
        .subscription(id)?
        .filter(|s| !s.expired(state.clock.now()))
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no notification subscription `{id}`: it never existed or has expired"
            ))
        })?;
    if subscription.owner.is_some() && subscription.owner.as_deref() != requester {
        return Err(AppError::Forbidden(format!(
            "subscription `{id}` belongs to another user: send the gms_user header it was made with"
        )));
    }
    Ok(subscription)
}

/// Deletes the subscription `id`.
///
/// # Errors
/// As [`check_access`].
pub async fn unsubscribe(
    state: &AppState,
    id: &str,
    requester: Requester<'_>,
) -> Result<(), AppError> {
    check_access(state, id, requester)?;
    state.store.delete_subscription(id)?.durable().await?;
    tracing::info!(subscription_id = %id, "notification subscription deleted");
    Ok(())
}

/// Sends the event `request` to every live subscription whose filter matches its tag;
/// returns how many were handed the event.
///
/// # Errors
/// A bad field (400), storage failure.
pub fn publish(state: &AppState, request: &PublishRequest) -> Result<usize, AppError> {
    request.check()?;
    let matching = state
        .store
        .subscriptions_matching(&request.tag, state.clock.now())?;
    let delivered = matching
        .iter()
        .filter(|s| {
            state
                .notifier
                .publish_event(s, &request.tag, &request.message)
        })
        .count();
    tracing::info!(tag = %request.tag, matching = matching.len(), delivered, "notification published");
    Ok(delivered)
}
