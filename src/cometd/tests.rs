//! Tests of [`Bayeux`] as a whole: the exchanges of seed 003 and the rules around them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::clock::ManualClock;
use crate::domain::time::Timestamp;

const ALICE: &str = "alice";
const BOB: &str = "bob";

fn server(
    settings: BayeuxSettings,
) -> (Bayeux, mpsc::UnboundedReceiver<Announcement>, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let (bayeux, subscribed) = Bayeux::new(settings, Arc::new(clock.clone()));
    (bayeux, subscribed, clock)
}

/// Short held connects, so that a test that gets it wrong fails quickly.
fn quick() -> BayeuxSettings {
    BayeuxSettings {
        timeout_ms: 5_000,
        ..BayeuxSettings::default()
    }
}

async fn send(bayeux: &Bayeux, gms_user: Option<&str>, body: Value) -> Value {
    bayeux
        .handle(gms_user, body.to_string().as_bytes())
        .await
        .expect("a Bayeux body")
}

async fn handshake(bayeux: &Bayeux, gms_user: &str) -> String {
    let reply = send(
        bayeux,
        Some(gms_user),
        json!([{"version":"1.0","minimumVersion":"0.9","channel":"/meta/handshake",
                "supportedConnectionTypes":["long-polling","callback-polling"],
                "advice":{"timeout":60000,"interval":0},"id":"1"}]),
    )
    .await;
    assert_eq!(reply[0]["successful"], json!(true), "{reply}");
    reply[0]["clientId"].as_str().expect("clientId").to_string()
}

/// Handshake, subscribe to /_genesys and make the first connect: a client ready to be held.
async fn ready(bayeux: &Bayeux, gms_user: &str) -> String {
    let id = handshake(bayeux, gms_user).await;
    let reply = send(
        bayeux,
        Some(gms_user),
        json!([{"channel":"/meta/subscribe","subscription":"/_genesys","id":"2","clientId":id},
               {"channel":"/meta/connect","connectionType":"long-polling","id":"3","clientId":id}]),
    )
    .await;
    assert_eq!(reply.as_array().map(Vec::len), Some(2), "{reply}");
    id
}

fn connect(id: &str, message_id: &str) -> Value {
    json!([{"channel":"/meta/connect","connectionType":"long-polling","id":message_id,"clientId":id}])
}

/// Waits until a connect of `id` is held.
async fn until_held(bayeux: &Bayeux, id: &str) {
    let start = Instant::now();
    while !bayeux.lock().get_own(id).is_some_and(|c| c.is_held()) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "connect never held"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_handshake_gives_an_unguessable_id_and_advice() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let reply = send(
        &bayeux,
        Some(ALICE),
        json!({"version":"1.0","minimumVersion":"0.9","channel":"/meta/handshake","id":"0"}),
    )
    .await;
    let reply = &reply[0];
    let id = reply["clientId"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert!(id
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    assert_eq!(reply["id"], json!("0"));
    assert_eq!(reply["channel"], json!("/meta/handshake"));
    assert_eq!(reply["successful"], json!(true));
    assert_eq!(reply["version"], json!("1.0"));
    assert_eq!(
        reply["advice"],
        json!({"reconnect":"retry","interval":0,"timeout":60000})
    );
    assert_ne!(
        handshake(&bayeux, ALICE).await,
        id,
        "each handshake is a new client"
    );
    assert_eq!(bayeux.client_count(), 2);
}

#[tokio::test]
async fn a_handshake_without_gms_user_is_refused() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    for user in [None, Some(""), Some("  ")] {
        let reply = send(&bayeux, user, json!({"channel":"/meta/handshake","id":"0"})).await;
        assert_eq!(reply[0]["successful"], json!(false), "{user:?}");
        assert_eq!(reply[0]["error"], json!("403::gms_user header required"));
        assert_eq!(reply[0]["advice"]["reconnect"], json!("none"));
    }
    assert_eq!(bayeux.client_count(), 0);
}

#[tokio::test]
async fn a_handshake_with_no_common_transport_is_refused() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let reply = send(
        &bayeux,
        Some(ALICE),
        json!({"channel":"/meta/handshake","supportedConnectionTypes":["iframe"]}),
    )
    .await;
    assert_eq!(reply[0]["successful"], json!(false));
    assert!(reply[0]["error"].as_str().unwrap().starts_with("406::"));
}

