//! Ledger benchmark (issue 3): durable appends per second with group commit, and verify speed,
//! beside the same machine's raw SQLite insert rate, all measured in one run on one disk.
//!
//! ```text
//! cargo run --release -p mamori-bench --bin ledger -- --entries 1000000
//! ```
//!
//! Cases, in order (each on a fresh database file in the same directory):
//!
//! * **disk**: 4 KiB in-place `pwrite` + `fdatasync`, for context: the disk's sync ceiling.
//! * **A**: raw SQLite (rusqlite, WAL, `synchronous = FULL`), one ledger-shaped row per
//!   autocommit transaction: every row durable on its own. Bounded (`--raw-rows`, `--raw-secs`).
//! * **B**: the same rows, 1000 per transaction: the best a raw durable insert can do.
//! * **C**: mamori, one producer pipelining single-entry batches through `submit()` with a window
//!   of `--window` outstanding receipts; every entry acknowledged durable before the clock stops.
//! * **P**: building C's batches without a store, for context: the producer's own cost.
//! * **D1 / DK**: mamori, 1 and `--producers` threads each calling the blocking `Store::commit`
//!   with single-entry batches: group commit under blocking callers. Bounded.
//! * **S**: raw SQLite scan of C's ledger (same columns, every byte touched), the read baseline.
//! * **V**: `verify_ledger(None)` over C's ledger (re-hashes and links every entry).
//!
//! The raw rows have the ledger's exact table (same columns, `STRICT`, same two indexes) and
//! bodies of the same size, but their hashes are cheap filler: the baseline is SQLite alone, so a
//! ratio below 1 is mamori's whole cost (JSON, BLAKE3 chain, savepoints, queueing).
//!
//! "flushes" are the device's completed cache-flush requests during the case (from
//! `/proc/diskstats`; the whole device, so another process's syncs count too): about one per
//! `fsync`, so entries / flush approximates the average group-commit size.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use mamori_bench::{
    Args, Device, DiskCounters, ThreadTime, command_line, fmt_rate, fmt_ratio, machine_description, process_cpu,
    progress, rate, thousands, thread_time,
};
use mamori_core::catalog::MeasureId;
use mamori_core::ledger::{EventKind, LedgerDraft};
use mamori_core::store::{Batch, Store};
use mamori_core::subject::Actor;
use mamori_store::{SqliteStore, StoreOptions};
use rusqlite::{Connection, params};
use serde_json::json;

const USAGE: &str = "ledger: mamori ledger append/verify benchmark beside raw SQLite

