//! The live outgoing messages of a store, in [`MessageId`] order.
//!
//! Messages arrive with increasing identities and nearly always leave in the order they came
//! (brokers acknowledge in the order they received, though 3.1.1 asks that only of clients),
//! so a deque kept in identity order serves the common change in constant time, where a
//! search tree walks nodes and allocates on inserts. A message that leaves out of order
//! leaves a hole, dropped once the messages before it are gone, or sooner when holes
//! outnumber messages (a message whose acknowledgement was lost stays until the next
//! connection, while every later one completes); lookups away from the expected slot are a
//! binary search.

use std::collections::VecDeque;

use super::StoredMessage;
use crate::MessageId;

/// Holes allowed beyond as many as there are messages, so that a small queue is not
/// compacted at every removal.
const HOLE_SLACK: usize = 32;

/// Capacity kept however empty the queue gets, in slots.
const MIN_CAPACITY: usize = 1024;

/// Stored messages by identity, usually inserted in increasing identity order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Queue {
    /// In increasing identity order; `None` for a message removed while older ones stayed.
    /// The first and last entries are never holes, and there are at most `len + HOLE_SLACK`
    /// holes.
    slots: VecDeque<(MessageId, Option<StoredMessage>)>,
    /// How many slots hold a message.
    len: usize,
}

impl Queue {
    /// How many messages it holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no message.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `message`, or replaces the one of the same identity. Identities above every one
    /// held (what the store accepts from a session) go to the back at once; any other, which
    /// only a forged log or a wrapped identity could bring, goes to its place in order.
    pub(crate) fn insert(&mut self, message: StoredMessage) {
        let id = message.id;
        if self.slots.back().is_none_or(|(last, _)| *last < id) {
            self.slots.push_back((id, Some(message)));
            self.len += 1;
            return;
        }
        match self.slots.binary_search_by_key(&id, |(id, _)| *id) {
            Ok(at) => {
                if self.slots[at].1.replace(message).is_none() {
                    self.len += 1;
                }
            }
            Err(at) => {
                self.slots.insert(at, (id, Some(message)));
                self.len += 1;
            }
        }
    }

    /// Where message `id` is in `slots`, hole or not.
    fn position(&self, id: MessageId) -> Option<usize> {
        let first = self.slots.front()?.0;
        // Identities are usually consecutive, which puts `id` this far from the oldest.
        // Below the oldest, it is not held.
        let distance = id.get().checked_sub(first.get())?;
        if let Ok(guess) = usize::try_from(distance) {
            if self.slots.get(guess).is_some_and(|(at, _)| *at == id) {
                return Some(guess);
            }
        }
        self.slots.binary_search_by_key(&id, |(id, _)| *id).ok()
    }

    /// Message `id` (the stores change or take messages; the tests look).
    #[cfg(test)]
    pub(crate) fn get(&self, id: MessageId) -> Option<&StoredMessage> {
        self.slots.get(self.position(id)?)?.1.as_ref()
    }

    /// Message `id`, to change its stage.
    pub(crate) fn get_mut(&mut self, id: MessageId) -> Option<&mut StoredMessage> {
        let at = self.position(id)?;
        self.slots.get_mut(at)?.1.as_mut()
    }

    /// Removes message `id` and returns it.
    pub(crate) fn remove(&mut self, id: MessageId) -> Option<StoredMessage> {
        let at = self.position(id)?;
        let message = self.slots.get_mut(at)?.1.take()?;
        self.len -= 1;
        // Keep both ends on messages: drop the holes the removal exposed.
        while self.slots.front().is_some_and(|(_, slot)| slot.is_none()) {
            self.slots.pop_front();
        }
        while self.slots.back().is_some_and(|(_, slot)| slot.is_none()) {
            self.slots.pop_back();
        }
        // Memory follows what is held, not the span of identities: past as many holes as
        // messages (and the slack), the holes go. Each compaction removes at least as many
        // holes as the removals since the last one made, so it costs O(1) per removal.
        if self.slots.len() > 2 * self.len + HOLE_SLACK {
            self.slots.retain(|(_, slot)| slot.is_some());
        }
        // And after a burst, the room it took goes back, halving at most as often as the
        // queue halves.
        if self.slots.capacity() > MIN_CAPACITY.max(4 * self.slots.len()) {
            self.slots.shrink_to(MIN_CAPACITY.max(2 * self.slots.len()));
        }
        Some(message)
    }

