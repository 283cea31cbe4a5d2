//! The project's benchmark: prints a table of figures measured side by side in one run.
//!
//! Run with `cargo bench --bench callbackd` (needs `wrk`: `apt-get install -y wrk`).
//!
//! create-service: `wrk` POSTs the same urlencoded form to three servers in this process, at
//! 1, 16 and 64 connections: callbackd's `POST /genesys/1/service/callback/chat-delay` with
//! `[store] sync = "device"` (the default: each group-commit flush is followed by
//! `fdatasync`) and with `sync = "os"` (flush only), and a bare warp endpoint that parses the
//! same form, inserts a record and an expiry index entry into sled and acknowledges through
//! the same kind of group commit, with the default's `fdatasync`. Each column gives the syncs
//! per second it made. The ratio callbackd / bare is the figure that matters on a shared,
//! noisy machine. Every measured run starts after `sync`, and which server goes first
//! rotates per row.
//!
//! create rate as the database grows: creates/s of callbackd on an empty database and on the
//! restart table's 1,000,000 stored services, side by side (see `growth_table`).
//!
//! expiry: removes the services due among many stored, by index range scan.
//!
//! routing: drives the router core (`Router::handle`) directly, in-process on one thread, with
//! no HTTP and no storage: 10,000 services with 15-step `_target` lists arrive at 1,000 per
//! second of simulated time over 200 agents, until all are routed; then the cost of one
//! check-queue-position (`position` + `eta_secs`) with 10,000 waiting in one virtual queue.
//!
//! chat: 1,000 poll-mode chats at once over HTTP against one callbackd in this process, each
//! exchanging 20 messages, the customer and the agent taking turns while the other side polls;
//! messages/s and the latency from a send to the other side's first poll that returns it,
//! next to a bare warp + sled endpoint driven by the same conversations (one transcript row
//! appended and group-committed with the default's `fdatasync` per send), the ratio
//! callbackd / bare and the writes per flush of each (see `callbackd/chat.rs`).
//!
//! cometd: 10,000 CometD long-polling clients against callbackd running as its own process
//! (the release binary), next to a bare warp long-poll server in another: how long they take
//! to handshake at once, server memory per idle client, then one service per client and
//! pushes to random clients at 1,000/s, latency from the triggering request to receipt (see
//! `callbackd/cometd.rs`).
//!
//! scans: the per-service callback query asked by a user who owns nothing, among many stored
//! services of another user, before (the old full scan) and now (the owner index), and create
//! latency while 8 such queries loop (see `callbackd/scans.rs`).
//!
//! httpcb: push latency to a healthy HTTP callback destination, alone and while 2,000
//! notifications are queued to one that never answers (see `callbackd/httpcb.rs`).
//!
//! cometd_sweep: 100,000 CometD clients expire at once; a probe's latency while the sweep
//! drops them (see `callbackd/sweep.rs`).
//!
//! console: the console's Callbacks page for GMS's time windows, state and service filters,
//! a deep page and a search, with 1,000,000 services stored, counted from the count index,
//! beside the old walk over the window; and the store's open time with the count index's
//! build (see `callbackd/console.rs`; the database is built once and cached under `target/`).
//!
//! availability: a callback service's free time slots over 30 days of 5-minute buckets with
//! 100,000 scheduled callbacks stored, over HTTP (see `callbackd/availability.rs`).
//!
//! restart: the installed binary restarted on 1,000,000 stored services, 100,000 of them
//! waiting: time to serve again and memory after (see `callbackd/restart.rs`).
//!
//! position: `check-queue-position` over HTTP with 10,000 and 200,000 waiting (see
//! `callbackd/position.rs`; `BENCH_POSITION_WAITING` lists other counts, comma-separated).
//!
//! postgres: create-service on one node with sled and with PostgreSQL side by side, on a
//! throwaway cluster the benchmark starts (see `callbackd/postgres.rs`; needs wrk and
//! PostgreSQL's binaries).
//!
//! nodes: create-service through one, two and three nodes over one PostgreSQL database, the
//! followers relaying to the active node (see `callbackd/nodes.rs`; needs wrk).
//!
//! failover: an active node and a follower over one PostgreSQL database; the active one killed
//! while a service waits, ten times: median and worst time to that service routed by the node
//! that took over (see `callbackd/failover.rs`).
//!
//! Set `BENCH_SECONDS` to change the length of each wrk run (default 5), `BENCH_CHATS` to
//! change the number of chats (default 1000), `BENCH_CLIENTS` the number of CometD clients
//! (default 10000), `BENCH_STORED` the services stored for `scans` (default 200000), `BENCH_SWEEP_CLIENTS` the
//! number of expired clients (default 100000), `BENCH_CONSOLE_STORED` the services stored for
//! `console` (default 1000000), `BENCH_AVAILABILITY_STORED` the scheduled callbacks for
//! `availability` (default 100000), `BENCH_RESTART_STORED` and `BENCH_RESTART_WAITING` the
//! services stored and waiting for `restart` (default 1000000 and 100000), and `BENCH_ONLY` to
//! `create`, `expiry`, `routing`, `chat`, `cometd`, `cometd_sweep`, `scans`, `httpcb`,
//! `console`, `availability`, `restart`, `position`, `postgres`, `nodes` or `failover` to run one
//! table (`create`, `postgres` and `nodes` need wrk).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use callbackd::config::Config;
use callbackd::domain::agent::{Agent, AgentConfig, AgentState};
use callbackd::domain::options::Preset;
use callbackd::domain::service::{RoutingEventKind, ServiceRecord};
use callbackd::domain::target::TargetList;
use callbackd::domain::time::Timestamp;
use callbackd::router::core::{Effect, Event, Priority, QueuedService, Router};
use callbackd::store::{Store, SyncMode};
use callbackd::App;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::oneshot;
use warp::Filter;

