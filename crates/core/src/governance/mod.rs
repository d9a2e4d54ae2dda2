//! Governance: the only code that decides whether mamori may act, and the only code that can
//! construct an [`Authorization`].
//!
//! It decides from the catalog row, the subscriber's consent or opt-out, the emergency rule (Japan
//! time), the approvals the measure needs and the public-notice prerequisite, and writes every
//! step to the audit ledger in the same transaction as the state it changes.

mod batch;
mod lifecycle;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;

pub use lifecycle::{Decision, Proposal, SubscriberReply, TickOutcome};

use crate::action::ActionState;
use crate::calendar::JapanCalendar;
use crate::catalog::{self, ConsentModel, MeasureId};
use crate::clock::Clock;
use crate::config::Config;
use crate::consent::{ConsentChange, ConsentEvent, ConsentState, PublicNotice};
use crate::ledger::{EventKind, LedgerDraft};
use crate::store::{Batch, Mutation, StageUnlock, Store, StoreError};
use crate::subject::{Actor, SubscriberId, Target};

/// Why governance refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GovernanceError {
    /// The working group refused the measure; it can never be enabled or used.
    #[error("{measure} is not provided: {reason}")]
    Refused {
        /// The measure.
        measure: MeasureId,
        /// The working group's reason.
        reason: &'static str,
    },
    /// The measure is not enabled.
    #[error("{measure} is not enabled (enable it with `mamori measures enable {measure}`)")]
    NotEnabled {
        /// The measure.
        measure: MeasureId,
    },
    /// The measure may act before consent but no public notice is recorded.
    #[error(
        "{measure} may act before the subscriber's consent, so the terms of service or website must announce it first: \
         record where with `mamori measures notice {measure} --url URL --version VERSION`"
    )]
    NoticeMissing {
        /// The measure.
        measure: MeasureId,
    },
    /// The measure does not rest on consent, so consent operations don't apply.
    #[error("{measure} does not rest on subscriber consent; {operation} does not apply to it")]
    ConsentNotApplicable {
        /// The measure.
        measure: MeasureId,
        /// What was attempted.
        operation: &'static str,
    },
    /// The action is not in a state that allows the step.
    #[error("action {action_id} is {from}; it cannot become {to}")]
    InvalidTransition {
        /// The action.
        action_id: String,
        /// Its state.
        from: ActionState,
        /// The state asked for.
        to: ActionState,
    },
    /// Proposers never approve their own proposals.
    #[error("{approver} proposed action {action_id} and cannot approve it; another approver must")]
    ProposerCannotApprove {
        /// The action.
        action_id: String,
        /// Who tried.
        approver: String,
    },
    /// Each approval must come from a different person.
    #[error("{approver} has already approved action {action_id}; approvals must come from distinct people")]
    AlreadyApproved {
        /// The action.
        action_id: String,
        /// Who tried.
        approver: String,
    },
    /// The person is not listed under `[roles] approvers`.
    #[error("{name} is not an approver (give them the approver role, or list them under [roles] approvers)")]
    NotAnApprover {
        /// Who tried.
        name: String,
    },
    /// An approval lacks an assessment the measure asks for.
    #[error("approving {measure} requires the assessment `{field}` (pass --assess {field}=...)")]
    MissingAssessment {
        /// The measure.
        measure: MeasureId,
        /// The missing field.
        field: &'static str,
    },
    /// No such action.
    #[error("no action {0}")]
    UnknownAction(String),
    /// A request that makes no sense for the measure.
    #[error("{0}")]
    BadRequest(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The state views read: opt-outs and stage unlocks, shared with every [`crate::view::ViewGate`].
#[derive(Debug, Default)]
pub(crate) struct GateState {
    pub(crate) opted_out: OptOuts,
    pub(crate) unlocks: RwLock<Vec<StageUnlock>>,
    generation: AtomicU64,
}

/// The opt-outs as the gates read them: the set behind a lock, and whether it is empty without
/// one. Every record that reaches a consent-based detector asks; while nobody has opted out (a
/// replay, a new deployment) the answer costs an atomic load instead of taking and releasing
/// the lock.
#[derive(Debug)]
pub(crate) struct OptOuts {
    set: RwLock<OptedOut>,
    /// `true` only while the set is empty. Cleared before the set changes and set again after,
    /// under the write lock: a reader that sees `true` ran before the opt-out being made (which
    /// has not returned yet), one that sees `false` takes the lock and waits for it.
    empty: AtomicBool,
}

impl Default for OptOuts {
    fn default() -> Self {
        OptOuts { set: RwLock::new(OptedOut::default()), empty: AtomicBool::new(true) }
    }
}

impl OptOuts {
    /// Whether `subscriber` opted out of `measure`; a poisoned lock answers yes (fails closed).
    pub(crate) fn contains(&self, measure: MeasureId, subscriber: &SubscriberId) -> bool {
        if self.empty.load(Ordering::SeqCst) {
            return false;
        }
        self.set.read().map(|s| s.contains(measure, subscriber)).unwrap_or(true)
    }

    /// Changes the set (nothing if the lock is poisoned: readers then fail closed).
    fn update(&self, change: impl FnOnce(&mut OptedOut)) {
        if let Ok(mut w) = self.set.write() {
            self.empty.store(false, Ordering::SeqCst);
            change(&mut w);
            self.empty.store(w.is_empty(), Ordering::SeqCst);
        }
    }
}

/// The subscribers opted out of each measure. Per measure, so that a gate looks a record's
/// subscriber up by reference: a set of `(measure, subscriber)` pairs made every lookup clone the
/// id, once per record that reaches a consent-based detector.
#[derive(Debug, Default)]
pub(crate) struct OptedOut(HashMap<MeasureId, HashSet<SubscriberId>>);

impl OptedOut {
    /// Whether `subscriber` opted out of `measure`.
    pub(crate) fn contains(&self, measure: MeasureId, subscriber: &SubscriberId) -> bool {
        self.0.get(&measure).is_some_and(|s| s.contains(subscriber))
    }

    fn insert(&mut self, measure: MeasureId, subscriber: SubscriberId) {
        self.0.entry(measure).or_default().insert(subscriber);
    }

    fn remove(&mut self, measure: MeasureId, subscriber: &SubscriberId) {
        if let Some(s) = self.0.get_mut(&measure) {
            s.remove(subscriber);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(HashSet::is_empty)
    }
}

/// A measure's standing: enabled, notice recorded, refused.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureStatus {
    /// The measure.
    pub measure: MeasureId,
    /// Enabled now.
    pub enabled: bool,
    /// Refused by the working group.
    pub refused: bool,
    /// Needs a public notice before enabling.
    pub requires_notice: bool,
    /// The latest notice, if any.
    pub notice: Option<PublicNotice>,
}

/// A subscriber's position per consent-based measure, and their consent history.
pub type ConsentOverview = (Vec<(MeasureId, ConsentState)>, Vec<ConsentEvent>);

/// The governance kernel.
pub struct Governance {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    calendar: JapanCalendar,
    config: Arc<Config>,
    gate: Arc<GateState>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance").field("clock", &self.clock).finish_non_exhaustive()
    }
}

