//! The flow collector: NetFlow v5, v9 and IPFIX over UDP, and sFlow v5 on its own socket.
//!
//! The socket loop lives here; decoding is a pure function of bytes in [`decode`] (NetFlow,
//! IPFIX) and [`sflow`]. Every exporter has its own template caches and counters, so a burst of
//! garbage from one exporter costs only the time to reject it and never touches another's
//! templates. sFlow is stateless (no templates): its counters are kept per agent address.

pub mod decode;
mod fast;
pub mod sflow;
pub mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mamori_udp::RecvBatch;

pub use decode::{Decoded, Decoder, FlowRecord};

/// Counters of one exporter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExporterStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Flows decoded.
    pub flows: u64,
    /// Datagrams (or their tails) that did not parse.
    pub malformed: u64,
    /// Data sets that came before their template.
    pub no_template: u64,
    /// Datagrams refused because too many exporter scopes were known.
    pub refused: u64,
    /// Flows dropped because the detectors did not keep up.
    pub dropped: u64,
    /// sFlow counter samples (read past, not used).
    pub counter_samples: u64,
    /// sFlow flow samples without an IP packet mamori reads, and samples of unknown formats.
    pub skipped: u64,
}

/// The receive buffer asked for on each collector socket (bytes).
pub const RECV_BUFFER: usize = 32 << 20;

/// sFlow agents counted by their own address at most; more are counted by the sender's address.
pub const MAX_AGENTS: usize = 4096;

/// Which protocol a collector socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// NetFlow v5, v9 and IPFIX (templates per exporter and observation domain).
    Netflow,
    /// sFlow v5 (counted per agent address).
    Sflow,
}

/// Collector failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The thread could not be started.
    #[error("cannot start the collector thread: {0}")]
    Thread(std::io::Error),
}

/// Prometheus metric names of the collector (labels: `exporter`, the router's address, and
/// `outcome`).
pub mod metric {
    /// Counter: datagrams by `exporter` and `outcome` (decoded, malformed, refused).
    pub const DATAGRAMS: &str = "mamori_flow_datagrams_total";
    /// Counter: flows decoded by `exporter`.
    pub const FLOWS: &str = "mamori_flow_records_total";
    /// Counter: flows dropped because the engine lagged, by `exporter`.
    pub const DROPPED: &str = "mamori_flow_records_dropped_total";
    /// Counter: data sets that came before their template, by `exporter`.
    pub const NO_TEMPLATE: &str = "mamori_flow_sets_without_template_total";
    /// Counter: sFlow counter samples read past, by `exporter` (the agent).
    pub const COUNTER_SAMPLES: &str = "mamori_flow_sflow_counter_samples_total";

    /// Registers the help texts (call once, after the recorder is installed).
    pub fn describe() {
        metrics::describe_counter!(DATAGRAMS, "Flow datagrams by exporter and outcome (decoded, malformed, refused)");
        metrics::describe_counter!(FLOWS, "Flow records decoded, by exporter");
        metrics::describe_counter!(DROPPED, "Flow records dropped because the detector lagged, by exporter");
        metrics::describe_counter!(NO_TEMPLATE, "v9/IPFIX data sets received before their template, by exporter");
        metrics::describe_counter!(COUNTER_SAMPLES, "sFlow counter samples read past (not used), by agent");
    }
}

/// Per-exporter counters, shared with whoever reports them.
pub type SharedStats = Arc<Mutex<HashMap<IpAddr, ExporterStats>>>;

/// Flows a collector hands to the engine in one go; reads as a slice of [`FlowRecord`]s. When
/// it is dropped (the engine has ingested it) its buffer goes back to the collector for a later
/// batch: a batch then costs no allocation and, at high rates, no fresh pages (the allocator
/// gave a freed batch's pages back to the system, and the next batch faulted them in again).
#[derive(Debug, Default)]
pub struct FlowBatch {
    flows: Vec<FlowRecord>,
    home: Option<Arc<Mutex<Vec<Vec<FlowRecord>>>>>,
}

