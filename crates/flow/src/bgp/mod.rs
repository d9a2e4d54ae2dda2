//! Mitigation through routing: RTBH (a blackhole community on the victim's host route) and
//! FlowSpec (RFC 8955: destination prefix, protocol, ports, TCP flags, fragments; discard or
//! rate-limit), announced through a BGP speaker.
//!
//! A [`Mitigation`] is what the detector (or the operator, for a victim's report) asks for; it
//! travels in the action's evidence under `"mitigation"`, so the actuator announces exactly what
//! governance authorized and nothing broader.

pub mod gobgp;
pub mod rib;

use mamori_core::catalog::MeasureId;
use serde::{Deserialize, Serialize};

use crate::prefix::Prefix;

pub use gobgp::BgpActuator;

/// How the matched traffic is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum FlowAction {
    /// Drop it.
    Discard,
    /// Police it to this many bytes per second.
    RateLimit {
        /// Bytes per second.
        bytes_per_sec: u32,
    },
}

/// What to announce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "via")]
pub enum Mitigation {
    /// Remote-triggered blackhole of the destination (all its traffic): only on an operator's
    /// explicit request, never chosen by a detector.
    Rtbh {
        /// The victim.
        dst: Prefix,
    },
    /// A FlowSpec rule matching only the attack's characteristics.
    Flowspec(FlowMatch),
}

/// RFC 8955 match components mamori uses, and the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowMatch {
    /// Destination prefix (type 1).
    pub dst: Prefix,
    /// Source prefix (type 2), when the attack comes from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Prefix>,
    /// IP protocol (type 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    /// Source ports (type 6), e.g. 53 or 123 for reflection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src_ports: Vec<u16>,
    /// Destination ports (type 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_ports: Vec<u16>,
    /// TCP flags of which any must be set (type 9), e.g. SYN = 0x02.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<u8>,
    /// Match fragments only (type 12, is-fragment).
    #[serde(default)]
    pub fragment: bool,
    /// What to do.
    pub action: FlowAction,
}

impl FlowMatch {
    /// All traffic toward `dst`, discarded: no other component set. Detectors and requests narrow
    /// it from here.
    pub fn discard_to(dst: Prefix) -> Self {
        FlowMatch {
            dst,
            src: None,
            protocol: None,
            src_ports: Vec::new(),
            dst_ports: Vec::new(),
            tcp_flags: None,
            fragment: false,
            action: FlowAction::Discard,
        }
    }
}

impl Mitigation {
    /// The destination it protects.
    pub fn dst(&self) -> Prefix {
        match self {
            Mitigation::Rtbh { dst } => *dst,
            Mitigation::Flowspec(m) => m.dst,
        }
    }

    /// The prefix an action of `measure` must target to announce this mitigation: the source
    /// host of a FlowSpec rule against a bot (`ddos.block-unintended-source`), the protected
    /// destination otherwise; `None` when the mitigation doesn't fit the measure (an RTBH or a rule
    /// without a source against a bot).
    pub fn target_for(&self, measure: MeasureId) -> Option<Prefix> {
        match (measure, self) {
            (MeasureId::DdosBlockUnintendedSource, Mitigation::Flowspec(m)) => m.src,
            (MeasureId::DdosBlockUnintendedSource, Mitigation::Rtbh { .. }) => None,
            _ => Some(self.dst()),
        }
    }
}

/// Flag letters of GoBGP's and BIRD's FlowSpec syntax, in bit order.
const TCP_FLAGS: [(u8, char); 8] =
    [(0x01, 'F'), (0x02, 'S'), (0x04, 'R'), (0x08, 'P'), (0x10, 'A'), (0x20, 'U'), (0x40, 'E'), (0x80, 'C')];

/// The name of a protocol in GoBGP's FlowSpec syntax, or its number.
fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        n => n.to_string(),
    }
}

