//! [`Session`]: the client's protocol state machine.

use std::{collections::VecDeque, time::Instant};

use bytes::{Bytes, BytesMut};
use haka_codec::{
    Codec, ConnAck, ConnectReturnCode, Delivery, Disconnect, Packet, PacketId, PacketType, PubAck,
    PubComp, PubRec, PubRel, Publish, QoS, Subscribe, Subscription, TopicFilter, TopicName,
    Unsubscribe,
};

use crate::{
    error::{DisconnectReason, ProtocolError, QueueLimit, SessionError},
    event::{AckToken, Event, Incoming},
    inbound::{AckSlot, Inbound, Qos2},
    outgoing::{ByPacketId, Inflight, Outgoing, Pending},
    packet_ids::PacketIds,
    store::{Stage, Store, StoreError, StoredMessage},
    Config, MemoryStore, MessageId,
};

/// How many bytes one [`Session::poll_transmit`] call appends, about: enough for one write
/// system call to carry many packets, small enough to keep the buffer in cache.
const TRANSMIT_BUDGET: usize = 64 * 1024;

/// The identity of a SUBSCRIBE or UNSUBSCRIBE request, reported again with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// The identity as a number; they increase with every request.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Where the session is with its current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// No connection: before [`Session::handle_connected`], or after
    /// [`Event::Disconnected`].
    Disconnected,
    /// CONNECT is queued or sent; CONNACK has not come yet.
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
    /// DISCONNECT was sent: the transport's write half may be shut down. Acknowledgements are
    /// still processed until the broker closes the connection or the wait for that runs
    /// out.
    Closing,
}

/// A SUBSCRIBE or UNSUBSCRIBE waiting for its acknowledgement.
#[derive(Debug)]
struct Request {
    id: RequestId,
    packet: Packet,
}

/// What the session owes the broker besides new messages and acknowledgements of its
/// messages, in the order it must go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    /// Resend the message in flight under this identifier: PUBLISH with DUP = 1, or PUBREL
    /// once PUBREC came.
    Resend(PacketId),
    PubRel(PacketId),
    PubComp(PacketId),
    PingReq,
    Request(PacketId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    AwaitingConnAck { since: Instant },
    Up,
    Closing { since: Instant },
}

/// A sans-IO MQTT 3.1.1 client session: the send path, the receive path, keepalive and the
/// connection lifecycle, over a persisted QoS queue.
///
/// The session does no I/O and reads no clock. The caller owns the transport (TCP, TLS, a
/// test harness), moves bytes between it and the session, and passes the current time in.
/// The queue of QoS 1 and 2 messages lives in a [`Store`], so that it survives reconnects
/// and, with a [`FileStore`](crate::FileStore), restarts and crashes.
///
/// # Driving a session
///
/// - **Commands** are called whenever the application wants:
///   [`publish`](Self::publish), [`subscribe`](Self::subscribe),
///   [`unsubscribe`](Self::unsubscribe), [`ack`](Self::ack) (with
///   [manual acknowledgement](Config::manual_ack)), [`disconnect`](Self::disconnect). They
///   work with or without a connection: what cannot be sent now waits for the next one.
/// - **Input**: [`handle_connected`](Self::handle_connected) once a transport is up (the
///   session then queues CONNECT); [`handle_bytes`](Self::handle_bytes) (or
///   [`handle_packet`](Self::handle_packet)) with what was read;
///   [`handle_timeout`](Self::handle_timeout) when the instant from
///   [`poll_timeout`](Self::poll_timeout) has come;
///   [`handle_connection_lost`](Self::handle_connection_lost) when the transport closed or
///   failed.
/// - **Output**, after every input or command, until each returns nothing:
///   1. [`poll_event`](Self::poll_event): what the application must know, first, so that
///      it hears of a message or a PUBREC before the acknowledgement or PUBREL that follows
///      is written (the original's callbacks ran before the answer was queued). On
///      [`Event::Disconnected`] close the transport; connect again (with backoff) and call
///      `handle_connected` to resume.
///   2. [`poll_transmit`](Self::poll_transmit): bytes to write, in order. Write them all
///      before the next call's bytes. It may produce events (a QoS 0 message written is
///      complete), so poll events again after it.
///   3. [`poll_timeout`](Self::poll_timeout): when to call `handle_timeout` next, if
///      nothing else happens before.
///
/// Anything from the broker that breaks the protocol ends the connection with a typed
/// [`DisconnectReason`] and leaves the queue as it was.
///
/// # Durability
///
/// A QoS 1 or 2 message accepted by `publish` is written to the store at once and committed,
/// together with everything else changed since the last commit, before `poll_transmit`
/// returns its PUBLISH (or before [`commit`](Self::commit), which the application may call
/// to know its messages are durable). So many publishes made between two polls share one
/// commit. Inbound QoS 2 identifiers are committed before their message is returned by
/// `poll_event`, which is what keeps a redelivered message from being handed over twice,
/// also after a restart.
///
/// # Example
///
/// Publishing one QoS 1 message over a blocking [`std::net::TcpStream`]:
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::{io::{Read, Write}, net::TcpStream, time::Instant};
/// use bytes::BytesMut;
/// use haka_codec::{MqttString, QoS, TopicName};
/// use haka_session::{Config, Event, MemoryStore, Session};
///
/// let mut session = Session::new(Config::new(MqttString::new("example")?), MemoryStore::new())?;
/// let mut stream = TcpStream::connect("127.0.0.1:1883")?;
/// session.handle_connected(Instant::now());
/// let id = session.publish(TopicName::new("hello")?, QoS::AtLeastOnce, false, "world")?;
///
/// let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
/// loop {
///     // React to what happened.
///     while let Some(event) = session.poll_event() {
///         match event {
///             Event::PublishCompleted { id: done, .. } if done == id => {
///                 session.disconnect();
///             }
///             Event::Disconnected { reason } => {
///                 println!("disconnected: {reason}");
///                 return Ok(());
///             }
///             other => println!("{other:?}"),
///         }
///     }
///     // Write everything the session has to send.
///     while session.poll_transmit(Instant::now(), &mut out) > 0 {
///         stream.write_all(&out)?;
///         out.clear();
///     }
///     // Wait for bytes, at most until the next timer.
///     let timeout = session.poll_timeout().map(|at| at.saturating_duration_since(Instant::now()));
///     stream.set_read_timeout(timeout.filter(|t| !t.is_zero()))?;
///     let mut chunk = [0; 4096];
///     match stream.read(&mut chunk) {
///         Ok(0) => session.handle_connection_lost(Instant::now()),
///         Ok(n) => {
///             input.extend_from_slice(&chunk[..n]);
///             session.handle_bytes(Instant::now(), &mut input);
///         }
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
///             || e.kind() == std::io::ErrorKind::TimedOut => session.handle_timeout(Instant::now()),
///         Err(_) => session.handle_connection_lost(Instant::now()),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Session<S = MemoryStore> {
    config: Config,
    codec: Codec,
    store: S,
    /// Changes were made to the store since its last commit.
    dirty: bool,
    /// A commit failed and was reported; the polls do not retry it (and report it again)
    /// until something changes: a new change, a new connection, or [`Session::commit`].
    commit_failed: bool,

    link: Link,
    connect_pending: bool,
    disconnect_requested: bool,

    outgoing: Outgoing,
    next_message_id: MessageId,
    packet_ids: PacketIds,
    requests: ByPacketId<Request>,
    next_request: u64,
    control: VecDeque<Control>,
    inbound: Inbound,

    last_sent: Option<Instant>,
    last_received: Option<Instant>,
    ping_outstanding: bool,

    events: VecDeque<Event>,
    /// Events that may only be seen once the store committed: inbound QoS 2 messages, and
    /// everything after them, so that order holds.
    gated: Vec<Event>,
    /// The inbound QoS 2 identifiers the gated events wait on.
    gated_inbound: Vec<PacketId>,
}

