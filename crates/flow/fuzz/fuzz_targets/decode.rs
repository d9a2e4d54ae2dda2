//! Feeds arbitrary datagrams to the NetFlow v5/v9/IPFIX decoder: the input is split on `|||`
//! into datagrams, each from one of four exporters (first byte), so template state carries over
//! between datagrams as it does on the wire. Each datagram goes to two decoders, one with the
//! v9/IPFIX data-record fast path and one decoding everything through `netflow_parser`: their
//! outputs (records, counters) must be equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_flow::collector::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut fast = Decoder::new(8, 1);
    let mut slow = Decoder::new(8, 1).with_fast_path(false);
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.windows(3).position(|w| w == b"|||").unwrap_or(rest.len());
        let (dg, tail) = rest.split_at(end);
        rest = tail.get(3..).unwrap_or_default();
        let Some((&who, body)) = dg.split_first() else { continue };
        let exporter = std::net::SocketAddr::from(([192, 0, 2, who % 4], 2055));
        let out = fast.decode(exporter, body);
        for f in &out.flows {
            assert_eq!(f.exporter, exporter);
        }
        assert_eq!(out, slow.decode(exporter, body));
    }
});
