//! The inline filter: mamori as a DNS front on UDP and TCP, forwarding to the carrier's resolver.
//!
//! Per query it reads the question only (hickory's header and question decoders), then:
//! - a name on the FQDN list (`dns.block-fqdn-list`: the policy zone's authorized entries and any
//!   static list) is answered NXDOMAIN;
//! - a C&C name (`reputation.block-cnc`) is answered NXDOMAIN, unless the subscriber opted out
//!   (the view gate drops them, so their query is forwarded untouched);
//! - a malware site (`reputation.warn-malware-site`) is answered with mamori's warning-page
//!   address, unless the subscriber opted out or chose "continue anyway" for that site
//!   ([`warn_page`]);
//! - everything else is forwarded with a fresh id and the answer relayed back.
//!
//! List lookups are hash probes per label ([`SuffixMap`]), whatever the list's size.

pub mod warn_page;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use jiff::Timestamp;
use mamori_core::governance::Governance;
use mamori_core::view::{Admission, ViewError, ViewGate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::dnstap::decode::dns_question;
use crate::engine::SubscriberLookup;
use crate::names::SuffixMap;
use crate::rpz::PolicyZone;
use crate::views::{BlockCnc, FilterName, FilterQuery, WarnSite};

/// What the filter does with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward to the resolver.
    Forward,
    /// Answer NXDOMAIN (FQDN list or C&C).
    Block,
    /// Answer with the warning page's address.
    Warn,
}

/// Counters.
#[derive(Debug, Default)]
pub struct FilterStats {
    /// Queries received.
    pub queries: AtomicU64,
    /// Forwarded.
    pub forwarded: AtomicU64,
    /// Blocked by the FQDN list.
    pub blocked_list: AtomicU64,
    /// Blocked as C&C.
    pub blocked_cnc: AtomicU64,
    /// Answered with the warning page.
    pub warned: AtomicU64,
    /// Not parseable (dropped).
    pub malformed: AtomicU64,
    /// Upstream answers that arrived too late or unknown.
    pub stray_answers: AtomicU64,
}

/// The lists and rules the filter applies.
pub struct Filter {
    zone: Option<Arc<PolicyZone>>,
    static_list: RwLock<Arc<SuffixMap<()>>>,
    cnc: RwLock<Arc<SuffixMap<()>>>,
    malware: RwLock<Arc<SuffixMap<()>>>,
    cnc_gate: ViewGate<FilterName<BlockCnc>>,
    warn_gate: ViewGate<FilterName<WarnSite>>,
    lookup: Arc<dyn SubscriberLookup>,
    warn_v4: std::net::Ipv4Addr,
    continued: Mutex<HashSet<(String, String)>>,
    /// Counters.
    pub stats: FilterStats,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl Filter {
    /// A filter applying the policy zone's entries (if any), answering warnings with `warn_v4`.
    pub fn new(
        gov: &Governance,
        clock: Arc<dyn mamori_core::clock::Clock>,
        zone: Option<Arc<PolicyZone>>,
        lookup: Arc<dyn SubscriberLookup>,
        warn_v4: std::net::Ipv4Addr,
    ) -> Result<Self, ViewError> {
        Ok(Filter {
            zone,
            static_list: RwLock::default(),
            cnc: RwLock::default(),
            malware: RwLock::default(),
            cnc_gate: ViewGate::open(gov, clock.clone())?,
            warn_gate: ViewGate::open(gov, clock)?,
            lookup,
            warn_v4,
            continued: Mutex::default(),
            stats: FilterStats::default(),
        })
    }

    /// Replaces the static FQDN list (e.g. a large operator list under `dns.block-fqdn-list`).
    pub fn set_static_list(&self, l: SuffixMap<()>) {
        if let Ok(mut w) = self.static_list.write() {
            *w = Arc::new(l);
        }
    }

    /// Replaces the C&C list.
    pub fn set_cnc(&self, l: SuffixMap<()>) {
        if let Ok(mut w) = self.cnc.write() {
            *w = Arc::new(l);
        }
    }

    /// Replaces the malware-site list.
    pub fn set_malware(&self, l: SuffixMap<()>) {
        if let Ok(mut w) = self.malware.write() {
            *w = Arc::new(l);
        }
    }

    fn client_key(&self, client: IpAddr) -> String {
        match self.lookup.subscriber_at(client, Timestamp::now()) {
            Some(s) => format!("subscriber:{s}"),
            None => format!("ip:{client}"),
        }
    }

    /// Remembers that this client chose to continue to `site`.
    pub fn continue_anyway(&self, client: IpAddr, site: &str) {
        let key = (self.client_key(client), crate::names::normalize(site));
        if let Ok(mut c) = self.continued.lock() {
            c.insert(key);
        }
    }

    /// The verdict for a name from a client.
    pub fn decide(&self, qname: &str, client: IpAddr) -> Verdict {
        let listed =
            |l: &RwLock<Arc<SuffixMap<()>>>| l.read().map(|m| !m.is_empty() && m.matches(qname)).unwrap_or(false);
        if listed(&self.static_list) || self.zone.as_ref().is_some_and(|z| z.names().matches(qname)) {
            self.stats.blocked_list.fetch_add(1, Ordering::Relaxed);
            return Verdict::Block;
        }
        let cnc = listed(&self.cnc);
        let malware = !cnc && listed(&self.malware);
        if !cnc && !malware {
            return Verdict::Forward;
        }
        let rec =
            FilterQuery { qname: qname.to_owned(), subscriber: self.lookup.subscriber_at(client, Timestamp::now()) };
        if cnc {
            if let Admission::Admitted(_) = self.cnc_gate.admit(&rec) {
                self.stats.blocked_cnc.fetch_add(1, Ordering::Relaxed);
                return Verdict::Block;
            }
            return Verdict::Forward;
        }
        if let Admission::Admitted(v) = self.warn_gate.admit(&rec) {
            let key = (self.client_key(client), v.qname);
            if self.continued.lock().map(|c| c.contains(&key)).unwrap_or(false) {
                return Verdict::Forward;
            }
            self.stats.warned.fetch_add(1, Ordering::Relaxed);
            return Verdict::Warn;
        }
        Verdict::Forward
    }

    /// The answer to a query that isn't forwarded.
    pub fn local_answer(&self, query: &[u8], verdict: Verdict) -> Option<Vec<u8>> {
        let q = Message::from_vec(query).ok()?;
        let mut r = Message::new();
        r.set_id(q.id())
            .set_message_type(MessageType::Response)
            .set_op_code(q.op_code())
            .set_recursion_desired(q.recursion_desired())
            .set_recursion_available(true);
        let question = q.queries().first()?.clone();
        r.add_query(question.clone());
        match verdict {
            Verdict::Block | Verdict::Forward => {
                r.set_response_code(ResponseCode::NXDomain);
            }
            Verdict::Warn => match question.query_type() {
                RecordType::A => {
                    r.add_answer(Record::from_rdata(question.name().clone(), 60, RData::A(A(self.warn_v4))));
                }
                RecordType::AAAA => {
                    // IPv4 only: an empty answer sends the browser to the A record.
                    let _ = AAAA::from(std::net::Ipv6Addr::UNSPECIFIED);
                }
                _ => {}
            },
        }
        r.to_vec().ok()
    }

    /// Decides one query's bytes.
    pub fn handle(&self, query: &[u8], client: IpAddr) -> Handled {
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let Ok((header, qname, _)) = dns_question(query) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return Handled::Drop;
        };
        if header.message_type() != MessageType::Query {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return Handled::Drop;
        }
        match self.decide(&qname, client) {
            Verdict::Forward => {
                self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                Handled::Forward
            }
            v => self.local_answer(query, v).map_or(Handled::Drop, Handled::Answer),
        }
    }
}

