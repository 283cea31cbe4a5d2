//! The console in headless Chromium (tests/node/console_*.mjs, driven by playwright-core):
//! each script fails on any console error in a page and saves screenshots under
//! target/screenshots.

use crate::helpers::{require_chromium, run_node, ServerProcess, ADMIN_TOKEN};

#[test]
fn an_administrator_signs_in_adds_a_supervisor_who_is_refused_the_users_page() {
    require_chromium();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let output = run_node("console_users.mjs", &[&server.address, ADMIN_TOKEN]);
    assert!(
        output.contains("ok   the administrator signed out"),
        "{output}"
    );
}

#[test]
fn the_callbacks_pages_find_open_cancel_bulk_cancel_and_export() {
    require_chromium();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let output = run_node("console_callbacks.mjs", &[&server.address, ADMIN_TOKEN]);
    assert!(
        output.contains("ok   the report and the CSV of the cancelled callbacks were downloaded"),
        "{output}"
    );
}

#[test]
fn one_callbacks_page_reschedules_in_the_browsers_zone_edits_user_data_recreates_and_lists_status_notifications(
) {
    require_chromium();
    let dir = tempfile::tempdir().unwrap();
    // The script's status-notification receiver listens on loopback, which http callbacks
    // may reach only when allowed; retries after 10 ms keep its waits short.
    let config = dir.path().join("callbackd.toml");
    std::fs::write(
        &config,
        "[httpcb]\nallow = [\"127.0.0.0/8\"]\nbackoff_ms = 10\n",
    )
    .unwrap();
    let server = ServerProcess::start(
        &dir.path().join("data"),
        &[("CALLBACKD_CONFIG", config.to_str().unwrap())],
    );
    let output = run_node("console_detail.mjs", &[&server.address, ADMIN_TOKEN]);
    assert!(
        output.contains("ok   the callback was recreated with the same number and user data"),
        "{output}"
    );
    assert!(
        output.contains("ok   the callback's page lists its status notifications"),
        "{output}"
    );
}

#[test]
fn the_services_and_agents_pages_create_show_errors_set_state_and_delete() {
    require_chromium();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let output = run_node("console_config.mjs", &[&server.address, ADMIN_TOKEN]);
    assert!(
        output.contains("ok   the agent and the service were deleted"),
        "{output}"
    );
}
