//! Notification fan-out: where a customer-bound notification goes once it is stored.
//!
//! Every notification is first stored ([`Notifier::record`]); the caller waits for the group
//! commit and only then hands it to [`Notifier::deliver`], so nothing is pushed that a crash
//! could take back. Delivery follows the service's `_device_os`:
//!
//! - `comet`: queued for every CometD client of the service's owner (`gms_user`) through a
//!   [`CometSink`]. Queued is not delivered: the CometD server announces when a connect reply
//!   carrying it is built for a client without the acknowledgement extension, or when a client
//!   with it acknowledges it, and only then is it marked delivered
//!   ([`Notifier::mark_delivered`]). Until then it stays undelivered in storage, so a restart
//!   (even `kill -9`) or a client that never fetches it loses nothing: a client that subscribes
//!   later gets what its user missed through [`Notifier::replay`].
//! - `httpcb`: POSTed by a background worker ([`httpcb`]) to the `_device_notification_id`
//!   URL, with retries; a 2xx marks it delivered.
//! - `fcm`, `gcm`: sent through FCM's HTTP v1 API ([`fcm`]) to the registration token in
//!   `_device_notification_id` by the same worker, when `[push.fcm]` is configured; a 2xx
//!   marks it delivered.
//! - the other GMS push types (`ios` without APNs here, `android`, `customhttp`, `orscb`), and
//!   `fcm`/`gcm` without `[push.fcm]` or without a token: nothing is pushed, and the log says
//!   so once per service ([`PollingNotices`]); the app polls.
//! - none: nothing is pushed; the app polls `retrieve-notifications`.
//!
//! Whatever is not marked delivered is returned by `retrieve-notifications`. Marking is not
//! waited for (no group commit): after a crash a notification may be delivered twice, never
//! lost. The pushed JSON is the same for both channels: [`envelope`].
//!
//! This module must not know how CometD works: the CometD server implements [`CometSink`].

pub mod comet;
pub mod egress;
pub mod fcm;
pub mod httpcb;
pub mod writer;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::cometd::{Reach, Receipt};
use crate::domain::notification::Notification;
use crate::domain::options::PushProvider;
use crate::domain::service::ServiceRecord;
use crate::domain::subscription::{Channel, Subscription};
use crate::domain::time::Timestamp;
use crate::store::{NewNotification, Pending, Store, StoreError};

pub use fcm::{Fcm, FcmCredentials, FcmSettings};
pub use httpcb::{HttpCallbackSettings, HttpCallbacks};
pub use writer::NotificationWriter;

/// Where comet pushes go (implemented by the CometD server). `receipt` names the stored
/// notification a push carries (`None` for a transient push): the CometD server gives it back
/// through [`Notifier::mark_delivered`] once a client has it (a connect reply carries it, or
/// the client acknowledges it).
pub trait CometSink: Send + Sync + 'static {
    /// Queues {"id","message","tag"} for every subscribed client of `gms_user`; returns whom
    /// it reached.
    fn publish(
        &self,
        gms_user: &str,
        tag: &str,
        message: &serde_json::Value,
        receipt: Option<Receipt>,
    ) -> Reach;
    /// Queues it for one client (replay after subscribe); returns whom it reached (nobody, or
    /// that client).
    fn publish_to(
        &self,
        client_id: &str,
        tag: &str,
        message: &serde_json::Value,
        receipt: Option<Receipt>,
    ) -> Reach;
}

/// The JSON a push carries, on every channel (seed 000 "Push Notification Data"):
/// `{"id":"<32 hex>","message":{...},"tag":"<tag>"}`.
pub fn envelope(tag: &str, message: &serde_json::Value) -> serde_json::Value {
    let push = crate::cometd::Push::new(tag, message.clone());
    serde_json::json!({ "id": push.id, "message": push.message, "tag": push.tag })
}

/// How a service's customer is reached, from its `_device_os`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// CometD clients of the owner.
    Comet,
    /// HTTP POST to this URL (`_device_notification_id`).
    HttpCallback {
        /// Where the POST goes.
        url: String,
    },
    /// FCM (`fcm`, or `gcm`, whose tokens are FCM tokens) to this registration token.
    Fcm {
        /// `fcm` or `gcm`, for the log.
        device_os: PushProvider,
        /// `_device_notification_id`.
        token: String,
    },
    /// A push type GMS knows and callbackd does not deliver: the app polls, and the log
    /// says so once.
    Undelivered {
        /// The service's `_device_os`.
        device_os: PushProvider,
        /// Why nothing is pushed, for the log.
        reason: &'static str,
    },
    /// No push: the app polls.
    None,
}

