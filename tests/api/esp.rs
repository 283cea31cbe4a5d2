//! ESP requests to a chat session (seeds 002 and 004), idle control, and a chat that lives
//! through a `kill -9`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::chat::{agent_chat, chat, confirmed_chat_delay};
use crate::helpers::wait_for_state;
use crate::helpers::{eventually, json, spawn_app, ServerProcess, TestApp, ADMIN_TOKEN, GMS_USER};

async fn esp(app: &TestApp, target: &str, method: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let response = app
        .admin(
            Method::POST,
            &format!("/genesys/1/admin/chat/{target}/esp/{method}"),
        )
        .form(params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json(response).await)
}

/// A started chat with kristi joined; returns (service id, chat session id).
async fn joined_chat(app: &TestApp) -> (String, String) {
    let id = confirmed_chat_delay(app).await;
    let (status, started) = chat(app, &id, "", &[("firstName", "Ann")]).await;
    assert_eq!(status, 200, "{started}");
    eventually(Duration::from_secs(5), "kristi to join", || async {
        let view = agent_chat(app, "kristi", &id).await;
        (view["agent"]["joined"] == true).then_some(())
    })
    .await;
    let session = started["chatSessionId"].as_str().unwrap().to_string();
    (id, session)
}

fn customer_kinds(object: &Value) -> Vec<String> {
    object["transcriptToShow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| format!("{}:{}", row[0].as_str().unwrap(), row[2].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn messages_and_notices_reach_whom_their_visibility_allows() {
    let app = spawn_app().await;
    let (id, session) = joined_chat(&app).await;

    let (status, reply) = esp(
        &app,
        &session,
        "Message",
        &[
            ("MessageText", "agent will be with you shortly"),
            ("Nickname", "workflow"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    // Joined is position 1 (ScriptPos 0); this message is ScriptPos 1.
    assert_eq!(reply["ScriptPos"], 1);
    assert!(reply["OccuredAt"].as_str().unwrap().ends_with('Z'));

    let (_, hidden) = esp(
        &app,
        &session,
        "Message",
        &[
            ("MessageText", "VIP customer"),
            ("Visibility", "INT"),
            ("MessageType", "note"),
            ("EventAttributes", "tier:gold|score.value:9"),
        ],
    )
    .await;
    assert_eq!(hidden["ScriptPos"], 2);
    let (_, supervisors) = esp(
        &app,
        &session,
        "Message",
        &[("MessageText", "watch this one"), ("Visibility", "VIP")],
    )
    .await;
    assert_eq!(supervisors["ScriptPos"], 3);

    let (status, bad_url) = esp(
        &app,
        &session,
        "Notice",
        &[
            ("NoticeType", "USER_PUSHED_URL"),
            ("NoticeText", "not a url"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{bad_url}");
    let (status, _) = esp(
        &app,
        &session,
        "Notice",
        &[
            ("NoticeType", "USER_PUSHED_URL"),
            ("NoticeText", "https://example.com/offer"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = esp(
        &app,
        &session,
        "Notice",
        &[("NoticeType", "USER_CUSTOM"), ("NoticeText", "opaque")],
    )
    .await;
    assert_eq!(status, 200);

    // The customer sees ALL only; the agent sees everything, attributes parsed and nested.
    let (_, seen) = chat(&app, &id, "refresh", &[("transcriptPosition", "1")]).await;
    assert_eq!(
        customer_kinds(&seen),
        [
            "Notice.Joined:has joined the session",
            "Message.Text:agent will be with you shortly",
            "Notice.PushUrl:https://example.com/offer",
            "Notice.Custom:opaque",
        ]
    );
    let agent = agent_chat(&app, "kristi", &id).await;
    let hidden_event = &agent["transcript"][2];
    assert_eq!(hidden_event["visibility"], "INT");
    assert_eq!(hidden_event["message_type"], "note");
    assert_eq!(
        hidden_event["attributes"],
        json!({"tier": "gold", "score": {"value": "9"}})
    );
    assert_eq!(agent["transcript"][3]["visibility"], "VIP");
    // The admin detail shows the whole record: notifications and transcript too.
    let detail = crate::helpers::detail(&app, &id).await;
    assert_eq!(detail["chat"]["transcript"].as_array().unwrap().len(), 6);
    let notifications = detail["notifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 1, "{detail}");
    assert_eq!(
        notifications[0]["tag"],
        format!("service.agentavailable.{id}")
    );
    assert_eq!(agent["transcript"][1]["row"][1], "workflow");
    assert_eq!(agent["transcript"][1]["row"][4], "EXTERNAL");
}

#[tokio::test]
async fn esp_answers_name_the_bad_parameter_and_find_sessions_both_ways() {
    let app = spawn_app().await;
    let (id, session) = joined_chat(&app).await;
    let (status, body) = esp(&app, &session, "Message", &[]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("MessageText"),
        "{body}"
    );
    let (status, body) = esp(
        &app,
        &session,
        "Message",
        &[("MessageText", "x"), ("Visibility", "SECRET")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("Visibility"),
        "{body}"
    );
    let (status, body) = esp(
        &app,
        &session,
        "Message",
        &[("MessageText", "x"), ("EventAttributes", "a:1|a.b:2")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("EventAttributes"),
        "{body}"
    );
    let (status, body) = esp(&app, &session, "Dance", &[]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("GetSessionInfo"),
        "{body}"
    );
    let (status, _) = esp(&app, &session, "IdleControlConfigure", &[]).await;
    assert_eq!(status, 400);
    let (status, _) = esp(&app, "no-such-session", "GetSessionInfo", &[]).await;
    assert_eq!(status, 404);

    // By service id, and by an explicit InteractionId over a path that names nothing.
    let (status, info) = esp(&app, &id, "GetSessionInfo", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(info["SessionInfo"]["IsRestored"], 0);
    assert!(info["SessionInfo"]["CreatedAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let (status, _) = esp(
        &app,
        "whatever",
        "GetSessionInfo",
        &[("InteractionId", &id)],
    )
    .await;
    assert_eq!(status, 200);

    let (status, hold) = esp(&app, &session, "PlaceOnHold", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        hold.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["OccuredAt"]
    );
    let (status, _) = esp(
        &app,
        &session,
        "ConfigureSession",
        &[("GCTI_LanguageCode", "fr")],
    )
    .await;
    assert_eq!(status, 200);
    // Without the admin token: 401/403, never the session.
    let response = app
        .request(
            Method::POST,
            &format!("/genesys/1/admin/chat/{session}/esp/GetSessionInfo"),
        )
        .send()
        .await
        .unwrap();
    assert!(matches!(response.status().as_u16(), 401 | 403));
}

#[tokio::test]
async fn close_session_respects_clo_self_no_agents_and_completes_the_service() {
    let app = spawn_app().await;
    let (id, session) = joined_chat(&app).await;
    let (_, kept) = esp(
        &app,
        &session,
        "CloseSession",
        &[("CloSelfNoAgents", "true")],
    )
    .await;
    assert_eq!(kept["IsClosed"], 0, "kristi is still in it");
    // Only `true` is true.
    let (_, closed) = esp(
        &app,
        &session,
        "CloseSession",
        &[("CloSelfNoAgents", "TRUE")],
    )
    .await;
    assert_eq!(closed["IsClosed"], 1);
    let record = wait_for_state(&app, &id, "COMPLETED").await;
    assert_eq!(record["_callback_reason"], "AGENT_CONNECTED");
    let (_, after) = chat(&app, &id, "refresh", &[]).await;
    assert_eq!(after["chatIxnState"], "DISCONNECTED");
    // Closed: nothing more can be posted, but the session can still be asked about.
    let (status, _) = esp(&app, &session, "Message", &[("MessageText", "late")]).await;
    assert_eq!(status, 400);
    let (status, again) = esp(&app, &session, "CloseSession", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(again["IsClosed"], 1);
}

#[tokio::test]
async fn idle_control_alerts_then_closes_an_inactive_chat() {
    let app = spawn_app().await;
    let (id, session) = joined_chat(&app).await;
    let (status, body) = esp(
        &app,
        &session,
        "IdleControlConfigure",
        &[
            ("enabled", "true"),
            ("timeout-alert", "1"),
            ("message-alert", "Still there?"),
            ("timeout-close", "2"),
            ("message-close", "Closed for inactivity"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Out of order timeouts are refused, naming the parameter.
    let (status, body) = esp(
        &app,
        &session,
        "IdleControlConfigure",
        &[("timeout-alert", "5"), ("timeout-close", "3")],
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let record = wait_for_state(&app, &id, "COMPLETED").await;
    assert_eq!(record["_callback_reason"], "AGENT_CONNECTED");
    let (_, last) = chat(&app, &id, "refresh", &[("transcriptPosition", "1")]).await;
    assert_eq!(last["chatIxnState"], "DISCONNECTED");
    assert_eq!(
        customer_kinds(&last),
        [
            "Notice.Joined:has joined the session",
            "Message.Text:Still there?",
            "Message.Text:Closed for inactivity",
        ]
    );
    assert_eq!(last["transcriptToShow"][1][4], "EXTERNAL");
}

#[tokio::test]
async fn a_chat_survives_kill_9_with_its_positions_and_reports_being_restored() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let base = server.address.clone();
    let admin = |method: Method, path: String| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
    };
    let response = admin(Method::POST, "/genesys/1/agent/kristi/state".into())
        .json(&json!({"state": "ready"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let created: Value = http
        .post(format!("{base}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "5551234")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["_id"].as_str().unwrap().to_string();
    let post = |path: String, fields: Vec<(&'static str, &'static str)>| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http
                .post(url)
                .header("gms_user", GMS_USER)
                .form(&fields)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    eventually(Duration::from_secs(10), "a reservation", || async {
        let (status, _) = post(format!("/genesys/1/service/{id}/connect"), vec![]).await;
        (status == 200).then_some(())
    })
    .await;
    let (status, started) = post(format!("/genesys/1/service/{id}/ixn/chat"), vec![]).await;
    assert_eq!(status, 200, "{started}");
    let (_, sent) = post(
        format!("/genesys/1/service/{id}/ixn/chat/refresh"),
        vec![("message", "before the crash")],
    )
    .await;
    let before: u64 = sent["transcriptPosition"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(before >= 2, "{sent}");
    server.kill9();

    let server = ServerProcess::start(dir.path(), &[]);
    let base = server.address.clone();
    let url = |path: String| format!("{base}{path}");
    let replay: Value = http
        .post(url(format!("/genesys/1/service/{id}/ixn/chat/refresh")))
        .header("gms_user", GMS_USER)
        .form(&[("transcriptPosition", "1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replay["transcriptPosition"], before.to_string());
    let texts: Vec<&str> = replay["transcriptToShow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[2].as_str().unwrap())
        .collect();
    assert_eq!(texts.last(), Some(&"before the crash"));

    let info: Value = http
        .post(url(format!(
            "/genesys/1/admin/chat/{id}/esp/GetSessionInfo"
        )))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["SessionInfo"]["IsRestored"], 1, "{info}");
    // The chat goes on after the restart, numbered after what was there.
    let response = http
        .post(url(format!("/genesys/1/agent/kristi/chat/{id}/message")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"text": "after the crash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event: Value = response.json().await.unwrap();
    assert_eq!(event["transcriptPosition"], before);
    server.kill9();
}
