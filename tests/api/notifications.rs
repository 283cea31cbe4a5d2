//! Notifications between the agent desktop and the customer (seed 000): internal-notification,
//! retrieve-notifications, agent-notification, retrieve-agent-notifications, and pushes by HTTP
//! callback (`_device_os=httpcb`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use warp::Filter;

use crate::helpers::{eventually, json, spawn_app, spawn_app_with, TestApp, GMS_USER};

/// Another end user than the seeds' one.
const OTHER_USER: &str = "0000000000000000000000000000000000000000000000000000000000000bad";

/// Seed 000 "Send notification from agent desktop to mobile": the multipart body, byte for byte.
const INTERNAL_BOUNDARY: &str = "----WebKitFormBoundary8rbhQqxP5LoJ61i1";
const INTERNAL_BODY: &str = "------WebKitFormBoundary8rbhQqxP5LoJ61i1\r\n\
Content-Disposition: form-data; name=\"_display_message\"\r\n\
\r\n\
Message to be displayed to user\r\n\
------WebKitFormBoundary8rbhQqxP5LoJ61i1\r\n\
Content-Disposition: form-data; name=\"_application_message\"\r\n\
\r\n\
MESSAGE_FOR_MOBILE_APP_INTERNAL_USE\r\n\
------WebKitFormBoundary8rbhQqxP5LoJ61i1--\r\n";

/// Seed 000 "Send notification from mobile to agent": the multipart body, byte for byte.
const AGENT_BOUNDARY: &str = "----WebKitFormBoundaryyN11ULST36Tmhzro";
const AGENT_BODY: &str = "------WebKitFormBoundaryyN11ULST36Tmhzro\r\n\
Content-Disposition: form-data; name=\"_display_message\"\r\n\
\r\n\
Message to be displayed to agent\r\n\
------WebKitFormBoundaryyN11ULST36Tmhzro\r\n\
Content-Disposition: form-data; name=\"_application_message\"\r\n\
\r\n\
MESSAGE_FOR_AGENT_DESKTOP_INTERNAL_USE\r\n\
------WebKitFormBoundaryyN11ULST36Tmhzro--\r\n";

/// POSTs a raw multipart body as the seeds' user.
async fn post_multipart(
    app: &TestApp,
    path: &str,
    boundary: &str,
    body: &str,
) -> reqwest::Response {
    app.request(Method::POST, path)
        .header("gms_user", GMS_USER)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("request sent")
}

/// POST /{id}/retrieve-notifications as the seeds' user.
async fn retrieve(app: &TestApp, id: &str) -> Value {
    let path = format!("/genesys/1/service/{id}/retrieve-notifications");
    let response = app.post_form(&path, Some(GMS_USER), &[]).await;
    assert_eq!(response.status(), 200, "retrieve-notifications");
    json(response).await
}

/// The seed's internal notification for service `id`, as retrieve-notifications returns it.
fn seed_internal_message(id: &str) -> Value {
    json!({
        "_internal_message": "MESSAGE_FOR_MOBILE_APP_INTERNAL_USE",
        "_id": id,
        "_display_message": "Message to be displayed to user",
    })
}

/// A chat-delay service that nobody will be routed to, created with `fields`.
async fn waiting_service(app: &TestApp, fields: &[(&str, &str)]) -> String {
    let mut all = vec![("_customer_number", "4082652649")];
    all.extend_from_slice(fields);
    app.create("chat-delay", &all).await
}