    /// The messages, in identity order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &StoredMessage> {
        self.slots.iter().filter_map(|(_, slot)| slot.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use haka_codec::{PacketId, QoS, TopicName};
    use proptest::prelude::*;

    use super::*;
    use crate::store::Stage;

    fn message(id: u64) -> StoredMessage {
        StoredMessage {
            id: MessageId::new(id),
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new("t").expect("valid"),
            payload: Bytes::new(),
            stage: Stage::Queued,
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Insert the next message, this far above the last identity.
        Push(u64),
        /// Insert a message at any identity (below the last, or one already held).
        InsertAnywhere(u64),
        /// Remove the live message at this index (modulo their number), or a missing one.
        Remove(usize),
        RemoveMissing(u64),
        /// Change the stage of the live message at this index (modulo their number).
        Assign(usize, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1..4u64).prop_map(Op::Push),
            1 => (0..64u64).prop_map(Op::InsertAnywhere),
            4 => any::<usize>().prop_map(Op::Remove),
            1 => (0..64u64).prop_map(Op::RemoveMissing),
            1 => (any::<usize>(), 1..=u16::MAX).prop_map(|(i, p)| Op::Assign(i, p)),
        ]
    }

    #[test]
    fn a_message_that_stays_does_not_keep_the_holes_behind_it() {
        let mut queue = Queue::default();
        // Message 1 is never acknowledged; each later one completes while the next is held,
        // so each leaves a hole between 1 and the newest.
        queue.insert(message(1));
        queue.insert(message(2));
        for id in 3..100_000 {
            queue.insert(message(id));
            assert!(queue.remove(MessageId::new(id - 1)).is_some());
            assert!(queue.slots.len() <= 2 * queue.len() + HOLE_SLACK);
        }
        assert_eq!(queue.len(), 2);
        assert!(queue.get(MessageId::new(1)).is_some());
        assert!(queue.get(MessageId::new(99_999)).is_some());
    }

    #[test]
    fn the_room_of_a_burst_goes_back() {
        let mut queue = Queue::default();
        for id in 1..=100_000 {
            queue.insert(message(id));
        }
        for id in 1..=100_000 {
            assert!(queue.remove(MessageId::new(id)).is_some());
        }
        assert!(queue.is_empty());
        assert!(queue.slots.capacity() <= 4 * MIN_CAPACITY);
    }

    proptest! {
        /// Whatever the order of inserts and removals, it holds what a map would hold.
        #[test]
        fn it_agrees_with_a_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut queue = Queue::default();
            let mut map = BTreeMap::new();
            let mut next = 1;
            for op in ops {
                match op {
                    Op::Push(gap) => {
                        next += gap;
                        queue.insert(message(next));
                        map.insert(next, message(next));
                    }
                    Op::InsertAnywhere(id) => {
                        queue.insert(message(id));
                        map.insert(id, message(id));
                        next = next.max(id);
                    }
                    Op::Assign(index, packet_id) => {
                        if map.is_empty() {
                            continue;
                        }
                        let id = *map.keys().nth(index % map.len()).expect("in range");
                        let stage = Stage::Published(PacketId::new(packet_id).expect("non-zero"));
                        queue.get_mut(MessageId::new(id)).expect("held").stage = stage;
                        map.get_mut(&id).expect("held").stage = stage;
                    }
                    Op::Remove(index) => {
                        if map.is_empty() {
                            continue;
                        }
                        let id = *map.keys().nth(index % map.len()).expect("in range");
                        prop_assert_eq!(queue.remove(MessageId::new(id)), map.remove(&id));
                    }
                    Op::RemoveMissing(id) => {
                        let expected = map.remove(&id);
                        prop_assert_eq!(queue.remove(MessageId::new(id)), expected);
                    }
                }
                prop_assert_eq!(queue.len(), map.len());
                prop_assert_eq!(queue.is_empty(), map.is_empty());
                prop_assert!(queue.values().eq(map.values()));
                for id in next.saturating_sub(8)..=next + 1 {
                    let id_ = MessageId::new(id);
                    prop_assert_eq!(queue.get(id_), map.get(&id));
                }
                // Holes never sit at either end, nor outnumber messages beyond the slack.
                prop_assert!(queue.slots.front().is_none_or(|(_, s)| s.is_some()));
                prop_assert!(queue.slots.back().is_none_or(|(_, s)| s.is_some()));
                prop_assert!(queue.slots.len() <= 2 * queue.len() + HOLE_SLACK);
                prop_assert!(queue.slots.iter().zip(queue.slots.iter().skip(1)).all(|(a, b)| a.0 < b.0));
            }
        }
    }
}
