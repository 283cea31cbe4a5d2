//! The status events one change of a service reports, and the outbox entries they become.
//!
//! The store calls [`outbox_entries`] inside the transaction that writes the change, with the
//! record as it was (`None` for a new one) and as it is now, so that every path that changes
//! a service (a request, the router, the expiry of a queue, the chat server) reports its
//! events in the same write, and none can forget to.

use super::options;
use super::service::{CallbackReason, CallbackState, ServiceRecord};
use super::status::{Delivery, Mode, StatusEvent, StatusNotification, StatusSettings};
use super::time::Timestamp;

/// The events between `before` and `after`, in the order they happened.
pub fn events_between(before: Option<&ServiceRecord>, after: &ServiceRecord) -> Vec<StatusEvent> {
    let mut events = Vec::new();
    let entered = match before {
        None => {
            events.push(StatusEvent::ServiceCreate);
            events.push(StatusEvent::CallbackSubmitted);
            &after.state_history[..]
        }
        Some(before) => {
            if before.desired_time != after.desired_time && after.is_active() {
                events.push(StatusEvent::CallbackRescheduled);
            }
            if before.user_data != after.user_data {
                events.push(StatusEvent::CallbackStatusUpdated);
            }
            after
                .state_history
                .get(before.state_history.len()..)
                .unwrap_or_default()
        }
    };
    let queued_before = before.and_then(|b| b.queued_at);
    if after.queued_at.is_some() && after.queued_at != queued_before {
        events.push(StatusEvent::VirtualIxnCreate);
    }
    for change in entered {
        match change.state {
            CallbackState::Scheduled => events.push(StatusEvent::CallbackScheduled),
            CallbackState::Queued => events.push(StatusEvent::CallbackQueued),
            CallbackState::Routing => events.push(StatusEvent::TargetFound),
            CallbackState::Processing => events.push(StatusEvent::RouteToAgent),
            CallbackState::Completed => {
                if matches!(
                    change.reason,
                    Some(CallbackReason::Cancelled | CallbackReason::CancelledByAdmin)
                ) {
                    events.push(StatusEvent::CallbackCancelled);
                }
                events.push(StatusEvent::ServiceExit);
            }
        }
    }
    events
}

/// The Notification API tag of a service's events in `notify` mode:
/// `callback.<service name>.<service id>.<event>`, so that a filter ending in `*` can take
/// every event, one configured service's, or one callback's.
pub fn tag(record: &ServiceRecord, event: StatusEvent) -> String {
    format!(
        "callback.{}.{}.{}",
        record.service_name,
        record.id,
        event.as_str()
    )
}

/// The value of one `notify_params` key for `record`: the service's own fields by their GMS
/// names, else an option, else user data; `None` when it has none.
pub fn param(record: &ServiceRecord, key: &str) -> Option<String> {
    let value = match key {
        "_id" | "_service_id" => Some(record.id.clone()),
        "_service_name" => Some(record.service_name.clone()),
        "_customer_number" => record.customer_number.clone(),
        "_callback_state" => Some(record.state.as_str().to_string()),
        "_callback_reason" => record.reason.map(|r| r.as_str().to_string()),
        "_desired_time" => Some(record.desired_time.to_iso()),
        "_expiration_time" => Some(record.expire_at.to_iso()),
        "_urs_virtual_queue" | "_v_queue" | "_vq" => {
            Some(options::queue_name(&record.options, &record.service_name))
        }
        "_agent_id" => record.reserved_agent.clone(),
        _ => None,
    };
    value
        .or_else(|| record.options.get(key).cloned())
        .or_else(|| record.user_data.get(key).cloned())
}

/// The JSON body of `event`: `_event`, `_event_seq` (the entry's place in the outbox, for
/// receivers to drop a repeat) and the event's `notify_params`.
pub fn body(record: &ServiceRecord, event: StatusEvent, params: &[String], seq: u64) -> String {
    let mut object = serde_json::Map::new();
    object.insert("_event".into(), event.as_str().into());
    object.insert("_event_seq".into(), seq.into());
    for key in params {
        if let Some(value) = param(record, key) {
            object.insert(key.clone(), value.into());
        }
    }
    serde_json::Value::Object(object).to_string()
}

/// The time of the change from `before` to `after` as the record tells it: its newest state
/// change or reservation, else its creation (a change of user data alone carries no time).
/// The rest of the routing history lives beside the record and changes no state, so it
/// raises no status event.
pub fn change_time(after: &ServiceRecord) -> Timestamp {
    let state = after.state_history.last().map(|c| c.at);
    let routing = after.reservations.last().map(|r| r.at);
    state
        .into_iter()
        .chain(routing)
        .max()
        .unwrap_or(after.created_at)
        .max(after.created_at)
}

/// The outbox entries of the change from `before` to `after`, numbered by `next_seq` (called
/// once per entry, in order): one per event that the service's `_callback_events_list`
/// selects; none when its notifications are off. Each is due at once.
pub fn outbox_entries<E>(
    before: Option<&ServiceRecord>,
    after: &ServiceRecord,
    mut next_seq: impl FnMut() -> Result<u64, E>,
) -> Result<Vec<StatusNotification>, E> {
    // Options were validated when the service was configured or created; a record that no
    // longer parses (written by an older version) reports nothing rather than fail its write.
    let Ok(Some(settings)) = StatusSettings::from_options(&after.options) else {
        return Ok(Vec::new());
    };
    let now = change_time(after);
    let mut entries = Vec::new();
    for event in events_between(before, after) {
        if let Some(params) = settings.events.get(&event) {
            let seq = next_seq()?;
            entries.push(entry(&settings, after, event, params, seq, now));
        }
    }
    Ok(entries)
}

