//! The NetFlow v9 / IPFIX data-record fast path: data sets decoded from borrowed bytes through
//! templates compiled to field offsets, straight into [`FlowRecord`]s, with no allocation per
//! record.
//!
//! Templates are still learned by `netflow_parser` (templates, options templates, sampling
//! options data, every datagram that carries one of them goes through it); this path only reads
//! the data sets of datagrams made of nothing else. A template is compiled from the crate's own
//! cache entry, using the crate's own field typing (`FieldDataType`, the v9 field number, the
//! IPFIX information element), into the offsets of the fields mamori reads: for each value of a
//! record, the one field the crate path's `flow_of` would end up taking it from (the last of its
//! id), so a record costs one read per value instead of a walk over its fields. Each value is
//! then interpreted by the same code as the crate path's (`Value::number`/`ip` mirror the
//! crate's `FieldValue`, and both paths build the record through `Fields::record`), so both paths
//! give the same records. Whatever the compiled form can't express exactly is left to the crate:
//! variable-length IPFIX fields, field lengths its types would read differently (an address
//! that isn't 4 or 16 bytes, a protocol that isn't 1), protocol numbers its enum doesn't parse
//! back to themselves, sets before their template, options data, any set or header that doesn't
//! add up. The whole datagram then takes the crate path, which counts it as it always did.
//!
//! The compiled form is checked against the crate's cache entry on every data set (the same
//! `LruCache::get` the crate does, so template recency, refresh and eviction stay the crate's),
//! and recompiled when the crate holds a new template under that id.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use netflow_parser::NetflowParser;
use netflow_parser::variable_versions::data_number::FieldDataType;
use netflow_parser::variable_versions::enterprise_registry::EnterpriseFieldRegistry;
use netflow_parser::variable_versions::ipfix::Template as IpfixTemplate;
use netflow_parser::variable_versions::v9::Template as V9Template;

use super::decode::{FieldRead, Fields, FlowRecord, iana_id};

/// Compiled templates kept per scope at most; past it the cache starts again (templates are
/// recompiled from the crate's cache on their next data set).
const MAX_COMPILED: usize = 1024;

/// How the crate would decode a field, for the types and lengths where it reads exactly the
/// field's length and can't fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `DataNumber` unsigned, of 1, 2, 3, 4, 8 or 16 bytes.
    Unsigned,
    /// `DataNumber` signed, same lengths.
    Signed,
    /// `ProtocolTypes`, 1 byte.
    Protocol,
    /// Raw bytes (`FieldValue::Vec`): a number when 8 bytes or fewer.
    Raw,
    /// An IPv4 address, 4 bytes.
    V4,
    /// An IPv6 address, 16 bytes.
    V6,
    /// Anything else the crate reads in exactly its length (strings, MACs, durations, floats,
    /// application ids): neither a number nor an address to `flow_of`.
    Opaque,
}

/// The kind of a field of type `dt` and `len` bytes, or `None` when the crate would read another
/// length than `len`, or could fail on it (see `FieldValue::from_field_type`).
fn kind_of(dt: &FieldDataType, len: u16) -> Option<Kind> {
    let number = matches!(len, 1 | 2 | 3 | 4 | 8 | 16);
    Some(match dt {
        FieldDataType::UnsignedDataNumber if number => Kind::Unsigned,
        FieldDataType::SignedDataNumber if number => Kind::Signed,
        FieldDataType::Ip4Addr if len == 4 => Kind::V4,
        FieldDataType::Ip6Addr if len == 16 => Kind::V6,
        FieldDataType::ProtocolType if len == 1 => Kind::Protocol,
        // `Unknown` is read as raw bytes with the crate's default `parse_unknown_fields`.
        FieldDataType::Vec | FieldDataType::Unknown => Kind::Raw,
        FieldDataType::String => Kind::Opaque,
        FieldDataType::MacAddr if len == 6 => Kind::Opaque,
        FieldDataType::DurationSeconds | FieldDataType::DurationMillis if len == 4 || len == 8 => Kind::Opaque,
        FieldDataType::DurationMicrosNTP | FieldDataType::DurationNanosNTP | FieldDataType::Float64 if len == 8 => {
            Kind::Opaque
        }
        FieldDataType::ApplicationId if len >= 2 && matches!(len - 1, 1 | 2 | 3 | 4 | 8 | 16) => Kind::Opaque,
        _ => return None,
    })
}

