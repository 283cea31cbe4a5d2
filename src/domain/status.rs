//! GMS callback status notifications ("Enable Status Notifications"): the options that turn
//! them on, the events a service reports and the parameters each carries, the outbox entry
//! that carries one event to its receiver, and the retry schedule.
//!
//! - `_enable_status_notification`: `false` (default, nothing is sent), `subscribe_notify`
//!   (callbackd delivers to `_status_notification_target` on the client's behalf) or `notify`
//!   (the client subscribed itself through the Notification API; events are published there).
//! - `_status_notification_type`: `httpcb` (the only type without an Orchestration Server).
//! - `_status_notification_target`: the receiver's `http(s)` URL (`subscribe_notify`).
//! - `_status_notification_attempts`: POSTs tried per event before it is marked failed.
//! - `_callback_events_list`: which events are sent, with which `notify_params`: GMS names a
//!   Transaction List with one section per event; callbackd takes the list itself, as JSON
//!   (`{"_cbe_on_callback_queued": {"notify_params": "_service_id,_desired_time"}}`).
//!
//! Pure: parsing here, the events of a change in [`super::status_events`], storage in
//! `store`, delivery in `app::status_notifications`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::option_error::OptionError;
use super::time::Timestamp;

/// The events callbackd reports, in the order one change reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusEvent {
    /// The service was created.
    ServiceCreate,
    /// The callback request was accepted.
    CallbackSubmitted,
    /// The service entered its virtual queue.
    VirtualIxnCreate,
    /// The callback waits for its desired time (created or rescheduled into the future).
    CallbackScheduled,
    /// The callback waits in its queue for an agent.
    CallbackQueued,
    /// The desired time changed.
    CallbackRescheduled,
    /// The user data changed.
    CallbackStatusUpdated,
    /// An agent was found and reserved.
    TargetFound,
    /// The interaction went to the agent (PROCESSING).
    RouteToAgent,
    /// Cancelled by the customer or an administrator.
    CallbackCancelled,
    /// The service ended (COMPLETED, any reason).
    ServiceExit,
}

impl StatusEvent {
    /// Every event, in reporting order.
    pub const ALL: [StatusEvent; 11] = [
        StatusEvent::ServiceCreate,
        StatusEvent::CallbackSubmitted,
        StatusEvent::VirtualIxnCreate,
        StatusEvent::CallbackScheduled,
        StatusEvent::CallbackQueued,
        StatusEvent::CallbackRescheduled,
        StatusEvent::CallbackStatusUpdated,
        StatusEvent::TargetFound,
        StatusEvent::RouteToAgent,
        StatusEvent::CallbackCancelled,
        StatusEvent::ServiceExit,
    ];

    /// What GMS sends without a `_callback_events_list`: its SCXML defaults that exist
    /// without telephony.
    pub const DEFAULTS: [StatusEvent; 5] = [
        StatusEvent::ServiceCreate,
        StatusEvent::VirtualIxnCreate,
        StatusEvent::TargetFound,
        StatusEvent::RouteToAgent,
        StatusEvent::ServiceExit,
    ];

    /// GMS's name (`_cbe_on_callback_queued`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusEvent::ServiceCreate => "_cbe_on_service_create",
            StatusEvent::CallbackSubmitted => "_cbe_on_callback_submitted",
            StatusEvent::VirtualIxnCreate => "_cbe_on_virtual_ixn_create",
            StatusEvent::CallbackScheduled => "_cbe_on_callback_scheduled",
            StatusEvent::CallbackQueued => "_cbe_on_callback_queued",
            StatusEvent::CallbackRescheduled => "_cbe_on_callback_rescheduled",
            StatusEvent::CallbackStatusUpdated => "_cbe_on_callback_status_updated",
            StatusEvent::TargetFound => "_cbe_on_target_found",
            StatusEvent::RouteToAgent => "_cbe_on_route_to_agent",
            StatusEvent::CallbackCancelled => "_cbe_on_callback_cancelled",
            StatusEvent::ServiceExit => "_cbe_on_service_exit",
        }
    }

    /// The event of a GMS name.
    pub fn parse(name: &str) -> Option<StatusEvent> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// GMS events that need telephony (a dialer, IVR treatments) and that callbackd therefore
/// never sends; listing them is accepted, as GMS configurations do.
pub const TELEPHONY_EVENTS: &[&str] = &[
    "_cbe_on_dial_init",
    "_cbe_on_dial_done",
    "_cbe_on_connect_treatment_start",
    "_cbe_on_customer_queued",
    "_cbe_on_callback_reminder",
    "_cbe_on_callback_submit_failed",
    "_cbe_on_callback_processing_failed",
];

