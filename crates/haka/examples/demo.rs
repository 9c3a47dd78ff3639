//! The end-to-end demo: haka's send path against a real mosquitto, with the connection cut
//! and the publishing process killed, and a count at the end of what got through.
//!
//! ```text
//! cargo run --release -p haka --example demo     # scripts/demo installs mosquitto first
//! ```
//!
//! The demo starts a mosquitto of its own on a free port, with a fault proxy in front of it.
//! A subscriber in this process takes `demo/0`, `demo/1` and `demo/2` at QoS 0, 1 and 2. The
//! publisher is a child process (this binary again, run as `demo --publisher DIR URL START`)
//! with a durable directory store: it publishes the numbers START, START+1, ... on the three
//! topics at a steady rate, through the proxy, and reports on its stdout each message
//! `publish` accepted and each one that completed. Then:
//!
//! 1. the streams flow;
//! 2. the proxy cuts the publisher's connection, three times;
//! 3. the publisher is killed with SIGKILL mid-stream, once while connected and once after two
//!    seconds without a broker (the proxy refuses it), and each time started again on the
//!    same store, from which it resends what the dead process had accepted and the broker had
//!    not acknowledged;
//! 4. the publisher stops gracefully and the subscriber takes the last messages.
//!
//! The table at the end counts, per QoS, the messages sent (accepted by `publish`),
//! acknowledged, received, duplicated and lost. The demo exits with a failure if a QoS 1 or 2
//! message was lost or a QoS 2 message arrived twice: it is a check as well as a show.

