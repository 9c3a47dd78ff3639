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
    Delivered {
        /// The serial of its [`AckToken`](crate::AckToken).
        serial: u64,
    },
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
    /// The serial of the message's [`AckToken`](crate::AckToken).
    pub(crate) serial: u64,
}

/// The receive path's state.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    pub(crate) qos2: ByPacketId<Qos2>,
    /// The acknowledgements of this connection in the order the PUBLISH packets arrived;
    /// only the ready ones at the front may be sent [MQTT-4.6.0-2], [MQTT-4.6.0-3].
    pub(crate) acks: VecDeque<AckSlot>,
    /// Numbers the received messages, so that an [`AckToken`](crate::AckToken) acknowledges
    /// its own message and never a later one under the same packet identifier.
    pub(crate) next_serial: u64,
}

impl Inbound {
    /// A serial for the next received message.
    pub(crate) fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// Marks ready the waiting QoS 1 acknowledgement with `serial`; whether there was one.
    pub(crate) fn ready_serial(&mut self, serial: u64) -> bool {
        match self
            .acks
            .iter_mut()
            .find(|slot| slot.serial == serial && !slot.ready)
        {
            Some(slot) => {
                slot.ready = true;
                true
            }
            None => false,
        }
    }

    /// Marks ready every waiting PUBREC for `packet_id`.
    pub(crate) fn ready_pubrecs(&mut self, packet_id: PacketId) {
        for slot in &mut self.acks {
            if slot.packet_id == packet_id && slot.exactly_once {
                slot.ready = true;
            }
        }
    }
}