usage: ledger [--entries N] [--dir PATH] [options]

  --entries N           entries for B, C, V (default 1000000)
  --dir PATH            where the database files go (default: a temporary directory,
                        removed afterwards; with --dir the files are kept)
  --raw-rows N          bound for A and D1 (default 20000)
  --raw-secs S          time bound for A and D1 (default 10)
  --window N            outstanding receipts in C (default 8192)
  --producers K         threads in DK (default 64)
  --blocking-entries N  bound for DK (default min(entries, 200000))
  --blocking-secs S     time bound for DK (default 20)
  --group-max N         StoreOptions::group_commit_max (default: the store's default)
  --checkpoint-every N  StoreOptions::checkpoint_every (default: the store's default)
  --skip-raw            skip A and B (ratios are then not printed)";

const KNOWN: &[&str] = &[
    "entries",
    "dir",
    "raw-rows",
    "raw-secs",
    "window",
    "producers",
    "blocking-entries",
    "blocking-secs",
    "group-max",
    "checkpoint-every",
    "skip-raw",
];

/// 2026-11-24T12:00:00Z, in microseconds since the epoch; entries are 1.7 ms apart.
const BASE_US: i64 = 1_795_521_600_000_000;
const STEP_US: i64 = 1_700;

/// The ledger table exactly as the store's schema creates it.
const LEDGER_DDL: &str = "
    CREATE TABLE ledger (
        seq       INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        kind      TEXT NOT NULL,
        measure   TEXT,
        action_id TEXT,
        subject   TEXT,
        actor     TEXT NOT NULL,
        body      TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    ) STRICT;
    CREATE INDEX ledger_by_at ON ledger (at);
    CREATE INDEX ledger_by_measure ON ledger (measure, seq);
    CREATE INDEX ledger_by_action ON ledger (action_id, seq);
";

const INSERT: &str = "INSERT INTO ledger (seq, at, kind, measure, action_id, subject, actor, body, prev_hash, hash)
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The store's writer thread, as Linux shortens its name.
const WRITER_THREAD: &str = "mamori-store-w";

const KINDS: [EventKind; 4] = [EventKind::Finding, EventKind::Proposed, EventKind::ConsentRequested, EventKind::Test];
const TIME_CLASSES: [&str; 4] = ["night", "day", "evening", "holiday"];

/// The varying content of entry `i`, shared by the raw rows and mamori's drafts.
struct Content {
    kind: EventKind,
    measure: MeasureId,
    action_id: Option<String>,
    subject: String,
    charge_jpy: u64,
    calls: u64,
    dest: String,
    time_class: &'static str,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn content(i: u64) -> Content {
    let r = mix(i);
    let kind = KINDS[(r % 4) as usize];
    Content {
        kind,
        measure: MeasureId::ALL[((r >> 8) as usize) % MeasureId::ALL.len()],
        action_id: (kind != EventKind::Finding).then(|| format!("act-{:08x}", (r >> 16) as u32 % 200_000)),
        subject: format!("line:0312{:06}", (r >> 24) % 1_000_000),
        charge_jpy: 1_000 + (r >> 12) % 90_000,
        calls: 1 + (r >> 40) % 400,
        dest: format!("+88216{:07}", (r >> 20) % 10_000_000),
        time_class: TIME_CLASSES[((r >> 60) % 4) as usize],
    }
}

fn at_us(i: u64) -> i64 {
    BASE_US + i as i64 * STEP_US
}

/// RFC 3339 with microseconds, like the store's `format_time`, without a date library (valid
/// while the entries stay inside November 2026: about 3.7 billion entries).
fn at_text(i: u64) -> String {
    let off = i as i64 * STEP_US + 12 * 3_600_000_000;
    let (days, us) = (off / 86_400_000_000, off % 86_400_000_000);
    let s = us / 1_000_000;
    format!("2026-11-{:02}T{:02}:{:02}:{:02}.{:06}Z", 24 + days, s / 3600, s / 60 % 60, s % 60, us % 1_000_000)
}

/// The JSON body text, keys in serde_json's (sorted) order, ~120 bytes.
fn body_text(c: &Content) -> String {
    format!(
        r#"{{"evidence":{{"calls":{},"charge_jpy":{},"dest":"{}","window_s":300}},"rule":"surge.v2","time_class":"{}"}}"#,
        c.calls, c.charge_jpy, c.dest, c.time_class
    )
}

fn draft(i: u64) -> LedgerDraft {
    let c = content(i);
    let mut d = LedgerDraft::new(
        c.kind,
        Actor("bench".into()),
        json!({
            "evidence": {"charge_jpy": c.charge_jpy, "calls": c.calls, "dest": c.dest, "window_s": 300},
            "time_class": c.time_class,
            "rule": "surge.v2",
        }),
    )
    .measure(c.measure)
    .subject(c.subject);
    d.action_id = c.action_id;
    d
}

fn batch(i: u64) -> Result<Batch> {
    Ok(Batch { at: Timestamp::from_microsecond(at_us(i))?, mutations: Vec::new(), ledger: vec![draft(i)] })
}

fn filler_hash(seq: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    for (k, chunk) in h.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(seq.wrapping_mul(4).wrapping_add(k as u64)).to_le_bytes());
    }
    h
}