// Not `benches/chat.rs`: Cargo would build that as a bench target of its own.
#[path = "callbackd/chat.rs"]
mod chat;

/// The admin token of the callbackd the benchmark starts.
const ADMIN_TOKEN: &str = "bench";
// Not `benches/cometd.rs`: Cargo would build that as a bench target of its own.
#[path = "callbackd/availability.rs"]
mod availability;
#[path = "callbackd/cometd.rs"]
mod cometd;
#[path = "callbackd/console.rs"]
mod console;
#[path = "callbackd/failover.rs"]
mod failover;
#[path = "callbackd/nodes.rs"]
mod nodes;
#[path = "callbackd/position.rs"]
mod position;
#[path = "callbackd/postgres.rs"]
mod postgres;
#[path = "callbackd/restart.rs"]
mod restart;
#[path = "callbackd/scans.rs"]
mod scans;
// Not `benches/httpcb.rs`, for the same reason.
#[path = "callbackd/httpcb.rs"]
mod httpcb;
// Not `benches/sweep.rs`: Cargo would build that as a bench target of its own.
#[path = "callbackd/sweep.rs"]
mod sweep;

const FORM: &str = "_customer_number=4082652649&usr_customer_name=Bob+Markel&usr_reason=billing+question&_device_os=comet&_device_notification_id=b16416334828b1d26ef14f329628b55b";

