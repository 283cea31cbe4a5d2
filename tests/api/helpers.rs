//! Starting servers for tests, and request helpers.
//!
//! - [`spawn_app`]: the server in-process (fast; one per test).
//! - [`ServerProcess`]: the real `callbackd` binary as a child process, for restarts, SIGKILL
//!   and SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::Arc;

use callbackd::clock::{Clock, ManualClock, SystemClock};
use callbackd::config::{Config, SeedFile};
use callbackd::App;
use reqwest::{Method, RequestBuilder, Response};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The admin token every test server uses.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The `gms_user` of the seeds.
pub const GMS_USER: &str = "b16416334828b1d26ef14f329628b55b5a8c631d8928a371a5584722dd7fb673";

/// The configured services shipped in `data/services.toml`.
pub fn services_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/services.toml")
}

/// The demo agents of `data/agents.toml`, all logged out: a test server routes nothing until
/// its test makes agents ready.
pub fn agents_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/agents.toml")
}

/// The demo contact center exactly as shipped (some agents ready).
pub fn demo_agents_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/agents.toml")
}

/// A server running inside the test process.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// `127.0.0.1:<port>`, as clients put it in the Host header.
    pub host: String,
    /// A client without connection reuse surprises.
    pub client: reqwest::Client,
    /// Kept so the data directory lives as long as the server.
    _data_dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A test configuration on a fresh data directory.
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        services_file: SeedFile::File(services_file()),
        agents_file: SeedFile::File(agents_file()),
        admin_token: Some(ADMIN_TOKEN.to_string()),
        ..Config::default()
    }
}

/// Starts the server on a free port with a fresh data directory.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], after `adjust` changed the configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    start(adjust, Arc::new(SystemClock)).await
}

/// Like [`spawn_app`], with time standing still at `clock` until the test moves it.
pub async fn spawn_app_with_clock(clock: ManualClock) -> TestApp {
    start(|_| {}, Arc::new(clock)).await
}

/// Like [`spawn_app_with_clock`], after `adjust` changed the configuration.
pub async fn spawn_app_with_clock_and(
    clock: ManualClock,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    start(adjust, Arc::new(clock)).await
}

async fn start(adjust: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(data_dir.path());
    adjust(&mut config);
    let app = App::build_with_clock(config, clock)
        .await
        .expect("server builds");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        address: format!("http://{addr}"),
        host: addr.to_string(),
        client: reqwest::Client::new(),
        _data_dir: data_dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self._data_dir.path()
    }

    /// A request to `path` (absolute, starting with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    /// An admin request carrying the bearer token.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(ADMIN_TOKEN)
    }

    /// POSTs an urlencoded form as `gms_user` (if given).
    pub async fn post_form(
        &self,
        path: &str,
        gms_user: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Response {
        let mut request = self.request(Method::POST, path).form(fields);
        if let Some(user) = gms_user {
            request = request.header("gms_user", user);
        }
        request.send().await.expect("request sent")
    }

    /// GETs `path` as `gms_user` (if given).
    pub async fn get(&self, path: &str, gms_user: Option<&str>) -> Response {
        let mut request = self.request(Method::GET, path);
        if let Some(user) = gms_user {
            request = request.header("gms_user", user);
        }
        request.send().await.expect("request sent")
    }

    /// Creates a service of `service` with `fields` as the seeds' user; returns its `_id`.
    pub async fn create(&self, service: &str, fields: &[(&str, &str)]) -> String {
        let response = self
            .post_form(
                &format!("/genesys/1/service/callback/{service}"),
                Some(GMS_USER),
                fields,
            )
            .await;
        assert_eq!(response.status(), 200, "create {service}");
        let body: serde_json::Value = response.json().await.expect("json");
        body["_id"].as_str().expect("_id").to_string()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends");
        }
    }
}

/// Reads a JSON body, failing the test with the status and raw text if it is not JSON.
pub async fn json(response: Response) -> serde_json::Value {
    let status = response.status();
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{status}: not JSON ({err}): {text}"))
}

/// Sets an agent's state through the agent desktop API (200 expected).
pub async fn set_state(app: &TestApp, agent: &str, state: &str) {
    let response = app
        .admin(Method::POST, &format!("/genesys/1/agent/{agent}/state"))
        .json(&serde_json::json!({ "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{agent} -> {state}");
}

/// The admin detail of a service.
pub async fn detail(app: &TestApp, id: &str) -> serde_json::Value {
    let response = app
        .admin(Method::GET, &format!("/genesys/1/admin/callback/{id}"))
        .send()
        .await
        .unwrap();
    json(response).await
}

/// Waits until the service is in `state`; returns its admin detail.
pub async fn wait_for_state(app: &TestApp, id: &str, state: &str) -> serde_json::Value {
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

/// Polls `check` until it returns `Some`, or fails after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real `callbackd` binary running as a child process.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// Every log line the server printed so far arrives here.
    logs: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ServerProcess {
    /// Starts `callbackd serve` on a free port with its database in `data_dir`.
    /// `env` adds environment variables.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_callbackd"));
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("serve")
            .env("CALLBACKD_SERVICES_FILE", services_file())
            .env("CALLBACKD_AGENTS_FILE", agents_file());
        for (key, value) in env {
            command.env(key, value);
        }
        Self::spawn(command)
    }

    /// Starts `callbackd` as an installed binary would run: from `working_dir`, with `args`
    /// and none of the checkout's files named.
    pub fn start_installed(working_dir: &Path, args: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_callbackd"));
        command
            .current_dir(working_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("CALLBACKD_SERVICES_FILE")
            .env_remove("CALLBACKD_AGENTS_FILE")
            .env_remove("CALLBACKD_CONFIG");
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> ServerProcess {
        command
            .env("CALLBACKD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("callbackd starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, logs) = mpsc::channel();
        // Drain the pipe for the child's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = ServerProcess {
            child,
            address: String::new(),
            logs,
            seen: Vec::new(),
        };
        let line = process.wait_for_log("listening on http://", Duration::from_secs(30));
        let address = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address in the listening line");
        process.address = address.to_string();
        process
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a log line containing `needle` appears; returns it.
    pub fn wait_for_log(&mut self, needle: &str, deadline: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let start = Instant::now();
        loop {
            let left = deadline.saturating_sub(start.elapsed());
            match self.logs.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line containing {needle:?} within {deadline:?}; got:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every log line printed so far.
    pub fn logs(&mut self) -> Vec<String> {
        self.seen.extend(self.logs.try_iter());
        self.seen.clone()
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL sent");
        self.child.wait().expect("child reaped");
    }

    /// Sends SIGTERM and waits for the exit status (failing after `deadline`).
    pub fn terminate(mut self, deadline: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let logs: Vec<String> = self.seen.drain(..).chain(self.logs.try_iter()).collect();
                return (status, logs);
            }
            assert!(
                start.elapsed() < deadline,
                "callbackd did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A failed test must not leave servers running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
