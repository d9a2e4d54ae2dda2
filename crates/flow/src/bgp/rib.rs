//! Reading the speaker's global RIB back (`gobgp global rib -a <family> -j`) and the difference
//! between what it holds and what is in force: a pure function of the JSON and the wanted routes,
//! so reconciliation touches only the routes that differ.
//!
//! **Which routes are mamori's.** Every route mamori announces carries its owner community (a
//! standard community, `64512:7` unless configured). A route without it (put there by hand, by
//! another program, or learned from a peer) is someone else's and is never withdrawn, nor is a
//! route learned from a neighbour even if it carries the community: reconciliation only ever
//! deletes local paths it marked itself. A marked route whose NLRI or attributes are not of a shape
//! mamori announces is counted as unrecognised and left alone too (mamori could not name it to
//! delete it faithfully).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use super::{FlowAction, FlowMatch, Mitigation, flowspec_words};
use crate::prefix::Prefix;

/// The address families mamori announces in, as `gobgp -a` names them.
pub const FAMILIES: [&str; 4] = ["ipv4", "ipv6", "ipv4-flowspec", "ipv6-flowspec"];

/// The next hop of IPv6 RTBH routes (the IPv6 discard prefix, RFC 6666).
pub const RTBH_NEXT_HOP_V6: &str = "100::1";

/// The `-a` family of a mitigation.
pub fn family_of(m: &Mitigation) -> &'static str {
    match (m, m.dst().addr().is_ipv6()) {
        (Mitigation::Rtbh { .. }, false) => "ipv4",
        (Mitigation::Rtbh { .. }, true) => "ipv6",
        (Mitigation::Flowspec(_), false) => "ipv4-flowspec",
        (Mitigation::Flowspec(_), true) => "ipv6-flowspec",
    }
}

/// A BGP standard community (RFC 1997) as a number, from `ASN:VALUE` or a well-known name as
/// GoBGP's CLI accepts them; `None` when it is neither.
pub fn community_value(s: &str) -> Option<u32> {
    let s = s.trim();
    let known = match s.to_ascii_lowercase().as_str() {
        "blackhole" => Some(0xFFFF_029A),
        "no-export" => Some(0xFFFF_FF01),
        "no-advertise" => Some(0xFFFF_FF02),
        "no-export-subconfed" => Some(0xFFFF_FF03),
        "graceful-shutdown" => Some(0xFFFF_0000),
        _ => None,
    };
    if known.is_some() {
        return known;
    }
    let (hi, lo) = s.split_once(':')?;
    Some((u32::from(hi.parse::<u16>().ok()?) << 16) | u32::from(lo.parse::<u16>().ok()?))
}

fn community_text(c: u32) -> String {
    format!("{}:{}", c >> 16, c & 0xFFFF)
}

/// How mamori's routes look, to recognise them in the RIB and compare their attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteShape {
    /// Next hop of IPv4 RTBH routes.
    pub rtbh_next_hop_v4: IpAddr,
    /// The blackhole community.
    pub rtbh_community: u32,
    /// The community marking mamori's routes.
    pub owner_community: u32,
}

/// One route as reconciliation compares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteKey {
    /// `gobgp global rib` words naming the route in the RIB: family and NLRI (for `del`).
    pub nlri: Vec<String>,
}

impl RouteKey {
    /// The key of a mitigation's route.
    pub fn of(m: &Mitigation) -> RouteKey {
        let family = family_of(m).to_owned();
        let nlri = match m {
            Mitigation::Rtbh { dst } => vec![dst.to_string(), "-a".into(), family],
            Mitigation::Flowspec(f) => {
                let mut w = vec!["-a".to_owned(), family];
                w.extend(flowspec_words(f).into_iter().take_while(|w| w != "then"));
                w
            }
        };
        RouteKey { nlri }
    }

    /// The words, space-separated, for logs and the ledger.
    pub fn text(&self) -> String {
        self.nlri.join(" ")
    }
}

