use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mamori_core::action::ActionState;
use mamori_core::actuator::RecordingActuator;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::governance::Governance;
use mamori_core::subject::{Actor, SubscriberId};

use super::engine::{FlowEngine, VictimReport, propose_victim_request};
use super::*;

fn rec(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16, flags: u8, packets: u64) -> FlowRecord {
    FlowRecord {
        exporter: SocketAddr::from(([192, 0, 2, 1], 2055)),
        export_secs: 0,
        src: IpAddr::V4(Ipv4Addr::from(src)),
        dst: IpAddr::V4(Ipv4Addr::from(dst)),
        protocol: proto,
        src_port: sport,
        dst_port: dport,
        tcp_flags: flags,
        input_if: 7,
        packets,
        bytes: packets * 400,
    }
}

fn config() -> DetectConfig {
    DetectConfig {
        customer_prefixes: vec!["203.0.113.0/24".parse().unwrap()],
        customer_interfaces: vec![CustomerInterface {
            exporter: "192.0.2.1".parse().unwrap(),
            if_index: 7,
            prefixes: vec!["198.51.100.0/24".parse().unwrap()],
        }],
        host_pps: 50_000.0,
        min_pps: 1_000.0,
        spoof_min_packets: 100,
        ..DetectConfig::default()
    }
}

fn baseline(d: &mut Detector) {
    for _ in 0..20 {
        d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 5], 6, 40000, 443, 0x18, 500));
        d.ingest(&rec([198, 51, 100, 2], [203, 0, 113, 5], 17, 50000, 443, 0, 100));
        assert!(d.close_window(1.0).attacks.is_empty());
    }
}

#[test]
fn dns_reflection_is_matched_by_source_port() {
    let mut d = Detector::new(config());
    baseline(&mut d);
    assert!((d.normal_pps("203.0.113.5".parse().unwrap()).unwrap() - 600.0).abs() < 1.0);
    for i in 0..50u8 {
        d.ingest(&rec([100, 64, 0, i], [203, 0, 113, 5], 17, 53, 33000 + u16::from(i), 0, 200));
    }
    d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 5], 6, 40000, 443, 0x18, 500));
    let out = d.close_window(1.0);
    assert_eq!(out.attacks.len(), 1);
    let a = &out.attacks[0];
    assert_eq!(a.reason, "normal");
    assert_eq!(a.attack.protocol, Some(17));
    assert_eq!(a.attack.src_ports, vec![53]);
    assert!(a.attack.dst_ports.is_empty());
    assert!(a.coverage > 0.9);
    assert_eq!(a.top_sources.len(), 5);
    // The attack window did not move the normal.
    assert!((d.normal_pps("203.0.113.5".parse().unwrap()).unwrap() - 600.0).abs() < 1.0);
}

#[test]
fn syn_flood_matches_flags_and_port() {
    let mut d = Detector::new(config());
    for i in 0..=255u8 {
        d.ingest(&rec([i, 1, 2, 3], [203, 0, 113, 9], 6, 1024 + u16::from(i), 80, 0x02, 400));
    }
    let out = d.close_window(1.0);
    let a = &out.attacks[0];
    assert_eq!(a.reason, "pps");
    assert_eq!((a.attack.protocol, a.attack.tcp_flags, a.attack.dst_ports.clone()), (Some(6), Some(2), vec![80]));
    assert!(a.attack.src_ports.is_empty());
}

#[test]
fn outside_customer_prefixes_is_ignored_and_spoofing_is_seen() {
    let mut d = Detector::new(config());
    let mut other_if = rec([1, 1, 1, 1], [8, 8, 8, 8], 17, 53, 1, 0, 1_000_000);
    other_if.input_if = 1;
    d.ingest(&other_if);
    d.ingest(&rec([198, 51, 100, 9], [203, 0, 113, 1], 17, 1, 1, 0, 50));
    d.ingest(&rec([10, 9, 9, 9], [203, 0, 113, 1], 17, 1, 1, 0, 500));
    let out = d.close_window(1.0);
    assert!(out.attacks.is_empty());
    assert_eq!(out.spoofing.len(), 1);
    assert_eq!(out.spoofing[0].spoofed, vec![("10.9.9.9".parse().unwrap(), 500)]);
    assert_eq!(out.spoofing[0].packets, 550);
}

fn gov(dir: &std::path::Path) -> Arc<Governance> {
    let store = Arc::new(
        mamori_store::SqliteStore::open(&dir.join("m.sqlite"), mamori_store::StoreOptions::default()).unwrap(),
    );
    Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(mamori_core::config::Config::default())).unwrap())
}

#[test]
fn engine_proposes_and_applies_through_governance() {
    let dir = tempfile::tempdir().unwrap();
    let g = gov(dir.path());
    let act = Arc::new(RecordingActuator::default());
    let mut e = FlowEngine::new(g.clone(), Arc::new(WallClock), Detector::new(config()), act.clone()).unwrap();
    let flood: Vec<_> = (0..=255u8)
        .map(|i| FlowRecord { input_if: 1, ..rec([i, 1, 2, 3], [203, 0, 113, 9], 17, 123, 5000, 0, 400) })
        .collect();
    // Not enabled: a finding only.
    e.ingest(&flood);
    let r = e.close_window(1.0).unwrap();
    assert_eq!((r.findings.len(), r.decisions.len()), (1, 0));
    g.enable_measure(MeasureId::DdosBlockToProtectNetwork, &Actor("operator:test".into())).unwrap();
    e.ingest(&flood);
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.decisions.len(), 1, "{r:?}");
    let d = &r.decisions[0];
    assert_eq!(d.action.state, ActionState::Applied, "{:?}", d.action);
    assert!(d.action.deadline.is_some(), "every restrictive action ends");
    let m: crate::bgp::Mitigation = serde_json::from_value(d.action.evidence["mitigation"].clone()).unwrap();
    match m {
        crate::bgp::Mitigation::Flowspec(f) => assert_eq!((f.protocol, f.src_ports), (Some(17), vec![123])),
        other => panic!("{other:?}"),
    }
    // 256 flows: every one of them is in the host's breakdown.
    assert_eq!(d.action.evidence["estimated_from_sample"], false);
    assert_eq!(act.calls().len(), 1);
    assert_eq!(act.calls()[0].target, "prefix:203.0.113.9/32");
    // Still under attack: the open action is reused, not doubled.
    e.ingest(&flood);
    let r = e.close_window(1.0).unwrap();
    assert!(r.decisions[0].existing);
    assert_eq!(act.calls().len(), 1);
    // The attack stops: after the cool-down the detector lifts and the actuator withdraws.
    e.cooldown_windows = 3;
    for _ in 0..2 {
        assert!(e.close_window(1.0).unwrap().lifted.is_empty());
    }
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.lifted, vec![d.action.id.clone()]);
    assert_eq!(act.calls().last().unwrap().call, "remove");
    let rec = g.store().action(&d.action.id).unwrap().unwrap();
    assert_eq!(rec.state, ActionState::Lifted);
}

