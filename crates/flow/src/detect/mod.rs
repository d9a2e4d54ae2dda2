//! Per-destination DDoS detection and spoofed-source detection over windows of flows.
//!
//! Each window, traffic toward every host inside a customer prefix, and toward each customer
//! prefix as a whole (its hosts summed, against `prefix_*` limits), is compared with fixed
//! thresholds (packets/s, bits/s, flows/s) and with the destination's learned normal packet rate (an exponentially weighted mean updated only by
//! quiet windows, so an attack doesn't teach itself as normal). A destination over a limit is
//! characterised — dominant protocol, reflection source ports (53, 123, 389, 1900, 11211, …),
//! dominant destination port, TCP flags, fragments — into a [`FlowMatch`] that covers only the
//! attack traffic. A prefix is reported only when the hosts reported in the same window don't
//! already cover its traffic (a carpet-bombing attack spread thin over many hosts, none over
//! its own limit); its finding and match name the prefix. Flows entering on customer-facing
//! interfaces with sources outside the
//! customer's prefixes are reported as spoofed.
//!
//! Traffic leaving the customer prefixes is watched the same way per source host
//! (`ddos.block-unintended-source`): a host inside a customer prefix that sends over
//! `source_pps`/`source_bps`/`source_fps`, or far over its own learned normal, toward outside
//! destinations is probably a bot; its traffic is characterised — dominant protocol, destination
//! port and victim, the only fields that measure may read besides the source — into a match on
//! the source host.
//!
//! The learned normals are bounded, whatever the traffic (an IPv6 customer /48 has 2^80 hosts
//! for a scan or spoofed traffic to name): a normal not seen for
//! [`DetectConfig::learned_forget_after`] (of windows closed) is forgotten, and each map holds at
//! most [`DetectConfig::learned_max_entries`].

pub mod engine;
pub mod views;

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::bgp::FlowMatch;
use crate::collector::FlowRecord;
use crate::prefix::{Prefix, PrefixIndex};
pub use views::{AttackTraffic, DestinationTraffic, IngressSources, OutboundAttack, SourceTraffic, SpoofedSources};

/// The detector's hasher, seeded: its maps are keyed by addresses and ports that the traffic
/// chooses (spoofed sources, random destinations inside a customer's IPv6 /48), and the fixed
/// multiplicative hash used before let anyone who knew it craft addresses that all collide (in a
/// /48, 65,536 IPv6 hosts with one and the same 64-bit hash), each flow then probing through all of
/// them. foldhash (hashbrown's default) draws a seed per process (address space layout
/// randomisation and the clock) and one per map; it defeats keys crafted offline, not an attacker
/// who can watch hash outputs (it claims no more), and no output here follows a map's order. std's
/// SipHash-1-3 would resist more, but in the engine (`flow_replay` under callgrind) a flow then
/// costs ~780 instructions against ~460 with the fixed hash; foldhash, ~435.
type Seeded = foldhash::fast::RandomState;

/// A map with the [`Seeded`] hasher.
type Map<K, V> = HashMap<K, V, Seeded>;

/// Source ports of well-known reflection/amplification services.
pub const REFLECTION_PORTS: [u16; 9] = [19, 53, 123, 161, 389, 1900, 3702, 11211, 27015];

/// One customer-facing interface and the prefixes behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerInterface {
    /// The exporter (router) address.
    pub exporter: IpAddr,
    /// The interface's ifIndex.
    pub if_index: u32,
    /// The customer's prefixes.
    pub prefixes: Vec<Prefix>,
}

/// Detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// The customer prefixes: destinations inside are protected, sources inside sending toward
    /// outside destinations are watched for bots; other traffic is ignored.
    pub customer_prefixes: Vec<Prefix>,
    /// Customer-facing interfaces checked for spoofed sources.
    pub customer_interfaces: Vec<CustomerInterface>,
    /// Packets per second toward one host that count as an attack.
    pub host_pps: f64,
    /// Bits per second toward one host.
    pub host_bps: f64,
    /// Flows per second toward one host.
    pub host_fps: f64,
    /// Packets per second toward one customer prefix as a whole (its hosts summed).
    pub prefix_pps: f64,
    /// Bits per second toward one customer prefix as a whole.
    pub prefix_bps: f64,
    /// Flows per second toward one customer prefix as a whole.
    pub prefix_fps: f64,
    /// A host this many times over its learned normal packet rate (and over `min_pps`) counts.
    pub normal_factor: f64,
    /// Below this packet rate nothing counts as an attack, whatever the normal.
    pub min_pps: f64,
    /// Weight of a new quiet window in the learned normal (0–1).
    pub learn_alpha: f64,
    /// Share of a destination's packets a characteristic needs to be part of the match.
    pub dominance: f64,
    /// Spoofed packets per window on one interface before it is reported.
    pub spoof_min_packets: u64,
    /// Packets per second from one customer host toward outside destinations that count as an
    /// attack it sends.
    pub source_pps: f64,
    /// Bits per second from one customer host toward outside destinations.
    pub source_bps: f64,
    /// Flows per second from one customer host toward outside destinations.
    pub source_fps: f64,
    /// How many aggregate prefixes `net.traffic-overview` reports as top talkers.
    pub top_talkers: usize,
    /// Seconds of windows (the sum of the windows closed, not wall clock) after which a host's or
    /// prefix's learned normal is forgotten when it appeared in none of them.
    pub learned_forget_after: f64,
    /// Learned normals kept at most in each of the three maps (toward hosts, toward prefixes,
    /// from hosts outward). A full map first forgets the normals learned from one window and
    /// unseen for an hour (scan targets); past that a new host gets no normal, is judged by the
    /// fixed limits only (as before any normal is learned), and is counted
    /// ([`LearnedCounts::refused`]).
    pub learned_max_entries: usize,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            customer_prefixes: Vec::new(),
            customer_interfaces: Vec::new(),
            host_pps: 100_000.0,
            host_bps: 1e9,
            host_fps: 20_000.0,
            prefix_pps: 500_000.0,
            prefix_bps: 5e9,
            prefix_fps: 100_000.0,
            normal_factor: 10.0,
            min_pps: 10_000.0,
            learn_alpha: 0.05,
            dominance: 0.8,
            spoof_min_packets: 1000,
            source_pps: 50_000.0,
            source_bps: 5e8,
            source_fps: 10_000.0,
            top_talkers: 10,
            learned_forget_after: 7.0 * 86_400.0,
            learned_max_entries: 1_000_000,
        }
    }
}