/// How a field's bytes become the value the crate would have decoded, by kind and length,
/// chosen once per template so a record's fields are read without matching on lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// Unsigned (or raw bytes) of 1, 2, 4 or 8 bytes.
    U8,
    U16,
    U32,
    U64,
    /// Unsigned or raw bytes of another length up to 8.
    Fold,
    /// Unsigned of 16 bytes (a number only when it fits 64 bits).
    Wide,
    /// Signed (a number only when not negative).
    Signed,
    /// `ProtocolTypes`.
    Proto,
    V4,
    V6,
    /// Neither a number nor an address.
    Neither,
}

impl Conv {
    fn of(kind: Kind, len: u16) -> Conv {
        match (kind, len) {
            (Kind::Unsigned | Kind::Raw, 1) => Conv::U8,
            (Kind::Unsigned | Kind::Raw, 2) => Conv::U16,
            (Kind::Unsigned | Kind::Raw, 4) => Conv::U32,
            (Kind::Unsigned | Kind::Raw, 8) => Conv::U64,
            (Kind::Unsigned | Kind::Raw, 0..=8) => Conv::Fold,
            (Kind::Unsigned, _) => Conv::Wide,
            (Kind::Signed, _) => Conv::Signed,
            (Kind::Protocol, _) => Conv::Proto,
            (Kind::V4, _) => Conv::V4,
            (Kind::V6, _) => Conv::V6,
            (Kind::Raw | Kind::Opaque, _) => Conv::Neither,
        }
    }
}

/// Where a field lies in a record and how to read it. The default, of no bytes and
/// [`Conv::Neither`], reads as no field at all (neither a number nor an address).
#[derive(Debug, Clone, Copy)]
struct Op {
    off: usize,
    len: usize,
    conv: Conv,
}

impl Default for Op {
    fn default() -> Self {
        Op { off: 0, len: 0, conv: Conv::Neither }
    }
}

impl Op {
    #[inline(always)]
    fn value<'a>(&self, rec: &'a [u8]) -> Value<'a> {
        // Every op lies inside the record (`size` is the sum of the field lengths).
        Value { conv: self.conv, bytes: rec.get(self.off..self.off + self.len).unwrap_or_default() }
    }

    #[inline(always)]
    fn number(&self, rec: &[u8]) -> Option<u64> {
        self.value(rec).number()
    }

    #[inline(always)]
    fn ip(&self, rec: &[u8]) -> Option<IpAddr> {
        self.value(rec).ip()
    }
}

/// Which field of a record gives each value `flow_of` would take: the last field of its id
/// (a later duplicate overrides, as in the crate path, whatever its value), and for the
/// addresses the last field of their ids that is an address (one that isn't leaves the value
/// as it was, as `ip().or(…)` does there). No such field: the default [`Op`], which reads as
/// none.
#[derive(Debug, Default, Clone, Copy)]
struct Plan {
    bytes: Op,
    packets: Op,
    protocol: Op,
    flags: Op,
    src_port: Op,
    dst_port: Op,
    input_if: Op,
    src: Op,
    dst: Op,
}

impl Plan {
    /// Takes the field at `op`, of id `id`, into account (fields in template order).
    fn add(&mut self, id: u16, op: Op) {
        let address = matches!(op.conv, Conv::V4 | Conv::V6);
        match id {
            1 => self.bytes = op,
            2 => self.packets = op,
            4 => self.protocol = op,
            6 => self.flags = op,
            7 => self.src_port = op,
            11 => self.dst_port = op,
            10 => self.input_if = op,
            8 | 27 if address => self.src = op,
            12 | 28 if address => self.dst = op,
            _ => {}
        }
    }

    /// The values of one record, as `flow_of` would have gathered them.
    #[inline(always)]
    fn fields(&self, rec: &[u8]) -> Fields {
        Fields {
            bytes: self.bytes.number(rec),
            packets: self.packets.number(rec),
            protocol: self.protocol.number(rec),
            flags: self.flags.number(rec),
            src_port: self.src_port.number(rec),
            dst_port: self.dst_port.number(rec),
            input_if: self.input_if.number(rec),
            src: self.src.ip(rec),
            dst: self.dst.ip(rec),
        }
    }
}

