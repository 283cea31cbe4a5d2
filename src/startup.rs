//! Building the running service: everything that happens once, before the first request.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio::net::{TcpListener, TcpSocket};

use crate::app::{AppState, Catalog, RuntimeSettings, Shared};
use crate::center::chat::ChatServer;
use crate::clock::Clock;
use crate::cometd::{Bayeux, BayeuxSettings};
use crate::config::{Config, SeedFile};
use crate::domain::agent::{AgentConfig, AgentRecord, AgentState};
use crate::domain::options::{ConfiguredService, OptionError, Preset};
use crate::domain::settings_cache::{self, SettingsCache};
use crate::domain::time::Timestamp;
use crate::expiry::{self, ExpiryCounters};
use crate::metrics::{Metrics, Sources};
use crate::push::comet::{follow_announcements, ChatPushes};
use crate::push::egress::EgressPolicy;
use crate::push::{HttpCallbacks, NotificationWriter, Notifier};
use crate::router::{self, task::RouterContext};
use crate::store::postgres::Lease;
use crate::store::{EngineKind, Store, StoreError, StoreSettings};
use crate::supervisor::{Shutdown, Supervisor};

/// Connections waiting to be accepted. The default of 128 makes thousands of clients that
/// connect at once wait seconds for SYN retries.
const LISTEN_BACKLOG: u32 = 4096;

/// Why the service could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database {location}: {source}")]
    Store {
        /// The database: its directory, or its address ([`Config::store_location`]).
        location: String,
        /// Why.
        source: StoreError,
    },
    /// The agents file is unreadable or invalid.
    #[error("agents file {path}: {message}")]
    AgentsFile {
        /// The file (or "the built-in demo").
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The configured-services file is unreadable or invalid.
    #[error("configured services file {path}: {message}")]
    ServicesFile {
        /// The file (or "the built-in demo").
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A background job could not start.
    #[error("cannot start background jobs: {0}")]
    Jobs(String),
    /// A background task panicked or ended while serving; the service stopped.
    #[error(transparent)]
    TaskFailed(#[from] crate::supervisor::TaskFailure),
}

/// What start-up found this node to be.
pub(crate) enum Start {
    /// It serves: the store is open and the router runs.
    Active(Box<Built>),
    /// Another node over the same PostgreSQL database holds the lease: this one relays requests
    /// to it, and takes the lease when it lets go.
    Follower {
        /// The database.
        url: String,
    },
}

/// What [`build_active`] hands to the `App`.
pub(crate) struct Built {
    pub state: AppState,
    /// On PostgreSQL, the lease this node holds; published and watched once it serves.
    pub lease: Option<Lease>,
}

/// Binds the listener, then, on PostgreSQL, takes the lease if it is free: a node that holds
/// it (or any node on sled) opens everything and starts the router ([`build_active`]); one
/// that does not is a follower.
pub(crate) async fn build(
    config: &Config,
    clock: Arc<dyn Clock>,
    supervisor: &mut Supervisor,
) -> Result<(TcpListener, Start), StartupError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::Io {
        what: format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        ),
        source,
    })?;
    let listener = bind(config.listen)?;
    let local = listener.local_addr().map_err(|source| StartupError::Io {
        what: "cannot read the listener address".into(),
        source,
    })?;
    // The lease first: a follower must not migrate the schema under the active node.
    let lease = match (config.store.engine, config.store.url.clone()) {
        (EngineKind::Postgres, Some(url)) => match try_lease(&url).await {
            Ok(Some(lease)) => Some(lease),
            Ok(None) => {
                tracing::info!(
                    "following: another callbackd node is active over this database; this one \
                     relays requests to it, and takes over when it stops"
                );
                return Ok((listener, Start::Follower { url }));
            }
            Err(StoreError::Unreachable(why)) => {
                tracing::warn!(error = %why, "the database does not answer: following until it does; requests get 503 meanwhile");
                return Ok((listener, Start::Follower { url }));
            }
            Err(source) => {
                return Err(StartupError::Store {
                    location: config.store_location(),
                    source,
                })
            }
        },
        _ => None,
    };
    let built = build_active(config, clock, lease, local, supervisor).await?;
    Ok((listener, Start::Active(Box::new(built))))
}

