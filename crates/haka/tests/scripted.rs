//! The driver against a scripted broker on an in-memory pipe, in virtual time (tokio's paused
//! clock), where a test needs exact packets and exact times: the PINGREQ comes one keep alive
//! after the last traffic, however often traffic moved that deadline; a broker gone silent is
//! left at the idle timeout after the last packet it sent; and dropping every `Client` ends
//! the connection and keeps the queue. The same behaviours against a real mosquitto are in
//! `paho_interop.rs` (keep alive) and `resilience.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::{io, sync::Mutex, time::Duration};

use bytes::{Bytes, BytesMut};
use haka::{
    BoxTransport, Client, ClientOptions, ConnectFuture, Connector, Messages, QoS, StoreOptions,
};
use haka_codec::{Codec, ConnAck, Delivery, Packet, Publish, TopicName};
use haka_session::{store::Store, Durability, FileStore, FileStoreOptions};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, DuplexStream},
    time::{sleep_until, timeout, Instant},
};

const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// The idle timeout that goes with [`KEEP_ALIVE`]: one and a half of it.
const IDLE: Duration = Duration::from_secs(15);
/// Virtual time: the bound costs nothing real, and a driver that never wakes fails the test
/// at it instead of hanging.
const WAIT: Duration = Duration::from_secs(3600);
/// tokio's timers tick in milliseconds.
const TICK: Duration = Duration::from_millis(2);

/// Hands the client one end of a pipe, once; the broker's script holds the other.
struct Pipe(Mutex<Option<DuplexStream>>);

impl Connector for Pipe {
    fn connect(&self) -> ConnectFuture<'_> {
        let end = self.0.lock().unwrap().take();
        Box::pin(async move {
            end.map(|end| Box::new(end) as BoxTransport)
                .ok_or_else(|| io::Error::new(io::ErrorKind::ConnectionRefused, "pipe used"))
        })
    }
}

/// The broker's end of the pipe.
struct Broker {
    stream: DuplexStream,
    codec: Codec,
    input: BytesMut,
}

