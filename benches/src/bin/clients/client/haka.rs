//! haka: `Client::publish` in a loop to a `TopicName` made once (as the crate documents for
//! repeated publishing to one topic), the oldest handle awaited once two windows are out.
//!
//! With the memory store `publish` returns at once (it does not wait for the driver); the loop
//! keeps the handles of the last [`OUTSTANDING`] windows of messages and awaits the oldest
//! before it goes further, while the driver keeps the in-flight window full. With the durable
//! store each `publish` resolves once the commit that stores its message is done; a message
//! is queued when `publish` is called, so the loop keeps `window` of them being stored and
//! awaits the oldest, and the messages queued meanwhile share one commit, as the crate
//! documentation suggests.

use std::{collections::VecDeque, num::NonZeroU16, sync::Arc, time::Instant};

use bytes::Bytes;
use haka::{Client, ClientOptions, PublishHandle, QoS, StoreOptions, TopicName};
use haka_session::Durability;
use tokio::sync::{oneshot, Mutex};

use super::{
    runtime, stamp, stdin_line, LatencyJob, Pacer, Received, StoreKind, ThroughputJob,
    CONNECT_TIMEOUT, DRAIN,
};
use crate::{
    cpu::{Measured, Meter},
    Error,
};

fn qos(qos: u8) -> QoS {
    match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn options(port: u16, client_id: &str, window: u16) -> Result<ClientOptions, Error> {
    let window = NonZeroU16::new(window).ok_or("the window must not be 0")?;
    Ok(ClientOptions::new(&format!("mqtt://127.0.0.1:{port}"), client_id)?.max_inflight(window))
}

/// Starts a client and waits for its connection: a SUBSCRIBE (to a topic nothing is
/// published on) answered proves it. Waiting for `Event::Connected` instead would race with
/// the driver on a multi-thread runtime, which may connect before `events()` is called.
async fn connect(
    options: ClientOptions,
    client_id: &str,
) -> Result<(Client, haka::Messages), Error> {
    let (client, messages) = Client::start(options).await?;
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        client.subscribe(&format!("ready/{client_id}"), QoS::AtMostOnce),
    )
    .await
    .map_err(|_| "haka did not connect in time")??;
    Ok((client, messages))
}

/// How many windows of messages the loop keeps published and not yet completed: like
/// rumqttc's request channel and paho's token queue, it bounds what waits in the client.
const OUTSTANDING: usize = 2;

/// The handles of messages published and not yet completed, oldest first, at most `limit`.
struct Outstanding {
    handles: VecDeque<PublishHandle>,
    limit: usize,
    completed: u64,
}

impl Outstanding {
    fn new(limit: usize) -> Self {
        Self {
            handles: VecDeque::with_capacity(limit + 1),
            limit,
            completed: 0,
        }
    }

    /// Adds `handle`; past the limit, waits for the oldest to complete.
    async fn push(&mut self, handle: PublishHandle) -> Result<(), Error> {
        self.handles.push_back(handle);
        while self.handles.len() > self.limit {
            if let Some(oldest) = self.handles.pop_front() {
                oldest.await?;
                self.completed += 1;
            }
        }
        Ok(())
    }

    /// Waits for every handle; how many completed in all.
    async fn finish(mut self) -> Result<u64, Error> {
        while let Some(oldest) = self.handles.pop_front() {
            oldest.await?;
            self.completed += 1;
        }
        Ok(self.completed)
    }
}

