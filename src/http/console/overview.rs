//! The live overview (`/admin/overview`), its push channel (`/admin/events`, server-sent
//! events), its charts (`/admin/charts/{name}.svg`) and the Health page (`/admin/health`).
//! The numbers come from `app::overview`; this module only renders and streams them.
//!
//! The event stream computes a snapshot every [`POLL`] and sends it only when it changed
//! (see docs/decisions.md: hooking every write path was more invasive than the console
//! needs). A stream ends after [`STREAM_LIFETIME`] so that a graceful shutdown never waits
//! on it for long; `EventSource` reconnects by itself.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use futures_util::stream::{self, Stream};
use plotters::prelude::*;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::sse::Event;
use warp::{Filter, Rejection, Reply};

use super::{render, Layout};
use crate::app::accounts::Portal;
use crate::app::overview::{self, ChartData, Overview};
use crate::app::sessions::Session;
use crate::app::AppState;
use crate::domain::account::Action;
use crate::http::auth::page_session;
use crate::http::with_state;

/// How often the event stream looks for a change.
pub const POLL: Duration = Duration::from_millis(500);
/// How long one event stream lasts before the browser reconnects.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(30);

/// The overview, event stream, charts and Health routes.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    overview_page(state.clone())
        .or(events_stream(state.clone()))
        .unify()
        .or(chart_svg(state.clone()))
        .unify()
        .or(health_page(state))
        .unify()
        .boxed()
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    layout: Layout,
    overview: Option<Overview>,
    /// Per service, the counts of [`SHOWN_STATES`] in that order.
    rows: Vec<(String, Vec<u64>)>,
    json: String,
}

/// The states the services table has a column for (COMPLETED is in the charts).
const SHOWN_STATES: [&str; 4] = ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING"];

/// GET /admin/overview
fn overview_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "overview")
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .then(|session: Session, state: AppState| async move {
            let overview = overview::overview(&state).await.ok();
            let json = overview
                .as_ref()
                .and_then(|o| serde_json::to_string(o).ok())
                .unwrap_or_default();
            let rows = overview
                .iter()
                .flat_map(|o| &o.services)
                .map(|(name, counts)| {
                    let shown = SHOWN_STATES
                        .iter()
                        .map(|s| counts.get(s).copied().unwrap_or(0))
                        .collect();
                    (name.clone(), shown)
                })
                .collect();
            render(
                StatusCode::OK,
                &OverviewPage {
                    layout: Layout::new(&session, "/admin/overview"),
                    overview,
                    rows,
                    json,
                },
            )
        })
}

/// GET /admin/events: `snapshot` events (the JSON of an [`Overview`]), one at once and one
/// after every change, with keep-alive comments in between.
fn events_stream(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "events")
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .map(|_session: Session, state: AppState| {
            let stream = snapshots(state);
            warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response()
        })
}

/// The snapshots of `state`: the first at once, then each that differs from the last sent.
fn snapshots(state: AppState) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let until = tokio::time::Instant::now() + STREAM_LIFETIME;
    stream::unfold(
        (state, None::<Overview>, true),
        move |(state, last, first)| async move {
            loop {
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                if tokio::time::Instant::now() >= until {
                    return None;
                }
                let current = match overview::overview(&state).await {
                    Ok(current) => current,
                    // The router has stopped: the server is going down.
                    Err(_) => return None,
                };
                if last.as_ref() == Some(&current) {
                    continue;
                }
                let event = Event::default()
                    .event("snapshot")
                    .retry(Duration::from_millis(500))
                    .json_data(&current)
                    .unwrap_or_else(|_| Event::default().comment("unencodable"));
                return Some((Ok(event), (state, Some(current), false)));
            }
        },
    )
}

