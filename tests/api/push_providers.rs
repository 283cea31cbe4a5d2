//! Push providers by GMS name (issue 16, "Push providers"): `_device_os=gcm`/`fcm` delivered
//! through FCM's HTTP v1 API when `[push.fcm]` is configured (here against a stand-in FCM
//! on 127.0.0.1, since the real one cannot be reached from the test machine), and every other
//! GMS push type accepted with its notifications kept for polling.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, json, spawn_app, stand_in_fcm, ServerProcess, TestApp, GMS_USER};

/// Seed 000's internal notification as a form, sent from the agent side to service `id`.
async fn notify(client: &reqwest::Client, address: &str, id: &str) {
    let response = client
        .post(format!(
            "{address}/genesys/1/service/{id}/internal-notification"
        ))
        .header("gms_user", GMS_USER)
        .form(&[
            ("_display_message", "Message to be displayed to user"),
            (
                "_application_message",
                "MESSAGE_FOR_MOBILE_APP_INTERNAL_USE",
            ),
        ])
        .send()
        .await
        .expect("internal-notification sent");
    assert_eq!(response.status(), 200, "internal-notification");
}

/// What retrieve-notifications returns for service `id` (and marks delivered).
async fn retrieve(client: &reqwest::Client, address: &str, id: &str) -> Value {
    let response = client
        .post(format!(
            "{address}/genesys/1/service/{id}/retrieve-notifications"
        ))
        .header("gms_user", GMS_USER)
        .form(&[] as &[(&str, &str)])
        .send()
        .await
        .expect("retrieve-notifications sent");
    assert_eq!(response.status(), 200, "retrieve-notifications");
    json(response).await
}

