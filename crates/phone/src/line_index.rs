//! Line id → the engine's slot for that line: the lookup every CDR makes.

use rustc_hash::FxHashMap;

/// Line ids up to this many bytes are held inline (every real one: E.164 numbers, account codes).
const INLINE: usize = 24;

/// A line id of at most [`INLINE`] bytes as three words and its length. As a hash key it is
/// compared in place; a boxed key is a pointer that every lookup follows to another cache line.
/// The words are read with overlapping loads (the way fast hashes read short keys), not copied
/// byte by byte into a buffer that is then read as words, which stalls the load on the stores.
/// Given the length, the words determine every byte, so equal keys are equal ids.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShortId {
    words: [u64; 3],
    len: u32,
}

/// `N` bytes of `b` from `at`, little-endian (zero where `b` is shorter, which the callers rule
/// out: it keeps the function total without a panic path).
#[inline(always)]
fn load<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..).and_then(|r| r.first_chunk::<N>()).copied().unwrap_or([0; N])
}

impl ShortId {
    /// The key of `id`; `None` when it is longer than [`INLINE`] bytes.
    #[inline(always)]
    pub(crate) fn new(id: &[u8]) -> Option<ShortId> {
        let n = id.len();
        let word = |at: usize| u64::from_le_bytes(load::<8>(id, at));
        let words = match n {
            0 => [0, 0, 0],
            1..=3 => {
                let (a, b, c) = (id.first(), id.get(n / 2), id.last());
                let byte = |x: Option<&u8>| u64::from(x.copied().unwrap_or(0));
                [byte(a) | byte(b) << 8 | byte(c) << 16, 0, 0]
            }
            4..=7 => {
                let half = |at: usize| u64::from(u32::from_le_bytes(load::<4>(id, at)));
                [half(0) | half(n - 4) << 32, 0, 0]
            }
            8..=16 => [word(0), word(n - 8), 0],
            17..=INLINE => [word(0), word(8), word(n - 8)],
            _ => return None,
        };
        Some(ShortId { words, len: n as u32 })
    }

    /// The id's bytes back, in a buffer of [`INLINE`] and its length: each word is written where
    /// [`ShortId::new`] read it (overlapping words agree on the bytes they share).
    pub(crate) fn bytes(&self) -> ([u8; INLINE], usize) {
        let n = self.len as usize;
        let mut out = [0u8; INLINE];
        let mut put = |at: usize, b: &[u8]| {
            if let Some(dst) = out.get_mut(at..at + b.len()) {
                dst.copy_from_slice(b);
            }
        };
        let [a, b, c] = self.words;
        match n {
            0 => {}
            1..=3 => {
                put(0, &[a as u8]);
                put(n / 2, &[(a >> 8) as u8]);
                put(n - 1, &[(a >> 16) as u8]);
            }
            4..=7 => {
                put(0, &(a as u32).to_le_bytes());
                put(n - 4, &((a >> 32) as u32).to_le_bytes());
            }
            8..=16 => {
                put(0, &a.to_le_bytes());
                put(n - 8, &b.to_le_bytes());
            }
            _ => {
                put(0, &a.to_le_bytes());
                put(8, &b.to_le_bytes());
                put(n - 8, &c.to_le_bytes());
            }
        }
        (out, n.min(INLINE))
    }
}

impl std::fmt::Debug for ShortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An id is subscriber data: only its length is shown.
        write!(f, "ShortId(len {})", self.len)
    }
}

impl ShortId {
    /// A well-mixed hash of the key, whose top bits place it in a [`ShortTable`].
    #[inline(always)]
    fn mixed(&self) -> u64 {
        // Multiply-xor folding (the constant is 2^64 / φ): each word moves every bit above it,
        // and the table takes the top bits, which depend on all of them.
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let [a, b, c] = self.words;
        let h = (a ^ u64::from(self.len)).wrapping_mul(K);
        let h = (h.rotate_left(29) ^ b).wrapping_mul(K);
        (h.rotate_left(29) ^ c).wrapping_mul(K)
    }
}

