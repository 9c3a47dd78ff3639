//! The receive path: QoS 0/1/2 inbound, acknowledgement order, QoS 2 deduplication and
//! manual acknowledgement.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use bytes::Bytes;
use common::*;
use haka_codec::{Delivery, Packet, PubAck, PubComp, PubRec, PubRel, Publish, QoS};
use haka_session::{Event, Incoming, MemoryStore, Session, SessionError};
use haka_testkit::Sim;

fn inbound(qos: QoS, id: u16, payload: &'static str) -> Publish {
    let delivery = match qos {
        QoS::AtMostOnce => Delivery::AtMostOnce,
        QoS::AtLeastOnce => Delivery::AtLeastOnce {
            packet_id: pid(id),
            dup: false,
        },
        QoS::ExactlyOnce => Delivery::ExactlyOnce {
            packet_id: pid(id),
            dup: false,
        },
    };
    Publish::new(
        topic("in"),
        delivery,
        Bytes::from_static(payload.as_bytes()),
    )
}

fn messages(events: Vec<Event>) -> Vec<Incoming> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn payloads(events: Vec<Event>) -> Vec<String> {
    messages(events)
        .into_iter()
        .map(|m| String::from_utf8(m.publish.payload.to_vec()).unwrap())
        .collect()
}

#[test]
fn qos0_message_is_handed_over_and_not_acknowledged() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::AtMostOnce, 1, "zero"));
    assert_eq!(payloads(sim.events()), ["zero"]);
    assert!(sim.transmit().is_empty());
}

#[test]
fn qos1_message_is_handed_over_then_acknowledged() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::AtLeastOnce, 7, "one"));
    assert_eq!(payloads(sim.events()), ["one"]);
    assert_eq!(sim.transmit(), [Packet::PubAck(PubAck::new(pid(7)))]);
}

#[test]
fn qos1_redelivery_after_reconnect_is_acknowledged_again() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::AtLeastOnce, 7, "one"));
    sim.lose_connection(); // before the PUBACK went out
    sim.events();
    connect(&mut sim, true);
    sim.deliver(inbound(QoS::AtLeastOnce, 7, "one").clone());
    assert_eq!(payloads(sim.events()), ["one"], "QoS 1 is at least once");
    assert_eq!(sim.transmit(), [Packet::PubAck(PubAck::new(pid(7)))]);
}

#[test]
fn qos2_message_goes_through_pubrec_pubrel_pubcomp() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 9, "two"));
    assert_eq!(payloads(sim.events()), ["two"]);
    assert_eq!(sim.transmit(), [Packet::PubRec(PubRec::new(pid(9)))]);
    sim.deliver(PubRel::new(pid(9)));
    assert_eq!(sim.transmit(), [Packet::PubComp(PubComp::new(pid(9)))]);
    assert!(sim.events().is_empty());
}

/// [MQTT-4.3.3-2]: a redelivered QoS 2 message, before its PUBREL, is acknowledged again but
/// never handed over twice.
#[test]
fn qos2_redelivery_is_acknowledged_but_not_handed_over_twice() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 9, "two"));
    assert_eq!(payloads(sim.events()), ["two"]);
    sim.lose_connection(); // the PUBREC is lost
    sim.events();
    connect(&mut sim, true);
    let mut again = inbound(QoS::ExactlyOnce, 9, "two");
    again.delivery = again.delivery.with_dup(true);
    sim.deliver(again.clone());
    sim.deliver(again);
    assert!(payloads(sim.events()).is_empty(), "not handed over again");
    assert_eq!(
        sim.transmit(),
        [
            Packet::PubRec(PubRec::new(pid(9))),
            Packet::PubRec(PubRec::new(pid(9)))
        ]
    );
    // After PUBREL the identifier is free for a new message.
    sim.deliver(PubRel::new(pid(9)));
    sim.deliver(inbound(QoS::ExactlyOnce, 9, "new"));
    assert_eq!(payloads(sim.events()), ["new"]);
}

/// The same, across a process restart: the identifier is persisted before the message is
/// handed over.
#[test]
fn qos2_redelivery_after_restart_is_not_handed_over_twice() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 9, "two"));
    assert_eq!(payloads(sim.events()), ["two"]);
    let store = sim.session.into_store();

    let mut sim = Sim::new(Session::new(config(), store).unwrap());
    connect(&mut sim, true);
    let mut again = inbound(QoS::ExactlyOnce, 9, "two");
    again.delivery = again.delivery.with_dup(true);
    sim.deliver(again);
    assert!(payloads(sim.events()).is_empty());
    assert_eq!(sim.transmit(), [Packet::PubRec(PubRec::new(pid(9)))]);
}

