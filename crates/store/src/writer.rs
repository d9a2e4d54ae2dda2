//! The single writer: every batch goes through one thread that group-commits.
//!
//! Callers hand a batch to the writer and wait for its receipt. The writer takes every batch
//! already queued (up to `group_commit_max`), runs each inside its own savepoint (a conflict in
//! one batch rolls back that batch only), and commits them with one fsync. A receipt is answered
//! only after the commit is on disk, so an acknowledged batch survives `kill -9` and power loss
//! (WAL with `synchronous = FULL`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use jiff::Timestamp;
use mamori_core::action::ActionState;
use mamori_core::catalog::MeasureId;
use mamori_core::ledger::{ChainHash, EventKind, HashInput, LedgerDraft, entry_hash, format_time};
use mamori_core::store::{Batch, Committed, Mutation, StoreError, SweepOutcome};
use mamori_core::subject::Actor;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::{db_err, nanos};

pub(crate) enum Job {
    Batch(Batch, SyncSender<Result<Committed, StoreError>>),
    Sweep(Vec<(MeasureId, Timestamp)>, Timestamp, Actor, SyncSender<Result<Vec<SweepOutcome>, StoreError>>),
}

/// A pending commit: wait for it with [`Receipt::wait`].
#[derive(Debug)]
pub struct Receipt(pub(crate) Receiver<Result<Committed, StoreError>>);

impl Receipt {
    /// Blocks until the batch is durable (or failed).
    pub fn wait(self) -> Result<Committed, StoreError> {
        self.0.recv().map_err(|_| StoreError::WriterGone)?
    }
}

pub(crate) struct Writer {
    pub(crate) tx: Option<SyncSender<Job>>,
    pub(crate) handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Hands a job to the writer thread.
    pub(crate) fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.as_ref().ok_or(StoreError::WriterGone)?.send(job).map_err(|_| StoreError::WriterGone)
    }
}

pub(crate) fn spawn(conn: Connection, checkpoint_every: u32, group_max: u32) -> std::io::Result<Writer> {
    // The queue is bounded so a flood of producers waits instead of growing memory.
    let (tx, rx) = mpsc::sync_channel::<Job>(group_max as usize * 4);
    let handle = std::thread::Builder::new().name("mamori-store-writer".into()).spawn(move || {
        let mut w = WriterLoop::new(conn, checkpoint_every, group_max);
        w.run(rx);
    })?;
    Ok(Writer { tx: Some(tx), handle: Some(handle) })
}

/// The writer: its connection, and how it commits. Runs on its own thread ([`spawn`]), or on
/// the caller's for a single-threaded store.
pub(crate) struct WriterLoop {
    conn: Connection,
    checkpoint_every: i64,
    group_max: usize,
    /// Batches applied in the open transaction of a single-threaded store ([`Self::apply_now`]).
    open: u32,
    /// How many batches such a transaction takes before it commits: one for a durable store.
    batches_per_commit: u32,
    /// Action states as this connection last wrote or read them, for a single-threaded store
    /// ([`Self::apply_now`] keeps it; nothing else writes its file while it is open). A replay
    /// asks the state of every open action every few minutes of data time, tens of thousands of
    /// times a file, and a query costs a microsecond where this costs a hash.
    states: HashMap<String, Option<ActionState>>,
    /// The measures' switches, likewise (asked before every stage-2 unlock and proposal); `None`
    /// until read, and again after a batch that switches one.
    switches: Option<BTreeMap<MeasureId, bool>>,
}

/// At most this many action states are cached; beyond, the cache starts again empty (a long
/// replay's actions are many, its open ones few).
const STATES_CACHED: usize = 1 << 16;

/// A single-threaded store that need not be durable commits after this many batches (or before
/// anything that needs the transaction closed): each commit writes every page its batches
/// dirtied, and a replay's decisions touch the same few pages again and again.
const BATCHES_PER_COMMIT: u32 = 256;

struct Tip {
    seq: i64,
    hash: ChainHash,
}

