//! `[flow]`: the NetFlow/IPFIX and sFlow collectors, the DDoS detector's limits and the BGP
//! speaker that announces mitigations (`ddos.*`, `net.*`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// `[flow]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// UDP address of the NetFlow v5/v9 and IPFIX collector. Without it `mamori serve` runs no
    /// collector.
    pub listen: Option<SocketAddr>,
    /// UDP address of the sFlow v5 collector (flow samples scaled by their sampling rate, into
    /// the same detection as NetFlow). Without it no sFlow is collected.
    pub sflow_listen: Option<SocketAddr>,
    /// Detection window: rates are packets, bits and flows per second over this period.
    pub window: SignedDuration,
    /// The customer prefixes (CIDR): traffic toward them is examined for attacks, traffic from
    /// them toward outside destinations for bots; other traffic counts only in the overview.
    pub customer_prefixes: Vec<String>,
    /// Packets per second toward one host that count as an attack.
    pub host_pps: u64,
    /// Bits per second toward one host.
    pub host_bps: u64,
    /// Flows per second toward one host.
    pub host_fps: u64,
    /// Packets per second toward one customer prefix as a whole (its hosts summed), for attacks
    /// spread over many hosts none of which crosses `host_pps`.
    pub prefix_pps: u64,
    /// Bits per second toward one customer prefix as a whole.
    pub prefix_bps: u64,
    /// Flows per second toward one customer prefix as a whole.
    pub prefix_fps: u64,
    /// Packets per second one customer host sends toward outside destinations that count as an
    /// attack it sends (`ddos.block-unintended-source`).
    pub source_pps: u64,
    /// Bits per second from one customer host toward outside destinations.
    pub source_bps: u64,
    /// Flows per second from one customer host toward outside destinations.
    pub source_fps: u64,
    /// A host this many times over its learned normal packet rate (and over `min_pps`) counts.
    pub normal_factor: u32,
    /// Below this packet rate nothing counts as an attack.
    pub min_pps: u64,
    /// Exporter scopes (address, version, observation domain) kept at most; more are refused.
    pub max_exporters: u32,
    /// How many aggregate customer prefixes `net.traffic-overview` exports as top talkers.
    pub top_talkers: u32,
    /// A host's or customer prefix's learned normal rate is forgotten when no window for this
    /// long had traffic toward (or from) it; counted in windows closed, not wall clock.
    pub learned_forget_after: SignedDuration,
    /// Learned normal rates kept at most per map (toward hosts, toward customer prefixes, from
    /// hosts outward). A full map first forgets normals learned from one window and unseen for an
    /// hour (scan targets); past that, new hosts are judged by the fixed limits only, and counted.
    pub learned_max_entries: u32,
    /// The BGP speaker (GoBGP) that announces FlowSpec and RTBH routes. Without it findings and
    /// proposals are recorded, but nothing is announced.
    pub bgp: Option<FlowBgpConfig>,
}

/// `[flow.bgp]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowBgpConfig {
    /// The `gobgp` client program.
    #[serde(default = "default_gobgp")]
    pub gobgp: PathBuf,
    /// `gobgpd`'s gRPC address.
    pub api: SocketAddr,
    /// Next hop of RTBH routes.
    #[serde(default = "default_next_hop")]
    pub rtbh_next_hop: IpAddr,
    /// The blackhole community (RFC 7999).
    #[serde(default = "default_community")]
    pub rtbh_community: String,
    /// The community every route mamori announces carries, so that reconciliation withdraws only
    /// mamori's own routes and leaves the operator's and peers' alone.
    #[serde(default = "default_owner_community")]
    pub owner_community: String,
}

fn default_gobgp() -> PathBuf {
    PathBuf::from("gobgp")
}

fn default_next_hop() -> IpAddr {
    IpAddr::from([192, 0, 2, 1])
}

fn default_community() -> String {
    "65535:666".to_owned()
}

fn default_owner_community() -> String {
    // AS 64512 is the first private AS number (RFC 6996): it clashes with no public AS's communities.
    "64512:7".to_owned()
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            listen: None,
            sflow_listen: None,
            window: SignedDuration::from_secs(5),
            customer_prefixes: Vec::new(),
            host_pps: 100_000,
            host_bps: 1_000_000_000,
            host_fps: 20_000,
            prefix_pps: 500_000,
            prefix_bps: 5_000_000_000,
            prefix_fps: 100_000,
            source_pps: 50_000,
            source_bps: 500_000_000,
            source_fps: 10_000,
            normal_factor: 10,
            min_pps: 10_000,
            max_exporters: 4096,
            top_talkers: 10,
            learned_forget_after: SignedDuration::from_hours(7 * 24),
            learned_max_entries: 1_000_000,
            bgp: None,
        }
    }
}

