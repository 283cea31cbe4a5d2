//! The Configured services page (`/admin/services`): the list, a new service from a preset,
//! one service's options to edit, and delete. Saving goes through `app::admin::put_service`
//! and deleting through `app::admin::delete_service`, as the admin API does.
//!
//! The form shows a service's effective options (the preset's defaults overlaid with what
//! was set here), one row each. Only options that differ from the preset are stored, so
//! removing an option that the preset also sets restores the preset's value (as removing an
//! option in GMS brings back its default). Mandatory options
//! ([`admin::MANDATORY_OPTIONS`]) are marked and have no remove box; a post that removes one
//! anyway is refused with the error next to it. Viewing needs `Action::View`; changes need
//! `Action::ConfigureServices`, and the forms are shown only to roles that have it.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{encode_component, message, render, see_other, Layout};
use crate::app::accounts::Portal;
use crate::app::admin;
use crate::app::sessions::Session;
use crate::app::{AppError, AppState};
use crate::domain::account::Action;
use crate::domain::options::{OptionError, Preset, ValidService};
use crate::http::auth::{page_session, signed_form};
use crate::http::form::{self, Fields};
use crate::http::with_state;

/// The form field prefix of an option's value: `option._ttl=86400`.
const OPTION_FIELD: &str = "option.";

/// One row of the list.
struct ServiceRow {
    name: String,
    preset: &'static str,
    kind: String,
    target: String,
    queue: String,
    waits_for_agent: bool,
    confirms: bool,
    ttl: String,
}

#[derive(Template)]
#[template(path = "console/services.html")]
struct ListPage {
    layout: Layout,
    services: Vec<ServiceRow>,
    presets: Vec<(&'static str, &'static str)>,
    can_change: bool,
    notice: Option<String>,
}

/// One option of the form.
struct OptionRow {
    name: String,
    value: String,
    /// The preset's value of this option, if the preset has one.
    preset_value: Option<&'static str>,
    mandatory: bool,
    /// Set in this service (not just the preset's value): the row can be removed.
    set_here: bool,
    /// The remove box was ticked (a form shown again after an error).
    remove: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/services_edit.html")]
struct EditPage {
    layout: Layout,
    /// None: a new service (the name is a field).
    name: Option<String>,
    /// The name field's value on a new service.
    new_name: String,
    name_error: Option<String>,
    preset: &'static str,
    rows: Vec<OptionRow>,
    new_option: String,
    new_value: String,
    new_option_error: Option<String>,
    /// Problems not shown beside a row.
    other_errors: Vec<String>,
    failed: bool,
    can_change: bool,
    notice: Option<String>,
}

/// The page's routes.
pub fn routes(state: AppState) -> warp::filters::BoxedFilter<(Response,)> {
    services_page(state.clone())
        .or(service_new_page(state.clone()))
        .unify()
        .or(services_create(state.clone()))
        .unify()
        .or(service_page(state.clone()))
        .unify()
        .or(service_update(state.clone()))
        .unify()
        .or(service_delete(state))
        .unify()
        .boxed()
}

/// GET /admin/services
fn services_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "services")
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and(form::query_fields())
        .map(|session: Session, state: AppState, fields: Fields| {
            let notice = form::last(&fields, "deleted").map(|n| format!("Service {n} deleted."));
            list(&state, &session, notice)
        })
}

fn list(state: &AppState, session: &Session, notice: Option<String>) -> Response {
    let services = state.catalog.all().iter().map(|s| service_row(s)).collect();
    render(
        StatusCode::OK,
        &ListPage {
            layout: Layout::new(session, "/admin/services"),
            services,
            presets: Preset::ALL
                .iter()
                .map(|p| (p.name(), preset_summary(*p)))
                .collect(),
            can_change: session.principal.role.allows(Action::ConfigureServices),
            notice,
        },
    )
}

