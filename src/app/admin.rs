//! Administrator operations: configured services, callback inspection, bulk cancel,
//! watermarks and queue queries (GMS admin API).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use super::records::{not_found, update};
use super::{notifications, AppError, AppState};
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;
use crate::domain::notification::Notification;
use crate::domain::options::ScheduleService;
use crate::domain::options::{ConfiguredService, FieldError, OptionError, Preset, ValidService};
use crate::domain::service::{CallbackReason, CallbackState, RoutingEvent, ServiceRecord};
use crate::domain::status::StatusNotification;
use crate::domain::time::Timestamp;
use crate::router::core::Event;
use crate::store::Pending;

/// Creates or replaces the configured service `name`. Returns it and whether it is new.
///
/// # Errors
/// A bad name or option (400), storage failure.
pub async fn put_service(
    state: &AppState,
    name: &str,
    preset: Preset,
    options: BTreeMap<String, String>,
) -> Result<(ValidService, bool), AppError> {
    let config = ConfiguredService {
        name: name.to_string(),
        preset,
        options,
    };
    let valid = check_service(config, &state.settings.stat_servers)?;
    let _serialized = state.catalog.lock_writes().await;
    state.store.put_template(&valid.config)?.durable().await?;
    let created = state.catalog.insert(valid.clone());
    tracing::info!(service = name, created, "configured service saved");
    Ok((valid, created))
}

/// Creates or replaces the office-hours or capacity service `name`. Returns it and whether
/// it is new.
///
/// # Errors
/// A bad name or option (400), storage failure.
pub async fn put_schedule_service(
    state: &AppState,
    name: &str,
    preset: Preset,
    options: BTreeMap<String, String>,
) -> Result<(Arc<ScheduleService>, bool), AppError> {
    let config = ConfiguredService {
        name: name.to_string(),
        preset,
        options,
    };
    let valid = config.validate_schedule()?;
    let _serialized = state.catalog.lock_writes().await;
    state.store.put_template(&valid.config)?.durable().await?;
    let created = state.catalog.insert_schedule(valid);
    tracing::info!(
        service = name,
        created,
        "configured scheduling service saved"
    );
    let saved = state
        .catalog
        .schedule(name)
        .ok_or_else(|| AppError::UnknownService(name.to_string()))?;
    Ok((saved, created))
}

/// Options every configured service keeps, whatever its preset: those the seeds call
/// mandatory (`_media_type`, `_wait_for_agent`, `_ttl`), the required `_target`, and `_type`,
/// which says who runs the service. The console marks them and offers no way to remove them.
pub const MANDATORY_OPTIONS: [&str; 5] =
    ["_type", "_media_type", "_wait_for_agent", "_ttl", "_target"];

/// Whether `option` is one of [`MANDATORY_OPTIONS`].
pub fn is_mandatory(option: &str) -> bool {
    MANDATORY_OPTIONS.contains(&option)
}

/// Validates `config` as [`put_service`] does: the domain's checks, then a value for every
/// mandatory option.
fn check_service(
    config: ConfiguredService,
    stat_servers: &[String],
) -> Result<ValidService, OptionError> {
    let valid = config.validate(stat_servers)?;
    let missing = MANDATORY_OPTIONS.into_iter().find(|option| {
        valid
            .effective
            .get(*option)
            .is_none_or(|v| v.trim().is_empty())
    });
    match missing {
        Some(option) => Err(OptionError {
            option: option.to_string(),
            message: "mandatory: every service needs a value for it, and it cannot be removed"
                .into(),
        }),
        None => Ok(valid),
    }
}

/// Every problem [`put_service`] would find in these options, for a form that shows each next
/// to its option. Validation stops at the first bad option, so each one found is set aside
/// (the preset's default applies again) and the rest are checked again.
pub fn service_problems(
    state: &AppState,
    name: &str,
    preset: Preset,
    mut options: BTreeMap<String, String>,
) -> Vec<OptionError> {
    let mut problems: Vec<OptionError> = Vec::new();
    let mut name = name.to_string();
    // Each round sets one option aside, so the rounds are bounded by the options given.
    for _ in 0..=options.len() + 1 {
        let config = ConfiguredService {
            name: name.clone(),
            preset,
            options: options.clone(),
        };
        let Err(problem) = check_service(config, &state.settings.stat_servers) else {
            break;
        };
        if problems.iter().any(|p| p.option == problem.option) {
            break;
        }
        let set_aside = if problem.option == "name" {
            name = "service".into();
            true
        } else {
            options.remove(&problem.option).is_some()
        };
        problems.push(problem);
        if !set_aside {
            break;
        }
    }
    problems
}

