//! The agent desktop: identity (an agent's session acts only as its own agent), voice
//! callbacks (outcomes and redials), the page and the page in a real browser.

mod browser;
mod identity;
mod page;
mod voice;
