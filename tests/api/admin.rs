//! The administrator API (`/genesys/1/admin/...`, bearer token): configured services, callback
//! inspection, bulk cancel, watermarks and queues.

use callbackd::domain::time::Timestamp;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{json, spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN, GMS_USER};

/// An admin request with a JSON body.
async fn admin_json(app: &TestApp, method: Method, path: &str, body: &Value) -> Response {
    app.admin(method, path)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// An admin request without a body.
async fn admin_send(app: &TestApp, method: Method, path: &str) -> Response {
    app.admin(method, path).send().await.expect("request sent")
}

/// Asserts a GMS error reply: the status, the error shape, and a message naming `needle`.
async fn assert_error(response: Response, status: u16, needle: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}: status");
    let body = json(response).await;
    assert!(
        body["exception"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: error body has an exception: {body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{what}: the message names `{needle}`: {body}"
    );
}

/// Creates a chat-delay service for customer `number`.
async fn create_delay(app: &TestApp, number: &str) -> String {
    app.create("chat-delay", &[("_customer_number", number)])
        .await
}

/// Cancels `id` of `service` as the seeds' user.
async fn cancel(app: &TestApp, service: &str, id: &str) {
    let response = app
        .request(
            Method::DELETE,
            &format!("/genesys/1/service/callback/{service}/{id}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "cancel {id} for the arrangement");
}

/// The query entry of `id` as the seeds' user.
async fn query_one(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(
            &format!("/genesys/1/service/callback?_id={id}"),
            Some(GMS_USER),
        )
        .await;
    assert_eq!(response.status(), 200, "query of {id}");
    let body = json(response).await;
    assert_eq!(body.as_array().map(Vec::len), Some(1), "one entry: {body}");
    body[0].clone()
}

/// A `_target` list of `steps` valid steps, as a JSON string.
fn target_list(steps: usize) -> String {
    let steps: Vec<Value> = (1..=steps)
        .map(|i| {
            json!({
                "target": format!("Group{i}@StatServer.GA"),
                "timeout": "30",
                "clear": false,
            })
        })
        .collect();
    Value::Array(steps).to_string()
}

#[tokio::test]
async fn admin_api_needs_the_right_bearer_token() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (None, 401, "no Authorization header"),
        (Some("Bearer wrong-token".to_string()), 401, "a wrong token"),
        (Some(format!("Basic {ADMIN_TOKEN}")), 401, "another scheme"),
        (
            Some(format!("Bearer {ADMIN_TOKEN}")),
            200,
            "the right token",
        ),
    ];

    for (authorization, status, what) in cases {
        // Act
        let mut request = app.request(Method::GET, "/genesys/1/admin/services");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request sent");

        // Assert
        assert_eq!(response.status(), status, "{what}");
        let body = json(response).await;
        if status == 401 {
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: error message: {body}"
            );
        } else {
            assert!(body.is_array(), "{what}: the service list: {body}");
        }
    }
}

#[tokio::test]
async fn admin_api_with_an_empty_configured_token_is_forbidden_even_with_a_token() {
    // Arrange
    let app = spawn_app_with(|config| config.admin_token = Some(String::new())).await;
    let cases = [
        (None, "no Authorization header"),
        (Some("Bearer ".to_string()), "an empty token"),
        (
            Some(format!("Bearer {ADMIN_TOKEN}")),
            "the usual test token",
        ),
    ];

    for (authorization, what) in cases {
        // Act
        let mut request = app.request(Method::GET, "/genesys/1/admin/services");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request sent");

        // Assert
        assert_error(response, 403, "admin", what).await;
    }
}

#[tokio::test]
async fn unknown_admin_path_without_a_token_is_404_not_401() {
    // Arrange
    let app = spawn_app().await;

    for path in [
        "/genesys/1/admin/nope",
        "/genesys/1/admin/callback/queues/extra",
        "/genesys/1/admin",
    ] {
        // Act
        let response = app.get(path, None).await;

        // Assert
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn services_list_shows_the_four_configured_services() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = admin_send(&app, Method::GET, "/genesys/1/admin/services").await;

    // Assert
    assert_eq!(response.status(), 200, "list");
    let body = json(response).await;
    let services = body.as_array().expect("a JSON array");
    let mut found: Vec<(String, String)> = services
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                s["preset"].as_str().expect("preset").to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("chat-delay", "Chat-Delayed"),
            ("chat-immediate", "Chat-Immediate"),
            ("request-chat", "Request-Chat"),
            ("request-chat-poll", "Request-Chat-Poll"),
        ]
        .map(|(n, p)| (n.to_string(), p.to_string())),
        "names and presets"
    );
    for service in services {
        let name = &service["name"];
        assert!(
            service["options"]["_target"].is_string(),
            "{name}: options has the configured _target"
        );
        assert_eq!(
            service["effective_options"]["_ttl"], "86400",
            "{name}: effective_options has the preset's _ttl"
        );
        assert_eq!(
            service["effective_options"]["_target"], service["options"]["_target"],
            "{name}: configured options win in effective_options"
        );
    }
}

