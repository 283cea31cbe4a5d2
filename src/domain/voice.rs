//! Voice callbacks handled on the agent desktop, with no telephony: the agent dials the
//! customer's number on their own phone and records how the call went. This module holds the
//! outcomes an agent records and the rules that move the service on; it performs no I/O.
//!
//! A voice callback (`_media_type=voice`, no chat) reserved for an agent is *waiting for the
//! customer* while the service still needs their confirmation (`_wait_for_user_confirm`),
//! then *to dial*. The agent takes it (Accept, or at once for agents with auto answer): it is
//! PROCESSING, *dialing*. Then the agent records the outcome:
//! - `connected`: COMPLETED `AGENT_CONNECTED`;
//! - `no_answer` or `busy`: dialed again after `_dial_retry_timeout` seconds (SCHEDULED at
//!   that time, then back in its queue in its original place), until `_max_dial_attempts`
//!   attempts were made, then COMPLETED `FAIL_CALL_TO_CUSTOMER`;
//! - `wrong_number`: COMPLETED `FAIL_CALL_TO_CUSTOMER` at once (dialing again cannot help).
//!
//! Every outcome is a dial attempt, written to the routing history as
//! [`RoutingEventKind::Dialed`]; the attempts are counted from there, so the stored record
//! needs no new field.

use std::fmt;

use super::options::{self, FieldError, ServiceSettings};
use super::service::{
    CallbackReason, CallbackState, RoutingEvent, RoutingEventKind, ServiceRecord,
};
use super::time::Timestamp;

/// The `_media_type` of a voice callback.
pub use super::options::VOICE;

/// The media of a service as the agent desktop shows it: `chat` for a service with a chat,
/// else its `_media_type` (`voice`, `chat`, ...), in lower case.
pub fn media_of(record: &ServiceRecord) -> String {
    if record.chat_session_id.is_some() {
        return "chat".to_string();
    }
    record
        .options
        .get("_media_type")
        .map(|media| media.trim().to_ascii_lowercase())
        .filter(|media| !media.is_empty())
        .unwrap_or_else(|| "chat".to_string())
}

/// Whether the service is a voice callback: `_media_type=voice` and no chat.
pub fn is_voice(record: &ServiceRecord) -> bool {
    media_of(record) == VOICE
}

/// What the agent records after dialing the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// The customer answered and the agent talked to them.
    Connected,
    /// Nobody answered.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// The number does not reach the customer.
    WrongNumber,
}

impl DialOutcome {
    /// Every outcome.
    pub const ALL: [DialOutcome; 4] = [
        DialOutcome::Connected,
        DialOutcome::NoAnswer,
        DialOutcome::Busy,
        DialOutcome::WrongNumber,
    ];

    /// The wire name (`no_answer`).
    pub fn as_str(self) -> &'static str {
        match self {
            DialOutcome::Connected => "connected",
            DialOutcome::NoAnswer => "no_answer",
            DialOutcome::Busy => "busy",
            DialOutcome::WrongNumber => "wrong_number",
        }
    }

    /// Reads the `outcome` field.
    ///
    /// # Errors
    /// A missing or unknown value, naming the field `outcome` and the values it takes.
    pub fn parse(value: Option<&str>) -> Result<Self, FieldError> {
        let names: Vec<&str> = Self::ALL.iter().map(|o| o.as_str()).collect();
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Err(FieldError::new(
                "outcome",
                format!(
                    "required: say how the call went, one of {}",
                    names.join(", ")
                ),
            ));
        };
        Self::ALL
            .into_iter()
            .find(|o| o.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                FieldError::new(
                    "outcome",
                    format!(
                        "`{value}` is not an outcome: use one of {}",
                        names.join(", ")
                    ),
                )
            })
    }

    /// Whether the customer may be dialed again after this outcome.
    fn redials(self) -> bool {
        matches!(self, DialOutcome::NoAnswer | DialOutcome::Busy)
    }
}

impl fmt::Display for DialOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a voice callback stands for the agent it is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reserved; the customer has not confirmed yet (`_wait_for_user_confirm`).
    AwaitingCustomer,
    /// Reserved and ready: the agent may take it and dial.
    ToDial,
    /// Taken (PROCESSING): the agent is dialing or talking.
    Dialing,
}

