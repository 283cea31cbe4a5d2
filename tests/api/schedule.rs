//! Office hours, capacity and availability (issue 15): office-hours and capacity services
//! configured through the admin API, the Calendar Service query, a callback service's
//! availability, and the desired times that create and reschedule refuse. Time stands still
//! on a `ManualClock`.

use callbackd::clock::ManualClock;
use callbackd::domain::time::Timestamp;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{json as body_json, spawn_app_with_clock, TestApp, GMS_USER};

fn at(iso: &str) -> Timestamp {
    Timestamp::parse_iso(iso).expect("time")
}

async fn configure(app: &TestApp, name: &str, preset: &str, options: Value) {
    let response = app
        .admin(Method::PUT, &format!("/genesys/1/admin/services/{name}"))
        .json(&json!({ "preset": preset, "options": options }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 201, "configure {name}");
}

/// Office hours Mon-Fri 08:00-20:00 and Sun 01:00-04:00 in Paris; two callbacks per
/// 30-minute bucket from 08:00 to 10:00 on Mondays; `booked` follows both; `strict` also
/// refuses closed hours and desired times beyond a day ahead or an hour back.
async fn scheduling_app(now: &str) -> (TestApp, ManualClock) {
    let clock = ManualClock::new(at(now));
    let app = spawn_app_with_clock(clock.clone()).await;
    configure(
        &app,
        "paris-hours",
        "Office-Hours",
        json!({
            "_timezone": "Europe/Paris",
            "_bh_regular1": "Mon-Fri 08:00-20:00",
            "_bh_regular2": "Sun 01:00-04:00",
            "_holiday1": "2026-04-06",
        }),
    )
    .await;
    configure(
        &app,
        "paris-capacity",
        "Capacity",
        json!({
            "_timezone": "Europe/Paris",
            "_capacity": "[Mon, Tue, Wed, Thu, Fri, Sat, Sun]",
            "_capacity_1": r#"{"1":{"0800":2,"0900":2}}"#,
        }),
    )
    .await;
    configure(
        &app,
        "booked",
        "Chat-Delayed",
        json!({
            "_target": "Support@StatServer.GA",
            "_business_hours_service": "paris-hours",
            "_capacity_service": "paris-capacity",
            "_request_time_bucket": "30",
        }),
    )
    .await;
    configure(
        &app,
        "strict",
        "Chat-Delayed",
        json!({
            "_target": "Support@StatServer.GA",
            "_business_hours_service": "paris-hours",
            "_enable_reject_out_of_office_hours": "true",
            "_reject_future_desired_time": "1d",
            "_reject_past_desired_time": "1h",
        }),
    )
    .await;
    (app, clock)
}

async fn create_at(app: &TestApp, service: &str, desired: &str) -> Response {
    app.post_form(
        &format!("/genesys/1/service/callback/{service}"),
        Some(GMS_USER),
        &[
            ("_customer_number", "4082652649"),
            ("_desired_time", desired),
        ],
    )
    .await
}

async fn reschedule(app: &TestApp, service: &str, id: &str, desired: &str) -> Response {
    app.request(
        Method::PUT,
        &format!("/genesys/1/service/callback/{service}/{id}"),
    )
    .header("gms_user", GMS_USER)
    .form(&[("_new_desired_time", desired)])
    .send()
    .await
    .expect("request sent")
}

async fn availability(app: &TestApp, query: &str) -> Value {
    let response = app
        .get(
            &format!("/genesys/1/service/callback/booked/availability?{query}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "availability {query}");
    body_json(response).await
}

async fn id_of(response: Response) -> String {
    assert_eq!(response.status(), 200, "created");
    body_json(response).await["_id"]
        .as_str()
        .expect("_id")
        .to_string()
}

fn periods(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap().to_string(),
                p["end"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(start: &str, end: &str) -> (String, String) {
    (start.to_string(), end.to_string())
}

#[tokio::test]
async fn office_hours_follow_the_zone_across_the_spring_change() {
    // Arrange
    let (app, _clock) = scheduling_app("2026-03-26T12:00:00Z").await;

    // Act: Friday to Monday around Europe/Paris's 2026-03-29 change (UTC+1 to UTC+2).
    let response = app
        .get(
            "/genesys/1/service/paris-hours?start=2026-03-27T00:00:00Z&number-of-days=4",
            None,
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    let body = body_json(response).await;
    assert!(body["error"].is_null(), "{body}");
    assert_eq!(body["timezone"], "Europe/Paris");
    let days: Vec<(String, Vec<(String, String)>)> = body["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                periods(&d["periods"]),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            (
                "2026-03-27".to_string(),
                vec![pair("2026-03-27T07:00:00.000Z", "2026-03-27T19:00:00.000Z")]
            ),
            ("2026-03-28".to_string(), vec![]),
            (
                "2026-03-29".to_string(),
                vec![pair("2026-03-29T00:00:00.000Z", "2026-03-29T02:00:00.000Z")]
            ),
            (
                "2026-03-30".to_string(),
                vec![pair("2026-03-30T06:00:00.000Z", "2026-03-30T18:00:00.000Z")]
            ),
            (
                "2026-03-31".to_string(),
                vec![pair("2026-03-31T06:00:00.000Z", "2026-03-31T18:00:00.000Z")]
            ),
        ],
        "Friday 08:00 is 07:00Z, Monday 08:00 is 06:00Z, Sunday's 01:00-04:00 is two hours"
    );
    assert_eq!(
        periods(&body["periods"]).len(),
        3,
        "Tuesday opens after the window: {body}"
    );
}

#[tokio::test]
async fn office_hours_without_a_window_say_whether_the_office_is_open_now() {
    // Arrange: Sunday 2026-10-25, Europe/Paris falls back from UTC+2 to UTC+1 at 01:00Z.
    let (app, clock) = scheduling_app("2026-10-25T02:30:00Z").await;

    // Act: 03:30 CET, inside 01:00 CEST to 04:00 CET (four hours that day).
    let open = body_json(app.get("/genesys/1/service/paris-hours", None).await).await;
    clock.set(at("2026-10-25T03:30:00Z"));
    let closed = body_json(app.get("/genesys/1/service/paris-hours", None).await).await;

    // Assert
    assert_eq!(
        periods(&open["periods"]),
        [pair("2026-10-24T23:00:00.000Z", "2026-10-25T03:00:00.000Z")],
        "{open}"
    );
    assert_eq!(
        periods(&closed["periods"]),
        Vec::new(),
        "04:30 CET: {closed}"
    );
}

#[tokio::test]
async fn office_hours_queries_name_the_bad_field_and_unknown_services_are_404() {
    let (app, _clock) = scheduling_app("2026-03-26T12:00:00Z").await;
    let cases = [
        ("start=tomorrow", "start"),
        ("number-of-days=0", "number-of-days"),
        ("number-of-days=400", "number-of-days"),
        ("start=2026-03-27T00:00:00Z&end=2026-03-26T00:00:00Z", "end"),
        (
            "end=2026-03-27T00:00:00Z&number-of-days=2",
            "number-of-days",
        ),
    ];
    for (query, field) in cases {
        let response = app
            .get(&format!("/genesys/1/service/paris-hours?{query}"), None)
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let body = body_json(response).await;
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
    let unknown = app.get("/genesys/1/service/no-such-hours", None).await;
    assert_eq!(unknown.status(), 404);
    let body = body_json(unknown).await;
    assert!(
        body["message"].as_str().unwrap().contains("no-such-hours"),
        "the 404 names the service, not just the path: {body}"
    );
    let capacity = app.get("/genesys/1/service/paris-capacity", None).await;
    assert_eq!(
        capacity.status(),
        400,
        "a capacity service answers the Capacity API, whose start is required"
    );
    let bad = app
        .admin(Method::PUT, "/genesys/1/admin/services/bad-hours")
        .json(&json!({"preset": "Office-Hours", "options": {"_timezone": "Europe/Paris", "_bh_regular1": "Mon-Fry 08:00-20:00"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(body_json(bad).await["message"]
        .as_str()
        .unwrap()
        .contains("_bh_regular1"));
}

#[tokio::test]
async fn availability_counts_drop_as_callbacks_are_scheduled() {
    // Arrange: Monday 2026-03-30 07:00 in Paris (05:00Z), before opening.
    let (app, _clock) = scheduling_app("2026-03-30T05:00:00Z").await;
    let window = "start=2026-03-30T00:00:00Z&end=2026-03-31T00:00:00Z";
    let before = availability(&app, window).await;

    // Act
    id_of(create_at(&app, "booked", "2026-03-30T06:10:00Z").await).await;
    let after_one = availability(&app, window).await;
    id_of(create_at(&app, "booked", "2026-03-30T06:29:59Z").await).await;
    let after_two = availability(&app, window).await;

    // Assert: 08:00 to 10:00 Paris (06:00Z to 08:00Z), 30-minute buckets of two.
    assert_eq!(
        before,
        json!({
            "2026-03-30T06:00:00.000Z": 2,
            "2026-03-30T06:30:00.000Z": 2,
            "2026-03-30T07:00:00.000Z": 2,
            "2026-03-30T07:30:00.000Z": 2,
        })
    );
    assert_eq!(after_one["2026-03-30T06:00:00.000Z"], 1, "{after_one}");
    assert!(
        after_two.get("2026-03-30T06:00:00.000Z").is_none(),
        "a full bucket is not offered: {after_two}"
    );
    assert_eq!(after_two.as_object().unwrap().len(), 3);

    // The older `timestamp` form (one day), and max-time-slots.
    let older = availability(&app, "timestamp=2026-03-30T06:00:00Z").await;
    assert_eq!(older, after_two);
    let first = availability(&app, "start=2026-03-30T00:00:00Z&max-time-slots=1").await;
    assert_eq!(first, json!({"2026-03-30T06:30:00.000Z": 2}));
    // Easter Monday 2026-04-06 is a holiday: nothing is offered.
    let holiday = availability(&app, "start=2026-04-06T00:00:00Z&number-of-days=1").await;
    assert_eq!(holiday, json!({}));
}

#[tokio::test]
async fn availability_names_the_bad_field_and_unknown_services_are_404() {
    let (app, _clock) = scheduling_app("2026-03-30T05:00:00Z").await;
    for (query, field) in [
        ("max-time-slots=0", "max-time-slots"),
        ("max-time-slots=lots", "max-time-slots"),
        ("number-of-days=93", "number-of-days"),
        ("timestamp=monday", "timestamp"),
    ] {
        let response = app
            .get(
                &format!("/genesys/1/service/callback/booked/availability?{query}"),
                None,
            )
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let body = body_json(response).await;
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
    let unknown = app
        .get("/genesys/1/service/callback/nobody/availability", None)
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_full_bucket_is_refused_on_create_with_the_nearest_free_slots() {
    // Arrange
    let (app, _clock) = scheduling_app("2026-03-30T05:00:00Z").await;
    id_of(create_at(&app, "booked", "2026-03-30T06:00:00Z").await).await;
    id_of(create_at(&app, "booked", "2026-03-30T06:15:00Z").await).await;

    // Act
    let refused = create_at(&app, "booked", "2026-03-30T06:20:00Z").await;

    // Assert
    assert_eq!(refused.status(), 400);
    let body = body_json(refused).await;
    assert_eq!(body["exception"], "DesiredTimeNotAvailable", "{body}");
    assert!(body["message"].as_str().unwrap().contains("full"), "{body}");
    assert_eq!(
        body["availability"],
        json!({
            "2026-03-30T06:30:00.000Z": 2,
            "2026-03-30T07:00:00.000Z": 2,
            "2026-03-30T07:30:00.000Z": 2,
        }),
        "the free buckets of that morning (the next Monday, 2026-04-06, is a holiday)"
    );
    let next = availability(&app, "start=2026-03-30T06:00:00Z&max-time-slots=1").await;
    assert_eq!(
        next,
        json!({"2026-03-30T06:30:00.000Z": 2}),
        "nothing was stored"
    );
}

#[tokio::test]
async fn a_reschedule_into_a_full_bucket_is_refused_with_the_availability_map() {
    // Arrange
    let (app, _clock) = scheduling_app("2026-03-30T05:00:00Z").await;
    id_of(create_at(&app, "booked", "2026-03-30T06:00:00Z").await).await;
    id_of(create_at(&app, "booked", "2026-03-30T06:05:00Z").await).await;
    let moving = id_of(create_at(&app, "booked", "2026-03-30T07:00:00Z").await).await;
    id_of(create_at(&app, "booked", "2026-03-30T07:10:00Z").await).await;

    // Act
    let refused = reschedule(&app, "booked", &moving, "2026-03-30T06:20:00Z").await;
    let within = reschedule(&app, "booked", &moving, "2026-03-30T07:20:00Z").await;
    let moved = reschedule(&app, "booked", &moving, "2026-03-30T07:40:00Z").await;

    // Assert
    assert_eq!(refused.status(), 400);
    let body = body_json(refused).await;
    assert_eq!(body["exception"], "DesiredTimeNotAvailable", "{body}");
    assert_eq!(
        body["availability"],
        json!({
            "2026-03-30T06:30:00.000Z": 2,
            "2026-03-30T07:00:00.000Z": 1,
            "2026-03-30T07:30:00.000Z": 2,
        }),
        "the service being moved leaves its place at 07:00 free"
    );
    assert_eq!(
        within.status(),
        200,
        "a move inside its own bucket does not count itself"
    );
    assert_eq!(moved.status(), 200);
    let now = availability(&app, "start=2026-03-30T06:00:00Z&end=2026-03-30T08:00:00Z").await;
    assert_eq!(
        now,
        json!({
            "2026-03-30T06:30:00.000Z": 2,
            "2026-03-30T07:00:00.000Z": 1,
            "2026-03-30T07:30:00.000Z": 1,
        }),
        "the moved callback left 07:00 for 07:30"
    );
}

#[tokio::test]
async fn out_of_office_hours_is_refused_when_the_service_says_so() {
    // Arrange: Monday 2026-03-30 07:00 in Paris, an hour before opening.
    let (app, clock) = scheduling_app("2026-03-30T05:00:00Z").await;

    // Act
    let immediate = app
        .post_form(
            "/genesys/1/service/callback/strict",
            Some(GMS_USER),
            &[("_customer_number", "4082652649")],
        )
        .await;
    let evening = create_at(&app, "strict", "2026-03-30T18:30:00Z").await;
    let open = create_at(&app, "strict", "2026-03-30T09:00:00Z").await;
    clock.set(at("2026-03-30T06:00:00Z"));
    let at_opening = app
        .post_form(
            "/genesys/1/service/callback/strict",
            Some(GMS_USER),
            &[("_customer_number", "4082652649")],
        )
        .await;

    // Assert
    for (what, response) in [("immediate at 07:00", immediate), ("20:30", evening)] {
        assert_eq!(response.status(), 400, "{what}");
        let body = body_json(response).await;
        assert_eq!(
            body["exception"], "DesiredTimeNotAvailable",
            "{what}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("_enable_reject_out_of_office_hours"),
            "{what}: {body}"
        );
    }
    let scheduled = id_of(open).await;
    assert_eq!(at_opening.status(), 200, "08:00 Paris is open");
    let into_closed = reschedule(&app, "strict", &scheduled, "2026-03-30T19:00:00Z").await;
    assert_eq!(into_closed.status(), 400, "21:00 Paris");
}

#[tokio::test]
async fn desired_times_beyond_the_future_and_past_limits_are_refused() {
    // Arrange: Monday 2026-03-30 10:00 in Paris, open.
    let (app, _clock) = scheduling_app("2026-03-30T08:00:00Z").await;

    // Act
    let too_late = create_at(&app, "strict", "2026-03-31T08:00:01Z").await;
    let latest = create_at(&app, "strict", "2026-03-31T08:00:00Z").await;
    let too_early = create_at(&app, "strict", "2026-03-30T06:59:59Z").await;
    let earliest = create_at(&app, "strict", "2026-03-30T07:00:00Z").await;

    // Assert
    for (response, option) in [
        (too_late, "_reject_future_desired_time"),
        (too_early, "_reject_past_desired_time"),
    ] {
        assert_eq!(response.status(), 400, "{option}");
        let body = body_json(response).await;
        assert!(
            body["message"].as_str().unwrap().contains(option),
            "{option}: {body}"
        );
    }
    let id = id_of(latest).await;
    assert_eq!(
        earliest.status(),
        200,
        "an hour back is allowed (it starts now)"
    );
    let pushed = reschedule(&app, "strict", &id, "2026-04-01T09:00:00Z").await;
    assert_eq!(pushed.status(), 400);
    assert!(body_json(pushed).await["message"]
        .as_str()
        .unwrap()
        .contains("_reject_future_desired_time"));
}

async fn get_json(app: &TestApp, path: &str, status: u16) -> Value {
    let response = app.get(path, None).await;
    assert_eq!(response.status(), status, "GET {path}");
    body_json(response).await
}

/// (start, end, capacity) of each period of a Capacity API reply.
fn capacity_periods(reply: &Value) -> Vec<(String, String, u64)> {
    reply["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap().to_string(),
                p["end"].as_str().unwrap().to_string(),
                p["capacity"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_capacity_query_answers_each_hour_with_its_capacity_in_the_zone_asked() {
    // Arrange: Mondays 08:00 and 09:00 in Paris take two callbacks per bucket.
    let (app, _clock) = scheduling_app("2026-03-26T12:00:00Z").await;

    // Act: wall times without a zone, read in the service's own zone by default.
    let paris = get_json(
        &app,
        "/genesys/1/service/paris-capacity?start=2026-03-30T07:30:00.000&end=2026-03-30T10:00:00.000",
        200,
    )
    .await;
    let utc = get_json(
        &app,
        "/genesys/1/service/paris-capacity?start=2026-03-30T06:00:00.000&end=2026-03-30T08:00:00.000&timezone=UTC",
        200,
    )
    .await;

    // Assert
    assert_eq!(paris["error"], Value::Null);
    assert_eq!(paris["timezone"], "Europe/Paris");
    assert_eq!(
        capacity_periods(&paris),
        [
            (
                "2026-03-30T07:30:00.000+02:00".into(),
                "2026-03-30T08:00:00.000+02:00".into(),
                0
            ),
            (
                "2026-03-30T08:00:00.000+02:00".into(),
                "2026-03-30T09:00:00.000+02:00".into(),
                2
            ),
            (
                "2026-03-30T09:00:00.000+02:00".into(),
                "2026-03-30T10:00:00.000+02:00".into(),
                2
            ),
        ],
        "the first hour is clipped to start: {paris}"
    );
    assert_eq!(utc["timezone"], "UTC");
    assert_eq!(
        capacity_periods(&utc),
        [
            (
                "2026-03-30T06:00:00.000+00:00".into(),
                "2026-03-30T07:00:00.000+00:00".into(),
                2
            ),
            (
                "2026-03-30T07:00:00.000+00:00".into(),
                "2026-03-30T08:00:00.000+00:00".into(),
                2
            ),
        ],
        "the same Paris hours, read and written in UTC: {utc}"
    );
    // A time with its own zone is that instant whatever timezone says.
    let zoned = get_json(
        &app,
        "/genesys/1/service/paris-capacity?start=2026-03-30T06:00:00Z&end=2026-03-30T07:00:00Z&timezone=America/New_York",
        200,
    )
    .await;
    assert_eq!(
        capacity_periods(&zoned),
        [(
            "2026-03-30T02:00:00.000-04:00".into(),
            "2026-03-30T03:00:00.000-04:00".into(),
            2
        )]
    );
}

#[tokio::test]
async fn capacity_queries_name_the_bad_field() {
    let (app, _clock) = scheduling_app("2026-03-26T12:00:00Z").await;
    for (query, field) in [
        ("end=2026-03-30T10:00:00.000", "start"),
        ("start=2026-03-30T10:00:00.000", "end"),
        ("start=monday&end=2026-03-30T10:00:00.000", "start"),
        (
            "start=2026-03-30T10:00:00.000&end=2026-03-30T09:00:00.000",
            "end",
        ),
        (
            "start=2026-01-01T00:00:00.000&end=2026-06-01T00:00:00.000",
            "end",
        ),
        (
            "start=2026-03-30T08:00:00.000&end=2026-03-30T10:00:00.000&timezone=Mars/Olympus",
            "timezone",
        ),
    ] {
        let body = get_json(
            &app,
            &format!("/genesys/1/service/paris-capacity?{query}"),
            400,
        )
        .await;
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn effective_dates_close_office_hours_and_capacity_outside_them() {
    // Arrange: Monday 2026-03-30 and Tuesday 2026-03-31 only.
    let (app, _clock) = scheduling_app("2026-03-29T12:00:00Z").await;
    configure(
        &app,
        "two-day-hours",
        "Office-Hours",
        json!({
            "_timezone": "Europe/Paris",
            "_bh_regular1": "Mon-Fri 08:00-10:00",
            "_effective_dates1": "2026-03-30 to 2026-03-31",
        }),
    )
    .await;
    configure(
        &app,
        "tuesday-capacity",
        "Capacity",
        json!({
            "_timezone": "Europe/Paris",
            "_capacity_1": r#"{"1":{"0800":3,"0900":3}}"#,
            "_capacity_2": r#"{"2":{"0800":3,"0900":3}}"#,
            "_effective_dates1": "2026-03-31",
        }),
    )
    .await;
    configure(
        &app,
        "effective",
        "Chat-Delayed",
        json!({
            "_target": "Support@StatServer.GA",
            "_business_hours_service": "two-day-hours",
            "_capacity_service": "tuesday-capacity",
            "_request_time_bucket": "60",
        }),
    )
    .await;

    // Act
    let office = get_json(
        &app,
        "/genesys/1/service/two-day-hours?start=2026-03-30T00:00:00Z&number-of-days=3",
        200,
    )
    .await;
    let capacity = get_json(
        &app,
        "/genesys/1/service/tuesday-capacity?start=2026-03-30T08:00:00&end=2026-03-30T09:00:00",
        200,
    )
    .await;
    let slots = get_json(
        &app,
        "/genesys/1/service/callback/effective/availability?start=2026-03-30T00:00:00Z&number-of-days=3",
        200,
    )
    .await;

    // Assert
    let opened: Vec<(String, usize)> = office["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["periods"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        opened,
        [
            ("2026-03-30".to_string(), 1),
            ("2026-03-31".to_string(), 1),
            ("2026-04-01".to_string(), 0),
            ("2026-04-02".to_string(), 0),
        ],
        "closed after the last effective date: {office}"
    );
    assert_eq!(
        capacity_periods(&capacity),
        [(
            "2026-03-30T08:00:00.000+02:00".into(),
            "2026-03-30T09:00:00.000+02:00".into(),
            0
        )],
        "Monday is outside the capacity's effective date: {capacity}"
    );
    assert_eq!(
        slots,
        json!({"2026-03-31T06:00:00.000Z": 3, "2026-03-31T07:00:00.000Z": 3}),
        "only Tuesday is both open and has capacity"
    );
    // A bad range is refused when the service is configured, naming the option.
    let bad = app
        .admin(Method::PUT, "/genesys/1/admin/services/bad-dates")
        .json(&json!({"preset": "Capacity", "options": {"_timezone": "UTC", "_effective_dates2": "2026-04-30 to 2026-04-01"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(body_json(bad).await["message"]
        .as_str()
        .unwrap()
        .contains("_effective_dates2"));
}

#[tokio::test]
async fn the_service_path_routes_compose_whatever_their_order() {
    let (app, _clock) = scheduling_app("2026-03-26T12:00:00Z").await;
    // `/service/callback` is the callback query's own: its 400, not a scheduling 404.
    let query = get_json(&app, "/genesys/1/service/callback", 400).await;
    assert!(
        query["message"].as_str().unwrap().contains("_id"),
        "the callback query's own message: {query}"
    );
    // A name that is no scheduling service: 404 naming it, not the 405 of POST /service/{name}.
    let unknown = get_json(&app, "/genesys/1/service/request-chat", 404).await;
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("request-chat"),
        "{unknown}"
    );
    // Other methods on a scheduling service's path are still 405.
    let put = app
        .request(Method::PUT, "/genesys/1/service/paris-hours")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
}
