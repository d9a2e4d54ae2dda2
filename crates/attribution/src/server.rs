//! The RADIUS accounting server (UDP, RFC 2866).
//!
//! One thread: it waits for a datagram, then takes whatever else is already queued (up to
//! [`BATCH`]), checks each one's client and Request Authenticator, decodes it, writes the whole
//! batch's sessions in one durable transaction, and only then answers each packet with an
//! Accounting-Response. A packet that is not answered is retransmitted by its NAS, so:
//!
//! - unknown client, wrong secret (bad authenticator), truncated or malformed packet: no answer,
//!   nothing stored, counted per client (and logged at `warn` with the reason, never the secret
//!   or the user);
//! - store failure: no answer for the batch (the NAS retries), counted;
//! - an authenticated packet lacking what a session needs (no User-Name, no Acct-Session-Id):
//!   answered (there is nothing to retry), counted as `incomplete`.
//!
//! Processing is idempotent, so a retransmission of an answered packet is answered again and
//! changes nothing.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use mamori_core::config::{RadiusClientConfig, RadiusSecret, parse_client_network};

use crate::attributor::Attributor;
use crate::index::{Index, unix_secs};
use crate::radius::packet::{ACCOUNTING_REQUEST, Packet};
use crate::radius::{AccountingRequest, StatusType, accounting_response};
use crate::session::AcctEvent;

/// At most this many datagrams per transaction.
pub const BATCH: usize = 512;
/// How long the receive loop waits before checking whether it should stop.
const POLL: Duration = Duration::from_millis(200);

/// Metric names.
pub mod metric {
    /// Counter: accounting packets by `client` and `outcome`.
    pub const PACKETS: &str = "mamori_radius_packets_total";
    /// Counter: sessions closed by Accounting-On/Off.
    pub const CLOSED_BY_NAS: &str = "mamori_radius_sessions_closed_by_nas_total";
    /// Counter: sessions deleted by retention.
    pub const RETENTION_DELETED: &str = "mamori_attribution_sessions_deleted_total";

    /// Registers the help texts (call once, after the recorder is installed).
    pub fn describe() {
        metrics::describe_counter!(
            PACKETS,
            "RADIUS accounting packets by client and outcome (accepted, incomplete, bad_authenticator, malformed, not_accounting, store_failed, unknown_client)"
        );
        metrics::describe_counter!(CLOSED_BY_NAS, "Sessions closed by an Accounting-On/Off of their NAS");
        metrics::describe_counter!(RETENTION_DELETED, "Attribution sessions deleted by retention");
    }
}

/// A configured RADIUS client.
struct Client {
    name: String,
    net: IpAddr,
    len: u8,
    secret: RadiusSecret,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("name", &self.name).field("net", &self.net).field("len", &self.len).finish()
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            u32::from(n) & m == u32::from(a) & m
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            crate::radius::acct::mask128(u128::from(n), len) == crate::radius::acct::mask128(u128::from(a), len)
        }
        _ => false,
    }
}

/// The allowed clients, matched by longest prefix.
#[derive(Debug, Default)]
pub struct Clients(Vec<Client>);

impl Clients {
    /// From the configuration (already validated; a bad address is an error here too).
    pub fn from_config(clients: &[RadiusClientConfig]) -> Result<Clients, String> {
        let mut out = Vec::new();
        for c in clients {
            let (net, len) = parse_client_network(&c.address).map_err(|e| format!("client {}: {e}", c.name))?;
            out.push(Client { name: c.name.clone(), net, len, secret: c.secret.clone() });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.len));
        Ok(Clients(out))
    }

    fn find(&self, ip: IpAddr) -> Option<usize> {
        let ip = ip.to_canonical();
        self.0.iter().position(|c| contains(c.net, c.len, ip))
    }
}

/// Counters of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Stored and answered.
    pub accepted: u64,
    /// Answered, but lacking what a session needs.
    pub incomplete: u64,
    /// Wrong Request Authenticator (wrong secret or altered packet): dropped.
    pub bad_authenticator: u64,
    /// Truncated or malformed: dropped.
    pub malformed: u64,
    /// Not an Accounting-Request: dropped.
    pub not_accounting: u64,
    /// The store failed: not answered.
    pub store_failed: u64,
}