impl Broker {
    /// The client's next packet, or `None` once it closed the connection.
    async fn next(&mut self) -> Option<Packet> {
        timeout(WAIT, async {
            loop {
                if let Some(packet) = self.codec.decode(&mut self.input).unwrap() {
                    return Some(packet);
                }
                if self.stream.read_buf(&mut self.input).await.unwrap() == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("the client went quiet")
    }

    async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        self.codec.encode(packet, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }
}

/// Options for a client on a pipe: no reconnection.
fn options(client_id: &str) -> ClientOptions {
    ClientOptions::new("mqtt://127.0.0.1:1883", client_id)
        .unwrap()
        .keep_alive(KEEP_ALIVE)
        .reconnect(false, Default::default())
}

/// The client's end of a pipe, as its connector, and the broker's.
fn pipe() -> (Pipe, Broker) {
    let (client_end, broker_end) = tokio::io::duplex(64 * 1024);
    let broker = Broker {
        stream: broker_end,
        codec: Codec::new(),
        input: BytesMut::new(),
    };
    (Pipe(Mutex::new(Some(client_end))), broker)
}

/// Reads CONNECT and accepts it; returns the moment the client had the CONNACK.
async fn accept(broker: &mut Broker) -> Instant {
    assert!(matches!(broker.next().await, Some(Packet::Connect(_))));
    broker
        .send(&Packet::ConnAck(ConnAck::accepted(false)))
        .await;
    Instant::now()
}

/// A client on a pipe, and the broker's end after CONNACK, with the moment the client had
/// it.
async fn connected(client_id: &str) -> (Client, Messages, Broker, Instant) {
    let (pipe, mut broker) = pipe();
    let (client, messages) = Client::start_with(options(client_id), pipe).await.unwrap();
    let start = accept(&mut broker).await;
    (client, messages, broker, start)
}

/// At each of `seconds` after `start`, a QoS 0 message each way: both the time of the last
/// packet sent and that of the last one received move later.
async fn traffic_at(client: &Client, broker: &mut Broker, start: Instant, seconds: &[u64]) {
    let to_client = Packet::Publish(Publish::new(
        TopicName::new("news").unwrap(),
        Delivery::AtMostOnce,
        Bytes::from_static(b"from the broker"),
    ));
    for &at in seconds {
        sleep_until(start + Duration::from_secs(at)).await;
        let handle = client
            .publish("news", QoS::AtMostOnce, false, "from the client")
            .await
            .unwrap();
        assert!(matches!(broker.next().await, Some(Packet::Publish(_))));
        timeout(WAIT, handle).await.unwrap().unwrap();
        broker.send(&to_client).await;
    }
}

/// Asserts that `start.elapsed()` is `expected`, to the timer's resolution.
fn assert_at(start: Instant, expected: Duration, what: &str) {
    let elapsed = start.elapsed();
    assert!(
        elapsed >= expected && elapsed <= expected + TICK,
        "{what} after {elapsed:?}, not {expected:?}"
    );
}

/// Section 3.1.2.10: the client sends PINGREQ when a keep alive has passed without
/// traffic. Traffic at 4 s and 8 s puts the first ping at 18 s, not at the 10 s the timer
/// was first armed for; the PINGRESP at 18 s puts the next at 28 s.
#[tokio::test(start_paused = true)]
async fn the_ping_comes_one_keep_alive_after_the_last_traffic() {
    let (client, _messages, mut broker, start) = connected("pinger").await;
    traffic_at(&client, &mut broker, start, &[4, 8]).await;

    assert!(matches!(broker.next().await, Some(Packet::PingReq)));
    assert_at(start, Duration::from_secs(8) + KEEP_ALIVE, "first PINGREQ");
    broker.send(&Packet::PingResp).await;
    assert!(matches!(broker.next().await, Some(Packet::PingReq)));
    assert_at(
        start,
        Duration::from_secs(18) + KEEP_ALIVE,
        "second PINGREQ",
    );
}

/// A broker that stops answering, PINGREQ included, is left one idle timeout after the last
/// packet it sent (8 s + 15 s), whatever deadlines the timer was armed for before.
#[tokio::test(start_paused = true)]
async fn a_silent_broker_is_left_one_idle_timeout_after_its_last_packet() {
    let (client, _messages, mut broker, start) = connected("abandoner").await;
    traffic_at(&client, &mut broker, start, &[4, 8]).await;

    assert!(matches!(broker.next().await, Some(Packet::PingReq)));
    assert_at(start, Duration::from_secs(8) + KEEP_ALIVE, "PINGREQ");
    // Unanswered: the connection ends at the idle timeout, and nothing is sent before.
    assert!(broker.next().await.is_none());
    assert_at(start, Duration::from_secs(8) + IDLE, "the close");
}

/// "When the last clone is dropped without `Client::disconnect`, the driver commits the store
/// and drops the connection: nothing the store holds is lost." One clone dropped changes
/// nothing; the last one ends the connection without DISCONNECT (so the broker would publish
/// a will), the driver completes, and both unacknowledged messages are in the store.
#[tokio::test(start_paused = true)]
async fn dropping_every_client_ends_the_connection_and_keeps_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let options = options("dropper").store(StoreOptions::Directory {
        path: dir.path().to_owned(),
        durability: Durability::Flush,
    });
    let (pipe, mut broker) = pipe();
    let (client, _messages, driver) = Client::open_with(options, pipe).await.unwrap();
    let driver = tokio::spawn(driver);
    accept(&mut broker).await;

    let mut handles = Vec::new();
    for payload in ["one", "two"] {
        let publishing = client.publish("jobs", QoS::AtLeastOnce, false, payload);
        handles.push(timeout(WAIT, publishing).await.unwrap().unwrap());
        assert!(matches!(broker.next().await, Some(Packet::Publish(_))));
    }
    let other = client.clone();
    drop(client);
    // Still connected through the other clone.
    let handle = other.publish("jobs", QoS::AtMostOnce, false, "three");
    timeout(WAIT, handle).await.unwrap().unwrap();
    assert!(matches!(broker.next().await, Some(Packet::Publish(_))));

    drop(other);
    assert!(
        broker.next().await.is_none(),
        "a packet after the last clone went"
    );
    timeout(WAIT, driver).await.unwrap().unwrap();
    for handle in handles {
        assert!(timeout(WAIT, handle).await.unwrap().is_err());
    }
    let mut store = FileStore::open(dir.path(), FileStoreOptions::new()).unwrap();
    let payloads: Vec<_> = store
        .recover()
        .unwrap()
        .messages
        .iter()
        .map(|message| message.payload.clone())
        .collect();
    assert_eq!(payloads, ["one", "two"]);
}