fn service_row(service: &ValidService) -> ServiceRow {
    let option = |name: &str| service.effective.get(name).cloned().unwrap_or_default();
    ServiceRow {
        name: service.config.name.clone(),
        preset: service.config.preset.name(),
        kind: option("_type"),
        target: option("_target"),
        queue: service.settings.queue_name(&service.config.name),
        waits_for_agent: service.settings.wait_for_agent,
        confirms: service.settings.wait_for_user_confirm,
        ttl: option("_ttl"),
    }
}

/// What a preset is for, in a line.
fn preset_summary(preset: Preset) -> &'static str {
    match preset {
        Preset::ChatImmediate => "Chat starts at once; the chat is routed when it arrives.",
        Preset::ChatDelayed => "Waits for an agent, asks the customer to confirm, then chats.",
        Preset::RequestChat => "Chat run by callbackd itself; it can start at any time.",
        Preset::RequestChatPoll => {
            "Chat run by callbackd that waits for an agent, reported by /status."
        }
        Preset::OfficeHours => "Office hours that callback services follow.",
        Preset::Capacity => "Scheduled callbacks each time bucket takes.",
        Preset::UserTerminatedImmediate => "Voice: an agent calls the customer now.",
        Preset::UserTerminatedDelayed => {
            "Voice: waits for an agent, asks the customer to confirm, then the agent calls."
        }
        Preset::UserTerminatedScheduled => {
            "Voice: an agent calls the customer at the time they chose."
        }
        Preset::UserOriginatedImmediate => {
            "Voice: the customer calls the access number now, with an access code."
        }
        Preset::UserOriginatedDelayed => {
            "Voice: waits for an agent, then the customer calls the access number."
        }
    }
}

/// GET /admin/services/new/{preset}
fn service_new_page(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "services" / "new" / String)
        .and(warp::get())
        .and(page_session(
            &state,
            Portal::Console,
            Some(Action::ConfigureServices),
        ))
        .map(|preset: String, session: Session| {
            let Ok(preset) = preset.parse::<Preset>() else {
                return message(
                    StatusCode::NOT_FOUND,
                    "No such preset",
                    format!("There is no preset named {preset}: use Chat-Immediate, Chat-Delayed, Request-Chat or Request-Chat-Poll."),
                );
            };
            let form = ServiceForm {
                name: String::new(),
                preset,
                rows: rows_of(preset, &BTreeMap::new()),
                removed: BTreeSet::new(),
                new_option: String::new(),
                new_value: String::new(),
            };
            edit_page(&session, None, form, Vec::new(), StatusCode::OK, None)
        })
}

/// POST /admin/services (fields `csrf`, `name`, `preset`, `option.<name>`, `remove`,
/// `new_option`, `new_value`)
fn services_create(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "services")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ConfigureServices),
        ))
        .and(with_state(state))
        .then(|session: Session, fields: Fields, state: AppState| async move {
            let preset = match form::last(&fields, "preset").unwrap_or("").parse::<Preset>() {
                Ok(preset) => preset,
                Err(why) => return message(StatusCode::BAD_REQUEST, "No such preset", why),
            };
            let form = ServiceForm::parse(&fields, preset);
            if state.catalog.get(&form.name).is_some() {
                let taken = OptionError {
                    option: "name".into(),
                    message: format!(
                        "a service named {} exists already: edit it from the list, or choose another name",
                        form.name
                    ),
                };
                return edit_page(&session, None, form, vec![taken], StatusCode::BAD_REQUEST, None);
            }
            save(&state, &session, None, form).await
        })
}

/// GET /admin/services/{name}
fn service_page(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "services" / String)
        .and(warp::get())
        .and(page_session(&state, Portal::Console, Some(Action::View)))
        .and(with_state(state))
        .and(form::query_fields())
        .map(
            |name: String, session: Session, state: AppState, fields: Fields| {
                let Some(service) = state.catalog.get(&name) else {
                    return unknown_service(&name);
                };
                let notice = fields
                    .iter()
                    .any(|(k, _)| k == "saved")
                    .then(|| format!("Service {name} saved."));
                let form = ServiceForm {
                    name: name.clone(),
                    preset: service.config.preset,
                    rows: rows_of(service.config.preset, &service.config.options),
                    removed: BTreeSet::new(),
                    new_option: String::new(),
                    new_value: String::new(),
                };
                edit_page(
                    &session,
                    Some(name),
                    form,
                    Vec::new(),
                    StatusCode::OK,
                    notice,
                )
            },
        )
}

