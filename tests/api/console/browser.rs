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
fn one_callbacks_page_reschedules_in_the_browsers_zone_edits_user_data_and_recreates() {
    require_chromium();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let output = run_node("console_detail.mjs", &[&server.address, ADMIN_TOKEN]);
    assert!(
        output.contains("ok   the callback was recreated with the same number and user data"),
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
