//! Frame Streams (<https://github.com/farsightsec/fstrm>), the transport of dnstap: a pure codec of
//! bytes, and the bidirectional handshake of the receiving side as a state machine.
//!
//! A data frame is a 32-bit big-endian length (non-zero) and the payload. A control frame starts
//! with an escape (length 0), then the control frame's own length, its type and its fields
//! (`CONTENT_TYPE` = 1, each a 32-bit type, a 32-bit length and the bytes). The writer (the
//! resolver) sends `READY` with the content types it offers, the reader (mamori) answers `ACCEPT`
//! with the one it takes, the writer sends `START`, data frames, then `STOP`, and the reader
//! answers `FINISH`. Every length is checked against the bytes present and a maximum before use.

/// The content type of dnstap payloads.
pub const DNSTAP_CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// The largest control frame accepted (fstrm's own limit is 512 bytes).
pub const MAX_CONTROL_FRAME: usize = 512;
/// The largest data frame accepted by default; larger frames are skipped.
pub const DEFAULT_MAX_DATA_FRAME: usize = 96 * 1024;

const CONTROL_ACCEPT: u32 = 0x01;
const CONTROL_START: u32 = 0x02;
const CONTROL_STOP: u32 = 0x03;
const CONTROL_READY: u32 = 0x04;
const CONTROL_FINISH: u32 = 0x05;
const FIELD_CONTENT_TYPE: u32 = 0x01;
const MAX_CONTROL_FIELDS: usize = 16;

/// The kind of a control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// Reader → writer: the content type is accepted.
    Accept,
    /// Writer → reader: data follows.
    Start,
    /// Writer → reader: no more data.
    Stop,
    /// Writer → reader: offers content types (bidirectional mode).
    Ready,
    /// Reader → writer: the stream is finished.
    Finish,
}

impl ControlKind {
    fn code(self) -> u32 {
        match self {
            ControlKind::Accept => CONTROL_ACCEPT,
            ControlKind::Start => CONTROL_START,
            ControlKind::Stop => CONTROL_STOP,
            ControlKind::Ready => CONTROL_READY,
            ControlKind::Finish => CONTROL_FINISH,
        }
    }
    fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            CONTROL_ACCEPT => ControlKind::Accept,
            CONTROL_START => ControlKind::Start,
            CONTROL_STOP => ControlKind::Stop,
            CONTROL_READY => ControlKind::Ready,
            CONTROL_FINISH => ControlKind::Finish,
            _ => return None,
        })
    }
}

/// A decoded control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Its kind.
    pub kind: ControlKind,
    /// The content types it names.
    pub content_types: Vec<Vec<u8>>,
}

/// One frame taken from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A data frame's payload.
    Data(&'a [u8]),
    /// A data frame longer than the maximum: its bytes were consumed but not returned.
    Oversized(usize),
    /// A control frame.
    Control(Control),
}

/// Why a stream can't be read on: framing is lost, the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A control frame longer than [`MAX_CONTROL_FRAME`].
    #[error("control frame of {0} bytes (max {MAX_CONTROL_FRAME})")]
    ControlTooLong(usize),
    /// A control frame shorter than its type, or a field running past its end.
    #[error("truncated control frame at byte {0}")]
    ControlTruncated(usize),
    /// An unknown control type.
    #[error("unknown control frame type {0:#x}")]
    UnknownControl(u32),
    /// Too many fields in a control frame.
    #[error("control frame with more than {MAX_CONTROL_FIELDS} fields")]
    TooManyFields,
    /// A control frame out of the handshake's order.
    #[error("unexpected {got:?} control frame in state {state}")]
    UnexpectedControl {
        /// What came.
        got: ControlKind,
        /// Where the handshake was.
        state: &'static str,
    },
    /// The writer offered no content type mamori reads.
    #[error("writer offers no dnstap content type")]
    NoCommonContentType,
    /// A data frame before `START`.
    #[error("data frame before START")]
    DataBeforeStart,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Takes one frame from the front of `buf`. Returns `Ok(None)` when more bytes are needed, else the
