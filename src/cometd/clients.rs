//! The registry of handshaken clients: who they are, what waits for them, and who is holding
//! a long-poll for them.
//!
//! Plain data behind the one lock in [`super::Bayeux`]; nothing here awaits. Per-client state
//! is kept small on purpose (a few hundred bytes while idle): no task, no channel and no
//! buffer per client, only an empty `VecDeque` until something is queued and a oneshot sender
//! while a connect is held.

use std::collections::{HashMap, VecDeque};
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
    /// When it last sent anything, or was last answered a connect.
    pub last_seen: Timestamp,
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

/// Every client, by id and by `gms_user`.
#[derive(Debug, Default)]
pub struct Clients {
    by_id: HashMap<String, Client>,
    /// `gms_user` -> its client ids, so a publish touches only that user's clients.
    by_user: HashMap<Arc<str>, Vec<String>>,
}

impl Clients {
    /// Number of clients.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Adds a client of `gms_user` under the new id `client_id`.
    pub fn add(&mut self, client_id: String, gms_user: &str, now: Timestamp) {
        let gms_user: Arc<str> = match self.by_user.get_key_value(gms_user) {
            Some((user, _)) => user.clone(),
            None => Arc::from(gms_user),
        };
        self.by_user
            .entry(gms_user.clone())
            .or_default()
            .push(client_id.clone());
        self.by_id.insert(
            client_id,
            Client {
                gms_user,
                subscribed: false,
                connected: false,
                queue: VecDeque::new(),
                held: None,
                last_seen: now,
            },
        );
    }

    /// The client `client_id` if it handshook with `gms_user`. A client asked about by
    /// another user (or with no `gms_user`) is unknown to that caller.
    pub fn get_mut(&mut self, client_id: &str, gms_user: Option<&str>) -> Option<&mut Client> {
        self.by_id
            .get_mut(client_id)
            .filter(|client| Some(&*client.gms_user) == gms_user)
    }

    /// The client `client_id`, whoever it belongs to (for the server's own follow-ups).
    pub fn get_own(&mut self, client_id: &str) -> Option<&mut Client> {
        self.by_id.get_mut(client_id)
    }

    /// Removes a client, answering its held connect with `why`.
    pub fn remove(&mut self, client_id: &str, why: Wake) -> bool {
        let Some(mut client) = self.by_id.remove(client_id) else {
            return false;
        };
        client.wake(why);
        if let Some(ids) = self.by_user.get_mut(&client.gms_user) {
            ids.retain(|id| id != client_id);
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

    /// Removes every client not seen for `max_interval_ms` that has no connect held.
    /// Returns how many.
    pub fn sweep(&mut self, now: Timestamp, max_interval_ms: u64) -> usize {
        let expired: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, client)| {
                !client.is_held()
                    && now.as_millis().saturating_sub(client.last_seen.as_millis())
                        >= max_interval_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.remove(id, Wake::Removed);
        }
        expired.len()
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

    #[test]
    fn a_client_is_only_found_by_the_user_it_handshook_with() {
        let mut clients = Clients::default();
        clients.add("c1".into(), "alice", at(0));
        assert!(clients.get_mut("c1", Some("alice")).is_some());
        assert!(clients.get_mut("c1", Some("bob")).is_none(), "other user");
        assert!(clients.get_mut("c1", None).is_none(), "no user");
        assert!(clients.get_mut("c2", Some("alice")).is_none(), "unknown id");
    }

    #[test]
    fn publish_reaches_only_subscribed_clients_of_that_user() {
        let mut clients = Clients::default();
        for (id, user) in [
            ("a1", "alice"),
            ("a2", "alice"),
            ("a3", "alice"),
            ("b1", "bob"),
        ] {
            clients.add(id.into(), user, at(0));
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
        let mut clients = Clients::default();
        clients.add("c".into(), "alice", at(0));
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
        let mut clients = Clients::default();
        clients.add("c".into(), "alice", at(0));
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
        let mut clients = Clients::default();
        clients.add("idle".into(), "alice", at(0));
        clients.add("fresh".into(), "alice", at(20_000));
        clients.add("held".into(), "bob", at(0));
        let _held = clients.get_own("held").unwrap().hold();
        clients.add("dropped".into(), "bob", at(0));
        drop(clients.get_own("dropped").unwrap().hold());

        assert_eq!(clients.sweep(at(29_999), 30_000), 0, "not yet");
        assert_eq!(clients.sweep(at(30_000), 30_000), 2, "idle and dropped");
        assert!(clients.get_own("idle").is_none());
        assert!(clients.get_own("dropped").is_none());
        assert!(clients.get_own("held").is_some());
        assert!(clients.get_own("fresh").is_some());
        assert_eq!(clients.len(), 2);
        assert_eq!(clients.by_user.get("alice").map(Vec::len), Some(1));
    }

    #[test]
    fn removing_the_last_client_of_a_user_forgets_the_user() {
        let mut clients = Clients::default();
        clients.add("c".into(), "alice", at(0));
        let mut held = clients.get_own("c").unwrap().hold();
        assert!(clients.remove("c", Wake::Removed));
        assert_eq!(held.try_recv(), Ok(Wake::Removed));
        assert!(clients.by_user.is_empty());
        assert!(!clients.remove("c", Wake::Removed), "already gone");
    }
}
