//! An agent's session may act only as its own agent on every desktop API route; the admin
//! bearer token keeps acting for every agent.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{demo_agents_file, spawn_app_with};

/// Every agent-scoped desktop route, with a body that would be judged if it were read.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/genesys/1/agent/{a}/state"),
    ("GET", "/genesys/1/agent/{a}/interactions"),
    ("POST", "/genesys/1/agent/{a}/interactions/s1/accept"),
    ("POST", "/genesys/1/agent/{a}/interactions/s1/outcome"),
    ("GET", "/genesys/1/agent/{a}/history"),
    ("GET", "/genesys/1/agent/{a}/chat/s1"),
    ("POST", "/genesys/1/agent/{a}/chat/s1/message"),
    ("POST", "/genesys/1/agent/{a}/chat/s1/typing"),
    ("POST", "/genesys/1/agent/{a}/chat/s1/push-url"),
    ("POST", "/genesys/1/agent/{a}/chat/s1/leave"),
];

#[tokio::test]
async fn an_agent_session_is_refused_for_another_agents_id_before_the_body() {
    // Arrange
    let app = spawn_app_with(|config| {
        config.agents_file = callbackd::config::SeedFile::File(demo_agents_file())
    })
    .await;
    app.add_user("kristi", "agent", Some("kristi"), "correct horse 1")
        .await;
    let session = app.sign_in("agent", "kristi", "correct horse 1").await;

    for (method, template) in ROUTES {
        // Act: a malformed body, which would be a 400 if it were read first.
        let path = template.replace("{a}", "someone_else");
        let response = app
            .as_user(&session, method.parse::<Method>().unwrap(), &path)
            .header("x-csrf-token", &session.csrf)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        // Assert
        assert_eq!(response.status(), 403, "{method} {path}");
    }
}

#[tokio::test]
async fn an_agent_session_sets_its_own_state_and_the_token_sets_anyones() {
    // Arrange
    let app = spawn_app_with(|config| {
        config.agents_file = callbackd::config::SeedFile::File(demo_agents_file())
    })
    .await;
    app.add_user("kristi", "agent", Some("kristi"), "correct horse 1")
        .await;
    let session = app.sign_in("agent", "kristi", "correct horse 1").await;

    // Act
    let own = app
        .as_user(&session, Method::POST, "/genesys/1/agent/kristi/state")
        .header("x-csrf-token", &session.csrf)
        .json(&json!({ "state": "ready" }))
        .send()
        .await
        .unwrap();
    let without_csrf = app
        .as_user(&session, Method::POST, "/genesys/1/agent/kristi/state")
        .json(&json!({ "state": "ready" }))
        .send()
        .await
        .unwrap();
    let own_list = app
        .as_user(
            &session,
            Method::GET,
            "/genesys/1/agent/kristi/interactions",
        )
        .send()
        .await
        .unwrap();
    let token = app
        .admin(Method::GET, "/genesys/1/agent/someone_else/interactions")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(
        own.status(),
        200,
        "own state: {}",
        own.text().await.unwrap()
    );
    assert_eq!(
        without_csrf.status(),
        403,
        "a change without the CSRF token"
    );
    assert_eq!(own_list.status(), 200, "own interactions");
    assert_ne!(token.status(), 401, "the admin token acts for every agent");
    assert_ne!(token.status(), 403, "the admin token acts for every agent");
}

#[tokio::test]
async fn a_not_ready_reason_code_is_stored_and_shown() {
    // Arrange
    let app = spawn_app_with(|config| {
        config.agents_file = callbackd::config::SeedFile::File(demo_agents_file())
    })
    .await;
    let post = |body: serde_json::Value| {
        app.admin(Method::POST, "/genesys/1/agent/kristi/state")
            .json(&body)
            .send()
    };

    // Act
    let set = post(json!({"state": "not_ready", "reason": " Lunch "}))
        .await
        .unwrap();
    let listed = app
        .admin(Method::GET, "/genesys/1/admin/agents")
        .send()
        .await
        .unwrap();
    let with_ready = post(json!({"state": "ready", "reason": "Lunch"}))
        .await
        .unwrap();
    let too_long = post(json!({"state": "not_ready", "reason": "x".repeat(65)}))
        .await
        .unwrap();
    let ready = post(json!({"state": "ready"})).await.unwrap();

    // Assert
    assert_eq!(set.status(), 200);
    assert_eq!(
        set.json::<serde_json::Value>().await.unwrap()["reason"],
        "Lunch"
    );
    let agents: serde_json::Value = listed.json().await.unwrap();
    let kristi = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "kristi")
        .unwrap();
    assert_eq!(kristi["reason"], "Lunch", "{kristi}");
    for (what, response) in [("with ready", with_ready), ("too long", too_long)] {
        assert_eq!(response.status(), 400, "{what}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("reason"),
            "{what}: {body}"
        );
    }
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["state"], "ready");
    assert_eq!(
        ready["reason"],
        serde_json::Value::Null,
        "Ready drops the code"
    );
}
