//! The storage seam: governance writes state and ledger entries through [`Store`], atomically.
//!
//! The embedded SQLite implementation lives in `mamori-store`; PostgreSQL can follow behind the
//! same trait (DESIGN.md "Scale"). Every write is a [`Batch`]: state mutations and the ledger
//! entries that explain them commit together or not at all, so the ledger never records an action
//! the store lost, and the store never holds an action the ledger doesn't explain.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::action::{ActionRecord, ActionState, Approval};
use crate::catalog::MeasureId;
use crate::consent::{ConsentEvent, PublicNotice};
use crate::ledger::{ChainError, ChainHash, LedgerDraft, LedgerEntry, VerifyReport};
use crate::subject::{Actor, SubscriberId, Target};

/// A stage unlocked for one subject (DESIGN.md invariant 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageUnlock {
    /// The measure.
    pub measure: MeasureId,
    /// The stage unlocked.
    pub stage: u8,
    /// For whom.
    pub subject: Target,
    /// From when.
    pub at: Timestamp,
    /// Until when.
    pub until: Timestamp,
    /// Why (stage 1's inconclusive result).
    pub reason: String,
}

/// A message governance owes someone (consent request, emergency notice, alert, lift notice);
/// delivered by the notification family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    /// The action it belongs to.
    pub action_id: String,
    /// The measure.
    pub measure: MeasureId,
    /// The subscriber to tell.
    pub subscriber: SubscriberId,
    /// consent-request, emergency-notice, alert, confirmation, lift-notice.
    pub purpose: String,
    /// When queued.
    pub at: Timestamp,
}

/// Where a queued message stands (the notification family moves it on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Queued,
    /// Handed to a channel; an attempt is under way.
    Sending,
    /// Delivered to the channel (the SMTP relay accepted it).
    Sent,
    /// Given up: a permanent refusal, no contact, or the last of its attempts failed.
    Failed,
    /// Not sent on purpose: the rate limit (one alert per subscriber, measure and period) or an
    /// opt-out that came after it was queued.
    Suppressed,
}

impl DeliveryState {
    /// Every state.
    pub const ALL: [DeliveryState; 5] = [
        DeliveryState::Queued,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Failed,
        DeliveryState::Suppressed,
    ];

    /// The stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Suppressed => "suppressed",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether nothing more will happen to the message.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Sent | DeliveryState::Failed | DeliveryState::Suppressed)
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queued message with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The outbox row.
    pub id: i64,
    /// What governance queued.
    pub message: OutboxMessage,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (queued messages).
    pub next_attempt_at: Option<Timestamp>,
    /// When the state last changed.
    pub state_at: Option<Timestamp>,
    /// Why it failed or was suppressed, or the last attempt's failure: a short classification
    /// (`rate-limit`, `opted-out`, `no-contact`, `smtp-transient 451`…), never the peer's text,
    /// which may quote the address.
    pub reason: Option<String>,
}

/// The text a subscriber was sent, kept only for the measure's retention.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RenderedBody {
    /// `ja` or `en`.
    pub language: String,
    /// The subject line.
    pub subject: String,
    /// The body, with the notice-page link's token redacted.
    pub text: String,
}

impl std::fmt::Debug for RenderedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies are subscriber data: never in logs.
        f.debug_struct("RenderedBody")
            .field("language", &self.language)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .finish_non_exhaustive()
    }
}

/// A message's delivery moving on, committed with the ledger entry that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    /// The outbox row.
    pub id: i64,
    /// The state the writer read; the commit fails with [`StoreError::Conflict`] otherwise.
    pub expect: DeliveryState,
    /// The new state.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<Timestamp>,
    /// When this change happened.
    pub at: Timestamp,
    /// A short classification of a failure or suppression.
    pub reason: Option<String>,
    /// The text sent, kept for the measure's retention.
    pub body: Option<RenderedBody>,
}

/// A subscriber's contact for notifications: their language and email address.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SubscriberContact {
    /// Whose.
    pub subscriber: SubscriberId,
    /// Email address, if the subscriber has one.
    pub email: Option<String>,
    /// `ja` or `en`.
    pub language: String,
}

