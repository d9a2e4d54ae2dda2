//! The DNS engine: events from dnstap through the view gates to the detectors, and detections
//! through governance to the actuators (the policy zone, the inline filter's list).
//!
//! - A random-subdomain or amplification detection is a finding of `dns.block-fqdn-list` against
//!   the name (`fqdn:…`); with `auto_apply` it is also proposed at once, with the configured
//!   expiry, and governance's authorization goes to the actuators; otherwise the operator confirms
//!   it (`mamori dns block add`).
//! - A query for a listed C&C name is a finding of `bots.detect-cnc-queries` against the client
//!   address (`ip:…`). When a [`SubscriberLookup`] names the subscriber, the finding is also
//!   proposed so governance can alert them; attribution (RADIUS) and the alert itself belong to
//!   `mamori-attribution` and `mamori-notify`.

use std::net::IpAddr;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mamori_core::actuator::Actuator;
use mamori_core::catalog::MeasureId;
use mamori_core::governance::{Governance, GovernanceError, Proposal};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_core::view::{Admission, ViewError, ViewGate};
use serde_json::json;

use crate::detect::amplification::{Amplification, AmplificationConfig};
use crate::detect::cnc::CncQueries;
use crate::detect::water_torture::{WaterTorture, WaterTortureConfig};
use crate::dnstap::{DnsEvent, Role};
use crate::names::SuffixMap;
use crate::reputation::ReputationList;
use crate::views::{CncQuery, CncQueryView, FqdnTraffic};

/// Who held an address at a time (implemented by the attribution crate over RADIUS sessions).
pub trait SubscriberLookup: Send + Sync {
    /// The subscriber, if known.
    fn subscriber_at(&self, ip: IpAddr, at: Timestamp) -> Option<SubscriberId>;
}

/// No attribution: findings name the address only.
#[derive(Debug, Default)]
pub struct NoLookup;

impl SubscriberLookup for NoLookup {
    fn subscriber_at(&self, _: IpAddr, _: Timestamp) -> Option<SubscriberId> {
        None
    }
}

/// The engine's settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Propose and apply detections at once (else findings wait for an operator).
    pub auto_apply: bool,
    /// How long an automatic list entry lasts (capped by the measure's maximum).
    pub block_for: SignedDuration,
    /// Random-subdomain thresholds.
    pub water_torture: WaterTortureConfig,
    /// Amplification thresholds.
    pub amplification: AmplificationConfig,
    /// How often a client is reported again for the same C&C name.
    pub cnc_cooldown: SignedDuration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            auto_apply: false,
            block_for: SignedDuration::from_hours(1),
            water_torture: WaterTortureConfig::default(),
            amplification: AmplificationConfig::default(),
            cnc_cooldown: SignedDuration::from_hours(1),
        }
    }
}

/// What the engine did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Events seen.
    pub events: u64,
    /// Findings written.
    pub findings: u64,
    /// Proposals governance decided.
    pub proposals: u64,
    /// Actions applied by the actuators.
    pub applied: u64,
    /// Governance or actuator errors.
    pub errors: u64,
    /// C&C queries dropped at the gate (opted-out subscribers).
    pub cnc_opted_out: u64,
}

/// The engine.
pub struct DnsEngine {
    gov: Arc<Governance>,
    cfg: EngineConfig,
    fqdn_gate: ViewGate<FqdnTraffic>,
    cnc_gate: ViewGate<CncQueryView>,
    water: WaterTorture,
    amp: Amplification,
    cnc: CncQueries,
    cnc_names: SuffixMap<usize>,
    cnc_sources: Vec<String>,
    lookup: Arc<dyn SubscriberLookup>,
    actuators: Vec<Arc<dyn Actuator>>,
    /// Counters.
    pub stats: EngineStats,
}

