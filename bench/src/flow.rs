//! The benchmark's NetFlow v9 stream and the engine it is fed to, shared by `flow_send` (over a
//! socket), `flow_replay` (in memory) and `flow_collect` (the receiving side), so that all three
//! measure the same flows and the same detector settings.

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::Result;
use mamori_core::actuator::Actuator;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::governance::Governance;
use mamori_core::subject::Actor;
use mamori_flow::collector::wire::WireFlow;
use mamori_flow::detect::engine::FlowEngine;
use mamori_flow::detect::{DetectConfig, Detector};
use mamori_flow::prefix::Prefix;
use tempfile::TempDir;

/// The stream's generator (xorshift64*): the same seed gives both tools the same flows.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by 1, which xorshift needs).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Replaces `flows` with `per` background flows: one packet each, half toward 10.0.0.0/16 and
/// half toward 203.0.113.0/24, half TCP/443 and half UDP/53, from 4,096 sources.
pub fn background(rng: &mut Rng, per: usize, flows: &mut Vec<WireFlow>) {
    flows.clear();
    flows.extend((0..per).map(|_| {
        let r = rng.next_u64();
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
    }));
}

/// Reflectors of the NTP attack.
pub const REFLECTORS: u32 = 200;

/// One tick of the NTP reflection toward `dst`: one flow of `packets` packets (468 bytes each,
/// a monlist answer) from each of the [`REFLECTORS`], source port 123.
pub fn ntp_reflection(dst: Ipv4Addr, packets: u32) -> Vec<WireFlow> {
    (0..REFLECTORS)
        .map(|i| WireFlow {
            src: Ipv4Addr::from(0x6440_0000 + i),
            dst,
            protocol: 17,
            src_port: 123,
            dst_port: 40_000 + (i % 1000) as u16,
            tcp_flags: 0,
            input_if: 1,
            packets,
            bytes: packets * 468,
        })
        .collect()
}

/// Detector settings comparable with FastNetMon's: a fixed packets/s threshold per host, no
/// prefix-level detection and no learned normal (FastNetMon has neither).
pub fn fixed_threshold(customer_prefixes: Vec<Prefix>, host_pps: f64) -> DetectConfig {
    DetectConfig {
        customer_prefixes,
        host_pps,
        host_bps: 1e15,
        host_fps: 1e12,
        normal_factor: 1e12,
        prefix_pps: 1e15,
        prefix_bps: 1e15,
        prefix_fps: 1e15,
        ..DetectConfig::default()
    }
}

/// The engine as `mamori serve` wires it: governance on a scratch SQLite store (kept in the
/// returned directory) with `ddos.block-to-protect-network` enabled, `actuator` announcing.
pub fn bench_engine(detect: DetectConfig, actuator: Arc<dyn Actuator>) -> Result<(TempDir, FlowEngine)> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(mamori_store::SqliteStore::open(
        &dir.path().join("bench.sqlite"),
        mamori_store::StoreOptions::default(),
    )?);
    let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(mamori_core::config::Config::default()))?);
    gov.enable_measure(MeasureId::DdosBlockToProtectNetwork, &Actor("operator:bench".into()))?;
    let engine = FlowEngine::new(gov, Arc::new(WallClock), Detector::new(detect), actuator)?;
    Ok((dir, engine))
}
