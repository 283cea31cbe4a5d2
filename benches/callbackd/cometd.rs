//! cometd: many concurrent CometD long-polling clients against callbackd running as its own
//! process, next to a bare warp long-poll server in another process, so that each server's
//! memory is read from `/proc/<pid>/status` without the load generator's mixed in.
//!
//! For each server, on a fresh process: the RSS before any client; every client opens its own
//! keep-alive connection and all of them handshake at once (timed until the last answer); then
//! each subscribes to `/_genesys`, makes its first connect (`advice.timeout` 0) and sends a
//! long-poll `/meta/connect` that the server holds; once the server's RSS is steady and its CPU
//! idle, the RSS again: (after - before) / clients is the memory per idle client. The bare
//! server (this benchmark binary started again with [`ROLE_ENV`] set) answers
//! `POST /bare/echo` at once and holds every `POST /bare/hold` until a timeout: a client does
//! one of each, the same shape as the CometD client's requests. A second bare process holds
//! `POST /bare/hold-body` the same way but keeps the request body until it answers, as
//! callbackd's handler keeps its `Bytes` across the held `Bayeux::handle`: hyper hands the
//! body out as a slice of the connection's read buffer, so this shows what keeping it costs.
//!
//! Then, against callbackd only: one `chat-immediate` service per client, each with the
//! client's own `gms_user` and `_device_os=comet`; then `internal-notification`s to random
//! clients' services at a fixed rate (open loop: each is sent on schedule, whatever the ones
//! before it are doing), each carrying its sequence number as `_display_message`. The latency
//! is from writing the triggering request to reading the push from the client's held connect.
//! Triggers use their own connection pool, since every client connection is busy polling.
//!
//! The load generator speaks HTTP/1.1 itself ([`Conn`]): one connection per client, a request
//! written in one piece and the reply read by `Content-Length`, so its own cost stays small on
//! a 2-core machine it shares with the server.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use warp::Filter;

/// Set in the environment of the benchmark binary started as the bare long-poll server.
pub const ROLE_ENV: &str = "CALLBACKD_BENCH_ROLE";
/// [`ROLE_ENV`]'s value for the bare server.
const BARE_ROLE: &str = "bare-longpoll";
/// How long the bare server holds a `POST /bare/hold` (callbackd's connect timeout).
const BARE_HOLD: Duration = Duration::from_secs(60);
/// The listen backlog of the bare server, the same as callbackd's.
const BACKLOG: u32 = 4096;
/// Pushes triggered per second.
const PUSH_RATE: u64 = 1_000;
/// For how long pushes are triggered.
const PUSH_SECONDS: u64 = 10;
/// A push not received this long after its trigger counts as lost.
const PUSH_DEADLINE: Duration = Duration::from_secs(5);
/// Connections creating the services, at once.
const CREATE_CONCURRENCY: usize = 64;
/// Trigger connections opened before the pushes start (more are opened if all are busy).
const TRIGGER_POOL: usize = 64;
/// The open-file limit asked for, for this process and (inherited) both servers.
const FD_LIMIT: u64 = 65_536;
/// The admin token of the callbackd process.
const ADMIN_TOKEN: &str = "bench";
/// Issue 13's target for the push p99.
const PUSH_P99_TARGET: Duration = Duration::from_millis(50);
/// Issue 13's target for callbackd's memory per idle client, as a multiple of the bare
/// long-poll's.
const MEMORY_RATIO_TARGET: f64 = 1.1;

/// If this process was started as the bare long-poll server, serves until killed and never
/// returns; otherwise returns at once.
pub fn serve_bare_if_asked() {
    if std::env::var(ROLE_ENV).as_deref() != Ok(BARE_ROLE) {
        return;
    }
    // The same runtime as `callbackd serve`: one worker per core.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let echo = warp::post()
            .and(warp::path!("bare" / "echo"))
            .and(warp::body::bytes())
            .map(|_body: bytes::Bytes| {
                warp::reply::json(&serde_json::json!([{"successful": true}]))
            });
        let hold = warp::post()
            .and(warp::path!("bare" / "hold"))
            .and(warp::body::bytes())
            .then(|_body: bytes::Bytes| async {
                tokio::time::sleep(BARE_HOLD).await;
                warp::reply::json(&serde_json::json!([{"successful": true}]))
            });
        // The same, keeping the request body until the reply (as callbackd's handler does).
        let hold_body = warp::post()
            .and(warp::path!("bare" / "hold-body"))
            .and(warp::body::bytes())
            .then(|body: bytes::Bytes| async move {
                tokio::time::sleep(BARE_HOLD).await;
                warp::reply::json(&serde_json::json!([{"successful": true, "length": body.len()}]))
            });
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let listener = socket.listen(BACKLOG).expect("listen");
        let addr = listener.local_addr().expect("address");
        eprintln!("bare long-poll server listening on http://{addr}");
        warp::serve(echo.or(hold).or(hold_body))
            .incoming(listener)
            .run()
            .await;
    });
    std::process::exit(0);
}

