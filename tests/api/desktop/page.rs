//! The desktop page `/agent/`: who may see it, and what its frame carries for its script.

use reqwest::Method;

use crate::helpers::spawn_app;

#[tokio::test]
async fn without_a_session_the_desktop_sends_the_browser_to_sign_in() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .pages()
        .get(format!("{}/agent/", app.address))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/agent/login?next="), "{location}");
}

#[tokio::test]
async fn an_agents_desktop_carries_its_agent_state_and_csrf_token() {
    // Arrange
    let app = spawn_app().await;
    app.add_user("kristi", "agent", Some("kristi"), "correct horse 1")
        .await;
    let session = app.sign_in("agent", "kristi", "correct horse 1").await;

    // Act
    let response = app
        .as_user(&session, Method::GET, "/agent/")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = response.text().await.unwrap();
    for needle in [
        "data-agent=\"kristi\"",
        "data-state=\"logged_out\"",
        &format!("data-csrf=\"{}\"", session.csrf),
        "/admin/static/desktop.js",
        "Kristi Sippola",
    ] {
        assert!(page.contains(needle), "the page lacks {needle}");
    }
    for file in ["desktop.js", "desktop.css"] {
        let status = app
            .pages()
            .get(format!("{}/admin/static/{file}", app.address))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{file}");
    }
}

#[tokio::test]
async fn an_account_whose_agent_is_gone_gets_the_403_page_and_its_session_ends() {
    // Arrange
    let app = spawn_app().await;
    app.add_user("kristi", "agent", Some("kristi"), "correct horse 1")
        .await;
    let session = app.sign_in("agent", "kristi", "correct horse 1").await;
    let deleted = app
        .admin(Method::DELETE, "/genesys/1/admin/agents/kristi")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    // Act
    let response = app
        .as_user(&session, Method::GET, "/agent/")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 403);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert!(response.text().await.unwrap().contains("no longer exists"));
    let again = app
        .as_user(&session, Method::GET, "/agent/")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303, "the session ended");
}
