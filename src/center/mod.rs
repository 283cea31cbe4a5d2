//! The embedded contact center's live parts: the Chat Server that owns the open chat sessions,
//! and the Stat Server statistics computed from the agents.
//!
//! - [`chat`]: the Chat Server: the owner (locks, storage, pushes) of the pure sessions of
//!   [`crate::domain::chat::session`].
//! - [`stats`]: the Stat Server statistics of a routing target.
//!
//! Agents themselves (configuration, states, capacity) are plain types in
//! [`crate::domain::agent`]; the router holds their live states.

pub mod chat;
pub mod stats;
