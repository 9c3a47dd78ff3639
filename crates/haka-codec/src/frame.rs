//! Framing: the fixed header (section 2.2) and the remaining length that delimits a packet.
//!
//! Only this part of a packet is parsed incrementally. Once the fixed header is complete, the
//! size of the whole packet is known and checked against the maximum before a single byte of
//! the body is waited for; the body is then parsed from exactly `remaining_length` bytes.

use bytes::BufMut;

use crate::DecodeError;

/// The largest remaining length four bytes can encode: 268,435,455 (section 2.2.3).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The fourteen control packet types of MQTT 3.1.1 (section 2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketType {
    /// Client request to connect to the server.
    Connect = 1,
    /// Connect acknowledgement.
    ConnAck = 2,
    /// Publish message.
    Publish = 3,
    /// Publish acknowledgement (QoS 1).
    PubAck = 4,
    /// Publish received (QoS 2, part 1).
    PubRec = 5,
    /// Publish release (QoS 2, part 2).
    PubRel = 6,
    /// Publish complete (QoS 2, part 3).
    PubComp = 7,
    /// Subscribe request.
    Subscribe = 8,
    /// Subscribe acknowledgement.
    SubAck = 9,
    /// Unsubscribe request.
    Unsubscribe = 10,
    /// Unsubscribe acknowledgement.
    UnsubAck = 11,
    /// Ping request.
    PingReq = 12,
    /// Ping response.
    PingResp = 13,
    /// Client is disconnecting.
    Disconnect = 14,
}

impl PacketType {
    /// The packet type numbered `value`, the high nibble of a fixed header's first byte.
    /// 0 and 15 are reserved; values above 15 are not packet types and are refused the same
    /// way.
    pub const fn from_u8(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            // 0 and 15 are "Reserved, Forbidden" in MQTT 3.1.1 (section 2.2.1).
            other => return Err(DecodeError::ReservedPacketType(other)),
        })
    }

    /// The flag bits that the specification fixes for this type; PUBLISH has none fixed.
    ///
    /// [MQTT-2.2.2-1] Where a flag bit is marked as "Reserved" in Table 2.2 - Flag Bits, it is
    /// reserved for future use and MUST be set to the value listed in that table. The fixed
    /// header parser checks them through [`ALLOWED_FLAGS`], built from this.
    pub(crate) const fn fixed_flags(self) -> Option<u8> {
        match self {
            Self::Publish => None,
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

/// A parsed fixed header: what kind of packet follows and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The four flag bits (only PUBLISH gives them a meaning).
    pub flags: u8,
    /// Number of bytes of the fixed header itself: 2 to 5.
    pub header_len: usize,
    /// Number of bytes that follow the fixed header.
    pub remaining_length: usize,
}

impl FixedHeader {
    /// Size of the whole packet: fixed header plus remaining length.
    pub const fn packet_len(&self) -> usize {
        self.header_len + self.remaining_length
    }

    /// Parses the fixed header at the start of `src`.
    ///
    /// Returns `Ok(None)` when `src` does not yet hold the whole fixed header: more bytes are
    /// needed, nothing is wrong. Errors are final: the type is reserved, its flags are wrong,
    /// the remaining length is malformed, or the packet exceeds `max_packet_size`. A remaining
    /// length written in more bytes than it needs (`0x80 0x00` for 0) is accepted: MQTT 3.1.1
    /// shows the shortest encoding but, unlike 5.0 [MQTT-1.5.5-1], does not require it. This checks
    /// the size before any body is buffered, so a forged length never makes a caller wait for,
    /// reserve or allocate it.
    ///
    /// ```
    /// # use haka_codec::{FixedHeader, PacketType};
    /// let header = FixedHeader::parse(&[0x30, 0x80, 0x01], 1024).unwrap().unwrap();
    /// assert_eq!(header.packet_type, PacketType::Publish);
    /// assert_eq!(header.remaining_length, 128);
    /// assert_eq!(FixedHeader::parse(&[0x30, 0x80], 1024), Ok(None));
    /// ```
    #[inline(always)] // Every decoder's first step: a few instructions, worth no call.
    pub fn parse(src: &[u8], max_packet_size: usize) -> Result<Option<Self>, DecodeError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        let (ty, flags) = (first >> 4, first & 0x0f);
        // One lookup checks the type and its flags; which rule was broken is worked out only
        // when one was.
        if ALLOWED_FLAGS[usize::from(ty)] & (1 << flags) == 0 {
            return Err(invalid_first_byte(first));
        }
        let Ok(packet_type) = PacketType::from_u8(ty) else {
            return Err(invalid_first_byte(first));
        };
        let mut remaining_length = 0usize;
        for (i, &byte) in src[1..].iter().take(4).enumerate() {
            remaining_length |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                let header = Self {
                    packet_type,
                    flags,
                    header_len: i + 2,
                    remaining_length,
                };
                if header.packet_len() > max_packet_size {
                    return Err(DecodeError::PacketTooLarge {
                        size: header.packet_len(),
                        max: max_packet_size,
                    });
                }
                return Ok(Some(header));
            }
        }
        // Section 2.2.3: the remaining length takes at most four bytes.
        if src.len() >= 5 {
            return Err(DecodeError::MalformedRemainingLength);
        }
        Ok(None)
    }
}

