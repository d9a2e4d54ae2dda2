//! Puts rows that are a few minutes out of order back in start order and counts each call once.
//!
//! Memory is bounded by the rows within the allowed lateness, not by the file: a row is released
//! once the newest start time seen is `lateness` past it, and a call id is remembered only as long
//! as a duplicate could still arrive: at least twice the lateness, at most four times.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hasher};

use jiff::{SignedDuration, Timestamp};
use rustc_hash::{FxBuildHasher, FxHashSet};

use super::Cdr;

/// Heap entries are small keys; the records stay put in a slab, so sifting the heap moves 32
/// bytes, not whole records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    start: Timestamp,
    arrival: u64,
    slot: usize,
}

/// What happened to a pushed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Buffered.
    Buffered,
    /// Same call id as a row already seen: counted once.
    Duplicate,
    /// Later than the allowed lateness: released at once, out of order (counted).
    Late,
}

/// The reorder buffer.
pub struct Reorder {
    lateness: SignedDuration,
    heap: BinaryHeap<Reverse<Pending>>,
    slab: Vec<Option<Cdr>>,
    free: Vec<usize>,
    /// Call keys ([`call_key`]) seen since `generation_from`, for duplicates.
    seen: FxHashSet<u64>,
    /// Those of the generation before. Two generations of twice the lateness each, rather than
    /// one map swept of its old keys: dropping a whole generation costs nothing per key, where a
    /// sweep visited every key to keep half of them.
    seen_before: FxHashSet<u64>,
    /// When the current generation began (newest start time seen then).
    generation_from: Option<Timestamp>,
    newest: Option<Timestamp>,
    newest_any: Option<Timestamp>,
    released_up_to: Option<Timestamp>,
    arrivals: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Rows later than the lateness (processed out of order).
    pub late: u64,
}

impl std::fmt::Debug for Reorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reorder").field("buffered", &self.heap.len()).field("duplicates", &self.duplicates).finish()
    }
}

