//! The Agents page (`/admin/agents`): every agent with its live state, reservations and
//! interactions (from the router, through `app::agents::list_agents`), a form to create one,
//! one agent's configuration to edit, delete, and setting an agent's state. Everything goes
//! through `app::agents` (`put_agent`, `delete_agent`, `set_agent_state`), as the admin and
//! desktop APIs do.
//!
//! Changes of configuration need `Action::ConfigureAgents` (administrators); setting a state
//! needs `Action::SetAgentState` (supervisors too). The forms are shown only to roles that
//! have the action; a monitor sees the page read-only.
//!
//! Groups and place groups are typed comma-separated; skills and capacities as
//! `name=number` pairs (`English=20, Loans=2`), the way `data/agents.toml` reads.

use std::collections::BTreeMap;

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{encode_component, render, see_other, Layout};
use crate::app::accounts::Portal;
use crate::app::agents;
use crate::app::sessions::Session;
use crate::app::{AppError, AppState};
use crate::domain::account::Action;
use crate::domain::agent::{Agent, AgentConfig, AgentRecord, AgentState};
use crate::domain::options::FieldError;
use crate::http::auth::{page_session, signed_form};
use crate::http::form::{self, Fields};
use crate::http::with_state;

/// The states an agent can be set to, as the select shows them.
const STATES: [(AgentState, &str); 3] = [
    (AgentState::Ready, "Ready"),
    (AgentState::NotReady, "Not Ready"),
    (AgentState::LoggedOut, "Logged out"),
];

/// One row of the list.
struct AgentRow {
    id: String,
    name: String,
    /// The wire name (`ready`), for the state select.
    state: &'static str,
    state_title: &'static str,
    state_since: String,
    /// The Not Ready reason code, or empty.
    reason: String,
    groups: String,
    place: String,
    skills: String,
    capacity: String,
    auto_answer: bool,
    reserved: Vec<String>,
    /// Per media, the services in progress.
    active: Vec<(String, Vec<String>)>,
}

/// The agent form's values and its errors, by field.
#[derive(Default)]
struct AgentForm {
    id: String,
    name: String,
    groups: String,
    place: String,
    place_groups: String,
    skills: String,
    capacity: String,
    auto_answer: bool,
    errors: BTreeMap<&'static str, String>,
}

impl AgentForm {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

#[derive(Template)]
#[template(path = "console/agents.html")]
struct ListPage {
    layout: Layout,
    agents: Vec<AgentRow>,
    states: Vec<(&'static str, &'static str)>,
    can_configure: bool,
    can_set_state: bool,
    form: AgentForm,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/agents_edit.html")]
struct EditPage {
    layout: Layout,
    id: String,
    state_title: &'static str,
    can_configure: bool,
    form: AgentForm,
    notice: Option<String>,
}

/// The page's routes.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    agents_page(state.clone())
        .or(agents_create(state.clone()))
        .unify()
        .or(agent_page(state.clone()))
        .unify()
        .or(agent_update(state.clone()))
        .unify()
        .or(agent_delete(state.clone()))
        .unify()
        .or(agent_state(state))
        .unify()
        .boxed()
}

/// GET /admin/agents
fn agents_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "agents")
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and(form::query_fields())
        .then(
            |session: Session, state: AppState, fields: Fields| async move {
                let notice = fields.iter().find_map(|(k, v)| match k.as_str() {
                    "added" => Some(format!("Agent {v} added.")),
                    "deleted" => Some(format!("Agent {v} deleted.")),
                    "state" => Some(format!("State of agent {v} set.")),
                    _ => None,
                });
                let form = AgentForm {
                    capacity: "chat=2".into(),
                    ..AgentForm::default()
                };
                list(&state, &session, StatusCode::OK, form, notice, None).await
            },
        )
}

async fn list(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: AgentForm,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let agents = match agents::list_agents(state).await {
        Ok(agents) => agents,
        Err(err) => return failure(err),
    };
    let role = session.principal.role;
    render(
        status,
        &ListPage {
            layout: Layout::new(session, "/admin/agents"),
            agents: agents.iter().map(agent_row).collect(),
            states: STATES.iter().map(|(s, t)| (s.as_str(), *t)).collect(),
            can_configure: role.allows(Action::ConfigureAgents),
            can_set_state: role.allows(Action::SetAgentState),
            form,
            notice,
            error,
        },
    )
}