fn main() {
    // Started again by the cometd table as its bare long-poll server: serve, never return.
    cometd::serve_bare_if_asked();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let runs = |table: &str| only.is_empty() || only == table;
    if ![
        "",
        "create",
        "expiry",
        "routing",
        "chat",
        "cometd",
        "cometd_sweep",
        "scans",
        "httpcb",
        "console",
        "availability",
        "restart",
        "position",
        "postgres",
        "nodes",
        "failover",
    ]
    .contains(&only.as_str())
    {
        eprintln!(
            "BENCH_ONLY is `{only}`: use create, expiry, routing, chat, cometd, cometd_sweep, scans, httpcb, console, availability, restart, position, postgres, nodes or failover (or leave it unset)"
        );
        std::process::exit(2);
    }
    if runs("create") {
        let seconds = wrk_seconds("create");
        create_table(seconds);
        println!();
        growth_table(seconds);
        println!();
    }
    if runs("postgres") {
        postgres::table(wrk_seconds("postgres"));
        println!();
    }
    if runs("nodes") {
        nodes::table(wrk_seconds("nodes"));
        println!();
    }
    if runs("failover") {
        failover::table();
        println!();
    }
    if runs("expiry") {
        expiry_table();
        println!();
    }
    if runs("routing") {
        routing_table();
        println!();
    }
    if runs("chat") {
        let chats: usize = std::env::var("BENCH_CHATS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000);
        chat::chat_table(chats, 20);
    }
    if runs("cometd") {
        let clients: usize = std::env::var("BENCH_CLIENTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        cometd::cometd_table(clients);
        println!();
    }
    if runs("scans") {
        let stored: u64 = std::env::var("BENCH_STORED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200_000);
        scans::scans_table(stored);
    }
    if runs("httpcb") {
        println!();
        httpcb::httpcb_table();
    }
    if runs("cometd_sweep") {
        let clients: usize = std::env::var("BENCH_SWEEP_CLIENTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000);
        sweep::sweep_table(clients);
    }
    if runs("console") {
        println!();
        let stored: u64 = std::env::var("BENCH_CONSOLE_STORED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        console::console_table(stored);
    }
    if runs("availability") {
        println!();
        let stored: u64 = std::env::var("BENCH_AVAILABILITY_STORED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000);
        availability::availability_table(stored);
    }
    if runs("position") {
        println!();
        let waiting: Vec<u64> = std::env::var("BENCH_POSITION_WAITING")
            .unwrap_or_else(|_| "10000,200000".into())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        position::position_table(&waiting);
    }
    if runs("restart") {
        println!();
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(default)
        };
        restart::restart_table(
            number("BENCH_RESTART_STORED", 1_000_000),
            number("BENCH_RESTART_WAITING", 100_000),
        );
    }
}

/// create-service throughput and latency: callbackd with `[store] sync = "device"` (the
/// default) and with `sync = "os"`, next to the bare endpoint doing the default's durable work
/// (flush, then `fdatasync` of the log).
fn create_table(seconds: u64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    let device_dir = tempfile::tempdir().expect("temp dir");
    let os_dir = tempfile::tempdir().expect("temp dir");
    let bare_dir = tempfile::tempdir().expect("temp dir");
    let device = runtime.block_on(start_callbackd_keeping_store(device_dir.path(), |c| {
        c.store.sync = SyncMode::Device
    }));
    let os = runtime.block_on(start_callbackd_keeping_store(os_dir.path(), |c| {
        c.store.sync = SyncMode::Os
    }));
    let (bare_addr, bare_syncs, stop_bare) = runtime.block_on(start_bare(bare_dir.path()));

    println!("create-service, urlencoded, durable acknowledgement ({seconds} s of wrk per cell); syncs/s: fdatasync calls per second (os: sled flushes, which end in sync_file_range)");
    println!();
    println!("| clients | bare req/s | bare p50 | bare p99 | bare syncs/s | device req/s | device p50 | device p99 | device syncs/s | device / bare | os req/s | os p50 | os p99 | os flushes/s | os / bare |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let script = write_script();
    let create_url =
        |addr: SocketAddr| format!("http://{addr}/genesys/1/service/callback/chat-delay");
    for (cell, clients) in [1u32, 16, 64].into_iter().enumerate() {
        let bare_url = format!("http://{bare_addr}/bare");
        let targets = [
            (bare_url.clone(), Counter::Bare(&bare_syncs)),
            (create_url(device.addr), Counter::Store(&device.store, true)),
            (create_url(os.addr), Counter::Store(&os.store, false)),
        ];
        for (url, _) in &targets {
            wrk(url, &script, clients, 1);
        }
        // Each run starts with no dirty pages left by the others (the kernel writing them
        // back would slow the next one's flushes), and the order rotates between cells.
        let mut runs: [Option<(Run, f64)>; 3] = [None, None, None];
        for k in 0..targets.len() {
            let i = (k + cell) % targets.len();
            let (url, counter) = &targets[i];
            settle();
            let before = counter.read();
            let started = Instant::now();
            let run = wrk(url, &script, clients, seconds);
            let per_second = (counter.read() - before) as f64 / started.elapsed().as_secs_f64();
            runs[i] = Some((run, per_second));
        }
        let [Some((bare, bare_sps)), Some((dev, dev_sps)), Some((osr, os_fps))] = runs else {
            unreachable!("every target ran")
        };
        println!(
            "| {clients} | {:.0} | {} | {} | {bare_sps:.0} | {:.0} | {} | {} | {dev_sps:.0} | {:.2} | {:.0} | {} | {} | {os_fps:.0} | {:.2} |",
            bare.rps,
            ms(bare.p50),
            ms(bare.p99),
            dev.rps,
            ms(dev.p50),
            ms(dev.p99),
            dev.rps / bare.rps,
            osr.rps,
            ms(osr.p50),
            ms(osr.p99),
            osr.rps / bare.rps
        );
        for (name, run) in [("bare", &bare), ("device", &dev), ("os", &osr)] {
            if run.errors > 0 {
                println!(
                    "  ! {name} at {clients} clients: {} non-2xx or socket errors",
                    run.errors
                );
            }
        }
    }
    let _ = device.stop.send(());
    let _ = os.stop.send(());
    let _ = stop_bare.send(());
}

/// The create rate as the database grows: callbackd (the default `sync = "device"`) on an
/// empty database and on the restart table's 1,000,000 stored services (100,000 of them
/// waiting in a queue the router restores; built once and cached under
/// `target/bench-restart/`, see `callbackd/restart.rs`), driven by the same wrk runs one after
/// the other, after `sync`, the order rotating per row. The creates of each run stay in the
/// cached database (a few tens of thousands on top of the million).
fn growth_table(seconds: u64) {
    const STORED: u64 = 1_000_000;
    const WAITING: u64 = 100_000;
    let big_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-restart");
    let fill = restart::cached_or_built(&big_dir, STORED, WAITING);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let empty_dir = tempfile::tempdir().expect("temp dir");
    let empty = runtime.block_on(start_callbackd_keeping_store(empty_dir.path(), |_| {}));
    let opened = Instant::now();
    let big = runtime.block_on(start_callbackd_keeping_store(&big_dir, |_| {}));
    let open_time = opened.elapsed();
    let on_disk = big.store.size_on_disk().unwrap_or(0) as f64 / (1024.0 * 1024.0);

    println!(
        "create rate as the database grows: callbackd (sync = \"device\") on an empty database \
         and on {STORED} stored services ({WAITING} waiting; {fill}; {on_disk:.0} MiB on disk, \
         started in {:.1} s), {seconds} s of wrk per cell",
        open_time.as_secs_f64()
    );
    println!();
    println!("| clients | empty creates/s | empty p50 | empty p99 | 1M creates/s | 1M p50 | 1M p99 | 1M / empty |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let script = write_script();
    let url = |addr: SocketAddr| format!("http://{addr}/genesys/1/service/callback/chat-delay");
    let targets = [url(empty.addr), url(big.addr)];
    for (cell, clients) in [1u32, 16, 64].into_iter().enumerate() {
        for target in &targets {
            wrk(target, &script, clients, 1);
        }
        let mut runs: [Option<Run>; 2] = [None, None];
        for k in 0..targets.len() {
            let i = (k + cell) % targets.len();
            settle();
            runs[i] = Some(wrk(&targets[i], &script, clients, seconds));
        }
        let [Some(small), Some(large)] = runs else {
            unreachable!("both ran")
        };
        println!(
            "| {clients} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2} |",
            small.rps,
            ms(small.p50),
            ms(small.p99),
            large.rps,
            ms(large.p50),
            ms(large.p99),
            large.rps / small.rps
        );
        for (name, run) in [("empty", &small), ("1M", &large)] {
            if run.errors > 0 {
                println!(
                    "  ! {name} at {clients} clients: {} non-2xx or socket errors",
                    run.errors
                );
            }
        }
    }
    let _ = empty.stop.send(());
    let _ = big.stop.send(());
}

/// Where a create-table column's syncs per second come from.
enum Counter<'a> {
    /// The bare endpoint's fdatasync count.
    Bare(&'a Arc<AtomicU64>),
    /// callbackd's store: device syncs (`true`) or flushes (`false`).
    Store(&'a Store, bool),
}

impl Counter<'_> {
    fn read(&self) -> u64 {
        match self {
            Counter::Bare(count) => count.load(Ordering::Relaxed),
            Counter::Store(store, true) => store.sync_counts().1,
            Counter::Store(store, false) => store.sync_counts().0,
        }
    }
}

/// A callbackd started in-process by the benchmark.
struct Started {
    addr: SocketAddr,
    /// Its store, for the commit counters.
    store: Store,
    stop: oneshot::Sender<()>,
    /// The server's task, which ends once it has stopped.
    task: tokio::task::JoinHandle<()>,
}

impl Started {
    /// Stops the server and waits until it has (its tasks must not outlive the runtime).
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts callbackd in-process on a free port, after `adjust` changed the configuration.
async fn start_callbackd_with(
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut Config),
) -> (SocketAddr, oneshot::Sender<()>) {
    let started = start_callbackd_keeping_store(dir, adjust).await;
    (started.addr, started.stop)
}

/// The configuration every benchmark starts callbackd with: port 0, the data in `dir`, the
/// demo's services and agents from the checkout, the bench's admin token.
fn bench_config(dir: &std::path::Path) -> Config {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        services_file: callbackd::config::SeedFile::File(root.join("data/services.toml")),
        agents_file: callbackd::config::SeedFile::File(root.join("data/agents.toml")),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..Config::default()
    }
}

/// Like [`start_callbackd_with`], keeping a handle on the store.
async fn start_callbackd_keeping_store(
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut Config),
) -> Started {
    let mut config = bench_config(dir);
    adjust(&mut config);
    let app = App::build(config).await.expect("callbackd builds");
    let addr = app.local_addr();
    let store = app.state().expect("a sled node is active").store.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    Started {
        addr,
        store,
        stop: tx,
        task,
    }
}

/// The bare endpoint: parse the form, insert record + expiry index, group-commit (flush, then
/// fdatasync of the log, as callbackd's default does), answer. Returns the fdatasync count.
async fn start_bare(dir: &std::path::Path) -> (SocketAddr, Arc<AtomicU64>, oneshot::Sender<()>) {
    let db = sled::Config::new().path(dir).open().expect("sled opens");
    let records = db.open_tree("records").unwrap();
    let index = db.open_tree("by_expiry").unwrap();
    let log = std::fs::File::open(dir.join("db")).expect("sled's log");
    let committer = BareCommitter::start(db.clone(), log);
    let syncs = committer.syncs.clone();
    let route = warp::post()
        .and(warp::path("bare"))
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::form::<Vec<(String, String)>>())
        .then(move |fields: Vec<(String, String)>| {
            let records = records.clone();
            let index = index.clone();
            let committer = committer.clone();
            async move {
                let id = uuid::Uuid::new_v4().to_string();
                let map: BTreeMap<String, String> = fields.into_iter().collect();
                let value = bincode::serde::encode_to_vec(&map, bincode::config::standard())
                    .expect("encodes");
                let expire = (Timestamp::from_millis(now_millis()).plus_secs(86_400)).as_millis();
                let mut key = expire.to_be_bytes().to_vec();
                key.extend_from_slice(id.as_bytes());
                (&records, &index)
                    .transaction(|(r, i)| {
                        r.insert(id.as_bytes(), value.as_slice())?;
                        i.insert(key.as_slice(), &[])?;
                        Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                    })
                    .expect("transaction");
                committer.wait().await;
                warp::reply::json(&serde_json::json!({ "_id": id }))
            }
        });
    let listener = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(4096).unwrap()
    };
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(
        warp::serve(route)
            .incoming(listener)
            .graceful(async {
                let _ = rx.await;
            })
            .run(),
    );
    (addr, syncs, tx)
}

use sled::Transactional;

/// The same group-commit pattern as callbackd's store: one thread, one flush and one
/// fdatasync of the log per batch.
#[derive(Clone)]
struct BareCommitter {
    queue: mpsc::Sender<oneshot::Sender<()>>,
    /// fdatasync calls made.
    syncs: Arc<AtomicU64>,
    /// Waiters answered (writes made durable), for the writes per flush.
    writes: Arc<AtomicU64>,
}

impl BareCommitter {
    fn start(db: sled::Db, log: std::fs::File) -> Self {
        let (queue, rx) = mpsc::channel::<oneshot::Sender<()>>();
        let syncs = Arc::new(AtomicU64::new(0));
        let writes = Arc::new(AtomicU64::new(0));
        let counted = syncs.clone();
        let written = writes.clone();
        std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                db.flush().expect("flush");
                log.sync_data().expect("fdatasync");
                counted.fetch_add(1, Ordering::Relaxed);
                written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                for waiter in batch {
                    let _ = waiter.send(());
                }
            }
        });
        Self {
            queue,
            syncs,
            writes,
        }
    }

    async fn wait(&self) {
        let (tx, rx) = oneshot::channel();
        self.queue.send(tx).expect("committer alive");
        rx.await.expect("flushed");
    }
}

