//! [`Event`]: what the session tells the application.

use haka_codec::{PacketId, Publish, QoS, SubscribeReturnCode};

use crate::{store::StoreError, DisconnectReason, MessageId, RequestId};

/// Something the application should know, from [`Session::poll_event`](crate::Session::poll_event).
///
/// These are the points in time at which the original client called its callbacks.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The broker accepted the connection. `session_present` says whether it resumed the
    /// session of an earlier connection (section 3.2.2.2).
    Connected {
        /// Whether the broker had a session for this client.
        session_present: bool,
    },
    /// A message from the broker.
    Message(Incoming),
    /// The broker's PUBREC for QoS 2 message `id` (the original's `on_pubrec`): it has the
    /// message; its PUBREL is queued.
    ///
    /// Like [`Event::PublishCompleted`], it can come a second time for the same message after
    /// a restart, if the process ended before the store committed the change.
    PublishReceived {
        /// The message.
        id: MessageId,
    },
    /// Message `id` is done and has left the queue: a QoS 0 message was written, a QoS 1
    /// message got its PUBACK, a QoS 2 message its PUBCOMP.
    ///
    /// If the process ends before the store commits the removal, the message is resent after
    /// the restart and completes again: at least once, never lost.
    PublishCompleted {
        /// The message.
        id: MessageId,
        /// Its QoS.
        qos: QoS,
    },
    /// The SUBACK of subscription request `request`: one result per filter, in the order
    /// of the request; [`SubscribeReturnCode::Failure`] is a refused filter.
    Subscribed {
        /// The request.
        request: RequestId,
        /// The granted QoS or the refusal, per filter.
        results: Vec<SubscribeReturnCode>,
    },
    /// The UNSUBACK of request `request`.
    Unsubscribed {
        /// The request.
        request: RequestId,
    },
    /// The connection ended; close the transport. The queue is kept for the next
    /// connection.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// The store failed to record a change or to commit. Nothing that depends on the failed
    /// change is sent; changes still pending are retried at the next commit (the polls retry
    /// after a new change or connection, [`Session::commit`](crate::Session::commit) at
    /// once). A connection in any state is also closed, with
    /// [`DisconnectReason::StoreFailed`], so that the broker delivers again whatever was not
    /// acknowledged.
    StoreFailed(StoreError),
}

/// A message received from the broker.
#[derive(Debug)]
pub struct Incoming {
    /// The PUBLISH as received; [`Publish::payload`] shares the read buffer.
    pub publish: Publish,
    /// With [manual acknowledgement](crate::Config::manual_ack), the token to pass to
    /// [`Session::ack`](crate::Session::ack) once the message is processed; `None` for QoS 0
    /// or when the session acknowledges itself.
    pub ack: Option<AckToken>,
}

/// The acknowledgement owed for a received QoS 1 or 2 message, with
/// [manual acknowledgement](crate::Config::manual_ack).
///
/// A token belongs to the [`Session`](crate::Session) that handed out its message; a new
/// session (after a restart) knows nothing of it, and the broker delivers the message
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckToken {
    pub(crate) packet_id: PacketId,
    pub(crate) qos: QoS,
    /// Which received message it is: unique, so a token never acknowledges another message
    /// under the same packet identifier, on this connection or a later one.
    pub(crate) serial: u64,
}

impl AckToken {
    /// The packet identifier of the message.
    pub fn packet_id(&self) -> PacketId {
        self.packet_id
    }

    /// The QoS of the message.
    pub fn qos(&self) -> QoS {
        self.qos
    }
}