/// A destination's packets in a window before its breakdown (protocols, ports, sources) is kept:
/// no limit a destination can cross in a window is this low, and most destinations of a busy
/// network never reach it, so their windows cost three additions per flow and no allocation.
/// The breakdown of one that does reach it covers the rest of its window, which is what shares
/// are taken from.
const DETAIL_AFTER: u64 = 256;

/// A breakdown past its exact part takes one flow in this many (see [`sampled`]), each counted
/// this many times. A customer prefix's breakdown samples from its first flow (its totals take
/// every flow): a prefix sees every flow toward it, and shares don't need them all.
const DETAIL_EVERY: u64 = 8;

/// A host's breakdown takes every flow until it holds this many, then samples (see
/// [`DETAIL_EVERY`]). Shares (the dominant protocol and ports, a match's coverage, the top
/// sources' shares) are then estimates, from at least this many flows taken whole: within a
/// percent or two at the sizes that matter, which no dominance threshold is that close to. A busy
/// host's breakdown (thousands of ports and sources) is what misses the caches, and at a million
/// flows a second it was most of the engine's time.
const HOST_DETAIL_EXACT: u64 = 1024;

/// Whether a destination's `n`th flow is in its one-in-[`DETAIL_EVERY`] sample: the top three bits
/// of `n` times 2^64/φ (Fibonacci hashing) are zero. Unlike `n % 8 == 0`, the sample doesn't lock
/// onto traffic that repeats with a period (reflectors taking turns, say 200 of them: `n % 8`
/// would only ever see 25 of them, each at eight times its share), as the fractional parts of
/// `n`/φ fall evenly whatever `n`'s residue modulo any period.
fn sampled(n: u64) -> bool {
    const _: () = assert!(DETAIL_EVERY == 8, "three bits make one in eight");
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61 == 0
}

/// A destination's window: its totals, and its breakdown once it has [`DETAIL_AFTER`] packets.
/// The breakdown is boxed: most destinations never get one, and without it an accumulator is
/// 32 bytes, so a window's host arena (one entry per host seen, 65 536 for a busy /16) stays a
/// cache line per host instead of four.
#[derive(Debug, Default)]
struct Acc {
    packets: u64,
    bytes: u64,
    flows: u64,
    detail: Option<Box<Detail>>,
}

/// The breakdown of a destination's flows by protocol, ports, TCP flags and source.
#[derive(Debug, Default)]
struct Detail {
    /// Packets in the breakdown (sampled flows counted with their weight).
    packets: u64,
    /// Flows taken into the breakdown.
    flows: u64,
    by_proto: Map<u8, u64>,
    by_sport: Map<u16, u64>,
    by_dport: Map<u16, u64>,
    syn_only: u64,
    /// IPv4 sources by address: 16-byte entries, half the memory of a map keyed by `IpAddr`, and
    /// a busy destination's map of thousands of sources is most of what a flow touches.
    by_src4: Map<u32, u64>,
    /// IPv6 sources. These maps are seeded ([`Seeded`]): spoofed sources are the attacker's
    /// choice.
    by_src6: Map<std::net::Ipv6Addr, u64>,
    /// A host's breakdown went on from its exact part to one flow in [`DETAIL_EVERY`]: its counts,
    /// and the sources' shares most of all, are estimates.
    sampled: bool,
}

impl Acc {
    /// Adds a flow; the breakdown, in a breakdown from `spare` when it starts, takes every flow
    /// for its first [`HOST_DETAIL_EXACT`] (unless `sample_all`, a prefix's) and a sample after.
    fn add(&mut self, f: &FlowRecord, sample_all: bool, spare: &mut Spare) {
        self.packets += f.packets;
        self.bytes += f.bytes;
        self.flows += 1;
        if self.packets < DETAIL_AFTER {
            return;
        }
        // A prefix's samples are all alike, so its shares need no weight; a host's sampled flows
        // stand for DETAIL_EVERY each beside its exact ones.
        let weight = if sample_all {
            if !sampled(self.flows) {
                return;
            }
            1
        } else if let Some(d) = self.detail.as_mut()
            && d.flows >= HOST_DETAIL_EXACT
        {
            d.sampled = true;
            if !sampled(self.flows) {
                return;
            }
            DETAIL_EVERY
        } else {
            1
        };
        let d = self.detail.get_or_insert_with(|| spare.lend());
        let packets = f.packets.saturating_mul(weight);
        d.flows += 1;
        d.packets += packets;
        *d.by_proto.entry(f.protocol).or_default() += packets;
        if f.protocol == 6 || f.protocol == 17 {
            *d.by_sport.entry(f.src_port).or_default() += packets;
            *d.by_dport.entry(f.dst_port).or_default() += packets;
        }
        if f.protocol == 6 && f.tcp_flags & 0x12 == 0x02 {
            d.syn_only += packets;
        }
        // Bounded: past 4096 distinct sources only the ones already counted grow.
        let full = d.by_src4.len() + d.by_src6.len() >= 4096;
        match f.src {
            IpAddr::V4(a) => {
                let a = a.to_bits();
                if !full || d.by_src4.contains_key(&a) {
                    *d.by_src4.entry(a).or_default() += packets;
                }
            }
            IpAddr::V6(a) => {
                if !full || d.by_src6.contains_key(&a) {
                    *d.by_src6.entry(a).or_default() += packets;
                }
            }
        }
    }

    /// Whether the breakdown's counts are estimates from a sample: always for a prefix's
    /// (`sample_all`), for a host's once it went past its exact part.
    fn breakdown_sampled(&self, sample_all: bool) -> bool {
        self.detail.as_ref().is_some_and(|d| sample_all || d.sampled)
    }

    /// The `n` sources with the most packets in the breakdown, with their shares of it.
    fn top_sources(&self, n: usize) -> Vec<(IpAddr, f64)> {
        let Some(d) = &self.detail else { return Vec::new() };
        let v4 = d.by_src4.iter().map(|(a, p)| (IpAddr::V4(std::net::Ipv4Addr::from_bits(*a)), *p));
        let top = top_counts(v4.chain(d.by_src6.iter().map(|(a, p)| (IpAddr::V6(*a), *p))), n);
        top.into_iter().map(|(ip, p)| (ip, p as f64 / d.packets.max(1) as f64)).collect()
    }
}

/// Breakdowns of past windows, emptied and kept for the destinations whose breakdown starts in
/// the next ones: a busy destination's maps grow to thousands of ports and sources in every
/// window, and growing them from nothing again each time (rehashes, fresh pages) cost more than
/// the counting itself. What is kept was in use in the window just closed, so this doesn't raise
/// the peak; [`SPARE_ENTRIES`] bounds it.
#[derive(Debug, Default)]
struct Spare {
    kept: Vec<Detail>,
    /// The capacities of the maps of `kept`, summed.
    entries: usize,
}