/// `notify_params` of an event listed without any.
pub const DEFAULT_NOTIFY_PARAMS: &[&str] = &[
    "_service_id",
    "_service_name",
    "_callback_state",
    "_customer_number",
    "_desired_time",
];

/// `_status_notification_attempts` when not given (GMS's own tests configure 3).
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// The most `_status_notification_attempts` accepted.
pub const MAX_ATTEMPTS: u32 = 100;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Whether `options` turn status notifications on (`_enable_status_notification` set and not
/// `false`), read without validating the rest: what decides a service's transaction and its
/// console card. [`StatusSettings::from_options`] validates the value.
pub fn enabled(options: &BTreeMap<String, String>) -> bool {
    options
        .get("_enable_status_notification")
        .is_some_and(|v| !matches!(v.trim(), "" | "false"))
}

/// Who delivers: `_enable_status_notification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `subscribe_notify`: POSTed to `_status_notification_target`.
    SubscribeNotify,
    /// `notify`: published to the Notification API's matching subscriptions.
    Notify,
}

/// A service's status-notification settings, parsed from its options once they validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSettings {
    /// Who delivers.
    pub mode: Mode,
    /// The receiver (`subscribe_notify` only).
    pub target: Option<String>,
    /// POSTs tried per event.
    pub attempts: u32,
    /// The events sent, each with its `notify_params`.
    pub events: BTreeMap<StatusEvent, Vec<String>>,
}

impl StatusSettings {
    /// The settings in `options`, `None` when notifications are off.
    ///
    /// # Errors
    /// A bad value, named by its option.
    pub fn from_options(
        options: &BTreeMap<String, String>,
    ) -> Result<Option<StatusSettings>, OptionError> {
        let get = |name: &str| options.get(name).map(|v| v.trim()).unwrap_or("");
        if !enabled(options) {
            return Ok(None);
        }
        let mode = match get("_enable_status_notification") {
            "subscribe_notify" => Mode::SubscribeNotify,
            "notify" => Mode::Notify,
            other => {
                return Err(OptionError::new(
                    "_enable_status_notification",
                    format!("`{other}` is not one of false, subscribe_notify, notify"),
                ))
            }
        };
        match get("_status_notification_type") {
            "" | "httpcb" => {}
            "orscb" => return Err(OptionError::new(
                "_status_notification_type",
                "`orscb` needs an Orchestration Server, which callbackd does not have: use httpcb",
            )),
            other => {
                return Err(OptionError::new(
                    "_status_notification_type",
                    format!("`{other}` is not a notification type: use httpcb"),
                ))
            }
        }
        let target = match (mode, get("_status_notification_target")) {
            (Mode::SubscribeNotify, "") => {
                return Err(OptionError::new(
                    "_status_notification_target",
                    "required with _enable_status_notification=subscribe_notify: give the receiver's URL, e.g. http://crm.example.com/callback-events",
                ))
            }
            (_, "") => None,
            (_, url) => Some(parse_target(url)?),
        };
        let attempts = match get("_status_notification_attempts") {
            "" => DEFAULT_ATTEMPTS,
            text => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_ATTEMPTS).contains(&n) => n,
                _ => {
                    return Err(OptionError::new(
                        "_status_notification_attempts",
                        format!("`{text}` is not a number of attempts from 1 to {MAX_ATTEMPTS}"),
                    ))
                }
            },
        };
        let events = match get("_callback_events_list") {
            "" => StatusEvent::DEFAULTS
                .into_iter()
                .map(|e| (e, default_params()))
                .collect(),
            text => parse_events_list(text)?,
        };
        Ok(Some(StatusSettings {
            mode,
            target,
            attempts,
            events,
        }))
    }
}

fn default_params() -> Vec<String> {
    DEFAULT_NOTIFY_PARAMS
        .iter()
        .map(|p| (*p).to_string())
        .collect()
}

fn parse_target(url: &str) -> Result<String, OptionError> {
    let bad = |why: &str| OptionError::new("_status_notification_target", why.to_string());
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| bad("give an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err(bad(
            "the URL has no host: give e.g. http://crm.example.com/events",
        ));
    }
    if url.len() > 2048 {
        return Err(bad("the URL is longer than 2048 bytes"));
    }
    Ok(url.to_string())
}

