//! mamori's embedded store: one SQLite file (WAL, `synchronous = FULL`, stepwise migrations)
//! behind [`mamori_core::store::Store`].
//!
//! Writes go through a single group-committing writer thread (see [`writer`]); reads use their
//! own connection, which WAL lets run beside the writer. A file that isn't a mamori database, or is
//! damaged, is refused with [`StoreError::Corrupt`] and left untouched.
#![deny(missing_docs)]

mod schema;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

use jiff::Timestamp;
use mamori_core::account::{Account, Session};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::MeasureId;
use mamori_core::consent::{ConsentChange, ConsentEvent, PublicNotice};
use mamori_core::ledger::{ChainHash, ChainVerifier, Checkpoint, EntryRef, LedgerEntry, VerifyReport};
use mamori_core::store::{
    ActionFilter, Batch, Committed, Delivery, DeliveryState, LedgerFilter, OutboxMessage, RenderedBody, StageUnlock,
    Store, StoreError, SubscriberContact, SweepOutcome,
};
use mamori_core::subject::{Actor, SubscriberId, Target};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub use writer::Receipt;

/// The writer connection's page cache, in KiB (SQLite's default is 2 MiB).
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Tuning of the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// A checkpoint every this many ledger entries.
    pub checkpoint_every: u32,
    /// At most this many batches per group commit.
    pub group_commit_max: u32,
    /// `false` only for scratch databases that can be rebuilt from their input (a replay's):
    /// commits then skip the fsync (`synchronous = OFF`). The service always runs durable.
    pub durable: bool,
    /// One connection, used on the caller's thread for reads and commits, instead of a writer
    /// thread and a reader connection. For a database one thread of one process uses (a
    /// replay's own; the connection holds the file's lock until the store is dropped): each
    /// commit then costs no hand-off between threads, and reads find the pages the last commit
    /// wrote in the same cache (a second connection rereads them after every commit). If it
    /// need not be durable either, it commits every few hundred batches instead of every batch,
    /// and when dropped. It also keeps the action states and measure switches it wrote or read
    /// in memory (nothing else changes them). The service keeps the writer thread: its group
    /// commit is what serves many writers at once.
    pub single_thread: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { checkpoint_every: 1000, group_commit_max: 1024, durable: true, single_thread: false }
    }
}

/// How the store's connections are used.
enum Connections {
    /// A writer thread that group-commits, and a connection of its own for reads.
    Threaded { reader: Mutex<Connection>, writer: writer::Writer },
    /// One connection on the caller's thread ([`StoreOptions::single_thread`]).
    Single(Mutex<writer::WriterLoop>),
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    connections: Connections,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

pub(crate) fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

fn from_nanos(n: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(n)).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn parse_time(s: &str) -> Timestamp {
    s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

fn corrupt(path: &Path, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { path: path.display().to_string(), detail: detail.to_string() }
}

/// How long a connection waits for another's lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An error while opening: a lock another process keeps past the busy timeout says so; anything
/// else means the file is not a database mamori can use.
fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => {
            StoreError::InUse { path: path.display().to_string(), waited_secs: BUSY_TIMEOUT.as_secs() }
        }
        _ => corrupt(path, e),
    }
}

