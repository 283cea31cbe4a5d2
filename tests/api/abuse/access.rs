//! Who may see what (items 1-7): `gms_user` required and never listed for others, access
//! checked before input, no services under ids the caller picks, one identity header, a
//! bounded `gms_user`, dialog URLs from `public_url`, a private data directory.

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;

use crate::helpers::{json, spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN, GMS_USER};

const STRANGER: &str = "0000000000000000000000000000000000000000000000000000000000000bad";

/// Every customer-facing endpoint about one service, as (method, path) for service `id`.
fn service_endpoints(id: &str) -> Vec<(Method, String)> {
    let mut endpoints: Vec<(Method, String)> = [
        "connect",
        "status",
        "check-queue-position",
        "ixn/chat",
        "ixn/chat/refresh",
        "ixn/chat/send",
        "ixn/chat/disconnect",
        "internal-notification",
        "retrieve-notifications",
        "agent-notification",
        "retrieve-agent-notifications",
    ]
    .iter()
    .map(|action| (Method::POST, format!("/genesys/1/service/{id}/{action}")))
    .collect();
    endpoints.push((
        Method::GET,
        format!("/genesys/1/service/{id}/check-queue-position"),
    ));
    for method in [Method::PUT, Method::DELETE] {
        endpoints.push((
            method,
            format!("/genesys/1/service/callback/chat-delay/{id}"),
        ));
    }
    endpoints
}

/// Sends a body no endpoint accepts (JSON is refused by most, and this is not even JSON).
async fn send_bad_body(app: &TestApp, method: Method, path: &str, user: &str) -> u16 {
    app.request(method, path)
        .header("gms_user", user)
        .header("content-type", "application/json")
        .body("{\"_new_desired_time\": ")
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn creating_a_service_without_gms_user_is_a_400_naming_the_header() {
    let app = spawn_app().await;
    for path in [
        "/genesys/1/service/callback/chat-delay",
        "/genesys/1/service/request-chat",
    ] {
        let response = app
            .post_form(path, None, &[("_customer_number", "999"), ("ssn", "123")])
            .await;
        assert_eq!(response.status(), 400, "{path}");
        let body = json(response).await;
        assert!(
            body["message"].as_str().unwrap().contains("gms_user"),
            "{path}: {body}"
        );
    }
    // Nothing was stored: the owner's own listing is empty.
    let listed = app
        .get("/genesys/1/service/callback/chat-delay", Some(GMS_USER))
        .await;
    assert_eq!(json(listed).await, serde_json::json!([]));
}

#[tokio::test]
async fn allowed_anonymous_services_are_reachable_by_id_but_never_listed() {
    // Arrange: the GMS behaviour, turned on.
    let app = spawn_app_with(|config| config.security.allow_anonymous_services = true).await;
    let created = app
        .post_form(
            "/genesys/1/service/callback/chat-delay",
            None,
            &[("_customer_number", "999"), ("ssn", "123")],
        )
        .await;
    assert_eq!(created.status(), 200, "anonymous create allowed");
    let id = json(created).await["_id"].as_str().unwrap().to_string();
    let owned = app
        .create("chat-delay", &[("_customer_number", "999"), ("ssn", "456")])
        .await;

    for (user, label) in [(None, "no gms_user"), (Some(STRANGER), "a stranger")] {
        // Act
        let per_service = app
            .get("/genesys/1/service/callback/chat-delay", user)
            .await;
        let by_number = app
            .get("/genesys/1/service/callback?_customer_number=999", user)
            .await;

        // Assert: neither the anonymous service nor anybody's else's is listed.
        assert_eq!(json(per_service).await, serde_json::json!([]), "{label}");
        assert_eq!(json(by_number).await, serde_json::json!([]), "{label}");
    }
    // The owner lists only their own service, not the anonymous one.
    let mine = json(
        app.get("/genesys/1/service/callback/chat-delay", Some(GMS_USER))
            .await,
    )
    .await;
    let ids: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![owned.as_str()]);
    // Whoever holds the anonymous service's id reaches it, as in GMS.
    let by_id = app
        .get(&format!("/genesys/1/service/callback?_id={id}"), None)
        .await;
    assert_eq!(json(by_id).await[0]["_id"], id.as_str());
}

#[tokio::test]
async fn a_stranger_gets_403_and_an_unknown_id_404_before_the_body_is_read() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;

    for (method, path) in service_endpoints(&id) {
        // Act
        let status = send_bad_body(&app, method.clone(), &path, STRANGER).await;
        // Assert
        assert_eq!(status, 403, "a stranger's {method} {path}");
    }
    for (method, path) in service_endpoints("5a1f9c1e-0000-4000-8000-000000000000") {
        let status = send_bad_body(&app, method.clone(), &path, GMS_USER).await;
        assert_eq!(status, 404, "{method} {path} on an unknown id");
    }
    // A query by `_id` is about one service too: access before its filters.
    let response = app
        .get(
            &format!("/genesys/1/service/callback?_id={id}&_callback_state=BOGUS"),
            Some(STRANGER),
        )
        .await;
    assert_eq!(
        response.status(),
        403,
        "a stranger's query by _id with a bad filter"
    );
    // The owner still gets the body judged.
    let status = send_bad_body(
        &app,
        Method::PUT,
        &format!("/genesys/1/service/callback/chat-delay/{id}"),
        GMS_USER,
    )
    .await;
    assert_eq!(status, 400, "the owner's bad body");
}

