//! Customer-facing service operations: create, query, cancel, reschedule (GMS Callback and
//! Service APIs).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::records::{check_owner, check_service, owned_service, update};
use super::{limits, notifications, schedule, AppError, AppState, Requester};
use crate::domain::dialog;
use crate::domain::options::{
    self, check_field_name, CreateRequest, FieldError, Scenario, ServiceSettings, ValidService,
};
use crate::domain::schedule::ScheduleRules;
use crate::domain::service::{
    expiry_time, CallbackReason, CallbackState, LifecycleError, RouteProgress, ServiceRecord,
    StateFilter,
};
use crate::domain::time::Timestamp;
use crate::router::core::Event;
use crate::router::task::{entering_service, queued_service};

/// A service just created and stored durably.
#[derive(Debug)]
pub struct Created {
    /// The stored record.
    pub record: ServiceRecord,
    /// The settings in force for it (after request overrides).
    pub settings: ServiceSettings,
    /// `_verbose=true` was asked for.
    pub verbose: bool,
}

/// Creates a service instance of the configured service `service_name` from request fields.
///
/// # Errors
/// Unknown service (404), bad fields or refused overrides (400), storage failure.
pub async fn create_service(
    state: &AppState,
    service_name: &str,
    owner: Requester<'_>,
    fields: Vec<(String, String)>,
) -> Result<Created, AppError> {
    let service = state
        .catalog
        .get(service_name)
        .ok_or_else(|| AppError::UnknownService(service_name.to_string()))?;
    if owner.is_none() && !state.settings.allow_anonymous_services {
        return Err(FieldError::new(
            "gms_user",
            "the header `gms_user` is required: it identifies the user the service belongs to (set [security] allow_anonymous_services to accept services without one)",
        )
        .into());
    }
    create_instance(state, &service, owner, fields).await
}

/// Creates an instance of `service` (a configured one, or one made for the occasion such as
/// the `[inbound_chat]` fallback of Chat API v2) from request fields, for `owner`, who may be
/// nobody: the caller decided whether that is allowed.
///
/// # Errors
/// Bad fields or refused overrides (400), storage failure.
pub(crate) async fn create_instance(
    state: &AppState,
    service: &ValidService,
    owner: Requester<'_>,
    fields: Vec<(String, String)>,
) -> Result<Created, AppError> {
    let service_name = service.config.name.as_str();
    let request = CreateRequest::parse(fields)?;
    check_callback_url(state, &request).await?;
    let (options, settings) = request.apply_overrides(service, &state.settings.stat_servers)?;
    request.check_mandatory(service_name, &settings)?;
    // The customer number and the service's limits; counted once the service is stored.
    let admission = limits::admit(state, service_name, &settings, &request).await?;
    check_protections(
        state,
        service_name,
        &settings,
        request.customer_number.as_deref(),
    )?;

    let now = state.clock.now();
    let desired_time = request.desired_time.unwrap_or(now);
    // From the bucket's count to the insert: two creates cannot both take its last place.
    let booking = if schedule::takes_bucket(&settings.schedule, desired_time, now) {
        Some(state.catalog.lock_bookings().await)
    } else {
        None
    };
    schedule::check_desired_time(
        state,
        service_name,
        &settings.schedule,
        desired_time,
        request.desired_time.is_some(),
        None,
    )?;
    let expire_at = expiry_time(desired_time, settings.ttl_secs, now).map_err(|message| {
        let field = if request.desired_time.is_some() {
            "_desired_time"
        } else {
            "_ttl"
        };
        FieldError::new(field, message)
    })?;
    let scheduled = desired_time > now;
    let initial = if scheduled {
        CallbackState::Scheduled
    } else {
        CallbackState::Queued
    };
    let mut record = ServiceRecord::new(
        Uuid::new_v4().to_string(),
        service_name,
        service.config.preset,
        now,
    );
    record.options = options;
    if let Some(code) = new_access_code(&settings) {
        record.options.insert(dialog::ACCESS_CODE.to_string(), code);
    }
    record.user_data = request.user_data;
    record.owner = owner.map(str::to_string);
    record.customer_number = request.customer_number;
    record.device_os = request.device_os.map(|p| p.as_str().to_string());
    record.device_notification_id = request.device_notification_id;
    record.desired_time = desired_time;
    record.expire_at = expire_at;
    // Only services that wait for an agent (and user-terminated voice) sit in a virtual
    // queue from the start; an immediate chat enters it when its chat arrives, a
    // user-originated call when the call does.
    let queues = settings.scenario.queues_at_start(settings.wait_for_agent);
    record.queued_at = (!scheduled && queues).then_some(now);
    // Stored with the start of its walk, so that the router's first step appends routing
    // history without writing the record again.
    record.route = record.queued_at.map(RouteProgress::start);
    record.mark_created(initial, now);

    let created = state.store.insert_service(&record)?;
    let counted = admission.count(state, created)?;
    // The time index counts it from here on.
    drop(booking);
    counted.durable().await?;
    tracing::info!(service_id = %record.id, service = service_name, state = %record.state, "service created");
    if record.route.is_some() {
        state
            .router
            .send(Event::Queued(entering_service(&record, &settings)));
    } else {
        route(state, &record, &settings);
    }
    Ok(Created {
        record,
        settings,
        verbose: request.verbose,
    })
}