#[tokio::test]
async fn put_service_creates_then_replaces_and_the_service_takes_callbacks() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"preset": "Chat-Delayed", "options": {"_target": "Billing@StatServer.GA"}});

    // Act
    let created = admin_json(
        &app,
        Method::PUT,
        "/genesys/1/admin/services/my-chat",
        &body,
    )
    .await;
    let replaced = admin_json(
        &app,
        Method::PUT,
        "/genesys/1/admin/services/my-chat",
        &body,
    )
    .await;
    let callback = app
        .post_form(
            "/genesys/1/service/callback/my-chat",
            Some(GMS_USER),
            &[("_customer_number", "4082652649")],
        )
        .await;

    // Assert
    assert_eq!(created.status(), 201, "first PUT creates");
    let created = json(created).await;
    assert_eq!(created["name"], "my-chat", "name");
    assert_eq!(created["preset"], "Chat-Delayed", "preset");
    assert_eq!(
        created["options"]["_target"], "Billing@StatServer.GA",
        "options"
    );
    assert_eq!(replaced.status(), 200, "second PUT replaces");
    assert_eq!(callback.status(), 200, "create on the new service");
    let callback = json(callback).await;
    assert_eq!(
        callback["_text"], "We will notify you when agent is available",
        "a Chat-Delayed reply"
    );
    let id = callback["_id"].as_str().expect("_id");
    assert_eq!(
        query_one(&app, id).await["_service_name"],
        "my-chat",
        "stored under the new service"
    );
}

