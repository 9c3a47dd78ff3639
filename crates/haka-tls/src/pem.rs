//! PEM given to [`TlsOptions`](crate::TlsOptions), as a file or in memory, and reading
//! certificates and keys out of it with `rustls-pki-types`.

use std::fmt;
use std::path::PathBuf;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::{PemInput, PemRole, TlsError};

/// Where a PEM is. Bytes in memory are wiped when dropped (they may hold a private key) and
/// never shown by `Debug`.
#[derive(Clone)]
pub(crate) enum PemSource {
    /// A file, read each time a connector is built.
    File(PathBuf),
    /// PEM text in memory.
    Memory(Zeroizing<Vec<u8>>),
}

impl PemSource {
    /// Every `CERTIFICATE` in the PEM, in order; at least one.
    pub(crate) fn certificates(
        &self,
        role: PemRole,
    ) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certificates: Result<Vec<_>, _> = match self {
            Self::File(path) => <CertificateDer<'static> as PemObject>::pem_file_iter(path)
                .map_err(|error| self.error(role, error))?
                .collect(),
            Self::Memory(bytes) => {
                <CertificateDer<'static> as PemObject>::pem_slice_iter(bytes).collect()
            }
        };
        let certificates = certificates.map_err(|error| self.error(role, error))?;
        if certificates.is_empty() {
            return Err(TlsError::NoCertificate {
                pem: self.input(role),
            });
        }
        Ok(certificates)
    }

    /// The first private key in the PEM (PKCS#8, PKCS#1 or SEC1).
    pub(crate) fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let key = match self {
            Self::File(path) => PrivateKeyDer::from_pem_file(path),
            Self::Memory(bytes) => PrivateKeyDer::from_pem_slice(bytes),
        };
        key.map_err(|error| self.error(PemRole::ClientKey, error))
    }

    /// Which PEM this is, for an error.
    pub(crate) fn input(&self, role: PemRole) -> PemInput {
        let path = match self {
            Self::File(path) => Some(path.clone()),
            Self::Memory(_) => None,
        };
        PemInput::new(role, path)
    }

    fn error(&self, role: PemRole, error: pem::Error) -> TlsError {
        match (error, self) {
            (pem::Error::Io(source), Self::File(path)) => TlsError::ReadFile {
                path: path.clone(),
                source,
            },
            (pem::Error::NoItemsFound, _) if role == PemRole::ClientKey => TlsError::NoPrivateKey {
                pem: self.input(role),
            },
            (pem::Error::NoItemsFound, _) => TlsError::NoCertificate {
                pem: self.input(role),
            },
            (error, _) => TlsError::InvalidPem {
                pem: self.input(role),
                error,
            },
        }
    }
}

/// A file shows its path; PEM in memory shows only its length.
impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Memory(bytes) => write!(f, "Memory(<{} bytes>)", bytes.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(text: &str) -> PemSource {
        PemSource::Memory(Zeroizing::new(text.as_bytes().to_vec()))
    }

    #[test]
    fn text_without_a_certificate_is_a_typed_error() {
        for text in [
            "",
            "hello\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let error = memory(text)
                .certificates(PemRole::CaCertificates)
                .unwrap_err();
            assert!(
                matches!(&error, TlsError::NoCertificate { pem } if pem.path.is_none()),
                "{error:?}"
            );
        }
    }

    #[test]
    fn text_without_a_key_is_a_typed_error() {
        let error = memory("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .private_key()
            .unwrap_err();
        assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error:?}");
    }

    #[test]
    fn broken_pem_is_a_typed_error() {
        let error = memory("-----BEGIN CERTIFICATE-----\nAAAA\n")
            .certificates(PemRole::ClientCertificates)
            .unwrap_err();
        assert!(
            matches!(&error, TlsError::InvalidPem { pem, error: pem::Error::MissingSectionEnd { .. } }
                if pem.role == PemRole::ClientCertificates),
            "{error:?}"
        );
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let path = PathBuf::from("/nonexistent/haka/ca.pem");
        let error = PemSource::File(path.clone())
            .certificates(PemRole::CaCertificates)
            .unwrap_err();
        assert!(
            matches!(&error, TlsError::ReadFile { path: p, source } if *p == path
                && source.kind() == std::io::ErrorKind::NotFound),
            "{error:?}"
        );
        assert!(error
            .to_string()
            .starts_with("could not read /nonexistent/haka/ca.pem: "));
    }

    #[test]
    fn debug_never_shows_pem_bytes() {
        let secret =
            memory("-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n");
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("45, 45"),
            "{shown}"
        );
        assert_eq!(shown, "Memory(<67 bytes>)");
    }
}
