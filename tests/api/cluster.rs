//! Several nodes over one PostgreSQL database: any node answers any request (a follower relays
//! it to the node holding the lease), and killing any node, the active one included, loses
//! nothing acknowledged. sled has one node per directory: these run on PostgreSQL only.

use std::time::{Duration, Instant};

use callbackd::store::postgres::{Holder, LeaseView};
use reqwest::Method;
use serde_json::Value;
use tempfile::TempDir;

use crate::durability::{create_one, kill_mid_stream, missing_from};
use crate::helpers::{eventually, ServerProcess, ADMIN_TOKEN, GMS_USER};
use crate::push::Client;

/// The log line of a node that serves as the active one.
const ACTIVE: &str = "serving as the active node";

/// Nodes over one database: the first active, the others following.
struct Nodes {
    url: String,
    dirs: Vec<TempDir>,
    nodes: Vec<Option<ServerProcess>>,
}

impl Nodes {
    /// `count` nodes; `None` on sled.
    fn start(count: usize) -> Option<Nodes> {
        if !crate::helpers::on_postgres() {
            eprintln!("SKIPPED on sled: several nodes need a shared PostgreSQL database");
            return None;
        }
        let first = tempfile::tempdir().unwrap();
        let url = crate::helpers::database_url(first.path());
        let active = ServerProcess::start(first.path(), &[]);
        let mut nodes = Nodes {
            url,
            dirs: vec![first],
            nodes: vec![Some(active)],
        };
        for _ in 1..count {
            nodes.add_follower();
        }
        Some(nodes)
    }

