//! The inline filter in front of a real Unbound: FQDN list, C&C blocking with an opted-out
//! subscriber's exception, the malware-site warning with "continue anyway", over UDP and TCP;
//! and with the answer cache: TTLs honoured, and no subscriber's exception leaking to another.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use jiff::Timestamp;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::subject::{Actor, SubscriberId};
use mamori_dns::engine::SubscriberLookup;
use mamori_dns::filter::{self, Filter, warn_page};
use mamori_dns::names::{Match, SuffixMap};
use mamori_dns::rpz::PolicyZone;
use mamori_dns::rpz::zone::{Entry, Zone};
use mamori_store::{SqliteStore, StoreOptions};
use support::{Unbound, UnboundOptions, query};

/// 127.0.0.1 is subscriber S-1 (what RADIUS attribution would say).
struct OneSubscriber;
impl SubscriberLookup for OneSubscriber {
    fn subscriber_at(&self, _: IpAddr, _: Timestamp) -> Option<SubscriberId> {
        Some(SubscriberId("S-1".into()))
    }
}

const ZONE: &str = "$ORIGIN example.test.\n$TTL 1\n@ SOA ns admin 1 3600 600 86400 1\n@ NS ns\nns A 127.0.0.1\n\
                    www A 192.0.2.1\nblocked A 192.0.2.2\nc2 A 192.0.2.3\nmalware A 192.0.2.4\n";

/// A real Unbound answering `zone_text` (the zone `example.test.`) from an auth zone, and
/// governance on a fresh store in `dir`.
fn unbound_and_governance(bin: &std::path::Path, dir: &std::path::Path, zone_text: &str) -> (Unbound, Arc<Governance>) {
    let opts = UnboundOptions {
        port: None,
        dnstap: None,
        rpz: None,
        local_zones: vec![],
        local_data: vec![],
        auth_zones: vec![("example.test.".into(), zone_text.into())],
    };
    let unbound = Unbound::start(bin, dir, opts);
    let store = Arc::new(SqliteStore::open(&dir.join("m.sqlite"), StoreOptions::default()).unwrap());
    let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(Config::default())).unwrap());
    (unbound, gov)
}

fn tcp_query(server: SocketAddr, name: &str) -> Message {
    let mut m = Message::new();
    m.set_id(99).set_recursion_desired(true).add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let q = m.to_vec().unwrap();
    let mut s = TcpStream::connect(server).unwrap();
    s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&q).unwrap();
    let mut l = [0u8; 2];
    s.read_exact(&mut l).unwrap();
    let mut a = vec![0u8; u16::from_be_bytes(l) as usize];
    s.read_exact(&mut a).unwrap();
    Message::from_vec(&a).unwrap()
}

fn first_a(m: &Message) -> Option<std::net::Ipv4Addr> {
    m.answers().iter().find_map(|r| match r.data() {
        RData::A(a) => Some(a.0),
        _ => None,
    })
}

