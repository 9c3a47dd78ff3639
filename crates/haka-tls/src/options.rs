//! [`TlsOptions`]: which servers to trust, which certificate to present, and how to name the
//! server; built into a [`TlsConnector`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WantsClientCert;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ConfigBuilder, RootCertStore};
use rustls_pki_types::ServerName;
use zeroize::Zeroizing;

use crate::connector::Summary;
use crate::danger::AcceptAnyServerCertificate;
use crate::pem::PemSource;
use crate::{DefaultRoots, PemRole, TlsConnector, TlsError};

/// How to set up TLS: which servers to trust, which certificate to present, how to name the
/// server. [`build`](Self::build) it into a [`TlsConnector`].
///
/// ```
/// use haka_tls::TlsOptions;
///
/// // Trust the platform's roots (or the bundled ones where there are none).
/// let public = TlsOptions::new().build()?;
///
/// // Trust exactly one private CA, and present a client certificate (mutual TLS).
/// # let tempdir = tempfile::tempdir()?;
/// # let dir = tempdir.path();
/// # let ca = rcgen::generate_simple_self_signed(["ca.example".to_owned()])?;
/// # let client = rcgen::generate_simple_self_signed(["client".to_owned()])?;
/// # std::fs::write(dir.join("ca.pem"), ca.cert.pem())?;
/// # std::fs::write(dir.join("client.pem"), client.cert.pem())?;
/// # std::fs::write(dir.join("client.key"), client.signing_key.serialize_pem())?;
/// let private = TlsOptions::new()
///     .with_ca_file(dir.join("ca.pem"))
///     .with_client_cert_files(dir.join("client.pem"), dir.join("client.key"))
///     .with_alpn(["mqtt"])
///     .build()?;
/// assert!(format!("{private:?}").contains("client_certificate: <redacted>"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Which servers are trusted
///
/// - By default, the [`DefaultRoots::PlatformOrBundled`] roots: the platform's store, or
///   Mozilla's set bundled with `webpki-roots` where the platform's store yields nothing.
/// - Once a CA is given with [`with_ca_file`](Self::with_ca_file) or
///   [`with_ca_pem`](Self::with_ca_pem), **only the CAs given** are trusted: the usual wish of
///   a deployment with its own CA is that no public CA can vouch for its broker. Each call
///   adds to the CAs given. To trust them on top of default roots, also call
///   [`with_default_roots`](Self::with_default_roots).
/// - [`dangerous_accept_any_server_certificate`](Self::dangerous_accept_any_server_certificate)
///   turns verification off; nothing else does.
///
/// Files are read, and the platform's store loaded, by [`build`](Self::build), not by the
/// `with_*` methods: building again picks up renewed certificates.
///
/// `Debug` never shows key material: a PEM given in memory shows only its length, and the
/// client key is `<redacted>`.
#[derive(Clone, Default)]
pub struct TlsOptions {
    default_roots: Option<DefaultRoots>,
    cas: Vec<PemSource>,
    client_auth: Option<ClientAuth>,
    server_name: Option<String>,
    alpn: Vec<Vec<u8>>,
    accept_any_server_certificate: bool,
}

/// A client certificate chain and its private key.
#[derive(Clone)]
struct ClientAuth {
    chain: PemSource,
    key: PemSource,
}

impl TlsOptions {
    /// Options trusting the [default roots](DefaultRoots::PlatformOrBundled), without a
    /// client certificate, naming the server by the host it is connected to.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts these default roots, also when CAs are given with
    /// [`with_ca_file`](Self::with_ca_file) or [`with_ca_pem`](Self::with_ca_pem) (then both
    /// are trusted).
    pub fn with_default_roots(mut self, roots: DefaultRoots) -> Self {
        self.default_roots = Some(roots);
        self
    }

