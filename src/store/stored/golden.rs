//! Golden bytes: fixed values of each kind the store writes (a few of a kind, to go through
//! every variant of its enums), and the bytes the release before these stored types wrote for
//! them (domain structs encoded directly), committed in `golden/<kind>.hex`, one value a
//! line. Each test checks that those bytes still read as the value, and that the value still
//! encodes to those bytes: a format change, meant or not, fails here. Never rewrite a
//! fixture: a new format gets a new fixture beside the old one, which must still read
//! (through its migration).

use std::collections::BTreeMap;

use crate::domain::agent::{AgentConfig, AgentRecord, AgentState};
use crate::domain::chat::session::{ChatSession, Customer, SessionAgent};
use crate::domain::chat::{EventKind, TranscriptEvent, UserType, Visibility};
use crate::domain::idle::{IdleSettings, IdleState};
use crate::domain::notification::Notification;
use crate::domain::options::{ConfiguredService, Preset};
use crate::domain::service::{
    CallbackReason, CallbackState, RouteProgress, RoutingEvent, RoutingEventKind, ServiceRecord,
    StateChange,
};
use crate::domain::status::{Delivery, Mode, StatusEvent, StatusNotification};
use crate::domain::storage::{StorageArea, StorageEntry};
use crate::domain::subscription::{Channel, Subscription};
use crate::domain::throttle::Window;
use crate::domain::time::Timestamp;

const PRESETS: [Preset; 11] = [
    Preset::ChatImmediate,
    Preset::ChatDelayed,
    Preset::RequestChat,
    Preset::RequestChatPoll,
    Preset::OfficeHours,
    Preset::Capacity,
    Preset::UserTerminatedImmediate,
    Preset::UserTerminatedDelayed,
    Preset::UserTerminatedScheduled,
    Preset::UserOriginatedImmediate,
    Preset::UserOriginatedDelayed,
];

const REASONS: [CallbackReason; 8] = [
    CallbackReason::Cancelled,
    CallbackReason::CancelledByAdmin,
    CallbackReason::FailTimeoutTtl,
    CallbackReason::FailUserNoConfirm,
    CallbackReason::FailTargetNotFound,
    CallbackReason::FailError,
    CallbackReason::AgentConnected,
    CallbackReason::FailCallToCustomer,
];

fn at(millis: u64) -> Timestamp {
    Timestamp::from_millis(1_764_000_000_000 + millis)
}

