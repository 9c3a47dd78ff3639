//! The codec's errors: what can be wrong with a value, with bytes being decoded, and with a
//! packet being encoded.
//!
//! Every variant names one rule of the MQTT 3.1.1 specification (its tag, where the
//! specification gives one, is in the variant's documentation), so that a caller can tell the
//! peer's mistakes apart without parsing messages.

use crate::PacketType;

/// A value that the MQTT 3.1.1 specification does not allow where it was offered.
///
/// Returned by the constructors of the validated types ([`MqttString`](crate::MqttString),
/// [`TopicName`](crate::TopicName), [`TopicFilter`](crate::TopicFilter),
/// [`PacketId`](crate::PacketId), [`QoS`](crate::QoS), ...), so that a packet holding an invalid
/// value cannot be built in the first place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// A string longer than 65,535 bytes, which its two-byte length prefix cannot carry.
    #[error("string of {len} bytes exceeds the 65,535-byte limit")]
    StringTooLong {
        /// Length of the string in bytes.
        len: usize,
    },
    /// Binary data (a will payload, a password) longer than 65,535 bytes.
    #[error("binary data of {len} bytes exceeds the 65,535-byte limit")]
    BinaryTooLong {
        /// Length of the data in bytes.
        len: usize,
    },
    /// Bytes that are not well-formed UTF-8 [MQTT-1.5.3-1].
    #[error("string is not well-formed UTF-8 [MQTT-1.5.3-1]")]
    InvalidUtf8,
    /// A string containing U+0000 [MQTT-1.5.3-2].
    #[error("string contains U+0000 [MQTT-1.5.3-2]")]
    NullCharacter,
    /// An empty topic name or topic filter [MQTT-4.7.3-1].
    #[error("topic is empty [MQTT-4.7.3-1]")]
    EmptyTopic,
    /// A topic name containing `+` or `#` [MQTT-3.3.2-2].
    #[error("topic name contains a wildcard [MQTT-3.3.2-2]")]
    WildcardInTopicName,
    /// A `#` that is not alone in the last level of a filter [MQTT-4.7.1-2].
    #[error("multi-level wildcard `#` must be alone in the last level [MQTT-4.7.1-2]")]
    MisplacedMultiLevelWildcard,
    /// A `+` that does not occupy a whole level of a filter [MQTT-4.7.1-3].
    #[error("single-level wildcard `+` must occupy an entire level [MQTT-4.7.1-3]")]
    MisplacedSingleLevelWildcard,
    /// Packet identifier 0 [MQTT-2.3.1-1].
    #[error("packet identifier 0 is not allowed [MQTT-2.3.1-1]")]
    ZeroPacketId,
    /// A QoS value other than 0, 1 or 2 [MQTT-3.3.1-4].
    #[error("QoS {0} is not 0, 1 or 2 [MQTT-3.3.1-4]")]
    InvalidQoS(u8),
    /// A SUBSCRIBE, UNSUBSCRIBE or SUBACK without a single entry
    /// [MQTT-3.8.3-3], [MQTT-3.10.3-2].
    #[error("list must hold at least one entry [MQTT-3.8.3-3], [MQTT-3.10.3-2]")]
    EmptyList,
}