/// Creates a chat-delay service (nobody is routed to it) with `fields`; returns its id.
async fn create(client: &reqwest::Client, address: &str, fields: &[(&str, &str)]) -> String {
    let mut form = vec![("_customer_number", "4082652649")];
    form.extend_from_slice(fields);
    let response = client
        .post(format!("{address}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&form)
        .send()
        .await
        .expect("create sent");
    assert_eq!(response.status(), 200, "create with {fields:?}");
    json(response).await["_id"]
        .as_str()
        .expect("an _id")
        .to_string()
}

/// The internal notification's message as GMS sends it for service `id`.
fn internal_message(id: &str) -> Value {
    json!({
        "_internal_message": "MESSAGE_FOR_MOBILE_APP_INTERNAL_USE",
        "_id": id,
        "_display_message": "Message to be displayed to user",
    })
}

#[tokio::test]
async fn a_gcm_service_is_pushed_through_the_configured_fcm_http_v1_endpoint() {
    // Arrange: the real binary with a config file naming the stand-in FCM and a token file.
    let (endpoint, received) = stand_in_fcm().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("fcm-token");
    std::fs::write(&token_file, "ya29.test-access-token\n").unwrap();
    let config = dir.path().join("callbackd.toml");
    std::fs::write(
        &config,
        format!(
            "[push.fcm]\nendpoint = \"{endpoint}\"\nproject_id = \"callbackd-test\"\naccess_token_file = \"{}\"\n",
            token_file.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &[("CALLBACKD_CONFIG", config.to_str().unwrap())]);
    let client = reqwest::Client::new();
    // As GMS's sample app creates it (GenesysSampleController.connect).
    let id = create(
        &client,
        &server.address,
        &[
            ("_device_os", "gcm"),
            ("_device_notification_id", "device-registration-token-1"),
        ],
    )
    .await;

    // Act
    notify(&client, &server.address, &id).await;
    let sent = eventually(Duration::from_secs(10), "the FCM send", || {
        let received = received.clone();
        async move { received.lock().unwrap().first().cloned() }
    })
    .await;

    // Assert: an HTTP v1 send to the registration token, carrying the message as data.
    assert_eq!(sent.path, "/v1/projects/callbackd-test/messages:send");
    assert_eq!(
        sent.authorization.as_deref(),
        Some("Bearer ya29.test-access-token")
    );
    let message = &sent.body["message"];
    assert_eq!(message["token"], "device-registration-token-1");
    let data = &message["data"];
    assert_eq!(data["tag"], format!("service.internal.{id}"));
    let text = data["message"]
        .as_str()
        .expect("FCM data values are strings");
    let carried: Value = serde_json::from_str(text).expect("the message as JSON text");
    assert_eq!(carried, internal_message(&id));
    let push_id = data["id"].as_str().expect("the push id");
    assert!(
        push_id.len() == 32 && push_id.chars().all(|c| c.is_ascii_hexdigit()),
        "{push_id}"
    );
    // FCM accepted it: delivered, so polling has nothing more.
    eventually(Duration::from_secs(10), "the push marked delivered", || {
        let (client, address, id) = (client.clone(), server.address.clone(), id.clone());
        async move {
            let left = retrieve(&client, &address, &id).await;
            (left == json!([])).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn every_gms_push_type_without_a_provider_here_is_created_and_polled() {
    // Arrange: no [push.fcm], and no APNs, customhttp or ORS delivery at all.
    let app = spawn_app().await;
    for device_os in ["gcm", "fcm", "ios", "android", "customhttp", "orscb"] {
        let id = create(
            &app.client,
            &app.address,
            &[
                ("_device_os", device_os),
                ("_device_notification_id", "device-token-1"),
            ],
        )
        .await;

        // Act
        notify(&app.client, &app.address, &id).await;

        // Assert: nothing refused; the notification waits for polling.
        assert_eq!(
            retrieve(&app.client, &app.address, &id).await,
            json!([internal_message(&id)]),
            "_device_os={device_os}"
        );
        let detail = crate::helpers::detail(&app, &id).await;
        assert_eq!(
            detail["_device_os"], device_os,
            "stored by its GMS name: {detail}"
        );
    }
}

#[tokio::test]
async fn a_gcm_service_without_a_token_is_created_and_polled() {
    let app: TestApp = spawn_app().await;
    let id = create(&app.client, &app.address, &[("_device_os", "gcm")]).await;

    notify(&app.client, &app.address, &id).await;

    assert_eq!(
        retrieve(&app.client, &app.address, &id).await,
        json!([internal_message(&id)])
    );
}

#[tokio::test]
async fn an_unknown_device_os_is_a_400_naming_it() {
    let app = spawn_app().await;

    let response = app
        .post_form(
            "/genesys/1/service/callback/chat-delay",
            Some(GMS_USER),
            &[
                ("_customer_number", "4082652649"),
                ("_device_os", "blackberry"),
            ],
        )
        .await;

    assert_eq!(response.status(), 400);
    let body = json(response).await;
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("_device_os") && message.contains("blackberry"),
        "{body}"
    );
}

#[tokio::test]
async fn a_service_left_for_polling_is_named_in_the_log_once() {
    // Arrange: the real binary without [push.fcm]; two gcm services.
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(data.path(), &[]);
    let client = reqwest::Client::new();
    let gcm = [
        ("_device_os", "gcm"),
        ("_device_notification_id", "device-token-1"),
    ];
    let first = create(&client, &server.address, &gcm).await;
    let second = create(&client, &server.address, &gcm).await;

    // Act: three notifications to the first, then one to the second.
    for _ in 0..3 {
        notify(&client, &server.address, &first).await;
    }
    notify(&client, &server.address, &second).await;

    // Assert: the second's line shows that the first's notifications were all handled
    // (each was pushed or left for polling before its request was answered, and so logged
    // before the second's); the first was named once.
    let notice = "push not delivered";
    let named = |id: &str, logs: &[String]| {
        logs.iter()
            .filter(|line| line.contains(notice) && line.contains(id))
            .count()
    };
    let logs = eventually(
        Duration::from_secs(10),
        "the second service's notice",
        || {
            let logs = server.logs();
            let found = named(&second, &logs) > 0;
            async move { found.then_some(logs) }
        },
    )
    .await;
    assert_eq!(named(&first, &logs), 1, "once for three notifications");
    assert_eq!(named(&second, &logs), 1);
    let line = logs.iter().find(|line| line.contains(notice)).unwrap();
    assert!(line.contains("no [push.fcm] is configured"), "{line}");
}
