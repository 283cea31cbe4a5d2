//! The agent desktop in headless Chromium (tests/node/desktop.mjs, driven by playwright-core):
//! two agents signed in at once in two browser contexts; a customer (the script, through the
//! GMS API) chats with the first, the second never sees that chat; a voice callback gets No
//! answer and comes back after its redial delay; a desktop behind a link that goes silent
//! shows the offline banner within 2.5 ping intervals and recovers. The script fails on any
//! console error in a page and saves screenshots under target/screenshots.

use crate::helpers::{require_chromium, run_node, ServerProcess, ADMIN_TOKEN};

#[test]
fn two_agents_at_once_one_chats_with_a_customer_the_other_never_sees_it() {
    require_chromium();
    let dir = tempfile::tempdir().unwrap();
    // Pings every 800 ms, so that the silent-link step waits 2 s, not the default 25 s.
    let server = ServerProcess::start(dir.path(), &[("CALLBACKD_AGENTS_KEEP_ALIVE_MS", "800")]);
    let output = run_node("desktop.mjs", &[&server.address, ADMIN_TOKEN]);
    assert!(
        output.contains("ok   the service reads COMPLETED after the agent left"),
        "{output}"
    );
    assert!(
        output.contains("ok   the second agent never saw the first agent's chat"),
        "{output}"
    );
    assert!(
        output.contains("ok   the callback came back after its redial delay"),
        "{output}"
    );
    assert!(
        output.contains("ok   link forwarding again: the page reconnected"),
        "{output}"
    );
}
