//! Restarts on the durable store: the flows continue where the process left them.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use common::*;
use haka_codec::{Packet, PubAck, PubComp, PubRec, QoS};
use haka_session::FileStore;

/// The original dropped a sent PUBREL when the connection broke, and lost everything on a
/// restart. Here the flow after PUBREL survives a restart on the durable store.
#[test]
fn qos2_pubrel_is_resent_after_a_restart_on_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let open = || FileStore::open(dir.path(), Default::default()).unwrap();
    let mut sim = haka_testkit::Sim::new(haka_session::Session::new(config(), open()).unwrap());
    connect(&mut sim, false);
    let id_rel = publish(&mut sim, QoS::ExactlyOnce, "released");
    let id_pub = publish(&mut sim, QoS::AtLeastOnce, "published");
    let id_queued = {
        let sent = sim.transmit();
        assert_eq!(sent.len(), 2);
        let Packet::Publish(first) = &sent[0] else {
            panic!()
        };
        sim.deliver(PubRec::new(first.packet_id().unwrap()));
        sim.transmit();
        sim.session.disconnect();
        publish(&mut sim, QoS::ExactlyOnce, "queued")
    };
    sim.session.commit().unwrap();
    drop(sim); // the process ends without a word to the broker

    let mut sim = haka_testkit::Sim::new(haka_session::Session::new(config(), open()).unwrap());
    assert_eq!(sim.session.queued_messages(), 3);
    let resent = connect(&mut sim, true);
    assert!(matches!(&resent[0], Packet::PubRel(_)), "{resent:?}");
    assert!(matches!(&resent[1], Packet::Publish(p) if p.dup() && &p.payload[..] == b"published"));
    assert!(matches!(&resent[2], Packet::Publish(p) if !p.dup() && &p.payload[..] == b"queued"));
    let Packet::PubRel(rel) = &resent[0] else {
        panic!()
    };
    sim.deliver(PubComp::new(rel.packet_id));
    let Packet::Publish(p) = &resent[1] else {
        panic!()
    };
    sim.deliver(PubAck::new(p.packet_id().unwrap()));
    assert_eq!(completed(&sim.events()), [id_rel, id_pub]);
    let _ = id_queued;
}
