//! The measure catalog: what mamori may do, on what legal ground, reading which fields.
//!
//! The catalog is data (see [`measures`]), transcribed from `shared/MEASURES.md` and the seed documents.
//! It is compiled in rather than loaded from a file because every other invariant hangs on it: a
//! carrier must not be able to widen a measure's field list or drop its approval rule by editing a
//! file. Configuration may only *narrow* what the catalog allows (shorter durations, shorter
//! retention), never widen it; see [`crate::config`].

mod measures;

use std::fmt;
use std::str::FromStr;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

pub use measures::CATALOG;

/// A stable measure identifier as used in configuration, events, the ledger and reports.
///
/// Parsing an unknown id is an error, so a misspelled id in a config file or on the command line
/// never silently refers to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(missing_docs)] // each variant's doc is its catalog row
pub enum MeasureId {
    #[serde(rename = "phone.advise-users")]
    PhoneAdviseUsers,
    #[serde(rename = "phone.suspend-on-request")]
    PhoneSuspendOnRequest,
    #[serde(rename = "phone.suspend-dormant")]
    PhoneSuspendDormant,
    #[serde(rename = "phone.publish-fraud-destinations")]
    PhonePublishFraudDestinations,
    #[serde(rename = "phone.suspend-line-on-surge")]
    PhoneSuspendLineOnSurge,
    #[serde(rename = "phone.suspend-sip-auth-from-ip")]
    PhoneSuspendSipAuthFromIp,
    #[serde(rename = "phone.restrict-country")]
    PhoneRestrictCountry,
    #[serde(rename = "ddos.block-on-victim-request")]
    DdosBlockOnVictimRequest,
    #[serde(rename = "ddos.block-to-protect-network")]
    DdosBlockToProtectNetwork,
    #[serde(rename = "ddos.block-unintended-source")]
    DdosBlockUnintendedSource,
    #[serde(rename = "net.drop-spoofed-source")]
    NetDropSpoofedSource,
    #[serde(rename = "net.drop-malformed")]
    NetDropMalformed,
    #[serde(rename = "net.block-malware-spread")]
    NetBlockMalwareSpread,
    #[serde(rename = "net.block-unintended-effect")]
    NetBlockUnintendedEffect,
    #[serde(rename = "net.traffic-overview")]
    NetTrafficOverview,
    #[serde(rename = "sharing.joint-response")]
    SharingJointResponse,
    #[serde(rename = "dns.block-fqdn-list")]
    DnsBlockFqdnList,
    #[serde(rename = "bots.alert-from-third-party")]
    BotsAlertFromThirdParty,
    #[serde(rename = "bots.detect-cnc-queries")]
    BotsDetectCncQueries,
    #[serde(rename = "iot.alert-weak-credentials")]
    IotAlertWeakCredentials,
    #[serde(rename = "router.alert-vulnerable")]
    RouterAlertVulnerable,
    #[serde(rename = "reputation.warn-malware-site")]
    ReputationWarnMalwareSite,
    #[serde(rename = "reputation.block-cnc")]
    ReputationBlockCnc,
    #[serde(rename = "cnc.detect-servers")]
    CncDetectServers,
    #[serde(rename = "mail.blacklist-alert")]
    MailBlacklistAlert,
    #[serde(rename = "mail.smtp-auth-abuse")]
    MailSmtpAuthAbuse,
    #[serde(rename = "auth.pppoe-credential-abuse")]
    AuthPppoeCredentialAbuse,
}

