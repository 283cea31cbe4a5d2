//! Users: the users API and `callbackd user ...`, with the server stopped and while it runs
//! (sled lets one process open the database, so the command then goes through the server).

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::Method;

use crate::helpers::{json, spawn_app, ServerProcess, ADMIN_TOKEN};

const PASSWORD: &str = "correct horse";

#[tokio::test]
async fn the_users_api_adds_lists_and_removes_users_and_names_bad_fields() {
    let app = spawn_app().await;
    app.add_user("ada", "Administrator", None, PASSWORD).await;
    app.add_user("kristi", "agent", Some("kristi"), PASSWORD)
        .await;

    let table = [
        (
            serde_json::json!({"username": "ada", "role": "monitor", "password": PASSWORD}),
            "username",
        ),
        (
            serde_json::json!({"username": "x y", "role": "monitor", "password": PASSWORD}),
            "username",
        ),
        (
            serde_json::json!({"username": "eve", "role": "root", "password": PASSWORD}),
            "role",
        ),
        (
            serde_json::json!({"username": "eve", "role": "monitor", "password": "short"}),
            "password",
        ),
        (
            serde_json::json!({"username": "eve", "role": "agent", "password": PASSWORD}),
            "agent",
        ),
        (
            serde_json::json!({"username": "eve", "role": "agent", "agent": "nobody", "password": PASSWORD}),
            "agent",
        ),
        (
            serde_json::json!({"username": "eve", "role": "monitor", "agent": "kristi", "password": PASSWORD}),
            "agent",
        ),
    ];
    for (body, field) in table {
        let response = app
            .admin(Method::POST, "/genesys/1/admin/users")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let message = json(response).await["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(field), "{body}: {message} names {field}");
    }

    let users = json(
        app.admin(Method::GET, "/genesys/1/admin/users")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        users,
        serde_json::json!({"users": [
            {"username": "ada", "role": "administrator", "created": users["users"][0]["created"]},
            {"username": "kristi", "role": "agent", "agent": "kristi", "created": users["users"][1]["created"]},
        ]}),
        "no hash is ever shown"
    );

    let response = app
        .admin(Method::DELETE, "/genesys/1/admin/users/kristi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .admin(Method::DELETE, "/genesys/1/admin/users/kristi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .request(Method::GET, "/genesys/1/admin/users")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the token or a session is needed");
}

#[tokio::test]
async fn a_password_change_ends_the_users_sessions() {
    let app = spawn_app().await;
    app.add_user("ada", "administrator", None, PASSWORD).await;
    let session = app.sign_in("admin", "ada", PASSWORD).await;
    let response = app
        .admin(Method::POST, "/genesys/1/admin/users/ada/password")
        .json(&serde_json::json!({"password": "another one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.as_user(&session, Method::GET, "/admin/users")
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    app.sign_in("admin", "ada", "another one").await;
}

/// Runs `callbackd <args>` on `data_dir` with `stdin` as its input.
fn callbackd(
    data_dir: &std::path::Path,
    listen: &str,
    args: &[&str],
    stdin: &str,
) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callbackd"))
        .args(["--listen", listen, "--data-dir"])
        .arg(data_dir)
        .args(args)
        .envs(crate::helpers::store_env(data_dir))
        .env("CALLBACKD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("callbackd runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_commands_work_with_the_server_stopped_and_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Stopped: the command opens the database itself.
    let (ok, out) = callbackd(
        dir.path(),
        "127.0.0.1:0",
        &[
            "user",
            "add",
            "ada",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        "first password\n",
    );
    assert!(ok, "{out}");
    assert!(out.contains("added ada (administrator)"), "{out}");

    // Running: the database is locked, so the command asks the server.
    let mut server = ServerProcess::start(dir.path(), &[]);
    let listen = server.address.trim_start_matches("http://").to_string();
    let (ok, out) = callbackd(
        dir.path(),
        &listen,
        &[
            "user",
            "add",
            "kristi",
            "--role",
            "agent",
            "--agent",
            "kristi",
            "--password-stdin",
        ],
        "second password\n",
    );
    assert!(ok, "{out}");
    let (ok, out) = callbackd(
        dir.path(),
        &listen,
        &["user", "passwd", "ada", "--password-stdin"],
        "third password\n",
    );
    assert!(ok, "{out}");
    let (ok, out) = callbackd(dir.path(), &listen, &["user", "list"], "");
    assert!(ok, "{out}");
    assert!(
        out.contains("ada\tadministrator") && out.contains("kristi\tagent\tagent kristi"),
        "{out}"
    );
    let (ok, out) = callbackd(dir.path(), &listen, &["user", "remove", "nobody"], "");
    assert!(!ok && out.contains("no user is named `nobody`"), "{out}");

    // The running server signs in with what the commands set.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/admin/login", server.address))
        .form(&[("username", "ada"), ("password", "third password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    server.wait_for_log("signed in", std::time::Duration::from_secs(5));
}
