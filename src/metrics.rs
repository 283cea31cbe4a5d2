//! `GET /metrics`: the Prometheus registry (prometheus-client, text exposition).
//!
//! Two kinds of series:
//!
//! - counters and histograms, kept where things happen and registered here once at start-up:
//!   requests (observed around the routes, in `http`), group commit (in `store`), CometD
//!   pushes and held connects (in `cometd`), httpcb POSTs (in `push`), expiry runs (in
//!   `expiry`). Each owner keeps its own handles; clones share the values, so there is no
//!   global recorder and every server in a test process has its own registry;
//! - gauges of state (services, queues, agents, CometD clients, store size), read at scrape
//!   time into a [`Snapshot`] by `app::metrics` and encoded with the rest, never updated on
//!   every change.
//!
//! Route labels are templates (`/genesys/1/service/{id}/connect`) from [`route_of`], never
//! raw paths: a label value per service id would grow the registry without bound.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::cometd::CometdCounters;
use crate::expiry::ExpiryCounters;
use crate::push::httpcb::HttpcbCounters;
use crate::store::CommitStats;

/// The prefix of every series.
const PREFIX: &str = "callbackd";

/// The `Content-Type` of the exposition (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The route label of a path no route template matches.
pub const OTHER_ROUTE: &str = "other";

/// Every route the server answers, as templates: `{x}` stands for one path segment. Where
/// two match, the first listed wins, so literal segments come before `{x}` at the same place.
const ROUTES: &[&str] = &[
    "/metrics",
    "/genesys/1/openapi.json",
    "/genesys/1/admin/users",
    "/genesys/1/admin/users/{name}",
    "/genesys/1/admin/users/{name}/password",
    "/genesys/cometd",
    "/genesys/cometd/handshake",
    "/genesys/cometd/connect",
    "/genesys/cometd/subscribe",
    "/genesys/cometd/unsubscribe",
    "/genesys/cometd/disconnect",
    "/genesys/1/service/callback",
    "/genesys/1/service/callback/{name}",
    "/genesys/1/service/callback/{name}/availability",
    "/genesys/1/service/callback/{name}/{id}",
    "/genesys/1/service/{id}/connect",
    "/genesys/1/service/{id}/status",
    "/genesys/1/service/{id}/check-queue-position",
    "/genesys/1/service/{id}/retrieve-notifications",
    "/genesys/1/service/{id}/internal-notification",
    "/genesys/1/service/{id}/agent-notification",
    "/genesys/1/service/{id}/retrieve-agent-notifications",
    "/genesys/1/service/{id}/ixn/chat",
    "/genesys/1/service/{id}/ixn/chat/{action}",
    "/genesys/1/service/{id}/storage",
    "/genesys/1/service/{id}/storage/{key}",
    "/genesys/1/service/{id}/storage/binary/{key}",
    "/genesys/1/service/{id}/{action}",
    "/genesys/1/service/{name}",
    "/genesys/1/storage/custom/{id}/{ttl}",
    "/genesys/1/storage/binary/{id}/{key}",
    "/genesys/1/storage/{id}",
    "/genesys/1/storage/{id}/{key}",
    "/genesys/1/notification/subscription",
    "/genesys/1/notification/subscription/{id}",
    "/genesys/1/notification/publish",
    "/genesys/1/admin/services",
    "/genesys/1/admin/services/{name}",
    "/genesys/1/admin/callback/queues",
    "/genesys/1/admin/callback/watermarks",
    "/genesys/1/admin/callback/cancel",
    "/genesys/1/admin/callback/reportcancelled",
    "/genesys/1/admin/callbacks/export",
    "/genesys/1/admin/callback/{id}",
    "/genesys/1/admin/stats",
    "/genesys/1/admin/queues",
    "/genesys/1/admin/agents",
    "/genesys/1/admin/agents/{id}",
    "/genesys/1/admin/chat/{id}/esp/{name}",
    "/genesys/1/agent/{agent}/state",
    "/genesys/1/agent/{agent}/interactions",
    "/genesys/1/agent/{agent}/interactions/{service}/accept",
    "/genesys/1/agent/{agent}/interactions/{service}/outcome",
    "/genesys/1/agent/{agent}/history",
    "/genesys/1/agent/{agent}/chat/{service}",
    "/genesys/1/agent/{agent}/chat/{service}/{action}",
    "/genesys/1/voice/inbound-call",
    "/genesys/2/chat/{name}",
    "/genesys/2/chat/{name}/{chat}/{operation}",
];

