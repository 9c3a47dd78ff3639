//! PUBLISH (section 3.3): an application message, in either direction.

use bytes::{Buf, BufMut, Bytes};

use crate::{
    frame::{encode_fixed_header, put_short},
    primitive::{packet_id, put_length_prefixed, u16, ParseError},
    DecodeError, PacketId, PacketType, QoS, TopicName,
};

const FLAG_RETAIN: u8 = 0b0001;
const FLAG_DUP: u8 = 0b1000;
const QOS_SHIFT: u8 = 1;

/// PUBLISH: an application message.
///
/// Decoding shares the received buffer: [`Publish::topic`] and [`Publish::payload`] are
/// [`Bytes`] slices of the frame, so decoding allocates nothing and copies no payload.
///
/// ```
/// # use haka_codec::{Delivery, PacketId, Publish, TopicName};
/// let publish = Publish::new(
///     TopicName::new("sensors/room1/temperature")?,
///     Delivery::AtLeastOnce { packet_id: PacketId::new(1)?, dup: false },
///     "21.5",
/// );
/// assert_eq!(publish.packet_id().map(PacketId::get), Some(1));
/// # Ok::<(), haka_codec::ValueError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Publish {
    /// The topic the message is published to.
    pub topic: TopicName,
    /// The application message; any bytes, possibly none (section 3.3.3).
    pub payload: Bytes,
    /// QoS, with the packet identifier and DUP flag that only QoS 1 and 2 have.
    pub delivery: Delivery,
    /// Whether the server retains the message for future subscribers (section 3.3.1.3).
    pub retain: bool,
}

/// The QoS of a PUBLISH with what comes with it: a packet identifier and the DUP flag for
/// QoS 1 and 2, neither for QoS 0 [MQTT-2.3.1-5], [MQTT-3.3.1-2].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Delivery {
    /// QoS 0: no identifier, never DUP.
    AtMostOnce,
    /// QoS 1.
    AtLeastOnce {
        /// Identifies the message until its PUBACK.
        packet_id: PacketId,
        /// Whether this is a redelivery of an earlier attempt (section 3.3.1.1).
        dup: bool,
    },
    /// QoS 2.
    ExactlyOnce {
        /// Identifies the message until its PUBCOMP.
        packet_id: PacketId,
        /// Whether this is a redelivery of an earlier attempt (section 3.3.1.1).
        dup: bool,
    },
}

