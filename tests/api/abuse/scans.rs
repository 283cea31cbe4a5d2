//! Cheap requests that made the server read everything (issue 9, items 12 and 13): the
//! per-service callback query without (or with an unknown) `gms_user`, and chats without
//! limits whose whole transcript every agent poll carried.

use reqwest::Method;
use serde_json::Value;

use crate::chat::chat;
use crate::helpers::{
    json, spawn_app, spawn_app_with, spawn_app_with_clock_and, TestApp, GMS_USER,
};

const USER_B: &str = "user-b";
const CHAT_DELAY: &str = "/genesys/1/service/callback/chat-delay";

fn ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body
        .as_array()
        .unwrap_or_else(|| panic!("an array: {body}"))
        .iter()
        .map(|e| e["_id"].as_str().expect("_id").to_string())
        .collect();
    ids.sort();
    ids
}

async fn create_as(app: &TestApp, user: Option<&str>) -> String {
    let response = app
        .post_form(CHAT_DELAY, user, &[("_customer_number", "5550100")])
        .await;
    assert_eq!(response.status(), 200, "create as {user:?}");
    json(response).await["_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_per_service_query_lists_only_the_callers_own_services() {
    // Arrange: services of A, of B, and one created without a gms_user (GMS's behaviour).
    let app = spawn_app_with(|config| config.security.allow_anonymous_services = true).await;
    let mut mine = vec![
        create_as(&app, Some(GMS_USER)).await,
        create_as(&app, Some(GMS_USER)).await,
    ];
    mine.sort();
    let theirs = create_as(&app, Some(USER_B)).await;
    let _ownerless = create_as(&app, None).await;

    let cases: [(Option<&str>, Vec<String>, &str); 4] = [
        (Some(GMS_USER), mine.clone(), "user A sees A's only"),
        (Some(USER_B), vec![theirs.clone()], "user B sees B's only"),
        (Some("user-c"), vec![], "an unknown user sees nothing"),
        (None, vec![], "no gms_user sees nothing"),
    ];
    for (user, expected, what) in cases {
        // Act
        let response = app.get(CHAT_DELAY, user).await;

        // Assert
        assert_eq!(response.status(), 200, "{what}: status");
        assert_eq!(ids(&json(response).await), expected, "{what}");
    }
    let filtered = app
        .get(
            &format!("{CHAT_DELAY}?_callback_state=QUEUED"),
            Some(USER_B),
        )
        .await;
    assert_eq!(
        ids(&json(filtered).await),
        vec![theirs],
        "state filter on the owner's"
    );
}

#[tokio::test]
async fn a_cancelled_or_expired_service_leaves_its_owners_list() {
    // Arrange
    let app = spawn_app().await;
    let kept = create_as(&app, Some(GMS_USER)).await;
    let cancelled = create_as(&app, Some(GMS_USER)).await;
    let cancel = app
        .request(Method::DELETE, &format!("{CHAT_DELAY}/{cancelled}"))
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);

    // Act
    let all = json(app.get(CHAT_DELAY, Some(GMS_USER)).await).await;
    let open = json(
        app.get(
            &format!("{CHAT_DELAY}?_callback_state=!COMPLETED"),
            Some(GMS_USER),
        )
        .await,
    )
    .await;

    // Assert: a cancelled service stays (COMPLETED) until it expires; open ones exclude it.
    let mut both = vec![kept.clone(), cancelled];
    both.sort();
    assert_eq!(ids(&all), both, "both, one COMPLETED");
    assert_eq!(ids(&open), vec![kept], "only the open one");
}

