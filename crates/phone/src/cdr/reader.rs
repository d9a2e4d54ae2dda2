//! Reads a CDR file row by row; a malformed row is an error with its line number, never fatal.

use std::io::Read;

use super::chunk::{CHUNK, masks};
use super::parser::{CdrRef, DayCache, Printable, RowError, parse_fields};
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

/// Bytes read from the input at a time: small enough that the block the kernel has just copied
/// is still in the core's second-level cache when its lines are split (4 MiB blocks were read
/// back from the last level: 1-3 % slower in alternated runs). Callers need no `BufReader`.
const BLOCK: usize = 256 << 10;

/// Longest line [`CdrReader::plain_line`] splits, in chunks: 256 bytes, twice a usual row.
const PLAIN_CHUNKS: usize = 4;

/// Where the bytes of the record just read are.
enum Record {
    /// `buf[start..end]`: one line without a quote or a carriage return; its fields are what lies
    /// between commas.
    Line(usize, usize, Scan),
    /// Parsed by `csv_core` into `out`, with this many fields.
    Parsed(usize),
    /// No more records.
    End,
}

/// Streams CDRs out of CSV.
///
/// The file is read in large blocks and split into lines here, which is several times cheaper than
/// the `csv` crate's byte-by-byte state machine: a plain line by the comma, newline and unusual-byte
/// masks of its 64-byte chunks (`cdr/chunk.rs`), others by a scan of their own. The state
/// machine is still what decides what a
/// row is: a line with a quote (quoted fields may hold commas, quotes and newlines) or a carriage
/// return (a line ending of its own for `csv`, in CRLF files too) is handed to `csv_core`, the
/// `csv` crate's own parser, with the same settings. Without either, a line's fields are exactly
/// its comma-separated pieces. Line numbers are counted as the `csv` crate counts them (one plus
/// the `\n`s consumed before the record, so a row after blank lines carries the number of the first
/// blank one), so malformed rows are reported with the same numbers as before (tests compare both
/// readers).
pub struct CdrReader<R: Read> {
    input: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// The `csv` crate's line number at `pos`.
    line: u64,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    plan: NumberingPlan,
    days: DayCache,
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

/// What one pass over a line found: where its first eight fields are (relative to the line), how
/// many fields it has, and which bytes it holds.
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// Where each of the first eight fields ends (its comma, or the end of the line); the next
    /// field starts one byte later. Offsets are `u32` (longer lines go to `csv_core`) so that a
    /// record is small enough to be returned in registers rather than copied.
    ends: [u32; 8],
    fields: usize,
    /// A quote or a carriage return: only `csv_core` may split this line.
    special: bool,
    /// Only printable ASCII (0x20–0x7e): valid UTF-8 without control characters.
    printable: bool,
}

/// The byte classes of a line, one byte at a time: bit 0 a quote or a carriage return, bit 1 a
/// byte that is not printable ASCII.
fn classes(line: &[u8]) -> u8 {
    line.iter().fold(0u8, |acc, b| {
        acc | u8::from(*b == b'"') | u8::from(*b == b'\r') | (u8::from(b.wrapping_sub(0x20) > 0x5e) << 1)
    })
}

/// Where the commas are, eight bytes at a time (SWAR): a vectorised search such as `memchr` costs
/// more per call than it saves on commas a dozen bytes apart, and a branch per byte costs more
/// than both. The line's bytes are then classified one by one. Lines that
/// [`CdrReader::plain_line`] does not split come here: rare, so this is not the fast path.
fn scan_line(line: &[u8]) -> Scan {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const COMMAS: u64 = ONES * b',' as u64;
    let Ok(len) = u32::try_from(line.len()) else {
        // Beyond the offsets' range: `csv_core` splits it.
        return Scan { ends: [0; 8], fields: 0, special: true, printable: false };
    };
    let mut ends = [0u32; 8];
    let mut n = 0usize;
    let mut comma = |i: usize| {
        if let Some(e) = ends.get_mut(n) {
            // i < len ≤ u32::MAX.
            *e = i as u32;
        }
        n += 1;
    };
    let chunks = line.chunks_exact(8);
    let tail = chunks.remainder();
    for (k, chunk) in chunks.enumerate() {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default()) ^ COMMAS;
        // 0x80 in exactly the bytes of x that are zero (the commas); no carry crosses bytes.
        let mut commas = !(((x & LOW7) + LOW7) | x | LOW7);
        while commas != 0 {
            comma(k * 8 + (commas.trailing_zeros() / 8) as usize);
            commas &= commas - 1;
        }
    }
    let base = line.len() - tail.len();
    for (j, b) in tail.iter().enumerate() {
        if *b == b',' {
            comma(base + j);
        }
    }
    if let Some(e) = ends.get_mut(n) {
        *e = len;
    }
    let classes = classes(line);
    Scan { ends, fields: n + 1, special: classes & 1 != 0, printable: classes & 2 == 0 }
}