/// Everything the push layer needs to know about a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The service the notifications are about.
    pub service_id: String,
    /// Its owner's `gms_user`; CometD pushes go only to clients of this user.
    pub owner: Option<String>,
    /// The channel chosen at creation.
    pub provider: Provider,
}

impl PushTarget {
    /// The push target of a stored service. An `httpcb` service without a URL (which
    /// creation refuses) falls back to polling, as every push type does that callbackd does
    /// not deliver.
    pub fn of(record: &ServiceRecord) -> PushTarget {
        let device_os = record.device_os.as_deref().and_then(PushProvider::parse);
        let token = record.device_notification_id.clone();
        let provider = match (device_os, token) {
            (None, _) => Provider::None,
            (Some(PushProvider::Comet), _) => Provider::Comet,
            (Some(PushProvider::HttpCallback), Some(url)) => Provider::HttpCallback { url },
            (Some(device_os @ (PushProvider::Fcm | PushProvider::Gcm)), Some(token)) => {
                Provider::Fcm { device_os, token }
            }
            (Some(device_os), _) => Provider::Undelivered {
                device_os,
                reason: not_delivered_because(device_os),
            },
        };
        PushTarget {
            service_id: record.id.clone(),
            owner: record.owner.clone(),
            provider,
        }
    }

    /// The user whose CometD clients should get this service's notifications: the owner of a
    /// comet service. A service without owner gets no comet push (a CometD client is always
    /// bound to a `gms_user`).
    pub fn comet_user(&self) -> Option<&str> {
        match self.provider {
            Provider::Comet => self.owner.as_deref(),
            _ => None,
        }
    }
}

/// Why a service with this push type gets no push, for the log.
fn not_delivered_because(device_os: PushProvider) -> &'static str {
    match device_os {
        PushProvider::Ios => "APNs delivery is not implemented",
        PushProvider::Android => "C2DM, GMS's `android` push, no longer exists",
        PushProvider::CustomHttp => "customhttp delivery for services is not implemented",
        PushProvider::OrsCallback => "there is no Orchestration Server to call back",
        // The delivered types end up here only without their URL or token (comet needs none).
        PushProvider::Comet
        | PushProvider::HttpCallback
        | PushProvider::Fcm
        | PushProvider::Gcm => "no _device_notification_id was given",
    }
}

/// Notifications most replayed to one subscribing client.
const REPLAY_LIMIT: usize = 1000;

/// Services remembered by [`PollingNotices`]; when full, it starts afresh.
pub const POLLING_NOTICES: usize = 10_000;

/// The services whose "nothing is pushed, it waits for polling" line was logged, so that it
/// is logged once per service rather than once per notification. In memory and bounded:
/// after a restart, or once [`POLLING_NOTICES`] services were noted (the set is then
/// emptied), a service may be named once more. That costs a repeated log line, never a
/// notification.
#[derive(Debug, Default)]
pub struct PollingNotices {
    noted: Mutex<HashSet<String>>,
}

impl PollingNotices {
    /// Whether this is the first notice for `service_id` (and notes it).
    pub fn first(&self, service_id: &str) -> bool {
        let mut noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
        if noted.contains(service_id) {
            return false;
        }
        if noted.len() >= POLLING_NOTICES {
            noted.clear();
        }
        noted.insert(service_id.to_string())
    }
}

