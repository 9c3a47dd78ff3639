//! `SIGKILL` at random points never loses a committed change of a [`FileStore`].
//!
//! The parent test, [`sigkill_never_loses_a_committed_change`], runs this test binary again
//! as a child that executes only [`crash_child`]. The child opens the store and runs a
//! deterministic workload, in batches: each batch is a few inserts, assigns, releases and
//! removes of messages and changes of inbound identifiers, then a commit, after which the
//! child prints the number of the last committed batch. The parent kills the child with
//! `SIGKILL` after a random number of those lines, reopens the store and checks that it holds
//! exactly the state after the last reported batch, or after the one following it (committed,
//! but killed before it was reported). The next child continues from there, in the same
//! directory, with compactions along the way.
//!
//! The workload and the kill points follow from a seed, printed by the test; run again with
//! `HAKA_CRASH_SEED=<seed>` to use the same one.

#![cfg(unix)]

use std::{
    collections::{BTreeMap, BTreeSet},
    env,
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use haka_codec::{PacketId, QoS, TopicName};
use haka_session::{
    store::{Durability, FileStoreOptions, Recovered, Stage, StoredMessage},
    FileStore, MessageId, Store,
};

/// Set in a child: the store's directory.
const CHILD_DIR: &str = "HAKA_CRASH_CHILD";
/// Set in a child: the number of batches already committed in the store.
const CHILD_START: &str = "HAKA_CRASH_START";
/// The seed of the workload and of the kill points.
const SEED: &str = "HAKA_CRASH_SEED";

/// How many children are killed.
const ROUNDS: usize = 60;
/// A child is killed after at most this many reported commits.
const MAX_LINES_BEFORE_KILL: u64 = 60;
/// How long the parent waits for a child's next line before it gives up on it.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// Flush survives `SIGKILL`: the page cache outlives the process. A small compaction
/// threshold makes the children compact often, and be killed while they do.
fn options() -> FileStoreOptions {
    FileStoreOptions::new()
        .durability(Durability::Flush)
        .compact_min_bytes(64 << 10)
}

#[test]
fn sigkill_never_loses_a_committed_change() {
    if env::var_os(CHILD_DIR).is_some() {
        return;
    }
    let seed = match env::var(SEED) {
        Ok(seed) => seed.parse().expect("HAKA_CRASH_SEED is a number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos() as u64,
    };
    eprintln!("crash test seed: {SEED}={seed}");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng::new(seed ^ 0x5eed);
    // The workload as far as the store is known to hold it.
    let mut workload = Workload::new(seed);
    let mut compactions = 0;
    let mut torn_tails = 0;
    let mut unreported = 0;

    for round in 0..ROUNDS {
        let lines_before_kill = 1 + rng.below(MAX_LINES_BEFORE_KILL);
        let mut child = Command::new(env::current_exe().expect("the test binary"))
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_START, workload.batch.to_string())
            .env(SEED, seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");

        // The child's reports, through a channel so that waiting for one is bounded.
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, reports) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(report) = Report::parse(&line) {
                    if lines.send(report).is_err() {
                        break;
                    }
                }
            }
        });

        let mut last = None;
        for _ in 0..lines_before_kill {
            match reports.recv_timeout(LINE_TIMEOUT) {
                Ok(report) => last = Some(report),
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let mut stderr = String::new();
                    if let Some(mut pipe) = child.stderr.take() {
                        let _ = pipe.read_to_string(&mut stderr);
                    }
                    panic!("round {round}: no report from the child ({error}):\n{stderr}");
                }
            }
        }
        child.kill().expect("kill the child");
        let status = child.wait().expect("wait for the child");
        assert_eq!(status.signal(), Some(9), "round {round}: {status}");
        reader.join().expect("the reader thread");
        // What it printed before it died.
        last = reports.try_iter().last().or(last);
        let last = last.expect("at least one report");
        compactions += last.compactions;

        // Committed: every reported batch, and possibly the one after.
        while workload.batch < last.batch {
            workload.run_batch(None);
        }
        let mut next = workload.clone();
        next.run_batch(None);

        let mut store = FileStore::open(dir.path(), options())
            .unwrap_or_else(|error| panic!("round {round}: the store does not open: {error}"));
        if store.recovered_tail_bytes() > 0 {
            torn_tails += 1;
        }
        let recovered = store.recover().expect("recover");
        if recovered == next.expected() {
            // Committed, but killed before it said so.
            workload = next;
            unreported += 1;
        } else if recovered != workload.expected() {
            panic!(
                "round {round}: after batch {} was reported committed, the store holds {}; \
                 expected {} or {}",
                last.batch,
                summary(&recovered),
                summary(&workload.expected()),
                summary(&next.expected()),
            );
        }
    }
    eprintln!(
        "crash test: {ROUNDS} kills, {} batches, {unreported} committed but not reported, \
         {compactions} compactions, {torn_tails} torn tails cut off",
        workload.batch
    );
    assert!(compactions > 0, "the children never compacted");
}

