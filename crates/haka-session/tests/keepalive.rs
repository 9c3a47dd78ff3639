//! Keepalive and idle abort, in virtual time: no sleeps.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use std::time::Duration;

use common::*;
use haka_codec::{Packet, QoS};
use haka_session::{DisconnectReason, Event};

const K: Duration = Duration::from_secs(10);

fn reason(events: Vec<Event>) -> Option<DisconnectReason> {
    events.into_iter().find_map(|e| match e {
        Event::Disconnected { reason } => Some(reason),
        _ => None,
    })
}

/// PINGREQ after K seconds without sending anything.
#[test]
fn pingreq_after_keepalive_without_sending() {
    let mut sim = sim_with(config().keep_alive(K));
    connect(&mut sim, false);
    assert_eq!(sim.advance_to_timeout(), Some(K));
    assert_eq!(sim.transmit(), [Packet::PingReq]);
    sim.deliver(Packet::PingResp);
    // The next ping is K after that PINGREQ.
    assert_eq!(sim.advance_to_timeout(), Some(K));
    assert_eq!(sim.transmit(), [Packet::PingReq]);
}

/// Sending anything postpones the ping.
#[test]
fn sending_postpones_the_ping() {
    let mut sim = sim_with(config().keep_alive(K));
    connect(&mut sim, false);
    sim.advance(Duration::from_secs(6));
    assert!(sim.transmit().is_empty());
    publish(&mut sim, QoS::AtMostOnce, "x");
    sim.transmit();
    sim.deliver(Packet::PingResp); // something received: no idle abort either
    assert_eq!(sim.advance_to_timeout(), Some(K));
    assert_eq!(sim.transmit(), [Packet::PingReq]);
}

/// At most one PINGREQ outstanding; an unsolicited PINGRESP is ignored.
#[test]
fn at_most_one_pingreq_outstanding() {
    let mut sim = sim_with(config().keep_alive(K).with_idle_timeout(Some(K * 10)));
    connect(&mut sim, false);
    sim.deliver(Packet::PingResp); // unsolicited: ignored
    assert!(sim.events().is_empty());
    sim.advance(K);
    assert_eq!(sim.transmit(), [Packet::PingReq]);
    for _ in 0..5 {
        sim.advance(K);
        assert!(
            sim.transmit().is_empty(),
            "no second PINGREQ while one is outstanding"
        );
    }
    sim.deliver(Packet::PingResp);
    sim.advance(K);
    assert_eq!(sim.transmit(), [Packet::PingReq]);
}

/// Nothing received for 1.5 K: the connection is aborted.
#[test]
fn idle_abort_after_one_and_a_half_keepalive_without_receiving() {
    let mut sim = sim_with(config().keep_alive(K));
    connect(&mut sim, false);
    publish(&mut sim, QoS::AtLeastOnce, "kept");
    sim.transmit();
    let mut elapsed = Duration::ZERO;
    while reason(sim.events()).is_none() {
        elapsed += sim.advance_to_timeout().unwrap();
        sim.transmit();
        assert!(elapsed <= K * 2, "no abort after {elapsed:?}");
    }
    assert_eq!(elapsed, K * 3 / 2);
    assert_eq!(sim.session.queued_messages(), 1, "queue intact");
}

/// The idle timer also bounds the wait for CONNACK.
#[test]
fn idle_timeout_bounds_the_wait_for_connack() {
    let mut sim = sim_with(config().keep_alive(K));
    sim.connect();
    sim.transmit();
    assert_eq!(sim.advance_to_timeout(), Some(K * 3 / 2));
    assert!(matches!(
        reason(sim.events()),
        Some(DisconnectReason::ConnAckTimeout)
    ));
}

/// Keepalive 0 turns pings (and the default idle abort) off; CONNACK is still awaited with
/// a bound.
#[test]
fn keepalive_zero_disables_pings() {
    let mut sim = sim_with(config().keep_alive(Duration::ZERO));
    connect(&mut sim, false);
    assert_eq!(sim.session.poll_timeout(), None, "no timer at all");
    sim.advance(Duration::from_secs(3600));
    assert!(sim.transmit().is_empty());
    assert!(sim.events().is_empty());

    let mut sim = sim_with(config().keep_alive(Duration::ZERO));
    sim.connect();
    sim.transmit();
    assert_eq!(
        sim.advance_to_timeout(),
        Some(haka_session::DEFAULT_CONNACK_TIMEOUT)
    );
    assert!(matches!(
        reason(sim.events()),
        Some(DisconnectReason::ConnAckTimeout)
    ));
}

/// A client that only sends (QoS 0) hears nothing back: it pings after K without receiving,
/// so the PINGRESP keeps its idle abort from firing.
#[test]
fn pingreq_after_keepalive_without_receiving() {
    let mut sim = sim_with(config().keep_alive(K));
    connect(&mut sim, false);
    for _ in 0..10 {
        sim.advance(K / 4);
        publish(&mut sim, QoS::AtMostOnce, "x");
        let sent = sim.transmit();
        if sent.contains(&Packet::PingReq) {
            sim.deliver(Packet::PingResp);
        }
    }
    assert!(reason(sim.events()).is_none(), "never aborted");
}

/// A keep alive under a second is rounded up, not turned off.
#[test]
fn keepalive_under_a_second_is_rounded_up() {
    let sim = sim_with(config().keep_alive(Duration::from_millis(500)));
    assert_eq!(sim.session.config().connect_packet().keep_alive, 1);
}
