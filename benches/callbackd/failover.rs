//! failover: two callbackd processes (the release binary) over one PostgreSQL database, one
//! active and one following. Ten times: a service waits in the active node's queue, the
//! active node is killed with `kill -9`, and the clock runs until the service is routed by the
//! node that took over (it takes the lease, restores routing from the database, serves its own
//! routes and publishes its address; an agent is then made ready through it, and the service is
//! reserved for that agent). The killed node is started again as the new follower. Prints the
//! median and the worst of the ten, and the takeover alone (kill to serving as the active node).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use callbackd::store::postgres::throwaway::{Cluster, Durability};

use super::ADMIN_TOKEN;

const ROUNDS: usize = 10;
const GMS_USER: &str = "b16416334828b1d26ef14f329628b55b5a8c631d8928a371a5584722dd7fb673";

/// One `callbackd serve` process over the shared database.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    address: Option<String>,
}

impl Node {
    /// Starts a node on `dir` over `url`; returns once it listens (`follower`: and follows).
    fn start(dir: &Path, url: &str, follower: bool) -> Node {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_callbackd"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .arg("serve")
            .env("CALLBACKD_SERVICES_FILE", root.join("data/services.toml"))
            // Every agent logged out: a service waits until the round makes one ready.
            .env(
                "CALLBACKD_AGENTS_FILE",
                root.join("tests/api/fixtures/agents.toml"),
            )
            .env("CALLBACKD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("CALLBACKD_STORE_ENGINE", "postgres")
            .env("CALLBACKD_STORE_URL", url)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("callbackd starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut node = Node {
            child,
            lines,
            address: None,
        };
        // A follower says so while it starts, before it logs where it listens.
        if follower {
            node.wait_for("following", Duration::from_secs(30));
        }
        node.wait_until_listening(Duration::from_secs(30));
        node
    }

    /// Waits for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{needle}` from callbackd within {deadline:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn wait_until_listening(&mut self, deadline: Duration) {
        let line = self.wait_for("listening on http://", deadline);
        let address = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address in the listening line");
        self.address = Some(address.to_string());
    }

    fn address(&self) -> &str {
        self.address.as_deref().expect("the node listens")
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn table() {
    let cluster = Cluster::start(Durability::Device).expect("a throwaway PostgreSQL starts");
    let url = cluster.fresh_database();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let dirs = [
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    ];
    let mut active = Node::start(dirs[0].path(), &url, false);
    let mut follower = Node::start(dirs[1].path(), &url, true);
    let mut routed_after = Vec::new();
    let mut serving_after = Vec::new();
    for round in 0..ROUNDS {
        let service = runtime.block_on(async {
            set_agent(&client, active.address(), "not_ready").await;
            create_waiting(&client, active.address(), round).await
        });
        let killed = Instant::now();
        active.kill();
        follower.wait_for("serving as the active node", Duration::from_secs(30));
        serving_after.push(killed.elapsed());
        runtime.block_on(async {
            set_agent(&client, follower.address(), "ready").await;
            wait_reserved(&client, follower.address(), &service).await;
        });
        routed_after.push(killed.elapsed());
        // Done with: the next round's service must be the one the agent gets.
        runtime.block_on(cancel(&client, follower.address(), &service));
        // The killed node's directory becomes the next follower's.
        let next_dir = dirs[(round + 2) % 2].path();
        active = follower;
        follower = Node::start(next_dir, &url, true);
    }
    active.kill();
    follower.kill();

    println!(
        "failover over PostgreSQL: the active node killed with kill -9 while a service waits, \
         to that service routed by the follower that took over ({ROUNDS} rounds; the follower \
         restores routing from the database, serves, and an agent is made ready through it)"
    );
    println!();
    println!("| | median | worst |");
    println!("|---|---:|---:|");
    for (what, times) in [
        (
            "kill -9 -> follower serving as the active node",
            &mut serving_after,
        ),
        ("kill -9 -> waiting service routed", &mut routed_after),
    ] {
        times.sort();
        println!(
            "| {what} | {} | {} |",
            super::ms(times[times.len() / 2]),
            super::ms(times[times.len() - 1])
        );
    }
}

async fn set_agent(client: &reqwest::Client, address: &str, state: &str) {
    let response = client
        .post(format!("{address}/genesys/1/agent/kristi/state"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "state": state }))
        .send()
        .await
        .expect("agent state sent");
    assert_eq!(response.status(), 200, "kristi -> {state}");
}

/// Creates a chat-delay service that waits (no agent ready); its id.
async fn create_waiting(client: &reqwest::Client, address: &str, round: usize) -> String {
    let number = format!("55500{round:05}");
    let body: serde_json::Value = client
        .post(format!("{address}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", number.as_str())])
        .send()
        .await
        .expect("create sent")
        .json()
        .await
        .expect("create answered");
    body["_id"].as_str().expect("an id").to_string()
}

/// Cancels the chat-delay service `id`, as its customer would.
async fn cancel(client: &reqwest::Client, address: &str, id: &str) {
    let response = client
        .delete(format!(
            "{address}/genesys/1/service/callback/chat-delay/{id}"
        ))
        .header("gms_user", GMS_USER)
        .send()
        .await
        .expect("cancel sent");
    assert_eq!(response.status(), 200, "cancel {id}");
}

/// Polls the admin detail of `id` until it is reserved for kristi.
async fn wait_reserved(client: &reqwest::Client, address: &str, id: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let detail: serde_json::Value = client
            .get(format!("{address}/genesys/1/admin/callback/{id}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("detail sent")
            .json()
            .await
            .expect("detail answered");
        if detail["_reserved_agent"] == "kristi" {
            return;
        }
        assert!(Instant::now() < until, "{id} not routed: {detail}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