fn entry(
    settings: &StatusSettings,
    record: &ServiceRecord,
    event: StatusEvent,
    params: &[String],
    seq: u64,
    now: Timestamp,
) -> StatusNotification {
    StatusNotification {
        seq,
        event,
        mode: settings.mode,
        url: match settings.mode {
            Mode::SubscribeNotify => settings.target.clone(),
            Mode::Notify => None,
        },
        tag: tag(record, event),
        body: body(record, event, params, seq),
        created_at: now,
        attempts: 0,
        max_attempts: settings.attempts,
        delivery: Delivery::Pending,
        next_at: Timestamp::from_millis(0),
        last_error: None,
        finished_at: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::service::CallbackState::{Completed, Processing, Queued, Routing};

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    fn record(list: Option<&str>) -> ServiceRecord {
        let mut r = ServiceRecord::new("s1", "cb1", Preset::ChatDelayed, Timestamp::from_millis(0));
        let mut options = BTreeMap::new();
        options.insert(
            "_enable_status_notification".into(),
            "subscribe_notify".into(),
        );
        options.insert("_status_notification_target".into(), "http://h/x".into());
        options.insert("_urs_virtual_queue".into(), "VQ1".into());
        if let Some(list) = list {
            options.insert("_callback_events_list".into(), list.into());
        }
        r.options = options;
        r.customer_number = Some("5115".into());
        r.user_data.insert("order".into(), "42".into());
        r
    }

    #[test]
    fn a_new_queued_service_reports_its_creation_and_its_queue() {
        let mut r = record(None);
        r.queued_at = Some(NOW);
        r.mark_created(Queued, NOW);
        assert_eq!(
            events_between(None, &r),
            [
                StatusEvent::ServiceCreate,
                StatusEvent::CallbackSubmitted,
                StatusEvent::VirtualIxnCreate,
                StatusEvent::CallbackQueued
            ]
        );
    }

    #[test]
    fn one_write_through_two_states_reports_both() {
        let mut before = record(None);
        before.mark_created(Queued, NOW);
        let mut after = before.clone();
        after.enter(Routing, None, NOW, "reserved");
        after.enter(Processing, None, NOW, "chat routed");
        assert_eq!(
            events_between(Some(&before), &after),
            [StatusEvent::TargetFound, StatusEvent::RouteToAgent]
        );
    }

    #[test]
    fn a_cancel_reports_cancelled_then_exit_and_a_timeout_only_exit() {
        let mut before = record(None);
        before.mark_created(Queued, NOW);
        let mut cancelled = before.clone();
        cancelled.enter(Completed, Some(CallbackReason::CancelledByAdmin), NOW, "x");
        assert_eq!(
            events_between(Some(&before), &cancelled),
            [StatusEvent::CallbackCancelled, StatusEvent::ServiceExit]
        );
        let mut timed_out = before.clone();
        timed_out.enter(Completed, Some(CallbackReason::FailTimeoutTtl), NOW, "x");
        assert_eq!(
            events_between(Some(&before), &timed_out),
            [StatusEvent::ServiceExit]
        );
    }

    #[test]
    fn a_new_time_and_new_user_data_are_reported() {
        let mut before = record(None);
        before.mark_created(Queued, NOW);
        let mut after = before.clone();
        after.desired_time = NOW.plus_secs(60);
        after.user_data.insert("order".into(), "43".into());
        assert_eq!(
            events_between(Some(&before), &after),
            [
                StatusEvent::CallbackRescheduled,
                StatusEvent::CallbackStatusUpdated
            ]
        );
        assert_eq!(
            events_between(Some(&after), &after),
            [],
            "no change, no event"
        );
    }

    #[test]
    fn the_events_list_selects_the_events_and_their_params() {
        let mut r = record(Some(
            r#"{"_cbe_on_callback_queued":{"notify_params":"_service_id,_v_queue,_customer_number,order,_nothing"}}"#,
        ));
        r.queued_at = Some(NOW);
        r.mark_created(Queued, NOW);
        let mut seq = 10;
        let entries = outbox_entries::<()>(None, &r, || {
            seq += 1;
            Ok(seq)
        })
        .unwrap();
        assert_eq!(entries.len(), 1, "only the listed event");
        let body: serde_json::Value = serde_json::from_str(&entries[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "_event": "_cbe_on_callback_queued", "_event_seq": 11,
                "_service_id": "s1", "_v_queue": "VQ1", "_customer_number": "5115", "order": "42"
            })
        );
        assert_eq!(entries[0].url.as_deref(), Some("http://h/x"));
        assert_eq!(entries[0].delivery, Delivery::Pending);
    }

    #[test]
    fn no_entries_when_notifications_are_off() {
        let mut r = record(None);
        r.options.remove("_enable_status_notification");
        r.mark_created(Queued, NOW);
        assert!(outbox_entries::<()>(None, &r, || Ok(1)).unwrap().is_empty());
    }
}
