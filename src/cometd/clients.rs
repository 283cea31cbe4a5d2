//! The registry of handshaken clients: who they are, what waits for them, and who is holding
//! a long-poll for them.
//!
//! Plain data behind the one lock in [`super::Bayeux`]; nothing here awaits. Per-client state
//! is kept small on purpose (a few hundred bytes while idle): no task, no channel and no
//! buffer per client, only an empty `VecDeque` until something is queued and a oneshot sender
//! while a connect is held.
//!
//! Every client has a deadline (`max_interval` after it was last seen), kept in an index
//! ordered by deadline, so that a sweep touches only the clients that are due, in chunks the
//! caller bounds: 100,000 clients expiring at once cost 100,000 small steps, never one scan of
//! the whole table under the lock. The table is bounded too: at most `max_clients` clients,
//! and `max_clients_per_user` per `gms_user` (which also bounds the per-user list that a
//! removal edits).
//!
//! # Acknowledged delivery
//!
//! A client that handshook with `ext.ack` (CometD's acknowledgement extension) keeps what it
//! was sent until it acknowledges it: each connect reply closes a numbered *batch* holding
//! every push sent and not yet acknowledged, and the client's next connect names the last
//! batch it received, which releases every push of that batch and earlier ones. A push sent
//! in a reply that never arrived is therefore sent again with the next reply. What such a
//! client leaves behind is not lost with it either: a sweep parks its unacknowledged pushes
//! under its `gms_user` (for `ack_retention_ms`), and the next acknowledging client of that
//! user to subscribe takes them over, together with those of the user's other acknowledging
//! clients that are not holding a connect (a reloaded page or a restarted app whose old
//! client has not expired yet). A client without the extension forgets a push once it is put
//! in a reply.
//!
//! Either way a push that carries a stored notification is *delivered* (and the notification
//! marked so by the push layer) only once a client has it: put in a connect reply for a client
//! without the extension (the reply is built; a connection that dies as it is written loses
//! it, which only the extension prevents), acknowledged by one with it. A push still queued is not, so one queued for a
//! client that never connects again (a reloaded page, or a node that died) is replayed from
//! storage to the user's next client.
//!
//! Pushes carry a sequence number given at publish, so that pushes taken over from several
//! clients are merged in the order they were published, each once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Push, Reach, Receipt};
use crate::domain::time::Timestamp;

/// Why a held `/meta/connect` is being answered before its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something was queued for the client.
    Push,
    /// Another connect of the same client arrived; it takes over.
    Replaced,
    /// The client disconnected.
    Removed,
    /// The server is stopping.
    Shutdown,
}

/// A push as one client holds it: with the sequence number of its publish, shared by every
/// client it was published to.
#[derive(Debug, Clone)]
struct Queued {
    seq: u64,
    push: Arc<Push>,
}

/// What an acknowledging client was sent and has not acknowledged yet.
#[derive(Debug)]
struct Acks {
    /// The number the next connect reply's batch gets (the first is 1; the client starts by
    /// acknowledging 0, i.e. nothing).
    next_batch: u64,
    /// (batch it was first sent in, push), oldest first; batches only grow along it.
    sent: VecDeque<(u64, Queued)>,
}

/// What one connect reply carries.
#[derive(Debug, Default)]
pub struct Delivery {
    /// The pushes, oldest first.
    pub pushes: Vec<Arc<Push>>,
    /// The batch they form, for a client with the acknowledgement extension (`ext.ack`).
    pub batch: Option<u64>,
    /// For a client without the extension, the stored notifications these pushes carry: with
    /// this reply they are delivered. (A client with it delivers them by acknowledging.)
    pub delivered: Vec<Receipt>,
}

/// One handshaken client.
#[derive(Debug)]
pub struct Client {
    /// Its id, shared with the by-user list and the deadline index.
    id: Arc<str>,
    /// The `gms_user` it handshook with; every later request must carry the same one.
    pub gms_user: Arc<str>,
    /// Subscribed to `/_genesys`.
    pub subscribed: bool,
    /// Has had its first `/meta/connect` (which is answered at once, with advice).
    pub connected: bool,
    /// Pushes not yet sent, oldest first, shared between the clients of one user.
    queue: VecDeque<Queued>,
    /// Sent but unacknowledged pushes, for a client with the acknowledgement extension. Boxed:
    /// a client without it pays one pointer.
    acks: Option<Box<Acks>>,
    /// Answers the held `/meta/connect`, if any.
    held: Option<oneshot::Sender<Wake>>,
    /// `max_interval` after it last sent anything or was last answered a connect: when the
    /// sweep drops it (unless a connect is held then). Its entry in the deadline index.
    deadline: Timestamp,
}

