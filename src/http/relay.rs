//! A follower's routes: while another node holds the database lease, this node relays every
//! request to it and the answer back, so that a load balancer may send any request to any node.
//!
//! The active node publishes where it serves in the lease's row ([`Lease::publish`]); a
//! follower looks at that row every [`LOOK_EVERY`] ([`follow_holder`]). A request whose relay
//! could not even connect (the active node just died, and no new one serves yet) was never
//! carried out, so it waits for the next active node, up to [`WAIT_FOR_ACTIVE`], and goes there.
//! One cut off after it was sent may or may not have been carried out: it is answered 503 with
//! that said, as the database's own "commit unknown" is. A websocket (CometD's websocket
//! transport) is opened on the active node first, then accepted, and piped frame by frame.
//!
//! [`Lease::publish`]: crate::store::postgres::Lease::publish

use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt, TryStreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response as HttpResponse};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::ApiError;
use crate::store::postgres::{Holder, LeaseView};
use crate::supervisor::Shutdown;

/// How often a follower looks at who holds the lease.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// How long a request waits for an active node to relay to (while the lease changes hands, or
/// before the first node has started).
pub const WAIT_FOR_ACTIVE: Duration = Duration::from_secs(10);

/// How long a relay waits to connect to the active node before it tries again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a relay that could not reach the active node waits for another to take the lease
/// before it tries the same one again.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// Marks a request a follower relayed. A node that is no longer the active one answers such a
/// request with [`NOT_ACTIVE`] instead of relaying it again, so that a stale address cannot
/// send a request round in circles.
pub const RELAYED: HeaderName = HeaderName::from_static("x-callbackd-relayed");

/// Marks the answer of a node that is not the active one to a relayed request: nothing was
/// carried out, and the relaying node tries the next active node.
pub const NOT_ACTIVE: HeaderName = HeaderName::from_static("x-callbackd-not-active");