/// Stores and pushes customer-bound notifications. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    /// Stores the notifications of [`Notifier::record_durable`] in batches.
    writer: NotificationWriter,
    comet: Arc<dyn CometSink>,
    http: HttpCallbacks,
    /// Builds FCM pushes; `None` when `[push.fcm]` is not configured.
    fcm: Option<Fcm>,
    /// Services already named in the log as left for polling.
    notices: Arc<PollingNotices>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier that stores lone notifications through `writer`, pushes comet
    /// notifications through `comet` and HTTP callbacks through the worker behind `http`.
    pub fn new(
        store: Store,
        writer: NotificationWriter,
        comet: Arc<dyn CometSink>,
        http: HttpCallbacks,
    ) -> Notifier {
        Notifier {
            store,
            writer,
            comet,
            http,
            fcm: None,
            notices: Arc::default(),
        }
    }

    /// The same notifier, sending `fcm` and `gcm` pushes through `fcm` (from `[push.fcm]`)
    /// by the HTTP worker.
    pub fn with_fcm(self, fcm: Option<Fcm>) -> Notifier {
        Notifier { fcm, ..self }
    }

    /// Stores a notification for the customer of `target`: [`Notifier::deliver`] it once
    /// durable.
    ///
    /// # Errors
    /// Storage failed.
    pub fn record(
        &self,
        target: &PushTarget,
        tag: String,
        message: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Pending<Notification>, StoreError> {
        self.store
            .add_notification(&target.service_id, target.comet_user(), tag, message, now)
    }

    /// Stores a notification for the customer of `target` and returns it once durable, to
    /// [`Notifier::deliver`]: for a request whose only write is the notification
    /// (`internal-notification`). It is written together with the notifications of concurrent
    /// requests, in one transaction and one group commit ([`writer`]). A notification that is
    /// part of a larger change goes with that change's writes instead ([`Notifier::record`]).
    ///
    /// # Errors
    /// Storage or the group commit failed: nothing may be pushed.
    pub async fn record_durable(
        &self,
        target: &PushTarget,
        tag: String,
        message: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Notification, StoreError> {
        self.writer
            .write(NewNotification {
                service_id: target.service_id.clone(),
                comet_user: target.comet_user().map(str::to_string),
                tag,
                message: message.to_string(),
                created_at: now,
            })
            .await
    }

    /// Pushes a stored, durable notification over the service's channel. Failures are
    /// logged: the notification stays undelivered for `retrieve-notifications`.
    pub fn deliver(&self, target: &PushTarget, notification: &Notification) {
        match &target.provider {
            Provider::Comet => {
                let Some(user) = target.comet_user() else {
                    return;
                };
                let message = parse(&notification.message);
                let receipt = receipt_of(&target.service_id, notification);
                // Queued, not delivered: the CometD server announces when a client has it.
                self.comet
                    .publish(user, &notification.tag, &message, Some(receipt));
            }
            Provider::HttpCallback { url } => {
                let body = envelope(&notification.tag, &parse(&notification.message));
                // Not queued: it waits for retrieve-notifications (logged by `post`).
                let _queued = self.http.post(httpcb::Job::notification(
                    target.service_id.clone(),
                    notification.seq,
                    url.clone(),
                    body.to_string(),
                ));
            }
            Provider::Fcm { device_os, token } => {
                let Some(fcm) = &self.fcm else {
                    self.left_for_polling(target, *device_os, "no [push.fcm] is configured");
                    return;
                };
                let envelope = envelope(&notification.tag, &parse(&notification.message));
                match fcm.job(
                    target.service_id.clone(),
                    notification.seq,
                    token,
                    &envelope,
                ) {
                    // Not queued: it waits for retrieve-notifications (logged by `post`).
                    Ok(job) => {
                        let _queued = self.http.post(job);
                    }
                    Err(error) => {
                        tracing::error!(service_id = %target.service_id, %error, "FCM push not sent; the notification waits for retrieve-notifications");
                    }
                }
            }
            Provider::Undelivered { device_os, reason } => {
                self.left_for_polling(target, *device_os, reason);
            }
            Provider::None => {}
        }
    }

    /// Logs, once per service, that its notifications are not pushed.
    fn left_for_polling(&self, target: &PushTarget, device_os: PushProvider, reason: &str) {
        if self.notices.first(&target.service_id) {
            tracing::warn!(service_id = %target.service_id, device_os = device_os.as_str(), reason, "push not delivered: this service's notifications wait for retrieve-notifications (said once per service)");
        }
    }

    /// Pushes a message over CometD without storing it, whatever the service's `_device_os`
    /// (the caller chose comet, as chat's `notify_by=comet` does; the durable record is
    /// elsewhere, e.g. the transcript). Returns how many clients got it; 0 for a service
    /// without owner.
    pub fn transient(&self, target: &PushTarget, tag: &str, message: &serde_json::Value) -> usize {
        match target.owner.as_deref() {
            Some(user) => self.comet.publish(user, tag, message, None).clients,
            None => 0,
        }
    }

    /// Delivers a Notification API event (`POST /genesys/1/notification/publish`) to one
    /// matching subscription. Events are not stored: comet reaches the CometD clients of the
    /// subscription's user that are connected now; httpcb and customhttp POSTs go through the
    /// HTTP callback worker with its retries, in memory. Returns whether it was handed over
    /// (a comet event reached a client, or a POST was queued).
    pub fn publish_event(&self, subscription: &Subscription, tag: &str, message: &str) -> bool {
        match &subscription.channel {
            Channel::Comet { gms_user } => {
                self.comet
                    .publish(gms_user, tag, &parse(message), None)
                    .clients
                    > 0
            }
            Channel::HttpCallback { url } => {
                // GMS: "the body will be the plain string, passed as message".
                let content_type = if serde_json::from_str::<serde_json::Value>(message).is_ok() {
                    "application/json"
                } else {
                    "text/plain;charset=UTF-8"
                };
                self.http.post(httpcb::Job {
                    service_id: subscription.id.clone(),
                    seq: None,
                    url: url.clone(),
                    body: message.to_string(),
                    content_type,
                    authorization: None,
                    kind: httpcb::JobKind::Callback,
                })
            }
            Channel::CustomHttp {
                url,
                device_id,
                authorization,
            } => {
                // GMS: "a JSON object that contains two properties: the deviceId ... and the
                // message".
                let body = serde_json::json!({ "deviceId": device_id, "message": message });
                self.http.post(httpcb::Job {
                    service_id: subscription.id.clone(),
                    seq: None,
                    url: url.clone(),
                    body: body.to_string(),
                    content_type: "application/json",
                    authorization: authorization.clone(),
                    kind: httpcb::JobKind::Callback,
                })
            }
        }
    }

    /// Sends `gms_user`'s undelivered comet notifications, oldest first, to the client that
    /// just subscribed. Each is marked delivered once the client has it (the CometD server
    /// announces that: [`Notifier::mark_delivered`]). Returns how many were queued.
    ///
    /// # Errors
    /// Storage failed (what was queued before stays queued).
    pub fn replay(&self, gms_user: &str, client_id: &str) -> Result<usize, StoreError> {
        let mut sent = 0;
        for (service_id, notification) in self.store.undelivered_for_user(gms_user, REPLAY_LIMIT)? {
            let message = parse(&notification.message);
            let receipt = receipt_of(&service_id, &notification);
            let reach =
                self.comet
                    .publish_to(client_id, &notification.tag, &message, Some(receipt));
            if reach.clients == 0 {
                // The client went away: the rest waits for the next one.
                break;
            }
            sent += 1;
        }
        Ok(sent)
    }

    /// Marks these stored notifications delivered: a connect reply carrying their pushes was
    /// built for a client of `gms_user`, or the client acknowledged them. Not waited for: a
    /// mark lost in a crash only sends the notification again (at least once).
    ///
    /// # Errors
    /// Storage failed (some may be marked, or none; the rest are sent again later).
    pub fn mark_delivered(&self, gms_user: &str, receipts: &[Receipt]) -> Result<(), StoreError> {
        let marks: Vec<(&str, u64)> = receipts
            .iter()
            .map(|receipt| (receipt.service_id.as_str(), receipt.seq))
            .collect();
        if let Some(marked) = self.store.mark_all_delivered(Some(gms_user), &marks)? {
            marked.without_waiting();
        }
        Ok(())
    }
}

/// What a push of `notification` of service `service_id` carries, for its acknowledgement.
fn receipt_of(service_id: &str, notification: &Notification) -> Receipt {
    Receipt {
        service_id: service_id.to_string(),
        seq: notification.seq,
    }
}

/// A stored message back as JSON (it was written from a JSON value; text if it somehow is not).
pub(crate) fn parse(message: &str) -> serde_json::Value {
    serde_json::from_str(message).unwrap_or_else(|_| serde_json::Value::String(message.into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::domain::options::Preset;

    /// A CometSink that records what it was given; `clients` says how many clients each user
    /// has subscribed.
    #[derive(Default)]
    pub struct RecordingSink {
        pub clients: Mutex<HashMap<String, usize>>,
        pub published: Mutex<Vec<(String, String, serde_json::Value)>>,
        pub sent_to: Mutex<Vec<(String, String)>>,
    }

    impl CometSink for RecordingSink {
        fn publish(
            &self,
            gms_user: &str,
            tag: &str,
            message: &serde_json::Value,
            _receipt: Option<Receipt>,
        ) -> Reach {
            self.published
                .lock()
                .unwrap()
                .push((gms_user.into(), tag.into(), message.clone()));
            Reach {
                clients: self
                    .clients
                    .lock()
                    .unwrap()
                    .get(gms_user)
                    .copied()
                    .unwrap_or(0),
            }
        }

        fn publish_to(
            &self,
            client_id: &str,
            tag: &str,
            _message: &serde_json::Value,
            _receipt: Option<Receipt>,
        ) -> Reach {
            self.sent_to
                .lock()
                .unwrap()
                .push((client_id.into(), tag.into()));
            Reach { clients: 1 }
        }
    }

    fn setup() -> (Store, Arc<RecordingSink>, Notifier) {
        let (store, sink, notifier, _writing) = setup_with_writer();
        (store, sink, notifier)
    }

    /// The notifier and its writer's task, for the tests that store through the writer
    /// (spawn the task; the others drop it).
    fn setup_with_writer() -> (
        Store,
        Arc<RecordingSink>,
        Notifier,
        impl std::future::Future<Output = ()>,
    ) {
        let store = Store::open_temporary().unwrap();
        let sink = Arc::new(RecordingSink::default());
        let supervisor = crate::supervisor::Supervisor::new();
        let (writer, task) = NotificationWriter::start(store.clone(), supervisor.shutdown());
        // Shutdown is never raised: the task ends when the notifier is dropped.
        let writing = async move {
            task.await;
            drop(supervisor);
        };
        let notifier = Notifier::new(
            store.clone(),
            writer,
            sink.clone(),
            HttpCallbacks::disabled(),
        );
        (store, sink, notifier, writing)
    }

    fn target(id: &str, owner: Option<&str>, device_os: Option<&str>) -> PushTarget {
        let mut record = ServiceRecord::new(
            id,
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(0),
        );
        record.owner = owner.map(str::to_string);
        record.device_os = device_os.map(str::to_string);
        PushTarget::of(&record)
    }

    const NOW: Timestamp = Timestamp::from_millis(1);

    #[test]
    fn a_notification_is_stored_before_it_is_pushed_and_marked_when_a_client_got_it() {
        let (store, sink, notifier) = setup();
        // Two clients reach it: still only queued, not delivered.
        sink.clients.lock().unwrap().insert("alice".into(), 2);
        let target = target("s1", Some("alice"), Some("comet"));

        let stored = notifier
            .record(&target, "t.s1".into(), &json!({"_id": "s1"}), NOW)
            .unwrap()
            .without_waiting();
        assert!(
            sink.published.lock().unwrap().is_empty(),
            "record pushes nothing"
        );
        assert!(!store.notifications("s1").unwrap()[0].delivered);
        notifier.deliver(&target, &stored);

        assert_eq!(
            *sink.published.lock().unwrap(),
            [(
                "alice".to_string(),
                "t.s1".to_string(),
                json!({"_id": "s1"})
            )]
        );
        assert!(
            !store.notifications("s1").unwrap()[0].delivered,
            "queued is not delivered"
        );
        assert_eq!(
            store.undelivered_for_user("alice", 10).unwrap().len(),
            1,
            "a later client of alice would get it"
        );
        // The CometD server says a client has it.
        notifier
            .mark_delivered("alice", &[receipt_of("s1", &stored)])
            .unwrap();
        assert!(store.notifications("s1").unwrap()[0].delivered);
        assert!(store.undelivered_for_user("alice", 10).unwrap().is_empty());
        assert!(store
            .take_undelivered("s1", Some("alice"))
            .unwrap()
            .without_waiting()
            .is_empty());
    }

    #[test]
    fn a_replay_leaves_the_notifications_undelivered_until_a_client_has_them() {
        let (store, _sink, notifier) = setup();
        let a = target("a", Some("alice"), Some("comet"));
        let mut receipts = Vec::new();
        for tag in ["1", "2"] {
            let stored = notifier
                .record(&a, tag.into(), &json!({}), NOW)
                .unwrap()
                .without_waiting();
            notifier.deliver(&a, &stored);
            receipts.push(receipt_of("a", &stored));
        }

        assert_eq!(notifier.replay("alice", "gone").unwrap(), 2);
        assert_eq!(store.undelivered_for_user("alice", 10).unwrap().len(), 2);
        assert_eq!(
            notifier.replay("alice", "next").unwrap(),
            2,
            "queued for a client that never took them: sent again to the next"
        );
        notifier.mark_delivered("alice", &receipts[..1]).unwrap();
        assert_eq!(
            store.undelivered_for_user("alice", 10).unwrap().len(),
            1,
            "only what a client has is delivered"
        );
    }

    #[tokio::test]
    async fn a_notification_recorded_durable_is_stored_then_pushed_and_marked_once_a_client_has_it()
    {
        let (store, sink, notifier, writing) = setup_with_writer();
        let writing = tokio::spawn(writing);
        sink.clients.lock().unwrap().insert("alice".into(), 1);
        let target = target("s1", Some("alice"), Some("comet"));

        let stored = notifier
            .record_durable(&target, "t.s1".into(), &json!({"_id": "s1"}), NOW)
            .await
            .unwrap();
        assert!(!store.notifications("s1").unwrap()[0].delivered);
        assert_eq!(
            store.undelivered_for_user("alice", 10).unwrap().len(),
            1,
            "indexed for its user until delivered"
        );
        notifier.deliver(&target, &stored);

        assert_eq!(sink.published.lock().unwrap().len(), 1);
        assert!(!store.notifications("s1").unwrap()[0].delivered);
        notifier
            .mark_delivered("alice", &[receipt_of("s1", &stored)])
            .unwrap();
        assert!(store.notifications("s1").unwrap()[0].delivered);
        assert!(store.undelivered_for_user("alice", 10).unwrap().is_empty());
        drop(notifier);
        writing.await.unwrap();
    }

    #[test]
    fn a_push_nobody_received_stays_for_polling() {
        let (store, sink, notifier) = setup();
        let target = target("s1", Some("alice"), Some("comet"));

        let stored = notifier
            .record(&target, "t".into(), &json!({}), NOW)
            .unwrap()
            .without_waiting();
        notifier.deliver(&target, &stored);

        assert_eq!(sink.published.lock().unwrap().len(), 1, "tried");
        assert_eq!(
            store
                .take_undelivered("s1", Some("alice"))
                .unwrap()
                .without_waiting()
                .len(),
            1
        );
    }

    #[test]
    fn services_without_owner_or_comet_get_no_comet_push() {
        let (store, sink, notifier) = setup();
        sink.clients.lock().unwrap().insert("alice".into(), 1);
        for target in [
            target("s1", None, Some("comet")),
            target("s2", Some("alice"), None),
        ] {
            let stored = notifier
                .record(&target, "t".into(), &json!({}), NOW)
                .unwrap()
                .without_waiting();
            notifier.deliver(&target, &stored);
        }

        assert!(sink.published.lock().unwrap().is_empty());
        assert_eq!(
            store
                .take_undelivered("s1", None)
                .unwrap()
                .without_waiting()
                .len(),
            1
        );
        assert_eq!(
            store
                .take_undelivered("s2", None)
                .unwrap()
                .without_waiting()
                .len(),
            1
        );
        assert!(
            notifier.replay("alice", "c1").unwrap() == 0,
            "nothing indexed for comet"
        );
    }

    #[test]
    fn replay_sends_a_users_missed_notifications_oldest_first_once() {
        let (store, sink, notifier) = setup();
        let a = target("a", Some("alice"), Some("comet"));
        let b = target("b", Some("alice"), Some("comet"));
        let bob = target("c", Some("bob"), Some("comet"));
        let mut alices = Vec::new();
        for (target, tag) in [(&a, "1"), (&b, "2"), (&bob, "bob"), (&a, "3")] {
            let stored = notifier
                .record(target, tag.into(), &json!({}), NOW)
                .unwrap()
                .without_waiting();
            notifier.deliver(target, &stored);
            if target.owner.as_deref() == Some("alice") {
                alices.push(receipt_of(&target.service_id, &stored));
            }
        }

        assert_eq!(notifier.replay("alice", "client-1").unwrap(), 3);
        // The CometD server says client-1 has them.
        notifier.mark_delivered("alice", &alices).unwrap();
        assert_eq!(notifier.replay("alice", "client-2").unwrap(), 0, "once");

        let sent: Vec<(String, String)> = sink.sent_to.lock().unwrap().clone();
        let tags: Vec<&str> = sent.iter().map(|(_, tag)| tag.as_str()).collect();
        assert_eq!(tags, ["1", "2", "3"]);
        assert!(sent.iter().all(|(client, _)| client == "client-1"));
        assert!(store
            .take_undelivered("a", Some("alice"))
            .unwrap()
            .without_waiting()
            .is_empty());
        assert_eq!(
            store
                .take_undelivered("c", Some("bob"))
                .unwrap()
                .without_waiting()
                .len(),
            1
        );
    }

    #[test]
    fn transient_pushes_are_not_stored() {
        let (store, sink, notifier) = setup();
        sink.clients.lock().unwrap().insert("alice".into(), 1);

        let got = notifier.transient(
            &target("s1", Some("alice"), None),
            "service.chat.refresh.s1",
            &json!({}),
        );
        let nobody = notifier.transient(&target("s2", None, None), "t", &json!({}));

        assert_eq!((got, nobody), (1, 0));
        assert!(store.notifications("s1").unwrap().is_empty());
    }

    fn target_with_token(id: &str, device_os: &str, token: Option<&str>) -> PushTarget {
        let mut record = ServiceRecord::new(
            id,
            "chat-delay",
            Preset::ChatDelayed,
            Timestamp::from_millis(0),
        );
        record.owner = Some("alice".into());
        record.device_os = Some(device_os.into());
        record.device_notification_id = token.map(str::to_string);
        PushTarget::of(&record)
    }

    #[test]
    fn each_gms_push_type_maps_to_its_channel() {
        let fcm = |device_os| Provider::Fcm {
            device_os,
            token: "tok".into(),
        };
        let cases = [
            ("gcm", Some("tok"), fcm(PushProvider::Gcm)),
            ("fcm", Some("tok"), fcm(PushProvider::Fcm)),
            (
                "httpcb",
                Some("http://example.com/p"),
                Provider::HttpCallback {
                    url: "http://example.com/p".into(),
                },
            ),
            ("comet", None, Provider::Comet),
            ("symbian", Some("tok"), Provider::None),
        ];
        for (device_os, token, expected) in cases {
            assert_eq!(
                target_with_token("s", device_os, token).provider,
                expected,
                "{device_os}"
            );
        }
        for (device_os, token) in [
            ("gcm", None),
            ("httpcb", None),
            ("ios", Some("tok")),
            ("android", Some("tok")),
            ("customhttp", Some("tok")),
            ("orscb", None),
        ] {
            let provider = target_with_token("s", device_os, token).provider;
            assert!(
                matches!(provider, Provider::Undelivered { device_os: d, .. } if d.as_str() == device_os),
                "{device_os}: {provider:?}"
            );
        }
        assert_eq!(
            target_with_token("s", "gcm", Some("tok")).comet_user(),
            None,
            "no comet push for an FCM service"
        );
    }

    #[test]
    fn a_push_type_without_provider_leaves_the_notification_undelivered_and_is_noted_once() {
        // No [push.fcm]: the gcm service's notification is not pushed anywhere.
        let (store, sink, notifier) = setup();
        sink.clients.lock().unwrap().insert("alice".into(), 1);
        let target = target_with_token("s1", "gcm", Some("tok"));
        for _ in 0..2 {
            let stored = notifier
                .record(&target, "t".into(), &json!({}), NOW)
                .unwrap()
                .without_waiting();
            notifier.deliver(&target, &stored);
        }

        assert!(sink.published.lock().unwrap().is_empty(), "not over CometD");
        assert_eq!(
            store
                .take_undelivered("s1", None)
                .unwrap()
                .without_waiting()
                .len(),
            2,
            "both wait for polling"
        );
        assert!(!notifier.notices.first("s1"), "already noted");
    }

    #[test]
    fn polling_notices_name_each_service_once_and_stay_bounded() {
        let notices = PollingNotices::default();
        assert!(notices.first("a"));
        assert!(!notices.first("a"));
        assert!(notices.first("b"));
        for n in 0..POLLING_NOTICES {
            notices.first(&n.to_string());
        }
        assert!(
            notices.noted.lock().unwrap().len() <= POLLING_NOTICES,
            "bounded"
        );
    }

    #[test]
    fn the_envelope_has_a_32_hex_id_the_message_and_the_tag() {
        let pushed = envelope("t.1", &json!({"_id": "1"}));
        let id = pushed["id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(pushed["message"], json!({"_id": "1"}));
        assert_eq!(pushed["tag"], "t.1");
    }
}
