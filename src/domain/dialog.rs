//! The dialogs a customer's app is answered with (GMS's `_action` values `StartChat`,
//! `ConfirmationDialog`, `DialNumber`, `DisplayMenu`): which one a create, the follow-up of
//! the "agent available" push and a menu choice show next, for each kind of service. Pure:
//! the HTTP layer writes a [`Dialog`] as JSON, with the URLs of the request's host.
//!
//! A service is one of three [`Scenario`]s: a chat, a voice callback the agent places
//! (`_call_direction=USERTERMINATED`, the default for voice), or a voice callback the
//! customer places to an access number (`USERORIGINATED`). callbackd has no telephony: a
//! user-terminated call is dialed by the agent from the desktop, a user-originated one reaches
//! callbackd through the inbound-call API, matched by its access code or caller number.

pub use super::options::Scenario;

/// seed 000's `_text` for a service that waits for an agent.
pub const WAIT_TEXT: &str = "We will notify you when agent is available";

/// What a user-terminated callback tells the customer once an agent will call.
pub const CALL_SHORTLY_TEXT: &str = "You will receive the call shortly";

/// What a scheduled user-terminated callback tells the customer at creation.
pub const SCHEDULED_TEXT: &str = "You will receive the call at the time you chose";

/// What a declined callback tells the customer.
pub const DECLINED_TEXT: &str = "Your callback request was cancelled";

/// The `_action` of the "agent available" push for a service without an access code, and of
/// the GET that follows it ([`crate::domain::notification::agent_available`]).
pub const USER_CONFIRMATION: &str = "get-dialog-user-confirmation-provide_code-false";

/// The same for a user-originated service with `_provide_code=true`.
pub const USER_CONFIRMATION_WITH_CODE: &str = "get-dialog-user-confirmation-provide_code-true";

/// The option under which a user-originated callback keeps the access code it was given (in
/// its options snapshot: GMS returns it as `_access_code`, and the stored record needs no new
/// field).
pub const ACCESS_CODE: &str = "_access_code";

/// The `_action` of the push that tells the customer an agent is available.
pub fn user_confirmation_action(provide_code: bool) -> &'static str {
    if provide_code {
        USER_CONFIRMATION_WITH_CODE
    } else {
        USER_CONFIRMATION
    }
}

/// A menu choice: the last segment of its `_user_action_url`
/// (`/genesys/1/service/{id}/{choice}`), answered with the next dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The customer takes the agent now.
    Accept,
    /// The customer does not want the call any more: the callback is cancelled.
    Decline,
}

impl Choice {
    /// Every choice.
    pub const ALL: [Choice; 2] = [Choice::Accept, Choice::Decline];

    /// The URL segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Accept => "dialog-user-confirmation-accept",
            Choice::Decline => "dialog-user-confirmation-decline",
        }
    }

    /// The choice named by a URL segment.
    pub fn parse(segment: &str) -> Option<Choice> {
        Self::ALL.into_iter().find(|c| c.as_str() == segment)
    }

    /// What the menu shows for it.
    pub fn label(self) -> &'static str {
        match self {
            Choice::Accept => "Yes, connect me now",
            Choice::Decline => "No, cancel my request",
        }
    }
}

/// A dialog, as the customer's app is to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// `StartChat`: open the chat (seeds 000 and 001).
    StartChat,
    /// `ConfirmationDialog`: a message the customer acknowledges.
    Confirmation(&'static str),
    /// `DialNumber`: call the access number (with the access code, if any).
    DialNumber {
        /// The number to call.
        number: String,
        /// The code to key in once connected, when the service gives one.
        code: Option<String>,
    },
    /// `DisplayMenu`: the customer chooses one of `choices`.
    Menu {
        /// The menu's title.
        label: &'static str,
        /// The title of its one group.
        group: &'static str,
        /// The choices, in order.
        choices: Vec<Choice>,
    },
}

impl Dialog {
    /// GMS's `_action`.
    pub fn action(&self) -> &'static str {
        match self {
            Dialog::StartChat => "StartChat",
            Dialog::Confirmation(_) => "ConfirmationDialog",
            Dialog::DialNumber { .. } => "DialNumber",
            Dialog::Menu { .. } => "DisplayMenu",
        }
    }
}

/// The `tel:` URL of a `DialNumber` dialog: the number, then, after a two-comma pause (two
/// seconds on Android and iOS dialers), the code as tones.
pub fn tel_url(number: &str, code: Option<&str>) -> String {
    let number: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    match code {
        Some(code) => format!("tel:{number},,{code}"),
        None => format!("tel:{number}"),
    }
}

/// The dialog a create answers. `waits` is `_wait_for_agent`, `scheduled` a desired time
/// still ahead, `access` the number and code a user-originated callback is reached at.
pub fn on_create(
    scenario: Scenario,
    waits: bool,
    scheduled: bool,
    access: Option<(String, Option<String>)>,
) -> Dialog {
    match scenario {
        Scenario::UserTerminated if scheduled => Dialog::Confirmation(SCHEDULED_TEXT),
        _ if waits => Dialog::Confirmation(WAIT_TEXT),
        Scenario::Chat => Dialog::StartChat,
        Scenario::UserTerminated => Dialog::Confirmation(CALL_SHORTLY_TEXT),
        Scenario::UserOriginated => dial(access),
    }
}

