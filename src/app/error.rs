//! The error of the use-case layer. `http` turns it into a status and a GMS error body.

use crate::center::chat::ChatError;
use crate::domain::chat_limits::LimitError;
use crate::domain::options::{FieldError, OptionError};
use crate::domain::service::LifecycleError;
use crate::store::StoreError;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A request field is missing or bad.
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    /// A configured-service option is bad.
    #[error(transparent)]
    InvalidOption(#[from] OptionError),
    /// No configured service has this name.
    #[error("no configured service is named `{0}`: list them with GET /genesys/1/admin/services")]
    UnknownService(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The requester may not see or change this.
    #[error("{0}")]
    Forbidden(String),
    /// A GMS protection refuses new work for now (503).
    #[error("{0}")]
    Unavailable(String),
    /// The service's state does not allow the operation.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// A chat limit refused a message: too large or transcript full (413), too fast (429).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A request is over a size limit other than the body's (a Storage API value or area):
    /// 413; the message names the limit.
    #[error("{0}")]
    TooLarge(String),
    /// Storage failed (logged; clients see a generic message).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ChatError> for AppError {
    fn from(err: ChatError) -> Self {
        match err {
            ChatError::NotFound(message) => AppError::NotFound(message),
            ChatError::Closed(_) | ChatError::Refused(_) => {
                AppError::InvalidField(FieldError::new("chat", err.to_string()))
            }
            ChatError::Limit(err) => AppError::Limit(err),
            ChatError::Store(err) => AppError::Store(err),
        }
    }
}
