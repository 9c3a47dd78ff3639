//! The clients under test, each run the way its documentation suggests for throughput, and
//! what they are asked to do: a [`ThroughputJob`] or a [`LatencyJob`].
//!
//! Every client connects first, then starts its [`Meter`](crate::cpu::Meter) right before
//! its first publish and stops it at its last completion: PUBACK at QoS 1, PUBCOMP at QoS 2,
//! and at QoS 0 the moment its library reports the message written, or, with
//! `--until-stdin`, the moment the orchestrator says that its subscriber has received every
//! message. Each checks that exactly the messages asked for completed.

mod haka;
#[cfg(feature = "paho")]
mod paho;
pub(crate) mod raw;
mod rumqttc;

use std::{
    io::BufRead,
    pin::Pin,
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::{cpu::Measured, Error};

/// The client libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ClientKind {
    /// This project's client.
    Haka,
    /// rumqttc 0.25, `AsyncClient` and its `EventLoop`.
    Rumqttc,
    /// paho-mqtt 0.14 (the Paho C library), `AsyncClient` (needs the `paho` feature).
    Paho,
    /// A hand-written loop: blocking socket, one thread, the encoder of
    /// `haka_benches::wire`. The floor, not a client anyone would ship.
    Raw,
}

impl ClientKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Haka => "haka",
            Self::Rumqttc => "rumqttc",
            Self::Paho => "paho",
            Self::Raw => "raw",
        }
    }

    /// Whether this build can run it.
    pub(crate) fn available(self) -> bool {
        self != Self::Paho || cfg!(feature = "paho")
    }
}

/// Where haka keeps its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreKind {
    /// `StoreOptions::Memory`.
    Memory,
    /// `StoreOptions::Directory` with `Durability::Flush`, in a temporary directory.
    Flush,
}

/// Publish `count` messages and wait for every one to complete.
#[derive(Debug, Clone, Args)]
pub(crate) struct ThroughputJob {
    /// The client library.
    #[arg(long, value_enum)]
    pub(crate) client: ClientKind,
    /// The broker's port on 127.0.0.1.
    #[arg(long)]
    pub(crate) port: u16,
    /// The topic of every message.
    #[arg(long)]
    pub(crate) topic: String,
    /// The MQTT client identifier.
    #[arg(long)]
    pub(crate) client_id: String,
    /// The QoS of every message: 0, 1 or 2.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) qos: u8,
    /// The payload size in bytes.
    #[arg(long)]
    pub(crate) size: usize,
    /// How many messages.
    #[arg(long)]
    pub(crate) count: u64,
    /// The in-flight window (messages awaiting their acknowledgement).
    #[arg(long, default_value_t = 100)]
    pub(crate) window: u16,
    /// haka's store.
    #[arg(long, value_enum, default_value = "memory")]
    pub(crate) store: StoreKind,
    /// Completion is a line on standard input (a subscriber elsewhere counts), not the last
    /// acknowledgement or write.
    #[arg(long)]
    pub(crate) until_stdin: bool,
    /// tokio worker threads for the Rust clients; 0 for the current-thread runtime.
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
}

/// Publish at QoS 1 at a fixed rate through a broker and receive the messages back on a
/// second connection of the same library, in the same process.
#[derive(Debug, Clone, Args)]
pub(crate) struct LatencyJob {
    /// The client library.
    #[arg(long, value_enum)]
    pub(crate) client: ClientKind,
    /// The broker's port on 127.0.0.1.
    #[arg(long)]
    pub(crate) port: u16,
    /// The topic of every message.
    #[arg(long)]
    pub(crate) topic: String,
    /// The prefix of both client identifiers (`-pub`, `-sub`).
    #[arg(long)]
    pub(crate) client_id: String,
    /// Messages per second.
    #[arg(long, default_value_t = 1000)]
    pub(crate) rate: u32,
    /// Messages measured.
    #[arg(long, default_value_t = 5000)]
    pub(crate) count: u64,
    /// Messages sent first and not measured.
    #[arg(long, default_value_t = 200)]
    pub(crate) warmup: u64,
    /// The payload size in bytes (at least 16: a sequence number and a timestamp).
    #[arg(long, default_value_t = 64)]
    pub(crate) size: usize,
    /// tokio worker threads for the Rust clients; 0 for the current-thread runtime.
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
}