impl<S: Store> Session<S> {
    /// A session on `store`, resuming whatever it holds: stored messages are resent on the
    /// first connection, in their original order and with their packet identifiers.
    pub fn new(config: Config, mut store: S) -> Result<Self, SessionError> {
        // [MQTT-3.1.3-7] If the Client supplies a zero-byte ClientId, the Client MUST also
        // set CleanSession to 1.
        if config.connect.client_id.is_empty() && !config.connect.clean_session {
            return Err(SessionError::EmptyClientIdWithoutCleanSession);
        }
        let recovered = store.recover()?;
        let codec = Codec::new()
            .with_max_incoming_packet_size(config.max_incoming_packet_size)
            .with_max_outgoing_packet_size(config.max_outgoing_packet_size);
        let mut session = Self {
            config,
            codec,
            store,
            dirty: false,
            commit_failed: false,
            link: Link::Down,
            connect_pending: false,
            disconnect_requested: false,
            outgoing: Outgoing::default(),
            next_message_id: recovered.next_message_id,
            packet_ids: PacketIds::new(),
            requests: ByPacketId::default(),
            next_request: 1,
            control: VecDeque::new(),
            inbound: Inbound::default(),
            last_sent: None,
            last_received: None,
            ping_outstanding: false,
            events: VecDeque::new(),
            gated: Vec::new(),
            gated_inbound: Vec::new(),
        };
        for message in recovered.messages {
            session.resume(message)?;
        }
        for packet_id in recovered.inbound {
            session.inbound.qos2.insert(packet_id, Qos2::Received);
        }
        Ok(session)
    }