    /// Trusts the CA certificates of the PEM file at `path` (every `CERTIFICATE` in it), and,
    /// unless [`with_default_roots`](Self::with_default_roots) is called too, only the CAs
    /// given.
    ///
    /// The file is read by [`build`](Self::build).
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cas.push(PemSource::File(path.into()));
        self
    }

    /// Trusts the CA certificates of this PEM text (every `CERTIFICATE` in it), and, unless
    /// [`with_default_roots`](Self::with_default_roots) is called too, only the CAs given.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.cas.push(PemSource::Memory(Zeroizing::new(pem.into())));
        self
    }

    /// Presents a client certificate (mutual TLS): the chain in the PEM file at `cert_path`,
    /// leaf first, and the private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at
    /// `key_path`, which may be the same file.
    ///
    /// The files are read by [`build`](Self::build). Replaces a client certificate given
    /// before.
    pub fn with_client_cert_files(
        mut self,
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        self.client_auth = Some(ClientAuth {
            chain: PemSource::File(cert_path.into()),
            key: PemSource::File(key_path.into()),
        });
        self
    }

    /// Presents a client certificate (mutual TLS): the chain in the PEM text `cert_pem`, leaf
    /// first, and the private key in the PEM text `key_pem`. The key's bytes are wiped from
    /// memory when the options are dropped.
    ///
    /// Replaces a client certificate given before.
    pub fn with_client_cert_pem(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_auth = Some(ClientAuth {
            chain: PemSource::Memory(Zeroizing::new(cert_pem.into())),
            key: PemSource::Memory(Zeroizing::new(key_pem.into())),
        });
        self
    }

    /// Names the server `name` (a DNS name or an IP address) instead of the host given to
    /// [`TlsConnector::connect`]: the name sent as SNI and checked against the server's
    /// certificate. For a broker reached through an address its certificate does not name.
    ///
    /// Checked by [`build`](Self::build) ([`TlsError::InvalidServerName`]).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Offers these ALPN protocols, in order of preference (RFC 7301); none by default.
    /// Some brokers want one: `"mqtt"` is the registered identifier of MQTT, AWS IoT Core
    /// takes `"x-amzn-mqtt-ca"` on port 443. Replaces a list given before.
    pub fn with_alpn<P: Into<Vec<u8>>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// **Insecure**: accepts any certificate the server presents, whoever issued it and
    /// whatever name it is for. Anyone able to intercept the connection can then read and
    /// change everything sent over it, credentials included.
    ///
    /// Meant for a test broker with a throwaway self-signed certificate. Handshake signatures
    /// are still checked, the CAs and default roots are not consulted, and the connector's
    /// `Debug` says that verification is off. Prefer trusting the test CA with
    /// [`with_ca_file`](Self::with_ca_file).
    pub fn dangerous_accept_any_server_certificate(mut self) -> Self {
        self.accept_any_server_certificate = true;
        self
    }

    /// Reads the files, loads the roots and checks everything given, into a connector.
    ///
    /// Reads the platform's root store when default roots are trusted: build once and clone
    /// the [`TlsConnector`], rather than build for every connection.
    ///
    /// # Errors
    ///
    /// A file that cannot be read ([`TlsError::ReadFile`]), a PEM that is malformed
    /// ([`TlsError::InvalidPem`]) or holds no certificate or key where one is expected
    /// ([`TlsError::NoCertificate`], [`TlsError::NoPrivateKey`]), a certificate or key
    /// rustls cannot use ([`TlsError::InvalidCaCertificate`],
    /// [`TlsError::InvalidPrivateKey`], [`TlsError::Config`]), an empty platform store under
    /// [`DefaultRoots::Platform`], or an invalid server name.
    pub fn build(&self) -> Result<TlsConnector, TlsError> {
        // An explicit provider, not the process default: another crate enabling a second
        // provider (aws-lc-rs) must not make this panic or change what it runs on.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_name = self
            .server_name
            .as_deref()
            .map(parse_server_name)
            .transpose()?;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;

        let (builder, trust) = if self.accept_any_server_certificate {
            let verifier =
                AcceptAnyServerCertificate::new(provider.signature_verification_algorithms);
            let builder = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier));
            (
                builder,
                "NONE: any server certificate is accepted (dangerous)".to_owned(),
            )
        } else {
            let (roots, trust) = self.root_store()?;
            (builder.with_root_certificates(roots), trust)
        };

        let mut config = self.with_client_auth(builder, &provider)?;
        config.alpn_protocols.clone_from(&self.alpn);
        let summary = Summary {
            trust,
            client_certificate: self.client_auth.is_some(),
            server_name: server_name.clone(),
        };
        Ok(TlsConnector::new(Arc::new(config), server_name, summary))
    }

    /// The roots to verify servers against, and what they are, for `Debug`.
    fn root_store(&self) -> Result<(RootCertStore, String), TlsError> {
        let mut store = RootCertStore::empty();
        let mut trust = Vec::new();
        let default_roots = match (self.default_roots, self.cas.is_empty()) {
            (Some(roots), _) => Some(roots),
            (None, true) => Some(DefaultRoots::default()),
            (None, false) => None,
        };
        if let Some(roots) = default_roots {
            trust.push(roots.load_into(&mut store)?);
        }
        let mut custom = 0;
        for source in &self.cas {
            for certificate in source.certificates(PemRole::CaCertificates)? {
                store
                    .add(certificate)
                    .map_err(|error| TlsError::InvalidCaCertificate {
                        pem: source.input(PemRole::CaCertificates),
                        error,
                    })?;
                custom += 1;
            }
        }
        if custom > 0 {
            trust.push(format!("given CAs ({custom})"));
        }
        Ok((store, trust.join(" + ")))
    }

    /// Finishes the configuration with the client certificate, if any.
    fn with_client_auth(
        &self,
        builder: ConfigBuilder<ClientConfig, WantsClientCert>,
        provider: &CryptoProvider,
    ) -> Result<ClientConfig, TlsError> {
        let Some(ClientAuth {
            chain,
            key: key_source,
        }) = &self.client_auth
        else {
            return Ok(builder.with_no_client_auth());
        };
        let chain = chain.certificates(PemRole::ClientCertificates)?;
        let key = key_source.private_key()?;
        // Load the key on its own first, to tell a key rustls cannot use from a key that
        // does not match the certificate (which `with_client_auth_cert` reports).
        if let Err(error) = provider.key_provider.load_private_key(key.clone_key()) {
            return Err(TlsError::InvalidPrivateKey {
                pem: key_source.input(PemRole::ClientKey),
                error,
            });
        }
        builder
            .with_client_auth_cert(chain, key)
            .map_err(TlsError::Config)
    }
}

