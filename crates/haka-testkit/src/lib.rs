//! Test support for Haka, not published.
//!
//! In virtual time, with no sockets and no sleeps:
//!
//! - [`Sim`]: a session driven in virtual time against a broker scripted by the test, packet
//!   by packet: time jumps to the session's next
//!   [`poll_timeout`](haka_session::Session::poll_timeout).
//! - [`Broker`]: a minimal broker state machine that answers a session the way a correct
//!   broker would (CONNACK, PUBACK, PUBREC/PUBCOMP, SUBACK, PINGRESP), keeps its session
//!   across connections and records what it received, for tests that check whole runs.
//! - [`FaultyStore`]: a store wrapper that fails chosen operations, for the session's
//!   failure paths.
//!
//! Against a real broker, on loopback, every wait bounded:
//!
//! - [`Mosquitto`]: Debian's mosquitto started per test on free `127.0.0.1` ports with its
//!   own configuration (passwords, ACL, persistence, a TLS listener), stopped, killed and
//!   restarted on the same ports by the test, killed and reaped on drop.
//! - [`TestPki`]: a CA, server and client certificates, an unrelated CA and a certificate
//!   for the wrong name, generated per test and written as PEM files.
//! - [`FaultProxy`]: a TCP proxy between client and broker that cuts every connection on
//!   demand, cuts each at a seeded random byte count, or refuses new ones.
//!
//! ```
//! use haka_testkit::{FaultProxy, Mosquitto};
//!
//! let broker = Mosquitto::builder().start()?;
//! let proxy = FaultProxy::start(broker.addr())?;
//! // Point the client under test at `proxy.addr()`; `proxy.cut_all()` breaks its
//! // connection, `broker.restart()` restarts the broker behind it.
//! # let _client = std::net::TcpStream::connect(proxy.addr())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The real-broker parts need `mosquitto` (and, for the tests that use `mosquitto_pub` and
//! `mosquitto_sub`, `mosquitto-clients`); without them they fail with
//! [`TestkitError::NotInstalled`], which names the install command.

mod broker;
mod certs;
mod error;
mod faulty_store;
mod mosquitto;
#[cfg(test)]
mod probe;
mod proxy;
mod sim;

pub use broker::Broker;
pub use certs::{TestPki, TlsPaths, CLIENT_NAME, SERVER_NAMES, WRONG_NAME};
pub use error::{TestkitError, INSTALL_COMMAND};
pub use faulty_store::{Fault, FaultyStore};
pub use mosquitto::{Mosquitto, MosquittoBuilder, TlsFiles, BROKER_TIMEOUT};
pub use proxy::{FaultProxy, PROXY_TIMEOUT};
pub use sim::{Sim, VirtualClock};