/// The first eight fields of a scanned line: each from the byte after the previous field's end
/// to its own end. Written out rather than as `ends.map(…)`, which the compiler kept as a
/// function of its own (`try_map`), about 170 instructions a row.
#[inline(always)]
fn fields<T>(scan: &Scan, cut: impl Fn(usize, usize) -> T) -> [T; 8] {
    let [e0, e1, e2, e3, e4, e5, e6, e7] = scan.ends.map(|e| e as usize);
    [
        cut(0, e0),
        cut(e0 + 1, e1),
        cut(e1 + 1, e2),
        cut(e2 + 1, e3),
        cut(e3 + 1, e4),
        cut(e4 + 1, e5),
        cut(e5 + 1, e6),
        cut(e6 + 1, e7),
    ]
}

/// The fields `csv_core` wrote to `out`, ending at `ends`.
fn parsed_fields<'a>(out: &'a [u8], ends: &'a [usize], n: usize) -> impl Iterator<Item = &'a [u8]> {
    ends.get(..n).unwrap_or_default().iter().scan(0, move |from, end| {
        let f = out.get(*from..*end).unwrap_or_default();
        *from = *end;
        Some(f)
    })
}

impl<R: Read> CdrReader<R> {
    /// Checks the header and gets ready to read.
    pub fn new(input: R, plan: NumberingPlan) -> Result<Self, CdrFileError> {
        Self::with_block(input, plan, BLOCK)
    }