impl Client {
    /// Whether a push is waiting to be sent (or sent again).
    #[cfg(test)]
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty() || self.has_unacknowledged()
    }

    /// Whether a push waits to be sent for the first time.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether the client uses the acknowledgement extension.
    pub fn acknowledges(&self) -> bool {
        self.acks.is_some()
    }

    /// Whether pushes it was sent wait for its acknowledgement.
    pub fn has_unacknowledged(&self) -> bool {
        self.acks.as_ref().is_some_and(|acks| !acks.sent.is_empty())
    }

    /// Pushes held for it: queued, and sent but unacknowledged.
    fn backlog(&self) -> usize {
        self.queue.len() + self.acks.as_ref().map_or(0, |acks| acks.sent.len())
    }

    /// What the next connect reply carries, oldest first. Without the extension: every queued
    /// push, forgotten from now on (and the queue's memory given back), and the receipts it
    /// delivers. With it: the queued pushes and every unacknowledged one, as a new batch; they
    /// are kept until acknowledged.
    pub fn take_delivery(&mut self) -> Delivery {
        let queued = std::mem::take(&mut self.queue);
        let Some(acks) = self.acks.as_mut() else {
            let delivered = queued
                .iter()
                .filter_map(|queued| queued.push.receipt.clone())
                .collect();
            return Delivery {
                pushes: queued.into_iter().map(|queued| queued.push).collect(),
                batch: None,
                delivered,
            };
        };
        let batch = acks.next_batch;
        acks.next_batch += 1;
        acks.sent
            .extend(queued.into_iter().map(|queued| (batch, queued)));
        Delivery {
            pushes: acks.sent.iter().map(|(_, q)| q.push.clone()).collect(),
            batch: Some(batch),
            delivered: Vec::new(),
        }
    }

    /// The client received every batch up to `batch`: their pushes are delivered and
    /// forgotten. A batch not sent yet acknowledges only what was sent. Ignored for a client
    /// without the extension. Returns the receipts of the pushes it released, oldest first.
    pub fn acknowledge(&mut self, batch: u64) -> Vec<Receipt> {
        let Some(acks) = self.acks.as_mut() else {
            return Vec::new();
        };
        let mut receipts = Vec::new();
        while acks
            .sent
            .front()
            .is_some_and(|(sent_in, _)| *sent_in <= batch)
        {
            if let Some((_, queued)) = acks.sent.pop_front() {
                receipts.extend(queued.push.receipt.clone());
            }
        }
        if acks.sent.is_empty() {
            acks.sent = VecDeque::new();
        }
        receipts
    }

    /// Every push it holds: queued, and sent but unacknowledged.
    fn held_pushes(&self) -> impl Iterator<Item = &Queued> {
        self.queue.iter().chain(
            self.acks
                .iter()
                .flat_map(|acks| acks.sent.iter().map(|(_, queued)| queued)),
        )
    }

    /// Every push held for it (unacknowledged, then queued), which it gives up.
    fn take_backlog(&mut self) -> Vec<Queued> {
        let mut backlog: Vec<Queued> = match self.acks.as_mut() {
            Some(acks) => std::mem::take(&mut acks.sent)
                .into_iter()
                .map(|(_, queued)| queued)
                .collect(),
            None => Vec::new(),
        };
        backlog.extend(std::mem::take(&mut self.queue));
        backlog
    }

    /// Registers a held connect, answering an earlier held one with [`Wake::Replaced`].
    pub fn hold(&mut self) -> oneshot::Receiver<Wake> {
        self.wake(Wake::Replaced);
        let (tx, rx) = oneshot::channel();
        self.held = Some(tx);
        rx
    }

    /// Answers the held connect, if any.
    pub fn wake(&mut self, why: Wake) {
        if let Some(held) = self.held.take() {
            // Its request may have gone away: then there is nobody to tell.
            let _ = held.send(why);
        }
    }

    /// Forgets a held connect whose request has gone (answered or dropped).
    pub fn clear_finished_hold(&mut self) {
        if self.held.as_ref().is_some_and(|held| held.is_closed()) {
            self.held = None;
        }
    }

    /// A connect is being held for this client right now.
    pub fn is_held(&self) -> bool {
        self.held.as_ref().is_some_and(|held| !held.is_closed())
    }
}

/// Why a push was not queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// No such client (or it belongs to another user).
    Unknown,
    /// The client is not subscribed to `/_genesys`.
    NotSubscribed,
    /// It holds `max_queue` pushes already (queued, or sent and unacknowledged).
    Full,
}

/// How long clients live, how many there may be and how much each may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// A client not seen for this long (and not holding a connect) is swept.
    pub max_interval_ms: u64,
    /// At most this many clients in all.
    pub max_clients: usize,
    /// At most this many clients per `gms_user`.
    pub max_clients_per_user: usize,
    /// At most this many pushes per client, queued or unacknowledged; and per user, parked.
    pub max_queue: usize,
    /// How long the unacknowledged pushes of a swept client wait for another client of its
    /// user.
    pub ack_retention_ms: u64,
}

/// Why a handshake was refused a new client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The user has `max_clients_per_user` clients already.
    User,
    /// The server has `max_clients` clients already.
    Server,
}

