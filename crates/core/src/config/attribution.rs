//! `[attribution]`: the RADIUS accounting listener that tells which subscriber held an address.
//!
//! The shared secrets of the RADIUS clients live here; [`RadiusSecret`] never shows them in
//! `Debug` output or when the configuration is serialized.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `[attribution]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionConfig {
    /// UDP address of the RADIUS accounting listener (RFC 2866). It runs in `mamori serve` only
    /// when at least one client is configured.
    pub listen: SocketAddr,
    /// A session's interim interval when its accounting packets carry no `Acct-Interim-Interval`.
    /// A session that never gets a Stop ends at its last update plus twice its interval.
    pub interim_default: SignedDuration,
    /// Sessions that ended more than this many days ago are deleted (1–365).
    pub retention_days: u32,
    /// CSV `user_name,subscriber_id` with a header mapping RADIUS `User-Name`s to subscriber ids.
    /// Without it (or for names it does not list), the User-Name is the subscriber id.
    pub subscribers_file: Option<PathBuf>,
    /// The NASes (BNGs, BRAS, CGNAT boxes) allowed to send accounting, each with its secret.
    pub clients: Vec<RadiusClientConfig>,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        AttributionConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 1813)),
            interim_default: SignedDuration::from_mins(10),
            retention_days: 90,
            subscribers_file: None,
            clients: Vec::new(),
        }
    }
}

/// `[[attribution.clients]]`: one RADIUS client (or a network of them sharing a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusClientConfig {
    /// A name for logs and metrics (never the secret).
    pub name: String,
    /// The client's source address, or a network in CIDR notation (`192.0.2.0/24`). The longest
    /// matching prefix wins.
    pub address: String,
    /// The shared secret.
    pub secret: RadiusSecret,
}

/// A RADIUS shared secret: redacted in `Debug` and when serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct RadiusSecret(String);

impl RadiusSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        RadiusSecret(secret.into())
    }

    /// The secret's bytes, for computing authenticators only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for RadiusSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RadiusSecret(<redacted>)")
    }
}

impl Serialize for RadiusSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for RadiusSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RadiusSecret)
    }
}

/// Parses `ADDR` or `ADDR/LEN` into an address and a prefix length.
pub fn parse_client_network(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.trim().parse().map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.trim().parse::<u8>() {
            Ok(l) if l <= max => l,
            _ => return Err(format!("`{s}`: prefix length must be 0–{max}")),
        },
    };
    Ok((addr, len))
}

impl AttributionConfig {
    /// Problems with these settings as `(key, detail)` pairs; empty when they are usable.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.interim_default <= SignedDuration::ZERO {
            out.push(("interim_default".to_owned(), "must be positive".to_owned()));
        }
        if !(1..=365).contains(&self.retention_days) {
            out.push(("retention_days".to_owned(), format!("{} is outside 1–365 days", self.retention_days)));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            if c.name.trim().is_empty() {
                out.push((format!("clients[{i}].name"), "must not be empty".to_owned()));
            } else if !names.insert(c.name.as_str()) {
                out.push((format!("clients[{i}].name"), format!("`{}` is used by two clients", c.name)));
            }
            if let Err(e) = parse_client_network(&c.address) {
                out.push((format!("clients[{i}].address"), e));
            }
            if c.secret.expose().is_empty() {
                out.push((format!("clients[{i}].secret"), "must not be empty".to_owned()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_printed() {
        let c = RadiusClientConfig {
            name: "bng".into(),
            address: "192.0.2.1".into(),
            secret: RadiusSecret::new("hunter2-very-secret"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
        assert_eq!(c.secret.expose(), b"hunter2-very-secret");
    }

    #[test]
    fn client_networks() {
        assert_eq!(parse_client_network("192.0.2.0/24").unwrap().1, 24);
        assert_eq!(parse_client_network("2001:db8::1").unwrap().1, 128);
        assert!(parse_client_network("192.0.2.0/33").is_err());
        assert!(parse_client_network("bng-1").is_err());
    }
}
