//! Limits and phone numbers (issue 15): GMS's throttles of callback creation per interval
//! (`_throttle_callbacks_per_service_N` / `_throttle_ttl_N`) and per request parameter a day
//! (`_throttle_request_parameters[_limit]`), the queue limit, and the customer-number checks
//! (`_default_country`, `_disallow_impossible_phone_numbers`,
//! `_disallow_premium_phone_numbers`). Time stands still on a `ManualClock`, except in the
//! restart test, which runs the real binary.

use std::time::Duration;

use callbackd::clock::ManualClock;
use callbackd::domain::time::Timestamp;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{
    json as body_json, spawn_app_with_clock, ServerProcess, TestApp, ADMIN_TOKEN, GMS_USER,
};

/// 2026-12-02T10:00:00Z.
const MORNING: u64 = 1_796_205_600_000;

fn morning_clock() -> ManualClock {
    ManualClock::new(Timestamp::from_millis(MORNING))
}

fn service_body(options: Value) -> Value {
    let mut all = json!({"_target": "Billing@StatServer.GA"});
    all.as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    json!({"preset": "Chat-Delayed", "options": all})
}

async fn configure(app: &TestApp, name: &str, options: Value) {
    let response = app
        .admin(Method::PUT, &format!("/genesys/1/admin/services/{name}"))
        .json(&service_body(options))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 201, "configure {name}");
}

async fn create(app: &TestApp, service: &str, fields: &[(&str, &str)]) -> Response {
    app.post_form(
        &format!("/genesys/1/service/callback/{service}"),
        Some(GMS_USER),
        fields,
    )
    .await
}

async fn create_number(app: &TestApp, service: &str, number: &str) -> Response {
    create(app, service, &[("_customer_number", number)]).await
}

/// Asserts a refusal's status and its whole body.
async fn assert_refused(response: Response, status: u16, exception: &str, message: &str) {
    assert_eq!(response.status(), status, "{message}");
    let body = body_json(response).await;
    assert_eq!(
        body,
        json!({"exception": exception, "message": message}),
        "refusal body"
    );
}

#[tokio::test]
async fn the_first_interval_throttle_refuses_until_its_interval_ends() {
    let clock = morning_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    configure(
        &app,
        "hourly",
        json!({"_throttle_callbacks_per_service_1": "2", "_throttle_ttl_1": "10"}),
    )
    .await;

    assert_eq!(create_number(&app, "hourly", "5115").await.status(), 200);
    clock.advance_secs(3);
    assert_eq!(create_number(&app, "hourly", "5116").await.status(), 200);
    let message = "Limit of queued callbacks for hourly is reached for interval 10s.";
    assert_refused(
        create_number(&app, "hourly", "5117").await,
        503,
        "ServiceUnavailable",
        message,
    )
    .await;

    // The interval began with the first create: a second before it ends, still full.
    clock.advance_secs(6);
    assert_refused(
        create_number(&app, "hourly", "5117").await,
        503,
        "ServiceUnavailable",
        message,
    )
    .await;

    // Ten seconds after the first create, the next interval takes two again.
    clock.advance_secs(1);
    assert_eq!(create_number(&app, "hourly", "5117").await.status(), 200);
    assert_eq!(create_number(&app, "hourly", "5118").await.status(), 200);
    assert_eq!(create_number(&app, "hourly", "5119").await.status(), 503);
}

#[tokio::test]
async fn the_second_interval_throttle_takes_gms_default_interval_and_the_first_one_wins() {
    let clock = morning_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    // Only the count of throttle 2: its interval is GMS's default 3600 s.
    configure(
        &app,
        "second",
        json!({"_throttle_callbacks_per_service_2": "1"}),
    )
    .await;
    // Both throttles full at once: throttle 1's refusal is the one given.
    configure(
        &app,
        "both",
        json!({
            "_throttle_callbacks_per_service_1": "1", "_throttle_ttl_1": "60",
            "_throttle_callbacks_per_service_2": "1", "_throttle_ttl_2": "20",
        }),
    )
    .await;

    assert_eq!(create_number(&app, "second", "1").await.status(), 200);
    assert_refused(
        create_number(&app, "second", "2").await,
        503,
        "ServiceUnavailable",
        "Limit of queued callbacks for second is reached for interval 3600s.",
    )
    .await;
    clock.advance_secs(3599);
    assert_eq!(create_number(&app, "second", "2").await.status(), 503);
    clock.advance_secs(1);
    assert_eq!(create_number(&app, "second", "2").await.status(), 200);

    assert_eq!(create_number(&app, "both", "1").await.status(), 200);
    assert_refused(
        create_number(&app, "both", "2").await,
        503,
        "ServiceUnavailable",
        "Limit of queued callbacks for both is reached for interval 60s.",
    )
    .await;
    // Throttle 2's interval is over; throttle 1 still refuses.
    clock.advance_secs(20);
    assert_eq!(create_number(&app, "both", "2").await.status(), 503);
}

