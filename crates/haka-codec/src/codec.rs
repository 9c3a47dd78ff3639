//! The streaming codec: frames packets out of a byte stream and writes packets into one.

use bytes::{Buf, Bytes, BytesMut};

use crate::{
    frame::{remaining_length_len, write_fixed_header, MAX_REMAINING_LENGTH},
    packet::Head,
    ConnectRef, DecodeError, Disconnect, EncodeError, FixedHeader, Packet, PacketId, PacketRef,
    PacketType, PubAck, PubComp, PubRec, PubRel, Publish, PublishRef, UnsubAck,
};

/// The largest packet MQTT 3.1.1 can express: a five-byte fixed header and the largest
/// remaining length.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + MAX_REMAINING_LENGTH;

/// Maximum size of an incoming packet unless configured otherwise: 1 MiB.
pub const DEFAULT_MAX_INCOMING_PACKET_SIZE: usize = 1 << 20;

/// Encodes and decodes MQTT 3.1.1 packets on a byte stream.
///
/// Decoding is streaming and framing comes first: [`Codec::decode`] looks at the fixed header,
/// returns `Ok(None)` until the whole packet is buffered, then parses its body from exactly
/// `remaining_length` bytes. A packet larger than the incoming limit is refused from its
/// fixed header, before any of its body is waited for, so a forged length never makes the
/// decoder reserve or allocate it.
///
/// The codec holds only its limits; it is cheap to copy and has no per-connection state beyond
/// the buffer the caller owns. The two limits are separate because they belong to different
/// parties: by default it decodes packets up to 1 MiB (set it to what you are ready to hold)
/// and encodes anything the protocol can express (set it to the peer's limit). With the `tokio-util` feature it implements
/// `tokio_util::codec::{Decoder, Encoder}`.
///
/// ```
/// use bytes::BytesMut;
/// use haka_codec::{Codec, Packet, PacketId, PubAck};
///
/// let codec = Codec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(&Packet::PubAck(PubAck::new(PacketId::new(7)?)), &mut buf)?;
/// assert_eq!(&buf[..], &[0x40, 0x02, 0x00, 0x07]);
///
/// // Bytes arrive in pieces: nothing is decoded until the packet is complete.
/// let mut stream = BytesMut::from(&buf[..3]);
/// assert_eq!(codec.decode(&mut stream)?, None);
/// stream.extend_from_slice(&buf[3..]);
/// let packet = codec.decode(&mut stream)?.expect("a whole packet");
/// assert_eq!(packet, Packet::PubAck(PubAck::new(PacketId::new(7)?)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    max_incoming_packet_size: usize,
    max_outgoing_packet_size: usize,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    /// A codec for MQTT 3.1.1 accepting incoming packets up to
    /// [`DEFAULT_MAX_INCOMING_PACKET_SIZE`] and writing packets up to [`MAX_PACKET_SIZE`].
    pub const fn new() -> Self {
        Self {
            max_incoming_packet_size: DEFAULT_MAX_INCOMING_PACKET_SIZE,
            max_outgoing_packet_size: MAX_PACKET_SIZE,
        }
    }

    /// Sets the size of the largest packet [`Codec::decode`] accepts, fixed header included
    /// (capped at [`MAX_PACKET_SIZE`]).
    #[must_use]
    pub const fn with_max_incoming_packet_size(mut self, max: usize) -> Self {
        self.max_incoming_packet_size = if max < MAX_PACKET_SIZE {
            max
        } else {
            MAX_PACKET_SIZE
        };
        self
    }

    /// Sets the size of the largest packet [`Codec::encode`] writes, fixed header included
    /// (capped at [`MAX_PACKET_SIZE`]), for a peer that accepts less.
    #[must_use]
    pub const fn with_max_outgoing_packet_size(mut self, max: usize) -> Self {
        self.max_outgoing_packet_size = if max < MAX_PACKET_SIZE {
            max
        } else {
            MAX_PACKET_SIZE
        };
        self
    }

    /// The largest packet accepted by [`Codec::decode`].
    pub const fn max_incoming_packet_size(&self) -> usize {
        self.max_incoming_packet_size
    }

    /// The largest packet written by [`Codec::encode`].
    pub const fn max_outgoing_packet_size(&self) -> usize {
        self.max_outgoing_packet_size
    }

    /// Decodes the packet at the start of `src` and removes its bytes from `src`.
    ///
    /// Returns `Ok(None)` when `src` does not yet hold a whole packet; `src` is left as it is
    /// and nothing is reserved. Strings and payloads of the packet are slices of `src`'s
    /// buffer.
    ///
    /// An error means the peer broke the protocol, and [MQTT-4.8.0-1] requires closing the
    /// connection. An error in the fixed header leaves its bytes in `src`; an error in a body
    /// has consumed that packet. A server answering a CONNECT should first send the CONNACK
    /// that [`DecodeError::connack_code`] names.
    #[inline]
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = FixedHeader::parse(src, self.max_incoming_packet_size)? else {
            return Ok(None);
        };
        if src.len() < header.packet_len() {
            // Deliberately no `reserve`: even within the limit, a peer announcing a large
            // packet should not make us allocate before it has sent the bytes.
            return Ok(None);
        }
        let mut frame = src.split_to(header.packet_len());
        frame.advance(header.header_len);
        Packet::parse(header, frame.freeze()).map(Some)
    }

    /// Like [`Codec::decode`], from an immutable buffer: decodes the packet at the start of
    /// `src` and advances `src` past it.
    #[inline]
    pub fn decode_bytes(&self, src: &mut Bytes) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = FixedHeader::parse(src, self.max_incoming_packet_size)? else {
            return Ok(None);
        };
        if src.len() < header.packet_len() {
            return Ok(None);
        }
        // When the packet is all that is left, take the buffer itself rather than a second
        // handle to it: one reference-count update less.
        let mut frame = if src.len() == header.packet_len() {
            std::mem::take(src)
        } else {
            src.split_to(header.packet_len())
        };
        frame.advance(header.header_len);
        Packet::parse(header, frame).map(Some)
    }

    /// Decodes the packet at the start of `src` without copying or sharing anything: the
    /// packet borrows `src`. Returns it with the number of bytes it took, so the next packet
    /// starts at `src[used..]`.
    ///
    /// Framing comes first, as in [`Codec::decode`]: `Ok(None)` when `src` does not yet hold
    /// the whole packet, and the incoming size limit is checked against the fixed header
    /// before any body is looked at. The body is then parsed from exactly `remaining_length`
    /// bytes by the same parser as the owned decode, so the same input gives the same packet
    /// or the same [`DecodeError`]. Nothing is allocated, whatever the packet.
    ///
    /// Choose it when a packet is handled before the next read reuses the buffer (a broker
    /// routing a PUBLISH, a proxy, a filter); [`PacketRef::to_owned_in`] keeps one for later.
    ///
    /// ```
    /// use haka_codec::{Codec, PacketRef};
    ///
    /// let codec = Codec::new();
    /// // Two PUBLISHes to "t" at QoS 0, the second one cut short.
    /// let wire = [0x30, 0x04, 0x00, 0x01, b't', b'1', 0x30, 0x04, 0x00];
    /// let mut rest = &wire[..];
    /// while let Some((packet, used)) = codec.decode_ref(rest)? {
    ///     let PacketRef::Publish(publish) = packet else { panic!("a PUBLISH") };
    ///     assert_eq!((publish.topic.as_str(), publish.payload), ("t", &b"1"[..]));
    ///     rest = &rest[used..];
    /// }
    /// assert_eq!(rest.len(), 3); // the incomplete packet: read more, then decode again
    /// # Ok::<(), haka_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn decode_ref<'a>(
        &self,
        src: &'a [u8],
    ) -> Result<Option<(PacketRef<'a>, usize)>, DecodeError> {
        let Some(header) = FixedHeader::parse(src, self.max_incoming_packet_size)? else {
            return Ok(None);
        };
        let Some(body) = src.get(header.header_len..header.packet_len()) else {
            return Ok(None);
        };
        // PUBLISH, the hot path, gets its own function, without the dispatch; each of the two
        // writes its result where the caller wants it.
        if header.packet_type == PacketType::Publish {
            return decode_publish_ref(header.flags, body, header.packet_len());
        }
        let (packet_type, used) = (header.packet_type, header.packet_len());
        // The acknowledgements, a packet identifier and nothing else, come next in number,
        // then the packets with no body: a valid one is answered here, without the call; any
        // other goes the long way, which finds what is wrong with it.
        let answered = if body.is_empty() {
            match packet_type {
                PacketType::PingReq => Some(PacketRef::PingReq),
                PacketType::PingResp => Some(PacketRef::PingResp),
                PacketType::Disconnect => Some(PacketRef::Disconnect(Disconnect::new())),
                _ => None,
            }
        } else if let Some(id) = <&[u8; 2]>::try_from(body)
            .ok()
            .and_then(|&id| PacketId::new(u16::from_be_bytes(id)).ok())
        {
            match packet_type {
                PacketType::PubAck => Some(PacketRef::PubAck(PubAck::new(id))),
                PacketType::PubRec => Some(PacketRef::PubRec(PubRec::new(id))),
                PacketType::PubRel => Some(PacketRef::PubRel(PubRel::new(id))),
                PacketType::PubComp => Some(PacketRef::PubComp(PubComp::new(id))),
                PacketType::UnsubAck => Some(PacketRef::UnsubAck(UnsubAck::new(id))),
                _ => None,
            }
        } else if packet_type == PacketType::Connect {
            // CONNECT, once per connection but the first packet a server reads, is answered
            // by a straight pass when it is valid and plain.
            return decode_connect_ref(body, used);
        } else {
            None
        };
        match answered {
            Some(packet) => Ok(Some((packet, used))),
            None => decode_other_ref(packet_type, header.flags, body, used),
        }
    }

    /// Size of `packet` on the wire, or why it cannot be encoded.
    pub fn encoded_len(&self, packet: &Packet) -> Result<usize, EncodeError> {
        check_encodable(packet)?;
        let (body_len, _) = packet.body_len_and_first_byte();
        self.checked_packet_len(body_len)
    }

    /// Appends `packet` to `dst`, reserving the room it needs. On error `dst` is unchanged.
    #[inline]
    pub fn encode(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if let Packet::Publish(publish) = packet {
            // The hot path, written out so that it costs a head and a payload copy, and
            // inlined into the caller: a PUBLISH pays no call of its own.
            return self.encode_publish(publish, dst);
        }
        self.encode_other(packet, dst)
    }

    /// Appends any packet but a PUBLISH, for [`Codec::encode`]. Kept out of line so that
    /// `encode` stays small enough to be inlined where a PUBLISH is written.
    #[inline(never)]
    fn encode_other(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        check_encodable(packet)?;
        let (body_len, first_byte) = packet.body_len_and_first_byte();
        let packet_len = self.checked_packet_len(body_len)?;
        dst.reserve(packet_len);
        write_fixed_header(dst, first_byte, body_len);
        packet.write_body(dst);
        Ok(())
    }

    /// Appends `publish` to `dst`, like [`Codec::encode`] with a [`Packet::Publish`], from a
    /// borrowed PUBLISH: a queue can send the message it keeps without moving it out.
    #[inline(always)]
    pub fn encode_publish(&self, publish: &Publish, dst: &mut BytesMut) -> Result<(), EncodeError> {
        // What the head needs is worked out once, the room for the whole packet is reserved
        // once, and then come the head (built in registers), the topic and the payload.
        let head = publish.head();
        let packet_len = self.checked_packet_len(head.body_len)?;
        append_publish(dst, packet_len, publish, &head, Part::Whole);
        Ok(())
    }

    /// Appends to `dst` everything of `publish` but its payload: the fixed header, the topic
    /// and the packet identifier.
    ///
    /// Writing these bytes followed by `publish.payload` (with `write_vectored`, or as two
    /// chunks of a `Buf` chain) sends the packet without copying the payload, at a cost that
    /// does not grow with its size.
    ///
    /// ```
    /// use bytes::{Buf, BytesMut};
    /// use haka_codec::{Codec, Delivery, Packet, Publish, TopicName};
    ///
    /// let publish = Publish::new(TopicName::new("t")?, Delivery::AtMostOnce, vec![7u8; 1000]);
    /// let codec = Codec::new();
    /// let mut head = BytesMut::new();
    /// codec.encode_publish_head(&publish, &mut head)?;
    /// let mut wire = head.chain(publish.payload.clone());
    ///
    /// let mut whole = BytesMut::new();
    /// codec.encode(&Packet::Publish(publish), &mut whole)?;
    /// assert_eq!(wire.copy_to_bytes(wire.remaining()), whole);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn encode_publish_head(
        &self,
        publish: &Publish,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let head = publish.head();
        self.checked_packet_len(head.body_len)?;
        // Room for the head only: the payload is not copied into `dst`, so a head buffer
        // reused across packets stays as small as the largest head.
        let head_len = head.fixed_header_len() + publish.variable_header_len();
        append_publish(dst, head_len, publish, &head, Part::Head);
        Ok(())
    }

    /// The size of a packet with a body of `body_len` bytes, if it may be written.
    #[inline]
    fn checked_packet_len(&self, body_len: usize) -> Result<usize, EncodeError> {
        let packet_len = 1 + remaining_length_len(body_len) + body_len;
        if body_len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge {
                size: packet_len,
                max: MAX_PACKET_SIZE,
            });
        }
        if packet_len > self.max_outgoing_packet_size {
            return Err(EncodeError::PacketTooLarge {
                size: packet_len,
                max: self.max_outgoing_packet_size,
            });
        }
        Ok(packet_len)
    }
}

