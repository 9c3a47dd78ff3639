//! Persistence of the QoS queue: the [`Store`] trait and its two implementations.
//!
//! The session tells its store every change of its persisted state as it happens, then
//! [`Store::commit`]s them in groups: before any PUBLISH, PUBREL or PUBREC that depends on a
//! change leaves [`Session::poll_transmit`](crate::Session::poll_transmit), and before an
//! inbound QoS 2 message is handed out by [`Session::poll_event`](crate::Session::poll_event).
//! Many publishes made between two polls therefore share one commit.
//!
//! What is stored:
//! - every outgoing QoS 1 and 2 message, in the order of its [`MessageId`], with its
//!   [`Stage`]: queued, published with a packet identifier, or released (PUBREL sent);
//! - the packet identifiers of inbound QoS 2 messages that were received but not yet released
//!   by the broker's PUBREL, so that a redelivery is never handed to the application twice.
//!
//! QoS 0 messages and subscription requests are not stored: they do not survive a restart.

mod ephemeral;
mod file;
mod memory;
mod queue;
mod state;

use std::io;

use bytes::Bytes;
use haka_codec::{PacketId, QoS, TopicName};

pub use ephemeral::EphemeralStore;
pub use file::{Durability, FileStore, FileStoreOptions};
pub use memory::MemoryStore;

use crate::MessageId;

/// Where an outgoing QoS 1 or 2 message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Accepted and stored, not yet given a packet identifier (waiting for the in-flight
    /// window).
    Queued,
    /// Given a packet identifier, and possibly sent: awaiting PUBACK (QoS 1) or PUBREC
    /// (QoS 2). Resent as PUBLISH with DUP = 1 on the next connection.
    Published(PacketId),
    /// QoS 2 after its PUBREC: awaiting PUBCOMP. Resent as PUBREL on the next connection,
    /// never as PUBLISH again [MQTT-4.3.3-1].
    Released(PacketId),
}

impl Stage {
    /// The packet identifier, once the message has one.
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            Self::Queued => None,
            Self::Published(id) | Self::Released(id) => Some(id),
        }
    }
}

/// An outgoing QoS 1 or 2 message as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message's identity, increasing in the order of `publish` calls.
    pub id: MessageId,
    /// [`QoS::AtLeastOnce`] or [`QoS::ExactlyOnce`]; QoS 0 messages are never stored.
    pub qos: QoS,
    /// The retain flag of the PUBLISH.
    pub retain: bool,
    /// The topic the message is published to.
    pub topic: TopicName,
    /// The application message.
    pub payload: Bytes,
    /// Where the message is in its flow.
    pub stage: Stage,
}

/// What a store held when it was opened: the state a restarted session resumes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Outgoing messages not yet completed, in [`MessageId`] order.
    pub messages: Vec<StoredMessage>,
    /// Inbound QoS 2 messages received and acknowledged with PUBREC, awaiting PUBREL.
    pub inbound: Vec<PacketId>,
    /// The identity the next accepted message gets: above every identity ever stored.
    pub next_message_id: MessageId,
}

/// Where the session keeps what must survive a reconnect or a restart.
///
/// Changes are buffered by the implementation as they are made and become durable together at
/// [`Store::commit`]. A change that [`Store::commit`] did not confirm may be lost; a confirmed
/// one may not. The session calls the methods in an order that is always valid (for example
/// [`Store::assign`] only for a message that is [`Stage::Queued`]); an implementation may
/// return [`StoreError::Invalid`] for an invalid one rather than trust it.
///
/// Implementations: [`EphemeralStore`] (keeps nothing: the session's own memory is enough
/// for reconnects), [`MemoryStore`] (a new session value can resume from it, within the
/// process) and [`FileStore`] (an append-only, checksummed log on disk that survives
/// restarts and crashes).
pub trait Store {
    /// Everything the store holds, for a session starting on it. Called once, before any
    /// other method.
    fn recover(&mut self) -> Result<Recovered, StoreError>;

    /// Adds an outgoing message, in [`Stage::Queued`] unless recovering. The store takes the
    /// message: one that keeps it has no copy to make (its topic and payload are
    /// reference-counted, shared with the session's queue).
    fn insert(&mut self, message: StoredMessage) -> Result<(), StoreError>;

    /// Moves message `id` from [`Stage::Queued`] to [`Stage::Published`] with `packet_id`.
    fn assign(&mut self, id: MessageId, packet_id: PacketId) -> Result<(), StoreError>;

    /// Moves message `id` from [`Stage::Published`] to [`Stage::Released`]: its PUBREC came.
    fn release(&mut self, id: MessageId) -> Result<(), StoreError>;

    /// Removes message `id`: it is complete (PUBACK or PUBCOMP received).
    fn remove(&mut self, id: MessageId) -> Result<(), StoreError>;

    /// Records an inbound QoS 2 message `packet_id` as received, awaiting its PUBREL.
    fn insert_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError>;

    /// Forgets inbound QoS 2 message `packet_id`: its PUBREL came.
    fn remove_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError>;

    /// Forgets every inbound QoS 2 identifier: the broker started a new session and will
    /// not release them.
    fn clear_inbound(&mut self) -> Result<(), StoreError>;

    /// Makes every change made so far durable, as durable as the implementation promises.
    fn commit(&mut self) -> Result<(), StoreError>;
}

/// Why a store could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the store's files failed.
    #[error("store I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The store's file holds something that is neither a valid record nor a torn last
    /// write. Nothing was changed; the file is left for inspection.
    #[error("store file is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// Where the bad data starts.
        offset: u64,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The file is not a Haka store, or one of a version this build cannot read.
    #[error("not a Haka store file of a supported version")]
    UnsupportedFormat,
    /// Another store (in this or another process) has the file open.
    #[error("the store file is in use by another store")]
    Locked,
    /// An earlier write failed in a way that left the file's state unknown; the store
    /// refuses further changes until it is reopened.
    #[error("the store failed earlier and must be reopened")]
    Poisoned,
    /// The session asked for a change that does not fit the stored state (a bug in the
    /// caller, reported rather than trusted).
    #[error("invalid store operation: {0}")]
    Invalid(&'static str),
}
