//! One CSV row to one [`Cdr`]: a pure function, fuzzed (`fuzz/fuzz_targets/cdr_row.rs`).

use std::net::{IpAddr, Ipv4Addr};

use jiff::Timestamp;
use rustc_hash::FxHashMap;
use smol_str::SmolStr;

use super::Cdr;
use crate::numbering::{Destination, NumberError, NumberingPlan};

/// Why a row is not a CDR. The reader adds the line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// Wrong number of fields.
    #[error("expected 8 fields, found {0}")]
    FieldCount(usize),
    /// A field is empty.
    #[error("`{0}` is empty")]
    Empty(&'static str),
    /// Not UTF-8.
    #[error("`{0}` is not UTF-8")]
    NotUtf8(&'static str),
    /// Not an RFC 3339 time with offset.
    #[error("`{column}` = `{value}` is not an RFC 3339 time with offset")]
    Time {
        /// Column.
        column: &'static str,
        /// Value (a time, never subscriber data).
        value: String,
    },
    /// Ends before it starts.
    #[error("end_time is before start_time")]
    EndsBeforeStart,
    /// Not an IP address.
    #[error("`source_ip` is not an IP address")]
    SourceIp,
    /// Not whole yen.
    #[error("`charge_jpy` is not a whole number of yen")]
    Charge,
    /// Called number not understood.
    #[error("`called_number`: {0}")]
    CalledNumber(NumberError),
    /// Unanswered (zero length) but charged.
    #[error("a zero-length call has a charge")]
    ChargedButUnanswered,
}

/// Longest value accepted in an identifier column; longer is an error, not a truncation.
const MAX_FIELD: usize = 128;

/// `str::trim` without its Unicode scan for the usual field, which starts and ends with a visible
/// ASCII character and so has nothing to trim.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// A field as the reader found it: bytes, or text when the reader has already checked the
/// whole line is UTF-8 (one check per line instead of one per field).
pub trait Field<'a>: Copy {
    /// The raw bytes.
    fn bytes(self) -> &'a [u8];
    /// The text, if it is UTF-8.
    fn utf8(self) -> Option<&'a str>;
    /// Known to be printable ASCII only (no control character to look for).
    fn printable(self) -> bool {
        false
    }
}

/// A field of a line the reader found to be printable ASCII only (so valid UTF-8: the usual
/// fields are used as bytes and never converted, which spares the line its UTF-8 check).
#[derive(Debug, Clone, Copy, Default)]
pub struct Printable<'a>(pub &'a [u8]);

impl<'a> Field<'a> for Printable<'a> {
    fn bytes(self) -> &'a [u8] {
        self.0
    }
    fn utf8(self) -> Option<&'a str> {
        std::str::from_utf8(self.0).ok()
    }
    fn printable(self) -> bool {
        true
    }
}

impl<'a> Field<'a> for &'a [u8] {
    fn bytes(self) -> &'a [u8] {
        self
    }
    fn utf8(self) -> Option<&'a str> {
        std::str::from_utf8(self).ok()
    }
}

impl<'a> Field<'a> for &'a str {
    fn bytes(self) -> &'a [u8] {
        self.as_bytes()
    }
    fn utf8(self) -> Option<&'a str> {
        Some(self)
    }
}

fn text<'a>(raw: impl Field<'a>, name: &'static str) -> Result<&'a str, RowError> {
    let s = trim(raw.utf8().ok_or(RowError::NotUtf8(name))?);
    if s.is_empty() {
        return Err(RowError::Empty(name));
    }
    Ok(s)
}

/// [`ident`] as bytes (valid UTF-8), without a UTF-8 check for the usual printable field that
/// has nothing to trim: such a field is its own trimmed text, free of control characters.
#[inline(always)]
fn ident_bytes<'a>(raw: impl Field<'a>, name: &'static str) -> Result<&'a [u8], RowError> {
    let b = raw.bytes();
    match (raw.printable(), b.first(), b.last()) {
        (true, Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => {
            if b.len() > MAX_FIELD {
                return Err(RowError::NotUtf8(name));
            }
            Ok(b)
        }
        _ => ident(raw, name).map(str::as_bytes),
    }
}

fn ident<'a>(raw: impl Field<'a>, name: &'static str) -> Result<&'a str, RowError> {
    let s = text(raw, name)?;
    // ASCII's control characters are exactly its `char::is_control` ones; only other text needs
    // the char walk (C1 controls).
    let control = !raw.printable()
        && if s.is_ascii() { s.bytes().any(|b| b.is_ascii_control()) } else { s.chars().any(char::is_control) };
    if s.len() > MAX_FIELD || control {
        return Err(RowError::NotUtf8(name));
    }
    Ok(s)
}

#[inline(always)]
fn time<'a>(raw: impl Field<'a>, name: &'static str, days: &mut DayCache) -> Result<Timestamp, RowError> {
    // The usual shape has nothing to trim (it starts with a digit and ends with a digit or `Z`),
    // so the fast parser can read the raw bytes; anything else takes the full path below.
    if let Some(t) = days.parse(raw.bytes()) {
        return Ok(t);
    }
    time_slow(raw, name)
}

