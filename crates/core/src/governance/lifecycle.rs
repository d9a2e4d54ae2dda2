//! Proposals, consent requests, approvals, lifts and expiry.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::{Governance, GovernanceError};
use crate::action::{ActionRecord, ActionState, Approval, new_action_id};
use crate::authorization::Authorization;
use crate::catalog::{self, ConsentModel, LegalBasis, MeasureId, NotificationDuty};
use crate::consent::{ConsentChange, ConsentEvent, ConsentState};
use crate::ledger::{EventKind, LedgerDraft, format_time};
use crate::store::{ActionFilter, Mutation, OutboxMessage, StoreError};
use crate::subject::{Actor, SubscriberId, Target};

/// A request to act, from a detector or an operator.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The measure.
    pub measure: MeasureId,
    /// What to act on.
    pub target: Target,
    /// The subscriber concerned, if known.
    pub subscriber: Option<SubscriberId>,
    /// Who proposes (a detector or a person).
    pub proposer: Actor,
    /// Minimized evidence.
    pub evidence: serde_json::Value,
    /// A shorter duration than the measure's maximum.
    pub duration: Option<SignedDuration>,
    /// The subscriber asked for it (how: phone, web, …): recorded as their consent.
    pub subscriber_request: Option<String>,
}

impl Proposal {
    /// A proposal with no subscriber, duration or request.
    pub fn new(measure: MeasureId, target: Target, proposer: Actor, evidence: serde_json::Value) -> Self {
        Proposal { measure, target, subscriber: None, proposer, evidence, duration: None, subscriber_request: None }
    }
}

/// What governance decided.
#[derive(Debug)]
pub struct Decision {
    /// The action as stored after the decision.
    pub action: ActionRecord,
    /// Present when the action may now be carried out.
    pub authorization: Option<Authorization>,
    /// The proposal matched an action already open on the same target.
    pub existing: bool,
}

/// A subscriber's answer to a consent request or an emergency notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberReply {
    /// "Yes, suspend": consent to the action (or confirmation of an emergency one).
    Agree,
    /// "It was me": the use was theirs; no action (or lift the emergency one).
    Decline,
}

/// What a scheduler tick ended.
#[derive(Debug, Default)]
pub struct TickOutcome {
    /// Applied actions that reached their maximum duration: actuators must remove them.
    pub expired: Vec<ActionRecord>,
    /// Requests and approvals that went unanswered.
    pub lapsed: Vec<ActionRecord>,
}

struct Basis {
    basis: LegalBasis,
    emergency: bool,
}

