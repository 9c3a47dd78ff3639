//! The ten scenarios of the Eclipse Paho MQTT interoperability client test
//! (paho.mqtt.testing, `interoperability/client_test.py`), ported with our client on both
//! sides against a real mosquitto started per test.
//!
//! Where the original sleeps and then counts what arrived, these tests wait on events with a
//! bound, and prove that something did *not* arrive by ordering: a marker published after
//! it must come first.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use std::net::SocketAddr;

use common::*;
use haka::{Client, ClientError, Event, Message, Messages, QoS, SubscribeReturnCode};
use haka_codec::{Subscription, TopicFilter};
use haka_session::SessionError;
use haka_testkit::{FaultProxy, Mosquitto};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The topics of the original test.
const TOPICS: [&str; 5] = ["TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"];

/// Publishes and waits (bounded) until the broker has it: PUBACK, PUBCOMP, or written for
/// QoS 0.
async fn publish(client: &Client, topic: &str, qos: QoS, retain: bool, payload: &str) {
    let handle = client
        .publish(topic, qos, retain, payload.to_owned())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
}

/// Messages until (and without) the first one on `marker`.
async fn until_marker(messages: &mut Messages, marker: &str) -> Vec<Message> {
    let mut received = Vec::new();
    loop {
        let message = next(messages).await;
        if message.topic.as_str() == marker {
            return received;
        }
        received.push(message);
    }
}

/// Waits (bounded) for a line of the broker's log; the test must run on the multi-thread
/// runtime, since the wait blocks its thread.
fn wait_log(broker: &Mosquitto, needle: &str) {
    tokio::task::block_in_place(|| broker.wait_for_log(needle, WAIT)).unwrap();
}

fn summary(messages: &[Message]) -> Vec<(String, QoS, bool, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m.topic.as_str().to_owned(),
                m.qos,
                m.retain,
                String::from_utf8_lossy(&m.payload).into_owned(),
            )
        })
        .collect()
}

/// `test_basic`: one client subscribes, publishes at QoS 0, 1 and 2 to the same topic,
/// receives the three messages, and disconnects.
#[tokio::test]
async fn basic() {
    let broker = Mosquitto::builder().start().unwrap();
    let (client, mut messages) = Client::start(options(&broker.url(), "myclientid"))
        .await
        .unwrap();
    assert_eq!(
        client.subscribe(TOPICS[0], QoS::ExactlyOnce).await.unwrap(),
        SubscribeReturnCode::Success(QoS::ExactlyOnce)
    );
    let all = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for (n, qos) in all.into_iter().enumerate() {
        publish(&client, TOPICS[0], qos, false, &format!("qos {n}")).await;
    }
    for (n, qos) in all.into_iter().enumerate() {
        let message = next(&mut messages).await;
        assert_eq!(message.topic.as_str(), TOPICS[0]);
        assert_eq!(message.qos, qos);
        assert!(!message.retain && !message.dup);
        assert_eq!(&message.payload[..], format!("qos {n}").as_bytes());
    }
    let mut events = client.events();
    client.disconnect().await.unwrap();
    wait_for(&mut events, |e| matches!(e, Event::Stopped)).await;
    // Nothing more: the stream ends with the client.
    let end = tokio::time::timeout(WAIT, messages.recv()).await.unwrap();
    assert!(end.is_none(), "{end:?}");
}

