//! The Configured services and Agents pages over HTTP: their forms (with the CSRF token),
//! each validation error beside its field, mandatory options, roles, and unknown names.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{json, set_state, spawn_app, wait_for_state, SignedIn, TestApp};

const PASSWORD: &str = "correct horse";

/// What a form post answered.
struct Answer {
    status: u16,
    location: String,
    body: String,
}

/// Posts `fields` and the session's CSRF token to `path`, not following the redirect.
async fn post(app: &TestApp, session: &SignedIn, path: &str, fields: &[(&str, &str)]) -> Answer {
    let mut form = fields.to_vec();
    form.push(("csrf", &session.csrf));
    let response = app
        .as_user(session, Method::POST, path)
        .form(&form)
        .send()
        .await
        .unwrap();
    Answer {
        status: response.status().as_u16(),
        location: response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: response.text().await.unwrap(),
    }
}

/// GETs a page: its status and HTML.
async fn page(app: &TestApp, session: &SignedIn, path: &str) -> (u16, String) {
    let response = app
        .as_user(session, Method::GET, path)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The HTML of the table row with `id`, up to its end.
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {id} in:\n{html}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").unwrap_or(rest.len())]
}

async fn signed_in(app: &TestApp, name: &str, role: &str) -> SignedIn {
    app.add_user(name, role, None, PASSWORD).await;
    app.sign_in("admin", name, PASSWORD).await
}

async fn api_service(app: &TestApp, name: &str) -> (u16, Value) {
    let response = app
        .admin(Method::GET, &format!("/genesys/1/admin/services/{name}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), json(response).await)
}

async fn api_agent(app: &TestApp, id: &str) -> Option<Value> {
    let response = app
        .admin(Method::GET, "/genesys/1/admin/agents")
        .send()
        .await
        .unwrap();
    json(response)
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
}

#[tokio::test]
async fn an_administrator_creates_edits_and_deletes_a_service_through_the_forms() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada", "administrator").await;

    let (status, list) = page(&app, &ada, "/admin/services").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("href=\"/admin/services/chat-delay\""),
        "{list}"
    );
    assert!(list.contains("href=\"/admin/services/new/Chat-Delayed\""));
    assert!(
        list.contains("billing_vq"),
        "key options are listed: {list}"
    );

    let (status, new) = page(&app, &ada, "/admin/services/new/Chat-Delayed").await;
    assert_eq!(status, 200);
    assert!(row(&new, "row-_wait_for_user_confirm").contains("value=\"true\""));
    assert!(row(&new, "row-_target").contains("Mandatory"));

    let created = post(
        &app,
        &ada,
        "/admin/services",
        &[
            ("name", "vip-chat"),
            ("preset", "Chat-Delayed"),
            ("option._type", "ors"),
            ("option._ttl", "86400"),
            ("option._urs_queued_ttl", "600"),
            ("option._target", "Billing@StatServer.GA"),
            ("new_option", "_urs_virtual_queue"),
            ("new_value", "vip_vq"),
        ],
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location, "/admin/services/vip-chat?saved");
    let (status, stored) = api_service(&app, "vip-chat").await;
    assert_eq!(status, 200);
    assert_eq!(stored["preset"], "Chat-Delayed");
    assert_eq!(
        stored["options"],
        serde_json::json!({
            "_target": "Billing@StatServer.GA",
            "_urs_queued_ttl": "600",
            "_urs_virtual_queue": "vip_vq",
        }),
        "only what differs from the preset is stored"
    );
    let (_, edit) = page(&app, &ada, &created.location).await;
    assert!(edit.contains("Service vip-chat saved."), "{edit}");
    let id = app
        .create("vip-chat", &[("_customer_number", "5550123")])
        .await;
    assert!(!id.is_empty(), "the new service takes callbacks");

    let edited = post(
        &app,
        &ada,
        "/admin/services/vip-chat",
        &[
            ("option._ttl", "3600"),
            ("option._target", "Support@StatServer.GA"),
            ("option._urs_queued_ttl", "600"),
            ("option._urs_virtual_queue", "vip_vq"),
            ("remove", "_urs_virtual_queue"),
            ("remove", "_urs_queued_ttl"),
        ],
    )
    .await;
    assert_eq!(edited.status, 303, "{}", edited.body);
    let (_, stored) = api_service(&app, "vip-chat").await;
    assert_eq!(
        stored["options"],
        serde_json::json!({"_target": "Support@StatServer.GA", "_ttl": "3600"})
    );
    assert_eq!(
        stored["effective_options"]["_urs_queued_ttl"], "3600",
        "a removed preset option is back at the preset's value"
    );

    let deleted = post(&app, &ada, "/admin/services/vip-chat/delete", &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.location, "/admin/services?deleted=vip-chat");
    assert_eq!(api_service(&app, "vip-chat").await.0, 404);
    let (_, list) = page(&app, &ada, &deleted.location).await;
    assert!(list.contains("Service vip-chat deleted."));
    assert!(!list.contains("href=\"/admin/services/vip-chat\""));
}

