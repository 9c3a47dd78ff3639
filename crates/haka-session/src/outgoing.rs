//! The outgoing side of the queue: messages waiting for the in-flight window, and messages in
//! flight by packet identifier.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasherDefault, Hasher},
};

use haka_codec::{PacketId, Publish};

use crate::MessageId;

/// A message accepted and not yet written: QoS 0 messages, and QoS 1 and 2 messages outside
/// the in-flight window.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) id: MessageId,
    /// The PUBLISH as it will be written; its packet identifier is a placeholder until
    /// `admitted`.
    pub(crate) publish: Publish,
    /// Whether it has been given its packet identifier (always true for QoS 0, which needs
    /// none).
    pub(crate) admitted: bool,
}

/// A QoS 1 or 2 message with a packet identifier, until its PUBACK or PUBCOMP.
#[derive(Debug)]
pub(crate) struct Inflight {
    pub(crate) id: MessageId,
    /// The PUBLISH with its packet identifier; DUP is set when it is resent.
    pub(crate) publish: Publish,
    /// Whether PUBREC came: the message is then resent as PUBREL, never as PUBLISH.
    pub(crate) released: bool,
}

/// A hasher for packet identifiers: Fibonacci hashing spreads the small keys over the whole
/// word, which the hash table's control bytes need, at the cost of one multiplication.
#[derive(Default)]
pub(crate) struct PacketIdHasher(u64);

impl Hasher for PacketIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u16(&mut self, value: u16) {
        self.0 = u64::from(value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by packet identifier.
pub(crate) type ByPacketId<V> = HashMap<PacketId, V, BuildHasherDefault<PacketIdHasher>>;

/// Messages accepted and not yet completed, with their totals for the queue limits.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) inflight: ByPacketId<Inflight>,
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
}

impl Outgoing {
    /// What a message counts against the byte limit.
    pub(crate) fn size(publish: &Publish) -> usize {
        publish.topic.as_str().len() + publish.payload.len()
    }

    pub(crate) fn count(&mut self, publish: &Publish) {
        self.messages += 1;
        self.bytes += Self::size(publish);
    }

    pub(crate) fn uncount(&mut self, publish: &Publish) {
        self.messages -= 1;
        self.bytes -= Self::size(publish);
    }

    /// Packet identifiers of the messages in flight, in the order the messages were
    /// accepted: the order they are resent in [MQTT-4.6.0-1].
    pub(crate) fn inflight_in_order(&self) -> Vec<PacketId> {
        let mut ids: Vec<(MessageId, PacketId)> = self
            .inflight
            .iter()
            .map(|(packet_id, message)| (message.id, *packet_id))
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, packet_id)| packet_id).collect()
    }
}