/// A fresh access code for a user-originated callback that gives one (`_provide_code`):
/// `_access_code_length` random digits. Codes are not checked for uniqueness here; the
/// inbound-call API refuses a code two waiting callbacks share (the caller number then
/// tells them apart).
fn new_access_code(settings: &ServiceSettings) -> Option<String> {
    use rand::Rng;
    if settings.scenario != Scenario::UserOriginated || !settings.provide_code {
        return None;
    }
    let mut rng = rand::rng();
    Some(
        (0..settings.access_code_length)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect(),
    )
}

/// Refuses an httpcb URL that points inside (loopback, private, link-local, ...) unless
/// `[httpcb] allow` lets it, so that the customer learns at creation what delivery would
/// refuse anyway.
async fn check_callback_url(state: &AppState, request: &CreateRequest) -> Result<(), FieldError> {
    let Some(url) = request.device_notification_id.as_deref() else {
        return Ok(());
    };
    if request.device_os != Some(options::PushProvider::HttpCallback) {
        return Ok(());
    }
    state
        .settings
        .egress
        .check_at_creation(url)
        .await
        .map_err(|refusal| FieldError::new("_device_notification_id", refusal.to_string()))
}

/// A GMS callback query (`GET /genesys/1/service/callback[/{name}]?...`).
#[derive(Debug, Clone, Default)]
pub struct CallbackQuery {
    /// Only this configured service (the per-service form of the query).
    pub service_name: Option<String>,
    /// `_id`.
    pub id: Option<String>,
    /// `_customer_number`.
    pub customer_number: Option<String>,
    /// `_callback_state` (`QUEUED`, `!COMPLETED`, `SCHEDULED,QUEUED`).
    pub state: Option<StateFilter>,
    /// Other keys: user data that must be equal.
    pub user_data: Vec<(String, String)>,
    /// `operand=AND|OR`, the older query form (GMS 8.1, the Genesys sample app): how the
    /// filters combine. `None` in today's form, where they all must hold.
    pub operand: Option<Operand>,
}

/// How the filters of an older-form query combine (`operand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// Every filter holds.
    And,
    /// At least one filter holds.
    Or,
}

/// The most records one query returns.
pub const QUERY_LIMIT: usize = 1000;

