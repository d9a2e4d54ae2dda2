//! The session index: which subscriber held an address (and port) at an instant.
//!
//! Every session contributes one 16-byte `Entry` per address it held: its Framed-IP-Address
//! (all ports), each CGNAT port block (public address, first and last port), each IPv6 prefix.
//! Entries are grouped by key: the IPv4 address, or the IPv6 prefix masked to its length (one
//! table per prefix length in use: /56 and /64 are typical, so a v6 lookup probes two or three).
//!
//! A table has two parts:
//!
//! - **base**: one array of records (an entry and its key) sorted by the key's hash, the key,
//!   first port and start, so each key's entries are contiguous (a *run*); bucket offsets cut it
//!   by the top bits of the hash (about four buckets per key, 26 buckets' offsets and long-run
//!   bits to a cache line), so a lookup reads one line of offsets, often in the last-level
//!   cache, and then the records of one bucket, side by side in one page: one random read of
//!   main memory. Runs longer than 32 entries (a CGNAT address's port blocks, an address handed
//!   out many times) also get a description (longest session, widest port block, port groups),
//!   one cache line found from the bucket line without a search, and a line of their port
//!   groups' starts beside it: a lookup finds the port's group (by arithmetic when the blocks
//!   are evenly spaced, as BNGs allocate them), then the start times, and scans back only as far
//!   as the longest session could reach. A port-less one reads the run's *time slice* of its
//!   instant (copies of the sessions that overlap it), or the whole run in one pass where the
//!   slices were retired by an end that moved far.
//! - **recent**: entries added since the base was built, in a linked list per key (20 bytes
//!   each); folded into the base (a merge: the base is sorted already) when it grows past a
//!   quarter of it (and at least 65,536), so the cost of rebuilding is amortised.
//!
//! A session's end changes while it lives (every Interim-Update moves it): its entries are found
//! by (key, first port, start, subscriber) and updated in place, the run's longest-session bound
//! raised with them, and so are their copies in the run's time slices. Retention rebuilds the
//! base without the entries that ended before a cut-off.
//!
//! Lookups are pure functions of the index: no I/O, no allocation unless the answer is
//! ambiguous. Subscriber ids are interned to `u32` ([`SubscriberNo`]). Many lookups at once
//! ([`Index::lookup_batch`]) run as a software pipeline, so that their memory reads overlap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use jiff::Timestamp;
use mamori_core::subject::SubscriberId;
use rustc_hash::FxHashMap;

use crate::huge::HugeArray;
use crate::radius::acct::mask128;
use crate::session::SessionRow;

/// An interned subscriber id (see [`Index::subscriber`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriberNo(pub u32);

/// The answer to "who held this address then?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution<S = SubscriberNo> {
    /// Exactly one subscriber.
    Unique(S),
    /// Several subscribers' sessions cover the instant (overlapping sessions, a lost Stop, or a
    /// shared CGNAT address asked without a port): all of them, sorted.
    Ambiguous(Vec<S>),
    /// No session covers the instant.
    Unknown,
}

/// One query of [`Index::lookup_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// The address.
    pub addr: IpAddr,
    /// The port (IPv4 behind CGNAT), if known.
    pub port: Option<u16>,
    /// The instant, Unix seconds (see [`unix_secs`]).
    pub at: u32,
}

/// Unix seconds, clamped into `u32` (sessions live between 1970 and 2106).
pub fn unix_secs(t: Timestamp) -> u32 {
    u32::try_from(t.as_second().max(0)).unwrap_or(u32::MAX)
}

/// One address held by one session over `[start, end)`, on ports `first..=last`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Entry {
    start: u32,
    end: u32,
    sub: u32,
    first: u16,
    last: u16,
}

impl Entry {
    /// Whether the entry holds the port (any, if `None`) at `t`. Computed without branches (`&`,
    /// not `&&`): over a run the outcomes are random, and a mispredicted branch per entry cost
    /// more than the memory reads of a batched lookup.
    #[inline]
    fn covers(&self, port: Option<u16>, t: u32) -> bool {
        let (lo, hi) = match port {
            Some(p) => (p, p),
            None => (u16::MAX, 0),
        };
        (self.start <= t) & (t < self.end) & (self.first <= lo) & (hi <= self.last)
    }

    /// Kept by a rebuild with this cut-off: not emptied, not ended before it.
    #[inline]
    fn kept(&self, cutoff: u32) -> bool {
        self.end > self.start && self.end >= cutoff
    }
}

const NIL: u32 = u32::MAX;
/// How far ahead [`Index::lookup_batch`] starts loading a query's memory: enough to overlap the
/// cache misses of many queries, few enough that the lines loaded stay in the first-level cache
/// until their query is answered. Measured at 10M sessions (BENCHMARKS.md, issue 5): 12 and 16
/// did best (110–115 ns a lookup), 24 a little slower, 32 and 48 slower by 4–8 %.
pub const BATCH_WINDOW: usize = 16;
/// Below this many queries [`Index::lookup_sorted`] doesn't sort: a small batch spreads over the
/// whole index whatever its order, and sorting would cost without saving a miss.
pub const SORT_MIN: usize = 1 << 14;
/// The recent part is folded into the base when it holds more than this and a quarter of the base.
const MIN_RECENT: usize = 1 << 16;
/// A key with more entries than this gets a [`Big`] description (its longest session, its port
/// groups) that bounds the search; a shorter run is scanned whole: it spans a few cache lines of
/// one page, which cost less than a second random read would.
const SMALL_RUN: usize = 32;
/// A bucket's records are scanned up to this many, binary-searched beyond.
const SCAN_MAX: usize = 16;
/// Cache lines of a bucket [`Table::touch`] starts loading.
const TOUCH_LINES: usize = 8;
/// Cache lines of a long run read whole (a port-less query of a CGNAT address) it starts loading.
const TOUCH_LINES_WHOLE_RUN: usize = 128;
/// A long run's time slices ([`Slice`]) each begin at every this many of its sessions' starts.
const SLICE_STARTS: usize = 64;
/// A long run gets time slices only if their copies of its entries number at most this many
/// times its entries (sessions much longer than the run's turnover would be copied into many).
const SLICE_MAX_COPIES: usize = 3;

#[derive(Debug, Clone, Copy)]
struct Node {
    e: Entry,
    next: u32,
}

/// What a lookup reads, worked out by [`Table::plan`].
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// The records `lo..hi` of the key's bucket (a key without a long run).
    Bucket { lo: u32, hi: u32 },
    /// The port groups `glo..ghi` of the long run described by `big_heads[id]`.
    Big { id: u32, glo: u32, ghi: u32 },
    /// A port-less lookup of a long run with time slices: the copies `lo..hi` of
    /// `Table::slice_recs`, the slice the instant falls in.
    Slice { lo: u32, hi: u32 },
}

/// A time slice of a long run: the entries that overlap `[time, the next slice's time)` (or
/// from `time` on, for the last), copied side by side, so that a lookup without a port (which
/// answers with every block's subscriber then) reads one slice, not every session of the
/// address: a CGNAT address's 320 sessions are a hundred cache lines; a slice of 64 starts is
/// about eighty entries, fifteen lines.
#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    time: u32,
    /// The slice's copies: `Table::slice_recs[lo..hi]`.
    lo: u32,
    hi: u32,
}

/// What a port-less lookup reads of an entry.
#[derive(Debug, Clone, Copy, Default)]
struct SliceRec {
    start: u32,
    end: u32,
    sub: u32,
}

/// Port groups whose starts a long run keeps in its [`GroupStarts`] line: 32, a BNG's blocks
/// of 2,016 ports or more. A run with more groups (smaller blocks) reads them from
/// `Table::gstart`, a read its lookup cannot start loading ahead.
const INLINE_GROUPS: usize = 32;

/// A long run's description and key, in [`Table::big_heads`] (in record order, so a bucket
/// line's first long run and its long-run bits give its place without a search).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct BigHead<K> {
    big: Big,
    key: K,
}

/// Where each port group of a long run starts, from the run's first record, when it has at
/// most [`INLINE_GROUPS`] groups and fewer than 65,536 records: one line, at the same place in
/// [`Table::big_starts`] as the run's [`BigHead`], so a lookup starts loading both at once
/// (a separate list, or a hash map of descriptions, was a demand miss that stalled the core
/// whenever other lookups had evicted it: a third of a CGNAT lookup's time in a mixed batch).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct GroupStarts([u16; INLINE_GROUPS]);

/// How to search a long run (more than [`SMALL_RUN`] entries: a CGNAT address's port blocks, an
/// address handed out many times within the retention period).
#[derive(Debug, Clone, Copy)]
struct Big {
    off: u32,
    len: u32,
    /// Longest `end - start` in the run.
    max_dur: u32,
    /// Where the run's port groups are listed in `gfirst`/`gstart` (runs whose entries have more
    /// than one first port: CGNAT blocks)…
    g: u32,
    /// …and how many there are (0: one group, the whole run).
    ng: u32,
    /// Widest `last - first` in the run.
    max_width: u16,
    /// The distance between consecutive groups' first ports when it is the same for all (port
    /// blocks of one size, as BNGs allocate them): a port's group is then found by arithmetic,
    /// without reading the list of first ports. 0 otherwise.
    step: u16,
    /// The first port of the first group (with `step`).
    first: u16,
    /// The groups' starts are in the run's [`GroupStarts`], not in `gstart`.
    inline: bool,
    /// How many time slices the run has (0: none, or no longer valid: a port-less lookup reads
    /// the run); where they begin is in `Table::big_slices_at`.
    ns: u32,
}

impl Big {
    /// Where the whole run is in `recs`.
    #[inline]
    fn records(&self) -> (usize, usize) {
        (self.off as usize, self.off as usize + self.len as usize)
    }
}

/// A key of a table: an IPv4 address, or an IPv6 prefix (top 64 bits, or all 128).
trait Key: Copy + Eq + Ord + Default + std::hash::Hash + std::fmt::Debug {
    /// An entry stored with its key.
    type Rec: bytemuck::Pod + Default + std::fmt::Debug;
    /// A well-mixed 64-bit hash (Fibonacci hashing: the top bits are used).
    fn hash64(self) -> u64;
    /// The record of an entry under this key.
    fn rec(self, e: Entry) -> Self::Rec;
    /// A record's key.
    fn of(r: &Self::Rec) -> Self;
    /// A record's entry.
    fn entry(r: &Self::Rec) -> Entry;
    /// Moves a record's end.
    fn set_end(r: &mut Self::Rec, end: u32);
}

/// Declares a record type (an entry and its key, no padding) and makes its key a [`Key`].
macro_rules! key_with_record {
    ($key:ty, $rec:ident, |$k:ident| $hash:expr) => {
        /// An entry stored with its key.
        #[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
        #[repr(C)]
        struct $rec {
            e: Entry,
            key: $key,
        }

        impl Key for $key {
            type Rec = $rec;
            #[inline]
            fn hash64(self) -> u64 {
                let $k = self;
                $hash
            }
            #[inline]
            fn rec(self, e: Entry) -> $rec {
                $rec { e, key: self }
            }
            #[inline]
            fn of(r: &$rec) -> $key {
                r.key
            }
            #[inline]
            fn entry(r: &$rec) -> Entry {
                r.e
            }
            #[inline]
            fn set_end(r: &mut $rec, end: u32) {
                r.e.end = end;
            }
        }
    };
}

key_with_record!(u32, Rec4, |k| u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15));

/// An IPv6 entry (prefixes up to /64) with its key: no ports (an IPv6 entry holds them all), the
/// key as two halves, so 20 bytes instead of 24. Half the lookups are IPv6, and a run of them
/// is read whole: a fifth fewer cache lines.
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Rec8 {
    start: u32,
    end: u32,
    sub: u32,
    key_low: u32,
    key_high: u32,
}