/// One place of a [`ShortTable`]: a key and its slot, half a cache line.
#[derive(Debug, Clone, Copy)]
struct Place {
    words: [u64; 3],
    /// The key's length, or [`EMPTY`].
    len: u32,
    slot: u32,
}

/// The length that marks a free place (no key is that long).
const EMPTY: u32 = u32::MAX;

/// Short line ids → slots, by open addressing in one array of 32-byte places.
///
/// Hand-written instead of a `HashMap` for one thing the standard map doesn't offer: where a
/// key will be looked for is known before the lookup ([`ShortTable::prefetch`]), so a batch of
/// rows starts loading its places when each row is read and finds them in the cache when the
/// batch is taken. With 20,000 lines the index is 1 MiB, beyond a first- and (on some
/// processors) second-level cache, and every row looks its line up. Linear probing, at most
/// half full, never shrinks (lines are never removed).
#[derive(Debug)]
struct ShortTable {
    places: Vec<Place>,
    /// `64 - log2(places.len())`: a key's first place is its hash's top bits.
    shift: u32,
    len: usize,
}

impl Default for ShortTable {
    fn default() -> Self {
        ShortTable::with_places(1 << 10)
    }
}

impl ShortTable {
    fn with_places(n: usize) -> ShortTable {
        debug_assert!(n.is_power_of_two());
        let free = Place { words: [0; 3], len: EMPTY, slot: 0 };
        ShortTable { places: vec![free; n], shift: 64 - n.trailing_zeros(), len: 0 }
    }

    #[inline(always)]
    fn home(&self, key: &ShortId) -> usize {
        (key.mixed() >> self.shift) as usize
    }

    /// Starts loading the place where `key` is looked for first (a software prefetch).
    #[inline(always)]
    fn prefetch(&self, key: &ShortId) {
        let i = self.home(key);
        if i < self.places.len() {
            prefetch_index::prefetch_index(&self.places, i);
        }
    }

    #[inline]
    fn get(&self, key: &ShortId) -> Option<u32> {
        let mask = self.places.len() - 1;
        let mut i = self.home(key);
        loop {
            let p = self.places.get(i)?;
            if p.len == key.len && p.words == key.words {
                return Some(p.slot);
            }
            if p.len == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    fn insert(&mut self, key: ShortId, slot: u32) {
        if (self.len + 1) * 2 > self.places.len() {
            let old = std::mem::replace(self, ShortTable::with_places(self.places.len() * 2));
            for p in old.places.iter().filter(|p| p.len != EMPTY) {
                self.insert(ShortId { words: p.words, len: p.len }, p.slot);
            }
        }
        let mask = self.places.len() - 1;
        let mut i = self.home(&key);
        while let Some(p) = self.places.get_mut(i) {
            if p.len == EMPTY {
                *p = Place { words: key.words, len: key.len, slot };
                self.len += 1;
                return;
            }
            if p.len == key.len && p.words == key.words {
                p.slot = slot;
                return;
            }
            i = (i + 1) & mask;
        }
    }
}

/// Line id bytes → slot. Ids are compared as bytes, exactly: two ids are one line only when
/// they are the same bytes.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    short: ShortTable,
    long: FxHashMap<Box<[u8]>, u32>,
}

impl LineIndex {
    /// The slot of `id`, if known.
    #[inline]
    pub(crate) fn get(&self, id: &[u8]) -> Option<u32> {
        match ShortId::new(id) {
            Some(k) => self.short.get(&k),
            None => self.long.get(id).copied(),
        }
    }

    /// The slot of the line whose key is `key`.
    #[inline]
    pub(crate) fn get_short(&self, key: &ShortId) -> Option<u32> {
        self.short.get(key)
    }

