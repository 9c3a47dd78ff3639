//! The connection's timer, against a scripted broker on an in-memory pipe and in virtual
//! time (tokio's paused clock): the PINGREQ comes one keep alive after the last traffic,
//! however often traffic moved that deadline, and a broker gone silent is left at the idle
//! timeout after the last packet it sent. Exact packet timing is what these check; the
//! keep alive against a real mosquitto is in `paho_interop.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::{io, sync::Mutex, time::Duration};

use bytes::{Bytes, BytesMut};
use haka::{BoxTransport, Client, ClientOptions, ConnectFuture, Connector, Messages, QoS};
use haka_codec::{Codec, ConnAck, Delivery, Packet, Publish, TopicName};
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

/// A client on a pipe, without reconnection, and the broker's end after CONNACK, with the
/// moment the client had it.
async fn connected(client_id: &str) -> (Client, Messages, Broker, Instant) {
    let (client_end, broker_end) = tokio::io::duplex(64 * 1024);
    let options = ClientOptions::new("mqtt://127.0.0.1:1883", client_id)
        .unwrap()
        .keep_alive(KEEP_ALIVE)
        .reconnect(false, Default::default());
    let pipe = Pipe(Mutex::new(Some(client_end)));
    let (client, messages) = Client::start_with(options, pipe).await.unwrap();
    let mut broker = Broker {
        stream: broker_end,
        codec: Codec::new(),
        input: BytesMut::new(),
    };
    assert!(matches!(broker.next().await, Some(Packet::Connect(_))));
    broker
        .send(&Packet::ConnAck(ConnAck::accepted(false)))
        .await;
    (client, messages, broker, Instant::now())
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
