//! [`TlsConnector`]: a built TLS client configuration, run over any tokio stream.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use crate::options::{parse_server_name, AlpnDebug};
use crate::TlsError;

/// A TLS client configuration ready to use, built by
/// [`TlsOptions::build`](crate::TlsOptions::build): wraps a stream in TLS with
/// [`connect`](Self::connect).
///
/// Cloning is cheap (the configuration is shared behind an [`Arc`]), and so is TLS session
/// resumption across the clones' connections. `Debug` shows what is trusted and whether a
/// client certificate is presented, never key material.
#[derive(Clone)]
pub struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
    summary: Arc<Summary>,
}

/// What `Debug` shows of a connector.
pub(crate) struct Summary {
    /// Which roots are trusted, or that verification is off.
    pub(crate) trust: String,
    /// Whether a client certificate is presented.
    pub(crate) client_certificate: bool,
    /// The server name override.
    pub(crate) server_name: Option<ServerName<'static>>,
}

impl TlsConnector {
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        server_name: Option<ServerName<'static>>,
        summary: Summary,
    ) -> Self {
        Self {
            inner: config.into(),
            server_name,
            summary: Arc::new(summary),
        }
    }

    /// A connector running a rustls configuration built by hand, for what
    /// [`TlsOptions`](crate::TlsOptions) does not offer. The server is named by the host
    /// given to [`connect`](Self::connect).
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        let summary = Summary {
            trust: "as configured by hand".to_owned(),
            client_certificate: config.client_auth_cert_resolver.has_certs(),
            server_name: None,
        };
        Self::new(config, None, summary)
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        self.inner.config()
    }

    /// Runs the TLS handshake over `stream`, connected to `host`, and returns the encrypted
    /// stream.
    ///
    /// The server is named by `host` (SNI, and the name its certificate must hold), unless
    /// [`TlsOptions::with_server_name`](crate::TlsOptions::with_server_name) named it: a DNS
    /// name, or an IP address for an IPv4 or IPv6 literal (with or without brackets). IP
    /// addresses are not sent as SNI (RFC 6066, section 3: "Literal IPv4 and IPv6
    /// addresses are not permitted in "HostName""); the certificate must then hold the
    /// address as an IP subject alternative name.
    ///
    /// With TLS 1.3 the client finishes its handshake before the server checks the client
    /// certificate, so a server refusing it is seen on the first read from the stream, not
    /// here.
    ///
    /// The handshake has no timeout of its own: wrap the call in `tokio::time::timeout`.
    ///
    /// # Errors
    ///
    /// [`TlsError::InvalidServerName`] for a host that is no DNS name nor IP address,
    /// [`TlsError::CertificateRejected`] when the server's certificate is not trusted or not
    /// valid for the name, [`TlsError::Protocol`] for other TLS failures and alerts from the
    /// server, [`TlsError::Handshake`] when the stream fails or closes.
    pub async fn connect<S>(&self, host: &str, stream: S) -> Result<TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let server_name = match &self.server_name {
            Some(name) => name.clone(),
            None => parse_server_name(host)?,
        };
        let named = server_name.to_str().into_owned();
        self.inner
            .connect(server_name, stream)
            .await
            .map_err(|error| handshake_error(named, error))
    }
}

/// Takes the rustls error out of the I/O error tokio-rustls wraps it in.
fn handshake_error(server_name: String, error: io::Error) -> TlsError {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(reason)) => TlsError::CertificateRejected {
            server_name,
            reason: reason.clone(),
        },
        Some(other) => TlsError::Protocol {
            server_name,
            error: other.clone(),
        },
        None => TlsError::Handshake {
            server_name,
            source: error,
        },
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client_certificate: &dyn fmt::Debug = if self.summary.client_certificate {
            &format_args!("<redacted>")
        } else {
            &None::<()>
        };
        f.debug_struct("TlsConnector")
            .field("trust", &self.summary.trust)
            .field("client_certificate", client_certificate)
            .field("server_name", &self.summary.server_name)
            .field("alpn", &AlpnDebug(&self.config().alpn_protocols))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_are_taken_out_of_io_errors() {
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let error = handshake_error("broker.example".into(), wrapped);
        assert!(
            matches!(&error, TlsError::CertificateRejected { server_name, reason: rustls::CertificateError::UnknownIssuer }
                if server_name == "broker.example"),
            "{error:?}"
        );

        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        let error = handshake_error("broker.example".into(), alert);
        assert!(matches!(&error, TlsError::Protocol { .. }), "{error:?}");

        let closed = io::Error::from(io::ErrorKind::UnexpectedEof);
        let error = handshake_error("broker.example".into(), closed);
        assert!(
            matches!(&error, TlsError::Handshake { source, .. } if source.kind() == io::ErrorKind::UnexpectedEof)
        );
    }
}
