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
//! The file is JSON, written to a temporary file, synced and renamed over the old one, so a
//! crash leaves either the old state or the new one, never half of one.

use std::io::Write;
use std::path::Path;

use jiff::Timestamp;
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

/// Why the learned state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LearnedError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a learned state of this format.
    #[error("{path}: not a learned state this version reads: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LearnedError + '_ {
    move |source| LearnedError::Io { path: path.display().to_string(), source }
}

impl Learned {
    /// Reads the file; `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Learned>, LearnedError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let learned: Learned = serde_json::from_slice(&bytes)
            .map_err(|e| LearnedError::Format { path: path.display().to_string(), reason: e.to_string() })?;
        if learned.version != FORMAT_VERSION {
            return Err(LearnedError::Format {
                path: path.display().to_string(),
                reason: format!("format version {} (this build reads {FORMAT_VERSION})", learned.version),
            });
        }
        Ok(Some(learned))
    }

    /// Writes the file atomically (temporary file, fsync, rename, fsync of the directory),
    /// readable by its owner only: it names lines.
    pub fn save(&self, path: &Path) -> Result<(), LearnedError> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let json = serde_json::to_vec(self)
            .map_err(|e| LearnedError::Format { path: path.display().to_string(), reason: e.to_string() })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(path))?;
        tmp.write_all(&json).map_err(io(path))?;
        tmp.as_file().sync_all().map_err(io(path))?;
        // NamedTempFile is created with mode 0600 already; the rename keeps it.
        tmp.persist(path).map_err(|e| io(path)(e.error))?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(path))?;
        Ok(())
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