/// [`time`] for a time the fast parsers do not read: trimmed text, then jiff.
#[inline(never)]
fn time_slow<'a>(raw: impl Field<'a>, name: &'static str) -> Result<Timestamp, RowError> {
    let s = text(raw, name)?;
    if let Some(t) = fast_rfc3339(s.as_bytes()) {
        return Ok(t);
    }
    // jiff's Timestamp parser requires an offset (or Z), which is what the format asks for.
    s.parse::<Timestamp>().map_err(|_| RowError::Time { column: name, value: s.chars().take(40).collect() })
}

/// Whole yen: `str::parse::<u64>` semantics (which also take a leading `+`), with a loop for the
/// usual plain digits that cannot overflow (at most 19).
#[inline(always)]
fn charge<'a>(raw: impl Field<'a>) -> Result<u64, RowError> {
    // Plain digits are their own trimmed text: no UTF-8 check needed.
    let b = raw.bytes();
    if let Some(yen) = short_charge(b) {
        return Ok(yen);
    }
    if !b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit) {
        return Ok(b.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0')));
    }
    charge_text(text(raw, "charge_jpy")?)
}

/// The place values of a charge of one to four digits, by its length.
const CHARGE_PLACES: [[u32; 4]; 5] = [[0; 4], [1, 0, 0, 0], [10, 1, 0, 0], [100, 10, 1, 0], [1000, 100, 10, 1]];

/// A charge of one to four plain digits (nearly every call), without a loop: its length changes
/// from row to row, and a loop's exit was a mispredicted branch on most rows. `None` for anything
/// else (the general path).
#[inline(always)]
fn short_charge(b: &[u8]) -> Option<u64> {
    let n = b.len();
    let places = CHARGE_PLACES.get(n).filter(|_| n > 0)?;
    // Past the end the last byte is read again; its place value is 0.
    let digit = |i: usize| u32::from(b.get(i.min(n - 1)).copied().unwrap_or(0).wrapping_sub(b'0'));
    let (d0, d1, d2, d3) = (digit(0), digit(1), digit(2), digit(3));
    let value = d0 * places[0] + d1 * places[1] + d2 * places[2] + d3 * places[3];
    ((d0 <= 9) & (d1 <= 9) & (d2 <= 9) & (d3 <= 9)).then_some(u64::from(value))
}

fn charge_text(s: &str) -> Result<u64, RowError> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit) {
        return Ok(b.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0')));
    }
    s.parse().map_err(|_| RowError::Charge)
}

