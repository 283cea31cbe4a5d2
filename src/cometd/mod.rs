//! The CometD (Bayeux 1.0) server: handshake, connect, subscribe, unsubscribe, disconnect,
//! and pushes on `/_genesys`, for any transport.
//!
//! [`Bayeux::handle`] takes one request body (long-polling POST or websocket text frame) and
//! returns the reply array; a `/meta/connect` with nothing queued is held until a push
//! arrives, the same client connects again, or the timeout passes. [`Bayeux::publish`] is how
//! the rest of the server reaches a customer. No warp here: the HTTP and websocket plumbing
//! lives in `http::cometd`.
//!
//! Every client is bound to the `gms_user` header it handshook with: a handshake without one is
//! refused (`403::gms_user header required`), and a request naming the client with another (or
//! no) `gms_user` gets `402::Unknown client`, exactly as if the id did not exist, so ids of
//! other users cannot even be probed.
//!
//! All client state sits behind one `std` mutex: it is only held for map operations, never
//! across an `.await`, and wakers are plain oneshot senders fired under it (sending on a
//! oneshot never blocks). The sweep takes it for one bounded chunk of due clients at a time
//! and lets requests in between chunks.
//!
//! What one unauthenticated request can create is bounded: one handshake per request is
//! served (the others in the same body are refused), at most `max_clients_per_user` clients
//! per `gms_user` and `max_clients` in all; a refused handshake is an ordinary Bayeux failure
//! whose advice makes the official client try again after `max_interval`, when clients that
//! went away have expired.
//!
//! CometD's acknowledgement extension is offered to clients that ask for it in their handshake
//! (`ext: {ack: true}`, as the `AckExtension` of the official clients sends): every connect
//! reply then names its batch (`ext: {ack: n}`), the next connect acknowledges the last batch
//! received, and what was not acknowledged is sent again, also to a later client of the same
//! `gms_user` (see `clients`). Without it nothing changes.

mod clients;
pub mod protocol;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

pub use protocol::{BayeuxError, Message, GENESYS_CHANNEL};

use crate::clock::{self, Clock};
use crate::supervisor::Shutdown;
use clients::{ClientLimits, Clients, Full, Wake};

/// One customer-bound push: `{"id","message","tag"}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Push {
    /// 32 lowercase hex digits, random.
    pub id: String,
    /// What the customer's app reads (a chat refresh, a status change, ...).
    pub message: serde_json::Value,
    /// What kind of push it is, e.g. `service.chat.refresh.<id>`.
    pub tag: String,
    /// The stored notification this push carries, if any: given back in an
    /// [`Announcement::Delivered`] once a client has it (a connect reply carried it to a
    /// client without the acknowledgement extension, or one with it acknowledged it), and held
    /// at most once per client. Never sent to clients.
    #[serde(skip)]
    pub receipt: Option<Receipt>,
    /// A service channel (`/service/chatV2/...`) to deliver on instead of `/_genesys`, with
    /// `message` as the delivery's whole `data`.
    #[serde(skip)]
    pub channel: Option<String>,
}

impl Push {
    /// A push with a new random id.
    pub fn new(tag: impl Into<String>, message: serde_json::Value) -> Push {
        Push {
            id: format!("{:032x}", rand::random::<u128>()),
            message,
            tag: tag.into(),
            receipt: None,
            channel: None,
        }
    }

    /// A delivery on the service channel `channel` whose data is `data` (the answers of a
    /// [`ServiceChannel`]).
    pub fn on_channel(channel: impl Into<String>, data: serde_json::Value) -> Push {
        Push {
            channel: Some(channel.into()),
            ..Push::new("", data)
        }
    }

    /// The same push, carrying the stored notification `receipt`.
    pub fn with_receipt(self, receipt: Receipt) -> Push {
        Push {
            receipt: Some(receipt),
            ..self
        }
    }
}

/// Serves requests that clients publish on service channels (`/service/...`): Chat API v2's
/// `/service/chatV2/{chatServiceName}`. The CometD server knows nothing of chats; it hands
/// such a publish, from a known client, to the one installed with
/// [`Bayeux::serve_service_channels`] and delivers what it answers to that client on the
/// same channel.
pub trait ServiceChannel: Send + Sync + 'static {
    /// Whether publishes on `channel` are served.
    fn handles(&self, channel: &str) -> bool;

    /// Serves `data` published on `channel` by client `client_id` of `gms_user`; answers the
    /// data to deliver back on the channel.
    fn publish<'a>(
        &'a self,
        client_id: &'a str,
        gms_user: &'a str,
        channel: &'a str,
        data: &'a serde_json::Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value> + Send + 'a>>;
}

