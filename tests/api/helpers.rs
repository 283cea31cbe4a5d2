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

use std::sync::{Arc, Mutex};

use callbackd::clock::{Clock, ManualClock, SystemClock};
use callbackd::config::{Config, SeedFile};
use callbackd::store::{EngineKind, StoreSettings};
use callbackd::App;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use warp::Filter;

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
    /// With [`through_follower`], the follower `address` names, and its data directory.
    follower: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>, TempDir)>,
}

/// A test configuration on a fresh data directory (and, on PostgreSQL, its own database).
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        services_file: SeedFile::File(services_file()),
        agents_file: SeedFile::File(agents_file()),
        admin_token: Some(ADMIN_TOKEN.to_string()),
        store: store_settings(data_dir),
        ..Config::default()
    }
}

/// Whether this run of the suite stores on PostgreSQL (`CALLBACKD_TEST_ENGINE=postgres`, set
/// by `scripts/test` for its second run) instead of sled.
pub fn on_postgres() -> bool {
    std::env::var("CALLBACKD_TEST_ENGINE").as_deref() == Ok("postgres")
}

/// Whether this run reaches every in-process server through a second node that follows it
/// over the same database and relays every request to it (`CALLBACKD_TEST_THROUGH=follower`
/// on PostgreSQL, set by `scripts/test` for its third run): each test then checks that a
/// follower answers exactly as the active node does.
pub fn through_follower() -> bool {
    on_postgres() && std::env::var("CALLBACKD_TEST_THROUGH").as_deref() == Ok("follower")
}

/// The database of the server whose data directory is `data_dir`: on PostgreSQL, a database
/// of the throwaway cluster made for that directory on first use, so that a server restarted
/// on the same directory finds its data, as it would with sled.
pub fn database_url(data_dir: &Path) -> String {
    static DATABASES: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
    let mut databases = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, url)) = databases.iter().find(|(dir, _)| dir == data_dir) {
        return url.clone();
    }
    let url = callbackd::store::postgres::throwaway::shared().fresh_database();
    databases.push((data_dir.to_path_buf(), url.clone()));
    url
}

/// The `[store]` settings of a server on `data_dir` for this run's engine.
pub fn store_settings(data_dir: &Path) -> StoreSettings {
    if on_postgres() {
        StoreSettings {
            engine: EngineKind::Postgres,
            url: Some(database_url(data_dir)),
            pool_size: 4,
            ..StoreSettings::default()
        }
    } else {
        StoreSettings::default()
    }
}

/// The environment that gives a `callbackd` process on `data_dir` this run's engine.
pub fn store_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    if on_postgres() {
        vec![
            ("CALLBACKD_STORE_ENGINE", "postgres".to_string()),
            ("CALLBACKD_STORE_URL", database_url(data_dir)),
        ]
    } else {
        Vec::new()
    }
}