/// The key a call id is remembered by (64 bits of two hashes).
pub(crate) fn call_key(call_id: &[u8]) -> u64 {
    let mut h = FxBuildHasher.build_hasher();
    // What `str::hash` writes (the bytes, then 0xff), so a key is the same for the text and its
    // bytes.
    h.write(call_id);
    h.write_u8(0xff);
    // A second, independent mix so that two ids colliding in 64 bits is negligible (~n²/2⁶⁵).
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

impl Reorder {
    /// A buffer that tolerates rows up to `lateness` out of order.
    pub fn new(lateness: SignedDuration) -> Self {
        Reorder {
            lateness,
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seen: FxHashSet::default(),
            seen_before: FxHashSet::default(),
            generation_from: None,
            newest: None,
            newest_any: None,
            released_up_to: None,
            arrivals: 0,
            duplicates: 0,
            late: 0,
        }
    }

    /// Counts a row once without holding it: `true` the first time its call id is seen. For rows
    /// whose order doesn't matter to the consumer (a line's domestic calls only teach it its own
    /// addresses and numbers), which then skip the buffer.
    pub fn first_time(&mut self, call_id: &[u8], start: Timestamp) -> bool {
        self.first_time_key(call_key(call_id), start)
    }

    /// [`Reorder::first_time`] of the call whose [`call_key`] is `key`.
    #[inline]
    pub(crate) fn first_time_key(&mut self, key: u64, start: Timestamp) -> bool {
        if !self.remember(key, start) {
            self.duplicates += 1;
            return false;
        }
        true
    }

    /// Remembers a call key: `false` when it was seen already. Starts a new generation of keys
    /// once the newest start time is twice the lateness past the current one's beginning.
    #[inline]
    fn remember(&mut self, key: u64, start: Timestamp) -> bool {
        if self.newest_any.is_none_or(|n| start > n) {
            self.newest_any = Some(start);
            let from = *self.generation_from.get_or_insert(start);
            if start.duration_since(from) >= self.lateness * 2 {
                self.new_generation(start);
            }
        }
        !self.seen_before.contains(&key) && self.seen.insert(key)
    }

    /// The generation before is forgotten; the current one becomes it.
    #[cold]
    #[inline(never)]
    fn new_generation(&mut self, at: Timestamp) {
        std::mem::swap(&mut self.seen, &mut self.seen_before);
        self.seen.clear();
        self.generation_from = Some(at);
    }

    /// Whether the call whose [`call_key`] is `key` was seen: a lookup ahead of
    /// [`Reorder::first_time_key`], which brings the entries into the cache.
    #[inline]
    pub(crate) fn probe(&self, key: u64) -> bool {
        self.seen.contains(&key) | self.seen_before.contains(&key)
    }

    /// Adds a row; released rows go to `out` in start order.
    pub fn push(&mut self, cdr: Cdr, out: &mut impl FnMut(Cdr)) -> Pushed {
        let key = call_key(cdr.call_id.as_bytes());
        if !self.remember(key, cdr.start) {
            self.duplicates += 1;
            return Pushed::Duplicate;
        }
        let start = cdr.start;
        if self.released_up_to.is_some_and(|r| start < r) {
            self.late += 1;
            out(cdr);
            return Pushed::Late;
        }
        self.arrivals += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slab.get_mut(i) {
                    *s = Some(cdr);
                }
                i
            }
            None => {
                self.slab.push(Some(cdr));
                self.slab.len() - 1
            }
        };
        self.heap.push(Reverse(Pending { start, arrival: self.arrivals, slot }));
        if self.newest.is_none_or(|n| start > n) {
            self.newest = Some(start);
            self.release(out, false);
        }
        Pushed::Buffered
    }

    /// Releases everything (end of input).
    pub fn finish(&mut self, out: &mut impl FnMut(Cdr)) {
        self.release(out, true);
    }

    /// Rows held.
    pub fn buffered(&self) -> usize {
        self.heap.len()
    }

    fn release(&mut self, out: &mut impl FnMut(Cdr), all: bool) {
        let Some(newest) = self.newest else { return };
        let horizon = newest.checked_sub(self.lateness).unwrap_or(newest);
        while let Some(Reverse(p)) = self.heap.peek() {
            if !all && p.start > horizon {
                break;
            }
            if let Some(Reverse(p)) = self.heap.pop() {
                self.released_up_to = Some(p.start);
                if let Some(cdr) = self.slab.get_mut(p.slot).and_then(Option::take) {
                    self.free.push(p.slot);
                    out(cdr);
                }
            }
        }
        let _ = horizon;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbering::Destination;

    fn cdr(id: &str, minute: i64) -> Cdr {
        let start = Timestamp::from_second(1_790_000_000 + minute * 60).unwrap();
        Cdr {
            call_id: id.into(),
            start,
            end: start,
            line_id: "L".into(),
            calling_number: "03".into(),
            called_number: "03".into(),
            destination: Destination::Domestic,
            source_ip: "192.0.2.1".parse().unwrap(),
            charge_jpy: 0,
        }
    }

    #[test]
    fn reorders_within_lateness_and_drops_duplicates() {
        let mut r = Reorder::new(SignedDuration::from_mins(5));
        let mut out = vec![];
        let mut sink = |c: Cdr| out.push(c.call_id);
        for (id, m) in [("a", 0), ("c", 3), ("b", 1), ("a", 0), ("d", 10), ("e", 8), ("f", 20), ("g", 2)] {
            r.push(cdr(id, m), &mut sink);
        }
        r.finish(&mut sink);
        assert_eq!(out, ["a", "b", "c", "e", "d", "g", "f"]);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.late, 1, "g came 18 minutes late: processed, but counted");
    }

    #[test]
    fn rows_that_skip_the_buffer_are_still_counted_once_and_forgotten_in_time() {
        let mut r = Reorder::new(SignedDuration::from_mins(5));
        let mut firsts = 0;
        for i in 0..200_000i64 {
            let c = cdr(&format!("d{i}"), i / 100);
            if r.first_time(c.call_id.as_bytes(), c.start) {
                firsts += 1;
            }
        }
        let c = cdr("d199999", 1999);
        assert!(!r.first_time(c.call_id.as_bytes(), c.start));
        assert_eq!((firsts, r.duplicates), (200_000, 1));
        assert!(r.seen.len() + r.seen_before.len() < 10_000, "{}", r.seen.len() + r.seen_before.len());
    }

    #[test]
    fn a_repeat_within_twice_the_lateness_is_caught_whatever_the_generation() {
        // Rows one a minute move the generations (two of ten minutes each); a call first seen
        // at any minute of a generation is still known ten minutes later, and forgotten after
        // twenty.
        for first in 0..30i64 {
            let mut r = Reorder::new(SignedDuration::from_mins(5));
            for minute in 0..80i64 {
                let row = cdr(&format!("bg{minute}"), minute);
                assert!(r.first_time(row.call_id.as_bytes(), row.start));
                let x = cdr("x", minute);
                if minute == first {
                    assert!(r.first_time(x.call_id.as_bytes(), x.start));
                } else if minute == first + 10 {
                    assert!(!r.first_time(x.call_id.as_bytes(), x.start), "first seen at minute {first}");
                } else if minute == first + 31 {
                    assert!(r.first_time(x.call_id.as_bytes(), x.start), "still held after 31 minutes");
                }
            }
        }
    }

    #[test]
    fn memory_is_bounded_by_the_lateness_window() {
        let mut r = Reorder::new(SignedDuration::from_mins(5));
        let mut n = 0u64;
        for i in 0..200_000 {
            r.push(cdr(&format!("c{i}"), i / 100), &mut |_| n += 1);
            assert!(r.buffered() <= 700);
        }
        assert!(r.seen.len() + r.seen_before.len() < 10_000, "{}", r.seen.len() + r.seen_before.len());
        r.finish(&mut |_| n += 1);
        assert_eq!(n, 200_000);
    }
}
