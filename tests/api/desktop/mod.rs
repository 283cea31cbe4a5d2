//! The agent desktop: identity (an agent's session acts only as its own agent).

mod identity;
