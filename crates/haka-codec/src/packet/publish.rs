//! PUBLISH (section 3.3): an application message, in either direction.

use bytes::{Buf, BufMut, Bytes};

use crate::{
    frame::{encode_fixed_header, remaining_length_len},
    primitive::put_length_prefixed,
    string::share_or_copy,
    DecodeError, PacketId, PacketType, QoS, TopicName, TopicNameRef,
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

    /// Parses a PUBLISH whose fixed-header flags are `flags` from its whole `body`: the
    /// borrowed parse, then the topic is a slice of `body` and the payload is what remains of
    /// it, neither copied (one reference-count update, for the topic).
    #[inline]
    pub(crate) fn parse(flags: u8, mut body: Bytes) -> Result<Self, DecodeError> {
        let publish = PublishRef::parse(flags, &body)?;
        let topic = publish.topic.to_owned_in(&body);
        let payload_start = body.len() - publish.payload.len();
        let (delivery, retain) = (publish.delivery, publish.retain);
        body.advance(payload_start);
        Ok(Self {
            topic,
            payload: body,
            delivery,
            retain,
        })
    }

    /// This PUBLISH, borrowed.
    pub fn as_publish_ref(&self) -> PublishRef<'_> {
        PublishRef {
            topic: self.topic.as_ref_name(),
            payload: &self.payload,
            delivery: self.delivery,
            retain: self.retain,
        }
    }

    /// Size of the variable header: the topic and, for QoS 1 and 2, the packet identifier.
    #[inline]
    pub(crate) fn variable_header_len(&self) -> usize {
        let id_len = match self.delivery {
            Delivery::AtMostOnce => 0,
            _ => 2,
        };
        self.topic.as_mqtt_string().encoded_len() + id_len
    }

    #[inline]
    pub(crate) fn body_len(&self) -> usize {
        self.variable_header_len() + self.payload.len()
    }

    #[inline]
    pub(crate) fn first_byte(&self) -> u8 {
        self.first_byte_and_id().0
    }

    /// The fixed header's first byte and the packet identifier, from one look at the
    /// delivery.
    #[inline]
    fn first_byte_and_id(&self) -> (u8, Option<PacketId>) {
        let (qos, dup, id) = match self.delivery {
            Delivery::AtMostOnce => (0, false, None),
            Delivery::AtLeastOnce { packet_id, dup } => (1, dup, Some(packet_id)),
            Delivery::ExactlyOnce { packet_id, dup } => (2, dup, Some(packet_id)),
        };
        let mut byte = ((PacketType::Publish as u8) << 4) | (qos << QOS_SHIFT);
        if dup {
            byte |= FLAG_DUP;
        }
        if self.retain {
            byte |= FLAG_RETAIN;
        }
        (byte, id)
    }

    /// What the head of the packet needs, worked out once.
    #[inline]
    pub(crate) fn head(&self) -> Head {
        let (first_byte, packet_id) = self.first_byte_and_id();
        let id_len = if packet_id.is_some() { 2 } else { 0 };
        Head {
            first_byte,
            body_len: 2 + self.topic.len() + id_len + self.payload.len(),
            packet_id,
        }
    }

    /// Writes everything but the payload (the fixed header for `head.body_len`, the topic and
    /// the packet identifier) at `dst` and returns how many bytes that took:
    /// [`Head::fixed_header_len`] plus [`Publish::variable_header_len`].
    ///
    /// The bytes are written through the pointer, each part once to its place, with no bounds
    /// check per field: the caller reserved the room once for the whole packet.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of that many bytes, and `head` is this packet's
    /// ([`Publish::head`]) with `head.body_len` at most
    /// [`MAX_REMAINING_LENGTH`](crate::MAX_REMAINING_LENGTH).
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn write_head(&self, dst: *mut u8, head: &Head) -> usize {
        let topic = self.topic.as_bytes();
        // The fixed header and the topic's length, built in a register and written together
        // (see `write_fixed_header`) for a packet under 16 KiB.
        let (first_byte, topic_len) = (u32::from(head.first_byte), topic.len() as u32);
        // SAFETY (every write below): the parts written are the fixed header, the topic and
        // the packet identifier, in order, each at the offset the ones before it end at: the
        // room the caller guarantees.
        let mut at = match head.body_len {
            len @ 0..=0x7f => {
                let word = first_byte << 24 | (len as u32) << 16 | topic_len;
                unsafe { dst.cast::<[u8; 4]>().write_unaligned(word.to_be_bytes()) };
                4
            }
            len @ 0x80..=0x3fff => {
                let len = len as u32;
                let word = (len & 0x7f | 0x80) << 24 | (len >> 7) << 16 | topic_len;
                unsafe {
                    dst.write(head.first_byte);
                    dst.add(1)
                        .cast::<[u8; 4]>()
                        .write_unaligned(word.to_be_bytes());
                }
                5
            }
            len => {
                let mut fixed = [0u8; 5];
                let n = encode_fixed_header(&mut fixed, head.first_byte, len);
                unsafe {
                    copy_to(dst, &fixed[..n]);
                    dst.add(n)
                        .cast::<[u8; 2]>()
                        .write_unaligned((topic_len as u16).to_be_bytes());
                }
                n + 2
            }
        };
        at += unsafe { copy_to(dst.add(at), topic) };
        if let Some(id) = head.packet_id {
            unsafe {
                dst.add(at)
                    .cast::<[u8; 2]>()
                    .write_unaligned(id.get().to_be_bytes());
            }
            at += 2;
        }
        at
    }

    /// Writes the whole packet at `dst`, like [`Publish::write_head`] followed by the payload,
    /// and returns its length.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of the whole packet (`head.fixed_header_len() +
    /// head.body_len` bytes), and `head` is as [`Publish::write_head`] asks.
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn write_packet(&self, dst: *mut u8, head: &Head) -> usize {
        // SAFETY: the head takes the start of the room, the payload the rest of it.
        unsafe {
            let at = self.write_head(dst, head);
            at + copy_to(dst.add(at), &self.payload)
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

/// Copies `src` to `dst` and returns its length.
///
/// Topics and small payloads are copied inline with two fixed-size copies that overlap,
/// rather than by a call into the C library's `memcpy`, whose call and dispatch on the
/// length cost more than the copy itself for a few dozen bytes.
///
/// # Safety
///
/// `dst` is valid for writes of `src.len()` bytes and does not overlap `src`.
#[inline(always)]
#[allow(unsafe_code)]
unsafe fn copy_to(dst: *mut u8, src: &[u8]) -> usize {
    let n = src.len();
    let src = src.as_ptr();
    // SAFETY: every copy stays within the first `n` bytes of `src` and of `dst`.
    unsafe {
        match n {
            16..=32 => {
                std::ptr::copy_nonoverlapping(src, dst, 16);
                std::ptr::copy_nonoverlapping(src.add(n - 16), dst.add(n - 16), 16);
            }
            8..=15 => {
                std::ptr::copy_nonoverlapping(src, dst, 8);
                std::ptr::copy_nonoverlapping(src.add(n - 8), dst.add(n - 8), 8);
            }
            _ => std::ptr::copy_nonoverlapping(src, dst, n),
        }
    }
    n
}

/// One bit per value of a PUBLISH's fixed-header flags, set when [`invalid_flags`] finds
/// nothing wrong with them.
const VALID_FLAGS: u16 = {
    let mut valid = 0u16;
    let mut flags = 0;
    while flags < 16 {
        let qos = (flags >> QOS_SHIFT) & 0b11;
        if qos != 3 && !(qos == 0 && flags & FLAG_DUP != 0) {
            valid |= 1 << flags;
        }
        flags += 1;
    }
    valid
};

/// What is wrong with the fixed-header flags of a PUBLISH that [`VALID_FLAGS`] refuses.
#[cold]
fn invalid_flags(flags: u8) -> DecodeError {
    // [MQTT-3.3.1-4] A PUBLISH Packet MUST NOT have both QoS bits set to 1.
    if (flags >> QOS_SHIFT) & 0b11 == 3 {
        return DecodeError::InvalidQoS;
    }
    // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
    DecodeError::DupOnQos0
}

/// The head of a PUBLISH being encoded: what [`Publish::head`] works out once.
pub(crate) struct Head {
    first_byte: u8,
    /// The size of the body; the packet can be written only when it is at most
    /// [`MAX_REMAINING_LENGTH`](crate::MAX_REMAINING_LENGTH).
    pub(crate) body_len: usize,
    packet_id: Option<PacketId>,
}

impl Head {
    /// Size of the fixed header.
    pub(crate) const fn fixed_header_len(&self) -> usize {
        1 + remaining_length_len(self.body_len)
    }
}

/// PUBLISH borrowed from the bytes it was decoded from, by
/// [`Codec::decode_ref`](crate::Codec::decode_ref): the counterpart of [`Publish`].
///
/// The topic was validated like an owned one's ([`TopicNameRef`]); the payload is the rest of
/// the packet. Nothing is copied and no reference count is touched.
///
/// ```
/// # use haka_codec::{Codec, Delivery, PacketRef, Publish, TopicName};
/// let mut wire = bytes::BytesMut::new();
/// let publish = Publish::new(TopicName::new("a/b")?, Delivery::AtMostOnce, "hi");
/// Codec::new().encode_publish(&publish, &mut wire)?;
///
/// let Some((PacketRef::Publish(p), used)) = Codec::new().decode_ref(&wire)? else {
///     panic!("a whole PUBLISH")
/// };
/// assert_eq!((p.topic.as_str(), p.payload, used), ("a/b", &b"hi"[..], wire.len()));
/// assert_eq!(p, publish.as_publish_ref());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishRef<'a> {
    /// The topic the message is published to.
    pub topic: TopicNameRef<'a>,
    /// The application message; any bytes, possibly none (section 3.3.3).
    pub payload: &'a [u8],
    /// QoS, with the packet identifier and DUP flag that only QoS 1 and 2 have.
    pub delivery: Delivery,
    /// Whether the server retains the message for future subscribers (section 3.3.1.3).
    pub retain: bool,
}

impl<'a> PublishRef<'a> {
    /// A message with `payload` for `topic`, not retained.
    pub const fn new(topic: TopicNameRef<'a>, delivery: Delivery, payload: &'a [u8]) -> Self {
        Self {
            topic,
            payload,
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

    /// The owned PUBLISH, whose topic and payload share `frame` when they lie inside it (as
    /// they do in a packet decoded from `frame`) and are copied otherwise.
    pub fn to_owned_in(&self, frame: &Bytes) -> Publish {
        Publish {
            topic: self.topic.to_owned_in(frame),
            payload: share_or_copy(frame, self.payload),
            delivery: self.delivery,
            retain: self.retain,
        }
    }

    /// Parses a PUBLISH whose fixed-header flags are `flags` from its whole `body`.
    ///
    /// This is the decoder's hot path, so it reads its two fields by hand rather than with
    /// nom and [`parse_body`](crate::primitive::parse_body): the payload is whatever follows
    /// them, so there is nothing left over to check.
    #[inline(always)]
    pub(crate) fn parse(flags: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        // One lookup for both rules of the flags.
        if VALID_FLAGS & (1 << (flags & 0x0f)) == 0 {
            return Err(invalid_flags(flags));
        }
        let qos = (flags >> QOS_SHIFT) & 0b11;
        let dup = flags & FLAG_DUP != 0;
        let retain = flags & FLAG_RETAIN != 0;
        let truncated = || DecodeError::Truncated(PacketType::Publish);
        let Some((&topic_len, rest)) = body.split_first_chunk::<2>() else {
            return Err(truncated());
        };
        let topic_len = usize::from(u16::from_be_bytes(topic_len));
        let id_len = if qos == 0 { 0 } else { 2 };
        // The topic and the packet identifier must both be there before either is checked.
        if rest.len() < topic_len + id_len {
            return Err(truncated());
        }
        let (topic, rest) = rest.split_at(topic_len);
        let topic = TopicNameRef::from_wire(topic)?;
        let (delivery, payload) = match (qos, rest.split_first_chunk::<2>()) {
            (0, _) => (Delivery::AtMostOnce, rest),
            (_, None) => return Err(truncated()),
            (_, Some((&id, payload))) => {
                // [MQTT-2.3.1-1] PUBLISH (in cases where QoS > 0) Control Packets MUST contain
                // a non-zero 16-bit Packet Identifier.
                let packet_id = PacketId::new(u16::from_be_bytes(id))?;
                if qos == 1 {
                    (Delivery::AtLeastOnce { packet_id, dup }, payload)
                } else {
                    (Delivery::ExactlyOnce { packet_id, dup }, payload)
                }
            }
        };
        // The payload is whatever follows (section 3.3.3), possibly nothing.
        Ok(Self {
            topic,
            payload,
            delivery,
            retain,
        })
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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::{frame::encode_fixed_header, Codec};

    /// The head written from registers and the topic and payload copied inline write the same
    /// bytes as the packet written field by field, across every size of remaining length and
    /// every length class of the inline copies (under 8, 8 to 15, 16 to 32, over 32 bytes), into
    /// an empty buffer and after what a buffer already holds.
    #[test]
    fn fast_encode_writes_the_same_bytes() {
        let codec = Codec::new();
        let topics = [
            1, 7, 8, 9, 15, 16, 17, 25, 31, 32, 33, 100, 127, 128, 255, 256, 1000, 65_535,
        ]
        .map(|n| "t".repeat(n));
        let payloads = [
            0, 1, 7, 8, 15, 16, 17, 32, 33, 100, 120, 121, 122, 123, 200, 16_000, 16_350, 16_352,
            20_000,
        ];
        for topic in &topics {
            for payload_len in payloads {
                for delivery in [
                    Delivery::AtMostOnce,
                    Delivery::ExactlyOnce {
                        packet_id: PacketId::MAX,
                        dup: true,
                    },
                ] {
                    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
                    let mut publish =
                        Publish::new(TopicName::new(topic).unwrap(), delivery, payload);
                    publish.retain = true;
                    let mut expected = vec![0u8; 5];
                    let n = encode_fixed_header(
                        &mut expected,
                        publish.first_byte(),
                        publish.body_len(),
                    );
                    expected.truncate(n);
                    publish.write_body(&mut expected);
                    let what = format!("topic of {} bytes, payload of {payload_len}", topic.len());

                    for before in [&b""[..], b"xyz"] {
                        let mut fast = BytesMut::from(before);
                        codec.encode_publish(&publish, &mut fast).unwrap();
                        assert_eq!(fast[..before.len()], *before, "{what}");
                        assert_eq!(fast[before.len()..], expected[..], "{what}");
                        let mut head = BytesMut::from(before);
                        codec.encode_publish_head(&publish, &mut head).unwrap();
                        assert_eq!(
                            head[before.len()..],
                            expected[..expected.len() - payload_len],
                            "{what}"
                        );
                    }
                }
            }
        }
    }
}