/// Map entries (of any of a breakdown's maps, 16–32 bytes each) kept in [`Spare`] at most.
const SPARE_ENTRIES: usize = 1 << 21;

fn capacity(d: &Detail) -> usize {
    d.by_proto.capacity() + d.by_sport.capacity() + d.by_dport.capacity() + d.by_src4.capacity() + d.by_src6.capacity()
}

impl Spare {
    /// An empty breakdown, a kept one if there is one.
    fn lend(&mut self) -> Box<Detail> {
        match self.kept.pop() {
            Some(d) => {
                self.entries = self.entries.saturating_sub(capacity(&d));
                Box::new(d)
            }
            None => Box::default(),
        }
    }

    /// Takes back `acc`'s breakdown, emptied, within [`SPARE_ENTRIES`].
    fn keep(&mut self, acc: &mut Acc) {
        let Some(mut d) = acc.detail.take() else { return };
        let n = capacity(&d);
        if self.entries + n > SPARE_ENTRIES {
            return;
        }
        d.packets = 0;
        d.flows = 0;
        d.syn_only = 0;
        d.sampled = false;
        d.by_proto.clear();
        d.by_sport.clear();
        d.by_dport.clear();
        d.by_src4.clear();
        d.by_src6.clear();
        self.entries += n;
        self.kept.push(*d);
    }
}

/// The key with the highest count, if it has at least `share` of `total`. Among equal counts the
/// lowest key, so that the choice depends on the counts only, not on the map's layout (which
/// depends on its capacity, and maps are reused across windows, see [`Spare`]).
fn dominant<K: Copy + Ord>(m: &Map<K, u64>, total: u64, share: f64) -> Option<(K, u64)> {
    let (k, v) = m.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
    (total > 0 && *v as f64 >= share * total as f64).then_some((*k, *v))
}

/// What one customer host sent toward outside destinations in a window.
#[derive(Debug, Default)]
struct OutAcc {
    packets: u64,
    bytes: u64,
    flows: u64,
    by_proto: Map<u8, u64>,
    by_dport: Map<u16, u64>,
    /// Seeded, as every map here: the destinations are the traffic's.
    by_dst: Map<IpAddr, u64>,
}

impl OutAcc {
    fn add(&mut self, f: &FlowRecord) {
        self.packets += f.packets;
        self.bytes += f.bytes;
        self.flows += 1;
        *self.by_proto.entry(f.protocol).or_default() += f.packets;
        if f.protocol == 6 || f.protocol == 17 {
            *self.by_dport.entry(f.dst_port).or_default() += f.packets;
        }
        // Bounded like the sources of an inbound attack.
        if self.by_dst.len() < 4096 || self.by_dst.contains_key(&f.dst) {
            *self.by_dst.entry(f.dst).or_default() += f.packets;
        }
    }
}

/// Customer prefixes of at least this length (IPv4) get a table of their hosts' places
/// (65 536 slots, 256 KiB, for a /16); hosts of shorter ones, and IPv6 hosts, are found by hash.
const TABLE_MIN_LEN_V4: u8 = 16;

/// Slots of all the host tables together (64 MiB): past it, prefixes get no table.
const TABLE_BUDGET: usize = 1 << 24;

/// One window's per-destination accumulators, as FastNetMon keeps them: an array per customer
/// prefix indexed by the host's offset in it, holding the host's place in `arena` (hosts in
/// first-seen order), and a hash map only for hosts without a table. A flow toward a host costs
/// a subtraction and two array reads instead of hashing its address.
#[derive(Debug, Default)]
struct Hosts {
    /// Per customer prefix: its table (place in `arena` + 1, 0 for a host not seen this window),
    /// made on the prefix's first flow.
    tables: Vec<Option<Vec<u32>>>,
    /// Slots in `tables`.
    slots: usize,
    /// Hosts without a table: their place in `arena`. Seeded: a flood picks these addresses (any
    /// of a customer IPv6 /48's 2^80).
    other: Map<IpAddr, u32>,
    /// This window's hosts: address, customer prefix (its place in the list), accumulator.
    arena: Vec<(IpAddr, usize, Acc)>,
}

impl Hosts {
    /// The accumulator of `host`, inside `prefix`, the `index`th customer prefix.
    fn get(&mut self, host: IpAddr, index: usize, prefix: Prefix) -> &mut Acc {
        let next = self.arena.len();
        let place = match (host, prefix.addr()) {
            (IpAddr::V4(h), IpAddr::V4(net)) if prefix.len() >= TABLE_MIN_LEN_V4 => {
                if self.tables.len() <= index {
                    self.tables.resize_with(index + 1, || None);
                }
                let size = 1usize << (32 - u32::from(prefix.len()));
                let table = match self.tables.get_mut(index) {
                    Some(t @ None) if self.slots + size <= TABLE_BUDGET => {
                        self.slots += size;
                        t.insert(vec![0; size])
                    }
                    Some(Some(t)) => t,
                    _ => return self.by_hash(host, index),
                };
                match table.get_mut(u32::from(h).wrapping_sub(u32::from(net)) as usize) {
                    Some(p) if *p > 0 => *p as usize - 1,
                    Some(p) if next < u32::MAX as usize => {
                        *p = next as u32 + 1;
                        next
                    }
                    _ => return self.by_hash(host, index),
                }
            }
            _ => return self.by_hash(host, index),
        };
        if place == next {
            self.arena.push((host, index, Acc::default()));
        }
        &mut self.arena[place].2
    }

    fn by_hash(&mut self, host: IpAddr, index: usize) -> &mut Acc {
        let next = self.arena.len() as u32;
        let place = *self.other.entry(host).or_insert(next) as usize;
        if place == self.arena.len() {
            self.arena.push((host, index, Acc::default()));
        }
        &mut self.arena[place].2
    }

    /// Takes the window's hosts and empties the tables for the next one.
    fn take(&mut self, prefixes: &[Prefix]) -> Vec<(IpAddr, usize, Acc)> {
        for (host, index, _) in &self.arena {
            if let (IpAddr::V4(h), Some(Some(t)), Some(IpAddr::V4(net))) =
                (host, self.tables.get_mut(*index), prefixes.get(*index).map(Prefix::addr))
            {
                if let Some(slot) = t.get_mut(u32::from(*h).wrapping_sub(u32::from(net)) as usize) {
                    *slot = 0;
                }
            }
        }
        self.other.clear();
        std::mem::take(&mut self.arena)
    }
}

#[derive(Debug, Default)]
struct Spoof {
    packets: u64,
    /// Seeded: spoofed sources are the attacker's choice.
    spoofed: Map<IpAddr, u64>,
}