/// The canonical dotted quad (`1`–`3` digits per octet, no leading zero, at most 255) without the
/// general address parser; `None` for anything else, which then goes to `IpAddr::from_str`
/// (the reference: it accepts exactly these quads as IPv4 too, and rejects leading zeros).
///
/// With SSSE3 (every x86-64-v2 processor; see `.cargo/config.toml`) the address is checked and
/// split in vector registers: its dots and digits as bit masks, its octets' lengths from the dots,
/// then one byte shuffle (chosen by the lengths, from [`QUAD_SHUFFLES`]) lines the octets' digits
/// up in four lanes that two multiply-adds turn into numbers. No branch depends on the address
/// (the lengths vary from row to row) and it takes a third of the instructions of the word
/// arithmetic in [`fast_ipv4_words`], which is what other processors get.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
#[inline]
fn fast_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    use safe_arch::{
        bitand_m128i, cmp_eq_mask_i8_m128i, cmp_gt_mask_i8_m128i, cmp_lt_mask_i8_m128i, m128i, move_mask_i8_m128i,
        mul_i16_horizontal_add_m128i, mul_u8i8_add_horizontal_saturating_m128i, set_splat_i8_m128i,
        set_splat_i16_m128i, shuffle_av_i8z_all_m128i, sub_i8_m128i,
    };
    let n = b.len();
    if !(7..=15).contains(&n) {
        return None;
    }
    let x = m128i::from(quad_bytes(b).to_le_bytes());
    let splat = |c: u8| set_splat_i8_m128i(c as i8);
    let dots = move_mask_i8_m128i(cmp_eq_mask_i8_m128i(x, splat(b'.'))) as u32;
    let digit = bitand_m128i(cmp_gt_mask_i8_m128i(x, splat(b'0' - 1)), cmp_lt_mask_i8_m128i(x, splat(b'9' + 1)));
    let digits = move_mask_i8_m128i(digit) as u32;
    // Every byte a digit or a dot, and three dots (the bytes past the end are zero: neither).
    let within = (1u32 << n) - 1;
    let mut ok = ((dots | digits) & within == within) & (dots.count_ones() == 3);
    // The octets' lengths, from the dots' places (a missing dot is at 32: the checks fail).
    let p1 = dots.trailing_zeros();
    let rest = dots & dots.wrapping_sub(1);
    let p2 = rest.trailing_zeros();
    let p3 = (rest & rest.wrapping_sub(1)).trailing_zeros();
    let lens = [p1, p2.wrapping_sub(p1 + 1), p3.wrapping_sub(p2 + 1), (n as u32).wrapping_sub(p3 + 1)];
    let mut pattern = 0u32;
    for len in lens.iter().rev() {
        ok &= len.wrapping_sub(1) < 3;
        pattern = pattern * 3 + len.wrapping_sub(1).min(2);
    }
    let shuffle = QUAD_SHUFFLES.get(pattern as usize)?;
    // Lane k holds octet k's digits as [0, hundreds, tens, ones] (0 where it has fewer), times
    // [0, 100, 10, 1], summed.
    let lanes = shuffle_av_i8z_all_m128i(sub_i8_m128i(x, splat(b'0')), m128i::from(*shuffle));
    let places = m128i::from([0i8, 100, 10, 1, 0, 100, 10, 1, 0, 100, 10, 1, 0, 100, 10, 1]);
    let pairs = mul_u8i8_add_horizontal_saturating_m128i(lanes, places);
    let values: [i32; 4] = mul_i16_horizontal_add_m128i(pairs, set_splat_i16_m128i(1)).into();
    // At most 255, and no leading zero ("01" is not accepted by std): at least 10 with two
    // digits, 100 with three.
    const LEAST: [i32; 4] = [0, 0, 10, 100];
    let mut octets = [0u8; 4];
    for ((octet, value), len) in octets.iter_mut().zip(values).zip(lens) {
        let least = LEAST.get(len.min(3) as usize).copied().unwrap_or(0);
        ok &= (value <= 255) & (value >= least);
        *octet = value as u8;
    }
    ok.then(|| Ipv4Addr::from(octets))
}

/// The byte shuffles of [`fast_ipv4`], one for each combination of the four octets' lengths
/// (`(l1 - 1) + 3 (l2 - 1) + 9 (l3 - 1) + 27 (l4 - 1)`): lane k (bytes `4k..4k+4`) takes octet
/// k's hundreds, tens and ones into its last three bytes, right-aligned; 0x80 zeroes a byte.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
const QUAD_SHUFFLES: [[u8; 16]; 81] = {
    let mut table = [[0x80u8; 16]; 81];
    let mut pattern = 0;
    while pattern < 81 {
        let lens = [pattern % 3 + 1, pattern / 3 % 3 + 1, pattern / 9 % 3 + 1, pattern / 27 + 1];
        let (mut start, mut k) = (0, 0);
        while k < 4 {
            let len = lens[k];
            table[pattern][4 * k + 3] = (start + len - 1) as u8;
            if len >= 2 {
                table[pattern][4 * k + 2] = (start + len - 2) as u8;
            }
            if len == 3 {
                table[pattern][4 * k + 1] = (start + len - 3) as u8;
            }
            start += len + 1;
            k += 1;
        }
        pattern += 1;
    }
    table
};

/// The 7 to 15 bytes of an address, little-endian, zero past the end: two overlapping 8-byte
/// loads when there are eight or more (all but `d.d.d.d`).
#[inline(always)]
fn quad_bytes(b: &[u8]) -> u128 {
    let n = b.len();
    match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(head), Some(last)) if n <= 16 => {
            // Bytes 8.. are the top `n - 8` bytes of the last eight. (In two shifts: with eight
            // bytes the distance is 64, which one shift can't take.)
            let past = 8 * (n as u32 - 8);
            let tail = (u64::from_le_bytes(*last) >> 1) >> (63 - past);
            u128::from(u64::from_le_bytes(*head)) | u128::from(tail) << 64
        }
        _ => {
            let mut short = [0u8; 16];
            if let Some(into) = short.get_mut(..n) {
                into.copy_from_slice(b);
            }
            u128::from_le_bytes(short)
        }
    }
}

/// [`fast_ipv4_words`] where there are no vector shuffles.
#[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
#[inline]
fn fast_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    fast_ipv4_words(b)
}

/// Sixteen bytes, one in each byte of a `u128` (the SWAR constants below).
const BYTES_1: u128 = u128::MAX / 0xff;
/// The high bit of every byte.
const BYTES_HIGH: u128 = BYTES_1 * 0x80;
/// The low seven bits of every byte.
const BYTES_LOW7: u128 = BYTES_1 * 0x7f;