#[tokio::test]
async fn put_service_refuses_bad_options_naming_them() {
    // Arrange
    let app = spawn_app().await;
    let unknown_statistic = json!([{
        "target": "Billing@StatServer.GA",
        "timeout": "30",
        "clear": false,
        "stat_to_check": "RStatNoSuchThing",
        "stat_operator": "<",
        "stat_value": "1",
    }])
    .to_string();
    let cases = [
        (
            json!({"preset": "Chat-Delayed", "options": {"_target": "Billing@StatServer.GX"}}),
            vec!["_target"],
            "an unknown target type",
        ),
        (
            json!({"preset": "Chat-Delayed", "options": {"_target": "Billing@Other.GA"}}),
            vec!["_target"],
            "an unknown Stat Server",
        ),
        (
            json!({"preset": "Chat-Delayed", "options": {"_target": target_list(16)}}),
            vec!["_target"],
            "a 16-step list",
        ),
        (
            json!({"preset": "Chat-Delayed", "options": {"_target": unknown_statistic}}),
            vec!["_target"],
            "an unknown statistic",
        ),
        (
            json!({"preset": "Chat-Delayed", "options": {
                "_target": "Billing@StatServer.GA",
                "_wait_for_user_confirm": "true",
                "_wait_for_agent": "false",
            }}),
            vec!["_wait_for_user_confirm"],
            "confirming without waiting for an agent",
        ),
        (
            json!({"preset": "Chat-Delayed", "options": {
                "_target": "Billing@StatServer.GA",
                "_ttl": "soon",
            }}),
            vec!["_ttl"],
            "a _ttl that is not seconds",
        ),
        (
            json!({"preset": "Chat-Delayed", "options": {
                "_target": "Billing@StatServer.GA",
                "_ttl": 86400,
            }}),
            vec!["_ttl", "strings"],
            "a number instead of a string",
        ),
        (
            json!({"preset": "Chat-Later", "options": {"_target": "Billing@StatServer.GA"}}),
            vec!["preset"],
            "an unknown preset",
        ),
    ];

    for (body, needles, what) in cases {
        // Act
        let response = admin_json(
            &app,
            Method::PUT,
            "/genesys/1/admin/services/my-chat",
            &body,
        )
        .await;

        // Assert
        assert_eq!(response.status(), 400, "{what}: status");
        let error = json(response).await;
        let message = error["message"].as_str().unwrap_or_default();
        for needle in needles {
            assert!(
                message.contains(needle),
                "{what}: names `{needle}`: {error}"
            );
        }
    }
    let get = admin_send(&app, Method::GET, "/genesys/1/admin/services/my-chat").await;
    assert_eq!(get.status(), 404, "no refused PUT created the service");
}

#[tokio::test]
async fn put_service_accepts_a_skill_expression_and_a_fifteen_step_list() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (
            "?:English=20&;Loans=2@StatServer.GA".to_string(),
            "a skill expression",
        ),
        (target_list(15), "a 15-step list"),
    ];

    for (target, what) in cases {
        // Act
        let response = admin_json(
            &app,
            Method::PUT,
            "/genesys/1/admin/services/skills",
            &json!({"preset": "Chat-Immediate", "options": {"_target": target}}),
        )
        .await;

        // Assert
        let status = response.status();
        let body = json(response).await;
        assert!(
            status == 200 || status == 201,
            "{what}: accepted, got {status}: {body}"
        );
        assert_eq!(body["options"]["_target"], target.as_str(), "{what}: kept");
        let callback = app
            .post_form(
                "/genesys/1/service/callback/skills",
                Some(GMS_USER),
                &[("_customer_number", "4082652649")],
            )
            .await;
        assert_eq!(
            callback.status(),
            200,
            "{what}: the service takes callbacks"
        );
    }
}

#[tokio::test]
async fn deleted_service_takes_no_more_callbacks() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"preset": "Chat-Delayed", "options": {"_target": "Billing@StatServer.GA"}});
    let put = admin_json(
        &app,
        Method::PUT,
        "/genesys/1/admin/services/my-chat",
        &body,
    )
    .await;
    assert_eq!(put.status(), 201, "PUT for the arrangement");

    // Act
    let deleted = admin_send(&app, Method::DELETE, "/genesys/1/admin/services/my-chat").await;
    let callback = app
        .post_form(
            "/genesys/1/service/callback/my-chat",
            Some(GMS_USER),
            &[("_customer_number", "4082652649")],
        )
        .await;

    // Assert
    assert_eq!(deleted.status(), 200, "DELETE");
    assert_error(callback, 404, "my-chat", "create on the deleted service").await;
}

#[tokio::test]
async fn deleting_an_unknown_service_is_404() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = admin_send(&app, Method::DELETE, "/genesys/1/admin/services/no-such").await;

    // Assert
    assert_error(response, 404, "no-such", "DELETE unknown").await;
}

