//! The six flows of the send path (docs/send-path.md), each exactly as written.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use common::*;
use haka_codec::{Delivery, Packet, PubAck, PubComp, PubRec, PubRel, QoS};
use haka_session::Event;

/// QoS 0: publish -> enqueued -> written -> dequeued, and completed once written.
#[test]
fn qos0_is_dequeued_once_written() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::AtMostOnce, "zero");
    assert_eq!(sim.session.queued_messages(), 1, "enqueued");
    let publish = only_publish(sim.transmit());
    assert_eq!(publish.delivery, Delivery::AtMostOnce);
    assert_eq!(&publish.payload[..], b"zero");
    assert_eq!(sim.session.queued_messages(), 0, "dequeued once written");
    assert_eq!(completed(&sim.events()), [id]);
}

/// QoS 1: PUBLISH sent and still queued; PUBACK dequeues it.
#[test]
fn qos1_is_dequeued_on_puback() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::AtLeastOnce, "one");
    let publish = only_publish(sim.transmit());
    let packet_id = publish.packet_id().unwrap();
    assert!(!publish.dup());
    assert_eq!(
        sim.session.queued_messages(),
        1,
        "still queued after writing"
    );
    assert!(sim.events().is_empty());
    sim.deliver(PubAck::new(packet_id));
    assert_eq!(completed(&sim.events()), [id]);
    assert_eq!(sim.session.queued_messages(), 0);
    assert_eq!(sim.session.packet_ids_in_use(), 0, "packet id released");
}

/// QoS 1 with a disconnect: the PUBLISH is resent with DUP = 1 and the same packet id.
#[test]
fn qos1_is_resent_with_dup_after_reconnect() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::AtLeastOnce, "one");
    let first = only_publish(sim.transmit());
    sim.lose_connection();
    assert!(matches!(
        sim.events()[..],
        [Event::Disconnected {
            reason: haka_session::DisconnectReason::ConnectionLost
        }]
    ));
    let resent = only_publish(connect(&mut sim, true));
    assert!(resent.dup(), "[MQTT-3.3.1-1] DUP = 1 on redelivery");
    assert_eq!(resent.packet_id(), first.packet_id(), "original packet id");
    assert_eq!(resent.payload, first.payload);
    sim.deliver(PubAck::new(first.packet_id().unwrap()));
    assert_eq!(completed(&sim.events()), [id]);
}

/// QoS 2: PUBLISH, PUBREC (application told), PUBREL queued and sent, PUBCOMP dequeues and
/// tells the application.
#[test]
fn qos2_goes_through_pubrec_pubrel_pubcomp() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::ExactlyOnce, "two");
    let publish = only_publish(sim.transmit());
    let packet_id = publish.packet_id().unwrap();
    assert_eq!(publish.qos(), QoS::ExactlyOnce);

    sim.deliver(PubRec::new(packet_id));
    let events = sim.events();
    assert!(
        matches!(events[..], [Event::PublishReceived { id: got }] if got == id),
        "on_pubrec: {events:?}"
    );
    assert_eq!(sim.transmit(), [Packet::PubRel(PubRel::new(packet_id))]);
    assert_eq!(
        sim.session.queued_messages(),
        1,
        "still queued until PUBCOMP"
    );

    sim.deliver(PubComp::new(packet_id));
    assert_eq!(completed(&sim.events()), [id]);
    assert_eq!(sim.session.queued_messages(), 0);
    assert_eq!(
        sim.session.packet_ids_in_use(),
        0,
        "QoS 2 packet id released"
    );
}

/// QoS 2 with a disconnect after the PUBLISH: the PUBLISH is resent with DUP = 1.
#[test]
fn qos2_publish_is_resent_with_dup_after_reconnect() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::ExactlyOnce, "two");
    let first = only_publish(sim.transmit());
    let packet_id = first.packet_id().unwrap();
    sim.lose_connection();
    sim.events();

    let resent = only_publish(connect(&mut sim, true));
    assert!(resent.dup());
    assert_eq!(resent.packet_id(), Some(packet_id));
    sim.deliver(PubRec::new(packet_id));
    assert_eq!(sim.transmit(), [Packet::PubRel(PubRel::new(packet_id))]);
    sim.deliver(PubComp::new(packet_id));
    let events = sim.events();
    assert!(matches!(events[0], Event::PublishReceived { .. }));
    assert_eq!(completed(&events), [id]);
}

/// QoS 2 with a disconnect after the PUBREL: the PUBREL is resent, never the PUBLISH.
#[test]
fn qos2_pubrel_is_resent_after_reconnect_never_the_publish() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::ExactlyOnce, "two");
    let packet_id = only_publish(sim.transmit()).packet_id().unwrap();
    sim.deliver(PubRec::new(packet_id));
    assert_eq!(sim.transmit(), [Packet::PubRel(PubRel::new(packet_id))]);
    sim.lose_connection();
    sim.events();

    // [MQTT-4.3.3-1] never the PUBLISH again after its PUBREL.
    assert_eq!(
        connect(&mut sim, true),
        [Packet::PubRel(PubRel::new(packet_id))]
    );
    sim.deliver(PubComp::new(packet_id));
    assert_eq!(completed(&sim.events()), [id]);
}

/// Several messages in flight are resent in their original order, each as what its stage
/// needs: [MQTT-4.4.0-1], [MQTT-4.6.0-1].
#[test]
fn resends_keep_the_original_order_and_packet_ids() {
    let mut sim = sim();
    connect(&mut sim, false);
    publish(&mut sim, QoS::AtLeastOnce, "a");
    publish(&mut sim, QoS::ExactlyOnce, "b");
    publish(&mut sim, QoS::ExactlyOnce, "c");
    publish(&mut sim, QoS::AtLeastOnce, "d");
    let sent = sim.transmit();
    let ids: Vec<_> = sent
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    // "c" gets its PUBREC; the others nothing.
    sim.deliver(PubRec::new(ids[2]));
    sim.transmit();
    sim.lose_connection();
    sim.events();

    let resent = connect(&mut sim, true);
    assert_eq!(resent.len(), 4);
    for (index, packet) in resent.iter().enumerate() {
        match (index, packet) {
            (2, Packet::PubRel(rel)) => assert_eq!(rel.packet_id, ids[2]),
            (_, Packet::Publish(p)) => {
                assert_eq!(p.packet_id(), Some(ids[index]));
                assert!(p.dup());
            }
            other => panic!("unexpected resend {other:?}"),
        }
    }
}
