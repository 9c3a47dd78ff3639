//! [`EphemeralStore`]: no persistence at all.

use haka_codec::PacketId;

use super::{Recovered, Store, StoreError, StoredMessage};
use crate::MessageId;

/// A store that keeps nothing: for a session that lives as long as its process and is never
/// rebuilt from its store.
///
/// The session holds its queue in memory anyway, so messages still survive reconnects; what
/// this store gives up is only what [`MemoryStore`](super::MemoryStore) adds, resuming a new
/// `Session` value from the old one's store, and it costs nothing per message. The async
/// `haka` client uses it for its memory store.
#[derive(Debug, Clone, Copy, Default)]
pub struct EphemeralStore;

impl Store for EphemeralStore {
    fn recover(&mut self) -> Result<Recovered, StoreError> {
        Ok(Recovered::default())
    }

    fn insert(&mut self, _message: StoredMessage) -> Result<(), StoreError> {
        Ok(())
    }

    fn assign(&mut self, _id: MessageId, _packet_id: PacketId) -> Result<(), StoreError> {
        Ok(())
    }

    fn release(&mut self, _id: MessageId) -> Result<(), StoreError> {
        Ok(())
    }

    fn remove(&mut self, _id: MessageId) -> Result<(), StoreError> {
        Ok(())
    }

    fn insert_inbound(&mut self, _packet_id: PacketId) -> Result<(), StoreError> {
        Ok(())
    }

    fn remove_inbound(&mut self, _packet_id: PacketId) -> Result<(), StoreError> {
        Ok(())
    }

    fn clear_inbound(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
