//! Byte-exact vectors for every MQTT 3.1.1 control packet, written from the layouts of the
//! specification's chapter 3. Each is decoded to the expected packet and encoded back to the
//! same bytes.

// A test fails by panicking: unwrapping is how these helpers report it.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use haka_codec::{
    BinaryData, Codec, ConnAck, Connect, ConnectReturnCode, Delivery, Disconnect, LastWill, Login,
    MqttString, Packet, PacketId, Password, PubAck, PubComp, PubRec, PubRel, Publish, QoS, SubAck,
    Subscribe, SubscribeReturnCode, Subscription, TopicFilter, TopicName, UnsubAck, Unsubscribe,
};

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

fn string(s: &str) -> MqttString {
    MqttString::new(s).unwrap()
}

/// Decodes `bytes` to `expected` (consuming exactly all of them), and encodes `expected` to
/// `bytes`.
#[track_caller]
fn check(bytes: &[u8], expected: Packet) {
    let codec = Codec::new();
    let mut buf = BytesMut::from(bytes);
    let decoded = codec.decode(&mut buf).unwrap().expect("a whole packet");
    assert_eq!(decoded, expected);
    assert!(buf.is_empty(), "{} bytes left over", buf.len());

    let mut from_bytes = Bytes::copy_from_slice(bytes);
    assert_eq!(
        codec.decode_bytes(&mut from_bytes).unwrap(),
        Some(expected.clone())
    );
    assert!(from_bytes.is_empty());

    let mut out = BytesMut::new();
    codec.encode(&expected, &mut out).unwrap();
    assert_eq!(&out[..], bytes, "encoding differs");
    assert_eq!(codec.encoded_len(&expected).unwrap(), bytes.len());
}

#[test]
fn connect_minimal() {
    // Section 3.1: fixed header 0x10; protocol name "MQTT", level 4, flags with only Clean
    // Session (0x02), keep alive 60, client id "haka".
    #[rustfmt::skip]
    let bytes = [
        0x10, 16,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x04,
        0x02,
        0x00, 0x3c,
        0x00, 0x04, b'h', b'a', b'k', b'a',
    ];
    check(&bytes, Packet::from(Connect::new(string("haka"))));
}

#[test]
fn connect_every_field() {
    // The example of section 3.1.2.10 (flags 0xCE: user name, password, will QoS 1, will
    // flag, clean session; keep alive 10), with its payload in the order of [MQTT-3.1.3-1].
    #[rustfmt::skip]
    let bytes = [
        0x10, 30,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x04,
        0xce,
        0x00, 0x0a,
        0x00, 0x01, b'c',
        0x00, 0x01, b'w',
        0x00, 0x03, b'b', b'y', b'e',
        0x00, 0x02, b'u', b'1',
        0x00, 0x03, b'p', b'w', b'd',
    ];
    let mut connect = Connect::new(string("c"));
    connect.keep_alive = 10;
    connect.will = Some(LastWill::new(
        topic("w"),
        BinaryData::new(&b"bye"[..]).unwrap(),
        QoS::AtLeastOnce,
    ));
    connect.login = Some(Login::new(
        string("u1"),
        Some(Password::new(&b"pwd"[..]).unwrap()),
    ));
    check(&bytes, Packet::from(connect));
}

#[test]
fn connect_persistent_session_retained_will_qos2_username_only() {
    // Flags 0xB4: user name, will retain, will QoS 2, will flag; clean session 0.
    #[rustfmt::skip]
    let bytes = [
        0x10, 23,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x04,
        0xb4,
        0x00, 0x00,
        0x00, 0x02, b'i', b'd',
        0x00, 0x01, b't',
        0x00, 0x00,
        0x00, 0x02, b'u', b's',
    ];
    let mut connect = Connect::new(string("id"));
    connect.clean_session = false;
    connect.keep_alive = 0;
    let mut will = LastWill::new(topic("t"), BinaryData::default(), QoS::ExactlyOnce);
    will.retain = true;
    connect.will = Some(will);
    connect.login = Some(Login::new(string("us"), None));
    check(&bytes, Packet::from(connect));
}

#[test]
fn connack() {
    // Section 3.2: 0x20, remaining length 2, acknowledge flags, return code.
    check(
        &[0x20, 0x02, 0x00, 0x00],
        Packet::ConnAck(ConnAck::accepted(false)),
    );
    check(
        &[0x20, 0x02, 0x01, 0x00],
        Packet::ConnAck(ConnAck::accepted(true)),
    );
    for (byte, code) in [
        (1, ConnectReturnCode::UnacceptableProtocolVersion),
        (2, ConnectReturnCode::IdentifierRejected),
        (3, ConnectReturnCode::ServerUnavailable),
        (4, ConnectReturnCode::BadUserNameOrPassword),
        (5, ConnectReturnCode::NotAuthorized),
    ] {
        check(
            &[0x20, 0x02, 0x00, byte],
            Packet::ConnAck(ConnAck::refused(code)),
        );
    }
}

#[test]
fn publish_qos0() {
    // Section 3.3: 0x30, topic "a/b", no packet identifier at QoS 0, payload "hi".
    let bytes = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    check(
        &bytes,
        Packet::Publish(Publish::new(topic("a/b"), Delivery::AtMostOnce, &b"hi"[..])),
    );
}

#[test]
fn publish_qos1_retain() {
    // The example of section 3.3.2.3: topic "a/b", packet identifier 10; flags QoS 1 and
    // retain (0x33).
    let bytes = [0x33, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, 0xff];
    let mut publish = Publish::new(
        topic("a/b"),
        Delivery::AtLeastOnce {
            packet_id: id(10),
            dup: false,
        },
        &[0xffu8][..],
    );
    publish.retain = true;
    check(&bytes, Packet::Publish(publish));
}