/// GET /admin/charts/{hourly|reasons|waits}.svg
fn chart_svg(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "charts" / String)
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and_then(
            |name: String, _session: Session, state: AppState| async move {
                let Some(chart) = Chart::parse(&name) else {
                    return Err(warp::reject::not_found());
                };
                let body = match overview::chart_data(&state).await {
                    Ok(data) => draw(chart, &data),
                    Err(err) => Err(err.to_string()),
                };
                Ok::<_, Rejection>(match body {
                    Ok(svg) => {
                        let mut response = Response::new(svg.into());
                        let headers = response.headers_mut();
                        headers.insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("image/svg+xml"),
                        );
                        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        response
                    }
                    Err(err) => {
                        tracing::error!(error = %err, chart = %name, "cannot draw a chart");
                        warp::reply::with_status(
                            "the chart could not be drawn",
                            StatusCode::INTERNAL_SERVER_ERROR,
                        )
                        .into_response()
                    }
                })
            },
        )
}

/// The charts the overview shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Created and completed per hour, last 24 hours.
    Hourly,
    /// Completed by reason, last 24 hours.
    Reasons,
    /// Distribution of queue waits, last 24 hours.
    Waits,
}

impl Chart {
    /// `hourly.svg` and so on.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "hourly.svg" => Some(Self::Hourly),
            "reasons.svg" => Some(Self::Reasons),
            "waits.svg" => Some(Self::Waits),
            _ => None,
        }
    }
}

const WIDTH: u32 = 560;
const HEIGHT: u32 = 280;
/// Queue-wait buckets: upper bounds in seconds, the last one open.
const WAIT_BUCKETS: &[(u64, &str)] = &[
    (10, "<10s"),
    (30, "<30s"),
    (60, "<1m"),
    (300, "<5m"),
    (900, "<15m"),
    (3600, "<1h"),
    (u64::MAX, "1h+"),
];

/// Draws `chart` of `data` as an SVG document.
///
/// # Errors
/// The drawing library failed, as text.
pub fn draw(chart: Chart, data: &ChartData) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match chart {
            Chart::Hourly => draw_hourly(&root, data),
            Chart::Reasons => {
                let bars: Vec<(String, u64)> = data
                    .completed_by_reason
                    .iter()
                    .map(|(k, v)| (short_reason(k), *v))
                    .collect();
                draw_bars(&root, "Completed by reason, last 24 h", &bars)
            }
            Chart::Waits => {
                let mut counts = vec![0u64; WAIT_BUCKETS.len()];
                for wait in &data.queue_waits_secs {
                    let i = WAIT_BUCKETS
                        .iter()
                        .position(|(bound, _)| wait < bound)
                        .unwrap_or(WAIT_BUCKETS.len() - 1);
                    counts[i] += 1;
                }
                let bars: Vec<(String, u64)> = WAIT_BUCKETS
                    .iter()
                    .zip(counts)
                    .map(|((_, label), n)| (label.to_string(), n))
                    .collect();
                draw_bars(&root, "Queue waits, last 24 h", &bars)
            }
        }
        .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_hourly(root: &Area<'_>, data: &ChartData) -> DrawResult {
    let top = data
        .created_per_hour
        .iter()
        .chain(&data.completed_per_hour)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Created and completed per hour, last 24 h",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(-23i32..0i32, 0u64..top + top / 10 + 1)?;
    chart
        .configure_mesh()
        .x_desc("hours ago")
        .x_label_formatter(&|x| format!("{}", -x))
        .draw()?;
    let series = |values: &[u64]| -> Vec<(i32, u64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i32 - 23, *v))
            .collect()
    };
    let created = RGBColor(0x1f, 0x6f, 0xb5);
    let completed = RGBColor(0x2e, 0x8b, 0x57);
    chart
        .draw_series(LineSeries::new(
            series(&data.created_per_hour),
            created.stroke_width(2),
        ))?
        .label("created")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], created.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            series(&data.completed_per_hour),
            completed.stroke_width(2),
        ))?
        .label("completed")
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 16, y)], completed.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