/// The dialog the follow-up of the "agent available" push answers: a chat starts; a voice
/// callback asks whether the customer takes the agent now.
pub fn on_agent_available(scenario: Scenario) -> Dialog {
    match scenario {
        Scenario::Chat => Dialog::StartChat,
        Scenario::UserTerminated | Scenario::UserOriginated => Dialog::Menu {
            label: "An agent is available",
            group: "Would you like to talk to the agent now?",
            choices: Choice::ALL.to_vec(),
        },
    }
}

/// The dialog a menu choice answers (the choice itself is carried out by the caller).
pub fn on_choice(
    scenario: Scenario,
    choice: Choice,
    access: Option<(String, Option<String>)>,
) -> Dialog {
    match (choice, scenario) {
        (Choice::Decline, _) => Dialog::Confirmation(DECLINED_TEXT),
        (Choice::Accept, Scenario::Chat) => Dialog::StartChat,
        (Choice::Accept, Scenario::UserTerminated) => Dialog::Confirmation(CALL_SHORTLY_TEXT),
        (Choice::Accept, Scenario::UserOriginated) => dial(access),
    }
}

fn dial(access: Option<(String, Option<String>)>) -> Dialog {
    let (number, code) = access.unwrap_or_default();
    Dialog::DialNumber { number, code }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_scenario_follows_media_and_call_direction() {
        let cases: &[(&[(&str, &str)], Scenario)] = &[
            (&[("_media_type", "chat")], Scenario::Chat),
            (
                &[
                    ("_media_type", "chat"),
                    ("_call_direction", "USERORIGINATED"),
                ],
                Scenario::Chat,
            ),
            (&[("_media_type", "voice")], Scenario::UserTerminated),
            (
                &[
                    ("_media_type", "voice"),
                    ("_call_direction", "USERTERMINATED"),
                ],
                Scenario::UserTerminated,
            ),
            (
                &[
                    ("_media_type", "voice"),
                    ("_call_direction", "USERORIGINATED"),
                ],
                Scenario::UserOriginated,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(Scenario::of(&options(pairs)), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn each_scenario_answers_its_create_dialog() {
        let access = Some(("+1 800 555-0100".to_string(), Some("4711".to_string())));
        let cases = [
            (Scenario::Chat, false, false, "StartChat"),
            (Scenario::Chat, true, false, "ConfirmationDialog"),
            (Scenario::UserTerminated, false, false, "ConfirmationDialog"),
            (Scenario::UserTerminated, true, false, "ConfirmationDialog"),
            (Scenario::UserTerminated, true, true, "ConfirmationDialog"),
            (Scenario::UserOriginated, false, false, "DialNumber"),
            (Scenario::UserOriginated, true, false, "ConfirmationDialog"),
        ];
        for (scenario, waits, scheduled, action) in cases {
            let dialog = on_create(scenario, waits, scheduled, access.clone());
            assert_eq!(dialog.action(), action, "{scenario:?} waits={waits}");
        }
        assert_eq!(
            on_create(Scenario::Chat, true, false, None),
            Dialog::Confirmation(WAIT_TEXT),
            "seed 000's text"
        );
        assert_eq!(
            on_create(Scenario::UserTerminated, true, true, None),
            Dialog::Confirmation(SCHEDULED_TEXT),
            "a scheduled call says when, not that it waits"
        );
    }

    #[test]
    fn voice_asks_before_connecting_and_a_choice_moves_on() {
        assert_eq!(
            on_agent_available(Scenario::Chat),
            Dialog::StartChat,
            "a chat starts"
        );
        for scenario in [Scenario::UserTerminated, Scenario::UserOriginated] {
            assert_eq!(on_agent_available(scenario).action(), "DisplayMenu");
            assert_eq!(
                on_choice(scenario, Choice::Decline, None),
                Dialog::Confirmation(DECLINED_TEXT)
            );
        }
        assert_eq!(
            on_choice(Scenario::UserOriginated, Choice::Accept, None).action(),
            "DialNumber"
        );
        assert_eq!(
            on_choice(Scenario::UserTerminated, Choice::Accept, None),
            Dialog::Confirmation(CALL_SHORTLY_TEXT)
        );
        for choice in Choice::ALL {
            assert_eq!(Choice::parse(choice.as_str()), Some(choice));
        }
        assert_eq!(Choice::parse("storage"), None);
    }

    #[test]
    fn tel_urls_keep_digits_and_pause_before_the_code() {
        assert_eq!(tel_url("+1 800 555-0100", None), "tel:+18005550100");
        assert_eq!(
            tel_url("+1 800 555-0100", Some("4711")),
            "tel:+18005550100,,4711"
        );
    }

    #[test]
    fn only_user_terminated_voice_queues_without_waiting() {
        assert!(Scenario::UserTerminated.queues_at_start(false));
        assert!(!Scenario::Chat.queues_at_start(false));
        assert!(!Scenario::UserOriginated.queues_at_start(false));
        assert!(Scenario::UserOriginated.queues_at_start(true));
    }
}
