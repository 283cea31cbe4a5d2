//! `GET /genesys/1/agent/{agent}/history`: the agent's handled interactions.

use callbackd::clock::ManualClock;
use callbackd::domain::time::Timestamp;
use reqwest::Method;
use serde_json::json;

use super::events::agent_session;
use crate::chat::{agent_post, chat, confirmed_chat_delay};
use crate::helpers::{json, spawn_app_with_clock, wait_for_state};

#[tokio::test]
async fn history_lists_a_completed_chat_with_its_duration() {
    // Arrange: a chat with kristi that lasts 90 s by the server's clock.
    let clock = ManualClock::new(Timestamp::parse_iso("2030-01-01T09:00:00Z").unwrap());
    let app = spawn_app_with_clock(clock.clone()).await;
    let id = confirmed_chat_delay(&app).await;
    let (status, _) = chat(&app, &id, "", &[("firstName", "Vasya")]).await;
    assert_eq!(status, 200);
    wait_for_state(&app, &id, "PROCESSING").await;
    clock.advance_secs(90);
    let (status, _) = agent_post(&app, "kristi", &format!("chat/{id}/leave"), json!({})).await;
    assert_eq!(status, 200);
    wait_for_state(&app, &id, "COMPLETED").await;

    // Act
    let session = agent_session(&app, "kristi").await;
    let own = app
        .as_user(&session, Method::GET, "/genesys/1/agent/kristi/history")
        .send()
        .await
        .unwrap();
    let other = app
        .as_user(&session, Method::GET, "/genesys/1/agent/marco/history")
        .send()
        .await
        .unwrap();
    let later = app
        .admin(
            Method::GET,
            "/genesys/1/agent/kristi/history?since=2030-01-01T10:00:00Z",
        )
        .send()
        .await
        .unwrap();
    let bad = app
        .admin(
            Method::GET,
            "/genesys/1/agent/kristi/history?since=yesterday",
        )
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(own.status(), 200);
    let entries = json(own).await;
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    let entry = &entries[0];
    assert_eq!(entry["service_id"], id.as_str());
    assert_eq!(entry["service_name"], "chat-delay");
    assert_eq!(entry["media"], "chat");
    assert_eq!(entry["customer_number"], "5551234");
    assert_eq!(entry["outcome"], "AGENT_CONNECTED");
    assert_eq!(entry["started_at"], "2030-01-01T09:00:00.000Z");
    assert_eq!(entry["ended_at"], "2030-01-01T09:01:30.000Z");
    assert_eq!(entry["duration_secs"], 90);
    assert_eq!(other.status(), 403, "another agent's history");
    assert_eq!(json(later).await, json!([]), "nothing since 10:00");
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("since"));
}