/// POST /admin/services/{name} (fields as for a new service, without `name` and `preset`)
fn service_update(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "services" / String)
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ConfigureServices),
        ))
        .and(with_state(state))
        .then(
            |name: String, session: Session, fields: Fields, state: AppState| async move {
                let Some(service) = state.catalog.get(&name) else {
                    return unknown_service(&name);
                };
                let mut form = ServiceForm::parse(&fields, service.config.preset);
                form.name = name.clone();
                save(&state, &session, Some(name), form).await
            },
        )
}

/// POST /admin/services/{name}/delete (field `csrf`)
fn service_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "services" / String / "delete")
        .and(warp::post())
        .and(signed_form(
            &state,
            Portal::Console,
            Some(Action::ConfigureServices),
        ))
        .and(with_state(state))
        .then(
            |name: String, _session: Session, _fields: Fields, state: AppState| async move {
                match admin::delete_service(&state, &name).await {
                    Ok(()) => see_other(&format!(
                        "/admin/services?deleted={}",
                        encode_component(&name)
                    )),
                    Err(AppError::UnknownService(_)) => unknown_service(&name),
                    Err(err) => failure(err),
                }
            },
        )
}

/// What a service form sent.
struct ServiceForm {
    name: String,
    preset: Preset,
    /// The option rows in the order shown, with their values.
    rows: Vec<(String, String)>,
    /// Options whose remove box was ticked.
    removed: BTreeSet<String>,
    new_option: String,
    new_value: String,
}

impl ServiceForm {
    fn parse(fields: &Fields, preset: Preset) -> Self {
        let mut rows: Vec<(String, String)> = Vec::new();
        for (key, value) in fields {
            if let Some(option) = key.strip_prefix(OPTION_FIELD) {
                match rows.iter_mut().find(|(name, _)| name == option) {
                    Some(row) => row.1 = value.clone(),
                    None => rows.push((option.to_string(), value.clone())),
                }
            }
        }
        // A mandatory option left out of the post keeps its row (with the preset's value, if
        // any), so that a problem with it is shown beside it.
        for option in admin::MANDATORY_OPTIONS {
            if !rows.iter().any(|(name, _)| name == option) {
                let preset_value = preset.defaults().iter().find(|(name, _)| *name == option);
                rows.push((
                    option.to_string(),
                    preset_value.map(|(_, v)| v.to_string()).unwrap_or_default(),
                ));
            }
        }
        let text = |name: &str| form::last(fields, name).unwrap_or("").trim().to_string();
        Self {
            name: text("name"),
            preset,
            rows,
            removed: fields
                .iter()
                .filter(|(k, _)| k == "remove")
                .map(|(_, v)| v.clone())
                .collect(),
            new_option: text("new_option"),
            new_value: form::last(fields, "new_value").unwrap_or("").to_string(),
        }
    }

