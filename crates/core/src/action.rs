//! Actions and their lifecycle.
//!
//! ```text
//! proposed ──► awaiting-consent ──► (pending-approval) ──► applied ──► lifted | expired
//!    │               │                      │                 
//!    │               └─► rejected | lapsed  └─► rejected | lapsed
//!    ├─► refused (no legal ground now: opted out, measure disabled, …)
//!    └─► completed (one-shot actions: an alert, a publication)
//! ```
//!
//! Every transition is checked by [`ActionState::can_move_to`], written to the store together with
//! its ledger entries in one transaction, and guarded by the state the writer last saw (a lift and
//! an expiry racing each other cannot both win).

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::catalog::{LegalBasis, MeasureId};
use crate::subject::{Actor, SubscriberId, Target};

/// The state of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionState {
    /// Just proposed (transient: a proposal is decided in the same transaction).
    Proposed,
    /// Waiting for the subscriber's answer to a consent request.
    AwaitingConsent,
    /// Waiting for the approvals the catalog requires.
    PendingApproval,
    /// In force.
    Applied,
    /// Ended by a person, the subscriber, or its lift condition.
    Lifted,
    /// Ended by its maximum duration.
    Expired,
    /// Declined by an approver or by the subscriber.
    Rejected,
    /// Governance found no legal ground to act.
    Refused,
    /// A consent request or approval went unanswered until its deadline.
    Lapsed,
    /// A one-shot action (alert, publication) that was carried out.
    Completed,
}

impl ActionState {
    /// Every state.
    pub const ALL: [ActionState; 10] = [
        ActionState::Proposed,
        ActionState::AwaitingConsent,
        ActionState::PendingApproval,
        ActionState::Applied,
        ActionState::Lifted,
        ActionState::Expired,
        ActionState::Rejected,
        ActionState::Refused,
        ActionState::Lapsed,
        ActionState::Completed,
    ];

    /// The stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Proposed => "proposed",
            ActionState::AwaitingConsent => "awaiting-consent",
            ActionState::PendingApproval => "pending-approval",
            ActionState::Applied => "applied",
            ActionState::Lifted => "lifted",
            ActionState::Expired => "expired",
            ActionState::Rejected => "rejected",
            ActionState::Refused => "refused",
            ActionState::Lapsed => "lapsed",
            ActionState::Completed => "completed",
        }
    }

    /// Whether the action has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ActionState::Lifted
                | ActionState::Expired
                | ActionState::Rejected
                | ActionState::Refused
                | ActionState::Lapsed
                | ActionState::Completed
        )
    }

    /// Whether a transition is allowed.
    pub fn can_move_to(self, next: ActionState) -> bool {
        use ActionState::*;
        matches!(
            (self, next),
            (Proposed, AwaitingConsent | PendingApproval | Applied | Refused | Completed)
                | (AwaitingConsent, PendingApproval | Applied | Rejected | Lapsed)
                | (PendingApproval, Applied | Rejected | Lapsed)
                | (Applied, Lifted | Expired)
        )
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ActionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionState::ALL
            .iter()
            .find(|st| st.as_str() == s)
            .copied()
            .ok_or_else(|| format!("unknown action state `{s}`"))
    }
}

/// One approval of a pending action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved.
    pub approver: Actor,
    /// When.
    pub at: Timestamp,
    /// The human assessments the measure asks for (e.g. `trade_relations`).
    pub assessments: BTreeMap<String, String>,
}