/// [`fast_ipv4`] without vector shuffles (processors without SSSE3, and the reference the vector
/// version is tested against). The whole address is read as one 16-byte word and checked and
/// split with word arithmetic, without a branch per octet: the octets' lengths vary from row to
/// row, and the octet-by-octet loop this replaces spent more time in mispredicted branches than
/// in its instructions.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "ssse3"), allow(dead_code))]
#[inline]
fn fast_ipv4_words(b: &[u8]) -> Option<Ipv4Addr> {
    let n = b.len();
    if !(7..=15).contains(&n) {
        return None;
    }
    // The bytes, with '0' past the end (so that the digit check passes them).
    let past_end = u128::MAX.wrapping_shl(8 * n as u32);
    let v = quad_bytes(b) | (past_end & (BYTES_1 * u128::from(b'0')));
    // 0x80 in each byte that is a dot (exact: no carry crosses a byte).
    let t = v ^ (BYTES_1 * u128::from(b'.'));
    let dots = !(((t & BYTES_LOW7) + BYTES_LOW7) | t | BYTES_LOW7);
    // Dots become '0' (0x2e + 2), then every byte must be a digit.
    let v = v + (dots >> 6);
    let below = v.wrapping_sub(BYTES_1 * u128::from(b'0')) & !v & BYTES_HIGH;
    let above = (v.wrapping_add(BYTES_1 * u128::from(127 - b'9')) | v) & BYTES_HIGH;
    let digits = v.wrapping_sub(BYTES_1 * u128::from(b'0')).to_le_bytes();
    // The three dots' places (16 when missing: the length checks below then fail).
    let p1 = dots.trailing_zeros() / 8;
    let rest = dots & dots.wrapping_sub(1);
    let p2 = rest.trailing_zeros() / 8;
    let rest = rest & rest.wrapping_sub(1);
    let p3 = rest.trailing_zeros() / 8;
    let rest = rest & rest.wrapping_sub(1);
    let mut ok = (below | above | rest) == 0;
    // A digit's value (any byte, when the checks have failed: the index stays in the array).
    let digit = |i: u32| u32::from(digits[(i & 15) as usize]);
    let mut octets = [0u8; 4];
    let spans = [(0, p1), (p1 + 1, p2), (p2 + 1, p3), (p3 + 1, n as u32)];
    for (octet, (from, to)) in octets.iter_mut().zip(spans) {
        let len = to.wrapping_sub(from);
        let first = digit(from);
        let two = first * 10 + digit(from + 1);
        let three = two * 10 + digit(from + 2);
        // Chosen by masks: an `if` here compiles to a branch per octet, mispredicted as often as
        // the lengths change.
        let (at_least_two, three_digits) = (u32::from(len >= 2).wrapping_neg(), u32::from(len == 3).wrapping_neg());
        let value = first ^ ((first ^ two) & at_least_two);
        let value = value ^ ((value ^ three) & three_digits);
        // One to three digits, no leading zero ("01" is not accepted by std), at most 255.
        ok &= (len.wrapping_sub(1) < 3) & ((len == 1) | (first != 0)) & (value <= 255);
        *octet = value as u8;
    }
    ok.then(|| Ipv4Addr::from(octets))
}

#[inline(always)]
fn source_ip<'a>(raw: impl Field<'a>, cache: &mut DayCache) -> Result<IpAddr, RowError> {
    if let Some(ip) = fast_ipv4(raw.bytes()) {
        return Ok(IpAddr::V4(ip));
    }
    cache.address(raw)
}

/// Two digits at `i`: `None` unless both are ASCII digits.
fn d2(b: &[u8], i: usize) -> Option<i64> {
    let (hi, lo) = (b.get(i)?.wrapping_sub(b'0'), b.get(i + 1)?.wrapping_sub(b'0'));
    if hi > 9 || lo > 9 {
        return None;
    }
    Some(i64::from(hi * 10 + lo))
}

/// The last date and offset [`fast_rfc3339`] read in the `YYYY-MM-DDTHH:MM:SS+HH:MM` shape, and
/// the second they start at: rows come roughly in time order, so nearly every time repeats them
/// and only the clock time needs reading. The result is the same number `fast_rfc3339` computes
/// (`days * 86400 - offset` plus the time of day, with the same checks of the time of day).
#[derive(Debug, Clone, Default)]
pub struct DayCache {
    /// Bytes 0..8 of the last time read (`YYYY-MM-`), little-endian.
    head: u64,
    /// Bytes 7..11 (`-DDT`).
    day: u32,
    /// Bytes 19..25 (the offset), shifted down from the word of bytes 17..25.
    offset: u64,
    /// Its date at 00:00:00 in its offset, in Unix seconds; `None` before the first time.
    base: Option<i64>,
    /// Source addresses the general parser read (see [`DayCache::address`]).
    addresses: FxHashMap<Box<[u8]>, IpAddr>,
}