/// Every route template, in matching order (the OpenAPI document's tests check it covers them).
pub fn route_templates() -> &'static [&'static str] {
    ROUTES
}

/// More segments than any route template has (the longest,
/// `/genesys/1/agent/{agent}/interactions/{service}/accept`, has eight, counting the empty one
/// before the first `/`): a longer path matches none.
const MAX_SEGMENTS: usize = 10;

/// [`ROUTES`] split into their segments once, in matching order.
static ROUTE_SEGMENTS: std::sync::LazyLock<Vec<(&'static str, Vec<&'static str>)>> =
    std::sync::LazyLock::new(|| {
        ROUTES
            .iter()
            .map(|template| (*template, template.split('/').collect()))
            .collect()
    });

/// The route template `path` was served by, or [`OTHER_ROUTE`]. A trailing `/` is ignored.
/// Runs for every request: the path is split once, on the stack, and a template of another
/// length is passed over on its segment count, so the cost is one split and a few compares.
pub fn route_of(path: &str) -> &'static str {
    let mut segments = [""; MAX_SEGMENTS];
    let mut count = 0;
    for segment in path.trim_end_matches('/').split('/') {
        let Some(slot) = segments.get_mut(count) else {
            return page_group(path);
        };
        *slot = segment;
        count += 1;
    }
    let segments = &segments[..count];
    ROUTE_SEGMENTS
        .iter()
        .find(|(_, parts)| matches_template(parts, segments))
        .map_or_else(|| page_group(path), |(template, _)| *template)
}

/// Whether `segments` are those of a template's `parts`, where `{x}` stands for any non-empty
/// one.
fn matches_template(parts: &[&str], segments: &[&str]) -> bool {
    parts.len() == segments.len()
        && parts.iter().zip(segments).all(|(part, segment)| {
            if part.starts_with('{') {
                !segment.is_empty()
            } else {
                part == segment
            }
        })
}

/// The console's and the desktop's pages count as one route each: they are for people, and
/// their paths carry ids.
fn page_group(path: &str) -> &'static str {
    if path == "/admin" || path.starts_with("/admin/") {
        "/admin/*"
    } else if path == "/agent" || path.starts_with("/agent/") {
        "/agent/*"
    } else {
        OTHER_ROUTE
    }
}

/// A request method as a label: the standard ones by name, any other as `OTHER` (hyper
/// accepts made-up methods, which must not make new series).
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "OTHER",
    }
}

/// The labels of a request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// The counters of the other modules, handed to [`Metrics::new`] to be registered.
pub struct Sources<'a> {
    /// The group committer's histograms.
    pub commit: &'a CommitStats,
    /// CometD pushes and held connects.
    pub cometd: &'a CometdCounters,
    /// httpcb POST outcomes.
    pub httpcb: &'a HttpcbCounters,
    /// Expiry runs and removals.
    pub expiry: &'a ExpiryCounters,
}