pub(super) fn throughput(job: &ThroughputJob) -> Result<Measured, Error> {
    runtime(job.threads)?.block_on(async {
        let mut options = options(job.port, &job.client_id, job.window)?;
        // Removed when dropped, after the client has stopped.
        let directory = tempfile::tempdir()?;
        if job.store == StoreKind::Flush {
            options = options.store(StoreOptions::Directory {
                path: directory.path().join("store"),
                durability: Durability::Flush,
            });
        }
        let (client, _messages) = connect(options, &job.client_id).await?;
        let payload = Bytes::from(vec![0x5a; job.size]);
        let qos = qos(job.qos);
        let topic = TopicName::new(job.topic.as_str())?;
        let topic = &topic;

        let mut outstanding = Outstanding::new(OUTSTANDING * usize::from(job.window));
        let meter = Meter::start();
        match job.store {
            StoreKind::Memory => {
                for _ in 0..job.count {
                    let handle = client.publish(topic, qos, false, payload.clone()).await?;
                    outstanding.push(handle).await?;
                }
            }
            StoreKind::Flush => {
                // `publish` queues at the call; the futures resolve once stored, in order.
                // As many stay pending as the memory loop keeps handles: two windows. With
                // one window the loop ran dry between commits (64 B: 944 k msg/s at 77 % of
                // a processor; with two, 1.14 M at 93 %).
                let depth = OUTSTANDING * usize::from(job.window);
                let mut storing = VecDeque::with_capacity(depth);
                for _ in 0..job.count {
                    storing.push_back(client.publish(topic, qos, false, payload.clone()));
                    if storing.len() >= depth {
                        if let Some(publishing) = storing.pop_front() {
                            outstanding.push(publishing.await?).await?;
                        }
                    }
                }
                while let Some(publishing) = storing.pop_front() {
                    outstanding.push(publishing.await?).await?;
                }
            }
        }
        let completed = outstanding.finish().await?;
        if job.until_stdin {
            let _ = stdin_line().await;
        }
        let measured = meter.stop(completed);

        client.disconnect().await?;
        Ok(measured)
    })
}

pub(super) fn latency(job: &LatencyJob) -> Result<Received, Error> {
    runtime(job.threads)?.block_on(async {
        let origin = Instant::now();
        let received = Arc::new(Mutex::new(Received::new(job, origin)));

        // The subscriber's driver runs in the receiving task, as rumqttc's event loop does in
        // its bench (`Client::open` rather than `Client::start`): a message the driver reads
        // is taken from `messages` in the same poll, polled after the driver.
        let sub_id = format!("{}-sub", job.client_id);
        let (subscriber, mut messages, mut driver) =
            Client::open(options(job.port, &sub_id, 100)?).await?;
        let (all_received, mut receiving_done) = oneshot::channel();
        let receiving = {
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                let mut all_received = Some(all_received);
                // Until the driver stops, after `disconnect`.
                loop {
                    tokio::select! {
                        biased;
                        () = &mut driver => break,
                        Some(message) = messages.recv() => {
                            if received.lock().await.record(&message.payload) {
                                if let Some(all) = all_received.take() {
                                    let _ = all.send(());
                                }
                            }
                        }
                    }
                }
            })
        };
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            subscriber.subscribe(&job.topic, QoS::AtLeastOnce),
        )
        .await
        .map_err(|_| "haka did not connect in time")??;
        let pub_id = format!("{}-pub", job.client_id);
        let (publisher, _) = connect(options(job.port, &pub_id, 100)?, &pub_id).await?;

        let topic = TopicName::new(job.topic.as_str())?;
        let mut pacer = Pacer::new(job.period());
        let mut handles = Vec::with_capacity(job.total() as usize);
        for seq in 0..job.total() {
            pacer.tick().await;
            let payload = stamp(seq, origin, job.size);
            handles.push(
                publisher
                    .publish(&topic, QoS::AtLeastOnce, false, payload)
                    .await?,
            );
        }
        for handle in handles {
            handle.await?;
        }
        // Bounded: what has not arrived by then counts as lost.
        let _ = tokio::time::timeout(DRAIN, &mut receiving_done).await;
        publisher.disconnect().await?;
        subscriber.disconnect().await?;
        tokio::time::timeout(DRAIN, receiving)
            .await
            .map_err(|_| "haka: the subscriber's driver did not stop")??;
        let received = Arc::try_unwrap(received)
            .map_err(|_| "the receiving task still runs")?
            .into_inner();
        Ok(received)
    })
}
