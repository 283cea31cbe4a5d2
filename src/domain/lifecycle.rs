//! Every transition of a service between GMS `_callback_state`s (DESIGN.md §4), as methods
//! of [`ServiceRecord`].
//!
//! Each method checks that the record is in a state that allows the transition, changes the
//! record, and returns the [`Effect`]s the change implies: what the customer is told, what
//! happens to the chat, what the router must watch. It performs no I/O: the router task and
//! the app layer call a method inside a store update and carry out the effects once that
//! update is durable. A transition that does not apply is [`Refused`] and changes nothing,
//! which is how a request and the router racing on one service settle who came first.
//!
//! Cancel and reschedule, which a customer or an administrator asks for and which answer with
//! a message, live in [`super::service`] and return a [`super::service::LifecycleError`].

use super::dialog;
use super::notification;
use super::options::{self, Preset, Scenario, ServiceSettings};
use super::service::{CallbackReason, CallbackState, RouteProgress, ServiceRecord};
use super::time::Timestamp;

/// What a transition implies beyond the record itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell the customer: stored with the change, pushed once it is durable.
    Notify {
        /// The push tag.
        tag: String,
        /// The message.
        message: serde_json::Value,
    },
    /// Close the service's chat, with this last message to the customer.
    CloseChat {
        /// Shown to the customer.
        message: String,
    },
    /// The reservation is released unless the customer confirms it by then.
    AwaitConfirmation {
        /// The deadline.
        deadline: Timestamp,
    },
    /// The waiting chat starts with its reserved agent: the router counts the interaction,
    /// and the chat server lets the agent in.
    StartChat {
        /// The agent.
        agent: String,
    },
}

/// A transition that the record's current state does not allow; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The state the record was in.
    pub state: CallbackState,
}

/// Message shown to the customer when a chat's queue times out.
pub const NO_AGENT_MESSAGE: &str = "No agent is available right now. Please try again later.";

impl ServiceRecord {
    /// Records the creation of the service in `initial` state (SCHEDULED for a desired time
    /// in the future, else QUEUED).
    pub fn mark_created(&mut self, initial: CallbackState, now: Timestamp) {
        self.enter(initial, None, now, "created");
    }

    /// SCHEDULED -> QUEUED once the desired time has come. A service that waits for an agent
    /// enters its queue now, or keeps the place it had (a voice callback dialed again); it
    /// walks its `_target` list afresh, stored with the start of that walk
    /// ([`RouteProgress::start`], as a create is), so that the router's first step appends
    /// routing history without writing the record again.
    ///
    /// # Errors
    /// Not SCHEDULED, or its desired time is still ahead.
    pub fn start_queueing(&mut self, now: Timestamp) -> Result<(), Refused> {
        if self.state != CallbackState::Scheduled || self.desired_time > now {
            return Err(self.refused());
        }
        if options::queues_at_start(&self.options) {
            self.queued_at = self.queued_at.or(Some(now));
        }
        self.route = self.queued_at.map(|_| RouteProgress::start(now));
        self.enter(CallbackState::Queued, None, now, "desired time reached");
        Ok(())
    }

    /// A user-originated voice callback's call arrived: it enters its virtual queue (still
    /// QUEUED), as an immediate chat does when its chat starts.
    ///
    /// # Errors
    /// Not QUEUED, or already in its queue.
    pub fn queue_call(&mut self, now: Timestamp) -> Result<(), Refused> {
        if self.state != CallbackState::Queued || self.queued_at.is_some() {
            return Err(self.refused());
        }
        self.queued_at = Some(now);
        self.route = None;
        self.enter(
            CallbackState::Queued,
            None,
            now,
            "the customer's call arrived; queued",
        );
        Ok(())
    }

