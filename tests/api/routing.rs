//! Routing end to end: agents become ready, services are reserved, customers are told and
//! confirm, and timeouts (1 s here) end what nobody answers.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{eventually, json, spawn_app, TestApp, GMS_USER};

async fn set_state(app: &TestApp, agent: &str, state: &str) {
    let response = app
        .admin(Method::POST, &format!("/genesys/1/agent/{agent}/state"))
        .json(&json!({ "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{agent} -> {state}");
}

async fn detail(app: &TestApp, id: &str) -> Value {
    let response = app
        .admin(Method::GET, &format!("/genesys/1/admin/callback/{id}"))
        .send()
        .await
        .unwrap();
    json(response).await
}

/// Waits until the service is in `state`; returns its admin detail.
async fn wait_for_state(app: &TestApp, id: &str, state: &str) -> Value {
    eventually(
        Duration::from_secs(10),
        &format!("{id} to be {state}"),
        || async {
            let record = detail(app, id).await;
            (record["_callback_state"] == state).then_some(record)
        },
    )
    .await
}

/// A Chat-Delayed service for the Billing group with the given extra options.
async fn configure(app: &TestApp, name: &str, options: Value) {
    let mut all = json!({"_target": "Billing@StatServer.GA", "_overwritable_options": "_target"});
    all.as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    let response = app
        .admin(Method::PUT, &format!("/genesys/1/admin/services/{name}"))
        .json(&json!({"preset": "Chat-Delayed", "options": all}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "configure {name}");
}

#[tokio::test]
async fn a_ready_agent_is_reserved_and_the_customer_is_told_and_connects() {
    let app = spawn_app().await;
    set_state(&app, "kristi", "ready").await;

    let id = app
        .create("chat-delay", &[("_customer_number", "4082652649")])
        .await;

    let record = wait_for_state(&app, &id, "ROUTING").await;
    assert_eq!(record["_reserved_agent"], "kristi");
    let events: Vec<&str> = record["routing_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"entered"), "{record}");
    assert_eq!(events.last(), Some(&"reserved"), "{record}");

    let path = format!("/genesys/1/service/{id}/retrieve-notifications");
    let first = json(app.post_form(&path, Some(GMS_USER), &[]).await).await;
    let again = json(app.post_form(&path, Some(GMS_USER), &[]).await).await;
    assert_eq!(
        first,
        json!([{"_action": "get-dialog-user-confirmation-provide_code-false", "_id": id}])
    );
    assert_eq!(again, json!([]), "delivered once");

    let status = json(
        app.post_form(
            &format!("/genesys/1/service/{id}/status"),
            Some(GMS_USER),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(status["message"]["_status"], "available");
    assert_eq!(
        status["tag"],
        format!("a2c.advanced.service.agentavailable.{id}")
    );
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
    assert!(detail(&app, &id).await["_callback_state"] == "ROUTING");
}

#[tokio::test]
async fn an_unconfirmed_reservation_is_released_and_the_agent_serves_the_next() {
    let app = spawn_app().await;
    configure(&app, "quick-confirm", json!({"_user_confirm_timeout": "1"})).await;
    set_state(&app, "kristi", "ready").await;

    let first = app
        .create("quick-confirm", &[("_customer_number", "1")])
        .await;
    wait_for_state(&app, &first, "ROUTING").await;
    let second = app
        .create("quick-confirm", &[("_customer_number", "2")])
        .await;

    let released = wait_for_state(&app, &first, "COMPLETED").await;
    assert_eq!(released["_callback_reason"], "FAIL_USER_NO_CONFIRM");
    let next = wait_for_state(&app, &second, "ROUTING").await;
    assert_eq!(
        next["_reserved_agent"], "kristi",
        "the freed agent takes the next"
    );
}

#[tokio::test]
async fn a_confirmed_reservation_is_not_released() {
    let app = spawn_app().await;
    configure(&app, "quick-confirm", json!({"_user_confirm_timeout": "1"})).await;
    set_state(&app, "kristi", "ready").await;
    let id = app
        .create("quick-confirm", &[("_customer_number", "1")])
        .await;
    wait_for_state(&app, &id, "ROUTING").await;

    let connect = app
        .post_form(
            &format!("/genesys/1/service/{id}/connect"),
            Some(GMS_USER),
            &[],
        )
        .await;
    assert_eq!(connect.status(), 200);
    let waiting = app
        .create("quick-confirm", &[("_customer_number", "2")])
        .await;
    // Proving that nothing happens at the 1 s deadline needs the deadline to pass: no poll
    // can wait for an absence.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    assert_eq!(detail(&app, &id).await["_callback_state"], "ROUTING");
    assert_eq!(
        detail(&app, &waiting).await["_callback_state"],
        "QUEUED",
        "the agent is still taken"
    );
}

#[tokio::test]
async fn nobody_ready_within_the_queue_ttl_ends_in_fail_timeout_ttl() {
    let app = spawn_app().await;
    configure(&app, "short-queue", json!({"_urs_queued_ttl": "1"})).await;

    let id = app
        .create("short-queue", &[("_customer_number", "1")])
        .await;

    let record = wait_for_state(&app, &id, "COMPLETED").await;
    assert_eq!(record["_callback_reason"], "FAIL_TIMEOUT_TTL");
    let notes = json(
        app.post_form(
            &format!("/genesys/1/service/{id}/retrieve-notifications"),
            Some(GMS_USER),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(notes[0]["_callback_reason"], "FAIL_TIMEOUT_TTL", "{notes}");
}

#[tokio::test]
async fn cancelling_a_reserved_service_frees_its_agent_for_the_next() {
    let app = spawn_app().await;
    set_state(&app, "kristi", "ready").await;
    let first = app.create("chat-delay", &[("_customer_number", "1")]).await;
    wait_for_state(&app, &first, "ROUTING").await;
    let second = app.create("chat-delay", &[("_customer_number", "2")]).await;

    let cancel = app
        .request(
            Method::DELETE,
            &format!("/genesys/1/service/callback/chat-delay/{first}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();

    assert_eq!(cancel.status(), 200);
    let next = wait_for_state(&app, &second, "ROUTING").await;
    assert_eq!(next["_reserved_agent"], "kristi");
}