/// The attributes mamori sets on a route, in a canonical form: equal attributes mean the route
/// in the RIB is already exactly what mamori would announce.
pub fn attrs_of(m: &Mitigation, shape: &RouteShape) -> String {
    match m {
        Mitigation::Rtbh { dst } => {
            let nh = if dst.addr().is_ipv6() {
                RTBH_NEXT_HOP_V6.parse::<IpAddr>().map(|a| a.to_string()).unwrap_or_default()
            } else {
                shape.rtbh_next_hop_v4.to_string()
            };
            let cs: BTreeSet<u32> = [shape.rtbh_community, shape.owner_community].into();
            unicast_attrs(&nh, &cs)
        }
        Mitigation::Flowspec(f) => action_text(f.action),
    }
}

fn unicast_attrs(next_hop: &str, communities: &BTreeSet<u32>) -> String {
    let cs: Vec<String> = communities.iter().map(|c| community_text(*c)).collect();
    format!("nexthop {next_hop} community {}", cs.join(","))
}

fn action_text(a: FlowAction) -> String {
    match a {
        FlowAction::Discard => "discard".into(),
        FlowAction::RateLimit { bytes_per_sec } => format!("rate-limit {bytes_per_sec}"),
    }
}

/// A route read from the RIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibRoute {
    /// GoBGP's rendering of the NLRI (the key of its JSON), for logs.
    pub text: String,
    /// The key and canonical attributes, when the route has a shape mamori announces.
    pub parsed: Option<(RouteKey, String)>,
    /// Whether it is a local path carrying mamori's owner community.
    pub owned: bool,
}

/// The RIB's answer was not the JSON GoBGP writes.
#[derive(Debug, thiserror::Error)]
#[error("unexpected `gobgp global rib -j` output: {0}")]
pub struct RibError(String);

/// Parses `gobgp global rib -a <family> -j` output: an object from GoBGP's NLRI text to the list
/// of paths. Unknown fields are ignored; a path of an unknown shape is kept with `parsed: None`.
pub fn parse_rib(json: &str, family: &str, shape: &RouteShape) -> Result<Vec<RibRoute>, RibError> {
    let json = json.trim();
    // GoBGP prints nothing (older versions) or `{}` for an empty table.
    if json.is_empty() || json == "null" {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(json).map_err(|e| RibError(e.to_string()))?;
    let table = v.as_object().ok_or_else(|| RibError("not an object".into()))?;
    let mut out = Vec::new();
    for (text, paths) in table {
        let paths = paths.as_array().ok_or_else(|| RibError(format!("{text}: paths are not a list")))?;
        for p in paths {
            if p.get("withdrawal").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let attrs = p.get("attrs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let communities: BTreeSet<u32> = attrs
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_u64) == Some(8))
                .filter_map(|a| a.get("communities").and_then(Value::as_array))
                .flatten()
                .filter_map(|c| c.as_u64().and_then(|c| u32::try_from(c).ok()))
                .collect();
            let from_peer = ["neighbor-ip", "source-id"]
                .iter()
                .any(|k| p.get(*k).and_then(Value::as_str).is_some_and(|s| !s.is_empty() && s != "<nil>"));
            let owned = !from_peer && communities.contains(&shape.owner_community);
            let parsed = match family {
                "ipv4" | "ipv6" => parse_unicast(p, attrs, &communities, family),
                _ => parse_flowspec(p, attrs, family),
            };
            out.push(RibRoute { text: text.clone(), parsed, owned });
        }
    }
    Ok(out)
}

fn parse_unicast(p: &Value, attrs: &[Value], communities: &BTreeSet<u32>, family: &str) -> Option<(RouteKey, String)> {
    let dst: Prefix = p.get("nlri")?.get("prefix")?.as_str()?.parse().ok()?;
    if dst.addr().is_ipv6() != (family == "ipv6") {
        return None;
    }
    // IPv4 next hops are in NEXT_HOP (type 3), IPv6 ones in MP_REACH_NLRI (type 14).
    let nh = attrs
        .iter()
        .filter(|a| matches!(a.get("type").and_then(Value::as_u64), Some(3 | 14)))
        .find_map(|a| a.get("nexthop").and_then(Value::as_str))?;
    let nh = nh.parse::<IpAddr>().ok()?.to_string();
    let m = Mitigation::Rtbh { dst };
    Some((RouteKey::of(&m), unicast_attrs(&nh, communities)))
}

