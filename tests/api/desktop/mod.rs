//! The agent desktop: identity (an agent's session acts only as its own agent), its event
//! stream, logging out agents who left, and the history.

mod events;
mod history;
mod identity;
mod presence;
