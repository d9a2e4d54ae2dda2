//! CDR rows as bytes, and the mess real exports have: late rows, repeated rows, broken rows.

use std::io::Write;

use crate::calls::Call;
use crate::number::push_u64;
use crate::population::{IpTable, Line};
use crate::rng::RngExt;
use crate::time::push_rfc3339;

/// The header line.
pub(crate) const HEADER: &[u8] =
    b"call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy\n";

/// How a row is broken (for `--malformed-rate`).
pub(crate) const MALFORMED_KINDS: u8 = 10;

/// A row waiting to be written: the call, and when the export writes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// Write order key: start time plus the export's delay.
    pub key: i64,
    /// Tie-breaker so equal keys keep a stable, seed-determined order.
    pub seq: u64,
    /// The call.
    pub call: Call,
    /// What the row is.
    pub role: Role,
}

/// What a written row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The call's row.
    Call,
    /// The same row again (an export retried).
    Duplicate,
    /// A broken row, broken in way `1..=MALFORMED_KINDS`.
    Malformed(u8),
}

/// How late the export writes a row: most rows in order, some seconds late, a few minutes late.
pub(crate) fn delay(rng: &mut fastrand::Rng, max: u32) -> i64 {
    let max = i64::from(max);
    let roll = rng.f64();
    if max == 0 || roll < 0.88 {
        0
    } else if roll < 0.98 {
        rng.i64(1..=max.min(30))
    } else {
        rng.i64(0..=max)
    }
}

/// Counts of what was written.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    pub rows: u64,
    pub calls: u64,
    pub duplicates: u64,
    pub malformed: u64,
    pub out_of_order: u64,
    pub bytes: u64,
}

/// Writes rows in large chunks.
pub(crate) struct RowWriter<'a, W: Write> {
    out: W,
    buf: Vec<u8>,
    lines: &'a [Line],
    ips: &'a IpTable,
    newest_start: i64,
    /// Totals so far.
    pub written: Written,
}

const CHUNK: usize = 1 << 20;

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<'a, W: Write> RowWriter<'a, W> {
    /// A writer that has written the header.
    pub fn new(out: W, lines: &'a [Line], ips: &'a IpTable) -> Self {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(HEADER);
        RowWriter { out, buf, lines, ips, newest_start: i64::MIN, written: Written::default() }
    }

    /// Writes one pending row.
    pub fn row(&mut self, p: &Pending) -> std::io::Result<()> {
        let before = self.buf.len();
        if let Role::Malformed(how) = p.role {
            self.malformed_row(&p.call, how);
            self.written.malformed += 1;
        } else {
            self.good_row(&p.call);
            if p.role == Role::Duplicate {
                self.written.duplicates += 1;
            } else {
                self.written.calls += 1;
            }
            if p.call.start < self.newest_start {
                self.written.out_of_order += 1;
            }
            self.newest_start = self.newest_start.max(p.call.start);
        }
        self.written.rows += 1;
        self.written.bytes += (self.buf.len() - before) as u64;
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Flushes everything and returns the sink.
    pub fn finish(mut self) -> std::io::Result<(W, Written)> {
        self.written.bytes += HEADER.len() as u64;
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }

    fn push_id(&mut self, id: u64) {
        for shift in (0..16).rev() {
            self.buf.push(HEX[((id >> (shift * 4)) & 0xf) as usize]);
        }
    }

    fn good_row(&mut self, c: &Call) {
        self.push_id(c.id);
        self.buf.push(b',');
        push_rfc3339(&mut self.buf, c.start);
        self.buf.push(b',');
        push_rfc3339(&mut self.buf, c.start + i64::from(c.secs));
        self.buf.push(b',');
        self.buf.extend_from_slice(self.lines[c.line as usize].id.as_bytes());
        self.buf.push(b',');
        c.calling.write(&mut self.buf);
        self.buf.push(b',');
        c.called.write(&mut self.buf);
        self.buf.push(b',');
        self.buf.extend_from_slice(self.ips.text[c.ip as usize].as_bytes());
        self.buf.push(b',');
        push_u64(&mut self.buf, u64::from(c.charge));
        self.buf.push(b'\n');
    }

    /// A row broken in one of the ways real exports break.
    fn malformed_row(&mut self, c: &Call, how: u8) {
        let mut row = Vec::with_capacity(128);
        std::mem::swap(&mut row, &mut self.buf);
        self.good_row(c);
        std::mem::swap(&mut row, &mut self.buf);
        row.pop(); // the newline
        let mut fields: Vec<Vec<u8>> = row.split(|b| *b == b',').map(<[u8]>::to_vec).collect();
        match how {
            1 => fields.truncate(5),
            2 => fields[1] = fields[1][..19].iter().map(|&b| if b == b'T' { b' ' } else { b }).collect(),
            3 => fields[6] = b"999.12.0.1".to_vec(),
            4 => fields[7] = b"12.5".to_vec(),
            5 => fields[5] = b"03-1234-5678".to_vec(),
            6 => fields.swap(1, 2),
            7 => fields.push(b"extra".to_vec()),
            8 => fields[3].clear(),
            9 => {
                fields[2] = fields[1].clone();
                fields[7] = b"480".to_vec();
            }
            _ => fields[4] = vec![0xff, 0xfe, b'1'],
        }
        if how == 6 && fields[1] == fields[2] {
            // Same start and end can't be swapped into a broken row: break the charge instead.
            fields[7] = b"-3".to_vec();
        }
        self.buf.extend_from_slice(&fields.join(&b","[..]));
        self.buf.push(b'\n');
    }
}

/// Adds a row (and maybe its duplicate) to `pending`.
pub(crate) fn enqueue(
    rng: &mut fastrand::Rng,
    pending: &mut Vec<Pending>,
    seq: &mut u64,
    call: Call,
    duplicate_rate: f64,
    max_delay: u32,
) {
    *seq += 1;
    pending.push(Pending { key: call.start + delay(rng, max_delay), seq: *seq, call, role: Role::Call });
    if rng.chance(duplicate_rate) {
        *seq += 1;
        // The repeat comes a little later, as when an export is retried.
        let key = call.start + delay(rng, max_delay).max(1);
        pending.push(Pending { key, seq: *seq, call, role: Role::Duplicate });
    }
}
