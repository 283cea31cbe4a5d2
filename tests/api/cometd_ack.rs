//! CometD's acknowledgement extension seen from the official JavaScript client (npm `cometd`'s
//! `AckExtension`): `tests/node/cometd_ack.mjs` puts a proxy between the client and the real
//! binary and cuts the connection carrying a push, then checks that the push arrives again on
//! `/_genesys` after the reconnect and after a re-handshake of the same `gms_user`, and that
//! without the extension nothing changed. Needs Node and `npm ci --prefix tests/node`.
//!
//! And across `kill -9`, over raw long-polling: a push received but not acknowledged comes
//! again to the same `gms_user`'s new client after the restart; an acknowledged one does not.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{eventually, json, run_node, ServerProcess, ADMIN_TOKEN};

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

/// A raw long-polling CometD client of one `gms_user` that uses the acknowledgement extension
/// as CometD's `AckExtension` does: `ext: {ack: true}` in the handshake, and in each connect
/// the batch number of the last connect reply it received (0 before any).
struct AckingClient {
    http: reqwest::Client,
    base: String,
    user: String,
    id: String,
    /// The batch of the last connect reply received: what the next connect acknowledges.
    received: u64,
}

impl AckingClient {
    /// Handshakes with the extension (the reply must grant it) and subscribes to `/_genesys`.
    async fn join(base: &str, user: &str) -> AckingClient {
        let mut client = AckingClient {
            http: reqwest::Client::new(),
            base: base.to_string(),
            user: user.to_string(),
            id: String::new(),
            received: 0,
        };
        let reply = client
            .send(
                json!([{"version":"1.0","minimumVersion":"0.9","channel":"/meta/handshake",
                "supportedConnectionTypes":["long-polling"],"ext":{"ack":true},"id":"1"}]),
            )
            .await;
        assert_eq!(reply[0]["successful"], true, "{reply}");
        assert_eq!(
            reply[0]["ext"],
            json!({"ack": true}),
            "ack granted: {reply}"
        );
        client.id = reply[0]["clientId"].as_str().expect("clientId").to_string();
        let subscribed = client
            .send(
                json!([{"channel":"/meta/subscribe","subscription":"/_genesys",
                "clientId":client.id,"id":"2"}]),
            )
            .await;
        assert_eq!(subscribed[0]["successful"], true, "{subscribed}");
        client
    }

    async fn send(&self, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/genesys/cometd", self.base))
            .header("gms_user", &self.user)
            .header("Content-Type", "application/json;charset=UTF-8")
            .body(body.to_string())
            .send()
            .await
            .expect("cometd request");
        assert_eq!(response.status(), 200);
        json(response).await
    }

    /// One connect that acknowledges the last batch received and is held at most `hold`;
    /// returns the pushes (`data` of the `/_genesys` messages) of the reply.
    async fn connect(&mut self, hold: Duration) -> Vec<Value> {
        let reply = self
            .send(
                json!([{"channel":"/meta/connect","connectionType":"long-polling",
                "clientId":self.id,"advice":{"timeout":hold.as_millis() as u64},
                "ext":{"ack":self.received},"id":"3"}]),
            )
            .await;
        let messages = reply.as_array().expect("a batch");
        let connect = messages
            .iter()
            .find(|m| m["channel"] == "/meta/connect")
            .unwrap_or_else(|| panic!("a connect reply in {reply}"));
        assert_eq!(connect["successful"], true, "{reply}");
        self.received = connect["ext"]["ack"]
            .as_u64()
            .unwrap_or_else(|| panic!("a batch number in {reply}"));
        messages
            .iter()
            .filter(|m| m["channel"] == "/_genesys")
            .map(|m| m["data"].clone())
            .collect()
    }

    /// Connects until a push tagged `tag` arrives (failing after 10 s); returns every push
    /// received on the way, that one last. Its batch is received but not yet acknowledged:
    /// only the next connect would.
    async fn until_tagged(&mut self, tag: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            for push in self.connect(Duration::from_millis(500)).await {
                let found = push["tag"] == tag;
                seen.push(push);
                if found {
                    return seen;
                }
            }
        }
        panic!("no push tagged {tag} within 10 s; got {seen:?}");
    }
}

