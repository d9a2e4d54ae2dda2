//! A dnstap payload: decodes or returns an error, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = mamori_dns::dnstap::decode::decode(data) {
        assert!(!e.qname.is_empty());
    }
});
