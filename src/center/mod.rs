//! The embedded contact center: agents and their live states, and the Stat Server
//! statistics computed from them.
//!
//! - [`agent`]: agent configuration, states, capacity, target membership.
//! - [`stats`]: the Stat Server statistics of a routing target.
//! - [`chat`]: the Chat Server: a pure session ([`chat::session`]) and its owner (locks,
//!   storage, pushes).

pub mod agent;
pub mod chat;
pub mod stats;
