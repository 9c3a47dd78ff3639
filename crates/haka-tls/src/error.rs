//! Why a [`TlsConnector`](crate::TlsConnector) could not be built, or a handshake failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

use rustls_pki_types::pem;

/// What went wrong building a [`TlsConnector`](crate::TlsConnector) with
/// [`TlsOptions::build`](crate::TlsOptions::build), or in
/// [`TlsConnector::connect`](crate::TlsConnector::connect).
///
/// Building fails on the disk and the PEM given ([`ReadFile`](Self::ReadFile) to
/// [`Config`](Self::Config)); connecting fails on the server name or the peer
/// ([`InvalidServerName`](Self::InvalidServerName) to [`Handshake`](Self::Handshake)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be opened or read.
    #[error("could not read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Text that is not well-formed PEM (a section without its end line, bad base64, ...).
    #[error("{pem} is not valid PEM: {error}")]
    InvalidPem {
        /// Which PEM.
        pem: PemInput,
        /// What is wrong with it.
        #[source]
        error: pem::Error,
    },
    /// A PEM holding no `CERTIFICATE` section, where certificates were expected.
    #[error("no certificate found in {pem}")]
    NoCertificate {
        /// Which PEM.
        pem: PemInput,
    },
    /// A CA certificate that is not a usable trust anchor.
    #[error("invalid CA certificate in {pem}: {error}")]
    InvalidCaCertificate {
        /// Which PEM.
        pem: PemInput,
        /// Why rustls refused it.
        #[source]
        error: rustls::Error,
    },
    /// A PEM holding no private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    #[error("no private key found in {pem}")]
    NoPrivateKey {
        /// Which PEM.
        pem: PemInput,
    },
    /// A private key that the crypto provider cannot sign with (an unsupported algorithm, a
    /// corrupt key).
    #[error("invalid private key in {pem}: {error}")]
    InvalidPrivateKey {
        /// Which PEM.
        pem: PemInput,
        /// Why rustls refused it.
        #[source]
        error: rustls::Error,
    },
    /// No root certificate could be loaded from the platform's store, and the bundled roots
    /// were not allowed ([`DefaultRoots::Platform`](crate::DefaultRoots::Platform)).
    #[error(
        "no root certificate could be loaded from the platform's store{}",
        Problems(problems)
    )]
    NoPlatformRoots {
        /// What went wrong reading the store, one message each.
        problems: Vec<String>,
    },
    /// A name that is neither a DNS name nor an IP address, given to
    /// [`TlsOptions::with_server_name`](crate::TlsOptions::with_server_name) or as the host
    /// to [`TlsConnector::connect`](crate::TlsConnector::connect).
    #[error("invalid TLS server name {name:?}: neither a DNS name nor an IP address")]
    InvalidServerName {
        /// The name as given.
        name: String,
    },
    /// rustls refused the configuration: for example a client key that does not belong to
    /// the client certificate.
    #[error("invalid TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// The server's certificate was refused: issued by an unknown CA
    /// ([`rustls::CertificateError::UnknownIssuer`]), not valid for the server name
    /// ([`NotValidForName`](rustls::CertificateError::NotValidForName) or
    /// [`NotValidForNameContext`](rustls::CertificateError::NotValidForNameContext)), expired,
    /// and so on.
    #[error("TLS certificate of {server_name} rejected: {}", Reason(reason))]
    CertificateRejected {
        /// The name the certificate was checked against.
        server_name: String,
        /// Why it was refused. (`CertificateError` does not implement `std::error::Error`,
        /// so it is shown in the message rather than given as the source.)
        reason: rustls::CertificateError,
    },
    /// The handshake broke the TLS protocol or the peer sent an alert, for example a server
    /// refusing a missing or unknown client certificate (`AlertReceived(CertificateRequired)`
    /// or `AlertReceived(UnknownCA)`), or no protocol version or cipher suite in common.
    #[error("TLS handshake with {server_name} failed: {error}")]
    Protocol {
        /// The server name of the handshake.
        server_name: String,
        /// The rustls error.
        #[source]
        error: rustls::Error,
    },
    /// The handshake failed on I/O: the peer closed the connection or reset it, or the
    /// stream failed.
    #[error("TLS handshake with {server_name} failed: {source}")]
    Handshake {
        /// The server name of the handshake.
        server_name: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// Which PEM an error is about: what it was meant to hold, and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PemInput {
    /// What the PEM was meant to hold.
    pub role: PemRole,
    /// The file it was read from, or `None` for PEM given in memory.
    pub path: Option<PathBuf>,
}

impl PemInput {
    pub(crate) fn new(role: PemRole, path: Option<PathBuf>) -> Self {
        Self { role, path }
    }
}

impl fmt::Display for PemInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            PemRole::CaCertificates => "CA certificate",
            PemRole::ClientCertificates => "client certificate",
            PemRole::ClientKey => "client key",
        };
        match &self.path {
            Some(path) => write!(f, "{role} file {}", path.display()),
            None => write!(f, "in-memory {role} PEM"),
        }
    }
}

/// What a PEM was meant to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PemRole {
    /// The certificates of trusted CAs.
    CaCertificates,
    /// The client's certificate chain, leaf first.
    ClientCertificates,
    /// The client's private key.
    ClientKey,
}

/// A certificate error in words, where rustls gives only the variant's name.
struct Reason<'a>(&'a rustls::CertificateError);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use rustls::CertificateError as E;
        let words = match self.0 {
            E::UnknownIssuer => "issued by a CA that is not trusted",
            E::NotValidForName => "not valid for this name",
            E::Expired => "expired",
            E::NotValidYet => "not valid yet",
            E::Revoked => "revoked",
            E::BadSignature => "bad signature",
            other => return write!(f, "{other}"),
        };
        write!(f, "{words} ({:?})", self.0)
    }
}

/// `: first; second` or nothing.
struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            f.write_str(problem)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_pem_and_fit_on_one_line() {
        let from_file = TlsError::NoCertificate {
            pem: PemInput::new(PemRole::CaCertificates, Some("/etc/haka/ca.pem".into())),
        };
        assert_eq!(
            from_file.to_string(),
            "no certificate found in CA certificate file /etc/haka/ca.pem"
        );
        let in_memory = TlsError::NoPrivateKey {
            pem: PemInput::new(PemRole::ClientKey, None),
        };
        assert_eq!(
            in_memory.to_string(),
            "no private key found in in-memory client key PEM"
        );
        let no_roots = TlsError::NoPlatformRoots {
            problems: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            no_roots.to_string(),
            "no root certificate could be loaded from the platform's store: a; b"
        );
        let rejected = TlsError::CertificateRejected {
            server_name: "broker.example".into(),
            reason: rustls::CertificateError::UnknownIssuer,
        };
        assert_eq!(
            rejected.to_string(),
            "TLS certificate of broker.example rejected: issued by a CA that is not trusted (UnknownIssuer)"
        );
    }
}
