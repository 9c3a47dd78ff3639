//! [`TestPki`]: certificates for TLS tests, made fresh by each test with `rcgen`.
//!
//! Nothing here is secret or long-lived: keys are generated in memory (ECDSA P-256), the
//! certificates are valid for a long time, and [`TestPki::write_to`] puts them in a
//! directory the test owns, under fixed names, so that mosquitto's TLS listener
//! ([`MosquittoBuilder::tls`](crate::MosquittoBuilder::tls)), the `mosquitto_pub` and
//! `mosquitto_sub` tools, and a rustls client can all read the same files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::{TestkitError, TlsFiles};

/// The names every certificate for the test server carries: the loopback host name and
/// both loopback addresses, so a client may dial any of them.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The only name in [`TestPki::wrong_name_cert`], for host-name verification tests.
pub const WRONG_NAME: &str = "wrong.example";

/// The common name of [`TestPki::client_cert`] (mosquitto's `use_identity_as_username`
/// makes it the user name).
pub const CLIENT_NAME: &str = "haka-client";

/// A test PKI: one CA with a server and a client certificate, a server certificate for the
/// wrong name signed by the same CA, and an unrelated CA with a client certificate of its
/// own. Every field is PEM text.
///
/// ```
/// let pki = haka_testkit::TestPki::generate()?;
/// let dir = tempfile::tempdir()?;
/// let paths = pki.write_to(dir.path())?;
/// assert!(std::fs::read_to_string(&paths.ca)?.starts_with("-----BEGIN CERTIFICATE-----"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate that signs every certificate below except the `other_` ones.
    pub ca: String,
    /// The server certificate, for [`SERVER_NAMES`], signed by [`TestPki::ca`].
    pub server_cert: String,
    /// The server certificate's private key (PKCS#8).
    pub server_key: String,
    /// A client certificate with common name [`CLIENT_NAME`], signed by [`TestPki::ca`].
    pub client_cert: String,
    /// The client certificate's private key (PKCS#8).
    pub client_key: String,
    /// A CA that signed none of the certificates above: a client trusting only it must
    /// reject the server ("unknown CA").
    pub other_ca: String,
    /// A client certificate signed by [`TestPki::other_ca`], which a broker requiring
    /// certificates from [`TestPki::ca`] must refuse.
    pub other_client_cert: String,
    /// The private key of [`TestPki::other_client_cert`] (PKCS#8).
    pub other_client_key: String,
    /// A server certificate for [`WRONG_NAME`] only, signed by [`TestPki::ca`]: trusted,
    /// but not for the host the client dials.
    pub wrong_name_cert: String,
    /// The private key of [`TestPki::wrong_name_cert`] (PKCS#8).
    pub wrong_name_key: String,
}

/// Where [`TestPki::write_to`] put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `server.pem`.
    pub server_cert: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// `client.pem`.
    pub client_cert: PathBuf,
    /// `client.key`.
    pub client_key: PathBuf,
    /// `other-ca.pem`.
    pub other_ca: PathBuf,
    /// `other-client.pem`.
    pub other_client_cert: PathBuf,
    /// `other-client.key`.
    pub other_client_key: PathBuf,
    /// `wrong-name.pem`.
    pub wrong_name_cert: PathBuf,
    /// `wrong-name.key`.
    pub wrong_name_key: PathBuf,
}

impl TestPki {
    /// Generates every key and certificate.
    pub fn generate() -> Result<Self, TestkitError> {
        let ca = certificate_authority("Haka Test CA")?;
        let other_ca = certificate_authority("Haka Unrelated Test CA")?;
        let (server_cert, server_key) = leaf(&ca, "localhost", &SERVER_NAMES, Role::Server)?;
        let (client_cert, client_key) = leaf(&ca, CLIENT_NAME, &[], Role::Client)?;
        let (other_client_cert, other_client_key) =
            leaf(&other_ca, CLIENT_NAME, &[], Role::Client)?;
        let (wrong_name_cert, wrong_name_key) = leaf(&ca, WRONG_NAME, &[WRONG_NAME], Role::Server)?;
        Ok(Self {
            ca: ca.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
            other_ca: other_ca.pem(),
            other_client_cert,
            other_client_key,
            wrong_name_cert,
            wrong_name_key,
        })
    }