/// The registry and the request series. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// Everything counted where it happens; immutable once built (scrapes only read it).
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram>,
    /// Handed to the expiry job, which starts after the registry is built.
    expiry: ExpiryCounters,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry holding the request series and the counters of `sources`.
    pub fn new(sources: Sources<'_>) -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(
            request_histogram as fn() -> _,
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (a held CometD connect included)",
            Unit::Seconds,
            request_seconds.clone(),
        );
        registry.register(
            "store_commit_batch_size",
            "Durable-write waiters answered by one group-commit flush",
            sources.commit.batch_size.clone(),
        );
        registry.register_with_unit(
            "store_commit_flush_duration",
            "Time one group-commit flush of the database took",
            Unit::Seconds,
            sources.commit.flush_seconds.clone(),
        );
        registry.register(
            "store_service_record_writes",
            "Service records written (created or changed); routing history is appended beside them",
            sources.commit.service_record_writes.clone(),
        );
        registry.register(
            "cometd_pushes",
            "Pushes queued for CometD clients (one per client reached)",
            sources.cometd.pushes.clone(),
        );
        registry.register(
            "cometd_held_connects",
            "CometD /meta/connect requests being held now",
            sources.cometd.held_connects.clone(),
        );
        registry.register(
            "httpcb_deliveries",
            "httpcb POSTs answered 2xx (notification delivered)",
            sources.httpcb.deliveries.clone(),
        );
        registry.register(
            "httpcb_retries",
            "Failed httpcb POSTs scheduled to be tried again",
            sources.httpcb.retries.clone(),
        );
        registry.register(
            "httpcb_failures",
            "httpcb POSTs that failed (unreachable, timeout, not 2xx)",
            sources.httpcb.failures.clone(),
        );
        registry.register(
            "expiry_runs",
            "Runs of the expiry job (the catch-up at start-up included)",
            sources.expiry.runs.clone(),
        );
        registry.register(
            "expiry_removed_services",
            "Services removed by the expiry job because their _ttl passed",
            sources.expiry.removed.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                request_seconds,
                expiry: sources.expiry.clone(),
            }),
        }
    }

    /// The expiry job's counters, registered here.
    pub fn expiry(&self) -> &ExpiryCounters {
        &self.inner.expiry
    }

    /// Books one answered request.
    pub fn observe_request(&self, method: &str, path: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route_of(path),
            status,
        };
        self.inner.requests.get_or_create(&labels).inc();
        self.inner
            .request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// The exposition: every registered series, then the gauges of `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, and our label values are plain strings.
        let _ = encode_registry(&mut text, &self.inner.registry);
        let _ = encode_registry(&mut text, &snapshot.registry());
        let _ = encode_eof(&mut text);
        text
    }
}

/// 1 ms to about 65 s: long enough for a held CometD connect (60 s by default).
fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// One virtual queue at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGauge {
    /// `_urs_virtual_queue`.
    pub name: String,
    /// Services waiting in it.
    pub waiting: u64,
    /// Seconds the oldest waiting service has waited (0 when none waits).
    pub oldest_wait_secs: u64,
}