/// A broker that lost its session will release nothing: its identifiers are forgotten.
#[test]
fn qos2_identifiers_are_forgotten_when_the_broker_has_no_session() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 9, "two"));
    sim.events();
    sim.lose_connection();
    sim.events();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 9, "new session"));
    assert_eq!(payloads(sim.events()), ["new session"]);
    assert!(sim.session.into_store().recover_inbound_len() == 1);
}

trait InboundLen {
    fn recover_inbound_len(self) -> usize;
}
impl InboundLen for MemoryStore {
    fn recover_inbound_len(mut self) -> usize {
        haka_session::Store::recover(&mut self)
            .unwrap()
            .inbound
            .len()
    }
}

/// A PUBREL for an unknown identifier (its PUBCOMP was lost before a restart) still gets a
/// PUBCOMP.
#[test]
fn pubrel_for_an_unknown_id_gets_its_pubcomp() {
    let mut sim = sim();
    connect(&mut sim, true);
    sim.deliver(PubRel::new(pid(44)));
    assert_eq!(sim.transmit(), [Packet::PubComp(PubComp::new(pid(44)))]);
}

/// [MQTT-4.6.0-2], [MQTT-4.6.0-3]: acknowledgements in the order the PUBLISH packets came.
#[test]
fn acknowledgements_go_out_in_arrival_order() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::AtLeastOnce, 3, "a"));
    sim.deliver(inbound(QoS::ExactlyOnce, 1, "b"));
    sim.deliver(inbound(QoS::AtLeastOnce, 2, "c"));
    sim.deliver(inbound(QoS::ExactlyOnce, 5, "d"));
    assert_eq!(payloads(sim.events()), ["a", "b", "c", "d"]);
    assert_eq!(
        sim.transmit(),
        [
            Packet::PubAck(PubAck::new(pid(3))),
            Packet::PubRec(PubRec::new(pid(1))),
            Packet::PubAck(PubAck::new(pid(2))),
            Packet::PubRec(PubRec::new(pid(5))),
        ]
    );
}

/// Manual acknowledgement: the application acknowledges after processing, in any order;
/// the wire acknowledgements still go out in arrival order.
#[test]
fn manual_acks_go_out_in_arrival_order_whatever_the_ack_order() {
    let mut sim = sim_with(config().manual_ack(true));
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::AtLeastOnce, 3, "a"));
    sim.deliver(inbound(QoS::ExactlyOnce, 1, "b"));
    sim.deliver(inbound(QoS::AtLeastOnce, 2, "c"));
    let tokens: Vec<_> = messages(sim.events())
        .into_iter()
        .map(|m| m.ack.unwrap())
        .collect();
    assert!(sim.transmit().is_empty(), "nothing acknowledged yet");

    sim.session.ack(tokens[2]).unwrap();
    assert!(sim.transmit().is_empty(), "c waits for a and b");
    sim.session.ack(tokens[0]).unwrap();
    assert_eq!(sim.transmit(), [Packet::PubAck(PubAck::new(pid(3)))]);
    sim.session.ack(tokens[1]).unwrap();
    assert_eq!(
        sim.transmit(),
        [
            Packet::PubRec(PubRec::new(pid(1))),
            Packet::PubAck(PubAck::new(pid(2)))
        ]
    );
    assert!(matches!(
        sim.session.ack(tokens[1]),
        Err(SessionError::UnknownAck)
    ));
}

/// With manual acknowledgement, a QoS 2 redelivery before the application acknowledged is
/// not handed over again, and its PUBREC waits for that acknowledgement.
#[test]
fn manual_ack_qos2_redelivery_waits_for_the_application() {
    let mut sim = sim_with(config().manual_ack(true));
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 4, "x"));
    let token = messages(sim.events()).remove(0).ack.unwrap();
    sim.lose_connection();
    sim.events();
    connect(&mut sim, true);
    sim.deliver(inbound(QoS::ExactlyOnce, 4, "x"));
    assert!(sim.events().is_empty());
    assert!(sim.transmit().is_empty());
    sim.session.ack(token).unwrap();
    assert_eq!(sim.transmit(), [Packet::PubRec(PubRec::new(pid(4)))]);
}

