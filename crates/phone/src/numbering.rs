//! Country calling codes of dialled numbers, from libphonenumber's metadata.
//!
//! The numbering plan comes from the `phonenumber` crate (Google's libphonenumber metadata). Parsing
//! every number with it would cost microseconds per call, so the build script asks it once for
//! every possible calling code (1–999) and [`NumberingPlan::new`] keeps a 1,000-entry table; ITU
//! calling codes are prefix-free, so the first 1–3 digits that hit the table are the code. (Asking
//! at run time would load and compile the whole metadata, some 0.2–0.3 s at every start; a test
//! checks the built table against the crate.)

use std::fmt;

use serde::{Serialize, Serializer};

/// An ITU-T E.164 country calling code (1–999), e.g. 44 for the United Kingdom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(pub u16);

impl CountryCode {
    /// Japan.
    pub const JAPAN: CountryCode = CountryCode(81);
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

/// Where a dialled number goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// A number in Japan (national `0…`, or `+81…`).
    Domestic,
    /// Abroad, with its calling code.
    International(CountryCode),
}

/// Why a dialled number could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Empty.
    #[error("empty number")]
    Empty,
    /// A character other than digits (and one leading `+`).
    #[error("`{0}` is not a dialled number (digits, optionally a leading +)")]
    NotDigits(String),
    /// International prefix or `+` with no assigned calling code after it.
    #[error("`{0}` has no assigned country calling code")]
    UnknownCountryCode(String),
    /// Doesn't start with `0` or `+`.
    #[error("`{0}` starts neither with 0 (as dialled in Japan) nor with + (E.164)")]
    NoPrefix(String),
}

/// The table of assigned calling codes.
#[derive(Clone)]
pub struct NumberingPlan {
    assigned: Box<[bool; 1000]>,
}

impl fmt::Debug for NumberingPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NumberingPlan").field("codes", &self.assigned.iter().filter(|a| **a).count()).finish()
    }
}

impl Default for NumberingPlan {
    fn default() -> Self {
        Self::new()
    }
}

include!(concat!(env!("OUT_DIR"), "/assigned_codes.rs"));

/// `b.iter().all(u8::is_ascii_digit)`, eight bytes at a time: a byte is a digit when its high
/// nibble is 3 and adding 6 keeps it so (0x30..=0x39; no carry crosses bytes, as 0x3f + 6 < 0x100).
/// Every row's dialled number goes through it.
///
/// A number of 8 to 16 bytes (every number in Japan, with or without its prefix) is read as two
/// overlapping words, without a loop: the loop's exit, after 10 digits on one row and 11 on the
/// next, was a mispredicted branch on most rows.
#[inline]
fn all_digits(b: &[u8]) -> bool {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const SIX: u64 = 0x0606_0606_0606_0606;
    let digits = |c: &[u8; 8]| {
        let w = u64::from_le_bytes(*c);
        (w & HIGH == ZEROS) & (w.wrapping_add(SIX) & HIGH == ZEROS)
    };
    if let (Some(head), Some(last), true) = (b.first_chunk::<8>(), b.last_chunk::<8>(), b.len() <= 16) {
        return digits(head) & digits(last);
    }
    let mut words = b.chunks_exact(8);
    let whole = words.by_ref().all(|c| c.first_chunk::<8>().is_some_and(digits));
    whole && words.remainder().iter().all(u8::is_ascii_digit)
}

/// Japan's international call prefix (国際プレフィックス).
const JAPAN_INTERNATIONAL_PREFIX: &str = "010";

impl NumberingPlan {
    /// Builds the table from libphonenumber's metadata (read at build time).
    pub fn new() -> Self {
        let mut assigned = Box::new([false; 1000]);
        for code in ASSIGNED_CODES {
            if let Some(slot) = assigned.get_mut(usize::from(*code)) {
                *slot = true;
            }
        }
        NumberingPlan { assigned }
    }

    /// Is `code` an assigned calling code?
    pub fn is_assigned(&self, code: u16) -> bool {
        self.assigned.get(usize::from(code)).copied().unwrap_or(false)
    }