impl Governance {
    /// Decides a proposal: refuse, ask the subscriber, wait for approvals, or apply.
    pub fn propose(&self, p: Proposal) -> Result<Decision, GovernanceError> {
        let m = catalog::measure(p.measure);
        if let catalog::Provision::Refused(reason) = m.provision {
            return Err(GovernanceError::Refused { measure: p.measure, reason });
        }
        if !self.is_enabled(p.measure)? {
            return Err(GovernanceError::NotEnabled { measure: p.measure });
        }
        if super::requires_notice(p.measure) && self.store.notices(p.measure)?.is_empty() {
            return Err(GovernanceError::NoticeMissing { measure: p.measure });
        }
        let needs_subscriber =
            matches!(m.consent, ConsentModel::IndividualRequired | ConsentModel::IndividualFirstEmergencyException)
                || m.notification == NotificationDuty::Alert;
        if needs_subscriber && p.subscriber.is_none() {
            return Err(GovernanceError::BadRequest(format!(
                "{} acts for or toward a subscriber: the proposal must name one",
                p.measure
            )));
        }
        if p.subscriber_request.is_some() && m.consent == ConsentModel::NotRequired {
            return Err(GovernanceError::ConsentNotApplicable {
                measure: p.measure,
                operation: "a subscriber request",
            });
        }

        let now = self.now();
        let time_class = self.calendar.classify(now);

        if let Some(open) = self.store.open_action(p.measure, &p.target)? {
            // One open action per measure and target. A consent request left unanswered becomes an
            // emergency action once it is urgent (night, weekend, holiday) and the detector still
            // sees the fraud.
            if open.state == ActionState::AwaitingConsent
                && m.consent == ConsentModel::IndividualFirstEmergencyException
                && time_class.is_urgent()
            {
                let mut rec = open.clone();
                rec.emergency = true;
                rec.legal_basis = m.primary_basis();
                rec.time_class = time_class.label();
                let pre = vec![
                    LedgerDraft::new(
                        EventKind::Finding,
                        p.proposer.clone(),
                        json!({"escalation": "consent request unanswered and now urgent", "time_class": time_class.label(), "evidence": p.evidence}),
                    )
                    .measure(p.measure)
                    .action(rec.id.clone())
                    .subject(rec.target.to_string()),
                ];
                return self.apply_with(rec, ActionState::AwaitingConsent, vec![], pre, now);
            }
            return Ok(Decision { action: open, authorization: None, existing: true });
        }

        let mut rec = proposed_record(&p, now, time_class.label());
        let id = rec.id.clone();
        if let (Some(d), Some(max)) = (p.duration, self.config.max_duration(p.measure)) {
            if d <= SignedDuration::ZERO {
                return Err(GovernanceError::BadRequest("duration must be positive".into()));
            }
            // Record the requested duration in the evidence so expiry is reproducible.
            rec.evidence = json!({"evidence": p.evidence, "requested_duration": format!("{:#}", d.min(max))});
        }

        let mut mutations = vec![Mutation::InsertAction(Box::new(rec.clone()))];
        let mut ledger = Vec::new();
        if let (Some(method), Some(sub)) = (&p.subscriber_request, &p.subscriber) {
            mutations.push(Mutation::Consent(ConsentEvent {
                subscriber: sub.clone(),
                measure: p.measure,
                change: ConsentChange::Granted,
                method: method.clone(),
                at: now,
                recorded_by: p.proposer.clone(),
            }));
            ledger.push(
                LedgerDraft::new(
                    EventKind::ConsentGranted,
                    p.proposer.clone(),
                    json!({"method": method, "as": "subscriber request"}),
                )
                .measure(p.measure)
                .subject(Target::Subscriber(sub.0.clone()).to_string()),
            );
        }
        ledger.push(proposed_entry(&rec));

        let consent = match &p.subscriber {
            Some(s) => self.consent_state(s, p.measure)?,
            None => ConsentState::NotApplicable,
        };
        let granted = matches!(consent, ConsentState::Granted { .. }) || p.subscriber_request.is_some();

        let basis = match (m.consent, &consent) {
            (_, ConsentState::OptedOut { .. }) => None,
            (ConsentModel::ComprehensiveOptOut, ConsentState::NoTermsClause) => None,
            (ConsentModel::ComprehensiveOptOut, _) => {
                Some(Basis { basis: LegalBasis::ComprehensiveConsent, emergency: false })
            }
            (ConsentModel::IndividualRequired, _) if granted => {
                Some(Basis { basis: LegalBasis::Consent, emergency: false })
            }
            (ConsentModel::IndividualFirstEmergencyException, _) if granted => {
                Some(Basis { basis: LegalBasis::Consent, emergency: false })
            }
            (ConsentModel::IndividualFirstEmergencyException, _) if time_class.is_urgent() => {
                Some(Basis { basis: m.primary_basis(), emergency: true })
            }
            (ConsentModel::IndividualRequired | ConsentModel::IndividualFirstEmergencyException, _) => {
                // Ask first.
                rec.state = ActionState::AwaitingConsent;
                rec.deadline = now.checked_add(self.config.governance.consent_request_ttl).ok();
                ledger.push(
                    LedgerDraft::new(
                        EventKind::ConsentRequested,
                        Actor::system(),
                        json!({"time_class": time_class.label(), "answer_by": rec.deadline.map(format_time)}),
                    )
                    .measure(p.measure)
                    .action(id.clone())
                    .subject(p.target.to_string()),
                );
                self.queue(&rec, "consent-request", now, &mut mutations, &mut ledger);
                mutations.push(Mutation::UpdateAction { record: Box::new(rec.clone()), expect: ActionState::Proposed });
                self.commit(mutations, ledger)?;
                return Ok(Decision { action: rec, authorization: None, existing: false });
            }
            (ConsentModel::NotRequired, _) => Some(Basis { basis: m.primary_basis(), emergency: false }),
        };

        let Some(basis) = basis else {
            let reason = match consent {
                ConsentState::OptedOut { .. } => "the subscriber opted out of this measure",
                _ => "no terms clause recorded for this comprehensive-consent measure",
            };
            rec.state = ActionState::Refused;
            rec.ended_at = Some(now);
            rec.end_reason = Some(reason.into());
            ledger.push(
                LedgerDraft::new(EventKind::Refused, Actor::system(), json!({"reason": reason}))
                    .measure(p.measure)
                    .action(id.clone())
                    .subject(p.target.to_string()),
            );
            mutations.push(Mutation::UpdateAction { record: Box::new(rec.clone()), expect: ActionState::Proposed });
            self.commit(mutations, ledger)?;
            return Ok(Decision { action: rec, authorization: None, existing: false });
        };
        rec.legal_basis = basis.basis;
        rec.emergency = basis.emergency;

        if let Some(rule) = m.approval {
            rec.state = ActionState::PendingApproval;
            rec.deadline = now.checked_add(self.config.governance.approval_ttl).ok();
            ledger.push(
                LedgerDraft::new(
                    EventKind::PendingApproval,
                    Actor::system(),
                    json!({"approvers_needed": rule.distinct_approvers, "assessments": rule.assessments,
                           "decide_by": rec.deadline.map(format_time)}),
                )
                .measure(p.measure)
                .action(id.clone())
                .subject(p.target.to_string()),
            );
            mutations.push(Mutation::UpdateAction { record: Box::new(rec.clone()), expect: ActionState::Proposed });
            self.commit(mutations, ledger)?;
            return Ok(Decision { action: rec, authorization: None, existing: false });
        }

        // The insert and the apply go in one transaction: `apply` appends to these.
        self.apply_with(rec, ActionState::Proposed, mutations, ledger, now)
    }

