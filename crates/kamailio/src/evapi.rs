//! Live call events from Kamailio's `evapi` module (mamori connects as a client).
//!
//! `examples/kamailio/kamailio.cfg` relays one JSON object per event, netstring-framed
//! (`evapi` `netstring_format = 1`, e.g. `73:{"event":"call-end",…},`):
//!
//! ```json
//! {"event":"call-start","call_id":"…","line_id":"0312340001","calling_number":"0312340001",
//!  "called_number":"01088213456789","source_ip":"127.0.0.1","ts":1795524277.4068029}
//! {"event":"call-end","call_id":"…","ts":1795524277.911813}
//! ```
//!
//! [`NetstringDecoder`] splits the byte stream, [`parse_event`] turns one payload into a
//! [`CallEvent`], and [`EvapiClient`] keeps a connection up (reconnecting with backoff when
//! Kamailio restarts) and hands each event to a callback. A bad message is counted and skipped;
//! broken framing drops the connection and reconnects (netstrings can't be resynchronized). Errors
//! never quote message content: numbers, line ids and addresses are subscriber data.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use mamori_phone::live::{CallEnd, CallEvent, CallStart};
use serde_json::{Map, Value};

/// Largest message accepted (a call-start is about 200 bytes).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest Call-ID accepted.
const MAX_CALL_ID: usize = 512;
/// Longest line id or number accepted.
const MAX_FIELD: usize = 128;

/// The stream's framing is broken: the connection must be reset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix isn't digits followed by `:`.
    #[error("bad netstring length prefix at byte {offset}")]
    BadLength {
        /// Offset in the connection's stream.
        offset: u64,
    },
    /// A message longer than [`MAX_MESSAGE_BYTES`].
    #[error("netstring of {len} bytes at byte {offset} exceeds the {max}-byte limit")]
    TooLong {
        /// Announced length.
        len: usize,
        /// Offset in the connection's stream.
        offset: u64,
        /// The limit.
        max: usize,
    },
    /// The payload isn't followed by `,`.
    #[error("netstring at byte {offset} is not terminated by ','")]
    MissingComma {
        /// Offset in the connection's stream.
        offset: u64,
    },
}

/// Splits a byte stream into netstring payloads (`LEN:PAYLOAD,`).
#[derive(Debug, Default)]
pub struct NetstringDecoder {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    offset: u64,
}

impl NetstringDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete payload, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let offset = self.offset;
        let digits = self.buf.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == self.buf.len() {
            // Only digits so far: wait for the colon (but not forever).
            return if digits > 7 { Err(FrameError::BadLength { offset }) } else { Ok(None) };
        }
        if digits == 0 || self.buf[digits] != b':' || digits > 7 {
            return Err(FrameError::BadLength { offset });
        }
        let mut len = 0usize;
        for d in &self.buf[..digits] {
            len = len * 10 + usize::from(d - b'0');
        }
        if len > MAX_MESSAGE_BYTES {
            return Err(FrameError::TooLong { len, offset, max: MAX_MESSAGE_BYTES });
        }
        let start = digits + 1;
        let end = start + len;
        if self.buf.len() <= end {
            return Ok(None);
        }
        if self.buf[end] != b',' {
            return Err(FrameError::MissingComma { offset });
        }
        let payload = self.buf[start..end].to_vec();
        self.buf.drain(..=end);
        self.offset += (end + 1) as u64;
        Ok(Some(payload))
    }

    /// Bytes buffered but not yet a complete message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Why a message was skipped. The text never quotes field values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or not an object.
    #[error("not a JSON object ({0})")]
    NotJson(String),
    /// `event` is missing or unknown.
    #[error("unknown or missing `event` (expected call-start or call-end)")]
    UnknownEvent,
    /// A required field is missing or not a string.
    #[error("`{0}` is missing or not a string")]
    Missing(&'static str),
    /// A field is empty, too long or has control characters.
    #[error("`{0}` is empty, too long or has control characters")]
    BadText(&'static str),
    /// `source_ip` is not an IP address.
    #[error("`source_ip` is not an IP address")]
    BadIp,
    /// `ts` is missing, not a number of seconds, or out of range.
    #[error("`ts` is missing or not Unix seconds")]
    BadTime,
    /// `charge_jpy` is not a non-negative integer.
    #[error("`charge_jpy` is not a non-negative integer")]
    BadCharge,
}

/// Parses one evapi message.
pub fn parse_event(payload: &[u8]) -> Result<CallEvent, EventError> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        // serde_json's messages may quote input; keep only the category and position.
        EventError::NotJson(format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()))
    })?;
    let Value::Object(obj) = value else { return Err(EventError::NotJson("not an object".into())) };
    let at = timestamp(&obj)?;
    match obj.get("event").and_then(Value::as_str) {
        Some("call-start") => Ok(CallEvent::Start(CallStart {
            call_id: text(&obj, "call_id", MAX_CALL_ID)?,
            line_id: text(&obj, "line_id", MAX_FIELD)?,
            calling_number: text(&obj, "calling_number", MAX_FIELD)?,
            called_number: text(&obj, "called_number", MAX_FIELD)?,
            source_ip: obj
                .get("source_ip")
                .and_then(Value::as_str)
                .ok_or(EventError::Missing("source_ip"))?
                .parse::<IpAddr>()
                .map_err(|_| EventError::BadIp)?,
            at,
        })),
        Some("call-end") => Ok(CallEvent::End(CallEnd {
            call_id: text(&obj, "call_id", MAX_CALL_ID)?,
            at,
            charge_jpy: match obj.get("charge_jpy") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or(EventError::BadCharge)?),
            },
        })),
        _ => Err(EventError::UnknownEvent),
    }
}

