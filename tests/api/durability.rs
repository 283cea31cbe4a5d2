//! The real binary, killed and restarted: nothing acknowledged is lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{ServerProcess, ADMIN_TOKEN, GMS_USER};

/// Creates services from `workers` concurrent clients until `stop` flips, pushing the id of
/// every create answered 200 onto `acknowledged`; the clients take turns over `addresses`.
async fn create_stream(
    addresses: Vec<String>,
    workers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
) {
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let address = addresses[worker % addresses.len()].clone();
        let stop = stop.clone();
        let acknowledged = acknowledged.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let number = format!("{worker}{n:06}");
                let sent = client
                    .post(format!("{address}/genesys/1/service/callback/chat-delay"))
                    .header("gms_user", GMS_USER)
                    .form(&[("_customer_number", number.as_str()), ("usr_n", "x")])
                    .send()
                    .await;
                // Once the server is killed, requests fail: they were never acknowledged.
                let Ok(response) = sent else { break };
                if response.status() != 200 {
                    break;
                }
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    break;
                };
                if let Some(id) = body["_id"].as_str() {
                    acknowledged.lock().unwrap().push(id.to_string());
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker ends");
    }
}

async fn record_exists(client: &reqwest::Client, address: &str, id: &str) -> bool {
    let response = client
        .get(format!("{address}/genesys/1/admin/callback/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("query sent");
    response.status() == 200
}

/// Streams creates to `addresses` from `workers` clients until `count` were acknowledged,
/// then calls `kill` mid-stream; returns the ids acknowledged and when `kill` returned.
pub(crate) async fn kill_mid_stream(
    addresses: &[String],
    workers: usize,
    count: usize,
    kill: impl FnOnce(),
) -> (Vec<String>, std::time::Instant) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stream = tokio::spawn(create_stream(
        addresses.to_vec(),
        workers,
        stop.clone(),
        acknowledged.clone(),
    ));
    crate::helpers::eventually(
        Duration::from_secs(60),
        &format!("{count} acknowledged creates"),
        || {
            let seen = acknowledged.lock().unwrap().len();
            async move { (seen >= count).then_some(()) }
        },
    )
    .await;
    kill();
    let killed = std::time::Instant::now();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    stream.await.expect("stream ends");
    let acknowledged = acknowledged.lock().unwrap().clone();
    (acknowledged, killed)
}

/// The ids of `ids` that the server at `address` does not have.
pub(crate) async fn missing_from(
    client: &reqwest::Client,
    address: &str,
    ids: &[String],
) -> Vec<String> {
    let mut missing = Vec::new();
    for id in ids {
        if !record_exists(client, address, id).await {
            missing.push(id.clone());
        }
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_create_survives_sigkill() {
    // Arrange: a server taking a stream of creates from 16 clients.
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]);

    // Act: kill -9 once the clients saw 300 creates acknowledged, mid-stream.
    let addresses = [server.address.clone()];
    let (acknowledged, _) = kill_mid_stream(&addresses, 16, 300, || server.kill9()).await;
    assert!(
        acknowledged.len() >= 300,
        "only {} acknowledged",
        acknowledged.len()
    );

    // Assert: after a restart on the same directory, every acknowledged id is there.
    let client = reqwest::Client::new();
    let restarted = ServerProcess::start(data_dir.path(), &[]);
    let missing = missing_from(&client, &restarted.address, &acknowledged).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged services lost after SIGKILL: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
}

#[tokio::test]
async fn sigterm_stops_cleanly_with_exit_code_zero_and_keeps_the_data() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!(
            "{}/genesys/1/service/callback/chat-delay",
            server.address
        ))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "4082652649")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.json::<serde_json::Value>().await.unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, logs) = server.terminate(Duration::from_secs(30));

    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM; logs:\n{}",
        logs.join("\n")
    );
    assert!(
        logs.iter().any(|l| l.contains("database flushed")),
        "the shutdown flushes; logs:\n{}",
        logs.join("\n")
    );
    let restarted = ServerProcess::start(data_dir.path(), &[]);
    assert!(record_exists(&client, &restarted.address, &id).await);
}

