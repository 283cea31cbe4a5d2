//! The Service Management console (`/admin/...`): pages rendered by the server from
//! compile-time templates (`templates/console/`, askama), with small scripts
//! (`static/`) where a page updates live. Every page calls the same `app` functions as the
//! API; nothing here decides or stores anything itself.
//!
//! - [`login`]: signing in and out (shared with the agent desktop, one [`Portal`] each).
//! - [`users`]: the Users page (administrators only).
//! - [`callbacks`]: the Callbacks list, one callback, bulk cancel and the exports.
//! - [`overview`]: the live overview, its event stream and charts, and the Health page.
//! - [`desktop`]: the agent desktop page (`/agent/`), with the same frame rules.
//! - [`desktop_events`]: the agent desktop's event stream (`/agent/events`).
//! - [`services`]: the Configured services page (list, create from a preset, edit, delete).
//! - [`agents`]: the Agents page (live state and work, configuration, setting a state).
//!
//! Pages answer 303 to `/admin/login` without a session and a 403 page naming the role that
//! would be allowed when the session's role is not (see `http::auth`).

mod agents;
pub(in crate::http) mod callbacks;
mod desktop;
mod desktop_events;
pub mod login;
mod overview;
mod services;
mod users;

use askama::Template;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::PageRejection;
use super::error::ApiError;
use crate::app::accounts::Portal;
use crate::app::sessions::Session;
use crate::app::{AppError, AppState};
use crate::domain::account::{Action, Role};

/// The console's routes (the agent desktop mounts its own).
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let home = warp::path!("admin")
        .or(warp::path!("admin" / ..).and(warp::path::end()))
        .unify()
        .and(warp::get())
        .and(super::auth::page_session(
            &state,
            Portal::Console,
            Some(Action::View),
        ))
        .map(|_session: Session| see_other("/admin/callbacks"));
    home.or(static_files())
        .unify()
        .or(login::routes(state.clone(), Portal::Console))
        .unify()
        // The agent desktop signs in through the same pages, with its own cookie.
        .or(login::routes(state.clone(), Portal::Desktop))
        .unify()
        .or(desktop_events::routes(state.clone()))
        .unify()
        .or(callbacks::routes(state.clone()))
        .unify()
        .or(services::routes(state.clone()))
        .unify()
        .or(agents::routes(state.clone()))
        .unify()
        .or(users::routes(state.clone()))
        .unify()
        .or(overview::routes(state.clone()))
        .unify()
        .or(desktop::routes(state))
        .unify()
        .boxed()
}

/// One entry of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// The page being shown.
    pub current: bool,
}

/// What every console page's frame shows: who is signed in, the navigation, the CSRF token.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The signed-in user's name.
    pub username: String,
    /// Their role, as shown.
    pub role: &'static str,
    /// The session's CSRF token, for forms and scripts.
    pub csrf: String,
    /// The navigation bar, filtered by role.
    pub nav: Vec<NavItem>,
}

impl Layout {
    /// The frame for `session`, with `current` (a path of [`NAV`]) highlighted.
    pub fn new(session: &Session, current: &str) -> Self {
        let role = session.principal.role;
        Self {
            username: session.principal.username.clone(),
            role: role.title(),
            csrf: session.csrf.clone(),
            nav: NAV
                .iter()
                .filter(|(_, _, action)| role.allows(*action))
                .map(|&(href, label, _)| NavItem {
                    href,
                    label,
                    current: href == current,
                })
                .collect(),
        }
    }
}

/// The console's pages, in navigation order, with the action that shows each.
pub const NAV: &[(&str, &str, Action)] = &[
    ("/admin/callbacks", "Callbacks", Action::View),
    ("/admin/overview", "Live overview", Action::View),
    ("/admin/services", "Configured services", Action::View),
    ("/admin/agents", "Agents", Action::View),
    ("/admin/users", "Users", Action::ManageUsers),
    ("/admin/health", "Health", Action::View),
];

/// A rendered page with the headers every page carries: no caching of what a session saw,
/// a content security policy that allows only our own scripts and styles, no framing.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Renders `template` as a page, or a plain 500 page if it cannot be rendered (logged).
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(err) => {
            tracing::error!(error = %err, "cannot render a page");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be built; the server log says why.</p>".into(),
            )
        }
    }
}

