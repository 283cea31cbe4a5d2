//! The customer-facing GMS API: the Callback API (`/genesys/1/service/callback/...`) and the
//! generic Service API (`/genesys/1/service/{name}`), as the seeds show them on the wire.

use reqwest::{Method, Response};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use crate::helpers::{json, spawn_app, TestApp, GMS_USER};

/// Another end user than the seeds' one.
const OTHER_USER: &str = "0000000000000000000000000000000000000000000000000000000000000bad";

/// Seed 000: the multipart body of "Create chat (delay) service", byte for byte.
const SEED_000_BOUNDARY: &str = "----WebKitFormBoundary0WnE36LruxJ4S5nu";
const SEED_000_BODY: &str = "------WebKitFormBoundary0WnE36LruxJ4S5nu\r\n\
Content-Disposition: form-data; name=\"_customer_number\"\r\n\
\r\n\
4082652649\r\n\
------WebKitFormBoundary0WnE36LruxJ4S5nu\r\n\
Content-Disposition: form-data; name=\"usr_customer_name\"\r\n\
\r\n\
Bob Markel\r\n\
------WebKitFormBoundary0WnE36LruxJ4S5nu\r\n\
Content-Disposition: form-data; name=\"usr_reason\"\r\n\
\r\n\
billing question\r\n\
------WebKitFormBoundary0WnE36LruxJ4S5nu\r\n\
Content-Disposition: form-data; name=\"_device_notification_id\"\r\n\
\r\n\
b16416334828b1d26ef14f329628b55b5a8c631d8928a371a5584722dd7fb673\r\n\
------WebKitFormBoundary0WnE36LruxJ4S5nu\r\n\
Content-Disposition: form-data; name=\"_device_os\"\r\n\
\r\n\
comet\r\n\
------WebKitFormBoundary0WnE36LruxJ4S5nu--\r\n";

/// Seed 001: the multipart body of "Create chat immediate service" (its boundary has three
/// dashes, so the delimiter lines have five).
const SEED_001_BOUNDARY: &str = "---WebKitFormBoundaryYbCe8VCHJCMGeynE";
const SEED_001_BODY: &str = "-----WebKitFormBoundaryYbCe8VCHJCMGeynE\r\n\
Content-Disposition: form-data; name=\"_customer_number\"\r\n\
\r\n\
6502388511\r\n\
-----WebKitFormBoundaryYbCe8VCHJCMGeynE\r\n\
Content-Disposition: form-data; name=\"usr_customer_name\"\r\n\
\r\n\
Bob Markel\r\n\
-----WebKitFormBoundaryYbCe8VCHJCMGeynE\r\n\
Content-Disposition: form-data; name=\"usr_reason\"\r\n\
\r\n\
billing question\r\n\
-----WebKitFormBoundaryYbCe8VCHJCMGeynE\r\n\
Content-Disposition: form-data; name=\"_device_notification_id\"\r\n\
\r\n\
b16416334828b1d26ef14f329628b55b5a8c631d8928a371a5584722dd7fb673\r\n\
-----WebKitFormBoundaryYbCe8VCHJCMGeynE\r\n\
Content-Disposition: form-data; name=\"_device_os\"\r\n\
\r\n\
comet\r\n\
-----WebKitFormBoundaryYbCe8VCHJCMGeynE--\r\n";

/// The fields of seed 000 as an urlencoded form.
const SEED_000_FIELDS: &[(&str, &str)] = &[
    ("_customer_number", "4082652649"),
    ("usr_customer_name", "Bob Markel"),
    ("usr_reason", "billing question"),
    ("_device_notification_id", GMS_USER),
    ("_device_os", "comet"),
];

