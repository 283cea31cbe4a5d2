//! Routing: which waiting service gets which agent, and when (DESIGN.md §5).
//!
//! - [`core`]: the pure, steppable routing state machine. It owns the waiting services, the
//!   reservations and its own copy of every agent; it never does I/O and never reads the clock,
//!   so every rule is tested by passing timestamps.
//! - `lanes`: the priority lanes the core keeps its waiting services in (per virtual queue,
//!   per target and media), with the `StatCallsWaiting` counts; answers "who is first" and
//!   "how many are ahead" without walking a queue.
//! - `ranked`: the counted ordered set (a treap with subtree sizes) behind the lanes.
//! - `available`: the agents free for each media, longest idle first.
//! - `targets`: the targets that services name, interned, with their members computed once.
//! - `estimates`: each virtual queue's recent departures, for ETA and EWT.
//! - [`task`]: the tokio task that owns a `Router`, feeds it events in order, persists its
//!   effects (group-committed), and wakes it when a timer is due.
//!
//! Dependencies point down: `task` -> `core` -> `lanes` -> `ranked`, and `core` ->
//! `available`, `targets`, `estimates` (each knows only `domain`).

use std::sync::Arc;

mod available;
pub mod core;
mod estimates;
mod lanes;
mod ranked;
mod targets;
pub mod task;

pub use task::RouterHandle;

/// Ids are shared between the maps and ordered sets that index a service, so cloning one is
/// a reference count, not an allocation.
type Id = Arc<str>;