impl Delivery {
    /// The QoS level.
    pub const fn qos(&self) -> QoS {
        match self {
            Self::AtMostOnce => QoS::AtMostOnce,
            Self::AtLeastOnce { .. } => QoS::AtLeastOnce,
            Self::ExactlyOnce { .. } => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, for QoS 1 and 2.
    pub const fn packet_id(&self) -> Option<PacketId> {
        match self {
            Self::AtMostOnce => None,
            Self::AtLeastOnce { packet_id, .. } | Self::ExactlyOnce { packet_id, .. } => {
                Some(*packet_id)
            }
        }
    }

    /// Whether the DUP flag is set; never for QoS 0.
    pub const fn dup(&self) -> bool {
        match self {
            Self::AtMostOnce => false,
            Self::AtLeastOnce { dup, .. } | Self::ExactlyOnce { dup, .. } => *dup,
        }
    }

    /// The same delivery with the DUP flag set to `dup`, as for a retransmission. QoS 0 stays
    /// as it is: [MQTT-3.3.1-2] the DUP flag MUST be set to 0 for all QoS 0 messages.
    #[must_use]
    pub const fn with_dup(self, dup: bool) -> Self {
        match self {
            Self::AtMostOnce => Self::AtMostOnce,
            Self::AtLeastOnce { packet_id, .. } => Self::AtLeastOnce { packet_id, dup },
            Self::ExactlyOnce { packet_id, .. } => Self::ExactlyOnce { packet_id, dup },
        }
    }
}

impl Publish {
    /// A message with `payload` for `topic`, not retained.
    pub fn new(topic: TopicName, delivery: Delivery, payload: impl Into<Bytes>) -> Self {
        Self {
            topic,
            payload: payload.into(),
            delivery,
            retain: false,
        }
    }

    /// The QoS level.
    pub const fn qos(&self) -> QoS {
        self.delivery.qos()
    }

    /// The packet identifier, for QoS 1 and 2.
    pub const fn packet_id(&self) -> Option<PacketId> {
        self.delivery.packet_id()
    }

    /// Whether the DUP flag is set.
    pub const fn dup(&self) -> bool {
        self.delivery.dup()
    }

    /// Parses a PUBLISH whose fixed-header flags are `flags` from its whole `body`; the
    /// topic is split off `body` and the payload is what remains of it, neither copied.
    ///
    /// This is the decoder's hot path, so it works on the `Bytes` directly rather than
    /// through [`parse_body`](crate::primitive::parse_body): one reference-count update for
    /// the topic, none for the payload.
    #[inline]
    pub(crate) fn parse(flags: u8, mut body: Bytes) -> Result<Self, DecodeError> {
        let qos = (flags >> QOS_SHIFT) & 0b11;
        let dup = flags & FLAG_DUP != 0;
        let retain = flags & FLAG_RETAIN != 0;
        // [MQTT-3.3.1-4] A PUBLISH Packet MUST NOT have both QoS bits set to 1.
        if qos == 3 {
            return Err(DecodeError::InvalidQoS);
        }
        // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
        if qos == 0 && dup {
            return Err(DecodeError::DupOnQos0);
        }
        let truncated = || DecodeError::Truncated(PacketType::Publish);
        let (_, topic_len) = u16(&body).map_err(|_| truncated())?;
        let topic_end = 2 + usize::from(topic_len);
        let id_len = if qos == 0 { 0 } else { 2 };
        if body.len() < topic_end + id_len {
            return Err(truncated());
        }
        let mut topic = body.split_to(topic_end);
        topic.advance(2);
        let topic = TopicName::from_bytes(topic)?;
        let delivery = if qos == 0 {
            Delivery::AtMostOnce
        } else {
            let (_, packet_id) = packet_id(&body).map_err(|e| match e {
                nom::Err::Failure(ParseError::Invalid(e)) => e,
                _ => truncated(),
            })?;
            body.advance(2);
            if qos == 1 {
                Delivery::AtLeastOnce { packet_id, dup }
            } else {
                Delivery::ExactlyOnce { packet_id, dup }
            }
        };
        // The payload is whatever follows (section 3.3.3), possibly nothing.
        Ok(Self {
            topic,
            payload: body,
            delivery,
            retain,
        })
    }

    /// Size of the variable header: the topic and, for QoS 1 and 2, the packet identifier.
    pub(crate) fn variable_header_len(&self) -> usize {
        let id_len = match self.delivery {
            Delivery::AtMostOnce => 0,
            _ => 2,
        };
        self.topic.as_mqtt_string().encoded_len() + id_len
    }

    pub(crate) fn body_len(&self) -> usize {
        self.variable_header_len() + self.payload.len()
    }

    pub(crate) fn first_byte(&self) -> u8 {
        let mut byte = ((PacketType::Publish as u8) << 4) | ((self.qos() as u8) << QOS_SHIFT);
        if self.dup() {
            byte |= FLAG_DUP;
        }
        if self.retain {
            byte |= FLAG_RETAIN;
        }
        byte
    }

    /// Writes everything but the payload: the fixed header for a body of `body_len` bytes,
    /// the topic and the packet identifier, in three copies.
    #[inline]
    pub(crate) fn write_head(&self, dst: &mut impl BufMut, body_len: usize) {
        let topic = self.topic.as_bytes();
        // Fixed header and topic length together: at most 5 + 2 bytes.
        let mut head = [0u8; 7];
        let n = encode_fixed_header(&mut head, self.first_byte(), body_len);
        head[n..n + 2].copy_from_slice(&(topic.len() as u16).to_be_bytes());
        put_short(dst, &head, n + 2);
        dst.put_slice(topic);
        if let Some(id) = self.packet_id() {
            dst.put_u16(id.get());
        }
    }

    pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
        put_length_prefixed(dst, self.topic.as_bytes());
        if let Some(id) = self.packet_id() {
            dst.put_u16(id.get());
        }
        dst.put_slice(&self.payload);
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Publish {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let topic = u.arbitrary()?;
        let delivery = u.arbitrary()?;
        let retain = u.arbitrary()?;
        let len = u.arbitrary_len::<u8>()?;
        let payload = Bytes::copy_from_slice(u.bytes(len)?);
        Ok(Self {
            topic,
            payload,
            delivery,
            retain,
        })
    }
}
