//! The unit of work's receipt: a change the store has applied but not yet made durable.
//!
//! Every write of the store returns a [`Pending`] instead of its result. The result (the new
//! record, whether something was removed, the notification's sequence number) is reached only
//! through [`Pending::durable`], which waits for the group commit that covers the write
//! ([`super::commit`]). So an answer built from a write's result cannot be sent before the write
//! is durable, and a write whose receipt is dropped is a compiler warning (`#[must_use]`), an
//! error under the project's `clippy -D warnings`.
//!
//! Work that must not wait (a delivery mark, a background purge, a seed at start-up that is
//! flushed before serving) says so by name with [`Pending::without_waiting`]: its change becomes
//! durable with the next group commit or the shutdown's flush, and losing it in a crash only
//! repeats work (a push sent twice, a purge done again).

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::StoreError;

/// What makes a write durable: the engine's commit, waited for by the write's ticket.
pub(super) trait Commit: std::fmt::Debug + Send + Sync {
    /// Waits until the write holding `ticket` (and every write before it) is durable. Reached
    /// only through [`Pending::durable`], so that no write can be acknowledged without its
    /// wait.
    ///
    /// # Errors
    /// The flush failed; the caller must not acknowledge the change.
    fn wait_durable(&self, ticket: u64) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// A change applied to the store, durable once [`Pending::durable`] returns.
#[must_use = "a write is acknowledged only after `.durable().await`; say `.without_waiting()` where no acknowledgement depends on it"]
#[derive(Debug)]
pub struct Pending<T> {
    value: T,
    /// The write's place in the group commit's order ([`super::commit::Committer::ticket`]).
    ticket: u64,
    commit: Arc<dyn Commit>,
}

impl<T> Pending<T> {
    pub(super) fn new(commit: Arc<dyn Commit>, ticket: u64, value: T) -> Self {
        Self {
            value,
            ticket,
            commit,
        }
    }

    /// Waits for the group commit that makes this write (and every write before it) durable,
    /// then gives the write's result. A write that a finished flush already covers does not
    /// wait: the receipts of one unit of work can be waited for one after the other at the
    /// cost of one flush.
    ///
    /// # Errors
    /// The flush failed or the store is shutting down: the change must not be acknowledged.
    pub async fn durable(self) -> Result<T, StoreError> {
        self.commit.wait_durable(self.ticket).await?;
        Ok(self.value)
    }

    /// The write's result without waiting for durability, for work no acknowledgement depends
    /// on (see the module's documentation).
    pub fn without_waiting(self) -> T {
        self.value
    }

    /// The write's result, to decide the further writes of the same unit of work from it (the
    /// notifications a cancellation implies). Answer from [`Pending::durable`]'s value.
    pub fn written(&self) -> &T {
        &self.value
    }

    /// One receipt for two writes: a single wait covers both.
    pub fn and<U>(self, other: Pending<U>) -> Pending<(T, U)> {
        Pending {
            value: (self.value, other.value),
            ticket: self.ticket.max(other.ticket),
            commit: self.commit,
        }
    }

    /// Changes the result the receipt gives, keeping the wait.
    pub fn map<U>(self, change: impl FnOnce(T) -> U) -> Pending<U> {
        Pending {
            value: change(self.value),
            ticket: self.ticket,
            commit: self.commit,
        }
    }
}

impl<T> Pending<Option<T>> {
    /// `None` when the write found nothing to change (nothing was written, so there is nothing
    /// to wait for: a 404 is not delayed by a flush), else the receipt of the change.
    pub fn transpose(self) -> Option<Pending<T>> {
        let (commit, ticket) = (self.commit, self.ticket);
        self.value.map(|value| Pending {
            value,
            ticket,
            commit,
        })
    }
}

impl Pending<bool> {
    /// `None` when the write changed nothing (`false`: nothing to wait for), else the receipt.
    pub fn if_changed(self) -> Option<Pending<()>> {
        self.value.then_some(Pending {
            value: (),
            ticket: self.ticket,
            commit: self.commit,
        })
    }
}

/// The receipts of a batch of writes whose later writes follow from earlier ones (the router's
/// batch: a reservation, then the notification it implies): each write's result is taken at
/// once to go on with, and the batch's answers and pushes wait for [`Receipts::durable`],
/// which covers every write added.
#[must_use = "the batch's writes are acknowledged only after `.durable().await`"]
#[derive(Debug, Default)]
pub struct Receipts {
    /// The receipt latest in the commit order: its flush covers the others.
    last: Option<Pending<()>>,
}

impl Receipts {
    /// Keeps `written`'s receipt in the batch and gives its result to go on with.
    pub fn add<T>(&mut self, written: Pending<T>) -> T {
        let Pending {
            value,
            ticket,
            commit,
        } = written;
        if self.last.as_ref().is_none_or(|last| last.ticket < ticket) {
            self.last = Some(Pending {
                value: (),
                ticket,
                commit,
            });
        }
        value
    }

    /// Whether no write was added.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
    }

    /// Waits until every write added is durable (at once when none was).
    ///
    /// # Errors
    /// The flush failed or the store is shutting down.
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.last {
            Some(last) => last.durable().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Database;

    #[tokio::test]
    async fn a_receipt_gives_its_result_once_durable() {
        let store = crate::store::SledStore::open_temporary().unwrap();
        let pending = store.pending(7).and(store.pending("x"));
        assert_eq!(
            pending.map(|(n, s)| (n + 1, s)).durable().await.unwrap(),
            (8, "x")
        );
    }

    #[tokio::test]
    async fn nothing_changed_is_nothing_to_wait_for() {
        let store = crate::store::SledStore::open_temporary().unwrap();
        assert!(store.pending(None::<u8>).transpose().is_none());
        assert!(store.pending(false).if_changed().is_none());
        let some = store.pending(Some(3)).transpose().unwrap();
        assert_eq!(some.durable().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_batch_is_durable_when_its_last_write_is() {
        let store = crate::store::SledStore::open_temporary().unwrap();
        let mut receipts = Receipts::default();
        assert!(receipts.is_empty());
        let (first, second) = (store.pending("a"), store.pending("b"));
        assert_eq!(receipts.add(second), "b");
        assert_eq!(receipts.add(first), "a");
        assert_eq!(receipts.last.as_ref().map(|l| l.ticket), Some(2));
        receipts.durable().await.unwrap();
        Receipts::default().durable().await.unwrap();
    }

    #[tokio::test]
    async fn a_write_a_finished_flush_covers_waits_for_no_other() {
        let store = crate::store::SledStore::open_temporary().unwrap();
        let (first, second) = (store.pending(1), store.pending(2));
        first.durable().await.unwrap();
        let flushes = store.sync_counts().0;
        assert_eq!(second.durable().await.unwrap(), 2);
        assert_eq!(
            store.sync_counts().0,
            flushes,
            "the first flush covered the second write"
        );
        let third = store.pending(3);
        third.durable().await.unwrap();
        assert_eq!(
            store.sync_counts().0,
            flushes + 1,
            "a later write needs a flush of its own"
        );
    }
}
