//! The `callbackd` binary: parses the command line, loads the configuration, and runs one
//! command. All behaviour lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use callbackd::config::{Config, Overrides};
use callbackd::store::Store;
use callbackd::App;
use clap::{Parser, Subcommand, ValueEnum};

/// Default location of the optional config file.
const DEFAULT_CONFIG: &str = "data/callbackd.toml";

#[derive(Debug, Parser)]
#[command(
    name = "callbackd",
    about = "Callback and chat routing with the GMS API",
    disable_version_flag = true
)]
struct Cli {
    /// Print the version and the database schema version it writes, then exit.
    #[arg(long, short = 'V')]
    version: bool,
    /// Config file (TOML). Default: data/callbackd.toml if it exists.
    #[arg(long, global = true, env = "CALLBACKD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Directory for the database and the admin token.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Configured services loaded into a new database (default: data/services.toml if it
    /// exists, else the built-in demo).
    #[arg(long, global = true)]
    services_file: Option<PathBuf>,
    /// Agents loaded into a new database (default: data/agents.toml if it exists, else the
    /// built-in demo).
    #[arg(long, global = true)]
    agents_file: Option<PathBuf>,
    /// Start a new database with no configured services and no agents.
    #[arg(long, global = true)]
    no_demo: bool,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending data migrations and exit.
    Migrate,
    /// Validate the configuration and the configured-services file, then exit.
    CheckConfig,
    /// Manage the users of the console and the agent desktop (works while the server runs).
    User {
        #[command(subcommand)]
        command: UserSubcommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserSubcommand {
    /// Create a user; asks for the password (or reads it with --password-stdin).
    Add {
        /// The sign-in name.
        name: String,
        /// administrator, supervisor, monitor or agent.
        #[arg(long)]
        role: String,
        /// The agent id an agent account acts as.
        #[arg(long)]
        agent: Option<String>,
        /// Read the password from one line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Remove a user (their sessions end).
    Remove {
        /// The sign-in name.
        name: String,
    },
    /// Set a user's password (their sessions end).
    Passwd {
        /// The sign-in name.
        name: String,
        /// Read the password from one line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!(
            "callbackd {} (database schema {}, PostgreSQL schema {})",
            env!("CARGO_PKG_VERSION"),
            callbackd::store::migrate::latest_version(),
            callbackd::store::postgres::latest_version()
        );
        return ExitCode::SUCCESS;
    }
    init_logging(cli.log_format);
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("callbackd: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("callbackd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(config)),
        Command::Migrate => migrate(&config),
        Command::CheckConfig => check_config(&config),
        Command::User { command } => runtime.block_on(user(&config, command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("callbackd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let (file, required) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let overrides = Overrides {
        listen: cli.listen.clone(),
        data_dir: cli.data_dir.clone(),
        services_file: cli.services_file.clone(),
        agents_file: cli.agents_file.clone(),
        no_demo: cli.no_demo,
    };
    Config::load(Some(&file), required, std::env::vars(), &overrides).map_err(|e| e.to_string())
}

async fn serve(config: Config) -> Result<(), String> {
    let app = App::build(config).await.map_err(|e| e.to_string())?;
    let addr = app.local_addr();
    tracing::info!(%addr, "callbackd listening on http://{addr}");
    app.run_until_stopped(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("callbackd stopped");
    Ok(())
}

async fn user(config: &Config, command: UserSubcommand) -> Result<(), String> {
    use callbackd::cli::{PasswordSource, UserCommand};
    let source = |stdin: bool| {
        if stdin {
            PasswordSource::Stdin
        } else {
            PasswordSource::Prompt
        }
    };
    let (command, password) = match command {
        UserSubcommand::Add {
            name,
            role,
            agent,
            password_stdin,
        } => (
            UserCommand::Add {
                username: name,
                role,
                agent,
            },
            source(password_stdin),
        ),
        UserSubcommand::List => (UserCommand::List, PasswordSource::Stdin),
        UserSubcommand::Remove { name } => (
            UserCommand::Remove { username: name },
            PasswordSource::Stdin,
        ),
        UserSubcommand::Passwd {
            name,
            password_stdin,
        } => (
            UserCommand::Passwd { username: name },
            source(password_stdin),
        ),
    };
    let output = callbackd::cli::run_user_command(config, command, password).await?;
    println!("{output}");
    Ok(())
}

fn migrate(config: &Config) -> Result<(), String> {
    let location = config.store_location();
    let store = Store::open_with(&config.db_dir(), &config.store)
        .map_err(|e| format!("{location}: {e}"))?;
    if store.migrations_applied().is_empty() {
        println!("database {location} is up to date");
    }
    for name in store.migrations_applied() {
        println!("applied {name}");
    }
    let version = store.schema_version().map_err(|e| e.to_string())?;
    println!("schema version {version}");
    Ok(())
}

fn check_config(config: &Config) -> Result<(), String> {
    let (services, source) =
        callbackd::startup::read_services(&config.services_file, &config.stat_servers)
            .map_err(|e| e.to_string())?;
    println!(
        "configuration is valid: listen {}, data in {}, {} configured services from {}",
        config.listen,
        config.data_dir.display(),
        services.len(),
        source
    );
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        // Interactive stop.
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        // Service managers and `kill`.
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