#[tokio::test]
async fn the_first_connect_is_answered_at_once_with_advice() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let id = handshake(&bayeux, ALICE).await;
    let reply = send(&bayeux, Some(ALICE), connect(&id, "3")).await;
    assert_eq!(
        reply,
        json!([{"id":"3","successful":true,"channel":"/meta/connect",
                "advice":{"interval":0,"reconnect":"retry","timeout":60000}}])
    );
}

#[tokio::test]
async fn a_connect_asking_for_timeout_zero_is_answered_at_once_with_advice() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let id = ready(&bayeux, ALICE).await;
    let reply = send(
        &bayeux,
        Some(ALICE),
        json!([{"channel":"/meta/connect","connectionType":"long-polling",
                "advice":{"timeout":0},"id":"4","clientId":id}]),
    )
    .await;
    assert_eq!(reply[0]["successful"], json!(true));
    assert_eq!(reply[0]["advice"]["timeout"], json!(60000));
}

#[tokio::test]
async fn subscribe_and_connect_in_one_batch_get_two_replies_in_order() {
    let (bayeux, mut subscribed, _) = server(BayeuxSettings::default());
    let id = handshake(&bayeux, ALICE).await;
    let reply = send(
        &bayeux,
        Some(ALICE),
        json!([{"channel":"/meta/subscribe","subscription":"/_genesys","id":"2","clientId":id},
               {"channel":"/meta/connect","connectionType":"long-polling","id":"3","clientId":id}]),
    )
    .await;
    assert_eq!(
        reply[0],
        json!({"id":"2","subscription":"/_genesys","successful":true,"channel":"/meta/subscribe"})
    );
    assert_eq!(reply[1]["channel"], json!("/meta/connect"));
    assert_eq!(reply[1]["successful"], json!(true));
    let announced = subscribed.try_recv().expect("subscription announced");
    assert_eq!(
        announced,
        Announcement::Subscribed {
            gms_user: ALICE.into(),
            client_id: id
        }
    );
}

#[tokio::test]
async fn a_subscription_is_announced_once() {
    let (bayeux, mut subscribed, _) = server(BayeuxSettings::default());
    let id = ready(&bayeux, ALICE).await;
    subscribed.try_recv().expect("first subscribe announced");
    let again = json!({"channel":"/meta/subscribe","subscription":"/_genesys","clientId":id});
    send(&bayeux, Some(ALICE), again).await;
    assert!(subscribed.try_recv().is_err(), "already subscribed");
}

#[tokio::test]
async fn only_genesys_may_be_subscribed() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let id = handshake(&bayeux, ALICE).await;
    let cases = [
        (json!("/chat/room"), "403::"),
        (json!(["/_genesys", "/other"]), "403::"),
        (json!("/_genesys/**"), "403::"),
        (json!(42), "400::"),
    ];
    for (subscription, expected) in cases {
        for channel in ["/meta/subscribe", "/meta/unsubscribe"] {
            let reply = send(
                &bayeux,
                Some(ALICE),
                json!({"channel":channel,"subscription":subscription,"id":"5","clientId":id}),
            )
            .await;
            assert_eq!(
                reply[0]["successful"],
                json!(false),
                "{channel} {subscription}"
            );
            assert_eq!(reply[0]["subscription"], subscription, "echoed");
            let error = reply[0]["error"].as_str().unwrap();
            assert!(
                error.starts_with(expected),
                "{channel} {subscription}: {error}"
            );
        }
    }
    let missing = send(
        &bayeux,
        Some(ALICE),
        json!({"channel":"/meta/subscribe","clientId":id}),
    )
    .await;
    assert!(missing[0]["error"]
        .as_str()
        .unwrap()
        .contains("`subscription` is missing"));
}

