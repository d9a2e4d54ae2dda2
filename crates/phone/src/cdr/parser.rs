//! One CSV row to one [`Cdr`]: a pure function, fuzzed (`fuzz/fuzz_targets/cdr_row.rs`).

use std::net::IpAddr;

use jiff::Timestamp;

use super::Cdr;
use crate::numbering::{NumberError, NumberingPlan};

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

fn text<'a>(record: &'a csv::ByteRecord, i: usize, name: &'static str) -> Result<&'a str, RowError> {
    let raw = record.get(i).ok_or(RowError::FieldCount(record.len()))?;
    let s = std::str::from_utf8(raw).map_err(|_| RowError::NotUtf8(name))?.trim();
    if s.is_empty() {
        return Err(RowError::Empty(name));
    }
    Ok(s)
}

fn ident(record: &csv::ByteRecord, i: usize, name: &'static str) -> Result<smol_str::SmolStr, RowError> {
    let s = text(record, i, name)?;
    if s.len() > MAX_FIELD || s.chars().any(char::is_control) {
        return Err(RowError::NotUtf8(name));
    }
    Ok(smol_str::SmolStr::new(s))
}

fn time(record: &csv::ByteRecord, i: usize, name: &'static str) -> Result<Timestamp, RowError> {
    let s = text(record, i, name)?;
    if let Some(t) = fast_rfc3339(s.as_bytes()) {
        return Ok(t);
    }
    // jiff's Timestamp parser requires an offset (or Z), which is what the format asks for.
    s.parse::<Timestamp>().map_err(|_| RowError::Time { column: name, value: s.chars().take(40).collect() })
}

/// The one shape billing exports write, `YYYY-MM-DDTHH:MM:SS+HH:MM` (or `Z`), in a few dozen
/// instructions instead of a general parser's several hundred: two of these per row are a third of
/// a replay's parsing time. Anything else (fractions, lower-case `t`, leap seconds) returns `None`
/// and goes to jiff, which stays the reference (a test checks both agree).
fn fast_rfc3339(b: &[u8]) -> Option<Timestamp> {
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let offset = match (b.len(), b[19]) {
        (20, b'Z') => 0,
        (25, sign @ (b'+' | b'-')) if b[22] == b':' => {
            let (oh, om) = (digits(20..22)?, digits(23..25)?);
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

/// Parses one data row.
pub fn parse_row(record: &csv::ByteRecord, plan: &NumberingPlan) -> Result<Cdr, RowError> {
    if record.len() != super::COLUMNS.len() {
        return Err(RowError::FieldCount(record.len()));
    }
    let start = time(record, 1, "start_time")?;
    let end = time(record, 2, "end_time")?;
    if end < start {
        return Err(RowError::EndsBeforeStart);
    }
    let called_number = ident(record, 5, "called_number")?;
    let destination = plan.classify(&called_number).map_err(RowError::CalledNumber)?;
    let source_ip: IpAddr = text(record, 6, "source_ip")?.parse().map_err(|_| RowError::SourceIp)?;
    let charge_jpy: u64 = text(record, 7, "charge_jpy")?.parse().map_err(|_| RowError::Charge)?;
    if end == start && charge_jpy > 0 {
        return Err(RowError::ChargedButUnanswered);
    }
    Ok(Cdr {
        call_id: ident(record, 0, "call_id")?,
        start,
        end,
        line_id: ident(record, 3, "line_id")?,
        calling_number: ident(record, 4, "calling_number")?,
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
