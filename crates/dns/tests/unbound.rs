//! With a real Unbound on loopback: dnstap in (unix socket and TCP), and the policy zone out
//! (AXFR + NOTIFY), driven end to end by a random-subdomain attack; then IXFR: Unbound fetches
//! each change incrementally, and a hickory-built client checks the exact difference sequences and
//! the fall-back to the whole zone after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::io::{Read, Write};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use jiff::{SignedDuration, Timestamp};
use mamori_core::actuator::Actuator;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, Proposal};
use mamori_core::subject::{Actor, Target};
use mamori_dns::detect::water_torture::WaterTortureConfig;
use mamori_dns::dnstap::{self, DnsEvent, IngestStats, Role};
use mamori_dns::engine::{DnsEngine, EngineConfig, NoLookup};
use mamori_dns::rpz::{self, PolicyZone, ServeOptions, TransferStats, Zone};
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

fn governance(dir: &std::path::Path) -> Arc<Governance> {
    let store = Arc::new(SqliteStore::open(&dir.join("mamori.sqlite"), StoreOptions::default()).unwrap());
    let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(Config::default())).unwrap());
    gov.enable_measure(MeasureId::DnsBlockFqdnList, &Actor("sato".into())).unwrap();
    gov
}

/// Lists `name` through governance and the zone's actuator; returns the action id.
fn block(gov: &Governance, zone: &PolicyZone, name: &str) -> String {
    let p = Proposal::new(
        MeasureId::DnsBlockFqdnList,
        Target::Fqdn(name.into()),
        Actor("sato".into()),
        serde_json::json!({"test": "ixfr"}),
    );
    let d = gov.propose(p).unwrap();
    zone.apply(&d.authorization.expect("applied without approval")).unwrap();
    d.action.id
}

/// An IXFR over TCP from `serial`, as a secondary asks it (hickory builds and reads the messages):
/// every answer record up to the closing SOA.
fn ixfr_over_tcp(addr: SocketAddr, origin: &str, serial: u32) -> Vec<Record> {
    let origin = Name::from_ascii(origin).unwrap();
    let mut q = Message::new();
    q.set_id(77).add_query(Query::query(origin.clone(), RecordType::IXFR));
    let soa = hickory_proto::rr::rdata::SOA::new(
        Name::from_ascii("localhost.").unwrap(),
        Name::from_ascii("hostmaster.localhost.").unwrap(),
        serial,
        60,
        30,
        86400,
        60,
    );
    q.add_name_server(Record::from_rdata(origin, 60, hickory_proto::rr::RData::SOA(soa)));
    let wire = q.to_vec().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&u16::try_from(wire.len()).unwrap().to_be_bytes()).unwrap();
    s.write_all(&wire).unwrap();
    let mut out: Vec<Record> = Vec::new();
    loop {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).unwrap();
        let m = Message::from_vec(&buf).unwrap();
        assert_eq!(m.id(), 77);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        out.extend(m.answers().iter().cloned());
        let first = out[0].data().as_soa().unwrap().serial();
        // Done when a message ends on the current SOA (the closing one: these transfers are small
        // enough that no message boundary falls elsewhere on it), or on a lone SOA ("current").
        let last = out.last().and_then(|r| r.data().as_soa()).map(|x| x.serial());
        if (out.len() > 1 && last == Some(first)) || (out.len() == 1 && first == serial) {
            return out;
        }
    }
}

/// Records as `SOA serial` or `owner type rdata`, to compare with the expected sequence.
fn show(rs: &[Record]) -> Vec<String> {
    rs.iter()
        .map(|r| match r.data().as_soa() {
            Some(soa) => format!("SOA {}", soa.serial()),
            None => format!("{} {} {}", r.name(), r.record_type(), r.data()),
        })
        .collect()
}

