//! dnstap payloads: the protobuf messages of `dnstap.proto` (hand-written prost structs, so no
//! `protoc` at build time) and the DNS message inside them (hickory-proto), turned into a
//! [`DnsEvent`]. A pure function of bytes: it never decides anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Header, MessageType, Query};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use jiff::Timestamp;
use prost::Message as _;

/// `dnstap.Dnstap` (the frame payload).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dnstap {
    /// The server's identity.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity: Option<Vec<u8>>,
    /// The server's version.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub version: Option<Vec<u8>>,
    /// Opaque extra data.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub extra: Option<Vec<u8>>,
    /// The payload type (1 = MESSAGE).
    #[prost(int32, required, tag = "15")]
    pub r#type: i32,
    /// The message.
    #[prost(message, optional, tag = "14")]
    pub message: Option<TapMessage>,
}

/// `dnstap.Message`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TapMessage {
    /// `Message.Type` (see [`Role`]).
    #[prost(int32, required, tag = "1")]
    pub r#type: i32,
    /// 1 = INET, 2 = INET6.
    #[prost(int32, optional, tag = "2")]
    pub socket_family: Option<i32>,
    /// 1 = UDP, 2 = TCP, 3 = DOT, 4 = DOH, …
    #[prost(int32, optional, tag = "3")]
    pub socket_protocol: Option<i32>,
    /// The querier's address.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub query_address: Option<Vec<u8>>,
    /// The responder's address.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub response_address: Option<Vec<u8>>,
    /// The querier's port.
    #[prost(uint32, optional, tag = "6")]
    pub query_port: Option<u32>,
    /// The responder's port.
    #[prost(uint32, optional, tag = "7")]
    pub response_port: Option<u32>,
    /// Query time, seconds.
    #[prost(uint64, optional, tag = "8")]
    pub query_time_sec: Option<u64>,
    /// Query time, nanoseconds.
    #[prost(fixed32, optional, tag = "9")]
    pub query_time_nsec: Option<u32>,
    /// The query in wire format.
    #[prost(bytes = "vec", optional, tag = "10")]
    pub query_message: Option<Vec<u8>>,
    /// The zone (resolver queries).
    #[prost(bytes = "vec", optional, tag = "11")]
    pub query_zone: Option<Vec<u8>>,
    /// Response time, seconds.
    #[prost(uint64, optional, tag = "12")]
    pub response_time_sec: Option<u64>,
    /// Response time, nanoseconds.
    #[prost(fixed32, optional, tag = "13")]
    pub response_time_nsec: Option<u32>,
    /// The response in wire format.
    #[prost(bytes = "vec", optional, tag = "14")]
    pub response_message: Option<Vec<u8>>,
}

/// `Message.Type`: who sent what to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)] // the names of dnstap.proto
pub enum Role {
    AuthQuery = 1,
    AuthResponse = 2,
    ResolverQuery = 3,
    ResolverResponse = 4,
    ClientQuery = 5,
    ClientResponse = 6,
    ForwarderQuery = 7,
    ForwarderResponse = 8,
    StubQuery = 9,
    StubResponse = 10,
    ToolQuery = 11,
    ToolResponse = 12,
    UpdateQuery = 13,
    UpdateResponse = 14,
}

impl Role {
    fn from_i32(v: i32) -> Option<Role> {
        use Role::*;
        Some(match v {
            1 => AuthQuery,
            2 => AuthResponse,
            3 => ResolverQuery,
            4 => ResolverResponse,
            5 => ClientQuery,
            6 => ClientResponse,
            7 => ForwarderQuery,
            8 => ForwarderResponse,
            9 => StubQuery,
            10 => StubResponse,
            11 => ToolQuery,
            12 => ToolResponse,
            13 => UpdateQuery,
            14 => UpdateResponse,
            _ => return None,
        })
    }

    /// Whether the message is a response (even type numbers).
    pub fn is_response(self) -> bool {
        (self as i32) % 2 == 0
    }
}