/// What [`Filter::handle`] decided for a query's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Not a parseable query: dropped (counted).
    Drop,
    /// Answered locally with these bytes.
    Answer(Vec<u8>),
    /// To be forwarded to the resolver.
    Forward,
}

/// How long the UDP threads block before looking at their stop flag.
pub const UDP_POLL: Duration = Duration::from_millis(200);

struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Pending {
    client: SocketAddr,
    id: u16,
    at: Instant,
}

/// Serves the filter on UDP and TCP at `listen`, forwarding to `upstream`. Returns the bound
/// address and the tasks (abort them to stop; the UDP threads stop within [`UDP_POLL`]).
///
/// UDP runs on two plain threads with blocking sockets, as dnsdist does: one receives queries and
/// answers or forwards them, one relays the resolver's answers. No async machinery sits on the
/// per-packet path, and no wake-up crosses threads. TCP runs as tasks on the caller's runtime.
pub async fn serve(
    filter: Arc<Filter>,
    listen: SocketAddr,
    upstream: SocketAddr,
) -> std::io::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let tcp = TcpListener::bind(listen).await?;
    let local = tcp.local_addr()?;
    let front = Arc::new(std::net::UdpSocket::bind(local)?);
    let back = Arc::new(std::net::UdpSocket::bind(if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?);
    back.connect(upstream)?;
    front.set_read_timeout(Some(UDP_POLL))?;
    back.set_read_timeout(Some(UDP_POLL))?;
    tracing::info!(addr = %local, "dns filter listening");
    let table: Arc<Mutex<Vec<Option<Pending>>>> = Arc::new(Mutex::new((0..65536).map(|_| None).collect()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();

    let (f, fr, bk, tb, st) = (filter.clone(), front.clone(), back.clone(), table.clone(), stop.clone());
    std::thread::Builder::new().name("dns-filter-udp".into()).spawn(move || {
        let mut buf = vec![0u8; 4096];
        let mut next: u16 = 0;
        while !st.load(Ordering::Relaxed) {
            let Ok((n, peer)) = fr.recv_from(&mut buf) else { continue };
            let q = &mut buf[..n];
            match f.handle(q, peer.ip()) {
                Handled::Drop => {}
                Handled::Answer(answer) => {
                    let _ = fr.send_to(&answer, peer);
                }
                Handled::Forward => {
                    let id = u16::from_be_bytes([q[0], q[1]]);
                    let slot = {
                        let Ok(mut t) = tb.lock() else { continue };
                        // The next free id; a slot older than 5 s is reused.
                        let mut found = None;
                        for _ in 0..16 {
                            next = next.wrapping_add(1);
                            let s = &mut t[usize::from(next)];
                            if s.as_ref().is_none_or(|p| p.at.elapsed() > Duration::from_secs(5)) {
                                *s = Some(Pending { client: peer, id, at: Instant::now() });
                                found = Some(next);
                                break;
                            }
                        }
                        found
                    };
                    let Some(slot) = slot else { continue };
                    q[..2].copy_from_slice(&slot.to_be_bytes());
                    let _ = bk.send(q);
                }
            }
        }
    })?;

    let (f, fr, bk, tb, st) = (filter.clone(), front.clone(), back.clone(), table.clone(), stop.clone());
    std::thread::Builder::new().name("dns-filter-relay".into()).spawn(move || {
        let mut buf = vec![0u8; 65535];
        while !st.load(Ordering::Relaxed) {
            let Ok(n) = bk.recv(&mut buf) else { continue };
            if n < 12 {
                continue;
            }
            let slot = u16::from_be_bytes([buf[0], buf[1]]);
            let p = tb.lock().ok().and_then(|mut t| t[usize::from(slot)].take());
            let Some(p) = p else {
                f.stats.stray_answers.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            buf[..2].copy_from_slice(&p.id.to_be_bytes());
            let _ = fr.send_to(&buf[..n], p.client);
        }
    })?;

    // Aborting (or dropping) this task stops the UDP threads.
    tasks.push(tokio::spawn(async move {
        let _stop = StopOnDrop(stop);
        std::future::pending::<()>().await;
    }));

    let f = filter.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let Ok((s, peer)) = tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            tokio::spawn(serve_tcp(f.clone(), s, peer, upstream));
        }
    }));
    Ok((local, tasks))
}

