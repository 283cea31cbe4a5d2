//! CometD on `/genesys/cometd`: the exchanges of seed 003 over long-polling, and the websocket
//! transport.
//!
//! Pushes themselves (the agent-available push, chat refreshes, `gms_user` isolation, replay
//! after a restart) are tested end to end in `push.rs`. Here a held connect is released by
//! the client's next connect, by its timeout and by the server's shutdown.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, json, spawn_app, spawn_app_with, TestApp, GMS_USER};

/// Seed 003's handshake body.
fn handshake_body() -> String {
    json!([{"version":"1.0","minimumVersion":"0.9","channel":"/meta/handshake",
            "supportedConnectionTypes":["long-polling","callback-polling"],
            "advice":{"timeout":60000,"interval":0},"id":"1"}])
    .to_string()
}

/// POSTs `body` to `/genesys/cometd{suffix}` as `gms_user`; checks the reply is 200 JSON with
/// GMS's no-cache headers and returns it.
async fn cometd(app: &TestApp, suffix: &str, gms_user: Option<&str>, body: &str) -> Value {
    let mut request = app
        .request(Method::POST, &format!("/genesys/cometd{suffix}"))
        .header("Content-Type", "application/json;charset=UTF-8")
        .body(body.to_string());
    if let Some(user) = gms_user {
        request = request.header("gms_user", user);
    }
    let response = request.send().await.expect("request sent");
    assert_eq!(
        response.status(),
        200,
        "POST /genesys/cometd{suffix} {body}"
    );
    let headers = response.headers();
    assert_eq!(
        headers["content-type"], "application/json;charset=UTF-8",
        "content type"
    );
    assert_eq!(headers["cache-control"], "no-cache, no-store");
    assert_eq!(headers["pragma"], "no-cache");
    json(response).await
}

/// Handshakes as the seed's user on `/genesys/cometd/handshake`; returns the client id.
async fn handshake(app: &TestApp) -> String {
    let reply = cometd(app, "/handshake", Some(GMS_USER), &handshake_body()).await;
    reply[0]["clientId"]
        .as_str()
        .unwrap_or_else(|| panic!("clientId in {reply}"))
        .to_string()
}

fn connect(client_id: &str, id: &str) -> String {
    json!([{"channel":"/meta/connect","connectionType":"long-polling","id":id,"clientId":client_id}])
        .to_string()
}

#[tokio::test]
async fn handshake_answers_as_in_seed_003() {
    let app = spawn_app().await;
    let reply = cometd(&app, "/handshake", Some(GMS_USER), &handshake_body()).await;
    let reply = reply.as_array().expect("an array").first().expect("one");
    assert_eq!(reply["id"], json!("1"));
    assert_eq!(reply["channel"], json!("/meta/handshake"));
    assert_eq!(reply["successful"], json!(true));
    assert_eq!(reply["version"], json!("1.0"));
    assert_eq!(reply["minimumVersion"], json!("1.0"));
    assert_eq!(
        reply["supportedConnectionTypes"],
        json!(["websocket", "long-polling", "callback-polling"])
    );
    assert!(reply["clientId"].as_str().unwrap().len() >= 25);
    assert_eq!(
        reply["advice"],
        json!({"reconnect":"retry","interval":0,"timeout":60000})
    );
}

#[tokio::test]
async fn the_quick_start_sequence_works_with_bare_object_bodies() {
    let app = spawn_app().await;
    let reply = cometd(
        &app,
        "",
        Some("BuzzBrain"),
        r#"{"version":"1.0","minimumVersion":"0.9","channel":"/meta/handshake","id":"0"}"#,
    )
    .await;
    assert_eq!(reply[0]["successful"], json!(true), "{reply}");
    let client_id = reply[0]["clientId"].as_str().unwrap().to_string();

    // The first connect (before any subscription) is answered at once, with advice.
    let reply = cometd(
        &app,
        "",
        Some("BuzzBrain"),
        &json!({"channel":"/meta/connect","clientId":client_id,"id":"1","connectionType":"long-polling"})
            .to_string(),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"1","successful":true,"channel":"/meta/connect",
                "advice":{"interval":0,"reconnect":"retry","timeout":60000}}])
    );

    let reply = cometd(
        &app,
        "",
        Some("BuzzBrain"),
        &json!([{"channel":"/meta/subscribe","subscription":"/_genesys","clientId":client_id,"id":"2"}])
            .to_string(),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"2","subscription":"/_genesys","successful":true,"channel":"/meta/subscribe"}])
    );
}

