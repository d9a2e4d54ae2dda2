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

/// The longest of a list of prefixes holding an address, found without a scan of
/// [`Prefix::contains`] calls: the detector and the overview look up every flow's two ends.
#[derive(Debug, Clone, Default)]
pub struct PrefixIndex {
    /// (network, mask, index in the list), longest first, and of equal lengths the last listed
    /// first: the first match is what `max_by_key(len)` over the list gives.
    v4: Vec<(u32, u32, usize)>,
    v6: Vec<(u128, u128, usize)>,
}

impl PrefixIndex {
    /// An index of `prefixes`.
    pub fn new(prefixes: &[Prefix]) -> Self {
        let mut order: Vec<(u8, usize)> = prefixes.iter().enumerate().map(|(i, p)| (p.len, i)).collect();
        order.sort_by(|a, b| b.cmp(a));
        let mut ix = PrefixIndex::default();
        for (len, i) in order {
            match prefixes[i].addr {
                IpAddr::V4(a) => {
                    let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
                    ix.v4.push((u32::from(a), m, i));
                }
                IpAddr::V6(a) => {
                    let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
                    ix.v6.push((u128::from(a), m, i));
                }
            }
        }
        ix
    }

    /// The index (in the list given to [`PrefixIndex::new`]) of the longest prefix holding
    /// `ip`, the last listed among equally long ones.
    pub fn lookup(&self, ip: IpAddr) -> Option<usize> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().find(|(n, m, _)| a & m == *n).map(|x| x.2)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().find(|(n, m, _)| a & m == *n).map(|x| x.2)
            }
        }
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
    fn index_finds_what_the_scan_finds() {
        // Nested, duplicated and equally long prefixes of both families.
        let list: Vec<Prefix> = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.0/24",
            "10.1.2.128/25",
            "192.0.2.0/24",
            "0.0.0.0/0",
            "198.51.100.7/32",
            "2001:db8::/32",
            "2001:db8:1::/48",
            "2001:db8:1::/48",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let scan = |ip: IpAddr| {
            list.iter().enumerate().filter(|(_, p)| p.contains(ip)).max_by_key(|(_, p)| p.len()).map(|(i, _)| i)
        };
        let ix = PrefixIndex::new(&list);
        let no_default = PrefixIndex::new(&list[..6]);
        let mut x = 0x1234_5678_9abc_def0u64;
        for n in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ip: IpAddr = match n % 4 {
                0 => std::net::Ipv4Addr::from(x as u32).into(),
                1 => std::net::Ipv4Addr::from(0x0a01_0200 | (x as u32 & 0x1_03ff)).into(),
                2 => std::net::Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0000_0000_0000u128 | (x as u128 & 0x1_ffff))
                    .into(),
                _ => std::net::Ipv4Addr::from(0xc633_6407 ^ (x as u32 & 1)).into(),
            };
            assert_eq!(ix.lookup(ip), scan(ip), "{ip}");
            let scan6 = list[..6].iter().enumerate().filter(|(_, p)| p.contains(ip)).max_by_key(|(_, p)| p.len());
            assert_eq!(no_default.lookup(ip), scan6.map(|(i, _)| i), "{ip}");
        }
    }

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
