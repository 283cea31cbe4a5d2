//! The JSON shapes of replies, taken from the seeds.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::app::lifecycle::Status;
use crate::domain::dialog::{self, Dialog};
use crate::domain::options::ValidService;
use crate::domain::service::{RoutingEventKind, ServiceRecord};

/// The StartChat dialog (seeds 000 `connect` and 001 create).
#[derive(Serialize, ToSchema)]
pub struct StartChatDialog {
    #[serde(rename = "_dialog_id")]
    dialog_id: &'static str,
    #[serde(rename = "_action")]
    action: &'static str,
    #[serde(rename = "_label")]
    label: &'static str,
    #[serde(rename = "_start_chat_url")]
    start_chat_url: String,
    #[serde(rename = "_comet_url")]
    comet_url: String,
    #[serde(rename = "_user_header")]
    user_header: String,
    #[serde(rename = "_id_to_jump_before")]
    id_to_jump_before: &'static str,
    #[serde(rename = "_chat_parameters")]
    chat_parameters: ChatParameters,
    #[serde(rename = "_id")]
    id: String,
}

#[derive(Serialize, ToSchema)]
struct ChatParameters {
    subject: String,
}

impl StartChatDialog {
    /// The dialog for `record`, with URLs under `base_url`.
    pub fn new(record: &ServiceRecord, base_url: &str) -> Self {
        Self {
            dialog_id: "1",
            action: "StartChat",
            label: "Start Chat",
            start_chat_url: format!("{base_url}/genesys/1/service/{}/ixn/chat", record.id),
            comet_url: format!("{base_url}/genesys/cometd"),
            user_header: record.owner.clone().unwrap_or_default(),
            id_to_jump_before: "exit://",
            chat_parameters: ChatParameters {
                subject: record
                    .user_data
                    .get("subject")
                    .cloned()
                    .unwrap_or_else(|| "None".to_string()),
            },
            id: record.id.clone(),
        }
    }
}

/// A `ConfirmationDialog`: a message the customer acknowledges. For a create that waits for
/// an agent it is seed 000's `_id` and `_text`, unchanged, with the keys of GMS's own dialogs
/// (`_dialog_id`, `_action`, `_ok_title`) and the same values under the names the Genesys
/// Android sample app's Gson POJO binds (`_dialogId`, `_okTitle`: its
/// `FieldNamingPolicy.IDENTITY` reads field names as they are). The app switches on
/// `_action`, which seed 000's reply lacks.
#[derive(Serialize, ToSchema)]
pub struct ConfirmationDialog {
    #[serde(rename = "_dialog_id")]
    dialog_id: &'static str,
    #[serde(rename = "_dialogId")]
    dialog_id_app: &'static str,
    #[serde(rename = "_action")]
    action: &'static str,
    #[serde(rename = "_ok_title")]
    ok_title: &'static str,
    #[serde(rename = "_okTitle")]
    ok_title_app: &'static str,
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_text")]
    text: &'static str,
}

impl ConfirmationDialog {
    /// The dialog saying `text` about `record`.
    pub fn new(record: &ServiceRecord, text: &'static str) -> Self {
        Self {
            dialog_id: "0",
            dialog_id_app: "0",
            action: "ConfirmationDialog",
            ok_title: "OK",
            ok_title_app: "OK",
            id: record.id.clone(),
            text,
        }
    }
}

/// A `DialNumber` dialog: the customer calls `_tel_url` (the access number, then the access
/// code as tones); `_access_number` and `_access_code` as GMS's access service names them.
#[derive(Serialize, ToSchema)]
pub struct DialNumberDialog {
    #[serde(rename = "_dialog_id")]
    dialog_id: &'static str,
    #[serde(rename = "_dialogId")]
    dialog_id_app: &'static str,
    #[serde(rename = "_action")]
    action: &'static str,
    #[serde(rename = "_label")]
    label: &'static str,
    #[serde(rename = "_tel_url")]
    tel_url: String,
    #[serde(rename = "_access_number")]
    access_number: String,
    #[serde(rename = "_access_code", skip_serializing_if = "Option::is_none")]
    access_code: Option<String>,
    #[serde(rename = "_id")]
    id: String,
}