#[tokio::test]
async fn services_that_expired_while_stopped_are_removed_at_start() {
    // A schedule that never fires during the test: only the start-up catch-up can remove.
    let never = [("CALLBACKD_EXPIRY_SCHEDULE", "0 0 0 1 1 *")];
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &never);
    let client = reqwest::Client::new();
    let response = client
        .put(format!(
            "{}/genesys/1/admin/services/short-lived",
            server.address
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "preset": "Request-Chat",
            "options": {"_target": "Support@StatServer.GA", "_ttl": "1"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let create = |service: &'static str| {
        let client = client.clone();
        let address = server.address.clone();
        async move {
            let response = client
                .post(format!("{address}/genesys/1/service/{service}"))
                .header("gms_user", GMS_USER)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "create {service}");
            response.json::<serde_json::Value>().await.unwrap()["_id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let short = create("short-lived").await;
    let long = create("request-chat").await;
    let created = std::time::Instant::now();

    // The process runs on the wall clock, so its 1 s _ttl has to really pass.
    while created.elapsed() < Duration::from_millis(1_100) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        record_exists(&client, &server.address, &short).await,
        "past its expiry but not removed: the job never ran"
    );
    let (status, _) = server.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));

    let restarted = ServerProcess::start(data_dir.path(), &never);

    assert!(
        !record_exists(&client, &restarted.address, &short).await,
        "expired one removed at start"
    );
    assert!(
        record_exists(&client, &restarted.address, &long).await,
        "one-day one kept"
    );
}

