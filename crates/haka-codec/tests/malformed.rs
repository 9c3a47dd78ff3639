//! A corpus of malformed packets, each refused with the error that names its fault.
//!
//! Every entry is also fed in every possible split of two reads, to show that the error does
//! not depend on how the bytes arrive, and that a refused packet never panics.

// A test fails by panicking: unwrapping is how these helpers report it.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use haka_codec::{Codec, DecodeError, Packet, PacketType, MAX_PACKET_SIZE};

/// A CONNECT with `flags`, keep alive 60, and the given payload.
fn connect(flags: u8, payload: &[u8]) -> Vec<u8> {
    connect_with_header(b"MQTT", 4, flags, payload)
}

fn connect_with_header(name: &[u8], level: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(payload);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

fn corpus() -> Vec<(&'static str, Vec<u8>, DecodeError)> {
    use DecodeError::*;
    use PacketType as T;
    let mut corpus = vec![
        // Section 2.2.1: types 0 and 15 are reserved.
        ("type 0", vec![0x00, 0x00], ReservedPacketType(0)),
        ("type 15", vec![0xf0, 0x00], ReservedPacketType(15)),
        // Section 2.2.3: at most four bytes of remaining length.
        (
            "5-byte remaining length",
            vec![0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
            MalformedRemainingLength,
        ),
        // [MQTT-3.3.1-4]
        (
            "PUBLISH QoS 3",
            vec![0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01],
            InvalidQoS,
        ),
        // [MQTT-3.3.1-2]
        (
            "PUBLISH QoS 0 with DUP",
            vec![0x38, 0x03, 0x00, 0x01, b't'],
            DupOnQos0,
        ),
        // [MQTT-2.3.1-1]
        (
            "PUBLISH QoS 1 packet id 0",
            vec![0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00],
            ZeroPacketId,
        ),
        (
            "PUBACK packet id 0",
            vec![0x40, 0x02, 0x00, 0x00],
            ZeroPacketId,
        ),
        (
            "SUBSCRIBE packet id 0",
            vec![0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'#', 0x00],
            ZeroPacketId,
        ),
        // [MQTT-1.5.3-1]
        (
            "topic with invalid UTF-8",
            vec![0x30, 0x04, 0x00, 0x02, 0xc3, 0x28],
            InvalidUtf8,
        ),
        (
            "topic with a UTF-16 surrogate",
            vec![0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80],
            InvalidUtf8,
        ),
        (
            "topic with an overlong encoding",
            vec![0x30, 0x04, 0x00, 0x02, 0xc0, 0xaf],
            InvalidUtf8,
        ),
        // [MQTT-1.5.3-2]
        (
            "topic with U+0000",
            vec![0x30, 0x05, 0x00, 0x03, b'a', 0x00, b'b'],
            NullCharacter,
        ),
        // [MQTT-3.3.2-2]
        (
            "topic name with +",
            vec![0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+'],
            WildcardInTopicName,
        ),
        (
            "topic name with #",
            vec![0x30, 0x03, 0x00, 0x01, b'#'],
            WildcardInTopicName,
        ),
        // [MQTT-4.7.3-1]
        ("empty topic name", vec![0x30, 0x02, 0x00, 0x00], EmptyTopic),
        (
            "empty topic filter",
            vec![0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00],
            EmptyTopic,
        ),
        // [MQTT-4.7.1-2]
        (
            "filter a/#/b",
            vec![
                0x82, 0x0a, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x00,
            ],
            MisplacedMultiLevelWildcard,
        ),
        (
            "filter a#",
            vec![0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'#', 0x00],
            MisplacedMultiLevelWildcard,
        ),
        // [MQTT-4.7.1-3]
        (
            "filter a+/b",
            vec![
                0x82, 0x09, 0x00, 0x01, 0x00, 0x04, b'a', b'+', b'/', b'b', 0x00,
            ],
            MisplacedSingleLevelWildcard,
        ),
        (
            "UNSUBSCRIBE filter +a",
            vec![0xa2, 0x06, 0x00, 0x01, 0x00, 0x02, b'+', b'a'],
            MisplacedSingleLevelWildcard,
        ),
        // [MQTT-3.8.3-3], [MQTT-3.10.3-2]
        (
            "SUBSCRIBE without filters",
            vec![0x82, 0x02, 0x00, 0x01],
            EmptySubscribe,
        ),
        (
            "UNSUBSCRIBE without filters",
            vec![0xa2, 0x02, 0x00, 0x01],
            EmptyUnsubscribe,
        ),
        (
            "SUBACK without return codes",
            vec![0x90, 0x02, 0x00, 0x01],
            EmptySubAck,
        ),
        // [MQTT-3.8.3-4]
        (
            "SUBSCRIBE requested QoS 3",
            vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03],
            InvalidSubscriptionOptions(0x03),
        ),
        (
            "SUBSCRIBE reserved option bits",
            vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x04],
            InvalidSubscriptionOptions(0x04),
        ),
        // [MQTT-3.9.3-2]
        (
            "SUBACK return code 0x03",
            vec![0x90, 0x03, 0x00, 0x01, 0x03],
            InvalidSubAckReturnCode(0x03),
        ),
        (
            "SUBACK return code 0x81",
            vec![0x90, 0x04, 0x00, 0x01, 0x00, 0x81],
            InvalidSubAckReturnCode(0x81),
        ),
        // [MQTT-3.1.2-1], [MQTT-3.1.2-2]
        (
            "CONNECT protocol name MQIsdp",
            connect_with_header(b"MQIsdp", 3, 0x02, &[0, 1, b'c']),
            InvalidProtocolName,
        ),
        (
            "CONNECT protocol level 5",
            connect_with_header(b"MQTT", 5, 0x02, &[0, 1, b'c']),
            UnsupportedProtocolLevel(5),
        ),
        // [MQTT-3.1.2-3]
        (
            "CONNECT reserved flag",
            connect(0x03, &[0, 1, b'c']),
            ConnectReservedFlag,
        ),
        // [MQTT-3.1.2-13], [MQTT-3.1.2-15]
        (
            "CONNECT will QoS without will",
            connect(0x0a, &[0, 1, b'c']),
            WillFlagsWithoutWill,
        ),
        (
            "CONNECT will retain without will",
            connect(0x22, &[0, 1, b'c']),
            WillFlagsWithoutWill,
        ),
        // [MQTT-3.1.2-14]
        (
            "CONNECT will QoS 3",
            connect(0x1e, &[0, 1, b'c', 0, 1, b't', 0, 0]),
            InvalidWillQoS,
        ),
        // [MQTT-3.1.2-22]
        (
            "CONNECT password without user name",
            connect(0x42, &[0, 1, b'c', 0, 1, b'p']),
            PasswordWithoutUsername,
        ),
        // [MQTT-3.1.3-7]
        (
            "CONNECT empty client id without clean session",
            connect(0x00, &[0, 0]),
            EmptyClientIdWithoutCleanSession,
        ),
        (
            "CONNECT will topic with wildcard",
            connect(0x06, &[0, 1, b'c', 0, 1, b'#', 0, 0]),
            WildcardInTopicName,
        ),
        (
            "CONNECT user name flag without user name",
            connect(0x82, &[0, 1, b'c']),
            Truncated(T::Connect),
        ),
        // Section 3.2.2.1, 3.2.2.3, [MQTT-3.2.2-4]
        (
            "CONNACK reserved flags",
            vec![0x20, 0x02, 0x02, 0x00],
            InvalidConnAckFlags(0x02),
        ),
        (
            "CONNACK return code 6",
            vec![0x20, 0x02, 0x00, 0x06],
            InvalidConnectReturnCode(6),
        ),
        (
            "CONNACK refusal with session present",
            vec![0x20, 0x02, 0x01, 0x05],
            SessionPresentOnRefusal,
        ),
        // Bodies too short for their fields.
        (
            "PUBACK with one byte",
            vec![0x40, 0x01, 0x00],
            Truncated(T::PubAck),
        ),
        (
            "CONNACK with one byte",
            vec![0x20, 0x01, 0x00],
            Truncated(T::ConnAck),
        ),
        (
            "PUBLISH topic length beyond body",
            vec![0x30, 0x04, 0x00, 0x09, b'a', b'b'],
            Truncated(T::Publish),
        ),
        (
            "PUBLISH QoS 1 without packet id",
            vec![0x32, 0x03, 0x00, 0x01, b't'],
            Truncated(T::Publish),
        ),
        (
            "SUBSCRIBE filter without QoS byte",
            vec![0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'],
            Truncated(T::Subscribe),
        ),
        (
            "SUBSCRIBE filter length forged to 65535",
            vec![0x82, 0x06, 0x00, 0x01, 0xff, 0xff, b'a', 0x00],
            Truncated(T::Subscribe),
        ),
        // Bytes left over inside a packet.
        (
            "PUBACK with three bytes",
            vec![0x40, 0x03, 0x00, 0x01, 0x00],
            TrailingBytes {
                packet_type: T::PubAck,
                extra: 1,
            },
        ),
        (
            "PINGREQ with a body",
            vec![0xc0, 0x01, 0x00],
            TrailingBytes {
                packet_type: T::PingReq,
                extra: 1,
            },
        ),
        (
            "DISCONNECT with a body",
            vec![0xe0, 0x02, 0x00, 0x00],
            TrailingBytes {
                packet_type: T::Disconnect,
                extra: 2,
            },
        ),
        (
            "CONNECT with bytes after the last field",
            connect(0x02, &[0, 1, b'c', 0xaa]),
            TrailingBytes {
                packet_type: T::Connect,
                extra: 1,
            },
        ),
        (
            "CONNACK with three bytes",
            vec![0x20, 0x03, 0x00, 0x00, 0x00],
            TrailingBytes {
                packet_type: T::ConnAck,
                extra: 1,
            },
        ),
    ];

    // [MQTT-2.2.2-1], [MQTT-2.2.2-2]: every wrong flag value of every type that fixes them.
    for (ty, first, fixed) in [
        (T::Connect, 0x10, 0),
        (T::ConnAck, 0x20, 0),
        (T::PubAck, 0x40, 0),
        (T::PubRec, 0x50, 0),
        (T::PubRel, 0x60, 2),
        (T::PubComp, 0x70, 0),
        (T::Subscribe, 0x80, 2),
        (T::SubAck, 0x90, 0),
        (T::Unsubscribe, 0xa0, 2),
        (T::UnsubAck, 0xb0, 0),
        (T::PingReq, 0xc0, 0),
        (T::PingResp, 0xd0, 0),
        (T::Disconnect, 0xe0, 0),
    ] {
        for flags in (0..16u8).filter(|&f| f != fixed) {
            corpus.push((
                "reserved flags",
                vec![first | flags, 0x02, 0x00, 0x01],
                InvalidFlags {
                    packet_type: ty,
                    flags,
                },
            ));
        }
    }
    corpus
}

#[test]
fn each_malformed_packet_is_refused_with_its_error() {
    let codec = Codec::new();
    let corpus = corpus();
    assert!(corpus.len() > 200);
    for (name, bytes, expected) in corpus {
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(expected.clone()),
            "{name}: {bytes:02x?}"
        );
        // The borrowed decode refuses it with the same error.
        assert_eq!(
            codec
                .decode_ref(&bytes)
                .map(|p| p.map(|(p, used)| (Packet::from(p), used))),
            Err(expected.clone()),
            "decode_ref {name}: {bytes:02x?}"
        );
        // However the bytes are split across reads, the outcome is the same: `Ok(None)` while
        // the packet is incomplete (unless the fixed header alone is already wrong), then the
        // same error.
        for split in 0..bytes.len() {
            match codec.decode_ref(&bytes[..split]) {
                Ok(None) => {}
                Err(e) => assert_eq!(e, expected, "decode_ref {name} split at {split}"),
                Ok(Some(p)) => panic!("decode_ref {name} split at {split} decoded to {p:?}"),
            }
            let mut buf = BytesMut::from(&bytes[..split]);
            match codec.decode(&mut buf) {
                Ok(None) => {}
                Err(e) => assert_eq!(e, expected, "{name} split at {split}"),
                Ok(Some(p)) => panic!("{name} split at {split} decoded to {p:?}"),
            }
            buf.extend_from_slice(&bytes[split..]);
            assert_eq!(
                codec.decode(&mut buf),
                Err(expected.clone()),
                "{name} at {split}"
            );
        }
    }
}

#[test]
fn forged_remaining_length_is_refused_from_the_fixed_header() {
    // A PUBLISH announcing 268,435,455 bytes: refused before any body arrives.
    let forged = [0x30, 0xff, 0xff, 0xff, 0x7f];
    let mut buf = BytesMut::from(&forged[..]);
    assert_eq!(
        Codec::new().decode(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: MAX_PACKET_SIZE,
            max: haka_codec::DEFAULT_MAX_INCOMING_PACKET_SIZE,
        })
    );
    // With the limit raised to the protocol's maximum it is a valid header: the decoder waits
    // for more bytes without reserving room for them.
    let codec = Codec::new().with_max_incoming_packet_size(MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(&forged[..]);
    let capacity = buf.capacity();
    assert_eq!(codec.decode(&mut buf), Ok(None));
    assert_eq!(buf.capacity(), capacity);
    assert_eq!(buf.len(), forged.len());
    assert_eq!(codec.decode_ref(&forged), Ok(None));
    assert_eq!(
        Codec::new().decode_ref(&forged),
        Err(DecodeError::PacketTooLarge {
            size: MAX_PACKET_SIZE,
            max: haka_codec::DEFAULT_MAX_INCOMING_PACKET_SIZE,
        })
    );
}

#[test]
fn size_limit_counts_the_whole_packet() {
    let codec = Codec::new().with_max_incoming_packet_size(4);
    let mut ok = BytesMut::from(&[0x40, 0x02, 0x00, 0x01][..]);
    assert!(codec.decode(&mut ok).unwrap().is_some());
    let mut too_big = BytesMut::from(&[0x30, 0x03][..]);
    assert_eq!(
        codec.decode(&mut too_big),
        Err(DecodeError::PacketTooLarge { size: 5, max: 4 })
    );
}