impl MeasureId {
    /// Every measure id, in catalog order.
    pub const ALL: [MeasureId; 27] = [
        MeasureId::PhoneAdviseUsers,
        MeasureId::PhoneSuspendOnRequest,
        MeasureId::PhoneSuspendDormant,
        MeasureId::PhonePublishFraudDestinations,
        MeasureId::PhoneSuspendLineOnSurge,
        MeasureId::PhoneSuspendSipAuthFromIp,
        MeasureId::PhoneRestrictCountry,
        MeasureId::DdosBlockOnVictimRequest,
        MeasureId::DdosBlockToProtectNetwork,
        MeasureId::DdosBlockUnintendedSource,
        MeasureId::NetDropSpoofedSource,
        MeasureId::NetDropMalformed,
        MeasureId::NetBlockMalwareSpread,
        MeasureId::NetBlockUnintendedEffect,
        MeasureId::NetTrafficOverview,
        MeasureId::SharingJointResponse,
        MeasureId::DnsBlockFqdnList,
        MeasureId::BotsAlertFromThirdParty,
        MeasureId::BotsDetectCncQueries,
        MeasureId::IotAlertWeakCredentials,
        MeasureId::RouterAlertVulnerable,
        MeasureId::ReputationWarnMalwareSite,
        MeasureId::ReputationBlockCnc,
        MeasureId::CncDetectServers,
        MeasureId::MailBlacklistAlert,
        MeasureId::MailSmtpAuthAbuse,
        MeasureId::AuthPppoeCredentialAbuse,
    ];

    /// The stable string id, e.g. `phone.suspend-line-on-surge`.
    pub fn as_str(self) -> &'static str {
        measure(self).id_str
    }
}

impl fmt::Display for MeasureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An id that names no measure in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown measure id `{0}` (run `mamori catalog` for the list)")]
pub struct UnknownMeasure(pub String);

impl FromStr for MeasureId {
    type Err = UnknownMeasure;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CATALOG.iter().find(|m| m.id_str == s).map(|m| m.id).ok_or_else(|| UnknownMeasure(s.to_owned()))
    }
}

/// The legal ground on which a measure may touch communications data (Telecommunications Business
/// Act art. 4 and the guideline's justifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasis {
    /// The subscriber agreed individually (a request, a reply).
    Consent,
    /// Prior consent in the terms of service, with an effective opt-out.
    ComprehensiveConsent,
    /// 正当業務行為: legitimate purpose, necessity, proportionality.
    LegitimateBusiness,
    /// 正当防衛: imminent harm to the network.
    SelfDefense,
    /// 緊急避難: imminent harm to others.
    Necessity,
    /// Aggregate or public information only.
    NoSecret,
}

impl LegalBasis {
    /// The kebab-case name used in the ledger and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::ComprehensiveConsent => "comprehensive-consent",
            LegalBasis::LegitimateBusiness => "legitimate-business",
            LegalBasis::SelfDefense => "self-defense",
            LegalBasis::Necessity => "necessity",
            LegalBasis::NoSecret => "no-secret",
        }
    }
}

impl fmt::Display for LegalBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of communications or subscriber data that a measure's stage may read.
///
/// Views (see [`crate::view`]) declare the fields they expose; a view whose fields are not all
/// listed for its measure and stage cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)] // names are the documentation; the catalog table says who reads them
pub enum Field {
    // telephone
    LineChargeTotals,
    CountryCode,
    CallingNumber,
    SourceIp,
    LastInternationalCallDate,
    SubscriberRequest,
    CountryCallCounts,
    CountryNormalVolume,
    // traffic
    DestinationAddress,
    SourceAddress,
    Protocol,
    SourcePort,
    DestinationPort,
    TcpFlags,
    FragmentFlags,
    TrafficRates,
    IngressInterface,
    CustomerPrefix,
    VictimReport,
    PacketValidity,
    AggregateTraffic,
    AttackSignature,
    // DNS
    QueryName,
    QueryType,
    ResponseCode,
    ResponseSize,
    ResolverClientAddress,
    // reputation, attribution, reports
    DestinationUrl,
    ThirdPartyReport,
    SessionAttribution,
    SubscriberContact,
    // mail and auth
    BlacklistListing,
    SmtpAuthAccountVolume,
    PppoeAuthLog,
}

