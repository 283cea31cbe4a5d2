//! Chat inactivity (idle) control: when to warn a quiet chat and when to close it.
//!
//! Chat Server watches each session for inactivity: after `timeout-alert` seconds without
//! activity it posts `message-alert`, after `timeout-alert2` seconds `message-alert2`, and
//! after `timeout-close` seconds it posts `message-close` and closes the session. All timeouts
//! count from the last activity; a timeout of 0 turns its step off. A workflow changes these
//! per session with the ESP method `IdleControlConfigure` (parsed here into [`IdleChanges`]).
//!
//! This module is pure: the caller passes the current time into [`IdleState`] and acts on the
//! [`IdleAction`] it gets back. It does not post messages, close sessions or read a clock.

use std::collections::BTreeMap;

use super::options::FieldError;
use super::time::Timestamp;

/// The `IdleControlConfigure` parameter names, in the order of the Chat Server guide.
pub const PARAMETERS: [&str; 9] = [
    "reset-parameters",
    "enabled",
    "include-notices",
    "message-alert",
    "message-alert2",
    "message-close",
    "timeout-alert",
    "timeout-alert2",
    "timeout-close",
];

/// A session's inactivity-control settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleSettings {
    /// Whether inactivity is watched at all (`enabled`).
    pub enabled: bool,
    /// Whether notices count as activity (`include-notices`); messages always do.
    pub include_notices: bool,
    /// Seconds of inactivity before the first alert; 0 turns it off (`timeout-alert`).
    pub timeout_alert_secs: u64,
    /// The first alert's text (`message-alert`).
    pub message_alert: String,
    /// Seconds of inactivity before the second alert; 0 turns it off (`timeout-alert2`).
    pub timeout_alert2_secs: u64,
    /// The second alert's text (`message-alert2`).
    pub message_alert2: String,
    /// Seconds of inactivity before the session is closed; 0 turns it off (`timeout-close`).
    pub timeout_close_secs: u64,
    /// The text posted when closing (`message-close`).
    pub message_close: String,
}

impl Default for IdleSettings {
    /// Off; when enabled: an alert after 60 s, no second alert, closed after 120 s.
    fn default() -> Self {
        Self {
            enabled: false,
            include_notices: false,
            timeout_alert_secs: 60,
            message_alert: "Are you still there?".to_string(),
            timeout_alert2_secs: 0,
            message_alert2: String::new(),
            timeout_close_secs: 120,
            message_close: "The chat was closed after a period of inactivity.".to_string(),
        }
    }
}

/// Changes to [`IdleSettings`] requested by `IdleControlConfigure`; `None` leaves a setting
/// as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdleChanges {
    /// `reset-parameters=true`: go back to the configured defaults before applying the rest.
    pub reset: bool,
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `include-notices`.
    pub include_notices: Option<bool>,
    /// `timeout-alert`, in seconds.
    pub timeout_alert_secs: Option<u64>,
    /// `message-alert`.
    pub message_alert: Option<String>,
    /// `timeout-alert2`, in seconds.
    pub timeout_alert2_secs: Option<u64>,
    /// `message-alert2`.
    pub message_alert2: Option<String>,
    /// `timeout-close`, in seconds.
    pub timeout_close_secs: Option<u64>,
    /// `message-close`.
    pub message_close: Option<String>,
}

impl IdleChanges {
    /// Reads the `IdleControlConfigure` parameters from an ESP request's parameters.
    ///
    /// Other parameters (`InteractionId`, user data sent along with the request) are ignored.
    /// A parameter with an empty or blank value counts as absent. As everywhere in ESP, a
    /// boolean is true only for the value `true`; anything else is false. Messages are kept
    /// as written.
    ///
    /// # Errors
    /// A [`FieldError`] when none of the parameters is given, or naming the timeout that is
    /// not a whole number of seconds.
    pub fn parse(params: &BTreeMap<String, String>) -> Result<IdleChanges, FieldError> {
        let given = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.trim().is_empty())
        };
        if PARAMETERS.iter().all(|name| given(name).is_none()) {
            return Err(FieldError::new(
                "IdleControlConfigure",
                format!(
                    "no inactivity-control parameter given: set at least one of {}",
                    PARAMETERS.join(", ")
                ),
            ));
        }
        let flag = |name: &str| given(name).map(|v| v.trim() == "true");
        let text = |name: &str| given(name).map(str::to_string);
        let seconds = |name: &str| -> Result<Option<u64>, FieldError> {
            given(name).map(|v| parse_seconds(name, v)).transpose()
        };
        Ok(IdleChanges {
            reset: flag("reset-parameters").unwrap_or(false),
            enabled: flag("enabled"),
            include_notices: flag("include-notices"),
            timeout_alert_secs: seconds("timeout-alert")?,
            message_alert: text("message-alert"),
            timeout_alert2_secs: seconds("timeout-alert2")?,
            message_alert2: text("message-alert2"),
            timeout_close_secs: seconds("timeout-close")?,
            message_close: text("message-close"),
        })
    }
}

