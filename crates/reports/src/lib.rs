//! mamori's transparency report.
//!
//! MEASURES.md's common duty "transparency": statistics of when, how often, how long, and how many
//! subscribers were affected are published. This crate turns the stored [`ActionRecord`]s of a
//! period into one [`TransparencyReport`] and renders it three ways:
//!
//! - [`TransparencyReport::to_html`]: a self-contained page (inline CSS and SVG charts, no script,
//!   no external resource) in English with the measures' Japanese titles;
//! - [`TransparencyReport::to_csv`]: one RFC 4180 row per measure;
//! - [`TransparencyReport::to_json`]: the whole report.
//!
//! What a report never contains, whatever the input: subscriber ids (only counts of distinct
//! subscribers), action ids, evidence, and targets of a measure the catalog does not allow to publish
//! (`Measure::publish_targets`). Even where publishing is allowed only country and network targets
//! are published; a line, an address, a prefix, a domain or a subscriber never is.
//!
//! Days are Japan days (+09:00), like every legal rule in mamori.
//!
//! [`ActionRecord`]: mamori_core::action::ActionRecord
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod csv;
mod html;
mod stats;
mod svg;

use std::path::{Path, PathBuf};

pub use html::escape_html;
pub use stats::{MeasureStats, NotProvided, Period, StateCounts, TargetCount, Totals, TransparencyReport, build};

/// The file names [`write_all`] writes, in order.
pub const FILE_NAMES: [&str; 3] = ["transparency.html", "transparency.csv", "transparency.json"];

/// Why a report could not be produced or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The period ends before (or when) it starts.
    #[error("empty period: `to` ({to}) must be after `from` ({from})")]
    EmptyPeriod {
        /// Start.
        from: jiff::Timestamp,
        /// End.
        to: jiff::Timestamp,
    },
    /// Writing a file or creating the output directory failed.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serializing the JSON report failed.
    #[error("serializing the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `transparency.html`, `transparency.csv` and `transparency.json` into `dir` (created if
/// missing) and returns their paths in that order.
///
/// Each file is written to a temporary name in `dir` and then renamed, so a reader never sees a
/// half-written report and a failed run leaves the previous report in place.
pub fn write_all(report: &TransparencyReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_owned(), source })?;
    let json = report.try_to_json()?;
    let contents = [report.to_html(), report.to_csv(), json];
    let mut written = Vec::with_capacity(FILE_NAMES.len());
    for (name, text) in FILE_NAMES.iter().zip(contents) {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let io = |source| ReportError::Io { path: path.clone(), source };
        std::fs::write(&tmp, text.as_bytes()).map_err(io)?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