    fn with_block(input: R, plan: NumberingPlan, block: usize) -> Result<Self, CdrFileError> {
        let mut r = CdrReader {
            input,
            buf: vec![0; block.max(1)],
            pos: 0,
            end: 0,
            eof: false,
            line: 1,
            core: csv_core::Reader::new(),
            out: vec![0; 1024],
            ends: vec![0; 16],
            plan,
            days: DayCache::default(),
            rows: 0,
            bad_rows: 0,
        };
        let (_, header) = r.read_record().map_err(|detail| CdrFileError::Io { line: 1, detail })?;
        let raw: Vec<&[u8]> = match header {
            Record::Line(a, b, _) => {
                let line = r.buf.get(a..b).unwrap_or_default();
                memchr::memchr_iter(b',', line)
                    .chain([line.len()])
                    .scan(0, |from, comma| {
                        let f = line.get(*from..comma).unwrap_or_default();
                        *from = comma + 1;
                        Some(f)
                    })
                    .collect()
            }
            Record::Parsed(n) => parsed_fields(&r.out, &r.ends, n).collect(),
            Record::End => Vec::new(),
        };
        let found: Vec<String> =
            raw.iter().map(|h| String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').to_owned()).collect();
        if found.len() != COLUMNS.len() || found.iter().zip(COLUMNS).any(|(a, b)| a != b) {
            return Err(CdrFileError::Header { found: found.join(",").chars().take(200).collect() });
        }
        Ok(r)
    }

    /// Reads more input after what is left; `false` at the end of the input.
    fn fill(&mut self) -> Result<bool, String> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            // A record longer than the block.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.input.read(self.buf.get_mut(self.end..).unwrap_or_default()) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// The next record and the line number the `csv` crate gives it. Inlined into
    /// [`Self::next_ref`]: returned through memory, the record's field ends were written a word at
    /// a time and read back as a block, and the read waited on the writes.
    #[inline(always)]
    fn read_record(&mut self) -> Result<(u64, Record), String> {
        // Reported where the reader stood, before the blank lines it skips (as `csv` does).
        let line = self.line;
        loop {
            while let Some(b @ (b'\n' | b'\r')) = self.buf.get(self.pos).filter(|_| self.pos < self.end) {
                self.line += u64::from(*b == b'\n');
                self.pos += 1;
            }
            if self.pos < self.end {
                break;
            }
            if self.eof || !self.fill()? {
                return Ok((line, Record::End));
            }
        }
        if let Some(record) = self.plain_line() {
            return Ok((line, record));
        }
        let mut scanned = 0;
        let len = loop {
            let rest = self.buf.get(self.pos + scanned..self.end).unwrap_or_default();
            match memchr::memchr(b'\n', rest) {
                Some(i) => break scanned + i,
                None => {
                    scanned = self.end - self.pos;
                    if self.eof || !self.fill()? {
                        break scanned;
                    }
                }
            }
        };
        let (start, stop) = (self.pos, self.pos + len);
        let scan = scan_line(self.buf.get(start..stop).unwrap_or_default());
        if !scan.special {
            self.pos = (stop + 1).min(self.end);
            self.line += u64::from(stop < self.end);
            return Ok((line, Record::Line(start, stop, scan)));
        }
        self.read_with_csv_core().map(|r| (line, r))
    }

    /// The line at `pos` split by its chunks' [masks], when it is plain (printable ASCII without a
    /// quote: its fields are what lies between commas) and ends within [`PLAIN_CHUNKS`] chunks
    /// that are whole in the buffer; `None` (nothing consumed) for any other line, which
    /// [`Self::read_record`] then reads the careful way: the scan below, or `csv_core`.
    #[inline(always)]
    fn plain_line(&mut self) -> Option<Record> {
        let start = self.pos;
        let chunk = |k: usize| self.buf.get(start + k * CHUNK..self.end).and_then(|c| c.first_chunk::<CHUNK>());
        // The usual row, 65 to 128 bytes, ends in its second chunk: its first seven commas are
        // taken in a fixed sequence, so the field ends stay in registers. Written one by one at a
        // varying index (the loop below), they went through memory and were then copied in wide
        // loads, which waited on the narrow stores on every row.
        if let (Some(first), Some(second)) = (chunk(0), chunk(1)) {
            let (m0, m1) = (masks(first), masks(second));
            if m0.newline == 0 && m1.newline != 0 {
                let i = m1.newline.trailing_zeros();
                let before = (1u64 << i) - 1;
                if (m0.unusual | (m1.unusual & before)) != 0 {
                    return None;
                }
                let (mut low, mut high) = (m0.comma, m1.comma & before);
                let in_first = low.count_ones();
                let fields = (in_first + high.count_ones()) as usize + 1;
                let mut ends = [0u32; 8];
                for (k, e) in (0u32..).zip(ends.iter_mut().take(7)) {
                    // The k-th comma: in the first chunk's mask while it has one, then in the
                    // second's, chosen by selects. (Past the last comma: unused, as a row
                    // without eight fields is refused for its count.)
                    let first = k < in_first;
                    *e = if first { low.trailing_zeros() } else { CHUNK as u32 + high.trailing_zeros() };
                    let (cleared_low, cleared_high) = (low & low.wrapping_sub(1), high & high.wrapping_sub(1));
                    (low, high) = if first { (cleared_low, high) } else { (low, cleared_high) };
                }
                ends[7] = CHUNK as u32 + i;
                let stop = start + CHUNK + i as usize;
                self.pos = stop + 1;
                self.line += 1;
                return Some(Record::Line(start, stop, Scan { ends, fields, special: false, printable: true }));
            }
        }
        let mut ends = [0u32; 8];
        let mut n = 0usize;
        for k in 0..PLAIN_CHUNKS {
            let at = start + k * CHUNK;
            let m = masks(self.buf.get(at..self.end)?.first_chunk::<CHUNK>()?);
            let newline = (m.newline != 0).then(|| m.newline.trailing_zeros() as usize);
            let before = newline.map_or(u64::MAX, |i| (1u64 << i) - 1);
            if m.unusual & before != 0 {
                return None;
            }
            let mut commas = m.comma & before;
            while commas != 0 {
                if let Some(e) = ends.get_mut(n) {
                    // Below PLAIN_CHUNKS * CHUNK: fits.
                    *e = (at - start) as u32 + commas.trailing_zeros();
                }
                n += 1;
                commas &= commas - 1;
            }
            if let Some(i) = newline {
                let stop = at + i;
                if let Some(e) = ends.get_mut(n) {
                    *e = (stop - start) as u32;
                }
                self.pos = stop + 1;
                self.line += 1;
                return Some(Record::Line(start, stop, Scan { ends, fields: n + 1, special: false, printable: true }));
            }
        }
        None
    }

    fn read_with_csv_core(&mut self) -> Result<Record, String> {
        use csv_core::ReadRecordResult;
        let (mut nout, mut nend) = (0, 0);
        loop {
            let input = self.buf.get(self.pos..self.end).unwrap_or_default();
            let (res, nin, o, e) = self.core.read_record(
                input,
                self.out.get_mut(nout..).unwrap_or_default(),
                self.ends.get_mut(nend..).unwrap_or_default(),
            );
            self.line += memchr::memchr_iter(b'\n', input.get(..nin).unwrap_or_default()).count() as u64;
            self.pos += nin;
            nout += o;
            nend += e;
            match res {
                ReadRecordResult::InputEmpty => {
                    if !self.eof {
                        self.fill()?;
                    }
                }
                ReadRecordResult::OutputFull => self.out.resize(self.out.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => return Ok(Record::Parsed(nend)),
                ReadRecordResult::End => return Ok(Record::End),
            }
        }
    }

    /// The next row, borrowed from the reader's buffer (valid until the next call): `None` at the
    /// end, `Some(Err(BadRow))` for a malformed row (skip it and go on), `Err` when the file
    /// itself can't be read any further.
    pub fn next_ref(&mut self) -> Result<Option<Result<CdrRef<'_>, BadRow>>, CdrFileError> {
        self.next_with(|row| row.copied().map_err(BadRow::clone))
    }

    /// The next row handed to `f` by reference, where it was parsed: `Ok(None)` at the end,
    /// `Ok(Some(f(…)))` for a row or a malformed row (skip it and go on), `Err` when the file
    /// itself can't be read any further. Returned through the nested results of
    /// [`Self::next_ref`], the parsed row is copied twice, and each copy reads in wide words what
    /// was written field by field, which waits on the writes.
    #[inline(always)]
    pub fn next_with<'s, T>(
        &'s mut self,
        f: impl FnOnce(Result<&CdrRef<'s>, &BadRow>) -> T,
    ) -> Result<Option<T>, CdrFileError> {
        let (line, record) = self.read_record().map_err(|detail| CdrFileError::Io { line: self.rows + 1, detail })?;
        let (plan, days) = (&self.plan, &mut self.days);
        let parsed = match record {
            Record::End => return Ok(None),
            Record::Line(_, _, scan) if scan.fields != COLUMNS.len() => Err(RowError::FieldCount(scan.fields)),
            Record::Line(a, b, scan) => {
                let line = self.buf.get(a..b).unwrap_or_default();
                // A printable ASCII line is valid UTF-8 as it is: its fields stay bytes. Any other
                // line gets one UTF-8 check (valid UTF-8 split at ASCII commas stays valid); a
                // line that fails it is checked field by field, so the error names the same field
                // as before.
                if scan.printable {
                    parse_fields(&fields(&scan, |x, y| Printable(line.get(x..y).unwrap_or_default())), plan, days)
                } else {
                    match std::str::from_utf8(line) {
                        Ok(text) => parse_fields(&fields(&scan, |x, y| text.get(x..y).unwrap_or_default()), plan, days),
                        Err(_) => parse_fields(&fields(&scan, |x, y| line.get(x..y).unwrap_or_default()), plan, days),
                    }
                }
            }
            Record::Parsed(n) => {
                let mut fields: [&[u8]; 8] = [&[]; 8];
                for (slot, f) in fields.iter_mut().zip(parsed_fields(&self.out, &self.ends, n)) {
                    *slot = f;
                }
                if n == COLUMNS.len() { parse_fields(&fields, plan, days) } else { Err(RowError::FieldCount(n)) }
            }
        };
        self.rows += 1;
        Ok(Some(match parsed {
            // By reference where the parser left it: moved out, the row was copied in 16-byte
            // loads over the parser's narrower stores, which stall until those are written.
            Ok(ref row) => f(Ok(row)),
            Err(error) => {
                self.bad_rows += 1;
                f(Err(&BadRow { line, error }))
            }
        }))
    }

    /// The next row, owned: `None` at the end, `Some(Err(BadRow))` for a malformed row (skip it
    /// and go on), `Err` when the file itself can't be read any further.
    pub fn next_row(&mut self) -> Result<Option<Result<Cdr, BadRow>>, CdrFileError> {
        Ok(self.next_ref()?.map(|r| r.map(|c| c.to_cdr())))
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

    /// The reader before block reading: the `csv` crate and `parse_row`, kept as the reference.
    fn reference(data: &[u8]) -> Result<Vec<Result<Cdr, BadRow>>, String> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(data);
        let header = csv.byte_headers().map_err(|e| e.to_string())?;
        let found: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').to_owned())
            .collect();
        if found.len() != COLUMNS.len() || found.iter().zip(COLUMNS).any(|(a, b)| a != b) {
            return Err(found.join(","));
        }
        let plan = NumberingPlan::new();
        let mut record = csv::ByteRecord::new();
        let mut rows = vec![];
        while csv.read_byte_record(&mut record).map_err(|e| e.to_string())? {
            let line = record.position().map(|p| p.line()).unwrap_or_default();
            rows.push(super::super::parser::parse_row(&record, &plan).map_err(|error| BadRow { line, error }));
        }
        Ok(rows)
    }

    fn read_all(data: &[u8], block: usize) -> Result<Vec<Result<Cdr, BadRow>>, String> {
        let mut r = CdrReader::with_block(data, NumberingPlan::new(), block).map_err(|e| match e {
            CdrFileError::Header { found } => found,
            e => e.to_string(),
        })?;
        let mut rows = vec![];
        while let Some(row) = r.next_row().map_err(|e| e.to_string())? {
            rows.push(row);
        }
        assert_eq!(r.rows as usize, rows.len());
        assert_eq!(r.bad_rows as usize, rows.iter().filter(|r| r.is_err()).count());
        Ok(rows)
    }

    const ROW: &str =
        "c1,2026-11-20T01:00:00+09:00,2026-11-20T01:01:00+09:00,L1,0311112222,0104420794601,192.0.2.1,120";

    #[test]
    fn same_rows_and_line_numbers_as_the_csv_crate() {
        let cases: Vec<Vec<u8>> = vec![
            format!("{HEADER}{ROW}\n{ROW}").into_bytes(),
            format!("{HEADER}\n\n{ROW}\n\r\n{ROW}\n\n").into_bytes(),
            format!("{}{ROW}\r\n{ROW}\r\n", HEADER.replace('\n', "\r\n")).into_bytes(),
            format!("{HEADER}{ROW}\r{ROW}\r{ROW}").into_bytes(),
            format!("{HEADER}\"c\"\"1\",2026-11-20T01:00:00+09:00,2026-11-20T01:01:00+09:00,\"L\n1\",03,0312,192.0.2.1,0\n{ROW}\n")
                .into_bytes(),
            format!("{HEADER}c\"1,2026-11-20T01:00:00+09:00,2026-11-20T01:00:00+09:00,L1,03,0312,192.0.2.1,0\n{ROW}\n")
                .into_bytes(),
            format!("{HEADER}\"unterminated,{ROW}\n{ROW}\n{ROW}").into_bytes(),
            format!("{HEADER} {ROW} \n,,,,,,,\n,\n{ROW},\n\u{feff}{ROW}\n").into_bytes(),
            format!("\u{feff}{HEADER}{ROW}\n").into_bytes(),
            format!("\"call_id\",start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy\n{ROW}\n")
                .into_bytes(),
            format!("{HEADER}{}\n", ROW.replace("L1", "L\u{85}1")).into_bytes(),
            format!("{HEADER}{}\n", ROW.replace("192.0.2.1", " 192.0.2.1")).into_bytes(),
            format!("{HEADER}{}\n", ROW.replace("192.0.2.1", "192.0.02.1")).into_bytes(),
            format!("{HEADER}{}\n", ROW.replace("192.0.2.1", "2001:db8::1")).into_bytes(),
            format!("{HEADER}{}\n", ROW.replace(",120", ",+120")).into_bytes(),
            format!("{HEADER}{}\n", ROW.replace(",120", ",99999999999999999999")).into_bytes(),
            format!("{HEADER}{}\n", ROW.replace("T01:00:00+09:00,2", " 2026-11-20T01:00:00+09:00 ,2")).into_bytes(),
            b"call_id,start_time\n".to_vec(),
            Vec::new(),
            b"\n\n".to_vec(),
        ];
        let mut bytes = format!("{HEADER}{ROW}\n").into_bytes();
        bytes.extend_from_slice(b"c9,2026-11-20T01:00:00+09:00,2026-11-20T01:01:00+09:00,L\xff,03,0312,192.0.2.1,0\n");
        let mut all = cases;
        all.push(bytes);
        for data in &all {
            let want = reference(data);
            for block in [1, 2, 7, 64, 4096] {
                assert_eq!(read_all(data, block), want, "block {block}: {:?}", String::from_utf8_lossy(data));
            }
        }
    }

    #[test]
    fn same_as_the_csv_crate_on_mangled_rows() {
        // Deterministic mangling of good rows: every byte the state machine treats specially, at
        // every place, with blocks that split rows anywhere.
        let specials: [&[u8]; 9] = [b"\"", b"\r", b"\n", b",", b"\r\n", b"\n\n", b" ", b"\xe3\x81", b"\"\""];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let mut data = HEADER.as_bytes().to_vec();
            for _ in 0..(next() % 6) {
                let mut row = ROW.as_bytes().to_vec();
                for _ in 0..(next() % 3) {
                    let at = (next() as usize) % (row.len() + 1);
                    let s = specials[(next() as usize) % specials.len()];
                    row.splice(at..at, s.iter().copied());
                }
                data.extend_from_slice(&row);
                data.push(b'\n');
            }
            let want = reference(&data);
            for block in [3, 50, 4096] {
                assert_eq!(read_all(&data, block), want, "block {block}: {:?}", String::from_utf8_lossy(&data));
            }
        }
    }