#[test]
fn victim_request_proposes_the_matching_mitigation() {
    let dir = tempfile::tempdir().unwrap();
    let g = gov(dir.path());
    g.enable_measure(MeasureId::DdosBlockOnVictimRequest, &Actor("operator:test".into())).unwrap();
    let act = RecordingActuator::default();
    let attack = crate::bgp::FlowMatch {
        dst: "203.0.113.20/32".parse().unwrap(),
        src: None,
        protocol: Some(17),
        src_ports: vec![11211],
        dst_ports: vec![],
        tcp_flags: None,
        fragment: false,
        action: crate::bgp::FlowAction::Discard,
    };
    let (d, err) = propose_victim_request(
        &g,
        &act,
        VictimReport {
            subscriber: SubscriberId("S-1001".into()),
            via: "phone".into(),
            operator: Actor("operator:noc".into()),
            attack,
            blackhole: false,
            duration: Some(jiff::SignedDuration::from_hours(2)),
        },
    )
    .unwrap();
    assert!(err.is_none());
    assert_eq!(d.action.state, ActionState::Applied, "{:?}", d.action);
    assert_eq!(act.calls().len(), 1);
}

/// A customer host's outbound flow (on a core interface, not the spoof-checked one).
fn out(dst: [u8; 4], proto: u8, sport: u16, dport: u16, packets: u64) -> FlowRecord {
    FlowRecord { input_if: 1, ..rec([203, 0, 113, 7], dst, proto, sport, dport, 0x18, packets) }
}

fn outbound_baseline(d: &mut Detector) {
    for _ in 0..20 {
        d.ingest(&out([192, 0, 2, 80], 6, 50000, 443, 500));
        d.ingest(&out([192, 0, 2, 81], 17, 50001, 443, 100));
        let w = d.close_window(1.0);
        assert!(w.sources.is_empty() && w.attacks.is_empty());
    }
}

#[test]
fn bot_flood_from_a_customer_host_is_matched_on_the_source() {
    let mut d = Detector::new(config());
    outbound_baseline(&mut d);
    let host: IpAddr = "203.0.113.7".parse().unwrap();
    assert!((d.normal_out_pps(host).unwrap() - 600.0).abs() < 1.0);
    assert_eq!(d.normal_pps(host), None, "outbound traffic is not the host's inbound normal");
    // Suddenly a UDP flood toward one outside victim's port 80, from many source ports.
    for i in 0..40u16 {
        d.ingest(&out([198, 18, 0, 10], 17, 1024 + i, 80, 500));
    }
    d.ingest(&out([192, 0, 2, 80], 6, 50000, 443, 500));
    let w = d.close_window(1.0);
    assert!(w.attacks.is_empty());
    assert_eq!(w.sources.len(), 1);
    let s = &w.sources[0];
    assert_eq!(s.reason, "normal");
    assert_eq!(s.src.to_string(), "203.0.113.7/32");
    let m = &s.attack;
    assert_eq!(m.src.map(|p| p.to_string()).as_deref(), Some("203.0.113.7/32"));
    assert_eq!(m.dst.to_string(), "198.18.0.10/32");
    assert_eq!((m.protocol, m.dst_ports.clone()), (Some(17), vec![80]));
    assert!(m.src_ports.is_empty() && m.tcp_flags.is_none() && !m.fragment);
    assert!(s.coverage > 0.9, "{s:?}");
    assert_eq!(s.top_destinations[0].0, "198.18.0.10".parse::<IpAddr>().unwrap());
    // The attack window did not move the normal.
    assert!((d.normal_out_pps(host).unwrap() - 600.0).abs() < 1.0);
}

#[test]
fn spread_flood_matches_any_destination_and_internal_traffic_is_inbound_only() {
    let mut d = Detector::new(config());
    for i in 0..=255u8 {
        d.ingest(&out([198, 18, 1, i], 6, 40000, 23, 300));
    }
    // Between two customer hosts: the destination's inbound traffic, not an outbound attack.
    d.ingest(&FlowRecord { input_if: 1, ..rec([203, 0, 113, 8], [203, 0, 113, 9], 17, 1, 1, 0, 100_000) });
    let w = d.close_window(1.0);
    assert_eq!(w.sources.len(), 1, "{:?}", w.sources);
    let s = &w.sources[0];
    assert_eq!(s.reason, "pps");
    assert_eq!(s.attack.dst.to_string(), "0.0.0.0/0");
    assert_eq!((s.attack.protocol, s.attack.dst_ports.clone()), (Some(6), vec![23]));
    assert_eq!(w.attacks.len(), 1);
    assert_eq!(w.attacks[0].dst.to_string(), "203.0.113.9/32");
}