async fn serve_tcp(f: Arc<Filter>, mut s: TcpStream, peer: SocketAddr, upstream: SocketAddr) {
    let mut up: Option<TcpStream> = None;
    let mut len = [0u8; 2];
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut len)).await {
        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if s.read_exact(&mut q).await.is_err() {
            return;
        }
        let answer = match f.handle(&q, peer.ip()) {
            Handled::Drop => return,
            Handled::Answer(a) => a,
            Handled::Forward => {
                if up.is_none() {
                    up = TcpStream::connect(upstream).await.ok();
                }
                let Some(u) = up.as_mut() else { return };
                if u.write_all(&len).await.is_err() || u.write_all(&q).await.is_err() {
                    return;
                }
                let mut rl = [0u8; 2];
                if u.read_exact(&mut rl).await.is_err() {
                    return;
                }
                let mut a = vec![0u8; usize::from(u16::from_be_bytes(rl))];
                if u.read_exact(&mut a).await.is_err() {
                    return;
                }
                a
            }
        };
        let Ok(l) = u16::try_from(answer.len()) else { return };
        if s.write_all(&l.to_be_bytes()).await.is_err() || s.write_all(&answer).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NoLookup;
    use crate::names::Match;
    use mamori_core::clock::WallClock;

    fn gov(dir: &std::path::Path) -> Governance {
        let store = Arc::new(mamori_store_stub::open(dir));
        Governance::new(store, Arc::new(WallClock), Arc::new(mamori_core::config::Config::default())).unwrap()
    }

    mod mamori_store_stub {
        pub fn open(dir: &std::path::Path) -> mamori_store::SqliteStore {
            mamori_store::SqliteStore::open(&dir.join("m.sqlite"), mamori_store::StoreOptions::default()).unwrap()
        }
    }

    #[test]
    fn verdicts_for_lists() {
        let dir = tempfile::tempdir().unwrap();
        let g = gov(dir.path());
        let f = Filter::new(&g, Arc::new(WallClock), None, Arc::new(NoLookup), "192.0.2.80".parse().unwrap()).unwrap();
        let mut l = SuffixMap::new();
        l.insert("blocked.test", Match::Subtree, ());
        f.set_static_list(l);
        let mut c = SuffixMap::new();
        c.insert("c2.test", Match::Subtree, ());
        f.set_cnc(c);
        let mut m = SuffixMap::new();
        m.insert("malware.test", Match::Exact, ());
        f.set_malware(m);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(f.decide("a.blocked.test", ip), Verdict::Block);
        assert_eq!(f.decide("x.c2.test", ip), Verdict::Block);
        assert_eq!(f.decide("malware.test", ip), Verdict::Warn);
        assert_eq!(f.decide("fine.test", ip), Verdict::Forward);
        f.continue_anyway(ip, "malware.test");
        assert_eq!(f.decide("malware.test", ip), Verdict::Forward);
        assert_eq!(f.decide("malware.test", "198.51.100.8".parse().unwrap()), Verdict::Warn);
    }
}
