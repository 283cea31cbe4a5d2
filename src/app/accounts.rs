//! Users of the console and the agent desktop: adding, listing, removing, changing passwords,
//! and signing in. Passwords are hashed with argon2id (the `argon2` crate's defaults, OWASP's
//! recommended parameters) on the blocking pool, since a hash costs tens of milliseconds of CPU.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

use super::sessions::{constant_time_eq, Principal, Session};
use super::{AppError, AppState};
use crate::domain::account::{self, Account, Role, Username};
use crate::domain::options::FieldError;
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError};

/// The user name that signs in with the admin token while no administrator account exists.
pub const TOKEN_USERNAME: &str = "admin";

/// The message for a wrong name or password, as GMS words it; it never says which was wrong.
pub const INCORRECT: &str = "Incorrect username and/or password.";

/// Where someone signs in: the console takes every role but Agent, the desktop only Agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Portal {
    /// `/admin/login`.
    Console,
    /// `/agent/login`.
    Desktop,
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown name or wrong password.
    #[error("{INCORRECT}")]
    Incorrect,
    /// Too many failures for this name lately; try again after the wait.
    #[error("too many failed sign-ins for this name: try again in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    /// A good password for the other page (an agent at the console, or the reverse).
    #[error("{0}")]
    WrongPortal(&'static str),
    /// Storage or hashing failed.
    #[error(transparent)]
    Failed(#[from] AppError),
}

/// A user to create or replace.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The sign-in name.
    pub username: String,
    /// `administrator`, `supervisor`, `monitor` or `agent`.
    pub role: String,
    /// The agent id of an agent account.
    pub agent_id: Option<String>,
    /// The password in clear; hashed before it is stored.
    pub password: String,
}

/// Creates a user (`replace` false: the name must be new) or replaces one (its sessions end).
///
/// # Errors
/// A bad field (named), a name taken when `replace` is false, an agent account naming an
/// unknown agent, or storage failed.
pub async fn put_user(state: &AppState, user: NewUser, replace: bool) -> Result<Account, AppError> {
    let (account, replaced) = put_user_in(&state.store, user, replace, state.clock.now()).await?;
    if replaced {
        // Its role or binding may have changed: sign it in again under the new terms.
        state.sessions.end_user(account.username.as_str());
    }
    Ok(account)
}

/// Every user, by name.
///
/// # Errors
/// Storage failed.
pub fn list_users(state: &AppState) -> Result<Vec<Account>, AppError> {
    Ok(state.store.accounts()?)
}

/// Removes a user and ends its sessions.
///
/// # Errors
/// No such user (404), or storage failed.
pub async fn remove_user(state: &AppState, username: &str) -> Result<(), AppError> {
    remove_user_in(&state.store, username).await?;
    state.sessions.end_user(username);
    Ok(())
}

/// Sets a user's password and ends its sessions.
///
/// # Errors
/// No such user (404), a bad password (named), or storage failed.
pub async fn set_password(
    state: &AppState,
    username: &str,
    password: String,
) -> Result<(), AppError> {
    set_password_in(&state.store, username, password).await?;
    state.sessions.end_user(username);
    Ok(())
}

/// [`put_user`] on a store with no server around it (`callbackd user add` while the server
/// is stopped); also says whether an account was replaced.
///
/// # Errors
/// As [`put_user`].
pub async fn put_user_in(
    store: &Store,
    user: NewUser,
    replace: bool,
    now: Timestamp,
) -> Result<(Account, bool), AppError> {
    let username = Username::parse(&user.username)?;
    let role = Role::parse(&user.role)?;
    let agent_id = user
        .agent_id
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    account::check_agent_binding(role, agent_id.as_deref())?;
    account::check_new_password(&user.password)?;
    if let Some(agent) = &agent_id {
        if store.agent(agent)?.is_none() {
            return Err(FieldError::new(
                "agent",
                format!(
                    "no agent has the id `{agent}`: list them with GET /genesys/1/admin/agents"
                ),
            )
            .into());
        }
    }
    let existing = store.account(username.as_str())?;
    if existing.is_some() && !replace {
        return Err(FieldError::new(
            "username",
            format!("a user named `{username}` exists: remove it first, or change its password with `callbackd user passwd`"),
        )
        .into());
    }
    let account = Account {
        password_hash: hash_password(user.password).await?,
        created_at: existing.as_ref().map_or(now, |a| a.created_at),
        username,
        role,
        agent_id,
    };
    store.put_account(&account)?.durable().await?;
    Ok((account, existing.is_some()))
}

