//! The live overview's event stream, its charts and the Health page, over HTTP.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;

use crate::helpers::{spawn_app, ADMIN_TOKEN};

/// Reads server-sent events until one `snapshot` whose data satisfies `wanted`; its data.
async fn next_snapshot(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if !event.contains("event:snapshot") && !event.contains("event: snapshot") {
                continue;
            }
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let value: serde_json::Value = serde_json::from_str(&data).expect("JSON snapshot");
            if wanted(&value) {
                return value;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("a snapshot within 10 s")
            .expect("the stream is open")
            .expect("bytes");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_event_stream_sends_a_snapshot_then_a_new_one_after_a_create() {
    let app = spawn_app().await;
    let session = app.sign_in("admin", "admin", ADMIN_TOKEN).await;
    let response = app
        .as_user(&session, Method::GET, "/admin/events")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let active = |s: &serde_json::Value| -> u64 {
        s["services"]["chat-delay"]
            .as_object()
            .map(|states| states.values().filter_map(|n| n.as_u64()).sum())
            .unwrap_or(0)
    };
    let first = next_snapshot(&mut stream, &mut buffer, |_| true).await;
    assert_eq!(active(&first), 0, "nothing stored yet: {first}");

    app.create("chat-delay", &[("_customer_number", "5551234")])
        .await;
    let next = next_snapshot(&mut stream, &mut buffer, |s| active(s) > 0).await;
    assert_eq!(active(&next), 1, "{next}");
}

#[tokio::test]
async fn the_event_stream_and_charts_need_a_session() {
    let app = spawn_app().await;
    for path in ["/admin/events", "/admin/charts/hourly.svg", "/admin/health"] {
        let response = app
            .pages()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{path}");
    }
}

#[tokio::test]
async fn the_charts_are_svg_drawn_with_their_labels() {
    let app = spawn_app().await;
    app.create("chat-delay", &[("_customer_number", "5551234")])
        .await;
    let session = app.sign_in("admin", "admin", ADMIN_TOKEN).await;
    for name in ["hourly", "reasons", "waits"] {
        let response = app
            .as_user(&session, Method::GET, &format!("/admin/charts/{name}.svg"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(
            response.headers()["content-type"],
            "image/svg+xml",
            "{name}"
        );
        let body = response.text().await.unwrap();
        assert!(
            body.starts_with("<svg") && body.contains("<text"),
            "{name}: {body:.200}"
        );
    }
}

#[tokio::test]
async fn the_health_page_shows_the_version_and_the_schema_version() {
    let app = spawn_app().await;
    let session = app.sign_in("admin", "admin", ADMIN_TOKEN).await;
    let response = app
        .as_user(&session, Method::GET, "/admin/health")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains(env!("CARGO_PKG_VERSION")), "{page}");
    let schema = if crate::helpers::on_postgres() {
        callbackd::store::postgres::latest_version()
    } else {
        callbackd::store::migrate::latest_version()
    }
    .to_string();
    assert!(
        page.contains(&format!("{schema} (this binary writes {schema})")),
        "schema {schema} in {page}"
    );
}