/// Bytes of an `HH:MM:SS` clock (little-endian `u64`) that must be digits: all but the colons.
const CLOCK_DIGITS: u64 = 0xffff_00ff_ff00_ffff;
/// The two colons of `HH:MM:SS` at their places.
const CLOCK_COLONS: u64 = (b':' as u64) << 16 | (b':' as u64) << 40;
/// `'0'` in every digit byte.
const CLOCK_ZEROS: u64 = 0x3030_0030_3000_3030;
/// At most this many addresses are remembered; the map is emptied when full (memory stays bounded).
const ADDRESS_CACHE: usize = 1 << 16;

/// The little-endian word of `N` bytes of `b` from `at` (`at + N` ≤ 25, so it is never `None` and
/// compiles to one load).
fn word<const N: usize>(b: &[u8; 25], at: usize) -> [u8; N] {
    b.get(at..).and_then(|r| r.first_chunk::<N>()).copied().unwrap_or([0; N])
}

impl DayCache {
    /// The date and offset of a 25-byte time, as three words: bytes 0..8, 7..11 (which holds the
    /// `T`, so a match also checks it) and 19..25 (from the word of bytes 17..25, without the
    /// seconds).
    #[inline(always)]
    fn key(b: &[u8; 25]) -> (u64, u32, u64) {
        (u64::from_le_bytes(word(b, 0)), u32::from_le_bytes(word(b, 7)), u64::from_le_bytes(word(b, 17)) >> 16)
    }

    /// The time of day of `HH:MM:SS` in seconds, read as one little-endian word: the bytes are
    /// checked (digits and colons) and the fields (hours ≤ 23, minutes and seconds ≤ 59) exactly as
    /// [`d2`] and [`fast_rfc3339`] check them, without a branch per byte (a test compares them).
    #[inline(always)]
    fn clock(b: [u8; 8]) -> Option<i64> {
        let v = u64::from_le_bytes(b);
        if v & !CLOCK_DIGITS != CLOCK_COLONS {
            return None;
        }
        let d = v & CLOCK_DIGITS;
        // A byte is a digit when its high nibble is 3 and adding 6 keeps it so (0x30..=0x39); no
        // carry crosses bytes (0x3f + 6 < 0x100).
        const HIGH: u64 = 0xf0f0_00f0_f000_f0f0;
        if d & HIGH != CLOCK_ZEROS || (d + 0x0606_0006_0600_0606) & HIGH != CLOCK_ZEROS {
            return None;
        }
        let x = d - CLOCK_ZEROS;
        let byte = |i: u32| ((x >> (8 * i)) & 0xff) as i64;
        let (h, mi, sec) = (byte(0) * 10 + byte(1), byte(3) * 10 + byte(4), byte(6) * 10 + byte(7));
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        Some(h * 3600 + mi * 60 + sec)
    }

    /// `fast_rfc3339(b)`, from the cache when the date and offset are the last ones.
    #[inline(always)]
    fn parse(&mut self, b: &[u8]) -> Option<Timestamp> {
        if let (Ok(b25), Some(base)) = (<&[u8; 25]>::try_from(b), self.base) {
            if Self::key(b25) == (self.head, self.day, self.offset) {
                return Timestamp::from_second(base + Self::clock(word(b25, 11))?).ok();
            }
        }
        self.parse_new_day(b)
    }

    /// A time whose date or offset differs from the last one's: the full fast parser, which then
    /// becomes the cache.
    #[cold]
    #[inline(never)]
    fn parse_new_day(&mut self, b: &[u8]) -> Option<Timestamp> {
        let t = fast_rfc3339(b)?;
        let Ok(b25) = <&[u8; 25]>::try_from(b) else { return Some(t) };
        let (h, mi, sec) = (d2(b, 11)?, d2(b, 14)?, d2(b, 17)?);
        (self.head, self.day, self.offset) = Self::key(b25);
        self.base = Some(t.as_second() - (h * 3600 + mi * 60 + sec));
        Some(t)
    }

    /// A source address that is not a canonical dotted quad (IPv6, mostly), through the general
    /// parser once per distinct text: the standard parser costs over a thousand instructions per
    /// IPv6 address and a line keeps its address across its calls. Only successes are kept, keyed
    /// by the exact bytes, so the result is the parser's.
    fn address<'a>(&mut self, raw: impl Field<'a>) -> Result<IpAddr, RowError> {
        if let Some(ip) = self.addresses.get(raw.bytes()) {
            return Ok(*ip);
        }
        let ip: IpAddr = text(raw, "source_ip")?.parse().map_err(|_| RowError::SourceIp)?;
        if self.addresses.len() >= ADDRESS_CACHE {
            self.addresses.clear();
        }
        self.addresses.insert(raw.bytes().into(), ip);
        Ok(ip)
    }
}