/// How consent governs a measure's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentModel {
    /// No subscriber consent is involved (network protection, aggregates, alerts on legitimate business).
    NotRequired,
    /// The action needs the subscriber's individual consent or request before it is taken.
    IndividualRequired,
    /// Consent first; only when urgent (nights, weekends, holidays, unreachable) act first, notify
    /// promptly, and only until the subscriber is reached.
    IndividualFirstEmergencyException,
    /// Consent in the terms of service; the subscriber may opt out at any time, effective at once,
    /// and opted-out subscribers are removed before detection.
    ComprehensiveOptOut,
}

/// Who must be told, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationDuty {
    /// Nobody individually (aggregates, network protection).
    None,
    /// The subscriber is alerted; the alert is the action.
    Alert,
    /// The subscriber is asked before acting, or notified promptly after an emergency action.
    ConsentRequestOrPromptNotice,
    /// The subscriber is notified that the action was taken on their request or agreement.
    Confirmation,
    /// The affected victim (requester) is told of the mitigation.
    Requester,
    /// The public (a page, a report).
    Public,
}

/// Approval rule for severe measures: distinct humans who are not the proposer, each recording
/// the listed assessments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApprovalRule {
    /// How many distinct approvers, none of them the proposer.
    pub distinct_approvers: u8,
    /// The human assessment fields each approval must record (e.g. trade relations).
    pub assessments: &'static [&'static str],
}

/// One stage of staged minimization: what a detector may read at that stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// 1-based stage number; stage 1 is the least sensitive.
    pub number: u8,
    /// What the stage is for.
    pub purpose: &'static str,
    /// The fields it may read.
    pub fields: &'static [Field],
    /// Whether governance must unlock the stage per subject (with a ledger entry) before use.
    pub unlocked_per_subject: bool,
}

/// Whether the working group accepted the measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum Provision {
    /// mamori provides it.
    Provided,
    /// The working group refused it; listed so the refusal is explicit. It cannot be enabled.
    Refused(&'static str),
}

/// One catalog row.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measure {
    /// Typed id.
    #[serde(skip)]
    pub id: MeasureId,
    /// Stable string id.
    #[serde(rename = "id")]
    pub id_str: &'static str,
    /// Family (phone, ddos, net, dns, bots, …).
    pub family: &'static str,
    /// What it does, in English.
    pub title_en: &'static str,
    /// What it does, in Japanese.
    pub title_ja: &'static str,
    /// Source in the guideline / seeds.
    pub source: &'static str,
    /// Accepted legal grounds, the primary first.
    pub legal_basis: &'static [LegalBasis],
    /// Staged fields.
    pub stages: &'static [Stage],
    /// Consent model.
    pub consent: ConsentModel,
    /// Whether the measure may act before the subscriber's individual consent (and so requires a
    /// public notice in the terms/website before it may be enabled).
    pub acts_before_consent: bool,
    /// Whether the action restricts a communication (and so must end).
    pub restrictive: bool,
    /// Approval rule, if any.
    pub approval: Option<ApprovalRule>,
    /// Maximum duration of one action; `None` for one-shot actions (alerts) and publications.
    #[serde(serialize_with = "ser_opt_duration")]
    pub max_duration: Option<SignedDuration>,
    /// The condition that lifts the action before its maximum duration.
    pub lift_condition: &'static str,
    /// Notification duty.
    pub notification: NotificationDuty,
    /// Default retention of raw records and unlocked data, in days.
    pub retention_days: u32,
    /// Whether the transparency report may publish targets (e.g. country codes); otherwise only counts.
    pub publish_targets: bool,
    /// Provided or refused.
    pub provision: Provision,
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<SignedDuration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&format!("{d:#}")),
        None => s.serialize_none(),
    }
}