    /// Starts one more node, which follows the active one.
    fn add_follower(&mut self) {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("CALLBACKD_STORE_ENGINE", "postgres"),
            ("CALLBACKD_STORE_URL", self.url.as_str()),
        ];
        let node = ServerProcess::start_follower(dir.path(), &env);
        self.dirs.push(dir);
        self.nodes.push(Some(node));
    }

    /// The address of node `i`.
    fn address(&self, i: usize) -> String {
        self.nodes[i].as_ref().expect("node alive").address.clone()
    }

    /// `kill -9` of node `i`.
    fn kill(&mut self, i: usize) {
        self.nodes[i].take().expect("node alive").kill9();
    }

    /// The nodes alive that logged they serve as the active one.
    fn active(&mut self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .as_mut()
                    .is_some_and(|node| node.is_running() && node.has_logged(ACTIVE))
            })
            .collect()
    }

    /// Waits (at most `deadline`) until one node alive serves as the active one; answers it.
    /// Fails as soon as two do.
    fn wait_for_active(&mut self, deadline: Duration) -> usize {
        let start = Instant::now();
        loop {
            let active = self.active();
            assert!(active.len() <= 1, "two nodes active at once: {active:?}");
            if let [one] = active[..] {
                return one;
            }
            assert!(
                start.elapsed() < deadline,
                "no node took over within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The lease's holder as a follower reads it.
async fn holder(url: &str) -> Holder {
    let view = LeaseView::open(url).expect("the database answers");
    view.holder()
        .await
        .expect("the lease is readable")
        .expect("a node took the lease")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_answers_and_a_push_reaches_a_client_of_another_node() {
    let Some(nodes) = Nodes::start(3) else { return };
    let (a, b, c) = (nodes.address(0), nodes.address(1), nodes.address(2));
    let http = reqwest::Client::new();
    // A CometD client on node C.
    let mut client = Client::join(&c, GMS_USER).await;

    // A service created through node B is stored once, and node C answers for it.
    let created: Value = http
        .post(format!("{b}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "5551000"), ("_device_os", "comet")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["_id"].as_str().expect("an id").to_string();
    let queried = http
        .post(format!("{c}/genesys/1/service/{id}/check-queue-position"))
        .header("gms_user", GMS_USER)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(queried.status(), 200);
    let queried: Value = queried.json().await.unwrap();
    assert_eq!(queried["_position"], 1, "{queried}");

    // The agent set ready through node B: the router (on node A) routes the service, and the
    // client on node C gets the push.
    let ready = http
        .post(format!("{b}/genesys/1/agent/kristi/state"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "state": "ready" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let push = client
        .push_tagged(&format!("service.agentavailable.{id}"))
        .await;
    assert_eq!(push["message"]["_id"], id.as_str(), "{push}");

    // A service created on node A is cancelled through node B; the client on C is told.
    let (status, body) = create_one(&http, &a, "5551001").await;
    assert_eq!(status, 200, "{body}");
    let other: Value = serde_json::from_str(&body).unwrap();
    let other = other["_id"].as_str().unwrap().to_string();
    let cancelled = http
        .request(
            Method::DELETE,
            format!("{b}/genesys/1/service/callback/chat-delay/{other}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let detail: Value = http
        .get(format!("{c}/genesys/1/admin/callback/{other}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["_callback_state"], "COMPLETED", "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_node_mid_stream_through_the_others_loses_nothing() {
    let Some(mut nodes) = Nodes::start(3) else { return };
    let (b, c) = (nodes.address(1), nodes.address(2));
    let http = reqwest::Client::new();
    let (status, body) = create_one(&http, &b, "5550000001").await;
    assert_eq!(status, 200, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let first = created["_id"].as_str().expect("an id").to_string();

    // Act: kill -9 the active node while 32 clients create through the two others.
    let active = nodes.nodes[0].take().expect("node A");
    let through = [b.clone(), c.clone()];
    let (acknowledged, killed) = kill_mid_stream(&through, 32, 200, || active.kill9()).await;
    let new_active = nodes.wait_for_active(Duration::from_secs(5));
    let took_over = killed.elapsed();

    // Assert: another node took over within 5 s, with every acknowledged service, the first
    // in the queue still first, and it routes.
    assert!(new_active == 1 || new_active == 2);
    assert!(
        took_over < Duration::from_secs(5),
        "took over in {took_over:?}"
    );
    let other = if new_active == 1 { &c } else { &b };
    let every = [std::slice::from_ref(&first), &acknowledged[..]].concat();
    let missing = missing_from(&http, other, &every).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged services lost when the active node died: {:?}",
        missing.len(),
        every.len(),
        &missing[..missing.len().min(5)]
    );
    let position: Value = http
        .post(format!("{other}/genesys/1/service/{first}/check-queue-position"))
        .header("gms_user", GMS_USER)
        .header("content-length", "0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(position["_position"], 1, "{position}");
    let ready = http
        .post(format!("{other}/genesys/1/agent/kristi/state"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "state": "ready" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    eventually(Duration::from_secs(10), "the first routed", || {
        let http = http.clone();
        let url = format!("{other}/genesys/1/admin/callback/{first}");
        async move {
            let detail: Value = http
                .get(url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (detail["_reserved_agent"] == "kristi").then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_never_held_by_two_nodes_under_repeated_kills() {
    let Some(mut nodes) = Nodes::start(3) else { return };
    let http = reqwest::Client::new();
    let mut epoch = holder(&nodes.url).await.epoch;
    for round in 0..4 {
        // The active node is the one the lease names.
        let active = nodes.wait_for_active(Duration::from_secs(5));
        let named = holder(&nodes.url).await;
        assert_eq!(
            named.address.as_deref(),
            Some(nodes.address(active).trim_start_matches("http://")),
            "round {round}"
        );
        let survivor = (0..nodes.nodes.len())
            .find(|&i| i != active && nodes.nodes[i].is_some())
            .expect("a follower");

        // Act: kill it, and start a new node in its place.
        nodes.kill(active);
        nodes.add_follower();

        // Assert: exactly one other node takes over, in a new epoch, and every node answers.
        let next = nodes.wait_for_active(Duration::from_secs(5));
        assert_ne!(next, active);
        let now = eventually(Duration::from_secs(5), "the new holder's address", || {
            let url = nodes.url.clone();
            async move { Some(holder(&url).await).filter(|h| h.address.is_some()) }
        })
        .await;
        assert!(now.epoch > epoch, "round {round}: epoch {} after {epoch}", now.epoch);
        epoch = now.epoch;
        let (status, body) = create_one(&http, &nodes.address(survivor), "5550000009").await;
        assert_eq!(status, 200, "round {round}: {body}");
    }
    assert_eq!(nodes.active().len(), 1);
}
