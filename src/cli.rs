//! `callbackd user ...`: managing console and desktop users from the command line.
//!
//! sled lets one process open the database, so a subcommand cannot open it while the server
//! runs. Each command therefore opens the database itself when it can, and otherwise asks the
//! running server through its users API (`/genesys/1/admin/users`) with the admin token from
//! the configuration or `<data_dir>/admin_token`. Either way the same use cases in
//! `app::accounts` do the work.

use std::io::BufRead;

use serde_json::json;

use crate::app::accounts::{self, NewUser};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::{Store, StoreError};

/// One `user` subcommand.
#[derive(Debug, Clone)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// The name.
        username: String,
        /// The role.
        role: String,
        /// The agent of an agent account.
        agent: Option<String>,
    },
    /// List users.
    List,
    /// Remove a user.
    Remove {
        /// The name.
        username: String,
    },
    /// Set a user's password.
    Passwd {
        /// The name.
        username: String,
    },
}

impl UserCommand {
    fn needs_password(&self) -> bool {
        matches!(self, UserCommand::Add { .. } | UserCommand::Passwd { .. })
    }
}

/// Where a new password comes from.
#[derive(Debug, Clone, Copy)]
pub enum PasswordSource {
    /// One line of standard input (`--password-stdin`), for scripts.
    Stdin,
    /// Asked twice on the terminal, not echoed.
    Prompt,
}

/// Runs `command` and returns what to print.
///
/// # Errors
/// A message for the user: a bad field, an unknown user, no database and no server, ...
pub async fn run_user_command(
    config: &Config,
    command: UserCommand,
    source: PasswordSource,
) -> Result<String, String> {
    let password = if command.needs_password() {
        Some(read_password(source)?)
    } else {
        None
    };
    // sled lets one process open its database: while the server runs, ask the server. A
    // PostgreSQL database is open to every node and to this command alike.
    match Store::open_with(&config.db_dir(), &config.store) {
        Ok(store) => direct(&store, command, password).await,
        Err(StoreError::Locked(_)) => through_server(config, command, password).await,
        Err(err) => Err(format!("{}: {err}", config.store_location())),
    }
}

async fn direct(
    store: &Store,
    command: UserCommand,
    password: Option<String>,
) -> Result<String, String> {
    let text = |e: crate::app::AppError| e.to_string();
    match command {
        UserCommand::Add {
            username,
            role,
            agent,
        } => {
            let user = NewUser {
                username,
                role,
                agent_id: agent,
                password: password.unwrap_or_default(),
            };
            let (account, _) = accounts::put_user_in(store, user, false, SystemClock.now())
                .await
                .map_err(text)?;
            Ok(format!(
                "added {} ({})",
                account.username,
                account.role.as_str()
            ))
        }
        UserCommand::List => {
            let users = store.accounts().map_err(|e| e.to_string())?;
            Ok(list_text(users.iter().map(|a| {
                (
                    a.username.as_str().to_string(),
                    a.role.as_str().to_string(),
                    a.agent_id.clone(),
                )
            })))
        }
        UserCommand::Remove { username } => {
            accounts::remove_user_in(store, &username)
                .await
                .map_err(text)?;
            Ok(format!("removed {username}"))
        }
        UserCommand::Passwd { username } => {
            accounts::set_password_in(store, &username, password.unwrap_or_default())
                .await
                .map_err(text)?;
            Ok(format!("password of {username} changed"))
        }
    }
}

async fn through_server(
    config: &Config,
    command: UserCommand,
    password: Option<String>,
) -> Result<String, String> {
    let token = match &config.admin_token {
        Some(token) => token.clone(),
        None => std::fs::read_to_string(config.admin_token_file())
            .map(|t| t.trim().to_string())
            .map_err(|err| {
                format!(
                    "the database is in use by the running server, and its admin token ({}) cannot be read: {err}",
                    config.admin_token_file().display()
                )
            })?,
    };
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let base = format!("http://{addr}/genesys/1/admin/users");
    let client = reqwest::Client::new();
    let request = match &command {
        UserCommand::Add {
            username,
            role,
            agent,
        } => client.post(&base).json(&json!({
            "username": username, "role": role, "agent": agent, "password": password,
        })),
        UserCommand::List => client.get(&base),
        UserCommand::Remove { username } => {
            client.delete(format!("{base}/{}", path_segment(username)))
        }
        UserCommand::Passwd { username } => client
            .post(format!("{base}/{}/password", path_segment(username)))
            .json(&json!({ "password": password })),
    };
    let response = request.bearer_auth(token).send().await.map_err(|err| {
        format!("the database is in use, and the server at http://{addr} does not answer: {err}")
    })?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        let message = body["message"].as_str().unwrap_or("no message");
        return Err(format!("the server refused ({status}): {message}"));
    }
    Ok(match command {
        UserCommand::Add { username, role, .. } => {
            format!("added {username} ({})", role.to_ascii_lowercase())
        }
        UserCommand::List => list_text(body["users"].as_array().into_iter().flatten().map(|u| {
            (
                u["username"].as_str().unwrap_or_default().to_string(),
                u["role"].as_str().unwrap_or_default().to_string(),
                u["agent"].as_str().map(str::to_string),
            )
        })),
        UserCommand::Remove { username } => format!("removed {username}"),
        UserCommand::Passwd { username } => format!("password of {username} changed"),
    })
}

fn list_text(users: impl Iterator<Item = (String, String, Option<String>)>) -> String {
    let lines: Vec<String> = users
        .map(|(name, role, agent)| match agent {
            Some(agent) => format!("{name}\t{role}\tagent {agent}"),
            None => format!("{name}\t{role}"),
        })
        .collect();
    if lines.is_empty() {
        "no users".to_string()
    } else {
        lines.join("\n")
    }
}

/// User names are plain (letters, digits, `.`, `_`, `-`, `@`); anything else is refused by
/// the server, so only encode what could break the path.
fn path_segment(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32 & 0xff)
            }
        })
        .collect()
}

fn read_password(source: PasswordSource) -> Result<String, String> {
    match source {
        PasswordSource::Stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|err| format!("cannot read the password from standard input: {err}"))?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        }
        PasswordSource::Prompt => {
            let first = rpassword::prompt_password("Password: ").map_err(|err| {
                format!("cannot read the password from the terminal ({err}): use --password-stdin")
            })?;
            let second = rpassword::prompt_password("Password again: ")
                .map_err(|err| format!("cannot read the password from the terminal: {err}"))?;
            if first != second {
                return Err("the two passwords differ: nothing was changed".into());
            }
            Ok(first)
        }
    }
}