use std::{
    collections::{HashMap, HashSet},
    error::Error,
    future::Future,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{ExitCode, ExitStatus, Stdio},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use haka::{
    Backoff, Client, ClientOptions, Event, Messages, QoS, StoreOptions, SubscribeReturnCode,
};
use haka_codec::{Subscription, TopicFilter};
use haka_session::Durability;
use haka_testkit::{FaultProxy, Mosquitto};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::Notify,
    task::{JoinHandle, JoinSet},
    time::{interval, sleep, timeout, MissedTickBehavior},
};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// One stream per QoS, on these topics.
const TOPICS: [&str; 3] = ["demo/0", "demo/1", "demo/2"];
const LEVELS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
/// The publisher's pace: `PER_TICK` numbers every `TICK`, each on the three topics.
const TICK: Duration = Duration::from_millis(10);
const PER_TICK: u64 = 5;
/// The payload the subscriber's own client publishes last on each topic: once it arrives,
/// nothing the publisher sent before it is still on its way.
const MARKER: &str = "end";
/// The bound on every wait for something to happen.
const WAIT: Duration = Duration::from_secs(15);
/// How often the demo prints its counts.
const PROGRESS: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let outcome = if args.get(1).map(String::as_str) == Some("--publisher") {
        publisher_main(&args[2..])
    } else {
        demo_main()
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

// ----------------------------------------------------------------------------------------
// The demo: broker, proxy, subscriber, and the phases of the publisher's life.

fn demo_main() -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let passed = runtime.block_on(demo())?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn demo() -> Result<bool> {
    let began = Instant::now();
    println!(
        "==> haka end to end: QoS 0, 1 and 2 streams through a real broker, the connection cut,"
    );
    println!("    the publishing process killed; then a count of what got through");
    let broker = Mosquitto::builder()
        // No limit on the messages mosquitto queues for a subscriber (1,000 by default):
        // mosquitto 2.0.11 drops messages past that limit for a subscriber that falls behind.
        .extra("max_queued_messages 0")
        // No limit on the messages in flight to (and from) a client (20 by default): when its
        // window to a subscriber is full, mosquitto 2.0.11 may redeliver out of order. The
        // publisher keeps haka's default window of 20.
        .extra("max_inflight_messages 0")
        .start()?;
    let version = broker
        .log()
        .lines()
        .find_map(|line| {
            let rest = &line[line.find("mosquitto version ")? + "mosquitto version ".len()..];
            rest.split_whitespace().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "(version unknown)".to_owned());
    println!(
        "==> mosquitto {version} on {} (its own configuration in {})",
        broker.addr(),
        broker.dir().display()
    );
    let proxy = FaultProxy::start(broker.addr())?;
    println!(
        "==> a fault proxy on {}: the publisher reaches the broker through it",
        proxy.addr()
    );

    let tally = Arc::new(Tally::default());
    let (subscriber, messages) =
        Client::start(options(&broker.url(), "haka-demo-subscriber")?.clean_session(false)).await?;
    let subscriptions = TOPICS
        .iter()
        .zip(LEVELS)
        .map(|(topic, qos)| Ok(Subscription::new(TopicFilter::new(*topic)?, qos)))
        .collect::<Result<Vec<_>>>()?;
    let granted = timeout(WAIT, subscriber.subscribe_many(subscriptions))
        .await
        .map_err(|_| "no SUBACK in time")??;
    if granted != LEVELS.map(SubscribeReturnCode::Success) {
        return Err(format!("the broker granted {granted:?}").into());
    }
    println!("==> a subscriber in this process: demo/0, demo/1 and demo/2 at QoS 0, 1 and 2");
    let receiving = tokio::spawn(receive(messages, Arc::clone(&tally)));

    let store = tempfile::Builder::new()
        .prefix("haka-demo-store-")
        .tempdir()?;
    let mut demo = Demo {
        tally,
        url: format!("mqtt://{}", proxy.addr()),
        store: store.path().to_owned(),
        streams_began: Instant::now(),
    };
    let rate = PER_TICK * 1000 / TICK.as_millis() as u64;

    println!();
    println!("==> 1/4 streams: a publisher process, {rate} messages/s on each QoS");
    println!("    its durable store: {}", store.path().display());
    println!(
        "    (every {} ms: seconds, then sent/acknowledged/received per QoS)",
        PROGRESS.as_millis()
    );
    let mut publisher = demo.spawn_publisher(0)?;
    println!("--> publisher started: pid {}", publisher.pid);
    demo.streams_began = Instant::now();
    demo.stream_for(Duration::from_secs(6)).await;

    println!();
    println!("==> 2/4 the publisher's connection is cut three times (the proxy resets both sides)");
    for cut in 1..=3 {
        println!("--> cut {cut}");
        // Blocks this thread (not a runtime worker) until the connection is closed.
        proxy.cut_all();
        demo.stream_for(Duration::from_secs(2)).await;
    }

    println!();
    println!(
        "==> 3/4 the publisher is killed with SIGKILL mid-stream, twice, and started again on"
    );
    println!("    its store each time");
    println!("--> kill 1, while it is connected: some messages are in flight");
    demo.kill_and_restart(&mut publisher).await?;
    demo.stream_for(Duration::from_secs(2)).await;
    println!("--> the broker goes out of the publisher's reach (the proxy refuses it): what it");
    println!("    accepts now waits in its store");
    proxy.refuse(true);
    proxy.cut_all();
    demo.stream_for(Duration::from_secs(2)).await;
    println!("--> kill 2, while the broker is out of reach; then the broker is reachable again");
    proxy.refuse(false);
    let restarted = demo.kill_and_restart(&mut publisher).await?;
    demo.stream_for(Duration::from_secs(4).saturating_sub(restarted.elapsed()))
        .await;

    println!();
    println!(
        "==> 4/4 graceful stop: the publisher waits for its last acknowledgements and disconnects"
    );
    let stopping = Instant::now();
    let stopped = publisher.stop(&demo).await;
    let publishing = stopping.duration_since(demo.streams_began);
    let stop_ok = match &stopped {
        Ok(status) if status.success() => {
            println!("--> the publisher exited cleanly ({})", describe(*status));
            true
        }
        Ok(status) => {
            println!("--> the publisher failed: {}", describe(*status));
            false
        }
        Err(error) => {
            println!("--> the publisher did not stop: {error}");
            false
        }
    };
    // The subscriber's own client publishes a marker on each topic; the broker forwards it
    // after everything it received before, so once the three are in, the count is final.
    for (topic, qos) in TOPICS.iter().zip(LEVELS) {
        timeout(WAIT, subscriber.publish(topic, qos, false, MARKER))
            .await
            .map_err(|_| "the marker was not accepted in time")??;
    }
    let drained = demo
        .progress_until(WAIT, |tally| tally.streams.iter().all(|s| s.marker))
        .await;
    if !drained {
        println!(
            "--> the end markers did not all arrive within {} s",
            WAIT.as_secs()
        );
    }
    let _ = timeout(WAIT, subscriber.disconnect()).await;
    let _ = timeout(WAIT, receiving).await;

    let passed = demo.report(publishing, began.elapsed()) && stop_ok;
    drop(proxy);
    drop(broker);
    Ok(passed)
}

/// Options shared by both clients: quick reconnection, a short keep alive.
fn options(url: &str, client_id: &str) -> Result<ClientOptions> {
    Ok(ClientOptions::new(url, client_id)?
        .keep_alive(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .reconnect(
            true,
            Backoff {
                min: Duration::from_millis(20),
                max: Duration::from_millis(500),
            },
        ))
}

/// The subscriber: counts each message as it arrives, until its client stops.
async fn receive(mut messages: Messages, tally: Arc<Tally>) {
    while let Some(message) = messages.recv().await {
        let Some(q) = TOPICS.iter().position(|t| *t == message.topic.as_str()) else {
            continue;
        };
        let payload = String::from_utf8_lossy(&message.payload);
        let mut state = tally.lock();
        let stream = &mut state.streams[q];
        if payload == MARKER {
            stream.marker = true;
        } else if let Ok(n) = payload.parse::<u64>() {
            let count = stream.received.entry(n).or_default();
            *count += 1;
            if *count == 1 {
                if stream.highest.is_some_and(|h| n < h) {
                    stream.late += 1;
                }
                stream.highest = stream.highest.max(Some(n));
            }
        } else {
            stream.unexpected += 1;
        }
        drop(state);
        tally.changed.notify_one();
    }
}

/// What the demo knows: the publisher's reports and the subscriber's deliveries.
#[derive(Default)]
struct Tally {
    state: Mutex<State>,
    /// Signalled on every change.
    changed: Notify,
}

#[derive(Default)]
struct State {
    streams: [Stream; 3],
    /// Numbers below this may have been handed to `publish` (the publisher announces each
    /// batch before it starts it): a restarted publisher starts here.
    next: u64,
}

/// One QoS level's messages, by number.
#[derive(Default)]
struct Stream {
    /// Accepted by `publish`: committed to the store.
    sent: HashSet<u64>,
    /// Completed: PUBACK (QoS 1), PUBCOMP (QoS 2), written to the socket (QoS 0).
    acked: HashSet<u64>,
    /// Refused by `publish` (nothing queued) or failed after it.
    refused: u64,
    /// How many times each number arrived at the subscriber.
    received: HashMap<u64, u32>,
    /// The highest number received so far, and the first arrivals below it.
    highest: Option<u64>,
    late: u64,
    /// Payloads that are not numbers.
    unexpected: u64,
    /// The end marker arrived.
    marker: bool,
}

impl Tally {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is complete before the lock is released: a panic elsewhere leaves
        // nothing half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One line of the publisher's stdout.
    fn record_line(&self, line: &str) {
        let mut words = line.splitn(3, ' ');
        let (verb, first, rest) = (words.next(), words.next(), words.next());
        let number = |word: Option<&str>| word.and_then(|w| w.parse::<u64>().ok());
        let qos = number(first).map(|q| q as usize).filter(|q| *q < 3);
        let mut state = self.lock();
        match (verb, qos, number(rest)) {
            (Some("accepted"), Some(q), Some(n)) => {
                state.streams[q].sent.insert(n);
            }
            (Some("completed"), Some(q), Some(n)) => {
                state.streams[q].acked.insert(n);
            }
            (Some("refused" | "failed"), Some(q), _) => {
                state.streams[q].refused += 1;
                println!("    publisher: {line}");
            }
            (Some("next"), _, _) => {
                if let Some(n) = number(first) {
                    state.next = state.next.max(n);
                }
            }
            _ => {
                let text = line.strip_prefix("event ").unwrap_or(line);
                println!("    publisher: {text}");
            }
        }
        drop(state);
        self.changed.notify_one();
    }

    /// Per QoS, the numbers from `first` on accepted and not (yet) received.
    fn unreceived(&self, first: u64) -> [Vec<u64>; 3] {
        let state = self.lock();
        std::array::from_fn(|q| {
            let stream = &state.streams[q];
            let mut missing: Vec<u64> = stream
                .sent
                .iter()
                .filter(|n| **n >= first && !stream.received.contains_key(n))
                .copied()
                .collect();
            missing.sort_unstable();
            missing
        })
    }

    /// The highest number from `first` on that `publish` accepted, on any QoS.
    fn highest_sent(&self, first: u64) -> Option<u64> {
        let state = self.lock();
        state
            .streams
            .iter()
            .flat_map(|s| s.sent.iter().copied())
            .filter(|n| *n >= first)
            .max()
    }

    /// Per QoS, how many messages from `first` on were accepted and have not completed.
    fn unacknowledged(&self, first: u64) -> [usize; 3] {
        let state = self.lock();
        std::array::from_fn(|q| {
            let stream = &state.streams[q];
            stream
                .sent
                .difference(&stream.acked)
                .filter(|n| **n >= first)
                .count()
        })
    }
}

impl State {
    fn received(&self, q: usize, n: u64) -> bool {
        self.streams[q].received.contains_key(&n)
    }
}

struct Demo {
    tally: Arc<Tally>,
    /// The proxy's URL, which the publisher connects to.
    url: String,
    /// The publisher's store.
    store: PathBuf,
    streams_began: Instant,
}

impl Demo {
    /// Starts the publisher process, numbering from `start`.
    fn spawn_publisher(&self, start: u64) -> Result<Publisher> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--publisher")
            .arg(&self.store)
            .arg(&self.url)
            .arg(start.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("the publisher exited at once")?;
        let stdout = child.stdout.take().ok_or("the publisher's stdout")?;
        let tally = Arc::clone(&self.tally);
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tally.record_line(&line);
            }
        });
        Ok(Publisher {
            first: start,
            stdin: child.stdin.take(),
            child,
            reader,
            pid,
        })
    }

    /// Kills the publisher with SIGKILL, says what its store holds, starts a new one on the
    /// store and waits (bounded) until the subscriber has every QoS 1 and 2 message the
    /// killed one accepted. Returns when the new one was started.
    async fn kill_and_restart(&self, publisher: &mut Publisher) -> Result<Instant> {
        let first = publisher.first;
        let (status, next) = publisher.kill(&self.tally).await?;
        let waiting = self.tally.unreceived(first);
        let in_store = self.tally.unacknowledged(first);
        let last = self.tally.highest_sent(first).unwrap_or(first);
        println!(
            "--> pid {} {}; it had accepted messages {first} to {last} on each QoS",
            publisher.pid,
            describe(status),
        );
        println!(
            "    {} QoS 1 and {} QoS 2 of them had no acknowledgement yet: its store keeps them",
            in_store[1], in_store[2]
        );
        println!(
            "    the subscriber is missing {} QoS 1 and {} QoS 2 of them (and {} QoS 0, not stored)",
            waiting[1].len(),
            waiting[2].len(),
            waiting[0].len()
        );
        let restarted = Instant::now();
        *publisher = self.spawn_publisher(next)?;
        println!(
            "--> restarted on the same store: pid {}, new messages numbered from {next}",
            publisher.pid
        );
        let recovered = self
            .progress_until(WAIT, |state| {
                (1..3).all(|q| waiting[q].iter().all(|n| state.received(q, *n)))
            })
            .await;
        if recovered {
            println!(
                "--> {:.2} s after the restart the subscriber has every QoS 1 and 2 message the",
                restarted.elapsed().as_secs_f64(),
            );
            println!("    killed process accepted");
        } else {
            println!(
                "--> {} s after the restart, messages the killed process accepted are still missing",
                WAIT.as_secs()
            );
        }
        Ok(restarted)
    }

    /// Lets the streams run for `duration`, printing the counts.
    async fn stream_for(&self, duration: Duration) {
        self.progress_until(duration, |_| false).await;
    }

    /// Prints the counts every [`PROGRESS`] until `done` holds (checked at every change) or
    /// `bound` has passed; returns whether `done` holds.
    async fn progress_until(&self, bound: Duration, mut done: impl FnMut(&State) -> bool) -> bool {
        self.progress_while(bound, async {
            loop {
                let changed = self.tally.changed.notified();
                if done(&self.tally.lock()) {
                    return;
                }
                changed.await;
            }
        })
        .await
        .is_some()
    }

    /// Awaits `work` for at most `bound`, printing the counts every [`PROGRESS`] meanwhile.
    async fn progress_while<T>(&self, bound: Duration, work: impl Future<Output = T>) -> Option<T> {
        let deadline = sleep(bound);
        let mut ticks = interval(PROGRESS);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        ticks.reset(); // the first line after one period, not at once
        tokio::pin!(work, deadline);
        loop {
            tokio::select! {
                result = &mut work => return Some(result),
                () = &mut deadline => return None,
                _ = ticks.tick() => self.print_progress(),
            }
        }
    }

    fn print_progress(&self) {
        let state = self.tally.lock();
        let counts: Vec<String> = state
            .streams
            .iter()
            .enumerate()
            .map(|(q, s)| {
                format!(
                    "QoS{q} {:>5}/{:>5}/{:>5}",
                    s.sent.len(),
                    s.acked.len(),
                    s.received.len()
                )
            })
            .collect();
        println!(
            "  {:>5.1}s  {}",
            self.streams_began.elapsed().as_secs_f64(),
            counts.join("   ")
        );
    }

    /// The final table; returns whether the promise held.
    fn report(&self, publishing: Duration, total: Duration) -> bool {
        let state = self.tally.lock();
        let seconds = publishing.as_secs_f64();
        println!();
        println!(
            "==> result: {seconds:.1} s of publishing through 3 cuts, 2 SIGKILLs and an outage"
        );
        println!();
        println!(
            "    QoS    sent   acked  received  duplicated  lost                    msg/s  order"
        );
        let mut passed = true;
        let mut notes = Vec::new();
        for (q, stream) in state.streams.iter().enumerate() {
            let sent = stream.sent.len();
            let acked = stream.acked.len();
            let received = stream.received.len();
            let duplicated: u64 = stream
                .received
                .values()
                .map(|c| u64::from(c.saturating_sub(1)))
                .sum();
            let lost = stream
                .sent
                .iter()
                .filter(|n| !stream.received.contains_key(n))
                .count();
            let unannounced = stream
                .received
                .keys()
                .filter(|n| !stream.sent.contains(n))
                .count();
            let lost_text = if q == 0 && lost > 0 {
                format!("{lost} (QoS 0: allowed)")
            } else {
                lost.to_string()
            };
            let order = if stream.late == 0 {
                "in order".to_owned()
            } else {
                format!("{} late", stream.late)
            };
            println!(
                "    {q:>3}  {sent:>6}  {acked:>6}  {received:>8}  {duplicated:>10}  {lost_text:<21}  {:>6.0}  {order}",
                received as f64 / seconds,
            );
            if q > 0 && lost > 0 {
                passed = false;
                notes.push(format!(
                    "FAIL: {lost} QoS {q} message(s) accepted by publish never arrived"
                ));
            }
            if q == 2 && duplicated > 0 {
                passed = false;
                notes.push(format!("FAIL: {duplicated} QoS 2 message(s) arrived twice"));
            }
            if q > 0 && sent > acked {
                notes.push(format!(
                    "QoS {q}: {} message(s) accepted by a killed process were resent from the store by\n           \
                     its successor, which has no handle to report their acknowledgement",
                    sent - acked
                ));
            }
            if q == 0 && sent > acked {
                notes.push(format!(
                    "QoS 0: {} message(s) were still queued in memory when a publisher was killed",
                    sent - acked
                ));
            }
            if unannounced > 0 {
                notes.push(format!(
                    "QoS {q}: {unannounced} message(s) were committed as the publisher was killed, before it\n           \
                     could report them accepted; its successor delivered them"
                ));
            }
            if stream.refused > 0 {
                notes.push(format!(
                    "QoS {q}: publish refused or failed {} time(s)",
                    stream.refused
                ));
            }
            if stream.unexpected > 0 {
                notes.push(format!(
                    "QoS {q}: {} payload(s) that are not numbers",
                    stream.unexpected
                ));
            }
        }
        drop(state);
        println!();
        println!("    sent      accepted by publish (QoS 1 and 2: committed to the store)");
        println!("    acked     completed: PUBACK (QoS 1), PUBCOMP (QoS 2), written to the socket (QoS 0)");
        println!(
            "    received  distinct messages at the subscriber; duplicated: extra copies of them"
        );
        println!("    lost      sent and never received");
        println!("    msg/s     received per second of publishing");
        println!("    order     in publish order, or how many arrived after a higher number");
        if !notes.is_empty() {
            println!();
        }
        for note in notes {
            println!("    {note}");
        }
        println!();
        if passed {
            println!(
                "==> PASS: no QoS 1 or 2 message lost, no QoS 2 message duplicated ({:.1} s in all)",
                total.as_secs_f64()
            );
        } else {
            println!("==> FAIL ({:.1} s in all)", total.as_secs_f64());
        }
        passed
    }
}