/// A server whose HTTP callbacks retry quickly and may reach the loopback receivers of
/// these tests (internal addresses are refused by default).
async fn spawn_fast_retrying_app() -> TestApp {
    spawn_app_with(|config| {
        config.httpcb.timeout = Duration::from_secs(2);
        config.httpcb.backoff = Duration::from_millis(10);
        config.httpcb.allow = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await
}

/// A tiny HTTP server on a free port that records the JSON bodies POSTed to `/push`.
async fn callback_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let route = warp::path("push")
        .and(warp::post())
        .and(warp::body::json())
        .map(move |body: Value| {
            log.lock().unwrap().push(body);
            warp::reply()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}/push"), received)
}

#[tokio::test]
async fn an_internal_notification_without_push_is_retrieved_once() {
    // Arrange
    let app = spawn_app().await;
    let id = waiting_service(&app, &[]).await;

    // Act
    let sent = post_multipart(
        &app,
        &format!("/genesys/1/service/{id}/internal-notification"),
        INTERNAL_BOUNDARY,
        INTERNAL_BODY,
    )
    .await;
    let sent_status = sent.status();
    let sent_body = json(sent).await;
    let first = retrieve(&app, &id).await;
    let again = retrieve(&app, &id).await;

    // Assert
    assert_eq!(sent_status, 200);
    assert_eq!(sent_body, json!({"message": "Notification Sent"}));
    assert_eq!(
        first,
        json!([seed_internal_message(&id)]),
        "seed 000, push not configured"
    );
    assert_eq!(again, json!([]), "returned once");
}

#[tokio::test]
async fn an_agent_notification_is_retrieved_once_in_the_seeds_shape() {
    // Arrange
    let app = spawn_app().await;
    let id = waiting_service(&app, &[]).await;
    let retrieve_path = format!("/genesys/1/service/{id}/retrieve-agent-notifications");

    // Act
    let sent = post_multipart(
        &app,
        &format!("/genesys/1/service/{id}/agent-notification"),
        AGENT_BOUNDARY,
        AGENT_BODY,
    )
    .await;
    let sent_body = json(sent).await;
    let first = app.post_form(&retrieve_path, Some(GMS_USER), &[]).await;
    let first_status = first.status();
    let first = json(first).await;
    let again = json(app.post_form(&retrieve_path, Some(GMS_USER), &[]).await).await;

    // Assert
    assert_eq!(sent_body, json!({"message": "Notification Sent"}));
    assert_eq!(first_status, 200);
    assert_eq!(
        first,
        json!([{
            "message": format!("{{\"_id\":\"{id}\",\"_internal_message\":\"MESSAGE_FOR_AGENT_DESKTOP_INTERNAL_USE\",\"_display_message\":\"Message to be displayed to agent\"}}"),
            "tag": format!("agent.message.{id}"),
        }]),
        "seed 000"
    );
    assert_eq!(again, json!([]), "returned once");
    assert_eq!(
        retrieve(&app, &id).await,
        json!([]),
        "not a customer notification"
    );
}

#[tokio::test]
async fn notifications_of_another_users_service_are_403_and_of_an_unknown_one_404() {
    let app = spawn_app().await;
    let id = waiting_service(&app, &[]).await;
    let text = [("_display_message", "hi")];

    for action in [
        "internal-notification",
        "retrieve-notifications",
        "agent-notification",
        "retrieve-agent-notifications",
    ] {
        let other = app
            .post_form(
                &format!("/genesys/1/service/{id}/{action}"),
                Some(OTHER_USER),
                &text,
            )
            .await;
        let unknown = app
            .post_form(
                &format!("/genesys/1/service/no-such-id/{action}"),
                Some(GMS_USER),
                &text,
            )
            .await;
        assert_eq!(other.status(), 403, "{action} as another user");
        assert_eq!(unknown.status(), 404, "{action} of an unknown service");
    }
    assert_eq!(
        retrieve(&app, &id).await,
        json!([]),
        "the refused internal-notification stored nothing"
    );
}

#[tokio::test]
async fn a_notification_without_text_or_with_a_json_body_is_refused_with_the_reason() {
    let app = spawn_app().await;
    let id = waiting_service(&app, &[]).await;
    let path = format!("/genesys/1/service/{id}/internal-notification");

    let empty = app.post_form(&path, Some(GMS_USER), &[]).await;
    let as_json = app
        .request(Method::POST, &path)
        .header("gms_user", GMS_USER)
        .json(&json!({"_display_message": "hi"}))
        .send()
        .await
        .expect("request sent");

    assert_eq!(empty.status(), 400);
    let body = json(empty).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("_display_message"),
        "names the field: {body}"
    );
    assert_eq!(as_json.status(), 415);
}

#[tokio::test]
async fn cancelling_a_service_notifies_its_customer() {
    let app = spawn_app().await;
    let id = waiting_service(&app, &[]).await;

    let cancelled = app
        .request(
            Method::DELETE,
            &format!("/genesys/1/service/callback/chat-delay/{id}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .expect("request sent");

    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        retrieve(&app, &id).await,
        json!([{"_id": id, "_callback_state": "COMPLETED", "_callback_reason": "CANCELLED"}])
    );
}

#[tokio::test]
async fn an_http_callback_service_is_pushed_the_notification_by_post() {
    // Arrange
    let (url, received) = callback_receiver().await;
    let app = spawn_fast_retrying_app().await;
    let id = waiting_service(
        &app,
        &[("_device_os", "httpcb"), ("_device_notification_id", &url)],
    )
    .await;

    // Act
    let sent = post_multipart(
        &app,
        &format!("/genesys/1/service/{id}/internal-notification"),
        INTERNAL_BOUNDARY,
        INTERNAL_BODY,
    )
    .await;
    assert_eq!(sent.status(), 200);
    let pushed = eventually(Duration::from_secs(10), "the http callback", || {
        let received = received.clone();
        async move { received.lock().unwrap().first().cloned() }
    })
    .await;

    // Assert
    assert_eq!(pushed["tag"], format!("service.internal.{id}"));
    assert_eq!(pushed["message"], seed_internal_message(&id));
    let push_id = pushed["id"].as_str().expect("id");
    assert!(
        push_id.len() == 32 && push_id.chars().all(|c| c.is_ascii_hexdigit()),
        "id is 32 hex: {push_id}"
    );
    // Marked delivered once the receiver answered 2xx: nothing left to poll.
    eventually(Duration::from_secs(10), "delivered mark", || {
        let app = &app;
        let id = &id;
        async move { (retrieve(app, id).await == json!([])).then_some(()) }
    })
    .await;
    assert_eq!(received.lock().unwrap().len(), 1, "pushed once");
}

#[tokio::test]
async fn a_failing_http_callback_leaves_the_notification_for_polling() {
    // Arrange: a port nobody listens on any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let url = format!("http://{closed}/push");
    let app = spawn_fast_retrying_app().await;
    let id = waiting_service(
        &app,
        &[("_device_os", "httpcb"), ("_device_notification_id", &url)],
    )
    .await;

    // Act
    let sent = post_multipart(
        &app,
        &format!("/genesys/1/service/{id}/internal-notification"),
        INTERNAL_BOUNDARY,
        INTERNAL_BODY,
    )
    .await;

    // Assert
    assert_eq!(sent.status(), 200, "sent even if the push fails");
    assert_eq!(
        retrieve(&app, &id).await,
        json!([seed_internal_message(&id)])
    );
    assert_eq!(retrieve(&app, &id).await, json!([]), "once");
}

#[tokio::test]
async fn a_request_chat_poll_customer_is_told_when_an_agent_becomes_available() {
    // Arrange
    let app = spawn_app().await;
    let created = app
        .post_form(
            "/genesys/1/service/request-chat-poll",
            Some(GMS_USER),
            &[("_customer_number", "4082652649")],
        )
        .await;
    assert_eq!(created.status(), 200);
    let id = json(created).await["_id"]
        .as_str()
        .expect("_id")
        .to_string();

    // Act: marco is in Support, the service's target group.
    let ready = app
        .admin(Method::POST, "/genesys/1/agent/marco/state")
        .json(&json!({"state": "ready"}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(ready.status(), 200);

    // Assert: the same message and tag as POST /{id}/status reports (seed 003).
    let told = eventually(Duration::from_secs(10), "the availability push", || {
        let app = &app;
        let id = &id;
        async move {
            let messages = retrieve(app, id).await;
            (messages != json!([])).then_some(messages)
        }
    })
    .await;
    assert_eq!(
        told,
        json!([{"_id": id, "_status": "available", "_dialog": "agent_available.html"}])
    );
}
