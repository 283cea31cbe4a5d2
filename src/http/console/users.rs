//! The Users page (`/admin/users`, administrators only): list, add, set a password, remove.

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{render, see_other, Layout};
use crate::app::accounts::{self, NewUser, Portal};
use crate::app::sessions::Session;
use crate::app::{AppError, AppState};
use crate::domain::account::{Action, Role};
use crate::http::auth::{page_session, signed_form};
use crate::http::error::ApiError;
use crate::http::form::{self, Fields};
use crate::http::with_state;

/// One row of the table.
struct UserRow {
    username: String,
    role: &'static str,
    agent_id: Option<String>,
    created: String,
    sessions: usize,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    agents: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// The Users page and its forms.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    users_page(state.clone())
        .or(users_add(state.clone()))
        .unify()
        .or(user_password(state.clone()))
        .unify()
        .or(user_delete(state))
        .unify()
        .boxed()
}

/// GET /admin/users
fn users_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "users")
        .and(warp::get())
        .and(page_session(
            &state,
            Portal::Console,
            Some(Action::ManageUsers),
        ))
        .and(with_state(state))
        .and(form::query_fields())
        .map(|session: Session, state: AppState, fields: Fields| {
            let notice = fields.iter().find_map(|(k, v)| match k.as_str() {
                "added" => Some(format!("User {v} added.")),
                "removed" => Some(format!("User {v} removed.")),
                "password" => Some(format!("Password of {v} changed; their sessions ended.")),
                _ => None,
            });
            show(&state, &session, StatusCode::OK, notice, None)
        })
}

/// POST /admin/users (fields `csrf`, `username`, `role`, `agent`, `password`)
fn users_add(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "users")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ManageUsers),
        ))
        .and(with_state(state))
        .and_then(
            |session: Session, fields: Fields, state: AppState| async move {
                let user = NewUser {
                    username: field(&fields, "username"),
                    role: field(&fields, "role"),
                    agent_id: Some(field(&fields, "agent")),
                    password: field(&fields, "password"),
                };
                Ok::<_, Rejection>(match accounts::put_user(&state, user, false).await {
                    Ok(account) => see_other(&format!(
                        "/admin/users?added={}",
                        super::encode_component(account.username.as_str())
                    )),
                    Err(err) => failed(&state, &session, err),
                })
            },
        )
}

/// POST /admin/users/{name}/password (fields `csrf`, `password`)
fn user_password(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "users" / String / "password")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ManageUsers),
        ))
        .and(with_state(state))
        .and_then(
            |name: String, session: Session, fields: Fields, state: AppState| async move {
                Ok::<_, Rejection>(
                    match accounts::set_password(&state, &name, field(&fields, "password")).await {
                        Ok(()) => see_other(&format!(
                            "/admin/users?password={}",
                            super::encode_component(&name)
                        )),
                        Err(err) => failed(&state, &session, err),
                    },
                )
            },
        )
}

/// POST /admin/users/{name}/delete (field `csrf`)
fn user_delete(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "users" / String / "delete")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ManageUsers),
        ))
        .and(with_state(state))
        .and_then(
            |name: String, session: Session, _fields: Fields, state: AppState| async move {
                Ok::<_, Rejection>(match accounts::remove_user(&state, &name).await {
                    Ok(()) => see_other(&format!(
                        "/admin/users?removed={}",
                        super::encode_component(&name)
                    )),
                    Err(err) => failed(&state, &session, err),
                })
            },
        )
}

/// The page again with the error, and the status the API would give.
fn failed(state: &AppState, session: &Session, err: AppError) -> Response {
    let api = ApiError::from(err);
    let message = api.clone().into_message();
    show(state, session, api.status(), None, Some(message))
}

fn show(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let signed_in = state.sessions.list();
    let users = match accounts::list_users(state) {
        Ok(users) => users,
        Err(err) => {
            let api = ApiError::from(err);
            return super::html(api.status(), api.into_message());
        }
    };
    let agents = state
        .store
        .agents()
        .map(|agents| agents.into_iter().map(|a| a.config.id).collect())
        .unwrap_or_default();
    render(
        status,
        &UsersPage {
            layout: Layout::new(session, "/admin/users"),
            users: users
                .into_iter()
                .map(|a| UserRow {
                    sessions: signed_in
                        .iter()
                        .filter(|s| s.principal.username == a.username.as_str())
                        .count(),
                    username: a.username.as_str().to_string(),
                    role: a.role.title(),
                    agent_id: a.agent_id,
                    created: a.created_at.to_iso(),
                })
                .collect(),
            roles: Role::ALL.iter().map(|r| (r.as_str(), r.title())).collect(),
            agents,
            notice,
            error,
        },
    )
}

/// The last value of field `name`, owned (empty when absent).
fn field(fields: &Fields, name: &str) -> String {
    form::last(fields, name).unwrap_or_default().to_string()
}