/// The state read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Services not COMPLETED: (configured service, state, count).
    pub services: Vec<(String, &'static str, u64)>,
    /// Every virtual queue the router knows.
    pub queues: Vec<QueueGauge>,
    /// Agents per state: (state, count).
    pub agents: Vec<(&'static str, u64)>,
    /// Handshaken CometD clients.
    pub cometd_clients: u64,
    /// sled's size on disk, in bytes; `None` when it could not be read.
    pub store_bytes: Option<u64>,
}

impl Snapshot {
    /// A registry of this moment's gauges, encoded after the long-lived one.
    fn registry(&self) -> Registry {
        type Labelled = Family<Vec<(&'static str, String)>, Gauge>;
        let mut registry = Registry::with_prefix(PREFIX);
        let gauge = |value: u64| {
            let gauge: Gauge = Gauge::default();
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            gauge
        };

        let services = Labelled::default();
        for (service, state, count) in &self.services {
            services
                .get_or_create(&vec![
                    ("service", service.clone()),
                    ("state", state.to_string()),
                ])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        registry.register(
            "services",
            "Services not yet COMPLETED, by configured service and state",
            services,
        );

        let waiting = Labelled::default();
        let oldest = Labelled::default();
        for queue in &self.queues {
            let labels = vec![("queue", queue.name.clone())];
            waiting
                .get_or_create(&labels)
                .set(i64::try_from(queue.waiting).unwrap_or(i64::MAX));
            oldest
                .get_or_create(&labels)
                .set(i64::try_from(queue.oldest_wait_secs).unwrap_or(i64::MAX));
        }
        registry.register(
            "queue_waiting",
            "Services waiting in a virtual queue",
            waiting,
        );
        registry.register_with_unit(
            "queue_oldest_wait",
            "How long the oldest service of a virtual queue has waited",
            Unit::Seconds,
            oldest,
        );

        let agents = Labelled::default();
        for (state, count) in &self.agents {
            agents
                .get_or_create(&vec![("state", state.to_string())])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        registry.register("agents", "Agents by state", agents);

        registry.register(
            "cometd_clients",
            "Handshaken CometD clients",
            gauge(self.cometd_clients),
        );
        if let Some(bytes) = self.store_bytes {
            registry.register_with_unit(
                "store_size",
                "Size of the database on disk",
                Unit::Bytes,
                gauge(bytes),
            );
        }
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_labelled_by_their_route_template() {
        for (path, route) in [
            (
                "/genesys/1/service/callback/samples",
                "/genesys/1/service/callback/{name}",
            ),
            (
                "/genesys/1/service/callback/samples/",
                "/genesys/1/service/callback/{name}",
            ),
            (
                "/genesys/1/service/callback/samples/0d1c5f8e",
                "/genesys/1/service/callback/{name}/{id}",
            ),
            (
                "/genesys/1/service/0d1c5f8e/connect",
                "/genesys/1/service/{id}/connect",
            ),
            ("/genesys/1/service/callback", "/genesys/1/service/callback"),
            ("/genesys/1/service/anything", "/genesys/1/service/{name}"),
            (
                "/genesys/1/admin/callback/queues",
                "/genesys/1/admin/callback/queues",
            ),
            (
                "/genesys/1/admin/callback/x1",
                "/genesys/1/admin/callback/{id}",
            ),
            (
                "/genesys/1/agent/a1/chat/s1/message",
                "/genesys/1/agent/{agent}/chat/{service}/{action}",
            ),
            ("/genesys/cometd/connect", "/genesys/cometd/connect"),
            ("/metrics", "/metrics"),
            ("/", OTHER_ROUTE),
            ("/genesys/1/service//connect", OTHER_ROUTE),
            ("/wp-login.php", OTHER_ROUTE),
            ("/admin/callbacks/0d1c5f8e", "/admin/*"),
            ("/agent/", "/agent/*"),
            ("/administrator", OTHER_ROUTE),
            (
                "/genesys/1/admin/users/ada/password",
                "/genesys/1/admin/users/{name}/password",
            ),
            ("/genesys/1/service/a/b/c/d/e", OTHER_ROUTE),
        ] {
            assert_eq!(route_of(path), route, "{path}");
        }
    }

    #[test]
    fn a_path_longer_than_every_template_is_only_a_page_or_other() {
        assert!(
            ROUTES
                .iter()
                .all(|template| template.split('/').count() <= MAX_SEGMENTS),
            "a template longer than MAX_SEGMENTS would never match"
        );
        assert_eq!(route_of("/admin/a/b/c/d/e/f/g/h/i/j/k"), "/admin/*");
        assert_eq!(route_of("/genesys/1/a/b/c/d/e/f/g/h/i/j"), OTHER_ROUTE);
    }

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label("POST"), "POST");
        assert_eq!(method_label("BREW"), "OTHER");
    }

    #[test]
    fn the_exposition_has_the_requests_and_the_snapshot() {
        let commit = CommitStats::default();
        let metrics = Metrics::new(Sources {
            commit: &commit,
            cometd: &CometdCounters::default(),
            httpcb: &HttpcbCounters::default(),
            expiry: &ExpiryCounters::default(),
        });
        metrics.observe_request("POST", "/genesys/1/service/callback/s", 200, Duration::ZERO);
        metrics.observe_request("POST", "/genesys/1/service/callback/t", 200, Duration::ZERO);
        let text = metrics.render(&Snapshot {
            services: vec![("samples".into(), "QUEUED", 2)],
            store_bytes: Some(4096),
            ..Snapshot::default()
        });
        for line in [
            "callbackd_http_requests_total{method=\"POST\",route=\"/genesys/1/service/callback/{name}\",status=\"200\"} 2",
            "callbackd_services{service=\"samples\",state=\"QUEUED\"} 2",
            "callbackd_store_size_bytes 4096",
            "callbackd_cometd_clients 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