/// What of a PUBLISH [`append_publish`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The fixed header, the topic and the packet identifier.
    Head,
    /// The head and the payload.
    Whole,
}

/// Appends `part` of `publish`, `len` bytes, to `dst`, writing them straight into its spare
/// capacity, which is reserved first.
///
/// The encoders' one place where the length of a buffer moves over bytes written through a
/// raw pointer: the room is checked once and the length updated once for the whole packet,
/// not once per field. No closure: both callers get the writer inlined, with `part` known.
#[inline(always)]
fn append_publish(dst: &mut BytesMut, len: usize, publish: &Publish, head: &Head, part: Part) {
    dst.reserve(len);
    let start = dst.len();
    let spare: *mut u8 = dst.spare_capacity_mut().as_mut_ptr().cast();
    #[allow(unsafe_code)]
    // SAFETY: `reserve` left room for `len` bytes at `spare`, and `len` is the size of
    // `part` for this head (the callers work it out from `head`, whose body length
    // `checked_packet_len` let through): what the writers write, and all they initialize.
    // The spare capacity of a `BytesMut` belongs to it alone, so no `Bytes` (the topic's, the
    // payload's) points into it and the copies do not overlap their sources.
    unsafe {
        let written = match part {
            Part::Head => publish.write_head(spare, head),
            Part::Whole => publish.write_packet(spare, head),
        };
        debug_assert_eq!(written, len);
        dst.set_len(start + written);
    }
}

