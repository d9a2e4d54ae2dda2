//! The pipeline: text → rows → attribution at each row's instant → the measure's view gate →
//! duplicates removed → one finding and one proposal per subscriber (governance queues the
//! alert; notify rate-limits it).
//!
//! Rows of one subscriber in one report become one finding (with how many rows, their time
//! range and what was seen) and one proposal: a sinkhole report lists every connection of an
//! infected device, and the subscriber needs one alert, not hundreds. Unmatched and ambiguous
//! rows are returned with their line for the operator's list; bad rows with their line and why.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mamori_attribution::index::{Query, unix_secs};
use mamori_attribution::{Attribution, Index};
use mamori_core::action::ActionState;
use mamori_core::clock::WallClock;
use mamori_core::governance::{Governance, GovernanceError, Proposal};
use mamori_core::ledger::{EventKind, LedgerDraft};
use mamori_core::store::Batch;
use mamori_core::subject::{Actor, SubscriberId, Target};
use serde::Serialize;
use serde_json::json;

use crate::decode::{self, DecodeError};
use crate::format::{Format, Row};
use crate::seen::{RowKey, SeenDb, SeenError};
use crate::views::{AttributedRow, ReportFinding, ReportGate};

/// Why a report could not be imported (nothing of it was kept).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Neither UTF-8 nor (when allowed) Shift_JIS.
    #[error(transparent)]
    Encoding(#[from] DecodeError),
    /// The header lacks columns the format needs.
    #[error("{file}: missing column(s) {missing} for a {kind} report (header: {header})")]
    MissingColumns {
        /// The file.
        file: String,
        /// The kind.
        kind: String,
        /// What is missing, comma-separated.
        missing: String,
        /// The header found.
        header: String,
    },
    /// No header line.
    #[error("{file}: empty report (no header line)")]
    Empty {
        /// The file.
        file: String,
    },
    /// The header line is not CSV.
    #[error("{file}: cannot read the header: {detail}")]
    Header {
        /// The file.
        file: String,
        /// Why.
        detail: String,
    },
    /// The measure is not enabled: nothing could be proposed.
    #[error("{0} is not enabled (mamori measures enable {0} --by NAME)")]
    NotEnabled(String),
    /// Governance failed.
    #[error(transparent)]
    Governance(#[from] GovernanceError),
    /// The import store failed.
    #[error(transparent)]
    Seen(#[from] SeenError),
    /// The view gate refused to open.
    #[error("view gate: {0}")]
    View(String),
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// 1-based line in the file.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// A row no single subscriber could be found for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unattributed {
    /// 1-based line in the file.
    pub line: u64,
    /// `unmatched` (no session covers the instant) or `ambiguous`.
    pub status: &'static str,
    /// The instant.
    pub at: Timestamp,
    /// The address.
    pub addr: IpAddr,
    /// The port.
    pub port: Option<u16>,
    /// What was seen.
    pub detail: Option<String>,
    /// The candidate subscribers of an ambiguous row.
    pub candidates: Vec<String>,
}

/// Counts of one import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The report kind.
    pub kind: String,
    /// Its source.
    pub source: String,
    /// The measure of its rows.
    pub measure: String,
    /// BLAKE3 of the file's bytes.
    pub report_hash: String,
    /// The encoding it was read in (`utf-8` or `shift_jis`).
    pub encoding: String,
    /// When the same file was imported before, if it was.
    pub previously_imported: Option<String>,
    /// Data rows read (good and bad).
    pub rows: u64,
    /// Rows attributed to exactly one subscriber.
    pub attributed: u64,
    /// Rows several subscribers' sessions cover.
    pub ambiguous: u64,
    /// Rows no session covers.
    pub unmatched: u64,
    /// Attributed rows dropped by the view gate (the subscriber opted out).
    pub opted_out: u64,
    /// Attributed rows imported before.
    pub duplicates: u64,
    /// Rows that could not be read.
    pub bad_rows: u64,
    /// Subscribers with new rows.
    pub subscribers: u64,
    /// Findings recorded (one per subscriber).
    pub findings: u64,
    /// Alerts queued by governance.
    pub alerts_queued: u64,
    /// Proposals governance refused (e.g. no legal ground now).
    pub refused: u64,
}

/// An import's result.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Counts.
    pub summary: Summary,
    /// Unreadable rows.
    pub bad: Vec<BadRow>,
    /// Unmatched and ambiguous rows.
    pub unattributed: Vec<Unattributed>,
}

