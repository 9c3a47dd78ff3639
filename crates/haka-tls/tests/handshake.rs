//! Handshakes against a tokio-rustls server on the loopback interface, with a CA, server and
//! client certificates generated for each test by rcgen.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use haka_tls::rustls::server::WebPkiClientVerifier;
use haka_tls::rustls::{self, CertificateError, RootCertStore, ServerConfig};
use haka_tls::{PemRole, TlsConnector, TlsError, TlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The bound on every exchange, which on the loopback interface takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);
/// What the server sends once the handshake is done.
const GREETING: &[u8] = b"hello";

/// A certificate and its key, in PEM.
struct Identity {
    cert_pem: String,
    key_pem: String,
}

impl Identity {
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()]
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap()
    }
}

/// A CA, a server certificate for `localhost`, `127.0.0.1` and `::1`, and a client
/// certificate, all signed by the CA.
struct Pki {
    ca_pem: String,
    server: Identity,
    client: Identity,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        // A name of its own: a CA with the same name as the trusted one would be found as
        // the issuer and fail on the signature instead.
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let name = format!("Haka test CA {}", SERIAL.fetch_add(1, Ordering::Relaxed));
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |names: &[&str], common_name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &issuer).unwrap();
            Identity {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            }
        };
        Self {
            server: leaf(
                &["localhost", "127.0.0.1", "::1"],
                "localhost",
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            client: leaf(
                &["client.haka.test"],
                "client",
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            ca_pem,
        }
    }

    /// A server presenting `self.server`, requiring a client certificate signed by the CA
    /// when `require_client_cert`.
    fn server_config(&self, require_client_cert: bool) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder
            .with_single_cert(self.server.chain(), self.server.key())
            .unwrap()
    }

    /// The CA, the client certificate and the client key written to files in `dir`.
    fn write_files(&self, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let ca = dir.join("ca.pem");
        let cert = dir.join("client.pem");
        let key = dir.join("client.key");
        std::fs::write(&ca, &self.ca_pem).unwrap();
        std::fs::write(&cert, &self.client.cert_pem).unwrap();
        std::fs::write(&key, &self.client.key_pem).unwrap();
        (ca, cert, key)
    }
}

/// What the server saw of its one connection: whether the client presented a certificate.
type Served = JoinHandle<io::Result<bool>>;

/// Serves one TLS connection on `ip`, port 0: handshake, send [`GREETING`], close.
async fn serve_once(config: ServerConfig, ip: &str) -> (SocketAddr, Served) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let client_cert = tls.get_ref().1.peer_certificates().is_some();
        tls.write_all(GREETING).await?;
        tls.shutdown().await?;
        Ok(client_cert)
    });
    (addr, served)
}

/// How a client's exchange with [`serve_once`] ended.
#[derive(Debug)]
enum Outcome {
    /// Handshake done and greeting read, with the ALPN protocol agreed on.
    Greeted { alpn: Option<Vec<u8>> },
    /// `TlsConnector::connect` failed.
    Refused(TlsError),
    /// The handshake completed on the client's side, but reading failed (TLS 1.3: the
    /// server refused the client certificate after the client finished).
    ReadFailed(io::Error),
}

/// Dials `addr` over TCP, then runs TLS naming the server `host`.
async fn exchange(connector: &TlsConnector, host: &str, addr: SocketAddr) -> Outcome {
    let run = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = match connector.connect(host, tcp).await {
            Ok(tls) => tls,
            Err(error) => return Outcome::Refused(error),
        };
        let mut greeting = [0; GREETING.len()];
        match tls.read_exact(&mut greeting).await {
            Ok(_) => {
                assert_eq!(greeting, GREETING);
                Outcome::Greeted {
                    alpn: tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec),
                }
            }
            Err(error) => Outcome::ReadFailed(error),
        }
    };
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the exchange timed out")
}

async fn served(served: Served) -> io::Result<bool> {
    tokio::time::timeout(PATIENCE, served)
        .await
        .expect("the server timed out")
        .unwrap()
}