impl Stage {
    /// The interaction status the agent desktop shows: `reserved`, `invited` (to take and
    /// dial), `active`.
    pub fn status(self) -> &'static str {
        match self {
            Stage::AwaitingCustomer => "reserved",
            Stage::ToDial => "invited",
            Stage::Dialing => "active",
        }
    }

    /// The stage of a voice callback in `ROUTING` or `PROCESSING`; `None` in other states.
    pub fn of(record: &ServiceRecord) -> Option<Self> {
        match record.state {
            CallbackState::Routing
                if options::waits_for_user_confirm(&record.options)
                    && record.confirmed_at.is_none() =>
            {
                Some(Stage::AwaitingCustomer)
            }
            CallbackState::Routing => Some(Stage::ToDial),
            CallbackState::Processing => Some(Stage::Dialing),
            _ => None,
        }
    }
}

/// How often and how soon a voice callback is dialed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedialPolicy {
    /// `_dial_retry_timeout`: seconds before the next attempt.
    pub retry_timeout_secs: u64,
    /// `_max_dial_attempts`: attempts in all, at least 1.
    pub max_attempts: u64,
}

impl From<&ServiceSettings> for RedialPolicy {
    fn from(settings: &ServiceSettings) -> Self {
        Self {
            retry_timeout_secs: settings.dial_retry_timeout_secs,
            max_attempts: settings.max_dial_attempts.max(1),
        }
    }
}

/// Why the agent's action on a voice callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoiceError {
    /// The service is not a voice callback (a chat, or another media).
    #[error("service `{id}` is not a voice callback (its media is {media}): record outcomes of voice callbacks only")]
    NotVoice {
        /// The service.
        id: String,
        /// Its media.
        media: String,
    },
    /// The callback is routed to another agent, or to none.
    #[error("callback `{id}` is not routed to agent `{agent}`: record outcomes of your own interactions")]
    NotYours {
        /// The service.
        id: String,
        /// The agent who asked.
        agent: String,
    },
    /// The customer has not confirmed yet.
    #[error("the customer of callback `{id}` has not confirmed yet: dial once they have")]
    AwaitingCustomer {
        /// The service.
        id: String,
    },
    /// An agent without auto answer recorded an outcome before taking the callback.
    #[error("accept callback `{id}` first (POST /genesys/1/agent/{agent}/interactions/{id}/accept), then dial")]
    NotAccepted {
        /// The service.
        id: String,
        /// The agent.
        agent: String,
    },
}

/// The number of dial attempts recorded so far (the `Dialed` events of its routing history,
/// which the record counts).
pub fn attempts(record: &ServiceRecord) -> u64 {
    u64::from(record.dial_attempts)
}

/// Checks that `record` is a voice callback routed to `agent` and returns its stage.
fn routed_to(record: &ServiceRecord, agent: &str) -> Result<Stage, VoiceError> {
    if !is_voice(record) {
        return Err(VoiceError::NotVoice {
            id: record.id.clone(),
            media: media_of(record),
        });
    }
    match Stage::of(record) {
        Some(stage) if record.reserved_agent.as_deref() == Some(agent) => Ok(stage),
        _ => Err(VoiceError::NotYours {
            id: record.id.clone(),
            agent: agent.to_string(),
        }),
    }
}

/// The agent takes a voice callback to dial it: PROCESSING. Returns false when it already
/// was (taking it twice changes nothing).
///
/// # Errors
/// Not a voice callback, not routed to `agent`, or the customer has not confirmed yet.
pub fn take(record: &mut ServiceRecord, agent: &str, now: Timestamp) -> Result<bool, VoiceError> {
    match routed_to(record, agent)? {
        Stage::Dialing => Ok(false),
        Stage::AwaitingCustomer => Err(VoiceError::AwaitingCustomer {
            id: record.id.clone(),
        }),
        Stage::ToDial => {
            record.confirmed_at = record.confirmed_at.or(Some(now));
            let number = record.customer_number.clone().unwrap_or_default();
            record.enter(
                CallbackState::Processing,
                None,
                now,
                format!("agent {agent} dialing {number}"),
            );
            Ok(true)
        }
    }
}

/// What recording an outcome did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The outcome.
    pub outcome: DialOutcome,
    /// Dial attempts so far, this one included.
    pub attempts: u64,
    /// When the customer is dialed again; `None` when the callback completed.
    pub redial_at: Option<Timestamp>,
    /// The state the callback was in (ROUTING for an agent with auto answer who did not
    /// accept first, else PROCESSING): the router must be told the agent is free either way.
    pub was: CallbackState,
    /// The `Dialed` event to append to the routing history, in the same unit of work as the
    /// change (the store notes it in the record's count of attempts).
    pub dialed: RoutingEvent,
}

