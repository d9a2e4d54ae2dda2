//! Any bytes as a FreeRADIUS detail file: every record is an event or an error with a line
//! number inside the file, never a panic; the events build sessions the index takes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_attribution::detail::read_detail;
use mamori_attribution::index::Index;
use mamori_attribution::session::{SessionKey, SessionRow};

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    let mut ix = Index::new();
    for r in read_detail(data) {
        match r {
            Ok(ev) => {
                let key = ev.key().unwrap_or(SessionKey([0; 16]));
                let row = SessionRow::merge(None, key, &ev, "x", 600);
                ix.update(None, &row);
            }
            Err(e) => assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line),
        }
    }
    ix.compact();
});