#[tokio::test]
async fn each_bad_option_is_shown_next_to_its_field_and_nothing_is_saved() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada", "administrator").await;

    let refused = post(
        &app,
        &ada,
        "/admin/services",
        &[
            ("name", "vip-chat"),
            ("preset", "Chat-Delayed"),
            ("option._ttl", "soon"),
            ("option._wait_for_agent", "maybe"),
            ("option._target", "Billing@Nowhere.GA"),
            ("option._urs_vq_priority", "7"),
        ],
    )
    .await;
    assert_eq!(refused.status, 400);
    let table = [
        ("row-_ttl", "`soon` is not valid"),
        (
            "row-_wait_for_agent",
            "`maybe` is not valid: write true or false",
        ),
        ("row-_target", "unknown Stat Server `Nowhere`"),
    ];
    for (id, message) in table {
        let row = row(&refused.body, id);
        assert!(
            row.contains("class=\"field-error\"") && row.contains(message),
            "{id} shows {message}: {row}"
        );
    }
    assert!(
        !row(&refused.body, "row-_urs_vq_priority").contains("field-error"),
        "a good option has no error"
    );
    assert!(
        row(&refused.body, "row-_urs_vq_priority").contains("value=\"7\""),
        "what was typed is kept"
    );
    assert_eq!(api_service(&app, "vip-chat").await.0, 404, "nothing saved");

    let table = [
        ("bad name", "is not a usable service name"),
        ("chat-delay", "exists already"),
    ];
    for (name, message) in table {
        let refused = post(
            &app,
            &ada,
            "/admin/services",
            &[
                ("name", name),
                ("preset", "Chat-Delayed"),
                ("option._target", "Billing@StatServer.GA"),
            ],
        )
        .await;
        assert_eq!(refused.status, 400, "{name}");
        let at = refused
            .body
            .find("id=\"service-name-error\"")
            .unwrap_or_else(|| panic!("{name}: no error next to the name: {}", refused.body));
        assert!(refused.body[at..].contains(message), "{name}: {message}");
    }
    let (_, stored) = api_service(&app, "chat-delay").await;
    assert!(
        stored["options"]["_target"]
            .as_str()
            .unwrap()
            .contains("Billing"),
        "an existing service is not replaced by a create"
    );
}

#[tokio::test]
async fn a_mandatory_option_is_marked_and_cannot_be_removed() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada", "administrator").await;

    let (status, edit) = page(&app, &ada, "/admin/services/chat-delay").await;
    assert_eq!(status, 200);
    for option in ["_type", "_media_type", "_wait_for_agent", "_ttl", "_target"] {
        let row = row(&edit, &format!("row-{option}"));
        assert!(row.contains("Mandatory"), "{option} is marked: {row}");
        assert!(
            !row.contains("name=\"remove\""),
            "{option} has no remove box"
        );
    }
    assert!(row(&edit, "row-_urs_virtual_queue").contains("name=\"remove\""));

    let (_, before) = api_service(&app, "chat-delay").await;
    let target = before["options"]["_target"].as_str().unwrap().to_string();
    let refused = post(
        &app,
        &ada,
        "/admin/services/chat-delay",
        &[
            ("option._target", &target),
            ("option._urs_virtual_queue", "billing_vq"),
            ("remove", "_target"),
        ],
    )
    .await;
    assert_eq!(refused.status, 400);
    assert!(
        row(&refused.body, "row-_target").contains("cannot be removed"),
        "{}",
        refused.body
    );
    let emptied = post(
        &app,
        &ada,
        "/admin/services/chat-delay",
        &[("option._target", &target), ("option._media_type", " ")],
    )
    .await;
    assert_eq!(emptied.status, 400);
    assert!(row(&emptied.body, "row-_media_type").contains("mandatory"));
    assert_eq!(api_service(&app, "chat-delay").await.1, before, "unchanged");
}

