//! Routing: which waiting service gets which agent, and when (DESIGN.md §5).
//!
//! - [`core`]: the pure, steppable routing state machine. It owns the waiting services, the
//!   reservations and its own copy of every agent; it never does I/O and never reads the clock,
//!   so every rule is tested by passing timestamps. The task that feeds it events and persists
//!   its effects lives elsewhere.

pub mod core;