#[tokio::test]
async fn callback_detail_shows_options_user_data_and_state_history() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "4082652649"),
                ("usr_reason", "billing question"),
            ],
        )
        .await;
    let path = format!("/genesys/1/admin/callback/{id}");

    // Act
    let before = admin_send(&app, Method::GET, &path).await;
    cancel(&app, "chat-delay", &id).await;
    let after = admin_send(&app, Method::GET, &path).await;

    // Assert
    assert_eq!(before.status(), 200, "detail");
    let detail = json(before).await;
    assert_eq!(detail["_id"], id.as_str(), "_id");
    assert_eq!(detail["_service_name"], "chat-delay", "_service_name");
    assert_eq!(detail["_callback_state"], "QUEUED", "_callback_state");
    assert_eq!(detail["options"]["_ttl"], "86400", "options._ttl");
    assert_eq!(
        detail["options"]["_urs_virtual_queue"], "billing_vq",
        "options has the configured options"
    );
    assert_eq!(
        detail["options"]["_wait_for_agent"], "true",
        "options has the preset's defaults"
    );
    assert_eq!(
        detail["user_data"],
        json!({"usr_reason": "billing question"}),
        "user_data"
    );
    let history = detail["state_history"].as_array().expect("state_history");
    assert_eq!(history.len(), 1, "one state so far: {history:?}");
    assert_eq!(history[0]["state"], "QUEUED", "first state");
    assert_eq!(history[0]["note"], "created", "first note");

    assert_eq!(after.status(), 200, "detail after cancel");
    let detail = json(after).await;
    assert_eq!(detail["_callback_state"], "COMPLETED", "state after cancel");
    let history = detail["state_history"].as_array().expect("state_history");
    assert_eq!(history[0]["state"], "QUEUED", "the first entry stays");
    let last = history.last().expect("an entry");
    assert_eq!(last["state"], "COMPLETED", "a COMPLETED entry");
    assert_eq!(last["reason"], "CANCELLED", "with the reason");
}

#[tokio::test]
async fn callback_detail_of_an_unknown_id_is_404() {
    // Arrange
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    // Act
    let response = admin_send(
        &app,
        Method::GET,
        &format!("/genesys/1/admin/callback/{unknown}"),
    )
    .await;

    // Assert
    assert_error(response, 404, &unknown, "unknown id").await;
}

#[tokio::test]
async fn bulk_cancel_reports_cancelled_and_not_found_ids() {
    // Arrange
    let app = spawn_app().await;
    let a = create_delay(&app, "111").await;
    let b = app
        .create("chat-immediate", &[("_customer_number", "222")])
        .await;

    // Act
    let response = admin_json(
        &app,
        Method::POST,
        "/genesys/1/admin/callback/cancel",
        &json!({"reason": "CANCELLED_BY_ADMIN", "ids": [a, b, "nope"]}),
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200, "bulk cancel");
    assert_eq!(
        json(response).await,
        json!({"cancelled": [a, b], "not_found": ["nope"], "refused": []}),
        "outcome per id"
    );
    for id in [&a, &b] {
        let entry = query_one(&app, id).await;
        assert_eq!(entry["_callback_state"], "COMPLETED", "{id}: state");
        assert_eq!(
            entry["_callback_reason"], "CANCELLED_BY_ADMIN",
            "{id}: reason"
        );
    }
}