/// A service with every optional field set, every state and reason in its history and every
/// routing event kind; then one bare service per preset and per state. Each with its routing
/// history (which format 2 stored inside the record), the record noting what it keeps of it.
pub(crate) fn services() -> Vec<(ServiceRecord, Vec<RoutingEvent>)> {
    let mut state_history: Vec<StateChange> = CallbackState::ALL
        .iter()
        .enumerate()
        .map(|(i, state)| StateChange {
            at: at(i as u64 * 1_000),
            state: *state,
            reason: None,
            note: format!("entered {state}"),
        })
        .collect();
    state_history.extend(REASONS.iter().enumerate().map(|(i, reason)| StateChange {
        at: at(10_000 + i as u64),
        state: CallbackState::Completed,
        reason: Some(*reason),
        note: String::new(),
    }));
    let rich_history = vec![
        RoutingEvent {
            at: at(60_002),
            step: 1,
            kind: RoutingEventKind::Entered {
                target: "Billing@StatServer.GA".into(),
            },
        },
        RoutingEvent {
            at: at(60_003),
            step: 2,
            kind: RoutingEventKind::Skipped {
                statistic: "CurrNumberWaitingCalls".into(),
                value: -42,
            },
        },
        RoutingEvent {
            at: at(60_004),
            step: 1,
            kind: RoutingEventKind::TimedOut,
        },
        RoutingEvent {
            at: at(60_005),
            step: 1,
            kind: RoutingEventKind::Reserved {
                agent: "kristi".into(),
            },
        },
        RoutingEvent {
            at: at(60_006),
            step: 0,
            kind: RoutingEventKind::Released {
                agent: "kristi".into(),
                why: "not confirmed".into(),
            },
        },
        RoutingEvent {
            at: at(60_007),
            step: 0,
            kind: RoutingEventKind::Dialed {
                agent: "ann".into(),
                outcome: "busy".into(),
            },
        },
    ];
    let mut rich = ServiceRecord {
        id: "6f1c2a9e-4b7d-4c1e-9a3f-0d2b8e5c7a14".into(),
        service_name: "chat-delay".into(),
        preset: Preset::ChatDelayed,
        options: BTreeMap::from([
            ("_ttl".to_string(), "86400".to_string()),
            (
                "_target".to_string(),
                "Billing@StatServer.GA,English>=5@StatServer.SG".to_string(),
            ),
        ]),
        user_data: BTreeMap::from([
            ("usr_reason".to_string(), "billing".to_string()),
            ("usr_ünïcode".to_string(), "日本語".to_string()),
        ]),
        owner: Some("alice".into()),
        customer_number: Some("+15551234567".into()),
        device_os: Some("comet".into()),
        device_notification_id: Some("https://example.com/push/1".into()),
        state: CallbackState::Completed,
        reason: Some(CallbackReason::AgentConnected),
        created_at: at(0),
        desired_time: at(60_000),
        expire_at: at(86_460_000),
        queued_at: Some(at(60_001)),
        state_history,
        reservations: Vec::new(),
        dial_attempts: 0,
        reserved_agent: Some("ann".into()),
        chat_session_id: Some("00AB12CD34EF5678".into()),
        route: Some(RouteProgress {
            step: 3,
            step_entered_at: at(60_008),
            target_set: vec![0, 2, 300],
        }),
        confirmed_at: Some(at(60_009)),
    };
    rich.note_routing(&rich_history);
    let bare = |i: usize, preset: Preset, state: CallbackState| ServiceRecord {
        id: format!("bare-{i}"),
        service_name: format!("service-{i}"),
        preset,
        options: BTreeMap::new(),
        user_data: BTreeMap::new(),
        owner: None,
        customer_number: None,
        device_os: None,
        device_notification_id: None,
        state,
        reason: None,
        created_at: at(i as u64),
        desired_time: at(i as u64),
        expire_at: at(i as u64 + 1),
        queued_at: None,
        state_history: Vec::new(),
        reservations: Vec::new(),
        dial_attempts: 0,
        reserved_agent: None,
        chat_session_id: None,
        route: None,
        confirmed_at: None,
    };
    let mut all = vec![(rich, rich_history)];
    all.extend(
        PRESETS
            .iter()
            .enumerate()
            .map(|(i, preset)| (bare(i, *preset, CallbackState::Scheduled), Vec::new())),
    );
    all.extend(
        CallbackState::ALL
            .iter()
            .enumerate()
            .map(|(i, state)| (bare(100 + i, Preset::RequestChat, *state), Vec::new())),
    );
    all
}

/// Every routing event kind (the rich service's history).
fn routing_events() -> Vec<RoutingEvent> {
    services().swap_remove(0).1
}

fn notifications() -> Vec<Notification> {
    vec![
        Notification {
            seq: 7,
            tag: "service.agentavailable.6f1c2a9e".into(),
            message:
                r#"{"_action":"get-dialog-user-confirmation-provide_code-false","_id":"6f1c2a9e"}"#
                    .into(),
            created_at: at(5),
            delivered: false,
        },
        Notification {
            seq: u64::MAX,
            tag: String::new(),
            message: "{}".into(),
            created_at: at(0),
            delivered: true,
        },
    ]
}

/// One status notification per event, the modes and deliveries in turn, the optional fields
/// set on every other one.
fn status_notifications() -> Vec<StatusNotification> {
    const DELIVERIES: [Delivery; 3] = [Delivery::Pending, Delivery::Delivered, Delivery::Failed];
    StatusEvent::ALL
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let full = i % 2 == 0;
            StatusNotification {
                seq: i as u64 * 1_000,
                event: *event,
                mode: if full {
                    Mode::SubscribeNotify
                } else {
                    Mode::Notify
                },
                url: full.then(|| "http://127.0.0.1:9/status".to_string()),
                tag: format!("callback.chat-delay.{}", event.as_str()),
                body: format!(r#"{{"event":"{}","seq":{i}}}"#, event.as_str()),
                created_at: at(i as u64),
                attempts: i as u32,
                max_attempts: 5,
                delivery: DELIVERIES[i % 3],
                next_at: at(60_000 + i as u64),
                last_error: full.then(|| "HTTP 503".to_string()),
                finished_at: full.then(|| at(120_000)),
            }
        })
        .collect()
}