/// One query or response seen by a resolver: the record the `dns.*` and `bots.*` views are
/// projected from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEvent {
    /// Who sent what to whom.
    pub role: Role,
    /// The querier (the resolver's client for client messages).
    pub client: Option<IpAddr>,
    /// The querier's port.
    pub client_port: Option<u16>,
    /// When (the response time for responses).
    pub time: Option<Timestamp>,
    /// The question's name, lowercase, without the trailing dot (`.` for the root).
    pub qname: String,
    /// The question's type.
    pub qtype: u16,
    /// The response code (responses only).
    pub rcode: Option<u16>,
    /// The response's size in bytes (responses only).
    pub response_size: Option<u32>,
}

/// Why a dnstap payload was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a valid `dnstap.Dnstap` protobuf.
    #[error("protobuf: {0}")]
    Protobuf(String),
    /// A `Dnstap` that holds no message.
    #[error("no message in the dnstap payload")]
    NoMessage,
    /// An unknown `Message.Type`.
    #[error("unknown message type {0}")]
    UnknownRole(i32),
    /// The message carries no DNS bytes for its direction.
    #[error("no DNS message bytes")]
    NoDnsBytes,
    /// The DNS message doesn't parse.
    #[error("DNS message: {0}")]
    Dns(String),
    /// The DNS message has no question.
    #[error("DNS message without a question")]
    NoQuestion,
    /// An address of neither 4 nor 16 bytes.
    #[error("address of {0} bytes")]
    BadAddress(usize),
}

