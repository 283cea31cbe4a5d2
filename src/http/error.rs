//! The one place that turns errors into HTTP: [`ApiError`] (status, exception kind, message)
//! and [`handle_rejection`], which turns what warp rejects into a GMS error body (pages'
//! rejections are answered before it, by the `recover` in `mod.rs`).

use std::collections::BTreeMap;
use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Rejection;

use super::reply;
use crate::app::AppError;
use crate::domain::chat_limits::LimitError;
use crate::store::StoreError;

/// An error as a client sees it.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// 400: the request is wrong; the message says how to fix it.
    BadRequest(String),
    /// 400: the desired time is refused by the service's scheduling rules; `availability`
    /// lists the nearest free slots (`{"<ISO time>": remaining}`).
    DesiredTimeNotAvailable {
        /// What refused it, naming the option.
        message: String,
        /// The nearest free slots.
        availability: BTreeMap<String, u32>,
    },
    /// 400: the customer number is refused by the service's phone-number options (GMS's
    /// `CallbackExceptionNumber`).
    InvalidNumber(String),
    /// 401: missing or wrong bearer token.
    Unauthorized(String),
    /// 403: not allowed.
    Forbidden(String),
    /// 404: no such thing.
    NotFound(String),
    /// 405: the path exists with other methods.
    MethodNotAllowed,
    /// 413: the body, or a chat message in it, is over a limit; the message names which.
    PayloadTooLarge(String),
    /// 415: a body type this endpoint does not take.
    UnsupportedMediaType(String),
    /// 429: too many requests; retry after this many seconds.
    TooManyRequests {
        /// What was refused and which setting limits it.
        message: String,
        /// Sent as `Retry-After`.
        retry_after_secs: u64,
    },
    /// 503: try again later.
    ServiceUnavailable(String),
    /// 500: our fault; the cause is logged, not sent.
    Internal,
}

impl warp::reject::Reject for ApiError {}

/// A route whose path pattern matched a request but whose named resource does not exist (a
/// `{name}` that is no service of the route's kind): a 404 with this message, unless another
/// route's own [`ApiError`] answers the same request. It ranks below every `ApiError` and
/// above warp's "not found" and "method not allowed", so that routes sharing a path pattern
/// (`GET /genesys/1/service/{name}` and `GET /genesys/1/service/callback`) compose in any
/// order: the route the path is really about decides.
#[derive(Debug, Clone)]
pub struct NoSuchResource(pub ApiError);

impl warp::reject::Reject for NoSuchResource {}