#[tokio::test]
async fn subscribe_connect_unsubscribe_and_disconnect_answer_as_in_seed_003() {
    let app = spawn_app().await;
    let client_id = handshake(&app).await;

    let reply = cometd(
        &app,
        "/",
        Some(GMS_USER),
        &json!([{"channel":"/meta/subscribe","subscription":"/_genesys","id":"2","clientId":client_id}])
            .to_string(),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"2","subscription":"/_genesys","successful":true,"channel":"/meta/subscribe"}])
    );

    let reply = cometd(
        &app,
        "/connect",
        Some(GMS_USER),
        &json!([{"channel":"/meta/connect","connectionType":"long-polling","advice":{"timeout":0},
                 "id":"3","clientId":client_id}])
        .to_string(),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"3","successful":true,"channel":"/meta/connect",
                "advice":{"interval":0,"reconnect":"retry","timeout":60000}}])
    );

    let reply = cometd(
        &app,
        "/",
        Some(GMS_USER),
        &json!([{"channel":"/meta/unsubscribe","subscription":"/_genesys","id":"9","clientId":client_id}])
            .to_string(),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"9","subscription":"/_genesys","successful":true,"channel":"/meta/unsubscribe"}])
    );

    let reply = cometd(
        &app,
        "/disconnect",
        Some(GMS_USER),
        &json!([{"channel":"/meta/disconnect","id":"10","clientId":client_id}]).to_string(),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"10","successful":true,"channel":"/meta/disconnect"}])
    );
}

#[tokio::test]
async fn an_unknown_client_is_told_to_handshake_again_and_can() {
    let app = spawn_app().await;
    let reply = cometd(
        &app,
        "/connect",
        Some(GMS_USER),
        &connect("3vym301lsjdtc218qabm5w0z8yb", "4"),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"4","successful":false,"channel":"/meta/connect","error":"402::Unknown client",
                "advice":{"reconnect":"handshake","interval":0}}])
    );
    let client_id = handshake(&app).await;
    let reply = cometd(&app, "/connect", Some(GMS_USER), &connect(&client_id, "5")).await;
    assert_eq!(reply[0]["successful"], json!(true), "{reply}");
}

#[tokio::test]
async fn a_client_used_with_another_gms_user_is_unknown() {
    let app = spawn_app().await;
    let client_id = handshake(&app).await;
    for user in [Some("someone-else"), None] {
        let reply = cometd(&app, "/connect", user, &connect(&client_id, "4")).await;
        assert_eq!(reply[0]["error"], json!("402::Unknown client"), "{user:?}");
    }
}

#[tokio::test]
async fn a_handshake_without_gms_user_is_refused() {
    let app = spawn_app().await;
    let reply = cometd(&app, "/handshake", None, &handshake_body()).await;
    assert_eq!(reply[0]["successful"], json!(false));
    assert_eq!(reply[0]["error"], json!("403::gms_user header required"));
    assert!(reply[0].get("clientId").is_none());
}

#[tokio::test]
async fn a_batch_gets_one_reply_per_message_in_order() {
    let app = spawn_app().await;
    let client_id = handshake(&app).await;
    let reply = cometd(
        &app,
        "",
        Some(GMS_USER),
        &json!([
            {"channel":"/meta/subscribe","subscription":"/_genesys","id":"2","clientId":client_id},
            {"channel":"/meta/subscribe","subscription":"/private","id":"3","clientId":client_id},
            {"channel":"/meta/connect","connectionType":"long-polling","id":"4","clientId":client_id}
        ])
        .to_string(),
    )
    .await;
    let replies = reply.as_array().expect("array");
    assert_eq!(replies.len(), 3, "{reply}");
    assert_eq!(replies[0]["successful"], json!(true));
    assert_eq!(replies[1]["successful"], json!(false));
    assert!(replies[1]["error"].as_str().unwrap().starts_with("403::"));
    assert_eq!(replies[2]["channel"], json!("/meta/connect"));
    assert_eq!(replies[2]["successful"], json!(true));
}

#[tokio::test]
async fn bodies_that_are_not_bayeux_are_400_naming_the_problem() {
    let app = spawn_app().await;
    for (body, expected) in [
        ("not json", "not valid JSON"),
        ("[]", "empty array"),
        (r#"[{"id":"1"}]"#, "`channel` is missing"),
        ("", "empty"),
    ] {
        let response = app
            .request(Method::POST, "/genesys/cometd/connect")
            .header("gms_user", GMS_USER)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let error = json(response).await;
        assert_eq!(error["exception"], json!("InvalidRequest"), "{body:?}");
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{body:?}: {error}"
        );
    }
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/genesys/cometd/publish")
        .body(handshake_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "unknown suffix");
    let response = app.get("/genesys/cometd", Some(GMS_USER)).await;
    assert_eq!(response.status(), 400, "GET without upgrade or message");
    let error = json(response).await;
    assert!(
        error["message"].as_str().unwrap().contains("`message`"),
        "{error}"
    );
    let response = app
        .get("/genesys/cometd?jsonp=alert(1)&message=[]", Some(GMS_USER))
        .await;
    assert_eq!(response.status(), 400, "not a function name");
}

