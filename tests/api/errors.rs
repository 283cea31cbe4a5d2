//! Bad input never panics and never gets a 500: every refusal is a 4xx with the GMS error body
//! `{"exception": ..., "message": ...}`.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Body, Method, Response};
use serde_json::Value;

use crate::helpers::{json, spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN, GMS_USER};

const CHAT_DELAY: &str = "/genesys/1/service/callback/chat-delay";

/// Asserts the GMS error shape: a JSON object with exactly a non-empty `exception` and a
/// non-empty `message`. Returns the message.
async fn error_body(response: Response, what: &str) -> String {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body = json(response).await;
    assert_eq!(
        content_type.as_deref(),
        Some("application/json;charset=UTF-8"),
        "{what}: JSON content-type"
    );
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: the error is a JSON object: {body}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["exception", "message"], "{what}: error keys: {body}");
    for key in keys {
        assert!(
            object[key].as_str().is_some_and(|v| !v.trim().is_empty()),
            "{what}: `{key}` is a non-empty string: {body}"
        );
    }
    body["message"].as_str().unwrap_or_default().to_string()
}

/// Asserts the status and the error shape, and that the message contains `needle`.
async fn assert_error(response: Response, status: u16, needle: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}: status");
    let message = error_body(response, what).await;
    assert!(
        message.contains(needle),
        "{what}: the message names `{needle}`: {message}"
    );
}

/// POSTs raw bytes with a Content-Type to `path` as the seeds' user.
async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> Response {
    app.request(Method::POST, path)
        .header("content-type", content_type)
        .header("gms_user", GMS_USER)
        .body(body)
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn creating_on_an_unknown_configured_service_is_404() {
    // Arrange
    let app = spawn_app().await;

    for path in [
        "/genesys/1/service/callback/no-such-service",
        "/genesys/1/service/no-such-service",
    ] {
        // Act
        let response = app
            .post_form(path, Some(GMS_USER), &[("_customer_number", "4082652649")])
            .await;

        // Assert
        assert_error(response, 404, "no-such-service", path).await;
    }
}

#[tokio::test]
async fn bodies_of_other_content_types_are_415() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        ("text/plain", "_customer_number=4082652649"),
        (
            "application/xml",
            "<callback><_customer_number>4082652649</_customer_number></callback>",
        ),
    ];

    for (content_type, body) in cases {
        // Act
        let response = post_raw(&app, CHAT_DELAY, content_type, body.into()).await;

        // Assert
        assert_error(response, 415, content_type, content_type).await;
    }
}

#[tokio::test]
async fn chat_delay_without_customer_number_is_400_naming_it() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .post_form(
            CHAT_DELAY,
            Some(GMS_USER),
            &[("usr_reason", "billing question")],
        )
        .await;

    // Assert
    assert_error(response, 400, "_customer_number", "no _customer_number").await;
}

#[tokio::test]
async fn malformed_multipart_is_400() {
    // Arrange
    let app = spawn_app().await;
    let cases: [(&str, &[u8]); 3] = [
        ("garbage after a delimiter", b"--XYZ\r\ngarbage"),
        (
            "a part that never ends",
            b"--XYZ\r\nContent-Disposition: form-data; name=\"_customer_number\"\r\n\r\n4082652649",
        ),
        (
            "no delimiter at all",
            b"this is not a multipart body at all",
        ),
    ];

    for (what, body) in cases {
        // Act
        let response = post_raw(
            &app,
            CHAT_DELAY,
            "multipart/form-data; boundary=XYZ",
            body.to_vec(),
        )
        .await;

        // Assert
        assert_error(response, 400, "multipart", what).await;
    }
}

#[tokio::test]
async fn invalid_utf8_in_an_urlencoded_value_is_400_naming_the_field() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = post_raw(
        &app,
        CHAT_DELAY,
        "application/x-www-form-urlencoded",
        b"_customer_number=4082652649&name=%ff%fe".to_vec(),
    )
    .await;

    // Assert
    assert_error(response, 400, "name", "%ff%fe").await;
}