/// frame and the number of bytes it took. A data frame longer than `max_data` is consumed only once
/// it is complete; callers that don't want to buffer it may use [`skip_len`].
pub fn next_frame(buf: &[u8], max_data: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(len) = be32(buf, 0) else { return Ok(None) };
    if len != 0 {
        let len = len as usize;
        let Some(payload) = buf.get(4..4 + len) else { return Ok(None) };
        if len > max_data {
            return Ok(Some((Frame::Oversized(len), 4 + len)));
        }
        return Ok(Some((Frame::Data(payload), 4 + len)));
    }
    let Some(clen) = be32(buf, 4) else { return Ok(None) };
    let clen = clen as usize;
    if clen > MAX_CONTROL_FRAME {
        return Err(FrameError::ControlTooLong(clen));
    }
    let Some(body) = buf.get(8..8 + clen) else { return Ok(None) };
    Ok(Some((Frame::Control(parse_control(body)?), 8 + clen)))
}

/// The length of the frame at the front of `buf` if it is a data frame whose header is present.
pub fn skip_len(buf: &[u8]) -> Option<usize> {
    match be32(buf, 0)? {
        0 => None,
        n => Some(4 + n as usize),
    }
}

/// Parses a control frame's body (after the escape and length).
pub fn parse_control(body: &[u8]) -> Result<Control, FrameError> {
    let code = be32(body, 0).ok_or(FrameError::ControlTruncated(0))?;
    let kind = ControlKind::from_code(code).ok_or(FrameError::UnknownControl(code))?;
    let mut content_types = Vec::new();
    let mut at = 4;
    while at < body.len() {
        if content_types.len() >= MAX_CONTROL_FIELDS {
            return Err(FrameError::TooManyFields);
        }
        let ftype = be32(body, at).ok_or(FrameError::ControlTruncated(at))?;
        let flen = be32(body, at + 4).ok_or(FrameError::ControlTruncated(at + 4))? as usize;
        let start = at + 8;
        let value = body.get(start..start.saturating_add(flen)).ok_or(FrameError::ControlTruncated(start))?;
        if ftype == FIELD_CONTENT_TYPE {
            content_types.push(value.to_vec());
        }
        at = start + flen;
    }
    Ok(Control { kind, content_types })
}

