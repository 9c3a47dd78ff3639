//! paho-mqtt (the Paho C library, built from source): an `AsyncClient` whose delivery tokens
//! are kept in a queue and waited for oldest first, as paho's publishing examples do.
//!
//! The C library keeps at most the connection's `max_inflight` messages in flight and queues
//! the rest; this loop keeps [`OUTSTANDING`] windows' worth queued so that it never runs dry.
//! A token completes on PUBACK (QoS 1), PUBCOMP (QoS 2) or, at QoS 0, once the packet is
//! written. The library runs its own send and receive threads, whose CPU time counts like the
//! caller's.

use std::{
    collections::VecDeque,
    sync::{mpsc, Arc, Mutex, PoisonError},
    time::Instant,
};

use paho_mqtt as mqtt;

use super::{stamp, LatencyJob, Received, ThroughputJob, CONNECT_TIMEOUT, DRAIN};
use crate::{
    cpu::{Measured, Meter},
    Error,
};

/// How many windows of messages the loop keeps handed to the library.
const OUTSTANDING: usize = 2;

fn client(port: u16, client_id: &str) -> Result<mqtt::AsyncClient, Error> {
    let options = mqtt::CreateOptionsBuilder::new_v3()
        .server_uri(format!("tcp://127.0.0.1:{port}"))
        .client_id(client_id)
        .finalize();
    Ok(mqtt::AsyncClient::new(options)?)
}

fn connect(client: &mqtt::AsyncClient, window: u16) -> Result<(), Error> {
    let options = mqtt::ConnectOptionsBuilder::with_mqtt_version(mqtt::MqttVersion::V3_1_1)
        .clean_session(true)
        .keep_alive_interval(std::time::Duration::from_secs(60))
        .max_inflight(i32::from(window))
        .finalize();
    client.connect(options).wait_for(CONNECT_TIMEOUT)?;
    Ok(())
}

pub(super) fn throughput(job: &ThroughputJob) -> Result<Measured, Error> {
    let client = client(job.port, &job.client_id)?;
    connect(&client, job.window)?;
    let payload = vec![0x5a; job.size];
    let qos = i32::from(job.qos);
    let outstanding = OUTSTANDING * usize::from(job.window);
    let mut tokens = VecDeque::with_capacity(outstanding + 1);
    let mut completed = 0u64;

    let meter = Meter::start();
    for _ in 0..job.count {
        let mut message = mqtt::Message::new(job.topic.as_str(), payload.as_slice(), qos);
        loop {
            match client.try_publish(message) {
                Ok(token) => {
                    tokens.push_back(token);
                    break;
                }
                // The library's queue is full: wait for the oldest, then try again.
                Err(mqtt::Error::Publish(_, back)) => {
                    message = back;
                    let oldest: mqtt::DeliveryToken = tokens
                        .pop_front()
                        .ok_or("paho refused a publish with none queued")?;
                    oldest.wait()?;
                    completed += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
        while tokens.len() >= outstanding {
            if let Some(oldest) = tokens.pop_front() {
                oldest.wait()?;
                completed += 1;
            }
        }
    }
    while let Some(token) = tokens.pop_front() {
        token.wait()?;
        completed += 1;
    }
    if job.until_stdin {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)?;
    }
    let measured = meter.stop(completed);

    client.disconnect(None).wait_for(CONNECT_TIMEOUT)?;
    Ok(measured)
}

pub(super) fn latency(job: &LatencyJob) -> Result<Received, Error> {
    let origin = Instant::now();
    let received = Arc::new(Mutex::new(Received::new(job, origin)));
    let (all_tx, all_rx) = mpsc::channel();

    let subscriber = client(job.port, &format!("{}-sub", job.client_id))?;
    subscriber.set_message_callback({
        let received = Arc::clone(&received);
        move |_, message| {
            if let Some(message) = message {
                let mut received = received.lock().unwrap_or_else(PoisonError::into_inner);
                if received.record(message.payload()) {
                    let _ = all_tx.send(());
                }
            }
        }
    });
    connect(&subscriber, 100)?;
    subscriber
        .subscribe(job.topic.as_str(), 1)
        .wait_for(CONNECT_TIMEOUT)?;
    let publisher = client(job.port, &format!("{}-pub", job.client_id))?;
    connect(&publisher, 100)?;

    let mut tokens = Vec::with_capacity(job.total() as usize);
    let mut next = Instant::now();
    for seq in 0..job.total() {
        next += job.period();
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let payload = stamp(seq, origin, job.size);
        tokens.push(publisher.publish(mqtt::Message::new(job.topic.as_str(), payload, 1)));
    }
    for token in tokens {
        token.wait_for(DRAIN)?;
    }
    let _ = all_rx.recv_timeout(DRAIN);
    publisher.disconnect(None).wait_for(CONNECT_TIMEOUT)?;
    subscriber.disconnect(None).wait_for(CONNECT_TIMEOUT)?;
    let received = std::mem::replace(
        &mut *received.lock().unwrap_or_else(PoisonError::into_inner),
        Received::new(job, origin),
    );
    Ok(received)
}
