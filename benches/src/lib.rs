//! Shared inputs of the Haka benchmarks.
//!
//! Every bench program builds its packets here, so that the figures of different programs (and
//! of different runs) are measured on the same bytes. Packets are built with `haka-codec` and
//! encoded with it; the peers' own packet values are built by the bench programs from the
//! constants below, and each program checks that every peer encodes or decodes to the same
//! thing before it measures anything.
//!
//! ```
//! use haka_benches::{encode, publish, PayloadSize};
//!
//! let wire = encode(&publish(PayloadSize::B16.bytes()).into());
//! assert_eq!(wire.len(), PayloadSize::B16.packet_len());
//! ```
//!
//! The client benchmark (`--bin clients`) also takes from here its [`ack_server`], the
//! server that acknowledges without routing anything, and the hand-written MQTT of its
//! reference peers ([`wire`]).

pub mod ack_server;
pub mod wire;

use bytes::{Bytes, BytesMut};
use haka_codec::{
    Codec, Connect, Delivery, Login, MqttString, Packet, PacketId, Password, PubAck, PubComp,
    PubRec, PubRel, Publish, QoS, SubAck, Subscribe, SubscribeReturnCode, Subscription,
    TopicFilter, TopicName,
};

/// Topic of every PUBLISH of the benchmarks.
pub const TOPIC: &str = "sensors/room1/temperature";

/// Packet identifier of the QoS 1 PUBLISH of the single-packet benchmarks.
pub const PUBLISH_PACKET_ID: u16 = 10;

/// Packet identifier of the single PUBACK benchmark.
pub const PUBACK_PACKET_ID: u16 = 10;

/// Client identifier of the CONNECT benchmark: 16 characters.
pub const CONNECT_CLIENT_ID: &str = "haka-bench-00001";

/// Keep alive of the CONNECT benchmark, in seconds.
pub const CONNECT_KEEP_ALIVE: u16 = 60;

/// User name of the CONNECT benchmark: 4 bytes.
pub const CONNECT_USERNAME: &str = "user";

/// Password of the CONNECT benchmark: 4 bytes.
pub const CONNECT_PASSWORD: &str = "pass";

/// Size of the encoded CONNECT: a 2-byte fixed header and a 40-byte body (10 bytes of variable
/// header, then the client identifier, user name and password, each with a 2-byte length).
pub const CONNECT_LEN: usize = 42;

/// Packet identifier of the SUBSCRIBE benchmark.
pub const SUBSCRIBE_PACKET_ID: u16 = 1;

/// Number of topic filters of the SUBSCRIBE benchmark.
pub const SUBSCRIBE_FILTERS: usize = 10;

/// Number of packets in the mixed stream.
pub const STREAM_PACKETS: usize = 1000;

/// The payload sizes of the PUBLISH benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadSize {
    /// 16 bytes: a sensor reading.
    B16,
    /// 1 KiB: a small JSON document.
    KiB1,
    /// 64 KiB: a large message, where copying the payload dominates.
    KiB64,
}

impl PayloadSize {
    /// Every size, smallest first.
    pub const ALL: [Self; 3] = [Self::B16, Self::KiB1, Self::KiB64];

    /// The payload length in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Self::B16 => 16,
            Self::KiB1 => 1024,
            Self::KiB64 => 64 * 1024,
        }
    }

    /// The suffix of the benchmark's name: `16B`, `1KiB`, `64KiB`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::B16 => "16B",
            Self::KiB1 => "1KiB",
            Self::KiB64 => "64KiB",
        }
    }

    /// Size on the wire of the QoS 1 PUBLISH to [`TOPIC`] with a payload of this size.
    pub const fn packet_len(self) -> usize {
        let body = 2 + TOPIC.len() + 2 + self.bytes();
        let remaining_length_len = match body {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            _ => 4,
        };
        1 + remaining_length_len + body
    }
}

/// A payload of `len` bytes with a fixed, non-uniform pattern.
pub fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A packet identifier from a non-zero constant.
///
/// # Panics
///
/// If `id` is 0.
pub fn packet_id(id: u16) -> PacketId {
    PacketId::new(id).expect("packet identifiers of the benchmarks are not 0")
}

fn topic_name(topic: &str) -> TopicName {
    TopicName::new(topic).expect("topic names of the benchmarks are valid")
}

/// The QoS 1 PUBLISH (packet identifier [`PUBLISH_PACKET_ID`]) to [`TOPIC`] with a
/// [`payload`] of `payload_len` bytes.
pub fn publish(payload_len: usize) -> Publish {
    Publish::new(
        topic_name(TOPIC),
        Delivery::AtLeastOnce {
            packet_id: packet_id(PUBLISH_PACKET_ID),
            dup: false,
        },
        payload(payload_len),
    )
}

/// The PUBACK for packet identifier [`PUBACK_PACKET_ID`].
pub fn puback() -> PubAck {
    PubAck::new(packet_id(PUBACK_PACKET_ID))
}