impl Key for u64 {
    type Rec = Rec8;
    #[inline]
    fn hash64(self) -> u64 {
        (self ^ (self >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    /// IPv6 entries hold every port (see `targets`), so the ports are not stored.
    #[inline]
    fn rec(self, e: Entry) -> Rec8 {
        debug_assert!(e.first == 0 && e.last == u16::MAX, "an IPv6 entry holds every port");
        Rec8 { start: e.start, end: e.end, sub: e.sub, key_low: self as u32, key_high: (self >> 32) as u32 }
    }
    #[inline]
    fn of(r: &Rec8) -> u64 {
        u64::from(r.key_low) | (u64::from(r.key_high) << 32)
    }
    #[inline]
    fn entry(r: &Rec8) -> Entry {
        Entry { start: r.start, end: r.end, sub: r.sub, first: 0, last: u16::MAX }
    }
    #[inline]
    fn set_end(r: &mut Rec8, end: u32) {
        r.end = end;
    }
}

key_with_record!(u128, Rec16, |k| ((k as u64) ^ ((k >> 64) as u64).rotate_left(23)).hash64());

/// The order of a table's records: by key hash (so by bucket, whatever the bucket count), key,
/// first port, start.
#[inline]
fn order<K: Key>(r: &K::Rec) -> (u64, K, u16, u32, u32) {
    let (k, e) = (K::of(r), K::entry(r));
    (k.hash64(), k, e.first, e.start, e.sub)
}

/// The common distance between consecutive first ports, if there are at least two groups and it
/// is the same between all (see [`Big::step`]); 0 otherwise.
fn uniform_step(firsts: &[u16]) -> u16 {
    let [a, b, ..] = *firsts else { return 0 };
    let step = b.wrapping_sub(a);
    if step > 0 && firsts.windows(2).all(|w| w[1].checked_sub(w[0]) == Some(step)) { step } else { 0 }
}

/// Collects distinct subscribers without allocating for the first.
#[derive(Default)]
struct Candidates {
    first: Option<u32>,
    more: Vec<u32>,
}

impl Candidates {
    #[inline]
    fn push(&mut self, s: u32) {
        match self.first {
            None => self.first = Some(s),
            Some(f) if f == s => {}
            // Duplicates are dropped by `finish`: a port-less query of a CGNAT address collects
            // dozens of subscribers, and a search per push would cost quadratic time.
            Some(_) => self.more.push(s),
        }
    }

    /// Adds the subscribers in `found` (in any order, with repeats).
    fn absorb(&mut self, found: Vec<u32>) {
        if self.more.is_empty() {
            self.more = found;
        } else {
            self.more.extend_from_slice(&found);
        }
        if self.first.is_none() {
            self.first = self.more.pop();
        }
    }

    fn finish(self) -> Attribution {
        match self.first {
            None => Attribution::Unknown,
            Some(f) if self.more.is_empty() => Attribution::Unique(SubscriberNo(f)),
            Some(f) => {
                let mut v = self.more;
                v.push(f);
                v.sort_unstable();
                v.dedup();
                match v[..] {
                    [one] => Attribution::Unique(SubscriberNo(one)),
                    // The same allocation, as `SubscriberNo`s.
                    _ => Attribution::Ambiguous(v.into_iter().map(SubscriberNo).collect()),
                }
            }
        }
    }
}

/// Adds the subscribers of a group's entries (same first port, sorted by start) that cover `t`.
#[inline]
fn scan_group<K: Key>(group: &[K::Rec], port: Option<u16>, t: u32, max_dur: u32, acc: &mut Candidates) {
    if group.len() <= SCAN_MAX {
        for r in group {
            let x = K::entry(r);
            if x.covers(port, t) {
                acc.push(x.sub);
            }
        }
        return;
    }
    // Binary search, then scan back while a session as long as the run's longest could still
    // reach `t`.
    let reach = t.saturating_sub(max_dur);
    let upto = group.partition_point(|r| K::entry(r).start <= t);
    for r in group[..upto].iter().rev() {
        let x = K::entry(r);
        if x.start < reach {
            break;
        }
        if x.covers(port, t) {
            acc.push(x.sub);
        }
    }
}

/// Buckets described by one [`BucketLine`].
const LINE_BUCKETS: usize = 26;

/// Where the records of [`LINE_BUCKETS`] consecutive buckets are and which of them hold a long
/// run, in one cache line: 2.5 bytes a bucket instead of the 4 of a plain offset array, so the
/// tables' offsets (read by every lookup) are a little more likely to be in the last-level
/// cache, and a lookup reads one line for a bucket's offsets and long-run bit, never two.
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct BucketLine {
    /// Where the first bucket's records start in `recs`.
    base: u32,
    /// One bit per bucket: it holds a long run.
    big: u32,
    /// How many long runs earlier lines' buckets hold: the place in `big_heads` of this line's
    /// first (with the bits of the buckets before a bucket, of the bucket's first).
    first_big: u32,
    /// Where each bucket's records end, from `base`.
    ends: [u16; LINE_BUCKETS],
}

/// One table: entries keyed by `K` (an IPv4 address, or an IPv6 prefix of one length).
///
/// The base is one array of records (entry and key) sorted by key hash, then key, first port
/// and start, cut into hash buckets by offsets (about four buckets per key, so a bucket rarely
/// holds another key's records; [`BucketLine`]s of 26). A lookup reads the line of its
/// bucket's offsets and then the bucket's records, which lie side by side: one random read of
/// main memory per lookup, where a directory of keys beside the runs cost a second one. With
/// millions of sessions a lookup is bound by the cache lines it reads
/// (`bench/src/bin/memprobe.rs` measures what each costs), so records are kept small. Long runs
/// get a [`Big`] description, found through a per-bucket bit and the line's count of those
/// before it.
#[derive(Debug, Default)]
struct Table<K: Key> {
    recs: HugeArray<K::Rec>,
    /// The buckets' offsets, [`LINE_BUCKETS`] a line; `b` (a bucket) is the top bits of the
    /// key's hash. Empty when a line's records would not fit its 16-bit ends (more than 65,535
    /// records in 26 buckets): then `bucket`, `big_buckets` and `big_ids` are used.
    lines: HugeArray<BucketLine>,
    /// The records of bucket `b` are `recs[bucket[b]..bucket[b + 1]]` (only without `lines`).
    bucket: HugeArray<u32>,
    shift: u32,
    /// Distinct keys in `recs`.
    keys: usize,
    /// Long runs' descriptions, in record order (so by bucket, then key)…
    big_heads: Vec<BigHead<K>>,
    /// …the starts of their port groups, at the same places…
    big_starts: Vec<GroupStarts>,
    /// …where each key's is (for updates, and lookups without `lines`)…
    big_ids: FxHashMap<K, u32>,
    /// …where their time slices begin in `slices` (`u32::MAX`: none), at the same places, so
    /// that a port-less lookup starts loading them before it reads the description…
    big_slices_at: Vec<u32>,
    /// …and, one bit per bucket, the buckets that hold one (read only when `big_heads` isn't
    /// empty; only without `lines`).
    big_buckets: Vec<u64>,
    /// First port of each group of a multi-group long run (a few cache lines to binary-search
    /// where the run itself would cost one miss per step)…
    gfirst: Vec<u16>,
    /// …and where the group starts in `recs`.
    gstart: Vec<u32>,
    /// The long runs' time slices…
    slices: Vec<Slice>,
    /// …and their copies of the entries.
    slice_recs: Vec<SliceRec>,
    /// Entries added since the base was built, in one list per key (`recent_heads`).
    recent: Vec<Node>,
    recent_heads: FxHashMap<K, u32>,
}

impl<K: Key> Table<K> {
    fn insert(&mut self, k: K, e: Entry) {
        let idx = self.recent.len() as u32;
        let head = self.recent_heads.entry(k).or_insert(NIL);
        self.recent.push(Node { e, next: *head });
        *head = idx;
    }

    /// The records of the bucket `h` (a key's hash) falls in.
    #[inline]
    fn bucket_range(&self, h: u64) -> (usize, usize) {
        let b = (h >> self.shift) as usize;
        if let Some(line) = self.lines.get(b / LINE_BUCKETS) {
            let i = b % LINE_BUCKETS;
            let lo = if i == 0 { 0 } else { line.ends[i - 1] };
            return (line.base as usize + lo as usize, line.base as usize + line.ends[i] as usize);
        }
        let bucket: &[u32] = &self.bucket;
        match (bucket.get(b), bucket.get(b + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => (0, 0),
        }
    }

    /// Where in `big_heads` the first long run of the bucket `h` falls in is, if it holds one
    /// (with `lines`; without, `None`). Two long runs may share a bucket, and then an earlier
    /// bucket's second pushes the place further: see [`Table::big_id`].
    #[inline]
    fn first_big_of_bucket(&self, h: u64) -> Option<usize> {
        let b = (h >> self.shift) as usize;
        let line = self.lines.get(b / LINE_BUCKETS)?;
        let i = b % LINE_BUCKETS;
        if (line.big >> i) & 1 == 0 {
            return None;
        }
        Some(line.first_big as usize + (line.big & ((1u32 << i) - 1)).count_ones() as usize)
    }

    /// Where the long-run description of `k` is in `big_heads`, if it has one.
    #[inline]
    fn big_id(&self, k: K, h: u64) -> Option<usize> {
        if self.big_heads.is_empty() {
            return None;
        }
        let b = (h >> self.shift) as usize;
        if self.lines.is_empty() {
            let marked = self.big_buckets.get(b / 64).is_some_and(|w| (w >> (b % 64)) & 1 != 0);
            return if marked { self.big_ids.get(&k).map(|&id| id as usize) } else { None };
        }
        let mut id = self.first_big_of_bucket(h)?;
        while let Some(head) = self.big_heads.get(id) {
            let hb = (head.key.hash64() >> self.shift) as usize;
            if hb > b {
                return None;
            }
            if hb == b && head.key == k {
                return Some(id);
            }
            id += 1;
        }
        None
    }

    /// The long-run description of `k`, if it has one.
    #[inline]
    fn big(&self, k: K, h: u64) -> Option<&Big> {
        self.big_id(k, h).and_then(|id| self.big_heads.get(id)).map(|head| &head.big)
    }

    /// Where the records of `k` (a key without a long run) are in `recs`; empty if it has none.
    #[inline]
    fn small_run(&self, recs: &[K::Rec], k: K, h: u64) -> (usize, usize) {
        let (lo, hi) = self.bucket_range(h);
        let Some(bucket) = recs.get(lo..hi) else { return (0, 0) };
        let from = if bucket.len() <= SCAN_MAX {
            match bucket.iter().position(|r| K::of(r) == k) {
                Some(i) => i,
                None => return (0, 0),
            }
        } else {
            bucket.partition_point(|r| {
                let rk = K::of(r);
                (rk.hash64(), rk) < (h, k)
            })
        };
        let n = bucket[from..].iter().take_while(|r| K::of(r) == k).count();
        (lo + from, lo + from + n)
    }

    /// Which port groups of a long run `port` may fall in, as a range of group numbers (a run
    /// without groups is one group, the whole run).
    #[inline]
    fn group_range(&self, big: &Big, port: Option<u16>) -> (u32, u32) {
        let (g, ng) = (big.g as usize, big.ng as usize);
        if ng == 0 {
            return (0, 1);
        }
        match port {
            None => (0, ng as u32),
            // The same bounds as the searches below, by arithmetic: the groups whose first port
            // is at most `p` and at least `p - max_width`.
            Some(p) if big.step > 0 => {
                let (f0, step) = (u32::from(big.first), u32::from(big.step));
                let p = u32::from(p);
                if p < f0 {
                    return (0, 0);
                }
                let hi = ((p - f0) / step + 1).min(ng as u32);
                let from = p.saturating_sub(u32::from(big.max_width));
                let lo = if from <= f0 { 0 } else { (from - f0).div_ceil(step).min(hi) };
                (lo, hi)
            }
            Some(p) => {
                let Some(firsts) = self.gfirst.get(g..g + ng) else { return (0, 0) };
                let hi = firsts.partition_point(|f| *f <= p);
                let from = p.saturating_sub(big.max_width);
                (firsts[..hi].partition_point(|f| *f < from) as u32, hi as u32)
            }
        }
    }

    /// The records of group `gi` of the long run `big_heads[id]`, as a range of `recs`.
    #[inline]
    fn group_recs(&self, id: u32, gi: u32) -> (usize, usize) {
        let Some(big) = self.big_heads.get(id as usize).map(|head| &head.big) else { return (0, 0) };
        let (start, end) = big.records();
        if big.ng == 0 {
            return (start, end);
        }
        let at = |i: u32| {
            if i >= big.ng {
                end
            } else if big.inline {
                self.big_starts.get(id as usize).map_or(end, |s| start + usize::from(s.0[i as usize]))
            } else {
                self.gstart.get((big.g + i) as usize).map_or(end, |&x| x as usize)
            }
        };
        (at(gi), at(gi + 1))
    }

    /// What a lookup of `k` on `port` reads, worked out once so that [`Index::lookup_batch`]'s
    /// pipeline doesn't search the long-run map and the port groups again at each stage.
    #[inline]
    fn plan(&self, k: K, port: Option<u16>, t: u32) -> Plan {
        let h = k.hash64();
        match self.big_id(k, h) {
            Some(id) if port.is_none() && self.big_heads[id].big.ns > 0 => {
                let (s, ns) = (self.big_slices_at[id] as usize, self.big_heads[id].big.ns as usize);
                let slices = self.slices.get(s..s + ns).unwrap_or_default();
                match slices.partition_point(|x| x.time <= t).checked_sub(1).and_then(|i| slices.get(i)) {
                    Some(x) => Plan::Slice { lo: x.lo, hi: x.hi },
                    // Before the run's first start: none of its entries.
                    None => Plan::Slice { lo: 0, hi: 0 },
                }
            }
            Some(id) => {
                let (glo, ghi) = self.group_range(&self.big_heads[id].big, port);
                Plan::Big { id: id as u32, glo, ghi }
            }
            None => {
                let (lo, hi) = self.bucket_range(h);
                Plan::Bucket { lo: lo as u32, hi: hi as u32 }
            }
        }
    }

    #[inline]
    fn stab(&self, k: K, port: Option<u16>, t: u32, acc: &mut Candidates) {
        self.stab_planned(k, self.plan(k, port, t), port, t, acc);
    }

    #[inline]
    fn stab_planned(&self, k: K, plan: Plan, port: Option<u16>, t: u32, acc: &mut Candidates) {
        let recs: &[K::Rec] = &self.recs;
        match plan {
            // The slice of the instant: the subscribers of its copies that cover `t`, written
            // without a branch as below.
            Plan::Slice { lo, hi } => {
                let copies = self.slice_recs.get(lo as usize..hi as usize).unwrap_or_default();
                let mut found = vec![0u32; copies.len() + 1];
                let mut n = 0;
                for c in copies {
                    found[n] = c.sub;
                    n += usize::from((c.start <= t) & (t < c.end));
                }
                found.truncate(n);
                acc.absorb(found);
            }
            // Without a port every entry of the run is read: one pass over it, the subscribers of
            // those that cover `t` written without a branch (which of them do is random).
            Plan::Big { id, .. } if port.is_none() => {
                let (a, b) = self.big_heads.get(id as usize).map_or((0, 0), |head| head.big.records());
                let run = recs.get(a..b).unwrap_or_default();
                let mut found = vec![0u32; run.len() + 1];
                let mut n = 0;
                for r in run {
                    let e = K::entry(r);
                    found[n] = e.sub;
                    n += usize::from((e.start <= t) & (t < e.end));
                }
                found.truncate(n);
                acc.absorb(found);
            }
            Plan::Big { id, glo, ghi } => {
                let max_dur = self.big_heads.get(id as usize).map_or(0, |head| head.big.max_dur);
                for gi in glo..ghi {
                    let (a, b) = self.group_recs(id, gi);
                    scan_group::<K>(recs.get(a..b).unwrap_or_default(), port, t, max_dur, acc);
                }
            }
            Plan::Bucket { lo, hi } => {
                let bucket = recs.get(lo as usize..hi as usize).unwrap_or_default();
                // A bucket of a few keys is scanned whole, the key compared with the rest:
                // cheaper than finding the run first (that search's branches are unpredictable).
                let run = if bucket.len() <= 2 * SCAN_MAX {
                    bucket
                } else {
                    let (a, b) = self.small_run(recs, k, k.hash64());
                    &recs[a..b]
                };
                for r in run {
                    let e = K::entry(r);
                    if (K::of(r) == k) & e.covers(port, t) {
                        acc.push(e.sub);
                    }
                }
            }
        }
        if !self.recent_heads.is_empty() {
            let mut n = self.recent_heads.get(&k).copied().unwrap_or(NIL);
            while n != NIL {
                let node = &self.recent[n as usize];
                if node.e.covers(port, t) {
                    acc.push(node.e.sub);
                }
                n = node.next;
            }
        }
    }

    /// Starts loading the key's bucket offsets (the first stage of [`Index::lookup_batch`]'s
    /// pipeline; software prefetches: nothing waits for them).
    #[inline]
    fn touch_bucket(&self, k: K) {
        let b = (k.hash64() >> self.shift) as usize;
        let lines: &[BucketLine] = &self.lines;
        if !lines.is_empty() {
            if b / LINE_BUCKETS < lines.len() {
                prefetch_index::prefetch_index(lines, b / LINE_BUCKETS);
            }
            return;
        }
        let bucket: &[u32] = &self.bucket;
        if b < bucket.len() {
            prefetch_index::prefetch_index(bucket, b);
            if !self.big_heads.is_empty() && b / 64 < self.big_buckets.len() {
                prefetch_index::prefetch_index(&self.big_buckets, b / 64);
            }
        }
    }

    /// Starts loading the description and group starts of the long run of `k`'s bucket, if it
    /// holds one (the second stage of [`Index::lookup_batch`]'s pipeline; the bucket's line is in
    /// cache by now). Nothing here waits for memory: the place comes from the bucket line alone.
    #[inline]
    fn touch_groups(&self, k: K, port: Option<u16>) {
        if let Some(id) = self.first_big_of_bucket(k.hash64())
            && id < self.big_heads.len()
        {
            prefetch_index::prefetch_index(&self.big_heads, id);
            match port {
                Some(_) => prefetch_index::prefetch_index(&self.big_starts, id),
                // A port-less lookup reads the run's time slices instead: their place comes
                // from a small array that stays in cache (4 bytes a long run).
                None => {
                    if let Some(&s) = self.big_slices_at.get(id)
                        && (s as usize) < self.slices.len()
                    {
                        let per_line = (64 / size_of::<Slice>()).max(1);
                        prefetch_index::prefetch_index(&self.slices, s as usize);
                        prefetch_index::prefetch_index(
                            &self.slices,
                            (s as usize + per_line).min(self.slices.len() - 1),
                        );
                    }
                }
            }
        }
    }

    /// Starts loading the records a planned lookup reads: the bucket, the first port group of
    /// a long run, or (without a port) the whole run.
    #[inline]
    fn touch_planned(&self, plan: Plan, port: Option<u16>) {
        let recs: &[K::Rec] = &self.recs;
        // A bucket's or a port group's few lines non-temporally: a lookup reads them once, and
        // loaded the usual way they pushed the bucket lines and long-run descriptions (read by
        // every lookup) out of the caches (4-8 % more lookups a second in alternated runs of the
        // mix, BENCHMARKS.md). A whole run's hundred lines the usual way: non-temporal lines
        // that many were evicted before they were read.
        let (lo, hi, lines, non_temporal) = match plan {
            Plan::Big { id, .. } if port.is_none() => {
                let (lo, hi) = self.big_heads.get(id as usize).map_or((0, 0), |head| head.big.records());
                (lo, hi, TOUCH_LINES_WHOLE_RUN, false)
            }
            Plan::Big { id, glo, ghi } if glo < ghi => {
                let (lo, hi) = self.group_recs(id, glo);
                (lo, hi, TOUCH_LINES, true)
            }
            Plan::Big { .. } => return,
            Plan::Slice { lo, hi } => {
                let copies = self.slice_recs.get(lo as usize..hi as usize).unwrap_or_default();
                for i in (0..copies.len()).step_by((64 / size_of::<SliceRec>()).max(1)) {
                    prefetch_index::prefetch_index(copies, i);
                }
                if let Some(i) = copies.len().checked_sub(1) {
                    prefetch_index::prefetch_index(copies, i);
                }
                return;
            }
            Plan::Bucket { lo, hi } => (lo as usize, hi as usize, TOUCH_LINES, true),
        };
        let per_line = (64 / size_of::<K::Rec>()).max(1);
        let mut i = lo;
        let end = hi.min(lo + lines * per_line).min(recs.len());
        if non_temporal {
            while i < end {
                prefetch_index::prefetch_index_nta(recs, i);
                i += per_line;
            }
        } else {
            while i < end {
                prefetch_index::prefetch_index(recs, i);
                i += per_line;
            }
        }
    }

    #[inline]
    fn touch(&self, k: K, port: Option<u16>, t: u32) {
        self.touch_planned(self.plan(k, port, t), port);
    }

    /// Sets the end of the entry (key, first, last, start, sub); inserts it if absent.
    fn set_end(&mut self, k: K, mut e: Entry, end: u32) {
        if let Some(&head) = self.recent_heads.get(&k) {
            let mut n = head;
            while n != NIL {
                let node = &mut self.recent[n as usize];
                let x = &mut node.e;
                if x.start == e.start && x.sub == e.sub && x.first == e.first && x.last == e.last {
                    x.end = end;
                    return;
                }
                n = node.next;
            }
        }
        let h = k.hash64();
        let (a, b) = match self.big(k, h) {
            Some(big) => big.records(),
            None => self.small_run(&self.recs, k, h),
        };
        let recs: &mut [K::Rec] = &mut self.recs;
        let run = &mut recs[a..b];
        let mut i = run.partition_point(|r| {
            let x = K::entry(r);
            (x.first, x.start) < (e.first, e.start)
        });
        while let Some(r) = run.get_mut(i) {
            let x = K::entry(r);
            if x.first != e.first || x.start != e.start {
                break;
            }
            if x.sub == e.sub && x.last == e.last {
                K::set_end(r, end);
                let dur = end.saturating_sub(x.start);
                if let Some(&id) = self.big_ids.get(&k)
                    && let Some(head) = self.big_heads.get_mut(id as usize)
                {
                    let big = &mut head.big;
                    big.max_dur = big.max_dur.max(dur);
                    let s = self.big_slices_at.get(id as usize).map_or(0, |&s| s as usize);
                    let ns = big.ns as usize;
                    if let Some(slices) = self.slices.get(s..s + ns) {
                        // The copies move with the entry; an end moved past a later slice's
                        // beginning would need a copy there too: the slices stop being used
                        // (a port-less lookup reads the run) until the next rebuild.
                        // An emptied entry (end at its start) has no copies at all.
                        let uncopied = x.end <= x.start && end > x.start;
                        if uncopied || slices.iter().any(|sl| x.end <= sl.time && sl.time < end && x.start < sl.time) {
                            big.ns = 0;
                        } else {
                            for sl in slices {
                                let copies = self.slice_recs.get_mut(sl.lo as usize..sl.hi as usize);
                                for c in copies.unwrap_or_default() {
                                    if c.start == x.start && c.sub == x.sub && c.end == x.end {
                                        c.end = end;
                                    }
                                }
                            }
                        }
                    }
                }
                return;
            }
            i += 1;
        }
        if end > e.start {
            e.end = end;
            self.insert(k, e);
        }
    }

    fn needs_rebuild(&self) -> bool {
        self.recent.len() > MIN_RECENT.max(self.recs.len() / 4)
    }

    /// Folds the recent entries into the base, dropping entries that ended before `cutoff` (and
    /// empty ones). Returns how many entries were dropped.
    fn rebuild(&mut self, cutoff: u32) -> usize {
        let mut fresh: Vec<K::Rec> = Vec::with_capacity(self.recent.len());
        for (&k, &head) in &self.recent_heads {
            let mut n = head;
            while n != NIL {
                let node = &self.recent[n as usize];
                fresh.push(k.rec(node.e));
                n = node.next;
            }
        }
        self.recent = Vec::new();
        self.recent_heads = FxHashMap::default();
        let before = self.recs.len() + fresh.len();
        fresh.retain(|r| K::entry(r).kept(cutoff));
        fresh.sort_unstable_by_key(order::<K>);
        // The base is sorted already: merge rather than sort it again.
        let old: &[K::Rec] = &self.recs;
        let mut merged = Vec::with_capacity(old.len() + fresh.len());
        let mut new = fresh.into_iter().peekable();
        for r in old.iter().filter(|r| K::entry(r).kept(cutoff)) {
            while let Some(n) = new.next_if(|n| order::<K>(n) < order::<K>(r)) {
                merged.push(n);
            }
            merged.push(*r);
        }
        merged.extend(new);
        let dropped = before - merged.len();
        self.layout(merged);
        dropped
    }

    /// Makes `recs` (sorted by [`order`]) the base: its buckets and its long runs' descriptions.
    fn layout(&mut self, recs: Vec<K::Rec>) {
        let keys = recs.iter().enumerate().filter(|(i, r)| *i == 0 || K::of(&recs[i - 1]) != K::of(r)).count();
        let buckets = (keys * 4).next_power_of_two().max(8);
        let shift = 64 - buckets.trailing_zeros();
        let mut bucket = vec![0u32; buckets + 1];
        let (mut big_heads, mut big_starts, mut big_ids) = (Vec::new(), Vec::new(), FxHashMap::default());
        let mut big_slices_at = Vec::new();
        // The bucket of each long run, in order (for the lines' counts of those before them).
        let mut big_at = Vec::new();
        let mut big_buckets = vec![0u64; buckets.div_ceil(64)];
        let (mut gfirst, mut gstart) = (Vec::new(), Vec::new());
        let (mut slices, mut slice_recs) = (Vec::new(), Vec::new());
        let mut next_bucket = 0;
        let mut i = 0;
        while i < recs.len() {
            let k = K::of(&recs[i]);
            let b = (k.hash64() >> shift) as usize;
            while next_bucket <= b {
                bucket[next_bucket] = i as u32;
                next_bucket += 1;
            }
            let run = &recs[i..i + recs[i..].iter().take_while(|r| K::of(r) == k).count()];
            if run.len() > SMALL_RUN {
                let entries = || run.iter().map(|r| K::entry(r));
                // The port groups' first ports and where they start in the run (none: one group).
                let (mut firsts, mut starts) = (Vec::new(), Vec::new());
                let first = K::entry(&run[0]).first;
                if entries().any(|e| e.first != first) {
                    let mut prev = None;
                    for (j, e) in entries().enumerate() {
                        if prev != Some(e.first) {
                            firsts.push(e.first);
                            starts.push(j);
                            prev = Some(e.first);
                        }
                    }
                }
                let step = uniform_step(&firsts);
                let inline = starts.len() <= INLINE_GROUPS && run.len() <= usize::from(u16::MAX);
                let mut line = GroupStarts::default();
                if inline {
                    for (slot, &j) in line.0.iter_mut().zip(&starts) {
                        *slot = j as u16;
                    }
                }
                let g = gfirst.len() as u32;
                // The first ports are searched only when they are not evenly spaced.
                if !inline || step == 0 {
                    gfirst.extend_from_slice(&firsts);
                    gstart.extend(starts.iter().map(|&j| (i + j) as u32));
                }
                let max_dur = entries().map(|e| e.end - e.start).max().unwrap_or(0);
                let (s, ns) = time_slices(entries(), max_dur, &mut slices, &mut slice_recs);
                big_ids.insert(k, big_heads.len() as u32);
                big_heads.push(BigHead {
                    key: k,
                    big: Big {
                        off: i as u32,
                        len: run.len() as u32,
                        max_dur,
                        g,
                        ng: firsts.len() as u32,
                        max_width: entries().map(|e| e.last - e.first).max().unwrap_or(0),
                        step,
                        first: firsts.first().copied().unwrap_or(0),
                        inline,
                        ns,
                    },
                });
                big_starts.push(line);
                big_slices_at.push(if ns > 0 { s } else { u32::MAX });
                big_at.push(b);
                big_buckets[b / 64] |= 1 << (b % 64);
            }
            i += run.len();
        }
        while next_bucket <= buckets {
            bucket[next_bucket] = recs.len() as u32;
            next_bucket += 1;
        }
        gfirst.shrink_to_fit();
        gstart.shrink_to_fit();
        big_heads.shrink_to_fit();
        big_starts.shrink_to_fit();
        big_ids.shrink_to_fit();
        big_slices_at.shrink_to_fit();
        slices.shrink_to_fit();
        slice_recs.shrink_to_fit();
        self.keys = keys;
        self.shift = shift;
        match bucket_lines(&bucket, &big_buckets, &big_at) {
            Some(lines) => {
                self.lines = HugeArray::from_vec(lines);
                self.bucket = HugeArray::default();
                self.big_buckets = Vec::new();
            }
            None => {
                self.lines = HugeArray::default();
                self.bucket = HugeArray::from_vec(bucket);
                self.big_buckets = big_buckets;
            }
        }
        self.big_heads = big_heads;
        self.big_starts = big_starts;
        self.big_ids = big_ids;
        self.big_slices_at = big_slices_at;
        self.gfirst = gfirst;
        self.gstart = gstart;
        self.slices = slices;
        self.slice_recs = slice_recs;
        // The old records go before the new ones are copied into their mapping: at most two
        // copies at a time.
        self.recs = HugeArray::default();
        self.recs = HugeArray::from_vec(recs);
    }

    fn len(&self) -> usize {
        self.recs.len() + self.recent.len()
    }

    fn mapped_bytes(&self) -> usize {
        self.recs.mapped_bytes() + self.lines.mapped_bytes() + self.bucket.mapped_bytes()
    }

    fn heap_bytes(&self) -> usize {
        self.recs.bytes()
            + self.lines.bytes()
            + self.bucket.bytes()
            + self.big_heads.capacity() * size_of::<BigHead<K>>()
            + self.big_starts.capacity() * size_of::<GroupStarts>()
            + self.big_slices_at.capacity() * 4
            + self.big_ids.capacity() * (size_of::<(K, u32)>() + 1)
            + self.big_buckets.capacity() * 8
            + self.gfirst.capacity() * 2
            + self.gstart.capacity() * 4
            + self.slices.capacity() * size_of::<Slice>()
            + self.slice_recs.capacity() * size_of::<SliceRec>()
            + self.recent.capacity() * size_of::<Node>()
            + self.recent_heads.capacity() * (size_of::<(K, u32)>() + 1)
    }
}

/// Appends the time slices of a long run (its entries, `max_dur` their longest) to `slices` and
/// their copies to `recs`: a slice begins at every [`SLICE_STARTS`]th start and holds the
/// entries that overlap it. Returns where they begin in `slices` and how many there are; none
/// if they would copy more than [`SLICE_MAX_COPIES`] times the entries.
fn time_slices(
    entries: impl Iterator<Item = Entry>,
    max_dur: u32,
    slices: &mut Vec<Slice>,
    recs: &mut Vec<SliceRec>,
) -> (u32, u32) {
    let mut es: Vec<Entry> = entries.filter(|e| e.end > e.start).collect();
    es.sort_unstable_by_key(|e| e.start);
    let mut times: Vec<u32> = es.iter().step_by(SLICE_STARTS).map(|e| e.start).collect();
    times.dedup();
    let (s, first_rec) = (slices.len(), recs.len());
    let undo = |slices: &mut Vec<Slice>, recs: &mut Vec<SliceRec>| {
        slices.truncate(s);
        recs.truncate(first_rec);
        (0, 0)
    };
    for (k, &time) in times.iter().enumerate() {
        let next = times.get(k + 1).copied().unwrap_or(u32::MAX);
        let lo = recs.len();
        // Entries that overlap [time, next): started before `next`, ended after `time` (so
        // started at most `max_dur` before it).
        let from = es.partition_point(|e| e.start < time.saturating_sub(max_dur));
        for e in es.get(from..).unwrap_or_default().iter().take_while(|e| e.start < next) {
            if e.end > time {
                recs.push(SliceRec { start: e.start, end: e.end, sub: e.sub });
            }
        }
        let (Ok(lo), Ok(hi)) = (u32::try_from(lo), u32::try_from(recs.len())) else {
            return undo(slices, recs);
        };
        if recs.len() - first_rec > SLICE_MAX_COPIES * es.len() {
            return undo(slices, recs);
        }
        slices.push(Slice { time, lo, hi });
    }
    match (u32::try_from(s), u32::try_from(times.len())) {
        (Ok(s), Ok(ns)) => (s, ns),
        _ => undo(slices, recs),
    }
}

/// The offsets `bucket` (one per bucket and one past the last), long-run bits and the buckets
/// of the long runs in order (`big_at`) as [`BucketLine`]s; `None` if a line's records don't
/// fit its 16-bit ends.
fn bucket_lines(bucket: &[u32], big_buckets: &[u64], big_at: &[usize]) -> Option<Vec<BucketLine>> {
    let buckets = bucket.len().saturating_sub(1);
    let last = bucket.last().copied().unwrap_or(0);
    let mut lines = Vec::with_capacity(buckets.div_ceil(LINE_BUCKETS));
    let mut bigs_before = 0;
    for l in 0..buckets.div_ceil(LINE_BUCKETS) {
        let base = bucket[l * LINE_BUCKETS];
        while big_at.get(bigs_before).is_some_and(|&b| b < l * LINE_BUCKETS) {
            bigs_before += 1;
        }
        let mut line = BucketLine { base, first_big: bigs_before as u32, ..BucketLine::default() };
        for i in 0..LINE_BUCKETS {
            let b = l * LINE_BUCKETS + i;
            let end = bucket.get(b + 1).copied().unwrap_or(last);
            line.ends[i] = u16::try_from(end - base).ok()?;
            if b < buckets && (big_buckets[b / 64] >> (b % 64)) & 1 != 0 {
                line.big |= 1 << i;
            }
        }
        lines.push(line);
    }
    Some(lines)
}

/// Where an entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    V4(u32),
    V6 { len: u8, prefix: u128 },
}

/// The entries of a row: (target, first port, last port).
fn targets(row: &SessionRow) -> impl Iterator<Item = (Target, u16, u16)> + '_ {
    let framed = row.framed_ipv4.map(|a| (Target::V4(u32::from(a)), 0, u16::MAX));
    let blocks = row.port_blocks.iter().map(|b| (Target::V4(u32::from(b.public)), b.first, b.last));
    let v6 = row.ipv6.iter().map(|p| (Target::V6 { len: p.len, prefix: u128::from(p.addr) }, 0, u16::MAX));
    framed.into_iter().chain(blocks).chain(v6)
}

/// Which IPv6 table orders the IPv6 queries of [`Index::lookup_sorted`].
#[derive(Debug, Clone, Copy)]
enum V6Order {
    /// The table of prefixes of this length, up to /64.
    Short(u8),
    /// The table of prefixes of this length, longer than /64.
    Long(u8),
    /// No IPv6 table.
    None,
}

/// Sorts `(key << 32) | position` values by their key (the high 32 bits), stably: two passes
/// of a least-significant-digit radix sort on 16-bit digits, O(n) where a comparison sort of a
/// million queries would cost several times the lookups it is meant to speed up. Written here
/// rather than taken from a crate: it is twenty lines over one fixed layout. Public for the
/// benchmark, which orders its baseline's queries the same way.
pub fn radix_sort_high32(v: &mut Vec<u64>) {
    let mut tmp = vec![0u64; v.len()];
    let mut counts = vec![0usize; 1 << 16];
    for shift in [32u32, 48] {
        counts.iter_mut().for_each(|c| *c = 0);
        for &x in v.iter() {
            counts[((x >> shift) & 0xffff) as usize] += 1;
        }
        let mut at = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = at;
            at += n;
        }
        for &x in v.iter() {
            let d = ((x >> shift) & 0xffff) as usize;
            tmp[counts[d]] = x;
            counts[d] += 1;
        }
        std::mem::swap(v, &mut tmp);
    }
}

/// Subscriber ids, interned.
#[derive(Debug, Default)]
struct Interner {
    names: Vec<Arc<str>>,
    ids: FxHashMap<Arc<str>, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.names.push(a.clone());
        self.ids.insert(a, i);
        i
    }
}