#[tokio::test]
async fn unsubscribe_and_disconnect_answer_as_in_seed_003() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let id = ready(&bayeux, ALICE).await;
    let reply = send(
        &bayeux,
        Some(ALICE),
        json!([{"channel":"/meta/unsubscribe","subscription":"/_genesys","id":"9","clientId":id}]),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"9","subscription":"/_genesys","successful":true,"channel":"/meta/unsubscribe"}])
    );
    assert_eq!(
        bayeux.publish(ALICE, &Push::new("t", json!({}))).clients,
        0,
        "unsubscribed"
    );

    let reply = send(
        &bayeux,
        Some(ALICE),
        json!([{"channel":"/meta/disconnect","id":"10","clientId":id}]),
    )
    .await;
    assert_eq!(
        reply,
        json!([{"id":"10","successful":true,"channel":"/meta/disconnect"}])
    );
    assert_eq!(bayeux.client_count(), 0);
    let reply = send(&bayeux, Some(ALICE), connect(&id, "11")).await;
    assert_eq!(reply[0]["error"], json!("402::Unknown client"), "gone");
}

#[tokio::test]
async fn unknown_or_missing_client_ids_get_402_with_handshake_advice() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    for message in [
        json!({"channel":"/meta/connect","clientId":"nosuchclient","id":"1"}),
        json!({"channel":"/meta/connect","id":"1"}),
        json!({"channel":"/meta/subscribe","subscription":"/_genesys","clientId":"x","id":"1"}),
        json!({"channel":"/meta/unsubscribe","subscription":"/_genesys","clientId":"x","id":"1"}),
        json!({"channel":"/meta/disconnect","clientId":"x","id":"1"}),
        json!({"channel":"/chat","data":{},"clientId":"x","id":"1"}),
    ] {
        let reply = send(&bayeux, Some(ALICE), message.clone()).await;
        assert_eq!(reply[0]["successful"], json!(false), "{message}");
        assert_eq!(reply[0]["error"], json!("402::Unknown client"), "{message}");
        assert_eq!(
            reply[0]["advice"],
            json!({"reconnect":"handshake","interval":0}),
            "{message}"
        );
        assert_eq!(reply[0]["id"], json!("1"), "{message}");
    }
}

#[tokio::test]
async fn a_client_id_used_with_another_gms_user_is_unknown() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let id = ready(&bayeux, ALICE).await;
    for user in [Some(BOB), None] {
        for message in [
            connect(&id, "4"),
            json!({"channel":"/meta/subscribe","subscription":"/_genesys","clientId":id}),
            json!({"channel":"/meta/disconnect","clientId":id}),
        ] {
            let reply = send(&bayeux, user, message.clone()).await;
            assert_eq!(
                reply[0]["error"],
                json!("402::Unknown client"),
                "{user:?} {message}"
            );
        }
    }
    assert_eq!(bayeux.client_count(), 1, "bob could not disconnect alice");
}

#[tokio::test]
async fn clients_may_not_publish_and_unknown_meta_channels_are_refused() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    let id = handshake(&bayeux, ALICE).await;
    let reply = send(
        &bayeux,
        Some(ALICE),
        json!([{"channel":"/_genesys","data":{"x":1},"id":"6","clientId":id},
               {"channel":"/meta/ping","id":"7","clientId":id}]),
    )
    .await;
    assert_eq!(reply[0]["successful"], json!(false));
    assert!(reply[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("403::publishing"));
    assert_eq!(reply[0]["channel"], json!("/_genesys"));
    assert_eq!(reply[1]["successful"], json!(false));
    assert!(reply[1]["error"]
        .as_str()
        .unwrap()
        .starts_with("400::unknown meta channel /meta/ping"));
}

