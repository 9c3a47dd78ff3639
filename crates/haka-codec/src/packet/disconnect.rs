//! DISCONNECT (section 3.14): the client's last packet on a clean close.

use bytes::BufMut;

use crate::{primitive::parse_body, DecodeError, PacketType};

/// DISCONNECT: the client is closing the connection cleanly, so the server discards the will
/// [MQTT-3.14.4-3].
///
/// It has no body in MQTT 3.1.1; MQTT 5.0 adds a reason code and properties, which is why it is
/// a `#[non_exhaustive]` struct rather than a unit variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Disconnect {}

impl Disconnect {
    /// A DISCONNECT.
    pub const fn new() -> Self {
        Self {}
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        parse_body(PacketType::Disconnect, body, |i| Ok((i, Self {})))
    }

    pub(crate) const fn body_len(&self) -> usize {
        0
    }

    pub(crate) const fn first_byte(&self) -> u8 {
        (PacketType::Disconnect as u8) << 4
    }

    pub(crate) fn write_body(&self, _dst: &mut impl BufMut) {}
}