/// A `DisplayMenu` dialog: one group of choices, each a URL the app GETs for the next
/// dialog (`CallbackDialog.DialogGroup` and `GroupContent` in the Genesys sample app).
#[derive(Serialize, ToSchema)]
pub struct DisplayMenuDialog {
    #[serde(rename = "_dialog_id")]
    dialog_id: &'static str,
    #[serde(rename = "_dialogId")]
    dialog_id_app: &'static str,
    #[serde(rename = "_action")]
    action: &'static str,
    #[serde(rename = "_label")]
    label: &'static str,
    #[serde(rename = "_content")]
    content: Vec<MenuGroup>,
    #[serde(rename = "_id")]
    id: String,
}

/// One group of a [`DisplayMenuDialog`].
#[derive(Serialize, ToSchema)]
pub struct MenuGroup {
    #[serde(rename = "_group_name")]
    group_name: &'static str,
    #[serde(rename = "_group_content")]
    group_content: Vec<MenuChoice>,
}

/// One choice of a [`MenuGroup`].
#[derive(Serialize, ToSchema)]
pub struct MenuChoice {
    #[serde(rename = "_label")]
    label: &'static str,
    #[serde(rename = "_user_action_url")]
    user_action_url: String,
}

/// A dialog of [`crate::domain::dialog`] as its JSON reply, with URLs under `base_url`.
pub fn dialog_reply(dialog: &Dialog, record: &ServiceRecord, base_url: &str) -> Value {
    let value = match dialog {
        Dialog::StartChat => serde_json::to_value(StartChatDialog::new(record, base_url)),
        Dialog::Confirmation(text) => serde_json::to_value(ConfirmationDialog::new(record, text)),
        Dialog::DialNumber { number, code } => serde_json::to_value(DialNumberDialog {
            dialog_id: "0",
            dialog_id_app: "0",
            action: dialog.action(),
            label: "Call the contact center",
            tel_url: dialog::tel_url(number, code.as_deref()),
            access_number: number.clone(),
            access_code: code.clone(),
            id: record.id.clone(),
        }),
        Dialog::Menu {
            label,
            group,
            choices,
        } => serde_json::to_value(DisplayMenuDialog {
            dialog_id: "0",
            dialog_id_app: "0",
            action: dialog.action(),
            label,
            content: vec![MenuGroup {
                group_name: group,
                group_content: choices
                    .iter()
                    .map(|choice| MenuChoice {
                        label: choice.label(),
                        user_action_url: format!(
                            "{base_url}/genesys/1/service/{}/{}",
                            record.id,
                            choice.as_str()
                        ),
                    })
                    .collect(),
            }],
            id: record.id.clone(),
        }),
    };
    value.unwrap_or_else(|err| {
        tracing::error!(error = %err, "a dialog did not serialize");
        Value::Null
    })
}

/// The generic Service API reply (seed 003): `{"_id"}`, plus the chat URL when verbose.
#[derive(Serialize, ToSchema)]
pub struct ServiceCreated {
    #[serde(
        rename = "_chatIxnAPI-CREATE-URL",
        skip_serializing_if = "Option::is_none"
    )]
    create_url: Option<String>,
    #[serde(rename = "_id")]
    id: String,
}

impl ServiceCreated {
    /// The reply for `record`.
    pub fn new(record: &ServiceRecord, verbose: bool) -> Self {
        Self {
            create_url: verbose.then(|| format!("/genesys/1/service/{}/ixn/chat", record.id)),
            id: record.id.clone(),
        }
    }
}

