//! The client's errors: [`ClientError`] for calls, [`PublishError`] for a message's outcome.

use std::{io, sync::Arc};

use haka_codec::ValueError;
use haka_session::{ProtocolError, SessionError, StoreError};

/// Why a call on [`Client`](crate::Client) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The broker URL cannot be used: its scheme, host or port.
    #[error("invalid broker URL: {0}")]
    Url(String),
    /// A topic, filter, client identifier or credential is not valid MQTT.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The session refused the command: the queue is full, all packet identifiers are in
    /// use, the packet is too large. Nothing was queued.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The store could not be opened, or could not make the message durable (then it was
    /// not queued).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS configuration is invalid.
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(#[from] haka_tls::TlsError),
    /// An `mqtts://` URL, but the crate was built without its `tls` feature.
    #[error("mqtts:// needs the `tls` feature of the haka crate")]
    TlsDisabled,
    /// The client has stopped: [`Client::disconnect`](crate::Client::disconnect) completed,
    /// or the driver ended.
    #[error("the client has stopped")]
    Closed,
}

/// Why a published message did not complete.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The broker refused the message the same way on several connections in a row, so the
    /// client gave up on it (it is no longer stored); the rest of the queue went on.
    #[error("the broker refused the message {failures} times: {cause}")]
    Refused {
        /// What the broker did each time.
        cause: Refusal,
        /// How many connections it failed on.
        failures: u32,
    },
    /// The session did not take the message (its store failed): it was not queued.
    #[error("the message was not queued: {0}")]
    NotQueued(String),
    /// The client stopped before the message completed. With a durable store the message is
    /// still stored and is sent by the next client opened on it.
    #[error("the client stopped before the message completed")]
    Closed,
}

/// What a broker did to refuse a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// It answered with a packet that breaks the protocol (PUBACK for QoS 2, ...).
    #[error("{0}")]
    Protocol(ProtocolError),
    /// It closed the connection with this message in flight, before completing anything.
    #[error("connection closed with the message in flight")]
    ConnectionClosed,
}

/// Why connecting to the broker failed, as [`Event::ConnectFailed`](crate::Event) reports
/// it.
pub type ConnectError = Arc<io::Error>;
