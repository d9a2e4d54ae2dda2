//! Many proposals decided at once, for bulk sources (a third-party report naming 100,000
//! subscribers): each proposal gets exactly the decision, state changes and ledger entries
//! [`Governance::propose`] would give it, but the transactions of up to `chunk` proposals are
//! committed as one (one durable write instead of one each).
//!
//! One difference in how, not in what: `propose` inserts a new action as `proposed` and updates it
//! to its decided state in the same transaction; here it is inserted in its decided state (the
//! `proposed` step is its ledger entry, in that same transaction). Nothing can observe the
//! difference: once committed the rows are the same, and a third of the writer's work per proposal
//! is saved.
//!
//! The batched path covers proposals that need no consent request, approval, subscriber request
//! or duration: measures whose consent model is "not required" or "comprehensive consent with
//! opt-out" (the alert measures). Any other proposal goes through [`Governance::propose`] one by
//! one, in order, so the result is the same whatever the mix.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde_json::json;

use super::lifecycle::{applied_entry, notice_purpose, proposed_entry, proposed_record};
use super::{Decision, Governance, GovernanceError, Proposal};
use crate::action::{ActionRecord, ActionState};
use crate::authorization::Authorization;
use crate::catalog::{self, ConsentModel, LegalBasis, MeasureId, NotificationDuty};
use crate::ledger::{EventKind, LedgerDraft};
use crate::store::{Mutation, StoreError};
use crate::subject::{Actor, SubscriberId};

/// What one measure allows on the batched path, read once per call.
struct MeasureCheck {
    /// The batched path applies (enabled, notice recorded if needed, no consent request or
    /// approval in its model).
    batched: bool,
    /// Subscribers opted out of it (comprehensive-consent measures only).
    opted_out: HashSet<SubscriberId>,
}

/// One proposal decided on the batched path, waiting for its chunk's commit.
struct Pending {
    /// Its place in the caller's list.
    slot: usize,
    rec: ActionRecord,
    /// Index of its `applied` entry in the chunk's ledger drafts, if it was applied.
    apply_index: Option<usize>,
}

/// The proposals of one chunk and their transaction.
#[derive(Default)]
struct Chunk {
    pending: Vec<Pending>,
    /// The proposals themselves, for the one-by-one retry after a conflict.
    proposals: Vec<Proposal>,
    keys: HashSet<(MeasureId, String)>,
    mutations: Vec<Mutation>,
    ledger: Vec<LedgerDraft>,
}

/// A chunk being committed on its own thread.
struct InFlight<'scope> {
    handle: std::thread::ScopedJoinHandle<'scope, Result<Vec<u64>, GovernanceError>>,
    pending: Vec<Pending>,
    proposals: Vec<Proposal>,
    /// Its targets: a proposal for one of them waits for the commit.
    keys: HashSet<(MeasureId, String)>,
}