/// The body of a PUBLISH with fixed-header flags `flags`, for [`Codec::decode_ref`]; the
/// packet takes `used` bytes. Inlined into [`Codec::decode_ref`]: the hot path pays no call.
#[inline(always)]
fn decode_publish_ref(
    flags: u8,
    body: &[u8],
    used: usize,
) -> Result<Option<(PacketRef<'_>, usize)>, DecodeError> {
    match PublishRef::parse(flags, body) {
        Ok(publish) => Ok(Some((PacketRef::Publish(publish), used))),
        Err(e) => Err(e),
    }
}

/// The body of a CONNECT, for [`Codec::decode_ref`]; the packet takes `used` bytes.
///
/// Its own function, called with the body in registers: through [`decode_other_ref`] and its
/// dispatch, the same parse measured 11.4 to 11.9 ns against 10.4 to 10.5 on the 42-byte
/// CONNECT of the benchmarks (three alternating runs of each build, Zen 5).
#[inline(never)]
fn decode_connect_ref(
    body: &[u8],
    used: usize,
) -> Result<Option<(PacketRef<'_>, usize)>, DecodeError> {
    match ConnectRef::parse_valid(body) {
        Some(connect) => Ok(Some((PacketRef::Connect(connect), used))),
        // Anything else (a string beyond ASCII, a rule broken) goes the long way, which says
        // what is wrong with it.
        None => match ConnectRef::parse_general(body) {
            Ok(connect) => Ok(Some((PacketRef::Connect(connect), used))),
            Err(e) => Err(e),
        },
    }
}