    /// Applies (or completes) an action that is leaving `from`, in one transaction with the
    /// mutations and ledger entries that led to it. The store records the `applied` entry's
    /// sequence number on the action as its grant.
    fn apply_with(
        &self,
        mut rec: ActionRecord,
        from: ActionState,
        mut mutations: Vec<Mutation>,
        mut ledger: Vec<LedgerDraft>,
        now: Timestamp,
    ) -> Result<Decision, GovernanceError> {
        let m = catalog::measure(rec.measure);
        let next = if m.restrictive { ActionState::Applied } else { ActionState::Completed };
        if !from.can_move_to(next) {
            return Err(GovernanceError::InvalidTransition { action_id: rec.id, from, to: next });
        }
        self.mark_applied(&mut rec, now);
        let apply_index = ledger.len();
        ledger.push(applied_entry(&rec));
        if let Some(purpose) = notice_purpose(&rec) {
            self.queue(&rec, purpose, now, &mut mutations, &mut ledger);
        }
        let expect = if mutations.iter().any(|mu| matches!(mu, Mutation::InsertAction(_))) {
            // Inserted as Proposed in this same batch.
            ActionState::Proposed
        } else {
            from
        };
        mutations.push(Mutation::UpdateAction { record: Box::new(rec.clone()), expect });
        let seqs = self.commit(mutations, ledger)?;
        let grant_seq = seqs.get(apply_index).copied().unwrap_or_default();
        rec.grant_seq = Some(grant_seq);
        let auth = Authorization::grant(
            rec.id.clone(),
            rec.measure,
            rec.legal_basis,
            rec.target.clone(),
            if m.restrictive { rec.deadline } else { None },
            grant_seq,
            rec.emergency,
        );
        Ok(Decision { action: rec, authorization: Some(auth), existing: false })
    }