/// Encodes a control frame (escape, length, type, content-type fields).
pub fn encode_control(kind: ControlKind, content_types: &[&[u8]]) -> Vec<u8> {
    let body_len: usize = 4 + content_types.iter().map(|c| 8 + c.len()).sum::<usize>();
    let mut out = Vec::with_capacity(8 + body_len);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.extend_from_slice(&kind.code().to_be_bytes());
    for c in content_types {
        out.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    out
}

/// Appends a data frame.
pub fn encode_data(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Where the reading side of a bidirectional stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderState {
    /// Waiting for `READY` (or `START` from a unidirectional writer).
    ExpectReady,
    /// `ACCEPT` sent, waiting for `START`.
    ExpectStart,
    /// Data frames flow.
    Data,
    /// `STOP` received, `FINISH` sent: the stream is over.
    Finished,
}

impl ReaderState {
    fn name(self) -> &'static str {
        match self {
            ReaderState::ExpectReady => "expect-ready",
            ReaderState::ExpectStart => "expect-start",
            ReaderState::Data => "data",
            ReaderState::Finished => "finished",
        }
    }

    /// Moves on a control frame; returns the new state and the frame to send back, if any.
    pub fn on_control(self, c: &Control) -> Result<(ReaderState, Option<Vec<u8>>), FrameError> {
        let offers_dnstap =
            |c: &Control| c.content_types.is_empty() || c.content_types.iter().any(|t| t == DNSTAP_CONTENT_TYPE);
        match (self, c.kind) {
            (ReaderState::ExpectReady, ControlKind::Ready) => {
                if !offers_dnstap(c) {
                    return Err(FrameError::NoCommonContentType);
                }
                Ok((ReaderState::ExpectStart, Some(encode_control(ControlKind::Accept, &[DNSTAP_CONTENT_TYPE]))))
            }
            // A unidirectional writer (a file, `fstrm_capture`-style senders) starts at once.
            (ReaderState::ExpectReady | ReaderState::ExpectStart, ControlKind::Start) => {
                if !offers_dnstap(c) {
                    return Err(FrameError::NoCommonContentType);
                }
                Ok((ReaderState::Data, None))
            }
            (ReaderState::Data, ControlKind::Stop) => {
                Ok((ReaderState::Finished, Some(encode_control(ControlKind::Finish, &[]))))
            }
            (state, got) => Err(FrameError::UnexpectedControl { got, state: state.name() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_accepts_dnstap_and_finishes() {
        let ready = encode_control(ControlKind::Ready, &[b"other", DNSTAP_CONTENT_TYPE]);
        let (Frame::Control(c), n) = next_frame(&ready, 1000).unwrap().unwrap() else { panic!() };
        assert_eq!(n, ready.len());
        let (s, reply) = ReaderState::ExpectReady.on_control(&c).unwrap();
        assert_eq!(s, ReaderState::ExpectStart);
        let reply = reply.unwrap();
        let (Frame::Control(accept), _) = next_frame(&reply, 0).unwrap().unwrap() else { panic!() };
        assert_eq!(accept.kind, ControlKind::Accept);
        assert_eq!(accept.content_types, vec![DNSTAP_CONTENT_TYPE.to_vec()]);
        let start = parse_control(&encode_control(ControlKind::Start, &[DNSTAP_CONTENT_TYPE])[8..]).unwrap();
        let (s, _) = s.on_control(&start).unwrap();
        assert_eq!(s, ReaderState::Data);
        let stop = parse_control(&encode_control(ControlKind::Stop, &[])[8..]).unwrap();
        let (s, fin) = s.on_control(&stop).unwrap();
        assert_eq!(s, ReaderState::Finished);
        assert_eq!(parse_control(&fin.unwrap()[8..]).unwrap().kind, ControlKind::Finish);
    }

    #[test]
    fn wrong_content_type_is_refused() {
        let ready = parse_control(&encode_control(ControlKind::Ready, &[b"protobuf:other"])[8..]).unwrap();
        assert_eq!(ReaderState::ExpectReady.on_control(&ready), Err(FrameError::NoCommonContentType));
    }

    #[test]
    fn out_of_order_control_is_an_error() {
        let stop = parse_control(&encode_control(ControlKind::Stop, &[])[8..]).unwrap();
        assert!(matches!(ReaderState::ExpectReady.on_control(&stop), Err(FrameError::UnexpectedControl { .. })));
    }

    #[test]
    fn partial_frames_need_more_bytes() {
        let mut buf = Vec::new();
        encode_data(&mut buf, b"hello");
        for cut in 0..buf.len() {
            assert_eq!(next_frame(&buf[..cut], 100).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(next_frame(&buf, 100).unwrap(), Some((Frame::Data(b"hello"), 9)));
        assert_eq!(next_frame(&buf, 3).unwrap(), Some((Frame::Oversized(5), 9)));
    }

    #[test]
    fn hostile_control_frames_are_errors_not_panics() {
        // Declared longer than allowed.
        let mut b = vec![0, 0, 0, 0];
        b.extend_from_slice(&10_000u32.to_be_bytes());
        assert_eq!(next_frame(&b, 100), Err(FrameError::ControlTooLong(10_000)));
        // A field whose length runs past the frame.
        let mut body = CONTROL_READY.to_be_bytes().to_vec();
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(parse_control(&body), Err(FrameError::ControlTruncated(_))));
        // Empty and unknown.
        assert_eq!(parse_control(&[]), Err(FrameError::ControlTruncated(0)));
        assert_eq!(parse_control(&[0, 0, 0, 9]), Err(FrameError::UnknownControl(9)));
    }
}