/// `_callback_events_list`: a JSON object of sections, one per event
/// (`{"<event>": {"notify_params": "a,b"}}`), as GMS's Transaction List has them.
fn parse_events_list(text: &str) -> Result<BTreeMap<StatusEvent, Vec<String>>, OptionError> {
    const OPTION: &str = "_callback_events_list";
    let bad = |message: String| OptionError::new(OPTION, message);
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| {
        bad(format!(
            "not JSON ({err}): give the events as {{\"_cbe_on_callback_queued\":{{\"notify_params\":\"_service_id,_desired_time\"}}}}"
        ))
    })?;
    let sections = value
        .as_object()
        .ok_or_else(|| bad("give a JSON object with one section per event".into()))?;
    let mut events = BTreeMap::new();
    for (name, section) in sections {
        let Some(event) = StatusEvent::parse(name) else {
            if TELEPHONY_EVENTS.contains(&name.as_str()) {
                continue;
            }
            return Err(bad(format!(
                "`{name}` is not a callback event; known events: {}",
                StatusEvent::ALL.map(StatusEvent::as_str).join(", ")
            )));
        };
        let section = section.as_object().ok_or_else(|| {
            bad(format!(
                "section `{name}` must be an object such as {{\"notify_params\":\"_service_id\"}}"
            ))
        })?;
        if let Some(key) = section.keys().find(|k| *k != "notify_params") {
            return Err(bad(format!(
                "section `{name}` has `{key}`: an event section holds only notify_params"
            )));
        }
        let params = match section.get("notify_params") {
            None => default_params(),
            Some(serde_json::Value::String(list)) => {
                let params: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(bad_key) = params.iter().find(|p| p.len() > 256) {
                    return Err(bad(format!(
                        "a notify_params key of `{name}` is longer than 256 bytes: {}...",
                        bad_key.chars().take(32).collect::<String>()
                    )));
                }
                params
            }
            Some(_) => {
                return Err(bad(format!(
                    "notify_params of `{name}` must be a comma-separated string of keys"
                )))
            }
        };
        events.insert(event, params);
    }
    Ok(events)
}

/// The wait after failed attempt `attempt` (1-based): `base`, doubled for each further
/// attempt, at most [`MAX_BACKOFF`].
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    doubled.min(MAX_BACKOFF)
}

/// Where one outbox entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not delivered yet: the next attempt is due at `next_at`.
    Pending,
    /// A 2xx answered (or, in `notify` mode, the subscriptions were handed the event).
    Delivered,
    /// Every attempt failed; not tried again.
    Failed,
}

impl Delivery {
    /// The console's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
        }
    }
}

/// One status notification in a service's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusNotification {
    /// Its place in the service's outbox (increasing: delivery order).
    pub seq: u64,
    /// The event.
    pub event: StatusEvent,
    /// Who delivers.
    pub mode: Mode,
    /// Where it is POSTed (`subscribe_notify`).
    pub url: Option<String>,
    /// The Notification API tag (`notify`).
    pub tag: String,
    /// The JSON body, made when the event happened.
    pub body: String,
    /// When the event happened.
    pub created_at: Timestamp,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts allowed (`_status_notification_attempts` when it happened).
    pub max_attempts: u32,
    /// Where it is.
    pub delivery: Delivery,
    /// When the next attempt is due (pending).
    pub next_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub finished_at: Option<Timestamp>,
}

impl StatusNotification {
    /// Books a successful attempt.
    pub fn delivered(&mut self, now: Timestamp) {
        self.attempts += 1;
        self.delivery = Delivery::Delivered;
        self.finished_at = Some(now);
    }

