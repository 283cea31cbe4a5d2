//! The agents of the embedded contact center: admin configuration and agent state.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{demo_agents_file, json, spawn_app, spawn_app_with, TestApp};

async fn agents(app: &TestApp) -> Vec<Value> {
    let response = app
        .admin(Method::GET, "/genesys/1/admin/agents")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json(response).await.as_array().unwrap().clone()
}

async fn set_state(app: &TestApp, id: &str, state: &str) -> reqwest::Response {
    app.admin(Method::POST, &format!("/genesys/1/agent/{id}/state"))
        .json(&json!({ "state": state }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_demo_contact_center_is_there_on_first_start() {
    let app = spawn_app_with(|config| {
        config.agents_file = callbackd::config::SeedFile::File(demo_agents_file())
    })
    .await;

    let list = agents(&app).await;

    let kristi = list.iter().find(|a| a["id"] == "kristi").expect("kristi");
    assert_eq!(kristi["name"], "Kristi Sippola");
    assert_eq!(kristi["groups"], json!(["Billing"]));
    assert_eq!(kristi["skills"], json!({"English": 20, "Loans": 2}));
    assert_eq!(kristi["capacity"], json!({"chat": 2, "voice": 1}));
    assert_eq!(
        kristi["state"], "ready",
        "the demo starts with ready agents"
    );
    assert!(list.iter().any(|a| a["state"] == "not_ready"));
}

#[tokio::test]
async fn a_new_agent_is_logged_out_and_a_replaced_one_keeps_its_state() {
    let app = spawn_app().await;
    let body = json!({
        "name": "Zoe", "groups": ["Billing"], "place": "p9",
        "skills": {"English": 7}, "capacity": {"chat": 2}, "auto_answer": true
    });

    let created = app
        .admin(Method::PUT, "/genesys/1/admin/agents/zoe")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(json(created).await["state"], "logged_out");
    assert_eq!(set_state(&app, "zoe", "ready").await.status(), 200);
    let replaced = app
        .admin(Method::PUT, "/genesys/1/admin/agents/zoe")
        .json(&json!({"name": "Zoe Q", "capacity": {"chat": 3}}))
        .send()
        .await
        .unwrap();

    assert_eq!(replaced.status(), 200);
    let replaced = json(replaced).await;
    assert_eq!(replaced["state"], "ready", "state kept");
    assert_eq!(replaced["name"], "Zoe Q");
    assert_eq!(replaced["capacity"], json!({"chat": 3}));
    let listed = agents(&app).await;
    assert_eq!(listed.iter().filter(|a| a["id"] == "zoe").count(), 1);
}

#[tokio::test]
async fn agent_state_changes_are_stored_and_bad_ones_named() {
    let app = spawn_app().await;

    let ok = set_state(&app, "jonas", "ready").await;
    let bad = set_state(&app, "jonas", "lunch").await;
    let unknown = set_state(&app, "nobody", "ready").await;

    assert_eq!(ok.status(), 200);
    assert_eq!(json(ok).await["state"], "ready");
    let jonas = agents(&app)
        .await
        .into_iter()
        .find(|a| a["id"] == "jonas")
        .unwrap();
    assert_eq!(jonas["state"], "ready", "listed with the new state");
    assert_eq!(bad.status(), 400);
    assert!(json(bad).await["message"]
        .as_str()
        .unwrap()
        .contains("state"));
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn bad_agent_configurations_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        ("bad id", "a%20b", json!({"name": "x"}), "id"),
        ("empty name", "x1", json!({"name": " "}), "name"),
        (
            "uppercase media",
            "x2",
            json!({"name": "x", "capacity": {"Chat": 1}}),
            "capacity.Chat",
        ),
        (
            "huge capacity",
            "x3",
            json!({"name": "x", "capacity": {"chat": 1000}}),
            "capacity.chat",
        ),
        (
            "unknown key",
            "x4",
            json!({"name": "x", "level": 3}),
            "level",
        ),
        (
            "capacity not a number",
            "x5",
            json!({"name": "x", "capacity": {"chat": "two"}}),
            "capacity",
        ),
    ];
    for (what, id, body, needle) in cases {
        let response = app
            .admin(Method::PUT, &format!("/genesys/1/admin/agents/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{what}");
        let message = json(response).await["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(needle), "{what}: {message}");
    }
}

#[tokio::test]
async fn agents_can_be_deleted_and_the_api_needs_the_token() {
    let app = spawn_app().await;

    let deleted = app
        .admin(Method::DELETE, "/genesys/1/admin/agents/jonas")
        .send()
        .await
        .unwrap();
    let again = app
        .admin(Method::DELETE, "/genesys/1/admin/agents/jonas")
        .send()
        .await
        .unwrap();
    let anonymous_list = app
        .request(Method::GET, "/genesys/1/admin/agents")
        .send()
        .await
        .unwrap();
    let anonymous_state = app
        .request(Method::POST, "/genesys/1/agent/kristi/state")
        .json(&json!({"state": "logged_out"}))
        .send()
        .await
        .unwrap();

    assert_eq!(deleted.status(), 200);
    assert_eq!(again.status(), 404);
    assert!(!agents(&app).await.iter().any(|a| a["id"] == "jonas"));
    assert_eq!(anonymous_list.status(), 401);
    assert_eq!(anonymous_state.status(), 401);
}
