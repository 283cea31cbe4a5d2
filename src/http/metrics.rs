//! `GET /metrics`: the Prometheus exposition. Behind the admin bearer token (failing closed
//! as the admin API does) unless `[metrics] public = true`.

use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::admin_token;
use super::error::respond;
use super::with_state;
use crate::app::AppState;

/// The metrics route.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    metrics_get(state)
}

/// GET /metrics
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("admin_token" = []), ()),
    description = "Needs the bearer token unless `[metrics] public = true`.",
    responses((status = 200, description = "The Prometheus exposition (OpenMetrics text)", content_type = "application/openmetrics-text", body = String)))]
fn metrics_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(metrics_auth(&state))
        .and(with_state(state))
        .then(|state: AppState| async move {
            let snapshot = crate::app::metrics::snapshot(&state).await;
            respond(snapshot, |snapshot| {
                exposition(state.metrics.render(&snapshot))
            })
        })
}

/// Nothing when `[metrics] public = true`, else the admin API's bearer-token check.
fn metrics_auth(state: &AppState) -> BoxedFilter<()> {
    if state.settings.metrics_public {
        warp::any().boxed()
    } else {
        admin_token(state).boxed()
    }
}

fn exposition(text: String) -> Response {
    let mut response = Response::new(text.into());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}