/// Services written to the database at `db` in transactions of 5,000, then flushed: the bulk
/// load of the console and availability benchmarks (nothing is acknowledged to anyone, so no
/// write waits for the group commit).
fn bulk_load(db: &std::path::Path, records: impl Iterator<Item = ServiceRecord>) {
    const CHUNK: usize = 5_000;
    let store = Store::open(db).expect("store");
    let mut chunk = Vec::with_capacity(CHUNK);
    for record in records {
        chunk.push(record);
        if chunk.len() == CHUNK {
            store
                .insert_services(&chunk)
                .expect("insert")
                .without_waiting();
            chunk.clear();
        }
    }
    store
        .insert_services(&chunk)
        .expect("insert")
        .without_waiting();
    store.flush_blocking().expect("flush");
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The length of each wrk run (`BENCH_SECONDS`, default 5), after checking that wrk, which
/// `table` drives its load with, is installed (exits saying how to install it if not).
fn wrk_seconds(table: &str) -> u64 {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!(
            "the {table} table drives load with wrk: install it with `apt-get install -y wrk`"
        );
        std::process::exit(2);
    }
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn write_script() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = \"{FORM}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\nwrk.headers[\"gms_user\"] = \"bench-user\"\n"
    );
    std::fs::write(file.path(), script).expect("script written");
    file
}

