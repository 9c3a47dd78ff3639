//! [`Config`]: what the session sends in CONNECT and the limits it keeps.

use std::{num::NonZeroU16, time::Duration};

use haka_codec::{Connect, LastWill, Login, MqttString, DEFAULT_MAX_INCOMING_PACKET_SIZE};

/// The default in-flight window: QoS 1 and 2 messages sent and not yet completed.
///
/// 20, the default `max_inflight_messages` of mosquitto, which is also its quota of
/// incoming QoS 2 messages awaiting PUBREL. MQTT 3.1.1 cannot tell a client a broker's
/// limit, and a broker past it may acknowledge a PUBLISH and drop it: mosquitto 2.0 answers
/// a QoS 1 PUBLISH over its quota with a PUBACK and discards the message. A window no
/// larger than the broker's limit keeps that from happening; raise it together with the
/// broker's setting.
pub const DEFAULT_MAX_INFLIGHT: u16 = 20;
/// The default limit on messages waiting in the queue, in flight or not.
pub const DEFAULT_MAX_QUEUED_MESSAGES: usize = 1_000_000;
/// The default limit on the payload and topic bytes of the queued messages.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 256 << 20;
/// How long the session waits for CONNACK when neither keep alive nor an idle timeout bounds
/// the wait.
pub const DEFAULT_CONNACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The configuration of a [`Session`](crate::Session): the CONNECT options, the timers, the
/// in-flight window and the queue limits.
///
/// ```
/// use std::{num::NonZeroU16, time::Duration};
/// use haka_codec::{Login, MqttString, Password};
/// use haka_session::Config;
///
/// let config = Config::new(MqttString::new("sensor-17")?)
///     .clean_session(false)
///     .keep_alive(Duration::from_secs(30))
///     .login(Login::new(MqttString::new("alice")?, Some(Password::new("secret")?)))
///     .max_inflight(NonZeroU16::new(200).unwrap());
/// assert_eq!(config.idle_timeout(), Some(Duration::from_secs(45)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) connect: Connect,
    idle_timeout: Option<Option<Duration>>,
    pub(crate) connack_timeout: Duration,
    pub(crate) max_inflight: NonZeroU16,
    pub(crate) max_queued_messages: usize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) manual_ack: bool,
    pub(crate) max_incoming_packet_size: usize,
    pub(crate) max_outgoing_packet_size: usize,
}

impl Config {
    /// A configuration for client `client_id`: clean session, keep alive 60 s, no will, no
    /// login, an in-flight window of [`DEFAULT_MAX_INFLIGHT`], automatic acknowledgements.
    pub fn new(client_id: MqttString) -> Self {
        Self {
            connect: Connect::new(client_id),
            idle_timeout: None,
            connack_timeout: DEFAULT_CONNACK_TIMEOUT,
            max_inflight: NonZeroU16::new(DEFAULT_MAX_INFLIGHT).unwrap_or(NonZeroU16::MIN),
            max_queued_messages: DEFAULT_MAX_QUEUED_MESSAGES,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            manual_ack: false,
            max_incoming_packet_size: DEFAULT_MAX_INCOMING_PACKET_SIZE,
            max_outgoing_packet_size: haka_codec::MAX_PACKET_SIZE,
        }
    }

    /// Whether the broker starts a new session on every connection (section 3.1.2.4).
    ///
    /// Stored messages are kept and resent either way: a QoS 1 or 2 message accepted by
    /// [`Session::publish`](crate::Session::publish) is never dropped. Exactly-once delivery
    /// of QoS 2 messages across a reconnect needs `false`: with a clean session the broker
    /// forgets which messages it already received, so one resent after a lost PUBREC may be
    /// delivered twice.
    #[must_use]
    pub fn clean_session(mut self, clean: bool) -> Self {
        self.connect.clean_session = clean;
        self
    }

