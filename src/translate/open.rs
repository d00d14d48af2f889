//! Bounded bookkeeping for span assembly: a least-recently-touched index over open entries, and a bounded set of
//! recently seen keys (event ids for de-duplication, ended span ids against late duplicates).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// Hashes the translator's u64 keys (already FNV/SplitMix digests of ids) with one SplitMix round keyed by a
/// per-process random seed: a fraction of SipHash's cost, and still unpredictable to whoever chooses the ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededU64 {
    seed: u64,
}

impl Default for SeededU64 {
    fn default() -> Self {
        // RandomState carries the process's random keys; one hash of it is a random seed without a new dependency.
        SeededU64 { seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) }
    }
}

impl BuildHasher for SeededU64 {
    type Hasher = U64Hasher;
    fn build_hasher(&self) -> U64Hasher {
        U64Hasher(self.seed)
    }
}

#[derive(Debug)]
pub(crate) struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let mut z = (self.0 ^ n).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by the translator's u64 keys.
pub(crate) type KeyMap<V> = HashMap<u64, V, SeededU64>;

/// Which map an open entry lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    Session,
    Round,
    Request,
}

/// Orders open entries by their last touch, so the idle-TTL sweep and capacity eviction both take the front.
///
/// Touching appends `(class, key, seq)` and bumps the entry's own `seq`; a queue item whose `seq` no longer matches
/// its entry is stale and skipped. That keeps a touch O(1) with no allocation; the queue is compacted when stale
/// items outnumber live ones.
#[derive(Debug, Default)]
pub(crate) struct LruIndex {
    queue: VecDeque<(Class, u64, u64)>,
    next_seq: u64,
}

impl LruIndex {
    /// Records a touch of `(class, key)` and returns the sequence number the entry must store.
    pub(crate) fn touch(&mut self, class: Class, key: u64) -> u64 {
        self.next_seq += 1;
        self.queue.push_back((class, key, self.next_seq));
        self.next_seq
    }

    /// The least recently touched item, possibly stale; the caller checks its seq against the entry.
    pub(crate) fn front(&self) -> Option<(Class, u64, u64)> {
        self.queue.front().copied()
    }

    pub(crate) fn pop_front(&mut self) {
        self.queue.pop_front();
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Drops stale items; `is_live(class, key, seq)` says whether an item is its entry's latest touch.
    pub(crate) fn compact(&mut self, mut is_live: impl FnMut(Class, u64, u64) -> bool) {
        self.queue.retain(|&(c, k, s)| is_live(c, k, s));
    }
}

/// A set that remembers at most `capacity` keys, forgetting the oldest first.
#[derive(Debug)]
pub(crate) struct BoundedSet {
    set: HashSet<u64, SeededU64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl BoundedSet {
    pub(crate) fn new(capacity: usize) -> Self {
        BoundedSet { set: HashSet::default(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Inserts `key`; returns false if it was already present.
    pub(crate) fn insert(&mut self, key: u64) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.set.contains(&key)
    }
}
