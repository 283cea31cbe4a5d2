//! Typed configuration: built-in defaults, then the TOML file, then `CALLBACKD_*` environment
//! variables, then command-line flags (each later source wins).
//!
//! This module only reads and validates settings; it opens no files other than the config file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::chat_limits::ChatLimits;
use crate::domain::idle::{IdleChanges, IdleSettings};
use crate::push::{fcm, FcmCredentials, FcmSettings, HttpCallbackSettings};
use crate::store::StoreSettings;

/// Everything callbackd needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the HTTP listener (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Directory holding the database (`db/`) and the generated admin token.
    pub data_dir: PathBuf,
    /// The configured services loaded into an empty database.
    pub services_file: SeedFile,
    /// The agents loaded into an empty database.
    pub agents_file: SeedFile,
    /// Bearer token for the admin and agent APIs. `None`: use or generate
    /// `<data_dir>/admin_token`. `Some("")`: admin API disabled (every call is 403).
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: u64,
    /// Six-field cron expression (with seconds) for the expiry job.
    pub expiry_schedule: String,
    /// Names accepted as the `<StatServer>` part of a routing target.
    pub stat_servers: Vec<String>,
    /// How `_device_os=httpcb` notifications are POSTed and where they may go (`[httpcb]`
    /// in the file; the older flat keys `httpcb_timeout_ms`, `httpcb_attempts`,
    /// `httpcb_backoff_ms` are still read).
    pub httpcb: HttpCallbackSettings,
    /// Push services callbackd delivers through (`[push.fcm]` in the file). `None`: `fcm`
    /// and `gcm` services are not pushed; their notifications wait for polling.
    pub fcm: Option<FcmSettings>,
    /// The CometD server's pacing and limits (`[cometd]` in the file).
    pub cometd: CometdConfig,
    /// Connection limits and timeouts of the HTTP listener (`[http]` in the file).
    pub http: HttpConfig,
    /// Console and desktop sign-in sessions (`[sessions]`).
    pub sessions: SessionConfig,
    /// What the agent desktop's presence does to agents (`[agents]`).
    pub agents: AgentsConfig,
    /// Chat inactivity control for new sessions (`[idle_control]` in the file, with Chat
    /// Server's parameter names: `enabled`, `timeout-alert`, `message-close`, ...).
    pub idle_control: IdleSettings,
    /// Who may create and reach services (`[security]` in the file).
    pub security: SecurityConfig,
    /// The address clients reach callbackd at (`public_url`, e.g. `https://gms.example.com`),
    /// used to build the URLs in dialogs (`_start_chat_url`, `_comet_url`). `None`: built
    /// from the request's `Host` header, which a client can set to anything.
    pub public_url: Option<String>,
    /// Per-session chat limits (`[chat]` in the file): `max_message_bytes`,
    /// `max_messages_per_second`, `max_transcript_events`; 0 turns one off.
    pub chat: ChatLimits,
    /// Where a Chat API v2 chat goes whose `chatServiceName` is no configured service
    /// (`[inbound_chat]` in the file).
    pub inbound_chat: InboundChat,
    /// How far an acknowledged write goes and the free-space floor (`[store]` in the file:
    /// `sync = "device"` or `"os"`, `min_free_bytes`, `cache_bytes`).
    pub store: StoreSettings,
    /// Who may read `GET /metrics` (`[metrics]` in the file).
    pub metrics: MetricsConfig,
}

/// `[metrics]`: access to `GET /metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` without the admin bearer token (for a scraper on a trusted network).
    /// Off by default: the metrics name services and queues.
    pub public: bool,
}

/// Where the configured services or the agents loaded into an empty database come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedFile {
    /// The file at this path relative to the working directory (`data/services.toml`) when
    /// it exists, else the demo built into the binary: an installed binary started from `/`
    /// serves the demo contact center, a checkout serves its own `data/`.
    Demo(PathBuf),
    /// This file, which must exist (named by the config file, the environment or a flag).
    File(PathBuf),
    /// Nothing: no configured services, no agents (`--no-demo`).
    Empty,
}

impl SeedFile {
    /// The TOML text to load and where it came from (for logs and errors); `None` for
    /// [`SeedFile::Empty`].
    ///
    /// # Errors
    /// A [`SeedFile::File`] that cannot be read, or a demo override that exists but cannot be
    /// read.
    pub fn read(&self, builtin: &'static str) -> Result<Option<(String, String)>, SeedError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| SeedError {
                path: path.to_path_buf(),
                source,
            })
        };
        match self {
            SeedFile::Empty => Ok(None),
            SeedFile::File(path) => Ok(Some((read(path)?, path.display().to_string()))),
            SeedFile::Demo(path) if path.exists() => {
                Ok(Some((read(path)?, path.display().to_string())))
            }
            SeedFile::Demo(_) => Ok(Some((builtin.to_string(), "the built-in demo".into()))),
        }
    }

    /// Where it comes from, for messages.
    pub fn describe(&self) -> String {
        match self {
            SeedFile::Demo(path) => format!("{} or the built-in demo", path.display()),
            SeedFile::File(path) => path.display().to_string(),
            SeedFile::Empty => "nothing (--no-demo)".into(),
        }
    }
}

/// A seed file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct SeedError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// `[security]`: the GMS behaviours that trade safety for compatibility, all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Accept services created without a `gms_user` header (GMS does). Such a service is
    /// reachable by anyone who holds its id, and is never listed by a query.
    pub allow_anonymous_services: bool,
}