impl WriterLoop {
    pub(crate) fn new(conn: Connection, checkpoint_every: u32, group_max: u32) -> WriterLoop {
        WriterLoop {
            conn,
            checkpoint_every: i64::from(checkpoint_every.max(1)),
            group_max: group_max.max(1) as usize,
            open: 0,
            batches_per_commit: 1,
            states: HashMap::new(),
            switches: None,
        }
    }

    /// For a single-threaded store that need not be durable: commit every
    /// [`BATCHES_PER_COMMIT`] batches instead of every batch.
    pub(crate) fn deferring_commits(mut self) -> WriterLoop {
        self.batches_per_commit = BATCHES_PER_COMMIT;
        self
    }

    /// The connection, for reads on the caller's thread.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The state of action `id` (`None`: no such action), from the cache if this connection
    /// wrote or read it last (single-threaded stores only: see [`Self::states`]).
    pub(crate) fn action_state(&mut self, id: &str, path: &Path) -> Result<Option<ActionState>, StoreError> {
        if let Some(&state) = self.states.get(id) {
            return Ok(state);
        }
        let state = read_action_state(&self.conn, id, path)?;
        self.cache_state(id, state);
        Ok(state)
    }

    fn cache_state(&mut self, id: &str, state: Option<ActionState>) {
        if self.states.len() >= STATES_CACHED && !self.states.contains_key(id) {
            self.states.clear();
        }
        self.states.insert(id.to_owned(), state);
    }

    /// The measures' switches, from the cache if read since the last batch that switched one
    /// (single-threaded stores only: see [`Self::states`]).
    pub(crate) fn measure_switches(&mut self, path: &Path) -> Result<BTreeMap<MeasureId, bool>, StoreError> {
        if let Some(switches) = &self.switches {
            return Ok(switches.clone());
        }
        let switches = read_measure_switches(&self.conn, path)?;
        self.switches = Some(switches.clone());
        Ok(switches)
    }

    /// Forgets the cached action states and switches (after a failed commit, or a change the
    /// batches didn't describe: a sweep).
    pub(crate) fn forget_states(&mut self) {
        self.states.clear();
        self.switches = None;
    }

    /// Applies one batch here and now, for a single-threaded store: inside a savepoint of a
    /// transaction that stays open for [`BATCHES_PER_COMMIT`] batches if the store need not be
    /// durable (one otherwise), so a failed batch is rolled back alone and the pages shared by
    /// many batches are written once per commit. Reads on this connection see every batch
    /// applied.
    pub(crate) fn apply_now(&mut self, mut batch: Batch) -> Receipt {
        let (reply, rx) = mpsc::sync_channel(1);
        let result = (|| -> Result<Committed, StoreError> {
            if self.open == 0 {
                self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
            }
            self.open += 1;
            let mut tip = read_tip(&self.conn)?;
            exec(&self.conn, "SAVEPOINT batch", []).map_err(db_err)?;
            match apply_batch(&self.conn, &mut batch, &mut tip, self.checkpoint_every) {
                Ok(c) => {
                    exec(&self.conn, "RELEASE batch", []).map_err(db_err)?;
                    for m in &batch.mutations {
                        match m {
                            Mutation::InsertAction(r) | Mutation::UpdateAction { record: r, .. } => {
                                self.cache_state(&r.id, Some(r.state));
                            }
                            Mutation::MeasureEnabled { .. } => self.switches = None,
                            _ => {}
                        }
                    }
                    if self.open >= self.batches_per_commit {
                        self.commit_open()?;
                    }
                    Ok(c)
                }
                Err(e) => {
                    self.conn.execute_batch("ROLLBACK TO batch; RELEASE batch").map_err(db_err)?;
                    Err(e)
                }
            }
        })();
        let _ = reply.send(result);
        Receipt(rx)
    }

