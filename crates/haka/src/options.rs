//! [`ClientOptions`]: where the broker is and everything about the session with it.

use std::{num::NonZeroU16, path::PathBuf, time::Duration};

use haka_codec::{BinaryData, LastWill, Login, MqttString, Password, QoS, TopicName};
use haka_session::{Config, Durability};

use crate::{Backoff, ClientError};

/// Whether the connection is plain TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `mqtt://`, port 1883 by default.
    Tcp,
    /// `mqtts://`, port 8883 by default.
    Tls,
}

/// Where the QoS queue is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOptions {
    /// In memory: the queue survives reconnects, not the end of the process.
    Memory,
    /// In a directory, as a checksummed log: the queue survives restarts and crashes.
    Directory {
        /// The store's directory, created if missing; one client per directory.
        path: PathBuf,
        /// How durable each commit is.
        durability: Durability,
    },
}

/// How to reach the broker and what to ask of it.
///
/// ```
/// use std::time::Duration;
/// use haka::{ClientOptions, StoreOptions};
/// use haka_session::Durability;
///
/// let options = ClientOptions::new("mqtt://127.0.0.1:1883", "sensor-17")?
///     .clean_session(false)
///     .keep_alive(Duration::from_secs(30))
///     .credentials("alice", "secret")?
///     .store(StoreOptions::Directory { path: "/var/lib/sensor".into(), durability: Durability::Fsync });
/// assert_eq!(options.port(), 1883);
/// # Ok::<(), haka::ClientError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) session: Config,
    pub(crate) store: StoreOptions,
    pub(crate) manual_ack: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) reconnect: bool,
    pub(crate) max_identical_failures: u32,
    pub(crate) command_capacity: usize,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<haka_tls::TlsOptions>,
}

