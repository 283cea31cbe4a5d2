//! warp filters only: match a route, parse the request into domain types, call one `app`
//! function, turn its result into a reply. No business rule and no storage access lives here.
//!
//! - [`callback`]: the customer-facing GMS Callback and Service APIs; [`schedule`]: office
//!   hours (Calendar Service API) and a callback service's availability.
//! - [`admin`]: the administrator API (bearer token).
//! - [`agent`]: agents' configuration (admin) and state (agent desktop API).
//! - [`chat`]: the customer's Chat API v1; [`chat_v2`]: Chat API version 2 (REST and its
//!   CometD channel); [`desktop`]: the agent's side of chats;
//!   [`voice`]: the outcome of a voice callback the agent dialed;
//!   [`esp`]: workflows' ESP requests to chat sessions.
//! - [`notify`]: notifications between the agent desktop and the customer (seed 000).
//! - [`storage`]: the GMS Storage API (areas on their own and a service's storage);
//!   [`notification_api`]: the GMS Notification API (subscriptions and publish).
//! - [`cometd`]: the CometD endpoint (long-polling and websocket).
//! - [`auth`]: session cookies, CSRF and roles for the console, the desktop and their APIs.
//! - [`console`]: the Service Management console's pages (`/admin/...`); [`users`]: the
//!   users API.
//! - [`metrics`]: `GET /metrics` (Prometheus); every request is counted in [`routes`].
//! - [`openapi`]: `GET /genesys/1/openapi.json`, the API contract generated from these routes.
//! - [`relay`]: a follower node's routes, relaying every request to the active node.
//! - [`form`]: body and query parsing; [`reply`]: JSON replies; [`error`]: errors to HTTP.

mod admin;
mod agent;
pub mod auth;
mod callback;
mod chat;
pub mod chat_v2;
mod cometd;
pub mod console;
mod desktop;
mod error;
mod esp;
mod form;
pub(crate) use form::fuzz_form;
mod metrics;
mod notification_api;
mod notify;
mod openapi;
mod params;
pub mod relay;
mod reply;
mod schedule;
mod storage;
mod users;
mod views;
mod voice;

use std::convert::Infallible;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

pub use error::ApiError;

use crate::app::AppState;

/// Every route of the server, with errors turned into GMS error bodies, and every answer
/// counted by route template and status for `/metrics`.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let metrics = state.metrics.clone();
    // Each group is boxed: one filter type per group instead of one type nesting them all,
    // which keeps compile times (and the release build's type recursion) in bounds.
    // CometD comes first, and alone at the top (`cometd.or(everything else)`): its held
    // long-polls are the requests that live longest, and each `or` level a request passes
    // through stays allocated (a boxed future) while it waits. Folded in after the others it
    // would sit under fourteen such levels.
    let cometd = cometd::routes(state.clone()).boxed();
    let groups: [BoxedFilter<(Response,)>; 14] = [
        callback::routes(state.clone()).boxed(),
        schedule::routes(state.clone()).boxed(),
        chat::routes(state.clone()).boxed(),
        chat_v2::routes(state.clone()).boxed(),
        desktop::routes(state.clone())
            .or(voice::routes(state.clone()))
            .unify()
            .boxed(),
        esp::routes(state.clone()).boxed(),
        notify::routes(state.clone()).boxed(),
        storage::routes(state.clone())
            .or(notification_api::routes(state.clone()))
            .unify()
            .boxed(),
        admin::routes(state.clone()).boxed(),
        metrics::routes(state.clone()).boxed(),
        openapi::routes().boxed(),
        agent::routes(state.clone()).boxed(),
        users::routes(state.clone()),
        console::routes(state),
    ];
    let [first, rest @ ..] = groups;
    let others = rest
        .into_iter()
        .fold(first, |routes, group| routes.or(group).unify().boxed());
    cometd
        .or(others)
        .unify()
        .recover(recover)
        // Around everything, so that rejections (404, 401, ...) are counted with the status
        // they were answered with.
        .with(warp::log::custom(move |info| {
            metrics.observe_request(
                info.method().as_str(),
                info.path(),
                info.status().as_u16(),
                info.elapsed(),
            )
        }))
}

/// [`routes`] boxed, as the server holds them (a follower swaps its relay for them when it
/// takes the lease).
pub fn boxed_routes(state: AppState) -> BoxedFilter<(Response,)> {
    routes(state).map(Reply::into_response).boxed()
}

/// The `recover` of every route: a page's rejection (no session, a role too weak) becomes the
/// sign-in redirect or the 403 page of the console and desktop; everything else a GMS error
/// body ([`error::handle_rejection`]).
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(page) = rejection.find::<auth::PageRejection>() {
        return Ok(console::page_rejection(page));
    }
    error::handle_rejection(rejection).await
}

