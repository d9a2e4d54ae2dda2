//! Who or what an action is aimed at, and who took part in a decision.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The target of a measure's action, also the shard key of its detector state
/// (DESIGN.md "Scale": records carry the measure's subject key).
///
/// Textual form: `kind:value`, e.g. `line:0312345678`, `ip:203.0.113.7`, `country:882`,
/// `prefix:198.51.100.0/24`, `fqdn:example.com`, `subscriber:S-1001`, `network`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A telephone line (its line id).
    Line(String),
    /// A source or destination IP address.
    Ip(String),
    /// A country by its calling code or ISO code.
    Country(String),
    /// A destination prefix.
    Prefix(String),
    /// A domain name.
    Fqdn(String),
    /// A subscriber (account).
    Subscriber(String),
    /// The whole network (aggregate measures, publications).
    Network,
}

impl Target {
    /// The kind prefix of the textual form.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Line(_) => "line",
            Target::Ip(_) => "ip",
            Target::Country(_) => "country",
            Target::Prefix(_) => "prefix",
            Target::Fqdn(_) => "fqdn",
            Target::Subscriber(_) => "subscriber",
            Target::Network => "network",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Line(v)
            | Target::Ip(v)
            | Target::Country(v)
            | Target::Prefix(v)
            | Target::Fqdn(v)
            | Target::Subscriber(v) => write!(f, "{}:{v}", self.kind()),
            Target::Network => f.write_str("network"),
        }
    }
}

/// A target string that doesn't parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad target `{0}`: expected line:ID, ip:ADDR, country:CODE, prefix:CIDR, fqdn:NAME, subscriber:ID or network")]
pub struct BadTarget(pub String);

impl FromStr for Target {
    type Err = BadTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "network" {
            return Ok(Target::Network);
        }
        let (kind, value) = s.split_once(':').ok_or_else(|| BadTarget(s.to_owned()))?;
        if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
            return Err(BadTarget(s.to_owned()));
        }
        let v = value.to_owned();
        Ok(match kind {
            "line" => Target::Line(v),
            "ip" => Target::Ip(v),
            "country" => Target::Country(v),
            "prefix" => Target::Prefix(v),
            "fqdn" => Target::Fqdn(v),
            "subscriber" => Target::Subscriber(v),
            _ => return Err(BadTarget(s.to_owned())),
        })
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A subscriber (contract holder) id, as the carrier's customer system names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriberId(pub String);

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who did something: a named person, the subscriber, or mamori itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    /// mamori's automatic decisions.
    pub fn system() -> Self {
        Actor("mamori".into())
    }
    /// A subscriber acting for themselves.
    pub fn subscriber(id: &SubscriberId) -> Self {
        Actor(format!("subscriber:{}", id.0))
    }
    /// Whether this is mamori itself.
    pub fn is_system(&self) -> bool {
        self.0 == "mamori"
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        for s in ["line:0312345678", "ip:203.0.113.7", "country:882", "prefix:2001:db8::/32", "network"] {
            let t: Target = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn bad_targets_are_rejected() {
        for s in ["", "line:", "planet:mars", "nocolon", "line:a\u{0}b"] {
            assert!(s.parse::<Target>().is_err(), "{s:?} parsed");
        }
    }
}