/// POSTs a literal multipart body as the seeds' user.
async fn post_multipart(app: &TestApp, path: &str, boundary: &str, body: &'static str) -> Response {
    app.request(Method::POST, path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("gms_user", GMS_USER)
        .body(body)
        .send()
        .await
        .expect("request sent")
}

/// Sends `method` to `path` with an urlencoded body as `gms_user` (if given).
async fn send_form(
    app: &TestApp,
    method: Method,
    path: &str,
    gms_user: Option<&str>,
    fields: &[(&str, &str)],
) -> Response {
    let mut request = app.request(method, path).form(fields);
    if let Some(user) = gms_user {
        request = request.header("gms_user", user);
    }
    request.send().await.expect("request sent")
}

/// DELETEs `path` as `gms_user` (if given).
async fn delete(app: &TestApp, path: &str, gms_user: Option<&str>) -> Response {
    let mut request = app.request(Method::DELETE, path);
    if let Some(user) = gms_user {
        request = request.header("gms_user", user);
    }
    request.send().await.expect("request sent")
}

/// The one query entry for `id`, as the seeds' user.
async fn query_one(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(
            &format!("/genesys/1/service/callback?_id={id}"),
            Some(GMS_USER),
        )
        .await;
    assert_eq!(response.status(), 200, "query of {id}");
    let body = json(response).await;
    let entries = body.as_array().expect("the query answers a JSON array");
    assert_eq!(entries.len(), 1, "one entry for _id={id}: {body}");
    entries[0].clone()
}

/// The `_id`s of a query answer, in order.
fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {body}"))
        .iter()
        .map(|entry| entry["_id"].as_str().expect("_id").to_string())
        .collect()
}

/// Reads a GMS ISO time (`2026-11-21T15:30:00.000Z`), failing the test on another format.
fn iso(value: &Value) -> OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    let shape = text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.';
    assert!(shape, "`{text}` is not like 2026-11-21T15:30:00.000Z");
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|err| panic!("`{text}`: {err}"))
}

/// `at` in the GMS wire form, whole seconds.
fn to_iso(at: OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).expect("zero nanoseconds");
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .expect("formats")
}

/// Asserts a GMS error reply: the status and a message naming `needle`.
async fn assert_error(response: Response, status: u16, needle: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}: status");
    let body = json(response).await;
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        body["exception"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: error body has an exception: {body}"
    );
    assert!(
        message.contains(needle),
        "{what}: the message names `{needle}`: {body}"
    );
}

#[tokio::test]
async fn chat_delay_create_with_the_seed_000_body_answers_id_and_text() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = post_multipart(
        &app,
        "/genesys/1/service/callback/chat-delay",
        SEED_000_BOUNDARY,
        SEED_000_BODY,
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200, "seed 000 create");
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-type"], "application/json;charset=UTF-8",
        "content-type as in the seed"
    );
    let cache_control: Vec<&str> = headers
        .get_all("cache-control")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    let cache_control = cache_control.join(", ");
    for directive in ["no-cache", "no-store"] {
        assert!(
            cache_control.contains(directive),
            "cache-control `{cache_control}` has {directive}"
        );
    }
    assert_eq!(headers["pragma"], "no-cache", "pragma");
    assert_eq!(
        headers["expires"], "Thu, 01 Jan 1970 00:00:00 GMT",
        "expires"
    );
    let body = json(response).await;
    let object = body.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    // Seed 000's `_id` and `_text`, plus the ConfirmationDialog keys (issue 16: the Genesys
    // sample app switches on `_action`).
    assert_eq!(
        keys,
        [
            "_action",
            "_dialogId",
            "_dialog_id",
            "_id",
            "_okTitle",
            "_ok_title",
            "_text"
        ],
        "seed 000's _id and _text and the dialog keys: {body}"
    );
    assert_eq!(body["_action"], "ConfirmationDialog", "_action");
    let id = body["_id"].as_str().expect("_id is a string");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "_id `{id}` is a UUID");
    assert_eq!(
        body["_text"], "We will notify you when agent is available",
        "_text as in seed 000"
    );
}