fn agent_row(agent: &Agent) -> AgentRow {
    let config = &agent.config;
    AgentRow {
        id: config.id.clone(),
        name: config.name.clone(),
        state: agent.state.as_str(),
        state_title: state_title(agent.state),
        state_since: agent.state_since.to_iso(),
        reason: agent.reason.clone().unwrap_or_default(),
        groups: config.groups.join(", "),
        place: config.place.clone().unwrap_or_default(),
        skills: pairs(&config.skills),
        capacity: pairs(&config.capacity),
        auto_answer: config.auto_answer,
        reserved: agent.reserved.iter().cloned().collect(),
        active: agent
            .active
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(media, ids)| (media.clone(), ids.iter().cloned().collect()))
            .collect(),
    }
}

fn state_title(state: AgentState) -> &'static str {
    STATES
        .iter()
        .find(|(s, _)| *s == state)
        .map_or("", |(_, title)| title)
}

/// `English=20, Loans=2`.
fn pairs<V: std::fmt::Display>(map: &BTreeMap<String, V>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// POST /admin/agents (fields `csrf`, `id`, `name`, `groups`, `place`, `place_groups`,
/// `skills`, `capacity`, `auto_answer`)
fn agents_create(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "agents")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ConfigureAgents),
        ))
        .and(with_state(state))
        .then(|session: Session, fields: Fields, state: AppState| async move {
            let mut form = AgentForm::from_fields(&fields);
            form.id = text(&fields, "id");
            if agents::get_agent(&state, &form.id).is_ok() {
                let taken = format!(
                    "an agent with the id {} exists already: edit it from the list, or choose another id",
                    form.id
                );
                form.errors.insert("id", taken);
                return list(&state, &session, StatusCode::BAD_REQUEST, form, None, None).await;
            }
            match save(&state, &mut form).await {
                Ok(()) => see_other(&format!("/admin/agents?added={}", encode_component(&form.id))),
                Err(None) => list(&state, &session, StatusCode::BAD_REQUEST, form, None, None).await,
                Err(Some(response)) => response,
            }
        })
}

/// GET /admin/agents/{id}
fn agent_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "agents" / String)
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and(form::query_fields())
        .map(
            |id: String, session: Session, state: AppState, fields: Fields| {
                let record = match agents::get_agent(&state, &id) {
                    Ok(record) => record,
                    Err(err) => return failure(err),
                };
                let notice = fields
                    .iter()
                    .any(|(k, _)| k == "saved")
                    .then(|| format!("Agent {id} saved."));
                edit_page(
                    &session,
                    &record,
                    AgentForm::of(&record),
                    StatusCode::OK,
                    notice,
                )
            },
        )
}

/// POST /admin/agents/{id} (fields as for a new agent, without `id`)
fn agent_update(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "agents" / String)
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ConfigureAgents),
        ))
        .and(with_state(state))
        .then(
            |id: String, session: Session, fields: Fields, state: AppState| async move {
                let record = match agents::get_agent(&state, &id) {
                    Ok(record) => record,
                    Err(err) => return failure(err),
                };
                let mut form = AgentForm::from_fields(&fields);
                form.id = id;
                match save(&state, &mut form).await {
                    Ok(()) => see_other(&format!(
                        "/admin/agents/{}?saved",
                        encode_component(&form.id)
                    )),
                    Err(None) => edit_page(&session, &record, form, StatusCode::BAD_REQUEST, None),
                    Err(Some(response)) => response,
                }
            },
        )
}

/// POST /admin/agents/{id}/delete (field `csrf`)
fn agent_delete(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "agents" / String / "delete")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ConfigureAgents),
        ))
        .and(with_state(state))
        .then(
            |id: String, _session: Session, _fields: Fields, state: AppState| async move {
                match agents::delete_agent(&state, &id).await {
                    Ok(()) => {
                        see_other(&format!("/admin/agents?deleted={}", encode_component(&id)))
                    }
                    Err(err) => failure(err),
                }
            },
        )
}

/// POST /admin/agents/{id}/state (fields `csrf`, `state`: ready, not_ready or logged_out)
fn agent_state(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "agents" / String / "state")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::SetAgentState),
        ))
        .and(with_state(state))
        .then(
            |id: String, session: Session, fields: Fields, state: AppState| async move {
                // An unknown agent is 404 before its state field is read.
                if let Err(err) = agents::get_agent(&state, &id) {
                    return failure(err);
                }
                let result = match text(&fields, "state").parse::<AgentState>() {
                    Ok(new_state) => agents::set_agent_state(&state, &id, new_state, None).await,
                    Err(why) => Err(AppError::from(FieldError::new("state", why))),
                };
                match result {
                    Ok(_) => see_other(&format!("/admin/agents?state={}", encode_component(&id))),
                    Err(AppError::InvalidField(err)) => {
                        let form = AgentForm::default();
                        let error = Some(format!("State of {id} not set: {}", err.message));
                        list(&state, &session, StatusCode::BAD_REQUEST, form, None, error).await
                    }
                    Err(err) => failure(err),
                }
            },
        )
}

