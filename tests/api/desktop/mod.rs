//! The agent desktop: identity (an agent's session acts only as its own agent), its event
//! stream, logging out agents who left, the history, voice callbacks (outcomes and redials),
//! the page and the page in a real browser.

mod browser;
mod events;
mod history;
mod identity;
mod page;
mod presence;
mod voice;
