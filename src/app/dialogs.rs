//! The customer's app's dialog follow-ups (GMS `GET /genesys/1/service/{id}/{_action}`) and
//! the inbound calls of user-originated voice callbacks. Which dialog comes next is decided in
//! [`crate::domain::dialog`]; this module carries out what a step does (confirm the reserved
//! agent, cancel on a decline, queue a call that arrived) and returns the dialog to show.

use super::callbacks::{cancel_callback, route};
use super::lifecycle::{self, Connect, Status};
use super::records::{owned_service, settings_of, update};
use super::{AppError, AppState, Requester};
use crate::domain::dialog::{self, Choice, Dialog};
use crate::domain::options::{FieldError, Scenario, ServiceSettings};
use crate::domain::service::{CallbackState, ServiceRecord};

use crate::domain::dialog::ACCESS_CODE;

/// A dialog to show, and the service as it is after the step.
#[derive(Debug)]
pub struct Shown {
    /// The service.
    pub record: ServiceRecord,
    /// What the customer's app shows next.
    pub dialog: Dialog,
}

/// The dialog a create answers for `record`, created with `settings`.
pub fn created(record: &ServiceRecord, settings: &ServiceSettings, scheduled: bool) -> Dialog {
    dialog::on_create(
        settings.scenario,
        settings.wait_for_agent,
        scheduled,
        access(record),
    )
}

/// The number and code a user-originated callback's customer calls.
pub fn access(record: &ServiceRecord) -> Option<(String, Option<String>)> {
    let number = record.options.get("_access_number")?.trim().to_string();
    Some((number, record.options.get(ACCESS_CODE).cloned()))
}

/// The follow-up of the "agent available" push: a chat confirms the agent and starts (as
/// `connect` does); a voice callback shows a menu (take the agent now, or cancel). `None`
/// while no agent is available (503).
///
/// # Errors
/// Unknown id (404), another user's service (403), a finished service (400), storage failure.
pub async fn agent_available(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
) -> Result<Option<Shown>, AppError> {
    let record = owned_service(state, service_id, requester)?;
    let scenario = Scenario::of(&record.options);
    if scenario == Scenario::Chat {
        return Ok(
            match lifecycle::connect(state, service_id, requester).await? {
                Connect::Ready(record) => Some(Shown {
                    record: *record,
                    dialog: Dialog::StartChat,
                }),
                Connect::NotYet => None,
            },
        );
    }
    if !record.is_active() || lifecycle::status(state, service_id, requester)? != Status::Available
    {
        return Ok(None);
    }
    Ok(Some(Shown {
        dialog: dialog::on_agent_available(scenario),
        record,
    }))
}

/// A menu choice: `Accept` confirms the reserved agent (the agent then calls, or the customer
/// calls the access number); `Decline` cancels the callback. `None` when accepting while no
/// agent is available (503).
///
/// # Errors
/// Unknown id (404), another user's service (403), a finished service or one being handled
/// (400), storage failure.
pub async fn choose(
    state: &AppState,
    service_id: &str,
    requester: Requester<'_>,
    choice: Choice,
) -> Result<Option<Shown>, AppError> {
    let record = owned_service(state, service_id, requester)?;
    let scenario = Scenario::of(&record.options);
    let record = match choice {
        Choice::Decline => {
            cancel_callback(state, &record.service_name, service_id, requester).await?
        }
        Choice::Accept => match lifecycle::connect(state, service_id, requester).await? {
            Connect::Ready(record) => *record,
            Connect::NotYet => return Ok(None),
        },
    };
    Ok(Some(Shown {
        dialog: dialog::on_choice(scenario, choice, access(&record)),
        record,
    }))
}

/// A call that reached the contact center's access number, as a telephony integration or the
/// agent who answered it reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundCall {
    /// The access code the caller keyed in.
    pub access_code: Option<String>,
    /// The caller's number (matched against `_customer_number` when no code is given).
    pub caller_number: Option<String>,
}