#[tokio::test]
async fn a_monitor_sees_both_pages_read_only_and_gets_403_on_changes() {
    let app = spawn_app().await;
    let mona = signed_in(&app, "mona", "monitor").await;

    let (status, list) = page(&app, &mona, "/admin/services").await;
    assert_eq!(status, 200);
    assert!(list.contains("chat-delay") && !list.contains("/admin/services/new/"));
    let (status, service) = page(&app, &mona, "/admin/services/chat-delay").await;
    assert_eq!(status, 200);
    assert!(service.contains("billing_vq"), "{service}");
    assert!(!service.contains("name=\"option.") && !service.contains("/delete"));
    let (status, agents) = page(&app, &mona, "/admin/agents").await;
    assert_eq!(status, 200);
    assert!(agents.contains("kristi"));
    assert!(!agents.contains("/state\"") && !agents.contains("Add an agent"));
    assert!(
        agents.contains("href=\"/admin/services\"") && agents.contains("href=\"/admin/agents\""),
        "both pages are in the navigation"
    );

    let (status, _) = page(&app, &mona, "/admin/services/new/Chat-Delayed").await;
    assert_eq!(status, 403);
    let changes = [
        (
            "/admin/services",
            "create, change or delete configured services",
        ),
        (
            "/admin/services/chat-delay",
            "create, change or delete configured services",
        ),
        (
            "/admin/services/chat-delay/delete",
            "create, change or delete configured services",
        ),
        ("/admin/agents", "create, change or delete agents"),
        ("/admin/agents/kristi", "create, change or delete agents"),
        (
            "/admin/agents/kristi/delete",
            "create, change or delete agents",
        ),
        ("/admin/agents/kristi/state", "cannot set an agent"),
    ];
    for (path, action) in changes {
        let answer = post(&app, &mona, path, &[("state", "ready"), ("name", "x")]).await;
        assert_eq!(answer.status, 403, "{path}");
        assert!(answer.body.contains(action), "{path}: {}", answer.body);
    }
    assert_eq!(
        api_agent(&app, "kristi").await.unwrap()["state"],
        "logged_out"
    );
    assert_eq!(api_service(&app, "chat-delay").await.0, 200);
}

#[tokio::test]
async fn a_supervisor_sets_an_agent_state_but_gets_403_creating_an_agent() {
    let app = spawn_app().await;
    let sue = signed_in(&app, "sue", "supervisor").await;

    let (_, agents) = page(&app, &sue, "/admin/agents").await;
    assert!(row(&agents, "agent-kristi").contains("action=\"/admin/agents/kristi/state\""));
    assert!(!agents.contains("Add an agent"));

    let set = post(
        &app,
        &sue,
        "/admin/agents/kristi/state",
        &[("state", "ready")],
    )
    .await;
    assert_eq!(set.status, 303, "{}", set.body);
    assert_eq!(api_agent(&app, "kristi").await.unwrap()["state"], "ready");
    let (_, agents) = page(&app, &sue, &set.location).await;
    let kristi = row(&agents, "agent-kristi");
    assert!(
        kristi.contains(">Ready</span>") && kristi.contains("value=\"ready\" selected"),
        "{kristi}"
    );

    let bad = post(
        &app,
        &sue,
        "/admin/agents/kristi/state",
        &[("state", "asleep")],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not an agent state"));

    let create = post(
        &app,
        &sue,
        "/admin/agents",
        &[("id", "zoe"), ("name", "Zoe")],
    )
    .await;
    assert_eq!(create.status, 403);
    assert!(create.body.contains("This needs an Administrator"));
    assert!(api_agent(&app, "zoe").await.is_none());
}

#[tokio::test]
async fn an_administrator_creates_edits_and_deletes_an_agent_with_errors_beside_fields() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada", "administrator").await;

    let table = [
        (
            "skills",
            "English:5",
            "chat=1",
            "agent-skills-error",
            "is not name=number",
        ),
        (
            "capacity",
            "English=5",
            "chat=500",
            "agent-capacity-error",
            "too many",
        ),
        (
            "id",
            "English=5",
            "chat=1",
            "agent-id-error",
            "exists already",
        ),
    ];
    for (what, skills, capacity, error_id, message) in table {
        let id = if what == "id" { "kristi" } else { "zoe" };
        let refused = post(
            &app,
            &ada,
            "/admin/agents",
            &[
                ("id", id),
                ("name", "Zoe"),
                ("skills", skills),
                ("capacity", capacity),
            ],
        )
        .await;
        assert_eq!(refused.status, 400, "{what}");
        let at = refused
            .body
            .find(&format!("id=\"{error_id}\""))
            .unwrap_or_else(|| panic!("{what}: no error beside the field: {}", refused.body));
        assert!(refused.body[at..].contains(message), "{what}: {message}");
        assert!(
            refused.body.contains(&format!("value=\"{skills}\"")),
            "typed values kept"
        );
    }
    assert!(api_agent(&app, "zoe").await.is_none());

    let created = post(
        &app,
        &ada,
        "/admin/agents",
        &[
            ("id", "zoe"),
            ("name", "Zoe Adams"),
            ("groups", "Billing, Support"),
            ("place", "place_301"),
            ("place_groups", "Floor3"),
            ("skills", "English=5, French=9"),
            ("capacity", "chat=1, voice=1"),
            ("auto_answer", "true"),
        ],
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location, "/admin/agents?added=zoe");
    let zoe = api_agent(&app, "zoe").await.unwrap();
    assert_eq!(zoe["groups"], serde_json::json!(["Billing", "Support"]));
    assert_eq!(zoe["place"], "place_301");
    assert_eq!(
        zoe["skills"],
        serde_json::json!({"English": 5, "French": 9})
    );
    assert_eq!(zoe["capacity"], serde_json::json!({"chat": 1, "voice": 1}));
    assert_eq!(zoe["auto_answer"], true);
    assert_eq!(zoe["state"], "logged_out");

    let (status, edit) = page(&app, &ada, "/admin/agents/zoe").await;
    assert_eq!(status, 200);
    assert!(edit.contains("value=\"English=5, French=9\""), "{edit}");
    let edited = post(
        &app,
        &ada,
        "/admin/agents/zoe",
        &[
            ("name", "Zoe A."),
            ("groups", "Support"),
            ("capacity", "chat=3"),
        ],
    )
    .await;
    assert_eq!(edited.status, 303, "{}", edited.body);
    let zoe = api_agent(&app, "zoe").await.unwrap();
    assert_eq!(zoe["name"], "Zoe A.");
    assert_eq!(zoe["groups"], serde_json::json!(["Support"]));
    assert_eq!(zoe["capacity"], serde_json::json!({"chat": 3}));
    assert_eq!(zoe["auto_answer"], false, "an unticked box is false");
    let refused = post(&app, &ada, "/admin/agents/zoe", &[("name", " ")]).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("id=\"agent-name-error\""));

    let deleted = post(&app, &ada, "/admin/agents/zoe/delete", &[]).await;
    assert_eq!(deleted.status, 303);
    assert!(api_agent(&app, "zoe").await.is_none());
    let (_, list) = page(&app, &ada, &deleted.location).await;
    assert!(list.contains("Agent zoe deleted.") && !list.contains("id=\"agent-zoe\""));
}