/// Opens the store (applying migrations), seeds the configured services on first start,
/// resolves the admin token, removes services that expired while it was down, and starts the
/// router and the background tasks on `supervisor`. `lease` is the one this node holds on
/// PostgreSQL; `local` is where it listens.
pub(crate) async fn build_active(
    config: &Config,
    clock: Arc<dyn Clock>,
    lease: Option<Lease>,
    local: std::net::SocketAddr,
    supervisor: &mut Supervisor,
) -> Result<Built, StartupError> {
    let db_dir = config.db_dir();
    let location = config.store_location();
    let settings = StoreSettings {
        lease_epoch: lease.as_ref().map(Lease::epoch),
        ..config.store.clone()
    };
    let store = open_store(db_dir.clone(), settings, location.clone()).await?;
    let sled_dir = (config.store.engine == EngineKind::Sled).then_some(&*db_dir);
    make_private(&config.data_dir, sled_dir).map_err(|source| StartupError::Io {
        what: format!(
            "cannot make the data directory {} private (mode 0700, files 0600)",
            config.data_dir.display()
        ),
        source,
    })?;
    let store_err = |source| StartupError::Store {
        location: location.clone(),
        source,
    };

    if !store.templates_seeded().map_err(store_err)? {
        let (services, source) = read_services(&config.services_file, &config.stat_servers)?;
        // Seeding again after a crash is the same seeding: nothing waits for it.
        store
            .seed_templates(&services)
            .map_err(store_err)?
            .without_waiting();
        tracing::info!(
            count = services.len(),
            from = %source,
            "configured services loaded into the new database"
        );
    }
    if !store.agents_seeded().map_err(store_err)? {
        let (agents, source) = read_agents(&config.agents_file, clock.now())?;
        store
            .seed_agents(&agents)
            .map_err(store_err)?
            .without_waiting();
        tracing::info!(
            count = agents.len(),
            from = %source,
            "agents loaded into the new database"
        );
    }
    let catalog = Catalog::default();
    for service in store.templates().map_err(store_err)? {
        let name = service.name.clone();
        if service.preset.is_scheduling() {
            match service.validate_schedule() {
                Ok(valid) => {
                    catalog.insert_schedule(valid);
                }
                Err(err) => {
                    tracing::error!(service = %name, error = %err, "configured scheduling service is invalid and is not served; fix it with PUT /genesys/1/admin/services/{name}")
                }
            }
            continue;
        }
        match service.validate(&config.stat_servers) {
            Ok(valid) => {
                catalog.insert(valid);
            }
            // Keep serving the others; the administrator sees why in the log.
            Err(err) => {
                tracing::error!(service = %name, error = %err, "configured service is invalid and is not served; fix it with PUT /genesys/1/admin/services/{name}")
            }
        }
    }

    let admin_token = resolve_admin_token(config)?;
    if !crate::app::accounts::has_administrator(&store).map_err(store_err)? {
        tracing::info!(
            "no administrator account yet: create one with `callbackd user add NAME --role administrator`; until then, sign in at /admin/login as `admin` with the admin token"
        );
    }

    let expiry_counters = ExpiryCounters::default();
    let caught_up = {
        let store = store.clone();
        let now = clock.now();
        tokio::task::spawn_blocking(move || expiry::run_once(&store, now))
            .await
            .map_err(|err| StartupError::Jobs(err.to_string()))?
            .map_err(store_err)?
    };
    expiry_counters.ran_at(clock.now(), caught_up.len());
    if !caught_up.is_empty() {
        tracing::info!(
            removed = caught_up.len(),
            "removed services that expired while stopped"
        );
    }

    let (chats, chat_commands) = tokio::sync::mpsc::unbounded_channel();
    // One policy for both checks: the early one at creation and the one at connect.
    let egress = Arc::new(EgressPolicy::new(&config.httpcb.allow));
    let (http_callbacks, push_worker) = HttpCallbacks::start(
        store.clone(),
        config.httpcb.clone(),
        egress.clone(),
        clock.clone(),
        supervisor.shutdown(),
    );
    supervisor.spawn("http callback worker", push_worker);
    let (bayeux, announcements) = Bayeux::new(
        BayeuxSettings {
            timeout_ms: config.cometd.timeout_ms,
            max_interval_ms: config.cometd.max_interval_ms,
            max_clients_per_user: config.cometd.max_clients_per_user,
            max_clients: config.cometd.max_clients,
            ..BayeuxSettings::default()
        },
        clock.clone(),
    );
    let metrics = Metrics::new(Sources {
        commit: store.commit_stats(),
        cometd: bayeux.counters(),
        httpcb: http_callbacks.counters(),
        expiry: &expiry_counters,
    });
    let fcm = config.fcm.as_ref().map(|settings| {
        let fcm = crate::push::Fcm::new(settings, clock.clone());
        tracing::info!(
            url = fcm.url(),
            "fcm and gcm services are pushed through FCM"
        );
        fcm
    });
    let (notification_writer, writing) =
        NotificationWriter::start(store.clone(), supervisor.shutdown());
    supervisor.spawn("notification writer", writing);
    let notifier = Notifier::new(
        store.clone(),
        notification_writer,
        Arc::new(bayeux.clone()),
        http_callbacks,
    )
    .with_fcm(fcm);
    supervisor.spawn(
        "CometD announcements",
        follow_announcements(notifier.clone(), announcements, supervisor.shutdown()),
    );
    let chat = ChatServer::new(
        store.clone(),
        clock.clone(),
        Arc::new(ChatPushes::new(notifier.clone())),
        config.idle_control.clone(),
        config.chat,
    );
    let (restored, unassigned) = chat.restore().map_err(store_err)?;
    if restored > 0 {
        tracing::info!(sessions = restored, "open chat sessions restored");
    }
    let typed_settings = Arc::new(SettingsCache::new(
        config.stat_servers.clone(),
        settings_cache::DEFAULT_CAPACITY,
    ));
    let (router, router_task) = router::task::start(
        RouterContext {
            store: store.clone(),
            clock: clock.clone(),
            settings: typed_settings.clone(),
            chats,
            notifier: notifier.clone(),
        },
        supervisor.shutdown(),
    )
    .map_err(store_err)?;
    supervisor.spawn("router", router_task);
    let started_at = clock.now();
    let presence = crate::app::presence::Presence::new(
        clock.clone(),
        config.agents.logout_after_disconnect_secs,
    );
    let state = AppState::new(Shared {
        started_at,
        store,
        catalog,
        router,
        chat,
        clock,
        settings: Arc::new(RuntimeSettings {
            stat_servers: config.stat_servers.clone(),
            max_body_bytes: config.max_body_bytes,
            admin_token,
            fallback_host: local.to_string(),
            allow_anonymous_services: config.security.allow_anonymous_services,
            public_url: config.public_url.clone(),
            egress,
            secure_cookies: config.http.secure_cookies,
            metrics_public: config.metrics.public,
            desktop_keep_alive: std::time::Duration::from_millis(config.agents.keep_alive_ms),
            inbound_chat: config.inbound_chat.clone(),
        }),
        agent_writes: Arc::default(),
        typed_settings,
        notifier,
        bayeux,
        sessions: crate::app::sessions::Sessions::new(config.sessions.idle_timeout_secs),
        presence,
        metrics,
    });
    // Chat API v2's CometD channel: served by the CometD server, told of transcript changes.
    crate::http::chat_v2::CometdChats::install(&state);
    supervisor.spawn(
        "chat commands",
        crate::app::chat::run_commands(state.clone(), chat_commands, supervisor.shutdown()),
    );
    for (service, agent) in unassigned {
        state.router.chat_started(service, agent);
    }
    let status_clients =
        crate::push::httpcb::Clients::build(&config.httpcb, state.settings.egress.clone())
            .map_err(|err| {
                StartupError::Jobs(format!("cannot build the http callback client: {err}"))
            })?;
    supervisor.spawn(
        "status notifications",
        crate::app::status_notifications::run(
            state.clone(),
            Arc::new(status_clients),
            config.httpcb.backoff,
            supervisor.shutdown(),
        ),
    );
    supervisor.spawn(
        "chat idle control",
        crate::app::chat::run_idle_control(state.clone(), supervisor.shutdown()),
    );
    Ok(Built { state, lease })
}