fn chat_sessions() -> Vec<ChatSession> {
    let rich = ChatSession {
        id: "00AB12CD34EF5678".into(),
        service_id: "6f1c2a9e-4b7d-4c1e-9a3f-0d2b8e5c7a14".into(),
        owner: Some("alice".into()),
        created_at: at(1_000),
        customer: Customer {
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            email: Some("jane@example.com".into()),
            subject: Some("Billing".into()),
            nickname: "Jane".into(),
            time_zone_offset: Some("-120".into()),
            user_id: "007553A5D87E000A".into(),
            secure_key: "8b31761b2154884c".into(),
        },
        comet: true,
        agent: Some(SessionAgent {
            id: "kristi".into(),
            nickname: "Kristi Sippola".into(),
            joined: true,
        }),
        closed_at: Some(at(9_000)),
        next_position: 12,
        client_position: 9,
        on_hold: true,
        language: Some("fi".into()),
        restored: true,
        idle: IdleSettings {
            enabled: true,
            include_notices: true,
            timeout_alert_secs: 30,
            message_alert: "Still there?".into(),
            timeout_alert2_secs: 45,
            message_alert2: "Last call".into(),
            timeout_close_secs: 90,
            message_close: "Closed.".into(),
        },
        idle_state: IdleState {
            last_activity: at(8_000),
            alerts_sent: 2,
        },
    };
    let bare = ChatSession {
        id: "0000000000000001".into(),
        service_id: "bare-1".into(),
        owner: None,
        created_at: at(0),
        customer: Customer::default(),
        comet: false,
        agent: Some(SessionAgent {
            id: "ann".into(),
            nickname: "Ann".into(),
            joined: false,
        }),
        closed_at: None,
        next_position: 1,
        client_position: 1,
        on_hold: false,
        language: None,
        restored: false,
        idle: IdleSettings::default(),
        idle_state: IdleState::new(at(0)),
    };
    let mut no_agent = bare.clone();
    no_agent.id = "0000000000000002".into();
    no_agent.agent = None;
    vec![rich, bare, no_agent]
}

/// One event of every kind, going through every user type and visibility.
fn transcript_events() -> Vec<TranscriptEvent> {
    let kinds = [
        EventKind::Message,
        EventKind::Joined,
        EventKind::Left,
        EventKind::TypingStarted,
        EventKind::TypingStopped,
        EventKind::PushUrl,
        EventKind::Custom,
        EventKind::NicknameUpdated,
    ];
    let users = [UserType::Agent, UserType::Client, UserType::External];
    let visibilities = [Visibility::All, Visibility::Int, Visibility::Vip];
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| TranscriptEvent {
            position: i as u64 + 1,
            kind: *kind,
            nickname: format!("nick {i}"),
            text: if i == 0 {
                "Hello, ünïcode ✓".into()
            } else {
                String::new()
            },
            at: at(i as u64 * 10),
            user_type: users[i % users.len()],
            visibility: visibilities[i % visibilities.len()],
            message_type: (i % 2 == 0).then(|| "rich".to_string()),
            attributes: (i % 3 == 0).then(|| r#"{"a":{"b":"c"}}"#.to_string()),
        })
        .collect()
}

/// One configured service per preset.
fn templates() -> Vec<ConfiguredService> {
    PRESETS
        .iter()
        .enumerate()
        .map(|(i, preset)| ConfiguredService {
            name: format!("template-{i}"),
            preset: *preset,
            options: if i == 0 {
                BTreeMap::new()
            } else {
                BTreeMap::from([
                    ("_ttl".to_string(), "3600".to_string()),
                    ("_vq".to_string(), format!("VQ_{i}")),
                ])
            },
        })
        .collect()
}

/// One agent per state, the first with everything set.
fn agents() -> Vec<AgentRecord> {
    [
        AgentState::NotReady,
        AgentState::LoggedOut,
        AgentState::Ready,
    ]
    .iter()
    .enumerate()
    .map(|(i, state)| AgentRecord {
        config: AgentConfig {
            id: format!("agent-{i}"),
            name: format!("Agent {i}"),
            groups: if i == 0 {
                vec!["Billing".into(), "Sales".into()]
            } else {
                Vec::new()
            },
            place: (i == 0).then(|| "place_101".to_string()),
            place_groups: if i == 0 {
                vec!["Floor 1".into()]
            } else {
                Vec::new()
            },
            skills: if i == 0 {
                BTreeMap::from([("English".to_string(), 20), ("Finnish".to_string(), -3)])
            } else {
                BTreeMap::new()
            },
            capacity: if i == 0 {
                BTreeMap::from([("chat".to_string(), 2), ("voice".to_string(), 1)])
            } else {
                BTreeMap::new()
            },
            auto_answer: i == 0,
        },
        state: *state,
        state_since: at(7_000 + i as u64),
        idle_since: at(6_000 + i as u64),
        reason: (i == 0).then(|| "Break".to_string()),
    })
    .collect()
}