/// Batch buffers kept for reuse per collector at most (about 90 KB each).
const SPARE_BATCHES: usize = 64;

impl std::ops::Deref for FlowBatch {
    type Target = [FlowRecord];
    fn deref(&self) -> &[FlowRecord] {
        &self.flows
    }
}

impl From<Vec<FlowRecord>> for FlowBatch {
    fn from(flows: Vec<FlowRecord>) -> Self {
        FlowBatch { flows, home: None }
    }
}

impl IntoIterator for FlowBatch {
    type Item = FlowRecord;
    type IntoIter = std::vec::IntoIter<FlowRecord>;
    fn into_iter(mut self) -> Self::IntoIter {
        std::mem::take(&mut self.flows).into_iter()
    }
}

impl Drop for FlowBatch {
    fn drop(&mut self) {
        if let (Some(home), true) = (&self.home, self.flows.capacity() > 0) {
            if let Ok(mut spare) = home.lock() {
                if spare.len() < SPARE_BATCHES {
                    self.flows.clear();
                    spare.push(std::mem::take(&mut self.flows));
                }
            }
        }
    }
}

/// A running collector; stops when dropped.
#[derive(Debug)]
pub struct Collector {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: SharedStats,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Binds `addr` for NetFlow v5/v9 and IPFIX and sends decoded flows to `sink` in batches
    /// (the flows of the datagrams read until the socket is drained, at most about 1 024); a
    /// full sink drops the batch and counts it against its exporters.
    pub fn spawn(addr: SocketAddr, sink: SyncSender<FlowBatch>) -> Result<Self, CollectorError> {
        Self::spawn_protocol(addr, Protocol::Netflow, sink)
    }

    /// Binds `addr` for sFlow v5, otherwise as [`Collector::spawn`]; counters are per agent.
    pub fn spawn_sflow(addr: SocketAddr, sink: SyncSender<FlowBatch>) -> Result<Self, CollectorError> {
        Self::spawn_protocol(addr, Protocol::Sflow, sink)
    }