#[tokio::test]
async fn a_percent_escape_that_is_not_two_hex_digits_is_400_naming_the_field() {
    // Arrange: `%+5` once decoded as byte 5 (a lax hex parse took the sign).
    let app = spawn_app().await;

    for escape in ["%+5", "%-1", "% 1", "%4", "%zz"] {
        // Act
        let body = format!("_customer_number=4082652649&usr_note={escape}");
        let response = post_raw(
            &app,
            CHAT_DELAY,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await;

        // Assert
        assert_error(response, 400, "`usr_note`", escape).await;
    }
}

#[tokio::test]
async fn invalid_utf8_bytes_in_a_multipart_part_are_400_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--XYZ\r\nContent-Disposition: form-data; name=\"_customer_number\"\r\n\r\n4082652649\r\n",
    );
    body.extend_from_slice(b"--XYZ\r\nContent-Disposition: form-data; name=\"usr_reason\"\r\n\r\n");
    body.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    body.extend_from_slice(b"\r\n--XYZ--\r\n");

    // Act
    let response = post_raw(&app, CHAT_DELAY, "multipart/form-data; boundary=XYZ", body).await;

    // Assert
    assert_error(response, 400, "usr_reason", "raw 0xff bytes").await;
}

#[tokio::test]
async fn bad_create_fields_are_400_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("_desired_time", "tomorrow")], "_desired_time"),
        (
            &[("_desired_time", "2026-02-30T10:00:00Z")],
            "_desired_time",
        ),
        (&[("_device_os", "symbian")], "_device_os"),
        (
            &[
                ("_device_os", "httpcb"),
                ("_device_notification_id", GMS_USER),
            ],
            "_device_notification_id",
        ),
        (&[("_device_os", "httpcb")], "_device_notification_id"),
    ];

    for (fields, named) in cases {
        let mut fields = fields.to_vec();
        fields.push(("_customer_number", "4082652649"));

        // Act
        let response = app.post_form(CHAT_DELAY, Some(GMS_USER), &fields).await;

        // Assert
        assert_error(response, 400, named, &format!("{fields:?}")).await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_the_server_keeps_serving() {
    // Arrange
    let app = spawn_app_with(|config| config.max_body_bytes = 2048).await;
    let big = format!(
        "_customer_number=4082652649&usr_note={}",
        "x".repeat(10 * 1024)
    );

    // Act
    let too_big = post_raw(
        &app,
        CHAT_DELAY,
        "application/x-www-form-urlencoded",
        big.into(),
    )
    .await;
    let normal = app
        .post_form(
            CHAT_DELAY,
            Some(GMS_USER),
            &[("_customer_number", "4082652649")],
        )
        .await;

    // Assert
    assert_error(too_big, 413, "2048", "10 KB with a content-length").await;
    assert_eq!(normal.status(), 200, "a normal create afterwards");
    assert!(
        json(normal).await["_id"].is_string(),
        "the normal create answers an _id"
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    // Arrange
    let app = spawn_app_with(|config| config.max_body_bytes = 2048).await;
    let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"_customer_number=4082652649&usr_note=".to_vec())];
    chunks.extend((0..10).map(|_| Ok(vec![b'x'; 1024])));
    let body = Body::wrap_stream(futures_util::stream::iter(chunks));

    // Act
    let response = app
        .request(Method::POST, CHAT_DELAY)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("gms_user", GMS_USER)
        .body(body)
        .send()
        .await
        .expect("request sent");

    // Assert
    assert_error(response, 413, "2048", "10 KB chunked").await;
    let normal = app
        .post_form(
            CHAT_DELAY,
            Some(GMS_USER),
            &[("_customer_number", "4082652649")],
        )
        .await;
    assert_eq!(normal.status(), 200, "a normal create afterwards");
}

/// One hostile request.
struct Hostile {
    what: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Option<Vec<u8>>,
    status: u16,
}

impl Hostile {
    fn new(what: &'static str, method: Method, path: impl Into<String>) -> Self {
        Self {
            what,
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            status: 0,
        }
    }

