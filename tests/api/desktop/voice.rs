//! Voice callbacks on the agent desktop: the callback reaches a Ready agent with voice
//! capacity with its media and the number to dial; the agent takes it and records the
//! outcome; no answer and busy come back after the service's `_dial_retry_timeout` (on the
//! injected clock) until `_max_dial_attempts`, then the callback fails with
//! `FAIL_CALL_TO_CUSTOMER`.

use std::time::Duration;

use callbackd::clock::ManualClock;
use callbackd::domain::time::Timestamp;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{
    detail, eventually, json, set_state, spawn_app_with_clock, TestApp, GMS_USER,
};

/// The redial delay of the test service, in seconds.
const RETRY_SECS: u64 = 30;

/// Time stands still here until a test moves it.
fn start() -> Timestamp {
    Timestamp::parse_iso("2030-01-01T08:00:00Z").unwrap()
}

/// A server with a voice callback service `voice-cb` (no customer confirmation, redial after
/// 30 s, at most 2 attempts) and a Ready agent `vera` with voice capacity, who does not answer
/// automatically.
async fn voice_center(clock: &ManualClock) -> TestApp {
    let app = spawn_app_with_clock(clock.clone()).await;
    let service = json!({"preset": "Chat-Delayed", "options": {
        "_media_type": "voice",
        "_wait_for_user_confirm": "false",
        "_target": "Dialers@StatServer.GA",
        "_dial_retry_timeout": RETRY_SECS.to_string(),
        "_max_dial_attempts": "2",
        "_urs_queued_ttl": "3600",
    }});
    let put = app
        .admin(Method::PUT, "/genesys/1/admin/services/voice-cb")
        .json(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "the voice service");
    let agent = json!({"name": "Vera Voice", "groups": ["Dialers"],
        "capacity": {"voice": 1}, "auto_answer": false});
    let put = app
        .admin(Method::PUT, "/genesys/1/admin/agents/vera")
        .json(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "the voice agent");
    set_state(&app, "vera", "ready").await;
    app
}

async fn interactions(app: &TestApp, agent: &str) -> Vec<Value> {
    let path = format!("/genesys/1/agent/{agent}/interactions");
    let list = json(app.admin(Method::GET, &path).send().await.unwrap()).await;
    list.as_array().expect("a list").clone()
}

/// Waits until `service` is among `agent`'s interactions; returns its view.
async fn arrives(app: &TestApp, agent: &str, service: &str) -> Value {
    eventually(
        Duration::from_secs(10),
        &format!("{service} to reach {agent}"),
        || async {
            interactions(app, agent)
                .await
                .into_iter()
                .find(|i| i["service_id"] == service)
        },
    )
    .await
}

async fn accept(app: &TestApp, agent: &str, service: &str) -> Response {
    let path = format!("/genesys/1/agent/{agent}/interactions/{service}/accept");
    app.admin(Method::POST, &path).send().await.unwrap()
}

async fn outcome(app: &TestApp, agent: &str, service: &str, outcome: &str) -> Response {
    let path = format!("/genesys/1/agent/{agent}/interactions/{service}/outcome");
    app.admin(Method::POST, &path)
        .form(&[("outcome", outcome)])
        .send()
        .await
        .unwrap()
}

/// The callback as its customer's GMS client queries it.
async fn as_customer_sees(app: &TestApp, service: &str) -> Value {
    let path = format!("/genesys/1/service/callback?_id={service}");
    json(app.get(&path, Some(GMS_USER)).await).await[0].clone()
}

/// Accepts `service` for vera and records `what`, expecting 200; returns the answer.
async fn dial(app: &TestApp, service: &str, what: &str) -> Value {
    assert_eq!(accept(app, "vera", service).await.status(), 200, "accept");
    let answer = outcome(app, "vera", service, what).await;
    assert_eq!(answer.status(), 200, "outcome {what}");
    json(answer).await
}

