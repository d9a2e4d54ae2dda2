//! sFlow v5 (<https://sflow.org/sflow_version_5.txt>) decoded into the same [`FlowRecord`]s as
//! NetFlow and IPFIX, scaled by each sample's sampling rate.
//!
//! Hand-written on purpose. The two Rust crates found (2026-12) were weighed and not taken:
//! `flowparser-sflow` 0.3 (errors with offsets, nom-based) is a few months old and went from 0.1
//! to 0.3 in that time, adds uuid, and decodes all its 55 record and 48 counter types into owned
//! structures (a `Vec` per raw header) though mamori reads one record type; `sflow-parser` 0.7 is
//! dependency-free but copies every sample and record into fresh `Vec`s, allocates each opaque's
//! declared length (up to 100 MB) *before* checking it against the datagram, parses every
//! counter record fully, and its errors are strings without a position. Neither parses the
//! sampled packet itself, which is most of the work here. A collector must reject a hostile
//! datagram in the time it takes to read its first bad length, so that a burst from one agent
//! doesn't slow the others (issue #7): mamori reads only what the detectors use, borrowing from
//! the datagram, with every length checked against what is left and every failure a
//! [`SflowError`] carrying its byte offset.
//!
//! Read: the datagram header (version 5, IPv4/IPv6 agent address, sub-agent, sequence, uptime,
//! sample count); flow samples (format 1) and expanded flow samples (format 3) with their
//! sampling rate and input interface; in them raw packet header records (format 1; header
//! protocols Ethernet = 1, IPv4 = 11, IPv6 = 12) parsed through 802.1Q/802.1ad tags, IPv4 or IPv6
//! (extension headers skipped) to TCP/UDP ports and TCP flags, or the ICMP type and code
//! (`type << 8 | code` in the destination port, as NetFlow exporters do), and sampled IPv4/IPv6
//! records (formats 3 and 4) when a sample has no header. Counter samples (formats 2 and 4) are
//! skipped but counted; other samples and records are skipped by their length.
//!
//! Each flow sample becomes one [`FlowRecord`] standing for `sampling_rate` packets of
//! `frame_length × sampling_rate` bytes; "flows per second" from sFlow are therefore samples per
//! second.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::FlowRecord;

/// At most this many samples are read from one datagram (a 64 KiB datagram can't hold more of
/// the smallest real sample).
pub const MAX_SAMPLES: u32 = 4096;
/// At most this many records are read from one sample.
pub const MAX_RECORDS: u32 = 256;

/// Why an sFlow datagram did not decode; `offset` is the byte position in the datagram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SflowError {
    /// Fewer bytes were left than the structure at `offset` needs.
    #[error("truncated at byte {offset}: {needed} bytes needed, {left} left")]
    Truncated {
        /// Where the structure starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        left: usize,
    },
    /// Not sFlow version 5.
    #[error("not sFlow v5 at byte {offset}: version {version}")]
    Version {
        /// Where the version is.
        offset: usize,
        /// The version found.
        version: u32,
    },
    /// An agent address type other than 1 (IPv4) or 2 (IPv6).
    #[error("unknown agent address type {kind} at byte {offset}")]
    AddressType {
        /// Where the type is.
        offset: usize,
        /// The type found.
        kind: u32,
    },
    /// A count larger than the limit or than the bytes left can hold.
    #[error("implausible {what} count {count} at byte {offset}")]
    Count {
        /// What is counted (`samples`, `records`).
        what: &'static str,
        /// Where the count is.
        offset: usize,
        /// The count found.
        count: u32,
    },
}

impl SflowError {
    /// The byte offset of the failure.
    pub fn offset(&self) -> usize {
        match self {
            SflowError::Truncated { offset, .. }
            | SflowError::Version { offset, .. }
            | SflowError::AddressType { offset, .. }
            | SflowError::Count { offset, .. } => *offset,
        }
    }
}

/// The sFlow datagram header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The agent (the switch or router that sampled).
    pub agent: IpAddr,
    /// The sub-agent id (line card, process).
    pub sub_agent: u32,
    /// The datagram sequence number of this (agent, sub-agent).
    pub sequence: u32,
    /// The agent's uptime in milliseconds.
    pub uptime_ms: u32,
    /// Samples the datagram announces.
    pub samples: u32,
}

