//! Reads a CDR file row by row; a malformed row is an error with its line number, never fatal.

use std::io::Read;

use super::parser::{RowError, parse_row};
use super::{COLUMNS, Cdr};
use crate::numbering::NumberingPlan;

/// A row that could not be read, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct BadRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub error: RowError,
}

/// Errors that stop reading the file altogether.
#[derive(Debug, thiserror::Error)]
pub enum CdrFileError {
    /// The header is not mamori's CDR header.
    #[error(
        "line 1: the header must be `{}` (found `{found}`)",
        COLUMNS.join(",")
    )]
    Header {
        /// What the file has.
        found: String,
    },
    /// Reading failed (I/O).
    #[error("line {line}: cannot read: {detail}")]
    Io {
        /// Where.
        line: u64,
        /// Cause.
        detail: String,
    },
}

/// Streams CDRs out of CSV.
pub struct CdrReader<R: Read> {
    csv: csv::Reader<R>,
    record: csv::ByteRecord,
    plan: NumberingPlan,
    /// Rows read (good and bad).
    pub rows: u64,
    /// Malformed rows skipped.
    pub bad_rows: u64,
}

impl<R: Read> std::fmt::Debug for CdrReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdrReader").field("rows", &self.rows).field("bad_rows", &self.bad_rows).finish()
    }
}

impl<R: Read> CdrReader<R> {
    /// Checks the header and gets ready to read.
    pub fn new(input: R, plan: NumberingPlan) -> Result<Self, CdrFileError> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
        let header = csv.byte_headers().map_err(|e| CdrFileError::Io { line: 1, detail: e.to_string() })?;
        let found: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').to_owned())
            .collect();
        if found.len() != COLUMNS.len() || found.iter().zip(COLUMNS).any(|(a, b)| a != b) {
            return Err(CdrFileError::Header { found: found.join(",").chars().take(200).collect() });
        }
        Ok(CdrReader { csv, record: csv::ByteRecord::new(), plan, rows: 0, bad_rows: 0 })
    }

    /// The next row: `None` at the end, `Some(Err(BadRow))` for a malformed row (skip it and
    /// go on), `Err` when the file itself can't be read any further.
    pub fn next_row(&mut self) -> Result<Option<Result<Cdr, BadRow>>, CdrFileError> {
        match self.csv.read_byte_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.rows += 1;
                let line = self.record.position().map(|p| p.line()).unwrap_or(self.rows + 1);
                Ok(Some(parse_row(&self.record, &self.plan).map_err(|error| {
                    self.bad_rows += 1;
                    BadRow { line, error }
                })))
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(self.rows + 1);
                match e.kind() {
                    // A broken quote or similar: the csv reader has already moved past it.
                    csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. } => {
                        self.rows += 1;
                        self.bad_rows += 1;
                        Ok(Some(Err(BadRow { line, error: RowError::FieldCount(0) })))
                    }
                    _ => Err(CdrFileError::Io { line, detail: e.to_string() }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy\n";

    #[test]
    fn bad_rows_are_reported_with_line_numbers_and_skipped() {
        let data = format!(
            "{HEADER}c1,2026-11-20T01:00:00+09:00,2026-11-20T01:01:00+09:00,L1,0311112222,0104420794601,192.0.2.1,120\n\
             c2,garbage\n\
             c3,2026-11-20T01:00:00+09:00,2026-11-20T01:01:00+09:00,L1,0311112222,0104420794601,192.0.2.1,12x\n\
             c4,2026-11-20T01:00:00+09:00,2026-11-20T01:00:00+09:00,L2,0311113333,0312345678,192.0.2.2,0\n"
        );
        let mut r = CdrReader::new(data.as_bytes(), NumberingPlan::new()).unwrap();
        let mut good = vec![];
        let mut bad = vec![];
        while let Some(row) = r.next_row().unwrap() {
            match row {
                Ok(c) => good.push(c.call_id),
                Err(b) => bad.push(b.to_string()),
            }
        }
        assert_eq!(good, ["c1", "c4"]);
        assert_eq!(bad.len(), 2);
        assert!(bad[0].starts_with("line 3:"), "{bad:?}");
        assert!(bad[1].starts_with("line 4:") && bad[1].contains("charge_jpy"), "{bad:?}");
        assert_eq!((r.rows, r.bad_rows), (4, 2));
    }

    #[test]
    fn wrong_header_is_refused() {
        let e = CdrReader::new("a,b,c\n1,2,3\n".as_bytes(), NumberingPlan::new()).unwrap_err();
        assert!(e.to_string().contains("line 1: the header must be"), "{e}");
    }
}
