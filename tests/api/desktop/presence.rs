//! Logging out agents who left the desktop: after the grace period following their last tab,
//! and when they sign out. Time is the server's `ManualClock`.

use std::time::Duration;

use callbackd::clock::ManualClock;
use callbackd::domain::time::Timestamp;
use reqwest::Method;

use super::events::{agent_session, Events};
use crate::helpers::{
    eventually, json, set_state, spawn_app_with_clock_and, wait_for_state, TestApp,
};

const GRACE_SECS: u64 = 5;

async fn app_with_clock() -> (TestApp, ManualClock) {
    let clock = ManualClock::new(Timestamp::parse_iso("2030-01-01T00:00:00Z").unwrap());
    let app = spawn_app_with_clock_and(clock.clone(), |config| {
        config.agents.logout_after_disconnect_secs = GRACE_SECS;
    })
    .await;
    (app, clock)
}

async fn agent_state(app: &TestApp, agent: &str) -> String {
    let agents = json(
        app.admin(Method::GET, "/genesys/1/admin/agents")
            .send()
            .await
            .unwrap(),
    )
    .await;
    agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent)
        .map(|a| a["state"].as_str().unwrap().to_string())
        .unwrap()
}

/// Moves the clock a second at a time until `agent` is logged out: the grace period starts
/// only once the server noticed the tab closed.
async fn wait_for_logout(app: &TestApp, clock: &ManualClock, agent: &str) {
    eventually(
        Duration::from_secs(20),
        &format!("{agent} logged out"),
        || async {
            clock.advance_secs(1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            (agent_state(app, agent).await == "logged_out").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn closing_the_last_tab_logs_the_agent_out_after_the_grace_and_requeues_its_reservation() {
    // Arrange: kristi, signed in with a tab open, holds a reservation.
    let (app, clock) = app_with_clock().await;
    let session = agent_session(&app, "kristi").await;
    let mut events = Events::open(&app, &session).await;
    events.next(|_| true).await;
    set_state(&app, "kristi", "ready").await;
    let id = app
        .create("chat-delay", &[("_customer_number", "5551234")])
        .await;
    let reserved = wait_for_state(&app, &id, "ROUTING").await;
    assert_eq!(reserved["_reserved_agent"], "kristi");

    // Act: the tab closes.
    drop(events);
    clock.advance_secs(GRACE_SECS - 1);
    assert_eq!(
        agent_state(&app, "kristi").await,
        "ready",
        "within the grace"
    );
    wait_for_logout(&app, &clock, "kristi").await;

    // Assert: the reservation went back to the queue.
    let record = wait_for_state(&app, &id, "QUEUED").await;
    assert!(record["_reserved_agent"].is_null(), "{record}");
}

#[tokio::test]
async fn a_tab_reconnecting_within_the_grace_keeps_the_agent_logged_in() {
    // Arrange: kristi and marco both have a tab open and are ready.
    let (app, clock) = app_with_clock().await;
    let kristi = agent_session(&app, "kristi").await;
    let marco = agent_session(&app, "marco").await;
    let mut kristi_tab = Events::open(&app, &kristi).await;
    kristi_tab.next(|_| true).await;
    let mut marco_tab = Events::open(&app, &marco).await;
    marco_tab.next(|_| true).await;
    set_state(&app, "kristi", "ready").await;
    set_state(&app, "marco", "ready").await;

    // Act: both tabs close; only kristi's comes back within the grace.
    drop(kristi_tab);
    drop(marco_tab);
    let mut again = Events::open(&app, &kristi).await;
    again.next(|_| true).await;
    // marco's logout proves a sweep ran after the grace had passed for both.
    wait_for_logout(&app, &clock, "marco").await;

    // Assert
    assert_eq!(agent_state(&app, "kristi").await, "ready");
}

#[tokio::test]
async fn signing_out_of_the_desktop_logs_the_agent_out_and_the_token_alone_does_not() {
    // Arrange
    let (app, _clock) = app_with_clock().await;
    let session = agent_session(&app, "kristi").await;
    set_state(&app, "kristi", "ready").await;
    set_state(&app, "marco", "ready").await;

    // Act
    let response = app
        .as_user(&session, Method::POST, "/agent/logout")
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 303);
    assert_eq!(agent_state(&app, "kristi").await, "logged_out");
    assert_eq!(
        agent_state(&app, "marco").await,
        "ready",
        "driven by the token only"
    );
}