#[test]
fn engine_proposes_blocking_an_unintended_source_through_governance() {
    let dir = tempfile::tempdir().unwrap();
    let g = gov(dir.path());
    let act = Arc::new(RecordingActuator::default());
    let mut e = FlowEngine::new(g.clone(), Arc::new(WallClock), Detector::new(config()), act.clone()).unwrap();
    let flood: Vec<_> = (0..200u16).map(|i| out([198, 18, 0, 10], 17, 2000 + i, 53, 400)).collect();
    e.ingest(&flood);
    let r = e.close_window(1.0).unwrap();
    assert_eq!((r.findings.len(), r.decisions.len()), (1, 0), "not enabled: a finding only");
    g.enable_measure(MeasureId::DdosBlockUnintendedSource, &Actor("operator:test".into())).unwrap();
    e.ingest(&flood);
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.decisions.len(), 1, "{r:?}");
    let d = &r.decisions[0];
    assert_eq!(d.action.measure, MeasureId::DdosBlockUnintendedSource);
    assert_eq!(d.action.state, ActionState::Applied, "{:?}", d.action);
    assert!(d.action.deadline.is_some(), "every restrictive action ends");
    let ev = &d.action.evidence;
    assert!(ev["attribution"].as_str().unwrap().contains("mamori-attribution"), "{ev}");
    assert!(ev.get("customer_prefix").is_none(), "the measure doesn't read it: {ev}");
    let m: crate::bgp::Mitigation = serde_json::from_value(ev["mitigation"].clone()).unwrap();
    match m {
        crate::bgp::Mitigation::Flowspec(f) => {
            assert_eq!(f.src.unwrap().to_string(), "203.0.113.7/32");
            assert_eq!(f.dst.to_string(), "198.18.0.10/32");
            assert_eq!((f.protocol, f.dst_ports, f.src_ports), (Some(17), vec![53], vec![]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(act.calls().len(), 1);
    assert_eq!(act.calls()[0].target, "prefix:203.0.113.7/32");
    // The overview of the same windows carries the customer prefix's outbound aggregate only.
    let o = r.overview.unwrap();
    assert_eq!(o.prefixes.len(), 1);
    assert_eq!(o.prefixes[0].prefix.to_string(), "203.0.113.0/24");
    assert_eq!(o.prefixes[0].bytes, [0, 200 * 400 * 400]);
    // The bot stops: lifted after the cool-down, the rule withdrawn.
    e.cooldown_windows = 2;
    assert!(e.close_window(1.0).unwrap().lifted.is_empty());
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.lifted, vec![d.action.id.clone()]);
    assert_eq!(act.calls().last().unwrap().call, "remove");
    assert_eq!(g.store().action(&d.action.id).unwrap().unwrap().state, ActionState::Lifted);
}

#[test]
fn an_attack_seen_only_through_sflow_gives_a_finding_and_mitigation() {
    use crate::collector::sflow::{self, wire};
    let dir = tempfile::tempdir().unwrap();
    let g = gov(dir.path());
    g.enable_measure(MeasureId::DdosBlockToProtectNetwork, &Actor("operator:test".into())).unwrap();
    let act = Arc::new(RecordingActuator::default());
    let mut e = FlowEngine::new(g.clone(), Arc::new(WallClock), Detector::new(config()), act.clone()).unwrap();
    // Memcached reflection sampled 1 in 2048: 40 samples in a second stand for 81 920 packets.
    let samples: Vec<_> = (0..40u8)
        .map(|i| wire::Sample {
            rate: 2048,
            input_if: 1,
            frame_length: 1400,
            header: wire::ipv4_frame([100, 64, 2, i], [203, 0, 113, 44], 17, 11211, 40000 + u16::from(i), 0),
            expanded: i % 2 == 0,
        })
        .collect();
    let from: SocketAddr = "127.0.0.1:6343".parse().unwrap();
    for (n, chunk) in samples.chunks(8).enumerate() {
        let d = sflow::decode(from, &wire::datagram("192.0.2.1".parse().unwrap(), n as u32, chunk, 1));
        assert_eq!((d.error.clone(), d.flows.len()), (None, chunk.len()));
        e.ingest(&d.flows);
    }
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.findings.len(), 1, "{r:?}");
    let d = &r.decisions[0];
    assert_eq!(d.action.state, ActionState::Applied, "{:?}", d.action);
    assert_eq!(d.action.target.to_string(), "prefix:203.0.113.44/32");
    assert_eq!(d.action.evidence["pps"], 81_920.0);
    let m: crate::bgp::Mitigation = serde_json::from_value(d.action.evidence["mitigation"].clone()).unwrap();
    match m {
        crate::bgp::Mitigation::Flowspec(f) => assert_eq!((f.protocol, f.src_ports), (Some(17), vec![11211])),
        other => panic!("{other:?}"),
    }
    assert_eq!(act.calls().len(), 1);
}

#[test]
fn carpet_bombing_a_prefix_is_found_on_the_prefix_and_names_it() {
    let mut d = Detector::new(DetectConfig { prefix_pps: 200_000.0, ..config() });
    let prefix: Prefix = "203.0.113.0/24".parse().unwrap();
    // Quiet windows teach the prefix's normal: two hosts, 600 packets/s in all.
    baseline(&mut d);
    assert!((d.normal_prefix_pps(prefix).unwrap() - 600.0).abs() < 1.0);
    // NTP reflection spread over all 254 hosts: 1000 packets/s each, far under host_pps (50 000)
    // and under the normal factor of any host that had none, 254 000 packets/s toward the prefix.
    for h in 1..=254u8 {
        for s in 0..4u8 {
            d.ingest(&rec([100, 64, s, h], [203, 0, 113, h], 17, 123, 40000, 0, 250));
        }
    }
    let out = d.close_window(1.0);
    assert_eq!(out.attacks.len(), 1, "{:?}", out.attacks.iter().map(|a| a.dst).collect::<Vec<_>>());
    let a = &out.attacks[0];
    assert_eq!(a.dst, prefix, "the finding names the prefix");
    assert_eq!(a.customer_prefix, Some(prefix));
    assert_eq!(a.reason, "pps");
    assert_eq!((a.attack.dst, a.attack.protocol, a.attack.src_ports.clone()), (prefix, Some(17), vec![123]));
    assert!(a.coverage > 0.99);
    assert!((a.normal_pps - 600.0).abs() < 1.0);
    // The attack window did not teach the prefix's normal.
    assert!((d.normal_prefix_pps(prefix).unwrap() - 600.0).abs() < 1.0);
}

#[test]
fn prefix_over_its_learned_normal_and_hosts_that_cover_it() {
    let mut d = Detector::new(config());
    let prefix: Prefix = "203.0.113.0/24".parse().unwrap();
    baseline(&mut d);
    // 20 000 packets/s over 40 hosts: no host is over a limit, the prefix is 33× its normal.
    for h in 10..50u8 {
        d.ingest(&rec([100, 64, 9, h], [203, 0, 113, h], 6, 1024, 80, 0x02, 500));
    }
    let out = d.close_window(1.0);
    assert_eq!(out.attacks.len(), 1);
    assert_eq!((out.attacks[0].dst, out.attacks[0].reason), (prefix, "normal"));
    assert_eq!((out.attacks[0].attack.tcp_flags, out.attacks[0].attack.dst_ports.clone()), (Some(2), vec![80]));
    // One host over its limit carries the prefix's excess: the host alone is reported.
    let mut d = Detector::new(DetectConfig { prefix_pps: 100_000.0, ..config() });
    for s in 0..=255u8 {
        d.ingest(&rec([100, 64, 3, s], [203, 0, 113, 77], 17, 53, 5000, 0, 500));
    }
    let out = d.close_window(1.0);
    assert_eq!(out.attacks.iter().map(|a| a.dst.to_string()).collect::<Vec<_>>(), ["203.0.113.77/32"]);
}

#[test]
fn engine_evidence_names_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let g = gov(dir.path());
    g.enable_measure(MeasureId::DdosBlockToProtectNetwork, &Actor("operator:test".into())).unwrap();
    let act = Arc::new(RecordingActuator::default());
    let detector = Detector::new(DetectConfig { prefix_pps: 100_000.0, ..config() });
    let mut e = FlowEngine::new(g.clone(), Arc::new(WallClock), detector, act.clone()).unwrap();
    let flood: Vec<_> = (1..=250u8)
        .map(|h| FlowRecord { input_if: 1, ..rec([100, 64, 0, h], [203, 0, 113, h], 17, 1900, 6000, 0, 800) })
        .collect();
    e.ingest(&flood);
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.decisions.len(), 1, "{r:?}");
    let d = &r.decisions[0];
    assert_eq!(d.action.target.to_string(), "prefix:203.0.113.0/24");
    assert_eq!(d.action.evidence["scope"], "prefix");
    assert_eq!(d.action.evidence["customer_prefix"], "203.0.113.0/24");
    // A prefix's breakdown is always a sample.
    assert_eq!(d.action.evidence["estimated_from_sample"], true);
    assert_eq!(act.calls()[0].target, "prefix:203.0.113.0/24");
}

