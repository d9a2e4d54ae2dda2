//! dnstap ingest: Frame Streams over a unix socket or TCP from the carrier's resolvers (Unbound's
//! `dnstap-socket-path`, or `dnstap-ip` with `dnstap-tls: no`), decoded into [`DnsEvent`]s.
//!
//! Sockets live here; framing ([`framestream`]) and decoding ([`decode`]) are pure functions of
//! bytes. A payload that doesn't decode is counted and skipped; a framing error (a control frame
//! out of order or too long) closes that connection, since its frame boundaries are lost.

pub mod decode;
pub mod framestream;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use decode::{DecodeError, DnsEvent, Role};
use framestream::{Frame, FrameError, ReaderState};

/// What ingest saw, for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Data frames received.
    pub frames: AtomicU64,
    /// Payloads decoded into events.
    pub events: AtomicU64,
    /// Payloads that didn't decode (skipped).
    pub malformed: AtomicU64,
    /// Data frames over the size limit (skipped).
    pub oversized: AtomicU64,
    /// Connections closed on a framing error.
    pub framing_errors: AtomicU64,
    /// Events dropped because the consumer was behind.
    pub dropped: AtomicU64,
}

impl IngestStats {
    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The reading side of one Frame Streams connection, apart from I/O: feed it bytes, it hands out
/// decoded payloads and the control frames to send back.
#[derive(Debug)]
pub struct Session {
    state: ReaderState,
    max_data: usize,
    skip: usize,
}

/// What [`Session::feed`] did with a buffer.
#[derive(Debug, Default)]
pub struct Fed {
    /// Bytes consumed from the front of the buffer.
    pub consumed: usize,
    /// Control frames to write back (ACCEPT, FINISH).
    pub reply: Vec<u8>,
    /// The writer sent STOP: close after writing `reply`.
    pub finished: bool,
}

impl Default for Session {
    fn default() -> Self {
        Session::new(framestream::DEFAULT_MAX_DATA_FRAME)
    }
}

impl Session {
    /// A session that skips data frames over `max_data` bytes.
    pub fn new(max_data: usize) -> Self {
        Session { state: ReaderState::ExpectReady, max_data, skip: 0 }
    }

    /// Where the handshake is.
    pub fn state(&self) -> ReaderState {
        self.state
    }

    /// Consumes whole frames from `buf`, passing each data payload to `on_data`.
    pub fn feed(&mut self, buf: &[u8], mut on_data: impl FnMut(Option<&[u8]>)) -> Result<Fed, FrameError> {
        let mut fed = Fed::default();
        let mut at = 0;
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            self.skip -= n;
            at = n;
        }
        while at < buf.len() && self.state != ReaderState::Finished {
            let rest = &buf[at..];
            match framestream::next_frame(rest, self.max_data)? {
                Some((Frame::Data(p), n)) => {
                    if self.state != ReaderState::Data {
                        return Err(FrameError::DataBeforeStart);
                    }
                    on_data(Some(p));
                    at += n;
                }
                Some((Frame::Oversized(_), n)) => {
                    on_data(None);
                    at += n;
                }
                Some((Frame::Control(c), n)) => {
                    let (next, reply) = self.state.on_control(&c)?;
                    self.state = next;
                    if let Some(r) = reply {
                        fed.reply.extend_from_slice(&r);
                    }
                    at += n;
                }
                None => {
                    // An oversized data frame is skipped without buffering it whole.
                    if let Some(len) = framestream::skip_len(rest) {
                        if self.state != ReaderState::Data {
                            return Err(FrameError::DataBeforeStart);
                        }
                        if len - 4 > self.max_data {
                            on_data(None);
                            self.skip = len - rest.len();
                            at = buf.len();
                        }
                    }
                    break;
                }
            }
        }
        fed.consumed = at;
        fed.finished = self.state == ReaderState::Finished;
        Ok(fed)
    }
}