    #[test]
    fn the_eight_byte_scan_finds_what_a_byte_loop_finds() {
        // Every byte but `\n`, which never is inside a line.
        for b in (0..=255u8).filter(|b| *b != b'\n') {
            for at in [0usize, 3, 7, 8, 12, 15, 16, 21] {
                let mut line = b"abc,def,ghi,jkl,mno,pqr".to_vec();
                line.truncate(at.max(1) + 8);
                line.insert(at.min(line.len()), b);
                let scan = scan_line(&line);
                let c = classes(&line);
                assert_eq!((scan.special, scan.printable), (c & 1 != 0, c & 2 == 0), "{b:#x} at {at}");
                assert_eq!(scan.special, b == b'"' || b == b'\r', "{b:#x}");
                assert_eq!(scan.printable, (0x20..=0x7e).contains(&b), "{b:#x}");
                assert_eq!(scan.fields, line.iter().filter(|x| **x == b',').count() + 1);
                let pieces: Vec<&[u8]> = line.split(|x| *x == b',').collect();
                let cut = fields(&scan, |x, y| line.get(x..y).unwrap_or_default());
                for (i, piece) in cut.iter().take(scan.fields.min(8)).enumerate() {
                    assert_eq!(*piece, pieces[i]);
                }
            }
        }
    }