/// `[cometd]`: how long connects are held, when silent clients are dropped, and how many
/// clients may exist.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CometdConfig {
    /// How long a `/meta/connect` is held when nothing is pending (advice `timeout`).
    pub timeout_ms: u64,
    /// A client that does not connect again within this long after a connect reply is dropped.
    pub max_interval_ms: u64,
    /// At most this many clients per `gms_user`; a further handshake is refused until one of
    /// them disconnects or expires (a page reloaded a few times stays well under it).
    pub max_clients_per_user: usize,
    /// At most this many clients in all, so that handshakes under made-up `gms_user`s cannot
    /// grow the client table without bound.
    pub max_clients: usize,
}

impl Default for CometdConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 60_000,
            max_interval_ms: 30_000,
            max_clients_per_user: 16,
            max_clients: 100_000,
        }
    }
}

/// The most clients one `gms_user` may be allowed: a removal scans the user's list, so it
/// must stay short.
pub const MAX_CLIENTS_PER_USER_CEILING: usize = 1024;

/// `[http]`: what one TCP connection may cost the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A request's headers must arrive within this long of its first byte, and a new
    /// connection's first request within this long of the accept; otherwise it is closed.
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection with no request in flight is closed after this long. A held
    /// CometD `/meta/connect` is a request in flight, so it is not idle.
    pub idle_timeout_ms: u64,
    /// At most this many connections at once; further ones wait in the listen backlog until
    /// one closes. Absent: the open-file limit minus room for the database and logs.
    pub max_connections: Option<usize>,
    /// Mark the console's and the desktop's session cookies `Secure` (set it when callbackd is
    /// reached over HTTPS, through a TLS proxy: browsers then never send the cookie in clear).
    pub secure_cookies: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: None,
            secure_cookies: false,
        }
    }
}

/// `[sessions]`: signed-in users of the console and the agent desktop.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session with no request for this long ends (GMS's Callback UI: 20 minutes).
    pub idle_timeout_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 20 * 60,
        }
    }
}

/// `[agents]`: agents of the embedded contact center as the desktop sees them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// An agent whose last desktop tab closed is logged out when no tab reconnects within
    /// this many seconds (0: at the next sweep).
    pub logout_after_disconnect_secs: u64,
    /// How often the desktop's event stream sends a `ping` event while nothing changes; the
    /// page reconnects after 2.5 times this without hearing anything (a silent connection).
    /// Also `CALLBACKD_AGENTS_KEEP_ALIVE_MS`; tests shorten it.
    pub keep_alive_ms: u64,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        Self {
            logout_after_disconnect_secs: 120,
            keep_alive_ms: 10_000,
        }
    }
}

/// `[httpcb]` as written in the file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpcbFile {
    /// Networks (`10.0.0.0/8`, `::1`) and URL prefixes (`http://127.0.0.1:8081/hooks/`)
    /// that httpcb may reach although they are internal.
    allow: Option<Vec<String>>,
    /// Limit of one POST, connecting included.
    timeout_ms: Option<u64>,
    /// POSTs tried per notification.
    attempts: Option<u32>,
    /// Wait before the first retry, doubled before each further one.
    backoff_ms: Option<u64>,
    /// POSTs in flight at once to one destination (scheme, host and port).
    destination_concurrency: Option<usize>,
    /// Jobs waiting for one destination.
    destination_queue: Option<usize>,
    /// Failed POSTs in a row that open a destination's circuit breaker.
    breaker_failures: Option<u32>,
    /// How long an open breaker drops a destination's jobs.
    breaker_open_ms: Option<u64>,
}

/// `[push]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushFile {
    fcm: Option<FcmFile>,
}

/// `[push.fcm]` as written in the file: FCM's HTTP v1 API.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FcmFile {
    /// Scheme, host and port of the API; FCM's own by default.
    endpoint: Option<String>,
    /// The Firebase project id.
    project_id: Option<String>,
    /// An OAuth2 access token.
    access_token: Option<String>,
    /// A file holding the access token, re-read so that it can be rotated.
    access_token_file: Option<PathBuf>,
}

impl std::fmt::Debug for FcmFile {
    // Never print the token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmFile")
            .field("endpoint", &self.endpoint)
            .field("project_id", &self.project_id)
            .field("access_token", &self.access_token.as_ref().map(|_| "<set>"))
            .field("access_token_file", &self.access_token_file)
            .finish()
    }
}

/// Default listen address, as GMS clients expect it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("DEFAULT_LISTEN is a valid address"),
            data_dir: PathBuf::from("data"),
            services_file: SeedFile::Demo(PathBuf::from("data/services.toml")),
            agents_file: SeedFile::Demo(PathBuf::from("data/agents.toml")),
            admin_token: None,
            max_body_bytes: 64 * 1024,
            expiry_schedule: "*/5 * * * * *".to_string(),
            stat_servers: vec!["StatServer".to_string()],
            httpcb: HttpCallbackSettings::default(),
            fcm: None,
            cometd: CometdConfig::default(),
            http: HttpConfig::default(),
            sessions: SessionConfig::default(),
            agents: AgentsConfig::default(),
            idle_control: IdleSettings::default(),
            security: SecurityConfig::default(),
            public_url: None,
            chat: ChatLimits::default(),
            inbound_chat: InboundChat::default(),
            metrics: MetricsConfig::default(),
            store: StoreSettings::default(),
        }
    }
}

