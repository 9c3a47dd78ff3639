//! `haka bench`: throughput and latency against a broker.
//!
//! One subscriber client subscribes to the bench topic, then K publisher clients share the
//! messages among them. Each payload starts with the time of its publish (nanoseconds since
//! the run began, big-endian `u64`) and its sequence number (big-endian `u64`), padded with
//! zeros to `--size`, so the subscriber, in the same process, measures publish-to-receipt
//! latency and tells duplicates and missing messages apart.
//!
//! Publishing is measured from the first publish call to the last completion (the handle:
//! PUBACK for QoS 1, PUBCOMP for QoS 2, written for QoS 0); receiving from the first publish
//! to the last message received. Each publisher keeps at most `--window` messages awaiting
//! completion, so the queue stays bounded whatever `--count` is.

mod report;
mod stats;

use std::{fmt, path::PathBuf, time::Duration};

use bytes::{Bytes, BytesMut};
use haka::{Client, Messages, PublishHandle, QoS, SubscribeReturnCode};
use haka_codec::TopicName;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    args::{BenchArgs, BenchStore},
    connect::{directory_store, Broker},
    CliError,
};
use report::{rate, LatencyMs, PublishSummary, ReceiveSummary, Summary};
use stats::Percentiles;

/// The bytes at the start of every payload: timestamp and sequence number.
const HEADER: usize = 16;

/// Runs `haka bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), CliError> {
    let broker = Broker::new(&args.broker)?;
    let prefix = args
        .id
        .clone()
        .unwrap_or_else(|| format!("haka-bench-{}", std::process::id()));
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| format!("haka/bench/{prefix}"));
    // Checked once: every publish shares it.
    let topic = TopicName::new(topic.as_str()).map_err(|error| CliError::Topic {
        topic: topic.clone(),
        error,
    })?;
    // More connections than messages would leave some idle.
    let connections = args.connections.min(args.count);
    let dirs = store_dirs(&args.store, &prefix, connections)?;
    let run = Run {
        broker,
        prefix,
        topic,
        connections,
    };
    let result = run.bench(&args, &dirs).await;
    for dir in dirs.iter().flatten() {
        let removed = std::fs::remove_dir_all(dir);
        // After a failure the stopping clients may still be writing: best effort then.
        if result.is_ok() {
            removed.map_err(|source| CliError::BenchStore {
                path: dir.clone(),
                source,
            })?;
        }
    }
    result
}

/// What a run works with.
struct Run {
    broker: Broker,
    prefix: String,
    topic: TopicName,
    connections: u64,
}

impl Run {
    async fn bench(&self, args: &BenchArgs, dirs: &[Option<PathBuf>]) -> Result<(), CliError> {
        let count = args.count;
        let size = usize::try_from(args.size).unwrap_or(usize::MAX).max(HEADER);
        let window = usize::try_from(args.window).unwrap_or(usize::MAX);

        let sub_options = self.broker.options(&format!("{}-sub", self.prefix))?;
        let (subscriber, messages) = self.broker.connect(sub_options).await?;
        if let SubscribeReturnCode::Failure =
            subscriber.subscribe(self.topic.as_str(), args.qos).await?
        {
            return Err(CliError::SubscriptionRefused {
                filters: vec![self.topic.to_string()],
            });
        }
        let mut publishers = Vec::new();
        for (n, dir) in dirs.iter().enumerate() {
            let mut options = self
                .broker
                .options(&format!("{}-pub-{n}", self.prefix))?
                // The window bounds the queue; the default byte limit would refuse large
                // payloads.
                .queue_limits(window.saturating_add(16), usize::MAX);
            if let Some(dir) = dir {
                options = options.store(directory_store(dir.clone(), args.fsync));
            }
            publishers.push(self.broker.connect(options).await?.0);
        }

        let progress = Progress::new(count);
        let base = Instant::now();
        let (drained, drain) = oneshot::channel();
        let receiver = tokio::spawn(receive(
            messages,
            count,
            base,
            Duration::from_secs(args.drain_timeout),
            drain,
            progress.received.clone(),
        ));
        let start = Instant::now();
        let (per_connection, extra) = (count / self.connections, count % self.connections);
        let mut tasks = Vec::new();
        let mut first = 0;
        for (n, client) in (0u64..).zip(&publishers) {
            let share = Share {
                topic: self.topic.clone(),
                qos: args.qos,
                size,
                window,
                first,
                count: per_connection + u64::from(n < extra),
            };
            first += share.count;
            tasks.push(tokio::spawn(publish_share(
                client.clone(),
                share,
                base,
                progress.published.clone(),
            )));
        }
        let mut published = Published::default();
        for task in tasks {
            published.merge(task.await.map_err(|_| CliError::Stopped)??);
        }
        let _ = drained.send(());
        let received = receiver.await.map_err(|_| CliError::Stopped)?;
        progress.finish();

        let summary = self.summary(args, start, published, received);
        if args.json {
            println!("{}", summary.to_json());
        } else {
            print!("{}", summary.to_table());
        }
        for publisher in &publishers {
            publisher.disconnect().await?;
        }
        subscriber.disconnect().await?;
        match summary.publish.failed {
            0 => Ok(()),
            failed => Err(CliError::BenchFailures { failed, count }),
        }
    }

