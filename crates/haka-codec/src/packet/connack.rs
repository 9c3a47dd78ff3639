//! CONNACK (section 3.2): the server's answer to CONNECT.

use bytes::BufMut;

use crate::{
    primitive::{invalid, parse_body, u8},
    DecodeError, PacketType,
};

/// CONNACK: whether the server accepted the connection, and whether it kept a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ConnAck {
    /// Whether the server holds a session from an earlier connection (section 3.2.2.2).
    /// Always `false` when the connection is refused [MQTT-3.2.2-4].
    session_present: bool,
    /// The server's answer.
    code: ConnectReturnCode,
}

impl ConnAck {
    /// A CONNACK accepting the connection.
    pub const fn accepted(session_present: bool) -> Self {
        Self {
            session_present,
            code: ConnectReturnCode::Accepted,
        }
    }

    /// A CONNACK refusing the connection with `code`; session present is 0 [MQTT-3.2.2-4].
    /// A `code` of [`ConnectReturnCode::Accepted`] gives an acceptance without a session.
    pub const fn refused(code: ConnectReturnCode) -> Self {
        Self {
            session_present: false,
            code,
        }
    }

    /// Whether the server resumed a stored session.
    pub const fn session_present(&self) -> bool {
        self.session_present
    }

    /// The return code.
    pub const fn code(&self) -> ConnectReturnCode {
        self.code
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        parse_body(PacketType::ConnAck, body, |i| {
            let (i, flags) = u8(i)?;
            // Section 3.2.2.1: bits 7-1 of the acknowledge flags are reserved and MUST be 0.
            if flags & 0xfe != 0 {
                return invalid(DecodeError::InvalidConnAckFlags(flags));
            }
            let (i, code) = u8(i)?;
            let Some(code) = ConnectReturnCode::from_u8(code) else {
                return invalid(DecodeError::InvalidConnectReturnCode(code));
            };
            let session_present = flags & 1 == 1;
            // [MQTT-3.2.2-4] If a server sends a CONNACK packet containing a non-zero return
            // code it MUST set Session Present to 0.
            if session_present && code != ConnectReturnCode::Accepted {
                return invalid(DecodeError::SessionPresentOnRefusal);
            }
            Ok((
                i,
                Self {
                    session_present,
                    code,
                },
            ))
        })
    }

    pub(crate) const fn body_len(&self) -> usize {
        2
    }

    pub(crate) const fn first_byte(&self) -> u8 {
        (PacketType::ConnAck as u8) << 4
    }

    pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
        dst.put_u8(u8::from(self.session_present));
        dst.put_u8(self.code as u8);
    }
}

/// The CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3, table 3.1); MQTT 5.0's reason
/// codes will be added as variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is correct UTF-8 but not allowed by the server.
    IdentifierRejected = 2,
    /// 3: the network connection was made but the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the user name or password is malformed.
    BadUserNameOrPassword = 4,
    /// 5: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The return code `value`, if MQTT 3.1.1 defines it (6-255 are reserved).
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for ConnAck {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let code: ConnectReturnCode = u.arbitrary()?;
        Ok(match code {
            ConnectReturnCode::Accepted => Self::accepted(u.arbitrary()?),
            refused => Self::refused(refused),
        })
    }
}
