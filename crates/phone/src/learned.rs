//! What the engine has learned, kept across restarts of the live service.
//!
//! The engine's normal levels (each line's charge level and two-hour sum, each country's
//! concurrent calls) are learned from weeks of history; without this file a restart of
//! `mamori serve` would forget them, leaving every line judged against the fixed floors until it
//! had learned again, and restarting the dormant lines' clocks.
//!
//! Only what stage 1 of `phone.suspend-line-on-surge`, `phone.restrict-country` and
//! `phone.suspend-dormant` read is kept: charge levels per line, a line's last call abroad, and
//! per-country volumes. A line's own addresses, calling numbers and destinations (stage-2 data,
//! read only for a line under suspicion) are not written to disk; they are learned again.
//!
//! The file is JSON, replaced atomically ([`mamori_core::persist`]): a crash leaves either the
//! old state or the new one, never half of one.

use std::path::Path;

use jiff::Timestamp;
use mamori_core::persist::{self, PersistError};
use serde::{Deserialize, Serialize};

use crate::learn::LaggedPeak;

/// The file's format version; a file of another version is ignored (and said so).
pub const FORMAT_VERSION: u32 = 1;

/// The learned state of an engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// [`FORMAT_VERSION`] when written.
    pub version: u32,
    /// The engine's clock when taken.
    pub taken_at: Timestamp,
    /// When the engine first saw a call (countries are judged only after a day of watching).
    pub first_seen: Option<Timestamp>,
    /// Per line.
    pub lines: Vec<LineLearned>,
    /// Per country calling code.
    pub countries: Vec<CountryLearned>,
}

/// One line's learned levels (stage-1 data only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineLearned {
    /// The line id.
    pub line_id: String,
    /// Normal charge in a surge window.
    pub normal: LaggedPeak,
    /// Normal two-hour charge sum.
    pub normal_sustained: LaggedPeak,
    /// When the line was first seen.
    pub known_since: Timestamp,
    /// Its last call abroad.
    pub last_international: Option<Timestamp>,
}

/// One country's learned volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryLearned {
    /// Calling code.
    pub code: u16,
    /// Normal concurrent calls.
    pub normal: LaggedPeak,
}

impl Learned {
    /// Reads the file; `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Learned>, PersistError> {
        persist::load_versioned(path, FORMAT_VERSION, |l: &Learned| l.version)
    }

    /// Writes the file atomically, readable by its owner only: it names lines.
    pub fn save(&self, path: &Path) -> Result<(), PersistError> {
        persist::save_json(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Learned {
        let t: Timestamp = "2026-11-24T01:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
        let mut normal = LaggedPeak::default();
        normal.observe(t, 500.0, false, jiff::SignedDuration::from_hours(24));
        Learned {
            version: FORMAT_VERSION,
            taken_at: t,
            first_seen: Some(t),
            lines: vec![LineLearned {
                line_id: "0312345678".into(),
                normal: normal.clone(),
                normal_sustained: LaggedPeak::default(),
                known_since: t,
                last_international: None,
            }],
            countries: vec![CountryLearned { code: 44, normal }],
        }
    }

    #[test]
    fn saves_and_loads_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone-learned.json");
        assert!(Learned::load(&path).unwrap().is_none(), "no file yet");
        let s = sample();
        s.save(&path).unwrap();
        assert_eq!(Learned::load(&path).unwrap(), Some(s.clone()));
        // Saving again replaces it whole.
        let mut t = s;
        t.lines.clear();
        t.save(&path).unwrap();
        assert_eq!(Learned::load(&path).unwrap(), Some(t));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone-learned.json");
        std::fs::write(&path, b"{\"version\": 1, \"taken_at\": ").unwrap();
        let e = Learned::load(&path).unwrap_err().to_string();
        assert!(e.contains("phone-learned.json"), "{e}");
        let mut s = sample();
        s.version = 99;
        std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
        let e = Learned::load(&path).unwrap_err().to_string();
        assert!(e.contains("format version 99"), "{e}");
    }
}