/// The in-memory index of sessions. See the module documentation.
#[derive(Debug, Default)]
pub struct Index {
    subs: Interner,
    v4: Table<u32>,
    /// IPv6 tables for prefixes up to /64 (keyed by the top 64 bits), by length.
    v6_short: Vec<(u8, Table<u64>)>,
    /// IPv6 tables for longer prefixes (/65 to /128), by length.
    v6_long: Vec<(u8, Table<u128>)>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    fn add(&mut self, target: Target, e: Entry, end: Option<u32>) {
        match target {
            Target::V4(a) => match end {
                None => self.v4.insert(a, e),
                Some(end) => self.v4.set_end(a, e, end),
            },
            Target::V6 { len, prefix } if len <= 64 => {
                let t = match self.v6_short.iter().position(|(l, _)| *l == len) {
                    Some(i) => &mut self.v6_short[i].1,
                    None => {
                        self.v6_short.push((len, Table::default()));
                        self.v6_short.sort_by_key(|(l, _)| *l);
                        let i = self.v6_short.iter().position(|(l, _)| *l == len).unwrap_or(0);
                        &mut self.v6_short[i].1
                    }
                };
                let k = (mask128(prefix, len) >> 64) as u64;
                match end {
                    None => t.insert(k, e),
                    Some(end) => t.set_end(k, e, end),
                }
            }
            Target::V6 { len, prefix } => {
                let t = match self.v6_long.iter().position(|(l, _)| *l == len) {
                    Some(i) => &mut self.v6_long[i].1,
                    None => {
                        self.v6_long.push((len, Table::default()));
                        self.v6_long.sort_by_key(|(l, _)| *l);
                        let i = self.v6_long.iter().position(|(l, _)| *l == len).unwrap_or(0);
                        &mut self.v6_long[i].1
                    }
                };
                let k = mask128(prefix, len);
                match end {
                    None => t.insert(k, e),
                    Some(end) => t.set_end(k, e, end),
                }
            }
        }
    }

