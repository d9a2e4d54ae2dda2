//! Puts rows that are a few minutes out of order back in start order and counts each call once.
//!
//! Memory is bounded by the rows within the allowed lateness, not by the file: a row is released
//! once the newest start time seen is `lateness` past it, and a call id is remembered only as long
//! as a duplicate could still arrive (twice the lateness).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hasher};

use jiff::{SignedDuration, Timestamp};
use rustc_hash::{FxBuildHasher, FxHashMap};

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
    /// call-id hash → start time of that call, for duplicates.
    seen: FxHashMap<u64, Timestamp>,
    newest: Option<Timestamp>,
    seen_after_sweep: usize,
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
            seen: FxHashMap::default(),
            newest: None,
            seen_after_sweep: 0,
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
        if self.seen.insert(key, start).is_some() {
            self.duplicates += 1;
            return false;
        }
        if self.newest_any.is_none_or(|n| start > n) {
            self.newest_any = Some(start);
        }
        self.sweep_seen();
        true
    }

    /// Whether the call whose [`call_key`] is `key` was seen: a lookup ahead of
    /// [`Reorder::first_time_key`], which brings the entry into the cache.
    #[inline]
    pub(crate) fn probe(&self, key: u64) -> bool {
        self.seen.contains_key(&key)
    }

    /// Adds a row; released rows go to `out` in start order.
    pub fn push(&mut self, cdr: Cdr, out: &mut impl FnMut(Cdr)) -> Pushed {
        let key = call_key(cdr.call_id.as_bytes());
        if self.seen.insert(key, cdr.start).is_some() {
            self.duplicates += 1;
            return Pushed::Duplicate;
        }
        let start = cdr.start;
        if self.newest_any.is_none_or(|n| start > n) {
            self.newest_any = Some(start);
        }
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

    /// Forgets call ids that no duplicate can follow any more (older than twice the lateness
    /// behind the newest row); only once the map has doubled since the last sweep, so it costs
    /// O(1) per row however busy the hour.
    #[inline]
    fn sweep_seen(&mut self) {
        if self.seen.len() > 4096.max(2 * self.seen_after_sweep) {
            self.sweep_now();
        }
    }

    /// The sweep itself, out of line: the check above runs for every row, this once per doubling.
    #[cold]
    #[inline(never)]
    fn sweep_now(&mut self) {
        let Some(newest) = self.newest_any else { return };
        let forget_before = newest.checked_sub(self.lateness * 2).unwrap_or(newest);
        self.seen.retain(|_, start| *start >= forget_before);
        self.seen_after_sweep = self.seen.len();
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
        self.sweep_seen();
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
        assert!(r.seen.len() < 10_000, "{}", r.seen.len());
    }

    #[test]
    fn memory_is_bounded_by_the_lateness_window() {
        let mut r = Reorder::new(SignedDuration::from_mins(5));
        let mut n = 0u64;
        for i in 0..200_000 {
            r.push(cdr(&format!("c{i}"), i / 100), &mut |_| n += 1);
            assert!(r.buffered() <= 700);
        }
        assert!(r.seen.len() < 10_000, "{}", r.seen.len());
        r.finish(&mut |_| n += 1);
        assert_eq!(n, 200_000);
    }
}