/// Progress of an import (a progress bar).
pub trait Progress: Sync {
    /// A phase begins with this many units.
    fn phase(&self, name: &'static str, total: u64);
    /// Units done.
    fn advance(&self, n: u64);
}

/// No progress display.
impl Progress for () {
    fn phase(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// What an import is about.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The file name (for messages).
    pub file: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
    /// How to read it.
    pub format: &'a Format,
    /// Who delivered it (recorded with every finding).
    pub source: &'a str,
    /// Its encoding (`auto`: UTF-8, else Shift_JIS if the whole file is valid Shift_JIS).
    pub encoding: decode::Encoding,
}

/// Findings written per transaction.
const FINDINGS_PER_COMMIT: usize = 4096;
/// Proposals handed to governance per call (progress is reported between calls).
const PROPOSALS_PER_CALL: usize = 16_384;
/// Proposals governance commits per transaction (each keeps its own ledger entries).
const PROPOSALS_PER_COMMIT: usize = 2048;

fn row_key(measure: &str, r: &Row) -> RowKey {
    let mut h = blake3::Hasher::new();
    h.update(measure.as_bytes());
    h.update(&[0]);
    match r.addr {
        IpAddr::V4(a) => h.update(&a.octets()),
        IpAddr::V6(a) => h.update(&a.octets()),
    };
    h.update(&r.port.unwrap_or(0).to_be_bytes());
    h.update(&r.at.as_second().to_be_bytes());
    h.update(r.detail.as_deref().unwrap_or("").as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

/// Imports one report.
pub fn import(
    report: Report<'_>,
    index: &Index,
    gov: &Governance,
    seen: &mut SeenDb,
    progress: &dyn Progress,
) -> Result<Outcome, ImportError> {
    let Report { file, bytes, format, source, encoding } = report;
    let measure = format.measure;
    let decoded = decode::text(bytes, file, encoding)?;
    let text: &str = &decoded.text;
    let hash: [u8; 32] = *blake3::hash(bytes).as_bytes();
    let mut out = Outcome::default();
    let s = &mut out.summary;
    s.kind = format.kind.name();
    s.source = source.to_owned();
    s.measure = measure.to_string();
    s.report_hash = hex::encode(hash);
    s.encoding = decoded.encoding.name().to_owned();
    s.previously_imported = seen.previous(&hash)?.map(|p| p.imported_at);

    // 1. rows
    let mut rdr = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(text.as_bytes());
    let header =
        rdr.headers().map_err(|e| ImportError::Header { file: file.to_owned(), detail: e.to_string() })?.clone();
    if header.is_empty() || header.iter().all(|h| h.trim().is_empty()) {
        return Err(ImportError::Empty { file: file.to_owned() });
    }
    let pos = format.resolve(&header).map_err(|missing| ImportError::MissingColumns {
        file: file.to_owned(),
        kind: format.kind.name(),
        missing: missing.join(", "),
        header: header.iter().collect::<Vec<_>>().join(","),
    })?;
    if !gov.is_enabled(measure)? {
        return Err(ImportError::NotEnabled(measure.to_string()));
    }
    progress.phase("reading", text.len() as u64);
    let mut rows: Vec<(u64, Row)> = Vec::new();
    let mut rec = csv::StringRecord::new();
    let mut last_pos = 0u64;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map_or(0, |p| p.line());
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                s.rows += 1;
                match format.row(&pos, &rec) {
                    Ok(r) => rows.push((line, r)),
                    Err(reason) => out.bad.push(BadRow { line, reason }),
                }
                if s.rows % 8192 == 0 {
                    let b = rdr.position().byte();
                    progress.advance(b - last_pos);
                    last_pos = b;
                }
            }
            Err(e) => {
                s.rows += 1;
                let line = e.position().map_or(0, |p| p.line());
                out.bad.push(BadRow { line, reason: e.to_string() });
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
            }
        }
    }
    progress.advance((text.len() as u64).saturating_sub(last_pos));
    s.bad_rows = out.bad.len() as u64;