#[tokio::test]
async fn a_parameter_value_is_limited_per_service_and_utc_day() {
    let clock = morning_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    configure(
        &app,
        "daily",
        json!({"_throttle_request_parameters_limit": "2"}),
    )
    .await;
    configure(
        &app,
        "daily-too",
        json!({"_throttle_request_parameters_limit": "2"}),
    )
    .await;
    configure(
        &app,
        "by-account",
        json!({"_throttle_request_parameters": "account", "_throttle_request_parameters_limit": "1"}),
    )
    .await;

    assert_eq!(create_number(&app, "daily", "5115").await.status(), 200);
    assert_eq!(create_number(&app, "daily", "5115").await.status(), 200);
    let message = "Callback for _customer_number=5115 rejected because previous callbacks for this parameter were requested for more than 2 times today.";
    assert_refused(
        create_number(&app, "daily", "5115").await,
        503,
        "ServiceUnavailable",
        message,
    )
    .await;
    // Another number, and the same number at another service, are counted apart.
    assert_eq!(create_number(&app, "daily", "5125").await.status(), 200);
    assert_eq!(create_number(&app, "daily-too", "5115").await.status(), 200);

    // A user-data key named in _throttle_request_parameters is counted by its value.
    let by_account = |number: &'static str, account: &'static str| {
        let app = &app;
        async move {
            create(
                app,
                "by-account",
                &[("_customer_number", number), ("account", account)],
            )
            .await
        }
    };
    assert_eq!(by_account("1", "A-7").await.status(), 200);
    assert_refused(
        by_account("2", "A-7").await,
        503,
        "ServiceUnavailable",
        "Callback for account=A-7 rejected because previous callbacks for this parameter were requested for more than 1 times today.",
    )
    .await;
    assert_eq!(by_account("2", "A-8").await.status(), 200);

    // Still today at 23:59:59 UTC; a new day at midnight.
    clock.advance_secs(14 * 3600 - 1);
    assert_eq!(create_number(&app, "daily", "5115").await.status(), 503);
    clock.advance_secs(1);
    assert_eq!(create_number(&app, "daily", "5115").await.status(), 200);
    assert_eq!(by_account("3", "A-7").await.status(), 200);
}

