//! mamori's side of the flow benchmark beside FastNetMon (`bench/flow/run.py`, BENCHMARKS.md
//! "Flows and DDoS"): the NetFlow/IPFIX collector and the DDoS engine exactly as `mamori serve`
//! runs them (one collector thread, one engine thread closing a window every `--window-secs`,
//! governance on SQLite with `ddos.block-to-protect-network` enabled), with an actuator that
//! only notes when an announcement is handed to it (no BGP speaker: the GoBGP call is not timed).
//!
//! ```text
//! cargo run --release -p mamori-bench --bin flow_collect -- --listen 127.0.0.1:2055 \
//!     --prefix 203.0.113.0/24 --prefix 10.0.0.0/16 --host-pps 20000 --window-secs 1
//! ```
//!
//! Prints JSON lines on stdout: every 100 ms the collector's counters summed over exporters
//! (`{"t":…,"datagrams":…,"flows":…,"dropped":…,"malformed":…}`), and `{"t":…,"event":"finding"|
//! "announce","target":…}` when a window with a finding closed (the finding and its decision are
//! recorded by `t_done`) or an announcement is handed over. Detection is on fixed thresholds only
//! (no learned normal, no prefix-level limits), as FastNetMon's.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use mamori_bench::Args;
use mamori_bench::flow::{bench_engine, fixed_threshold};
use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_flow::collector::Collector;

const USAGE: &str = "flow_collect [--listen ADDR] [--sflow-listen ADDR] [--prefix CIDR]... \
                     [--host-pps N] [--window-secs S]";

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn emit(line: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Notes the instant an announcement is handed over.
struct Timing;

impl Actuator for Timing {
    fn name(&self) -> &str {
        "bench-timing"
    }
    fn handles(&self, _measure: MeasureId) -> bool {
        true
    }
    fn apply(&self, auth: &Authorization) -> Result<(), ActuatorError> {
        emit(&serde_json::json!({"t": now(), "event": "announce", "target": auth.target().to_string()}));
        Ok(())
    }
    fn remove(&self, _action: &ActionRecord) -> Result<(), ActuatorError> {
        Ok(())
    }
    fn reconcile(&self, _in_force: &[&Authorization]) -> Result<(), ActuatorError> {
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::from_env(&["listen", "sflow-listen", "prefix", "host-pps", "window-secs"], USAGE)?;
    let listen: std::net::SocketAddr = args.get("listen", "127.0.0.1:2055".parse()?)?;
    let prefixes = args.value("prefix").unwrap_or("203.0.113.0/24,10.0.0.0/16");
    let window = Duration::from_secs_f64(args.get("window-secs", 1.0f64)?.max(0.1));
    // FastNetMon bans hosts on fixed thresholds: no prefix-level detection and no learned normal
    // in this comparison.
    let detect = fixed_threshold(
        prefixes.split(',').map(str::parse).collect::<Result<_, _>>()?,
        args.get("host-pps", 20_000.0)?,
    );
    let (_dir, mut engine) = bench_engine(detect, Arc::new(Timing))?;
    engine.expect_window(window.as_secs_f64());
    // As `mamori serve`: one channel of datagram batches between the collector and the engine.
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let mut collectors = vec![Collector::spawn(listen, tx.clone())?];
    if let Some(s) = args.value("sflow-listen") {
        collectors.push(Collector::spawn_sflow(s.parse()?, tx)?);
    }
    let stats: Vec<_> = collectors.iter().map(Collector::stats).collect();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let (mut d, mut f, mut dr, mut m) = (0, 0, 0, 0);
            for s in &stats {
                if let Ok(s) = s.lock() {
                    for e in s.values() {
                        (d, f, dr, m) = (d + e.datagrams, f + e.flows, dr + e.dropped, m + e.malformed);
                    }
                }
            }
            emit(&serde_json::json!({"t": now(), "datagrams": d, "flows": f, "dropped": dr, "malformed": m}));
        }
    });
    let mut started = Instant::now();
    loop {
        let left = window.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        if let Ok(batch) = rx.recv_timeout(left.min(Duration::from_millis(200))) {
            engine.ingest(&batch);
        }
        // As `mamori serve`: early when a host already spent a whole window's budget.
        if started.elapsed() >= window || engine.urgent() {
            let secs = started.elapsed().as_secs_f64();
            started = Instant::now();
            // Detection is the window's close; the finding's ledger entry follows within it.
            let closed = now();
            let report = engine.close_window(secs)?;
            // Every finding here leads to a decision (the measure is enabled).
            for d in &report.decisions {
                emit(&serde_json::json!({
                    "t": closed, "t_done": now(), "event": "finding",
                    "state": d.action.state.as_str(), "target": d.action.target.to_string(),
                }));
            }
        }
    }
}