/// Inserts raw row `i` (sequence `i + 1`).
fn insert_raw(st: &mut rusqlite::CachedStatement<'_>, i: u64, prev: &mut [u8; 32]) -> Result<()> {
    let c = content(i);
    let hash = filler_hash(i + 1);
    st.execute(params![
        i as i64 + 1,
        at_text(i),
        c.kind.as_str(),
        c.measure.as_str(),
        c.action_id,
        c.subject,
        "bench",
        body_text(&c),
        &prev[..],
        &hash[..]
    ])?;
    *prev = hash;
    Ok(())
}

fn raw_db(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("{}: cannot switch to WAL (got {mode})", path.display());
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(LEDGER_DDL)?;
    Ok(conn)
}

/// One measured case.
struct Case {
    id: &'static str,
    what: String,
    count: u64,
    elapsed: Duration,
    disk: Option<DiskCounters>,
    /// Process CPU time during the case.
    cpu: Option<Duration>,
    /// The store's writer thread during the case.
    writer: Option<ThreadTime>,
}

impl Case {
    fn rate(&self) -> f64 {
        rate(self.count, self.elapsed)
    }

    /// Process CPU time over wall time: 2.00 means both cores of a 2-core machine were busy.
    fn cores(&self) -> String {
        self.cpu.map(|c| format!("{:.2}", c.as_secs_f64() / self.elapsed.as_secs_f64())).unwrap_or_else(|| "–".into())
    }

    /// The writer thread's share of the wall time on a CPU, and waiting for one.
    fn writer_busy(&self) -> String {
        let wall = self.elapsed.as_secs_f64();
        self.writer
            .map(|w| {
                format!(
                    "{:.0}% (+{:.0}% runq)",
                    100.0 * w.on_cpu.as_secs_f64() / wall,
                    100.0 * w.runq_wait.as_secs_f64() / wall
                )
            })
            .unwrap_or_else(|| "–".into())
    }
}

struct Bench {
    dir: PathBuf,
    device: Option<Device>,
}

impl Bench {
    fn fresh(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let f = PathBuf::from(format!("{}{suffix}", p.display()));
            if f.exists() {
                std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
            }
        }
        Ok(p)
    }

    fn counters(&self) -> Option<DiskCounters> {
        self.device.and_then(|d| d.counters())
    }

    /// Times `f` (which returns how many items it did) and the device counters around it.
    fn measure(&self, id: &'static str, what: String, f: impl FnOnce() -> Result<u64>) -> Result<Case> {
        eprintln!("[{id}] {what}");
        let before = self.counters();
        let (cpu0, writer0) = (process_cpu(), thread_time(WRITER_THREAD));
        let t = Instant::now();
        let count = f()?;
        let elapsed = t.elapsed();
        let (cpu1, writer1) = (process_cpu(), thread_time(WRITER_THREAD));
        let disk = self.counters().zip(before).map(|(a, b)| a.since(b));
        let cpu = cpu1.zip(cpu0).map(|(a, b)| a.saturating_sub(b));
        let writer = writer1.zip(writer0).map(|(a, b)| a.since(b));
        let case = Case { id, what, count, elapsed, disk, cpu, writer };
        eprintln!(
            "[{id}] {} in {:.2} s = {}/s{}",
            thousands(case.count),
            elapsed.as_secs_f64(),
            fmt_rate(case.rate()),
            case.disk.map(|d| format!(", {} device flushes", thousands(d.flushes))).unwrap_or_default()
        );
        Ok(case)
    }
}

