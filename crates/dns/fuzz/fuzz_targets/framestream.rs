//! A Frame Streams connection fed in pieces: never panics, never buffers beyond a frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_dns::dnstap::Session;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let mut s = Session::new(1024);
    let mut buf = Vec::new();
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        match s.feed(&buf, |p| {
            if let Some(p) = p {
                let _ = mamori_dns::dnstap::decode::decode(p);
            }
        }) {
            Ok(fed) => {
                assert!(fed.consumed <= buf.len());
                buf.drain(..fed.consumed);
                if fed.finished {
                    return; // the connection closes after FINISH
                }
            }
            Err(_) => return,
        }
        assert!(buf.len() <= 1024 + 8 + 512 + step);
    }
});
