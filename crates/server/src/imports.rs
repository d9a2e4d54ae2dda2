//! File imports and attribution over HTTP: what `mamori reports import`, `mamori attribution
//! import-detail|lookup` do, for operators, with the same libraries and the same data files.

use std::net::IpAddr;
use std::path::Path;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use mamori_attribution::index::unix_secs;
use mamori_attribution::{Attribution, Attributor, Index, Settings, store_path};
use mamori_core::config::Config;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::{ApiPerson, Right};
use crate::controllers::{ApiError, instant, off_thread};

fn unprocessable(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "import failed");
    ApiError::internal()
}

fn settings(config: &Config) -> Result<Settings, ApiError> {
    Settings::from_config(&config.attribution).map_err(unprocessable)
}

fn sessions_path(config: &Config) -> Result<std::path::PathBuf, ApiError> {
    let path = store_path(&config.data_dir);
    if !path.exists() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "no attribution store yet: import RADIUS sessions first, or run mamori serve with [attribution] clients"
                .into(),
        ));
    }
    Ok(path)
}

fn load_index(path: &Path, at: Option<u32>) -> Result<Index, ApiError> {
    mamori_attribution::load_index(path, at).map_err(internal)
}

/// The text encoding of an uploaded file.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct DetailQuery {
    /// auto (default), utf-8 or shift_jis.
    encoding: Option<String>,
}

/// Back-fills RADIUS accounting from a FreeRADIUS `detail` file (the body). Operators.
#[utoipa::path(post, path = "/api/attribution/import-detail", tag = "attribution", params(DetailQuery),
    request_body(content = String, content_type = "text/plain", description = "a FreeRADIUS detail file"),
    responses((status = 200, description = "records read, imported, sessions written, skipped lines"), (status = 403, description = "auditor"), (status = 422, description = "undecodable")))]
pub(crate) async fn import_detail(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Query(q): Query<DetailQuery>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Operate)?;
    let encoding: mamori_attribution::text::Encoding =
        q.encoding.as_deref().unwrap_or("auto").parse().map_err(unprocessable)?;
    let config = s.gov.config().clone();
    let report = off_thread(move || {
        // Decoded whole before anything is stored: an undecodable file imports nothing.
        let text = mamori_attribution::text::decode(&body, encoding).map_err(unprocessable)?;
        let mut a = Attributor::open_for_writes(&store_path(&config.data_dir), settings(&config)?).map_err(internal)?;
        a.import_detail(text.text.as_bytes()).map_err(internal)
    })
    .await?;
    let skipped: Vec<_> =
        report.skipped.iter().take(100).map(|e| json!({"line": e.line, "reason": e.detail})).collect();
    Ok(Json(json!({"records": report.records, "imported": report.imported, "written": report.written,
                   "skipped": report.skipped.len(), "skipped_lines": skipped})))
}

/// An attribution question.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct LookupQuery {
    /// IPv4 or IPv6 address.
    addr: String,
    /// Source port, behind carrier-grade NAT.
    port: Option<u16>,
    /// The instant (RFC 3339).
    at: String,
}

/// Which subscriber held an address (and port) at an instant: unique, ambiguous with the
/// candidates, or unknown. Operators (an auditor has no business linking addresses to people).
#[utoipa::path(get, path = "/api/attribution/lookup", tag = "attribution", params(LookupQuery),
    responses((status = 200, description = "the attribution"), (status = 403, description = "auditor"), (status = 409, description = "no attribution store yet")))]
pub(crate) async fn lookup(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Query(q): Query<LookupQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Operate)?;
    let addr: IpAddr = q.addr.parse().map_err(|_| unprocessable(format!("{:?} is not an IP address", q.addr)))?;
    let at = instant(&q.at)?;
    let path = sessions_path(s.gov.config())?;
    let port = q.port;
    let answer = off_thread(move || {
        let index = load_index(&path, Some(unix_secs(at)))?;
        Ok::<_, ApiError>(index.resolve(&index.lookup(addr, port, at)))
    })
    .await?;
    let (kind, subs) = match &answer {
        Attribution::Unique(s) => ("unique", vec![s.0.clone()]),
        Attribution::Ambiguous(v) => ("ambiguous", v.iter().map(|s| s.0.clone()).collect()),
        Attribution::Unknown => ("unknown", vec![]),
    };
    Ok(Json(json!({"address": addr, "port": port, "at": at.to_string(), "attribution": kind, "subscribers": subs})))
}

/// Which report the body is.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ReportQuery {
    /// The report kind (as `mamori reports import --kind`), or a configured mapping's name.
    kind: String,
    /// Who sent it (Shadowserver, NOTICE, a blacklist operator…).
    source: String,
    /// auto (default), utf-8 or shift_jis.
    encoding: Option<String>,
}

struct Quiet;

