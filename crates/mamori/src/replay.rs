//! `mamori replay cdr`: the telephone engine over a billing file, on the data's own clock.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use jiff::Timestamp;
use mamori_core::actuator::{Actuator, RecordingActuator};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::DataClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, requires_notice};
use mamori_core::subject::Actor;
use mamori_phone::cdr::Cdr;
use mamori_phone::cdr::order::Reorder;
use mamori_phone::cdr::reader::CdrReader;
use mamori_phone::engine::{Engine, Mode, PhoneEvent, Subscribers};
use mamori_phone::numbering::NumberingPlan;
use mamori_store::{SqliteStore, StoreOptions};

/// The measures a replay runs (the others are publications and requests, not detections).
const REPLAYED: [MeasureId; 5] = [
    MeasureId::PhoneSuspendOnRequest,
    MeasureId::PhoneSuspendDormant,
    MeasureId::PhoneSuspendLineOnSurge,
    MeasureId::PhoneSuspendSipAuthFromIp,
    MeasureId::PhoneRestrictCountry,
];

/// Bad rows printed in full before only counting them.
const BAD_ROWS_SHOWN: u64 = 20;

/// Counts bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Runs the replay; events to stdout, everything else to stderr.
pub fn replay_cdr(
    config: Config,
    file: &Path,
    subscribers: Option<&Path>,
    keep_db: Option<&Path>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let subscribers = match subscribers {
        Some(p) => Subscribers::load(p)?,
        None => Subscribers::default(),
    };
    let (input, size): (Box<dyn Read>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::with_draw_target(size, indicatif::ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bar:30} {binary_bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let reader = BufReader::with_capacity(1 << 20, Counting { inner: input, bar: bar.clone() });
    let mut cdrs = CdrReader::new(reader, NumberingPlan::new()).with_context(|| format!("{}", file.display()))?;

    // The first good row sets the data clock before anything is written to the ledger.
    let mut bad_shown = 0u64;
    let mut report_bad = |bar: &indicatif::ProgressBar, b: &mamori_phone::cdr::reader::BadRow| {
        if bad_shown < BAD_ROWS_SHOWN {
            bar.suspend(|| eprintln!("{}: {b} (skipped)", file.display()));
        } else if bad_shown == BAD_ROWS_SHOWN {
            bar.suspend(|| eprintln!("{}: more bad rows; counting them silently", file.display()));
        }
        bad_shown += 1;
    };
    let first = loop {
        match cdrs.next_row().with_context(|| file.display().to_string())? {
            None => break None,
            Some(Ok(c)) => break Some(c),
            Some(Err(b)) => report_bad(&bar, &b),
        }
    };
    let Some(first) = first else {
        bar.finish_and_clear();
        eprintln!("{}: no usable rows ({} read, {} malformed)", file.display(), cdrs.rows, cdrs.bad_rows);
        return Ok(ExitCode::SUCCESS);
    };

    let scratch;
    let dir = match keep_db {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            if d.join("mamori.sqlite").exists() {
                bail!("{} already holds a database; a replay starts from an empty one", d.display());
            }
            d.to_path_buf()
        }
        None => {
            scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
            scratch.path().to_path_buf()
        }
    };
    let store = SqliteStore::open(
        &dir.join("mamori.sqlite"),
        StoreOptions {
            checkpoint_every: config.ledger.checkpoint_every,
            group_commit_max: config.ledger.group_commit_max,
            // A replay's database is rebuilt from the file; it needs no fsync per decision.
            durable: false,
        },
    )?;
    let clock = DataClock::new(first.start);
    let phone = config.phone.clone();
    let gov = Arc::new(Governance::new(Arc::new(store), Arc::new(clock.clone()), Arc::new(config))?);
    let replayer = Actor("mamori replay".into());
    for m in REPLAYED {
        if requires_notice(m) {
            gov.record_notice(m, "https://replay.invalid/terms", "replay", None, &replayer)?;
        }
        gov.enable_measure(m, &replayer)?;
    }
    let recorder = Arc::new(RecordingActuator::default());
    let mut engine = Engine::new(
        gov.clone(),
        &phone,
        subscribers,
        vec![recorder.clone() as Arc<dyn Actuator>],
        Mode::Replay(clock.clone()),
    )?;

    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut emit = |events: Vec<PhoneEvent>, out: &mut BufWriter<_>| -> anyhow::Result<()> {
        for e in events {
            *by_kind.entry(e.event).or_default() += 1;
            serde_json::to_writer(&mut *out, &e)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };

    let mut reorder = Reorder::new(phone.reorder_lateness);
    let mut released: Vec<Cdr> = Vec::with_capacity(1024);
    let mut last_end: Timestamp = first.end;
    reorder.push(first, &mut |c| released.push(c));
    loop {
        let row = match cdrs.next_row() {
            Ok(r) => r,
            Err(e) => {
                // The rest of the file can't be read: what was read still counts.
                bar.suspend(|| eprintln!("{}: {e}; stopping here", file.display()));
                break;
            }
        };
        match row {
            None => break,
            Some(Err(b)) => report_bad(&bar, &b),
            Some(Ok(c)) => {
                last_end = last_end.max(c.end);
                if c.is_international() {
                    reorder.push(c, &mut |c| released.push(c));
                } else if reorder.first_time(&c) {
                    // Most rows: they teach a line its own addresses and numbers, in any order.
                    engine.on_domestic_cdr(&c);
                }
            }
        }
        if !released.is_empty() {
            for c in released.drain(..) {
                engine.on_cdr(&c)?;
            }
            emit(engine.take_events(), &mut out)?;
        }
    }
    reorder.finish(&mut |c| released.push(c));
    for c in released.drain(..) {
        engine.on_cdr(&c)?;
    }
    // Let the last calls leave the window and the cool-downs run, on data time.
    let tail = phone.window + phone.ip_cooldown.max(phone.country_cooldown) + phone.interval;
    engine.finish(last_end.checked_add(tail).unwrap_or(last_end))?;
    emit(engine.take_events(), &mut out)?;
    out.flush()?;
    bar.finish_and_clear();

    let secs = started.elapsed().as_secs_f64();
    let rows = cdrs.rows;
    eprintln!(
        "replayed {rows} rows in {secs:.1}s ({:.0} rows/s): {} malformed, {} duplicates, {} later than {:#} (processed out of order); {} lines, {} calls abroad",
        rows as f64 / secs.max(1e-9),
        cdrs.bad_rows,
        reorder.duplicates,
        reorder.late,
        phone.reorder_lateness,
        engine.lines(),
        engine.counters.international,
    );
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    eprintln!(
        "events: {}; actuator calls recorded: {}; stage-2 unlocks: {}",
        if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") },
        recorder.calls().len(),
        engine.counters.unlocks
    );
    if let Some(d) = keep_db {
        eprintln!("ledger and actions kept in {} (mamori --data-dir {} audit verify)", d.display(), d.display());
    }
    Ok(ExitCode::SUCCESS)
}
