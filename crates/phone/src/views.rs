//! What each `phone.*` measure may read, as view types (DESIGN.md invariant 2).
//!
//! The engine builds a record per line, IP or country at each evaluation; a detector receives only
//! the view the [`ViewGate`](mamori_core::view::ViewGate) projects from it, so a detector for
//! stage 1 of `phone.suspend-line-on-surge` cannot name a country code or a source IP: its view
//! type has no such field. Stage 2 is admitted per line, only after governance unlocked it.

use std::net::IpAddr;

use jiff::Timestamp;
use mamori_core::catalog::{Field, MeasureId};
use mamori_core::subject::{SubscriberId, Target};
use mamori_core::view::{MeasureView, ViewToken};

use crate::numbering::CountryCode;

/// Charge totals of one line at one evaluation (the engine's record for stage 1 of T5).
#[derive(Debug, Clone)]
pub struct LineTotals {
    /// The line.
    pub line_id: String,
    /// Its subscriber.
    pub subscriber: SubscriberId,
    /// International charge accrued in the window (completed and in progress), yen.
    pub window_jpy: f64,
    /// Yen per minute of the international calls in progress.
    pub rate_jpy_per_min: f64,
    /// International calls in progress.
    pub calls_in_progress: u32,
    /// The line's normal level: its decayed peak window charge, yen.
    pub normal_jpy: f64,
    /// International charge over the last hours (a two-hour moving sum), yen.
    pub sustained_jpy: f64,
    /// The line's normal sustained level, yen.
    pub normal_sustained_jpy: f64,
}

/// T5 stage 1: charge totals per line, nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct SurgeTotals {
    /// International charge in the window, yen.
    pub window_jpy: f64,
    /// Current rate of calls in progress, yen per minute.
    pub rate_jpy_per_min: f64,
    /// Calls in progress.
    pub calls_in_progress: u32,
    /// The line's own normal level, yen per window.
    pub normal_jpy: f64,
    /// Charge over the last hours, yen.
    pub sustained_jpy: f64,
    /// Its normal level, yen.
    pub normal_sustained_jpy: f64,
}

impl MeasureView for SurgeTotals {
    type Record = LineTotals;
    const MEASURE: MeasureId = MeasureId::PhoneSuspendLineOnSurge;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::LineChargeTotals];
    fn subscriber(r: &LineTotals) -> Option<&SubscriberId> {
        Some(&r.subscriber)
    }
    fn subject(r: &LineTotals) -> Target {
        Target::Line(r.line_id.clone())
    }
    fn project(r: &LineTotals, _token: ViewToken) -> Self {
        SurgeTotals {
            window_jpy: r.window_jpy,
            rate_jpy_per_min: r.rate_jpy_per_min,
            calls_in_progress: r.calls_in_progress,
            normal_jpy: r.normal_jpy,
            sustained_jpy: r.sustained_jpy,
            normal_sustained_jpy: r.normal_sustained_jpy,
        }
    }
}

/// One international call of a line in the window, as the carrier's records hold it, compared
/// with the line's own past calls.
#[derive(Debug, Clone)]
pub struct CallDetail {
    /// Destination country code.
    pub country: CountryCode,
    /// The SIP client.
    pub source_ip: IpAddr,
    /// Charge accrued in the window, yen.
    pub window_jpy: f64,
    /// Yen per minute.
    pub jpy_per_min: f64,
    /// The line never called this country before.
    pub new_country: bool,
    /// The line never placed a call from this address before.
    pub new_source_ip: bool,
    /// The calling number is not one the line presented before.
    pub unfamiliar_calling_number: bool,
}

/// A line's international calls in the window (the engine's record for stage 2 of T5).
#[derive(Debug, Clone)]
pub struct LineCalls {
    /// The line.
    pub line_id: String,
    /// Its subscriber.
    pub subscriber: SubscriberId,
    /// The calls.
    pub calls: Vec<CallDetail>,
    /// Enough past calls to compare with.
    pub history_known: bool,
    /// The line presents one or two calling numbers, so an unfamiliar one means something (a
    /// PBX presenting many does not).
    pub calling_numbers_stable: bool,
}

/// T5 stage 2 (unlocked per line): country code, calling number and source IP of that line's
/// international calls, as comparisons with its own past.
#[derive(Debug, Clone)]
pub struct SurgeCallDetails {
    /// The calls.
    pub calls: Vec<CallDetail>,
    /// Enough past calls to compare with.
    pub history_known: bool,
    /// Few calling numbers in the past.
    pub calling_numbers_stable: bool,
}

impl MeasureView for SurgeCallDetails {
    type Record = LineCalls;
    const MEASURE: MeasureId = MeasureId::PhoneSuspendLineOnSurge;
    const STAGE: u8 = 2;
    const FIELDS: &'static [Field] = &[Field::CountryCode, Field::CallingNumber, Field::SourceIp];
    fn subscriber(r: &LineCalls) -> Option<&SubscriberId> {
        Some(&r.subscriber)
    }
    fn subject(r: &LineCalls) -> Target {
        Target::Line(r.line_id.clone())
    }
    fn project(r: &LineCalls, _token: ViewToken) -> Self {
        SurgeCallDetails {
            calls: r.calls.clone(),
            history_known: r.history_known,
            calling_numbers_stable: r.calling_numbers_stable,
        }
    }
}

