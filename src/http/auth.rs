//! Who is calling the console, the agent desktop and their APIs: session cookies, CSRF tokens
//! and roles. Sessions themselves live in `app::sessions`; this module only reads and writes
//! the cookie and turns a missing or weak session into the right answer:
//!
//! - pages ([`page_session`]): 303 to the sign-in page without a session, a 403 page naming
//!   the role that would be allowed otherwise;
//! - JSON calls ([`api_caller`]): the admin bearer token as before, or a session whose role
//!   allows the action, with its CSRF token in `X-CSRF-Token` on every state change; errors
//!   are the usual GMS error bodies.
//!
//! The console and the desktop have a cookie each, so one browser can hold both sign-ins.

use warp::http::{HeaderMap, Method};
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::form::{self, Fields, Json};
use super::with_state;
use crate::app::accounts::Portal;
use crate::app::sessions::{constant_time_eq, Session};
use crate::app::AppState;
use crate::domain::account::{Action, Role};

/// The console's session cookie.
pub const CONSOLE_COOKIE: &str = "callbackd_console";
/// The agent desktop's session cookie.
pub const DESKTOP_COOKIE: &str = "callbackd_agent";
/// The header that carries the CSRF token on script calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field that carries the CSRF token on form posts.
pub const CSRF_FIELD: &str = "csrf";

impl Portal {
    /// The cookie of this portal's sessions.
    pub fn cookie(self) -> &'static str {
        match self {
            Portal::Console => CONSOLE_COOKIE,
            Portal::Desktop => DESKTOP_COOKIE,
        }
    }

    /// The sign-in page.
    pub fn login_path(self) -> &'static str {
        match self {
            Portal::Console => "/admin/login",
            Portal::Desktop => "/agent/login",
        }
    }

    /// Where a good sign-in lands.
    pub fn home_path(self) -> &'static str {
        match self {
            Portal::Console => "/admin/",
            Portal::Desktop => "/agent/",
        }
    }
}

/// Why a page cannot be shown to this caller; `recover` turns it into a redirect or a page.
#[derive(Debug)]
pub enum PageRejection {
    /// No live session: 303 to the sign-in page, which returns to `next` afterwards.
    SignIn {
        /// The portal whose sign-in page to use.
        portal: Portal,
        /// The path (and query) asked for.
        next: String,
    },
    /// Signed in, but the role does not allow the action: a 403 page that says which would.
    Forbidden {
        /// What was asked.
        action: Action,
        /// The caller's role.
        role: Role,
    },
    /// A state change without the session's CSRF token (or with a wrong one): 403.
    Csrf,
}