async fn open_store(
    path: PathBuf,
    settings: StoreSettings,
    location: String,
) -> Result<Store, StartupError> {
    let opened = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || Store::open_with(&path, &settings)).await
    };
    let store = opened
        .map_err(|err| StartupError::Jobs(err.to_string()))?
        .map_err(|source| StartupError::Store {
            location: location.clone(),
            source,
        })?;
    for name in store.migrations_applied() {
        tracing::info!(migration = %name, "database migrated");
    }
    tracing::debug!(
        ms = store.time_counts_built_in().as_millis() as u64,
        "counted the time index for the console"
    );
    Ok(store)
}

/// One entry of the services file: `[name]` with `preset` and `options`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    preset: String,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

/// The demo's configured services, built into the binary (the checkout's `data/services.toml`).
pub const DEMO_SERVICES: &str = include_str!("../data/services.toml");

/// The demo contact center's agents, built into the binary (the checkout's `data/agents.toml`).
pub const DEMO_AGENTS: &str = include_str!("../data/agents.toml");

/// Reads and validates the configured services; answers them with where they came from.
///
/// # Errors
/// The file cannot be read, is not valid TOML, or has an invalid service (named).
pub fn read_services(
    seed: &SeedFile,
    stat_servers: &[String],
) -> Result<(Vec<ConfiguredService>, String), StartupError> {
    let Some((text, source)) = seed.read(DEMO_SERVICES).map_err(|err| {
        StartupError::ServicesFile {
            path: err.path.display().to_string(),
            message: format!(
                "cannot read it ({}); give the file with --services-file or CALLBACKD_SERVICES_FILE, or start with --no-demo",
                err.source
            ),
        }
    })?
    else {
        return Ok((Vec::new(), seed.describe()));
    };
    let services = parse_services(&text, &source, stat_servers)?;
    Ok((services, source))
}

