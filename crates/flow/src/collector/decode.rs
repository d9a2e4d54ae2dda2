//! Decoding datagrams into [`FlowRecord`]s: a pure function of bytes and per-exporter state
//! (templates and sampling rates), no sockets.
//!
//! Templates are kept per exporter address, version and observation domain (v9 source id, IPFIX
//! observation domain id), so two routers — or two line cards of one — never share a template
//! cache. Sampling rates come from the v5 header or from v9/IPFIX options data (fields 34
//! `samplingInterval`, 50 `samplerRandomInterval`, 305 `samplingPacketInterval`) and scale packet
//! and byte counts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use netflow_parser::NetflowPacket;
use netflow_parser::NetflowParser;
use netflow_parser::scoped_parser::{ScopingInfo, extract_scoping_info};
use netflow_parser::variable_versions::data_number::{DataNumber, FieldValue};
use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
use netflow_parser::variable_versions::ipfix_lookup::{IANAIPFixField as I, IPFixField};
use netflow_parser::variable_versions::v9::FlowSetBody as V9Body;

use super::ExporterStats;
use super::fast;

/// One flow as the detectors need it, already scaled by the exporter's sampling rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// The exporter that sent it.
    pub exporter: SocketAddr,
    /// Export time from the header, seconds since the Unix epoch (0 when the version has none).
    pub export_secs: u32,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Transport source port (0 when none).
    pub src_port: u16,
    /// Transport destination port (0 when none).
    pub dst_port: u16,
    /// OR of the TCP flags seen.
    pub tcp_flags: u8,
    /// The input interface index (SNMP ifIndex), 0 when unknown.
    pub input_if: u32,
    /// Packets, scaled by sampling.
    pub packets: u64,
    /// Bytes, scaled by sampling.
    pub bytes: u64,
}

/// Which scope a template cache belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ScopeKey {
    exporter: SocketAddr,
    version: u16,
    domain: u32,
}

struct Scope {
    parser: NetflowParser,
    /// The last sampling rate the exporter announced (1 = unsampled).
    sampling: u32,
    /// The data templates of `parser` compiled for the fast path.
    compiled: fast::Templates,
}

/// Decodes datagrams from many exporters, each with its own template caches.
pub struct Decoder {
    scopes: HashMap<ScopeKey, Scope>,
    max_scopes: usize,
    default_sampling: u32,
    fast: bool,
    fast_decoded: u64,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("scopes", &self.scopes.len()).finish_non_exhaustive()
    }
}

/// What decoding one datagram gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Flows found.
    pub flows: Vec<FlowRecord>,
    /// The datagram (or its tail) did not parse.
    pub malformed: bool,
    /// Data sets that arrived before their template (template loss or exporter restart).
    pub no_template: u32,
    /// The datagram was refused because too many exporter scopes are known.
    pub refused: bool,
}

/// What decoding one datagram gave besides its flows.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    malformed: bool,
    no_template: u32,
    refused: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(4096, 1)
    }
}

impl Decoder {
    /// A decoder keeping at most `max_scopes` (exporter, version, domain) template caches, and
    /// assuming `default_sampling` until an exporter announces its rate.
    pub fn new(max_scopes: usize, default_sampling: u32) -> Self {
        Decoder {
            scopes: HashMap::new(),
            max_scopes: max_scopes.max(1),
            default_sampling: default_sampling.max(1),
            fast: true,
            fast_decoded: 0,
        }
    }

    /// With (the default) or without the v9/IPFIX data-record fast path (data sets decoded
    /// through templates compiled to field offsets); without it every datagram is decoded by `netflow_parser`. Both give
    /// the same records and counters; turning it off is for tests and fuzzing that compare them.
    pub fn with_fast_path(mut self, on: bool) -> Self {
        self.fast = on;
        self
    }

    /// Datagrams the fast path decoded so far (the others went through `netflow_parser`).
    pub fn fast_decoded(&self) -> u64 {
        self.fast_decoded
    }

