//! [`FaultyStore`]: a store that fails when the test says so.

use std::{io, ops::Range};

use haka_codec::PacketId;
use haka_session::{
    store::{Recovered, StoredMessage},
    MessageId, Store, StoreError,
};

/// Which store operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// [`Store::commit`].
    Commit,
    /// [`Store::insert`].
    Insert,
    /// [`Store::assign`].
    Assign,
    /// [`Store::release`].
    Release,
    /// [`Store::remove`].
    Remove,
    /// [`Store::insert_inbound`].
    InsertInbound,
    /// [`Store::remove_inbound`].
    RemoveInbound,
    /// [`Store::clear_inbound`].
    ClearInbound,
}

/// Wraps a store and makes the operations in [`FaultyStore::failing`] fail with an I/O
/// error, leaving the inner store untouched by them.
#[derive(Debug, Default)]
pub struct FaultyStore<S> {
    inner: S,
    /// The operations that fail, until removed.
    pub failing: Vec<Fault>,
    /// How many operations failed.
    pub failures: usize,
    /// The calls to [`Store::commit`] that fail, numbered from 0 in the order they are made
    /// (whether they fail or not), as well as those [`FaultyStore::failing`] names: to fail a
    /// commit in the middle of a run, when the store is no longer in the test's hands.
    pub failing_commits: Range<u64>,
    /// How many times [`Store::commit`] was called.
    commits: u64,
}

impl<S: Store> FaultyStore<S> {
    /// `inner`, failing nothing yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            failing: Vec::new(),
            failures: 0,
            failing_commits: 0..0,
            commits: 0,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped store, for a session restarting on it.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn check(&mut self, op: Fault) -> Result<(), StoreError> {
        if self.failing.contains(&op) {
            self.failures += 1;
            return Err(StoreError::Io(io::Error::other(format!(
                "injected {op:?} failure"
            ))));
        }
        Ok(())
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn recover(&mut self) -> Result<Recovered, StoreError> {
        self.inner.recover()
    }

    fn insert(&mut self, message: StoredMessage) -> Result<(), StoreError> {
        self.check(Fault::Insert)?;
        self.inner.insert(message)
    }

    fn assign(&mut self, id: MessageId, packet_id: PacketId) -> Result<(), StoreError> {
        self.check(Fault::Assign)?;
        self.inner.assign(id, packet_id)
    }

    fn release(&mut self, id: MessageId) -> Result<(), StoreError> {
        self.check(Fault::Release)?;
        self.inner.release(id)
    }

    fn remove(&mut self, id: MessageId) -> Result<(), StoreError> {
        self.check(Fault::Remove)?;
        self.inner.remove(id)
    }

    fn insert_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.check(Fault::InsertInbound)?;
        self.inner.insert_inbound(packet_id)
    }

    fn remove_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.check(Fault::RemoveInbound)?;
        self.inner.remove_inbound(packet_id)
    }

    fn clear_inbound(&mut self) -> Result<(), StoreError> {
        self.check(Fault::ClearInbound)?;
        self.inner.clear_inbound()
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let number = self.commits;
        self.commits += 1;
        if self.failing_commits.contains(&number) {
            self.failures += 1;
            return Err(StoreError::Io(io::Error::other(format!(
                "injected failure of commit {number}"
            ))));
        }
        self.check(Fault::Commit)?;
        self.inner.commit()
    }
}
