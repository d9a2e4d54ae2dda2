//! What the consumer of each report measure may read (DESIGN.md invariant 2): the report row's
//! observation (instant, detail, row key) and the subscriber who held the address then — not
//! the address itself. Each measure has its own view type, so each passes its own
//! [`ViewGate`], which drops subscribers who opted out before the projection.

use std::sync::Arc;

use jiff::Timestamp;
use mamori_core::catalog::{Field, MeasureId};
use mamori_core::clock::Clock;
use mamori_core::governance::Governance;
use mamori_core::subject::{SubscriberId, Target};
use mamori_core::view::{Admission, MeasureView, ViewError, ViewGate, ViewToken};

use crate::seen::RowKey;

/// A report row with the subscriber attribution found for it (the record the views project).
#[derive(Debug, Clone)]
pub struct AttributedRow {
    /// Line in the report.
    pub line: u64,
    /// The subscriber who held the address at `at`.
    pub subscriber: SubscriberId,
    /// The instant of the observation.
    pub at: Timestamp,
    /// What was seen.
    pub detail: Option<String>,
    /// The row's key (for duplicates).
    pub key: RowKey,
}

/// What a report consumer reads of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFinding {
    /// The subscriber.
    pub subscriber: SubscriberId,
    /// The instant.
    pub at: Timestamp,
    /// What was seen.
    pub detail: Option<String>,
    /// The row key.
    pub key: RowKey,
}

fn project(r: &AttributedRow) -> ReportFinding {
    ReportFinding { subscriber: r.subscriber.clone(), at: r.at, detail: r.detail.clone(), key: r.key }
}

macro_rules! report_view {
    ($(#[$doc:meta])* $name:ident, $measure:expr, $field:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub ReportFinding);

        impl MeasureView for $name {
            type Record = AttributedRow;
            const MEASURE: MeasureId = $measure;
            const STAGE: u8 = 1;
            const FIELDS: &'static [Field] = &[$field, Field::SessionAttribution];
            fn subscriber(r: &AttributedRow) -> Option<&SubscriberId> {
                Some(&r.subscriber)
            }
            fn subject(r: &AttributedRow) -> Target {
                Target::Subscriber(r.subscriber.0.clone())
            }
            fn project(r: &AttributedRow, _token: ViewToken) -> Self {
                $name(project(r))
            }
        }
    };
}

report_view!(
    /// `bots.alert-from-third-party`: sinkhole, takedown and stepping-stone reports.
    BotsReportView,
    MeasureId::BotsAlertFromThirdParty,
    Field::ThirdPartyReport
);
report_view!(
    /// `iot.alert-weak-credentials`: survey rows of devices with weak passwords.
    IotReportView,
    MeasureId::IotAlertWeakCredentials,
    Field::ThirdPartyReport
);
report_view!(
    /// `router.alert-vulnerable`: open resolvers and other vulnerable devices.
    RouterReportView,
    MeasureId::RouterAlertVulnerable,
    Field::ThirdPartyReport
);
report_view!(
    /// `mail.blacklist-alert`: blacklist listings.
    BlacklistView,
    MeasureId::MailBlacklistAlert,
    Field::BlacklistListing
);

/// The gate of one report measure.
#[derive(Debug)]
pub enum ReportGate {
    /// `bots.alert-from-third-party`.
    Bots(ViewGate<BotsReportView>),
    /// `iot.alert-weak-credentials`.
    Iot(ViewGate<IotReportView>),
    /// `router.alert-vulnerable`.
    Router(ViewGate<RouterReportView>),
    /// `mail.blacklist-alert`.
    Blacklist(ViewGate<BlacklistView>),
}

impl ReportGate {
    /// Opens the gate of a report measure (`None` for any other measure).
    pub fn open(measure: MeasureId, gov: &Governance, clock: Arc<dyn Clock>) -> Option<Result<ReportGate, ViewError>> {
        Some(match measure {
            MeasureId::BotsAlertFromThirdParty => ViewGate::open(gov, clock).map(ReportGate::Bots),
            MeasureId::IotAlertWeakCredentials => ViewGate::open(gov, clock).map(ReportGate::Iot),
            MeasureId::RouterAlertVulnerable => ViewGate::open(gov, clock).map(ReportGate::Router),
            MeasureId::MailBlacklistAlert => ViewGate::open(gov, clock).map(ReportGate::Blacklist),
            _ => return None,
        })
    }

    /// The view of a row, or `None` when the gate dropped it (the subscriber opted out).
    pub fn admit(&self, r: &AttributedRow) -> Option<ReportFinding> {
        fn pass<V>(a: Admission<V>, f: impl FnOnce(V) -> ReportFinding) -> Option<ReportFinding> {
            match a {
                Admission::Admitted(v) => Some(f(v)),
                Admission::OptedOut | Admission::Locked => None,
            }
        }
        match self {
            ReportGate::Bots(g) => pass(g.admit(r), |v| v.0),
            ReportGate::Iot(g) => pass(g.admit(r), |v| v.0),
            ReportGate::Router(g) => pass(g.admit(r), |v| v.0),
            ReportGate::Blacklist(g) => pass(g.admit(r), |v| v.0),
        }
    }
}