/// Why bytes received from a peer are not a valid MQTT 3.1.1 packet.
///
/// A decoder never panics and never allocates what a length field asks for; it returns one of
/// these instead. Any of them means the peer broke the protocol: close the connection
/// [MQTT-4.8.0-1] (a server answering a CONNECT sends [`DecodeError::connack_code`] first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Packet type 0 or 15, which MQTT 3.1.1 reserves (section 2.2.1).
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    /// Flag bits of the fixed header that differ from the values the specification fixes for
    /// this packet type [MQTT-2.2.2-1], [MQTT-2.2.2-2].
    #[error("invalid fixed-header flags {flags:#06b} for {packet_type:?} [MQTT-2.2.2-2]")]
    InvalidFlags {
        /// The packet type of the fixed header.
        packet_type: PacketType,
        /// The four flag bits received.
        flags: u8,
    },
    /// A remaining length whose encoding continues past its fourth byte (section 2.2.3).
    #[error("remaining length is encoded in more than four bytes")]
    MalformedRemainingLength,
    /// A packet larger than the configured maximum, refused from its fixed header before any
    /// of its body was buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Size of the whole packet announced by the fixed header.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A PUBLISH with both QoS bits set [MQTT-3.3.1-4].
    #[error("PUBLISH with QoS 3 [MQTT-3.3.1-4]")]
    InvalidQoS,
    /// A QoS 0 PUBLISH with the DUP flag set [MQTT-3.3.1-2].
    #[error("QoS 0 PUBLISH with DUP set [MQTT-3.3.1-2]")]
    DupOnQos0,
    /// A packet identifier of 0 [MQTT-2.3.1-1].
    #[error("packet identifier 0 [MQTT-2.3.1-1]")]
    ZeroPacketId,
    /// A string that is not well-formed UTF-8 [MQTT-1.5.3-1].
    #[error("string is not well-formed UTF-8 [MQTT-1.5.3-1]")]
    InvalidUtf8,
    /// A string containing U+0000 [MQTT-1.5.3-2].
    #[error("string contains U+0000 [MQTT-1.5.3-2]")]
    NullCharacter,
    /// A topic name containing `+` or `#` [MQTT-3.3.2-2].
    #[error("topic name contains a wildcard [MQTT-3.3.2-2]")]
    WildcardInTopicName,
    /// A `#` that is not alone in the last level of a filter [MQTT-4.7.1-2].
    #[error("multi-level wildcard `#` must be alone in the last level [MQTT-4.7.1-2]")]
    MisplacedMultiLevelWildcard,
    /// A `+` that does not occupy a whole level of a filter [MQTT-4.7.1-3].
    #[error("single-level wildcard `+` must occupy an entire level [MQTT-4.7.1-3]")]
    MisplacedSingleLevelWildcard,
    /// An empty topic name or topic filter [MQTT-4.7.3-1].
    #[error("empty topic [MQTT-4.7.3-1]")]
    EmptyTopic,
    /// A SUBSCRIBE without any topic filter [MQTT-3.8.3-3].
    #[error("SUBSCRIBE without a topic filter [MQTT-3.8.3-3]")]
    EmptySubscribe,
    /// An UNSUBSCRIBE without any topic filter [MQTT-3.10.3-2].
    #[error("UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]")]
    EmptyUnsubscribe,
    /// A SUBACK without any return code (it must carry one per filter, [MQTT-3.8.4-5]).
    #[error("SUBACK without a return code [MQTT-3.8.4-5]")]
    EmptySubAck,
    /// A requested-QoS byte of SUBSCRIBE with reserved bits set or QoS 3 [MQTT-3.8.3-4].
    #[error("invalid SUBSCRIBE options byte {0:#04x} [MQTT-3.8.3-4]")]
    InvalidSubscriptionOptions(u8),
    /// A SUBACK return code other than 0x00, 0x01, 0x02 and 0x80 [MQTT-3.9.3-2].
    #[error("invalid SUBACK return code {0:#04x} [MQTT-3.9.3-2]")]
    InvalidSubAckReturnCode(u8),
    /// A CONNECT whose protocol name is not `MQTT` [MQTT-3.1.2-1].
    #[error("protocol name is not \"MQTT\" [MQTT-3.1.2-1]")]
    InvalidProtocolName,
    /// A CONNECT whose protocol level is not 4 (MQTT 3.1.1) [MQTT-3.1.2-2].
    #[error("unsupported protocol level {0} [MQTT-3.1.2-2]")]
    UnsupportedProtocolLevel(u8),
    /// A CONNECT with its reserved flag bit set [MQTT-3.1.2-3].
    #[error("CONNECT reserved flag is set [MQTT-3.1.2-3]")]
    ConnectReservedFlag,
    /// A CONNECT with will QoS or will retain set but no will [MQTT-3.1.2-11],
    /// [MQTT-3.1.2-13], [MQTT-3.1.2-15].
    #[error("will QoS or will retain set without a will [MQTT-3.1.2-13], [MQTT-3.1.2-15]")]
    WillFlagsWithoutWill,
    /// A CONNECT with will QoS 3 [MQTT-3.1.2-14].
    #[error("will QoS 3 [MQTT-3.1.2-14]")]
    InvalidWillQoS,
    /// A CONNECT with the password flag but not the user name flag [MQTT-3.1.2-22].
    #[error("password without user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    /// A CONNECT with a zero-length client identifier and clean session 0 [MQTT-3.1.3-7].
    #[error("empty client identifier requires clean session [MQTT-3.1.3-7]")]
    EmptyClientIdWithoutCleanSession,
    /// Will message or password longer than its two-byte length allows (cannot happen on the
    /// wire; kept for completeness of the mapping from [`ValueError`]).
    #[error("binary field exceeds 65,535 bytes")]
    BinaryTooLong,
    /// A CONNACK whose reserved acknowledge-flag bits 7-1 are not 0 (section 3.2.2.1).
    #[error("CONNACK reserved flags {0:#04x} are set")]
    InvalidConnAckFlags(u8),
    /// A CONNACK return code above 5 (section 3.2.2.3 reserves them).
    #[error("reserved CONNACK return code {0}")]
    InvalidConnectReturnCode(u8),
    /// A CONNACK refusing the connection with session present set [MQTT-3.2.2-4].
    #[error("session present set on a refused connection [MQTT-3.2.2-4]")]
    SessionPresentOnRefusal,
    /// The body ended before a field the packet type requires.
    #[error("{0:?} body ends before its last field")]
    Truncated(PacketType),
    /// Bytes left over inside the packet after its last field.
    #[error("{packet_type:?} has {extra} unexpected bytes after its last field")]
    TrailingBytes {
        /// The packet type.
        packet_type: PacketType,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Why a packet cannot be encoded.
///
/// Values are validated when they are built, so what is left are the limits that depend on the
/// whole packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet would exceed the configured maximum packet size, or the 268,435,455-byte
    /// remaining length that the fixed header can express (section 2.2.3).
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Size of the whole encoded packet.
        size: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// A CONNECT with an empty client identifier and clean session 0 [MQTT-3.1.3-7].
    #[error("empty client identifier requires clean session [MQTT-3.1.3-7]")]
    EmptyClientIdWithoutCleanSession,
}

