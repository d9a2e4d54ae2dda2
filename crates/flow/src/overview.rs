//! `net.traffic-overview`: traffic per protocol, per customer prefix and top talkers, as
//! aggregates only.
//!
//! The [`Overview`] keeps no per-host state: every flow is added to its protocol's totals and to
//! the aggregate prefix of its inside end (the customer prefix it belongs to, widened to at most
//! [`AGGREGATE_MAX_LEN_V4`]/[`AGGREGATE_MAX_LEN_V6`] bits, so no label ever names fewer than 256
//! IPv4 addresses or a /48). Each window gives one [`TrafficAggregate`]; the
//! [`TrafficOverview`] view of the measure projects it, and [`export`] writes it to the metrics
//! recorder (Prometheus `/metrics` under `mamori serve`).

use std::collections::HashMap;

use mamori_core::catalog::{Field, MeasureId};
use mamori_core::subject::{SubscriberId, Target};
use mamori_core::view::{MeasureView, ViewToken};

use crate::collector::FlowRecord;
use crate::prefix::{Prefix, PrefixIndex};

/// The longest IPv4 prefix an aggregate label may have.
pub const AGGREGATE_MAX_LEN_V4: u8 = 24;
/// The longest IPv6 prefix an aggregate label may have.
pub const AGGREGATE_MAX_LEN_V6: u8 = 48;

/// Prometheus metric names of the overview.
pub mod metric {
    /// Counter: bytes by `protocol` (tcp, udp, icmp, icmpv6, gre, esp, ah, sctp, other).
    pub const BYTES: &str = "mamori_flow_bytes_total";
    /// Counter: packets by `protocol`.
    pub const PACKETS: &str = "mamori_flow_packets_total";
    /// Counter: bytes by aggregate customer `prefix` and `direction` (in, out).
    pub const PREFIX_BYTES: &str = "mamori_flow_prefix_bytes_total";
    /// Gauge: bits per second of the last window by aggregate customer `prefix` and `direction`.
    pub const PREFIX_BPS: &str = "mamori_flow_prefix_bits_per_second";
    /// Gauge: packets per second of the last window by aggregate customer `prefix` and `direction`.
    pub const PREFIX_PPS: &str = "mamori_flow_prefix_packets_per_second";
    /// Gauge: bits per second (both directions) of the busiest aggregate prefixes of the last
    /// window, by `prefix`; a prefix that left the top set reads 0.
    pub const TOP_TALKER_BPS: &str = "mamori_flow_top_talker_bits_per_second";

    /// Registers the help texts (call once, after the recorder is installed).
    pub fn describe() {
        metrics::describe_counter!(BYTES, metrics::Unit::Bytes, "Bytes seen in flows, by IP protocol");
        metrics::describe_counter!(PACKETS, metrics::Unit::Count, "Packets seen in flows, by IP protocol");
        metrics::describe_counter!(
            PREFIX_BYTES,
            metrics::Unit::Bytes,
            "Bytes to (in) and from (out) each aggregate customer prefix"
        );
        metrics::describe_gauge!(
            PREFIX_BPS,
            "Bits per second to (in) and from (out) each aggregate customer prefix, last window"
        );
        metrics::describe_gauge!(
            PREFIX_PPS,
            "Packets per second to (in) and from (out) each aggregate customer prefix, last window"
        );
        metrics::describe_gauge!(
            TOP_TALKER_BPS,
            "Bits per second of the busiest aggregate customer prefixes, last window (0 once out of the top set)"
        );
    }
}

/// The protocol labels, in [`protocol_index`] order.
const PROTOCOL_LABELS: [&str; 9] = ["icmp", "tcp", "udp", "gre", "esp", "ah", "icmpv6", "sctp", "other"];

/// The place of an IP protocol number's label in [`PROTOCOL_LABELS`].
fn protocol_index(protocol: u8) -> usize {
    match protocol {
        1 => 0,
        6 => 1,
        17 => 2,
        47 => 3,
        50 => 4,
        51 => 5,
        58 => 6,
        132 => 7,
        _ => 8,
    }
}

/// The label of an IP protocol number; anything unlisted is `other`, so the label set is bounded.
pub fn protocol_label(protocol: u8) -> &'static str {
    PROTOCOL_LABELS.get(protocol_index(protocol)).copied().unwrap_or("other")
}