#[tokio::test]
async fn chat_delay_create_with_the_seed_000_body_stores_every_seed_field() {
    // Arrange
    let app = spawn_app().await;
    let response = post_multipart(
        &app,
        "/genesys/1/service/callback/chat-delay",
        SEED_000_BOUNDARY,
        SEED_000_BODY,
    )
    .await;
    let id = json(response).await["_id"]
        .as_str()
        .expect("_id")
        .to_string();

    // Act
    let entry = query_one(&app, &id).await;

    // Assert
    for (key, expected) in [
        ("_customer_number", "4082652649"),
        ("usr_customer_name", "Bob Markel"),
        ("usr_reason", "billing question"),
        ("_service_name", "chat-delay"),
    ] {
        assert_eq!(entry[key], expected, "{key} of the seed 000 service");
    }
}

#[tokio::test]
async fn chat_immediate_create_with_the_seed_001_body_answers_the_start_chat_dialog() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = post_multipart(
        &app,
        "/genesys/1/service/callback/chat-immediate",
        SEED_001_BOUNDARY,
        SEED_001_BODY,
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200, "seed 001 create");
    assert_eq!(
        response.headers()["content-type"],
        "application/json;charset=UTF-8",
        "content-type as in the seed"
    );
    let body = json(response).await;
    let id = body["_id"].as_str().expect("_id is a string").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "_id `{id}` is a UUID");
    let host = &app.host;
    let expected = json!({
        "_dialog_id": "1",
        "_action": "StartChat",
        "_label": "Start Chat",
        "_start_chat_url": format!("http://{host}/genesys/1/service/{id}/ixn/chat"),
        "_comet_url": format!("http://{host}/genesys/cometd"),
        "_user_header": GMS_USER,
        "_id_to_jump_before": "exit://",
        "_chat_parameters": {"subject": "None"},
        "_id": id,
    });
    assert_eq!(body, expected, "the StartChat dialog of seed 001");
}

#[tokio::test]
async fn start_chat_urls_use_the_host_header_the_client_sent() {
    // Arrange
    let app = spawn_app().await;

    // Act (seed 001's client sent `Host: localhost:8080`)
    let response = app
        .request(Method::POST, "/genesys/1/service/callback/chat-immediate")
        .header("host", "localhost:8080")
        .header("gms_user", GMS_USER)
        .form(SEED_000_FIELDS)
        .send()
        .await
        .expect("request sent");

    // Assert
    assert_eq!(response.status(), 200, "create");
    let body = json(response).await;
    let id = body["_id"].as_str().expect("_id");
    assert_eq!(
        body["_start_chat_url"],
        format!("http://localhost:8080/genesys/1/service/{id}/ixn/chat"),
        "_start_chat_url under the Host sent"
    );
    assert_eq!(
        body["_comet_url"], "http://localhost:8080/genesys/cometd",
        "_comet_url under the Host sent"
    );
}

#[tokio::test]
async fn chat_immediate_create_accepts_urlencoded_and_json_object_bodies() {
    // Arrange
    let app = spawn_app().await;
    let path = "/genesys/1/service/callback/chat-immediate";
    let as_json: serde_json::Map<String, Value> = SEED_000_FIELDS
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let cases = [
        (
            "urlencoded",
            app.request(Method::POST, path).form(SEED_000_FIELDS),
        ),
        (
            "json object",
            app.request(Method::POST, path).json(&as_json),
        ),
    ];

    for (encoding, request) in cases {
        // Act
        let response = request
            .header("gms_user", GMS_USER)
            .send()
            .await
            .expect("request sent");

        // Assert
        assert_eq!(response.status(), 200, "{encoding}: create");
        let body = json(response).await;
        assert_eq!(body["_action"], "StartChat", "{encoding}: the dialog");
        assert_eq!(body["_user_header"], GMS_USER, "{encoding}: _user_header");
        let id = body["_id"].as_str().expect("_id");
        let entry = query_one(&app, id).await;
        assert_eq!(
            entry["_customer_number"], "4082652649",
            "{encoding}: _customer_number stored"
        );
        assert_eq!(
            entry["usr_reason"], "billing question",
            "{encoding}: user data stored"
        );
    }
}

