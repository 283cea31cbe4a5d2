//! What a callback create passes before it is stored: GMS's checks of the customer number
//! (`_disallow_impossible_phone_numbers`, `_disallow_premium_phone_numbers`) and its limits
//! on how many callbacks a service takes (`_max_queued_callbacks_per_service`, the interval
//! throttles `_throttle_callbacks_per_service_N` / `_throttle_ttl_N`, and the daily
//! `_throttle_request_parameters_limit`).
//!
//! The rules are `domain::phone` and `domain::throttle`; this module reads the counts from the
//! store, and counts an admitted create once it is stored. From reading the counts to moving
//! them, a create holds [`Catalog::lock_limits`](super::Catalog::lock_limits), so two
//! creates cannot both take a limit's last place.

use tokio::sync::MutexGuard;

use super::{AppError, AppState};
use crate::domain::options::{CreateRequest, ServiceSettings};
use crate::domain::service::CallbackState;
use crate::domain::throttle::{day_of, ThrottleRefusal, Window};
use crate::store::Pending;

/// A create that the limits let through. Hold it until the service is stored, then
/// [`Admission::count`] it: until then no other limited create reads the counts.
#[must_use = "count the admitted create once it is stored"]
pub(crate) struct Admission<'a> {
    /// The limits' lock, when the service has a limit.
    _guard: Option<MutexGuard<'a, ()>>,
    service: String,
    /// The interval counts after this create.
    windows: Vec<(u8, Window)>,
    /// The UTC day the daily counts are of.
    day: u32,
    /// The counted request parameters and their values.
    values: Vec<(String, String)>,
}

/// Checks a create of `service_name` with `settings` against the customer-number rules and
/// the service's limits. On success the create holds the limits' lock (when the service has
/// a limit) until [`Admission::count`] or the admission is dropped.
///
/// # Errors
/// A customer number the service refuses (400, `CallbackExceptionNumber`); a full queue or a
/// throttle reached (503, in GMS's words); storage failure.
pub(crate) async fn admit<'a>(
    state: &'a AppState,
    service_name: &str,
    settings: &ServiceSettings,
    request: &CreateRequest,
) -> Result<Admission<'a>, AppError> {
    if let Some(number) = request.customer_number.as_deref() {
        settings
            .phone
            .check(number)
            .map_err(|refusal| AppError::InvalidNumber(refusal.to_string()))?;
    }
    let throttles = &settings.throttles;
    let mut admission = Admission {
        _guard: None,
        service: service_name.to_string(),
        windows: Vec::new(),
        day: 0,
        values: Vec::new(),
    };
    if settings.max_queued_callbacks.is_none() && !throttles.any() {
        return Ok(admission);
    }
    admission._guard = Some(state.catalog.lock_limits().await);
    let refused = |refusal: ThrottleRefusal| AppError::Unavailable(refusal.to_string());

    if let Some(max) = settings.max_queued_callbacks {
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let queued = state.store.count_in_states(
            service_name,
            &[CallbackState::Scheduled, CallbackState::Queued],
            limit,
        )?;
        if queued as u64 >= max {
            return Err(refused(ThrottleRefusal::QueueFull {
                service: service_name.to_string(),
            }));
        }
    }

    let now = state.clock.now();
    let slots: Vec<u8> = throttles.intervals.iter().map(|t| t.slot).collect();
    let windows = state.store.throttle_windows(service_name, &slots)?;
    for (throttle, window) in throttles.intervals.iter().zip(windows) {
        throttle.check(service_name, window, now).map_err(refused)?;
        admission
            .windows
            .push((throttle.slot, throttle.admit(window, now)));
    }

    if let Some(per_parameter) = &throttles.per_parameter {
        let values = per_parameter.values(request.customer_number.as_deref(), &request.user_data);
        admission.day = day_of(now);
        let today = state
            .store
            .throttle_requests_on(admission.day, service_name, &values)?;
        for ((parameter, value), count) in values.iter().zip(today) {
            per_parameter
                .check(parameter, value, count)
                .map_err(refused)?;
        }
        admission.values = values
            .into_iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
    }
    Ok(admission)
}

impl Admission<'_> {
    /// Counts the admitted create, `created` in the store, in the service's throttles, and
    /// releases the limits' lock: one unit of work, durable with the returned receipt.
    ///
    /// # Errors
    /// Storage failure.
    pub(crate) fn count(
        self,
        state: &AppState,
        created: Pending<()>,
    ) -> Result<Pending<()>, AppError> {
        if self.windows.is_empty() && self.values.is_empty() {
            return Ok(created);
        }
        let values: Vec<(&str, &str)> = self
            .values
            .iter()
            .map(|(p, v)| (p.as_str(), v.as_str()))
            .collect();
        let counted =
            state
                .store
                .count_throttled(&self.service, &self.windows, self.day, &values)?;
        Ok(created.and(counted).map(drop))
    }
}