/// Counters of the server, readable while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    clients: Mutex<BTreeMap<String, ClientCounters>>,
    unknown_client: Mutex<u64>,
}

impl Stats {
    fn bump(&self, client: &str, outcome: &'static str) {
        let mut m = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let c = m.entry(client.to_owned()).or_default();
        match outcome {
            "accepted" => c.accepted += 1,
            "incomplete" => c.incomplete += 1,
            "bad_authenticator" => c.bad_authenticator += 1,
            "malformed" => c.malformed += 1,
            "not_accounting" => c.not_accounting += 1,
            _ => c.store_failed += 1,
        }
        metrics::counter!(metric::PACKETS, "client" => client.to_owned(), "outcome" => outcome).increment(1);
    }

    /// Counters per client name.
    pub fn snapshot(&self) -> BTreeMap<String, ClientCounters> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Counters of one client.
    pub fn client(&self, name: &str) -> ClientCounters {
        self.snapshot().get(name).copied().unwrap_or_default()
    }

    /// Packets from addresses no client matches.
    pub fn unknown_client(&self) -> u64 {
        *self.unknown_client.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Retention run by the server thread.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Sessions that ended longer ago than this are deleted.
    pub keep: SignedDuration,
    /// How often.
    pub every: Duration,
}

/// What one retention run deleted (counts and the range of the sessions' ends, never content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Sessions deleted.
    pub deleted: usize,
    /// The earliest and latest end among them, Unix seconds.
    pub range: Option<(u32, u32)>,
    /// Sessions that ended before this were deleted.
    pub cutoff: Timestamp,
}

/// Called after each retention run that deleted something (to record it in the ledger).
pub type OnSwept = Box<dyn Fn(&Swept) + Send>;

struct SweptHook(Option<OnSwept>);

impl std::fmt::Debug for SweptHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// The server: a bound socket, the clients, the sessions.
#[derive(Debug)]
pub struct RadiusServer {
    socket: UdpSocket,
    clients: Clients,
    attributor: Attributor,
    stats: Arc<Stats>,
    on_swept: SweptHook,
}

/// A response to send.
type Reply = (SocketAddr, [u8; 20]);