    #[test]
    fn lines_of_every_length_split_alike_by_chunks_and_by_the_careful_scan() {
        // Rows from a few bytes to beyond the chunk split's reach (four 64-byte chunks), with
        // more and fewer fields than eight, each line ending at every place in a chunk; the
        // blocks leave rows whole (the chunk split) or cut them (the careful scan).
        let mut data = HEADER.as_bytes().to_vec();
        for len in 0..300usize {
            let id: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            data.extend_from_slice(ROW.replacen("c1", &format!("c{id}"), 1).as_bytes());
            data.push(b'\n');
            data.extend_from_slice(ROW.replace("L1", &format!("L{id}")).as_bytes());
            data.extend_from_slice(",extra".repeat(len % 5).as_bytes());
            data.push(b'\n');
            data.extend_from_slice(&ROW.as_bytes()[..len.min(ROW.len())]);
            data.push(b'\n');
        }
        let want = reference(&data);
        assert!(want.as_ref().map(|rows| rows.len()).unwrap_or_default() > 800);
        for block in [64, 100, 4096, 1 << 20] {
            assert_eq!(read_all(&data, block), want, "block {block}");
        }
    }

    #[test]
    fn wrong_header_is_refused() {
        let e = CdrReader::new("a,b,c\n1,2,3\n".as_bytes(), NumberingPlan::new()).unwrap_err();
        assert!(e.to_string().contains("line 1: the header must be"), "{e}");
    }
}