/// Packets and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Volume {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Volume {
    fn add(&mut self, f: &FlowRecord) {
        self.packets = self.packets.saturating_add(f.packets);
        self.bytes = self.bytes.saturating_add(f.bytes);
    }

    fn merge(&mut self, v: Volume) {
        self.packets = self.packets.saturating_add(v.packets);
        self.bytes = self.bytes.saturating_add(v.bytes);
    }
}

/// One aggregate prefix's traffic in a window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrefixVolume {
    /// Toward the prefix.
    pub inbound: Volume,
    /// From the prefix.
    pub outbound: Volume,
}

/// One window of aggregates: the record the [`TrafficOverview`] view is projected from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficAggregate {
    /// Window length in seconds.
    pub secs: f64,
    /// Per protocol label.
    pub by_protocol: HashMap<&'static str, Volume>,
    /// Per aggregate customer prefix.
    pub by_prefix: HashMap<Prefix, PrefixVolume>,
    /// How many top talkers to report.
    pub top: usize,
}

/// Accumulates flows into aggregates.
///
/// A window's volumes are kept in arrays — per protocol label, and per customer prefix (by its
/// place in the list), each direction — and summed into a [`TrafficAggregate`]'s maps when the
/// window closes: a flow costs two array additions, not two hash-map entries. The sums are
/// saturating, like the per-flow additions, so they don't depend on the order.
#[derive(Debug)]
pub struct Overview {
    top: usize,
    index: PrefixIndex,
    /// The aggregate prefix of each customer prefix.
    aggregates: Vec<Prefix>,
    /// Per protocol label (see [`protocol_index`]), `None` while no flow had it.
    protocols: [Option<Volume>; PROTOCOL_LABELS.len()],
    /// Per customer prefix, `None` while no flow had an end inside it.
    prefixes: Vec<Option<PrefixVolume>>,
}

/// The aggregate prefix of a customer prefix: itself, widened to the aggregate floor.
fn aggregate_of(p: Prefix) -> Prefix {
    let max = if p.addr().is_ipv4() { AGGREGATE_MAX_LEN_V4 } else { AGGREGATE_MAX_LEN_V6 };
    if p.len() > max { Prefix::new(p.addr(), max) } else { p }
}

impl Overview {
    /// An overview of `customer_prefixes`, reporting the `top` busiest aggregate prefixes.
    pub fn new(customer_prefixes: Vec<Prefix>, top: usize) -> Self {
        Overview {
            top,
            index: PrefixIndex::new(&customer_prefixes),
            aggregates: customer_prefixes.iter().copied().map(aggregate_of).collect(),
            protocols: [None; PROTOCOL_LABELS.len()],
            prefixes: vec![None; customer_prefixes.len()],
        }
    }

    /// Adds one flow.
    pub fn ingest(&mut self, f: &FlowRecord) {
        let (dst, src) = (self.index.lookup(f.dst), self.index.lookup(f.src));
        self.ingest_located(f, dst, src);
    }

    /// Adds one flow whose ends were already looked up among the customer prefixes (their
    /// places in the list this overview was made with, longest match).
    pub(crate) fn ingest_located(&mut self, f: &FlowRecord, dst: Option<usize>, src: Option<usize>) {
        if let Some(v) = self.protocols.get_mut(protocol_index(f.protocol)) {
            v.get_or_insert_default().add(f);
        }
        if let Some(Some(v)) = dst.map(|i| self.prefixes.get_mut(i)) {
            v.get_or_insert_default().inbound.add(f);
        }
        if let Some(Some(v)) = src.map(|i| self.prefixes.get_mut(i)) {
            v.get_or_insert_default().outbound.add(f);
        }
    }

    /// Closes the window of `secs` seconds.
    pub fn close_window(&mut self, secs: f64) -> TrafficAggregate {
        let mut out = TrafficAggregate { secs: secs.max(0.001), top: self.top, ..Default::default() };
        for (label, v) in PROTOCOL_LABELS.iter().zip(&mut self.protocols) {
            if let Some(v) = v.take() {
                out.by_protocol.insert(label, v);
            }
        }
        for (p, v) in self.aggregates.iter().zip(&mut self.prefixes) {
            if let Some(v) = v.take() {
                let e = out.by_prefix.entry(*p).or_default();
                e.inbound.merge(v.inbound);
                e.outbound.merge(v.outbound);
            }
        }
        out
    }
}

