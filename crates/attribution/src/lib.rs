//! Subscriber attribution: which subscriber held an IP address (and port, behind carrier-grade
//! NAT) at an instant.
//!
//! Third-party reports (sinkholes, surveys of weak IoT passwords, blacklists), resolver logs and
//! flows name an address and a time; measures act on a subscriber. The carrier's BNGs already
//! say who held which address when, in RADIUS accounting (RFC 2866). This crate:
//!
//! - [`radius`]: the accounting wire format, pure functions of bytes (fuzzed);
//! - [`server`]: a RADIUS accounting server (UDP) with a shared secret per client, answering
//!   only once the batch's sessions are durable;
//! - [`detail`]: FreeRADIUS `detail` files, to back-fill history;
//! - [`session`]: events merged into sessions (idempotent, order-independent times, expiry of
//!   sessions that never got a Stop);
//! - [`db`]: the sessions on disk (`DATA_DIR/attribution.sqlite`);
//! - [`index`]: the compact in-memory index and its pure lookups, answering
//!   [`Attribution::Unique`], [`Attribution::Ambiguous`] (with the candidates) or
//!   [`Attribution::Unknown`];
//! - [`attributor`]: store and index together;
//! - [`text`]: UTF-8 or Shift_JIS files decoded to UTF-8 (detail files and third-party reports).
//!
//! Subscriber ids and user names are never logged at `info` or above; RADIUS secrets never.

pub mod attributor;
pub mod db;
pub mod detail;
mod huge;
pub mod index;
pub mod radius;
pub mod server;
pub mod session;
pub mod text;

pub use attributor::{Applied, Attributor, Settings, SubscriberMap, index_of, load_index, read, store_path};
pub use index::{Attribution, Index, SubscriberNo};

use std::io::BufRead;

/// What a detail import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Records read.
    pub records: usize,
    /// Records applied.
    pub imported: usize,
    /// Sessions written.
    pub written: usize,
    /// Records skipped, with their line and reason.
    pub skipped: Vec<detail::DetailError>,
}

/// Events per transaction during an import.
const IMPORT_BATCH: usize = 10_000;

impl Attributor {
    /// Imports a FreeRADIUS detail file: bad records are reported in the result (with their line)
    /// and skipped; every good one is stored.
    pub fn import_detail<R: BufRead>(&mut self, input: R) -> Result<ImportReport, db::DbError> {
        let mut report = ImportReport::default();
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        for r in detail::read_detail(input) {
            report.records += 1;
            match r {
                Ok(ev) => batch.push(ev),
                Err(e) => report.skipped.push(e),
            }
            if batch.len() == IMPORT_BATCH {
                report.written += self.apply(&batch)?.written;
                report.imported += batch.len();
                batch.clear();
            }
        }
        if !batch.is_empty() {
            report.written += self.apply(&batch)?.written;
            report.imported += batch.len();
        }
        Ok(report)
    }
}
