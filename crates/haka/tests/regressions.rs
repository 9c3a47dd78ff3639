//! Regression tests of defects the interoperability tests found: a message dropped without
//! acknowledgement blocked every later acknowledgement and never came again, and a burst of
//! QoS 2 messages beyond mosquitto's in-flight quota was acknowledged and dropped; and of one
//! `haka bench` found: a window acknowledged at once still counted against the queue limit
//! when the application published the next one.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener},
    num::NonZeroU16,
    thread::JoinHandle,
};

use bytes::BytesMut;
use common::*;
use haka::{Client, Event, QoS};
use haka_codec::Codec;
use haka_testkit::{Broker, FaultProxy, Mosquitto};

/// With manual acknowledgement, [`haka::Message::ack`] promises: "A QoS 1 or 2 message
/// dropped without `ack` is delivered again by the broker on the next connection." For QoS
/// 2 the broker does deliver it again (PUBLISH with DUP), but the session still holds the
/// packet identifier as `Qos2::Delivered` from the earlier connection, so it neither hands
/// the message over again nor sends its PUBREC: the message is stuck until the process
/// ends, and since acknowledgements go out in order, every later QoS 1 and 2 message's
/// acknowledgement waits behind it, until the broker's in-flight window is full and
/// delivery stops.
#[tokio::test]
async fn unacknowledged_qos2_message_comes_again_after_reconnect() {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    let url = format!("mqtt://{}", proxy.addr());
    let subscriber_options = options(&url, "subscriber")
        .clean_session(false)
        .manual_ack(true);
    let (subscriber, mut messages) = Client::start(subscriber_options).await.unwrap();
    subscriber
        .subscribe("work", QoS::ExactlyOnce)
        .await
        .unwrap();
    let (publisher, _) = Client::start(options(&broker.url(), "publisher"))
        .await
        .unwrap();
    let handle = publisher
        .publish("work", QoS::ExactlyOnce, false, "job")
        .await
        .unwrap();
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    let dropped = next(&mut messages).await;
    assert_eq!(dropped.qos, QoS::ExactlyOnce);
    drop(dropped); // never acknowledged

    let mut events = subscriber.events();
    assert_eq!(proxy.cut_all(), 1);
    wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    let mut again = next(&mut messages).await;
    assert_eq!(
        (again.topic.as_str(), again.qos, &again.payload[..]),
        ("work", QoS::ExactlyOnce, &b"job"[..])
    );
    again.ack();
}

/// A burst of QoS 2 messages — here 60 published while offline, sent on connection — is
/// not lost. mosquitto 2.0 applies its `max_inflight_messages` (20 by default) to the QoS 2
/// messages it has received and not seen PUBREL for; past it, it answers PUBLISH with
/// PUBREC (reason 0x97, quota exceeded, which MQTT 3.1.1 cannot carry) and drops the
/// message, and the client, seeing an ordinary PUBREC, completes it. With the client's
/// in-flight window at 100 (the default until it was lowered to 20) this test received 20
/// of the 60 messages, every handle having completed `Ok`; with a window of 21, 59.
#[tokio::test]
async fn qos2_burst_beyond_the_brokers_inflight_limit_is_not_lost() {
    let broker = Mosquitto::builder().start().unwrap();
    let (subscriber, mut messages) = Client::start(options(&broker.url(), "subscriber"))
        .await
        .unwrap();
    subscriber
        .subscribe("burst", QoS::ExactlyOnce)
        .await
        .unwrap();

    let proxy = FaultProxy::start(broker.addr()).unwrap();
    proxy.refuse(true);
    let url = format!("mqtt://{}", proxy.addr());
    let (publisher, _) = Client::start(options(&url, "publisher")).await.unwrap();
    const COUNT: u32 = 60;
    let mut handles = Vec::new();
    for n in 0..COUNT {
        handles.push(
            publisher
                .publish("burst", QoS::ExactlyOnce, false, n.to_string())
                .await
                .unwrap(),
        );
    }
    proxy.refuse(false);
    for handle in handles {
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    }
    let handle = publisher
        .publish("burst", QoS::ExactlyOnce, false, "end")
        .await
        .unwrap();
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    let mut received = Vec::new();
    loop {
        let message = next(&mut messages).await;
        if &message.payload[..] == b"end" {
            break;
        }
        received.push(String::from_utf8(message.payload.to_vec()).unwrap());
    }
    let expected: Vec<String> = (0..COUNT).map(|n| n.to_string()).collect();
    assert_eq!(
        received,
        expected,
        "quota-exceeded PUBRECs in the broker's log: {}",
        broker
            .log()
            .lines()
            .filter(|line| line.contains("rc151"))
            .count()
    );
}

/// Serves one connection with the testkit's broker, holding its answers back until a
/// multiple of `batch` PUBLISH packets has come and then writing them all with one `write`,
/// so that the client reads a whole window of acknowledgements at once. Returns how many
/// PUBLISH packets came, once the client has closed the connection (or after [`WAIT`]
/// without a byte).
fn batching_broker(batch: usize) -> (SocketAddr, JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (mut broker, codec) = (Broker::new(), Codec::new());
        let mut buf = vec![0u8; 64 * 1024];
        // Ends with the connection: the client's DISCONNECT and close, or the read timeout.
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            broker.handle_bytes(&buf[..n]).unwrap();
            if broker.publishes_seen() % batch == 0 {
                let mut out = BytesMut::new();
                for packet in broker.take_outbox() {
                    codec.encode(&packet, &mut out).unwrap();
                }
                stream.write_all(&out).unwrap();
            }
        }
        broker.publishes_seen()
    });
    (addr, server)
}

/// A whole window acknowledged in one read frees the queue before the application hears of
/// it. The driver completed each publish and only then stored the session's new queue count,
/// which `publish` checks the queue limits against: an application on another worker thread
/// (or one running while the driver yielded) published the next window against the count
/// of the one just acknowledged, and with the queue limit a little above the window, as
/// `haka bench` sets it, `publish` refused with a full queue (here after 16 messages, in
/// about one round in a few hundred; every run of 2,000 rounds failed before the fix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_acknowledged_at_once_frees_the_queue_at_once() {
    const WINDOW: u16 = 50;
    const ROUNDS: u16 = 2000;
    let (addr, server) = batching_broker(usize::from(WINDOW));
    let options = options(&format!("mqtt://{addr}"), "window")
        .max_inflight(NonZeroU16::new(WINDOW).unwrap())
        .queue_limits(usize::from(WINDOW) + 16, usize::MAX);
    let (client, _) = Client::start(options).await.unwrap();
    for round in 0..ROUNDS {
        let mut handles = Vec::new();
        for n in 0..WINDOW {
            let published = client
                .publish(
                    "w",
                    QoS::AtLeastOnce,
                    false,
                    [round.to_be_bytes(), n.to_be_bytes()].concat(),
                )
                .await;
            handles.push(published.unwrap_or_else(|error| {
                panic!("round {round}, message {n}: {error}");
            }));
        }
        for handle in handles {
            tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
        }
    }
    client.disconnect().await.unwrap();
    assert_eq!(
        server.join().unwrap(),
        usize::from(ROUNDS) * usize::from(WINDOW)
    );
}