/// Opens a store and waits (up to a second) until its writer thread has named itself, so that the
/// writer's CPU time can be told apart from the start of the first case.
fn open_store(path: &Path, options: StoreOptions) -> Result<SqliteStore> {
    let store = SqliteStore::open(path, options)?;
    for _ in 0..100 {
        if thread_time(WRITER_THREAD).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(store)
}

fn disk_probe(path: &Path, secs: f64) -> Result<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path)?;
        let page = [0x5au8; 4096];
        // Allocate first so that the timed syncs are data-only, like a WAL being reused.
        for k in 0..64u64 {
            f.write_all_at(&page, k * 4096)?;
        }
        f.sync_all()?;
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed().as_secs_f64() < secs {
            f.write_all_at(&page, (n % 64) * 4096)?;
            f.sync_data()?;
            n += 1;
        }
        drop(f);
        std::fs::remove_file(path)?;
        Ok(n)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, secs);
        Ok(0)
    }
}

fn raw_autocommit(path: &Path, max_rows: u64, max: Duration) -> Result<u64> {
    let conn = raw_db(path)?;
    let mut st = conn.prepare_cached(INSERT)?;
    let mut prev = [0u8; 32];
    let t = Instant::now();
    let mut i = 0;
    while i < max_rows && t.elapsed() < max {
        insert_raw(&mut st, i, &mut prev)?;
        i += 1;
        if i % 5_000 == 0 {
            progress("A", i, max_rows, t.elapsed())?;
        }
    }
    Ok(i)
}

fn raw_batched(path: &Path, rows: u64, per_tx: u64) -> Result<u64> {
    let mut conn = raw_db(path)?;
    let mut prev = [0u8; 32];
    let t = Instant::now();
    let mut i = 0;
    while i < rows {
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(INSERT)?;
            let end = (i + per_tx).min(rows);
            while i < end {
                insert_raw(&mut st, i, &mut prev)?;
                i += 1;
            }
        }
        tx.commit()?;
        if i % 100_000 == 0 {
            progress("B", i, rows, t.elapsed())?;
        }
    }
    Ok(i)
}

fn mamori_pipelined(store: &SqliteStore, n: u64, window: usize) -> Result<u64> {
    let mut inflight: VecDeque<mamori_store::Receipt> = VecDeque::with_capacity(window);
    let t = Instant::now();
    let mut last_seq = 0;
    for i in 0..n {
        if inflight.len() >= window {
            if let Some(r) = inflight.pop_front() {
                last_seq = r.wait()?.seqs.last().copied().unwrap_or(last_seq);
            }
        }
        inflight.push_back(store.submit(batch(i)?)?);
        if (i + 1) % 100_000 == 0 {
            progress("C submitted", i + 1, n, t.elapsed())?;
        }
    }
    for r in inflight {
        last_seq = r.wait()?.seqs.last().copied().unwrap_or(last_seq);
    }
    if last_seq != n {
        bail!("expected the last entry to be {n}, got {last_seq}");
    }
    Ok(n)
}

fn mamori_blocking(store: &SqliteStore, producers: usize, max_entries: u64, max: Duration) -> Result<u64> {
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..producers)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= max_entries || t.elapsed() >= max {
                            return Ok(());
                        }
                        store.commit(batch(i)?)?;
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d % 50_000 == 0 {
                            progress("D", d, max_entries, t.elapsed())?;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a producer panicked"))??;
        }
        Ok(())
    })?;
    Ok(done.load(Ordering::Relaxed))
}

fn raw_scan(path: &Path) -> Result<u64> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut st = conn.prepare(
        "SELECT seq, at, kind, measure, action_id, subject, actor, body, prev_hash, hash FROM ledger ORDER BY seq",
    )?;
    let mut rows = st.query([])?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(r) = rows.next()? {
        let _seq: i64 = r.get(0)?;
        for i in 1..10 {
            let v = r.get_ref(i)?;
            let b = match v {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b,
                _ => &[],
            };
            // Touch every byte, as hashing would, without hashing.
            bytes = bytes.wrapping_add(b.iter().map(|&x| u64::from(x)).sum::<u64>());
        }
        n += 1;
    }
    std::hint::black_box(bytes);
    Ok(n)
}