/// Runs the scenario with `clients` clients and prints the table.
pub fn cometd_table(clients: usize) {
    let fd_limit = raise_fd_limit(FD_LIMIT);
    if fd_limit < clients as u64 + 1024 {
        eprintln!(
            "the open-file limit is {fd_limit}, too low for {clients} clients: raise it (ulimit -n) or lower BENCH_CLIENTS"
        );
        std::process::exit(2);
    }

    let bare_run = |target| {
        let server = ServerProcess::bare();
        let runtime = load_runtime();
        let run = runtime.block_on(hold_clients(&server, clients, target));
        runtime.shutdown_timeout(Duration::from_secs(1));
        run
    };
    let bare = bare_run(Target::Bare);
    let bare_body = bare_run(Target::BareKeepingBody);

    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::callbackd(data_dir.path());
    let runtime = load_runtime();
    let (ours, pushes) = runtime.block_on(async {
        let mut ours = hold_clients(&server, clients, Target::Callbackd).await;
        let pushes = push_run(&server, &mut ours).await;
        (ours, pushes)
    });
    ours.pushes_stop.store(true, Ordering::SeqCst);
    let after_pushes = server.memory();
    let warnings = server.warnings();
    drop(server);
    runtime.shutdown_timeout(Duration::from_secs(1));

    print_table(
        clients,
        fd_limit,
        [&bare, &bare_body, &ours],
        &pushes,
        after_pushes,
        &warnings,
    );
}

fn load_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn print_table(
    clients: usize,
    fd_limit: u64,
    [bare, bare_body, ours]: [&HeldRun; 3],
    pushes: &PushRun,
    after_pushes: Memory,
    warnings: &[String],
) {
    let per_bare = bare.kib_per_client();
    let per_ours = ours.kib_per_client();
    println!(
        "cometd: {clients} long-polling clients; callbackd (release binary) and a bare warp \
         long-poll server each in their own process, fresh, listen backlog 4096; load generator \
         in this process; 2-core shared machine; open-file limit {fd_limit} per process"
    );
    println!();
    println!("| server | clients | handshake failures | connect-all | handshake p50 | handshake p99 | RSS before | RSS idle | KiB per idle client |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, run) in [
        ("bare warp long-poll", bare),
        ("bare, keeping the request body while held", bare_body),
        ("callbackd", ours),
    ] {
        println!(
            "| {name} | {} | {} | {:.2} s | {} | {} | {} | {} | {:.1} |",
            run.held,
            run.handshake_failures,
            run.connect_all.as_secs_f64(),
            ms(percentile(&run.handshakes, 0.50)),
            ms(percentile(&run.handshakes, 0.99)),
            mib(run.before.rss_kib),
            mib(run.idle.rss_kib),
            run.kib_per_client()
        );
    }
    println!();
    println!(
        "| pushes ({PUSH_RATE}/s for {PUSH_SECONDS} s, random clients) | sent | received within {} s | push p50 | push p99 | push max | trigger reply p50 | trigger reply p99 |",
        PUSH_DEADLINE.as_secs()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| `internal-notification` -> held `/meta/connect` | {} | {} | {} | {} | {} | {} | {} |",
        pushes.sent,
        pushes.latencies.len(),
        ms(percentile(&pushes.latencies, 0.50)),
        ms(percentile(&pushes.latencies, 0.99)),
        ms(pushes.latencies.last().copied().unwrap_or_default()),
        ms(percentile(&pushes.trigger_replies, 0.50)),
        ms(percentile(&pushes.trigger_replies, 0.99)),
    );
    println!();
    let p99 = percentile(&pushes.latencies, 0.99);
    let lost = pushes.sent - pushes.latencies.len();
    println!(
        "  targets: push p99 under {} ms, none lost: {}; at most {MEMORY_RATIO_TARGET}x the bare server's memory per idle client: {} ({:.1} KiB, {:.2}x its {:.1} KiB); no failed handshakes: {}",
        PUSH_P99_TARGET.as_millis(),
        yes(p99 < PUSH_P99_TARGET && lost == 0),
        yes(per_ours <= per_bare * MEMORY_RATIO_TARGET),
        per_ours,
        per_ours / per_bare,
        per_bare,
        yes(ours.handshake_failures == 0),
    );
    println!(
        "  pushes sent at {:.0}/s achieved; {} triggers failed, {} lost, {} late (after {} s), {} duplicated, {} to the wrong client, {} other pushes; {} trigger connections",
        pushes.achieved_rate,
        pushes.trigger_failures,
        lost,
        pushes.late,
        PUSH_DEADLINE.as_secs(),
        pushes.duplicates,
        pushes.misdelivered,
        pushes.other,
        pushes.trigger_connections
    );
    let slowest: Vec<String> = pushes
        .slowest_per_second
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "  slowest push of each second of triggers, ms: {}",
        slowest.join(", ")
    );
    let commit = &pushes.commit;
    if commit.flushes > 0.0 {
        let bound = |p| {
            commit.flush_quantile_bound(p).map_or("?".to_string(), |d| {
                format!("{:.1} ms", d.as_secs_f64() * 1000.0)
            })
        };
        println!(
            "  group commit meanwhile: {:.0} flushes ({:.0}/s of triggering), {:.1} waiters each, flush (with its fdatasync) mean {:.1} ms, p50 <= {}, p99 <= {}",
            commit.flushes,
            commit.flushes / PUSH_SECONDS as f64,
            commit.waiters / commit.flushes,
            commit.flush_seconds / commit.flushes * 1000.0,
            bound(0.50),
            bound(0.99),
        );
    }
    println!(
        "  {} services (chat-immediate, one gms_user each) created in {:.1} s ({} failed); {} client connects failed or were refused",
        pushes.services,
        pushes.create_time.as_secs_f64(),
        pushes.create_failures,
        ours.pushes_failures.load(Ordering::SeqCst)
    );
    for (name, run) in [
        ("bare", bare),
        ("bare keeping the body", bare_body),
        ("callbackd", ours),
    ] {
        println!(
            "  {name} RSS idle: anon {} + file {}, {} threads; anonymous memory per idle client {:.1} KiB; steady after {:.1} s{}",
            mib(run.idle.anon_kib),
            mib(run.idle.file_kib),
            run.idle.threads,
            (run.idle.anon_kib as f64 - run.before.anon_kib as f64) / run.held.max(1) as f64,
            run.settle.as_secs_f64(),
            if run.steady {
                ""
            } else {
                " (NOT steady: last reading used)"
            }
        );
    }
    println!(
        "  callbackd RSS after the services and pushes: {} (anon {})",
        mib(after_pushes.rss_kib),
        mib(after_pushes.anon_kib)
    );
    if !warnings.is_empty() {
        println!(
            "  callbackd logged {} warnings or errors, the first: {}",
            warnings.len(),
            warnings[0]
        );
    }
}

