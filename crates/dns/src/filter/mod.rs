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
//!
//! With the answer cache ([`cache`]), a query whose bytes (after the id) match a held answer to a
//! name the filter found on no list, under the lists as they still are
//! ([`Filter::lists_generation`]), is answered from the cache before it is decoded: that verdict
//! is the same for every client. Every other query is decided as above, then looked up.

pub mod cache;
pub mod warn_page;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use jiff::Timestamp;
use mamori_core::governance::Governance;
use mamori_core::view::{Admission, ViewError, ViewGate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::dnstap::decode::dns_question_into;
use crate::engine::SubscriberLookup;
use crate::names::SuffixMap;
use crate::rpz::PolicyZone;
use crate::views::{BlockCnc, FilterName, FilterQuery, WarnSite};
use cache::{AnswerCache, Probe};
use mamori_udp::{BATCH, RecvBatch, SendBatch};

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
    /// Passed the lists: forwarded, or answered from the answer cache ([`FilterStats::cached`]).
    pub forwarded: AtomicU64,
    /// Answered from the answer cache instead of being forwarded (UDP).
    pub cached: AtomicU64,
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
    cache: OnceLock<Mutex<AnswerCache>>,
    /// How long the UDP threads poll their sockets without sleeping before they block, in
    /// microseconds (0: they block at once). See [`Filter::set_busy_poll`].
    busy_poll_us: AtomicU64,
    /// UDP workers [`serve`] starts (0: one per CPU, see `udp_workers`).
    udp_workers: AtomicUsize,
    /// Bumped after each replacement of the static, C&C or malware list (the policy zone keeps
    /// its own, [`PolicyZone::names_generation`]).
    generation: AtomicU64,
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
            cache: OnceLock::new(),
            busy_poll_us: AtomicU64::new(0),
            udp_workers: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            stats: FilterStats::default(),
        })
    }

    /// Keeps up to `entries` of the resolver's answers for UDP queries ([`cache`]); 0 keeps none.
    /// Takes effect for [`serve`] started afterwards; only the first call counts.
    pub fn enable_cache(&self, entries: usize) {
        if entries > 0 {
            let _ = self.cache.set(Mutex::new(AnswerCache::new(entries)));
        }
    }

    /// Lets the UDP threads poll their sockets without sleeping for up to `budget` after their
    /// last datagram before they block (0, the default: they block at once). A thread that sleeps
    /// between queries is woken by the kernel when the next one comes, and on a virtual machine
    /// that wake-up (an idle vCPU halted, then rescheduled by the host) is what makes the tail of
    /// the latency; polling keeps the thread awake through short gaps at the cost of a core kept
    /// busy while queries keep coming more often than `budget`. Takes effect for [`serve`] started
    /// afterwards.
    pub fn set_busy_poll(&self, budget: Duration) {
        self.busy_poll_us.store(u64::try_from(budget.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// How many UDP workers (two threads each) [`serve`] starts, at most 64: `0`, the default, one
    /// per CPU the process may run on (at most 8). Fewer keeps cores free, which matters with busy polling
    /// ([`Filter::set_busy_poll`]): every worker polls while its socket gets queries. Takes effect
    /// for [`serve`] started afterwards.
    pub fn set_udp_workers(&self, workers: usize) {
        self.udp_workers.store(workers, Ordering::Relaxed);
    }

    /// Replaces the static FQDN list (e.g. a large operator list under `dns.block-fqdn-list`).
    pub fn set_static_list(&self, l: SuffixMap<()>) {
        if let Ok(mut w) = self.static_list.write() {
            *w = Arc::new(l);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Replaces the C&C list.
    pub fn set_cnc(&self, l: SuffixMap<()>) {
        if let Ok(mut w) = self.cnc.write() {
            *w = Arc::new(l);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Replaces the malware-site list.
    pub fn set_malware(&self, l: SuffixMap<()>) {
        if let Ok(mut w) = self.malware.write() {
            *w = Arc::new(l);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// A number that grows whenever any list the filter applies is replaced (static FQDN list,
    /// C&C, malware, the policy zone's names). Read before the lists, it marks a decision taken on
    /// them: equal later, the lists are the same. (Opt-outs and "continue anyway" are not in it:
    /// they only change the verdict for a listed name.)
    pub fn lists_generation(&self) -> u64 {
        // Each part only grows, so the sum changes whenever either does.
        let zone = self.zone.as_ref().map_or(0, |z| z.names_generation());
        self.generation.load(Ordering::Acquire).wrapping_add(zone)
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
        self.decide_listed(qname, client).0
    }

    /// [`Filter::decide`], and whether the name is on no list at all (the verdict is then
    /// [`Verdict::Forward`] whoever asks).
    fn decide_listed(&self, qname: &str, client: IpAddr) -> (Verdict, bool) {
        let listed =
            |l: &RwLock<Arc<SuffixMap<()>>>| l.read().map(|m| !m.is_empty() && m.matches(qname)).unwrap_or(false);
        if listed(&self.static_list) || self.zone.as_ref().is_some_and(|z| z.names().matches(qname)) {
            self.stats.blocked_list.fetch_add(1, Ordering::Relaxed);
            return (Verdict::Block, false);
        }
        let cnc = listed(&self.cnc);
        let malware = !cnc && listed(&self.malware);
        if !cnc && !malware {
            return (Verdict::Forward, true);
        }
        let rec =
            FilterQuery { qname: qname.to_owned(), subscriber: self.lookup.subscriber_at(client, Timestamp::now()) };
        if cnc {
            if let Admission::Admitted(_) = self.cnc_gate.admit(&rec) {
                self.stats.blocked_cnc.fetch_add(1, Ordering::Relaxed);
                return (Verdict::Block, false);
            }
            return (Verdict::Forward, false);
        }
        if let Admission::Admitted(v) = self.warn_gate.admit(&rec) {
            let key = (self.client_key(client), v.qname);
            if self.continued.lock().map(|c| c.contains(&key)).unwrap_or(false) {
                return (Verdict::Forward, false);
            }
            self.stats.warned.fetch_add(1, Ordering::Relaxed);
            return (Verdict::Warn, false);
        }
        (Verdict::Forward, false)
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
        let mut scratch = Scratch::default();
        match self.handle_into(query, client, &mut scratch) {
            Step::Drop => Handled::Drop,
            Step::Answer => Handled::Answer(scratch.answer),
            Step::Forward => Handled::Forward,
        }
    }

    /// [`Filter::handle`] with the caller's buffers: the name's key and a local answer are
    /// written into `scratch`, so the per-query path allocates nothing once they have grown.
    pub fn handle_into(&self, query: &[u8], client: IpAddr, scratch: &mut Scratch) -> Step {
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        scratch.unlisted = None;
        let Ok((header, _, qend)) = dns_question_into(query, &mut scratch.key) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return Step::Drop;
        };
        if header.message_type() != MessageType::Query {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return Step::Drop;
        }
        // Read before the lists (see `lists_generation`).
        let generation = self.lists_generation();
        match self.decide_listed(&scratch.key, client) {
            (Verdict::Forward, unlisted) => {
                self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                scratch.unlisted = unlisted.then_some(generation);
                Step::Forward
            }
            (Verdict::Block, _) if let Some(end) = qend => {
                block_answer_into(&header, &query[12..end], &mut scratch.answer);
                if scratch.answer.is_empty() { Step::Drop } else { Step::Answer }
            }
            (v, _) => match self.local_answer(query, v) {
                Some(a) => {
                    scratch.answer = a;
                    Step::Answer
                }
                None => Step::Drop,
            },
        }
    }
}

/// The NXDOMAIN answer to a query, as [`Filter::local_answer`] builds it (the same bytes, which a
/// test checks), without parsing the query again: a response header emitted by hickory and the
/// query's own question (`question`: its wire bytes, just after the header).
fn block_answer_into(query: &Header, question: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut h = Header::new();
    h.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(ResponseCode::NXDomain)
        .set_query_count(1);
    if h.emit(&mut BinEncoder::new(out)).is_err() {
        out.clear();
        return;
    }
    out.extend_from_slice(question);
}

/// Per-thread buffers for [`Filter::handle_into`].
#[derive(Debug, Default)]
pub struct Scratch {
    /// The query name's key.
    pub key: String,
    /// A local answer, when the step is [`Step::Answer`].
    pub answer: Vec<u8>,
    /// After [`Step::Forward`]: the lists' generation ([`Filter::lists_generation`]) under which
    /// the name was on no list, if it was (kept with the cached answer).
    pub unlisted: Option<u64>,
}

/// What [`Filter::handle_into`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not a parseable query: dropped (counted).
    Drop,
    /// Answered locally: the bytes are in [`Scratch::answer`].
    Answer,
    /// To be forwarded to the resolver.
    Forward,
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

/// Largest query taken over UDP (EDNS clients rarely send more than 512 bytes).
const QUERY_MAX: usize = 4096;
/// Largest answer relayed over UDP.
const ANSWER_MAX: usize = 65535;

/// How long the UDP threads block before looking at their stop flag.
pub const UDP_POLL: Duration = Duration::from_millis(200);

/// Receives a batch as [`RecvBatch::recv`] does, after polling without sleeping for up to `spin`
/// (see [`Filter::set_busy_poll`]).
fn recv_polling(rx: &mut RecvBatch, sock: &std::net::UdpSocket, spin: Duration) -> std::io::Result<usize> {
    if !spin.is_zero() {
        let until = Instant::now() + spin;
        loop {
            match rx.try_recv(sock) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if Instant::now() >= until {
                break;
            }
            std::hint::spin_loop();
        }
    }
    rx.recv(sock)
}

/// UDP workers: one per CPU the process may run on (its affinity mask, which `taskset` or a
/// cgroup narrows), at most 8.
fn udp_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8)
}

/// Starts one UDP worker: its own `SO_REUSEPORT` socket toward clients and its own socket toward
/// the resolver (so its ids and its table of pending queries are its own), served by two threads
/// as dnsdist does: one receives queries and answers or forwards them, one relays the resolver's
/// answers. Each takes what is queued in one `recvmmsg` and sends what it produced in one
/// `sendmmsg` per socket, and takes the table's lock (and the answer cache's, when enabled) once
/// per batch. (One thread doing both directions with `poll` was tried: on the benchmark's single
/// core its median latency at 20,000 queries/s was 1–2 ms against 0.1 ms, see `BENCHMARKS.md`.)
fn spawn_udp_worker(
    i: usize,
    filter: &Arc<Filter>,
    front: std::net::UdpSocket,
    back: std::net::UdpSocket,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    front.set_read_timeout(Some(UDP_POLL))?;
    back.set_read_timeout(Some(UDP_POLL))?;
    let (front, back) = (Arc::new(front), Arc::new(back));
    let unset = SocketAddr::from(([0, 0, 0, 0], 0));
    let now = Instant::now();
    let table: Arc<Mutex<Vec<Pending>>> = Arc::new(Mutex::new(
        (0..65536)
            .map(|_| Pending { live: false, client: unset, id: 0, at: now, key: Vec::new(), unlisted: None })
            .collect(),
    ));

    let (f, fr, bk, tb, st) = (filter.clone(), front.clone(), back.clone(), table.clone(), stop.clone());
    // Buffers are made on the thread: nix's batch headers hold raw pointers and are not `Send`.
    std::thread::Builder::new().name(format!("dns-filter-udp-{i}")).spawn(move || {
        let mut rx = RecvBatch::new(QUERY_MAX);
        let spin = Duration::from_micros(f.busy_poll_us.load(Ordering::Relaxed));
        let mut to_clients = SendBatch::new(QUERY_MAX);
        let mut to_upstream = SendBatch::new(QUERY_MAX);
        let mut scratch = Scratch::default();
        let mut todo = [Todo::Done; BATCH];
        let mut next: u16 = 0;
        let cache = f.cache.get();
        while !st.load(Ordering::Relaxed) {
            let Ok(n) = recv_polling(&mut rx, &fr, spin) else { continue };
            let now = Instant::now();
            // First the cache, for answers to names known to be on no list under the lists as
            // they are (no decoding, no list probe); then decide the rest one by one; then the
            // cache again for those decided forwarded that it holds; then take the table's lock
            // once for what is left.
            for (i, t) in todo.iter_mut().enumerate().take(n) {
                *t = if rx.get(i).1.is_some() { Todo::Decide { held: false } } else { Todo::Done };
            }
            if let Some(Ok(mut c)) = cache.map(Mutex::lock) {
                let generation = f.lists_generation();
                let mut served = 0;
                for (i, t) in todo.iter_mut().enumerate().take(n) {
                    let (q, peer) = rx.get(i);
                    let (Some(peer), Some(key)) = (peer, q.get(2..)) else { continue };
                    match c.probe_into(key, [q[0], q[1]], now, generation, to_clients.slot(&fr)) {
                        Probe::Served(len) => {
                            to_clients.commit(len, Some(peer));
                            *t = Todo::Done;
                            served += 1;
                        }
                        Probe::Decide => *t = Todo::Decide { held: true },
                        Probe::Miss => {}
                    }
                }
                if served > 0 {
                    // Counted as `handle_into` and the cache below count theirs.
                    for counter in [&f.stats.queries, &f.stats.forwarded, &f.stats.cached] {
                        counter.fetch_add(served, Ordering::Relaxed);
                    }
                }
            }
            let (mut held_any, mut forward_any) = (false, false);
            for (i, t) in todo.iter_mut().enumerate().take(n) {
                let Todo::Decide { held } = *t else { continue };
                *t = Todo::Done;
                let (q, peer) = rx.get(i);
                let Some(peer) = peer else { continue };
                match f.handle_into(q, peer.ip(), &mut scratch) {
                    Step::Drop => {}
                    Step::Answer => to_clients.push(&fr, &scratch.answer, Some(peer)),
                    Step::Forward => {
                        *t = Todo::Forward { held, unlisted: scratch.unlisted };
                        held_any |= held;
                        forward_any = true;
                    }
                }
            }
            if held_any && let Some(Ok(mut c)) = cache.map(Mutex::lock) {
                for (i, t) in todo.iter_mut().enumerate().take(n) {
                    let Todo::Forward { held: true, unlisted } = *t else { continue };
                    let (q, peer) = rx.get(i);
                    let Some(peer) = peer else { continue };
                    let out = to_clients.slot(&fr);
                    if let Some(len) = c.answer_into(&q[2..], [q[0], q[1]], now, unlisted, out) {
                        to_clients.commit(len, Some(peer));
                        f.stats.cached.fetch_add(1, Ordering::Relaxed);
                        *t = Todo::Done;
                    }
                }
            }
            if forward_any && let Ok(mut t) = tb.lock() {
                for (i, todo) in todo.iter().enumerate().take(n) {
                    let Todo::Forward { unlisted, .. } = *todo else { continue };
                    let (q, peer) = rx.get(i);
                    let Some(peer) = peer else { continue };
                    // The next free id; a slot older than 5 s is reused.
                    let mut found = None;
                    for _ in 0..16 {
                        next = next.wrapping_add(1);
                        let s = &mut t[usize::from(next)];
                        if !s.live || now.duration_since(s.at) > Duration::from_secs(5) {
                            s.live = true;
                            s.client = peer;
                            s.id = u16::from_be_bytes([q[0], q[1]]);
                            s.at = now;
                            if cache.is_some() {
                                s.key.clear();
                                s.key.extend_from_slice(&q[2..]);
                                s.unlisted = unlisted;
                            }
                            found = Some(next);
                            break;
                        }
                    }
                    let Some(slot) = found else { continue };
                    q[..2].copy_from_slice(&slot.to_be_bytes());
                    to_upstream.push(&bk, q, None);
                }
            }
            to_upstream.flush(&bk);
            to_clients.flush(&fr);
        }
    })?;

    let (f, fr, bk, tb, st) = (filter.clone(), front, back, table, stop.clone());
    std::thread::Builder::new().name(format!("dns-filter-relay-{i}")).spawn(move || {
        let mut rx = RecvBatch::new(ANSWER_MAX);
        let spin = Duration::from_micros(f.busy_poll_us.load(Ordering::Relaxed));
        let mut to_clients = SendBatch::new(ANSWER_MAX);
        let mut back_to: [Option<(SocketAddr, u16)>; BATCH] = [None; BATCH];
        let mut unlisted: [Option<u64>; BATCH] = [None; BATCH];
        let mut keys: [Vec<u8>; BATCH] = std::array::from_fn(|_| Vec::new());
        let cache = f.cache.get();
        while !st.load(Ordering::Relaxed) {
            let Ok(n) = recv_polling(&mut rx, &bk, spin) else { continue };
            {
                let Ok(mut t) = tb.lock() else { continue };
                for (i, ((to, key), memo)) in
                    back_to.iter_mut().zip(keys.iter_mut()).zip(unlisted.iter_mut()).enumerate().take(n)
                {
                    let (a, _) = rx.get(i);
                    *to = None;
                    if a.len() < 12 {
                        continue;
                    }
                    let p = &mut t[usize::from(u16::from_be_bytes([a[0], a[1]]))];
                    if p.live {
                        p.live = false;
                        *to = Some((p.client, p.id));
                        *memo = p.unlisted;
                        // Swapped, not copied: the slot keeps a buffer for its next query.
                        std::mem::swap(key, &mut p.key);
                    }
                }
            }
            if let Some(Ok(mut c)) = cache.map(Mutex::lock) {
                let now = Instant::now();
                for (i, ((to, key), memo)) in back_to.iter().zip(keys.iter()).zip(unlisted.iter()).enumerate().take(n) {
                    if to.is_some() {
                        c.insert(key, rx.get(i).0, now, *memo);
                    }
                }
            }
            for (i, to) in back_to.iter().enumerate().take(n) {
                let (a, _) = rx.get(i);
                if a.len() < 12 {
                    continue;
                }
                let Some((client, id)) = *to else {
                    f.stats.stray_answers.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                a[..2].copy_from_slice(&id.to_be_bytes());
                to_clients.push(&fr, a, Some(client));
            }
            to_clients.flush(&fr);
        }
    })?;
    Ok(())
}

struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A forwarded query awaiting its answer, by the id it was forwarded with.
struct Pending {
    live: bool,
    client: SocketAddr,
    id: u16,
    at: Instant,
    /// The query after its id, when answers are cached (the buffer is reused from query to query).
    key: Vec<u8>,
    /// When answers are cached: the lists' generation under which the name was on no list, if it was.
    unlisted: Option<u64>,
}

/// What is left to do for one query of a received batch.
#[derive(Debug, Clone, Copy)]
enum Todo {
    /// Answered, dropped or not a query from anyone.
    Done,
    /// To be decided; `held`: the cache holds an answer to it.
    Decide { held: bool },
    /// Decided forwarded; `unlisted` as in [`Scratch::unlisted`].
    Forward { held: bool, unlisted: Option<u64> },
}

/// Serves the filter on UDP and TCP at `listen`, forwarding to `upstream`. Returns the bound
/// address and the tasks (abort them to stop; the UDP threads stop within [`UDP_POLL`]).
///
/// UDP runs on plain threads with blocking sockets: per CPU the process may use, one worker of two
/// threads (`SO_REUSEPORT` spreads clients over the workers' sockets), as described at
/// `spawn_udp_worker`. No async machinery sits on the per-packet path, and no buffer is allocated
/// per query (the answer cache, when enabled, allocates when it stores an answer). TCP runs as
/// tasks on the caller's runtime.
pub async fn serve(
    filter: Arc<Filter>,
    listen: SocketAddr,
    upstream: SocketAddr,
) -> std::io::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let tcp = TcpListener::bind(listen).await?;
    let local = tcp.local_addr()?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = match filter.udp_workers.load(Ordering::Relaxed) {
        0 => udp_workers(),
        n => n.min(64),
    };
    for i in 0..workers {
        let front = mamori_udp::bind_reuseport(local)?;
        let back = std::net::UdpSocket::bind(if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
        back.connect(upstream)?;
        spawn_udp_worker(i, &filter, front, back, &stop)?;
    }
    tracing::info!(addr = %local, udp_workers = workers, "dns filter listening");
    let mut tasks = Vec::new();

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

    #[test]
    fn block_answer_bytes_are_the_same_as_the_message_built_answer() {
        let dir = tempfile::tempdir().unwrap();
        let g = gov(dir.path());
        let f = Filter::new(&g, Arc::new(WallClock), None, Arc::new(NoLookup), "192.0.2.80".parse().unwrap()).unwrap();
        let mut l = SuffixMap::new();
        l.insert("blocked.test", Match::Subtree, ());
        f.set_static_list(l);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let mut scratch = Scratch::default();
        for (name, rt, rd, edns) in [
            ("www.Blocked.TEST.", RecordType::A, true, false),
            ("blocked.test.", RecordType::AAAA, false, true),
            ("a.b.c.blocked.test.", RecordType::TXT, true, true),
        ] {
            let mut m = Message::new();
            m.set_id(0xbeef).set_recursion_desired(rd);
            m.add_query(hickory_proto::op::Query::query(hickory_proto::rr::Name::from_ascii(name).unwrap(), rt));
            if edns {
                m.set_edns(hickory_proto::op::Edns::new());
            }
            let q = m.to_vec().unwrap();
            assert_eq!(f.handle_into(&q, ip, &mut scratch), Step::Answer);
            assert_eq!(scratch.answer, f.local_answer(&q, Verdict::Block).unwrap(), "{name}");
            assert_eq!(f.handle(&q, ip), Handled::Answer(scratch.answer.clone()));
        }
        let mut m = Message::new();
        m.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("fine.test.").unwrap(),
            RecordType::A,
        ));
        assert_eq!(f.handle_into(&m.to_vec().unwrap(), ip, &mut scratch), Step::Forward);
        assert_eq!(f.handle_into(&[0u8; 5], ip, &mut scratch), Step::Drop);
    }
}
