//! Sign-in rules of the console: the form, the cookie, CSRF, idle expiry, the throttle, roles.

use callbackd::clock::ManualClock;
use reqwest::Method;

use crate::helpers::{spawn_app, spawn_app_with, spawn_app_with_clock, ADMIN_TOKEN};

const PASSWORD: &str = "correct horse";

#[tokio::test]
async fn the_sign_in_page_is_a_form_with_username_and_password() {
    let app = spawn_app().await;
    let response = app
        .pages()
        .get(format!("{}/admin/login", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = response.text().await.unwrap();
    for needle in [
        r#"name="username""#,
        r#"name="password""#,
        r#"<label for="username">"#,
        r#"<label for="password">"#,
    ] {
        assert!(page.contains(needle), "the form has {needle}");
    }
    assert!(
        page.contains("admin token"),
        "a fresh install says how to sign in first"
    );
}

#[tokio::test]
async fn pages_without_a_session_answer_303_to_the_sign_in_page() {
    let app = spawn_app().await;
    for path in ["/admin/", "/admin/users", "/admin/users?x=1"] {
        let response = app
            .pages()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{path}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with("/admin/login?next=%2Fadmin%2F"),
            "{path}: {location}"
        );
    }
}

#[tokio::test]
async fn a_good_sign_in_sets_an_http_only_strict_cookie_and_redirects_to_the_console() {
    let app = spawn_app().await;
    app.add_user("ada", "administrator", None, PASSWORD).await;
    let response = app
        .post_login("admin", &[("username", "ada"), ("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/admin/");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("callbackd_console="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "not Secure unless configured: {cookie}"
    );

    // Back to the page asked for, when it is one of the console's.
    let response = app
        .post_login(
            "admin",
            &[
                ("username", "ada"),
                ("password", PASSWORD),
                ("next", "/admin/users"),
            ],
        )
        .await;
    assert_eq!(response.headers()["location"], "/admin/users");
}

#[tokio::test]
async fn secure_cookies_adds_the_secure_flag() {
    let app = spawn_app_with(|c| c.http.secure_cookies = true).await;
    let response = app
        .post_login("admin", &[("username", "admin"), ("password", ADMIN_TOKEN)])
        .await;
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn the_admin_token_signs_in_as_an_administrator_only_until_one_exists() {
    let app = spawn_app().await;
    let session = app.sign_in("admin", "admin", ADMIN_TOKEN).await;
    let me: serde_json::Value = app
        .as_user(&session, Method::GET, "/admin/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "administrator");

    app.add_user("ada", "administrator", None, PASSWORD).await;
    let response = app
        .post_login("admin", &[("username", "admin"), ("password", ADMIN_TOKEN)])
        .await;
    assert_eq!(response.status(), 401, "the token no longer signs in");
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_name_get_the_same_answer() {
    let app = spawn_app().await;
    app.add_user("ada", "supervisor", None, PASSWORD).await;
    let mut bodies = Vec::new();
    for (name, password) in [("ada", "wrong password"), ("nobody", PASSWORD)] {
        let response = app
            .post_login("admin", &[("username", name), ("password", password)])
            .await;
        assert_eq!(response.status(), 401, "{name}");
        assert!(response.headers().get("set-cookie").is_none(), "{name}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("Incorrect username and/or password."),
            "{name}: {page}"
        );
        bodies.push(page.replace(name, ""));
    }
}

#[tokio::test]
async fn five_failed_sign_ins_within_a_minute_slow_that_name_down() {
    let clock = ManualClock::new(callbackd::domain::time::Timestamp::from_millis(
        1_800_000_000_000,
    ));
    let app = spawn_app_with_clock(clock.clone()).await;
    app.add_user("ada", "monitor", None, PASSWORD).await;
    app.add_user("bob", "monitor", None, PASSWORD).await;
    let app = &app;
    let attempt = |name: &'static str, password: &'static str| async move {
        app.post_login("admin", &[("username", name), ("password", password)])
            .await
    };
    for i in 0..5 {
        assert_eq!(
            attempt("ada", "wrong").await.status(),
            401,
            "failure {}",
            i + 1
        );
        clock.advance_secs(1);
    }
    let slowed = attempt("ada", PASSWORD).await;
    assert_eq!(slowed.status(), 429, "even the right password waits");
    let retry: u64 = slowed.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=60).contains(&retry), "retry after {retry} s");
    assert_eq!(
        attempt("bob", PASSWORD).await.status(),
        303,
        "another name is not slowed"
    );

    clock.advance_secs(retry);
    assert_eq!(
        attempt("ada", PASSWORD).await.status(),
        303,
        "a minute later it works"
    );
}

#[tokio::test]
async fn a_session_ends_after_twenty_minutes_idle_and_lives_while_used() {
    let clock = ManualClock::new(callbackd::domain::time::Timestamp::from_millis(
        1_800_000_000_000,
    ));
    let app = spawn_app_with_clock(clock.clone()).await;
    app.add_user("ada", "administrator", None, PASSWORD).await;
    let session = app.sign_in("admin", "ada", PASSWORD).await;
    let users_page = || app.as_user(&session, Method::GET, "/admin/users").send();

    clock.advance_secs(19 * 60);
    assert_eq!(users_page().await.unwrap().status(), 200, "19 minutes idle");
    clock.advance_secs(19 * 60);
    assert_eq!(
        users_page().await.unwrap().status(),
        200,
        "used again within 20 minutes"
    );
    clock.advance_secs(20 * 60);
    let response = users_page().await.unwrap();
    assert_eq!(response.status(), 303, "20 minutes idle");
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/admin/login"));
}

#[tokio::test]
async fn sign_out_ends_the_session_and_needs_the_csrf_token() {
    let app = spawn_app().await;
    app.add_user("ada", "monitor", None, PASSWORD).await;
    let session = app.sign_in("admin", "ada", PASSWORD).await;

    let forged = app
        .as_user(&session, Method::POST, "/admin/logout")
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no sign-out without the token");
    assert_eq!(
        app.as_user(&session, Method::GET, "/admin/session")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let response = app
        .as_user(&session, Method::POST, "/admin/logout")
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        app.as_user(&session, Method::GET, "/admin/session")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn a_change_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.add_user("ada", "administrator", None, PASSWORD).await;
    let session = app.sign_in("admin", "ada", PASSWORD).await;
    let fields = [
        ("username", "mallory"),
        ("role", "administrator"),
        ("password", PASSWORD),
    ];

    let forged = app
        .as_user(&session, Method::POST, "/admin/users")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("security token"));

    let mut with_token = fields.to_vec();
    with_token.push(("csrf", &session.csrf));
    let response = app
        .as_user(&session, Method::POST, "/admin/users")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let users: serde_json::Value = app
        .admin(Method::GET, "/genesys/1/admin/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ada", "mallory"],
        "one create, the one with the token"
    );
}

#[tokio::test]
async fn a_role_that_may_not_gets_a_403_page_naming_the_role_that_may() {
    let app = spawn_app().await;
    app.add_user("mona", "monitor", None, PASSWORD).await;
    app.add_user("sue", "supervisor", None, PASSWORD).await;
    for name in ["mona", "sue"] {
        let session = app.sign_in("admin", name, PASSWORD).await;
        let response = app
            .as_user(&session, Method::GET, "/admin/users")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{name}");
        let page = response.text().await.unwrap();
        assert!(page.contains("cannot manage users"), "{name}: {page}");
        assert!(
            page.contains("This needs an Administrator"),
            "{name}: {page}"
        );
    }
}

#[tokio::test]
async fn an_agent_account_signs_in_at_the_desktop_not_the_console() {
    let app = spawn_app().await;
    app.add_user("kristi", "agent", Some("kristi"), PASSWORD)
        .await;
    let response = app
        .post_login("admin", &[("username", "kristi"), ("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.text().await.unwrap().contains("/agent/login"));
}

#[tokio::test]
async fn the_bearer_token_api_is_unchanged_and_a_session_is_not_a_token() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::GET, "/genesys/1/admin/services")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "scripts keep their token");
    let session = app.sign_in("admin", "admin", ADMIN_TOKEN).await;
    let response = app
        .as_user(&session, Method::GET, "/genesys/1/admin/services")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the admin API takes the token only");
}
