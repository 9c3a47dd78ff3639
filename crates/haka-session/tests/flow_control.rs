//! Packet identifiers, the in-flight window and the queue limits.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use std::num::NonZeroU16;

use common::*;
use haka_codec::{Packet, PubAck, QoS, Subscription, TopicFilter};
use haka_session::{QueueLimit, SessionError};

fn publish_ids(packets: &[Packet]) -> Vec<u16> {
    packets
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id().unwrap().get(),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Identifiers cover 1..=65535, are released on completion and reused only when free; with
/// all of them in use, a request is refused with a typed back-pressure error.
#[test]
fn packet_ids_use_the_full_range_and_running_out_is_back_pressure() {
    let mut sim = sim_with(config().max_inflight(NonZeroU16::MAX));
    connect(&mut sim, false);
    for _ in 0..u16::MAX {
        publish(&mut sim, QoS::AtLeastOnce, "x");
    }
    let mut ids = publish_ids(&sim.transmit());
    ids.sort_unstable();
    assert_eq!(ids, (1..=u16::MAX).collect::<Vec<_>>(), "every id once");
    assert_eq!(sim.session.packet_ids_in_use(), 65_535);

    let filter = || {
        vec![Subscription::new(
            TopicFilter::new("f").unwrap(),
            QoS::AtMostOnce,
        )]
    };
    assert!(matches!(
        sim.session.subscribe(filter()),
        Err(SessionError::PacketIdsExhausted)
    ));

    sim.deliver(PubAck::new(pid(500)));
    sim.events();
    sim.session.subscribe(filter()).unwrap();
    let [Packet::Subscribe(s)] = &sim.transmit()[..] else {
        panic!()
    };
    assert_eq!(s.packet_id.get(), 500, "the released id, the only free one");
}

/// An identifier is never reused while in use by any packet kind.
#[test]
fn packet_ids_are_never_shared_between_requests_and_messages() {
    let mut sim = sim();
    connect(&mut sim, false);
    let filter = || {
        vec![Subscription::new(
            TopicFilter::new("f").unwrap(),
            QoS::AtMostOnce,
        )]
    };
    sim.session.subscribe(filter()).unwrap();
    publish(&mut sim, QoS::AtLeastOnce, "a");
    sim.session
        .unsubscribe(vec![TopicFilter::new("f").unwrap()])
        .unwrap();
    publish(&mut sim, QoS::ExactlyOnce, "b");
    let mut ids: Vec<u16> = sim
        .transmit()
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id().unwrap().get(),
            Packet::Subscribe(s) => s.packet_id.get(),
            Packet::Unsubscribe(u) => u.packet_id.get(),
            other => panic!("{other:?}"),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

/// Messages beyond the in-flight window wait, in order, and go out as acks free room.
#[test]
fn messages_beyond_the_window_wait_in_order() {
    let mut sim = sim_with(config().max_inflight(NonZeroU16::new(2).unwrap()));
    connect(&mut sim, false);
    for payload in ["1", "2", "3", "4", "5"] {
        publish(&mut sim, QoS::AtLeastOnce, payload);
    }
    publish(&mut sim, QoS::AtMostOnce, "6");
    let sent = sim.transmit();
    assert_eq!(sent.len(), 2);
    assert_eq!(sim.session.inflight_messages(), 2);
    let mut order = Vec::new();
    let mut in_flight: Vec<u16> = publish_ids(&sent);
    order.extend(sent);
    for _ in 0..10 {
        if in_flight.is_empty() {
            break;
        }
        sim.deliver(PubAck::new(pid(in_flight.remove(0))));
        let sent = sim.transmit();
        for packet in &sent {
            if let Packet::Publish(p) = packet {
                if let Some(id) = p.packet_id() {
                    in_flight.push(id.get());
                }
            }
        }
        assert!(sim.session.inflight_messages() <= 2);
        order.extend(sent);
    }
    let payloads: Vec<_> = order
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => String::from_utf8(p.payload.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(payloads, ["1", "2", "3", "4", "5", "6"]);
}

/// A full queue refuses the publish with a typed error and drops nothing.
#[test]
fn a_full_queue_refuses_with_a_typed_error_and_drops_nothing() {
    let mut sim = sim_with(config().queue_limits(3, 1 << 20));
    for _ in 0..3 {
        publish(&mut sim, QoS::AtLeastOnce, "x");
    }
    let refused = sim
        .session
        .publish(topic("t"), QoS::AtLeastOnce, false, "y");
    assert!(matches!(
        refused,
        Err(SessionError::QueueFull(QueueLimit::Messages(3)))
    ));
    assert_eq!(sim.session.queued_messages(), 3);

    let mut sim = sim_with(config().queue_limits(100, 10));
    publish(&mut sim, QoS::AtLeastOnce, "12345678"); // 1 + 8 bytes
    let refused = sim
        .session
        .publish(topic("t"), QoS::AtLeastOnce, false, "y");
    assert!(matches!(
        refused,
        Err(SessionError::QueueFull(QueueLimit::Bytes(10)))
    ));
    // Completion frees room.
    let resent = connect(&mut sim, false);
    sim.deliver(PubAck::new(resent_id(&resent)));
    sim.events();
    sim.session
        .publish(topic("t"), QoS::AtLeastOnce, false, "y")
        .unwrap();
}

fn resent_id(packets: &[Packet]) -> haka_codec::PacketId {
    match packets {
        [Packet::Publish(p)] => p.packet_id().unwrap(),
        other => panic!("{other:?}"),
    }
}

/// A message over the outgoing size limit is refused at publish, not when sending.
#[test]
fn an_oversized_message_is_refused_at_publish() {
    let mut sim = sim_with(config().max_packet_size(1 << 20, 100));
    let refused = sim
        .session
        .publish(topic("t"), QoS::AtLeastOnce, false, vec![0u8; 200]);
    assert!(matches!(refused, Err(SessionError::Encode(_))));
    assert_eq!(sim.session.queued_messages(), 0);
}

/// A message the broker refuses on every connection can be abandoned: out of the queue, the
/// store and the window, its identifier free; the rest proceeds.
#[test]
fn an_abandoned_message_leaves_queue_store_and_window() {
    let mut sim = sim_with(config().max_inflight(NonZeroU16::new(1).unwrap()));
    connect(&mut sim, false);
    let stuck = publish(&mut sim, QoS::ExactlyOnce, "refused");
    let waiting = publish(&mut sim, QoS::AtLeastOnce, "next");
    let queued = publish(&mut sim, QoS::AtLeastOnce, "queued");
    assert_eq!(publish_ids(&sim.transmit()).len(), 1);
    assert_eq!(sim.session.oldest_inflight(), Some(stuck));
    assert!(sim.session.abandon(stuck).unwrap());
    assert!(!sim.session.abandon(stuck).unwrap(), "already gone");
    assert!(sim.session.abandon(queued).unwrap(), "a queued one too");
    let sent = sim.transmit();
    assert_eq!(sent.len(), 1, "the next message takes the window");
    sim.deliver(PubAck::new(pid(publish_ids(&sent)[0])));
    assert_eq!(completed(&sim.events()), [waiting]);
    assert_eq!(sim.session.queued_messages(), 0);
    assert_eq!(sim.session.packet_ids_in_use(), 0);
    assert!(sim.session.into_store().is_empty());
}