fn draw_bars(root: &Area<'_>, caption: &str, bars: &[(String, u64)]) -> DrawResult {
    let top = bars.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
    let n = labels.len().max(1) as u32;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d((0u32..n).into_segmented(), 0u64..top + top / 10 + 1)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n as usize)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let fill = RGBColor(0x1f, 0x6f, 0xb5).filled();
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(fill)
            .margin(6)
            .data(bars.iter().enumerate().map(|(i, (_, n))| (i as u32, *n))),
    )?;
    if bars.is_empty() {
        root.draw(&Text::new(
            "nothing completed yet",
            (WIDTH as i32 / 2 - 70, HEIGHT as i32 / 2),
            ("sans-serif", 14),
        ))?;
    }
    Ok(())
}

/// `FAIL_TIMEOUT_TTL` reads better as `timeout ttl` under a narrow bar.
fn short_reason(reason: &str) -> String {
    reason
        .trim_start_matches("FAIL_")
        .replace('_', " ")
        .to_lowercase()
}

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    layout: Layout,
    version: &'static str,
    schema_version: String,
    binary_schema: u32,
    uptime: String,
    started: String,
    store_size: String,
    flush_p50: String,
    flush_p99: String,
    flushes: usize,
    expiry: Option<(String, usize)>,
}

/// GET /admin/health
fn health_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "health")
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .then(|session: Session, state: AppState| async move {
            let store = state.store.clone();
            let (schema, size) = tokio::task::spawn_blocking(move || {
                (store.schema_version().ok(), store.size_on_disk().ok())
            })
            .await
            .unwrap_or((None, None));
            let now = state.clock.now();
            let flush = state.store.flush_latency_last_minute();
            let up = now.as_millis().saturating_sub(state.started_at.as_millis()) / 1000;
            render(
                StatusCode::OK,
                &HealthPage {
                    layout: Layout::new(&session, "/admin/health"),
                    version: env!("CARGO_PKG_VERSION"),
                    schema_version: schema.map_or("unreadable".into(), |v| v.to_string()),
                    binary_schema: state.store.supported_schema_version(),
                    uptime: duration_text(up),
                    started: state.started_at.to_iso(),
                    store_size: size.map_or("unreadable".into(), bytes_text),
                    flush_p50: format!("{:.1} ms", flush.p50.as_secs_f64() * 1000.0),
                    flush_p99: format!("{:.1} ms", flush.p99.as_secs_f64() * 1000.0),
                    flushes: flush.count,
                    expiry: state
                        .metrics
                        .expiry()
                        .last()
                        .map(|run| (run.at.to_iso(), run.removed)),
                },
            )
        })
}

/// `3 d 4 h 5 min 6 s`, dropping leading zero units.
pub fn duration_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h {m} min"),
    }
}

/// `12.3 MB` (decimal units).
pub fn bytes_text(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        for (secs, text) in [
            (5, "5 s"),
            (65, "1 min 5 s"),
            (3700, "1 h 1 min"),
            (90000, "1 d 1 h 0 min"),
        ] {
            assert_eq!(duration_text(secs), text, "{secs} s");
        }
    }

    #[test]
    fn sizes_use_decimal_units() {
        for (bytes, text) in [(512, "512 B"), (1500, "1.5 kB"), (2_500_000, "2.5 MB")] {
            assert_eq!(bytes_text(bytes), text, "{bytes} bytes");
        }
    }

    #[test]
    fn every_chart_draws_svg_with_text_and_no_fonts() {
        let mut data = ChartData {
            created_per_hour: vec![1; 24],
            completed_per_hour: vec![0; 24],
            ..ChartData::default()
        };
        data.completed_by_reason.insert("CANCELLED".into(), 2);
        data.queue_waits_secs = vec![3, 40, 4000];
        for chart in [Chart::Hourly, Chart::Reasons, Chart::Waits] {
            let svg = draw(chart, &data).expect("draws");
            assert!(svg.starts_with("<svg"), "{chart:?}: {}", &svg[..40]);
            assert!(svg.contains("<text"), "{chart:?} has text");
        }
        let empty = draw(Chart::Reasons, &ChartData::default()).expect("draws empty");
        assert!(empty.contains("nothing completed yet"));
    }
}
