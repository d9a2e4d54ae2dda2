//! The subscriber directory: each subscriber's language and email address, imported from the
//! carrier's customer system as CSV `subscriber_id,email,language`.
//!
//! A wrong header stops the import before anything is written; a bad row is reported with its
//! line number and skipped, and the rest is imported. Rows are written in batches, each with a
//! `contacts-imported` ledger entry carrying counts only.

use std::io::Read;

use mamori_core::governance::Governance;
use mamori_core::ledger::{EventKind, LedgerDraft};
use mamori_core::store::{Batch, Mutation, StoreError, SubscriberContact};
use mamori_core::subject::{Actor, SubscriberId};
use serde_json::json;

use crate::Lang;

const HEADER: [&str; 3] = ["subscriber_id", "email", "language"];
const BATCH: usize = 5_000;

/// A row that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the file.
    pub line: u64,
    /// Why (never the address itself).
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows written.
    pub imported: u64,
    /// Rows skipped, with why.
    pub rejected: Vec<RowError>,
}

/// An import that could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The first line is not the expected header.
    #[error("{origin}:1: expected the header `subscriber_id,email,language`, found `{found}`")]
    Header {
        /// The file.
        origin: String,
        /// What was there.
        found: String,
    },
    /// The file couldn't be read.
    #[error("{origin}: {detail}")]
    Read {
        /// The file.
        origin: String,
        /// Why.
        detail: String,
    },
    /// Storage failed (rows before this batch are imported).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn field(raw: &[u8], name: &str) -> Result<String, String> {
    std::str::from_utf8(raw).map(|s| s.trim().to_owned()).map_err(|_| {
        format!("{name} is not UTF-8 (save the file as UTF-8; Shift_JIS and other encodings are not accepted)")
    })
}

/// Checks one row: `(subscriber, email, language)`.
fn parse_row(rec: &csv::ByteRecord) -> Result<SubscriberContact, String> {
    if rec.len() != 3 {
        return Err(format!("expected 3 columns, found {}", rec.len()));
    }
    let id = field(&rec[0], "subscriber_id")?;
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err("subscriber_id must be 1–128 printable characters".into());
    }
    let email = field(&rec[1], "email")?;
    let email = if email.is_empty() {
        None
    } else if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
        return Err("email is not a valid address".into());
    } else {
        Some(email)
    };
    let lang = field(&rec[2], "language")?;
    let lang = if lang.is_empty() {
        Lang::Ja
    } else {
        Lang::parse(&lang).ok_or_else(|| format!("language `{lang}` is neither ja nor en"))?
    };
    Ok(SubscriberContact { subscriber: SubscriberId(id), email, language: lang.as_str().to_owned() })
}

/// Imports a directory file; `origin` names it in errors and the ledger.
pub fn import(gov: &Governance, input: impl Read, origin: &str, by: &Actor) -> Result<ImportReport, ImportError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
    let mut report = ImportReport::default();
    let mut rec = csv::ByteRecord::new();
    let read_err = |e: csv::Error| ImportError::Read { origin: origin.to_owned(), detail: e.to_string() };
    if !rdr.read_byte_record(&mut rec).map_err(read_err)? {
        return Err(ImportError::Header { origin: origin.to_owned(), found: String::new() });
    }
    let header: Vec<String> = rec
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if header != HEADER {
        return Err(ImportError::Header { origin: origin.to_owned(), found: header.join(",") });
    }
    let mut pending = Vec::with_capacity(BATCH);
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map_or(0, |p| p.line());
                if rec.iter().all(|f| f.trim_ascii().is_empty()) {
                    continue;
                }
                match parse_row(&rec) {
                    Ok(c) => pending.push(c),
                    Err(reason) => report.rejected.push(RowError { line, reason }),
                }
            }
            Err(e) => {
                // A broken row (e.g. an unterminated quote) is reported; reading goes on where possible.
                let line = e.position().map_or(0, |p| p.line());
                report.rejected.push(RowError { line, reason: e.to_string() });
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
        if pending.len() >= BATCH {
            report.imported += flush(gov, &mut pending, origin, by)?;
        }
    }
    report.imported += flush(gov, &mut pending, origin, by)?;
    Ok(report)
}

fn flush(gov: &Governance, pending: &mut Vec<SubscriberContact>, origin: &str, by: &Actor) -> Result<u64, StoreError> {
    if pending.is_empty() {
        return Ok(0);
    }
    let n = pending.len() as u64;
    let with_email = pending.iter().filter(|c| c.email.is_some()).count();
    let mutations = pending.drain(..).map(Mutation::PutContact).collect();
    let draft = LedgerDraft::new(
        EventKind::ContactsImported,
        by.clone(),
        json!({"file": origin, "rows": n, "with_email": with_email}),
    );
    gov.store().commit(Batch { at: gov.now(), mutations, ledger: vec![draft] })?;
    Ok(n)
}