impl DecodeError {
    /// The CONNACK return code a server must send before closing the connection, for the
    /// CONNECT errors where the specification asks for one: 0x01 for an unsupported protocol
    /// level [MQTT-3.1.2-2], 0x02 for an empty client id without clean session [MQTT-3.1.3-8].
    pub fn connack_code(&self) -> Option<crate::ConnectReturnCode> {
        match self {
            Self::UnsupportedProtocolLevel(_) => {
                Some(crate::ConnectReturnCode::UnacceptableProtocolVersion)
            }
            Self::EmptyClientIdWithoutCleanSession => {
                Some(crate::ConnectReturnCode::IdentifierRejected)
            }
            _ => None,
        }
    }
}

impl From<ValueError> for DecodeError {
    fn from(e: ValueError) -> Self {
        match e {
            ValueError::StringTooLong { .. } | ValueError::InvalidUtf8 => Self::InvalidUtf8,
            ValueError::BinaryTooLong { .. } => Self::BinaryTooLong,
            ValueError::NullCharacter => Self::NullCharacter,
            ValueError::EmptyTopic => Self::EmptyTopic,
            ValueError::WildcardInTopicName => Self::WildcardInTopicName,
            ValueError::MisplacedMultiLevelWildcard => Self::MisplacedMultiLevelWildcard,
            ValueError::MisplacedSingleLevelWildcard => Self::MisplacedSingleLevelWildcard,
            ValueError::ZeroPacketId => Self::ZeroPacketId,
            ValueError::InvalidQoS(_) => Self::InvalidQoS,
            // Never produced while decoding: each list's parser reports its own packet's rule
            // (`EmptySubscribe`, `EmptyUnsubscribe`, `EmptySubAck`).
            ValueError::EmptyList => Self::EmptySubscribe,
        }
    }
}
