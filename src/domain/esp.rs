//! ESP requests to a chat session ("External Service Protocol", Chat Server's `Chat`
//! service), parsed and validated.
//!
//! A workflow calls a method by name (`Message`, `Notice`, ...) with string parameters
//! (Chat Server Administration Guide, "How to send ESP requests to Chat Session from
//! Workflow"). This module turns the method name and the parameters into an [`EspRequest`].
//! It does not find the session or act on it.
//!
//! Rules taken from the guide:
//! - every value is a string; for booleans only `true` is true, anything else is false
//!   (except `async-idle-reset`, which is on for the value `1`);
//! - `InteractionId` is an optional explicit override of the interaction the request is for
//!   (normally taken from the user data sent along);
//! - parameters this module does not know are ignored, as Chat Server ignores them: the user
//!   data travels with every request in the same parameter list.
//!
//! Parameter and method names are matched exactly (case matters). An empty or blank optional
//! value counts as absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::idle::IdleChanges;
use super::kv::{self, KvList};
use super::options::FieldError;

/// The methods [`parse`] understands, in the order of the Chat Server guide.
pub const METHODS: [&str; 7] = [
    "Message",
    "Notice",
    "PlaceOnHold",
    "CloseSession",
    "GetSessionInfo",
    "IdleControlConfigure",
    "ConfigureSession",
];

/// Who may see a message or notice (`Visibility`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Visibility {
    /// `ALL`: every participant (the default).
    #[default]
    All,
    /// `INT`: agents and supervisors only.
    Int,
    /// `VIP`: supervisors only.
    Vip,
}

impl Visibility {
    /// The wire value: `ALL`, `INT` or `VIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "ALL",
            Visibility::Int => "INT",
            Visibility::Vip => "VIP",
        }
    }

    /// Whether the customer sees it: only with `ALL`.
    pub fn visible_to_customer(self) -> bool {
        matches!(self, Visibility::All)
    }

    /// Reads the `Visibility` parameter; absent or blank means `ALL`.
    fn parse(value: Option<&str>) -> Result<Self, FieldError> {
        match value.map(str::trim) {
            None => Ok(Visibility::All),
            Some("ALL") => Ok(Visibility::All),
            Some("INT") => Ok(Visibility::Int),
            Some("VIP") => Ok(Visibility::Vip),
            Some(other) => Err(FieldError::new(
                "Visibility",
                format!(
                    "unknown visibility `{other}`: use ALL (everyone, the default), \
                     INT (agents and supervisors) or VIP (supervisors only)"
                ),
            )),
        }
    }
}

/// The kind of notice (`NoticeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoticeType {
    /// `USER_PUSHED_URL`: push a web page to the participants; the text is its URL.
    #[serde(rename = "USER_PUSHED_URL")]
    PushedUrl,
    /// `USER_CUSTOM`: any custom purpose, transparent for the chat server.
    #[serde(rename = "USER_CUSTOM")]
    Custom,
}

impl NoticeType {
    /// The wire value: `USER_PUSHED_URL` or `USER_CUSTOM`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeType::PushedUrl => "USER_PUSHED_URL",
            NoticeType::Custom => "USER_CUSTOM",
        }
    }
}

/// The language asked for by `ConfigureSession`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Language {
    /// `GCTI_LanguageCode`: the name of the language business attribute.
    Code(String),
    /// `GCTI_LanguageName`: a language name, used only without a code.
    Name(String),
}

/// Parameters shared by `Message` and `Notice`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EspCommon {
    /// `InteractionId`: the interaction to act on, overriding the one from the user data.
    pub interaction_id: Option<String>,
    /// `Nickname`: the participant name the text is shown under.
    pub nickname: Option<String>,
    /// `Visibility`: who sees it.
    pub visibility: Visibility,
    /// `EventAttributes`: a key-value collection attached to the event (e.g. rich content).
    pub event_attributes: Option<KvList>,
}