#[tokio::test]
async fn bodies_that_are_not_bayeux_are_errors() {
    let (bayeux, _, _) = server(BayeuxSettings::default());
    for body in [&b"not json"[..], b"[]", b"{\"id\":\"1\"}", b"", b"[{}]"] {
        assert!(
            bayeux.handle(Some(ALICE), body).await.is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn a_held_connect_is_answered_as_soon_as_something_is_published() {
    let (bayeux, _, _) = server(quick());
    let id = ready(&bayeux, ALICE).await;
    let started = Instant::now();
    let held = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect(&id, "4")).await }
    });
    until_held(&bayeux, &id).await;

    let push = Push::new("service.chat.refresh.1", json!({"transcriptPosition":"2"}));
    assert_eq!(bayeux.publish(ALICE, &push).clients, 1);
    let reply = held.await.unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not held to the timeout"
    );
    assert_eq!(
        reply,
        json!([
            {"channel":"/_genesys","data":{"id":push.id,"message":{"transcriptPosition":"2"},
                                           "tag":"service.chat.refresh.1"}},
            {"id":"4","successful":true,"channel":"/meta/connect"}
        ])
    );
    assert!(
        !bayeux.lock().get_own(&id).unwrap().has_pending(),
        "delivered once"
    );
}

#[tokio::test]
async fn pushes_queued_between_connects_come_with_the_next_connect() {
    let (bayeux, _, _) = server(quick());
    let id = ready(&bayeux, ALICE).await;
    let first = Push::new("a", json!(1));
    let second = Push::new("b", json!(2));
    bayeux.publish(ALICE, &first);
    bayeux.publish(ALICE, &second);
    let reply = send(&bayeux, Some(ALICE), connect(&id, "4")).await;
    let tags: Vec<&Value> = reply
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["data"]["tag"])
        .collect();
    assert_eq!(tags, [&json!("a"), &json!("b"), &Value::Null], "{reply}");
}

#[tokio::test]
async fn a_held_connect_times_out_empty() {
    let (bayeux, _, _) = server(BayeuxSettings {
        timeout_ms: 50,
        ..BayeuxSettings::default()
    });
    let id = ready(&bayeux, ALICE).await;
    let reply = send(&bayeux, Some(ALICE), connect(&id, "4")).await;
    assert_eq!(
        reply,
        json!([{"id":"4","successful":true,"channel":"/meta/connect"}])
    );
    assert!(!bayeux.lock().get_own(&id).unwrap().is_held());
}

#[tokio::test]
async fn a_second_connect_releases_the_first_at_once() {
    let (bayeux, _, _) = server(quick());
    let id = ready(&bayeux, ALICE).await;
    let started = Instant::now();
    let first = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect(&id, "4")).await }
    });
    until_held(&bayeux, &id).await;
    let second = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect(&id, "5")).await }
    });

    let first = first.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "released early");
    assert_eq!(
        first,
        json!([{"id":"4","successful":true,"channel":"/meta/connect"}])
    );
    // The second is the one held now, and gets the push.
    until_held(&bayeux, &id).await;
    bayeux.publish(ALICE, &Push::new("t", json!({})));
    let second = second.await.unwrap();
    assert_eq!(second[0]["data"]["tag"], json!("t"));
    assert_eq!(second[1]["id"], json!("5"));
}

#[tokio::test]
async fn a_client_of_another_user_never_sees_the_push() {
    let (bayeux, _, _) = server(BayeuxSettings {
        timeout_ms: 100,
        ..BayeuxSettings::default()
    });
    let alice = ready(&bayeux, ALICE).await;
    let bob = ready(&bayeux, BOB).await;
    assert_eq!(
        bayeux
            .publish(ALICE, &Push::new("for-alice", json!({})))
            .clients,
        1
    );
    let bobs = send(&bayeux, Some(BOB), connect(&bob, "4")).await;
    assert_eq!(
        bobs.as_array().map(Vec::len),
        Some(1),
        "only the connect reply: {bobs}"
    );
    let alices = send(&bayeux, Some(ALICE), connect(&alice, "4")).await;
    assert_eq!(alices[0]["data"]["tag"], json!("for-alice"));
}

#[tokio::test]
async fn publish_to_reaches_one_subscribed_client() {
    let (bayeux, _, _) = server(quick());
    let one = ready(&bayeux, ALICE).await;
    let other = ready(&bayeux, ALICE).await;
    let unsubscribed = handshake(&bayeux, ALICE).await;
    let push = Push::new("replay", json!({}));
    assert_eq!(bayeux.publish_to(&one, &push).clients, 1);
    assert_eq!(
        bayeux.publish_to(&unsubscribed, &push),
        Reach::default(),
        "not subscribed"
    );
    assert_eq!(
        bayeux.publish_to("nosuchclient", &push),
        Reach::default(),
        "unknown"
    );
    assert!(bayeux.lock().get_own(&one).unwrap().has_pending());
    assert!(!bayeux.lock().get_own(&other).unwrap().has_pending());
}