/// Writes every dirty page out (`sync`) so the next run does not pay for the previous one's.
fn settle() {
    if let Err(err) = Command::new("sync").status() {
        eprintln!("sync failed ({err}); figures may carry the previous run's writeback");
    }
}

/// One wrk run's figures.
struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

fn wrk(url: &str, script: &tempfile::NamedTempFile, clients: u32, seconds: u64) -> Run {
    let threads = clients.min(2);
    let output = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{clients}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script.path())
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Run> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut errors = 0;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => rps = value.parse().ok(),
            ["50%", value] => p50 = parse_duration(value),
            ["99%", value] => p99 = parse_duration(value),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    Some(Run {
        rps: rps?,
        p50: p50?,
        p99: p99?,
        errors,
    })
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let value: f64 = number.parse().ok()?;
    let micros = match unit {
        "us" => value,
        "ms" => value * 1_000.0,
        "s" => value * 1_000_000.0,
        "m" => value * 60_000_000.0,
        _ => return None,
    };
    Some(Duration::from_micros(micros as u64))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Expiry cost: removing the due services among many stored is an index range scan.
fn expiry_table() {
    const STORED: u64 = 200_000;
    const DUE: u64 = 10_000;
    let store = Store::open_temporary().expect("store");
    let started = Instant::now();
    for i in 0..STORED {
        // The first DUE expire at t=1000 ms, the others a day later.
        let expire = if i < DUE { 1_000 } else { 86_400_000 };
        store
            .insert_service(&record(i, expire))
            .expect("insert")
            .without_waiting();
    }
    let fill = started.elapsed();
    store.flush_blocking().expect("flush");

    let started = Instant::now();
    let nothing = callbackd::expiry::run_once(&store, Timestamp::from_millis(500))
        .expect("run")
        .len();
    let idle = started.elapsed();
    let started = Instant::now();
    let removed = callbackd::expiry::run_once(&store, Timestamp::from_millis(1_000))
        .expect("run")
        .len();
    let busy = started.elapsed();
    assert_eq!(nothing, 0);
    assert_eq!(removed as u64, DUE);

    println!(
        "expiry ({STORED} services stored, filled in {:.1} s)",
        fill.as_secs_f64()
    );
    println!();
    println!("| run | removed | time |");
    println!("|---|---:|---:|");
    println!("| nothing due | 0 | {} |", ms(idle));
    println!("| {DUE} due | {removed} | {} |", ms(busy));
}

fn record(i: u64, expire_at: u64) -> ServiceRecord {
    let mut record = ServiceRecord::new(
        format!("{i:016x}-bench"),
        "chat-delay",
        Preset::ChatDelayed,
        Timestamp::from_millis(0),
    );
    record.options.insert("_ttl".into(), "86400".into());
    record
        .user_data
        .insert("usr_reason".into(), "billing".into());
    record.owner = Some("bench-user".into());
    record.customer_number = Some(format!("{}", 4_000_000_000 + i));
    record.expire_at = Timestamp::from_millis(expire_at);
    record
}

// ---- routing: the router core, in-process ----

/// Agents in the simulated contact center.
const ROUTING_AGENTS: usize = 200;
/// Services queued in the routing run, and waiting in the position run.
const ROUTING_SERVICES: usize = 10_000;
/// Check-queue-position calls measured, spread over the queue.
const POSITION_CALLS: usize = 1_000;
/// The agent groups; every agent has one of them first, so every group has members.
const GROUPS: [&str; 10] = [
    "Billing",
    "Support",
    "Sales",
    "Loans",
    "Cards",
    "Mortgages",
    "Fraud",
    "Retention",
    "Tech",
    "Premium",
];
/// The skill-expression targets some steps use (a contact center configures a handful).
const SKILL_TARGETS: [&str; 4] = [
    "?:English>=7@StatServer.GA",
    "?:English>=5&Loans>=3@StatServer.GA",
    "?:Spanish>=4|Tech>=8@StatServer.GA",
    "?:!(Tech>=5)&English>=3@StatServer.GA",
];
/// The fixed seed of every random choice: each run routes the same workload.
const SEED: u64 = 0x00ca_11ba_c4d0;
/// Simulated time starts here (ms since the epoch); the router only ever sees this clock.
const EPOCH_MS: u64 = 1_700_000_000_000;

