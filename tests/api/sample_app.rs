//! Genesys's own Android sample app (`StanleyAu/gms-callback-sample-legacy`, package
//! `com.genesys.gms.mobile.callback.demo.legacy`) against callbackd, call by call as the app
//! makes them (issue 16): Retrofit's `@Body Map` as a JSON body, `@FormUrlEncoded` fields as
//! forms, OkHttp GETs without a body, and the `gms_user` header its request interceptor adds.
//! Each reply is checked against the Gson POJO that reads it, key by key, with the JSON types
//! Gson accepts for the field (its Gson uses `FieldNamingPolicy.IDENTITY`, so keys are the
//! Java field names).
//!
//! The app switches scenarios (CHAT-NOW, CHAT-WAIT, VOICE-...) by overriding `_wait_for_agent`,
//! `_media_type`, ... on one configured service, so that service lists them in
//! `_overwritable_options`.

use reqwest::Method;
use serde_json::{json, Value};

use std::time::Duration;

use callbackd::push::{FcmCredentials, FcmSettings};

use crate::helpers::{
    eventually, json, set_state, spawn_app, spawn_app_with, stand_in_fcm, wait_for_state, TestApp,
    GMS_USER,
};

/// The service the app's `service_name` preference names.
const SERVICE: &str = "sample-app";

/// The app's `this_phone_number` preference.
const PHONE: &str = "5551234567";

/// The number a user-originated callback's customer calls.
const ACCESS_NUMBER: &str = "+1 800 555 0100";

/// How Gson reads a JSON value into a field of the app's POJOs.
#[derive(Debug, Clone, Copy)]
enum Gson {
    /// `String`: a string, number or boolean (Gson reads each as text), or null.
    Text,
    /// `int`: a number or a numeric string.
    Int,
    /// `boolean`: true/false or their text.
    Bool,
    /// `List<...>`: an array or null.
    List,
    /// A nested POJO: an object or null.
    Object,
    /// An enum bound by `@SerializedName`: one of these names (Gson makes anything else null,
    /// which the app's `switch` dereferences).
    OneOf(&'static [&'static str]),
}

/// Checks that every key of `fields` present in `body` has a type Gson reads into its field,
/// and that the keys of `used` (what the app's code goes on to use) are present and not null.
fn assert_binds(body: &Value, fields: &[(&str, Gson)], used: &[&str], what: &str) {
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: an object: {body}"));
    for (key, kind) in fields {
        let Some(value) = object.get(*key) else {
            continue;
        };
        let ok = match kind {
            Gson::Text => value.is_string() || value.is_number() || value.is_boolean(),
            Gson::Int => value.is_i64() || value.as_str().is_some_and(|s| s.parse::<i32>().is_ok()),
            Gson::Bool => value.is_boolean() || matches!(value.as_str(), Some("true" | "false")),
            Gson::List => value.is_array(),
            Gson::Object => value.is_object(),
            Gson::OneOf(names) => value.as_str().is_some_and(|s| names.contains(&s)),
        };
        assert!(
            ok || value.is_null(),
            "{what}: `{key}` = {value} is not what Gson reads as {kind:?}: {body}"
        );
    }
    for key in used {
        assert!(
            object.get(*key).is_some_and(|v| !v.is_null()),
            "{what}: the app uses `{key}`: {body}"
        );
    }
}

/// `CallbackDialog.java` (data/api/pojo), every field it binds.
const CALLBACK_DIALOG: &[(&str, Gson)] = &[
    ("error", Gson::Text),
    ("_dialogId", Gson::Text),
    ("_id", Gson::Text),
    (
        "_action",
        Gson::OneOf(&[
            "DialNumber",
            "DisplayMenu",
            "StartChat",
            "ConfirmationDialog",
        ]),
    ),
    ("_tel_url", Gson::Text),
    ("_label", Gson::Text),
    ("_content", Gson::List),
    ("_start_chat_url", Gson::Text),
    ("_comet_url", Gson::Text),
    ("_chat_parameters", Gson::Object),
    ("_text", Gson::Text),
    ("_okTitle", Gson::Text),
];

/// `CallbackQueuePosition.java` (data/api/pojo).
const QUEUE_POSITION: &[(&str, Gson)] = &[
    ("_position", Gson::Text),
    ("_eta", Gson::Text),
    ("_total_waiting", Gson::Text),
    ("_agent_ready_threshold_passed", Gson::Bool),
];

/// `CallbackRequest.java` (data/api/pojo).
const CALLBACK_REQUEST: &[(&str, Gson)] = &[
    ("_id", Gson::Text),
    ("desiredTime", Gson::Text),
    ("url", Gson::Text),
];

/// `CallbackAdminRequest.java` (data/api/pojo).
const CALLBACK_ADMIN_REQUEST: &[(&str, Gson)] = &[
    ("_id", Gson::Text),
    ("desiredTime", Gson::Text),
    ("url", Gson::Text),
    ("_customerNumber", Gson::Text),
    ("_callbackState", Gson::Text),
];

