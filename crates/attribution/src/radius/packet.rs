//! The RADIUS packet: header, attributes, authenticators (RFC 2865 §3, RFC 2866 §3–4).
//!
//! Parsing checks every length against the bytes that are really there before using it, so a
//! truncated or hostile packet is an error naming the offset, never a panic or an over-read.

use md5::{Digest, Md5};

/// Code of an Accounting-Request.
pub const ACCOUNTING_REQUEST: u8 = 4;
/// Code of an Accounting-Response.
pub const ACCOUNTING_RESPONSE: u8 = 5;
/// Header: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// RFC 2865 §3: the largest packet.
pub const MAX_PACKET_LEN: usize = 4096;

/// Why bytes are not a RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Fewer bytes than the header.
    #[error("truncated packet: {received} bytes, shorter than the 20-byte header")]
    ShorterThanHeader {
        /// Bytes received.
        received: usize,
    },
    /// The Length field is below 20 or above 4096.
    #[error("Length field {declared} is outside 20–4096")]
    LengthOutOfRange {
        /// The Length field.
        declared: usize,
    },
    /// The Length field claims more bytes than arrived.
    #[error("truncated packet: Length field says {declared} bytes but {received} arrived")]
    Truncated {
        /// The Length field.
        declared: usize,
        /// Bytes received.
        received: usize,
    },
    /// One byte is left where an attribute header needs two.
    #[error("attribute at offset {offset}: truncated header (1 byte left of the 2 it needs)")]
    AttributeHeaderTruncated {
        /// Offset of the attribute in the packet.
        offset: usize,
    },
    /// An attribute's Length field is below 2.
    #[error("attribute {attr_type} at offset {offset}: Length {length} is below 2")]
    AttributeLengthTooSmall {
        /// Offset of the attribute in the packet.
        offset: usize,
        /// Its type.
        attr_type: u8,
        /// Its Length field.
        length: u8,
    },
    /// An attribute's Length field runs past the end of the packet.
    #[error("attribute {attr_type} at offset {offset}: Length {length} overruns the packet ({remaining} bytes left)")]
    AttributeOverrun {
        /// Offset of the attribute in the packet.
        offset: usize,
        /// Its type.
        attr_type: u8,
        /// Its Length field.
        length: u8,
        /// Bytes left in the packet from the attribute's start.
        remaining: usize,
    },
}

/// A parsed packet borrowing the received bytes. Its attributes were all checked by
/// [`Packet::parse`]; octets after the Length field (padding, RFC 2865 §3) are ignored.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

/// One attribute: its type, value and offset in the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// Type.
    pub attr_type: u8,
    /// Value (without the two header bytes).
    pub value: &'a [u8],
    /// Offset of the attribute's first byte in the packet.
    pub offset: usize,
}

impl<'a> Packet<'a> {
    /// Checks the header and every attribute's length.
    pub fn parse(bytes: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::ShorterThanHeader { received: bytes.len() });
        }
        let declared = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&declared) {
            return Err(PacketError::LengthOutOfRange { declared });
        }
        if declared > bytes.len() {
            return Err(PacketError::Truncated { declared, received: bytes.len() });
        }
        let bytes = &bytes[..declared];
        let mut offset = HEADER_LEN;
        while offset < bytes.len() {
            let remaining = bytes.len() - offset;
            if remaining < 2 {
                return Err(PacketError::AttributeHeaderTruncated { offset });
            }
            let attr_type = bytes[offset];
            let length = bytes[offset + 1];
            if length < 2 {
                return Err(PacketError::AttributeLengthTooSmall { offset, attr_type, length });
            }
            if usize::from(length) > remaining {
                return Err(PacketError::AttributeOverrun { offset, attr_type, length, remaining });
            }
            offset += usize::from(length);
        }
        Ok(Packet { bytes })
    }

    /// The Code field.
    pub fn code(&self) -> u8 {
        self.bytes[0]
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        self.bytes[1]
    }

    /// The Authenticator field.
    pub fn authenticator(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.bytes[4..HEADER_LEN]);
        a
    }

    /// The packet's bytes, up to its Length field.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The attributes in order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { bytes: self.bytes, offset: HEADER_LEN }
    }

    /// Checks the Request Authenticator of an Accounting-Request (RFC 2866 §3): MD5 over code,
    /// identifier, length, sixteen zero octets, the attributes and the shared secret. Compared in
    /// constant time.
    pub fn verify_accounting_request(&self, secret: &[u8]) -> bool {
        let expected = accounting_request_authenticator(self.bytes, secret);
        let got = &self.bytes[4..HEADER_LEN];
        expected.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Iterator over a parsed packet's attributes.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        // `Packet::parse` checked every length; `get` keeps this total anyway.
        let attr_type = *self.bytes.get(self.offset)?;
        let length = usize::from(*self.bytes.get(self.offset + 1)?);
        let value = self.bytes.get(self.offset + 2..self.offset + length)?;
        let attr = Attribute { attr_type, value, offset: self.offset };
        self.offset += length.max(2);
        Some(attr)
    }
}

