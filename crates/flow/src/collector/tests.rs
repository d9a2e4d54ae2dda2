use std::net::{Ipv4Addr, SocketAddr};

use super::wire::{self, Sets, WireFlow};
use super::*;

fn flow(dst: [u8; 4], src_port: u16, packets: u32) -> WireFlow {
    WireFlow {
        src: Ipv4Addr::new(198, 51, 100, 7),
        dst: Ipv4Addr::from(dst),
        protocol: 17,
        src_port,
        dst_port: 4444,
        tcp_flags: 0,
        input_if: 3,
        packets,
        bytes: packets * 500,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn v5_scaled_by_header_sampling() {
    let mut d = Decoder::default();
    let out = d.decode(addr("192.0.2.1:5000"), &wire::v5(1_700_000_000, 100, &[flow([203, 0, 113, 5], 53, 10)]));
    assert!(!out.malformed);
    assert_eq!(out.flows.len(), 1);
    let f = &out.flows[0];
    assert_eq!((f.packets, f.bytes, f.src_port, f.protocol, f.input_if), (1000, 500_000, 53, 17, 3));
    assert_eq!(f.dst.to_string(), "203.0.113.5");
    assert_eq!(f.export_secs, 1_700_000_000);
}

#[test]
fn v9_templates_options_sampling_and_template_loss() {
    let mut d = Decoder::default();
    let ex = addr("192.0.2.1:5000");
    let flows = [flow([203, 0, 113, 5], 123, 2)];
    // Data before any template: counted, not decoded.
    let out = d.decode(ex, &wire::v9(1, 7, &Sets { template: false, sampling: None, flows: &flows }));
    assert_eq!(out.flows.len(), 0);
    assert_eq!(out.no_template, 1);
    let out = d.decode(ex, &wire::v9(2, 7, &Sets { template: true, sampling: Some(512), flows: &flows }));
    assert!(!out.malformed, "{out:?}");
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].packets, 1024);
    assert_eq!(d.sampling(ex, 9, 7), Some(512));
    // Templates are per source id: domain 8 has none yet.
    let out = d.decode(ex, &wire::v9(3, 8, &Sets { template: false, sampling: None, flows: &flows }));
    assert_eq!((out.flows.len(), out.no_template), (0, 1));
    // Domain 7 keeps its template and rate.
    let out = d.decode(ex, &wire::v9(4, 7, &Sets { template: false, sampling: None, flows: &flows }));
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].packets, 1024);
}

#[test]
fn ipfix_templates_per_domain_and_sampling() {
    let mut d = Decoder::default();
    let ex = addr("192.0.2.9:4739");
    let flows = [flow([203, 0, 113, 9], 389, 3), flow([203, 0, 113, 10], 1900, 1)];
    let out = d.decode(ex, &wire::ipfix(5, 1, &Sets { template: true, sampling: Some(10), flows: &flows }));
    assert!(!out.malformed, "{out:?}");
    assert_eq!(out.flows.len(), 2);
    assert_eq!(out.flows[0].packets, 30);
    assert_eq!(out.flows[1].src_port, 1900);
    let other = addr("192.0.2.10:4739");
    let out = d.decode(other, &wire::ipfix(5, 1, &Sets { template: false, sampling: None, flows: &flows }));
    assert_eq!((out.flows.len(), out.no_template), (0, 1), "templates never leak between exporters");
}

#[test]
fn garbage_from_one_exporter_does_not_disturb_another() {
    let mut d = Decoder::default();
    let good = addr("192.0.2.1:5000");
    let bad = addr("192.0.2.66:5000");
    let flows = [flow([203, 0, 113, 5], 53, 1)];
    assert_eq!(d.decode(good, &wire::v9(1, 0, &Sets { template: true, sampling: None, flows: &flows })).flows.len(), 1);
    let mut stats = ExporterStats::default();
    let mut seed = 0x1234_5678u32;
    for i in 0..2000u32 {
        let mut junk: Vec<u8> = (0..(i % 200))
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        // Half of them look like v9/IPFIX headers so they reach the template parsers.
        if i % 2 == 0 && junk.len() > 4 {
            junk[0] = 0;
            junk[1] = if i % 4 == 0 { 9 } else { 10 };
        }
        d.decode_counted(bad, &junk, &mut stats);
    }
    assert!(stats.malformed > 0);
    let out = d.decode(good, &wire::v9(2, 0, &Sets { template: false, sampling: None, flows: &flows }));
    assert_eq!(out.flows.len(), 1, "the good exporter's template survived");
}

#[test]
fn scopes_are_bounded() {
    let mut d = Decoder::new(2, 1);
    let pkt = wire::v5(1, 0, &[flow([203, 0, 113, 5], 53, 1)]);
    assert!(!d.decode(addr("192.0.2.1:1"), &pkt).refused);
    assert!(!d.decode(addr("192.0.2.2:1"), &pkt).refused);
    assert!(d.decode(addr("192.0.2.3:1"), &pkt).refused);
    assert!(!d.decode(addr("192.0.2.1:1"), &pkt).refused);
}

