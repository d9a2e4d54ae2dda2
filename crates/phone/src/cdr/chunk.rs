//! Where the commas, newlines and unusual bytes of 64 bytes are, as bit masks.
//!
//! A CDR line is about 120 bytes with seven commas. Finding its end with `memchr`, its commas
//! eight bytes at a time and checking its bytes in a third pass cost over 500 instructions a row;
//! compared 16 bytes at a time (SSE2, which every x86-64 processor has) the three masks of a
//! 64-byte chunk take a few dozen, and a line is two chunks. The vector code goes through
//! `safe_arch` (safe wrappers of the SSE2 intrinsics; the workspace forbids `unsafe`); other
//! architectures get the same masks from a byte loop. No CSV crate offers a split this plain,
//! because the usual ones must handle quotes on every byte; the reader still hands any line with a
//! quote or a carriage return to `csv_core`.

/// Bytes per chunk: one bit per byte in a `u64`.
pub(crate) const CHUNK: usize = 64;

/// The masks of one chunk: bit `i` stands for byte `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Masks {
    /// `,`.
    pub(crate) comma: u64,
    /// `\n`.
    pub(crate) newline: u64,
    /// A byte a plain line does not hold: a quote, or anything but printable ASCII (0x20–0x7e)
    /// and `\n` (so a carriage return, a control character, any byte of a multi-byte UTF-8
    /// character). Such a line goes the careful way.
    pub(crate) unusual: u64,
}

/// The masks of `chunk`, one byte at a time: the reference, and the code on architectures
/// without a vector version.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(crate) fn masks_bytewise(chunk: &[u8; CHUNK]) -> Masks {
    let mut m = Masks { comma: 0, newline: 0, unusual: 0 };
    for (i, b) in chunk.iter().enumerate() {
        m.comma |= u64::from(*b == b',') << i;
        m.newline |= u64::from(*b == b'\n') << i;
        let printable = (0x20..=0x7e).contains(b) && *b != b'"';
        m.unusual |= u64::from(!printable && *b != b'\n') << i;
    }
    m
}

/// The masks of `chunk`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn masks(chunk: &[u8; CHUNK]) -> Masks {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let comma = set_splat_i8_m128i(b',' as i8);
    let newline = set_splat_i8_m128i(b'\n' as i8);
    let quote = set_splat_i8_m128i(b'"' as i8);
    let space = set_splat_i8_m128i(0x20);
    let delete = set_splat_i8_m128i(0x7f);
    let mut m = Masks { comma: 0, newline: 0, unusual: 0 };
    for k in 0..CHUNK / 16 {
        let Some(part) = chunk.get(16 * k..).and_then(|rest| rest.first_chunk::<16>()) else { continue };
        let v = load_unaligned_m128i(part);
        // The compare is signed: bytes 0x80–0xff are negative, so "below a space" takes them too.
        let odd = bitor_m128i(
            bitor_m128i(cmp_lt_mask_i8_m128i(v, space), cmp_eq_mask_i8_m128i(v, delete)),
            cmp_eq_mask_i8_m128i(v, quote),
        );
        // `move_mask` sets the low 16 bits only.
        let bits = |x| u64::from(move_mask_i8_m128i(x) as u16) << (16 * k);
        let newlines = bits(cmp_eq_mask_i8_m128i(v, newline));
        m.comma |= bits(cmp_eq_mask_i8_m128i(v, comma));
        m.newline |= newlines;
        m.unusual |= bits(odd) & !newlines;
    }
    m
}

/// The masks of `chunk`.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn masks(chunk: &[u8; CHUNK]) -> Masks {
    masks_bytewise(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vector_masks_are_the_bytewise_ones() {
        // Every byte value at every position, and rows as they come.
        let mut chunk = [b'a'; CHUNK];
        for value in 0..=255u8 {
            for at in 0..CHUNK {
                chunk = [b'a'; CHUNK];
                chunk[at] = value;
                chunk[(at * 7 + 3) % CHUNK] = value.wrapping_mul(31);
                assert_eq!(masks(&chunk), masks_bytewise(&chunk), "byte {value:#04x} at {at}");
            }
        }
        let text =
            b"b1619e3cec699cd2,2026-11-01T00:00:09+09:00,2026-11-01T00:02:28+09:00,0502586305\n\"x\",\r\n\xe3\x81\x82,";
        for start in 0..text.len() - CHUNK {
            chunk.copy_from_slice(&text[start..start + CHUNK]);
            assert_eq!(masks(&chunk), masks_bytewise(&chunk));
        }
        let m = masks_bytewise(&[b','; CHUNK]);
        assert_eq!((m.comma, m.newline, m.unusual), (u64::MAX, 0, 0));
        let m = masks_bytewise(&[b'\n'; CHUNK]);
        assert_eq!((m.comma, m.newline, m.unusual), (0, u64::MAX, 0));
        let m = masks_bytewise(&[b'"'; CHUNK]);
        assert_eq!((m.comma, m.newline, m.unusual), (0, 0, u64::MAX));
    }
}
