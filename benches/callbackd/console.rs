//! console: the Callbacks page's first page (`GET /admin/callbacks?range=...`, signed in with
//! the admin token as the console allows while no administrator account exists) with
//! `BENCH_CONSOLE_STORED` (default 1,000,000) services stored, against callbackd in this
//! process, for several of GMS's time windows (issue 10: under 200 ms, an index by time).
//!
//! The database is built once through the store directly, in large transactions
//! (`Store::insert_services`), and kept under `target/bench-console/`: a later run reuses it
//! while it is less than [`CACHE_HOURS`] old and holds as many services (delete the folder to
//! build it again). Desired times are spread evenly over the 60 days before the build and the
//! 30 days after it; past services are COMPLETED, future ones SCHEDULED; all expire a year
//! after their desired time, so expiry removes none of them while the bench runs.
//!
//! "walk" is the count as it was made before the count index (issue 10's last blocker): one
//! pass over every time-index entry of the window, run here in process on the same store (no
//! HTTP, no page rendered: a lower bound of the old page's time). The fixed windows (Custom,
//! Any time) check that the page's "N callbacks found" equals the walk's count; the ones
//! relative to now show both (their edges move between the two clock readings). The store is opened once on its own
//! first, so that the table's title gives its open time and how much of it was counting the
//! time index (the count index's build).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callbackd::domain::options::Preset;
use callbackd::domain::service::{CallbackReason, CallbackState, ServiceRecord, StateChange};
use callbackd::domain::time::Timestamp;
use callbackd::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Client;

use super::{now_millis, percentile, ADMIN_TOKEN};

const DAY_MS: u64 = 86_400_000;
/// How far back the stored desired times go, and how far ahead.
const PAST_DAYS: u64 = 60;
const FUTURE_DAYS: u64 = 30;
/// A cached database older than this is built again (its scheduled services would start).
const CACHE_HOURS: u64 = 6;
/// Services written per transaction while building.
/// Page requests measured per window.
const REQUESTS: usize = 50;
/// Page requests measured for the search (it walks the window).
const SEARCH_REQUESTS: usize = 10;
/// Runs of the walk per window.
const WALK_RUNS: usize = 3;
const SERVICES: [&str; 3] = ["chat-delay", "chat-immediate", "request-chat"];

/// One row of the table: what the page is asked, and the same filter for the in-process walk.
struct Window {
    label: &'static str,
    query: String,
    from: Option<u64>,
    to: Option<u64>,
    states: Vec<CallbackState>,
    services: Vec<String>,
    search: &'static str,
    /// Page requests measured (fewer for the rows that walk the window).
    requests: usize,
}

impl Window {
    fn new(label: &'static str, query: String, from: Option<u64>, to: Option<u64>) -> Self {
        Window {
            label,
            query,
            from,
            to,
            states: Vec::new(),
            services: Vec::new(),
            search: "",
            requests: REQUESTS,
        }
    }
}