impl Governance {
    /// Decides many proposals: the same decisions and ledger entries as calling
    /// [`Governance::propose`] on each in order, committed `chunk` proposals per transaction where
    /// the measure allows it (see the module's documentation). Returns one result per proposal,
    /// in order; the outer error is a storage failure that stopped the whole call (chunks
    /// committed before it stay committed, and their decisions are lost to the caller only in
    /// this return value: the store has them).
    pub fn propose_many(
        &self,
        proposals: Vec<Proposal>,
        chunk: usize,
    ) -> Result<Vec<Result<Decision, GovernanceError>>, GovernanceError> {
        let chunk = chunk.max(1);
        let mut checks: HashMap<MeasureId, MeasureCheck> = HashMap::new();
        let mut out: Vec<Option<Result<Decision, GovernanceError>>> = Vec::with_capacity(proposals.len());
        out.resize_with(proposals.len(), || None);
        // A full chunk is committed on a scoped thread while the next one is decided, and
        // finished (its decisions filled in, or retried one by one after a conflict) before
        // anything else is committed: the commits, and so the ledger's entries, keep the
        // caller's order, and a proposal whose target is in the chunk being committed waits for
        // it (its decision must see that chunk's action).
        std::thread::scope(|scope| {
            let mut inflight: Option<InFlight<'_>> = None;
            let mut cur = Chunk::default();
            let mut now = self.now();
            for (slot, p) in proposals.into_iter().enumerate() {
                if let std::collections::hash_map::Entry::Vacant(v) = checks.entry(p.measure) {
                    v.insert(self.measure_check(p.measure)?);
                }
                let batched = checks.get(&p.measure).is_some_and(|c| c.batched) && self.batchable(&p);
                if !batched {
                    // Everything before it first, so the order of decisions is the caller's.
                    self.finish(inflight.take(), &mut out)?;
                    self.flush(&mut cur, &mut out)?;
                    out[slot] = Some(self.propose(p));
                    continue;
                }
                let key = (p.measure, p.target.to_string());
                if inflight.as_ref().is_some_and(|f| f.keys.contains(&key)) {
                    self.finish(inflight.take(), &mut out)?;
                }
                if cur.keys.contains(&key) {
                    // The same target twice in one chunk: the second must see the first's action.
                    self.finish(inflight.take(), &mut out)?;
                    self.flush(&mut cur, &mut out)?;
                }
                if cur.pending.is_empty() {
                    now = self.now();
                }
                if let Some(open) = self.store.open_action(p.measure, &p.target)? {
                    out[slot] = Some(Ok(Decision { action: open, authorization: None, existing: true }));
                    continue;
                }
                let opted_out = match (&p.subscriber, checks.get(&p.measure)) {
                    (Some(s), Some(c)) => c.opted_out.contains(s),
                    _ => false,
                };
                cur.keys.insert(key);
                self.decide_into(slot, &p, opted_out, now, &mut cur);
                cur.proposals.push(p);
                if cur.pending.len() >= chunk {
                    self.finish(inflight.take(), &mut out)?;
                    inflight = self.start(scope, &mut cur);
                }
            }
            self.finish(inflight.take(), &mut out)?;
            self.flush(&mut cur, &mut out)
        })?;
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(GovernanceError::BadRequest("proposal left undecided".into()))))
            .collect())
    }

    fn measure_check(&self, measure: MeasureId) -> Result<MeasureCheck, GovernanceError> {
        let m = catalog::measure(measure);
        let model_ok = m.approval.is_none()
            && matches!(m.consent, ConsentModel::NotRequired | ConsentModel::ComprehensiveOptOut)
            && !m.is_refused();
        let batched = model_ok
            && self.is_enabled(measure)?
            && (!super::requires_notice(measure) || !self.store.notices(measure)?.is_empty());
        let opted_out = if batched && m.consent == ConsentModel::ComprehensiveOptOut {
            self.store.opted_out(measure)?.into_iter().collect()
        } else {
            HashSet::new()
        };
        Ok(MeasureCheck { batched, opted_out })
    }

    /// Whether this proposal, of a measure that allows it, takes the batched path; the rest
    /// (and every error `propose` would return) go through `propose`.
    fn batchable(&self, p: &Proposal) -> bool {
        let m = catalog::measure(p.measure);
        let needs_subscriber = m.notification == NotificationDuty::Alert;
        p.subscriber_request.is_none() && p.duration.is_none() && !(needs_subscriber && p.subscriber.is_none())
    }

    /// The decision of one proposal on the batched path, as `propose` makes it: refused if the
    /// subscriber opted out, else applied (restrictive) or completed, with the notice queued.
    fn decide_into(&self, slot: usize, p: &Proposal, opted_out: bool, now: Timestamp, cur: &mut Chunk) {
        let m = catalog::measure(p.measure);
        let time_class = self.calendar.classify(now);
        let mut rec = proposed_record(p, now, time_class.label());
        cur.ledger.push(proposed_entry(&rec));
        if opted_out {
            let reason = "the subscriber opted out of this measure";
            rec.state = ActionState::Refused;
            rec.ended_at = Some(now);
            rec.end_reason = Some(reason.into());
            cur.ledger.push(
                LedgerDraft::new(EventKind::Refused, Actor::system(), json!({"reason": reason}))
                    .measure(p.measure)
                    .action(rec.id.clone())
                    .subject(p.target.to_string()),
            );
            cur.mutations.push(Mutation::InsertAction(Box::new(rec.clone())));
            cur.pending.push(Pending { slot, rec, apply_index: None });
            return;
        }
        rec.legal_basis = match m.consent {
            ConsentModel::ComprehensiveOptOut => LegalBasis::ComprehensiveConsent,
            _ => m.primary_basis(),
        };
        // As `apply_with` from `proposed`.
        self.mark_applied(&mut rec, now);
        let apply_index = cur.ledger.len();
        cur.ledger.push(applied_entry(&rec));
        if let Some(purpose) = notice_purpose(&rec) {
            self.queue(&rec, purpose, now, &mut cur.mutations, &mut cur.ledger);
        }
        cur.mutations.push(Mutation::InsertAction(Box::new(rec.clone())));
        cur.pending.push(Pending { slot, rec, apply_index: Some(apply_index) });
    }

    /// Commits a chunk as one transaction and fills in its decisions. If the store refuses it
    /// (another writer changed an action meanwhile), nothing of it was written and each of its
    /// proposals is decided again one by one.
    fn flush(
        &self,
        cur: &mut Chunk,
        out: &mut [Option<Result<Decision, GovernanceError>>],
    ) -> Result<(), GovernanceError> {
        if cur.pending.is_empty() {
            return Ok(());
        }
        let Chunk { pending, proposals, mutations, ledger, .. } = std::mem::take(cur);
        self.settle(self.commit(mutations, ledger), pending, proposals, out)
    }

    /// Starts committing a chunk on a scoped thread.
    fn start<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        cur: &mut Chunk,
    ) -> Option<InFlight<'scope>> {
        if cur.pending.is_empty() {
            return None;
        }
        let Chunk { pending, proposals, keys, mutations, ledger } = std::mem::take(cur);
        let handle = scope.spawn(move || self.commit(mutations, ledger));
        Some(InFlight { handle, pending, proposals, keys })
    }

    /// Waits for a chunk being committed and fills in its decisions.
    fn finish(
        &self,
        inflight: Option<InFlight<'_>>,
        out: &mut [Option<Result<Decision, GovernanceError>>],
    ) -> Result<(), GovernanceError> {
        let Some(InFlight { handle, pending, proposals, .. }) = inflight else {
            return Ok(());
        };
        let committed = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.settle(committed, pending, proposals, out)
    }

    /// A chunk's decisions once its commit returned: with their grants, or each proposal
    /// decided again one by one after a conflict.
    fn settle(
        &self,
        committed: Result<Vec<u64>, GovernanceError>,
        pending: Vec<Pending>,
        proposals: Vec<Proposal>,
        out: &mut [Option<Result<Decision, GovernanceError>>],
    ) -> Result<(), GovernanceError> {
        let seqs = match committed {
            Ok(seqs) => seqs,
            Err(GovernanceError::Store(StoreError::Conflict { .. })) => {
                for (pd, p) in pending.into_iter().zip(proposals) {
                    if let Some(o) = out.get_mut(pd.slot) {
                        *o = Some(self.propose(p));
                    }
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for Pending { slot, mut rec, apply_index } in pending {
            let authorization = apply_index.map(|i| {
                let grant_seq = seqs.get(i).copied().unwrap_or_default();
                rec.grant_seq = Some(grant_seq);
                let restrictive = catalog::measure(rec.measure).restrictive;
                Authorization::grant(
                    rec.id.clone(),
                    rec.measure,
                    rec.legal_basis,
                    rec.target.clone(),
                    if restrictive { rec.deadline } else { None },
                    grant_seq,
                    rec.emergency,
                )
            });
            if let Some(o) = out.get_mut(slot) {
                *o = Some(Ok(Decision { action: rec, authorization, existing: false }));
            }
        }
        Ok(())
    }
}
