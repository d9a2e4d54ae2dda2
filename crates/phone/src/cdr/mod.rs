//! mamori's generic CDR format: CSV with a header and exactly these columns:
//!
//! `call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy`
//!
//! Times are RFC 3339 with an offset; an unanswered call has `end_time` = `start_time` and a
//! charge of 0; `called_number` is as dialled in Japan (`0…` domestic, `010` + country code +
//! number abroad) or E.164 (`+CC…`); `charge_jpy` is whole yen; `source_ip` is the SIP client that
//! placed the call. Real exports are messy, so [`reader::CdrReader`] reports a malformed row
//! with its line number and goes on, and [`order::Reorder`] puts rows that are a few minutes out
//! of order back in order and drops repeated `call_id`s.

mod chunk;
pub mod order;
pub mod parser;
pub mod reader;

use std::net::IpAddr;

use jiff::Timestamp;
use smol_str::SmolStr;

use crate::numbering::Destination;

/// The CSV header mamori expects, in this order.
pub const COLUMNS: [&str; 8] =
    ["call_id", "start_time", "end_time", "line_id", "calling_number", "called_number", "source_ip", "charge_jpy"];

/// One call detail record. Identifiers are `SmolStr`: call ids, line ids and numbers fit inline,
/// so a row costs no heap allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    /// The switch's call id (unique per call; repeated rows are duplicates).
    pub call_id: SmolStr,
    /// When the call was placed.
    pub start: Timestamp,
    /// When it ended (= `start` when unanswered).
    pub end: Timestamp,
    /// The subscriber line that is billed.
    pub line_id: SmolStr,
    /// The calling number as presented.
    pub calling_number: SmolStr,
    /// The number dialled, as dialled.
    pub called_number: SmolStr,
    /// Where it goes (from the numbering plan).
    pub destination: Destination,
    /// The SIP client that placed the call.
    pub source_ip: IpAddr,
    /// The charge in yen.
    pub charge_jpy: u64,
}

impl Cdr {
    /// Is it a call abroad?
    pub fn is_international(&self) -> bool {
        matches!(self.destination, Destination::International(_))
    }
}