/// Rates of one aggregate prefix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefixRates {
    /// The aggregate prefix.
    pub prefix: Prefix,
    /// Bytes in and out during the window.
    pub bytes: [u64; 2],
    /// Bits per second in and out.
    pub bps: [f64; 2],
    /// Packets per second in and out.
    pub pps: [f64; 2],
}

/// Stage 1 of `net.traffic-overview`: aggregates only.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficOverview {
    /// Bytes and packets per protocol label, sorted by label.
    pub protocols: Vec<(&'static str, Volume)>,
    /// Per aggregate prefix, sorted by prefix.
    pub prefixes: Vec<PrefixRates>,
    /// The busiest aggregate prefixes (both directions), busiest first, with their bits/s.
    pub top_talkers: Vec<(Prefix, f64)>,
}

impl MeasureView for TrafficOverview {
    type Record = TrafficAggregate;
    const MEASURE: MeasureId = MeasureId::NetTrafficOverview;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::AggregateTraffic];
    fn subscriber(_r: &TrafficAggregate) -> Option<&SubscriberId> {
        None
    }
    fn subject(_r: &TrafficAggregate) -> Target {
        Target::Network
    }
    fn project(r: &TrafficAggregate, _token: ViewToken) -> Self {
        let secs = r.secs.max(0.001);
        let mut protocols: Vec<_> = r.by_protocol.iter().map(|(k, v)| (*k, *v)).collect();
        protocols.sort_by_key(|x| x.0);
        // Defence in depth: a label finer than the aggregate floor never leaves the view.
        let mut prefixes: Vec<PrefixRates> = r
            .by_prefix
            .iter()
            .filter(|(p, _)| p.len() <= if p.addr().is_ipv4() { AGGREGATE_MAX_LEN_V4 } else { AGGREGATE_MAX_LEN_V6 })
            .map(|(p, v)| PrefixRates {
                prefix: *p,
                bytes: [v.inbound.bytes, v.outbound.bytes],
                bps: [v.inbound.bytes as f64 * 8.0 / secs, v.outbound.bytes as f64 * 8.0 / secs],
                pps: [v.inbound.packets as f64 / secs, v.outbound.packets as f64 / secs],
            })
            .collect();
        prefixes.sort_by_key(|x| x.prefix);
        let mut top_talkers: Vec<_> = prefixes.iter().map(|x| (x.prefix, x.bps[0] + x.bps[1])).collect();
        top_talkers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        top_talkers.truncate(r.top);
        TrafficOverview { protocols, prefixes, top_talkers }
    }
}

/// Writes views to the metrics recorder, remembering the top set to zero prefixes that leave it.
#[derive(Debug, Default)]
pub struct Exporter {
    top: Vec<Prefix>,
}

