//! Test support for Haka, not published.
//!
//! - [`Sim`]: a session driven in virtual time against a broker scripted by the test, packet
//!   by packet, with no sockets and no sleeps: time jumps to the session's next
//!   [`poll_timeout`](haka_session::Session::poll_timeout).
//! - [`Broker`]: a minimal broker state machine that answers a session the way a correct
//!   broker would (CONNACK, PUBACK, PUBREC/PUBCOMP, SUBACK, PINGRESP), keeps its session
//!   across connections and records what it received, for tests that check whole runs.
//! - [`FaultyStore`]: a store wrapper that fails chosen operations, for the session's
//!   failure paths.

mod broker;
mod faulty_store;
mod sim;

pub use broker::Broker;
pub use faulty_store::{Fault, FaultyStore};
pub use sim::{Sim, VirtualClock};
