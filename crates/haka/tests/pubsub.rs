//! The client against a real mosquitto: QoS 0/1/2 both ways, retained messages, will,
//! credentials, offline publishing, persistent sessions, manual acknowledgement.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use std::time::Duration;

use common::*;
use haka::{
    Client, ClientError, Event, PublishHandle, QoS, StoreOptions, SubscribeReturnCode, TopicName,
};
use haka_session::{DisconnectReason, Durability};
use haka_testkit::{FaultProxy, Mosquitto};

#[tokio::test]
async fn qos_0_1_2_publish_and_subscribe() {
    let broker = Mosquitto::builder().start().unwrap();
    let (subscriber, mut messages) = Client::start(options(&broker.url(), "sub")).await.unwrap();
    for (filter, qos) in [
        ("q/0", QoS::AtMostOnce),
        ("q/1", QoS::AtLeastOnce),
        ("q/2", QoS::ExactlyOnce),
    ] {
        assert_eq!(
            subscriber.subscribe(filter, qos).await.unwrap(),
            SubscribeReturnCode::Success(qos)
        );
    }
    let (publisher, _) = Client::start(options(&broker.url(), "pub")).await.unwrap();
    for (topic, qos) in [
        ("q/0", QoS::AtMostOnce),
        ("q/1", QoS::AtLeastOnce),
        ("q/2", QoS::ExactlyOnce),
    ] {
        let handle = publisher
            .publish(topic, qos, false, format!("at {qos:?}"))
            .await
            .unwrap();
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
        let message = next(&mut messages).await;
        assert_eq!(message.topic.as_str(), topic);
        assert_eq!(message.qos, qos);
        assert_eq!(&message.payload[..], format!("at {qos:?}").as_bytes());
    }
    publisher.disconnect().await.unwrap();
    subscriber.disconnect().await.unwrap();
}

