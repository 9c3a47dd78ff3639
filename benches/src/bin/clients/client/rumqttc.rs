//! rumqttc: an `AsyncClient` publishing from a task while this task polls the `EventLoop`,
//! as rumqttc's README and examples do.
//!
//! `publish_bytes` hands the payload over without copying it; the event loop's in-flight
//! window is `set_inflight`. Completions are the `PubAck` (QoS 1) and `PubComp` (QoS 2)
//! events, and at QoS 0 the `Outgoing::Publish` event, which comes once the packet is
//! flushed to the socket.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};

use super::{
    runtime, stamp, stdin_line, LatencyJob, Pacer, Received, ThroughputJob, CONNECT_TIMEOUT, DRAIN,
};
use crate::{
    cpu::{Measured, Meter},
    Error,
};

/// The capacity of the request channel between `AsyncClient` and `EventLoop`: the window,
/// so that the event loop always has the next window's worth of requests waiting.
fn capacity(window: u16) -> usize {
    usize::from(window)
}

fn qos(qos: u8) -> QoS {
    match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn options(port: u16, client_id: &str, window: u16) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_inflight(window)
        .set_keep_alive(Duration::from_secs(60))
        .set_max_packet_size(1 << 20, 1 << 20);
    options
}

/// Polls `eventloop` until CONNACK.
async fn connect(eventloop: &mut EventLoop) -> Result<(), Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
                return Ok::<(), Error>(());
            }
        }
    })
    .await
    .map_err(|_| "rumqttc did not connect in time")?
}

pub(super) fn throughput(job: &ThroughputJob) -> Result<Measured, Error> {
    runtime(job.threads)?.block_on(async {
        let (client, mut eventloop) = AsyncClient::new(
            options(job.port, &job.client_id, job.window),
            capacity(job.window),
        );
        connect(&mut eventloop).await?;
        let payload = Bytes::from(vec![0x5a; job.size]);
        let (topic, count, qos) = (job.topic.clone(), job.count, qos(job.qos));

        let meter = Meter::start();
        let publisher = tokio::spawn({
            let client = client.clone();
            async move {
                for _ in 0..count {
                    client
                        .publish_bytes(topic.as_str(), qos, false, payload.clone())
                        .await?;
                }
                Ok::<(), rumqttc::ClientError>(())
            }
        });
        let mut completed = 0;
        while completed < count {
            match (qos, eventloop.poll().await?) {
                (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                | (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_)))
                | (QoS::ExactlyOnce, Event::Incoming(Packet::PubComp(_))) => completed += 1,
                _ => {}
            }
        }
        if job.until_stdin {
            let mut line = stdin_line();
            loop {
                tokio::select! {
                    _ = &mut line => break,
                    event = eventloop.poll() => { event?; }
                }
            }
        }
        let measured = meter.stop(completed);

        publisher.await??;
        client.disconnect().await?;
        // Until DISCONNECT is written.
        while !matches!(
            eventloop.poll().await?,
            Event::Outgoing(Outgoing::Disconnect)
        ) {}
        Ok(measured)
    })
}

pub(super) fn latency(job: &LatencyJob) -> Result<Received, Error> {
    runtime(job.threads)?.block_on(async {
        let origin = Instant::now();
        let (subscriber, mut sub_loop) = AsyncClient::new(
            options(job.port, &format!("{}-sub", job.client_id), 100),
            100,
        );
        connect(&mut sub_loop).await?;
        subscriber.subscribe(&job.topic, QoS::AtLeastOnce).await?;
        while !matches!(sub_loop.poll().await?, Event::Incoming(Packet::SubAck(_))) {}
        let (publisher, mut pub_loop) = AsyncClient::new(
            options(job.port, &format!("{}-pub", job.client_id), 100),
            100,
        );
        connect(&mut pub_loop).await?;

        let received = Arc::new(Mutex::new(Received::new(job, origin)));
        let mut receiving = tokio::spawn({
            let received = Arc::clone(&received);
            async move {
                loop {
                    if let Event::Incoming(Packet::Publish(publish)) = sub_loop.poll().await? {
                        let mut received = received.lock().unwrap_or_else(PoisonError::into_inner);
                        if received.record(&publish.payload) {
                            return Ok::<_, rumqttc::ConnectionError>(sub_loop);
                        }
                    }
                }
            }
        });
        let total = job.total();
        let acks = tokio::spawn(async move {
            let mut acked = 0u64;
            while acked < total {
                if let Event::Incoming(Packet::PubAck(_)) = pub_loop.poll().await? {
                    acked += 1;
                }
            }
            Ok::<_, rumqttc::ConnectionError>(pub_loop)
        });

        let mut pacer = Pacer::new(job.period());
        for seq in 0..job.total() {
            pacer.tick().await;
            let payload = Bytes::from(stamp(seq, origin, job.size));
            publisher
                .publish_bytes(job.topic.as_str(), QoS::AtLeastOnce, false, payload)
                .await?;
        }
        if tokio::time::timeout(DRAIN, &mut receiving).await.is_err() {
            receiving.abort();
            let _ = receiving.await;
        }
        let mut pub_loop = tokio::time::timeout(DRAIN, acks)
            .await
            .map_err(|_| "rumqttc: not every message was acknowledged")???;
        publisher.disconnect().await?;
        while !matches!(
            pub_loop.poll().await?,
            Event::Outgoing(Outgoing::Disconnect)
        ) {}
        let received = std::mem::replace(
            &mut *received.lock().unwrap_or_else(PoisonError::into_inner),
            Received::new(job, origin),
        );
        Ok(received)
    })
}
