//! [`Broker`]: a minimal, correct broker as a state machine, for tests of whole runs.

use std::collections::{BTreeMap, HashSet};

use bytes::{Bytes, BytesMut};
use haka_codec::{
    Codec, ConnAck, DecodeError, Delivery, Packet, PacketId, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, SubAck, SubscribeReturnCode, TopicName, UnsubAck,
};

/// A message the broker sends to the client, in flight until acknowledged.
#[derive(Debug, Clone)]
struct Outbound {
    publish: Publish,
    /// PUBREC came and PUBREL was sent.
    released: bool,
}

/// One client's broker: answers as MQTT 3.1.1 requires, keeps the client's session across
/// connections (unless clean session), and records what it received.
///
/// It does not route: messages for the client are injected with [`Broker::send`]. Its
/// answers are queued in [`Broker::take_outbox`] so that the test decides when (and whether,
/// and how often) they reach the client.
#[derive(Debug, Default)]
pub struct Broker {
    codec: Codec,
    input: BytesMut,
    connected: bool,
    /// Whether a session is kept for the client (it connected with clean session 0).
    has_session: bool,
    /// Inbound QoS 2 identifiers between PUBREC and PUBREL (method B of section 4.3.3):
    /// a repeated PUBLISH under one of them is not delivered again.
    qos2_received: HashSet<u16>,
    /// Every message received from the client and delivered onward, in order.
    delivered: Vec<Publish>,
    /// Every PUBLISH received, duplicates included.
    publishes_seen: usize,
    outbound: BTreeMap<u16, Outbound>,
    next_packet_id: u16,
    outbox: Vec<Packet>,
    /// Whether PUBLISH packets from the client are acknowledged.
    pub acknowledge: bool,
    /// Whether CONNECT is answered with an accepting CONNACK.
    pub accept: bool,
}

impl Broker {
    /// A broker with no session for the client, acknowledging everything.
    pub fn new() -> Self {
        Self {
            acknowledge: true,
            accept: true,
            next_packet_id: 1,
            ..Self::default()
        }
    }

    /// Messages delivered onward, in order, each once (QoS 2 duplicates are filtered as the
    /// protocol requires; QoS 1 duplicates are not).
    pub fn delivered(&self) -> &[Publish] {
        &self.delivered
    }

    /// How many PUBLISH packets came from the client, duplicates included.
    pub fn publishes_seen(&self) -> usize {
        self.publishes_seen
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Messages sent to the client and not yet acknowledged.
    pub fn outbound_in_flight(&self) -> usize {
        self.outbound.len()
    }

    /// The answers queued for the client since the last call.
    pub fn take_outbox(&mut self) -> Vec<Packet> {
        std::mem::take(&mut self.outbox)
    }

    /// The connection ended (either side closed it).
    pub fn connection_lost(&mut self) {
        self.connected = false;
        self.input.clear();
        self.outbox.clear();
    }

    /// Bytes from the client; a decode error is the client's bug and is returned.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.input.extend_from_slice(bytes);
        while let Some(packet) = self.codec.decode(&mut self.input)? {
            self.handle_packet(packet);
        }
        Ok(())
    }

    /// Queues a message for the client at `qos`.
    pub fn send(&mut self, topic: &TopicName, payload: Bytes, qos: QoS) {
        let delivery = match qos {
            QoS::AtMostOnce => Delivery::AtMostOnce,
            QoS::AtLeastOnce => Delivery::AtLeastOnce {
                packet_id: self.allocate(),
                dup: false,
            },
            QoS::ExactlyOnce => Delivery::ExactlyOnce {
                packet_id: self.allocate(),
                dup: false,
            },
        };
        let publish = Publish::new(topic.clone(), delivery, payload);
        if let Some(packet_id) = publish.packet_id() {
            self.outbound.insert(
                packet_id.get(),
                Outbound {
                    publish: publish.clone(),
                    released: false,
                },
            );
        }
        if self.connected {
            self.outbox.push(Packet::Publish(publish));
        }
    }

    fn allocate(&mut self) -> PacketId {
        loop {
            let candidate = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if let Ok(id) = PacketId::new(candidate) {
                if !self.outbound.contains_key(&candidate) {
                    return id;
                }
            }
        }
    }

    /// A packet from the client.
    pub fn handle_packet(&mut self, packet: Packet) {
        match packet {
            Packet::Connect(connect) => {
                if !self.accept {
                    self.outbox.push(
                        ConnAck::refused(haka_codec::ConnectReturnCode::NotAuthorized).into(),
                    );
                    return;
                }
                if connect.clean_session {
                    self.qos2_received.clear();
                    self.outbound.clear();
                }
                let session_present = !connect.clean_session && self.has_session;
                self.has_session = !connect.clean_session;
                self.connected = true;
                self.outbox.push(ConnAck::accepted(session_present).into());
                // [MQTT-4.4.0-1] resend unacknowledged PUBLISH and PUBREL, in order.
                for (id, message) in &self.outbound {
                    let packet_id = PacketId::new(*id).expect("stored ids are non-zero");
                    if message.released {
                        self.outbox.push(PubRel::new(packet_id).into());
                    } else {
                        let mut publish = message.publish.clone();
                        publish.delivery = publish.delivery.with_dup(true);
                        self.outbox.push(publish.into());
                    }
                }
            }
            Packet::Publish(publish) => {
                self.publishes_seen += 1;
                match publish.delivery {
                    Delivery::AtMostOnce => self.delivered.push(publish),
                    Delivery::AtLeastOnce { packet_id, .. } => {
                        if self.acknowledge {
                            self.delivered.push(publish);
                            self.outbox.push(PubAck::new(packet_id).into());
                        }
                    }
                    Delivery::ExactlyOnce { packet_id, .. } => {
                        if self.acknowledge {
                            if self.qos2_received.insert(packet_id.get()) {
                                self.delivered.push(publish);
                            }
                            self.outbox.push(PubRec::new(packet_id).into());
                        }
                    }
                }
            }
            Packet::PubRel(rel) => {
                self.qos2_received.remove(&rel.packet_id.get());
                self.outbox.push(PubComp::new(rel.packet_id).into());
            }
            Packet::PubAck(ack) => {
                self.outbound.remove(&ack.packet_id.get());
            }
            Packet::PubRec(ack) => {
                if let Some(message) = self.outbound.get_mut(&ack.packet_id.get()) {
                    message.released = true;
                }
                self.outbox.push(PubRel::new(ack.packet_id).into());
            }
            Packet::PubComp(ack) => {
                self.outbound.remove(&ack.packet_id.get());
            }
            Packet::Subscribe(subscribe) => {
                let codes = subscribe
                    .subscriptions()
                    .iter()
                    .map(|s| SubscribeReturnCode::Success(s.qos))
                    .collect();
                let suback = SubAck::new(subscribe.packet_id, codes).expect("one code per filter");
                self.outbox.push(suback.into());
            }
            Packet::Unsubscribe(unsubscribe) => {
                self.outbox
                    .push(UnsubAck::new(unsubscribe.packet_id).into());
            }
            Packet::PingReq => self.outbox.push(Packet::PingResp),
            Packet::Disconnect(_) => self.connected = false,
            _ => {}
        }
    }
}
