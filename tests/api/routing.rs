//! Routing end to end: agents become ready, services are reserved, customers are told and
//! confirm, and timeouts (1 s here) end what nobody answers.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{detail, json, set_state, spawn_app, wait_for_state, TestApp, GMS_USER};

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
    let agents = json(
        app.admin(Method::GET, "/genesys/1/admin/agents")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let kristi = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "kristi")
        .unwrap();
    assert_eq!(kristi["reserved"], json!([id]), "live state: {kristi}");
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

async fn queue_position(app: &TestApp, id: &str, method: Method) -> Value {
    let mut request = app
        .request(
            method,
            &format!("/genesys/1/service/{id}/check-queue-position"),
        )
        .header("gms_user", GMS_USER);
    if request.try_clone().is_some() {
        request = request.header("content-length", "0");
    }
    json(request.send().await.unwrap()).await
}

#[tokio::test]
async fn check_queue_position_follows_the_queue_and_estimates_once_agents_leave() {
    let app = spawn_app().await;
    let a = app.create("chat-delay", &[("_customer_number", "1")]).await;
    let b = app.create("chat-delay", &[("_customer_number", "2")]).await;
    let c = app.create("chat-delay", &[("_customer_number", "3")]).await;

    let third = queue_position(&app, &c, Method::POST).await;
    assert_eq!(
        third,
        json!({
            "_position": 3, "_eta": "n/a", "_total_waiting": 3,
            "_agent_ready_threshold_passed": true,
            "_agent_ready_threshold_passed_reason": "eta n/a"
        })
    );
    assert_eq!(
        queue_position(&app, &a, Method::GET).await["_position"],
        1,
        "GET too"
    );

    // Two departures give the router a rate to estimate from.
    set_state(&app, "kristi", "ready").await;
    wait_for_state(&app, &a, "ROUTING").await;
    set_state(&app, "marco", "ready").await;
    wait_for_state(&app, &b, "ROUTING").await;

    let last = queue_position(&app, &c, Method::POST).await;
    assert_eq!(last["_position"], 1);
    assert_eq!(last["_total_waiting"], 1);
    assert!(
        last["_eta"].is_u64(),
        "a number once departures were seen: {last}"
    );
    assert_eq!(last["_agent_ready_threshold_passed"], true);
    assert_eq!(
        last["_agent_ready_threshold_passed_reason"],
        "eta  <= 35 and position <=5 "
    );
    let reserved = queue_position(&app, &a, Method::POST).await;
    assert_eq!(reserved["_position"], 0);
    assert_eq!(
        reserved["_agent_ready_threshold_passed_reason"],
        "agent available"
    );
}

#[tokio::test]
async fn statistics_and_queues_reflect_agents_and_waiting_services() {
    let app = spawn_app().await;
    let stats = |target: &'static str| {
        let app = &app;
        async move {
            let response = app
                .admin(Method::GET, "/genesys/1/admin/stats")
                .query(&[("target", target)])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), json(response).await)
        }
    };
    // A target nobody serves keeps its service waiting.
    app.create(
        "chat-delay",
        &[
            ("_customer_number", "1"),
            ("_target", "Nobody@StatServer.GA"),
        ],
    )
    .await;
    set_state(&app, "kristi", "ready").await;
    set_state(&app, "jonas", "not_ready").await;

    let (status, billing) = stats("Billing@StatServer.GA").await;
    let (_, nobody) = stats("Nobody@StatServer.GA").await;
    let (_, english) = stats("?:English>=15@StatServer.GA").await;
    let (bad, _) = stats("Billing@Elsewhere.GA").await;
    let (garbage, message) = stats("Billing").await;

    assert_eq!(status, 200);
    assert_eq!(billing["RStatAgentsReady"], 1, "{billing}");
    assert_eq!(billing["RStatAgentsReadychat"], 1);
    assert_eq!(billing["RStatAgentsReadyvoice"], 1);
    assert_eq!(billing["RStatAgentsTotal"], 1);
    assert_eq!(nobody["StatCallsWaiting"], 1, "{nobody}");
    assert_eq!(
        english["RStatAgentsTotal"], 1,
        "kristi (20); jonas (5) does not match"
    );
    assert_eq!(bad, 400);
    assert_eq!(garbage, 400);
    assert!(message["message"].as_str().unwrap().contains("target"));

    let queues = json(
        app.admin(Method::GET, "/genesys/1/admin/queues")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let billing_vq = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "billing_vq")
        .expect("billing_vq listed");
    assert_eq!(billing_vq["waiting"], 1, "{queues}");
}

