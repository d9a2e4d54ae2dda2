//! The one value actuators require (DESIGN.md invariant 1).
//!
//! An [`Authorization`] can only be made by [`crate::governance`]: its fields are private, it has
//! no public constructor, and it is neither `Clone`, `Default` nor `Deserialize`. Anything that
//! blocks, suspends, warns or announces takes `&Authorization`, so code that acts without a
//! governance decision does not compile:
//!
//! ```compile_fail
//! use mamori_core::authorization::Authorization;
//! // error: cannot construct `Authorization` with struct literal syntax due to private fields
//! let forged = Authorization { action_id: "A1".into() };
//! ```
//!
//! ```compile_fail
//! fn copy(a: &mamori_core::authorization::Authorization) -> mamori_core::authorization::Authorization {
//!     a.clone() // error: `Authorization` is not `Clone`
//! }
//! ```

use jiff::Timestamp;

use crate::catalog::{LegalBasis, MeasureId};
use crate::subject::Target;

/// Permission to act: names the measure, the legal basis, the target, the expiry and the ledger
/// entry that granted it.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    action_id: String,
    measure: MeasureId,
    legal_basis: LegalBasis,
    target: Target,
    expires_at: Option<Timestamp>,
    ledger_seq: u64,
    emergency: bool,
}

impl Authorization {
    /// Only governance grants.
    pub(crate) fn grant(
        action_id: String,
        measure: MeasureId,
        legal_basis: LegalBasis,
        target: Target,
        expires_at: Option<Timestamp>,
        ledger_seq: u64,
        emergency: bool,
    ) -> Self {
        Authorization { action_id, measure, legal_basis, target, expires_at, ledger_seq, emergency }
    }

    /// The action this authorizes.
    pub fn action_id(&self) -> &str {
        &self.action_id
    }
    /// The measure.
    pub fn measure(&self) -> MeasureId {
        self.measure
    }
    /// The legal ground.
    pub fn legal_basis(&self) -> LegalBasis {
        self.legal_basis
    }
    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }
    /// When the action must end at the latest (`None` for one-shot actions).
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
    /// The ledger entry that granted it.
    pub fn ledger_seq(&self) -> u64 {
        self.ledger_seq
    }
    /// Taken before consent under the emergency rule.
    pub fn is_emergency(&self) -> bool {
        self.emergency
    }
}
