//! Feeds arbitrary datagrams to the sFlow v5 decoder: the input is split on `|||` into
//! datagrams (sFlow keeps no state between them, but a batch covers more per run). Every flow
//! must come from a datagram whose header parsed, with the agent as its exporter, and an error's
//! offset must lie inside the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_flow::collector::sflow;

fuzz_target!(|data: &[u8]| {
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 6343));
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.windows(3).position(|w| w == b"|||").unwrap_or(rest.len());
        let (dg, tail) = rest.split_at(end);
        rest = tail.get(3..).unwrap_or_default();
        let out = sflow::decode(from, dg);
        if let Some(e) = &out.error {
            assert!(e.offset() <= dg.len(), "{e} in {} bytes", dg.len());
        }
        match out.header {
            Some(h) => {
                for f in &out.flows {
                    assert_eq!(f.exporter.ip(), h.agent);
                }
            }
            None => assert!(out.flows.is_empty()),
        }
    }
});