    /// The keep alive: the session sends PINGREQ after this long without sending anything
    /// (section 3.1.2.10), or without receiving anything. Whole seconds up to 65,535, rounded up; zero turns pings off.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        // Rounded up, so that a keep alive under a second does not turn pings off.
        let seconds = keep_alive.as_secs() + u64::from(keep_alive.subsec_nanos() > 0);
        self.connect.keep_alive = u16::try_from(seconds).unwrap_or(u16::MAX);
        self
    }

    /// The will the broker publishes if the connection is lost without DISCONNECT.
    #[must_use]
    pub fn will(mut self, will: Option<LastWill>) -> Self {
        self.connect.will = will;
        self
    }

    /// User name and password.
    #[must_use]
    pub fn login(mut self, login: Login) -> Self {
        self.connect.login = Some(login);
        self
    }

    /// How long the connection may stay silent before the session gives up on it: the bound
    /// on the wait for CONNACK and, once connected, on the time between two received packets.
    /// `None` turns the idle abort off.
    ///
    /// The default is 1.5 times the keep alive, the rule the broker applies to the client
    /// [MQTT-3.1.2-24], or `None` when keep alive is zero.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// How long to wait for CONNACK when [`Config::idle_timeout`] is `None`; default
    /// [`DEFAULT_CONNACK_TIMEOUT`].
    #[must_use]
    pub fn connack_timeout(mut self, timeout: Duration) -> Self {
        self.connack_timeout = timeout;
        self
    }

    /// The in-flight window: how many QoS 1 and 2 messages may be sent and not yet completed.
    /// Messages beyond it wait, in order. Keep it at or below the broker's own limit on
    /// messages in flight from one client (see [`DEFAULT_MAX_INFLIGHT`]).
    #[must_use]
    pub fn max_inflight(mut self, window: NonZeroU16) -> Self {
        self.max_inflight = window;
        self
    }

    /// Limits on the queue: the number of messages accepted and not yet completed, and their
    /// topic and payload bytes. A publish beyond either is refused with
    /// [`SessionError::QueueFull`](crate::SessionError::QueueFull); nothing queued is dropped.
    #[must_use]
    pub fn queue_limits(mut self, messages: usize, bytes: usize) -> Self {
        self.max_queued_messages = messages;
        self.max_queued_bytes = bytes;
        self
    }

    /// Whether the application acknowledges received QoS 1 and 2 messages itself, with
    /// [`Session::ack`](crate::Session::ack), once it has processed them. The PUBACKs and
    /// PUBRECs still go out in the order the messages arrived [MQTT-4.6.0-2],
    /// [MQTT-4.6.0-3]. Default: `false`, the session acknowledges on receipt.
    #[must_use]
    pub fn manual_ack(mut self, manual: bool) -> Self {
        self.manual_ack = manual;
        self
    }

    /// The largest packet accepted from the broker (default 1 MiB) and the largest the
    /// session sends (default: MQTT's own limit).
    #[must_use]
    pub fn max_packet_size(mut self, incoming: usize, outgoing: usize) -> Self {
        self.max_incoming_packet_size = incoming;
        self.max_outgoing_packet_size = outgoing;
        self
    }

    /// The queue limits: messages, and their topic and payload bytes.
    pub fn queue_limit(&self) -> (usize, usize) {
        (self.max_queued_messages, self.max_queued_bytes)
    }

    /// The largest packet the session sends.
    pub fn max_outgoing_packet_size(&self) -> usize {
        self.max_outgoing_packet_size
    }

    /// The CONNECT packet the session opens each connection with.
    pub fn connect_packet(&self) -> &Connect {
        &self.connect
    }

    /// The client identifier.
    pub fn client_id(&self) -> &MqttString {
        &self.connect.client_id
    }

    /// The keep alive, zero when pings are off.
    pub fn keep_alive_interval(&self) -> Duration {
        Duration::from_secs(self.connect.keep_alive.into())
    }

    /// The idle timeout in force: the one set, or 1.5 times the keep alive.
    pub fn idle_timeout(&self) -> Option<Duration> {
        match self.idle_timeout {
            Some(set) => set,
            None if self.connect.keep_alive == 0 => None,
            None => Some(self.keep_alive_interval() * 3 / 2),
        }
    }

    /// The bound on the wait for CONNACK: the idle timeout, or the CONNACK timeout without
    /// one.
    pub fn connack_wait(&self) -> Duration {
        self.idle_timeout().unwrap_or(self.connack_timeout)
    }
}
