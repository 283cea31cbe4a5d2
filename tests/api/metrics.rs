//! `GET /metrics`: scraped after driving a flow, the exposition parsed and its values checked;
//! and who may read it.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    eventually, set_state, spawn_app, spawn_app_with, wait_for_state, TestApp, GMS_USER,
};

/// One sample of the exposition: its name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// The samples of an exposition in the text format: `name{k="v",...} value` lines; comments
/// (`# TYPE`, `# HELP`, `# EOF`) are skipped. Panics on a line it cannot read, so a
/// malformed exposition fails the test.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                (name.to_string(), parse_labels(body, line))
            }
        };
        assert!(
            samples.insert(Series { name, labels }, value).is_none(),
            "a series given twice: {line:?}"
        );
    }
    samples
}

/// `k="v",k2="v2"`, with `\"` and `\\` escapes in values.
fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    if let Some((_, c)) = chars.next() {
                        value.push(if c == 'n' { '\n' } else { c });
                    }
                }
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unclosed label value in {line:?}"),
            }
        };
        labels.insert(key.to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The value of `name` with exactly `labels`, if the exposition has it.
fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let key = Series {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    samples.get(&key).copied()
}

/// GETs /metrics with the admin token, expecting 200; answers the raw text.
async fn scrape_text(app: &TestApp) -> String {
    let response = app.admin(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200, "GET /metrics with the token");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "content type"
    );
    response.text().await.unwrap()
}

async fn scrape(app: &TestApp) -> BTreeMap<Series, f64> {
    parse(&scrape_text(app).await)
}

const CREATE_ROUTE: &str = "/genesys/1/service/callback/{name}";

