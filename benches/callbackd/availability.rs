//! availability: `GET /genesys/1/service/callback/{name}/availability` over 30 days of
//! 5-minute buckets (8,640 buckets) with `BENCH_AVAILABILITY_STORED` (default 100,000)
//! scheduled callbacks of that service stored, against callbackd in this process over HTTP
//! (issue 15: p99 under 10 ms).
//!
//! The services are written through the store directly (`Store::insert_services`) into a fresh
//! data directory before callbackd opens it; desired times are spread at random over the 30
//! days after now. The callback service follows an office-hours service open around the clock
//! (so every bucket's opening is checked) and a capacity service giving each bucket of every
//! hour [`PER_BUCKET`] callbacks, so a bucket's room is what its bookings leave: about 11.6 of
//! 20 on average. Requests go one at a time; the first [`WARMUP`] are not measured.

use std::path::Path;
use std::time::{Duration, Instant};

use callbackd::domain::options::Preset;
use callbackd::domain::service::{CallbackState, ServiceRecord, StateChange};
use callbackd::domain::time::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Client;
use serde_json::{json, Value};

use super::{now_millis, percentile, ADMIN_TOKEN};

const DAY_MS: u64 = 86_400_000;
/// The window asked, in days.
const DAYS: u64 = 30;
/// Callbacks each 5-minute bucket takes.
const PER_BUCKET: u32 = 20;
/// Services written per transaction while filling.
/// Requests measured.
const REQUESTS: usize = 200;
/// Requests sent first and not measured.
const WARMUP: usize = 10;
/// The callback service asked.
const SERVICE: &str = "bench-scheduled";

/// Prints the availability table.
pub fn availability_table(stored: u64) {
    let dir = tempfile::tempdir().expect("bench dir");
    let filled = Instant::now();
    fill(&dir.path().join("db"), stored, now_millis());
    let filled = filled.elapsed();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let started = runtime.block_on(super::start_callbackd_keeping_store(dir.path(), |_| {}));
    let base = format!("http://{}", started.addr);
    let client = Client::new();
    runtime.block_on(configure(&client, &base));

    let url = format!(
        "{base}/genesys/1/service/callback/{SERVICE}/availability?number-of-days={DAYS}&max-time-slots=10000"
    );
    let (times, slots, room) = runtime.block_on(measure(&client, &url));

    println!(
        "availability: {DAYS} days of 5-minute buckets ({} buckets, {PER_BUCKET} callbacks each), {stored} scheduled callbacks of the service stored (written in {:.1} s); {REQUESTS} requests one at a time after {WARMUP} unmeasured; the last reply offered {slots} free buckets with {room} places left",
        DAYS * 24 * 12,
        filled.as_secs_f64()
    );
    println!();
    println!("| query | p50 | p99 | max | under 10 ms at p99 |");
    println!("|---|---:|---:|---:|---|");
    let p99 = percentile(&times, 0.99);
    println!(
        "| availability, {DAYS} days, 5-minute buckets | {} | {} | {} | {} |",
        ms(percentile(&times, 0.50)),
        ms(p99),
        ms(*times.last().expect("measured")),
        if p99 < Duration::from_millis(10) {
            "yes"
        } else {
            "no"
        }
    );
    let _ = started.stop.send(());
}

/// Configures the office hours (open around the clock), the capacity ([`PER_BUCKET`] per
/// bucket at every hour) and the callback service following both.
async fn configure(client: &Client, base: &str) {
    let hours: serde_json::Map<String, Value> = (0..24)
        .map(|h| (format!("{h:02}00"), json!(PER_BUCKET)))
        .collect();
    let mut capacity = json!({
        "_timezone": "Europe/Paris",
        "_capacity": "[Mon, Tue, Wed, Thu, Fri, Sat, Sun]",
    });
    for day in 1..=7 {
        capacity[format!("_capacity_{day}")] = json!(json!({ day.to_string(): hours }).to_string());
    }
    for (name, preset, options) in [
        (
            "bench-hours",
            "Office-Hours",
            json!({"_timezone": "Europe/Paris", "_bh_regular1": "Mon-Sun 00:00-24:00"}),
        ),
        ("bench-capacity", "Capacity", capacity),
        (
            SERVICE,
            "Chat-Delayed",
            json!({
                "_target": "Support@StatServer.GA",
                "_business_hours_service": "bench-hours",
                "_capacity_service": "bench-capacity",
                "_request_time_bucket": "5",
            }),
        ),
    ] {
        let response = client
            .put(format!("{base}/genesys/1/admin/services/{name}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "preset": preset, "options": options }))
            .send()
            .await
            .expect("configure");
        let status = response.status();
        assert!(
            status.is_success(),
            "configure {name}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
}

/// The sorted latencies of [`REQUESTS`] availability queries, and the last reply's number of
/// free buckets and places left.
async fn measure(client: &Client, url: &str) -> (Vec<Duration>, usize, u64) {
    let mut times = Vec::with_capacity(REQUESTS);
    let mut last = Value::Null;
    for i in 0..WARMUP + REQUESTS {
        let started = Instant::now();
        let response = client.get(url).send().await.expect("availability");
        assert_eq!(response.status(), 200, "availability answers");
        let body = response.bytes().await.expect("body");
        let elapsed = started.elapsed();
        if i >= WARMUP {
            times.push(elapsed);
        }
        if i + 1 == WARMUP + REQUESTS {
            last = serde_json::from_slice(&body).expect("a JSON reply");
        }
    }
    times.sort();
    let slots = last.as_object().expect("a map of slots");
    let room = slots.values().filter_map(Value::as_u64).sum();
    assert!(
        room < slots.len() as u64 * u64::from(PER_BUCKET),
        "the stored callbacks take places: {room} left in {} buckets",
        slots.len()
    );
    (times, slots.len(), room)
}

/// `stored` SCHEDULED services of [`SERVICE`] with desired times at random in the [`DAYS`]
/// days after `now`.
fn fill(db: &Path, stored: u64, now: u64) {
    let mut rng = StdRng::seed_from_u64(0xa7a1_1ab1e);
    super::bulk_load(
        db,
        (0..stored).map(|i| {
            let desired = now + 60_000 + rng.random_range(0..DAYS * DAY_MS);
            service(i, desired, now, &mut rng)
        }),
    );
}

fn service(i: u64, desired: u64, now: u64, rng: &mut StdRng) -> ServiceRecord {
    let created = Timestamp::from_millis(now);
    let mut record = ServiceRecord::new(
        format!("{:08x}-{:04x}-4000-8000-{:012x}", rng.random::<u32>(), 0, i),
        SERVICE,
        Preset::ChatDelayed,
        created,
    );
    record.desired_time = Timestamp::from_millis(desired);
    record.expire_at = Timestamp::from_millis(desired + 365 * DAY_MS);
    record.customer_number = Some(format!("4155{:06}", rng.random_range(0..1_000_000)));
    record.owner = Some(format!("user-{}", i % 10_000));
    record.state = CallbackState::Scheduled;
    record.state_history = vec![StateChange {
        state: record.state,
        reason: None,
        at: created,
        note: "bench".into(),
    }];
    record
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