impl LatencyJob {
    /// Every message sent, warm-up included.
    pub(crate) fn total(&self) -> u64 {
        self.warmup + self.count
    }

    pub(crate) fn period(&self) -> Duration {
        Duration::from_secs(1) / self.rate.max(1)
    }
}

/// End-to-end latency percentiles of one [`LatencyJob`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Latency {
    /// Messages measured.
    pub(crate) samples: u64,
    /// Measured messages that never arrived.
    pub(crate) lost: u64,
    pub(crate) p50_ns: u64,
    pub(crate) p90_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) max_ns: u64,
}

/// Runs `job` with its client.
pub(crate) fn throughput(job: &ThroughputJob) -> Result<Measured, Error> {
    if job.store != StoreKind::Memory && job.client != ClientKind::Haka {
        return Err("--store is haka's option".into());
    }
    let measured = match job.client {
        ClientKind::Haka => haka::throughput(job),
        ClientKind::Rumqttc => rumqttc::throughput(job),
        #[cfg(feature = "paho")]
        ClientKind::Paho => paho::throughput(job),
        #[cfg(not(feature = "paho"))]
        ClientKind::Paho => Err(not_built()),
        ClientKind::Raw => raw::throughput(job),
    }?;
    if measured.messages != job.count {
        return Err(format!(
            "{} completed {} messages of {}",
            job.client.name(),
            measured.messages,
            job.count
        )
        .into());
    }
    Ok(measured)
}

/// Runs `job` with its client.
pub(crate) fn latency(job: &LatencyJob) -> Result<Latency, Error> {
    if job.size < 16 {
        return Err("--size must be at least 16".into());
    }
    let received = match job.client {
        ClientKind::Haka => haka::latency(job),
        ClientKind::Rumqttc => rumqttc::latency(job),
        #[cfg(feature = "paho")]
        ClientKind::Paho => paho::latency(job),
        #[cfg(not(feature = "paho"))]
        ClientKind::Paho => Err(not_built()),
        ClientKind::Raw => raw::latency(job),
    }?;
    Ok(received.percentiles(job))
}

#[cfg(not(feature = "paho"))]
fn not_built() -> Error {
    "paho-mqtt is not built: add --features paho (needs cmake and a C compiler)".into()
}

/// A tokio runtime: current-thread for `threads == 0`, else multi-thread with that many
/// workers.
pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, Error> {
    let mut builder = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    Ok(builder.enable_all().build()?)
}

/// Resolves when the orchestrator writes a line on standard input (or closes it). A thread
/// reads it, so the caller's runtime goes on driving the connection meanwhile.
pub(crate) fn stdin_line() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(());
    });
    rx
}

/// The payload of a latency message: its sequence number and when it was sent (nanoseconds
/// since `origin`), then padding.
pub(crate) fn stamp(seq: u64, origin: Instant, size: usize) -> Vec<u8> {
    let mut payload = vec![0x5a; size];
    payload[..8].copy_from_slice(&seq.to_be_bytes());
    let sent = origin.elapsed().as_nanos() as u64;
    payload[8..16].copy_from_slice(&sent.to_be_bytes());
    payload
}

/// What a latency subscriber saw: the latency of each message by sequence number.
#[derive(Debug)]
pub(crate) struct Received {
    latencies: Vec<Option<u64>>,
    /// Slots of `latencies` still empty: a count, so that a record costs the same for the
    /// first message and the last (a scan of the slots took 8,000 instructions per message
    /// by the end of a run, on the receiving thread of every client).
    missing: usize,
    origin: Instant,
}

