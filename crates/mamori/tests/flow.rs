//! `mamori serve` with `[flow]`: NetFlow v9 datagrams of an NTP reflection toward a customer host
//! reach the collector, the detector proposes `ddos.block-to-protect-network` through governance,
//! and the action (applied, with its FlowSpec match for UDP source port 123) is visible from a
//! second process; `/metrics` carries the `net.traffic-overview` aggregates (per protocol, per
//! customer prefix, top talkers) and no host address. Hermetic: no BGP speaker is configured, so nothing is announced.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mamori_flow::collector::wire::{self, Sets, WireFlow};

mod common;
use common::{free_tcp_port, free_udp_port, http_get, mamori, ok, serve};

#[test]
fn serve_collects_netflow_and_proposes_a_flowspec_mitigation() {
    let dir = tempfile::tempdir().unwrap();
    let (http, nf) = (free_tcp_port(), free_udp_port());
    let cfg = dir.path().join("mamori.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{http}\"\n\
             [flow]\nlisten = \"127.0.0.1:{nf}\"\nwindow = \"1s\"\ncustomer_prefixes = [\"203.0.113.0/24\"]\n\
             host_pps = 5000\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    ok(mamori(&cfg, &["config", "check", cfg.to_str().unwrap()]));
    ok(mamori(&cfg, &["measures", "enable", "ddos.block-to-protect-network", "--by", "sato"]));
    let log = dir.path().join("serve.log");
    let mut served = serve(&cfg, &log);
    let flows: Vec<WireFlow> = (0..20u8)
        .map(|i| WireFlow {
            src: [100, 64, 9, i].into(),
            dst: [203, 0, 113, 44].into(),
            protocol: 17,
            src_port: 123,
            dst_port: 30000 + u16::from(i),
            tcp_flags: 0,
            input_if: 1,
            packets: 2000,
            bytes: 2000 * 468,
        })
        .collect();
    let exporter = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0u32;
    let applied = loop {
        let dg = wire::v9(1_795_000_000 + n, 1, &Sets { template: true, sampling: None, flows: &flows });
        exporter.send_to(&dg, ("127.0.0.1", nf)).unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(250));
        let out = ok(mamori(&cfg, &["actions", "list", "--measure", "ddos.block-to-protect-network", "--json"]));
        if out.contains("203.0.113.44/32") && out.contains("applied") {
            break out;
        }
        assert!(Instant::now() < deadline, "no action: {out}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    let actions: serde_json::Value = serde_json::from_str(&applied).unwrap();
    let a = &actions[0];
    assert_eq!(a["legal_basis"], "self-defense", "{applied}");
    assert!(a["deadline"].is_string(), "every restrictive action ends: {applied}");
    let ev = &a["evidence"];
    let m = if ev["mitigation"].is_null() { &ev["evidence"]["mitigation"] } else { &ev["mitigation"] };
    assert_eq!(m["via"], "flowspec", "{applied}");
    assert_eq!(m["protocol"], 17, "{applied}");
    assert_eq!(m["src_ports"], serde_json::json!([123]), "{applied}");

    // The overview: per-protocol counters, the customer prefix's rate and the top talkers, as
    // aggregates only (the attacked host's address is in no label).
    let deadline = Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let m = http_get(http, "/metrics");
        if m.contains("mamori_flow_bytes_total{protocol=\"udp\"}")
            && m.contains("mamori_flow_top_talker_bits_per_second{prefix=\"203.0.113.0/24\"}")
        {
            break m;
        }
        assert!(Instant::now() < deadline, "no overview metrics: {m}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let udp_bytes: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mamori_flow_bytes_total{protocol=\"udp\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(udp_bytes >= 20.0 * 2000.0 * 468.0, "{metrics}");
    assert!(metrics.contains("mamori_flow_packets_total{protocol=\"udp\"}"), "{metrics}");
    assert!(
        metrics.contains("mamori_flow_prefix_bits_per_second{prefix=\"203.0.113.0/24\",direction=\"in\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("mamori_flow_bytes_total{protocol=\"tcp\"}"), "{metrics}");
    assert!(!metrics.contains("203.0.113.44"), "no host address in the overview: {metrics}");

    // A clean stop writes the detector's learned normal rates; the next start reads them back.
    assert!(served.terminate(Duration::from_secs(15)), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    let learned: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/flow-learned.json")).unwrap()).unwrap();
    assert_eq!(learned["version"], 1, "{learned}");
    assert!(learned["prefixes"].as_array().unwrap().iter().any(|p| p[0] == "203.0.113.0/24"), "{learned}");
    let log2 = dir.path().join("serve2.log");
    let _again = serve(&cfg, &log2);
    let restored = || std::fs::read_to_string(&log2).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !restored().contains("learned normal rates restored") {
        assert!(Instant::now() < deadline, "learned rates not restored at start:\n{}", restored());
        std::thread::sleep(Duration::from_millis(100));
    }
}