/// `ChatResponse.java` (data/api/pojo), the reply of `ChatApi.startChat`.
const CHAT_RESPONSE: &[(&str, Gson)] = &[
    ("chatIxnState", Gson::Text),
    ("chatSessionId", Gson::Text),
    ("transcriptPosition", Gson::Int),
    ("chatServiceMessage", Gson::Text),
    ("transcriptToShow", Gson::List),
    ("startedAt", Gson::Text),
    ("userId", Gson::Text),
    ("secureKey", Gson::Text),
    ("chatWebApiPort", Gson::Int),
    ("isTLSrequired", Gson::Bool),
    ("_chatIxnAPI_SEND_URL", Gson::Text),
    ("_chatIxnAPI_REFRESH_URL", Gson::Text),
];

/// `GcmSyncMessage.java` (data/api/pojo): what the push carries.
const SYNC_MESSAGE: &[(&str, Gson)] = &[
    ("_id", Gson::Text),
    ("_action", Gson::Text),
    ("server_url", Gson::Text),
    ("url_path", Gson::Text),
];

/// The configured service the app is pointed at: Billing agents, the scenario options
/// overridable.
async fn configure(app: &TestApp) {
    let response = app
        .admin(Method::PUT, &format!("/genesys/1/admin/services/{SERVICE}"))
        .json(&json!({"preset": "Chat-Immediate", "options": {
            "_target": "Billing@StatServer.GA",
            "_access_number": ACCESS_NUMBER,
            "_overwritable_options":
                "_call_direction,_wait_for_agent,_wait_for_user_confirm,_media_type,_provide_code",
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "configure {SERVICE}");
}

/// `GenesysSampleController.connect()` for `scenario`, sent by
/// `CallbackApiManager.onEvent(CallbackStartEvent)` through `CallbackApi.startCallback`: a
/// `@Body Map<String,String>`, so JSON; null preferences are left out by Gson.
async fn start_callback(app: &TestApp, scenario: &str) -> Value {
    start_callback_with(app, scenario, false, None).await
}

/// [`start_callback`] with the app's `provide_code` preference and, for
/// VOICE-SCHEDULED-USERTERM, its `selected_time`.
async fn start_callback_with(
    app: &TestApp,
    scenario: &str,
    provide_code: bool,
    desired_time: Option<&str>,
) -> Value {
    start_callback_as(app, scenario, provide_code, desired_time, None).await
}

/// [`start_callback_with`], and with the app's `push_notifications_enabled` preference on
/// when `push_token` is given: `connect()` then adds `_device_notification_id` (the GCM
/// registration id) and `_device_os=gcm`.
async fn start_callback_as(
    app: &TestApp,
    scenario: &str,
    provide_code: bool,
    desired_time: Option<&str>,
    push_token: Option<&str>,
) -> Value {
    let (direction, wait, media) = match scenario {
        "CHAT-NOW" => ("USERORIGINATED", "false", "chat"),
        "CHAT-WAIT" => ("USERORIGINATED", "true", "chat"),
        "VOICE-NOW-USERORIG" => ("USERORIGINATED", "false", "voice"),
        "VOICE-WAIT-USERORIG" => ("USERORIGINATED", "true", "voice"),
        "VOICE-NOW-USERTERM" => ("USERTERMINATED", "false", "voice"),
        "VOICE-WAIT-USERTERM" | "VOICE-SCHEDULED-USERTERM" => ("USERTERMINATED", "true", "voice"),
        other => panic!("not a scenario of the app: {other}"),
    };
    let mut body = json!({
        "first_name": "Bob",
        "last_name": "Markel",
        "_provide_code": provide_code.to_string(),
        "_customer_number": PHONE,
        "_call_direction": direction,
        "_wait_for_agent": wait,
        "_wait_for_user_confirm": wait,
        "_media_type": media,
    });
    if let Some(time) = desired_time {
        body["_desired_time"] = json!(time);
    }
    if let Some(token) = push_token {
        body["_device_notification_id"] = json!(token);
        body["_device_os"] = json!("gcm");
    }
    let response = app
        .request(
            Method::POST,
            &format!("/genesys/1/service/callback/{SERVICE}"),
        )
        .header("gms_user", GMS_USER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{scenario}: startCallback");
    json(response).await
}

/// `CallbackApiManager.onEvent(CallbackCheckQueueEvent)`: an OkHttp GET of
/// `{base}/service/{id}/check-queue-position` with the `gms_user` header.
async fn check_queue(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(
            &format!("/genesys/1/service/{id}/check-queue-position"),
            Some(GMS_USER),
        )
        .await;
    assert_eq!(response.status(), 200, "check-queue-position");
    json(response).await
}

// Follows GenesysSampleController.java (connect, handleDialog CHAT) and ChatApi.java
// (startChat) for the CHAT-NOW scenario.
#[tokio::test]
async fn chat_now_answers_a_start_chat_dialog_the_app_opens_a_chat_with() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;

    // Act
    let dialog = start_callback(&app, "CHAT-NOW").await;

    // Assert: handleDialog's CHAT case reads _id, _comet_url and _chat_parameters.subject.
    assert_binds(
        &dialog,
        CALLBACK_DIALOG,
        &["_id", "_action", "_comet_url", "_chat_parameters"],
        "CHAT-NOW dialog",
    );
    assert_eq!(dialog["_action"], "StartChat", "{dialog}");
    assert!(
        dialog["_chat_parameters"]["subject"].is_string(),
        "ChatParameters.subject: {dialog}"
    );

    // Act: GenesysChatActivity starts the chat through ChatApi.startChat (form fields; null
    // ones left out, booleans as text).
    let id = dialog["_id"].as_str().unwrap();
    let chat = app
        .post_form(
            &format!("/genesys/1/service/{id}/ixn/chat"),
            Some(GMS_USER),
            &[
                ("_verbose", "false"),
                ("notify_by", "comet"),
                ("firstName", "Bob"),
                ("lastName", "Markel"),
                ("subject", "Billing"),
                ("userDisplayName", "Bob"),
                ("push_notification_debug", "false"),
            ],
        )
        .await;

    // Assert
    assert_eq!(chat.status(), 200, "startChat");
    let chat = json(chat).await;
    assert_binds(&chat, CHAT_RESPONSE, &[], "startChat reply");
}

// Follows GenesysSampleController.java (connect, handleDialog CONFIRM, checkQueuePosition,
// handleGcmMessage) and CallbackApiManager.java (CallbackDialogEvent) for CHAT-WAIT.
#[tokio::test]
async fn chat_wait_confirms_then_the_push_follow_up_answers_the_start_chat_dialog() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;

    // Act
    let dialog = start_callback(&app, "CHAT-WAIT").await;

    // Assert: a ConfirmationDialog (handleDialog's CONFIRM case shows `_text`), seed 000's
    // `_id` and `_text` kept.
    assert_binds(
        &dialog,
        CALLBACK_DIALOG,
        &["_id", "_action", "_text", "_dialogId", "_okTitle"],
        "CHAT-WAIT dialog",
    );
    assert_eq!(dialog["_action"], "ConfirmationDialog", "{dialog}");
    assert_eq!(dialog["_dialog_id"], dialog["_dialogId"], "GMS's key too");
    assert_eq!(
        dialog["_text"], "We will notify you when agent is available",
        "seed 000's _text"
    );
    let id = dialog["_id"].as_str().unwrap().to_string();

    // Act: while it waits, the app checks its place (GET, no body).
    let position = check_queue(&app, &id).await;

    // Assert
    assert_binds(
        &position,
        QUEUE_POSITION,
        &[
            "_position",
            "_eta",
            "_total_waiting",
            "_agent_ready_threshold_passed",
        ],
        "check-queue-position",
    );

    // The follow-up before any agent is reserved is refused as `connect` is.
    let early = app
        .get(
            &format!("/genesys/1/service/{id}/get-dialog-user-confirmation-provide_code-false"),
            Some(GMS_USER),
        )
        .await;
    assert_eq!(early.status(), 503, "no agent yet");

    // Act: an agent becomes ready; the push (read here by polling, which stores the same
    // message) names `_id` and `_action`, and the app GETs `{base}/service/{_id}/{_action}`.
    set_state(&app, "kristi", "ready").await;
    wait_for_state(&app, &id, "ROUTING").await;
    let pushed = json(
        app.post_form(
            &format!("/genesys/1/service/{id}/retrieve-notifications"),
            Some(GMS_USER),
            &[],
        )
        .await,
    )
    .await;
    let message = &pushed[0];
    assert_binds(message, SYNC_MESSAGE, &["_id", "_action"], "the push");
    let follow_up = format!(
        "/genesys/1/service/{}/{}",
        message["_id"].as_str().unwrap(),
        message["_action"].as_str().unwrap()
    );
    let response = app.get(&follow_up, Some(GMS_USER)).await;

    // Assert
    assert_eq!(response.status(), 200, "GET {follow_up}");
    let start = json(response).await;
    assert_binds(
        &start,
        CALLBACK_DIALOG,
        &["_id", "_action", "_comet_url", "_chat_parameters"],
        "the follow-up dialog",
    );
    assert_eq!(start["_action"], "StartChat", "{start}");
    assert_eq!(start["_id"], id.as_str(), "the same service");
}

// Follows GenesysSampleController.java (connect with push notifications on: `_device_os=gcm`),
// GcmManager.java and GenesysSampleActivity.java (onEventMainThread(GcmReceiveEvent): the
// push's `message` extra read as a GcmSyncMessage, then handleGcmMessage's GET of
// `service/{_id}/{_action}`), for the CHAT-WAIT scenario, FCM being a stand-in on 127.0.0.1.
#[tokio::test]
async fn chat_wait_with_push_on_is_pushed_through_fcm_and_the_app_follows_the_push() {
    // Arrange
    let (endpoint, received) = stand_in_fcm().await;
    let app = spawn_app_with(|config| {
        config.fcm = Some(FcmSettings {
            endpoint,
            project_id: "sample-app".into(),
            credentials: FcmCredentials::AccessToken("ya29.sample-app".into()),
        });
    })
    .await;
    configure(&app).await;
    let token = "APA91bSampleAppRegistrationId";

    // Act
    let dialog = start_callback_as(&app, "CHAT-WAIT", false, None, Some(token)).await;
    let id = dialog["_id"].as_str().unwrap().to_string();
    set_state(&app, "kristi", "ready").await;
    let sent = eventually(Duration::from_secs(10), "the FCM send", || {
        let received = received.clone();
        async move { received.lock().unwrap().first().cloned() }
    })
    .await;

    // Assert: sent to the app's registration id; the `message` data is what GcmSyncMessage
    // reads, and its follow-up answers the StartChat dialog.
    assert_eq!(sent.path, "/v1/projects/sample-app/messages:send");
    assert_eq!(sent.body["message"]["token"], token);
    let text = sent.body["message"]["data"]["message"]
        .as_str()
        .expect("the extra `message` is a string");
    let message: Value = serde_json::from_str(text).expect("a GcmSyncMessage");
    assert_binds(&message, SYNC_MESSAGE, &["_id", "_action"], "the FCM push");
    assert_eq!(message["_id"], id.as_str());
    let follow_up = format!(
        "/genesys/1/service/{}/{}",
        message["_id"].as_str().unwrap(),
        message["_action"].as_str().unwrap()
    );
    let start = follow(&app, &follow_up).await;
    assert_eq!(start["_action"], "StartChat", "{start}");
    assert_eq!(start["_id"], id.as_str(), "the same service");
}

// Follows CallbackApi.java (queryCallback) and CallbackApiManager.java
// (onEvent(CallbackQueryEvent)): `operand` plus the properties, as a query map.
#[tokio::test]
async fn the_operand_query_lists_the_apps_callbacks_with_desired_time_and_url() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    let first = start_callback(&app, "CHAT-WAIT").await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = start_callback(&app, "CHAT-WAIT").await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let query = |params: &'static str| {
        let app = &app;
        async move {
            let response = app
                .get(
                    &format!("/genesys/1/service/callback/{SERVICE}?{params}"),
                    Some(GMS_USER),
                )
                .await;
            assert_eq!(response.status(), 200, "{params}");
            json(response).await
        }
    };

    // Act
    let and = query("operand=AND&_customer_number=5551234567&first_name=Bob").await;
    let and_unmatched = query("operand=AND&_customer_number=5551234567&first_name=Alice").await;
    let or = query("operand=OR&_customer_number=0000&first_name=Bob").await;
    let or_unmatched = query("operand=OR&_customer_number=0000&first_name=Alice").await;

    // Assert
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap_or_else(|| panic!("a list: {list}"))
            .iter()
            .map(|entry| entry["_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&and), [first.clone(), second.clone()], "AND: {and}");
    assert_eq!(ids(&or), [first.clone(), second.clone()], "OR: {or}");
    assert_eq!(and_unmatched, json!([]), "AND needs every filter");
    assert_eq!(or_unmatched, json!([]), "OR needs one filter");
    for entry in and.as_array().unwrap() {
        assert_binds(
            entry,
            CALLBACK_REQUEST,
            &["_id", "desiredTime", "url"],
            "CallbackRequest",
        );
        let id = entry["_id"].as_str().unwrap();
        assert_eq!(
            entry["url"],
            format!("http://{}/genesys/1/service/{id}", app.host),
            "url"
        );
        assert_eq!(entry["desiredTime"], entry["_desired_time"], "desiredTime");
    }
}

// Follows CallbackApi.java (queryCallbackAdmin) and CallbackApiManager.java
// (onEvent(CallbackAdminEvent)): `target`, `end_time` in the app's UTC format, `max`. The
// app sends no Authorization header; callbackd's admin API needs the bearer token.
#[tokio::test]
async fn the_admin_queue_query_carries_the_keys_the_app_reads_beside_todays() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    let id = start_callback(&app, "CHAT-WAIT").await["_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Act
    let response = app
        .admin(
            Method::GET,
            &format!(
                "/genesys/1/admin/callback/queues?target={SERVICE}&end_time=2099-01-01T00:00:00.000Z&max=10"
            ),
        )
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 200, "queues");
    let body = json(response).await;
    let entries = body[SERVICE]
        .as_array()
        .unwrap_or_else(|| panic!("Map<String, List<CallbackAdminRequest>>: {body}"));
    assert_eq!(entries.len(), 1, "{body}");
    let entry = &entries[0];
    assert_binds(
        entry,
        CALLBACK_ADMIN_REQUEST,
        &[
            "_id",
            "desiredTime",
            "url",
            "_customerNumber",
            "_callbackState",
        ],
        "CallbackAdminRequest",
    );
    assert_eq!(entry["_id"], id.as_str());
    assert_eq!(entry["_customerNumber"], PHONE);
    assert_eq!(entry["_callbackState"], "QUEUED");
    for (older, today) in [
        ("_customerNumber", "_customer_number"),
        ("_callbackState", "_callback_state"),
        ("desiredTime", "_desired_time"),
    ] {
        assert_eq!(entry[older], entry[today], "{older} beside {today}");
    }
}

/// The push the app receives (read by polling, which stores the same message), checked as
/// `GcmSyncMessage` reads it; returns the follow-up path `/genesys/1/service/{_id}/{_action}`.
async fn pushed_follow_up(app: &TestApp, id: &str) -> String {
    let pushed = json(
        app.post_form(
            &format!("/genesys/1/service/{id}/retrieve-notifications"),
            Some(GMS_USER),
            &[],
        )
        .await,
    )
    .await;
    let message = &pushed[0];
    assert_binds(message, SYNC_MESSAGE, &["_id", "_action"], "the push");
    format!(
        "/genesys/1/service/{}/{}",
        message["_id"].as_str().unwrap(),
        message["_action"].as_str().unwrap()
    )
}

/// `CallbackApiManager.onEvent(CallbackDialogEvent)`: an OkHttp GET of `url` (a full URL, as
/// a menu's `_user_action_url`, or a path under the server) with `gms_user`; the reply read as
/// a `CallbackDialog`.
async fn follow(app: &TestApp, url: &str) -> Value {
    let path = url.strip_prefix(&app.address).unwrap_or(url);
    let response = app.get(path, Some(GMS_USER)).await;
    assert_eq!(response.status(), 200, "GET {url}");
    let dialog = json(response).await;
    assert_binds(&dialog, CALLBACK_DIALOG, &["_id", "_action"], url);
    dialog
}

/// handleDialog's MENU case: the first group's choice labelled `label`, its
/// `_user_action_url`.
fn menu_choice(menu: &Value, label_starts: &str) -> String {
    assert_eq!(menu["_action"], "DisplayMenu", "{menu}");
    let group = &menu["_content"][0];
    assert!(
        group["_group_name"].is_string(),
        "DialogGroup._group_name: {menu}"
    );
    let choices = group["_group_content"]
        .as_array()
        .unwrap_or_else(|| panic!("DialogGroup._group_content: {menu}"));
    for choice in choices {
        assert!(choice["_label"].is_string(), "GroupContent._label: {menu}");
        assert!(
            choice["_user_action_url"].is_string(),
            "GroupContent._user_action_url: {menu}"
        );
    }
    choices
        .iter()
        .find(|c| c["_label"].as_str().unwrap().starts_with(label_starts))
        .and_then(|c| c["_user_action_url"].as_str())
        .unwrap_or_else(|| panic!("a choice `{label_starts}...`: {menu}"))
        .to_string()
}

/// The agent records how the call went (the desktop's outcome API).
async fn record_outcome(app: &TestApp, agent: &str, id: &str, outcome: &str) -> Value {
    let response = app
        .admin(
            Method::POST,
            &format!("/genesys/1/agent/{agent}/interactions/{id}/outcome"),
        )
        .json(&json!({ "outcome": outcome }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "outcome {outcome}");
    json(response).await
}

/// A telephony integration reports the customer's call to the access number.
async fn inbound_call(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    app.admin(Method::POST, "/genesys/1/voice/inbound-call")
        .form(fields)
        .send()
        .await
        .unwrap()
}

// Follows GenesysSampleController.java (connect, handleDialog CONFIRM) for
// VOICE-NOW-USERTERM; the agent side is the desktop's.
#[tokio::test]
async fn voice_now_userterm_says_the_call_comes_and_an_agent_gets_it_at_once() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    set_state(&app, "kristi", "ready").await;

    // Act
    let dialog = start_callback(&app, "VOICE-NOW-USERTERM").await;

    // Assert
    assert_binds(
        &dialog,
        CALLBACK_DIALOG,
        &["_id", "_action", "_text"],
        "VOICE-NOW-USERTERM dialog",
    );
    assert_eq!(dialog["_action"], "ConfirmationDialog", "{dialog}");
    assert_eq!(dialog["_text"], "You will receive the call shortly");
    let id = dialog["_id"].as_str().unwrap();
    // kristi answers automatically: nobody has to confirm, so she is dialing at once.
    let record = wait_for_state(&app, id, "PROCESSING").await;
    assert_eq!(record["_reserved_agent"], "kristi", "{record}");
    let done = record_outcome(&app, "kristi", id, "connected").await;
    assert_eq!(done["callback_state"], "COMPLETED", "{done}");
    assert_eq!(done["reason"], "AGENT_CONNECTED", "{done}");
}

// Follows GenesysSampleController.java (connect, handleDialog CONFIRM and MENU,
// handleGcmMessage) and CallbackApiManager.java (CallbackDialogEvent) for VOICE-WAIT-USERTERM.
#[tokio::test]
async fn voice_wait_userterm_asks_when_an_agent_is_free_and_accepting_brings_the_call() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    let dialog = start_callback(&app, "VOICE-WAIT-USERTERM").await;
    assert_eq!(dialog["_action"], "ConfirmationDialog", "{dialog}");
    assert_eq!(
        dialog["_text"], "We will notify you when agent is available",
        "{dialog}"
    );
    let id = dialog["_id"].as_str().unwrap().to_string();
    assert_binds(
        &check_queue(&app, &id).await,
        QUEUE_POSITION,
        &["_position", "_agent_ready_threshold_passed"],
        "check-queue-position",
    );

    // Act
    set_state(&app, "kristi", "ready").await;
    wait_for_state(&app, &id, "ROUTING").await;
    let follow_up = pushed_follow_up(&app, &id).await;
    let menu = follow(&app, &follow_up).await;
    let accept = menu_choice(&menu, "Yes");
    let confirmed = follow(&app, &accept).await;

    // Assert
    assert!(
        accept.starts_with(&format!("http://{}/genesys/1/service/{id}/", app.host)),
        "a full URL the app GETs as it is: {accept}"
    );
    assert_eq!(confirmed["_action"], "ConfirmationDialog", "{confirmed}");
    assert_eq!(confirmed["_text"], "You will receive the call shortly");
    // Confirmed: kristi (auto answer) takes it and dials.
    wait_for_state(&app, &id, "PROCESSING").await;
    let done = record_outcome(&app, "kristi", &id, "connected").await;
    assert_eq!(done["reason"], "AGENT_CONNECTED", "{done}");
}

