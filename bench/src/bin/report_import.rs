//! Third-party report import at scale: a Shadowserver-style sinkhole report of 1,000,000 rows
//! attributed against 1,000,000 subscribers' sessions, each new (subscriber, measure) turned
//! into a finding and a proposal through governance on the real, durable SQLite store (the
//! alerts queued in its outbox), then the same report imported again (every row a duplicate).
//!
//! ```sh
//! cargo build --release -p mamori-bench --bin report_import
//! target/release/report_import [--rows 1000000] [--subscribers 1000000] [--infected 100000] [--seed 5]
//! ```
//!
//! Progress and phase times go to stderr, the result table to stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mamori_attribution::Index;
use mamori_attribution::index::Query;
use mamori_attribution::radius::{Ipv6Prefix, PortBlock};
use mamori_attribution::session::{SessionKey, SessionRow};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::subject::Actor;
use mamori_reports_import::format::{Format, Kind};
use mamori_reports_import::import::Report;
use mamori_reports_import::{Progress, SeenDb, import};
use mamori_store::{SqliteStore, StoreOptions};

const USAGE: &str = "report_import [--rows N] [--subscribers N] [--infected N] [--seed N]";

/// 2026-11-01T00:00:00Z: the sessions cover 30 days from here.
const T0: u32 = 1_793_491_200;
const DAY: u32 = 86_400;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Slot `i` of the address plan: 80 % public IPv4 addresses `10.x.y.z`, 20 % 2016-port blocks
/// of CGNAT addresses `100.64.x.y` (32 blocks per address).
fn slot(i: u32, subscribers: u32) -> (Ipv4Addr, Option<(u16, u16)>) {
    let cgnat_from = subscribers / 5 * 4;
    if i < cgnat_from {
        (Ipv4Addr::from(0x0a00_0000 + i), None)
    } else {
        let j = i - cgnat_from;
        let first = 1024 + (j % 32) as u16 * 2016;
        (Ipv4Addr::from(0x6440_0000 + j / 32), Some((first, first + 2015)))
    }
}

struct Phases {
    started: Instant,
    log: Mutex<Vec<(&'static str, f64)>>,
}
impl Progress for Phases {
    fn phase(&self, name: &'static str, total: u64) {
        let t = self.started.elapsed().as_secs_f64();
        eprintln!("  {t:>7.2} s  {name} ({total})");
        if let Ok(mut l) = self.log.lock() {
            l.push((name, t));
        }
    }
    fn advance(&self, _: u64) {}
}

fn main() -> Result<()> {
    let mut rows = 1_000_000u64;
    let mut subscribers = 1_000_000u32;
    let mut infected = 100_000u32;
    let mut seed = 5u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().with_context(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--rows" => rows = v()?.parse()?,
            "--subscribers" => subscribers = v()?.parse()?,
            "--infected" => infected = v()?.parse()?,
            "--seed" => seed = v()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => bail!("unknown argument {a}\n{USAGE}"),
        }
    }
    if subscribers < 64 || infected == 0 || infected > subscribers {
        bail!("need --subscribers >= 64 and 0 < --infected <= --subscribers");
    }
    let dir = tempfile::tempdir()?;
    let mut rng = Rng(seed);