#[tokio::test]
async fn gms_protections_refuse_floods_and_duplicates_with_503() {
    let app = spawn_app().await;
    configure(
        &app,
        "guarded",
        json!({"_max_queued_callbacks_per_service": "2", "_enable_in_queue_checking": "true"}),
    )
    .await;
    let create = |number: &'static str| {
        let app = &app;
        async move {
            app.post_form(
                "/genesys/1/service/callback/guarded",
                Some(GMS_USER),
                &[("_customer_number", number)],
            )
            .await
        }
    };

    let first = create("1").await;
    let duplicate = create("1").await;
    let second = create("2").await;
    let third = create("3").await;

    assert_eq!(first.status(), 200);
    assert_eq!(
        duplicate.status(),
        503,
        "same customer number already queued"
    );
    let message = json(duplicate).await["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("_enable_in_queue_checking"), "{message}");
    assert_eq!(second.status(), 200);
    assert_eq!(third.status(), 503, "two are queued already");
    let message = json(third).await["message"].as_str().unwrap().to_string();
    assert_eq!(message, "Limit of queued callbacks for guarded is reached.");

    // Once one leaves the queue, there is room again.
    let id = json(first).await["_id"].as_str().unwrap().to_string();
    let cancel = app
        .request(
            Method::DELETE,
            &format!("/genesys/1/service/callback/guarded/{id}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    assert_eq!(create("3").await.status(), 200);
    assert_eq!(create("1").await.status(), 503, "full again");
}

#[tokio::test]
async fn an_agent_logging_out_puts_its_reserved_service_back_for_the_next_agent() {
    let app = spawn_app().await;
    set_state(&app, "kristi", "ready").await;
    let id = app.create("chat-delay", &[("_customer_number", "1")]).await;
    wait_for_state(&app, &id, "ROUTING").await;

    set_state(&app, "kristi", "logged_out").await;

    let requeued = wait_for_state(&app, &id, "QUEUED").await;
    assert_eq!(requeued["_reserved_agent"], Value::Null);
    set_state(&app, "marco", "ready").await;
    let next = wait_for_state(&app, &id, "ROUTING").await;
    assert_eq!(next["_reserved_agent"], "marco");
}

#[tokio::test]
async fn a_service_rescheduled_into_the_future_waits_for_its_time_then_routes() {
    let app = spawn_app().await;
    let id = app.create("chat-delay", &[("_customer_number", "1")]).await;
    let in_a_second = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();

    let moved = app
        .request(
            Method::PUT,
            &format!("/genesys/1/service/callback/chat-delay/{id}"),
        )
        .header("gms_user", GMS_USER)
        .form(&[("_new_desired_time", in_a_second.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    set_state(&app, "kristi", "ready").await;

    // A ready agent does not take it before its time...
    assert_eq!(detail(&app, &id).await["_callback_state"], "SCHEDULED");
    // ...and the router starts it when the time comes.
    let routed = wait_for_state(&app, &id, "ROUTING").await;
    assert_eq!(routed["_reserved_agent"], "kristi");
}

/// A service stored with the start of its walk whose first step the router never recorded:
/// the process was killed between the create's durable write and the router's first one
/// (routing history is not waited for). Written here through the store, as such a crash
/// leaves it; on start-up the router enters that step, so its `Entered` event is written
/// and its statistic checked, as for a new create.
#[tokio::test]
async fn a_create_whose_first_step_was_never_recorded_enters_it_after_a_restart() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let id = "00000000-0000-4000-8000-00000000c0de";
    let now = wall_clock_now();
    {
        let store = crate::helpers::open_store(&data);
        let record = waiting_on_nobody(id, now, now);
        store
            .insert_services(std::slice::from_ref(&record))
            .unwrap()
            .without_waiting();
        store.flush_blocking().unwrap();
    }

    // Act
    let server = crate::helpers::ServerProcess::start(&data, &[]);
    let history = routing_history_of(&server, id, 1).await;

    // Assert
    assert_eq!(history[0]["event"], "entered", "{history:?}");
    assert_eq!(history[0]["step"], 1, "{history:?}");
    assert_eq!(history[0]["detail"], "Nobody@StatServer.GA", "{history:?}");
}

/// A service back in its queue for a new walk (rescheduled out of its queue and back, or a
/// voice callback redialed, which keeps its old `queued_at`) whose first step the router never
/// recorded: the process was killed right after the write that began the walk. Its history
/// holds only the earlier walk's events; on start-up the router enters the new walk's first
/// step, as for a new create, instead of resuming as if it had.
#[tokio::test]
async fn a_new_walk_whose_first_step_was_never_recorded_enters_it_after_a_restart() {
    use callbackd::domain::service::{RoutingEvent, RoutingEventKind};
    use callbackd::domain::time::Timestamp;

    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let id = "00000000-0000-4000-8000-00000000beef";
    let now = wall_clock_now();
    {
        let store = crate::helpers::open_store(&data);
        let queued_long_ago = Timestamp::from_millis(now.as_millis() - 120_000);
        let record = waiting_on_nobody(id, queued_long_ago, now);
        store
            .insert_services(std::slice::from_ref(&record))
            .unwrap()
            .without_waiting();
        let earlier_walk = RoutingEvent {
            at: Timestamp::from_millis(now.as_millis() - 100_000),
            step: 1,
            kind: RoutingEventKind::Entered {
                target: "Nobody@StatServer.GA".into(),
            },
        };
        assert!(store
            .append_routing(id, &[earlier_walk], None)
            .unwrap()
            .without_waiting());
        store.flush_blocking().unwrap();
    }

    // Act
    let server = crate::helpers::ServerProcess::start(&data, &[]);
    let history = routing_history_of(&server, id, 2).await;

    // Assert
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1]["event"], "entered", "{history:?}");
    assert_eq!(history[1]["step"], 1, "{history:?}");
    assert_eq!(history[1]["detail"], "Nobody@StatServer.GA", "{history:?}");
}

/// Now on the wall clock, as a server process reads it.
fn wall_clock_now() -> callbackd::domain::time::Timestamp {
    callbackd::domain::time::Timestamp::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

/// A chat-delay service waiting in its queue since `queued_at` on a target nobody serves,
/// stored with the start of a walk begun at `walk_began` (as a crash right after that write
/// leaves it).
fn waiting_on_nobody(
    id: &str,
    queued_at: callbackd::domain::time::Timestamp,
    walk_began: callbackd::domain::time::Timestamp,
) -> callbackd::domain::service::ServiceRecord {
    use callbackd::domain::options::Preset;
    use callbackd::domain::service::{CallbackState, RouteProgress, ServiceRecord};

    let mut record =
        ServiceRecord::new(id.to_string(), "chat-delay", Preset::ChatDelayed, queued_at);
    record.owner = Some(GMS_USER.into());
    record.expire_at = walk_began.plus_secs(3_600);
    record.options = [
        ("_ttl", "3600"),
        ("_target", "Nobody@StatServer.GA"),
        ("_urs_queued_ttl", "3600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    record.state = CallbackState::Queued;
    record.queued_at = Some(queued_at);
    record.route = Some(RouteProgress::start(walk_began));
    record
}

/// Service `id`'s routing history as the admin API shows it, once it holds `at_least` events.
async fn routing_history_of(
    server: &crate::helpers::ServerProcess,
    id: &str,
    at_least: usize,
) -> Vec<Value> {
    let client = reqwest::Client::new();
    crate::helpers::eventually(Duration::from_secs(10), "the routing history", || {
        let (client, address) = (client.clone(), server.address.clone());
        async move {
            let body: Value = client
                .get(format!("{address}/genesys/1/admin/callback/{id}"))
                .bearer_auth(crate::helpers::ADMIN_TOKEN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let history = body["routing_history"].as_array()?.clone();
            (history.len() >= at_least).then_some(history)
        }
    })
    .await
}

/// A create whose first step is skipped at once (no Billing agent ready) is stored once, at
/// the start of its walk; the skip and the second step are only in its routing history. After
/// `kill -9` the router resumes from that history on the second step (Support), so a Support
/// agent takes it at once instead of after the first step's 30 s.
#[tokio::test]
async fn a_create_skipped_past_its_first_step_resumes_on_the_second_after_kill_9() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let server = crate::helpers::ServerProcess::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let base = server.address.clone();
    let created: Value = client
        .post(format!("{base}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "5550101")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["_id"].as_str().unwrap().to_string();
    let detail = |base: String| {
        let (client, id) = (client.clone(), id.clone());
        async move {
            client
                .get(format!("{base}/genesys/1/admin/callback/{id}"))
                .bearer_auth(crate::helpers::ADMIN_TOKEN)
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()
        }
    };
    let history =
        crate::helpers::eventually(Duration::from_secs(10), "the second step entered", || {
            let detail = detail(base.clone());
            async move {
                let history = detail.await?["routing_history"].as_array()?.clone();
                (history.len() >= 3).then_some(history)
            }
        })
        .await;
    let walked: Vec<(&str, u64)> = history
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["step"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        walked,
        [("entered", 1), ("skipped", 1), ("entered", 2)],
        "{history:?}"
    );
    // A durable write after it: the group commit covers the history appended before.
    app_create(&client, &base, "5550102").await;

    // Act
    server.kill9();
    let server = crate::helpers::ServerProcess::start(dir.path(), &[]);
    let base = server.address.clone();
    let ready = client
        .post(format!("{base}/genesys/1/agent/amina/state"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&serde_json::json!({"state": "ready"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Assert: amina is in Support only, the second step's target.
    let reserved = crate::helpers::eventually(
        Duration::from_secs(10),
        "a reservation for the Support agent",
        || {
            let detail = detail(base.clone());
            async move {
                let body = detail.await?;
                (body["_callback_state"] == "ROUTING").then_some(body)
            }
        },
    )
    .await;
    assert_eq!(reserved["_reserved_agent"], "amina", "{reserved}");
}

/// Creates a chat-delay service over `base` and checks it was accepted.
async fn app_create(client: &reqwest::Client, base: &str, number: &str) {
    let created = client
        .post(format!("{base}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", number)])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
}