#[test]
fn a_window_is_urgent_once_a_host_spent_its_budget_and_not_again_while_reported() {
    let mut d = Detector::new(config());
    d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 5], 17, 53, 1, 0, 40_000));
    assert!(!d.urgent(), "no budget without an expected window");
    d.expect_window(1.0);
    d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 5], 17, 53, 1, 0, 20_000));
    assert!(d.urgent(), "60 000 packets toward one host: more than host_pps × 1 s");
    // Closed early (0.1 s into it): the host is reported at its rate over the short window.
    let out = d.close_window(0.1);
    assert_eq!(out.attacks.len(), 1);
    assert!(!d.urgent());
    // Still under attack: the next window runs its full length.
    d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 5], 17, 53, 1, 0, 60_000));
    assert!(!d.urgent());
    assert_eq!(d.close_window(1.0).attacks.len(), 1);
}

#[test]
fn hosts_in_tabled_and_hashed_prefixes_are_counted_alike_across_windows() {
    // 203.0.113.0/24 and 10.1.0.0/16 get host tables, 10.0.0.0/8 (shorter) and IPv6 go by hash;
    // a host in 10.1/16 is in both /8 and /16 and counts in the longer one.
    let cfg = DetectConfig {
        customer_prefixes: ["10.0.0.0/8", "203.0.113.0/24", "10.1.0.0/16", "2001:db8::/32"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect(),
        host_pps: 10_000.0,
        normal_factor: 1e12,
        ..DetectConfig::default()
    };
    let mut d = Detector::new(cfg);
    let v6 = |packets| FlowRecord {
        dst: "2001:db8::7".parse().unwrap(),
        src: "2001:db8:ffff::1".parse().unwrap(),
        ..rec([0; 4], [0; 4], 17, 123, 4000, 0, packets)
    };
    for window in 0..3u8 {
        for i in 0..100u8 {
            // Attacked: 12 000 packets each toward four hosts; quiet: one flow toward many.
            for dst in [[203, 0, 113, 9], [10, 1, 2, 3], [10, 9, 9, 9]] {
                d.ingest(&rec([198, 51, 100, i], dst, 17, 123, 4000, 0, 120));
            }
            d.ingest(&v6(120));
            d.ingest(&rec([198, 51, 100, i], [203, 0, 113, 100 + i], 6, 1000, 443, 0x18, 1));
            d.ingest(&rec([198, 51, 100, i], [10, 1, 10 + window, i], 6, 1000, 443, 0x18, 1));
        }
        let out = d.close_window(1.0);
        let mut got: Vec<_> =
            out.attacks.iter().map(|a| (a.dst.to_string(), a.customer_prefix.map(|p| p.to_string()), a.pps)).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("10.1.2.3/32".to_owned(), Some("10.1.0.0/16".to_owned()), 12_000.0),
                ("10.9.9.9/32".to_owned(), Some("10.0.0.0/8".to_owned()), 12_000.0),
                ("2001:db8::7/128".to_owned(), Some("2001:db8::/32".to_owned()), 12_000.0),
                ("203.0.113.9/32".to_owned(), Some("203.0.113.0/24".to_owned()), 12_000.0),
            ],
            "window {window}"
        );
        for a in &out.attacks {
            assert_eq!((a.attack.protocol, a.attack.src_ports.as_slice()), (Some(17), &[123][..]));
        }
    }
}

