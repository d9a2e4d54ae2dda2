//! A real sFlow exporter: Debian's `pmacctd` (pmacct) reads a pcap this test writes (a DNS
//! reflection toward one customer host plus ordinary web traffic) with its `sfprobe` plugin and
//! sends sFlow v5, sampling 1 in 10, to mamori's sFlow collector; the samples, scaled by the
//! rate, must show the reflection and the detector must characterise it by its source port.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{frame, write_pcap};
use mamori_flow::collector::{Collector, FlowRecord};
use mamori_flow::detect::{DetectConfig, Detector};

fn pmacctd() -> Option<PathBuf> {
    let p = ["/usr/sbin/pmacctd", "/usr/bin/pmacctd"].iter().map(PathBuf::from).find(|p| p.exists());
    if p.is_none() {
        assert!(std::env::var_os("MAMORI_REQUIRE_PEERS").is_none(), "pmacctd (pmacct) is required");
        eprintln!("SKIPPED: pmacctd is not installed");
    }
    p
}

#[test]
fn pmacctd_sfprobe_sflow_reflection() {
    let Some(bin) = pmacctd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("a.pcap");
    let t0 = 1_795_000_000u32;
    let mut pkts = Vec::new();
    for i in 0..4000u32 {
        let r = (i % 60) as u8;
        pkts.push((t0 + i / 2000, frame([100, 64, 1, r], [203, 0, 113, 5], 17, 53, 40000 + (i % 60) as u16, 0, 1200)));
        if i % 10 == 0 {
            pkts.push((t0 + i / 2000, frame([198, 51, 100, 1], [203, 0, 113, 5], 6, 50000, 443, 0x18, 400)));
        }
    }
    write_pcap(&pcap, &pkts);

    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    let collector = Collector::spawn_sflow("127.0.0.1:0".parse().unwrap(), tx).unwrap();
    let conf = dir.path().join("pmacctd.conf");
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\npcap_savefile: {}\npcap_savefile_wait: false\nplugins: sfprobe\n\
             sfprobe_receiver: {}\nsfprobe_agentip: 192.0.2.7\nsampling_rate: 10\n",
            pcap.display(),
            collector.local_addr()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin)
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It exits at the end of the file; the samples arrive meanwhile.
    let mut flows: Vec<FlowRecord> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet = 0;
    while Instant::now() < deadline && quiet < 10 {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => {
                flows.extend(batch);
                quiet = 0;
            }
            Err(_) if !flows.is_empty() => quiet += 1,
            Err(_) => {}
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let agent: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let stats = collector.stats().lock().unwrap().get(&agent).copied().unwrap();
    assert_eq!(stats.malformed, 0, "{stats:?}");
    assert!(stats.datagrams > 0 && stats.flows == flows.len() as u64, "{stats:?}");
    // 4400 packets sampled 1 in 10: about 440 samples, each standing for 10 packets.
    assert!((300..=600).contains(&flows.len()), "{} samples", flows.len());
    assert!(flows.iter().all(|f| f.packets == 10 && f.exporter.ip() == agent));
    let packets: u64 = flows.iter().map(|f| f.packets).sum();
    let dns = flows.iter().filter(|f| f.src_port == 53).count();
    assert!(dns * 10 >= flows.len() * 8, "{dns} of {} samples are the reflection", flows.len());
    // Frame length × rate: the reflection's frames are 14 + 20 + 8 + 1200 bytes (+ FCS if counted).
    let f = flows.iter().find(|f| f.src_port == 53).unwrap();
    assert!((12_420..=12_500).contains(&f.bytes), "{f:?}");

    let mut d = Detector::new(DetectConfig {
        customer_prefixes: vec!["203.0.113.0/24".parse().unwrap()],
        host_pps: 1000.0,
        ..DetectConfig::default()
    });
    for f in &flows {
        d.ingest(f);
    }
    let out = d.close_window(2.0);
    assert_eq!(out.attacks.len(), 1, "{packets} packets");
    let a = &out.attacks[0];
    assert_eq!(a.dst.to_string(), "203.0.113.5/32");
    assert_eq!((a.attack.protocol, a.attack.src_ports.clone()), (Some(17), vec![53]));
}
