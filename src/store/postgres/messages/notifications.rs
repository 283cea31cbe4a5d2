//! Notifications, both ways, on PostgreSQL (the sled engine's `store/notifications.rs`).
//!
//! `seq` comes from the `notification_seq` sequence, shared by both tables: increasing across
//! the database and its nodes, as sled's `generate_id` is, so it orders a service's
//! notifications and a user's across services. The `delivered` (`retrieved`) column is the
//! truth about delivery: it is set by one `UPDATE` whose row lock decides which of two
//! concurrent callers delivers, so the flag inside the stored value keeps what was written
//! and is replaced by the column's on every read. The `undelivered` index of the sled engine
//! is a partial index here, kept by PostgreSQL: it has no entries to leave behind.
//!
//! A notification whose service row is gone (removed meanwhile by the purge) is not stored:
//! the foreign key would refuse it, and with it the whole batch of other services'
//! notifications it came in. Each insert takes a key-share lock on the service rows it finds,
//! so a service cannot go between the check and the commit.

use tokio_postgres::Row;

use super::{from_bigint, to_bigint};
use crate::domain::notification::Notification;
use crate::domain::time::Timestamp;
use crate::store::engine::Notifications;
use crate::store::postgres::{PgStore, Tx};
use crate::store::{stored, NewNotification, Pending, StoreError};

/// `count` new sequence numbers, ascending.
const NEXT_SEQS: &str =
    "SELECT nextval('notification_seq') FROM generate_series(1, $1::bigint) ORDER BY 1";

/// Stores the rows of a batch (arrays of service ids, seqs, comet users, values) whose service
/// is still stored, in seq order.
const INSERT_CUSTOMER: &str = "
    INSERT INTO notifications (service_id, seq, comet_user, value)
    SELECT new.service_id, new.seq, new.comet_user, new.value
    FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bytea[])
        AS new (service_id, seq, comet_user, value)
    JOIN services ON services.id = new.service_id
    ORDER BY new.seq
    FOR KEY SHARE OF services";

/// Stores one agent-bound notification if its service is still stored.
const INSERT_AGENT: &str = "
    INSERT INTO agent_notifications (service_id, seq, value)
    SELECT id, $2, $3 FROM services WHERE id = $1 FOR KEY SHARE";

/// Marks one customer notification delivered; changes no row if it already was or is gone.
const MARK_DELIVERED: &str = "
    UPDATE notifications SET delivered = true
    WHERE service_id = $1 AND seq = $2 AND NOT delivered";

/// Marks a service's undelivered customer notifications delivered and returns them. The rows
/// are locked in seq order (so two takers cannot deadlock), and a row another caller marked
/// meanwhile fails the re-check of `NOT delivered` once its lock is released: it is left out.
const TAKE_UNDELIVERED: &str = "
    WITH taken AS (
        SELECT seq FROM notifications
        WHERE service_id = $1 AND NOT delivered
        ORDER BY seq
        FOR UPDATE
    )
    UPDATE notifications SET delivered = true
    FROM taken
    WHERE notifications.service_id = $1 AND notifications.seq = taken.seq
    RETURNING notifications.seq, notifications.value";

/// [`TAKE_UNDELIVERED`] for agent-bound notifications.
const TAKE_AGENT: &str = "
    WITH taken AS (
        SELECT seq FROM agent_notifications
        WHERE service_id = $1 AND NOT retrieved
        ORDER BY seq
        FOR UPDATE
    )
    UPDATE agent_notifications SET retrieved = true
    FROM taken
    WHERE agent_notifications.service_id = $1 AND agent_notifications.seq = taken.seq
    RETURNING agent_notifications.seq, agent_notifications.value";

