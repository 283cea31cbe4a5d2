//! A follower's routes: while another node holds the database lease, this node relays every
//! request to it and the answer back, so that a load balancer may send any request to any node.
//!
//! The active node publishes where it serves in the lease's row ([`Lease::publish`]); a
//! follower looks at that row every [`LOOK_EVERY`] ([`follow_holder`]). A request whose relay
//! could not even connect (the active node just died, and no new one serves yet) was never
//! carried out, so it waits for the next active node, up to [`WAIT_FOR_ACTIVE`], and goes there.
//! One cut off after it was sent may or may not have been carried out: it is answered 503 with
//! that said, as the database's own "commit unknown" is.
//!
//! [`Lease::publish`]: crate::store::postgres::Lease::publish

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::sync::watch;
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

/// How long a relay waits to connect to the active node before it counts it as gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Marks a request a follower relayed. A node that is no longer the active one answers such a
/// request with [`NOT_ACTIVE`] instead of relaying it again, so that a stale address cannot
/// send a request round in circles.
pub const RELAYED: HeaderName = HeaderName::from_static("x-callbackd-relayed");

/// Marks the answer of a node that is not the active one to a relayed request: nothing was
/// carried out, and the relaying node tries the next active node.
pub const NOT_ACTIVE: HeaderName = HeaderName::from_static("x-callbackd-not-active");

/// Headers of one hop only (RFC 9110 §7.6.1), not relayed in either direction.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Relays requests to the node holding the lease. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    client: reqwest::Client,
    holder: watch::Receiver<Option<Holder>>,
    max_body_bytes: u64,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("holder", &*self.holder.borrow())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay to the holder `holder` names (kept up to date by [`follow_holder`]); request
    /// bodies over `max_body_bytes` are refused as the active node would.
    pub fn new(holder: watch::Receiver<Option<Holder>>, max_body_bytes: u64) -> Relay {
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
        }
    }

    /// The relay's routes: every method and path.
    pub fn routes(self) -> BoxedFilter<(Response,)> {
        warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::stream())
            .then(
                move |method, path: warp::path::FullPath, query: String, headers, body| {
                    let relay = self.clone();
                    let target = if query.is_empty() {
                        path.as_str().to_string()
                    } else {
                        format!("{}?{query}", path.as_str())
                    };
                    async move { relay.forward(method, target, headers, body).await }
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
            return ApiError::ServiceUnavailable(
                "this node relays to the active one, and relays no websockets: use CometD's long-polling transport, or reach the active node directly".into(),
            )
            .into_response();
        }
        let body = match read_body(body, self.max_body_bytes).await {
            Ok(body) => body,
            Err(refused) => return refused.into_response(),
        };
        let mut headers = headers;
        for name in HOP_BY_HOP {
            headers.remove(name);
        }
        headers.insert(RELAYED, HeaderValue::from_static("1"));
        let deadline = tokio::time::Instant::now() + WAIT_FOR_ACTIVE;
        let mut gone: Option<Holder> = None;
        loop {
            let Some((holder, address)) = self.next_holder(gone.as_ref(), deadline).await else {
                return ApiError::ServiceUnavailable(format!(
                    "no active callbackd node answers (waited {} s for one to take over): retry shortly",
                    WAIT_FOR_ACTIVE.as_secs()
                ))
                .into_response();
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
                Ok(answer) if answer.headers().contains_key(&NOT_ACTIVE) => gone = Some(holder),
                Ok(answer) => return relayed(answer),
                Err(err) if err.is_connect() => {
                    tracing::debug!(%address, error = %err, "the active node does not answer; waiting for the next one");
                    gone = Some(holder);
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

    /// The holder to relay to, other than `gone`, once it serves; `None` past `deadline`.
    async fn next_holder(
        &self,
        gone: Option<&Holder>,
        deadline: tokio::time::Instant,
    ) -> Option<(Holder, String)> {
        let mut holder = self.holder.clone();
        let serving = |now: &Option<Holder>| {
            now.as_ref()
                .is_some_and(|now| now.address.is_some() && Some(now) != gone)
        };
        let found = tokio::time::timeout_at(deadline, holder.wait_for(serving))
            .await
            .ok()?
            .ok()?
            .clone()?;
        let address = found.address.clone()?;
        Some((found, address))
    }
}

/// Keeps `holder` up to date with the lease's row of the database at `url` until shutdown.
/// While the database does not answer, the last holder seen stays (it may well still serve).
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
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
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

/// The whole request body, refused past `limit` bytes as the active node would refuse it.
async fn read_body<B: bytes::Buf>(
    mut body: impl Stream<Item = Result<B, warp::Error>> + Unpin,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let mut read = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|err| {
            ApiError::BadRequest(format!("the request body could not be read: {err}"))
        })?;
        if (read.len() + chunk.remaining()) as u64 > limit {
            return Err(ApiError::body_too_large(limit));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            read.extend_from_slice(piece);
            let taken = piece.len();
            chunk.advance(taken);
        }
    }
    Ok(read.freeze())
}

/// The active node's answer as this node's, its body streamed as it comes (event streams and
/// held long-polls included).
fn relayed(answer: reqwest::Response) -> Response {
    let status = answer.status();
    let mut headers = answer.headers().clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let body = warp::reply::stream(answer.bytes_stream().map_err(std::io::Error::other));
    let mut response = HttpResponse::new(body.into_response().into_body());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