/// Parses and validates a configured-services TOML text read from `source`.
fn parse_services(
    text: &str,
    source: &str,
    stat_servers: &[String],
) -> Result<Vec<ConfiguredService>, StartupError> {
    let file_error = |message: String| StartupError::ServicesFile {
        path: source.to_string(),
        message,
    };
    let entries: BTreeMap<String, ServiceEntry> =
        toml::from_str(text).map_err(|err| file_error(err.to_string()))?;
    entries
        .into_iter()
        .map(|(name, entry)| {
            let preset: Preset = entry
                .preset
                .parse()
                .map_err(|m: String| file_error(format!("[{name}] preset: {m}")))?;
            let service = ConfiguredService {
                name: name.clone(),
                preset,
                options: entry.options,
            };
            let checked = if preset.is_scheduling() {
                service.clone().validate_schedule().map(drop)
            } else {
                service.clone().validate(stat_servers).map(drop)
            };
            checked.map_err(|err: OptionError| file_error(format!("[{name}] {err}")))?;
            Ok(service)
        })
        .collect()
}

/// One entry of the agents file: `[id]` with the agent's configuration and starting state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentEntry {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    place: Option<String>,
    #[serde(default)]
    place_groups: Vec<String>,
    #[serde(default)]
    skills: BTreeMap<String, i64>,
    #[serde(default)]
    capacity: BTreeMap<String, u32>,
    #[serde(default)]
    auto_answer: bool,
    state: Option<String>,
}

