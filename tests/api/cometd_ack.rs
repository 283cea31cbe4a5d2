//! CometD's acknowledgement extension seen from the official JavaScript client (npm `cometd`'s
//! `AckExtension`): `tests/node/cometd_ack.mjs` puts a proxy between the client and the real
//! binary and cuts the connection carrying a push, then checks that the push arrives again on
//! `/_genesys` after the reconnect and after a re-handshake of the same `gms_user`, and that
//! without the extension nothing changed. Needs Node and `npm ci --prefix tests/node`.

use crate::helpers::{run_node, ServerProcess};

#[test]
fn a_push_cut_off_before_its_acknowledgement_arrives_again_and_only_with_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let output = run_node("cometd_ack.mjs", &[&server.address]);
    for check in [
        "ok   1: the push arrived on /_genesys after the reconnect",
        "ok   1: each push once, in order",
        "ok   2: a new client of ack-rehandshake got it on /_genesys",
        "ok   3: without the extension the replies carry no ext.ack",
    ] {
        assert!(output.contains(check), "missing `{check}`:\n{output}");
    }
}