impl Notifications for PgStore {
    fn add_notification(
        &self,
        service_id: &str,
        comet_user: Option<&str>,
        tag: String,
        message: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Pending<Notification>, StoreError> {
        let one = NewNotification {
            service_id: service_id.to_string(),
            comet_user: comet_user.map(str::to_string),
            tag,
            message: message.to_string(),
            created_at: now,
        };
        let mut stored = self.transaction(|tx| insert_customer(tx, std::slice::from_ref(&one)))?;
        let notification = stored.pop().ok_or_else(|| {
            StoreError::Engine("storing a notification numbered none".to_string())
        })?;
        Ok(self.pending(notification))
    }

    fn add_notifications(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Pending<Vec<Notification>>, StoreError> {
        if batch.is_empty() {
            return Ok(self.pending(Vec::new()));
        }
        self.write(|tx| insert_customer(tx, &batch))
    }

    fn notifications(&self, service_id: &str) -> Result<Vec<Notification>, StoreError> {
        self.read(|sql| {
            let rows = sql.query(
                "SELECT delivered, value FROM notifications WHERE service_id = $1 ORDER BY seq",
                &[&service_id],
            )?;
            rows.iter()
                .map(|row| decode(row.try_get(1)?, row.try_get(0)?, service_id))
                .collect()
        })
    }

    fn is_undelivered(&self, service_id: &str, seq: u64) -> Result<bool, StoreError> {
        // A seq beyond a bigint was never stored.
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        self.read(|sql| {
            let row = sql.query_opt(
                "SELECT delivered FROM notifications WHERE service_id = $1 AND seq = $2",
                &[&service_id, &seq],
            )?;
            match row {
                Some(row) => Ok(!row.try_get::<_, bool>(0)?),
                None => Ok(false),
            }
        })
    }

    // `comet_user` is not needed: the partial index drops a row the moment it is delivered.
    fn mark_delivered(
        &self,
        service_id: &str,
        _comet_user: Option<&str>,
        seq: u64,
    ) -> Result<Pending<bool>, StoreError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(self.pending(false));
        };
        self.write(|tx| Ok(tx.execute(MARK_DELIVERED, &[&service_id, &seq])? == 1))
    }

    // One transaction for all: one commit (and lease check) instead of one per notification.
    fn mark_all_delivered(
        &self,
        _comet_user: Option<&str>,
        notifications: &[(&str, u64)],
    ) -> Result<Option<Pending<usize>>, StoreError> {
        if notifications.is_empty() {
            return Ok(None);
        }
        let marked = self.write(|tx| {
            let mut delivered = 0;
            for &(service_id, seq) in notifications {
                let Ok(seq) = i64::try_from(seq) else {
                    continue;
                };
                delivered += usize::from(tx.execute(MARK_DELIVERED, &[&service_id, &seq])? == 1);
            }
            Ok(delivered)
        })?;
        Ok(Some(marked))
    }

    fn take_undelivered(
        &self,
        service_id: &str,
        _comet_user: Option<&str>,
    ) -> Result<Pending<Vec<Notification>>, StoreError> {
        self.write(|tx| taken(tx.query(TAKE_UNDELIVERED, &[&service_id])?, service_id))
    }

    fn undelivered_for_user(
        &self,
        gms_user: &str,
        limit: usize,
    ) -> Result<Vec<(String, Notification)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|sql| {
            let rows = sql.query(
                "SELECT service_id, value FROM notifications
                 WHERE comet_user = $1 AND NOT delivered
                 ORDER BY seq LIMIT $2",
                &[&gms_user, &limit],
            )?;
            rows.iter()
                .map(|row| {
                    let service_id: String = row.try_get(0)?;
                    let notification = decode(row.try_get(1)?, false, &service_id)?;
                    Ok((service_id, notification))
                })
                .collect()
        })
    }

    fn add_agent_notification(
        &self,
        service_id: &str,
        tag: String,
        message: String,
        now: Timestamp,
    ) -> Result<Pending<Notification>, StoreError> {
        self.write(|tx| {
            let seq = next_seqs(tx, 1)?
                .pop()
                .ok_or_else(|| StoreError::Engine("notification_seq gave nothing".to_string()))?;
            let notification = Notification {
                seq,
                tag: tag.clone(),
                message: message.clone(),
                created_at: now,
                delivered: false,
            };
            let value = stored::notification::encode(&notification)?;
            tx.execute(
                INSERT_AGENT,
                &[&service_id, &to_bigint(seq, "notification seq")?, &value],
            )?;
            Ok(notification)
        })
    }

    fn agent_notifications(&self, service_id: &str) -> Result<Vec<Notification>, StoreError> {
        self.read(|sql| {
            let rows = sql.query(
                "SELECT retrieved, value FROM agent_notifications
                 WHERE service_id = $1 ORDER BY seq",
                &[&service_id],
            )?;
            rows.iter()
                .map(|row| decode(row.try_get(1)?, row.try_get(0)?, service_id))
                .collect()
        })
    }

    fn take_agent_notifications(
        &self,
        service_id: &str,
    ) -> Result<Pending<Vec<Notification>>, StoreError> {
        self.write(|tx| taken(tx.query(TAKE_AGENT, &[&service_id])?, service_id))
    }
}

