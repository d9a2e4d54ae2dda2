//! A repeatable, socket-free measure of mamori's flow path for profiling (callgrind, CPU
//! seconds): `--datagrams` NetFlow v9 datagrams of the benchmark's stream (`flow_send`'s
//! background flows and, with `--attack-at`, its NTP reflection toward one host) are built in
//! memory, then decoded by the collector's [`Decoder`] and fed to the [`FlowEngine`] exactly as
//! `flow_collect` wires it (governance on SQLite, `ddos.block-to-protect-network` enabled,
//! fixed thresholds), closing a window every `--window-flows` flows.
//!
//! ```text
//! cargo build --release -p mamori-bench --bin flow_replay
//! valgrind --tool=callgrind target/release/flow_replay --datagrams 4000
//! ```
//!
//! Prints one JSON line: flows decoded, a digest of every decoded record (to compare two
//! builds' decoders), the findings (window index, target, and the evidence's mitigation,
//! coverage, rate and top sources) and the CPU seconds of the decode and ingest loop.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Result;
use mamori_bench::Args;
use mamori_bench::flow::{Rng, background, bench_engine, fixed_threshold, ntp_reflection};
use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_flow::collector::wire::{self, Sets};
use mamori_flow::collector::{Decoder, ExporterStats};

const USAGE: &str = "flow_replay [--datagrams N] [--per-datagram N] [--seed N] [--window-flows N] \
                     [--attack-at N] [--attack-pps N] [--host-pps N]";

/// Accepts every announcement (nothing is timed here).
struct Null;

impl Actuator for Null {
    fn name(&self) -> &str {
        "bench-null"
    }
    fn handles(&self, _measure: MeasureId) -> bool {
        true
    }
    fn apply(&self, _auth: &Authorization) -> Result<(), ActuatorError> {
        Ok(())
    }
    fn remove(&self, _action: &ActionRecord) -> Result<(), ActuatorError> {
        Ok(())
    }
    fn reconcile(&self, _in_force: &[&Authorization]) -> Result<(), ActuatorError> {
        Ok(())
    }
}

fn cpu_secs() -> f64 {
    // utime + stime of this process, from /proc (clock ticks of 1/100 s on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some((rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() -> Result<()> {
    let args = Args::from_env(
        &["datagrams", "per-datagram", "seed", "window-flows", "attack-at", "attack-pps", "host-pps"],
        USAGE,
    )?;
    let datagrams: usize = args.get("datagrams", 20_000usize)?;
    let per: usize = args.get("per-datagram", 50usize)?.clamp(1, 55);
    let mut rng = Rng::new(args.get("seed", 7u64)?);
    let window_flows: u64 = args.get("window-flows", 100_000u64)?.max(1);
    let attack_at: Option<usize> = args.value("attack-at").map(str::parse).transpose()?;
    let attack_pps: u32 = args.get("attack-pps", 200_000u32)?;
    let host_pps: f64 = args.get("host-pps", 20_000.0)?;

    // The stream: the template first and again every 400 datagrams (500 ms at 40 k datagrams/s).
    let exporter = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let mut stream = Vec::with_capacity(datagrams + datagrams / 400 + 1);
    let attack_dst = Ipv4Addr::new(203, 0, 113, 77);
    let mut flows = Vec::with_capacity(per);
    for i in 0..datagrams {
        if i % 400 == 0 {
            stream.push(wire::v9(1_700_000_000, 1, &Sets { template: true, sampling: None, flows: &[] }));
        }
        if attack_at.is_some_and(|a| i >= a && i % 20 == 0) {
            // 200 reflectors, one flow each per tick: attack_pps / 100 packets per tick.
            let pkts = (attack_pps / 100 / 200).max(1);
            let attack = ntp_reflection(attack_dst, pkts);
            for chunk in attack.chunks(per) {
                stream.push(wire::v9(1_700_000_000, 1, &Sets { template: false, sampling: None, flows: chunk }));
            }
        }
        background(&mut rng, per, &mut flows);
        stream.push(wire::v9(1_700_000_000, 1, &Sets { template: false, sampling: None, flows: &flows }));
    }

    let detect = fixed_threshold(vec!["203.0.113.0/24".parse()?, "10.0.0.0/16".parse()?], host_pps);
    let (_dir, mut engine) = bench_engine(detect, Arc::new(Null))?;
    engine.expect_window(1.0);

    let mut decoder = Decoder::default();
    let mut stats = ExporterStats::default();
    let mut digest = 0u64;
    let (mut in_window, mut window, mut findings) = (0u64, 0u64, Vec::new());
    let cpu0 = cpu_secs();
    for dg in &stream {
        let flows = decoder.decode_counted(exporter, dg, &mut stats);
        for f in &flows {
            // A cheap running digest (SipHash would be a tenth of the profile).
            let ip = |a: std::net::IpAddr| match a {
                std::net::IpAddr::V4(v) => u64::from(v.to_bits()),
                std::net::IpAddr::V6(v) => v.to_bits() as u64 ^ (v.to_bits() >> 64) as u64,
            };
            for x in [
                ip(f.src),
                ip(f.dst),
                u64::from(f.protocol) << 40 | u64::from(f.src_port) << 16 | u64::from(f.dst_port),
                u64::from(f.tcp_flags) << 32 | u64::from(f.input_if),
                f.packets,
                f.bytes,
                u64::from(f.export_secs),
            ] {
                digest = (digest.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
            }
        }
        in_window += flows.len() as u64;
        engine.ingest(&flows);
        if in_window >= window_flows || engine.urgent() {
            let report = engine.close_window(in_window as f64 / window_flows as f64)?;
            for d in &report.decisions {
                // The characterisation and evidence too, so two builds' engines can be compared.
                let e = &d.action.evidence;
                findings.push(serde_json::json!({
                    "window": window, "target": d.action.target.to_string(), "mitigation": e["mitigation"],
                    "coverage": e["coverage"], "pps": e["pps"], "top_sources": e["top_sources"],
                }));
            }
            (in_window, window) = (0, window + 1);
        }
    }
    let cpu = cpu_secs() - cpu0;
    println!(
        "{}",
        serde_json::json!({
            "datagrams": stats.datagrams, "flows": stats.flows, "malformed": stats.malformed,
            "no_template": stats.no_template, "digest": format!("{digest:016x}"),
            "windows": window, "findings": findings, "cpu_secs": cpu,
        })
    );
    Ok(())
}