// Follows GenesysSampleController.java (handleDialog MENU) for VOICE-WAIT-USERTERM, the
// other choice.
#[tokio::test]
async fn declining_the_menu_cancels_the_callback() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    let id = start_callback(&app, "VOICE-WAIT-USERTERM").await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    set_state(&app, "kristi", "ready").await;
    wait_for_state(&app, &id, "ROUTING").await;
    let menu = follow(&app, &pushed_follow_up(&app, &id).await).await;

    // Act
    let declined = follow(&app, &menu_choice(&menu, "No")).await;

    // Assert
    assert_eq!(declined["_action"], "ConfirmationDialog", "{declined}");
    let record = wait_for_state(&app, &id, "COMPLETED").await;
    assert_eq!(record["_callback_reason"], "CANCELLED", "{record}");
}

// Follows GenesysSampleController.java (connect with `selected_time`, handleDialog CONFIRM)
// and CallbackApi.java (queryCallback, cancelCallback) for VOICE-SCHEDULED-USERTERM.
#[tokio::test]
async fn voice_scheduled_userterm_waits_for_its_time_and_can_be_cancelled() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    let time = "2099-06-01T10:00:00.000Z";

    // Act
    let dialog = start_callback_with(&app, "VOICE-SCHEDULED-USERTERM", false, Some(time)).await;

    // Assert
    assert_eq!(dialog["_action"], "ConfirmationDialog", "{dialog}");
    assert_binds(
        &dialog,
        CALLBACK_DIALOG,
        &["_id", "_text"],
        "scheduled dialog",
    );
    let id = dialog["_id"].as_str().unwrap().to_string();
    let listed = json(
        app.get(
            &format!("/genesys/1/service/callback/{SERVICE}?operand=AND&_customer_number={PHONE}"),
            Some(GMS_USER),
        )
        .await,
    )
    .await;
    assert_eq!(listed[0]["_id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["desiredTime"], time, "{listed}");
    assert_eq!(listed[0]["_callback_state"], "SCHEDULED", "{listed}");

    // Act: CallbackApi.cancelCallback.
    let cancelled = app
        .request(
            Method::DELETE,
            &format!("/genesys/1/service/callback/{SERVICE}/{id}"),
        )
        .header("gms_user", GMS_USER)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(cancelled.status(), 200, "cancelCallback");
    wait_for_state(&app, &id, "COMPLETED").await;
}

// Follows GenesysSampleController.java (connect with `provide_code`, handleDialog DIAL) for
// VOICE-NOW-USERORIG; the call is reported through the inbound-call API.
#[tokio::test]
async fn voice_now_userorig_gives_a_number_with_a_code_and_the_matched_call_reaches_an_agent() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    set_state(&app, "kristi", "ready").await;

    // Act
    let dialog = start_callback_with(&app, "VOICE-NOW-USERORIG", true, None).await;

    // Assert: handleDialog's DIAL case reads _tel_url and _label.
    assert_binds(
        &dialog,
        CALLBACK_DIALOG,
        &["_id", "_action", "_tel_url", "_label"],
        "VOICE-NOW-USERORIG dialog",
    );
    assert_eq!(dialog["_action"], "DialNumber", "{dialog}");
    let code = dialog["_access_code"].as_str().expect("an access code");
    assert_eq!(code.len(), 6, "six digits: {code}");
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
    assert_eq!(dialog["_tel_url"], format!("tel:+18005550100,,{code}"));
    let id = dialog["_id"].as_str().unwrap().to_string();
    // Nothing to route before the call arrives.
    assert_eq!(
        crate::helpers::detail(&app, &id).await["_callback_state"],
        "QUEUED"
    );
    let wrong = inbound_call(&app, &[("access_code", "000000")]).await;

    // Act: the customer calls and keys in the code.
    let matched = inbound_call(&app, &[("access_code", code)]).await;

    // Assert
    assert_eq!(wrong.status(), 404, "an unknown code");
    assert_eq!(matched.status(), 200, "the call matched");
    let matched = json(matched).await;
    assert_eq!(matched["_id"], id.as_str(), "{matched}");
    let record = wait_for_state(&app, &id, "PROCESSING").await;
    assert_eq!(record["_reserved_agent"], "kristi", "{record}");
    let done = record_outcome(&app, "kristi", &id, "connected").await;
    assert_eq!(done["reason"], "AGENT_CONNECTED", "{done}");
}