/// 303 See Other to `location` (after a form post, and to the sign-in page).
pub fn see_other(location: &str) -> Response {
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A short page with a heading, a sentence and a way back.
#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    heading: &'a str,
    message: String,
    back_href: &'a str,
    back_label: &'a str,
}

/// The answer to a [`PageRejection`]: the sign-in redirect, or a 403 page.
pub fn page_rejection(rejection: &PageRejection) -> Response {
    match rejection {
        PageRejection::SignIn { portal, next } => see_other(&format!(
            "{}?next={}",
            portal.login_path(),
            encode_component(next)
        )),
        PageRejection::Forbidden { action, role } => {
            let needed = action.least_role();
            let who = if needed == Role::Administrator {
                "an Administrator".to_string()
            } else {
                format!("a {needed} or an Administrator")
            };
            render(
                StatusCode::FORBIDDEN,
                &MessagePage {
                    heading: "Not allowed",
                    message: format!(
                        "Your role ({role}) cannot {}. This needs {who}.",
                        action.describe()
                    ),
                    back_href: "/admin/",
                    back_label: "Back to the console",
                },
            )
        }
        PageRejection::Csrf => render(
            StatusCode::FORBIDDEN,
            &MessagePage {
                heading: "This form has expired",
                message: "The form was sent without this session's security token (or with an old one). Nothing was changed: go back, reload the page and try again.".into(),
                back_href: "/admin/",
                back_label: "Back to the console",
            },
        ),
    }
}

/// A short page saying `message` under `heading`, with a way back to the console.
pub fn message(status: StatusCode, heading: &str, message: String) -> Response {
    render(
        status,
        &MessagePage {
            heading,
            message,
            back_href: "/admin/",
            back_label: "Back to the console",
        },
    )
}

/// The page for an action refused for a reason that belongs to no form field: the status and
/// message the API gives for `err`, under `not_found` when it is a 404 (the thing asked for is
/// not stored) and under `heading` otherwise.
pub fn failure(err: AppError, not_found: &str, heading: &str) -> Response {
    let api = ApiError::from(err);
    let status = api.status();
    let heading = if status == StatusCode::NOT_FOUND {
        not_found
    } else {
        heading
    };
    message(status, heading, api.into_message())
}

/// Percent-encodes `text` for a query value.
pub fn encode_component(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// `static/` files, built into the binary.
fn static_files() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "static" / String)
        .and(warp::get())
        .and_then(|name: String| async move {
            let (body, kind) = match name.as_str() {
                "console.css" => (
                    include_str!("../../../static/console.css"),
                    "text/css; charset=utf-8",
                ),
                "console.js" => (
                    include_str!("../../../static/console.js"),
                    "text/javascript; charset=utf-8",
                ),
                "callbacks.js" => (
                    include_str!("../../../static/callbacks.js"),
                    "text/javascript; charset=utf-8",
                ),
                "callback.js" => (
                    include_str!("../../../static/callback.js"),
                    "text/javascript; charset=utf-8",
                ),
                "overview.js" => (
                    include_str!("../../../static/overview.js"),
                    "text/javascript; charset=utf-8",
                ),
                "desktop.js" => (
                    include_str!("../../../static/desktop.js"),
                    "text/javascript; charset=utf-8",
                ),
                "desktop.css" => (
                    include_str!("../../../static/desktop.css"),
                    "text/css; charset=utf-8",
                ),
                _ => return Err(warp::reject::not_found()),
            };
            let mut response = Response::new(body.into());
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            Ok::<_, Rejection>(response)
        })
}

#[cfg(test)]
mod tests {
    /// A stylesheet whose braces do not balance makes the browser drop every rule after the
    /// gap (a merge once lost the `}` of a phone-width block, and the pages' later rules then
    /// applied at phone width only).
    #[test]
    fn every_stylesheet_closes_each_block_it_opens() {
        for (name, css) in [
            ("console.css", include_str!("../../../static/console.css")),
            ("desktop.css", include_str!("../../../static/desktop.css")),
        ] {
            let mut depth = 0i32;
            for (number, line) in css.lines().enumerate() {
                depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
                assert!(depth >= 0, "{name}:{}: a `}}` closes nothing", number + 1);
            }
            assert_eq!(depth, 0, "{name}: {depth} block(s) left open");
        }
    }
}
