//! SUBACK (section 3.9): the server's answer to SUBSCRIBE, one return code per filter.

use std::fmt;

use bytes::BufMut;

use crate::{
    primitive::{invalid, packet_id, parse_body},
    DecodeError, PacketId, PacketType, QoS, ValueError,
};

/// SUBACK: the outcome of each subscription of a SUBSCRIBE, in the same order [MQTT-3.8.4-5],
/// [MQTT-3.9.3-1].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubAck {
    /// The identifier of the SUBSCRIBE this answers.
    pub packet_id: PacketId,
    return_codes: Vec<SubscribeReturnCode>,
}

/// The outcome of one subscription (section 3.9.3); MQTT 5.0's reason codes will be added as
/// variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SubscribeReturnCode {
    /// Granted, at this maximum QoS (0x00, 0x01, 0x02).
    Success(QoS),
    /// Refused (0x80).
    Failure,
}

impl SubscribeReturnCode {
    const FAILURE: u8 = 0x80;

    /// The return code `value`; [MQTT-3.9.3-2] SUBACK return codes other than 0x00, 0x01,
    /// 0x02 and 0x80 are reserved and MUST NOT be used.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            Self::FAILURE => Some(Self::Failure),
            other => match QoS::from_u8(other) {
                Ok(qos) => Some(Self::Success(qos)),
                Err(_) => None,
            },
        }
    }

    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Success(qos) => qos as u8,
            Self::Failure => Self::FAILURE,
        }
    }
}

impl SubAck {
    /// A SUBACK with `return_codes`, which must not be empty: a SUBSCRIBE has at least one
    /// filter and the SUBACK answers each [MQTT-3.8.4-5].
    pub fn new(
        packet_id: PacketId,
        return_codes: Vec<SubscribeReturnCode>,
    ) -> Result<Self, ValueError> {
        if return_codes.is_empty() {
            return Err(ValueError::EmptyList);
        }
        Ok(Self {
            packet_id,
            return_codes,
        })
    }

    /// The return codes, one per filter of the SUBSCRIBE, in its order; never empty.
    pub fn return_codes(&self) -> &[SubscribeReturnCode] {
        &self.return_codes
    }

    pub(crate) fn body_len(&self) -> usize {
        2 + self.return_codes.len()
    }

    pub(crate) const fn first_byte(&self) -> u8 {
        (PacketType::SubAck as u8) << 4
    }

    pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
        dst.put_u16(self.packet_id.get());
        for code in &self.return_codes {
            dst.put_u8(code.to_u8());
        }
    }
}

/// SUBACK borrowed from the bytes it was decoded from, by
/// [`Codec::decode_ref`](crate::Codec::decode_ref): the counterpart of [`SubAck`].
///
/// Every return code was checked when the packet was parsed; [`SubAckRef::return_codes`] reads
/// them from the packet's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SubAckRef<'a> {
    /// The identifier of the SUBSCRIBE this answers.
    pub packet_id: PacketId,
    /// One or more valid return codes.
    codes: &'a [u8],
}

impl<'a> SubAckRef<'a> {
    /// The return codes, one per filter of the SUBSCRIBE, in its order; never empty.
    pub fn return_codes(&self) -> ReturnCodes<'a> {
        ReturnCodes(self.codes.iter())
    }

    /// Number of return codes; never 0.
    pub const fn len(&self) -> usize {
        self.codes.len()
    }

    /// Always `false`: a SUBACK answers at least one filter.
    pub const fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The owned SUBACK (it borrows nothing from the frame).
    pub fn to_suback(&self) -> SubAck {
        SubAck {
            packet_id: self.packet_id,
            return_codes: self.return_codes().collect(),
        }
    }

    /// Parses the whole `body` of a SUBACK, checking every return code.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        parse_body(PacketType::SubAck, body, |i| {
            let (codes, packet_id) = packet_id(i)?;
            if codes.is_empty() {
                return invalid(DecodeError::EmptySubAck);
            }
            // [MQTT-3.9.3-2] SUBACK return codes other than 0x00, 0x01, 0x02 and 0x80 are
            // reserved and MUST NOT be used.
            if let Some(&code) = codes
                .iter()
                .find(|&&code| SubscribeReturnCode::from_u8(code).is_none())
            {
                return invalid(DecodeError::InvalidSubAckReturnCode(code));
            }
            Ok((&codes[codes.len()..], Self { packet_id, codes }))
        })
    }
}

impl fmt::Debug for SubAckRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubAckRef")
            .field("packet_id", &self.packet_id)
            .field("return_codes", &self.return_codes())
            .finish()
    }
}

/// The return codes of a [`SubAckRef`].
#[derive(Clone)]
pub struct ReturnCodes<'a>(std::slice::Iter<'a, u8>);

impl Iterator for ReturnCodes<'_> {
    type Item = SubscribeReturnCode;

    #[inline]
    fn next(&mut self) -> Option<SubscribeReturnCode> {
        // Checked when the packet was parsed; an invalid code would end the iteration.
        self.0
            .next()
            .and_then(|&code| SubscribeReturnCode::from_u8(code))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ReturnCodes<'_> {}

impl std::iter::FusedIterator for ReturnCodes<'_> {}

impl fmt::Debug for ReturnCodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for SubAck {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let packet_id = u.arbitrary()?;
        let mut return_codes = vec![u.arbitrary()?];
        return_codes.extend(
            u.arbitrary_iter::<SubscribeReturnCode>()?
                .take(20)
                .collect::<Result<Vec<_>, _>>()?,
        );
        Ok(Self {
            packet_id,
            return_codes,
        })
    }
}
