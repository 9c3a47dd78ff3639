//! `SIGKILL` of a publishing process at random points never loses a message that
//! [`Session::commit`] confirmed to the application as stored.
//!
//! The parent test runs this test binary again as a child that executes only
//! [`session_crash_child`]: a session on a [`FileStore`] (flushing to the OS, which survives
//! `SIGKILL`), talking to an in-process broker that acknowledges some messages and leaves
//! others in flight. The child prints `stored <id> <payload>` for each message once
//! `commit` confirmed it, and `done <id>` when its completion event is polled (before the
//! removal is committed). The parent kills the child after a random number of lines, reopens
//! the store and checks that every message reported stored and not reported done is there,
//! with its payload intact. The next child resumes the same store, resending what is in
//! flight.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::{
    collections::BTreeMap,
    env,
    io::{BufRead, BufReader, Write},
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::BytesMut;
use haka_codec::{Codec, MqttString, QoS, TopicName};
use haka_session::{
    store::{Durability, FileStoreOptions},
    Config, Event, FileStore, MessageId, Session, Store,
};
use haka_testkit::Broker;

const CHILD_DIR: &str = "HAKA_SESSION_CRASH_CHILD";
const SEED: &str = "HAKA_SESSION_CRASH_SEED";
const ROUNDS: usize = 25;
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

fn options() -> FileStoreOptions {
    FileStoreOptions::new()
        .durability(Durability::Flush)
        .compact_min_bytes(32 << 10)
}

fn config() -> Config {
    Config::new(MqttString::new("crash").unwrap()).clean_session(false)
}

fn payload(id: MessageId) -> String {
    format!(
        "payload-of-{}-{}",
        id.get(),
        "x".repeat((id.get() % 97) as usize)
    )
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn sigkill_of_a_publisher_loses_no_stored_message() {
    if env::var_os(CHILD_DIR).is_some() {
        return;
    }
    let seed = env::var(SEED).map_or_else(
        |_| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |s| s.parse().unwrap(),
    );
    eprintln!("session crash test seed: {SEED}={seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    // Messages the children reported stored and not done: they must survive.
    let mut owed: BTreeMap<u64, String> = BTreeMap::new();
    let mut total_stored = 0;
    let mut total_done = 0;

    for round in 0..ROUNDS {
        let lines_before_kill = 1 + rng.below(400);
        let mut child = Command::new(env::current_exe().unwrap())
            .args([
                "session_crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(SEED, (seed + round as u64).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, reports) = mpsc::channel::<String>();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut received = Vec::new();
        for _ in 0..lines_before_kill {
            match reports.recv_timeout(LINE_TIMEOUT) {
                Ok(line) => received.push(line),
                Err(error) => {
                    let _ = child.kill();
                    panic!("round {round}: the child went quiet: {error}");
                }
            }
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "round {round}: {status}");
        reader.join().unwrap();
        received.extend(reports.try_iter());

        for line in received {
            let mut words = line.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("stored"), Some(id), Some(payload)) => {
                    owed.insert(id.parse().unwrap(), payload.to_owned());
                    total_stored += 1;
                }
                (Some("done"), Some(id), None) => {
                    owed.remove(&id.parse().unwrap());
                    total_done += 1;
                }
                _ => {}
            }
        }

        let mut store = FileStore::open(dir.path(), options())
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        let recovered = store.recover().unwrap();
        let held: BTreeMap<u64, &[u8]> = recovered
            .messages
            .iter()
            .map(|m| (m.id.get(), &m.payload[..]))
            .collect();
        for (id, payload) in &owed {
            match held.get(id) {
                Some(stored) => assert_eq!(
                    *stored,
                    payload.as_bytes(),
                    "round {round}: message {id} corrupted"
                ),
                None => panic!("round {round}: message {id} was stored, not done, and is lost"),
            }
        }
    }
    eprintln!("session crash test: {ROUNDS} kills, {total_stored} stored, {total_done} done");
    assert!(total_done > 0 && total_stored > total_done);
}

/// The child: publishes and completes messages until killed. Does nothing in a normal run.
#[test]
fn session_crash_child() {
    let Some(dir) = env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let mut rng = Rng(env::var(SEED).unwrap().parse().unwrap());
    let store = FileStore::open(&dir, options()).unwrap();
    let mut session = Session::new(config(), store).unwrap();
    let mut broker = Broker::new();
    let codec = Codec::new();
    let topic = TopicName::new("crash").unwrap();
    let mut stdout = std::io::stdout().lock();
    let now = Instant::now();
    let mut out = BytesMut::new();
    let mut input = BytesMut::new();

    session.handle_connected(now);
    for _ in 0..1_000_000 {
        // Publish a few; report them once committed.
        let mut batch = Vec::new();
        for _ in 0..1 + rng.below(8) {
            let qos = if rng.below(2) == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            // The payload follows from the identity the message will get.
            let id = session.next_message_id();
            let accepted = session
                .publish(topic.clone(), qos, false, payload(id))
                .unwrap();
            assert_eq!(accepted, id);
            batch.push(id);
        }
        session.commit().unwrap();
        for id in batch {
            writeln!(stdout, "stored {} {}", id.get(), payload(id)).unwrap();
        }
        stdout.flush().unwrap();

        // The broker acknowledges sometimes, and sometimes not at all this round.
        broker.acknowledge = rng.below(3) != 0;
        for _ in 0..4 {
            out.clear();
            while session.poll_transmit(now, &mut out) > 0 {}
            broker.handle_bytes(&out).unwrap();
            for packet in broker.take_outbox() {
                codec.encode(&packet, &mut input).unwrap();
            }
            session.handle_bytes(now, &mut input);
            // Completions are reported before anything else can commit their removal (the
            // next transmit or publish batch), so a message missing from the store after a
            // kill was always reported done.
            while let Some(event) = session.poll_event() {
                if let Event::PublishCompleted { id, .. } = event {
                    writeln!(stdout, "done {}", id.get()).unwrap();
                }
            }
            stdout.flush().unwrap();
        }
    }
}