    /// The ISO 3166 regions of a calling code (e.g. `["GB", "GG", "IM", "JE"]` for 44).
    pub fn regions(code: CountryCode) -> Vec<String> {
        phonenumber::metadata::DATABASE
            .region(&code.0)
            .map(|r| r.into_iter().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Classifies a number as dialled in Japan (`0…` national, `010CC…` international) or E.164
    /// (`+CC…`).
    pub fn classify(&self, dialled: &str) -> Result<Destination, NumberError> {
        self.classify_bytes(dialled.as_bytes())
    }

    /// [`NumberingPlan::classify`] on the bytes of a number (the CDR reader's fields are bytes
    /// already checked to be UTF-8; an error shows them as text).
    #[inline(always)]
    pub fn classify_bytes(&self, bytes: &[u8]) -> Result<Destination, NumberError> {
        let dialled = || String::from_utf8_lossy(bytes).into_owned();
        let (first, rest) = match bytes.split_first() {
            None => return Err(NumberError::Empty),
            Some(x) => x,
        };
        let digits = if *first == b'+' { rest } else { bytes };
        if digits.is_empty() || !all_digits(digits) {
            return Err(NumberError::NotDigits(dialled()));
        }
        let international = if *first == b'+' {
            digits
        } else if let Some(after) = digits.strip_prefix(JAPAN_INTERNATIONAL_PREFIX.as_bytes()) {
            after
        } else if *first == b'0' {
            return Ok(Destination::Domestic);
        } else {
            return Err(NumberError::NoPrefix(dialled()));
        };
        if international.first() == Some(&b'0') {
            return Err(NumberError::UnknownCountryCode(dialled()));
        }
        let mut code: u16 = 0;
        for d in international.iter().take(3) {
            code = code * 10 + u16::from(d - b'0');
            if self.is_assigned(code) {
                return Ok(if code == CountryCode::JAPAN.0 {
                    Destination::Domestic
                } else {
                    Destination::International(CountryCode(code))
                });
            }
        }
        Err(NumberError::UnknownCountryCode(dialled()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_digit_check_is_the_byte_check() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'7'; len];
                    v[at] = b;
                    assert_eq!(all_digits(&v), v.iter().all(u8::is_ascii_digit), "{v:?}");
                }
            }
        }
    }

    #[test]
    fn japanese_dialling_and_e164() {
        let plan = NumberingPlan::new();
        let intl = |n| match plan.classify(n) {
            Ok(Destination::International(c)) => c.0,
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(intl("0104420794601234"), 44);
        assert_eq!(intl("+442079460123"), 44);
        assert_eq!(intl("0101212555000"), 1);
        assert_eq!(intl("01088216000000"), 882);
        assert_eq!(intl("+5371234567"), 53);
        assert_eq!(intl("+37167000000"), 371);
        assert_eq!(intl("01025261000000"), 252);
        assert_eq!(plan.classify("0312345678"), Ok(Destination::Domestic));
        assert_eq!(plan.classify("+81312345678"), Ok(Destination::Domestic));
        assert_eq!(plan.classify("09012345678"), Ok(Destination::Domestic));
    }

    #[test]
    fn the_built_table_is_the_crate_metadata() {
        let db = &*phonenumber::metadata::DATABASE;
        let plan = NumberingPlan::new();
        for code in 0u16..1000 {
            let assigned = code > 0 && db.region(&code).is_some_and(|r| !r.is_empty());
            assert_eq!(plan.is_assigned(code), assigned, "calling code {code}");
        }
        assert!(plan.is_assigned(81) && plan.is_assigned(1) && plan.is_assigned(882));
    }

    #[test]
    fn garbage_is_an_error_not_a_guess() {
        let plan = NumberingPlan::new();
        assert!(matches!(plan.classify(""), Err(NumberError::Empty)));
        assert!(matches!(plan.classify("03-1234"), Err(NumberError::NotDigits(_))));
        assert!(matches!(plan.classify("12345"), Err(NumberError::NoPrefix(_))));
        assert!(matches!(plan.classify("+"), Err(NumberError::NotDigits(_))));
        // 0 and 80 are not assigned: 800 is (international freephone), 8 alone is not.
        assert!(matches!(plan.classify("+0123"), Err(NumberError::UnknownCountryCode(_))));
        assert!(matches!(
            plan.classify("010"),
            Err(NumberError::NotDigits(_)) | Err(NumberError::UnknownCountryCode(_))
        ));
        assert_eq!(NumberingPlan::regions(CountryCode(44)).first().map(String::as_str), Some("GB"));
    }
}
