//! TCP dialling for the [Haka](https://github.com/haka-mqtt/haka) MQTT client: resolve a host,
//! try every address it resolves to, IPv6 and IPv4, and give up after one timeout.
//!
//! ```no_run
//! use std::time::Duration;
//! use haka_tcp::{ConnectError, TcpConnector};
//!
//! # async fn run() -> Result<(), ConnectError> {
//! // Once...
//! let stream = haka_tcp::connect("broker.example", 1883, Duration::from_secs(10)).await?;
//! println!("connected to {:?}", stream.peer_addr());
//!
//! // ...or keep a connector to dial again after the connection drops.
//! let connector = TcpConnector::new("[::1]", 1883, Duration::from_secs(10));
//! match connector.connect().await {
//!     Ok(stream) => println!("connected to {:?}", stream.peer_addr()),
//!     Err(ConnectError::AllFailed { attempts, .. }) => {
//!         for attempt in &attempts {
//!             eprintln!("{}: {}", attempt.addr, attempt.error);
//!         }
//!     }
//!     Err(other) => eprintln!("{other}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What it does
//!
//! - **Every address.** A name is resolved with the system resolver; its addresses, both
//!   families, are interleaved as RFC 8305 asks and dialled one at a time until one connects.
//!   IP literals (`127.0.0.1`, `::1`, `[::1]`) are dialled without resolving.
//! - **One deadline.** The timeout bounds the whole call, resolution included. Each address
//!   gets a fair share of the time left, so a black-holed address cannot starve the next.
//! - **Typed failures.** [`ConnectError`] tells a name that does not resolve from a timeout
//!   from every address refusing, and lists each address dialled with its error.
//! - **`TCP_NODELAY`** is set on the stream returned.
//! - **No delayed acknowledgements.** [`QuickAckStream`] wraps the stream so that what it
//!   reads is acknowledged at once (by its own next write when that has left, else by
//!   `TCP_QUICKACK`), which keeps a broker with Nagle's algorithm on from stalling on its own
//!   small acknowledgements.
//!
//! TLS is layered on the stream by `haka-tls`.

mod connect;
mod error;
mod quick_ack;

pub use connect::{connect, TcpConnector};
pub use error::{ConnectAttempt, ConnectError};
pub use quick_ack::QuickAckStream;
