//! What the session does when its store fails: nothing that depends on the failed change
//! leaves, the connection is closed with `StoreFailed`, and the queue is intact for the next
//! connection.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use bytes::Bytes;
use common::*;
use haka_codec::{Delivery, Packet, PubRec, PubRel, Publish, QoS};
use haka_session::{DisconnectReason, Event, MemoryStore, Session};
use haka_testkit::{Fault, FaultyStore, Sim};

fn faulty() -> Sim<FaultyStore<MemoryStore>> {
    Sim::new(Session::new(config(), FaultyStore::new(MemoryStore::new())).unwrap())
}

fn store_failed(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::StoreFailed(_)))
        && events.iter().any(|e| {
            matches!(
                e,
                Event::Disconnected {
                    reason: DisconnectReason::StoreFailed
                }
            )
        })
}

#[test]
fn a_failed_commit_sends_nothing_and_keeps_the_queue() {
    let mut sim = faulty();
    connect(&mut sim, false);
    sim.session.store_mut().failing.push(Fault::Commit);
    publish(&mut sim, QoS::AtLeastOnce, "not yet durable");
    assert!(sim.transmit().is_empty(), "no PUBLISH before its commit");
    assert!(store_failed(&sim.events()));
    assert_eq!(sim.session.queued_messages(), 1);

    sim.session.store_mut().failing.clear();
    let sent = connect(&mut sim, false);
    assert!(matches!(&sent[..], [Packet::Publish(p)] if &p.payload[..] == b"not yet durable"));
}

#[test]
fn a_failed_release_sends_no_pubrel() {
    let mut sim = faulty();
    connect(&mut sim, false);
    publish(&mut sim, QoS::ExactlyOnce, "two");
    let publish = only_publish(sim.transmit());
    sim.session.store_mut().failing.push(Fault::Release);
    sim.deliver(PubRec::new(publish.packet_id().unwrap()));
    assert!(
        sim.transmit().is_empty(),
        "no PUBREL without the stored release"
    );
    assert!(store_failed(&sim.events()));

    // The next connection resends the PUBLISH (not the PUBREL): the stage was not stored.
    sim.session.store_mut().failing.clear();
    let resent = connect(&mut sim, true);
    assert!(matches!(&resent[..], [Packet::Publish(p)] if p.dup()));
}

#[test]
fn a_failed_inbound_removal_sends_no_pubcomp() {
    let mut sim = faulty();
    connect(&mut sim, false);
    let message = Publish::new(
        topic("in"),
        Delivery::ExactlyOnce {
            packet_id: pid(5),
            dup: false,
        },
        Bytes::from_static(b"x"),
    );
    sim.deliver(message);
    sim.events();
    sim.transmit();
    sim.session.store_mut().failing.push(Fault::RemoveInbound);
    sim.deliver(PubRel::new(pid(5)));
    assert!(
        sim.transmit().is_empty(),
        "no PUBCOMP without the stored removal"
    );
    assert!(store_failed(&sim.events()));
}

/// An inbound QoS 2 message whose identifier could not be committed is withdrawn: not
/// handed over, not acknowledged, so the broker delivers it again, and then it is handed
/// over once.
#[test]
fn an_uncommitted_inbound_qos2_message_is_withdrawn_and_redelivered_once() {
    let mut sim = faulty();
    connect(&mut sim, false);
    sim.session.store_mut().failing.push(Fault::Commit);
    let message = Publish::new(
        topic("in"),
        Delivery::ExactlyOnce {
            packet_id: pid(5),
            dup: false,
        },
        Bytes::from_static(b"once"),
    );
    sim.deliver(message.clone());
    let events = sim.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Message(_))),
        "{events:?}"
    );
    assert!(store_failed(&events));

    sim.session.store_mut().failing.clear();
    connect(&mut sim, true);
    let mut again = message;
    again.delivery = again.delivery.with_dup(true);
    sim.deliver(again);
    let events = sim.events();
    let handed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Message(_)))
        .collect();
    assert_eq!(handed.len(), 1, "{events:?}");
    assert_eq!(sim.transmit(), [Packet::PubRec(PubRec::new(pid(5)))]);
}