/// [`remove_user`] on a store with no server around it.
///
/// # Errors
/// As [`remove_user`].
pub async fn remove_user_in(store: &Store, username: &str) -> Result<(), AppError> {
    let Some(deleted) = store.delete_account(username)?.if_changed() else {
        return Err(AppError::NotFound(format!("no user is named `{username}`")));
    };
    deleted.durable().await?;
    Ok(())
}

/// [`set_password`] on a store with no server around it.
///
/// # Errors
/// As [`set_password`].
pub async fn set_password_in(
    store: &Store,
    username: &str,
    password: String,
) -> Result<(), AppError> {
    let mut account = store
        .account(username)?
        .ok_or_else(|| AppError::NotFound(format!("no user is named `{username}`")))?;
    account::check_new_password(&password)?;
    account.password_hash = hash_password(password).await?;
    store.put_account(&account)?.durable().await?;
    Ok(())
}

/// Whether no administrator account exists yet (the admin token then signs in as one).
///
/// # Errors
/// Storage failed.
pub fn needs_first_administrator(state: &AppState) -> Result<bool, AppError> {
    Ok(!has_administrator(&state.store)?)
}

/// Whether an administrator account exists (start-up asks before there is an [`AppState`]).
///
/// # Errors
/// Storage failed.
pub fn has_administrator(store: &Store) -> Result<bool, StoreError> {
    Ok(store
        .accounts()?
        .iter()
        .any(|a| a.role == Role::Administrator))
}

/// Signs `username` in at `portal` and starts a session.
///
/// Five failures for one name within a minute refuse further tries for that name, whatever
/// the password, until the minute has passed. While no administrator account exists, the
/// name [`TOKEN_USERNAME`] with the admin token as password signs in as an administrator.
///
/// # Errors
/// See [`SignInError`].
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    portal: Portal,
) -> Result<Session, SignInError> {
    let now = state.clock.now();
    let username = username.trim();
    if let Some(wait) = state.sessions.throttled(username, now) {
        return Err(SignInError::Throttled(wait));
    }
    let principal = match state.store.account(username).map_err(AppError::from)? {
        Some(account) => verify_password(account.password_hash.clone(), password.to_string())
            .await
            .then(|| Principal {
                username: account.username.as_str().to_string(),
                role: account.role,
                agent_id: account.agent_id,
            }),
        None => {
            // Spend the same time as for a real account, so a stranger cannot tell names
            // that exist from names that do not.
            let _ = verify_password(dummy_hash().to_string(), password.to_string()).await;
            token_principal(state, username, password, portal)?
        }
    };
    let Some(principal) = principal else {
        state.sessions.record_failure(username, now);
        return Err(SignInError::Incorrect);
    };
    match (portal, principal.role) {
        (Portal::Console, Role::Agent) => {
            return Err(SignInError::WrongPortal(
                "this is an agent's account: sign in at /agent/login",
            ))
        }
        (Portal::Desktop, role) if role != Role::Agent => {
            return Err(SignInError::WrongPortal(
                "only agent accounts sign in to the agent desktop: sign in to the console at /admin/login",
            ))
        }
        _ => {}
    }
    state.sessions.clear_failures(username);
    Ok(state.sessions.start(principal, now))
}

/// The admin-token sign-in, allowed only at the console and only while no administrator
/// account exists.
fn token_principal(
    state: &AppState,
    username: &str,
    password: &str,
    portal: Portal,
) -> Result<Option<Principal>, SignInError> {
    let Some(token) = &state.settings.admin_token else {
        return Ok(None);
    };
    let matches = portal == Portal::Console
        && username == TOKEN_USERNAME
        && constant_time_eq(password.as_bytes(), token.as_bytes());
    if !matches || !needs_first_administrator(state)? {
        return Ok(None);
    }
    Ok(Some(Principal {
        username: TOKEN_USERNAME.to_string(),
        role: Role::Administrator,
        agent_id: None,
    }))
}

/// Hashes a password with argon2id and a random salt, on the blocking pool.
async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt_bytes: [u8; 16] = rand::rng().random();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|message| AppError::Unavailable(format!("cannot hash the password: {message}")))
}

/// Whether `password` matches the PHC string `hash`; a malformed hash matches nothing.
async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows, with the default parameters, computed once.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt_bytes: [u8; 16] = rand::rng().random();
        SaltString::encode_b64(&salt_bytes)
            .ok()
            .and_then(|salt| {
                let secret: [u8; 32] = rand::rng().random();
                Argon2::default()
                    .hash_password(&secret, &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}