impl Measure {
    /// The stage with this number, if the measure has it.
    pub fn stage(&self, number: u8) -> Option<&'static Stage> {
        self.stages.iter().find(|s| s.number == number)
    }

    /// The primary legal basis.
    pub fn primary_basis(&self) -> LegalBasis {
        self.legal_basis.first().copied().unwrap_or(LegalBasis::NoSecret)
    }

    /// Whether the working group refused it.
    pub fn is_refused(&self) -> bool {
        matches!(self.provision, Provision::Refused(_))
    }

    /// Whether the measure may only be enabled after the operator recorded a public notice
    /// (terms of service / website): those acting before individual consent.
    pub fn requires_public_notice(&self) -> bool {
        self.acts_before_consent
    }

    /// Every field any stage may read.
    pub fn all_fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.stages.iter().flat_map(|s| s.fields.iter().copied())
    }
}

/// The catalog row for an id. Every id has one (checked by a test over [`MeasureId::ALL`]).
pub fn measure(id: MeasureId) -> &'static Measure {
    // The table is in `MeasureId::ALL` order, so the index lookup is exact; the fallback search
    // keeps this total even if someone reorders the table.
    let idx = id as usize;
    match CATALOG.get(idx) {
        Some(m) if m.id == id => m,
        _ => CATALOG.iter().find(|m| m.id == id).unwrap_or(&CATALOG[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_has_exactly_one_row_in_order() {
        assert_eq!(CATALOG.len(), MeasureId::ALL.len());
        for (i, id) in MeasureId::ALL.iter().enumerate() {
            assert_eq!(CATALOG[i].id, *id, "row {i} out of order");
            assert_eq!(measure(*id).id, *id);
            let parsed: MeasureId = CATALOG[i].id_str.parse().unwrap();
            assert_eq!(parsed, *id);
            // serde name and catalog string agree
            let json = serde_json::to_string(id).unwrap();
            assert_eq!(json, format!("\"{}\"", CATALOG[i].id_str));
        }
    }

    #[test]
    fn unknown_measure_is_an_error() {
        let err = "phone.suspend-everything".parse::<MeasureId>().unwrap_err();
        assert!(err.to_string().contains("phone.suspend-everything"));
    }

    #[test]
    fn refused_measure_is_listed_and_refused() {
        let m = measure(MeasureId::CncDetectServers);
        assert!(m.is_refused());
        assert!(m.stages.is_empty(), "a refused measure reads nothing");
    }

    #[test]
    fn restrictive_measures_have_a_maximum_duration_and_lift_condition() {
        for m in CATALOG.iter().filter(|m| m.restrictive && !m.is_refused()) {
            assert!(m.max_duration.is_some(), "{} has no max duration", m.id_str);
            assert!(!m.lift_condition.is_empty(), "{} has no lift condition", m.id_str);
        }
    }

    #[test]
    fn measures_acting_before_consent_require_notice() {
        let m = measure(MeasureId::PhoneSuspendLineOnSurge);
        assert!(m.requires_public_notice());
        assert!(measure(MeasureId::PhoneRestrictCountry).requires_public_notice());
        assert!(!measure(MeasureId::PhoneSuspendOnRequest).requires_public_notice());
    }

    #[test]
    fn surge_stage_one_reads_only_charge_totals() {
        let m = measure(MeasureId::PhoneSuspendLineOnSurge);
        assert_eq!(m.stage(1).unwrap().fields, &[Field::LineChargeTotals]);
        let s2 = m.stage(2).unwrap();
        assert!(s2.unlocked_per_subject);
        assert!(s2.fields.contains(&Field::SourceIp));
    }

    #[test]
    fn restrict_country_needs_approval_with_assessments() {
        let rule = measure(MeasureId::PhoneRestrictCountry).approval.unwrap();
        assert!(rule.distinct_approvers >= 1);
        assert!(rule.assessments.contains(&"trade_relations"));
        assert!(rule.assessments.contains(&"emergency_calls"));
    }
}