#[tokio::test]
async fn service_api_with_verbose_true_answers_the_chat_create_url() {
    // Arrange
    let app = spawn_app().await;

    // Act (seed 003: "Create Service Session")
    let response = app
        .post_form(
            "/genesys/1/service/request-chat",
            Some(GMS_USER),
            &[("_verbose", "true")],
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200, "request-chat create");
    assert_eq!(
        response.headers()["content-type"],
        "application/json;charset=UTF-8",
        "content-type as in the seed"
    );
    let body = json(response).await;
    let id = body["_id"].as_str().expect("_id is a string").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "_id `{id}` is a UUID");
    assert_eq!(
        body,
        json!({
            "_chatIxnAPI-CREATE-URL": format!("/genesys/1/service/{id}/ixn/chat"),
            "_id": id,
        }),
        "the verbose reply of seed 003"
    );
}

#[tokio::test]
async fn service_api_with_verbose_false_answers_only_the_id() {
    // Arrange
    let app = spawn_app().await;

    // Act (seed 003: "Create a Service" on request-chat-poll)
    let response = app
        .post_form(
            "/genesys/1/service/request-chat-poll",
            Some(GMS_USER),
            &[("_verbose", "false")],
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200, "request-chat-poll create");
    let body = json(response).await;
    let id = body["_id"].as_str().expect("_id is a string").to_string();
    assert_eq!(body, json!({ "_id": id }), "only _id when not verbose");
}

#[tokio::test]
async fn query_by_id_shows_the_queued_service_with_times_and_user_data() {
    // Arrange
    let app = spawn_app().await;
    let before = OffsetDateTime::now_utc();
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "4082652649"),
                ("usr_reason", "billing question"),
            ],
        )
        .await;
    let after = OffsetDateTime::now_utc();

    // Act
    let entry = query_one(&app, &id).await;

    // Assert
    assert_eq!(entry["_id"], id.as_str(), "_id");
    assert_eq!(entry["_service_name"], "chat-delay", "_service_name");
    assert_eq!(entry["_callback_state"], "QUEUED", "_callback_state");
    assert_eq!(entry["_customer_number"], "4082652649", "_customer_number");
    assert_eq!(entry["usr_reason"], "billing question", "user data");
    assert!(
        entry.get("_callback_reason").is_none(),
        "no _callback_reason while not completed: {entry}"
    );
    let desired = iso(&entry["_desired_time"]);
    let expiration = iso(&entry["_expiration_time"]);
    assert!(
        desired >= before - Duration::seconds(1) && desired <= after + Duration::seconds(1),
        "_desired_time {desired} defaults to the creation time"
    );
    assert_eq!(
        expiration - desired,
        Duration::seconds(86_400),
        "_expiration_time is _desired_time + _ttl (86400 s)"
    );
}

#[tokio::test]
async fn query_filters_by_customer_number_and_callback_state() {
    // Arrange
    let app = spawn_app().await;
    let queued = app
        .create("chat-delay", &[("_customer_number", "5551000")])
        .await;
    let cancelled = app
        .create("chat-delay", &[("_customer_number", "5551000")])
        .await;
    let other_customer = app
        .create("chat-delay", &[("_customer_number", "5552000")])
        .await;
    let cancel = delete(
        &app,
        &format!("/genesys/1/service/callback/chat-delay/{cancelled}"),
        Some(GMS_USER),
    )
    .await;
    assert_eq!(cancel.status(), 200, "cancel for the arrangement");
    let cases: [(&str, Vec<&str>); 6] = [
        (
            "_customer_number=5551000",
            vec![queued.as_str(), cancelled.as_str()],
        ),
        (
            "_customer_number=5551000&_callback_state=!COMPLETED",
            vec![queued.as_str()],
        ),
        (
            "_customer_number=5551000&_callback_state=QUEUED",
            vec![queued.as_str()],
        ),
        (
            "_customer_number=5551000&_callback_state=COMPLETED",
            vec![cancelled.as_str()],
        ),
        ("_customer_number=5552000", vec![other_customer.as_str()]),
        ("_customer_number=5553000", vec![]),
    ];

    for (filter, expected) in cases {
        // Act
        let response = app
            .get(
                &format!("/genesys/1/service/callback?{filter}"),
                Some(GMS_USER),
            )
            .await;

        // Assert
        assert_eq!(response.status(), 200, "{filter}: status");
        let mut found = ids(&json(response).await);
        found.sort();
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(found, expected, "{filter}: the services found");
    }
}

