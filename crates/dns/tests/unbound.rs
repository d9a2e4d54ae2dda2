//! With a real Unbound on loopback: dnstap in (unix socket and TCP), and the policy zone out
//! (AXFR + NOTIFY), driven end to end by a random-subdomain attack.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use jiff::{SignedDuration, Timestamp};
use mamori_core::actuator::Actuator;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::subject::Actor;
use mamori_dns::detect::water_torture::WaterTortureConfig;
use mamori_dns::dnstap::{self, DnsEvent, IngestStats, Role};
use mamori_dns::engine::{DnsEngine, EngineConfig, NoLookup};
use mamori_dns::rpz::{self, PolicyZone, ServeOptions, Zone};
use mamori_store::{SqliteStore, StoreOptions};
use support::{Dnstap, Unbound, UnboundOptions, query, wait_for};
use tokio::sync::mpsc;

/// The test names, served by Unbound to its own iterator (so response policies apply).
fn auth_zones() -> Vec<(String, String)> {
    let zone = |name: &str, records: &str| {
        format!(
            "$ORIGIN {name}\n$TTL 1\n@ SOA ns.{name} admin.{name} 1 3600 600 86400 1\n@ NS ns.{name}\nns A 127.0.0.1\n{records}"
        )
    };
    vec![
        ("example.test.".into(), zone("example.test.", "www A 192.0.2.1\nbad A 192.0.2.66\n")),
        ("victim.test.".into(), zone("victim.test.", "www A 192.0.2.7\n")),
    ]
}

fn drain(rx: &mut mpsc::Receiver<DnsEvent>, into: &mut Vec<DnsEvent>) {
    while let Ok(e) = rx.try_recv() {
        into.push(e);
    }
}

