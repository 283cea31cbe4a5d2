//! Configured services and their options.
//!
//! GMS configures a service as a preset plus string options (`_ttl = "86400"`). This module
//! knows the presets' defaults, validates every option it understands into [`ServiceSettings`],
//! and splits a create request into request parameters, option overrides and user data. Values
//! stay strings in storage, as in GMS configuration; the typed view is recomputed on load.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

pub use super::option_error::OptionError;
use super::phone::PhoneRules;
use super::schedule::{Calendar, Capacity, OfficeHours, ScheduleRules};
use super::status::StatusSettings;
use super::target::TargetList;
use super::throttle::Throttles;
use super::time::Timestamp;

/// A service template (GMS "Common Default Configuration").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Chat starts right away; the chat is routed when it arrives (seed 001).
    ChatImmediate,
    /// Waits for an agent, asks the customer to confirm, then chats (seed 000).
    ChatDelayed,
    /// GMS-based basic chat: the chat can start at any time (seed 003).
    RequestChat,
    /// GMS-based chat that waits for an agent, reported by `/status` (seed 003).
    RequestChatPoll,
    /// An office-hours service (`_service=office-hours`): when the office is open. Callback
    /// services name it in `_business_hours_service`; it creates no service instances.
    OfficeHours,
    /// A capacity service (`_service=capacity`): how many scheduled callbacks each time bucket
    /// takes. Callback services name it in `_capacity_service`.
    Capacity,
    /// A voice callback the agent places now (GMS "User-Terminated-Immediate").
    UserTerminatedImmediate,
    /// A voice callback the agent places once the customer confirmed the available agent
    /// (GMS "User-Terminated-Delayed").
    UserTerminatedDelayed,
    /// A voice callback the agent places at the customer's `_desired_time` (GMS
    /// "User-Terminated-Scheduled").
    UserTerminatedScheduled,
    /// The customer calls an access number now (GMS "User-Originated-Immediate").
    UserOriginatedImmediate,
    /// The customer calls an access number once told an agent is available (GMS
    /// "User-Originated-Delayed").
    UserOriginatedDelayed,
}

impl Preset {
    /// Every preset of a service that clients create instances of (callbacks and chats).
    pub const ALL: [Preset; 9] = [
        Preset::ChatImmediate,
        Preset::ChatDelayed,
        Preset::RequestChat,
        Preset::RequestChatPoll,
        Preset::UserTerminatedImmediate,
        Preset::UserTerminatedDelayed,
        Preset::UserTerminatedScheduled,
        Preset::UserOriginatedImmediate,
        Preset::UserOriginatedDelayed,
    ];

    /// The presets of scheduling services, which callback services refer to by name.
    pub const SCHEDULING: [Preset; 2] = [Preset::OfficeHours, Preset::Capacity];

    /// Whether this is an office-hours or capacity service rather than a callback or chat.
    pub fn is_scheduling(self) -> bool {
        Self::SCHEDULING.contains(&self)
    }

    /// The name used in configuration (`Chat-Delayed`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::ChatImmediate => "Chat-Immediate",
            Preset::ChatDelayed => "Chat-Delayed",
            Preset::RequestChat => "Request-Chat",
            Preset::RequestChatPoll => "Request-Chat-Poll",
            Preset::OfficeHours => "Office-Hours",
            Preset::Capacity => "Capacity",
            Preset::UserTerminatedImmediate => "User-Terminated-Immediate",
            Preset::UserTerminatedDelayed => "User-Terminated-Delayed",
            Preset::UserTerminatedScheduled => "User-Terminated-Scheduled",
            Preset::UserOriginatedImmediate => "User-Originated-Immediate",
            Preset::UserOriginatedDelayed => "User-Originated-Delayed",
        }
    }

    /// The options a service of this preset starts with ("Predefined Values" in the seeds).
    pub fn defaults(self) -> &'static [(&'static str, &'static str)] {
        const COMMON: [(&str, &str); 7] = [
            ("_media_type", "chat"),
            ("_ttl", "86400"),
            ("_use_debug_push_certificate", "false"),
            ("_urs_queued_ttl", "3600"),
            ("_urs_prioritization_strategy", "WaitForTarget"),
            ("_urs_strategy_update_sub_routine", "SetRouteDelay"),
            ("_urs_vq_priority", "0"),
        ];
        const CHAT_IMMEDIATE: [(&str, &str); 11] = concat7(
            COMMON,
            [
                ("_type", "ors"),
                ("_wait_for_agent", "false"),
                ("_wait_for_user_confirm", "false"),
                ("_mandatory_customer_lookup_keys", "_customer_number"),
            ],
        );
        const CHAT_DELAYED: [(&str, &str); 11] = concat7(
            COMMON,
            [
                ("_type", "ors"),
                ("_wait_for_agent", "true"),
                ("_wait_for_user_confirm", "true"),
                ("_mandatory_customer_lookup_keys", "_customer_number"),
            ],
        );
        const REQUEST_CHAT: [(&str, &str); 11] = concat7(
            COMMON,
            [
                ("_type", "builtin"),
                ("_wait_for_agent", "false"),
                ("_wait_for_user_confirm", "false"),
                ("_mandatory_customer_lookup_keys", ""),
            ],
        );
        const REQUEST_CHAT_POLL: [(&str, &str); 11] = concat7(
            COMMON,
            [
                ("_type", "builtin"),
                ("_wait_for_agent", "true"),
                ("_wait_for_user_confirm", "false"),
                ("_mandatory_customer_lookup_keys", ""),
            ],
        );
        const OFFICE_HOURS: [(&str, &str); 3] = [
            ("_type", "builtin"),
            ("_service", "office-hours"),
            ("_timezone", "UTC"),
        ];
        const CAPACITY: [(&str, &str); 3] = [
            ("_type", "builtin"),
            ("_service", "capacity"),
            ("_timezone", "UTC"),
        ];
        const USER_TERMINATED_IMMEDIATE: [(&str, &str); 12] =
            voice_defaults("USERTERMINATED", "false", "false");
        const USER_TERMINATED_DELAYED: [(&str, &str); 12] =
            voice_defaults("USERTERMINATED", "true", "true");
        const USER_TERMINATED_SCHEDULED: [(&str, &str); 12] =
            voice_defaults("USERTERMINATED", "true", "false");
        const USER_ORIGINATED_IMMEDIATE: [(&str, &str); 12] =
            voice_defaults("USERORIGINATED", "false", "false");
        const USER_ORIGINATED_DELAYED: [(&str, &str); 12] =
            voice_defaults("USERORIGINATED", "true", "true");
        match self {
            Preset::UserTerminatedImmediate => &USER_TERMINATED_IMMEDIATE,
            Preset::UserTerminatedDelayed => &USER_TERMINATED_DELAYED,
            Preset::UserTerminatedScheduled => &USER_TERMINATED_SCHEDULED,
            Preset::UserOriginatedImmediate => &USER_ORIGINATED_IMMEDIATE,
            Preset::UserOriginatedDelayed => &USER_ORIGINATED_DELAYED,
            Preset::ChatImmediate => &CHAT_IMMEDIATE,
            Preset::ChatDelayed => &CHAT_DELAYED,
            Preset::RequestChat => &REQUEST_CHAT,
            Preset::RequestChatPoll => &REQUEST_CHAT_POLL,
            Preset::OfficeHours => &OFFICE_HOURS,
            Preset::Capacity => &CAPACITY,
        }
    }
}

