//! The agent desktop's push channel: `GET /agent/events`, server-sent events for the agent
//! signed in with the desktop's session cookie. Built like the console's `/admin/events`
//! (see `overview.rs`): a snapshot at once, then every [`POLL`] a new one if it changed, with
//! `ping` events in between; a stream ends after [`STREAM_LIFETIME`] and `EventSource`
//! reconnects by itself.
//!
//! Each `snapshot` event's data is
//! `{"agent":{"id","name","state","reason","since","idle_since","capacity","auto_answer"},
//! "interactions":[...],"history_version":n,"now":ISO,"keep_alive_ms":n}`: the interactions
//! exactly as `GET /genesys/1/agent/{agent}/interactions` lists them, `history_version` a
//! number that changes whenever the agent's history does (fetch `GET .../history` again then),
//! `now` the server's time, for showing the time in the current state, and `keep_alive_ms`
//! the ping interval. `now` alone changing sends nothing.
//!
//! When nothing was sent for `keep_alive_ms` (`[agents] keep_alive_ms`, default 10 s), a
//! `ping` event goes out, data `{"now":ISO}`. Unlike an SSE comment the page sees it, so a
//! page that hears nothing (neither a snapshot nor a ping) for a while knows its connection
//! died silently (a half-open socket, a proxy that stopped forwarding) and reconnects.
//!
//! An open stream is one connected tab of its agent (`app::presence`): when the last one
//! closes and none reconnects within `[agents] logout_after_disconnect_secs`, the agent is
//! logged out. The pings are also what notices a tab that went away: their write fails.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use serde_json::{json, Value};
use tokio::time::Instant;
use warp::reply::Response;
use warp::sse::Event;
use warp::{Filter, Rejection, Reply};

use super::overview::{POLL, STREAM_LIFETIME};
use crate::app::accounts::Portal;
use crate::app::desktop::{desktop_view, DesktopView};
use crate::app::presence::Tab;
use crate::app::sessions::Session;
use crate::app::AppState;
use crate::http::auth::optional_session;
use crate::http::desktop::interaction_view;
use crate::http::{with_state, ApiError};

/// The desktop's event stream.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    events_stream(state).boxed()
}

/// GET /agent/events: `snapshot` events of the signed-in agent; 401 without a desktop
/// session (a stream cannot follow a redirect to the sign-in page).
fn events_stream(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("agent" / "events")
        .and(warp::get())
        .and(optional_session(&state, Portal::Desktop))
        .and(with_state(state))
        .map(|session: Option<Session>, state: AppState| {
            let Some(session) = session else {
                return ApiError::Unauthorized(
                    "sign in at /agent/login first: the desktop's events need its session".into(),
                )
                .into_response();
            };
            let Some(agent) = session.principal.agent_id.clone() else {
                return ApiError::Forbidden(format!(
                    "`{}` is not bound to an agent: sign in with an agent's account",
                    session.principal.username
                ))
                .into_response();
            };
            let tab = state.presence.connect(&agent);
            let stream = snapshots(state, agent, tab);
            warp::sse::reply(stream).into_response()
        })
}

/// The events of `agent`'s stream: the first snapshot at once, then each that differs from
/// the last sent, and a `ping` whenever nothing was sent for the keep-alive interval. Holds
/// `tab` while it lasts, so that dropping the stream (the browser went away) closes it.
fn snapshots(
    state: AppState,
    agent: String,
    tab: Tab,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let keep_alive = state.settings.desktop_keep_alive;
    let keep_alive_ms = u64::try_from(keep_alive.as_millis()).unwrap_or(u64::MAX);
    let until = Instant::now() + STREAM_LIFETIME;
    let sent = Instant::now();
    stream::unfold(
        (state, agent, tab, None::<Value>, true, sent),
        move |(state, agent, tab, last, first, sent)| async move {
            loop {
                if !first {
                    // Look for a change every POLL, and wake in time for a ping due sooner.
                    tokio::time::sleep_until((Instant::now() + POLL).min(sent + keep_alive)).await;
                }
                let now = Instant::now();
                if now >= until {
                    return None;
                }
                let current = match desktop_view(&state, &agent).await {
                    Ok(view) => snapshot_view(&view),
                    Err(err) => {
                        // The agent was removed, or the router stopped (shutdown): the page
                        // reconnects and learns which from the answer.
                        tracing::debug!(agent = %agent, error = %err, "desktop stream ends");
                        return None;
                    }
                };
                if last.as_ref() == Some(&current) {
                    if now < sent + keep_alive {
                        continue;
                    }
                    let event = Event::default()
                        .event("ping")
                        .json_data(json!({ "now": state.clock.now().to_iso() }))
                        .unwrap_or_else(|_| Event::default().comment("unencodable"));
                    return Some((Ok(event), (state, agent, tab, last, false, now)));
                }
                let mut data = current.clone();
                if let Some(map) = data.as_object_mut() {
                    map.insert("now".into(), json!(state.clock.now().to_iso()));
                    map.insert("keep_alive_ms".into(), json!(keep_alive_ms));
                }
                let event = Event::default()
                    .event("snapshot")
                    .retry(Duration::from_millis(500))
                    .json_data(&data)
                    .unwrap_or_else(|_| Event::default().comment("unencodable"));
                return Some((Ok(event), (state, agent, tab, Some(current), false, now)));
            }
        },
    )
}

/// A snapshot's data without `now`.
fn snapshot_view(view: &DesktopView) -> Value {
    let agent = &view.agent;
    let interactions: Vec<Value> = view.interactions.iter().map(interaction_view).collect();
    json!({
        "agent": {
            "id": agent.config.id,
            "name": agent.config.name,
            "state": agent.state.as_str(),
            "reason": agent.reason,
            "since": agent.state_since.to_iso(),
            "idle_since": agent.idle_since.to_iso(),
            "capacity": agent.config.capacity,
            "auto_answer": agent.config.auto_answer,
        },
        "interactions": interactions,
        "history_version": view.history_version,
    })
}