/// The router's clock `ms` milliseconds into the simulation.
fn sim(ms: u64) -> Timestamp {
    Timestamp::from_millis(EPOCH_MS + ms)
}

/// Routing throughput and latency, then check-queue-position cost, as one table.
fn routing_table() {
    let routing = measure_routing();
    let position = measure_position();
    println!(
        "routing, on the router core in-process (single thread, no HTTP, no storage): \
         {ROUTING_AGENTS} agents, {ROUTING_SERVICES} services with 15-step `_target` lists \
         queued at 1000/s of simulated time"
    );
    println!();
    println!("| measured | calls | decisions | decisions/s | p50 | p99 | keeps up with 1000 services/s |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    let per_second = routing.decisions as f64 / routing.busy.as_secs_f64();
    println!(
        "| `handle` (queued, ticks, agent ready, started, ended) | {} | {} | {per_second:.0} | {} | {} | {} |",
        routing.latencies.len(),
        routing.decisions,
        micros(percentile(&routing.latencies, 0.50)),
        micros(percentile(&routing.latencies, 0.99)),
        if per_second >= 1000.0 { "yes" } else { "no" }
    );
    println!(
        "| `position` + `eta_secs`, {} waiting in one queue | {} | - | - | {} | {} | - |",
        position.waiting,
        position.latencies.len(),
        micros(percentile(&position.latencies, 0.50)),
        micros(percentile(&position.latencies, 0.99)),
    );
    println!(
        "  all {} routed by {:.0} s of simulated time (at most {} waiting at once; {} steps \
         timed out, {} skipped by their statistic), {:.2} s of wall time spent in `handle`",
        routing.decisions,
        routing.simulated.as_secs_f64(),
        routing.peak_waiting,
        routing.steps_timed_out,
        routing.steps_skipped,
        routing.busy.as_secs_f64()
    );
}

/// What the routing run measured.
struct RoutingRun {
    /// Wall time of every `handle` call, sorted.
    latencies: Vec<Duration>,
    /// Reservations made (`Effect::Reserved`).
    decisions: usize,
    /// Wall time spent inside `handle`, all calls together.
    busy: Duration,
    /// Simulated time from the first arrival to the last reservation.
    simulated: Duration,
    /// The most services waiting at once.
    peak_waiting: usize,
    /// Steps that ended on their timeout, and steps skipped by their statistic check.
    steps_timed_out: usize,
    steps_skipped: usize,
}

/// Something the simulation makes happen at a simulated time, outside the router.
#[derive(Debug)]
enum Pending {
    /// Service `n` is queued.
    Arrive(usize),
    /// Agent `n` becomes ready.
    Ready(usize),
    /// The customer confirms: the reservation becomes an interaction.
    Start { service: String, agent: String },
    /// The interaction is over.
    End { service: String, agent: String },
}

/// The simulation's future events in time order (ties in the order they were added).
#[derive(Default)]
struct Agenda {
    events: BTreeMap<(u64, u64), Pending>,
    added: u64,
}

impl Agenda {
    fn push(&mut self, at_ms: u64, pending: Pending) {
        self.events.insert((at_ms, self.added), pending);
        self.added += 1;
    }

    fn next_at(&self) -> Option<u64> {
        self.events.keys().next().map(|(at, _)| *at)
    }

    fn pop(&mut self) -> Option<(u64, Pending)> {
        self.events
            .pop_first()
            .map(|((at, _), pending)| (at, pending))
    }
}

/// Routing throughput: what the router task would do, minus the task, HTTP and storage.
///
/// 200 agents log in not ready at t=0 and become ready over the first 10 s; services arrive
/// one per simulated ms (1,000/s) for 10 s, so a backlog builds up and walks its target
/// steps (timers fire through `Event::Tick` at `next_wakeup`, as the task sends them). Every
/// reservation is confirmed 1-3 s later (`Started`) and ends 10-60 s after that (`Ended`),
/// freeing the agent for the next service, until all 10,000 are routed. Building the
/// services (parsing `_target`) happens before, outside the measured calls.
fn measure_routing() -> RoutingRun {
    let mut simulation = Simulation::new();
    simulation.run();
    let Simulation {
        latencies: mut sorted,
        decisions,
        timed_out,
        last_decision_ms,
        peak_waiting,
        steps_timed_out,
        steps_skipped,
        ..
    } = simulation;
    assert_eq!(timed_out, 0, "no service may reach its `_urs_queued_ttl`");
    assert_eq!(decisions, ROUTING_SERVICES, "every service is routed once");
    let busy = sorted.iter().sum();
    sorted.sort_unstable();
    RoutingRun {
        latencies: sorted,
        decisions,
        busy,
        simulated: Duration::from_millis(last_decision_ms),
        peak_waiting,
        steps_timed_out,
        steps_skipped,
    }
}

/// The contact center around the router: the agenda of outside events, and what came out.
struct Simulation {
    router: Router,
    agenda: Agenda,
    agents: Vec<Agent>,
    /// Built before the run; each is taken when it arrives.
    services: Vec<Option<QueuedService>>,
    rng: StdRng,
    /// Wall time of every `handle` call, in call order.
    latencies: Vec<Duration>,
    decisions: usize,
    timed_out: usize,
    last_decision_ms: u64,
    waiting: usize,
    peak_waiting: usize,
    steps_timed_out: usize,
    steps_skipped: usize,
}

impl Simulation {
    /// The agents (logged in, not ready) and the services, built from the fixed seed, with
    /// every arrival and every agent becoming ready on the agenda.
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(SEED);
        let agents = bench_agents(&mut rng);
        let services = (0..ROUTING_SERVICES)
            .map(|n| Some(bench_service(n, None, &mut rng)))
            .collect();
        let mut agenda = Agenda::default();
        for n in 0..agents.len() {
            agenda.push(n as u64 * 50, Pending::Ready(n));
        }
        for n in 0..ROUTING_SERVICES {
            agenda.push(n as u64, Pending::Arrive(n));
        }
        let mut router = Router::new();
        for agent in &agents {
            router.handle(Event::AgentUpdated(agent.clone()), sim(0));
        }
        Self {
            router,
            agenda,
            agents,
            services,
            rng,
            latencies: Vec::with_capacity(20 * ROUTING_SERVICES),
            decisions: 0,
            timed_out: 0,
            last_decision_ms: 0,
            waiting: 0,
            peak_waiting: 0,
            steps_timed_out: 0,
            steps_skipped: 0,
        }
    }

    /// Feeds the router until nothing is left to happen, timing every `handle` call.
    fn run(&mut self) {
        while let Some((now, event)) = self.next_event() {
            if matches!(event, Event::Queued(_)) {
                self.waiting += 1;
                self.peak_waiting = self.peak_waiting.max(self.waiting);
            }
            let started = Instant::now();
            let effects = self.router.handle(event, sim(now));
            self.latencies.push(started.elapsed());
            self.apply(effects, now);
        }
    }

    /// The next thing to tell the router, and when: a timer due no later than the next
    /// outside event is ticked first, at its time, as the router task does.
    fn next_event(&mut self) -> Option<(u64, Event)> {
        let wake = self
            .router
            .next_wakeup()
            .map(|at| at.as_millis() - EPOCH_MS);
        match (wake, self.agenda.next_at()) {
            (None, None) => None,
            (Some(wake), next) if next.is_none_or(|at| wake <= at) => Some((wake, Event::Tick)),
            _ => {
                let (now, pending) = self.agenda.pop()?;
                Some((now, self.outside_event(pending, now)))
            }
        }
    }

    /// The router event for an outside event; a confirmed interaction is given its end.
    fn outside_event(&mut self, pending: Pending, now: u64) -> Event {
        match pending {
            Pending::Arrive(n) => {
                Event::Queued(self.services[n].take().expect("each service arrives once"))
            }
            Pending::Ready(n) => {
                let mut agent = self.agents[n].clone();
                agent.state = AgentState::Ready;
                Event::AgentUpdated(agent)
            }
            Pending::Start { service, agent } => {
                let end = now + self.rng.random_range(10_000..=60_000);
                let ending = Pending::End {
                    service: service.clone(),
                    agent: agent.clone(),
                };
                self.agenda.push(end, ending);
                Event::Started { service, agent }
            }
            Pending::End { service, agent } => Event::Ended { service, agent },
        }
    }

    /// Counts the router's decisions; a reservation is confirmed 1-3 s later.
    fn apply(&mut self, effects: Vec<Effect>, now: u64) {
        for effect in effects {
            match effect {
                Effect::Reserved { service, agent } => {
                    self.decisions += 1;
                    self.waiting -= 1;
                    self.last_decision_ms = now;
                    let confirm = now + self.rng.random_range(1_000..=3_000);
                    self.agenda.push(confirm, Pending::Start { service, agent });
                }
                Effect::QueueTimedOut { .. } => {
                    self.timed_out += 1;
                    self.waiting -= 1;
                }
                Effect::History { event, .. } => match event.kind {
                    RoutingEventKind::TimedOut => self.steps_timed_out += 1,
                    RoutingEventKind::Skipped { .. } => self.steps_skipped += 1,
                    _ => {}
                },
                Effect::Requeued { .. } => self.waiting += 1,
            }
        }
    }
}

