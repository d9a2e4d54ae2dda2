//! The flow engine: windows of flows → detector → view gates → findings and proposals through
//! governance → the actuator, for the actions governance authorizes.

use std::sync::Arc;

use jiff::SignedDuration;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::Clock;
use mamori_core::governance::{Decision, Governance, GovernanceError, Proposal};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_core::view::{Admission, ViewError, ViewGate};
use serde_json::json;

use super::{AttackTraffic, Detector, OutboundAttack, SpoofedSources, WindowOutcome};
use crate::bgp::{FlowMatch, Mitigation};
use crate::collector::FlowRecord;
use crate::overview::{Exporter, Overview, TrafficOverview};

const DETECTOR: &str = "flow-ddos";

/// Engine failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A gate refused to open.
    #[error(transparent)]
    View(#[from] ViewError),
    /// Governance failed.
    #[error(transparent)]
    Governance(#[from] GovernanceError),
}

/// What one window led to.
#[derive(Debug, Default)]
pub struct WindowReport {
    /// Findings recorded (ledger sequence numbers).
    pub findings: Vec<u64>,
    /// Decisions on proposals.
    pub decisions: Vec<Decision>,
    /// Actuator errors (the action stays applied in the store; reconciliation retries).
    pub actuator_errors: Vec<String>,
    /// Actions lifted because the attack stopped.
    pub lifted: Vec<String>,
    /// The window's `net.traffic-overview` aggregates, as exported to the metrics.
    pub overview: Option<TrafficOverview>,
}

/// Runs the detector and hands its results to governance.
pub struct FlowEngine {
    gov: Arc<Governance>,
    detector: Detector,
    attack_gate: ViewGate<AttackTraffic>,
    spoof_gate: ViewGate<SpoofedSources>,
    unintended_gate: ViewGate<OutboundAttack>,
    overview: Overview,
    overview_gate: ViewGate<TrafficOverview>,
    exporter: Exporter,
    actuator: Arc<dyn Actuator>,
    /// A shorter duration than the measure's maximum for detector-proposed actions.
    pub duration: Option<SignedDuration>,
    /// Quiet windows after which an action the detector proposed is lifted (the measure's lift
    /// condition: the attack traffic has stopped for the cool-down period).
    pub cooldown_windows: u32,
    /// Applied actions of this engine by measure and target: action id and quiet windows so far.
    active: std::collections::HashMap<(MeasureId, String), (String, u32)>,
}

impl std::fmt::Debug for FlowEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowEngine").field("actuator", &self.actuator.name()).finish_non_exhaustive()
    }
}

impl FlowEngine {
    /// Opens the view gates for the flow measures.
    pub fn new(
        gov: Arc<Governance>,
        clock: Arc<dyn Clock>,
        detector: Detector,
        actuator: Arc<dyn Actuator>,
    ) -> Result<Self, EngineError> {
        let overview = Overview::new(detector.config().customer_prefixes.clone(), detector.config().top_talkers);
        Ok(FlowEngine {
            attack_gate: ViewGate::open(&gov, clock.clone())?,
            spoof_gate: ViewGate::open(&gov, clock.clone())?,
            unintended_gate: ViewGate::open(&gov, clock.clone())?,
            overview_gate: ViewGate::open(&gov, clock)?,
            overview,
            exporter: Exporter::default(),
            gov,
            detector,
            actuator,
            duration: None,
            cooldown_windows: 6,
            active: std::collections::HashMap::new(),
        })
    }

    /// The detector's learned normal rates; see [`Detector::learned`].
    pub fn learned(&self) -> crate::detect::FlowLearned {
        self.detector.learned()
    }

    /// Restores learned normal rates; see [`Detector::restore`].
    pub fn restore(&mut self, learned: crate::detect::FlowLearned) -> usize {
        self.detector.restore(learned)
    }

    /// The detector's learned normals per map; see [`Detector::learned_counts`].
    pub fn learned_counts(&self) -> crate::detect::LearnedStats {
        self.detector.learned_counts()
    }

    /// Windows are expected to last `secs`; see [`Detector::expect_window`].
    pub fn expect_window(&mut self, secs: f64) {
        self.detector.expect_window(secs);
    }

    /// Whether the current window should close now: a host has spent a whole window's budget.
    pub fn urgent(&self) -> bool {
        self.detector.urgent()
    }

    /// Adds flows to the current window.
    pub fn ingest(&mut self, flows: &[FlowRecord]) {
        // Each end is looked up among the customer prefixes once, for both (the overview was
        // made from the detector's prefix list, so the places agree).
        for f in flows {
            let index = self.detector.prefix_index();
            let (dst, src) = (index.lookup(f.dst), index.lookup(f.src));
            self.detector.ingest_located(f, dst, src);
            self.overview.ingest_located(f, dst, src);
        }
    }