fn parse_flowspec(p: &Value, attrs: &[Value], family: &str) -> Option<(RouteKey, String)> {
    let comps = p.get("nlri")?.get("value")?.as_array()?;
    let mut dst = None;
    let mut m = FlowMatch::discard_to(Prefix::host(IpAddr::from([0, 0, 0, 0])));
    for c in comps {
        let value = c.get("value")?;
        match c.get("type")?.as_u64()? {
            1 => dst = Some(flow_prefix(value, c)?),
            2 => m.src = Some(flow_prefix(value, c)?),
            3 => {
                let [(op, v)] = numeric_items(value)?[..] else { return None };
                m.protocol = Some(u8::try_from(equal(op, v)?).ok()?);
            }
            5 => m.dst_ports = ports(value)?,
            6 => m.src_ports = ports(value)?,
            9 => m.tcp_flags = Some(u8::try_from(any_bits(value)?).ok()?),
            // mamori only ever matches is-fragment (bit 0x02).
            12 if any_bits(value)? == 0x02 => m.fragment = true,
            _ => return None,
        }
    }
    m.dst = dst?;
    if m.dst.addr().is_ipv6() != (family == "ipv6-flowspec") {
        return None;
    }
    // The action is the traffic-rate extended community (type 0x80, subtype 6; rate 0 = discard).
    // Any other extended community (redirect, marking…) is not something mamori announces.
    let mut action = None;
    for a in attrs.iter().filter(|a| a.get("type").and_then(Value::as_u64) == Some(16)) {
        for e in a.get("value")?.as_array()? {
            if e.get("type")?.as_u64()? != 0x80 || e.get("subtype")?.as_u64()? != 6 || action.is_some() {
                return None;
            }
            let rate = e.get("rate")?.as_f64()?;
            action = Some(if rate == 0.0 {
                FlowAction::Discard
            } else if rate.fract() == 0.0 && rate > 0.0 && rate <= f64::from(u32::MAX) {
                // Integral and in range: checked just above, so the cast is exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                FlowAction::RateLimit { bytes_per_sec: rate as u32 }
            } else {
                return None;
            });
        }
    }
    m.action = action?;
    let key = RouteKey::of(&Mitigation::Flowspec(m.clone()));
    Some((key, action_text(m.action)))
}

/// A prefix component; a non-zero IPv6 offset (RFC 8956) is not something mamori announces.
fn flow_prefix(value: &Value, c: &Value) -> Option<Prefix> {
    if c.get("offset").and_then(Value::as_u64).unwrap_or(0) != 0 {
        return None;
    }
    value.get("prefix")?.as_str()?.parse().ok()
}

/// The (operator, value) items of a numeric or bitmask component.
fn numeric_items(value: &Value) -> Option<Vec<(u64, u64)>> {
    value.as_array()?.iter().map(|i| Some((i.get("op")?.as_u64()?, i.get("value")?.as_u64()?))).collect()
}

/// The value of an `==` item ORed with the others (RFC 8955 numeric operator: no AND bit, only
/// the eq bit among lt/gt/eq).
fn equal(op: u64, v: u64) -> Option<u64> {
    (op & 0x40 == 0 && op & 0x07 == 0x01).then_some(v)
}

fn ports(value: &Value) -> Option<Vec<u16>> {
    numeric_items(value)?.into_iter().map(|(op, v)| u16::try_from(equal(op, v)?).ok()).collect()
}

/// The bits of a single bitmask item meaning "any of these set" (RFC 8955: no AND, no NOT, no
/// exact-match bit).
fn any_bits(value: &Value) -> Option<u64> {
    let [(op, v)] = numeric_items(value)?[..] else { return None };
    (op & 0x43 == 0).then_some(v)
}