/// Reads and validates the agents; every agent's state starts at `now`. Answers them with
/// where they came from.
///
/// # Errors
/// The file cannot be read, is not valid TOML, or has an invalid agent (named).
pub fn read_agents(
    seed: &SeedFile,
    now: Timestamp,
) -> Result<(Vec<AgentRecord>, String), StartupError> {
    let Some((text, source)) = seed.read(DEMO_AGENTS).map_err(|err| StartupError::AgentsFile {
        path: err.path.display().to_string(),
        message: format!(
            "cannot read it ({}); give the file with --agents-file or CALLBACKD_AGENTS_FILE, or start with --no-demo",
            err.source
        ),
    })?
    else {
        return Ok((Vec::new(), seed.describe()));
    };
    let agents = parse_agents(&text, &source, now)?;
    Ok((agents, source))
}

/// Parses and validates an agents TOML text read from `source`.
fn parse_agents(
    text: &str,
    source: &str,
    now: Timestamp,
) -> Result<Vec<AgentRecord>, StartupError> {
    let file_error = |message: String| StartupError::AgentsFile {
        path: source.to_string(),
        message,
    };
    let entries: BTreeMap<String, AgentEntry> =
        toml::from_str(text).map_err(|err| file_error(err.to_string()))?;
    entries
        .into_iter()
        .map(|(id, entry)| {
            let state = match &entry.state {
                Some(state) => state
                    .parse::<AgentState>()
                    .map_err(|m| file_error(format!("[{id}] state: {m}")))?,
                None => AgentState::LoggedOut,
            };
            let config = AgentConfig {
                id: id.clone(),
                name: entry.name,
                groups: entry.groups,
                place: entry.place,
                place_groups: entry.place_groups,
                skills: entry.skills,
                capacity: entry.capacity,
                auto_answer: entry.auto_answer,
            };
            config
                .validate()
                .map_err(|(field, m)| file_error(format!("[{id}] {field}: {m}")))?;
            Ok(AgentRecord {
                config,
                state,
                state_since: now,
                idle_since: now,
                reason: None,
            })
        })
        .collect()
}

/// The admin token: configured, or kept in `<data_dir>/admin_token`, or generated there.
fn resolve_admin_token(config: &Config) -> Result<Option<String>, StartupError> {
    if let Some(token) = &config.admin_token {
        if token.is_empty() {
            tracing::warn!("admin_token is empty: the admin and agent APIs are disabled");
            return Ok(None);
        }
        return Ok(Some(token.clone()));
    }
    let path = config.admin_token_file();
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            tracing::info!(file = %path.display(), "admin token read from file");
            return Ok(Some(text.trim().to_string()));
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(StartupError::Io {
                what: format!("cannot read the admin token file {}", path.display()),
                source,
            })
        }
    }
    let token = generate_token();
    write_private(&path, &token).map_err(|source| StartupError::Io {
        what: format!("cannot write the admin token file {}", path.display()),
        source,
    })?;
    tracing::info!(file = %path.display(), "generated an admin token (mode 0600); read it from the file");
    Ok(Some(token))
}

fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes the lease of the database at `url` if no other node holds it.
async fn try_lease(url: &str) -> Result<Option<Lease>, StoreError> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || Lease::try_acquire(&url))
        .await
        .map_err(|err| StoreError::Engine(format!("taking the lease: {err}")))?
}

/// A follower's wait for the lease of the database at `url`, until the active node lets go.
///
/// # Errors
/// The database refuses this node (a wrong password, a missing database).
pub(crate) async fn take_over(config: &Config, url: &str) -> Result<Lease, StartupError> {
    let lease = Lease::acquire_when_free(url)
        .await
        .map_err(|source| StartupError::Store {
            location: config.store_location(),
            source,
        })?;
    tracing::info!("took over the lease: this node is the active one now");
    Ok(lease)
}