/// Numbers and stores `batch` inside `tx`; returns it numbered, in the order given. Run
/// again after a transient abort, it takes new numbers: `notification_seq` gives no number
/// twice, rolled back or not, so an abort leaves a gap and never a duplicate.
fn insert_customer(
    tx: &Tx<'_, '_>,
    batch: &[NewNotification],
) -> Result<Vec<Notification>, StoreError> {
    let seqs = next_seqs(tx, batch.len())?;
    let mut service_ids = Vec::with_capacity(batch.len());
    let mut seq_column = Vec::with_capacity(batch.len());
    let mut comet_users = Vec::with_capacity(batch.len());
    let mut values = Vec::with_capacity(batch.len());
    let mut stored = Vec::with_capacity(batch.len());
    for (new, seq) in batch.iter().zip(seqs) {
        let notification = Notification {
            seq,
            tag: new.tag.clone(),
            message: new.message.clone(),
            created_at: new.created_at,
            delivered: false,
        };
        values.push(stored::notification::encode(&notification)?);
        seq_column.push(to_bigint(seq, "notification seq")?);
        service_ids.push(new.service_id.as_str());
        comet_users.push(new.comet_user.as_deref());
        stored.push(notification);
    }
    tx.execute(
        INSERT_CUSTOMER,
        &[&service_ids, &seq_column, &comet_users, &values],
    )?;
    Ok(stored)
}

/// `count` new notification sequence numbers, ascending.
fn next_seqs(tx: &Tx<'_, '_>, count: usize) -> Result<Vec<u64>, StoreError> {
    let count = to_bigint(count as u64, "notification count")?;
    tx.query(NEXT_SEQS, &[&count])?
        .iter()
        .map(|row| from_bigint(row.try_get(0)?, "notification_seq"))
        .collect()
}

/// The notifications a take marked, oldest first (`RETURNING` promises no order).
fn taken(rows: Vec<Row>, service_id: &str) -> Result<Vec<Notification>, StoreError> {
    let mut taken = rows
        .iter()
        .map(|row| decode(row.try_get(1)?, true, service_id))
        .collect::<Result<Vec<_>, StoreError>>()?;
    taken.sort_by_key(|notification| notification.seq);
    Ok(taken)
}

