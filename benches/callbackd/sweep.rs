//! cometd_sweep: how long the server stops answering while it drops many expired CometD
//! clients at once.
//!
//! callbackd runs in this process on its own runtime, with time standing still (a
//! `ManualClock`) while the clients handshake: one handshake per request, 16 clients per
//! `gms_user` (the most the server allows), from a pool of keep-alive connections. Then the
//! clock jumps past `max_interval`, so that the next sweep finds every client expired at once,
//! and probes on another thread (four, each on its own connection) send a `/meta/connect` for
//! an unknown client (it takes the same client-table lock as every CometD request) every
//! millisecond from the clock jump until the table is empty. The figures are the probes'
//! latencies over that window; "stalled" counts probes slower than 10 ms, since one long stall
//! is a handful of samples however long it lasts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callbackd::clock::ManualClock;
use callbackd::cometd::Bayeux;
use callbackd::domain::time::Timestamp;
use callbackd::App;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tokio::sync::oneshot;

use super::{ms, percentile};

/// Clients of one `gms_user` (the server's default `max_clients_per_user`).
const PER_USER: usize = 16;
/// Handshakes in flight at once.
const CONCURRENCY: usize = 64;
/// The bench server's `max_interval_ms`: its sweep runs every third of it.
const MAX_INTERVAL_MS: u64 = 1_500;
/// Time between two probes of one prober.
const PROBE_EVERY: Duration = Duration::from_millis(1);
/// Probers, each on its own connection, so that one stall shows in several samples.
const PROBERS: usize = 4;
/// A probe slower than this counts as stalled.
const STALL: Duration = Duration::from_millis(10);
/// The sweep must be over by then.
const SWEEP_DEADLINE: Duration = Duration::from_secs(120);

/// Prints the cometd_sweep table for `clients` expired clients.
pub fn sweep_table(clients: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000_000));
    let server = tokio::runtime::Runtime::new().expect("runtime");
    let (addr, bayeux, stop) = server.block_on(start(dir.path(), clock.clone(), clients));

    let load = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let created = load.block_on(create(addr, clients));
    let create_time = started.elapsed();
    assert_eq!(
        bayeux.client_count(),
        created,
        "every successful handshake left a client"
    );

    // Every client is now max_interval old: the next sweep removes all of them.
    clock.set(Timestamp::from_millis(
        1_000_000_000 + MAX_INTERVAL_MS * 2 + 1,
    ));
    let run = load.block_on(probe(addr, &bayeux));
    let _ = stop.send(());
    drop(server);

    println!(
        "cometd_sweep: {created} expired CometD clients ({PER_USER} per gms_user) swept at once \
         while {PROBERS} probes each send a /meta/connect for an unknown client every {} ms",
        PROBE_EVERY.as_millis()
    );
    println!();
    println!("| clients | handshakes/s | sweep took | probes | stalled > 10 ms | probe p50 | probe p99 | probe max | p99 < 10 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|");
    let mut sorted = run.latencies.clone();
    sorted.sort();
    let p99 = percentile(&sorted, 0.99);
    println!(
        "| {created} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
        created as f64 / create_time.as_secs_f64(),
        ms(run.swept_in),
        sorted.len(),
        sorted.iter().filter(|d| **d > STALL).count(),
        ms(percentile(&sorted, 0.50)),
        ms(p99),
        ms(sorted.last().copied().unwrap_or_default()),
        if p99 < STALL { "yes" } else { "NO" },
    );
    println!();
}

/// Starts callbackd with a short `max_interval` and room for `clients` clients.
async fn start(
    dir: &std::path::Path,
    clock: ManualClock,
    clients: usize,
) -> (SocketAddr, Bayeux, oneshot::Sender<()>) {
    let mut config = super::bench_config(dir);
    config.cometd.max_interval_ms = MAX_INTERVAL_MS;
    config.cometd.max_clients = clients.max(config.cometd.max_clients);
    let app = App::build_with_clock(config, Arc::new(clock))
        .await
        .expect("callbackd builds");
    let addr = app.local_addr();
    let bayeux = app.state().expect("a sled node is active").bayeux.clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    (addr, bayeux, tx)
}

/// `clients` handshakes, one per request; returns how many succeeded.
async fn create(addr: SocketAddr, clients: usize) -> usize {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let url = format!("http://{addr}/genesys/cometd/handshake");
    let body = json!([{"version":"1.0","channel":"/meta/handshake",
                       "supportedConnectionTypes":["long-polling"],"id":"1"}])
    .to_string();
    stream::iter(0..clients)
        .map(|i| {
            let request = http
                .post(&url)
                .header("Content-Type", "application/json")
                .header("gms_user", format!("sweep-user-{}", i / PER_USER))
                .body(body.clone());
            async move {
                let reply: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
                (reply[0]["successful"] == json!(true)).then_some(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|ok| async move { ok })
        .count()
        .await
}

/// What the probe saw.
struct ProbeRun {
    latencies: Vec<Duration>,
    /// From the clock jump to an empty client table.
    swept_in: Duration,
}

/// Runs [`PROBERS`] probers until the client table is empty (and a little after).
async fn probe(addr: SocketAddr, bayeux: &Bayeux) -> ProbeRun {
    let started = Instant::now();
    let runs = futures_util::future::join_all((0..PROBERS).map(|_| probe_one(addr, bayeux))).await;
    let swept_in = runs.iter().map(|r| r.swept_in).min().unwrap_or_default();
    let _ = started;
    ProbeRun {
        latencies: runs.into_iter().flat_map(|r| r.latencies).collect(),
        swept_in,
    }
}

/// One prober on its own connection.
async fn probe_one(addr: SocketAddr, bayeux: &Bayeux) -> ProbeRun {
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/genesys/cometd/connect");
    let body = json!([{"channel":"/meta/connect","connectionType":"long-polling",
                       "clientId":"no-such-client","id":"1"}])
    .to_string();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut swept_in = None;
    loop {
        let sent = Instant::now();
        let reply = http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("gms_user", "probe")
            .body(body.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status());
        if let Ok(reply) = reply {
            let _ = reply.bytes().await;
            latencies.push(sent.elapsed());
        }
        if swept_in.is_none() && bayeux.client_count() == 0 {
            swept_in = Some(started.elapsed());
        }
        // Keep probing a little after the table is empty: the last chunk's effects included.
        if let Some(swept) = swept_in {
            if started.elapsed() > swept + Duration::from_millis(200) {
                break;
            }
        }
        assert!(
            started.elapsed() < SWEEP_DEADLINE,
            "the sweep did not end within {SWEEP_DEADLINE:?}"
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
    ProbeRun {
        latencies,
        swept_in: swept_in.unwrap_or_default(),
    }
}
