//! CONNECT/CONNACK, graceful disconnect, and what every protocol violation does: end the
//! connection with a typed reason and leave the queue intact.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use common::*;
use haka_codec::{
    ConnAck, ConnectReturnCode, Packet, PacketType, PubAck, PubComp, PubRec, QoS, SubAck,
    SubscribeReturnCode, Subscription, TopicFilter, UnsubAck,
};
use haka_session::{ConnectionState, DisconnectReason, Event, ProtocolError, SessionError};

fn disconnect_reason(events: Vec<Event>) -> DisconnectReason {
    events
        .into_iter()
        .find_map(|e| match e {
            Event::Disconnected { reason } => Some(reason),
            _ => None,
        })
        .expect("a Disconnected event")
}

/// Packets queued before CONNACK go out right behind CONNECT.
#[test]
fn packets_are_pipelined_behind_connect() {
    let mut sim = sim();
    publish(&mut sim, QoS::AtLeastOnce, "early");
    sim.session
        .subscribe(vec![Subscription::new(
            TopicFilter::new("a/#").unwrap(),
            QoS::AtLeastOnce,
        )])
        .unwrap();
    sim.connect();
    let sent = sim.transmit();
    assert!(
        matches!(
            sent[..],
            [Packet::Connect(_), Packet::Subscribe(_), Packet::Publish(_)]
        ),
        "{sent:?}"
    );
    assert_eq!(sim.session.state(), ConnectionState::Connecting);
}

#[test]
fn connect_carries_the_configured_options() {
    let will = haka_codec::LastWill::new(
        topic("status"),
        haka_codec::BinaryData::new("gone").unwrap(),
        QoS::AtLeastOnce,
    );
    let login = haka_codec::Login::new(
        haka_codec::MqttString::new("user").unwrap(),
        Some(haka_codec::Password::new("pw").unwrap()),
    );
    let mut sim = sim_with(
        config()
            .keep_alive(std::time::Duration::from_secs(17))
            .will(Some(will.clone()))
            .login(login.clone()),
    );
    sim.connect();
    let [Packet::Connect(connect)] = &sim.transmit()[..] else {
        panic!()
    };
    assert_eq!(connect.client_id, "test-client");
    assert!(!connect.clean_session);
    assert_eq!(connect.keep_alive, 17);
    assert_eq!(connect.will, Some(will));
    assert_eq!(connect.login, Some(login));
}

#[test]
fn refusal_codes_are_distinct_errors() {
    for code in [
        ConnectReturnCode::UnacceptableProtocolVersion,
        ConnectReturnCode::IdentifierRejected,
        ConnectReturnCode::ServerUnavailable,
        ConnectReturnCode::BadUserNameOrPassword,
        ConnectReturnCode::NotAuthorized,
    ] {
        let mut sim = sim();
        let id = publish(&mut sim, QoS::AtLeastOnce, "kept");
        sim.connect();
        sim.transmit();
        sim.deliver(ConnAck::refused(code));
        match disconnect_reason(sim.events()) {
            DisconnectReason::Refused(got) => assert_eq!(got, code),
            other => panic!("{other:?}"),
        }
        assert_eq!(sim.session.state(), ConnectionState::Disconnected);
        // The message waits for the next connection.
        let resent = connect(&mut sim, false);
        assert!(
            matches!(&resent[..], [Packet::Publish(p)] if p.dup()),
            "{resent:?} {id:?}"
        );
    }
}

#[test]
fn session_present_on_a_clean_session_is_a_protocol_error() {
    let mut sim = sim_with(config().clean_session(true));
    sim.connect();
    sim.transmit();
    sim.deliver(ConnAck::accepted(true));
    assert!(matches!(
        disconnect_reason(sim.events()),
        DisconnectReason::Protocol(ProtocolError::SessionPresentOnCleanSession)
    ));
}