#[tokio::test]
async fn per_service_query_lists_only_that_services_records() {
    // Arrange
    let app = spawn_app().await;
    let delay_a = app.create("chat-delay", &[("_customer_number", "1")]).await;
    let delay_b = app.create("chat-delay", &[("_customer_number", "2")]).await;
    let immediate = app
        .create("chat-immediate", &[("_customer_number", "1")])
        .await;

    // Act
    let response = app
        .get(
            "/genesys/1/service/callback/chat-delay?_callback_state=QUEUED",
            Some(GMS_USER),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200, "per-service query");
    let body = json(response).await;
    let mut found = ids(&body);
    found.sort();
    let mut expected = vec![delay_a, delay_b];
    expected.sort();
    assert_eq!(found, expected, "only chat-delay services: {body}");
    assert!(
        !found.contains(&immediate),
        "the chat-immediate service is not listed"
    );
    for entry in body.as_array().expect("array") {
        assert_eq!(entry["_service_name"], "chat-delay", "service of {entry}");
    }
}

#[tokio::test]
async fn query_filters_on_user_data_equality() {
    // Arrange
    let app = spawn_app().await;
    let billing = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "777"),
                ("usr_reason", "billing question"),
            ],
        )
        .await;
    let loans = app
        .create(
            "chat-delay",
            &[("_customer_number", "777"), ("usr_reason", "loans")],
        )
        .await;
    let cases: [(&str, Vec<&str>); 4] = [
        ("usr_reason=billing+question", vec![billing.as_str()]),
        ("usr_reason=loans", vec![loans.as_str()]),
        ("usr_reason=nothing", vec![]),
        ("usr_other=x", vec![]),
    ];

    for (filter, expected) in cases {
        // Act
        let response = app
            .get(
                &format!("/genesys/1/service/callback?_customer_number=777&{filter}"),
                Some(GMS_USER),
            )
            .await;

        // Assert
        assert_eq!(response.status(), 200, "{filter}: status");
        let found = ids(&json(response).await);
        assert_eq!(found, expected, "{filter}: the services found");
    }
}

#[tokio::test]
async fn desired_time_in_the_future_makes_the_service_scheduled() {
    // Arrange
    let app = spawn_app().await;
    let desired = to_iso(OffsetDateTime::now_utc() + Duration::hours(1));

    // Act
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "4082652649"),
                ("_desired_time", &desired),
            ],
        )
        .await;

    // Assert
    let entry = query_one(&app, &id).await;
    assert_eq!(entry["_callback_state"], "SCHEDULED", "state");
    assert_eq!(
        entry["_desired_time"],
        desired.as_str(),
        "_desired_time kept"
    );
    assert_eq!(
        iso(&entry["_expiration_time"]) - iso(&entry["_desired_time"]),
        Duration::seconds(86_400),
        "_expiration_time is _desired_time + _ttl"
    );
}

#[tokio::test]
async fn an_overwritable_target_override_is_kept_in_the_services_options() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "4082652649"),
                ("_target", "Support@StatServer.GA"),
            ],
        )
        .await;

    // Assert
    let response = app
        .admin(Method::GET, &format!("/genesys/1/admin/callback/{id}"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "admin detail");
    let detail = json(response).await;
    assert_eq!(
        detail["options"]["_target"], "Support@StatServer.GA",
        "the override is in the options snapshot"
    );
}

#[tokio::test]
async fn overrides_not_allowed_or_with_bad_values_are_400_naming_the_option() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        ("_ttl", "5", "not in _overwritable_options"),
        ("_target", "Foo@StatServer.XX", "an unknown target type"),
        ("_target", "Billing@Nowhere.GA", "an unknown Stat Server"),
    ];

    for (option, value, why) in cases {
        // Act
        let response = app
            .post_form(
                "/genesys/1/service/callback/chat-delay",
                Some(GMS_USER),
                &[("_customer_number", "4082652649"), (option, value)],
            )
            .await;

        // Assert
        assert_error(response, 400, option, &format!("{option}={value} ({why})")).await;
    }
}

