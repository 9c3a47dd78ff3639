//! Counts heap allocations to prove two claims of the codec:
//!
//! - decoding a PUBLISH allocates nothing beyond the frame's own buffer: topic and payload are
//!   slices of it;
//! - the borrowed decode allocates nothing at all, for PUBLISH, CONNECT, SUBSCRIBE or any other
//!   packet, and neither does reading a borrowed SUBSCRIBE's filters;
//! - a forged remaining length never makes the decoder reserve or allocate what it announces.
//!
//! The counting allocator counts per thread, so the test harness's own threads do not disturb
//! the figures.

// A test fails by panicking: unwrapping is how these helpers report it.
#![allow(clippy::unwrap_used)]
// A global allocator can only be written with `unsafe impl GlobalAlloc`; it forwards to the
// system allocator unchanged.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use bytes::{Bytes, BytesMut};
use haka_codec::{
    Codec, Connect, DecodeError, Delivery, LastWill, Login, MqttString, Packet, PacketId,
    PacketRef, Password, Publish, QoS, SubAck, Subscribe, SubscribeReturnCode, Subscription,
    TopicFilter, TopicName, Unsubscribe, MAX_PACKET_SIZE,
};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static ALLOCATED_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = ALLOCATED_BYTES.try_with(|n| n.set(n.get() + size));
}

// SAFETY: every call is forwarded to `System` with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns what it returned, with the number of allocations and bytes it made.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (n0, b0) = (ALLOCATIONS.with(Cell::get), ALLOCATED_BYTES.with(Cell::get));
    let value = f();
    let (n1, b1) = (ALLOCATIONS.with(Cell::get), ALLOCATED_BYTES.with(Cell::get));
    (value, n1 - n0, b1 - b0)
}

fn publishes(count: usize) -> BytesMut {
    let codec = Codec::new();
    let mut wire = BytesMut::new();
    for i in 0..count {
        let delivery = match i % 3 {
            0 => Delivery::AtMostOnce,
            1 => Delivery::AtLeastOnce {
                packet_id: PacketId::new(i as u16 + 1).expect("i < 65535"),
                dup: false,
            },
            _ => Delivery::ExactlyOnce {
                packet_id: PacketId::new(i as u16 + 1).expect("i < 65535"),
                dup: true,
            },
        };
        let publish = Publish::new(
            TopicName::new("sensors/room1/temperature").expect("a valid topic"),
            delivery,
            vec![i as u8; [16, 1024, 65_536][i % 3]],
        );
        codec
            .encode(&Packet::Publish(publish), &mut wire)
            .expect("a valid packet");
    }
    wire
}

#[test]
fn decoding_publish_from_a_shared_frame_allocates_nothing() {
    let codec = Codec::new();
    let wire: Bytes = publishes(300).freeze();
    // Make the buffer shared once, as a read loop's buffer is after its first split.
    let mut input = wire.clone();
    let ((), allocations, bytes) = counted(|| {
        let mut decoded = 0;
        while let Some(packet) = codec.decode_bytes(&mut input).unwrap() {
            let Packet::Publish(publish) = packet else {
                panic!("not a PUBLISH")
            };
            assert_eq!(publish.topic, "sensors/room1/temperature");
            decoded += 1;
        }
        assert_eq!(decoded, 300);
    });
    assert_eq!((allocations, bytes), (0, 0));
}

#[test]
fn streaming_decode_of_publish_allocates_nothing_per_packet() {
    let codec = Codec::new();
    let mut buf = publishes(300);
    let (packets, allocations, bytes) = counted(|| {
        let mut packets = Vec::with_capacity(300);
        while let Some(packet) = codec.decode(&mut buf).unwrap() {
            packets.push(packet);
        }
        packets
    });
    assert_eq!(packets.len(), 300);
    // `Vec::with_capacity` above is one allocation. The first `split_to` of a `BytesMut`
    // turns its buffer into a shared one, which takes one small header allocation for the
    // whole buffer, not one per packet.
    assert_eq!(allocations, 2, "{bytes} bytes");
    let vec_bytes = 300 * std::mem::size_of::<Packet>();
    assert!(bytes - vec_bytes <= 64, "{bytes} bytes");
    // Payloads point into the received buffer.
    let Packet::Publish(last) = &packets[299] else {
        panic!()
    };
    assert_eq!(last.payload.len(), 65_536);
}