/// Renders the match as GoBGP CLI words (`match … then …`).
pub fn flowspec_words(m: &FlowMatch) -> Vec<String> {
    let mut w = vec!["match".to_owned(), "destination".to_owned(), m.dst.to_string()];
    if let Some(src) = m.src {
        w.extend(["source".to_owned(), src.to_string()]);
    }
    if let Some(p) = m.protocol {
        w.extend(["protocol".to_owned(), format!("=={}", proto_name(p))]);
    }
    let ports = |ps: &[u16]| ps.iter().map(|p| format!("=={p}")).collect::<Vec<_>>().join(" ");
    if !m.src_ports.is_empty() {
        w.extend(["source-port".to_owned(), ports(&m.src_ports)]);
    }
    if !m.dst_ports.is_empty() {
        w.extend(["destination-port".to_owned(), ports(&m.dst_ports)]);
    }
    if let Some(f) = m.tcp_flags {
        let letters: String = TCP_FLAGS.iter().filter(|(b, _)| f & b != 0).map(|(_, c)| *c).collect();
        if !letters.is_empty() {
            w.extend(["tcp-flags".to_owned(), letters]);
        }
    }
    if m.fragment {
        w.extend(["fragment".to_owned(), "is-fragment".to_owned()]);
    }
    w.push("then".to_owned());
    match m.action {
        FlowAction::Discard => w.push("discard".to_owned()),
        FlowAction::RateLimit { bytes_per_sec } => w.extend(["rate-limit".to_owned(), bytes_per_sec.to_string()]),
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_against_a_bot_targets_its_source() {
        let m = FlowMatch {
            dst: "0.0.0.0/0".parse().unwrap(),
            src: Some("203.0.113.7/32".parse().unwrap()),
            protocol: Some(17),
            src_ports: vec![],
            dst_ports: vec![80],
            tcp_flags: None,
            fragment: false,
            action: FlowAction::Discard,
        };
        assert_eq!(
            flowspec_words(&m).join(" "),
            "match destination 0.0.0.0/0 source 203.0.113.7/32 protocol ==udp destination-port ==80 then discard"
        );
        let f = Mitigation::Flowspec(m.clone());
        assert_eq!(f.target_for(MeasureId::DdosBlockUnintendedSource), m.src);
        assert_eq!(f.target_for(MeasureId::DdosBlockToProtectNetwork), Some(m.dst));
        let no_src = Mitigation::Flowspec(FlowMatch { src: None, ..m.clone() });
        assert_eq!(no_src.target_for(MeasureId::DdosBlockUnintendedSource), None);
        let rtbh = Mitigation::Rtbh { dst: "203.0.113.7/32".parse().unwrap() };
        assert_eq!(rtbh.target_for(MeasureId::DdosBlockUnintendedSource), None);
    }

    #[test]
    fn words_for_reflection_and_syn() {
        let m = FlowMatch {
            dst: "203.0.113.5/32".parse().unwrap(),
            src: None,
            protocol: Some(17),
            src_ports: vec![53, 123],
            dst_ports: vec![],
            tcp_flags: None,
            fragment: false,
            action: FlowAction::Discard,
        };
        assert_eq!(
            flowspec_words(&m).join(" "),
            "match destination 203.0.113.5/32 protocol ==udp source-port ==53 ==123 then discard"
        );
        let m = FlowMatch {
            protocol: Some(6),
            src_ports: vec![],
            tcp_flags: Some(0x02),
            action: FlowAction::RateLimit { bytes_per_sec: 1000 },
            ..m
        };
        assert_eq!(
            flowspec_words(&m).join(" "),
            "match destination 203.0.113.5/32 protocol ==tcp tcp-flags S then rate-limit 1000"
        );
        let j = serde_json::to_value(Mitigation::Flowspec(m.clone())).unwrap();
        assert_eq!(serde_json::from_value::<Mitigation>(j).unwrap(), Mitigation::Flowspec(m));
    }
}