    /// Writes every file into `dir` (which must exist) and returns their paths.
    pub fn write_to(&self, dir: &Path) -> Result<TlsPaths, TestkitError> {
        let write = |name: &str, contents: &str| -> Result<PathBuf, TestkitError> {
            let path = dir.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| TestkitError::io(format!("writing {}", path.display()), e))?;
            Ok(path)
        };
        Ok(TlsPaths {
            ca: write("ca.pem", &self.ca)?,
            server_cert: write("server.pem", &self.server_cert)?,
            server_key: write("server.key", &self.server_key)?,
            client_cert: write("client.pem", &self.client_cert)?,
            client_key: write("client.key", &self.client_key)?,
            other_ca: write("other-ca.pem", &self.other_ca)?,
            other_client_cert: write("other-client.pem", &self.other_client_cert)?,
            other_client_key: write("other-client.key", &self.other_client_key)?,
            wrong_name_cert: write("wrong-name.pem", &self.wrong_name_cert)?,
            wrong_name_key: write("wrong-name.key", &self.wrong_name_key)?,
        })
    }
}

impl TlsPaths {
    /// The files for a broker's TLS listener: the right server certificate, and the CA
    /// that client certificates must chain to.
    pub fn server(&self) -> TlsFiles {
        TlsFiles {
            ca: self.ca.clone(),
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
        }
    }

    /// Like [`TlsPaths::server`], but presenting the certificate for [`WRONG_NAME`].
    pub fn wrong_name_server(&self) -> TlsFiles {
        TlsFiles {
            ca: self.ca.clone(),
            cert: self.wrong_name_cert.clone(),
            key: self.wrong_name_key.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Server,
    Client,
}

fn certificate_authority(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, TestkitError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// An end-entity certificate for `names`, signed by `issuer`; returns (certificate, key).
fn leaf(
    issuer: &CertifiedIssuer<'_, KeyPair>,
    common: &str,
    names: &[&str],
    role: Role,
) -> Result<(String, String), TestkitError> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name = common_name(common);
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match role {
        Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_pem_certificates_and_keys() {
        let pki = TestPki::generate().expect("the PKI generates");
        let certs = [
            &pki.ca,
            &pki.server_cert,
            &pki.client_cert,
            &pki.other_ca,
            &pki.other_client_cert,
            &pki.wrong_name_cert,
        ];
        for cert in certs {
            assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        }
        for key in [
            &pki.server_key,
            &pki.client_key,
            &pki.other_client_key,
            &pki.wrong_name_key,
        ] {
            assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        }
        let unique: std::collections::HashSet<_> = certs.iter().collect();
        assert_eq!(unique.len(), certs.len());
        // Two runs never share a key.
        let again = TestPki::generate().expect("the PKI generates");
        assert_ne!(again.server_key, pki.server_key);
    }

    #[test]
    fn writes_every_file_under_its_fixed_name() {
        let pki = TestPki::generate().expect("the PKI generates");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let paths = pki.write_to(dir.path()).expect("the files are written");
        let expected = [
            (&paths.ca, "ca.pem", &pki.ca),
            (&paths.server_cert, "server.pem", &pki.server_cert),
            (&paths.server_key, "server.key", &pki.server_key),
            (&paths.client_cert, "client.pem", &pki.client_cert),
            (&paths.client_key, "client.key", &pki.client_key),
            (&paths.other_ca, "other-ca.pem", &pki.other_ca),
            (
                &paths.other_client_cert,
                "other-client.pem",
                &pki.other_client_cert,
            ),
            (
                &paths.other_client_key,
                "other-client.key",
                &pki.other_client_key,
            ),
            (
                &paths.wrong_name_cert,
                "wrong-name.pem",
                &pki.wrong_name_cert,
            ),
            (&paths.wrong_name_key, "wrong-name.key", &pki.wrong_name_key),
        ];
        for (path, name, contents) in expected {
            assert_eq!(path, &dir.path().join(name));
            assert_eq!(&std::fs::read_to_string(path).expect("readable"), contents);
        }
        let server = paths.server();
        assert_eq!(
            (server.ca, server.cert, server.key),
            (
                paths.ca.clone(),
                paths.server_cert.clone(),
                paths.server_key.clone()
            )
        );
        assert_eq!(paths.wrong_name_server().cert, paths.wrong_name_cert);
    }

    #[test]
    fn writing_into_a_missing_directory_fails_with_the_path() {
        let pki = TestPki::generate().expect("the PKI generates");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let missing = dir.path().join("missing");
        let error = pki.write_to(&missing).expect_err("no such directory");
        assert!(error.to_string().contains("ca.pem"), "{error}");
    }
}