#[tokio::test]
async fn a_full_queue_refuses_further_pushes_for_that_client() {
    let (bayeux, _, _) = server(BayeuxSettings {
        max_queue: 2,
        ..quick()
    });
    let id = ready(&bayeux, ALICE).await;
    assert_eq!(bayeux.publish(ALICE, &Push::new("1", json!({}))).clients, 1);
    assert_eq!(bayeux.publish(ALICE, &Push::new("2", json!({}))).clients, 1);
    assert_eq!(
        bayeux.publish(ALICE, &Push::new("3", json!({}))).clients,
        0,
        "full"
    );
    let reply = send(&bayeux, Some(ALICE), connect(&id, "4")).await;
    assert_eq!(
        reply.as_array().map(Vec::len),
        Some(3),
        "two pushes and the reply"
    );
    assert_eq!(
        bayeux.publish(ALICE, &Push::new("4", json!({}))).clients,
        1,
        "drained"
    );
}

#[tokio::test]
async fn sweep_drops_clients_that_stopped_connecting() {
    let (bayeux, _, clock) = server(BayeuxSettings {
        max_interval_ms: 30_000,
        ..quick()
    });
    let quiet = ready(&bayeux, ALICE).await;
    clock.advance_secs(20);
    let active = ready(&bayeux, ALICE).await;
    clock.advance_secs(10);
    assert_eq!(bayeux.sweep().await, 1, "30 s after its last connect reply");
    let reply = send(&bayeux, Some(ALICE), connect(&quiet, "9")).await;
    assert_eq!(reply[0]["error"], json!("402::Unknown client"));
    assert_eq!(bayeux.client_count(), 1);
    clock.advance_secs(19);
    assert_eq!(bayeux.sweep().await, 0);
    let reply = send(
        &bayeux,
        Some(ALICE),
        json!({"channel":"/meta/connect","advice":{"timeout":0},"clientId":active}),
    )
    .await;
    assert!(reply[0].get("error").is_none(), "{reply}");
}

#[tokio::test]
async fn sweep_keeps_a_client_whose_connect_is_held() {
    let (bayeux, _, clock) = server(quick());
    let id = ready(&bayeux, ALICE).await;
    let held = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect(&id, "4")).await }
    });
    until_held(&bayeux, &id).await;
    clock.advance_secs(3600);
    assert_eq!(bayeux.sweep().await, 0);
    bayeux.publish(ALICE, &Push::new("t", json!({})));
    held.await.unwrap();
    // Seen when answered: a whole max interval from now.
    assert_eq!(bayeux.sweep().await, 0);
    clock.advance_secs(30);
    assert_eq!(bayeux.sweep().await, 1);
}

#[tokio::test]
async fn shutdown_answers_held_connects_and_refuses_new_ones() {
    let (bayeux, _, _) = server(quick());
    let id = ready(&bayeux, ALICE).await;
    let started = Instant::now();
    let held = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect(&id, "4")).await }
    });
    until_held(&bayeux, &id).await;
    bayeux.shutdown();
    let reply = held.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(reply[0]["successful"], json!(true));
    bayeux.stopped().await;

    let reply = send(&bayeux, Some(ALICE), connect(&id, "5")).await;
    assert_eq!(reply[0]["successful"], json!(false));
    assert!(reply[0]["error"].as_str().unwrap().starts_with("503::"));
    let reply = send(&bayeux, Some(ALICE), json!({"channel":"/meta/handshake"})).await;
    assert_eq!(reply[0]["successful"], json!(false));
}

