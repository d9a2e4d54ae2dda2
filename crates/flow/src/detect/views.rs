//! What each flow measure may read, as view types (DESIGN.md invariant 2).
//!
//! The detector builds one [`DestinationTraffic`] per destination that crossed its thresholds in
//! a window, one [`SourceTraffic`] per customer host sending attack traffic outward, and one
//! [`IngressSources`] per customer-facing interface with spoofed sources; a
//! mitigation is decided on the view the gate projects, never on the raw flows.

use mamori_core::catalog::{Field, MeasureId};
use mamori_core::subject::{SubscriberId, Target};
use mamori_core::view::{MeasureView, ViewToken};

use crate::bgp::FlowMatch;
use crate::prefix::Prefix;

/// Traffic toward one destination in one window, with what characterises it.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationTraffic {
    /// The destination (a host, or a customer prefix in aggregate).
    pub dst: Prefix,
    /// The customer prefix it belongs to.
    pub customer_prefix: Option<Prefix>,
    /// Packets per second.
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
    /// Flows per second.
    pub fps: f64,
    /// The destination's learned normal packets per second.
    pub normal_pps: f64,
    /// Which limit was crossed (`pps`, `bps`, `fps`, `normal`).
    pub reason: &'static str,
    /// The match that covers only the attack traffic.
    pub attack: FlowMatch,
    /// The largest sources by packets, with their share.
    pub top_sources: Vec<(std::net::IpAddr, f64)>,
    /// The breakdown behind `top_sources` and `coverage` is a sample: their figures are estimates.
    pub sampled: bool,
    /// Share of the destination's packets the match covers.
    pub coverage: f64,
}

/// Stage 1 of `ddos.block-to-protect-network`: rates and the attack's characteristics.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackTraffic {
    /// The destination.
    pub dst: Prefix,
    /// Its customer prefix.
    pub customer_prefix: Option<Prefix>,
    /// Packets, bits and flows per second, and the normal packet rate.
    pub rates: [f64; 4],
    /// Which limit was crossed.
    pub reason: &'static str,
    /// The match.
    pub attack: FlowMatch,
    /// Top sources.
    pub top_sources: Vec<(std::net::IpAddr, f64)>,
    /// Whether `top_sources` and `coverage` are estimates from a sample.
    pub sampled: bool,
    /// Share of packets covered by the match.
    pub coverage: f64,
}

impl MeasureView for AttackTraffic {
    type Record = DestinationTraffic;
    const MEASURE: MeasureId = MeasureId::DdosBlockToProtectNetwork;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[
        Field::DestinationAddress,
        Field::SourceAddress,
        Field::Protocol,
        Field::SourcePort,
        Field::DestinationPort,
        Field::TcpFlags,
        Field::FragmentFlags,
        Field::TrafficRates,
        Field::CustomerPrefix,
    ];
    fn subscriber(_r: &DestinationTraffic) -> Option<&SubscriberId> {
        None
    }
    fn subject(r: &DestinationTraffic) -> Target {
        Target::Prefix(r.dst.to_string())
    }
    fn project(r: &DestinationTraffic, _token: ViewToken) -> Self {
        AttackTraffic {
            dst: r.dst,
            customer_prefix: r.customer_prefix,
            rates: [r.pps, r.bps, r.fps, r.normal_pps],
            reason: r.reason,
            attack: r.attack.clone(),
            top_sources: r.top_sources.clone(),
            sampled: r.sampled,
            coverage: r.coverage,
        }
    }
}

/// Flows entering on one customer-facing interface with sources outside the customer's prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressSources {
    /// The interface (ifIndex) at the exporter.
    pub exporter: std::net::IpAddr,
    /// The interface.
    pub input_if: u32,
    /// The customer prefixes expected behind it.
    pub customer_prefixes: Vec<Prefix>,
    /// Spoofed sources seen (up to a handful) and the packets they sent.
    pub spoofed: Vec<(std::net::IpAddr, u64)>,
    /// All packets from the interface in the window.
    pub packets: u64,
}

/// Stage 1 of `net.drop-spoofed-source`: sources against the customer's prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoofedSources {
    /// The interface.
    pub input_if: u32,
    /// The exporter.
    pub exporter: std::net::IpAddr,
    /// The customer's prefixes.
    pub customer_prefixes: Vec<Prefix>,
    /// Spoofed sources and their packets.
    pub spoofed: Vec<(std::net::IpAddr, u64)>,
    /// Packets on the interface.
    pub packets: u64,
}

impl MeasureView for SpoofedSources {
    type Record = IngressSources;
    const MEASURE: MeasureId = MeasureId::NetDropSpoofedSource;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::SourceAddress, Field::IngressInterface, Field::CustomerPrefix];
    fn subscriber(_r: &IngressSources) -> Option<&SubscriberId> {
        None
    }
    fn subject(_r: &IngressSources) -> Target {
        Target::Network
    }
    fn project(r: &IngressSources, _token: ViewToken) -> Self {
        SpoofedSources {
            input_if: r.input_if,
            exporter: r.exporter,
            customer_prefixes: r.customer_prefixes.clone(),
            spoofed: r.spoofed.clone(),
            packets: r.packets,
        }
    }
}

/// What one customer host sent toward outside destinations in a window it crossed a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTraffic {
    /// The sending host inside a customer prefix.
    pub src: Prefix,
    /// Packets per second.
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
    /// Flows per second.
    pub fps: f64,
    /// The host's learned normal outbound packets per second.
    pub normal_pps: f64,
    /// Which limit was crossed (`pps`, `bps`, `fps`, `normal`).
    pub reason: &'static str,
    /// The match on the source host that covers only the attack traffic.
    pub attack: FlowMatch,
    /// The largest destinations (victims) by packets, with their share.
    pub top_destinations: Vec<(std::net::IpAddr, f64)>,
    /// Share of the host's outbound packets the match covers.
    pub coverage: f64,
}

/// Stage 1 of `ddos.block-unintended-source`: a customer host's outbound attack traffic (source,
/// destinations, protocol, destination port, rates; no source port, flags or customer prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundAttack {
    /// The sending host.
    pub src: Prefix,
    /// Packets, bits and flows per second, and the normal packet rate.
    pub rates: [f64; 4],
    /// Which limit was crossed.
    pub reason: &'static str,
    /// The match.
    pub attack: FlowMatch,
    /// Top destinations.
    pub top_destinations: Vec<(std::net::IpAddr, f64)>,
    /// Share of packets covered by the match.
    pub coverage: f64,
}

impl MeasureView for OutboundAttack {
    type Record = SourceTraffic;
    const MEASURE: MeasureId = MeasureId::DdosBlockUnintendedSource;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[
        Field::SourceAddress,
        Field::DestinationAddress,
        Field::Protocol,
        Field::DestinationPort,
        Field::TrafficRates,
    ];
    fn subscriber(_r: &SourceTraffic) -> Option<&SubscriberId> {
        // Attribution (the address's subscriber at that time) is a separate, audited step.
        None
    }
    fn subject(r: &SourceTraffic) -> Target {
        Target::Prefix(r.src.to_string())
    }
    fn project(r: &SourceTraffic, _token: ViewToken) -> Self {
        OutboundAttack {
            src: r.src,
            rates: [r.pps, r.bps, r.fps, r.normal_pps],
            reason: r.reason,
            attack: FlowMatch {
                // Whatever the record carries, the view keeps only the fields the measure reads.
                src_ports: Vec::new(),
                tcp_flags: None,
                fragment: false,
                ..r.attack.clone()
            },
            top_destinations: r.top_destinations.clone(),
            coverage: r.coverage,
        }
    }
}