/// Headers of one hop only (RFC 9110 §7.6.1), not relayed in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes the headers of one hop: the fixed ones, and those the `Connection` header names
/// as this hop's own (RFC 9110 §7.6.1), which a sender may add at will.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// Relays requests to the node holding the lease. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    client: reqwest::Client,
    holder: watch::Receiver<Option<Holder>>,
    max_body_bytes: u64,
    /// Flips to `true` when this node stops: relayed requests and streams end [`STOP_GRACE`]
    /// later, so that an answer already on its way gets through.
    stopping: watch::Receiver<bool>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("holder", &*self.holder.borrow())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay to the holder `holder` names (kept up to date by [`follow_holder`]), until
    /// `stopping` flips. Request bodies are read whole (so that one may go to the next active
    /// node); one over what its route takes (`max_body_bytes`, or the Storage API's own limit
    /// on its paths) is refused here, as the active node would refuse it.
    pub fn new(
        holder: watch::Receiver<Option<Holder>>,
        max_body_bytes: u64,
        stopping: watch::Receiver<bool>,
    ) -> Relay {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Held long-polls and event streams: the active node decides when they end.
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("a client without TLS settings or proxies always builds");
        Relay {
            client,
            holder,
            max_body_bytes,
            stopping,
        }
    }

    /// The relay's routes: every method and path, websockets included.
    pub fn routes(self) -> BoxedFilter<(Response,)> {
        self.clone()
            .websocket_routes()
            .or(self.http_routes())
            .unify()
            .boxed()
    }

    /// Websocket upgrades: the active node's websocket, piped frame by frame.
    fn websocket_routes(self) -> BoxedFilter<(Response,)> {
        warp::ws()
            .and(target())
            .and(warp::header::headers_cloned())
            .then(move |ws: Ws, target: String, headers| {
                let relay = self.clone();
                async move { relay.websocket(ws, target, headers).await }
            })
            .boxed()
    }

    /// Every other request.
    fn http_routes(self) -> BoxedFilter<(Response,)> {
        warp::method()
            .and(target())
            .and(warp::header::headers_cloned())
            .and(warp::body::stream())
            .then(
                move |method, target: String, headers, body| {
                    let relay = self.clone();
                    async move {
                        let stopping = relay.stopping.clone();
                        tokio::select! {
                            answer = relay.forward(method, target, headers, body) => answer,
                            () = stopped(stopping) => ApiError::ServiceUnavailable(
                                "this node is stopping: the active node may or may not have carried the request out; query before retrying".into(),
                            )
                            .into_response(),
                        }
                    }
                },
            )
            .boxed()
    }

    /// Relays one request and answers what the active node answered.
    async fn forward<B>(
        &self,
        method: Method,
        target: String,
        headers: HeaderMap,
        body: impl Stream<Item = Result<B, warp::Error>> + Unpin,
    ) -> Response
    where
        B: bytes::Buf,
    {
        if headers.contains_key(&RELAYED) {
            return not_active();
        }
        if headers
            .get(header::UPGRADE)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
        {
            return ApiError::BadRequest(
                "a websocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version 13".into(),
            )
            .into_response();
        }
        // The Storage API takes larger bodies than the rest, on its paths only.
        let limit = if target.split(['/', '?']).any(|segment| segment == "storage") {
            self.max_body_bytes.max(super::storage::MAX_STORAGE_BODY)
        } else {
            self.max_body_bytes
        };
        let body = match super::form::read_limited(body, limit).await {
            Ok(body) => body,
            Err(refused) => return refused.into_response(),
        };
        let mut headers = headers;
        strip_hop_by_hop(&mut headers);
        headers.insert(RELAYED, HeaderValue::from_static("1"));
        let deadline = tokio::time::Instant::now() + WAIT_FOR_ACTIVE;
        let mut tried: Option<Holder> = None;
        loop {
            let Some((holder, address)) = self.next_holder(tried.as_ref(), deadline).await else {
                return no_active_node();
            };
            let sent = self
                .client
                .request(method.clone(), format!("http://{address}{target}"))
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await;
            match sent {
                // Nothing was carried out there: go to the next active node.
                Ok(answer) if answer.headers().contains_key(&NOT_ACTIVE) => tried = Some(holder),
                Ok(answer) => return relayed(answer, self.stopping.clone()),
                Err(err) if err.is_connect() => {
                    tracing::debug!(%address, error = %err, "the active node does not answer; trying again");
                    tried = Some(holder);
                }
                Err(err) => {
                    tracing::warn!(%address, error = %err, "the active node stopped answering a relayed request");
                    return ApiError::ServiceUnavailable(
                        "the active node stopped answering while it handled the request: it may or may not have been carried out; query before retrying".into(),
                    )
                    .into_response();
                }
            }
        }
    }

    /// Opens the same websocket on the active node, then accepts the client's upgrade and
    /// pipes the two; a refusal of the active node (a missing `gms_user`, say) is answered as
    /// it came, before any upgrade.
    async fn websocket(&self, ws: Ws, target: String, mut headers: HeaderMap) -> Response {
        if headers.contains_key(&RELAYED) {
            return not_active();
        }
        strip_hop_by_hop(&mut headers);
        let deadline = tokio::time::Instant::now() + WAIT_FOR_ACTIVE;
        let mut tried: Option<Holder> = None;
        loop {
            let Some((holder, address)) = self.next_holder(tried.as_ref(), deadline).await else {
                return no_active_node();
            };
            let Ok(mut request) = format!("ws://{address}{target}").into_client_request() else {
                return ApiError::BadRequest("this path cannot be relayed as a websocket".into())
                    .into_response();
            };
            for (name, value) in &headers {
                if name == header::HOST {
                    request.headers_mut().insert(name.clone(), value.clone());
                } else if !is_handshake_header(name) {
                    request.headers_mut().append(name.clone(), value.clone());
                }
            }
            request
                .headers_mut()
                .insert(RELAYED, HeaderValue::from_static("1"));
            let connected =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
                    .await;
            match connected {
                Ok(Ok((upstream, _))) => {
                    let limit = usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX);
                    let stopping = self.stopping.clone();
                    return ws
                        .max_message_size(limit)
                        .max_frame_size(limit)
                        .on_upgrade(move |socket| pipe(socket, upstream, stopping))
                        .into_response();
                }
                Ok(Err(WsError::Http(refused))) if refused.headers().contains_key(&NOT_ACTIVE) => {
                    tried = Some(holder);
                }
                Ok(Err(WsError::Http(refused))) => {
                    let (parts, body) = refused.into_parts();
                    let mut response = Response::new(body.unwrap_or_default().into());
                    *response.status_mut() = parts.status;
                    let mut headers = parts.headers;
                    strip_hop_by_hop(&mut headers);
                    // The body is what the handshake had read: hyper gives its own length.
                    headers.remove(header::CONTENT_LENGTH);
                    *response.headers_mut() = headers;
                    return response;
                }
                // Nothing reached the active node: try again, or the next.
                Ok(Err(WsError::Io(err))) => {
                    tracing::debug!(%address, error = %err, "the active node does not answer; trying again");
                    tried = Some(holder);
                }
                Err(_elapsed) => {
                    tracing::debug!(%address, "the active node does not accept the connection; trying again");
                    tried = Some(holder);
                }
                Ok(Err(err)) => {
                    tracing::warn!(%address, error = %err, "the active node's websocket handshake failed");
                    return ApiError::ServiceUnavailable(
                        "the active node did not complete the websocket handshake: retry shortly"
                            .into(),
                    )
                    .into_response();
                }
            }
        }
    }

    /// The holder to relay to once one serves; `None` past `deadline`. After `tried` could
    /// not be reached, waits [`RETRY_AFTER`] for another node to take the lease, then answers
    /// whichever holds it (`tried` again if it still does: it may only have been slow).
    async fn next_holder(
        &self,
        tried: Option<&Holder>,
        deadline: tokio::time::Instant,
    ) -> Option<(Holder, String)> {
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        let mut holder = self.holder.clone();
        if let Some(tried) = tried {
            let pause = deadline.min(tokio::time::Instant::now() + RETRY_AFTER);
            let changed = |now: &Option<Holder>| now.as_ref() != Some(tried);
            let _ = tokio::time::timeout_at(pause, holder.wait_for(changed)).await;
        }
        let serving = |now: &Option<Holder>| now.as_ref().is_some_and(|now| now.address.is_some());
        let found = tokio::time::timeout_at(deadline, holder.wait_for(serving))
            .await
            .ok()?
            .ok()?
            .clone()?;
        let address = found.address.clone()?;
        Some((found, address))
    }
}