    /// Closes the window and acts on it.
    pub fn close_window(&mut self, secs: f64) -> Result<WindowReport, EngineError> {
        let WindowOutcome { attacks, spoofing, sources } = self.detector.close_window(secs);
        super::metric::export(&self.detector.learned_counts());
        let mut report = WindowReport::default();
        // `net.traffic-overview`: aggregates only, exported whatever the restrictive measures do.
        if let Admission::Admitted(v) = self.overview_gate.admit(&self.overview.close_window(secs)) {
            self.exporter.export(&v);
            report.overview = Some(v);
        }
        let protect_enabled = self.gov.is_enabled(MeasureId::DdosBlockToProtectNetwork)?;
        for rec in &attacks {
            let Admission::Admitted(v) = self.attack_gate.admit(rec) else { continue };
            let target = Target::Prefix(v.dst.to_string());
            // A host, or a customer prefix as a whole (its hosts summed).
            let scope = if v.dst.len() == if v.dst.addr().is_ipv4() { 32 } else { 128 } { "host" } else { "prefix" };
            let evidence = json!({
                "scope": scope,
                "reason": v.reason,
                "pps": v.rates[0].round(),
                "bps": v.rates[1].round(),
                "fps": v.rates[2].round(),
                "normal_pps": v.rates[3].round(),
                "customer_prefix": v.customer_prefix.map(|p| p.to_string()),
                "coverage": (v.coverage * 1000.0).round() / 1000.0,
                "top_sources": v.top_sources.iter().map(|(ip, s)| json!({"src": ip.to_string(), "share": (s * 1000.0).round() / 1000.0})).collect::<Vec<_>>(),
                // Shares and coverage from a one-in-eight sample are estimates; the largest of many
                // estimated shares tends to sit above the true one.
                "estimated_from_sample": v.sampled,
                "mitigation": Mitigation::Flowspec(v.attack.clone()),
            });
            report.findings.push(self.gov.record_finding(
                MeasureId::DdosBlockToProtectNetwork,
                &target,
                DETECTOR,
                evidence.clone(),
            )?);
            self.propose(MeasureId::DdosBlockToProtectNetwork, protect_enabled, target, evidence, &mut report)?;
        }
        let unintended_enabled = self.gov.is_enabled(MeasureId::DdosBlockUnintendedSource)?;
        let mut sending = std::collections::HashSet::new();
        for rec in &sources {
            let Admission::Admitted(v) = self.unintended_gate.admit(rec) else { continue };
            let target = Target::Prefix(v.src.to_string());
            sending.insert((MeasureId::DdosBlockUnintendedSource, target.to_string()));
            let evidence = json!({
                "direction": "outbound",
                "reason": v.reason,
                "pps": v.rates[0].round(),
                "bps": v.rates[1].round(),
                "fps": v.rates[2].round(),
                "normal_pps": v.rates[3].round(),
                "coverage": (v.coverage * 1000.0).round() / 1000.0,
                "top_destinations": v.top_destinations.iter().map(|(ip, s)| json!({"dst": ip.to_string(), "share": (s * 1000.0).round() / 1000.0})).collect::<Vec<_>>(),
                "mitigation": Mitigation::Flowspec(v.attack.clone()),
                "attribution": "not resolved here: the source address's subscriber at the time comes from mamori-attribution (session logs), a separate audited step before any notice",
            });
            report.findings.push(self.gov.record_finding(
                MeasureId::DdosBlockUnintendedSource,
                &target,
                DETECTOR,
                evidence.clone(),
            )?);
            self.propose(MeasureId::DdosBlockUnintendedSource, unintended_enabled, target, evidence, &mut report)?;
        }
        let mut attacked: std::collections::HashSet<(MeasureId, String)> = attacks
            .iter()
            .map(|a| (MeasureId::DdosBlockToProtectNetwork, Target::Prefix(a.dst.to_string()).to_string()))
            .collect();
        attacked.extend(sending);
        let mut ended = Vec::new();
        for (target, (id, quiet)) in &mut self.active {
            if attacked.contains(target) {
                *quiet = 0;
                continue;
            }
            *quiet += 1;
            if *quiet >= self.cooldown_windows {
                ended.push((target.clone(), id.clone()));
            }
        }
        // Lifted in the order of their keys, not of the (randomly seeded) map: the ledger's order
        // follows the data.
        ended.sort_unstable();
        for (key, id) in ended {
            self.active.remove(&key);
            match self.gov.lift(
                &id,
                &Actor(format!("detector:{DETECTOR}")),
                "the attack traffic stopped for the cool-down period",
            ) {
                Ok(rec) => {
                    if let Err(e) = self.actuator.remove(&rec) {
                        tracing::warn!(action = %id, error = %e, "mitigation not withdrawn");
                        report.actuator_errors.push(e.to_string());
                    }
                    report.lifted.push(rec.id);
                }
                // Lifted by a person or expired meanwhile: the scheduler withdrew it.
                Err(e) => tracing::debug!(action = %id, error = %e, "not lifted by the detector"),
            }
        }
        for rec in &spoofing {
            let Admission::Admitted(v) = self.spoof_gate.admit(rec) else { continue };
            let evidence = json!({
                "exporter": v.exporter.to_string(),
                "input_if": v.input_if,
                "customer_prefixes": v.customer_prefixes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "spoofed_packets": v.spoofed.iter().map(|(_, n)| n).sum::<u64>(),
                "packets": v.packets,
                "examples": v.spoofed.iter().take(3).map(|(ip, _)| ip.to_string()).collect::<Vec<_>>(),
            });
            // uRPF/ACLs at the interface are the enforcement; mamori records the finding.
            report.findings.push(self.gov.record_finding(
                MeasureId::NetDropSpoofedSource,
                &Target::Network,
                DETECTOR,
                evidence,
            )?);
        }
        Ok(report)
    }

