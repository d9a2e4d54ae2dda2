//! `mamori-cdr-synth`: writes a synthetic CDR file, its truth file and its subscriber list.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use mamori_phone_synth::{SynthConfig, generate_with_profiles};

/// Synthetic CDRs of Japanese IP-phone lines with labelled toll-fraud episodes and hard negatives.
///
/// Writes mamori's generic CDR format (CSV: call_id,start_time,end_time,line_id,calling_number,
/// called_number,source_ip,charge_jpy; times RFC 3339 in +09:00), messy like real exports: rows up
/// to --max-delay-secs late, about --duplicate-rate of rows repeated, optionally broken rows.
///
/// Lines are households, small businesses and PBXs/call centres following the Japanese calendar.
/// Episodes go to --truth, one JSON object per line: fraud-stolen-credentials, fraud-pbx-hijack,
/// fraud-campaign (one address, several lines), fraud-country-campaign (many lines, one rare
/// country), fraud-slow; and the hard negatives negative-business-burst, negative-holiday-long-call,
/// negative-ip-change, negative-traveller, negative-new-destination, negative-night-calls,
/// negative-maritime.
///
/// The same options and --seed give the same bytes.
#[derive(Debug, Parser)]
#[command(name = "mamori-cdr-synth", version)]
struct Args {
    /// Subscriber lines.
    #[arg(long, default_value_t = 2000)]
    lines: usize,
    /// Days of traffic.
    #[arg(long, default_value_t = 21)]
    days: u32,
    /// First day, Japan time (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-01")]
    start: jiff::civil::Date,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraud episodes [default: about one per 1,000 line-days].
    #[arg(long)]
    fraud_episodes: Option<usize>,
    /// Hard-negative episodes [default: about one per 400 line-days].
    #[arg(long)]
    negative_episodes: Option<usize>,
    /// Scale ordinary traffic to write about this many rows (e.g. 10000000 for the benchmark).
    #[arg(long)]
    target_rows: Option<u64>,
    /// Share of calls whose row is written twice (same call_id, identical row).
    #[arg(long, default_value_t = 0.005)]
    duplicate_rate: f64,
    /// Broken rows to add, as a share of calls (bad times, addresses, charges, field counts…).
    #[arg(long, default_value_t = 0.0)]
    malformed_rate: f64,
    /// Longest delay of a row behind its start time in the written order, seconds.
    #[arg(long, default_value_t = 180)]
    max_delay_secs: u32,
    /// Share of dialled numbers written in E.164 (+CC…) instead of as dialled in Japan (010…, 0…).
    #[arg(long, default_value_t = 0.05)]
    e164_rate: f64,
    /// The CDR file ("-" for standard output).
    #[arg(long, default_value = "cdr.csv")]
    out: PathBuf,
    /// The truth file (JSON Lines, one episode per line); not written if omitted.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// The subscriber file (line_id,subscriber_id,language); not written if omitted.
    #[arg(long)]
    subscribers: Option<PathBuf>,
    /// Each line's profile (kind, usual countries, call rates) as CSV, for explaining false
    /// positives; ground truth that a detector must not read. Not written if omitted.
    #[arg(long)]
    profiles: Option<PathBuf>,
}

fn open(path: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        None => Box::new(io::sink()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdout().lock()),
        Some(p) => Box::new(BufWriter::new(File::create(p).with_context(|| format!("creating {}", p.display()))?)),
    })
}

fn run(args: Args) -> anyhow::Result<()> {
    let cfg = SynthConfig {
        lines: args.lines,
        days: args.days,
        start: args.start,
        seed: args.seed,
        fraud_episodes: args.fraud_episodes,
        negative_episodes: args.negative_episodes,
        target_rows: args.target_rows,
        duplicate_rate: args.duplicate_rate,
        malformed_rate: args.malformed_rate,
        max_delay_secs: args.max_delay_secs,
        e164_rate: args.e164_rate,
    };
    let began = Instant::now();
    let cdr = open(Some(&args.out))?;
    let (truth, subscribers) = (open(args.truth.as_deref())?, open(args.subscribers.as_deref())?);
    let summary = generate_with_profiles(&cfg, cdr, truth, subscribers, open(args.profiles.as_deref())?)
        .with_context(|| format!("generating {}", args.out.display()))?;
    let secs = began.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} rows ({} calls, {} duplicates, {} malformed, {} out of order), {:.1} MB, {} lines, \
         {} fraud + {} negative episodes ({} episode calls), scale {:.3}, {:.1} s ({:.0} rows/s)",
        args.out.display(),
        summary.rows,
        summary.calls,
        summary.duplicate_rows,
        summary.malformed_rows,
        summary.out_of_order_rows,
        summary.bytes as f64 / 1e6,
        summary.lines,
        summary.fraud_episodes,
        summary.negative_episodes,
        summary.episode_calls,
        summary.scale,
        secs,
        summary.rows as f64 / secs.max(1e-9),
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
