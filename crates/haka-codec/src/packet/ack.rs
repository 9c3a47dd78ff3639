//! The acknowledgements that carry nothing but a packet identifier: PUBACK (3.4), PUBREC
//! (3.5), PUBREL (3.6), PUBCOMP (3.7) and UNSUBACK (3.11).
//!
//! Their remaining length is exactly 2; anything after the identifier is
//! [`DecodeError::TrailingBytes`](crate::DecodeError::TrailingBytes). MQTT 5.0 adds a reason
//! code and properties, which is why each is a `#[non_exhaustive]` struct.

use bytes::BufMut;

use crate::{
    primitive::{packet_id, parse_body},
    DecodeError, PacketId, PacketType,
};

macro_rules! id_only_packet {
    ($(#[$doc:meta])* $name:ident, $ty:ident, $flags:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[non_exhaustive]
        pub struct $name {
            /// The identifier of the packet this one acknowledges.
            pub packet_id: PacketId,
        }

        impl $name {
            /// The packet acknowledging `packet_id`.
            pub const fn new(packet_id: PacketId) -> Self {
                Self { packet_id }
            }

            #[inline(always)]
            pub(crate) fn parse(body: &[u8]) -> Result<Self, DecodeError> {
                // The body of every valid one is two bytes: read them at once.
                if let Ok(&id) = <&[u8; 2]>::try_from(body) {
                    return match PacketId::new(u16::from_be_bytes(id)) {
                        Ok(packet_id) => Ok(Self { packet_id }),
                        Err(e) => Err(e.into()),
                    };
                }
                parse_body(PacketType::$ty, body, |i| {
                    let (i, packet_id) = packet_id(i)?;
                    Ok((i, Self { packet_id }))
                })
            }

            pub(crate) const fn body_len(&self) -> usize {
                2
            }

            pub(crate) const fn first_byte(&self) -> u8 {
                ((PacketType::$ty as u8) << 4) | $flags
            }

            pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
                dst.put_u16(self.packet_id.get());
            }
        }
    };
}

id_only_packet!(
    /// PUBACK: the receiver's answer to a QoS 1 PUBLISH (section 3.4).
    PubAck,
    PubAck,
    0b0000
);
id_only_packet!(
    /// PUBREC: the receiver's first answer to a QoS 2 PUBLISH (section 3.5).
    PubRec,
    PubRec,
    0b0000
);
id_only_packet!(
    /// PUBREL: the sender's answer to PUBREC (section 3.6). Its fixed-header flags are
    /// 0b0010 [MQTT-3.6.1-1].
    PubRel,
    PubRel,
    0b0010
);
id_only_packet!(
    /// PUBCOMP: the receiver's answer to PUBREL, completing QoS 2 (section 3.7).
    PubComp,
    PubComp,
    0b0000
);
id_only_packet!(
    /// UNSUBACK: the server's answer to UNSUBSCRIBE (section 3.11).
    UnsubAck,
    UnsubAck,
    0b0000
);
