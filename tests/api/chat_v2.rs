//! Chat API version 2, REST form, end to end: requestChat on a configured service and through
//! the `[inbound_chat]` group, an agent answering, every operation, transcript positions, and
//! the refusals in v2's shape (`statusCode`, `errors[{code,advice}]`). Its CometD form is in
//! `node_client.rs` (`tests/node/chat_v2.mjs`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::chat::agent_post;
use crate::helpers::{detail, eventually, json, set_state, spawn_app, spawn_app_with, TestApp};

/// POSTs to `/genesys/2/chat/{path}` without a `gms_user`, as a web chat widget does.
async fn v2(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let response = app
        .post_form(&format!("/genesys/2/chat/{path}"), None, fields)
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

/// The keys of a chat, as requestChat answered them.
struct Chat {
    id: String,
    secure_key: String,
    user_id: String,
    alias: String,
}

impl Chat {
    fn of(reply: &Value) -> Chat {
        let text = |key: &str| {
            reply[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {reply}"))
                .to_string()
        };
        Chat {
            id: text("chatId"),
            secure_key: text("secureKey"),
            user_id: text("userId"),
            alias: text("alias"),
        }
    }

    /// Runs `operation` with the chat's keys and `fields`.
    async fn op(&self, app: &TestApp, operation: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut all = vec![
            ("secureKey", self.secure_key.as_str()),
            ("userId", self.user_id.as_str()),
            ("alias", self.alias.as_str()),
        ];
        all.extend_from_slice(fields);
        v2(app, &format!("request-chat/{}/{operation}", self.id), &all).await
    }
}

/// (index, type, from.type, from.nickname, text) of each message.
fn summary(reply: &Value) -> Vec<(u64, String, String, String, Option<String>)> {
    reply["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages in {reply}"))
        .iter()
        .map(|m| {
            (
                m["index"].as_u64().unwrap(),
                m["type"].as_str().unwrap().to_string(),
                m["from"]["type"].as_str().unwrap().to_string(),
                m["from"]["nickname"].as_str().unwrap().to_string(),
                m["text"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn ok(status: u16, reply: &Value) {
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["statusCode"], 0, "{reply}");
}

/// The v2 refusal: HTTP status, `statusCode`, the error code; the advice must say something.
fn refused(status: u16, reply: &Value, http: u16, status_code: u64, code: u64) {
    assert_eq!(status, http, "{reply}");
    assert_eq!(reply["statusCode"], status_code, "{reply}");
    assert_eq!(reply["errors"][0]["code"], code, "{reply}");
    assert!(
        reply["errors"][0]["advice"]
            .as_str()
            .is_some_and(|a| a.len() > 10),
        "{reply}"
    );
}

/// The service id of the chat `agent` handles (the v2 customer never learns it).
async fn service_of(app: &TestApp, agent: &str) -> String {
    eventually(
        Duration::from_secs(10),
        "the chat to reach the agent",
        || async {
            let list = json(
                app.admin(
                    Method::GET,
                    &format!("/genesys/1/agent/{agent}/interactions"),
                )
                .send()
                .await
                .unwrap(),
            )
            .await;
            list.as_array()
                .and_then(|l| l.first())
                .filter(|i| i["status"] == "active")
                .map(|i| i["service_id"].as_str().unwrap().to_string())
        },
    )
    .await
}

#[tokio::test]
async fn a_rest_chat_runs_every_operation_with_an_agent_answering() {
    // Every operation in a row is faster than a customer types: no rate limit here (see
    // a_customer_sending_too_fast_is_told_to_try_again).
    let app = spawn_app_with(|config| config.chat.max_messages_per_second = 0).await;

    // requestChat: the keys, and the customer's own ParticipantJoined at index 1.
    let (status, requested) = v2(
        &app,
        "request-chat",
        &[
            ("firstName", "Vasya"),
            ("lastName", "Pupkin"),
            ("subject", "billing"),
            ("emailAddress", "vasya@example.com"),
            ("userData[order]", "42"),
        ],
    )
    .await;
    ok(status, &requested);
    let chat = Chat::of(&requested);
    assert_eq!(chat.id.len(), 16, "{requested}");
    assert_eq!(chat.secure_key.len(), 16, "{requested}");
    assert_ne!(chat.secure_key, chat.user_id);
    assert_eq!(chat.alias, "1");
    assert_eq!(requested["chatEnded"], false);
    assert_eq!(requested["nextPosition"], 2);
    assert_eq!(
        summary(&requested),
        [(
            1,
            "ParticipantJoined".into(),
            "Client".into(),
            "VasyaP".into(),
            None
        )]
    );
    let first = &requested["messages"][0];
    assert_eq!(first["from"]["participantId"], 1);
    assert!(
        first["utcTime"].as_u64().unwrap() > 1_600_000_000_000,
        "{first}"
    );

    // Marco (Support, auto-answer) becomes ready, gets the chat and joins; the customer sees
    // it from 2 on.
    set_state(&app, "marco", "ready").await;
    let service = service_of(&app, "marco").await;
    assert_eq!(detail(&app, &service).await["user_data"]["order"], "42");
    let joined = eventually(Duration::from_secs(5), "marco to join", || async {
        let (_, reply) = chat
            .op(&app, "refresh", &[("transcriptPosition", "2")])
            .await;
        (!summary(&reply).is_empty()).then_some(reply)
    })
    .await;
    assert_eq!(
        summary(&joined),
        [(
            2,
            "ParticipantJoined".into(),
            "Agent".into(),
            "Marco Rossi".into(),
            None
        )]
    );
    assert_eq!(joined["messages"][0]["from"]["participantId"], 2);
    assert_eq!(joined["nextPosition"], 3);

    let (status, _) = agent_post(
        &app,
        "marco",
        &format!("chat/{service}/message"),
        json!({"text": "How can I help?"}),
    )
    .await;
    assert_eq!(status, 200);

    // Every customer operation, each answering the chat with what is new from the position.
    let (status, sent) = chat
        .op(
            &app,
            "send",
            &[("message", "My bill"), ("transcriptPosition", "3")],
        )
        .await;
    ok(status, &sent);
    assert_eq!(
        summary(&sent),
        [
            (
                3,
                "Message".into(),
                "Agent".into(),
                "Marco Rossi".into(),
                Some("How can I help?".into())
            ),
            (
                4,
                "Message".into(),
                "Client".into(),
                "VasyaP".into(),
                Some("My bill".into())
            ),
        ]
    );
    assert_eq!(sent["nextPosition"], 5);
    for (operation, fields, expected) in [
        (
            "startTyping",
            vec![("message", "It is")],
            ("TypingStarted", Some("It is")),
        ),
        ("stopTyping", vec![], ("TypingStopped", None)),
        (
            "customNotice",
            vec![("message", "{\"page\":\"bill\"}")],
            ("Notice", Some("{\"page\":\"bill\"}")),
        ),
        (
            "pushUrl",
            vec![("pushUrl", "https://example.com/bill")],
            ("PushUrl", Some("https://example.com/bill")),
        ),
    ] {
        let (status, reply) = chat.op(&app, operation, &fields).await;
        ok(status, &reply);
        assert!(
            summary(&reply).is_empty(),
            "{operation} without a position shows nothing: {reply}"
        );
        let last = reply["nextPosition"].as_u64().unwrap() - 1;
        let (_, shown) = chat
            .op(
                &app,
                "refresh",
                &[("transcriptPosition", &last.to_string())],
            )
            .await;
        let event = &summary(&shown)[0];
        assert_eq!(
            (event.1.as_str(), event.2.as_str(), event.4.as_deref()),
            (expected.0, "Client", expected.1),
            "{operation}: {shown}"
        );
    }
    let (status, renamed) = chat
        .op(
            &app,
            "updateNickname",
            &[("nickname", "Vasiliy"), ("transcriptPosition", "9")],
        )
        .await;
    ok(status, &renamed);
    assert_eq!(
        summary(&renamed),
        [(
            9,
            "NicknameUpdated".into(),
            "Client".into(),
            "Vasiliy".into(),
            None
        )]
    );
    let (status, updated) = chat
        .op(
            &app,
            "updateData",
            &[("userData[order]", "43"), ("userData[page]", "bill")],
        )
        .await;
    ok(status, &updated);
    let record = detail(&app, &service).await;
    let data = &record["user_data"];
    assert_eq!(
        (data["order"].as_str(), data["page"].as_str()),
        (Some("43"), Some("bill"))
    );

    // The agent sees the customer's notices and the new name.
    let (status, _) = agent_post(
        &app,
        "marco",
        &format!("chat/{service}/message"),
        json!({"text": "Done"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, refreshed) = chat
        .op(
            &app,
            "refresh",
            &[("transcriptPosition", "10"), ("message", "Thanks")],
        )
        .await;
    assert_eq!(
        summary(&refreshed),
        [
            (
                10,
                "Message".into(),
                "Agent".into(),
                "Marco Rossi".into(),
                Some("Done".into())
            ),
            (
                11,
                "Message".into(),
                "Client".into(),
                "Vasiliy".into(),
                Some("Thanks".into())
            ),
        ]
    );

    // The whole transcript from 1, in order, with no gaps.
    let (_, all) = chat
        .op(&app, "refresh", &[("transcriptPosition", "1")])
        .await;
    let indexes: Vec<u64> = summary(&all).iter().map(|m| m.0).collect();
    assert_eq!(indexes, (1..=11).collect::<Vec<_>>());

    // disconnect ends the chat and completes the service.
    let (status, gone) = chat
        .op(&app, "disconnect", &[("transcriptPosition", "12")])
        .await;
    ok(status, &gone);
    assert_eq!(gone["chatEnded"], true);
    assert_eq!(
        summary(&gone),
        [(
            12,
            "ParticipantLeft".into(),
            "Client".into(),
            "Vasiliy".into(),
            None
        )]
    );
    let record = crate::helpers::wait_for_state(&app, &service, "COMPLETED").await;
    assert_eq!(record["_callback_reason"], "AGENT_CONNECTED");

    // An ended chat is refused for anything but refresh (and disconnect), with chatEnded.
    let (status, late) = chat.op(&app, "send", &[("message", "hello?")]).await;
    refused(status, &late, 400, 2, 105);
    assert_eq!(late["chatEnded"], true);
    let (status, reread) = chat
        .op(&app, "refresh", &[("transcriptPosition", "12")])
        .await;
    ok(status, &reread);
    assert_eq!(reread["chatEnded"], true);
    assert_eq!(summary(&reread).len(), 1);
}

#[tokio::test]
async fn a_customer_sending_too_fast_is_told_to_try_again() {
    let app = spawn_app_with(|config| config.chat.max_messages_per_second = 2).await;
    // requestChat's ParticipantJoined takes the first token.
    let (_, requested) = v2(&app, "request-chat", &[("nickname", "Ann")]).await;
    let chat = Chat::of(&requested);
    let (status, first) = chat.op(&app, "send", &[("message", "one")]).await;
    ok(status, &first);
    let (status, reply) = chat.op(&app, "send", &[("message", "two")]).await;
    refused(status, &reply, 429, 1, 104);
    assert_eq!(reply["chatEnded"], false);
}

#[tokio::test]
async fn transcript_positions_choose_the_messages_shown() {
    let app = spawn_app().await;
    let (_, requested) = v2(
        &app,
        "request-chat",
        &[("nickname", "Ann"), ("text", "Hi there")],
    )
    .await;
    let chat = Chat::of(&requested);
    // The first message (`text`) follows the customer's join.
    assert_eq!(
        summary(&requested),
        [
            (
                1,
                "ParticipantJoined".into(),
                "Client".into(),
                "Ann".into(),
                None
            ),
            (
                2,
                "Message".into(),
                "Client".into(),
                "Ann".into(),
                Some("Hi there".into())
            ),
        ]
    );

    for (position, expected) in [
        (None, vec![]),
        (Some("0"), vec![]),
        (Some("1"), vec![1, 2]),
        (Some("2"), vec![2]),
        (Some("3"), vec![]),
        (Some("99"), vec![]),
    ] {
        let fields: Vec<(&str, &str)> = position
            .map(|p| ("transcriptPosition", p))
            .into_iter()
            .collect();
        let (status, reply) = chat.op(&app, "refresh", &fields).await;
        ok(status, &reply);
        let indexes: Vec<u64> = summary(&reply).iter().map(|m| m.0).collect();
        assert_eq!(indexes, expected, "transcriptPosition {position:?}");
        assert_eq!(reply["nextPosition"], 3);
    }
    let (status, bad) = chat
        .op(&app, "refresh", &[("transcriptPosition", "first")])
        .await;
    refused(status, &bad, 400, 2, 101);
    assert!(bad["errors"][0]["advice"]
        .as_str()
        .unwrap()
        .contains("transcriptPosition"));
}

#[tokio::test]
async fn an_unknown_chat_or_a_wrong_key_is_refused_before_any_field_is_read() {
    let app = spawn_app().await;
    let (_, requested) = v2(&app, "request-chat", &[("nickname", "Ann")]).await;
    let chat = Chat::of(&requested);
    let bad_fields = [("transcriptPosition", "x"), ("message", "")];

    // Unknown chatId: 404, code 102, whatever else is wrong.
    let (status, reply) = v2(
        &app,
        "request-chat/0000000000000000/send",
        &[
            ("secureKey", &chat.secure_key),
            bad_fields[0],
            bad_fields[1],
        ],
    )
    .await;
    refused(status, &reply, 404, 2, 102);

    // A wrong, missing or other chat's key: 403, code 103, before the bad fields.
    let (_, other) = v2(&app, "request-chat", &[("nickname", "Bob")]).await;
    let other = Chat::of(&other);
    for (label, fields) in [
        (
            "wrong key",
            vec![("secureKey", "not-the-key"), bad_fields[0], bad_fields[1]],
        ),
        ("no key", vec![bad_fields[0], bad_fields[1]]),
        (
            "another chat's key",
            vec![("secureKey", other.secure_key.as_str()), bad_fields[0]],
        ),
        (
            "wrong userId",
            vec![
                ("secureKey", chat.secure_key.as_str()),
                ("userId", other.user_id.as_str()),
                bad_fields[0],
            ],
        ),
    ] {
        let (status, reply) = v2(&app, &format!("request-chat/{}/send", chat.id), &fields).await;
        assert_eq!(status, 403, "{label}: {reply}");
        refused(status, &reply, 403, 2, 103);
    }

    // With the right key the fields are read, and each refusal names its field.
    for (operation, fields, field) in [
        ("send", vec![("message", "  ")], "message"),
        (
            "send",
            vec![("message", "x"), ("transcriptPosition", "-2")],
            "transcriptPosition",
        ),
        ("updateNickname", vec![], "nickname"),
        ("updateData", vec![], "userData"),
        (
            "updateData",
            vec![("userData[_target]", "Billing@StatServer.GA")],
            "userData[_target]",
        ),
        ("pushUrl", vec![("pushUrl", "ftp://example.com")], "pushUrl"),
        ("fly", vec![], "operation"),
    ] {
        let (status, reply) = chat.op(&app, operation, &fields).await;
        refused(status, &reply, 400, 2, 101);
        let advice = reply["errors"][0]["advice"].as_str().unwrap();
        assert!(advice.contains(field), "{operation}: {advice}");
    }
}

#[tokio::test]
async fn request_chat_refuses_what_cannot_start_a_chat() {
    let app = spawn_app().await;
    let (status, reply) = v2(&app, "request-chat", &[("firstName", "Ann")]).await;
    refused(status, &reply, 400, 2, 101);
    assert!(reply["errors"][0]["advice"]
        .as_str()
        .unwrap()
        .contains("nickname"));

    // chat-delay waits for an agent (and a confirmation) before its chat: not a v2 chat.
    let (status, reply) = v2(&app, "chat-delay", &[("nickname", "Ann")]).await;
    refused(status, &reply, 400, 2, 101);
    assert!(reply["errors"][0]["advice"]
        .as_str()
        .unwrap()
        .contains("chatServiceName"));

    // Options a configured service does not let requests override are refused, named.
    let (status, reply) = v2(
        &app,
        "request-chat",
        &[
            ("nickname", "Ann"),
            ("userData[_target]", "Billing@StatServer.GA"),
        ],
    )
    .await;
    refused(status, &reply, 400, 2, 101);
    assert!(reply["errors"][0]["advice"]
        .as_str()
        .unwrap()
        .contains("_target"));

    // Not a form: 415 before anything else.
    let response = app
        .request(Method::POST, "/genesys/2/chat/request-chat")
        .header("content-type", "application/json")
        .body("{\"nickname\":\"Ann\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn a_chat_on_no_configured_service_goes_to_the_inbound_chat_group() {
    let app = spawn_app_with(|config| {
        config.inbound_chat.app_selected_agent_group = "Billing".into();
        config.inbound_chat.find_agent_timeout_secs = 120;
    })
    .await;
    // kristi is in Billing only: she can only get the chat through the fallback group.
    set_state(&app, "kristi", "ready").await;
    let (status, requested) = v2(&app, "web-support", &[("nickname", "Ann")]).await;
    ok(status, &requested);

    let service = service_of(&app, "kristi").await;
    let record = detail(&app, &service).await;
    assert_eq!(record["_service_name"], "inbound-chat", "{record}");
    let options = record.to_string();
    assert!(options.contains("Billing@StatServer.GA"), "{record}");
    assert!(options.contains("\"_urs_queued_ttl\":\"120\""), "{record}");

    let chat = Chat::of(&requested);
    let joined = eventually(Duration::from_secs(5), "kristi to join", || async {
        let (_, reply) = v2(
            &app,
            &format!("web-support/{}/refresh", chat.id),
            &[("secureKey", &chat.secure_key), ("transcriptPosition", "2")],
        )
        .await;
        (!summary(&reply).is_empty()).then_some(reply)
    })
    .await;
    assert_eq!(summary(&joined)[0].3, "Kristi Sippola");
}

#[tokio::test]
async fn without_an_inbound_chat_group_an_unknown_service_is_refused() {
    let app =
        spawn_app_with(|config| config.inbound_chat.app_selected_agent_group = String::new()).await;
    let (status, reply) = v2(&app, "web-support", &[("nickname", "Ann")]).await;
    refused(status, &reply, 404, 2, 106);
    assert_eq!(reply["chatEnded"], false);
}
