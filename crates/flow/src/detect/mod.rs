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

pub mod engine;
pub mod views;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::bgp::FlowMatch;
use crate::collector::FlowRecord;
use crate::prefix::{Prefix, PrefixIndex};
pub use views::{AttackTraffic, DestinationTraffic, IngressSources, OutboundAttack, SourceTraffic, SpoofedSources};

/// The multiplicative hash of rustc's `FxHasher` with Murmur3's finaliser: the detector's maps are keyed by addresses and
/// ports of one window, hashed once per flow several times over, where SipHash's resistance to
/// chosen keys costs more than it protects (each map is bounded and emptied every window).
#[derive(Debug, Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits (the bucket index) depending only on the input's
        // low bits; an address's varying octets are its high ones. Murmur3's finaliser mixes.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

impl Fx {
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A map with the [`Fx`] hash.
type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

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
        }
    }
}

/// A destination's packets in a window before its breakdown (protocols, ports, sources) is kept:
/// no limit a destination can cross in a window is this low, and most destinations of a busy
/// network never reach it, so their windows cost three additions per flow and no allocation.
/// The breakdown of one that does reach it covers the rest of its window, which is what shares
/// are taken from.
const DETAIL_AFTER: u64 = 256;

/// A customer prefix's breakdown takes one flow in this many (its totals take every flow): a
/// prefix sees every flow toward it, and shares don't need them all.
const PREFIX_DETAIL_EVERY: u64 = 8;

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
    /// Packets in the breakdown.
    packets: u64,
    by_proto: Map<u8, u64>,
    by_sport: Map<u16, u64>,
    by_dport: Map<u16, u64>,
    syn_only: u64,
    /// IPv4 sources by address: 16-byte entries, half the memory of a map keyed by `IpAddr`, and
    /// a busy destination's map of thousands of sources is most of what a flow touches.
    by_src4: Map<u32, u64>,
    /// IPv6 sources.
    by_src6: Map<std::net::Ipv6Addr, u64>,
}

impl Acc {
    /// Adds a flow; the breakdown takes one flow in `every`, in a breakdown from `spare` when it
    /// starts.
    fn add(&mut self, f: &FlowRecord, every: u64, spare: &mut Spare) {
        self.packets += f.packets;
        self.bytes += f.bytes;
        self.flows += 1;
        if self.packets < DETAIL_AFTER || self.flows % every != 0 {
            return;
        }
        let d = self.detail.get_or_insert_with(|| spare.lend());
        d.packets += f.packets;
        *d.by_proto.entry(f.protocol).or_default() += f.packets;
        if f.protocol == 6 || f.protocol == 17 {
            *d.by_sport.entry(f.src_port).or_default() += f.packets;
            *d.by_dport.entry(f.dst_port).or_default() += f.packets;
        }
        if f.protocol == 6 && f.tcp_flags & 0x12 == 0x02 {
            d.syn_only += f.packets;
        }
        // Bounded: past 4096 distinct sources only the ones already counted grow.
        let full = d.by_src4.len() + d.by_src6.len() >= 4096;
        match f.src {
            IpAddr::V4(a) => {
                let a = a.to_bits();
                if !full || d.by_src4.contains_key(&a) {
                    *d.by_src4.entry(a).or_default() += f.packets;
                }
            }
            IpAddr::V6(a) => {
                if !full || d.by_src6.contains_key(&a) {
                    *d.by_src6.entry(a).or_default() += f.packets;
                }
            }
        }
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
        d.syn_only = 0;
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
    /// Hosts without a table: their place in `arena`.
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
    spoofed: Map<IpAddr, u64>,
}

/// The format version of [`FlowLearned`].
pub const FLOW_LEARNED_VERSION: u32 = 1;

/// What a detector has learned and a restart would otherwise lose: the normal packet rates
/// (packets/s, learned from quiet windows) toward each customer host and prefix and from each
/// customer host outward: the rates the `ddos.*` measures' views carry, nothing more.
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
    normal_prefix: Map<Prefix, f64>,
    spoof: Map<(IpAddr, u32), Spoof>,
    normal: Map<IpAddr, f64>,
    sources: Map<IpAddr, OutAcc>,
    normal_out: Map<IpAddr, f64>,
    /// A host's packet, bit and flow budgets for a whole window (its limits × the expected
    /// window), when the engine closes windows early.
    budget: Option<(u64, u64, u64)>,
    /// A host not reported in the last window has spent a whole window's budget already.
    urgent: bool,
    /// Hosts reported in the last window (a sustained attack doesn't close every window early).
    reported_last: std::collections::HashSet<IpAddr, BuildHasherDefault<Fx>>,
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
            normal_prefix: Map::default(),
            spoof: Map::default(),
            normal: Map::default(),
            sources: Map::default(),
            normal_out: Map::default(),
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

