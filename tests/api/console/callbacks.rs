//! The Callbacks pages over HTTP: the time filter and its two GMS messages, the state/service
//! filters and search, roles, the CSV export, `reportcancelled` and bulk cancel by filter.

use std::time::{SystemTime, UNIX_EPOCH};

use callbackd::domain::time::Timestamp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, SignedIn, TestApp};

const PASSWORD: &str = "correct horse";

/// An ISO time `days` from now.
fn in_days(days: f64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    Timestamp::from_millis((now + days * 86_400_000.0) as u64).to_iso()
}

async fn create_at(app: &TestApp, number: &str, days: f64) -> String {
    let at = in_days(days);
    app.create(
        "chat-delay",
        &[("_customer_number", number), ("_desired_time", &at)],
    )
    .await
}

async fn admin_session(app: &TestApp) -> SignedIn {
    app.add_user("ada", "administrator", None, PASSWORD).await;
    app.sign_in("admin", "ada", PASSWORD).await
}

async fn page(app: &TestApp, session: &SignedIn, query: &str) -> String {
    let response = app
        .as_user(session, Method::GET, &format!("/admin/callbacks?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_time_filter_reads_gms_windows_and_checks_custom_ranges() {
    let app = spawn_app().await;
    let session = admin_session(&app).await;
    let past = create_at(&app, "1001", -0.5).await;
    let soon = create_at(&app, "1002", 2.0).await;
    let later = create_at(&app, "1003", 10.0).await;

    let table = [
        ("range=last24h", vec![&past], vec![&soon, &later]),
        ("range=next24h", vec![], vec![&past, &soon, &later]),
        ("range=next7d", vec![&soon], vec![&past, &later]),
        ("range=next30d", vec![&soon, &later], vec![&past]),
        ("range=last7d", vec![&past], vec![&soon]),
        ("range=any", vec![&past, &soon, &later], vec![]),
    ];
    for (query, shown, hidden) in table {
        let body = page(&app, &session, query).await;
        for id in &shown {
            assert!(body.contains(id.as_str()), "{query} shows {id}");
        }
        for id in &hidden {
            assert!(!body.contains(id.as_str()), "{query} hides {id}");
        }
        let count = format!("<strong>{}</strong> callback", shown.len());
        assert!(body.contains(&count), "{query}: {count}");
    }
    assert!(page(&app, &session, "range=any")
        .await
        .contains("3</strong> callbacks found"));

    let start = &in_days(1.0)[..16];
    let end = &in_days(3.0)[..16];
    let body = page(
        &app,
        &session,
        &format!("range=custom&start={start}&end={end}&tz=0"),
    )
    .await;
    assert!(
        body.contains(&soon) && !body.contains(&later),
        "custom range"
    );
    let body = page(
        &app,
        &session,
        &format!("range=custom&start={end}&end={start}"),
    )
    .await;
    assert!(body.contains("Start date is not before the end date!"));
    let far = &in_days(40.0)[..16];
    let body = page(
        &app,
        &session,
        &format!("range=custom&start={start}&end={far}"),
    )
    .await;
    assert!(body.contains("Maximum range is one month!"));
}

#[tokio::test]
async fn states_services_and_search_filter_the_list() {
    let app = spawn_app().await;
    let session = admin_session(&app).await;
    let a = create_at(&app, "5550001", 1.0).await;
    let b = create_at(&app, "5550002", 1.0).await;
    let other = create_at(&app, "4440003", 1.0).await;
    let response = app
        .admin(Method::POST, "/genesys/1/admin/callback/reportcancelled")
        .json(&json!({"ids": [b]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let body = page(&app, &session, "range=any&q=555").await;
    assert!(body.contains(&a) && body.contains(&b) && !body.contains(&other));
    let body = page(&app, &session, &format!("range=any&q={other}")).await;
    assert!(body.contains(&other) && !body.contains(&a), "search by id");
    let body = page(&app, &session, "range=any&state=COMPLETED").await;
    assert!(body.contains(&b) && !body.contains(&a));
    assert!(
        body.contains("CANCELLED_BY_ADMIN"),
        "the reason beside COMPLETED"
    );
    let body = page(
        &app,
        &session,
        "range=any&state=SCHEDULED&service=chat-delay",
    )
    .await;
    assert!(body.contains(&a) && body.contains(&other) && !body.contains(&b));
    let body = page(&app, &session, "range=any&service=chat-immediate").await;
    assert!(!body.contains(&a), "another service");

    let detail = app
        .as_user(&session, Method::GET, &format!("/admin/callbacks/{a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(detail.status(), 200);
    let detail = detail.text().await.unwrap();
    for needle in [
        "State history",
        "Routing history",
        "Options snapshot",
        "5550001",
    ] {
        assert!(detail.contains(needle), "detail has {needle}");
    }
}

#[tokio::test]
async fn a_monitor_sees_the_list_but_cannot_cancel_or_export() {
    let app = spawn_app().await;
    let id = create_at(&app, "777", 1.0).await;
    app.add_user("mo", "monitor", None, PASSWORD).await;
    let session = app.sign_in("admin", "mo", PASSWORD).await;
    let body = page(&app, &session, "range=any").await;
    assert!(body.contains(&id));
    assert!(
        !body.contains("cancel-all"),
        "no bulk cancel button for a monitor"
    );

    let response = app
        .as_user(
            &session,
            Method::POST,
            "/genesys/1/admin/callback/reportcancelled",
        )
        .header("x-csrf-token", &session.csrf)
        .json(&json!({"ids": [id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .as_user(
            &session,
            Method::POST,
            &format!("/admin/callbacks/{id}/cancel"),
        )
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .as_user(
            &session,
            Method::GET,
            "/genesys/1/admin/callbacks/export?range=any",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let detail: Value = app
        .admin(Method::GET, &format!("/genesys/1/admin/callback/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["_state"].as_str().unwrap_or("SCHEDULED"),
        "SCHEDULED"
    );
}

#[tokio::test]
async fn the_csv_of_a_filter_and_reportcancelled_report_each_id() {
    let app = spawn_app().await;
    let a = create_at(&app, "8880001", 1.0).await;
    let b = create_at(&app, "8880002", 2.0).await;
    let _other = create_at(&app, "9990001", 1.0).await;

    let csv = app
        .admin(
            Method::GET,
            "/genesys/1/admin/callbacks/export?range=any&q=888",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,service,state,reason,desired_time,customer_number,created_at,reserved_agent"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].starts_with(&format!("{a},chat-delay,SCHEDULED,,")));
    assert!(lines[2].contains(&b) && lines[2].contains("8880002"));

    let report: Value = app
        .admin(Method::POST, "/genesys/1/admin/callback/reportcancelled")
        .json(&json!({"ids": [a, "no-such-id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["cancelled"], 1);
    assert_eq!(report["report"][0], json!({"_id": a, "_ok_title": "Ok"}));
    assert_eq!(
        report["report"][1],
        json!({"_id": "no-such-id", "_ok_title": "FAILURE_MISSING"})
    );
    let again: Value = app
        .admin(Method::POST, "/genesys/1/admin/callback/reportcancelled")
        .json(&json!({"ids": [a]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["report"][0]["_ok_title"], "FAILURE_COMPLETED");

    let csv = app
        .admin(Method::POST, "/genesys/1/admin/callbacks/export")
        .json(&json!({"ids": [a]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains(&format!("{a},chat-delay,COMPLETED,CANCELLED_BY_ADMIN,")));
}

#[tokio::test]
async fn bulk_cancel_by_filter_cancels_every_page_not_just_the_first() {
    let app = spawn_app().await;
    let session = admin_session(&app).await;
    let mut ids = Vec::new();
    for i in 0..255 {
        ids.push(create_at(&app, &format!("6600{i:03}"), 1.0).await);
    }
    let keep = create_at(&app, "1234567", 1.0).await;
    let body = page(&app, &session, "range=next7d&q=6600").await;
    assert!(body.contains("255</strong> callbacks found"));
    assert!(body.contains("page 1 of 2"), "250 rows per page");

    let response = app
        .as_user(
            &session,
            Method::POST,
            "/genesys/1/admin/callback/reportcancelled",
        )
        .header("x-csrf-token", &session.csrf)
        .json(&json!({"filter": {"range": "next7d", "q": "6600"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["cancelled"], 255);
    let body = page(&app, &session, "range=next7d&q=6600&state=SCHEDULED").await;
    assert!(body.contains("<strong>0</strong> callbacks found"));
    let body = page(&app, &session, "range=next7d&state=SCHEDULED").await;
    assert!(body.contains(&keep), "outside the filter stays");
    assert!(!body.contains(&ids[254]));
}

#[tokio::test]
async fn cancel_all_counts_only_what_it_would_cancel_and_pages_stay_in_time_order() {
    let app = spawn_app().await;
    let session = admin_session(&app).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create_at(&app, &format!("7700{i}"), 1.0 + f64::from(i) / 10.0).await);
    }
    let response = app
        .admin(Method::POST, "/genesys/1/admin/callback/reportcancelled")
        .json(&json!({"ids": [ids[0], ids[3]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let body = page(&app, &session, "range=next7d&q=7700").await;

    assert!(
        body.contains("<strong>5</strong> callbacks found"),
        "every state is found"
    );
    assert!(
        body.contains(">Cancel 3 of 5 matching</button>"),
        "the button counts what it would cancel"
    );
    assert!(body.contains("2 already completed or being handled (PROCESSING) stay as they are."));
    assert!(body.contains("data-confirm=\"Cancel 3 callbacks: everything the filter covers, on every page? 2 of the 5 found are already completed"));
    let shown: Vec<usize> = ids
        .iter()
        .map(|id| body.find(id.as_str()).unwrap())
        .collect();
    assert!(shown.windows(2).all(|w| w[0] < w[1]), "desired-time order");

    let body = page(&app, &session, "range=next7d&q=7700&state=SCHEDULED").await;
    assert!(body.contains(">Cancel all 3 matching</button>"));
    assert!(!body.contains("cancel-all-note"));
    let body = page(&app, &session, "range=next7d&q=7700&state=COMPLETED").await;
    assert!(body.contains(">Cancel 0 of 2 matching</button>"));
    assert!(
        body.contains("id=\"cancel-all\" class=\"danger\" disabled"),
        "nothing to cancel"
    );
}

#[tokio::test]
async fn the_second_page_holds_the_rest_and_a_page_past_the_end_shows_the_last() {
    let app = spawn_app().await;
    let session = admin_session(&app).await;
    let mut ids = Vec::new();
    for i in 0..252 {
        ids.push(create_at(&app, &format!("8800{i:03}"), 1.0 + f64::from(i) / 1000.0).await);
    }

    let first = page(&app, &session, "range=next7d&q=8800").await;
    let second = page(&app, &session, "range=next7d&q=8800&page=2").await;
    let past_the_end = page(&app, &session, "range=next7d&q=8800&page=9").await;

    assert!(first.contains(&ids[249]) && !first.contains(&ids[250]));
    assert!(second.contains(&ids[250]) && second.contains(&ids[251]));
    assert!(
        !second.contains(&ids[249]),
        "page 2 starts after page 1 ends"
    );
    assert!(second.contains("page 2 of 2") && second.contains("252</strong> callbacks found"));
    assert!(past_the_end.contains("page 2 of 2") && past_the_end.contains(&ids[251]));
}