#[tokio::test]
async fn a_disconnect_answers_the_held_connect() {
    let (bayeux, _, _) = server(quick());
    let id = ready(&bayeux, ALICE).await;
    let held = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect(&id, "4")).await }
    });
    until_held(&bayeux, &id).await;
    send(
        &bayeux,
        Some(ALICE),
        json!({"channel":"/meta/disconnect","clientId":id}),
    )
    .await;
    let reply = held.await.unwrap();
    assert_eq!(reply[0]["advice"]["reconnect"], json!("none"));
}

#[test]
fn push_ids_are_32_lowercase_hex_digits() {
    let push = Push::new("tag", json!({}));
    assert_eq!(push.id.len(), 32);
    assert!(push
        .id
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_ne!(push.id, Push::new("tag", json!({})).id);
}

/// Handshake with `ext: {ack: true}`, subscribe, and the first connect (acknowledging
/// nothing): a client of the acknowledgement extension ready to be held. Returns its id and
/// the pushes of the first connect reply.
async fn ready_acknowledging(bayeux: &Bayeux, gms_user: &str) -> (String, Vec<String>) {
    let reply = send(
        bayeux,
        Some(gms_user),
        json!([{"version":"1.0","channel":"/meta/handshake","ext":{"ack":true},"id":"1"}]),
    )
    .await;
    assert_eq!(reply[0]["ext"], json!({"ack": true}), "{reply}");
    let id = reply[0]["clientId"].as_str().expect("clientId").to_string();
    let reply = send(
        bayeux,
        Some(gms_user),
        json!([{"channel":"/meta/subscribe","subscription":"/_genesys","id":"2","clientId":id},
               {"channel":"/meta/connect","connectionType":"long-polling","id":"3","clientId":id,
                "ext":{"ack":0}}]),
    )
    .await;
    let last = reply.as_array().and_then(|r| r.last()).cloned();
    assert_eq!(
        last.map(|r| r["ext"].clone()),
        Some(json!({"ack": 1})),
        "{reply}"
    );
    (id, push_ids(&reply))
}

fn connect_acknowledging(id: &str, message_id: &str, batch: u64) -> Value {
    json!([{"channel":"/meta/connect","connectionType":"long-polling","id":message_id,
            "clientId":id,"ext":{"ack":batch}}])
}

/// The push ids of a reply, in order.
fn push_ids(reply: &Value) -> Vec<String> {
    reply
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["data"]["id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_push_whose_reply_was_lost_comes_again_with_the_next_connect() {
    let (bayeux, _, _) = server(quick());
    let (id, _) = ready_acknowledging(&bayeux, ALICE).await;
    let push = Push::new("service.agentavailable.1", json!({"_id":"1"}));
    bayeux.publish(ALICE, &push);

    let lost = send(&bayeux, Some(ALICE), connect_acknowledging(&id, "4", 1)).await;
    assert_eq!(push_ids(&lost), vec![push.id.clone()]);
    assert_eq!(lost[1]["ext"], json!({"ack": 2}));

    // The client never got batch 2, so it acknowledges batch 1 again: answered at once.
    let again = send(&bayeux, Some(ALICE), connect_acknowledging(&id, "5", 1)).await;
    assert_eq!(push_ids(&again), vec![push.id.clone()], "{again}");
    assert_eq!(again[0]["data"]["tag"], json!("service.agentavailable.1"));
    assert_eq!(again[1]["ext"], json!({"ack": 3}));

    // Acknowledged: the next connect is held and times out empty.
    let held = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect_acknowledging(&id, "6", 3)).await }
    });
    until_held(&bayeux, &id).await;
    bayeux.shutdown();
    let last = held.await.unwrap();
    assert!(push_ids(&last).is_empty(), "{last}");
}

#[tokio::test]
async fn a_connect_without_an_acknowledgement_is_held_rather_than_looping() {
    let (bayeux, _, _) = server(BayeuxSettings {
        timeout_ms: 50,
        ..BayeuxSettings::default()
    });
    let (id, _) = ready_acknowledging(&bayeux, ALICE).await;
    bayeux.publish(ALICE, &Push::new("t", json!({})));
    send(&bayeux, Some(ALICE), connect_acknowledging(&id, "4", 1)).await;
    let started = Instant::now();
    let reply = send(&bayeux, Some(ALICE), connect(&id, "5")).await;
    assert!(started.elapsed() >= Duration::from_millis(40), "held");
    assert_eq!(push_ids(&reply).len(), 1, "sent again when answered");
}