/// The one shape billing exports write, `YYYY-MM-DDTHH:MM:SS+HH:MM` (or `Z`), in a few dozen
/// instructions instead of a general parser's several hundred: two of these per row are a third of
/// a replay's parsing time. Anything else (fractions, lower-case `t`, leap seconds) returns `None`
/// and goes to jiff, which stays the reference (a test checks both agree).
fn fast_rfc3339(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (d2(b, 0)? * 100 + d2(b, 2)?, d2(b, 5)?, d2(b, 8)?);
    let (h, mi, sec) = (d2(b, 11)?, d2(b, 14)?, d2(b, 17)?);
    let offset = match (b.len(), b[19]) {
        (20, b'Z') => 0,
        (25, sign @ (b'+' | b'-')) if b[22] == b':' => {
            let (oh, om) = (d2(b, 20)?, d2(b, 23)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > *month_days.get(usize::try_from(mo - 1).ok()?)? {
        return None;
    }
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (H. Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Timestamp::from_second(days * 86_400 + h * 3600 + mi * 60 + sec - offset).ok()
}

/// A valid row whose text fields are borrowed from the reader's buffer: most rows (domestic
/// calls) are used once and never need owned strings; [`CdrRef::to_cdr`] makes the owned [`Cdr`].
/// The text fields are bytes, always valid UTF-8 (checked, or printable ASCII): a domestic row
/// only hashes and compares them, so they are never converted to `str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdrRef<'a> {
    /// The switch's call id.
    pub call_id: &'a [u8],
    /// When the call was placed.
    pub start: Timestamp,
    /// When it ended (= `start` when unanswered).
    pub end: Timestamp,
    /// The subscriber line that is billed.
    pub line_id: &'a [u8],
    /// The calling number as presented.
    pub calling_number: &'a [u8],
    /// The number dialled, as dialled.
    pub called_number: &'a [u8],
    /// Where it goes.
    pub destination: Destination,
    /// The SIP client that placed the call.
    pub source_ip: IpAddr,
    /// The charge in yen.
    pub charge_jpy: u64,
}

impl CdrRef<'_> {
    /// Is it a call abroad?
    pub fn is_international(&self) -> bool {
        matches!(self.destination, Destination::International(_))
    }

    /// The owned record.
    pub fn to_cdr(&self) -> Cdr {
        // The fields are UTF-8 (see above), so the lossy conversion never replaces anything.
        let text = |b: &[u8]| SmolStr::new(String::from_utf8_lossy(b));
        Cdr {
            call_id: text(self.call_id),
            start: self.start,
            end: self.end,
            line_id: text(self.line_id),
            calling_number: text(self.calling_number),
            called_number: text(self.called_number),
            destination: self.destination,
            source_ip: self.source_ip,
            charge_jpy: self.charge_jpy,
        }
    }
}

/// Parses one data row.
pub fn parse_row(record: &csv::ByteRecord, plan: &NumberingPlan) -> Result<Cdr, RowError> {
    if record.len() != super::COLUMNS.len() {
        return Err(RowError::FieldCount(record.len()));
    }
    let fields: [&[u8]; 8] = std::array::from_fn(|i| record.get(i).unwrap_or_default());
    parse_fields(&fields, plan, &mut DayCache::default()).map(|c| c.to_cdr())
}

/// Parses the eight fields of one data row (the reader checks the count). The checks run in a
/// fixed order, so a row with several faults always reports the same one.
#[inline]
pub fn parse_fields<'a, F: Field<'a>>(
    f: &[F; 8],
    plan: &NumberingPlan,
    days: &mut DayCache,
) -> Result<CdrRef<'a>, RowError> {
    let start = time(f[1], "start_time", days)?;
    let end = time(f[2], "end_time", days)?;
    if end < start {
        return Err(RowError::EndsBeforeStart);
    }
    let called_number = ident_bytes(f[5], "called_number")?;
    let destination = plan.classify_bytes(called_number).map_err(RowError::CalledNumber)?;
    let source_ip = source_ip(f[6], days)?;
    let charge_jpy = charge(f[7])?;
    if end == start && charge_jpy > 0 {
        return Err(RowError::ChargedButUnanswered);
    }
    Ok(CdrRef {
        call_id: ident_bytes(f[0], "call_id")?,
        start,
        end,
        line_id: ident_bytes(f[3], "line_id")?,
        calling_number: ident_bytes(f[4], "calling_number")?,
        called_number,
        destination,
        source_ip,
        charge_jpy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbering::{CountryCode, Destination};

    fn row(fields: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(fields.to_vec())
    }

    const GOOD: [&str; 8] = [
        "c1",
        "2026-11-20T01:02:03+09:00",
        "2026-11-20T01:07:03+09:00",
        "L0001",
        "0312345678",
        "01088216000000",
        "198.51.100.7",
        "1500",
    ];

    #[test]
    fn good_row() {
        let plan = NumberingPlan::new();
        let c = parse_row(&row(&GOOD), &plan).unwrap();
        assert_eq!(c.destination, Destination::International(CountryCode(882)));
        assert_eq!(c.charge_jpy, 1500);
        assert_eq!(c.end.duration_since(c.start).as_secs(), 300);
    }

    #[test]
    fn fast_time_path_agrees_with_jiff() {
        for s in [
            "2026-11-20T01:02:03+09:00",
            "2026-02-28T23:59:59-03:30",
            "2024-02-29T00:00:00Z",
            "1999-12-31T15:00:00+00:00",
            "2100-03-01T12:00:00+14:00",
        ] {
            assert_eq!(fast_rfc3339(s.as_bytes()), Some(s.parse::<Timestamp>().unwrap()), "{s}");
        }
        for s in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T01:02:03",
            "2026-11-20T01:02:03.5Z",
            "2026-11-20T01:02:03+9:00",
        ] {
            assert_eq!(fast_rfc3339(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn the_day_cache_gives_what_the_fast_parser_gives() {
        let mut days = DayCache::default();
        let times = [
            "2026-11-20T01:02:03+09:00",
            "2026-11-20T23:59:59+09:00",
            "2026-11-20T24:00:00+09:00",
            "2026-11-20T01:60:00+09:00",
            "2026-11-20T1:02:03+09:00 ",
            "2026-11-20 01:02:03+09:00",
            "2026-11-20T01:02:03-09:00",
            "2026-11-21T00:00:00+09:00",
            "2026-11-21T00:00:00Z",
            "2026-11-21T00:0a:00+09:00",
            "2026-02-29T00:00:00+09:00",
            "2026-02-28T12:00:00+09:00",
            "2026-02-28T12:00:00+09:00",
        ];
        for s in times.iter().chain(times.iter().rev()) {
            assert_eq!(days.parse(s.as_bytes()), fast_rfc3339(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn the_word_clock_reads_what_the_digit_pairs_read() {
        // The reference: the checks `fast_rfc3339` makes of `HH:MM:SS`, one byte pair at a time.
        fn reference(b: &[u8; 8]) -> Option<i64> {
            let full = [b"2026-11-20T".as_slice(), b.as_slice()].concat();
            if full[13] != b':' || full[16] != b':' {
                return None;
            }
            let (h, mi, sec) = (d2(&full, 11)?, d2(&full, 14)?, d2(&full, 17)?);
            (h <= 23 && mi <= 59 && sec <= 59).then_some(h * 3600 + mi * 60 + sec)
        }
        let odd = [b'0', b'9', b'/', b':', b';', b'a', b' ', 0x80, 0xb0, 0x39 + 0x80, 0x00, 0xff];
        let mut n = 0;
        for h in 0..=99u32 {
            for m in [0u32, 5, 9, 10, 23, 59, 60, 61, 99] {
                for sec in [0u32, 1, 30, 59, 60, 75, 99] {
                    let text = format!("{h:02}:{m:02}:{sec:02}");
                    let b: [u8; 8] = text.as_bytes().try_into().unwrap();
                    assert_eq!(DayCache::clock(b), reference(&b), "{text}");
                    // Every byte replaced by something unusual, one at a time.
                    for i in 0..8 {
                        for o in odd {
                            let mut c = b;
                            c[i] = o;
                            assert_eq!(DayCache::clock(c), reference(&c), "{c:?}");
                            n += 1;
                        }
                    }
                }
            }
        }
        assert!(n > 400_000);
    }

    #[test]
    fn the_address_cache_gives_what_the_parser_gives() {
        let mut cache = DayCache::default();
        for s in ["2001:db8::1", " 2001:db8::1", "2001:db8::1 ", "::ffff:192.0.2.1", "::", "2001:db8::g", "", "  "] {
            for _ in 0..2 {
                let expect = text(s, "source_ip").and_then(|t| t.parse::<IpAddr>().map_err(|_| RowError::SourceIp));
                assert_eq!(source_ip(s, &mut cache), expect, "{s:?}");
            }
        }
        assert_eq!(source_ip("192.0.2.1", &mut cache), Ok("192.0.2.1".parse().unwrap()));
    }

    /// Every string over `alphabet` of at most `max_len` bytes, shortest first.
    fn every_string(alphabet: &'static [u8], max_len: u32) -> impl Iterator<Item = Vec<u8>> {
        (0..=max_len).flat_map(move |len| {
            (0..alphabet.len().pow(len)).map(move |mut code| {
                let mut s = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    s.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                s
            })
        })
    }

    #[test]
    fn short_charges_read_as_the_general_path_reads_them() {
        // Every string of up to five bytes over digits, a sign, a space and a letter.
        let mut read = 0;
        for s in every_string(b"01589+ a", 5) {
            let text = std::str::from_utf8(&s).unwrap();
            let plain = !s.is_empty() && s.iter().all(u8::is_ascii_digit);
            match short_charge(&s) {
                Some(v) => {
                    assert!(plain && s.len() <= 4, "{text:?}");
                    assert_eq!(Some(v), text.parse::<u64>().ok(), "{text:?}");
                    read += 1;
                }
                None => assert!(!plain || s.len() > 4, "{text:?}"),
            }
            assert_eq!(charge(s.as_slice()).ok(), text.trim().parse::<u64>().ok(), "{text:?}");
        }
        assert_eq!(read, 5 + 25 + 125 + 625, "every plain charge of one to four digits");
    }

    #[test]
    fn fast_ipv4_agrees_with_std() {
        // Both versions (the vector one where the processor has it) give the same answer.
        let fast_quad = |b: &[u8]| {
            let answer = fast_ipv4(b);
            assert_eq!(answer, fast_ipv4_words(b), "{:?}", String::from_utf8_lossy(b));
            answer
        };
        let cases = [
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "1.2.3.1000",
            "1.2.3.a",
            "",
            "::1",
            "10.0.0.255",
            "1.0.0.0",
            "100.200.250.99",
            "0.1.2.3",
            "00.1.2.3",
            "+1.2.3.4",
        ];
        for s in cases {
            let std = s.parse::<Ipv4Addr>().ok();
            let fast = fast_quad(s.as_bytes());
            assert!(fast.is_none() || fast == std, "{s}: {fast:?} vs {std:?}");
            if s.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
                assert_eq!(fast, std, "{s}");
            }
        }
        for a in (0..=300u32).step_by(7) {
            let s = format!("{a}.{}.{}.{}", 300 - a, a / 2, a % 256);
            assert_eq!(fast_quad(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{s}");
        }
        // Every string of digits and dots up to nine bytes long over a few digits: std accepts
        // exactly the canonical quads, and so must the fast path.
        let mut n = 0;
        for s in every_string(b"0259.", 9) {
            let std = std::str::from_utf8(&s).unwrap().parse::<Ipv4Addr>().ok();
            assert_eq!(fast_quad(&s), std, "{:?}", String::from_utf8_lossy(&s));
            n += usize::from(std.is_some());
        }
        assert!(n > 1000, "{n}");
        // Longer strings (every length the fast path reads, and beyond), sampled: digits, dots,
        // a letter, a space and a byte that is not ASCII.
        let alphabet = b"0123456789..\xc3a ";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut accepted = 0;
        for i in 0..400_000usize {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 6 + i % 12;
            let mut r = state;
            let mut s = Vec::with_capacity(len);
            for _ in 0..len {
                // Mostly digits and dots, so that many samples are quads.
                let pick = (r % 64) as usize;
                s.push(if pick < 44 {
                    alphabet[pick % 10]
                } else if pick < 60 {
                    b'.'
                } else {
                    alphabet[10 + pick % 4]
                });
                r = r.rotate_right(6) ^ state;
            }
            let std = std::str::from_utf8(&s).ok().and_then(|t| t.parse::<Ipv4Addr>().ok());
            assert_eq!(fast_quad(&s), std, "{:?}", String::from_utf8_lossy(&s));
            accepted += usize::from(std.is_some());
        }
        assert!(accepted > 1000, "{accepted}");
    }

    #[test]
    fn each_broken_field_names_itself() {
        let plan = NumberingPlan::new();
        let cases: [(usize, &str, &str); 7] = [
            (1, "yesterday", "start_time"),
            (2, "2026-11-20T01:00:00+09:00", "end_time is before"),
            (6, "not-an-ip", "source_ip"),
            (7, "12.5", "charge_jpy"),
            (7, "-3", "charge_jpy"),
            (5, "+0999", "called_number"),
            (1, "2026-11-20 01:02:03", "start_time"),
        ];
        for (i, value, expect) in cases {
            let mut f = GOOD;
            f[i] = value;
            let e = parse_row(&row(&f), &plan).unwrap_err().to_string();
            assert!(e.contains(expect), "{value}: {e}");
        }
        assert_eq!(parse_row(&row(&GOOD[..7]), &plan), Err(RowError::FieldCount(7)));
        let mut f = GOOD;
        f[2] = f[1];
        assert_eq!(parse_row(&row(&f), &plan), Err(RowError::ChargedButUnanswered));
    }
}