/// A template compiled to offsets.
#[derive(Debug)]
pub(super) struct Compiled {
    /// Bytes per record.
    size: usize,
    /// The fields read.
    plan: Plan,
    /// The offsets of every protocol field, read or not (checked).
    protocols: Vec<usize>,
}

impl Compiled {
    /// From the template's fields: (id as the crate path names it, data type, length).
    fn new(fields: impl Iterator<Item = (Option<u16>, FieldDataType, u16)>) -> Option<Self> {
        let (mut off, mut plan, mut protocols) = (0usize, Plan::default(), Vec::new());
        for (id, dt, len) in fields {
            let kind = kind_of(&dt, len)?;
            if let Some(id) = id {
                plan.add(id, Op { off, len: usize::from(len), conv: Conv::of(kind, len) });
            }
            if kind == Kind::Protocol {
                protocols.push(off);
            }
            off += usize::from(len);
        }
        (off > 0 && off <= usize::from(u16::MAX)).then_some(Compiled { size: off, plan, protocols })
    }

    /// Appends the records of a data set's body; `false` when a record holds a value the
    /// compiled form doesn't reproduce (the datagram then takes the crate path).
    fn records(&self, body: &[u8], exporter: SocketAddr, secs: u32, sampling: u32, out: &mut Vec<FlowRecord>) -> bool {
        // Both crate parsers read whole records while they fit and ignore the rest (padding).
        let records = body.chunks_exact(self.size);
        out.reserve(records.len());
        for rec in records {
            for off in &self.protocols {
                // `ProtocolTypes` parses back to the same number only for these values.
                if rec.get(*off).is_none_or(|b| !protocol_identity(*b)) {
                    return false;
                }
            }
            if let Some(f) = self.plan.fields(rec).record(exporter, secs, sampling) {
                out.push(f);
            }
        }
        true
    }
}

/// Whether the crate's `ProtocolTypes` parses the protocol number `b` back to itself (0–144 and 255; the
/// other numbers all become one "unknown" value).
fn protocol_identity(b: u8) -> bool {
    b <= 144 || b == 255
}

/// A field's bytes and how the crate would have decoded them.
#[derive(Debug, Clone, Copy)]
struct Value<'a> {
    conv: Conv,
    bytes: &'a [u8],
}

impl FieldRead for Value<'_> {
    #[inline(always)]
    fn number(&self) -> Option<u64> {
        let b = self.bytes;
        match self.conv {
            Conv::U8 => b.first().map(|x| u64::from(*x)),
            Conv::U16 => b.first_chunk::<2>().map(|x| u64::from(u16::from_be_bytes(*x))),
            Conv::U32 => b.first_chunk::<4>().map(|x| u64::from(u32::from_be_bytes(*x))),
            Conv::U64 => b.first_chunk::<8>().map(|x| u64::from_be_bytes(*x)),
            Conv::Fold => Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))),
            Conv::Wide => u64::try_from(be128(b)).ok(),
            Conv::Signed => {
                // Sign-extend from the field's width, as `DataNumber::I8`…`I128` do.
                let shift = 128 - 8 * b.len() as u32;
                u64::try_from(((be128(b) as i128) << shift) >> shift).ok()
            }
            // `records` took only records whose protocol fields hold values `ProtocolTypes` parses
            // back to themselves (`protocol_identity`, checked by a test), so the crate's value
            // is the byte.
            Conv::Proto => b.first().map(|x| u64::from(*x)),
            Conv::V4 | Conv::V6 | Conv::Neither => None,
        }
    }

    #[inline(always)]
    fn ip(&self) -> Option<IpAddr> {
        match self.conv {
            Conv::V4 => self.bytes.first_chunk::<4>().map(|b| IpAddr::V4(Ipv4Addr::from(*b))),
            Conv::V6 => self.bytes.first_chunk::<16>().map(|b| IpAddr::V6(Ipv6Addr::from(*b))),
            _ => None,
        }
    }
}

/// The template a compiled form was made from.
#[derive(Debug)]
enum Source {
    V9(Arc<V9Template>),
    Ipfix(Arc<IpfixTemplate>),
}

/// One scope's compiled templates by id (`None`: not compilable, the crate path decodes it).
#[derive(Debug, Default)]
pub(super) struct Templates {
    by_id: HashMap<u16, (Source, Option<Compiled>)>,
}