#[tokio::test]
async fn a_new_client_of_the_same_user_gets_what_a_vanished_one_did_not_acknowledge() {
    let (bayeux, _, _) = server(quick());
    let (old, _) = ready_acknowledging(&bayeux, ALICE).await;
    let push = Push::new("service.internal.1", json!({"_id":"1"}));
    bayeux.publish(ALICE, &push);
    let lost = send(&bayeux, Some(ALICE), connect_acknowledging(&old, "4", 1)).await;
    assert_eq!(push_ids(&lost), vec![push.id.clone()]);

    let (_, first_reply) = ready_acknowledging(&bayeux, ALICE).await;
    assert_eq!(first_reply, vec![push.id.clone()], "with the first connect");
    let (bobs, nothing) = ready_acknowledging(&bayeux, BOB).await;
    assert!(nothing.is_empty());
    assert!(
        !bayeux.lock().get_own(&bobs).unwrap().has_pending(),
        "not another user's"
    );
}

#[tokio::test]
async fn after_a_sweep_a_re_handshake_of_the_user_gets_the_unacknowledged_pushes() {
    let (bayeux, _, clock) = server(quick());
    let (old, _) = ready_acknowledging(&bayeux, ALICE).await;
    let push = Push::new("service.internal.1", json!({}));
    bayeux.publish(ALICE, &push);
    send(&bayeux, Some(ALICE), connect_acknowledging(&old, "4", 1)).await;
    clock.advance_secs(30);
    assert_eq!(bayeux.sweep().await, 1);
    let gone = send(&bayeux, Some(ALICE), connect_acknowledging(&old, "5", 1)).await;
    assert_eq!(gone[0]["error"], json!("402::Unknown client"));

    let (_, first_reply) = ready_acknowledging(&bayeux, ALICE).await;
    assert_eq!(first_reply, vec![push.id.clone()], "with the first connect");
}

#[tokio::test]
async fn without_the_extension_replies_carry_no_ext_and_nothing_is_sent_twice() {
    let (bayeux, _, _) = server(BayeuxSettings {
        timeout_ms: 50,
        ..BayeuxSettings::default()
    });
    let id = ready(&bayeux, ALICE).await;
    bayeux.publish(ALICE, &Push::new("t", json!({})));
    let first = send(&bayeux, Some(ALICE), connect_acknowledging(&id, "4", 0)).await;
    assert_eq!(push_ids(&first).len(), 1);
    assert!(first[1].get("ext").is_none(), "{first}");
    let second = send(&bayeux, Some(ALICE), connect_acknowledging(&id, "5", 0)).await;
    assert_eq!(
        second,
        json!([{"id":"5","successful":true,"channel":"/meta/connect"}])
    );
    let later = ready(&bayeux, ALICE).await;
    assert!(!bayeux.lock().get_own(&later).unwrap().has_pending());
}

#[tokio::test]
async fn a_receipt_is_announced_delivered_once_a_plain_client_is_handed_it_or_an_acknowledging_one_acknowledges_it(
) {
    let (bayeux, mut announcements, _) = server(quick());
    let (id, _) = ready_acknowledging(&bayeux, ALICE).await;
    let plain = ready(&bayeux, ALICE).await;
    while announcements.try_recv().is_ok() {}
    let receipt = Receipt {
        service_id: "s1".into(),
        seq: 7,
    };
    let push = Push::new("t", json!({})).with_receipt(receipt.clone());
    let delivered = Announcement::Delivered {
        gms_user: ALICE.into(),
        receipts: vec![receipt],
    };

    assert_eq!(bayeux.publish(ALICE, &push), Reach { clients: 2 });
    assert!(announcements.try_recv().is_err(), "queued is not delivered");
    let sent = send(&bayeux, Some(ALICE), connect_acknowledging(&id, "4", 1)).await;
    assert_eq!(push_ids(&sent), vec![push.id.clone()]);
    assert_eq!(
        sent[0]["data"].get("receipt"),
        None,
        "never sent to clients"
    );
    assert!(
        announcements.try_recv().is_err(),
        "sent to an acknowledging client: delivered only when it acknowledges"
    );

    let handed = send(&bayeux, Some(ALICE), connect_acknowledging(&plain, "5", 0)).await;
    assert_eq!(push_ids(&handed), vec![push.id.clone()]);
    assert_eq!(
        announcements.try_recv().expect("the plain client has it"),
        delivered
    );

    let done = send(
        &bayeux,
        Some(ALICE),
        json!({"channel":"/meta/connect","clientId":id,"id":"6","advice":{"timeout":0},"ext":{"ack":2}}),
    )
    .await;
    assert_eq!(done[0]["successful"], json!(true), "{done}");
    assert_eq!(
        announcements.try_recv().expect("acknowledgement announced"),
        delivered
    );
}