/// The server name for `host`: a DNS name, or an IP address for an IPv4 or IPv6 literal
/// (brackets and an IPv6 zone, `fe80::1%eth0`, are dropped).
pub(crate) fn parse_server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let name = match unbracketed.split_once('%') {
        Some((ip, _zone)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => ip,
        _ => unbracketed,
    };
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::InvalidServerName {
        name: host.to_owned(),
    })
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client_auth = self
            .client_auth
            .as_ref()
            .map(|auth| ClientAuthDebug(&auth.chain));
        f.debug_struct("TlsOptions")
            .field("default_roots", &self.default_roots)
            .field("cas", &self.cas)
            .field("client_auth", &client_auth)
            .field("server_name", &self.server_name)
            .field("alpn", &AlpnDebug(&self.alpn))
            .field(
                "accept_any_server_certificate",
                &self.accept_any_server_certificate,
            )
            .finish()
    }
}

/// The chain's source, and the key as `<redacted>`.
struct ClientAuthDebug<'a>(&'a PemSource);

impl fmt::Debug for ClientAuthDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("chain", self.0)
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

/// ALPN identifiers as text where they are text.
pub(crate) struct AlpnDebug<'a>(pub(crate) &'a [Vec<u8>]);

impl fmt::Debug for AlpnDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| String::from_utf8_lossy(p)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn server_names_come_from_hosts() {
        let dns = parse_server_name("broker.example").unwrap();
        assert!(matches!(&dns, ServerName::DnsName(name) if name.as_ref() == "broker.example"));
        for (host, ip) in [
            ("127.0.0.1", "127.0.0.1"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("[fe80::1%eth0]", "fe80::1"),
            ("fe80::1%2", "fe80::1"),
        ] {
            let name = parse_server_name(host).unwrap();
            let expected: IpAddr = ip.parse().unwrap();
            assert!(
                matches!(&name, ServerName::IpAddress(got) if IpAddr::from(*got) == expected),
                "{host}: {name:?}"
            );
        }
        for bad in [
            "",
            "bad name",
            "[broker.example",
            "exa_mple..com",
            "host%zone",
        ] {
            let error = parse_server_name(bad).unwrap_err();
            assert!(
                matches!(&error, TlsError::InvalidServerName { name } if name == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_invalid_server_name_override_fails_the_build() {
        let error = TlsOptions::new()
            .with_server_name("not a name")
            .build()
            .unwrap_err();
        assert!(
            matches!(error, TlsError::InvalidServerName { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn custom_cas_replace_the_default_roots_unless_asked_for() {
        let ca = rcgen::generate_simple_self_signed(["ca.example".to_owned()]).unwrap();
        let only = TlsOptions::new()
            .with_ca_pem(ca.cert.pem())
            .root_store()
            .unwrap();
        assert_eq!(only.0.len(), 1);
        assert_eq!(only.1, "given CAs (1)");
        let both = TlsOptions::new()
            .with_ca_pem(ca.cert.pem())
            .with_default_roots(DefaultRoots::Bundled)
            .root_store()
            .unwrap();
        assert_eq!(both.0.len(), webpki_roots::TLS_SERVER_ROOTS.len() + 1);
        let default = TlsOptions::new().root_store().unwrap();
        assert!(!default.0.is_empty(), "{}", default.1);
    }
}
