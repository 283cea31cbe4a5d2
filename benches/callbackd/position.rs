//! position: `POST /genesys/1/service/{id}/check-queue-position` over HTTP, one request at a
//! time for random waiting services, with 10,000 and with 200,000 services QUEUED in one
//! virtual queue (issue 13: p99 under 1 ms at both, a position found without walking the
//! queue), against callbackd in this process.
//!
//! The services are written through the store directly into a fresh data directory before
//! callbackd opens it (the restart table's services: one queue, a target no agent serves),
//! so the router restores all of them as waiting when it starts.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Client;

use super::restart::{id, service, OWNER};
use super::{now_millis, percentile};

/// Requests measured per row.
const REQUESTS: usize = 2_000;
/// Requests sent first and not measured.
const WARMUP: usize = 100;

/// Prints the position table, one row per count of waiting services.
pub fn position_table(waiting: &[u64]) {
    println!(
        "check-queue-position over HTTP: {REQUESTS} requests one at a time for random waiting \
         services after {WARMUP} unmeasured; callbackd in this process"
    );
    println!();
    println!("| waiting | p50 | p99 | max | under 1 ms at p99 | positions seen |");
    println!("|---:|---:|---:|---:|---|---|");
    for &count in waiting {
        let dir = tempfile::tempdir().expect("bench dir");
        let now = now_millis();
        super::bulk_load(
            &dir.path().join("db"),
            (0..count).map(|i| service(i, true, now)),
        );
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let started = runtime.block_on(super::start_callbackd_with(dir.path(), |_| {}));
        let base = format!("http://{}", started.0);
        let (times, lowest, highest) = runtime.block_on(measure(&base, count));
        let p99 = percentile(&times, 0.99);
        println!(
            "| {count} | {} | {} | {} | {} | {lowest} to {highest} |",
            ms(percentile(&times, 0.50)),
            ms(p99),
            ms(*times.last().expect("measured")),
            if p99 < Duration::from_millis(1) {
                "yes"
            } else {
                "no"
            }
        );
        let _ = started.1.send(());
        drop(runtime);
    }
}

/// The sorted latencies of [`REQUESTS`] position checks of random waiting services, and the
/// lowest and highest position answered (so the table shows the whole queue was asked).
async fn measure(base: &str, waiting: u64) -> (Vec<Duration>, u64, u64) {
    let client = Client::new();
    let mut rng = StdRng::seed_from_u64(0x9051_7104);
    let mut times = Vec::with_capacity(REQUESTS);
    let (mut lowest, mut highest) = (u64::MAX, 0);
    for i in 0..WARMUP + REQUESTS {
        let url = format!(
            "{base}/genesys/1/service/{}/check-queue-position",
            id(rng.random_range(0..waiting))
        );
        let began = Instant::now();
        let reply = client
            .post(&url)
            .header("gms_user", OWNER)
            .send()
            .await
            .expect("sent");
        let status = reply.status();
        let body: serde_json::Value = reply.json().await.expect("a JSON reply");
        let took = began.elapsed();
        assert!(status.is_success(), "{url}: {status} {body}");
        let position = body["_position"].as_u64().expect("a _position");
        lowest = lowest.min(position);
        highest = highest.max(position);
        if i >= WARMUP {
            times.push(took);
        }
    }
    times.sort();
    (times, lowest, highest)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
