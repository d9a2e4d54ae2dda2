//! [`BgpActuator`]: announces RTBH and FlowSpec routes through GoBGP (`gobgpd`, driven with its
//! `gobgp` client over gRPC), which passes them to the routers it peers with.
//!
//! The speaker is mamori's own: reconciliation makes its global RIB hold exactly the actions in
//! force (it clears the address families mamori uses and re-announces; routers see a withdrawal
//! and re-announcement within one BGP update round).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_core::store::Store;
use mamori_core::subject::Target;

use super::{Mitigation, flowspec_words};

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
    store: Arc<dyn Store>,
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
        BgpActuator { speaker, store }
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
    pub fn route_args(&self, m: &Mitigation) -> Vec<String> {
        let v6 = m.dst().addr().is_ipv6();
        match m {
            Mitigation::Rtbh { dst } => vec![
                dst.to_string(),
                "-a".into(),
                if v6 { "ipv6" } else { "ipv4" }.into(),
                "nexthop".into(),
                if v6 { "100::1".to_owned() } else { self.speaker.rtbh_next_hop.clone() },
                "community".into(),
                self.speaker.rtbh_community.clone(),
            ],
            Mitigation::Flowspec(f) => {
                let mut a = vec!["-a".to_owned(), if v6 { "ipv6-flowspec" } else { "ipv4-flowspec" }.to_owned()];
                a.extend(flowspec_words(f));
                a
            }
        }
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
        for family in ["ipv4", "ipv6", "ipv4-flowspec", "ipv6-flowspec"] {
            self.run(&["global".into(), "rib".into(), "-a".into(), family.into(), "del".into(), "all".into()])?;
        }
        for auth in in_force.iter().filter(|a| self.handles(a.measure())) {
            let m = Self::mitigation_of(&self.record_of(auth)?)?;
            self.announce(&m)?;
        }
        Ok(())
    }
}

/// The mitigation in an action's evidence (governance may wrap the proposer's evidence).
fn mitigation_value(evidence: &serde_json::Value) -> Option<&serde_json::Value> {
    evidence.get("mitigation").or_else(|| evidence.get("evidence").and_then(|e| e.get("mitigation")))
}