impl std::fmt::Debug for DnsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsEngine").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl DnsEngine {
    /// Opens the gates; fails if a view reads a field its measure may not.
    pub fn new(
        gov: Arc<Governance>,
        clock: Arc<dyn mamori_core::clock::Clock>,
        cfg: EngineConfig,
        lookup: Arc<dyn SubscriberLookup>,
        actuators: Vec<Arc<dyn Actuator>>,
    ) -> Result<Self, ViewError> {
        Ok(DnsEngine {
            fqdn_gate: ViewGate::open(&gov, clock.clone())?,
            cnc_gate: ViewGate::open(&gov, clock)?,
            water: WaterTorture::new(cfg.water_torture.clone()),
            amp: Amplification::new(cfg.amplification.clone()),
            cnc: CncQueries::new(cfg.cnc_cooldown),
            cnc_names: SuffixMap::new(),
            cnc_sources: Vec::new(),
            gov,
            cfg,
            lookup,
            actuators,
            stats: EngineStats::default(),
        })
    }

    /// Adds a C&C list; its loading (source, date, size) is a ledger entry.
    pub fn add_cnc_list(&mut self, list: &ReputationList) -> Result<(), GovernanceError> {
        let idx = self.cnc_sources.len();
        self.cnc_sources.push(list.source.clone());
        for (name, m, ()) in list.names.iter() {
            self.cnc_names.insert(name, m, idx);
        }
        self.gov.record_finding(
            MeasureId::BotsDetectCncQueries,
            &Target::Network,
            "dns.reputation-list",
            json!({"list_loaded": list.source, "date": list.date, "names": list.names.len(), "lines_skipped": list.skipped.len()}),
        )?;
        Ok(())
    }

    /// Takes one event.
    pub fn on_event(&mut self, ev: &DnsEvent) {
        self.stats.events += 1;
        let now = self.gov.now();
        if let Admission::Admitted(v) = self.fqdn_gate.admit(ev) {
            if let Some(d) = self.water.observe(&v, now) {
                let evidence = json!({"detector": "random-subdomain", "detection": d});
                self.block(&d.parent, "dns.random-subdomain", evidence);
            }
            if let Some(d) = self.amp.observe(&v, now) {
                let evidence = json!({"detector": "amplification", "detection": d});
                self.block(&d.qname, "dns.amplification", evidence);
            }
        }
        if ev.role == Role::ClientQuery && !self.cnc_names.is_empty() {
            if let (Some(client), Some((listed, &src))) = (ev.client, self.cnc_names.lookup(&ev.qname)) {
                let rec = CncQuery {
                    qname: ev.qname.clone(),
                    listed: listed.to_owned(),
                    list_source: self.cnc_sources.get(src).cloned().unwrap_or_default(),
                    client,
                    subscriber: self.lookup.subscriber_at(client, ev.time.unwrap_or(now)),
                    time: ev.time,
                };
                match self.cnc_gate.admit(&rec) {
                    Admission::Admitted(v) => {
                        if self.cnc.observe(&v, now) {
                            self.cnc_finding(&v);
                        }
                    }
                    Admission::OptedOut | Admission::Locked => self.stats.cnc_opted_out += 1,
                }
            }
        }
    }

    fn block(&mut self, name: &str, detector: &str, evidence: serde_json::Value) {
        let target = Target::Fqdn(name.to_owned());
        match self.gov.is_enabled(MeasureId::DnsBlockFqdnList) {
            Ok(true) => {}
            _ => return,
        }
        if let Err(e) = self.gov.record_finding(MeasureId::DnsBlockFqdnList, &target, detector, evidence.clone()) {
            self.stats.errors += 1;
            tracing::warn!(error = %e, "finding not recorded");
            return;
        }
        self.stats.findings += 1;
        tracing::info!(detector, "dns list entry found");
        if !self.cfg.auto_apply {
            return;
        }
        let mut p = Proposal::new(MeasureId::DnsBlockFqdnList, target, Actor(format!("detector:{detector}")), evidence);
        p.duration = Some(self.cfg.block_for);
        self.decide(p);
    }

    fn cnc_finding(&mut self, v: &CncQueryView) {
        let target = Target::Ip(v.client.to_string());
        match self.gov.is_enabled(MeasureId::BotsDetectCncQueries) {
            Ok(true) => {}
            _ => return,
        }
        let evidence =
            json!({"listed": v.listed, "qname": v.qname, "list": v.list_source, "at": v.time.map(|t| t.to_string())});
        if let Err(e) =
            self.gov.record_finding(MeasureId::BotsDetectCncQueries, &target, "dns.cnc-queries", evidence.clone())
        {
            self.stats.errors += 1;
            tracing::warn!(error = %e, "finding not recorded");
            return;
        }
        self.stats.findings += 1;
        // Without a subscriber there is nobody to alert yet: attribution completes it later.
        if let Some(sub) = &v.subscriber {
            let mut p = Proposal::new(
                MeasureId::BotsDetectCncQueries,
                target,
                Actor("detector:dns.cnc-queries".into()),
                evidence,
            );
            p.subscriber = Some(sub.clone());
            self.decide(p);
        }
    }

    fn decide(&mut self, p: Proposal) {
        match self.gov.propose(p) {
            Ok(d) => {
                self.stats.proposals += 1;
                if let Some(auth) = d.authorization {
                    for a in self.actuators.iter().filter(|a| a.handles(auth.measure())) {
                        match a.apply(&auth) {
                            Ok(()) => self.stats.applied += 1,
                            Err(e) => {
                                self.stats.errors += 1;
                                tracing::warn!(actuator = a.name(), error = %e, "apply failed");
                            }
                        }
                    }
                }
            }
            Err(e) => {
                self.stats.errors += 1;
                tracing::warn!(error = %e, "proposal refused");
            }
        }
    }
}
