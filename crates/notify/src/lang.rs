//! The two languages subscribers are told in.

use serde::Serialize;

/// A subscriber's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Japanese (the default).
    #[default]
    Ja,
    /// English.
    En,
}

impl Lang {
    /// `ja` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    /// Parses `ja`/`en` (also `jpn`, `japanese`, `eng`, `english`, `en-US`, any case); `None` for others.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let primary = s.split(['-', '_']).next().unwrap_or_default();
        match primary {
            "ja" | "jp" | "jpn" | "japanese" => Some(Lang::Ja),
            "en" | "eng" | "english" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other one (the page's language switch).
    pub fn other(self) -> Self {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }
}