fn yes(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

// ---- the servers, as child processes ----

/// Which server the clients talk to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The bare server; the held request's body is dropped at once.
    Bare,
    /// The bare server, keeping the held request's body until it answers.
    BareKeepingBody,
    Callbackd,
}

/// A server running as a child process; killed when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// Lines the server logged at WARN or ERROR.
    warnings: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// `callbackd serve` on a free port with a fresh data directory, logging at its default
    /// level (info).
    fn callbackd(data_dir: &Path) -> ServerProcess {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_callbackd"));
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("serve")
            .env("CALLBACKD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "CALLBACKD_SERVICES_FILE",
                manifest.join("data/services.toml"),
            )
            .env("CALLBACKD_AGENTS_FILE", manifest.join("data/agents.toml"))
            .env_remove("RUST_LOG")
            .env_remove("CALLBACKD_CONFIG");
        ServerProcess::start(command)
    }

    /// This benchmark binary again, as the bare long-poll server.
    fn bare() -> ServerProcess {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command.env(ROLE_ENV, BARE_ROLE);
        ServerProcess::start(command)
    }

    fn start(mut command: Command) -> ServerProcess {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("server starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let seen = warnings.clone();
        // Drains the pipe for the child's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                } else if line.contains(" WARN ") || line.contains(" ERROR ") {
                    seen.lock().unwrap().push(line);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address")
            .parse()
            .expect("an address");
        ServerProcess {
            child,
            addr,
            warnings,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn memory(&self) -> Memory {
        Memory::of(self.pid())
    }

    /// CPU time used so far, in clock ticks (1/100 s).
    fn cpu_ticks(&self) -> u64 {
        super::cpu_ticks(&self.pid().to_string())
    }

    fn fd_limit(&self) -> u64 {
        open_file_limit(&format!("/proc/{}/limits", self.pid())).0
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.lock().unwrap().clone()
    }

    /// Waits until the RSS holds still (within 0.5% over a second) while the process uses
    /// under 5% of a core; gives up after 30 s. Returns the reading, how long it took and
    /// whether it was steady.
    async fn wait_until_idle(&self) -> (Memory, Duration, bool) {
        let started = Instant::now();
        let mut last = self.memory();
        let mut ticks = self.cpu_ticks();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = self.memory();
            let now_ticks = self.cpu_ticks();
            let steady =
                now.rss_kib.abs_diff(last.rss_kib) <= last.rss_kib / 200 && now_ticks - ticks <= 5;
            if steady || started.elapsed() > Duration::from_secs(30) {
                return (now, started.elapsed(), steady);
            }
            last = now;
            ticks = now_ticks;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's memory, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    threads: u64,
}

impl Memory {
    fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss_kib: field("VmRSS:"),
            anon_kib: field("RssAnon:"),
            file_kib: field("RssFile:"),
            threads: field("Threads:"),
        }
    }
}

/// Raises this process's open-file limit (soft and hard) to `wanted` with `prlimit`, which
/// the servers then inherit; returns the soft limit in force.
fn raise_fd_limit(wanted: u64) -> u64 {
    let (soft, _) = open_file_limit("/proc/self/limits");
    if soft >= wanted {
        return soft;
    }
    let pid = std::process::id().to_string();
    let raised = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={wanted}:{wanted}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !raised {
        // Without the privilege to raise the hard limit, the soft one can still reach it.
        let (_, hard) = open_file_limit("/proc/self/limits");
        let _ = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
            .status();
    }
    open_file_limit("/proc/self/limits").0
}

/// The soft and hard "Max open files" of a `/proc/<pid>/limits` file.
fn open_file_limit(path: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string(path).unwrap_or_default();
    let numbers: Vec<u64> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .map(|line| {
            line.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match numbers.as_slice() {
        [soft, hard, ..] => (*soft, *hard),
        _ => (0, 0),
    }
}

// ---- HTTP/1.1, just enough ----

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
}

/// A reply: status and body.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

const JSON: &str = "application/json;charset=UTF-8";
const FORM: &str = "application/x-www-form-urlencoded";

impl Conn {
    async fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::with_capacity(4096, stream),
            host: addr.to_string(),
        })
    }

    /// POSTs `body` to `path` as `gms_user` and reads the whole reply.
    async fn post(
        &mut self,
        path: &str,
        gms_user: &str,
        content_type: &str,
        body: &[u8],
    ) -> io::Result<Reply> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\ngms_user: {gms_user}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.stream.get_mut().write_all(&request).await?;
        self.read_reply().await
    }

    /// GETs `path` with the admin bearer token and reads the whole reply.
    async fn get_as_admin(&mut self, path: &str) -> io::Result<Reply> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n",
            self.host
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> io::Result<Reply> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("status line"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').ok_or_else(|| invalid("header"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().map_err(|_| invalid("content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim(), 16).map_err(|_| invalid("chunk"))?;
                let start = body.len();
                body.resize(start + size + 2, 0);
                self.stream.read_exact(&mut body[start..]).await?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            body.resize(length.ok_or_else(|| invalid("no length"))?, 0);
            self.stream.read_exact(&mut body).await?;
        }
        Ok(Reply { status, body })
    }
}

