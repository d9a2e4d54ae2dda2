//! The response-policy zone mamori serves to the carrier's resolvers: the enforcing actuator of
//! `dns.block-fqdn-list`.
//!
//! Governance authorizes each entry ([`PolicyZone`] implements [`Actuator`]); the zone is served by
//! AXFR over TCP, IXFR over TCP (the difference sequences from the client's serial, out of the
//! zone's journal, or the whole zone when the journal doesn't reach back that far or was lost in
//! a restart: RFC 1995 §4), SOA over UDP and TCP, and every change is announced by NOTIFY to the
//! configured resolvers. An IXFR over UDP is answered with the current SOA alone, which tells the
//! client to ask again over TCP (RFC 1995 §2). Entries carry the action's expiry: the zone drops
//! them itself when it passes, even before the scheduler lifts the action, and resolvers are
//! notified. Transfers are counted by kind ([`TransferStats`], and the Prometheus counter
//! [`metric::TRANSFERS`]).

pub mod zone;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use jiff::Timestamp;
use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_core::subject::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::names::{Match, SuffixMap};
pub use zone::{Delta, Entry, Zone};

/// Prometheus metric names of the zone server.
pub mod metric {
    /// Counter: zone transfers answered, by `kind` ([`super::Transfer::as_str`]).
    pub const TRANSFERS: &str = "mamori_dns_rpz_transfers_total";

    /// Registers the help text (call once, after the recorder is installed).
    pub fn describe() {
        metrics::describe_counter!(
            TRANSFERS,
            "RPZ zone transfers answered, by kind (axfr, ixfr-incremental, ixfr-full, ixfr-current)"
        );
    }
}

/// What kind of transfer a query got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// AXFR: the whole zone.
    Axfr,
    /// IXFR answered with the differences since the client's serial.
    IxfrIncremental,
    /// IXFR answered with the whole zone (serial unknown to the journal).
    IxfrFull,
    /// IXFR from the current serial: the SOA alone.
    IxfrCurrent,
}

impl Transfer {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Transfer::Axfr => "axfr",
            Transfer::IxfrIncremental => "ixfr-incremental",
            Transfer::IxfrFull => "ixfr-full",
            Transfer::IxfrCurrent => "ixfr-current",
        }
    }
}

/// Transfers answered over TCP, by kind.
#[derive(Debug, Default)]
pub struct TransferStats {
    /// AXFR.
    pub axfr: AtomicU64,
    /// IXFR answered incrementally.
    pub ixfr_incremental: AtomicU64,
    /// IXFR answered with the whole zone.
    pub ixfr_full: AtomicU64,
    /// IXFR from the current serial.
    pub ixfr_current: AtomicU64,
}

impl TransferStats {
    fn count(&self, t: Transfer) {
        let c = match t {
            Transfer::Axfr => &self.axfr,
            Transfer::IxfrIncremental => &self.ixfr_incremental,
            Transfer::IxfrFull => &self.ixfr_full,
            Transfer::IxfrCurrent => &self.ixfr_current,
        };
        c.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(metric::TRANSFERS, "kind" => t.as_str()).increment(1);
    }

    /// A counter's value.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The zone shared by the actuator, the servers and the inline filter.
#[derive(Debug)]
pub struct PolicyZone {
    zone: Mutex<Zone>,
    changed: watch::Sender<u32>,
    names: RwLock<Arc<SuffixMap<()>>>,
    /// Bumped after each replacement of `names` (the inline filter's memo of unlisted names).
    names_generation: AtomicU64,
    serial_file: Option<PathBuf>,
    /// Transfers served, by kind.
    pub transfers: TransferStats,
}

impl PolicyZone {
    /// Wraps a zone.
    pub fn new(zone: Zone) -> Arc<Self> {
        Self::build(zone, None)
    }

    /// Wraps a zone whose serial is kept in `path` across restarts: the zone starts past the
    /// serial found there ([`Zone::resume_after`]), and every change writes the new one. The
    /// journal itself is not kept: after a restart an IXFR gets the whole zone.
    pub fn with_serial_file(mut zone: Zone, path: PathBuf) -> Arc<Self> {
        let last = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(last) = last {
            zone.resume_after(last);
        }
        let pz = Self::build(zone, Some(path));
        pz.save_serial(pz.with(Zone::serial));
        pz
    }

