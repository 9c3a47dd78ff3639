//! Property tests: every valid packet survives encode then decode, and a stream of packets
//! decodes the same however it is split into reads. Plus the limits of encoding.

// A test fails by panicking: unwrapping is how these helpers report it.
#![allow(clippy::unwrap_used)]

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use haka_codec::{
    BinaryData, Codec, Connect, Delivery, EncodeError, MqttString, Packet, PacketId, Publish,
    TopicName, ValueError, MAX_PACKET_SIZE,
};
use proptest::prelude::*;

/// Valid packets, built by the crate's own `Arbitrary` implementation from random bytes.
fn packet() -> impl Strategy<Value = Packet> {
    prop::collection::vec(any::<u8>(), 0..600).prop_filter_map("not enough entropy", |raw| {
        Packet::arbitrary_take_rest(Unstructured::new(&raw)).ok()
    })
}

fn encode_all(codec: &Codec, packets: &[Packet]) -> BytesMut {
    let mut buf = BytesMut::new();
    for p in packets {
        codec.encode(p, &mut buf).expect("a valid packet encodes");
    }
    buf
}

/// Decodes every whole packet in `buf`.
fn drain(codec: &Codec, buf: &mut BytesMut, out: &mut Vec<Packet>) {
    while let Some(p) = codec.decode(buf).expect("encoded packets decode") {
        out.push(p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_valid_packet_round_trips(packet in packet()) {
        let codec = Codec::new();
        let mut buf = encode_all(&codec, std::slice::from_ref(&packet));
        prop_assert_eq!(codec.encoded_len(&packet).unwrap(), buf.len());
        let wire = buf.clone().freeze();
        prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(packet.clone()));
        prop_assert!(buf.is_empty());
        // The immutable-buffer path agrees.
        let mut bytes = wire;
        prop_assert_eq!(codec.decode_bytes(&mut bytes).unwrap(), Some(packet));
        prop_assert!(bytes.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_stream_decodes_the_same_at_every_split(
        packets in prop::collection::vec(packet(), 1..6),
    ) {
        let codec = Codec::new();
        let wire = encode_all(&codec, &packets);
        for split in 0..=wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            let mut decoded = Vec::new();
            drain(&codec, &mut buf, &mut decoded);
            buf.extend_from_slice(&wire[split..]);
            drain(&codec, &mut buf, &mut decoded);
            prop_assert!(buf.is_empty());
            prop_assert_eq!(&decoded, &packets, "split at {}", split);
        }
        // And one byte at a time.
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for &byte in &wire[..] {
            buf.extend_from_slice(&[byte]);
            drain(&codec, &mut buf, &mut decoded);
        }
        prop_assert_eq!(&decoded, &packets);
    }

    #[test]
    fn vectored_publish_head_plus_payload_equals_the_packet(packet in packet()) {
        if let Packet::Publish(publish) = &packet {
            let codec = Codec::new();
            let mut head = BytesMut::new();
            codec.encode_publish_head(publish, &mut head).unwrap();
            head.extend_from_slice(&publish.payload);
            prop_assert_eq!(head, encode_all(&codec, std::slice::from_ref(&packet)));
        }
    }
}

#[test]
fn four_byte_remaining_length_round_trips() {
    let payload = Bytes::from(vec![0xa5; 2_097_152]);
    let publish = Publish::new(
        TopicName::new("big").unwrap(),
        Delivery::AtLeastOnce {
            packet_id: PacketId::new(3).unwrap(),
            dup: false,
        },
        payload,
    );
    let codec = Codec::new().with_max_incoming_packet_size(MAX_PACKET_SIZE);
    let packet = Packet::Publish(publish);
    let mut buf = encode_all(&codec, std::slice::from_ref(&packet));
    assert_eq!(buf[1..5], [0x87, 0x80, 0x80, 0x01]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(packet));
}

#[test]
fn packet_over_the_outgoing_limit_is_an_error_not_a_truncation() {
    let codec = Codec::new().with_max_outgoing_packet_size(100);
    let publish = Publish::new(
        TopicName::new("t").unwrap(),
        Delivery::AtMostOnce,
        vec![0; 96],
    );
    let packet = Packet::Publish(publish);
    let mut buf = BytesMut::from(&b"kept"[..]);
    assert_eq!(
        codec.encode(&packet, &mut buf),
        Err(EncodeError::PacketTooLarge {
            size: 101,
            max: 100
        })
    );
    assert_eq!(
        &buf[..],
        b"kept",
        "a failed encode leaves the buffer as it was"
    );
    let Packet::Publish(publish) = &packet else {
        unreachable!()
    };
    assert!(codec.encode_publish_head(publish, &mut buf).is_err());
    assert_eq!(&buf[..], b"kept");
}

#[test]
fn payload_over_the_protocol_maximum_is_an_error() {
    // One byte more than a remaining length can express.
    let publish = Publish::new(
        TopicName::new("t").unwrap(),
        Delivery::AtMostOnce,
        vec![0; haka_codec::MAX_REMAINING_LENGTH - 2],
    );
    let mut buf = BytesMut::new();
    assert!(matches!(
        Codec::new().encode(&Packet::Publish(publish), &mut buf),
        Err(EncodeError::PacketTooLarge {
            max: MAX_PACKET_SIZE,
            ..
        })
    ));
    assert!(buf.is_empty());
}

#[test]
fn unencodable_values_cannot_be_built() {
    let long = "x".repeat(65_536);
    assert_eq!(
        MqttString::new(long.clone()),
        Err(ValueError::StringTooLong { len: 65_536 })
    );
    assert_eq!(
        TopicName::new(long),
        Err(ValueError::StringTooLong { len: 65_536 })
    );
    assert!(MqttString::new("x".repeat(65_535)).is_ok());
    assert_eq!(
        BinaryData::new(vec![0; 65_536]),
        Err(ValueError::BinaryTooLong { len: 65_536 })
    );
    assert_eq!(PacketId::new(0), Err(ValueError::ZeroPacketId));
    assert_eq!(
        MqttString::from_bytes(Bytes::from_static(&[0xff])),
        Err(ValueError::InvalidUtf8)
    );
}

#[test]
fn empty_client_id_needs_clean_session_to_be_encoded() {
    let mut connect = Connect::new(MqttString::empty());
    connect.clean_session = false;
    let packet = Packet::from(connect);
    let mut buf = BytesMut::new();
    assert_eq!(
        Codec::new().encode(&packet, &mut buf),
        Err(EncodeError::EmptyClientIdWithoutCleanSession)
    );
    assert!(buf.is_empty());
    assert_eq!(
        Codec::new().encoded_len(&packet),
        Err(EncodeError::EmptyClientIdWithoutCleanSession)
    );
}

#[test]
fn publish_head_reserves_room_for_the_head_only() {
    let publish = Publish::new(
        TopicName::new("sensors/room1/temperature").unwrap(),
        Delivery::AtMostOnce,
        vec![0; 65_536],
    );
    let mut head = BytesMut::new();
    Codec::new()
        .encode_publish_head(&publish, &mut head)
        .unwrap();
    assert_eq!(head.len(), 5 - 1 + 2 + 25);
    assert!(head.capacity() < 1024, "{} bytes reserved", head.capacity());
}
