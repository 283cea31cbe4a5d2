//! The GMS Storage API (issue 15): `/genesys/1/storage/...` areas with a time to live, text
//! and binary values, custom ids bound to `gms_user`, and a service's own storage.
//! (`storage.rs` beside this file is about the database's disk, not this API.)

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{json, spawn_app, spawn_app_with_clock, ServerProcess, TestApp, GMS_USER};

/// Another end user than the seeds' one.
const OTHER_USER: &str = "someone-else";

/// Bytes that are not UTF-8 (a PNG signature and a few more), so nothing can pass them as text.
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80,
];

/// The GMS documentation's example: three text keys and a file.
fn example_form() -> Form {
    Form::new()
        .text("Key1", "Value1")
        .text("Key2", "Value2")
        .text("Key3", "Value 3 with spaces & ünïcode")
        .part(
            "FileKey",
            Part::bytes(PNG.to_vec())
                .file_name("logo.png")
                .mime_str("image/png")
                .unwrap(),
        )
}

async fn store(app: &TestApp, path: &str, gms_user: Option<&str>, form: Form) -> reqwest::Response {
    let mut request = app.request(Method::POST, path).multipart(form);
    if let Some(user) = gms_user {
        request = request.header("gms_user", user);
    }
    request.send().await.expect("request sent")
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    gms_user: Option<&str>,
) -> reqwest::Response {
    let mut request = app.request(method, path);
    if let Some(user) = gms_user {
        request = request.header("gms_user", user);
    }
    request.send().await.expect("request sent")
}