    fn build(zone: Zone, serial_file: Option<PathBuf>) -> Arc<Self> {
        let (changed, _) = watch::channel(zone.serial());
        let pz = Arc::new(PolicyZone {
            zone: Mutex::new(zone),
            changed,
            names: RwLock::new(Arc::default()),
            names_generation: AtomicU64::new(0),
            serial_file,
            transfers: TransferStats::default(),
        });
        pz.rebuild_names();
        pz
    }

    fn save_serial(&self, serial: u32) {
        let Some(path) = &self.serial_file else { return };
        // Written aside then renamed, so a crash leaves the old serial or the new one.
        let tmp = path.with_extension("tmp");
        let res = std::fs::write(&tmp, format!("{serial}\n")).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            tracing::warn!(path = %path.display(), error = %e, "rpz serial not kept");
        }
    }

    /// Runs `f` on the zone.
    pub fn with<T>(&self, f: impl FnOnce(&Zone) -> T) -> T {
        match self.zone.lock() {
            Ok(z) => f(&z),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn change(&self, f: impl FnOnce(&mut Zone) -> bool) -> bool {
        let (changed, serial) = match self.zone.lock() {
            Ok(mut z) => (f(&mut z), z.serial()),
            Err(p) => {
                let mut z = p.into_inner();
                (f(&mut z), z.serial())
            }
        };
        if changed {
            self.save_serial(serial);
            self.rebuild_names();
            self.changed.send_replace(serial);
        }
        changed
    }

    fn rebuild_names(&self) {
        let m = self.with(|z| {
            let mut m = SuffixMap::with_capacity(z.entries().count());
            for e in z.entries() {
                m.insert(&e.name, if e.subtree { Match::Subtree } else { Match::Exact }, ());
            }
            m
        });
        if let Ok(mut w) = self.names.write() {
            *w = Arc::new(m);
        }
        // After the new names are in place: whoever reads this generation reads them (or newer).
        self.names_generation.fetch_add(1, Ordering::Release);
    }

    /// A number that grows each time the listed names ([`PolicyZone::names`]) are replaced.
    /// Read it before the names: an answer decided on them is then marked with a generation that
    /// is at most theirs, so a change since is always seen.
    pub fn names_generation(&self) -> u64 {
        self.names_generation.load(Ordering::Acquire)
    }

    /// The listed names, for the inline filter (a snapshot, replaced on every change).
    pub fn names(&self) -> Arc<SuffixMap<()>> {
        self.names.read().map(|n| n.clone()).unwrap_or_default()
    }

    /// Receives the serial after each change.
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.changed.subscribe()
    }

    /// Drops expired entries (called every second by [`serve`]).
    pub fn purge_expired(&self, now: Timestamp) -> Vec<Entry> {
        let mut out = Vec::new();
        self.change(|z| {
            out = z.purge_expired(now);
            !out.is_empty()
        });
        out
    }

    fn entry_of(auth: &Authorization) -> Result<Entry, ActuatorError> {
        let Target::Fqdn(name) = auth.target() else {
            return Err(ActuatorError::Refused(format!("the policy zone lists names, not {}", auth.target())));
        };
        Ok(Entry {
            name: name.clone(),
            subtree: true,
            expires: auth.expires_at(),
            action_id: auth.action_id().to_owned(),
        })
    }
}

impl Actuator for PolicyZone {
    fn name(&self) -> &str {
        "rpz"
    }

    fn handles(&self, measure: MeasureId) -> bool {
        measure == MeasureId::DnsBlockFqdnList
    }

    fn apply(&self, auth: &Authorization) -> Result<(), ActuatorError> {
        if !self.handles(auth.measure()) {
            return Err(ActuatorError::Unsupported(auth.measure()));
        }
        let e = Self::entry_of(auth)?;
        let mut res = Ok(());
        self.change(|z| match z.insert(e) {
            Ok(c) => c,
            Err(bad) => {
                res = Err(ActuatorError::Refused(bad.to_string()));
                false
            }
        });
        res
    }

