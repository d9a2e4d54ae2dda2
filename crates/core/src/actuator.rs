//! The seam to enforcing peers (Kamailio, BGP speakers, resolvers, mail): every apply takes an
//! [`Authorization`], so nothing is enforced without a governance decision.

use std::sync::Mutex;

use serde::Serialize;

use crate::action::ActionRecord;
use crate::authorization::Authorization;
use crate::catalog::MeasureId;

/// Actuator failures, kept apart so callers can treat them differently.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActuatorError {
    /// The peer is down or unreachable: retry later (the store still says what should be in force).
    #[error("peer unavailable: {0}")]
    PeerUnavailable(String),
    /// The peer refused or answered nonsense.
    #[error("peer refused: {0}")]
    Refused(String),
    /// The actuator doesn't handle this measure.
    #[error("this actuator does not enforce {0}")]
    Unsupported(MeasureId),
}

/// Something that enforces actions at a peer.
pub trait Actuator: Send + Sync {
    /// A short name for logs and the ledger.
    fn name(&self) -> &str;
    /// Whether it enforces this measure.
    fn handles(&self, measure: MeasureId) -> bool;
    /// Puts an authorized action in force.
    fn apply(&self, auth: &Authorization) -> Result<(), ActuatorError>;
    /// Removes an action that ended (lifts never need an authorization: ending is always allowed).
    fn remove(&self, action: &ActionRecord) -> Result<(), ActuatorError>;
    /// Makes the peer hold exactly the given authorized actions of the measures it handles.
    fn reconcile(&self, in_force: &[&Authorization]) -> Result<(), ActuatorError>;
    /// [`Actuator::reconcile`], returning what it changed at the peer for the ledger's
    /// `reconciled` entry (`None`: the actuator doesn't say).
    fn reconcile_summary(&self, in_force: &[&Authorization]) -> Result<Option<serde_json::Value>, ActuatorError> {
        self.reconcile(in_force).map(|()| None)
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedCall {
    /// apply, remove or reconcile.
    pub call: &'static str,
    /// The action.
    pub action_id: String,
    /// The measure.
    pub measure: MeasureId,
    /// The target.
    pub target: String,
}

/// The actuator of offline replay and tests: records calls instead of touching a peer.
#[derive(Debug, Default)]
pub struct RecordingActuator {
    calls: Mutex<Vec<RecordedCall>>,
}

impl RecordingActuator {
    /// What was called so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn push(&self, c: RecordedCall) {
        if let Ok(mut v) = self.calls.lock() {
            v.push(c);
        }
    }
}

impl Actuator for RecordingActuator {
    fn name(&self) -> &str {
        "recording"
    }
    fn handles(&self, _measure: MeasureId) -> bool {
        true
    }
    fn apply(&self, auth: &Authorization) -> Result<(), ActuatorError> {
        self.push(RecordedCall {
            call: "apply",
            action_id: auth.action_id().to_owned(),
            measure: auth.measure(),
            target: auth.target().to_string(),
        });
        Ok(())
    }
    fn remove(&self, action: &ActionRecord) -> Result<(), ActuatorError> {
        self.push(RecordedCall {
            call: "remove",
            action_id: action.id.clone(),
            measure: action.measure,
            target: action.target.to_string(),
        });
        Ok(())
    }
    fn reconcile(&self, in_force: &[&Authorization]) -> Result<(), ActuatorError> {
        for a in in_force {
            self.push(RecordedCall {
                call: "reconcile",
                action_id: a.action_id().to_owned(),
                measure: a.measure(),
                target: a.target().to_string(),
            });
        }
        Ok(())
    }
}
