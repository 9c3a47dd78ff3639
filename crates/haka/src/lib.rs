//! An MQTT 3.1.1 client for tokio whose promise is simple: a message handed to it at QoS 1 or
//! 2 is never lost, not across a dropped connection, a broker restart or a killed process,
//! and a QoS 2 message is never delivered twice.
//!
//! ```no_run
//! use haka::{Client, ClientOptions, StoreOptions};
//! use haka_codec::QoS;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ClientOptions::new("mqtt://127.0.0.1:1883", "thermostat")?
//!     .clean_session(false)
//!     .store(StoreOptions::Directory {
//!         path: "/var/lib/thermostat/mqtt".into(),
//!         durability: haka_session::Durability::Fsync,
//!     });
//! let (client, mut messages) = Client::start(options).await?;
//!
//! // Subscribe: returns once the broker's SUBACK came.
//! client.subscribe("home/+/setpoint", QoS::ExactlyOnce).await?;
//!
//! // Publish: returns once the message is durably queued; the handle completes on PUBACK.
//! let delivery = client.publish("home/livingroom/temp", QoS::AtLeastOnce, false, "21.5").await?;
//! delivery.await?;
//!
//! // Receive: QoS 2 messages arrive exactly once, even across restarts.
//! if let Some(message) = messages.recv().await {
//!     println!("{}: {:?}", message.topic, message.payload);
//! }
//!
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//!
//! [`Client::start`] opens the store and spawns one task, the driver, that owns a
//! [`haka_session::Session`] (the protocol state machine) and the transport. The driver
//! connects, reconnects with exponential backoff and jitter, resends what the session says
//! must be resent, and never waits for application code. The crates below it stand on their
//! own: `haka-codec` (packets), `haka-session` (the sans-IO session and its stores),
//! `haka-tcp` and `haka-tls` (transports).
//!
//! # Guarantees and their limits
//!
//! - A QoS 1 or 2 message accepted by [`Client::publish`] is in the store when the call
//!   returns; with [`StoreOptions::Directory`] it survives a killed process, and a client
//!   started on the same directory sends it.
//! - A broker that refuses a message the same way on every connection (for example answers a
//!   QoS 2 PUBLISH with PUBACK) does not trap the client: backoff applies, and after
//!   [`ClientOptions::max_identical_failures`] the message's handle completes with
//!   [`PublishError::Refused`] while the rest of the queue proceeds.
//! - Credentials and key material never appear in logs or `Debug` output.
//!
//! # Features
//!
//! - `tls` (default): `mqtts://` with rustls. Without it no TLS code is compiled.

mod backoff;
mod client;
mod driver;
mod error;
mod message;
mod options;
mod transport;

pub use backoff::Backoff;
pub use client::{Client, Event, PublishHandle};
pub use error::{ClientError, ConnectError, PublishError, Refusal};
pub use message::{Message, Messages};
pub use options::{ClientOptions, Scheme, StoreOptions};
#[cfg(feature = "tls")]
pub use transport::TlsConnector;
pub use transport::{BoxTransport, ConnectFuture, Connector, TcpConnector, Transport};

pub use haka_codec::{QoS, SubscribeReturnCode};
#[cfg(feature = "tls")]
pub use haka_tls::TlsOptions;