    fn summary(
        &self,
        args: &BenchArgs,
        start: Instant,
        published: Published,
        received: Received,
    ) -> Summary {
        let span = |last: Option<Instant>| last.map_or(Duration::ZERO, |last| last - start);
        let publish_span = span(published.last);
        let receive_span = span(received.last);
        let size = args.size as f64;
        Summary {
            qos: args.qos.into(),
            count: args.count,
            size: args.size,
            connections: self.connections,
            store: match &args.store {
                BenchStore::Memory => "memory".to_owned(),
                BenchStore::Directory(dir) => dir.display().to_string(),
            },
            fsync: args.fsync && args.store != BenchStore::Memory,
            publish: PublishSummary {
                completed: published.completed,
                failed: published.failed,
                seconds: publish_span.as_secs_f64(),
                messages_per_second: rate(published.completed, publish_span),
                bytes_per_second: rate(published.completed, publish_span) * size,
                latency_ms: Percentiles::of(published.latencies).map(LatencyMs::from),
            },
            receive: ReceiveSummary {
                received: received.unique,
                duplicates: received.duplicates,
                missing: args.count - received.unique,
                seconds: receive_span.as_secs_f64(),
                messages_per_second: rate(received.unique, receive_span),
                bytes_per_second: rate(received.unique, receive_span) * size,
                latency_ms: Percentiles::of(received.latencies).map(LatencyMs::from),
            },
        }
    }
}

/// One directory per publisher under `--store DIR`, each new; `None` for a memory store.
fn store_dirs(
    store: &BenchStore,
    prefix: &str,
    connections: u64,
) -> Result<Vec<Option<PathBuf>>, CliError> {
    (0..connections)
        .map(|n| match store {
            BenchStore::Memory => Ok(None),
            BenchStore::Directory(root) => {
                let dir = root.join(format!("{prefix}-pub-{n}"));
                if dir.exists() {
                    // Never a directory this run did not make: it may hold another client's
                    // queue.
                    return Err(CliError::BenchStore {
                        path: dir,
                        source: std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "already exists; remove it or choose another --id",
                        ),
                    });
                }
                Ok(Some(dir))
            }
        })
        .collect()
}

/// The messages one publisher sends: sequence numbers `first..first + count`.
struct Share {
    topic: TopicName,
    qos: QoS,
    size: usize,
    window: usize,
    first: u64,
    count: u64,
}

/// What the publishers measured.
#[derive(Debug, Default)]
struct Published {
    /// Publish call to completion, in nanoseconds.
    latencies: Vec<u64>,
    completed: u64,
    failed: u64,
    /// The last completion.
    last: Option<Instant>,
}

impl Published {
    fn merge(&mut self, other: Published) {
        self.latencies.extend(other.latencies);
        self.completed += other.completed;
        self.failed += other.failed;
        self.last = self.last.max(other.last);
    }
}

/// Publishes `share`, with at most `share.window` messages awaiting completion.
async fn publish_share(
    client: Client,
    share: Share,
    base: Instant,
    bar: ProgressBar,
) -> Result<Published, CliError> {
    let (pending, mut handles) = mpsc::channel::<(Instant, PublishHandle)>(share.window);
    let capacity = usize::try_from(share.count).unwrap_or(0);
    let completions = tokio::spawn(async move {
        let mut published = Published {
            latencies: Vec::with_capacity(capacity),
            ..Published::default()
        };
        // Completions come in order on one connection; each is timed when its turn comes.
        while let Some((sent, handle)) = handles.recv().await {
            match handle.await {
                Ok(()) => {
                    let now = Instant::now();
                    published.latencies.push(nanos(now - sent));
                    published.completed += 1;
                    published.last = Some(now);
                    bar.inc(1);
                }
                Err(_) => published.failed += 1,
            }
        }
        published
    });
    for seq in share.first..share.first + share.count {
        let sent = Instant::now();
        let payload = payload(nanos(sent - base), seq, share.size);
        let handle = client
            .publish(&share.topic, share.qos, false, payload)
            .await?;
        if pending.send((sent, handle)).await.is_err() {
            break;
        }
    }
    drop(pending);
    completions.await.map_err(|_| CliError::Stopped)
}

