//! CometD and connection abuse (issue 9, items 10 and 11): a cheap request must not make the
//! server keep state or descriptors it cannot afford.
//!
//! Item 10: a POST full of handshakes, many clients for one `gms_user`, more clients than the
//! server holds. Item 11: connections that send nothing, send headers one byte at a time, sit
//! idle between requests, or outnumber `[http] max_connections`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{json, spawn_app_with, TestApp};

/// POSTs `body` to `/genesys/cometd` as `gms_user`; returns the reply array.
async fn cometd(app: &TestApp, gms_user: &str, body: &Value) -> Value {
    let response = app
        .request(Method::POST, "/genesys/cometd")
        .header("Content-Type", "application/json;charset=UTF-8")
        .header("gms_user", gms_user)
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "POST /genesys/cometd {body}");
    json(response).await
}

/// One handshake as `gms_user`; returns its reply.
async fn handshake(app: &TestApp, gms_user: &str) -> Value {
    let reply = cometd(
        app,
        gms_user,
        &json!([{"version":"1.0","channel":"/meta/handshake",
                 "supportedConnectionTypes":["long-polling"],"id":"1"}]),
    )
    .await;
    reply[0].clone()
}

/// The Bayeux error code of a reply's `error` (`"403:args:message"` -> 403).
fn error_code(reply: &Value) -> Option<u16> {
    reply["error"].as_str()?.split(':').next()?.parse().ok()
}

#[tokio::test]
async fn a_post_with_1400_handshakes_creates_at_most_one_client() {
    let app = spawn_app_with(|config| config.cometd.max_clients_per_user = 10_000).await;
    let batch: Vec<Value> = (0..1400)
        .map(|i| json!({"channel":"/meta/handshake","id":i.to_string()}))
        .collect();

    let replies = cometd(&app, "mallory", &Value::Array(batch)).await;

    let replies = replies.as_array().expect("an array");
    assert_eq!(replies.len(), 1400, "one reply per message");
    let served: Vec<&Value> = replies
        .iter()
        .filter(|r| r["successful"] == json!(true))
        .collect();
    assert_eq!(served.len(), 1, "exactly one handshake is served");
    assert_eq!(replies[0]["successful"], json!(true), "the first one");
    assert!(replies[0]["clientId"].is_string());
    for reply in &replies[1..] {
        assert_eq!(reply["successful"], json!(false), "{reply}");
        assert_eq!(error_code(reply), Some(400), "{reply}");
        assert!(reply["clientId"].is_null(), "{reply}");
    }
}

#[tokio::test]
async fn the_17th_client_of_one_gms_user_gets_a_bayeux_error_while_others_still_handshake() {
    let app = spawn_app_with(|_| {}).await;
    let mut alice = Vec::new();
    for n in 1..=16 {
        let reply = handshake(&app, "alice").await;
        assert_eq!(reply["successful"], json!(true), "client {n}: {reply}");
        alice.push(reply["clientId"].as_str().unwrap().to_string());
    }

    let refused = handshake(&app, "alice").await;
    assert_eq!(refused["successful"], json!(false), "{refused}");
    assert_eq!(error_code(&refused), Some(403), "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("max_clients_per_user"), "{error}");
    assert!(refused["clientId"].is_null(), "{refused}");
    assert_eq!(
        refused["advice"]["reconnect"],
        json!("handshake"),
        "the official client retries the handshake after the advised interval"
    );
    assert!(refused["advice"]["interval"].as_u64().unwrap() > 0);

    let bob = handshake(&app, "bob").await;
    assert_eq!(bob["successful"], json!(true), "another user: {bob}");

    // One of alice's clients leaves: there is room for a new one again.
    let bye = cometd(
        &app,
        "alice",
        &json!([{"channel":"/meta/disconnect","clientId":alice[0],"id":"9"}]),
    )
    .await;
    assert_eq!(bye[0]["successful"], json!(true), "{bye}");
    let again = handshake(&app, "alice").await;
    assert_eq!(
        again["successful"],
        json!(true),
        "after a disconnect: {again}"
    );
}

#[tokio::test]
async fn max_clients_is_honoured_across_users() {
    let app = spawn_app_with(|config| config.cometd.max_clients = 5).await;
    for n in 0..5 {
        let reply = handshake(&app, &format!("user-{n}")).await;
        assert_eq!(reply["successful"], json!(true), "client {n}: {reply}");
    }

    let refused = handshake(&app, "user-5").await;

    assert_eq!(refused["successful"], json!(false), "{refused}");
    assert_eq!(error_code(&refused), Some(503), "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("max_clients"),
        "{refused}"
    );
    assert_eq!(refused["advice"]["reconnect"], json!("handshake"));
}
