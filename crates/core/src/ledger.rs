//! The audit ledger's chain: entry format, hashing and verification (DESIGN.md invariant 4).
//!
//! Every governance step writes an entry. Each entry carries the previous entry's hash, and its own
//! hash covers every stored field, so an edit, a deletion, an insertion or a reordering breaks the
//! chain at the first entry concerned. Periodic checkpoints record the hash at a sequence number,
//! which catches truncation of the tail up to the last checkpoint; `mamori audit verify` also
//! prints the tip hash so an auditor can keep it outside the database and pass it back with
//! `--expect-tip` to catch any truncation.
//!
//! The store (crate `mamori-store`) persists entries; this module owns the format so that every
//! store implementation hashes the same bytes.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::MeasureId;
use crate::subject::Actor;

/// The 32-byte chain hash (BLAKE3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The hash before the first entry.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lower- or upper-case hex of 32 bytes.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s.trim()).ok()?;
        Some(ChainHash(v.try_into().ok()?))
    }

    /// From stored bytes; `None` if not 32 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        Some(ChainHash(b.try_into().ok()?))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What happened. The kebab-case name is stored in the ledger and is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)] // the names are the vocabulary of the ledger; README lists them
pub enum EventKind {
    MeasureEnabled,
    MeasureDisabled,
    NoticeRecorded,
    TermsClauseRecorded,
    ConsentGranted,
    ConsentOptedOut,
    ConsentOptedIn,
    ConsentReply,
    Finding,
    StageUnlocked,
    Proposed,
    ConsentRequested,
    PendingApproval,
    Approved,
    Rejected,
    Refused,
    Applied,
    NoticeQueued,
    Lifted,
    Expired,
    Lapsed,
    Reconciled,
    RetentionSwept,
    NoticeSent,
    NoticeFailed,
    NoticeSuppressed,
    ContactsImported,
    LoginSucceeded,
    LoginFailed,
    Logout,
    AccountChanged,
    Test,
}

impl EventKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MeasureEnabled => "measure-enabled",
            EventKind::MeasureDisabled => "measure-disabled",
            EventKind::NoticeRecorded => "notice-recorded",
            EventKind::TermsClauseRecorded => "terms-clause-recorded",
            EventKind::ConsentGranted => "consent-granted",
            EventKind::ConsentOptedOut => "consent-opted-out",
            EventKind::ConsentOptedIn => "consent-opted-in",
            EventKind::ConsentReply => "consent-reply",
            EventKind::Finding => "finding",
            EventKind::StageUnlocked => "stage-unlocked",
            EventKind::Proposed => "proposed",
            EventKind::ConsentRequested => "consent-requested",
            EventKind::PendingApproval => "pending-approval",
            EventKind::Approved => "approved",
            EventKind::Rejected => "rejected",
            EventKind::Refused => "refused",
            EventKind::Applied => "applied",
            EventKind::NoticeQueued => "notice-queued",
            EventKind::Lifted => "lifted",
            EventKind::Expired => "expired",
            EventKind::Lapsed => "lapsed",
            EventKind::Reconciled => "reconciled",
            EventKind::RetentionSwept => "retention-swept",
            EventKind::NoticeSent => "notice-sent",
            EventKind::NoticeFailed => "notice-failed",
            EventKind::NoticeSuppressed => "notice-suppressed",
            EventKind::ContactsImported => "contacts-imported",
            EventKind::LoginSucceeded => "login-succeeded",
            EventKind::LoginFailed => "login-failed",
            EventKind::Logout => "logout",
            EventKind::AccountChanged => "account-changed",
            EventKind::Test => "test",
        }
    }
}

/// An entry to be appended; the store assigns sequence number, time and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerDraft {
    /// What happened.
    pub kind: EventKind,
    /// Under which measure, if any.
    pub measure: Option<MeasureId>,
    /// Which action, if any.
    pub action_id: Option<String>,
    /// The target or subscriber concerned (the ledger is the auditor's record; it never reaches logs).
    pub subject: Option<String>,
    /// Who did it.
    pub actor: Actor,
    /// Details (a JSON object).
    pub body: serde_json::Value,
}

impl LedgerDraft {
    /// A draft with no measure, action or subject.
    pub fn new(kind: EventKind, actor: Actor, body: serde_json::Value) -> Self {
        LedgerDraft { kind, measure: None, action_id: None, subject: None, actor, body }
    }