/// Stores the example form for `ttl` seconds as the seeds' user; returns the id.
async fn stored_example(app: &TestApp, ttl: &str) -> String {
    let response = store(
        app,
        &format!("/genesys/1/storage/{ttl}"),
        Some(GMS_USER),
        example_form(),
    )
    .await;
    assert_eq!(response.status(), 200, "POST /genesys/1/storage/{ttl}");
    let body = json(response).await;
    body["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn text_and_binary_values_round_trip_as_they_were_stored() {
    // Arrange
    let app = spawn_app().await;
    let id = stored_example(&app, "3600").await;
    let form_id = {
        let response = app
            .post_form(
                "/genesys/1/storage/60",
                None,
                &[("plain", "a b+c"), ("plain", "last")],
            )
            .await;
        assert_eq!(response.status(), 200);
        json(response).await["id"].as_str().unwrap().to_string()
    };

    // Act
    let all = json(
        app.get(&format!("/genesys/1/storage/{id}"), Some(GMS_USER))
            .await,
    )
    .await;
    let file = app
        .get(&format!("/genesys/1/storage/{id}/FileKey"), Some(GMS_USER))
        .await;
    let file_type = file.headers()["content-type"].to_str().unwrap().to_string();
    let file_bytes = file.bytes().await.unwrap();
    let text = app
        .get(&format!("/genesys/1/storage/{id}/Key3"), Some(GMS_USER))
        .await;
    let text_type = text.headers()["content-type"].to_str().unwrap().to_string();
    let text_body = text.text().await.unwrap();
    let form_all = json(
        app.get(&format!("/genesys/1/storage/{form_id}"), None)
            .await,
    )
    .await;

    // Assert
    assert_eq!(
        all,
        json!({
            "Key1": "Value1",
            "Key2": "Value2",
            "Key3": "Value 3 with spaces & ünïcode",
            "FileKey": format!("http://{}/genesys/1/storage/binary/{id}/FileKey", app.host),
        }),
        "a binary value as the URL of its bytes"
    );
    let by_url = app
        .get(
            &format!("/genesys/1/storage/binary/{id}/FileKey"),
            Some(GMS_USER),
        )
        .await;
    assert_eq!(by_url.headers()["content-type"], "image/png");
    assert_eq!(
        &by_url.bytes().await.unwrap()[..],
        PNG,
        "the URL serves the bytes"
    );
    assert_eq!(file_type, "image/png");
    assert_eq!(&file_bytes[..], PNG, "binary comes back byte for byte");
    assert_eq!(text_type, "text/plain;charset=UTF-8");
    assert_eq!(text_body, "Value 3 with spaces & ünïcode");
    assert_eq!(
        form_all,
        json!({"plain": "last"}),
        "urlencoded; a repeated key keeps the last"
    );
}

#[tokio::test]
async fn keys_and_areas_are_deleted_and_unknown_ones_are_404() {
    // Arrange
    let app = spawn_app().await;
    let id = stored_example(&app, "3600").await;

    // Act
    let deleted_key = send(
        &app,
        Method::DELETE,
        &format!("/genesys/1/storage/{id}/Key1"),
        Some(GMS_USER),
    )
    .await;
    let key_after = app
        .get(&format!("/genesys/1/storage/{id}/Key1"), Some(GMS_USER))
        .await;
    let others = json(
        app.get(&format!("/genesys/1/storage/{id}"), Some(GMS_USER))
            .await,
    )
    .await;
    let deleted = send(
        &app,
        Method::DELETE,
        &format!("/genesys/1/storage/{id}"),
        Some(GMS_USER),
    )
    .await;
    let after = app
        .get(&format!("/genesys/1/storage/{id}"), Some(GMS_USER))
        .await;
    let unknown = app
        .get("/genesys/1/storage/no-such-id", Some(GMS_USER))
        .await;
    let unknown_delete = send(&app, Method::DELETE, "/genesys/1/storage/no-such-id", None).await;

    // Assert
    assert_eq!(deleted_key.status(), 200);
    assert_eq!(key_after.status(), 404);
    assert!(
        others.get("Key1").is_none() && others.get("Key2").is_some(),
        "{others}"
    );
    assert_eq!(deleted.status(), 200);
    assert_eq!(after.status(), 404);
    assert_eq!(unknown.status(), 404);
    assert_eq!(json(unknown).await["exception"], "NotFound");
    assert_eq!(unknown_delete.status(), 404);
}

#[tokio::test]
async fn an_area_belongs_to_its_user_and_a_custom_id_is_bound_to_gms_user() {
    // Arrange
    let app = spawn_app().await;
    let id = stored_example(&app, "3600").await;

    // Act
    let custom = store(
        &app,
        "/genesys/1/storage/custom/cart-42/600",
        Some(GMS_USER),
        Form::new().text("item", "book"),
    )
    .await;
    let custom_status = custom.status();
    let custom_body = json(custom).await;
    let own = json(app.get("/genesys/1/storage/cart-42", Some(GMS_USER)).await).await;
    let stranger = app
        .get("/genesys/1/storage/cart-42", Some(OTHER_USER))
        .await;
    let anonymous = app.get("/genesys/1/storage/cart-42", None).await;
    let stranger_area = app
        .get(&format!("/genesys/1/storage/{id}"), Some(OTHER_USER))
        .await;
    // Another user's custom id is 403 before the body is judged (this one would be a 415).
    let taken = app
        .request(Method::POST, "/genesys/1/storage/custom/cart-42/600")
        .header("gms_user", OTHER_USER)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let no_user = store(
        &app,
        "/genesys/1/storage/custom/new-id/600",
        None,
        Form::new().text("a", "b"),
    )
    .await;
    let replaced = store(
        &app,
        "/genesys/1/storage/custom/cart-42/600",
        Some(GMS_USER),
        Form::new().text("item", "pen"),
    )
    .await;
    let after_replace = json(app.get("/genesys/1/storage/cart-42", Some(GMS_USER)).await).await;

    // Assert
    assert_eq!(custom_status, 200);
    assert_eq!(custom_body, json!({"id": "cart-42"}));
    assert_eq!(own, json!({"item": "book"}));
    assert_eq!(stranger.status(), 403);
    assert_eq!(anonymous.status(), 403);
    assert_eq!(
        stranger_area.status(),
        403,
        "an area made with gms_user is its user's"
    );
    assert_eq!(taken.status(), 403);
    assert_eq!(no_user.status(), 400);
    assert!(json(no_user).await["message"]
        .as_str()
        .unwrap()
        .contains("gms_user"));
    assert_eq!(replaced.status(), 200);
    assert_eq!(
        after_replace,
        json!({"item": "pen"}),
        "the same user replaces the area"
    );
}

#[tokio::test]
async fn an_area_expires_after_its_ttl_on_the_injected_clock() {
    // Arrange: time stands still until the test moves it.
    let start = callbackd::domain::time::Timestamp::parse_iso("2030-01-01T00:00:00Z").unwrap();
    let clock = callbackd::clock::ManualClock::new(start);
    let app = spawn_app_with_clock(clock.clone()).await;
    let id = stored_example(&app, "60").await;
    // GMS: a TTL that is not a positive integer is 30 seconds.
    let defaulted = stored_example(&app, "-1").await;

    // Act and Assert
    clock.advance_secs(29);
    assert_eq!(
        app.get(&format!("/genesys/1/storage/{defaulted}"), Some(GMS_USER))
            .await
            .status(),
        200
    );
    clock.advance_secs(1);
    assert_eq!(
        app.get(&format!("/genesys/1/storage/{defaulted}"), Some(GMS_USER))
            .await
            .status(),
        404,
        "30 s default"
    );
    clock.advance_secs(29);
    assert_eq!(
        app.get(&format!("/genesys/1/storage/{id}/Key1"), Some(GMS_USER))
            .await
            .status(),
        200,
        "59 s"
    );
    clock.advance_secs(1);
    assert_eq!(
        app.get(&format!("/genesys/1/storage/{id}"), Some(GMS_USER))
            .await
            .status(),
        404,
        "60 s"
    );
    assert_eq!(
        app.get(&format!("/genesys/1/storage/{id}/Key1"), Some(GMS_USER))
            .await
            .status(),
        404
    );
    let too_long = store(
        &app,
        "/genesys/1/storage/99999999999",
        None,
        Form::new().text("a", "b"),
    )
    .await;
    assert_eq!(too_long.status(), 400);
    assert!(json(too_long).await["message"]
        .as_str()
        .unwrap()
        .contains("time to live"));
}

#[tokio::test]
async fn an_acknowledged_area_survives_a_kill_and_a_restart() {
    // Arrange
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!(
            "{}/genesys/1/storage/custom/kept/3600",
            server.address
        ))
        .header("gms_user", GMS_USER)
        .multipart(example_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Act
    server.kill9();
    let server = ServerProcess::start(data_dir.path(), &[]);
    let file = client
        .get(format!("{}/genesys/1/storage/kept/FileKey", server.address))
        .header("gms_user", GMS_USER)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(file.status(), 200);
    assert_eq!(&file.bytes().await.unwrap()[..], PNG);
}

#[tokio::test]
async fn limits_and_body_types_are_refused_with_their_status() {
    // Arrange
    let app = spawn_app().await;
    let big = vec![b'x'; 512 * 1024 + 1];

    // Act
    let too_big = store(
        &app,
        "/genesys/1/storage/60",
        None,
        Form::new().part("big", Part::bytes(big).file_name("b")),
    )
    .await;
    let as_json = app
        .request(Method::POST, "/genesys/1/storage/60")
        .header("content-type", "application/json")
        .body(r#"{"a":"b"}"#)
        .send()
        .await
        .unwrap();
    let bad_key = app
        .post_form("/genesys/1/storage/60", None, &[("", "v")])
        .await;

    // Assert
    assert_eq!(too_big.status(), 413);
    assert!(
        json(too_big).await["message"]
            .as_str()
            .unwrap()
            .contains("`big`"),
        "names the key"
    );
    assert_eq!(as_json.status(), 415);
    assert_eq!(bad_key.status(), 400);
}

#[tokio::test]
async fn a_service_has_its_own_storage_reachable_by_its_owner_only() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "5551234")])
        .await;
    let path = format!("/genesys/1/service/{id}/storage");

    // Act
    let stored = store(&app, &path, Some(GMS_USER), example_form()).await;
    let more = app
        .post_form(&path, Some(GMS_USER), &[("Key1", "changed")])
        .await;
    let all = json(app.get(&path, Some(GMS_USER)).await).await;
    let binary = app
        .get(&format!("{path}/binary/FileKey"), Some(GMS_USER))
        .await;
    let binary_type = binary.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let binary_bytes = binary.bytes().await.unwrap();
    let text = app
        .get(&format!("{path}/Key1"), Some(GMS_USER))
        .await
        .text()
        .await
        .unwrap();
    let stranger = app.get(&path, Some(OTHER_USER)).await;
    // 403 before the body is read (this body would be a 415).
    let stranger_post = app
        .request(Method::POST, &path)
        .header("gms_user", OTHER_USER)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let unknown = app
        .get("/genesys/1/service/no-such-service/storage", Some(GMS_USER))
        .await;
    let deleted_key = send(
        &app,
        Method::DELETE,
        &format!("{path}/Key2"),
        Some(GMS_USER),
    )
    .await;
    let missing_key = app.get(&format!("{path}/Key2"), Some(GMS_USER)).await;
    let deleted = send(&app, Method::DELETE, &path, Some(GMS_USER)).await;
    let empty = json(app.get(&path, Some(GMS_USER)).await).await;

    // Assert
    assert_eq!(stored.status(), 200);
    assert_eq!(more.status(), 200);
    assert_eq!(
        all["Key1"], "changed",
        "a key sent again is replaced: {all}"
    );
    assert_eq!(all["Key2"], "Value2");
    assert_eq!(
        all["FileKey"],
        format!("http://{}{path}/binary/FileKey", app.host),
        "a binary value as the URL of its bytes"
    );
    assert_eq!(binary_type, "image/png");
    assert_eq!(&binary_bytes[..], PNG);
    assert_eq!(text, "changed");
    assert_eq!(stranger.status(), 403);
    assert_eq!(stranger_post.status(), 403);
    assert_eq!(unknown.status(), 404);
    assert_eq!(deleted_key.status(), 200);
    assert_eq!(missing_key.status(), 404);
    assert_eq!(deleted.status(), 200);
    assert_eq!(empty, json!({}));
}
