//! GMS callback status notifications (issue 15): events POSTed to `_status_notification_target`
//! from a durable outbox, in order per service, with retries, GMS's `_callback_events_list`
//! filtering and `notify_params`, and delivery after a restart.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callbackd::clock::ManualClock;
use callbackd::domain::time::Timestamp;
use reqwest::Method;
use serde_json::{json, Value};
use warp::Filter;

use crate::helpers::{
    eventually, json, spawn_app_with, spawn_app_with_clock_and, ServerProcess, TestApp, GMS_USER,
};

/// What a receiver got (bodies, parsed) and the statuses it still has to answer with
/// (200 once they run out).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    /// A receiver on a free loopback port; returns its URL.
    async fn start(answers: &[u16]) -> (String, Receiver) {
        let receiver = Receiver::default();
        receiver.answers.lock().unwrap().extend(answers);
        let state = receiver.clone();
        let route = warp::path("events")
            .and(warp::post())
            .and(warp::body::bytes())
            .map(move |body: bytes::Bytes| {
                let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
                state.got.lock().unwrap().push(parsed);
                let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
                warp::reply::with_status(
                    warp::reply(),
                    warp::http::StatusCode::from_u16(status).unwrap(),
                )
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(warp::serve(route).incoming(listener).run());
        (format!("http://{addr}/events"), receiver)
    }

    fn got(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<String> {
        self.got()
            .iter()
            .map(|b| b["_event"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// Waits until `n` POSTs arrived.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let this = self.clone();
        eventually(Duration::from_secs(20), "status notifications", move || {
            let this = this.clone();
            async move {
                let got = this.got();
                (got.len() >= n).then_some(got)
            }
        })
        .await
    }
}

/// A server whose HTTP callbacks may reach loopback, retrying after 10 ms.
async fn spawn_app_reaching_loopback() -> TestApp {
    spawn_app_with(|config| {
        config.httpcb.backoff = Duration::from_millis(10);
        config.httpcb.allow = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await
}

/// The options of a Chat-Delayed service reporting to `url`.
fn notifying(url: &str, extra: &[(&str, &str)]) -> Value {
    let mut options = json!({
        "_target": "Billing@StatServer.GA",
        "_enable_status_notification": "subscribe_notify",
        "_status_notification_type": "httpcb",
        "_status_notification_target": url,
    });
    for (k, v) in extra {
        options[*k] = json!(v);
    }
    json!({"preset": "Chat-Delayed", "options": options})
}

async fn configure(client: &reqwest::Client, base: &str, name: &str, body: &Value) -> u16 {
    client
        .put(format!("{base}/genesys/1/admin/services/{name}"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

async fn create(client: &reqwest::Client, base: &str, name: &str) -> String {
    let response = client
        .post(format!("{base}/genesys/1/service/callback/{name}"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "5115"), ("order", "42")])
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "create");
    json(response).await["_id"].as_str().unwrap().to_string()
}

async fn cancel(app: &TestApp, name: &str, id: &str) {
    let response = app
        .request(
            Method::DELETE,
            &format!("/genesys/1/service/callback/{name}/{id}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "cancel");
}

const LIST: &str = r#"{
    "_cbe_on_service_create": {"notify_params": "_service_id,_service_name,_customer_number,_urs_virtual_queue"},
    "_cbe_on_callback_queued": {"notify_params": "_service_id,_desired_time,_customer_number,_v_queue,order"},
    "_cbe_on_callback_cancelled": {"notify_params": "_service_id,_callback_state,_callback_reason"},
    "_cbe_on_service_exit": {"notify_params": "_service_id,_callback_state"},
    "_cbe_on_dial_init": {"notify_params": "_c_dialed_number"}
}"#;

#[tokio::test]
async fn listed_events_arrive_in_order_with_their_notify_params() {
    // Arrange
    let (url, receiver) = Receiver::start(&[]).await;
    let app = spawn_app_reaching_loopback().await;
    let body = notifying(&url, &[("_callback_events_list", LIST)]);
    assert_eq!(
        configure(&app.client, &app.address, "sn", &body).await,
        201,
        "a new configured service"
    );

    // Act
    let id = create(&app.client, &app.address, "sn").await;
    cancel(&app, "sn", &id).await;
    let got = receiver.wait_for(4).await;

    // Assert: the listed events only (no virtual_ixn_create, no target_found), in order.
    assert_eq!(
        receiver.events(),
        [
            "_cbe_on_service_create",
            "_cbe_on_callback_queued",
            "_cbe_on_callback_cancelled",
            "_cbe_on_service_exit"
        ],
        "{got:?}"
    );
    let seqs: Vec<u64> = got
        .iter()
        .map(|b| b["_event_seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "increasing: {seqs:?}");
    assert_eq!(got[0]["_service_id"], id);
    assert_eq!(got[0]["_service_name"], "sn");
    assert_eq!(got[0]["_customer_number"], "5115");
    assert_eq!(got[0]["_urs_virtual_queue"], "sn");
    assert!(got[0].get("_desired_time").is_none(), "not in its params");
    assert_eq!(got[1]["_v_queue"], "sn");
    assert_eq!(got[1]["order"], "42", "user data by its key");
    assert!(got[1]["_desired_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(got[2]["_callback_state"], "COMPLETED");
    assert_eq!(got[2]["_callback_reason"], "CANCELLED");
    assert_eq!(got[3]["_callback_state"], "COMPLETED");
    app.stop().await;
}

#[tokio::test]
async fn without_an_events_list_the_gms_defaults_are_sent() {
    // Arrange
    let (url, receiver) = Receiver::start(&[]).await;
    let app = spawn_app_reaching_loopback().await;
    assert_eq!(
        configure(&app.client, &app.address, "sn", &notifying(&url, &[])).await,
        201,
        "a new configured service"
    );

    // Act
    let id = create(&app.client, &app.address, "sn").await;
    cancel(&app, "sn", &id).await;
    receiver.wait_for(3).await;

    // Assert
    assert_eq!(
        receiver.events(),
        [
            "_cbe_on_service_create",
            "_cbe_on_virtual_ixn_create",
            "_cbe_on_service_exit"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_again_until_it_recovers() {
    // Arrange: the receiver answers 500 twice, then 200.
    let (url, receiver) = Receiver::start(&[500, 500]).await;
    let app = spawn_app_reaching_loopback().await;
    let list = r#"{"_cbe_on_service_create":{},"_cbe_on_service_exit":{}}"#;
    let body = notifying(
        &url,
        &[
            ("_callback_events_list", list),
            ("_status_notification_attempts", "5"),
        ],
    );
    assert_eq!(
        configure(&app.client, &app.address, "sn", &body).await,
        201,
        "a new configured service"
    );

    // Act
    let id = create(&app.client, &app.address, "sn").await;
    cancel(&app, "sn", &id).await;
    receiver.wait_for(4).await;

    // Assert: three tries of the first event, then the second, in order.
    assert_eq!(
        receiver.events(),
        [
            "_cbe_on_service_create",
            "_cbe_on_service_create",
            "_cbe_on_service_create",
            "_cbe_on_service_exit"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_event_is_given_up_after_its_attempts_and_the_next_one_follows() {
    // Arrange: two attempts allowed, both answered 500.
    let (url, receiver) = Receiver::start(&[500, 500]).await;
    let app = spawn_app_reaching_loopback().await;
    let list = r#"{"_cbe_on_service_create":{},"_cbe_on_service_exit":{}}"#;
    let body = notifying(
        &url,
        &[
            ("_callback_events_list", list),
            ("_status_notification_attempts", "2"),
        ],
    );
    assert_eq!(
        configure(&app.client, &app.address, "sn", &body).await,
        201,
        "a new configured service"
    );

    // Act
    let id = create(&app.client, &app.address, "sn").await;
    cancel(&app, "sn", &id).await;
    receiver.wait_for(3).await;

    // Assert: the first event was tried twice and not again; the exit came after it.
    assert_eq!(
        receiver.events(),
        [
            "_cbe_on_service_create",
            "_cbe_on_service_create",
            "_cbe_on_service_exit"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_status_options_are_400_naming_the_option() {
    // Arrange
    let app = spawn_app_reaching_loopback().await;
    let cases = [
        ("_status_notification_attempts", "0"),
        ("_enable_status_notification", "always"),
        ("_status_notification_type", "orscb"),
        ("_callback_events_list", "GMS_Events"),
        ("_status_notification_target", "not a url"),
    ];
    for (option, value) in cases {
        // Act
        let body = notifying("http://127.0.0.1:9/x", &[(option, value)]);
        let response = app
            .admin(Method::PUT, "/genesys/1/admin/services/sn")
            .json(&body)
            .send()
            .await
            .expect("request sent");

        // Assert
        assert_eq!(response.status(), 400, "{option}={value}");
        let message = json(response).await["message"].to_string();
        assert!(message.contains(option), "{option}: {message}");
    }
    app.stop().await;
}

#[tokio::test]
async fn pending_events_are_delivered_after_a_kill_and_a_restart() {
    // Arrange: the receiver refuses everything while the first server runs.
    let (url, receiver) = Receiver::start(&[500; 1000]).await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("callbackd.toml");
    std::fs::write(
        &config,
        "[httpcb]\nallow = [\"127.0.0.0/8\"]\nbackoff_ms = 10\n",
    )
    .unwrap();
    let env = [("CALLBACKD_CONFIG", config.to_str().unwrap())];
    let db = data_dir.path().join("data");
    let server = ServerProcess::start(&db, &env);
    let client = reqwest::Client::new();
    let list = r#"{"_cbe_on_service_create":{},"_cbe_on_callback_queued":{}}"#;
    let body = notifying(
        &url,
        &[
            ("_callback_events_list", list),
            ("_status_notification_attempts", "100"),
        ],
    );
    assert_eq!(
        configure(&client, &server.address, "sn", &body).await,
        201,
        "a new configured service"
    );
    let id = create(&client, &server.address, "sn").await;
    receiver.wait_for(2).await;

    // Act: kill -9, let the receiver recover, start again.
    server.kill9();
    receiver.answers.lock().unwrap().clear();
    let before = receiver.got().len();
    let _server = ServerProcess::start(&db, &env);
    let got = receiver.wait_for(before + 2).await;

    // Assert: both events arrive after the restart, in order.
    let after: Vec<&Value> = got[before..].iter().collect();
    assert_eq!(after[0]["_event"], "_cbe_on_service_create", "{after:?}");
    assert_eq!(after[0]["_service_id"], id);
    assert_eq!(after.last().unwrap()["_event"], "_cbe_on_callback_queued");
}

/// The admin detail's status notifications of `id`.
async fn status_entries(app: &TestApp, id: &str) -> Vec<Value> {
    let response = app
        .admin(Method::GET, &format!("/genesys/1/admin/callback/{id}"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "admin detail");
    json(response).await["status_notifications"]
        .as_array()
        .expect("status_notifications")
        .clone()
}

/// Waits until the admin detail's only status notification of `id` has made `attempts`.
async fn after_attempts(app: &TestApp, id: &str, attempts: u64) -> Value {
    eventually(
        Duration::from_secs(20),
        "the attempt to be stored",
        || async {
            let entries = status_entries(app, id).await;
            entries
                .first()
                .filter(|e| e["attempts"] == attempts)
                .cloned()
        },
    )
    .await
}

#[tokio::test]
async fn retries_wait_for_the_doubling_backoff_on_the_injected_clock() {
    // Arrange: a minute's backoff, which only the clock can make pass within the test's
    // 20-second deadlines; the receiver answers 500 twice, then 200.
    let start = Timestamp::parse_iso("2030-01-07T09:00:00Z").unwrap();
    let clock = ManualClock::new(start);
    let app = spawn_app_with_clock_and(clock.clone(), |config| {
        config.httpcb.backoff = Duration::from_secs(60);
        config.httpcb.allow = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await;
    let (url, receiver) = Receiver::start(&[500, 500]).await;
    let list = r#"{"_cbe_on_service_create":{"notify_params":"_service_id"}}"#;
    let body = notifying(&url, &[("_callback_events_list", list)]);
    assert_eq!(
        configure(&app.client, &app.address, "sn", &body).await,
        201,
        "a new configured service"
    );
    let id = create(&app.client, &app.address, "sn").await;

    // Act 1: the first attempt fails.
    let first = after_attempts(&app, &id, 1).await;

    // Assert 1: pending, due one backoff later on the clock, not retried meanwhile.
    assert_eq!(first["state"], "pending", "{first}");
    assert_eq!(first["max_attempts"], 3, "GMS's default");
    assert_eq!(first["created_at"], start.to_iso());
    assert_eq!(first["next_attempt_at"], start.plus_secs(60).to_iso());
    assert!(
        first["last_error"].as_str().unwrap().contains("500"),
        "{first}"
    );
    assert_eq!(receiver.got().len(), 1, "no retry before the clock moves");

    // Act 2: a minute passes; the second attempt fails too.
    clock.advance_secs(60);
    let second = after_attempts(&app, &id, 2).await;

    // Assert 2: the wait doubled.
    assert_eq!(second["state"], "pending", "{second}");
    assert_eq!(
        second["next_attempt_at"],
        start.plus_secs(60 + 120).to_iso()
    );
    assert_eq!(receiver.got().len(), 2);

    // Act 3: two more minutes; the receiver has recovered.
    clock.advance_secs(120);
    let third = after_attempts(&app, &id, 3).await;

    // Assert 3: delivered on the last attempt allowed, the last error kept.
    assert_eq!(third["state"], "delivered", "{third}");
    assert_eq!(third["finished_at"], start.plus_secs(180).to_iso());
    assert_eq!(third["next_attempt_at"], Value::Null);
    assert!(third["last_error"].as_str().unwrap().contains("500"));
    let got = receiver.wait_for(3).await;
    assert!(
        got.iter()
            .all(|b| b["_service_id"] == id && b["_event_seq"] == got[0]["_event_seq"]),
        "the same event three times: {got:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn notify_mode_publishes_to_the_notification_api_subscriptions_of_its_tag() {
    // Arrange: the client subscribed itself (GMS's `notify`) to every event of service `sn`.
    let (url, receiver) = Receiver::start(&[]).await;
    let app = spawn_app_reaching_loopback().await;
    let subscription = json!({"subscriberId":"crm","providerName":"httpcb-provider",
        "filter":"callback.sn.*","expire":600,
        "notificationDetails":{"deviceId":url,"type":"httpcb","properties":{}}});
    let response = app
        .request(Method::POST, "/genesys/1/notification/subscription")
        .header("content-type", "application/json")
        .body(subscription.to_string())
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "subscribe");
    let body = json!({"preset": "Chat-Delayed", "options": {
        "_target": "Billing@StatServer.GA",
        "_enable_status_notification": "notify",
        "_callback_events_list": r#"{"_cbe_on_service_create":{"notify_params":"_service_id"},"_cbe_on_service_exit":{"notify_params":"_service_id,_callback_reason"}}"#,
    }});
    assert_eq!(
        configure(&app.client, &app.address, "sn", &body).await,
        201,
        "notify needs no _status_notification_target"
    );

    // Act
    let id = create(&app.client, &app.address, "sn").await;
    cancel(&app, "sn", &id).await;
    let got = receiver.wait_for(2).await;

    // Assert
    assert_eq!(
        receiver.events(),
        ["_cbe_on_service_create", "_cbe_on_service_exit"],
        "{got:?}"
    );
    assert_eq!(got[0]["_service_id"], id);
    assert_eq!(got[1]["_callback_reason"], "CANCELLED");
    let entries = status_entries(&app, &id).await;
    assert!(
        entries.iter().all(|e| e["state"] == "delivered"),
        "{entries:?}"
    );
    app.stop().await;
}