#[tokio::test]
async fn a_stranger_putting_a_field_reschedule_refuses_gets_403() {
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let response = app
        .request(
            Method::PUT,
            &format!("/genesys/1/service/callback/chat-delay/{id}"),
        )
        .header("gms_user", STRANGER)
        .form(&[("_priority", "9")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn ixn_chat_on_an_unknown_id_is_404_and_creates_no_service() {
    let app = spawn_app().await;
    let id = "my-own-chosen-id";
    let response = app
        .post_form(
            &format!("/genesys/1/service/{id}/ixn/chat"),
            Some(GMS_USER),
            &[("firstName", "Ann")],
        )
        .await;
    assert_eq!(response.status(), 404);
    let detail = app
        .admin(Method::GET, &format!("/genesys/1/admin/callback/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(detail.status(), 404, "no service was created under {id}");
}

#[tokio::test]
async fn identity_headers_given_twice_are_a_400() {
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;

    // Two gms_user headers: a forged first one must not win over a gateway's second one.
    let mut headers = HeaderMap::new();
    headers.append("gms_user", HeaderValue::from_static("forged"));
    headers.append("gms_user", HeaderValue::from_static(GMS_USER));
    for (method, path) in [
        (Method::GET, format!("/genesys/1/service/callback?_id={id}")),
        (
            Method::POST,
            "/genesys/1/service/callback/chat-delay".to_string(),
        ),
        (
            Method::POST,
            format!("/genesys/1/service/{id}/retrieve-notifications"),
        ),
    ] {
        let response = app
            .request(method.clone(), &path)
            .headers(headers.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{method} {path}");
        let body = json(response).await;
        assert!(
            body["message"].as_str().unwrap().contains("gms_user"),
            "{body}"
        );
    }

    // Two Authorization headers on the admin API.
    let mut headers = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {ADMIN_TOKEN}")).unwrap();
    headers.append("authorization", HeaderValue::from_static("Bearer wrong"));
    headers.append("authorization", bearer);
    let response = app
        .request(Method::GET, "/genesys/1/admin/services")
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert!(
        body["message"].as_str().unwrap().contains("authorization"),
        "{body}"
    );
}

#[tokio::test]
async fn gms_user_is_at_most_256_bytes() {
    let app = spawn_app().await;
    let longest = "u".repeat(256);
    let response = app
        .post_form(
            "/genesys/1/service/callback/chat-delay",
            Some(&longest),
            &[("_customer_number", "1")],
        )
        .await;
    assert_eq!(response.status(), 200, "256 bytes are accepted");

    let too_long = "u".repeat(257);
    for (method, path) in [
        (Method::POST, "/genesys/1/service/callback/chat-delay"),
        (Method::GET, "/genesys/1/service/callback/chat-delay"),
    ] {
        let response = app
            .request(method.clone(), path)
            .header("gms_user", &too_long)
            .form(&[("_customer_number", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{method} {path}");
        let body = json(response).await;
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("gms_user") && message.contains("256"),
            "{body}"
        );
    }
}

/// Creates a chat-immediate service with `Host: evil.example`; answers the dialog.
async fn dialog_with_forged_host(app: &TestApp) -> serde_json::Value {
    let response = app
        .request(Method::POST, "/genesys/1/service/callback/chat-immediate")
        .header("gms_user", GMS_USER)
        .header("host", "evil.example")
        .form(&[("_customer_number", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json(response).await
}

#[tokio::test]
async fn dialog_urls_come_from_public_url_when_it_is_set() {
    let app = spawn_app_with(|config| {
        config.public_url = Some("https://gms.example.com".to_string());
    })
    .await;
    let dialog = dialog_with_forged_host(&app).await;
    let id = dialog["_id"].as_str().unwrap();
    assert_eq!(
        dialog["_start_chat_url"],
        format!("https://gms.example.com/genesys/1/service/{id}/ixn/chat"),
        "{dialog}"
    );
    assert_eq!(
        dialog["_comet_url"],
        "https://gms.example.com/genesys/cometd"
    );

    // Without it, the Host header decides (documented in docs/operations.md).
    let app = spawn_app().await;
    let dialog = dialog_with_forged_host(&app).await;
    assert_eq!(dialog["_comet_url"], "http://evil.example/genesys/cometd");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;

    let app = spawn_app_with(|config| config.admin_token = None).await;
    app.create("chat-delay", &[("_customer_number", "1")]).await;

    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = app.data_dir();
    // Directories 0700: nothing inside, including files sled creates later, is reachable
    // by another user. (On PostgreSQL the data directory holds only the token.)
    let on_sled = !crate::helpers::on_postgres();
    let database = on_sled.then(|| dir.join("db"));
    for sub in std::iter::once(dir.to_path_buf()).chain(database.clone()) {
        assert_eq!(mode(&sub), 0o700, "{}", sub.display());
    }
    // The files present at start-up: the admin token and the database.
    let database_files = database
        .iter()
        .flat_map(|db| [db.join("db"), db.join("conf")])
        .collect::<Vec<_>>();
    for file in std::iter::once(dir.join("admin_token")).chain(database_files) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