fn check_dnstap(unbound: &Unbound, rx: &mut mpsc::Receiver<DnsEvent>, stats: &IngestStats) {
    assert_eq!(query(unbound.addr, "www.example.test.", RecordType::A).unwrap().response_code(), ResponseCode::NoError);
    assert_eq!(
        query(unbound.addr, "nope.example.test.", RecordType::TXT).unwrap().response_code(),
        ResponseCode::NXDomain
    );
    let mut got = Vec::new();
    let ok = wait_for(Duration::from_secs(10), || {
        drain(rx, &mut got);
        (got.iter().filter(|e| e.qname.ends_with("example.test")).count() >= 4).then_some(())
    });
    assert!(ok.is_some(), "events: {got:?}\nstats: {stats:?}\n{}", unbound.log());
    let q = got.iter().find(|e| e.role == Role::ClientQuery && e.qname == "www.example.test").unwrap();
    assert_eq!(q.client, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(q.qtype, 1);
    let r = got.iter().find(|e| e.role == Role::ClientResponse && e.qname == "nope.example.test").unwrap();
    assert_eq!(r.rcode, Some(3));
    assert_eq!(r.qtype, 16);
    assert!(r.response_size.unwrap() > 12);
    assert_eq!(IngestStats::get(&stats.malformed), 0);
}

#[test]
fn dnstap_from_unbound_over_unix_socket_and_tcp() {
    let Some(bin) = support::unbound_binary() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Unix socket.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dnstap.sock");
    let (tx, mut rx) = mpsc::channel(10_000);
    let stats = Arc::new(IngestStats::default());
    let _guard = rt.enter();
    let h = dnstap::spawn_unix(&sock, tx, stats.clone()).unwrap();
    let opts = UnboundOptions {
        port: None,
        dnstap: Some(Dnstap::Unix(sock)),
        rpz: None,
        local_zones: vec![],
        local_data: vec![],
        auth_zones: auth_zones(),
    };
    let unbound = Unbound::start(&bin, dir.path(), opts);
    check_dnstap(&unbound, &mut rx, &stats);
    drop(unbound);
    h.abort();

    // TCP.
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(10_000);
    let stats = Arc::new(IngestStats::default());
    let (addr, h) = rt.block_on(dnstap::spawn_tcp("127.0.0.1:0".parse().unwrap(), tx, stats.clone())).unwrap();
    let opts = UnboundOptions {
        port: None,
        dnstap: Some(Dnstap::Tcp(addr)),
        rpz: None,
        local_zones: vec![],
        local_data: vec![],
        auth_zones: auth_zones(),
    };
    let unbound = Unbound::start(&bin, dir.path(), opts);
    check_dnstap(&unbound, &mut rx, &stats);
    assert_eq!(IngestStats::get(&stats.connections), 1);
    drop(unbound);
    h.abort();
}

#[test]
fn random_subdomain_attack_is_listed_in_rpz_refused_by_unbound_then_answered_after_expiry() {
    let Some(bin) = support::unbound_binary() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();

    // Governance on a real store, with the measure enabled.
    let store = Arc::new(SqliteStore::open(&dir.path().join("mamori.sqlite"), StoreOptions::default()).unwrap());
    let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(Config::default())).unwrap());
    gov.enable_measure(MeasureId::DnsBlockFqdnList, &Actor("sato".into())).unwrap();

    // The policy zone, served on loopback, notifying Unbound's (reserved) port.
    let unbound_port = support::free_port();
    let zone = PolicyZone::new(Zone::new("rpz.mamori.", false, Timestamp::now()).unwrap());
    let notify: SocketAddr = ([127, 0, 0, 1], unbound_port).into();
    let (rpz_addr, tasks) = rt
        .block_on(rpz::serve(
            zone.clone(),
            ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                allow_transfer: vec!["127.0.0.1".parse().unwrap()],
                notify: vec![notify],
            },
        ))
        .unwrap();

    let sock = dir.path().join("dnstap.sock");
    let (tx, mut rx) = mpsc::channel(100_000);
    let stats = Arc::new(IngestStats::default());
    let h = dnstap::spawn_unix(&sock, tx, stats.clone()).unwrap();
    let opts = UnboundOptions {
        port: Some(unbound_port),
        dnstap: Some(Dnstap::Unix(sock)),
        rpz: Some(("rpz.mamori.".into(), rpz_addr)),
        local_zones: vec![],
        local_data: vec![],
        auth_zones: auth_zones(),
    };
    let unbound = Unbound::start(&bin, dir.path(), opts);
    assert_eq!(query(unbound.addr, "www.victim.test.", RecordType::A).unwrap().response_code(), ResponseCode::NoError);

    // The engine reads dnstap and proposes list entries itself.
    let cfg = EngineConfig {
        auto_apply: true,
        block_for: SignedDuration::from_secs(4),
        water_torture: WaterTortureConfig { min_new_labels: 100, ..Default::default() },
        ..Default::default()
    };
    let actuators: Vec<Arc<dyn Actuator>> = vec![zone.clone()];
    let mut engine = DnsEngine::new(gov.clone(), Arc::new(WallClock), cfg, Arc::new(NoLookup), actuators).unwrap();

    // The attack: random labels under victim.test, all NXDOMAIN.
    for i in 0..300 {
        query(unbound.addr, &format!("r{i:06x}q.victim.test."), RecordType::A);
    }
    let mut events = Vec::new();
    wait_for(Duration::from_secs(10), || {
        drain(&mut rx, &mut events);
        (events.len() >= 600).then_some(())
    })
    .expect("dnstap events");
    for e in &events {
        engine.on_event(e);
    }
    assert_eq!(engine.stats.findings, 1, "{:?}", engine.stats);
    assert_eq!(engine.stats.applied, 1, "{:?}", engine.stats);
    assert!(zone.names().matches("www.victim.test"));
    let action_id = zone.with(|z| z.entries().next().unwrap().action_id.clone());

    // NOTIFY → Unbound transfers the zone → the name is refused.
    let refused = wait_for(Duration::from_secs(8), || {
        let r = query(unbound.addr, "www.victim.test.", RecordType::A)?;
        (r.response_code() == ResponseCode::NXDomain).then_some(())
    });
    assert!(refused.is_some(), "not refused; zone:\n{}\n{}", zone.with(Zone::to_text), unbound.log());
    assert_eq!(query(unbound.addr, "www.example.test.", RecordType::A).unwrap().response_code(), ResponseCode::NoError);

    // The entry expires: governance's tick ends the action, the actuator removes it, Unbound is
    // notified and answers again.
    std::thread::sleep(Duration::from_secs(4));
    let out = gov.tick().unwrap();
    assert_eq!(out.expired.len(), 1);
    for a in &out.expired {
        zone.remove(a).unwrap();
    }
    let answered = wait_for(Duration::from_secs(8), || {
        let r = query(unbound.addr, "www.victim.test.", RecordType::A)?;
        (r.response_code() == ResponseCode::NoError && !r.answers().is_empty()).then_some(())
    });
    assert!(answered.is_some(), "still refused after expiry\n{}", unbound.log());

    // Every step is in the ledger.
    let action = gov.store().action(&action_id).unwrap().unwrap();
    assert_eq!(action.state, mamori_core::action::ActionState::Expired, "{action:?}");
    assert!(gov.store().verify_ledger(None).is_ok());
    drop(unbound);
    h.abort();
    for t in tasks {
        t.abort();
    }
}
