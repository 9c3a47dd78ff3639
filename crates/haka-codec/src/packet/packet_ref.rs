//! The borrowed view of a packet: what [`Codec::decode_ref`](crate::Codec::decode_ref)
//! returns.

use bytes::Bytes;

use super::{
    ConnAck, ConnectRef, Disconnect, Packet, PubAck, PubComp, PubRec, PubRel, PublishRef,
    SubAckRef, SubscribeRef, UnsubAck, UnsubscribeRef,
};
use crate::{primitive::parse_body, DecodeError, FixedHeader, PacketType};

/// An MQTT control packet borrowed from the bytes it was decoded from: the counterpart of
/// [`Packet`], returned by [`Codec::decode_ref`](crate::Codec::decode_ref).
///
/// It is checked by exactly the rules of the owned decode, with the same [`DecodeError`]s, but
/// holds `&str` and `&[u8]` views of the input instead of [`Bytes`]: decoding one touches no
/// reference count and allocates nothing, whatever the packet. Lists (the filters of a
/// SUBSCRIBE or UNSUBSCRIBE, the return codes of a SUBACK) were checked when the packet was
/// parsed and are read from the input as they are iterated.
///
/// [`PacketRef::to_owned_in`] turns it into the owned [`Packet`] when it must outlive the
/// input.
///
/// ```
/// use haka_codec::{Codec, PacketId, PacketRef, PubAck};
///
/// let codec = Codec::new();
/// let wire = [0x40, 0x02, 0x00, 0x07, 0xd0, 0x00]; // PUBACK 7, then PINGRESP
/// let Some((first, used)) = codec.decode_ref(&wire)? else { panic!("whole") };
/// assert_eq!(first, PacketRef::PubAck(PubAck::new(PacketId::new(7)?)));
/// let Some((second, _)) = codec.decode_ref(&wire[used..])? else { panic!("whole") };
/// assert_eq!(second, PacketRef::PingResp);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketRef<'a> {
    /// CONNECT: client request to connect to the server.
    Connect(ConnectRef<'a>),
    /// CONNACK: connect acknowledgement.
    ConnAck(ConnAck),
    /// PUBLISH: an application message.
    Publish(PublishRef<'a>),
    /// PUBACK: QoS 1 publish acknowledgement.
    PubAck(PubAck),
    /// PUBREC: QoS 2 publish received.
    PubRec(PubRec),
    /// PUBREL: QoS 2 publish release.
    PubRel(PubRel),
    /// PUBCOMP: QoS 2 publish complete.
    PubComp(PubComp),
    /// SUBSCRIBE: subscribe to topic filters.
    Subscribe(SubscribeRef<'a>),
    /// SUBACK: subscribe acknowledgement.
    SubAck(SubAckRef<'a>),
    /// UNSUBSCRIBE: unsubscribe from topic filters.
    Unsubscribe(UnsubscribeRef<'a>),
    /// UNSUBACK: unsubscribe acknowledgement.
    UnsubAck(UnsubAck),
    /// PINGREQ: ping request.
    PingReq,
    /// PINGRESP: ping response.
    PingResp,
    /// DISCONNECT: the client is disconnecting cleanly.
    Disconnect(Disconnect),
}

impl<'a> PacketRef<'a> {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
        }
    }

    /// The owned packet, whose strings, topics and payload share `frame` where they lie inside
    /// it and are copied otherwise.
    ///
    /// Give it a [`Bytes`] holding the bytes the packet was decoded from, and nothing is
    /// copied: each borrowed field becomes a slice of `frame`. Give it anything else (an empty
    /// `Bytes`, say) and every field is copied; the result is the same packet either way.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use haka_codec::{Codec, Packet};
    ///
    /// let wire = Bytes::from_static(&[0x30, 0x05, 0x00, 0x01, b't', b'h', b'i']);
    /// let (packet, used) = Codec::new().decode_ref(&wire)?.expect("a whole packet");
    /// let shared = packet.to_owned_in(&wire.slice(..used));
    /// let copied = packet.to_owned_in(&Bytes::new());
    /// assert_eq!(shared, copied);
    /// let Packet::Publish(publish) = shared else { panic!("a PUBLISH") };
    /// assert_eq!(publish.payload.as_ptr(), wire[5..].as_ptr()); // not copied
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_owned_in(&self, frame: &Bytes) -> Packet {
        match self {
            Self::Connect(p) => Packet::Connect(Box::new(p.to_owned_in(frame))),
            Self::ConnAck(p) => Packet::ConnAck(*p),
            Self::Publish(p) => Packet::Publish(p.to_owned_in(frame)),
            Self::PubAck(p) => Packet::PubAck(*p),
            Self::PubRec(p) => Packet::PubRec(*p),
            Self::PubRel(p) => Packet::PubRel(*p),
            Self::PubComp(p) => Packet::PubComp(*p),
            Self::Subscribe(p) => Packet::Subscribe(p.to_owned_in(frame)),
            Self::SubAck(p) => Packet::SubAck(p.to_suback()),
            Self::Unsubscribe(p) => Packet::Unsubscribe(p.to_owned_in(frame)),
            Self::UnsubAck(p) => Packet::UnsubAck(*p),
            Self::PingReq => Packet::PingReq,
            Self::PingResp => Packet::PingResp,
            Self::Disconnect(p) => Packet::Disconnect(*p),
        }
    }

    /// Parses the body of a packet whose fixed header is `header`; `body` holds exactly its
    /// `remaining_length` bytes. This is the one parser of packet bodies: the owned decode
    /// runs it too.
    #[inline(always)]
    pub(crate) fn parse(header: FixedHeader, body: &'a [u8]) -> Result<Self, DecodeError> {
        debug_assert_eq!(body.len(), header.remaining_length);
        let ty = header.packet_type;
        Ok(match ty {
            PacketType::Publish => Self::Publish(PublishRef::parse(header.flags, body)?),
            PacketType::PubAck => Self::PubAck(PubAck::parse(body)?),
            PacketType::PubRec => Self::PubRec(PubRec::parse(body)?),
            PacketType::PubRel => Self::PubRel(PubRel::parse(body)?),
            PacketType::PubComp => Self::PubComp(PubComp::parse(body)?),
            PacketType::Connect => Self::Connect(ConnectRef::parse(body)?),
            PacketType::ConnAck => Self::ConnAck(ConnAck::parse(body)?),
            PacketType::Subscribe => Self::Subscribe(SubscribeRef::parse(body)?),
            PacketType::SubAck => Self::SubAck(SubAckRef::parse(body)?),
            PacketType::Unsubscribe => Self::Unsubscribe(UnsubscribeRef::parse(body)?),
            PacketType::UnsubAck => Self::UnsubAck(UnsubAck::parse(body)?),
            PacketType::PingReq => parse_body(ty, body, |i| Ok((i, Self::PingReq)))?,
            PacketType::PingResp => parse_body(ty, body, |i| Ok((i, Self::PingResp)))?,
            PacketType::Disconnect => Self::Disconnect(Disconnect::parse(body)?),
        })
    }
}

impl From<PacketRef<'_>> for Packet {
    /// The owned packet, every field copied; see [`PacketRef::to_owned_in`] to share the
    /// input's buffer instead.
    fn from(packet: PacketRef<'_>) -> Self {
        packet.to_owned_in(&Bytes::new())
    }
}