    /// Adds a session (a row not yet in the index).
    pub fn insert(&mut self, row: &SessionRow) {
        let sub = self.subs.intern(&row.subscriber);
        let (start, end) = (row.start, row.end());
        if end <= start {
            return;
        }
        for (target, first, last) in targets(row) {
            self.add(target, Entry { start, end, sub, first, last }, None);
        }
    }

    /// Removes a session's entries (they are emptied now and dropped at the next rebuild).
    pub fn remove(&mut self, row: &SessionRow) {
        let sub = self.subs.intern(&row.subscriber);
        for (target, first, last) in targets(row) {
            self.add(target, Entry { start: row.start, end: row.end(), sub, first, last }, Some(row.start));
        }
    }

    /// Replaces the row `old` (as indexed before) by `new` (the same session after an event).
    pub fn update(&mut self, old: Option<&SessionRow>, new: &SessionRow) {
        match old {
            None => self.insert(new),
            Some(o) if o.start == new.start && o.subscriber == new.subscriber => {
                let sub = self.subs.intern(&new.subscriber);
                let end = new.end();
                let old_targets: Vec<_> = targets(o).collect();
                for t in targets(new) {
                    let (target, first, last) = t;
                    let e = Entry { start: new.start, end, sub, first, last };
                    if old_targets.contains(&t) {
                        if o.end() != end {
                            self.add(target, e, Some(end));
                        }
                    } else if end > new.start {
                        self.add(target, e, None);
                    }
                }
                for t in old_targets {
                    if !targets(new).any(|n| n == t) {
                        let (target, first, last) = t;
                        self.add(target, Entry { start: o.start, end: o.end(), sub, first, last }, Some(o.start));
                    }
                }
            }
            Some(o) => {
                self.remove(o);
                self.insert(new);
            }
        }
        if self.needs_rebuild() {
            self.rebuild(0);
        }
    }