/// One validated ESP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EspRequest {
    /// `Message`: post a text message.
    Message {
        /// `MessageText`, as written (never blank).
        text: String,
        /// `MessageType`: an arbitrary type, transparent for the chat server.
        message_type: Option<String>,
        /// Interaction, nickname, visibility, attributes.
        common: EspCommon,
    },
    /// `Notice`: post a notice.
    Notice {
        /// `NoticeType`.
        notice_type: NoticeType,
        /// `NoticeText`; with [`NoticeType::PushedUrl`] always a valid http(s) URL.
        text: Option<String>,
        /// Interaction, nickname, visibility, attributes.
        common: EspCommon,
    },
    /// `PlaceOnHold`: put an async chat on hold (`GCTI_Chat_AsyncStatus` -2).
    PlaceOnHold {
        /// `InteractionId`.
        interaction_id: Option<String>,
    },
    /// `CloseSession`: close the session.
    CloseSession {
        /// `InteractionId`.
        interaction_id: Option<String>,
        /// `CloSelfNoAgents=true`: close only when no agent is in the session.
        close_if_no_agents: bool,
        /// `Purge=true`: drop the session without any closing actions.
        purge: bool,
    },
    /// `GetSessionInfo`: report when the session was created and whether it was restored.
    GetSessionInfo {
        /// `InteractionId`.
        interaction_id: Option<String>,
    },
    /// `IdleControlConfigure`: change the session's inactivity control.
    IdleControlConfigure {
        /// `InteractionId`.
        interaction_id: Option<String>,
        /// The settings to change (at least one parameter was given).
        changes: IdleChanges,
    },
    /// `ConfigureSession`: reset async idle timeouts and/or change the language.
    ConfigureSession {
        /// `InteractionId`.
        interaction_id: Option<String>,
        /// `async-idle-reset=1`: restart the async idle timeouts from zero.
        async_idle_reset: bool,
        /// `GCTI_LanguageCode`, else `GCTI_LanguageName`.
        language: Option<Language>,
    },
}

impl EspRequest {
    /// The method name, as in [`METHODS`].
    pub fn method(&self) -> &'static str {
        match self {
            EspRequest::Message { .. } => "Message",
            EspRequest::Notice { .. } => "Notice",
            EspRequest::PlaceOnHold { .. } => "PlaceOnHold",
            EspRequest::CloseSession { .. } => "CloseSession",
            EspRequest::GetSessionInfo { .. } => "GetSessionInfo",
            EspRequest::IdleControlConfigure { .. } => "IdleControlConfigure",
            EspRequest::ConfigureSession { .. } => "ConfigureSession",
        }
    }

    /// The explicit `InteractionId`, if the request gave one.
    pub fn interaction_id(&self) -> Option<&str> {
        match self {
            EspRequest::Message { common, .. } | EspRequest::Notice { common, .. } => {
                common.interaction_id.as_deref()
            }
            EspRequest::PlaceOnHold { interaction_id }
            | EspRequest::CloseSession { interaction_id, .. }
            | EspRequest::GetSessionInfo { interaction_id }
            | EspRequest::IdleControlConfigure { interaction_id, .. }
            | EspRequest::ConfigureSession { interaction_id, .. } => interaction_id.as_deref(),
        }
    }
}

