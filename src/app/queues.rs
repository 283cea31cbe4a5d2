//! Questions about the queues, answered by the router: a service's place in its virtual
//! queue (`check-queue-position`, seed 000), Stat Server statistics, queue summaries.

use super::records::owned_service;
use super::{AppError, AppState, Requester};
use crate::center::stats::Stats;
use crate::domain::options::{self, FieldError};
use crate::domain::service::CallbackState;
use crate::domain::target::Target;
use crate::router::core::QueueSummary;

/// A service's place in its virtual queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    /// 1-based, in the router's order; 0 once an agent is reserved.
    pub position: usize,
    /// Services waiting in the same virtual queue.
    pub total_waiting: usize,
    /// Seconds until an agent, estimated from observed departures; `None` without data.
    pub eta_secs: Option<u64>,
    /// Whether an agent is about ready.
    pub threshold_passed: bool,
    /// Why, in GMS's words.
    pub reason: String,
}

/// Where the router has a service.
enum Place {
    /// Waiting: position, total, ETA.
    Waiting(usize, usize, Option<u64>),
    /// Reserved or being handled: the number still waiting in its queue.
    Served(usize),
    /// Not in a queue.
    NotQueued,
}

/// Where the service stands in its virtual queue.
///
/// # Errors
/// Unknown id (404), another user's (403), a service not in a queue (400).
pub async fn check_queue_position(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<QueuePosition, AppError> {
    let record = owned_service(state, service_id, requester)?;
    // The options were validated when the service was created: read the three this answer
    // needs, without parsing `_target` and its skill expressions again.
    let (eta_limit, position_limit) = options::agent_ready_threshold(&record.options);
    let queue = options::queue_name(&record.options, &record.service_name);
    let handled = record.state == CallbackState::Processing;
    let id = service_id.to_string();
    // One question, so the answer cannot mix two moments of the queue.
    let place = router_unavailable(
        state
            .router
            .query(move |router, now| {
                if let Some((position, total)) = router.position(&id, now) {
                    return Place::Waiting(position, total, router.eta_secs(&id, now));
                }
                if handled || router.reserved_agent(&id).is_some() {
                    let total = router
                        .queues(now)
                        .into_iter()
                        .find(|q| q.name == queue)
                        .map_or(0, |q| q.waiting);
                    return Place::Served(total);
                }
                Place::NotQueued
            })
            .await,
    )?;
    let (position, total_waiting, eta_secs) = match place {
        Place::Waiting(position, total, eta) => (position, total, eta),
        Place::Served(total) => {
            return Ok(QueuePosition {
                position: 0,
                total_waiting: total,
                eta_secs: Some(0),
                threshold_passed: true,
                reason: "agent available".into(),
            })
        }
        Place::NotQueued => {
            return Err(FieldError::new(
                "_id",
                format!(
                    "service {service_id} is {} and not waiting in a queue: ask again once it is QUEUED",
                    record.state
                ),
            )
            .into())
        }
    };
    let (threshold_passed, reason) = match eta_secs {
        None => (true, "eta n/a".to_string()),
        Some(eta) if eta <= eta_limit && position as u64 <= position_limit => (
            true,
            format!("eta  <= {eta_limit} and position <={position_limit} "),
        ),
        Some(_) => (
            false,
            format!("eta  > {eta_limit} or position >{position_limit} "),
        ),
    };
    Ok(QueuePosition {
        position,
        total_waiting,
        eta_secs,
        threshold_passed,
        reason,
    })
}

/// The Stat Server statistics of a target string (`Billing@StatServer.GA`).
///
/// # Errors
/// A bad target (400).
pub async fn stats(state: &AppState, target: &str) -> Result<Stats, AppError> {
    let target = Target::parse(target).map_err(|err| FieldError::new("target", err.to_string()))?;
    if !state.settings.stat_servers.contains(&target.stat_server) {
        return Err(FieldError::new(
            "target",
            format!(
                "unknown Stat Server `{}`: use one of {}",
                target.stat_server,
                state.settings.stat_servers.join(", ")
            ),
        )
        .into());
    }
    router_unavailable(
        state
            .router
            .query(move |router, _| router.stats(&target))
            .await,
    )
}

/// Every virtual queue with its waiting count, oldest wait and EWT.
///
/// # Errors
/// The router has stopped (503).
pub async fn queues(state: &AppState) -> Result<Vec<QueueSummary>, AppError> {
    router_unavailable(state.router.query(|router, now| router.queues(now)).await)
}

fn router_unavailable<T>(answer: Option<T>) -> Result<T, AppError> {
    answer.ok_or(AppError::Store(crate::store::StoreError::ShuttingDown))
}