/// Keeps `holder` up to date with the lease's row of the database at `url` until shutdown, or
/// until nobody looks at `holder` any more (the node took over and its relay is gone). While
/// the database does not answer, the last holder seen stays (it may well still serve).
pub async fn follow_holder(
    url: String,
    holder: watch::Sender<Option<Holder>>,
    mut shutdown: Shutdown,
) -> Result<(), String> {
    let mut view: Option<LeaseView> = None;
    loop {
        if view.is_none() {
            view = LeaseView::open(&url)
                .inspect_err(|err| tracing::debug!(error = %err, "cannot look at the lease yet"))
                .ok();
        }
        if let Some(looking) = &view {
            match looking.holder().await {
                Ok(now) => {
                    holder.send_if_modified(|seen| {
                        let changed = *seen != now;
                        *seen = now;
                        changed
                    });
                }
                Err(err) => {
                    tracing::debug!(error = %err, "cannot look at the lease; trying again");
                    view = None;
                }
            }
        }
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            // This node took over and nothing relays any more: stop looking, and let go of
            // the database connection (the supervisor expects the task until shutdown).
            () = holder.closed() => {
                drop(view);
                tracing::debug!("nothing relays any more; the lease is no longer watched");
                shutdown.wait().await;
                return Ok(());
            }
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// How long, once this node stops, what it relays may still take to finish: an answer already
/// on its way (a held connect the active node has just answered) gets through.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Resolves [`STOP_GRACE`] after `stopping` flips; never if it cannot flip any more.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    if stopping.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(STOP_GRACE).await;
}

/// The answer when no node took the lease in time.
fn no_active_node() -> Response {
    ApiError::ServiceUnavailable(format!(
        "no active callbackd node answers (waited {} s for one to take over): retry shortly",
        WAIT_FOR_ACTIVE.as_secs()
    ))
    .into_response()
}

/// The headers of a websocket handshake, which each hop makes its own.
fn is_handshake_header(name: &HeaderName) -> bool {
    [
        header::UPGRADE,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_EXTENSIONS,
        header::SEC_WEBSOCKET_ACCEPT,
        // The active node chooses no subprotocol when it is reached directly either.
        header::SEC_WEBSOCKET_PROTOCOL,
    ]
    .contains(name)
}

/// Pipes the client's websocket and the active node's both ways until either side closes or
/// this node stops; then both are dropped. Pings and pongs stay on their hop: each side's
/// websocket layer answers its own.
async fn pipe(
    client: WebSocket,
    active: WebSocketStream<MaybeTlsStream<TcpStream>>,
    stopping: watch::Receiver<bool>,
) {
    let (mut to_client, mut from_client) = client.split();
    let (mut to_active, mut from_active) = active.split();
    let inbound = async {
        while let Some(Ok(frame)) = from_client.next().await {
            let Some(frame) = to_active_frame(frame) else {
                continue;
            };
            if to_active.send(frame).await.is_err() {
                break;
            }
        }
        let _ = to_active.close().await;
    };
    let outbound = async {
        while let Some(Ok(frame)) = from_active.next().await {
            let Some(frame) = to_client_frame(frame) else {
                continue;
            };
            if to_client.send(frame).await.is_err() {
                break;
            }
        }
        let _ = to_client.close().await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
        () = stopped(stopping) => {}
    }
}

/// A client's frame as the active node gets it (`None`: not relayed).
fn to_active_frame(frame: Message) -> Option<WsMessage> {
    if frame.is_close() {
        return Some(WsMessage::Close(frame.close_frame().map(
            |(code, reason)| CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_string().into(),
            },
        )));
    }
    if frame.is_ping() || frame.is_pong() {
        return None;
    }
    if let Ok(text) = frame.to_str() {
        return Some(WsMessage::Text(text.to_string().into()));
    }
    Some(WsMessage::Binary(frame.into_bytes()))
}