/// The `status` reply of seed 003: the message and the tag a push would carry.
pub fn status_view(id: &str, status: Status) -> Value {
    let (tag, message) = crate::domain::notification::poll_status(id, status == Status::Available);
    serde_json::json!({ "message": message, "tag": tag })
}

/// A record as the GMS callback query shows it: the `_` fields, then the user data.
pub fn query_entry(record: &ServiceRecord) -> Map<String, Value> {
    let mut entry = Map::new();
    for (key, value) in &record.user_data {
        entry.insert(key.clone(), Value::String(value.clone()));
    }
    let mut put = |key: &str, value: String| {
        entry.insert(key.to_string(), Value::String(value));
    };
    put("_id", record.id.clone());
    put("_service_name", record.service_name.clone());
    put("_callback_state", record.state.to_string());
    if let Some(reason) = record.reason {
        put("_callback_reason", reason.to_string());
    }
    put("_desired_time", record.desired_time.to_iso());
    put("_expiration_time", record.expire_at.to_iso());
    if let Some(number) = &record.customer_number {
        put("_customer_number", number.clone());
    }
    entry
}

/// A record as the older query form (`operand=AND|OR`, GMS 8.1) shows it: [`query_entry`]
/// with `desiredTime` (ISO 8601) and `url` (the service's URL under `base_url`), the keys
/// the Genesys sample app's `CallbackRequest` reads. They win over user data of the same
/// name, which this form cannot show.
pub fn older_query_entry(record: &ServiceRecord, base_url: &str) -> Map<String, Value> {
    let mut entry = query_entry(record);
    entry.insert(
        "desiredTime".to_string(),
        Value::String(record.desired_time.to_iso()),
    );
    entry.insert(
        "url".to_string(),
        Value::String(format!("{base_url}/genesys/1/service/{}", record.id)),
    );
    entry
}

/// A record as the admin queue query shows it: [`older_query_entry`] with `_customerNumber`
/// and `_callbackState` beside `_customer_number` and `_callback_state`, the keys the Genesys
/// sample app's `CallbackAdminRequest` reads.
pub fn admin_queue_entry(record: &ServiceRecord, base_url: &str) -> Map<String, Value> {
    let mut entry = older_query_entry(record, base_url);
    if let Some(number) = &record.customer_number {
        entry.insert("_customerNumber".to_string(), Value::String(number.clone()));
    }
    entry.insert(
        "_callbackState".to_string(),
        Value::String(record.state.to_string()),
    );
    entry
}

/// A service as the GMS callback query shows it ([`query_entry`]): the `_` fields, then the
/// user data as more text fields.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes `query_entry` for the OpenAPI document only
pub struct CallbackEntry {
    _id: String,
    _service_name: String,
    /// `SCHEDULED`, `QUEUED`, `ROUTING`, `PROCESSING` or `COMPLETED`.
    _callback_state: String,
    /// Set once COMPLETED (`CANCELLED`, `FAIL_TIMEOUT_TTL`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    _callback_reason: Option<String>,
    /// ISO 8601.
    _desired_time: String,
    /// ISO 8601.
    _expiration_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    _customer_number: Option<String>,
    /// User data.
    #[serde(flatten)]
    user_data: std::collections::BTreeMap<String, String>,
}

/// One state change of [`record_detail`].
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes `record_detail` for the OpenAPI document only
pub struct StateChangeView {
    time: String,
    state: String,
    reason: Option<String>,
    note: String,
}

/// One routing event of [`record_detail`].
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes `record_detail` for the OpenAPI document only
pub struct RoutingEventView {
    time: String,
    step: u64,
    /// `entered`, `skipped`, `timed_out`, `reserved` or `released`.
    event: String,
    detail: String,
}