/// What kind of service a customer's app talks to, from `_media_type` and `_call_direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A chat (any `_media_type` but voice).
    Chat,
    /// A voice callback the agent dials (`_call_direction=USERTERMINATED`, the default).
    UserTerminated,
    /// A voice callback the customer dials in to an access number
    /// (`_call_direction=USERORIGINATED`).
    UserOriginated,
}

/// The `_media_type` of a voice callback.
pub const VOICE: &str = "voice";

impl Scenario {
    /// The scenario of a service with these options.
    pub fn of(options: &BTreeMap<String, String>) -> Scenario {
        let voice = options
            .get("_media_type")
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(VOICE));
        if !voice {
            return Scenario::Chat;
        }
        match options.get("_call_direction").map(|d| d.trim()) {
            Some(d) if d.eq_ignore_ascii_case("USERORIGINATED") => Scenario::UserOriginated,
            _ => Scenario::UserTerminated,
        }
    }

    /// Whether a service of this scenario waits in its virtual queue from the start (or
    /// from its desired time): one that waits for an agent, and a user-terminated callback,
    /// which needs an agent to call the customer even when it does not wait for one. A chat
    /// that does not wait enters the queue with its chat, a user-originated call with the
    /// call.
    pub fn queues_at_start(self, waits_for_agent: bool) -> bool {
        waits_for_agent || self == Scenario::UserTerminated
    }
}

/// Whether a stored service waits in its virtual queue from the start or its desired time
/// ([`Scenario::queues_at_start`]).
pub fn queues_at_start(options: &BTreeMap<String, String>) -> bool {
    Scenario::of(options).queues_at_start(waits_for_agent(options))
}

/// The defaults of a voice preset: the common ones with `_media_type=voice`, and GMS's
/// `_call_direction`, `_wait_for_agent` and `_wait_for_user_confirm` for the scenario
/// (GMS's Callback user guide, "Configuration Options" of each scenario).
const fn voice_defaults(
    direction: &'static str,
    wait_for_agent: &'static str,
    wait_for_user_confirm: &'static str,
) -> [(&'static str, &'static str); 12] {
    [
        ("_media_type", VOICE),
        ("_ttl", "86400"),
        ("_use_debug_push_certificate", "false"),
        ("_urs_queued_ttl", "3600"),
        ("_urs_prioritization_strategy", "WaitForTarget"),
        ("_urs_strategy_update_sub_routine", "SetRouteDelay"),
        ("_urs_vq_priority", "0"),
        ("_type", "ors"),
        ("_call_direction", direction),
        ("_wait_for_agent", wait_for_agent),
        ("_wait_for_user_confirm", wait_for_user_confirm),
        ("_mandatory_customer_lookup_keys", "_customer_number"),
    ]
}

/// Joins the common defaults with a preset's own, at compile time.
const fn concat7(
    common: [(&'static str, &'static str); 7],
    own: [(&'static str, &'static str); 4],
) -> [(&'static str, &'static str); 11] {
    [
        common[0], common[1], common[2], common[3], common[4], common[5], common[6], own[0],
        own[1], own[2], own[3],
    ]
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .chain(Self::SCHEDULING)
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown preset `{s}`: use one of Chat-Immediate, Chat-Delayed, Request-Chat, Request-Chat-Poll, User-Terminated-Immediate, User-Terminated-Delayed, User-Terminated-Scheduled, User-Originated-Immediate, User-Originated-Delayed, Office-Hours, Capacity"
                )
            })
    }
}

/// A configured service as an administrator wrote it: a preset and the options set on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredService {
    /// The name clients use in URLs (`chat-delay`).
    pub name: String,
    /// The preset supplying default options.
    pub preset: Preset,
    /// Options set by the administrator (they win over the preset's defaults).
    pub options: BTreeMap<String, String>,
}