    fn remove(&self, action: &ActionRecord) -> Result<(), ActuatorError> {
        if let Target::Fqdn(name) = &action.target {
            self.change(|z| z.remove(name, &action.id));
        }
        Ok(())
    }

    fn reconcile(&self, in_force: &[&Authorization]) -> Result<(), ActuatorError> {
        let entries: Vec<Entry> =
            in_force.iter().filter(|a| self.handles(a.measure())).filter_map(|a| Self::entry_of(a).ok()).collect();
        self.change(|z| z.replace_all(entries));
        Ok(())
    }
}

/// How the zone is served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen (TCP and UDP on the same port; port 0 picks one).
    pub listen: SocketAddr,
    /// Who may transfer the zone.
    pub allow_transfer: Vec<IpAddr>,
    /// Resolvers to NOTIFY on every change.
    pub notify: Vec<SocketAddr>,
}

/// Answers one query about the zone: SOA, AXFR or IXFR. Transfers only over TCP (`tcp`). Several
/// messages for a large transfer.
pub fn answer(zone: &Zone, query: &Message, tcp: bool, allowed: bool) -> Vec<Message> {
    answer_transfer(zone, query, tcp, allowed).0
}

/// Records per message of a transfer (well under 64 KiB with RPZ's short records).
const RECORDS_PER_MESSAGE: usize = 400;

/// [`answer`], and the kind of transfer it was, if one.
pub fn answer_transfer(zone: &Zone, query: &Message, tcp: bool, allowed: bool) -> (Vec<Message>, Option<Transfer>) {
    let mut resp = Message::new();
    resp.set_id(query.id()).set_message_type(MessageType::Response).set_op_code(query.op_code());
    let Some(q) = query.queries().first().cloned() else {
        resp.set_response_code(ResponseCode::FormErr);
        return (vec![resp], None);
    };
    resp.add_query(q.clone());
    if query.op_code() == OpCode::Notify {
        // Mamori is the primary: a NOTIFY to it is acknowledged and ignored.
        resp.set_authoritative(true);
        return (vec![resp], None);
    }
    if query.op_code() != OpCode::Query {
        resp.set_response_code(ResponseCode::NotImp);
        return (vec![resp], None);
    }
    let mut qname = q.name().clone();
    qname.set_fqdn(true);
    if !qname.eq_case(zone.origin()) && !zone.origin().zone_of(&qname) {
        resp.set_response_code(ResponseCode::Refused);
        return (vec![resp], None);
    }
    resp.set_authoritative(true);
    match q.query_type() {
        RecordType::SOA if qname == *zone.origin() => {
            resp.add_answer(zone.soa());
            (vec![resp], None)
        }
        RecordType::AXFR | RecordType::IXFR if !allowed => {
            resp.set_response_code(ResponseCode::Refused);
            (vec![resp], None)
        }
        RecordType::AXFR if !tcp => {
            resp.set_response_code(ResponseCode::Refused);
            (vec![resp], None)
        }
        RecordType::IXFR if !tcp => {
            // RFC 1995 §2: the current SOA alone tells the client to retry over TCP.
            resp.add_answer(zone.soa());
            (vec![resp], None)
        }
        RecordType::IXFR if ixfr_serial(query) == Some(zone.serial()) => {
            resp.add_answer(zone.soa());
            (vec![resp], Some(Transfer::IxfrCurrent))
        }
        RecordType::AXFR | RecordType::IXFR => {
            let incremental = if q.query_type() == RecordType::IXFR {
                ixfr_serial(query).and_then(|s| zone.ixfr_records(s))
            } else {
                None
            };
            let (records, kind) = match incremental {
                Some(r) => (r, Transfer::IxfrIncremental),
                None => {
                    let mut r = zone.records();
                    r.push(zone.soa());
                    (r, if q.query_type() == RecordType::IXFR { Transfer::IxfrFull } else { Transfer::Axfr })
                }
            };
            let msgs = records
                .chunks(RECORDS_PER_MESSAGE)
                .map(|chunk| {
                    let mut m = resp.clone();
                    m.add_answers(chunk.iter().cloned());
                    m
                })
                .collect();
            (msgs, Some(kind))
        }
        _ => {
            // Names inside the zone are not looked up directly; answer with the SOA only.
            resp.set_response_code(ResponseCode::NXDomain);
            resp.add_name_server(zone.soa());
            (vec![resp], None)
        }
    }
}