/// The body of any other packet, for [`Codec::decode_ref`]: a `packet_type` packet with
/// fixed-header flags `flags`, taking `used` bytes with its fixed header.
///
/// It takes the header's fields rather than the [`FixedHeader`]: a struct of that size is
/// passed in memory, and the store of it just before the call and the load of its type first
/// thing in here were measured waiting on each other (a fifth of a CONNECT's decode).
#[inline(never)]
fn decode_other_ref(
    packet_type: PacketType,
    flags: u8,
    body: &[u8],
    used: usize,
) -> Result<Option<(PacketRef<'_>, usize)>, DecodeError> {
    let header = FixedHeader {
        packet_type,
        flags,
        header_len: used - body.len(),
        remaining_length: body.len(),
    };
    match PacketRef::parse(header, body) {
        Ok(packet) => Ok(Some((packet, used))),
        Err(e) => Err(e),
    }
}

/// The one rule that spans fields the types leave public: everything else a packet holds was
/// validated when it was built.
fn check_encodable(packet: &Packet) -> Result<(), EncodeError> {
    if let Packet::Connect(connect) = packet {
        // [MQTT-3.1.3-7] If the Client supplies a zero-byte ClientId, the Client MUST also set
        // CleanSession to 1.
        if connect.client_id.is_empty() && !connect.clean_session {
            return Err(EncodeError::EmptyClientIdWithoutCleanSession);
        }
    }
    Ok(())
}

#[cfg(feature = "tokio-util")]
mod tokio_codec {
    use bytes::BytesMut;

    use super::Codec;
    use crate::{DecodeError, EncodeError, Packet};

    /// The error of the `tokio_util::codec` implementations: the transport's I/O error, or
    /// the codec's own.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum CodecError {
        /// Reading or writing the transport failed.
        #[error("I/O error: {0}")]
        Io(#[from] std::io::Error),
        /// The peer sent bytes that are not a valid packet.
        #[error(transparent)]
        Decode(#[from] DecodeError),
        /// A packet could not be encoded.
        #[error(transparent)]
        Encode(#[from] EncodeError),
    }

    impl tokio_util::codec::Decoder for Codec {
        type Item = Packet;
        type Error = CodecError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
            Ok(Codec::decode(self, src)?)
        }
    }

    impl tokio_util::codec::Encoder<&Packet> for Codec {
        type Error = CodecError;

        fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
            Ok(Codec::encode(self, packet, dst)?)
        }
    }

    impl tokio_util::codec::Encoder<Packet> for Codec {
        type Error = CodecError;

        fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
            Ok(Codec::encode(self, &packet, dst)?)
        }
    }
}

#[cfg(feature = "tokio-util")]
pub use tokio_codec::CodecError;