#[test]
fn any_packet_before_connack_is_a_protocol_error() {
    let mut sim = sim();
    sim.connect();
    sim.transmit();
    sim.deliver(Packet::PingResp);
    assert!(matches!(
        disconnect_reason(sim.events()),
        DisconnectReason::Protocol(ProtocolError::BeforeConnAck(PacketType::PingResp))
    ));
}

#[test]
fn a_second_connack_is_a_protocol_error() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.deliver(ConnAck::accepted(false));
    assert!(matches!(
        disconnect_reason(sim.events()),
        DisconnectReason::Protocol(ProtocolError::SecondConnAck)
    ));
}

#[test]
fn an_empty_client_id_needs_a_clean_session() {
    let config = haka_session::Config::new(haka_codec::MqttString::empty()).clean_session(false);
    assert!(matches!(
        haka_session::Session::new(config, haka_session::MemoryStore::new()),
        Err(SessionError::EmptyClientIdWithoutCleanSession)
    ));
}

/// With a clean session the broker forgets what it received; stored messages are resent
/// all the same, never dropped.
#[test]
fn clean_session_resends_stored_messages_rather_than_dropping_them() {
    let mut sim = sim_with(config().clean_session(true));
    connect(&mut sim, false);
    let a = publish(&mut sim, QoS::AtLeastOnce, "a");
    let b = publish(&mut sim, QoS::ExactlyOnce, "b");
    let sent = sim.transmit();
    let Packet::Publish(pb) = &sent[1] else {
        panic!()
    };
    sim.deliver(PubRec::new(pb.packet_id().unwrap()));
    sim.transmit();
    sim.lose_connection();
    sim.events();
    let resent = connect(&mut sim, false);
    assert!(
        matches!(&resent[..], [Packet::Publish(_), Packet::PubRel(_)]),
        "{resent:?}"
    );
    let Packet::Publish(pa) = &resent[0] else {
        panic!()
    };
    sim.deliver(PubAck::new(pa.packet_id().unwrap()));
    sim.deliver(PubComp::new(pb.packet_id().unwrap()));
    assert_eq!(completed(&sim.events()), [a, b]);
}

/// Graceful disconnect: what is queued goes out, then DISCONNECT; acknowledgements still
/// count until the broker closes; the end is `Requested`.
#[test]
fn disconnect_flushes_the_queue_then_sends_disconnect() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::AtLeastOnce, "last words");
    sim.session.disconnect();
    let sent = sim.transmit();
    assert!(
        matches!(&sent[..], [Packet::Publish(_), Packet::Disconnect(_)]),
        "{sent:?}"
    );
    assert_eq!(sim.session.state(), ConnectionState::Closing);
    assert!(sim.transmit().is_empty(), "nothing after DISCONNECT");
    let Packet::Publish(p) = &sent[0] else {
        panic!()
    };
    sim.deliver(PubAck::new(p.packet_id().unwrap()));
    sim.lose_connection();
    let events = sim.events();
    assert_eq!(completed(&events), [id]);
    assert!(matches!(
        disconnect_reason(events),
        DisconnectReason::Requested
    ));
}

/// Messages beyond the window stay queued (and stored) through a graceful disconnect.
#[test]
fn disconnect_keeps_messages_beyond_the_window() {
    let mut sim = sim_with(config().max_inflight(std::num::NonZeroU16::new(1).unwrap()));
    connect(&mut sim, false);
    publish(&mut sim, QoS::AtLeastOnce, "in flight");
    publish(&mut sim, QoS::AtLeastOnce, "waiting");
    sim.session.disconnect();
    let sent = sim.transmit();
    assert!(
        matches!(&sent[..], [Packet::Publish(_), Packet::Disconnect(_)]),
        "{sent:?}"
    );
    sim.lose_connection();
    sim.events();
    assert_eq!(sim.session.queued_messages(), 2);
}

