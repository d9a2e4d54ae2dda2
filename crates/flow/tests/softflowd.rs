//! A real exporter: Debian's `softflowd` reads a pcap this test writes (a DNS reflection toward
//! one customer host plus ordinary web traffic) and sends NetFlow v9 (and IPFIX) to mamori's
//! collector; the detector must characterise the reflection by its source port.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{frame, write_pcap};
use mamori_flow::collector::{Collector, FlowRecord};
use mamori_flow::detect::{DetectConfig, Detector};

fn softflowd() -> Option<PathBuf> {
    let p = ["/usr/sbin/softflowd", "/usr/bin/softflowd"].iter().map(PathBuf::from).find(|p| p.exists());
    if p.is_none() {
        assert!(std::env::var_os("MAMORI_REQUIRE_PEERS").is_none(), "softflowd is required");
        eprintln!("SKIPPED: softflowd is not installed");
    }
    p
}

fn run(version: &str) {
    let Some(bin) = softflowd() else { return };
    let dir = tempfile::tempdir().unwrap();
    // softflowd 1.1.0 keeps the -r path in a 16-byte buffer: run it in the directory with short
    // relative paths.
    let pcap = dir.path().join("a.pcap");
    let t0 = 1_795_000_000u32;
    let mut pkts = Vec::new();
    for i in 0..3000u32 {
        // DNS reflection: 60 resolvers answering from port 53 toward one host.
        let r = (i % 60) as u8;
        pkts.push((t0 + i / 1000, frame([100, 64, 1, r], [203, 0, 113, 5], 17, 53, 40000 + (i % 60) as u16, 0, 1200)));
        if i % 10 == 0 {
            pkts.push((t0 + i / 1000, frame([198, 51, 100, 1], [203, 0, 113, 5], 6, 50000, 443, 0x18, 400)));
        }
    }
    write_pcap(&pcap, &pkts);

    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    let collector = Collector::spawn("127.0.0.1:0".parse().unwrap(), tx).unwrap();
    let mut child = Command::new(bin)
        .current_dir(dir.path())
        .arg("-r")
        .arg("a.pcap")
        .arg("-n")
        .arg(collector.local_addr().to_string())
        .arg("-v")
        .arg(version)
        .arg("-D") // foreground; with -r it exports everything and exits
        .arg("-c")
        .arg("ctl")
        .arg("-p")
        .arg("pid")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut flows: Vec<FlowRecord> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while flows.len() < 61 && Instant::now() < deadline {
        if let Ok(batch) = rx.recv_timeout(Duration::from_millis(200)) {
            flows.extend(batch);
        }
    }
    // It exits after the file; make sure it is gone whatever happened.
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(flows.len(), 61, "60 reflection flows and one web flow: {flows:?}");
    let packets: u64 = flows.iter().map(|f| f.packets).sum();
    assert_eq!(packets, 3300);
    let stats = collector.stats().lock().unwrap().get(&"127.0.0.1".parse().unwrap()).copied().unwrap();
    assert_eq!(stats.malformed, 0, "{stats:?}");

    let mut d = Detector::new(DetectConfig {
        customer_prefixes: vec!["203.0.113.0/24".parse().unwrap()],
        host_pps: 1000.0,
        ..DetectConfig::default()
    });
    for f in &flows {
        d.ingest(f);
    }
    let out = d.close_window(3.0);
    assert_eq!(out.attacks.len(), 1);
    let a = &out.attacks[0];
    assert_eq!(a.dst.to_string(), "203.0.113.5/32");
    assert_eq!((a.attack.protocol, a.attack.src_ports.clone()), (Some(17), vec![53]));
}

#[test]
fn softflowd_netflow_v9_reflection() {
    run("9");
}

#[test]
fn softflowd_ipfix_reflection() {
    run("10");
}