/// A learned normal packet rate and when it was last seen. 16 bytes: a map holds up to
/// [`DetectConfig::learned_max_entries`] of them.
#[derive(Debug, Clone, Copy)]
struct Normal {
    /// Packets per second.
    pps: f64,
    /// Detector time (whole seconds of windows closed, see [`Detector::close_window`]) of the
    /// last window that taught it or judged its host over a limit. Negative for a normal restored
    /// from a file that was already idle when written.
    seen: i32,
    /// Windows it was learned from (saturating).
    windows: u32,
}

/// When a map is full, a normal learned from one window only and not seen again for this long
/// (detector seconds) is forgotten first: a scan or spoofed traffic toward random addresses of a
/// customer prefix leaves exactly such entries, one window each, and a host with real traffic
/// comes back within the hour.
const ONCE_FORGET_SECS: i64 = 3600;

/// A full map is swept at most this often (detector seconds): a sweep goes over every entry, and
/// while every entry is worth keeping each new host would otherwise sweep again.
const FULL_SWEEP_EVERY: i64 = 60;

/// Idle normals are swept at least this often (detector seconds; a quarter of the forget time
/// when that is shorter): once an hour over a million entries is a few milliseconds an hour.
const SWEEP_EVERY_MAX: i64 = 3600;

/// A full map is reported in the log at most this often (detector seconds).
const FULL_WARN_EVERY: i64 = 3600;

/// The detector's clock and the bounds of its learned normals, for one window.
#[derive(Debug, Clone, Copy)]
struct Retention {
    /// Detector time (seconds).
    now: i32,
    /// Normals idle longer than this (seconds) are forgotten.
    forget: i64,
    /// Entries per map at most.
    max: usize,
}

impl Retention {
    /// Seconds since `n` was last seen.
    fn idle(self, n: &Normal) -> i64 {
        i64::from(self.now) - i64::from(n.seen)
    }

    /// Whether `n` is still remembered (it may wait for the next sweep to be removed).
    fn fresh(self, n: &Normal) -> bool {
        self.idle(n) <= self.forget
    }
}

/// A saved normal's idle seconds when written and the windows it was learned from (see
/// [`FlowLearned`]).
type Seen = (u32, u32);

/// One map of learned normals (toward hosts, toward prefixes or from hosts outward), bounded:
/// normals idle longer than [`DetectConfig::learned_forget_after`] are forgotten (periodically,
/// and are ignored meanwhile), and at [`DetectConfig::learned_max_entries`] a new key is first
/// made room for by forgetting normals learned from one window and idle for
/// [`ONCE_FORGET_SECS`], and otherwise not learned: it is judged by the fixed limits only, as a
/// host is before any normal is learned, and counted.
#[derive(Debug)]
struct Normals<K> {
    /// The map's name in metrics and logs (`host`, `prefix`, `outbound`): never an address.
    kind: &'static str,
    /// Seeded: the hosts are whatever addresses traffic named (up to `learned_max_entries`).
    map: Map<K, Normal>,
    /// New keys not learned because the map was full (since start).
    refused: u64,
    /// Normals forgotten (idle, or made room for).
    forgotten: u64,
    /// When the map was last swept because it was full.
    full_sweep: Option<i32>,
    /// When a full map was last reported in the log.
    warned: Option<i32>,
}

impl<K: Eq + std::hash::Hash + Copy> Normals<K> {
    fn new(kind: &'static str) -> Self {
        Normals { kind, map: Map::default(), refused: 0, forgotten: 0, full_sweep: None, warned: None }
    }

    /// The normal of `k`, unless it is forgotten.
    fn get(&self, k: &K, r: Retention) -> Option<f64> {
        self.map.get(k).filter(|n| r.fresh(n)).map(|n| n.pps)
    }

    /// Judges `k`'s window of `pps` packets/s with `judge`, given `k`'s normal (if any), and
    /// teaches the normal the window when `judge` finds nothing (an exponential average of weight
    /// `alpha`); a window judged over a limit doesn't move it but counts as seen. One lookup
    /// whether the key is known or new (this runs for every host of every window). Returns what
    /// `judge` found and the normal.
    fn observe<R>(
        &mut self,
        k: K,
        pps: f64,
        alpha: f64,
        r: Retention,
        judge: impl FnOnce(Option<f64>) -> Option<R>,
    ) -> (Option<R>, Option<f64>) {
        use std::collections::hash_map::Entry;
        /// Judges a known key and updates its normal.
        fn known<R>(
            n: &mut Normal,
            pps: f64,
            alpha: f64,
            r: Retention,
            judge: impl FnOnce(Option<f64>) -> Option<R>,
        ) -> (Option<R>, Option<f64>) {
            let fresh = r.fresh(n);
            let normal = fresh.then_some(n.pps);
            let found = judge(normal);
            match (found.is_none(), fresh) {
                (true, true) => {
                    n.pps += alpha * (pps - n.pps);
                    n.windows = n.windows.saturating_add(1);
                    n.seen = r.now;
                }
                // Forgotten, not swept yet: learned afresh.
                (true, false) => *n = Normal { pps, seen: r.now, windows: 1 },
                (false, true) => n.seen = r.now,
                (false, false) => {}
            }
            (found, normal)
        }
        let new = Normal { pps, seen: r.now, windows: 1 };
        if self.map.len() < r.max {
            // Not through `entry` when full: a vacant entry reserves room for one more, which
            // could grow the table past what the cap needs.
            return match self.map.entry(k) {
                Entry::Occupied(o) => known(o.into_mut(), pps, alpha, r, judge),
                Entry::Vacant(v) => {
                    let found = judge(None);
                    if found.is_none() {
                        v.insert(new);
                    }
                    (found, None)
                }
            };
        }
        if let Some(n) = self.map.get_mut(&k) {
            return known(n, pps, alpha, r, judge);
        }
        let found = judge(None);
        if found.is_none() {
            if self.make_room(r) {
                self.map.insert(k, new);
            } else {
                self.refused += 1;
            }
        }
        (found, None)
    }

