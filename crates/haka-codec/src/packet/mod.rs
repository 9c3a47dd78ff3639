//! The control packets of MQTT 3.1.1 (chapter 3), one file per packet.

mod ack;
mod connack;
mod connect;
mod disconnect;
mod packet_ref;
mod publish;
mod suback;
mod subscribe;
mod unsubscribe;

use bytes::{BufMut, Bytes};

pub(crate) use self::publish::Head;
pub use self::{
    ack::{PubAck, PubComp, PubRec, PubRel, UnsubAck},
    connack::{ConnAck, ConnectReturnCode},
    connect::{Connect, ConnectRef, LastWill, LastWillRef, Login, LoginRef},
    disconnect::Disconnect,
    packet_ref::PacketRef,
    publish::{Delivery, Publish, PublishRef},
    suback::{ReturnCodes, SubAck, SubAckRef, SubscribeReturnCode},
    subscribe::{Subscribe, SubscribeRef, Subscription, SubscriptionRef, Subscriptions},
    unsubscribe::{Filters, Unsubscribe, UnsubscribeRef},
};
use crate::{DecodeError, FixedHeader, PacketType};

/// An MQTT control packet.
///
/// New packet kinds (MQTT 5.0's AUTH) will be added as new variants, so matches need a
/// wildcard arm; the packet structs are `#[non_exhaustive]` for the same reason (MQTT 5.0 adds
/// properties and reason codes to them) and are built with their `new` constructors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Packet {
    /// CONNECT: client request to connect to the server.
    ///
    /// Boxed: it is more than twice the size of any other packet and is decoded once per
    /// connection, while every other packet moves through the decoder's hot path.
    Connect(Box<Connect>),
    /// CONNACK: connect acknowledgement.
    ConnAck(ConnAck),
    /// PUBLISH: an application message.
    Publish(Publish),
    /// PUBACK: QoS 1 publish acknowledgement.
    PubAck(PubAck),
    /// PUBREC: QoS 2 publish received.
    PubRec(PubRec),
    /// PUBREL: QoS 2 publish release.
    PubRel(PubRel),
    /// PUBCOMP: QoS 2 publish complete.
    PubComp(PubComp),
    /// SUBSCRIBE: subscribe to topic filters.
    Subscribe(Subscribe),
    /// SUBACK: subscribe acknowledgement.
    SubAck(SubAck),
    /// UNSUBSCRIBE: unsubscribe from topic filters.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK: unsubscribe acknowledgement.
    UnsubAck(UnsubAck),
    /// PINGREQ: ping request.
    PingReq,
    /// PINGRESP: ping response.
    PingResp,
    /// DISCONNECT: the client is disconnecting cleanly.
    Disconnect(Disconnect),
}

impl Packet {
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

    /// Parses the body of a packet whose fixed header is `header`; `body` holds exactly its
    /// `remaining_length` bytes. Strings and payloads of the result share `body`.
    ///
    /// The body is parsed, and checked, by [`PacketRef::parse`], then each borrowed field
    /// becomes a slice of `body`. PUBLISH, the hot path, takes the payload as what remains of
    /// `body` rather than as a second handle to it.
    #[inline]
    pub(crate) fn parse(header: FixedHeader, body: Bytes) -> Result<Self, DecodeError> {
        if header.packet_type == PacketType::Publish {
            return Publish::parse(header.flags, body).map(Self::Publish);
        }
        PacketRef::parse(header, &body).map(|packet| packet.to_owned_in(&body))
    }

    /// Size of the body (what follows the fixed header), and the fixed header's first byte.
    #[inline]
    pub(crate) fn body_len_and_first_byte(&self) -> (usize, u8) {
        match self {
            Self::Connect(p) => (p.body_len(), p.first_byte()),
            Self::ConnAck(p) => (p.body_len(), p.first_byte()),
            Self::Publish(p) => (p.body_len(), p.first_byte()),
            Self::PubAck(p) => (p.body_len(), p.first_byte()),
            Self::PubRec(p) => (p.body_len(), p.first_byte()),
            Self::PubRel(p) => (p.body_len(), p.first_byte()),
            Self::PubComp(p) => (p.body_len(), p.first_byte()),
            Self::Subscribe(p) => (p.body_len(), p.first_byte()),
            Self::SubAck(p) => (p.body_len(), p.first_byte()),
            Self::Unsubscribe(p) => (p.body_len(), p.first_byte()),
            Self::UnsubAck(p) => (p.body_len(), p.first_byte()),
            Self::PingReq => (0, (PacketType::PingReq as u8) << 4),
            Self::PingResp => (0, (PacketType::PingResp as u8) << 4),
            Self::Disconnect(p) => (p.body_len(), p.first_byte()),
        }
    }

    /// Writes the body; `dst` has room for [`Packet::body_len_and_first_byte`]'s length.
    #[inline]
    pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
        match self {
            Self::Connect(p) => p.write_body(dst),
            Self::ConnAck(p) => p.write_body(dst),
            Self::Publish(p) => p.write_body(dst),
            Self::PubAck(p) => p.write_body(dst),
            Self::PubRec(p) => p.write_body(dst),
            Self::PubRel(p) => p.write_body(dst),
            Self::PubComp(p) => p.write_body(dst),
            Self::Subscribe(p) => p.write_body(dst),
            Self::SubAck(p) => p.write_body(dst),
            Self::Unsubscribe(p) => p.write_body(dst),
            Self::UnsubAck(p) => p.write_body(dst),
            Self::PingReq | Self::PingResp => {}
            Self::Disconnect(p) => p.write_body(dst),
        }
    }
}

macro_rules! impl_from_packet {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Packet {
            fn from(p: $variant) -> Self {
                Self::$variant(p)
            }
        }
    )*};
}

impl From<Connect> for Packet {
    fn from(p: Connect) -> Self {
        Self::Connect(Box::new(p))
    }
}

impl_from_packet!(
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect
);

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Packet {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(1..=14u8)? {
            1 => Self::Connect(Box::new(u.arbitrary()?)),
            2 => Self::ConnAck(u.arbitrary()?),
            3 => Self::Publish(u.arbitrary()?),
            4 => Self::PubAck(u.arbitrary()?),
            5 => Self::PubRec(u.arbitrary()?),
            6 => Self::PubRel(u.arbitrary()?),
            7 => Self::PubComp(u.arbitrary()?),
            8 => Self::Subscribe(u.arbitrary()?),
            9 => Self::SubAck(u.arbitrary()?),
            10 => Self::Unsubscribe(u.arbitrary()?),
            11 => Self::UnsubAck(u.arbitrary()?),
            12 => Self::PingReq,
            13 => Self::PingResp,
            _ => Self::Disconnect(Disconnect::new()),
        })
    }
}