impl InboundCall {
    /// Reads the `access_code` and `caller_number` fields.
    ///
    /// # Errors
    /// Neither given, or a code that is not digits, named.
    pub fn parse(fields: &[(String, String)]) -> Result<Self, FieldError> {
        let field = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let call = InboundCall {
            access_code: field("access_code"),
            caller_number: field("caller_number"),
        };
        if let Some(code) = &call.access_code {
            if code.len() > 10 || !code.chars().all(|c| c.is_ascii_digit()) {
                return Err(FieldError::new(
                    "access_code",
                    "an access code is 4 to 10 digits, as the DialNumber dialog gave it",
                ));
            }
        }
        if call.access_code.is_none() && call.caller_number.is_none() {
            return Err(FieldError::new(
                "access_code",
                "give the access_code the caller keyed in, or the caller_number of the call",
            ));
        }
        Ok(call)
    }

    /// Whether `record` is the user-originated callback this call is for.
    fn matches(&self, record: &ServiceRecord) -> bool {
        if Scenario::of(&record.options) != Scenario::UserOriginated || !record.is_active() {
            return false;
        }
        // A callback with a code is reached only with its code.
        let code = record.options.get(ACCESS_CODE);
        let code_matches = self.access_code.as_ref() == code;
        let number_matches = self
            .caller_number
            .as_ref()
            .is_none_or(|n| record.customer_number.as_deref() == Some(n.as_str()));
        code_matches && number_matches
    }
}

/// Matches an inbound call to the user-originated callback it is for and moves it on: an
/// immediate one that waited for the call enters its virtual queue (an agent with voice
/// capacity is reserved for it, as for any callback); a delayed one already has its agent.
/// Returns the service.
///
/// A code is looked for among the QUEUED and ROUTING services (the states a callback waiting
/// for its call is in), so the cost grows with the services waiting, not with all stored; a
/// caller number is read through the customer-number index.
///
/// # Errors
/// No waiting callback for that code or number (404), stored options that no longer validate
/// (503), storage failure.
pub async fn inbound_call(state: &AppState, call: &InboundCall) -> Result<ServiceRecord, AppError> {
    let keep = |record: &ServiceRecord| call.matches(record);
    // Two, to tell a unique match from an ambiguous one.
    let found = match &call.caller_number {
        Some(number) => state.store.services_by_customer(number, &keep, 2)?,
        None => state.store.services_in_states(
            None,
            &[CallbackState::Queued, CallbackState::Routing],
            &keep,
            2,
        )?,
    };
    if found.len() > 1 {
        return Err(FieldError::new(
            "access_code",
            "more than one callback waits for a call with this access code: give caller_number as well",
        )
        .into());
    }
    let Some(record) = found.into_iter().next() else {
        return Err(AppError::NotFound(
            "no user-originated callback waits for a call with that access code or caller number: check what the caller keyed in".into(),
        ));
    };
    if record.state != CallbackState::Queued || record.queued_at.is_some() {
        // Already waiting for (or given) an agent: the call goes to that agent.
        return Ok(record);
    }
    let settings = settings_of(state, &record)?;
    let now = state.clock.now();
    let queued = update(state, &record.id, |record| {
        record.queue_call(now).map_err(|_| {
            AppError::NotFound(format!(
                "callback `{}` no longer waits for its call",
                record.id
            ))
        })
    })?
    .durable()
    .await?;
    route(state, &queued, &settings);
    tracing::info!(service_id = %queued.id, "inbound call matched; queued for an agent");
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_inbound_call_needs_a_code_or_a_number() {
        assert_eq!(
            InboundCall::parse(&fields(&[])).unwrap_err().field,
            "access_code"
        );
        assert_eq!(
            InboundCall::parse(&fields(&[("access_code", "12a4")]))
                .unwrap_err()
                .field,
            "access_code"
        );
        let call = InboundCall::parse(&fields(&[("caller_number", " 555 ")])).unwrap();
        assert_eq!(call.caller_number.as_deref(), Some("555"));
        assert_eq!(call.access_code, None);
    }
}
