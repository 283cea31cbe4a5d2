//! Signing in and out, for both portals: `GET`/`POST /admin/login` and `/agent/login`,
//! `POST /admin/logout`. A good sign-in sets the portal's session cookie and returns to the
//! page asked for (only a path of that portal, so the form cannot send anyone elsewhere).

use askama::Template;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{render, see_other};
use crate::app::accounts::{self, Portal, SignInError};
use crate::app::sessions::Session;
use crate::app::AppState;
use crate::http::auth;
use crate::http::form::{self, Fields, Json};
use crate::http::with_state;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    title: &'static str,
    action: &'static str,
    next: String,
    username: String,
    error: Option<String>,
    /// No administrator exists yet: say how to sign in first.
    first_administrator: bool,
    token_username: &'static str,
}

/// The sign-in page and form of `portal`, and the console's sign-out.
pub fn routes(state: AppState, portal: Portal) -> warp::filters::BoxedFilter<(Response,)> {
    login_page(state.clone(), portal)
        .or(login_submit(state.clone(), portal))
        .unify()
        .or(logout(state.clone(), portal))
        .unify()
        .or(session_info(state, portal))
        .unify()
        .boxed()
}

/// `/<portal>/<page>` exactly: `/admin/login`, `/agent/session`, ...
fn page_path(
    portal: Portal,
    page: &'static str,
) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let prefix = match portal {
        Portal::Console => "admin",
        Portal::Desktop => "agent",
    };
    warp::path(prefix)
        .and(warp::path(page))
        .and(warp::path::end())
}

/// GET /admin/login (or /agent/login)
fn login_page(
    state: AppState,
    portal: Portal,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    page_path(portal, "login")
        .and(warp::get())
        .and(auth::optional_session(&state, portal))
        .and(with_state(state))
        .and(form::query_fields())
        .map(
            move |session: Option<Session>, state: AppState, fields: Fields| {
                let next = safe_next(portal, form::last(&fields, "next").unwrap_or_default());
                if session.is_some() {
                    return see_other(&next);
                }
                page(&state, portal, StatusCode::OK, next, String::new(), None)
            },
        )
}

/// POST /admin/login (or /agent/login), form fields `username`, `password`, `next`
fn login_submit(
    state: AppState,
    portal: Portal,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    page_path(portal, "login")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(form::fields(state.settings.max_body_bytes, Json::Refused))
        .then(move |state: AppState, fields: Fields| async move {
            let username = form::last(&fields, "username").unwrap_or_default().trim().to_string();
            let password = form::last(&fields, "password").unwrap_or_default();
            let next = safe_next(portal, form::last(&fields, "next").unwrap_or_default());
            match accounts::sign_in(&state, &username, password, portal).await {
                Ok(session) => {
                    tracing::info!(user = %session.principal.username, role = %session.principal.role, ?portal, "signed in");
                    let mut response = see_other(&next);
                    set_cookie(
                        &mut response,
                        &auth::session_cookie(portal, &session.token, state.settings.secure_cookies),
                    );
                    response
                }
                Err(err) => {
                    let status = match &err {
                        SignInError::Incorrect => StatusCode::UNAUTHORIZED,
                        SignInError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                        SignInError::WrongPortal(_) => StatusCode::FORBIDDEN,
                        SignInError::Failed(inner) => {
                            tracing::error!(error = %inner, "sign-in failed");
                            StatusCode::SERVICE_UNAVAILABLE
                        }
                    };
                    let message = match &err {
                        SignInError::Failed(_) => "Signing in failed on the server; try again shortly.".to_string(),
                        other => other.to_string(),
                    };
                    let mut response = page(&state, portal, status, next, username, Some(message));
                    if let SignInError::Throttled(wait) = err {
                        response.headers_mut().insert(
                            header::RETRY_AFTER,
                            HeaderValue::from(wait.as_secs().max(1)),
                        );
                    }
                    response
                }
            }
        })
}

/// POST /admin/logout (or /agent/logout), form field `csrf`
fn logout(
    state: AppState,
    portal: Portal,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    page_path(portal, "logout")
        .and(warp::post())
        .and(auth::signed_form(&state, portal, None))
        .and(with_state(state))
        .and_then(
            move |session: Session, _fields: Fields, state: AppState| async move {
                sign_out(&state, &session);
                if let Err(err) = crate::app::presence::signed_out(&state, &session).await {
                    tracing::error!(error = %err, user = %session.principal.username, "could not log the agent out at sign-out");
                }
                let mut response = see_other(portal.login_path());
                set_cookie(
                    &mut response,
                    &auth::clear_cookie(portal, state.settings.secure_cookies),
                );
                Ok::<_, Rejection>(response)
            },
        )
}

/// GET /admin/session (or /agent/session): who is signed in, for the page's scripts
/// `{"username","role","agent"?,"csrf","idle_timeout_secs"}`; 401 without a session. Only
/// same-origin scripts can read it (no CORS), so handing them the CSRF token is safe.
fn session_info(
    state: AppState,
    portal: Portal,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    page_path(portal, "session")
        .and(warp::get())
        .and(auth::optional_session(&state, portal))
        .and(with_state(state))
        .map(|session: Option<Session>, state: AppState| match session {
            Some(session) => crate::http::reply::json(
                StatusCode::OK,
                &serde_json::json!({
                    "username": session.principal.username,
                    "role": session.principal.role.as_str(),
                    "agent": session.principal.agent_id,
                    "csrf": session.csrf,
                    "idle_timeout_secs": state.sessions.idle_timeout_secs(),
                }),
            ),
            None => crate::http::ApiError::Unauthorized("not signed in".into()).into_response(),
        })
}

/// Ends `session` (sign-out).
pub fn sign_out(state: &AppState, session: &Session) {
    state.sessions.end(&session.token);
    tracing::info!(user = %session.principal.username, "signed out");
}

/// Adds a `Set-Cookie` header.
pub fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn page(
    state: &AppState,
    portal: Portal,
    status: StatusCode,
    next: String,
    username: String,
    error: Option<String>,
) -> Response {
    let first_administrator = portal == Portal::Console
        && state.settings.admin_token.is_some()
        && accounts::needs_first_administrator(state).unwrap_or(false);
    let title = match portal {
        Portal::Console => "callbackd Service Management",
        Portal::Desktop => "callbackd Agent Desktop",
    };
    render(
        status,
        &LoginPage {
            title,
            action: portal.login_path(),
            next,
            username,
            error,
            first_administrator,
            token_username: accounts::TOKEN_USERNAME,
        },
    )
}

/// `next` if it is a path of `portal`'s own pages, else the portal's home: never another
/// site (`//evil.example`) and never the other portal.
fn safe_next(portal: Portal, next: &str) -> String {
    let home = portal.home_path();
    let ok = next.starts_with(home)
        && !next.contains("//")
        && !next.contains('\\')
        && !next.contains("/login")
        && next.chars().all(|c| c.is_ascii_graphic());
    if ok {
        next.to_string()
    } else {
        home.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_portal() {
        let table = [
            (
                "/admin/callbacks?state=QUEUED",
                "/admin/callbacks?state=QUEUED",
            ),
            ("", "/admin/"),
            ("//evil.example/admin/", "/admin/"),
            ("https://evil.example/", "/admin/"),
            ("/agent/", "/admin/"),
            ("/admin//evil", "/admin/"),
            ("/admin/login", "/admin/"),
        ];
        for (given, expected) in table {
            assert_eq!(safe_next(Portal::Console, given), expected, "{given}");
        }
        assert_eq!(safe_next(Portal::Desktop, "/agent/"), "/agent/");
    }
}
