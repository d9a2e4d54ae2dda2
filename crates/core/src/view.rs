//! Views: the only way records reach a detector (DESIGN.md invariant 2).
//!
//! A measure family defines, per measure and stage, a view type implementing [`MeasureView`]: the
//! handful of fields the catalog allows, projected from its record. The projection can only run
//! inside a [`ViewGate`], because it needs a [`ViewToken`], which only this module can make:
//!
//! ```compile_fail
//! // error: cannot construct `ViewToken` with struct literal syntax due to private fields
//! let token = mamori_core::view::ViewToken { _private: () };
//! ```
//!
//! The gate refuses to open when the view declares a field the catalog doesn't list for its
//! measure and stage, drops subscribers who opted out of a consent-based measure before the
//! projection, and admits records of a per-subject stage (stage 2 of
//! `phone.suspend-line-on-surge`) only for subjects governance unlocked, with a ledger entry.
//! Detectors take the view type, never the record, so reading a field the view doesn't carry does
//! not compile.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::catalog::{self, Field, MeasureId, Stage};
use crate::clock::Clock;
use crate::governance::{GateState, Governance};
use crate::subject::{SubscriberId, Target};

/// Proof that the gate admitted a record; required to project it. Not constructible outside
/// this module, not `Clone`.
#[derive(Debug)]
pub struct ViewToken {
    _private: (),
}

/// A measure's view of a record at one stage.
pub trait MeasureView: Sized {
    /// The full record the view is projected from.
    type Record;
    /// The measure.
    const MEASURE: MeasureId;
    /// The stage (1-based).
    const STAGE: u8;
    /// The fields the view exposes; must be a subset of the catalog's list for the stage.
    const FIELDS: &'static [Field];
    /// The subscriber the record belongs to, if known (for opt-outs).
    fn subscriber(record: &Self::Record) -> Option<&SubscriberId>;
    /// The subject the record is about (for per-subject stage unlocks).
    fn subject(record: &Self::Record) -> Target;
    /// Copies the allowed fields out of the record.
    fn project(record: &Self::Record, token: ViewToken) -> Self;
}

/// Why a gate won't open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The measure is refused.
    #[error("{0} is refused by the working group: no view may be built for it")]
    Refused(MeasureId),
    /// The stage doesn't exist.
    #[error("{measure} has no stage {stage}")]
    NoSuchStage {
        /// The measure.
        measure: MeasureId,
        /// The stage.
        stage: u8,
    },
    /// The view reads a field its stage may not read.
    #[error("{measure} stage {stage} may not read {field:?}")]
    FieldNotAllowed {
        /// The measure.
        measure: MeasureId,
        /// The stage.
        stage: u8,
        /// The field.
        field: Field,
    },
}

/// What the gate did with a record.
#[derive(Debug)]
pub enum Admission<V> {
    /// Projected into the view.
    Admitted(V),
    /// The subscriber opted out of the measure: dropped before detection.
    OptedOut,
    /// The stage is not unlocked for this subject.
    Locked,
}

/// Counts of what a gate admitted and dropped.
#[derive(Debug, Default)]
pub struct GateCounters {
    /// Admitted.
    pub admitted: AtomicU64,
    /// Dropped: opted out.
    pub opted_out: AtomicU64,
    /// Dropped: stage locked.
    pub locked: AtomicU64,
}

/// The gate between records and a detector, for one view type.
pub struct ViewGate<V: MeasureView> {
    state: Arc<GateState>,
    clock: Arc<dyn Clock>,
    stage: &'static Stage,
    drop_opted_out: bool,
    /// What passed and what was dropped.
    pub counters: GateCounters,
    _view: PhantomData<fn() -> V>,
}

impl<V: MeasureView> std::fmt::Debug for ViewGate<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewGate").field("measure", &V::MEASURE).field("stage", &V::STAGE).finish_non_exhaustive()
    }
}

impl<V: MeasureView> ViewGate<V> {
    /// Opens a gate for `V`, checking its fields against the catalog.
    pub fn open(governance: &Governance, clock: Arc<dyn Clock>) -> Result<Self, ViewError> {
        let m = catalog::measure(V::MEASURE);
        if m.is_refused() {
            return Err(ViewError::Refused(V::MEASURE));
        }
        let stage = m.stage(V::STAGE).ok_or(ViewError::NoSuchStage { measure: V::MEASURE, stage: V::STAGE })?;
        if let Some(field) = V::FIELDS.iter().find(|f| !stage.fields.contains(f)) {
            return Err(ViewError::FieldNotAllowed { measure: V::MEASURE, stage: V::STAGE, field: *field });
        }
        Ok(ViewGate {
            state: governance.gate_state(),
            clock,
            stage,
            drop_opted_out: m.consent != catalog::ConsentModel::NotRequired,
            counters: GateCounters::default(),
            _view: PhantomData,
        })
    }

    /// Passes one record through the gate.
    pub fn admit(&self, record: &V::Record) -> Admission<V> {
        if self.drop_opted_out {
            if let Some(sub) = V::subscriber(record) {
                // A poisoned lock fails closed: the record is dropped.
                let out = self.state.opted_out.contains(V::MEASURE, sub);
                if out {
                    self.counters.opted_out.fetch_add(1, Ordering::Relaxed);
                    return Admission::OptedOut;
                }
            }
        }
        if self.stage.unlocked_per_subject {
            let subject = V::subject(record);
            let now = self.clock.now();
            let unlocked = self
                .state
                .unlocks
                .read()
                .map(|u| {
                    u.iter().any(|x| {
                        x.measure == V::MEASURE
                            && x.stage == V::STAGE
                            && x.subject == subject
                            && x.until > now
                            && x.at <= now
                    })
                })
                .unwrap_or(false);
            if !unlocked {
                self.counters.locked.fetch_add(1, Ordering::Relaxed);
                return Admission::Locked;
            }
        }
        self.counters.admitted.fetch_add(1, Ordering::Relaxed);
        Admission::Admitted(V::project(record, ViewToken { _private: () }))
    }
}