    /// Sweeps a full map (at most every [`FULL_SWEEP_EVERY`]): forgets idle normals, and those
    /// learned from one window and idle for [`ONCE_FORGET_SECS`]. Whether there is room now.
    fn make_room(&mut self, r: Retention) -> bool {
        if self.full_sweep.is_some_and(|t| i64::from(r.now) - i64::from(t) < FULL_SWEEP_EVERY) {
            return false;
        }
        self.full_sweep = Some(r.now);
        let once = r.forget.min(ONCE_FORGET_SECS);
        self.sweep(|n| r.fresh(n) && (n.windows > 1 || r.idle(n) <= once));
        if self.map.len() < r.max {
            return true;
        }
        if self.warned.is_none_or(|t| i64::from(r.now) - i64::from(t) >= FULL_WARN_EVERY) {
            self.warned = Some(r.now);
            tracing::warn!(
                map = self.kind,
                max = r.max,
                "flow detector: learned normals full; new ones are judged by the fixed limits only (learned_max_entries)"
            );
        }
        false
    }

    /// Forgets the normals idle longer than the forget time.
    fn forget_idle(&mut self, r: Retention) {
        self.sweep(|n| r.fresh(n));
    }

    /// Keeps the normals `keep` wants, counts the others, and gives memory back after a flood
    /// of keys has gone.
    fn sweep(&mut self, keep: impl Fn(&Normal) -> bool) {
        let before = self.map.len();
        self.map.retain(|_, n| keep(n));
        self.forgotten += (before - self.map.len()) as u64;
        if self.map.capacity() > 4 * self.map.len().max(1024) {
            self.map.shrink_to_fit();
        }
    }

    /// Takes back normals from a file: `(key, pps, (idle seconds, windows))`. Unforgotten ones
    /// only, the most recently seen first, up to the cap (the rest are counted as refused); a key
    /// this map has already keeps its own. Returns the number taken.
    fn restore(&mut self, entries: impl Iterator<Item = (K, f64, Seen)>, r: Retention) -> usize {
        let mut v: Vec<_> = entries.filter(|(_, n, (idle, _))| n.is_finite() && i64::from(*idle) <= r.forget).collect();
        v.sort_by_key(|(_, _, (idle, _))| *idle);
        let mut restored = 0;
        for (k, pps, (idle, windows)) in v {
            if self.map.contains_key(&k) {
                continue;
            }
            if self.map.len() >= r.max {
                self.refused += 1;
                continue;
            }
            let seen = (i64::from(r.now) - i64::from(idle)).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
            self.map.insert(k, Normal { pps, seen, windows: windows.max(1) });
            restored += 1;
        }
        restored
    }

    /// The remembered normals sorted by key, and beside them how long each has been idle and the
    /// windows it was learned from (see [`FlowLearned`]).
    fn saved(&self, r: Retention) -> (Vec<(K, f64)>, Vec<Seen>)
    where
        K: Ord,
    {
        let mut v: Vec<(K, Normal)> = self.map.iter().filter(|(_, n)| r.fresh(n)).map(|(k, n)| (*k, *n)).collect();
        v.sort_by_key(|(k, _)| *k);
        v.into_iter().map(|(k, n)| ((k, n.pps), (r.idle(&n).clamp(0, i64::from(u32::MAX)) as u32, n.windows))).unzip()
    }

    fn counts(&self) -> LearnedCounts {
        LearnedCounts { entries: self.map.len(), refused: self.refused, forgotten: self.forgotten }
    }
}

/// One map of learned normals, for operators (see [`Detector::learned_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnedCounts {
    /// Normals kept now.
    pub entries: usize,
    /// New keys not learned because the map was full (`learned_max_entries`), since start.
    pub refused: u64,
    /// Normals forgotten (idle for `learned_forget_after`, or to make room), since start.
    pub forgotten: u64,
}

/// The learned normals of a detector, per map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnedStats {
    /// Toward each customer host.
    pub hosts: LearnedCounts,
    /// Toward each customer prefix as a whole.
    pub prefixes: LearnedCounts,
    /// From each customer host outward.
    pub outbound: LearnedCounts,
}

/// Prometheus metric names of the detector's learned normals (labels name the map only, never
/// an address).
pub mod metric {
    /// Gauge: learned normals kept, by `map` (host, prefix, outbound).
    pub const LEARNED: &str = "mamori_flow_learned_normals";
    /// Counter: new normals not learned because the map was full, by `map`.
    pub const REFUSED: &str = "mamori_flow_learned_normals_refused_total";
    /// Counter: learned normals forgotten (idle, or to make room), by `map`.
    pub const FORGOTTEN: &str = "mamori_flow_learned_normals_forgotten_total";

    /// Registers the help texts (call once, after the recorder is installed).
    pub fn describe() {
        metrics::describe_gauge!(
            LEARNED,
            "Learned normal rates kept by the flow detector, by map (host, prefix, outbound)"
        );
        metrics::describe_counter!(
            REFUSED,
            "Normal rates not learned because the map was full (learned_max_entries); those hosts are judged by the fixed limits only"
        );
        metrics::describe_counter!(
            FORGOTTEN,
            "Learned normal rates forgotten: idle for learned_forget_after, or to make room in a full map"
        );
    }

    /// Exports a detector's counts.
    pub fn export(s: &super::LearnedStats) {
        for (map, c) in [("host", s.hosts), ("prefix", s.prefixes), ("outbound", s.outbound)] {
            metrics::gauge!(LEARNED, "map" => map).set(c.entries as f64);
            metrics::counter!(REFUSED, "map" => map).absolute(c.refused);
            metrics::counter!(FORGOTTEN, "map" => map).absolute(c.forgotten);
        }
    }
}

/// The format version of [`FlowLearned`].
pub const FLOW_LEARNED_VERSION: u32 = 1;

/// What a detector has learned and a restart would otherwise lose: the normal packet rates
/// (packets/s, learned from quiet windows) toward each customer host and prefix and from each
/// customer host outward: the rates the `ddos.*` measures' views carry, nothing more.
///
/// Beside each list, `*_seen` holds for each of its entries, in the same order, the seconds (of
/// windows) since it was last seen when written and the windows it was learned from, for the
/// forget time and the cap ([`DetectConfig::learned_forget_after`], `learned_max_entries`) to
/// go on across restarts. They were added to version 1 without changing it: a file written before
/// them has none (its entries count as seen at restore, learned from one window), and a build
/// before them ignores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowLearned {
    /// [`FLOW_LEARNED_VERSION`] when written.
    pub version: u32,
    /// Toward each destination host.
    pub hosts: Vec<(IpAddr, f64)>,
    /// Toward each customer prefix as a whole (`ADDR/LEN`).
    pub prefixes: Vec<(String, f64)>,
    /// From each customer host outward.
    pub outbound: Vec<(IpAddr, f64)>,
    /// For each of `hosts`: idle seconds when written, windows learned from.
    #[serde(default)]
    pub hosts_seen: Vec<(u32, u32)>,
    /// For each of `prefixes`: idle seconds when written, windows learned from.
    #[serde(default)]
    pub prefixes_seen: Vec<(u32, u32)>,
    /// For each of `outbound`: idle seconds when written, windows learned from.
    #[serde(default)]
    pub outbound_seen: Vec<(u32, u32)>,
}