impl ClientOptions {
    /// Options for client `client_id` of the broker at `url` (`mqtt://host:port` or
    /// `mqtts://host:port`; IPv6 hosts in brackets), with the defaults of
    /// [`haka_session::Config`], a memory store and automatic reconnection.
    pub fn new(url: &str, client_id: &str) -> Result<Self, ClientError> {
        let parsed = url::Url::parse(url).map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
        let scheme = match parsed.scheme() {
            "mqtt" | "tcp" => Scheme::Tcp,
            "mqtts" | "ssl" | "tls" => Scheme::Tls,
            other => {
                return Err(ClientError::Url(format!(
                    "unknown scheme {other:?} in {url}"
                )))
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(ClientError::Url(format!("no host in {url}"))),
        };
        let port = parsed.port().unwrap_or(match scheme {
            Scheme::Tcp => 1883,
            Scheme::Tls => 8883,
        });
        if !matches!(parsed.path(), "" | "/") {
            return Err(ClientError::Url(format!("unexpected path in {url}")));
        }
        if host.is_empty() {
            return Err(ClientError::Url(format!("no host in {url}")));
        }
        // Credentials in the URL would be dropped silently, and then refused forever.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ClientError::Url(format!(
                "credentials in the URL are not used; set them with ClientOptions::credentials: {}",
                parsed.host_str().unwrap_or_default()
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(ClientError::Url(format!(
                "unexpected query or fragment in {url}"
            )));
        }
        Ok(Self {
            scheme,
            host,
            port,
            session: Config::new(MqttString::new(client_id)?),
            store: StoreOptions::Memory,
            manual_ack: false,
            connect_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            reconnect: true,
            max_identical_failures: 5,
            command_capacity: 1024,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// The broker's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// TCP or TLS.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// See [`Config::clean_session`]: stored messages are resent either way.
    #[must_use]
    pub fn clean_session(mut self, clean: bool) -> Self {
        self.session = self.session.clean_session(clean);
        self
    }

    /// See [`Config::keep_alive`].
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.session = self.session.keep_alive(keep_alive);
        self
    }

    /// See [`Config::with_idle_timeout`].
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.session = self.session.with_idle_timeout(timeout);
        self
    }

    /// User name and password. Neither is ever logged; the password's `Debug` is redacted.
    pub fn credentials(mut self, username: &str, password: &str) -> Result<Self, ClientError> {
        let login = Login::new(
            MqttString::new(username)?,
            Some(Password::new(password.as_bytes().to_vec())?),
        );
        self.session = self.session.login(login);
        Ok(self)
    }

    /// The will: published by the broker if the connection is lost without DISCONNECT.
    pub fn will(
        mut self,
        topic: &str,
        payload: impl Into<bytes::Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Self, ClientError> {
        let mut will = LastWill::new(TopicName::new(topic)?, BinaryData::new(payload)?, qos);
        will.retain = retain;
        self.session = self.session.will(Some(will));
        Ok(self)
    }

    /// See [`Config::max_inflight`].
    #[must_use]
    pub fn max_inflight(mut self, window: NonZeroU16) -> Self {
        self.session = self.session.max_inflight(window);
        self
    }

    /// See [`Config::queue_limits`]: beyond them, `publish` fails with
    /// [`SessionError::QueueFull`](haka_session::SessionError::QueueFull).
    #[must_use]
    pub fn queue_limits(mut self, messages: usize, bytes: usize) -> Self {
        self.session = self.session.queue_limits(messages, bytes);
        self
    }

    /// See [`Config::max_packet_size`].
    #[must_use]
    pub fn max_packet_size(mut self, incoming: usize, outgoing: usize) -> Self {
        self.session = self.session.max_packet_size(incoming, outgoing);
        self
    }

    /// Where the QoS queue is kept; [`StoreOptions::Memory`] by default.
    #[must_use]
    pub fn store(mut self, store: StoreOptions) -> Self {
        self.store = store;
        self
    }

    /// Whether received QoS 1 and 2 messages are acknowledged by the application with
    /// [`Message::ack`](crate::Message::ack) (after processing them), rather than when they
    /// are taken from [`Messages`](crate::Messages). Either way the acknowledgements go out in
    /// the order the messages arrived, and the broker's in-flight window keeps the number of
    /// unacknowledged messages bounded.
    #[must_use]
    pub fn manual_ack(mut self, manual: bool) -> Self {
        self.manual_ack = manual;
        self
    }

    /// The bound on the TCP connection (resolution included) and, separately, on the TLS
    /// handshake; 10 s each by default. The wait for CONNACK is bounded by the idle timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether the client reconnects by itself after a connection ends (default), and how
    /// long it waits between attempts.
    #[must_use]
    pub fn reconnect(mut self, enabled: bool, backoff: Backoff) -> Self {
        self.reconnect = enabled;
        self.backoff = backoff;
        self
    }

    /// After how many connections that ended the same way on the same message the client
    /// gives up on that message ([`PublishError::Refused`](crate::PublishError)); 0 never
    /// gives up. Default 5.
    ///
    /// Two endings count: the broker answering the message with the wrong acknowledgement
    /// (PUBACK for QoS 2, ...), which names the message; and the broker closing the
    /// connection in order after the message was written and before anything completed,
    /// where the oldest message not yet acknowledged is the suspect. Network resets and
    /// failures before CONNACK never count, and a message the broker already acknowledged
    /// with PUBREC is never given up.
    #[must_use]
    pub fn max_identical_failures(mut self, failures: u32) -> Self {
        self.max_identical_failures = failures;
        self
    }

    /// How many commands (subscribe, unsubscribe, disconnect) may wait for the driver before
    /// callers wait; default 1,024. Publishing does not go through them.
    #[must_use]
    pub fn command_capacity(mut self, capacity: usize) -> Self {
        self.command_capacity = capacity.max(1);
        self
    }

    /// TLS settings for `mqtts://`: trusted roots, client certificate, ... The default
    /// verifies the server against the platform's roots.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: haka_tls::TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The session configuration these options make.
    pub fn session_config(&self) -> &Config {
        &self.session
    }
}
