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
        let mut conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 10000;",
        )
        .map_err(err)?;
        migrate(&mut conn).map_err(err)?;
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
    /// governance took the findings) keeps the marks, dropping the batch forgets them. Each
    /// key's `at` (Unix seconds) is the instant the key was hashed from, so one key always
    /// comes with the same `at`.
    pub fn mark(&mut self, measure: &str, keys: &[(RowKey, u32)]) -> Result<Marked<'_>, SeenError> {
        let path = self.path.clone();
        let err = move |source| SeenError { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(&err)?;
        let mut fresh = vec![false; keys.len()];
        // In primary-key order (`at`, then key): the B-tree is then filled page after page
        // instead of at random.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by_key(|&i| (keys[i].1, keys[i].0));
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
    /// only need to live as long as the measure keeps its data. A range of the primary key
    /// (`at`, `key`): only keys older than the cutoff are read, not the whole table.
    pub fn sweep(&self, measure: &str, cutoff: u32) -> Result<usize, SeenError> {
        self.conn
            .execute("DELETE FROM seen_rows WHERE measure = ?1 AND at < ?2", params![measure, cutoff])
            .map_err(self.err())
    }
}

/// Schema steps of the import store; `PRAGMA user_version` says how many were applied.
/// Step `n` takes the file from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the tables. `IF NOT EXISTS`, because files written before the store had versions
    // already hold them, in this first shape.
    "CREATE TABLE IF NOT EXISTS reports (
         hash BLOB PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL,
         imported_at TEXT NOT NULL, rows INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS seen_rows (
         key BLOB PRIMARY KEY, measure TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;",
    // 1 → 2: the row keys ordered by (at, key), so that the retention sweep
    // (`measure = ? AND at < ?`) reads only the keys older than its cutoff instead of every key
    // on every import. `at` is the instant the key hashes (with the measure), so (at, key) is
    // unique exactly when the key is: duplicates are found as before. Not (measure, at, key):
    // measured on 1M keys, the text first in every comparison made marking ~10 % slower,
    // and the keys of one measure older than another's cutoff are few (most reports come
    // for one measure), and were all read by the old sweep anyway.
    "CREATE TABLE seen_rows_v2 (
         at INTEGER NOT NULL, key BLOB NOT NULL, measure TEXT NOT NULL,
         PRIMARY KEY (at, key)) WITHOUT ROWID;
     INSERT INTO seen_rows_v2 (at, key, measure) SELECT at, key, measure FROM seen_rows ORDER BY at, key;
     DROP TABLE seen_rows;
     ALTER TABLE seen_rows_v2 RENAME TO seen_rows;",
];

/// Brings the file to the newest schema, one step per transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(step) = usize::try_from(version).ok().and_then(|v| MIGRATIONS.get(v)) else {
            return Ok(());
        };
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn key(n: u8) -> RowKey {
        [n; 16]
    }

    #[test]
    fn a_first_shape_file_migrates_with_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports-import.sqlite");
        {
            // A file as the store wrote it before it had versions.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute(
                "INSERT INTO reports (hash, kind, source, imported_at, rows) VALUES (?1, 'k', 's', 't', 3)",
                [&[7u8; 32][..]],
            )
            .unwrap();
            for (k, m, at) in [(key(1), "a", 100u32), (key(2), "a", 300), (key(3), "b", 100)] {
                conn.execute("INSERT INTO seen_rows (key, measure, at) VALUES (?1, ?2, ?3)", params![&k[..], m, at])
                    .unwrap();
            }
        }
        let mut db = SeenDb::open(&path).unwrap();
        let version: i64 = db.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 2);
        assert_eq!(db.previous(&[7u8; 32]).unwrap().unwrap().kind, "k");
        // The old keys are still seen; a new one is not.
        let m = db.mark("a", &[(key(1), 100), (key(9), 200), (key(2), 300)]).unwrap();
        assert_eq!(m.fresh, vec![false, true, false]);
        m.commit(&[8u8; 32], "k", "s", 3, "t").unwrap();
        // The sweep drops only the measure's keys older than the cutoff.
        assert_eq!(db.sweep("a", 250).unwrap(), 2);
        let m = db.mark("a", &[(key(1), 100), (key(2), 300)]).unwrap();
        assert_eq!(m.fresh, vec![true, false]);
        drop(m);
        let m = db.mark("b", &[(key(3), 100)]).unwrap();
        assert_eq!(m.fresh, vec![false]);
        drop(m);
        // Opening again changes nothing.
        drop(db);
        let db = SeenDb::open(&path).unwrap();
        let n: i64 = db.conn.query_row("SELECT count(*) FROM seen_rows", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn the_sweep_reads_a_range_of_the_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = SeenDb::open(&dir.path().join("reports-import.sqlite")).unwrap();
        let plan: String = db
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN DELETE FROM seen_rows WHERE measure = ?1 AND at < ?2",
                params!["a", 1],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("USING PRIMARY KEY (at<?)"), "{plan}");
    }
}