impl warp::reject::Reject for PageRejection {}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(portal: Portal, token: &str, secure: bool) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict{}",
        portal.cookie(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that clears a session cookie.
pub fn clear_cookie(portal: Portal, secure: bool) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        portal.cookie(),
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` among every `Cookie` header (HTTP/2 sends one per cookie).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(warp::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// The live session of `portal` in the request's cookie, if any (its idle time restarts).
pub fn optional_session(
    state: &AppState,
    portal: Portal,
) -> impl Filter<Extract = (Option<Session>,), Error = std::convert::Infallible> + Clone {
    with_state(state.clone())
        .and(warp::header::headers_cloned())
        .map(move |state: AppState, headers: HeaderMap| {
            let token = cookie_value(&headers, portal.cookie())?;
            state.sessions.touch(&token, state.clock.now())
        })
}

/// A page's session: signed in at `portal`, with a role that allows `action` (`None`: any
/// signed-in user of the portal). Put it after the path filters, so unknown paths stay 404.
pub fn page_session(
    state: &AppState,
    portal: Portal,
    action: Option<Action>,
) -> impl Filter<Extract = (Session,), Error = Rejection> + Clone {
    optional_session(state, portal)
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(
            move |session: Option<Session>, path: warp::path::FullPath, query: String| async move {
                let Some(session) = session else {
                    let mut next = path.as_str().to_string();
                    if !query.is_empty() {
                        next.push('?');
                        next.push_str(&query);
                    }
                    return Err(warp::reject::custom(PageRejection::SignIn { portal, next }));
                };
                if let Some(action) = action {
                    let role = session.principal.role;
                    if !role.allows(action) {
                        return Err(warp::reject::custom(PageRejection::Forbidden {
                            action,
                            role,
                        }));
                    }
                }
                Ok(session)
            },
        )
}

/// A form post from a page: its session (as [`page_session`]) and its fields, with the
/// session's CSRF token already checked, so that no handler can forget the check. Put it
/// after the path filters.
pub fn signed_form(
    state: &AppState,
    portal: Portal,
    action: Option<Action>,
) -> impl Filter<Extract = (Session, Fields), Error = Rejection> + Clone {
    page_session(state, portal, action)
        .and(form::fields(state.settings.max_body_bytes, Json::Refused))
        .and_then(|session: Session, fields: Fields| async move {
            check_form_csrf(&session, &fields)?;
            Ok::<_, Rejection>((session, fields))
        })
        .untuple_one()
}

/// Checks a form post's CSRF field against its session.
fn check_form_csrf(session: &Session, fields: &[(String, String)]) -> Result<(), Rejection> {
    let given = fields
        .iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.as_str());
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), session.csrf.as_bytes()) => Ok(()),
        _ => Err(warp::reject::custom(PageRejection::Csrf)),
    }
}

/// Who made an API call.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin bearer token: every right, every agent.
    Token,
    /// A signed-in user.
    Session(Session),
}

impl Caller {
    /// Whether this caller may act as agent `agent_id`: the token and console roles that
    /// allow `action` may; an agent's session only for its own id.
    pub fn may_act_as_agent(&self, agent_id: &str, action: Action) -> bool {
        match self {
            Caller::Token => true,
            Caller::Session(session) => match session.principal.role {
                Role::Agent => session.principal.agent_id.as_deref() == Some(agent_id),
                role => role.allows(action),
            },
        }
    }
}

/// The caller of a JSON API route: the admin bearer token, or a session of `portals` whose
/// cookie is present. A session's state changes (any method but GET and HEAD) must carry its
/// CSRF token in `X-CSRF-Token`. `action` is checked for console sessions by role; agent
/// sessions are checked by the route against the agent id (see [`Caller::may_act_as_agent`]).
/// Put it after the path filters.
pub fn api_caller(
    state: &AppState,
    portals: &'static [Portal],
    action: Action,
) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    with_state(state.clone())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and_then(move |state: AppState, method: Method, headers: HeaderMap| async move {
            // A script's token wins; a browser never sends one.
            if headers.contains_key(warp::http::header::AUTHORIZATION) {
                return bearer(&state, &headers).map(|()| Caller::Token);
            }
            let now = state.clock.now();
            let session = portals.iter().find_map(|portal| {
                cookie_value(&headers, portal.cookie())
                    .and_then(|token| state.sessions.touch(&token, now))
            });
            let Some(session) = session else {
                return Err(warp::reject::custom(ApiError::Unauthorized(
                    "send Authorization: Bearer <admin token>, or sign in first".into(),
                )));
            };
            if method != Method::GET && method != Method::HEAD {
                let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if !given.is_some_and(|t| constant_time_eq(t.as_bytes(), session.csrf.as_bytes())) {
                    return Err(warp::reject::custom(ApiError::Forbidden(
                        "a signed-in change needs the page's CSRF token in the X-CSRF-Token header".into(),
                    )));
                }
            }
            let role = session.principal.role;
            if role != Role::Agent && !role.allows(action) {
                return Err(warp::reject::custom(ApiError::Forbidden(format!(
                    "your role ({role}) cannot {}: a {} can",
                    action.describe(),
                    action.least_role()
                ))));
            }
            Ok(Caller::Session(session))
        })
}

/// Checks the admin bearer token (the same rules as the admin API: fails closed).
fn bearer(state: &AppState, headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(expected) = state
        .settings
        .admin_token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return Err(warp::reject::custom(ApiError::Forbidden(
            "the admin API is disabled because no admin token is configured: set admin_token or CALLBACKD_ADMIN_TOKEN".into(),
        )));
    };
    let mut values = headers.get_all(warp::http::header::AUTHORIZATION).iter();
    let value = values.next();
    if values.next().is_some() {
        return Err(warp::reject::custom(ApiError::BadRequest(
            "header `authorization` is given more than once: send it once".into(),
        )));
    }
    let given = value
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(warp::reject::custom(ApiError::Unauthorized(
            "the bearer token is wrong: use the admin token from the configuration or <data_dir>/admin_token".into(),
        ))),
        None => Err(warp::reject::custom(ApiError::Unauthorized(
            "send Authorization: Bearer <admin token> (the token is in the configuration or <data_dir>/admin_token)".into(),
        ))),
    }
}

/// The admin bearer token, and nothing else (the admin API; fails closed).
pub fn admin_token(state: &AppState) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    with_state(state.clone())
        .and(warp::header::headers_cloned())
        .and_then(|state: AppState, headers: HeaderMap| async move { bearer(&state, &headers) })
        .untuple_one()
}

/// The caller of an agent-scoped desktop route: the admin token, or a session of the agent
/// desktop (or a console role allowed to set agents' states). Put it after the path filters.
pub(super) fn agent_caller(
    state: &AppState,
) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    api_caller(state, &[Portal::Desktop], Action::SetAgentState)
}

/// Refuses (403) a caller that may not act as `agent`, before any body is read: an agent's
/// session acts only as its own agent.
fn check_agent(agent: &str, caller: &Caller) -> Result<(), Rejection> {
    if caller.may_act_as_agent(agent, Action::SetAgentState) {
        Ok(())
    } else {
        Err(warp::reject::custom(ApiError::Forbidden(format!(
            "this session acts as another agent, not as `{agent}`: sign in as `{agent}`"
        ))))
    }
}

/// [`check_agent`] for `/agent/{agent}/...` paths.
pub(super) async fn act_as(agent: String, caller: Caller) -> Result<String, Rejection> {
    check_agent(&agent, &caller)?;
    Ok(agent)
}

/// [`check_agent`] for `/agent/{agent}/.../{service}/...` paths.
pub(super) async fn act_as_in(
    agent: String,
    service: String,
    caller: Caller,
) -> Result<(String, String), Rejection> {
    check_agent(&agent, &caller)?;
    Ok((agent, service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_across_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; callbackd_console=abc".parse().unwrap());
        headers.append("cookie", "callbackd_agent=def".parse().unwrap());
        assert_eq!(
            cookie_value(&headers, CONSOLE_COOKIE).as_deref(),
            Some("abc")
        );
        assert_eq!(
            cookie_value(&headers, DESKTOP_COOKIE).as_deref(),
            Some("def")
        );
        assert_eq!(cookie_value(&headers, "missing"), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_secure_when_asked() {
        let plain = session_cookie(Portal::Console, "t", false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(session_cookie(Portal::Console, "t", true).ends_with("; Secure"));
        assert!(clear_cookie(Portal::Desktop, false).contains("Max-Age=0"));
    }
}
