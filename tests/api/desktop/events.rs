//! `GET /agent/events`: the signed-in agent's snapshots, at connect and after each change.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{set_state, spawn_app, spawn_app_with, SignedIn, TestApp};

/// An open event stream and what has been read of it.
pub struct Events {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    /// Opens `/agent/events` with `session` (200 expected).
    pub async fn open(app: &TestApp, session: &SignedIn) -> Events {
        let response = app
            .as_user(session, Method::GET, "/agent/events")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Events {
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The data of the next `snapshot` that satisfies `wanted` (within 10 s).
    pub async fn next(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        self.next_of("snapshot", wanted).await
    }

    /// The data of the next event named `name` that satisfies `wanted` (within 10 s).
    pub async fn next_of(&mut self, name: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let named = event.lines().any(|l| {
                    l.strip_prefix("event:")
                        .is_some_and(|n| n.trim_start() == name)
                });
                if !named {
                    continue;
                }
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                let value: Value = serde_json::from_str(&data).expect("JSON data");
                if wanted(&value) {
                    return value;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("a `{name}` event within 10 s"))
                .expect("the stream is open")
                .expect("bytes");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Adds agent account `agent` (password `correct horse 1`) and signs it in at the desktop.
pub async fn agent_session(app: &TestApp, agent: &str) -> SignedIn {
    app.add_user(agent, "agent", Some(agent), "correct horse 1")
        .await;
    app.sign_in("agent", agent, "correct horse 1").await
}

#[tokio::test]
async fn the_stream_sends_a_snapshot_then_new_ones_after_a_state_change_and_a_reservation() {
    // Arrange
    let app = spawn_app().await;
    let session = agent_session(&app, "kristi").await;
    let mut events = Events::open(&app, &session).await;

    // Act / Assert: the first snapshot at once.
    let first = events.next(|_| true).await;
    assert_eq!(first["agent"]["id"], "kristi", "{first}");
    assert_eq!(first["agent"]["state"], "logged_out");
    assert_eq!(first["agent"]["capacity"]["chat"], 2);
    assert_eq!(first["agent"]["auto_answer"], true);
    assert!(first["agent"]["reason"].is_null());
    assert!(
        first["now"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );
    assert!(first["history_version"].is_u64());
    assert_eq!(first["keep_alive_ms"], 10_000, "the default ping interval");
    assert_eq!(first["interactions"], Value::Array(vec![]));

    set_state(&app, "kristi", "ready").await;
    let ready = events.next(|s| s["agent"]["state"] == "ready").await;
    assert!(ready["agent"]["since"].as_str().is_some(), "{ready}");

    let id = app
        .create("chat-delay", &[("_customer_number", "5551234")])
        .await;
    let reserved = events
        .next(|s| s["interactions"].as_array().is_some_and(|a| !a.is_empty()))
        .await;
    let interaction = &reserved["interactions"][0];
    assert_eq!(interaction["service_id"], id.as_str(), "{reserved}");
    assert_eq!(interaction["status"], "reserved");
    assert_eq!(interaction["customer_number"], "5551234");
    // The same JSON as the interactions list gives.
    let listed = crate::helpers::json(
        app.as_user(
            &session,
            Method::GET,
            "/genesys/1/agent/kristi/interactions",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(listed[0], *interaction);
}

#[tokio::test]
async fn the_stream_needs_a_desktop_session() {
    let app = spawn_app().await;
    let response = app
        .pages()
        .get(format!("{}/agent/events", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "not a redirect");
    let console = app
        .sign_in("admin", "admin", crate::helpers::ADMIN_TOKEN)
        .await;
    let response = app
        .as_user(&console, Method::GET, "/agent/events")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the console's cookie is not the desktop's"
    );
}

#[tokio::test]
async fn an_agents_stream_shows_only_that_agent() {
    // Arrange: marco has a reservation, kristi is not ready.
    let app = spawn_app().await;
    let kristi = agent_session(&app, "kristi").await;
    set_state(&app, "marco", "ready").await;
    app.create("chat-delay", &[("_customer_number", "5551234")])
        .await;
    let marco_events = agent_session(&app, "marco").await;
    let mut marco = Events::open(&app, &marco_events).await;
    marco
        .next(|s| s["interactions"].as_array().is_some_and(|a| !a.is_empty()))
        .await;

    // Act
    let mut events = Events::open(&app, &kristi).await;
    let first = events.next(|_| true).await;

    // Assert
    assert_eq!(first["agent"]["id"], "kristi");
    assert_eq!(first["interactions"], Value::Array(vec![]), "{first}");
}

#[tokio::test]
async fn while_nothing_changes_the_stream_sends_ping_events_a_page_can_see() {
    // Arrange: pings every 300 ms instead of 10 s.
    let app = spawn_app_with(|config| config.agents.keep_alive_ms = 300).await;
    let session = agent_session(&app, "kristi").await;
    let mut events = Events::open(&app, &session).await;
    let first = events.next(|_| true).await;
    assert_eq!(first["keep_alive_ms"], 300, "{first}");

    // Act: nothing changes.
    let ping = events.next_of("ping", |_| true).await;
    let after_first = tokio::time::Instant::now();
    let second = events.next_of("ping", |_| true).await;
    let gap = after_first.elapsed();

    // Assert: named events with the server's time, about one interval apart (not a busy
    // loop), and a change still comes as a snapshot.
    for ping in [&ping, &second] {
        assert!(
            ping["now"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{ping}"
        );
        assert!(
            ping.get("agent").is_none(),
            "a ping is not a snapshot: {ping}"
        );
    }
    assert!(gap >= Duration::from_millis(200), "pings {gap:?} apart");
    set_state(&app, "kristi", "ready").await;
    events.next(|s| s["agent"]["state"] == "ready").await;
}