#[tokio::test]
async fn bulk_cancel_reports_an_already_cancelled_id_as_refused() {
    // Arrange
    let app = spawn_app().await;
    let done = create_delay(&app, "111").await;
    cancel(&app, "chat-delay", &done).await;
    let active = create_delay(&app, "111").await;

    // Act
    let response = admin_json(
        &app,
        Method::POST,
        "/genesys/1/admin/callback/cancel",
        &json!({"reason": "CANCELLED_BY_ADMIN", "ids": [done, active]}),
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200, "bulk cancel");
    let body = json(response).await;
    assert_eq!(body["cancelled"], json!([active]), "the active one: {body}");
    assert_eq!(body["not_found"], json!([]), "none unknown: {body}");
    let refused = body["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 1, "one refused: {body}");
    assert_eq!(refused[0]["id"], done.as_str(), "the completed one");
    assert!(
        refused[0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "says why: {body}"
    );
    assert_eq!(
        query_one(&app, &done).await["_callback_reason"],
        "CANCELLED",
        "the customer's reason stays"
    );
}

#[tokio::test]
async fn bulk_cancel_with_a_bad_reason_is_400_and_cancels_nothing() {
    // Arrange
    let app = spawn_app().await;
    let id = create_delay(&app, "111").await;

    // Act
    let response = admin_json(
        &app,
        Method::POST,
        "/genesys/1/admin/callback/cancel",
        &json!({"reason": "BECAUSE", "ids": [id]}),
    )
    .await;

    // Assert
    assert_error(response, 400, "reason", "a bad reason").await;
    assert_eq!(
        query_one(&app, &id).await["_callback_state"],
        "QUEUED",
        "nothing cancelled"
    );
}

#[tokio::test]
async fn watermarks_count_services_that_are_not_completed() {
    // Arrange
    let app = spawn_app().await;
    create_delay(&app, "1").await;
    create_delay(&app, "2").await;
    app.create("request-chat", &[]).await;
    let immediate = app
        .create("chat-immediate", &[("_customer_number", "3")])
        .await;
    cancel(&app, "chat-immediate", &immediate).await;

    // Act
    let all = admin_send(&app, Method::GET, "/genesys/1/admin/callback/watermarks").await;
    let one = admin_send(
        &app,
        Method::GET,
        "/genesys/1/admin/callback/watermarks?service_name=chat-delay",
    )
    .await;

    // Assert
    assert_eq!(all.status(), 200, "all watermarks");
    let all = json(all).await;
    let count = |name: &str| {
        all["services"]
            .get(name)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    assert_eq!(count("chat-delay"), 2, "chat-delay: {all}");
    assert_eq!(count("request-chat"), 1, "request-chat: {all}");
    assert_eq!(
        count("chat-immediate"),
        0,
        "the cancelled one is not counted: {all}"
    );
    assert_eq!(count("request-chat-poll"), 0, "request-chat-poll: {all}");
    assert_eq!(all["total"], 3, "total: {all}");

    assert_eq!(one.status(), 200, "one service");
    assert_eq!(
        json(one).await,
        json!({"services": {"chat-delay": 2}, "total": 2}),
        "narrowed to chat-delay"
    );
}

#[tokio::test]
async fn queues_group_active_services_by_service_name() {
    // Arrange
    let app = spawn_app().await;
    let active = create_delay(&app, "1").await;
    let done = create_delay(&app, "2").await;
    cancel(&app, "chat-delay", &done).await;
    let poll = app.create("request-chat-poll", &[]).await;

    // Act
    let response = admin_send(&app, Method::GET, "/genesys/1/admin/callback/queues").await;

    // Assert
    assert_eq!(response.status(), 200, "queues");
    let body = json(response).await;
    let object = body.as_object().expect("an object keyed by service");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["chat-delay", "request-chat-poll"],
        "services: {body}"
    );
    assert_eq!(
        body["chat-delay"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    assert_eq!(
        body["chat-delay"][0]["_id"],
        active.as_str(),
        "not the completed one"
    );
    assert_eq!(
        body["chat-delay"][0]["_callback_state"], "QUEUED",
        "a query entry"
    );
    assert_eq!(
        body["chat-delay"][0]["_customer_number"], "1",
        "a query entry"
    );
    assert_eq!(body["request-chat-poll"][0]["_id"], poll.as_str(), "{body}");
}

#[tokio::test]
async fn queues_filter_by_target_states_and_max() {
    // Arrange
    let app = spawn_app().await;
    create_delay(&app, "1").await;
    let done = create_delay(&app, "2").await;
    cancel(&app, "chat-delay", &done).await;
    app.create("request-chat-poll", &[]).await;
    app.create("request-chat", &[]).await;

    // Act
    let completed = admin_send(
        &app,
        Method::GET,
        "/genesys/1/admin/callback/queues?target=chat-delay&states=COMPLETED",
    )
    .await;
    let limited = admin_send(&app, Method::GET, "/genesys/1/admin/callback/queues?max=1").await;
    let zero = admin_send(&app, Method::GET, "/genesys/1/admin/callback/queues?max=0").await;

    // Assert
    assert_eq!(completed.status(), 200, "target and states");
    let completed = json(completed).await;
    assert_eq!(
        ids_of(&completed),
        vec![done.clone()],
        "only the cancelled one: {completed}"
    );
    assert_eq!(
        completed["chat-delay"][0]["_callback_state"], "COMPLETED",
        "its state"
    );
    assert_eq!(limited.status(), 200, "max=1");
    let limited = json(limited).await;
    assert_eq!(ids_of(&limited).len(), 1, "at most one record: {limited}");
    assert_error(zero, 400, "max", "max=0").await;
}

#[tokio::test]
async fn queues_in_a_time_window_include_both_ends_and_keep_the_same_max_order() {
    // Arrange: three scheduled callbacks at the window's start, inside and at its end, one after.
    let app = spawn_app().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let day = 86_400_000;
    let at = |days: u64| Timestamp::from_millis((now / 1000 * 1000) + days * day).to_iso();
    let mut inside = Vec::new();
    for (number, days) in [("1", 1), ("2", 2), ("3", 3)] {
        let desired = at(days);
        inside.push(
            app.create(
                "chat-delay",
                &[("_customer_number", number), ("_desired_time", &desired)],
            )
            .await,
        );
    }
    let after = app
        .create(
            "chat-delay",
            &[("_customer_number", "4"), ("_desired_time", &at(10))],
        )
        .await;
    let window = format!(
        "/genesys/1/admin/callback/queues?states=SCHEDULED&start_time={}&end_time={}",
        at(1),
        at(3)
    );

    // Act
    let all = admin_send(&app, Method::GET, &window).await;
    let two = admin_send(&app, Method::GET, &format!("{window}&max=2")).await;
    let unbounded = admin_send(
        &app,
        Method::GET,
        "/genesys/1/admin/callback/queues?states=SCHEDULED&max=2",
    )
    .await;

    // Assert
    assert_eq!(all.status(), 200, "window");
    let all = json(all).await;
    assert_eq!(
        ids_of(&all),
        inside,
        "both ends, in desired-time order: {all}"
    );
    let mut by_id = inside.clone();
    by_id.sort();
    let two = ids_of(&json(two).await);
    let mut expected: Vec<String> = by_id[..2].to_vec();
    expected.sort_by_key(|id| inside.iter().position(|i| i == id));
    assert_eq!(
        two, expected,
        "max keeps the lowest ids, as without a window"
    );
    let mut everything = inside.clone();
    everything.push(after);
    everything.sort();
    let mut unbounded = ids_of(&json(unbounded).await);
    unbounded.sort();
    assert_eq!(
        unbounded,
        everything[..2],
        "without a window: the lowest ids"
    );
}

/// Every `_id` in a queues answer, with a check that each sits under its own service.
fn ids_of(body: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for (service, entries) in body.as_object().expect("an object") {
        for entry in entries.as_array().expect("an array per service") {
            assert_eq!(entry["_service_name"], service.as_str(), "grouping: {body}");
            ids.push(entry["_id"].as_str().expect("_id").to_string());
        }
    }
    ids
}

#[tokio::test]
async fn watermarks_of_an_unknown_service_are_404_and_of_an_idle_one_zero() {
    let app = spawn_app().await;

    let unknown = admin_send(
        &app,
        Method::GET,
        "/genesys/1/admin/callback/watermarks?service_name=no-such-service",
    )
    .await;
    let idle = admin_send(
        &app,
        Method::GET,
        "/genesys/1/admin/callback/watermarks?service_name=request-chat-poll",
    )
    .await;

    assert_eq!(unknown.status(), 404, "a typo is not silently zero");
    assert_eq!(
        json(idle).await,
        json!({"services": {"request-chat-poll": 0}, "total": 0})
    );
}
