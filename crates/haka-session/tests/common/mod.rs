//! Helpers shared by the session's tests.
#![allow(dead_code)] // each test file uses its own subset
#![allow(unreachable_pub)] // shared by the test files through `mod common`, not a public API
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use haka_codec::{ConnAck, MqttString, Packet, PacketId, Publish, QoS, TopicName};
use haka_session::{Config, Event, MemoryStore, MessageId, Session, Store};
use haka_testkit::Sim;

pub fn config() -> Config {
    Config::new(MqttString::new("test-client").unwrap()).clean_session(false)
}

pub fn sim() -> Sim<MemoryStore> {
    sim_with(config())
}

pub fn sim_with(config: Config) -> Sim<MemoryStore> {
    Sim::new(Session::new(config, MemoryStore::new()).unwrap())
}

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

pub fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

/// Connects and answers CONNACK; returns what the session sent behind CONNECT.
pub fn connect<S: Store>(sim: &mut Sim<S>, session_present: bool) -> Vec<Packet> {
    sim.connect();
    let mut sent = sim.transmit();
    assert!(
        matches!(sent.first(), Some(Packet::Connect(_))),
        "CONNECT first, got {sent:?}"
    );
    sent.remove(0);
    sim.deliver(ConnAck::accepted(session_present));
    let events = sim.events();
    assert!(
        matches!(events.first(), Some(Event::Connected { session_present: p }) if *p == session_present),
        "expected Connected, got {events:?}"
    );
    sent.extend(sim.transmit());
    sent
}

pub fn publish<S: Store>(sim: &mut Sim<S>, qos: QoS, payload: &str) -> MessageId {
    sim.session
        .publish(topic("t"), qos, false, payload.as_bytes().to_vec())
        .unwrap()
}

/// The one PUBLISH in `packets`.
pub fn only_publish(packets: Vec<Packet>) -> Publish {
    match <[Packet; 1]>::try_from(packets) {
        Ok([Packet::Publish(publish)]) => publish,
        Ok(other) => panic!("expected one PUBLISH, got {other:?}"),
        Err(other) => panic!("expected one PUBLISH, got {other:?}"),
    }
}

pub fn completed(events: &[Event]) -> Vec<MessageId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PublishCompleted { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}