    /// Sets the measure.
    pub fn measure(mut self, m: MeasureId) -> Self {
        self.measure = Some(m);
        self
    }

    /// Sets the action.
    pub fn action(mut self, id: impl Into<String>) -> Self {
        self.action_id = Some(id.into());
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }
}

/// A stored ledger entry, as an auditor reads it (and as `audit export` writes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// 1-based sequence number, without gaps.
    pub seq: u64,
    /// When it was written (RFC 3339, UTC, as stored and hashed).
    pub at: String,
    /// Event kind name.
    pub kind: String,
    /// Measure id, if any.
    pub measure: Option<String>,
    /// Action id, if any.
    pub action_id: Option<String>,
    /// Subject, if any.
    pub subject: Option<String>,
    /// Actor.
    pub actor: String,
    /// Body, canonical JSON text as stored and hashed.
    pub body: String,
    /// Previous entry's hash, hex.
    pub prev_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

/// A stored entry borrowed from a database row, for allocation-free verification.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// Sequence number.
    pub seq: i64,
    /// Stored time text.
    pub at: &'a str,
    /// Stored kind.
    pub kind: &'a str,
    /// Stored measure.
    pub measure: Option<&'a str>,
    /// Stored action id.
    pub action_id: Option<&'a str>,
    /// Stored subject.
    pub subject: Option<&'a str>,
    /// Stored actor.
    pub actor: &'a str,
    /// Stored body.
    pub body: &'a str,
    /// Stored previous hash bytes.
    pub prev_hash: &'a [u8],
    /// Stored hash bytes.
    pub hash: &'a [u8],
}

/// The fields that a hash covers (everything but the hash itself).
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// Sequence number.
    pub seq: i64,
    /// Time text.
    pub at: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Measure.
    pub measure: Option<&'a str>,
    /// Action id.
    pub action_id: Option<&'a str>,
    /// Subject.
    pub subject: Option<&'a str>,
    /// Actor.
    pub actor: &'a str,
    /// Body.
    pub body: &'a str,
}

/// Computes an entry's hash from the previous hash and its fields.
///
/// Fields are length-prefixed so that moving bytes between adjacent fields changes the hash.
pub fn entry_hash(prev: &ChainHash, e: &HashInput<'_>) -> ChainHash {
    let mut h = blake3::Hasher::new();
    h.update(b"mamori-ledger-v1\0");
    h.update(&prev.0);
    h.update(&e.seq.to_le_bytes());
    for field in [Some(e.at), Some(e.kind), e.measure, e.action_id, e.subject, Some(e.actor), Some(e.body)] {
        match field {
            None => {
                h.update(&[0]);
            }
            Some(s) => {
                h.update(&[1]);
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    ChainHash(*h.finalize().as_bytes())
}

/// Formats a ledger time: UTC, RFC 3339, microseconds.
pub fn format_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Entries are missing (deleted) before this one.
    #[error("ledger entry {seq}: expected sequence {expected}: entries {expected}..{} are missing or reordered", seq - 1)]
    Gap {
        /// The entry found.
        seq: i64,
        /// The sequence expected.
        expected: i64,
    },
    /// The entry's stored hash doesn't match its content: it was edited.
    #[error("ledger entry {seq}: content does not match its hash (the entry was edited)")]
    ContentMismatch {
        /// The entry.
        seq: i64,
    },
    /// The entry doesn't link to the previous one: an insertion, a reordering or an edited predecessor.
    #[error("ledger entry {seq}: does not link to entry {} (an entry was inserted, removed or reordered)", seq - 1)]
    BrokenLink {
        /// The entry.
        seq: i64,
    },
    /// A hash column has the wrong size.
    #[error("ledger entry {seq}: malformed hash column")]
    MalformedHash {
        /// The entry.
        seq: i64,
    },
    /// A checkpoint disagrees with the entry it names.
    #[error(
        "ledger checkpoint at entry {seq}: recorded hash differs from the chain (entry {seq} or an earlier one was rewritten)"
    )]
    CheckpointMismatch {
        /// The entry.
        seq: i64,
    },
    /// A checkpoint names an entry that no longer exists: the tail was deleted.
    #[error("ledger checkpoint at entry {seq}: the chain ends at entry {tip}: entries after {tip} were deleted")]
    Truncated {
        /// The checkpoint's entry.
        seq: i64,
        /// The last entry found.
        tip: i64,
    },
    /// The tip differs from the one the auditor expected.
    #[error("ledger tip is entry {tip} with hash {hash}, not the expected {expected}")]
    UnexpectedTip {
        /// The last entry found.
        tip: i64,
        /// Its hash.
        hash: String,
        /// What the auditor expected.
        expected: String,
    },
}

