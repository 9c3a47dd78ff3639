//! TLS for the [Haka](https://github.com/haka-mqtt/haka) MQTT client: rustls, on the `ring`
//! crypto provider, over any tokio stream.
//!
//! ```no_run
//! use std::time::Duration;
//! use haka_tls::TlsOptions;
//! use tokio::io::AsyncWriteExt;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Build once: this reads the files and the platform's root store.
//! let tls = TlsOptions::new()
//!     .with_ca_file("/etc/haka/ca.pem") // trust exactly this CA
//!     .with_client_cert_files("/etc/haka/client.pem", "/etc/haka/client.key")
//!     .build()?;
//!
//! // Then, for each connection: TCP first, TLS over it.
//! let tcp = haka_tcp::connect("broker.example", 8883, Duration::from_secs(10)).await?;
//! let mut stream = tls.connect("broker.example", tcp).await?;
//! stream.write_all(b"\x10...").await?; // MQTT from here on
//! # Ok(())
//! # }
//! ```
//!
//! # What is verified
//!
//! The server's certificate must chain to a trusted root and hold the server name: the host
//! given to [`TlsConnector::connect`] (a DNS name, or an IP address for an IPv4 or IPv6
//! literal), or the name given to [`TlsOptions::with_server_name`].
//!
//! - Trusted by default: the platform's root store (read with `rustls-native-certs`), or, if
//!   no certificate loads from it, Mozilla's roots bundled with `webpki-roots`
//!   ([`DefaultRoots`]).
//! - Once a CA is given ([`TlsOptions::with_ca_file`], [`TlsOptions::with_ca_pem`]), only the
//!   CAs given are trusted, unless [`TlsOptions::with_default_roots`] asks for both.
//! - [`TlsOptions::dangerous_accept_any_server_certificate`] is the only way to turn
//!   verification off, and says so.
//!
//! Mutual TLS: [`TlsOptions::with_client_cert_files`] or [`TlsOptions::with_client_cert_pem`].
//! PEM is parsed with `rustls-pki-types`. Key material never appears in `Debug` output, and
//! PEM given in memory is wiped when the options are dropped.
//!
//! # Errors
//!
//! [`TlsError`] tells a missing file from a PEM without a certificate or key, and a
//! certificate the server rejected ([`TlsError::CertificateRejected`], with rustls's
//! [`CertificateError`](rustls::CertificateError): unknown issuer, name mismatch, expired,
//! ...) from an alert or an I/O failure.

mod connector;
mod danger;
mod error;
mod options;
mod pem;
mod roots;

pub use connector::TlsConnector;
pub use error::{PemInput, PemRole, TlsError};
pub use options::TlsOptions;
pub use roots::DefaultRoots;
/// The encrypted stream [`TlsConnector::connect`] returns.
pub use tokio_rustls::client::TlsStream;
/// The rustls this crate is built on, whose error types [`TlsError`] carries.
pub use tokio_rustls::rustls;
