//! The `throttles` tree's values, format 1: interval windows and daily counts.

use serde::{Deserialize, Serialize};

use super::super::codec::Versioned;
use crate::domain::throttle::Window;
use crate::domain::time::Timestamp;

/// An interval throttle's window as format 1 stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowV1 {
    start_ms: u64,
    count: u64,
}

impl Versioned for WindowV1 {
    const VERSION: u8 = 1;
}

/// The creates a day counted for one value of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountV1(pub u64);

impl Versioned for CountV1 {
    const VERSION: u8 = 1;
}

impl From<&Window> for WindowV1 {
    fn from(window: &Window) -> Self {
        Self {
            start_ms: window.start.as_millis(),
            count: window.count,
        }
    }
}

impl From<WindowV1> for Window {
    fn from(window: WindowV1) -> Self {
        Self {
            start: Timestamp::from_millis(window.start_ms),
            count: window.count,
        }
    }
}