/// Removes the configured service `name`. Existing services keep their options snapshot.
///
/// # Errors
/// No such service (404), storage failure.
pub async fn delete_service(state: &AppState, name: &str) -> Result<(), AppError> {
    let _serialized = state.catalog.lock_writes().await;
    let Some(deleted) = state.store.delete_template(name)?.if_changed() else {
        return Err(AppError::UnknownService(name.to_string()));
    };
    deleted.durable().await?;
    state.catalog.remove(name);
    tracing::info!(service = name, "configured service deleted");
    Ok(())
}

/// One stored service with everything kept for it.
#[derive(Debug)]
pub struct CallbackDetail {
    /// The record: options snapshot and state.
    pub record: ServiceRecord,
    /// Its routing history, oldest first.
    pub routing_history: Vec<RoutingEvent>,
    /// Customer-bound notifications, oldest first, with their delivered flags.
    pub notifications: Vec<Notification>,
    /// Agent-bound notifications, oldest first.
    pub agent_notifications: Vec<Notification>,
    /// Status notifications (`_enable_status_notification`), oldest first, with where each
    /// is: pending, delivered or failed, its attempts and last error.
    pub status_notifications: Vec<StatusNotification>,
    /// The chat session and its whole transcript, if a chat started.
    pub chat: Option<(ChatSession, Vec<TranscriptEvent>)>,
}

/// One stored service in full (DESIGN §6.3): record, notifications, transcript.
///
/// # Errors
/// Unknown id (404), storage failure.
pub async fn callback_detail(state: &AppState, id: &str) -> Result<CallbackDetail, AppError> {
    let record = state.store.service(id)?.ok_or_else(|| not_found(id))?;
    let chat = match record.chat_session_id {
        Some(_) => Some(state.chat.full_view(&record, 1).await?),
        None => None,
    };
    Ok(CallbackDetail {
        routing_history: state.store.routing_history(id)?,
        notifications: state.store.notifications(id)?,
        agent_notifications: state.store.agent_notifications(id)?,
        status_notifications: state.store.status_notifications(id)?,
        chat,
        record,
    })
}

/// The outcome of a bulk cancel, per id.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct BulkCancel {
    /// Ids now COMPLETED with the given reason.
    pub cancelled: Vec<String>,
    /// Ids with no stored service.
    pub not_found: Vec<String>,
    /// Ids that could not be cancelled, with why.
    pub refused: Vec<Refused>,
}

/// An id a bulk cancel left alone.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Refused {
    /// The service.
    pub id: String,
    /// Why (its state).
    pub message: String,
}

/// Cancels many services at once.
///
/// # Errors
/// A reason other than CANCELLED / CANCELLED_BY_ADMIN (400), storage failure.
pub async fn bulk_cancel(
    state: &AppState,
    reason: Option<&str>,
    ids: &[String],
) -> Result<BulkCancel, AppError> {
    let reason = match reason.unwrap_or("CANCELLED_BY_ADMIN") {
        "CANCELLED_BY_ADMIN" => CallbackReason::CancelledByAdmin,
        "CANCELLED" => CallbackReason::Cancelled,
        other => {
            return Err(FieldError::new(
                "reason",
                format!("`{other}` is not a cancel reason: use CANCELLED_BY_ADMIN or CANCELLED"),
            )
            .into())
        }
    };
    if ids.is_empty() || ids.len() > 10_000 {
        return Err(FieldError::new("ids", "give between 1 and 10000 service ids").into());
    }
    let now = state.clock.now();
    let mut outcome = BulkCancel::default();
    let mut records = Vec::new();
    for id in ids {
        match update(state, id, |record| Ok(record.cancel(reason, now)?)) {
            Ok(record) => {
                outcome.cancelled.push(id.clone());
                records.push(record);
            }
            Err(AppError::NotFound(_)) => outcome.not_found.push(id.clone()),
            Err(AppError::Lifecycle(err)) => outcome.refused.push(Refused {
                id: id.clone(),
                message: err.to_string(),
            }),
            Err(other) => return Err(other),
        }
    }
    let outbox =
        notifications::record_cancelled(state, records.iter().map(Pending::written), reason);
    let mut cancelled = Vec::with_capacity(records.len());
    // One flush covers them all: after the first wait, the others are already durable.
    for record in records {
        cancelled.push(record.durable().await?);
    }
    let records = cancelled;
    notifications::deliver(outbox).await?;
    for service in &outcome.cancelled {
        state.router.send(Event::Removed {
            service: service.clone(),
        });
    }
    for record in &records {
        super::callbacks::close_cancelled_chat(state, record).await;
    }
    tracing::info!(cancelled = outcome.cancelled.len(), "bulk cancel");
    Ok(outcome)
}

/// Active (not COMPLETED) services per configured service, optionally for one service.
///
/// # Errors
/// A service name that is neither configured nor has services (404), storage failure.
pub fn watermarks(
    state: &AppState,
    service_name: Option<&str>,
) -> Result<BTreeMap<String, u64>, AppError> {
    let mut counts = state.store.active_counts();
    if let Some(name) = service_name {
        // A deleted configured service may still have active services: those count too.
        let count = counts.remove(name);
        if count.is_none() && state.catalog.get(name).is_none() {
            return Err(AppError::UnknownService(name.to_string()));
        }
        counts = BTreeMap::from([(name.to_string(), count.unwrap_or(0))]);
    }
    Ok(counts)
}

