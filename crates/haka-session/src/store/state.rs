//! The stored state itself, as both stores keep it in memory: the live messages and inbound
//! identifiers, with the rules of valid changes.

use std::collections::BTreeSet;

use haka_codec::PacketId;

use super::{queue::Queue, Recovered, Stage, StoreError, StoredMessage};
use crate::MessageId;

/// The live content of a store. Payloads are reference-counted [`bytes::Bytes`] shared with
/// the session's queue, so holding them here costs no copy.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub(crate) messages: Queue,
    pub(crate) inbound: BTreeSet<PacketId>,
    pub(crate) next_message_id: MessageId,
}

impl State {
    pub(crate) fn recovered(&self) -> Recovered {
        Recovered {
            messages: self.messages.values().cloned().collect(),
            inbound: self.inbound.iter().copied().collect(),
            next_message_id: self.next_message_id,
        }
    }

    pub(crate) fn insert(&mut self, message: StoredMessage) -> Result<(), StoreError> {
        self.check_insert(&message)?;
        self.insert_checked(message);
        Ok(())
    }

    /// Inserts `message`, which [`State::check_insert`] accepted.
    pub(crate) fn insert_checked(&mut self, message: StoredMessage) {
        debug_assert!(self.check_insert(&message).is_ok());
        self.next_message_id = message.id.next();
        self.messages.insert(message);
    }

    /// Why `message` may not be inserted, if it may not.
    pub(crate) fn check_insert(&self, message: &StoredMessage) -> Result<(), StoreError> {
        if message.qos == haka_codec::QoS::AtMostOnce {
            return Err(StoreError::Invalid("QoS 0 messages are not stored"));
        }
        if message.qos == haka_codec::QoS::AtLeastOnce
            && matches!(message.stage, Stage::Released(_))
        {
            return Err(StoreError::Invalid("only QoS 2 messages are released"));
        }
        if message.id < self.next_message_id {
            return Err(StoreError::Invalid("message identities must increase"));
        }
        Ok(())
    }

    pub(crate) fn assign(&mut self, id: MessageId, packet_id: PacketId) -> Result<(), StoreError> {
        let message = self
            .messages
            .get_mut(id)
            .ok_or(StoreError::Invalid("assign: no such message"))?;
        if message.stage != Stage::Queued {
            return Err(StoreError::Invalid(
                "assign: message already has a packet id",
            ));
        }
        message.stage = Stage::Published(packet_id);
        Ok(())
    }

    pub(crate) fn release(&mut self, id: MessageId) -> Result<(), StoreError> {
        let message = self
            .messages
            .get_mut(id)
            .ok_or(StoreError::Invalid("release: no such message"))?;
        match message.stage {
            Stage::Published(packet_id) if message.qos == haka_codec::QoS::ExactlyOnce => {
                message.stage = Stage::Released(packet_id);
                Ok(())
            }
            _ => Err(StoreError::Invalid(
                "release: message is not a published QoS 2 message",
            )),
        }
    }

    pub(crate) fn remove(&mut self, id: MessageId) -> Result<(), StoreError> {
        self.take(id).map(drop)
    }

    /// Removes message `id` and returns it.
    pub(crate) fn take(&mut self, id: MessageId) -> Result<StoredMessage, StoreError> {
        self.messages
            .remove(id)
            .ok_or(StoreError::Invalid("remove: no such message"))
    }

    pub(crate) fn insert_inbound(&mut self, packet_id: PacketId) {
        self.inbound.insert(packet_id);
    }

    pub(crate) fn remove_inbound(&mut self, packet_id: PacketId) {
        self.inbound.remove(&packet_id);
    }

    pub(crate) fn clear_inbound(&mut self) {
        self.inbound.clear();
    }
}
