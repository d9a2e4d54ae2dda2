//! A reputation list in each format: parses or skips lines, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_dns::reputation::{ListFormat, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for f in [ListFormat::Plain, ListFormat::Hosts, ListFormat::Rpz] {
        let l = parse(&text, f, "fuzz", None);
        for (name, _, ()) in l.names.iter() {
            assert!(l.names.matches(name));
        }
    }
});