/// Parses the ESP method `method` with its parameters.
///
/// Unknown parameters are ignored (Chat Server ignores them, and the workflow's user data is
/// sent in the same list).
///
/// # Errors
/// A [`FieldError`] naming the parameter that is missing or wrong and saying how to fix it;
/// for an unknown method the field is `method` and the message lists [`METHODS`].
pub fn parse(method: &str, params: &BTreeMap<String, String>) -> Result<EspRequest, FieldError> {
    let interaction_id = optional(params, "InteractionId").map(|v| v.trim().to_string());
    match method {
        "Message" => {
            let text = params
                .get("MessageText")
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    FieldError::new(
                        "MessageText",
                        "is required: give the text of the message to post",
                    )
                })?
                .clone();
            Ok(EspRequest::Message {
                text,
                message_type: optional(params, "MessageType").map(|v| v.trim().to_string()),
                common: common(params, interaction_id)?,
            })
        }
        "Notice" => {
            let notice_type = match optional(params, "NoticeType").map(str::trim) {
                Some("USER_PUSHED_URL") => NoticeType::PushedUrl,
                Some("USER_CUSTOM") => NoticeType::Custom,
                Some(other) => {
                    return Err(FieldError::new(
                        "NoticeType",
                        format!(
                            "unknown notice type `{other}`: use USER_PUSHED_URL (push a web \
                             page, NoticeText is its URL) or USER_CUSTOM"
                        ),
                    ))
                }
                None => {
                    return Err(FieldError::new(
                        "NoticeType",
                        "is required: use USER_PUSHED_URL (push a web page, NoticeText is its \
                         URL) or USER_CUSTOM",
                    ))
                }
            };
            let text = match notice_type {
                NoticeType::PushedUrl => Some(pushed_url(optional(params, "NoticeText"))?),
                NoticeType::Custom => optional(params, "NoticeText").map(str::to_string),
            };
            Ok(EspRequest::Notice {
                notice_type,
                text,
                common: common(params, interaction_id)?,
            })
        }
        "PlaceOnHold" => Ok(EspRequest::PlaceOnHold { interaction_id }),
        "CloseSession" => Ok(EspRequest::CloseSession {
            interaction_id,
            close_if_no_agents: flag(params, "CloSelfNoAgents"),
            purge: flag(params, "Purge"),
        }),
        "GetSessionInfo" => Ok(EspRequest::GetSessionInfo { interaction_id }),
        "IdleControlConfigure" => Ok(EspRequest::IdleControlConfigure {
            interaction_id,
            changes: IdleChanges::parse(params)?,
        }),
        "ConfigureSession" => {
            let reset = optional(params, "async-idle-reset");
            let code = optional(params, "GCTI_LanguageCode");
            let name = optional(params, "GCTI_LanguageName");
            if reset.is_none() && code.is_none() && name.is_none() {
                return Err(FieldError::new(
                    "ConfigureSession",
                    "no parameter given: set at least one of async-idle-reset (1 restarts the \
                     async idle timeouts), GCTI_LanguageCode, GCTI_LanguageName",
                ));
            }
            let language = match (code, name) {
                (Some(code), _) => Some(Language::Code(code.trim().to_string())),
                (None, Some(name)) => Some(Language::Name(name.trim().to_string())),
                (None, None) => None,
            };
            Ok(EspRequest::ConfigureSession {
                interaction_id,
                async_idle_reset: reset.is_some_and(|v| v.trim() == "1"),
                language,
            })
        }
        other => Err(FieldError::new(
            "method",
            format!(
                "unknown ESP method `{other}`: use one of {} (names are case-sensitive)",
                METHODS.join(", ")
            ),
        )),
    }
}

/// A parameter's value, unless it is absent, empty or blank.
fn optional<'a>(params: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// An ESP boolean: only `true` is true.
fn flag(params: &BTreeMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|v| v.trim() == "true")
}

/// The parameters `Message` and `Notice` share.
fn common(
    params: &BTreeMap<String, String>,
    interaction_id: Option<String>,
) -> Result<EspCommon, FieldError> {
    let event_attributes = match optional(params, "EventAttributes") {
        Some(text) => Some(kv::parse(text).map_err(|err| {
            FieldError::new(
                "EventAttributes",
                format!("is not a valid key-value collection: {err}"),
            )
        })?),
        None => None,
    };
    Ok(EspCommon {
        interaction_id,
        nickname: optional(params, "Nickname").map(|v| v.trim().to_string()),
        visibility: Visibility::parse(optional(params, "Visibility"))?,
        event_attributes,
    })
}

