//! One callback's page over HTTP: reschedule, user-data edits and recreate, each read back
//! through the GMS API; the chat transcript's two views; roles, CSRF and unknown ids.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callbackd::domain::time::Timestamp;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::chat::{agent_chat, agent_post, chat, confirmed_chat_delay};
use crate::helpers::{eventually, json, spawn_app, SignedIn, TestApp, GMS_USER};

const PASSWORD: &str = "correct horse";

/// An ISO time `days` from now.
fn in_days(days: f64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    Timestamp::from_millis((now + days * 86_400_000.0) as u64).to_iso()
}

async fn supervisor(app: &TestApp) -> SignedIn {
    app.add_user("sue", "supervisor", None, PASSWORD).await;
    app.sign_in("admin", "sue", PASSWORD).await
}

async fn monitor(app: &TestApp) -> SignedIn {
    app.add_user("mo", "monitor", None, PASSWORD).await;
    app.sign_in("admin", "mo", PASSWORD).await
}

/// A fresh server, a signed-in supervisor and a scheduled callback for `number` (its id).
async fn supervised(number: &str) -> (TestApp, SignedIn, String) {
    let app = spawn_app().await;
    let session = supervisor(&app).await;
    let id = scheduled(&app, number).await;
    (app, session, id)
}

/// The refusal shown beside the picker of `form` (`reschedule`, `recreate`) in `body`.
fn error_beside<'a>(body: &'a str, form: &str) -> &'a str {
    body.split(&format!("id=\"{form}-error\""))
        .nth(1)
        .unwrap_or_else(|| panic!("an error beside the {form} picker in {body}"))
}

/// A scheduled chat-delay callback with user data; returns its id.
async fn scheduled(app: &TestApp, number: &str) -> String {
    app.create(
        "chat-delay",
        &[
            ("_customer_number", number),
            ("_desired_time", &in_days(1.0)),
            ("subject", "billing"),
            ("tier", "gold"),
        ],
    )
    .await
}

/// The callback as the GMS query API shows it to its owner.
async fn gms_view(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(
            &format!("/genesys/1/service/callback?_id={id}"),
            Some(GMS_USER),
        )
        .await;
    assert_eq!(response.status(), 200, "GMS query of {id}");
    let list = json(response).await;
    list[0].clone()
}