/// A timeout parameter: a whole, non-negative number of seconds.
fn parse_seconds(name: &str, value: &str) -> Result<u64, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new(
            name,
            format!("`{value}` is not a whole number of seconds: write e.g. \"60\", or \"0\" to turn this step off"),
        ));
    }
    trimmed.parse::<u64>().map_err(|_| {
        FieldError::new(
            name,
            format!(
                "`{value}` is too large: write a number of seconds below {}",
                u64::MAX
            ),
        )
    })
}

impl IdleSettings {
    /// These settings with `changes` applied: back to `defaults` first when
    /// `changes.reset`, then every given value.
    ///
    /// # Errors
    /// A [`FieldError`] naming a timeout when the result's non-zero timeouts do not increase
    /// `timeout-alert` < `timeout-alert2` < `timeout-close`; `self` is left as it was.
    pub fn apply(
        &self,
        changes: &IdleChanges,
        defaults: &IdleSettings,
    ) -> Result<IdleSettings, FieldError> {
        let mut next = if changes.reset {
            defaults.clone()
        } else {
            self.clone()
        };
        if let Some(enabled) = changes.enabled {
            next.enabled = enabled;
        }
        if let Some(include) = changes.include_notices {
            next.include_notices = include;
        }
        if let Some(secs) = changes.timeout_alert_secs {
            next.timeout_alert_secs = secs;
        }
        if let Some(text) = &changes.message_alert {
            next.message_alert = text.clone();
        }
        if let Some(secs) = changes.timeout_alert2_secs {
            next.timeout_alert2_secs = secs;
        }
        if let Some(text) = &changes.message_alert2 {
            next.message_alert2 = text.clone();
        }
        if let Some(secs) = changes.timeout_close_secs {
            next.timeout_close_secs = secs;
        }
        if let Some(text) = &changes.message_close {
            next.message_close = text.clone();
        }
        next.check_order(|name| match name {
            "timeout-alert" => changes.timeout_alert_secs.is_some(),
            "timeout-alert2" => changes.timeout_alert2_secs.is_some(),
            "timeout-close" => changes.timeout_close_secs.is_some(),
            _ => false,
        })?;
        Ok(next)
    }