    /// The status this request must get.
    fn expect(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        let value = HeaderValue::from_bytes(value.as_ref()).expect("a sendable header value");
        self.headers.push((name, value));
        self
    }

    fn body(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self.header("content-type", content_type)
    }

    fn untyped_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn form(self, fields: &[(&str, &str)]) -> Self {
        let encoded = serde_urlencoded::to_string(fields).expect("encodes");
        self.body("application/x-www-form-urlencoded", encoded)
    }

    async fn send(&self, app: &TestApp) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(HeaderName::from_static(name), value.clone());
        }
        let mut request = app
            .request(self.method.clone(), &self.path)
            .headers(headers);
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        request.send().await.expect("request sent")
    }
}

#[tokio::test]
async fn hostile_requests_get_their_exact_4xx_with_the_error_shape() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let nested_target = format!(
        "?:{}a=1{}@StatServer.GA",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let huge_query = format!("/genesys/1/service/callback?_id={}", "9".repeat(40_000));
    let huge_bad_key = format!("/genesys/1/service/callback?_{}=1", "k".repeat(40_000));
    let long_name = "n".repeat(200);
    let hundred = "1".repeat(100);
    let cases = vec![
        Hostile::new("PATCH on create", Method::PATCH, CHAT_DELAY).expect(405),
        Hostile::new("DELETE without id", Method::DELETE, CHAT_DELAY).expect(405),
        Hostile::new("PUT on the service API", Method::PUT, "/genesys/1/service/request-chat").expect(405),
        Hostile::new("unknown path", Method::GET, "/genesys/2/service/callback").expect(404),
        Hostile::new("root", Method::GET, "/").expect(404),
        Hostile::new("deep unknown path", Method::GET, format!("{CHAT_DELAY}/{id}/more/and/more")).expect(404),
        Hostile::new("query without a filter", Method::GET, "/genesys/1/service/callback").expect(400),
        Hostile::new("huge _id query", Method::GET, huge_query).expect(404),
        Hostile::new("huge unknown query key", Method::GET, huge_bad_key).expect(400),
        Hostile::new("bad percent escape in the query", Method::GET, "/genesys/1/service/callback?_id=%zz").expect(400),
        Hostile::new("unknown state filter", Method::GET, "/genesys/1/service/callback?_customer_number=1&_callback_state=DONE").expect(400),
        Hostile::new("empty negated state filter", Method::GET, "/genesys/1/service/callback/chat-delay?_callback_state=!").expect(400),
        Hostile::new("empty body on chat-delay", Method::POST, CHAT_DELAY).expect(400),
        Hostile::new("empty urlencoded body on chat-delay", Method::POST, CHAT_DELAY).expect(400)
            .body("application/x-www-form-urlencoded", ""),
        Hostile::new("NUL in a field name", Method::POST, CHAT_DELAY).expect(400)
            .body("application/x-www-form-urlencoded", "_customer_number=1&usr%00reason=x"),
        Hostile::new("NUL in a multipart part name", Method::POST, CHAT_DELAY).expect(400).body(
            "multipart/form-data; boundary=XYZ",
            &b"--XYZ\r\nContent-Disposition: form-data; name=\"_customer_number\"\r\n\r\n1\r\n--XYZ\r\nContent-Disposition: form-data; name=\"usr\0reason\"\r\n\r\nx\r\n--XYZ--\r\n"[..],
        ),
        Hostile::new("a 200-character field name", Method::POST, CHAT_DELAY).expect(400)
            .form(&[("_customer_number", "1"), (long_name.as_str(), "x")]),
        Hostile::new("deeply nested _target override", Method::POST, CHAT_DELAY).expect(400)
            .form(&[("_customer_number", "1"), ("_target", nested_target.as_str())]),
        Hostile::new("JSON array body", Method::POST, CHAT_DELAY).expect(400)
            .body("application/json", r#"[{"_customer_number":"1"}]"#),
        Hostile::new("nested JSON field", Method::POST, CHAT_DELAY).expect(400)
            .body("application/json", r#"{"_customer_number":{"a":1}}"#),
        Hostile::new("truncated JSON", Method::POST, CHAT_DELAY).expect(400)
            .body("application/json", r#"{"_customer_number":"1""#),
        Hostile::new("JSON on the service API", Method::POST, "/genesys/1/service/request-chat").expect(415)
            .body("application/json", r#"{"_verbose":"true"}"#),
        Hostile::new("multipart without a boundary", Method::POST, CHAT_DELAY).expect(400)
            .body("multipart/form-data", "--XYZ--\r\n"),
        Hostile::new("a body without Content-Type", Method::POST, CHAT_DELAY).expect(415)
            .untyped_body("_customer_number=1"),
        Hostile::new("desired time before 1970", Method::POST, CHAT_DELAY).expect(400)
            .form(&[("_customer_number", "1"), ("_desired_time", "1969-12-31T23:59:59Z")]),
        Hostile::new("a 100-character customer number", Method::POST, CHAT_DELAY).expect(400)
            .form(&[("_customer_number", hundred.as_str())]),
        Hostile::new("non-ASCII gms_user header", Method::POST, CHAT_DELAY).expect(400)
            .header("gms_user", [0xff, 0xfe])
            .form(&[("_customer_number", "1")]),
        Hostile::new("override on a service that allows none", Method::POST, "/genesys/1/service/request-chat").expect(400)
            .form(&[("_ttl", "1")]),
        Hostile::new("reschedule with nothing to change", Method::PUT, format!("{CHAT_DELAY}/{id}")).expect(400)
            .header("gms_user", GMS_USER)
            .form(&[]),
        Hostile::new("reschedule with a NUL in a field name", Method::PUT, format!("{CHAT_DELAY}/{id}"))
            .expect(400)
            .header("gms_user", GMS_USER)
            .body("application/x-www-form-urlencoded", "usr%00reason=x"),
        Hostile::new("reschedule of an unknown id", Method::PUT, format!("{CHAT_DELAY}/nope")).expect(404)
            .form(&[("usr_reason", "x")]),
        Hostile::new("cancel on an unknown service", Method::DELETE, format!("/genesys/1/service/callback/no-such/{id}")).expect(404),
        Hostile::new("admin bulk cancel with a text body", Method::POST, "/genesys/1/admin/callback/cancel").expect(400)
            .header("authorization", &bearer)
            .body("application/json", "not json"),
        Hostile::new("admin bulk cancel without ids", Method::POST, "/genesys/1/admin/callback/cancel").expect(400)
            .header("authorization", &bearer)
            .body("application/json", r#"{"ids":[]}"#),
        Hostile::new("admin PUT with an unknown key", Method::PUT, "/genesys/1/admin/services/x").expect(400)
            .header("authorization", &bearer)
            .body("application/json", r#"{"preset":"Chat-Delayed","options":{},"extra":1}"#),
        Hostile::new("admin PUT with an array", Method::PUT, "/genesys/1/admin/services/x").expect(400)
            .header("authorization", &bearer)
            .body("application/json", "[]"),
        Hostile::new("admin PUT of a service named callback", Method::PUT, "/genesys/1/admin/services/callback").expect(400)
            .header("authorization", &bearer)
            .body("application/json", r#"{"preset":"Chat-Delayed","options":{"_target":"Billing@StatServer.GA"}}"#),
        Hostile::new("admin PUT with form data", Method::PUT, "/genesys/1/admin/services/x").expect(415)
            .header("authorization", &bearer)
            .body("application/x-www-form-urlencoded", "preset=Chat-Delayed"),
        Hostile::new("admin queues with a bad max", Method::GET, "/genesys/1/admin/callback/queues?max=lots").expect(400)
            .header("authorization", &bearer),
        Hostile::new("admin queues with a bad state", Method::GET, "/genesys/1/admin/callback/queues?states=NOPE").expect(400)
            .header("authorization", &bearer),
        Hostile::new("admin queues with a bad time", Method::GET, "/genesys/1/admin/callback/queues?start_time=yesterday").expect(400)
            .header("authorization", &bearer),
    ];

    for case in &cases {
        // Act
        let response = case.send(&app).await;

        // Assert
        assert_eq!(response.status().as_u16(), case.status, "{}", case.what);
        error_body(response, case.what).await;
    }
    let entry = app
        .get(
            &format!("/genesys/1/service/callback?_id={id}"),
            Some(GMS_USER),
        )
        .await;
    assert_eq!(
        entry.status(),
        200,
        "the server still answers after all that"
    );
    let entry: Value = json(entry).await;
    assert_eq!(entry[0]["_callback_state"], "QUEUED", "and nothing changed");
}

#[tokio::test]
async fn unknown_endpoint_is_404_with_the_error_shape() {
    // Arrange
    let app = spawn_app().await;

    for path in [
        "/nope",
        "/genesys/1/nope",
        "/genesys/1/service/callback/chat-delay/a/b",
    ] {
        // Act
        let response = app.get(path, Some(GMS_USER)).await;

        // Assert
        assert_eq!(response.status(), 404, "{path}: status");
        error_body(response, path).await;
    }
}

#[tokio::test]
async fn wrong_method_on_a_known_path_is_405() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (Method::PATCH, CHAT_DELAY),
        (Method::DELETE, "/genesys/1/service/callback"),
        (Method::PUT, "/genesys/1/service/request-chat"),
        (Method::POST, "/genesys/1/admin/services"),
        (Method::DELETE, "/genesys/1/admin/callback/queues"),
    ];

    for (method, path) in cases {
        // Act
        let response = app
            .request(method.clone(), path)
            .header("gms_user", GMS_USER)
            .send()
            .await
            .expect("request sent");

        // Assert
        let what = format!("{method} {path}");
        assert_eq!(response.status(), 405, "{what}: status");
        error_body(response, &what).await;
    }
}

#[tokio::test]
async fn a_desired_time_whose_expiration_is_past_year_9999_is_400_naming_it() {
    // Arrange: _ttl is 86400 s, so the expiration of these would be in year 10000, which the
    // ISO form of `_expiration_time` cannot write.
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let too_late = "9999-12-31T23:00:00.000Z";
    let create = app
        .post_form(
            CHAT_DELAY,
            Some(GMS_USER),
            &[
                ("_customer_number", "4082652649"),
                ("_desired_time", too_late),
            ],
        )
        .await;
    let reschedule = app
        .request(Method::PUT, &format!("{CHAT_DELAY}/{id}"))
        .header("gms_user", GMS_USER)
        .form(&[("_new_desired_time", too_late)])
        .send()
        .await
        .expect("request sent");

    // Assert
    assert_error(create, 400, "_desired_time", "create").await;
    assert_error(reschedule, 400, "_new_desired_time", "reschedule").await;
    let query = app
        .get(
            "/genesys/1/service/callback?_customer_number=4082652649",
            Some(GMS_USER),
        )
        .await;
    let body = json(query).await;
    assert_eq!(
        body.as_array().map(Vec::len),
        Some(1),
        "nothing created: {body}"
    );
    assert_eq!(
        body[0]["_callback_state"], "QUEUED",
        "nothing rescheduled: {body}"
    );
}

#[tokio::test]
async fn the_latest_desired_time_whose_expiration_can_be_written_is_accepted() {
    // Arrange
    let app = spawn_app().await;
    let latest = "9999-12-30T23:59:59.999Z";

    // Act
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "4082652649"),
                ("_desired_time", latest),
            ],
        )
        .await;

    // Assert
    let query = app
        .get(
            &format!("/genesys/1/service/callback?_id={id}"),
            Some(GMS_USER),
        )
        .await;
    let body = json(query).await;
    assert_eq!(body[0]["_desired_time"], latest, "_desired_time: {body}");
    assert_eq!(
        body[0]["_expiration_time"], "9999-12-31T23:59:59.999Z",
        "_expiration_time in ISO form: {body}"
    );
}
