//! Pure types and rules: no I/O, no clock, no storage.
//!
//! - [`account`]: console and desktop users: names, roles and what each role may do.
//! - [`agent`]: the embedded contact center's agents: configuration, states, capacity, target
//!   membership.
//! - [`time`]: timestamps and their ISO 8601 wire form.
//! - [`skill`] and [`target`]: the `_target` option (URS targets, skill expressions, lists).
//! - [`options`]: presets, configured services, option validation, create requests.
//! - [`schedule`]: office hours, capacity and the limits on a callback's desired time.
//! - [`throttle`]: GMS's throttles of callback creation (per interval, per parameter a day).
//! - [`phone`]: the checks of a callback's customer number (`_disallow_*_phone_numbers`).
//! - [`service`]: the service record, its states, cancel and reschedule.
//! - [`lifecycle`]: every other transition of a service, and the effects each implies.
//! - [`notification`]: customer-bound notifications.
//! - [`chat`]: the chat transcript and its wire rows; [`chat::session`], the rules of one chat
//!   session (ESP requests, idle control, closing), applied to a request and the time.
//! - [`chat_limits`]: per-session chat limits (message size, rate, transcript length).
//! - [`kv`]: the Chat Server key-value collection format (`EventAttributes`).
//! - [`esp`]: ESP requests to a chat session, parsed and validated.
//! - [`idle`]: chat inactivity control with an injected time.
//! - [`voice`]: voice callbacks dialed by the agent: outcomes, redials and their limit.
//! - [`dialog`]: the dialogs a customer's app is answered with (StartChat, ConfirmationDialog,
//!   DialNumber, DisplayMenu), by scenario: chat, user-terminated or user-originated voice.
//! - [`storage`]: the GMS Storage API's areas, their TTL and limits.
//! - [`subscription`]: the GMS Notification API's subscriptions and tag filters.
//! - [`status`]: callback status notifications: their options, events and outbox entries;
//!   [`status_events`], the events one change of a service reports.

pub mod account;
pub mod agent;
pub mod chat;
pub mod chat_limits;
pub mod dialog;
pub mod esp;
pub mod idle;
pub mod kv;
pub mod lifecycle;
pub mod notification;
pub mod option_error;
pub mod options;
pub mod phone;
pub mod schedule;
pub mod service;
pub mod settings_cache;
pub mod skill;
pub mod status;
pub mod status_events;
pub mod storage;
pub mod subscription;
pub mod target;
pub mod throttle;
pub mod time;
pub mod voice;