/// Records how `agent`'s call to the customer went and moves the callback on (see the module
/// documentation). An agent with `auto_answer` may record it straight from the reservation.
///
/// # Errors
/// Not a voice callback, not routed to `agent`, the customer has not confirmed yet, or an
/// agent without auto answer has not accepted it.
pub fn record_outcome(
    record: &mut ServiceRecord,
    agent: &str,
    outcome: DialOutcome,
    policy: RedialPolicy,
    auto_answer: bool,
    now: Timestamp,
) -> Result<Recorded, VoiceError> {
    let was = record.state;
    match routed_to(record, agent)? {
        Stage::AwaitingCustomer => {
            return Err(VoiceError::AwaitingCustomer {
                id: record.id.clone(),
            })
        }
        Stage::ToDial if !auto_answer => {
            return Err(VoiceError::NotAccepted {
                id: record.id.clone(),
                agent: agent.to_string(),
            })
        }
        Stage::ToDial | Stage::Dialing => {}
    }
    let dialed = RoutingEvent {
        at: now,
        step: 0,
        kind: RoutingEventKind::Dialed {
            agent: agent.to_string(),
            outcome: outcome.as_str().to_string(),
        },
    };
    // This attempt is counted once the store appends `dialed`.
    let attempts = attempts(record) + 1;
    let of = format!("attempt {attempts} of {}", policy.max_attempts);
    let mut redial_at = None;
    match outcome {
        DialOutcome::Connected => record.enter(
            CallbackState::Completed,
            Some(CallbackReason::AgentConnected),
            now,
            format!("agent {agent} reached the customer ({of})"),
        ),
        DialOutcome::WrongNumber => record.enter(
            CallbackState::Completed,
            Some(CallbackReason::FailCallToCustomer),
            now,
            format!("agent {agent}: wrong number ({of})"),
        ),
        _ if outcome.redials() && attempts < policy.max_attempts => {
            let at = now.plus_secs(policy.retry_timeout_secs);
            redial(
                record,
                at,
                now,
                &format!("{outcome} ({of}); dial again at {at}"),
            );
            redial_at = Some(at);
        }
        _ => record.enter(
            CallbackState::Completed,
            Some(CallbackReason::FailCallToCustomer),
            now,
            format!("agent {agent}: {outcome} ({of}); no attempt left"),
        ),
    }
    Ok(Recorded {
        outcome,
        attempts,
        redial_at,
        was,
        dialed,
    })
}