// Follows GenesysSampleController.java (connect, handleDialog CONFIRM, MENU and DIAL,
// handleGcmMessage) for VOICE-WAIT-USERORIG, without an access code.
#[tokio::test]
async fn voice_wait_userorig_gives_the_number_once_the_agent_is_accepted() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    let dialog = start_callback(&app, "VOICE-WAIT-USERORIG").await;
    assert_eq!(dialog["_action"], "ConfirmationDialog", "{dialog}");
    let id = dialog["_id"].as_str().unwrap().to_string();
    set_state(&app, "kristi", "ready").await;
    wait_for_state(&app, &id, "ROUTING").await;

    // Act
    let follow_up = pushed_follow_up(&app, &id).await;
    let menu = follow(&app, &follow_up).await;
    let dial = follow(&app, &menu_choice(&menu, "Yes")).await;
    let matched = inbound_call(&app, &[("caller_number", PHONE)]).await;

    // Assert
    assert!(
        follow_up.ends_with("get-dialog-user-confirmation-provide_code-false"),
        "{follow_up}"
    );
    assert_eq!(dial["_action"], "DialNumber", "{dial}");
    assert_eq!(dial["_tel_url"], "tel:+18005550100", "no code: {dial}");
    assert_eq!(matched.status(), 200, "matched by the caller's number");
    assert_eq!(json(matched).await["_reserved_agent"], "kristi");
}