    /// Commits the open transaction of [`Self::apply_now`], if any. If the commit fails, the
    /// batches since the last one are lost (the error says so) and the next batch starts a clean
    /// transaction.
    pub(crate) fn commit_open(&mut self) -> Result<(), StoreError> {
        if self.open > 0 {
            let batches = self.open;
            self.open = 0;
            if let Err(e) = self.conn.execute_batch("COMMIT") {
                // The states those batches wrote are gone with them.
                self.forget_states();
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                return Err(StoreError::Database(format!("committing the last {batches} batches: {e}")));
            }
        }
        Ok(())
    }

    fn run(&mut self, rx: Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batches = Vec::new();
            let mut sweeps = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Batch(b, reply) => batches.push((b, reply)),
                    Job::Sweep(c, at, actor, reply) => sweeps.push((c, at, actor, reply)),
                }
                if batches.len() < self.group_max {
                    next = rx.try_recv().ok();
                }
            }
            if !batches.is_empty() {
                self.commit_group(batches);
            }
            for (cutoffs, at, actor, reply) in sweeps {
                let r = self.sweep(&cutoffs, at, &actor);
                let _ = reply.send(r);
            }
        }
    }

    fn commit_group(&mut self, mut jobs: Vec<(Batch, SyncSender<Result<Committed, StoreError>>)>) {
        let result = (|| -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
            let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
            let mut tip = read_tip(&tx)?;
            let mut results = Vec::with_capacity(jobs.len());
            if let [(batch, _)] = jobs.as_mut_slice() {
                // One batch (a bulk caller's): the transaction is its savepoint. A savepoint
                // would have SQLite copy every page the batch touches into a statement journal,
                // for a rollback that rolling back the transaction does as well.
                return match apply_batch(&tx, batch, &mut tip, self.checkpoint_every) {
                    Ok(c) => {
                        tx.commit().map_err(db_err)?;
                        Ok(vec![Ok(c)])
                    }
                    Err(e) => {
                        tx.rollback().map_err(db_err)?;
                        Ok(vec![Err(e)])
                    }
                };
            }
            for (batch, _) in jobs.iter_mut() {
                let sp_tip = Tip { seq: tip.seq, hash: tip.hash };
                exec(&tx, "SAVEPOINT batch", []).map_err(db_err)?;
                match apply_batch(&tx, batch, &mut tip, self.checkpoint_every) {
                    Ok(c) => {
                        exec(&tx, "RELEASE batch", []).map_err(db_err)?;
                        results.push(Ok(c));
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO batch; RELEASE batch").map_err(db_err)?;
                        tip = sp_tip;
                        results.push(Err(e));
                    }
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(results)
        })();
        match result {
            Ok(results) => {
                for ((_, reply), r) in jobs.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (_, reply) in jobs {
                    let _ = reply.send(Err(StoreError::Database(msg.clone())));
                }
            }
        }
    }

    pub(crate) fn sweep(
        &mut self,
        cutoffs: &[(MeasureId, Timestamp)],
        at: Timestamp,
        actor: &Actor,
    ) -> Result<Vec<SweepOutcome>, StoreError> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
        let mut tip = read_tip(&tx)?;
        let at_s = format_time(at);
        let mut outcomes = Vec::new();
        for (measure, before) in cutoffs {
            let m = measure.as_str();
            let cut = nanos(*before);
            // Bodies first: they are counted on their own, before their finished messages go.
            // Messages still queued or being sent are kept (they are a duty not yet done).
            for (table, time_col, extra) in [
                ("records", "at", ""),
                ("stage_unlocks", "until", ""),
                ("outbox_bodies", "at", ""),
                ("outbox", "at", "AND state IN ('sent', 'failed', 'suppressed')"),
            ] {
                let (count, oldest, newest): (i64, Option<i64>, Option<i64>) = tx
                    .query_row(
                        &format!("SELECT count(*), min({time_col}), max({time_col}) FROM {table} WHERE measure = ?1 AND {time_col} < ?2 {extra}"),
                        params![m, cut],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(db_err)?;
                if count == 0 {
                    continue;
                }
                tx.execute(
                    &format!("DELETE FROM {table} WHERE measure = ?1 AND {time_col} < ?2 {extra}"),
                    params![m, cut],
                )
                .map_err(db_err)?;
                let fmt =
                    |n: Option<i64>| n.and_then(|n| Timestamp::from_nanosecond(i128::from(n)).ok()).map(format_time);
                let outcome = SweepOutcome {
                    measure: *measure,
                    table: table.to_owned(),
                    deleted: u64::try_from(count).unwrap_or(0),
                    oldest: fmt(oldest),
                    newest: fmt(newest),
                    before: format_time(*before),
                };
                let draft = LedgerDraft::new(
                    EventKind::RetentionSwept,
                    actor.clone(),
                    json!({"table": table, "deleted": outcome.deleted, "oldest": outcome.oldest,
                           "newest": outcome.newest, "before": outcome.before}),
                )
                .measure(*measure);
                append(&tx, &draft, &at_s, &mut tip, self.checkpoint_every, &Grants::new())?;
                outcomes.push(outcome);
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(outcomes)
    }
}

fn read_tip(conn: &Connection) -> Result<Tip, StoreError> {
    // Read at every commit: prepared once.
    let row: Option<(i64, Vec<u8>)> =
        query_opt(conn, "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?;
    match row {
        None => Ok(Tip { seq: 0, hash: ChainHash::GENESIS }),
        Some((seq, h)) => Ok(Tip {
            seq,
            hash: ChainHash::from_slice(&h)
                .ok_or(StoreError::Chain(mamori_core::ledger::ChainError::MalformedHash { seq }))?,
        }),
    }
}

fn append(
    conn: &Connection,
    d: &LedgerDraft,
    at_s: &str,
    tip: &mut Tip,
    checkpoint_every: i64,
    granted: &Grants,
) -> Result<u64, StoreError> {
    let seq = tip.seq + 1;
    let body = serde_json::to_string(&d.body).map_err(|e| StoreError::Database(e.to_string()))?;
    let measure = d.measure.map(|m| m.as_str());
    let input = HashInput {
        seq,
        at: at_s,
        kind: d.kind.as_str(),
        measure,
        action_id: d.action_id.as_deref(),
        subject: d.subject.as_deref(),
        actor: &d.actor.0,
        body: &body,
    };
    let hash = entry_hash(&tip.hash, &input);
    conn.prepare_cached(
        "INSERT INTO ledger (seq, at, kind, measure, action_id, subject, actor, body, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut st| {
        st.execute(params![
            seq,
            at_s,
            d.kind.as_str(),
            measure,
            d.action_id,
            d.subject,
            d.actor.0,
            body,
            &tip.hash.0[..],
            &hash.0[..]
        ])
    })
    .map_err(db_err)?;
    if seq % checkpoint_every == 0 {
        conn.prepare_cached("INSERT INTO ledger_checkpoints (seq, hash, at) VALUES (?1, ?2, ?3)")
            .and_then(|mut st| st.execute(params![seq, &hash.0[..], at_s]))
            .map_err(db_err)?;
    }
    if d.kind == EventKind::Applied {
        // An action written in this same batch already carries this grant (see `Grants`).
        if let Some(id) = d.action_id.as_ref().filter(|id| !granted.contains_key(id.as_str())) {
            // The entry that granted the authorization, kept on the action for reconciliation.
            conn.prepare_cached("UPDATE actions SET grant_seq = ?1 WHERE id = ?2")
                .and_then(|mut st| st.execute(params![seq, id]))
                .map_err(db_err)?;
            let rec: Option<String> =
                query_opt(conn, "SELECT record FROM actions WHERE id = ?1", params![id], |r| r.get(0))
                    .map_err(db_err)?;
            if let Some(rec) = rec {
                if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&rec) {
                    v["grant_seq"] = json!(seq);
                    exec(conn, "UPDATE actions SET record = ?1 WHERE id = ?2", params![v.to_string(), id])
                        .map_err(db_err)?;
                }
            }
        }
    }
    tip.seq = seq;
    tip.hash = hash;
    u64::try_from(seq).map_err(|_| StoreError::Database("negative sequence".into()))
}

/// Per action, the sequence number of the `applied` entry that grants it, for the actions a batch
/// both writes and applies.
///
/// A batch's mutations are written before its ledger entries, and an `applied` entry's sequence
/// number (the grant) is kept on its action, in the `grant_seq` column and in the record's JSON.
/// The numbers are known before anything is written (the tip plus the entry's place in the
/// batch), so such an action's row is written once, grant included, instead of being written,
/// then read back, parsed, and written again when the entry is appended.
type Grants = std::collections::HashMap<String, i64>;

fn batch_grants(batch: &Batch, tip: &Tip) -> Grants {
    // Only actions whose record the batch writes: their last write (every write carries the
    // grant) is the row that stays.
    let written: std::collections::HashSet<&str> = batch
        .mutations
        .iter()
        .filter_map(|m| match m {
            Mutation::InsertAction(r) => Some(r.id.as_str()),
            Mutation::UpdateAction { record, .. } => Some(record.id.as_str()),
            _ => None,
        })
        .collect();
    let mut grants = Grants::new();
    for (i, d) in batch.ledger.iter().enumerate() {
        if d.kind != EventKind::Applied {
            continue;
        }
        let Some(id) = d.action_id.as_deref().filter(|id| written.contains(id)) else { continue };
        // The last `applied` entry of an action wins, as when each entry updated the row in turn.
        let seq = i64::try_from(i).ok().and_then(|i| tip.seq.checked_add(1 + i)).unwrap_or(i64::MAX);
        grants.insert(id.to_owned(), seq);
    }
    grants
}

fn apply_batch(
    conn: &Connection,
    batch: &mut Batch,
    tip: &mut Tip,
    checkpoint_every: i64,
) -> Result<Committed, StoreError> {
    let grants = if batch.ledger.iter().any(|d| d.kind == EventKind::Applied) {
        batch_grants(batch, tip)
    } else {
        Grants::new()
    };
    for m in &mut batch.mutations {
        if let Mutation::InsertAction(r) | Mutation::UpdateAction { record: r, .. } = m {
            if let Some(&g) = grants.get(r.id.as_str()) {
                r.grant_seq = u64::try_from(g).ok();
            }
        }
        apply_mutation(conn, m, &grants)?;
    }
    let mut seqs = Vec::with_capacity(batch.ledger.len());
    // Every entry of a batch has the batch's time: formatted once.
    let at_s = format_time(batch.at);
    for d in &batch.ledger {
        seqs.push(append(conn, d, &at_s, tip, checkpoint_every, &grants)?);
    }
    Ok(Committed { seqs })
}

/// The stored state of action `id`. The `state` column is written with the record in the same
/// statement (insert and update), so it is the record's state without decoding its JSON.
pub(crate) fn read_action_state(conn: &Connection, id: &str, path: &Path) -> Result<Option<ActionState>, StoreError> {
    let state: Option<String> =
        query_opt(conn, "SELECT state FROM actions WHERE id = ?1", [id], |r| r.get(0)).map_err(db_err)?;
    state.map(|s| s.parse().map_err(|e| crate::corrupt(path, format!("action state: {e}")))).transpose()
}

/// Every measure's switch as stored.
pub(crate) fn read_measure_switches(conn: &Connection, path: &Path) -> Result<BTreeMap<MeasureId, bool>, StoreError> {
    let rows = (|| -> rusqlite::Result<Vec<(String, bool)>> {
        let mut st = conn.prepare_cached("SELECT measure, enabled FROM measure_switches")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })()
    .map_err(db_err)?;
    rows.into_iter().map(|(m, e)| Ok((m.parse().map_err(|e| crate::corrupt(path, e))?, e))).collect()
}

fn record_json(r: &mamori_core::action::ActionRecord) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| StoreError::Database(e.to_string()))
}

