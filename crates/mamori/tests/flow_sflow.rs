//! `mamori serve` with `[flow] sflow_listen` only: sFlow v5 datagrams (flow samples of a
//! memcached reflection, sampled 1 in 1024) reach the sFlow collector, the same engine proposes
//! `ddos.block-to-protect-network`, and the applied action's FlowSpec match (UDP source port
//! 11211) is visible from a second process; `/metrics` counts the agent's datagrams and counter
//! samples. Hermetic: no BGP speaker, nothing announced.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mamori_flow::collector::sflow::wire::{Sample, datagram, ipv4_frame};

mod common;
use common::{free_tcp_port, free_udp_port, http_get, mamori, ok, serve};

#[test]
fn serve_collects_sflow_and_proposes_a_flowspec_mitigation() {
    let dir = tempfile::tempdir().unwrap();
    let (http, sf) = (free_tcp_port(), free_udp_port());
    let cfg = dir.path().join("mamori.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{http}\"\n\
             [flow]\nsflow_listen = \"127.0.0.1:{sf}\"\nwindow = \"1s\"\ncustomer_prefixes = [\"203.0.113.0/24\"]\n\
             host_pps = 5000\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    ok(mamori(&cfg, &["config", "check", cfg.to_str().unwrap()]));
    ok(mamori(&cfg, &["measures", "enable", "ddos.block-to-protect-network", "--by", "sato"]));
    let log = dir.path().join("serve.log");
    let _serve = serve(&cfg, &log);
    // 8 samples per datagram every 250 ms, each standing for 1024 packets: ~32 000 packets/s.
    let samples: Vec<Sample> = (0..8u8)
        .map(|i| Sample {
            rate: 1024,
            input_if: 1,
            frame_length: 1442,
            header: ipv4_frame([100, 64, 7, i], [203, 0, 113, 45], 17, 11211, 30000 + u16::from(i), 0),
            expanded: i % 2 == 1,
        })
        .collect();
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0u32;
    let applied = loop {
        agent.send_to(&datagram("192.0.2.9".parse().unwrap(), n, &samples, 1), ("127.0.0.1", sf)).unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(250));
        let out = ok(mamori(&cfg, &["actions", "list", "--measure", "ddos.block-to-protect-network", "--json"]));
        if out.contains("203.0.113.45/32") && out.contains("applied") {
            break out;
        }
        assert!(Instant::now() < deadline, "no action: {out}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    let actions: serde_json::Value = serde_json::from_str(&applied).unwrap();
    let a = &actions[0];
    let ev = &a["evidence"];
    let m = if ev["mitigation"].is_null() { &ev["evidence"]["mitigation"] } else { &ev["mitigation"] };
    assert_eq!(m["via"], "flowspec", "{applied}");
    assert_eq!((m["protocol"].clone(), m["src_ports"].clone()), (17.into(), serde_json::json!([11211])), "{applied}");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = http_get(http, "/metrics");
        if m.contains("mamori_flow_datagrams_total{exporter=\"192.0.2.9\",outcome=\"decoded\"}")
            && m.contains("mamori_flow_sflow_counter_samples_total{exporter=\"192.0.2.9\"}")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no sFlow counters: {m}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
