//! The project's benchmark: prints a table of figures measured side by side in one run.
//!
//! Run with `cargo bench --bench callbackd` (needs `wrk`: `apt-get install -y wrk`).
//!
//! create-service: `wrk` POSTs the same urlencoded form to two servers in this process, at 1,
//! 16 and 64 connections: callbackd's `POST /genesys/1/service/callback/chat-delay` (durable
//! acknowledgement), and a bare warp endpoint that parses the same form, inserts a record
//! and an expiry index entry into sled and acknowledges through the same kind of group commit.
//! The ratio callbackd / bare is the figure that matters on a shared, noisy machine. Every
//! measured run starts after `sync`, and which server goes first alternates per row.
//!
//! expiry: removes the services due among many stored, by index range scan.
//!
//! Set `BENCH_SECONDS` to change the length of each wrk run (default 5), and `BENCH_ONLY` to
//! `create` or `expiry` to run one table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use callbackd::config::Config;
use callbackd::domain::options::Preset;
use callbackd::domain::service::ServiceRecord;
use callbackd::domain::time::Timestamp;
use callbackd::store::Store;
use callbackd::App;
use tokio::sync::oneshot;
use warp::Filter;

const FORM: &str = "_customer_number=4082652649&usr_customer_name=Bob+Markel&usr_reason=billing+question&_device_os=comet&_device_notification_id=b16416334828b1d26ef14f329628b55b";

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("the benchmark drives load with wrk: install it with `apt-get install -y wrk`");
        std::process::exit(2);
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "expiry" {
        create_table(seconds);
        println!();
    }
    if only != "create" {
        expiry_table();
    }
}

/// create-service throughput and latency, callbackd next to the bare endpoint.
fn create_table(seconds: u64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    let callbackd_dir = tempfile::tempdir().expect("temp dir");
    let bare_dir = tempfile::tempdir().expect("temp dir");
    let (callbackd_addr, stop_callbackd) = runtime.block_on(start_callbackd(callbackd_dir.path()));
    let (bare_addr, stop_bare) = runtime.block_on(start_bare(bare_dir.path()));

    println!("create-service, urlencoded, durable acknowledgement ({seconds} s of wrk per cell)");
    println!();
    println!("| clients | bare req/s | bare p50 | bare p99 | callbackd req/s | callbackd p50 | callbackd p99 | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let script = write_script();
    for (cell, clients) in [1u32, 16, 64].into_iter().enumerate() {
        let bare_url = format!("http://{bare_addr}/bare");
        let callbackd_url =
            format!("http://{callbackd_addr}/genesys/1/service/callback/chat-delay");
        wrk(&bare_url, &script, clients, 1);
        wrk(&callbackd_url, &script, clients, 1);
        // Each run starts with no dirty pages left by the other (the kernel writing them back
        // would slow the second one's flushes), and the order alternates between cells.
        let measure = |url: &str| {
            settle();
            wrk(url, &script, clients, seconds)
        };
        let (bare, ours) = if cell % 2 == 0 {
            let bare = measure(&bare_url);
            (bare, measure(&callbackd_url))
        } else {
            let ours = measure(&callbackd_url);
            (measure(&bare_url), ours)
        };
        println!(
            "| {clients} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2} |",
            bare.rps,
            ms(bare.p50),
            ms(bare.p99),
            ours.rps,
            ms(ours.p50),
            ms(ours.p99),
            ours.rps / bare.rps
        );
        for (name, run) in [("bare", &bare), ("callbackd", &ours)] {
            if run.errors > 0 {
                println!(
                    "  ! {name} at {clients} clients: {} non-2xx or socket errors",
                    run.errors
                );
            }
        }
    }
    let _ = stop_callbackd.send(());
    let _ = stop_bare.send(());
}

/// Starts callbackd in-process on a free port.
async fn start_callbackd(dir: &std::path::Path) -> (SocketAddr, oneshot::Sender<()>) {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        services_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/services.toml"),
        agents_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/agents.toml"),
        admin_token: Some("bench".into()),
        ..Config::default()
    };
    let app = App::build(config).await.expect("callbackd builds");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    (addr, tx)
}

/// The bare endpoint: parse the form, insert record + expiry index, group-commit, answer.
async fn start_bare(dir: &std::path::Path) -> (SocketAddr, oneshot::Sender<()>) {
    let db = sled::Config::new().path(dir).open().expect("sled opens");
    let records = db.open_tree("records").unwrap();
    let index = db.open_tree("by_expiry").unwrap();
    let committer = BareCommitter::start(db.clone());
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
    (addr, tx)
}

use sled::Transactional;

/// The same group-commit pattern as callbackd's store: one thread, one flush per batch.
#[derive(Clone)]
struct BareCommitter {
    queue: mpsc::Sender<oneshot::Sender<()>>,
}

impl BareCommitter {
    fn start(db: sled::Db) -> Self {
        let (queue, rx) = mpsc::channel::<oneshot::Sender<()>>();
        std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                db.flush().expect("flush");
                for waiter in batch {
                    let _ = waiter.send(());
                }
            }
        });
        Self { queue }
    }

    async fn wait(&self) {
        let (tx, rx) = oneshot::channel();
        self.queue.send(tx).expect("committer alive");
        rx.await.expect("flushed");
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
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
        store.insert_service(&record(i, expire)).expect("insert");
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