/// What decoding one sFlow datagram gave. Flows of samples read before an error are kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SflowDecoded {
    /// The header, when it parsed.
    pub header: Option<Header>,
    /// One record per flow sample with a parsable IP packet, scaled by its sampling rate.
    pub flows: Vec<FlowRecord>,
    /// Counter samples (skipped).
    pub counter_samples: u32,
    /// Flow samples without an IP packet mamori can read (ARP, other header protocols), and
    /// samples of unknown formats.
    pub skipped: u32,
    /// Why the datagram (or its tail) did not parse.
    pub error: Option<SflowError>,
}

/// A bounds-checked big-endian reader over part of a datagram, reporting absolute offsets.
#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data[0]` in the datagram.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0, base: 0 }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn left(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SflowError> {
        let b = self.pos.checked_add(n).and_then(|end| self.data.get(self.pos..end)).ok_or(SflowError::Truncated {
            offset: self.offset(),
            needed: n,
            left: self.left(),
        })?;
        self.pos += n;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, SflowError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An XDR opaque of `len` bytes padded to 4, as its own reader; `at` is where its length
    /// field was, for the error.
    fn sub(&mut self, len: usize, at: usize) -> Result<Reader<'a>, SflowError> {
        let start = self.offset();
        let padded = len.checked_add(3).map(|l| l & !3).unwrap_or(usize::MAX);
        if padded > self.left() {
            return Err(SflowError::Truncated { offset: at, needed: padded, left: self.left() });
        }
        let b = self.take(padded)?;
        Ok(Reader { data: b.get(..len).unwrap_or_default(), pos: 0, base: start })
    }

    /// A length-prefixed XDR opaque.
    fn opaque(&mut self) -> Result<Reader<'a>, SflowError> {
        let at = self.offset();
        let len = self.u32()? as usize;
        self.sub(len, at)
    }

    fn address(&mut self) -> Result<IpAddr, SflowError> {
        let at = self.offset();
        match self.u32()? {
            1 => {
                let b = self.take(4)?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            2 => {
                let b = self.take(16)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Ok(IpAddr::V6(Ipv6Addr::from(a)))
            }
            kind => Err(SflowError::AddressType { offset: at, kind }),
        }
    }

    fn count(&mut self, what: &'static str, max: u32, min_size: usize) -> Result<u32, SflowError> {
        let at = self.offset();
        let count = self.u32()?;
        if count > max || (count as usize).saturating_mul(min_size) > self.left() {
            return Err(SflowError::Count { what, offset: at, count });
        }
        Ok(count)
    }
}

/// Whether `data` starts like an sFlow v5 datagram (version 5 in a 32-bit word; NetFlow and
/// IPFIX have a 16-bit version first).
pub fn looks_like_sflow(data: &[u8]) -> bool {
    data.get(..4) == Some(&[0, 0, 0, 5])
}

/// Decodes one sFlow v5 datagram received from `from`. The records' exporter is the agent
/// address with `from`'s port, so spoofed-source checks on customer interfaces name the agent.
pub fn decode(from: SocketAddr, data: &[u8]) -> SflowDecoded {
    let mut out = SflowDecoded::default();
    if let Err(e) = decode_into(from, data, &mut out) {
        out.error = Some(e);
    }
    out
}

fn decode_into(from: SocketAddr, data: &[u8], out: &mut SflowDecoded) -> Result<(), SflowError> {
    let mut r = Reader::new(data);
    let at = r.offset();
    let version = r.u32()?;
    if version != 5 {
        return Err(SflowError::Version { offset: at, version });
    }
    let agent = r.address()?;
    let sub_agent = r.u32()?;
    let sequence = r.u32()?;
    let uptime_ms = r.u32()?;
    // A sample is at least its format and length.
    let samples = r.count("samples", MAX_SAMPLES, 8)?;
    out.header = Some(Header { agent, sub_agent, sequence, uptime_ms, samples });
    let exporter = SocketAddr::new(agent, from.port());
    for _ in 0..samples {
        let format = r.u32()?;
        let mut s = r.opaque()?;
        match (format >> 12, format & 0xfff) {
            (0, 1) => flow_sample(&mut s, false, exporter, out)?,
            (0, 3) => flow_sample(&mut s, true, exporter, out)?,
            (0, 2 | 4) => out.counter_samples += 1,
            _ => out.skipped += 1,
        }
    }
    Ok(())
}

