//! Report text: UTF-8 (with or without a byte-order mark) is read as is; Shift_JIS, which
//! Japanese sources often deliver, is converted to UTF-8 when `--encoding shift_jis` says so or
//! when auto-detection (the default) finds the whole file valid Shift_JIS. A file that is
//! neither is refused as a whole with its name, the line and the byte offset of the first byte
//! that cannot be read (see [`mamori_attribution::text`]).

pub use mamori_attribution::text::{Decoded, Encoding, TextError};

/// Why a file's bytes are not usable text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {error}")]
pub struct DecodeError {
    /// The file.
    pub file: String,
    /// What is wrong, and where.
    pub error: TextError,
}

/// The text of a report (a UTF-8 byte-order mark removed, Shift_JIS converted), or why it has
/// none.
pub fn text<'a>(bytes: &'a [u8], file: &str, encoding: Encoding) -> Result<Decoded<'a>, DecodeError> {
    mamori_attribution::text::decode(bytes, encoding).map_err(|error| DecodeError { file: file.to_owned(), error })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn utf8_with_bom_is_read() {
        assert_eq!(text(b"\xef\xbb\xbfip,port\n", "r.csv", Encoding::Auto).unwrap().text, "ip,port\n");
    }

    #[test]
    fn shift_jis_is_converted() {
        // "IPアドレス,ポート" in Shift_JIS
        let sjis = b"IP\x83\x41\x83\x68\x83\x8c\x83\x58,\x83\x7c\x81\x5b\x83\x67\n";
        let d = text(sjis, "notice.csv", Encoding::Auto).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), ("IPアドレス,ポート\n", Encoding::ShiftJis));
        let e = text(sjis, "notice.csv", Encoding::Utf8).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("notice.csv: not UTF-8") && msg.contains("line 1, byte offset 2"), "{msg}");
    }

    #[test]
    fn other_garbage_is_refused_with_its_position() {
        let e = text(b"ip\xff\xfe\n", "x.csv", Encoding::Auto).unwrap_err();
        assert!(matches!(e.error, TextError::Undecodable { line: 1, offset: 2, .. }), "{e:?}");
        assert!(e.to_string().starts_with("x.csv: neither UTF-8 nor Shift_JIS"), "{e}");
    }
}
