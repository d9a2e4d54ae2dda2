//! Sessions on disk: `DATA_DIR/attribution.sqlite`, one row per session.
//!
//! A file of its own rather than tables in `mamori.sqlite`: accounting arrives at its own pace
//! (thousands of packets a second from a large BNG fleet) and is written in its own group-committed
//! transactions, without queueing behind the ledger's writer; retention deletes here never touch
//! the ledger. WAL with `synchronous = FULL`: a transaction that returned is on disk, so the
//! RADIUS server answers only after its batch committed and a restart loses nothing acknowledged.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::radius::{Ipv6Prefix, PortBlock};
use crate::session::{SessionKey, SessionRow};

/// "maat" in ASCII: marks a SQLite file as mamori's attribution store.
pub const APPLICATION_ID: i64 = 0x6d61_6174;
/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Migration `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE sessions (
        key         BLOB PRIMARY KEY,
        subscriber  TEXT NOT NULL,
        nas         TEXT NOT NULL,
        start       INTEGER NOT NULL,
        last        INTEGER NOT NULL,
        interim     INTEGER NOT NULL,
        stop        INTEGER,
        end_at      INTEGER NOT NULL,
        ipv4        INTEGER,
        port_blocks BLOB NOT NULL,
        ipv6        BLOB NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX sessions_by_end ON sessions (end_at);
    CREATE INDEX sessions_open_by_nas ON sessions (nas, start) WHERE stop IS NULL;
    "#];

/// Errors of the session store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite failed.
    #[error("attribution store {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The file is some other SQLite database.
    #[error("{path} is not a mamori attribution store (application_id {found:#x}); left untouched")]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// Its application_id.
        found: i64,
    },
    /// Written by a newer mamori.
    #[error("{path} has schema version {found}, newer than this build's {SCHEMA_VERSION}")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// A stored row that can't be decoded.
    #[error("{path}: damaged session row: {detail}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What.
        detail: String,
    },
}

/// The session store.
#[derive(Debug)]
pub struct SessionDb {
    conn: Connection,
    path: PathBuf,
}

fn encode_blocks(blocks: &[PortBlock]) -> Vec<u8> {
    let mut v = Vec::with_capacity(blocks.len() * 8);
    for b in blocks {
        v.extend_from_slice(&b.public.octets());
        v.extend_from_slice(&b.first.to_be_bytes());
        v.extend_from_slice(&b.last.to_be_bytes());
    }
    v
}

fn decode_blocks(v: &[u8]) -> Option<Vec<PortBlock>> {
    if v.len() % 8 != 0 {
        return None;
    }
    Some(
        v.chunks_exact(8)
            .map(|c| PortBlock {
                public: Ipv4Addr::new(c[0], c[1], c[2], c[3]),
                first: u16::from_be_bytes([c[4], c[5]]),
                last: u16::from_be_bytes([c[6], c[7]]),
            })
            .collect(),
    )
}

fn encode_v6(prefixes: &[Ipv6Prefix]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prefixes.len() * 17);
    for p in prefixes {
        v.extend_from_slice(&p.addr.octets());
        v.push(p.len);
    }
    v
}

fn decode_v6(v: &[u8]) -> Option<Vec<Ipv6Prefix>> {
    if v.len() % 17 != 0 {
        return None;
    }
    v.chunks_exact(17)
        .map(|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&c[..16]);
            (c[16] <= 128).then(|| Ipv6Prefix::new(Ipv6Addr::from(a), c[16]))
        })
        .collect()
}

const COLUMNS: &str = "key, subscriber, nas, start, last, interim, stop, ipv4, port_blocks, ipv6";

/// A row as read, before its blobs are checked.
struct RawRow {
    key: Vec<u8>,
    subscriber: String,
    nas: String,
    start: i64,
    last: i64,
    interim: i64,
    stop: Option<i64>,
    ipv4: Option<i64>,
    port_blocks: Vec<u8>,
    ipv6: Vec<u8>,
}

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        key: r.get(0)?,
        subscriber: r.get(1)?,
        nas: r.get(2)?,
        start: r.get(3)?,
        last: r.get(4)?,
        interim: r.get(5)?,
        stop: r.get(6)?,
        ipv4: r.get(7)?,
        port_blocks: r.get(8)?,
        ipv6: r.get(9)?,
    })
}

impl RawRow {
    fn into_row(self) -> Result<SessionRow, String> {
        let key: [u8; 16] = self.key.as_slice().try_into().map_err(|_| "key is not 16 bytes".to_owned())?;
        let secs = |v: i64, what: &str| u32::try_from(v).map_err(|_| format!("{what} {v} out of range"));
        Ok(SessionRow {
            key: SessionKey(key),
            subscriber: self.subscriber,
            nas: self.nas,
            start: secs(self.start, "start")?,
            last: secs(self.last, "last")?,
            interim: secs(self.interim, "interim")?,
            stop: self.stop.map(|s| secs(s, "stop")).transpose()?,
            framed_ipv4: self.ipv4.map(|a| secs(a, "ipv4").map(Ipv4Addr::from)).transpose()?,
            port_blocks: decode_blocks(&self.port_blocks).ok_or("port_blocks is not a list of 8-byte blocks")?,
            ipv6: decode_v6(&self.ipv6).ok_or("ipv6 is not a list of 17-byte prefixes")?,
        })
    }
}

impl SessionDb {
    /// Opens (creating if needed) the store; refuses a file that isn't one.
    pub fn open(path: &Path) -> Result<SessionDb, DbError> {
        let err = |source| DbError::Sqlite { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Damaged {
                path: path.to_owned(),
                detail: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(err)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        if app != APPLICATION_ID {
            let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(err)?;
            if app != 0 || tables != 0 {
                return Err(DbError::NotOurs { path: path.to_owned(), found: app });
            }
        }
        if version > SCHEMA_VERSION {
            return Err(DbError::TooNew { path: path.to_owned(), found: version });
        }
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(err)?;
        let mut db = SessionDb { conn, path: path.to_owned() };
        db.migrate(version)?;
        Ok(db)
    }

    /// Opens an existing store for reading (the CLI's lookups while the server writes).
    pub fn open_read_only(path: &Path) -> Result<SessionDb, DbError> {
        let err = |source| DbError::Sqlite { path: path.to_owned(), source };
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(err)?;
        let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(err)?;
        if app != APPLICATION_ID {
            return Err(DbError::NotOurs { path: path.to_owned(), found: app });
        }
        conn.execute_batch("PRAGMA busy_timeout = 5000;").map_err(err)?;
        Ok(SessionDb { conn, path: path.to_owned() })
    }

    fn migrate(&mut self, from: i64) -> Result<(), DbError> {
        let path = self.path.clone();
        let err = |source| DbError::Sqlite { path: path.clone(), source };
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(from).unwrap_or(0)) {
            let tx = self.conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};", n + 1))
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        |source| DbError::Sqlite { path: self.path.clone(), source }
    }

    /// Begins a write transaction.
    pub(crate) fn begin(&mut self) -> Result<Transaction<'_>, DbError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| DbError::Sqlite { path, source })
    }

    /// The stored row of a session.
    pub(crate) fn get(tx: &Transaction<'_>, path: &Path, key: &SessionKey) -> Result<Option<SessionRow>, DbError> {
        let err = |source| DbError::Sqlite { path: path.to_owned(), source };
        let mut stmt = tx.prepare_cached(&format!("SELECT {COLUMNS} FROM sessions WHERE key = ?1")).map_err(err)?;
        let r = stmt.query_row([&key.0[..]], raw).optional().map_err(err)?;
        r.map(|r| r.into_row().map_err(|detail| DbError::Damaged { path: path.to_owned(), detail })).transpose()
    }

    /// Writes a row (insert or replace).
    pub(crate) fn put(tx: &Transaction<'_>, path: &Path, row: &SessionRow) -> Result<(), DbError> {
        let err = |source| DbError::Sqlite { path: path.to_owned(), source };
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO sessions ({COLUMNS}, end_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .map_err(err)?;
        stmt.execute(params![
            &row.key.0[..],
            row.subscriber,
            row.nas,
            row.start,
            row.last,
            row.interim,
            row.stop,
            row.framed_ipv4.map(u32::from),
            encode_blocks(&row.port_blocks),
            encode_v6(&row.ipv6),
            row.end(),
        ])
        .map_err(err)?;
        Ok(())
    }

    /// Sessions of `nas` without a Stop that started at or before `at`.
    pub(crate) fn open_of_nas(
        tx: &Transaction<'_>,
        path: &Path,
        nas: &str,
        at: u32,
    ) -> Result<Vec<SessionRow>, DbError> {
        let err = |source| DbError::Sqlite { path: path.to_owned(), source };
        let mut stmt = tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM sessions WHERE nas = ?1 AND start <= ?2 AND stop IS NULL"))
            .map_err(err)?;
        let rows = stmt.query_map(params![nas, at], raw).map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(err)?.into_row().map_err(|detail| DbError::Damaged { path: path.to_owned(), detail })?);
        }
        Ok(out)
    }

    /// Calls `f` with every stored session (for loading the index).
    pub fn for_each(&self, f: impl FnMut(SessionRow)) -> Result<(), DbError> {
        self.scan("", [], f)
    }

    /// Calls `f` with every session that covers the instant `at` (Unix seconds).
    pub fn for_each_covering(&self, at: u32, f: impl FnMut(SessionRow)) -> Result<(), DbError> {
        self.scan(" WHERE end_at > ?1 AND start <= ?1", [at], f)
    }

    fn scan<P: rusqlite::Params>(&self, filter: &str, p: P, mut f: impl FnMut(SessionRow)) -> Result<(), DbError> {
        let err = self.err();
        let mut stmt = self.conn.prepare(&format!("SELECT {COLUMNS} FROM sessions{filter}")).map_err(&err)?;
        let rows = stmt.query_map(p, raw).map_err(&err)?;
        for r in rows {
            let row =
                r.map_err(&err)?.into_row().map_err(|detail| DbError::Damaged { path: self.path.clone(), detail })?;
            f(row);
        }
        Ok(())
    }

    /// Deletes sessions that ended before `cutoff` (Unix seconds); returns how many, and the
    /// oldest and newest end among them.
    pub fn delete_ended_before(&mut self, cutoff: u32) -> Result<(usize, Option<(u32, u32)>), DbError> {
        let path = self.path.clone();
        let err = |source| DbError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        let range: (Option<i64>, Option<i64>) = tx
            .query_row("SELECT min(end_at), max(end_at) FROM sessions WHERE end_at < ?1", [cutoff], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(err)?;
        let n = tx.execute("DELETE FROM sessions WHERE end_at < ?1", [cutoff]).map_err(err)?;
        tx.commit().map_err(err)?;
        let range = match range {
            (Some(a), Some(b)) => Some((u32::try_from(a).unwrap_or(0), u32::try_from(b).unwrap_or(0))),
            _ => None,
        };
        Ok((n, range))
    }

    /// Sessions stored.
    pub fn count(&self) -> Result<u64, DbError> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0)).map_err(self.err())?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> SessionRow {
        SessionRow {
            key: SessionKey::new("nas", b"1", "alice"),
            subscriber: "alice".into(),
            nas: "nas".into(),
            start: 1000,
            last: 1300,
            interim: 300,
            stop: None,
            framed_ipv4: Some(Ipv4Addr::new(198, 51, 100, 7)),
            port_blocks: vec![PortBlock { public: Ipv4Addr::new(203, 0, 113, 1), first: 1024, last: 2047 }],
            ipv6: vec![Ipv6Prefix::parse("2001:db8:1200::/56").unwrap()],
        }
    }

    #[test]
    fn rows_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attribution.sqlite");
        {
            let mut db = SessionDb::open(&path).unwrap();
            let p = db.path().to_owned();
            let tx = db.begin().unwrap();
            SessionDb::put(&tx, &p, &row()).unwrap();
            tx.commit().unwrap();
        }
        let mut db = SessionDb::open(&path).unwrap();
        let p = db.path().to_owned();
        let tx = db.begin().unwrap();
        assert_eq!(SessionDb::get(&tx, &p, &row().key).unwrap(), Some(row()));
        assert_eq!(SessionDb::open_of_nas(&tx, &p, "nas", 2000).unwrap().len(), 1);
        assert_eq!(SessionDb::open_of_nas(&tx, &p, "nas", 999).unwrap().len(), 0);
        drop(tx);
        let mut n = 0;
        db.for_each_covering(1500, |_| n += 1).unwrap();
        db.for_each_covering(1900, |_| n += 1).unwrap(); // ends at 1300 + 600
        assert_eq!(n, 1);
        assert_eq!(db.delete_ended_before(1900).unwrap(), (0, None));
        assert_eq!(db.delete_ended_before(1901).unwrap(), (1, Some((1900, 1900))));
        assert_eq!(db.count().unwrap(), 0);
    }

    #[test]
    fn another_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(matches!(SessionDb::open(&path).unwrap_err(), DbError::NotOurs { .. }));
    }
}
