//! [`BgpActuator`]: announces RTBH and FlowSpec routes through GoBGP (`gobgpd`, driven with its
//! `gobgp` client over gRPC), which passes them to the routers it peers with.
//!
//! Reconciliation (after a restart of mamori or of the speaker) reads the speaker's global RIB
//! back (`gobgp global rib -a <family> -j`), and announces only the routes in force that are
//! missing, withdraws only mamori's routes that nothing in force wants, and leaves the matching
//! ones untouched, so routers never see a rule that stays in force withdrawn. Routes mamori did not
//! make are left alone: see [`super::rib`] for how mamori recognises its own (its owner
//! community on every route it announces).
//!
//! Metrics: `mamori_flow_bgp_reconciled_routes_total{change}` counts the routes each
//! reconciliation announced, updated, withdrew, kept, and left alone as foreign or unrecognised.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_core::store::Store;
use mamori_core::subject::Target;

use serde::Serialize;

use super::rib::{self, RibRoute, RouteKey, RouteShape};
use super::{Mitigation, flowspec_words};

/// The community marking the routes mamori announces, unless [`BgpActuator::with_owner_community`]
/// sets another: AS 64512 is the first private AS number (RFC 6996), so it clashes with no
/// public AS's communities.
pub const DEFAULT_OWNER_COMMUNITY: &str = "64512:7";

/// The metric counting routes by what reconciliation did with them.
pub const RECONCILED_ROUTES: &str = "mamori_flow_bgp_reconciled_routes_total";

/// Where the speaker is and how RTBH routes are marked.
#[derive(Debug, Clone)]
pub struct BgpSpeaker {
    /// The `gobgp` client program.
    pub gobgp: PathBuf,
    /// gRPC host of `gobgpd`.
    pub api_host: String,
    /// gRPC port of `gobgpd`.
    pub api_port: u16,
    /// Next hop of RTBH routes (the discard address routers map to null).
    pub rtbh_next_hop: String,
    /// The blackhole community, RFC 7999 `65535:666` by default.
    pub rtbh_community: String,
}

impl Default for BgpSpeaker {
    fn default() -> Self {
        BgpSpeaker {
            gobgp: PathBuf::from("gobgp"),
            api_host: "127.0.0.1".into(),
            api_port: 50051,
            rtbh_next_hop: "192.0.2.1".into(),
            rtbh_community: "65535:666".into(),
        }
    }
}

/// Enforces `ddos.*` and `net.drop-spoofed-source` actions as BGP announcements.
pub struct BgpActuator {
    speaker: BgpSpeaker,
    owner_community: String,
    store: Arc<dyn Store>,
}

/// One route reconciliation announced or kept, with the actions in force wanting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteChange {
    /// The actions in force wanting the route (empty for a withdrawn one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// The route in `gobgp global rib` words (family and NLRI).
    pub route: String,
}

/// What a reconciliation did at the speaker: the ledger entry's `changes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Routes in force that were missing, announced.
    pub added: Vec<RouteChange>,
    /// mamori's routes whose attributes differed (e.g. another rate), announced again in place.
    pub updated: Vec<RouteChange>,
    /// mamori's routes nothing in force wanted, withdrawn.
    pub removed: Vec<RouteChange>,
    /// Routes in force already announced as they should be: not touched.
    pub unchanged: usize,
    /// Routes without mamori's owner community, left alone.
    pub foreign: usize,
    /// Routes with mamori's owner community but of a shape it doesn't announce, left alone.
    pub unrecognised: Vec<String>,
}

impl std::fmt::Debug for BgpActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BgpActuator").field("speaker", &self.speaker).finish_non_exhaustive()
    }
}

/// The measures announced through BGP.
pub const BGP_MEASURES: [MeasureId; 4] = [
    MeasureId::DdosBlockOnVictimRequest,
    MeasureId::DdosBlockToProtectNetwork,
    MeasureId::DdosBlockUnintendedSource,
    MeasureId::NetDropSpoofedSource,
];

impl BgpActuator {
    /// An actuator talking to `speaker`, reading each action's mitigation from `store`.
    pub fn new(speaker: BgpSpeaker, store: Arc<dyn Store>) -> Self {
        BgpActuator { speaker, owner_community: DEFAULT_OWNER_COMMUNITY.to_owned(), store }
    }

    /// Marks mamori's routes with `community` (`ASN:VALUE`) instead of [`DEFAULT_OWNER_COMMUNITY`].
    #[must_use]
    pub fn with_owner_community(mut self, community: impl Into<String>) -> Self {
        self.owner_community = community.into();
        self
    }

