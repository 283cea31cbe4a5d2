//! The GMS Notification API (issue 15): subscriptions to tagged events (JSON only), and
//! events published to them over CometD, httpcb and customhttp.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use warp::Filter;

use crate::helpers::{
    eventually, json, spawn_app, spawn_app_with, spawn_app_with_clock_and, ServerProcess, TestApp,
    GMS_USER,
};

const OTHER_USER: &str = "someone-else";

/// A server whose HTTP callbacks may reach this test's loopback receivers.
async fn spawn_app_reaching_loopback() -> TestApp {
    spawn_app_with(|config| {
        config.httpcb.backoff = Duration::from_millis(10);
        config.httpcb.allow = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await
}

/// What a receiver got: content type, authorization header, body.
type Received = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// A tiny HTTP server on a free port recording every POST to `/hook`.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let route = warp::path("hook")
        .and(warp::post())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::bytes())
        .map(
            move |kind: Option<String>, auth: Option<String>, body: bytes::Bytes| {
                log.lock().unwrap().push((
                    kind.unwrap_or_default(),
                    auth,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                warp::reply()
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}/hook"), received)
}

async fn subscribe(app: &TestApp, gms_user: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, "/genesys/1/notification/subscription")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(user) = gms_user {
        request = request.header("gms_user", user);
    }
    request.send().await.expect("request sent")
}

async fn subscribed(app: &TestApp, gms_user: Option<&str>, body: Value) -> String {
    let response = subscribe(app, gms_user, body.clone()).await;
    assert_eq!(response.status(), 200, "subscribe {body}");
    json(response).await["id"].as_str().expect("id").to_string()
}

async fn publish(app: &TestApp, body: Value) -> Value {
    let response = app
        .admin(Method::POST, "/genesys/1/notification/publish")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "publish {body}");
    json(response).await
}

async fn unsubscribe(app: &TestApp, id: &str, gms_user: Option<&str>) -> reqwest::StatusCode {
    let mut request = app.request(
        Method::DELETE,
        &format!("/genesys/1/notification/subscription/{id}"),
    );
    if let Some(user) = gms_user {
        request = request.header("gms_user", user);
    }
    request.send().await.expect("request sent").status()
}

fn httpcb(url: &str, filter: &str) -> Value {
    json!({"subscriberId":"ors-1","providerName":"httpcb-provider","filter":filter,"expire":600,
        "notificationDetails":{"deviceId":url,"type":"httpcb","properties":{}}})
}

#[tokio::test]
async fn anything_but_json_is_415() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let form = app
        .post_form(
            "/genesys/1/notification/subscription",
            Some(GMS_USER),
            &[("subscriberId", "x")],
        )
        .await;
    let untyped = app
        .request(Method::POST, "/genesys/1/notification/subscription")
        .body(r#"{"subscriberId":"x"}"#)
        .send()
        .await
        .unwrap();
    let published_form = app
        .admin(Method::POST, "/genesys/1/notification/publish")
        .form(&[("message", "m"), ("tag", "t")])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(form.status(), 415);
    assert_eq!(json(form).await["exception"], "UnsupportedMediaType");
    assert_eq!(untyped.status(), 415, "no Content-Type");
    assert_eq!(published_form.status(), 415);
}

#[tokio::test]
async fn bad_subscriptions_are_400_naming_the_field_and_deletes_check_the_owner() {
    // Arrange
    let app = spawn_app().await;
    let id = subscribed(
        &app,
        Some(GMS_USER),
        json!({"subscriberId":"s","filter":"ors.*",
            "notificationDetails":{"deviceId":GMS_USER,"type":"comet"}}),
    )
    .await;

    // Act
    let cases = [
        (
            json!({"filter":"t","notificationDetails":{"deviceId":"d","type":"comet"}}),
            "subscriberId",
        ),
        (
            json!({"subscriberId":"s","filter":"t","notificationDetails":{"deviceId":"d","type":"ios"}}),
            "notificationDetails.type",
        ),
        (
            json!({"subscriberId":"s","filter":"t","notificationDetails":{"deviceId":"bob","type":"comet"}}),
            "notificationDetails.deviceId",
        ),
        (
            json!({"subscriberId":"s","filter":"t","expire":-1,"notificationDetails":{"deviceId":"http://example.com/","type":"httpcb"}}),
            "expire",
        ),
        (
            json!({"subscriberId":"s","filter":"t","notificationDetails":{"deviceId":"http://127.0.0.1:1/","type":"httpcb"}}),
            "notificationDetails.deviceId",
        ),
    ];
    let mut refused = Vec::new();
    for (body, field) in cases {
        let response = subscribe(&app, Some(GMS_USER), body).await;
        refused.push((response.status(), json(response).await, field));
    }
    let stranger = unsubscribe(&app, &id, Some(OTHER_USER)).await;
    let own = unsubscribe(&app, &id, Some(GMS_USER)).await;
    let again = unsubscribe(&app, &id, Some(GMS_USER)).await;

    // Assert
    for (status, body, field) in refused {
        assert_eq!(status, 400, "{field}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
    assert_eq!(stranger, 403);
    assert_eq!(own, 200);
    assert_eq!(again, 404);
}

/// A long-polling CometD client of one `gms_user`, subscribed to `/_genesys`.
struct CometClient {
    http: reqwest::Client,
    url: String,
    user: String,
    id: String,
}

impl CometClient {
    async fn join(app: &TestApp, user: &str) -> CometClient {
        let mut client = CometClient {
            http: reqwest::Client::new(),
            url: format!("{}/genesys/cometd", app.address),
            user: user.to_string(),
            id: String::new(),
        };
        let handshake = client
            .send(json!([{"version":"1.0","channel":"/meta/handshake","supportedConnectionTypes":["long-polling"]}]))
            .await;
        client.id = handshake[0]["clientId"]
            .as_str()
            .expect("clientId")
            .to_string();
        let subscribed = client
            .send(json!([{"channel":"/meta/subscribe","subscription":"/_genesys","clientId":client.id}]))
            .await;
        assert_eq!(subscribed[0]["successful"], true, "{subscribed}");
        client
    }

    async fn send(&self, body: Value) -> Value {
        let response = self
            .http
            .post(&self.url)
            .header("gms_user", &self.user)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("cometd request");
        assert_eq!(response.status(), 200);
        json(response).await
    }

    /// Long-polls until a push tagged `tag` arrives (10 s at most).
    async fn push_tagged(&self, tag: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let reply = self
                .send(
                    json!([{"channel":"/meta/connect","connectionType":"long-polling",
                    "advice":{"timeout":2000},"clientId":self.id}]),
                )
                .await;
            for message in reply.as_array().unwrap() {
                if message["channel"] == "/_genesys" && message["data"]["tag"] == tag {
                    return message["data"].clone();
                }
            }
        }
        panic!("no push tagged {tag}");
    }
}

#[tokio::test]
async fn a_published_event_reaches_a_subscribed_cometd_client() {
    // Arrange
    let app = spawn_app().await;
    let client = CometClient::join(&app, GMS_USER).await;
    subscribed(
        &app,
        Some(GMS_USER),
        json!({"subscriberId":"app","providerName":"comet","filter":"ors.contact.*","expire":600,
            "notificationDetails":{"deviceId":GMS_USER,"type":"comet","properties":{}}}),
    )
    .await;
    let anonymous = app
        .request(Method::POST, "/genesys/1/notification/publish")
        .header("content-type", "application/json")
        .body(r#"{"message":"m","tag":"ors.contact.1"}"#)
        .send()
        .await
        .unwrap();

    // Act
    let none = publish(&app, json!({"message":"x","tag":"other.tag"})).await;
    let sent = publish(
        &app,
        json!({"message":"{\"_action\":\"agent-ready\",\"eta\":5}","tag":"ors.contact.12345678","mediaType":"string"}),
    )
    .await;
    let push = client.push_tagged("ors.contact.12345678").await;

    // Assert
    assert_eq!(
        anonymous.status(),
        401,
        "publishing is for workflows (bearer token)"
    );
    assert_eq!(none, json!({"delivered": 0}));
    assert_eq!(sent, json!({"delivered": 1}));
    assert_eq!(push["message"], json!({"_action":"agent-ready","eta":5}));
    assert_eq!(push["id"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn a_published_event_is_posted_to_httpcb_and_customhttp_receivers() {
    // Arrange
    let app = spawn_app_reaching_loopback().await;
    let (url, received) = receiver().await;
    subscribed(&app, None, httpcb(&url, "ors.contact.1")).await;
    subscribed(
        &app,
        None,
        json!({"subscriberId":"s2","filter":"ors.contact.*","authorization":"Basic ZGVtbzo=",
            "notificationDetails":{"deviceId":"device-7","type":"customhttp","properties":{"url":url}}}),
    )
    .await;

    // Act
    let other = publish(
        &app,
        json!({"message":"not for the httpcb one","tag":"ors.contact.2"}),
    )
    .await;
    let both = publish(
        &app,
        json!({"message":"agent is ready","tag":"ors.contact.1"}),
    )
    .await;
    let got = eventually(Duration::from_secs(10), "three POSTs", || {
        let received = received.clone();
        async move {
            let got = received.lock().unwrap().clone();
            (got.len() >= 3).then_some(got)
        }
    })
    .await;

    // Assert
    assert_eq!(other, json!({"delivered": 1}));
    assert_eq!(both, json!({"delivered": 2}));
    let plain: Vec<_> = got
        .iter()
        .filter(|(kind, _, _)| kind.starts_with("text/plain"))
        .collect();
    assert_eq!(plain.len(), 1, "{got:?}");
    assert_eq!(
        plain[0].2, "agent is ready",
        "httpcb: the body is the message itself"
    );
    let custom: Vec<Value> = got
        .iter()
        .filter(|(kind, _, _)| kind == "application/json")
        .map(|(_, auth, body)| {
            assert_eq!(auth.as_deref(), Some("Basic ZGVtbzo="));
            serde_json::from_str(body).unwrap()
        })
        .collect();
    assert!(
        custom.contains(&json!({"deviceId":"device-7","message":"not for the httpcb one"})),
        "{custom:?}"
    );
    assert!(
        custom.contains(&json!({"deviceId":"device-7","message":"agent is ready"})),
        "{custom:?}"
    );
}

#[tokio::test]
async fn a_subscription_expires_after_expire_on_the_injected_clock() {
    // Arrange
    let start = callbackd::domain::time::Timestamp::parse_iso("2030-01-01T00:00:00Z").unwrap();
    let clock = callbackd::clock::ManualClock::new(start);
    let app = spawn_app_with_clock_and(clock.clone(), |config| {
        config.httpcb.allow = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await;
    let (url, _received) = receiver().await;
    let mut body = httpcb(&url, "t");
    body["expire"] = json!(60);
    let id = subscribed(&app, None, body).await;

    // Act
    clock.advance_secs(59);
    let before = publish(&app, json!({"message":"m","tag":"t"})).await;
    clock.advance_secs(1);
    let after = publish(&app, json!({"message":"m","tag":"t"})).await;
    let delete = unsubscribe(&app, &id, None).await;

    // Assert
    assert_eq!(before, json!({"delivered": 1}));
    assert_eq!(after, json!({"delivered": 0}), "expired at 60 s");
    assert_eq!(delete, 404);
}

#[tokio::test]
async fn an_acknowledged_subscription_survives_a_kill_and_a_restart() {
    // Arrange
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!(
            "{}/genesys/1/notification/subscription",
            server.address
        ))
        .header("gms_user", GMS_USER)
        .header("content-type", "application/json")
        .body(
            json!({"subscriberId":"s","filter":"t","expire":3600,
                "notificationDetails":{"deviceId":GMS_USER,"type":"comet"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = json(response).await["id"].as_str().unwrap().to_string();

    // Act
    server.kill9();
    let server = ServerProcess::start(data_dir.path(), &[]);
    let delete = |user: &'static str| {
        client
            .delete(format!(
                "{}/genesys/1/notification/subscription/{id}",
                server.address
            ))
            .header("gms_user", user)
            .send()
    };
    let stranger = delete(OTHER_USER).await.unwrap().status();
    let owner = delete(GMS_USER).await.unwrap().status();

    // Assert
    assert_eq!(stranger, 403, "still there, still its owner's");
    assert_eq!(owner, 200);
}
