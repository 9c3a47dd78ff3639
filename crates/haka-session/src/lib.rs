//! The sans-IO MQTT 3.1.1 client session of [Haka](https://github.com/haka-mqtt/haka): the
//! send path, the receive path, keepalive and the connection lifecycle, over a QoS queue
//! that survives reconnects, restarts and crashes.
//!
//! A [`Session`] does no I/O and reads no clock. Bytes and time go in through `handle_*`
//! methods; bytes to write, events and the next timer come out of `poll_*` methods. Any
//! transport and any event loop can drive it: an async client drives it over tokio, a test
//! drives it in virtual time, an embedded loop drives it over its own socket.
//!
//! ```
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use haka_codec::{Codec, ConnAck, MqttString, Packet, PubAck, QoS, TopicName};
//! use haka_session::{Config, Event, MemoryStore, Session};
//!
//! let mut session = Session::new(Config::new(MqttString::new("sensor-1")?), MemoryStore::new())?;
//! let id = session.publish(TopicName::new("sensors/1/temp")?, QoS::AtLeastOnce, false, "21.5")?;
//!
//! // A transport is up: CONNECT and, pipelined behind it, the PUBLISH.
//! let now = Instant::now();
//! session.handle_connected(now);
//! let mut wire = BytesMut::new();
//! while session.poll_transmit(now, &mut wire) > 0 {}
//! let codec = Codec::new();
//! assert!(matches!(codec.decode(&mut wire)?, Some(Packet::Connect(_))));
//! let Some(Packet::Publish(publish)) = codec.decode(&mut wire)? else { panic!() };
//!
//! // The broker answers.
//! session.handle_packet(now, ConnAck::accepted(false).into());
//! session.handle_packet(now, PubAck::new(publish.packet_id().unwrap()).into());
//! assert!(matches!(session.poll_event(), Some(Event::Connected { session_present: false })));
//! assert!(matches!(session.poll_event(), Some(Event::PublishCompleted { id: done, .. }) if done == id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The parts
//!
//! - [`Session`]: the state machine, with its driving contract.
//! - [`Config`]: CONNECT options, timers, the in-flight window, queue limits.
//! - [`Event`]: what the application is told: connected, message received, publish
//!   completed, subscription results, disconnected with a typed [`DisconnectReason`].
//! - [`Store`]: where the QoS queue is persisted; [`MemoryStore`] and the durable
//!   [`FileStore`], a checksummed log with group commit, compacted into two files that take
//!   turns.
//!
//! # Guarantees
//!
//! - A QoS 1 or 2 message accepted by [`Session::publish`] is never dropped: it stays in the
//!   store until its PUBACK or PUBCOMP, and is resent on every new connection, with DUP = 1
//!   and its original packet identifier, in the original order; after PUBREC only its PUBREL
//!   is resent [MQTT-4.3.3-1].
//! - An inbound QoS 2 message is handed to the application once, even when the broker
//!   delivers it again, also after a restart [MQTT-4.3.3-2].
//! - Acknowledgements go out in the order the messages arrived [MQTT-4.6.0-2],
//!   [MQTT-4.6.0-3], also with manual acknowledgement.
//! - Anything invalid from the broker ends the connection with a typed reason and leaves the
//!   queue intact.

mod config;
mod error;
mod event;
mod inbound;
mod message_id;
mod outgoing;
mod packet_ids;
mod session;
pub mod store;

pub use config::{
    Config, DEFAULT_CONNACK_TIMEOUT, DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_MAX_QUEUED_MESSAGES,
};
pub use error::{DisconnectReason, ProtocolError, QueueLimit, SessionError};
pub use event::{AckToken, Event, Incoming};
pub use message_id::MessageId;
pub use session::{ConnectionState, RequestId, Session};
pub use store::{
    Durability, EphemeralStore, FileStore, FileStoreOptions, MemoryStore, Store, StoreError,
};