    // 2. attribution at each row's instant
    progress.phase("attributing", rows.len() as u64);
    let queries: Vec<Query> =
        rows.iter().map(|(_, r)| Query { addr: r.addr, port: r.port, at: unix_secs(r.at) }).collect();
    let mut answers = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(65_536) {
        index.lookup_batch(chunk, &mut answers);
        progress.advance(chunk.len() as u64);
    }
    drop(queries);

    // 3. the view gate: opted-out subscribers stop here
    let gate = ReportGate::open(measure, gov, Arc::new(WallClock))
        .ok_or_else(|| ImportError::View(format!("{measure} does not take reports")))?
        .map_err(|e| ImportError::View(e.to_string()))?;
    let measure_id = measure.to_string();
    let mut admitted: Vec<ReportFinding> = Vec::new();
    for ((line, r), a) in rows.into_iter().zip(answers) {
        match a {
            Attribution::Unique(no) => {
                s.attributed += 1;
                let subscriber = SubscriberId(index.subscriber(no).unwrap_or_default().to_owned());
                let key = row_key(&measure_id, &r);
                let rec = AttributedRow { line, subscriber, at: r.at, detail: r.detail, key };
                match gate.admit(&rec) {
                    Some(v) => admitted.push(v),
                    None => s.opted_out += 1,
                }
            }
            Attribution::Ambiguous(v) => {
                s.ambiguous += 1;
                let candidates = v.iter().map(|n| index.subscriber(*n).unwrap_or_default().to_owned()).collect();
                out.unattributed.push(Unattributed {
                    line,
                    status: "ambiguous",
                    at: r.at,
                    addr: r.addr,
                    port: r.port,
                    detail: r.detail,
                    candidates,
                });
            }
            Attribution::Unknown => {
                s.unmatched += 1;
                out.unattributed.push(Unattributed {
                    line,
                    status: "unmatched",
                    at: r.at,
                    addr: r.addr,
                    port: r.port,
                    detail: r.detail,
                    candidates: vec![],
                });
            }
        }
    }

    // 4. duplicates: rows imported before (by this or another report); keys older than the
    //    measure's retention are forgotten first
    let keep = SignedDuration::from_hours(24 * i64::from(gov.config().retention_days(measure)));
    let cutoff = gov.now().checked_sub(keep).map_or(0, unix_secs);
    seen.sweep(&measure.to_string(), cutoff)?;
    let keys: Vec<(RowKey, u32)> = admitted.iter().map(|f| (f.key, unix_secs(f.at))).collect();
    let marked = seen.mark(&measure_id, &keys)?;
    let mut groups: HashMap<SubscriberId, Vec<ReportFinding>> = HashMap::new();
    for (f, fresh) in admitted.into_iter().zip(marked.fresh.iter()) {
        if *fresh {
            groups.entry(f.subscriber.clone()).or_default().push(f);
        } else {
            s.duplicates += 1;
        }
    }
    // Repeated rows inside one report are duplicates too.
    for v in groups.values_mut() {
        let before = v.len();
        v.sort_by_key(|f| f.key);
        v.dedup_by_key(|f| f.key);
        s.duplicates += (before - v.len()) as u64;
    }
    s.subscribers = groups.len() as u64;

