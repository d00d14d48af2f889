//! Bounded bookkeeping for span assembly: a least-recently-touched index over open entries, and a bounded set of
//! recently seen keys (event ids for de-duplication, ended span ids against late duplicates).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::hash::Seeded;

/// A map keyed by the translator's u64 keys.
pub(crate) type KeyMap<V> = HashMap<u64, V, Seeded>;

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
    /// `(key, class << 62 | seq)`: 16 bytes an item rather than 24.
    queue: VecDeque<(u64, u64)>,
    next_seq: u64,
}

const SEQ_BITS: u64 = (1 << 62) - 1;

fn class_bits(class: Class) -> u64 {
    (match class {
        Class::Session => 0u64,
        Class::Round => 1,
        Class::Request => 2,
    }) << 62
}

fn unpack(item: (u64, u64)) -> (Class, u64, u64) {
    let class = match item.1 >> 62 {
        0 => Class::Session,
        1 => Class::Round,
        _ => Class::Request,
    };
    (class, item.0, item.1 & SEQ_BITS)
}

impl LruIndex {
    /// Records a touch of `(class, key)` and returns the sequence number the entry must store.
    pub(crate) fn touch(&mut self, class: Class, key: u64) -> u64 {
        // 2^62 touches would take a century at a billion a second.
        self.next_seq = (self.next_seq + 1) & SEQ_BITS;
        self.queue.push_back((key, class_bits(class) | self.next_seq));
        self.next_seq
    }

    /// The least recently touched item, possibly stale; the caller checks its seq against the entry.
    pub(crate) fn front(&self) -> Option<(Class, u64, u64)> {
        self.queue.front().copied().map(unpack)
    }

    pub(crate) fn pop_front(&mut self) {
        self.queue.pop_front();
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Drops stale items; `is_live(class, key, seq)` says whether an item is its entry's latest touch.
    pub(crate) fn compact(&mut self, mut is_live: impl FnMut(Class, u64, u64) -> bool) {
        self.queue.retain(|&item| {
            let (c, k, s) = unpack(item);
            is_live(c, k, s)
        });
        self.queue.shrink_to(self.queue.len() * 2);
    }
}

/// A set that remembers at most `capacity` keys, forgetting the oldest first.
#[derive(Debug)]
pub(crate) struct BoundedSet {
    set: HashSet<u64, Seeded>,
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

/// Shares one allocation per distinct low-cardinality string (model names, endpoints). Bounded: past `CAP`
/// distinct values it stops remembering and hands out fresh allocations, so hostile cardinality costs memory
/// only for the entries that hold it.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    strings: HashSet<std::sync::Arc<str>, Seeded>,
}

impl Interner {
    const CAP: usize = 4096;

    pub(crate) fn intern(&mut self, s: &str) -> std::sync::Arc<str> {
        if let Some(found) = self.strings.get(s) {
            return found.clone();
        }
        let new: std::sync::Arc<str> = std::sync::Arc::from(s);
        if self.strings.len() < Self::CAP {
            self.strings.insert(new.clone());
        }
        new
    }
}

/// An id kept in open state: canonical lowercase UUIDs (what Bamboo writes) as their 16 bytes, anything else as
/// text. Rendering gives back exactly the string that came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CompactId {
    Uuid([u8; 16]),
    Text(Box<str>),
}

/// A rendered [`CompactId`], on the stack for UUIDs.
pub(crate) enum IdStr<'a> {
    Uuid([u8; 36]),
    Text(&'a str),
}

impl std::ops::Deref for IdStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            // Only ASCII hex digits and hyphens are ever written into the buffer.
            IdStr::Uuid(b) => std::str::from_utf8(b).expect("ascii"),
            IdStr::Text(s) => s,
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl CompactId {
    pub(crate) fn new(s: &str) -> CompactId {
        let b = s.as_bytes();
        let canonical = b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
            });
        if !canonical {
            return CompactId::Text(s.into());
        }
        let mut out = [0u8; 16];
        let mut nibbles = b.iter().filter(|c| **c != b'-').map(|c| match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        });
        for byte in &mut out {
            *byte = (nibbles.next().unwrap_or(0) << 4) | nibbles.next().unwrap_or(0);
        }
        CompactId::Uuid(out)
    }

    pub(crate) fn as_str(&self) -> IdStr<'_> {
        match self {
            CompactId::Text(s) => IdStr::Text(s),
            CompactId::Uuid(bytes) => {
                let mut buf = [0u8; 36];
                let mut i = 0;
                for (n, byte) in bytes.iter().enumerate() {
                    if matches!(n, 4 | 6 | 8 | 10) {
                        buf[i] = b'-';
                        i += 1;
                    }
                    buf[i] = HEX[(byte >> 4) as usize];
                    buf[i + 1] = HEX[(byte & 0xf) as usize];
                    i += 2;
                }
                IdStr::Uuid(buf)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CompactId;

    #[test]
    fn compact_ids_render_exactly_what_came_in() {
        for s in [
            "0b9f7c1e-4a51-4c8e-9a0e-2f7d1c3b5a61",
            "0B9F7C1E-4A51-4C8E-9A0E-2F7D1C3B5A61",
            "0b9f7c1e4a514c8e9a0e2f7d1c3b5a61",
            "s1",
            "",
            "0b9f7c1e-4a51-4c8e-9a0e-2f7d1c3b5a6g",
            "ééééééé-4a51-4c8e-9a0e-2f7d1c3b5a61",
        ] {
            assert_eq!(&*CompactId::new(s).as_str(), s);
        }
        assert!(matches!(CompactId::new("0b9f7c1e-4a51-4c8e-9a0e-2f7d1c3b5a61"), CompactId::Uuid(_)));
        assert!(matches!(CompactId::new("0B9F7C1E-4A51-4C8E-9A0E-2F7D1C3B5A61"), CompactId::Text(_)));
    }
}
