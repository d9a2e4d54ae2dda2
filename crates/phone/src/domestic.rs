//! Domestic rows, taken a few dozen at a time between two calls abroad.
//!
//! Nearly every row of a billing file is a domestic call, and each one reads memory that is not
//! in the cache: its call id in the duplicate set, its line in the line index, and the head of the
//! line's record. One row at a time, those misses come one after another.
//! Held in a batch, the rows' lookups are made first, one after another without waiting, so the
//! memory system serves them together; the rows are then taken in their order, exactly as one at
//! a time (the lookups ahead change nothing). A call abroad, a row whose line id is too long to
//! hold, and the end of the input take the batch first, so every row still reaches the reorder
//! buffer and the engine in file order.

use std::hint::black_box;
use std::net::IpAddr;

use jiff::Timestamp;

use crate::cdr::order::{Reorder, call_key};
use crate::cdr::parser::CdrRef;
use crate::engine::{Engine, hash_bytes};
use crate::line_index::ShortId;

/// Rows per batch: enough lookups in flight to cover the memory's latency, few enough that the
/// batch's own records stay in the first-level cache.
const BATCH: usize = 32;

/// What a domestic row gives the engine, owned (the reader's row is gone by the time the batch
/// is taken).
#[derive(Debug, Clone, Copy)]
struct DomesticRow {
    call: u64,
    line: ShortId,
    calling: u64,
    start: Timestamp,
    source_ip: IpAddr,
}

/// Domestic rows waiting to be taken together.
#[derive(Debug, Default)]
pub(crate) struct DomesticBatch {
    rows: Vec<DomesticRow>,
    slots: Vec<Option<u32>>,
}

impl DomesticBatch {
    /// An empty batch.
    pub(crate) fn new() -> Self {
        DomesticBatch { rows: Vec::with_capacity(BATCH), slots: Vec::with_capacity(BATCH) }
    }

    /// Holds a domestic row and starts loading where its line will be looked up; `false`
    /// (nothing held) when its line id is too long to hold inline: the caller
    /// [takes](Self::take) the batch and then the row itself.
    #[inline]
    pub(crate) fn push(&mut self, c: &CdrRef<'_>, engine: &Engine) -> bool {
        let Some(line) = ShortId::new(c.line_id) else { return false };
        engine.prefetch_line(&line);
        self.rows.push(DomesticRow {
            call: call_key(c.call_id),
            line,
            calling: hash_bytes(c.calling_number),
            start: c.start,
            source_ip: c.source_ip,
        });
        true
    }

    /// Whether the batch should be taken now.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.rows.len() >= BATCH
    }

    /// Takes every row held, in order: counted once ([`Reorder::first_time`]), then learned by
    /// the engine ([`Engine::on_domestic_cdr`]).
    pub(crate) fn take(&mut self, reorder: &mut Reorder, engine: &mut Engine) {
        if self.rows.is_empty() {
            return;
        }
        // Lookups ahead, each independent of the others: the duplicate set and the line index,
        // then the head of each known line's record.
        self.slots.clear();
        for row in &self.rows {
            black_box(reorder.probe(row.call));
            self.slots.push(engine.find_line(&row.line));
        }
        for slot in self.slots.iter().flatten() {
            black_box(engine.touch_line(*slot));
        }
        for (row, slot) in self.rows.iter().zip(&self.slots) {
            if reorder.first_time_key(row.call, row.start) {
                engine.on_domestic_row(*slot, &row.line, row.start, &row.source_ip, row.calling);
            }
        }
        self.rows.clear();
    }
}
