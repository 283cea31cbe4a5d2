//! The Service Management console (`/admin/...`): its sign-in rules over HTTP, and its pages
//! in a real browser.

mod browser;
mod callbacks;
mod config;
mod detail;
mod overview;
mod signin;
mod users;