    /// QUEUED -> ROUTING: the router found `agent`. A chat that already waits starts with the
    /// agent at once (PROCESSING); a Request-Chat-Poll service is told its agent is available;
    /// a service that waits for the customer's confirmation is told so, with a deadline.
    ///
    /// # Errors
    /// Not QUEUED (a cancel or an expiry got there first).
    pub fn reserve(
        &mut self,
        agent: &str,
        settings: &ServiceSettings,
        now: Timestamp,
    ) -> Result<Vec<Effect>, Refused> {
        if self.state != CallbackState::Queued {
            return Err(self.refused());
        }
        self.reserved_agent = Some(agent.to_string());
        self.confirmed_at = None;
        self.enter(
            CallbackState::Routing,
            None,
            now,
            format!("agent {agent} reserved"),
        );
        if self.chat_session_id.is_some() {
            self.confirmed_at = Some(now);
            self.enter(
                CallbackState::Processing,
                None,
                now,
                format!("chat routed to agent {agent}"),
            );
            return Ok(vec![Effect::StartChat {
                agent: agent.to_string(),
            }]);
        }
        let mut effects = Vec::new();
        if self.preset == Preset::RequestChatPoll {
            effects.push(notify(notification::poll_status(&self.id, true)));
        }
        if settings.wait_for_user_confirm {
            let with_code = settings.provide_code && settings.scenario == Scenario::UserOriginated;
            effects.push(notify(notification::agent_available(
                &self.id,
                dialog::user_confirmation_action(with_code),
            )));
            if let Some(deadline) = self.confirmation_deadline(settings) {
                effects.push(Effect::AwaitConfirmation { deadline });
            }
        }
        Ok(effects)
    }

    /// ROUTING -> QUEUED: the reservation of `agent` ends (the agent logged out, or went
    /// away while the service was stopped: `agent` is then `None`, any holder). The service
    /// keeps its place; a Request-Chat-Poll customer is told to wait again.
    ///
    /// # Errors
    /// Not ROUTING, or reserved for another agent.
    pub fn requeue(
        &mut self,
        agent: Option<&str>,
        now: Timestamp,
        note: impl Into<String>,
    ) -> Result<Vec<Effect>, Refused> {
        let holder_matches = agent.is_none_or(|a| self.reserved_agent.as_deref() == Some(a));
        if self.state != CallbackState::Routing || !holder_matches {
            return Err(self.refused());
        }
        self.reserved_agent = None;
        self.confirmed_at = None;
        self.enter(CallbackState::Queued, None, now, note);
        let mut effects = Vec::new();
        if self.preset == Preset::RequestChatPoll {
            effects.push(notify(notification::poll_status(&self.id, false)));
        }
        Ok(effects)
    }

    /// QUEUED -> COMPLETED with `FAIL_TIMEOUT_TTL`: no agent within `_urs_queued_ttl`. Its
    /// chat, if any, closes with a last message, and the customer is told.
    ///
    /// # Errors
    /// Not QUEUED.
    pub fn time_out(&mut self, now: Timestamp) -> Result<Vec<Effect>, Refused> {
        if self.state != CallbackState::Queued {
            return Err(self.refused());
        }
        self.enter(
            CallbackState::Completed,
            Some(CallbackReason::FailTimeoutTtl),
            now,
            "no agent within _urs_queued_ttl",
        );
        let mut effects = Vec::new();
        if self.chat_session_id.is_some() {
            effects.push(Effect::CloseChat {
                message: NO_AGENT_MESSAGE.to_string(),
            });
        }
        effects.push(notify(notification::queue_timeout(&self.id)));
        Ok(effects)
    }

    /// The customer confirms the reserved agent (`connect`): recorded once, the first time.
    /// Changes nothing in any other state, and is never refused (a `connect` may be retried).
    pub fn confirm(&mut self, now: Timestamp) {
        if self.state == CallbackState::Routing && self.confirmed_at.is_none() {
            self.confirmed_at = Some(now);
        }
    }