/// Prints the console table.
pub fn console_table(stored: u64) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-console");
    let (built_at, fill) = cached_or_built(&dir, stored);

    // The store alone first: its open time is what a restart pays for the count index.
    let opening = Instant::now();
    let (store_open, counted) = {
        let store = Store::open(&db_path(&dir)).expect("store");
        (opening.elapsed(), store.time_counts_built_in())
    };

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let opened = Instant::now();
    let started = runtime.block_on(super::start_callbackd_keeping_store(&dir, |_| {}));
    let (addr, store, stop) = (started.addr, started.store, started.stop);
    let opened = opened.elapsed();
    let base = format!("http://{addr}");
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let cookie = runtime.block_on(sign_in(&client, &base));

    let now = now_millis();
    let midnight = now - now % DAY_MS;
    let custom_start = built_at - 40 * DAY_MS;
    let custom = format!(
        "range=custom&tz=0&start={}&end={}",
        minute(custom_start),
        minute(custom_start + 30 * DAY_MS)
    );
    let last30 = (Some(now - 30 * DAY_MS), Some(now + 1));
    let next30 = (Some(now), Some(now + 30 * DAY_MS));
    let windows = vec![
        Window::new(
            "Last 24 Hours",
            "range=last24h".into(),
            Some(now - DAY_MS),
            Some(now + 1),
        ),
        Window::new(
            "Last 7 Days",
            "range=last7d".into(),
            Some(now - 7 * DAY_MS),
            Some(now + 1),
        ),
        Window::new("Last 30 Days", "range=last30d".into(), last30.0, last30.1),
        Window::new(
            "Today (UTC)",
            "range=today&tz=0".into(),
            Some(midnight),
            Some(midnight + DAY_MS),
        ),
        Window::new(
            "Next 24 Hours",
            "range=next24h".into(),
            Some(now),
            Some(now + DAY_MS),
        ),
        Window::new(
            "Next 7 Days",
            "range=next7d".into(),
            Some(now),
            Some(now + 7 * DAY_MS),
        ),
        Window::new("Next 30 Days", "range=next30d".into(), next30.0, next30.1),
        Window::new(
            "Custom (30 days, 40 to 10 days ago)",
            custom,
            Some(custom_start),
            Some(custom_start + 30 * DAY_MS),
        ),
        Window {
            states: vec![CallbackState::Completed],
            ..Window::new(
                "Last 30 Days, state COMPLETED",
                "range=last30d&state=COMPLETED".into(),
                last30.0,
                last30.1,
            )
        },
        Window {
            states: vec![CallbackState::Queued, CallbackState::Routing],
            ..Window::new(
                "Next 30 Days, states QUEUED + ROUTING (none)",
                "range=next30d&state=QUEUED&state=ROUTING".into(),
                next30.0,
                next30.1,
            )
        },
        Window {
            services: vec!["chat-delay".into()],
            ..Window::new(
                "Last 30 Days, service chat-delay",
                "range=last30d&service=chat-delay".into(),
                last30.0,
                last30.1,
            )
        },
        Window {
            states: vec![CallbackState::Scheduled],
            services: vec!["request-chat".into(), "chat-immediate".into()],
            ..Window::new(
                "Next 30 Days, SCHEDULED, 2 services",
                "range=next30d&state=SCHEDULED&service=request-chat&service=chat-immediate".into(),
                next30.0,
                next30.1,
            )
        },
        Window::new(
            "Last 30 Days, page 1000",
            "range=last30d&page=1000".into(),
            last30.0,
            last30.1,
        ),
        Window::new("Any time (every service)", "range=any".into(), None, None),
        Window {
            search: "41555",
            requests: SEARCH_REQUESTS,
            ..Window::new(
                "Last 30 Days, search 41555 (walks the window)",
                "range=last30d&q=41555".into(),
                last30.0,
                last30.1,
            )
        },
    ];

    println!(
        "console: the Callbacks page (250 rows) with {stored} services stored ({fill}); store opened in {:.2} s, of which counting the time index {:.2} s; callbackd opened and serving in {:.2} s; {REQUESTS} requests per window ({SEARCH_REQUESTS} for the search), one at a time; walk: the count as it was before the count index (one pass over the window's index entries, in process, no page), {WALK_RUNS} runs",
        store_open.as_secs_f64(),
        counted.as_secs_f64(),
        opened.as_secs_f64()
    );
    println!();
    println!("| window | found | walk found | page p50 | page p99 | walk p50 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for window in windows {
        let (found, times) = runtime.block_on(pages(
            &client,
            &base,
            &cookie,
            &window.query,
            window.requests,
        ));
        let mut walks = Vec::new();
        let mut walked = 0;
        for _ in 0..WALK_RUNS {
            let started = Instant::now();
            walked = walk(&store, &window);
            walks.push(started.elapsed());
        }
        walks.sort();
        // A window relative to now moves between the page's clock reading and the walk's
        // (an entry every few seconds crosses its edges): only fixed windows must agree.
        let fixed = window.query.contains("range=custom") || window.query.contains("range=any");
        assert!(
            !fixed || found == walked,
            "{}: the page found {found}, the walk {walked}",
            window.label
        );
        println!(
            "| {} | {found} | {walked} | {} | {} | {} |",
            window.label,
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.99)),
            ms(percentile(&walks, 0.50)),
        );
    }
    let _ = stop.send(());
}

/// The count of `window` as it was made before the count index: one pass over the window's
/// time-index entries, filtered as the page filters them.
fn walk(store: &Store, window: &Window) -> u64 {
    let mut found = 0;
    store
        .visit_by_time(
            window.from.map(Timestamp::from_millis),
            window.to.map(Timestamp::from_millis),
            &mut |s| {
                let kept = (window.states.is_empty() || window.states.contains(&s.state))
                    && (window.services.is_empty()
                        || window.services.iter().any(|n| n == s.service_name))
                    && (window.search.is_empty()
                        || s.id == window.search
                        || s.customer_number.is_some_and(|n| n.contains(window.search)));
                found += u64::from(kept);
                ControlFlow::Continue(())
            },
        )
        .expect("walk");
    found
}

