//! Text files as the field delivers them: UTF-8 (with or without a byte-order mark) is read as
//! is; Shift_JIS (the Windows code page 932 variant Japanese sources export, decoded by
//! `encoding_rs`) is converted to UTF-8, when asked for or when auto-detection finds the whole
//! file valid Shift_JIS. A file that is neither is refused as a whole, naming the line and byte
//! offset of the first byte that cannot be read, so nothing of it is half-imported.

use std::borrow::Cow;

use encoding_rs::{DecoderResult, SHIFT_JIS};

/// The encoding a file is read in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 if the file is valid UTF-8, else Shift_JIS if it is valid Shift_JIS.
    #[default]
    Auto,
    /// UTF-8 only.
    Utf8,
    /// Shift_JIS (CP932); a file that is valid UTF-8 (or starts with a UTF-8 byte-order mark)
    /// is still read as UTF-8.
    ShiftJis,
}

impl Encoding {
    /// The name as given on the command line and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf-8",
            Encoding::ShiftJis => "shift_jis",
        }
    }
}

impl std::str::FromStr for Encoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf_8" | "utf8" => Ok(Encoding::Utf8),
            "shift_jis" | "shiftjis" | "sjis" | "cp932" | "windows_31j" => Ok(Encoding::ShiftJis),
            _ => Err(format!("unknown encoding `{s}` (auto, utf-8 or shift_jis)")),
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a file's bytes are not text in the encoding asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// `utf-8` was asked for and the file is not UTF-8.
    #[error(
        "not UTF-8: invalid byte 0x{byte:02x} at line {line}, byte offset {offset}{hint}",
        hint = if *looks_shift_jis { " (the file is valid Shift_JIS: use --encoding shift_jis or auto)" } else { "" }
    )]
    NotUtf8 {
        /// 1-based line of the byte.
        line: u64,
        /// Byte offset in the file.
        offset: usize,
        /// The byte.
        byte: u8,
        /// Whether the whole file decodes as Shift_JIS.
        looks_shift_jis: bool,
    },
    /// Neither UTF-8 nor Shift_JIS.
    #[error(
        "neither UTF-8 nor Shift_JIS: invalid byte 0x{byte:02x} at line {line}, byte offset {offset} \
         (as UTF-8, the first invalid byte is at line {utf8_line}, byte offset {utf8_offset})"
    )]
    Undecodable {
        /// 1-based line of the first byte Shift_JIS cannot read.
        line: u64,
        /// Its byte offset in the file.
        offset: usize,
        /// The byte.
        byte: u8,
        /// 1-based line of the first byte that is not UTF-8.
        utf8_line: u64,
        /// Its byte offset.
        utf8_offset: usize,
    },
}

/// What [`decode`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The text (borrowed when the file was UTF-8), without a byte-order mark.
    pub text: Cow<'a, str>,
    /// The encoding it was read in: [`Encoding::Utf8`] or [`Encoding::ShiftJis`].
    pub encoding: Encoding,
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Reads a whole file's bytes as text (see the module's documentation).
pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<Decoded<'_>, TextError> {
    let (body, skip) = match bytes.strip_prefix(BOM) {
        Some(b) => (b, BOM.len()),
        None => (bytes, 0),
    };
    let utf8_err = match std::str::from_utf8(body) {
        Ok(s) => return Ok(Decoded { text: Cow::Borrowed(s), encoding: Encoding::Utf8 }),
        Err(e) => skip + e.valid_up_to(),
    };
    let byte = bytes.get(utf8_err).copied().unwrap_or_default();
    let sjis = if skip == 0 { shift_jis(bytes) } else { Err(utf8_err) };
    match (encoding, sjis) {
        (Encoding::Auto | Encoding::ShiftJis, Ok(s)) => {
            Ok(Decoded { text: Cow::Owned(s), encoding: Encoding::ShiftJis })
        }
        (Encoding::Utf8, sjis) => Err(TextError::NotUtf8 {
            line: line_of(bytes, utf8_err),
            offset: utf8_err,
            byte,
            looks_shift_jis: sjis.is_ok(),
        }),
        (_, Err(offset)) => Err(TextError::Undecodable {
            line: line_of(bytes, offset),
            offset,
            byte: bytes.get(offset).copied().unwrap_or_default(),
            utf8_line: line_of(bytes, utf8_err),
            utf8_offset: utf8_err,
        }),
    }
}