/// Reads one connection to its end, sending decoded events to `sink`.
pub async fn serve_connection<S>(mut stream: S, sink: mpsc::Sender<DnsEvent>, stats: Arc<IngestStats>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stats.connections.fetch_add(1, Ordering::Relaxed);
    let mut session = Session::default();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let fed = session.feed(&buf, |payload| {
            stats.frames.fetch_add(1, Ordering::Relaxed);
            let Some(p) = payload else {
                stats.oversized.fetch_add(1, Ordering::Relaxed);
                return;
            };
            match decode::decode(p) {
                Ok(ev) => {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                    if sink.try_send(ev).is_err() {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(reason = %e, "dnstap payload skipped");
                }
            }
        });
        let fed = match fed {
            Ok(f) => f,
            Err(e) => {
                stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "dnstap connection closed: framing lost");
                return;
            }
        };
        buf.drain(..fed.consumed);
        if !fed.reply.is_empty() && stream.write_all(&fed.reply).await.is_err() {
            return;
        }
        if fed.finished {
            let _ = stream.flush().await;
            return;
        }
        if buf.len() > 2 * framestream::DEFAULT_MAX_DATA_FRAME + 16 {
            // Can't happen with a bounded frame size; guard memory anyway.
            stats.framing_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

/// Listens on a unix socket (removing a stale socket file first).
pub fn spawn_unix(
    path: &Path,
    sink: mpsc::Sender<DnsEvent>,
    stats: Arc<IngestStats>,
) -> std::io::Result<JoinHandle<()>> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    tracing::info!(path = %path.display(), "dnstap listening (unix)");
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    tokio::spawn(serve_connection(s, sink.clone(), stats.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dnstap accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

/// Listens on TCP; returns the bound address (port 0 picks one).
pub async fn spawn_tcp(
    addr: SocketAddr,
    sink: mpsc::Sender<DnsEvent>,
    stats: Arc<IngestStats>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "dnstap listening (tcp)");
    Ok((
        local,
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        tokio::spawn(serve_connection(s, sink.clone(), stats.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "dnstap accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::framestream::{ControlKind, DNSTAP_CONTENT_TYPE, encode_control, encode_data};
    use super::*;

    #[test]
    fn session_reads_frames_split_anywhere() {
        let mut stream = encode_control(ControlKind::Ready, &[DNSTAP_CONTENT_TYPE]);
        stream.extend(encode_control(ControlKind::Start, &[DNSTAP_CONTENT_TYPE]));
        for i in 0..5u8 {
            encode_data(&mut stream, &[i; 10]);
        }
        stream.extend(encode_control(ControlKind::Stop, &[]));
        for step in [1usize, 3, 7, 64] {
            let mut s = Session::new(100);
            let mut buf = Vec::new();
            let mut got = Vec::new();
            let mut replies = Vec::new();
            for piece in stream.chunks(step) {
                buf.extend_from_slice(piece);
                let fed = s.feed(&buf, |p| got.push(p.map(<[u8]>::to_vec))).unwrap();
                replies.extend(fed.reply);
                buf.drain(..fed.consumed);
            }
            assert_eq!(got.len(), 5, "step {step}");
            assert_eq!(s.state(), ReaderState::Finished);
            let mut expect = encode_control(ControlKind::Accept, &[DNSTAP_CONTENT_TYPE]);
            expect.extend(encode_control(ControlKind::Finish, &[]));
            assert_eq!(replies, expect);
        }
    }

    #[test]
    fn oversized_frames_are_skipped_without_buffering() {
        let mut stream = encode_control(ControlKind::Start, &[]);
        encode_data(&mut stream, &[0u8; 1000]);
        encode_data(&mut stream, b"ok");
        let mut s = Session::new(100);
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for piece in stream.chunks(50) {
            buf.extend_from_slice(piece);
            let fed = s.feed(&buf, |p| got.push(p.map(<[u8]>::to_vec))).unwrap();
            buf.drain(..fed.consumed);
            assert!(buf.len() <= 104);
        }
        assert_eq!(got, vec![None, Some(b"ok".to_vec())]);
    }

    #[test]
    fn regression_fuzz_partial_data_frame_before_start_is_refused_at_once() {
        // Found by `cargo fuzz run framestream`: a large data frame's header before START was
        // buffered until its declared length arrived.
        let mut s = Session::new(100);
        assert_eq!(s.feed(&[0, 1, 0, 0, 1, 2], |_| {}).unwrap_err(), FrameError::DataBeforeStart);
    }

    #[test]
    fn data_before_start_is_a_framing_error() {
        let mut stream = Vec::new();
        encode_data(&mut stream, b"x");
        assert_eq!(Session::default().feed(&stream, |_| {}).unwrap_err(), FrameError::DataBeforeStart);
    }
}

#[cfg(test)]
mod seeds {
    //! `MAMORI_WRITE_FUZZ_SEEDS=1 cargo test -p mamori-dns write_fuzz_seeds` writes the seed corpus
    //! of `crates/dns/fuzz` (kept in the repository).
    use super::decode::{Role, encode_client_message};
    use super::framestream::{ControlKind, DNSTAP_CONTENT_TYPE, encode_control, encode_data};
    use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn write_fuzz_seeds() {
        if std::env::var_os("MAMORI_WRITE_FUZZ_SEEDS").is_none() {
            return;
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let t = jiff::Timestamp::from_second(1_790_000_000).unwrap();
        let mut payloads = Vec::new();
        for (i, (name, rt, rc)) in [
            ("www.example.com.", RecordType::A, None),
            ("x7f3q.victim.example.", RecordType::AAAA, Some(ResponseCode::NXDomain)),
            ("amp.example.", RecordType::ANY, Some(ResponseCode::NoError)),
            ("c2.bad.test.", RecordType::TXT, Some(ResponseCode::ServFail)),
        ]
        .into_iter()
        .enumerate()
        {
            let mut m = Message::new();
            m.set_id(i as u16).add_query(Query::query(Name::from_ascii(name).unwrap(), rt));
            let role = if let Some(rc) = rc {
                m.set_message_type(MessageType::Response).set_response_code(rc);
                Role::ClientResponse
            } else {
                Role::ClientQuery
            };
            let ip = if i % 2 == 0 { "192.0.2.1" } else { "2001:db8::1" };
            payloads.push(encode_client_message(role, ip.parse().unwrap(), 5300, t, &m.to_vec().unwrap(), b"unbound"));
        }
        for (i, p) in payloads.iter().enumerate() {
            std::fs::write(base.join(format!("dnstap/client-message-{i}")), p).unwrap();
        }
        let mut stream = vec![7u8];
        stream.extend(encode_control(ControlKind::Ready, &[DNSTAP_CONTENT_TYPE]));
        stream.extend(encode_control(ControlKind::Start, &[DNSTAP_CONTENT_TYPE]));
        for p in &payloads {
            encode_data(&mut stream, p);
        }
        stream.extend(encode_control(ControlKind::Stop, &[]));
        std::fs::write(base.join("framestream/bidirectional-session"), &stream).unwrap();
        let lists = [
            ("plain", "# feed 2026-11-01\nc2.example\nbotnet.test.\n"),
            ("hosts", "0.0.0.0 evil.test www.evil.test\n127.0.0.1 localhost\n"),
            (
                "rpz",
                "$TTL 60\n$ORIGIN rpz.example.\n@ SOA ns. admin. 1 3600 600 86400 60\n NS localhost.\ncnc.test CNAME .\n*.cnc.test CNAME .\n",
            ),
        ];
        for (n, text) in lists {
            std::fs::write(base.join(format!("reputation_list/{n}")), text).unwrap();
        }
    }
}
