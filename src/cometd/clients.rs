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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::Push;
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
    /// Pushes not yet delivered, oldest first, shared between the clients of one user.
    queue: VecDeque<Arc<Push>>,
    /// Answers the held `/meta/connect`, if any.
    held: Option<oneshot::Sender<Wake>>,
    /// `max_interval` after it last sent anything or was last answered a connect: when the
    /// sweep drops it (unless a connect is held then). Its entry in the deadline index.
    deadline: Timestamp,
}

impl Client {
    /// Whether a push is waiting.
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Takes every queued push, oldest first, and gives the queue's memory back.
    pub fn take_pending(&mut self) -> Vec<Arc<Push>> {
        std::mem::take(&mut self.queue).into()
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
    /// Its queue holds `max_queue` pushes already.
    Full,
}

/// How long clients live and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// A client not seen for this long (and not holding a connect) is swept.
    pub max_interval_ms: u64,
    /// At most this many clients in all.
    pub max_clients: usize,
    /// At most this many clients per `gms_user`.
    pub max_clients_per_user: usize,
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
    /// Index entries looked at (removed, or moved on because a connect is held).
    pub examined: usize,
    /// More entries are due: call again (after letting requests take the lock).
    pub more: bool,
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
}

impl Clients {
    /// An empty table with these limits.
    pub fn new(limits: ClientLimits) -> Clients {
        Clients {
            limits,
            by_id: HashMap::new(),
            by_user: HashMap::new(),
            by_deadline: BTreeSet::new(),
        }
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    fn deadline_from(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_millis(now.as_millis().saturating_add(self.limits.max_interval_ms))
    }

    /// Adds a client of `gms_user` under the new id `client_id`, seen at `now`.
    ///
    /// # Errors
    /// The server or the user has as many clients as allowed; nothing was added.
    pub fn add(&mut self, client_id: String, gms_user: &str, now: Timestamp) -> Result<(), Full> {
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
        self.by_user
            .entry(gms_user.clone())
            .or_default()
            .push(id.clone());
        self.by_deadline.insert((deadline, id.clone()));
        self.by_id.insert(
            id.clone(),
            Client {
                id,
                gms_user,
                subscribed: false,
                connected: false,
                queue: VecDeque::new(),
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

    /// Removes a client, answering its held connect with `why`.
    pub fn remove(&mut self, client_id: &str, why: Wake) -> bool {
        let Some(mut client) = self.by_id.remove(client_id) else {
            return false;
        };
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
        true
    }

    /// Queues `push` for every subscribed client of `gms_user` and wakes their held connects.
    /// Returns how many it was queued for.
    pub fn publish(&mut self, gms_user: &str, push: &Arc<Push>, max_queue: usize) -> usize {
        let Some(ids) = self.by_user.get(gms_user) else {
            return 0;
        };
        let mut queued = 0;
        for id in ids {
            if let Some(client) = self.by_id.get_mut(id) {
                if queue(client, push, max_queue).is_ok() {
                    queued += 1;
                }
            }
        }
        queued
    }

    /// Queues `push` for one client and wakes its held connect.
    ///
    /// # Errors
    /// Why it was not queued.
    pub fn publish_to(
        &mut self,
        client_id: &str,
        push: &Arc<Push>,
        max_queue: usize,
    ) -> Result<(), NotQueued> {
        let client = self.by_id.get_mut(client_id).ok_or(NotQueued::Unknown)?;
        queue(client, push, max_queue)
    }

    /// Looks at up to `budget` clients whose deadline is at or before `now`, earliest first:
    /// removes each, unless its connect is held (the held connect keeps it, so its deadline
    /// moves a `max_interval` on and it is looked at again then). Clients not due are not
    /// looked at.
    pub fn sweep(&mut self, now: Timestamp, budget: usize) -> Swept {
        let mut swept = Swept::default();
        let next_deadline = self.deadline_from(now);
        while swept.examined < budget {
            let due = self
                .by_deadline
                .first()
                .is_some_and(|(deadline, _)| *deadline <= now);
            if !due {
                break;
            }
            let Some((_, id)) = self.by_deadline.pop_first() else {
                break;
            };
            swept.examined += 1;
            match self.by_id.get_mut(&id) {
                Some(client) if client.is_held() => {
                    client.deadline = next_deadline;
                    self.by_deadline.insert((next_deadline, id));
                }
                Some(_) => {
                    self.remove(&id, Wake::Removed);
                    swept.removed += 1;
                }
                // Not in the table: nothing to do (cannot happen; the index follows it).
                None => {}
            }
        }
        swept.more = self
            .by_deadline
            .first()
            .is_some_and(|(deadline, _)| *deadline <= now);
        swept
    }

    /// Answers every held connect with `why`.
    pub fn wake_all(&mut self, why: Wake) {
        for client in self.by_id.values_mut() {
            client.wake(why);
        }
    }
}

fn queue(client: &mut Client, push: &Arc<Push>, max_queue: usize) -> Result<(), NotQueued> {
    if !client.subscribed {
        return Err(NotQueued::NotSubscribed);
    }
    if client.queue.len() >= max_queue {
        return Err(NotQueued::Full);
    }
    client.queue.push_back(push.clone());
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

    /// A table with a 30 s max interval and room for plenty of clients.
    fn table() -> Clients {
        Clients::new(ClientLimits {
            max_interval_ms: 30_000,
            max_clients: 100_000,
            max_clients_per_user: 100_000,
        })
    }

    #[test]
    fn a_client_is_only_found_by_the_user_it_handshook_with() {
        let mut clients = table();
        clients.add("c1".into(), "alice", at(0)).unwrap();
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
            clients.add(id.into(), user, at(0)).unwrap();
            if id != "a3" {
                clients.get_own(id).unwrap().subscribed = true;
            }
        }
        assert_eq!(clients.publish("alice", &push("t"), 10), 2);
        assert!(clients.get_own("a1").unwrap().has_pending());
        assert!(
            !clients.get_own("a3").unwrap().has_pending(),
            "not subscribed"
        );
        assert!(!clients.get_own("b1").unwrap().has_pending(), "other user");
        assert_eq!(clients.publish("carol", &push("t"), 10), 0, "no clients");
    }

    #[test]
    fn a_full_queue_refuses_new_pushes_and_keeps_the_old_ones() {
        let mut clients = table();
        clients.add("c".into(), "alice", at(0)).unwrap();
        clients.get_own("c").unwrap().subscribed = true;
        for i in 0..3 {
            assert_eq!(clients.publish("alice", &push(&i.to_string()), 3), 1);
        }
        assert_eq!(clients.publish("alice", &push("late"), 3), 0, "full");
        assert_eq!(
            clients.publish_to("c", &push("late"), 3),
            Err(NotQueued::Full)
        );
        let tags: Vec<String> = clients
            .get_own("c")
            .unwrap()
            .take_pending()
            .iter()
            .map(|p| p.tag.clone())
            .collect();
        assert_eq!(tags, ["0", "1", "2"]);
        assert_eq!(clients.publish("alice", &push("again"), 3), 1, "room again");
    }

    #[test]
    fn a_second_hold_answers_the_first() {
        let mut clients = table();
        clients.add("c".into(), "alice", at(0)).unwrap();
        let client = clients.get_own("c").unwrap();
        let mut first = client.hold();
        let mut second = client.hold();
        assert_eq!(first.try_recv(), Ok(Wake::Replaced));
        assert!(second.try_recv().is_err(), "still held");
        client.subscribed = true;
        clients.publish("alice", &push("t"), 10);
        assert_eq!(second.try_recv(), Ok(Wake::Push));
    }

    #[test]
    fn sweep_removes_idle_clients_but_not_held_ones() {
        let mut clients = table();
        clients.add("idle".into(), "alice", at(0)).unwrap();
        clients.add("fresh".into(), "alice", at(20_000)).unwrap();
        clients.add("held".into(), "bob", at(0)).unwrap();
        let _held = clients.get_own("held").unwrap().hold();
        clients.add("dropped".into(), "bob", at(0)).unwrap();
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
                .add(format!("late-{i}"), &format!("u{i}"), at(50_000))
                .unwrap();
        }
        for i in 0..10 {
            clients.add(format!("due-{i}"), "alice", at(0)).unwrap();
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
                .add(format!("c{i}"), &format!("u{i}"), at(0))
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
        clients.add("c".into(), "alice", at(0)).unwrap();
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
            max_interval_ms: 30_000,
            max_clients: 5,
            max_clients_per_user: 3,
        });
        for i in 0..3 {
            clients.add(format!("a{i}"), "alice", at(0)).unwrap();
        }
        assert_eq!(clients.add("a3".into(), "alice", at(0)), Err(Full::User));
        clients.add("b0".into(), "bob", at(0)).unwrap();
        clients.add("b1".into(), "bob", at(0)).unwrap();
        assert_eq!(clients.add("c0".into(), "carol", at(0)), Err(Full::Server));
        assert_eq!(clients.len(), 5, "refused handshakes left nothing behind");
        assert!(clients.remove("a0", Wake::Removed));
        clients.add("a3".into(), "alice", at(0)).unwrap();
    }

    #[test]
    fn removing_the_last_client_of_a_user_forgets_the_user() {
        let mut clients = table();
        clients.add("c".into(), "alice", at(0)).unwrap();
        let mut held = clients.get_own("c").unwrap().hold();
        assert!(clients.remove("c", Wake::Removed));
        assert_eq!(held.try_recv(), Ok(Wake::Removed));
        assert!(clients.by_user.is_empty());
        assert!(!clients.remove("c", Wake::Removed), "already gone");
    }
}
