//! Per-destination DDoS detection and spoofed-source detection over windows of flows.
//!
//! Each window, traffic toward every host inside a customer prefix (and each customer prefix as a
//! whole) is compared with fixed thresholds (packets/s, bits/s, flows/s) and with the
//! destination's learned normal packet rate (an exponentially weighted mean updated only by
//! quiet windows, so an attack doesn't teach itself as normal). A destination over a limit is
//! characterised — dominant protocol, reflection source ports (53, 123, 389, 1900, 11211, …),
//! dominant destination port, TCP flags, fragments — into a [`FlowMatch`] that covers only the
//! attack traffic. Flows entering on customer-facing interfaces with sources outside the
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
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::bgp::{FlowAction, FlowMatch};
use crate::collector::FlowRecord;
use crate::prefix::Prefix;
pub use views::{AttackTraffic, DestinationTraffic, IngressSources, OutboundAttack, SourceTraffic, SpoofedSources};

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

#[derive(Debug, Default)]
struct Acc {
    packets: u64,
    bytes: u64,
    flows: u64,
    by_proto: HashMap<u8, u64>,
    by_sport: HashMap<u16, u64>,
    by_dport: HashMap<u16, u64>,
    syn_only: u64,
    by_src: HashMap<IpAddr, u64>,
}

impl Acc {
    fn add(&mut self, f: &FlowRecord) {
        self.packets += f.packets;
        self.bytes += f.bytes;
        self.flows += 1;
        *self.by_proto.entry(f.protocol).or_default() += f.packets;
        if f.protocol == 6 || f.protocol == 17 {
            *self.by_sport.entry(f.src_port).or_default() += f.packets;
            *self.by_dport.entry(f.dst_port).or_default() += f.packets;
        }
        if f.protocol == 6 && f.tcp_flags & 0x12 == 0x02 {
            self.syn_only += f.packets;
        }
        // Bounded: past 4096 distinct sources only the ones already counted grow.
        if self.by_src.len() < 4096 || self.by_src.contains_key(&f.src) {
            *self.by_src.entry(f.src).or_default() += f.packets;
        }
    }
}

fn dominant<K: Copy + Eq + std::hash::Hash>(m: &HashMap<K, u64>, total: u64, share: f64) -> Option<(K, u64)> {
    let (k, v) = m.iter().max_by_key(|(_, v)| **v)?;
    (total > 0 && *v as f64 >= share * total as f64).then_some((*k, *v))
}

