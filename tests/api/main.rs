//! Black-box tests: every test starts the real server on 127.0.0.1:0 with a fresh data
//! directory and talks HTTP to it.

mod helpers;
mod install;

mod cluster;
mod durability;
mod storage;
mod storage_api;

mod abuse;
mod admin;
mod agents;
mod callbacks;
mod chat;
mod chat_v2;
mod cometd;
mod cometd_ack;
mod console;
mod desktop;
mod errors;
mod esp;
mod limits;
mod metrics;
mod node_client;
mod notification_api;
mod notifications;
mod push;
mod push_providers;
mod routing;
mod sample_app;
mod schedule;
mod status_notifications;
