//! The official CometD JavaScript client (npm `cometd` with `cometd-nodejs-client`) against the
//! real binary: `tests/node/chat_delay.mjs` drives a chat-delay flow through it over
//! long-polling and over the websocket, from the handshake to the agent-available push and the
//! chat refresh pushes. Needs Node and `npm ci --prefix tests/node` (`.ci/run` does it).

use std::path::Path;

use crate::helpers::{run_node, ServerProcess, ADMIN_TOKEN};

#[test]
fn the_official_cometd_javascript_client_runs_a_chat_delay_flow_over_both_transports() {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    for package in ["cometd", "cometd-nodejs-client", "ws"] {
        assert!(
            node_dir.join("node_modules").join(package).is_dir(),
            "tests/node/node_modules/{package} is missing: run `npm ci --prefix tests/node` \
             (needs Node 20+ and npm) before `cargo test`"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let output = run_node("chat_delay.mjs", &[&server.address, ADMIN_TOKEN]);
    // Both transports ran every check.
    for transport in ["long-polling", "websocket"] {
        assert!(
            output.contains(&format!("ok   {transport}: disconnected")),
            "{transport} did not get to the end:\n{output}"
        );
    }
}

#[test]
fn the_official_cometd_javascript_client_runs_a_chat_v2_widget_flow_over_both_transports() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let output = run_node("chat_v2.mjs", &[&server.address, ADMIN_TOKEN]);
    for transport in ["long-polling", "websocket"] {
        for step in [
            "requestChat: chatId",
            "sendMessage delivered",
            "a wrong secureKey",
            "disconnect: chatEnded",
            "disconnected",
        ] {
            assert!(
                output.contains(&format!("ok   {transport}: {step}")),
                "{transport} did not get to `{step}`:\n{output}"
            );
        }
    }
}
