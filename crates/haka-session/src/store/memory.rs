//! [`MemoryStore`]: the queue kept in memory only.

use haka_codec::PacketId;

use super::{state::State, Recovered, Store, StoreError, StoredMessage};
use crate::MessageId;

/// A store in memory: the queue survives reconnects, and a [`Session`](crate::Session)
/// rebuilt from it with [`Session::into_store`](crate::Session::into_store), but not the end of
/// the process.
///
/// Commits cost nothing. Payloads are shared with the session's queue, not copied.
///
/// ```
/// use haka_session::{Config, MemoryStore, Session};
/// use haka_codec::MqttString;
///
/// let session = Session::new(Config::new(MqttString::new("sensor-1")?), MemoryStore::new())?;
/// // ... drive it; later, a new session resumes the same queue:
/// let session = Session::new(session.config().clone(), session.into_store())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: State,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many outgoing messages it holds.
    pub fn len(&self) -> usize {
        self.state.messages.len()
    }

    /// Whether it holds no outgoing message.
    pub fn is_empty(&self) -> bool {
        self.state.messages.is_empty()
    }
}

impl Store for MemoryStore {
    fn recover(&mut self) -> Result<Recovered, StoreError> {
        Ok(self.state.recovered())
    }

    fn insert(&mut self, message: StoredMessage) -> Result<(), StoreError> {
        self.state.insert(message)
    }

    fn assign(&mut self, id: MessageId, packet_id: PacketId) -> Result<(), StoreError> {
        self.state.assign(id, packet_id)
    }

    fn release(&mut self, id: MessageId) -> Result<(), StoreError> {
        self.state.release(id)
    }

    fn remove(&mut self, id: MessageId) -> Result<(), StoreError> {
        self.state.remove(id)
    }

    fn insert_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.state.insert_inbound(packet_id);
        Ok(())
    }

    fn remove_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.state.remove_inbound(packet_id);
        Ok(())
    }

    fn clear_inbound(&mut self) -> Result<(), StoreError> {
        self.state.clear_inbound();
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