/// The build time of the database in `dir`, reusing it when it is fresh and the right size,
/// and how it was had (for the table's title).
fn cached_or_built(dir: &Path, stored: u64) -> (u64, String) {
    let marker = dir.join("built");
    let now = now_millis();
    let cached = std::fs::read_to_string(&marker).ok().and_then(|text| {
        let (count, at) = text.trim().split_once(' ')?;
        let (count, at): (u64, u64) = (count.parse().ok()?, at.parse().ok()?);
        (count == stored && now.saturating_sub(at) < CACHE_HOURS * 3_600_000).then_some(at)
    });
    if let Some(at) = cached {
        return (
            at,
            format!(
                "database reused from {}, built {} min ago",
                dir.display(),
                (now - at) / 60_000
            ),
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("bench dir");
    let started = Instant::now();
    fill(&db_path(dir), stored, now);
    std::fs::write(&marker, format!("{stored} {now}")).expect("marker");
    (
        now,
        format!(
            "database built in {:.0} s under {}",
            started.elapsed().as_secs_f64(),
            dir.display()
        ),
    )
}

/// Where callbackd keeps its database inside its data directory.
fn db_path(dir: &Path) -> PathBuf {
    dir.join("db")
}

/// `stored` services with desired times spread evenly over [`PAST_DAYS`] before `now` and
/// [`FUTURE_DAYS`] after it.
fn fill(db: &Path, stored: u64, now: u64) {
    let mut rng = StdRng::seed_from_u64(0x0c0_501e);
    let start = now - PAST_DAYS * DAY_MS;
    let step = (PAST_DAYS + FUTURE_DAYS) * DAY_MS / stored.max(1);
    super::bulk_load(
        db,
        (0..stored).map(|i| {
            let desired = start + i * step + rng.random_range(0..step.max(1));
            service(i, desired, now, &mut rng)
        }),
    );
}

/// One stored service: past ones COMPLETED (with a reason), future ones SCHEDULED.
fn service(i: u64, desired: u64, now: u64, rng: &mut StdRng) -> ServiceRecord {
    let created = Timestamp::from_millis(desired.min(now));
    let mut record = ServiceRecord::new(
        format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            rng.random::<u32>(),
            i >> 32,
            i
        ),
        SERVICES[(i % 3) as usize],
        Preset::ChatDelayed,
        created,
    );
    record.desired_time = Timestamp::from_millis(desired);
    record.expire_at = Timestamp::from_millis(desired + 365 * DAY_MS);
    record.customer_number = Some(format!("4155{:06}", rng.random_range(0..1_000_000)));
    record.owner = Some(format!("user-{}", i % 10_000));
    record.options = [("_ttl", "31536000"), ("_urs_virtual_queue", "VQ_Chat")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    record.user_data = [
        ("usr_customer_name", "Bob Markel"),
        ("usr_reason", "billing"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if desired > now {
        record.state = CallbackState::Scheduled;
    } else {
        let reasons = [
            CallbackReason::AgentConnected,
            CallbackReason::Cancelled,
            CallbackReason::FailTimeoutTtl,
        ];
        record.state = CallbackState::Completed;
        record.reason = Some(reasons[(i % 3) as usize]);
    }
    record.state_history = vec![StateChange {
        state: record.state,
        reason: record.reason,
        at: created,
        note: "bench".into(),
    }];
    record
}

/// Signs in at the console with the admin token; the session cookie.
async fn sign_in(client: &Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/admin/login"))
        .form(&[("username", "admin"), ("password", ADMIN_TOKEN)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), 303, "sign in with the admin token");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|pair| pair.contains('=')))
        .expect("a session cookie")
        .to_string()
}

/// "N callbacks found" and the sorted latencies of `requests` pages of `query`.
async fn pages(
    client: &Client,
    base: &str,
    cookie: &str,
    query: &str,
    requests: usize,
) -> (u64, Vec<Duration>) {
    let url = format!("{base}/admin/callbacks?{query}");
    let mut times = Vec::with_capacity(requests);
    let mut found = 0;
    for _ in 0..requests {
        let started = Instant::now();
        let response = client
            .get(&url)
            .header("cookie", cookie)
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), 200, "{url}");
        let body = response.text().await.expect("body");
        times.push(started.elapsed());
        found = found_count(&body).unwrap_or_else(|| panic!("no count in the page of {query}"));
    }
    times.sort();
    (found, times)
}

/// The N of the page's "<strong>N</strong> callbacks found".
fn found_count(page: &str) -> Option<u64> {
    let at = page.find("id=\"found\"")?;
    let rest = &page[at..];
    let start = rest.find("<strong>")? + "<strong>".len();
    let end = rest[start..].find("</strong>")?;
    rest[start..start + end].parse().ok()
}

/// `at` as the `datetime-local` form of the custom range (UTC, minutes).
fn minute(at: u64) -> String {
    Timestamp::from_millis(at).to_iso()[..16].to_string()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