/// The CONNECT of [`CONNECT_LEN`] bytes: client identifier [`CONNECT_CLIENT_ID`], clean
/// session, keep alive [`CONNECT_KEEP_ALIVE`], user name [`CONNECT_USERNAME`] and password
/// [`CONNECT_PASSWORD`], no will.
pub fn connect() -> Connect {
    let mut connect = Connect::new(
        MqttString::new(CONNECT_CLIENT_ID).expect("the client identifier is a valid string"),
    );
    connect.clean_session = true;
    connect.keep_alive = CONNECT_KEEP_ALIVE;
    connect.login = Some(Login::new(
        MqttString::new(CONNECT_USERNAME).expect("the user name is a valid string"),
        Some(Password::new(CONNECT_PASSWORD).expect("the password is short")),
    ));
    connect
}

/// The `i`th topic filter of the SUBSCRIBE benchmark: `sensors/room{i}/+`.
pub fn subscribe_filter(i: usize) -> String {
    format!("sensors/room{i}/+")
}

/// The SUBSCRIBE (packet identifier [`SUBSCRIBE_PACKET_ID`]) to the [`SUBSCRIBE_FILTERS`]
/// filters [`subscribe_filter`]`(0..10)`, each at QoS 1.
pub fn subscribe() -> Subscribe {
    let subscriptions = (0..SUBSCRIBE_FILTERS)
        .map(|i| {
            Subscription::new(
                TopicFilter::new(subscribe_filter(i)).expect("the filters are valid"),
                QoS::AtLeastOnce,
            )
        })
        .collect();
    Subscribe::new(packet_id(SUBSCRIBE_PACKET_ID), subscriptions)
        .expect("the subscription list is not empty")
}

/// The ten packets that [`mixed_stream`] repeats, the `n`th time round (packet identifiers
/// change from one round to the next).
///
/// In order: PUBLISH QoS 0 with 16 bytes, PUBLISH QoS 1 with 256 bytes, PUBACK, PUBLISH QoS 1
/// with 1 KiB, PUBREC, PUBREL, PUBCOMP, PINGRESP, SUBACK with three return codes, PUBLISH QoS
/// 0 with 64 bytes: what a client receives, and the acknowledgements of QoS 2 in both
/// directions.
pub fn mixed_round(n: usize) -> [Packet; 10] {
    // Identifiers cycle through 1..=60_000, never 0.
    let id = |k: usize| packet_id(((n * 10 + k) % 60_000 + 1) as u16);
    let publish = |delivery, len| Publish::new(topic_name(TOPIC), delivery, payload(len));
    let qos1 = |k| Delivery::AtLeastOnce {
        packet_id: id(k),
        dup: false,
    };
    [
        publish(Delivery::AtMostOnce, 16).into(),
        publish(qos1(1), 256).into(),
        PubAck::new(id(2)).into(),
        publish(qos1(3), 1024).into(),
        PubRec::new(id(4)).into(),
        PubRel::new(id(5)).into(),
        PubComp::new(id(6)).into(),
        Packet::PingResp,
        SubAck::new(
            id(8),
            vec![
                SubscribeReturnCode::Success(QoS::AtLeastOnce),
                SubscribeReturnCode::Success(QoS::AtMostOnce),
                SubscribeReturnCode::Failure,
            ],
        )
        .expect("the return codes are not empty")
        .into(),
        publish(Delivery::AtMostOnce, 64).into(),
    ]
}

/// The first `count` packets of the repetition of [`mixed_round`].
pub fn mixed_stream(count: usize) -> Vec<Packet> {
    (0..count.div_ceil(10))
        .flat_map(mixed_round)
        .take(count)
        .collect()
}

/// `packet` encoded by `haka-codec`.
///
/// # Panics
///
/// If the packet cannot be encoded (it is too large).
pub fn encode(packet: &Packet) -> Bytes {
    encode_all(std::slice::from_ref(packet))
}

/// `packets` encoded by `haka-codec` one after the other, as on a connection.
///
/// # Panics
///
/// If a packet cannot be encoded (it is too large).
pub fn encode_all(packets: &[Packet]) -> Bytes {
    let codec = Codec::new();
    let mut buf = BytesMut::new();
    for packet in packets {
        codec
            .encode(packet, &mut buf)
            .expect("the packets of the benchmarks can be encoded");
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_as_documented() {
        assert_eq!(encode(&connect().into()).len(), CONNECT_LEN);
        for size in PayloadSize::ALL {
            assert_eq!(
                encode(&publish(size.bytes()).into()).len(),
                size.packet_len()
            );
        }
        assert_eq!(encode(&puback().into()).len(), 4);
        assert_eq!(mixed_stream(STREAM_PACKETS).len(), STREAM_PACKETS);
    }

    #[test]
    fn everything_decodes_back() {
        let packets = mixed_stream(STREAM_PACKETS);
        let mut wire = encode_all(&packets);
        let codec = Codec::new();
        for expected in &packets {
            let packet = codec
                .decode_bytes(&mut wire)
                .expect("valid")
                .expect("whole");
            assert_eq!(&packet, expected);
        }
        assert!(wire.is_empty());
    }
}
