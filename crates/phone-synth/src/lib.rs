//! Synthetic call detail records of Japanese IP-phone lines, with labelled toll-fraud episodes and
//! the legitimate behaviour that looks like fraud.
//!
//! mamori's detectors (`phone.*`, seed 003) must tell a stolen SIP account pumping a satellite range
//! at 3 a.m. from a call centre's Monday campaign abroad, a grandmother's two-hour New Year call to
//! Manila, or a router that got a new address. Real CDRs of real subscribers can't leave a carrier
//! (they are secret under Telecommunications Business Act art. 4), so tests and benchmarks run on
//! data made here: thousands of lines of three kinds (households, small businesses, PBXs and call
//! centres) following the Japanese calendar (weekdays, weekends, national holidays, the year-end
//! break), plus episodes written to a truth file (`fraud-*` to catch, `negative-*` to leave alone).
//!
//! The CDR is mamori's generic format (see `mamori_phone::cdr`) and is as messy as real exports:
//! rows up to a few minutes late, some rows repeated, optionally some broken rows.
//!
//! Everything follows from [`SynthConfig::seed`]: the same configuration gives the same bytes.
//! Memory stays bounded: rows are generated and written one day at a time.
//!
//! ```
//! let cfg = mamori_phone_synth::SynthConfig { lines: 50, days: 3, ..Default::default() };
//! let (mut cdr, mut truth, mut subscribers) = (Vec::new(), Vec::new(), Vec::new());
//! let summary = mamori_phone_synth::generate(&cfg, &mut cdr, &mut truth, &mut subscribers).unwrap();
//! assert!(summary.rows > 0);
//! assert!(cdr.starts_with(b"call_id,start_time,end_time,line_id,"));
//! ```

mod calls;
mod episodes;
mod number;
mod population;
mod rng;
mod tariff;
mod time;
mod writer;

use std::io::{self, Write};

use jiff::civil::Date;

pub use episodes::TruthEpisode;

use crate::calls::{Call, IdSource, Ordinary, mix};
use crate::rng::RngExt;
use crate::writer::{Pending, Role, RowWriter};

/// The CDR header, as written.
pub const CDR_HEADER: &str = "call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy";

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Subscriber lines.
    pub lines: usize,
    /// Days of traffic.
    pub days: u32,
    /// First day (Japan time).
    pub start: Date,
    /// Seed of every random choice.
    pub seed: u64,
    /// Fraud episodes to place (default: about one per 1,000 line-days, at least one).
    pub fraud_episodes: Option<usize>,
    /// Hard-negative episodes to place (default: about one per 400 line-days, at least one).
    pub negative_episodes: Option<usize>,
    /// Scale ordinary traffic so the file has about this many rows.
    pub target_rows: Option<u64>,
    /// Share of calls whose row is written twice.
    pub duplicate_rate: f64,
    /// Broken rows added, as a share of calls.
    pub malformed_rate: f64,
    /// Longest delay, in seconds, of a row behind its start time in the write order.
    pub max_delay_secs: u32,
    /// Share of dialled numbers written in E.164 (`+CC…`) rather than as dialled in Japan.
    pub e164_rate: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            lines: 2000,
            days: 21,
            start: jiff::civil::date(2026, 11, 1),
            seed: 1,
            fraud_episodes: None,
            negative_episodes: None,
            target_rows: None,
            duplicate_rate: 0.005,
            malformed_rate: 0.0,
            max_delay_secs: 180,
            e164_rate: 0.05,
        }
    }
}

impl SynthConfig {
    /// Fraud episodes that will be placed.
    pub fn fraud_count(&self) -> usize {
        self.fraud_episodes.unwrap_or_else(|| (self.lines * self.days as usize / 1050).max(1))
    }

    /// Hard-negative episodes that will be placed.
    pub fn negative_count(&self) -> usize {
        self.negative_episodes.unwrap_or_else(|| (self.lines * self.days as usize / 400).max(1))
    }