impl ConfiguredService {
    /// Checks the name and every option; returns the service with its typed settings.
    ///
    /// # Errors
    /// The first bad option, named.
    pub fn validate(self, stat_servers: &[String]) -> Result<ValidService, OptionError> {
        validate_service_name(&self.name)?;
        if self.preset.is_scheduling() {
            return Err(OptionError::new(
                "preset",
                format!(
                    "`{}` configures a scheduling service, which has no callbacks or chats of its own",
                    self.preset
                ),
            ));
        }
        let effective = self.effective_options();
        let settings = ServiceSettings::from_options(&effective, stat_servers)?;
        Ok(ValidService {
            config: self,
            effective,
            settings,
        })
    }

    /// Checks the name and every option of an office-hours or capacity service; returns it
    /// with its rules parsed.
    ///
    /// # Errors
    /// Not a scheduling preset, or the first bad option, named.
    pub fn validate_schedule(self) -> Result<ScheduleService, OptionError> {
        validate_service_name(&self.name)?;
        let effective = self.effective_options();
        let calendar = match self.preset {
            Preset::OfficeHours => Calendar::OfficeHours(OfficeHours::from_options(&effective)?),
            Preset::Capacity => Calendar::Capacity(Box::new(Capacity::from_options(&effective)?)),
            other => {
                return Err(OptionError::new(
                    "preset",
                    format!("`{other}` is not a scheduling preset: use Office-Hours or Capacity"),
                ))
            }
        };
        Ok(ScheduleService {
            config: self,
            effective,
            calendar,
        })
    }

    /// Preset defaults overlaid with the configured options.
    pub fn effective_options(&self) -> BTreeMap<String, String> {
        let mut options: BTreeMap<String, String> = self
            .preset
            .defaults()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        options.extend(self.options.iter().map(|(k, v)| (k.clone(), v.clone())));
        options
    }
}

/// Service names appear in URLs; `callback` would collide with `/service/callback`.
fn validate_service_name(name: &str) -> Result<(), OptionError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name != "callback";
    if valid {
        Ok(())
    } else {
        Err(OptionError::new(
            "name",
            format!("`{name}` is not a usable service name: use 1-64 letters, digits, `-` or `_` (and not `callback`)"),
        ))
    }
}

/// A configured service that passed validation, with everything derived from it.
#[derive(Debug, Clone)]
pub struct ValidService {
    /// What the administrator configured.
    pub config: ConfiguredService,
    /// Preset defaults plus configured options.
    pub effective: BTreeMap<String, String>,
    /// The typed view of `effective`.
    pub settings: ServiceSettings,
}

/// How a known option's value is checked.
#[derive(Debug, Clone, Copy)]
enum OptionKind {
    Bool,
    Seconds,
    Integer,
    Text,
    List,
    OneOf(&'static [&'static str]),
    Target,
}

/// The options callbackd understands. Others are kept and passed along untouched, as GMS
/// passes unknown options to its strategies.
const KNOWN_OPTIONS: &[(&str, OptionKind)] = &[
    ("_type", OptionKind::OneOf(&["ors", "builtin"])),
    ("_media_type", OptionKind::Text),
    ("_wait_for_agent", OptionKind::Bool),
    ("_wait_for_user_confirm", OptionKind::Bool),
    ("_ttl", OptionKind::Seconds),
    ("_use_debug_push_certificate", OptionKind::Bool),
    ("_target", OptionKind::Target),
    ("_urs_virtual_queue", OptionKind::Text),
    ("_urs_prioritization_strategy", OptionKind::Text),
    ("_urs_strategy_update_sub_routine", OptionKind::Text),
    ("_urs_queued_ttl", OptionKind::Seconds),
    ("_urs_vq_priority", OptionKind::Integer),
    ("_urs_vq_priority_increment", OptionKind::Integer),
    ("_urs_vq_priority_increment_interval", OptionKind::Seconds),
    ("_overwritable_options", OptionKind::List),
    ("_mandatory_customer_lookup_keys", OptionKind::List),
    ("_max_queued_callbacks_per_service", OptionKind::Seconds),
    ("_enable_in_queue_checking", OptionKind::Bool),
    ("_user_confirm_timeout", OptionKind::Seconds),
    ("_agent_ready_threshold_eta", OptionKind::Seconds),
    ("_agent_ready_threshold_position", OptionKind::Seconds),
    ("_dial_retry_timeout", OptionKind::Seconds),
    ("_max_dial_attempts", OptionKind::Seconds),
    (
        "_call_direction",
        OptionKind::OneOf(&["USERTERMINATED", "USERORIGINATED"]),
    ),
    ("_provide_code", OptionKind::Bool),
    ("_access_number", OptionKind::Text),
    ("_access_code_length", OptionKind::Seconds),
];