fn storage_areas() -> Vec<StorageArea> {
    vec![
        StorageArea {
            id: "area-1".into(),
            owner: Some("alice".into()),
            created_at: at(0),
            expire_at: at(3_600_000),
            entries: vec![
                StorageEntry::text("name", "Jane ✓"),
                StorageEntry {
                    key: "photo".into(),
                    value: vec![0, 1, 2, 254, 255],
                    content_type: Some("image/png".into()),
                },
            ],
        },
        StorageArea {
            id: "6f1c2a9e-4b7d-4c1e-9a3f-0d2b8e5c7a14".into(),
            owner: None,
            created_at: at(1),
            expire_at: at(2),
            entries: Vec::new(),
        },
    ]
}

/// One subscription per channel.
fn subscriptions() -> Vec<Subscription> {
    let channels = [
        Channel::Comet {
            gms_user: "alice".into(),
        },
        Channel::HttpCallback {
            url: "https://example.com/hook".into(),
        },
        Channel::CustomHttp {
            url: "https://example.com/custom".into(),
            device_id: "device-7".into(),
            authorization: Some("Bearer x".into()),
        },
        Channel::CustomHttp {
            url: "https://example.com/custom".into(),
            device_id: String::new(),
            authorization: None,
        },
    ];
    channels
        .into_iter()
        .enumerate()
        .map(|(i, channel)| Subscription {
            id: format!("sub-{i}"),
            owner: (i % 2 == 0).then(|| "alice".to_string()),
            subscriber_id: format!("subscriber-{i}"),
            provider_name: (i == 2).then(|| "customhttp".to_string()),
            filter: "service.*".into(),
            channel,
            properties: if i == 2 {
                BTreeMap::from([("url".to_string(), "https://example.com/custom".to_string())])
            } else {
                BTreeMap::new()
            },
            created_at: at(i as u64),
            expire_at: at(86_400_000 + i as u64),
        })
        .collect()
}

fn throttle_windows() -> Vec<Window> {
    vec![
        Window {
            start: at(0),
            count: 1,
        },
        Window {
            start: Timestamp::from_millis(0),
            count: u64::MAX,
        },
    ]
}

fn throttle_counts() -> Vec<u64> {
    vec![0, 1, 250, 65_536, u64::MAX]
}

fn schema_versions() -> Vec<u32> {
    vec![1, 10, 300]
}

fn marks() -> Vec<bool> {
    vec![true, false]
}

