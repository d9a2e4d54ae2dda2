//! Any bytes as a received datagram: parsed or refused with an error, never a panic; what parses
//! re-encodes to the same bytes; what decodes becomes a session the index takes and answers for.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use mamori_attribution::index::Index;
use mamori_attribution::radius::{AccountingRequest, Packet, PacketBuilder, accounting_response};
use mamori_attribution::session::{AcctEvent, SessionKey, SessionRow};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::parse(data) else { return };
    // Round trip: the attributes rebuild the same packet.
    let mut b = PacketBuilder::new(p.code(), p.identifier());
    for a in p.attributes() {
        b.attr(a.attr_type, a.value).expect("a parsed attribute fits");
    }
    let again = b.with_authenticator(p.authenticator());
    assert_eq!(again.as_slice(), p.bytes());
    let _ = p.verify_accounting_request(b"testing123");
    let _ = accounting_response(&p, b"testing123");
    let Ok(r) = AccountingRequest::decode(&p) else { return };
    let ev = AcctEvent::from_request(&r, IpAddr::V4(Ipv4Addr::LOCALHOST), 1_800_000_000);
    let key = ev.key().unwrap_or(SessionKey([0; 16]));
    let row = SessionRow::merge(None, key, &ev, ev.user_name.as_deref().unwrap_or("x"), 600);
    let row2 = SessionRow::merge(Some(&row), key, &ev, "x", 600);
    assert_eq!(row, row2, "merging an event twice changes nothing");
    let mut ix = Index::new();
    ix.insert(&row);
    ix.compact();
    for b in &row.port_blocks {
        let _ = ix.lookup_v4_secs(b.public, Some(b.first), row.start);
    }
    for p in &row.ipv6 {
        let _ = ix.lookup_v6_secs(p.addr, row.start);
    }
});