/// The Request Authenticator an Accounting-Request must carry (RFC 2866 §3). `packet` is the
/// whole packet; its own authenticator field is replaced by zeros in the hash.
pub fn accounting_request_authenticator(packet: &[u8], secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(&packet[..4.min(packet.len())]);
    h.update([0u8; 16]);
    if packet.len() > HEADER_LEN {
        h.update(&packet[HEADER_LEN..]);
    }
    h.update(secret);
    h.finalize().into()
}

/// An Accounting-Response without attributes answering `request`, with its Response
/// Authenticator: MD5 over code, identifier, length, the request's authenticator and the secret
/// (RFC 2866 §4).
pub fn accounting_response(request: &Packet<'_>, secret: &[u8]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0] = ACCOUNTING_RESPONSE;
    out[1] = request.identifier();
    out[2..4].copy_from_slice(&(HEADER_LEN as u16).to_be_bytes());
    let mut h = Md5::new();
    h.update(&out[..4]);
    h.update(request.authenticator());
    h.update(secret);
    let auth: [u8; 16] = h.finalize().into();
    out[4..].copy_from_slice(&auth);
    out
}

/// Builds packets: Accounting-Requests for tests, benchmarks and the fuzzer's round trip.
#[derive(Debug, Clone)]
pub struct PacketBuilder {
    bytes: Vec<u8>,
}

/// An attribute value longer than 253 bytes cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attribute {attr_type}: value of {len} bytes is longer than 253 (or the packet longer than 4096)")]
pub struct TooLong {
    /// The attribute type.
    pub attr_type: u8,
    /// The value's length.
    pub len: usize,
}