impl AgentForm {
    /// The form as posted (its `id` is set by the caller: a field or the path).
    fn from_fields(fields: &Fields) -> Self {
        Self {
            id: String::new(),
            name: text(fields, "name"),
            groups: text(fields, "groups"),
            place: text(fields, "place"),
            place_groups: text(fields, "place_groups"),
            skills: text(fields, "skills"),
            capacity: text(fields, "capacity"),
            auto_answer: form::last(fields, "auto_answer").is_some(),
            errors: BTreeMap::new(),
        }
    }

    /// The form showing a stored agent.
    fn of(record: &AgentRecord) -> Self {
        let config = &record.config;
        Self {
            id: config.id.clone(),
            name: config.name.clone(),
            groups: config.groups.join(", "),
            place: config.place.clone().unwrap_or_default(),
            place_groups: config.place_groups.join(", "),
            skills: pairs(&config.skills),
            capacity: pairs(&config.capacity),
            auto_answer: config.auto_answer,
            errors: BTreeMap::new(),
        }
    }

    /// The configuration the form describes, or its errors recorded by field.
    fn config(&mut self) -> Option<AgentConfig> {
        let skills = parse_pairs(&self.skills, "English=20, Loans=2");
        let capacity = parse_pairs(&self.capacity, "chat=2, voice=1");
        if let Err(why) = &skills {
            self.errors.insert("skills", why.clone());
        }
        if let Err(why) = &capacity {
            self.errors.insert("capacity", why.clone());
        }
        Some(AgentConfig {
            id: self.id.clone(),
            name: self.name.clone(),
            groups: list_of(&self.groups),
            place: Some(self.place.clone()).filter(|p| !p.is_empty()),
            place_groups: list_of(&self.place_groups),
            skills: skills.ok()?,
            capacity: capacity.ok()?,
            auto_answer: self.auto_answer,
        })
    }
}

/// Saves the form through `app::agents::put_agent`. `Err(None)`: the form's errors are
/// recorded in it (show it again, 400); `Err(Some(page))`: another failure's page.
async fn save(state: &AppState, form: &mut AgentForm) -> Result<(), Option<Response>> {
    let Some(config) = form.config() else {
        return Err(None);
    };
    match agents::put_agent(state, config).await {
        Ok(_) => Ok(()),
        Err(AppError::InvalidField(err)) => {
            form.errors.insert(form_field(&err.field), err.message);
            Err(None)
        }
        Err(err) => Err(Some(failure(err))),
    }
}

/// The form field a validation error of `AgentConfig` names (`capacity.chat` is the
/// capacity field).
fn form_field(field: &str) -> &'static str {
    match field.split('.').next().unwrap_or(field) {
        "id" => "id",
        "name" => "name",
        "groups" => "groups",
        "place" => "place",
        "place_groups" => "place_groups",
        "skills" => "skills",
        "capacity" => "capacity",
        _ => "name",
    }
}

/// `a, b` as a list without empty entries.
fn list_of(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `English=20, Loans=2` as a map; `example` is shown when a pair is not `name=number`.
fn parse_pairs<V: std::str::FromStr>(
    text: &str,
    example: &str,
) -> Result<BTreeMap<String, V>, String> {
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = pair
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .and_then(|(k, v)| Some((k.to_string(), v.parse::<V>().ok()?)));
        match parsed {
            Some((key, value)) => {
                map.insert(key, value);
            }
            None => {
                return Err(format!(
                    "`{pair}` is not name=number: write pairs such as {example}"
                ))
            }
        }
    }
    Ok(map)
}

fn edit_page(
    session: &Session,
    record: &AgentRecord,
    form: AgentForm,
    status: StatusCode,
    notice: Option<String>,
) -> Response {
    render(
        status,
        &EditPage {
            layout: Layout::new(session, "/admin/agents"),
            id: record.config.id.clone(),
            state_title: state_title(record.state),
            can_configure: session.principal.role.allows(Action::ConfigureAgents),
            form,
            notice,
        },
    )
}

/// The trimmed value of field `name` (empty when absent).
fn text(fields: &Fields, name: &str) -> String {
    form::last(fields, name).unwrap_or("").trim().to_string()
}

/// A failure that is not about the form: unknown agent (404), storage.
fn failure(err: AppError) -> Response {
    super::failure(err, "No such agent", "Not done")
}
