//! `mamori reports import FILE --kind KIND --source NAME`: third-party reports (sinkholes,
//! open resolvers, vulnerable devices, weak IoT credentials, takedown lists, blacklists) →
//! attribution at each row's instant → findings and alerts through governance.
//!
//! Beside the summary on stdout, two files go next to the report (or into `--out`):
//! `STEM.summary.json` (the counts and the bad rows) and `STEM.unattributed.csv` (every
//! unmatched and ambiguous row with its line, for the operator to follow up). Nothing is dropped
//! silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use mamori_attribution::{load_index, store_path};
use mamori_core::config::Config;
use mamori_reports_import::format::{Format, Kind};
use mamori_reports_import::import::Report;
use mamori_reports_import::{Encoding, Outcome, Progress, SeenDb, seen_path};

/// Bad rows printed on stderr (all are counted, and listed in the summary file up to
/// [`BAD_ROWS_KEPT`]).
const BAD_ROWS_SHOWN: usize = 20;
/// Bad rows listed in the summary file.
const BAD_ROWS_KEPT: usize = 10_000;

/// `reports`
#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Import a third-party report: each row is attributed to the subscriber who held the
    /// address at the row's time (RADIUS sessions), becomes a finding of the report's measure
    /// with the source recorded, and a proposal for that subscriber (governance queues the
    /// alert; notify sends at most one per subscriber, measure and period). Subscribers who
    /// opted out are dropped before anything else. Importing the same rows again creates
    /// nothing new. Kinds: shadowserver-sinkhole and takedown (bots.alert-from-third-party),
    /// shadowserver-dns and shadowserver-vuln (router.alert-vulnerable), notice-iot
    /// (iot.alert-weak-credentials), blacklist (mail.blacklist-alert), custom:NAME (a
    /// `[[report_import.mappings]]` entry). UTF-8 (with or without a BOM) is read as is,
    /// Shift_JIS converted; any other file is refused whole, naming the line and byte offset.
    Import {
        /// The report (CSV with a header).
        file: PathBuf,
        /// The report's kind.
        #[arg(long)]
        kind: String,
        /// Who delivered it (e.g. shadowserver, notice, jpcert): recorded with each finding.
        #[arg(long)]
        source: String,
        /// Where the summary and the list of unattributed rows go (default: beside the report).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// The report's encoding: `auto` (UTF-8, else Shift_JIS if the whole file is valid
        /// Shift_JIS), `utf-8` (refuse anything else) or `shift_jis`.
        #[arg(long, default_value = "auto")]
        encoding: Encoding,
    },
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn phase(&self, name: &'static str, total: u64) {
        self.0.set_position(0);
        self.0.set_length(total);
        self.0.set_message(name);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

/// Runs one `reports` subcommand.
pub fn reports_cmd(config: &Config, c: ReportsCommand) -> anyhow::Result<ExitCode> {
    let ReportsCommand::Import { file, kind, source, out, quiet, encoding } = c;
    let kind: Kind = kind.parse().map_err(anyhow::Error::msg)?;
    if source.trim().is_empty() {
        bail!("--source must not be empty");
    }
    let format = match &kind {
        Kind::Custom(name) => {
            let Some(m) = config.report_import.mappings.iter().find(|m| &m.name == name) else {
                bail!("no `[[report_import.mappings]]` entry named `{name}` in the configuration");
            };
            Format::custom(m).map_err(anyhow::Error::msg)?
        }
        k => Format::builtin(k).context("no built-in format")?,
    };
    let name = file.display().to_string();
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {name}"))?;

    let sessions = store_path(&config.data_dir);
    if !sessions.exists() {
        bail!(
            "no attribution store at {} (import RADIUS sessions first: mamori attribution import-detail, or mamori serve with [attribution] clients)",
            sessions.display()
        );
    }
    let gov = crate::commands::open(config)?;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg:<12} {pos}/{len} {bar:30} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    bar.set_message("sessions");
    let index = load_index(&sessions, None)?;
    let mut seen = SeenDb::open(&seen_path(&config.data_dir))?;
    let report = Report { file: &name, bytes: &bytes, format: &format, source: &source, encoding };
    let outcome = mamori_reports_import::import(report, &index, &gov, &mut seen, &Bar(bar.clone()));
    bar.finish_and_clear();
    let outcome = outcome?;

    for b in outcome.bad.iter().take(BAD_ROWS_SHOWN) {
        eprintln!("{name}:{}: bad row: {} (skipped)", b.line, b.reason);
    }
    if outcome.bad.len() > BAD_ROWS_SHOWN {
        eprintln!("{name}: {} more bad rows (listed in the summary file)", outcome.bad.len() - BAD_ROWS_SHOWN);
    }
    let dir = match &out {
        Some(d) => d.clone(),
        None => file.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    let (summary_path, list_path) = write_files(&dir, &stem, &outcome)?;
    let s = &outcome.summary;
    if let Some(at) = &s.previously_imported {
        println!("note: this file was imported before, at {at}");
    }
    println!(
        "{name} ({} → {}), source {}\n  rows          {}\n  attributed    {}\n  ambiguous     {}\n  unmatched     {}\n  opted out     {}\n  duplicates    {}\n  bad rows      {}\n  subscribers   {}\n  findings      {}\n  alerts queued {}\n  refused       {}\n  summary: {}\n  unattributed rows: {}",
        s.kind,
        s.measure,
        s.source,
        s.rows,
        s.attributed,
        s.ambiguous,
        s.unmatched,
        s.opted_out,
        s.duplicates,
        s.bad_rows,
        s.subscribers,
        s.findings,
        s.alerts_queued,
        s.refused,
        summary_path.display(),
        list_path.display(),
    );
    Ok(ExitCode::SUCCESS)
}

fn write_files(dir: &Path, stem: &str, o: &Outcome) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let summary_path = dir.join(format!("{stem}.summary.json"));
    let list_path = dir.join(format!("{stem}.unattributed.csv"));
    let bad: Vec<_> = o.bad.iter().take(BAD_ROWS_KEPT).collect();
    let json = serde_json::json!({"summary": o.summary, "bad_rows": bad, "bad_rows_listed": bad.len(),
                                  "unattributed_file": list_path});
    std::fs::write(&summary_path, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    let f = std::fs::File::create(&list_path).with_context(|| format!("writing {}", list_path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    writeln!(w, "line,status,timestamp,address,port,detail,candidates")?;
    for u in &o.unattributed {
        writeln!(
            w,
            "{},{},{},{},{},{},{}",
            u.line,
            u.status,
            u.at,
            u.addr,
            u.port.map(|p| p.to_string()).unwrap_or_default(),
            csv_field(u.detail.as_deref().unwrap_or("")),
            csv_field(&u.candidates.join(" ")),
        )?;
    }
    w.flush()?;
    Ok((summary_path, list_path))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}
