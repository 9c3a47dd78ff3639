//! The receive side: QoS 2 messages awaiting PUBREL, and the acknowledgements owed, in the
//! order their PUBLISH packets arrived.

use std::collections::VecDeque;

use haka_codec::PacketId;

use crate::outgoing::ByPacketId;

/// Where an inbound QoS 2 message is, by its packet identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qos2 {
    /// Handed to the application, which has not acknowledged it yet (manual acknowledgement).
    /// Kept in memory only: if the process ends first, the broker's redelivery is handed
    /// over again, since the application never finished with it.
    Delivered,
    /// Stored and acknowledged (PUBREC queued or sent): a redelivery is acknowledged again,
    /// never handed over again [MQTT-4.3.3-2].
    Received,
}

/// An acknowledgement owed to the broker for a PUBLISH it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckSlot {
    pub(crate) packet_id: PacketId,
    /// PUBREC for QoS 2, PUBACK for QoS 1.
    pub(crate) exactly_once: bool,
    /// Whether it may be sent; with manual acknowledgement, once the application acked.
    pub(crate) ready: bool,
}

/// The receive path's state.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    pub(crate) qos2: ByPacketId<Qos2>,
    /// The acknowledgements of this connection in the order the PUBLISH packets arrived;
    /// only the ready ones at the front may be sent [MQTT-4.6.0-2], [MQTT-4.6.0-3].
    pub(crate) acks: VecDeque<AckSlot>,
}

impl Inbound {
    /// Marks ready the first waiting acknowledgement of kind `exactly_once` for `packet_id`,
    /// or every one of them with `all`; whether one was found.
    pub(crate) fn ready(&mut self, packet_id: PacketId, exactly_once: bool, all: bool) -> bool {
        let mut found = false;
        for slot in &mut self.acks {
            if slot.packet_id == packet_id && slot.exactly_once == exactly_once && !slot.ready {
                slot.ready = true;
                found = true;
                if !all {
                    break;
                }
            }
        }
        found
    }
}