impl ChainError {
    /// The first bad entry's sequence number.
    pub fn seq(&self) -> i64 {
        match self {
            ChainError::Gap { expected, .. } => *expected,
            ChainError::ContentMismatch { seq }
            | ChainError::BrokenLink { seq }
            | ChainError::MalformedHash { seq }
            | ChainError::CheckpointMismatch { seq }
            | ChainError::Truncated { seq, .. } => *seq,
            ChainError::UnexpectedTip { tip, .. } => *tip,
        }
    }
}

/// A checkpoint: the chain hash at an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The entry.
    pub seq: i64,
    /// Its hash.
    pub hash: ChainHash,
}

/// Streaming verifier: push entries in stored order, then [`ChainVerifier::finish`].
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev: ChainHash,
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// The last entry's sequence number (0 for an empty ledger).
    pub tip_seq: i64,
    /// The last entry's hash, hex.
    pub tip_hash: String,
    /// Checkpoints matched.
    pub checkpoints: u64,
}

impl ChainVerifier {
    /// A verifier that also checks the given checkpoints (any order).
    pub fn new(mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.sort_by_key(|c| c.seq);
        ChainVerifier { expected_seq: 1, prev: ChainHash::GENESIS, checkpoints, next_checkpoint: 0 }
    }

    /// Checks the next stored entry.
    pub fn push(&mut self, e: &EntryRef<'_>) -> Result<(), ChainError> {
        if e.seq != self.expected_seq {
            // An entry with a higher sequence means deletions; a lower or equal one means an
            // insertion or reordering (which also breaks the link below).
            if e.seq > self.expected_seq {
                return Err(ChainError::Gap { seq: e.seq, expected: self.expected_seq });
            }
            return Err(ChainError::BrokenLink { seq: e.seq });
        }
        let stored = ChainHash::from_slice(e.hash).ok_or(ChainError::MalformedHash { seq: e.seq })?;
        let prev = ChainHash::from_slice(e.prev_hash).ok_or(ChainError::MalformedHash { seq: e.seq })?;
        let computed = entry_hash(
            &prev,
            &HashInput {
                seq: e.seq,
                at: e.at,
                kind: e.kind,
                measure: e.measure,
                action_id: e.action_id,
                subject: e.subject,
                actor: e.actor,
                body: e.body,
            },
        );
        if computed != stored {
            return Err(ChainError::ContentMismatch { seq: e.seq });
        }
        if prev != self.prev {
            return Err(ChainError::BrokenLink { seq: e.seq });
        }
        while let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
            if cp.seq > e.seq {
                break;
            }
            if cp.seq == e.seq && cp.hash != stored {
                return Err(ChainError::CheckpointMismatch { seq: cp.seq });
            }
            self.next_checkpoint += 1;
        }
        self.prev = stored;
        self.expected_seq += 1;
        Ok(())
    }

    /// Ends verification: checks that no checkpoint lies beyond the tip and, if given, the tip.
    pub fn finish(self, expect_tip: Option<&ChainHash>) -> Result<VerifyReport, ChainError> {
        let tip = self.expected_seq - 1;
        if let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
            return Err(ChainError::Truncated { seq: cp.seq, tip });
        }
        if let Some(exp) = expect_tip {
            if *exp != self.prev {
                return Err(ChainError::UnexpectedTip { tip, hash: self.prev.to_hex(), expected: exp.to_hex() });
            }
        }
        Ok(VerifyReport {
            entries: u64::try_from(tip).unwrap_or(0),
            tip_seq: tip,
            tip_hash: self.prev.to_hex(),
            checkpoints: self.next_checkpoint as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Owned {
        seq: i64,
        at: String,
        body: String,
        prev: ChainHash,
        hash: ChainHash,
    }

    fn chain(n: i64) -> Vec<Owned> {
        let mut prev = ChainHash::GENESIS;
        (1..=n)
            .map(|seq| {
                let at = format!("2026-11-24T00:00:{:02}.000000Z", seq % 60);
                let body = format!("{{\"n\":{seq}}}");
                let hash = entry_hash(
                    &prev,
                    &HashInput {
                        seq,
                        at: &at,
                        kind: "test",
                        measure: None,
                        action_id: None,
                        subject: None,
                        actor: "t",
                        body: &body,
                    },
                );
                let o = Owned { seq, at, body, prev, hash };
                prev = hash;
                o
            })
            .collect()
    }

    fn verify(entries: &[Owned], cps: Vec<Checkpoint>) -> Result<VerifyReport, ChainError> {
        let mut v = ChainVerifier::new(cps);
        for o in entries {
            v.push(&EntryRef {
                seq: o.seq,
                at: &o.at,
                kind: "test",
                measure: None,
                action_id: None,
                subject: None,
                actor: "t",
                body: &o.body,
                prev_hash: &o.prev.0,
                hash: &o.hash.0,
            })?;
        }
        v.finish(None)
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(10);
        let r = verify(&c, vec![Checkpoint { seq: 5, hash: c[4].hash }]).unwrap();
        assert_eq!(r.entries, 10);
        assert_eq!(r.checkpoints, 1);
        assert_eq!(r.tip_hash, c[9].hash.to_hex());
    }

    #[test]
    fn edit_is_named() {
        let mut c = chain(10);
        c[3].body = "{\"n\":5}".into();
        assert_eq!(verify(&c, vec![]).unwrap_err(), ChainError::ContentMismatch { seq: 4 });
    }

    #[test]
    fn deletion_is_named() {
        let mut c = chain(10);
        c.remove(6);
        assert_eq!(verify(&c, vec![]).unwrap_err(), ChainError::Gap { seq: 8, expected: 7 });
    }

    #[test]
    fn reordering_is_detected() {
        let mut c = chain(10);
        c.swap(2, 3);
        let e = verify(&c, vec![]).unwrap_err();
        assert_eq!(e.seq(), 3);
    }

    #[test]
    fn renumbered_insertion_breaks_the_link() {
        // an attacker inserts an entry and renumbers the rest, keeping each hash self-consistent
        let mut c = chain(5);
        let fake_prev = c[1].hash;
        let at = "2026-11-24T00:00:00.000000Z".to_string();
        let body = "{}".to_string();
        let hash = entry_hash(
            &fake_prev,
            &HashInput {
                seq: 3,
                at: &at,
                kind: "test",
                measure: None,
                action_id: None,
                subject: None,
                actor: "t",
                body: &body,
            },
        );
        c.insert(2, Owned { seq: 3, at, body, prev: fake_prev, hash });
        for (i, o) in c.iter_mut().enumerate().skip(3) {
            o.seq = i as i64 + 1;
        }
        // entry 4 (old 3) now fails: its hash covered seq 3
        assert_eq!(verify(&c, vec![]).unwrap_err(), ChainError::ContentMismatch { seq: 4 });
    }

    #[test]
    fn truncation_is_caught_by_checkpoint() {
        let c = chain(10);
        let cp = Checkpoint { seq: 10, hash: c[9].hash };
        let e = verify(&c[..8], vec![cp]).unwrap_err();
        assert_eq!(e, ChainError::Truncated { seq: 10, tip: 8 });
    }

    #[test]
    fn unexpected_tip_is_reported() {
        let c = chain(3);
        let mut v = ChainVerifier::new(vec![]);
        for o in &c {
            v.push(&EntryRef {
                seq: o.seq,
                at: &o.at,
                kind: "test",
                measure: None,
                action_id: None,
                subject: None,
                actor: "t",
                body: &o.body,
                prev_hash: &o.prev.0,
                hash: &o.hash.0,
            })
            .unwrap();
        }
        assert!(matches!(v.finish(Some(&c[1].hash)), Err(ChainError::UnexpectedTip { tip: 3, .. })));
    }

    #[test]
    fn length_prefix_separates_fields() {
        let a = entry_hash(
            &ChainHash::GENESIS,
            &HashInput {
                seq: 1,
                at: "a",
                kind: "bc",
                measure: None,
                action_id: None,
                subject: None,
                actor: "",
                body: "",
            },
        );
        let b = entry_hash(
            &ChainHash::GENESIS,
            &HashInput {
                seq: 1,
                at: "ab",
                kind: "c",
                measure: None,
                action_id: None,
                subject: None,
                actor: "",
                body: "",
            },
        );
        assert_ne!(a, b);
    }
}