#[test]
fn udp_collector_counts_per_exporter() {
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let c = Collector::spawn(addr("127.0.0.1:0"), tx).unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let flows = [flow([203, 0, 113, 5], 53, 1)];
    s.send_to(&wire::ipfix(1, 1, &Sets { template: true, sampling: None, flows: &flows }), c.local_addr()).unwrap();
    s.send_to(b"\x00\x0agarbage", c.local_addr()).unwrap();
    let got = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(got.len(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let st = c.stats().lock().unwrap().get(&s.local_addr().unwrap().ip()).copied().unwrap_or_default();
        if st.datagrams == 2 {
            assert_eq!((st.flows, st.malformed), (1, 1));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_burst_is_batched_and_every_flow_is_delivered_or_counted_dropped() {
    // A channel of one batch read only every 20 ms: what doesn't fit is counted as dropped
    // against its exporter, and delivered + dropped = decoded.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let c = Collector::spawn(addr("127.0.0.1:0"), tx).unwrap();
    let (a, b) = (std::net::UdpSocket::bind("127.0.0.1:0").unwrap(), std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    let flows: Vec<_> = (0..20).map(|i| flow([203, 0, 113, i], 53, 1)).collect();
    for s in [&a, &b] {
        s.send_to(&wire::v9(1, 0, &Sets { template: true, sampling: None, flows: &[] }), c.local_addr()).unwrap();
    }
    for _ in 0..200 {
        for s in [&a, &b] {
            s.send_to(&wire::v9(2, 0, &Sets { template: false, sampling: None, flows: &flows }), c.local_addr())
                .unwrap();
        }
    }
    // Both senders are 127.0.0.1: one exporter.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (mut delivered, mut batches) = (0u64, 0u64);
    loop {
        while let Ok(batch) = rx.try_recv() {
            delivered += batch.len() as u64;
            batches += 1;
        }
        let st = c.stats().lock().unwrap().get(&a.local_addr().unwrap().ip()).copied().unwrap_or_default();
        // The kernel may drop datagrams of a burst on loopback; the collector accounts for the rest.
        if st.datagrams == 402 && delivered + st.dropped == st.flows {
            assert_eq!(st.flows, 8000);
            assert!(batches < 400, "{batches} batches for 400 datagrams of flows");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st:?} delivered {delivered}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The fuzz corpus (`fuzz/corpus/decode`, datagrams split on `|||`, first byte picks the exporter)
/// decodes without panicking, and the seeds still give flows.
#[test]
fn fuzz_corpus_decodes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let (mut flows, mut fast) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        // As the fuzz target: the fast path and the crate path must agree.
        let mut d = Decoder::new(8, 1);
        let mut slow = Decoder::new(8, 1).with_fast_path(false);
        let mut rest = &data[..];
        while !rest.is_empty() {
            let end = rest.windows(3).position(|w| w == b"|||").unwrap_or(rest.len());
            let (dg, tail) = rest.split_at(end);
            rest = tail.get(3..).unwrap_or_default();
            let Some((&who, body)) = dg.split_first() else { continue };
            let exporter = SocketAddr::from(([192, 0, 2, who % 4], 2055));
            let out = d.decode(exporter, body);
            assert_eq!(out, slow.decode(exporter, body));
            flows += out.flows.len();
        }
        fast += d.fast_decoded();
    }
    assert!(flows >= 7, "{flows}");
    assert!(fast >= 4, "{fast} datagrams took the fast path");
}

#[test]
fn sflow_collector_counts_per_agent_and_a_burst_of_garbage_does_not_disturb_others() {
    use super::sflow::wire::{Sample, datagram, ipv4_frame};
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    let c = Collector::spawn_sflow(addr("127.0.0.1:0"), tx).unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let agent: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let sample = Sample {
        rate: 1000,
        input_if: 3,
        frame_length: 1500,
        header: ipv4_frame([100, 64, 0, 1], [203, 0, 113, 5], 17, 123, 4444, 0),
        expanded: false,
    };
    // Garbage from another sender first: counted against it, never the agent.
    for i in 0..500u32 {
        let mut junk = datagram("192.0.2.66".parse().unwrap(), i, std::slice::from_ref(&sample), 0);
        junk.truncate(20 + (i as usize % 80));
        s.send_to(&junk, c.local_addr()).unwrap();
        if i % 50 == 49 {
            // Within the socket's receive buffer.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    s.send_to(&datagram(agent, 1, &[sample.clone(), sample], 1), c.local_addr()).unwrap();
    let got = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].packets, got[0].bytes, got[0].src_port), (1000, 1_500_000, 123));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (st, junk) = {
            let stats = c.stats();
            let m = stats.lock().unwrap();
            // Junk whose header parsed counts against its agent, the rest against the sender.
            let j = |ip: &str| m.get(&ip.parse().unwrap()).copied().unwrap_or_default();
            let (a, b) = (j("192.0.2.66"), j("127.0.0.1"));
            (
                m.get(&agent).copied().unwrap_or_default(),
                (a.datagrams + b.datagrams, a.malformed + b.malformed, a.flows + b.flows),
            )
        };
        if st.datagrams == 1 && junk.0 == 500 {
            assert_eq!((st.flows, st.malformed, st.counter_samples), (2, 0, 1));
            assert_eq!(junk, (500, 500, 0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st:?} {junk:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The sFlow fuzz corpus (`fuzz/corpus/sflow`, datagrams split on `|||`; seeds built per the
/// spec and real `pmacctd` sfprobe datagrams) decodes without panicking, and the seeds give flows.
#[test]
fn sflow_fuzz_corpus_decodes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sflow");
    let from = SocketAddr::from(([192, 0, 2, 1], 6343));
    let (mut flows, mut clean) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let end = rest.windows(3).position(|w| w == b"|||").unwrap_or(rest.len());
            let (dg, tail) = rest.split_at(end);
            rest = tail.get(3..).unwrap_or_default();
            let d = sflow::decode(from, dg);
            flows += d.flows.len();
            clean += usize::from(d.error.is_none());
        }
    }
    assert!(flows >= 20 && clean >= 8, "{flows} flows, {clean} clean datagrams");
}