/// The DNS reflection of `dns_reflection_is_matched_by_source_port`: 10 000 packets/s, under
/// `host_pps` and caught only against the host's learned normal (600 packets/s).
fn reflection_window(d: &mut Detector) -> WindowOutcome {
    for i in 0..50u8 {
        d.ingest(&rec([100, 64, 0, i], [203, 0, 113, 5], 17, 53, 33000 + u16::from(i), 0, 200));
    }
    d.close_window(1.0)
}

#[test]
fn learned_normals_survive_a_restart() {
    let mut before = Detector::new(config());
    baseline(&mut before);
    outbound_baseline(&mut before);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flow-learned.json");
    before.learned().save(&path).unwrap();
    let learned = FlowLearned::load(&path).unwrap().expect("saved");
    assert_eq!(learned, before.learned());
    let host: IpAddr = "203.0.113.5".parse().unwrap();
    assert!(learned.hosts.iter().any(|(h, _)| *h == host));
    assert_eq!(learned.prefixes.len(), 1);
    assert!(!learned.outbound.is_empty());

    // Restarted with what was learned: the reflection is over the host's normal.
    let mut restarted = Detector::new(config());
    let n = learned.hosts.len() + learned.prefixes.len() + learned.outbound.len();
    assert_eq!(restarted.restore(learned), n);
    assert_eq!(restarted.normal_pps(host), before.normal_pps(host));
    let out = reflection_window(&mut restarted);
    assert_eq!(out.attacks.iter().map(|a| (a.dst, a.reason)).collect::<Vec<_>>(), [(Prefix::host(host), "normal")]);
    // Started afresh, the same window is under every fixed limit and passes unseen.
    let mut fresh = Detector::new(config());
    assert!(reflection_window(&mut fresh).attacks.is_empty());
}

#[test]
fn a_learned_state_of_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flow-learned.json");
    let mut l = Detector::new(config()).learned();
    l.version = 7;
    mamori_core::persist::save_json(&path, &l).unwrap();
    let e = FlowLearned::load(&path).unwrap_err().to_string();
    assert!(e.contains("format version 7") && e.contains("flow-learned.json"), "{e}");
}

/// A flow of `packets` from an outside IPv6 source toward `dst` (on a core interface).
fn v6(dst: std::net::Ipv6Addr, packets: u64) -> FlowRecord {
    FlowRecord {
        src: "2001:db8:ffff::1".parse().unwrap(),
        dst: IpAddr::V6(dst),
        input_if: 1,
        ..rec([0; 4], [0; 4], 17, 123, 4000, 0, packets)
    }
}

/// The customer /48 of the bounded-normals tests, and its `i`th host.
fn scan_host(i: u32) -> std::net::Ipv6Addr {
    let [a, b] = (i as u16).to_be_bytes().map(u16::from);
    let hi = (i >> 16) as u16;
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x42, hi, 0x5ca9, 0, a, b)
}

fn bounded_config(max: usize) -> DetectConfig {
    DetectConfig {
        customer_prefixes: vec!["203.0.113.0/24".parse().unwrap(), "2001:db8:42::/48".parse().unwrap()],
        learned_max_entries: max,
        ..config()
    }
}

#[test]
fn a_scan_of_a_v6_customer_prefix_fills_no_map_past_its_cap() {
    let mut d = Detector::new(bounded_config(100));
    // A scan (or spoofed traffic) toward 1000 random-looking hosts of the /48, and 1000 of its
    // hosts "sending" outward (spoofed sources inside it): all quiet, all would be learned.
    for i in 0..1000 {
        d.ingest(&v6(scan_host(i), 1));
        d.ingest(&FlowRecord {
            src: IpAddr::V6(scan_host(i)),
            dst: "2001:db8:9999::1".parse().unwrap(),
            ..v6(scan_host(i), 1)
        });
    }
    assert!(d.close_window(1.0).attacks.is_empty());
    let c = d.learned_counts();
    assert_eq!((c.hosts.entries, c.hosts.refused), (100, 900), "{c:?}");
    assert_eq!((c.outbound.entries, c.outbound.refused), (100, 900), "{c:?}");
    assert_eq!(c.prefixes.entries, 1);
    // More of the scan in the next windows: still at the cap, each refusal counted.
    for w in 1..4 {
        for i in 0..1000 {
            d.ingest(&v6(scan_host(w * 1000 + i), 1));
        }
        assert!(d.close_window(1.0).attacks.is_empty());
    }
    let c = d.learned_counts();
    assert_eq!((c.hosts.entries, c.hosts.refused), (100, 3900), "{c:?}");
    // A host learned before the map filled goes on learning.
    let known = IpAddr::V6(scan_host(0));
    assert_eq!(d.normal_pps(known), Some(1.0));
    d.ingest(&v6(scan_host(0), 21));
    d.close_window(1.0);
    assert!((d.normal_pps(known).unwrap() - 2.0).abs() < 1e-9);
    // A host refused a normal is still judged by the fixed limits.
    let victim = scan_host(999);
    assert_eq!(d.normal_pps(IpAddr::V6(victim)), None);
    for _ in 0..60 {
        d.ingest(&v6(victim, 1000));
    }
    let out = d.close_window(1.0);
    assert_eq!(
        out.attacks.iter().map(|a| (a.dst, a.reason)).collect::<Vec<_>>(),
        [(Prefix::host(IpAddr::V6(victim)), "pps")]
    );
    assert_eq!(out.attacks[0].normal_pps, 0.0);
    assert!(d.learned_counts().hosts.entries <= 100);

    // A full prefix map refuses the same way.
    let mut d = Detector::new(bounded_config(1));
    d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 5], 6, 40000, 443, 0x18, 500));
    d.ingest(&v6(scan_host(1), 1));
    d.close_window(1.0);
    let c = d.learned_counts();
    assert_eq!((c.prefixes.entries, c.prefixes.refused), (1, 1), "{c:?}");
    assert_eq!((c.hosts.entries, c.hosts.refused), (1, 1), "{c:?}");
}

