//! Packet identifiers (section 2.3.1).

use std::{fmt, num::NonZeroU16};

use crate::ValueError;

/// A packet identifier: a non-zero 16-bit number that pairs a packet with its acknowledgement.
///
/// [MQTT-2.3.1-1] SUBSCRIBE, UNSUBSCRIBE, and PUBLISH (in cases where QoS > 0) Control Packets
/// MUST contain a non-zero 16-bit Packet Identifier. Zero cannot be represented.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The smallest packet identifier, 1.
    pub const MIN: Self = Self(NonZeroU16::MIN);
    /// The largest packet identifier, 65,535.
    pub const MAX: Self = Self(NonZeroU16::MAX);

    /// The packet identifier `value`, or [`ValueError::ZeroPacketId`] for 0.
    ///
    /// ```
    /// # use haka_codec::{PacketId, ValueError};
    /// assert_eq!(PacketId::new(7).map(PacketId::get), Ok(7));
    /// assert_eq!(PacketId::new(0), Err(ValueError::ZeroPacketId));
    /// ```
    pub const fn new(value: u16) -> Result<Self, ValueError> {
        match NonZeroU16::new(value) {
            Some(id) => Ok(Self(id)),
            None => Err(ValueError::ZeroPacketId),
        }
    }

    /// The identifier as a number, never 0.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier that follows this one, wrapping from 65,535 to 1 (never 0).
    pub const fn next(self) -> Self {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(id) => Self(id),
            None => Self::MIN,
        }
    }
}

impl From<NonZeroU16> for PacketId {
    fn from(id: NonZeroU16) -> Self {
        Self(id)
    }
}

impl From<PacketId> for NonZeroU16 {
    fn from(id: PacketId) -> Self {
        id.0
    }
}

impl From<PacketId> for u16 {
    fn from(id: PacketId) -> Self {
        id.get()
    }
}

impl TryFrom<u16> for PacketId {
    type Error = ValueError;

    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl fmt::Debug for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PacketId({})", self.0)
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for PacketId {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(NonZeroU16::arbitrary(u)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_wraps_past_zero() {
        assert_eq!(PacketId::MAX.next(), PacketId::MIN);
        assert_eq!(PacketId::MIN.next().get(), 2);
    }
}