    // Sessions: every slot is held by subscriber i for the first 15 days and by another one for
    // the next 15, with a dual-stack /56 each.
    let t = Instant::now();
    let mut index = Index::new();
    let mut row = SessionRow {
        key: SessionKey([0; 16]),
        subscriber: String::new(),
        nas: "bng-1".into(),
        start: 0,
        last: 0,
        interim: 600,
        stop: None,
        framed_ipv4: None,
        port_blocks: Vec::new(),
        ipv6: Vec::new(),
    };
    for i in 0..subscribers {
        let (v4, block) = slot(i, subscribers);
        for half in 0..2u32 {
            let sub = if half == 0 { i } else { (i + subscribers / 2) % subscribers };
            row.subscriber = format!("S{sub:07}");
            row.start = T0 + half * 15 * DAY;
            row.last = row.start;
            row.stop = Some(row.start + 15 * DAY);
            row.framed_ipv4 = None;
            row.port_blocks.clear();
            match block {
                Some((first, last)) => row.port_blocks.push(PortBlock { public: v4, first, last }),
                None => row.framed_ipv4 = Some(v4),
            }
            row.ipv6.clear();
            let v6 = (0x2001_0db8u128 << 96) | (u128::from(i) << 72) | (u128::from(half) << 64);
            row.ipv6.push(Ipv6Prefix::new(Ipv6Addr::from(v6), 56));
            index.insert(&row);
        }
    }
    index.compact();
    let sessions_s = t.elapsed().as_secs_f64();
    eprintln!("{} sessions indexed in {sessions_s:.2} s", u64::from(subscribers) * 2);

    // The report: rows about `infected` slots (10 % IPv6), 3 % unmatched (outside the plan),
    // 1 % CGNAT rows without a port (ambiguous).
    let t = Instant::now();
    let path = dir.path().join("event4_sinkhole.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(
        w,
        "\"timestamp\",\"ip\",\"port\",\"asn\",\"geo\",\"region\",\"city\",\"hostname\",\"type\",\"infection\",\"url\",\"agent\",\"cc\",\"cc_port\",\"cc_asn\",\"cc_geo\",\"cc_dns\",\"count\",\"proxy\",\"application\",\"p0f_genre\",\"p0f_detail\",\"machine_name\",\"id\",\"naics\",\"sic\",\"cc_naics\",\"cc_sic\",\"sector\",\"cc_sector\",\"ssl_cipher\",\"family\",\"tag\",\"public_source\""
    )?;
    let families = ["mirai", "gafgyt", "qsnatch", "andromeda", "emotet"];
    let stride = (subscribers / infected).max(1);
    let mut queries = Vec::with_capacity(rows as usize);
    for n in 0..rows {
        let at = T0 + rng.below(u64::from(30 * DAY)) as u32;
        let ts = jiff::Timestamp::from_second(i64::from(at))?.strftime("%Y-%m-%d %H:%M:%S");
        let s = (rng.below(u64::from(infected)) as u32) * stride % subscribers;
        let (v4, block) = slot(s, subscribers);
        let fam = families[(s % 5) as usize];
        let (ip, port) = match rng.below(100) {
            0..=2 => (format!("192.0.2.{}", n % 250), 40000 + (n % 1000) as u32),
            3..=12 => {
                let half = u128::from(at >= T0 + 15 * DAY);
                let v6 = (0x2001_0db8u128 << 96) | (u128::from(s) << 72) | (half << 64) | u128::from(rng.next() as u16);
                (Ipv6Addr::from(v6).to_string(), 40000)
            }
            r => match block {
                Some(_) if r == 13 => (v4.to_string(), 0),
                Some((first, _)) => (v4.to_string(), u32::from(first) + rng.below(2016) as u32),
                None => (v4.to_string(), 1024 + rng.below(60000) as u32),
            },
        };
        queries.push(Query { addr: ip.parse()?, port: u16::try_from(port).ok().filter(|p| *p != 0), at });
        let port = if port == 0 { String::new() } else { port.to_string() };
        writeln!(
            w,
            "\"{ts}\",\"{ip}\",\"{port}\",\"64500\",\"JP\",\"TOKYO\",\"TOKYO\",\"\",\"tcp\",\"{fam}\",\"\",\"\",\"198.51.100.1\",\"443\",\"64501\",\"NL\",\"\",\"1\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"{fam}\",\"{fam}\",\"\""
        )?;
    }
    w.flush()?;
    drop(w);
    let bytes = std::fs::read(&path)?;
    eprintln!("report of {rows} rows ({} MB) written in {:.2} s", bytes.len() / 1_000_000, t.elapsed().as_secs_f64());

