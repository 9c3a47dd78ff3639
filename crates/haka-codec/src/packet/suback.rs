//! SUBACK (section 3.9): the server's answer to SUBSCRIBE, one return code per filter.

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

    pub(crate) fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        parse_body(PacketType::SubAck, body, |i| {
            let (i, packet_id) = packet_id(i)?;
            if i.is_empty() {
                return invalid(DecodeError::EmptySubAck);
            }
            let mut return_codes = Vec::with_capacity(i.len());
            for &code in i {
                match SubscribeReturnCode::from_u8(code) {
                    Some(code) => return_codes.push(code),
                    None => return invalid(DecodeError::InvalidSubAckReturnCode(code)),
                }
            }
            Ok((
                &i[i.len()..],
                Self {
                    packet_id,
                    return_codes,
                },
            ))
        })
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