fn violation_keeps_queue(packet: Packet, expected: ProtocolError) {
    let mut sim = sim();
    connect(&mut sim, false);
    publish(&mut sim, QoS::AtLeastOnce, "q1");
    publish(&mut sim, QoS::ExactlyOnce, "q2");
    sim.transmit();
    sim.deliver(packet);
    match disconnect_reason(sim.events()) {
        DisconnectReason::Protocol(got) => assert_eq!(got, expected),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.session.state(), ConnectionState::Disconnected);
    assert_eq!(sim.session.queued_messages(), 2, "queue intact");
    let resent = connect(&mut sim, true);
    assert_eq!(resent.len(), 2, "both resent: {resent:?}");
}

#[test]
fn puback_for_a_qos2_message_is_a_protocol_error() {
    // Message 2 (QoS 2) holds packet id 2.
    violation_keeps_queue(
        PubAck::new(pid(2)).into(),
        ProtocolError::WrongAck {
            packet: PacketType::PubAck,
            message: haka_session::MessageId::new(2),
            qos: 2,
        },
    );
}

#[test]
fn pubrec_for_a_qos1_message_is_a_protocol_error() {
    violation_keeps_queue(
        PubRec::new(pid(1)).into(),
        ProtocolError::WrongAck {
            packet: PacketType::PubRec,
            message: haka_session::MessageId::new(1),
            qos: 1,
        },
    );
}

#[test]
fn pubcomp_before_pubrec_is_a_protocol_error() {
    violation_keeps_queue(
        PubComp::new(pid(2)).into(),
        ProtocolError::WrongAck {
            packet: PacketType::PubComp,
            message: haka_session::MessageId::new(2),
            qos: 2,
        },
    );
}

#[test]
fn ack_for_an_unknown_packet_id_is_a_protocol_error() {
    violation_keeps_queue(
        PubAck::new(pid(999)).into(),
        ProtocolError::UnknownPacketId {
            packet: PacketType::PubAck,
            packet_id: 999,
        },
    );
    violation_keeps_queue(
        UnsubAck::new(pid(3)).into(),
        ProtocolError::UnknownPacketId {
            packet: PacketType::UnsubAck,
            packet_id: 3,
        },
    );
}

#[test]
fn client_packets_from_the_broker_are_protocol_errors() {
    violation_keeps_queue(
        Packet::PingReq,
        ProtocolError::ClientPacket(PacketType::PingReq),
    );
    violation_keeps_queue(
        haka_codec::Disconnect::new().into(),
        ProtocolError::ClientPacket(PacketType::Disconnect),
    );
}

#[test]
fn suback_with_the_wrong_number_of_codes_is_a_protocol_error() {
    let mut sim = sim();
    connect(&mut sim, false);
    sim.session
        .subscribe(vec![
            Subscription::new(TopicFilter::new("a").unwrap(), QoS::AtMostOnce),
            Subscription::new(TopicFilter::new("b").unwrap(), QoS::AtMostOnce),
        ])
        .unwrap();
    let [Packet::Subscribe(subscribe)] = &sim.transmit()[..] else {
        panic!()
    };
    sim.deliver(
        SubAck::new(
            subscribe.packet_id,
            vec![SubscribeReturnCode::Success(QoS::AtMostOnce)],
        )
        .unwrap(),
    );
    assert!(matches!(
        disconnect_reason(sim.events()),
        DisconnectReason::Protocol(ProtocolError::SubAckCount {
            expected: 2,
            got: 1
        })
    ));
    // The request is sent again on the next connection.
    let resent = connect(&mut sim, true);
    assert!(matches!(&resent[..], [Packet::Subscribe(s)] if s.packet_id == subscribe.packet_id));
}