    // Attribution alone, on the report's rows in file order: the batch path in random order
    // (65,536 rows per call, as the import called it before) and the sorted one (the import's
    // calls now), twice each, alternating; the answers must be the same.
    let mut times = [f64::MAX; 2];
    let mut answers = [Vec::with_capacity(queries.len()), Vec::with_capacity(queries.len())];
    for _ in 0..2 {
        for (k, per_call) in [(0, 65_536), (1, 1 << 18)] {
            answers[k].clear();
            let t = Instant::now();
            for chunk in queries.chunks(per_call) {
                if k == 0 {
                    index.lookup_batch(chunk, &mut answers[k]);
                } else {
                    index.lookup_sorted(chunk, &mut answers[k]);
                }
            }
            times[k] = times[k].min(t.elapsed().as_secs_f64());
        }
    }
    if answers[0] != answers[1] {
        bail!("lookup_sorted and lookup_batch answer differently");
    }
    drop(answers);
    drop(queries);
    let attribution_line = format!(
        "attribution alone ({rows} rows, best of 2): `lookup_batch` {:.3} s ({:.2} M rows/s), `lookup_sorted` {:.3} s ({:.2} M rows/s); same answers",
        times[0],
        rows as f64 / times[0] / 1e6,
        times[1],
        rows as f64 / times[1] / 1e6
    );
    eprintln!("{attribution_line}");

    // Governance on the real durable store.
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let store = Arc::new(SqliteStore::open(&config.database_path(), StoreOptions::default())?);
    let gov = Governance::new(store, Arc::new(WallClock), Arc::new(config.clone()))?;
    gov.enable_measure(MeasureId::BotsAlertFromThirdParty, &Actor("bench".into()))?;
    let mut seen = SeenDb::open(&dir.path().join("reports-import.sqlite"))?;
    let format = Format::builtin(&Kind::ShadowserverSinkhole).context("format")?;

    let mut results = Vec::new();
    for run in ["first import", "same report again"] {
        eprintln!("{run}:");
        let phases = Phases { started: Instant::now(), log: Mutex::new(Vec::new()) };
        let report = Report {
            file: "event4_sinkhole.csv",
            bytes: &bytes,
            format: &format,
            source: "bench",
            encoding: mamori_reports_import::Encoding::Auto,
        };
        let out = import(report, &index, &gov, &mut seen, &phases)?;
        let total = phases.started.elapsed().as_secs_f64();
        eprintln!("  {total:>7.2} s  done");
        let log = phases.log.into_inner().unwrap_or_default();
        let at = |name: &str| log.iter().find(|p| p.0 == name).map_or(0.0, |p| p.1);
        results.push((
            run,
            total,
            at("attributing"),
            at("findings") - at("attributing"),
            total - at("findings"),
            out.summary,
        ));
    }
    let conn = rusqlite::Connection::open(config.database_path())?;
    let outbox: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
    let ledger: i64 = conn.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))?;

    println!(
        "rows {rows}, sessions {}, infected slots {infected}, report {} MB, index built in {sessions_s:.1} s\n",
        u64::from(subscribers) * 2,
        bytes.len() / 1_000_000
    );
    println!(
        "| run | total | read + parse | attribute + gate + dedup | findings + proposals | rows/s | attributed | ambiguous | unmatched | duplicates | subscribers | alerts queued |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (run, total, read, attr, prop, s) in &results {
        println!(
            "| {run} | {total:.2} s | {read:.2} s | {attr:.2} s | {prop:.2} s | {:.0} | {} | {} | {} | {} | {} | {} |",
            rows as f64 / total,
            s.attributed,
            s.ambiguous,
            s.unmatched,
            s.duplicates,
            s.subscribers,
            s.alerts_queued
        );
    }
    println!("\noutbox messages: {outbox}; ledger entries: {ledger}");
    println!("{attribution_line}");
    Ok(())
}