    /// ROUTING -> COMPLETED with `FAIL_USER_NO_CONFIRM`: the customer did not confirm the
    /// reservation by `deadline`.
    ///
    /// # Errors
    /// Not ROUTING, already confirmed, or `deadline` is not this reservation's (it was
    /// released and made again since).
    pub fn fail_unconfirmed(
        &mut self,
        deadline: Timestamp,
        settings: &ServiceSettings,
        now: Timestamp,
    ) -> Result<(), Refused> {
        if self.state != CallbackState::Routing
            || self.confirmation_deadline(settings) != Some(deadline)
        {
            return Err(self.refused());
        }
        self.reserved_agent = None;
        self.enter(
            CallbackState::Completed,
            Some(CallbackReason::FailUserNoConfirm),
            now,
            "the customer did not confirm the agent in time",
        );
        Ok(())
    }

    /// The customer's chat session `session_id` starts (`ixn/chat`). With the reserved agent
    /// it is PROCESSING at once; a chat that does not wait for an agent before it starts
    /// (`waits` false) enters its queue now. Returns whether the chat went to the reserved
    /// agent.
    ///
    /// # Errors
    /// Already has a chat, is COMPLETED, or waits for an agent that is not reserved yet.
    pub fn start_chat(
        &mut self,
        session_id: &str,
        waits: bool,
        now: Timestamp,
    ) -> Result<bool, Refused> {
        if self.chat_session_id.is_some() || !self.is_active() {
            return Err(self.refused());
        }
        let with_agent = match self.state {
            CallbackState::Routing if self.reserved_agent.is_some() => true,
            CallbackState::Queued | CallbackState::Scheduled if !waits => false,
            _ => return Err(self.refused()),
        };
        self.chat_session_id = Some(session_id.to_string());
        if with_agent {
            self.confirmed_at = self.confirmed_at.or(Some(now));
            self.enter(
                CallbackState::Processing,
                None,
                now,
                "chat started with the reserved agent",
            );
        } else {
            self.queued_at = Some(now);
            self.route = None;
            self.enter(CallbackState::Queued, None, now, "chat started; queued");
        }
        Ok(with_agent)
    }

    /// Any active state -> COMPLETED with `reason`: the chat ended. Returns the state it was
    /// in (PROCESSING means an agent's capacity is freed; otherwise it leaves its queue).
    ///
    /// # Errors
    /// Already COMPLETED.
    pub fn complete(
        &mut self,
        reason: CallbackReason,
        now: Timestamp,
        note: impl Into<String>,
    ) -> Result<CallbackState, Refused> {
        if !self.is_active() {
            return Err(self.refused());
        }
        let was = self.state;
        self.enter(CallbackState::Completed, Some(reason), now, note);
        Ok(was)
    }

    /// When the current unconfirmed reservation is released, for a service that asks the
    /// customer to confirm; `None` otherwise.
    pub fn confirmation_deadline(&self, settings: &ServiceSettings) -> Option<Timestamp> {
        (settings.wait_for_user_confirm
            && self.state == CallbackState::Routing
            && self.confirmed_at.is_none())
        .then(|| {
            self.reserved_at()
                .unwrap_or(self.created_at)
                .plus_secs(settings.user_confirm_timeout_secs)
        })
    }

    fn refused(&self) -> Refused {
        Refused { state: self.state }
    }
}