/// What one customer host sent toward outside destinations in a window.
#[derive(Debug, Default)]
struct OutAcc {
    packets: u64,
    bytes: u64,
    flows: u64,
    by_proto: HashMap<u8, u64>,
    by_dport: HashMap<u16, u64>,
    by_dst: HashMap<IpAddr, u64>,
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

#[derive(Debug, Default)]
struct Spoof {
    packets: u64,
    spoofed: HashMap<IpAddr, u64>,
}

/// The windowed detector.
#[derive(Debug)]
pub struct Detector {
    config: DetectConfig,
    hosts: HashMap<IpAddr, Acc>,
    spoof: HashMap<(IpAddr, u32), Spoof>,
    normal: HashMap<IpAddr, f64>,
    sources: HashMap<IpAddr, OutAcc>,
    normal_out: HashMap<IpAddr, f64>,
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
            config,
            hosts: HashMap::new(),
            spoof: HashMap::new(),
            normal: HashMap::new(),
            sources: HashMap::new(),
            normal_out: HashMap::new(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// The learned normal packet rate of a host.
    pub fn normal_pps(&self, host: IpAddr) -> Option<f64> {
        self.normal.get(&host).copied()
    }

    /// The learned normal packet rate a customer host sends toward outside destinations.
    pub fn normal_out_pps(&self, host: IpAddr) -> Option<f64> {
        self.normal_out.get(&host).copied()
    }

    fn customer_prefix(&self, ip: IpAddr) -> Option<Prefix> {
        self.config.customer_prefixes.iter().filter(|p| p.contains(ip)).max_by_key(|p| p.len()).copied()
    }

    /// Adds one flow to the current window.
    pub fn ingest(&mut self, f: &FlowRecord) {
        let inbound = self.customer_prefix(f.dst).is_some();
        if inbound {
            self.hosts.entry(f.dst).or_default().add(f);
        } else if self.customer_prefix(f.src).is_some() {
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
        for (host, acc) in std::mem::take(&mut self.hosts) {
            let (pps, bps, fps) = (acc.packets as f64 / secs, acc.bytes as f64 * 8.0 / secs, acc.flows as f64 / secs);
            let limits = (c.host_pps, c.host_bps, c.host_fps);
            let Some((reason, normal_pps)) = over_limits(c, (pps, bps, fps), limits, &mut self.normal, host) else {
                continue;
            };
            let (attack, coverage) = characterise(Prefix::host(host), &acc, c.dominance);
            let mut top: Vec<_> = acc.by_src.iter().map(|(ip, p)| (*ip, *p)).collect();
            top.sort_by_key(|x| std::cmp::Reverse(x.1));
            top.truncate(5);
            out.attacks.push(DestinationTraffic {
                dst: Prefix::host(host),
                customer_prefix: self.customer_prefix(host),
                pps,
                bps,
                fps,
                normal_pps,
                reason,
                attack,
                top_sources: top.into_iter().map(|(ip, p)| (ip, p as f64 / acc.packets.max(1) as f64)).collect(),
                coverage,
            });
        }
        for ((exporter, input_if), s) in std::mem::take(&mut self.spoof) {
            let spoofed: u64 = s.spoofed.values().sum();
            if spoofed >= c.spoof_min_packets {
                let mut top: Vec<_> = s.spoofed.into_iter().collect();
                top.sort_by_key(|x| std::cmp::Reverse(x.1));
                top.truncate(5);
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
            let (pps, bps, fps) = (acc.packets as f64 / secs, acc.bytes as f64 * 8.0 / secs, acc.flows as f64 / secs);
            let limits = (c.source_pps, c.source_bps, c.source_fps);
            let Some((reason, normal_pps)) = over_limits(c, (pps, bps, fps), limits, &mut self.normal_out, host) else {
                continue;
            };
            let (attack, coverage) = characterise_outbound(host, &acc, c.dominance);
            let mut top: Vec<_> = acc.by_dst.iter().map(|(ip, p)| (*ip, *p)).collect();
            top.sort_by_key(|x| std::cmp::Reverse(x.1));
            top.truncate(5);
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
        out.attacks.sort_by(|a, b| b.pps.total_cmp(&a.pps));
        out.sources.sort_by(|a, b| b.pps.total_cmp(&a.pps));
        out
    }
}

/// The narrowest match that still covers the dominant traffic, and the share it covers.
/// Which limit a host's window crossed — packets/s, bits/s, flows/s, or `normal_factor` times its
/// learned normal packet rate (over `min_pps`) — toward it or from it. A quiet window teaches the
/// host's normal instead (an exponential average, learned only from quiet windows). Returns the
/// reason and the normal packet rate it was judged against (0 before any was learned).
fn over_limits(
    c: &DetectConfig,
    (pps, bps, fps): (f64, f64, f64),
    (max_pps, max_bps, max_fps): (f64, f64, f64),
    normals: &mut HashMap<IpAddr, f64>,
    host: IpAddr,
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

fn characterise(dst: Prefix, acc: &Acc, share: f64) -> (FlowMatch, f64) {
    let total = acc.packets;
    let mut m = FlowMatch {
        dst,
        src: None,
        protocol: None,
        src_ports: Vec::new(),
        dst_ports: Vec::new(),
        tcp_flags: None,
        fragment: false,
        action: FlowAction::Discard,
    };
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
    let mut m = FlowMatch {
        dst: any,
        src: Some(Prefix::host(src)),
        protocol: None,
        src_ports: Vec::new(),
        dst_ports: Vec::new(),
        tcp_flags: None,
        fragment: false,
        action: FlowAction::Discard,
    };
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