impl Received {
    pub(crate) fn new(job: &LatencyJob, origin: Instant) -> Self {
        Self {
            latencies: vec![None; job.total() as usize],
            missing: job.total() as usize,
            origin,
        }
    }

    /// Records a message, now; returns whether every message has arrived. Duplicates (a
    /// QoS 1 redelivery) keep the first arrival.
    pub(crate) fn record(&mut self, payload: &[u8]) -> bool {
        let now = self.origin.elapsed().as_nanos() as u64;
        let field = |at: usize| {
            payload
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        if let (Some(seq), Some(sent)) = (field(0), field(8)) {
            if let Some(slot @ None) = self.latencies.get_mut(seq as usize) {
                *slot = Some(now.saturating_sub(sent));
                self.missing -= 1;
            }
        }
        self.missing == 0
    }

    fn percentiles(&self, job: &LatencyJob) -> Latency {
        let measured = &self.latencies[job.warmup as usize..];
        let mut samples: Vec<u64> = measured.iter().flatten().copied().collect();
        samples.sort_unstable();
        let at = |p: usize| {
            samples
                .get((samples.len() * p / 100).min(samples.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        Latency {
            samples: samples.len() as u64,
            lost: measured.len() as u64 - samples.len() as u64,
            p50_ns: at(50),
            p90_ns: at(90),
            p99_ns: at(99),
            max_ns: samples.last().copied().unwrap_or(0),
        }
    }
}

/// How long a latency run waits for the last messages after the last publish.
pub(crate) const DRAIN: Duration = Duration::from_secs(2);

/// How long a client waits for its connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Paces a tokio client's publishes, one every `period` from the first, like a
/// [`tokio::time::interval`] whose missed ticks come in a burst, but with its own work done
/// before the caller stamps the next message rather than inside the interval measured.
///
/// Arming a timer that is due before the runtime's next wake-up wakes tokio's time driver: a
/// write to the runtime's `eventfd`, and one more `epoll_wait` before the thread sleeps. An
/// interval arms its next tick when it is polled for it, which is after the message was
/// stamped and handed to the client: that write and that `epoll_wait` then lie between the
/// stamp and the client's write, and between the client's write and the broker's turn on a
/// processor they share, for every tokio client alike. Here the next tick is armed as soon as
/// one fires, and the task lets the runtime take that wake-up ([`tokio::task::yield_now`]
/// resumes it after the runtime has polled for I/O) before the caller goes on. Six
/// alternating runs of each (3,000 messages through one mosquitto, Zen 3 guest): haka's p50
/// 97.3 against 89.9 us with this, rumqttc's 116.3 against 108.0; the ratio did not move.
pub(crate) struct Pacer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    period: Duration,
}

impl Pacer {
    /// A pacer whose first tick is now.
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            period,
        }
    }

    /// Waits for the next tick, arms the one after it, and returns once the runtime has
    /// taken the wake-up that arming made.
    pub(crate) async fn tick(&mut self) {
        self.sleep.as_mut().await;
        let next = self.sleep.deadline() + self.period;
        // Registers the timer at once (unlike an interval, which waits for its next poll).
        self.sleep.as_mut().reset(next);
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_counted_once_in_any_order() {
        let job = LatencyJob {
            client: ClientKind::Raw,
            port: 1,
            topic: "t".into(),
            client_id: "c".into(),
            rate: 1000,
            count: 2,
            warmup: 1,
            size: 16,
            threads: 0,
        };
        let origin = Instant::now();
        let mut received = Received::new(&job, origin);
        assert!(!received.record(&stamp(2, origin, 16)));
        // A redelivery, and a payload too short to carry a stamp, change nothing.
        assert!(!received.record(&stamp(2, origin, 16)));
        assert!(!received.record(&[0; 8]));
        assert!(!received.record(&stamp(0, origin, 16)));
        assert!(received.record(&stamp(1, origin, 16)));
        assert_eq!(received.percentiles(&job).samples, 2);
    }
}