/// Whether the bytes are valid Shift_JIS (and not plain ASCII, which is UTF-8 too).
pub fn is_shift_jis(bytes: &[u8]) -> bool {
    !bytes.is_ascii() && shift_jis(bytes).is_ok()
}

/// Decodes Shift_JIS without replacement: the text, or the offset of the first malformed byte.
fn shift_jis(bytes: &[u8]) -> Result<String, usize> {
    let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
    let cap = decoder.max_utf8_buffer_length_without_replacement(bytes.len()).unwrap_or(bytes.len() * 3);
    let mut out = String::with_capacity(cap);
    let mut pos = 0usize;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (result, read) = decoder.decode_to_string_without_replacement(rest, &mut out, true);
        pos += read;
        match result {
            DecoderResult::InputEmpty => return Ok(out),
            DecoderResult::OutputFull => out.reserve(rest.len().saturating_sub(read) * 3 + 16),
            DecoderResult::Malformed(bad, after) => {
                return Err(pos.saturating_sub(usize::from(after) + usize::from(bad)));
            }
        }
    }
}

/// 1-based line of a byte offset.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    let before = bytes.get(..offset).unwrap_or(bytes);
    before.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sjis(s: &str) -> Vec<u8> {
        let (b, _, bad) = SHIFT_JIS.encode(s);
        assert!(!bad);
        b.into_owned()
    }

    #[test]
    fn utf8_with_and_without_bom_is_borrowed() {
        let d = decode("\u{feff}都道府県,ip\n東京都,192.0.2.1\n".as_bytes(), Encoding::Auto).unwrap();
        assert_eq!(d.text, "都道府県,ip\n東京都,192.0.2.1\n");
        assert!(matches!(d.text, Cow::Borrowed(_)));
        assert_eq!(d.encoding, Encoding::Utf8);
        let d = decode(b"ip\n192.0.2.1\n", Encoding::ShiftJis).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), ("ip\n192.0.2.1\n", Encoding::Utf8));
    }

    #[test]
    fn shift_jis_is_converted_when_detected_or_asked_for() {
        let text = "都道府県,IPアドレス,機器種別\n東京都,192.0.2.1,ﾙｰﾀ\n大阪府,192.0.2.2,カメラ①\n";
        let bytes = sjis(text);
        assert!(std::str::from_utf8(&bytes).is_err());
        assert!(is_shift_jis(&bytes));
        for enc in [Encoding::Auto, Encoding::ShiftJis] {
            let d = decode(&bytes, enc).unwrap();
            assert_eq!((d.text.as_ref(), d.encoding), (text, Encoding::ShiftJis));
        }
    }

    #[test]
    fn utf8_only_refuses_shift_jis_with_line_and_offset() {
        let mut bytes = b"ip,pref\n192.0.2.1,".to_vec();
        bytes.extend(sjis("東京都\n"));
        let e = decode(&bytes, Encoding::Utf8).unwrap_err();
        assert_eq!(e, TextError::NotUtf8 { line: 2, offset: 18, byte: 0x93, looks_shift_jis: true });
        let msg = e.to_string();
        assert!(msg.contains("line 2") && msg.contains("byte offset 18") && msg.contains("shift_jis"), "{msg}");
    }

    #[test]
    fn undecodable_names_the_first_bad_byte() {
        // Valid Shift_JIS up to line 3, then 0x82 followed by a byte no trail byte can be.
        let mut bytes = sjis("a,b\n東京都,1\n");
        let at = bytes.len() + 2;
        bytes.extend(b"x,\x82\x0a\n");
        for enc in [Encoding::Auto, Encoding::ShiftJis] {
            match decode(&bytes, enc).unwrap_err() {
                TextError::Undecodable { line, offset, byte, .. } => assert_eq!((line, offset, byte), (3, at, 0x82)),
                e => panic!("{e:?}"),
            }
        }
        // 0xff is neither.
        let e = decode(b"ip\n\xff\n", Encoding::Auto).unwrap_err();
        assert!(matches!(e, TextError::Undecodable { line: 2, offset: 3, utf8_offset: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("line 2, byte offset 3"), "{e}");
    }

    #[test]
    fn names_parse() {
        assert_eq!("Shift-JIS".parse(), Ok(Encoding::ShiftJis));
        assert_eq!("utf-8".parse(), Ok(Encoding::Utf8));
        assert_eq!("auto".parse(), Ok(Encoding::Auto));
        assert!("latin1".parse::<Encoding>().is_err());
    }
}
