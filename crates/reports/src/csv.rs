//! The CSV rendering: one RFC 4180 row per measure.

use std::fmt::Write as _;

use crate::stats::{MeasureStats, TransparencyReport};

/// The header row.
pub(crate) const HEADER: [&str; 17] = [
    "measure",
    "family",
    "legal_basis",
    "actions",
    "applied",
    "lifted",
    "expired",
    "completed",
    "rejected",
    "refused",
    "lapsed",
    "open",
    "emergency",
    "subscribers_affected",
    "median_duration_s",
    "max_duration_s",
    "published_targets",
];

/// One field, quoted per RFC 4180 when it contains a comma, a double quote, CR or LF (inner double
/// quotes are doubled).
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// Encodes a target inside the `published_targets` list (`target=count;target=count`): `%`, `;`
/// and `=` are percent-encoded so a hostile target cannot forge list entries.
fn list_item(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for c in target.chars() {
        match c {
            '%' => out.push_str("%25"),
            ';' => out.push_str("%3B"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

fn row(m: &MeasureStats) -> [String; 17] {
    let s = &m.by_state;
    let targets: Vec<String> =
        m.published_targets.iter().map(|t| format!("{}={}", list_item(&t.target), t.actions)).collect();
    [
        m.measure.clone(),
        m.family.clone(),
        m.legal_basis.join(";"),
        m.actions.to_string(),
        s.applied.to_string(),
        s.lifted.to_string(),
        s.expired.to_string(),
        s.completed.to_string(),
        s.rejected.to_string(),
        s.refused.to_string(),
        s.lapsed.to_string(),
        s.open().to_string(),
        m.emergency_actions.to_string(),
        m.subscribers_affected.to_string(),
        // f64's Display prints 5400.0 as `5400` and 5400.5 as `5400.5`
        m.duration_median_seconds.map(|d| d.to_string()).unwrap_or_default(),
        m.duration_max_seconds.map(|d| d.to_string()).unwrap_or_default(),
        targets.join(";"),
    ]
}

impl TransparencyReport {
    /// The report as CSV: a header and one row per measure with actions, CRLF line ends (RFC 4180).
    ///
    /// `legal_basis` lists the catalog's accepted grounds separated by `;`. `applied` counts actions
    /// still in force; `open` those not decided yet (proposed, awaiting consent, pending approval).
    /// Durations are in seconds, empty when no action was in force. `published_targets` is
    /// `target=count` pairs separated by `;` (with `%`, `;`, `=` percent-encoded in targets), empty
    /// unless the measure may publish them.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{}\r\n", HEADER.join(","));
        for m in &self.measures {
            let fields: Vec<String> = row(m).iter().map(|f| field(f)).collect();
            let _ = write!(out, "{}\r\n", fields.join(","));
        }
        out
    }
}