    /// The sampling rate in force for an exporter's scope, if it is known.
    pub fn sampling(&self, exporter: SocketAddr, version: u16, domain: u32) -> Option<u32> {
        self.scopes.get(&ScopeKey { exporter, version, domain }).map(|s| s.sampling)
    }

    /// Decodes one datagram from `exporter`.
    pub fn decode(&mut self, exporter: SocketAddr, data: &[u8]) -> Decoded {
        let mut out = Decoded::default();
        let o = self.decode_append(exporter, data, &mut out.flows);
        (out.malformed, out.no_template, out.refused) = (o.malformed, o.no_template, o.refused);
        out
    }

    /// Decodes one datagram from `exporter`, appending its flows to `flows` (so a collector
    /// decodes a burst of datagrams into one batch, without a vector per datagram).
    fn decode_append(&mut self, exporter: SocketAddr, data: &[u8], flows: &mut Vec<FlowRecord>) -> Outcome {
        let mut out = Outcome::default();
        let (version, domain) = match extract_scoping_info(data) {
            ScopingInfo::V9 { source_id } => (9, source_id),
            ScopingInfo::IPFix { observation_domain_id } => (10, observation_domain_id),
            ScopingInfo::Legacy => (data.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]])).unwrap_or(5), 0),
            ScopingInfo::Unknown => {
                out.malformed = true;
                return out;
            }
        };
        if version != 5 && version != 9 && version != 10 {
            out.malformed = true;
            return out;
        }
        let key = ScopeKey { exporter, version, domain };
        if !self.scopes.contains_key(&key) && self.scopes.len() >= self.max_scopes {
            out.refused = true;
            return out;
        }
        let default_sampling = self.default_sampling;
        let scope = self.scopes.entry(key).or_insert_with(|| Scope {
            parser: NetflowParser::default(),
            sampling: default_sampling,
            compiled: fast::Templates::default(),
        });
        if self.fast
            && (version == 9 || version == 10)
            && fast::decode(version, &mut scope.parser, &mut scope.compiled, exporter, data, scope.sampling, flows)
        {
            self.fast_decoded += 1;
            return out;
        }
        let result = scope.parser.parse_bytes(data);
        out.malformed = result.error.is_some();
        for packet in &result.packets {
            match packet {
                NetflowPacket::V5(v5) => {
                    // The top two bits are the sampling mode, the rest the interval.
                    let interval = u32::from(v5.header.sampling_interval & 0x3fff);
                    if interval > 1 {
                        scope.sampling = interval;
                    }
                    for f in &v5.flowsets {
                        flows.push(FlowRecord {
                            exporter,
                            export_secs: v5.header.unix_secs,
                            src: IpAddr::V4(f.src_addr),
                            dst: IpAddr::V4(f.dst_addr),
                            protocol: f.protocol_number,
                            src_port: f.src_port,
                            dst_port: f.dst_port,
                            tcp_flags: f.tcp_flags,
                            input_if: u32::from(f.input),
                            packets: u64::from(f.d_pkts).saturating_mul(u64::from(scope.sampling)),
                            bytes: u64::from(f.d_octets).saturating_mul(u64::from(scope.sampling)),
                        });
                    }
                }
                NetflowPacket::V9(v9) => {
                    // Options first: a rate in the same datagram applies to its data.
                    for set in &v9.flowsets {
                        if let V9Body::OptionsData(o) = &set.body {
                            for rec in &o.fields {
                                for fields in &rec.options_fields {
                                    if let Some(rate) = sampling_of(fields.iter().map(|(f, v)| (*f as u16, v))) {
                                        scope.sampling = rate;
                                    }
                                }
                            }
                        }
                    }
                    for set in &v9.flowsets {
                        match &set.body {
                            V9Body::Data(d) => {
                                for rec in &d.fields {
                                    if let Some(f) = flow_of(
                                        exporter,
                                        v9.header.unix_secs,
                                        scope.sampling,
                                        rec.iter().map(|(f, v)| (*f as u16, v)),
                                    ) {
                                        flows.push(f);
                                    }
                                }
                            }
                            V9Body::NoTemplate(_) => out.no_template += 1,
                            _ => {}
                        }
                    }
                }
                NetflowPacket::IPFix(ipfix) => {
                    for set in &ipfix.flowsets {
                        if let IpfixBody::OptionsData(o) = &set.body {
                            for rec in &o.fields {
                                if let Some(rate) = sampling_of(rec.iter().filter_map(|(f, v)| Some((iana_id(f)?, v))))
                                {
                                    scope.sampling = rate;
                                }
                            }
                        }
                    }
                    for set in &ipfix.flowsets {
                        match &set.body {
                            IpfixBody::Data(d) => {
                                for rec in &d.fields {
                                    if let Some(f) = flow_of(
                                        exporter,
                                        ipfix.header.export_time,
                                        scope.sampling,
                                        rec.iter().filter_map(|(f, v)| Some((iana_id(f)?, v))),
                                    ) {
                                        flows.push(f);
                                    }
                                }
                            }
                            IpfixBody::NoTemplate(_) => out.no_template += 1,
                            _ => {}
                        }
                    }
                }
                NetflowPacket::V7(_) => {}
            }
        }
        out
    }

    /// Decodes and counts into `stats`.
    pub fn decode_counted(&mut self, exporter: SocketAddr, data: &[u8], stats: &mut ExporterStats) -> Vec<FlowRecord> {
        let mut flows = Vec::new();
        self.decode_into(exporter, data, &mut flows, stats);
        flows
    }

    /// Decodes, appending the flows to `flows`, and counts into `stats`; returns how many flows
    /// were appended.
    pub fn decode_into(
        &mut self,
        exporter: SocketAddr,
        data: &[u8],
        flows: &mut Vec<FlowRecord>,
        stats: &mut ExporterStats,
    ) -> usize {
        let before = flows.len();
        let o = self.decode_append(exporter, data, flows);
        let n = flows.len() - before;
        stats.datagrams += 1;
        stats.flows += n as u64;
        stats.malformed += u64::from(o.malformed);
        stats.no_template += u64::from(o.no_template);
        stats.refused += u64::from(o.refused);
        n
    }
}

