//! Fuzzes what mamori reads from Kamailio's evapi socket: netstring framing (in arbitrary
//! chunks, as TCP delivers it) and the JSON call events inside. Nothing may panic, and decoding
//! in chunks must give exactly what decoding at once gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_kamailio::evapi::{NetstringDecoder, decode_all, parse_event};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let (whole, whole_err) = decode_all(stream);

    let mut dec = NetstringDecoder::new();
    let mut chunked = Vec::new();
    let mut chunked_err = None;
    'outer: for piece in stream.chunks(chunk) {
        dec.push(piece);
        loop {
            match dec.next_frame() {
                Ok(Some(p)) => chunked.push(parse_event(&p)),
                Ok(None) => break,
                Err(e) => {
                    chunked_err = Some(e);
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(whole, chunked);
    assert_eq!(whole_err, chunked_err);
    // The payload parser alone, on the raw bytes.
    let _ = parse_event(stream);
});