impl Exporter {
    /// Exports one window's view.
    pub fn export(&mut self, v: &TrafficOverview) {
        for (proto, vol) in &v.protocols {
            metrics::counter!(metric::BYTES, "protocol" => *proto).increment(vol.bytes);
            metrics::counter!(metric::PACKETS, "protocol" => *proto).increment(vol.packets);
        }
        for p in &v.prefixes {
            let prefix = p.prefix.to_string();
            for (i, dir) in ["in", "out"].into_iter().enumerate() {
                let (bytes, bps, pps) = (p.bytes[i], p.bps[i], p.pps[i]);
                metrics::counter!(metric::PREFIX_BYTES, "prefix" => prefix.clone(), "direction" => dir)
                    .increment(bytes);
                metrics::gauge!(metric::PREFIX_BPS, "prefix" => prefix.clone(), "direction" => dir).set(bps);
                metrics::gauge!(metric::PREFIX_PPS, "prefix" => prefix.clone(), "direction" => dir).set(pps);
            }
        }
        let now: Vec<Prefix> = v.top_talkers.iter().map(|x| x.0).collect();
        for gone in self.top.iter().filter(|p| !now.contains(p)) {
            metrics::gauge!(metric::TOP_TALKER_BPS, "prefix" => gone.to_string()).set(0.0);
        }
        for (p, bps) in &v.top_talkers {
            metrics::gauge!(metric::TOP_TALKER_BPS, "prefix" => p.to_string()).set(*bps);
        }
        self.top = now;
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::*;

    fn rec(src: [u8; 4], dst: [u8; 4], proto: u8, packets: u64) -> FlowRecord {
        FlowRecord {
            exporter: SocketAddr::from(([192, 0, 2, 1], 2055)),
            export_secs: 0,
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            protocol: proto,
            src_port: 1000,
            dst_port: 2000,
            tcp_flags: 0,
            input_if: 1,
            packets,
            bytes: packets * 100,
        }
    }

    /// Projects through a real gate: the catalog must allow the view's fields.
    fn project(a: &TrafficAggregate) -> TrafficOverview {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(
            mamori_store::SqliteStore::open(&dir.path().join("m.sqlite"), mamori_store::StoreOptions::default())
                .unwrap(),
        );
        let clock = std::sync::Arc::new(mamori_core::clock::WallClock);
        let gov = mamori_core::governance::Governance::new(
            store,
            clock.clone(),
            std::sync::Arc::new(mamori_core::config::Config::default()),
        )
        .unwrap();
        let gate = mamori_core::view::ViewGate::<TrafficOverview>::open(&gov, clock).unwrap();
        match gate.admit(a) {
            mamori_core::view::Admission::Admitted(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aggregates_per_protocol_prefix_and_top_talkers_without_hosts() {
        let prefixes: Vec<Prefix> =
            ["203.0.113.0/24", "198.51.100.0/22", "192.0.2.128/28"].iter().map(|p| p.parse().unwrap()).collect();
        let mut o = Overview::new(prefixes, 2);
        o.ingest(&rec([8, 8, 8, 8], [203, 0, 113, 5], 17, 10)); // udp in
        o.ingest(&rec([203, 0, 113, 6], [8, 8, 4, 4], 6, 20)); // tcp out
        o.ingest(&rec([9, 9, 9, 9], [198, 51, 101, 7], 6, 100)); // in: /22 → 198.51.100.0/22
        o.ingest(&rec([192, 0, 2, 130], [1, 1, 1, 1], 1, 5)); // icmp out: /28 widened to /24
        o.ingest(&rec([1, 1, 1, 1], [2, 2, 2, 2], 47, 3)); // transit: protocol only
        let agg = o.close_window(2.0);
        let v = project(&agg);
        let proto: HashMap<_, _> = v.protocols.iter().copied().collect();
        assert_eq!(proto["udp"], Volume { packets: 10, bytes: 1000 });
        assert_eq!(proto["tcp"], Volume { packets: 120, bytes: 12000 });
        assert_eq!(proto["icmp"].packets, 5);
        assert_eq!(proto["gre"].packets, 3);
        let names: Vec<String> = v.prefixes.iter().map(|p| p.prefix.to_string()).collect();
        assert_eq!(names, ["192.0.2.0/24", "198.51.100.0/22", "203.0.113.0/24"]);
        let c = v.prefixes.iter().find(|p| p.prefix.to_string() == "203.0.113.0/24").unwrap();
        assert_eq!(c.bytes, [1000, 2000]);
        assert_eq!(c.bps, [4000.0, 8000.0]);
        assert_eq!(c.pps, [5.0, 10.0]);
        // Top talkers: bounded to 2, busiest first, prefixes only.
        let top: Vec<String> = v.top_talkers.iter().map(|t| t.0.to_string()).collect();
        assert_eq!(top, ["198.51.100.0/22", "203.0.113.0/24"]);
        assert_eq!(v.top_talkers[0].1, 40_000.0);
        // No label is a host or finer than the floor.
        assert!(v.prefixes.iter().all(|p| p.prefix.len() <= AGGREGATE_MAX_LEN_V4));
        // The next window starts empty.
        assert!(project(&o.close_window(1.0)).prefixes.is_empty());
        assert_eq!(protocol_label(200), "other");
    }

    #[test]
    fn host_customer_prefixes_are_widened() {
        let mut o = Overview::new(vec!["203.0.113.9/32".parse().unwrap(), "2001:db8::1/128".parse().unwrap()], 5);
        o.ingest(&rec([8, 8, 8, 8], [203, 0, 113, 9], 17, 1));
        let mut f = rec([8, 8, 8, 8], [0; 4], 17, 1);
        f.dst = "2001:db8::1".parse().unwrap();
        o.ingest(&f);
        let v = project(&o.close_window(1.0));
        let names: Vec<String> = v.prefixes.iter().map(|p| p.prefix.to_string()).collect();
        assert_eq!(names, ["203.0.113.0/24", "2001:db8::/48"]);
    }
}