#[tokio::test]
async fn watermarks_counted_in_memory_survive_a_restart_and_owners_find_their_services() {
    // Arrange: the real binary on a data directory that outlives it.
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let watermarks = |address: String| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("{address}/genesys/1/admin/callback/watermarks"))
                .bearer_auth(crate::helpers::ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            json(response).await
        }
    };
    let server = crate::helpers::ServerProcess::start(dir.path(), &[]);
    let mut created_ids = Vec::new();
    for _ in 0..3 {
        let created = client
            .post(format!("{}{CHAT_DELAY}", server.address))
            .header("gms_user", USER_B)
            .form(&[("_customer_number", "5550100")])
            .send()
            .await
            .unwrap();
        created_ids.push(json(created).await["_id"].as_str().unwrap().to_string());
    }
    let cancel = client
        .delete(format!("{}{CHAT_DELAY}/{}", server.address, created_ids[0]))
        .header("gms_user", USER_B)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    let before = watermarks(server.address.clone()).await;
    server.kill9();

    // Act
    let server = crate::helpers::ServerProcess::start(dir.path(), &[]);
    let after = watermarks(server.address.clone()).await;
    let listed = client
        .get(format!("{}{CHAT_DELAY}", server.address))
        .header("gms_user", USER_B)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(before["services"]["chat-delay"], 2, "{before}");
    assert_eq!(after, before, "the same counts after a restart");
    created_ids.sort();
    assert_eq!(
        ids(&json(listed).await),
        created_ids,
        "B's three, one COMPLETED"
    );
}

// ----- chat limits -----

/// Starts a chat-immediate chat as the seeds' user; returns its service id.
async fn started_chat(app: &TestApp) -> String {
    let id = app
        .create("chat-immediate", &[("_customer_number", "5551234")])
        .await;
    let (status, body) = chat(app, &id, "", &[("userDisplayName", "Flood")]).await;
    assert_eq!(status, 200, "chat start: {body}");
    id
}