impl FlowLearned {
    /// Reads the file; `Ok(None)` when there is none yet.
    pub fn load(path: &std::path::Path) -> Result<Option<FlowLearned>, mamori_core::persist::PersistError> {
        mamori_core::persist::load_versioned(path, FLOW_LEARNED_VERSION, |l: &FlowLearned| l.version)
    }

    /// Writes the file atomically, readable by its owner only: it names hosts.
    pub fn save(&self, path: &std::path::Path) -> Result<(), mamori_core::persist::PersistError> {
        mamori_core::persist::save_json(path, self)
    }
}

/// The windowed detector.
#[derive(Debug)]
pub struct Detector {
    config: DetectConfig,
    /// The customer prefixes, for the longest match of a flow's ends.
    index: PrefixIndex,
    hosts: Hosts,
    /// Per customer prefix (index into the configuration's list), its hosts summed.
    prefixes: Vec<Acc>,
    normal_prefix: Normals<Prefix>,
    /// Seeded, as every map here ([`Seeded`]): the spoofed sources inside are the traffic's.
    spoof: Map<(IpAddr, u32), Spoof>,
    normal: Normals<IpAddr>,
    /// Customer hosts sending outward (a compromised host can spoof any of its prefix's).
    sources: Map<IpAddr, OutAcc>,
    normal_out: Normals<IpAddr>,
    /// Seconds of windows closed so far (the sum of their lengths): the clock of the learned
    /// normals' forget time, which a stalled or stepped wall clock doesn't move.
    now: f64,
    /// When (detector time) idle normals are swept next.
    next_sweep: f64,
    /// A host's packet, bit and flow budgets for a whole window (its limits × the expected
    /// window), when the engine closes windows early.
    budget: Option<(u64, u64, u64)>,
    /// A host not reported in the last window has spent a whole window's budget already.
    urgent: bool,
    /// Hosts reported in the last window (a sustained attack doesn't close every window early).
    /// Seeded: attacked hosts are the traffic's choice.
    reported_last: std::collections::HashSet<IpAddr, Seeded>,
    /// Breakdown maps of past windows, for reuse.
    spare: Spare,
}

/// What a window gave.
#[derive(Debug, Default)]
pub struct WindowOutcome {
    /// Destinations over a limit.
    pub attacks: Vec<DestinationTraffic>,
    /// Interfaces with spoofed sources.
    pub spoofing: Vec<IngressSources>,
    /// Customer hosts sending attack traffic outward.
    pub sources: Vec<SourceTraffic>,
}

