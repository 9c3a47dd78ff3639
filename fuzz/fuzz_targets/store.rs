//! The file store against damage to its files: a store is driven through arbitrary changes,
//! commits and compactions (against `MemoryStore` as the model), its two log files are then
//! damaged (bytes flipped, zeroed, cut or appended, a file emptied), and it is opened again.
//! Opening never panics, and it either reports the damage (`Corrupt`, `UnsupportedFormat`) or
//! recovers a state that was committed: never one that was not.

#![no_main]

use std::fs;

use arbitrary::Arbitrary;
use bytes::Bytes;
use haka_codec::{PacketId, QoS, TopicName};
use haka_session::{
    store::{Durability, FileStoreOptions, Recovered, Stage, StoredMessage},
    FileStore, MemoryStore, MessageId, Store, StoreError,
};
use libfuzzer_sys::fuzz_target;

const LOG_FILES: [&str; 2] = ["queue.0.log", "queue.1.log"];

#[derive(Debug, Arbitrary)]
enum Op {
    Insert { len: u8, qos2: bool },
    Assign { pick: u8, packet_id: u8 },
    Release { pick: u8 },
    Remove { pick: u8 },
    InsertInbound(u8),
    RemoveInbound(u8),
    Commit,
}

#[derive(Debug, Arbitrary)]
enum Damage {
    Flip { second: bool, at: u16, bits: u8 },
    Zero { second: bool, at: u16, len: u8 },
    Cut { second: bool, at: u16 },
    Append { second: bool, bytes: Vec<u8> },
    Empty { second: bool },
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// Compaction threshold in units of 64 bytes: small, so that the files take turns.
    compact: u8,
    ops: Vec<Op>,
    damage: Vec<Damage>,
}

fn pid(n: u8) -> PacketId {
    PacketId::new(u16::from(n).max(1)).expect("non-zero")
}

/// The identity `pick` chooses among the model's messages, or one it does not hold.
fn pick(model: &mut MemoryStore, pick: u8) -> MessageId {
    let messages = model.recover().expect("the memory store recovers").messages;
    if messages.is_empty() {
        MessageId::new(u64::from(pick) % 4)
    } else {
        messages[usize::from(pick) % messages.len()].id
    }
}

fuzz_target!(|input: Input| {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = FileStoreOptions::new()
        .durability(Durability::Flush)
        .compact_min_bytes(u64::from(input.compact) * 64);
    let mut store = FileStore::open(dir.path(), options).expect("a new store opens");
    let mut model = MemoryStore::new();
    let mut committed: Vec<Recovered> = vec![Recovered::default()];
    for op in input.ops.into_iter().take(200) {
        let (file, memory) = match op {
            Op::Insert { len, qos2 } => {
                let id = model.recover().expect("recover").next_message_id;
                let message = StoredMessage {
                    id,
                    qos: if qos2 { QoS::ExactlyOnce } else { QoS::AtLeastOnce },
                    retain: len % 3 == 0,
                    topic: TopicName::new(format!("t/{}", len % 4)).expect("valid topic"),
                    payload: Bytes::from(vec![len; usize::from(len)]),
                    stage: Stage::Queued,
                };
                (store.insert(message.clone()), model.insert(message))
            }
            Op::Assign { pick: p, packet_id } => {
                let id = pick(&mut model, p);
                (store.assign(id, pid(packet_id)), model.assign(id, pid(packet_id)))
            }
            Op::Release { pick: p } => {
                let id = pick(&mut model, p);
                (store.release(id), model.release(id))
            }
            Op::Remove { pick: p } => {
                let id = pick(&mut model, p);
                (store.remove(id), model.remove(id))
            }
            Op::InsertInbound(n) => (store.insert_inbound(pid(n)), model.insert_inbound(pid(n))),
            Op::RemoveInbound(n) => (store.remove_inbound(pid(n)), model.remove_inbound(pid(n))),
            Op::Commit => {
                store.commit().expect("a commit to a healthy disk succeeds");
                committed.push(model.recover().expect("recover"));
                continue;
            }
        };
        assert_eq!(file.is_ok(), memory.is_ok(), "{file:?} / {memory:?}");
    }
    drop(store);

    for damage in input.damage.into_iter().take(8) {
        let (second, apply): (bool, Box<dyn FnOnce(&mut Vec<u8>)>) = match damage {
            Damage::Flip { second, at, bits } => (
                second,
                Box::new(move |bytes: &mut Vec<u8>| {
                    if !bytes.is_empty() {
                        let at = usize::from(at) % bytes.len();
                        bytes[at] ^= bits.max(1);
                    }
                }),
            ),
            Damage::Zero { second, at, len } => (
                second,
                Box::new(move |bytes: &mut Vec<u8>| {
                    let at = usize::from(at).min(bytes.len());
                    let end = (at + usize::from(len)).min(bytes.len());
                    bytes[at..end].fill(0);
                }),
            ),
            Damage::Cut { second, at } => (
                second,
                Box::new(move |bytes: &mut Vec<u8>| bytes.truncate(usize::from(at))),
            ),
            Damage::Append { second, bytes: tail } => (
                second,
                Box::new(move |bytes: &mut Vec<u8>| bytes.extend_from_slice(&tail)),
            ),
            Damage::Empty { second } => (second, Box::new(|bytes: &mut Vec<u8>| bytes.clear())),
        };
        let path = dir.path().join(LOG_FILES[usize::from(second)]);
        let mut bytes = fs::read(&path).unwrap_or_default();
        apply(&mut bytes);
        fs::write(&path, &bytes).expect("write the damaged file");
    }
    match FileStore::open(dir.path(), options) {
        Ok(mut store) => {
            let recovered = store.recover().expect("recover");
            assert!(
                committed.contains(&recovered),
                "a state that was never committed: {recovered:?}"
            );
        }
        Err(StoreError::Corrupt { .. } | StoreError::UnsupportedFormat) => {}
        Err(other) => panic!("opening a damaged store: {other:?}"),
    }
});