/// Which stored notification a push carries (a service's notification `seq`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The service the notification belongs to.
    pub service_id: String,
    /// Its sequence number.
    pub seq: u64,
}

/// Whom a push was queued for. Queued is not delivered: that is announced
/// ([`Announcement::Delivered`]) once a client has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// Clients it was queued for (a client that held it already counts).
    pub clients: usize,
}

/// How the server paces its clients.
#[derive(Debug, Clone)]
pub struct BayeuxSettings {
    /// How long a `/meta/connect` is held when nothing is queued (advice `timeout`).
    pub timeout_ms: u64,
    /// How long clients wait between a connect reply and the next connect (advice `interval`).
    pub interval_ms: u64,
    /// A client not heard from for this long after its last connect reply is dropped.
    pub max_interval_ms: u64,
    /// At most this many undelivered pushes per client (queued, or sent and not yet
    /// acknowledged); later ones are refused for it. Also the most kept for one user after its
    /// acknowledging clients went away.
    pub max_queue: usize,
    /// How long what a swept acknowledging client had not acknowledged waits for the next
    /// acknowledging client of its `gms_user` (the acknowledgement extension).
    pub ack_retention_ms: u64,
    /// At most this many clients per `gms_user`.
    pub max_clients_per_user: usize,
    /// At most this many clients in all.
    pub max_clients: usize,
}

impl Default for BayeuxSettings {
    fn default() -> Self {
        BayeuxSettings {
            timeout_ms: 60_000,
            interval_ms: 0,
            max_interval_ms: 30_000,
            max_queue: 1000,
            ack_retention_ms: 300_000,
            max_clients_per_user: 16,
            max_clients: 100_000,
        }
    }
}

/// What the push layer hears from the CometD server, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// A client subscribed to /_genesys (the push layer replays undelivered notifications to
    /// its user).
    Subscribed {
        /// The user it handshook with.
        gms_user: String,
        /// The client, for [`Bayeux::publish_to`].
        client_id: String,
    },
    /// A client has the pushes that carried these stored notifications: they were put in a
    /// connect reply to a client without the acknowledgement extension, or acknowledged by one
    /// with it. They are delivered.
    Delivered {
        /// The user it handshook with.
        gms_user: String,
        /// The notifications, in the order they were sent.
        receipts: Vec<Receipt>,
    },
}

/// The Bayeux server. Cheap to clone; clones share the clients.
#[derive(Clone)]
pub struct Bayeux {
    shared: Arc<Shared>,
}

struct Shared {
    settings: BayeuxSettings,
    clock: Arc<dyn Clock>,
    /// Every client. A `std` mutex: held only for map work, never across an await.
    clients: Mutex<Clients>,
    /// Tells the push layer about new `/_genesys` subscriptions and acknowledged pushes.
    announcements: mpsc::UnboundedSender<Announcement>,
    /// True once the server is stopping: held connects are answered, new ones refused.
    stopping: watch::Sender<bool>,
    /// Counted for `/metrics`.
    counters: CometdCounters,
    /// Who serves publishes on service channels, once installed.
    services: std::sync::OnceLock<Arc<dyn ServiceChannel>>,
}

/// What the CometD server counts for `/metrics`. Clones share the values.
#[derive(Debug, Clone, Default)]
pub struct CometdCounters {
    /// Pushes queued for a client (one push to three clients counts three).
    pub pushes: Counter,
    /// `/meta/connect`s being held right now.
    pub held_connects: Gauge,
}

/// Counts a held connect for as long as it lives, however its request ends.
struct HeldConnect(Gauge);

impl HeldConnect {
    fn start(gauge: &Gauge) -> HeldConnect {
        gauge.inc();
        HeldConnect(gauge.clone())
    }
}

impl Drop for HeldConnect {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl std::fmt::Debug for Bayeux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bayeux")
            .field("settings", &self.shared.settings)
            .field("clients", &self.client_count())
            .finish_non_exhaustive()
    }
}

/// How a held connect ended.
enum Held {
    /// Answered early, and why.
    Woke(Wake),
    /// Nothing happened within the timeout.
    TimedOut,
}

