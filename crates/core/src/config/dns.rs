//! `[dns]`: the DNS family in `mamori serve` — dnstap from the carrier's resolvers, the response
//! policy zone served to them, the inline filter, and the reputation/block lists.
//!
//! Everything is off by default: each part runs only when its section is present.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// `[dns]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Apply random-subdomain and amplification detections to `dns.block-fqdn-list` at once
    /// (through governance, with `block_for` as expiry); otherwise they wait for an operator.
    pub auto_apply: bool,
    /// How long an automatic list entry lasts (governance caps it at the measure's maximum).
    pub block_for: SignedDuration,
    /// dnstap from the resolvers (absent: no ingest).
    pub dnstap: Option<DnstapConfig>,
    /// The response-policy zone served to the resolvers (absent: not served).
    pub rpz: Option<RpzConfig>,
    /// The inline filter (absent: not run).
    pub filter: Option<FilterConfig>,
    /// List files loaded at start, each with its kind and source name.
    pub lists: Vec<DnsListConfig>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            auto_apply: false,
            block_for: SignedDuration::from_hours(1),
            dnstap: None,
            rpz: None,
            filter: None,
            lists: Vec::new(),
        }
    }
}

/// `[dns.dnstap]`: Frame Streams from Unbound (`dnstap-socket-path`) or over TCP (`dnstap-ip`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnstapConfig {
    /// Unix socket to listen on (a stale socket file is replaced).
    pub socket_path: Option<PathBuf>,
    /// TCP address to listen on, for resolvers on other hosts (plain TCP: management network).
    pub tcp_listen: Option<SocketAddr>,
}

impl Default for DnstapConfig {
    fn default() -> Self {
        DnstapConfig { socket_path: Some(PathBuf::from("/run/mamori/dnstap.sock")), tcp_listen: None }
    }
}

/// `[dns.rpz]`: the zone, served by AXFR/IXFR over TCP with NOTIFY on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpzConfig {
    /// The zone's name (what the resolvers' `rpz:`/`response-policy` name).
    pub zone: String,
    /// Where to serve it (TCP and UDP).
    pub listen: SocketAddr,
    /// Who may transfer it.
    pub allow_transfer: Vec<IpAddr>,
    /// Resolvers to NOTIFY on every change.
    pub notify: Vec<SocketAddr>,
    /// Publish the entries as `rpz-passthru.` (resolvers log but don't enforce).
    pub dry_run: bool,
}

impl Default for RpzConfig {
    fn default() -> Self {
        RpzConfig {
            zone: "rpz.mamori.".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 5353)),
            allow_transfer: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            notify: Vec::new(),
            dry_run: false,
        }
    }
}

/// `[dns.filter]`: mamori as a DNS front (UDP and TCP) forwarding to the resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Where clients send queries.
    pub listen: SocketAddr,
    /// The resolver queries are forwarded to.
    pub upstream: SocketAddr,
    /// The address malware-site names are answered with (where the warning page is reached).
    pub warn_address: Ipv4Addr,
    /// Where the warning page is served over HTTP (absent: not served).
    pub warn_page_listen: Option<SocketAddr>,
    /// Answers of the resolver kept for UDP queries (0: no answer cache), each for its TTL.
    pub cache_entries: usize,
    /// Microseconds the UDP threads poll their sockets without sleeping before they block (0: they
    /// block at once). Lowers the latency tail on virtual machines, at the cost of a core kept busy
    /// while queries arrive more often than this.
    pub busy_poll_us: u64,
    /// UDP workers (two threads and one socket each, spread by `SO_REUSEPORT`), at most 64; 0: one
    /// per CPU the process may run on, at most 8.
    pub udp_workers: usize,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5300)),
            upstream: SocketAddr::from(([127, 0, 0, 1], 53)),
            warn_address: Ipv4Addr::LOCALHOST,
            warn_page_listen: None,
            cache_entries: 0,
            busy_poll_us: 0,
            udp_workers: 0,
        }
    }
}

/// What a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsListKind {
    /// C&C names (`bots.detect-cnc-queries`, `reputation.block-cnc`).
    Cnc,
    /// Malware sites (`reputation.warn-malware-site`).
    Malware,
    /// Names blocked by the inline filter (`dns.block-fqdn-list`).
    Block,
}

impl DnsListKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsListKind::Cnc => "cnc",
            DnsListKind::Malware => "malware",
            DnsListKind::Block => "block",
        }
    }
}

impl std::str::FromStr for DnsListKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cnc" => Ok(DnsListKind::Cnc),
            "malware" => Ok(DnsListKind::Malware),
            "block" => Ok(DnsListKind::Block),
            _ => Err(format!("`{s}` is not a list kind (cnc, malware, block)")),
        }
    }
}