    /// Proposes `measure` on `target` when it is enabled, applies what governance authorizes and
    /// remembers it for the lift after the cool-down.
    fn propose(
        &mut self,
        measure: MeasureId,
        enabled: bool,
        target: Target,
        evidence: serde_json::Value,
        report: &mut WindowReport,
    ) -> Result<(), EngineError> {
        if !enabled {
            return Ok(());
        }
        let mut p = Proposal::new(measure, target, Actor(format!("detector:{DETECTOR}")), evidence);
        p.duration = self.duration;
        let d = self.gov.propose(p)?;
        self.apply(&d, report);
        if d.action.state == mamori_core::action::ActionState::Applied {
            self.active.insert((measure, d.action.target.to_string()), (d.action.id.clone(), 0));
        }
        report.decisions.push(d);
        Ok(())
    }

    fn apply(&self, d: &Decision, report: &mut WindowReport) {
        if let Some(auth) = &d.authorization {
            if let Err(e) = self.actuator.apply(auth) {
                tracing::warn!(action = auth.action_id(), error = %e, "mitigation not announced");
                report.actuator_errors.push(e.to_string());
            }
        }
    }
}

/// A subscriber's report of an attack on their prefix, recorded by an operator.
#[derive(Debug, Clone)]
pub struct VictimReport {
    /// The subscriber.
    pub subscriber: SubscriberId,
    /// How they reported it (phone, web, mail…).
    pub via: String,
    /// The operator who recorded it.
    pub operator: Actor,
    /// What to block: its `dst` must be the victim's prefix.
    pub attack: FlowMatch,
    /// Blackhole the whole destination instead (the victim asked for it explicitly).
    pub blackhole: bool,
    /// A shorter duration than the measure's maximum.
    pub duration: Option<SignedDuration>,
}

/// Proposes `ddos.block-on-victim-request` for a victim's report, and applies it through
/// `actuator` when governance authorizes it. The actuator's error, if any, comes back beside the
/// decision: the action stays applied in the store and reconciliation retries it.
pub fn propose_victim_request(
    gov: &Governance,
    actuator: &dyn Actuator,
    r: VictimReport,
) -> Result<(Decision, Option<ActuatorError>), EngineError> {
    let mitigation =
        if r.blackhole { Mitigation::Rtbh { dst: r.attack.dst } } else { Mitigation::Flowspec(r.attack.clone()) };
    let mut p = Proposal::new(
        MeasureId::DdosBlockOnVictimRequest,
        Target::Prefix(r.attack.dst.to_string()),
        r.operator,
        json!({"victim_report": {"via": r.via}, "mitigation": mitigation}),
    );
    p.subscriber = Some(r.subscriber);
    p.subscriber_request = Some(r.via);
    p.duration = r.duration;
    let d = gov.propose(p)?;
    let mut err = None;
    if let Some(auth) = &d.authorization {
        if let Err(e) = actuator.apply(auth) {
            tracing::warn!(action = auth.action_id(), error = %e, "mitigation not announced");
            err = Some(e);
        }
    }
    Ok((d, err))
}