fn apply_mutation(conn: &Connection, m: &Mutation, grants: &Grants) -> Result<(), StoreError> {
    match m {
        Mutation::InsertAction(r) => {
            let json = record_json(r)?;
            conn.prepare_cached(
                "INSERT INTO actions (id, measure, target, subscriber, state, proposed_at, deadline, grant_seq, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    r.id,
                    r.measure.as_str(),
                    r.target.to_string(),
                    r.subscriber.as_ref().map(|s| s.0.as_str()),
                    r.state.as_str(),
                    nanos(r.proposed_at),
                    r.deadline.map(nanos),
                    r.grant_seq.and_then(|s| i64::try_from(s).ok()),
                    json,
                ])
            })
            .map_err(db_err)?;
        }
        Mutation::UpdateAction { record: r, expect } => {
            let found: Option<String> =
                query_opt(conn, "SELECT state FROM actions WHERE id = ?1", params![r.id], |row| row.get(0))
                    .map_err(db_err)?;
            match found {
                None => return Err(StoreError::NotFound(format!("action {}", r.id))),
                Some(s) if s != expect.as_str() => {
                    return Err(StoreError::Conflict {
                        action_id: r.id.clone(),
                        expected: expect.to_string(),
                        found: s,
                    });
                }
                Some(_) => {}
            }
            // An `applied` entry of this batch gives the action its grant; otherwise it keeps its own.
            let grant = grants.get(r.id.as_str()).copied();
            let json = record_json(r)?;
            conn.prepare_cached(
                "UPDATE actions SET state = ?2, deadline = ?3, subscriber = ?4, record = ?5,
                 grant_seq = COALESCE(?6, grant_seq) WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    r.id,
                    r.state.as_str(),
                    r.deadline.map(nanos),
                    r.subscriber.as_ref().map(|s| s.0.as_str()),
                    json,
                    grant,
                ])
            })
            .map_err(db_err)?;
        }
        Mutation::AddApproval { action_id, approval } => {
            let assessments =
                serde_json::to_string(&approval.assessments).map_err(|e| StoreError::Database(e.to_string()))?;
            exec(
                conn,
                "INSERT INTO approvals (action_id, approver, at, assessments) VALUES (?1, ?2, ?3, ?4)",
                params![action_id, approval.approver.0, format_time(approval.at), assessments],
            )
            .map_err(db_err)?;
        }
        Mutation::Consent(ev) => {
            exec(conn,
                "INSERT INTO consent_events (subscriber, measure, change, method, at, recorded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ev.subscriber.0, ev.measure.as_str(), ev.change.as_str(), ev.method, format_time(ev.at), ev.recorded_by.0],
            )
            .map_err(db_err)?;
            exec(conn, "UPDATE meta SET value = value + 1 WHERE key = 'consent_generation'", []).map_err(db_err)?;
        }
        Mutation::Notice(n) => {
            exec(conn,
                "INSERT INTO notices (measure, url, version, clause, recorded_at, recorded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![n.measure.as_str(), n.url, n.version, n.clause, format_time(n.recorded_at), n.recorded_by.0],
            )
            .map_err(db_err)?;
            // A terms clause changes who is covered by comprehensive consent.
            exec(conn, "UPDATE meta SET value = value + 1 WHERE key = 'consent_generation'", []).map_err(db_err)?;
        }
        Mutation::MeasureEnabled { measure, enabled, by } => {
            exec(
                conn,
                "INSERT INTO measure_switches (measure, enabled, changed_by) VALUES (?1, ?2, ?3)
                 ON CONFLICT (measure) DO UPDATE SET enabled = excluded.enabled, changed_by = excluded.changed_by",
                params![measure.as_str(), *enabled, by.0],
            )
            .map_err(db_err)?;
        }
        Mutation::Unlock(u) => {
            exec(conn,
                "INSERT INTO stage_unlocks (measure, stage, subject, at, until, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![u.measure.as_str(), u.stage, u.subject.to_string(), nanos(u.at), nanos(u.until), u.reason],
            )
            .map_err(db_err)?;
            exec(conn, "UPDATE meta SET value = value + 1 WHERE key = 'consent_generation'", []).map_err(db_err)?;
        }
        Mutation::Queue(q) => {
            exec(
                conn,
                "INSERT INTO outbox (action_id, measure, subscriber, purpose, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![q.action_id, q.measure.as_str(), q.subscriber.0, q.purpose, nanos(q.at)],
            )
            .map_err(db_err)?;
        }
        Mutation::Delivery(u) => {
            let found: Option<String> =
                query_opt(conn, "SELECT state FROM outbox WHERE id = ?1", params![u.id], |row| row.get(0))
                    .map_err(db_err)?;
            match found {
                None => return Err(StoreError::NotFound(format!("message {}", u.id))),
                Some(s) if s != u.expect.as_str() => {
                    return Err(StoreError::Conflict {
                        action_id: format!("message {}", u.id),
                        expected: u.expect.to_string(),
                        found: s,
                    });
                }
                Some(_) => {}
            }
            conn.prepare_cached(
                "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt_at = ?4, state_at = ?5, reason = ?6 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    u.id,
                    u.state.as_str(),
                    u.attempts,
                    u.next_attempt_at.map(nanos),
                    nanos(u.at),
                    u.reason,
                ])
            })
            .map_err(db_err)?;
            if let Some(b) = &u.body {
                conn.prepare_cached(
                    "INSERT INTO outbox_bodies (outbox_id, measure, at, language, subject, body)
                     SELECT id, measure, ?2, ?3, ?4, ?5 FROM outbox WHERE id = ?1
                     ON CONFLICT (outbox_id) DO UPDATE SET at = excluded.at, language = excluded.language,
                         subject = excluded.subject, body = excluded.body",
                )
                .and_then(|mut st| st.execute(params![u.id, nanos(u.at), b.language, b.subject, b.text]))
                .map_err(db_err)?;
            }
        }
        Mutation::PutContact(c) => {
            conn.prepare_cached(
                "INSERT INTO subscribers (id, email, language, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET email = excluded.email, language = excluded.language,
                     updated_at = excluded.updated_at",
            )
            .and_then(|mut st| st.execute(params![c.subscriber.0, c.email, c.language, nanos(Timestamp::now())]))
            .map_err(db_err)?;
        }
        Mutation::PutAccount(a) => {
            conn.prepare_cached(
                "INSERT INTO accounts (name, role, password_hash, language, disabled, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash,
                     language = excluded.language, disabled = excluded.disabled, updated_at = excluded.updated_at",
            )
            .and_then(|mut st| {
                st.execute(params![
                    a.name,
                    a.role.as_str(),
                    a.password_hash,
                    a.language.as_str(),
                    a.disabled,
                    nanos(a.updated_at)
                ])
            })
            .map_err(db_err)?;
            if a.disabled {
                // A disabled account's sessions end with it.
                conn.prepare_cached("DELETE FROM sessions WHERE account = ?1")
                    .and_then(|mut st| st.execute(params![a.name]))
                    .map_err(db_err)?;
            }
        }
        Mutation::PutSession(se) => {
            // Expired sessions go whenever a new one is opened, so the table stays small.
            conn.prepare_cached("DELETE FROM sessions WHERE expires_at < ?1")
                .and_then(|mut st| st.execute(params![nanos(Timestamp::now())]))
                .map_err(db_err)?;
            conn.prepare_cached(
                "INSERT INTO sessions (id_hash, account, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![se.id_hash, se.account, se.csrf_token, nanos(se.created_at), nanos(se.expires_at)])
            })
            .map_err(db_err)?;
        }
        Mutation::DeleteSession { id_hash } => {
            conn.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")
                .and_then(|mut st| st.execute(params![id_hash]))
                .map_err(db_err)?;
        }
        Mutation::PutRecord(r) => {
            conn.prepare_cached(
                "INSERT INTO records (measure, subject, kind, at, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![r.measure.as_str(), r.subject, r.kind, nanos(r.at), r.payload]))
            .map_err(db_err)?;
        }
    }
    Ok(())
}

/// `execute` through the statement cache: the writer runs the same few statements for every
/// batch, and preparing them each time was a large share of a bulk import.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// The one row a query finds, if any, through the statement cache (`Connection::query_row`
/// prepares the statement again at every call).
pub(crate) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached(sql)?.query_row(params, row).optional()
}