impl CallbackQuery {
    /// Reads the query fields.
    ///
    /// # Errors
    /// An unknown `_` key or a bad state filter, named.
    pub fn parse(
        service_name: Option<String>,
        fields: Vec<(String, String)>,
    ) -> Result<Self, FieldError> {
        let mut query = CallbackQuery {
            service_name,
            ..Default::default()
        };
        for (key, value) in fields {
            let value = value.trim().to_string();
            match key.as_str() {
                "_id" => query.id = Some(value).filter(|v| !v.is_empty()),
                "_customer_number" => query.customer_number = Some(value).filter(|v| !v.is_empty()),
                "_callback_state" => {
                    query.state =
                        Some(StateFilter::parse(&value).map_err(|m| FieldError::new(&key, m))?)
                }
                "operand" => {
                    query.operand = Some(match value.to_ascii_uppercase().as_str() {
                        "AND" => Operand::And,
                        "OR" => Operand::Or,
                        _ => {
                            return Err(FieldError::new(
                                key,
                                format!("`{value}` is not an operand: use AND or OR"),
                            ))
                        }
                    })
                }
                _ if key.starts_with('_') => {
                    return Err(FieldError::new(
                        key,
                        "not a query filter: use _id, _customer_number, _callback_state, or user-data keys",
                    ))
                }
                _ => query.user_data.push((key, value)),
            }
        }
        if query.id.is_none() && query.customer_number.is_none() && query.service_name.is_none() {
            return Err(FieldError::new(
                "_customer_number",
                "give _id or _customer_number (or query one service with /genesys/1/service/callback/{name})",
            ));
        }
        if query.operand == Some(Operand::Or) && query.service_name.is_none() && query.id.is_none()
        {
            // The general form reads the `_customer_number` index; an OR of it with other
            // filters would have to read every service.
            return Err(FieldError::new(
                "operand",
                "OR needs the per-service form: GET /genesys/1/service/callback/{name}?operand=OR&...",
            ));
        }
        Ok(query)
    }

    /// The filters a record is judged by, each as a yes or no.
    fn filters<'a>(&'a self, record: &'a ServiceRecord) -> impl Iterator<Item = bool> + 'a {
        let id = self.id.as_ref().map(|id| record.id == *id);
        let number = self
            .customer_number
            .as_ref()
            .map(|n| record.customer_number.as_ref() == Some(n));
        let state = self.state.as_ref().map(|f| f.matches(record.state));
        let user_data = self
            .user_data
            .iter()
            .map(|(k, v)| record.user_data.get(k) == Some(v));
        id.into_iter().chain(number).chain(state).chain(user_data)
    }

    /// Whether `record` passes the query's filters (not who may see it). With `operand=OR`
    /// one filter is enough (no filter at all: every service of the per-service query).
    fn matches(&self, record: &ServiceRecord) -> bool {
        let of_service = self
            .service_name
            .as_ref()
            .is_none_or(|name| *name == record.service_name);
        let filters_hold = match self.operand {
            Some(Operand::Or) => {
                let mut filters = self.filters(record).peekable();
                filters.peek().is_none() || filters.any(|holds| holds)
            }
            Some(Operand::And) | None => self.filters(record).all(|holds| holds),
        };
        of_service && filters_hold
    }
}

/// Runs a callback query for `requester`. A query by `_id` answers that service to whoever
/// may reach it; every other query lists only the requester's own services, so a request
/// without a `gms_user` lists nothing (a service created without one is never listed).
///
/// # Errors
/// Unknown `_id` (404), an `_id` of another user (403), storage failure.
pub fn query_callbacks(
    state: &AppState,
    requester: Requester<'_>,
    query: &CallbackQuery,
) -> Result<Vec<ServiceRecord>, AppError> {
    if let Some(id) = &query.id {
        let record = owned_service(state, id, requester)?;
        return Ok(if query.matches(&record) {
            vec![record]
        } else {
            Vec::new()
        });
    }
    let Some(user) = requester else {
        return Ok(Vec::new());
    };
    let keep =
        |record: &ServiceRecord| record.owner.as_deref() == Some(user) && query.matches(record);
    let by_customer = query
        .customer_number
        .as_ref()
        .filter(|_| query.operand != Some(Operand::Or));
    let mut found = if let Some(number) = by_customer {
        state
            .store
            .services_by_customer(number, &keep, QUERY_LIMIT)?
    } else if let Some(name) = &query.service_name {
        // The per-service query reads the asker's own index keys only: asking as a user with
        // no services costs one seek, however many services others have.
        state
            .store
            .services_of_owner(user, name, &keep, QUERY_LIMIT)?
    } else {
        // Parse refuses a query with neither a service, an id nor a customer number.
        Vec::new()
    };
    found.sort_by_key(|r| r.created_at);
    Ok(found)
}