    /// Starts loading where [`LineIndex::get_short`] will look for `key`.
    #[inline]
    pub(crate) fn prefetch_short(&self, key: &ShortId) {
        self.short.prefetch(key);
    }

    /// Records the slot of `id`.
    pub(crate) fn insert(&mut self, id: &[u8], slot: u32) {
        match ShortId::new(id) {
            Some(k) => {
                self.short.insert(k, slot);
            }
            None => {
                self.long.insert(id.into(), slot);
            }
        }
    }

    /// Lines known.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.short.len + self.long.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_told_apart_by_every_byte_and_by_length() {
        let mut index = LineIndex::default();
        let ids: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"0".to_vec(),
            b"0\0".to_vec(),
            b"05025863057".to_vec(),
            b"05025863058".to_vec(),
            b"a".repeat(INLINE),
            [b"a".repeat(INLINE - 1), b"b".to_vec()].concat(),
            b"a".repeat(INLINE + 1),
            [b"a".repeat(INLINE), b"\0".to_vec()].concat(),
            b"a".repeat(200),
            "回線-東京-0001".as_bytes().to_vec(),
        ];
        for (slot, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), None, "{slot}");
            index.insert(id, slot as u32);
        }
        assert_eq!(index.len(), ids.len());
        for (slot, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), Some(slot as u32), "{slot}");
        }
        assert_eq!(index.get(b"05025863059"), None);
        assert_eq!(index.get(&b"a".repeat(201)), None);
    }

    #[test]
    fn a_key_gives_its_bytes_back() {
        for n in 0..=INLINE {
            let id: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let key = ShortId::new(&id).unwrap();
            let (buf, len) = key.bytes();
            assert_eq!(&buf[..len], &id[..], "length {n}");
        }
        assert!(ShortId::new(&[1u8; INLINE + 1]).is_none());
    }

    #[test]
    fn the_table_grows_and_agrees_with_a_hash_map() {
        let mut index = LineIndex::default();
        let mut expected = std::collections::HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Ids of every inline length, some of them inserted twice (the second slot wins), over
        // several doublings of the table.
        for slot in 0..50_000u32 {
            let n = (next() % (INLINE as u64 + 1)) as usize;
            let id: Vec<u8> = (0..n).map(|_| b"0123456789"[(next() % 10) as usize]).collect();
            index.insert(&id, slot);
            expected.insert(id, slot);
        }
        assert_eq!(index.len(), expected.len());
        for (id, slot) in &expected {
            assert_eq!(index.get(id), Some(*slot));
        }
        for _ in 0..50_000 {
            let id: Vec<u8> = (0..INLINE).map(|_| b"abcdef"[(next() % 6) as usize]).collect();
            assert_eq!(index.get(&id), None);
        }
    }

    #[test]
    fn zero_padding_is_not_a_shorter_id() {
        let mut index = LineIndex::default();
        for n in 0..=INLINE + 2 {
            index.insert(&vec![0u8; n], n as u32);
        }
        for n in 0..=INLINE + 2 {
            assert_eq!(index.get(&vec![0u8; n]), Some(n as u32));
        }
    }

    #[test]
    fn every_length_and_every_byte_position_counts() {
        // Each id of each length, and each with one byte changed, is its own line: the
        // overlapping loads cover every byte.
        let mut index = LineIndex::default();
        let mut expected = Vec::new();
        for n in 1..=INLINE + 1 {
            let base: Vec<u8> = (0..n).map(|i| b'0' + (i % 10) as u8).collect();
            expected.push(base.clone());
            for at in 0..n {
                let mut changed = base.clone();
                changed[at] = b'x';
                expected.push(changed);
            }
        }
        for (slot, id) in expected.iter().enumerate() {
            assert_eq!(index.get(id), None, "{:?} before insert", String::from_utf8_lossy(id));
            index.insert(id, slot as u32);
        }
        for (slot, id) in expected.iter().enumerate() {
            assert_eq!(index.get(id), Some(slot as u32));
        }
    }
}
