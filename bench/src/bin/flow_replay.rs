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
//! builds' decoders), the findings (window index and target) and the CPU seconds of the
//! decode and ingest loop.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Result;
use mamori_bench::Args;
use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::governance::Governance;
use mamori_core::subject::Actor;
use mamori_flow::collector::wire::{self, Sets, WireFlow};
use mamori_flow::collector::{Decoder, ExporterStats};
use mamori_flow::detect::engine::FlowEngine;
use mamori_flow::detect::{DetectConfig, Detector};

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

/// `flow_send`'s generator (xorshift64*), so the stream is the benchmark's.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn background(rng: &mut Rng, per: usize) -> Vec<WireFlow> {
    (0..per)
        .map(|_| {
            let r = rng.next();
            let dst = if r & 1 == 0 {
                Ipv4Addr::from(0x0a00_0000 | ((r >> 8) as u32 & 0xffff))
            } else {
                Ipv4Addr::new(203, 0, 113, (r >> 8) as u8)
            };
            let tcp = r & 2 == 0;
            WireFlow {
                src: Ipv4Addr::from(0xc633_6400 | ((r >> 24) as u32 & 0xff) | (((r >> 32) as u32 & 0x3f) << 8)),
                dst,
                protocol: if tcp { 6 } else { 17 },
                src_port: 1024 + (r >> 40) as u16 % 60_000,
                dst_port: if tcp { 443 } else { 53 },
                tcp_flags: if tcp { 0x18 } else { 0 },
                input_if: 2,
                packets: 1,
                bytes: 600,
            }
        })
        .collect()
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
    let mut rng = Rng(args.get("seed", 7u64)?.max(1));
    let window_flows: u64 = args.get("window-flows", 100_000u64)?.max(1);
    let attack_at: Option<usize> = args.value("attack-at").map(str::parse).transpose()?;
    let attack_pps: u32 = args.get("attack-pps", 200_000u32)?;
    let host_pps: f64 = args.get("host-pps", 20_000.0)?;

    // The stream: the template first and again every 400 datagrams (500 ms at 40 k datagrams/s).
    let exporter = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let mut stream = Vec::with_capacity(datagrams + datagrams / 400 + 1);
    let attack_dst = Ipv4Addr::new(203, 0, 113, 77);
    for i in 0..datagrams {
        if i % 400 == 0 {
            stream.push(wire::v9(1_700_000_000, 1, &Sets { template: true, sampling: None, flows: &[] }));
        }
        if attack_at.is_some_and(|a| i >= a && i % 20 == 0) {
            // 200 reflectors, one flow each per tick: attack_pps / 100 packets per tick.
            let pkts = (attack_pps / 100 / 200).max(1);
            let attack: Vec<_> = (0..200u32)
                .map(|r| WireFlow {
                    src: Ipv4Addr::from(0x6440_0000 + r),
                    dst: attack_dst,
                    protocol: 17,
                    src_port: 123,
                    dst_port: 40_000 + (r % 1000) as u16,
                    tcp_flags: 0,
                    input_if: 1,
                    packets: pkts,
                    bytes: pkts * 468,
                })
                .collect();
            for chunk in attack.chunks(per) {
                stream.push(wire::v9(1_700_000_000, 1, &Sets { template: false, sampling: None, flows: chunk }));
            }
        }
        stream.push(wire::v9(
            1_700_000_000,
            1,
            &Sets { template: false, sampling: None, flows: &background(&mut rng, per) },
        ));
    }

    let detect = DetectConfig {
        customer_prefixes: vec!["203.0.113.0/24".parse()?, "10.0.0.0/16".parse()?],
        host_pps,
        host_bps: 1e15,
        host_fps: 1e12,
        normal_factor: 1e12,
        prefix_pps: 1e15,
        prefix_bps: 1e15,
        prefix_fps: 1e15,
        ..DetectConfig::default()
    };
    let dir = tempfile::tempdir()?;
    let store = Arc::new(mamori_store::SqliteStore::open(
        &dir.path().join("bench.sqlite"),
        mamori_store::StoreOptions::default(),
    )?);
    let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(mamori_core::config::Config::default()))?);
    gov.enable_measure(MeasureId::DdosBlockToProtectNetwork, &Actor("operator:bench".into()))?;
    let mut engine = FlowEngine::new(gov, Arc::new(WallClock), Detector::new(detect), Arc::new(Null))?;
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
                findings.push(serde_json::json!({"window": window, "target": d.action.target.to_string()}));
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