#[tokio::test]
async fn cancel_completes_the_service_with_reason_cancelled() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;

    // Act
    let response = delete(
        &app,
        &format!("/genesys/1/service/callback/chat-delay/{id}"),
        Some(GMS_USER),
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200, "cancel");
    let entry = query_one(&app, &id).await;
    assert_eq!(entry["_callback_state"], "COMPLETED", "state after cancel");
    assert_eq!(
        entry["_callback_reason"], "CANCELLED",
        "reason after cancel"
    );
}

#[tokio::test]
async fn cancel_refuses_a_completed_service_and_unknown_or_mismatched_ids() {
    // Arrange
    let app = spawn_app().await;
    let cancelled = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let first = delete(
        &app,
        &format!("/genesys/1/service/callback/chat-delay/{cancelled}"),
        Some(GMS_USER),
    )
    .await;
    assert_eq!(first.status(), 200, "first cancel");
    let delay = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases = [
        (format!("chat-delay/{cancelled}"), 400, "cancelling twice"),
        (
            format!("chat-immediate/{delay}"),
            404,
            "a chat-delay id under chat-immediate",
        ),
        (format!("chat-delay/{unknown}"), 404, "an unknown id"),
        (
            format!("no-such-service/{delay}"),
            404,
            "an unknown service",
        ),
    ];

    for (tail, status, what) in cases {
        // Act
        let response = delete(
            &app,
            &format!("/genesys/1/service/callback/{tail}"),
            Some(GMS_USER),
        )
        .await;

        // Assert
        assert_eq!(response.status(), status, "{what}");
    }
    let entry = query_one(&app, &delay).await;
    assert_eq!(
        entry["_callback_state"], "QUEUED",
        "the refused cancels left the chat-delay service alone"
    );
}

#[tokio::test]
async fn reschedule_moves_the_desired_and_expiration_times() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let new_time = to_iso(OffsetDateTime::now_utc() + Duration::hours(2));

    // Act
    let response = send_form(
        &app,
        Method::PUT,
        &format!("/genesys/1/service/callback/chat-delay/{id}"),
        Some(GMS_USER),
        &[("_new_desired_time", &new_time)],
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200, "reschedule");
    let entry = query_one(&app, &id).await;
    assert_eq!(entry["_callback_state"], "SCHEDULED", "state");
    assert_eq!(
        entry["_desired_time"],
        new_time.as_str(),
        "_desired_time moved"
    );
    assert_eq!(
        iso(&entry["_expiration_time"]) - iso(&entry["_desired_time"]),
        Duration::seconds(86_400),
        "_expiration_time is the new time + _ttl"
    );
}

#[tokio::test]
async fn reschedule_updates_and_removes_user_data() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "4082652649"),
                ("usr_reason", "billing question"),
                ("usr_customer_name", "Bob Markel"),
            ],
        )
        .await;
    let path = format!("/genesys/1/service/callback/chat-delay/{id}");

    // Act: change usr_reason
    let changed = send_form(
        &app,
        Method::PUT,
        &path,
        Some(GMS_USER),
        &[("usr_reason", "new")],
    )
    .await;

    // Assert
    assert_eq!(changed.status(), 200, "update user data");
    let entry = query_one(&app, &id).await;
    assert_eq!(entry["usr_reason"], "new", "usr_reason updated");
    assert_eq!(entry["usr_customer_name"], "Bob Markel", "others kept");
    assert_eq!(entry["_callback_state"], "QUEUED", "state unchanged");

    // Act: empty usr_reason
    let removed = send_form(
        &app,
        Method::PUT,
        &path,
        Some(GMS_USER),
        &[("usr_reason", "")],
    )
    .await;

    // Assert
    assert_eq!(removed.status(), 200, "remove user data");
    let entry = query_one(&app, &id).await;
    assert!(
        entry.get("usr_reason").is_none(),
        "an empty value removes the key: {entry}"
    );
    assert_eq!(entry["usr_customer_name"], "Bob Markel", "others kept");
}

