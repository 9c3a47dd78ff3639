//! The errors of the session layer: [`SessionError`] for commands, [`DisconnectReason`] and
//! [`ProtocolError`] for connections that end.

use haka_codec::{ConnectReturnCode, DecodeError, EncodeError, PacketType};

use crate::{store::StoreError, MessageId};

/// Why a command ([`Session::publish`](crate::Session::publish),
/// [`Session::subscribe`](crate::Session::subscribe), ...) was refused. A refused command
/// changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The queue is at one of its [limits](crate::Config::queue_limits): back-pressure. Retry
    /// once messages have completed.
    #[error("the queue is full ({0})")]
    QueueFull(QueueLimit),
    /// Every packet identifier from 1 to 65,535 is in use by a message in flight or a pending
    /// request: back-pressure. Retry once one completes.
    #[error("all 65,535 packet identifiers are in use")]
    PacketIdsExhausted,
    /// The packet would exceed the outgoing size limit.
    #[error("cannot encode the packet: {0}")]
    Encode(#[from] EncodeError),
    /// A SUBSCRIBE or UNSUBSCRIBE needs at least one topic filter [MQTT-3.8.3-3],
    /// [MQTT-3.10.3-2].
    #[error("a subscription request needs at least one topic filter")]
    NoTopicFilters,
    /// [MQTT-3.1.3-7] A zero-byte client identifier needs a clean session.
    #[error("an empty client identifier needs a clean session")]
    EmptyClientIdWithoutCleanSession,
    /// The acknowledgement does not match a received message awaiting one: already given,
    /// or from a connection whose messages the broker will deliver again.
    #[error("no received message awaits this acknowledgement")]
    UnknownAck,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which queue limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueLimit {
    /// The number of queued messages.
    #[error("{0} messages")]
    Messages(usize),
    /// The bytes of the queued messages.
    #[error("{0} bytes")]
    Bytes(usize),
}

/// Why a connection ended, as [`Event::Disconnected`](crate::Event::Disconnected) reports it.
///
/// Whatever the reason, the queue is intact: stored messages are resent on the next
/// connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// [`Session::disconnect`](crate::Session::disconnect) completed: DISCONNECT was sent and
    /// the transport closed.
    #[error("disconnected on request")]
    Requested,
    /// The transport closed or failed ([`Session::handle_connection_lost`](crate::Session::handle_connection_lost)).
    #[error("connection lost")]
    ConnectionLost,
    /// The broker refused the connection with this CONNACK return code (1 to 5).
    #[error("connection refused: {0:?}")]
    Refused(ConnectReturnCode),
    /// No CONNACK came within [`Config::connack_wait`](crate::Config::connack_wait).
    #[error("no CONNACK in time")]
    ConnAckTimeout,
    /// Nothing was received within [`Config::idle_timeout`](crate::Config::idle_timeout).
    #[error("nothing received in time")]
    IdleTimeout,
    /// The broker sent bytes that are not a valid MQTT 3.1.1 packet.
    #[error("undecodable packet from the broker: {0}")]
    Decode(#[from] DecodeError),
    /// The broker sent a valid packet that breaks the protocol.
    #[error("protocol violation by the broker: {0}")]
    Protocol(#[from] ProtocolError),
    /// The store could not commit; the connection is closed so that nothing that is not
    /// durable gets acknowledged. [`Event::StoreFailed`](crate::Event::StoreFailed) carries the
    /// store's error.
    #[error("the store failed")]
    StoreFailed,
}

/// A valid packet from the broker that breaks the protocol's rules. The session closes the
/// connection [MQTT-4.8.0-1]; the queue stays as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A packet only clients send (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT).
    #[error("{0:?} is never sent by a server")]
    ClientPacket(PacketType),
    /// A packet other than CONNACK came before CONNACK.
    #[error("{0:?} before CONNACK")]
    BeforeConnAck(PacketType),
    /// A second CONNACK on one connection.
    #[error("second CONNACK")]
    SecondConnAck,
    /// [MQTT-3.2.2-1] A CONNACK with session present in answer to a clean-session CONNECT.
    #[error("session present in answer to a clean session")]
    SessionPresentOnCleanSession,
    /// An acknowledgement for a packet identifier that nothing is waiting on.
    #[error("{packet:?} for packet identifier {packet_id}, which is not in use")]
    UnknownPacketId {
        /// The acknowledgement.
        packet: PacketType,
        /// Its packet identifier.
        packet_id: u16,
    },
    /// An acknowledgement of the wrong kind for the message in flight under its identifier:
    /// PUBACK for QoS 2, PUBREC for QoS 1, PUBCOMP before PUBREC.
    #[error("{packet:?} does not fit message {message} (QoS {qos})")]
    WrongAck {
        /// The acknowledgement.
        packet: PacketType,
        /// The message it was for.
        message: MessageId,
        /// The message's QoS, as a number.
        qos: u8,
    },
    /// A SUBACK whose number of return codes is not the number of filters requested
    /// [MQTT-3.8.4-5].
    #[error("SUBACK with {got} return codes for {expected} filters")]
    SubAckCount {
        /// Filters in the SUBSCRIBE.
        expected: usize,
        /// Return codes in the SUBACK.
        got: usize,
    },
}