/// The child: runs the workload on the store from the batch after `HAKA_CRASH_START`
/// until it is killed. Does nothing in a normal test run.
#[test]
fn crash_child() {
    let Some(dir) = env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let seed = env::var(SEED)
        .expect("HAKA_CRASH_SEED in a child")
        .parse()
        .expect("a number");
    let start: u64 = env::var(CHILD_START)
        .expect("HAKA_CRASH_START in a child")
        .parse()
        .expect("a number");

    let mut workload = Workload::new(seed);
    while workload.batch < start {
        workload.run_batch(None);
    }
    let mut store = FileStore::open(&dir, options()).expect("the child opens the store");
    assert_eq!(store.recover().expect("recover"), workload.expected());

    let mut stdout = io::stdout().lock();
    // Bounded, in case the parent never kills it.
    for _ in 0..1_000_000 {
        workload.run_batch(Some(&mut store));
        store.commit().expect("commit");
        let report = Report {
            batch: workload.batch,
            compactions: store.compactions(),
        };
        if writeln!(stdout, "{report}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // The parent is gone.
            return;
        }
    }
}

/// A child's line after each commit.
#[derive(Debug, Clone, Copy)]
struct Report {
    /// The last batch committed.
    batch: u64,
    /// Compactions since the child opened the store.
    compactions: u64,
}

impl Report {
    fn parse(line: &str) -> Option<Self> {
        let mut words = line.strip_prefix("committed batch ")?.split(' ');
        let batch = words.next()?.parse().ok()?;
        let compactions = words.nth(1)?.parse().ok()?;
        Some(Self { batch, compactions })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "committed batch {} compactions {}",
            self.batch, self.compactions
        )
    }
}

/// A deterministic sequence of batches of changes, and the state they lead to.
#[derive(Debug, Clone)]
struct Workload {
    seed: u64,
    /// Batches run so far.
    batch: u64,
    messages: BTreeMap<u64, (QoS, Stage)>,
    inbound: BTreeSet<u16>,
    next_id: u64,
    next_packet_id: u16,
}