/// `test_retained_messages`: retained messages at QoS 0, 1 and 2 reach a later "+/+"
/// subscriber, at their QoS and with the retain flag; zero-length retained messages clear
/// them, and a subscriber after that gets none.
#[tokio::test]
async fn retained_messages() {
    let broker = Mosquitto::builder().start().unwrap();
    let (publisher, _) = Client::start(options(&broker.url(), "publisher"))
        .await
        .unwrap();
    let retained = [
        (TOPICS[1], QoS::AtMostOnce, "qos 0"),
        (TOPICS[2], QoS::AtLeastOnce, "qos 1"),
        (TOPICS[3], QoS::ExactlyOnce, "qos 2"),
    ];
    for (topic, qos, payload) in retained {
        publish(&publisher, topic, qos, true, payload).await;
    }

    let (subscriber, mut messages) = Client::start(options(&broker.url(), "subscriber"))
        .await
        .unwrap();
    subscriber.subscribe("+/+", QoS::ExactlyOnce).await.unwrap();
    subscriber
        .subscribe("marker", QoS::AtLeastOnce)
        .await
        .unwrap();
    // The broker sends retained messages in its own order: compare sorted by topic.
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next(&mut messages).await);
    }
    let mut got = summary(&got);
    got.sort();
    let mut expected: Vec<_> = retained
        .iter()
        .map(|(topic, qos, payload)| ((*topic).to_owned(), *qos, true, (*payload).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(got, expected);

    // Clear them: a zero-length retained message removes the topic's retained message.
    for (topic, qos, _) in retained {
        publish(&publisher, topic, qos, true, "").await;
    }
    publish(&publisher, "marker", QoS::AtLeastOnce, false, "end").await;
    // The established subscriber gets the clearing messages as ordinary ones: retain flag 0
    // [MQTT-3.3.1-9], empty payload.
    let live = until_marker(&mut messages, "marker").await;
    let live = summary(&live);
    let expected: Vec<_> = retained
        .iter()
        .map(|(topic, qos, _)| ((*topic).to_owned(), *qos, false, String::new()))
        .collect();
    assert_eq!(live, expected);

    // A new subscriber gets no retained message: its marker comes first.
    let (late, mut late_messages) = Client::start(options(&broker.url(), "late")).await.unwrap();
    late.subscribe("+/+", QoS::ExactlyOnce).await.unwrap();
    late.subscribe("marker", QoS::AtLeastOnce).await.unwrap();
    publish(&publisher, "marker", QoS::AtLeastOnce, false, "end").await;
    let before = until_marker(&mut late_messages, "marker").await;
    assert!(before.is_empty(), "{:?}", summary(&before));
}

/// `test_zero_length_clientid`: an empty client identifier with a clean session connects
/// (the broker assigns one); with a persistent session it is refused [MQTT-3.1.3-7] — our
/// client refuses it at start, before any connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_length_clientid() {
    let broker = Mosquitto::builder().start().unwrap();
    let refused = Client::start(options(&broker.url(), "").clean_session(false)).await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Session(
                SessionError::EmptyClientIdWithoutCleanSession
            ))
        ),
        "{refused:?}"
    );

    let (client, mut messages) = Client::start(options(&broker.url(), "").clean_session(true))
        .await
        .unwrap();
    client.subscribe(TOPICS[0], QoS::AtLeastOnce).await.unwrap();
    publish(&client, TOPICS[0], QoS::AtLeastOnce, false, "anonymous").await;
    assert_eq!(&next(&mut messages).await.payload[..], b"anonymous");
    // The broker named the client itself.
    wait_log(&broker, " as auto-");
    client.disconnect().await.unwrap();
}