#[tokio::test]
async fn callback_polling_wraps_the_reply_in_the_jsonp_function() {
    let app = spawn_app().await;
    let message = r#"[{"channel":"/meta/handshake","version":"1.0","id":"1","supportedConnectionTypes":["callback-polling"]}]"#;
    let response = app
        .request(Method::GET, "/genesys/cometd/handshake")
        .query(&[("jsonp", "_cometd_callback_1"), ("message", message)])
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript;charset=UTF-8"
    );
    let text = response.text().await.unwrap();
    let inner = text
        .strip_prefix("_cometd_callback_1(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a call of the callback: {text}"));
    let reply: Value = serde_json::from_str(inner).unwrap();
    assert_eq!(reply[0]["successful"], json!(true), "{reply}");
}

#[tokio::test]
async fn a_held_connect_is_released_by_the_next_connect_of_the_client() {
    let app = spawn_app().await;
    let client_id = handshake(&app).await;
    cometd(&app, "/connect", Some(GMS_USER), &connect(&client_id, "2")).await;

    let started = Instant::now();
    let held = tokio::spawn({
        let request = app
            .request(Method::POST, "/genesys/cometd/connect")
            .header("gms_user", GMS_USER)
            .body(connect(&client_id, "3"));
        async move { request.send().await.expect("sent").json::<Value>().await }
    });
    // Each immediate connect releases a connect held for the same client; keep sending them
    // until the held one has come back.
    let immediate =
        json!([{"channel":"/meta/connect","advice":{"timeout":0},"clientId":client_id}])
            .to_string();
    eventually(Duration::from_secs(10), "the held connect released", || {
        let (app, immediate, held) = (&app, &immediate, &held);
        async move {
            cometd(app, "/connect", Some(GMS_USER), immediate).await;
            held.is_finished().then_some(())
        }
    })
    .await;
    let reply = held.await.unwrap().expect("JSON");
    assert_eq!(
        reply,
        json!([{"id":"3","successful":true,"channel":"/meta/connect"}])
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "not its timeout"
    );
}

#[tokio::test]
async fn a_held_connect_is_answered_empty_at_the_configured_timeout() {
    let app = spawn_app_with(|config| config.cometd.timeout_ms = 200).await;
    let client_id = handshake(&app).await;
    let first = cometd(&app, "/connect", Some(GMS_USER), &connect(&client_id, "2")).await;
    assert_eq!(
        first[0]["advice"]["timeout"],
        json!(200),
        "advice follows the config"
    );

    let started = Instant::now();
    let reply = cometd(&app, "/connect", Some(GMS_USER), &connect(&client_id, "3")).await;
    assert!(started.elapsed() >= Duration::from_millis(150), "held");
    assert_eq!(
        reply,
        json!([{"id":"3","successful":true,"channel":"/meta/connect"}])
    );
}

