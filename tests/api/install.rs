//! The binary as it is installed: started from an empty directory (a systemd unit's
//! `WorkingDirectory=/`), with nothing of the checkout around it.

use std::process::Command;

use crate::helpers::{json, ServerProcess, ADMIN_TOKEN};

/// The configured services' names listed by the admin API of `server`.
async fn service_names(server: &ServerProcess) -> Vec<String> {
    let response = reqwest::Client::new()
        .get(format!("{}/genesys/1/admin/services", server.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    let mut names: Vec<String> = body
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|service| service["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn started_from_an_empty_directory_it_serves_the_built_in_demo() {
    let empty = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_installed(empty.path(), &["--data-dir", "db-here", "serve"]);
    assert_eq!(
        service_names(&server).await,
        [
            "chat-delay",
            "chat-immediate",
            "request-chat",
            "request-chat-poll"
        ]
    );
    let agents = reqwest::Client::new()
        .get(format!("{}/genesys/1/admin/agents", server.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let agents = json(agents).await;
    assert!(
        !agents.as_array().unwrap().is_empty(),
        "the demo agents: {agents}"
    );
    // On PostgreSQL the data directory holds only the admin token, when one is generated.
    let kept_there = if crate::helpers::on_postgres() {
        "db-here"
    } else {
        "db-here/db"
    };
    assert!(
        empty.path().join(kept_there).is_dir(),
        "the relative data directory is under the working directory"
    );
}

#[tokio::test]
async fn no_demo_starts_with_nothing_configured() {
    let empty = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_installed(empty.path(), &["--data-dir", "d", "--no-demo"]);
    assert!(service_names(&server).await.is_empty());
}

#[tokio::test]
async fn a_services_file_in_data_overrides_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/services.toml"),
        "[only-this]\npreset = \"Chat-Immediate\"\n[only-this.options]\n_target = \"Support@StatServer.GA\"\n",
    )
    .unwrap();
    let server = ServerProcess::start_installed(dir.path(), &["serve"]);
    assert_eq!(service_names(&server).await, ["only-this"]);
}

#[test]
fn version_names_the_schema_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_callbackd"))
        .arg("--version")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let expected = format!(
        "callbackd {} (database schema {}, PostgreSQL schema {})",
        env!("CARGO_PKG_VERSION"),
        callbackd::store::migrate::latest_version(),
        callbackd::store::postgres::latest_version()
    );
    assert_eq!(text.trim(), expected);
}
