//! mamori's flows and DDoS family (`ddos.*`, `net.*`).
//!
//! - [`collector`]: NetFlow v5/v9 and IPFIX over UDP, templates per exporter and observation
//!   domain, sampling-rate scaling, counters per exporter; sFlow v5 on its own socket.
//! - [`detect`]: per-destination and per-customer-prefix rates against thresholds and each
//!   destination's learned normal,
//!   characterisation of the attack, spoofed sources on customer-facing interfaces; findings and
//!   proposals through governance.
//! - [`overview`]: `net.traffic-overview`, aggregates per protocol, customer prefix and top
//!   talkers, exported as Prometheus metrics.
//! - [`bgp`]: RTBH and FlowSpec (RFC 8955) announced through a BGP speaker, as an
//!   [`Actuator`](mamori_core::actuator::Actuator).

pub mod bgp;
pub mod collector;
pub mod detect;
pub mod overview;
pub mod prefix;