/// The publisher process, as the demo holds it.
struct Publisher {
    child: Child,
    /// Closing it asks the publisher to stop.
    stdin: Option<ChildStdin>,
    /// Reads its stdout into the tally; ends with it.
    reader: JoinHandle<()>,
    pid: u32,
    /// The first number it publishes.
    first: u64,
}

impl Publisher {
    /// SIGKILL; returns once the process is reaped and its last lines read, with its exit
    /// status and the number a new publisher should start from.
    async fn kill(&mut self, tally: &Tally) -> Result<(ExitStatus, u64)> {
        timeout(WAIT, self.child.kill())
            .await
            .map_err(|_| "the killed publisher was not reaped in time")??;
        let status = self.child.wait().await?;
        timeout(WAIT, &mut self.reader)
            .await
            .map_err(|_| "the killed publisher's stdout did not end")??;
        Ok((status, tally.lock().next))
    }

    /// Closes its stdin, which asks it to stop, and waits for it to exit.
    async fn stop(mut self, demo: &Demo) -> Result<ExitStatus> {
        drop(self.stdin.take());
        let status = demo
            .progress_while(WAIT * 2, self.child.wait())
            .await
            .ok_or("the publisher did not exit in time")??;
        timeout(WAIT, &mut self.reader)
            .await
            .map_err(|_| "the publisher's stdout did not end")??;
        Ok(status)
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (_, Some(9)) => "was killed by SIGKILL".to_owned(),
        (_, Some(signal)) => format!("was killed by signal {signal}"),
        (Some(code), _) => format!("exit status {code}"),
        _ => status.to_string(),
    }
}