/// What the check-queue-position run measured.
struct PositionRun {
    /// Wall time of every `position` + `eta_secs` pair, sorted.
    latencies: Vec<Duration>,
    /// Services waiting in the queue when asked.
    waiting: usize,
}

/// The cost of one check-queue-position: `position` then `eta_secs`, as `app::queues` asks
/// them, for services spread from the head to the tail of one virtual queue of 10,000.
///
/// The first services take the 10 agents that are ready (one per group), so the queue has
/// departures and `eta_secs` computes an estimate instead of answering "n/a"; those agents
/// stay reserved, so everything queued after them waits.
fn measure_position() -> PositionRun {
    const QUEUE: &str = "VQ_Position";
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut router = Router::new();
    for (n, mut agent) in bench_agents(&mut rng).into_iter().enumerate() {
        if n < GROUPS.len() {
            agent.state = AgentState::Ready;
        }
        router.handle(Event::AgentUpdated(agent), sim(0));
    }
    let mut waiting: Vec<String> = Vec::with_capacity(ROUTING_SERVICES);
    let mut n = 0;
    while waiting.len() < ROUTING_SERVICES {
        let service = bench_service(n, Some(QUEUE), &mut rng);
        let id = service.id.clone();
        let effects = router.handle(Event::Queued(service), sim(n as u64));
        if !effects.iter().any(|e| matches!(e, Effect::Reserved { .. })) {
            waiting.push(id);
        }
        n += 1;
    }
    let now = sim(n as u64);
    let asked: Vec<&String> = waiting
        .iter()
        .step_by(ROUTING_SERVICES / POSITION_CALLS)
        .collect();
    let check = |id: &str| {
        let (position, total) = router.position(id, now).expect("the service is waiting");
        (position, total, router.eta_secs(id, now))
    };
    // Once unmeasured, to check the answers and warm the caches.
    for id in &asked {
        let (_, total, eta) = check(id);
        assert_eq!(
            total, ROUTING_SERVICES,
            "everything queued after the agents waits"
        );
        assert!(eta.is_some(), "the queue has departures, so an ETA");
    }
    let mut latencies: Vec<Duration> = asked
        .iter()
        .map(|id| {
            let started = Instant::now();
            std::hint::black_box(check(id));
            started.elapsed()
        })
        .collect();
    latencies.sort_unstable();
    PositionRun {
        latencies,
        waiting: ROUTING_SERVICES,
    }
}