impl std::fmt::Debug for SubscriberContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses never reach logs.
        f.debug_struct("SubscriberContact")
            .field("language", &self.language)
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A raw record or unlocked datum kept under a measure (purpose binding, DESIGN.md invariant 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecord {
    /// The measure it was read or unlocked for.
    pub measure: MeasureId,
    /// Its subject key.
    pub subject: String,
    /// What kind of record (cdr, stage-2-calls, report-row, …).
    pub kind: String,
    /// Data time of the record.
    pub at: Timestamp,
    /// The content (JSON).
    pub payload: String,
}

/// A state change to commit with its ledger entries.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// A new action.
    InsertAction(Box<ActionRecord>),
    /// A changed action; fails with [`StoreError::Conflict`] unless its stored state is `expect`.
    UpdateAction {
        /// The new record.
        record: Box<ActionRecord>,
        /// The state the writer read.
        expect: ActionState,
    },
    /// An approval of an action.
    AddApproval {
        /// The action.
        action_id: String,
        /// The approval.
        approval: Approval,
    },
    /// A consent event.
    Consent(ConsentEvent),
    /// A public notice / terms clause.
    Notice(PublicNotice),
    /// A measure switched on or off.
    MeasureEnabled {
        /// The measure.
        measure: MeasureId,
        /// On or off.
        enabled: bool,
        /// By whom.
        by: Actor,
    },
    /// A stage unlock.
    Unlock(StageUnlock),
    /// A message to deliver.
    Queue(OutboxMessage),
    /// A record kept under a measure's retention.
    PutRecord(StoredRecord),
    /// A queued message's delivery moved on.
    Delivery(DeliveryUpdate),
    /// A subscriber's contact (language, email address), added or replaced.
    PutContact(SubscriberContact),
    /// A person's account, added or replaced (role, password hash, language, disabled).
    PutAccount(crate::account::Account),
    /// A console session opened.
    PutSession(crate::account::Session),
    /// A console session closed (logout), by the hash of its secret.
    DeleteSession {
        /// Hex BLAKE3 hash of the session secret.
        id_hash: String,
    },
}

/// One atomic write.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The governance clock's time for the ledger entries (data time in replay).
    pub at: Timestamp,
    /// State changes.
    pub mutations: Vec<Mutation>,
    /// Ledger entries, appended in order.
    pub ledger: Vec<LedgerDraft>,
}

/// What a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The ledger sequence numbers assigned, in draft order.
    pub seqs: Vec<u64>,
}

/// Filter for listing actions.
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    /// Only this state.
    pub state: Option<ActionState>,
    /// Only this measure.
    pub measure: Option<MeasureId>,
    /// Proposed at or after.
    pub since: Option<Timestamp>,
    /// Proposed before.
    pub until: Option<Timestamp>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// Filter for exporting the ledger.
#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    /// Entries written at or after.
    pub since: Option<Timestamp>,
    /// Entries written before.
    pub until: Option<Timestamp>,
    /// Only this measure.
    pub measure: Option<MeasureId>,
    /// Only entries about this action.
    pub action_id: Option<String>,
    /// Only entries before this sequence number (paging backwards).
    pub before_seq: Option<u64>,
    /// At most this many; with a limit the newest come first (a page of the ledger browser).
    pub limit: Option<usize>,
}

/// What a retention sweep deleted from one table for one measure (counts and ranges, never content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepOutcome {
    /// The measure.
    pub measure: MeasureId,
    /// What was deleted (records, unlocks, outbox).
    pub table: String,
    /// How many rows.
    pub deleted: u64,
    /// Oldest deleted data time.
    pub oldest: Option<String>,
    /// Newest deleted data time.
    pub newest: Option<String>,
    /// The cut-off.
    pub before: String,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file is not a mamori database or is damaged.
    #[error("the database at {path} is damaged or not a mamori database: {detail}")]
    Corrupt {
        /// File.
        path: String,
        /// What SQLite said.
        detail: String,
    },
    /// Another process holds the database (a running service, or a replay writing its own
    /// database) and did not let go within the busy timeout.
    #[error(
        "the database at {path} is in use by another process (still locked after {waited_secs} s): stop it, or use another file"
    )]
    InUse {
        /// File.
        path: String,
        /// How long the open waited.
        waited_secs: u64,
    },
    /// The database was written by a newer mamori.
    #[error("the database schema version {found} is newer than this mamori understands ({supported})")]
    TooNew {
        /// Found.
        found: i64,
        /// Supported.
        supported: i64,
    },
    /// An action changed under the writer (optimistic concurrency).
    #[error("action {action_id} is no longer {expected} (it is {found})")]
    Conflict {
        /// The action.
        action_id: String,
        /// State the writer expected.
        expected: String,
        /// State found.
        found: String,
    },
    /// Not found.
    #[error("{0} not found")]
    NotFound(String),
    /// The ledger chain is broken.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The writer thread has stopped.
    #[error("the store's writer has stopped")]
    WriterGone,
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
    /// I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Persistent state of governance and the audit ledger.
