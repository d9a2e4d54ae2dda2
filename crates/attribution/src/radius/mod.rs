//! The RADIUS accounting wire format, pure functions of bytes (no sockets).
//!
//! Written by hand rather than taken from a crate: the candidates on crates.io (`radius`,
//! `radius-rust`) bundle an async server and client with their own runtimes, panic-free decoding
//! is not their stated goal, and they report a malformed packet without the offset and attribute
//! that mamori must count and log. Accounting needs little of RADIUS: the header, type-length-value
//! attributes, vendor-specific attributes and two MD5 authenticators, about three hundred lines
//! that are fuzzed (`fuzz/`, target `radius_acct`) and checked against radclient.

pub mod acct;
pub mod packet;

pub use acct::{AccountingRequest, AttrError, Ipv6Prefix, PortBlock, StatusType};
pub use packet::{Packet, PacketBuilder, PacketError, accounting_response};