#[tokio::test]
async fn admin_changes_to_configured_services_survive_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]);
    let client = reqwest::Client::new();
    let response = client
        .delete(format!(
            "{}/genesys/1/admin/services/request-chat",
            server.address
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.kill9();

    let restarted = ServerProcess::start(data_dir.path(), &[]);
    let services: serde_json::Value = client
        .get(format!("{}/genesys/1/admin/services", restarted.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"request-chat"),
        "deleted service stays deleted: {names:?}"
    );
    assert!(names.contains(&"chat-delay"), "{names:?}");
}

/// The admin view of a service on a server process.
async fn record(client: &reqwest::Client, address: &str, id: &str) -> serde_json::Value {
    client
        .get(format!("{address}/genesys/1/admin/callback/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn agent_state(client: &reqwest::Client, address: &str, agent: &str, state: &str) {
    let response = client
        .post(format!("{address}/genesys/1/agent/{agent}/state"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn routing_resumes_after_sigkill_without_routing_anything_twice() {
    // Arrange: kristi (Billing) reserved for A; B waits behind it.
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]);
    let client = reqwest::Client::new();
    let create = |number: &'static str| {
        let client = client.clone();
        let address = server.address.clone();
        async move {
            let response = client
                .post(format!("{address}/genesys/1/service/callback/chat-delay"))
                .header("gms_user", GMS_USER)
                .form(&[("_customer_number", number)])
                .send()
                .await
                .unwrap();
            response.json::<serde_json::Value>().await.unwrap()["_id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    agent_state(&client, &server.address, "kristi", "ready").await;
    let a = create("1").await;
    let address = server.address.clone();
    crate::helpers::eventually(Duration::from_secs(10), "A reserved", || {
        let client = client.clone();
        let (address, a) = (address.clone(), a.clone());
        async move {
            (record(&client, &address, &a).await["_callback_state"] == "ROUTING").then_some(())
        }
    })
    .await;
    let b = create("2").await;
    // B's first step is skipped (nobody in Billing is free), so it settles in step 2.
    let address = server.address.clone();
    crate::helpers::eventually(Duration::from_secs(10), "B in step 2", || {
        let client = client.clone();
        let (address, b) = (address.clone(), b.clone());
        async move {
            let history = record(&client, &address, &b).await["routing_history"].clone();
            (history.as_array()?.last()?["step"] == 2).then_some(())
        }
    })
    .await;
    // A durable write flushes everything written before it, the router's writes included.
    create("3").await;
    let b_before = record(&client, &server.address, &b).await;

    // Act
    server.kill9();
    let restarted = ServerProcess::start(data_dir.path(), &[]);

    // Assert: A keeps kristi, B still waits with the same routing history.
    let a_after = record(&client, &restarted.address, &a).await;
    let b_after = record(&client, &restarted.address, &b).await;
    assert_eq!(a_after["_callback_state"], "ROUTING");
    assert_eq!(a_after["_reserved_agent"], "kristi");
    assert_eq!(
        b_after["_callback_state"], "QUEUED",
        "kristi is not given out twice"
    );
    assert_eq!(
        b_after["routing_history"], b_before["routing_history"],
        "B resumes its step instead of starting over"
    );
    // And routing goes on: marco (Billing and Support) takes B.
    agent_state(&client, &restarted.address, "marco", "ready").await;
    let address = restarted.address.clone();
    let b_routed = crate::helpers::eventually(Duration::from_secs(10), "B reserved", || {
        let client = client.clone();
        let (address, b) = (address.clone(), b.clone());
        async move {
            let r = record(&client, &address, &b).await;
            (r["_callback_state"] == "ROUTING").then_some(r)
        }
    })
    .await;
    assert_eq!(b_routed["_reserved_agent"], "marco");
}

/// POSTs one chat-delay create to `address`; its status and body.
pub(crate) async fn create_one(
    client: &reqwest::Client,
    address: &str,
    number: &str,
) -> (u16, String) {
    let response = client
        .post(format!("{address}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", number)])
        .send()
        .await
        .expect("the node answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The database itself goes down: requests that need it answer 503 and acknowledge nothing,
/// and the node recovers by itself, without a restart, when the database returns.
/// (PostgreSQL only: sled is inside the process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_down_requests_get_503_and_the_node_recovers_when_it_returns() {
    if !crate::helpers::on_postgres() {
        eprintln!("SKIPPED on sled: the database is inside the process");
        return;
    }
    // Arrange: a node on a PostgreSQL server of this test's own, which it can stop.
    use callbackd::store::postgres::throwaway::{Cluster, Durability};
    let mut cluster = Cluster::start(Durability::Tests).expect("a PostgreSQL of its own");
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CALLBACKD_STORE_ENGINE", "postgres"),
        ("CALLBACKD_STORE_URL", url.as_str()),
    ];
    let mut node = ServerProcess::start(dir.path(), &env);
    let client = reqwest::Client::new();
    let (status, body) = create_one(&client, &node.address, "5550000002").await;
    assert_eq!(status, 200, "{body}");
    let before: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kept = before["_id"].as_str().unwrap().to_string();

    // Act: the database goes away.
    cluster.stop();

    // Assert: 503 naming the cause, for a write and for a read.
    let (status, body) = create_one(&client, &node.address, "5550000003").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database cannot be reached"), "{body}");
    let read = client
        .get(format!("{}/genesys/1/admin/callback/{kept}", node.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 503);

    // Act: the database returns.
    cluster.restart().expect("the database starts again");

    // Assert: the same process serves again, with the data, without being restarted.
    crate::helpers::eventually(Duration::from_secs(30), "a create accepted again", || {
        let client = client.clone();
        let address = node.address.clone();
        async move { (create_one(&client, &address, "5550000004").await.0 == 200).then_some(()) }
    })
    .await;
    assert!(record_exists(&client, &node.address, &kept).await);
    let logs = node.logs();
    assert!(
        !logs.iter().any(|l| l.contains("stopped")),
        "the node stopped: {logs:?}"
    );
}