/// Characters of a client id: lowercase base 36, as CometD's own ids.
const CLIENT_ID_ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// 26 base-36 characters: about 134 random bits.
const CLIENT_ID_LEN: usize = 26;
/// Due clients a sweep removes per hold of the lock: about a hundred microseconds of work, so
/// a request waits at most that long for the lock while 100,000 clients expire.
const SWEEP_CHUNK: usize = 500;
/// The sweep's pause between chunks. Yielding alone is not enough on a machine whose other
/// cores are busy: the sweeping thread would keep its core and the requests waiting for it.
const SWEEP_PAUSE: Duration = Duration::from_millis(1);

impl Bayeux {
    /// A server with no clients, and the receiving end of its announcements (subscriptions,
    /// acknowledgements). Drop the receiver if nothing replays notifications or records their
    /// delivery: announcements are then discarded.
    pub fn new(
        settings: BayeuxSettings,
        clock: Arc<dyn Clock>,
    ) -> (Bayeux, mpsc::UnboundedReceiver<Announcement>) {
        let (sender, announcements) = mpsc::unbounded_channel();
        let limits = ClientLimits {
            max_interval_ms: settings.max_interval_ms,
            max_clients: settings.max_clients,
            max_clients_per_user: settings.max_clients_per_user,
            max_queue: settings.max_queue,
            ack_retention_ms: settings.ack_retention_ms,
        };
        let bayeux = Bayeux {
            shared: Arc::new(Shared {
                settings,
                clock,
                clients: Mutex::new(Clients::new(limits)),
                announcements: sender,
                stopping: watch::Sender::new(false),
                counters: CometdCounters::default(),
                services: std::sync::OnceLock::new(),
            }),
        };
        (bayeux, announcements)
    }

    /// Installs who serves publishes on service channels (once; a second call is ignored).
    pub fn serve_service_channels(&self, services: Arc<dyn ServiceChannel>) {
        if self.shared.services.set(services).is_err() {
            tracing::warn!("service channels are served already; the second server is ignored");
        }
    }