/// What a flow sample's records told about its packet.
#[derive(Debug, Default)]
struct Packet {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    protocol: u8,
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    length: u64,
}

fn flow_sample(
    s: &mut Reader<'_>,
    expanded: bool,
    exporter: SocketAddr,
    out: &mut SflowDecoded,
) -> Result<(), SflowError> {
    let _sequence = s.u32()?;
    if expanded {
        // source_id_type, source_id_index
        s.take(8)?;
    } else {
        s.take(4)?;
    }
    let rate = s.u32()?.max(1);
    let _pool = s.u32()?;
    let _drops = s.u32()?;
    let input_if = if expanded {
        let format = s.u32()?;
        let value = s.u32()?;
        let _output = s.take(8)?;
        if format == 0 { value } else { 0 }
    } else {
        let input = s.u32()?;
        let _output = s.u32()?;
        // The top two bits are the format; 0 is an ifIndex.
        if input >> 30 == 0 { input & 0x3fff_ffff } else { 0 }
    };
    let records = s.count("records", MAX_RECORDS, 8)?;
    let mut from_header: Option<Packet> = None;
    let mut from_sampled: Option<Packet> = None;
    for _ in 0..records {
        let format = s.u32()?;
        let mut rec = s.opaque()?;
        match (format >> 12, format & 0xfff) {
            (0, 1) if from_header.is_none() => from_header = raw_header(&mut rec)?,
            (0, 3) if from_sampled.is_none() => from_sampled = Some(sampled_ip(&mut rec, false)?),
            (0, 4) if from_sampled.is_none() => from_sampled = Some(sampled_ip(&mut rec, true)?),
            _ => {}
        }
    }
    let Some(p) = from_header.or(from_sampled) else {
        out.skipped += 1;
        return Ok(());
    };
    let (Some(src), Some(dst)) = (p.src, p.dst) else {
        out.skipped += 1;
        return Ok(());
    };
    let rate = u64::from(rate);
    out.flows.push(FlowRecord {
        exporter,
        export_secs: 0,
        src,
        dst,
        protocol: p.protocol,
        src_port: p.src_port,
        dst_port: p.dst_port,
        tcp_flags: p.tcp_flags,
        input_if,
        packets: rate,
        bytes: p.length.saturating_mul(rate),
    });
    Ok(())
}

/// A sampled IPv4 (format 3) or IPv6 (format 4) record.
fn sampled_ip(r: &mut Reader<'_>, v6: bool) -> Result<Packet, SflowError> {
    let length = r.u32()?;
    let protocol = r.u32()?;
    let (src, dst) = if v6 {
        let (a, b) = (r.take(16)?, r.take(16)?);
        let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
        x.copy_from_slice(a);
        y.copy_from_slice(b);
        (IpAddr::V6(Ipv6Addr::from(x)), IpAddr::V6(Ipv6Addr::from(y)))
    } else {
        let (a, b) = (r.take(4)?, r.take(4)?);
        (IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])), IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
    };
    let src_port = r.u32()?;
    let dst_port = r.u32()?;
    let tcp_flags = r.u32()?;
    Ok(Packet {
        src: Some(src),
        dst: Some(dst),
        protocol: (protocol & 0xff) as u8,
        src_port: (src_port & 0xffff) as u16,
        dst_port: (dst_port & 0xffff) as u16,
        tcp_flags: (tcp_flags & 0xff) as u8,
        length: u64::from(length),
    })
}

/// A raw packet header record: `None` when it holds no IP packet mamori reads. A header cut short
/// by the agent's snap length is normal and not an error: what it holds is used.
fn raw_header(r: &mut Reader<'_>) -> Result<Option<Packet>, SflowError> {
    let protocol = r.u32()?;
    let frame_length = r.u32()?;
    let _stripped = r.u32()?;
    let h = r.opaque()?;
    let bytes = h.data;
    let ip = match protocol {
        1 => ethernet_payload(bytes),
        11 | 12 => Some(bytes),
        _ => None,
    };
    let Some(mut p) = ip.and_then(ip_packet) else { return Ok(None) };
    p.length = u64::from(frame_length);
    Ok(Some(p))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The IP packet inside an Ethernet frame, through up to two VLAN tags.
fn ethernet_payload(frame: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    let mut ethertype = be16(frame, at)?;
    for _ in 0..2 {
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            break;
        }
        at += 4;
        ethertype = be16(frame, at)?;
    }
    match ethertype {
        0x0800 | 0x86dd => frame.get(at + 2..),
        _ => None,
    }
}

