//! `_device_os=httpcb` abuse (issue 9, items 8 and 9): the callback URL is chosen by the
//! customer, so it must not reach the server's own network (SSRF), and one destination that
//! never answers must not hold back everyone else's pushes.
//!
//! Only loopback receivers are ever contacted: the private and link-local URLs below must be
//! refused before any connection is tried, which is what the tests assert.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use warp::Filter;

use crate::helpers::{eventually, json, spawn_app, spawn_app_with, TestApp, GMS_USER};

/// A second end user, whose pushes must not wait for the first one's dead endpoint.
const OTHER_USER: &str = "0000000000000000000000000000000000000000000000000000000000000b0b";

/// Creates a `chat-delay` service (nobody is routed to it) as `gms_user` with `fields`.
async fn create(app: &TestApp, gms_user: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut all = vec![("_customer_number", "4082652649")];
    all.extend_from_slice(fields);
    app.post_form(
        "/genesys/1/service/callback/chat-delay",
        Some(gms_user),
        &all,
    )
    .await
}

/// Creates an httpcb service pushing to `url` and returns its id.
async fn httpcb_service(app: &TestApp, gms_user: &str, url: &str) -> String {
    let response = create(
        app,
        gms_user,
        &[("_device_os", "httpcb"), ("_device_notification_id", url)],
    )
    .await;
    assert_eq!(response.status(), 200, "create httpcb service to {url}");
    json(response).await["_id"]
        .as_str()
        .expect("_id")
        .to_string()
}

/// Sends the service's customer an internal notification (answered once it is durable).
async fn notify(app: &TestApp, gms_user: &str, id: &str) {
    let response = app
        .post_form(
            &format!("/genesys/1/service/{id}/internal-notification"),
            Some(gms_user),
            &[("_display_message", "hello")],
        )
        .await;
    assert_eq!(response.status(), 200, "internal-notification");
}

/// A receiver on 127.0.0.1 that records when each POST to `/push` arrived.
async fn receiver() -> (String, Arc<Mutex<Vec<Instant>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let route = warp::path("push").and(warp::post()).map(move || {
        log.lock().unwrap().push(Instant::now());
        warp::reply()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}/push"), received)
}

/// A destination that accepts TCP connections and never answers; returns its URL and how
/// many connections it has accepted (they are held open until the test ends).
async fn hanging_receiver() -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            held.push(socket);
        }
    });
    (format!("http://{addr}/push"), accepted)
}

#[tokio::test]
async fn internal_and_private_callback_urls_are_refused_at_creation_naming_the_field() {
    // Arrange: a real loopback receiver, so that a refusal cannot be mistaken for "nothing
    // listens there".
    let (loopback, received) = receiver().await;
    let port = loopback
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/push")
        .to_string();
    let app = spawn_app().await;
    let urls = [
        loopback.clone(),
        format!("http://localhost:{port}/push"),
        "http://10.0.0.1/".to_string(),
        "http://192.168.1.1/".to_string(),
        format!("http://[::1]:{port}/push"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://0.0.0.0/".to_string(),
        "http://[::ffff:127.0.0.1]/".to_string(),
        "http://224.0.0.1/".to_string(),
    ];

    for url in &urls {
        // Act
        let response = create(
            &app,
            GMS_USER,
            &[("_device_os", "httpcb"), ("_device_notification_id", url)],
        )
        .await;

        // Assert
        assert_eq!(response.status(), 400, "{url} must be refused");
        let body = json(response).await;
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("_device_notification_id"),
            "{url}: the error names the field: {body}"
        );
    }
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing was POSTed anywhere"
    );
}

#[tokio::test]
async fn an_allowed_loopback_receiver_still_gets_its_push() {
    // Arrange: the operator allowed exactly this receiver.
    let (url, received) = receiver().await;
    let allowed = url.clone();
    let app =
        spawn_app_with(move |config| config.httpcb.allow = vec![allowed.parse().unwrap()]).await;
    let id = httpcb_service(&app, GMS_USER, &url).await;

    // Act
    notify(&app, GMS_USER, &id).await;

    // Assert
    eventually(Duration::from_secs(10), "the allowed push", || {
        let received = received.clone();
        async move { (!received.lock().unwrap().is_empty()).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn one_hanging_destination_does_not_delay_another_users_push() {
    // Arrange: POSTs time out after 1 s and are not retried, so that the undelivered ones
    // are settled quickly; the receivers are on loopback, which the test allows.
    let (dead, accepted) = hanging_receiver().await;
    let (alive, received) = receiver().await;
    let app = spawn_app_with(|config| {
        config.httpcb.timeout = Duration::from_secs(1);
        config.httpcb.attempts = 1;
        config.httpcb.allow = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let victim = httpcb_service(&app, GMS_USER, &dead).await;
    let other = httpcb_service(&app, OTHER_USER, &alive).await;

    // 200 notifications for the dead destination, sent 20 at a time.
    const QUEUED: usize = 200;
    for _ in 0..QUEUED / 20 {
        let batch = (0..20).map(|_| notify(&app, GMS_USER, &victim));
        futures_util::future::join_all(batch).await;
    }
    eventually(
        Duration::from_secs(10),
        "the dead destination is hit",
        || {
            let accepted = accepted.clone();
            async move { (*accepted.lock().unwrap() > 0).then_some(()) }
        },
    )
    .await;

    // Act: another user's notification while the dead destination hangs.
    let sent = Instant::now();
    notify(&app, OTHER_USER, &other).await;
    let arrived = eventually(Duration::from_secs(30), "the other user's push", || {
        let received = received.clone();
        async move { received.lock().unwrap().first().copied() }
    })
    .await;

    // Assert
    let delay = arrived.duration_since(sent);
    assert!(
        delay < Duration::from_millis(100),
        "another user's push took {delay:?} while one destination hung"
    );
    // What the dead destination never took stays for polling.
    let path = format!("/genesys/1/service/{victim}/retrieve-notifications");
    let response = app.post_form(&path, Some(GMS_USER), &[]).await;
    assert_eq!(response.status(), 200);
    let stored: Value = json(response).await;
    assert_eq!(
        stored.as_array().map(Vec::len),
        Some(QUEUED),
        "every undelivered notification can be retrieved"
    );
}
