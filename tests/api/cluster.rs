//! Several nodes over one PostgreSQL database: any node answers any request (a follower relays
//! it to the node holding the lease), and killing any node, the active one included, loses
//! nothing acknowledged. sled has one node per directory: these run on PostgreSQL only.

use std::time::{Duration, Instant};

use callbackd::store::postgres::{Holder, LeaseView};
use reqwest::Method;
use serde_json::{json, Value};
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

/// Creates a chat-delay service of `user` through `base` whose pushes go over CometD; its id.
async fn create_comet(http: &reqwest::Client, base: &str, user: &str, number: &str) -> String {
    let created: Value = http
        .post(format!("{base}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", user)
        .form(&[("_customer_number", number), ("_device_os", "comet")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["_id"].as_str().expect("an id").to_string()
}

/// Makes kristi ready through `base`.
async fn kristi_ready(http: &reqwest::Client, base: &str) {
    let ready = http
        .post(format!("{base}/genesys/1/agent/kristi/state"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "state": "ready" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// Cancels `user`'s chat-delay service `id` through `base`.
async fn cancel(http: &reqwest::Client, base: &str, user: &str, id: &str) {
    let cancelled = http
        .request(
            Method::DELETE,
            format!("{base}/genesys/1/service/callback/chat-delay/{id}"),
        )
        .header("gms_user", user)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
}

/// `check-queue-position` of `id` through `base`.
async fn queue_position(http: &reqwest::Client, base: &str, id: &str) -> Value {
    let answer = http
        .post(format!(
            "{base}/genesys/1/service/{id}/check-queue-position"
        ))
        .header("gms_user", GMS_USER)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_answers_and_a_push_reaches_a_client_of_another_node() {
    let Some(nodes) = Nodes::start(3) else { return };
    let (a, b, c) = (nodes.address(0), nodes.address(1), nodes.address(2));
    let http = reqwest::Client::new();
    // A CometD client on node C.
    let mut client = Client::join(&c, GMS_USER).await;

    // A service created through node B is stored once, and node C answers for it.
    let id = create_comet(&http, &b, GMS_USER, "5551000").await;
    let queried = queue_position(&http, &c, &id).await;
    assert_eq!(queried["_position"], 1, "{queried}");

    // The agent set ready through node B: the router (on node A) routes the service, and the
    // client on node C gets the push.
    kristi_ready(&http, &b).await;
    let push = client
        .push_tagged(&format!("service.agentavailable.{id}"))
        .await;
    assert_eq!(push["message"]["_id"], id.as_str(), "{push}");

    // A service created on node A is cancelled through node B; the client on C is told.
    let (status, body) = create_one(&http, &a, "5551001").await;
    assert_eq!(status, 200, "{body}");
    let other: Value = serde_json::from_str(&body).unwrap();
    let other = other["_id"].as_str().unwrap().to_string();
    cancel(&http, &b, GMS_USER, &other).await;
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
    let Some(mut nodes) = Nodes::start(3) else {
        return;
    };
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
    let position = queue_position(&http, other, &first).await;
    assert_eq!(position["_position"], 1, "{position}");
    kristi_ready(&http, other).await;
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

/// CometD clients live in the active node's memory; a follower only carries their requests.
/// Killing a follower moves its clients' next requests to another node with their sessions
/// intact; killing the active node loses the sessions, and the clients re-handshake on the new
/// one and receive every notification stored for them that they had not received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_go_on_elsewhere_and_receive_what_was_stored_meanwhile() {
    let Some(mut nodes) = Nodes::start(3) else {
        return;
    };
    let (a, b, c) = (nodes.address(0), nodes.address(1), nodes.address(2));
    let http = reqwest::Client::new();
    let (on_a, on_b) = ("cluster-user-on-a", "cluster-user-on-b");
    // One client talks to the active node A itself, one to follower B.
    let mut client_a = Client::join(&a, on_a).await;
    let mut client_b = Client::join(&b, on_b).await;
    let service_a = create_comet(&http, &c, on_a, "5553000001").await;
    let early_a = create_comet(&http, &c, on_a, "5553000002").await;
    let service_b = create_comet(&http, &c, on_b, "5553000003").await;

    // Act 1: kill -9 follower B; its client's next requests go to C instead.
    nodes.kill(1);
    cancel(&http, &c, on_b, &service_b).await;

    // Assert 1: the session lives on A, so the same client id goes on through C, and gets the
    // notification stored after B died.
    client_b.base = c.clone();
    let push = client_b
        .push_tagged(&format!("service.cancelled.{service_b}"))
        .await;
    assert_eq!(push["message"]["_callback_reason"], "CANCELLED", "{push}");

    // A notification stored and queued for client A in A's memory, never sent to it.
    cancel(&http, &a, on_a, &early_a).await;

    // Act 2: kill -9 the active node A, then store another notification for client A's user
    // while it has nowhere to go.
    nodes.kill(0);
    assert_eq!(nodes.wait_for_active(Duration::from_secs(5)), 2);
    cancel(&http, &c, on_a, &service_a).await;

    // Assert 2: the new active node does not know the old client ids, and says so as GMS does.
    for client in [&mut client_a, &mut client_b] {
        client.base = c.clone();
        let id = client.id.clone();
        let reply = client
            .send(
                json!([{"channel":"/meta/connect","connectionType":"long-polling","clientId":id}]),
            )
            .await;
        assert_eq!(reply[0]["error"], "402::Unknown client", "{reply}");
        assert_eq!(reply[0]["advice"]["reconnect"], "handshake", "{reply}");
    }
    // After a new handshake on C, client A's user receives both notifications it had not
    // received: the one queued in the dead node's memory and the one stored meanwhile.
    let mut again = Client::join(&c, on_a).await;
    let mut missing = vec![
        format!("service.cancelled.{early_a}"),
        format!("service.cancelled.{service_a}"),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !missing.is_empty() && Instant::now() < deadline {
        for push in again.pushes(Duration::from_secs(2)).await {
            missing.retain(|tag| push["tag"] != tag.as_str());
        }
    }
    assert!(
        missing.is_empty(),
        "never received after re-handshake: {missing:?} (queued on A before it died: {early_a}; stored after: {service_a})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_never_held_by_two_nodes_under_repeated_kills() {
    let Some(mut nodes) = Nodes::start(3) else {
        return;
    };
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
        assert!(
            now.epoch > epoch,
            "round {round}: epoch {} after {epoch}",
            now.epoch
        );
        epoch = now.epoch;
        let (status, body) = create_one(&http, &nodes.address(survivor), "5550000009").await;
        assert_eq!(status, 200, "round {round}: {body}");
    }
    assert_eq!(nodes.active().len(), 1);
}

/// `nginx` from the system, running `deploy/nginx.conf` in front of `backends` on a free port
/// of its own; stopped when dropped.
struct Nginx {
    child: std::process::Child,
    address: String,
    _dir: TempDir,
}

impl Nginx {
    /// `None` where nginx is not installed (`scripts/test` installs it when it may).
    fn start(backends: &[String]) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())?;
        let shipped = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf"),
        )
        .expect("deploy/nginx.conf");
        // nginx binds its port itself, so a free port is only a guess: another process may
        // take it between the probe and nginx's bind. nginx then exits at once; try another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|probe| probe.local_addr())
                .expect("a free port")
                .port();
            let examples = ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"];
            let mut config = shipped.replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
            for (example, backend) in examples.iter().zip(backends) {
                config = config.replace(example, backend.trim_start_matches("http://"));
            }
            assert!(
                !config.contains("10.0.0."),
                "every example address replaced"
            );
            std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
            let prefix = dir.path().to_str().unwrap().to_string();
            let mut child = std::process::Command::new(binary)
                .args(["-p", &prefix, "-c", "nginx.conf", "-e", "error.log"])
                .args(["-g", &format!("daemon off; pid {prefix}/nginx.pid;")])
                // Its workers outlive a killed master: they must not hold the test's output open.
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("nginx starts");
            let started = Instant::now();
            loop {
                if child.try_wait().expect("nginx's status").is_some() {
                    let log =
                        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                    assert!(
                        log.contains("Address already in use"),
                        "nginx exited at start:\n{log}"
                    );
                    break; // the port was taken: next attempt
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Nginx {
                        child,
                        address: format!("http://127.0.0.1:{port}"),
                        _dir: dir,
                    });
                }
                assert!(started.elapsed() < Duration::from_secs(10), "nginx listens");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("nginx found no free port in five attempts");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master stops its workers before it exits.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_in_front_of_three_nodes_everything_works_and_survives_a_kill() {
    let Some(mut nodes) = Nodes::start(3) else {
        return;
    };
    let backends: Vec<String> = (0..3).map(|i| nodes.address(i)).collect();
    let Some(nginx) = Nginx::start(&backends) else {
        eprintln!("SKIPPED: nginx is not installed (apt-get install -y nginx)");
        return;
    };
    let front = nginx.address.clone();
    let http = reqwest::Client::new();

    // Creates go round-robin over the three nodes; a CometD client sticks to one.
    let mut client = Client::join(&front, GMS_USER).await;
    let mut created = Vec::new();
    for n in 0..6 {
        let (status, body) = create_one(&http, &front, &format!("555200000{n}")).await;
        assert_eq!(status, 200, "create {n}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        created.push(body["_id"].as_str().expect("an id").to_string());
    }
    let comet = create_comet(&http, &front, GMS_USER, "5552000009").await;
    // The console's sign-in page, through the balancer as well.
    let login = http
        .get(format!("{front}/admin/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // Every service waits ahead of the comet one; cancel them, then let kristi take it.
    for id in &created {
        cancel(&http, &front, GMS_USER, id).await;
    }
    kristi_ready(&http, &front).await;
    let push = client
        .push_tagged(&format!("service.agentavailable.{comet}"))
        .await;
    assert_eq!(push["message"]["_id"], comet.as_str(), "{push}");

    // Act: kill -9 the active node behind the balancer.
    let killed = Instant::now();
    nodes.kill(0);

    // Assert: creates through the balancer succeed again within 5 s, and nothing is lost.
    let after = eventually(Duration::from_secs(5), "a create through nginx", || {
        let http = http.clone();
        let front = front.clone();
        async move {
            let (status, body) = create_one(&http, &front, "5552000010").await;
            (status == 200).then_some(body)
        }
    })
    .await;
    assert!(killed.elapsed() < Duration::from_secs(5));
    let after: Value = serde_json::from_str(&after).unwrap();
    created.push(comet);
    created.push(after["_id"].as_str().expect("an id").to_string());
    let missing = missing_from(&http, &front, &created).await;
    assert!(missing.is_empty(), "lost through nginx: {missing:?}");
    nodes.wait_for_active(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_loops_and_oversized_bodies_and_stops_cleanly() {
    let Some(mut nodes) = Nodes::start(2) else {
        return;
    };
    let follower = nodes.address(1);
    let http = reqwest::Client::new();

    // A request another node relayed here is not relayed again: this node is not the active
    // one, and says so, so that the relaying node tries the next.
    let looped = http
        .get(format!("{follower}/genesys/1/admin/callback/none"))
        .header("x-callbackd-relayed", "1")
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(looped.status(), 503);
    assert_eq!(looped.headers()["x-callbackd-not-active"], "1");

    // A body over max_body_bytes is refused by the follower itself, in GMS's error format,
    // as the active node would refuse it.
    let large = "x".repeat(70 * 1024);
    let refused = http
        .post(format!("{follower}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[
            ("_customer_number", "5553000001"),
            ("usr_note", large.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["exception"], "PayloadTooLarge", "{body}");

    // An unknown service is the active node's 404, relayed as it is.
    let unknown = http
        .post(format!(
            "{follower}/genesys/1/service/callback/no-such-service"
        ))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "5553000002")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // SIGTERM stops a follower at once with exit code 0, even with a long-poll it relays
    // held on the active node; the active node serves on.
    let client = Client::join(&follower, GMS_USER).await;
    let held = tokio::spawn({
        let http = http.clone();
        let (follower, id) = (follower.clone(), client.id.clone());
        async move {
            http.post(format!("{follower}/genesys/cometd"))
                .header("gms_user", GMS_USER)
                .header("Content-Type", "application/json;charset=UTF-8")
                .body(
                    serde_json::json!([{"channel":"/meta/connect","connectionType":"long-polling",
                        "advice":{"timeout":60000},"clientId":id}])
                    .to_string(),
                )
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "the connect is held");
    let (status, logs) = nodes.nodes[1]
        .take()
        .expect("the follower")
        .terminate(Duration::from_secs(5));
    let _ = held.await;
    assert_eq!(status.code(), Some(0), "{}", logs.join("\n"));
    let (status, body) = create_one(&http, &nodes.address(0), "5553000003").await;
    assert_eq!(status, 200, "{body}");
}