fn main() -> Result<()> {
    let args = Args::from_env(KNOWN, USAGE)?;
    let entries: u64 = args.get("entries", 1_000_000)?;
    let raw_rows: u64 = args.get("raw-rows", 20_000)?;
    let raw_secs: f64 = args.get("raw-secs", 10.0)?;
    let window: usize = args.get("window", 8192)?;
    let producers: usize = args.get("producers", 64)?;
    let blocking_entries: u64 = args.get("blocking-entries", entries.min(200_000))?;
    let blocking_secs: f64 = args.get("blocking-secs", 20.0)?;
    let defaults = StoreOptions::default();
    let options = StoreOptions {
        group_commit_max: args.get("group-max", defaults.group_commit_max)?,
        checkpoint_every: args.get("checkpoint-every", defaults.checkpoint_every)?,
        durable: true,
        single_thread: false,
    };
    let skip_raw = args.flag("skip-raw");
    if entries == 0 || window == 0 || producers == 0 {
        bail!("--entries, --window and --producers must be positive");
    }

    let tmp;
    let dir = match args.value("dir") {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            PathBuf::from(d)
        }
        None => {
            tmp = tempfile::Builder::new().prefix("mamori-bench-ledger-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    let bench = Bench { device: Device::of(&dir), dir: dir.clone() };
    let machine = machine_description(&dir);
    let command = command_line();
    eprintln!("ledger bench: {machine}");
    eprintln!("store options: {options:?}");

    let mut cases = Vec::new();

    let probe_path = bench.fresh("probe.bin")?;
    cases.push(bench.measure("disk", "4 KiB pwrite + fdatasync, 2 s".into(), || disk_probe(&probe_path, 2.0))?);

    if !skip_raw {
        let p = bench.fresh("raw-autocommit.db")?;
        cases.push(bench.measure(
            "A",
            format!("raw SQLite, 1 row per transaction (≤ {} rows or {raw_secs} s)", thousands(raw_rows)),
            || raw_autocommit(&p, raw_rows, Duration::from_secs_f64(raw_secs)),
        )?);
        let p = bench.fresh("raw-batched.db")?;
        cases.push(
            bench.measure("B", "raw SQLite, 1000 rows per transaction".into(), || raw_batched(&p, entries, 1000))?,
        );
    }

    cases.push(bench.measure("P", "build the batches only (no store): C's producer-side cost".into(), || {
        let mut sink = 0usize;
        for i in 0..entries {
            sink = sink.wrapping_add(std::hint::black_box(batch(i)?).ledger.len());
        }
        Ok(sink as u64)
    })?);

    let c_path = bench.fresh("mamori-pipelined.db")?;
    let store = open_store(&c_path, options)?;
    cases.push(bench.measure(
        "C",
        format!("mamori submit(), 1 producer, window {window}, 1 entry per batch"),
        || mamori_pipelined(&store, entries, window),
    )?);
    let scan = bench.measure("S", "raw SQLite scan of C's ledger (same columns)".into(), || raw_scan(&c_path))?;
    let mut report = None;
    let verify = bench.measure("V", "mamori verify_ledger(None) over C's ledger".into(), || {
        let r = store.verify_ledger(None)?;
        let n = r.entries;
        report = Some(r);
        Ok(n)
    })?;
    drop(store);
    let report = report.context("no verify report")?;
    if report.entries != entries {
        bail!("verify saw {} entries, expected {entries}", report.entries);
    }

    for (id, k, max_n, max_s) in [("D1", 1, raw_rows, raw_secs), ("DK", producers, blocking_entries, blocking_secs)] {
        let p = bench.fresh(&format!("mamori-blocking-{k}.db"))?;
        let store = open_store(&p, options)?;
        cases.push(bench.measure(
            id,
            format!("mamori commit(), {k} blocking thread(s), 1 entry per batch (≤ {} or {max_s} s)", thousands(max_n)),
            || mamori_blocking(&store, k, max_n, Duration::from_secs_f64(max_s)),
        )?);
    }

    let find = |id: &str| cases.iter().find(|c| c.id == id).map(Case::rate);
    let (rate_a, rate_b) = (find("A"), find("B"));
    let ratio = |r: f64, base: Option<f64>| base.map(|b| fmt_ratio(r / b)).unwrap_or_else(|| "–".into());

    let mut out = std::io::stdout().lock();
    writeln!(out, "Command: `{command}`  ")?;
    writeln!(out, "Machine: {machine}  ")?;
    writeln!(
        out,
        "Store: {options:?}; SQLite {}; run at {}",
        rusqlite::version(),
        Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| case | what | entries | seconds | per second | vs A | vs B | device flushes | entries/flush | CPU (cores) | writer on-CPU |"
    )?;
    writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")?;
    for c in &cases {
        let context_only = c.id == "disk" || c.id == "P";
        let (fl, per) = match c.disk {
            Some(d) if !context_only && d.flushes > 0 => {
                (thousands(d.flushes), format!("{:.1}", c.count as f64 / d.flushes as f64))
            }
            Some(d) => (thousands(d.flushes), "–".into()),
            None => ("–".into(), "–".into()),
        };
        let (va, vb) = if context_only {
            ("–".into(), "–".into())
        } else {
            (ratio(c.rate(), rate_a), ratio(c.rate(), rate_b))
        };
        writeln!(
            out,
            "| {} | {} | {} | {:.2} | {} | {va} | {vb} | {fl} | {per} | {} | {} |",
            c.id,
            c.what,
            thousands(c.count),
            c.elapsed.as_secs_f64(),
            fmt_rate(c.rate()),
            c.cores(),
            c.writer_busy()
        )?;
    }
    writeln!(out)?;
    writeln!(out, "| case | what | entries | seconds | entries/s | vs S | CPU (cores) |")?;
    writeln!(out, "|---|---|--:|--:|--:|--:|--:|")?;
    for c in [&scan, &verify] {
        writeln!(
            out,
            "| {} | {} | {} | {:.2} | {} | {} | {} |",
            c.id,
            c.what,
            thousands(c.count),
            c.elapsed.as_secs_f64(),
            fmt_rate(c.rate()),
            fmt_ratio(c.rate() / scan.rate()),
            c.cores()
        )?;
    }
    writeln!(out)?;
    let c_rate = find("C").unwrap_or(0.0);
    let v_rate = verify.rate();
    let verdict = |r: f64, target: f64| {
        if r >= target {
            format!("met ({:.2}× the target)", r / target)
        } else {
            format!("NOT met ({:.2}× the target)", r / target)
        }
    };
    writeln!(out, "Target ≥ 100,000 durable appends/s (C): {}/s, {}  ", fmt_rate(c_rate), verdict(c_rate, 100_000.0))?;
    writeln!(
        out,
        "Target ≥ 1,000,000 verified entries/s (V): {}/s, {}  ",
        fmt_rate(v_rate),
        verdict(v_rate, 1_000_000.0)
    )?;
    writeln!(
        out,
        "Verify: {} entries, {} checkpoints matched, tip {}",
        thousands(report.entries),
        report.checkpoints,
        report.tip_hash
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_rows_have_the_ledgers_shape() {
        for i in [0, 1, 999, 123_456, 50_000_000] {
            let ts = Timestamp::from_microsecond(at_us(i)).unwrap();
            assert_eq!(at_text(i), mamori_core::ledger::format_time(ts), "time text of entry {i}");
            let d = draft(i);
            assert_eq!(body_text(&content(i)), serde_json::to_string(&d.body).unwrap(), "body of entry {i}");
            let c = content(i);
            assert_eq!(d.subject.as_deref(), Some(c.subject.as_str()));
        }
        assert_eq!(at_text(0), "2026-11-24T12:00:00.000000Z");
        let len = body_text(&content(7)).len();
        assert!((100..=140).contains(&len), "body is {len} bytes");
    }
}
