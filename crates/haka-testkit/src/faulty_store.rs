//! [`FaultyStore`]: a store that fails when the test says so.

use std::io;

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
}

impl<S: Store> FaultyStore<S> {
    /// `inner`, failing nothing yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            failing: Vec::new(),
            failures: 0,
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

    fn insert(&mut self, message: &StoredMessage) -> Result<(), StoreError> {
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
        self.check(Fault::Commit)?;
        self.inner.commit()
    }
}
