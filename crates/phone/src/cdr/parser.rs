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

fn ident(record: &csv::ByteRecord, i: usize, name: &'static str) -> Result<String, RowError> {
    let s = text(record, i, name)?;
    if s.len() > MAX_FIELD || s.chars().any(char::is_control) {
        return Err(RowError::NotUtf8(name));
    }
    Ok(s.to_owned())
}

fn time(record: &csv::ByteRecord, i: usize, name: &'static str) -> Result<Timestamp, RowError> {
    let s = text(record, i, name)?;
    // jiff's Timestamp parser requires an offset (or Z), which is what the format asks for.
    s.parse::<Timestamp>().map_err(|_| RowError::Time { column: name, value: s.chars().take(40).collect() })
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