/// What one call of [`Clients::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Clients removed.
    pub removed: usize,
    /// Index entries looked at (removed, moved on because a connect is held, or parked pushes
    /// that expired).
    pub examined: usize,
    /// More entries are due: call again (after letting requests take the lock).
    pub more: bool,
}

/// Unacknowledged pushes of a user's swept clients, waiting for its next acknowledging client.
#[derive(Debug)]
struct Parked {
    /// By sequence number: in publish order, each once.
    pushes: BTreeMap<u64, Arc<Push>>,
    /// When they are dropped; their entry in the parked deadline index.
    deadline: Timestamp,
}

/// Every client, by id, by `gms_user` and by deadline.
#[derive(Debug)]
pub struct Clients {
    limits: ClientLimits,
    by_id: HashMap<Arc<str>, Client>,
    /// `gms_user` -> its client ids, so a publish touches only that user's clients. At most
    /// `max_clients_per_user` long, so editing it is cheap.
    by_user: HashMap<Arc<str>, Vec<Arc<str>>>,
    /// (deadline, id) of every client, earliest first: what a sweep walks.
    by_deadline: BTreeSet<(Timestamp, Arc<str>)>,
    /// Pushes left unacknowledged by swept clients, by `gms_user`; at most `max_clients`
    /// users, `max_queue` pushes each.
    parked: HashMap<Arc<str>, Parked>,
    /// (deadline, gms_user) of every parked entry, earliest first.
    parked_by_deadline: BTreeSet<(Timestamp, Arc<str>)>,
    /// The sequence number of the next publish.
    next_seq: u64,
}