#[tokio::test]
async fn a_voice_callback_reaches_the_agent_with_its_media_and_number_and_waits_for_accept() {
    // Arrange
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    let id = app
        .create(
            "voice-cb",
            &[("_customer_number", "5551234"), ("topic", "loan")],
        )
        .await;

    // Act
    let offered = arrives(&app, "vera", &id).await;
    let early = outcome(&app, "vera", &id, "connected").await;
    let accepted = accept(&app, "vera", &id).await;
    let taken = arrives(&app, "vera", &id).await;

    // Assert
    assert_eq!(offered["media"], "voice", "{offered}");
    assert_eq!(offered["dial"]["number"], "5551234", "{offered}");
    assert_eq!(offered["dial"]["attempts"], 0, "{offered}");
    assert_eq!(offered["customer_number"], "5551234");
    assert_eq!(offered["user_data"]["topic"], "loan");
    assert_eq!(offered["status"], "invited", "waits for Accept: {offered}");
    assert_eq!(offered["callback_state"], "ROUTING");
    assert_eq!(early.status(), 400, "an outcome before Accept");
    assert!(json(early).await["message"]
        .as_str()
        .unwrap()
        .contains("accept"));
    assert_eq!(accepted.status(), 200);
    assert_eq!(taken["status"], "active", "{taken}");
    assert_eq!(taken["callback_state"], "PROCESSING");
    assert_eq!(
        as_customer_sees(&app, &id).await["_callback_state"],
        "PROCESSING"
    );
}

#[tokio::test]
async fn no_answer_comes_back_after_the_redial_delay_until_the_attempt_limit() {
    // Arrange
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    let id = app
        .create("voice-cb", &[("_customer_number", "5551234")])
        .await;
    arrives(&app, "vera", &id).await;

    // Act: no answer on the first attempt.
    let first = dial(&app, &id, "no_answer").await;
    let waiting = as_customer_sees(&app, &id).await;
    let freed = interactions(&app, "vera").await;
    clock.advance_secs(RETRY_SECS - 1);
    let early: Vec<Value> = interactions(&app, "vera").await;
    let still = as_customer_sees(&app, &id).await;
    clock.advance_secs(1);
    let again = arrives(&app, "vera", &id).await;
    // Busy on the second and last attempt.
    let last = dial(&app, &id, "busy").await;
    let done = as_customer_sees(&app, &id).await;
    let record = detail(&app, &id).await;

    // Assert
    let redial_at = "2030-01-01T08:00:30.000Z";
    assert_eq!(
        first,
        json!({"outcome": "no_answer", "callback_state": "SCHEDULED", "reason": null,
               "attempts": 1, "redial_at": redial_at})
    );
    assert_eq!(waiting["_callback_state"], "SCHEDULED", "{waiting}");
    assert_eq!(waiting["_desired_time"], redial_at, "{waiting}");
    assert!(freed.is_empty(), "the agent is released: {freed:?}");
    assert!(early.is_empty(), "not before the delay: {early:?}");
    assert_eq!(still["_callback_state"], "SCHEDULED");
    assert_eq!(again["status"], "invited", "{again}");
    assert_eq!(again["dial"]["attempts"], 1, "{again}");
    assert_eq!(
        last,
        json!({"outcome": "busy", "callback_state": "COMPLETED",
               "reason": "FAIL_CALL_TO_CUSTOMER", "attempts": 2, "redial_at": null})
    );
    assert_eq!(done["_callback_state"], "COMPLETED");
    assert_eq!(done["_callback_reason"], "FAIL_CALL_TO_CUSTOMER");
    let dialed: Vec<&Value> = record["routing_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "dialed")
        .collect();
    assert_eq!(
        dialed.len(),
        2,
        "two attempts in the routing history: {record}"
    );
    assert_eq!(dialed[0]["detail"], "vera: no_answer");
    assert_eq!(dialed[1]["detail"], "vera: busy");
    let states: Vec<&str> = record["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "QUEUED",
            "ROUTING",
            "PROCESSING",
            "SCHEDULED",
            "QUEUED",
            "ROUTING",
            "PROCESSING",
            "COMPLETED"
        ],
        "{record}"
    );
    assert!(
        interactions(&app, "vera").await.is_empty(),
        "released at the end"
    );
}