/// Cancels a service on the customer's request (`DELETE .../callback/{name}/{id}`).
///
/// # Errors
/// Unknown service or id (404), another user's (403), PROCESSING or COMPLETED (400).
pub async fn cancel_callback(
    state: &AppState,
    service_name: &str,
    id: &str,
    requester: Requester<'_>,
) -> Result<ServiceRecord, AppError> {
    let now = state.clock.now();
    let cancelled = update(state, id, |record| {
        check_owner(record, requester)?;
        check_service(record, service_name)?;
        record.cancel(CallbackReason::Cancelled, now)?;
        Ok(())
    })?;
    let outbox =
        notifications::record_cancelled(state, [cancelled.written()], CallbackReason::Cancelled);
    let record = cancelled.durable().await?;
    notifications::deliver(outbox).await?;
    state.router.send(Event::Removed {
        service: id.to_string(),
    });
    close_cancelled_chat(state, &record).await;
    tracing::info!(service_id = %id, "service cancelled by the customer");
    Ok(record)
}

/// A cancelled service's chat (an immediate chat waiting in its queue) ends with it.
pub(crate) async fn close_cancelled_chat(state: &AppState, record: &ServiceRecord) {
    if record.chat_session_id.is_none() {
        return;
    }
    if let Err(err) = state
        .chat
        .close(&record.id, Some("The chat was cancelled."))
        .await
    {
        tracing::warn!(service_id = %record.id, error = %err, "cannot close the cancelled service's chat");
    }
}

/// A reschedule request (`PUT .../callback/{name}/{id}`).
#[derive(Debug, Clone, Default)]
pub struct Reschedule {
    /// `_new_desired_time`.
    pub new_desired_time: Option<Timestamp>,
    /// User-data changes; an empty value removes the key.
    pub user_data: Vec<(String, String)>,
}

impl Reschedule {
    /// Reads the request fields.
    ///
    /// # Errors
    /// A bad date or an unknown `_` key, named.
    pub fn parse(fields: Vec<(String, String)>) -> Result<Self, FieldError> {
        let mut change = Reschedule::default();
        for (key, value) in fields {
            check_field_name(&key)?;
            match key.as_str() {
                "_new_desired_time" => {
                    change.new_desired_time =
                        Some(Timestamp::parse_iso(&value).map_err(|m| FieldError::new(&key, m))?)
                }
                _ if key.starts_with('_') => {
                    return Err(FieldError::new(
                        key,
                        "cannot be changed here: send _new_desired_time and user-data keys (without `_`)",
                    ))
                }
                _ => change.user_data.push((key, value)),
            }
        }
        if change.new_desired_time.is_none() && change.user_data.is_empty() {
            return Err(FieldError::new(
                "_new_desired_time",
                "nothing to change: send _new_desired_time and/or user-data keys",
            ));
        }
        Ok(change)
    }
}

