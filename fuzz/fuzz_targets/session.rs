//! The session against arbitrary broker bytes and command sequences: it never panics, never
//! writes an invalid packet, and never loses an accepted QoS 1 or 2 message: whatever
//! happens, every accepted message is either completed or still in the store, also across
//! restarts.

#![no_main]

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use arbitrary::Arbitrary;
use bytes::BytesMut;
use haka_codec::{Codec, MqttString, Packet, QoS, Subscription, TopicFilter, TopicName};
use haka_session::{AckToken, Config, Event, MemoryStore, MessageId, Session};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    Publish {
        qos: QoS,
        len: u8,
    },
    Subscribe(QoS),
    Unsubscribe,
    Connected,
    /// Bytes from the broker, as one read.
    Bytes(Vec<u8>),
    /// A valid packet from the broker.
    Packet(Packet),
    Lost,
    Advance(u16),
    Transmit,
    Ack(u8),
    Disconnect,
    Restart,
}

#[derive(Debug, Arbitrary)]
struct Input {
    manual_ack: bool,
    clean_session: bool,
    window: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let config = Config::new(MqttString::new("fuzz").expect("valid"))
        .clean_session(input.clean_session)
        .manual_ack(input.manual_ack)
        .keep_alive(Duration::from_secs(10))
        .queue_limits(1_000, 1 << 20)
        .max_inflight(std::num::NonZeroU16::new(input.window.max(1).into()).expect("non-zero"));
    let mut session = Session::new(config.clone(), MemoryStore::new()).expect("a session");
    let codec = Codec::new().with_max_incoming_packet_size(haka_codec::MAX_PACKET_SIZE);
    let start = Instant::now();
    let mut now = start;
    let mut input_buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut accepted: HashSet<MessageId> = HashSet::new();
    let mut tokens: Vec<AckToken> = Vec::new();
    let topic = TopicName::new("t").expect("valid");

    for op in input.ops.into_iter().take(256) {
        match op {
            Op::Publish { qos, len } => {
                if let Ok(id) = session.publish(topic.clone(), qos, false, vec![0u8; len.into()]) {
                    if qos != QoS::AtMostOnce {
                        accepted.insert(id);
                    }
                }
            }
            Op::Subscribe(qos) => {
                let filter = TopicFilter::new("a/#").expect("valid");
                let _ = session.subscribe(vec![Subscription::new(filter, qos)]);
            }
            Op::Unsubscribe => {
                let _ = session.unsubscribe(vec![TopicFilter::new("a/#").expect("valid")]);
            }
            Op::Connected => {
                input_buf.clear();
                session.handle_connected(now);
            }
            Op::Bytes(bytes) => {
                input_buf.extend_from_slice(&bytes);
                session.handle_bytes(now, &mut input_buf);
            }
            Op::Packet(packet) => {
                if codec.encode(&packet, &mut input_buf).is_ok() {
                    session.handle_bytes(now, &mut input_buf);
                }
            }
            Op::Lost => session.handle_connection_lost(now),
            Op::Advance(millis) => {
                now += Duration::from_millis(millis.into());
                session.handle_timeout(now);
            }
            Op::Transmit => {
                for _ in 0..1_000 {
                    out.clear();
                    if session.poll_transmit(now, &mut out) == 0 {
                        break;
                    }
                    // Everything the session writes is a valid packet.
                    while let Some(_packet) = codec.decode(&mut out).expect("valid output") {}
                    assert!(out.is_empty(), "partial packet written");
                }
            }
            Op::Ack(index) => {
                if !tokens.is_empty() {
                    let token = tokens.remove(usize::from(index) % tokens.len());
                    let _ = session.ack(token);
                }
            }
            Op::Disconnect => session.disconnect(),
            Op::Restart => {
                while let Some(event) = session.poll_event() {
                    observe(event, &mut accepted, &mut tokens);
                }
                session = Session::new(config.clone(), session.into_store()).expect("restart");
                tokens.clear();
                input_buf.clear();
            }
        }
        while let Some(event) = session.poll_event() {
            observe(event, &mut accepted, &mut tokens);
        }
        // Invariants.
        assert!(session.inflight_messages() <= session.queued_messages());
        assert!(session.inflight_messages() <= session.packet_ids_in_use());
        assert_eq!(
            session.store().len(),
            accepted.len(),
            "accepted messages neither completed nor stored"
        );
        if let Some(at) = session.poll_timeout() {
            // Timers never point more than an idle timeout and a keep alive ahead.
            assert!(at <= now + Duration::from_secs(60));
        }
    }
});

fn observe(event: Event, accepted: &mut HashSet<MessageId>, tokens: &mut Vec<AckToken>) {
    match event {
        Event::PublishCompleted { id, qos } => {
            if qos != QoS::AtMostOnce {
                assert!(
                    accepted.remove(&id),
                    "completed twice or never accepted: {id:?}"
                );
            }
        }
        Event::Message(incoming) => tokens.extend(incoming.ack),
        Event::StoreFailed(error) => panic!("memory store failed: {error}"),
        _ => {}
    }
}