    fn resume(&mut self, message: StoredMessage) -> Result<(), StoreError> {
        if message.id >= self.next_message_id {
            self.next_message_id = message.id.next();
        }
        let placeholder = PacketId::MIN;
        let delivery = |packet_id, dup| match message.qos {
            QoS::ExactlyOnce => Ok(Delivery::ExactlyOnce { packet_id, dup }),
            QoS::AtLeastOnce => Ok(Delivery::AtLeastOnce { packet_id, dup }),
            _ => Err(StoreError::Invalid("a stored message has QoS 0")),
        };
        let (delivery, packet_id) = match message.stage {
            Stage::Queued => (delivery(placeholder, false)?, None),
            // It may have been sent: resent with DUP = 1 [MQTT-3.3.1-1].
            Stage::Published(id) | Stage::Released(id) => (delivery(id, true)?, Some(id)),
        };
        let mut publish = Publish::new(message.topic, delivery, message.payload);
        publish.retain = message.retain;
        self.outgoing.count(&publish);
        match packet_id {
            None => self.outgoing.pending.push_back(Pending {
                id: message.id,
                publish,
                admitted: false,
            }),
            Some(packet_id) => {
                if !self.packet_ids.take(packet_id) {
                    return Err(StoreError::Invalid("two stored messages share a packet id"));
                }
                let released = matches!(message.stage, Stage::Released(_));
                self.outgoing.inflight.insert(
                    packet_id,
                    Inflight {
                        id: message.id,
                        publish,
                        released,
                    },
                );
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- accessors

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably: for inspection and tuning. Changing its content behind the
    /// session's back breaks the session's guarantees.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Ends the session and returns its store, for a new session to resume from.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Where the current connection is.
    pub fn state(&self) -> ConnectionState {
        match self.link {
            Link::Down => ConnectionState::Disconnected,
            Link::AwaitingConnAck { .. } => ConnectionState::Connecting,
            Link::Up => ConnectionState::Connected,
            Link::Closing { .. } => ConnectionState::Closing,
        }
    }

    /// Messages accepted and not yet completed, QoS 0 included.
    pub fn queued_messages(&self) -> usize {
        self.outgoing.messages
    }

    /// The topic and payload bytes of the messages accepted and not yet completed, as the
    /// byte limit of [`Config::queue_limits`] counts them.
    pub fn queued_bytes(&self) -> usize {
        self.outgoing.bytes
    }

    /// QoS 1 and 2 messages holding a packet identifier: sent (or about to be) and not yet
    /// completed.
    pub fn inflight_messages(&self) -> usize {
        self.outgoing.inflight.len()
    }

    /// The identity the next message accepted by [`publish`](Self::publish) will get.
    pub fn next_message_id(&self) -> MessageId {
        self.next_message_id
    }

    /// Packet identifiers in use by messages in flight and by pending requests.
    pub fn packet_ids_in_use(&self) -> usize {
        self.packet_ids.in_use()
    }

    // ---------------------------------------------------------------- commands

    /// Accepts a message for `topic`, returning its identity.
    ///
    /// The message joins the queue behind every message accepted before it. A QoS 1 or 2
    /// message is written to the store at once, committed at the latest before its PUBLISH
    /// leaves [`poll_transmit`](Self::poll_transmit), and kept until its PUBACK (QoS 1) or
    /// PUBCOMP (QoS 2) arrives, across reconnects and, with a durable store, restarts.
    /// [`Event::PublishCompleted`] reports its end; for QoS 0, once it is written.
    ///
    /// Refused, with nothing changed, when the queue is at its limits
    /// ([`SessionError::QueueFull`]), when the packet is too large, or when the store fails.
    pub fn publish(
        &mut self,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<MessageId, SessionError> {
        // The packet identifier is given when the message enters the in-flight window; until
        // then a placeholder stands in (it has the same encoded size).
        let delivery = match qos {
            QoS::AtMostOnce => Delivery::AtMostOnce,
            QoS::AtLeastOnce => Delivery::AtLeastOnce {
                packet_id: PacketId::MIN,
                dup: false,
            },
            QoS::ExactlyOnce => Delivery::ExactlyOnce {
                packet_id: PacketId::MIN,
                dup: false,
            },
        };
        let mut publish = Publish::new(topic, delivery, payload);
        publish.retain = retain;
        if self.outgoing.messages >= self.config.max_queued_messages {
            return Err(SessionError::QueueFull(QueueLimit::Messages(
                self.config.max_queued_messages,
            )));
        }
        if self.outgoing.bytes + Outgoing::size(&publish) > self.config.max_queued_bytes {
            return Err(SessionError::QueueFull(QueueLimit::Bytes(
                self.config.max_queued_bytes,
            )));
        }
        let packet = Packet::Publish(publish);
        self.codec.encoded_len(&packet)?;
        let Packet::Publish(publish) = packet else {
            unreachable!("built as a PUBLISH just above")
        };

        let id = self.next_message_id;
        if qos != QoS::AtMostOnce {
            self.store.insert(StoredMessage {
                id,
                qos,
                retain,
                topic: publish.topic.clone(),
                payload: publish.payload.clone(),
                stage: Stage::Queued,
            })?;
            self.mark_dirty();
        }
        self.next_message_id = id.next();
        self.outgoing.count(&publish);
        self.outgoing.pending.push_back(Pending {
            id,
            publish,
            admitted: qos == QoS::AtMostOnce,
        });
        Ok(id)
    }

    /// Requests `subscriptions`; [`Event::Subscribed`] brings the broker's answer for each.
    ///
    /// The request holds a packet identifier until its SUBACK. It is sent now or on the next
    /// connection, and sent again if the connection is lost before the SUBACK; it does not
    /// survive a restart. Refused with [`SessionError::PacketIdsExhausted`] when all
    /// identifiers are in use.
    pub fn subscribe(
        &mut self,
        subscriptions: Vec<Subscription>,
    ) -> Result<RequestId, SessionError> {
        self.request(|packet_id| {
            Subscribe::new(packet_id, subscriptions)
                .map(Packet::Subscribe)
                .map_err(|_| SessionError::NoTopicFilters)
        })
    }

    /// Requests the end of the subscriptions to `filters`; [`Event::Unsubscribed`] reports
    /// the UNSUBACK. Like [`subscribe`](Self::subscribe) otherwise.
    pub fn unsubscribe(&mut self, filters: Vec<TopicFilter>) -> Result<RequestId, SessionError> {
        self.request(|packet_id| {
            Unsubscribe::new(packet_id, filters)
                .map(Packet::Unsubscribe)
                .map_err(|_| SessionError::NoTopicFilters)
        })
    }

    fn request(
        &mut self,
        build: impl FnOnce(PacketId) -> Result<Packet, SessionError>,
    ) -> Result<RequestId, SessionError> {
        let packet_id = self
            .packet_ids
            .allocate()
            .ok_or(SessionError::PacketIdsExhausted)?;
        let packet = build(packet_id).and_then(|packet| {
            self.codec.encoded_len(&packet)?;
            Ok(packet)
        });
        let packet = match packet {
            Ok(packet) => packet,
            Err(error) => {
                self.packet_ids.release(packet_id);
                return Err(error);
            }
        };
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.requests.insert(packet_id, Request { id, packet });
        if self.link != Link::Down {
            self.control.push_back(Control::Request(packet_id));
        }
        Ok(id)
    }

    /// Acknowledges a received message, with [manual acknowledgement](Config::manual_ack).
    ///
    /// Its PUBACK or PUBREC goes out once every message received before it on the
    /// connection is acknowledged too. A QoS 1 token of an earlier connection is refused with
    /// [`SessionError::UnknownAck`]: the broker delivers that message again. A QoS 2 message
    /// is recorded as received (in the store) by this call, and not handed over again.
    pub fn ack(&mut self, token: AckToken) -> Result<(), SessionError> {
        match token.qos {
            QoS::ExactlyOnce => {
                let delivered = Qos2::Delivered {
                    serial: token.serial,
                };
                if self.inbound.qos2.get(&token.packet_id) != Some(&delivered) {
                    return Err(SessionError::UnknownAck);
                }
                self.store.insert_inbound(token.packet_id)?;
                self.mark_dirty();
                self.inbound.qos2.insert(token.packet_id, Qos2::Received);
                self.inbound.ready_pubrecs(token.packet_id);
                Ok(())
            }
            _ => {
                // Slots of an earlier connection are gone: the broker delivers again.
                if !self.inbound.ready_serial(token.serial) {
                    return Err(SessionError::UnknownAck);
                }
                Ok(())
            }
        }
    }

    /// Gives up on message `id`: removes it from the queue and the store without waiting for
    /// its acknowledgement, and frees its packet identifier. Returns whether it was queued.
    ///
    /// For a broker that refuses a message the same way on every connection (answers a QoS 2
    /// PUBLISH with PUBACK, or closes the connection on it): without this, the message
    /// would be resent forever and hold up the queue. Abandoning a message after its PUBREC
    /// leaves the broker waiting for a PUBREL that will not come. No event follows; the
    /// caller reports the outcome.
    pub fn abandon(&mut self, id: MessageId) -> Result<bool, SessionError> {
        if let Some(index) = self.outgoing.pending.iter().position(|p| p.id == id) {
            let pending = &self.outgoing.pending[index];
            if pending.publish.qos() != QoS::AtMostOnce {
                self.store.remove(id)?;
                self.mark_dirty();
            }
            if let Some(pending) = self.outgoing.pending.remove(index) {
                if pending.admitted {
                    if let Some(packet_id) = pending.publish.packet_id() {
                        self.packet_ids.release(packet_id);
                    }
                }
                self.outgoing.uncount(&pending.publish);
            }
            return Ok(true);
        }
        let Some(packet_id) = self
            .outgoing
            .inflight
            .iter()
            .find_map(|(packet_id, message)| (message.id == id).then_some(*packet_id))
        else {
            return Ok(false);
        };
        self.store.remove(id)?;
        self.mark_dirty();
        if let Some(message) = self.outgoing.inflight.remove(&packet_id) {
            self.outgoing.uncount(&message.publish);
            self.packet_ids.release(packet_id);
        }
        Ok(true)
    }

    /// The oldest message in flight (sent, not yet completed), if any.
    pub fn oldest_inflight(&self) -> Option<MessageId> {
        self.outgoing.inflight.values().map(|m| m.id).min()
    }

    /// Where message `id` is: [`Stage::Queued`] until it enters the in-flight window, then
    /// published or released; `None` once complete (or never accepted). QoS 0 messages are
    /// queued until written.
    pub fn stage(&self, id: MessageId) -> Option<Stage> {
        if self.outgoing.pending.iter().any(|p| p.id == id) {
            return Some(Stage::Queued);
        }
        self.outgoing
            .inflight
            .iter()
            .find(|(_, m)| m.id == id)
            .map(|(packet_id, m)| {
                if m.released {
                    Stage::Released(*packet_id)
                } else {
                    Stage::Published(*packet_id)
                }
            })
    }

    /// Gives up acknowledging a received message, with
    /// [manual acknowledgement](Config::manual_ack): the application could not process it.
    ///
    /// MQTT 3.1.1 has no negative acknowledgement, so the message is simply not acknowledged
    /// on this connection; it stops holding up the acknowledgements of the messages behind
    /// it, and the broker delivers it again on the next connection (where a QoS 2 message is
    /// handed over again, since it was never recorded as received). Until then it takes one
    /// place of the broker's in-flight window.
    pub fn nack(&mut self, token: AckToken) -> Result<(), SessionError> {
        let found = match token.qos {
            QoS::ExactlyOnce => {
                let delivered = Qos2::Delivered {
                    serial: token.serial,
                };
                if self.inbound.qos2.get(&token.packet_id) != Some(&delivered) {
                    return Err(SessionError::UnknownAck);
                }
                // Known and waiting: its PUBREC slots (none after a reconnect) go.
                self.inbound.qos2.remove(&token.packet_id);
                self.inbound.acks.retain(|slot| {
                    !(slot.packet_id == token.packet_id && slot.exactly_once && !slot.ready)
                });
                true
            }
            _ => {
                let before = self.inbound.acks.len();
                self.inbound
                    .acks
                    .retain(|slot| slot.serial != token.serial || slot.ready);
                before != self.inbound.acks.len()
            }
        };
        if found {
            Ok(())
        } else {
            Err(SessionError::UnknownAck)
        }
    }

    /// Ends the connection gracefully: what can be sent now (acknowledgements, resends,
    /// requests, and queued messages up to the in-flight window) goes out, then DISCONNECT,
    /// once CONNACK has come. Acknowledgements are still processed until the broker closes
    /// the connection, or until the wait for that runs out (the idle timeout, at most
    /// [`Config::connack_wait`]); either way the end is [`DisconnectReason::Requested`].
    /// Messages not completed stay queued (and stored) for a later connection. Does nothing
    /// without a connection.
    pub fn disconnect(&mut self) {
        if self.link != Link::Down {
            self.disconnect_requested = true;
        }
    }

    /// Commits every change to the store made so far: once it returns `Ok`, every message
    /// accepted by [`publish`](Self::publish) is as durable as the store makes it. The
    /// polls commit by themselves; this is for an application that must know.
    pub fn commit(&mut self) -> Result<(), SessionError> {
        if self.dirty {
            if let Err(error) = self.store.commit() {
                self.commit_failed = true;
                return Err(error.into());
            }
            self.dirty = false;
            self.commit_failed = false;
        }
        // Whatever waited for the store is durable now, so it may be seen.
        if !self.gated.is_empty() {
            self.gated_inbound.clear();
            self.events.extend(self.gated.drain(..));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- input

    /// A transport to the broker is up: the session queues CONNECT, then (pipelined behind
    /// it) the messages in flight again (PUBLISH with DUP = 1, or PUBREL), pending requests
    /// and queued messages.
    ///
    /// The wait for CONNACK is bounded by [`Config::connack_wait`]. Calling this while a
    /// connection is up ends that one first, as if it had been lost.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.link != Link::Down {
            self.handle_connection_lost(now);
        }
        self.link = Link::AwaitingConnAck { since: now };
        self.connect_pending = true;
        self.commit_failed = false;
        self.disconnect_requested = false;
        self.last_sent = Some(now);
        self.last_received = Some(now);
        self.ping_outstanding = false;
        self.control.clear();
        self.inbound.acks.clear();
        // [MQTT-4.4.0-1] When a Client reconnects with CleanSession set to 0, both the Client
        // and Server MUST re-send any unacknowledged PUBLISH Packets (where QoS > 0) and
        // PUBREL Packets using their original Packet Identifiers. They are resent with a
        // clean session too: a message accepted is never dropped.
        // [MQTT-4.6.0-1] ... re-send in the order the original packets were sent.
        for packet_id in self.outgoing.inflight_in_order() {
            self.control.push_back(Control::Resend(packet_id));
        }
        let mut requests: Vec<(RequestId, PacketId)> = self
            .requests
            .iter()
            .map(|(packet_id, request)| (request.id, *packet_id))
            .collect();
        requests.sort_unstable();
        self.control.extend(
            requests
                .into_iter()
                .map(|(_, packet_id)| Control::Request(packet_id)),
        );
    }

    /// The transport closed or failed. Ends the connection with
    /// [`DisconnectReason::Requested`] if DISCONNECT was sent, else
    /// [`DisconnectReason::ConnectionLost`]; the queue is kept for the next connection.
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        let reason = match self.link {
            Link::Down => return,
            Link::Closing { .. } => DisconnectReason::Requested,
            _ => DisconnectReason::ConnectionLost,
        };
        self.close(reason);
    }

    /// Bytes read from the transport: decodes every whole packet at the front of `input` and
    /// handles it, leaving a partial packet in `input` for the next read to complete.
    ///
    /// Undecodable bytes end the connection with [`DisconnectReason::Decode`].
    pub fn handle_bytes(&mut self, now: Instant, input: &mut BytesMut) {
        while self.link != Link::Down {
            match self.codec.decode(input) {
                Ok(Some(packet)) => self.handle_packet(now, packet),
                Ok(None) => return,
                Err(error) => {
                    input.clear();
                    self.close(DisconnectReason::Decode(error));
                }
            }
        }
    }

    /// A packet from the broker, for a caller that decodes itself.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if self.link == Link::Down {
            return;
        }
        self.last_received = Some(now);
        if let Err(error) = self.dispatch(packet) {
            self.close(DisconnectReason::Protocol(error));
        }
    }

    /// Time has come to `now`: queues PINGREQ after the keep alive without sending or
    /// without receiving; ends a connection that stayed silent too long
    /// ([`DisconnectReason::ConnAckTimeout`], [`DisconnectReason::IdleTimeout`]), and one
    /// whose broker did not close it in time after DISCONNECT
    /// ([`DisconnectReason::Requested`]). Harmless to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.link {
            Link::Down => {}
            Link::AwaitingConnAck { since } => {
                if now >= since + self.config.connack_wait() {
                    self.close(DisconnectReason::ConnAckTimeout);
                }
            }
            Link::Closing { since } => {
                // DISCONNECT is out: the end is as requested, whether the broker closes the
                // connection or lets the wait run out.
                if now >= self.closing_deadline(since) {
                    self.close(DisconnectReason::Requested);
                }
            }
            Link::Up => {
                if let Some(deadline) = self.idle_deadline() {
                    if now >= deadline {
                        self.close(DisconnectReason::IdleTimeout);
                        return;
                    }
                }
                if let Some(deadline) = self.ping_deadline() {
                    if now >= deadline {
                        self.ping_outstanding = true;
                        self.control.push_back(Control::PingReq);
                    }
                }
            }
        }
    }

    /// The bound on the wait for the broker to close after DISCONNECT.
    fn closing_deadline(&self, since: Instant) -> Instant {
        let bound = since + self.config.connack_wait();
        self.idle_deadline().map_or(bound, |idle| idle.min(bound))
    }

    fn idle_deadline(&self) -> Option<Instant> {
        Some(self.last_received? + self.config.idle_timeout()?)
    }

    fn ping_deadline(&self) -> Option<Instant> {
        // At most one PINGREQ outstanding; keep alive 0 turns pings off (section 3.1.2.10).
        if self.link != Link::Up || self.ping_outstanding || self.config.connect.keep_alive == 0 {
            return None;
        }
        // After the keep alive without sending (section 3.1.2.10), and also without
        // receiving: a client that only publishes QoS 0 hears nothing back, and the
        // PINGRESP is what keeps its idle abort from firing.
        let last = self.last_sent?.min(self.last_received?);
        Some(last + self.config.keep_alive_interval())
    }

    // ---------------------------------------------------------------- output

    /// Appends to `out` the bytes to write next and returns how many; 0 when there is
    /// nothing to send. Call it until it returns 0, writing what it appended in order.
    ///
    /// Every call commits the store first, with or without a connection, so no packet that
    /// depends on a change (PUBLISH of a QoS 1 or 2 message, PUBREL, PUBREC, PUBCOMP) leaves
    /// before the change is durable. If the commit fails the session sends nothing, reports
    /// [`Event::StoreFailed`] and closes the connection.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut BytesMut) -> usize {
        if matches!(self.link, Link::Down | Link::Closing { .. }) {
            // Nothing to send, but what was published offline becomes durable all the same.
            // A failure already reported is not retried here, or a driver polling until
            // quiet would spin on a broken store.
            if !self.commit_failed {
                if let Err(SessionError::Store(error)) = self.commit() {
                    self.store_failed(error);
                }
            }
            return 0;
        }
        let start = out.len();
        let admitted = self.admit();
        if let Err(SessionError::Store(error)) = self.commit() {
            self.store_failed(error);
            return 0;
        }

        if self.connect_pending {
            self.connect_pending = false;
            let connect = Packet::Connect(Box::new(self.config.connect.clone()));
            self.encode(&connect, out);
        }
        while out.len() - start < TRANSMIT_BUDGET {
            let Some(control) = self.control.pop_front() else {
                break;
            };
            self.write_control(control, out);
        }
        while out.len() - start < TRANSMIT_BUDGET {
            match self.inbound.acks.front() {
                Some(slot) if slot.ready => {
                    let packet = if slot.exactly_once {
                        Packet::PubRec(PubRec::new(slot.packet_id))
                    } else {
                        Packet::PubAck(PubAck::new(slot.packet_id))
                    };
                    self.inbound.acks.pop_front();
                    self.encode(&packet, out);
                }
                _ => break,
            }
        }
        for _ in 0..admitted {
            let Some(pending) = self.outgoing.pending.pop_front() else {
                break;
            };
            self.write_new(pending, out);
        }
        if self.disconnect_requested && self.link == Link::Up && self.nothing_to_send() {
            self.encode(&Packet::Disconnect(Disconnect::new()), out);
            self.disconnect_requested = false;
            self.link = Link::Closing { since: now };
        }
        let written = out.len() - start;
        if written > 0 {
            self.last_sent = Some(now);
        }
        written
    }

    /// Gives packet identifiers to the queued messages at the front that fit the in-flight
    /// window and this transmit's budget; returns how many messages at the front may be
    /// written now.
    fn admit(&mut self) -> usize {
        let mut budget = TRANSMIT_BUDGET;
        let mut count = 0;
        let window = usize::from(self.config.max_inflight.get());
        // Messages in flight, and those at the front given an identifier but not yet written.
        let mut in_window = self.outgoing.inflight.len();
        for index in 0..self.outgoing.pending.len() {
            let pending = &self.outgoing.pending[index];
            let size = Outgoing::size(&pending.publish) + 8;
            if count > 0 && size > budget {
                break;
            }
            let needs_id = pending.publish.qos() != QoS::AtMostOnce;
            if needs_id && pending.admitted {
                in_window += 1;
            } else if needs_id {
                if in_window >= window {
                    break;
                }
                let Some(packet_id) = self.packet_ids.allocate() else {
                    break;
                };
                let id = pending.id;
                if let Err(error) = self.store.assign(id, packet_id) {
                    self.packet_ids.release(packet_id);
                    self.store_failed(error);
                    return 0;
                }
                self.mark_dirty();
                let pending = &mut self.outgoing.pending[index];
                pending.publish.delivery = match pending.publish.delivery {
                    Delivery::ExactlyOnce { .. } => Delivery::ExactlyOnce {
                        packet_id,
                        dup: false,
                    },
                    _ => Delivery::AtLeastOnce {
                        packet_id,
                        dup: false,
                    },
                };
                pending.admitted = true;
                in_window += 1;
            }
            budget = budget.saturating_sub(size);
            count += 1;
        }
        count
    }

    fn write_new(&mut self, pending: Pending, out: &mut BytesMut) {
        let Pending { id, publish, .. } = pending;
        encode_publish(&self.codec, &publish, out);
        match publish.packet_id() {
            // QoS 0: handed to the transport, and so done.
            None => {
                self.outgoing.uncount(&publish);
                self.push_event(Event::PublishCompleted {
                    id,
                    qos: QoS::AtMostOnce,
                });
            }
            Some(packet_id) => {
                self.outgoing.inflight.insert(
                    packet_id,
                    Inflight {
                        id,
                        publish,
                        released: false,
                    },
                );
            }
        }
    }

    fn write_control(&mut self, control: Control, out: &mut BytesMut) {
        let packet = match control {
            Control::Resend(packet_id) => {
                let Some(message) = self.outgoing.inflight.get_mut(&packet_id) else {
                    return; // completed since
                };
                if message.released {
                    // [MQTT-4.3.3-1] ... MUST NOT re-send the PUBLISH once it has sent the
                    // corresponding PUBREL packet.
                    Packet::PubRel(PubRel::new(packet_id))
                } else {
                    // [MQTT-3.3.1-1] The DUP flag MUST be set to 1 by the Client or Server
                    // when it attempts to re-deliver a PUBLISH Packet.
                    message.publish.delivery = message.publish.delivery.with_dup(true);
                    encode_publish(&self.codec, &message.publish, out);
                    return;
                }
            }
            Control::PubRel(packet_id) => {
                if !self.outgoing.inflight.contains_key(&packet_id) {
                    return;
                }
                Packet::PubRel(PubRel::new(packet_id))
            }
            Control::PubComp(packet_id) => Packet::PubComp(PubComp::new(packet_id)),
            Control::PingReq => Packet::PingReq,
            Control::Request(packet_id) => {
                let Some(request) = self.requests.get(&packet_id) else {
                    return;
                };
                return encode(&self.codec, &request.packet, out);
            }
        };
        self.encode(&packet, out);
    }

    fn nothing_to_send(&self) -> bool {
        self.control.is_empty()
            && !self.connect_pending
            && !self.inbound.acks.front().is_some_and(|slot| slot.ready)
            && self.outgoing.pending.front().is_none_or(|pending| {
                // The next message waits for room in the window or a free identifier.
                !pending.admitted
                    && (self.outgoing.inflight.len() >= usize::from(self.config.max_inflight.get())
                        || self.packet_ids.in_use() >= usize::from(u16::MAX))
            })
    }

    fn encode(&self, packet: &Packet, out: &mut BytesMut) {
        encode(&self.codec, packet, out);
    }

    /// The next event, if any. See [`Event`] for what each means.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() && !self.gated.is_empty() {
            if let Err(SessionError::Store(error)) = self.commit() {
                self.store_failed(error);
            }
        }
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next, if nothing else
    /// happens before: the keep alive's next PINGREQ, the idle abort, the end of the wait
    /// for CONNACK, or the end of the wait for the broker to close after DISCONNECT.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.link {
            Link::Down => None,
            Link::AwaitingConnAck { since } => Some(since + self.config.connack_wait()),
            Link::Closing { since } => Some(self.closing_deadline(since)),
            Link::Up => match (self.idle_deadline(), self.ping_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    // ---------------------------------------------------------------- internals

    /// A change was made to the store: the next poll commits it.
    fn mark_dirty(&mut self) {
        self.dirty = true;
        self.commit_failed = false;
    }

    fn push_event(&mut self, event: Event) {
        if self.gated.is_empty() {
            self.events.push_back(event);
        } else {
            self.gated.push(event);
        }
    }

    /// The store could not commit. Gated inbound QoS 2 messages are withdrawn (their PUBREC
    /// was not sent, so the broker delivers them again); the connection is closed so that
    /// nothing that is not durable gets acknowledged.
    fn store_failed(&mut self, error: StoreError) {
        let withdrawn: Vec<PacketId> = self.gated_inbound.drain(..).collect();
        for packet_id in &withdrawn {
            self.inbound.qos2.remove(packet_id);
            // The record may still be committed later; undo it so that a restart does not
            // mistake the redelivery for a duplicate.
            if self.store.remove_inbound(*packet_id).is_ok() {
                // Not `mark_dirty`: the failure stands reported until something new happens.
                self.dirty = true;
            }
        }
        for event in std::mem::take(&mut self.gated) {
            let withdrawn_message = matches!(
                &event,
                Event::Message(Incoming { publish, .. })
                    if publish.qos() == QoS::ExactlyOnce
                        && publish.packet_id().is_some_and(|id| withdrawn.contains(&id))
            );
            if !withdrawn_message {
                self.events.push_back(event);
            }
        }
        self.events.push_back(Event::StoreFailed(error));
        if self.link != Link::Down {
            self.close(DisconnectReason::StoreFailed);
        }
    }

    fn close(&mut self, reason: DisconnectReason) {
        self.link = Link::Down;
        self.connect_pending = false;
        self.disconnect_requested = false;
        self.ping_outstanding = false;
        self.last_sent = None;
        self.last_received = None;
        self.control.clear();
        self.inbound.acks.clear();
        self.push_event(Event::Disconnected { reason });
    }

    fn dispatch(&mut self, packet: Packet) -> Result<(), ProtocolError> {
        if let Link::AwaitingConnAck { .. } = self.link {
            return match packet {
                Packet::ConnAck(connack) => self.handle_connack(connack),
                other => Err(ProtocolError::BeforeConnAck(other.packet_type())),
            };
        }
        match packet {
            Packet::ConnAck(_) => Err(ProtocolError::SecondConnAck),
            Packet::Publish(publish) => {
                self.handle_publish(publish);
                Ok(())
            }
            Packet::PubAck(ack) => self.handle_puback(ack.packet_id),
            Packet::PubRec(ack) => self.handle_pubrec(ack.packet_id),
            Packet::PubRel(ack) => {
                self.handle_pubrel(ack.packet_id);
                Ok(())
            }
            Packet::PubComp(ack) => self.handle_pubcomp(ack.packet_id),
            Packet::SubAck(suback) => {
                let packet_id = suback.packet_id;
                let expected = match self.requests.get(&packet_id) {
                    Some(Request {
                        packet: Packet::Subscribe(subscribe),
                        ..
                    }) => subscribe.subscriptions().len(),
                    _ => return Err(unknown(PacketType::SubAck, packet_id)),
                };
                // [MQTT-3.8.4-5] The SUBACK Packet sent by the Server to the Client MUST
                // contain a return code for each Topic Filter/QoS pair.
                let results = suback.return_codes().to_vec();
                if results.len() != expected {
                    // The request stays pending and is sent again on the next connection.
                    return Err(ProtocolError::SubAckCount {
                        expected,
                        got: results.len(),
                    });
                }
                let request = self.finish_request(packet_id);
                self.push_event(Event::Subscribed { request, results });
                Ok(())
            }
            Packet::UnsubAck(unsuback) => {
                let packet_id = unsuback.packet_id;
                if !matches!(
                    self.requests.get(&packet_id),
                    Some(Request {
                        packet: Packet::Unsubscribe(_),
                        ..
                    })
                ) {
                    return Err(unknown(PacketType::UnsubAck, packet_id));
                }
                let request = self.finish_request(packet_id);
                self.push_event(Event::Unsubscribed { request });
                Ok(())
            }
            // An unsolicited PINGRESP is ignored.
            Packet::PingResp => {
                self.ping_outstanding = false;
                Ok(())
            }
            other => Err(ProtocolError::ClientPacket(other.packet_type())),
        }
    }

    fn handle_connack(&mut self, connack: ConnAck) -> Result<(), ProtocolError> {
        if connack.code() != ConnectReturnCode::Accepted {
            self.close(DisconnectReason::Refused(connack.code()));
            return Ok(());
        }
        let session_present = connack.session_present();
        // [MQTT-3.2.2-1] If the Server accepts a connection with CleanSession set to 1, the
        // Server MUST set Session Present to 0 in the CONNACK packet.
        if session_present && self.config.connect.clean_session {
            return Err(ProtocolError::SessionPresentOnCleanSession);
        }
        if !session_present && !self.inbound.qos2.is_empty() {
            // A new session on the broker: it will release none of the inbound QoS 2
            // messages of the old one (a PUBREL still gets its PUBCOMP).
            if let Err(error) = self.store.clear_inbound() {
                self.store_failed(error);
                return Ok(());
            }
            self.mark_dirty();
            self.inbound.qos2.clear();
        }
        self.link = Link::Up;
        self.push_event(Event::Connected { session_present });
        Ok(())
    }

    fn handle_publish(&mut self, publish: Publish) {
        let manual = self.config.manual_ack;
        match publish.delivery {
            Delivery::AtMostOnce => {
                self.push_event(Event::Message(Incoming { publish, ack: None }))
            }
            Delivery::AtLeastOnce { packet_id, .. } => {
                // [MQTT-4.6.0-2] The Client MUST send PUBACK packets in the order in which the
                // corresponding PUBLISH packets were received (QoS 1 messages).
                let serial = self.inbound.serial();
                self.inbound.acks.push_back(AckSlot {
                    packet_id,
                    exactly_once: false,
                    ready: !manual,
                    serial,
                });
                let ack = manual.then_some(AckToken {
                    packet_id,
                    qos: QoS::AtLeastOnce,
                    serial,
                });
                self.push_event(Event::Message(Incoming { publish, ack }));
            }
            Delivery::ExactlyOnce { packet_id, .. } => {
                // [MQTT-4.6.0-3] The Client MUST send PUBREC packets in the order in which the
                // corresponding PUBLISH packets were received (QoS 2 messages).
                let known = self.inbound.qos2.get(&packet_id).copied();
                let (ready, serial) = match known {
                    Some(Qos2::Received) => (true, 0),
                    Some(Qos2::Delivered { serial }) => (false, serial),
                    None => (!manual, self.inbound.serial()),
                };
                self.inbound.acks.push_back(AckSlot {
                    packet_id,
                    exactly_once: true,
                    ready,
                    serial,
                });
                if known.is_some() {
                    // [MQTT-4.3.3-2] ... the receiver MUST NOT cause duplicate messages to be
                    // delivered to any onward recipients: acknowledged again, not handed over.
                    return;
                }
                if manual {
                    self.inbound
                        .qos2
                        .insert(packet_id, Qos2::Delivered { serial });
                    let ack = Some(AckToken {
                        packet_id,
                        qos: QoS::ExactlyOnce,
                        serial,
                    });
                    self.push_event(Event::Message(Incoming { publish, ack }));
                    return;
                }
                if let Err(error) = self.store.insert_inbound(packet_id) {
                    // Not stored: not acknowledged; the broker delivers it again on the next
                    // connection.
                    self.inbound.acks.pop_back();
                    self.store_failed(error);
                    return;
                }
                self.mark_dirty();
                self.inbound.qos2.insert(packet_id, Qos2::Received);
                // Handed over only once the identifier is durable.
                self.gated_inbound.push(packet_id);
                self.gated
                    .push(Event::Message(Incoming { publish, ack: None }));
            }
        }
    }

    fn handle_pubrel(&mut self, packet_id: PacketId) {
        // Forgetting the identifier is committed before the PUBCOMP leaves, so that a new
        // message under the same identifier is not taken for a duplicate after a restart.
        match self.inbound.qos2.get(&packet_id) {
            Some(Qos2::Received) => {
                if let Err(error) = self.store.remove_inbound(packet_id) {
                    // No PUBCOMP: the broker sends the PUBREL again on the next connection.
                    self.store_failed(error);
                    return;
                }
                self.mark_dirty();
            }
            Some(Qos2::Delivered { .. }) => {
                // A PUBREL before our PUBREC breaks the protocol, but only the broker's own
                // bookkeeping: the message was handed over once. Its PUBREC is owed no more,
                // and must not hold up the acknowledgements behind it.
                self.inbound.acks.retain(|slot| {
                    !(slot.packet_id == packet_id && slot.exactly_once && !slot.ready)
                });
            }
            None => {}
        }
        self.inbound.qos2.remove(&packet_id);
        // A PUBREL for an identifier not (or no longer) known still gets its PUBCOMP: the
        // PUBCOMP of an earlier connection may have been lost.
        self.control.push_back(Control::PubComp(packet_id));
    }

    fn inflight(
        &mut self,
        packet: PacketType,
        packet_id: PacketId,
    ) -> Result<&mut Inflight, ProtocolError> {
        self.outgoing
            .inflight
            .get_mut(&packet_id)
            .ok_or(unknown(packet, packet_id))
    }

    fn handle_puback(&mut self, packet_id: PacketId) -> Result<(), ProtocolError> {
        let message = self.inflight(PacketType::PubAck, packet_id)?;
        if message.publish.qos() != QoS::AtLeastOnce {
            return Err(wrong_ack(PacketType::PubAck, message));
        }
        self.complete(packet_id);
        Ok(())
    }

    fn handle_pubrec(&mut self, packet_id: PacketId) -> Result<(), ProtocolError> {
        let message = self.inflight(PacketType::PubRec, packet_id)?;
        if message.publish.qos() != QoS::ExactlyOnce {
            return Err(wrong_ack(PacketType::PubRec, message));
        }
        if message.released {
            // A repeated PUBREC: the PUBREL is sent again, which is harmless.
            self.control.push_back(Control::PubRel(packet_id));
            return Ok(());
        }
        let id = message.id;
        // Stored before the PUBREL can leave, so that a restart resends the PUBREL and never
        // the PUBLISH again [MQTT-4.3.3-1].
        if let Err(error) = self.store.release(id) {
            // No PUBREL: the PUBLISH is resent on the next connection and PUBREC comes again.
            self.store_failed(error);
            return Ok(());
        }
        self.mark_dirty();
        if let Some(message) = self.outgoing.inflight.get_mut(&packet_id) {
            message.released = true;
        }
        // [MQTT-4.6.0-4] The Client MUST send PUBREL packets in the order in which the
        // corresponding PUBREC packets were received (QoS 2 messages).
        self.control.push_back(Control::PubRel(packet_id));
        self.push_event(Event::PublishReceived { id });
        Ok(())
    }

    fn handle_pubcomp(&mut self, packet_id: PacketId) -> Result<(), ProtocolError> {
        let message = self.inflight(PacketType::PubComp, packet_id)?;
        if message.publish.qos() != QoS::ExactlyOnce || !message.released {
            return Err(wrong_ack(PacketType::PubComp, message));
        }
        self.complete(packet_id);
        Ok(())
    }

    /// Message `packet_id` is done: out of the queue and the store, its identifier free.
    fn complete(&mut self, packet_id: PacketId) {
        let Some(id) = self.outgoing.inflight.get(&packet_id).map(|m| m.id) else {
            return;
        };
        if let Err(error) = self.store.remove(id) {
            // Kept: resent on the next connection, where the broker acknowledges it again.
            self.store_failed(error);
            return;
        }
        self.mark_dirty();
        let Some(message) = self.outgoing.inflight.remove(&packet_id) else {
            return;
        };
        self.outgoing.uncount(&message.publish);
        self.packet_ids.release(packet_id);
        self.push_event(Event::PublishCompleted {
            id: message.id,
            qos: message.publish.qos(),
        });
    }

    /// Request `packet_id` got its acknowledgement: its identifier is free again.
    fn finish_request(&mut self, packet_id: PacketId) -> RequestId {
        self.packet_ids.release(packet_id);
        self.requests
            .remove(&packet_id)
            .map(|request| request.id)
            .expect("checked by the caller")
    }
}

fn unknown(packet: PacketType, packet_id: PacketId) -> ProtocolError {
    ProtocolError::UnknownPacketId {
        packet,
        packet_id: packet_id.get(),
    }
}

fn wrong_ack(packet: PacketType, message: &Inflight) -> ProtocolError {
    ProtocolError::WrongAck {
        packet,
        message: message.id,
        qos: message.publish.qos() as u8,
    }
}

fn encode_publish(codec: &Codec, publish: &Publish, out: &mut BytesMut) {
    // The size was checked when the message was accepted.
    if codec.encode_publish(publish, out).is_err() {
        debug_assert!(false, "a checked PUBLISH failed to encode: {publish:?}");
    }
}

fn encode(codec: &Codec, packet: &Packet, out: &mut BytesMut) {
    // Every packet was checked against the size limit when it was accepted, and the types
    // make every other packet encodable.
    if codec.encode(packet, out).is_err() {
        debug_assert!(false, "a checked packet failed to encode: {packet:?}");
    }
}
