//! Routing: which waiting service gets which agent, and when (DESIGN.md §5).
//!
//! - [`core`]: the pure, steppable routing state machine. It owns the waiting services, the
//!   reservations and its own copy of every agent; it never does I/O and never reads the clock,
//!   so every rule is tested by passing timestamps.
//! - [`task`]: the tokio task that owns a `Router`, feeds it events in order, persists its
//!   effects (group-committed), and wakes it when a timer is due.

pub mod core;
pub mod task;

pub use task::RouterHandle;