// ----------------------------------------------------------------------------------------
// The publisher process.

fn publisher_main(args: &[String]) -> Result<ExitCode> {
    let [dir, url, start] = args else {
        return Err("usage: demo --publisher STORE_DIR URL FIRST_NUMBER".into());
    };
    let start: u64 = start.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(publish(Path::new(dir), url, start))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes one line for the demo. When the demo is gone there is nobody to publish for.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out
        .write_fmt(format_args!("{line}\n"))
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(3);
    }
}

async fn publish(dir: &Path, url: &str, start: u64) -> Result<()> {
    let options = options(url, "haka-demo-publisher")?
        .clean_session(false)
        .store(StoreOptions::Directory {
            path: dir.to_owned(),
            // Each commit is handed to the operating system: it survives SIGKILL.
            durability: Durability::Flush,
        });
    let (client, _messages) = Client::start(options).await?;
    tokio::spawn(narrate(client.events()));

    // The demo closes our stdin to stop us.
    let mut stop = tokio::spawn(async {
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0; 64];
        while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
    });

    let mut completions = JoinSet::new();
    let mut ticks = interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut n = start;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = ticks.tick() => {}
        }
        // Announced before any of them is handed to publish: a restart starts past them.
        say(format_args!("next {}", n + PER_TICK));
        for _ in 0..PER_TICK {
            let payload = n.to_string();
            // The three share one commit of the store; each topic keeps its own order.
            let results = tokio::join!(
                client.publish(TOPICS[0], LEVELS[0], false, payload.clone()),
                client.publish(TOPICS[1], LEVELS[1], false, payload.clone()),
                client.publish(TOPICS[2], LEVELS[2], false, payload),
            );
            for (q, result) in [results.0, results.1, results.2].into_iter().enumerate() {
                match result {
                    Ok(handle) => {
                        say(format_args!("accepted {q} {n}"));
                        completions.spawn(async move {
                            match handle.await {
                                Ok(()) => say(format_args!("completed {q} {n}")),
                                Err(error) => say(format_args!("failed {q} {n} {error}")),
                            }
                        });
                    }
                    Err(error) => say(format_args!("refused {q} {n} {error}")),
                }
            }
            n += 1;
        }
        while completions.try_join_next().is_some() {}
    }

    say(format_args!(
        "event stopping: waiting for {} acknowledgement(s)",
        completions.len()
    ));
    let drained = timeout(WAIT, async {
        while completions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        say(format_args!(
            "event {} message(s) not acknowledged in time: they stay in the store",
            completions.len()
        ));
    }
    timeout(WAIT, client.disconnect())
        .await
        .map_err(|_| "DISCONNECT did not complete in time")??;
    say(format_args!(
        "event disconnected, store committed; numbers {start}..{n}"
    ));
    Ok(())
}