/// `test_offline_message_queueing`: a persistent subscriber away while QoS 0, 1 and 2
/// messages are published gets the QoS 1 and 2 ones when it comes back (QoS 0 ones only if
/// the broker queues them: mosquitto's `queue_qos0_messages` is off by default).
#[tokio::test]
async fn offline_message_queueing() {
    let broker = Mosquitto::builder().start().unwrap();
    let away = || options(&broker.url(), "myclientid").clean_session(false);
    let (subscriber, _) = Client::start(away()).await.unwrap();
    subscriber.subscribe("+/+", QoS::ExactlyOnce).await.unwrap();
    subscriber.disconnect().await.unwrap();

    let (publisher, _) = Client::start(options(&broker.url(), "publisher"))
        .await
        .unwrap();
    publish(&publisher, TOPICS[1], QoS::AtMostOnce, false, "qos 0").await;
    publish(&publisher, TOPICS[2], QoS::AtLeastOnce, false, "qos 1").await;
    publish(&publisher, TOPICS[3], QoS::ExactlyOnce, false, "qos 2").await;

    let (subscriber, mut messages) = Client::start(away()).await.unwrap();
    let mut events = subscriber.events();
    let connected = wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    assert!(
        matches!(
            connected,
            Event::Connected {
                session_present: true
            }
        ),
        "{connected:?}"
    );
    // Queued messages are sent on reconnection, before anything published after it.
    publish(&publisher, "marker/end", QoS::AtLeastOnce, false, "end").await;
    let got = summary(&until_marker(&mut messages, "marker/end").await);
    let qos1 = (
        TOPICS[2].to_owned(),
        QoS::AtLeastOnce,
        false,
        "qos 1".to_owned(),
    );
    let qos2 = (
        TOPICS[3].to_owned(),
        QoS::ExactlyOnce,
        false,
        "qos 2".to_owned(),
    );
    let qos0 = (
        TOPICS[1].to_owned(),
        QoS::AtMostOnce,
        false,
        "qos 0".to_owned(),
    );
    assert!(
        got == vec![qos1.clone(), qos2.clone()] || got == vec![qos0, qos1, qos2],
        "{got:?}"
    );
    subscriber.disconnect().await.unwrap();
}