/// A list file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsListFormat {
    /// One name a line (each with its subtree).
    Plain,
    /// A hosts file (`0.0.0.0 name …`, exact names).
    Hosts,
    /// An RPZ zone file (`name CNAME .`, `*.name CNAME .`).
    Rpz,
}

/// `[[dns.lists]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsListConfig {
    /// The file.
    pub path: PathBuf,
    /// What it holds.
    pub kind: DnsListKind,
    /// The source's name (a feed or provider), recorded with the list.
    pub source: String,
    /// Its format (default: guessed from the file name).
    #[serde(default)]
    pub format: Option<DnsListFormat>,
}

impl DnsConfig {
    /// Problems as `(section, key, detail)`; empty when usable.
    pub fn problems(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut p = |s: &str, k: &str, d: String| out.push((s.to_owned(), k.to_owned(), d));
        if self.block_for <= SignedDuration::ZERO {
            p("dns", "block_for", "must be positive".into());
        }
        if let Some(d) = &self.dnstap {
            if d.socket_path.is_none() && d.tcp_listen.is_none() {
                p("dns.dnstap", "socket_path", "set `socket_path` or `tcp_listen` (or remove [dns.dnstap])".into());
            }
            if d.socket_path.as_ref().is_some_and(|s| s.as_os_str().is_empty()) {
                p("dns.dnstap", "socket_path", "must not be empty".into());
            }
        }
        if let Some(r) = &self.rpz {
            if !valid_zone_name(&r.zone) {
                p("dns.rpz", "zone", format!("`{}` is not a domain name", r.zone));
            }
        }
        if let Some(f) = &self.filter {
            if f.listen == f.upstream {
                p("dns.filter", "upstream", "must not be the filter's own `listen` address".into());
            }
            if f.upstream.port() == 0 {
                p("dns.filter", "upstream", "needs a port".into());
            }
            if f.warn_page_listen.is_some_and(|w| w == f.listen) {
                p("dns.filter", "warn_page_listen", "must differ from `listen`".into());
            }
        }
        if let (Some(r), Some(f)) = (&self.rpz, &self.filter) {
            if r.listen == f.listen {
                p("dns.rpz", "listen", "must differ from [dns.filter] `listen`".into());
            }
        }
        let mut sources = std::collections::BTreeSet::new();
        for (i, l) in self.lists.iter().enumerate() {
            if l.source.trim().is_empty() {
                p("dns", &format!("lists[{i}].source"), "must not be empty".into());
            } else if !sources.insert((l.kind, l.source.as_str())) {
                p("dns", &format!("lists[{i}].source"), format!("`{}` names two {} lists", l.source, l.kind.as_str()));
            }
            if l.path.as_os_str().is_empty() {
                p("dns", &format!("lists[{i}].path"), "must not be empty".into());
            }
        }
        out
    }
}

fn valid_zone_name(n: &str) -> bool {
    let t = n.trim_end_matches('.');
    !t.is_empty()
        && t.len() <= 253
        && t.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_named() {
        let c = DnsConfig {
            block_for: SignedDuration::ZERO,
            rpz: Some(RpzConfig { zone: "bad zone".into(), ..Default::default() }),
            filter: Some(FilterConfig { upstream: SocketAddr::from(([127, 0, 0, 1], 5300)), ..Default::default() }),
            lists: vec![
                DnsListConfig { path: "a".into(), kind: DnsListKind::Cnc, source: "feed".into(), format: None },
                DnsListConfig { path: "b".into(), kind: DnsListKind::Cnc, source: "feed".into(), format: None },
            ],
            ..Default::default()
        };
        let keys: Vec<String> = c.problems().into_iter().map(|(s, k, _)| format!("{s}.{k}")).collect();
        assert_eq!(keys, ["dns.block_for", "dns.rpz.zone", "dns.filter.upstream", "dns.lists[1].source"]);
        assert!(DnsConfig::default().problems().is_empty());
    }

    #[test]
    fn errors_carry_key_and_line() {
        let text = "[dns]\nauto_apply = true\n[dns.rpz]\nzone = \"bad zone\"\n[dns.filter]\n";
        let errs = crate::config::Config::parse(text, "x.toml").unwrap_err();
        let msg = errs[0].to_string();
        assert!(msg.starts_with("x.toml:4: `dns.rpz.zone`"), "{msg}");
        let ok = crate::config::Config::parse("[dns.filter]\nupstream = \"127.0.0.1:5301\"\n", "x").unwrap();
        assert_eq!(ok.dns.filter.unwrap().listen, SocketAddr::from(([127, 0, 0, 1], 5300)));
    }
}
