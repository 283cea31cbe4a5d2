//! scans: the per-service callback query `GET /genesys/1/service/callback/chat-delay` asked by
//! a `gms_user` that owns nothing, with `BENCH_STORED` (default 200,000) services of another
//! user stored, against callbackd in this process.
//!
//! "before" is the query as it was answered before the `by_owner` index (issue 9, item 12):
//! read every `chat-delay` service through the state index and filter on the owner, run here
//! on the same store (`Store::services_in_states`, what the old handler called). "now" is the
//! HTTP request itself. Then the latency of creates (one at a time, durable) alone, while 8
//! clients loop the query as an unknown user, and while 8 threads loop the old scan.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callbackd::domain::service::{CallbackState, ServiceRecord};
use callbackd::store::Store;
use reqwest::Client;

use super::percentile;

const SERVICE: &str = "chat-delay";
const OWNER: &str = "bench-user";
const NOBODY: &str = "nobody-at-all";
/// Creates measured per row.
const CREATES: usize = 200;
/// Parallel askers in the loaded rows.
const ASKERS: usize = 8;

/// Prints the scans table.
pub fn scans_table(stored: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    fill(&dir.path().join("db"), stored);
    let fill = started.elapsed();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (addr, app_store, stop) = runtime.block_on(start_callbackd_with_store(dir.path()));
    let base = format!("http://{addr}/genesys/1/service/callback/{SERVICE}");
    let client = Client::new();

    // The old way, on the same store: every chat-delay service read and filtered.
    let mut before = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let found = old_scan(&app_store);
        before.push(started.elapsed());
        assert_eq!(found, 0);
    }
    before.sort();

    let now = runtime.block_on(async {
        let mut times = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            let body = client
                .get(&base)
                .header("gms_user", NOBODY)
                .send()
                .await
                .expect("query")
                .text()
                .await
                .expect("body");
            times.push(started.elapsed());
            assert_eq!(body, "[]");
        }
        times.sort();
        times
    });

    let alone = runtime.block_on(creates(&client, &base));
    let stop_askers = Arc::new(AtomicBool::new(false));
    let askers: Vec<_> = (0..ASKERS)
        .map(|_| {
            let (client, base, stop) = (client.clone(), base.clone(), stop_askers.clone());
            runtime.spawn(async move {
                let mut asked = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = client.get(&base).header("gms_user", NOBODY).send().await;
                    asked += 1;
                }
                asked
            })
        })
        .collect();
    let with_queries = runtime.block_on(creates(&client, &base));
    stop_askers.store(true, Ordering::Relaxed);
    let asked: u64 = runtime.block_on(async {
        let mut total = 0;
        for asker in askers {
            total += asker.await.unwrap_or(0);
        }
        total
    });

    let stop_scanners = Arc::new(AtomicBool::new(false));
    let scanners: Vec<_> = (0..ASKERS)
        .map(|_| {
            let (store, stop) = (app_store.clone(), stop_scanners.clone());
            std::thread::spawn(move || {
                let mut scans = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    old_scan(&store);
                    scans += 1;
                }
                scans
            })
        })
        .collect();
    let with_old_scans = runtime.block_on(creates(&client, &base));
    stop_scanners.store(true, Ordering::Relaxed);
    let scanned: u64 = scanners.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let _ = stop.send(());

    println!(
        "scans ({stored} services of another user stored, filled in {:.1} s; {CREATES} creates per row, one at a time)",
        fill.as_secs_f64()
    );
    println!();
    println!("| what | p50 | p99 |");
    println!("|---|---:|---:|");
    println!(
        "| per-service query, unknown gms_user, before (full scan, in process) | {} | {} |",
        ms(percentile(&before, 0.50)),
        ms(percentile(&before, 0.99))
    );
    println!(
        "| per-service query, unknown gms_user, now (HTTP, by_owner index) | {} | {} |",
        ms(percentile(&now, 0.50)),
        ms(percentile(&now, 0.99))
    );
    println!(
        "| create, nothing else running | {} | {} |",
        ms(percentile(&alone, 0.50)),
        ms(percentile(&alone, 0.99))
    );
    println!(
        "| create, {ASKERS} clients looping the query now ({asked} answered) | {} | {} |",
        ms(percentile(&with_queries, 0.50)),
        ms(percentile(&with_queries, 0.99))
    );
    println!(
        "| create, {ASKERS} threads looping the old scan ({scanned} done) | {} | {} |",
        ms(percentile(&with_old_scans, 0.50)),
        ms(percentile(&with_old_scans, 0.99))
    );
}

/// `stored` COMPLETED services of [`OWNER`] (completed, so the router restores none of them;
/// the old query read every state), expiring a day from now.
fn fill(db: &std::path::Path, stored: u64) {
    let store = Store::open(db).expect("store");
    let now = callbackd::domain::time::Timestamp::from_millis(super::now_millis());
    for i in 0..stored {
        let mut record = ServiceRecord::new(
            format!("{i:016x}-scan"),
            SERVICE,
            callbackd::domain::options::Preset::ChatDelayed,
            now,
        );
        record.owner = Some(OWNER.into());
        record.customer_number = Some(format!("{}", 4_000_000_000 + i));
        record.state = CallbackState::Completed;
        record.expire_at = now.plus_secs(86_400);
        store
            .insert_service(&record)
            .expect("insert")
            .without_waiting();
    }
    store.flush_blocking().expect("flush");
}

/// The query as answered before the owner index: every service of the name, any state,
/// filtered on the owner.
fn old_scan(store: &Store) -> usize {
    store
        .services_in_states(
            Some(SERVICE),
            &CallbackState::ALL,
            &|r| r.owner.as_deref() == Some(NOBODY),
            1000,
        )
        .expect("scan")
        .len()
}

/// Latencies of [`CREATES`] creates, one after the other.
async fn creates(client: &Client, base: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(CREATES);
    for _ in 0..CREATES {
        let started = Instant::now();
        let response = client
            .post(base)
            .header("gms_user", "creator")
            .form(&[("_customer_number", "5550000")])
            .send()
            .await
            .expect("create");
        assert!(
            response.status().is_success(),
            "create: {}",
            response.status()
        );
        times.push(started.elapsed());
    }
    times.sort();
    times
}

/// Starts callbackd in-process on a free port over `dir`; returns its store as well, for the
/// old scan to run on the same database.
async fn start_callbackd_with_store(
    dir: &std::path::Path,
) -> (
    std::net::SocketAddr,
    Store,
    tokio::sync::oneshot::Sender<()>,
) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = super::bench_config(dir);
    config.agents_file =
        callbackd::config::SeedFile::File(root.join("tests/api/fixtures/agents.toml"));
    let app = callbackd::App::build(config)
        .await
        .expect("callbackd builds");
    let addr = app.local_addr();
    let store = app.state().expect("a sled node is active").store.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    (addr, store, tx)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
