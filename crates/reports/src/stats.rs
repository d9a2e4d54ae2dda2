//! The report's figures: counting actions per measure.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::{self, CATALOG, Measure, MeasureId, Provision};
use mamori_core::subject::{SubscriberId, Target};
use serde::Serialize;

use crate::ReportError;

/// The period a report covers: actions proposed in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// First instant included.
    pub from: Timestamp,
    /// First instant excluded.
    pub to: Timestamp,
}

impl Period {
    /// A period, checked to be non-empty.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Period, ReportError> {
        if to <= from {
            return Err(ReportError::EmptyPeriod { from, to });
        }
        Ok(Period { from, to })
    }

    /// Whether `t` is in `[from, to)`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }

    /// The Japan days the period touches: the day of `from` and the day of the last included
    /// instant (both the day of `from` when the period is empty).
    pub fn japan_days(&self) -> (Date, Date) {
        let first = japan_day(self.from);
        let last = if self.to > self.from {
            self.to.checked_sub(SignedDuration::from_nanos(1)).map_or(first, japan_day)
        } else {
            first
        };
        (first, last.max(first))
    }
}

/// The Japan day (+09:00) of an instant.
pub(crate) fn japan_day(t: Timestamp) -> Date {
    t.to_zoned_datetime(mamori_core::calendar::japan()).date()
}

/// How many actions are in each state (the state when the report was built).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// Just proposed.
    pub proposed: u64,
    /// Waiting for the subscriber's answer.
    pub awaiting_consent: u64,
    /// Waiting for approval.
    pub pending_approval: u64,
    /// Still in force.
    pub applied: u64,
    /// Ended by a person, the subscriber or the lift condition.
    pub lifted: u64,
    /// Ended by the maximum duration.
    pub expired: u64,
    /// One-shot actions carried out (alerts, publications).
    pub completed: u64,
    /// Declined by an approver or the subscriber.
    pub rejected: u64,
    /// Refused by governance: no legal ground.
    pub refused: u64,
    /// Consent request or approval unanswered until its deadline.
    pub lapsed: u64,
}

impl StateCounts {
    fn add(&mut self, state: ActionState) {
        let slot = match state {
            ActionState::Proposed => &mut self.proposed,
            ActionState::AwaitingConsent => &mut self.awaiting_consent,
            ActionState::PendingApproval => &mut self.pending_approval,
            ActionState::Applied => &mut self.applied,
            ActionState::Lifted => &mut self.lifted,
            ActionState::Expired => &mut self.expired,
            ActionState::Completed => &mut self.completed,
            ActionState::Rejected => &mut self.rejected,
            ActionState::Refused => &mut self.refused,
            ActionState::Lapsed => &mut self.lapsed,
        };
        *slot += 1;
    }

    fn merge(&mut self, other: &StateCounts) {
        self.proposed += other.proposed;
        self.awaiting_consent += other.awaiting_consent;
        self.pending_approval += other.pending_approval;
        self.applied += other.applied;
        self.lifted += other.lifted;
        self.expired += other.expired;
        self.completed += other.completed;
        self.rejected += other.rejected;
        self.refused += other.refused;
        self.lapsed += other.lapsed;
    }

    /// Actions not decided yet: proposed, awaiting consent or pending approval.
    pub fn open(&self) -> u64 {
        self.proposed + self.awaiting_consent + self.pending_approval
    }

    /// Actions that took effect: in force, ended (lifted, expired) or carried out (completed).
    pub fn carried_out(&self) -> u64 {
        self.applied + self.lifted + self.expired + self.completed
    }
}

/// Whether an action in this state took effect (and so affected its subscriber).
fn carried_out(state: ActionState) -> bool {
    matches!(state, ActionState::Applied | ActionState::Lifted | ActionState::Expired | ActionState::Completed)
}

/// Whether an action in this state was in force for a while (restrictive actions; a completed
/// one-shot action has no duration).
fn was_in_force(state: ActionState) -> bool {
    matches!(state, ActionState::Applied | ActionState::Lifted | ActionState::Expired)
}

/// A published target and how many actions that took effect were aimed at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetCount {
    /// The target's textual form, e.g. `country:882` (untrusted text: escape it when rendering).
    pub target: String,
    /// Actions that took effect against it.
    pub actions: u64,
}

