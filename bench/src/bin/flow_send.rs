//! The NetFlow v9 stream of the flow benchmark beside FastNetMon (`bench/flow/run.py`):
//! background flows toward random hosts of the customer prefixes at `--fps` flows per second,
//! and optionally, from `--attack-after` seconds on, an NTP reflection toward one host at
//! `--attack-pps` packets per second. The same seed gives the same stream.
//!
//! ```text
//! cargo run --release -p mamori-bench --bin flow_send -- --to 127.0.0.1:2055 --fps 200000 --secs 5
//! ```
//!
//! Datagrams carry `--per-datagram` flows (50: 1 224 bytes) with mamori's `wire` template
//! (id 256); the template is sent first and again every 500 ms. Prints one JSON line at the end:
//! `{"sent_flows":…,"sent_datagrams":…,"secs":…,"attack_start":…}` (Unix seconds, or null).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use mamori_bench::Args;
use mamori_bench::flow::{REFLECTORS, Rng, background, ntp_reflection};
use mamori_flow::collector::wire::{self, Sets};

const USAGE: &str = "flow_send --to ADDR [--fps N] [--secs S] [--per-datagram N] [--seed N] \
                     [--attack-after S --attack-pps N --attack-dst IP]";

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn main() -> Result<()> {
    let args = Args::from_env(
        &["to", "fps", "secs", "per-datagram", "seed", "attack-after", "attack-pps", "attack-dst"],
        USAGE,
    )?;
    let to: SocketAddr = args.get("to", "127.0.0.1:2055".parse()?)?;
    let fps: f64 = args.get("fps", 100_000.0)?;
    let secs: f64 = args.get("secs", 5.0)?;
    let per: usize = args.get("per-datagram", 50usize)?.clamp(1, 55);
    let mut rng = Rng::new(args.get("seed", 7u64)?);
    let attack_after: Option<f64> = args.value("attack-after").map(str::parse).transpose()?;
    let attack_pps: f64 = args.get("attack-pps", 200_000.0)?;
    let attack_dst: Ipv4Addr = args.get("attack-dst", Ipv4Addr::new(203, 0, 113, 77))?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let _ = sock.connect(to);
    let send =
        |b: &[u8]| sock.send(b).map(|_| ()).or_else(|e| if e.raw_os_error() == Some(111) { Ok(()) } else { Err(e) });
    let unix = || now() as u32;
    send(&wire::v9(unix(), 1, &Sets { template: true, sampling: None, flows: &[] }))?;
    let start = Instant::now();
    let (mut sent_flows, mut sent_dg, mut last_template) = (0u64, 0u64, Instant::now());
    let mut attack_start: Option<f64> = None;
    let mut attack_sent = 0.0f64;
    let mut bg_flows = 0u64;
    // The attack: its reflectors send one flow each per 10 ms tick, sharing the packet rate.
    let reflectors = REFLECTORS;
    let mut flows = Vec::with_capacity(per);
    while start.elapsed().as_secs_f64() < secs {
        let el = start.elapsed().as_secs_f64();
        if last_template.elapsed() >= Duration::from_millis(500) {
            send(&wire::v9(unix(), 1, &Sets { template: true, sampling: None, flows: &[] }))?;
            last_template = Instant::now();
        }
        if let Some(after) = attack_after {
            if el >= after {
                let due = (el - after) * attack_pps;
                if due - attack_sent >= attack_pps / 100.0 {
                    let pkts = ((due - attack_sent) / f64::from(reflectors)).max(1.0) as u32;
                    let t = now();
                    attack_start.get_or_insert(t);
                    let attack = ntp_reflection(attack_dst, pkts);
                    for chunk in attack.chunks(per) {
                        send(&wire::v9(unix(), 1, &Sets { template: false, sampling: None, flows: chunk }))?;
                        sent_dg += 1;
                        sent_flows += chunk.len() as u64;
                    }
                    attack_sent += f64::from(pkts) * f64::from(reflectors);
                }
            }
        }
        let due = (el * fps) as u64;
        if bg_flows + per as u64 > due {
            // Ahead of schedule: yield briefly.
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        background(&mut rng, per, &mut flows);
        send(&wire::v9(unix(), 1, &Sets { template: false, sampling: None, flows: &flows }))?;
        sent_dg += 1;
        sent_flows += per as u64;
        bg_flows += per as u64;
    }
    println!(
        "{}",
        serde_json::json!({
            "sent_flows": sent_flows,
            "background_flows": bg_flows,
            "sent_datagrams": sent_dg,
            "secs": start.elapsed().as_secs_f64(),
            "attack_start": attack_start,
        })
    );
    Ok(())
}