/// A QoS 1 token from an earlier connection is refused: the broker delivers again.
#[test]
fn manual_ack_of_an_earlier_connection_is_refused() {
    let mut sim = sim_with(config().manual_ack(true));
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::AtLeastOnce, 4, "x"));
    let token = messages(sim.events()).remove(0).ack.unwrap();
    sim.lose_connection();
    sim.events();
    connect(&mut sim, true);
    assert!(matches!(
        sim.session.ack(token),
        Err(SessionError::UnknownAck)
    ));
}

/// A PUBLISH on a new subscription may come before its SUBACK.
#[test]
fn publish_before_suback_is_delivered() {
    let mut sim = sim();
    connect(&mut sim, false);
    let request = sim
        .session
        .subscribe(vec![haka_codec::Subscription::new(
            haka_codec::TopicFilter::new("in").unwrap(),
            QoS::AtLeastOnce,
        )])
        .unwrap();
    let [Packet::Subscribe(subscribe)] = &sim.transmit()[..] else {
        panic!()
    };
    let packet_id = subscribe.packet_id;
    sim.deliver(inbound(QoS::AtMostOnce, 1, "early"));
    sim.deliver(
        haka_codec::SubAck::new(
            packet_id,
            vec![haka_codec::SubscribeReturnCode::Success(QoS::AtLeastOnce)],
        )
        .unwrap(),
    );
    let events = sim.events();
    assert!(matches!(&events[0], Event::Message(m) if &m.publish.payload[..] == b"early"));
    assert!(matches!(&events[1], Event::Subscribed { request: r, .. } if *r == request));
}

/// An acknowledgement token acknowledges its own message only, never a later one under the
/// same packet identifier.
#[test]
fn a_token_used_twice_does_not_acknowledge_a_later_message() {
    let mut sim = sim_with(config().manual_ack(true));
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::AtLeastOnce, 3, "first"));
    let first = messages(sim.events()).remove(0).ack.unwrap();
    sim.session.ack(first).unwrap();
    assert_eq!(sim.transmit(), [Packet::PubAck(PubAck::new(pid(3)))]);
    sim.deliver(inbound(QoS::AtLeastOnce, 3, "second"));
    sim.events();
    assert!(matches!(
        sim.session.ack(first),
        Err(SessionError::UnknownAck)
    ));
    assert!(
        sim.transmit().is_empty(),
        "the second message is not acknowledged"
    );
}

/// A PUBREL for a message the application has not acknowledged yet (a broker bug) does
/// not hold up the acknowledgements behind it.
#[test]
fn manual_ack_pubrel_before_pubrec_does_not_block_later_acks() {
    let mut sim = sim_with(config().manual_ack(true));
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 1, "a"));
    sim.deliver(inbound(QoS::AtLeastOnce, 2, "b"));
    let tokens: Vec<_> = messages(sim.events())
        .into_iter()
        .map(|m| m.ack.unwrap())
        .collect();
    sim.deliver(PubRel::new(pid(1)));
    assert_eq!(sim.transmit(), [Packet::PubComp(PubComp::new(pid(1)))]);
    sim.session.ack(tokens[1]).unwrap();
    assert_eq!(sim.transmit(), [Packet::PubAck(PubAck::new(pid(2)))]);
}

/// A message the application gives up on (nack) is not acknowledged, no longer holds up the
/// acknowledgements behind it, and is handed over again when the broker redelivers it.
#[test]
fn a_nacked_message_unblocks_later_acks_and_comes_again() {
    let mut sim = sim_with(config().manual_ack(true));
    connect(&mut sim, false);
    sim.deliver(inbound(QoS::ExactlyOnce, 1, "given up"));
    sim.deliver(inbound(QoS::AtLeastOnce, 2, "one"));
    sim.deliver(inbound(QoS::AtLeastOnce, 3, "also given up"));
    let tokens: Vec<_> = messages(sim.events())
        .into_iter()
        .map(|m| m.ack.unwrap())
        .collect();
    sim.session.ack(tokens[1]).unwrap();
    assert!(sim.transmit().is_empty(), "held up by the first");
    sim.session.nack(tokens[0]).unwrap();
    sim.session.nack(tokens[2]).unwrap();
    assert_eq!(sim.transmit(), [Packet::PubAck(PubAck::new(pid(2)))]);
    assert!(matches!(
        sim.session.nack(tokens[0]),
        Err(SessionError::UnknownAck)
    ));
    sim.lose_connection();
    sim.events();
    connect(&mut sim, true);
    let mut again = inbound(QoS::ExactlyOnce, 1, "given up");
    again.delivery = again.delivery.with_dup(true);
    sim.deliver(again);
    assert_eq!(payloads(sim.events()), ["given up"], "handed over again");
}