    /// Binds `addr` for `protocol`.
    pub fn spawn_protocol(
        addr: SocketAddr,
        protocol: Protocol,
        sink: SyncSender<FlowBatch>,
    ) -> Result<Self, CollectorError> {
        let socket = UdpSocket::bind(addr).map_err(|source| CollectorError::Bind { addr, source })?;
        let local = socket.local_addr().map_err(|source| CollectorError::Bind { addr, source })?;
        // A deep receive buffer absorbs the moments the thread isn't scheduled (the kernel caps
        // it at net.core.rmem_max; raise that for high rates); what still overflows is dropped
        // by the kernel, uncounted here.
        if let Err(e) = socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER) {
            tracing::warn!(%local, error = %e, "cannot enlarge the receive buffer");
        }
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|source| CollectorError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats: SharedStats = Arc::default();
        let (stop2, stats2) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("flow-collector".into())
            .spawn(move || run(socket, protocol, sink, stop2, stats2))
            .map_err(CollectorError::Thread)?;
        tracing::info!(%local, ?protocol, "flow collector listening");
        Ok(Collector { local, stop, stats, thread: Some(thread) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The per-exporter counters.
    pub fn stats(&self) -> SharedStats {
        self.stats.clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One exporter's metric handles, registered on first use (so a series appears when it first
/// counts, as with the macros) and kept: a datagram then costs additions, not a registry lookup
/// and a label string per counter.
#[derive(Default)]
struct Counters {
    datagrams: [Option<metrics::Counter>; 3],
    flows: Option<metrics::Counter>,
    dropped: Option<metrics::Counter>,
    no_template: Option<metrics::Counter>,
    counter_samples: Option<metrics::Counter>,
}

/// Exporters whose handles are kept at most (more are bounded by the decoder's scopes and
/// [`MAX_AGENTS`]; past it the cache starts again).
const MAX_COUNTERS: usize = 2 * MAX_AGENTS;

impl Counters {
    fn count_dropped(&mut self, who: IpAddr, s: &ExporterStats) {
        if s.dropped > 0 {
            self.dropped
                .get_or_insert_with(|| metrics::counter!(metric::DROPPED, "exporter" => who.to_string()))
                .increment(s.dropped);
        }
    }

    fn count(&mut self, who: IpAddr, s: &ExporterStats) {
        let exporter = || who.to_string();
        let (outcome, i) = if s.refused > 0 {
            ("refused", 0)
        } else if s.malformed > 0 {
            ("malformed", 1)
        } else {
            ("decoded", 2)
        };
        if let Some(c) = self.datagrams.get_mut(i) {
            c.get_or_insert_with(
                || metrics::counter!(metric::DATAGRAMS, "exporter" => exporter(), "outcome" => outcome),
            )
            .increment(1);
        }
        self.flows.get_or_insert_with(|| metrics::counter!(metric::FLOWS, "exporter" => exporter())).increment(s.flows);
        self.count_dropped(who, s);
        if s.no_template > 0 {
            self.no_template
                .get_or_insert_with(|| metrics::counter!(metric::NO_TEMPLATE, "exporter" => exporter()))
                .increment(s.no_template);
        }
        if s.counter_samples > 0 {
            self.counter_samples
                .get_or_insert_with(|| metrics::counter!(metric::COUNTER_SAMPLES, "exporter" => exporter()))
                .increment(s.counter_samples);
        }
    }
}

fn run(socket: UdpSocket, protocol: Protocol, sink: SyncSender<FlowBatch>, stop: Arc<AtomicBool>, stats: SharedStats) {
    let mut decoder = Decoder::default();
    let mut counters: HashMap<IpAddr, Counters> = HashMap::new();
    // A UDP payload is at most 65,535 bytes: slots of that size truncate nothing.
    let mut rx = RecvBatch::new(65_535);
    let mut batch = Batch::default();
    // What is queued on the socket is taken in one system call (`recvmmsg`, up to mamori_udp::BATCH
    // datagrams), and the flows wait in `batch` until the socket is drained (a call took fewer
    // datagrams than it could) or the batch is full: a burst of datagrams is one hand-over and
    // one wake-up of the engine instead of one per datagram. While flows wait the socket is read
    // without blocking, so no flow waits for a datagram that isn't there; a slow stream (one
    // datagram per call) is handed over datagram by datagram.
    while !stop.load(Ordering::Relaxed) {
        let taken = if batch.flows.is_empty() { rx.recv(&socket) } else { rx.try_recv(&socket) };
        let n = match taken {
            Ok(n) => n,
            Err(e) => {
                // Nothing (more) queued, or the read timeout that lets the loop see `stop`.
                if !batch.send(&sink, &stats, &mut counters) {
                    return;
                }
                if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
                    tracing::warn!(error = %e, "flow socket error");
                }
                continue;
            }
        };
        for i in 0..n {
            let (data, Some(from)) = rx.get(i) else { continue };
            let mut s = ExporterStats::default();
            let who = match protocol {
                Protocol::Netflow => {
                    // Decoded straight into the batch: no vector per datagram.
                    let flows = decoder.decode_into(from, data, &mut batch.flows, &mut s);
                    batch.note(from.ip(), flows);
                    if s.malformed > 0 {
                        tracing::debug!(exporter = %from.ip(), len = data.len(), "malformed flow datagram");
                    }
                    from.ip()
                }
                Protocol::Sflow => {
                    let d = sflow::decode(from, data);
                    s.datagrams += 1;
                    s.flows += d.flows.len() as u64;
                    s.counter_samples += u64::from(d.counter_samples);
                    s.skipped += u64::from(d.skipped);
                    if let Some(e) = &d.error {
                        s.malformed += 1;
                        tracing::debug!(exporter = %from.ip(), len = data.len(), error = %e, "malformed sFlow datagram");
                    }
                    // Counted per agent (at most MAX_AGENTS of them, so forged agent addresses
                    // can't grow the counters or the metric labels without bound); a datagram
                    // whose header didn't parse, or past the bound, per sender.
                    let agent = d
                        .header
                        .map(|h| h.agent)
                        .filter(|a| stats.lock().map(|m| m.contains_key(a) || m.len() < MAX_AGENTS).unwrap_or(false));
                    let who = agent.unwrap_or(from.ip());
                    batch.add(who, d.flows);
                    who
                }
            };
            if counters.len() >= MAX_COUNTERS && !counters.contains_key(&who) {
                counters.clear();
            }
            counters.entry(who).or_default().count(who, &s);
            if let Ok(mut m) = stats.lock() {
                let e = m.entry(who).or_default();
                e.datagrams += s.datagrams;
                e.flows += s.flows;
                e.malformed += s.malformed;
                e.no_template += s.no_template;
                e.refused += s.refused;
                e.dropped += s.dropped;
                e.counter_samples += s.counter_samples;
                e.skipped += s.skipped;
            }
            if batch.flows.len() >= BATCH_FLOWS && !batch.send(&sink, &stats, &mut counters) {
                return;
            }
        }
        // Drained: hand over what waits.
        if n < mamori_udp::BATCH && !batch.send(&sink, &stats, &mut counters) {
            return;
        }
    }
    batch.send(&sink, &stats, &mut counters);
}

/// Flows handed to the engine in one batch at most (about 20 NetFlow v9 datagrams).
const BATCH_FLOWS: usize = 1024;

/// Flows decoded and not yet handed to the engine, and how many came from each exporter (in
/// runs, in order), so a batch the engine can't take is counted against its exporters.
#[derive(Default)]
struct Batch {
    flows: Vec<FlowRecord>,
    from: Vec<(IpAddr, u64)>,
    /// Buffers of batches the engine is done with.
    spare: Arc<Mutex<Vec<Vec<FlowRecord>>>>,
}

impl Batch {
    /// Appends `flows` from `who`.
    fn add(&mut self, who: IpAddr, flows: Vec<FlowRecord>) {
        self.note(who, flows.len());
        self.flows.extend(flows);
    }

    /// Notes that the last `n` flows of the batch came from `who`.
    fn note(&mut self, who: IpAddr, n: usize) {
        if n == 0 {
            return;
        }
        match self.from.last_mut() {
            Some((w, k)) if *w == who => *k += n as u64,
            _ => self.from.push((who, n as u64)),
        }
    }

    /// Hands the batch to `sink`; a full sink drops it and counts the drop against its
    /// exporters. `false` once the engine is gone.
    fn send(
        &mut self,
        sink: &SyncSender<FlowBatch>,
        stats: &SharedStats,
        counters: &mut HashMap<IpAddr, Counters>,
    ) -> bool {
        if self.flows.is_empty() {
            return true;
        }
        let next = self.spare.lock().ok().and_then(|mut s| s.pop());
        let next = next.unwrap_or_else(|| Vec::with_capacity(BATCH_FLOWS + 64));
        let flows = std::mem::replace(&mut self.flows, next);
        let ok = match sink.try_send(FlowBatch { flows, home: Some(self.spare.clone()) }) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                for (who, n) in &self.from {
                    let dropped = ExporterStats { dropped: *n, ..ExporterStats::default() };
                    counters.entry(*who).or_default().count_dropped(*who, &dropped);
                    if let Ok(mut m) = stats.lock() {
                        m.entry(*who).or_default().dropped += n;
                    }
                }
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        };
        self.from.clear();
        ok
    }
}

#[cfg(test)]
mod tests;