impl PacketBuilder {
    /// A packet with this code and identifier and no attributes yet.
    pub fn new(code: u8, identifier: u8) -> Self {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&[code, identifier, 0, 0]);
        bytes.extend_from_slice(&[0u8; 16]);
        PacketBuilder { bytes }
    }

    /// Adds an attribute.
    pub fn attr(&mut self, attr_type: u8, value: &[u8]) -> Result<&mut Self, TooLong> {
        if value.len() > 253 || self.bytes.len() + 2 + value.len() > MAX_PACKET_LEN {
            return Err(TooLong { attr_type, len: value.len() });
        }
        self.bytes.push(attr_type);
        self.bytes.push((value.len() + 2) as u8);
        self.bytes.extend_from_slice(value);
        Ok(self)
    }

    /// Adds a Vendor-Specific attribute (26) in the RFC 2865 §5.26 suggested format:
    /// vendor id, then one sub-attribute of one-byte type and one-byte length.
    pub fn vsa(&mut self, vendor: u32, vendor_type: u8, value: &[u8]) -> Result<&mut Self, TooLong> {
        if value.len() > 247 {
            return Err(TooLong { attr_type: 26, len: value.len() });
        }
        let mut v = Vec::with_capacity(6 + value.len());
        v.extend_from_slice(&vendor.to_be_bytes());
        v.push(vendor_type);
        v.push((value.len() + 2) as u8);
        v.extend_from_slice(value);
        self.attr(26, &v)
    }

    /// Finishes an Accounting-Request: sets the length and the Request Authenticator.
    pub fn accounting_request(&mut self, secret: &[u8]) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        let auth = accounting_request_authenticator(&bytes, secret);
        bytes[4..HEADER_LEN].copy_from_slice(&auth);
        bytes
    }

    /// Finishes the packet with this authenticator as is (for round trips).
    pub fn with_authenticator(&mut self, authenticator: [u8; 16]) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        bytes[4..HEADER_LEN].copy_from_slice(&authenticator);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packets radclient really sends are checked in `tests/radclient.rs` and
    /// `acct::tests::radclient_capture`; this checks the definition on a built packet.
    #[test]
    fn request_authenticator_matches_md5_definition() {
        let mut b = PacketBuilder::new(ACCOUNTING_REQUEST, 42);
        b.attr(40, &1u32.to_be_bytes()).unwrap().attr(1, b"alice").unwrap();
        let bytes = b.accounting_request(b"testing123");
        let p = Packet::parse(&bytes).unwrap();
        assert!(p.verify_accounting_request(b"testing123"));
        assert!(!p.verify_accounting_request(b"testing124"));
        // Tampering with one attribute byte breaks it.
        let mut t = bytes.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(!Packet::parse(&t).unwrap().verify_accounting_request(b"testing123"));
    }

    #[test]
    fn response_authenticator() {
        let mut b = PacketBuilder::new(ACCOUNTING_REQUEST, 7);
        b.attr(40, &2u32.to_be_bytes()).unwrap();
        let req = b.accounting_request(b"s");
        let p = Packet::parse(&req).unwrap();
        let resp = accounting_response(&p, b"s");
        assert_eq!(resp[0], ACCOUNTING_RESPONSE);
        assert_eq!(resp[1], 7);
        let mut h = Md5::new();
        h.update(&resp[..4]);
        h.update(&req[4..20]);
        h.update(b"s");
        let want: [u8; 16] = h.finalize().into();
        assert_eq!(&resp[4..], &want);
    }

    #[test]
    fn truncated_and_malformed_packets_are_named() {
        assert_eq!(Packet::parse(&[4, 1, 0]).unwrap_err(), PacketError::ShorterThanHeader { received: 3 });
        let mut b = PacketBuilder::new(ACCOUNTING_REQUEST, 1);
        b.attr(1, b"alice").unwrap();
        let full = b.accounting_request(b"x");
        let cut = &full[..full.len() - 2];
        assert_eq!(Packet::parse(cut).unwrap_err(), PacketError::Truncated { declared: 27, received: 25 });
        let mut bad = full.clone();
        bad[21] = 40; // attribute length past the end
        let e = Packet::parse(&bad).unwrap_err();
        assert!(matches!(e, PacketError::AttributeOverrun { offset: 20, attr_type: 1, .. }), "{e}");
        assert!(e.to_string().contains("offset 20"));
        bad[21] = 1;
        assert!(matches!(Packet::parse(&bad).unwrap_err(), PacketError::AttributeLengthTooSmall { .. }));
        let mut odd = full.clone();
        odd.push(9);
        odd[3] += 1;
        assert!(matches!(Packet::parse(&odd).unwrap_err(), PacketError::AttributeHeaderTruncated { offset: 27 }));
        let mut big = full;
        big[2..4].copy_from_slice(&5000u16.to_be_bytes());
        assert!(matches!(Packet::parse(&big).unwrap_err(), PacketError::LengthOutOfRange { declared: 5000 }));
    }

    #[test]
    fn padding_after_length_is_ignored() {
        let mut b = PacketBuilder::new(ACCOUNTING_REQUEST, 1);
        b.attr(1, b"bob").unwrap();
        let mut bytes = b.accounting_request(b"x");
        bytes.extend_from_slice(&[0xff; 7]);
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.bytes().len(), 25);
        assert!(p.verify_accounting_request(b"x"));
        assert_eq!(p.attributes().count(), 1);
    }
}
