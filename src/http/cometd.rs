//! The CometD transports on `/genesys/cometd`: long-polling POSTs (with the `/handshake`,
//! `/connect`, ... suffixes CometD clients append), callback-polling GETs (JSONP) and the
//! websocket. Both hand each body to
//! [`Bayeux::handle`]; nothing about Bayeux itself is decided here.
//!
//! The `gms_user` header binds the client: on long-polling it is read from every request, on
//! the websocket from the upgrade request and applied to every frame of that socket.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::http::StatusCode;
use warp::path::Tail;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::form::{self, Fields};
use super::{gms_user_header, reply, with_state};
use crate::app::AppState;
use crate::cometd::{Bayeux, BayeuxError};

use super::params::GmsUser;

/// Requests of one websocket handled at once; more wait until one is answered.
const MAX_IN_FLIGHT_PER_SOCKET: usize = 16;

/// The CometD routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    cometd_websocket(state.clone())
        .or(cometd_jsonp(state.clone()))
        .unify()
        .or(cometd_poll(state))
        .unify()
}

impl From<BayeuxError> for ApiError {
    fn from(err: BayeuxError) -> Self {
        ApiError::BadRequest(err.to_string())
    }
}

/// The suffixes CometD clients append to `/genesys/cometd`.
pub(super) const SUFFIXES: [&str; 5] = [
    "handshake",
    "connect",
    "subscribe",
    "unsubscribe",
    "disconnect",
];

/// `/genesys/cometd`, alone or followed by one of the [`SUFFIXES`].
fn cometd_path() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path("genesys")
        .and(warp::path("cometd"))
        .and(warp::path::tail())
        .and_then(|tail: Tail| async move {
            let suffix = tail.as_str().trim_end_matches('/');
            if suffix.is_empty() || SUFFIXES.contains(&suffix) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
}

/// POST /genesys/cometd[/handshake|/connect|/subscribe|/unsubscribe|/disconnect]
#[utoipa::path(post, path = "/genesys/cometd", tag = "cometd", params(GmsUser),
    description = "Long-polling: a Bayeux message or a batch (JSON array). The suffixes clients append serve the same operation. A held `/meta/connect` is answered within the advised timeout (60 s) or at the next push.",
    request_body(content = Vec<Object>, content_type = "application/json"),
    responses((status = 200, description = "One reply per message; Bayeux failures are `successful:false` replies", body = Vec<Object>)))]
fn cometd_poll(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = state.settings.max_body_bytes;
    cometd_path()
        .and(warp::post())
        .and(with_state(state))
        .and(gms_user_header())
        .and(form::body(limit))
        .then(poll_cometd)
}

/// One long-polling request: the body's messages in, the reply array out (a held connect
/// makes this wait).
async fn poll_cometd(state: AppState, gms_user: Option<String>, body: Bytes) -> Response {
    match state.bayeux.handle(gms_user.as_deref(), &body).await {
        Ok(replies) => reply::json(StatusCode::OK, &replies),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// GET /genesys/cometd[/suffix]?jsonp=<callback>&message=<Bayeux JSON> (callback-polling,
/// which CometD's JavaScript client uses cross-domain without CORS)
#[utoipa::path(get, path = "/genesys/cometd", tag = "cometd", params(JsonpQuery, GmsUser),
    description = "Callback-polling (JSONP). The same path also upgrades to the websocket transport.",
    responses((status = 200, description = "`<jsonp>([replies])`", content_type = "text/javascript", body = String)))]
fn cometd_jsonp(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    cometd_path()
        .and(warp::get())
        .and(with_state(state))
        .and(gms_user_header())
        .and(form::query_fields())
        .then(jsonp_cometd)
}