fn ixfr_serial(query: &Message) -> Option<u32> {
    query.name_servers().iter().find_map(|r: &Record| r.data().as_soa().map(|s| s.serial()))
}

fn encode(msgs: &[Message]) -> Vec<Vec<u8>> {
    msgs.iter().filter_map(|m| m.to_vec().ok()).collect()
}

/// A NOTIFY for the zone's current serial.
pub fn notify_message(zone: &Zone, id: u16) -> Message {
    let mut m = Message::new();
    m.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Notify).set_authoritative(true);
    m.add_query(Query::query(zone.origin().clone(), RecordType::SOA));
    m.add_answer(zone.soa());
    m
}

/// Serves the zone: TCP (transfers, SOA), UDP (SOA), NOTIFY on change, and expiry every second.
/// Returns the bound address and the tasks (abort them to stop).
pub async fn serve(zone: Arc<PolicyZone>, opts: ServeOptions) -> std::io::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let tcp = TcpListener::bind(opts.listen).await?;
    let local = tcp.local_addr()?;
    let udp = Arc::new(UdpSocket::bind(local).await?);
    tracing::info!(addr = %local, origin = %zone.with(|z| z.origin().to_string()), "rpz zone served");
    let allow = Arc::new(opts.allow_transfer.clone());
    let mut tasks = Vec::new();

    let (z, al) = (zone.clone(), allow.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            let Ok((mut s, peer)) = tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (z, allowed) = (z.clone(), al.contains(&peer.ip()));
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                while s.read_exact(&mut len).await.is_ok() {
                    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    let Ok(q) = Message::from_vec(&buf) else { return };
                    let (out, kind, serial) = z.with(|zone| {
                        let (msgs, kind) = answer_transfer(zone, &q, true, allowed);
                        (encode(&msgs), kind, zone.serial())
                    });
                    if let Some(kind) = kind {
                        z.transfers.count(kind);
                        tracing::info!(%peer, kind = kind.as_str(), from = ?ixfr_serial(&q), serial, "rpz zone transferred");
                    }
                    for m in out {
                        let Ok(l) = u16::try_from(m.len()) else { return };
                        if s.write_all(&l.to_be_bytes()).await.is_err() || s.write_all(&m).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    }));

    let (z, u, al) = (zone.clone(), udp.clone(), allow.clone());
    tasks.push(tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = u.recv_from(&mut buf).await else { continue };
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            if q.message_type() == MessageType::Response {
                continue; // NOTIFY acknowledgements
            }
            let allowed = al.contains(&peer.ip());
            for m in z.with(|zone| encode(&answer(zone, &q, false, allowed))) {
                let _ = u.send_to(&m, peer).await;
            }
        }
    }));

    let (z, targets) = (zone.clone(), opts.notify.clone());
    tasks.push(tokio::spawn(async move {
        let mut rx = z.subscribe();
        let mut id: u16 = 1;
        let Ok(sock) = UdpSocket::bind(if local.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).await else { return };
        while rx.changed().await.is_ok() {
            for t in &targets {
                id = id.wrapping_add(1);
                let Ok(wire) = z.with(|zone| notify_message(zone, id).to_vec()) else { continue };
                for _attempt in 0..3 {
                    if sock.send_to(&wire, t).await.is_err() {
                        break;
                    }
                    let mut b = [0u8; 512];
                    match tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut b)).await {
                        Ok(Ok((n, _))) if n >= 2 && u16::from_be_bytes([b[0], b[1]]) == id => break,
                        _ => continue,
                    }
                }
            }
            tracing::debug!(serial = *rx.borrow(), "rpz change notified");
        }
    }));

    let z = zone.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let gone = z.purge_expired(Timestamp::now());
            if !gone.is_empty() {
                tracing::info!(count = gone.len(), "rpz entries expired");
            }
        }
    }));
    Ok((local, tasks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;

    fn zone() -> Zone {
        let mut z = Zone::new("rpz.mamori.", false, Timestamp::from_second(100).unwrap()).unwrap();
        for i in 0..1000 {
            z.insert(Entry { name: format!("n{i}.test"), subtree: true, expires: None, action_id: "A".into() })
                .unwrap();
        }
        z
    }

    fn q(rt: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(9).add_query(Query::query(Name::from_ascii("rpz.mamori.").unwrap(), rt));
        m
    }

    #[test]
    fn axfr_starts_and_ends_with_the_soa_over_several_messages() {
        let z = zone();
        let msgs = answer(&z, &q(RecordType::AXFR), true, true);
        assert!(msgs.len() > 1);
        let all: Vec<&Record> = msgs.iter().flat_map(|m| m.answers()).collect();
        assert_eq!(all.len(), 2 + 2000 + 1);
        assert_eq!(all[0].record_type(), RecordType::SOA);
        assert_eq!(all[all.len() - 1].record_type(), RecordType::SOA);
        for m in encode(&msgs) {
            assert!(m.len() < 65535);
        }
    }

    #[test]
    fn transfers_refused_over_udp_or_to_strangers() {
        let z = zone();
        assert_eq!(answer(&z, &q(RecordType::AXFR), false, true)[0].response_code(), ResponseCode::Refused);
        assert_eq!(answer(&z, &q(RecordType::AXFR), true, false)[0].response_code(), ResponseCode::Refused);
        let soa = answer(&z, &q(RecordType::SOA), false, false);
        assert_eq!(soa[0].answers()[0].data().as_soa().unwrap().serial(), z.serial());
    }

    #[test]
    fn ixfr_up_to_date_is_one_soa() {
        let z = zone();
        let mut m = q(RecordType::IXFR);
        m.add_name_server(z.soa());
        let r = answer(&z, &m, true, true);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].answers().len(), 1);
    }

    fn ixfr(serial: u32) -> Message {
        let mut m = q(RecordType::IXFR);
        let mut z = Zone::new("rpz.mamori.", false, Timestamp::from_second(1).unwrap()).unwrap();
        while z.serial() < serial {
            z.insert(Entry {
                name: format!("s{}.test", z.serial()),
                subtree: false,
                expires: None,
                action_id: "x".into(),
            })
            .unwrap();
        }
        m.add_name_server(z.soa_at(serial));
        m
    }

    #[test]
    fn ixfr_from_a_journaled_serial_is_incremental_else_the_whole_zone() {
        let mut z = zone();
        let s0 = z.serial();
        z.insert(Entry { name: "late.test".into(), subtree: true, expires: None, action_id: "B".into() }).unwrap();
        let (msgs, kind) = answer_transfer(&z, &ixfr(s0), true, true);
        assert_eq!(kind, Some(Transfer::IxfrIncremental));
        let all: Vec<&Record> = msgs.iter().flat_map(|m| m.answers()).collect();
        let serials: Vec<Option<u32>> = all.iter().map(|r| r.data().as_soa().map(|s| s.serial())).collect();
        assert_eq!(serials, [Some(s0 + 1), Some(s0), Some(s0 + 1), None, None, Some(s0 + 1)]);
        assert_eq!(all[3].name().to_string(), "late.test.rpz.mamori.");
        assert_eq!(all[4].name().to_string(), "*.late.test.rpz.mamori.");

        // Older than the journal (the 1000 first inserts are in it, serial 99 is not): the whole zone.
        let (msgs, kind) = answer_transfer(&z, &ixfr(99), true, true);
        assert_eq!(kind, Some(Transfer::IxfrFull));
        assert_eq!(msgs.iter().map(|m| m.answers().len()).sum::<usize>(), 2 + 2002 + 1);
        // From the current serial: one SOA.
        let (msgs, kind) = answer_transfer(&z, &ixfr(s0 + 1), true, true);
        assert_eq!(kind, Some(Transfer::IxfrCurrent));
        assert_eq!(msgs[0].answers().len(), 1);
        // Over UDP: the current SOA alone, so the client retries over TCP; strangers are refused.
        let (msgs, kind) = answer_transfer(&z, &ixfr(s0), false, true);
        assert_eq!(kind, None);
        assert_eq!(msgs[0].answers()[0].data().as_soa().unwrap().serial(), s0 + 1);
        assert_eq!(answer(&z, &ixfr(s0), true, false)[0].response_code(), ResponseCode::Refused);
    }
}
