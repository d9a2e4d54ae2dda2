//! Schema and stepwise migrations. `PRAGMA user_version` holds the schema version,
//! `PRAGMA application_id` marks the file as mamori's.

use rusqlite::Connection;

/// "mamo" in ASCII: marks a SQLite file as a mamori database.
pub const APPLICATION_ID: i64 = 0x6d61_6d6f;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 3;

/// Migration `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the kernel.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    INSERT INTO meta (key, value) VALUES ('consent_generation', 0);

    CREATE TABLE ledger (
        seq       INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        kind      TEXT NOT NULL,
        measure   TEXT,
        action_id TEXT,
        subject   TEXT,
        actor     TEXT NOT NULL,
        body      TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    ) STRICT;
    CREATE INDEX ledger_by_at ON ledger (at);
    CREATE INDEX ledger_by_measure ON ledger (measure, seq);

    CREATE TABLE ledger_checkpoints (
        seq  INTEGER PRIMARY KEY,
        hash BLOB NOT NULL,
        at   TEXT NOT NULL
    ) STRICT;

    CREATE TABLE actions (
        id          TEXT PRIMARY KEY,
        measure     TEXT NOT NULL,
        target      TEXT NOT NULL,
        subscriber  TEXT,
        state       TEXT NOT NULL,
        proposed_at INTEGER NOT NULL,
        deadline    INTEGER,
        grant_seq   INTEGER,
        record      TEXT NOT NULL
    ) STRICT;
    CREATE INDEX actions_open ON actions (measure, target)
        WHERE state IN ('proposed', 'awaiting-consent', 'pending-approval', 'applied');
    CREATE INDEX actions_due ON actions (deadline)
        WHERE state IN ('awaiting-consent', 'pending-approval', 'applied');
    CREATE INDEX actions_by_time ON actions (proposed_at);
    CREATE INDEX actions_by_state ON actions (state, proposed_at);

    CREATE TABLE approvals (
        action_id   TEXT NOT NULL REFERENCES actions (id),
        approver    TEXT NOT NULL,
        at          TEXT NOT NULL,
        assessments TEXT NOT NULL,
        PRIMARY KEY (action_id, approver)
    ) STRICT;

    CREATE TABLE consent_events (
        id          INTEGER PRIMARY KEY,
        subscriber  TEXT NOT NULL,
        measure     TEXT NOT NULL,
        change      TEXT NOT NULL,
        method      TEXT NOT NULL,
        at          TEXT NOT NULL,
        recorded_by TEXT NOT NULL
    ) STRICT;
    CREATE INDEX consent_by_subscriber ON consent_events (subscriber, id);
    CREATE INDEX consent_by_measure ON consent_events (measure, subscriber, id);

    CREATE TABLE notices (
        id          INTEGER PRIMARY KEY,
        measure     TEXT NOT NULL,
        url         TEXT NOT NULL,
        version     TEXT NOT NULL,
        clause      TEXT,
        recorded_at TEXT NOT NULL,
        recorded_by TEXT NOT NULL
    ) STRICT;
    CREATE INDEX notices_by_measure ON notices (measure, id);

    CREATE TABLE measure_switches (
        measure    TEXT PRIMARY KEY,
        enabled    INTEGER NOT NULL,
        changed_by TEXT NOT NULL
    ) STRICT;

    CREATE TABLE stage_unlocks (
        id      INTEGER PRIMARY KEY,
        measure TEXT NOT NULL,
        stage   INTEGER NOT NULL,
        subject TEXT NOT NULL,
        at      INTEGER NOT NULL,
        until   INTEGER NOT NULL,
        reason  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX unlocks_by_until ON stage_unlocks (until);

    CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY,
        action_id  TEXT NOT NULL,
        measure    TEXT NOT NULL,
        subscriber TEXT NOT NULL,
        purpose    TEXT NOT NULL,
        at         INTEGER NOT NULL,
        state      TEXT NOT NULL DEFAULT 'queued'
    ) STRICT;
    CREATE INDEX outbox_by_measure ON outbox (measure, at);

    CREATE TABLE records (
        id      INTEGER PRIMARY KEY,
        measure TEXT NOT NULL,
        subject TEXT NOT NULL,
        kind    TEXT NOT NULL,
        at      INTEGER NOT NULL,
        payload TEXT NOT NULL
    ) STRICT;
    CREATE INDEX records_by_measure ON records (measure, at);
    "#,
    // 1 → 2: notifications: delivery state per message, the text sent (kept for the measure's
    // retention), the subscriber directory.
    r#"
    ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER;
    ALTER TABLE outbox ADD COLUMN state_at INTEGER;
    ALTER TABLE outbox ADD COLUMN reason TEXT;
    CREATE INDEX outbox_due ON outbox (state, id);
    CREATE INDEX outbox_by_subscriber ON outbox (subscriber, measure, purpose, id);

    CREATE TABLE outbox_bodies (
        outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
        measure   TEXT NOT NULL,
        at        INTEGER NOT NULL,
        language  TEXT NOT NULL,
        subject   TEXT NOT NULL,
        body      TEXT NOT NULL
    ) STRICT;
    CREATE INDEX outbox_bodies_by_measure ON outbox_bodies (measure, at);

    CREATE TABLE subscribers (
        id         TEXT PRIMARY KEY,
        email      TEXT,
        language   TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // 2 → 3: people (console and API accounts) and their sessions.
    r#"
    CREATE TABLE accounts (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        language      TEXT NOT NULL,
        disabled      INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE sessions (
        id_hash    TEXT PRIMARY KEY,
        account    TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE INDEX ledger_by_action ON ledger (action_id, seq);
    "#,
];

/// Brings a database to [`SCHEMA_VERSION`], one step per transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
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