/// The active node's frame as the client gets it (`None`: not relayed).
fn to_client_frame(frame: WsMessage) -> Option<Message> {
    match frame {
        WsMessage::Text(text) => Some(Message::text(text.as_str())),
        WsMessage::Binary(bytes) => Some(Message::binary(bytes)),
        WsMessage::Close(Some(close)) => Some(Message::close_with(
            u16::from(close.code),
            close.reason.to_string(),
        )),
        WsMessage::Close(None) => Some(Message::close()),
        WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => None,
    }
}

/// The request's path and query (`/path?query`), as the active node is asked for it.
fn target() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::path::full()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(|path: warp::path::FullPath, query: String| {
            if query.is_empty() {
                path.as_str().to_string()
            } else {
                format!("{}?{query}", path.as_str())
            }
        })
}

/// The answer of a node that is not the active one to a relayed request.
fn not_active() -> Response {
    let mut response = ApiError::ServiceUnavailable(
        "this callbackd node is not the active one; the relaying node tries the next".into(),
    )
    .into_response();
    response
        .headers_mut()
        .insert(NOT_ACTIVE, HeaderValue::from_static("1"));
    response
}

/// The active node's answer as this node's, its body streamed as it comes (event streams and
/// held long-polls included) until the stream ends, or [`STOP_GRACE`] after this node stops.
fn relayed(answer: reqwest::Response, stopping: watch::Receiver<bool>) -> Response {
    let status = answer.status();
    let mut headers = answer.headers().clone();
    strip_hop_by_hop(&mut headers);
    let body = warp::reply::stream(
        answer
            .bytes_stream()
            .map_err(std::io::Error::other)
            .take_until(Box::pin(stopped(stopping))),
    );
    let mut response = HttpResponse::new(body.into_response().into_body());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_of_one_hop_are_stripped_with_those_the_connection_header_names() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Hop-Secret"),
            ("connection", "close,x-other-hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-hop-secret", "only for the next hop"),
            ("x-other-hop", "1"),
            ("gms_user", "alice"),
            ("host", "node-b:8080"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }

        strip_hop_by_hop(&mut headers);

        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["gms_user", "host"]);
    }

    /// The sessions on `client`'s database but its own.
    async fn other_sessions(client: &tokio_postgres::Client) -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Polls `other_sessions` until it is `expected`; fails after 10 s.
    async fn wait_for_sessions(client: &tokio_postgres::Client, expected: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = other_sessions(client).await;
            if now == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{now} sessions, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lease_follower_lets_go_of_the_database_once_nothing_relays() {
        let url = crate::store::postgres::throwaway::shared().fresh_database();
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let supervisor = crate::supervisor::Supervisor::new();
        let (holder, looking) = watch::channel(None);
        let following = tokio::spawn(follow_holder(url, holder, supervisor.shutdown()));
        wait_for_sessions(&client, 1).await;

        // The node took over: its relay, the only one looking, is gone.
        drop(looking);
        wait_for_sessions(&client, 0).await;
        assert!(!following.is_finished(), "it runs until shutdown");

        drop(supervisor);
        let ended = tokio::time::timeout(Duration::from_secs(5), following)
            .await
            .expect("ends at shutdown");
        assert_eq!(ended.unwrap(), Ok(()));
    }
}