/// The `NoticeText` of a `USER_PUSHED_URL` notice: an absolute http(s) URL with a host.
fn pushed_url(text: Option<&str>) -> Result<String, FieldError> {
    const HOW: &str = "with NoticeType USER_PUSHED_URL give the page's http:// or https:// URL, \
                       e.g. https://www.example.com/offers";
    let Some(url) = text.map(str::trim) else {
        return Err(FieldError::new("NoticeText", format!("is required: {HOW}")));
    };
    let lower = url.to_ascii_lowercase();
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    let host = rest.map(|rest| {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        &rest[..end]
    });
    let valid = match host {
        Some(host) => {
            let host = host.rsplit('@').next().unwrap_or(host);
            !host.is_empty()
                && !host.starts_with(':')
                && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid {
        Ok(url.to_string())
    } else {
        Err(FieldError::new(
            "NoticeText",
            format!("`{url}` is not a valid URL: {HOW}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kv::KvValue;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse_ok(method: &str, pairs: &[(&str, &str)]) -> EspRequest {
        match parse(method, &params(pairs)) {
            Ok(request) => request,
            Err(err) => panic!("{method} {pairs:?}: {err}"),
        }
    }

    fn parse_err(method: &str, pairs: &[(&str, &str)]) -> FieldError {
        match parse(method, &params(pairs)) {
            Ok(request) => panic!("{method} {pairs:?} should fail, got {request:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn message_with_only_text_uses_defaults() {
        let request = parse_ok(
            "Message",
            &[("MessageText", "Agent will be with you shortly")],
        );
        assert_eq!(
            request,
            EspRequest::Message {
                text: "Agent will be with you shortly".into(),
                message_type: None,
                common: EspCommon::default(),
            }
        );
        assert_eq!(request.method(), "Message");
        assert_eq!(request.interaction_id(), None);
    }

    #[test]
    fn message_with_every_parameter() {
        let request = parse_ok(
            "Message",
            &[
                ("MessageText", "  hello  "),
                ("MessageType", "greeting"),
                ("Nickname", " Bot "),
                ("Visibility", "INT"),
                ("InteractionId", "00001a"),
                ("EventAttributes", "a:1|b.c:2"),
                ("SomeUserData", "ignored"),
            ],
        );
        let expected_attributes: KvList = [
            ("a".to_string(), KvValue::text("1")),
            (
                "b".to_string(),
                KvValue::List([("c".to_string(), KvValue::text("2"))].into()),
            ),
        ]
        .into();
        assert_eq!(
            request,
            EspRequest::Message {
                text: "  hello  ".into(),
                message_type: Some("greeting".into()),
                common: EspCommon {
                    interaction_id: Some("00001a".into()),
                    nickname: Some("Bot".into()),
                    visibility: Visibility::Int,
                    event_attributes: Some(expected_attributes),
                },
            }
        );
        assert_eq!(request.interaction_id(), Some("00001a"));
    }

    #[test]
    fn message_text_is_required_and_not_blank() {
        for pairs in [
            vec![],
            vec![("MessageText", "")],
            vec![("MessageText", "  ")],
        ] {
            let err = parse_err("Message", &pairs);
            assert_eq!(err.field, "MessageText", "{pairs:?}");
            assert!(err.message.contains("required"), "{}", err.message);
        }
    }

    #[test]
    fn visibility_values() {
        let cases = [
            (None, Visibility::All, true),
            (Some(""), Visibility::All, true),
            (Some("ALL"), Visibility::All, true),
            (Some("INT"), Visibility::Int, false),
            (Some("VIP"), Visibility::Vip, false),
            (Some(" VIP "), Visibility::Vip, false),
        ];
        for (value, expected, customer_sees) in cases {
            let mut pairs = vec![("MessageText", "hi")];
            if let Some(value) = value {
                pairs.push(("Visibility", value));
            }
            let EspRequest::Message { common, .. } = parse_ok("Message", &pairs) else {
                panic!("a message");
            };
            assert_eq!(common.visibility, expected, "{value:?}");
            assert_eq!(
                common.visibility.visible_to_customer(),
                customer_sees,
                "{value:?}"
            );
            assert_eq!(
                expected.as_str(),
                value
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .unwrap_or("ALL")
            );
        }
    }

    #[test]
    fn unknown_visibility_names_the_field_and_lists_the_values() {
        for value in ["all", "PUBLIC", "1"] {
            let err = parse_err(
                "Notice",
                &[("NoticeType", "USER_CUSTOM"), ("Visibility", value)],
            );
            assert_eq!(err.field, "Visibility", "{value}");
            for allowed in ["ALL", "INT", "VIP", value] {
                assert!(err.message.contains(allowed), "{value}: {}", err.message);
            }
        }
    }

    #[test]
    fn bad_event_attributes_name_the_field_and_carry_the_parser_message() {
        let err = parse_err(
            "Message",
            &[("MessageText", "hi"), ("EventAttributes", "a:1|a.b:2")],
        );
        assert_eq!(err.field, "EventAttributes");
        assert!(
            err.message
                .contains("key `a` is used both as a value and as a list"),
            "{}",
            err.message
        );
    }

    #[test]
    fn seed_quick_replies_event_attributes_are_accepted() {
        let attributes = r#"{ "structured-content": { "genesys-chat": { "content": { "type": "Message", "contentType": "quick-replies", "content": [ { "id": 1, "type": "quick-reply", "action": "message", "text": "Black" } ] }, "type": "Generic" } } }"#;
        let EspRequest::Message { common, .. } = parse_ok(
            "Message",
            &[
                ("MessageText", "Pick a color"),
                ("EventAttributes", attributes),
            ],
        ) else {
            panic!("a message");
        };
        let list = common.event_attributes.expect("attributes");
        assert!(list.contains_key("structured-content"), "{list:?}");
    }

    #[test]
    fn notice_custom_keeps_any_text() {
        let request = parse_ok(
            "Notice",
            &[
                ("NoticeType", "USER_CUSTOM"),
                ("NoticeText", " anything at all "),
                ("Visibility", "VIP"),
            ],
        );
        assert_eq!(
            request,
            EspRequest::Notice {
                notice_type: NoticeType::Custom,
                text: Some(" anything at all ".into()),
                common: EspCommon {
                    visibility: Visibility::Vip,
                    ..EspCommon::default()
                },
            }
        );
        let request = parse_ok("Notice", &[("NoticeType", "USER_CUSTOM")]);
        assert!(
            matches!(request, EspRequest::Notice { text: None, .. }),
            "{request:?}"
        );
    }

    #[test]
    fn notice_pushed_url_accepts_http_and_https_urls() {
        for url in [
            "http://example.com",
            "https://www.example.com/offers?id=1#top",
            "HTTPS://Example.com:8443/",
            "https://user@example.com/x",
            " https://example.com/padded ",
        ] {
            let request = parse_ok(
                "Notice",
                &[("NoticeType", "USER_PUSHED_URL"), ("NoticeText", url)],
            );
            assert_eq!(
                request,
                EspRequest::Notice {
                    notice_type: NoticeType::PushedUrl,
                    text: Some(url.trim().to_string()),
                    common: EspCommon::default(),
                },
                "{url}"
            );
        }
    }

    #[test]
    fn notice_pushed_url_needs_a_valid_url() {
        for url in [
            "",
            "example.com",
            "ftp://example.com",
            "http://",
            "https:///path",
            "http://:80/",
            "http://exa mple.com",
            "javascript:alert(1)",
        ] {
            let mut pairs = vec![("NoticeType", "USER_PUSHED_URL")];
            if !url.is_empty() {
                pairs.push(("NoticeText", url));
            }
            let err = parse_err("Notice", &pairs);
            assert_eq!(err.field, "NoticeText", "{url}");
            assert!(err.message.contains("https://"), "{url}: {}", err.message);
        }
    }

    #[test]
    fn notice_type_is_required_and_checked() {
        for (pairs, hint) in [
            (vec![], "required"),
            (vec![("NoticeType", " ")], "required"),
            (vec![("NoticeType", "USER_TYPING")], "`USER_TYPING`"),
            (vec![("NoticeType", "user_custom")], "`user_custom`"),
        ] {
            let err = parse_err("Notice", &pairs);
            assert_eq!(err.field, "NoticeType", "{pairs:?}");
            assert!(err.message.contains(hint), "{pairs:?}: {}", err.message);
            assert!(err.message.contains("USER_PUSHED_URL"), "{}", err.message);
            assert!(err.message.contains("USER_CUSTOM"), "{}", err.message);
        }
    }

    #[test]
    fn place_on_hold_and_get_session_info_take_only_the_interaction() {
        assert_eq!(
            parse_ok("PlaceOnHold", &[]),
            EspRequest::PlaceOnHold {
                interaction_id: None
            }
        );
        assert_eq!(
            parse_ok("PlaceOnHold", &[("InteractionId", " 0002 "), ("x", "y")]),
            EspRequest::PlaceOnHold {
                interaction_id: Some("0002".into())
            }
        );
        assert_eq!(
            parse_ok("GetSessionInfo", &[("InteractionId", "")]),
            EspRequest::GetSessionInfo {
                interaction_id: None
            }
        );
        assert_eq!(
            parse_ok("GetSessionInfo", &[("InteractionId", "0003")]).interaction_id(),
            Some("0003")
        );
    }

    #[test]
    fn close_session_flags_are_true_only_for_true() {
        let cases = [
            (vec![], false, false),
            (vec![("CloSelfNoAgents", "true")], true, false),
            (vec![("Purge", "true")], false, true),
            (
                vec![("CloSelfNoAgents", "true"), ("Purge", "true")],
                true,
                true,
            ),
            (
                vec![("CloSelfNoAgents", "TRUE"), ("Purge", "1")],
                false,
                false,
            ),
            (
                vec![("CloSelfNoAgents", "yes"), ("Purge", "false")],
                false,
                false,
            ),
        ];
        for (pairs, close_if_no_agents, purge) in cases {
            assert_eq!(
                parse_ok("CloseSession", &pairs),
                EspRequest::CloseSession {
                    interaction_id: None,
                    close_if_no_agents,
                    purge,
                },
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn idle_control_configure_reads_the_changes() {
        let request = parse_ok(
            "IdleControlConfigure",
            &[
                ("InteractionId", "0004"),
                ("enabled", "true"),
                ("timeout-close", "300"),
            ],
        );
        assert_eq!(
            request,
            EspRequest::IdleControlConfigure {
                interaction_id: Some("0004".into()),
                changes: IdleChanges {
                    enabled: Some(true),
                    timeout_close_secs: Some(300),
                    ..IdleChanges::default()
                },
            }
        );
    }

    #[test]
    fn idle_control_configure_needs_a_parameter_and_whole_seconds() {
        let err = parse_err("IdleControlConfigure", &[("InteractionId", "0004")]);
        assert_eq!(err.field, "IdleControlConfigure");
        assert!(err.message.contains("at least one"), "{}", err.message);

        let err = parse_err("IdleControlConfigure", &[("timeout-alert", "1m")]);
        assert_eq!(err.field, "timeout-alert");
    }

    #[test]
    fn configure_session_language_code_wins_over_name() {
        let cases = [
            (
                vec![("GCTI_LanguageCode", "fr"), ("GCTI_LanguageName", "German")],
                false,
                Some(Language::Code("fr".into())),
            ),
            (
                vec![("GCTI_LanguageCode", " "), ("GCTI_LanguageName", "German")],
                false,
                Some(Language::Name("German".into())),
            ),
            (vec![("async-idle-reset", "1")], true, None),
            (vec![("async-idle-reset", "true")], false, None),
            (vec![("async-idle-reset", "0")], false, None),
            (
                vec![("async-idle-reset", "1"), ("GCTI_LanguageName", "Spanish")],
                true,
                Some(Language::Name("Spanish".into())),
            ),
        ];
        for (pairs, async_idle_reset, language) in cases {
            assert_eq!(
                parse_ok("ConfigureSession", &pairs),
                EspRequest::ConfigureSession {
                    interaction_id: None,
                    async_idle_reset,
                    language,
                },
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn configure_session_needs_a_parameter() {
        for pairs in [
            vec![],
            vec![("InteractionId", "0005")],
            vec![("GCTI_LanguageCode", ""), ("async-idle-reset", " ")],
        ] {
            let err = parse_err("ConfigureSession", &pairs);
            assert_eq!(err.field, "ConfigureSession", "{pairs:?}");
            for name in ["async-idle-reset", "GCTI_LanguageCode", "GCTI_LanguageName"] {
                assert!(err.message.contains(name), "{}", err.message);
            }
        }
    }

    #[test]
    fn unknown_method_names_it_and_lists_the_supported_ones() {
        for method in ["", "message", "SendMessage", "Close Session"] {
            let err = parse_err(method, &[("MessageText", "hi")]);
            assert_eq!(err.field, "method", "{method}");
            assert!(
                err.message.contains(&format!("`{method}`")),
                "{method}: {}",
                err.message
            );
            for supported in METHODS {
                assert!(err.message.contains(supported), "{}", err.message);
            }
        }
    }

    #[test]
    fn every_method_parses_and_reports_its_name() {
        let minimal: [(&str, &[(&str, &str)]); 7] = [
            ("Message", &[("MessageText", "hi")]),
            ("Notice", &[("NoticeType", "USER_CUSTOM")]),
            ("PlaceOnHold", &[]),
            ("CloseSession", &[]),
            ("GetSessionInfo", &[]),
            ("IdleControlConfigure", &[("enabled", "false")]),
            ("ConfigureSession", &[("async-idle-reset", "1")]),
        ];
        for ((method, pairs), listed) in minimal.into_iter().zip(METHODS) {
            assert_eq!(method, listed);
            let mut with_id = pairs.to_vec();
            with_id.push(("InteractionId", "0006"));
            let request = parse_ok(method, &with_id);
            assert_eq!(request.method(), method);
            assert_eq!(request.interaction_id(), Some("0006"), "{method}");
        }
    }

    #[test]
    fn visibility_and_notice_type_serialize_as_wire_values() {
        assert_eq!(
            serde_json::to_string(&Visibility::Vip).expect("serializes"),
            "\"VIP\""
        );
        assert_eq!(
            serde_json::to_string(&NoticeType::PushedUrl).expect("serializes"),
            "\"USER_PUSHED_URL\""
        );
        assert_eq!(NoticeType::Custom.as_str(), "USER_CUSTOM");
    }
}