#[tokio::test]
async fn many_messages_arrive_in_order() {
    let broker = Mosquitto::builder().start().unwrap();
    let (subscriber, mut messages) = Client::start(options(&broker.url(), "sub")).await.unwrap();
    subscriber
        .subscribe("stream", QoS::AtLeastOnce)
        .await
        .unwrap();
    // The subscriber reads as the messages come, as an application does: unread messages
    // are unacknowledged, and the broker queues only so many for a client.
    let reader = tokio::spawn(async move {
        for n in 0..2_000u32 {
            assert_eq!(
                &next(&mut messages).await.payload[..],
                n.to_string().as_bytes()
            );
        }
    });
    let (publisher, _) = Client::start(options(&broker.url(), "pub")).await.unwrap();
    // One topic name for every message, checked once.
    let topic = TopicName::new("stream").unwrap();
    let mut handles = Vec::new();
    for n in 0..2_000u32 {
        handles.push(
            publisher
                .publish(&topic, QoS::AtLeastOnce, false, n.to_string())
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    }
    tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
}

/// The subscriber's driver polled by the task that takes its messages (`Client::open`), as an
/// application that wants each message without a task switch runs it: every message arrives,
/// in order, and `disconnect` ends the driver.
#[tokio::test]
async fn a_driver_run_by_the_receiving_task() {
    let broker = Mosquitto::builder().start().unwrap();
    let (subscriber, mut messages, mut driver) =
        Client::open(options(&broker.url(), "sub")).await.unwrap();
    let (taken, mut received) = tokio::sync::mpsc::unbounded_channel();
    let receiving = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                () = &mut driver => break,
                Some(message) = messages.recv() => {
                    let _ = taken.send(message.payload);
                }
            }
        }
    });
    subscriber
        .subscribe("driven", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (publisher, _) = Client::start(options(&broker.url(), "pub")).await.unwrap();
    for n in 0..200u32 {
        let _handle = publisher
            .publish("driven", QoS::AtLeastOnce, false, n.to_string())
            .await
            .unwrap();
    }
    for n in 0..200u32 {
        let payload = tokio::time::timeout(WAIT, received.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&payload[..], n.to_string().as_bytes());
    }
    publisher.disconnect().await.unwrap();
    subscriber.disconnect().await.unwrap();
    // The driver ended with the client: the task is done.
    tokio::time::timeout(WAIT, receiving)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let broker = Mosquitto::builder().start().unwrap();
    let (publisher, _) = Client::start(options(&broker.url(), "pub")).await.unwrap();
    publisher
        .publish("status/door", QoS::AtLeastOnce, true, "open")
        .await
        .unwrap()
        .await
        .unwrap();
    let (subscriber, mut messages) = Client::start(options(&broker.url(), "sub")).await.unwrap();
    subscriber
        .subscribe("status/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let message = next(&mut messages).await;
    assert!(message.retain);
    assert_eq!(&message.payload[..], b"open");
}

#[tokio::test]
async fn will_is_published_on_abrupt_loss() {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    let (watcher, mut messages) = Client::start(options(&broker.url(), "watcher"))
        .await
        .unwrap();
    watcher
        .subscribe("clients/+/status", QoS::AtLeastOnce)
        .await
        .unwrap();

    let url = format!("mqtt://{}", proxy.addr());
    let dying = options(&url, "dying")
        .will("clients/dying/status", "gone", QoS::AtLeastOnce, false)
        .unwrap()
        .reconnect(false, Default::default());
    let (client, _) = Client::start(dying).await.unwrap();
    // Connected once a round trip went through.
    client.subscribe("nothing", QoS::AtMostOnce).await.unwrap();
    proxy.cut_all();
    let will = next(&mut messages).await;
    assert_eq!(will.topic.as_str(), "clients/dying/status");
    assert_eq!(&will.payload[..], b"gone");
}

#[tokio::test]
async fn will_is_not_published_on_graceful_disconnect() {
    let broker = Mosquitto::builder().start().unwrap();
    let (watcher, mut messages) = Client::start(options(&broker.url(), "watcher"))
        .await
        .unwrap();
    watcher
        .subscribe("clients/+/status", QoS::AtLeastOnce)
        .await
        .unwrap();
    let polite = options(&broker.url(), "polite")
        .will("clients/polite/status", "gone", QoS::AtLeastOnce, false)
        .unwrap();
    let (client, _) = Client::start(polite).await.unwrap();
    client.subscribe("nothing", QoS::AtMostOnce).await.unwrap();
    client.disconnect().await.unwrap();
    // A marker published after the disconnect arrives, and no will before it.
    watcher
        .publish("clients/marker/status", QoS::AtLeastOnce, false, "marker")
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(&next(&mut messages).await.payload[..], b"marker");
}

#[tokio::test]
async fn credentials_are_accepted_and_refused() {
    let broker = Mosquitto::builder()
        .allow_anonymous(false)
        .password("alice", "right")
        .start()
        .unwrap();
    let good = options(&broker.url(), "alice")
        .credentials("alice", "right")
        .unwrap();
    let (client, _) = Client::start(good).await.unwrap();
    client.subscribe("t", QoS::AtMostOnce).await.unwrap();
    client.disconnect().await.unwrap();

    let bad = options(&broker.url(), "mallory")
        .credentials("alice", "wrong")
        .unwrap();
    let (client, _) = Client::start(bad).await.unwrap();
    let mut events = client.events();
    let event = wait_for(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let Event::Disconnected { reason } = event else {
        unreachable!()
    };
    assert!(
        matches!(*reason, DisconnectReason::Refused(code) if matches!(code,
            haka_codec::ConnectReturnCode::BadUserNameOrPassword | haka_codec::ConnectReturnCode::NotAuthorized)),
        "{reason:?}"
    );
    // Debug output never shows the password.
    let debug = format!(
        "{:?}",
        options(&broker.url(), "x")
            .credentials("alice", "hunter2")
            .unwrap()
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}

/// A mosquitto, a proxy in front of it that refuses connections for now, and a subscriber
/// (connected directly) to `topic` at QoS 1.
async fn broker_behind_refusing_proxy(
    topic: &str,
) -> (Mosquitto, FaultProxy, Client, haka::Messages) {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    proxy.refuse(true);
    let (subscriber, messages) = Client::start(options(&broker.url(), "sub")).await.unwrap();
    subscriber.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    (broker, proxy, subscriber, messages)
}

/// Publishing while disconnected works: the message waits in the store for the next
/// connection.
#[tokio::test]
async fn publishing_while_disconnected_waits_for_the_connection() {
    let (_broker, proxy, _subscriber, mut messages) = broker_behind_refusing_proxy("offline").await;

    let url = format!("mqtt://{}", proxy.addr());
    let (publisher, _) = Client::start(options(&url, "pub")).await.unwrap();
    let mut handles = Vec::new();
    for n in 0..10 {
        handles.push(
            publisher
                .publish("offline", QoS::AtLeastOnce, false, format!("{n}"))
                .await
                .unwrap(),
        );
    }
    // Nothing can complete while the proxy refuses.
    let mut events = publisher.events();
    wait_for(
        &mut events,
        |e| matches!(e, Event::Reconnecting { attempt, .. } if *attempt >= 2),
    )
    .await;
    proxy.refuse(false);
    for handle in handles {
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    }
    for n in 0..10 {
        assert_eq!(
            &next(&mut messages).await.payload[..],
            n.to_string().as_bytes()
        );
    }
}

/// Publishes the numbers of `range` to `topic` at QoS 1, each awaited until stored (bounded);
/// their handles.
async fn publish_stored(
    publisher: &Client,
    topic: &str,
    range: std::ops::Range<u32>,
) -> Vec<PublishHandle> {
    let mut handles = Vec::new();
    for n in range {
        let stored = publisher.publish(topic, QoS::AtLeastOnce, false, n.to_string());
        handles.push(tokio::time::timeout(WAIT, stored).await.unwrap().unwrap());
    }
    handles
}

/// With a durable store, `publish` resolves once its message is committed, whether the
/// client is connected or not: messages published while the broker is unreachable are
/// stored (and on disk for a later process) before the connection comes, then all are
/// delivered, and so are those published on the connection.
#[tokio::test]
async fn durable_publishing_is_stored_offline_and_online() {
    let (_broker, proxy, subscriber, mut messages) = broker_behind_refusing_proxy("durable").await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://{}", proxy.addr());
    let durable = options(&url, "pub").store(StoreOptions::Directory {
        path: dir.path().to_owned(),
        durability: Durability::Flush,
    });
    let (publisher, _) = Client::start(durable).await.unwrap();
    let store_bytes = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .sum::<u64>()
    };
    let before = store_bytes();
    // Offline: each resolves once stored, with no connection to carry it.
    let mut handles = publish_stored(&publisher, "durable", 0..10).await;
    // Each record holds at least the topic and the payload.
    assert!(
        store_bytes() >= before + 10 * ("durable".len() as u64 + 1),
        "the ten messages are in the store's files"
    );

    proxy.refuse(false);
    handles.extend(publish_stored(&publisher, "durable", 10..500).await);
    for handle in handles {
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    }
    for n in 0..500 {
        assert_eq!(
            &next(&mut messages).await.payload[..],
            n.to_string().as_bytes()
        );
    }
    publisher.disconnect().await.unwrap();
    subscriber.disconnect().await.unwrap();
}

/// A persistent session: QoS 1 and 2 messages published while the subscriber is away reach
/// it when it comes back.
#[tokio::test]
async fn persistent_session_receives_what_was_published_while_away() {
    let broker = Mosquitto::builder().start().unwrap();
    let sub_options = || options(&broker.url(), "away").clean_session(false);
    let (subscriber, _) = Client::start(sub_options()).await.unwrap();
    subscriber
        .subscribe("news/#", QoS::ExactlyOnce)
        .await
        .unwrap();
    subscriber.disconnect().await.unwrap();

    let (publisher, _) = Client::start(options(&broker.url(), "pub")).await.unwrap();
    for n in 0..20 {
        let qos = if n % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        publisher
            .publish("news/today", qos, false, format!("{n}"))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (subscriber, mut messages) = Client::start(sub_options()).await.unwrap();
    for n in 0..20 {
        assert_eq!(
            &next(&mut messages).await.payload[..],
            n.to_string().as_bytes()
        );
    }
    subscriber.disconnect().await.unwrap();
}

/// Manual acknowledgement: an unacknowledged QoS 1 message comes again on the next
/// connection; an acknowledged one does not.
#[tokio::test]
async fn manual_ack_unacknowledged_messages_come_again() {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    let url = format!("mqtt://{}", proxy.addr());
    let sub_options = options(&url, "manual")
        .clean_session(false)
        .manual_ack(true);
    let (subscriber, mut messages) = Client::start(sub_options).await.unwrap();
    subscriber
        .subscribe("work", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (publisher, _) = Client::start(options(&broker.url(), "pub")).await.unwrap();
    publisher
        .publish("work", QoS::AtLeastOnce, false, "acked")
        .await
        .unwrap()
        .await
        .unwrap();
    publisher
        .publish("work", QoS::AtLeastOnce, false, "dropped")
        .await
        .unwrap()
        .await
        .unwrap();
    let mut first = next(&mut messages).await;
    assert_eq!(&first.payload[..], b"acked");
    first.ack();
    let second = next(&mut messages).await;
    assert_eq!(&second.payload[..], b"dropped");
    drop(second); // never acknowledged
                  // The connection breaks: the broker delivers again what was not acknowledged.
                  // ("acked" may come again too if its PUBACK was still on its way: QoS 1 is at least
                  // once.)
    proxy.cut_all();
    loop {
        let again = next(&mut messages).await;
        if &again.payload[..] == b"dropped" {
            assert!(again.dup);
            break;
        }
        assert_eq!(&again.payload[..], b"acked");
    }
}

/// `publish` refuses at once, with nothing queued, when the queue is full.
#[tokio::test]
async fn a_full_queue_refuses_publish() {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    proxy.refuse(true);
    let url = format!("mqtt://{}", proxy.addr());
    let (client, _) = Client::start(options(&url, "full").queue_limits(3, 1 << 20))
        .await
        .unwrap();
    for _ in 0..3 {
        client
            .publish("t", QoS::AtLeastOnce, false, "x")
            .await
            .unwrap();
    }
    let refused = client.publish("t", QoS::AtLeastOnce, false, "y").await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Session(haka_session::SessionError::QueueFull(
                _
            )))
        ),
        "{refused:?}"
    );
    let _ = Duration::ZERO;
}

/// With a clean session (the default) the broker forgets subscriptions at every connection:
/// the client asks for them again, so a subscriber keeps receiving after a reconnection.
#[tokio::test]
async fn subscriptions_are_renewed_after_a_reconnection_with_clean_session() {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    let url = format!("mqtt://{}", proxy.addr());
    let (subscriber, mut messages) = Client::start(options(&url, "renew")).await.unwrap();
    subscriber
        .subscribe("renewed/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    // Listening from here on: the first connection's event must not pass for the second's.
    let mut events = subscriber.events();
    assert_eq!(proxy.cut_all(), 1);
    wait_for(&mut events, |e| {
        matches!(
            e,
            Event::Connected {
                session_present: false
            }
        )
    })
    .await;
    // The renewal is a SUBSCRIBE of its own: a round trip of ours after it proves it is done.
    subscriber
        .subscribe("other", QoS::AtMostOnce)
        .await
        .unwrap();
    let (publisher, _) = Client::start(options(&broker.url(), "pub")).await.unwrap();
    publisher
        .publish("renewed/a", QoS::AtLeastOnce, false, "still here")
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(&next(&mut messages).await.payload[..], b"still here");
}

/// After `disconnect`, nothing new is taken.
#[tokio::test]
async fn commands_after_disconnect_are_refused() {
    let broker = Mosquitto::builder().start().unwrap();
    let (client, _) = Client::start(options(&broker.url(), "bye")).await.unwrap();
    client.subscribe("t", QoS::AtMostOnce).await.unwrap();
    client.disconnect().await.unwrap();
    assert!(matches!(
        client.publish("t", QoS::AtLeastOnce, false, "late").await,
        Err(ClientError::Closed)
    ));
    assert!(matches!(
        client.disconnect().await,
        Err(ClientError::Closed)
    ));
}

#[test]
fn urls_that_would_be_misread_are_refused() {
    for url in [
        "mqtt://user:pass@127.0.0.1:1883",
        "mqtt://127.0.0.1:1883/path",
        "mqtt://127.0.0.1:1883?x=1",
        "http://127.0.0.1",
        "mqtt://",
    ] {
        assert!(
            matches!(haka::ClientOptions::new(url, "c"), Err(ClientError::Url(_))),
            "{url}"
        );
    }
    let v6 = haka::ClientOptions::new("mqtts://[::1]", "c").unwrap();
    assert_eq!((v6.host(), v6.port()), ("::1", 8883));
}
