//! `mamori replay cdr`: the telephone engine over a billing file, on the data's own clock.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use mamori_core::catalog::MeasureId;
use mamori_core::config::Config;
use mamori_phone::cdr::reader::{BadRow, CdrFileError};
use mamori_phone::engine::{PhoneEvent, Subscribers};
use mamori_phone::replay::{Database, ReplaySink, replay};
use mamori_store::{SqliteStore, StoreOptions};

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
    append: bool,
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
    // Unbuffered: the CDR reader reads blocks of its own.
    let reader = Counting { inner: input, bar: bar.clone() };

    let scratch;
    let dir = match keep_db {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            if d.join("mamori.sqlite").exists() && !append {
                bail!(
                    "{} already holds a database; a replay starts from an empty one (add --append to replay into it)",
                    d.display()
                );
            }
            d.to_path_buf()
        }
        None => {
            scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
            scratch.path().to_path_buf()
        }
    };
    let store = Arc::new(SqliteStore::open(
        &dir.join("mamori.sqlite"),
        StoreOptions {
            checkpoint_every: config.ledger.checkpoint_every,
            group_commit_max: config.ledger.group_commit_max,
            // A replay's own database is rebuilt from the file and needs no fsync per decision;
            // another one's is not ours to risk.
            durable: append,
            // A replay's own database has one user, this thread; a server's has others.
            single_thread: !append,
        },
    )?);
    let db = if append { Database::Existing(store) } else { Database::Fresh(store) };
    let phone = config.phone.clone();
    let stdout = std::io::stdout().lock();
    let mut sink = Cli {
        out: BufWriter::with_capacity(1 << 16, stdout),
        bar: bar.clone(),
        file: file.display().to_string(),
        dir: dir.display().to_string(),
        bad_shown: 0,
    };
    let summary = replay(config, reader, subscribers, db, &mut sink).with_context(|| file.display().to_string())?;
    sink.out.flush()?;
    bar.finish_and_clear();
    let Some(summary) = summary else {
        eprintln!("{}: no usable rows", file.display());
        return Ok(ExitCode::SUCCESS);
    };

    let secs = started.elapsed().as_secs_f64();
    let rows = summary.rows;
    eprintln!(
        "replayed {rows} rows in {secs:.1}s ({:.0} rows/s): {} malformed, {} duplicates, {} later than {:#} (processed out of order); {} lines, {} calls abroad",
        rows as f64 / secs.max(1e-9),
        summary.bad_rows,
        summary.duplicates,
        summary.late,
        phone.reorder_lateness,
        summary.lines,
        summary.international,
    );
    let kinds: Vec<String> = summary.events.iter().map(|(k, n)| format!("{k} {n}")).collect();
    eprintln!(
        "events: {}; actuator calls recorded: {}; stage-2 unlocks: {}",
        if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") },
        summary.actuator_calls,
        summary.unlocks
    );
    if let Some(d) = keep_db {
        eprintln!("ledger and actions kept in {} (mamori --data-dir {} audit verify)", d.display(), d.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The command line's sink: events as JSON Lines on stdout, the rest on stderr.
struct Cli<W: Write> {
    out: BufWriter<W>,
    bar: indicatif::ProgressBar,
    file: String,
    dir: String,
    bad_shown: u64,
}

impl<W: Write> ReplaySink for Cli<W> {
    fn event(&mut self, e: &PhoneEvent) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, e)?;
        self.out.write_all(b"\n")
    }

    fn bad_row(&mut self, b: &BadRow) {
        let file = &self.file;
        if self.bad_shown < BAD_ROWS_SHOWN {
            self.bar.suspend(|| eprintln!("{file}: {b} (skipped)"));
        } else if self.bad_shown == BAD_ROWS_SHOWN {
            self.bar.suspend(|| eprintln!("{file}: more bad rows; counting them silently"));
        }
        self.bad_shown += 1;
    }

    fn stopped(&mut self, e: &CdrFileError) {
        let file = &self.file;
        self.bar.suspend(|| eprintln!("{file}: {e}; stopping here"));
    }

    fn not_enabled(&mut self, m: MeasureId) {
        let dir = &self.dir;
        self.bar.suspend(|| eprintln!("{m} is not enabled in {dir}: the replay does not act on it"));
    }
}