#[test]
fn ixfr_with_an_old_serial_gets_the_exact_differences_and_the_whole_zone_after_a_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let gov = governance(dir.path());
    let serial_file = dir.path().join("rpz-serial");
    let zone =
        PolicyZone::with_serial_file(Zone::new("rpz.mamori.", false, Timestamp::now()).unwrap(), serial_file.clone());
    let opts = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        allow_transfer: vec!["127.0.0.1".parse().unwrap()],
        notify: vec![],
    };
    let (addr, tasks) = rt.block_on(rpz::serve(zone.clone(), opts.clone())).unwrap();

    let a = block(&gov, &zone, "a.example.test");
    let s1 = zone.with(Zone::serial);
    block(&gov, &zone, "b.example.test");
    let rec = gov.lift(&a, &Actor("sato".into()), "test: delisted").unwrap();
    zone.remove(&rec).unwrap();
    let s3 = zone.with(Zone::serial);
    assert_eq!(s3, s1 + 2);

    let got = show(&ixfr_over_tcp(addr, "rpz.mamori.", s1));
    let want = [
        format!("SOA {s3}"),
        format!("SOA {s1}"),
        format!("SOA {}", s1 + 1),
        "b.example.test.rpz.mamori. CNAME .".into(),
        "*.b.example.test.rpz.mamori. CNAME .".into(),
        format!("SOA {}", s1 + 1),
        "a.example.test.rpz.mamori. CNAME .".into(),
        "*.a.example.test.rpz.mamori. CNAME .".into(),
        format!("SOA {s3}"),
        format!("SOA {s3}"),
    ];
    assert_eq!(got, want);
    assert_eq!(TransferStats::get(&zone.transfers.ixfr_incremental), 1);
    // From the current serial: the SOA alone.
    assert_eq!(show(&ixfr_over_tcp(addr, "rpz.mamori.", s3)), [format!("SOA {s3}")]);
    assert_eq!(TransferStats::get(&zone.transfers.ixfr_current), 1);
    for t in tasks {
        t.abort();
    }

    // A restart within the same second: the journal is gone, and the clock-based start serial
    // would be behind s3 (three changes in under a second); the serial file moves it past s3. An
    // IXFR from s1 gets the whole zone: SOA, NS, b's records (as `mamori serve` does at start, the
    // zone is rebuilt from the actions in force), SOA.
    let again =
        PolicyZone::with_serial_file(Zone::new("rpz.mamori.", false, Timestamp::now()).unwrap(), serial_file.clone());
    let in_force = gov.reauthorize_applied().unwrap();
    again.reconcile(&in_force.iter().map(|(_, a)| a).collect::<Vec<_>>()).unwrap();
    let (addr, tasks) = rt.block_on(rpz::serve(again.clone(), opts)).unwrap();
    let s_new = again.with(Zone::serial);
    assert!(s_new > s3, "{s_new} {s3}");
    let got = show(&ixfr_over_tcp(addr, "rpz.mamori.", s1));
    assert_eq!(
        got,
        [
            format!("SOA {s_new}"),
            "rpz.mamori. NS localhost.".into(),
            "b.example.test.rpz.mamori. CNAME .".into(),
            "*.b.example.test.rpz.mamori. CNAME .".into(),
            format!("SOA {s_new}"),
        ]
    );
    assert_eq!(TransferStats::get(&again.transfers.ixfr_full), 1);
    assert_eq!(std::fs::read_to_string(&serial_file).unwrap().trim(), s_new.to_string());
    assert_eq!(TransferStats::get(&again.transfers.ixfr_incremental), 0);
    for t in tasks {
        t.abort();
    }
}

#[test]
fn unbound_follows_changes_by_ixfr() {
    let Some(bin) = support::unbound_binary() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let gov = governance(dir.path());

    let unbound_port = support::free_port();
    let zone = PolicyZone::new(Zone::new("rpz.mamori.", false, Timestamp::now()).unwrap());
    let bad = block(&gov, &zone, "bad.example.test");
    let (rpz_addr, tasks) = rt
        .block_on(rpz::serve(
            zone.clone(),
            ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                allow_transfer: vec!["127.0.0.1".parse().unwrap()],
                notify: vec![([127, 0, 0, 1], unbound_port).into()],
            },
        ))
        .unwrap();
    let opts = UnboundOptions {
        port: Some(unbound_port),
        dnstap: None,
        rpz: Some(("rpz.mamori.".into(), rpz_addr)),
        local_zones: vec![],
        local_data: vec![],
        auth_zones: auth_zones(),
    };
    let unbound = Unbound::start(&bin, dir.path(), opts);
    let rcode = |name: &str| query(unbound.addr, name, RecordType::A).map(|r| r.response_code());
    let refused =
        wait_for(Duration::from_secs(8), || (rcode("bad.example.test.")? == ResponseCode::NXDomain).then_some(()));
    assert!(refused.is_some(), "first load\n{}", unbound.log());
    let t = &zone.transfers;
    let full_at_start = TransferStats::get(&t.axfr) + TransferStats::get(&t.ixfr_full);
    assert!(full_at_start >= 1, "{t:?}");
    assert_eq!(rcode("www.victim.test."), Some(ResponseCode::NoError));

    // A new entry: NOTIFY → IXFR with Unbound's serial → the name is refused.
    block(&gov, &zone, "victim.test");
    let refused =
        wait_for(Duration::from_secs(8), || (rcode("www.victim.test.")? == ResponseCode::NXDomain).then_some(()));
    assert!(refused.is_some(), "not refused after the change\n{t:?}\n{}", unbound.log());
    assert!(TransferStats::get(&t.ixfr_incremental) >= 1, "{t:?}\n{}", unbound.log());

    // Delisted: the next IXFR removes it, and Unbound answers the name again.
    let rec = gov.lift(&bad, &Actor("sato".into()), "test: delisted").unwrap();
    zone.remove(&rec).unwrap();
    let answered = wait_for(Duration::from_secs(8), || {
        let r = query(unbound.addr, "bad.example.test.", RecordType::A)?;
        (r.response_code() == ResponseCode::NoError && !r.answers().is_empty()).then_some(())
    });
    assert!(answered.is_some(), "still refused after delisting\n{t:?}\n{}", unbound.log());
    assert_eq!(rcode("www.victim.test."), Some(ResponseCode::NXDomain));
    assert!(TransferStats::get(&t.ixfr_incremental) >= 2, "{t:?}");
    // No whole-zone transfer after the first load: both changes went incrementally.
    assert_eq!(TransferStats::get(&t.axfr) + TransferStats::get(&t.ixfr_full), full_at_start, "{t:?}");
    drop(unbound);
    for t in tasks {
        t.abort();
    }
}