/// The typed settings of a service, derived from its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// `_ttl`: seconds the record is kept after its desired time.
    pub ttl_secs: u64,
    /// `_wait_for_agent`.
    pub wait_for_agent: bool,
    /// `_wait_for_user_confirm`.
    pub wait_for_user_confirm: bool,
    /// `_media_type`.
    pub media_type: String,
    /// `_target`, parsed.
    pub target: TargetList,
    /// `_urs_virtual_queue`, or the service name's queue when unset.
    pub virtual_queue: Option<String>,
    /// `_urs_queued_ttl`: seconds a service may wait in the queue.
    pub queued_ttl_secs: u64,
    /// `_urs_vq_priority`.
    pub priority: i64,
    /// `_urs_vq_priority_increment`.
    pub priority_increment: i64,
    /// `_urs_vq_priority_increment_interval` (0: never).
    pub priority_increment_interval_secs: u64,
    /// `_overwritable_options`: options a create request may override.
    pub overwritable: BTreeSet<String>,
    /// `_mandatory_customer_lookup_keys`: request keys that must be present.
    pub mandatory_lookup_keys: Vec<String>,
    /// `_user_confirm_timeout`: seconds a reserved agent waits for the customer's `connect`
    /// (services with `_wait_for_user_confirm`) before the reservation is released.
    pub user_confirm_timeout_secs: u64,
    /// `_agent_ready_threshold_eta` and `_agent_ready_threshold_position`: when both the ETA
    /// (seconds) and the position are at most these, `check-queue-position` says the agent is
    /// about ready.
    pub agent_ready_threshold: (u64, u64),
    /// `_max_queued_callbacks_per_service`: SCHEDULED and QUEUED services allowed at once.
    pub max_queued_callbacks: Option<u64>,
    /// `_enable_in_queue_checking`: one active service per customer number.
    pub in_queue_checking: bool,
    /// `_dial_retry_timeout`: seconds before a voice callback whose customer did not answer
    /// (or was busy) is dialed again.
    pub dial_retry_timeout_secs: u64,
    /// `_max_dial_attempts`: dial attempts before such a callback gives up with
    /// `FAIL_CALL_TO_CUSTOMER` (at least 1).
    pub max_dial_attempts: u64,
    /// Office hours, capacity and the limits on the desired time (`_business_hours_service`,
    /// `_capacity_service`, `_request_time_bucket`, ...).
    pub schedule: ScheduleRules,
    /// Chat, or voice in one of its two directions (`_media_type`, `_call_direction`).
    pub scenario: Scenario,
    /// The number a user-originated callback's customer calls (`_access_number`).
    pub access_number: Option<String>,
    /// `_provide_code`: a user-originated callback gets an access code the customer keys in,
    /// by which its call is matched; without one it is matched by the caller's number.
    pub provide_code: bool,
    /// `_access_code_length`: digits of an access code.
    pub access_code_length: u32,
    /// `_throttle_callbacks_per_service_N` / `_throttle_ttl_N` and
    /// `_throttle_request_parameters[_limit]`.
    pub throttles: Throttles,
    /// `_default_country` and `_disallow_{impossible,premium}_phone_numbers`.
    pub phone: PhoneRules,
}

/// `_access_code_length` when unset.
pub const DEFAULT_ACCESS_CODE_LENGTH: u32 = 6;

/// `_user_confirm_timeout` when unset.
pub const DEFAULT_USER_CONFIRM_TIMEOUT_SECS: u64 = 60;

/// `_dial_retry_timeout` when unset: GMS's callback template value.
pub const DEFAULT_DIAL_RETRY_TIMEOUT_SECS: u64 = 300;

/// `_max_dial_attempts` when unset: GMS's callback template value.
pub const DEFAULT_MAX_DIAL_ATTEMPTS: u64 = 3;

impl ServiceSettings {
    /// Validates every known option in `options` and builds the typed view.
    ///
    /// # Errors
    /// The first bad option, named, with how to fix it.
    pub fn from_options(
        options: &BTreeMap<String, String>,
        stat_servers: &[String],
    ) -> Result<Self, OptionError> {
        for (name, kind) in KNOWN_OPTIONS {
            if let Some(value) = options.get(*name) {
                check_option(name, *kind, value)?;
            }
        }
        let get = |name: &str| options.get(name).map(String::as_str).unwrap_or("");
        let flag = |name: &str| get(name).trim().eq_ignore_ascii_case("true");
        let number = |name: &str| get(name).trim().parse::<u64>().unwrap_or(0);
        let signed = |name: &str| get(name).trim().parse::<i64>().unwrap_or(0);
        let number_or =
            |name: &str, default: u64| get(name).trim().parse::<u64>().unwrap_or(default);
        let list = |name: &str| -> Vec<String> {
            get(name)
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };

        let ttl_secs = ttl_secs(options);
        if ttl_secs == 0 {
            return Err(OptionError::new(
                "_ttl",
                "required: give the seconds to keep a service after its desired time, e.g. 86400",
            ));
        }
        let wait_for_agent = waits_for_agent(options);
        let wait_for_user_confirm = flag("_wait_for_user_confirm");
        if wait_for_user_confirm && !wait_for_agent {
            return Err(OptionError::new(
                "_wait_for_user_confirm",
                "`true` needs `_wait_for_agent=true` (the customer confirms an agent that was waited for): set _wait_for_agent=true or _wait_for_user_confirm=false",
            ));
        }
        let target_text = get("_target");
        if target_text.trim().is_empty() {
            return Err(OptionError::new(
                "_target",
                "required: give a routing target such as Billing@StatServer.GA",
            ));
        }
        let target = parse_target(target_text, stat_servers)?;
        let virtual_queue = Some(get("_urs_virtual_queue").trim())
            .filter(|q| !q.is_empty())
            .map(str::to_string);
        let max_dial_attempts = number_or("_max_dial_attempts", DEFAULT_MAX_DIAL_ATTEMPTS);
        if max_dial_attempts == 0 {
            return Err(OptionError::new(
                "_max_dial_attempts",
                "`0` would never dial: give the number of attempts, at least 1 (GMS's default is 3)",
            ));
        }
        let schedule = ScheduleRules::from_options(options)?;
        let scenario = Scenario::of(options);
        let access_number = Some(get("_access_number").trim())
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if let Some(number) = &access_number {
            let digits = number.chars().filter(char::is_ascii_digit).count();
            let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
            if digits == 0 || digits > 20 || !number.chars().all(allowed) {
                return Err(OptionError::new(
                    "_access_number",
                    format!("`{number}` is not a phone number: write digits, optionally with + - ( ) . and spaces, e.g. +1 800 555 0100"),
                ));
            }
        }
        if scenario == Scenario::UserOriginated && access_number.is_none() {
            return Err(OptionError::new(
                "_access_number",
                "required for a user-originated voice callback: give the number customers call, e.g. +18005550100",
            ));
        }
        let access_code_length = match get("_access_code_length").trim() {
            "" => DEFAULT_ACCESS_CODE_LENGTH,
            value => value.parse().unwrap_or(0),
        };
        if !(4..=10).contains(&access_code_length) {
            return Err(OptionError::new(
                "_access_code_length",
                "give the digits of an access code, from 4 to 10 (6 when unset)",
            ));
        }
        let throttles = Throttles::from_options(options)?;
        let phone = PhoneRules::from_options(options)?;
        // Checked here, with every other option; parsed again where events are made.
        StatusSettings::from_options(options)?;
        let overwritable: BTreeSet<String> = list("_overwritable_options").into_iter().collect();
        if let Some(bad) = overwritable.iter().find(|name| !name.starts_with('_')) {
            return Err(OptionError::new(
                "_overwritable_options",
                format!("`{bad}` is not an option name: options start with `_`, e.g. _target"),
            ));
        }
        Ok(Self {
            ttl_secs,
            wait_for_agent,
            wait_for_user_confirm,
            media_type: get("_media_type").trim().to_string(),
            target,
            virtual_queue,
            queued_ttl_secs: number("_urs_queued_ttl"),
            priority: signed("_urs_vq_priority"),
            priority_increment: signed("_urs_vq_priority_increment"),
            priority_increment_interval_secs: number("_urs_vq_priority_increment_interval"),
            overwritable,
            mandatory_lookup_keys: list("_mandatory_customer_lookup_keys"),
            max_queued_callbacks: match get("_max_queued_callbacks_per_service").trim() {
                "" => None,
                value => value.parse().ok(),
            },
            in_queue_checking: flag("_enable_in_queue_checking"),
            agent_ready_threshold: agent_ready_threshold(options),
            dial_retry_timeout_secs: number_or(
                "_dial_retry_timeout",
                DEFAULT_DIAL_RETRY_TIMEOUT_SECS,
            ),
            max_dial_attempts,
            user_confirm_timeout_secs: match get("_user_confirm_timeout").trim() {
                "" => DEFAULT_USER_CONFIRM_TIMEOUT_SECS,
                value => value.parse().unwrap_or(DEFAULT_USER_CONFIRM_TIMEOUT_SECS),
            },
            schedule,
            scenario,
            access_number,
            provide_code: flag("_provide_code"),
            access_code_length,
            throttles,
            phone,
        })
    }
}