/// An action as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Stable id, e.g. `A20261124-22551000007f3a0c1` (the date and millisecond in Japan, a count, a salt).
    pub id: String,
    /// The measure.
    pub measure: MeasureId,
    /// What it is aimed at.
    pub target: Target,
    /// The subscriber concerned, if any.
    pub subscriber: Option<SubscriberId>,
    /// Current state.
    pub state: ActionState,
    /// The legal ground it rests on (or would rest on).
    pub legal_basis: LegalBasis,
    /// Taken before consent under the emergency rule.
    pub emergency: bool,
    /// The Japan-time class at the decision (business-hours, night, weekend, national-holiday…).
    pub time_class: String,
    /// Who proposed it.
    pub proposer: Actor,
    /// When proposed.
    pub proposed_at: Timestamp,
    /// When applied.
    pub applied_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// When the scheduler must act: the expiry of an applied action, the lapse of a request.
    pub deadline: Option<Timestamp>,
    /// The lift condition.
    pub lift_condition: String,
    /// Minimized evidence (what the detector or operator found).
    pub evidence: serde_json::Value,
    /// Why it ended or was refused.
    pub end_reason: Option<String>,
    /// The ledger entry that granted the authorization.
    pub grant_seq: Option<u64>,
    /// Approvals so far.
    pub approvals: Vec<Approval>,
}

impl ActionRecord {
    /// How long it was (or has been) in force.
    pub fn duration_applied(&self, now: Timestamp) -> Option<SignedDuration> {
        let start = self.applied_at?;
        let end = self.ended_at.unwrap_or(now);
        Some(end.duration_since(start))
    }
}

/// Generates action ids: the Japan date, the millisecond of that day, this process's count of ids
/// (16 bits) and a salt drawn once per process (24 bits). Ids sort by time, so the store's indexes
/// keyed by action id (the actions' key, the ledger's entries per action) grow at their end instead
/// of taking a write on a random page for every new action. Within a process two ids differ by
/// their count unless 65,536 of them share a millisecond; ids of two processes (a CLI and a running
/// server) collide only if they share the millisecond, the count and the salt.
pub fn new_action_id(now: Timestamp) -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SALT: OnceLock<u32> = OnceLock::new();
    let salt = *SALT.get_or_init(|| {
        use std::hash::BuildHasher;
        // std's `RandomState` keys come from the OS's randomness; the pid and the start time are
        // mixed in as well.
        let random = std::collections::hash_map::RandomState::new()
            .hash_one((std::process::id(), Timestamp::now().as_nanosecond()));
        (random & 0xff_ffff) as u32
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff;
    let local = now.to_zoned_datetime(crate::calendar::japan());
    let day_ms = local.time().duration_since(jiff::civil::Time::midnight()).as_millis().clamp(0, 86_400_999);
    format!("A{}-{day_ms:07x}{n:04x}{salt:06x}", local.strftime("%Y%m%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_applied_actions_can_be_lifted() {
        for s in ActionState::ALL {
            assert_eq!(s.can_move_to(ActionState::Lifted), s == ActionState::Applied, "{s}");
        }
    }

    #[test]
    fn final_states_have_no_way_out() {
        for s in ActionState::ALL.into_iter().filter(|s| s.is_final()) {
            for n in ActionState::ALL {
                assert!(!s.can_move_to(n), "{s} -> {n}");
            }
        }
    }

    #[test]
    fn states_round_trip() {
        for s in ActionState::ALL {
            assert_eq!(s.as_str().parse::<ActionState>().unwrap(), s);
        }
    }

    #[test]
    fn ids_are_unique() {
        let now = Timestamp::now();
        // A bulk proposal makes thousands within one millisecond of its clock.
        let ids: std::collections::HashSet<String> = (0..50_000).map(|_| new_action_id(now)).collect();
        assert_eq!(ids.len(), 50_000);
        assert!(ids.iter().all(|i| i.starts_with('A')));
    }

    #[test]
    fn ids_sort_by_time() {
        // 2026-11-24 23:59:59.999 and the next day's first millisecond, Japan time.
        let t0: Timestamp = "2026-11-24T14:59:59.998Z".parse().unwrap();
        let ids: Vec<String> =
            (0..4).map(|ms| new_action_id(t0.checked_add(jiff::SignedDuration::from_millis(ms)).unwrap())).collect();
        assert!(ids[0].starts_with("A20261124-5265bfe"), "{}", ids[0]);
        assert!(ids[2].starts_with("A20261125-0000000"), "{}", ids[2]);
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
        assert!(ids.iter().all(|i| i.len() == "A20261124-".len() + 17), "{ids:?}");
    }
}