/// Reports the connection's life as `event` lines. While the broker is out of reach, only
/// attempts 1, 2, 4, 8, ... are reported: enough to see the backoff grow.
async fn narrate(mut events: tokio::sync::broadcast::Receiver<Event>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut connected = false;
    let mut attempts = 0;
    loop {
        match events.recv().await {
            Ok(Event::Connected { session_present }) => {
                let session = if session_present {
                    "the broker resumed the session"
                } else {
                    "a new session"
                };
                if attempts > 1 {
                    say(format_args!(
                        "event connected after {attempts} attempts ({session})"
                    ));
                } else {
                    say(format_args!("event connected ({session})"));
                }
                connected = true;
                attempts = 0;
            }
            Ok(Event::Disconnected { reason }) if connected => {
                say(format_args!("event {reason}"));
                connected = false;
            }
            Ok(Event::Reconnecting { attempt, delay }) => {
                attempts = attempt;
                if attempt.is_power_of_two() {
                    say(format_args!(
                        "event reconnecting in {} ms (attempt {attempt})",
                        delay.as_millis()
                    ));
                }
            }
            Ok(Event::MessageRefused { id }) => {
                say(format_args!("event the broker refused message {id:?}"));
            }
            Ok(Event::Stopped) | Err(RecvError::Closed) => return,
            // Failed attempts show in the attempt count.
            Ok(_) | Err(RecvError::Lagged(_)) => {}
        }
    }
}
