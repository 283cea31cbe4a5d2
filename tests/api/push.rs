//! Pushes end to end over raw CometD long-polling: the agent-available push, chat refresh
//! pushes in comet mode, `gms_user` isolation, and replay to a client after a restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::chat::{agent_post, chat};
use crate::helpers::{detail, eventually, set_state, wait_for_state};
use crate::helpers::{json, spawn_app, ServerProcess, GMS_USER};

/// A long-polling CometD client of one `gms_user`.
pub(crate) struct Client {
    http: reqwest::Client,
    pub(crate) base: String,
    user: String,
    pub(crate) id: String,
    next: u64,
    /// Pushes that came with a reply before anyone asked for them.
    early: Vec<Value>,
}

impl Client {
    /// Handshakes, subscribes to `/_genesys` and makes the first (immediate) connect.
    pub(crate) async fn join(base: &str, user: &str) -> Client {
        let mut client = Client {
            http: reqwest::Client::new(),
            base: base.to_string(),
            user: user.to_string(),
            id: String::new(),
            next: 1,
            early: Vec::new(),
        };
        let reply = client
            .send(json!([{"version":"1.0","minimumVersion":"0.9","channel":"/meta/handshake",
                "supportedConnectionTypes":["long-polling"],"advice":{"timeout":60000,"interval":0}}]))
            .await;
        client.id = reply[0]["clientId"]
            .as_str()
            .unwrap_or_else(|| panic!("clientId in {reply}"))
            .to_string();
        let id = client.id.clone();
        let subscribed = client
            .send(json!([{"channel":"/meta/subscribe","subscription":"/_genesys","clientId":id}]))
            .await;
        assert_eq!(subscribed[0]["successful"], true, "{subscribed}");
        let first = client
            .send(
                json!([{"channel":"/meta/connect","connectionType":"long-polling",
                "advice":{"timeout":0},"clientId":id}]),
            )
            .await;
        client.early = data_of(&first);
        client
    }

    pub(crate) async fn send(&mut self, mut body: Value) -> Value {
        for message in body.as_array_mut().unwrap() {
            message["id"] = json!(self.next.to_string());
            self.next += 1;
        }
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

    /// Long-polls until pushes arrive (or `wait` passes); returns their `data` objects.
    pub(crate) async fn pushes(&mut self, wait: Duration) -> Vec<Value> {
        if !self.early.is_empty() {
            return std::mem::take(&mut self.early);
        }
        let id = self.id.clone();
        let deadline = Instant::now() + wait;
        loop {
            let timeout = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            let reply = self
                .send(
                    json!([{"channel":"/meta/connect","connectionType":"long-polling",
                    "advice":{"timeout":timeout},"clientId":id}]),
                )
                .await;
            let data = data_of(&reply);
            if !data.is_empty() || Instant::now() >= deadline {
                return data;
            }
        }
    }

    /// Long-polls until a push with `tag` arrives; fails after 10 s.
    pub(crate) async fn push_tagged(&mut self, tag: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for push in self.pushes(Duration::from_secs(2)).await {
                if push["tag"] == tag {
                    return push;
                }
            }
        }
        panic!("no push tagged {tag}");
    }
}

/// The `data` of the `/_genesys` messages in a reply.
fn data_of(reply: &Value) -> Vec<Value> {
    reply
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["channel"] == "/_genesys")
        .map(|m| m["data"].clone())
        .collect()
}