/// A JPEG's first bytes (not UTF-8): what `CaptureManager.saveImage` writes.
const JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x80,
];

/// Checks that `body` reads as Retrofit's `Map<String, String>` (`StorageApi.queryAllKeys`):
/// an object whose every value is a JSON string (Gson refuses an object or an array there).
fn assert_string_map(body: &Value, what: &str) -> serde_json::Map<String, Value> {
    let map = body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: an object: {body}"))
        .clone();
    for (key, value) in &map {
        assert!(
            value.is_string(),
            "{what}: `{key}` = {value} is not what Gson reads into a String: {body}"
        );
    }
    map
}

/// GETs a URL the all-keys reply gave (a full URL under the server) as the app's OkHttp
/// client would (`StorageApi.queryBinary`), with `gms_user`; answers the content type and bytes.
async fn fetch_bytes(app: &TestApp, url: &str) -> (String, Vec<u8>) {
    let path = url
        .strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("a URL under the server: {url}"));
    let response = app.get(path, Some(GMS_USER)).await;
    assert_eq!(response.status(), 200, "GET {url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.bytes().await.unwrap().to_vec())
}

// Follows CaptureManager.java (uploadScreenCapture: a multipart part `screen`, file name
// `temp`, application/octet-stream, POSTed to `{base}/service/{id}/storage`) and
// CallbackApi.java's Service Storage API (updateStorage as a form, queryAllKeys as
// `Map<String, String>`, queryBinary `/service/{id}/storage/binary/{key}`). CaptureManager's
// raw OkHttp call adds no `gms_user`; here the service belongs to the app's user, so the
// upload carries it, as the app's Retrofit interceptor does for its other calls.
#[tokio::test]
async fn a_services_storage_reads_as_a_string_map_with_the_binary_as_its_url() {
    // Arrange
    let app = spawn_app().await;
    configure(&app).await;
    let id = start_callback(&app, "CHAT-WAIT").await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/genesys/1/service/{id}/storage");
    let upload = reqwest::multipart::Form::new()
        .part(
            "screen",
            reqwest::multipart::Part::bytes(JPEG.to_vec())
                .file_name("temp")
                .mime_str("application/octet-stream")
                .unwrap(),
        )
        .text("caption", "draft");
    let uploaded = app
        .request(Method::POST, &path)
        .header("gms_user", GMS_USER)
        .multipart(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200, "uploadScreenCapture");
    let updated = app
        .post_form(&path, Some(GMS_USER), &[("caption", "my screen")])
        .await;
    assert_eq!(updated.status(), 200, "updateStorage");

    // Act
    let all = json(app.get(&path, Some(GMS_USER)).await).await;

    // Assert
    let map = assert_string_map(&all, "service storage");
    assert_eq!(map["caption"], "my screen", "text as it was sent");
    let url = map["screen"].as_str().unwrap();
    assert_eq!(
        url,
        format!("{}{path}/binary/screen", app.address),
        "the binary value is the URL of its bytes"
    );
    let (content_type, bytes) = fetch_bytes(&app, url).await;
    assert_eq!(content_type, "application/octet-stream");
    assert_eq!(bytes, JPEG, "byte for byte");
}

