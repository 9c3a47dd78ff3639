//! An MQTT 3.1.1 client for tokio whose promise is simple: a message handed to it at QoS 1 or
//! 2 is never lost, not across a dropped connection, a broker restart or a killed process,
//! and a QoS 2 message is never delivered twice.
//!
//! ```no_run
//! use haka::{Client, ClientOptions, StoreOptions};
//! use haka_codec::QoS;
//!
//! # #[tokio::main]
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
//! must be resent, and never waits for application code. [`Client::open`] returns the
//! driver as a future ([`Driver`]) instead, to run on a task of the application's choosing:
//! polled by the task that takes the messages, each message reaches it in the same poll that
//! read it, without a switch to another task. The crates below it stand on their
//! own: `haka-codec` (packets), `haka-session` (the sans-IO session and its stores),
//! `haka-tcp` and `haka-tls` (transports).
//!
//! # Guarantees and their limits
//!
//! - A QoS 1 or 2 message whose [`Client::publish`] future resolved to `Ok` is in the store;
//!   with [`StoreOptions::Directory`] it survives a killed process, and a client started on
//!   the same directory sends it. The message is queued when `publish` is called, so many
//!   publishes can be pipelined and share one commit ([`Publishing`]).
//! - A broker that refuses a message the same way on every connection (for example answers a
//!   QoS 2 PUBLISH with PUBACK) does not trap the client: backoff applies, and after
//!   [`ClientOptions::max_identical_failures`] the message's handle completes with
//!   [`PublishError::Refused`] while the rest of the queue proceeds.
//! - Subscriptions survive reconnections: when the broker starts a new session (always with
//!   the default clean session, or when it lost the old one), the client asks again for every
//!   subscription it was granted. Exactly-once delivery of outgoing QoS 2 messages across a
//!   reconnection needs [`ClientOptions::clean_session`]`(false)`, since a broker starting a
//!   new session forgets which messages it already received.
//! - A message the broker acknowledges is only as safe as the broker keeps it: keep the
//!   in-flight window ([`ClientOptions::max_inflight`], 20 by default) within the broker's
//!   own limit, which MQTT 3.1.1 cannot tell the client.
//! - Credentials and key material never appear in logs or `Debug` output.
//!
//! # Runtime
//!
//! The driver writes the store from its own task. With [`StoreOptions::Directory`] and
//! `Durability::Fsync`, every commit waits for the disk (commits are grouped: one per batch
//! of publishes or acknowledgements), so prefer the multi-threaded runtime, where this does
//! not hold up other tasks; `Durability::Flush` only writes to the operating system.
//!
//! # Features
//!
//! - `tls` (default): `mqtts://` with rustls. Without it no TLS code is compiled.

mod backoff;
mod client;
mod driver;
mod error;
mod inbox;
mod message;
mod options;
mod topic;
mod transport;

pub use backoff::Backoff;
pub use client::{Client, Driver, Event, PublishHandle, Publishing};
pub use error::{ClientError, ConnectError, PublishError, Refusal};
pub use message::{Message, Messages};
pub use options::{ClientOptions, Scheme, StoreOptions};
pub use topic::IntoTopicName;
#[cfg(feature = "tls")]
pub use transport::TlsConnector;
pub use transport::{BoxTransport, ConnectFuture, Connector, TcpConnector, Transport};

pub use haka_codec::{QoS, SubscribeReturnCode, TopicName};
#[cfg(feature = "tls")]
pub use haka_tls::TlsOptions;
