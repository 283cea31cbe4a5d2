//! The users API (`/genesys/1/admin/users...`): what `callbackd user ...` calls while the
//! server runs (sled lets one process open the database), and scripts. Bearer token, or an
//! administrator's console session.

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{api_caller, Caller};
use super::error::respond;
use super::{form, reply, with_state};
use crate::app::accounts::{self, NewUser, Portal};
use crate::app::AppState;
use crate::domain::account::{Account, Action};

/// A user as the API shows it (never the hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    username: String,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    created: String,
}

impl From<Account> for UserView {
    fn from(account: Account) -> Self {
        Self {
            username: account.username.as_str().to_string(),
            role: account.role.as_str(),
            agent: account.agent_id,
            created: account.created_at.to_iso(),
        }
    }
}

/// `POST /genesys/1/admin/users` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddBody {
    username: String,
    role: String,
    #[serde(default)]
    agent: Option<String>,
    password: String,
}

/// `POST /genesys/1/admin/users/{name}/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

const PORTALS: &[Portal] = &[Portal::Console];

/// The users API.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    users_list(state.clone())
        .or(users_add(state.clone()))
        .unify()
        .or(user_password(state.clone()))
        .unify()
        .or(user_delete(state))
        .unify()
        .boxed()
}

/// GET /genesys/1/admin/users
#[utoipa::path(get, path = "/genesys/1/admin/users", tag = "users", security(("admin_token" = []), ("console_session" = [])),
    responses((status = 200, description = "Every user", body = UserList)))]
fn users_list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "users")
        .and(warp::get())
        .and(api_caller(&state, PORTALS, Action::ManageUsers))
        .and(with_state(state))
        .map(|_: Caller, state: AppState| {
            respond(accounts::list_users(&state), |users| {
                let users: Vec<UserView> = users.into_iter().map(UserView::from).collect();
                reply::json(StatusCode::OK, &serde_json::json!({ "users": users }))
            })
        })
}

/// POST /genesys/1/admin/users `{"username","role","agent"?,"password"}`
#[utoipa::path(post, path = "/genesys/1/admin/users", tag = "users", security(("admin_token" = []), ("console_session" = [])),
    request_body = AddBody,
    responses((status = 201, description = "Added", body = UserView)))]
fn users_add(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "users")
        .and(warp::post())
        .and(api_caller(&state, PORTALS, Action::ManageUsers))
        .and(with_state(state.clone()))
        .and(form::json_body::<AddBody>(state.settings.max_body_bytes))
        .then(|_: Caller, state: AppState, body: AddBody| async move {
            let user = NewUser {
                username: body.username,
                role: body.role,
                agent_id: body.agent,
                password: body.password,
            };
            respond(accounts::put_user(&state, user, false).await, |account| {
                reply::json(StatusCode::CREATED, &UserView::from(account))
            })
        })
}

/// POST /genesys/1/admin/users/{name}/password `{"password"}`
#[utoipa::path(post, path = "/genesys/1/admin/users/{name}/password", tag = "users", security(("admin_token" = []), ("console_session" = [])),
    params(("name" = String, Path, description = "The username")),
    request_body = PasswordBody,
    responses((status = 200, description = "Changed", body = Username)))]
fn user_password(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "users" / String / "password")
        .and(warp::post())
        .and(api_caller(&state, PORTALS, Action::ManageUsers))
        .and(with_state(state.clone()))
        .and(form::json_body::<PasswordBody>(
            state.settings.max_body_bytes,
        ))
        .then(
            |name: String, _: Caller, state: AppState, body: PasswordBody| async move {
                respond(
                    accounts::set_password(&state, &name, body.password).await,
                    |()| reply::json(StatusCode::OK, &serde_json::json!({ "username": name })),
                )
            },
        )
}

/// DELETE /genesys/1/admin/users/{name}
#[utoipa::path(delete, path = "/genesys/1/admin/users/{name}", tag = "users", security(("admin_token" = []), ("console_session" = [])),
    params(("name" = String, Path, description = "The username")),
    responses((status = 200, description = "Removed", body = Username)))]
fn user_delete(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "admin" / "users" / String)
        .and(warp::delete())
        .and(api_caller(&state, PORTALS, Action::ManageUsers))
        .and(with_state(state))
        .then(|name: String, _: Caller, state: AppState| async move {
            respond(accounts::remove_user(&state, &name).await, |()| {
                reply::json(StatusCode::OK, &serde_json::json!({ "username": name }))
            })
        })
}

/// `{"users": [...]}` ([`users_list`]).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct UserList {
    users: Vec<UserView>,
}

/// `{"username": "<name>"}`.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
struct Username {
    username: String,
}