    fn needs_rebuild(&self) -> bool {
        self.v4.needs_rebuild()
            || self.v6_short.iter().any(|(_, t)| t.needs_rebuild())
            || self.v6_long.iter().any(|(_, t)| t.needs_rebuild())
    }

    fn rebuild(&mut self, cutoff: u32) -> usize {
        let mut n = self.v4.rebuild(cutoff);
        for (_, t) in &mut self.v6_short {
            n += t.rebuild(cutoff);
        }
        for (_, t) in &mut self.v6_long {
            n += t.rebuild(cutoff);
        }
        self.v6_short.retain(|(_, t)| t.len() > 0);
        self.v6_long.retain(|(_, t)| t.len() > 0);
        n
    }

    /// Folds recent entries into the compact base (done automatically as they accumulate; call
    /// it after a bulk load).
    pub fn compact(&mut self) {
        self.rebuild(0);
    }

    /// Drops every entry of sessions that ended before `cutoff`; returns how many entries went.
    pub fn retain(&mut self, cutoff: Timestamp) -> usize {
        self.rebuild(unix_secs(cutoff))
    }

    /// Who held `addr` at `at`: with `port`, only sessions whose port block contains it (or that
    /// hold the whole address); without, every session on the address.
    pub fn lookup_v4(&self, addr: Ipv4Addr, port: Option<u16>, at: Timestamp) -> Attribution {
        self.lookup_v4_secs(addr, port, unix_secs(at))
    }

    /// [`Index::lookup_v4`] with `at` in Unix seconds.
    #[inline]
    pub fn lookup_v4_secs(&self, addr: Ipv4Addr, port: Option<u16>, at: u32) -> Attribution {
        let mut acc = Candidates::default();
        self.v4.stab(u32::from(addr), port, at, &mut acc);
        acc.finish()
    }

    /// Who held `addr` at `at`: every session with a prefix (framed or delegated) containing it.
    pub fn lookup_v6(&self, addr: Ipv6Addr, at: Timestamp) -> Attribution {
        self.lookup_v6_secs(addr, unix_secs(at))
    }

    /// [`Index::lookup_v6`] with `at` in Unix seconds.
    #[inline]
    pub fn lookup_v6_secs(&self, addr: Ipv6Addr, at: u32) -> Attribution {
        let a = u128::from(addr);
        let mut acc = Candidates::default();
        for (len, t) in &self.v6_short {
            t.stab((mask128(a, *len) >> 64) as u64, None, at, &mut acc);
        }
        for (len, t) in &self.v6_long {
            t.stab(mask128(a, *len), None, at, &mut acc);
        }
        acc.finish()
    }

    /// Answers many queries, in order: the same answers as one by one, faster. The queries go
    /// through a software pipeline (while one is answered, the records of the query
    /// [`BATCH_WINDOW`]` / 2` ahead, the CGNAT port groups of the one `3/4` ahead and the bucket
    /// offsets of the one a whole window ahead start loading), so that their cache misses overlap
    /// with each other and with the computing instead of following each other: with millions of
    /// sessions a lookup is bound by memory latency, not by computing.
    pub fn lookup_batch(&self, queries: &[Query], out: &mut Vec<Attribution>) {
        out.reserve(queries.len());
        self.lookup_pipelined(queries.len(), |i| queries[i], |_, a| out.push(a));
    }

    /// Answers many queries, in order, like [`Index::lookup_batch`], but visits them in the
    /// order of their place in the index: the queries are sorted by the bucket of their key (a
    /// radix sort of (bucket, query number)), answered in that order through the same pipeline,
    /// and the answers put back in the caller's order. Over a large batch (a report of a million
    /// rows) the buckets and the runs are then walked from one end to the other,
    /// so neighbouring queries share cache lines and pages and the hardware prefetcher follows
    /// the walk, instead of every read being a random one. The answers are exactly those of
    /// [`Index::lookup_batch`]; below [`SORT_MIN`] queries this is that function.
    ///
    /// Measured on the benchmark VMs (BENCHMARKS.md, issue 5) it is *slower* than
    /// [`Index::lookup_batch`] (a 1M-row report: 0.26–0.31 s against 0.14–0.19 s; 10M sessions:
    /// 15–40 % fewer lookups/s): the index is sparse compared with a batch (one query per many
    /// cache lines even in order) and reading the queries and writing the answers in sorted order
    /// costs two more random accesses per query. The report import therefore keeps
    /// [`Index::lookup_batch`]; this stays for the benchmark's comparison.
    pub fn lookup_sorted(&self, queries: &[Query], out: &mut Vec<Attribution>) {
        if queries.len() < SORT_MIN || u32::try_from(queries.len()).is_err() {
            return self.lookup_batch(queries, out);
        }
        let v6 = self.v6_order();
        let mut order: Vec<u64> =
            queries.iter().enumerate().map(|(i, q)| (u64::from(self.order_key(q, v6)) << 32) | i as u64).collect();
        radix_sort_high32(&mut order);
        let base = out.len();
        out.resize(base + queries.len(), Attribution::Unknown);
        let at = |j: usize| (order[j] as u32) as usize;
        self.lookup_pipelined(queries.len(), |j| queries[at(j)], |j, a| out[base + at(j)] = a);
    }

    /// The IPv6 table whose bucket order [`Index::lookup_sorted`] follows: the one with the
    /// most keys (the delegated prefixes, typically).
    fn v6_order(&self) -> V6Order {
        let short = self.v6_short.iter().max_by_key(|(_, t)| t.keys);
        let long = self.v6_long.iter().max_by_key(|(_, t)| t.keys);
        match (short, long) {
            (Some((l, s)), Some((_, g))) if s.keys >= g.keys => V6Order::Short(*l),
            (_, Some((l, _))) => V6Order::Long(*l),
            (Some((l, _)), None) => V6Order::Short(*l),
            (None, None) => V6Order::None,
        }
    }

    /// A query's place in the index, for [`Index::lookup_sorted`]: IPv4 before IPv6, then the
    /// top bits of the key's hash, which order the buckets and the records alike.
    #[inline]
    fn order_key(&self, q: &Query, v6: V6Order) -> u32 {
        match q.addr {
            IpAddr::V4(a) => (u32::from(a).hash64() >> 33) as u32,
            IpAddr::V6(a) => {
                let a = u128::from(a);
                let h = match v6 {
                    V6Order::Short(len) => ((mask128(a, len) >> 64) as u64).hash64(),
                    V6Order::Long(len) => mask128(a, len).hash64(),
                    V6Order::None => 0,
                };
                (1 << 31) | (h >> 33) as u32
            }
        }
    }

    /// Starts loading the bucket offsets a lookup of `q` reads first.
    #[inline]
    fn touch_buckets(&self, q: &Query) {
        match q.addr {
            IpAddr::V4(a) => self.v4.touch_bucket(u32::from(a)),
            IpAddr::V6(a) => {
                let a = u128::from(a);
                for (len, t) in &self.v6_short {
                    t.touch_bucket((mask128(a, *len) >> 64) as u64);
                }
                for (len, t) in &self.v6_long {
                    t.touch_bucket(mask128(a, *len));
                }
            }
        }
    }

    /// Starts loading the port-group list a lookup of `q` reads (IPv4 only: CGNAT).
    #[inline]
    fn touch_groups(&self, q: &Query) {
        if let IpAddr::V4(a) = q.addr {
            self.v4.touch_groups(u32::from(a), q.port);
        }
    }

    /// The IPv6 table, when there is only one (delegated prefixes of one length: the usual case),
    /// so that [`Index::lookup_batch`] can plan its lookups like IPv4 ones.
    #[inline]
    fn single_v6(&self) -> Option<(u8, &Table<u64>)> {
        match (&self.v6_short[..], &self.v6_long[..]) {
            ([(len, t)], []) => Some((*len, t)),
            _ => None,
        }
    }

    /// Works out what a lookup of `q` reads and starts loading its records (its bucket offsets
    /// and port groups are in cache by now). `None`: several IPv6 tables, looked up the general
    /// way.
    #[inline]
    fn plan_and_touch(&self, q: &Query) -> Option<Plan> {
        match q.addr {
            IpAddr::V4(a) => {
                let plan = self.v4.plan(u32::from(a), q.port, q.at);
                self.v4.touch_planned(plan, q.port);
                Some(plan)
            }
            IpAddr::V6(a) => match self.single_v6() {
                Some((len, t)) => {
                    let plan = t.plan((mask128(u128::from(a), len) >> 64) as u64, None, q.at);
                    t.touch_planned(plan, None);
                    Some(plan)
                }
                None => {
                    let a = u128::from(a);
                    for (len, t) in &self.v6_short {
                        t.touch((mask128(a, *len) >> 64) as u64, None, q.at);
                    }
                    for (len, t) in &self.v6_long {
                        t.touch(mask128(a, *len), None, q.at);
                    }
                    None
                }
            },
        }
    }

    /// Answers `q` by the plan [`Index::plan_and_touch`] made for it.
    #[inline]
    fn answer_planned(&self, q: &Query, plan: Option<Plan>) -> Attribution {
        let mut acc = Candidates::default();
        match (q.addr, plan) {
            (IpAddr::V4(a), Some(plan)) => self.v4.stab_planned(u32::from(a), plan, q.port, q.at, &mut acc),
            (IpAddr::V6(a), Some(plan)) => match self.single_v6() {
                Some((len, t)) => {
                    t.stab_planned((mask128(u128::from(a), len) >> 64) as u64, plan, None, q.at, &mut acc)
                }
                None => return self.lookup_v6_secs(a, q.at),
            },
            (IpAddr::V4(a), None) => return self.lookup_v4_secs(a, q.port, q.at),
            (IpAddr::V6(a), None) => return self.lookup_v6_secs(a, q.at),
        }
        acc.finish()
    }