impl Detector {
    /// A detector with `config`.
    pub fn new(config: DetectConfig) -> Self {
        Detector {
            index: PrefixIndex::new(&config.customer_prefixes),
            config,
            hosts: Hosts::default(),
            prefixes: Vec::new(),
            normal_prefix: Normals::new("prefix"),
            spoof: Map::default(),
            normal: Normals::new("host"),
            sources: Map::default(),
            normal_out: Normals::new("outbound"),
            now: 0.0,
            next_sweep: 0.0,
            budget: None,
            urgent: false,
            reported_last: std::collections::HashSet::default(),
            spare: Spare::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// The detector's clock and the bounds of its learned normals.
    fn retention(&self) -> Retention {
        let forget = self.config.learned_forget_after;
        Retention {
            // Float-to-int `as` saturates.
            now: self.now as i32,
            forget: if forget.is_nan() { i64::MAX } else { forget.max(0.0) as i64 },
            max: self.config.learned_max_entries,
        }
    }

    /// The learned normal packet rates (see [`FlowLearned`]), to be [restored](Self::restore)
    /// after a restart.
    pub fn learned(&self) -> FlowLearned {
        let r = self.retention();
        let (hosts, hosts_seen) = self.normal.saved(r);
        let (prefixes, prefixes_seen) = self.normal_prefix.saved(r);
        let (outbound, outbound_seen) = self.normal_out.saved(r);
        FlowLearned {
            version: FLOW_LEARNED_VERSION,
            hosts,
            prefixes: prefixes.into_iter().map(|(p, n)| (p.to_string(), n)).collect(),
            outbound,
            hosts_seen,
            prefixes_seen,
            outbound_seen,
        }
    }

    /// Takes back the normal rates an earlier detector learned. A host or prefix this detector
    /// learned already keeps its own; a prefix that no longer parses, a normal idle longer than
    /// the forget time, and past `learned_max_entries` the least recently seen, are skipped.
    /// Returns the number of normals restored.
    pub fn restore(&mut self, learned: FlowLearned) -> usize {
        let r = self.retention();
        // Without its idle time (a file written before it was kept), a normal counts as seen now
        // and learned from one window: forgotten first when the map is full, unless it comes back.
        let seen = |v: &[Seen], i: usize| v.get(i).copied().unwrap_or((0, 1));
        let FlowLearned { hosts, prefixes, outbound, hosts_seen, prefixes_seen, outbound_seen, .. } = learned;
        let hosts = hosts.into_iter().enumerate().map(|(i, (h, n))| (h, n, seen(&hosts_seen, i)));
        let prefixes = prefixes
            .into_iter()
            .enumerate()
            .filter_map(|(i, (p, n))| Some((p.parse::<Prefix>().ok()?, n, seen(&prefixes_seen, i))));
        let outbound = outbound.into_iter().enumerate().map(|(i, (h, n))| (h, n, seen(&outbound_seen, i)));
        self.normal.restore(hosts, r) + self.normal_prefix.restore(prefixes, r) + self.normal_out.restore(outbound, r)
    }

    /// How many normals each map keeps, and how many it refused or forgot.
    pub fn learned_counts(&self) -> LearnedStats {
        LearnedStats {
            hosts: self.normal.counts(),
            prefixes: self.normal_prefix.counts(),
            outbound: self.normal_out.counts(),
        }
    }

    /// The learned normal packet rate of a host.
    pub fn normal_pps(&self, host: IpAddr) -> Option<f64> {
        self.normal.get(&host, self.retention())
    }

    /// The learned normal packet rate toward a customer prefix as a whole.
    pub fn normal_prefix_pps(&self, prefix: Prefix) -> Option<f64> {
        self.normal_prefix.get(&prefix, self.retention())
    }

    /// The learned normal packet rate a customer host sends toward outside destinations.
    pub fn normal_out_pps(&self, host: IpAddr) -> Option<f64> {
        self.normal_out.get(&host, self.retention())
    }

    /// The index of the longest customer prefix holding `ip` (the last listed of equally long
    /// ones).
    fn customer_prefix_index(&self, ip: IpAddr) -> Option<usize> {
        self.index.lookup(ip)
    }

    /// The index of the customer prefixes, as [`Detector::ingest_located`] wants the flows'
    /// ends located.
    pub(crate) fn prefix_index(&self) -> &PrefixIndex {
        &self.index
    }

    /// Windows are expected to last `secs`: from then on [`Detector::urgent`] tells when a host
    /// not reported in the last window has already sent more than a whole window's worth of its
    /// limits (packets, bits or flows), so the window can be closed at once: however the rest of
    /// it went, that host is over its limit. Time to detect is then the time to spend the budget,
    /// not the time to the window's end.
    pub fn expect_window(&mut self, secs: f64) {
        let c = &self.config;
        let b = |limit: f64| (limit * secs).clamp(1.0, u64::MAX as f64) as u64;
        self.budget = Some((b(c.host_pps), b(c.host_bps / 8.0), b(c.host_fps)));
    }

    /// Whether the current window should close now (see [`Detector::expect_window`]).
    pub fn urgent(&self) -> bool {
        self.urgent
    }

    /// Adds one flow to the current window.
    pub fn ingest(&mut self, f: &FlowRecord) {
        let dst = self.customer_prefix_index(f.dst);
        let src = if dst.is_none() { self.customer_prefix_index(f.src) } else { None };
        self.ingest_located(f, dst, src);
    }

    /// Adds one flow whose destination and source were located among the customer prefixes
    /// with [`Detector::prefix_index`] (`src` is read only when `dst` is `None`).
    pub(crate) fn ingest_located(&mut self, f: &FlowRecord, dst: Option<usize>, src: Option<usize>) {
        if let Some((i, prefix)) = dst.and_then(|i| Some((i, *self.config.customer_prefixes.get(i)?))) {
            let acc = self.hosts.get(f.dst, i, prefix);
            acc.add(f, false, &mut self.spare);
            if let Some((p, b, n)) = self.budget {
                if !self.urgent
                    && (acc.packets >= p || acc.bytes >= b || acc.flows >= n)
                    && !self.reported_last.contains(&f.dst)
                {
                    self.urgent = true;
                }
            }
            if self.prefixes.len() <= i {
                self.prefixes.resize_with(self.config.customer_prefixes.len(), Acc::default);
            }
            if let Some(p) = self.prefixes.get_mut(i) {
                p.add(f, true, &mut self.spare);
            }
        } else if src.is_some() {
            self.sources.entry(f.src).or_default().add(f);
        }
        if let Some(ci) =
            self.config.customer_interfaces.iter().find(|c| c.exporter == f.exporter.ip() && c.if_index == f.input_if)
        {
            let s = self.spoof.entry((ci.exporter, ci.if_index)).or_default();
            s.packets += f.packets;
            if !ci.prefixes.iter().any(|p| p.contains(f.src))
                && (s.spoofed.len() < 1024 || s.spoofed.contains_key(&f.src))
            {
                *s.spoofed.entry(f.src).or_default() += f.packets;
            }
        }
    }

    /// Closes the window of `secs` seconds: reports what crossed a limit and learns the rest.
    ///
    /// The windows' lengths summed are the clock of the learned normals: normals not seen for
    /// `learned_forget_after` of it are forgotten, swept every quarter of that time (at most
    /// hourly), so a window pays for no sweep but rarely.
    pub fn close_window(&mut self, secs: f64) -> WindowOutcome {
        let secs = secs.max(0.001);
        if secs.is_finite() {
            self.now += secs;
        }
        let r = self.retention();
        if self.now >= self.next_sweep {
            self.next_sweep = self.now + (r.forget / 4).clamp(1, SWEEP_EVERY_MAX) as f64;
            self.normal.forget_idle(r);
            self.normal_prefix.forget_idle(r);
            self.normal_out.forget_idle(r);
        }
        let c = &self.config;
        let mut out = WindowOutcome::default();
        // Packets of the hosts reported, per customer prefix.
        let mut reported: Map<Prefix, u64> = Map::default();
        let mut hosts = self.hosts.take(&c.customer_prefixes);
        for (host, index, acc) in &hosts {
            let host = *host;
            let (pps, bps, fps) = rates(acc.packets, acc.bytes, acc.flows, secs);
            let limits = (c.host_pps, c.host_bps, c.host_fps);
            let Some((reason, normal_pps)) = over_limits(c, (pps, bps, fps), limits, &mut self.normal, r, host) else {
                continue;
            };
            let (attack, coverage) = characterise(Prefix::host(host), acc, c.dominance);
            let customer_prefix = c.customer_prefixes.get(*index).copied();
            if let Some(p) = customer_prefix {
                *reported.entry(p).or_default() += acc.packets;
            }
            out.attacks.push(DestinationTraffic {
                dst: Prefix::host(host),
                customer_prefix,
                pps,
                bps,
                fps,
                normal_pps,
                reason,
                attack,
                top_sources: acc.top_sources(5),
                sampled: acc.breakdown_sampled(false),
                coverage,
            });
        }
        // The arena's allocation, and its breakdown maps, serve the next window.
        for (_, _, acc) in &mut hosts {
            self.spare.keep(acc);
        }
        hosts.clear();
        self.hosts.arena = hosts;
        let mut prefixes = std::mem::take(&mut self.prefixes);
        for (prefix, acc) in c.customer_prefixes.iter().copied().zip(prefixes.iter()) {
            if acc.flows == 0 {
                continue;
            }
            let (pps, bps, fps) = rates(acc.packets, acc.bytes, acc.flows, secs);
            let limits = (c.prefix_pps, c.prefix_bps, c.prefix_fps);
            let Some((reason, normal_pps)) =
                over_limits(c, (pps, bps, fps), limits, &mut self.normal_prefix, r, prefix)
            else {
                continue;
            };
            // The hosts already reported carry the attack: their matches are narrower.
            if reported.get(&prefix).is_some_and(|n| *n as f64 >= c.dominance * acc.packets as f64) {
                continue;
            }
            let (attack, coverage) = characterise(prefix, acc, c.dominance);
            out.attacks.push(DestinationTraffic {
                dst: prefix,
                customer_prefix: Some(prefix),
                pps,
                bps,
                fps,
                normal_pps,
                reason,
                attack,
                top_sources: acc.top_sources(5),
                sampled: acc.breakdown_sampled(true),
                coverage,
            });
        }
        for acc in &mut prefixes {
            self.spare.keep(acc);
        }
        // In the order of the keys, not of the seeded maps (which differs from run to run): the
        // outputs, and which normals a full map takes first, follow the data alone.
        let mut spoof: Vec<_> = std::mem::take(&mut self.spoof).into_iter().collect();
        spoof.sort_unstable_by_key(|(k, _)| *k);
        for ((exporter, input_if), s) in spoof {
            let spoofed: u64 = s.spoofed.values().sum();
            if spoofed >= c.spoof_min_packets {
                let top = top_counts(s.spoofed, 5);
                let prefixes = c
                    .customer_interfaces
                    .iter()
                    .find(|x| x.exporter == exporter && x.if_index == input_if)
                    .map(|x| x.prefixes.clone())
                    .unwrap_or_default();
                out.spoofing.push(IngressSources {
                    exporter,
                    input_if,
                    customer_prefixes: prefixes,
                    spoofed: top,
                    packets: s.packets,
                });
            }
        }
        let mut sources: Vec<_> = std::mem::take(&mut self.sources).into_iter().collect();
        sources.sort_unstable_by_key(|(host, _)| *host);
        for (host, acc) in sources {
            let (pps, bps, fps) = rates(acc.packets, acc.bytes, acc.flows, secs);
            let limits = (c.source_pps, c.source_bps, c.source_fps);
            let Some((reason, normal_pps)) = over_limits(c, (pps, bps, fps), limits, &mut self.normal_out, r, host)
            else {
                continue;
            };
            let (attack, coverage) = characterise_outbound(host, &acc, c.dominance);
            let top = top_counts(acc.by_dst.iter().map(|(ip, p)| (*ip, *p)), 5);
            out.sources.push(SourceTraffic {
                src: Prefix::host(host),
                pps,
                bps,
                fps,
                normal_pps,
                reason,
                attack,
                top_destinations: top.into_iter().map(|(ip, p)| (ip, p as f64 / acc.packets.max(1) as f64)).collect(),
                coverage,
            });
        }
        self.urgent = false;
        self.reported_last = out
            .attacks
            .iter()
            .filter(|a| a.dst.len() == if a.dst.addr().is_ipv4() { 32 } else { 128 })
            .map(|a| a.dst.addr())
            .collect();
        // Busiest first; equal rates by address, so the order never depends on a map's.
        out.attacks.sort_by(|a, b| b.pps.total_cmp(&a.pps).then_with(|| a.dst.cmp(&b.dst)));
        out.sources.sort_by(|a, b| b.pps.total_cmp(&a.pps).then_with(|| a.src.cmp(&b.src)));
        out
    }
}

/// Which limit a host's (or a prefix's) window crossed — packets/s, bits/s, flows/s, or `normal_factor` times its
/// learned normal packet rate (over `min_pps`) — toward it or from it. A quiet window teaches the
/// host's normal instead (an exponential average, learned only from quiet windows). Returns the
/// reason and the normal packet rate it was judged against (0 before any was learned, or when
/// none could be: see [`Normals`]).
fn over_limits<K: Eq + std::hash::Hash + Copy>(
    c: &DetectConfig,
    (pps, bps, fps): (f64, f64, f64),
    (max_pps, max_bps, max_fps): (f64, f64, f64),
    normals: &mut Normals<K>,
    r: Retention,
    host: K,
) -> Option<(&'static str, f64)> {
    let (reason, normal) = normals.observe(host, pps, c.learn_alpha, r, |normal| {
        if pps >= max_pps {
            Some("pps")
        } else if bps >= max_bps {
            Some("bps")
        } else if fps >= max_fps {
            Some("fps")
        } else if pps >= c.min_pps && normal.is_some_and(|n| pps >= c.normal_factor * n.max(1.0)) {
            Some("normal")
        } else {
            None
        }
    });
    reason.map(|r| (r, normal.unwrap_or(0.0)))
}

/// The narrowest match that still covers the dominant traffic, and the share it covers.
fn characterise(dst: Prefix, acc: &Acc, share: f64) -> (FlowMatch, f64) {
    let empty = Detail::default();
    let acc = acc.detail.as_deref().unwrap_or(&empty);
    let total = acc.packets;
    let mut m = FlowMatch::discard_to(dst);
    let mut covered = total;
    if let Some((proto, n)) = dominant(&acc.by_proto, total, share) {
        m.protocol = Some(proto);
        covered = n;
        if let Some((port, n)) = dominant(&acc.by_sport, covered, share).filter(|(p, _)| REFLECTION_PORTS.contains(p)) {
            m.src_ports.push(port);
            covered = n;
        } else if let Some((port, n)) = dominant(&acc.by_dport, covered, share) {
            m.dst_ports.push(port);
            covered = n;
        }
        if proto == 6 && acc.syn_only as f64 >= share * covered as f64 {
            m.tcp_flags = Some(0x02);
        }
    }
    (m, if total == 0 { 0.0 } else { covered as f64 / total as f64 })
}

/// The match on a customer host's outbound attack: the source host, and the dominant protocol,
/// destination port and victim when one dominates (otherwise any destination). Only the fields
/// `ddos.block-unintended-source` may read: no source port, no TCP flags.
fn characterise_outbound(src: IpAddr, acc: &OutAcc, share: f64) -> (FlowMatch, f64) {
    let total = acc.packets;
    let any = match src {
        IpAddr::V4(_) => Prefix::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => Prefix::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0),
    };
    let mut m = FlowMatch { src: Some(Prefix::host(src)), ..FlowMatch::discard_to(any) };
    let mut covered = total;
    if let Some((proto, n)) = dominant(&acc.by_proto, total, share) {
        m.protocol = Some(proto);
        covered = n;
        if let Some((port, n)) = dominant(&acc.by_dport, covered, share) {
            m.dst_ports.push(port);
            covered = n;
        }
    }
    if let Some((victim, n)) = dominant(&acc.by_dst, covered, share) {
        m.dst = Prefix::host(victim);
        covered = covered.min(n);
    }
    (m, if total == 0 { 0.0 } else { covered as f64 / total as f64 })
}

#[cfg(test)]
mod tests;

/// Packets, bits and flows per second over a window of `secs`.
fn rates(packets: u64, bytes: u64, flows: u64, secs: f64) -> (f64, f64, f64) {
    (packets as f64 / secs, bytes as f64 * 8.0 / secs, flows as f64 / secs)
}

/// The `n` largest counts, largest first; among equal counts the lowest key first (so the result
/// doesn't depend on the order given, i.e. on a map's layout; see [`dominant`]).
fn top_counts<K: Ord>(counts: impl IntoIterator<Item = (K, u64)>, n: usize) -> Vec<(K, u64)> {
    let mut top: Vec<_> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(n);
    top
}
