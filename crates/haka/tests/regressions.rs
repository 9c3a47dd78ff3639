//! Regression tests of defects the interoperability tests found: a message dropped without
//! acknowledgement blocked every later acknowledgement and never came again, and a burst of
//! QoS 2 messages beyond mosquitto's in-flight quota was acknowledged and dropped.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use common::*;
use haka::{Client, Event, QoS};
use haka_testkit::{FaultProxy, Mosquitto};

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
