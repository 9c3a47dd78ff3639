//! Quality of service levels (section 4.3).

use crate::ValueError;

/// A quality of service level: how hard the sender and receiver work to deliver a message.
///
/// Only 0, 1 and 2 exist; 3 cannot be built [MQTT-3.3.1-4].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: delivered at most once, with no acknowledgement.
    AtMostOnce = 0,
    /// QoS 1: delivered at least once; acknowledged with PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: delivered exactly once; PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for `value`, if it is 0, 1 or 2.
    ///
    /// ```
    /// # use haka_codec::{QoS, ValueError};
    /// assert_eq!(QoS::try_from(1), Ok(QoS::AtLeastOnce));
    /// assert_eq!(QoS::try_from(3), Err(ValueError::InvalidQoS(3)));
    /// ```
    pub const fn from_u8(value: u8) -> Result<Self, ValueError> {
        match value {
            0 => Ok(Self::AtMostOnce),
            1 => Ok(Self::AtLeastOnce),
            2 => Ok(Self::ExactlyOnce),
            // [MQTT-3.3.1-4] A PUBLISH Packet MUST NOT have both QoS bits set to 1.
            other => Err(ValueError::InvalidQoS(other)),
        }
    }
}

impl TryFrom<u8> for QoS {
    type Error = ValueError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::from_u8(value)
    }
}

impl From<QoS> for u8 {
    fn from(qos: QoS) -> Self {
        qos as u8
    }
}