/// One change, as the workload makes it.
enum Change {
    Insert(StoredMessage),
    Assign(u64, PacketId),
    Release(u64),
    Remove(u64),
    InsertInbound(u16),
    RemoveInbound(u16),
    ClearInbound,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            batch: 0,
            messages: BTreeMap::new(),
            inbound: BTreeSet::new(),
            next_id: MessageId::FIRST.get(),
            next_packet_id: 1,
        }
    }

    /// Runs the next batch: a few changes chosen from the seed, the batch number and the
    /// current state, made to `store` as well when there is one.
    fn run_batch(&mut self, mut store: Option<&mut FileStore>) {
        self.batch += 1;
        let mut rng = Rng::new(self.seed ^ self.batch.wrapping_mul(0xD1B5_4A32_D192_ED03));
        for _ in 0..1 + rng.below(8) {
            let Some(change) = self.choose(&mut rng) else {
                continue;
            };
            if let Some(store) = store.as_deref_mut() {
                apply(store, &change);
            }
            self.apply(change);
        }
    }

    fn choose(&mut self, rng: &mut Rng) -> Option<Change> {
        if self.messages.len() > 40 {
            // Keep the live state small, so that the log is compacted often.
            let (&oldest, _) = self.messages.first_key_value()?;
            return Some(Change::Remove(oldest));
        }
        let pick = |rng: &mut Rng, keep: &dyn Fn(QoS, Stage) -> bool| {
            let ids: Vec<u64> = self
                .messages
                .iter()
                .filter(|(_, &(qos, stage))| keep(qos, stage))
                .map(|(&id, _)| id)
                .collect();
            (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize])
        };
        Some(match rng.below(100) {
            0..40 => {
                let qos = if rng.below(2) == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                Change::Insert(message(self.seed, self.next_id, qos, Stage::Queued))
            }
            40..60 => {
                let id = pick(rng, &|_, stage| stage == Stage::Queued)?;
                let packet_id = PacketId::new(self.next_packet_id).expect("never 0");
                self.next_packet_id = packet_id.next().get();
                Change::Assign(id, packet_id)
            }
            60..70 => Change::Release(pick(rng, &|qos, stage| {
                qos == QoS::ExactlyOnce && matches!(stage, Stage::Published(_))
            })?),
            70..85 => Change::Remove(pick(rng, &|qos, stage| match stage {
                Stage::Queued => false,
                Stage::Published(_) => qos == QoS::AtLeastOnce,
                Stage::Released(_) => true,
            })?),
            85..93 => Change::InsertInbound(1 + rng.below(200) as u16),
            93..99 => {
                let ids: Vec<u16> = self.inbound.iter().copied().collect();
                if ids.is_empty() {
                    return None;
                }
                Change::RemoveInbound(ids[rng.below(ids.len() as u64) as usize])
            }
            _ => Change::ClearInbound,
        })
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Insert(message) => {
                self.next_id = message.id.get() + 1;
                self.messages
                    .insert(message.id.get(), (message.qos, message.stage));
            }
            Change::Assign(id, packet_id) => {
                self.messages.entry(id).and_modify(|(_, stage)| {
                    *stage = Stage::Published(packet_id);
                });
            }
            Change::Release(id) => {
                self.messages.entry(id).and_modify(|(_, stage)| {
                    if let Stage::Published(packet_id) = *stage {
                        *stage = Stage::Released(packet_id);
                    }
                });
            }
            Change::Remove(id) => {
                self.messages.remove(&id);
            }
            Change::InsertInbound(id) => {
                self.inbound.insert(id);
            }
            Change::RemoveInbound(id) => {
                self.inbound.remove(&id);
            }
            Change::ClearInbound => self.inbound.clear(),
        }
    }

    /// What a store that committed every batch run so far holds.
    fn expected(&self) -> Recovered {
        Recovered {
            messages: self
                .messages
                .iter()
                .map(|(&id, &(qos, stage))| message(self.seed, id, qos, stage))
                .collect(),
            inbound: self.inbound.iter().map(|&id| packet_id(id)).collect(),
            next_message_id: MessageId::new(self.next_id),
        }
    }
}

fn apply(store: &mut FileStore, change: &Change) {
    match change {
        Change::Insert(message) => store.insert(message.clone()),
        Change::Assign(id, packet_id) => store.assign(MessageId::new(*id), *packet_id),
        Change::Release(id) => store.release(MessageId::new(*id)),
        Change::Remove(id) => store.remove(MessageId::new(*id)),
        Change::InsertInbound(id) => store.insert_inbound(packet_id(*id)),
        Change::RemoveInbound(id) => store.remove_inbound(packet_id(*id)),
        Change::ClearInbound => store.clear_inbound(),
    }
    .expect("a valid change");
}

fn packet_id(id: u16) -> PacketId {
    PacketId::new(id).expect("never 0")
}

/// Message `id`: everything but its QoS and stage follows from the seed and `id`, so that a
/// recovered message can be checked byte for byte.
fn message(seed: u64, id: u64, qos: QoS, stage: Stage) -> StoredMessage {
    let mut rng = Rng::new(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let len = rng.below(1500) as usize;
    let payload: Bytes = (0..len).map(|_| rng.next() as u8).collect();
    StoredMessage {
        id: MessageId::new(id),
        qos,
        retain: id.is_multiple_of(5),
        topic: TopicName::new(format!("crash/{}", id % 7)).expect("valid topic"),
        payload,
        stage,
    }
}

/// A short description of a state, for a failure message.
fn summary(state: &Recovered) -> String {
    let ids: Vec<String> = state
        .messages
        .iter()
        .map(|m| format!("{}:{:?}", m.id.get(), m.stage))
        .collect();
    format!(
        "[messages {} | inbound {:?} | next {}]",
        ids.join(" "),
        state.inbound,
        state.next_message_id
    )
}

/// xorshift64: enough randomness for a test, without a dependency.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`, which is not 0.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
