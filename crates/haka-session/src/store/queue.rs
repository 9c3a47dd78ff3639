//! The live outgoing messages of a store, in [`MessageId`] order.
//!
//! Messages arrive with increasing identities and nearly always leave in the order they came
//! (brokers acknowledge in the order they received, though 3.1.1 asks that only of clients),
//! so a deque kept in identity order serves the common change in constant time, where a
//! search tree walks nodes and allocates on inserts. A message that leaves out of order
//! leaves a hole, dropped once the messages before it are gone; lookups elsewhere than at the
//! front are a binary search.

use std::collections::VecDeque;

use super::StoredMessage;
use crate::MessageId;

/// Stored messages by identity; identities only increase from one insert to the next.
#[derive(Debug, Clone, Default)]
pub(crate) struct Queue {
    /// In increasing identity order; `None` for a message removed while older ones stayed.
    /// The first and last entries are never holes.
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

    /// Adds `message`, whose identity must be above every identity held.
    pub(crate) fn push(&mut self, message: StoredMessage) {
        debug_assert!(self.slots.back().is_none_or(|(last, _)| *last < message.id));
        self.slots.push_back((message.id, Some(message)));
        self.len += 1;
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

    /// Message `id`.
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
    use haka_codec::{QoS, TopicName};
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
        /// Remove the live message at this index (modulo their number), or a missing one.
        Remove(usize),
        RemoveMissing(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1..4u64).prop_map(Op::Push),
            3 => any::<usize>().prop_map(Op::Remove),
            1 => any::<u64>().prop_map(Op::RemoveMissing),
        ]
    }

    proptest! {
        /// Whatever the order of removals, it holds what a map would hold.
        #[test]
        fn it_agrees_with_a_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut queue = Queue::default();
            let mut map = BTreeMap::new();
            let mut next = 1;
            for op in ops {
                match op {
                    Op::Push(gap) => {
                        next += gap;
                        queue.push(message(next));
                        map.insert(next, message(next));
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
                // Holes never sit at either end, so the slots stay bounded by what is live.
                prop_assert!(queue.slots.front().is_none_or(|(_, s)| s.is_some()));
                prop_assert!(queue.slots.back().is_none_or(|(_, s)| s.is_some()));
            }
        }
    }
}
