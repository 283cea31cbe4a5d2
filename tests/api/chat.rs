//! Chat API v1 end to end (seed 003): starting a chat, the transcript as the customer and the
//! agent see it, both sides leaving, and what that does to the service and the agent.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    detail, eventually, json, set_state, spawn_app, spawn_app_with, wait_for_state, TestApp,
    GMS_USER,
};

/// POSTs a customer chat operation (`""` is `ixn/chat` itself).
pub async fn chat(app: &TestApp, id: &str, op: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let path = if op.is_empty() {
        format!("/genesys/1/service/{id}/ixn/chat")
    } else {
        format!("/genesys/1/service/{id}/ixn/chat/{op}")
    };
    let response = app.post_form(&path, Some(GMS_USER), fields).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn agent_post(app: &TestApp, agent: &str, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .admin(Method::POST, &format!("/genesys/1/agent/{agent}/{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json(response).await)
}

/// The agent's view of the chat of `id`.
pub async fn agent_chat(app: &TestApp, agent: &str, id: &str) -> Value {
    json(
        app.admin(Method::GET, &format!("/genesys/1/agent/{agent}/chat/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn rows(object: &Value) -> Vec<Vec<String>> {
    object["transcriptToShow"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// A chat-delay service reserved to kristi and confirmed: ready for `ixn/chat`.
pub async fn confirmed_chat_delay(app: &TestApp) -> String {
    set_state(app, "kristi", "ready").await;
    let id = app
        .create(
            "chat-delay",
            &[("_customer_number", "5551234"), ("subject", "billing")],
        )
        .await;
    wait_for_state(app, &id, "ROUTING").await;
    let connect = app
        .post_form(
            &format!("/genesys/1/service/{id}/connect"),
            Some(GMS_USER),
            &[],
        )
        .await;
    assert_eq!(connect.status(), 200);
    id
}

#[tokio::test]
async fn a_chat_delayed_chat_runs_from_start_to_the_agent_leaving() {
    let app = spawn_app().await;
    let id = confirmed_chat_delay(&app).await;

    // Seed 003: the poll-mode start answers CONNECTED at position 1.
    let (status, started) = chat(
        &app,
        &id,
        "",
        &[
            ("firstName", "Vasya"),
            ("lastName", "Pupkin"),
            ("email", "Vasya.Pupkin@genesyslab.com"),
            ("subject", "test"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["chatIxnState"], "CONNECTED");
    assert_eq!(started["transcriptPosition"], "1");
    assert_eq!(started["chatServiceMessage"], "Chat service is available");
    let session_id = started["chatSessionId"].as_str().unwrap().to_string();
    assert_eq!(session_id.len(), 16);
    assert!(started.get("userId").is_none(), "not verbose: {started}");

    let record = wait_for_state(&app, &id, "PROCESSING").await;
    assert_eq!(record["_reserved_agent"], "kristi");

    // kristi answers automatically: the customer sees her join.
    let refreshed = eventually(Duration::from_secs(5), "the agent to join", || async {
        let (_, object) = chat(&app, &id, "refresh", &[]).await;
        (!rows(&object).is_empty()).then_some(object)
    })
    .await;
    assert_eq!(refreshed["chatIxnState"], "TRANSCRIPT");
    assert_eq!(
        rows(&refreshed)[0][..3],
        ["Notice.Joined", "Kristi Sippola", "has joined the session"]
    );
    assert_eq!(rows(&refreshed)[0][4], "AGENT");
    assert_eq!(refreshed["transcriptPosition"], "2");

    // Nothing new: an empty transcriptToShow, the position unchanged.
    let (_, quiet) = chat(&app, &id, "refresh", &[]).await;
    assert!(rows(&quiet).is_empty(), "{quiet}");
    assert_eq!(quiet["transcriptPosition"], "2");

    let (status, _) = agent_post(
        &app,
        "kristi",
        &format!("chat/{id}/message"),
        json!({"text": "hello customer"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, with_message) = chat(&app, &id, "refresh", &[("message", "hello agent")]).await;
    let shown = rows(&with_message);
    assert_eq!(shown.len(), 2, "{with_message}");
    assert_eq!(
        shown[0][..3],
        ["Message.Text", "Kristi Sippola", "hello customer"]
    );
    assert_eq!(shown[1][..3], ["Message.Text", "VasyaP", "hello agent"]);
    assert_eq!(shown[1][4], "CLIENT");
    assert_eq!(with_message["transcriptPosition"], "4");

    let (_, typing) = chat(&app, &id, "startTyping", &[]).await;
    assert_eq!(
        rows(&typing)[0][..3],
        ["Notice.TypingStarted", "VasyaP", "is typing"]
    );
    let (_, stopped) = chat(&app, &id, "stopTyping", &[]).await;
    assert_eq!(
        rows(&stopped)[0][..3],
        ["Notice.TypingStopped", "VasyaP", "stopped typing"]
    );

    // The agent sees the customer's side, in order, with stable positions.
    let agent_view = agent_chat(&app, "kristi", &id).await;
    let positions: Vec<u64> = agent_view["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3, 4, 5]);

    // Replaying from the start gives the whole transcript.
    let (_, replay) = chat(&app, &id, "refresh", &[("transcriptPosition", "1")]).await;
    assert_eq!(rows(&replay).len(), 5);

    let (status, _) = agent_post(&app, "kristi", &format!("chat/{id}/leave"), json!({})).await;
    assert_eq!(status, 200);
    let (_, after) = chat(&app, &id, "refresh", &[]).await;
    assert_eq!(after["chatIxnState"], "DISCONNECTED");
    assert_eq!(after["chatServiceMessage"], "Chat was finished");
    assert_eq!(
        rows(&after)[0][..3],
        ["Notice.Left", "Kristi Sippola", "has left the session"]
    );

    let record = wait_for_state(&app, &id, "COMPLETED").await;
    assert_eq!(record["_callback_reason"], "AGENT_CONNECTED");
    // kristi's chat capacity is free again.
    eventually(Duration::from_secs(5), "kristi to be free", || async {
        let agents = json(
            app.admin(Method::GET, "/genesys/1/admin/agents")
                .send()
                .await
                .unwrap(),
        )
        .await;
        let kristi = agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "kristi")
            .unwrap()
            .clone();
        let active = kristi["active"].as_object().unwrap();
        active
            .values()
            .all(|set| set.as_array().unwrap().is_empty())
            .then_some(())
    })
    .await;

    // A closed chat takes no more messages, but its last transcript can still be read.
    let (status, refused) = chat(&app, &id, "send", &[("message", "anyone?")]).await;
    assert_eq!(status, 400, "{refused}");
    let (status, last) = chat(&app, &id, "refresh", &[("transcriptPosition", "1")]).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&last).len(), 6);
}

#[tokio::test]
async fn a_chat_delayed_chat_before_its_agent_is_503() {
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "5551234")])
        .await;
    let (status, _) = chat(&app, &id, "", &[("subject", "x")]).await;
    assert_eq!(status, 503);
    let (status, _) = chat(&app, &id, "refresh", &[]).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn an_immediate_chat_is_queued_when_it_starts_and_an_invited_agent_accepts() {
    let app = spawn_app().await;
    let id = app
        .create("chat-immediate", &[("_customer_number", "5551234")])
        .await;
    // Nobody is ready: the chat starts and waits in the queue.
    let (status, started) = chat(&app, &id, "", &[("userDisplayName", "Buzz")]).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["chatIxnState"], "CONNECTED");
    assert_eq!(detail(&app, &id).await["_callback_state"], "QUEUED");

    // amina (Support, no auto-answer) becomes ready: she is invited, then accepts.
    set_state(&app, "amina", "ready").await;
    let interactions = eventually(Duration::from_secs(5), "amina's invitation", || async {
        let list = json(
            app.admin(Method::GET, "/genesys/1/agent/amina/interactions")
                .send()
                .await
                .unwrap(),
        )
        .await;
        (list.as_array().unwrap().len() == 1 && list[0]["status"] == "invited").then_some(list)
    })
    .await;
    assert_eq!(interactions[0]["service_id"], id.as_str());
    assert_eq!(interactions[0]["chat"]["customer"]["nickname"], "Buzz");
    assert_eq!(detail(&app, &id).await["_callback_state"], "PROCESSING");

    // Not joined yet: no messages.
    let (status, _) = agent_post(
        &app,
        "amina",
        &format!("chat/{id}/message"),
        json!({"text": "hi"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = agent_post(
        &app,
        "amina",
        &format!("interactions/{id}/accept"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, joined) = chat(&app, &id, "refresh", &[]).await;
    assert_eq!(rows(&joined)[0][..2], ["Notice.Joined", "Amina Diallo"]);

    let (status, _) = agent_post(
        &app,
        "amina",
        &format!("chat/{id}/push-url"),
        json!({"url": "not a url"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = agent_post(
        &app,
        "amina",
        &format!("chat/{id}/push-url"),
        json!({"url": "https://example.com/offer"}),
    )
    .await;
    assert_eq!(status, 200);

    // The customer leaves: the service completes and amina is free.
    let (status, gone) = chat(&app, &id, "disconnect", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(gone["chatIxnState"], "DISCONNECTED");
    assert_eq!(gone["chatServiceMessage"], "Chat was finished");
    let record = wait_for_state(&app, &id, "COMPLETED").await;
    assert_eq!(record["_callback_reason"], "AGENT_CONNECTED");
    let agent_view = agent_chat(&app, "amina", &id).await;
    let kinds: Vec<&str> = agent_view["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"][0].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Notice.Joined", "Notice.PushUrl", "Notice.Left"]);
}

#[tokio::test]
async fn verbose_and_comet_replies_follow_the_seeds() {
    let app = spawn_app().await;
    let id = confirmed_chat_delay(&app).await;
    let (status, verbose) = chat(
        &app,
        &id,
        "",
        &[
            ("_verbose", "true"),
            ("notify_by", "comet"),
            ("firstName", "John"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    for key in [
        "userId",
        "secureKey",
        "chatServerHost",
        "chatWebApiPort",
        "isTLSrequired",
        "clientTimeZoneOffset",
    ] {
        assert!(verbose.get(key).is_some(), "{key} missing: {verbose}");
    }
    assert_eq!(verbose["comet_channel"], "/_genesys");
    assert_eq!(
        verbose["_chatIxnAPI_REFRESH_FROM_START_URL"],
        format!("/genesys/1/service/{id}/ixn/chat/refresh?transcriptPosition=1")
    );
    assert_eq!(
        verbose["_chatIxnAPI_SEND_URL"],
        format!("/genesys/1/service/{id}/ixn/chat/send")
    );

    // Comet mode without _verbose: the short reply (seed 000).
    let (_, short) = chat(&app, &id, "refresh", &[("message", "hello agent")]).await;
    assert_eq!(short, json!({"_id": id, "comet_channel": "/_genesys"}));
    // A second ixn/chat gives the same session.
    let (_, again) = chat(&app, &id, "", &[("_verbose", "true")]).await;
    assert_eq!(again["chatSessionId"], verbose["chatSessionId"]);
}

#[tokio::test]
async fn chat_operations_check_the_owner_and_the_fields() {
    let app = spawn_app().await;
    let id = confirmed_chat_delay(&app).await;
    let response = app
        .post_form(
            &format!("/genesys/1/service/{id}/ixn/chat"),
            Some("someone-else"),
            &[],
        )
        .await;
    assert_eq!(response.status(), 403);
    let (status, _) = chat(&app, &id, "", &[("notify_by", "carrier-pigeon")]).await;
    assert_eq!(status, 400);
    let (status, _) = chat(&app, &id, "", &[]).await;
    assert_eq!(status, 200);
    let (status, body) = chat(&app, &id, "refresh", &[("transcriptPosition", "0")]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("transcriptPosition"),
        "{body}"
    );
    let (status, body) = chat(&app, &id, "send", &[]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("message"),
        "{body}"
    );
    let (status, _) = chat(&app, &id, "dance", &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cancelling_a_queued_chat_closes_it() {
    let app = spawn_app().await;
    let id = app
        .create("chat-immediate", &[("_customer_number", "5551234")])
        .await;
    let (status, _) = chat(&app, &id, "", &[]).await;
    assert_eq!(status, 200);
    let response = app
        .request(
            Method::DELETE,
            &format!("/genesys/1/service/callback/chat-immediate/{id}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, after) = chat(&app, &id, "refresh", &[]).await;
    assert_eq!(after["chatIxnState"], "DISCONNECTED", "{after}");
    assert_eq!(rows(&after)[0][2], "The chat was cancelled.");
    let (status, _) = chat(&app, &id, "send", &[("message", "hello?")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn two_chat_starts_at_once_make_one_session() {
    let app = spawn_app().await;
    let id = app
        .create("chat-immediate", &[("_customer_number", "5551234")])
        .await;
    let (first, second) = tokio::join!(chat(&app, &id, "", &[]), chat(&app, &id, "", &[]));
    assert_eq!((first.0, second.0), (200, 200));
    assert_eq!(first.1["chatSessionId"], second.1["chatSessionId"]);
    // The customer's own notices are shown once, then not again.
    let (_, typing) = chat(&app, &id, "startTyping", &[]).await;
    assert_eq!(rows(&typing).len(), 1);
    let (_, quiet) = chat(&app, &id, "refresh", &[]).await;
    assert!(rows(&quiet).is_empty(), "{quiet}");
}

#[tokio::test]
async fn comet_mode_needs_a_gms_user_to_push_to() {
    // Only a service created without a gms_user has nobody to push to.
    let app = spawn_app_with(|config| config.security.allow_anonymous_services = true).await;
    let response = app
        .post_form(
            "/genesys/1/service/request-chat",
            None,
            &[("_verbose", "false")],
        )
        .await;
    let id = json(response).await["_id"].as_str().unwrap().to_string();
    let response = app
        .post_form(
            &format!("/genesys/1/service/{id}/ixn/chat"),
            None,
            &[("notify_by", "comet")],
        )
        .await;
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert!(
        body["message"].as_str().unwrap().contains("gms_user"),
        "{body}"
    );
}