impl Clients {
    /// An empty table with these limits.
    pub fn new(limits: ClientLimits) -> Clients {
        Clients {
            limits,
            by_id: HashMap::new(),
            by_user: HashMap::new(),
            by_deadline: BTreeSet::new(),
            parked: HashMap::new(),
            parked_by_deadline: BTreeSet::new(),
            next_seq: 0,
        }
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    fn deadline_from(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_millis(now.as_millis().saturating_add(self.limits.max_interval_ms))
    }

    /// Adds a client of `gms_user` under the new id `client_id`, seen at `now`; `acknowledges`
    /// when its handshake asked for the acknowledgement extension.
    ///
    /// # Errors
    /// The server or the user has as many clients as allowed; nothing was added.
    pub fn add(
        &mut self,
        client_id: String,
        gms_user: &str,
        acknowledges: bool,
        now: Timestamp,
    ) -> Result<(), Full> {
        if self.by_id.len() >= self.limits.max_clients {
            return Err(Full::Server);
        }
        let (gms_user, count) = match self.by_user.get_key_value(gms_user) {
            Some((user, ids)) => (user.clone(), ids.len()),
            None => (Arc::from(gms_user), 0),
        };
        if count >= self.limits.max_clients_per_user {
            return Err(Full::User);
        }
        let id: Arc<str> = Arc::from(client_id);
        let deadline = self.deadline_from(now);
        // Most users have one client: room for exactly one until a second comes.
        self.by_user
            .entry(gms_user.clone())
            .or_insert_with(|| Vec::with_capacity(1))
            .push(id.clone());
        self.by_deadline.insert((deadline, id.clone()));
        let acks = acknowledges.then(|| {
            Box::new(Acks {
                next_batch: 1,
                sent: VecDeque::new(),
            })
        });
        self.by_id.insert(
            id.clone(),
            Client {
                id,
                gms_user,
                subscribed: false,
                connected: false,
                queue: VecDeque::new(),
                acks,
                held: None,
                deadline,
            },
        );
        Ok(())
    }

    /// Whether `client_id` is taken.
    pub fn contains(&self, client_id: &str) -> bool {
        self.by_id.contains_key(client_id)
    }

    /// The client `client_id` if it handshook with `gms_user`, now seen at `now` (its
    /// deadline moves). A client asked about by another user (or with no `gms_user`) is
    /// unknown to that caller, and is not touched.
    pub fn seen(
        &mut self,
        client_id: &str,
        gms_user: Option<&str>,
        now: Timestamp,
    ) -> Option<&mut Client> {
        let owned = self
            .by_id
            .get(client_id)
            .is_some_and(|client| Some(&*client.gms_user) == gms_user);
        if !owned {
            return None;
        }
        self.seen_own(client_id, now)
    }

    /// The client `client_id`, whoever it belongs to, now seen at `now` (for the server's own
    /// follow-ups, such as answering a held connect).
    pub fn seen_own(&mut self, client_id: &str, now: Timestamp) -> Option<&mut Client> {
        let deadline = self.deadline_from(now);
        let client = self.by_id.get_mut(client_id)?;
        if client.deadline != deadline {
            self.by_deadline
                .remove(&(client.deadline, client.id.clone()));
            client.deadline = deadline;
            self.by_deadline.insert((deadline, client.id.clone()));
        }
        Some(client)
    }

    /// The client `client_id` if it handshook with `gms_user`, without touching its deadline.
    pub fn get_mut(&mut self, client_id: &str, gms_user: Option<&str>) -> Option<&mut Client> {
        self.by_id
            .get_mut(client_id)
            .filter(|client| Some(&*client.gms_user) == gms_user)
    }

    /// The client `client_id`, whoever it belongs to, without touching its deadline.
    #[cfg(test)]
    pub fn get_own(&mut self, client_id: &str) -> Option<&mut Client> {
        self.by_id.get_mut(client_id)
    }

    /// Removes a client, answering its held connect with `why`. What it held is dropped: a
    /// client that disconnects is done.
    pub fn remove(&mut self, client_id: &str, why: Wake) -> bool {
        self.detach(client_id, why).is_some()
    }

    /// Takes a client out of the table and its indexes, answering its held connect with `why`.
    fn detach(&mut self, client_id: &str, why: Wake) -> Option<Client> {
        let mut client = self.by_id.remove(client_id)?;
        client.wake(why);
        self.by_deadline
            .remove(&(client.deadline, client.id.clone()));
        if let Some(ids) = self.by_user.get_mut(&client.gms_user) {
            if let Some(at) = ids.iter().position(|id| **id == *client_id) {
                ids.swap_remove(at);
            }
            if ids.is_empty() {
                self.by_user.remove(&client.gms_user);
            }
        }
        Some(client)
    }

    /// Queues `push` for every subscribed client of `gms_user` and wakes their held connects.
    /// Returns whom it was queued for.
    pub fn publish(&mut self, gms_user: &str, push: &Arc<Push>) -> Reach {
        let queued = self.sequenced(push);
        let Some(ids) = self.by_user.get(gms_user) else {
            return Reach::default();
        };
        let mut reach = Reach::default();
        for id in ids {
            if let Some(client) = self.by_id.get_mut(id) {
                if queue(client, &queued, self.limits.max_queue).is_ok() {
                    reach.clients += 1;
                }
            }
        }
        reach
    }

    /// Queues `push` for one client and wakes its held connect.
    ///
    /// # Errors
    /// Why it was not queued.
    pub fn publish_to(&mut self, client_id: &str, push: &Arc<Push>) -> Result<(), NotQueued> {
        let queued = self.sequenced(push);
        let client = self.by_id.get_mut(client_id).ok_or(NotQueued::Unknown)?;
        queue(client, &queued, self.limits.max_queue)
    }

    fn sequenced(&mut self, push: &Arc<Push>) -> Queued {
        self.next_seq += 1;
        Queued {
            seq: self.next_seq,
            push: push.clone(),
        }
    }

    /// Gives the acknowledging client `client_id`, which has just subscribed, what its user's
    /// earlier clients left unacknowledged: the parked pushes of swept clients, and the
    /// pushes held by the user's other acknowledging clients that hold no connect (those give
    /// them up). Merged in publish order, each once, after what it holds already, up to
    /// `max_queue` in all (the oldest are kept). Wakes its held connect when something was
    /// added. Returns how many pushes it took over.
    pub fn take_over(&mut self, client_id: &str) -> usize {
        let Some(client) = self.by_id.get(client_id) else {
            return 0;
        };
        if !client.acknowledges() {
            return 0;
        }
        let gms_user = client.gms_user.clone();
        let mut found: BTreeMap<u64, Arc<Push>> = BTreeMap::new();
        if let Some(parked) = self.parked.remove(&gms_user) {
            self.parked_by_deadline
                .remove(&(parked.deadline, gms_user.clone()));
            found.extend(parked.pushes);
        }
        let others = self.by_user.get(&gms_user).cloned().unwrap_or_default();
        for other in others.iter().filter(|id| ***id != *client_id) {
            if let Some(other) = self.by_id.get_mut(other) {
                if other.acknowledges() && !other.is_held() {
                    found.extend(other.take_backlog().into_iter().map(|q| (q.seq, q.push)));
                }
            }
        }
        let max_queue = self.limits.max_queue;
        let Some(client) = self.by_id.get_mut(client_id) else {
            return 0;
        };
        let held: HashSet<u64> = client.held_pushes().map(|queued| queued.seq).collect();
        let mut receipts: HashSet<Receipt> = client
            .held_pushes()
            .filter_map(|queued| queued.push.receipt.clone())
            .collect();
        let room = max_queue.saturating_sub(client.backlog());
        let before = client.queue.len();
        client.queue.extend(
            found
                .into_iter()
                .filter(|(seq, push)| {
                    // The same stored notification, replayed to two clients: once is enough.
                    !held.contains(seq)
                        && push
                            .receipt
                            .as_ref()
                            .is_none_or(|receipt| receipts.insert(receipt.clone()))
                })
                .take(room)
                .map(|(seq, push)| Queued { seq, push }),
        );
        let taken = client.queue.len() - before;
        if taken > 0 {
            client.wake(Wake::Push);
        }
        taken
    }

    /// Keeps what a swept acknowledging client had not acknowledged for its user's next
    /// client, until `ack_retention_ms` from `now`. Nothing is parked once `max_clients` users
    /// have parked pushes; at most `max_queue` are kept per user (the oldest).
    fn park(&mut self, mut client: Client, now: Timestamp) {
        if !client.acknowledges() {
            return;
        }
        let backlog = client.take_backlog();
        if backlog.is_empty() {
            return;
        }
        if !self.parked.contains_key(&client.gms_user)
            && self.parked.len() >= self.limits.max_clients
        {
            tracing::warn!(
                gms_user = %client.gms_user,
                dropped = backlog.len(),
                "too many users with parked CometD pushes: unacknowledged pushes dropped"
            );
            return;
        }
        let deadline =
            Timestamp::from_millis(now.as_millis().saturating_add(self.limits.ack_retention_ms));
        let parked = self
            .parked
            .entry(client.gms_user.clone())
            .or_insert_with(|| Parked {
                pushes: BTreeMap::new(),
                deadline,
            });
        self.parked_by_deadline
            .remove(&(parked.deadline, client.gms_user.clone()));
        parked.deadline = deadline;
        self.parked_by_deadline
            .insert((deadline, client.gms_user.clone()));
        parked
            .pushes
            .extend(backlog.into_iter().map(|queued| (queued.seq, queued.push)));
        while parked.pushes.len() > self.limits.max_queue {
            parked.pushes.pop_last();
        }
    }

    /// Looks at up to `budget` index entries whose deadline is at or before `now`, earliest
    /// first. A due client is removed, unless its connect is held (the held connect keeps
    /// it, so its deadline moves a `max_interval` on and it is looked at again then); what an
    /// acknowledging one leaves unacknowledged is parked. Parked pushes past their retention
    /// are dropped. Entries not due are not looked at.
    pub fn sweep(&mut self, now: Timestamp, budget: usize) -> Swept {
        let mut swept = Swept::default();
        let next_deadline = self.deadline_from(now);
        while swept.examined < budget {
            let Some((_, id)) = self
                .by_deadline
                .first()
                .filter(|(deadline, _)| *deadline <= now)
                .cloned()
            else {
                break;
            };
            self.by_deadline.pop_first();
            swept.examined += 1;
            match self.by_id.get_mut(&id) {
                Some(client) if client.is_held() => {
                    client.deadline = next_deadline;
                    self.by_deadline.insert((next_deadline, id));
                }
                Some(_) => {
                    if let Some(client) = self.detach(&id, Wake::Removed) {
                        self.park(client, now);
                    }
                    swept.removed += 1;
                }
                // Not in the table: nothing to do (cannot happen; the index follows it).
                None => {}
            }
        }
        while swept.examined < budget {
            let Some(entry) = self
                .parked_by_deadline
                .first()
                .filter(|(deadline, _)| *deadline <= now)
                .cloned()
            else {
                break;
            };
            self.parked_by_deadline.remove(&entry);
            self.parked.remove(&entry.1);
            swept.examined += 1;
        }
        let due = |index: &BTreeSet<(Timestamp, Arc<str>)>| {
            index.first().is_some_and(|(deadline, _)| *deadline <= now)
        };
        swept.more = due(&self.by_deadline) || due(&self.parked_by_deadline);
        swept
    }

    /// Answers every held connect with `why`.
    pub fn wake_all(&mut self, why: Wake) {
        for client in self.by_id.values_mut() {
            client.wake(why);
        }
    }
}

/// Queues `queued` for `client`, unless it holds the same stored notification already (a
/// replay of what it took over): that counts as queued.
fn queue(client: &mut Client, queued: &Queued, max_queue: usize) -> Result<(), NotQueued> {
    // A push on a service channel answers what this client published there: it is the
    // client's whether or not it listens on /_genesys.
    if !client.subscribed && queued.push.channel.is_none() {
        return Err(NotQueued::NotSubscribed);
    }
    if let Some(receipt) = &queued.push.receipt {
        if client
            .held_pushes()
            .any(|held| held.push.receipt.as_ref() == Some(receipt))
        {
            return Ok(());
        }
    }
    if client.backlog() >= max_queue {
        return Err(NotQueued::Full);
    }
    client.queue.push_back(queued.clone());
    client.wake(Wake::Push);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(tag: &str) -> Arc<Push> {
        Arc::new(Push::new(tag, serde_json::json!({})))
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// Limits with a 30 s max interval, room for plenty of clients, 10 pushes each, and
    /// parked pushes kept for 60 s.
    fn limits() -> ClientLimits {
        ClientLimits {
            max_interval_ms: 30_000,
            max_clients: 100_000,
            max_clients_per_user: 100_000,
            max_queue: 10,
            ack_retention_ms: 60_000,
        }
    }

    fn table() -> Clients {
        Clients::new(limits())
    }

    /// The tags of what the next connect reply carries, and its batch.
    fn delivered(clients: &mut Clients, id: &str) -> (Vec<String>, Option<u64>) {
        let delivery = clients.get_own(id).unwrap().take_delivery();
        let tags = delivery.pushes.iter().map(|p| p.tag.clone()).collect();
        (tags, delivery.batch)
    }

    /// A subscribed client of `user`, with the acknowledgement extension.
    fn acknowledging(clients: &mut Clients, id: &str, user: &str, now: u64) {
        clients.add(id.into(), user, true, at(now)).unwrap();
        clients.get_own(id).unwrap().subscribed = true;
    }

    #[test]
    fn a_client_is_only_found_by_the_user_it_handshook_with() {
        let mut clients = table();
        clients.add("c1".into(), "alice", false, at(0)).unwrap();
        assert!(clients.get_mut("c1", Some("alice")).is_some());
        assert!(clients.get_mut("c1", Some("bob")).is_none(), "other user");
        assert!(clients.get_mut("c1", None).is_none(), "no user");
        assert!(clients.get_mut("c2", Some("alice")).is_none(), "unknown id");
    }

    #[test]
    fn publish_reaches_only_subscribed_clients_of_that_user() {
        let mut clients = table();
        for (id, user) in [
            ("a1", "alice"),
            ("a2", "alice"),
            ("a3", "alice"),
            ("b1", "bob"),
        ] {
            clients.add(id.into(), user, false, at(0)).unwrap();
            if id != "a3" {
                clients.get_own(id).unwrap().subscribed = true;
            }
        }
        assert_eq!(clients.publish("alice", &push("t")).clients, 2);
        assert!(clients.get_own("a1").unwrap().has_pending());
        assert!(
            !clients.get_own("a3").unwrap().has_pending(),
            "not subscribed"
        );
        assert!(!clients.get_own("b1").unwrap().has_pending(), "other user");
        assert_eq!(
            clients.publish("carol", &push("t")).clients,
            0,
            "no clients"
        );
    }

    #[test]
    fn a_full_queue_refuses_new_pushes_and_keeps_the_old_ones() {
        let mut clients = Clients::new(ClientLimits {
            max_queue: 3,
            ..limits()
        });
        clients.add("c".into(), "alice", false, at(0)).unwrap();
        clients.get_own("c").unwrap().subscribed = true;
        for i in 0..3 {
            assert_eq!(clients.publish("alice", &push(&i.to_string())).clients, 1);
        }
        assert_eq!(clients.publish("alice", &push("late")).clients, 0, "full");
        assert_eq!(clients.publish_to("c", &push("late")), Err(NotQueued::Full));
        assert_eq!(
            delivered(&mut clients, "c"),
            (vec!["0".into(), "1".into(), "2".into()], None)
        );
        assert_eq!(
            clients.publish("alice", &push("again")).clients,
            1,
            "room again"
        );
    }

    #[test]
    fn a_second_hold_answers_the_first() {
        let mut clients = table();
        clients.add("c".into(), "alice", false, at(0)).unwrap();
        let client = clients.get_own("c").unwrap();
        let mut first = client.hold();
        let mut second = client.hold();
        assert_eq!(first.try_recv(), Ok(Wake::Replaced));
        assert!(second.try_recv().is_err(), "still held");
        client.subscribed = true;
        clients.publish("alice", &push("t"));
        assert_eq!(second.try_recv(), Ok(Wake::Push));
    }

    #[test]
    fn sweep_removes_idle_clients_but_not_held_ones() {
        let mut clients = table();
        clients.add("idle".into(), "alice", false, at(0)).unwrap();
        clients
            .add("fresh".into(), "alice", false, at(20_000))
            .unwrap();
        clients.add("held".into(), "bob", false, at(0)).unwrap();
        let _held = clients.get_own("held").unwrap().hold();
        clients.add("dropped".into(), "bob", false, at(0)).unwrap();
        drop(clients.get_own("dropped").unwrap().hold());

        assert_eq!(clients.sweep(at(29_999), 100).removed, 0, "not yet");
        let swept = clients.sweep(at(30_000), 100);
        assert_eq!(swept.removed, 2, "idle and dropped");
        assert_eq!(swept.examined, 3, "the held one was looked at and kept");
        assert!(!swept.more);
        assert!(clients.get_own("idle").is_none());
        assert!(clients.get_own("dropped").is_none());
        assert!(clients.get_own("held").is_some());
        assert!(clients.get_own("fresh").is_some());
        assert_eq!(clients.len(), 2);
        assert_eq!(clients.by_user.get("alice").map(Vec::len), Some(1));
        assert_eq!(clients.by_deadline.len(), 2, "the index follows the table");
    }

    #[test]
    fn a_sweep_examines_only_the_clients_that_are_due() {
        let mut clients = table();
        for i in 0..10_000 {
            clients
                .add(format!("late-{i}"), &format!("u{i}"), false, at(50_000))
                .unwrap();
        }
        for i in 0..10 {
            clients
                .add(format!("due-{i}"), "alice", false, at(0))
                .unwrap();
        }

        let swept = clients.sweep(at(30_000), 1_000);

        assert_eq!(swept.examined, 10, "not the 10,000 that are not due");
        assert_eq!(swept.removed, 10);
        assert!(!swept.more);
        assert_eq!(clients.len(), 10_000);
        assert_eq!(clients.sweep(at(30_000), 1_000).examined, 0, "nothing due");
    }

    #[test]
    fn a_sweep_stops_at_its_budget_and_says_more_is_due() {
        let mut clients = table();
        for i in 0..2_500 {
            clients
                .add(format!("c{i}"), &format!("u{i}"), false, at(0))
                .unwrap();
        }
        let first = clients.sweep(at(30_000), 1_000);
        assert_eq!(
            (first.examined, first.removed, first.more),
            (1_000, 1_000, true)
        );
        clients.sweep(at(30_000), 1_000);
        let last = clients.sweep(at(30_000), 1_000);
        assert_eq!((last.examined, last.more), (500, false));
        assert_eq!(clients.len(), 0);
        assert!(clients.by_user.is_empty() && clients.by_deadline.is_empty());
    }

    #[test]
    fn being_seen_moves_the_deadline() {
        let mut clients = table();
        clients.add("c".into(), "alice", false, at(0)).unwrap();
        assert!(
            clients.seen("c", Some("bob"), at(20_000)).is_none(),
            "other user"
        );
        assert!(clients.seen("c", Some("alice"), at(20_000)).is_some());
        let swept = clients.sweep(at(30_000), 100);
        assert_eq!(swept.examined, 0, "its old deadline is gone from the index");
        assert_eq!(clients.sweep(at(50_000), 100).removed, 1);
    }

    #[test]
    fn clients_are_limited_per_user_and_in_all() {
        let mut clients = Clients::new(ClientLimits {
            max_clients: 5,
            max_clients_per_user: 3,
            ..limits()
        });
        for i in 0..3 {
            clients.add(format!("a{i}"), "alice", false, at(0)).unwrap();
        }
        assert_eq!(
            clients.add("a3".into(), "alice", false, at(0)),
            Err(Full::User)
        );
        clients.add("b0".into(), "bob", false, at(0)).unwrap();
        clients.add("b1".into(), "bob", false, at(0)).unwrap();
        assert_eq!(
            clients.add("c0".into(), "carol", false, at(0)),
            Err(Full::Server)
        );
        assert_eq!(clients.len(), 5, "refused handshakes left nothing behind");
        assert!(clients.remove("a0", Wake::Removed));
        clients.add("a3".into(), "alice", false, at(0)).unwrap();
    }

    #[test]
    fn removing_the_last_client_of_a_user_forgets_the_user() {
        let mut clients = table();
        clients.add("c".into(), "alice", false, at(0)).unwrap();
        let mut held = clients.get_own("c").unwrap().hold();
        assert!(clients.remove("c", Wake::Removed));
        assert_eq!(held.try_recv(), Ok(Wake::Removed));
        assert!(clients.by_user.is_empty());
        assert!(!clients.remove("c", Wake::Removed), "already gone");
    }

    #[test]
    fn an_acknowledging_client_is_sent_its_pushes_again_until_it_acknowledges_them() {
        let mut clients = table();
        acknowledging(&mut clients, "c", "alice", 0);
        clients.publish("alice", &push("a"));
        assert_eq!(delivered(&mut clients, "c"), (vec!["a".into()], Some(1)));
        // The reply of batch 1 was lost: the next one carries "a" again, with "b".
        clients.publish("alice", &push("b"));
        assert_eq!(
            delivered(&mut clients, "c"),
            (vec!["a".into(), "b".into()], Some(2))
        );
        let client = clients.get_own("c").unwrap();
        client.acknowledge(2);
        assert!(!client.has_pending(), "both acknowledged");
        assert_eq!(delivered(&mut clients, "c"), (vec![], Some(3)));
    }

    #[test]
    fn acknowledging_a_batch_releases_it_and_the_earlier_ones_only() {
        let mut clients = table();
        acknowledging(&mut clients, "c", "alice", 0);
        clients.publish("alice", &push("a"));
        delivered(&mut clients, "c");
        clients.publish("alice", &push("b"));
        delivered(&mut clients, "c");
        clients.publish("alice", &push("queued"));
        let client = clients.get_own("c").unwrap();
        client.acknowledge(1);
        assert!(client.has_unacknowledged(), "batch 2 is still out");
        client.acknowledge(u64::MAX);
        assert!(!client.has_unacknowledged());
        assert!(
            client.has_queued(),
            "a push not sent yet is not acknowledged"
        );
        assert_eq!(
            delivered(&mut clients, "c"),
            (vec!["queued".into()], Some(3))
        );
    }

    #[test]
    fn a_client_without_the_extension_forgets_what_it_was_sent() {
        let mut clients = table();
        clients.add("c".into(), "alice", false, at(0)).unwrap();
        clients.get_own("c").unwrap().subscribed = true;
        clients.publish("alice", &push("a"));
        assert_eq!(delivered(&mut clients, "c"), (vec!["a".into()], None));
        clients.get_own("c").unwrap().acknowledge(0);
        assert_eq!(delivered(&mut clients, "c"), (vec![], None));
    }

    #[test]
    fn unacknowledged_pushes_count_against_the_cap() {
        let mut clients = Clients::new(ClientLimits {
            max_queue: 2,
            ..limits()
        });
        acknowledging(&mut clients, "c", "alice", 0);
        clients.publish("alice", &push("a"));
        delivered(&mut clients, "c");
        clients.publish("alice", &push("b"));
        assert_eq!(clients.publish("alice", &push("c")).clients, 0, "full");
        clients.get_own("c").unwrap().acknowledge(1);
        assert_eq!(
            clients.publish("alice", &push("d")).clients,
            1,
            "room again"
        );
    }

    #[test]
    fn a_new_acknowledging_client_takes_over_what_an_idle_one_left_unacknowledged() {
        let mut clients = table();
        acknowledging(&mut clients, "old", "alice", 0);
        acknowledging(&mut clients, "live", "alice", 0);
        clients.add("plain".into(), "alice", false, at(0)).unwrap();
        clients.get_own("plain").unwrap().subscribed = true;
        clients.publish("alice", &push("a"));
        delivered(&mut clients, "old");
        clients.publish("alice", &push("b"));
        let _live_is_holding = clients.get_own("live").unwrap().hold();

        acknowledging(&mut clients, "new", "alice", 0);
        assert_eq!(clients.take_over("new"), 2);

        assert_eq!(
            delivered(&mut clients, "new"),
            (vec!["a".into(), "b".into()], Some(1))
        );
        assert!(!clients.get_own("old").unwrap().has_pending(), "given up");
        assert!(
            clients.get_own("live").unwrap().has_pending(),
            "a client holding a connect keeps its own"
        );
        assert!(
            clients.get_own("plain").unwrap().has_pending(),
            "a client without the extension keeps its own"
        );
        assert_eq!(clients.take_over("new"), 0, "nothing twice");
    }

    #[test]
    fn a_swept_client_parks_its_unacknowledged_pushes_for_the_next_client_of_its_user() {
        let mut clients = table();
        acknowledging(&mut clients, "a1", "alice", 0);
        acknowledging(&mut clients, "a2", "alice", 0);
        acknowledging(&mut clients, "b1", "bob", 0);
        clients.publish("alice", &push("1"));
        delivered(&mut clients, "a1");
        clients.publish("alice", &push("2"));
        clients.publish("bob", &push("bob's"));

        assert_eq!(clients.sweep(at(30_000), 100).removed, 3);
        assert_eq!(clients.parked.len(), 2, "alice's and bob's");

        acknowledging(&mut clients, "a3", "alice", 40_000);
        assert_eq!(
            clients.take_over("a3"),
            2,
            "each push once, from both clients"
        );
        assert_eq!(
            delivered(&mut clients, "a3"),
            (vec!["1".into(), "2".into()], Some(1))
        );
        assert!(!clients.parked.contains_key("alice"));

        let _a3_is_holding = clients.get_own("a3").unwrap().hold();
        let swept = clients.sweep(at(30_000 + 60_000), 100);
        assert_eq!(
            (swept.removed, swept.examined),
            (0, 2),
            "a3 is held, bob's parked pushes expired"
        );
        assert!(clients.parked.is_empty() && clients.parked_by_deadline.is_empty());
    }

    #[test]
    fn a_client_without_the_extension_takes_nothing_over_and_parks_nothing() {
        let mut clients = table();
        clients.add("plain".into(), "alice", false, at(0)).unwrap();
        clients.get_own("plain").unwrap().subscribed = true;
        clients.publish("alice", &push("1"));
        clients.sweep(at(30_000), 100);
        assert!(clients.parked.is_empty());

        acknowledging(&mut clients, "old", "alice", 30_000);
        clients.publish("alice", &push("2"));
        clients
            .add("new".into(), "alice", false, at(30_000))
            .unwrap();
        assert_eq!(clients.take_over("new"), 0);
        assert!(clients.get_own("old").unwrap().has_pending());
    }

    #[test]
    fn parked_pushes_are_capped_per_user_and_taking_over_respects_the_cap() {
        let mut clients = Clients::new(ClientLimits {
            max_queue: 3,
            ..limits()
        });
        for id in ["a1", "a2"] {
            acknowledging(&mut clients, id, "alice", 0);
        }
        for i in 0..3 {
            clients.publish("alice", &push(&format!("shared-{i}")));
        }
        clients.get_own("a2").unwrap().take_delivery();
        clients.get_own("a2").unwrap().acknowledge(1);
        for i in 0..3 {
            clients
                .publish_to("a2", &push(&format!("own-{i}")))
                .unwrap();
        }
        clients.sweep(at(30_000), 100);
        assert_eq!(clients.parked["alice"].pushes.len(), 3, "the oldest three");

        acknowledging(&mut clients, "a3", "alice", 30_000);
        clients.publish("alice", &push("new"));
        assert_eq!(clients.take_over("a3"), 2, "room for two");
        assert_eq!(
            delivered(&mut clients, "a3").0,
            ["new", "shared-0", "shared-1"]
        );
    }
}