/// One callback-polling request: the `message` parameter is the body; the reply array is
/// wrapped in a call of the `jsonp` function.
async fn jsonp_cometd(state: AppState, gms_user: Option<String>, fields: Fields) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let callback = field("jsonp").unwrap_or("jsonpcallback");
    if !is_js_name(callback) {
        return ApiError::BadRequest(
            "`jsonp` must be a JavaScript function name such as _cometd_callback_1 (letters, digits, _, $, .)".into(),
        )
        .into_response();
    }
    let Some(message) = field("message") else {
        return ApiError::BadRequest(
            "GET /genesys/cometd is callback-polling: give the Bayeux messages in the `message` query parameter, or open a websocket, or POST them".into(),
        )
        .into_response();
    };
    match state
        .bayeux
        .handle(gms_user.as_deref(), message.as_bytes())
        .await
    {
        Ok(replies) => reply::javascript(format!("{callback}({replies})")),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// `name` is safe to emit as a function to call: an identifier, possibly dotted, short.
fn is_js_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

/// GET /genesys/cometd (websocket upgrade)
fn cometd_websocket(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    cometd_path()
        .and(warp::ws())
        .and(with_state(state))
        .and(gms_user_header())
        .map(|ws: Ws, state: AppState, gms_user: Option<String>| {
            let limit = usize::try_from(state.settings.max_body_bytes).unwrap_or(usize::MAX);
            ws.max_message_size(limit)
                .max_frame_size(limit)
                .on_upgrade(move |socket| serve_websocket(state.bayeux.clone(), gms_user, socket))
                .into_response()
        })
}

/// Serves one websocket: each text frame is a request body, each reply a text frame. Held
/// connects wait alongside further frames, so a subscribe is answered while a connect is
/// held. Ends when the client closes, on a frame that is not Bayeux, or at shutdown.
#[tracing::instrument(skip_all)]
async fn serve_websocket(bayeux: Bayeux, gms_user: Option<String>, mut socket: WebSocket) {
    let mut in_flight = FuturesUnordered::new();
    let stopped = bayeux.stopped();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            // A request from the client (read only while few of its requests are pending).
            frame = socket.next(), if in_flight.len() < MAX_IN_FLIGHT_PER_SOCKET => match frame {
                Some(Ok(frame)) if frame.is_text() => {
                    let bayeux = bayeux.clone();
                    let gms_user = gms_user.clone();
                    in_flight.push(async move {
                        bayeux.handle(gms_user.as_deref(), frame.as_bytes()).await
                    });
                }
                Some(Ok(frame)) if frame.is_binary() => {
                    close(&mut socket, 1003, "send Bayeux messages as JSON text frames").await;
                    return;
                }
                // The websocket layer has queued the echo of the client's close frame (its
                // code, as RFC 6455 asks): send it, so the client sees a clean close (1000),
                // not a dropped connection (1006).
                Some(Ok(frame)) if frame.is_close() => {
                    let _ = SinkExt::flush(&mut socket).await;
                    let _ = SinkExt::close(&mut socket).await;
                    return;
                }
                // Pings are answered by the websocket layer itself.
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "websocket read failed");
                    return;
                }
                None => return,
            },
            // A reply is ready (a held connect is answered, or anything else at once).
            Some(reply) = in_flight.next(), if !in_flight.is_empty() => match reply {
                Ok(replies) => {
                    if socket.send(Message::text(replies.to_string())).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    close(&mut socket, 1007, &err.to_string()).await;
                    return;
                }
            },
            // The server is stopping: its held connects were just answered; send those
            // answers, then say goodbye.
            () = &mut stopped => {
                while let Ok(Some(Ok(replies))) =
                    tokio::time::timeout(Duration::from_secs(1), in_flight.next()).await
                {
                    if socket.send(Message::text(replies.to_string())).await.is_err() {
                        return;
                    }
                }
                close(&mut socket, 1001, "the server is shutting down").await;
                return;
            }
        }
    }
}

/// Closes with `code` and `reason` (cut to the 123 bytes a close frame can carry).
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = reason[..end].to_string();
    let _ = socket.send(Message::close_with(code, reason)).await;
    let _ = SinkExt::close(socket).await;
}

/// The query of callback-polling ([`jsonp_cometd`]).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document only
struct JsonpQuery {
    /// The function to call with the replies (letters, digits, `_`, `$`, `.`); `jsonpcallback`
    /// when left out.
    jsonp: Option<String>,
    /// The Bayeux messages, as JSON.
    message: String,
}
