//! restart: the installed binary (`callbackd serve`, a child process) started on a database
//! holding `BENCH_RESTART_STORED` (default 1,000,000) services, `BENCH_RESTART_WAITING`
//! (default 100,000) of them QUEUED in one virtual queue, the rest COMPLETED (issue 13:
//! "serving in under 5 s", memory after a restart within 10% of before).
//!
//! The database is built once through the store directly (`Store::insert_services`) and kept
//! under `target/bench-restart/` while it holds as many services (delete the folder to build
//! it again). The waiting services target a group no demo agent belongs to, so they stay
//! queued and the router restores all of them on every start.
//!
//! Three starts in a row on the same data directory: the first after the build, a restart
//! after a graceful stop (SIGTERM), and one after `kill -9`. Each is timed from spawning the
//! process to its "listening" log line and to the first answer of `check-queue-position` for
//! a waiting service (the router restored the queue), then serves the same warm-up (creates
//! and position checks over HTTP) before its resident memory is read from `/proc`. The
//! first start's memory is the "before" the restarts are compared with.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use callbackd::domain::options::Preset;
use callbackd::domain::service::{CallbackReason, CallbackState, ServiceRecord, StateChange};
use callbackd::domain::time::Timestamp;
use reqwest::Client;

use super::{now_millis, ADMIN_TOKEN};

const DAY_MS: u64 = 86_400_000;
/// The owner (`gms_user`) of every stored service.
pub(super) const OWNER: &str = "bench-restart";
/// Creates, then position checks, each start serves before its memory is read.
const WARMUP: usize = 1_000;
/// The longest a start may take before the bench gives up on it.
const START_DEADLINE: Duration = Duration::from_secs(120);

/// What came before a start: the database's build, or a previous process ended by SIGTERM
/// or by `kill -9`.
#[derive(Clone, Copy)]
enum Start {
    FirstAfterBuild,
    Graceful,
    Killed,
}

impl Start {
    fn label(self) -> &'static str {
        match self {
            Start::FirstAfterBuild => "first start after the build",
            Start::Graceful => "restart after SIGTERM",
            Start::Killed => "restart after kill -9",
        }
    }
}

/// One start's figures.
struct Figures {
    listening: Duration,
    first_answer: Duration,
    rss_kib: u64,
}