/// Reschedules a service and/or updates its user data.
///
/// # Errors
/// Unknown service or id (404), another user's (403), a state that cannot change (400).
pub async fn reschedule_callback(
    state: &AppState,
    service_name: &str,
    id: &str,
    requester: Requester<'_>,
    change: &Reschedule,
) -> Result<ServiceRecord, AppError> {
    let now = state.clock.now();
    let mut booking = None;
    if let Some(desired) = change.new_desired_time {
        // Access and state first (404, 403, 400 as the update below would), then the
        // service's own scheduling rules, from its options snapshot.
        let current = owned_service(state, id, requester)?;
        check_service(&current, service_name)?;
        if current.is_active() {
            let rules = ScheduleRules::from_options(&current.options)?;
            if schedule::takes_bucket(&rules, desired, now) {
                booking = Some(state.catalog.lock_bookings().await);
            }
            schedule::check_desired_time(state, service_name, &rules, desired, true, Some(id))?;
        }
    }
    let mut before = CallbackState::Queued;
    let record = update(state, id, |record| {
        before = record.state;
        check_owner(record, requester)?;
        check_service(record, service_name)?;
        if !record.is_active() {
            return Err(LifecycleError::Completed {
                id: record.id.clone(),
                reason: record.reason.map(|r| r.to_string()).unwrap_or_default(),
                action: "updated",
            }
            .into());
        }
        if let Some(desired) = change.new_desired_time {
            let expire_at = expiry_time(desired, options::ttl_secs(&record.options), now)
                .map_err(|message| FieldError::new("_new_desired_time", message))?;
            record.reschedule(desired, expire_at, now)?;
        }
        apply_user_data(&mut record.user_data, &change.user_data);
        Ok(())
    })?;
    drop(booking);
    let record = record.durable().await?;
    // The router follows only a real move: out of the queue until the new time, or into it.
    match (before, record.state) {
        (CallbackState::Queued, CallbackState::Scheduled) => {
            state.router.send(Event::Removed {
                service: id.to_string(),
            });
            state.router.scheduled_changed();
        }
        // Into its queue from the start of its walk (`ServiceRecord::reschedule`).
        (CallbackState::Scheduled, CallbackState::Queued) if record.queued_at.is_some() => {
            match state.typed_settings.settings(&record.options) {
                Ok(settings) => state
                    .router
                    .send(Event::Queued(entering_service(&record, &settings))),
                Err(err) => tracing::error!(service_id = %id, error = %err, "cannot route"),
            }
        }
        (CallbackState::Scheduled, CallbackState::Scheduled) => state.router.scheduled_changed(),
        _ => {}
    }
    tracing::info!(service_id = %id, "service rescheduled or updated");
    Ok(record)
}

/// GMS's protection against duplicates (503 when it refuses); the limits on how many a
/// service takes are `limits::admit`'s.
fn check_protections(
    state: &AppState,
    service_name: &str,
    settings: &ServiceSettings,
    customer_number: Option<&str>,
) -> Result<(), AppError> {
    if let (true, Some(number)) = (settings.in_queue_checking, customer_number) {
        let active = state.store.services_by_customer(
            number,
            &|r| r.service_name == service_name && r.is_active(),
            1,
        )?;
        if let Some(existing) = active.first() {
            return Err(AppError::Unavailable(format!(
                "a callback for customer number {number} is already in the queue of service `{service_name}` ({}, {}; _enable_in_queue_checking): cancel it or wait until it completes",
                existing.id, existing.state
            )));
        }
    }
    Ok(())
}

/// Tells the router about a stored service: into its queue if it waits for an agent now, or
/// onto the schedule if it waits for its desired time.
pub(crate) fn route(state: &AppState, record: &ServiceRecord, settings: &ServiceSettings) {
    match record.state {
        CallbackState::Queued if record.queued_at.is_some() => state
            .router
            .send(Event::Queued(queued_service(record, settings))),
        CallbackState::Scheduled => state.router.scheduled_changed(),
        _ => {}
    }
}

fn apply_user_data(user_data: &mut BTreeMap<String, String>, changes: &[(String, String)]) {
    for (key, value) in changes {
        if value.is_empty() {
            user_data.remove(key);
        } else {
            user_data.insert(key.clone(), value.clone());
        }
    }
}