#[test]
fn a_full_map_forgets_one_window_normals_first_and_keeps_regular_hosts() {
    let mut d = Detector::new(bounded_config(100));
    // Two regular hosts, learned over 20 windows each.
    baseline(&mut d);
    for i in 0..1000 {
        d.ingest(&v6(scan_host(i), 1));
    }
    d.close_window(1.0);
    assert_eq!(d.learned_counts().hosts.entries, 100);
    let regular: IpAddr = "203.0.113.5".parse().unwrap();
    // Over an hour later (of windows, not wall clock), a new host: the scan targets, learned
    // from one window and unseen since, make room for it; the regular host keeps its normal.
    for _ in 0..7 {
        d.close_window(600.0);
    }
    let newcomer = scan_host(5000);
    d.ingest(&v6(newcomer, 1));
    d.close_window(1.0);
    assert!(d.normal_pps(IpAddr::V6(newcomer)).is_some());
    assert!((d.normal_pps(regular).unwrap() - 600.0).abs() < 1.0);
    let c = d.learned_counts();
    assert_eq!(c.hosts.entries, 2, "{c:?}");
    assert_eq!(c.hosts.forgotten, 99, "{c:?}");
}

#[test]
fn an_unseen_host_is_forgotten_and_a_seen_one_keeps_its_normal() {
    let mut d = Detector::new(DetectConfig { learned_forget_after: 100.0, ..config() });
    let (gone, staying, attacked): (IpAddr, IpAddr, IpAddr) =
        ("203.0.113.5".parse().unwrap(), "203.0.113.6".parse().unwrap(), "203.0.113.7".parse().unwrap());
    baseline(&mut d);
    // `staying` gets quiet traffic every window, `attacked` is learned and then attacked (judged
    // over a limit, its normal not moved) every window; `gone` gets nothing more.
    for w in 0..150 {
        d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 6], 6, 40000, 443, 0x18, 700));
        let attack = if w < 10 { 300 } else { 60_000 };
        d.ingest(&rec([198, 51, 100, 1], [203, 0, 113, 7], 17, 53, 1, 0, attack));
        let out = d.close_window(1.0);
        assert_eq!(out.attacks.len(), usize::from(w >= 10), "window {w}");
        if w == 90 {
            assert!(d.normal_pps(gone).is_some(), "90 s after its last window");
        }
    }
    assert_eq!(d.normal_pps(gone), None, "150 s after its last window");
    assert!((d.normal_pps(staying).unwrap() - 700.0).abs() < 1.0);
    assert!((d.normal_pps(attacked).unwrap() - 300.0).abs() < 1.0);
    let c = d.learned_counts();
    assert_eq!((c.hosts.entries, c.hosts.forgotten), (2, 1), "swept, not only hidden: {c:?}");
    assert!(!d.learned().hosts.iter().any(|(h, _)| *h == gone));
    // Long windows with no traffic at all count the same: everything goes.
    d.close_window(60.0);
    d.close_window(60.0);
    assert_eq!(d.normal_pps(staying), None);
    assert_eq!(d.learned_counts().hosts.entries, 0);
    assert_eq!(d.learned_counts().prefixes.entries, 0);
}

#[test]
fn the_forget_time_goes_on_across_a_restart() {
    let cfg = DetectConfig { learned_forget_after: 100.0, ..config() };
    let mut before = Detector::new(cfg.clone());
    baseline(&mut before);
    let host: IpAddr = "203.0.113.5".parse().unwrap();
    for _ in 0..6 {
        before.close_window(10.0);
    }
    let learned = before.learned();
    assert_eq!(learned.hosts_seen, [(60, 20)]);
    let mut after = Detector::new(cfg);
    assert_eq!(after.restore(learned), 2);
    for _ in 0..3 {
        after.close_window(10.0);
    }
    assert!(after.normal_pps(host).is_some(), "90 s idle");
    after.close_window(15.0);
    assert_eq!(after.normal_pps(host), None, "105 s idle, 60 of them before the restart");
}