/// `test_overlapping_subscriptions`: with "TopicA/#" at QoS 2 and "TopicA/+" at QoS 1, a
/// QoS 2 message to "TopicA/C" arrives once at QoS 2, or once per subscription (at QoS 2
/// and QoS 1), as the broker chooses [MQTT-3.3.5-1].
///
/// mosquitto before 2.1 defaults to `allow_duplicate_messages false`, and then 2.0.11 sends
/// a single copy at the QoS of the first matching subscription it finds — QoS 1 here,
/// below the maximum that [MQTT-3.3.5-1] requires. So the broker is told to send one copy
/// per subscription, which the specification allows.
#[tokio::test]
async fn overlapping_subscriptions() {
    let broker = Mosquitto::builder()
        .extra("allow_duplicate_messages true")
        .start()
        .unwrap();
    let (client, mut messages) = Client::start(options(&broker.url(), "myclientid"))
        .await
        .unwrap();
    let codes = client
        .subscribe_many(vec![
            Subscription::new(TopicFilter::new("TopicA/#").unwrap(), QoS::ExactlyOnce),
            Subscription::new(TopicFilter::new("TopicA/+").unwrap(), QoS::AtLeastOnce),
            Subscription::new(TopicFilter::new("marker").unwrap(), QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    assert_eq!(
        codes,
        [
            SubscribeReturnCode::Success(QoS::ExactlyOnce),
            SubscribeReturnCode::Success(QoS::AtLeastOnce),
            SubscribeReturnCode::Success(QoS::AtLeastOnce),
        ]
    );
    publish(
        &client,
        TOPICS[3],
        QoS::ExactlyOnce,
        false,
        "overlapping topic filters",
    )
    .await;
    publish(&client, "marker", QoS::AtLeastOnce, false, "end").await;
    let got = until_marker(&mut messages, "marker").await;
    assert!(
        got.iter().all(
            |m| m.topic.as_str() == TOPICS[3] && &m.payload[..] == b"overlapping topic filters"
        ),
        "{:?}",
        summary(&got)
    );
    let mut qos: Vec<QoS> = got.iter().map(|m| m.qos).collect();
    qos.sort_by_key(|q| *q as u8);
    assert!(
        qos == [QoS::ExactlyOnce] || qos == [QoS::AtLeastOnce, QoS::ExactlyOnce],
        "{:?}\n{}",
        summary(&got),
        broker.log()
    );
}

/// A TCP proxy that can stop forwarding without closing anything: a black hole, so that
/// only the keep alive can tell the broker the client is gone. (The testkit's
/// [`FaultProxy`] cuts connections, which the broker sees at once.)
struct StallProxy {
    addr: SocketAddr,
    stall: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl StallProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stall, stalled) = watch::channel(false);
        let accept = tokio::spawn(async move {
            // Dropped with the accept task: aborts every connection's task.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(Self::forward(client, upstream, stalled.clone()));
            }
        });
        Self {
            addr,
            stall,
            accept,
        }
    }

    async fn forward(
        mut client: TcpStream,
        upstream: SocketAddr,
        mut stalled: watch::Receiver<bool>,
    ) {
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let stall = async move { stalled.wait_for(|stalled| *stalled).await.is_ok() };
        let stalled = tokio::select! {
            _ = tokio::io::copy(&mut client_read, &mut server_write) => false,
            _ = tokio::io::copy(&mut server_read, &mut client_write) => false,
            stalled = stall => stalled,
        };
        if stalled {
            // Hold both sockets open, forward nothing, until the proxy is dropped.
            std::future::pending::<()>().await;
        }
    }

    /// From now on every connection, open or new, forwards nothing and stays open.
    fn stall(&self) {
        self.stall.send_replace(true);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `test_keepalive`: a client with a 2 s keep alive and a will goes silent without closing
/// its connection (a proxy between it and the broker stops forwarding): the broker notices
/// within 1.5 keep alive periods and publishes the will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive() {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = StallProxy::start(broker.addr()).await;
    let (watcher, mut messages) = Client::start(options(&broker.url(), "watcher"))
        .await
        .unwrap();
    watcher
        .subscribe(TOPICS[4], QoS::ExactlyOnce)
        .await
        .unwrap();

    let url = format!("mqtt://{}", proxy.addr);
    let silent = options(&url, "myclientid")
        .keep_alive(std::time::Duration::from_secs(2))
        .will(
            TOPICS[4],
            "client not disconnected",
            QoS::ExactlyOnce,
            false,
        )
        .unwrap()
        .reconnect(false, Default::default());
    let (client, _) = Client::start(silent).await.unwrap();
    client.subscribe("nothing", QoS::AtMostOnce).await.unwrap();
    // Idle, the client keeps the connection with pings.
    wait_log(&broker, "Received PINGREQ from myclientid");
    proxy.stall();
    let will = next(&mut messages).await;
    assert_eq!(will.topic.as_str(), TOPICS[4]);
    assert_eq!(&will.payload[..], b"client not disconnected");
    assert_eq!(will.qos, QoS::ExactlyOnce);
    // It was the keep alive that ended the connection, not a close.
    wait_log(&broker, "Client myclientid has exceeded timeout");
}

/// `test_redelivery_on_reconnect`: a persistent subscriber that has not acknowledged a QoS 1
/// and a QoS 2 message loses its connection; on reconnection the broker sends both again.
///
/// What our client guarantees (haka-session's manual acknowledgement): the QoS 1 message
/// is handed over again, marked DUP; the QoS 2 message is never handed over twice in the
/// same process — the redelivery is held until the application acknowledges the message it
/// already has, and that acknowledgement, given on the new connection, completes the
/// exchange with the broker (PUBREC, PUBREL, PUBCOMP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_on_reconnect() {
    let broker = Mosquitto::builder().start().unwrap();
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    let url = format!("mqtt://{}", proxy.addr());
    let subscriber_options = options(&url, "myclientid")
        .clean_session(false)
        .manual_ack(true);
    let (subscriber, mut messages) = Client::start(subscriber_options).await.unwrap();
    subscriber
        .subscribe("fromb/+", QoS::ExactlyOnce)
        .await
        .unwrap();

    let (publisher, _) = Client::start(options(&broker.url(), "publisher"))
        .await
        .unwrap();
    publish(&publisher, "fromb/qos1", QoS::AtLeastOnce, false, "qos 1").await;
    publish(&publisher, "fromb/qos2", QoS::ExactlyOnce, false, "qos 2").await;
    let first = next(&mut messages).await;
    assert_eq!(
        (first.topic.as_str(), first.qos, first.dup),
        ("fromb/qos1", QoS::AtLeastOnce, false)
    );
    let mut second = next(&mut messages).await;
    assert_eq!(
        (second.topic.as_str(), second.qos, second.dup),
        ("fromb/qos2", QoS::ExactlyOnce, false)
    );
    // Neither is acknowledged: the connection breaks.
    let mut events = subscriber.events();
    assert_eq!(proxy.cut_all(), 1);
    let connected = wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    assert!(
        matches!(
            connected,
            Event::Connected {
                session_present: true
            }
        ),
        "{connected:?}"
    );

    // The QoS 1 message comes again, as a duplicate.
    let mut again = next(&mut messages).await;
    assert_eq!(
        (
            again.topic.as_str(),
            again.qos,
            again.dup,
            &again.payload[..]
        ),
        ("fromb/qos1", QoS::AtLeastOnce, true, &b"qos 1"[..])
    );
    // The QoS 2 one reaches the broker's resend, but not the application: a marker
    // published after it comes next.
    publish(
        &publisher,
        "fromb/marker",
        QoS::AtLeastOnce,
        false,
        "marker",
    )
    .await;
    let mut marker = next(&mut messages).await;
    assert_eq!(
        marker.topic.as_str(),
        "fromb/marker",
        "QoS 2 handed over twice?"
    );
    // Acknowledging the QoS 2 message received on the first connection completes it now.
    drop(first); // its token belongs to the lost connection: the duplicate is acked instead
    again.ack();
    second.ack();
    marker.ack();
    wait_log(&broker, "Received PUBCOMP from myclientid");
    wait_log(&broker, "Received PUBACK from myclientid");

    // Nothing is owed any more: after another break, a new marker is the first message.
    assert_eq!(proxy.cut_all(), 1);
    wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    publish(&publisher, "fromb/marker", QoS::AtLeastOnce, false, "after").await;
    let mut after = next(&mut messages).await;
    assert_eq!(
        (after.topic.as_str(), &after.payload[..]),
        ("fromb/marker", &b"after"[..])
    );
    after.ack();
}

