//! The official CometD JavaScript client (npm `cometd` with `cometd-nodejs-client`) against the
//! real binary: `tests/node/chat_delay.mjs` drives a chat-delay flow through it over
//! long-polling and over the websocket, from the handshake to the agent-available push and the
//! chat refresh pushes. Needs Node and `npm ci --prefix tests/node` (`.ci/run` does it).

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{ServerProcess, ADMIN_TOKEN};

/// The script's own steps time out after a few seconds each; this only catches a hung node.
const NODE_DEADLINE: Duration = Duration::from_secs(120);

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

    // Output goes to files, so that a hung node can be killed and its output still shown.
    let out_path = dir.path().join("node.out");
    let out = File::create(&out_path).unwrap();
    let mut child = Command::new("node")
        .arg(node_dir.join("chat_delay.mjs"))
        .arg(&server.address)
        .arg(ADMIN_TOKEN)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run `node` ({err}): install Node 20+"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > NODE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    println!("{output}");
    match status {
        Some(status) => assert!(
            status.success(),
            "chat_delay.mjs failed ({status}):\n{output}"
        ),
        None => panic!("chat_delay.mjs still running after {NODE_DEADLINE:?}:\n{output}"),
    }
    // Both transports ran every check.
    for transport in ["long-polling", "websocket"] {
        assert!(
            output.contains(&format!("ok   {transport}: disconnected")),
            "{transport} did not get to the end:\n{output}"
        );
    }
}
