//! Third-party reports: infected-terminal, open-resolver and vulnerable-device reports
//! (Shadowserver-style CSV), weak-credential IoT lists (NOTICE style), takedown lists and spam
//! blacklist listings, read as the field delivers them, attributed to the subscriber who held
//! the address at the report's instant, and handed to governance as findings and proposals of
//! the measure they belong to (so the alert is queued, and rate-limited by notify).
//!
//! - [`format`]: the formats, by their published column names, and the configured mappings;
//! - [`decode`]: UTF-8 (with or without a BOM) as is, Shift_JIS converted (asked for, or detected);
//!   anything else refused as a whole with the line and byte offset;
//! - [`seen`]: what was imported before (a content hash per report, a key per row), so
//!   re-importing a report creates no duplicates;
//! - [`views`]: what the consumer of each measure may read, through the view gate (which drops
//!   subscribers who opted out before anything else);
//! - [`import`]: the pipeline and its summary.
//!
//! Addresses and subscriber ids are never logged; the ledger gets counts, ranges, the source and
//! the report's hash.

pub mod decode;
pub mod format;
pub mod import;
pub mod seen;
pub mod views;

pub use decode::Encoding;
pub use format::{Format, Kind, Row};
pub use import::{ImportError, Outcome, Progress, Summary, Unattributed, import};
pub use seen::{SeenDb, seen_path};
