//! Builders of NetFlow v5, v9 and IPFIX datagrams, for tests, fuzz seeds and replay tools.
//!
//! Only what mamori reads: IPv4 addresses, ports, protocol, TCP flags, input interface,
//! packet and byte counts, and an options record carrying the sampling interval.

use std::net::Ipv4Addr;

/// One flow to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireFlow {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// IP protocol.
    pub protocol: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// TCP flags.
    pub tcp_flags: u8,
    /// Input ifIndex.
    pub input_if: u16,
    /// Packets (as sampled).
    pub packets: u32,
    /// Bytes (as sampled).
    pub bytes: u32,
}

/// The v9/IPFIX data template mamori's builders use (id 256): field id and length.
pub const TEMPLATE: [(u16, u16); 9] = [(8, 4), (12, 4), (4, 1), (7, 2), (11, 2), (6, 1), (10, 2), (2, 4), (1, 4)];
/// Template id of [`TEMPLATE`].
pub const TEMPLATE_ID: u16 = 256;
/// Options template id carrying the sampling interval.
pub const OPTIONS_TEMPLATE_ID: u16 = 257;

fn put_flow(b: &mut Vec<u8>, f: &WireFlow) {
    b.extend_from_slice(&f.src.octets());
    b.extend_from_slice(&f.dst.octets());
    b.push(f.protocol);
    b.extend_from_slice(&f.src_port.to_be_bytes());
    b.extend_from_slice(&f.dst_port.to_be_bytes());
    b.push(f.tcp_flags);
    b.extend_from_slice(&f.input_if.to_be_bytes());
    b.extend_from_slice(&f.packets.to_be_bytes());
    b.extend_from_slice(&f.bytes.to_be_bytes());
}

fn pad4(b: &mut Vec<u8>, start: usize) {
    while (b.len() - start) % 4 != 0 {
        b.push(0);
    }
}

fn set_len(b: &mut [u8], start: usize) {
    let len = (b.len() - start) as u16;
    b[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A NetFlow v5 datagram (at most 30 flows are meaningful).
pub fn v5(unix_secs: u32, sampling: u16, flows: &[WireFlow]) -> Vec<u8> {
    let mut b = Vec::with_capacity(24 + 48 * flows.len());
    b.extend_from_slice(&5u16.to_be_bytes());
    b.extend_from_slice(&(flows.len() as u16).to_be_bytes());
    b.extend_from_slice(&1000u32.to_be_bytes()); // sys uptime
    b.extend_from_slice(&unix_secs.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes()); // sequence
    b.push(0);
    b.push(0);
    b.extend_from_slice(&(0x4000 | (sampling & 0x3fff)).to_be_bytes());
    for f in flows {
        b.extend_from_slice(&f.src.octets());
        b.extend_from_slice(&f.dst.octets());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&f.input_if.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&f.packets.to_be_bytes());
        b.extend_from_slice(&f.bytes.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&f.src_port.to_be_bytes());
        b.extend_from_slice(&f.dst_port.to_be_bytes());
        b.push(0);
        b.push(f.tcp_flags);
        b.push(f.protocol);
        b.push(0);
        b.extend_from_slice(&[0; 8]);
    }
    b
}

/// What a v9 or IPFIX datagram carries.
#[derive(Debug, Clone, Default)]
pub struct Sets<'a> {
    /// Include the data template.
    pub template: bool,
    /// Include the options template and an options record with this sampling interval.
    pub sampling: Option<u32>,
    /// Data records.
    pub flows: &'a [WireFlow],
}

/// A NetFlow v9 datagram from `source_id`.
pub fn v9(unix_secs: u32, source_id: u32, sets: &Sets<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&9u16.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes()); // count, fixed below
    b.extend_from_slice(&1000u32.to_be_bytes());
    b.extend_from_slice(&unix_secs.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&source_id.to_be_bytes());
    let mut count = 0u16;
    if sets.template {
        let s = b.len();
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&(TEMPLATE.len() as u16).to_be_bytes());
        for (id, len) in TEMPLATE {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
        }
        set_len(&mut b, s);
        count += 1;
    }
    if let Some(rate) = sets.sampling {
        let s = b.len();
        b.extend_from_slice(&[0, 1, 0, 0]);
        b.extend_from_slice(&OPTIONS_TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&4u16.to_be_bytes()); // scope length: one field
        b.extend_from_slice(&4u16.to_be_bytes()); // options length: one field
        b.extend_from_slice(&1u16.to_be_bytes()); // scope: system
        b.extend_from_slice(&4u16.to_be_bytes());
        b.extend_from_slice(&34u16.to_be_bytes()); // samplingInterval
        b.extend_from_slice(&4u16.to_be_bytes());
        pad4(&mut b, s);
        set_len(&mut b, s);
        let s = b.len();
        b.extend_from_slice(&OPTIONS_TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&rate.to_be_bytes());
        pad4(&mut b, s);
        set_len(&mut b, s);
        count += 2;
    }
    if !sets.flows.is_empty() {
        let s = b.len();
        b.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        for f in sets.flows {
            put_flow(&mut b, f);
        }
        pad4(&mut b, s);
        set_len(&mut b, s);
        count += sets.flows.len() as u16;
    }
    b[2..4].copy_from_slice(&count.to_be_bytes());
    b
}

/// An IPFIX message from observation domain `domain`.
pub fn ipfix(export_secs: u32, domain: u32, sets: &Sets<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&10u16.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes()); // length, fixed below
    b.extend_from_slice(&export_secs.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&domain.to_be_bytes());
    if sets.template {
        let s = b.len();
        b.extend_from_slice(&[0, 2, 0, 0]);
        b.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&(TEMPLATE.len() as u16).to_be_bytes());
        for (id, len) in TEMPLATE {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
        }
        set_len(&mut b, s);
    }
    if let Some(rate) = sets.sampling {
        let s = b.len();
        b.extend_from_slice(&[0, 3, 0, 0]);
        b.extend_from_slice(&OPTIONS_TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&2u16.to_be_bytes()); // field count
        b.extend_from_slice(&1u16.to_be_bytes()); // scope field count
        b.extend_from_slice(&149u16.to_be_bytes()); // observationDomainId (scope)
        b.extend_from_slice(&4u16.to_be_bytes());
        b.extend_from_slice(&305u16.to_be_bytes()); // samplingPacketInterval
        b.extend_from_slice(&4u16.to_be_bytes());
        set_len(&mut b, s);
        let s = b.len();
        b.extend_from_slice(&OPTIONS_TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&domain.to_be_bytes());
        b.extend_from_slice(&rate.to_be_bytes());
        set_len(&mut b, s);
    }
    if !sets.flows.is_empty() {
        let s = b.len();
        b.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        for f in sets.flows {
            put_flow(&mut b, f);
        }
        set_len(&mut b, s);
    }
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}