#[test]
fn publish_qos2_dup_empty_payload() {
    // DUP (0x08) and QoS 2 (0x04); a zero-length payload is valid (section 3.3.3).
    let bytes = [0x3c, 0x05, 0x00, 0x01, b'x', 0xff, 0xff];
    check(
        &bytes,
        Packet::Publish(Publish::new(
            topic("x"),
            Delivery::ExactlyOnce {
                packet_id: id(65_535),
                dup: true,
            },
            Bytes::new(),
        )),
    );
}

#[test]
fn publish_with_two_byte_remaining_length() {
    // Section 2.2.3: a remaining length of 321 = 0xC1 0x02.
    let payload = vec![0x5a; 321 - 2 - 1 - 2];
    let mut bytes = vec![0x32, 0xc1, 0x02, 0x00, 0x01, b't', 0x12, 0x34];
    bytes.extend_from_slice(&payload);
    check(
        &bytes,
        Packet::Publish(Publish::new(
            topic("t"),
            Delivery::AtLeastOnce {
                packet_id: id(0x1234),
                dup: false,
            },
            payload,
        )),
    );
}

#[test]
fn id_only_acknowledgements() {
    // Sections 3.4 to 3.7 and 3.11: remaining length 2, the packet identifier.
    check(
        &[0x40, 0x02, 0x00, 0x01],
        Packet::PubAck(PubAck::new(id(1))),
    );
    check(
        &[0x50, 0x02, 0x01, 0x00],
        Packet::PubRec(PubRec::new(id(256))),
    );
    // [MQTT-3.6.1-1] PUBREL's fixed-header flags are 0010.
    check(
        &[0x62, 0x02, 0xff, 0xff],
        Packet::PubRel(PubRel::new(id(65_535))),
    );
    check(
        &[0x70, 0x02, 0x00, 0x07],
        Packet::PubComp(PubComp::new(id(7))),
    );
    check(
        &[0xb0, 0x02, 0x00, 0x2a],
        Packet::UnsubAck(UnsubAck::new(id(42))),
    );
}

#[test]
fn subscribe() {
    // The example of section 3.8.3: "a/b" at QoS 1 and "c/d" at QoS 2, packet identifier 10;
    // [MQTT-3.8.1-1] the flags are 0010.
    #[rustfmt::skip]
    let bytes = [
        0x82, 14,
        0x00, 0x0a,
        0x00, 0x03, b'a', b'/', b'b', 0x01,
        0x00, 0x03, b'c', b'/', b'd', 0x02,
    ];
    let subscribe = Subscribe::new(
        id(10),
        vec![
            Subscription::new(filter("a/b"), QoS::AtLeastOnce),
            Subscription::new(filter("c/d"), QoS::ExactlyOnce),
        ],
    )
    .unwrap();
    check(&bytes, Packet::Subscribe(subscribe));
}

#[test]
fn subscribe_wildcards() {
    #[rustfmt::skip]
    let bytes = [
        0x82, 12,
        0x00, 0x01,
        0x00, 0x03, b'+', b'/', b'#', 0x00,
        0x00, 0x01, b'#', 0x01,
    ];
    let subscribe = Subscribe::new(
        id(1),
        vec![
            Subscription::new(filter("+/#"), QoS::AtMostOnce),
            Subscription::new(filter("#"), QoS::AtLeastOnce),
        ],
    )
    .unwrap();
    check(&bytes, Packet::Subscribe(subscribe));
}

#[test]
fn suback() {
    // The example of section 3.9.3: granted QoS 0, granted QoS 2, failure.
    let bytes = [0x90, 0x05, 0x00, 0x0a, 0x00, 0x02, 0x80];
    let suback = SubAck::new(
        id(10),
        vec![
            SubscribeReturnCode::Success(QoS::AtMostOnce),
            SubscribeReturnCode::Success(QoS::ExactlyOnce),
            SubscribeReturnCode::Failure,
        ],
    )
    .unwrap();
    check(&bytes, Packet::SubAck(suback));
}

#[test]
fn unsubscribe() {
    // The example of section 3.10.3: "a/b" and "c/d"; [MQTT-3.10.1-1] flags 0010.
    #[rustfmt::skip]
    let bytes = [
        0xa2, 12,
        0x00, 0x0b,
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x03, b'c', b'/', b'd',
    ];
    let unsubscribe = Unsubscribe::new(id(11), vec![filter("a/b"), filter("c/d")]).unwrap();
    check(&bytes, Packet::Unsubscribe(unsubscribe));
}

#[test]
fn pingreq_pingresp_disconnect() {
    // Sections 3.12 to 3.14: a fixed header with remaining length 0.
    check(&[0xc0, 0x00], Packet::PingReq);
    check(&[0xd0, 0x00], Packet::PingResp);
    check(&[0xe0, 0x00], Packet::Disconnect(Disconnect::new()));
}

#[test]
fn utf8_string_example() {
    // Section 1.5.3, figure 1.3: "A\u{2A6D4}" is encoded as 0x00 0x05 0x41 0xF0 0xAA 0x9B 0x94.
    let bytes = [0x30, 0x07, 0x00, 0x05, 0x41, 0xf0, 0xaa, 0x9b, 0x94];
    check(
        &bytes,
        Packet::Publish(Publish::new(
            topic("A\u{2A6D4}"),
            Delivery::AtMostOnce,
            Bytes::new(),
        )),
    );
}

#[test]
fn password_is_redacted_in_debug_output() {
    let mut connect = Connect::new(string("c"));
    connect.login = Some(Login::new(
        string("user"),
        Some(Password::new(&b"s3cret-token"[..]).unwrap()),
    ));
    let debug = format!("{connect:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("user"));
}