fn configure(conn: &Connection, durable: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })?;
    // A statement's plan is fixed when it is prepared, whatever values are bound later: without
    // this, SQLite prepares some cached statements again each time a bound value changes.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if absent) the database file, checking that an existing file is a mamori
    /// database and migrating it to the current schema.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let exists = path.exists();
        if exists {
            let mut header = [0u8; 16];
            let n = {
                use std::io::Read;
                let mut f = std::fs::File::open(path)?;
                f.read(&mut header)?
            };
            if n > 0 && (n < 16 || &header != b"SQLite format 3\0") {
                return Err(corrupt(path, "not an SQLite database (bad file header)"));
            }
        } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let flags = if exists {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
        if options.single_thread {
            // The one connection keeps its lock from its first read on: no file lock taken and
            // released around every transaction, and the WAL index in its own memory instead
            // of a shared-memory file. Other processes cannot open the database meanwhile, which
            // is the point of a single-threaded store.
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(|e| open_error(path, e))?;
        }
        configure(&conn, options.durable).map_err(|e| open_error(path, e))?;
        let app_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(|e| open_error(path, e))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| open_error(path, e))?;
        if app_id == 0 && version == 0 {
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(|e| open_error(path, e))?;
            if tables > 0 {
                return Err(corrupt(path, "an SQLite database, but not mamori's"));
            }
            conn.pragma_update(None, "application_id", schema::APPLICATION_ID).map_err(db_err)?;
        } else if app_id != schema::APPLICATION_ID {
            return Err(corrupt(path, format!("an SQLite database of another application (id {app_id:#x})")));
        }
        if version > schema::SCHEMA_VERSION {
            return Err(StoreError::TooNew { found: version, supported: schema::SCHEMA_VERSION });
        }
        // A damaged page shows up here rather than in the middle of serving.
        let check: String =
            conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(|e| open_error(path, e))?;
        if check != "ok" {
            return Err(corrupt(path, check));
        }
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| open_error(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!("cannot switch {} to WAL (got {mode})", path.display())));
        }
        schema::migrate(&mut conn).map_err(|e| open_error(path, e))?;
        // The writer cycles through a few dozen statements; keep them all prepared.
        conn.set_prepared_statement_cache_capacity(64);
        // A bulk batch (thousands of proposals) touches pages all over the actions' and ledger's
        // indexes (action ids are random); with SQLite's default 2 MB cache, those pages are
        // evicted and read back within the same transaction. Pages are allocated as used, so a
        // small database doesn't pay for the limit.
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(db_err)?;
        // The statement journal of a group's per-batch savepoints in memory, not in a temporary
        // file: it only lives until the group commits.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(db_err)?;
        let connections = if options.single_thread {
            let w = writer::WriterLoop::new(conn, options.checkpoint_every, options.group_commit_max);
            Connections::Single(Mutex::new(if options.durable { w } else { w.deferring_commits() }))
        } else {
            let reader =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(|e| open_error(path, e))?;
            configure(&reader, options.durable).map_err(db_err)?;
            let writer = writer::spawn(conn, options.checkpoint_every, options.group_commit_max)?;
            Connections::Threaded { reader: Mutex::new(reader), writer }
        };
        Ok(SqliteStore { path: path.to_owned(), connections })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a batch without waiting; [`Receipt::wait`] returns once it is durable. Lets a
    /// pipeline keep many appends in flight so that group commit amortizes the fsync.
    pub fn submit(&self, batch: Batch) -> Result<Receipt, StoreError> {
        match &self.connections {
            Connections::Threaded { writer, .. } => {
                let (tx, rx) = mpsc::sync_channel(1);
                writer.send(writer::Job::Batch(batch, tx))?;
                Ok(Receipt(rx))
            }
            Connections::Single(w) => Ok(lock(w)?.apply_now(batch)),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        match &self.connections {
            Connections::Threaded { reader, .. } => f(&*lock(reader)?).map_err(db_err),
            Connections::Single(w) => f(lock(w)?.conn()).map_err(db_err),
        }
    }

    fn deliveries_where(&self, sql_where: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Delivery>, StoreError> {
        type Row = (i64, String, String, String, String, i64, String, i64, Option<i64>, Option<i64>, Option<String>);
        let sql = format!(
            "SELECT id, action_id, measure, subscriber, purpose, at, state, attempts, next_attempt_at, state_at, reason
             FROM outbox {sql_where}"
        );
        let rows: Vec<Row> = self.read(|c| {
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(args, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(id, action_id, m, sub, purpose, at, state, attempts, next, state_at, reason)| {
                Ok(Delivery {
                    id,
                    message: OutboxMessage {
                        action_id,
                        measure: m.parse().map_err(|e| corrupt(&self.path, e))?,
                        subscriber: SubscriberId(sub),
                        purpose,
                        at: from_nanos(at),
                    },
                    state: DeliveryState::parse(&state)
                        .ok_or_else(|| corrupt(&self.path, format!("delivery state {state}")))?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    next_attempt_at: next.map(from_nanos),
                    state_at: state_at.map(from_nanos),
                    reason,
                })
            })
            .collect()
    }

    /// Runs `f` on a connection of its own: a dedicated read-only one for the threaded store,
    /// so a long read doesn't hold the shared reader and one read transaction gives a consistent
    /// snapshot while the writer goes on; the one connection for a single-threaded store (the
    /// only one that may open the file), with its open transaction committed first and any
    /// transaction `f` leaves open ended after.
    fn on_own_connection<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match &self.connections {
            Connections::Threaded { .. } => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| corrupt(&self.path, e))?;
                f(&conn)
            }
            Connections::Single(w) => {
                let mut w = lock(w)?;
                w.commit_open()?;
                let result = f(w.conn());
                if !w.conn().is_autocommit() {
                    w.conn().execute_batch("ROLLBACK").map_err(db_err)?;
                }
                result
            }
        }
    }

    fn verify_ledger_on(&self, conn: &Connection, expect_tip: Option<&ChainHash>) -> Result<VerifyReport, StoreError> {
        // One read transaction: a consistent snapshot.
        conn.execute_batch("BEGIN").map_err(db_err)?;
        let checkpoints: Vec<Checkpoint> = {
            let mut st = conn.prepare("SELECT seq, hash FROM ledger_checkpoints").map_err(db_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            rows.into_iter()
                .map(|(seq, h)| {
                    ChainHash::from_slice(&h)
                        .map(|hash| Checkpoint { seq, hash })
                        .ok_or(StoreError::Chain(mamori_core::ledger::ChainError::CheckpointMismatch { seq }))
                })
                .collect::<Result<_, _>>()?
        };
        let mut v = ChainVerifier::new(checkpoints);
        let mut st = conn
            .prepare("SELECT seq, at, kind, measure, action_id, subject, actor, body, prev_hash, hash FROM ledger ORDER BY seq")
            .map_err(db_err)?;
        let mut rows = st.query([]).map_err(db_err)?;
        while let Some(r) = rows.next().map_err(db_err)? {
            let seq: i64 = r.get(0).map_err(db_err)?;
            let text = |i: usize| -> Result<&str, StoreError> {
                r.get_ref(i)
                    .map_err(db_err)?
                    .as_str()
                    .map_err(|_| StoreError::Chain(mamori_core::ledger::ChainError::ContentMismatch { seq }))
            };
            let opt = |i: usize| -> Result<Option<&str>, StoreError> {
                r.get_ref(i)
                    .map_err(db_err)?
                    .as_str_or_null()
                    .map_err(|_| StoreError::Chain(mamori_core::ledger::ChainError::ContentMismatch { seq }))
            };
            let blob = |i: usize| -> Result<&[u8], StoreError> {
                r.get_ref(i)
                    .map_err(db_err)?
                    .as_blob()
                    .map_err(|_| StoreError::Chain(mamori_core::ledger::ChainError::MalformedHash { seq }))
            };
            v.push(&EntryRef {
                seq,
                at: text(1)?,
                kind: text(2)?,
                measure: opt(3)?,
                action_id: opt(4)?,
                subject: opt(5)?,
                actor: text(6)?,
                body: text(7)?,
                prev_hash: blob(8)?,
                hash: blob(9)?,
            })?;
        }
        Ok(v.finish(expect_tip)?)
    }

    fn export_ledger_on(
        conn: &Connection,
        filter: &LedgerFilter,
        sink: &mut dyn FnMut(LedgerEntry) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let (sql, args) = ledger_query(filter);
        let mut st = conn.prepare(&sql).map_err(db_err)?;
        let mut rows = st.query(rusqlite::params_from_iter(args.iter())).map_err(db_err)?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(db_err)? {
            let seq: i64 = r.get(0).map_err(db_err)?;
            let e = LedgerEntry {
                seq: u64::try_from(seq).unwrap_or(0),
                at: r.get(1).map_err(db_err)?,
                kind: r.get(2).map_err(db_err)?,
                measure: r.get(3).map_err(db_err)?,
                action_id: r.get(4).map_err(db_err)?,
                subject: r.get(5).map_err(db_err)?,
                actor: r.get(6).map_err(db_err)?,
                body: r.get(7).map_err(db_err)?,
                prev_hash: hex::encode(r.get::<_, Vec<u8>>(8).map_err(db_err)?),
                hash: hex::encode(r.get::<_, Vec<u8>>(9).map_err(db_err)?),
            };
            sink(e)?;
            n += 1;
        }
        Ok(n)
    }

    fn actions_where(
        &self,
        sql_where: &str,
        args: &[&dyn rusqlite::ToSql],
        limit: usize,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let sql = format!("SELECT record FROM actions {sql_where} LIMIT {limit}");
        let rows: Vec<String> = self.read(|c| {
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(args, |r| r.get::<_, String>(0))?;
            rows.collect()
        })?;
        rows.iter()
            .map(|s| serde_json::from_str(s).map_err(|e| corrupt(&self.path, format!("action record: {e}"))))
            .collect()
    }
}

/// The actions whose deadline has come (`?1`), in deadline order. Without statistics SQLite
/// picks `actions_by_state` for the `state IN (…)` term: every open action read and sorted at each
/// scheduler tick, which a replay makes every few minutes of data time. `actions_due` holds just
/// the open actions by deadline, so the due ones are its first entries.
const DUE_ACTIONS: &str = "INDEXED BY actions_due
     WHERE state IN ('awaiting-consent', 'pending-approval', 'applied') AND deadline IS NOT NULL AND deadline <= ?1
     ORDER BY deadline";

/// A connection's lock; poisoned only if a thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    m.lock().map_err(|_| StoreError::Database("connection lock poisoned".into()))
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        match &mut self.connections {
            Connections::Threaded { writer, .. } => {
                // Closing the queue lets the writer finish what it has and stop.
                writer.tx.take();
                if let Some(h) = writer.handle.take() {
                    let _ = h.join();
                }
            }
            Connections::Single(w) => {
                if let Ok(w) = w.get_mut() {
                    if let Err(e) = w.commit_open() {
                        tracing::error!(error = %e, "the last decisions could not be committed");
                    }
                }
            }
        }
    }
}

