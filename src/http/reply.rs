//! Replies with the headers GMS sends on every JSON answer.

use serde::Serialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

/// `status` with `body` as JSON, `application/json;charset=UTF-8`, and GMS's no-cache headers.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => with_headers(status, bytes),
        Err(err) => {
            // Our own types always serialize; if one ever does not, say so without panicking.
            tracing::error!(error = %err, "cannot serialize a reply");
            with_headers(
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"exception":"InternalError","message":"the reply could not be built; see the server log"}"#.to_vec(),
            )
        }
    }
}

/// `status` with `body`, JSON already written, as [`json`] sends it.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    with_headers(status, body)
}

/// 200 with a JavaScript `body` (CometD callback-polling) and the no-cache headers.
pub fn javascript(body: String) -> Response {
    let mut response = with_headers(StatusCode::OK, body.into_bytes());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript;charset=UTF-8"),
    );
    response
}

/// 200 with `body` as it is, of type `content_type`, and the no-cache headers (a stored
/// Storage API value).
pub fn bytes(content_type: &str, body: Vec<u8>) -> Response {
    let mut response = with_headers(StatusCode::OK, body);
    let value = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response
}

fn with_headers(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    response
}