#[tokio::test]
async fn the_agents_page_shows_each_agents_live_reservation() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada", "administrator").await;
    set_state(&app, "kristi", "ready").await;
    let id = app
        .create("chat-delay", &[("_customer_number", "5550199")])
        .await;
    wait_for_state(&app, &id, "ROUTING").await;

    let (_, agents) = page(&app, &ada, "/admin/agents").await;
    let kristi = row(&agents, "agent-kristi");
    assert!(
        kristi.contains(&format!("href=\"/admin/callbacks/{id}\"")),
        "the reservation is in kristi's row: {kristi}"
    );
    assert!(!row(&agents, "agent-marco").contains(&id));
}

#[tokio::test]
async fn unknown_services_and_agents_are_404_before_their_fields_are_read() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada", "administrator").await;

    for path in [
        "/admin/services/nope",
        "/admin/services/new/Chat-Sometime",
        "/admin/agents/nope",
    ] {
        assert_eq!(page(&app, &ada, path).await.0, 404, "{path}");
    }
    let bad_fields = [("option._ttl", "soon"), ("name", " "), ("state", "asleep")];
    for path in [
        "/admin/services/nope",
        "/admin/services/nope/delete",
        "/admin/agents/nope",
        "/admin/agents/nope/delete",
        "/admin/agents/nope/state",
    ] {
        let answer = post(&app, &ada, path, &bad_fields).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    assert_eq!(
        api_service(&app, "nope").await.0,
        404,
        "nothing was created"
    );
}

#[tokio::test]
async fn a_form_without_the_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    let ada = signed_in(&app, "ada", "administrator").await;
    for path in [
        "/admin/agents/kristi/state",
        "/admin/services/chat-delay/delete",
    ] {
        let response = app
            .as_user(&ada, Method::POST, path)
            .form(&[("state", "ready")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert!(response.text().await.unwrap().contains("security token"));
    }
    assert_eq!(
        api_agent(&app, "kristi").await.unwrap()["state"],
        "logged_out"
    );
    assert_eq!(api_service(&app, "chat-delay").await.0, 200);
}