    /// Answers `n` queries (`query(i)`, in order) as a software pipeline: while query `i` is
    /// answered, the records of query `i + BATCH_WINDOW / 2` (planned then: its bucket or port
    /// groups worked out), the port-group lists of query `i + 3/4 BATCH_WINDOW` and the bucket
    /// offsets of query `i + BATCH_WINDOW` start loading, so the memory reads of the queries
    /// ahead overlap with the computing of the current one instead of following it.
    #[inline]
    fn lookup_pipelined(&self, n: usize, query: impl Fn(usize) -> Query, mut answer: impl FnMut(usize, Attribution)) {
        const AHEAD: usize = BATCH_WINDOW / 2;
        const GROUPS_AHEAD: usize = BATCH_WINDOW * 3 / 4;
        // The plans of the queries between `i` and `i + AHEAD`, by query number modulo the size.
        const RING: usize = AHEAD.next_power_of_two() * 2;
        let mut plans = [None; RING];
        for i in 0..n.min(BATCH_WINDOW) {
            self.touch_buckets(&query(i));
        }
        for i in 0..n.min(GROUPS_AHEAD) {
            self.touch_groups(&query(i));
        }
        for (i, plan) in plans.iter_mut().enumerate().take(n.min(AHEAD)) {
            *plan = self.plan_and_touch(&query(i));
        }
        for i in 0..n {
            if i + BATCH_WINDOW < n {
                self.touch_buckets(&query(i + BATCH_WINDOW));
            }
            if i + GROUPS_AHEAD < n {
                self.touch_groups(&query(i + GROUPS_AHEAD));
            }
            if i + AHEAD < n {
                plans[(i + AHEAD) % RING] = self.plan_and_touch(&query(i + AHEAD));
            }
            answer(i, self.answer_planned(&query(i), plans[i % RING]));
        }
    }