/// International calls from one source address at an evaluation (record for T6).
#[derive(Debug, Clone)]
pub struct SourceActivity {
    /// The address.
    pub source_ip: IpAddr,
    /// Countries it is calling now.
    pub countries: Vec<CountryCode>,
    /// Lines on which a surge judged fraudulent involves this address.
    pub fraud_lines: u32,
    /// Share of those lines' window charge placed from it.
    pub share_of_fraud_charge: f64,
    /// Whether it is new for every line it calls from.
    pub new_for_lines: bool,
    /// Its last international call.
    pub last_call: Timestamp,
}

/// T6: country code and source IP of international calls.
#[derive(Debug, Clone)]
pub struct SourceView {
    /// The address.
    pub source_ip: IpAddr,
    /// Countries called.
    pub countries: Vec<CountryCode>,
    /// Fraud lines involved.
    pub fraud_lines: u32,
    /// Share of their charge from this address.
    pub share_of_fraud_charge: f64,
    /// New for the lines.
    pub new_for_lines: bool,
}

impl MeasureView for SourceView {
    type Record = SourceActivity;
    const MEASURE: MeasureId = MeasureId::PhoneSuspendSipAuthFromIp;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::CountryCode, Field::SourceIp];
    fn subscriber(_: &SourceActivity) -> Option<&SubscriberId> {
        None
    }
    fn subject(r: &SourceActivity) -> Target {
        Target::Ip(r.source_ip.to_string())
    }
    fn project(r: &SourceActivity, _token: ViewToken) -> Self {
        SourceView {
            source_ip: r.source_ip,
            countries: r.countries.clone(),
            fraud_lines: r.fraud_lines,
            share_of_fraud_charge: r.share_of_fraud_charge,
            new_for_lines: r.new_for_lines,
        }
    }
}

/// Calls to one country at an evaluation (record for T7).
#[derive(Debug, Clone)]
pub struct CountryActivity {
    /// The country.
    pub country: CountryCode,
    /// Calls in progress to it.
    pub calls_in_progress: u32,
    /// Distinct lines calling it.
    pub lines: u32,
    /// Distinct source addresses, most active first (at most 10).
    pub top_sources: Vec<IpAddr>,
    /// Distinct source addresses.
    pub sources: u32,
    /// Its normal concurrent volume (decayed peak).
    pub normal_calls: f64,
}

/// T7: calls to the country and its normal volume.
#[derive(Debug, Clone)]
pub struct CountryView {
    /// The country.
    pub country: CountryCode,
    /// Calls in progress.
    pub calls_in_progress: u32,
    /// Lines.
    pub lines: u32,
    /// Top sources.
    pub top_sources: Vec<IpAddr>,
    /// Sources.
    pub sources: u32,
    /// Normal volume.
    pub normal_calls: f64,
}

impl MeasureView for CountryView {
    type Record = CountryActivity;
    const MEASURE: MeasureId = MeasureId::PhoneRestrictCountry;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] =
        &[Field::CountryCode, Field::CountryCallCounts, Field::CountryNormalVolume, Field::SourceIp];
    fn subscriber(_: &CountryActivity) -> Option<&SubscriberId> {
        None
    }
    fn subject(r: &CountryActivity) -> Target {
        Target::Country(r.country.to_string())
    }
    fn project(r: &CountryActivity, _token: ViewToken) -> Self {
        CountryView {
            country: r.country,
            calls_in_progress: r.calls_in_progress,
            lines: r.lines,
            top_sources: r.top_sources.clone(),
            sources: r.sources,
            normal_calls: r.normal_calls,
        }
    }
}

/// A line's last international call (record for T3).
#[derive(Debug, Clone)]
pub struct LineLastInternational {
    /// The line.
    pub line_id: String,
    /// Its subscriber.
    pub subscriber: SubscriberId,
    /// Last international call, if any was seen.
    pub last_international: Option<Timestamp>,
    /// Since when the line is known.
    pub known_since: Timestamp,
}

/// T3: per line, the date of the last international call.
#[derive(Debug, Clone)]
pub struct DormantView {
    /// Last international call (or, if none, since when the line is known).
    pub quiet_since: Timestamp,
}

impl MeasureView for DormantView {
    type Record = LineLastInternational;
    const MEASURE: MeasureId = MeasureId::PhoneSuspendDormant;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::LastInternationalCallDate];
    fn subscriber(r: &LineLastInternational) -> Option<&SubscriberId> {
        Some(&r.subscriber)
    }
    fn subject(r: &LineLastInternational) -> Target {
        Target::Line(r.line_id.clone())
    }
    fn project(r: &LineLastInternational, _token: ViewToken) -> Self {
        DormantView { quiet_since: r.last_international.unwrap_or(r.known_since) }
    }
}