/// Prints the restart table.
pub fn restart_table(stored: u64, waiting: u64) {
    assert!(
        waiting >= 1 && waiting <= stored,
        "BENCH_RESTART_WAITING: 1 to the stored count"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-restart");
    let fill = cached_or_built(&dir, stored, waiting);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = Client::new();
    let db_bytes = dir_bytes(&dir.join("db"));
    println!(
        "restart: the callbackd binary on {stored} stored services ({waiting} QUEUED), {:.0} MiB \
         on disk ({fill}); each start then serves {WARMUP} creates and {WARMUP} position checks \
         before its RSS is read",
        db_bytes as f64 / (1024.0 * 1024.0)
    );
    println!("| start | to listening | to first position answer | RSS after warm-up | vs first |");
    println!("|---|---|---|---|---|");
    let mut before = None;
    let mut previous: Option<Server> = None;
    for start in [Start::FirstAfterBuild, Start::Graceful, Start::Killed] {
        if let Some(server) = previous.take() {
            match start {
                Start::Killed => server.kill(),
                _ => server.stop(),
            }
        }
        let (server, figures) = runtime.block_on(timed_start(&client, &dir, start, waiting));
        let before_kib = *before.get_or_insert(figures.rss_kib);
        println!(
            "| {} | {:.2} s | {:.2} s | {:.0} MiB | {:.2}x |",
            start.label(),
            figures.listening.as_secs_f64(),
            figures.first_answer.as_secs_f64(),
            figures.rss_kib as f64 / 1024.0,
            figures.rss_kib as f64 / before_kib.max(1) as f64
        );
        previous = Some(server);
    }
    if let Some(server) = previous {
        server.stop();
    }
}

/// Starts the binary on `dir`, waits for its first position answer, serves the warm-up and
/// reads its memory.
async fn timed_start(client: &Client, dir: &Path, start: Start, waiting: u64) -> (Server, Figures) {
    let began = Instant::now();
    let server = Server::spawn(dir);
    let listening = began.elapsed();
    let base = format!("http://{}", server.address);
    let position = format!("{base}/genesys/1/service/{}/check-queue-position", id(0));
    let deadline = began + START_DEADLINE;
    loop {
        let answered = client
            .post(&position)
            .header("gms_user", OWNER)
            .send()
            .await
            .map(|reply| reply.status());
        match answered {
            Ok(status) if status.is_success() => break,
            Ok(status) if Instant::now() > deadline => {
                panic!(
                    "{}: check-queue-position still answers {status}",
                    start.label()
                )
            }
            Err(err) if Instant::now() > deadline => {
                panic!("{}: check-queue-position unanswered: {err}", start.label())
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    let first_answer = began.elapsed();
    for i in 0..WARMUP {
        let created = client
            .post(format!("{base}/genesys/1/service/callback/chat-delay"))
            .header("gms_user", OWNER)
            .form(&[("_customer_number", format!("4155{i:06}"))])
            .send()
            .await
            .expect("create sent");
        assert!(
            created.status().is_success(),
            "create: {}",
            created.status()
        );
        let checked = client
            .post(format!(
                "{base}/genesys/1/service/{}/check-queue-position",
                id(i as u64 % waiting.max(1))
            ))
            .header("gms_user", OWNER)
            .send()
            .await
            .expect("position sent");
        assert!(
            checked.status().is_success(),
            "position: {}",
            checked.status()
        );
    }
    let rss_kib = server.rss_kib();
    (
        server,
        Figures {
            listening,
            first_answer,
            rss_kib,
        },
    )
}

/// A running `callbackd serve`.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// Spawns the binary on `dir` and returns once it logged its address.
    fn spawn(dir: &Path) -> Server {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_callbackd"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .arg("serve")
            .env("CALLBACKD_SERVICES_FILE", root.join("data/services.toml"))
            .env("CALLBACKD_AGENTS_FILE", root.join("data/agents.toml"))
            .env("CALLBACKD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("callbackd starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        // Drained for the child's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let address = loop {
            let line = lines
                .recv_timeout(START_DEADLINE)
                .expect("callbackd logged its address");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("address in the listening line")
                    .to_string();
            }
        };
        Server { child, address }
    }

    /// Resident memory, from `/proc/<pid>/status`.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }

    /// SIGTERM, then waits for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// `kill -9`, then waits for the exit.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    // A bench that panics half-way leaves no server holding the database's lock.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The id of the `i`th stored service; the first `waiting` are the queued ones.
pub(super) fn id(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

/// Reuses the database under `dir` when it holds `stored` services (`waiting` of them
/// QUEUED), else builds it; says which.
pub(super) fn cached_or_built(dir: &Path, stored: u64, waiting: u64) -> String {
    let marker = dir.join("built");
    let wanted = format!("{stored} {waiting}");
    if std::fs::read_to_string(&marker).is_ok_and(|text| text.trim() == wanted) {
        return format!("database reused from {}", dir.display());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("bench dir");
    let started = Instant::now();
    let now = now_millis();
    super::bulk_load(
        &db_path(dir),
        (0..stored).map(|i| service(i, i < waiting, now)),
    );
    std::fs::write(&marker, wanted).expect("marker");
    format!(
        "database built in {:.0} s under {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    )
}

/// Where callbackd keeps its database inside its data directory.
fn db_path(dir: &Path) -> PathBuf {
    dir.join("db")
}

/// One stored service, expiring a year from now: QUEUED since `now` in `bench_vq`, or
/// COMPLETED.
pub(super) fn service(i: u64, queued: bool, now: u64) -> ServiceRecord {
    let at = Timestamp::from_millis(now);
    let mut record = ServiceRecord::new(id(i), "chat-delay", Preset::ChatDelayed, at);
    record.owner = Some(OWNER.into());
    record.customer_number = Some(format!("4155{:06}", i % 1_000_000));
    record.expire_at = Timestamp::from_millis(now + 365 * DAY_MS);
    record.options = [
        ("_ttl", "31536000"),
        ("_target", "BenchNobody@StatServer.GA"),
        ("_urs_virtual_queue", "bench_vq"),
        // Waiting for as long as they are kept: no start times them out.
        ("_urs_queued_ttl", "31536000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if queued {
        record.state = CallbackState::Queued;
        record.queued_at = Some(at);
    } else {
        record.state = CallbackState::Completed;
        record.reason = Some(CallbackReason::AgentConnected);
    }
    record.state_history = vec![StateChange {
        at,
        state: record.state,
        reason: record.reason,
        note: String::new(),
    }];
    record
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| match entry.metadata() {
                Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
                Ok(meta) => meta.len(),
                Err(_) => 0,
            })
            .sum()
    })
}
