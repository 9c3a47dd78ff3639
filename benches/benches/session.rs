//! The session alone, with no I/O: publish -> transmit -> acknowledge cycles for QoS 1 and
//! QoS 2, with the memory store and the durable file store (flush to the OS, and fsync).
//!
//! One iteration publishes a batch of messages (1,000 in flight at once, or 1 at a time),
//! transmits them, feeds the broker's acknowledgements back as bytes (PUBACK; or PUBREC,
//! then the PUBRELs are transmitted, then PUBCOMP) and polls every event. Throughput is in
//! messages. The acknowledgements are written by hand from the predictable packet
//! identifiers (the session hands them out round-robin), so building them costs the same
//! for every store.
//!
//! Run with `cargo bench -p haka-benches --bench session`.

use std::{hint::black_box, num::NonZeroU16, time::Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use haka_codec::{ConnAck, MqttString, Packet, QoS, TopicName};
use haka_session::{
    store::{Durability, FileStoreOptions},
    Config, Event, FileStore, MemoryStore, Session, Store,
};

const PAYLOAD: usize = 64;

/// A connected session and the packet identifier it hands out next.
struct Bench<S: Store> {
    session: Session<S>,
    next_id: u16,
    out: BytesMut,
    acks: BytesMut,
    topic: TopicName,
    payload: bytes::Bytes,
}

impl<S: Store> Bench<S> {
    fn new(store: S, window: u16) -> Self {
        let config = Config::new(MqttString::new("bench").expect("valid"))
            .clean_session(false)
            .max_inflight(NonZeroU16::new(window).expect("non-zero"));
        let mut session = Session::new(config, store).expect("a session");
        let now = Instant::now();
        session.handle_connected(now);
        let mut out = BytesMut::new();
        while session.poll_transmit(now, &mut out) > 0 {}
        session.handle_packet(now, Packet::ConnAck(ConnAck::accepted(false)));
        while session.poll_event().is_some() {}
        Self {
            session,
            next_id: 1,
            out,
            acks: BytesMut::new(),
            topic: TopicName::new("bench/session").expect("valid"),
            payload: vec![0x5a; PAYLOAD].into(),
        }
    }

    /// The next `n` packet identifiers, as the session will assign them.
    fn ids(&mut self, n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| {
                let id = self.next_id;
                self.next_id = self.next_id.checked_add(1).unwrap_or(1);
                id
            })
            .collect()
    }

    fn acks(&mut self, first_byte: u8, ids: &[u16]) -> BytesMut {
        self.acks.clear();
        for id in ids {
            self.acks.extend_from_slice(&[first_byte, 2]);
            self.acks.extend_from_slice(&id.to_be_bytes());
        }
        self.acks.split()
    }

    fn transmit(&mut self, now: Instant) {
        loop {
            self.out.clear();
            if self.session.poll_transmit(now, &mut self.out) == 0 {
                break;
            }
            black_box(&self.out);
        }
    }

    fn events(&mut self) -> usize {
        let mut completed = 0;
        while let Some(event) = self.session.poll_event() {
            if let Event::PublishCompleted { .. } = event {
                completed += 1;
            }
        }
        completed
    }

    /// Publishes `n` messages and completes them all.
    fn cycle(&mut self, qos: QoS, n: usize) {
        let now = Instant::now();
        for _ in 0..n {
            self.session
                .publish(self.topic.clone(), qos, false, self.payload.clone())
                .expect("accepted");
        }
        self.transmit(now);
        let ids = self.ids(n);
        if qos == QoS::ExactlyOnce {
            let mut pubrecs = self.acks(0x50, &ids);
            self.session.handle_bytes(now, &mut pubrecs);
            self.events();
            self.transmit(now);
            let mut pubcomps = self.acks(0x70, &ids);
            self.session.handle_bytes(now, &mut pubcomps);
        } else {
            let mut pubacks = self.acks(0x40, &ids);
            self.session.handle_bytes(now, &mut pubacks);
        }
        assert_eq!(self.events(), n, "every message completed");
    }
}

fn group<S: Store>(c: &mut Criterion, name: &str, mut store: impl FnMut() -> S) {
    let mut group = c.benchmark_group(format!("session/{name}"));
    for (qos, label) in [(QoS::AtLeastOnce, "qos1"), (QoS::ExactlyOnce, "qos2")] {
        for batch in [1usize, 1_000] {
            group.throughput(Throughput::Elements(batch as u64));
            let mut bench = Bench::new(store(), 1_000);
            group.bench_function(format!("{label}/inflight_{batch}"), |b| {
                b.iter(|| bench.cycle(qos, batch));
            });
        }
    }
    group.finish();
}

fn sessions(c: &mut Criterion) {
    group(c, "memory", MemoryStore::new);
    let dirs: Vec<tempfile::TempDir> = Vec::new();
    let dirs = std::cell::RefCell::new(dirs);
    for (durability, name) in [
        (Durability::Flush, "file_flush"),
        (Durability::Fsync, "file_fsync"),
    ] {
        group(c, name, || {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = FileStore::open(dir.path(), FileStoreOptions::new().durability(durability))
                .expect("a store");
            dirs.borrow_mut().push(dir);
            store
        });
    }
}

criterion_group!(benches, sessions);
criterion_main!(benches);