impl RadiusServer {
    /// Binds the UDP socket.
    pub fn bind(addr: SocketAddr, clients: Clients, attributor: Attributor) -> io::Result<RadiusServer> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(POLL))?;
        Ok(RadiusServer { socket, clients, attributor, stats: Arc::new(Stats::default()), on_swept: SweptHook(None) })
    }

    /// Calls `f` after each retention run that deleted sessions.
    pub fn on_swept(&mut self, f: OnSwept) {
        self.on_swept = SweptHook(Some(f));
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The index, shared with lookups.
    pub fn index(&self) -> Arc<RwLock<Index>> {
        self.attributor.index().clone()
    }

    /// Runs on a thread of its own until `stop` is set.
    pub fn spawn(self, stop: Arc<AtomicBool>, retention: Option<Retention>) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name("radius-acct".into()).spawn(move || self.run(&stop, retention))
    }

    /// The receive loop.
    pub fn run(mut self, stop: &AtomicBool, retention: Option<Retention>) {
        let mut buf = vec![0u8; 8192];
        let mut batch: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(BATCH);
        let mut next_retention = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if let Some(r) = retention {
                if Instant::now() >= next_retention {
                    next_retention = Instant::now() + r.every;
                    self.sweep(r.keep);
                }
            }
            batch.clear();
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => batch.push((buf[..n].to_vec(), from)),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "RADIUS receive failed");
                    std::thread::sleep(POLL);
                    continue;
                }
            }
            // Whatever else is already queued joins the batch (one transaction, one fsync).
            if self.socket.set_nonblocking(true).is_ok() {
                while batch.len() < BATCH {
                    match self.socket.recv_from(&mut buf) {
                        Ok((n, from)) => batch.push((buf[..n].to_vec(), from)),
                        Err(_) => break,
                    }
                }
                let _ = self.socket.set_nonblocking(false);
            }
            let datagrams: Vec<(&[u8], SocketAddr)> = batch.iter().map(|(b, a)| (b.as_slice(), *a)).collect();
            for (to, reply) in self.process(&datagrams, unix_secs(Timestamp::now())) {
                if let Err(e) = self.socket.send_to(&reply, to) {
                    tracing::warn!(error = %e, nas = %to, "cannot send Accounting-Response");
                }
            }
        }
    }

    fn sweep(&mut self, keep: SignedDuration) {
        let Ok(cutoff) = Timestamp::now().checked_sub(keep) else { return };
        match self.attributor.retain(cutoff) {
            Ok((n, range)) => {
                metrics::counter!(metric::RETENTION_DELETED).increment(n as u64);
                if n > 0 {
                    tracing::info!(deleted = n, cutoff = %cutoff, "attribution retention");
                    if let Some(f) = &self.on_swept.0 {
                        f(&Swept { deleted: n, range, cutoff });
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "attribution retention failed"),
        }
    }

    /// Handles a batch of datagrams received at `now` (Unix seconds): returns the answers to
    /// send. Public for tests that don't need a socket.
    pub fn process(&mut self, datagrams: &[(&[u8], SocketAddr)], now: u32) -> Vec<Reply> {
        let mut events = Vec::with_capacity(datagrams.len());
        let mut pending: Vec<(usize, SocketAddr, [u8; 20], bool)> = Vec::with_capacity(datagrams.len());
        for &(bytes, from) in datagrams {
            let Some(idx) = self.clients.find(from.ip()) else {
                *self.stats.unknown_client.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                metrics::counter!(metric::PACKETS, "client" => "unknown", "outcome" => "unknown_client").increment(1);
                tracing::warn!(nas = %from.ip(), "RADIUS packet from an unknown client dropped");
                continue;
            };
            let client = &self.clients.0[idx];
            let packet = match Packet::parse(bytes) {
                Ok(p) => p,
                Err(e) => {
                    self.stats.bump(&client.name, "malformed");
                    tracing::warn!(client = %client.name, nas = %from, error = %e, "malformed RADIUS packet dropped");
                    continue;
                }
            };
            if packet.code() != ACCOUNTING_REQUEST {
                self.stats.bump(&client.name, "not_accounting");
                tracing::warn!(client = %client.name, code = packet.code(), "not an Accounting-Request; dropped");
                continue;
            }
            if !packet.verify_accounting_request(client.secret.expose()) {
                self.stats.bump(&client.name, "bad_authenticator");
                tracing::warn!(
                    client = %client.name,
                    nas = %from,
                    "Accounting-Request with a wrong Request Authenticator (wrong shared secret?) dropped"
                );
                continue;
            }
            let request = match AccountingRequest::decode(&packet) {
                Ok(r) => r,
                Err(e) => {
                    self.stats.bump(&client.name, "malformed");
                    tracing::warn!(client = %client.name, nas = %from, error = %e, "unusable Accounting-Request dropped");
                    continue;
                }
            };
            for p in &request.problems {
                tracing::warn!(client = %client.name, problem = %p, "Accounting-Request attribute ignored");
            }
            let event = AcctEvent::from_request(&request, from.ip().to_canonical(), now);
            let complete = event.key().is_some()
                || !matches!(event.status, StatusType::Start | StatusType::Stop | StatusType::InterimUpdate);
            let reply = accounting_response(&packet, client.secret.expose());
            pending.push((idx, from, reply, complete));
            events.push(event);
        }
        if events.is_empty() {
            return Vec::new();
        }
        match self.attributor.apply(&events) {
            Ok(applied) => {
                if applied.closed_by_nas > 0 {
                    metrics::counter!(metric::CLOSED_BY_NAS).increment(applied.closed_by_nas as u64);
                }
                pending
                    .into_iter()
                    .map(|(idx, to, reply, complete)| {
                        let name = self.clients.0.get(idx).map(|c| c.name.as_str()).unwrap_or("unknown");
                        self.stats.bump(name, if complete { "accepted" } else { "incomplete" });
                        (to, reply)
                    })
                    .collect()
            }
            Err(e) => {
                tracing::error!(error = %e, packets = pending.len(), "cannot store accounting; not answering (NASes will retransmit)");
                for (idx, ..) in pending {
                    let name = self.clients.0.get(idx).map(|c| c.name.as_str()).unwrap_or("unknown");
                    self.stats.bump(name, "store_failed");
                }
                Vec::new()
            }
        }
    }
}
