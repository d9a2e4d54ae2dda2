//! Report text: UTF-8 only. Japanese sources often deliver Shift_JIS (CP932); such a file is
//! recognised and refused with its name, rather than read as garbage.

/// Why a file's bytes are not usable text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The file looks like Shift_JIS.
    #[error(
        "{file}: the file is encoded in Shift_JIS, not UTF-8 (first non-UTF-8 byte at offset {offset}); \
         convert it first, e.g. `iconv -f SHIFT_JIS -t UTF-8 {file} > report-utf8.csv`"
    )]
    ShiftJis {
        /// The file.
        file: String,
        /// Byte offset of the first byte that is not UTF-8.
        offset: usize,
    },
    /// Neither UTF-8 nor Shift_JIS.
    #[error("{file}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The file.
        file: String,
        /// Byte offset.
        offset: usize,
    },
}

/// The text of a report (a UTF-8 BOM removed), or why it has none.
pub fn text<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, DecodeError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let offset = e.valid_up_to();
            if looks_like_shift_jis(bytes) {
                Err(DecodeError::ShiftJis { file: file.to_owned(), offset })
            } else {
                Err(DecodeError::NotUtf8 { file: file.to_owned(), offset })
            }
        }
    }
}

/// Whether the bytes parse as Shift_JIS (CP932) with at least one double-byte or half-width
/// katakana character and no invalid sequence.
pub fn looks_like_shift_jis(bytes: &[u8]) -> bool {
    let mut i = 0;
    let mut multibyte = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0x00..=0x7f => i += 1,
            0xa1..=0xdf => {
                multibyte += 1;
                i += 1;
            }
            0x81..=0x9f | 0xe0..=0xfc => {
                let Some(&t) = bytes.get(i + 1) else { return false };
                if !matches!(t, 0x40..=0x7e | 0x80..=0xfc) {
                    return false;
                }
                multibyte += 1;
                i += 2;
            }
            _ => return false,
        }
    }
    multibyte > 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn utf8_with_bom_is_read() {
        assert_eq!(text(b"\xef\xbb\xbfip,port\n", "r.csv").unwrap(), "ip,port\n");
    }

    #[test]
    fn shift_jis_is_named() {
        // "IPアドレス,ポート" in Shift_JIS
        let sjis = b"IP\x83\x41\x83\x68\x83\x8c\x83\x58,\x83\x7c\x81\x5b\x83\x67\n";
        let e = text(sjis, "notice.csv").unwrap_err();
        assert!(matches!(e, DecodeError::ShiftJis { .. }), "{e:?}");
        assert!(e.to_string().contains("notice.csv") && e.to_string().contains("Shift_JIS"));
    }

    #[test]
    fn other_garbage_is_not_utf8() {
        let e = text(b"ip\xff\xfe\n", "x.csv").unwrap_err();
        assert!(matches!(e, DecodeError::NotUtf8 { offset: 2, .. }), "{e:?}");
    }
}