#[tokio::test]
async fn reschedule_refuses_options_and_bad_dates_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let path = format!("/genesys/1/service/callback/chat-delay/{id}");
    let cases = [
        ("_ttl", "5", "_ttl"),
        ("_new_desired_time", "tomorrow", "_new_desired_time"),
        (
            "_new_desired_time",
            "2026-13-01T00:00:00Z",
            "_new_desired_time",
        ),
    ];

    for (field, value, named) in cases {
        // Act
        let response = send_form(&app, Method::PUT, &path, Some(GMS_USER), &[(field, value)]).await;

        // Assert
        assert_error(response, 400, named, &format!("PUT {field}={value}")).await;
    }
    let entry = query_one(&app, &id).await;
    assert_eq!(entry["_callback_state"], "QUEUED", "nothing changed");
}

#[tokio::test]
async fn another_gms_user_can_neither_see_nor_change_a_service() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;
    let query = format!("/genesys/1/service/callback?_id={id}");
    let service = format!("/genesys/1/service/callback/chat-delay/{id}");

    for (user, label) in [(Some(OTHER_USER), "user B"), (None, "no gms_user")] {
        // Act
        let get = app.get(&query, user).await;
        let put = send_form(&app, Method::PUT, &service, user, &[("usr_reason", "x")]).await;
        let del = delete(&app, &service, user).await;
        let by_number = app
            .get(
                "/genesys/1/service/callback?_customer_number=4082652649",
                user,
            )
            .await;

        // Assert
        assert_eq!(get.status(), 403, "{label}: GET ?_id");
        assert_eq!(put.status(), 403, "{label}: PUT");
        assert_eq!(del.status(), 403, "{label}: DELETE");
        assert_eq!(by_number.status(), 200, "{label}: query by number");
        assert_eq!(
            json(by_number).await,
            json!([]),
            "{label}: A's service is not shown"
        );
    }

    // The owner still sees it, unchanged.
    let owner = app
        .get(
            "/genesys/1/service/callback?_customer_number=4082652649",
            Some(GMS_USER),
        )
        .await;
    assert_eq!(owner.status(), 200, "owner: query by number");
    let body = json(owner).await;
    assert_eq!(ids(&body), vec![id.clone()], "owner sees the service");
    assert_eq!(
        body[0]["_callback_state"], "QUEUED",
        "B's cancel did nothing"
    );
    assert!(
        body[0].get("usr_reason").is_none(),
        "B's update did nothing"
    );
    let cancel = delete(&app, &service, Some(GMS_USER)).await;
    assert_eq!(cancel.status(), 200, "owner: DELETE");
}