/// Frees the agent and puts the callback back: SCHEDULED until `at` (its new desired time,
/// which moves its expiry as a reschedule does), or QUEUED at once when `at` is now. It keeps
/// the time it first entered its queue, so it comes back in its place by priority, and walks
/// its `_target` list afresh.
fn redial(record: &mut ServiceRecord, at: Timestamp, now: Timestamp, note: &str) {
    record.reserved_agent = None;
    record.confirmed_at = None;
    record.route = None;
    record.desired_time = at;
    record.expire_at = record
        .expire_at
        .max(at.plus_secs(options::ttl_secs(&record.options)));
    if at > now {
        record.enter(CallbackState::Scheduled, None, now, note);
    } else {
        record.queued_at = record.queued_at.or(Some(now));
        record.enter(CallbackState::Queued, None, now, note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);
    const POLICY: RedialPolicy = RedialPolicy {
        retry_timeout_secs: 60,
        max_attempts: 3,
    };

    /// A voice callback reserved for kristi, queued at 1 s, with `tried` attempts made.
    fn reserved(state: CallbackState, tried: usize) -> ServiceRecord {
        let mut record = ServiceRecord::new(
            "s1",
            "voice-cb",
            Preset::ChatDelayed,
            Timestamp::from_millis(0),
        );
        record.options.insert("_media_type".into(), "voice".into());
        record.options.insert("_ttl".into(), "600".into());
        record.customer_number = Some("5551234".into());
        record.state = state;
        record.queued_at = Some(Timestamp::from_millis(1_000));
        record.expire_at = Timestamp::from_millis(600_000);
        record.reserved_agent = Some("kristi".into());
        let dialed: Vec<RoutingEvent> = (0..tried)
            .map(|_| RoutingEvent {
                at: Timestamp::from_millis(5),
                step: 0,
                kind: RoutingEventKind::Dialed {
                    agent: "kristi".into(),
                    outcome: "busy".into(),
                },
            })
            .collect();
        record.note_routing(&dialed);
        record
    }

    #[test]
    fn each_outcome_moves_the_callback_on() {
        let redial = Some(NOW.plus_secs(60));
        let cases = [
            (
                DialOutcome::Connected,
                0,
                CallbackState::Completed,
                Some(CallbackReason::AgentConnected),
                None,
            ),
            (
                DialOutcome::WrongNumber,
                0,
                CallbackState::Completed,
                Some(CallbackReason::FailCallToCustomer),
                None,
            ),
            (
                DialOutcome::NoAnswer,
                0,
                CallbackState::Scheduled,
                None,
                redial,
            ),
            (DialOutcome::Busy, 1, CallbackState::Scheduled, None, redial),
            (
                DialOutcome::NoAnswer,
                2,
                CallbackState::Completed,
                Some(CallbackReason::FailCallToCustomer),
                None,
            ),
            (
                DialOutcome::Busy,
                2,
                CallbackState::Completed,
                Some(CallbackReason::FailCallToCustomer),
                None,
            ),
            (
                DialOutcome::Connected,
                2,
                CallbackState::Completed,
                Some(CallbackReason::AgentConnected),
                None,
            ),
        ];
        for (outcome, tried, state, reason, redial_at) in cases {
            let what = format!("{outcome} after {tried} attempts");
            let mut record = reserved(CallbackState::Processing, tried);
            let done = record_outcome(&mut record, "kristi", outcome, POLICY, false, NOW)
                .unwrap_or_else(|err| panic!("{what}: {err}"));
            assert_eq!(record.state, state, "{what}: state");
            assert_eq!(record.reason, reason, "{what}: reason");
            assert_eq!(done.redial_at, redial_at, "{what}: redial time");
            assert_eq!(done.attempts, tried as u64 + 1, "{what}: attempts");
            record.note_routing(std::slice::from_ref(&done.dialed));
            assert_eq!(attempts(&record), tried as u64 + 1, "{what}: history");
            assert_eq!(done.was, CallbackState::Processing, "{what}: was");
            let last = record.state_history.last().expect("a state change");
            assert!(
                last.note.contains(&format!("attempt {} of 3", tried + 1)),
                "{what}: {}",
                last.note
            );
        }
    }

    #[test]
    fn a_redial_frees_the_agent_keeps_the_queue_place_and_moves_desired_time_and_expiry() {
        let mut record = reserved(CallbackState::Processing, 0);
        let done = record_outcome(
            &mut record,
            "kristi",
            DialOutcome::NoAnswer,
            POLICY,
            false,
            NOW,
        )
        .unwrap();
        assert_eq!(record.reserved_agent, None);
        assert_eq!(record.confirmed_at, None);
        assert_eq!(record.desired_time, NOW.plus_secs(60));
        assert_eq!(record.expire_at, NOW.plus_secs(660), "desired time + _ttl");
        assert_eq!(
            record.queued_at,
            Some(Timestamp::from_millis(1_000)),
            "its place"
        );
        assert_eq!(
            done.dialed.kind,
            RoutingEventKind::Dialed {
                agent: "kristi".into(),
                outcome: "no_answer".into()
            }
        );
    }

    #[test]
    fn a_zero_retry_timeout_queues_the_callback_again_at_once() {
        let mut record = reserved(CallbackState::Processing, 0);
        let policy = RedialPolicy {
            retry_timeout_secs: 0,
            max_attempts: 2,
        };
        let done =
            record_outcome(&mut record, "kristi", DialOutcome::Busy, policy, false, NOW).unwrap();
        assert_eq!(record.state, CallbackState::Queued);
        assert_eq!(done.redial_at, Some(NOW));
        assert_eq!(record.queued_at, Some(Timestamp::from_millis(1_000)));
    }

    #[test]
    fn one_attempt_allowed_completes_on_the_first_no_answer() {
        let mut record = reserved(CallbackState::Processing, 0);
        let policy = RedialPolicy {
            retry_timeout_secs: 60,
            max_attempts: 1,
        };
        record_outcome(
            &mut record,
            "kristi",
            DialOutcome::NoAnswer,
            policy,
            false,
            NOW,
        )
        .unwrap();
        assert_eq!(record.reason, Some(CallbackReason::FailCallToCustomer));
    }

    #[test]
    fn outcomes_are_refused_unless_the_callback_is_the_agents_and_ready() {
        let chat = {
            let mut r = reserved(CallbackState::Processing, 0);
            r.chat_session_id = Some("chat1".into());
            r
        };
        let awaiting = {
            let mut r = reserved(CallbackState::Routing, 0);
            r.options
                .insert("_wait_for_user_confirm".into(), "true".into());
            r
        };
        let id = || "s1".to_string();
        let (kristi, marco) = ("kristi".to_string(), "marco".to_string());
        let not_voice = VoiceError::NotVoice {
            id: id(),
            media: "chat".into(),
        };
        let not_yours = VoiceError::NotYours {
            id: id(),
            agent: marco,
        };
        let awaiting_customer = VoiceError::AwaitingCustomer { id: id() };
        let not_accepted = VoiceError::NotAccepted {
            id: id(),
            agent: kristi,
        };
        let cases = [
            ("a chat", chat, "kristi", true, &not_voice),
            (
                "another agent's",
                reserved(CallbackState::Processing, 0),
                "marco",
                true,
                &not_yours,
            ),
            (
                "queued",
                reserved(CallbackState::Queued, 0),
                "kristi",
                true,
                &not_yours,
            ),
            (
                "completed",
                reserved(CallbackState::Completed, 0),
                "kristi",
                true,
                &not_yours,
            ),
            (
                "not confirmed",
                awaiting,
                "kristi",
                true,
                &awaiting_customer,
            ),
            (
                "not accepted",
                reserved(CallbackState::Routing, 0),
                "kristi",
                false,
                &not_accepted,
            ),
        ];
        for (what, mut record, agent, auto_answer, expected) in cases {
            let before = record.clone();
            let err = record_outcome(
                &mut record,
                agent,
                DialOutcome::Busy,
                POLICY,
                auto_answer,
                NOW,
            )
            .expect_err(what);
            assert_eq!(
                std::mem::discriminant(&err),
                std::mem::discriminant(expected),
                "{what}: {err:?}"
            );
            assert_eq!(record, before, "{what}: unchanged");
        }
    }

    #[test]
    fn an_agent_with_auto_answer_records_the_outcome_straight_from_the_reservation() {
        let mut record = reserved(CallbackState::Routing, 0);
        let done = record_outcome(
            &mut record,
            "kristi",
            DialOutcome::Connected,
            POLICY,
            true,
            NOW,
        )
        .unwrap();
        assert_eq!(done.was, CallbackState::Routing);
        assert_eq!(record.reason, Some(CallbackReason::AgentConnected));
    }

    #[test]
    fn taking_a_callback_makes_it_processing_once() {
        let mut record = reserved(CallbackState::Routing, 0);
        assert_eq!(take(&mut record, "kristi", NOW), Ok(true));
        assert_eq!(record.state, CallbackState::Processing);
        assert_eq!(record.confirmed_at, Some(NOW));
        assert_eq!(take(&mut record, "kristi", NOW), Ok(false), "taken twice");
        assert!(matches!(
            take(&mut record, "marco", NOW),
            Err(VoiceError::NotYours { .. })
        ));
    }

    #[test]
    fn outcomes_parse_by_name_and_name_the_field_otherwise() {
        for outcome in DialOutcome::ALL {
            assert_eq!(DialOutcome::parse(Some(outcome.as_str())), Ok(outcome));
        }
        assert_eq!(DialOutcome::parse(Some(" BUSY ")), Ok(DialOutcome::Busy));
        for bad in [None, Some(""), Some("hung_up")] {
            let err = DialOutcome::parse(bad).expect_err("refused");
            assert_eq!(err.field, "outcome", "{bad:?}");
            assert!(
                err.message.contains("no_answer"),
                "{bad:?}: {}",
                err.message
            );
        }
    }

    #[test]
    fn the_media_is_chat_for_a_chat_and_the_media_type_otherwise() {
        let mut record = reserved(CallbackState::Routing, 0);
        assert_eq!(media_of(&record), "voice");
        assert!(is_voice(&record));
        record
            .options
            .insert("_media_type".into(), " Voice ".into());
        assert!(is_voice(&record));
        record.chat_session_id = Some("c".into());
        assert_eq!(media_of(&record), "chat");
        record.options.remove("_media_type");
        record.chat_session_id = None;
        assert_eq!(media_of(&record), "chat");
    }
}