#[test]
fn borrowed_decode_allocates_nothing() {
    let codec = Codec::new();
    let mut wire = publishes(300);
    let mut connect = Connect::new(MqttString::new("haka-bench-00001").unwrap());
    connect.login = Some(Login::new(
        MqttString::new("user").unwrap(),
        Some(Password::new("pass").unwrap()),
    ));
    connect.will = Some(LastWill::new(
        TopicName::new("will/topic").unwrap(),
        haka_codec::BinaryData::new("gone").unwrap(),
        QoS::AtLeastOnce,
    ));
    let id = PacketId::new(1).unwrap();
    let filters: Vec<TopicFilter> = (0..10)
        .map(|i| TopicFilter::new(format!("sensors/room{i}/+")).unwrap())
        .collect();
    let subscriptions = filters
        .iter()
        .map(|f| Subscription::new(f.clone(), QoS::AtLeastOnce))
        .collect();
    let others: [Packet; 4] = [
        connect.into(),
        Subscribe::new(id, subscriptions).unwrap().into(),
        Unsubscribe::new(id, filters).unwrap().into(),
        SubAck::new(id, vec![SubscribeReturnCode::Failure; 3])
            .unwrap()
            .into(),
    ];
    for packet in &others {
        codec.encode(packet, &mut wire).unwrap();
    }
    let wire = wire.freeze();

    let ((), allocations, bytes) = counted(|| {
        let mut rest = &wire[..];
        let (mut publishes, mut others, mut filters) = (0, 0, 0);
        while let Some((packet, used)) = codec.decode_ref(rest).unwrap() {
            match packet {
                PacketRef::Publish(publish) => {
                    assert_eq!(publish.topic, "sensors/room1/temperature");
                    publishes += 1;
                }
                PacketRef::Connect(connect) => {
                    assert_eq!(connect.client_id(), "haka-bench-00001");
                    assert_eq!(connect.will().map(|w| w.topic.as_str()), Some("will/topic"));
                    others += 1;
                }
                PacketRef::Subscribe(subscribe) => {
                    filters += subscribe
                        .subscriptions()
                        .filter(|s| s.filter.ends_with('+'))
                        .count();
                    others += 1;
                }
                PacketRef::Unsubscribe(unsubscribe) => {
                    filters += unsubscribe.filters().count();
                    others += 1;
                }
                PacketRef::SubAck(suback) => {
                    assert_eq!(suback.return_codes().count(), 3);
                    others += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        assert_eq!((publishes, others, filters), (300, 4, 20));
    });
    assert_eq!((allocations, bytes), (0, 0));
}

#[test]
fn forged_remaining_length_allocates_nothing() {
    // A fixed header announcing the largest packet MQTT can express.
    let forged = [0x30, 0xff, 0xff, 0xff, 0x7f];
    for codec in [
        Codec::new(),
        Codec::new().with_max_incoming_packet_size(MAX_PACKET_SIZE),
    ] {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&forged);
        let (result, allocations, bytes) = counted(|| codec.decode(&mut buf));
        assert!(matches!(
            result,
            Ok(None) | Err(DecodeError::PacketTooLarge { .. })
        ));
        assert_eq!((allocations, bytes), (0, 0));
        let (result, allocations, bytes) = counted(|| codec.decode_ref(&forged).map(|_| ()));
        assert!(matches!(
            result,
            Ok(()) | Err(DecodeError::PacketTooLarge { .. })
        ));
        assert_eq!((allocations, bytes), (0, 0));
        assert_eq!(buf.capacity(), 64, "nothing reserved");
    }
}

#[test]
fn forged_inner_lengths_allocate_at_most_the_body() {
    // A SUBSCRIBE whose first filter claims 65,535 bytes and whose body holds 5: the list is
    // sized from what the body can hold, never from the claim.
    let codec = Codec::new();
    let mut buf = BytesMut::from(&[0x82, 0x06, 0x00, 0x01, 0xff, 0xff, b'a', 0x00][..]);
    let (result, _, bytes) = counted(|| codec.decode(&mut buf));
    assert_eq!(
        result,
        Err(DecodeError::Truncated(haka_codec::PacketType::Subscribe))
    );
    assert!(bytes <= 256, "{bytes} bytes");
}

#[test]
fn forged_empty_list_entries_allocate_little() {
    // A 1 MiB UNSUBSCRIBE made of two-byte entries claiming empty filters: each would be a
    // 32-byte `TopicFilter` in memory, but the packet is refused at the first one, before the
    // list has grown.
    let codec = Codec::new();
    let body_len = (1 << 20) - 8;
    let mut wire = vec![0xa2];
    let mut len = body_len;
    while len >= 0x80 {
        wire.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    wire.push(len as u8);
    wire.extend_from_slice(&[0x00, 0x01]);
    wire.resize(wire.len() + body_len - 2, 0);
    let mut buf = BytesMut::from(&wire[..]);
    let (result, _, bytes) = counted(|| codec.decode(&mut buf));
    assert_eq!(result, Err(DecodeError::EmptyTopic));
    assert!(bytes <= 4096, "{bytes} bytes");
}