/// What the subscriber measured.
#[derive(Debug, Default)]
struct Received {
    /// Publish call to receipt, in nanoseconds, one per message.
    latencies: Vec<u64>,
    unique: u64,
    duplicates: u64,
    /// The last new message.
    last: Option<Instant>,
}

/// Receives until every message came, or `drain` after `drained` fired.
async fn receive(
    mut messages: Messages,
    count: u64,
    base: Instant,
    drain: Duration,
    mut drained: oneshot::Receiver<()>,
    bar: ProgressBar,
) -> Received {
    let capacity = usize::try_from(count).unwrap_or(0);
    let mut seen = vec![false; capacity];
    let mut received = Received {
        latencies: Vec::with_capacity(capacity),
        ..Received::default()
    };
    let mut deadline = None;
    while received.unique < count {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { break };
                let now = Instant::now();
                let Some((stamp, seq)) = header(&message.payload) else { continue };
                let Some(seen) = usize::try_from(seq).ok().and_then(|i| seen.get_mut(i)) else {
                    continue;
                };
                if *seen {
                    received.duplicates += 1;
                    continue;
                }
                *seen = true;
                received.unique += 1;
                received.latencies.push(nanos(now - base).saturating_sub(stamp));
                received.last = Some(now);
                bar.inc(1);
            }
            _ = &mut drained, if deadline.is_none() => deadline = Some(Instant::now() + drain),
            () = sleep_until(deadline), if deadline.is_some() => break,
        }
    }
    received
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A payload of `size` bytes: `stamp`, `seq`, zeros.
fn payload(stamp: u64, seq: u64, size: usize) -> Bytes {
    let mut payload = BytesMut::zeroed(size.max(HEADER));
    payload[..8].copy_from_slice(&stamp.to_be_bytes());
    payload[8..HEADER].copy_from_slice(&seq.to_be_bytes());
    payload.freeze()
}

/// The timestamp and sequence number at the start of `payload`, if it is a bench message.
fn header(payload: &[u8]) -> Option<(u64, u64)> {
    let stamp = payload.get(..8)?.try_into().ok()?;
    let seq = payload.get(8..HEADER)?.try_into().ok()?;
    Some((u64::from_be_bytes(stamp), u64::from_be_bytes(seq)))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The progress bars, on stderr, hidden when it is not a terminal.
struct Progress {
    bars: MultiProgress,
    published: ProgressBar,
    received: ProgressBar,
}

impl Progress {
    fn new(count: u64) -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:40}] {pos}/{len} ({rate} msg/s, {elapsed})",
        )
        .map(|style| {
            style.progress_chars("=> ").with_key(
                "rate",
                |state: &ProgressState, out: &mut dyn fmt::Write| {
                    let _ = write!(out, "{:.0}", state.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = |label: &'static str| {
            bars.add(
                ProgressBar::new(count)
                    .with_style(style.clone())
                    .with_prefix(label),
            )
        };
        let published = bar("completed");
        let received = bar("received");
        Self {
            bars,
            published,
            received,
        }
    }

    fn finish(&self) {
        self.published.finish_and_clear();
        self.received.finish_and_clear();
        let _ = self.bars.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_stamp_and_sequence() {
        let payload = payload(123_456_789, 42, 64);
        assert_eq!(payload.len(), 64);
        assert_eq!(header(&payload), Some((123_456_789, 42)));
        assert_eq!(header(b"short"), None);
    }

    #[test]
    fn store_directories_are_one_per_publisher() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let store = BenchStore::Directory(root.path().to_owned());
        let dirs = store_dirs(&store, "b", 2).expect("new directories");
        assert_eq!(
            dirs,
            [
                Some(root.path().join("b-pub-0")),
                Some(root.path().join("b-pub-1"))
            ]
        );
        std::fs::create_dir(root.path().join("b-pub-1")).expect("created");
        assert!(store_dirs(&store, "b", 2).is_err());
        assert_eq!(
            store_dirs(&BenchStore::Memory, "b", 2).expect("memory"),
            [None, None]
        );
    }
}