/// For each packet type (the high nibble of the first byte), one bit per value of the flags
/// (the low nibble) that the type allows: none for the reserved types 0 and 15, all for
/// PUBLISH (whose flags [`Publish`](crate::Publish) checks), and the one value of table 2.2
/// for every other type.
const ALLOWED_FLAGS: [u16; 16] = {
    let mut allowed = [0u16; 16];
    let mut ty = 1;
    while ty < 15 {
        allowed[ty] = match PacketType::from_u8(ty as u8) {
            Ok(packet_type) => match packet_type.fixed_flags() {
                Some(fixed) => 1 << fixed,
                None => u16::MAX,
            },
            Err(_) => 0,
        };
        ty += 1;
    }
    allowed
};

/// Why `first`, whose type or flags [`ALLOWED_FLAGS`] refuses, is not the first byte of a
/// fixed header.
#[cold]
fn invalid_first_byte(first: u8) -> DecodeError {
    let (ty, flags) = (first >> 4, first & 0x0f);
    match PacketType::from_u8(ty) {
        // [MQTT-2.2.2-2] If invalid flags are received, the receiver MUST close the Network
        // Connection.
        Ok(packet_type) => DecodeError::InvalidFlags { packet_type, flags },
        Err(e) => e,
    }
}

/// Number of bytes the remaining length `len` takes on the wire: 1 to 4.
#[inline]
pub(crate) const fn remaining_length_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a fixed header; `remaining_length` must not exceed [`MAX_REMAINING_LENGTH`].
///
/// The header of a packet under 16 KiB is built in a register and written whole. Building it
/// in a byte array one byte at a time and copying that out would make the processor wait:
/// a wide load of bytes just stored one by one cannot be served from the store buffer.
#[inline(always)]
pub(crate) fn write_fixed_header(dst: &mut impl BufMut, first_byte: u8, remaining_length: usize) {
    match remaining_length {
        0..=0x7f => dst.put_u16(u16::from(first_byte) << 8 | remaining_length as u16),
        0x80..=0x3fff => {
            dst.put_u8(first_byte);
            dst.put_u16(
                (remaining_length as u16 & 0x7f | 0x80) << 8 | (remaining_length >> 7) as u16,
            );
        }
        _ => {
            let mut buf = [0u8; 5];
            let n = encode_fixed_header(&mut buf, first_byte, remaining_length);
            dst.put_slice(&buf[..n]);
        }
    }
}

/// Encodes a fixed header at the start of `buf` and returns its length, 2 to 5 bytes.
#[inline]
pub(crate) fn encode_fixed_header(
    buf: &mut [u8],
    first_byte: u8,
    remaining_length: usize,
) -> usize {
    debug_assert!(remaining_length <= MAX_REMAINING_LENGTH);
    buf[0] = first_byte;
    let mut n = 1;
    let mut len = remaining_length;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            buf[n] = byte;
            return n + 1;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_boundaries_round_trip() {
        for len in [
            0,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MAX_REMAINING_LENGTH,
        ] {
            let mut buf = Vec::new();
            write_fixed_header(&mut buf, 0xd0, len);
            assert_eq!(buf.len(), 1 + remaining_length_len(len));
            let header = FixedHeader::parse(&buf, usize::MAX).unwrap().unwrap();
            assert_eq!(header.remaining_length, len);
            assert_eq!(header.header_len, buf.len());
        }
    }

    #[test]
    fn five_byte_remaining_length_is_malformed() {
        assert_eq!(
            FixedHeader::parse(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], usize::MAX),
            Err(DecodeError::MalformedRemainingLength)
        );
        assert_eq!(
            FixedHeader::parse(&[0x30, 0xff, 0xff, 0xff], usize::MAX),
            Ok(None)
        );
    }
}