/// Whether the report may name this target of this measure: only when the catalog allows it, and
/// only for countries and the whole network (never a line, an address, a prefix, a domain or a
/// subscriber, which could identify someone).
pub(crate) fn publishable(measure: &Measure, target: &Target) -> bool {
    measure.publish_targets && matches!(target, Target::Country(_) | Target::Network)
}

/// One measure's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasureStats {
    /// The stable measure id, e.g. `phone.restrict-country`.
    pub measure: String,
    /// Its family (phone, ddos, net, dns, …).
    pub family: String,
    /// What it does, in English.
    pub title_en: String,
    /// What it does, in Japanese.
    pub title_ja: String,
    /// The legal grounds the catalog accepts for it, the primary first.
    pub legal_basis: Vec<String>,
    /// Whether the catalog allows publishing its (country and network) targets.
    pub publishes_targets: bool,
    /// Actions proposed in the period.
    pub actions: u64,
    /// Those actions by their current state.
    pub by_state: StateCounts,
    /// Those actions by the legal ground each rested (or would have rested) on.
    pub by_legal_basis: BTreeMap<String, u64>,
    /// Actions taken before consent under the emergency rule.
    pub emergency_actions: u64,
    /// Distinct subscribers concerned by an action that took effect (a count; ids are never reported).
    pub subscribers_affected: u64,
    /// Actions that were in force (applied, lifted or expired): the sample of the durations below.
    pub durations_counted: u64,
    /// Median time in force, in seconds (the mean of the two middle values for an even count);
    /// an action still in force counts until the report's `generated_at`.
    pub duration_median_seconds: Option<f64>,
    /// Longest time in force, in seconds.
    pub duration_max_seconds: Option<i64>,
    /// Published targets with their counts, most frequent first; empty unless the catalog allows it.
    pub published_targets: Vec<TargetCount>,
    /// Actions proposed per Japan day (days without actions are left out).
    pub per_day: BTreeMap<Date, u64>,
}

/// Figures over all measures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Actions proposed in the period.
    pub actions: u64,
    /// Those actions by their current state.
    pub by_state: StateCounts,
    /// Emergency actions.
    pub emergency_actions: u64,
    /// Distinct subscribers affected by any measure (one subscriber affected by two measures counts once).
    pub subscribers_affected: u64,
    /// Measures with at least one action.
    pub measures_with_actions: u64,
    /// Actions proposed per Japan day, all measures.
    pub per_day: BTreeMap<Date, u64>,
}

/// A catalog measure the working group refused: mamori never provides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotProvided {
    /// The measure id.
    pub measure: String,
    /// What it would do, in English.
    pub title_en: String,
    /// What it would do, in Japanese.
    pub title_ja: String,
    /// Why it was refused.
    pub reason: String,
    /// Actions for it in the period: always 0 unless something is badly wrong (governance cannot
    /// authorize a refused measure). Reported rather than hidden.
    pub actions_in_period: u64,
}

/// The transparency report of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransparencyReport {
    /// The period: actions proposed in `[from, to)`.
    pub period: Period,
    /// The UTC offset used for days (Japan time).
    pub timezone: String,
    /// When the report was built; actions still in force are counted until then.
    pub generated_at: Timestamp,
    /// Measures with at least one action in the period, in catalog order.
    pub measures: Vec<MeasureStats>,
    /// Figures over all those measures.
    pub totals: Totals,
    /// Measures the working group refused, which mamori never provides.
    pub not_provided: Vec<NotProvided>,
}

/// Median of sorted values; the mean of the two middle values for an even count.
pub(crate) fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    if n % 2 == 1 {
        Some(sorted[mid] as f64)
    } else {
        // i128 so the sum of two large values cannot overflow.
        Some((i128::from(sorted[mid - 1]) + i128::from(sorted[mid])) as f64 / 2.0)
    }
}

#[derive(Default)]
struct Acc<'a> {
    by_state: StateCounts,
    by_basis: BTreeMap<String, u64>,
    emergency: u64,
    subscribers: BTreeSet<&'a SubscriberId>,
    durations: Vec<i64>,
    targets: BTreeMap<String, u64>,
    per_day: BTreeMap<Date, u64>,
    actions: u64,
}