/// Decodes one frame payload.
pub fn decode(payload: &[u8]) -> Result<DnsEvent, DecodeError> {
    let tap = Dnstap::decode(payload).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let msg = tap.message.ok_or(DecodeError::NoMessage)?;
    let role = Role::from_i32(msg.r#type).ok_or(DecodeError::UnknownRole(msg.r#type))?;
    let client = match &msg.query_address {
        None => None,
        Some(a) => Some(ip_from(a)?),
    };
    let (bytes, sec, nsec) = if role.is_response() {
        (msg.response_message.as_deref(), msg.response_time_sec, msg.response_time_nsec)
    } else {
        (msg.query_message.as_deref(), msg.query_time_sec, msg.query_time_nsec)
    };
    let bytes = bytes.ok_or(DecodeError::NoDnsBytes)?;
    let (header, qname, qtype) = dns_question(bytes)?;
    let time = sec.and_then(|s| {
        Timestamp::new(i64::try_from(s).ok()?, i32::try_from(nsec.unwrap_or(0)).ok()?.min(999_999_999)).ok()
    });
    let is_response = role.is_response() && header.message_type() == MessageType::Response;
    Ok(DnsEvent {
        role,
        client,
        client_port: msg.query_port.and_then(|p| u16::try_from(p).ok()),
        time,
        qname,
        qtype,
        rcode: is_response.then(|| u16::from(header.response_code())),
        response_size: is_response.then_some(bytes.len() as u32),
    })
}

fn ip_from(a: &[u8]) -> Result<IpAddr, DecodeError> {
    match a.len() {
        4 => Ok(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
        16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        n => Err(DecodeError::BadAddress(n)),
    }
}

/// The header and first question of a DNS message: name (normalized), type.
pub fn dns_question(bytes: &[u8]) -> Result<(Header, String, u16), DecodeError> {
    let mut key = String::new();
    let (header, qtype, _) = dns_question_into(bytes, &mut key)?;
    Ok((header, key, qtype))
}

/// [`dns_question`] writing the name's key into `key` (cleared first; no allocation once it has
/// grown to the longest name), and returning where the question ends in `bytes` if its name is
/// written out in full there (no compression pointer), so the question can be copied as is.
pub fn dns_question_into(bytes: &[u8], key: &mut String) -> Result<(Header, u16, Option<usize>), DecodeError> {
    let mut d = BinDecoder::new(bytes);
    let header = Header::read(&mut d).map_err(|e| DecodeError::Dns(e.to_string()))?;
    if header.query_count() == 0 {
        return Err(DecodeError::NoQuestion);
    }
    let q = Query::read(&mut d).map_err(|e| DecodeError::Dns(e.to_string()))?;
    name_key_into(q.name(), key);
    let name_wire: usize = q.name().iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    let end = d.index();
    let plain = end.checked_sub(12 + 4) == Some(name_wire);
    Ok((header, u16::from(q.query_type()), plain.then_some(end)))
}

/// A name as mamori keys it: lowercase, labels joined by dots, no trailing dot, `.` for the root;
/// bytes outside letters, digits, `-`, `_` and `*` escaped as `\DDD`.
pub fn name_key(name: &Name) -> String {
    let mut out = String::with_capacity(64);
    name_key_into(name, &mut out);
    out
}

/// [`name_key`] into `out` (cleared first).
pub fn name_key_into(name: &Name, out: &mut String) {
    out.clear();
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        for &b in label {
            match b {
                b'A'..=b'Z' => out.push(char::from(b.to_ascii_lowercase())),
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'*' => out.push(char::from(b)),
                _ => {
                    out.push('\\');
                    // Three decimal digits, as `format!("{b:03}")` wrote them, without its String.
                    out.push(char::from(b'0' + b / 100));
                    out.push(char::from(b'0' + b / 10 % 10));
                    out.push(char::from(b'0' + b % 10));
                }
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
}

/// Encodes an event as a dnstap payload (tests, the benchmark's generator, the fuzz seed corpus).
pub fn encode_client_message(
    role: Role,
    client: IpAddr,
    port: u16,
    time: Timestamp,
    dns_wire: &[u8],
    identity: &[u8],
) -> Vec<u8> {
    let addr = match client {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let (sec, nsec) = (time.as_second() as u64, time.subsec_nanosecond() as u32);
    let mut m = TapMessage {
        r#type: role as i32,
        socket_family: Some(if client.is_ipv4() { 1 } else { 2 }),
        socket_protocol: Some(1),
        query_address: Some(addr),
        query_port: Some(u32::from(port)),
        ..Default::default()
    };
    if role.is_response() {
        m.response_message = Some(dns_wire.to_vec());
        m.response_time_sec = Some(sec);
        m.response_time_nsec = Some(nsec);
    } else {
        m.query_message = Some(dns_wire.to_vec());
        m.query_time_sec = Some(sec);
        m.query_time_nsec = Some(nsec);
    }
    Dnstap { identity: Some(identity.to_vec()), version: None, extra: None, r#type: 1, message: Some(m) }
        .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;

    fn wire(name: &str, rt: RecordType, response: Option<ResponseCode>) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7).add_query(Query::query(Name::from_ascii(name).unwrap(), rt));
        if let Some(rc) = response {
            m.set_message_type(MessageType::Response).set_response_code(rc);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn client_query_and_response_round_trip() {
        let t = Timestamp::from_second(1_700_000_000).unwrap();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let q =
            encode_client_message(Role::ClientQuery, ip, 5353, t, &wire("WWW.Example.COM.", RecordType::A, None), b"x");
        let e = decode(&q).unwrap();
        assert_eq!(e.role, Role::ClientQuery);
        assert_eq!(e.client, Some(ip));
        assert_eq!(e.qname, "www.example.com");
        assert_eq!(e.qtype, 1);
        assert_eq!(e.rcode, None);
        assert_eq!(e.time, Some(t));
        let r_wire = wire("a.b.", RecordType::TXT, Some(ResponseCode::NXDomain));
        let r = encode_client_message(Role::ClientResponse, ip, 5353, t, &r_wire, b"x");
        let e = decode(&r).unwrap();
        assert_eq!(e.rcode, Some(3));
        assert_eq!(e.qtype, 16);
        assert_eq!(e.response_size, Some(r_wire.len() as u32));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(decode(&[0xff, 0xff, 0xff]), Err(DecodeError::Protobuf(_))));
        let no_msg = Dnstap { r#type: 1, ..Default::default() }.encode_to_vec();
        assert_eq!(decode(&no_msg), Err(DecodeError::NoMessage));
        let t = Timestamp::from_second(1).unwrap();
        let bad_dns = encode_client_message(Role::ClientQuery, "::1".parse().unwrap(), 1, t, &[1, 2, 3], b"");
        assert!(matches!(decode(&bad_dns), Err(DecodeError::Dns(_))));
    }

    #[test]
    fn odd_label_bytes_are_escaped() {
        let n = Name::from_labels(vec![&b"a.b"[..], &b"C"[..]]).unwrap();
        assert_eq!(name_key(&n), "a\\046b.c");
        assert_eq!(name_key(&Name::root()), ".");
    }
}