    /// Moves an action to `applied` (restrictive: until its requested duration, at most the
    /// measure's maximum) or `completed` (not restrictive: ended at once), at `now`.
    pub(super) fn mark_applied(&self, rec: &mut ActionRecord, now: Timestamp) {
        let m = catalog::measure(rec.measure);
        rec.state = if m.restrictive { ActionState::Applied } else { ActionState::Completed };
        rec.applied_at = Some(now);
        if m.restrictive {
            let max = self.config.max_duration(rec.measure).unwrap_or(SignedDuration::from_hours(24));
            let requested = rec
                .evidence
                .get("requested_duration")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<SignedDuration>().ok())
                .map_or(max, |d| d.min(max));
            rec.deadline = now.checked_add(requested).ok();
        } else {
            rec.deadline = None;
            rec.ended_at = Some(now);
        }
    }

    /// Queues the notice `purpose` to the action's subscriber, if it has one, with its ledger entry.
    pub(super) fn queue(
        &self,
        rec: &ActionRecord,
        purpose: &str,
        now: Timestamp,
        mutations: &mut Vec<Mutation>,
        ledger: &mut Vec<LedgerDraft>,
    ) {
        let Some(sub) = &rec.subscriber else { return };
        mutations.push(Mutation::Queue(OutboxMessage {
            action_id: rec.id.clone(),
            measure: rec.measure,
            subscriber: sub.clone(),
            purpose: purpose.to_owned(),
            at: now,
        }));
        ledger.push(
            LedgerDraft::new(EventKind::NoticeQueued, Actor::system(), json!({"purpose": purpose}))
                .measure(rec.measure)
                .action(rec.id.clone())
                .subject(Target::Subscriber(sub.0.clone()).to_string()),
        );
    }

    fn load(&self, id: &str) -> Result<ActionRecord, GovernanceError> {
        self.store.action(id)?.ok_or_else(|| GovernanceError::UnknownAction(id.to_owned()))
    }

    /// Records an approval; applies the action once the catalog's number of distinct approvers
    /// (never the proposer) have approved with the assessments the measure asks for.
    pub fn approve(
        &self,
        id: &str,
        approver: &Actor,
        assessments: BTreeMap<String, String>,
    ) -> Result<Decision, GovernanceError> {
        let mut rec = self.load(id)?;
        if rec.state != ActionState::PendingApproval {
            return Err(GovernanceError::InvalidTransition {
                action_id: rec.id,
                from: rec.state,
                to: ActionState::Applied,
            });
        }
        if !self.is_approver(approver)? {
            return Err(GovernanceError::NotAnApprover { name: approver.0.clone() });
        }
        if rec.proposer == *approver {
            return Err(GovernanceError::ProposerCannotApprove { action_id: rec.id, approver: approver.0.clone() });
        }
        if rec.approvals.iter().any(|a| a.approver == *approver) {
            return Err(GovernanceError::AlreadyApproved { action_id: rec.id, approver: approver.0.clone() });
        }
        let m = catalog::measure(rec.measure);
        let rule =
            m.approval.ok_or_else(|| GovernanceError::BadRequest(format!("{} needs no approval", rec.measure)))?;
        for field in rule.assessments {
            if assessments.get(*field).is_none_or(|v| v.trim().is_empty()) {
                return Err(GovernanceError::MissingAssessment { measure: rec.measure, field });
            }
        }
        let now = self.now();
        let approval = Approval { approver: approver.clone(), at: now, assessments: assessments.clone() };
        rec.approvals.push(approval.clone());
        let mutations = vec![Mutation::AddApproval { action_id: rec.id.clone(), approval }];
        let ledger = vec![
            LedgerDraft::new(
                EventKind::Approved,
                approver.clone(),
                json!({"assessments": assessments, "approvals": rec.approvals.len(), "needed": rule.distinct_approvers}),
            )
            .measure(rec.measure)
            .action(rec.id.clone())
            .subject(rec.target.to_string()),
        ];
        if rec.approvals.len() >= usize::from(rule.distinct_approvers) {
            return self.apply_with(rec, ActionState::PendingApproval, mutations, ledger, now);
        }
        let mut mutations = mutations;
        mutations.push(Mutation::UpdateAction { record: Box::new(rec.clone()), expect: ActionState::PendingApproval });
        self.commit(mutations, ledger)?;
        Ok(Decision { action: rec, authorization: None, existing: false })
    }

    /// Rejects a pending action (an approver's decision).
    pub fn reject(&self, id: &str, by: &Actor, reason: &str) -> Result<ActionRecord, GovernanceError> {
        let rec = self.load(id)?;
        if rec.state != ActionState::PendingApproval {
            return Err(GovernanceError::InvalidTransition {
                action_id: rec.id,
                from: rec.state,
                to: ActionState::Rejected,
            });
        }
        if !self.is_approver(by)? {
            return Err(GovernanceError::NotAnApprover { name: by.0.clone() });
        }
        self.end(rec, ActionState::Rejected, EventKind::Rejected, by, reason, None)
    }

    /// The subscriber's answer to a consent request or to an emergency notice.
    pub fn subscriber_reply(
        &self,
        id: &str,
        reply: SubscriberReply,
        method: &str,
    ) -> Result<Decision, GovernanceError> {
        let rec = self.load(id)?;
        let Some(sub) = rec.subscriber.clone() else {
            return Err(GovernanceError::BadRequest(format!("action {id} concerns no subscriber")));
        };
        let by = Actor::subscriber(&sub);
        let now = self.now();
        let answer = match reply {
            SubscriberReply::Agree => "agree",
            SubscriberReply::Decline => "decline",
        };
        let reply_draft =
            LedgerDraft::new(EventKind::ConsentReply, by.clone(), json!({"reply": answer, "method": method}))
                .measure(rec.measure)
                .action(rec.id.clone())
                .subject(Target::Subscriber(sub.0.clone()).to_string());
        match (rec.state, reply) {
            (ActionState::AwaitingConsent, SubscriberReply::Agree) => {
                let mut rec = rec;
                rec.legal_basis = LegalBasis::Consent;
                let consent = Mutation::Consent(ConsentEvent {
                    subscriber: sub,
                    measure: rec.measure,
                    change: ConsentChange::Granted,
                    method: method.to_owned(),
                    at: now,
                    recorded_by: by,
                });
                if let Some(rule) = catalog::measure(rec.measure).approval {
                    rec.state = ActionState::PendingApproval;
                    rec.deadline = now.checked_add(self.config.governance.approval_ttl).ok();
                    let pending = LedgerDraft::new(
                        EventKind::PendingApproval,
                        Actor::system(),
                        json!({"approvers_needed": rule.distinct_approvers}),
                    )
                    .measure(rec.measure)
                    .action(rec.id.clone());
                    self.commit(
                        vec![
                            consent,
                            Mutation::UpdateAction {
                                record: Box::new(rec.clone()),
                                expect: ActionState::AwaitingConsent,
                            },
                        ],
                        vec![reply_draft, pending],
                    )?;
                    return Ok(Decision { action: rec, authorization: None, existing: false });
                }
                self.apply_with(rec, ActionState::AwaitingConsent, vec![consent], vec![reply_draft], now)
            }
            (ActionState::AwaitingConsent, SubscriberReply::Decline) => {
                let rec = self.end(
                    rec,
                    ActionState::Rejected,
                    EventKind::Rejected,
                    &by,
                    "the subscriber declined: the use was theirs",
                    Some(reply_draft),
                )?;
                Ok(Decision { action: rec, authorization: None, existing: false })
            }
            (ActionState::Applied, SubscriberReply::Agree) if rec.emergency => {
                // Reached: the emergency suspension now rests on their consent.
                let mut updated = rec.clone();
                updated.legal_basis = LegalBasis::Consent;
                let consent = Mutation::Consent(ConsentEvent {
                    subscriber: sub,
                    measure: rec.measure,
                    change: ConsentChange::Granted,
                    method: method.to_owned(),
                    at: now,
                    recorded_by: by,
                });
                self.commit(
                    vec![
                        consent,
                        Mutation::UpdateAction { record: Box::new(updated.clone()), expect: ActionState::Applied },
                    ],
                    vec![reply_draft],
                )?;
                Ok(Decision { action: updated, authorization: None, existing: true })
            }
            (ActionState::Applied, SubscriberReply::Decline) if rec.emergency => {
                let rec = self.end(
                    rec,
                    ActionState::Lifted,
                    EventKind::Lifted,
                    &by,
                    "the subscriber was reached: the use was theirs",
                    Some(reply_draft),
                )?;
                Ok(Decision { action: rec, authorization: None, existing: false })
            }
            (from, _) => Err(GovernanceError::InvalidTransition { action_id: rec.id, from, to: ActionState::Applied }),
        }
    }

    /// Lifts an applied action (a person, or its lift condition as judged by a detector).
    pub fn lift(&self, id: &str, by: &Actor, reason: &str) -> Result<ActionRecord, GovernanceError> {
        let rec = self.load(id)?;
        if rec.state != ActionState::Applied {
            return Err(GovernanceError::InvalidTransition {
                action_id: rec.id,
                from: rec.state,
                to: ActionState::Lifted,
            });
        }
        if reason.trim().is_empty() {
            return Err(GovernanceError::BadRequest("a lift needs a reason".into()));
        }
        self.end(rec, ActionState::Lifted, EventKind::Lifted, by, reason, None)
    }

    fn end(
        &self,
        mut rec: ActionRecord,
        to: ActionState,
        kind: EventKind,
        by: &Actor,
        reason: &str,
        first: Option<LedgerDraft>,
    ) -> Result<ActionRecord, GovernanceError> {
        let from = rec.state;
        if !from.can_move_to(to) {
            return Err(GovernanceError::InvalidTransition { action_id: rec.id, from, to });
        }
        let now = self.now();
        rec.state = to;
        rec.ended_at = Some(now);
        rec.end_reason = Some(reason.to_owned());
        let mut ledger: Vec<LedgerDraft> = first.into_iter().collect();
        let duration = rec.duration_applied(now).map(|d| format!("{d:#}"));
        ledger.push(
            LedgerDraft::new(kind, by.clone(), json!({"reason": reason, "from": from, "applied_for": duration}))
                .measure(rec.measure)
                .action(rec.id.clone())
                .subject(rec.target.to_string()),
        );
        let mut mutations = Vec::new();
        if matches!(to, ActionState::Lifted | ActionState::Expired) {
            self.queue(&rec, "lift-notice", now, &mut mutations, &mut ledger);
        }
        mutations.push(Mutation::UpdateAction { record: Box::new(rec.clone()), expect: from });
        self.commit(mutations, ledger)?;
        Ok(rec)
    }

    /// Ends what is due: applied actions past their maximum duration expire, consent requests
    /// and approvals past their deadline lapse. State is in the store, so a restart loses nothing.
    pub fn tick(&self) -> Result<TickOutcome, GovernanceError> {
        let now = self.now();
        let mut out = TickOutcome::default();
        for rec in self.store.due_actions(now)? {
            let (to, kind, reason) = match rec.state {
                ActionState::Applied => (ActionState::Expired, EventKind::Expired, "maximum duration reached"),
                ActionState::AwaitingConsent => (ActionState::Lapsed, EventKind::Lapsed, "consent request unanswered"),
                ActionState::PendingApproval => (ActionState::Lapsed, EventKind::Lapsed, "approvals not given in time"),
                _ => continue,
            };
            match self.end(rec, to, kind, &Actor::system(), reason, None) {
                Ok(r) if r.state == ActionState::Expired => out.expired.push(r),
                Ok(r) => out.lapsed.push(r),
                // Lifted meanwhile by someone else: nothing to do.
                Err(GovernanceError::Store(StoreError::Conflict { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Authorizations for every action in force, for reconciling actuators after a restart of
    /// mamori or of the enforcing peer.
    pub fn reauthorize_applied(&self) -> Result<Vec<(ActionRecord, Authorization)>, GovernanceError> {
        let filter = ActionFilter { state: Some(ActionState::Applied), ..Default::default() };
        let now = self.now();
        Ok(self
            .store
            .actions(&filter)?
            .into_iter()
            .filter(|r| r.deadline.is_none_or(|d| d > now))
            .map(|r| {
                let auth = Authorization::grant(
                    r.id.clone(),
                    r.measure,
                    r.legal_basis,
                    r.target.clone(),
                    r.deadline,
                    r.grant_seq.unwrap_or_default(),
                    r.emergency,
                );
                (r, auth)
            })
            .collect())
    }

    /// Writes the result of a reconciliation to the ledger.
    pub fn record_reconciled(&self, actuator: &str, summary: serde_json::Value) -> Result<u64, GovernanceError> {
        let draft =
            LedgerDraft::new(EventKind::Reconciled, Actor::system(), json!({"actuator": actuator, "summary": summary}));
        Ok(self.commit(vec![], vec![draft])?.first().copied().unwrap_or_default())
    }
}

/// A proposal's new action, in state `proposed`, before any legal ground is decided.
pub(super) fn proposed_record(p: &Proposal, now: Timestamp, time_class: String) -> ActionRecord {
    let m = catalog::measure(p.measure);
    ActionRecord {
        id: new_action_id(now),
        measure: p.measure,
        target: p.target.clone(),
        subscriber: p.subscriber.clone(),
        state: ActionState::Proposed,
        legal_basis: m.primary_basis(),
        emergency: false,
        time_class,
        proposer: p.proposer.clone(),
        proposed_at: now,
        applied_at: None,
        ended_at: None,
        deadline: None,
        lift_condition: m.lift_condition.to_owned(),
        evidence: p.evidence.clone(),
        end_reason: None,
        grant_seq: None,
        approvals: vec![],
    }
}

/// The `proposed` ledger entry of a new action (its evidence as finally recorded).
pub(super) fn proposed_entry(rec: &ActionRecord) -> LedgerDraft {
    LedgerDraft::new(
        EventKind::Proposed,
        rec.proposer.clone(),
        json!({"evidence": rec.evidence, "time_class": rec.time_class}),
    )
    .measure(rec.measure)
    .action(rec.id.clone())
    .subject(rec.target.to_string())
}

/// The `applied` ledger entry of an action just marked applied (or completed): the grant the
/// store records on the action.
pub(super) fn applied_entry(rec: &ActionRecord) -> LedgerDraft {
    LedgerDraft::new(
        EventKind::Applied,
        Actor::system(),
        json!({
            "legal_basis": rec.legal_basis,
            "emergency": rec.emergency,
            "time_class": rec.time_class,
            "expires_at": rec.deadline.map(format_time),
            "lift_condition": rec.lift_condition,
            "approvals": rec.approvals.iter().map(|a| a.approver.0.clone()).collect::<Vec<_>>(),
        }),
    )
    .measure(rec.measure)
    .action(rec.id.clone())
    .subject(rec.target.to_string())
}

/// What the subscriber is told when an action applies: an emergency notice, or what the
/// measure's notification duty asks for.
pub(super) fn notice_purpose(rec: &ActionRecord) -> Option<&'static str> {
    if rec.emergency {
        return Some("emergency-notice");
    }
    match catalog::measure(rec.measure).notification {
        NotificationDuty::Alert => Some("alert"),
        NotificationDuty::Confirmation
        | NotificationDuty::ConsentRequestOrPromptNotice
        | NotificationDuty::Requester => Some("confirmation"),
        NotificationDuty::None | NotificationDuty::Public => None,
    }
}