    /// The installed service-channel server, if it serves `channel`.
    fn service_for(&self, channel: &str) -> Option<&Arc<dyn ServiceChannel>> {
        self.shared
            .services
            .get()
            .filter(|services| services.handles(channel))
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &BayeuxSettings {
        &self.shared.settings
    }

    /// Queues `push` for every client of `gms_user` subscribed to /_genesys and wakes their
    /// held long-polls. Returns whom it was queued for (a client whose queue is full is not
    /// counted).
    pub fn publish(&self, gms_user: &str, push: &Push) -> Reach {
        let push = Arc::new(push.clone());
        let reach = self.lock().publish(gms_user, &push);
        self.shared.counters.pushes.inc_by(reach.clients as u64);
        reach
    }

    /// Queues `push` for one client only (used to replay to the client that just subscribed).
    /// Returns whom it was queued for: nobody for an unknown or unsubscribed client, or a full
    /// queue.
    pub fn publish_to(&self, client_id: &str, push: &Push) -> Reach {
        let push = Arc::new(push.clone());
        let reach = match self.lock().publish_to(client_id, &push) {
            Ok(()) => Reach { clients: 1 },
            Err(_) => Reach::default(),
        };
        self.shared.counters.pushes.inc_by(reach.clients as u64);
        reach
    }

    /// Handles one request body (long-polling transport) from a client that sent header
    /// `gms_user`; resolves when the reply is ready (a held `/meta/connect` waits up to
    /// `timeout_ms` or until a push arrives). Returns the JSON reply array.
    ///
    /// # Errors
    /// The body is not Bayeux (not JSON, no `channel`, ...): the error says what to fix.
    pub async fn handle(
        &self,
        gms_user: Option<&str>,
        body: &[u8],
    ) -> Result<serde_json::Value, BayeuxError> {
        let messages = protocol::parse(body)?;
        let gms_user = gms_user.filter(|user| !user.trim().is_empty());
        let mut replies = Vec::with_capacity(messages.len());
        let mut handshakes = 0;
        for message in &messages {
            match message.channel.as_str() {
                // One handshake per request: a body of a thousand handshakes would otherwise
                // make a thousand clients for the price of one request.
                protocol::HANDSHAKE if handshakes > 0 => {
                    replies.push(protocol::extra_handshake(message));
                }
                protocol::HANDSHAKE => {
                    handshakes += 1;
                    replies.push(self.handshake(gms_user, message));
                }
                protocol::CONNECT => self.connect(gms_user, message, &mut replies).await,
                protocol::SUBSCRIBE => replies.push(self.subscribe(gms_user, message, true)),
                protocol::UNSUBSCRIBE => replies.push(self.subscribe(gms_user, message, false)),
                protocol::DISCONNECT => replies.push(self.disconnect(gms_user, message)),
                channel if !message.is_meta() && self.service_for(channel).is_some() => {
                    self.serve_publish(gms_user, message, &mut replies).await;
                }
                _ => replies.push(self.refuse(gms_user, message)),
            }
        }
        Ok(Value::Array(replies))
    }

    /// Removes clients not seen for max_interval (and not holding a connect); returns how
    /// many. Works through the due clients in chunks of [`SWEEP_CHUNK`], pausing
    /// [`SWEEP_PAUSE`] between chunks so that requests get the lock and the CPU.
    pub async fn sweep(&self) -> usize {
        let now = self.shared.clock.now();
        let mut removed = 0;
        loop {
            let swept = self.lock().sweep(now, SWEEP_CHUNK);
            removed += swept.removed;
            if !swept.more {
                break;
            }
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
        if removed > 0 {
            tracing::debug!(removed, "dropped CometD clients that stopped connecting");
        }
        removed
    }

    /// Sweeps every third of `max_interval` (at least every 10 s, measured on the clock) until
    /// shutdown.
    pub async fn sweep_until(self, mut shutdown: Shutdown) {
        let every = Duration::from_millis(self.shared.settings.max_interval_ms / 3)
            .clamp(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            let tick = clock::sleep_for(&*self.shared.clock, every);
            tokio::select! {
                // Time to look for clients that went away.
                () = tick => {
                    self.sweep().await;
                }
                // The server is stopping.
                () = shutdown.wait() => break,
            }
        }
    }

    /// Answers every held long-poll at once (server shutdown) and refuses new ones.
    pub fn shutdown(&self) {
        self.shared.stopping.send_replace(true);
        // Under the lock, so a connect that saw "not stopping" has registered its hold.
        self.lock().wake_all(Wake::Shutdown);
    }

    /// Whether [`Bayeux::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.shared.stopping.borrow()
    }

    /// Resolves once [`Bayeux::shutdown`] is called (websocket loops close on it).
    pub async fn stopped(&self) {
        let mut stopping = self.shared.stopping.subscribe();
        // The sender lives as long as `self`, so this only ends when stopping turns true.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Connected clients (for metrics/benchmark).
    pub fn client_count(&self) -> usize {
        self.lock().len()
    }

    /// Pushes and held connects, for `/metrics`.
    pub fn counters(&self) -> &CometdCounters {
        &self.shared.counters
    }

    /// Announces that a client of `gms_user` has the stored notifications of `receipts`
    /// (handed to it in a reply, or acknowledged). Called under the lock, so that it precedes
    /// any later subscription's announcement (whose replay then no longer finds them
    /// undelivered).
    fn announce_delivered(&self, gms_user: &str, receipts: Vec<Receipt>) {
        if !receipts.is_empty() {
            let _ = self.shared.announcements.send(Announcement::Delivered {
                gms_user: gms_user.to_string(),
                receipts,
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, Clients> {
        // Nothing panics under this lock; if something ever did, the map is still usable.
        self.shared
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping_reply(message: &Message) -> Value {
        protocol::failure(
            message,
            "503::the server is shutting down",
            Some(json!({"reconnect": "handshake", "interval": 1000})),
        )
    }

    /// `/meta/handshake`: a new client bound to `gms_user`.
    fn handshake(&self, gms_user: Option<&str>, message: &Message) -> Value {
        let Some(gms_user) = gms_user else {
            return protocol::failure(
                message,
                "403::gms_user header required",
                Some(json!({"reconnect": "none"})),
            );
        };
        if let Some(types) = &message.supported_connection_types {
            if !types
                .iter()
                .any(|t| protocol::CONNECTION_TYPES.contains(&t.as_str()))
            {
                return protocol::failure(
                    message,
                    "406::no supported connection type: use long-polling, callback-polling or websocket",
                    Some(json!({"reconnect": "none"})),
                );
            }
        }
        if self.is_stopping() {
            return Self::stopping_reply(message);
        }
        let now = self.shared.clock.now();
        let added = {
            let mut clients = self.lock();
            let mut client_id = new_client_id();
            while clients.contains(&client_id) {
                client_id = new_client_id();
            }
            clients
                .add(client_id.clone(), gms_user, message.requests_acks(), now)
                .map(|()| client_id)
        };
        let settings = &self.shared.settings;
        match added {
            Ok(client_id) => {
                protocol::handshake_reply(message, &client_id, settings, message.requests_acks())
            }
            Err(Full::User) => protocol::too_many_clients_of_user(message, settings),
            Err(Full::Server) => protocol::too_many_clients(message, settings),
        }
    }

    /// `/meta/connect`: answered at once when something is queued, on the client's first
    /// connect, when it asks for `advice.timeout` 0, or when it acknowledges a batch and
    /// pushes it has not acknowledged remain (a reply it never got); otherwise held.
    async fn connect(&self, gms_user: Option<&str>, message: &Message, replies: &mut Vec<Value>) {
        let settings = &self.shared.settings;
        let Some(client_id) = message.client_id.as_deref() else {
            replies.push(protocol::unknown_client(message));
            return;
        };
        let timeout_ms = message
            .advice_timeout
            .map_or(settings.timeout_ms, |asked| asked.min(settings.timeout_ms));
        let now = self.shared.clock.now();
        // Looking at the queue and registering the hold happen under the lock that publish
        // queues and wakes under, so no push can slip in between and be missed.
        let (waiter, advice) = {
            let mut clients = self.lock();
            if self.is_stopping() {
                replies.push(Self::stopping_reply(message));
                return;
            }
            let Some(client) = clients.seen(client_id, gms_user, now) else {
                replies.push(protocol::unknown_client(message));
                return;
            };
            let acknowledged = message.acknowledged_batch();
            if let Some(batch) = acknowledged {
                let receipts = client.acknowledge(batch);
                self.announce_delivered(&client.gms_user, receipts);
            }
            let first = !client.connected;
            client.connected = true;
            let advice = (first || message.has_advice).then(|| protocol::connect_advice(settings));
            // Pushes sent but not acknowledged by a connect that acknowledges are in a reply
            // the client never got. (A client that never acknowledges is not answered at once
            // for them, or it would poll without pause.)
            let resend = acknowledged.is_some() && client.has_unacknowledged();
            if first || timeout_ms == 0 || client.has_queued() || resend {
                // An older held connect of this client gives way to this one.
                client.wake(Wake::Replaced);
                let mut delivery = client.take_delivery();
                self.announce_delivered(&client.gms_user, std::mem::take(&mut delivery.delivered));
                drop(clients);
                deliver(replies, &delivery.pushes);
                replies.push(protocol::connect_reply(message, advice, delivery.batch));
                return;
            }
            (client.hold(), advice)
        };

        let _holding = HeldConnect::start(&self.shared.counters.held_connects);
        let held = tokio::select! {
            // A push, a newer connect of this client, a disconnect or the shutdown.
            woke = waiter => Held::Woke(woke.unwrap_or(Wake::Removed)),
            // Nothing for the client: answer empty so that it connects again.
            () = tokio::time::sleep(Duration::from_millis(timeout_ms)) => Held::TimedOut,
        };
        match held {
            Held::Woke(Wake::Replaced) => {
                replies.push(protocol::connect_reply(message, None, None));
            }
            Held::Woke(Wake::Removed) => replies.push(protocol::connect_reply(
                message,
                Some(json!({"reconnect": "none"})),
                None,
            )),
            Held::Woke(Wake::Push | Wake::Shutdown) | Held::TimedOut => {
                let delivery = {
                    let mut clients = self.lock();
                    let Some(client) = clients.seen_own(client_id, self.shared.clock.now()) else {
                        drop(clients);
                        replies.push(protocol::unknown_client(message));
                        return;
                    };
                    client.clear_finished_hold();
                    let mut delivery = client.take_delivery();
                    let receipts = std::mem::take(&mut delivery.delivered);
                    self.announce_delivered(&client.gms_user, receipts);
                    delivery
                };
                deliver(replies, &delivery.pushes);
                replies.push(protocol::connect_reply(message, advice, delivery.batch));
            }
        }
    }

    /// A publish on a served service channel: from a known client, handed to the
    /// [`ServiceChannel`]; the publish is acknowledged and its answer delivered on the channel
    /// in the same reply.
    async fn serve_publish(
        &self,
        gms_user: Option<&str>,
        message: &Message,
        replies: &mut Vec<Value>,
    ) {
        let now = self.shared.clock.now();
        let client = {
            let mut clients = self.lock();
            message
                .client_id
                .as_deref()
                .and_then(|id| clients.seen(id, gms_user, now))
                .map(|client| (client.gms_user.to_string(), message.client_id.clone()))
        };
        let (Some((gms_user, Some(client_id))), Some(services)) =
            (client, self.service_for(&message.channel))
        else {
            replies.push(protocol::unknown_client(message));
            return;
        };
        let data = message.data.clone().unwrap_or(Value::Null);
        let answer = services
            .publish(&client_id, &gms_user, &message.channel, &data)
            .await;
        replies.push(Value::Object(protocol::success(message)));
        replies.push(json!({"channel": message.channel, "data": answer}));
    }

    /// `/meta/subscribe` (`subscribe`) and `/meta/unsubscribe`: `/_genesys`, and the service
    /// channels served (subscribing to one changes nothing: its answers go to whoever
    /// publishes).
    fn subscribe(&self, gms_user: Option<&str>, message: &Message, subscribe: bool) -> Value {
        let refusal = match message.subscriptions() {
            Err(problem) => Some(format!("400::{problem}")),
            Ok(channels) => channels
                .into_iter()
                .find(|channel| *channel != GENESYS_CHANNEL && self.service_for(channel).is_none())
                .map(|channel| {
                    format!("403::cannot subscribe to {channel}: only /_genesys carries pushes")
                }),
        };
        let now = self.shared.clock.now();
        {
            let mut clients = self.lock();
            let Some(client) = message
                .client_id
                .as_deref()
                .and_then(|id| clients.seen(id, gms_user, now))
            else {
                return protocol::unknown_client(message);
            };
            if let Some(refusal) = refusal {
                return protocol::failure(message, &refusal, None);
            }
            let genesys = message
                .subscriptions()
                .is_ok_and(|channels| channels.contains(&GENESYS_CHANNEL));
            if !genesys {
                return protocol::subscription_reply(message);
            }
            let newly = subscribe && !client.subscribed;
            client.subscribed = subscribe;
            if let Some(gms_user) = newly.then(|| client.gms_user.to_string()) {
                let client_id = message.client_id.clone().unwrap_or_default();
                // What the user's earlier clients never acknowledged comes to this one.
                let taken = clients.take_over(&client_id);
                if taken > 0 {
                    tracing::debug!(%client_id, taken, "unacknowledged CometD pushes taken over");
                }
                // Nobody listening means nothing is replayed; that is the listener's choice.
                let _ = self.shared.announcements.send(Announcement::Subscribed {
                    gms_user,
                    client_id,
                });
            }
        }
        protocol::subscription_reply(message)
    }

    /// `/meta/disconnect`: the client is forgotten; its held connect is answered.
    fn disconnect(&self, gms_user: Option<&str>, message: &Message) -> Value {
        let mut clients = self.lock();
        let known = message
            .client_id
            .as_deref()
            .filter(|id| clients.get_mut(id, gms_user).is_some());
        match known {
            Some(id) => {
                clients.remove(id, Wake::Removed);
                Value::Object(protocol::success(message))
            }
            None => protocol::unknown_client(message),
        }
    }

    /// Any other channel: unknown `/meta/` channels, and publishing, which customers may not do.
    fn refuse(&self, gms_user: Option<&str>, message: &Message) -> Value {
        if message.is_meta() {
            return protocol::failure(
                message,
                &format!(
                    "400::unknown meta channel {}: use handshake, connect, subscribe, unsubscribe or disconnect",
                    message.channel
                ),
                None,
            );
        }
        let now = self.shared.clock.now();
        {
            let mut clients = self.lock();
            let known = message
                .client_id
                .as_deref()
                .and_then(|id| clients.seen(id, gms_user, now))
                .is_some();
            if !known {
                return protocol::unknown_client(message);
            }
        }
        protocol::failure(
            message,
            &format!(
                "403::publishing to {} is not allowed: clients only receive, on /_genesys; send requests to the GMS REST API",
                message.channel
            ),
            None,
        )
    }
}

/// Appends the deliveries for `pending`, oldest first.
fn deliver(replies: &mut Vec<Value>, pending: &[Arc<Push>]) {
    replies.extend(pending.iter().map(|push| protocol::delivery(push)));
}

/// A new unguessable client id.
fn new_client_id() -> String {
    let mut rng = rand::rng();
    (0..CLIENT_ID_LEN)
        .map(|_| char::from(CLIENT_ID_ALPHABET[rng.random_range(0..CLIENT_ID_ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests;