/// Where the other nodes reach this one, listening on `local`: `[store] advertise`, or the
/// listener's address, with a wildcard IP (`0.0.0.0`, `::`) replaced by the host's name.
pub(crate) fn advertised_address(config: &Config, local: std::net::SocketAddr) -> String {
    if let Some(advertise) = &config.store.advertise {
        return advertise.clone();
    }
    if !local.ip().is_unspecified() {
        return local.to_string();
    }
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{host}:{}", local.port())
}

/// Publishes `lease`'s holder address and holds it until shutdown (see [`hold_lease`]).
/// A moment without the database is waited out: the write is the same when repeated.
pub(crate) async fn serve_lease(
    config: &Config,
    lease: Lease,
    address: &str,
    supervisor: &mut Supervisor,
) -> Result<(), StartupError> {
    let mut attempts = 0;
    while let Err(source) = lease.publish(address) {
        attempts += 1;
        if attempts == PUBLISH_ATTEMPTS || !matches!(source, StoreError::Unreachable(_)) {
            return Err(StartupError::Store {
                location: config.store_location(),
                source,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    tracing::info!(%address, "serving as the active node: the other nodes relay here");
    supervisor.spawn("database lease", hold_lease(lease, supervisor.shutdown()));
    Ok(())
}

/// How often [`serve_lease`] tries to publish the address while the database does not answer.
const PUBLISH_ATTEMPTS: u32 = 20;

/// Holds the lease until shutdown; returns early, which stops the service, if the lease is
/// lost (its database session ended): another node may take over, so this one must not go on.
async fn hold_lease(lease: Lease, mut shutdown: Shutdown) -> Result<(), String> {
    tokio::select! {
        () = shutdown.wait() => Ok(()),
        () = lease.lost() => {
            tracing::error!("lost the database lease (its session ended): stopping so that another node can take over");
            Err("the database lease was lost".into())
        }
    }
}

/// Makes the data directory readable by its owner only: the directory 0700, and what
/// callbackd keeps in it (the database directory, its files, the token) 0700 / 0600. Other
/// files an operator put there are left alone; inside a 0700 directory nobody else reaches
/// them anyway, and neither can anyone reach files sled creates later.
/// `db_dir` is `None` when the data is not in the data directory (PostgreSQL).
fn make_private(data_dir: &Path, db_dir: Option<&Path>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private_dir = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(data_dir, private_dir.clone())?;
        if let Some(db_dir) = db_dir {
            std::fs::set_permissions(db_dir, private_dir)?;
            for entry in std::fs::read_dir(db_dir)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (data_dir, db_dir);
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartupError> {
    let io_err = |source| StartupError::Io {
        what: format!(
            "cannot listen on {addr} (is another process using it? choose another with --listen)"
        ),
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io_err)?;
    socket.set_reuseaddr(true).map_err(io_err)?;
    socket.bind(addr).map_err(io_err)?;
    socket.listen(LISTEN_BACKLOG).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_services_file_is_valid() {
        // The built-in demo: the binary started from any directory serves these.
        let (services, source) = read_services(
            &SeedFile::Demo("/nonexistent/services.toml".into()),
            &["StatServer".to_string()],
        )
        .unwrap();
        assert_eq!(source, "the built-in demo");
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        for expected in [
            "chat-delay",
            "chat-immediate",
            "request-chat",
            "request-chat-poll",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
    }

    #[test]
    fn the_shipped_agents_file_is_valid_and_has_ready_agents() {
        let (agents, source) = read_agents(
            &SeedFile::Demo("/nonexistent/agents.toml".into()),
            Timestamp::from_millis(0),
        )
        .unwrap();
        assert_eq!(source, "the built-in demo");
        assert!(agents.len() >= 4);
        assert!(agents.iter().any(|a| a.state == AgentState::Ready));
        assert!(agents
            .iter()
            .any(|a| a.config.groups.contains(&"Billing".to_string())));
    }

    #[test]
    fn a_generated_token_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = resolve_admin_token(&config).unwrap().unwrap();
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(config.admin_token_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = resolve_admin_token(&config).unwrap().unwrap();
        assert_eq!(first, second, "the token file is reused across restarts");
    }
}