impl Templates {
    fn v9(&mut self, id: u16, t: &Arc<V9Template>) -> Option<&Compiled> {
        if !matches!(self.by_id.get(&id), Some((Source::V9(a), _)) if Arc::ptr_eq(a, t)) {
            let c = Compiled::new(
                t.fields.iter().map(|f| (Some(f.field_type as u16), f.field_type.into(), f.field_length)),
            )
            .filter(|c| c.size == usize::from(t.get_total_size()));
            self.insert(id, Source::V9(t.clone()), c);
        }
        self.by_id.get(&id).and_then(|(_, c)| c.as_ref())
    }

    fn ipfix(&mut self, id: u16, t: &Arc<IpfixTemplate>, registry: &EnterpriseFieldRegistry) -> Option<&Compiled> {
        if !matches!(self.by_id.get(&id), Some((Source::Ipfix(a), _)) if Arc::ptr_eq(a, t)) {
            // Variable-length fields (length 65535) have no fixed offsets.
            let c = if t.fields.iter().any(|f| f.field_length == u16::MAX) {
                None
            } else {
                Compiled::new(
                    t.fields
                        .iter()
                        .map(|f| (iana_id(&f.field_type), f.field_type.to_field_data_type(registry), f.field_length)),
                )
            };
            self.insert(id, Source::Ipfix(t.clone()), c);
        }
        self.by_id.get(&id).and_then(|(_, c)| c.as_ref())
    }

    fn insert(&mut self, id: u16, source: Source, c: Option<Compiled>) {
        if self.by_id.len() >= MAX_COMPILED && !self.by_id.contains_key(&id) {
            self.by_id.clear();
        }
        self.by_id.insert(id, (source, c));
    }
}

/// A big-endian number of at most 16 bytes.
fn be128(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, x| (acc << 8) | u128::from(*x))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

/// Decodes a v9 (`version` 9) or IPFIX (10) datagram made only of data sets whose templates
/// compile, appending its flows to `out`, or returns `false` with `out` as it was for the crate
/// path to decode it.
pub(super) fn decode(
    version: u16,
    parser: &mut NetflowParser,
    templates: &mut Templates,
    exporter: SocketAddr,
    data: &[u8],
    sampling: u32,
    out: &mut Vec<FlowRecord>,
) -> bool {
    let before = out.len();
    let done = decode_sets(version, parser, templates, exporter, data, sampling, out).is_some();
    if !done {
        out.truncate(before);
    }
    done
}

fn decode_sets(
    version: u16,
    parser: &mut NetflowParser,
    templates: &mut Templates,
    exporter: SocketAddr,
    data: &[u8],
    sampling: u32,
    out: &mut Vec<FlowRecord>,
) -> Option<()> {
    let (header, secs, count) = match version {
        // v9: the header's count bounds the sets the crate reads; bytes past them would be
        // parsed as another packet.
        9 => (20, be32(data, 8)?, usize::from(be16(data, 2)?)),
        // IPFIX: the message must be the whole datagram (the crate reads past it as another).
        10 => {
            if usize::from(be16(data, 2)?) != data.len() {
                return None;
            }
            (16, be32(data, 4)?, usize::MAX)
        }
        _ => return None,
    };
    if data.len() < header || parser.v9_parser.ttl_config.is_some() || parser.ipfix_parser.ttl_config.is_some() {
        return None;
    }
    let (mut pos, mut sets) = (header, 0usize);
    while pos < data.len() {
        let (id, len) = (be16(data, pos)?, usize::from(be16(data, pos + 2)?));
        if sets >= count || len < 4 || id < 256 {
            return None;
        }
        let body = data.get(pos + 4..pos + len)?;
        let compiled = if version == 9 {
            // The crate's lookup, so the template's recency in its LRU cache is as before.
            let t = parser.v9_parser.templates.get(&id)?;
            templates.v9(id, &t.template)?
        } else {
            let p = &mut parser.ipfix_parser;
            let t = p.templates.get(&id)?;
            templates.ipfix(id, &t.template, &p.enterprise_registry)?
        };
        if !compiled.records(body, exporter, secs, sampling, out) {
            return None;
        }
        pos += len;
        sets += 1;
    }
    Some(())
}

#[cfg(test)]
mod tests;