/// A problem with the configuration, naming the setting and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// TOML's own message (it names the key and line).
        message: String,
    },
    /// One setting has a bad value.
    #[error("setting `{setting}` (from {source_name}): {message}")]
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// Where the value came from (file, environment variable, flag).
        source_name: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The `[inbound_chat]` settings: a Chat API v2 chat whose `chatServiceName` names no
/// configured service is a chat without a GMS service; it is routed to this agent group
/// (seeds 000/001 name the fallback `inbound_chat`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundChat {
    /// `app_selected_agent_group`: the agent group (a `GA` target on the first StatServer)
    /// that takes such chats; empty turns the fallback off (unknown names are refused).
    pub app_selected_agent_group: String,
    /// `app_find_agent_timeout`: seconds such a chat waits for an agent before it is closed
    /// (its `_urs_queued_ttl`).
    #[serde(rename = "app_find_agent_timeout")]
    pub find_agent_timeout_secs: u64,
}

impl Default for InboundChat {
    fn default() -> Self {
        InboundChat {
            app_selected_agent_group: "Support".to_string(),
            find_agent_timeout_secs: 600,
        }
    }
}

/// The config file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    services_file: Option<PathBuf>,
    agents_file: Option<PathBuf>,
    admin_token: Option<String>,
    max_body_bytes: Option<u64>,
    expiry_schedule: Option<String>,
    stat_servers: Option<Vec<String>>,
    idle_control: Option<BTreeMap<String, toml::Value>>,
    httpcb_timeout_ms: Option<u64>,
    httpcb_attempts: Option<u32>,
    httpcb_backoff_ms: Option<u64>,
    httpcb: Option<HttpcbFile>,
    push: Option<PushFile>,
    cometd: Option<CometdConfig>,
    security: Option<SecurityConfig>,
    public_url: Option<String>,
    chat: Option<ChatLimits>,
    inbound_chat: Option<InboundChat>,
    http: Option<HttpConfig>,
    sessions: Option<SessionConfig>,
    agents: Option<AgentsConfig>,
    metrics: Option<MetricsConfig>,
    store: Option<StoreSettings>,
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--services-file`.
    pub services_file: Option<PathBuf>,
    /// `--agents-file`.
    pub agents_file: Option<PathBuf>,
    /// `--no-demo`: no configured services and no agents in a new database.
    pub no_demo: bool,
}

impl Config {
    /// Loads the configuration.
    ///
    /// `file` is read if given; when `file_required` is false a missing file is not an error
    /// (the default path need not exist). `env` is the process environment (injected for tests).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the bad setting and its source.
    pub fn load(
        file: Option<&Path>,
        file_required: bool,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => config.apply_file(path, &text)?,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound && !file_required => {}
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
        config.apply_env(env)?;
        if let Some(listen) = &overrides.listen {
            config.listen = parse_listen(listen, "--listen")?;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(path) = &overrides.services_file {
            config.services_file = SeedFile::File(path.clone());
        }
        if let Some(path) = &overrides.agents_file {
            config.agents_file = SeedFile::File(path.clone());
        }
        if overrides.no_demo {
            config.services_file = SeedFile::Empty;
            config.agents_file = SeedFile::Empty;
        }
        config.validate()?;
        Ok(config)
    }

    fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        let source = format!("config file {}", path.display());
        if let Some(listen) = file.listen {
            self.listen = parse_listen(&listen, &source)?;
        }
        if let Some(dir) = file.data_dir {
            self.data_dir = dir;
        }
        if let Some(services) = file.services_file {
            self.services_file = SeedFile::File(services);
        }
        if let Some(agents) = file.agents_file {
            self.agents_file = SeedFile::File(agents);
        }
        if file.admin_token.is_some() {
            self.admin_token = file.admin_token;
        }
        if let Some(limit) = file.max_body_bytes {
            self.max_body_bytes = limit;
        }
        if let Some(schedule) = file.expiry_schedule {
            self.expiry_schedule = schedule;
        }
        if let Some(servers) = file.stat_servers {
            self.stat_servers = servers;
        }
        if let Some(table) = file.idle_control {
            self.idle_control = idle_settings(&table, &source)?;
        }
        let table = file.httpcb.unwrap_or_default();
        // The flat keys are aliases of the table's; one setting given twice is refused so
        // that nobody wonders which one counts.
        let timeout_ms = alias(
            table.timeout_ms,
            file.httpcb_timeout_ms,
            "httpcb.timeout_ms",
            &source,
        )?;
        let attempts = alias(
            table.attempts,
            file.httpcb_attempts,
            "httpcb.attempts",
            &source,
        )?;
        let backoff_ms = alias(
            table.backoff_ms,
            file.httpcb_backoff_ms,
            "httpcb.backoff_ms",
            &source,
        )?;
        if let Some(ms) = timeout_ms {
            self.httpcb.timeout = Duration::from_millis(ms);
        }
        if let Some(attempts) = attempts {
            self.httpcb.attempts = attempts;
        }
        if let Some(ms) = backoff_ms {
            self.httpcb.backoff = Duration::from_millis(ms);
        }
        if let Some(allow) = table.allow {
            self.httpcb.allow = allow
                .iter()
                .map(|rule| rule.parse())
                .collect::<Result<_, String>>()
                .map_err(|message| ConfigError::Invalid {
                    setting: "httpcb.allow",
                    source_name: source.clone(),
                    message,
                })?;
        }
        if let Some(n) = table.destination_concurrency {
            self.httpcb.destination_concurrency = n;
        }
        if let Some(n) = table.destination_queue {
            self.httpcb.destination_queue = n;
        }
        if let Some(n) = table.breaker_failures {
            self.httpcb.breaker_failures = n;
        }
        if let Some(ms) = table.breaker_open_ms {
            self.httpcb.breaker_open = Duration::from_millis(ms);
        }
        if let Some(table) = file.push.and_then(|push| push.fcm) {
            self.fcm = Some(fcm_settings(table, &source)?);
        }
        if let Some(cometd) = file.cometd {
            self.cometd = cometd;
        }
        if let Some(security) = file.security {
            self.security = security;
        }
        if let Some(url) = file.public_url {
            self.public_url = Some(parse_public_url(&url, &source)?);
        }
        if let Some(chat) = file.chat {
            self.chat = chat;
        }
        if let Some(inbound) = file.inbound_chat {
            if inbound.find_agent_timeout_secs == 0 {
                return Err(ConfigError::Invalid {
                    setting: "inbound_chat.app_find_agent_timeout",
                    source_name: source.clone(),
                    message: "0 would give up at once: give the seconds to wait for an agent"
                        .into(),
                });
            }
            self.inbound_chat = inbound;
        }
        if let Some(http) = file.http {
            self.http = http;
        }
        if let Some(sessions) = file.sessions {
            if sessions.idle_timeout_secs == 0 {
                return Err(ConfigError::Invalid {
                    setting: "sessions.idle_timeout_secs",
                    source_name: source.clone(),
                    message: "must be at least 1 second".into(),
                });
            }
            self.sessions = sessions;
        }
        if let Some(agents) = file.agents {
            self.agents = agents;
        }
        if let Some(metrics) = file.metrics {
            self.metrics = metrics;
        }
        if let Some(store) = file.store {
            self.store = store;
        }
        Ok(())
    }

    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in env {
            match name.as_str() {
                "CALLBACKD_LISTEN" => self.listen = parse_listen(&value, &name)?,
                "CALLBACKD_DATA_DIR" => self.data_dir = PathBuf::from(value),
                "CALLBACKD_SERVICES_FILE" => self.services_file = SeedFile::File(value.into()),
                "CALLBACKD_AGENTS_FILE" => self.agents_file = SeedFile::File(value.into()),
                "CALLBACKD_ADMIN_TOKEN" => self.admin_token = Some(value),
                "CALLBACKD_STORE_URL" => self.store.url = Some(value),
                "CALLBACKD_STORE_ADVERTISE" => self.store.advertise = Some(value),
                "CALLBACKD_STORE_ENGINE" => {
                    self.store.engine = match value.as_str() {
                        "sled" => crate::store::EngineKind::Sled,
                        "postgres" => crate::store::EngineKind::Postgres,
                        _ => {
                            return Err(ConfigError::Invalid {
                                setting: "store.engine",
                                source_name: name.clone(),
                                message: format!("`{value}` is not an engine: use sled or postgres"),
                            })
                        }
                    }
                }
                "CALLBACKD_MAX_BODY_BYTES" => {
                    self.max_body_bytes = value.parse().map_err(|_| ConfigError::Invalid {
                        setting: "max_body_bytes",
                        source_name: name.clone(),
                        message: format!("`{value}` is not a whole number of bytes"),
                    })?
                }
                "CALLBACKD_EXPIRY_SCHEDULE" => self.expiry_schedule = value,
                "CALLBACKD_PUBLIC_URL" => self.public_url = Some(parse_public_url(&value, &name)?),
                "CALLBACKD_PUSH_FCM_ACCESS_TOKEN" => match &mut self.fcm {
                    Some(fcm) => fcm.credentials = FcmCredentials::AccessToken(value),
                    None => {
                        return Err(ConfigError::Invalid {
                            setting: "push.fcm.access_token",
                            source_name: name.clone(),
                            message: "there is no [push.fcm] table with the project_id to use it for: add one to the config file".into(),
                        })
                    }
                },
                "CALLBACKD_AGENTS_KEEP_ALIVE_MS" => {
                    self.agents.keep_alive_ms = value.parse().map_err(|_| ConfigError::Invalid {
                        setting: "agents.keep_alive_ms",
                        source_name: name.clone(),
                        message: format!("`{value}` is not a whole number of milliseconds"),
                    })?
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                setting: "max_body_bytes",
                source_name: "configuration".into(),
                message: format!(
                    "{} bytes is too small for a GMS request: use at least 1024",
                    self.max_body_bytes
                ),
            });
        }
        let httpcb = &self.httpcb;
        for (setting, zero) in [
            ("httpcb.attempts", httpcb.attempts == 0),
            ("httpcb.timeout_ms", httpcb.timeout.is_zero()),
            (
                "httpcb.destination_concurrency",
                httpcb.destination_concurrency == 0,
            ),
            ("httpcb.destination_queue", httpcb.destination_queue == 0),
            ("httpcb.breaker_failures", httpcb.breaker_failures == 0),
            ("httpcb.breaker_open_ms", httpcb.breaker_open.is_zero()),
        ] {
            if zero {
                return Err(ConfigError::Invalid {
                    setting,
                    source_name: "configuration".into(),
                    message: "must be at least 1".into(),
                });
            }
        }
        for (setting, value) in [
            ("cometd.timeout_ms", self.cometd.timeout_ms),
            ("cometd.max_interval_ms", self.cometd.max_interval_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    setting,
                    source_name: "configuration".into(),
                    message: "0 ms would make clients poll in a busy loop: use e.g. 60000 for timeout_ms, 30000 for max_interval_ms".into(),
                });
            }
        }
        if self.store.engine == crate::store::EngineKind::Postgres && self.store.url.is_none() {
            return Err(ConfigError::Invalid {
                setting: "store.url",
                source_name: "configuration".into(),
                message: "engine = \"postgres\" needs the database's address: url = \"postgres://user:password@host:5432/callbackd\" (or CALLBACKD_STORE_URL)".into(),
            });
        }
        if self.store.pool_size == 0 {
            return Err(ConfigError::Invalid {
                setting: "store.pool_size",
                source_name: "configuration".into(),
                message: "must be at least 1".into(),
            });
        }
        if self.store.cache_bytes < crate::store::MIN_CACHE_BYTES {
            return Err(ConfigError::Invalid {
                setting: "store.cache_bytes",
                source_name: "configuration".into(),
                message: format!(
                    "{} bytes is too small a cache: give at least {} (1 MiB); the default is {}",
                    self.store.cache_bytes,
                    crate::store::MIN_CACHE_BYTES,
                    crate::store::DEFAULT_CACHE_BYTES
                ),
            });
        }
        if self.agents.keep_alive_ms == 0 {
            return Err(ConfigError::Invalid {
                setting: "agents.keep_alive_ms",
                source_name: "configuration".into(),
                message: "0 ms would send pings in a busy loop: use e.g. 10000".into(),
            });
        }
        if self.cometd.max_clients == 0 {
            return Err(ConfigError::Invalid {
                setting: "cometd.max_clients",
                source_name: "configuration".into(),
                message: "0 would refuse every CometD handshake: use e.g. 100000".into(),
            });
        }
        if !(1..=MAX_CLIENTS_PER_USER_CEILING).contains(&self.cometd.max_clients_per_user) {
            return Err(ConfigError::Invalid {
                setting: "cometd.max_clients_per_user",
                source_name: "configuration".into(),
                message: format!(
                    "{} is out of range: use 1 to {MAX_CLIENTS_PER_USER_CEILING} (default 16)",
                    self.cometd.max_clients_per_user
                ),
            });
        }
        for (setting, value) in [
            (
                "http.header_read_timeout_ms",
                self.http.header_read_timeout_ms,
            ),
            ("http.idle_timeout_ms", self.http.idle_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    setting,
                    source_name: "configuration".into(),
                    message: "0 ms would close every connection at once: use e.g. 10000 for header_read_timeout_ms, 60000 for idle_timeout_ms".into(),
                });
            }
        }
        if self.http.max_connections == Some(0) {
            return Err(ConfigError::Invalid {
                setting: "http.max_connections",
                source_name: "configuration".into(),
                message: "0 would serve nobody: leave it out to derive it from the open-file limit, or give a number such as 10000".into(),
            });
        }
        if let Some(settings) = &self.fcm {
            fcm::validate(settings).map_err(|(key, message)| ConfigError::Invalid {
                setting: match key {
                    "endpoint" => "push.fcm.endpoint",
                    "project_id" => "push.fcm.project_id",
                    _ => "push.fcm.access_token",
                },
                source_name: "configuration".into(),
                message,
            })?;
        }
        if self.stat_servers.is_empty() {
            return Err(ConfigError::Invalid {
                setting: "stat_servers",
                source_name: "configuration".into(),
                message: "name at least one Stat Server, e.g. [\"StatServer\"]".into(),
            });
        }
        Ok(())
    }

    /// The directory of the sled database.
    pub fn db_dir(&self) -> PathBuf {
        self.data_dir.join("db")
    }

    /// Where the data is, for messages: the sled database's directory, or the PostgreSQL
    /// database's address without its password.
    pub fn store_location(&self) -> String {
        match (&self.store.engine, &self.store.url) {
            (crate::store::EngineKind::Postgres, Some(url)) => {
                crate::store::postgres::without_password(url)
            }
            _ => self.db_dir().display().to_string(),
        }
    }

    /// Where a generated admin token is kept.
    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.join("admin_token")
    }
}

/// `[push.fcm]`: a project id and exactly one credential are needed; the endpoint defaults
/// to FCM's own.
fn fcm_settings(table: FcmFile, source: &str) -> Result<FcmSettings, ConfigError> {
    let invalid = |setting: &'static str, message: &str| ConfigError::Invalid {
        setting,
        source_name: source.to_string(),
        message: message.to_string(),
    };
    let project_id = table.project_id.ok_or_else(|| {
        invalid(
            "push.fcm.project_id",
            "missing: give the Firebase project id the app's tokens belong to",
        )
    })?;
    let credentials = match (table.access_token, table.access_token_file) {
        (Some(token), None) => FcmCredentials::AccessToken(token.trim().to_string()),
        (None, Some(path)) => FcmCredentials::AccessTokenFile(path),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "push.fcm.access_token",
                "give access_token or access_token_file, not both",
            ))
        }
        // The token may still come from CALLBACKD_PUSH_FCM_ACCESS_TOKEN; validate() checks.
        (None, None) => FcmCredentials::AccessToken(String::new()),
    };
    Ok(FcmSettings {
        endpoint: table
            .endpoint
            .unwrap_or_else(|| fcm::DEFAULT_ENDPOINT.to_string()),
        project_id,
        credentials,
    })
}

/// One setting that may be written in the `[httpcb]` table or as its older flat key.
fn alias<T>(
    table: Option<T>,
    flat: Option<T>,
    setting: &'static str,
    source: &str,
) -> Result<Option<T>, ConfigError> {
    match (table, flat) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            setting,
            source_name: source.to_string(),
            message: format!(
                "given both in [httpcb] and as the flat key httpcb_{}; keep only the [httpcb] one",
                setting.trim_start_matches("httpcb.")
            ),
        }),
        (table, flat) => Ok(table.or(flat)),
    }
}

/// `[idle_control]`, read with the rules of ESP `IdleControlConfigure` on top of the
/// built-in defaults.
fn idle_settings(
    table: &BTreeMap<String, toml::Value>,
    source: &str,
) -> Result<IdleSettings, ConfigError> {
    let params: BTreeMap<String, String> = table
        .iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .collect();
    let invalid = |err: crate::domain::options::FieldError| ConfigError::Invalid {
        setting: "idle_control",
        source_name: source.to_string(),
        message: err.to_string(),
    };
    if let Some(unknown) = params
        .keys()
        .find(|key| !crate::domain::idle::PARAMETERS.contains(&key.as_str()))
    {
        return Err(ConfigError::Invalid {
            setting: "idle_control",
            source_name: source.to_string(),
            message: format!(
                "unknown key `{unknown}`: use {}",
                crate::domain::idle::PARAMETERS.join(", ")
            ),
        });
    }
    let changes = IdleChanges::parse(&params).map_err(invalid)?;
    let defaults = IdleSettings::default();
    defaults.apply(&changes, &defaults).map_err(invalid)
}

/// `http(s)://host[:port][/prefix]`, kept without its trailing `/` so paths can be appended.
fn parse_public_url(value: &str, source: &str) -> Result<String, ConfigError> {
    let invalid = |message: &str| ConfigError::Invalid {
        setting: "public_url",
        source_name: source.to_string(),
        message: format!("`{value}` {message}: write it like https://gms.example.com"),
    };
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| invalid("does not start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || value.contains(['?', '#']) || value.chars().any(|c| !c.is_ascii_graphic())
    {
        return Err(invalid("is not a plain URL with a host"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

fn parse_listen(value: &str, source: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        setting: "listen",
        source_name: source.to_string(),
        message: format!("`{value}` is not an address: write it like 127.0.0.1:8080"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_8080_with_data_in_data() {
        let config = Config::load(None, false, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.db_dir(), PathBuf::from("data/db"));
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1111\"\nadmin_token = \"from-file\"\nmax_body_bytes = 2048\n",
        )
        .unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:3333".into()),
            ..Overrides::default()
        };
        let config = Config::load(
            Some(&file),
            true,
            env(&[
                ("CALLBACKD_LISTEN", "127.0.0.1:2222"),
                ("CALLBACKD_ADMIN_TOKEN", "from-env"),
            ]),
            &overrides,
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3333", "flag wins");
        assert_eq!(config.admin_token.as_deref(), Some("from-env"), "env wins");
        assert_eq!(config.max_body_bytes, 2048, "file beats default");
    }

    #[test]
    fn the_desktop_keep_alive_is_ten_seconds_unless_the_environment_says_and_never_zero() {
        let config = Config::load(None, false, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config.agents.keep_alive_ms, 10_000);
        let postgres = Config::load(
            None,
            false,
            env(&[
                ("CALLBACKD_STORE_ENGINE", "postgres"),
                ("CALLBACKD_STORE_URL", "postgres://u@h/db"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(postgres.store.engine, crate::store::EngineKind::Postgres);
        assert_eq!(postgres.store.url.as_deref(), Some("postgres://u@h/db"));
        let err = Config::load(
            None,
            false,
            env(&[("CALLBACKD_STORE_ENGINE", "cassandra")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("CALLBACKD_STORE_ENGINE"), "{err}");

        let short = [("CALLBACKD_AGENTS_KEEP_ALIVE_MS", "400")];
        let config = Config::load(None, false, env(&short), &Overrides::default()).unwrap();
        assert_eq!(config.agents.keep_alive_ms, 400);
        for bad in ["0", "soon"] {
            let err = Config::load(
                None,
                false,
                env(&[("CALLBACKD_AGENTS_KEEP_ALIVE_MS", bad)]),
                &Overrides::default(),
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("agents.keep_alive_ms"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_file_keys_and_bad_values_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");

        let err = Config::load(
            None,
            false,
            env(&[("CALLBACKD_LISTEN", "nowhere")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("CALLBACKD_LISTEN"), "{err}");
    }

    #[test]
    fn the_push_fcm_section_is_read_with_the_token_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        let load = |text: &str, vars: &[(&str, &str)]| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), true, env(vars), &Overrides::default())
        };

        let config = load(
            "[push.fcm]\nproject_id = \"demo-1\"\naccess_token_file = \"/run/fcm\"\n",
            &[],
        )
        .unwrap();
        let fcm = config.fcm.expect("configured");
        assert_eq!(
            fcm.endpoint,
            crate::push::fcm::DEFAULT_ENDPOINT,
            "FCM's own"
        );
        assert_eq!(fcm.project_id, "demo-1");
        assert_eq!(
            fcm.credentials,
            FcmCredentials::AccessTokenFile("/run/fcm".into())
        );

        let config = load(
            "[push.fcm]\nproject_id = \"demo-1\"\nendpoint = \"http://127.0.0.1:9\"\n",
            &[("CALLBACKD_PUSH_FCM_ACCESS_TOKEN", "ya29.x")],
        )
        .unwrap();
        let fcm = config.fcm.expect("configured");
        assert_eq!(fcm.endpoint, "http://127.0.0.1:9");
        assert_eq!(
            fcm.credentials,
            FcmCredentials::AccessToken("ya29.x".into())
        );

        assert!(Config::load(None, false, env(&[]), &Overrides::default())
            .unwrap()
            .fcm
            .is_none());
    }

    #[test]
    fn a_bad_push_fcm_section_is_refused_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        // (file text, environment, the setting the refusal names)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "[push.fcm]\naccess_token = \"t\"\n",
                &[],
                "push.fcm.project_id",
            ),
            (
                "[push.fcm]\nproject_id = \"p\"\n",
                &[],
                "push.fcm.access_token",
            ),
            (
                "[push.fcm]\nproject_id = \"p\"\naccess_token = \"t\"\naccess_token_file = \"f\"\n",
                &[],
                "push.fcm.access_token",
            ),
            (
                "[push.fcm]\nproject_id = \"p\"\naccess_token = \"t\"\nendpoint = \"fcm\"\n",
                &[],
                "push.fcm.endpoint",
            ),
            (
                "[push.fcm]\nproject_id = \"p\"\ntoken = \"t\"\n",
                &[],
                "token",
            ),
            (
                "",
                &[("CALLBACKD_PUSH_FCM_ACCESS_TOKEN", "t")],
                "push.fcm.access_token",
            ),
        ];
        for (text, vars, named) in cases {
            std::fs::write(&file, text).unwrap();
            let err =
                Config::load(Some(&file), true, env(vars), &Overrides::default()).expect_err(text);
            assert!(err.to_string().contains(named), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_cometd_section_sets_its_timeouts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        std::fs::write(&file, "[cometd]\ntimeout_ms = 2000\n").unwrap();
        let config = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config.cometd.timeout_ms, 2000);
        assert_eq!(config.cometd.max_interval_ms, 30_000, "default kept");

        std::fs::write(&file, "[cometd]\nmax_interval_ms = 0\n").unwrap();
        let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("cometd.max_interval_ms"), "{err}");
    }

    #[test]
    fn the_http_section_and_the_cometd_limits_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        std::fs::write(
            &file,
            "[http]\nheader_read_timeout_ms = 500\nmax_connections = 20\n\n[cometd]\nmax_clients_per_user = 4\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config.http.header_read_timeout_ms, 500);
        assert_eq!(config.http.idle_timeout_ms, 60_000, "default kept");
        assert_eq!(config.http.max_connections, Some(20));
        assert_eq!(config.cometd.max_clients_per_user, 4);
        assert_eq!(config.cometd.max_clients, 100_000, "default kept");

        for (text, setting) in [
            ("[http]\nidle_timeout_ms = 0\n", "http.idle_timeout_ms"),
            (
                "[http]\nheader_read_timeout_ms = 0\n",
                "http.header_read_timeout_ms",
            ),
            ("[http]\nmax_connections = 0\n", "http.max_connections"),
            ("[http]\nidle_timeout = 5\n", "idle_timeout"),
            (
                "[cometd]\nmax_clients_per_user = 0\n",
                "cometd.max_clients_per_user",
            ),
            (
                "[cometd]\nmax_clients_per_user = 5000\n",
                "cometd.max_clients_per_user",
            ),
            ("[cometd]\nmax_clients = 0\n", "cometd.max_clients"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(setting), "{text}: {err}");
        }
    }

    #[test]
    fn idle_control_comes_from_its_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        std::fs::write(
            &file,
            "[idle_control]\nenabled = true\ntimeout-alert = 5\nmessage-alert = \"Hello?\"\ntimeout-close = 10\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap();
        assert!(config.idle_control.enabled);
        assert_eq!(config.idle_control.timeout_alert_secs, 5);
        assert_eq!(config.idle_control.message_alert, "Hello?");
        assert_eq!(config.idle_control.timeout_close_secs, 10);

        std::fs::write(&file, "[idle_control]\ntimeout-alarm = 5\n").unwrap();
        let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("timeout-alarm"), "{err}");
        std::fs::write(
            &file,
            "[idle_control]\ntimeout-alert = 20\ntimeout-close = 10\n",
        )
        .unwrap();
        let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("idle_control"), "{err}");
    }

    #[test]
    fn inbound_chat_has_a_default_group_and_is_read_from_its_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        std::fs::write(&file, "").unwrap();
        let config = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config.inbound_chat, InboundChat::default());
        assert_eq!(config.inbound_chat.app_selected_agent_group, "Support");

        std::fs::write(
            &file,
            "[inbound_chat]\napp_selected_agent_group = \"Billing\"\napp_find_agent_timeout = 60\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config.inbound_chat.app_selected_agent_group, "Billing");
        assert_eq!(config.inbound_chat.find_agent_timeout_secs, 60);

        std::fs::write(&file, "[inbound_chat]\napp_find_agent_timeout = 0\n").unwrap();
        let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("app_find_agent_timeout"), "{err}");
        std::fs::write(&file, "[inbound_chat]\ngroup = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("group"), "{err}");
    }

    #[test]
    fn security_and_public_url_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), true, env(&[]), &Overrides::default())
        };
        let config = load("").unwrap();
        assert!(!config.security.allow_anonymous_services, "off by default");
        assert_eq!(config.public_url, None);

        let config = load(
            "public_url = \"https://gms.example.com/\"\n[security]\nallow_anonymous_services = true\n",
        )
        .unwrap();
        assert!(config.security.allow_anonymous_services);
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://gms.example.com")
        );

        for bad in [
            "gms.example.com",
            "http://",
            "https://a b",
            "https://x/?q=1",
        ] {
            let err = load(&format!("public_url = \"{bad}\"\n")).unwrap_err();
            assert!(err.to_string().contains("public_url"), "{bad}: {err}");
        }
        let err = load("[security]\nallow_anonymous = true\n").unwrap_err();
        assert!(err.to_string().contains("allow_anonymous"), "{err}");
    }

    #[test]
    fn the_chat_section_sets_the_limits_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        std::fs::write(&file, "[chat]\nmax_message_bytes = 100\n").unwrap();
        let config = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config.chat.max_message_bytes, 100);
        assert_eq!(config.chat.max_messages_per_second, 5, "default kept");
        assert_eq!(config.chat.max_transcript_events, 1000, "default kept");

        std::fs::write(&file, "[chat]\nmax_messages = 3\n").unwrap();
        let err = Config::load(Some(&file), true, env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("max_messages"), "{err}");
    }

    #[test]
    fn the_metrics_section_makes_metrics_public_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), true, env(&[]), &Overrides::default())
        };
        assert!(
            !load("").unwrap().metrics.public,
            "token required by default"
        );
        assert!(load("[metrics]\npublic = true\n").unwrap().metrics.public);
        let err = load("[metrics]\nopen = true\n").unwrap_err();
        assert!(err.to_string().contains("open"), "{err}");
    }

    #[test]
    fn the_store_section_sets_sync_and_min_free_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), true, env(&[]), &Overrides::default())
        };
        let config = load("").unwrap();
        assert_eq!(config.store.sync, crate::store::SyncMode::Device, "default");
        assert_eq!(config.store.min_free_bytes, 64 * 1024 * 1024, "default");
        assert_eq!(config.store.cache_bytes, 256 * 1024 * 1024, "default");

        let config =
            load("[store]\nsync = \"os\"\nmin_free_bytes = 1000\ncache_bytes = 2000000\n").unwrap();
        assert_eq!(config.store.sync, crate::store::SyncMode::Os);
        assert_eq!(config.store.min_free_bytes, 1000);
        assert_eq!(config.store.cache_bytes, 2_000_000);
        assert_eq!(
            config.store.engine,
            crate::store::EngineKind::Sled,
            "default"
        );
        let err = load("[store]\nengine = \"postgres\"\n").unwrap_err();
        assert!(err.to_string().contains("store.url"), "{err}");
        let postgres =
            load("[store]\nengine = \"postgres\"\nurl = \"postgres://u@h/db\"\npool_size = 4\n")
                .unwrap();
        assert_eq!(postgres.store.engine, crate::store::EngineKind::Postgres);
        assert_eq!(postgres.store.url.as_deref(), Some("postgres://u@h/db"));
        assert_eq!(postgres.store.pool_size, 4);
        let err = load("[store]\npool_size = 0\n").unwrap_err();
        assert!(err.to_string().contains("store.pool_size"), "{err}");
        let err = load("[store]\ncache_bytes = 1000\n").unwrap_err();
        assert!(err.to_string().contains("store.cache_bytes"), "{err}");

        for (text, named) in [
            ("[store]\nsync = \"disk\"\n", "disk"),
            ("[store]\nmin_free = 5\n", "min_free"),
        ] {
            let err = load(text).unwrap_err();
            assert!(err.to_string().contains(named), "{text}: {err}");
        }
    }

    #[test]
    fn a_missing_required_file_is_an_error() {
        let err = Config::load(
            Some(Path::new("/nonexistent/callbackd.toml")),
            true,
            env(&[]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }

    #[test]
    fn the_httpcb_section_sets_allow_and_isolation_and_the_flat_keys_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callbackd.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), true, env(&[]), &Overrides::default())
        };

        let config = load(
            "[httpcb]\nallow = [\"10.0.0.0/8\", \"http://127.0.0.1:8081/hooks/\"]\ntimeout_ms = 700\ndestination_concurrency = 2\nbreaker_open_ms = 1000\n",
        )
        .unwrap();
        assert_eq!(config.httpcb.allow.len(), 2);
        assert_eq!(config.httpcb.timeout, Duration::from_millis(700));
        assert_eq!(config.httpcb.destination_concurrency, 2);
        assert_eq!(config.httpcb.breaker_open, Duration::from_secs(1));
        assert_eq!(config.httpcb.attempts, 4, "default kept");
        assert!(
            Config::default().httpcb.allow.is_empty(),
            "public only by default"
        );

        let flat = load("httpcb_attempts = 2\nhttpcb_backoff_ms = 10\n").unwrap();
        assert_eq!(flat.httpcb.attempts, 2);
        assert_eq!(flat.httpcb.backoff, Duration::from_millis(10));

        for (text, setting) in [
            (
                "httpcb_attempts = 2\n[httpcb]\nattempts = 3\n",
                "httpcb.attempts",
            ),
            ("[httpcb]\nallow = [\"localhost\"]\n", "httpcb.allow"),
            (
                "[httpcb]\ndestination_queue = 0\n",
                "httpcb.destination_queue",
            ),
            ("[httpcb]\nalow = []\n", "alow"),
        ] {
            let err = load(text).unwrap_err();
            assert!(err.to_string().contains(setting), "{text}: {err}");
        }
    }
}
