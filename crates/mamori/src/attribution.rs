//! `mamori attribution …` and the RADIUS accounting listener of `mamori serve`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use clap::Subcommand;
use jiff::SignedDuration;
use mamori_attribution::index::unix_secs;
use mamori_attribution::server::{Clients, RadiusServer, Retention, Swept};
use mamori_attribution::{Attribution, Attributor, Index, Settings, load_index, store_path};
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::subject::Actor;
use serde_json::json;

use crate::commands::instant;

/// `attribution`
#[derive(Debug, Subcommand)]
pub enum AttributionCommand {
    /// Back-fill sessions from a FreeRADIUS `detail` file (the accounting log of its `detail`
    /// module). Bad records are reported on stderr with their line number and skipped. Sessions
    /// imported while `mamori serve` runs are seen by its RADIUS listener after a restart.
    /// UTF-8 is read as is, Shift_JIS (user names from Japanese systems) converted; a file that
    /// is neither is refused whole, naming the line and byte offset, and nothing is imported.
    ImportDetail {
        /// The detail file.
        file: PathBuf,
        /// Its encoding: `auto` (UTF-8, else Shift_JIS if the whole file is valid Shift_JIS),
        /// `utf-8` or `shift_jis`.
        #[arg(long, default_value = "auto")]
        encoding: mamori_attribution::text::Encoding,
    },
    /// Which subscriber held an address at an instant: `unique`, `ambiguous` (with every
    /// candidate: overlapping sessions, or a shared CGNAT address asked without a port) or
    /// `unknown`.
    Lookup {
        /// IPv4 or IPv6 address.
        addr: IpAddr,
        /// Port (IPv4 behind carrier-grade NAT: picks the subscriber whose port block holds it).
        #[arg(long)]
        port: Option<u16>,
        /// The instant (RFC 3339, or a date taken as 00:00 Japan time).
        #[arg(long)]
        at: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn settings(config: &Config) -> anyhow::Result<Settings> {
    Ok(Settings::from_config(&config.attribution)?)
}

/// Runs one `attribution` subcommand.
pub fn attribution_cmd(config: &Config, c: AttributionCommand) -> anyhow::Result<ExitCode> {
    let path = store_path(&config.data_dir);
    match c {
        AttributionCommand::ImportDetail { file, encoding } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            // Decoded whole before anything is stored: an undecodable file imports nothing.
            let text = mamori_attribution::text::decode(&bytes, encoding)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let mut a = Attributor::open_for_writes(&path, settings(config)?)?;
            let report = a.import_detail(text.text.as_bytes())?;
            for e in &report.skipped {
                eprintln!("{}:{}: skipped: {}", file.display(), e.line, e.detail);
            }
            println!(
                "{}: {} records, {} imported ({} sessions written), {} skipped",
                file.display(),
                report.records,
                report.imported,
                report.written,
                report.skipped.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        AttributionCommand::Lookup { addr, port, at, json } => {
            let at = instant(&at)?;
            let answer = lookup(&path, addr, port, at)?;
            let (kind, subs) = match &answer {
                Attribution::Unique(s) => ("unique", vec![s.0.clone()]),
                Attribution::Ambiguous(v) => ("ambiguous", v.iter().map(|s| s.0.clone()).collect()),
                Attribution::Unknown => ("unknown", vec![]),
            };
            if json {
                println!(
                    "{}",
                    json!({"address": addr, "port": port, "at": at.to_string(), "attribution": kind, "subscribers": subs})
                );
            } else if subs.is_empty() {
                println!("{kind}");
            } else {
                println!("{kind}: {}", subs.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Answers from the sessions covering `at` only (read from the store, so it works beside a
/// running server without loading every session).
fn lookup(
    path: &Path,
    addr: IpAddr,
    port: Option<u16>,
    at: jiff::Timestamp,
) -> anyhow::Result<Attribution<mamori_core::subject::SubscriberId>> {
    if !path.exists() {
        anyhow::bail!("no attribution store at {} (nothing received or imported yet)", path.display());
    }
    let index = load_index(path, Some(unix_secs(at)))?;
    Ok(index.resolve(&index.lookup(addr, port, at)))
}

/// The ledger's name for the attribution sessions.
const SESSIONS_TABLE: &str = "attribution.sessions";

/// Writes a sweep of the attribution sessions to the ledger (count and range of their ends,
/// never addresses or subscribers).
fn record_swept(gov: &Governance, s: &Swept, by: &Actor) -> anyhow::Result<u64> {
    let ts = |secs: u32| jiff::Timestamp::from_second(i64::from(secs)).ok();
    let range = s.range.and_then(|(a, b)| Some((ts(a)?, ts(b)?)));
    Ok(gov.record_retention_swept(SESSIONS_TABLE, s.deleted as u64, range, s.cutoff, by)?)
}

/// Deletes the attribution sessions that ended longer ago than `[attribution] retention_days`
/// (nothing when there is no attribution store) and writes what it deleted to the ledger. The
/// server's RADIUS listener, if running, drops them from its index at its own next run.
pub fn retention_sweep(config: &Config, gov: &Governance, by: &Actor) -> anyhow::Result<Option<Swept>> {
    let path = store_path(&config.data_dir);
    if !path.exists() {
        return Ok(None);
    }
    let keep = SignedDuration::from_hours(24 * i64::from(config.attribution.retention_days));
    let cutoff = gov.now().checked_sub(keep).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut a = Attributor::open_for_writes(&path, settings(config)?)?;
    let (deleted, range) = a.retain(cutoff)?;
    let swept = Swept { deleted, range, cutoff };
    if deleted > 0 {
        record_swept(gov, &swept, by)?;
    }
    Ok(Some(swept))
}

/// The RADIUS accounting listener of `mamori serve` (nothing when no client is configured).
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    index: Option<Arc<RwLock<Index>>>,
}

impl Listener {
    /// Loads the sessions and starts listening, when `[attribution]` lists clients.
    pub fn start(config: &Config, gov: Arc<Governance>) -> anyhow::Result<Listener> {
        let stop = Arc::new(AtomicBool::new(false));
        let a = &config.attribution;
        let path = store_path(&config.data_dir);
        if a.clients.is_empty() {
            // No listener, but sessions imported before (`import-detail`) still answer lookups.
            let index = if path.exists() { Some(Arc::new(RwLock::new(load_index(&path, None)?))) } else { None };
            return Ok(Listener { stop, thread: None, index });
        }
        let clients = Clients::from_config(&a.clients).map_err(anyhow::Error::msg)?;
        let attributor = Attributor::open(&path, settings(config)?)?;
        let mut server = RadiusServer::bind(a.listen, clients, attributor)
            .with_context(|| format!("cannot listen for RADIUS accounting on {}", a.listen))?;
        let index = Some(server.index());
        server.on_swept(Box::new(move |s| {
            if let Err(e) = record_swept(&gov, s, &Actor::system()) {
                tracing::error!(error = %e, "attribution retention not recorded in the ledger");
            }
        }));
        let _ = mamori_server::metrics_handle();
        mamori_attribution::server::metric::describe();
        let retention = Retention {
            keep: SignedDuration::from_hours(24 * i64::from(a.retention_days)),
            every: std::time::Duration::try_from(config.scheduler.retention_every)
                .unwrap_or(std::time::Duration::from_secs(3600)),
        };
        tracing::info!(listen = %a.listen, clients = a.clients.len(), "RADIUS accounting listener started");
        let thread = server.spawn(stop.clone(), Some(retention)).context("starting the RADIUS thread")?;
        Ok(Listener { stop, thread: Some(thread), index })
    }

    /// The sessions' index shared with lookups (`None` when there is no attribution store).
    pub fn index(&self) -> Option<Arc<RwLock<Index>>> {
        self.index.clone()
    }

    /// Stops the listener (the batch in progress finishes first).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