    /// How mamori's routes look, from the speaker's settings.
    fn shape(&self) -> Result<RouteShape, ActuatorError> {
        let bad = |what: &str, v: &str| ActuatorError::Refused(format!("BGP speaker settings: bad {what} `{v}`"));
        Ok(RouteShape {
            rtbh_next_hop_v4: self
                .speaker
                .rtbh_next_hop
                .parse::<IpAddr>()
                .map_err(|_| bad("RTBH next hop", &self.speaker.rtbh_next_hop))?,
            rtbh_community: rib::community_value(&self.speaker.rtbh_community)
                .ok_or_else(|| bad("RTBH community", &self.speaker.rtbh_community))?,
            owner_community: rib::community_value(&self.owner_community)
                .ok_or_else(|| bad("owner community", &self.owner_community))?,
        })
    }

    fn run(&self, args: &[String]) -> Result<String, ActuatorError> {
        let out = Command::new(&self.speaker.gobgp)
            .arg("-u")
            .arg(&self.speaker.api_host)
            .arg("-p")
            .arg(self.speaker.api_port.to_string())
            .args(args)
            .output()
            .map_err(|e| ActuatorError::PeerUnavailable(format!("{}: {e}", self.speaker.gobgp.display())))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let err = err.trim();
            if err.contains("connect") || err.contains("Unavailable") || err.contains("deadline") {
                Err(ActuatorError::PeerUnavailable(err.to_owned()))
            } else {
                Err(ActuatorError::Refused(err.to_owned()))
            }
        }
    }

    /// The route arguments (after `global rib add|del`) of a mitigation.
    /// Every route carries the owner community, which is how reconciliation tells mamori's routes
    /// from others'.
    pub fn route_args(&self, m: &Mitigation) -> Vec<String> {
        let v6 = m.dst().addr().is_ipv6();
        let family = rib::family_of(m).to_owned();
        match m {
            Mitigation::Rtbh { dst } => vec![
                dst.to_string(),
                "-a".into(),
                family,
                "nexthop".into(),
                if v6 { rib::RTBH_NEXT_HOP_V6.to_owned() } else { self.speaker.rtbh_next_hop.clone() },
                "community".into(),
                format!("{},{}", self.speaker.rtbh_community, self.owner_community),
            ],
            Mitigation::Flowspec(f) => {
                let mut a = vec!["-a".to_owned(), family];
                a.extend(flowspec_words(f));
                a.extend(["community".to_owned(), self.owner_community.clone()]);
                a
            }
        }
    }

    /// The routes of one family in the speaker's global RIB.
    pub fn read_rib(&self, family: &str) -> Result<Vec<RibRoute>, ActuatorError> {
        let shape = self.shape()?;
        let out = self.run(&["global".into(), "rib".into(), "-a".into(), family.into(), "-j".into()])?;
        rib::parse_rib(&out, family, &shape).map_err(|e| ActuatorError::Refused(e.to_string()))
    }

    /// Makes the speaker's RIB hold exactly the routes of `in_force` by difference, and says what
    /// it did. Every route is attempted; the first failure is returned at the end.
    pub fn reconcile_report(&self, in_force: &[&Authorization]) -> Result<ReconcileReport, ActuatorError> {
        let shape = self.shape()?;
        // Everything that could fail before touching the speaker is done first: an action whose
        // mitigation can't be read aborts with the RIB as it was (its route must not be withdrawn
        // as unwanted).
        let mut want = Vec::new();
        for auth in in_force.iter().filter(|a| self.handles(a.measure())) {
            want.push((auth.action_id().to_owned(), Self::mitigation_of(&self.record_of(auth)?)?));
        }
        let mut have = Vec::new();
        for family in rib::FAMILIES {
            have.extend(self.read_rib(family)?);
        }
        let plan = rib::plan(&want, &have, &shape);
        let mut report = ReconcileReport {
            unchanged: plan.keep.len(),
            foreign: plan.foreign,
            unrecognised: plan.unrecognised.clone(),
            ..ReconcileReport::default()
        };
        let mut first_err = None;
        // Announce before withdrawing, so a changed rule is never briefly missing. Announcing a
        // route GoBGP already holds replaces its attributes in place (one UPDATE, no withdrawal).
        for (routes, done) in [(&plan.announce, &mut report.added), (&plan.update, &mut report.updated)] {
            for (key, m, ids) in routes {
                match self.announce(m) {
                    Ok(()) => done.push(RouteChange { actions: ids.clone(), route: key.text() }),
                    Err(e) => {
                        tracing::warn!(route = %key.text(), error = %e, "reconciliation: announcement failed");
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        for key in &plan.withdraw {
            match self.withdraw(key) {
                Ok(()) => report.removed.push(RouteChange { actions: Vec::new(), route: key.text() }),
                Err(e) => {
                    tracing::warn!(route = %key.text(), error = %e, "reconciliation: withdrawal failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        for (change, n) in [
            ("added", report.added.len()),
            ("updated", report.updated.len()),
            ("removed", report.removed.len()),
            ("unchanged", report.unchanged),
            ("foreign", report.foreign),
            ("unrecognised", report.unrecognised.len()),
        ] {
            metrics::counter!(RECONCILED_ROUTES, "change" => change).increment(n as u64);
        }
        if !report.unrecognised.is_empty() {
            tracing::warn!(routes = ?report.unrecognised, "routes with mamori's owner community but of an unknown shape: left alone");
        }
        tracing::info!(
            added = report.added.len(),
            updated = report.updated.len(),
            removed = report.removed.len(),
            unchanged = report.unchanged,
            foreign = report.foreign,
            "BGP speaker reconciled by difference"
        );
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn withdraw(&self, key: &RouteKey) -> Result<(), ActuatorError> {
        let mut a = vec!["global".to_owned(), "rib".to_owned(), "del".to_owned()];
        a.extend(key.nlri.iter().cloned());
        self.run(&a).map(|_| ())
    }

    fn mitigation_of(action: &ActionRecord) -> Result<Mitigation, ActuatorError> {
        let m: Mitigation = mitigation_value(&action.evidence)
            .cloned()
            .ok_or_else(|| ActuatorError::Refused(format!("action {} names no mitigation", action.id)))
            .and_then(|v| {
                serde_json::from_value(v).map_err(|e| ActuatorError::Refused(format!("action {}: {e}", action.id)))
            })?;
        // The announcement must stay within what governance authorized.
        match &action.target {
            Target::Prefix(p)
                if m.target_for(action.measure).is_some_and(|t| p.parse::<crate::prefix::Prefix>().ok() == Some(t)) =>
            {
                Ok(m)
            }
            t => Err(ActuatorError::Refused(format!(
                "action {}: mitigation for {} does not fit {} on target {t}",
                action.id,
                m.dst(),
                action.measure
            ))),
        }
    }

    fn record_of(&self, auth: &Authorization) -> Result<ActionRecord, ActuatorError> {
        self.store
            .action(auth.action_id())
            .map_err(|e| ActuatorError::PeerUnavailable(format!("store: {e}")))?
            .ok_or_else(|| ActuatorError::Refused(format!("no action {}", auth.action_id())))
    }

    fn announce(&self, m: &Mitigation) -> Result<(), ActuatorError> {
        let mut a = vec!["global".to_owned(), "rib".to_owned(), "add".to_owned()];
        a.extend(self.route_args(m));
        self.run(&a).map(|_| ())
    }
}

impl Actuator for BgpActuator {
    fn name(&self) -> &str {
        "bgp"
    }

    fn handles(&self, measure: MeasureId) -> bool {
        BGP_MEASURES.contains(&measure)
    }

    fn apply(&self, auth: &Authorization) -> Result<(), ActuatorError> {
        if !self.handles(auth.measure()) {
            return Err(ActuatorError::Unsupported(auth.measure()));
        }
        let m = Self::mitigation_of(&self.record_of(auth)?)?;
        tracing::info!(action = auth.action_id(), measure = %auth.measure(), dst = %m.dst(), "announcing mitigation");
        self.announce(&m)
    }

    fn remove(&self, action: &ActionRecord) -> Result<(), ActuatorError> {
        let m = Self::mitigation_of(action)?;
        let mut a = vec!["global".to_owned(), "rib".to_owned(), "del".to_owned()];
        a.extend(self.route_args(&m));
        tracing::info!(action = %action.id, dst = %m.dst(), "withdrawing mitigation");
        self.run(&a).map(|_| ())
    }

    fn reconcile(&self, in_force: &[&Authorization]) -> Result<(), ActuatorError> {
        self.reconcile_report(in_force).map(|_| ())
    }

    fn reconcile_summary(&self, in_force: &[&Authorization]) -> Result<Option<serde_json::Value>, ActuatorError> {
        let report = self.reconcile_report(in_force)?;
        serde_json::to_value(&report).map(Some).map_err(|e| ActuatorError::Refused(e.to_string()))
    }
}

/// The mitigation in an action's evidence (governance may wrap the proposer's evidence).
fn mitigation_value(evidence: &serde_json::Value) -> Option<&serde_json::Value> {
    evidence.get("mitigation").or_else(|| evidence.get("evidence").and_then(|e| e.get("mitigation")))
}