/// Builds the report of the actions proposed in `period` (`[from, to)`); other actions are ignored,
/// so the caller may pass more than the period's.
///
/// `generated_at` is the end of the durations of actions still in force.
pub fn build(actions: &[ActionRecord], period: Period, generated_at: Timestamp) -> TransparencyReport {
    let mut accs: BTreeMap<MeasureId, Acc<'_>> = BTreeMap::new();
    let mut refused_counts: BTreeMap<MeasureId, u64> = BTreeMap::new();
    let mut all_subscribers: BTreeSet<&SubscriberId> = BTreeSet::new();

    for rec in actions.iter().filter(|r| period.contains(r.proposed_at)) {
        let m = catalog::measure(rec.measure);
        if m.is_refused() {
            *refused_counts.entry(rec.measure).or_default() += 1;
            continue;
        }
        let acc = accs.entry(rec.measure).or_default();
        acc.actions += 1;
        acc.by_state.add(rec.state);
        *acc.by_basis.entry(rec.legal_basis.as_str().to_owned()).or_default() += 1;
        if rec.emergency {
            acc.emergency += 1;
        }
        *acc.per_day.entry(japan_day(rec.proposed_at)).or_default() += 1;
        if carried_out(rec.state) {
            if let Some(s) = &rec.subscriber {
                acc.subscribers.insert(s);
                all_subscribers.insert(s);
            }
            if publishable(m, &rec.target) {
                *acc.targets.entry(rec.target.to_string()).or_default() += 1;
            }
        }
        if was_in_force(rec.state) {
            if let Some(d) = rec.duration_applied(generated_at) {
                acc.durations.push(d.as_secs().max(0));
            }
        }
    }

    let mut totals = Totals::default();
    let measures: Vec<MeasureStats> = accs
        .into_iter()
        .map(|(id, mut acc)| {
            let m = catalog::measure(id);
            acc.durations.sort_unstable();
            let mut targets: Vec<TargetCount> =
                acc.targets.into_iter().map(|(target, actions)| TargetCount { target, actions }).collect();
            // most frequent first, then by name, so the order is stable
            targets.sort_by(|a, b| b.actions.cmp(&a.actions).then_with(|| a.target.cmp(&b.target)));

            totals.actions += acc.actions;
            totals.by_state.merge(&acc.by_state);
            totals.emergency_actions += acc.emergency;
            totals.measures_with_actions += 1;
            for (day, n) in &acc.per_day {
                *totals.per_day.entry(*day).or_default() += n;
            }

            MeasureStats {
                measure: m.id_str.to_owned(),
                family: m.family.to_owned(),
                title_en: m.title_en.to_owned(),
                title_ja: m.title_ja.to_owned(),
                legal_basis: m.legal_basis.iter().map(|b| b.as_str().to_owned()).collect(),
                publishes_targets: m.publish_targets,
                actions: acc.actions,
                by_state: acc.by_state,
                by_legal_basis: acc.by_basis,
                emergency_actions: acc.emergency,
                subscribers_affected: acc.subscribers.len() as u64,
                durations_counted: acc.durations.len() as u64,
                duration_median_seconds: median(&acc.durations),
                duration_max_seconds: acc.durations.last().copied(),
                published_targets: targets,
                per_day: acc.per_day,
            }
        })
        .collect();
    totals.subscribers_affected = all_subscribers.len() as u64;

    let not_provided = CATALOG
        .iter()
        .filter_map(|m| match m.provision {
            Provision::Refused(reason) => Some(NotProvided {
                measure: m.id_str.to_owned(),
                title_en: m.title_en.to_owned(),
                title_ja: m.title_ja.to_owned(),
                reason: reason.to_owned(),
                actions_in_period: refused_counts.get(&m.id).copied().unwrap_or(0),
            }),
            Provision::Provided => None,
        })
        .collect();

    TransparencyReport { period, timezone: "+09:00".to_owned(), generated_at, measures, totals, not_provided }
}

impl TransparencyReport {
    /// Whether no action was proposed in the period.
    pub fn is_empty(&self) -> bool {
        self.measures.is_empty()
    }

    /// The report as pretty-printed JSON.
    pub fn try_to_json(&self) -> Result<String, ReportError> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }

    /// The report as pretty-printed JSON.
    ///
    /// Serialization cannot fail for this type (every map key is a string or a date); should it
    /// ever, the result is a JSON object with an `error` member rather than a panic.
    pub fn to_json(&self) -> String {
        self.try_to_json().unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
    }
}