    /// The options to store (those that differ from the preset), or why the form cannot be
    /// read: removing a mandatory option, or an added option without a name.
    fn options(&self) -> Result<BTreeMap<String, String>, Vec<OptionError>> {
        let mut problems = Vec::new();
        let mut options = BTreeMap::new();
        for (name, value) in &self.rows {
            if self.removed.contains(name) {
                if admin::is_mandatory(name) {
                    problems.push(OptionError {
                        option: name.clone(),
                        message: format!(
                            "mandatory for a {} service: it cannot be removed; change its value instead",
                            self.preset
                        ),
                    });
                }
                continue;
            }
            options.insert(name.clone(), value.clone());
        }
        if !self.new_option.is_empty() {
            if self.new_option.chars().any(char::is_whitespace) {
                problems.push(OptionError {
                    option: "new_option".into(),
                    message: "an option name has no spaces, e.g. _urs_virtual_queue".into(),
                });
            } else {
                options.insert(self.new_option.clone(), self.new_value.clone());
            }
        } else if !self.new_value.trim().is_empty() {
            problems.push(OptionError {
                option: "new_option".into(),
                message: "give the new option a name, e.g. _urs_virtual_queue".into(),
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let preset: BTreeMap<&str, &str> = self.preset.defaults().iter().copied().collect();
        options.retain(|name, value| preset.get(name.as_str()) != Some(&value.as_str()));
        Ok(options)
    }
}

/// Saves the form through `app::admin::put_service`, or shows it again with each problem
/// beside its option (400).
async fn save(
    state: &AppState,
    session: &Session,
    existing: Option<String>,
    form: ServiceForm,
) -> Response {
    let options = match form.options() {
        Ok(options) => options,
        Err(problems) => {
            return edit_page(
                session,
                existing,
                form,
                problems,
                StatusCode::BAD_REQUEST,
                None,
            )
        }
    };
    match admin::put_service(state, &form.name, form.preset, options.clone()).await {
        Ok((service, _)) => see_other(&format!(
            "/admin/services/{}?saved",
            encode_component(&service.config.name)
        )),
        Err(AppError::InvalidOption(first)) => {
            let mut problems = admin::service_problems(state, &form.name, form.preset, options);
            if problems.is_empty() {
                problems.push(first);
            }
            edit_page(
                session,
                existing,
                form,
                problems,
                StatusCode::BAD_REQUEST,
                None,
            )
        }
        Err(err) => failure(err),
    }
}

/// The rows of a service of `preset` with `options` set: mandatory options first, then the
/// rest by name.
fn rows_of(preset: Preset, options: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut effective: BTreeMap<String, String> = preset
        .defaults()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    effective.extend(options.iter().map(|(k, v)| (k.clone(), v.clone())));
    for option in admin::MANDATORY_OPTIONS {
        effective.entry(option.to_string()).or_default();
    }
    let mut rows: Vec<(String, String)> = effective.into_iter().collect();
    rows.sort_by_key(|(name, _)| {
        let rank = admin::MANDATORY_OPTIONS
            .iter()
            .position(|m| m == name)
            .unwrap_or(admin::MANDATORY_OPTIONS.len());
        (rank, name.clone())
    });
    rows
}

fn edit_page(
    session: &Session,
    existing: Option<String>,
    form: ServiceForm,
    problems: Vec<OptionError>,
    status: StatusCode,
    notice: Option<String>,
) -> Response {
    let mut problems: BTreeMap<String, String> = problems
        .into_iter()
        .map(|p| (p.option, p.message))
        .collect();
    let preset: BTreeMap<&str, &'static str> = form.preset.defaults().iter().copied().collect();
    let rows = form
        .rows
        .into_iter()
        .map(|(name, value)| {
            let preset_value = preset.get(name.as_str()).copied();
            OptionRow {
                mandatory: admin::is_mandatory(&name),
                set_here: preset_value != Some(value.as_str()),
                remove: form.removed.contains(&name),
                error: problems.remove(&name),
                preset_value,
                name,
                value,
            }
        })
        .collect();
    let name_error = problems.remove("name");
    let new_option_error = problems
        .remove("new_option")
        .or_else(|| problems.remove(&form.new_option));
    let failed = status != StatusCode::OK;
    render(
        status,
        &EditPage {
            layout: Layout::new(session, "/admin/services"),
            name: existing,
            new_name: form.name,
            name_error,
            preset: form.preset.name(),
            rows,
            new_option: form.new_option,
            new_value: form.new_value,
            new_option_error,
            other_errors: problems
                .into_iter()
                .map(|(option, message)| format!("{option}: {message}"))
                .collect(),
            failed,
            can_change: session.principal.role.allows(Action::ConfigureServices),
            notice,
        },
    )
}

fn unknown_service(name: &str) -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such service",
        format!("No configured service is named {name}."),
    )
}

/// A failure that is not about the form (storage): the API's status and message.
fn failure(err: AppError) -> Response {
    super::failure(err, "Not saved", "Not saved")
}