/// `test_subscribe_failure`: a subscription the broker's ACL forbids. The SUBACK says
/// Failure (0x80), or — mosquitto 2.0 grants it under MQTT 3.1.1 — the subscription
/// receives nothing: a message to the forbidden topic, which an authorized client does
/// receive, is not delivered, and a marker published after it comes first.
#[tokio::test]
async fn subscribe_failure() {
    let broker = Mosquitto::builder()
        .password("authorized", "secret")
        .acl(
            "# Anonymous clients: only these.\n\
             topic readwrite marker/#\n\
             topic readwrite test/allowed\n\
             user authorized\n\
             topic readwrite #\n",
        )
        .start()
        .unwrap();
    let (client, mut messages) = Client::start(options(&broker.url(), "myclientid"))
        .await
        .unwrap();
    let codes = client
        .subscribe_many(vec![
            Subscription::new(
                TopicFilter::new("test/nosubscribe").unwrap(),
                QoS::ExactlyOnce,
            ),
            Subscription::new(TopicFilter::new("marker/#").unwrap(), QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    assert!(
        matches!(
            codes[0],
            SubscribeReturnCode::Failure | SubscribeReturnCode::Success(_)
        ),
        "{codes:?}"
    );
    assert_eq!(codes[1], SubscribeReturnCode::Success(QoS::AtLeastOnce));

    let authorized_options = options(&broker.url(), "authorized")
        .credentials("authorized", "secret")
        .unwrap();
    let (authorized, mut authorized_messages) = Client::start(authorized_options).await.unwrap();
    assert_eq!(
        authorized
            .subscribe("test/nosubscribe", QoS::ExactlyOnce)
            .await
            .unwrap(),
        SubscribeReturnCode::Success(QoS::ExactlyOnce)
    );
    publish(
        &authorized,
        "test/nosubscribe",
        QoS::ExactlyOnce,
        false,
        "secret",
    )
    .await;
    publish(&authorized, "marker/end", QoS::AtLeastOnce, false, "end").await;
    // The message exists: the authorized subscriber has it.
    assert_eq!(
        next(&mut authorized_messages).await.topic.as_str(),
        "test/nosubscribe"
    );
    let first = next(&mut messages).await;
    assert_eq!(first.topic.as_str(), "marker/end", "{codes:?}");
}

/// `test_dollar_topics`: filters starting with a wildcard do not match topic names starting
/// with '$' [MQTT-4.7.2-1]: a "#" (and a "+/+") subscriber sees neither the broker's $SYS
/// messages nor a client's message to "$TopicA/B", which "$SYS/#" and "$TopicA/#"
/// subscribers do get.
#[tokio::test]
async fn dollar_topics() {
    let broker = Mosquitto::builder()
        .extra("sys_interval 1")
        .start()
        .unwrap();
    let (everything, mut everything_messages) =
        Client::start(options(&broker.url(), "hash")).await.unwrap();
    everything.subscribe("#", QoS::ExactlyOnce).await.unwrap();
    everything.subscribe("+/+", QoS::ExactlyOnce).await.unwrap();
    let (dollar, mut dollar_messages) = Client::start(options(&broker.url(), "dollar"))
        .await
        .unwrap();
    dollar.subscribe("$SYS/#", QoS::AtMostOnce).await.unwrap();
    dollar
        .subscribe("$TopicA/#", QoS::AtLeastOnce)
        .await
        .unwrap();

    publish(&dollar, "$TopicA/B", QoS::AtLeastOnce, false, "dollar").await;
    // A periodic $SYS message (not a retained one sent on subscription) published while
    // both subscriptions exist, and the client's '$' message, reach the '$' subscriber.
    let (mut periodic, mut client_dollar) = (false, false);
    while !(periodic && client_dollar) {
        let message = next(&mut dollar_messages).await;
        let topic = message.topic.as_str();
        assert!(topic.starts_with('$'), "{topic}");
        periodic |= topic.starts_with("$SYS/") && !message.retain;
        client_dollar |= topic == "$TopicA/B";
    }
    // Anything '$' the "#" subscriber were sent would come before this marker.
    publish(&dollar, TOPICS[1], QoS::AtLeastOnce, false, "marker").await;
    let first = next(&mut everything_messages).await;
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        (TOPICS[1], &b"marker"[..])
    );
}

/// `test_unsubscribe`: after unsubscribing from one of three topics, messages to all three
/// bring only the other two — the first of them, published after the one to the
/// unsubscribed topic, comes first.
#[tokio::test]
async fn unsubscribe() {
    let broker = Mosquitto::builder().start().unwrap();
    let (subscriber, mut messages) = Client::start(options(&broker.url(), "myclientid"))
        .await
        .unwrap();
    for topic in &TOPICS[..3] {
        subscriber.subscribe(topic, QoS::ExactlyOnce).await.unwrap();
    }
    subscriber.unsubscribe(&[TOPICS[0]]).await.unwrap();

    let (publisher, _) = Client::start(options(&broker.url(), "publisher"))
        .await
        .unwrap();
    for topic in &TOPICS[..3] {
        publish(&publisher, topic, QoS::AtLeastOnce, false, topic).await;
    }
    let got: Vec<String> = [next(&mut messages).await, next(&mut messages).await]
        .iter()
        .map(|m| m.topic.as_str().to_owned())
        .collect();
    assert_eq!(got, [TOPICS[1], TOPICS[2]]);
}