#[tokio::test]
async fn a_full_queue_is_refused_in_gms_words() {
    let app = spawn_app_with_clock(morning_clock()).await;
    configure(
        &app,
        "small-queue",
        json!({"_max_queued_callbacks_per_service": "1"}),
    )
    .await;
    assert_eq!(create_number(&app, "small-queue", "1").await.status(), 200);
    assert_refused(
        create_number(&app, "small-queue", "2").await,
        503,
        "ServiceUnavailable",
        "Limit of queued callbacks for small-queue is reached.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_cannot_both_take_the_last_place() {
    let app = spawn_app_with_clock(morning_clock()).await;
    configure(
        &app,
        "one-place",
        json!({"_throttle_callbacks_per_service_1": "1", "_throttle_ttl_1": "600"}),
    )
    .await;
    configure(
        &app,
        "one-a-day",
        json!({"_throttle_request_parameters_limit": "1"}),
    )
    .await;

    for service in ["one-place", "one-a-day"] {
        let requests = (0..8).map(|_| create_number(&app, service, "5115"));
        let statuses: Vec<u16> = futures_util::future::join_all(requests)
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{service}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 503).count(),
            7,
            "{service}: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn bad_limit_and_phone_options_are_400_naming_the_option() {
    let app = spawn_app_with_clock(morning_clock()).await;
    let cases = [
        (
            json!({"_throttle_callbacks_per_service_1": "many"}),
            "_throttle_callbacks_per_service_1",
        ),
        (json!({"_throttle_ttl_2": "5m"}), "_throttle_ttl_2"),
        (
            json!({"_throttle_request_parameters_limit": "-1"}),
            "_throttle_request_parameters_limit",
        ),
        (
            json!({"_throttle_request_parameters": "_desired_time"}),
            "_throttle_request_parameters",
        ),
        (json!({"_default_country": "Atlantis"}), "_default_country"),
        (
            json!({"_disallow_premium_phone_numbers": "yes", "_default_country": "US"}),
            "_disallow_premium_phone_numbers",
        ),
        // GMS cannot validate phone numbers without knowing the country.
        (
            json!({"_disallow_impossible_phone_numbers": "true"}),
            "_default_country",
        ),
    ];
    for (options, option) in cases {
        let response = app
            .admin(Method::PUT, "/genesys/1/admin/services/bad")
            .json(&service_body(options.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{options}");
        let message = body_json(response).await["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(option), "{options}: {message}");
    }

    // An override at request time is checked the same way.
    configure(
        &app,
        "overridable",
        json!({"_overwritable_options": "_throttle_callbacks_per_service_1"}),
    )
    .await;
    let response = create(
        &app,
        "overridable",
        &[
            ("_customer_number", "1"),
            ("_throttle_callbacks_per_service_1", "lots"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    let message = body_json(response).await["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("_throttle_callbacks_per_service_1"),
        "{message}"
    );
}

#[tokio::test]
async fn customer_numbers_are_checked_with_the_default_country() {
    let app = spawn_app_with_clock(morning_clock()).await;
    configure(
        &app,
        "checked",
        json!({
            "_default_country": "US",
            "_disallow_impossible_phone_numbers": "true",
            "_disallow_premium_phone_numbers": "true",
        }),
    )
    .await;
    configure(
        &app,
        "premium-ok",
        json!({"_default_country": "US", "_disallow_impossible_phone_numbers": "true"}),
    )
    .await;
    configure(&app, "unchecked", json!({"_default_country": "US"})).await;

    // National numbers read in the default country, and international ones, pass.
    for number in [
        "6504661100",
        "(650) 466-1100",
        "+16504661100",
        "+33 6 04 12 04 05",
    ] {
        assert_eq!(
            create_number(&app, "checked", number).await.status(),
            200,
            "{number}"
        );
    }
    assert_refused(
        create_number(&app, "checked", "111").await,
        400,
        "CallbackExceptionNumber",
        "Customer Number [111] is disallowed, because it is invalid. Check option _disallow_impossible_phone_numbers",
    )
    .await;
    assert_refused(
        create_number(&app, "checked", "+19005551234").await,
        400,
        "CallbackExceptionNumber",
        "Customer Number [+19005551234] is disallowed, because it's a premium number. Check option _disallow_premium_phone_numbers",
    )
    .await;
    // The premium number read nationally is refused as well.
    assert_eq!(
        create_number(&app, "checked", "9005551234").await.status(),
        400
    );

    assert_eq!(
        create_number(&app, "premium-ok", "+19005551234")
            .await
            .status(),
        200
    );
    assert_eq!(create_number(&app, "premium-ok", "111").await.status(), 400);
    assert_eq!(create_number(&app, "unchecked", "111").await.status(), 200);
}

/// The UTC day now, by the wall clock (the restart test runs the real binary on it).
fn utc_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400
}

#[tokio::test]
async fn throttle_counts_survive_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = ServerProcess::start(data_dir.path(), &[]);
    for (name, options) in [
        (
            "hourly",
            json!({"_throttle_callbacks_per_service_1": "2", "_throttle_ttl_1": "3600"}),
        ),
        ("daily", json!({"_throttle_request_parameters_limit": "1"})),
    ] {
        let response = client
            .put(format!(
                "{}/genesys/1/admin/services/{name}",
                server.address
            ))
            .bearer_auth(ADMIN_TOKEN)
            .json(&service_body(options))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "configure {name}");
    }
    let create = |address: String, service: &'static str, number: &'static str| {
        let client = client.clone();
        async move {
            client
                .post(format!("{address}/genesys/1/service/callback/{service}"))
                .header("gms_user", GMS_USER)
                .form(&[("_customer_number", number)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let day_before = utc_day();
    assert_eq!(create(server.address.clone(), "hourly", "1").await, 200);
    assert_eq!(create(server.address.clone(), "hourly", "2").await, 200);
    assert_eq!(create(server.address.clone(), "daily", "5115").await, 200);

    // kill -9: only what was acknowledged durably is there after the restart.
    server.kill9();
    let mut restarted = ServerProcess::start(data_dir.path(), &[]);
    restarted.wait_for_log("listening on", Duration::from_secs(10));

    let response = client
        .post(format!(
            "{}/genesys/1/service/callback/hourly",
            restarted.address
        ))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "3")])
        .send()
        .await
        .unwrap();
    assert_refused(
        response,
        503,
        "ServiceUnavailable",
        "Limit of queued callbacks for hourly is reached for interval 3600s.",
    )
    .await;
    let daily = create(restarted.address.clone(), "daily", "5115").await;
    // Midnight UTC between the two creates would rightly start a new count.
    if utc_day() == day_before {
        assert_eq!(daily, 503, "the daily count survived the restart");
    }
    assert_eq!(
        create(restarted.address.clone(), "daily", "5125").await,
        200
    );
}