#[tokio::test]
async fn a_scrape_after_a_flow_counts_creates_by_route_and_shows_services_queues_and_agents() {
    // Arrange: three chat-delay services and no agent ready, so all three wait.
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for number in ["4082652649", "4082652650", "4082652651"] {
        ids.push(
            app.create("chat-delay", &[("_customer_number", number)])
                .await,
        );
    }
    let unknown = app.get("/genesys/1/nothing/here", None).await;
    assert_eq!(unknown.status(), 404);

    // Act and assert: all three are QUEUED and wait in one virtual queue.
    let samples = eventually(
        Duration::from_secs(10),
        "three services waiting",
        || async {
            let samples = scrape(&app).await;
            let waiting: f64 = samples
                .iter()
                .filter(|(s, _)| s.name == "callbackd_queue_waiting")
                .map(|(_, v)| v)
                .sum();
            (waiting == 3.0).then_some(samples)
        },
    )
    .await;
    let create = [
        ("method", "POST"),
        ("route", CREATE_ROUTE),
        ("status", "200"),
    ];
    assert_eq!(
        value(&samples, "callbackd_http_requests_total", &create),
        Some(3.0),
        "one count per create, under the route template"
    );
    assert_eq!(
        value(
            &samples,
            "callbackd_http_request_duration_seconds_count",
            &create
        ),
        Some(3.0),
        "one latency per create"
    );
    assert_eq!(
        value(
            &samples,
            "callbackd_http_requests_total",
            &[("method", "GET"), ("route", "other"), ("status", "404")]
        ),
        Some(1.0),
        "an unknown path counts under `other`"
    );
    assert!(
        samples
            .keys()
            .all(|s| s.labels.get("route").is_none_or(|r| !r.contains(&ids[0]))),
        "no raw id in a route label"
    );
    let services = |samples: &BTreeMap<Series, f64>, state: &str| {
        value(
            samples,
            "callbackd_services",
            &[("service", "chat-delay"), ("state", state)],
        )
    };
    assert_eq!(services(&samples, "QUEUED"), Some(3.0));
    assert_eq!(services(&samples, "ROUTING"), Some(0.0));
    let agents = |samples: &BTreeMap<Series, f64>, state: &str| {
        value(samples, "callbackd_agents", &[("state", state)])
    };
    assert_eq!(
        agents(&samples, "ready"),
        Some(0.0),
        "the fixture's agents are logged out"
    );
    assert!(agents(&samples, "logged_out").unwrap() >= 1.0);
    let queue = samples
        .keys()
        .find(|s| s.name == "callbackd_queue_waiting")
        .map(|s| s.labels["queue"].clone())
        .expect("a queue series");
    assert!(
        value(
            &samples,
            "callbackd_queue_oldest_wait_seconds",
            &[("queue", &queue)]
        )
        .is_some(),
        "oldest wait of {queue}"
    );
    assert!(value(&samples, "callbackd_store_size_bytes", &[]).unwrap() > 0.0);
    assert!(
        value(&samples, "callbackd_expiry_runs_total", &[]).unwrap() >= 1.0,
        "the catch-up run at start-up"
    );
    assert_eq!(value(&samples, "callbackd_cometd_clients", &[]), Some(0.0));

    // Act: an agent becomes ready and takes the first service.
    set_state(&app, "kristi", "ready").await;
    wait_for_state(&app, &ids[0], "ROUTING").await;

    // Assert: one ROUTING, two QUEUED, two waiting, one agent ready.
    let samples = eventually(Duration::from_secs(10), "two left waiting", || async {
        let samples = scrape(&app).await;
        (value(&samples, "callbackd_queue_waiting", &[("queue", &queue)]) == Some(2.0))
            .then_some(samples)
    })
    .await;
    assert_eq!(services(&samples, "ROUTING"), Some(1.0));
    assert_eq!(services(&samples, "QUEUED"), Some(2.0));
    assert_eq!(agents(&samples, "ready"), Some(1.0));
    assert_eq!(
        value(&samples, "callbackd_http_requests_total", &create),
        Some(3.0),
        "scrapes and other routes do not count as creates"
    );
    assert_eq!(
        value(
            &samples,
            "callbackd_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/genesys/1/agent/{agent}/state"),
                ("status", "200")
            ]
        ),
        Some(1.0)
    );
    // Act: the desktop's history and voice outcome routes, each counted under its template
    // (whatever the status: a chat takes no dial outcome), not under `other`.
    let history = app
        .admin(Method::GET, "/genesys/1/agent/kristi/history")
        .send()
        .await
        .unwrap();
    let history_status = history.status().as_u16().to_string();
    let outcome = app
        .admin(
            Method::POST,
            &format!("/genesys/1/agent/kristi/interactions/{}/outcome", ids[0]),
        )
        .json(&json!({"outcome": "connected"}))
        .send()
        .await
        .unwrap();
    let outcome_status = outcome.status().as_u16().to_string();

    // Assert
    let samples = scrape(&app).await;
    for (method, route, status) in [
        ("GET", "/genesys/1/agent/{agent}/history", &history_status),
        (
            "POST",
            "/genesys/1/agent/{agent}/interactions/{service}/outcome",
            &outcome_status,
        ),
    ] {
        let labels = [("method", method), ("route", route), ("status", status)];
        assert_eq!(
            value(&samples, "callbackd_http_requests_total", &labels),
            Some(1.0),
            "{method} {route} counted under its template"
        );
        assert_eq!(
            value(
                &samples,
                "callbackd_http_request_duration_seconds_count",
                &labels
            ),
            Some(1.0),
            "{method} {route} timed under its template"
        );
    }
    assert_eq!(history_status, "200", "kristi's history");
    let other: f64 = samples
        .iter()
        .filter(|(s, _)| {
            s.name == "callbackd_http_requests_total"
                && s.labels.get("route").map(String::as_str) == Some("other")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(other, 1.0, "only the unknown path counts under `other`");

    // The committer books a flush just after answering it; by now the creates' are booked.
    assert!(
        value(&samples, "callbackd_store_commit_batch_size_sum", &[]).unwrap() >= 3.0,
        "every create waited for a flush"
    );
    assert!(
        value(
            &samples,
            "callbackd_store_commit_flush_duration_seconds_count",
            &[]
        )
        .unwrap()
            >= 1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_the_admin_token_and_fail_closed_without_one() {
    let app = spawn_app().await;
    let none = app.get("/metrics", None).await;
    assert_eq!(none.status(), 401, "no token");
    let wrong = app
        .request(Method::GET, "/metrics")
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "wrong token");
    let text = scrape_text(&app).await;
    assert!(text.ends_with("# EOF\n"), "a complete exposition");
    // The refused scrapes were counted too.
    let samples = parse(&text);
    assert_eq!(
        value(
            &samples,
            "callbackd_http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "401")]
        ),
        Some(2.0)
    );
    app.stop().await;

    let disabled = spawn_app_with(|config| config.admin_token = Some(String::new())).await;
    let refused = disabled
        .admin(Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "no token configured: closed");
    disabled.stop().await;
}

#[tokio::test]
async fn public_metrics_need_no_token() {
    let app = spawn_app_with(|config| config.metrics.public = true).await;
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    let samples = parse(&response.text().await.unwrap());
    assert!(value(&samples, "callbackd_store_size_bytes", &[]).is_some());
    app.stop().await;
}

#[tokio::test]
async fn cometd_clients_and_held_connects_are_shown() {
    let app = spawn_app().await;
    let cometd = |body: serde_json::Value| {
        app.request(Method::POST, "/genesys/cometd")
            .header("gms_user", GMS_USER)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let reply: serde_json::Value =
        cometd(json!([{"version":"1.0","channel":"/meta/handshake","id":"1"}]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let client_id = reply[0]["clientId"].as_str().expect("clientId").to_string();
    let connect = |id: &str| json!([{"channel":"/meta/connect","connectionType":"long-polling","id":id,"clientId":client_id}]);
    // The first connect is answered at once; the second is held.
    let first = cometd(connect("2")).await.unwrap();
    assert_eq!(first.status(), 200);
    let held = tokio::spawn(cometd(connect("3")));

    eventually(
        Duration::from_secs(10),
        "the connect to be held",
        || async {
            let samples = scrape(&app).await;
            (value(&samples, "callbackd_cometd_held_connects", &[]) == Some(1.0)
                && value(&samples, "callbackd_cometd_clients", &[]) == Some(1.0))
            .then_some(())
        },
    )
    .await;
    // Stopping answers the held connect.
    app.stop().await;
    let answered = held.await.unwrap().unwrap();
    assert_eq!(answered.status(), 200);
}

/// A receiver on a free port answering 200 to every POST to `/push`; returns its URL.
async fn accepting_receiver() -> String {
    use warp::Filter;
    let route = warp::path("push").and(warp::post()).map(warp::reply);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    format!("http://{addr}/push")
}

/// Sends an internal notification to service `id` (which pushes it to its device).
async fn notify(app: &TestApp, id: &str) {
    let response = app
        .post_form(
            &format!("/genesys/1/service/{id}/internal-notification"),
            Some(GMS_USER),
            &[
                ("_display_message", "hello"),
                ("_application_message", "APP"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "internal-notification");
}

#[tokio::test]
async fn httpcb_deliveries_retries_and_failures_are_counted() {
    // Arrange: one destination that answers, one port nobody listens on; two attempts each.
    let delivering = accepting_receiver().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/push", listener.local_addr().expect("address"))
    };
    let app = spawn_app_with(|config| {
        config.httpcb.attempts = 2;
        config.httpcb.timeout = Duration::from_secs(2);
        config.httpcb.backoff = Duration::from_millis(10);
        config.httpcb.allow = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await;
    for (number, url) in [("4082652649", &delivering), ("4082652650", &closed)] {
        let id = app
            .create(
                "chat-delay",
                &[
                    ("_customer_number", number),
                    ("_device_os", "httpcb"),
                    ("_device_notification_id", url),
                ],
            )
            .await;
        notify(&app, &id).await;
    }

    // Act and assert: one delivered; the other failed, was tried again, and failed again.
    eventually(Duration::from_secs(10), "the httpcb outcomes", || async {
        let samples = scrape(&app).await;
        let counted = |name: &str| value(&samples, name, &[]);
        (counted("callbackd_httpcb_deliveries_total") == Some(1.0)
            && counted("callbackd_httpcb_failures_total") == Some(2.0)
            && counted("callbackd_httpcb_retries_total") == Some(1.0))
        .then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_push_to_a_subscribed_cometd_client_is_counted() {
    // Arrange: a client of the seeds' user subscribed to /_genesys, and a comet service.
    let app = spawn_app().await;
    let cometd = |body: serde_json::Value| {
        app.request(Method::POST, "/genesys/cometd")
            .header("gms_user", GMS_USER)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let reply: serde_json::Value =
        cometd(json!([{"version":"1.0","channel":"/meta/handshake","id":"1"}]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let client_id = reply[0]["clientId"].as_str().expect("clientId").to_string();
    let subscribed: serde_json::Value = cometd(json!([{"channel":"/meta/subscribe",
        "subscription":"/_genesys","clientId":client_id,"id":"2"}]))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(subscribed[0]["successful"], true, "{subscribed}");
    let id = app
        .create(
            "chat-delay",
            &[("_customer_number", "4082652649"), ("_device_os", "comet")],
        )
        .await;
    let before = value(&scrape(&app).await, "callbackd_cometd_pushes_total", &[]).unwrap();

    // Act
    notify(&app, &id).await;

    // Assert
    eventually(
        Duration::from_secs(10),
        "the push to be counted",
        || async {
            let pushes = value(&scrape(&app).await, "callbackd_cometd_pushes_total", &[]);
            (pushes == Some(before + 1.0)).then_some(())
        },
    )
    .await;
    app.stop().await;
}

/// `at` in RFC 3339, as GMS's time fields take it.
fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A chat-delay service on the one step `Billing@StatServer.GA`, desired `ahead` from now.
async fn scheduled_on_billing(app: &TestApp, ahead: time::Duration) -> String {
    let desired = rfc3339(time::OffsetDateTime::now_utc() + ahead);
    app.create(
        "chat-delay",
        &[
            ("_customer_number", "4082652649"),
            ("_target", "Billing@StatServer.GA"),
            ("_desired_time", desired.as_str()),
        ],
    )
    .await
}

/// The events of service `id`'s routing history once the router has stored any.
async fn first_routing_events(app: &TestApp, id: &str) -> Vec<String> {
    eventually(Duration::from_secs(10), "the step entered", || async move {
        let history = crate::helpers::detail(app, id).await["routing_history"].clone();
        let events: Vec<String> = history
            .as_array()?
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_string())
            .collect();
        (!events.is_empty()).then_some(events)
    })
    .await
}

/// Service records written so far (`store_service_record_writes`).
async fn record_writes(app: &TestApp) -> Option<f64> {
    value(
        &scrape(app).await,
        "callbackd_store_service_record_writes_total",
        &[],
    )
}

#[tokio::test]
async fn a_create_routed_at_once_writes_its_record_once_and_its_reservation_once_more() {
    // Arrange: nobody is ready, so the router enters the one step of the service's target
    // (routing history) and the service waits there.
    let app = spawn_app().await;
    let id = app
        .create(
            "chat-delay",
            &[
                ("_customer_number", "4082652649"),
                ("_target", "Billing@StatServer.GA"),
            ],
        )
        .await;

    // Act: wait until the router has stored its step.
    let events = first_routing_events(&app, &id).await;

    // Assert: the create wrote its record; routing appended beside it.
    assert_eq!(events, ["entered"]);
    assert_eq!(
        record_writes(&app).await,
        Some(1.0),
        "the create's one write: the step entered is not a rewrite of the record"
    );

    // And a reservation is one more write, its `Reserved` event in the same unit of work.
    set_state(&app, "kristi", "ready").await;
    let reserved = wait_for_state(&app, &id, "ROUTING").await;
    let history = crate::helpers::detail(&app, &id).await["routing_history"].clone();
    let events: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["entered", "reserved"], "{reserved}");
    assert_eq!(record_writes(&app).await, Some(2.0), "create, then reserve");
}

#[tokio::test]
async fn a_scheduled_service_started_at_its_time_writes_its_record_once_for_the_start() {
    // Arrange: scheduled a second ahead; nobody is ready, so once started the router enters
    // the one step of its target and the service waits there.
    let app = spawn_app().await;
    let id = scheduled_on_billing(&app, time::Duration::seconds(1)).await;
    assert_eq!(
        crate::helpers::detail(&app, &id).await["_callback_state"],
        "SCHEDULED"
    );

    // Act: wait until its time has come and the router has stored its step.
    let events = first_routing_events(&app, &id).await;

    // Assert: the create, then the start; the step entered appended beside the record.
    assert_eq!(events, ["entered"]);
    assert_eq!(
        crate::helpers::detail(&app, &id).await["_callback_state"],
        "QUEUED"
    );
    assert_eq!(
        record_writes(&app).await,
        Some(2.0),
        "the create's write and the start's: the step entered is not a rewrite of the record"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_scheduled_service_rescheduled_to_now_writes_its_record_once_for_the_move() {
    // Arrange: scheduled an hour ahead; nobody is ready.
    let app = spawn_app().await;
    let id = scheduled_on_billing(&app, time::Duration::hours(1)).await;

    // Act: moved to now, it enters its queue.
    let moved = app
        .request(
            Method::PUT,
            &format!("/genesys/1/service/callback/chat-delay/{id}"),
        )
        .header("gms_user", crate::helpers::GMS_USER)
        .form(&[(
            "_new_desired_time",
            rfc3339(time::OffsetDateTime::now_utc()).as_str(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let events = first_routing_events(&app, &id).await;

    // Assert: the create's write and the move's; the step entered is appended beside them.
    assert_eq!(events, ["entered"]);
    assert_eq!(
        crate::helpers::detail(&app, &id).await["_callback_state"],
        "QUEUED"
    );
    assert_eq!(
        record_writes(&app).await,
        Some(2.0),
        "create, then the move"
    );
    app.stop().await;
}
