//! The error of the use-case layer. `http` turns it into a status and a GMS error body.

use crate::center::chat::{ChatError, Refusal};
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
    /// The customer number is refused by the service's phone-number rules (400, GMS's
    /// `CallbackExceptionNumber`); the message is GMS's, naming the option.
    #[error("{0}")]
    InvalidNumber(String),
    /// A GMS protection refuses new work for now (503).
    #[error("{0}")]
    Unavailable(String),
    /// A desired time that the service's scheduling rules refuse (400), with the free time
    /// slots nearest to it (empty for the limits on how far ahead or back it may be).
    #[error("{message}")]
    Unschedulable {
        /// What refused it, naming the option.
        message: String,
        /// The nearest free slots and the callbacks each can still take.
        availability: Vec<(crate::domain::time::Timestamp, u32)>,
    },
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
            ChatError::Refused(Refusal::Limit(err)) => AppError::Limit(err),
            ChatError::Refused(refusal) => {
                AppError::InvalidField(FieldError::new("chat", refusal.to_string()))
            }
            ChatError::Store(err) => AppError::Store(err),
        }
    }
}
