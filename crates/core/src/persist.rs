//! Small state files beside the database (engines' learned levels): JSON, replaced atomically.
//!
//! A file is written to a temporary file in the same directory, synced, renamed over the old one
//! and the directory synced, so a crash leaves either the old state or the new one, never half
//! of one. Files are readable by their owner only (they may name lines or hosts).

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file's content is not what this build reads.
    #[error("{path}: not a state file this version reads: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl PersistError {
    /// A format error for `path`.
    pub fn format(path: &Path, reason: impl std::fmt::Display) -> Self {
        PersistError::Format { path: path.display().to_string(), reason: reason.to_string() }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io { path: path.display().to_string(), source }
}

/// Reads a JSON state file; `Ok(None)` when there is none yet.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| PersistError::format(path, e))
}

/// [`load_json`] for a file that carries its format version: one of another version than
/// `expected` (what `version_of` reads from it) is refused, naming both.
pub fn load_versioned<T: DeserializeOwned>(
    path: &Path,
    expected: u32,
    version_of: impl Fn(&T) -> u32,
) -> Result<Option<T>, PersistError> {
    let Some(state) = load_json::<T>(path)? else { return Ok(None) };
    let found = version_of(&state);
    if found != expected {
        return Err(PersistError::format(path, format!("format version {found} (this build reads {expected})")));
    }
    Ok(Some(state))
}

/// Writes a JSON state file atomically, mode 0600.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PersistError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let json = serde_json::to_vec(value).map_err(|e| PersistError::format(path, e))?;
    // `NamedTempFile` creates its file with mode 0600; the rename keeps it.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(path))?;
    tmp.write_all(&json).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_replaces_and_loads_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), None, "no file yet");
        save_json(&path, &vec![1u32, 2, 3]).unwrap();
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), Some(vec![1, 2, 3]));
        save_json(&path, &vec![4u32]).unwrap();
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), Some(vec![4]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Nothing else left in the directory (the temporary file was renamed).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"[1, 2").unwrap();
        let e = load_json::<Vec<u32>>(&path).unwrap_err().to_string();
        assert!(e.contains("state.json"), "{e}");
    }
}