fn notify((tag, message): (String, serde_json::Value)) -> Effect {
    Effect::Notify { tag, message }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::service::CallbackState::{
        Completed, Processing, Queued, Routing, Scheduled,
    };

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    fn record(preset: Preset, state: CallbackState) -> ServiceRecord {
        let mut record = ServiceRecord::new("s1", "svc", preset, Timestamp::from_millis(0));
        record.options = preset
            .defaults()
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<BTreeMap<_, _>>();
        record
            .options
            .insert("_target".into(), "Support@StatServer.GA".into());
        record.state = state;
        record.expire_at = Timestamp::from_millis(86_400_000);
        if state == Routing {
            record.reserved_agent = Some("kristi".into());
            record.enter(Routing, None, Timestamp::from_millis(500_000), "reserved");
        }
        record
    }

    fn settings(record: &ServiceRecord) -> ServiceSettings {
        ServiceSettings::from_options(&record.options, &["StatServer".to_string()])
            .expect("preset options validate")
    }

    /// Which states each transition starts from; every other state must be refused and leave
    /// the record unchanged.
    #[test]
    fn each_transition_applies_from_its_states_only() {
        type Apply = fn(&mut ServiceRecord) -> bool;
        let cases: [(&str, &[CallbackState], Apply); 6] = [
            ("start_queueing", &[Scheduled], |r| {
                r.start_queueing(NOW).is_ok()
            }),
            ("reserve", &[Queued], |r| {
                let s = settings(r);
                r.reserve("marco", &s, NOW).is_ok()
            }),
            ("requeue", &[Routing], |r| {
                r.requeue(Some("kristi"), NOW, "left").is_ok()
            }),
            ("time_out", &[Queued], |r| r.time_out(NOW).is_ok()),
            ("complete", &[Scheduled, Queued, Routing, Processing], |r| {
                r.complete(CallbackReason::AgentConnected, NOW, "ended")
                    .is_ok()
            }),
            ("start_chat", &[Routing], |r| {
                r.start_chat("chat-1", true, NOW).is_ok()
            }),
        ];
        for (name, allowed, apply) in cases {
            for state in CallbackState::ALL {
                let mut rec = record(Preset::ChatDelayed, state);
                let before = rec.clone();
                let applied = apply(&mut rec);
                assert_eq!(applied, allowed.contains(&state), "{name} from {state}");
                if applied {
                    assert_eq!(
                        rec.state_history.len(),
                        before.state_history.len() + 1,
                        "{name} from {state} records one history entry"
                    );
                } else {
                    assert_eq!(rec, before, "a refused {name} from {state} changes nothing");
                }
            }
        }
    }

    #[test]
    fn reserving_tells_the_customer_what_the_preset_promises() {
        let cases = [
            // (preset, has a chat waiting, state after, notification tags, awaits confirmation)
            (
                Preset::ChatDelayed,
                false,
                Routing,
                vec!["service.agentavailable.s1"],
                true,
            ),
            (
                Preset::RequestChatPoll,
                false,
                Routing,
                vec!["a2c.advanced.service.agentavailable.s1"],
                false,
            ),
            (Preset::ChatImmediate, true, Processing, vec![], false),
        ];
        for (preset, chatting, after, tags, confirms) in cases {
            let mut rec = record(preset, Queued);
            if chatting {
                rec.chat_session_id = Some("chat-1".into());
            }
            let s = settings(&rec);
            let effects = rec.reserve("kristi", &s, NOW).unwrap();
            assert_eq!(rec.state, after, "{preset:?}");
            assert_eq!(rec.reserved_agent.as_deref(), Some("kristi"));
            let notified: Vec<&str> = effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Notify { tag, .. } => Some(tag.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(notified, tags, "{preset:?}");
            let deadline = effects.iter().find_map(|e| match e {
                Effect::AwaitConfirmation { deadline } => Some(*deadline),
                _ => None,
            });
            assert_eq!(
                deadline,
                confirms.then(|| NOW.plus_secs(s.user_confirm_timeout_secs)),
                "{preset:?}"
            );
            assert_eq!(
                effects.contains(&Effect::StartChat {
                    agent: "kristi".into()
                }),
                chatting,
                "{preset:?}"
            );
        }
    }

    #[test]
    fn requeue_only_releases_the_named_holder() {
        let mut rec = record(Preset::RequestChatPoll, Routing);
        assert!(rec.requeue(Some("marco"), NOW, "left").is_err());
        let effects = rec.requeue(Some("kristi"), NOW, "left").unwrap();
        assert_eq!(rec.state, Queued);
        assert_eq!(rec.reserved_agent, None);
        assert!(matches!(&effects[..], [Effect::Notify { tag, .. }]
            if tag == "a2c.advanced.service.statuschanged.s1"));

        let mut any = record(Preset::ChatDelayed, Routing);
        assert_eq!(any.requeue(None, NOW, "gone while stopped"), Ok(vec![]));
        assert_eq!(any.state, Queued);
    }

    #[test]
    fn a_timed_out_chat_is_closed_and_the_customer_told() {
        let mut rec = record(Preset::ChatImmediate, Queued);
        rec.chat_session_id = Some("chat-1".into());
        let effects = rec.time_out(NOW).unwrap();
        assert_eq!(rec.state, Completed);
        assert_eq!(rec.reason, Some(CallbackReason::FailTimeoutTtl));
        assert_eq!(
            effects[0],
            Effect::CloseChat {
                message: NO_AGENT_MESSAGE.into()
            }
        );
        assert!(
            matches!(&effects[1], Effect::Notify { tag, .. } if tag == "service.queuetimeout.s1")
        );
    }

    #[test]
    fn an_unconfirmed_reservation_fails_at_its_own_deadline_only() {
        let mut rec = record(Preset::ChatDelayed, Queued);
        let s = settings(&rec);
        rec.reserve("kristi", &s, NOW).unwrap();
        let deadline = rec
            .confirmation_deadline(&s)
            .expect("waits for confirmation");
        assert_eq!(deadline, NOW.plus_secs(s.user_confirm_timeout_secs));
        let later = deadline.plus_secs(1);
        assert!(
            rec.fail_unconfirmed(NOW, &s, later).is_err(),
            "an older deadline"
        );

        let mut confirmed = rec.clone();
        confirmed.confirm(NOW.plus_secs(1));
        assert!(confirmed.fail_unconfirmed(deadline, &s, later).is_err());
        assert_eq!(confirmed.state, Routing);

        rec.fail_unconfirmed(deadline, &s, later).unwrap();
        assert_eq!(rec.state, Completed);
        assert_eq!(rec.reason, Some(CallbackReason::FailUserNoConfirm));
        assert_eq!(rec.reserved_agent, None);
    }

    #[test]
    fn confirm_is_recorded_once() {
        let mut rec = record(Preset::ChatDelayed, Routing);
        rec.confirm(NOW);
        rec.confirm(NOW.plus_secs(5));
        assert_eq!(rec.confirmed_at, Some(NOW));
        let mut queued = record(Preset::ChatDelayed, Queued);
        queued.confirm(NOW);
        assert_eq!(queued.confirmed_at, None);
    }

    #[test]
    fn a_chat_starts_with_its_agent_or_enters_the_queue() {
        let mut reserved = record(Preset::ChatDelayed, Routing);
        assert_eq!(reserved.start_chat("c1", true, NOW), Ok(true));
        assert_eq!(reserved.state, Processing);
        assert_eq!(reserved.chat_session_id.as_deref(), Some("c1"));
        assert!(
            reserved.start_chat("c2", true, NOW).is_err(),
            "a second chat is refused"
        );

        let mut immediate = record(Preset::ChatImmediate, Scheduled);
        assert_eq!(immediate.start_chat("c1", false, NOW), Ok(false));
        assert_eq!(immediate.state, Queued);
        assert_eq!(immediate.queued_at, Some(NOW));

        let mut waiting = record(Preset::ChatDelayed, Queued);
        assert!(waiting.start_chat("c1", true, NOW).is_err(), "no agent yet");
        assert_eq!(waiting.chat_session_id, None);
    }

    #[test]
    fn the_desired_time_must_have_come_to_queue() {
        let mut rec = record(Preset::ChatDelayed, Scheduled);
        rec.desired_time = NOW.plus_secs(60);
        assert!(rec.start_queueing(NOW).is_err());
        rec.start_queueing(NOW.plus_secs(60)).unwrap();
        assert_eq!(rec.state, Queued);
        assert_eq!(rec.queued_at, Some(NOW.plus_secs(60)));
        assert_eq!(
            rec.route,
            Some(RouteProgress::start(NOW.plus_secs(60))),
            "stored with the start of a fresh walk"
        );
    }

    #[test]
    fn completing_reports_what_it_was() {
        let mut rec = record(Preset::ChatDelayed, Processing);
        let was = rec.complete(CallbackReason::AgentConnected, NOW, "chat ended");
        assert_eq!(was, Ok(Processing));
        assert_eq!(rec.reason, Some(CallbackReason::AgentConnected));
    }
}