// Follows StorageApi.java: create (`@FieldMap`, urlencoded) and a multipart body as GMS
// documents for `POST /storage/{ttl}`, then queryAllKeys (`Map<String, String>`) and
// queryBinary (`GET /storage/binary/{storage_id}/{key}`), with a key a URL must escape.
#[tokio::test]
async fn a_storage_area_reads_as_a_string_map_and_its_binary_url_is_the_apps_query_binary() {
    // Arrange
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new()
        .text("note", "seen at 10:00")
        .part(
            "screen(1)",
            reqwest::multipart::Part::bytes(JPEG.to_vec())
                .file_name("temp")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let created = app
        .request(Method::POST, "/genesys/1/storage/3600")
        .header("gms_user", GMS_USER)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = created.status();
    let created = json(created).await;
    assert_eq!(status, 200, "create: {created}");
    let storage_id = created["id"].as_str().unwrap().to_string();

    // Act
    let all = json(
        app.get(&format!("/genesys/1/storage/{storage_id}"), Some(GMS_USER))
            .await,
    )
    .await;

    // Assert
    let map = assert_string_map(&all, "queryAllKeys");
    assert_eq!(map["note"], "seen at 10:00");
    let url = map["screen(1)"].as_str().unwrap();
    assert_eq!(
        url,
        format!(
            "{}/genesys/1/storage/binary/{storage_id}/screen%281%29",
            app.address
        ),
        "queryBinary's path, the key percent-encoded"
    );
    let (content_type, bytes) = fetch_bytes(&app, url).await;
    assert_eq!(content_type, "image/jpeg");
    assert_eq!(bytes, JPEG, "byte for byte");
}

/// `CallbackRescheduleException.java` (data/api/pojo): what a refused `updateCallback` is
/// read into (`error.getBodyAs`); `availability` is a `Map<DateTime, Integer>`.
const RESCHEDULE_EXCEPTION: &[(&str, Gson)] = &[
    ("message", Gson::Text),
    ("exception", Gson::Text),
    ("error", Gson::Text),
    ("availability", Gson::Object),
];

/// Whether `key` is what the app's `DateTimeTypeAdapter` parses: Joda's
/// `yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'SSS'Z'` (DataModule.UTC_DATE_FORMAT), nothing more or less.
fn is_app_utc_time(key: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:dd.dddZ";
    key.len() == pattern.len()
        && key.bytes().zip(pattern).all(|(byte, want)| match want {
            b'd' => byte.is_ascii_digit(),
            literal => byte == *literal,
        })
}

// Follows CallbackApi.java (updateCallback: a PUT with `@Body Map<String, String>`, so JSON,
// `_new_desired_time` in TimeHelper.serializeUTCTime's form) and CallbackApiManager.java
// (onEvent(CallbackUpdateEvent): a refused update read as CallbackRescheduleException) for a
// VOICE-SCHEDULED-USERTERM callback moved into a full capacity bucket.
#[tokio::test]
async fn a_refused_reschedule_reads_as_the_apps_reschedule_exception_with_its_time_slots() {
    // Arrange: Paris capacity of two callbacks per 30 minutes from 08:00 to 10:00 on Mondays
    // (06:00Z-08:00Z on 2026-03-30); the app's service follows it.
    let clock = callbackd::clock::ManualClock::new(
        callbackd::domain::time::Timestamp::parse_iso("2026-03-30T05:00:00Z").unwrap(),
    );
    let app = crate::helpers::spawn_app_with_clock(clock).await;
    for (name, preset, options) in [
        (
            "paris-capacity",
            "Capacity",
            json!({
                "_timezone": "Europe/Paris",
                "_capacity": "[Mon, Tue, Wed, Thu, Fri, Sat, Sun]",
                "_capacity_1": r#"{"1":{"0800":2,"0900":2}}"#,
            }),
        ),
        (
            SERVICE,
            "Chat-Immediate",
            json!({
                "_target": "Billing@StatServer.GA",
                "_capacity_service": "paris-capacity",
                "_request_time_bucket": "30",
                "_overwritable_options":
                    "_call_direction,_wait_for_agent,_wait_for_user_confirm,_media_type,_provide_code",
            }),
        ),
    ] {
        let response = app
            .admin(Method::PUT, &format!("/genesys/1/admin/services/{name}"))
            .json(&json!({ "preset": preset, "options": options }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "configure {name}");
    }
    let scheduled = |time: &'static str| {
        let app = &app;
        async move {
            let dialog =
                start_callback_with(app, "VOICE-SCHEDULED-USERTERM", false, Some(time)).await;
            dialog["_id"].as_str().expect("_id").to_string()
        }
    };
    scheduled("2026-03-30T06:00:00.000Z").await;
    scheduled("2026-03-30T06:05:00.000Z").await;
    let moving = scheduled("2026-03-30T07:00:00.000Z").await;

    // Act
    let refused = app
        .request(
            Method::PUT,
            &format!("/genesys/1/service/callback/{SERVICE}/{moving}"),
        )
        .header("gms_user", GMS_USER)
        .json(&json!({ "_new_desired_time": "2026-03-30T06:20:00.000Z" }))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(refused.status(), 400, "refused: its bucket is full");
    let body = json(refused).await;
    assert_binds(
        &body,
        RESCHEDULE_EXCEPTION,
        &["message", "exception", "availability"],
        "CallbackRescheduleException",
    );
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys.iter()
            .all(|key| RESCHEDULE_EXCEPTION.iter().any(|(field, _)| field == key)),
        "only what the POJO binds: {body}"
    );
    let availability = body["availability"].as_object().unwrap();
    assert!(!availability.is_empty(), "the nearest free slots: {body}");
    for (time, room) in availability {
        assert!(
            is_app_utc_time(time),
            "DateTimeTypeAdapter parses `{time}`: {body}"
        );
        assert!(
            room.as_i64()
                .is_some_and(|n| (1..=i64::from(i32::MAX)).contains(&n)),
            "an Integer with room left for `{time}`: {body}"
        );
    }
    assert_eq!(
        body["availability"],
        json!({
            "2026-03-30T06:30:00.000Z": 2,
            "2026-03-30T07:00:00.000Z": 2,
            "2026-03-30T07:30:00.000Z": 2,
            "2026-04-06T06:00:00.000Z": 2,
        }),
        "06:00 is full; the moving callback does not count against its own place at 07:00"
    );
}