impl Governance {
    /// Governance over a store, with a clock (wall or data) and validated configuration.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Arc<Config>) -> Result<Self, GovernanceError> {
        let calendar = JapanCalendar::new(&config.calendar).map_err(|e| GovernanceError::BadRequest(e.to_string()))?;
        let gov = Governance { store, clock, calendar, config, gate: Arc::new(GateState::default()) };
        gov.reload_gate()?;
        Ok(gov)
    }

    /// The clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The Japan-time calendar.
    pub fn calendar(&self) -> &JapanCalendar {
        &self.calendar
    }

    pub(crate) fn gate_state(&self) -> Arc<GateState> {
        Arc::clone(&self.gate)
    }

    fn reload_gate(&self) -> Result<(), GovernanceError> {
        let generation = self.store.consent_generation()?;
        let mut opted = OptedOut::default();
        for m in MeasureId::ALL {
            if catalog::measure(m).consent != ConsentModel::NotRequired {
                for s in self.store.opted_out(m)? {
                    opted.insert(m, s);
                }
            }
        }
        let unlocks = self.store.active_unlocks(self.now())?;
        self.gate.opted_out.update(|w| *w = opted);
        if let Ok(mut w) = self.gate.unlocks.write() {
            *w = unlocks;
        }
        self.gate.generation.store(generation, Ordering::SeqCst);
        Ok(())
    }

    /// Picks up consent changes made by another process (an opt-out through the CLI or another
    /// server) so that they take effect before the next record reaches a detector. Cheap when
    /// nothing changed; pipelines call it before each batch.
    pub fn refresh_if_changed(&self) -> Result<bool, GovernanceError> {
        let current = self.store.consent_generation()?;
        if current != self.gate.generation.load(Ordering::SeqCst) {
            self.reload_gate()?;
            return Ok(true);
        }
        Ok(false)
    }

    pub(crate) fn commit(
        &self,
        mutations: Vec<Mutation>,
        ledger: Vec<LedgerDraft>,
    ) -> Result<Vec<u64>, GovernanceError> {
        Ok(self.store.commit(Batch { at: self.now(), mutations, ledger })?.seqs)
    }

    // ── measures ────────────────────────────────────────────────────────────────────────────

    /// May this person approve? Those listed under `[roles] approvers`, and accounts with the
    /// approver role that are not disabled.
    pub fn is_approver(&self, who: &Actor) -> Result<bool, GovernanceError> {
        if self.config.roles.approvers.contains(&who.0) {
            return Ok(true);
        }
        Ok(self.store.account(&who.0)?.is_some_and(|a| a.role == crate::account::Role::Approver && !a.disabled))
    }

    /// Whether a measure is enabled.
    pub fn is_enabled(&self, measure: MeasureId) -> Result<bool, GovernanceError> {
        Ok(self.store.measure_switches()?.get(&measure).copied().unwrap_or(false))
    }

    fn check_enableable(&self, measure: MeasureId) -> Result<(), GovernanceError> {
        let m = catalog::measure(measure);
        if let catalog::Provision::Refused(reason) = m.provision {
            return Err(GovernanceError::Refused { measure, reason });
        }
        if requires_notice(measure) && self.store.notices(measure)?.is_empty() {
            return Err(GovernanceError::NoticeMissing { measure });
        }
        Ok(())
    }

    /// Enables a measure. Refused measures never; measures that act before consent (or rest on
    /// comprehensive consent) only once their public notice is recorded.
    pub fn enable_measure(&self, measure: MeasureId, by: &Actor) -> Result<u64, GovernanceError> {
        self.check_enableable(measure)?;
        let seqs = self.commit(
            vec![Mutation::MeasureEnabled { measure, enabled: true, by: by.clone() }],
            vec![LedgerDraft::new(EventKind::MeasureEnabled, by.clone(), json!({})).measure(measure)],
        )?;
        Ok(seqs.first().copied().unwrap_or_default())
    }

    /// Disables a measure. Actions in force stay until lifted or expired (disabling is not a lift).
    pub fn disable_measure(&self, measure: MeasureId, by: &Actor) -> Result<u64, GovernanceError> {
        let seqs = self.commit(
            vec![Mutation::MeasureEnabled { measure, enabled: false, by: by.clone() }],
            vec![LedgerDraft::new(EventKind::MeasureDisabled, by.clone(), json!({})).measure(measure)],
        )?;
        Ok(seqs.first().copied().unwrap_or_default())
    }

    /// Records where the terms of service / website announce a measure (and, for
    /// comprehensive-consent measures, the clause the consent rests on).
    pub fn record_notice(
        &self,
        measure: MeasureId,
        url: &str,
        version: &str,
        clause: Option<&str>,
        by: &Actor,
    ) -> Result<u64, GovernanceError> {
        let m = catalog::measure(measure);
        if let catalog::Provision::Refused(reason) = m.provision {
            return Err(GovernanceError::Refused { measure, reason });
        }
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.len() < 12
            || url.contains(char::is_whitespace)
        {
            return Err(GovernanceError::BadRequest(format!("notice URL `{url}` must be an http(s) URL")));
        }
        if version.trim().is_empty() {
            return Err(GovernanceError::BadRequest("notice version must not be empty".into()));
        }
        let notice = PublicNotice {
            measure,
            url: url.to_owned(),
            version: version.trim().to_owned(),
            clause: clause.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()),
            recorded_at: self.now(),
            recorded_by: by.clone(),
        };
        let body = json!({"url": notice.url, "version": notice.version, "clause": notice.clause});
        let seqs = self.commit(
            vec![Mutation::Notice(notice)],
            vec![LedgerDraft::new(EventKind::NoticeRecorded, by.clone(), body).measure(measure)],
        )?;
        Ok(seqs.first().copied().unwrap_or_default())
    }

    /// Every measure's standing.
    pub fn measure_status(&self) -> Result<Vec<MeasureStatus>, GovernanceError> {
        let switches = self.store.measure_switches()?;
        MeasureId::ALL
            .iter()
            .map(|&m| {
                Ok(MeasureStatus {
                    measure: m,
                    enabled: switches.get(&m).copied().unwrap_or(false),
                    refused: catalog::measure(m).is_refused(),
                    requires_notice: requires_notice(m),
                    notice: self.store.notices(m)?.into_iter().next(),
                })
            })
            .collect()
    }

    // ── consent registry ────────────────────────────────────────────────────────────────────

    fn consent_event(
        &self,
        subscriber: &SubscriberId,
        measure: MeasureId,
        change: ConsentChange,
        method: &str,
        by: &Actor,
    ) -> Result<u64, GovernanceError> {
        let ev = ConsentEvent {
            subscriber: subscriber.clone(),
            measure,
            change,
            method: method.to_owned(),
            at: self.now(),
            recorded_by: by.clone(),
        };
        let kind = match change {
            ConsentChange::Granted => EventKind::ConsentGranted,
            ConsentChange::OptedOut => EventKind::ConsentOptedOut,
            ConsentChange::OptedIn => EventKind::ConsentOptedIn,
        };
        let draft = LedgerDraft::new(kind, by.clone(), json!({"method": method}))
            .measure(measure)
            .subject(Target::Subscriber(subscriber.0.clone()).to_string());
        let seqs = self.commit(vec![Mutation::Consent(ev)], vec![draft])?;
        // Effective at once in this process, before any further record reaches a detector.
        self.gate.opted_out.update(|w| match change {
            ConsentChange::OptedOut => w.insert(measure, subscriber.clone()),
            ConsentChange::OptedIn | ConsentChange::Granted => w.remove(measure, subscriber),
        });
        if let Ok(g) = self.store.consent_generation() {
            self.gate.generation.store(g, Ordering::SeqCst);
        }
        Ok(seqs.first().copied().unwrap_or_default())
    }

    /// Records a subscriber's individual consent (a request or a reply).
    pub fn grant_consent(
        &self,
        subscriber: &SubscriberId,
        measure: MeasureId,
        method: &str,
        by: &Actor,
    ) -> Result<u64, GovernanceError> {
        match catalog::measure(measure).consent {
            ConsentModel::IndividualRequired | ConsentModel::IndividualFirstEmergencyException => {}
            _ => return Err(GovernanceError::ConsentNotApplicable { measure, operation: "individual consent" }),
        }
        self.consent_event(subscriber, measure, ConsentChange::Granted, method, by)
    }

    /// Opts a subscriber out: effective at once; they leave the measure's views and no further
    /// action of the measure is taken for them.
    pub fn opt_out(
        &self,
        subscriber: &SubscriberId,
        measure: MeasureId,
        method: &str,
        by: &Actor,
    ) -> Result<u64, GovernanceError> {
        if catalog::measure(measure).consent == ConsentModel::NotRequired {
            return Err(GovernanceError::ConsentNotApplicable { measure, operation: "opt-out" });
        }
        self.consent_event(subscriber, measure, ConsentChange::OptedOut, method, by)
    }

    /// Opts a subscriber back in.
    pub fn opt_in(
        &self,
        subscriber: &SubscriberId,
        measure: MeasureId,
        method: &str,
        by: &Actor,
    ) -> Result<u64, GovernanceError> {
        if catalog::measure(measure).consent == ConsentModel::NotRequired {
            return Err(GovernanceError::ConsentNotApplicable { measure, operation: "opt-in" });
        }
        self.consent_event(subscriber, measure, ConsentChange::OptedIn, method, by)
    }

    /// A subscriber's current position for one measure.
    pub fn consent_state(
        &self,
        subscriber: &SubscriberId,
        measure: MeasureId,
    ) -> Result<ConsentState, GovernanceError> {
        let history = self.store.consent_history(subscriber)?;
        self.consent_state_from(&history, measure)
    }

    fn consent_state_from(
        &self,
        history: &[ConsentEvent],
        measure: MeasureId,
    ) -> Result<ConsentState, GovernanceError> {
        let model = catalog::measure(measure).consent;
        if model == ConsentModel::NotRequired {
            return Ok(ConsentState::NotApplicable);
        }
        let latest = history.iter().rev().find(|e| e.measure == measure);
        if let Some(ev) = latest {
            if ev.change == ConsentChange::OptedOut {
                return Ok(ConsentState::OptedOut { at: ev.at });
            }
        }
        Ok(match model {
            ConsentModel::ComprehensiveOptOut => match self.store.notices(measure)?.into_iter().next() {
                Some(n) => ConsentState::CoveredByTerms { version: n.version },
                None => ConsentState::NoTermsClause,
            },
            _ => match latest {
                Some(ev) if ev.change == ConsentChange::Granted => {
                    ConsentState::Granted { at: ev.at, method: ev.method.clone() }
                }
                _ => ConsentState::NotGiven,
            },
        })
    }

    /// A subscriber's position for every consent-based measure, and their history.
    pub fn consent_overview(&self, subscriber: &SubscriberId) -> Result<ConsentOverview, GovernanceError> {
        let history = self.store.consent_history(subscriber)?;
        let mut states = Vec::new();
        for m in MeasureId::ALL {
            if catalog::measure(m).consent != ConsentModel::NotRequired {
                states.push((m, self.consent_state_from(&history, m)?));
            }
        }
        Ok((states, history))
    }

    /// Whether the subscriber is opted out of the measure (as views see it now).
    pub fn is_opted_out(&self, subscriber: &SubscriberId, measure: MeasureId) -> bool {
        self.gate.opted_out.contains(measure, subscriber)
    }

    // ── staged minimization ─────────────────────────────────────────────────────────────────

    /// Unlocks a wider stage of a measure for one subject, because the narrower stage could not
    /// decide. Writes a ledger entry; the unlock lasts `[governance] stage_unlock_ttl`.
    pub fn unlock_stage(
        &self,
        measure: MeasureId,
        stage: u8,
        subject: &Target,
        reason: &str,
        by: &Actor,
    ) -> Result<StageUnlock, GovernanceError> {
        let m = catalog::measure(measure);
        let st = m.stage(stage).filter(|s| s.unlocked_per_subject).ok_or_else(|| {
            GovernanceError::BadRequest(format!("{measure} has no stage {stage} to unlock per subject"))
        })?;
        if !self.is_enabled(measure)? {
            return Err(GovernanceError::NotEnabled { measure });
        }
        let now = self.now();
        let until = now.checked_add(self.config.governance.stage_unlock_ttl).unwrap_or(now);
        let unlock =
            StageUnlock { measure, stage, subject: subject.clone(), at: now, until, reason: reason.to_owned() };
        let fields: Vec<_> = st.fields.iter().map(|f| serde_json::to_value(f).unwrap_or_default()).collect();
        let draft = LedgerDraft::new(
            EventKind::StageUnlocked,
            by.clone(),
            json!({"stage": stage, "fields": fields, "until": crate::ledger::format_time(until), "reason": reason}),
        )
        .measure(measure)
        .subject(subject.to_string());
        self.commit(vec![Mutation::Unlock(unlock.clone())], vec![draft])?;
        if let Ok(mut w) = self.gate.unlocks.write() {
            w.retain(|u| u.until > now);
            w.push(unlock.clone());
        }
        Ok(unlock)
    }

    /// Records a detector's finding (minimized evidence) in the ledger.
    pub fn record_finding(
        &self,
        measure: MeasureId,
        target: &Target,
        detector: &str,
        evidence: serde_json::Value,
    ) -> Result<u64, GovernanceError> {
        let draft = LedgerDraft::new(EventKind::Finding, Actor(format!("detector:{detector}")), evidence)
            .measure(measure)
            .subject(target.to_string());
        Ok(self.commit(vec![], vec![draft])?.first().copied().unwrap_or_default())
    }

    /// Deletes what each measure's retention says is due; the store writes counts and ranges
    /// (never content) to the ledger.
    pub fn retention_sweep(&self, by: &Actor) -> Result<Vec<crate::store::SweepOutcome>, GovernanceError> {
        let now = self.now();
        let cutoffs: Vec<_> = MeasureId::ALL
            .iter()
            .filter(|m| !catalog::measure(**m).is_refused())
            .map(|&m| {
                let days = i64::from(self.config.retention_days(m));
                (m, now.checked_sub(SignedDuration::from_hours(24 * days)).unwrap_or(now))
            })
            .collect();
        let out = self.store.retention_sweep(&cutoffs, now, by)?;
        if let Ok(mut w) = self.gate.unlocks.write() {
            w.retain(|u| u.until > now);
        }
        Ok(out)
    }
    /// Records a retention sweep of a store kept beside the main one (the attribution sessions:
    /// `table` names it): the count and the range of the data deleted, never content.
    pub fn record_retention_swept(
        &self,
        table: &str,
        deleted: u64,
        range: Option<(Timestamp, Timestamp)>,
        before: Timestamp,
        by: &Actor,
    ) -> Result<u64, GovernanceError> {
        use crate::ledger::format_time;
        let draft = LedgerDraft::new(
            EventKind::RetentionSwept,
            by.clone(),
            json!({"table": table, "deleted": deleted, "oldest": range.map(|r| format_time(r.0)),
                   "newest": range.map(|r| format_time(r.1)), "before": format_time(before)}),
        );
        Ok(self.commit(vec![], vec![draft])?.first().copied().unwrap_or_default())
    }
}

