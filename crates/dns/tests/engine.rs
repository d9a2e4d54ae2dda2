//! The engine on decoded events, with governance on a real store: C&C queries become findings
//! against the client address (opted-out subscribers never reach the detector), amplification
//! abuse becomes a `dns.block-fqdn-list` finding awaiting the operator.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::subject::{Actor, SubscriberId};
use mamori_dns::detect::amplification::AmplificationConfig;
use mamori_dns::dnstap::{DnsEvent, Role};
use mamori_dns::engine::{DnsEngine, EngineConfig, SubscriberLookup};
use mamori_dns::reputation::{ListFormat, parse};
use mamori_store::{SqliteStore, StoreOptions};

/// 192.0.2.1 is S-1, 192.0.2.2 is S-2 (opted out), others unknown.
struct Radius;
impl SubscriberLookup for Radius {
    fn subscriber_at(&self, ip: IpAddr, _: Timestamp) -> Option<SubscriberId> {
        match ip.to_string().as_str() {
            "192.0.2.1" => Some(SubscriberId("S-1".into())),
            "192.0.2.2" => Some(SubscriberId("S-2".into())),
            _ => None,
        }
    }
}

fn ev(role: Role, client: &str, qname: &str, qtype: u16, size: Option<u32>) -> DnsEvent {
    DnsEvent {
        role,
        client: Some(client.parse().unwrap()),
        client_port: Some(5000),
        time: Some(Timestamp::now()),
        qname: qname.into(),
        qtype,
        rcode: size.map(|_| 0),
        response_size: size,
    }
}

#[test]
fn cnc_queries_are_findings_against_the_client_and_opted_out_subscribers_never_reach_the_detector() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap());
    let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(Config::default())).unwrap());
    let op = Actor("sato".into());
    for m in [MeasureId::BotsDetectCncQueries, MeasureId::DnsBlockFqdnList] {
        if mamori_core::governance::requires_notice(m) {
            gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &op).unwrap();
        }
        gov.enable_measure(m, &op).unwrap();
    }
    let s2 = SubscriberId("S-2".into());
    gov.opt_out(&s2, MeasureId::BotsDetectCncQueries, "web", &Actor::subscriber(&s2)).unwrap();

    let cfg = EngineConfig {
        amplification: AmplificationConfig { min_large_answers: 5, ..Default::default() },
        ..Default::default()
    };
    let mut e = DnsEngine::new(gov.clone(), Arc::new(WallClock), cfg, Arc::new(Radius), vec![]).unwrap();
    let list = parse(
        "$ORIGIN feed.rpz.\n*.cnc.test CNAME .\ncnc.test CNAME .\n",
        ListFormat::Rpz,
        "jpcert-feed",
        Some("2026-11-01".into()),
    );
    e.add_cnc_list(&list).unwrap();

    e.on_event(&ev(Role::ClientQuery, "192.0.2.9", "www.example.test", 1, None));
    assert_eq!(e.stats.findings, 0);
    // Unknown subscriber: a finding against the address, no proposal (attribution completes it).
    e.on_event(&ev(Role::ClientQuery, "192.0.2.9", "a.cnc.test", 1, None));
    e.on_event(&ev(Role::ClientQuery, "192.0.2.9", "b.cnc.test", 1, None)); // same listed name: cooldown
    assert_eq!((e.stats.findings, e.stats.proposals), (1, 0));
    // Known subscriber: finding and proposal (governance queues the alert).
    e.on_event(&ev(Role::ClientQuery, "192.0.2.1", "cnc.test", 1, None));
    assert_eq!((e.stats.findings, e.stats.proposals), (2, 1), "{:?}", e.stats);
    // Opted out: dropped at the gate.
    e.on_event(&ev(Role::ClientQuery, "192.0.2.2", "cnc.test", 1, None));
    assert_eq!(e.stats.findings, 2);
    assert_eq!(e.stats.cnc_opted_out, 1);
    // Responses are not queries.
    e.on_event(&ev(Role::ClientResponse, "192.0.2.5", "cnc.test", 1, Some(100)));
    assert_eq!(e.stats.findings, 2);

    // Amplification: large ANY answers for one name; without auto-apply, a finding only.
    for _ in 0..10 {
        e.on_event(&ev(Role::ClientResponse, "192.0.2.7", "amp.example.test", 255, Some(3000)));
    }
    assert_eq!((e.stats.findings, e.stats.proposals, e.stats.applied), (3, 1, 0), "{:?}", e.stats);
    assert!(gov.store().verify_ledger(None).is_ok());
}