/// Runs a state-changing operation to its end even if the client goes away: hyper drops a
/// handler's future when its connection closes, and a chat half-closed (its service never
/// completed) or a service linked to a chat but not handed to its agent would stay that way.
async fn to_completion<T: Send + 'static>(
    operation: impl std::future::Future<Output = Result<T, crate::app::AppError>> + Send + 'static,
) -> Result<T, crate::app::AppError> {
    tokio::spawn(operation).await.unwrap_or_else(|err| {
        tracing::error!(error = %err, "an operation panicked or was cancelled");
        Err(crate::app::AppError::Unavailable(
            "the operation did not finish: try again".into(),
        ))
    })
}

/// Hands the shared state to a handler.
fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The longest `gms_user` accepted (DESIGN §7): an identity, not a place to store data.
pub const MAX_GMS_USER_BYTES: usize = 256;

/// Who is calling and how they reached us: the `gms_user` header and the base of the URLs
/// put in replies.
#[derive(Debug, Clone)]
struct Client {
    /// `gms_user`, the end user's identity set by the client or its security gateway.
    gms_user: Option<String>,
    /// `public_url` when configured, else `http://<Host>`: for URLs in replies
    /// (`_start_chat_url`, `_comet_url`).
    base_url: String,
}

impl Client {
    fn gms_user(&self) -> Option<&str> {
        self.gms_user.as_deref()
    }
}

fn client(state: &AppState) -> impl Filter<Extract = (Client,), Error = Rejection> + Clone {
    let fallback = state.settings.fallback_host.clone();
    let public_url = state.settings.public_url.clone();
    gms_user_header().and(header_text("host")).map(
        move |gms_user: Option<String>, host: Option<String>| {
            let base_url = public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", host.unwrap_or_else(|| fallback.clone())));
            Client {
                gms_user: gms_user.filter(|u| !u.trim().is_empty()),
                base_url,
            }
        },
    )
}

/// The `gms_user` header, given at most once and at most [`MAX_GMS_USER_BYTES`] long (a 400
/// naming the header otherwise), on every route that reads it, CometD's included.
fn gms_user_header() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    header_text("gms_user").and_then(|gms_user: Option<String>| async move {
        if gms_user.as_ref().is_some_and(|u| u.len() > MAX_GMS_USER_BYTES) {
            return Err(warp::reject::custom(ApiError::BadRequest(format!(
                "header `gms_user` is longer than {MAX_GMS_USER_BYTES} bytes: send the user's identity, not data"
            ))));
        }
        Ok(gms_user)
    })
}

/// Checks that the service `{id}` of the path exists (404) and that the caller may reach it
/// (403) before anything else of the request is read, so that a stranger learns nothing
/// from how the body is judged (DESIGN §7). Use as `.and_then(service_access).untuple_one()`
/// after the path, the state and the [`client`]; the use case checks again inside its own
/// transaction, since the service can change between the two.
async fn service_access(
    id: String,
    state: AppState,
    client: Client,
) -> Result<(String, AppState, Client), Rejection> {
    crate::app::records::check_access(&state, &id, client.gms_user())
        .map_err(|err| warp::reject::custom(ApiError::from(err)))?;
    Ok((id, state, client))
}

/// [`service_access`] for `.../callback/{name}/{id}` paths.
async fn callback_access(
    name: String,
    id: String,
    state: AppState,
    client: Client,
) -> Result<(String, String, AppState, Client), Rejection> {
    crate::app::records::check_callback_access(&state, &name, &id, client.gms_user())
        .map_err(|err| warp::reject::custom(ApiError::from(err)))?;
    Ok((name, id, state, client))
}

/// The header `name` as text, if present. A value that is not visible ASCII is our own 400
/// naming the header: warp's built-in rejection for it would lose to a 405 from a sibling
/// route with another method. A header given twice is a 400 too: a gateway that appends the
/// real `gms_user` or `Authorization` must not lose to a forged first one.
fn header_text(
    name: &'static str,
) -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::headers_cloned().and_then(move |headers: warp::http::HeaderMap| async move {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(warp::reject::custom(ApiError::BadRequest(format!(
                "header `{name}` is given more than once: send it once"
            ))));
        }
        value
            .to_str()
            .map(|text| Some(text.to_string()))
            .map_err(|_| {
                warp::reject::custom(ApiError::BadRequest(format!(
                    "header `{name}` is not printable ASCII: send it as ASCII text"
                )))
            })
    })
}