    // 5. one finding per subscriber (written in batches: one transaction each), then one
    //    proposal per subscriber (governance decides each as `propose` would, with its own
    //    ledger entries, and commits them in chunks: `Governance::propose_many`)
    let mut groups: Vec<(SubscriberId, Vec<ReportFinding>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| a.0.0.cmp(&b.0.0));
    progress.phase("findings", groups.len() as u64);
    let detector = format!("reports.{}", format.kind.name());
    let evidence: Vec<serde_json::Value> = groups
        .iter()
        .map(|(_, rows)| {
            let first = rows.iter().map(|f| f.at).min();
            let last = rows.iter().map(|f| f.at).max();
            let details: BTreeSet<&str> = rows.iter().filter_map(|f| f.detail.as_deref()).collect();
            json!({
                "source": source,
                "report_kind": format.kind.name(),
                "report_hash": hex::encode(&hash[..16]),
                "rows": rows.len(),
                "first_seen": first.map(|t| t.to_string()),
                "last_seen": last.map(|t| t.to_string()),
                "seen": details.iter().take(8).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut finding_seqs: Vec<u64> = Vec::with_capacity(groups.len());
    for (chunk, ev) in groups.chunks(FINDINGS_PER_COMMIT).zip(evidence.chunks(FINDINGS_PER_COMMIT)) {
        let drafts = chunk
            .iter()
            .zip(ev)
            .map(|((sub, _), e)| {
                LedgerDraft::new(EventKind::Finding, Actor(format!("detector:{detector}")), e.clone())
                    .measure(measure)
                    .subject(Target::Subscriber(sub.0.clone()).to_string())
            })
            .collect();
        let committed = gov
            .store()
            .commit(Batch { at: gov.now(), mutations: vec![], ledger: drafts })
            .map_err(GovernanceError::from)?;
        finding_seqs.extend(committed.seqs);
        progress.advance(chunk.len() as u64);
    }
    s.findings = finding_seqs.len() as u64;

    progress.phase("proposing", groups.len() as u64);
    let proposer = Actor(format!("report:{source}"));
    let (mut queued, mut refused) = (0u64, 0u64);
    for (c, chunk) in groups.chunks(PROPOSALS_PER_CALL).enumerate() {
        let base = c * PROPOSALS_PER_CALL;
        let proposals = chunk
            .iter()
            .enumerate()
            .map(|(j, (sub, _))| {
                let seq = finding_seqs.get(base + j).copied().unwrap_or_default();
                let mut p = Proposal::new(
                    measure,
                    Target::Subscriber(sub.0.clone()),
                    proposer.clone(),
                    json!({"finding_seq": seq, "report": evidence.get(base + j)}),
                );
                p.subscriber = Some(sub.clone());
                p
            })
            .collect();
        // The row marks are dropped on an error: importing the report again retries the rest.
        for d in gov.propose_many(proposals, PROPOSALS_PER_COMMIT)? {
            match d?.action.state {
                ActionState::Refused | ActionState::Rejected => refused += 1,
                ActionState::Completed | ActionState::Applied => queued += 1,
                _ => {}
            }
        }
        progress.advance(chunk.len() as u64);
    }
    s.alerts_queued = queued;
    s.refused = refused;
    let now = gov.now().to_string();
    marked.commit(&hash, &s.kind, source, s.rows, &now)?;

    // 6. the import itself, in counts only
    gov.record_finding(
        measure,
        &Target::Network,
        &detector,
        json!({
            "report_imported": source, "report_kind": s.kind, "report_hash": s.report_hash,
            "rows": s.rows, "attributed": s.attributed, "ambiguous": s.ambiguous, "unmatched": s.unmatched,
            "opted_out": s.opted_out, "duplicates": s.duplicates, "bad_rows": s.bad_rows,
            "subscribers": s.subscribers, "alerts_queued": s.alerts_queued,
        }),
    )?;
    tracing::info!(
        kind = %s.kind, rows = s.rows, attributed = s.attributed, ambiguous = s.ambiguous,
        unmatched = s.unmatched, duplicates = s.duplicates, bad_rows = s.bad_rows,
        alerts_queued = s.alerts_queued, "report imported"
    );
    Ok(out)
}
