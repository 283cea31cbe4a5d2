//! The error of one bad option value, shared by the option rules (`options`) and the
//! scheduling rules (`schedule`), which `options` builds on.

/// A bad option value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("option `{option}`: {message}")]
pub struct OptionError {
    /// The option's name.
    pub option: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl OptionError {
    /// An error about `option`.
    pub fn new(option: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            option: option.into(),
            message: message.into(),
        }
    }
}
