//! httpcb: push latency to a healthy HTTP callback destination, alone and while another
//! destination hangs (accepts TCP, never answers) with [`DEAD_QUEUED`] notifications queued
//! to it (issue 9, item 9: before isolation, 2,000 such notifications delayed another user's
//! push past 40 s).
//!
//! One callbackd in this process, `[httpcb] allow = ["127.0.0.0/8"]` so that it may reach
//! the two loopback receivers, a 5 s POST timeout (the default) and one attempt. Timed: for
//! each of [`PUSHES`] internal notifications to the healthy service, sent one after the
//! other, from the start of the `internal-notification` request (which answers once the
//! notification is durable) to its arrival at the receiver.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use reqwest::Client;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use warp::Filter;

use super::{ms, percentile, start_callbackd_with};

/// Notifications queued to the hanging destination before the timed pushes.
const DEAD_QUEUED: usize = 2000;
/// Timed pushes to the healthy destination, per row.
const PUSHES: usize = 200;

/// Prints the table.
pub fn httpcb_table() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (addr, stop) = start_callbackd_with(dir.path(), |config| {
            config.httpcb.allow = vec!["127.0.0.0/8".parse().expect("network")];
            config.httpcb.attempts = 1;
        })
        .await;
        let client = Client::new();
        let (alive_url, mut arrivals) = receiver().await;
        let dead_url = hanging_receiver().await;
        let alive = service(&client, addr, "bench-alive", &alive_url).await;
        let dead = service(&client, addr, "bench-dead", &dead_url).await;

        println!("httpcb: push latency to a healthy destination ({PUSHES} pushes, one at a time)");
        println!();
        println!("| situation | p50 | p99 | max |");
        println!("|---|---:|---:|---:|");
        let quiet = measure(&client, addr, &alive, &mut arrivals).await;
        row("no other destination", &quiet);

        let started = Instant::now();
        stream::iter(0..DEAD_QUEUED)
            .for_each_concurrent(32, |_| notify(&client, addr, "bench-dead", &dead, "queued"))
            .await;
        let queued_in = started.elapsed();
        let busy = measure(&client, addr, &alive, &mut arrivals).await;
        row(
            &format!(
                "{DEAD_QUEUED} queued to a hanging destination (queued in {})",
                ms(queued_in)
            ),
            &busy,
        );
        let _ = stop.send(());
    });
}

fn row(situation: &str, sorted: &[Duration]) {
    println!(
        "| {situation} | {} | {} | {} |",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        ms(*sorted.last().expect("measured"))
    );
}

/// Sends [`PUSHES`] notifications to `id` one after the other; their latencies, sorted.
async fn measure(
    client: &Client,
    addr: SocketAddr,
    id: &str,
    arrivals: &mut mpsc::UnboundedReceiver<(Instant, Value)>,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(PUSHES);
    for i in 0..PUSHES {
        let text = format!("timed {i}");
        let sent = Instant::now();
        notify(client, addr, "bench-alive", id, &text).await;
        // Other pushes of the service (its creation's) are skipped: only this one counts.
        let arrived = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let (at, body) = arrivals.recv().await.expect("receiver running");
                if body["message"]["_display_message"] == text.as_str() {
                    return at;
                }
            }
        })
        .await
        .expect("the push arrives within 60 s");
        latencies.push(arrived.duration_since(sent));
    }
    latencies.sort();
    latencies
}

/// Creates a chat-delay httpcb service owned by `gms_user`.
async fn service(client: &Client, addr: SocketAddr, gms_user: &str, url: &str) -> String {
    let created: Value = client
        .post(format!(
            "http://{addr}/genesys/1/service/callback/chat-delay"
        ))
        .header("gms_user", gms_user)
        .form(&[
            ("_customer_number", "4082652649"),
            ("_device_os", "httpcb"),
            ("_device_notification_id", url),
        ])
        .send()
        .await
        .expect("create sent")
        .json()
        .await
        .expect("create answers JSON");
    created["_id"].as_str().expect("_id").to_string()
}

/// Sends an internal notification with `text` to service `id`.
async fn notify(client: &Client, addr: SocketAddr, gms_user: &str, id: &str, text: &str) {
    let response = client
        .post(format!(
            "http://{addr}/genesys/1/service/{id}/internal-notification"
        ))
        .header("gms_user", gms_user)
        .form(&[("_display_message", text)])
        .send()
        .await
        .expect("notification sent");
    assert!(
        response.status().is_success(),
        "internal-notification: {}",
        response.status()
    );
}

/// A loopback receiver that reports when each POST arrived, with its JSON body.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(Instant, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let route = warp::post()
        .and(warp::body::json())
        .map(move |body: Value| {
            let _ = tx.send((Instant::now(), body));
            warp::reply()
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}/push"), rx)
}

/// A loopback destination that accepts connections and never answers.
async fn hanging_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let held = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            held.lock().unwrap().push(socket);
        }
    });
    format!("http://{addr}/push")
}