#[tokio::test]
async fn the_agent_available_push_and_chat_refreshes_reach_the_owner_only() {
    let app = spawn_app().await;
    let mut owner = Client::join(&app.address, GMS_USER).await;
    let mut stranger = Client::join(&app.address, "someone-else").await;
    set_state(&app, "kristi", "ready").await;
    let id = app
        .create(
            "chat-delay",
            &[("_customer_number", "5551234"), ("_device_os", "comet")],
        )
        .await;

    // Seed 000: the agent-available push, with its id of 32 hex digits.
    let push = owner
        .push_tagged(&format!("service.agentavailable.{id}"))
        .await;
    assert_eq!(
        push["message"],
        json!({"_action":"get-dialog-user-confirmation-provide_code-false","_id": id})
    );
    let push_id = push["id"].as_str().unwrap();
    assert_eq!(push_id.len(), 32);
    assert!(push_id.chars().all(|c| c.is_ascii_hexdigit()));
    // Delivered by push: retrieve-notifications has nothing left (seed 000: `[]`).
    let retrieved = json(
        app.post_form(
            &format!("/genesys/1/service/{id}/retrieve-notifications"),
            Some(GMS_USER),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(retrieved, json!([]));

    // Comet mode: the start answers the channel; the agent joining is pushed.
    app.post_form(
        &format!("/genesys/1/service/{id}/connect"),
        Some(GMS_USER),
        &[],
    )
    .await;
    let (status, started) = chat(
        &app,
        &id,
        "",
        &[("notify_by", "comet"), ("firstName", "John")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(started, json!({"_id": id, "comet_channel": "/_genesys"}));
    let tag = format!("service.chat.refresh.{id}");
    let joined = owner.push_tagged(&tag).await;
    assert_eq!(joined["message"]["chatIxnState"], "TRANSCRIPT");
    assert_eq!(joined["message"]["transcriptPosition"], "2");
    assert_eq!(
        joined["message"]["transcriptToShow"][0],
        json!([
            "Notice.Joined",
            "Kristi Sippola",
            "has joined the session",
            "0",
            "AGENT"
        ])
    );

    // The customer's own message is echoed back through the channel (seed 003).
    chat(&app, &id, "refresh", &[("message", "Hi Verbose")]).await;
    let echoed = owner.push_tagged(&tag).await;
    let row = &echoed["message"]["transcriptToShow"][0];
    assert_eq!(
        (&row[0], &row[1], &row[2], &row[4]),
        (
            &json!("Message.Text"),
            &json!("John"),
            &json!("Hi Verbose"),
            &json!("CLIENT")
        )
    );
    let (status, _) = agent_post(
        &app,
        "kristi",
        &format!("chat/{id}/message"),
        json!({"text": "Hello"}),
    )
    .await;
    assert_eq!(status, 200);
    let hello = owner.push_tagged(&tag).await;
    assert_eq!(hello["message"]["transcriptToShow"][0][2], "Hello");

    // Another gms_user's client saw none of it.
    assert!(stranger.pushes(Duration::from_millis(300)).await.is_empty());
}

/// Makes kristi ready and creates a comet chat-delay service, which she is offered at once;
/// its id, once its agent-available push has been published to the clients subscribed then.
async fn routed_comet_service(app: &crate::helpers::TestApp) -> String {
    set_state(app, "kristi", "ready").await;
    let id = app
        .create(
            "chat-delay",
            &[("_customer_number", "5551234"), ("_device_os", "comet")],
        )
        .await;
    wait_for_state(app, &id, "ROUTING").await;
    // ROUTING can be read before the router's batch is durable; its push follows the group
    // commit. The router answers a question only after the batches before it are durable and
    // their pushes published, so once the queues are answered the push has gone out.
    let queues = app
        .admin(Method::GET, "/genesys/1/admin/queues")
        .send()
        .await
        .unwrap();
    assert_eq!(queues.status(), 200);
    id
}

#[tokio::test]
async fn a_client_that_subscribes_later_gets_what_is_undelivered() {
    let app = spawn_app().await;
    let id = routed_comet_service(&app).await;
    // Nobody was listening: the push waits, and goes to the first client that subscribes.
    let mut late = Client::join(&app.address, GMS_USER).await;
    let push = late
        .push_tagged(&format!("service.agentavailable.{id}"))
        .await;
    assert_eq!(push["message"]["_id"], id.as_str());
    // Marked delivered once the reply was handed over (by the push layer, a moment later),
    // read from the admin detail, which marks nothing (retrieve-notifications would).
    eventually(
        Duration::from_secs(10),
        "the replayed notification to be marked delivered",
        || async {
            let record = detail(&app, &id).await;
            let notifications = record["notifications"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let marked = !notifications.is_empty()
                && notifications.iter().all(|n| n["delivered"] == json!(true));
            marked.then_some(())
        },
    )
    .await;
    let retrieved = json(
        app.post_form(
            &format!("/genesys/1/service/{id}/retrieve-notifications"),
            Some(GMS_USER),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(retrieved, json!([]));
}

/// A page reloaded before its client fetched a push: the old client had it queued, never
/// received it, and the page's new client gets it.
#[tokio::test]
async fn a_push_queued_for_a_client_that_never_fetched_it_goes_to_the_users_next_client() {
    let app = spawn_app().await;
    let mut old = Client::join(&app.address, GMS_USER).await;
    let id = routed_comet_service(&app).await;
    // Queued for the old client, which does not connect again (no long-poll is held): so it
    // is still undelivered when the page's new client subscribes.
    let mut reloaded = Client::join(&app.address, GMS_USER).await;
    let push = reloaded
        .push_tagged(&format!("service.agentavailable.{id}"))
        .await;
    assert_eq!(push["message"]["_id"], id.as_str());
    // The old client still gets what was queued for it, had it come back.
    let again = old
        .push_tagged(&format!("service.agentavailable.{id}"))
        .await;
    assert_eq!(again["message"]["_id"], id.as_str());
}

#[tokio::test]
async fn after_a_restart_a_client_handshakes_again_and_gets_the_undelivered_push() {
    let dir = tempfile::tempdir().unwrap();
    let env = [];
    let server = ServerProcess::start(dir.path(), &env);
    let http = reqwest::Client::new();
    let mut client = Client::join(&server.address, GMS_USER).await;
    let old_client = client.id.clone();
    let created: Value = http
        .post(format!(
            "{}/genesys/1/service/callback/chat-delay",
            server.address
        ))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "5551234"), ("_device_os", "comet")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["_id"].as_str().unwrap().to_string();
    server.kill9();

    let server = ServerProcess::start(dir.path(), &env);
    // The old client id is unknown to the new process: 402 and reconnect by handshake.
    client.base = server.address.clone();
    let reply = client
        .send(json!([{"channel":"/meta/connect","connectionType":"long-polling","clientId":old_client}]))
        .await;
    assert_eq!(reply[0]["error"], "402::Unknown client");
    assert_eq!(reply[0]["advice"]["reconnect"], "handshake");

    let response = http
        .request(
            Method::DELETE,
            format!(
                "{}/genesys/1/service/callback/chat-delay/{id}",
                server.address
            ),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.kill9();

    // Stored before it could be pushed; after another restart the re-handshaken client gets it.
    let server = ServerProcess::start(dir.path(), &env);
    let mut client = Client::join(&server.address, GMS_USER).await;
    let push = client.push_tagged(&format!("service.cancelled.{id}")).await;
    assert_eq!(push["message"]["_callback_reason"], "CANCELLED");
    server.kill9();
}