/// Posts a detail-page form as `session`, with its CSRF token first.
async fn post(
    app: &TestApp,
    session: &SignedIn,
    id: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Response {
    let mut form = vec![("csrf", session.csrf.as_str())];
    form.extend_from_slice(fields);
    app.as_user(
        session,
        Method::POST,
        &format!("/admin/callbacks/{id}/{action}"),
    )
    .form(&form)
    .send()
    .await
    .unwrap()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn page(app: &TestApp, session: &SignedIn, path: &str) -> String {
    let response = app
        .as_user(session, Method::GET, path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

/// The HTML between `<... id="{id}"` and the next `</ol>`.
fn list_by_id<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</ol>").expect("list end")]
}

#[tokio::test]
async fn reschedule_moves_the_desired_time_seen_through_the_gms_api() {
    let (app, session, id) = supervised("5550100").await;

    // With the page's script: the absolute time in the hidden field wins over the picker.
    let new_time = &in_days(3.0)[..19];
    let utc = format!("{new_time}.000Z");
    let response = post(
        &app,
        &session,
        &id,
        "reschedule",
        &[
            ("desired_time", "2001-01-01T00:00"),
            ("desired_time_utc", &utc),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("/admin/callbacks/{id}?done=rescheduled")
    );
    let seen = gms_view(&app, &id).await;
    assert_eq!(seen["_desired_time"], utc.as_str());
    assert_eq!(seen["_callback_state"], "SCHEDULED");
    let body = page(
        &app,
        &session,
        &format!("/admin/callbacks/{id}?done=rescheduled"),
    )
    .await;
    assert!(body.contains("Callback rescheduled"), "the notice");

    // Without the script: the picker's value alone is read as UTC.
    let picked = &in_days(4.0)[..16];
    let response = post(
        &app,
        &session,
        &id,
        "reschedule",
        &[("desired_time", picked)],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        gms_view(&app, &id).await["_desired_time"],
        format!("{picked}:00.000Z")
    );
}

#[tokio::test]
async fn a_past_time_or_a_completed_callback_is_refused_beside_the_field() {
    let (app, session, id) = supervised("5550101").await;
    let before = gms_view(&app, &id).await["_desired_time"].clone();

    let past = in_days(-1.0);
    let response = post(
        &app,
        &session,
        &id,
        "reschedule",
        &[("desired_time", &past[..16]), ("desired_time_utc", &past)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    let error = error_beside(&body, "reschedule");
    assert!(
        error.contains("desired_time") && error.contains("in the past"),
        "{error}"
    );
    assert!(
        body.contains("aria-invalid=\"true\""),
        "the field is marked"
    );
    assert_eq!(
        gms_view(&app, &id).await["_desired_time"],
        before,
        "unchanged"
    );

    let response = post(&app, &session, &id, "reschedule", &[("desired_time", "")]).await;
    assert_eq!(response.status(), 400, "no time at all");
    let response = post(
        &app,
        &session,
        &id,
        "reschedule",
        &[("desired_time", "soon")],
    )
    .await;
    assert_eq!(response.status(), 400, "not a time");

    let response = post(&app, &session, &id, "cancel", &[]).await;
    assert_eq!(response.status(), 303);
    let future = in_days(2.0);
    let response = post(
        &app,
        &session,
        &id,
        "reschedule",
        &[("desired_time_utc", &future)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    let error = error_beside(&body, "reschedule");
    assert!(error.contains("COMPLETED"), "{error}");
}

#[tokio::test]
async fn user_data_keys_are_changed_removed_and_added_as_the_gms_api_sees_them() {
    let (app, session, id) = supervised("5550102").await;

    let steps = [
        [("key", "subject"), ("value", "refund"), ("op", "set")],
        [("key", "tier"), ("value", ""), ("op", "remove")],
        [("key", "lang"), ("value", "en"), ("op", "add")],
    ];
    for fields in steps {
        let response = post(&app, &session, &id, "user-data", &fields).await;
        assert_eq!(response.status(), 303, "{fields:?}");
        assert_eq!(
            location(&response),
            format!("/admin/callbacks/{id}?done=user-data")
        );
    }
    let seen = gms_view(&app, &id).await;
    assert_eq!(seen["subject"], "refund");
    assert_eq!(seen["lang"], "en");
    assert!(seen.get("tier").is_none(), "tier removed: {seen}");

    let refusals = [
        ([("key", "_x"), ("value", "1"), ("op", "add")], "`_x`"),
        ([("key", "_x"), ("value", "1"), ("op", "set")], "`_x`"),
        (
            [("key", "subject"), ("value", "again"), ("op", "add")],
            "already in the user data",
        ),
        (
            [("key", "subject"), ("value", ""), ("op", "set")],
            "field `value`",
        ),
        ([("key", "nope"), ("value", ""), ("op", "remove")], "`nope`"),
    ];
    for (fields, needle) in refusals {
        let response = post(&app, &session, &id, "user-data", &fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("class=\"field-error\""),
            "{fields:?} beside its field"
        );
        assert!(body.contains(needle), "{fields:?}: {needle}");
    }
    let body = {
        let response = post(
            &app,
            &session,
            &id,
            "user-data",
            &[("key", "_x"), ("value", "1"), ("op", "add")],
        )
        .await;
        response.text().await.unwrap()
    };
    assert!(
        body.contains("service options, not user data"),
        "says why `_` keys are refused"
    );
    let after = gms_view(&app, &id).await;
    assert_eq!(after, seen, "refusals change nothing");
}

#[tokio::test]
async fn recreate_gives_a_new_callback_with_the_same_number_and_user_data() {
    let (app, session, old) = supervised("5550103").await;
    let response = post(&app, &session, &old, "cancel", &[]).await;
    assert_eq!(response.status(), 303);

    let at = format!("{}.000Z", &in_days(2.0)[..19]);
    let response = post(
        &app,
        &session,
        &old,
        "recreate",
        &[("desired_time_utc", &at)],
    )
    .await;
    assert_eq!(response.status(), 303);
    let to = location(&response);
    let new = to
        .strip_prefix("/admin/callbacks/")
        .and_then(|rest| rest.split('?').next())
        .expect("a callback page")
        .to_string();
    assert_ne!(new, old);
    assert!(to.ends_with(&format!("?done=recreated&from={old}")), "{to}");

    let seen = gms_view(&app, &new).await;
    assert_eq!(seen["_customer_number"], "5550103");
    assert_eq!(seen["_service_name"], "chat-delay");
    assert_eq!(seen["subject"], "billing");
    assert_eq!(seen["tier"], "gold");
    assert_eq!(seen["_desired_time"], at.as_str());
    assert_eq!(seen["_callback_state"], "SCHEDULED");
    let body = page(&app, &session, &to).await;
    assert!(
        body.contains(&format!("created from callback {old}")),
        "the notice"
    );

    let past = in_days(-2.0);
    let response = post(
        &app,
        &session,
        &old,
        "recreate",
        &[("desired_time_utc", &past)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    let error = error_beside(&body, "recreate");
    assert!(error.contains("desired_time") && error.contains("in the past"));
}

#[tokio::test]
async fn the_transcript_marks_a_hidden_event_only_in_the_agents_view() {
    let app = spawn_app().await;
    let id = confirmed_chat_delay(&app).await;
    let (status, started) = chat(&app, &id, "", &[("firstName", "Ann")]).await;
    assert_eq!(status, 200, "{started}");
    eventually(Duration::from_secs(5), "kristi to join", || async {
        let view = agent_chat(&app, "kristi", &id).await;
        (view["agent"]["joined"] == true).then_some(())
    })
    .await;
    let (status, sent) = agent_post(
        &app,
        "kristi",
        &format!("chat/{id}/message"),
        json!({"text": "Hello Ann, kristi here"}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let session_id = started["chatSessionId"].as_str().unwrap();
    let response = app
        .admin(
            Method::POST,
            &format!("/genesys/1/admin/chat/{session_id}/esp/Message"),
        )
        .form(&[
            ("MessageText", "internal: refund approved"),
            ("Visibility", "INT"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (_, refreshed) = chat(&app, &id, "refresh", &[("transcriptPosition", "1")]).await;
    let customer_api = refreshed["transcriptToShow"].to_string();
    assert!(customer_api.contains("kristi here") && !customer_api.contains("refund approved"));

    let monitor = monitor(&app).await;
    let body = page(&app, &monitor, &format!("/admin/callbacks/{id}")).await;
    let customer = list_by_id(&body, "chat-customer");
    let agent = list_by_id(&body, "chat-agent");
    assert!(customer.contains("Hello Ann, kristi here"), "{customer}");
    assert!(!customer.contains("refund approved"), "{customer}");
    assert!(!customer.contains("hidden-event"), "{customer}");
    assert!(agent.contains("Hello Ann, kristi here"), "{agent}");
    let hidden = agent
        .split("<li")
        .find(|li| li.contains("refund approved"))
        .expect("the hidden event in the agent's view");
    assert!(
        hidden.contains("hidden-event") && hidden.contains("hidden from the customer"),
        "{hidden}"
    );
    let shown = agent
        .split("<li")
        .find(|li| li.contains("kristi here"))
        .unwrap();
    assert!(!shown.contains("hidden-event"), "{shown}");
}

#[tokio::test]
async fn a_monitor_sees_no_action_forms_and_is_refused_every_action() {
    let app = spawn_app().await;
    let id = scheduled(&app, "5550104").await;
    let monitor = monitor(&app).await;

    let body = page(&app, &monitor, &format!("/admin/callbacks/{id}")).await;
    assert!(body.contains("billing"), "user data is shown");
    for action in ["reschedule", "user-data", "recreate", "cancel"] {
        assert!(
            !body.contains(&format!("/admin/callbacks/{id}/{action}")),
            "no {action} form for a monitor"
        );
    }
    let before = gms_view(&app, &id).await;
    let attempts: [(&str, &[(&str, &str)]); 4] = [
        (
            "reschedule",
            &[("desired_time_utc", "2099-01-01T00:00:00Z")],
        ),
        (
            "user-data",
            &[("key", "subject"), ("value", "x"), ("op", "set")],
        ),
        ("recreate", &[]),
        ("cancel", &[]),
    ];
    for (action, fields) in attempts {
        let response = post(&app, &monitor, &id, action, fields).await;
        assert_eq!(response.status(), 403, "{action}");
        let text = response.text().await.unwrap();
        assert!(
            text.contains("Supervisor"),
            "{action}: names the role that may"
        );
    }
    assert_eq!(gms_view(&app, &id).await, before, "nothing changed");
}

#[tokio::test]
async fn a_form_without_this_sessions_csrf_token_is_refused() {
    let (app, session, id) = supervised("5550105").await;
    let before = gms_view(&app, &id).await;
    let utc = in_days(5.0);
    for csrf in [None, Some("not-the-token")] {
        let mut form = vec![("desired_time_utc", utc.as_str())];
        if let Some(token) = csrf {
            form.push(("csrf", token));
        }
        let response = app
            .as_user(
                &session,
                Method::POST,
                &format!("/admin/callbacks/{id}/reschedule"),
            )
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "csrf {csrf:?}");
    }
    assert_eq!(gms_view(&app, &id).await, before, "nothing changed");
}

#[tokio::test]
async fn an_unknown_id_is_404_before_any_field_is_read() {
    let app = spawn_app().await;
    let session = supervisor(&app).await;
    let attempts: [(&str, &[(&str, &str)]); 4] = [
        ("reschedule", &[("desired_time", "not a time")]),
        ("user-data", &[("key", "_x"), ("op", "bogus")]),
        ("recreate", &[("desired_time", "not a time")]),
        ("cancel", &[]),
    ];
    for (action, fields) in attempts {
        let response = post(&app, &session, "no-such-id", action, fields).await;
        assert_eq!(response.status(), 404, "{action}");
    }
    let response = app
        .as_user(&session, Method::GET, "/admin/callbacks/no-such-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
