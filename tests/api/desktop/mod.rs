//! The agent desktop: identity (an agent's session acts only as its own agent), voice
//! callbacks (outcomes and redials).

mod identity;
mod voice;