/// 200 agents, logged in and not ready: each in one of the groups (round robin) and maybe a
/// second, with English and some of Spanish, Loans and Tech, 2 chats and 1 voice at once.
fn bench_agents(rng: &mut StdRng) -> Vec<Agent> {
    (0..ROUTING_AGENTS)
        .map(|n| {
            let mut groups = vec![GROUPS[n % GROUPS.len()].to_string()];
            if rng.random_bool(0.5) {
                let second = GROUPS[rng.random_range(0..GROUPS.len())].to_string();
                if !groups.contains(&second) {
                    groups.push(second);
                }
            }
            let mut skills = BTreeMap::from([("English".to_string(), rng.random_range(1..=10))]);
            for (skill, share) in [("Spanish", 0.4), ("Loans", 0.3), ("Tech", 0.3)] {
                if rng.random_bool(share) {
                    skills.insert(skill.to_string(), rng.random_range(1..=10));
                }
            }
            let config = AgentConfig {
                id: format!("agent-{n:03}"),
                name: format!("Agent {n}"),
                groups,
                place: Some(format!("place_{n:03}")),
                place_groups: vec![format!("Floor{}", n % 4)],
                skills,
                capacity: BTreeMap::from([("chat".into(), 2), ("voice".into(), 1)]),
                auto_answer: false,
            };
            let mut agent = Agent::new(config, sim(0));
            agent.state = AgentState::NotReady;
            agent
        })
        .collect()
}

/// Service `n`, queued at `n` ms: 70% chat, 30% voice; in the virtual queue of its home group
/// unless `queue` is given; 80% default priority, 10% a fixed higher one, 10% growing with
/// time; three hours to wait (more than the backlog takes to drain).
fn bench_service(n: usize, queue: Option<&str>, rng: &mut StdRng) -> QueuedService {
    let home = GROUPS[rng.random_range(0..GROUPS.len())];
    let media = if rng.random_bool(0.7) {
        "chat"
    } else {
        "voice"
    };
    let priority = match rng.random_range(0..10) {
        0 => Priority {
            base: 10,
            ..Priority::default()
        },
        1 => Priority {
            base: 0,
            increment: 2,
            interval_secs: 30,
        },
        _ => Priority::default(),
    };
    QueuedService {
        id: format!("service-{n:05}"),
        virtual_queue: queue.map_or_else(|| format!("VQ_{home}"), str::to_owned),
        media: media.into(),
        targets: bench_targets(home, rng),
        queued_at: sim(n as u64),
        deadline: sim(n as u64).plus_secs(3 * 3600),
        priority,
        progress: None,
        entering: false,
    }
}

/// A 15-step `_target` list: the home group first and last; in between mostly groups, some
/// skill expressions, a fifth of the steps with a statistic check (skip when nobody is ready,
/// or when many already wait); timeouts of 5-60 s, `clear` true on a third of the steps.
fn bench_targets(home: &str, rng: &mut StdRng) -> TargetList {
    let group = |name: &str| format!("{name}@StatServer.GA");
    let mut steps = Vec::with_capacity(15);
    for index in 0..15 {
        let target = match index {
            0 | 14 => group(home),
            _ if rng.random_bool(0.2) => {
                SKILL_TARGETS[rng.random_range(0..SKILL_TARGETS.len())].to_string()
            }
            _ => group(GROUPS[rng.random_range(0..GROUPS.len())]),
        };
        let mut step = serde_json::json!({ "target": target });
        if index < 14 {
            step["timeout"] = rng.random_range(5..=60).into();
            step["clear"] = rng.random_bool(1.0 / 3.0).into();
        }
        if index > 0 && rng.random_bool(0.2) {
            let (statistic, operator, value) = if rng.random_bool(0.5) {
                ("RStatAgentsReady", "<", 1)
            } else {
                ("StatCallsWaiting", ">", 200)
            };
            step["stat_to_check"] = statistic.into();
            step["stat_operator"] = operator.into();
            step["stat_value"] = value.into();
        }
        steps.push(step);
    }
    let list = serde_json::Value::Array(steps).to_string();
    TargetList::parse(&list).unwrap_or_else(|e| panic!("bench `_target` {list}: {e}"))
}

/// CPU time (user and system) used so far by process `pid` (`"self"` for this one), in clock
/// ticks (1/100 s), from `/proc/<pid>/stat`.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum()
}

/// The nearest-rank percentile `p` (0-1) of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
