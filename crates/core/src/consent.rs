//! The consent registry's records: individual consent, comprehensive consent through a terms
//! clause, opt-out and opt-in, with history kept (nothing is overwritten; the current state is the
//! latest event).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::MeasureId;
use crate::subject::{Actor, SubscriberId};

/// A change of a subscriber's consent for one measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentChange {
    /// Individual consent given (a request, a reply, a signed form).
    Granted,
    /// Opted out: effective at once; the subscriber leaves the measure's views.
    OptedOut,
    /// Opted back in after an opt-out.
    OptedIn,
}

impl ConsentChange {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentChange::Granted => "granted",
            ConsentChange::OptedOut => "opted-out",
            ConsentChange::OptedIn => "opted-in",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [ConsentChange::Granted, ConsentChange::OptedOut, ConsentChange::OptedIn].into_iter().find(|c| c.as_str() == s)
    }
}

/// One consent event, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvent {
    /// Whose.
    pub subscriber: SubscriberId,
    /// For which measure.
    pub measure: MeasureId,
    /// What changed.
    pub change: ConsentChange,
    /// How it was expressed (web, phone, written, email-reply, notice-page, …).
    pub method: String,
    /// When.
    pub at: Timestamp,
    /// Who recorded it (an operator, or the subscriber themselves).
    pub recorded_by: Actor,
}

/// Where the terms of service or the website announce a measure (the notice prerequisite, and for
/// comprehensive-consent measures the terms clause the consent rests on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicNotice {
    /// The measure announced.
    pub measure: MeasureId,
    /// Where (http or https URL).
    pub url: String,
    /// Version of the terms/page.
    pub version: String,
    /// The clause text or number, when the terms carry the consent.
    pub clause: Option<String>,
    /// When recorded.
    pub recorded_at: Timestamp,
    /// Who recorded it.
    pub recorded_by: Actor,
}

/// A subscriber's current position for one measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum ConsentState {
    /// The measure doesn't rest on consent.
    NotApplicable,
    /// No individual consent recorded.
    NotGiven,
    /// Individual consent recorded.
    Granted {
        /// When.
        at: Timestamp,
        /// How.
        method: String,
    },
    /// Covered by the terms clause (comprehensive consent), not opted out.
    CoveredByTerms {
        /// The terms version.
        version: String,
    },
    /// Comprehensive-consent measure, but no terms clause recorded yet: not covered.
    NoTermsClause,
    /// Opted out.
    OptedOut {
        /// Since when.
        at: Timestamp,
    },
}