// ---- many clients holding a long-poll ----

/// One joined client: its connection, user and CometD client id.
struct Joined {
    conn: Conn,
    user: String,
    client_id: String,
}

/// What holding the clients measured.
struct HeldRun {
    /// Clients that handshook and are holding a long-poll.
    held: usize,
    handshake_failures: usize,
    /// From launching every handshake at once to the last answer.
    connect_all: Duration,
    /// Each handshake (TCP connect included), sorted.
    handshakes: Vec<Duration>,
    before: Memory,
    idle: Memory,
    /// How long the RSS took to hold still after the last long-poll was sent.
    settle: Duration,
    steady: bool,
    /// The users of the held clients, by client index (callbackd only).
    users: Vec<String>,
    /// Shared with the polling clients (callbackd only).
    deliveries: Arc<Deliveries>,
    /// Set to stop counting the clients' connection errors (the server is going away).
    pushes_stop: Arc<AtomicBool>,
    /// Long-polls that failed while the run was on.
    pushes_failures: Arc<AtomicUsize>,
}

impl HeldRun {
    fn kib_per_client(&self) -> f64 {
        (self.idle.rss_kib as f64 - self.before.rss_kib as f64) / self.held.max(1) as f64
    }
}

/// Connects `clients` clients at once, has each hold a long-poll, and measures memory.
async fn hold_clients(server: &ServerProcess, clients: usize, target: Target) -> HeldRun {
    assert!(
        server.fd_limit() >= clients as u64 + 1024,
        "the server's open-file limit ({}) is too low for {clients} clients",
        server.fd_limit()
    );
    // A fresh process, settled after start-up.
    let (before, _, _) = server.wait_until_idle().await;
    let addr = server.addr;
    let mut rng = StdRng::seed_from_u64(0x00c0_3e7d);
    // Users like the seeds' `gms_user`: 64 hex digits.
    let users: Vec<String> = (0..clients)
        .map(|_| format!("{:032x}{:032x}", rng.random::<u128>(), rng.random::<u128>()))
        .collect();

    // Every handshake at once, each on its own new connection.
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|user| tokio::spawn(handshake(addr, user, target)))
        .collect();
    let mut joined = Vec::with_capacity(clients);
    let mut handshakes = Vec::with_capacity(clients);
    let mut failures = 0;
    let mut first_failure = None;
    for task in tasks {
        match task.await.expect("handshake task") {
            Ok((client, took)) => {
                joined.push(client);
                handshakes.push(took);
            }
            Err(err) => {
                failures += 1;
                first_failure.get_or_insert(err);
            }
        }
    }
    let connect_all = started.elapsed();
    handshakes.sort_unstable();
    if let Some(err) = first_failure {
        eprintln!("  first failed handshake: {err}");
    }

    // Subscribe and first connect, then the held long-poll.
    let deliveries = Arc::new(Deliveries::new(PUSH_RATE * PUSH_SECONDS));
    let stop = Arc::new(AtomicBool::new(false));
    let poll_failures = Arc::new(AtomicUsize::new(0));
    let polling = Arc::new(AtomicUsize::new(0));
    let ready: Vec<_> = joined
        .into_iter()
        .map(|client| tokio::spawn(subscribe(client, target)))
        .collect();
    let mut users_held = Vec::new();
    for task in ready {
        let Ok(client) = task.await.expect("subscribe task") else {
            poll_failures.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        let index = users_held.len();
        users_held.push(client.user.clone());
        tokio::spawn(long_poll(
            index,
            client,
            target,
            Polling {
                deliveries: deliveries.clone(),
                stop: stop.clone(),
                failures: poll_failures.clone(),
                polling: polling.clone(),
            },
        ));
    }
    let held = users_held.len();
    // Every long-poll written, then the server settles with all of them held.
    while polling.load(Ordering::SeqCst) < held {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (idle, settle, steady) = server.wait_until_idle().await;
    HeldRun {
        held,
        handshake_failures: failures,
        connect_all,
        handshakes,
        before,
        idle,
        settle,
        steady,
        users: users_held,
        deliveries,
        pushes_stop: stop,
        pushes_failures: poll_failures,
    }
}

async fn handshake(
    addr: SocketAddr,
    user: String,
    target: Target,
) -> io::Result<(Joined, Duration)> {
    let started = Instant::now();
    let mut conn = Conn::open(addr).await?;
    let (path, body) = match target {
        Target::Bare | Target::BareKeepingBody => ("/bare/echo", HANDSHAKE.to_string()),
        Target::Callbackd => ("/genesys/cometd", HANDSHAKE.to_string()),
    };
    let reply = conn.post(path, &user, JSON, body.as_bytes()).await?;
    let took = started.elapsed();
    let reply = bayeux_reply(&reply)?;
    if reply[0]["successful"] != true {
        return Err(io::Error::other(format!("handshake refused: {reply}")));
    }
    let client_id = reply[0]["clientId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((
        Joined {
            conn,
            user,
            client_id,
        },
        took,
    ))
}