#[test]
fn a_restore_keeps_at_most_the_cap_the_most_recently_seen_first() {
    let hosts: Vec<(IpAddr, f64)> = (0..1000).map(|i| (IpAddr::V6(scan_host(i)), 5.0)).collect();
    // The higher the host, the more recently it was seen; the first ten were idle past the
    // forget time when written.
    let seen: Vec<(u32, u32)> =
        (0..1000u32).map(|i| (if i < 10 { 700_000 } else { 100_000 - i * 10 }, 1 + i % 3)).collect();
    let learned = FlowLearned {
        version: FLOW_LEARNED_VERSION,
        hosts: hosts.clone(),
        prefixes: vec![("2001:db8:42::/48".into(), 5000.0), ("203.0.113.0/24".into(), 600.0)],
        outbound: hosts,
        hosts_seen: seen.clone(),
        prefixes_seen: vec![],
        outbound_seen: seen,
    };
    let mut d = Detector::new(bounded_config(100));
    assert_eq!(d.restore(learned.clone()), 202);
    let c = d.learned_counts();
    assert_eq!((c.hosts.entries, c.outbound.entries, c.prefixes.entries), (100, 100, 2), "{c:?}");
    assert_eq!(c.hosts.refused, 890, "the ten forgotten ones are not refused: {c:?}");
    assert!(d.normal_pps(IpAddr::V6(scan_host(999))).is_some());
    assert!(d.normal_pps(IpAddr::V6(scan_host(900))).is_some());
    assert_eq!(d.normal_pps(IpAddr::V6(scan_host(899))), None);
    assert_eq!(d.learned().hosts_seen.iter().map(|s| s.1).max(), Some(3), "windows kept");
    // A file of the format before the idle times (version 1 too) still loads, within the cap.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flow-learned.json");
    let mut old = serde_json::to_value(&learned).unwrap();
    for k in ["hosts_seen", "prefixes_seen", "outbound_seen"] {
        old.as_object_mut().unwrap().remove(k);
    }
    std::fs::write(&path, old.to_string()).unwrap();
    let loaded = FlowLearned::load(&path).unwrap().expect("saved");
    assert!(loaded.hosts_seen.is_empty() && loaded.hosts.len() == 1000);
    let mut d = Detector::new(bounded_config(100));
    assert_eq!(d.restore(loaded), 202);
    assert_eq!(d.learned_counts().hosts.entries, 100);
    // … and a restore into a detector that learned already never goes past the cap either.
    let mut d = Detector::new(bounded_config(100));
    for i in 0..60 {
        d.ingest(&v6(scan_host(10_000 + i), 1));
    }
    d.close_window(1.0);
    // 40 hosts, the outbound normals (none learned yet), the prefix not learned yet.
    assert_eq!(d.restore(learned), 40 + 100 + 1);
    assert_eq!(d.learned_counts().hosts.entries, 100);
}

/// The fixed hash the detector's maps used before they were seeded (rustc's `FxHasher` step with
/// Murmur3's finaliser), kept here only to build keys that collide under it.
#[derive(Default)]
struct OldFx(u64);

const OLD_FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl std::hash::Hasher for OldFx {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(OLD_FX_K);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// `n` hosts of the customer /48 `2001:db8:42::/48` that all have one and the same 64-bit hash
/// under [`OldFx`]: the hash's last step takes the address's low 8 bytes, and its multiplier is
/// odd, so for any upper half (16 free bits below the /48) the low half that reaches a chosen
/// state is one xor away.
fn old_fx_collisions(n: u16) -> Vec<IpAddr> {
    use std::hash::BuildHasher;
    let old = std::hash::BuildHasherDefault::<OldFx>::default();
    // The multiplier's inverse mod 2^64 (Newton's iteration doubles the correct bits).
    let mut inv = OLD_FX_K;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(OLD_FX_K.wrapping_mul(inv)));
    }
    assert_eq!(OLD_FX_K.wrapping_mul(inv), 1);
    let host = |hi: u16, lo: u64| {
        let mut o = [0u8; 16];
        o[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x00, 0x42]);
        o[6..8].copy_from_slice(&hi.to_be_bytes());
        o[8..].copy_from_slice(&lo.to_le_bytes());
        IpAddr::from(o)
    };
    // The state before the last step: the address's hash with the low half left out, replayed.
    let before_last = |hi: u16| {
        let mut h = OldFx::default();
        std::hash::Hash::hash(&host(hi, 0), &mut h);
        // Undo the last step (which took 0): state = (prev.rotl5 ^ 0) * K.
        h.0.wrapping_mul(inv).rotate_right(5)
    };
    let target = 0x0123_4567_89ab_cdef_u64;
    let hosts: Vec<IpAddr> =
        (0..n).map(|hi| host(hi, before_last(hi).rotate_left(5) ^ target.wrapping_mul(inv))).collect();
    let first = old.hash_one(hosts[0]);
    assert!(hosts.iter().all(|h| old.hash_one(h) == first), "the construction collides under the old hash");
    hosts
}

#[test]
fn keys_that_collided_under_the_old_fixed_hash_spread_under_the_seeded_one() {
    use std::hash::BuildHasher;
    let hosts = old_fx_collisions(4096);
    let distinct: std::collections::HashSet<IpAddr> = hosts.iter().copied().collect();
    assert_eq!(distinct.len(), hosts.len());
    let d = Detector::new(bounded_config(1_000_000));
    // The maps a flood toward (or from) those addresses fills: hosts without a table, the
    // learned normals, a breakdown's IPv6 sources.
    let hosts6: Vec<std::net::Ipv6Addr> =
        hosts.iter().map(|h| if let IpAddr::V6(a) = h { *a } else { unreachable!() }).collect();
    let spread = |hashes: Vec<u64>| {
        let full: std::collections::HashSet<u64> = hashes.iter().copied().collect();
        // Buckets of a table of 4096 (the low bits): ~2,590 of 4,096 expected for random hashes.
        let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        (full.len(), buckets.len())
    };
    for (name, (full, buckets)) in [
        ("hosts", spread(hosts.iter().map(|h| d.hosts.other.hasher().hash_one(h)).collect())),
        ("normals", spread(hosts.iter().map(|h| d.normal.map.hasher().hash_one(h)).collect())),
        ("sources", spread(hosts6.iter().map(|h| Detail::default().by_src6.hasher().hash_one(h)).collect())),
    ] {
        assert!(full >= hosts.len() - 1, "{name}: {full} distinct hashes");
        assert!(buckets > 2_000, "{name}: {buckets} buckets");
    }
    // Two detectors are seeded differently: what collides in one doesn't in the other.
    let e = Detector::new(bounded_config(1_000_000));
    assert_ne!(d.normal.map.hasher().hash_one(hosts[0]), e.normal.map.hasher().hash_one(hosts[0]));

    // And the flood itself is counted and learned as any other.
    let mut d = d;
    for h in &hosts6 {
        d.ingest(&v6(*h, 10));
    }
    let w = d.close_window(1.0);
    assert!(w.attacks.is_empty());
    assert_eq!(d.learned_counts().hosts.entries, hosts.len());
    assert_eq!(d.normal_pps(hosts[4095]), Some(10.0));
}

