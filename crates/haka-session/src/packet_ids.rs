//! [`PacketIds`]: which packet identifiers are in use.

use haka_codec::PacketId;

const WORDS: usize = 65_536 / 64;

/// The packet identifiers in use by outgoing PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets.
///
/// Identifiers are handed out round-robin over the whole range 1 to 65,535, so a freed one is
/// reused as late as possible, and never while in use by any kind of packet.
#[derive(Debug, Clone)]
pub(crate) struct PacketIds {
    used: Box<[u64; WORDS]>,
    in_use: usize,
    /// Where the search for the next free identifier starts.
    next: PacketId,
}

impl PacketIds {
    pub(crate) fn new() -> Self {
        Self {
            used: Box::new([0; WORDS]),
            in_use: 0,
            next: PacketId::MIN,
        }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    fn position(id: PacketId) -> (usize, u64) {
        let id = usize::from(id.get());
        (id / 64, 1 << (id % 64))
    }

    /// Marks `id` as used; false if it already was.
    pub(crate) fn take(&mut self, id: PacketId) -> bool {
        let (word, bit) = Self::position(id);
        if self.used[word] & bit != 0 {
            return false;
        }
        self.used[word] |= bit;
        self.in_use += 1;
        true
    }

    /// The next free identifier, now marked used; `None` when all 65,535 are in use.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use >= usize::from(u16::MAX) {
            return None;
        }
        let mut id = self.next;
        loop {
            let (word, _) = Self::position(id);
            if self.used[word] == u64::MAX {
                // A whole word in use: skip to the next word (its first id, or 1 after 65,535).
                let next_word = (word + 1) % WORDS;
                id = PacketId::new((next_word * 64) as u16).unwrap_or(PacketId::MIN);
                continue;
            }
            if self.take(id) {
                self.next = id.next();
                return Some(id);
            }
            id = id.next();
        }
    }

    /// Frees `id`; false if it was not in use.
    pub(crate) fn release(&mut self, id: PacketId) -> bool {
        let (word, bit) = Self::position(id);
        if self.used[word] & bit == 0 {
            return false;
        }
        self.used[word] &= !bit;
        self.in_use -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_use_the_full_range_and_wrap() {
        let mut ids = PacketIds::new();
        for expected in 1..=u16::MAX {
            assert_eq!(ids.allocate().map(PacketId::get), Some(expected));
        }
        assert_eq!(ids.allocate(), None);
        assert!(ids.release(PacketId::new(7).unwrap()));
        assert!(ids.release(PacketId::new(3).unwrap()));
        // Round-robin: the search goes on after 65,535, so 3 comes before 7.
        assert_eq!(ids.allocate().map(PacketId::get), Some(3));
        assert_eq!(ids.allocate().map(PacketId::get), Some(7));
        assert_eq!(ids.allocate(), None);
    }

    #[test]
    fn packet_ids_skip_those_in_use() {
        let mut ids = PacketIds::new();
        assert!(ids.take(PacketId::new(1).unwrap()));
        assert!(!ids.take(PacketId::new(1).unwrap()));
        assert_eq!(ids.allocate().map(PacketId::get), Some(2));
        assert_eq!(ids.in_use(), 2);
        assert!(ids.release(PacketId::new(2).unwrap()));
        assert!(!ids.release(PacketId::new(2).unwrap()));
        assert_eq!(ids.allocate().map(PacketId::get), Some(3));
    }
}