fn message_of(body: &Value) -> String {
    body["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_chat_message_over_the_size_limit_is_413_naming_message() {
    // Arrange
    let app = spawn_app().await;
    let id = started_chat(&app).await;
    let big = "x".repeat(4097);

    // Act
    let (send_status, send) = chat(&app, &id, "send", &[("message", &big)]).await;
    let (refresh_status, refresh) = chat(&app, &id, "refresh", &[("message", &big)]).await;
    let (notice_status, _) = chat(&app, &id, "customNotice", &[("message", &big)]).await;
    let (ok_status, _) = chat(&app, &id, "send", &[("message", &"x".repeat(4096))]).await;

    // Assert
    assert_eq!(send_status, 413, "send: {send}");
    assert_eq!(send["exception"], "PayloadTooLarge", "{send}");
    assert!(
        message_of(&send).contains("`message`"),
        "names the field: {send}"
    );
    assert!(message_of(&send).contains("4096"), "says the limit: {send}");
    assert_eq!(refresh_status, 413, "refresh with a message: {refresh}");
    assert_eq!(notice_status, 413, "customNotice");
    assert_eq!(ok_status, 200, "exactly the limit passes");
}

#[tokio::test]
async fn sending_faster_than_the_rate_is_429_until_time_passes() {
    // Arrange: time stands still, so the burst cannot refill behind the test's back.
    let start = callbackd::domain::time::Timestamp::parse_iso("2030-01-01T00:00:00Z").unwrap();
    let clock = callbackd::clock::ManualClock::new(start);
    let app = spawn_app_with_clock_and(clock.clone(), |config| {
        config.chat.max_messages_per_second = 3;
    })
    .await;
    let id = started_chat(&app).await;

    // Act
    let mut statuses = Vec::new();
    for n in 0..4 {
        let (status, _) = chat(&app, &id, "send", &[("message", &format!("hi {n}"))]).await;
        statuses.push(status);
    }
    let (typing_status, typing) = chat(&app, &id, "startTyping", &[]).await;
    let response = app
        .post_form(
            &format!("/genesys/1/service/{id}/ixn/chat/send"),
            Some(GMS_USER),
            &[("message", "still too fast")],
        )
        .await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let refused = json(response).await;
    clock.advance_secs(1);
    let (later, _) = chat(&app, &id, "send", &[("message", "a second later")]).await;
    let (refresh, _) = chat(&app, &id, "refresh", &[]).await;

    // Assert
    assert_eq!(statuses, [200, 200, 200, 429], "a burst of 3, then refused");
    assert_eq!(typing_status, 429, "notices count too: {typing}");
    assert_eq!(refused["exception"], "TooManyRequests", "{refused}");
    assert!(message_of(&refused).contains("per second"), "{refused}");
    assert_eq!(retry_after.as_deref(), Some("1"), "Retry-After");
    assert_eq!(later, 200, "allowed again a second later");
    assert_eq!(refresh, 200, "reading is never limited");
}

#[tokio::test]
async fn a_full_transcript_refuses_new_messages_from_both_sides_with_413() {
    // Arrange: kristi takes chat-delay chats and joins at once (position 1).
    let app = spawn_app_with(|config| {
        config.chat.max_transcript_events = 4;
        config.chat.max_messages_per_second = 0;
    })
    .await;
    let id = crate::chat::confirmed_chat_delay(&app).await;
    let (status, _) = chat(&app, &id, "", &[("firstName", "Flood")]).await;
    assert_eq!(status, 200);
    crate::helpers::wait_for_state(&app, &id, "PROCESSING").await;
    crate::helpers::eventually(
        std::time::Duration::from_secs(5),
        "kristi to join",
        || async {
            let view = crate::chat::agent_chat(&app, "kristi", &id).await;
            (view["transcriptPosition"] == 2).then_some(())
        },
    )
    .await;

    // Act: Joined + 3 messages fill 4 events.
    let mut statuses = Vec::new();
    for n in 0..4 {
        let (status, _) = chat(&app, &id, "send", &[("message", &format!("m{n}"))]).await;
        statuses.push(status);
    }
    let (_, refused) = chat(&app, &id, "send", &[("message", "one more")]).await;
    let (agent_status, agent) = crate::chat::agent_post(
        &app,
        "kristi",
        &format!("chat/{id}/message"),
        serde_json::json!({"text": "agent too"}),
    )
    .await;
    let (leave_status, _) = chat(&app, &id, "disconnect", &[]).await;

    // Assert
    assert_eq!(
        statuses,
        [200, 200, 200, 413],
        "room for 3 messages after Joined"
    );
    assert_eq!(refused["exception"], "PayloadTooLarge", "{refused}");
    assert!(message_of(&refused).contains("transcript"), "{refused}");
    assert!(message_of(&refused).contains("`message`"), "{refused}");
    assert_eq!(agent_status, 413, "the agent too: {agent}");
    assert!(message_of(&agent).contains("`text`"), "{agent}");
    assert_eq!(leave_status, 200, "a full chat can still be left");
}

#[tokio::test]
async fn interactions_carry_the_transcript_position_and_the_chat_view_reads_from_it() {
    // Arrange
    let app = spawn_app().await;
    let id = crate::chat::confirmed_chat_delay(&app).await;
    let (status, _) = chat(&app, &id, "", &[("firstName", "Poll")]).await;
    assert_eq!(status, 200);
    crate::helpers::wait_for_state(&app, &id, "PROCESSING").await;
    for n in 0..3 {
        let (status, _) = chat(&app, &id, "send", &[("message", &format!("m{n}"))]).await;
        assert_eq!(status, 200);
    }

    // Act
    let list = crate::helpers::eventually(
        std::time::Duration::from_secs(5),
        "Joined and three messages",
        || async {
            let list = json(
                app.admin(Method::GET, "/genesys/1/agent/kristi/interactions")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            (list[0]["chat"]["transcriptPosition"] == 5).then_some(list)
        },
    )
    .await;
    let newer = json(
        app.admin(
            Method::GET,
            &format!("/genesys/1/agent/kristi/chat/{id}?transcriptPosition=4"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;

    // Assert
    let chat = &list[0]["chat"];
    assert!(
        chat.get("transcript").is_none(),
        "no transcript in the list: {chat}"
    );
    assert_eq!(chat["transcriptCount"], 4, "{chat}");
    assert_eq!(chat["lastPosition"], 4, "{chat}");
    let positions: Vec<u64> = newer["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [4], "only what is new since position 4: {newer}");
}