/// Sixteen hosts attacked alike, sixteen customer hosts sending alike, spoofing on eight
/// interfaces alike, given in some order: the window's lists are busiest first, then by address
/// (or interface), whatever the order given and however each detector's maps are seeded.
fn tied_window(order: impl Iterator<Item = u8>) -> WindowOutcome {
    let mut c = config();
    c.source_pps = 50_000.0;
    c.customer_interfaces = (10..18)
        .map(|if_index| CustomerInterface {
            exporter: "192.0.2.1".parse().unwrap(),
            if_index,
            prefixes: vec!["198.51.100.0/24".parse().unwrap()],
        })
        .collect();
    let mut d = Detector::new(c);
    for i in order {
        // Toward host .i: 60 000 packets from one outside source.
        d.ingest(&FlowRecord { input_if: 1, ..rec([198, 18, 0, 1], [203, 0, 113, i], 17, 123, 4000, 0, 60_000) });
        // From host .(100 + i) toward an outside victim.
        d.ingest(&FlowRecord { input_if: 1, ..rec([203, 0, 113, 100 + i], [198, 18, 0, 2], 17, 4000, 80, 0, 60_000) });
        // Spoofed on interface 10 + i % 8.
        d.ingest(&FlowRecord {
            input_if: 10 + u32::from(i % 8),
            ..rec([10, 0, 0, i], [203, 0, 113, 200], 17, 1, 1, 0, 500)
        });
    }
    d.close_window(1.0)
}

#[test]
fn tied_outputs_come_out_by_address_whatever_the_seed_and_the_order() {
    let a = tied_window([5, 12, 0, 9, 3, 15, 7, 1, 14, 2, 11, 6, 13, 4, 10, 8].into_iter());
    let b = tied_window((0..16).rev());
    let dsts = |w: &WindowOutcome| w.attacks.iter().map(|x| x.dst).collect::<Vec<_>>();
    let srcs = |w: &WindowOutcome| w.sources.iter().map(|x| x.src).collect::<Vec<_>>();
    let ifs = |w: &WindowOutcome| w.spoofing.iter().map(|x| (x.exporter, x.input_if)).collect::<Vec<_>>();
    assert_eq!(dsts(&a).len(), 16);
    assert_eq!(srcs(&a).len(), 16);
    assert_eq!(ifs(&a).len(), 8);
    assert!(dsts(&a).is_sorted() && srcs(&a).is_sorted() && ifs(&a).is_sorted());
    assert_eq!(dsts(&a), dsts(&b));
    assert_eq!(srcs(&a), srcs(&b));
    assert_eq!(ifs(&a), ifs(&b));
}

/// 40 000 one-packet flows toward one host: 200 reflectors taking turns (UDP from port 123), and
/// every tenth flow ordinary HTTPS from one client. Past its first flows the host's breakdown is a
/// sample; its shares must still be the traffic's, not an alias of the turns.
#[test]
fn a_sampled_breakdown_keeps_the_shares_of_periodic_traffic() {
    let mut d = Detector::new(DetectConfig { host_pps: 10_000.0, ..config() });
    for i in 0..40_000u32 {
        let f = if i % 10 == 9 {
            rec([198, 51, 100, 1], [203, 0, 113, 9], 6, 40000, 443, 0x18, 1)
        } else {
            let r = (i / 10 * 9 + i % 10) % 200;
            rec([100, 64, (r / 256) as u8, (r % 256) as u8], [203, 0, 113, 9], 17, 123, 40000 + (i % 7) as u16, 0, 1)
        };
        d.ingest(&f);
    }
    let out = d.close_window(1.0);
    assert_eq!(out.attacks.len(), 1);
    let a = &out.attacks[0];
    assert_eq!(a.attack.protocol, Some(17));
    assert_eq!(a.attack.src_ports, vec![123]);
    // 40,000 flows: past the exact first 1,024, the breakdown is a sample and says so.
    assert!(a.sampled);
    // 90 % of the packets are the reflection's.
    assert!((a.coverage - 0.9).abs() < 0.02, "coverage {}", a.coverage);
    // Each reflector sent 0.45 % of the packets; a sample that locked onto the turns would show
    // some of them at several times that, and the HTTPS client (10 %) would lead or vanish.
    let (top, share) = a.top_sources[0];
    assert_eq!(top, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), "{:?}", a.top_sources);
    assert!((share - 0.1).abs() < 0.02, "{:?}", a.top_sources);
    for (src, share) in &a.top_sources[1..] {
        assert!(*share < 0.0045 * 2.0, "{src}: {share} ({:?})", a.top_sources);
    }
    // Breakdowns are made from the emptied maps of past windows (two sampled hosts' here), and
    // start exact again.
    for i in 0..4_000u32 {
        let host = if i % 2 == 0 { 9 } else { 10 };
        d.ingest(&rec([100, 64, 1, (i % 250) as u8], [203, 0, 113, host], 17, 123, 40000, 0, 10));
    }
    let out = d.close_window(1.0);
    assert_eq!(out.attacks.iter().filter(|a| a.sampled).count(), 2, "{:?}", out.attacks);
    for i in 0..512u32 {
        let host = if i % 2 == 0 { 20 } else { 21 };
        d.ingest(&rec([100, 64, 1, (i % 250) as u8], [203, 0, 113, host], 17, 123, 40000, 0, 400));
    }
    let out = d.close_window(1.0);
    assert_eq!(out.attacks.len(), 2, "{:?}", out.attacks);
    assert!(out.attacks.iter().all(|a| !a.sampled), "{:?}", out.attacks);
}