pub(super) fn iana_id(f: &IPFixField) -> Option<u16> {
    match f {
        IPFixField::IANA(x) => Some(match x {
            I::OctetDeltaCount => 1,
            I::PacketDeltaCount => 2,
            I::ProtocolIdentifier => 4,
            I::TcpControlBits => 6,
            I::SourceTransportPort => 7,
            I::SourceIpv4address => 8,
            I::IngressInterface => 10,
            I::DestinationTransportPort => 11,
            I::DestinationIpv4address => 12,
            I::SourceIpv6address => 27,
            I::DestinationIpv6address => 28,
            I::SamplingInterval => 34,
            I::SamplerRandomInterval => 50,
            I::SamplingPacketInterval => 305,
            _ => return None,
        }),
        _ => None,
    }
}

/// A field value as [`flow_of`] reads it: a number or an address.
pub(super) trait FieldRead {
    /// The value as an unsigned number, when it is one that fits.
    fn number(&self) -> Option<u64>;
    /// The value as an address, when it is one.
    fn ip(&self) -> Option<IpAddr>;
}

impl FieldRead for &FieldValue {
    fn number(&self) -> Option<u64> {
        number(self)
    }
    fn ip(&self) -> Option<IpAddr> {
        ip(self)
    }
}

fn number(v: &FieldValue) -> Option<u64> {
    match v {
        FieldValue::DataNumber(n) => match *n {
            DataNumber::U8(x) => Some(u64::from(x)),
            DataNumber::U16(x) => Some(u64::from(x)),
            DataNumber::U24(x) | DataNumber::U32(x) => Some(u64::from(x)),
            DataNumber::U64(x) => Some(x),
            DataNumber::U128(x) => u64::try_from(x).ok(),
            DataNumber::I8(x) => u64::try_from(x).ok(),
            DataNumber::I16(x) => u64::try_from(x).ok(),
            DataNumber::I24(x) | DataNumber::I32(x) => u64::try_from(x).ok(),
            DataNumber::I64(x) => u64::try_from(x).ok(),
            DataNumber::I128(x) => u64::try_from(x).ok(),
        },
        FieldValue::ProtocolType(p) => Some(u64::from(u8::from(*p))),
        FieldValue::Vec(b) | FieldValue::Unknown(b) if b.len() <= 8 => {
            Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
        }
        _ => None,
    }
}