/// Addresses, protocol and (when the packet is not a later fragment) ports or ICMP type/code.
fn ip_packet(b: &[u8]) -> Option<Packet> {
    let mut p = Packet::default();
    let (mut proto, mut l4, mut later_fragment) = match b.first()? >> 4 {
        4 => {
            let ihl = usize::from(b.first()? & 0x0f) * 4;
            let src: [u8; 4] = b.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = b.get(16..20)?.try_into().ok()?;
            p.src = Some(IpAddr::V4(Ipv4Addr::from(src)));
            p.dst = Some(IpAddr::V4(Ipv4Addr::from(dst)));
            let frag = be16(b, 6)? & 0x1fff;
            (*b.get(9)?, b.get(ihl.max(20)..).unwrap_or_default(), frag != 0)
        }
        6 => {
            let src: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = b.get(24..40)?.try_into().ok()?;
            p.src = Some(IpAddr::V6(Ipv6Addr::from(src)));
            p.dst = Some(IpAddr::V6(Ipv6Addr::from(dst)));
            (*b.get(6)?, b.get(40..).unwrap_or_default(), false)
        }
        _ => return None,
    };
    // IPv6 extension headers (hop-by-hop, routing, fragment, destination options), a few at most.
    if b.first()? >> 4 == 6 {
        for _ in 0..4 {
            match proto {
                0 | 43 | 60 => {
                    let (Some(next), Some(len)) = (l4.first(), l4.get(1)) else { break };
                    proto = *next;
                    l4 = l4.get((usize::from(*len) + 1) * 8..).unwrap_or_default();
                }
                44 => {
                    let Some(next) = l4.first() else { break };
                    later_fragment = be16(l4, 2).is_some_and(|o| o >> 3 != 0);
                    proto = *next;
                    l4 = l4.get(8..).unwrap_or_default();
                }
                _ => break,
            }
        }
    }
    p.protocol = proto;
    if later_fragment {
        return Some(p);
    }
    match proto {
        6 | 17 | 132 => {
            p.src_port = be16(l4, 0).unwrap_or(0);
            p.dst_port = be16(l4, 2).unwrap_or(0);
            if proto == 6 {
                p.tcp_flags = l4.get(13).copied().unwrap_or(0);
            }
        }
        1 | 58 => {
            if let (Some(t), Some(c)) = (l4.first(), l4.get(1)) {
                p.dst_port = (u16::from(*t) << 8) | u16::from(*c);
            }
        }
        _ => {}
    }
    Some(p)
}

/// Builders of sFlow v5 datagrams, for tests, fuzz seeds and replay tools.
pub mod wire {
    use std::net::IpAddr;

