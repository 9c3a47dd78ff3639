//! Transports: how the client reaches the broker, and how a user brings another one.

use std::{future::Future, io, pin::Pin, time::Duration};

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to the broker: anything that reads and writes asynchronously.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

/// A boxed [`Transport`].
pub type BoxTransport = Box<dyn Transport>;

/// The future of [`Connector::connect`].
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BoxTransport>> + Send + 'a>>;

/// Opens a new transport to the broker, for the first connection and every reconnection.
///
/// The client dials through one, so a user can bring any transport (a Unix socket, a
/// WebSocket, an in-memory pipe) with [`Client::start_with`](crate::Client::start_with).
///
/// ```
/// use haka::{BoxTransport, ConnectFuture, Connector};
///
/// /// Dials a fixed address over plain TCP.
/// struct Plain(std::net::SocketAddr);
///
/// impl Connector for Plain {
///     fn connect(&self) -> ConnectFuture<'_> {
///         Box::pin(async move {
///             let stream = tokio::net::TcpStream::connect(self.0).await?;
///             Ok(Box::new(stream) as BoxTransport)
///         })
///     }
/// }
/// ```
pub trait Connector: Send + Sync + 'static {
    /// Opens a transport, ready for MQTT bytes (any handshake done).
    fn connect(&self) -> ConnectFuture<'_>;
}

/// Plain TCP: every resolved address in turn, `TCP_NODELAY`, immediate acknowledgements
/// ([`haka_tcp::QuickAckStream`]), bounded by a timeout.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    host: String,
    port: u16,
    timeout: Duration,
}

impl TcpConnector {
    /// Dials `host:port`, each attempt bounded by `timeout`.
    pub fn new(host: impl Into<String>, port: u16, timeout: Duration) -> Self {
        Self {
            host: host.into(),
            port,
            timeout,
        }
    }
}

impl Connector for TcpConnector {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = haka_tcp::connect(&self.host, self.port, self.timeout)
                .await
                .map_err(io::Error::other)?;
            Ok(Box::new(haka_tcp::QuickAckStream::new(stream)) as BoxTransport)
        })
    }
}

/// TLS over TCP, with rustls; the handshake is bounded by the same timeout as the TCP
/// connection.
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub struct TlsConnector {
    tcp: TcpConnector,
    tls: haka_tls::TlsConnector,
}

#[cfg(feature = "tls")]
impl TlsConnector {
    /// Dials `tcp` then runs the TLS handshake with `tls`, for the host `tcp` dials (SNI
    /// and verification use it).
    pub fn new(tcp: TcpConnector, tls: haka_tls::TlsConnector) -> Self {
        Self { tcp, tls }
    }
}

#[cfg(feature = "tls")]
impl Connector for TlsConnector {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = haka_tcp::connect(&self.tcp.host, self.tcp.port, self.tcp.timeout)
                .await
                .map_err(io::Error::other)?;
            let stream = haka_tcp::QuickAckStream::new(stream);
            let handshake = self.tls.connect(&self.tcp.host, stream);
            let stream = tokio::time::timeout(self.tcp.timeout, handshake)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
                .map_err(io::Error::other)?;
            Ok(Box::new(stream) as BoxTransport)
        })
    }
}