    /// Checks that the non-zero timeouts increase: alert < alert2 < close. Use it on
    /// configured defaults.
    ///
    /// # Errors
    /// A [`FieldError`] naming the later timeout of the first pair out of order.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.check_order(|_| false)
    }

    /// The order check; `was_changed` says which timeout the request set, so the error names
    /// the one the writer just touched.
    fn check_order(&self, was_changed: impl Fn(&str) -> bool) -> Result<(), FieldError> {
        let steps = [
            ("timeout-alert", self.timeout_alert_secs),
            ("timeout-alert2", self.timeout_alert2_secs),
            ("timeout-close", self.timeout_close_secs),
        ];
        for (i, &(early_name, early)) in steps.iter().enumerate() {
            for &(late_name, late) in &steps[i + 1..] {
                if early == 0 || late == 0 || early < late {
                    continue;
                }
                let blamed = if !was_changed(late_name) && was_changed(early_name) {
                    early_name
                } else {
                    late_name
                };
                return Err(FieldError::new(
                    blamed,
                    format!(
                        "{late_name} ({late} s) must be greater than {early_name} ({early} s): \
                         raise {late_name}, lower {early_name}, or set one of them to 0 to turn \
                         that step off"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What inactivity control asks the session to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleAction {
    /// Post the first alert.
    Alert {
        /// `message-alert`.
        text: String,
    },
    /// Post the second alert.
    SecondAlert {
        /// `message-alert2`.
        text: String,
    },
    /// Post the closing text and close the session.
    Close {
        /// `message-close`.
        text: String,
    },
}

/// The steps of the idle sequence, in order; [`IdleState::alerts_sent`] counts through them.
const STEP_ALERT: u8 = 0;
const STEP_ALERT2: u8 = 1;
const STEP_CLOSE: u8 = 2;
/// `alerts_sent` once the session was closed: nothing is left.
const STEPS_DONE: u8 = 3;

/// Where one session is in its idle sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleState {
    /// The last activity; every timeout counts from here.
    pub last_activity: Timestamp,
    /// How many steps of the sequence (alert, second alert, close) are behind us, 0 to 3;
    /// a step that is off or was skipped counts as behind us once a later one fired.
    pub alerts_sent: u8,
}

impl IdleState {
    /// A session that was active at `now` (e.g. just created).
    pub fn new(now: Timestamp) -> Self {
        Self {
            last_activity: now,
            alerts_sent: 0,
        }
    }

    /// Whether the sequence ended with [`IdleAction::Close`].
    pub fn is_closed(&self) -> bool {
        self.alerts_sent >= STEPS_DONE
    }

    /// Activity in the session: a message always counts; a notice counts only with
    /// `include_notices`. Restarts the timeouts from `now` and forgets the alerts sent.
    ///
    /// Once the session was closed by inactivity, nothing restarts it.
    pub fn activity(&mut self, settings: &IdleSettings, is_notice: bool, now: Timestamp) {
        if self.is_closed() || (is_notice && !settings.include_notices) {
            return;
        }
        self.last_activity = now;
        self.alerts_sent = 0;
    }

    /// When the next action is due (`None`: disabled or nothing left).
    pub fn next_deadline(&self, settings: &IdleSettings) -> Option<Timestamp> {
        if !settings.enabled {
            return None;
        }
        pending_steps(settings, self.alerts_sent)
            .map(|(_, secs)| self.last_activity.plus_secs(secs))
            .min()
    }

    /// The action due at `now`, if any, recording it so it is not returned twice.
    ///
    /// When several steps are due at once (a wake-up long after the deadline, e.g. after a
    /// restart), only the latest is returned and the earlier ones are skipped: Close wins
    /// over the alerts, the second alert over the first.
    pub fn due(&mut self, settings: &IdleSettings, now: Timestamp) -> Option<IdleAction> {
        if !settings.enabled {
            return None;
        }
        let (step, _) = pending_steps(settings, self.alerts_sent)
            .filter(|&(_, secs)| self.last_activity.plus_secs(secs) <= now)
            .last()?;
        self.alerts_sent = step + 1;
        Some(match step {
            STEP_ALERT => IdleAction::Alert {
                text: settings.message_alert.clone(),
            },
            STEP_ALERT2 => IdleAction::SecondAlert {
                text: settings.message_alert2.clone(),
            },
            _ => IdleAction::Close {
                text: settings.message_close.clone(),
            },
        })
    }
}

/// The steps still ahead, as (step, timeout), skipping those turned off (timeout 0).
///
/// With validated settings the timeouts increase, so deadlines come in this order. With
/// unvalidated ones a later step may be due first; [`IdleState::next_deadline`] takes the
/// earliest and [`IdleState::due`] the latest step due, so no step is ever returned twice.
fn pending_steps(settings: &IdleSettings, done: u8) -> impl Iterator<Item = (u8, u64)> {
    [
        (STEP_ALERT, settings.timeout_alert_secs),
        (STEP_ALERT2, settings.timeout_alert2_secs),
        (STEP_CLOSE, settings.timeout_close_secs),
    ]
    .into_iter()
    .filter(move |&(step, secs)| step >= done && secs > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000).plus_secs(secs)
    }

    fn enabled() -> IdleSettings {
        IdleSettings {
            enabled: true,
            timeout_alert_secs: 60,
            message_alert: "alert".into(),
            timeout_alert2_secs: 90,
            message_alert2: "alert2".into(),
            timeout_close_secs: 120,
            message_close: "bye".into(),
            ..IdleSettings::default()
        }
    }

    fn alert() -> Option<IdleAction> {
        Some(IdleAction::Alert {
            text: "alert".into(),
        })
    }
    fn alert2() -> Option<IdleAction> {
        Some(IdleAction::SecondAlert {
            text: "alert2".into(),
        })
    }
    fn close() -> Option<IdleAction> {
        Some(IdleAction::Close { text: "bye".into() })
    }

    #[test]
    fn defaults_are_off_with_alert_at_60_and_close_at_120() {
        let defaults = IdleSettings::default();
        assert!(!defaults.enabled);
        assert!(!defaults.include_notices);
        assert_eq!(defaults.timeout_alert_secs, 60);
        assert_eq!(defaults.message_alert, "Are you still there?");
        assert_eq!(defaults.timeout_alert2_secs, 0);
        assert_eq!(defaults.message_alert2, "");
        assert_eq!(defaults.timeout_close_secs, 120);
        assert_eq!(
            defaults.message_close,
            "The chat was closed after a period of inactivity."
        );
        assert_eq!(defaults.validate(), Ok(()));
    }

    #[test]
    fn alert_then_second_alert_then_close_at_the_right_instants() {
        let settings = enabled();
        let mut state = IdleState::new(at(0));

        assert_eq!(state.next_deadline(&settings), Some(at(60)));
        assert_eq!(state.due(&settings, at(59)), None, "not yet");
        assert_eq!(
            state.due(&settings, Timestamp::from_millis(at(60).as_millis() - 1)),
            None,
            "one millisecond early"
        );
        assert_eq!(state.due(&settings, at(60)), alert());
        assert_eq!(state.due(&settings, at(60)), None, "not returned twice");

        assert_eq!(state.next_deadline(&settings), Some(at(90)));
        assert_eq!(state.due(&settings, at(89)), None);
        assert_eq!(state.due(&settings, at(90)), alert2());

        assert_eq!(state.next_deadline(&settings), Some(at(120)));
        assert_eq!(state.due(&settings, at(119)), None);
        assert_eq!(state.due(&settings, at(120)), close());

        assert!(state.is_closed());
        assert_eq!(state.next_deadline(&settings), None, "nothing left");
        assert_eq!(state.due(&settings, at(10_000)), None);
    }

    #[test]
    fn activity_restarts_the_timeouts_and_forgets_alerts() {
        let settings = enabled();
        let mut state = IdleState::new(at(0));
        assert_eq!(state.due(&settings, at(60)), alert());

        state.activity(&settings, false, at(70));

        assert_eq!(state, IdleState::new(at(70)));
        assert_eq!(state.next_deadline(&settings), Some(at(130)));
        assert_eq!(state.due(&settings, at(129)), None);
        assert_eq!(
            state.due(&settings, at(130)),
            alert(),
            "the first alert again"
        );
    }

    #[test]
    fn notices_count_only_with_include_notices() {
        let mut settings = enabled();
        let mut state = IdleState::new(at(0));

        state.activity(&settings, true, at(50));
        assert_eq!(
            state.next_deadline(&settings),
            Some(at(60)),
            "notice ignored"
        );

        settings.include_notices = true;
        state.activity(&settings, true, at(50));
        assert_eq!(
            state.next_deadline(&settings),
            Some(at(110)),
            "notice counted"
        );
    }

    #[test]
    fn disabled_control_does_nothing() {
        let settings = IdleSettings {
            enabled: false,
            ..enabled()
        };
        let mut state = IdleState::new(at(0));
        assert_eq!(state.next_deadline(&settings), None);
        assert_eq!(state.due(&settings, at(1_000_000)), None);
        assert_eq!(state.alerts_sent, 0);
    }

    #[test]
    fn steps_set_to_zero_are_skipped() {
        /// (seconds after the last activity, what is due then).
        type Timeline<'a> = &'a [(u64, Option<IdleAction>)];
        let cases: [(u64, u64, u64, Timeline); 4] = [
            (0, 90, 120, &[(90, alert2()), (120, close())]),
            (60, 0, 120, &[(60, alert()), (120, close())]),
            (60, 90, 0, &[(60, alert()), (90, alert2())]),
            (0, 0, 0, &[]),
        ];
        for (alert_secs, alert2_secs, close_secs, expected) in cases {
            let settings = IdleSettings {
                timeout_alert_secs: alert_secs,
                timeout_alert2_secs: alert2_secs,
                timeout_close_secs: close_secs,
                ..enabled()
            };
            let mut state = IdleState::new(at(0));
            for (secs, action) in expected {
                assert_eq!(
                    state.next_deadline(&settings),
                    Some(at(*secs)),
                    "{alert_secs}/{alert2_secs}/{close_secs}: deadline"
                );
                assert_eq!(
                    state.due(&settings, at(*secs)),
                    *action,
                    "{alert_secs}/{alert2_secs}/{close_secs}: at {secs}"
                );
            }
            assert_eq!(
                state.next_deadline(&settings),
                None,
                "{alert_secs}/{alert2_secs}/{close_secs}: nothing left"
            );
            assert_eq!(state.due(&settings, at(1_000_000)), None);
        }
    }

    #[test]
    fn late_wake_up_after_a_restart_returns_close_directly() {
        let settings = enabled();
        let mut state = IdleState::new(at(0));

        assert_eq!(state.due(&settings, at(3_600)), close());

        assert!(state.is_closed());
        assert_eq!(state.due(&settings, at(3_601)), None);
    }

    #[test]
    fn late_wake_up_between_second_alert_and_close_skips_the_first_alert() {
        let settings = enabled();
        let mut state = IdleState::new(at(0));
        assert_eq!(state.due(&settings, at(100)), alert2());
        assert_eq!(state.next_deadline(&settings), Some(at(120)));
    }

    #[test]
    fn activity_after_close_does_not_reopen() {
        let settings = enabled();
        let mut state = IdleState::new(at(0));
        assert_eq!(state.due(&settings, at(120)), close());
        state.activity(&settings, false, at(121));
        assert!(state.is_closed());
        assert_eq!(state.next_deadline(&settings), None);
    }

    #[test]
    fn parse_reads_every_parameter_and_ignores_others() {
        let changes = IdleChanges::parse(&params(&[
            ("reset-parameters", "true"),
            ("enabled", "true"),
            ("include-notices", "false"),
            ("message-alert", " Still there? "),
            ("message-alert2", "Last call"),
            ("message-close", "Bye"),
            ("timeout-alert", "30"),
            ("timeout-alert2", " 45 "),
            ("timeout-close", "0"),
            ("InteractionId", "000123"),
            ("SomeUserData", "x"),
        ]))
        .expect("valid");
        assert_eq!(
            changes,
            IdleChanges {
                reset: true,
                enabled: Some(true),
                include_notices: Some(false),
                timeout_alert_secs: Some(30),
                message_alert: Some(" Still there? ".into()),
                timeout_alert2_secs: Some(45),
                message_alert2: Some("Last call".into()),
                timeout_close_secs: Some(0),
                message_close: Some("Bye".into()),
            }
        );
    }

    #[test]
    fn only_true_is_true() {
        for (value, expected) in [
            ("true", Some(true)),
            ("false", Some(false)),
            ("TRUE", Some(false)),
            ("1", Some(false)),
            ("yes", Some(false)),
        ] {
            let changes = IdleChanges::parse(&params(&[("enabled", value)])).expect(value);
            assert_eq!(changes.enabled, expected, "enabled={value}");
        }
    }

    #[test]
    fn parse_needs_at_least_one_parameter() {
        for given in [
            params(&[]),
            params(&[("InteractionId", "0001")]),
            params(&[("enabled", ""), ("timeout-close", "  ")]),
        ] {
            let err = IdleChanges::parse(&given).expect_err("nothing given");
            assert_eq!(err.field, "IdleControlConfigure", "{given:?}");
            assert!(err.message.contains("timeout-close"), "{}", err.message);
        }
    }

    #[test]
    fn timeouts_must_be_whole_seconds() {
        for name in ["timeout-alert", "timeout-alert2", "timeout-close"] {
            for bad in ["1.5", "-1", "30s", "ten", "+5", "99999999999999999999999"] {
                let err = IdleChanges::parse(&params(&[(name, bad)])).expect_err(bad);
                assert_eq!(err.field, name, "{name}={bad}");
                assert!(err.message.contains(bad), "{name}={bad}: {}", err.message);
            }
        }
    }

    #[test]
    fn apply_sets_only_given_values() {
        let current = enabled();
        let changes = IdleChanges {
            timeout_close_secs: Some(300),
            message_close: Some("Closing now".into()),
            ..IdleChanges::default()
        };
        let next = current
            .apply(&changes, &IdleSettings::default())
            .expect("valid");
        assert_eq!(
            next,
            IdleSettings {
                timeout_close_secs: 300,
                message_close: "Closing now".into(),
                ..enabled()
            }
        );
    }

    #[test]
    fn reset_parameters_goes_back_to_defaults_before_the_given_values() {
        let current = enabled();
        let defaults = IdleSettings::default();

        let reset_only = IdleChanges {
            reset: true,
            ..IdleChanges::default()
        };
        assert_eq!(current.apply(&reset_only, &defaults), Ok(defaults.clone()));

        let reset_and_enable = IdleChanges {
            reset: true,
            enabled: Some(true),
            ..IdleChanges::default()
        };
        assert_eq!(
            current.apply(&reset_and_enable, &defaults),
            Ok(IdleSettings {
                enabled: true,
                ..defaults
            })
        );
    }

    #[test]
    fn reset_parameters_from_the_wire() {
        let changes = IdleChanges::parse(&params(&[("reset-parameters", "true")])).expect("valid");
        let next = enabled()
            .apply(&changes, &IdleSettings::default())
            .expect("valid");
        assert_eq!(next, IdleSettings::default());
    }

    #[test]
    fn timeouts_out_of_order_name_the_parameter() {
        let current = enabled(); // 60 / 90 / 120
        let defaults = IdleSettings::default();
        let cases: [(IdleChanges, &str); 5] = [
            (
                IdleChanges {
                    timeout_alert2_secs: Some(30),
                    ..IdleChanges::default()
                },
                "timeout-alert2",
            ),
            (
                IdleChanges {
                    timeout_alert_secs: Some(100),
                    ..IdleChanges::default()
                },
                "timeout-alert",
            ),
            (
                IdleChanges {
                    timeout_close_secs: Some(90),
                    ..IdleChanges::default()
                },
                "timeout-close",
            ),
            (
                IdleChanges {
                    timeout_alert_secs: Some(120),
                    timeout_alert2_secs: Some(0),
                    ..IdleChanges::default()
                },
                "timeout-alert",
            ),
            (
                IdleChanges {
                    timeout_alert_secs: Some(50),
                    timeout_alert2_secs: Some(50),
                    ..IdleChanges::default()
                },
                "timeout-alert2",
            ),
        ];
        for (changes, field) in cases {
            let err = current.apply(&changes, &defaults).expect_err(field);
            assert_eq!(err.field, field, "{changes:?}: {}", err.message);
            assert!(
                err.message.contains("must be greater than"),
                "{}",
                err.message
            );
            assert!(err.message.contains("to 0"), "{}", err.message);
        }
    }

    #[test]
    fn zero_timeouts_are_not_ordered() {
        let changes = IdleChanges {
            timeout_alert_secs: Some(0),
            timeout_alert2_secs: Some(500),
            timeout_close_secs: Some(0),
            ..IdleChanges::default()
        };
        assert!(enabled().apply(&changes, &IdleSettings::default()).is_ok());
    }

    #[test]
    fn validate_names_the_later_timeout() {
        let settings = IdleSettings {
            timeout_alert_secs: 200,
            ..IdleSettings::default()
        };
        let err = settings.validate().expect_err("200 >= 120");
        assert_eq!(err.field, "timeout-close");
    }

    #[test]
    fn unvalidated_out_of_order_settings_still_close_first_and_once() {
        let settings = IdleSettings {
            timeout_alert_secs: 100,
            timeout_alert2_secs: 0,
            timeout_close_secs: 50,
            ..enabled()
        };
        let mut state = IdleState::new(at(0));
        assert_eq!(state.next_deadline(&settings), Some(at(50)));
        assert_eq!(state.due(&settings, at(50)), close());
        assert_eq!(state.due(&settings, at(100)), None);
    }

    #[test]
    fn huge_timeouts_never_overflow() {
        let settings = IdleSettings {
            timeout_alert_secs: 0,
            timeout_alert2_secs: 0,
            timeout_close_secs: u64::MAX,
            ..enabled()
        };
        let mut state = IdleState::new(at(0));
        assert_eq!(
            state.next_deadline(&settings),
            Some(Timestamp::from_millis(u64::MAX))
        );
        assert_eq!(state.due(&settings, at(1_000_000_000)), None);
    }
}