impl ServiceSettings {
    /// The virtual queue a service of `service_name` waits in: `_urs_virtual_queue`, or the
    /// service's name when that is unset.
    pub fn queue_name(&self, service_name: &str) -> String {
        self.virtual_queue
            .clone()
            .unwrap_or_else(|| service_name.to_string())
    }
}

/// `_agent_ready_threshold_eta` and `_agent_ready_threshold_position` (35 and 5 when missing),
/// read alone: `check-queue-position` needs only these, not the `_target` parse that
/// [`ServiceSettings::from_options`] does.
pub fn agent_ready_threshold(options: &BTreeMap<String, String>) -> (u64, u64) {
    let number_or = |name: &str, default: u64| {
        options
            .get(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    (
        number_or("_agent_ready_threshold_eta", 35),
        number_or("_agent_ready_threshold_position", 5),
    )
}

/// The virtual queue of a stored service, read alone: what
/// [`ServiceSettings::queue_name`] gives, without parsing the rest of the options.
pub fn queue_name(options: &BTreeMap<String, String>, service_name: &str) -> String {
    options
        .get("_urs_virtual_queue")
        .map(|q| q.trim())
        .filter(|q| !q.is_empty())
        .unwrap_or(service_name)
        .to_string()
}

/// `_ttl` in seconds (0 when missing or not a number; validation refuses both).
pub fn ttl_secs(options: &BTreeMap<String, String>) -> u64 {
    options
        .get("_ttl")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `_wait_for_agent=true`: the service waits in a virtual queue for an agent.
pub fn waits_for_agent(options: &BTreeMap<String, String>) -> bool {
    options
        .get("_wait_for_agent")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `_wait_for_user_confirm=true`: the customer confirms a reserved agent (`connect`).
pub fn waits_for_user_confirm(options: &BTreeMap<String, String>) -> bool {
    options
        .get("_wait_for_user_confirm")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn parse_target(value: &str, stat_servers: &[String]) -> Result<TargetList, OptionError> {
    let target =
        TargetList::parse(value).map_err(|err| OptionError::new("_target", err.to_string()))?;
    if let Some(unknown) = target
        .stat_servers()
        .find(|server| !stat_servers.iter().any(|known| known == server))
    {
        return Err(OptionError::new(
            "_target",
            format!(
                "unknown Stat Server `{unknown}`: use one of {}",
                stat_servers.join(", ")
            ),
        ));
    }
    Ok(target)
}

fn check_option(name: &str, kind: OptionKind, value: &str) -> Result<(), OptionError> {
    let v = value.trim();
    let ok = match kind {
        OptionKind::Bool => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        OptionKind::Seconds => v.parse::<u64>().is_ok(),
        OptionKind::Integer => v.parse::<i64>().is_ok(),
        OptionKind::Text | OptionKind::List => true,
        OptionKind::OneOf(allowed) => allowed.contains(&v),
        // Parsed once, by `from_options`, which keeps the result.
        OptionKind::Target => true,
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        OptionKind::Bool => "write true or false".to_string(),
        OptionKind::Seconds => {
            "write a whole number of seconds (or a count), e.g. \"30\"".to_string()
        }
        OptionKind::Integer => "write a whole number, e.g. \"5\"".to_string(),
        OptionKind::OneOf(allowed) => format!("use one of {}", allowed.join(", ")),
        OptionKind::Text | OptionKind::List | OptionKind::Target => String::new(),
    };
    Err(OptionError::new(
        name,
        format!("`{value}` is not valid: {expected}"),
    ))
}

/// A bad request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    /// The field's name.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// How the customer's device is told about its service (`_device_os`): the push types GMS
/// knows (its `push.pushEnabled` option lists `android`, `gcm`, `ios`, `httpcb`, `orscb`,
/// `customhttp`, `fcm` and `comet`). Which of them callbackd can deliver, and where a push it
/// cannot deliver goes (polling), is the push layer's business; here a name is only accepted
/// or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushProvider {
    /// `comet`: CometD push to clients of the same `gms_user`.
    Comet,
    /// `httpcb`: HTTP POST to the `_device_notification_id` URL.
    HttpCallback,
    /// `fcm`: Firebase Cloud Messaging; `_device_notification_id` is the registration token.
    Fcm,
    /// `gcm`: Google Cloud Messaging, which Google replaced by FCM; its registration tokens
    /// are FCM tokens, so it is delivered as `fcm`.
    Gcm,
    /// `android`: GMS's name for C2DM, which Google shut down before GCM.
    Android,
    /// `ios`: Apple Push Notification service; `_device_notification_id` is the device token.
    Ios,
    /// `customhttp`: GMS POSTs `{deviceId, message}` to an operator-configured URL.
    CustomHttp,
    /// `orscb`: a callback into Orchestration Server.
    OrsCallback,
}

impl PushProvider {
    /// Every provider, in the order the refusal message names them.
    pub const ALL: [PushProvider; 8] = [
        PushProvider::Comet,
        PushProvider::HttpCallback,
        PushProvider::Fcm,
        PushProvider::Gcm,
        PushProvider::Ios,
        PushProvider::Android,
        PushProvider::CustomHttp,
        PushProvider::OrsCallback,
    ];

    /// The `_device_os` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PushProvider::Comet => "comet",
            PushProvider::HttpCallback => "httpcb",
            PushProvider::Fcm => "fcm",
            PushProvider::Gcm => "gcm",
            PushProvider::Android => "android",
            PushProvider::Ios => "ios",
            PushProvider::CustomHttp => "customhttp",
            PushProvider::OrsCallback => "orscb",
        }
    }

    /// The provider named `value` (ASCII case ignored, as GMS clients differ in case);
    /// `None` for a name GMS does not know.
    pub fn parse(value: &str) -> Option<PushProvider> {
        PushProvider::ALL
            .into_iter()
            .find(|provider| provider.as_str().eq_ignore_ascii_case(value))
    }

    /// Whether `_device_notification_id` addresses a device at a push service (a token),
    /// rather than a URL or nothing.
    pub fn takes_device_token(self) -> bool {
        matches!(
            self,
            PushProvider::Fcm | PushProvider::Gcm | PushProvider::Android | PushProvider::Ios
        )
    }
}

/// Longest `_device_notification_id` kept: FCM registration tokens are a few hundred
/// characters and APNs device tokens 64 hex digits; a URL fits as well.
pub const MAX_DEVICE_NOTIFICATION_ID: usize = 4096;

/// A create-service request, split into its parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRequest {
    /// `_customer_number`.
    pub customer_number: Option<String>,
    /// `_desired_time`.
    pub desired_time: Option<Timestamp>,
    /// `_device_os` (absent or empty: polling only).
    pub device_os: Option<PushProvider>,
    /// `_device_notification_id`.
    pub device_notification_id: Option<String>,
    /// `_verbose=true`.
    pub verbose: bool,
    /// Other `_` keys: option overrides, allowed only if overwritable.
    pub overrides: BTreeMap<String, String>,
    /// Keys without a leading `_`.
    pub user_data: BTreeMap<String, String>,
}

impl CreateRequest {
    /// Splits request fields. Later fields with the same name win (body over query string).
    ///
    /// # Errors
    /// The first bad field, named.
    pub fn parse(fields: impl IntoIterator<Item = (String, String)>) -> Result<Self, FieldError> {
        let mut request = CreateRequest::default();
        for (key, value) in fields {
            check_field_name(&key)?;
            match key.as_str() {
                "_customer_number" => {
                    request.customer_number = non_empty(&value).map(|v| v.to_string());
                    if let Some(number) = &request.customer_number {
                        if number.len() > 64 || number.chars().any(char::is_control) {
                            return Err(FieldError::new(
                                key,
                                "must be at most 64 printable characters, e.g. 4082652649",
                            ));
                        }
                    }
                }
                "_desired_time" => {
                    request.desired_time = match non_empty(&value) {
                        Some(v) => Some(Timestamp::parse_iso(v).map_err(|m| FieldError::new(&key, m))?),
                        None => None,
                    }
                }
                "_device_os" => {
                    request.device_os = match value.trim() {
                        "" | "none" => None,
                        name => Some(PushProvider::parse(name).ok_or_else(|| {
                            let known: Vec<&str> =
                                PushProvider::ALL.iter().map(|p| p.as_str()).collect();
                            FieldError::new(
                                &key,
                                format!(
                                    "unknown push provider `{name}`: use one of {}, or none (polling only)",
                                    known.join(", ")
                                ),
                            )
                        })?),
                    }
                }
                "_device_notification_id" => {
                    request.device_notification_id = non_empty(&value).map(|v| v.to_string());
                    if let Some(id) = &request.device_notification_id {
                        if id.len() > MAX_DEVICE_NOTIFICATION_ID || id.chars().any(char::is_control) {
                            return Err(FieldError::new(
                                key,
                                format!("must be at most {MAX_DEVICE_NOTIFICATION_ID} printable characters: the push token or URL of the device"),
                            ));
                        }
                    }
                }
                "_verbose" => request.verbose = value.trim().eq_ignore_ascii_case("true"),
                _ if key.starts_with('_') => {
                    request.overrides.insert(key, value);
                }
                _ => {
                    request.user_data.insert(key, value);
                }
            }
        }
        if request.device_os == Some(PushProvider::HttpCallback) {
            let url = request.device_notification_id.as_deref().unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(FieldError::new(
                    "_device_notification_id",
                    "with _device_os=httpcb it must be the http:// or https:// URL that receives notifications",
                ));
            }
        }
        Ok(request)
    }

    /// The options in force for this request: the service's options with the overrides applied.
    ///
    /// # Errors
    /// An override of an option that `_overwritable_options` does not list, or a bad value.
    pub fn apply_overrides(
        &self,
        service: &ValidService,
        stat_servers: &[String],
    ) -> Result<(BTreeMap<String, String>, ServiceSettings), FieldError> {
        if self.overrides.is_empty() {
            return Ok((service.effective.clone(), service.settings.clone()));
        }
        for key in self.overrides.keys() {
            if !service.settings.overwritable.contains(key) {
                let allowed = if service.settings.overwritable.is_empty() {
                    "none".to_string()
                } else {
                    service
                        .settings
                        .overwritable
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(FieldError::new(
                    key,
                    format!(
                        "option may not be overridden by a request to service `{}`: its _overwritable_options allows {allowed}",
                        service.config.name
                    ),
                ));
            }
        }
        let mut options = service.effective.clone();
        options.extend(self.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let settings = ServiceSettings::from_options(&options, stat_servers)
            .map_err(|err| FieldError::new(err.option, err.message))?;
        Ok((options, settings))
    }

    /// Checks `_mandatory_customer_lookup_keys`.
    ///
    /// # Errors
    /// The first missing key.
    pub fn check_mandatory(
        &self,
        service_name: &str,
        settings: &ServiceSettings,
    ) -> Result<(), FieldError> {
        for key in &settings.mandatory_lookup_keys {
            let present = if key == "_customer_number" {
                self.customer_number.is_some()
            } else {
                self.user_data
                    .get(key)
                    .is_some_and(|v| !v.trim().is_empty())
            };
            if !present {
                return Err(FieldError::new(
                    key,
                    format!("required by service `{service_name}` (listed in its _mandatory_customer_lookup_keys): send it with the request"),
                ));
            }
        }
        Ok(())
    }
}

/// Field names must be printable and reasonably short.
///
/// # Errors
/// An empty, long, or non-printable name.
pub fn check_field_name(key: &str) -> Result<(), FieldError> {
    if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
        return Err(FieldError::new(
            key.chars()
                .filter(|c| !c.is_control())
                .take(40)
                .collect::<String>(),
            "field names must be 1-128 printable characters",
        ));
    }
    Ok(())
}

fn non_empty(value: &str) -> Option<&str> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// A configured office-hours or capacity service that passed validation.
#[derive(Debug, Clone)]
pub struct ScheduleService {
    /// What the administrator configured.
    pub config: ConfiguredService,
    /// Preset defaults plus configured options.
    pub effective: BTreeMap<String, String>,
    /// Its rules, parsed.
    pub calendar: Calendar,
}

impl ScheduleService {
    /// Its office hours, if it is an office-hours service.
    pub fn office_hours(&self) -> Option<&OfficeHours> {
        match &self.calendar {
            Calendar::OfficeHours(hours) => Some(hours),
            Calendar::Capacity(_) => None,
        }
    }

    /// Its capacity, if it is a capacity service.
    pub fn capacity(&self) -> Option<&Capacity> {
        match &self.calendar {
            Calendar::Capacity(capacity) => Some(capacity.as_ref()),
            Calendar::OfficeHours(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers() -> Vec<String> {
        vec!["StatServer".to_string()]
    }

    fn service(preset: Preset, options: &[(&str, &str)]) -> ConfiguredService {
        ConfiguredService {
            name: "chat-delay".into(),
            preset,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn presets_supply_the_seed_defaults() {
        let valid = service(Preset::ChatDelayed, &[("_target", "Billing@StatServer.GA")])
            .validate(&servers())
            .unwrap();
        assert!(valid.settings.wait_for_agent);
        assert!(valid.settings.wait_for_user_confirm);
        assert_eq!(valid.settings.ttl_secs, 86_400);
        assert_eq!(valid.settings.media_type, "chat");
        assert_eq!(valid.effective["_type"], "ors");
        assert_eq!(
            valid.settings.mandatory_lookup_keys,
            vec!["_customer_number"]
        );
    }

    #[test]
    fn bad_options_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("_target", "Billing@StatServer.GA"), ("_ttl", "soon")],
                "_ttl",
            ),
            (&[], "_target"),
            (&[("_target", "Billing@StatServer.GX")], "_target"),
            (&[("_target", "Billing@Other.GA")], "_target"),
            (
                &[
                    ("_target", "Billing@StatServer.GA"),
                    ("_wait_for_agent", "false"),
                    ("_wait_for_user_confirm", "true"),
                ],
                "_wait_for_user_confirm",
            ),
            (
                &[
                    ("_target", "Billing@StatServer.GA"),
                    ("_wait_for_agent", "yes"),
                ],
                "_wait_for_agent",
            ),
            (
                &[("_target", "Billing@StatServer.GA"), ("_type", "java")],
                "_type",
            ),
            (
                &[
                    ("_target", "Billing@StatServer.GA"),
                    ("_overwritable_options", "target"),
                ],
                "_overwritable_options",
            ),
        ];
        for (options, option) in cases {
            let err = service(Preset::ChatDelayed, options)
                .validate(&servers())
                .expect_err(option);
            assert_eq!(err.option, *option, "{options:?}: {err}");
        }
    }

    #[test]
    fn service_names_must_fit_in_a_url() {
        for name in ["", "callback", "a b", "x/y"] {
            let mut config = service(Preset::ChatDelayed, &[("_target", "Billing@StatServer.GA")]);
            config.name = name.to_string();
            assert!(config.validate(&servers()).is_err(), "{name:?}");
        }
    }

    #[test]
    fn requests_split_into_parameters_overrides_and_user_data() {
        let request = CreateRequest::parse(fields(&[
            ("_customer_number", "4082652649"),
            ("usr_reason", "billing question"),
            ("_target", "Support@StatServer.GA"),
            ("_device_os", "comet"),
            ("_verbose", "true"),
        ]))
        .unwrap();
        assert_eq!(request.customer_number.as_deref(), Some("4082652649"));
        assert_eq!(request.user_data["usr_reason"], "billing question");
        assert_eq!(request.overrides["_target"], "Support@StatServer.GA");
        assert_eq!(request.device_os, Some(PushProvider::Comet));
        assert!(request.verbose);
    }

    #[test]
    fn bad_request_fields_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("_desired_time", "tomorrow")], "_desired_time"),
            (&[("_device_os", "symbian")], "_device_os"),
            (
                &[("_device_os", "httpcb"), ("_device_notification_id", "abc")],
                "_device_notification_id",
            ),
            (&[("_customer_number", "1\u{0}2")], "_customer_number"),
        ];
        for (pairs, field) in cases {
            let err = CreateRequest::parse(fields(pairs)).expect_err(field);
            assert_eq!(err.field, *field, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn every_gms_push_type_is_accepted_and_kept_by_its_gms_name() {
        let cases = [
            ("comet", PushProvider::Comet),
            ("httpcb", PushProvider::HttpCallback),
            ("fcm", PushProvider::Fcm),
            ("gcm", PushProvider::Gcm),
            ("GCM", PushProvider::Gcm),
            (" ios ", PushProvider::Ios),
            ("android", PushProvider::Android),
            ("customhttp", PushProvider::CustomHttp),
            ("orscb", PushProvider::OrsCallback),
        ];
        for (given, expected) in cases {
            let mut pairs = vec![("_device_os", given)];
            if expected == PushProvider::HttpCallback {
                pairs.push(("_device_notification_id", "http://example.com/push"));
            }
            let request = CreateRequest::parse(fields(&pairs)).unwrap();
            assert_eq!(request.device_os, Some(expected), "{given:?}");
        }
        for provider in PushProvider::ALL {
            assert_eq!(
                PushProvider::parse(provider.as_str()),
                Some(provider),
                "{provider:?} reads back from what is stored"
            );
        }
        for polling in ["", "none", "  "] {
            let request = CreateRequest::parse(fields(&[("_device_os", polling)])).unwrap();
            assert_eq!(request.device_os, None, "{polling:?} means polling only");
        }
    }

    #[test]
    fn a_push_token_provider_without_a_token_is_accepted() {
        // The app may not have its token yet; its notifications wait for polling.
        for name in ["gcm", "fcm", "ios"] {
            let request = CreateRequest::parse(fields(&[("_device_os", name)])).unwrap();
            assert!(request.device_notification_id.is_none(), "{name}");
            assert!(request.device_os.unwrap().takes_device_token(), "{name}");
        }
    }

    #[test]
    fn unknown_push_providers_and_oversized_tokens_are_named() {
        let err = CreateRequest::parse(fields(&[("_device_os", "symbian")])).unwrap_err();
        assert_eq!(err.field, "_device_os");
        assert!(
            err.message.contains("symbian") && err.message.contains("gcm"),
            "names the value and the accepted ones: {err}"
        );
        let huge = "t".repeat(MAX_DEVICE_NOTIFICATION_ID + 1);
        let err = CreateRequest::parse(fields(&[
            ("_device_os", "fcm"),
            ("_device_notification_id", &huge),
        ]))
        .unwrap_err();
        assert_eq!(err.field, "_device_notification_id");
        let err = CreateRequest::parse(fields(&[
            ("_device_os", "fcm"),
            ("_device_notification_id", "tok\u{7}en"),
        ]))
        .unwrap_err();
        assert_eq!(err.field, "_device_notification_id");
    }

    #[test]
    fn overrides_need_to_be_overwritable() {
        let valid = service(
            Preset::ChatDelayed,
            &[
                ("_target", "Billing@StatServer.GA"),
                ("_overwritable_options", "_target"),
            ],
        )
        .validate(&servers())
        .unwrap();
        let ok = CreateRequest::parse(fields(&[("_target", "Support@StatServer.GA")])).unwrap();
        let (options, _) = ok.apply_overrides(&valid, &servers()).unwrap();
        assert_eq!(options["_target"], "Support@StatServer.GA");

        let bad_value = CreateRequest::parse(fields(&[("_target", "Support")])).unwrap();
        assert_eq!(
            bad_value
                .apply_overrides(&valid, &servers())
                .unwrap_err()
                .field,
            "_target"
        );

        let refused = CreateRequest::parse(fields(&[("_ttl", "5")])).unwrap();
        let err = refused.apply_overrides(&valid, &servers()).unwrap_err();
        assert_eq!(err.field, "_ttl");
        assert!(err.message.contains("_target"), "{err}");
    }

    #[test]
    fn mandatory_customer_number_is_enforced() {
        let valid = service(Preset::ChatDelayed, &[("_target", "Billing@StatServer.GA")])
            .validate(&servers())
            .unwrap();
        let missing = CreateRequest::parse(fields(&[("usr_reason", "x")])).unwrap();
        let err = missing
            .check_mandatory("chat-delay", &valid.settings)
            .unwrap_err();
        assert_eq!(err.field, "_customer_number");
    }
}
