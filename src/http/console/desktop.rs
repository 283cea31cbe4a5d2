//! The agent desktop page (`GET /agent/`): the server renders the frame with who is signed
//! in and their agent's state at that moment; `static/desktop.js` keeps it live from the
//! desktop's event stream (`/agent/events`) and acts through the desktop API
//! (`/genesys/1/agent/{agent}/...`) with the session's CSRF token. Nothing here decides or
//! stores anything.
//!
//! Without a desktop session the page answers 303 to `/agent/login`; a session whose account
//! is bound to no agent (or to one that no longer exists) gets a 403 page that says so.

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{login, render, MessagePage};
use crate::app::accounts::Portal;
use crate::app::sessions::Session;
use crate::app::{agents, AppState};
use crate::domain::agent::Agent;
use crate::http::auth::{self, page_session};
use crate::http::with_state;

#[derive(Template)]
#[template(path = "desktop/desktop.html")]
struct DesktopPage {
    username: String,
    csrf: String,
    agent_id: String,
    agent_name: String,
    state: &'static str,
    state_since: String,
    /// The Not Ready reason code, or empty.
    reason: String,
    auto_answer: bool,
    /// `chat 2, voice 1`, as shown.
    capacity: String,
}

/// The desktop page.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    desktop_page(state).boxed()
}

/// GET /agent/ (and /agent)
fn desktop_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("agent")
        .or(warp::path!("agent" / ..).and(warp::path::end()))
        .unify()
        .and(warp::get())
        .and(page_session(&state, Portal::Desktop, None))
        .and(with_state(state))
        .then(|session: Session, state: AppState| async move {
            let Some(agent_id) = session.principal.agent_id.clone() else {
                return not_an_agent(&state, &session, format!(
                    "The account {} is not bound to an agent, so it has no desktop. An administrator can bind it to an agent on the console's Users page.",
                    session.principal.username
                ));
            };
            match agents::list_agents(&state).await {
                Ok(list) => match list.into_iter().find(|a| a.config.id == agent_id) {
                    Some(agent) => render(StatusCode::OK, &page(&session, &agent)),
                    None => not_an_agent(&state, &session, format!(
                        "The account {} is bound to agent {agent_id}, which no longer exists. An administrator can bind it to another agent on the console's Users page.",
                        session.principal.username
                    )),
                },
                Err(err) => {
                    tracing::error!(error = %err, "cannot read the agents for the desktop");
                    super::message(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The desktop cannot start",
                        "The agents cannot be read right now; reload the page shortly.".into(),
                    )
                }
            }
        })
}

fn page(session: &Session, agent: &Agent) -> DesktopPage {
    let config = &agent.config;
    let capacity = config
        .capacity
        .iter()
        .map(|(media, n)| format!("{media} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    DesktopPage {
        username: session.principal.username.clone(),
        csrf: session.csrf.clone(),
        agent_id: config.id.clone(),
        agent_name: config.name.clone(),
        state: agent.state.as_str(),
        state_since: agent.state_since.to_iso(),
        reason: agent.reason.clone().unwrap_or_default(),
        auto_answer: config.auto_answer,
        capacity,
    }
}

/// The 403 page of a session that has no agent to be the desktop of. The session is of no
/// use on the desktop, so it ends: the link back to the sign-in page then shows the form
/// instead of returning here.
fn not_an_agent(state: &AppState, session: &Session, message: String) -> Response {
    login::sign_out(state, session);
    let mut response = render(
        StatusCode::FORBIDDEN,
        &MessagePage {
            heading: "No desktop for this account",
            message,
            back_href: "/agent/login",
            back_label: "Sign in as an agent",
        },
    );
    login::set_cookie(
        &mut response,
        &auth::clear_cookie(Portal::Desktop, state.settings.secure_cookies),
    );
    response
}
