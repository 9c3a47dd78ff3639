//! [`MessageId`]: the identity of an accepted message.

use std::fmt;

/// The identity [`Session::publish`](crate::Session::publish) gives a message, reported
/// again in the events about it.
///
/// Identities increase with every accepted message and are never reused, also across
/// restarts on a durable store, so they give the order in which messages were accepted.
/// They are not MQTT packet identifiers: a message gets one of those only when it enters the
/// in-flight window.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(u64);

impl MessageId {
    /// The first identity of a new store.
    pub const FIRST: Self = Self(1);

    /// The identity numbered `value`.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The identity as a number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The identity after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.wrapping_add(1))
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::FIRST
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