#[tokio::test]
async fn connected_completes_agent_connected_and_the_agent_takes_the_next_callback() {
    // Arrange: two callbacks for one agent with one voice line.
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    let first = app
        .create("voice-cb", &[("_customer_number", "5550001")])
        .await;
    let second = app
        .create("voice-cb", &[("_customer_number", "5550002")])
        .await;
    arrives(&app, "vera", &first).await;

    // Act
    let answer = dial(&app, &first, "connected").await;
    let next = arrives(&app, "vera", &second).await;

    // Assert
    assert_eq!(
        answer,
        json!({"outcome": "connected", "callback_state": "COMPLETED",
               "reason": "AGENT_CONNECTED", "attempts": 1, "redial_at": null})
    );
    let seen = as_customer_sees(&app, &first).await;
    assert_eq!(seen["_callback_reason"], "AGENT_CONNECTED");
    assert_eq!(next["dial"]["number"], "5550002");
}

#[tokio::test]
async fn wrong_number_completes_at_once_as_a_failed_call_to_the_customer() {
    // Arrange
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    let id = app
        .create("voice-cb", &[("_customer_number", "5550003")])
        .await;
    arrives(&app, "vera", &id).await;

    // Act: JSON bodies are read as well as forms.
    assert_eq!(accept(&app, "vera", &id).await.status(), 200);
    let answer = app
        .admin(
            Method::POST,
            &format!("/genesys/1/agent/vera/interactions/{id}/outcome"),
        )
        .json(&json!({"outcome": "wrong_number"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(answer.status(), 200);
    assert_eq!(
        json(answer).await,
        json!({"outcome": "wrong_number", "callback_state": "COMPLETED",
               "reason": "FAIL_CALL_TO_CUSTOMER", "attempts": 1, "redial_at": null})
    );
    assert_eq!(
        as_customer_sees(&app, &id).await["_callback_state"],
        "COMPLETED"
    );
    assert!(
        interactions(&app, "vera").await.is_empty(),
        "the agent is released"
    );
}

#[tokio::test]
async fn bad_outcomes_unknown_services_and_chats_are_refused() {
    // Arrange: a voice callback taken by vera, and a chat of the demo's chat-delay service.
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    let id = app
        .create("voice-cb", &[("_customer_number", "5550004")])
        .await;
    arrives(&app, "vera", &id).await;
    assert_eq!(accept(&app, "vera", &id).await.status(), 200);
    let chat = app
        .create("chat-delay", &[("_customer_number", "5550005")])
        .await;

    // Act
    let unknown_value = outcome(&app, "vera", &id, "hung_up").await;
    let missing = app
        .admin(
            Method::POST,
            &format!("/genesys/1/agent/vera/interactions/{id}/outcome"),
        )
        .send()
        .await
        .unwrap();
    let unknown_service = outcome(&app, "vera", "no-such-service", "busy").await;
    let not_voice = outcome(&app, "vera", &chat, "busy").await;
    let not_hers = outcome(&app, "kristi", &id, "busy").await;

    // Assert
    for (what, response) in [("unknown value", unknown_value), ("missing", missing)] {
        assert_eq!(response.status(), 400, "{what}");
        let body = json(response).await;
        assert!(
            body["message"].as_str().unwrap().contains("outcome"),
            "{what}: {body}"
        );
    }
    assert_eq!(unknown_service.status(), 404);
    assert_eq!(not_voice.status(), 400, "a chat has no dial outcome");
    assert_eq!(not_hers.status(), 400, "not kristi's interaction");
    let still = as_customer_sees(&app, &id).await;
    assert_eq!(
        still["_callback_state"], "PROCESSING",
        "nothing recorded: {still}"
    );
}

#[tokio::test]
async fn an_agent_session_records_its_own_outcomes_and_is_refused_for_another_agent() {
    // Arrange
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    app.add_user("vera", "agent", Some("vera"), "correct horse 2")
        .await;
    app.add_user("kristi", "agent", Some("kristi"), "correct horse 1")
        .await;
    let vera = app.sign_in("agent", "vera", "correct horse 2").await;
    let kristi = app.sign_in("agent", "kristi", "correct horse 1").await;
    let id = app
        .create("voice-cb", &[("_customer_number", "5550006")])
        .await;
    arrives(&app, "vera", &id).await;
    assert_eq!(accept(&app, "vera", &id).await.status(), 200);
    let path = format!("/genesys/1/agent/vera/interactions/{id}/outcome");

    // Act: kristi's session, with a body that would be a 400 if it were read.
    let other = app
        .as_user(&kristi, Method::POST, &path)
        .header("x-csrf-token", &kristi.csrf)
        .form(&[("outcome", "hung_up")])
        .send()
        .await
        .unwrap();
    let own = app
        .as_user(&vera, Method::POST, &path)
        .header("x-csrf-token", &vera.csrf)
        .form(&[("outcome", "connected")])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(other.status(), 403, "another agent's session");
    assert_eq!(own.status(), 200, "her own session");
    assert_eq!(json(own).await["reason"], "AGENT_CONNECTED");
}

/// Puts `agent` (voice capacity, in Dialers) with `auto_answer`.
async fn put_agent(app: &TestApp, agent: &str, auto_answer: bool) {
    let body = json!({"name": agent, "groups": ["Dialers"], "capacity": {"voice": 1},
        "auto_answer": auto_answer});
    let path = format!("/genesys/1/admin/agents/{agent}");
    let put = app
        .admin(Method::PUT, &path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "agent {agent}");
}

#[tokio::test]
async fn an_auto_answer_agent_takes_a_voice_callback_at_once() {
    // Arrange: vera answers automatically.
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    put_agent(&app, "vera", true).await;
    let id = app
        .create("voice-cb", &[("_customer_number", "5550007")])
        .await;

    // Act
    let taken = eventually(Duration::from_secs(10), "the callback taken", || async {
        interactions(&app, "vera")
            .await
            .into_iter()
            .find(|i| i["service_id"] == id.as_str() && i["status"] == "active")
    })
    .await;
    let answer = outcome(&app, "vera", &id, "connected").await;

    // Assert
    assert_eq!(taken["callback_state"], "PROCESSING", "{taken}");
    assert_eq!(
        as_customer_sees(&app, &id).await["_callback_state"],
        "COMPLETED"
    );
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn the_interaction_says_how_long_the_customer_waited_and_which_step_found_the_agent() {
    // Arrange: step 1 (nobody) is skipped while no agent of its group is ready; vera is Not
    // Ready while the customer waits 42 s on the injected clock.
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    let targets = json!([
        {"target": "Nobody@StatServer.GA", "timeout": "30", "clear": true,
         "stat_to_check": "RStatAgentsReady", "stat_operator": "<", "stat_value": "1"},
        {"target": "Dialers@StatServer.GA"}
    ])
    .to_string();
    let service = json!({"preset": "Chat-Delayed", "options": {
        "_media_type": "voice", "_wait_for_user_confirm": "false",
        "_target": targets, "_urs_queued_ttl": "3600"}});
    let put = app
        .admin(Method::PUT, "/genesys/1/admin/services/voice-steps")
        .json(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());
    set_state(&app, "vera", "not_ready").await;
    let id = app
        .create("voice-steps", &[("_customer_number", "5550008")])
        .await;

    // Act
    clock.advance_secs(42);
    set_state(&app, "vera", "ready").await;
    let offered = arrives(&app, "vera", &id).await;

    // Assert
    assert_eq!(offered["waited_secs"], 42, "{offered}");
    assert_eq!(
        offered["routing_step"],
        json!({"step": 2, "target": "Dialers@StatServer.GA"}),
        "{offered}"
    );
}

#[tokio::test]
async fn the_history_of_a_no_answer_says_the_outcome_and_the_attempt() {
    // Arrange
    let clock = ManualClock::new(start());
    let app = voice_center(&clock).await;
    let id = app
        .create("voice-cb", &[("_customer_number", "5550009")])
        .await;
    arrives(&app, "vera", &id).await;
    dial(&app, &id, "no_answer").await;

    // Act
    let history = json(
        app.admin(
            Method::GET,
            "/genesys/1/agent/vera/history?since=2030-01-01T00:00:00Z",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;

    // Assert
    let row = &history[0];
    assert_eq!(row["service_id"], id.as_str(), "{history}");
    assert_eq!(row["outcome"], "NO_ANSWER", "not SCHEDULED: {row}");
    assert_eq!(
        row["dial"],
        json!({"outcome": "no_answer", "attempt": 1, "max_attempts": 2,
               "redial_at": "2030-01-01T08:00:30.000Z"}),
        "{row}"
    );
}