#[tokio::test]
async fn clients_that_stop_connecting_are_dropped_after_the_max_interval() {
    let app = spawn_app_with(|config| config.cometd.max_interval_ms = 200).await;
    let client_id = handshake(&app).await;
    // Time has to pass without the client being seen, so this test waits instead of polling.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reply = cometd(&app, "/connect", Some(GMS_USER), &connect(&client_id, "2")).await;
    assert_eq!(reply[0]["error"], json!("402::Unknown client"));
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_websocket(app: &TestApp, gms_user: Option<&str>) -> Socket {
    let mut request = format!("ws://{}/genesys/cometd", app.host)
        .into_client_request()
        .expect("a websocket request");
    if let Some(user) = gms_user {
        request
            .headers_mut()
            .insert("gms_user", user.parse().expect("header value"));
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    assert_eq!(response.status(), 101);
    socket
}

async fn ws_send(socket: &mut Socket, body: Value) {
    socket
        .send(Message::text(body.to_string()))
        .await
        .expect("frame sent");
}

/// The next text frame as JSON (failing after 10 s).
async fn ws_next(socket: &mut Socket) -> Value {
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a frame within 10 s")
        .expect("socket open")
        .expect("a frame");
    match frame {
        Message::Text(text) => serde_json::from_str(&text).expect("JSON frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn the_websocket_transport_speaks_the_same_bayeux() {
    let app = spawn_app().await;
    let mut socket = open_websocket(&app, Some(GMS_USER)).await;

    ws_send(
        &mut socket,
        json!([{"version":"1.0","minimumVersion":"1.0","channel":"/meta/handshake",
                "supportedConnectionTypes":["websocket","long-polling"],"id":"1"}]),
    )
    .await;
    let reply = ws_next(&mut socket).await;
    assert_eq!(reply[0]["successful"], json!(true), "{reply}");
    let client_id = reply[0]["clientId"].as_str().unwrap().to_string();

    ws_send(
        &mut socket,
        json!([{"channel":"/meta/subscribe","subscription":"/_genesys","id":"2","clientId":client_id},
               {"channel":"/meta/connect","connectionType":"websocket","advice":{"timeout":0},"id":"3","clientId":client_id}]),
    )
    .await;
    let reply = ws_next(&mut socket).await;
    assert_eq!(reply[0]["subscription"], json!("/_genesys"), "{reply}");
    assert_eq!(reply[1]["channel"], json!("/meta/connect"), "{reply}");
    assert_eq!(reply[1]["successful"], json!(true), "{reply}");

    // A held connect does not block the socket: the next frame is answered meanwhile, and a
    // second connect releases the first.
    ws_send(
        &mut socket,
        json!([{"channel":"/meta/connect","connectionType":"websocket","id":"4","clientId":client_id}]),
    )
    .await;
    ws_send(
        &mut socket,
        json!([{"channel":"/meta/unsubscribe","subscription":"/_genesys","id":"5","clientId":client_id}]),
    )
    .await;
    let reply = ws_next(&mut socket).await;
    assert_eq!(
        reply[0]["id"],
        json!("5"),
        "answered while 4 is held: {reply}"
    );
    ws_send(
        &mut socket,
        json!([{"channel":"/meta/connect","connectionType":"websocket","id":"6","clientId":client_id}]),
    )
    .await;
    let reply = ws_next(&mut socket).await;
    assert_eq!(
        reply,
        json!([{"id":"4","successful":true,"channel":"/meta/connect"}])
    );
}

#[tokio::test]
async fn a_websocket_without_gms_user_cannot_handshake() {
    let app = spawn_app().await;
    let mut socket = open_websocket(&app, None).await;
    ws_send(&mut socket, json!({"channel":"/meta/handshake","id":"1"})).await;
    let reply = ws_next(&mut socket).await;
    assert_eq!(reply[0]["error"], json!("403::gms_user header required"));
}

#[tokio::test]
async fn a_client_closing_the_websocket_gets_its_close_frame_answered() {
    let app = spawn_app().await;
    let mut socket = open_websocket(&app, Some(GMS_USER)).await;
    socket
        .send(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1000.into(),
                reason: "bye".into(),
            },
        )))
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("an answer within 10 s");
    match frame {
        Some(Ok(Message::Close(Some(close)))) => assert_eq!(u16::from(close.code), 1000),
        other => panic!("expected the close frame echoed with 1000, got {other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_frame_that_is_not_bayeux_closes_the_socket_saying_why() {
    let app = spawn_app().await;
    let mut socket = open_websocket(&app, Some(GMS_USER)).await;
    socket.send(Message::text("nonsense")).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a frame")
        .expect("socket open")
        .expect("a frame");
    match frame {
        Message::Close(Some(close)) => {
            assert_eq!(u16::from(close.code), 1007);
            assert!(close.reason.contains("not valid JSON"), "{}", close.reason);
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn stopping_the_server_answers_held_connects_at_once() {
    let app = spawn_app().await;
    let mut socket = open_websocket(&app, Some(GMS_USER)).await;
    ws_send(&mut socket, json!({"channel":"/meta/handshake","id":"1"})).await;
    let client_id = ws_next(&mut socket).await[0]["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    ws_send(
        &mut socket,
        json!({"channel":"/meta/connect","id":"2","clientId":client_id}),
    )
    .await;
    ws_next(&mut socket).await;
    // Frames of one socket are handled in order: once 4 is answered, 3 is held.
    ws_send(
        &mut socket,
        json!({"channel":"/meta/connect","id":"3","clientId":client_id}),
    )
    .await;
    ws_send(
        &mut socket,
        json!({"channel":"/meta/subscribe","subscription":"/_genesys","id":"4","clientId":client_id}),
    )
    .await;
    assert_eq!(ws_next(&mut socket).await[0]["id"], json!("4"));

    let started = Instant::now();
    app.stop().await;
    let reply = ws_next(&mut socket).await;
    assert_eq!(
        reply,
        json!([{"id":"3","successful":true,"channel":"/meta/connect"}])
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not held to its timeout"
    );
}
