//! Telephone numbers as the CDR writes them, kept as digits so a row is formatted without allocating.

/// How a number is written in the CDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// As dialled in Japan: `0` + national number (domestic only).
    National,
    /// As dialled abroad from Japan: `010` + calling code + national number.
    InternationalPrefix,
    /// E.164: `+` + calling code + national number (`+81…` for Japan).
    E164,
    /// A bare extension-like string of digits, as spoofed calling numbers often are.
    Bare,
    /// Presentation withheld (`anonymous`).
    Anonymous,
}

/// A number: its national significant number as digits, its calling code and how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Number {
    /// National significant number (no leading 0), or the bare digits.
    pub digits: u64,
    /// How many digits `digits` is written with (zero-padded).
    pub len: u8,
    /// Calling code (81 for Japan).
    pub cc: u16,
    /// How it is written.
    pub form: Form,
}

impl Number {
    /// The same number written another way.
    pub fn with_form(self, form: Form) -> Number {
        Number { form, ..self }
    }

    /// Appends the number as it appears in the CDR.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self.form {
            Form::National => out.push(b'0'),
            Form::InternationalPrefix => {
                out.extend_from_slice(b"010");
                push_u64(out, u64::from(self.cc));
            }
            Form::E164 => {
                out.push(b'+');
                push_u64(out, u64::from(self.cc));
            }
            Form::Bare => {}
            Form::Anonymous => {
                out.extend_from_slice(b"anonymous");
                return;
            }
        }
        push_padded(out, self.digits, self.len);
    }

    /// The number as a string (for line ids and the subscriber file).
    pub fn to_text(self) -> String {
        let mut v = Vec::with_capacity(20);
        self.write(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

/// Appends `n` in decimal, left-padded with zeros to `width` digits.
pub(crate) fn push_padded(out: &mut Vec<u8>, n: u64, width: u8) {
    let mut buf = itoa::Buffer::new();
    let s = buf.format(n).as_bytes();
    for _ in s.len()..usize::from(width) {
        out.push(b'0');
    }
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_written_as_dialled() {
        let tokyo = Number { digits: 312345678, len: 9, cc: 81, form: Form::National };
        assert_eq!(tokyo.to_text(), "0312345678");
        assert_eq!(tokyo.with_form(Form::E164).to_text(), "+81312345678");
        let london = Number { digits: 2079460123, len: 10, cc: 44, form: Form::InternationalPrefix };
        assert_eq!(london.to_text(), "010442079460123");
        assert_eq!(london.with_form(Form::E164).to_text(), "+442079460123");
        assert_eq!(Number { digits: 7, len: 4, cc: 0, form: Form::Bare }.to_text(), "0007");
        assert_eq!(tokyo.with_form(Form::Anonymous).to_text(), "anonymous");
    }
}