/// A stored notification of `service_id`, with `delivered` from its row.
fn decode(value: &[u8], delivered: bool, service_id: &str) -> Result<Notification, StoreError> {
    let notification =
        stored::notification::decode(value, &format!("notification of service {service_id}"))?;
    Ok(Notification {
        delivered,
        ..notification
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{count, remove_service, services, store, two_nodes};
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1);

    fn tags(notifications: &[Notification]) -> Vec<&str> {
        notifications.iter().map(|n| n.tag.as_str()).collect()
    }

    fn add(store: &PgStore, id: &str, user: Option<&str>, tag: &str) -> Notification {
        store
            .add_notification(id, user, tag.into(), &json!({}), NOW)
            .unwrap()
            .without_waiting()
    }

    fn new(service: &str, user: Option<&str>, tag: &str) -> NewNotification {
        NewNotification {
            service_id: service.into(),
            comet_user: user.map(str::to_string),
            tag: tag.into(),
            message: "{}".into(),
            created_at: NOW,
        }
    }

    #[test]
    fn a_users_undelivered_comet_notifications_are_listed_in_order_across_services() {
        let store = store();
        services(&store, &["s1", "s2", "s3"]);
        let first = add(&store, "s1", Some("alice"), "a");
        add(&store, "s2", Some("alice"), "b");
        add(&store, "s1", Some("alice"), "c");
        add(&store, "s1", None, "not comet");
        add(&store, "s3", Some("bob"), "bob's");

        store
            .mark_delivered("s1", Some("alice"), first.seq)
            .unwrap()
            .without_waiting();
        let listed = store.undelivered_for_user("alice", 100).unwrap();

        let listed: Vec<(&str, &str)> = listed
            .iter()
            .map(|(id, n)| (id.as_str(), n.tag.as_str()))
            .collect();
        assert_eq!(
            listed,
            [("s2", "b"), ("s1", "c")],
            "oldest first, delivered and non-comet ones left out"
        );
        assert_eq!(store.undelivered_for_user("alice", 1).unwrap().len(), 1);
        assert!(store.undelivered_for_user("alice", 0).unwrap().is_empty());
    }

    #[test]
    fn delivering_twice_counts_once_and_a_poll_takes_the_rest_once() {
        let store = store();
        services(&store, &["s1"]);
        let n = store
            .add_notification("s1", Some("alice"), "t".into(), &json!({"x": 1}), NOW)
            .unwrap()
            .without_waiting();
        add(&store, "s1", Some("alice"), "u");
        assert!(store.is_undelivered("s1", n.seq).unwrap());

        assert!(store
            .mark_delivered("s1", Some("alice"), n.seq)
            .unwrap()
            .without_waiting());
        assert!(!store
            .mark_delivered("s1", Some("alice"), n.seq)
            .unwrap()
            .without_waiting());
        assert!(!store.is_undelivered("s1", n.seq).unwrap());
        let polled = store
            .take_undelivered("s1", Some("alice"))
            .unwrap()
            .without_waiting();

        assert_eq!(tags(&polled), ["u"], "the pushed one is not polled again");
        assert!(polled.iter().all(|n| n.delivered), "returned as delivered");
        assert!(store
            .take_undelivered("s1", Some("alice"))
            .unwrap()
            .without_waiting()
            .is_empty());
        assert!(store.undelivered_for_user("alice", 10).unwrap().is_empty());
        let stored = store.notifications("s1").unwrap();
        assert_eq!(tags(&stored), ["t", "u"], "kept, oldest first");
        assert_eq!(stored[0].message, r#"{"x":1}"#);
        assert!(stored.iter().all(|n| n.delivered), "read back as delivered");
    }

    #[test]
    fn marking_several_at_once_counts_what_this_call_delivered() {
        let store = store();
        services(&store, &["s1", "s2"]);
        let a = add(&store, "s1", Some("alice"), "a").seq;
        let b = add(&store, "s2", Some("alice"), "b").seq;
        let c = add(&store, "s1", Some("alice"), "c").seq;
        store
            .mark_delivered("s2", Some("alice"), b)
            .unwrap()
            .without_waiting();

        let marked = store
            .mark_all_delivered(Some("alice"), &[("s1", a), ("s2", b), ("s9", 1)])
            .unwrap()
            .expect("a write")
            .without_waiting();

        assert_eq!(marked, 1, "b was delivered already; s9 is not stored");
        let left: Vec<u64> = store
            .undelivered_for_user("alice", 10)
            .unwrap()
            .into_iter()
            .map(|(_, n)| n.seq)
            .collect();
        assert_eq!(left, [c]);
        assert!(store
            .mark_all_delivered(Some("alice"), &[])
            .unwrap()
            .is_none());
    }

    #[test]
    fn marking_what_is_not_stored_delivers_nothing() {
        let store = store();
        services(&store, &["s1"]);
        let n = add(&store, "s1", Some("alice"), "t");

        assert!(!store
            .mark_delivered("s2", Some("alice"), n.seq)
            .unwrap()
            .without_waiting());
        assert!(!store
            .mark_delivered("s1", Some("alice"), u64::MAX)
            .unwrap()
            .without_waiting());
        assert!(!store.is_undelivered("s1", n.seq + 1).unwrap());
        assert!(!store.is_undelivered("s1", u64::MAX).unwrap());
        assert!(store.is_undelivered("s1", n.seq).unwrap());
    }

    #[test]
    fn a_batch_is_stored_in_order_and_indexed_like_single_notifications() {
        let store = store();
        services(&store, &["s1", "s2"]);
        let stored = store
            .add_notifications(vec![
                new("s1", Some("alice"), "a"),
                new("s2", None, "b"),
                new("s1", Some("alice"), "c"),
            ])
            .unwrap()
            .without_waiting();

        assert_eq!(tags(&stored), ["a", "b", "c"]);
        assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(tags(&store.notifications("s1").unwrap()), ["a", "c"]);
        assert_eq!(tags(&store.notifications("s2").unwrap()), ["b"]);
        let indexed: Vec<String> = store
            .undelivered_for_user("alice", 10)
            .unwrap()
            .into_iter()
            .map(|(_, n)| n.tag)
            .collect();
        assert_eq!(indexed, ["a", "c"], "only the comet ones");
        assert!(store
            .add_notifications(Vec::new())
            .unwrap()
            .without_waiting()
            .is_empty());
    }

    #[test]
    fn seqs_increase_across_services_kinds_and_nodes_from_zero() {
        let (one, other) = two_nodes();
        services(&one, &["s1", "s2"]);

        let seqs = [
            add(&one, "s1", None, "a").seq,
            one.add_agent_notification("s2", "b".into(), "{}".into(), NOW)
                .unwrap()
                .without_waiting()
                .seq,
            add(&other, "s2", Some("alice"), "c").seq,
            other
                .add_notifications(vec![new("s1", None, "d"), new("s2", None, "e")])
                .unwrap()
                .without_waiting()[1]
                .seq,
        ];

        assert_eq!(seqs[0], 0, "numbered from 0, as sled's generate_id");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }

    #[test]
    fn a_notification_of_a_service_gone_is_not_stored_and_does_not_fail_its_batch() {
        let store = store();
        services(&store, &["s1"]);

        let stored = store
            .add_notifications(vec![new("gone", Some("alice"), "a"), new("s1", None, "b")])
            .unwrap()
            .without_waiting();
        let single = add(&store, "gone", Some("alice"), "c");
        let agent = store
            .add_agent_notification("gone", "d".into(), "{}".into(), NOW)
            .unwrap()
            .without_waiting();

        assert_eq!(tags(&stored), ["a", "b"], "answered as given");
        assert_eq!(tags(&store.notifications("s1").unwrap()), ["b"]);
        assert!(store.notifications("gone").unwrap().is_empty());
        assert!(store.agent_notifications("gone").unwrap().is_empty());
        assert!(!store.is_undelivered("gone", single.seq).unwrap());
        assert!(!store
            .mark_delivered("gone", Some("alice"), agent.seq)
            .unwrap()
            .without_waiting());
        assert!(store.undelivered_for_user("alice", 10).unwrap().is_empty());
    }

    #[test]
    fn of_concurrent_marks_from_two_nodes_exactly_one_delivers_each() {
        let (one, other) = two_nodes();
        services(&one, &["s1"]);
        let seqs: Vec<u64> = (0..50)
            .map(|i| add(&one, "s1", Some("alice"), &i.to_string()).seq)
            .collect();

        let delivered: usize = std::thread::scope(|scope| {
            let markers: Vec<_> = [&one, &other, &one, &other]
                .into_iter()
                .map(|store| {
                    let seqs = &seqs;
                    scope.spawn(move || {
                        seqs.iter()
                            .filter(|seq| {
                                store
                                    .mark_delivered("s1", Some("alice"), **seq)
                                    .unwrap()
                                    .without_waiting()
                            })
                            .count()
                    })
                })
                .collect();
            markers.into_iter().map(|m| m.join().unwrap()).sum()
        });

        assert_eq!(delivered, seqs.len(), "each one delivered once");
        assert!(one.notifications("s1").unwrap().iter().all(|n| n.delivered));
        assert!(other.undelivered_for_user("alice", 100).unwrap().is_empty());
    }

    #[test]
    fn of_concurrent_polls_from_two_nodes_each_notification_goes_to_one() {
        let (one, other) = two_nodes();
        services(&one, &["s1"]);
        let rounds = 20;
        let per_round = 5;

        let mut polled: Vec<u64> = Vec::new();
        for round in 0..rounds {
            for i in 0..per_round {
                add(&one, "s1", Some("alice"), &format!("{round}.{i}"));
            }
            // Both polls start together, so that they race for the same rows.
            let barrier = std::sync::Barrier::new(2);
            let poll = |store: &PgStore| {
                barrier.wait();
                store
                    .take_undelivered("s1", Some("alice"))
                    .unwrap()
                    .without_waiting()
            };
            let (a, b) = std::thread::scope(|scope| {
                let a = scope.spawn(|| poll(&one));
                let b = scope.spawn(|| poll(&other));
                (a.join().unwrap(), b.join().unwrap())
            });
            for taken in [&a, &b] {
                assert!(
                    taken.windows(2).all(|w| w[0].seq < w[1].seq),
                    "round {round}: oldest first"
                );
            }
            assert_eq!(a.len() + b.len(), per_round, "round {round}: all taken");
            polled.extend(a.iter().chain(&b).map(|n| n.seq));
        }

        let total = polled.len();
        polled.sort_unstable();
        polled.dedup();
        assert_eq!(polled.len(), total, "no notification polled twice");
        assert_eq!(total, rounds * per_round);
    }

    #[test]
    fn agent_notifications_are_taken_once_in_order() {
        let store = store();
        services(&store, &["s1", "s10"]);
        for tag in ["a", "b"] {
            store
                .add_agent_notification("s1", tag.into(), "{\"k\":1}".into(), NOW)
                .unwrap()
                .without_waiting();
        }
        store
            .add_agent_notification("s10", "other".into(), "{}".into(), NOW)
            .unwrap()
            .without_waiting();

        let taken = store
            .take_agent_notifications("s1")
            .unwrap()
            .without_waiting();
        assert_eq!(tags(&taken), ["a", "b"]);
        assert_eq!(taken[0].message, "{\"k\":1}", "kept as given");
        assert!(store
            .take_agent_notifications("s1")
            .unwrap()
            .without_waiting()
            .is_empty());
        let kept = store.agent_notifications("s1").unwrap();
        assert_eq!(tags(&kept), ["a", "b"], "kept for the admin view");
        assert!(kept.iter().all(|n| n.delivered), "marked retrieved");
        assert!(
            store.notifications("s1").unwrap().is_empty(),
            "apart from customer ones"
        );
        assert_eq!(
            tags(
                &store
                    .take_agent_notifications("s10")
                    .unwrap()
                    .without_waiting()
            ),
            ["other"]
        );
    }

    #[test]
    fn removing_a_service_removes_its_notifications_both_ways() {
        let store = store();
        services(&store, &["s1", "s2"]);
        for id in ["s1", "s2"] {
            add(&store, id, Some("alice"), &format!("{id}.c"));
            store
                .add_agent_notification(id, format!("{id}.a"), "{}".into(), NOW)
                .unwrap()
                .without_waiting();
        }

        remove_service(&store, "s1");

        assert!(store.notifications("s1").unwrap().is_empty());
        assert!(store.agent_notifications("s1").unwrap().is_empty());
        let left = store.undelivered_for_user("alice", 10).unwrap();
        assert_eq!(
            left.len(),
            1,
            "only the live service's notification is left"
        );
        assert_eq!(left[0].0, "s2");
        assert_eq!(store.agent_notifications("s2").unwrap().len(), 1);
        assert_eq!(
            count(&store, "SELECT count(*) FROM notifications"),
            1,
            "no row left behind"
        );
    }
}