    /// The learned normal packet rates (see [`FlowLearned`]), to be [restored](Self::restore)
    /// after a restart.
    pub fn learned(&self) -> FlowLearned {
        fn sorted<K: Ord + Copy>(m: &Map<K, f64>) -> Vec<(K, f64)> {
            let mut v: Vec<(K, f64)> = m.iter().map(|(k, n)| (*k, *n)).collect();
            v.sort_by_key(|(k, _)| *k);
            v
        }
        FlowLearned {
            version: FLOW_LEARNED_VERSION,
            hosts: sorted(&self.normal),
            prefixes: sorted(&self.normal_prefix).into_iter().map(|(p, n)| (p.to_string(), n)).collect(),
            outbound: sorted(&self.normal_out),
        }
    }

    /// Takes back the normal rates an earlier detector learned. A host or prefix this detector
    /// learned already keeps its own; a prefix that no longer parses is skipped. Returns the number
    /// of normals restored.
    pub fn restore(&mut self, learned: FlowLearned) -> usize {
        let mut restored = 0;
        for (host, n) in learned.hosts.into_iter().filter(|(_, n)| n.is_finite()) {
            self.normal.entry(host).or_insert_with(|| {
                restored += 1;
                n
            });
        }
        for (prefix, n) in learned.prefixes.into_iter().filter(|(_, n)| n.is_finite()) {
            if let Ok(p) = prefix.parse::<Prefix>() {
                self.normal_prefix.entry(p).or_insert_with(|| {
                    restored += 1;
                    n
                });
            }
        }
        for (host, n) in learned.outbound.into_iter().filter(|(_, n)| n.is_finite()) {
            self.normal_out.entry(host).or_insert_with(|| {
                restored += 1;
                n
            });
        }
        restored
    }

    /// The learned normal packet rate of a host.
    pub fn normal_pps(&self, host: IpAddr) -> Option<f64> {
        self.normal.get(&host).copied()
    }

    /// The learned normal packet rate toward a customer prefix as a whole.
    pub fn normal_prefix_pps(&self, prefix: Prefix) -> Option<f64> {
        self.normal_prefix.get(&prefix).copied()
    }

    /// The learned normal packet rate a customer host sends toward outside destinations.
    pub fn normal_out_pps(&self, host: IpAddr) -> Option<f64> {
        self.normal_out.get(&host).copied()
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
            acc.add(f, 1, &mut self.spare);
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
                p.add(f, PREFIX_DETAIL_EVERY, &mut self.spare);
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
    pub fn close_window(&mut self, secs: f64) -> WindowOutcome {
        let secs = secs.max(0.001);
        let c = &self.config;
        let mut out = WindowOutcome::default();
        // Packets of the hosts reported, per customer prefix.
        let mut reported: Map<Prefix, u64> = Map::default();
        let mut hosts = self.hosts.take(&c.customer_prefixes);
        for (host, index, acc) in &hosts {
            let host = *host;
            let (pps, bps, fps) = rates(acc.packets, acc.bytes, acc.flows, secs);
            let limits = (c.host_pps, c.host_bps, c.host_fps);
            let Some((reason, normal_pps)) = over_limits(c, (pps, bps, fps), limits, &mut self.normal, host) else {
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
            let Some((reason, normal_pps)) = over_limits(c, (pps, bps, fps), limits, &mut self.normal_prefix, prefix)
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
                coverage,
            });
        }
        for acc in &mut prefixes {
            self.spare.keep(acc);
        }
        for ((exporter, input_if), s) in std::mem::take(&mut self.spoof) {
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
        for (host, acc) in std::mem::take(&mut self.sources) {
            let (pps, bps, fps) = rates(acc.packets, acc.bytes, acc.flows, secs);
            let limits = (c.source_pps, c.source_bps, c.source_fps);
            let Some((reason, normal_pps)) = over_limits(c, (pps, bps, fps), limits, &mut self.normal_out, host) else {
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
        out.attacks.sort_by(|a, b| b.pps.total_cmp(&a.pps));
        out.sources.sort_by(|a, b| b.pps.total_cmp(&a.pps));
        out
    }
}

/// Which limit a host's (or a prefix's) window crossed — packets/s, bits/s, flows/s, or `normal_factor` times its
/// learned normal packet rate (over `min_pps`) — toward it or from it. A quiet window teaches the
/// host's normal instead (an exponential average, learned only from quiet windows). Returns the
/// reason and the normal packet rate it was judged against (0 before any was learned).
fn over_limits<K: Eq + std::hash::Hash>(
    c: &DetectConfig,
    (pps, bps, fps): (f64, f64, f64),
    (max_pps, max_bps, max_fps): (f64, f64, f64),
    normals: &mut Map<K, f64>,
    host: K,
) -> Option<(&'static str, f64)> {
    let normal = normals.get(&host).copied();
    let reason = if pps >= max_pps {
        Some("pps")
    } else if bps >= max_bps {
        Some("bps")
    } else if fps >= max_fps {
        Some("fps")
    } else if pps >= c.min_pps && normal.is_some_and(|n| pps >= c.normal_factor * n.max(1.0)) {
        Some("normal")
    } else {
        None
    };
    if reason.is_none() {
        let n = normals.entry(host).or_insert(pps);
        *n += c.learn_alpha * (pps - *n);
    }
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