    /// Either family (the port is used for IPv4 only).
    pub fn lookup(&self, addr: IpAddr, port: Option<u16>, at: Timestamp) -> Attribution {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a, port, at),
            IpAddr::V6(a) => self.lookup_v6(a, at),
        }
    }

    /// The subscriber id behind an interned number.
    pub fn subscriber(&self, s: SubscriberNo) -> Option<&str> {
        self.subs.names.get(s.0 as usize).map(|a| &**a)
    }

    /// An answer with subscriber ids instead of numbers.
    pub fn resolve(&self, a: &Attribution) -> Attribution<SubscriberId> {
        let id = |s: &SubscriberNo| SubscriberId(self.subscriber(*s).unwrap_or_default().to_owned());
        match a {
            Attribution::Unique(s) => Attribution::Unique(id(s)),
            Attribution::Ambiguous(v) => {
                let mut ids: Vec<SubscriberId> = v.iter().map(id).collect();
                ids.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                Attribution::Ambiguous(ids)
            }
            Attribution::Unknown => Attribution::Unknown,
        }
    }

    /// Entries held (one per session and address; emptied ones until the next rebuild).
    pub fn entries(&self) -> usize {
        self.v4.len()
            + self.v6_short.iter().map(|(_, t)| t.len()).sum::<usize>()
            + self.v6_long.iter().map(|(_, t)| t.len()).sum::<usize>()
    }

    /// Distinct subscribers seen.
    pub fn subscribers(&self) -> usize {
        self.subs.names.len()
    }

    /// Bytes of the entries kept in huge-page mappings rather than on the heap (part of
    /// [`Index::table_bytes`]; a heap allocator does not see them).
    pub fn mapped_bytes(&self) -> usize {
        self.v4.mapped_bytes()
            + self.v6_short.iter().map(|(_, t)| t.mapped_bytes()).sum::<usize>()
            + self.v6_long.iter().map(|(_, t)| t.mapped_bytes()).sum::<usize>()
    }

    /// Approximate bytes of the tables, on the heap and in huge-page mappings (not the interned
    /// names).
    pub fn table_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6_short.iter().map(|(_, t)| t.heap_bytes()).sum::<usize>()
            + self.v6_long.iter().map(|(_, t)| t.heap_bytes()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::{Ipv6Prefix, PortBlock};
    use crate::session::SessionKey;

    fn row(sub: &str, id: &str, start: u32, stop: Option<u32>) -> SessionRow {
        SessionRow {
            key: SessionKey::new("nas", id.as_bytes(), sub),
            subscriber: sub.into(),
            nas: "nas".into(),
            start,
            last: start,
            interim: 300,
            stop,
            framed_ipv4: None,
            port_blocks: Vec::new(),
            ipv6: Vec::new(),
        }
    }

    /// A deterministic xorshift generator for the randomized tests.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    fn v4(row: SessionRow, a: [u8; 4]) -> SessionRow {
        SessionRow { framed_ipv4: Some(Ipv4Addr::from(a)), ..row }
    }

    fn who(ix: &Index, a: Attribution) -> Attribution<String> {
        match ix.resolve(&a) {
            Attribution::Unique(s) => Attribution::Unique(s.0),
            Attribution::Ambiguous(v) => Attribution::Ambiguous(v.into_iter().map(|s| s.0).collect()),
            Attribution::Unknown => Attribution::Unknown,
        }
    }

    /// What a brute force answers: the subscribers of `rows` (those that held the address
    /// then), once each, sorted.
    fn brute_force<'a>(rows: impl Iterator<Item = &'a SessionRow>) -> Attribution<String> {
        let mut want: Vec<String> = rows.map(|r| r.subscriber.clone()).collect();
        want.sort_unstable();
        want.dedup();
        match want.len() {
            0 => Attribution::Unknown,
            1 => Attribution::Unique(want.swap_remove(0)),
            _ => Attribution::Ambiguous(want),
        }
    }

    /// `lookup_batch` answers `queries` with `wants`.
    fn assert_batch_answers(ix: &Index, queries: &[Query], wants: &[Attribution<String>]) {
        let mut out = Vec::new();
        ix.lookup_batch(queries, &mut out);
        let got: Vec<_> = out.into_iter().map(|a| who(ix, a)).collect();
        assert_eq!(got, wants);
    }

    const A: [u8; 4] = [198, 51, 100, 7];

    #[test]
    fn sessions_that_end_hand_the_address_over() {
        for compact in [false, true] {
            let mut ix = Index::new();
            ix.insert(&v4(row("alice", "1", 1000, Some(2000)), A));
            ix.insert(&v4(row("bob", "2", 2000, Some(3000)), A));
            if compact {
                ix.compact();
            }
            let q = |t| who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), None, t));
            assert_eq!(q(999), Attribution::Unknown);
            assert_eq!(q(1000), Attribution::Unique("alice".into()));
            assert_eq!(q(1999), Attribution::Unique("alice".into()));
            assert_eq!(q(2000), Attribution::Unique("bob".into()));
            assert_eq!(q(3000), Attribution::Unknown);
            assert_eq!(who(&ix, ix.lookup_v4_secs(Ipv4Addr::new(198, 51, 100, 8), None, 1500)), Attribution::Unknown);
        }
    }

    #[test]
    fn overlap_is_ambiguous() {
        let mut ix = Index::new();
        // alice's Stop was lost: her session runs to last + 2 × 300 s.
        ix.insert(&v4(row("alice", "1", 1000, None), A));
        ix.insert(&v4(row("bob", "2", 1200, Some(3000)), A));
        let q = |t| who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), None, t));
        assert_eq!(q(1100), Attribution::Unique("alice".into()));
        assert_eq!(q(1300), Attribution::Ambiguous(vec!["alice".into(), "bob".into()]));
        assert_eq!(q(1600), Attribution::Unique("bob".into()));
    }

    #[test]
    fn cgnat_port_blocks() {
        let public = Ipv4Addr::new(203, 0, 113, 9);
        let mut ix = Index::new();
        for (i, sub) in ["a", "b", "c"].iter().enumerate() {
            let first = 1024 + 2016 * i as u16;
            let mut r = row(sub, sub, 1000, Some(5000));
            r.port_blocks = vec![PortBlock { public, first, last: first + 2015 }];
            ix.insert(&r);
        }
        for compact in [false, true] {
            if compact {
                ix.compact();
            }
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, Some(1024), 2000)), Attribution::Unique("a".into()));
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, Some(3039), 2000)), Attribution::Unique("a".into()));
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, Some(3040), 2000)), Attribution::Unique("b".into()));
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, Some(7000), 2000)), Attribution::Unique("c".into()));
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, Some(80), 2000)), Attribution::Unknown);
            assert_eq!(
                who(&ix, ix.lookup_v4_secs(public, None, 2000)),
                Attribution::Ambiguous(vec!["a".into(), "b".into(), "c".into()])
            );
        }
    }

    #[test]
    fn ipv6_prefixes_of_several_lengths() {
        let mut ix = Index::new();
        let mut r = row("alice", "1", 1000, Some(5000));
        r.ipv6 =
            vec![Ipv6Prefix::parse("2001:db8:1200::/56").unwrap(), Ipv6Prefix::parse("2001:db8:0:1::/64").unwrap()];
        ix.insert(&r);
        let mut r = row("bob", "2", 1000, Some(5000));
        r.ipv6 = vec![Ipv6Prefix::parse("2001:db8:99::5/128").unwrap()];
        ix.insert(&r);
        let q = |a: &str, t| who(&ix, ix.lookup_v6_secs(a.parse().unwrap(), t));
        assert_eq!(q("2001:db8:1200:ff:ffff::1", 2000), Attribution::Unique("alice".into()));
        assert_eq!(q("2001:db8:0:1:aaaa::1", 2000), Attribution::Unique("alice".into()));
        assert_eq!(q("2001:db8:1200:100::1", 2000), Attribution::Unknown);
        assert_eq!(q("2001:db8:99::5", 2000), Attribution::Unique("bob".into()));
        assert_eq!(q("2001:db8:99::6", 2000), Attribution::Unknown);
        assert_eq!(q("2001:db8:1200:ff:ffff::1", 5000), Attribution::Unknown);
        // Batched lookups take the general path when there are several IPv6 tables, compacted or
        // not.
        for compact in [false, true] {
            if compact {
                ix.compact();
            }
            let qs: Vec<Query> =
                ["2001:db8:1200:ff:ffff::1", "2001:db8:0:1:aaaa::1", "2001:db8:99::5", "2001:db8:99::6"]
                    .iter()
                    .map(|a| Query { addr: a.parse().unwrap(), port: None, at: 2000 })
                    .collect();
            let mut got = Vec::new();
            ix.lookup_batch(&qs, &mut got);
            let want: Vec<Attribution> =
                qs.iter().map(|q| ix.lookup(q.addr, None, Timestamp::from_second(2000).unwrap())).collect();
            assert_eq!(got, want);
            assert_eq!(got.iter().filter(|a| matches!(a, Attribution::Unique(_))).count(), 3);
        }
    }

    #[test]
    fn updates_move_the_end_in_base_and_recent() {
        let mut ix = Index::new();
        let open = v4(row("alice", "1", 1000, None), A);
        ix.insert(&open);
        ix.compact();
        let q = |ix: &Index, t| who(ix, ix.lookup_v4_secs(Ipv4Addr::from(A), None, t));
        assert_eq!(q(&ix, 1700), Attribution::Unknown); // ends at 1600
        let later = SessionRow { last: 5000, ..open.clone() };
        ix.update(Some(&open), &later);
        assert_eq!(q(&ix, 5500), Attribution::Unique("alice".into()));
        let stopped = SessionRow { stop: Some(3000), ..later.clone() };
        ix.update(Some(&later), &stopped);
        assert_eq!(q(&ix, 2999), Attribution::Unique("alice".into()));
        assert_eq!(q(&ix, 3000), Attribution::Unknown);
        // A start that moves earlier (a Start arriving after the Stop) replaces the entries.
        let earlier = SessionRow { start: 500, ..stopped.clone() };
        ix.update(Some(&stopped), &earlier);
        assert_eq!(q(&ix, 600), Attribution::Unique("alice".into()));
        ix.compact();
        assert_eq!(q(&ix, 600), Attribution::Unique("alice".into()));
        assert_eq!(ix.entries(), 1);
    }

    #[test]
    fn retention_drops_what_ended_before_the_cutoff() {
        let mut ix = Index::new();
        ix.insert(&v4(row("alice", "1", 1000, Some(2000)), A));
        ix.insert(&v4(row("bob", "2", 2000, Some(3000)), A));
        let dropped = ix.retain(Timestamp::from_second(2500).unwrap());
        assert_eq!(dropped, 1);
        assert_eq!(who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), None, 1500)), Attribution::Unknown);
        assert_eq!(who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), None, 2500)), Attribution::Unique("bob".into()));
    }

    #[test]
    fn batch_answers_like_single_lookups() {
        let mut ix = Index::new();
        for i in 0..100u32 {
            let mut r = v4(row(&format!("s{i}"), &i.to_string(), 1000 + i, Some(3000)), [10, 0, (i % 7) as u8, 1]);
            r.ipv6 = vec![Ipv6Prefix::parse(&format!("2001:db8:{i:x}::/56")).unwrap()];
            ix.insert(&r);
        }
        ix.compact();
        let qs: Vec<Query> = (0..100u32)
            .flat_map(|i| {
                [
                    Query { addr: IpAddr::V4(Ipv4Addr::new(10, 0, (i % 9) as u8, 1)), port: None, at: 1000 + i * 3 },
                    Query { addr: format!("2001:db8:{i:x}::1").parse().unwrap(), port: None, at: 2000 + i },
                ]
            })
            .collect();
        let mut got = Vec::new();
        ix.lookup_batch(&qs, &mut got);
        let want: Vec<Attribution> =
            qs.iter().map(|q| ix.lookup(q.addr, q.port, Timestamp::from_second(i64::from(q.at)).unwrap())).collect();
        assert_eq!(got, want);
        assert!(got.iter().any(|a| matches!(a, Attribution::Ambiguous(_))));
        assert!(got.iter().any(|a| matches!(a, Attribution::Unknown)));
    }

    /// Long runs (many sessions on one address, some long) against a brute-force answer.
    #[test]
    fn long_runs_agree_with_brute_force() {
        let mut rows = Vec::new();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for i in 0..3000u32 {
            let start = (next() % 100_000) as u32;
            let dur = if i % 97 == 0 { 50_000 } else { (next() % 3000) as u32 + 1 };
            let block = (next() % 4) as u16;
            let mut r = row(&format!("s{}", next() % 50), &i.to_string(), start, Some(start + dur));
            if i % 3 == 0 {
                r.framed_ipv4 = Some(Ipv4Addr::from(A));
            } else {
                r.port_blocks = vec![PortBlock {
                    public: Ipv4Addr::from(A),
                    first: 1024 + block * 1000,
                    last: 2023 + block * 1000,
                }];
            }
            rows.push(r);
        }
        let mut ix = Index::new();
        for (i, r) in rows.iter().enumerate() {
            ix.insert(r);
            if i == 2000 {
                ix.compact();
            }
        }
        for _ in 0..3000 {
            let t = (next() % 160_000) as u32;
            let port = if next() % 3 == 0 { None } else { Some((next() % 6000) as u16) };
            let mut want: Vec<&str> = rows
                .iter()
                .filter(|r| r.start <= t && t < r.end())
                .filter(|r| {
                    port.is_none_or(|p| {
                        r.framed_ipv4.is_some() || r.port_blocks.iter().any(|b| b.first <= p && p <= b.last)
                    })
                })
                .map(|r| r.subscriber.as_str())
                .collect();
            want.sort_unstable();
            want.dedup();
            let got = match who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), port, t)) {
                Attribution::Unknown => vec![],
                Attribution::Unique(s) => vec![s],
                Attribution::Ambiguous(v) => v,
            };
            let mut got_sorted = got.clone();
            got_sorted.sort_unstable();
            assert_eq!(got_sorted, want, "t={t} port={port:?}");
        }
    }

    /// Many keys, as the compact layout sees them: buckets holding several keys (scanned, and
    /// binary-searched when they hold more than `SCAN_MAX` records), long runs with and without
    /// port groups, IPv6 prefixes, entries in the base and recent, ends moved by updates and
    /// sessions removed after the base was built; every lookup (one by one and batched) against
    /// brute force over the rows as they stand.
    /// Sessions with a delegated /56 and a framed /64 (two IPv6 tables, which `lookup_batch` looks
    /// up the general way): batched answers equal one-by-one ones, before and after compacting,
    /// with entries in the base and in recent.
    #[test]
    fn two_ipv6_prefix_lengths_batch_like_single_lookups() {
        let mut next = xorshift(0x2a2a_5656);
        let mut ix = Index::new();
        let prefix =
            |i: u64, len: u8| Ipv6Prefix::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(i) << 72), len);
        for i in 0..600u64 {
            let start = (next() % 10_000) as u32;
            let mut r = row(&format!("s{}", i % 37), &i.to_string(), start, Some(start + 1 + (next() % 3000) as u32));
            // The /64 of some sessions lies inside another session's /56: both tables answer.
            let wan = if i % 3 == 0 { prefix((i + 1) % 200, 64) } else { prefix(1000 + i, 64) };
            r.ipv6 = vec![prefix(i % 200, 56), wan];
            ix.insert(&r);
            if i == 300 {
                ix.compact();
            }
        }
        assert!(ix.v6_short.len() == 2 && ix.v6_long.is_empty());
        for compact in [false, true] {
            if compact {
                ix.compact();
            }
            let qs: Vec<Query> = (0..3000)
                .map(|_| {
                    let key = next() % 1700;
                    let low = u128::from(next()) & ((1 << 72) - 1);
                    let a = (0x2001_0db8u128 << 96) | u128::from(if key < 1200 { key % 200 } else { key }) << 72 | low;
                    Query { addr: IpAddr::V6(Ipv6Addr::from(a)), port: None, at: (next() % 14_000) as u32 }
                })
                .collect();
            let mut got = Vec::new();
            ix.lookup_batch(&qs, &mut got);
            let want: Vec<Attribution> =
                qs.iter().map(|q| ix.lookup(q.addr, None, Timestamp::from_second(i64::from(q.at)).unwrap())).collect();
            assert_eq!(got, want);
            assert!(want.iter().any(|a| matches!(a, Attribution::Ambiguous(_))));
            assert!(want.iter().filter(|a| matches!(a, Attribution::Unique(_))).count() > 300);
        }
    }

    /// A key with more records than a bucket line's 16-bit ends can count: the table keeps
    /// plain 32-bit offsets, and answers as before.
    #[test]
    fn a_run_too_long_for_bucket_lines_uses_plain_offsets() {
        let mut ix = Index::new();
        for i in 0..70_000u32 {
            ix.insert(&v4(row(&format!("s{}", i % 5), &i.to_string(), i * 10, Some(i * 10 + 10)), A));
        }
        for i in 0..200u32 {
            ix.insert(&v4(row("other", &format!("o{i}"), 0, Some(100)), [10, 1, (i / 256) as u8, i as u8]));
        }
        ix.compact();
        assert!(ix.v4.lines.is_empty());
        for (t, want) in [(5, "s0"), (123_456, "s0"), (699_995, "s4"), (350_001, "s0")] {
            assert_eq!(who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), None, t)), Attribution::Unique(want.into()));
        }
        assert_eq!(who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), Some(80), 700_000)), Attribution::Unknown);
        let other = Ipv4Addr::new(10, 1, 0, 77);
        assert_eq!(who(&ix, ix.lookup_v4_secs(other, None, 50)), Attribution::Unique("other".into()));
        let qs = [
            Query { addr: IpAddr::V4(other), port: None, at: 50 },
            Query { addr: IpAddr::V4(Ipv4Addr::from(A)), port: None, at: 15 },
        ];
        let mut out = Vec::new();
        ix.lookup_batch(&qs, &mut out);
        assert_eq!(
            out.iter().map(|a| who(&ix, a.clone())).collect::<Vec<_>>(),
            vec![Attribution::Unique("other".into()), Attribution::Unique("s1".into())]
        );
        // Without it, the same index lays out in lines.
        ix.retain(Timestamp::from_second(600_000).unwrap());
        assert!(!ix.v4.lines.is_empty());
        assert_eq!(who(&ix, ix.lookup_v4_secs(Ipv4Addr::from(A), None, 699_995)), Attribution::Unique("s4".into()));
    }

    /// A port-less query of a shared address whose blocks one subscriber alone held then (a
    /// business behind its own CGNAT address) has a unique answer, not an ambiguous one of one.
    #[test]
    fn one_subscriber_on_every_block_is_unique_without_a_port() {
        let public = Ipv4Addr::new(203, 0, 113, 10);
        let mut ix = Index::new();
        for block in 0..40u16 {
            for (sub, start) in [("alice", 0), ("bob", 1000)] {
                let mut r = row(sub, &format!("{sub}{block}"), start, Some(start + 500));
                r.port_blocks = vec![PortBlock { public, first: 1024 + block * 64, last: 1087 + block * 64 }];
                ix.insert(&r);
            }
        }
        for compact in [false, true] {
            if compact {
                ix.compact();
                assert!(ix.v4.big_ids.contains_key(&u32::from(public)));
            }
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, None, 100)), Attribution::Unique("alice".into()));
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, None, 1200)), Attribution::Unique("bob".into()));
            assert_eq!(who(&ix, ix.lookup_v4_secs(public, None, 700)), Attribution::Unknown);
        }
        // A block of bob's while alice holds the rest.
        let mut r = row("bob", "late", 100, Some(200));
        r.port_blocks = vec![PortBlock { public, first: 60_000, last: 60_063 }];
        ix.insert(&r);
        ix.compact();
        assert_eq!(
            who(&ix, ix.lookup_v4_secs(public, None, 150)),
            Attribution::Ambiguous(vec!["alice".into(), "bob".into()])
        );
    }

    /// A long run of evenly spaced port blocks, found by arithmetic ([`Big::step`]), against a
    /// brute-force answer: blocks wider than their spacing (overlapping), ports below the first
    /// block and above the last, one by one and batched; and the same with one block moved, so
    /// the spacing is uneven and the first ports are searched.
    #[test]
    fn evenly_spaced_blocks_agree_with_brute_force() {
        let public = Ipv4Addr::new(203, 0, 113, 9);
        // 20 blocks: their starts in the run's line; 40: in the table's list.
        for (uneven, blocks) in [(false, 20), (true, 20), (false, 40), (true, 40)] {
            let mut next = xorshift(0x51ed_2701 + u64::from(uneven) + u64::from(blocks));
            let mut rows = Vec::new();
            for i in 0..400u32 {
                let block = (i % blocks) as u16;
                let mut first = 2000 + block * 100;
                if uneven && block == 17 {
                    first += 7;
                }
                let start = (next() % 50_000) as u32;
                let mut r =
                    row(&format!("s{}", next() % 90), &i.to_string(), start, Some(start + 1 + (next() % 4000) as u32));
                r.port_blocks = vec![PortBlock { public, first, last: first + 250 }];
                rows.push(r);
            }
            let mut ix = Index::new();
            rows.iter().for_each(|r| ix.insert(r));
            ix.compact();
            let big = ix.v4.big(u32::from(public), u32::from(public).hash64()).copied();
            assert_eq!(big.map(|b| b.step), Some(if uneven { 0 } else { 100 }));
            assert_eq!(big.map(|b| b.inline), Some(blocks as usize <= INLINE_GROUPS));
            let mut queries = Vec::new();
            let mut wants = Vec::new();
            for _ in 0..3000 {
                let t = (next() % 55_000) as u32;
                let port = 1900 + (next() % 4300) as u16;
                let want = brute_force(
                    rows.iter()
                        .filter(|r| r.start <= t && t < r.end())
                        .filter(|r| r.port_blocks.iter().any(|b| b.first <= port && port <= b.last)),
                );
                assert_eq!(who(&ix, ix.lookup_v4_secs(public, Some(port), t)), want, "port {port} at {t}");
                queries.push(Query { addr: IpAddr::V4(public), port: Some(port), at: t });
                wants.push(want);
            }
            assert_batch_answers(&ix, &queries, &wants);
        }
    }

    /// Long runs whose keys share a bucket (found through the bucket line's count of the long
    /// runs before it, then a step forward per extra one), against a brute-force answer, one by
    /// one and batched, with a port and without.
    #[test]
    fn long_runs_sharing_a_bucket_agree_with_brute_force() {
        let mut next = xorshift(0x0b1e_55ed);
        let addr = |i: u32| Ipv4Addr::from(0x0a00_0000 + i * 7919);
        let mut rows = Vec::new();
        for key in 0..300 {
            for block in 0..36u16 {
                let start = (next() % 10_000) as u32;
                let mut r = row(
                    &format!("s{}", next() % 50),
                    &format!("{key}-{block}"),
                    start,
                    Some(start + 1 + (next() % 3000) as u32),
                );
                r.port_blocks =
                    vec![PortBlock { public: addr(key), first: 1024 + block * 64, last: 1087 + block * 64 }];
                rows.push(r);
            }
        }
        let mut ix = Index::new();
        rows.iter().for_each(|r| ix.insert(r));
        ix.compact();
        let bucket = |k: u32| k.hash64() >> ix.v4.shift;
        let heads = &ix.v4.big_heads;
        assert_eq!(heads.len(), 300);
        assert!(!ix.v4.lines.is_empty());
        assert!(
            heads.windows(2).any(|w| bucket(w[0].key) == bucket(w[1].key)),
            "the test needs two long runs in one bucket"
        );
        // Every long run is found where it is, also past an earlier bucket's second one.
        let mut past_a_shared_bucket = false;
        for (id, head) in heads.iter().enumerate() {
            let h = head.key.hash64();
            assert_eq!(ix.v4.big_id(head.key, h), Some(id));
            let guess = ix.v4.first_big_of_bucket(h).unwrap_or(usize::MAX);
            past_a_shared_bucket |= guess < id && bucket(heads[guess].key) < bucket(head.key);
        }
        assert!(past_a_shared_bucket, "the test needs a long run after a shared bucket in its line");
        let (mut queries, mut wants) = (Vec::new(), Vec::new());
        for _ in 0..6000 {
            let key = (next() % 310) as u32; // some misses
            let t = (next() % 13_000) as u32;
            let port = if next() % 4 == 0 { None } else { Some(1000 + (next() % 2400) as u16) };
            let want = brute_force(rows.iter().filter(|r| r.start <= t && t < r.end()).filter(|r| {
                r.port_blocks.iter().any(|b| b.public == addr(key) && port.is_none_or(|p| b.first <= p && p <= b.last))
            }));
            assert_eq!(who(&ix, ix.lookup_v4_secs(addr(key), port, t)), want, "key {key} port {port:?} at {t}");
            queries.push(Query { addr: IpAddr::V4(addr(key)), port, at: t });
            wants.push(want);
        }
        assert_batch_answers(&ix, &queries, &wants);
    }

    /// Port-less lookups of a CGNAT address read one time slice of its sessions: they agree
    /// with a brute-force answer, one by one and batched, before and after ends move (shorter,
    /// then past later slices' beginnings, which retires the slices until the next rebuild).
    #[test]
    fn time_slices_agree_with_brute_force() {
        let public = Ipv4Addr::new(198, 51, 100, 7);
        let mut next = xorshift(0x7157_11ce);
        let mut rows = Vec::new();
        for i in 0..600u32 {
            let first = 1024 + (i % 32) as u16 * 2016;
            let start = (next() % 200_000) as u32;
            let dur = if next() % 10 == 0 { 20_000 + next() % 40_000 } else { 1 + next() % 6_000 } as u32;
            let mut r = row(&format!("s{}", next() % 150), &i.to_string(), start, Some(start + dur));
            r.port_blocks = vec![PortBlock { public, first, last: first + 2015 }];
            rows.push(r);
        }
        let mut ix = Index::new();
        rows.iter().for_each(|r| ix.insert(r));
        ix.compact();
        let big = ix.v4.big(u32::from(public), u32::from(public).hash64()).copied();
        assert!(big.is_some_and(|b| b.ns > 5), "{big:?}");
        let check = |ix: &Index, rows: &[SessionRow], next: &mut dyn FnMut() -> u64| {
            let mut queries = Vec::new();
            let mut wants = Vec::new();
            for _ in 0..2000 {
                let t = (next() % 270_000) as u32;
                let want = brute_force(rows.iter().filter(|r| r.start <= t && t < r.end()));
                assert_eq!(who(ix, ix.lookup_v4_secs(public, None, t)), want, "at {t}");
                queries.push(Query { addr: IpAddr::V4(public), port: None, at: t });
                wants.push(want);
            }
            assert_batch_answers(ix, &queries, &wants);
        };
        check(&ix, &rows, &mut next);
        // Ends moved a little (within their slices): the slices stay in use.
        for r in rows.iter_mut().filter(|_| next() % 4 == 0) {
            let mut new = r.clone();
            new.stop = Some(new.start + 1 + (r.end() - r.start) / 2);
            ix.update(Some(r), &new);
            *r = new;
        }
        assert!(ix.v4.big(u32::from(public), u32::from(public).hash64()).is_some_and(|b| b.ns > 5));
        check(&ix, &rows, &mut next);
        // Some ends moved far: past later slices, so port-less lookups read the run again.
        for r in rows.iter_mut() {
            if next() % 8 != 0 {
                continue;
            }
            let mut new = r.clone();
            new.stop = Some(new.start + 50_000 + (next() % 50_000) as u32);
            ix.update(Some(r), &new);
            *r = new;
        }
        assert_eq!(ix.v4.big(u32::from(public), u32::from(public).hash64()).map(|b| b.ns), Some(0));
        check(&ix, &rows, &mut next);
        ix.compact();
        assert!(ix.v4.big(u32::from(public), u32::from(public).hash64()).is_some_and(|b| b.ns > 0));
        check(&ix, &rows, &mut next);
    }

    #[test]
    fn many_keys_agree_with_brute_force() {
        let mut next = xorshift(0x0123_4567_89ab_cdef);
        let addr = |i: u64| Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8);
        let prefix = |i: u64| Ipv6Addr::new(0x2001, 0xdb8, (i >> 8) as u16, ((i & 0xff) << 8) as u16, 0, 0, 0, 0);
        let mut rows = Vec::new();
        for key in 0..1200u64 {
            // Mostly short runs; every 7th key a long one (past SMALL_RUN), every 11th behind CGNAT.
            let n = if key % 7 == 0 { 40 + next() % 30 } else { 1 + next() % 24 };
            for j in 0..n {
                let start = (next() % 50_000) as u32;
                let dur = (next() % 5_000) as u32 + 1;
                let id = format!("{key}-{j}");
                let mut r = row(&format!("s{}", next() % 400), &id, start, Some(start + dur));
                if key % 11 == 0 {
                    let block = (next() % 8) as u16;
                    r.port_blocks =
                        vec![PortBlock { public: addr(key), first: 1024 + block * 512, last: 1535 + block * 512 }];
                } else {
                    r.framed_ipv4 = Some(addr(key));
                }
                r.ipv6 = vec![Ipv6Prefix::new(prefix(key), 56)];
                rows.push(r);
            }
        }
        let mut ix = Index::new();
        let half = rows.len() / 2;
        for (i, r) in rows.iter().enumerate() {
            ix.insert(r);
            if i == half {
                ix.compact();
            }
        }
        // Interim-Updates and Stops after the build: move ends of entries in the base (short and
        // long runs) and in recent, and remove a few sessions.
        for r in rows.iter_mut() {
            let pick = next() % 10;
            if pick < 3 {
                let mut new = r.clone();
                new.stop = Some(new.start + (next() % 9_000) as u32 + 1);
                ix.update(Some(r), &new);
                *r = new;
            } else if pick == 3 {
                ix.remove(r);
                r.stop = Some(r.start);
            }
        }
        let check = |ix: &Index, rows: &[SessionRow], next: &mut dyn FnMut() -> u64| {
            let mut queries = Vec::new();
            let mut wants = Vec::new();
            for _ in 0..4000 {
                let key = next() % 1300; // some misses
                let t = (next() % 60_000) as u32;
                let v6 = next() % 2 == 0;
                let port = if v6 || next() % 3 == 0 { None } else { Some(1024 + (next() % 4200) as u16) };
                let covers = |r: &&SessionRow| {
                    r.start <= t
                        && t < r.end()
                        && if v6 {
                            r.ipv6.iter().any(|p| p.addr == prefix(key))
                        } else {
                            r.framed_ipv4 == Some(addr(key))
                                || r.port_blocks
                                    .iter()
                                    .any(|b| b.public == addr(key) && port.is_none_or(|p| b.first <= p && p <= b.last))
                        }
                };
                let mut want: Vec<String> = rows.iter().filter(covers).map(|r| r.subscriber.clone()).collect();
                want.sort_unstable();
                want.dedup();
                let (got, q) = if v6 {
                    let a = Ipv6Addr::from(u128::from(prefix(key)) | (next() as u128 & ((1u128 << 72) - 1)));
                    (ix.lookup_v6_secs(a, t), Query { addr: IpAddr::V6(a), port: None, at: t })
                } else {
                    (ix.lookup_v4_secs(addr(key), port, t), Query { addr: IpAddr::V4(addr(key)), port, at: t })
                };
                let got = match who(ix, got) {
                    Attribution::Unknown => vec![],
                    Attribution::Unique(s) => vec![s],
                    Attribution::Ambiguous(v) => v,
                };
                assert_eq!(got, want, "key={key} t={t} port={port:?} v6={v6}");
                queries.push(q);
                wants.push(want);
            }
            let mut out = Vec::new();
            ix.lookup_batch(&queries, &mut out);
            for (a, want) in out.into_iter().zip(wants) {
                let got = match who(ix, a) {
                    Attribution::Unknown => vec![],
                    Attribution::Unique(s) => vec![s],
                    Attribution::Ambiguous(v) => v,
                };
                assert_eq!(got, want);
            }
        };
        check(&ix, &rows, &mut next);
        ix.compact();
        check(&ix, &rows, &mut next);
    }

    /// `lookup_sorted` against `lookup_v4`/`lookup_v6` one by one, on a random index (public
    /// addresses, CGNAT port blocks, two IPv6 prefix lengths and a /128, overlaps, entries both
    /// in the compact base and recent) and random queries (hits, port-less CGNAT, misses), in
    /// batches below and above the sorting threshold, appended after earlier answers.
    #[test]
    fn sorted_batch_answers_like_single_lookups() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let mut ix = Index::new();
        let addr = |n: u64| Ipv4Addr::from(0x0a00_0000 + (n % 5000) as u32);
        for i in 0..40_000u32 {
            let start = (next() % 100_000) as u32;
            let mut r = row(
                &format!("s{}", next() % 20_000),
                &i.to_string(),
                start,
                Some(start + 1 + (next() % 20_000) as u32),
            );
            match next() % 3 {
                0 => r.framed_ipv4 = Some(addr(next())),
                1 => {
                    let b = (next() % 32) as u16;
                    r.port_blocks =
                        vec![PortBlock { public: addr(next()), first: 1024 + b * 2016, last: 3039 + b * 2016 }];
                }
                _ => {}
            }
            let p = next() % 3000;
            r.ipv6 = match next() % 4 {
                0 => vec![Ipv6Prefix::parse(&format!("2001:db8:{p:x}::/48")).unwrap()],
                1 => vec![Ipv6Prefix::parse(&format!("2001:db8:0:{p:x}::1/128")).unwrap()],
                _ => vec![Ipv6Prefix::parse(&format!("2001:db8:{:x}:{:02x}00::/56", p / 256, p % 256)).unwrap()],
            };
            ix.insert(&r);
            if i == 30_000 {
                ix.compact();
            }
        }
        let qs: Vec<Query> = (0..50_000)
            .map(|_| {
                let at = (next() % 130_000) as u32;
                let p = next() % 3100;
                match next() % 6 {
                    0 => Query { addr: IpAddr::V4(addr(next())), port: None, at },
                    1 | 2 => Query { addr: IpAddr::V4(addr(next())), port: Some((next() % 66_000) as u16), at },
                    3 => Query { addr: format!("2001:db8:{p:x}::{:x}", next() % 9).parse().unwrap(), port: None, at },
                    4 => Query { addr: format!("2001:db8:0:{p:x}::1").parse().unwrap(), port: None, at },
                    _ => Query {
                        addr: format!("2001:db8:{:x}:{:02x}{:02x}::1", p / 256, p % 256, next() % 4).parse().unwrap(),
                        port: None,
                        at,
                    },
                }
            })
            .collect();
        let one = |q: &Query| {
            let t = Timestamp::from_second(i64::from(q.at)).unwrap();
            match q.addr {
                IpAddr::V4(a) => ix.lookup_v4(a, q.port, t),
                IpAddr::V6(a) => ix.lookup_v6(a, t),
            }
        };
        let want: Vec<Attribution> = qs.iter().map(one).collect();
        for n in [1, 100, SORT_MIN - 1, SORT_MIN, qs.len()] {
            let mut got = vec![Attribution::Unknown];
            ix.lookup_sorted(&qs[..n], &mut got);
            assert_eq!(got.len(), n + 1);
            assert_eq!(got[1..], want[..n], "batch of {n}");
        }
        let kinds = |k: fn(&Attribution) -> bool| want.iter().filter(|a| k(a)).count();
        assert!(kinds(|a| matches!(a, Attribution::Unique(_))) > 1000);
        assert!(kinds(|a| matches!(a, Attribution::Ambiguous(_))) > 1000);
        assert!(kinds(|a| matches!(a, Attribution::Unknown)) > 1000);
    }
}