/// Whether enabling the measure needs a recorded public notice: it acts before individual consent,
/// or rests on comprehensive consent through the terms of service.
pub fn requires_notice(measure: MeasureId) -> bool {
    let m = catalog::measure(measure);
    m.requires_public_notice() || m.consent == ConsentModel::ComprehensiveOptOut
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn opt_outs_answer_without_the_lock_only_while_nobody_opted_out() {
        let outs = OptOuts::default();
        let (a, b) = (SubscriberId("S1".into()), SubscriberId("S2".into()));
        let m = MeasureId::PhoneSuspendLineOnSurge;
        assert!(!outs.contains(m, &a));
        outs.update(|w| w.insert(m, a.clone()));
        assert!(outs.contains(m, &a));
        assert!(!outs.contains(m, &b));
        assert!(!outs.contains(MeasureId::PhoneSuspendSipAuthFromIp, &a));
        // Back to nobody: the flag says so again.
        outs.update(|w| w.remove(m, &a));
        assert!(!outs.contains(m, &a));
        assert!(outs.empty.load(Ordering::SeqCst));
        // A change that panics half-way poisons the set: everyone counts as opted out.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            outs.update(|_| panic!("a change that fails"));
        }));
        assert!(caught.is_err());
        assert!(outs.contains(m, &a), "fails closed");
        assert!(outs.contains(m, &b), "fails closed");
    }
}