/// Opens the store of a stopped server on `data_dir`, as it would (a test reading what was
/// stored).
pub fn open_store(data_dir: &Path) -> callbackd::store::Store {
    callbackd::store::Store::open_with(&data_dir.join("db"), &store_settings(data_dir))
        .expect("the stopped server's store opens")
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
    let follower_config = through_follower().then(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config.clone()
        };
        (config, dir)
    });
    let app = App::build_with_clock(config, clock)
        .await
        .expect("server builds");
    let mut addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    let follower = match follower_config {
        None => None,
        Some((config, dir)) => {
            let follower = App::build(config).await.expect("the follower builds");
            assert!(follower.state().is_none(), "the second node follows");
            addr = follower.local_addr();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                follower
                    .run_until_stopped(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("the follower runs");
            });
            Some((stop, task, dir))
        }
    };
    TestApp {
        address: format!("http://{addr}"),
        host: addr.to_string(),
        client: reqwest::Client::new(),
        _data_dir: data_dir,
        shutdown: Some(tx),
        server: Some(server),
        follower,
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

    /// Creates a console or desktop user through the users API (bearer token); `agent` for
    /// the agent role.
    pub async fn add_user(&self, username: &str, role: &str, agent: Option<&str>, password: &str) {
        let response = self
            .admin(Method::POST, "/genesys/1/admin/users")
            .json(&serde_json::json!({
                "username": username, "role": role, "agent": agent, "password": password,
            }))
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        assert_eq!(
            status,
            201,
            "add user {username}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Signs in through the form of `portal` (`admin` or `agent`) and returns the session:
    /// its cookie and the CSRF token the landing page carries. Panics if the sign-in fails.
    pub async fn sign_in(&self, portal: &str, username: &str, password: &str) -> SignedIn {
        let response = self
            .post_login(portal, &[("username", username), ("password", password)])
            .await;
        assert_eq!(
            response.status(),
            303,
            "sign in as {username} at /{portal}/login"
        );
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').next().filter(|pair| pair.contains('=')))
            .expect("a session cookie")
            .to_string();
        let session: serde_json::Value = self
            .pages()
            .get(format!("{}/{portal}/session", self.address))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("the session as JSON");
        let csrf = session["csrf"].as_str().expect("csrf").to_string();
        SignedIn { cookie, csrf }
    }

    /// POSTs the sign-in form of `portal` (`admin` or `agent`) with `fields`, not following
    /// the redirect.
    pub async fn post_login(&self, portal: &str, fields: &[(&str, &str)]) -> Response {
        self.pages()
            .post(format!("{}/{portal}/login", self.address))
            .form(fields)
            .send()
            .await
            .expect("request sent")
    }

    /// A client that does not follow redirects, as pages' tests need (303s are asserted).
    pub fn pages(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// A request to `path` with `session`'s cookie, not following redirects.
    pub fn as_user(&self, session: &SignedIn, method: Method, path: &str) -> RequestBuilder {
        self.pages()
            .request(method, format!("{}{path}", self.address))
            .header("cookie", &session.cookie)
    }

    /// Stops the server gracefully and waits for it; then its follower, which relays what
    /// the server answered at its stop (held connects, websocket closes) to the test.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends");
        }
        if let Some((stop, task, _dir)) = self.follower.take() {
            let _ = stop.send(());
            task.await.expect("follower task ends");
        }
    }
}

/// A signed-in browser session, as a test holds it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// `name=value` for the `Cookie` header.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
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
            .env("CALLBACKD_AGENTS_FILE", agents_file())
            .envs(store_env(data_dir));
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
            .env_remove("CALLBACKD_CONFIG")
            .envs(store_env(working_dir));
        Self::spawn(command)
    }

    /// Starts `callbackd serve` on `data_dir` as a further node over the database `env` names
    /// (`CALLBACKD_STORE_ENGINE`, `CALLBACKD_STORE_URL`): it listens at once and relays to the
    /// active node. Returns once it logged that it follows.
    pub fn start_follower(data_dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_callbackd"));
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("serve")
            .env("CALLBACKD_SERVICES_FILE", services_file())
            .env("CALLBACKD_AGENTS_FILE", agents_file())
            .envs(env.iter().copied());
        let mut process = Self::spawn(command);
        process.wait_for_log(
            "following: another callbackd node is active",
            Duration::from_secs(30),
        );
        process
    }

    /// Whether the server logged a line containing `needle` so far (without waiting).
    pub fn has_logged(&mut self, needle: &str) -> bool {
        self.logs().iter().any(|line| line.contains(needle))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the server listens (at most `deadline`), and takes its address.
    pub fn wait_until_listening(&mut self, deadline: Duration) {
        let line = self.wait_for_log("listening on http://", deadline);
        let address = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address in the listening line");
        self.address = address.to_string();
    }

    fn spawn(command: Command) -> ServerProcess {
        let mut process = Self::spawn_only(command);
        process.wait_until_listening(Duration::from_secs(30));
        process
    }

    fn spawn_only(mut command: Command) -> ServerProcess {
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
        ServerProcess {
            child,
            address: String::new(),
            logs,
            seen: Vec::new(),
        }
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

/// The script's own steps time out after a few seconds each; this only catches a hung node.
const NODE_DEADLINE: Duration = Duration::from_secs(180);

/// Runs `node tests/node/<script> <args...>` to its end and returns what it printed; panics
/// with that output if it fails or hangs. Needs Node 20+ and `npm ci --prefix tests/node`
/// (`scripts/test` does both checks).
pub fn run_node(script: &str, args: &[&str]) -> String {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(
        node_dir.join("node_modules").is_dir(),
        "tests/node/node_modules is missing: run `npm ci --prefix tests/node` (needs Node 20+ and npm) before `cargo test`, or run scripts/test"
    );
    let out_dir = tempfile::tempdir().unwrap();
    // Output goes to a file, so that a hung node can be killed and its output still shown.
    let out_path = out_dir.path().join("node.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new("node")
        .arg(node_dir.join(script))
        .args(args)
        .env(
            "SCREENSHOT_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"),
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run `node` ({err}): install Node 20+"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > NODE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    println!("{output}");
    match status {
        Some(status) => assert!(status.success(), "{script} failed ({status}):\n{output}"),
        None => panic!("{script} still running after {NODE_DEADLINE:?}:\n{output}"),
    }
    output
}

/// Whether Debian's Chromium is installed (the browser tests need it; scripts/test installs
/// it). A browser test panics with this message when it is missing: it is never skipped.
pub fn require_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "Chromium is missing: run scripts/test (it installs Debian's chromium and chromium-driver), or apt-get install -y chromium chromium-driver"
    );
}

/// One request the stand-in FCM received.
#[derive(Debug, Clone)]
pub struct FcmRequest {
    /// The request's path.
    pub path: String,
    /// Its `Authorization` header.
    pub authorization: Option<String>,
    /// Its JSON body.
    pub body: Value,
}

/// A stand-in for FCM's HTTP v1 API on a free port: records every POST and answers 200 with
/// a message name, as FCM does. Returns its base URL (the `endpoint` setting).
pub async fn stand_in_fcm() -> (String, Arc<Mutex<Vec<FcmRequest>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let route = warp::post()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::json())
        .map(
            move |path: warp::path::FullPath, authorization: Option<String>, body: Value| {
                log.lock().unwrap().push(FcmRequest {
                    path: path.as_str().to_string(),
                    authorization,
                    body,
                });
                warp::reply::json(
                    &serde_json::json!({"name": "projects/callbackd-test/messages/1"}),
                )
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}"), received)
}
