//! Reputation and block lists an operator loaded (`mamori dns load-list`, or the API): each kept
//! as a copy beside a description in `DATA_DIR/dns-lists`, recorded in the ledger as a finding of
//! the list's measure, and picked up by a running `mamori serve`.

use std::path::{Path, PathBuf};

use mamori_core::catalog::MeasureId;
use mamori_core::config::{Config, DnsListKind};
use mamori_core::governance::{Governance, GovernanceError};
use mamori_core::subject::Target;
use serde_json::json;

use crate::reputation::{self, ListFormat, ReputationList};

/// The measure a list kind serves.
pub fn kind_measure(kind: DnsListKind) -> MeasureId {
    match kind {
        DnsListKind::Cnc => MeasureId::BotsDetectCncQueries,
        DnsListKind::Malware => MeasureId::ReputationWarnMalwareSite,
        DnsListKind::Block => MeasureId::DnsBlockFqdnList,
    }
}

/// Where loaded lists are kept.
pub fn lists_dir(config: &Config) -> PathBuf {
    config.data_dir.join("dns-lists")
}

/// What is kept beside a loaded list's copy.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ListMeta {
    /// Its kind.
    pub kind: DnsListKind,
    /// Who provides it.
    pub source: String,
    /// Its format.
    pub format: ListFormat,
    /// Its date as the provider gave it.
    pub date: Option<String>,
    /// Names it lists.
    pub names: usize,
    /// When it was loaded (RFC 3339).
    pub loaded_at: String,
    /// The ledger entry recording the load.
    pub ledger_seq: u64,
}

/// Why a list could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The source is empty.
    #[error("the source must not be empty")]
    NoSource,
    /// The file is not UTF-8 text.
    #[error("the list is not UTF-8 text")]
    NotText,
    /// Writing the copy failed.
    #[error("keeping the list in {dir}: {source}")]
    Io {
        /// The lists directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// Governance (the ledger) failed.
    #[error(transparent)]
    Governance(#[from] GovernanceError),
}

fn file_stem(kind: DnsListKind, source: &str) -> String {
    let safe: String =
        source.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{}-{safe}-{}", kind.as_str(), fnv_tag(source))
}

fn fnv_tag(s: &str) -> String {
    // A short stable tag so two sources differing only in punctuation don't collide.
    let mut h: u32 = 2166136261;
    for b in s.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16777619);
    }
    format!("{h:08x}")
}

/// Parses a list's text, records the load in the ledger, and keeps a copy for the service.
/// Returns the list as parsed (with its skipped lines) and the ledger entry.
#[allow(clippy::too_many_arguments)] // each is one fact about the list; a struct would only rename them
pub fn keep_list(
    config: &Config,
    gov: &Governance,
    kind: DnsListKind,
    source: &str,
    format: ListFormat,
    date: Option<String>,
    bytes: &[u8],
    by: Option<&str>,
) -> Result<(ReputationList, u64), ListError> {
    if source.trim().is_empty() {
        return Err(ListError::NoSource);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ListError::NotText)?;
    let list = reputation::parse(text, format, source, date);
    let seq = gov.record_finding(
        kind_measure(kind),
        &Target::Network,
        "dns.list-loaded",
        json!({"list_loaded": list.source, "kind": kind.as_str(), "date": list.date, "names": list.names.len(),
               "lines_skipped": list.skipped.len(), "loaded_by": by}),
    )?;
    let dir = lists_dir(config);
    let io = |source| ListError::Io { dir: dir.display().to_string(), source };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let stem = file_stem(kind, source);
    let meta = ListMeta {
        kind,
        source: source.to_owned(),
        format,
        date: list.date.clone(),
        names: list.names.len(),
        loaded_at: jiff::Timestamp::now().to_string(),
        ledger_seq: seq,
    };
    // The copy first, then the description: a reader sees a list only once both exist.
    let tmp = dir.join(format!("{stem}.list.tmp"));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, dir.join(format!("{stem}.list"))).map_err(io)?;
    let tmp = dir.join(format!("{stem}.json.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&meta).map_err(|e| io(std::io::Error::other(e)))?).map_err(io)?;
    std::fs::rename(&tmp, dir.join(format!("{stem}.json"))).map_err(io)?;
    Ok((list, seq))
}

/// The lists kept: (list file, description), by file name.
pub fn read_metas(dir: &Path) -> Vec<(PathBuf, ListMeta)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, ListMeta)> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let meta: ListMeta = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            let list = p.with_extension("list");
            list.exists().then_some((list, meta))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