/// Once a commit succeeded (written by poll_transmit), the gated message is released: a
/// later failure does not withdraw a message whose PUBREC already left.
#[test]
fn a_committed_inbound_message_is_not_withdrawn_by_a_later_failure() {
    let mut sim = faulty();
    connect(&mut sim, false);
    let message = Publish::new(
        topic("in"),
        Delivery::ExactlyOnce {
            packet_id: pid(6),
            dup: false,
        },
        Bytes::from_static(b"kept"),
    );
    sim.deliver(message);
    // Transmit first: commits, and the PUBREC leaves.
    assert_eq!(sim.transmit(), [Packet::PubRec(PubRec::new(pid(6)))]);
    sim.session.store_mut().failing.push(Fault::Commit);
    publish(&mut sim, QoS::AtLeastOnce, "dirty");
    sim.transmit();
    let events = sim.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Message(_))),
        "the acknowledged message is handed over: {events:?}"
    );
}

fn failed_op_keeps_queue(fault: Fault, prepare: impl FnOnce(&mut Sim<FaultyStore<MemoryStore>>)) {
    let mut sim = faulty();
    connect(&mut sim, false);
    prepare(&mut sim);
    assert!(
        store_failed(&sim.events()),
        "{fault:?} reported and the connection closed"
    );
    sim.session.store_mut().failing.clear();
    connect(&mut sim, true);
}

#[test]
fn a_failed_assign_sends_no_publish() {
    failed_op_keeps_queue(Fault::Assign, |sim| {
        publish(sim, QoS::AtLeastOnce, "a");
        sim.session.store_mut().failing.push(Fault::Assign);
        assert!(sim.transmit().is_empty());
        assert_eq!(sim.session.inflight_messages(), 0);
        assert_eq!(sim.session.packet_ids_in_use(), 0, "the id is given back");
    });
}

#[test]
fn a_failed_remove_keeps_the_message_for_the_next_connection() {
    let mut sim = faulty();
    connect(&mut sim, false);
    publish(&mut sim, QoS::AtLeastOnce, "a");
    let publish = only_publish(sim.transmit());
    sim.session.store_mut().failing.push(Fault::Remove);
    sim.deliver(haka_codec::PubAck::new(publish.packet_id().unwrap()));
    let events = sim.events();
    assert!(store_failed(&events));
    assert!(completed(&events).is_empty());
    sim.session.store_mut().failing.clear();
    let resent = connect(&mut sim, true);
    assert!(matches!(&resent[..], [Packet::Publish(p)] if p.dup()));
}

#[test]
fn a_failed_inbound_insert_neither_hands_over_nor_acknowledges() {
    let mut sim = faulty();
    connect(&mut sim, false);
    sim.session.store_mut().failing.push(Fault::InsertInbound);
    sim.deliver(Publish::new(
        topic("in"),
        Delivery::ExactlyOnce {
            packet_id: pid(8),
            dup: false,
        },
        Bytes::from_static(b"x"),
    ));
    let events = sim.events();
    assert!(store_failed(&events));
    assert!(!events.iter().any(|e| matches!(e, Event::Message(_))));
    assert!(sim.transmit().is_empty());
}

#[test]
fn a_failed_inbound_clear_closes_the_connection() {
    let mut sim = faulty();
    connect(&mut sim, false);
    sim.deliver(Publish::new(
        topic("in"),
        Delivery::ExactlyOnce {
            packet_id: pid(8),
            dup: false,
        },
        Bytes::from_static(b"x"),
    ));
    sim.events();
    sim.lose_connection();
    sim.events();
    sim.session.store_mut().failing.push(Fault::ClearInbound);
    sim.connect();
    sim.transmit();
    sim.deliver(haka_codec::ConnAck::accepted(false));
    assert!(store_failed(&sim.events()));
}

/// Offline, a failing commit is reported once, not on every poll: a driver polling until
/// quiet does not spin.
#[test]
fn a_failed_commit_offline_is_reported_once() {
    let mut sim = faulty();
    sim.session.store_mut().failing.push(Fault::Commit);
    publish(&mut sim, QoS::AtLeastOnce, "offline");
    assert!(sim.transmit().is_empty());
    let events = sim.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(events[0], Event::StoreFailed(_)));
    for _ in 0..3 {
        assert!(sim.transmit().is_empty());
        assert!(sim.events().is_empty(), "reported once");
    }
    // A new change retries.
    sim.session.store_mut().failing.clear();
    publish(&mut sim, QoS::AtLeastOnce, "more");
    sim.transmit();
    assert!(sim.events().is_empty());
    assert!(sim.session.commit().is_ok());
}