#[test]
fn filter_blocks_lists_honours_opt_out_and_warns_with_continue() {
    let Some(bin) = support::unbound_binary() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let (unbound, gov) = unbound_and_governance(&bin, dir.path(), ZONE);
    let f = Arc::new(
        Filter::new(&gov, Arc::new(WallClock), None, Arc::new(OneSubscriber), "127.0.0.1".parse().unwrap()).unwrap(),
    );
    let mut l = SuffixMap::new();
    l.insert("blocked.example.test", Match::Subtree, ());
    f.set_static_list(l);
    let mut c = SuffixMap::new();
    c.insert("c2.example.test", Match::Subtree, ());
    f.set_cnc(c);
    let mut m = SuffixMap::new();
    m.insert("malware.example.test", Match::Exact, ());
    f.set_malware(m);
    let (addr, tasks) = rt.block_on(filter::serve(f.clone(), "127.0.0.1:0".parse().unwrap(), unbound.addr)).unwrap();
    let (page, page_task) = rt.block_on(warn_page::serve(f.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();

    // Forwarded and relayed, over UDP and TCP.
    let r = query(addr, "www.example.test.", RecordType::A).unwrap();
    assert_eq!(first_a(&r), Some("192.0.2.1".parse().unwrap()));
    assert_eq!(first_a(&tcp_query(addr, "www.example.test.")), Some("192.0.2.1".parse().unwrap()));
    // The FQDN list.
    assert_eq!(query(addr, "x.blocked.example.test.", RecordType::A).unwrap().response_code(), ResponseCode::NXDomain);
    assert_eq!(tcp_query(addr, "blocked.example.test.").response_code(), ResponseCode::NXDomain);
    // C&C: blocked, then forwarded once the subscriber opts out.
    assert_eq!(query(addr, "c2.example.test.", RecordType::A).unwrap().response_code(), ResponseCode::NXDomain);
    let sub = SubscriberId("S-1".into());
    let by = Actor::subscriber(&sub);
    gov.record_notice(MeasureId::ReputationBlockCnc, "https://carrier.example/terms", "2026-04", None, &by).ok();
    gov.opt_out(&sub, MeasureId::ReputationBlockCnc, "web", &by).unwrap();
    let r = query(addr, "c2.example.test.", RecordType::A).unwrap();
    assert_eq!(first_a(&r), Some("192.0.2.3".parse().unwrap()), "{r:?}");
    // Malware site: answered with the warning page's address; "continue anyway" is remembered.
    let r = query(addr, "malware.example.test.", RecordType::A).unwrap();
    assert_eq!(first_a(&r), Some("127.0.0.1".parse().unwrap()));
    let http = |path: &str| {
        let mut s = TcpStream::connect(page).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: malware.example.test\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let warning = http("/");
    assert!(warning.starts_with("HTTP/1.1 200") && warning.contains("Continue anyway"), "{warning}");
    let cont = http("/.mamori/continue");
    assert!(cont.contains("303 See Other") && cont.contains("Location: http://malware.example.test/"), "{cont}");
    let r = query(addr, "malware.example.test.", RecordType::A).unwrap();
    assert_eq!(first_a(&r), Some("192.0.2.4".parse().unwrap()));

    let s = &f.stats;
    assert!(s.forwarded.load(std::sync::atomic::Ordering::Relaxed) >= 4);
    for t in tasks {
        t.abort();
    }
    page_task.abort();
    drop(unbound);
}

/// 127.0.0.1 is subscriber S-1, 127.0.0.2 is S-2.
struct TwoSubscribers;
impl SubscriberLookup for TwoSubscribers {
    fn subscriber_at(&self, ip: IpAddr, _: Timestamp) -> Option<SubscriberId> {
        let n = match ip {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(_) => return None,
        };
        Some(SubscriberId(format!("S-{n}")))
    }
}

/// One UDP query from `from` (a loopback address).
fn query_from(from: &str, server: SocketAddr, name: &str) -> Message {
    let sock = UdpSocket::bind((from, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut m = Message::new();
    m.set_id(4321).set_recursion_desired(true).add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    sock.send_to(&m.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let r = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(r.id(), 4321);
    r
}

#[test]
fn answer_cache_honours_ttls_and_never_leaks_an_exception_to_another_subscriber() {
    let Some(bin) = support::unbound_binary() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let text = "$ORIGIN example.test.\n$TTL 60\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n\
                www A 192.0.2.1\nshort 1 A 192.0.2.9\nc2 A 192.0.2.3\nmalware A 192.0.2.4\n";
    let (unbound, gov) = unbound_and_governance(&bin, dir.path(), text);
    let f = Arc::new(
        Filter::new(&gov, Arc::new(WallClock), None, Arc::new(TwoSubscribers), "127.0.0.1".parse().unwrap()).unwrap(),
    );
    f.enable_cache(1000);
    let mut c = SuffixMap::new();
    c.insert("c2.example.test", Match::Subtree, ());
    f.set_cnc(c);
    let mut m = SuffixMap::new();
    m.insert("malware.example.test", Match::Exact, ());
    f.set_malware(m);
    let (addr, tasks) = rt.block_on(filter::serve(f.clone(), "127.0.0.1:0".parse().unwrap(), unbound.addr)).unwrap();
    let cached = || f.stats.cached.load(Ordering::Relaxed);

    // A forwarded answer is kept, served again with its TTL aged, and not past its TTL.
    let first = query_from("127.0.0.1", addr, "www.example.test.");
    assert_eq!(first_a(&first), Some("192.0.2.1".parse().unwrap()));
    assert_eq!(cached(), 0);
    std::thread::sleep(Duration::from_millis(1100));
    let again = query_from("127.0.0.1", addr, "www.example.test.");
    assert_eq!(cached(), 1);
    assert_eq!(first_a(&again), Some("192.0.2.1".parse().unwrap()));
    assert!(again.answers()[0].ttl() < first.answers()[0].ttl(), "{again:?}");
    query_from("127.0.0.1", addr, "short.example.test.");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(first_a(&query_from("127.0.0.1", addr, "short.example.test.")), Some("192.0.2.9".parse().unwrap()));
    assert_eq!(cached(), 1, "a 1 s answer is not served after 1 s");

    // C&C: S-1 opts out, so its query is forwarded and the answer cached; S-2 is still blocked,
    // first after S-1's answer was cached, and S-2's block is not served to S-1 either.
    let s1 = SubscriberId("S-1".into());
    let by = Actor::subscriber(&s1);
    gov.record_notice(MeasureId::ReputationBlockCnc, "https://carrier.example/terms", "2026-04", None, &by).ok();
    gov.opt_out(&s1, MeasureId::ReputationBlockCnc, "web", &by).unwrap();
    assert_eq!(first_a(&query_from("127.0.0.1", addr, "c2.example.test.")), Some("192.0.2.3".parse().unwrap()));
    let r = query_from("127.0.0.2", addr, "c2.example.test.");
    assert_eq!(r.response_code(), ResponseCode::NXDomain, "{r:?}");
    assert!(r.answers().is_empty());
    let r = query_from("127.0.0.1", addr, "c2.example.test.");
    assert_eq!(first_a(&r), Some("192.0.2.3".parse().unwrap()), "{r:?}");
    assert_eq!(cached(), 2, "S-1's second query came from the cache");

    // Malware site: S-1 continues anyway (forwarded, cached); S-2 still gets the warning.
    f.continue_anyway("127.0.0.1".parse().unwrap(), "malware.example.test");
    assert_eq!(first_a(&query_from("127.0.0.1", addr, "malware.example.test.")), Some("192.0.2.4".parse().unwrap()));
    assert_eq!(first_a(&query_from("127.0.0.2", addr, "malware.example.test.")), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(first_a(&query_from("127.0.0.1", addr, "malware.example.test.")), Some("192.0.2.4".parse().unwrap()));
    assert_eq!(first_a(&query_from("127.0.0.2", addr, "malware.example.test.")), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(cached(), 3);
    for t in tasks {
        t.abort();
    }
    drop(unbound);
}

/// The cache's memo of unlisted names (answers served before any list is probed) is only good
/// for the lists it was made under: a name cached as allowed and then listed (static list, C&C,
/// malware) is blocked or warned on the next query, and once unlisted again (or its policy-zone
/// entry expired) is served from the cache again.
#[test]
fn cached_answers_follow_every_list_change() {
    let Some(bin) = support::unbound_binary() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let text = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n\
                www A 192.0.2.1\n";
    let (unbound, gov) = unbound_and_governance(&bin, dir.path(), text);
    // The policy zone lists the name until its entry expires.
    let mut z = Zone::new("rpz.mamori.", false, Timestamp::now()).unwrap();
    let expires = Timestamp::now() + jiff::SignedDuration::from_millis(1500);
    let entry =
        Entry { name: "www.example.test".into(), subtree: true, expires: Some(expires), action_id: "A-1".into() };
    assert!(z.insert(entry).unwrap());
    let zone = PolicyZone::new(z);
    let f = Arc::new(
        Filter::new(
            &gov,
            Arc::new(WallClock),
            Some(zone.clone()),
            Arc::new(TwoSubscribers),
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap(),
    );
    f.enable_cache(1000);
    let (addr, tasks) = rt.block_on(filter::serve(f.clone(), "127.0.0.1:0".parse().unwrap(), unbound.addr)).unwrap();
    let cached = || f.stats.cached.load(Ordering::Relaxed);
    let www = |from: &str| query_from(from, addr, "www.example.test.");
    let answered = Some("192.0.2.1".parse().unwrap());
    let nxdomain = |r: Message| r.response_code() == ResponseCode::NXDomain && r.answers().is_empty();

    assert!(nxdomain(www("127.0.0.1")), "listed in the policy zone");
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(zone.purge_expired(Timestamp::now()).len(), 1);
    assert_eq!(first_a(&www("127.0.0.1")), answered, "expired: forwarded");
    assert_eq!(first_a(&www("127.0.0.1")), answered);
    assert_eq!(cached(), 1, "then answered from the cache");

    // Static FQDN list: listed after being cached as allowed, then unlisted again.
    let mut l = SuffixMap::new();
    l.insert("example.test", Match::Subtree, ());
    f.set_static_list(l);
    assert!(nxdomain(www("127.0.0.1")), "cached as allowed, then listed: blocked");
    assert!(nxdomain(www("127.0.0.2")));
    f.set_static_list(SuffixMap::new());
    assert_eq!(first_a(&www("127.0.0.1")), answered, "unlisted: the cached answer again");
    assert_eq!(first_a(&www("127.0.0.2")), answered);
    assert_eq!(cached(), 3);

    // C&C list (no opt-out here): blocked for both subscribers, then served again.
    let mut c = SuffixMap::new();
    c.insert("www.example.test", Match::Exact, ());
    f.set_cnc(c);
    assert!(nxdomain(www("127.0.0.2")), "cached as allowed, then a C&C name: blocked");
    assert!(nxdomain(www("127.0.0.1")));
    f.set_cnc(SuffixMap::new());
    assert_eq!(first_a(&www("127.0.0.2")), answered);
    assert_eq!(cached(), 4);

    // Malware list: the warning page, then the cached answer again.
    let mut m = SuffixMap::new();
    m.insert("www.example.test", Match::Exact, ());
    f.set_malware(m);
    assert_eq!(first_a(&www("127.0.0.2")), Some("127.0.0.1".parse().unwrap()), "cached as allowed, then warned");
    f.set_malware(SuffixMap::new());
    assert_eq!(first_a(&www("127.0.0.2")), answered);
    assert_eq!(first_a(&www("127.0.0.1")), answered);
    assert_eq!(cached(), 6);
    assert_eq!(f.stats.blocked_list.load(Ordering::Relaxed), 3);
    assert_eq!(f.stats.blocked_cnc.load(Ordering::Relaxed), 2);
    assert_eq!(f.stats.warned.load(Ordering::Relaxed), 1);
    for t in tasks {
        t.abort();
    }
    drop(unbound);
}

/// With busy polling (and one UDP worker), the UDP threads answer as without: a forwarded query (the relay thread
/// polling the resolver's socket), a cached one (the receiving thread), a blocked one, and a
/// query after a pause longer than the polling budget (the threads went back to blocking).
#[test]
fn busy_polling_answers_as_blocking_does() {
    let Some(bin) = support::unbound_binary() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let text = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n\
                www A 192.0.2.1\nmail A 192.0.2.2\n";
    let (unbound, gov) = unbound_and_governance(&bin, dir.path(), text);
    let f = Arc::new(
        Filter::new(&gov, Arc::new(WallClock), None, Arc::new(TwoSubscribers), "127.0.0.1".parse().unwrap()).unwrap(),
    );
    f.enable_cache(1000);
    f.set_busy_poll(Duration::from_micros(500));
    f.set_udp_workers(1);
    let mut blocked = SuffixMap::new();
    blocked.insert("blocked.example.test", Match::Subtree, ());
    f.set_static_list(blocked);
    let (addr, tasks) = rt.block_on(filter::serve(f.clone(), "127.0.0.1:0".parse().unwrap(), unbound.addr)).unwrap();

    assert_eq!(first_a(&query_from("127.0.0.1", addr, "www.example.test.")), Some("192.0.2.1".parse().unwrap()));
    assert_eq!(first_a(&query_from("127.0.0.1", addr, "www.example.test.")), Some("192.0.2.1".parse().unwrap()));
    assert_eq!(f.stats.cached.load(Ordering::Relaxed), 1, "the second query came from the cache");
    let r = query_from("127.0.0.2", addr, "x.blocked.example.test.");
    assert_eq!(r.response_code(), ResponseCode::NXDomain, "{r:?}");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(first_a(&query_from("127.0.0.1", addr, "mail.example.test.")), Some("192.0.2.2".parse().unwrap()));
    for t in tasks {
        t.abort();
    }
    drop(unbound);
}