    /// Books a failed attempt: pending again after [`backoff`], or failed when it was the
    /// last one allowed.
    pub fn failed(&mut self, error: String, base: Duration, now: Timestamp) {
        self.attempts += 1;
        self.last_error = Some(error);
        if self.attempts >= self.max_attempts {
            self.delivery = Delivery::Failed;
            self.finished_at = Some(now);
        } else {
            self.next_at = now + backoff(base, self.attempts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn notifications_are_off_unless_enabled() {
        for value in [None, Some("false"), Some(" false ")] {
            let mut opts = options(&[("_status_notification_target", "http://h/x")]);
            if let Some(v) = value {
                opts.insert("_enable_status_notification".into(), v.into());
            }
            assert_eq!(StatusSettings::from_options(&opts), Ok(None), "{value:?}");
        }
    }

    #[test]
    fn subscribe_notify_takes_the_defaults() {
        let opts = options(&[
            ("_enable_status_notification", "subscribe_notify"),
            ("_status_notification_type", "httpcb"),
            ("_status_notification_target", "http://crm.example.com/cb"),
        ]);
        let settings = StatusSettings::from_options(&opts).unwrap().unwrap();
        assert_eq!(settings.mode, Mode::SubscribeNotify);
        assert_eq!(
            settings.target.as_deref(),
            Some("http://crm.example.com/cb")
        );
        assert_eq!(settings.attempts, DEFAULT_ATTEMPTS);
        assert_eq!(
            settings.events.keys().copied().collect::<Vec<_>>(),
            StatusEvent::DEFAULTS.to_vec()
        );
    }

    #[test]
    fn an_events_list_names_the_events_and_their_params() {
        let opts = options(&[
            ("_enable_status_notification", "subscribe_notify"),
            ("_status_notification_target", "http://h/x"),
            ("_status_notification_attempts", "5"),
            (
                "_callback_events_list",
                r#"{"_cbe_on_callback_queued":{"notify_params":"_service_id, _desired_time"},
                    "_cbe_on_dial_init":{"notify_params":"_c_dialed_number"},
                    "_cbe_on_service_exit":{}}"#,
            ),
        ]);
        let settings = StatusSettings::from_options(&opts).unwrap().unwrap();
        assert_eq!(settings.attempts, 5);
        assert_eq!(settings.events.len(), 2, "the telephony event is skipped");
        assert_eq!(
            settings.events[&StatusEvent::CallbackQueued],
            vec!["_service_id", "_desired_time"]
        );
        assert_eq!(
            settings.events[&StatusEvent::ServiceExit],
            default_params(),
            "a section without notify_params gets the default ones"
        );
    }

    #[test]
    fn bad_values_name_their_option() {
        let base = [
            ("_enable_status_notification", "subscribe_notify"),
            ("_status_notification_target", "http://h/x"),
        ];
        let cases: &[(&str, &str, &str)] = &[
            (
                "_enable_status_notification",
                "yes",
                "_enable_status_notification",
            ),
            (
                "_status_notification_type",
                "orscb",
                "_status_notification_type",
            ),
            (
                "_status_notification_type",
                "fcm",
                "_status_notification_type",
            ),
            (
                "_status_notification_target",
                "",
                "_status_notification_target",
            ),
            (
                "_status_notification_target",
                "ftp://h/x",
                "_status_notification_target",
            ),
            (
                "_status_notification_target",
                "http:///x",
                "_status_notification_target",
            ),
            (
                "_status_notification_attempts",
                "0",
                "_status_notification_attempts",
            ),
            (
                "_status_notification_attempts",
                "101",
                "_status_notification_attempts",
            ),
            (
                "_status_notification_attempts",
                "three",
                "_status_notification_attempts",
            ),
            (
                "_callback_events_list",
                "GMS_Events",
                "_callback_events_list",
            ),
            ("_callback_events_list", "[]", "_callback_events_list"),
            (
                "_callback_events_list",
                r#"{"_cbe_on_lunch":{}}"#,
                "_callback_events_list",
            ),
            (
                "_callback_events_list",
                r#"{"_cbe_on_service_exit":{"notify_params":3}}"#,
                "_callback_events_list",
            ),
            (
                "_callback_events_list",
                r#"{"_cbe_on_service_exit":{"params":"_id"}}"#,
                "_callback_events_list",
            ),
        ];
        for (name, value, option) in cases {
            let mut opts = options(&base);
            opts.insert((*name).to_string(), (*value).to_string());
            let err = StatusSettings::from_options(&opts).expect_err(&format!("{name}={value}"));
            assert_eq!(err.option, *option, "{name}={value}: {}", err.message);
        }
    }

    #[test]
    fn notify_mode_needs_no_target() {
        let opts = options(&[("_enable_status_notification", "notify")]);
        let settings = StatusSettings::from_options(&opts).unwrap().unwrap();
        assert_eq!(settings.mode, Mode::Notify);
        assert_eq!(settings.target, None);
    }

    #[test]
    fn the_backoff_doubles_up_to_its_ceiling() {
        let base = Duration::from_secs(1);
        let waits: Vec<u64> = (1..=11).map(|a| backoff(base, a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(base, u32::MAX), MAX_BACKOFF, "no overflow");
    }

    #[test]
    fn the_last_allowed_attempt_fails_the_notification() {
        let mut n = StatusNotification {
            seq: 1,
            event: StatusEvent::ServiceCreate,
            mode: Mode::SubscribeNotify,
            url: Some("http://h/x".into()),
            tag: String::new(),
            body: "{}".into(),
            created_at: Timestamp::from_millis(0),
            attempts: 0,
            max_attempts: 2,
            delivery: Delivery::Pending,
            next_at: Timestamp::from_millis(0),
            last_error: None,
            finished_at: None,
        };
        let now = Timestamp::from_millis(10_000);
        n.failed("500".into(), Duration::from_secs(1), now);
        assert_eq!(n.delivery, Delivery::Pending);
        assert_eq!(n.next_at, now.plus_secs(1));
        n.failed("refused".into(), Duration::from_secs(1), now);
        assert_eq!(n.delivery, Delivery::Failed);
        assert_eq!(n.attempts, 2);
        assert_eq!(n.last_error.as_deref(), Some("refused"));
        assert_eq!(n.finished_at, Some(now));
    }
}