/// The error body: `{"exception": "<kind>", "message": "<what to fix>"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody<'a> {
    /// A stable kind clients can match on: `InvalidRequest`, `Unauthorized`, `Forbidden`,
    /// `NotFound`, `MethodNotAllowed`, `PayloadTooLarge`, `UnsupportedMediaType`,
    /// `TooManyRequests`, `ServiceUnavailable`, `DesiredTimeNotAvailable`,
    /// `CallbackExceptionNumber` or `InternalError`.
    exception: &'a str,
    /// What went wrong and how to fix it; a bad field is named.
    message: String,
    /// With `DesiredTimeNotAvailable` only: the free time slots nearest to the refused
    /// desired time, each with the callbacks it can still take.
    #[serde(skip_serializing_if = "Option::is_none")]
    availability: Option<BTreeMap<String, u32>>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidNumber(_)
            | ApiError::DesiredTimeNotAvailable { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `exception` field: a stable kind clients can match on.
    pub fn exception(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "InvalidRequest",
            ApiError::InvalidNumber(_) => "CallbackExceptionNumber",
            ApiError::DesiredTimeNotAvailable { .. } => "DesiredTimeNotAvailable",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound(_) => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::PayloadTooLarge(_) => "PayloadTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::Internal => "InternalError",
        }
    }

    /// The message alone (for pages that show the error in place).
    pub fn into_message(self) -> String {
        self.message()
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::InvalidNumber(m)
            | ApiError::DesiredTimeNotAvailable { message: m, .. }
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::TooManyRequests { message: m, .. }
            | ApiError::ServiceUnavailable(m) => m.clone(),
            ApiError::MethodNotAllowed => {
                "this path does not take that method: see docs/api.md for the methods it takes"
                    .into()
            }
            ApiError::Internal => {
                "the server failed to handle the request; it is logged, and nothing was changed unless a later query shows it".into()
            }
        }
    }

    /// 413 for a request body over `max_body_bytes`.
    pub fn body_too_large(limit: u64) -> Self {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than {limit} bytes: send less (the limit is max_body_bytes)"
        ))
    }

    /// The error as a reply (a 429 says when to retry in `Retry-After`).
    pub fn into_response(self) -> Response {
        let mut response = reply::json(
            self.status(),
            &ErrorBody {
                exception: self.exception(),
                message: self.message(),
                availability: match &self {
                    ApiError::DesiredTimeNotAvailable { availability, .. } => {
                        Some(availability.clone())
                    }
                    _ => None,
                },
            },
        );
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            response.headers_mut().insert(
                warp::http::header::RETRY_AFTER,
                warp::http::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}

/// What a client is told when the database's disk is (nearly) full.
const DISK_FULL: &str = "the server's disk is nearly full, so it takes no new data for now (nothing was changed); reads still work: retry later";

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::InvalidField(_) | AppError::InvalidOption(_) | AppError::Lifecycle(_) => {
                ApiError::BadRequest(err.to_string())
            }
            AppError::UnknownService(_) | AppError::NotFound(_) => {
                ApiError::NotFound(err.to_string())
            }
            AppError::Forbidden(message) => ApiError::Forbidden(message),
            AppError::InvalidNumber(message) => ApiError::InvalidNumber(message),
            AppError::Unschedulable {
                message,
                availability,
            } => ApiError::DesiredTimeNotAvailable {
                message,
                availability: availability
                    .into_iter()
                    .map(|(at, room)| (at.to_iso(), room))
                    .collect(),
            },
            AppError::Limit(LimitError::TooFast {
                retry_after_secs, ..
            }) => ApiError::TooManyRequests {
                message: err.to_string(),
                retry_after_secs,
            },
            AppError::Limit(_) => ApiError::PayloadTooLarge(err.to_string()),
            AppError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            AppError::Unavailable(message) => ApiError::ServiceUnavailable(message),
            AppError::Store(StoreError::ShuttingDown) => {
                ApiError::ServiceUnavailable("the server is shutting down: retry shortly".into())
            }
            AppError::Store(StoreError::LowSpace { .. }) => {
                tracing::warn!(error = %err, "write refused: the disk is nearly full");
                ApiError::ServiceUnavailable(DISK_FULL.into())
            }
            AppError::Store(StoreError::NoSpace(_)) => {
                // The sled engine keeps the first write error it meets and returns it from
                // every later write and flush; only opening the database again clears it
                // (docs/decisions.md, "ENOSPC is 503 too").
                tracing::error!(error = %err, "storage failure: the disk is full; the database refuses every write from now on: free space, then restart callbackd (nothing acknowledged is lost)");
                ApiError::ServiceUnavailable(DISK_FULL.into())
            }
            AppError::Store(StoreError::Unreachable(_)) => {
                tracing::error!(error = %err, "the database cannot be reached");
                ApiError::ServiceUnavailable(
                    "the database cannot be reached, so the request was not acknowledged: retry shortly"
                        .into(),
                )
            }
            AppError::Store(StoreError::CommitUnknown(_)) => {
                tracing::error!(error = %err, "a commit's outcome is unknown");
                ApiError::ServiceUnavailable(
                    "the database connection failed while the change was being committed, so it may or may not have been stored: look it up before you retry"
                        .into(),
                )
            }
            AppError::Store(err) => {
                tracing::error!(error = %err, "storage failure while handling a request");
                ApiError::Internal
            }
        }
    }
}

/// Replies `Ok(value)` through `ok`, or the error as an error body.
pub fn respond<T>(result: Result<T, AppError>, ok: impl FnOnce(T) -> Response) -> Response {
    match result {
        Ok(value) => ok(value),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// Turns a rejection into a GMS error body: our own errors first, then warp's.
pub async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if let Some(err) = rejection.find::<ApiError>() {
        err.clone()
    } else if let Some(NoSuchResource(err)) = rejection.find::<NoSuchResource>() {
        err.clone()
    } else if rejection.is_not_found() {
        ApiError::NotFound(
            "no such endpoint: the GMS API lives under /genesys/1/ (see docs/api.md)".into(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if let Some(err) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::BadRequest(format!("{err}: send it as printable ASCII"))
    } else if let Some(err) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::BadRequest(err.to_string())
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::BadRequest("the query string is not valid URL encoding".into())
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        ApiError::Internal
    };
    Ok(error.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_503_with_a_message_never_500() {
        for err in [
            StoreError::LowSpace {
                free_bytes: 1,
                min_free_bytes: 2,
            },
            StoreError::NoSpace("No space left on device (os error 28)".into()),
        ] {
            let api = ApiError::from(AppError::Store(err.clone()));
            assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
            assert!(api.message().contains("disk is nearly full"), "{err}");
        }
        let away = ApiError::from(AppError::Store(StoreError::Unreachable("down".into())));
        assert_eq!(away.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            away.message().contains("not acknowledged"),
            "{}",
            away.message()
        );
        let unknown = ApiError::from(AppError::Store(StoreError::CommitUnknown("cut".into())));
        assert_eq!(unknown.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            unknown.message().contains("may or may not"),
            "{}",
            unknown.message()
        );
        let other = ApiError::from(AppError::Store(StoreError::Engine("broken".into())));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
