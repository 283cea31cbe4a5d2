//! The JSON shapes of replies, taken from the seeds.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::app::lifecycle::Status;
use crate::domain::dialog::{self, Choice, Dialog};
use crate::domain::options::ValidService;
use crate::domain::service::{RoutingEvent, RoutingEventKind, ServiceRecord};

/// The keys every dialog starts with, in this order: GMS's `_dialog_id`; the same value as
/// `_dialogId`, the name the Genesys Android sample app's Gson POJO binds (its
/// `FieldNamingPolicy.IDENTITY` reads field names as they are), on every dialog but StartChat,
/// which keeps seeds 000 and 001's keys exactly; `_action`, which the app switches on; and
/// `_label`, on the dialogs that have one.
#[derive(Serialize, ToSchema)]
pub struct DialogHeader {
    #[serde(rename = "_dialog_id")]
    dialog_id: &'static str,
    #[serde(rename = "_dialogId", skip_serializing_if = "Option::is_none")]
    dialog_id_app: Option<&'static str>,
    #[serde(rename = "_action")]
    action: &'static str,
    #[serde(rename = "_label", skip_serializing_if = "Option::is_none")]
    label: Option<&'static str>,
}

impl DialogHeader {
    /// The header of a dialog the sample app reads: `_dialog_id` and `_dialogId` both
    /// `dialog_id`.
    fn new(dialog_id: &'static str, action: &'static str, label: Option<&'static str>) -> Self {
        Self {
            dialog_id,
            dialog_id_app: Some(dialog_id),
            action,
            label,
        }
    }
}