/// `GET /genesys/1/admin/callback/queues` filters.
#[derive(Debug, Clone)]
pub struct QueueQuery {
    /// Only this configured service (`target`).
    pub service_name: Option<String>,
    /// States to include (default: every state but COMPLETED).
    pub states: Vec<CallbackState>,
    /// Desired time at or after this.
    pub start_time: Option<Timestamp>,
    /// Desired time at or before this.
    pub end_time: Option<Timestamp>,
    /// At most this many records in all.
    pub max: usize,
}

/// The default and largest `max` of a queue query.
pub const QUEUE_QUERY_DEFAULT_MAX: usize = 100;
/// The largest `max` accepted.
pub const QUEUE_QUERY_MAX: usize = 10_000;

impl QueueQuery {
    /// Reads the query-string fields.
    ///
    /// # Errors
    /// A bad field, named.
    pub fn parse(fields: Vec<(String, String)>) -> Result<Self, FieldError> {
        let mut query = QueueQuery {
            service_name: None,
            states: CallbackState::ALL
                .into_iter()
                .filter(|s| *s != CallbackState::Completed)
                .collect(),
            start_time: None,
            end_time: None,
            max: QUEUE_QUERY_DEFAULT_MAX,
        };
        for (key, value) in fields {
            let value = value.trim();
            match key.as_str() {
                "target" => query.service_name = Some(value.to_string()).filter(|v| !v.is_empty()),
                "states" => {
                    query.states = value
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, String>>()
                        .map_err(|m| FieldError::new(&key, m))?
                }
                "start_time" => {
                    query.start_time =
                        Some(Timestamp::parse_iso(value).map_err(|m| FieldError::new(&key, m))?)
                }
                "end_time" => {
                    query.end_time =
                        Some(Timestamp::parse_iso(value).map_err(|m| FieldError::new(&key, m))?)
                }
                "max" => {
                    query.max = value
                        .parse()
                        .ok()
                        .filter(|m| (1..=QUEUE_QUERY_MAX).contains(m))
                        .ok_or_else(|| {
                            FieldError::new(
                                &key,
                                format!("give a number from 1 to {QUEUE_QUERY_MAX}"),
                            )
                        })?
                }
                _ => {
                    return Err(FieldError::new(
                        key,
                        "not a filter: use target, states, start_time, end_time, max",
                    ))
                }
            }
        }
        Ok(query)
    }
}

/// Services matching `query`, grouped by configured service.
///
/// # Errors
/// Storage failure.
pub fn queues(
    state: &AppState,
    query: &QueueQuery,
) -> Result<BTreeMap<String, Vec<ServiceRecord>>, AppError> {
    let records = if query.start_time.is_some() || query.end_time.is_some() {
        queues_in_window(state, query)?
    } else {
        state.store.services_in_states(
            query.service_name.as_deref(),
            &query.states,
            &|_| true,
            query.max,
        )?
    };
    let mut grouped: BTreeMap<String, Vec<ServiceRecord>> = BTreeMap::new();
    for record in records {
        grouped
            .entry(record.service_name.clone())
            .or_default()
            .push(record);
    }
    for records in grouped.values_mut() {
        records.sort_by_key(|r| r.desired_time);
    }
    Ok(grouped)
}

/// The records of a queue query with a time window, found through the time index: only the
/// window's index entries are read, and only the records returned. The same `max` records as
/// the state index's order picks without a window (configured service, state code, id), so a
/// window changes what is read, not what is answered.
fn queues_in_window(state: &AppState, query: &QueueQuery) -> Result<Vec<ServiceRecord>, AppError> {
    // `end_time` is inclusive; the index's upper bound is not.
    let to = query
        .end_time
        .map(|t| Timestamp::from_millis(t.as_millis().saturating_add(1)));
    if query
        .start_time
        .zip(to)
        .is_some_and(|(from, to)| from >= to)
    {
        return Ok(Vec::new());
    }
    let mut picked: Vec<(String, u8, String)> = Vec::new();
    state
        .store
        .visit_by_time(query.start_time, to, &mut |summary| {
            let wanted = query
                .service_name
                .as_deref()
                .is_none_or(|name| name == summary.service_name)
                && query.states.contains(&summary.state);
            if wanted {
                picked.push((
                    summary.service_name.to_string(),
                    summary.state.code(),
                    summary.id.to_string(),
                ));
            }
            ControlFlow::Continue(())
        })?;
    picked.sort_unstable();
    picked.truncate(query.max);
    let ids: Vec<String> = picked.into_iter().map(|(_, _, id)| id).collect();
    super::records::stored(state, &ids)
}
