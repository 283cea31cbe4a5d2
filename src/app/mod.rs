//! The use cases: what a request does, between parsing (in `http`) and storage (in `store`).
//!
//! Each public function here is one operation a client can ask for. They take the shared
//! [`AppState`], validate with the `domain` rules, write through the `store`, and wait for the
//! group commit before returning, so a returned `Ok` is durable.

pub mod accounts;
pub mod admin;
pub mod agents;
pub mod callbacks;
mod catalog;
pub mod chat;
pub mod chat_v2;
pub mod console;
pub mod desktop;
pub mod dialogs;
mod error;
pub mod history;
pub mod lifecycle;
pub(crate) mod limits;
pub mod metrics;
pub mod notifications;
pub mod overview;
pub mod presence;
pub mod queues;
pub mod records;
pub mod schedule;
pub mod sessions;
pub mod status_notifications;
pub mod storage;
pub mod subscriptions;
pub mod voice;

use std::sync::Arc;

pub use catalog::Catalog;
pub use error::AppError;

use crate::center::chat::ChatServer;
use crate::clock::Clock;
use crate::router::RouterHandle;
use crate::store::Store;

/// Everything a request handler can reach: one shared [`Shared`], so a clone (made per
/// request by every route's state filter) is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Shares `parts` with every handler.
    pub fn new(parts: Shared) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares; reached through it (`state.store`, `state.router`...).
pub struct Shared {
    /// The database. Owned by the store module; clones share one sled instance and one group
    /// committer, so every durable write waits on the same flushes.
    pub store: Store,
    /// Configured services, validated, kept in memory because every create reads one. Written
    /// only by the admin API, which updates the store first and then this cache.
    pub catalog: Catalog,
    /// The router task's handle: use cases tell it what changed (after their own write is
    /// durable) and ask it about queues; it owns the live routing state.
    pub router: RouterHandle,
    /// The embedded chat server: open chat sessions and their transcripts.
    pub chat: ChatServer,
    /// The time source (a `ManualClock` in tests), so no rule reads the wall clock itself.
    pub clock: Arc<dyn Clock>,
    /// Settings fixed at start-up that requests need.
    pub settings: Arc<RuntimeSettings>,
    /// Stores customer notifications and pushes them (CometD, HTTP callback) once durable.
    /// Shared with the router task, which notifies about routing changes.
    pub notifier: crate::push::Notifier,
    /// Held across an agent's read-change-write, so concurrent changes of agents do not lose
    /// one another (an async lock: it is held across the durable wait).
    pub agent_writes: Arc<tokio::sync::Mutex<()>>,
    /// The typed settings of stored services' options, parsed once per options (the router
    /// shares the same cache).
    pub typed_settings: Arc<crate::domain::settings_cache::SettingsCache>,
    /// The CometD server: its clients and their pending pushes. Owned by `cometd`; the push
    /// layer publishes through it, `http::cometd` feeds it requests.
    pub bayeux: crate::cometd::Bayeux,
    /// Signed-in console and desktop sessions, and recent failed sign-ins. In memory only:
    /// a restart signs everyone out.
    pub sessions: sessions::Sessions,
    /// The agent desktop's open tabs per agent, for logging out agents who left. In memory
    /// only, like the sessions; read and written by `http` (the event stream) and the
    /// presence sweep.
    pub presence: presence::Presence,
    /// The Prometheus registry of this server (not a global: a test process runs many
    /// servers). Requests are counted by `http`; the counters of the other modules are
    /// registered in it at start-up.
    pub metrics: crate::metrics::Metrics,
    /// When this server was built, from the injected clock: the Health page's uptime.
    pub started_at: crate::domain::time::Timestamp,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Start-up settings used while serving.
#[derive(Clone)]
pub struct RuntimeSettings {
    /// Names accepted as the StatServer part of a target.
    pub stat_servers: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: u64,
    /// The admin bearer token; `None` disables the admin API (every call is 403).
    pub admin_token: Option<String>,
    /// Used in URLs when a request has no Host header.
    pub fallback_host: String,
    /// Services may be created without a `gms_user` (`[security] allow_anonymous_services`).
    pub allow_anonymous_services: bool,
    /// `public_url`: the base of URLs in replies; `None` builds them from the `Host` header.
    pub public_url: Option<String>,
    /// Where httpcb URLs may point (`[httpcb] allow`); shared with the push worker, which
    /// checks the same rules again at connect.
    pub egress: Arc<crate::push::egress::EgressPolicy>,
    /// Mark session cookies `Secure` (`[http] secure_cookies`).
    pub secure_cookies: bool,
    /// `GET /metrics` needs no token (`[metrics] public`).
    pub metrics_public: bool,
    /// How often the desktop's event stream sends a `ping` while nothing changes
    /// (`[agents] keep_alive_ms`).
    pub desktop_keep_alive: std::time::Duration,
    /// Where Chat API v2 chats without a configured service go (`[inbound_chat]`).
    pub inbound_chat: crate::config::InboundChat,
}

impl std::fmt::Debug for RuntimeSettings {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeSettings")
            .field("stat_servers", &self.stat_servers)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("fallback_host", &self.fallback_host)
            .field("allow_anonymous_services", &self.allow_anonymous_services)
            .field("public_url", &self.public_url)
            .field("egress", &self.egress)
            .field("secure_cookies", &self.secure_cookies)
            .field("metrics_public", &self.metrics_public)
            .field("desktop_keep_alive", &self.desktop_keep_alive)
            .finish()
    }
}

/// Who is asking: the `gms_user` header of a customer-facing request.
pub type Requester<'a> = Option<&'a str>;