impl mamori_reports_import::Progress for Quiet {
    fn phase(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Imports a third-party report (the body): each row attributed at the report's time, findings
/// recorded and alerts queued through governance, without duplicates on re-import. Operators.
#[utoipa::path(post, path = "/api/reports/import", tag = "reports", params(ReportQuery),
    request_body(content = String, content_type = "text/csv", description = "the report"),
    responses((status = 200, description = "counts, bad rows and unattributed rows (first 1000)"), (status = 403, description = "auditor"),
              (status = 409, description = "no attribution store yet"), (status = 422, description = "unknown kind, missing columns, undecodable")))]
pub(crate) async fn import_report(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Query(q): Query<ReportQuery>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    use mamori_reports_import::format::{Format, Kind};
    p.require(Right::Operate)?;
    if q.source.trim().is_empty() {
        return Err(unprocessable("source must not be empty"));
    }
    let kind: Kind = q.kind.parse().map_err(|e: String| unprocessable(e))?;
    let config = s.gov.config().clone();
    let format = match &kind {
        Kind::Custom(name) => {
            let m = config.report_import.mappings.iter().find(|m| &m.name == name).ok_or_else(|| {
                unprocessable(format!("no [[report_import.mappings]] entry named {name:?} in the configuration"))
            })?;
            Format::custom(m).map_err(|e: String| unprocessable(e))?
        }
        k => Format::builtin(k).ok_or_else(|| unprocessable("no built-in format"))?,
    };
    let encoding: mamori_reports_import::Encoding =
        q.encoding.as_deref().unwrap_or("auto").parse().map_err(unprocessable)?;
    let path = sessions_path(&config)?;
    let gov = s.gov.clone();
    let source = q.source.clone();
    let outcome = off_thread(move || {
        let index = load_index(&path, None)?;
        let mut seen = mamori_reports_import::SeenDb::open(&mamori_reports_import::seen_path(&config.data_dir))
            .map_err(internal)?;
        let report = mamori_reports_import::import::Report {
            file: "request body",
            bytes: &body,
            format: &format,
            source: &source,
            encoding,
        };
        mamori_reports_import::import(report, &index, &gov, &mut seen, &Quiet).map_err(|e| match e {
            mamori_reports_import::ImportError::Governance(g) => ApiError::from(g),
            other => unprocessable(other),
        })
    })
    .await?;
    let bad: Vec<_> = outcome.bad.iter().take(1000).collect();
    let unattributed: Vec<_> = outcome.unattributed.iter().take(1000).collect();
    Ok(Json(json!({"summary": outcome.summary, "bad_rows": bad, "unattributed": unattributed,
                   "unattributed_total": outcome.unattributed.len()})))
}

/// A list being loaded.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ListQuery {
    /// cnc, malware or block.
    kind: String,
    /// The source's name (feed or provider).
    source: String,
    /// plain, hosts or rpz (default plain).
    format: Option<String>,
    /// The list's date as the provider gave it.
    date: Option<String>,
}

/// Loads a C&C, malware-site or block list (the body: plain, hosts or an RPZ zone) for the DNS
/// measures (`mamori dns load-list`): recorded in the ledger and picked up by the DNS engine of a
/// running service. Operators.
#[utoipa::path(post, path = "/api/dns/lists", tag = "dns", params(ListQuery),
    request_body(content = String, content_type = "text/plain", description = "the list"),
    responses((status = 200, description = "names loaded, lines skipped, the ledger entry"), (status = 403, description = "auditor"), (status = 422, description = "bad kind, format or text")))]
pub(crate) async fn load_dns_list(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Query(q): Query<ListQuery>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    use mamori_dns::reputation::ListFormat;
    p.require(Right::Operate)?;
    let kind: mamori_core::config::DnsListKind = q.kind.parse().map_err(|e: String| unprocessable(e))?;
    let format = match q.format.as_deref().unwrap_or("plain") {
        "plain" => ListFormat::Plain,
        "hosts" => ListFormat::Hosts,
        "rpz" => ListFormat::Rpz,
        other => return Err(unprocessable(format!("format {other:?}: expected plain, hosts or rpz"))),
    };
    let gov = s.gov.clone();
    let (source, date, by) = (q.source, q.date, p.name.clone());
    let (list, seq) = off_thread(move || {
        let config = gov.config().clone();
        mamori_dns::lists::keep_list(&config, &gov, kind, &source, format, date, &body, Some(&by)).map_err(
            |e| match e {
                mamori_dns::lists::ListError::Governance(g) => ApiError::from(g),
                mamori_dns::lists::ListError::Io { .. } => internal(e),
                other => unprocessable(other),
            },
        )
    })
    .await?;
    let skipped: Vec<_> = list.skipped.iter().take(100).map(|e| json!({"line": e.line, "reason": e.reason})).collect();
    Ok(Json(
        json!({"names": list.names.len(), "skipped": list.skipped.len(), "skipped_lines": skipped, "ledger_entry": seq}),
    ))
}