fn assert_rejected(outcome: &Outcome, expected: impl Fn(&CertificateError) -> bool) {
    match outcome {
        Outcome::Refused(TlsError::CertificateRejected { reason, .. }) if expected(reason) => {}
        other => panic!("expected a rejected certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn handshake_succeeds_with_the_ca_file() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write_files(dir.path());
    let connector = TlsOptions::new().with_ca_file(ca).build().unwrap();
    let (addr, server) = serve_once(pki.server_config(false), "127.0.0.1").await;
    let outcome = exchange(&connector, "localhost", addr).await;
    assert!(
        matches!(outcome, Outcome::Greeted { alpn: None }),
        "{outcome:?}"
    );
    assert!(
        !served(server).await.unwrap(),
        "no client certificate was asked for"
    );
}

#[tokio::test]
async fn handshake_succeeds_for_ip_literals() {
    let pki = Pki::new();
    let connector = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .build()
        .unwrap();
    let (addr, server) = serve_once(pki.server_config(false), "127.0.0.1").await;
    let outcome = exchange(&connector, "127.0.0.1", addr).await;
    assert!(matches!(outcome, Outcome::Greeted { .. }), "{outcome:?}");
    served(server).await.unwrap();

    if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        eprintln!("handshake_succeeds_for_ip_literals: IPv6 part SKIPPED: no IPv6 loopback here");
        return;
    }
    for host in ["::1", "[::1]"] {
        let (addr, server) = serve_once(pki.server_config(false), "::1").await;
        let outcome = exchange(&connector, host, addr).await;
        assert!(
            matches!(outcome, Outcome::Greeted { .. }),
            "{host}: {outcome:?}"
        );
        served(server).await.unwrap();
    }
}

#[tokio::test]
async fn a_server_from_an_unknown_ca_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    // Trusting another CA, and trusting the default roots: both refuse the test CA.
    for options in [
        TlsOptions::new().with_ca_pem(other.ca_pem),
        TlsOptions::new(),
    ] {
        let connector = options.build().unwrap();
        let (addr, server) = serve_once(pki.server_config(false), "127.0.0.1").await;
        let outcome = exchange(&connector, "localhost", addr).await;
        assert_rejected(&outcome, |reason| {
            *reason == CertificateError::UnknownIssuer
        });
        assert!(served(server).await.is_err());
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new();
    let connector = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .build()
        .unwrap();
    let (addr, server) = serve_once(pki.server_config(false), "127.0.0.1").await;
    // TCP goes to 127.0.0.1; SNI and verification use the name.
    let outcome = exchange(&connector, "wrong.example", addr).await;
    assert_rejected(&outcome, |reason| {
        matches!(
            reason,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    });
    let message = match &outcome {
        Outcome::Refused(error) => error.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        message.starts_with("TLS certificate of wrong.example rejected: "),
        "{message}"
    );
    assert!(served(server).await.is_err());
}

#[tokio::test]
async fn the_server_name_override_is_what_is_verified() {
    let pki = Pki::new();
    let (addr, server) = serve_once(pki.server_config(false), "127.0.0.1").await;
    let connector = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .with_server_name("localhost")
        .build()
        .unwrap();
    let outcome = exchange(&connector, "wrong.example", addr).await;
    assert!(matches!(outcome, Outcome::Greeted { .. }), "{outcome:?}");
    served(server).await.unwrap();
}

#[tokio::test]
async fn mutual_tls_is_accepted_with_a_client_certificate() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki.write_files(dir.path());
    let from_files = TlsOptions::new()
        .with_ca_file(&ca)
        .with_client_cert_files(&cert, &key);
    let from_pem = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .with_client_cert_pem(pki.client.cert_pem.clone(), pki.client.key_pem.clone());
    for options in [from_files, from_pem] {
        let connector = options.build().unwrap();
        let (addr, server) = serve_once(pki.server_config(true), "127.0.0.1").await;
        let outcome = exchange(&connector, "localhost", addr).await;
        assert!(matches!(outcome, Outcome::Greeted { .. }), "{outcome:?}");
        assert!(
            served(server).await.unwrap(),
            "the server saw the client certificate"
        );
    }
}

#[tokio::test]
async fn mutual_tls_is_refused_without_a_client_certificate() {
    let pki = Pki::new();
    let connector = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .build()
        .unwrap();
    let (addr, server) = serve_once(pki.server_config(true), "127.0.0.1").await;
    match exchange(&connector, "localhost", addr).await {
        // TLS 1.2: the server's refusal ends the handshake.
        Outcome::Refused(TlsError::Protocol {
            error: rustls::Error::AlertReceived(_),
            ..
        }) => {}
        // TLS 1.3: the client has finished; the server's alert comes with the first read.
        Outcome::ReadFailed(error) => {
            let alert = error
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>());
            assert!(
                matches!(alert, Some(rustls::Error::AlertReceived(_))),
                "{error:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(served(server).await.is_err());
}

#[tokio::test]
async fn a_client_certificate_from_an_unknown_ca_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    let connector = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .with_client_cert_pem(other.client.cert_pem, other.client.key_pem)
        .build()
        .unwrap();
    let (addr, server) = serve_once(pki.server_config(true), "127.0.0.1").await;
    let outcome = exchange(&connector, "localhost", addr).await;
    assert!(
        matches!(
            outcome,
            Outcome::Refused(TlsError::Protocol { .. }) | Outcome::ReadFailed(_)
        ),
        "{outcome:?}"
    );
    assert!(served(server).await.is_err());
}

#[tokio::test]
async fn dangerous_accept_any_server_certificate_accepts_a_self_signed_one() {
    let self_signed = rcgen::generate_simple_self_signed(["elsewhere.example".to_owned()]).unwrap();
    let identity = Identity {
        cert_pem: self_signed.cert.pem(),
        key_pem: self_signed.signing_key.serialize_pem(),
    };
    let config = || {
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(identity.chain(), identity.key())
            .unwrap()
    };

    let verifying = TlsOptions::new().build().unwrap();
    let (addr, server) = serve_once(config(), "127.0.0.1").await;
    let outcome = exchange(&verifying, "localhost", addr).await;
    assert_rejected(&outcome, |_| true);
    assert!(served(server).await.is_err());

    let insecure = TlsOptions::new()
        .dangerous_accept_any_server_certificate()
        .build()
        .unwrap();
    assert!(format!("{insecure:?}").contains("any server certificate is accepted"));
    let (addr, server) = serve_once(config(), "127.0.0.1").await;
    let outcome = exchange(&insecure, "localhost", addr).await;
    assert!(matches!(outcome, Outcome::Greeted { .. }), "{outcome:?}");
    served(server).await.unwrap();
}

#[tokio::test]
async fn alpn_is_offered() {
    let pki = Pki::new();
    let mut config = pki.server_config(false);
    config.alpn_protocols = vec![b"mqtt".to_vec()];
    let connector = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .with_alpn(["x-other", "mqtt"])
        .build()
        .unwrap();
    let (addr, server) = serve_once(config, "127.0.0.1").await;
    let outcome = exchange(&connector, "localhost", addr).await;
    assert!(
        matches!(&outcome, Outcome::Greeted { alpn: Some(p) } if p == b"mqtt"),
        "{outcome:?}"
    );
    served(server).await.unwrap();
}

#[test]
fn debug_never_shows_key_material() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki.write_files(dir.path());
    let key_der = pki.client.key();
    let key_body: Vec<&str> = pki
        .client
        .key_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der_prefix = format!("{:?}", &key_der.secret_der()[..8]);
    let der_prefix = der_prefix.trim_matches(|c| c == '[' || c == ']');

    let from_pem = TlsOptions::new()
        .with_ca_pem(pki.ca_pem.clone())
        .with_client_cert_pem(pki.client.cert_pem.clone(), pki.client.key_pem.clone());
    let from_files = TlsOptions::new()
        .with_ca_file(ca)
        .with_client_cert_files(cert, key);
    for options in [from_pem, from_files] {
        let connector = options.build().unwrap();
        for shown in [
            format!("{options:?}"),
            format!("{options:#?}"),
            format!("{connector:?}"),
        ] {
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            for line in &key_body {
                assert!(!shown.contains(line), "{shown}");
            }
            assert!(!shown.contains(der_prefix), "{shown}");
        }
    }
}

#[test]
fn pem_without_what_is_expected_is_a_typed_error() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = pki.write_files(dir.path());

    // A CA file holding only a key.
    let error = TlsOptions::new().with_ca_file(&key).build().unwrap_err();
    assert!(
        matches!(&error, TlsError::NoCertificate { pem }
            if pem.role == PemRole::CaCertificates && pem.path.as_deref() == Some(key.as_path())),
        "{error:?}"
    );
    assert!(error
        .to_string()
        .starts_with("no certificate found in CA certificate file "));

    // A client certificate file holding only a key.
    let error = TlsOptions::new()
        .with_client_cert_files(&key, &key)
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, TlsError::NoCertificate { pem } if pem.role == PemRole::ClientCertificates),
        "{error:?}"
    );

    // A key file holding only a certificate.
    let error = TlsOptions::new()
        .with_client_cert_files(&cert, &cert)
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, TlsError::NoPrivateKey { pem } if pem.path.as_deref() == Some(cert.as_path())),
        "{error:?}"
    );

    // In memory, no PEM at all.
    let error = TlsOptions::new()
        .with_ca_pem("not PEM")
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, TlsError::NoCertificate { pem } if pem.path.is_none()),
        "{error:?}"
    );

    // A file that is not there.
    let missing = dir.path().join("missing.pem");
    let error = TlsOptions::new()
        .with_ca_file(&missing)
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, TlsError::ReadFile { path, source }
            if *path == missing && source.kind() == io::ErrorKind::NotFound),
        "{error:?}"
    );
}

#[test]
fn a_key_not_matching_the_certificate_is_refused() {
    let pki = Pki::new();
    let error = TlsOptions::new()
        .with_client_cert_pem(pki.client.cert_pem.clone(), pki.server.key_pem.clone())
        .build()
        .unwrap_err();
    assert!(matches!(error, TlsError::Config(_)), "{error:?}");
}

#[test]
fn a_corrupt_key_is_refused() {
    let pki = Pki::new();
    let corrupt = "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n";
    let error = TlsOptions::new()
        .with_client_cert_pem(pki.client.cert_pem.clone(), corrupt)
        .build()
        .unwrap_err();
    assert!(
        matches!(error, TlsError::InvalidPrivateKey { .. }),
        "{error:?}"
    );
}