fn text(obj: &Map<String, Value>, field: &'static str, max: usize) -> Result<String, EventError> {
    let s = obj.get(field).and_then(Value::as_str).ok_or(EventError::Missing(field))?;
    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
        return Err(EventError::BadText(field));
    }
    Ok(s.to_owned())
}

/// `ts`: Unix seconds with a fraction, as a number or a numeric string.
fn timestamp(obj: &Map<String, Value>) -> Result<Timestamp, EventError> {
    let secs = match obj.get("ts") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or(EventError::BadTime)?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(EventError::BadTime);
    }
    let whole = secs.trunc();
    // Microseconds are what Kamailio has; rounding there avoids 0.999999 artefacts of f64.
    let micros = ((secs - whole) * 1e6).round() as i64;
    let whole = whole as i64;
    Timestamp::new(whole, 0)
        .and_then(|t| t.checked_add(jiff::SignedDuration::from_micros(micros)))
        .map_err(|_| EventError::BadTime)
}

/// Decodes a whole byte string (all complete messages, stopping at broken framing): the fuzz
/// target's entry point and a convenience for tests.
pub fn decode_all(bytes: &[u8]) -> (Vec<Result<CallEvent, EventError>>, Option<FrameError>) {
    let mut dec = NetstringDecoder::new();
    dec.push(bytes);
    let mut out = Vec::new();
    loop {
        match dec.next_frame() {
            Ok(Some(p)) => out.push(parse_event(&p)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Counters of an [`EvapiClient`] (also exported as Prometheus metrics).
#[derive(Debug, Default)]
pub struct EvapiStats {
    /// Successful connections.
    pub connects: AtomicU64,
    /// Events handed on.
    pub events: AtomicU64,
    /// Messages skipped as malformed.
    pub bad_messages: AtomicU64,
    /// Connections dropped for broken framing.
    pub framing_errors: AtomicU64,
}

/// What the client reports to its consumer.
#[derive(Debug)]
pub enum Feed {
    /// A connection to Kamailio was (re)established: Kamailio may have restarted with empty
    /// htables, so this is the moment to reconcile.
    Connected,
    /// A call event.
    Event(CallEvent),
    /// The connection was lost; the client reconnects with backoff.
    Disconnected,
}

/// Prometheus metric names.
pub mod metric {
    /// Call events received from Kamailio.
    pub const EVENTS: &str = "mamori_kamailio_evapi_events_total";
    /// Malformed evapi messages skipped.
    pub const BAD_MESSAGES: &str = "mamori_kamailio_evapi_bad_messages_total";
    /// evapi connections established.
    pub const CONNECTS: &str = "mamori_kamailio_evapi_connects_total";

    /// Registers the help texts with the installed recorder.
    pub fn describe() {
        metrics::describe_counter!(EVENTS, "Call events received from Kamailio over evapi");
        metrics::describe_counter!(
            BAD_MESSAGES,
            "Malformed evapi messages skipped (and connections reset for broken framing)"
        );
        metrics::describe_counter!(CONNECTS, "Connections to Kamailio's evapi listener established");
    }
}

/// Keeps a connection to Kamailio's evapi listener and hands on what arrives.
#[derive(Debug)]
pub struct EvapiClient {
    addr: SocketAddr,
    stats: EvapiStats,
    /// How long one read waits before the stop flag is checked again.
    poll: Duration,
    max_backoff: Duration,
}

impl EvapiClient {
    /// A client of the evapi listener at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        EvapiClient {
            addr,
            stats: EvapiStats::default(),
            poll: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The longest wait between reconnection attempts (default 5 s).
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d.max(Duration::from_millis(10));
        self
    }

    /// Counters.
    pub fn stats(&self) -> &EvapiStats {
        &self.stats
    }

    /// Runs until `stop` is set: connects, reads, reconnects. Blocks the calling thread.
    pub fn run(&self, stop: &AtomicBool, sink: &mut dyn FnMut(Feed)) {
        let initial = Duration::from_millis(100).min(self.max_backoff);
        let mut backoff = initial;
        let mut warned = false;
        while !stop.load(Ordering::Relaxed) {
            match TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)) {
                Ok(stream) => {
                    backoff = initial;
                    warned = false;
                    self.stats.connects.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(metric::CONNECTS).increment(1);
                    tracing::info!(evapi = %self.addr, "connected to Kamailio evapi");
                    sink(Feed::Connected);
                    let why = self.read_loop(stream, stop, sink);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tracing::warn!(evapi = %self.addr, reason = %why, "Kamailio evapi connection lost; reconnecting");
                    sink(Feed::Disconnected);
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(evapi = %self.addr, error = %e, "cannot connect to Kamailio evapi; retrying with backoff");
                        warned = true;
                    } else {
                        tracing::debug!(evapi = %self.addr, error = %e, "evapi connect failed");
                    }
                }
            }
            sleep_unless_stopped(backoff, stop);
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }

    fn read_loop(&self, mut stream: TcpStream, stop: &AtomicBool, sink: &mut dyn FnMut(Feed)) -> String {
        if let Err(e) = stream.set_read_timeout(Some(self.poll)) {
            return format!("cannot set a read timeout: {e}");
        }
        let mut dec = NetstringDecoder::new();
        let mut buf = vec![0u8; 16 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let n = match stream.read(&mut buf) {
                Ok(0) => return "closed by Kamailio".into(),
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue;
                }
                Err(e) => return format!("read error: {e}"),
            };
            dec.push(&buf[..n]);
            loop {
                match dec.next_frame() {
                    Ok(Some(payload)) => match parse_event(&payload) {
                        Ok(ev) => {
                            self.stats.events.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!(metric::EVENTS).increment(1);
                            sink(Feed::Event(ev));
                        }
                        Err(e) => {
                            self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!(metric::BAD_MESSAGES).increment(1);
                            tracing::warn!(evapi = %self.addr, bytes = payload.len(), error = %e, "skipped a malformed evapi message");
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        self.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(metric::BAD_MESSAGES).increment(1);
                        return format!("broken framing: {e}");
                    }
                }
            }
        }
        "stopping".into()
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::Arc;

    const START: &str = r#"{"event":"call-start","call_id":"1-15959@127.0.0.1","line_id":"0312340001","calling_number":"0312340001","called_number":"01088213456789","source_ip":"127.0.0.1","ts":1795524277.4068029}"#;
    const END: &str = r#"{"event":"call-end","call_id":"1-15959@127.0.0.1","ts":1795524277.911813}"#;

    fn ns(s: &str) -> String {
        format!("{}:{s},", s.len())
    }

    #[test]
    fn parses_what_kamailio_sends() {
        // Captured from kamailio 5.6 running examples/kamailio/kamailio.cfg.
        let wire = format!("{}{}", ns(START), ns(END));
        assert!(wire.starts_with("186:"));
        let (events, err) = decode_all(wire.as_bytes());
        assert_eq!(err, None);
        let CallEvent::Start(s) = events[0].clone().unwrap() else { panic!() };
        assert_eq!(s.call_id, "1-15959@127.0.0.1");
        assert_eq!(s.line_id, "0312340001");
        assert_eq!(s.called_number, "01088213456789");
        assert_eq!(s.source_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s.at, Timestamp::new(1795524277, 406_803_000).unwrap());
        let CallEvent::End(e) = events[1].clone().unwrap() else { panic!() };
        assert_eq!(e.at, Timestamp::new(1795524277, 911_813_000).unwrap());
        assert_eq!(e.charge_jpy, None);
    }

    #[test]
    fn frames_split_anywhere() {
        let wire = format!("{}{}{}", ns(START), ns(END), ns(START));
        for cut in 0..wire.len() {
            let mut dec = NetstringDecoder::new();
            let mut got = Vec::new();
            for chunk in [&wire.as_bytes()[..cut], &wire.as_bytes()[cut..]] {
                dec.push(chunk);
                while let Some(p) = dec.next_frame().unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(got.len(), 3, "cut at {cut}");
            assert_eq!(dec.pending(), 0);
        }
    }

    #[test]
    fn bad_messages_are_typed_and_quote_nothing() {
        let cases = [
            (
                r#"{"event":"call-start","call_id":"c","line_id":"L","calling_number":"0312","called_number":"010882","source_ip":"nope-0312","ts":1}"#,
                EventError::BadIp,
            ),
            (
                r#"{"event":"call-start","call_id":"c","calling_number":"0312","called_number":"010882","source_ip":"1.2.3.4","ts":1}"#,
                EventError::Missing("line_id"),
            ),
            (r#"{"event":"call-end","call_id":"c"}"#, EventError::BadTime),
            (r#"{"event":"call-end","call_id":"c","ts":-5}"#, EventError::BadTime),
            (r#"{"event":"call-end","call_id":"c","ts":"1e400"}"#, EventError::BadTime),
            (r#"{"event":"call-end","call_id":"","ts":1}"#, EventError::BadText("call_id")),
            (r#"{"event":"call-end","call_id":"a\u0000b","ts":1}"#, EventError::BadText("call_id")),
            (r#"{"event":"call-end","call_id":"c","ts":1,"charge_jpy":-3}"#, EventError::BadCharge),
            (r#"{"event":"register","ts":1}"#, EventError::UnknownEvent),
        ];
        for (msg, want) in cases {
            assert_eq!(parse_event(msg.as_bytes()).unwrap_err(), want, "{msg}");
        }
        let e = parse_event(br#"{"event":"call-end","call_id":0312340001}"#).unwrap_err();
        assert!(matches!(e, EventError::NotJson(_)));
        assert!(!e.to_string().contains("0312340001"), "{e}");
        let e = parse_event(br#"["0312340001"]"#).unwrap_err();
        assert!(!e.to_string().contains("0312340001"), "{e}");
        // A string ts and a charge are accepted.
        let ok = parse_event(br#"{"event":"call-end","call_id":"c","ts":"1795524277.5","charge_jpy":120}"#).unwrap();
        assert_eq!(
            ok,
            CallEvent::End(CallEnd {
                call_id: "c".into(),
                at: Timestamp::new(1795524277, 500_000_000).unwrap(),
                charge_jpy: Some(120)
            })
        );
    }

    #[test]
    fn broken_framing_is_reported() {
        assert!(matches!(decode_all(b"x:{},").1, Some(FrameError::BadLength { offset: 0 })));
        assert!(matches!(decode_all(b":{},").1, Some(FrameError::BadLength { .. })));
        assert!(matches!(decode_all(b"2:{}X").1, Some(FrameError::MissingComma { .. })));
        assert!(matches!(decode_all(b"99999999").1, Some(FrameError::BadLength { .. })));
        assert!(matches!(decode_all(b"9999999:").1, Some(FrameError::TooLong { .. })));
        let wire = format!("{}2:{{}}X", ns(END));
        let (events, err) = decode_all(wire.as_bytes());
        assert_eq!(events.len(), 1);
        assert!(events[0].is_ok());
        // The error names the stream offset of the broken frame.
        assert_eq!(err, Some(FrameError::MissingComma { offset: ns(END).len() as u64 }));
        // Incomplete input is not an error.
        assert_eq!(decode_all(b"12:{\"ev").1, None);
    }

    /// A tiny deterministic generator (xorshift) so the randomized test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The stand-in for `cargo fuzz` on machines without nightly (see fuzz/README.md): random
    /// bytes, random mutations of real messages and random chunking never panic, and decoding in
    /// chunks gives what decoding at once gives.
    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let seeds: Vec<Vec<u8>> = vec![
            format!("{}{}", ns(START), ns(END)).into_bytes(),
            ns(r#"{"event":"call-end","call_id":"c","ts":"1.5","charge_jpy":3}"#).into_bytes(),
            b"0:,".to_vec(),
        ];
        for i in 0..20_000 {
            let mut input = if i % 4 == 0 {
                (0..rng.below(300)).map(|_| rng.next() as u8).collect::<Vec<u8>>()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            for _ in 0..rng.below(6) {
                if input.is_empty() {
                    break;
                }
                let at = rng.below(input.len());
                match rng.below(4) {
                    0 => input[at] = rng.next() as u8,
                    1 => {
                        input.remove(at);
                    }
                    2 => input.insert(at, b"0123456789:,{}\"\\"[rng.below(16)]),
                    _ => input.truncate(at),
                }
            }
            let whole = decode_all(&input);
            let mut dec = NetstringDecoder::new();
            let mut chunked = Vec::new();
            let mut err = None;
            let mut rest = &input[..];
            'outer: while !rest.is_empty() {
                let n = 1 + rng.below(rest.len());
                dec.push(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match dec.next_frame() {
                        Ok(Some(p)) => chunked.push(parse_event(&p)),
                        Ok(None) => break,
                        Err(e) => {
                            err = Some(e);
                            break 'outer;
                        }
                    }
                }
            }
            assert_eq!(whole.0, chunked, "input {input:?}");
            assert_eq!(whole.1.is_some(), err.is_some(), "input {input:?}");
        }
    }

    /// Replays the fuzz corpus (fuzz/corpus/evapi) with the fuzz target's checks, on stable.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/evapi");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let Some((&chunk, stream)) = data.split_first() else { continue };
            let whole = decode_all(stream);
            let mut dec = NetstringDecoder::new();
            let mut chunked = Vec::new();
            let mut err = None;
            'outer: for piece in stream.chunks(usize::from(chunk).max(1)) {
                dec.push(piece);
                loop {
                    match dec.next_frame() {
                        Ok(Some(p)) => chunked.push(parse_event(&p)),
                        Ok(None) => break,
                        Err(e) => {
                            err = Some(e);
                            break 'outer;
                        }
                    }
                }
            }
            assert_eq!(whole, (chunked, err));
            let _ = parse_event(stream);
            n += 1;
        }
        assert!(n >= 5, "the corpus is missing");
    }

    #[test]
    fn client_reads_skips_bad_messages_and_reconnects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            // First connection: one good event, one bad, one good, then close.
            let (mut s, _) = listener.accept().unwrap();
            let bad = r#"{"event":"call-end"}"#;
            s.write_all(format!("{}{}{}", ns(START), ns(bad), &ns(END)[..10]).as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(&ns(END).as_bytes()[10..]).unwrap();
            drop(s);
            // Second connection (Kamailio restarted): broken framing, then the client reconnects.
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"zz").unwrap();
            let (mut s2, _) = listener.accept().unwrap();
            s2.write_all(ns(END).as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(s);
        });
        let client = Arc::new(EvapiClient::new(addr).max_backoff(Duration::from_millis(50)));
        let stop = Arc::new(AtomicBool::new(false));
        let mut feed = Vec::new();
        let c = client.clone();
        let st = stop.clone();
        let t = std::thread::spawn(move || {
            c.run(&st, &mut |f| {
                let done = matches!(f, Feed::Event(_));
                feed.push(f);
                let events = feed.iter().filter(|f| matches!(f, Feed::Event(_))).count();
                if done && events == 3 {
                    st.store(true, Ordering::Relaxed);
                }
            });
            feed
        });
        let feed = t.join().unwrap();
        server.join().unwrap();
        let kinds: Vec<&str> = feed
            .iter()
            .map(|f| match f {
                Feed::Connected => "connected",
                Feed::Event(CallEvent::Start(_)) => "start",
                Feed::Event(CallEvent::End(_)) => "end",
                Feed::Disconnected => "disconnected",
            })
            .collect();
        assert_eq!(
            kinds,
            ["connected", "start", "end", "disconnected", "connected", "disconnected", "connected", "end"]
        );
        assert_eq!(client.stats().bad_messages.load(Ordering::Relaxed), 1);
        assert_eq!(client.stats().framing_errors.load(Ordering::Relaxed), 1);
        assert_eq!(client.stats().connects.load(Ordering::Relaxed), 3);
    }
}
