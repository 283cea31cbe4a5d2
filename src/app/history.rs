//! An agent's handled interactions, for the desktop's History.

use super::{AppError, AppState};

/// A number that changes whenever `agent`'s history does (compare it for equality only).
///
/// # Errors
/// Storage failure.
pub fn version(_state: &AppState, _agent: &str) -> Result<u64, AppError> {
    Ok(0)
}
