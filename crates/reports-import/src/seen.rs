//! What was imported before: each report's content hash (with when, what kind, which source)
//! and a key per attributed row (a hash of measure, address, port, instant and detail — no
//! address is stored in clear), in `DATA_DIR/reports-import.sqlite`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

/// A failure of the import store.
#[derive(Debug, thiserror::Error)]
#[error("report import store {path}: {source}")]
pub struct SeenError {
    /// The database file.
    pub path: String,
    /// The SQLite error.
    #[source]
    pub source: rusqlite::Error,
}

/// The store's file in a data directory.
pub fn seen_path(data_dir: &Path) -> PathBuf {
    data_dir.join("reports-import.sqlite")
}

/// A report imported before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousImport {
    /// When (RFC 3339).
    pub imported_at: String,
    /// Its kind.
    pub kind: String,
    /// Its source.
    pub source: String,
}

/// The import store.
#[derive(Debug)]
pub struct SeenDb {
    conn: Connection,
    path: String,
}

/// A row key.
pub type RowKey = [u8; 16];

impl SeenDb {
    /// Opens (creating) the store.
    pub fn open(path: &Path) -> Result<SeenDb, SeenError> {
        let p = path.display().to_string();
        let err = |source| SeenError { path: p.clone(), source };
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 10000;
             CREATE TABLE IF NOT EXISTS reports (
                 hash BLOB PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL,
                 imported_at TEXT NOT NULL, rows INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS seen_rows (
                 key BLOB PRIMARY KEY, measure TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .map_err(err)?;
        Ok(SeenDb { conn, path: p })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> SeenError + '_ {
        |source| SeenError { path: self.path.clone(), source }
    }

    /// The earlier import of a report with this content hash, if any.
    pub fn previous(&self, hash: &[u8; 32]) -> Result<Option<PreviousImport>, SeenError> {
        self.conn
            .query_row("SELECT imported_at, kind, source FROM reports WHERE hash = ?1", [&hash[..]], |r| {
                Ok(PreviousImport { imported_at: r.get(0)?, kind: r.get(1)?, source: r.get(2)? })
            })
            .optional()
            .map_err(self.err())
    }

    /// Marks rows seen in one transaction, answering for each whether it is new; `commit` (after
    /// governance took the findings) keeps the marks, dropping the batch forgets them.
    pub fn mark(&mut self, measure: &str, keys: &[(RowKey, u32)]) -> Result<Marked<'_>, SeenError> {
        let path = self.path.clone();
        let err = move |source| SeenError { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(&err)?;
        let mut fresh = vec![false; keys.len()];
        // In key order: the B-tree is then filled page after page instead of at random.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by_key(|&i| keys[i].0);
        {
            let mut st = tx
                .prepare_cached("INSERT OR IGNORE INTO seen_rows (key, measure, at) VALUES (?1, ?2, ?3)")
                .map_err(&err)?;
            for i in order {
                let (k, at) = &keys[i];
                fresh[i] = st.execute(params![&k[..], measure, at]).map_err(&err)? == 1;
            }
        }
        Ok(Marked { tx, fresh, path: self.path.clone() })
    }

    /// Deletes a measure's row keys of observations older than `cutoff` (Unix seconds): the keys
    /// only need to live as long as the measure keeps its data.
    pub fn sweep(&self, measure: &str, cutoff: u32) -> Result<usize, SeenError> {
        self.conn
            .execute("DELETE FROM seen_rows WHERE measure = ?1 AND at < ?2", params![measure, cutoff])
            .map_err(self.err())
    }
}

/// Rows marked seen, not yet committed.
#[derive(Debug)]
pub struct Marked<'a> {
    tx: rusqlite::Transaction<'a>,
    /// Per key, in order: not seen before.
    pub fresh: Vec<bool>,
    path: String,
}

impl Marked<'_> {
    /// Keeps the marks and records the report.
    pub fn commit(self, hash: &[u8; 32], kind: &str, source: &str, rows: u64, at: &str) -> Result<(), SeenError> {
        let err = |source| SeenError { path: self.path.clone(), source };
        self.tx
            .execute(
                "INSERT OR IGNORE INTO reports (hash, kind, source, imported_at, rows) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&hash[..], kind, source, at, i64::try_from(rows).unwrap_or(i64::MAX)],
            )
            .map_err(err)?;
        self.tx.commit().map_err(err)
    }
}
