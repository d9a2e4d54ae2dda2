//! IP prefixes (CIDR), parsed and checked.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// A prefix that doesn't parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad prefix `{0}`: expected ADDR/LEN")]
pub struct BadPrefix(pub String);

impl Prefix {
    /// The prefix of `len` bits around `addr` (longer lengths are clamped to the host length).
    pub fn new(addr: IpAddr, len: u8) -> Self {
        let len = len.min(if addr.is_ipv4() { 32 } else { 128 });
        Prefix { addr: mask(addr, len), len }
    }

    /// The host prefix of one address (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        Prefix::new(addr, 128)
    }

    /// Its network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Its length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether it is a /0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` lies inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

impl FromStr for Prefix {
    type Err = BadPrefix;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPrefix(s.to_owned());
        match s.split_once('/') {
            Some((a, l)) => {
                let addr: IpAddr = a.parse().map_err(|_| bad())?;
                let len: u8 = l.parse().map_err(|_| bad())?;
                if len > if addr.is_ipv4() { 32 } else { 128 } {
                    return Err(bad());
                }
                Ok(Prefix::new(addr, len))
            }
            None => Ok(Prefix::host(s.parse().map_err(|_| bad())?)),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl serde::Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_contains_display() {
        let p: Prefix = "203.0.113.77/24".parse().unwrap();
        assert_eq!(p.to_string(), "203.0.113.0/24");
        assert!(p.contains("203.0.113.1".parse().unwrap()));
        assert!(!p.contains("203.0.114.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        assert_eq!("192.0.2.1".parse::<Prefix>().unwrap().to_string(), "192.0.2.1/32");
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("2001:db8::/32".parse::<Prefix>().unwrap().contains("2001:db8::5".parse().unwrap()));
    }
}