pub trait Store: Send + Sync {
    /// Commits a batch atomically and durably; returns once it is on disk.
    fn commit(&self, batch: Batch) -> Result<Committed, StoreError>;

    /// One action with its approvals.
    fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError>;
    /// Actions matching a filter, newest first.
    fn actions(&self, filter: &ActionFilter) -> Result<Vec<ActionRecord>, StoreError>;
    /// The state of one action, without reading its record: for engines that check an action's
    /// state often (a store overrides it with a cheaper read than [`Store::action`]).
    fn action_state(&self, id: &str) -> Result<Option<ActionState>, StoreError> {
        Ok(self.action(id)?.map(|a| a.state))
    }
    /// The open (not final) action of a measure on a target, if any.
    fn open_action(&self, measure: MeasureId, target: &Target) -> Result<Option<ActionRecord>, StoreError>;
    /// Open actions whose deadline is at or before `now`.
    fn due_actions(&self, now: Timestamp) -> Result<Vec<ActionRecord>, StoreError>;

    /// A subscriber's consent history, oldest first.
    fn consent_history(&self, subscriber: &SubscriberId) -> Result<Vec<ConsentEvent>, StoreError>;
    /// Subscribers whose latest event for the measure is an opt-out.
    fn opted_out(&self, measure: MeasureId) -> Result<Vec<SubscriberId>, StoreError>;
    /// A counter that changes whenever consent changes (cheap; lets other processes notice an opt-out).
    fn consent_generation(&self) -> Result<u64, StoreError>;

    /// Public notices recorded for a measure, newest first.
    fn notices(&self, measure: MeasureId) -> Result<Vec<PublicNotice>, StoreError>;
    /// Enabled/disabled state per measure (absent = never enabled).
    fn measure_switches(&self) -> Result<BTreeMap<MeasureId, bool>, StoreError>;
    /// Stage unlocks in force at `now`.
    fn active_unlocks(&self, now: Timestamp) -> Result<Vec<StageUnlock>, StoreError>;
    /// Queued messages, oldest first.
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Queued messages whose next attempt is due at `now`, oldest first.
    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Messages in one state, oldest first.
    fn deliveries_in_state(&self, state: DeliveryState, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// A subscriber's messages, newest first.
    fn subscriber_deliveries(&self, subscriber: &SubscriberId, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Whether another message of this subscriber, measure and purpose was sent at or after
    /// `since`, is being sent, or is queued ahead of message `id` (the rate limit's question).
    fn delivery_ahead(
        &self,
        id: i64,
        subscriber: &SubscriberId,
        measure: MeasureId,
        purpose: &str,
        since: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The text a message was sent with, while the measure's retention keeps it.
    fn delivery_body(&self, id: i64) -> Result<Option<RenderedBody>, StoreError>;
    /// How many messages are in each state.
    fn delivery_counts(&self) -> Result<BTreeMap<DeliveryState, u64>, StoreError>;
    /// A subscriber's contact, if the directory has one.
    fn contact(&self, subscriber: &SubscriberId) -> Result<Option<SubscriberContact>, StoreError>;

    /// Deletes, per measure, records, expired unlocks, message bodies and finished messages older
    /// than its cut-off, writing one ledger entry per measure and table with counts and ranges.
    fn retention_sweep(
        &self,
        cutoffs: &[(MeasureId, Timestamp)],
        at: Timestamp,
        actor: &Actor,
    ) -> Result<Vec<SweepOutcome>, StoreError>;

    /// Verifies the whole ledger chain and its checkpoints.
    fn verify_ledger(&self, expect_tip: Option<&ChainHash>) -> Result<VerifyReport, StoreError>;
    /// Streams ledger entries matching the filter, oldest first.
    fn export_ledger(
        &self,
        filter: &LedgerFilter,
        sink: &mut dyn FnMut(LedgerEntry) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError>;
    /// The number of entries and the tip hash.
    fn ledger_tip(&self) -> Result<(u64, ChainHash), StoreError>;
    /// A person's account.
    fn account(&self, name: &str) -> Result<Option<crate::account::Account>, StoreError>;
    /// Every account, by name.
    fn accounts(&self) -> Result<Vec<crate::account::Account>, StoreError>;
    /// A console session by the hash of its secret (expired ones too: the caller checks).
    fn session(&self, id_hash: &str) -> Result<Option<crate::account::Session>, StoreError>;
}