    fn validate(&self) -> Result<(), SynthError> {
        let bad = |m: &str| Err(SynthError::Config(m.to_owned()));
        if self.lines == 0 || self.lines > 10_000_000 {
            return bad("lines must be between 1 and 10,000,000");
        }
        if self.days == 0 || self.days > 3660 {
            return bad("days must be between 1 and 3660");
        }
        for (name, rate) in [
            ("duplicate rate", self.duplicate_rate),
            ("malformed rate", self.malformed_rate),
            ("E.164 rate", self.e164_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return bad(&format!("{name} must be between 0 and 1"));
            }
        }
        if self.max_delay_secs > 3600 {
            return bad("max delay must be at most 3600 s");
        }
        Ok(())
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Data rows written (header excluded): calls, duplicates and broken rows.
    pub rows: u64,
    /// Distinct calls.
    pub calls: u64,
    /// Rows that repeat a call's row.
    pub duplicate_rows: u64,
    /// Broken rows.
    pub malformed_rows: u64,
    /// Rows written after a row with a later start time.
    pub out_of_order_rows: u64,
    /// Fraud episodes placed.
    pub fraud_episodes: usize,
    /// Hard-negative episodes placed.
    pub negative_episodes: usize,
    /// Calls added by episodes.
    pub episode_calls: u64,
    /// Lines.
    pub lines: usize,
    /// Factor applied to ordinary call rates (1 unless a target row count was given).
    pub scale: f64,
    /// Bytes of the CDR file.
    pub bytes: u64,
}

/// Why nothing (or not everything) was generated.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The configuration can't be generated.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An output couldn't be written.
    #[error("writing output: {0}")]
    Io(#[from] io::Error),
    /// The truth file couldn't be serialised.
    #[error("writing the truth file: {0}")]
    Json(#[from] serde_json::Error),
}

/// Generates the data set: CDR rows to `cdr_out` (CSV with header), one JSON object per episode to
/// `truth_out`, and `line_id,subscriber_id,language` to `subs_out`. Pass [`std::io::sink()`] for an
/// output you don't need.
pub fn generate(
    cfg: &SynthConfig,
    cdr_out: impl Write,
    truth_out: impl Write,
    subs_out: impl Write,
) -> Result<Summary, SynthError> {
    generate_with_profiles(cfg, cdr_out, truth_out, subs_out, io::sink())
}

/// The header of the line profiles file.
pub const PROFILES_HEADER: &str =
    "line_id,kind,usual_countries,domestic_calls_per_workday,international_calls_per_workday,new_country_from";

/// Like [`generate`], and also writes each line's profile to `profiles_out` (CSV, see
/// [`PROFILES_HEADER`]): its kind (`residential`, `business`, `pbx`), the calling codes it normally
/// calls (`;`-separated), its expected calls per workday, and a new country it starts calling
/// (`cc@time`) if a `negative-new-destination` episode gave it one. This is ground truth about
/// ordinary behaviour, for explaining false positives; a detector must not read it.
pub fn generate_with_profiles(
    cfg: &SynthConfig,
    cdr_out: impl Write,
    mut truth_out: impl Write,
    mut subs_out: impl Write,
    mut profiles_out: impl Write,
) -> Result<Summary, SynthError> {
    cfg.validate()?;
    let period = time::Period::new(cfg.start, cfg.days).map_err(SynthError::Config)?;
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut ips = population::IpTable::default();
    let mut lines = population::populate(&mut rng, cfg.lines, &mut ips);
    let mut ids = IdSource::new(cfg.seed);

    let mut planner = episodes::Planner::new(&mut rng, &period, &mut lines, &mut ips, &mut ids, cfg.e164_rate);
    planner.plan(cfg.fraud_count(), cfg.negative_count());
    let mut episode_calls = std::mem::take(&mut planner.calls);
    let truth = std::mem::take(&mut planner.truth);
    drop(planner);
    episode_calls.retain(|c| c.start >= period.start && c.start < period.end());
    episode_calls.sort_unstable_by_key(|c| (c.start, c.id));

    let mut subs = Vec::with_capacity(lines.len() * 24);
    subs.extend_from_slice(b"line_id,subscriber_id,language\n");
    for l in &lines {
        for field in [l.id.as_str(), ",", l.subscriber.as_str(), ",", l.language, "\n"] {
            subs.extend_from_slice(field.as_bytes());
        }
    }
    subs_out.write_all(&subs)?;
    subs_out.flush()?;
    profiles_out.write_all(population::profiles(&lines).as_bytes())?;
    profiles_out.flush()?;
    for t in &truth {
        serde_json::to_writer(&mut truth_out, t)?;
        truth_out.write_all(b"\n")?;
    }
    truth_out.flush()?;

    let scale = match cfg.target_rows {
        None => 1.0,
        Some(target) => {
            let ordinary: f64 = (0..period.days())
                .map(|d| {
                    let (kind, at) = (period.kinds[d], period.day_start(d));
                    lines.iter().map(|l| Ordinary::expected(l, kind, at)).sum::<f64>()
                })
                .sum();
            let extra = episode_calls.len() as f64;
            let per_call = 1.0 + cfg.duplicate_rate + cfg.malformed_rate;
            ((target as f64 / per_call - extra) / ordinary.max(1.0)).max(0.001)
        }
    };
    let ordinary = Ordinary { period: &period, scale, e164_rate: cfg.e164_rate };

    let mut out = RowWriter::new(cdr_out, &lines, &ips);
    let mut pending: Vec<Pending> = Vec::new();
    let mut day_calls: Vec<Call> = Vec::new();
    let mut next_episode_call = 0;
    let mut seq = 0u64;
    for day in 0..period.days() {
        let mut day_rng = fastrand::Rng::with_seed(mix(cfg.seed ^ mix(day as u64 + 1)));
        day_calls.clear();
        for (i, line) in lines.iter().enumerate() {
            ordinary.line_day(&mut day_rng, &mut ids, line, i as u32, day, &mut day_calls);
        }
        let day_end = period.day_start(day + 1);
        while let Some(c) = episode_calls.get(next_episode_call).filter(|c| c.start < day_end) {
            day_calls.push(*c);
            next_episode_call += 1;
        }
        for c in &day_calls {
            writer::enqueue(&mut day_rng, &mut pending, &mut seq, *c, cfg.duplicate_rate, cfg.max_delay_secs);
        }
        if cfg.malformed_rate > 0.0 && !day_calls.is_empty() {
            for _ in 0..day_rng.poisson(day_calls.len() as f64 * cfg.malformed_rate) {
                let mut call = day_calls[day_rng.usize(0..day_calls.len())];
                call.id = ids.next_id();
                seq += 1;
                let how = day_rng.u8(1..=writer::MALFORMED_KINDS);
                pending.push(Pending { key: call.start, seq, call, role: Role::Malformed(how) });
            }
        }
        // Rows delayed past midnight wait for the next day's rows; nothing of a later day sorts before
        // midnight because delays only ever make rows later.
        pending.sort_unstable_by_key(|p| (p.key, p.seq));
        let ready = pending.partition_point(|p| p.key < day_end);
        for p in pending.drain(..ready) {
            out.row(&p)?;
        }
    }
    for p in &pending {
        out.row(p)?;
    }
    let (_, written) = out.finish()?;
    let frauds = truth.iter().filter(|t| t.kind.starts_with("fraud-")).count();
    Ok(Summary {
        rows: written.rows,
        calls: written.calls,
        duplicate_rows: written.duplicates,
        malformed_rows: written.malformed,
        out_of_order_rows: written.out_of_order,
        fraud_episodes: frauds,
        negative_episodes: truth.len() - frauds,
        episode_calls: episode_calls.len() as u64,
        lines: lines.len(),
        scale,
        bytes: written.bytes,
    })
}