/// A record in full ([`record_detail`]).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes `record_detail` for the OpenAPI document only
pub struct RecordDetail {
    _id: String,
    _service_name: String,
    _preset: String,
    _callback_state: String,
    _callback_reason: Option<String>,
    _customer_number: Option<String>,
    _gms_user: Option<String>,
    _device_os: Option<String>,
    _device_notification_id: Option<String>,
    _created_time: String,
    _desired_time: String,
    _expiration_time: String,
    _queued_time: Option<String>,
    _reserved_agent: Option<String>,
    _chat_session_id: Option<String>,
    /// The options snapshot taken at creation.
    options: std::collections::BTreeMap<String, String>,
    user_data: std::collections::BTreeMap<String, String>,
    state_history: Vec<StateChangeView>,
    routing_history: Vec<RoutingEventView>,
}

/// A configured service ([`configured_service`]).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes `configured_service` for the OpenAPI document only
pub struct ConfiguredServiceView {
    name: String,
    /// `Chat-Immediate`, `Chat-Delayed`, `Request-Chat`, `Request-Chat-Poll`, `Office-Hours`
    /// or `Capacity`.
    preset: String,
    /// What the administrator configured.
    options: std::collections::BTreeMap<String, String>,
    /// The preset's defaults with the configured options over them.
    effective_options: std::collections::BTreeMap<String, String>,
}

/// A record in full, for administrators.
pub fn record_detail(record: &ServiceRecord) -> Value {
    let history: Vec<Value> = record
        .state_history
        .iter()
        .map(|change| {
            serde_json::json!({
                "time": change.at.to_iso(),
                "state": change.state.as_str(),
                "reason": change.reason.map(|r| r.as_str()),
                "note": change.note,
            })
        })
        .collect();
    let routing: Vec<Value> = record
        .routing_history
        .iter()
        .map(|event| {
            let (kind, detail) = match &event.kind {
                RoutingEventKind::Entered { target } => ("entered", target.clone()),
                RoutingEventKind::Skipped { statistic, value } => {
                    ("skipped", format!("{statistic}={value}"))
                }
                RoutingEventKind::TimedOut => ("timed_out", String::new()),
                RoutingEventKind::Reserved { agent } => ("reserved", agent.clone()),
                RoutingEventKind::Released { agent, why } => {
                    ("released", format!("{agent}: {why}"))
                }
                RoutingEventKind::Dialed { agent, outcome } => {
                    ("dialed", format!("{agent}: {outcome}"))
                }
            };
            serde_json::json!({
                "time": event.at.to_iso(),
                "step": event.step,
                "event": kind,
                "detail": detail,
            })
        })
        .collect();
    serde_json::json!({
        "_id": record.id,
        "_service_name": record.service_name,
        "_preset": record.preset.name(),
        "_callback_state": record.state.as_str(),
        "_callback_reason": record.reason.map(|r| r.as_str()),
        "_customer_number": record.customer_number,
        "_gms_user": record.owner,
        "_device_os": record.device_os,
        "_device_notification_id": record.device_notification_id,
        "_created_time": record.created_at.to_iso(),
        "_desired_time": record.desired_time.to_iso(),
        "_expiration_time": record.expire_at.to_iso(),
        "_queued_time": record.queued_at.map(|t| t.to_iso()),
        "_reserved_agent": record.reserved_agent,
        "_chat_session_id": record.chat_session_id,
        "options": record.options,
        "user_data": record.user_data,
        "state_history": history,
        "routing_history": routing,
    })
}

/// An office-hours or capacity service, in the shape of [`configured_service`].
pub fn configured_schedule(service: &crate::domain::options::ScheduleService) -> Value {
    serde_json::json!({
        "name": service.config.name,
        "preset": service.config.preset.name(),
        "options": service.config.options,
        "effective_options": service.effective,
    })
}

/// A configured service for the admin API.
pub fn configured_service(service: &ValidService) -> Value {
    serde_json::json!({
        "name": service.config.name,
        "preset": service.config.preset.name(),
        "options": service.config.options,
        "effective_options": service.effective,
    })
}