#[tokio::test]
async fn desired_and_expiration_times_follow_the_injected_clock() {
    // Arrange: time stands still at 2030-01-01T00:00:00Z.
    let start = callbackd::domain::time::Timestamp::parse_iso("2030-01-01T00:00:00Z").unwrap();
    let clock = callbackd::clock::ManualClock::new(start);
    let app = crate::helpers::spawn_app_with_clock(clock.clone()).await;
    let query = |id: String| {
        let app = &app;
        async move {
            let path = format!("/genesys/1/service/callback?_id={id}");
            json(app.get(&path, Some(GMS_USER)).await).await[0].clone()
        }
    };

    // Act
    let now = app.create("chat-delay", &[("_customer_number", "1")]).await;
    let later = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "1"),
                ("_desired_time", "2030-01-01T01:00:00Z"),
            ],
        )
        .await;
    let too_old = app
        .post_form(
            "/genesys/1/service/callback/chat-delay",
            Some(GMS_USER),
            &[
                ("_customer_number", "1"),
                ("_desired_time", "2029-12-30T23:59:59Z"),
            ],
        )
        .await;
    let later_before = query(later.clone()).await;
    let now_before = query(now.clone()).await;
    clock.advance_secs(7200);
    let after_two_hours = app.create("chat-delay", &[("_customer_number", "1")]).await;

    // Assert
    assert_eq!(now_before["_callback_state"], "QUEUED");
    let now = now_before;
    assert_eq!(now["_desired_time"], "2030-01-01T00:00:00.000Z");
    assert_eq!(now["_expiration_time"], "2030-01-02T00:00:00.000Z");
    assert_eq!(later_before["_callback_state"], "SCHEDULED");
    assert_eq!(later_before["_expiration_time"], "2030-01-02T01:00:00.000Z");
    assert_eq!(too_old.status(), 400, "would expire at once");
    let body = json(too_old).await;
    assert!(
        body["message"].as_str().unwrap().contains("_desired_time"),
        "{body}"
    );
    let after = query(after_two_hours).await;
    assert_eq!(after["_desired_time"], "2030-01-01T02:00:00.000Z");
    // Two hours passed chat-delay's 900 s _urs_queued_ttl with nobody ready: it timed out.
    let first = crate::helpers::eventually(
        std::time::Duration::from_secs(5),
        "the first service to time out",
        || {
            let query = &query;
            let id = now["_id"].as_str().unwrap().to_string();
            async move {
                let entry = query(id).await;
                (entry["_callback_state"] == "COMPLETED").then_some(entry)
            }
        },
    )
    .await;
    assert_eq!(first["_callback_reason"], "FAIL_TIMEOUT_TTL");
    // The router starts the scheduled one on its next wake-up: its desired time has passed.
    crate::helpers::eventually(
        std::time::Duration::from_secs(5),
        "the scheduled service to enter its queue",
        || {
            let query = &query;
            let later = later.clone();
            async move { (query(later).await["_callback_state"] == "QUEUED").then_some(()) }
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn retrieve_notifications_is_empty_for_a_new_service_and_private_to_its_user() {
    let app = spawn_app().await;
    let id = app.create("chat-delay", &[("_customer_number", "1")]).await;
    let path = format!("/genesys/1/service/{id}/retrieve-notifications");

    let own = app.post_form(&path, Some(GMS_USER), &[]).await;
    let other = app.post_form(&path, Some("someone-else"), &[]).await;
    let unknown = app
        .post_form(
            "/genesys/1/service/nope/retrieve-notifications",
            Some(GMS_USER),
            &[],
        )
        .await;

    assert_eq!(own.status(), 200);
    assert_eq!(json(own).await, serde_json::json!([]));
    assert_eq!(other.status(), 403);
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn before_an_agent_is_reserved_connect_is_503_and_status_says_waiting() {
    let app = spawn_app().await;
    // An agent group nobody is in: the service keeps waiting.
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "1"),
                ("_target", "Nobody@StatServer.GA"),
            ],
        )
        .await;

    let connect = app
        .post_form(
            &format!("/genesys/1/service/{id}/connect"),
            Some(GMS_USER),
            &[],
        )
        .await;
    let status = app
        .post_form(
            &format!("/genesys/1/service/{id}/status"),
            Some(GMS_USER),
            &[],
        )
        .await;

    assert_eq!(connect.status(), 503);
    assert_eq!(
        json(status).await,
        serde_json::json!({
            "message": {"_id": id, "_status": "waiting", "_dialog": "waiting_for_agent.html"},
            "tag": format!("a2c.advanced.service.statuschanged.{id}")
        })
    );
}

#[tokio::test]
async fn an_immediate_chat_can_connect_at_once() {
    let app = spawn_app().await;
    let id = app
        .create("chat-immediate", &[("_customer_number", "1")])
        .await;

    let connect = app
        .post_form(
            &format!("/genesys/1/service/{id}/connect"),
            Some(GMS_USER),
            &[],
        )
        .await;

    assert_eq!(connect.status(), 200);
    let dialog = json(connect).await;
    assert_eq!(dialog["_action"], "StartChat");
    assert_eq!(dialog["_id"], id.as_str());
}