/// Whether `s` is an `ADDR/LEN` prefix.
fn is_prefix(s: &str) -> bool {
    let Some((a, l)) = s.split_once('/') else { return false };
    match (a.parse::<IpAddr>(), l.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(l)) => l <= 32,
        (Ok(IpAddr::V6(_)), Ok(l)) => l <= 128,
        _ => false,
    }
}

impl FlowConfig {
    /// Problems as (key, detail).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.window < SignedDuration::from_secs(1) || self.window > SignedDuration::from_mins(5) {
            out.push(("window".to_owned(), "must be between 1s and 5m".to_owned()));
        }
        for (i, p) in self.customer_prefixes.iter().enumerate() {
            if !is_prefix(p) {
                out.push((format!("customer_prefixes[{i}]"), format!("`{p}` is not ADDR/LEN")));
            }
        }
        if (self.listen.is_some() || self.sflow_listen.is_some()) && self.customer_prefixes.is_empty() {
            out.push(("customer_prefixes".to_owned(), "the collector needs at least one customer prefix".to_owned()));
        }
        for (k, v) in [
            ("host_pps", self.host_pps),
            ("host_bps", self.host_bps),
            ("host_fps", self.host_fps),
            ("prefix_pps", self.prefix_pps),
            ("prefix_bps", self.prefix_bps),
            ("prefix_fps", self.prefix_fps),
            ("source_pps", self.source_pps),
            ("source_bps", self.source_bps),
            ("source_fps", self.source_fps),
        ] {
            if v == 0 {
                out.push((k.to_owned(), "must be positive".to_owned()));
            }
        }
        if self.normal_factor < 2 {
            out.push(("normal_factor".to_owned(), "must be at least 2".to_owned()));
        }
        if self.max_exporters == 0 {
            out.push(("max_exporters".to_owned(), "must be positive".to_owned()));
        }
        if self.learned_forget_after < self.window
            || self.learned_forget_after > SignedDuration::from_hours(10 * 365 * 24)
        {
            out.push(("learned_forget_after".to_owned(), "must be between `window` and 87600h (10 years)".to_owned()));
        }
        if self.learned_max_entries == 0 {
            out.push(("learned_max_entries".to_owned(), "must be positive".to_owned()));
        }
        if let Some(b) = &self.bgp {
            let community =
                |v: &str| v.split_once(':').is_some_and(|(a, c)| a.parse::<u16>().is_ok() && c.parse::<u16>().is_ok());
            if !community(&b.rtbh_community) {
                out.push(("bgp.rtbh_community".to_owned(), "must be ASN:VALUE (16-bit each)".to_owned()));
            }
            if !community(&b.owner_community) {
                out.push(("bgp.owner_community".to_owned(), "must be ASN:VALUE (16-bit each)".to_owned()));
            } else if b.owner_community == b.rtbh_community {
                out.push((
                    "bgp.owner_community".to_owned(),
                    "must differ from rtbh_community (it marks mamori's routes, not blackholes)".to_owned(),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_named() {
        let c = FlowConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 2055))),
            window: SignedDuration::ZERO,
            customer_prefixes: vec!["203.0.113.0/33".into()],
            ..FlowConfig::default()
        };
        let keys: Vec<_> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["window", "customer_prefixes[0]"]);
        assert!(FlowConfig::default().problems().is_empty());
        let c = FlowConfig {
            learned_forget_after: SignedDuration::from_secs(4),
            learned_max_entries: 0,
            ..FlowConfig::default()
        };
        let keys: Vec<_> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["learned_forget_after", "learned_max_entries"]);
    }

    #[test]
    fn the_owner_community_is_checked() {
        let bgp: FlowBgpConfig = toml::from_str(r#"api = "127.0.0.1:50051""#).expect("minimal [flow.bgp]");
        assert_eq!(bgp.owner_community, "64512:7");
        let with = |owner: &str| FlowConfig {
            bgp: Some(FlowBgpConfig { owner_community: owner.to_owned(), ..bgp.clone() }),
            ..FlowConfig::default()
        };
        assert!(with("64512:7").problems().is_empty());
        let keys = |c: FlowConfig| c.problems().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(keys(with("64512")), ["bgp.owner_community"]);
        assert_eq!(keys(with("65535:666")), ["bgp.owner_community"]);
    }
}