const HANDSHAKE: &str = r#"[{"version":"1.0","minimumVersion":"0.9","channel":"/meta/handshake","supportedConnectionTypes":["long-polling"],"advice":{"timeout":60000,"interval":0},"id":"1"}]"#;

/// Subscribes to `/_genesys` and makes the first connect, which is answered at once.
async fn subscribe(mut client: Joined, target: Target) -> io::Result<Joined> {
    if target != Target::Callbackd {
        return Ok(client);
    }
    let id = &client.client_id;
    let subscribe = format!(
        r#"[{{"channel":"/meta/subscribe","subscription":"/_genesys","clientId":"{id}","id":"2"}}]"#
    );
    let connect = format!(
        r#"[{{"channel":"/meta/connect","connectionType":"long-polling","advice":{{"timeout":0}},"clientId":"{id}","id":"3"}}]"#
    );
    for body in [subscribe, connect] {
        let reply = client
            .conn
            .post("/genesys/cometd", &client.user, JSON, body.as_bytes())
            .await?;
        let reply = bayeux_reply(&reply)?;
        if reply[0]["successful"] != true {
            return Err(io::Error::other(format!("refused: {reply}")));
        }
    }
    Ok(client)
}

fn bayeux_reply(reply: &Reply) -> io::Result<Value> {
    if reply.status != 200 {
        return Err(io::Error::other(format!(
            "HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )));
    }
    serde_json::from_slice(&reply.body).map_err(|e| io::Error::other(e.to_string()))
}

/// What every polling client shares.
struct Polling {
    deliveries: Arc<Deliveries>,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    /// Long-polls written and not answered yet.
    polling: Arc<AtomicUsize>,
}

/// Long-polls until the connection fails or the server says to stop, handing every push to
/// [`Deliveries::arrived`].
async fn long_poll(index: usize, mut client: Joined, target: Target, shared: Polling) {
    let (path, body) = match target {
        Target::Bare => ("/bare/hold", "[]".to_string()),
        Target::BareKeepingBody => ("/bare/hold-body", "[]".to_string()),
        Target::Callbackd => (
            "/genesys/cometd",
            format!(
                r#"[{{"channel":"/meta/connect","connectionType":"long-polling","clientId":"{}"}}]"#,
                client.client_id
            ),
        ),
    };
    loop {
        shared.polling.fetch_add(1, Ordering::SeqCst);
        let reply = client
            .conn
            .post(path, &client.user, JSON, body.as_bytes())
            .await;
        let now = Instant::now();
        shared.polling.fetch_sub(1, Ordering::SeqCst);
        let reply = match reply.and_then(|reply| bayeux_reply(&reply)) {
            Ok(reply) => reply,
            Err(err) => {
                if !shared.stop.load(Ordering::SeqCst) {
                    eprintln!("  client {index}: long-poll failed: {err}");
                    shared.failures.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
        };
        let mut go_on = true;
        for message in reply.as_array().into_iter().flatten() {
            match message["channel"].as_str() {
                Some("/_genesys") => shared.deliveries.arrived(index, &message["data"], now),
                Some("/meta/connect") if message["successful"] != true => {
                    if !shared.stop.load(Ordering::SeqCst) {
                        eprintln!("  client {index}: connect refused: {message}");
                        shared.failures.fetch_add(1, Ordering::SeqCst);
                    }
                    go_on = false;
                }
                _ => {}
            }
        }
        if !go_on {
            return;
        }
    }
}

// ---- pushes ----

/// Every trigger's fate, by sequence number.
struct Deliveries {
    /// When its request started to be written.
    sent_at: Vec<OnceLock<Instant>>,
    /// The client it is for.
    client: Vec<AtomicUsize>,
    /// Trigger to push, in µs + 1 (0: not received yet).
    latency_us: Vec<AtomicU64>,
    /// Trigger to its HTTP reply, in µs + 1.
    reply_us: Vec<AtomicU64>,
    received: AtomicUsize,
    duplicates: AtomicUsize,
    misdelivered: AtomicUsize,
    other: AtomicUsize,
}

impl Deliveries {
    fn new(triggers: u64) -> Deliveries {
        let n = triggers as usize;
        Deliveries {
            sent_at: (0..n).map(|_| OnceLock::new()).collect(),
            client: (0..n).map(|_| AtomicUsize::new(usize::MAX)).collect(),
            latency_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            reply_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicUsize::new(0),
            duplicates: AtomicUsize::new(0),
            misdelivered: AtomicUsize::new(0),
            other: AtomicUsize::new(0),
        }
    }

    /// A push reached client `index` at `now`.
    fn arrived(&self, index: usize, data: &Value, now: Instant) {
        let seq = data["tag"]
            .as_str()
            .filter(|tag| tag.starts_with("service.internal."))
            .and_then(|_| data["message"]["_display_message"].as_str())
            .and_then(|text| text.parse::<usize>().ok())
            .filter(|seq| *seq < self.sent_at.len());
        let Some(seq) = seq else {
            self.other.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let Some(sent) = self.sent_at[seq].get() else {
            self.other.fetch_add(1, Ordering::SeqCst);
            return;
        };
        if self.client[seq].load(Ordering::SeqCst) != index {
            self.misdelivered.fetch_add(1, Ordering::SeqCst);
        }
        let micros = now.duration_since(*sent).as_micros() as u64 + 1;
        if self.latency_us[seq]
            .compare_exchange(0, micros, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.received.fetch_add(1, Ordering::SeqCst);
        } else {
            self.duplicates.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// What the push run measured.
struct PushRun {
    services: usize,
    create_time: Duration,
    create_failures: usize,
    sent: usize,
    /// Trigger to push, of those received within the deadline, sorted.
    latencies: Vec<Duration>,
    /// Received, but after the deadline.
    late: usize,
    /// Trigger to its HTTP reply, sorted.
    trigger_replies: Vec<Duration>,
    /// The slowest push of each second of triggers, in trigger order.
    slowest_per_second: Vec<Duration>,
    trigger_failures: usize,
    trigger_connections: usize,
    achieved_rate: f64,
    duplicates: usize,
    misdelivered: usize,
    other: usize,
    /// callbackd's group commit from the first trigger until every push was in.
    commit: CommitFigures,
}

/// Creates one service per client, then triggers pushes to random clients' services.
async fn push_run(server: &ServerProcess, held: &mut HeldRun) -> PushRun {
    let addr = server.addr;
    let users = Arc::new(held.users.clone());
    let deliveries = held.deliveries.clone();

    // One chat-immediate service per client, with its user and comet delivery.
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CREATE_CONCURRENCY)
        .map(|_| {
            let users = users.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut created = Vec::new();
                let mut failed = 0;
                let mut conn = Conn::open(addr).await.expect("connection for creating");
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= users.len() {
                        return (created, failed);
                    }
                    let form = format!(
                        "_customer_number={}&_device_os=comet",
                        5_550_000_000u64 + index as u64
                    );
                    let reply = conn
                        .post(
                            "/genesys/1/service/callback/chat-immediate",
                            &users[index],
                            FORM,
                            form.as_bytes(),
                        )
                        .await
                        .expect("create request");
                    let id = serde_json::from_slice::<Value>(&reply.body)
                        .ok()
                        .and_then(|body| body["_id"].as_str().map(str::to_owned));
                    match (reply.status, id) {
                        (200, Some(id)) => created.push((index, id)),
                        _ => {
                            if failed == 0 {
                                eprintln!(
                                    "  create failed: HTTP {} {}",
                                    reply.status,
                                    String::from_utf8_lossy(&reply.body)
                                );
                            }
                            failed += 1;
                        }
                    }
                }
            })
        })
        .collect();
    let mut services = vec![String::new(); users.len()];
    let mut create_failures = 0;
    for worker in workers {
        let (created, failed) = worker.await.expect("create worker");
        create_failures += failed;
        for (index, id) in created {
            services[index] = id;
        }
    }
    let create_time = started.elapsed();
    let services = Arc::new(services);

    // Triggers, open loop, on their own connections.
    let commit_before = CommitFigures::read(addr).await;
    let pool = Arc::new(TriggerPool::new(addr, TRIGGER_POOL).await);
    let total = (PUSH_RATE * PUSH_SECONDS) as usize;
    let interval = Duration::from_nanos(1_000_000_000 / PUSH_RATE);
    let trigger_failures = Arc::new(AtomicUsize::new(0));
    let mut rng = StdRng::seed_from_u64(0x0070_5e5d);
    let first = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::with_capacity(total);
    let mut last_sent = Instant::now();
    for seq in 0..total {
        tokio::time::sleep_until(first + interval * seq as u32).await;
        last_sent = Instant::now();
        let index = loop {
            let index = rng.random_range(0..users.len());
            if !services[index].is_empty() {
                break index;
            }
        };
        deliveries.client[seq].store(index, Ordering::SeqCst);
        let (pool, users, services, deliveries, failures) = (
            pool.clone(),
            users.clone(),
            services.clone(),
            deliveries.clone(),
            trigger_failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let path = format!(
                "/genesys/1/service/{}/internal-notification",
                services[index]
            );
            let body = format!("_display_message={seq}");
            let mut conn = pool.take().await;
            let sent = Instant::now();
            let _ = deliveries.sent_at[seq].set(sent);
            match conn.post(&path, &users[index], FORM, body.as_bytes()).await {
                Ok(reply) if reply.status == 200 => {
                    deliveries.reply_us[seq]
                        .store(sent.elapsed().as_micros() as u64 + 1, Ordering::SeqCst);
                    pool.give_back(conn);
                }
                Ok(reply) => {
                    if failures.fetch_add(1, Ordering::SeqCst) == 0 {
                        eprintln!(
                            "  trigger failed: HTTP {} {}",
                            reply.status,
                            String::from_utf8_lossy(&reply.body)
                        );
                    }
                    pool.give_back(conn);
                }
                Err(err) => {
                    if failures.fetch_add(1, Ordering::SeqCst) == 0 {
                        eprintln!("  trigger failed: {err}");
                    }
                }
            }
        }));
    }
    let first_sent = *deliveries.sent_at[0].get().expect("first trigger sent");
    let achieved_rate = (total - 1) as f64 / last_sent.duration_since(first_sent).as_secs_f64();
    for task in tasks {
        task.await.expect("trigger task");
    }
    // Every push in, or the deadline after the last trigger.
    let deadline = Instant::now() + PUSH_DEADLINE;
    while deliveries.received.load(Ordering::SeqCst) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let commit = CommitFigures::read(addr).await.since(&commit_before);

    let to_duration = |us: u64| Duration::from_micros(us - 1);
    let slowest_per_second = deliveries
        .latency_us
        .chunks(PUSH_RATE as usize)
        .map(|second| {
            let slowest = second.iter().map(|l| l.load(Ordering::SeqCst)).max();
            slowest
                .filter(|us| *us > 0)
                .map_or(Duration::ZERO, to_duration)
        })
        .collect();
    let mut latencies: Vec<Duration> = deliveries
        .latency_us
        .iter()
        .map(|l| l.load(Ordering::SeqCst))
        .filter(|us| *us > 0)
        .map(to_duration)
        .collect();
    latencies.sort_unstable();
    let late = latencies.iter().filter(|l| **l > PUSH_DEADLINE).count();
    latencies.retain(|l| *l <= PUSH_DEADLINE);
    let mut trigger_replies: Vec<Duration> = deliveries
        .reply_us
        .iter()
        .map(|l| l.load(Ordering::SeqCst))
        .filter(|us| *us > 0)
        .map(to_duration)
        .collect();
    trigger_replies.sort_unstable();
    PushRun {
        services: services.iter().filter(|s| !s.is_empty()).count(),
        create_time,
        create_failures,
        sent: total,
        latencies,
        late,
        trigger_replies,
        slowest_per_second,
        trigger_failures: trigger_failures.load(Ordering::SeqCst),
        trigger_connections: pool.opened.load(Ordering::SeqCst),
        achieved_rate,
        duplicates: deliveries.duplicates.load(Ordering::SeqCst),
        misdelivered: deliveries.misdelivered.load(Ordering::SeqCst),
        other: deliveries.other.load(Ordering::SeqCst),
        commit,
    }
}

/// Idle keep-alive connections for triggers; a new one is opened when none is idle.
struct TriggerPool {
    addr: SocketAddr,
    idle: Mutex<Vec<Conn>>,
    opened: AtomicUsize,
}

impl TriggerPool {
    async fn new(addr: SocketAddr, size: usize) -> TriggerPool {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            idle.push(Conn::open(addr).await.expect("trigger connection"));
        }
        TriggerPool {
            addr,
            idle: Mutex::new(idle),
            opened: AtomicUsize::new(size),
        }
    }

    async fn take(&self) -> Conn {
        let idle = self.idle.lock().unwrap().pop();
        match idle {
            Some(conn) => conn,
            None => {
                self.opened.fetch_add(1, Ordering::SeqCst);
                Conn::open(self.addr).await.expect("trigger connection")
            }
        }
    }

    fn give_back(&self, conn: Conn) {
        self.idle.lock().unwrap().push(conn);
    }
}

// ---- the group commit, from callbackd's /metrics ----

/// callbackd's group-commit histograms at one moment (`/metrics`).
#[derive(Debug, Clone, Default)]
struct CommitFigures {
    /// Flushes done.
    flushes: f64,
    /// Their total time, in seconds.
    flush_seconds: f64,
    /// Durable-write waiters they answered.
    waiters: f64,
    /// (upper bound in seconds, flushes that took at most that long), cumulative, in order.
    flush_buckets: Vec<(f64, f64)>,
}

impl CommitFigures {
    /// Reads them from `/metrics`; empty when that fails (the table then says nothing of it).
    async fn read(addr: SocketAddr) -> CommitFigures {
        let Ok(mut conn) = Conn::open(addr).await else {
            return CommitFigures::default();
        };
        match conn.get_as_admin("/metrics").await {
            Ok(reply) if reply.status == 200 => {
                CommitFigures::parse(&String::from_utf8_lossy(&reply.body))
            }
            _ => CommitFigures::default(),
        }
    }

    fn parse(text: &str) -> CommitFigures {
        let mut figures = CommitFigures::default();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if let Some(le) = name
                .strip_prefix("callbackd_store_commit_flush_duration_seconds_bucket{le=\"")
                .and_then(|rest| rest.strip_suffix("\"}"))
            {
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::INFINITY)
                };
                figures.flush_buckets.push((le, value));
            }
            match name {
                "callbackd_store_commit_flush_duration_seconds_count" => figures.flushes = value,
                "callbackd_store_commit_flush_duration_seconds_sum" => {
                    figures.flush_seconds = value
                }
                "callbackd_store_commit_batch_size_sum" => figures.waiters = value,
                _ => {}
            }
        }
        figures
    }

    /// What happened between `before` and `self`.
    fn since(&self, before: &CommitFigures) -> CommitFigures {
        let earlier = |le: f64| {
            before
                .flush_buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, n)| *n)
        };
        CommitFigures {
            flushes: self.flushes - before.flushes,
            flush_seconds: self.flush_seconds - before.flush_seconds,
            waiters: self.waiters - before.waiters,
            flush_buckets: self
                .flush_buckets
                .iter()
                .map(|(le, n)| (*le, n - earlier(*le)))
                .collect(),
        }
    }

    /// The upper bound of the histogram bucket holding the `p` (0-1) quantile of the flushes.
    fn flush_quantile_bound(&self, p: f64) -> Option<Duration> {
        let rank = self.flushes * p;
        self.flush_buckets
            .iter()
            .find(|(_, n)| *n >= rank && *n > 0.0)
            .filter(|(le, _)| le.is_finite())
            .map(|(le, _)| Duration::from_secs_f64(*le))
    }
}

// ---- figures ----

/// The nearest-rank percentile `p` (0-1) of sorted durations (zero if there are none).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