impl Store for SqliteStore {
    fn commit(&self, batch: Batch) -> Result<Committed, StoreError> {
        self.submit(batch)?.wait()
    }

    fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        Ok(self.actions_where("WHERE id = ?1", &[&id], 1)?.into_iter().next())
    }

    fn action_state(&self, id: &str) -> Result<Option<ActionState>, StoreError> {
        match &self.connections {
            Connections::Threaded { reader, .. } => writer::read_action_state(&*lock(reader)?, id, &self.path),
            Connections::Single(w) => lock(w)?.action_state(id, &self.path),
        }
    }

    fn actions(&self, filter: &ActionFilter) -> Result<Vec<ActionRecord>, StoreError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(s) = filter.state {
            args.push(Box::new(s.as_str()));
            clauses.push(format!("state = ?{}", args.len()));
        }
        if let Some(m) = filter.measure {
            args.push(Box::new(m.as_str()));
            clauses.push(format!("measure = ?{}", args.len()));
        }
        if let Some(t) = filter.since {
            args.push(Box::new(nanos(t)));
            clauses.push(format!("proposed_at >= ?{}", args.len()));
        }
        if let Some(t) = filter.until {
            args.push(Box::new(nanos(t)));
            clauses.push(format!("proposed_at < ?{}", args.len()));
        }
        let w = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
        self.actions_where(
            &format!("{w} ORDER BY proposed_at DESC, id"),
            &refs,
            filter.limit.unwrap_or(usize::MAX >> 1),
        )
    }

    fn open_action(&self, measure: MeasureId, target: &Target) -> Result<Option<ActionRecord>, StoreError> {
        let t = target.to_string();
        Ok(self
            .actions_where(
                "WHERE measure = ?1 AND target = ?2 AND state IN ('proposed', 'awaiting-consent', 'pending-approval', 'applied')",
                &[&measure.as_str(), &t],
                1,
            )?
            .into_iter()
            .next())
    }

    fn due_actions(&self, now: Timestamp) -> Result<Vec<ActionRecord>, StoreError> {
        self.actions_where(DUE_ACTIONS, &[&nanos(now)], 10_000)
    }

    fn consent_history(&self, subscriber: &SubscriberId) -> Result<Vec<ConsentEvent>, StoreError> {
        let rows: Vec<(String, String, String, String, String)> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT measure, change, method, at, recorded_by FROM consent_events WHERE subscriber = ?1 ORDER BY id",
            )?;
            let rows =
                st.query_map(params![subscriber.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(m, ch, method, at, by)| {
                Ok(ConsentEvent {
                    subscriber: subscriber.clone(),
                    measure: m.parse().map_err(|e| corrupt(&self.path, e))?,
                    change: ConsentChange::parse(&ch)
                        .ok_or_else(|| corrupt(&self.path, format!("consent change {ch}")))?,
                    method,
                    at: parse_time(&at),
                    recorded_by: Actor(by),
                })
            })
            .collect()
    }

    fn opted_out(&self, measure: MeasureId) -> Result<Vec<SubscriberId>, StoreError> {
        let rows: Vec<String> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT subscriber FROM consent_events e
                 WHERE measure = ?1 AND id = (SELECT max(id) FROM consent_events WHERE measure = ?1 AND subscriber = e.subscriber)
                   AND change = 'opted-out'",
            )?;
            let rows = st.query_map(params![measure.as_str()], |r| r.get(0))?;
            rows.collect()
        })?;
        Ok(rows.into_iter().map(SubscriberId).collect())
    }

    fn consent_generation(&self) -> Result<u64, StoreError> {
        let g: i64 =
            self.read(|c| c.query_row("SELECT value FROM meta WHERE key = 'consent_generation'", [], |r| r.get(0)))?;
        Ok(u64::try_from(g).unwrap_or(0))
    }

    fn notices(&self, measure: MeasureId) -> Result<Vec<PublicNotice>, StoreError> {
        let rows: Vec<(String, String, Option<String>, String, String)> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT url, version, clause, recorded_at, recorded_by FROM notices WHERE measure = ?1 ORDER BY id DESC",
            )?;
            let rows = st.query_map(params![measure.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .map(|(url, version, clause, at, by)| PublicNotice {
                measure,
                url,
                version,
                clause,
                recorded_at: parse_time(&at),
                recorded_by: Actor(by),
            })
            .collect())
    }

    fn measure_switches(&self) -> Result<BTreeMap<MeasureId, bool>, StoreError> {
        match &self.connections {
            Connections::Threaded { reader, .. } => writer::read_measure_switches(&*lock(reader)?, &self.path),
            Connections::Single(w) => lock(w)?.measure_switches(&self.path),
        }
    }

    fn active_unlocks(&self, now: Timestamp) -> Result<Vec<StageUnlock>, StoreError> {
        let rows: Vec<(String, u8, String, i64, i64, String)> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT measure, stage, subject, at, until, reason FROM stage_unlocks WHERE until > ?1 ORDER BY id",
            )?;
            let rows = st.query_map(params![nanos(now)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(m, stage, subject, at, until, reason)| {
                Ok(StageUnlock {
                    measure: m.parse().map_err(|e| corrupt(&self.path, e))?,
                    stage,
                    subject: subject.parse().map_err(|e| corrupt(&self.path, e))?,
                    at: from_nanos(at),
                    until: from_nanos(until),
                    reason,
                })
            })
            .collect()
    }

    fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, String, String, String, i64)> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT action_id, measure, subscriber, purpose, at FROM outbox WHERE state = 'queued' ORDER BY id LIMIT ?1",
            )?;
            let rows = st.query_map(params![lim], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(action_id, m, sub, purpose, at)| {
                Ok(OutboxMessage {
                    action_id,
                    measure: m.parse().map_err(|e| corrupt(&self.path, e))?,
                    subscriber: SubscriberId(sub),
                    purpose,
                    at: from_nanos(at),
                })
            })
            .collect()
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        self.deliveries_where(
            "WHERE state = 'queued' AND coalesce(next_attempt_at, at) <= ?1 ORDER BY id LIMIT ?2",
            &[&nanos(now), &lim],
        )
    }

    fn deliveries_in_state(&self, state: DeliveryState, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        self.deliveries_where("WHERE state = ?1 ORDER BY id LIMIT ?2", &[&state.as_str(), &lim])
    }

    fn subscriber_deliveries(&self, subscriber: &SubscriberId, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        self.deliveries_where("WHERE subscriber = ?1 ORDER BY id DESC LIMIT ?2", &[&subscriber.0, &lim])
    }

    fn delivery_ahead(
        &self,
        id: i64,
        subscriber: &SubscriberId,
        measure: MeasureId,
        purpose: &str,
        since: Timestamp,
    ) -> Result<bool, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM outbox
                 WHERE subscriber = ?1 AND measure = ?2 AND purpose = ?3 AND id != ?4
                   AND (state = 'sending'
                        OR (state = 'sent' AND state_at >= ?5)
                        OR (state = 'queued' AND id < ?4)))",
            )?
            .query_row(params![subscriber.0, measure.as_str(), purpose, id, nanos(since)], |r| r.get(0))
        })
    }

    fn delivery_body(&self, id: i64) -> Result<Option<RenderedBody>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT language, subject, body FROM outbox_bodies WHERE outbox_id = ?1")?
                .query_row(params![id], |r| {
                    Ok(RenderedBody { language: r.get(0)?, subject: r.get(1)?, text: r.get(2)? })
                })
                .optional()
        })
    }

    fn delivery_counts(&self) -> Result<BTreeMap<DeliveryState, u64>, StoreError> {
        let rows: Vec<(String, i64)> = self.read(|c| {
            let mut st = c.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| Some((DeliveryState::parse(&s)?, u64::try_from(n).unwrap_or(0))))
            .collect())
    }

    fn contact(&self, subscriber: &SubscriberId) -> Result<Option<SubscriberContact>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT email, language FROM subscribers WHERE id = ?1")?
                .query_row(params![subscriber.0], |r| {
                    Ok(SubscriberContact { subscriber: subscriber.clone(), email: r.get(0)?, language: r.get(1)? })
                })
                .optional()
        })
    }

    fn retention_sweep(
        &self,
        cutoffs: &[(MeasureId, Timestamp)],
        at: Timestamp,
        actor: &Actor,
    ) -> Result<Vec<SweepOutcome>, StoreError> {
        match &self.connections {
            Connections::Threaded { writer, .. } => {
                let (tx, rx) = mpsc::sync_channel(1);
                writer.send(writer::Job::Sweep(cutoffs.to_vec(), at, actor.clone(), tx))?;
                rx.recv().map_err(|_| StoreError::WriterGone)?
            }
            Connections::Single(w) => {
                let mut w = lock(w)?;
                w.commit_open()?;
                w.forget_states();
                w.sweep(cutoffs, at, actor)
            }
        }
    }

    fn verify_ledger(&self, expect_tip: Option<&ChainHash>) -> Result<VerifyReport, StoreError> {
        self.on_own_connection(|conn| self.verify_ledger_on(conn, expect_tip))
    }

    fn export_ledger(
        &self,
        filter: &LedgerFilter,
        sink: &mut dyn FnMut(LedgerEntry) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        self.on_own_connection(|conn| Self::export_ledger_on(conn, filter, sink))
    }

    fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT name, role, password_hash, language, disabled, updated_at FROM accounts WHERE name = ?1",
            )?
            .query_row(params![name], account_row)
            .optional()
        })?;
        row.map(parse_account).transpose()
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = self.read(|c| {
            c.prepare_cached(
                "SELECT name, role, password_hash, language, disabled, updated_at FROM accounts ORDER BY name",
            )?
            .query_map([], account_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(parse_account).collect()
    }

    fn session(&self, id_hash: &str) -> Result<Option<Session>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id_hash, account, csrf_token, created_at, expires_at FROM sessions WHERE id_hash = ?1",
            )?
            .query_row(params![id_hash], |r| {
                Ok(Session {
                    id_hash: r.get(0)?,
                    account: r.get(1)?,
                    csrf_token: r.get(2)?,
                    created_at: from_nanos(r.get(3)?),
                    expires_at: from_nanos(r.get(4)?),
                })
            })
            .optional()
        })
    }

    fn ledger_tip(&self) -> Result<(u64, ChainHash), StoreError> {
        let row: Option<(i64, Vec<u8>)> = self.read(|c| {
            c.query_row("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })?;
        Ok(match row {
            None => (0, ChainHash::GENESIS),
            Some((seq, h)) => (u64::try_from(seq).unwrap_or(0), ChainHash::from_slice(&h).unwrap_or_default()),
        })
    }
}

/// The query behind [`Store::export_ledger`] and its arguments. Only the filters that are set
/// become conditions: `(?1 IS NULL OR at >= ?1)` would be one plan for every filter, and SQLite
/// plans it as a full scan, so a filtered export would read the whole ledger instead of using
/// `ledger_by_at`, `ledger_by_measure` or `ledger_by_action`.
fn ledger_query(filter: &LedgerFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut conds: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut add = |cond: &'static str, v: Value| {
        conds.push(cond);
        args.push(v);
    };
    if let Some(t) = filter.since {
        add("at >= ?", Value::Text(mamori_core::ledger::format_time(t)));
    }
    if let Some(t) = filter.until {
        add("at < ?", Value::Text(mamori_core::ledger::format_time(t)));
    }
    if let Some(m) = filter.measure {
        add("measure = ?", Value::Text(m.as_str().to_owned()));
    }
    if let Some(a) = &filter.action_id {
        add("action_id = ?", Value::Text(a.clone()));
    }
    if let Some(s) = filter.before_seq {
        // A sequence number beyond i64 is past every entry: the condition is then no condition,
        // as it was when the conversion failed and the parameter was NULL.
        if let Ok(s) = i64::try_from(s) {
            add("seq < ?", Value::Integer(s));
        }
    }
    let mut sql =
        String::from("SELECT seq, at, kind, measure, action_id, subject, actor, body, prev_hash, hash FROM ledger");
    // A time window alone: without statistics SQLite prefers walking the table in `seq` order
    // (no sort) and testing `at` on every entry, i.e. reading the whole ledger for a day's
    // export. The window's entries through `ledger_by_at`, then sorted, cost what the window
    // holds instead. With a measure or an action, their (…, seq) indexes are better and chosen.
    if (filter.since.is_some() || filter.until.is_some()) && filter.measure.is_none() && filter.action_id.is_none() {
        sql.push_str(" INDEXED BY ledger_by_at");
    }
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    match filter.limit {
        Some(n) => {
            sql.push_str(" ORDER BY seq DESC LIMIT ?");
            args.push(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        None => sql.push_str(" ORDER BY seq"),
    }
    (sql, args)
}

type AccountRow = (String, String, String, String, bool, i64);

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn parse_account(
    (name, role, password_hash, language, disabled, updated_at): AccountRow,
) -> Result<Account, StoreError> {
    Ok(Account {
        role: role.parse().map_err(|e| StoreError::Database(format!("account {name}: {e}")))?,
        language: language.parse().map_err(|e| StoreError::Database(format!("account {name}: {e}")))?,
        name,
        password_hash,
        disabled,
        updated_at: from_nanos(updated_at),
    })
}

/// Convenience for tests and tools: whether an action is in one of the given states.
pub fn in_state(r: &ActionRecord, states: &[ActionState]) -> bool {
    states.contains(&r.state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The plan SQLite picks for an export with this filter, as `EXPLAIN QUERY PLAN` details,
    /// on a connection configured as the store's are (plans fixed at prepare time).
    fn plan(filter: &LedgerFilter) -> String {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn, false).unwrap();
        schema::migrate(&mut conn).unwrap();
        let (sql, args) = ledger_query(filter);
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details: Vec<String> = st
            .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        details.join("; ")
    }

    #[test]
    fn due_actions_are_read_from_the_deadline_index_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn, false).unwrap();
        schema::migrate(&mut conn).unwrap();
        let sql = format!("EXPLAIN QUERY PLAN SELECT record FROM actions {DUE_ACTIONS} LIMIT 10");
        let mut st = conn.prepare(&sql).unwrap();
        let got: Vec<String> = st.query_map([1i64], |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
        let got = got.join("; ");
        assert!(got.contains("USING INDEX actions_due (deadline"), "{got}");
        assert!(!got.contains("TEMP B-TREE"), "{got}");
    }

    #[test]
    fn filtered_exports_use_an_index() {
        let t = Timestamp::from_second(1_790_000_000).unwrap();
        let m = MeasureId::ALL[0];
        let cases: Vec<(LedgerFilter, &str)> = vec![
            (LedgerFilter { since: Some(t), ..Default::default() }, "USING INDEX ledger_by_at (at>?)"),
            (LedgerFilter { until: Some(t), ..Default::default() }, "USING INDEX ledger_by_at (at<?)"),
            (
                LedgerFilter { since: Some(t), until: Some(t), ..Default::default() },
                "USING INDEX ledger_by_at (at>? AND at<?)",
            ),
            (LedgerFilter { measure: Some(m), ..Default::default() }, "USING INDEX ledger_by_measure (measure=?)"),
            (
                LedgerFilter { measure: Some(m), before_seq: Some(9), limit: Some(100), ..Default::default() },
                "USING INDEX ledger_by_measure (measure=? AND seq<?)",
            ),
            (
                LedgerFilter { action_id: Some("a".into()), ..Default::default() },
                "USING INDEX ledger_by_action (action_id=?)",
            ),
            (
                LedgerFilter { before_seq: Some(9), limit: Some(100), ..Default::default() },
                "USING INTEGER PRIMARY KEY (rowid<?)",
            ),
            (
                LedgerFilter { since: Some(t), measure: Some(m), ..Default::default() },
                "USING INDEX ledger_by_measure (measure=?)",
            ),
        ];
        for (filter, want) in cases {
            let got = plan(&filter);
            assert!(got.contains(want), "{filter:?}: plan {got:?}, wanted {want:?}");
            // The pages come out in sequence order without a sort of their own.
            if filter.measure.is_some() || filter.action_id.is_some() || filter.before_seq.is_some() {
                assert!(!got.contains("TEMP B-TREE"), "{filter:?}: plan {got:?}");
            }
        }
        // No filter: the whole ledger in order, which is the table itself.
        assert_eq!(plan(&LedgerFilter::default()), "SCAN ledger");
    }

    #[test]
    fn plans_do_not_depend_on_bound_values() {
        // Otherwise SQLite prepares a statement again whenever a value bound to it changes (it
        // did for the notices and consent reads, at every proposal of a replay).
        let conn = Connection::open_in_memory().unwrap();
        configure(&conn, false).unwrap();
        assert!(conn.db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG).unwrap());
    }

    /// The query before the filters were built from what is set, kept to compare against.
    fn old_query(conn: &Connection, filter: &LedgerFilter) -> Vec<i64> {
        let since = filter.since.map(mamori_core::ledger::format_time);
        let until = filter.until.map(mamori_core::ledger::format_time);
        let measure = filter.measure.map(|m| m.as_str());
        let before = filter.before_seq.and_then(|s| i64::try_from(s).ok());
        let (order, limit) = match filter.limit {
            Some(n) => ("DESC", i64::try_from(n).unwrap_or(i64::MAX)),
            None => ("", -1),
        };
        let mut st = conn
            .prepare(&format!(
                "SELECT seq FROM ledger
                 WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2) AND (?3 IS NULL OR measure = ?3)
                   AND (?4 IS NULL OR action_id = ?4) AND (?5 IS NULL OR seq < ?5)
                 ORDER BY seq {order} LIMIT ?6"
            ))
            .unwrap();
        st.query_map(params![since, until, measure, filter.action_id, before, limit], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn filtered_exports_return_what_they_did() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let t0 = 1_790_000_000i64;
        let measures = [MeasureId::ALL[0], MeasureId::ALL[1]];
        // 600 entries; `at` mostly rising with `seq` but sometimes back (a clock step), some
        // without a measure or an action.
        for seq in 1..=600i64 {
            let at = Timestamp::from_second(t0 + seq * 60 - if seq % 7 == 0 { 3600 } else { 0 }).unwrap();
            let measure = (seq % 5 != 0).then(|| measures[usize::from(seq % 3 == 0)].as_str());
            let action = (seq % 4 != 0).then(|| format!("a{}", seq % 11));
            conn.execute(
                "INSERT INTO ledger (seq, at, kind, measure, action_id, subject, actor, body, prev_hash, hash)
                 VALUES (?1, ?2, 'k', ?3, ?4, NULL, 'x', '{}', x'00', x'00')",
                params![seq, mamori_core::ledger::format_time(at), measure, action],
            )
            .unwrap();
        }
        let at = |m: i64| Some(Timestamp::from_second(t0 + m * 60).unwrap());
        let mut n = 0;
        for since in [None, at(100), at(590), at(700)] {
            for until in [None, at(50), at(300)] {
                for measure in [None, Some(measures[0]), Some(measures[1])] {
                    for action_id in [None, Some("a3".to_owned())] {
                        for (before_seq, limit) in
                            [(None, None), (None, Some(10)), (Some(400), Some(25)), (Some(u64::MAX), None)]
                        {
                            let f =
                                LedgerFilter { since, until, measure, action_id: action_id.clone(), before_seq, limit };
                            let (sql, args) = ledger_query(&f);
                            let got: Vec<i64> = conn
                                .prepare(&sql)
                                .unwrap()
                                .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))
                                .unwrap()
                                .collect::<rusqlite::Result<_>>()
                                .unwrap();
                            assert_eq!(got, old_query(&conn, &f), "{f:?}");
                            n += usize::from(!got.is_empty());
                        }
                    }
                }
            }
        }
        assert!(n > 100, "too few filters matched anything: {n}");
    }

    #[test]
    fn unset_filters_add_no_condition() {
        let (sql, args) = ledger_query(&LedgerFilter::default());
        assert!(!sql.contains("WHERE"), "{sql}");
        assert!(args.is_empty());
        let (sql, args) =
            ledger_query(&LedgerFilter { before_seq: Some(u64::MAX), limit: Some(3), ..Default::default() });
        assert!(!sql.contains("WHERE"), "{sql}");
        assert_eq!(args, vec![rusqlite::types::Value::Integer(3)]);
    }
}