#[test]
fn undecodable_bytes_end_the_connection_with_a_decode_error() {
    let mut sim = sim();
    connect(&mut sim, false);
    publish(&mut sim, QoS::AtLeastOnce, "kept");
    sim.transmit();
    // PUBACK with a remaining length of 3: malformed.
    sim.deliver_bytes(&[0x40, 0x03, 0x00, 0x01, 0x00]);
    assert!(matches!(
        disconnect_reason(sim.events()),
        DisconnectReason::Decode(_)
    ));
    assert_eq!(sim.session.queued_messages(), 1);
}

/// A packet split across reads waits for its end; the original spun forever on this.
#[test]
fn a_packet_split_across_reads_waits_for_the_rest() {
    let mut sim = sim();
    connect(&mut sim, false);
    let id = publish(&mut sim, QoS::AtLeastOnce, "split");
    let publish = only_publish(sim.transmit());
    let id_bytes = publish.packet_id().unwrap().get().to_be_bytes();
    sim.deliver_bytes(&[0x40]);
    sim.deliver_bytes(&[0x02, id_bytes[0]]);
    assert!(sim.events().is_empty());
    sim.deliver_bytes(&[id_bytes[1]]);
    assert_eq!(completed(&sim.events()), [id]);
}

/// Subscribe and unsubscribe results, per filter.
#[test]
fn subscribe_and_unsubscribe_report_their_results() {
    let mut sim = sim();
    connect(&mut sim, false);
    let sub = sim
        .session
        .subscribe(vec![
            Subscription::new(TopicFilter::new("a").unwrap(), QoS::ExactlyOnce),
            Subscription::new(TopicFilter::new("forbidden").unwrap(), QoS::AtMostOnce),
        ])
        .unwrap();
    let unsub = sim
        .session
        .unsubscribe(vec![TopicFilter::new("a").unwrap()])
        .unwrap();
    let sent = sim.transmit();
    let (Packet::Subscribe(s), Packet::Unsubscribe(u)) = (&sent[0], &sent[1]) else {
        panic!()
    };
    let codes = vec![
        SubscribeReturnCode::Success(QoS::AtLeastOnce),
        SubscribeReturnCode::Failure,
    ];
    sim.deliver(SubAck::new(s.packet_id, codes.clone()).unwrap());
    sim.deliver(UnsubAck::new(u.packet_id));
    let events = sim.events();
    assert!(
        matches!(&events[0], Event::Subscribed { request, results } if *request == sub && *results == codes)
    );
    assert!(matches!(&events[1], Event::Unsubscribed { request } if *request == unsub));
    assert_eq!(sim.session.packet_ids_in_use(), 0, "request ids released");
    assert!(matches!(
        sim.session.subscribe(vec![]),
        Err(SessionError::NoTopicFilters)
    ));
}

/// `disconnect` before CONNACK waits for it: DISCONNECT goes out once connected.
#[test]
fn disconnect_before_connack_waits_for_it() {
    let mut sim = sim();
    sim.connect();
    sim.session.disconnect();
    let sent = sim.transmit();
    assert!(matches!(&sent[..], [Packet::Connect(_)]), "{sent:?}");
    sim.deliver(ConnAck::accepted(false));
    assert!(matches!(&sim.transmit()[..], [Packet::Disconnect(_)]));
    sim.lose_connection();
    let events = sim.events();
    assert!(matches!(&events[0], Event::Connected { .. }));
    assert!(matches!(
        disconnect_reason(events),
        DisconnectReason::Requested
    ));
}

/// A broker that never closes after DISCONNECT does not hold the session forever.
#[test]
fn the_wait_for_the_broker_to_close_is_bounded() {
    let mut sim = sim_with(config().keep_alive(std::time::Duration::ZERO));
    connect(&mut sim, false);
    sim.session.disconnect();
    sim.transmit();
    assert_eq!(sim.session.state(), ConnectionState::Closing);
    assert_eq!(
        sim.advance_to_timeout(),
        Some(haka_session::DEFAULT_CONNACK_TIMEOUT)
    );
    assert!(matches!(
        disconnect_reason(sim.events()),
        DisconnectReason::Requested
    ));
}