fn sampling_of<'a>(fields: impl Iterator<Item = (u16, &'a FieldValue)>) -> Option<u32> {
    let mut rate = None;
    for (id, v) in fields {
        if matches!(id, 34 | 50 | 305) {
            if let Some(n) = number(v) {
                if n >= 1 {
                    rate = Some(u32::try_from(n).unwrap_or(u32::MAX));
                }
            }
        }
    }
    rate
}

/// The values of the fields mamori reads in one record, each as the last field of its id gave
/// it (`None`: absent, or not a number that fits); the addresses as the last field of their ids
/// that was an address. Both the crate path ([`flow_of`]) and the fast path fill one and turn it
/// into a record through [`Fields::record`], so they interpret values alike.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Fields {
    /// Field 1, octets.
    pub bytes: Option<u64>,
    /// Field 2, packets.
    pub packets: Option<u64>,
    /// Field 4, the IP protocol.
    pub protocol: Option<u64>,
    /// Field 6, TCP flags.
    pub flags: Option<u64>,
    /// Field 7, the source port.
    pub src_port: Option<u64>,
    /// Field 11, the destination port.
    pub dst_port: Option<u64>,
    /// Field 10, the input ifIndex.
    pub input_if: Option<u64>,
    /// Field 8 or 27.
    pub src: Option<IpAddr>,
    /// Field 12 or 28.
    pub dst: Option<IpAddr>,
}

impl Fields {
    /// The record, scaled by `sampling`; `None` without both addresses.
    #[inline(always)]
    pub(super) fn record(&self, exporter: SocketAddr, export_secs: u32, sampling: u32) -> Option<FlowRecord> {
        Some(FlowRecord {
            exporter,
            export_secs,
            src: self.src?,
            dst: self.dst?,
            protocol: self.protocol.and_then(|n| u8::try_from(n).ok()).unwrap_or(0),
            src_port: self.src_port.and_then(|n| u16::try_from(n).ok()).unwrap_or(0),
            dst_port: self.dst_port.and_then(|n| u16::try_from(n).ok()).unwrap_or(0),
            tcp_flags: self.flags.map(|n| (n & 0xff) as u8).unwrap_or(0),
            input_if: self.input_if.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            packets: self.packets.unwrap_or(0).saturating_mul(u64::from(sampling)),
            bytes: self.bytes.unwrap_or(0).saturating_mul(u64::from(sampling)),
        })
    }
}

/// Field ids are the same in v9 and IPFIX for everything used here.
pub(super) fn flow_of<V: FieldRead>(
    exporter: SocketAddr,
    export_secs: u32,
    sampling: u32,
    fields: impl Iterator<Item = (u16, V)>,
) -> Option<FlowRecord> {
    let mut x = Fields::default();
    for (id, v) in fields {
        match id {
            1 => x.bytes = v.number(),
            2 => x.packets = v.number(),
            4 => x.protocol = v.number(),
            6 => x.flags = v.number(),
            7 => x.src_port = v.number(),
            11 => x.dst_port = v.number(),
            10 => x.input_if = v.number(),
            8 | 27 => x.src = v.ip().or(x.src),
            12 | 28 => x.dst = v.ip().or(x.dst),
            _ => {}
        }
    }
    x.record(exporter, export_secs, sampling)
}

fn ip(v: &FieldValue) -> Option<IpAddr> {
    match v {
        FieldValue::Ip4Addr(a) => Some(IpAddr::V4(*a)),
        FieldValue::Ip6Addr(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}