/// Creates a chat-delay service as `user` and cancels it, which stores a comet notification
/// `service.cancelled.<id>` for that user; returns the service id.
async fn cancelled_service(http: &reqwest::Client, base: &str, user: &str) -> String {
    let created: Value = http
        .post(format!("{base}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", user)
        .form(&[("_customer_number", "5551234"), ("_device_os", "comet")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["_id"].as_str().expect("_id").to_string();
    let cancelled = http
        .delete(format!("{base}/genesys/1/service/callback/chat-delay/{id}"))
        .header("gms_user", user)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200, "cancel {id}");
    id
}

/// Whether the stored notification of service `id` tagged `service.cancelled.<id>` is marked
/// delivered, as the admin detail shows it.
async fn cancel_delivered(http: &reqwest::Client, base: &str, id: &str) -> bool {
    let detail: Value = http
        .get(format!("{base}/genesys/1/admin/callback/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tag = format!("service.cancelled.{id}");
    let notification = detail["notifications"]
        .as_array()
        .and_then(|all| all.iter().find(|n| n["tag"] == tag.as_str()))
        .unwrap_or_else(|| panic!("a {tag} notification in {detail}"));
    notification["delivered"]
        .as_bool()
        .unwrap_or_else(|| panic!("a delivered flag in {notification}"))
}

#[tokio::test]
async fn after_kill_9_the_same_user_gets_the_unacknowledged_push_again_and_not_the_acknowledged_one(
) {
    // Arrange: the real binary on a fresh data directory; a client with the extension.
    let dir = tempfile::tempdir().unwrap();
    let user = "ack-across-kill-9";
    let http = reqwest::Client::new();
    let server = ServerProcess::start(dir.path(), &[]);
    let mut client = AckingClient::join(&server.address, user).await;

    // A push delivered and acknowledged: the connect after the one that carried it.
    let acked = cancelled_service(&http, &server.address, user).await;
    client
        .until_tagged(&format!("service.cancelled.{acked}"))
        .await;
    client.connect(Duration::ZERO).await;
    eventually(
        Duration::from_secs(10),
        "the acknowledged push marked delivered",
        || async {
            cancel_delivered(&http, &server.address, &acked)
                .await
                .then_some(())
        },
    )
    .await;

    // A push delivered and never acknowledged. (Its create and cancel are group-committed
    // after the mark above, so that mark is on disk too.)
    let unacked = cancelled_service(&http, &server.address, user).await;
    let seen = client
        .until_tagged(&format!("service.cancelled.{unacked}"))
        .await;
    assert!(
        seen.iter()
            .all(|p| p["tag"] != format!("service.cancelled.{acked}").as_str()),
        "the acknowledged push is not sent again before the kill: {seen:?}"
    );
    assert!(
        !cancel_delivered(&http, &server.address, &unacked).await,
        "received but unacknowledged: not delivered"
    );

    // Act: SIGKILL, no graceful stop; the same data directory again; the same gms_user
    // handshakes anew.
    server.kill9();
    let server = ServerProcess::start(dir.path(), &[]);
    let mut again = AckingClient::join(&server.address, user).await;
    let seen = again
        .until_tagged(&format!("service.cancelled.{unacked}"))
        .await;

    // Assert: the unacknowledged push came again, alone (a replay sends in publish order, so
    // the acknowledged one, published first, would have come before it).
    let tags: Vec<&str> = seen.iter().filter_map(|p| p["tag"].as_str()).collect();
    assert_eq!(
        tags,
        [format!("service.cancelled.{unacked}").as_str()],
        "only the unacknowledged push is sent again"
    );
    assert_eq!(
        seen[0]["message"]["_callback_reason"], "CANCELLED",
        "{seen:?}"
    );
    assert!(cancel_delivered(&http, &server.address, &acked).await);
    // Acknowledged now, it is delivered.
    again.connect(Duration::ZERO).await;
    eventually(
        Duration::from_secs(10),
        "the replayed push marked delivered once acknowledged",
        || async {
            cancel_delivered(&http, &server.address, &unacked)
                .await
                .then_some(())
        },
    )
    .await;
    server.kill9();
}