/// The fixture `name`: one value a line, in hex.
pub(crate) fn fixture(name: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/store/stored/golden")
        .join(format!("{name}.hex"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    text.lines().map(|line| from_hex(line.trim())).collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(line: &str) -> Vec<u8> {
    (0..line.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("a hex fixture"))
        .collect()
}

use super::super::codec;
use super::super::StoreError;
use super::{
    agent, chat, meta, notification, routing, service, status, storage, template, throttle,
};

/// Checks `values` against the fixture `name`, both ways.
fn check<T: PartialEq + std::fmt::Debug>(
    name: &str,
    values: Vec<T>,
    encode: impl Fn(&T) -> Result<Vec<u8>, StoreError>,
    decode: impl Fn(&[u8], &str) -> Result<T, StoreError>,
) {
    let fixture = fixture(name);
    assert_eq!(
        fixture.len(),
        values.len(),
        "{name}: one fixture line per value"
    );
    for (i, (bytes, value)) in fixture.iter().zip(&values).enumerate() {
        let read = decode(bytes, name).unwrap_or_else(|err| panic!("{name} {i}: {err}"));
        assert_eq!(
            &read, value,
            "{name} {i}: today's bytes read as another value"
        );
        let written = encode(value).unwrap_or_else(|err| panic!("{name} {i}: {err}"));
        assert_eq!(
            to_hex(&written),
            to_hex(bytes),
            "{name} {i}: the value no longer encodes to today's bytes: the stored format changed"
        );
    }
}

/// Format 2, which held the routing history: its bytes still read, as the record and its
/// history (migration 0011 has its own frozen copy; this holds the live conversions to it).
#[test]
fn service_records_of_format_2_read_and_write_their_bytes() {
    check(
        "service",
        services(),
        |(record, history)| service::encode_v2(record, history),
        service::decode_v2,
    );
}

#[test]
fn service_records_read_and_write_today_s_bytes() {
    check(
        "service_v3",
        services().into_iter().map(|(record, _)| record).collect(),
        service::encode,
        service::decode,
    );
}

/// The access check's prefix read ([`service::decode_access`]) finds the same service name
/// and owner in today's bytes as the whole record does.
#[test]
fn service_records_answer_their_access_from_today_s_bytes() {
    let records: Vec<ServiceRecord> = services().into_iter().map(|(record, _)| record).collect();
    assert!(
        records.iter().any(|r| r.owner.is_some()) && records.iter().any(|r| r.owner.is_none()),
        "the fixture holds records with and without an owner"
    );
    for (i, (bytes, record)) in fixture("service_v3").iter().zip(&records).enumerate() {
        let access = service::decode_access(bytes, "service_v3")
            .unwrap_or_else(|err| panic!("service_v3 {i}: {err}"));
        assert_eq!(access, record.access(), "service_v3 {i}");
    }
}

#[test]
fn routing_events_read_and_write_today_s_bytes() {
    check(
        "routing_event",
        routing_events(),
        routing::encode,
        routing::decode,
    );
}

#[test]
fn notifications_read_and_write_today_s_bytes() {
    check(
        "notification",
        notifications(),
        notification::encode,
        notification::decode,
    );
}

#[test]
fn status_notifications_read_and_write_today_s_bytes() {
    check(
        "status_notification",
        status_notifications(),
        status::encode,
        status::decode,
    );
}

#[test]
fn chat_sessions_read_and_write_today_s_bytes() {
    check(
        "chat_session",
        chat_sessions(),
        chat::encode_session,
        chat::decode_session,
    );
}

#[test]
fn transcript_events_read_and_write_today_s_bytes() {
    check(
        "transcript_event",
        transcript_events(),
        chat::encode_event,
        chat::decode_event,
    );
}

#[test]
fn configured_services_read_and_write_today_s_bytes() {
    check("template", templates(), template::encode, template::decode);
}

#[test]
fn agents_read_and_write_today_s_bytes() {
    check("agent", agents(), agent::encode, agent::decode);
}

#[test]
fn storage_areas_read_and_write_today_s_bytes() {
    check(
        "storage_area",
        storage_areas(),
        |area| codec::write(&storage::StorageAreaV1::from(area)),
        |bytes, what| codec::read::<storage::StorageAreaV1>(bytes, what).map(Into::into),
    );
}

#[test]
fn subscriptions_read_and_write_today_s_bytes() {
    check(
        "subscription",
        subscriptions(),
        |s| codec::write(&storage::SubscriptionV1::from(s)),
        |bytes, what| codec::read::<storage::SubscriptionV1>(bytes, what).map(Into::into),
    );
}

#[test]
fn throttle_windows_and_counts_read_and_write_today_s_bytes() {
    check(
        "throttle_window",
        throttle_windows(),
        |w| codec::write(&throttle::WindowV1::from(w)),
        |bytes, what| codec::read::<throttle::WindowV1>(bytes, what).map(Into::into),
    );
    check(
        "throttle_count",
        throttle_counts(),
        |n| codec::write(&throttle::CountV1(*n)),
        |bytes, what| codec::read::<throttle::CountV1>(bytes, what).map(|n| n.0),
    );
}

#[test]
fn schema_versions_and_marks_read_and_write_today_s_bytes() {
    check(
        "schema_version",
        schema_versions(),
        |v| codec::write(&meta::SchemaVersionV1(*v)),
        |bytes, what| codec::read::<meta::SchemaVersionV1>(bytes, what).map(|v| v.0),
    );
    check(
        "mark",
        marks(),
        |m| codec::write(&meta::MarkV1(*m)),
        |bytes, what| codec::read::<meta::MarkV1>(bytes, what).map(|m| m.0),
    );
}

/// The fixtures are not empty lines or a truncated file: a value cut short must not read.
#[test]
fn a_golden_value_cut_short_is_refused() {
    let bytes = &fixture("service_v3")[0];
    for len in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            service::decode(&bytes[..len], "service").is_err(),
            "a service cut to {len} bytes read"
        );
    }
}