/// The StartChat dialog (seeds 000 `connect` and 001 create).
#[derive(Serialize, ToSchema)]
pub struct StartChatDialog {
    #[serde(flatten)]
    header: DialogHeader,
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
            // Seeds 000 and 001's keys exactly: no `_dialogId`.
            header: DialogHeader {
                dialog_id: "1",
                dialog_id_app: None,
                action: "StartChat",
                label: Some("Start Chat"),
            },
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
/// an agent it is seed 000's `_id` and `_text`, unchanged, after the [`DialogHeader`] and
/// GMS's `_ok_title` with the sample app's `_okTitle` beside it. The app switches on
/// `_action`, which seed 000's reply lacks.
#[derive(Serialize, ToSchema)]
pub struct ConfirmationDialog {
    #[serde(flatten)]
    header: DialogHeader,
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
            header: DialogHeader::new("0", "ConfirmationDialog", None),
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
    #[serde(flatten)]
    header: DialogHeader,
    #[serde(rename = "_tel_url")]
    tel_url: String,
    #[serde(rename = "_access_number")]
    access_number: String,
    #[serde(rename = "_access_code", skip_serializing_if = "Option::is_none")]
    access_code: Option<String>,
    #[serde(rename = "_id")]
    id: String,
}

impl DialNumberDialog {
    /// The dialog giving `record`'s customer `number` to call and, if any, `code` to key in.
    fn new(record: &ServiceRecord, number: &str, code: Option<&str>) -> Self {
        Self {
            header: DialogHeader::new("0", "DialNumber", Some("Call the contact center")),
            tel_url: dialog::tel_url(number, code),
            access_number: number.to_string(),
            access_code: code.map(str::to_string),
            id: record.id.clone(),
        }
    }
}

/// A `DisplayMenu` dialog: one group of choices, each a URL the app GETs for the next
/// dialog (`CallbackDialog.DialogGroup` and `GroupContent` in the Genesys sample app).
#[derive(Serialize, ToSchema)]
pub struct DisplayMenuDialog {
    #[serde(flatten)]
    header: DialogHeader,
    #[serde(rename = "_content")]
    content: Vec<MenuGroup>,
    #[serde(rename = "_id")]
    id: String,
}

impl DisplayMenuDialog {
    /// The menu titled `label` with one group `group` of `choices`, each a URL under
    /// `base_url` about `record`.
    fn new(
        record: &ServiceRecord,
        label: &'static str,
        group: &'static str,
        choices: &[Choice],
        base_url: &str,
    ) -> Self {
        Self {
            header: DialogHeader::new("0", "DisplayMenu", Some(label)),
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
        }
    }
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
        Dialog::DialNumber { number, code } => {
            serde_json::to_value(DialNumberDialog::new(record, number, code.as_deref()))
        }
        Dialog::Menu {
            label,
            group,
            choices,
        } => serde_json::to_value(DisplayMenuDialog::new(
            record, label, group, choices, base_url,
        )),
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

/// A record in full, for administrators, with its routing history (oldest first).
pub fn record_detail(record: &ServiceRecord, routing_history: &[RoutingEvent]) -> Value {
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
    let routing: Vec<Value> = routing_history
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::options::Preset;
    use crate::domain::time::Timestamp;

    fn record() -> ServiceRecord {
        let mut record = ServiceRecord::new(
            "s-1",
            "sample-app",
            Preset::ChatImmediate,
            Timestamp::from_millis(0),
        );
        record.owner = Some("alice".into());
        record.user_data.insert("subject".into(), "Billing".into());
        record
    }

    /// Every dialog's reply, byte for byte as clients (the seeds' and the Genesys sample app's)
    /// have been reading them: key names, order and values.
    #[test]
    fn every_dialog_is_answered_byte_for_byte_as_before() {
        let record = record();
        let base = "http://h:1";
        let cases: [(&str, Dialog, &str); 5] = [
            (
                "StartChat",
                Dialog::StartChat,
                r#"{"_dialog_id":"1","_action":"StartChat","_label":"Start Chat","_start_chat_url":"http://h:1/genesys/1/service/s-1/ixn/chat","_comet_url":"http://h:1/genesys/cometd","_user_header":"alice","_id_to_jump_before":"exit://","_chat_parameters":{"subject":"Billing"},"_id":"s-1"}"#,
            ),
            (
                "ConfirmationDialog",
                Dialog::Confirmation("Wait"),
                r#"{"_dialog_id":"0","_dialogId":"0","_action":"ConfirmationDialog","_ok_title":"OK","_okTitle":"OK","_id":"s-1","_text":"Wait"}"#,
            ),
            (
                "DialNumber with a code",
                Dialog::DialNumber {
                    number: "+1 800".into(),
                    code: Some("123".into()),
                },
                r#"{"_dialog_id":"0","_dialogId":"0","_action":"DialNumber","_label":"Call the contact center","_tel_url":"tel:+1800,,123","_access_number":"+1 800","_access_code":"123","_id":"s-1"}"#,
            ),
            (
                "DialNumber without a code",
                Dialog::DialNumber {
                    number: "+1 800".into(),
                    code: None,
                },
                r#"{"_dialog_id":"0","_dialogId":"0","_action":"DialNumber","_label":"Call the contact center","_tel_url":"tel:+1800","_access_number":"+1 800","_id":"s-1"}"#,
            ),
            (
                "DisplayMenu",
                Dialog::Menu {
                    label: "An agent",
                    group: "Now?",
                    choices: Choice::ALL.to_vec(),
                },
                r#"{"_dialog_id":"0","_dialogId":"0","_action":"DisplayMenu","_label":"An agent","_content":[{"_group_name":"Now?","_group_content":[{"_label":"Yes, connect me now","_user_action_url":"http://h:1/genesys/1/service/s-1/dialog-user-confirmation-accept"},{"_label":"No, cancel my request","_user_action_url":"http://h:1/genesys/1/service/s-1/dialog-user-confirmation-decline"}]}],"_id":"s-1"}"#,
            ),
        ];
        for (what, dialog, expected) in cases {
            // The reply goes through a `serde_json::Value`, whose map orders the keys by
            // serde_json's features; the struct's own order is pinned below.
            let reply = serde_json::to_string(&dialog_reply(&dialog, &record, base)).unwrap();
            let canonical = serde_json::from_str::<Value>(expected).unwrap().to_string();
            assert_eq!(reply, canonical, "{what} through dialog_reply");
            let direct = match &dialog {
                Dialog::StartChat => serde_json::to_string(&StartChatDialog::new(&record, base)),
                Dialog::Confirmation(text) => {
                    serde_json::to_string(&ConfirmationDialog::new(&record, text))
                }
                Dialog::DialNumber { number, code } => {
                    serde_json::to_string(&DialNumberDialog::new(&record, number, code.as_deref()))
                }
                Dialog::Menu {
                    label,
                    group,
                    choices,
                } => serde_json::to_string(&DisplayMenuDialog::new(
                    &record, label, group, choices, base,
                )),
            }
            .unwrap();
            assert_eq!(direct, expected, "{what} serialized directly");
        }
    }
}