    /// One sampled packet: a raw Ethernet frame header and the frame's full length.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Sample {
        /// Sampling rate (1 in N).
        pub rate: u32,
        /// Input ifIndex.
        pub input_if: u32,
        /// Length of the whole frame on the wire.
        pub frame_length: u32,
        /// The first bytes of the frame (Ethernet).
        pub header: Vec<u8>,
        /// Encode as an expanded flow sample (format 3).
        pub expanded: bool,
    }

    fn put(b: &mut Vec<u8>, x: u32) {
        b.extend_from_slice(&x.to_be_bytes());
    }

    fn put_opaque(b: &mut Vec<u8>, body: &[u8]) {
        put(b, body.len() as u32);
        b.extend_from_slice(body);
        while b.len() % 4 != 0 {
            b.push(0);
        }
    }

    /// A datagram from `agent` with `samples` and `counters` counter samples.
    pub fn datagram(agent: IpAddr, sequence: u32, samples: &[Sample], counters: u32) -> Vec<u8> {
        let mut b = Vec::new();
        put(&mut b, 5);
        match agent {
            IpAddr::V4(a) => {
                put(&mut b, 1);
                b.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                put(&mut b, 2);
                b.extend_from_slice(&a.octets());
            }
        }
        put(&mut b, 0); // sub-agent
        put(&mut b, sequence);
        put(&mut b, 60_000); // uptime
        put(&mut b, samples.len() as u32 + counters);
        for (i, s) in samples.iter().enumerate() {
            let mut rec = Vec::new();
            put(&mut rec, 1); // header protocol: Ethernet
            put(&mut rec, s.frame_length);
            put(&mut rec, 4); // stripped (FCS)
            put_opaque(&mut rec, &s.header);
            let mut body = Vec::new();
            put(&mut body, sequence.wrapping_mul(100).wrapping_add(i as u32));
            if s.expanded {
                put(&mut body, 0);
                put(&mut body, s.input_if);
            } else {
                put(&mut body, s.input_if);
            }
            put(&mut body, s.rate);
            put(&mut body, s.rate.wrapping_mul(i as u32 + 1)); // sample pool
            put(&mut body, 0); // drops
            if s.expanded {
                for x in [0, s.input_if, 0, 9] {
                    put(&mut body, x);
                }
            } else {
                put(&mut body, s.input_if);
                put(&mut body, 9);
            }
            put(&mut body, 1); // one record
            put(&mut body, 1); // raw packet header
            put_opaque(&mut body, &rec);
            put(&mut b, if s.expanded { 3 } else { 1 });
            put_opaque(&mut b, &body);
        }
        for i in 0..counters {
            // A counters sample with one generic interface record of zeros.
            let mut body = Vec::new();
            put(&mut body, i);
            put(&mut body, 1);
            put(&mut body, 1);
            put(&mut body, 1);
            put_opaque(&mut body, &[0; 88]);
            put(&mut b, 2);
            put_opaque(&mut b, &body);
        }
        b
    }

    /// An Ethernet/IPv4 frame header with a UDP or TCP header (`proto` 17 or 6) or ICMP (1).
    pub fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0x05, 0xdc, 0, 1, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        if proto == 6 {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            f.extend_from_slice(&[0x05, 0xc8, 0, 0]);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::wire::{Sample, datagram, ipv4_frame};
    use super::*;

    fn from() -> SocketAddr {
        "127.0.0.1:6343".parse().unwrap()
    }

    fn agent() -> IpAddr {
        "192.0.2.7".parse().unwrap()
    }

    /// The byte-by-byte datagram of the sFlow v5 spec's layout: one flow sample, one raw
    /// Ethernet/IPv4/UDP header (DNS response from port 53), rate 512.
    fn handmade() -> Vec<u8> {
        let mut b: Vec<u8> = vec![
            0, 0, 0, 5, // version
            0, 0, 0, 1, 192, 0, 2, 7, // agent IPv4
            0, 0, 0, 3, // sub-agent
            0, 0, 0, 42, // sequence
            0, 0, 0x27, 0x10, // uptime 10 s
            0, 0, 0, 1, // one sample
            0, 0, 0, 1, // flow_sample
            0, 0, 0, 100, // sample length
            0, 0, 0, 7, // sample sequence
            0, 0, 0, 5, // source id: ifIndex 5
            0, 0, 2, 0, // sampling rate 512
            0, 0, 0x10, 0, // sample pool
            0, 0, 0, 0, // drops
            0, 0, 0, 5, // input ifIndex 5
            0, 0, 0, 9, // output
            0, 0, 0, 1, // one record
            0, 0, 0, 1, // raw packet header
            0, 0, 0, 60, // record length
            0, 0, 0, 1, // Ethernet
            0, 0, 4, 0, // frame length 1024
            0, 0, 0, 4, // stripped
            0, 0, 0, 42, // header length 42 (+2 padding)
        ];
        b.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        b.extend_from_slice(&[0x45, 0, 0x03, 0xee, 0, 1, 0x40, 0, 64, 17, 0, 0, 100, 64, 1, 9, 203, 0, 113, 5]);
        b.extend_from_slice(&[0, 53, 0x9c, 0x40, 0x03, 0xda, 0, 0]);
        b.extend_from_slice(&[0, 0]);
        b
    }

    #[test]
    fn handmade_datagram_scaled_by_rate() {
        let d = decode(from(), &handmade());
        assert_eq!(d.error, None);
        let h = d.header.unwrap();
        assert_eq!((h.agent, h.sub_agent, h.sequence, h.uptime_ms, h.samples), (agent(), 3, 42, 10_000, 1));
        assert_eq!(d.flows.len(), 1);
        let f = &d.flows[0];
        assert_eq!(f.exporter, SocketAddr::new(agent(), 6343));
        assert_eq!(f.src.to_string(), "100.64.1.9");
        assert_eq!(f.dst.to_string(), "203.0.113.5");
        assert_eq!((f.protocol, f.src_port, f.dst_port, f.input_if), (17, 53, 40000, 5));
        assert_eq!((f.packets, f.bytes), (512, 1024 * 512));
    }

    #[test]
    fn every_truncation_is_a_typed_error_with_its_offset() {
        let full = handmade();
        for cut in 0..full.len() {
            let d = decode(from(), &full[..cut]);
            let e = d.error.clone().unwrap_or_else(|| panic!("cut at {cut} decoded: {d:?}"));
            assert!(e.offset() <= cut, "{e} past the cut {cut}");
            assert!(d.flows.is_empty());
        }
        // The sample's length (100 at byte 32) runs past a datagram cut at 40.
        let d = decode(from(), &full[..40]);
        assert_eq!(d.error, Some(SflowError::Truncated { offset: 32, needed: 100, left: 4 }));
        // Too few bytes left for the announced samples.
        let d = decode(from(), &full[..30]);
        assert_eq!(d.error, Some(SflowError::Count { what: "samples", offset: 24, count: 1 }));
    }

    #[test]
    fn bad_version_address_and_counts() {
        let mut b = handmade();
        b[3] = 4;
        assert_eq!(decode(from(), &b).error, Some(SflowError::Version { offset: 0, version: 4 }));
        let mut b = handmade();
        b[7] = 3;
        assert_eq!(decode(from(), &b).error, Some(SflowError::AddressType { offset: 4, kind: 3 }));
        let mut b = handmade();
        b[24..28].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(decode(from(), &b).error, Some(SflowError::Count { what: "samples", offset: 24, count: 1000 }));
        // A sample length past the end.
        let mut b = handmade();
        b[32..36].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(decode(from(), &b).error, Some(SflowError::Truncated { offset: 32, .. })));
    }

    #[test]
    fn expanded_samples_vlan_ipv6_tcp_icmp_and_counters() {
        let mut vlan = ipv4_frame([198, 51, 100, 1], [203, 0, 113, 9], 6, 1234, 80, 0x02);
        vlan.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        let mut v6 = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        v6.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&"2001:db8:1::5".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0, 123, 0x30, 0x39, 0, 8, 0, 0]);
        let arp = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1];
        let icmp = ipv4_frame([198, 51, 100, 2], [203, 0, 113, 9], 1, 0x0800, 0, 0);
        let s = |header: Vec<u8>, expanded| Sample { rate: 100, input_if: 7, frame_length: 100, header, expanded };
        let dg = datagram(
            "2001:db8::ff".parse().unwrap(),
            9,
            &[s(vlan, true), s(v6, false), s(arp, false), s(icmp, true)],
            2,
        );
        let d = decode(from(), &dg);
        assert_eq!(d.error, None);
        assert_eq!((d.flows.len(), d.counter_samples, d.skipped), (3, 2, 1));
        let tcp = &d.flows[0];
        assert_eq!((tcp.protocol, tcp.src_port, tcp.dst_port, tcp.tcp_flags, tcp.input_if), (6, 1234, 80, 2, 7));
        assert_eq!(tcp.exporter.ip().to_string(), "2001:db8::ff");
        let udp6 = &d.flows[1];
        assert_eq!(udp6.dst.to_string(), "2001:db8:1::5");
        assert_eq!(
            (udp6.protocol, udp6.src_port, udp6.dst_port, udp6.packets, udp6.bytes),
            (17, 123, 12345, 100, 10_000)
        );
        assert_eq!((d.flows[2].protocol, d.flows[2].dst_port), (1, 0x0800));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e37_79b9u32;
        let good = handmade();
        for i in 0..20_000u32 {
            let mut b = good.clone();
            for _ in 0..(i % 8 + 1) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (seed >> 8) as usize % b.len();
                b[at] = (seed >> 24) as u8;
            }
            b.truncate(b.len() - (i as usize % 13));
            let _ = decode(from(), &b);
        }
    }
}