#[tokio::test]
async fn a_held_connect_woken_by_a_stored_push_announces_it_delivered_with_its_reply() {
    let (bayeux, mut announcements, _) = server(quick());
    let id = ready(&bayeux, ALICE).await;
    while announcements.try_recv().is_ok() {}
    let held = tokio::spawn({
        let bayeux = bayeux.clone();
        let id = id.clone();
        async move { send(&bayeux, Some(ALICE), connect(&id, "4")).await }
    });
    until_held(&bayeux, &id).await;
    let receipt = Receipt {
        service_id: "s1".into(),
        seq: 3,
    };
    let push = Push::new("t", json!({})).with_receipt(receipt.clone());

    assert_eq!(bayeux.publish(ALICE, &push).clients, 1);
    let reply = held.await.unwrap();

    assert_eq!(push_ids(&reply), vec![push.id.clone()]);
    assert_eq!(
        announcements
            .try_recv()
            .expect("the held client was handed it"),
        Announcement::Delivered {
            gms_user: ALICE.into(),
            receipts: vec![receipt],
        }
    );
    assert!(announcements.try_recv().is_err(), "announced once");
}

#[tokio::test]
async fn a_stored_notification_replayed_to_a_client_that_took_it_over_is_held_once() {
    let (bayeux, _, _) = server(quick());
    let (old, _) = ready_acknowledging(&bayeux, ALICE).await;
    let receipt = Receipt {
        service_id: "s1".into(),
        seq: 1,
    };
    let push = Push::new("t", json!({})).with_receipt(receipt.clone());
    bayeux.publish(ALICE, &push);
    send(&bayeux, Some(ALICE), connect_acknowledging(&old, "4", 1)).await;

    // The new client takes it over at subscribe; the replay from storage sends it again.
    let (new, first_reply) = ready_acknowledging(&bayeux, ALICE).await;
    assert_eq!(first_reply, vec![push.id.clone()]);
    let replayed = Push::new("t", json!({})).with_receipt(receipt);
    assert_eq!(
        bayeux.publish_to(&new, &replayed),
        Reach { clients: 1 },
        "it has it"
    );
    let again = send(&bayeux, Some(ALICE), connect_acknowledging(&new, "9", 0)).await;
    assert_eq!(push_ids(&again), vec![push.id.clone()], "once: {again}");
}

#[tokio::test]
async fn the_sweep_loop_is_stepped_by_the_manual_clock_without_real_waiting() {
    let (bayeux, _subscribed, clock) = server(quick());
    let _quiet = ready(&bayeux, ALICE).await;
    let supervisor = crate::supervisor::Supervisor::new();
    let sweeper = tokio::spawn(bayeux.clone().sweep_until(supervisor.shutdown()));

    while clock.sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    // Past max_interval on the clock: the parked loop wakes and sweeps, no tokio time passes.
    clock.advance_secs(31);
    for _ in 0..1000 {
        if bayeux.client_count() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        bayeux.client_count(),
        0,
        "the loop swept when the clock moved"
    );

    supervisor.stop(std::time::Duration::from_secs(5)).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), sweeper)
        .await
        .expect("the loop stops at shutdown")
        .unwrap();
}