/// What reconciliation has to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Routes in force missing from the RIB: announce.
    pub announce: Vec<(RouteKey, Mitigation, Vec<String>)>,
    /// Routes of mamori's in the RIB with other attributes (e.g. another rate): announced again,
    /// which replaces them in place (one UPDATE, no withdrawal).
    pub update: Vec<(RouteKey, Mitigation, Vec<String>)>,
    /// mamori's routes no action in force wants: withdraw.
    pub withdraw: Vec<RouteKey>,
    /// Routes in force already in the RIB as they should be: untouched.
    pub keep: Vec<(RouteKey, Vec<String>)>,
    /// Routes without mamori's owner community: left alone.
    pub foreign: usize,
    /// GoBGP's text of routes marked as mamori's but of a shape it doesn't announce: left alone.
    pub unrecognised: Vec<String>,
}

/// The difference between the actions in force (`(action id, mitigation)`) and the RIB's routes.
pub fn plan(want: &[(String, Mitigation)], have: &[RibRoute], shape: &RouteShape) -> Plan {
    let mut wanted: BTreeMap<RouteKey, (Mitigation, String, Vec<String>)> = BTreeMap::new();
    for (id, m) in want {
        let e = wanted.entry(RouteKey::of(m)).or_insert_with(|| (m.clone(), attrs_of(m, shape), Vec::new()));
        e.2.push(id.clone());
    }
    let mut plan = Plan::default();
    let mut present: BTreeMap<RouteKey, BTreeSet<String>> = BTreeMap::new();
    for r in have {
        match (&r.parsed, r.owned) {
            (_, false) => plan.foreign += 1,
            (None, true) => plan.unrecognised.push(r.text.clone()),
            (Some((k, attrs)), true) => {
                present.entry(k.clone()).or_default().insert(attrs.clone());
            }
        }
    }
    for (k, attrs) in &present {
        if !wanted.contains_key(k) {
            plan.withdraw.push(k.clone());
        } else if let Some((m, want_attrs, ids)) = wanted.get(k) {
            if attrs.len() == 1 && attrs.contains(want_attrs) {
                plan.keep.push((k.clone(), ids.clone()));
            } else {
                plan.update.push((k.clone(), m.clone(), ids.clone()));
            }
        }
    }
    for (k, (m, _, ids)) in wanted {
        if !present.contains_key(&k) {
            plan.announce.push((k, m, ids));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> RouteShape {
        RouteShape {
            rtbh_next_hop_v4: "192.0.2.1".parse().unwrap(),
            rtbh_community: community_value("65535:666").unwrap(),
            owner_community: community_value("64512:7").unwrap(),
        }
    }

    fn reflection(dst: &str, action: FlowAction) -> Mitigation {
        Mitigation::Flowspec(FlowMatch {
            dst: dst.parse().unwrap(),
            src: None,
            protocol: Some(17),
            src_ports: vec![53, 123],
            dst_ports: vec![],
            tcp_flags: None,
            fragment: false,
            action,
        })
    }

    // `gobgp global rib -a ipv4-flowspec -j` of GoBGP 3.10 (Debian), routes added with
    // `gobgp global rib add -a ipv4-flowspec match … then … [community 64512:7]`: one of mamori's,
    // one of mamori's with every component it uses and a rate, one added by hand without the owner
    // community, one with the owner community and a redirect mamori never announces.
    const FLOWS: &str = r#"{
      "[destination: 203.0.113.5/32][protocol: ==udp][source-port: ==53 ==123]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"203.0.113.5/32"}},{"type":3,"value":[{"op":129,"value":17}]},{"type":6,"value":[{"op":1,"value":53},{"op":129,"value":123}]}]},"age":1796453424,"best":true,"attrs":[{"type":1,"value":2},{"type":8,"communities":[4227858439]},{"type":16,"value":[{"type":128,"subtype":6,"as":0,"rate":0}]},{"type":14,"nexthop":"0.0.0.0","afi":1,"safi":133,"value":[]}],"stale":false}],
      "[destination: 203.0.113.6/32][source: 10.0.0.0/8][protocol: ==tcp][destination-port: ==80][tcp-flags: S][fragment: is-fragment]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"203.0.113.6/32"}},{"type":2,"value":{"prefix":"10.0.0.0/8"}},{"type":3,"value":[{"op":129,"value":6}]},{"type":5,"value":[{"op":129,"value":80}]},{"type":9,"value":[{"op":128,"value":2}]},{"type":12,"value":[{"op":128,"value":2}]}]},"age":1796453424,"best":true,"attrs":[{"type":1,"value":2},{"type":8,"communities":[4227858439]},{"type":16,"value":[{"type":128,"subtype":6,"as":0,"rate":1000}]}],"stale":false}],
      "[destination: 192.0.2.99/32]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"192.0.2.99/32"}}]},"age":1796453424,"best":true,"attrs":[{"type":1,"value":2},{"type":16,"value":[{"type":128,"subtype":6,"as":0,"rate":0}]}],"stale":false}],
      "[destination: 198.51.100.1/32][destination-port: >=1024&<=2048]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"198.51.100.1/32"}},{"type":5,"value":[{"op":3,"value":1024},{"op":197,"value":2048}]}]},"age":1796453424,"best":true,"attrs":[{"type":1,"value":2},{"type":8,"communities":[4227858439]},{"type":16,"value":[{"type":128,"subtype":6,"as":0,"rate":0}]}],"stale":false}]
    }"#;

    // `gobgp global rib -a ipv4 -j`: mamori's RTBH route, a blackhole route added by hand, and a
    // route learned from a peer that happens to carry the owner community.
    const UNICAST: &str = r#"{
      "203.0.113.66/32":[{"nlri":{"prefix":"203.0.113.66/32"},"age":1796453424,"best":true,"attrs":[{"type":1,"value":2},{"type":8,"communities":[4294902426,4227858439]},{"type":3,"nexthop":"192.0.2.1"}],"stale":false}],
      "10.9.0.0/24":[{"nlri":{"prefix":"10.9.0.0/24"},"age":1796453424,"best":true,"attrs":[{"type":1,"value":2},{"type":8,"communities":[4294902426]},{"type":3,"nexthop":"192.0.2.1"}],"stale":false}],
      "198.18.0.0/15":[{"nlri":{"prefix":"198.18.0.0/15"},"age":1796453424,"best":true,"attrs":[{"type":1,"value":2},{"type":8,"communities":[4227858439]},{"type":3,"nexthop":"127.0.0.1"}],"stale":false,"source-id":"10.255.0.2","neighbor-ip":"127.0.0.1"}]
    }"#;

    #[test]
    fn communities_parse() {
        assert_eq!(community_value("65535:666"), Some(4294902426));
        assert_eq!(community_value("blackhole"), community_value("65535:666"));
        assert_eq!(community_value("64512:7"), Some(4227858439));
        assert_eq!(community_value("65536:1"), None);
        assert_eq!(community_value("nonsense"), None);
    }

    #[test]
    fn the_rib_is_read_back_into_mamoris_routes_and_others() {
        let s = shape();
        let flows = parse_rib(FLOWS, "ipv4-flowspec", &s).unwrap();
        assert_eq!(flows.len(), 4);
        let by_text = |t: &str| flows.iter().find(|r| r.text.starts_with(t)).unwrap();
        let m = reflection("203.0.113.5/32", FlowAction::Discard);
        assert_eq!(by_text("[destination: 203.0.113.5/32]").parsed, Some((RouteKey::of(&m), attrs_of(&m, &s))));
        assert!(by_text("[destination: 203.0.113.5/32]").owned);
        let full = Mitigation::Flowspec(FlowMatch {
            dst: "203.0.113.6/32".parse().unwrap(),
            src: Some("10.0.0.0/8".parse().unwrap()),
            protocol: Some(6),
            src_ports: vec![],
            dst_ports: vec![80],
            tcp_flags: Some(0x02),
            fragment: true,
            action: FlowAction::RateLimit { bytes_per_sec: 1000 },
        });
        assert_eq!(by_text("[destination: 203.0.113.6/32]").parsed, Some((RouteKey::of(&full), attrs_of(&full, &s))));
        assert!(!by_text("[destination: 192.0.2.99/32]").owned, "no owner community");
        let range = by_text("[destination: 198.51.100.1/32]");
        assert!(range.owned && range.parsed.is_none(), "a port range is not a shape mamori announces");

        let uni = parse_rib(UNICAST, "ipv4", &s).unwrap();
        let rtbh = Mitigation::Rtbh { dst: "203.0.113.66/32".parse().unwrap() };
        let mine = uni.iter().find(|r| r.text == "203.0.113.66/32").unwrap();
        assert!(mine.owned);
        assert_eq!(mine.parsed, Some((RouteKey::of(&rtbh), attrs_of(&rtbh, &s))));
        assert!(!uni.iter().find(|r| r.text == "10.9.0.0/24").unwrap().owned, "a blackhole put there by hand");
        assert!(!uni.iter().find(|r| r.text == "198.18.0.0/15").unwrap().owned, "learned from a peer");

        assert!(parse_rib("{}\n", "ipv4", &s).unwrap().is_empty());
        assert!(parse_rib("", "ipv6", &s).unwrap().is_empty());
        assert!(parse_rib("[1,2]", "ipv4", &s).is_err());
        assert!(parse_rib("{\"x\": 3}", "ipv4", &s).is_err());
    }

    #[test]
    fn the_difference_touches_only_what_differs() {
        let s = shape();
        let mut have = parse_rib(FLOWS, "ipv4-flowspec", &s).unwrap();
        have.extend(parse_rib(UNICAST, "ipv4", &s).unwrap());
        let kept = reflection("203.0.113.5/32", FlowAction::Discard);
        let new = reflection("203.0.113.8/32", FlowAction::Discard);
        // 203.0.113.6 stays in force at another rate: updated in place.
        let rerated = Mitigation::Flowspec(FlowMatch {
            dst: "203.0.113.6/32".parse().unwrap(),
            src: Some("10.0.0.0/8".parse().unwrap()),
            protocol: Some(6),
            src_ports: vec![],
            dst_ports: vec![80],
            tcp_flags: Some(0x02),
            fragment: true,
            action: FlowAction::RateLimit { bytes_per_sec: 2000 },
        });
        let want = vec![
            ("A1".to_owned(), kept.clone()),
            ("A2".to_owned(), new.clone()),
            ("A3".to_owned(), rerated.clone()),
            // Two actions wanting the same route announce it once.
            ("A4".to_owned(), new.clone()),
        ];
        let p = plan(&want, &have, &s);
        assert_eq!(p.keep, vec![(RouteKey::of(&kept), vec!["A1".to_owned()])]);
        assert_eq!(p.announce, vec![(RouteKey::of(&new), new.clone(), vec!["A2".to_owned(), "A4".to_owned()])]);
        assert_eq!(p.update, vec![(RouteKey::of(&rerated), rerated.clone(), vec!["A3".to_owned()])]);
        // Only mamori's RTBH route, wanted by nothing, is withdrawn.
        let rtbh = Mitigation::Rtbh { dst: "203.0.113.66/32".parse().unwrap() };
        assert_eq!(p.withdraw, vec![RouteKey::of(&rtbh)]);
        assert_eq!(p.withdraw[0].text(), "203.0.113.66/32 -a ipv4");
        assert_eq!(p.foreign, 3, "the hand-made FlowSpec and blackhole routes and the peer's route");
        assert_eq!(p.unrecognised.len(), 1);

        // In line: nothing to do.
        let only: Vec<_> = parse_rib(FLOWS, "ipv4-flowspec", &s)
            .unwrap()
            .into_iter()
            .filter(|r| r.text.starts_with("[destination: 203.0.113.5/32]"))
            .collect();
        let p = plan(&[("A1".to_owned(), kept.clone())], &only, &s);
        assert_eq!(p.keep.len(), 1);
        assert!(p.announce.is_empty() && p.update.is_empty() && p.withdraw.is_empty());
        // Empty RIB (the speaker restarted): everything is announced, nothing withdrawn.
        let p = plan(&want, &[], &s);
        assert_eq!(p.announce.len(), 3);
        assert!(p.withdraw.is_empty() && p.keep.is_empty());
    }

    #[test]
    fn keys_name_the_route_for_del() {
        let k = RouteKey::of(&reflection("2001:db8::1/128", FlowAction::Discard));
        assert_eq!(
            k.text(),
            "-a ipv6-flowspec match destination 2001:db8::1/128 protocol ==udp source-port ==53 ==123"
        );
    }
}
