//! Destinations, how their numbers look and what a minute to them costs from Japan.
//!
//! Prices are rough retail IP-phone tariffs in yen per minute, billed per started minute. The premium
//! entries are the ranges international revenue-share fraud (IRSF) pumps traffic to: satellite
//! networks, small island states, and premium ranges of otherwise ordinary countries (Latvia,
//! Lithuania), so a detector can't simply trust or distrust a calling code.

use crate::number::{Form, Number};

/// How a destination is used, which decides who calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Ordinary trade and family destinations.
    Ordinary,
    /// Fraud-prone high-cost ranges; legitimate traffic is rare (ships, a few families).
    Premium,
}

/// One destination range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Destination {
    /// ITU calling code.
    pub cc: u16,
    /// ISO region (for people reading the truth file).
    pub region: &'static str,
    /// Yen per started minute.
    pub yen_per_min: u32,
    /// Ordinary or premium.
    pub class: Class,
    /// Leading digits of the national number (may be 0 digits long).
    pub prefix: u64,
    /// How many digits `prefix` has.
    pub prefix_len: u8,
    /// Digits of the whole national significant number.
    pub nsn_len: u8,
}

const fn ord(cc: u16, region: &'static str, yen_per_min: u32, nsn_len: u8) -> Destination {
    Destination { cc, region, yen_per_min, class: Class::Ordinary, prefix: 0, prefix_len: 0, nsn_len }
}

const fn prem(
    cc: u16,
    region: &'static str,
    yen_per_min: u32,
    prefix: u64,
    prefix_len: u8,
    nsn_len: u8,
) -> Destination {
    Destination { cc, region, yen_per_min, class: Class::Premium, prefix, prefix_len, nsn_len }
}

/// Every destination the generator dials. Indices into this table are stable (tests rely on the
/// named constants below).
pub(crate) const DESTINATIONS: &[Destination] = &[
    // 0..: ordinary destinations, cheapest first.
    ord(1, "US", 12, 10),
    ord(86, "CN", 30, 11),
    ord(82, "KR", 30, 10),
    ord(886, "TW", 40, 9),
    ord(852, "HK", 40, 8),
    ord(65, "SG", 40, 8),
    ord(44, "GB", 30, 10),
    ord(49, "DE", 30, 11),
    ord(33, "FR", 30, 9),
    ord(61, "AU", 30, 9),
    ord(39, "IT", 40, 10),
    ord(34, "ES", 40, 9),
    ord(31, "NL", 40, 9),
    ord(64, "NZ", 40, 9),
    ord(66, "TH", 50, 9),
    ord(60, "MY", 50, 9),
    ord(84, "VN", 60, 9),
    ord(62, "ID", 60, 10),
    ord(91, "IN", 60, 10),
    ord(55, "BR", 60, 11),
    ord(52, "MX", 60, 10),
    ord(90, "TR", 60, 10),
    ord(7, "RU", 60, 10),
    ord(63, "PH", 70, 10),
    ord(51, "PE", 80, 9),
    ord(971, "AE", 80, 9),
    ord(94, "LK", 90, 9),
    ord(880, "BD", 90, 10),
    ord(92, "PK", 90, 10),
    ord(976, "MN", 90, 8),
    ord(855, "KH", 90, 9),
    ord(977, "NP", 100, 10),
    ord(95, "MM", 100, 9),
    ord(371, "LV", 40, 8),
    ord(370, "LT", 40, 8),
    // 35..: premium / fraud-prone ranges.
    prem(881, "satellite (Iridium)", 500, 6, 1, 9),
    prem(882, "international networks", 400, 16, 2, 10),
    prem(883, "international networks", 300, 5100, 4, 11),
    prem(870, "Inmarsat", 450, 7, 1, 9),
    prem(53, "CU", 250, 5, 1, 8),
    prem(252, "SO", 300, 6, 1, 8),
    prem(232, "SL", 250, 7, 1, 8),
    prem(224, "GN", 250, 6, 1, 9),
    prem(371, "LV premium", 220, 90, 2, 8),
    prem(370, "LT premium", 200, 90, 2, 8),
    prem(688, "TV", 350, 90, 2, 6),
    prem(239, "ST", 300, 9, 1, 7),
    prem(674, "NR", 350, 55, 2, 7),
    prem(682, "CK", 300, 5, 1, 5),
    prem(245, "GW", 280, 9, 1, 9),
    prem(231, "LR", 250, 77, 2, 9),
    prem(690, "TK", 400, 7, 1, 5),
    prem(683, "NU", 350, 4, 1, 4),
    prem(677, "SB", 300, 7, 1, 7),
    prem(686, "KI", 300, 7, 1, 8),
    prem(246, "IO", 400, 38, 2, 7),
    prem(235, "TD", 250, 6, 1, 8),
    prem(960, "MV", 200, 7, 1, 7),
    prem(675, "PG", 200, 7, 1, 8),
];

/// Index of the first premium entry.
pub(crate) const FIRST_PREMIUM: usize = 35;
/// Inmarsat, which ships' crews are really called on (maritime businesses).
pub(crate) const INMARSAT: usize = 38;
/// Iridium satellite phones.
pub(crate) const IRIDIUM: usize = 35;
/// Cuba: premium-priced but with some real family traffic.
pub(crate) const CUBA: usize = 39;

/// Ordinary destinations by who calls them.
pub(crate) const TRADE_ASIA: &[usize] = &[1, 2, 3, 4, 5, 14, 15, 16, 17];
/// Trade partners in Europe (called in the Japanese evening, their morning).
pub(crate) const TRADE_EUROPE: &[usize] = &[6, 7, 8, 10, 11, 12];
/// The Americas and Oceania (called in the Japanese morning, their afternoon/evening).
pub(crate) const TRADE_AMERICAS: &[usize] = &[0, 9, 13, 19, 20];
/// Countries families in Japan call home to (moderately priced ones included).
pub(crate) const FAMILY: &[usize] = &[1, 2, 23, 16, 19, 24, 17, 14, 31, 32, 26, 27, 28, 0, 18, 29, 30];
/// Premium ranges fraudsters pump; rare island states and satellite first.
pub(crate) const FRAUD: &[usize] =
    &[35, 36, 37, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58];
/// Destinations with (almost) no legitimate traffic from Japan: targets of country campaigns.
pub(crate) const RARE: &[usize] = &[45, 46, 47, 48, 51, 52, 53, 54, 40, 41];
/// Moderately priced, plausible destinations a slow fraud hides in.
pub(crate) const MODERATE_FRAUD: &[usize] = &[31, 32, 26, 27, 28, 43, 44, 39];

impl Destination {
    /// A random number in this range.
    pub fn number(&self, rng: &mut fastrand::Rng, form: Form) -> Number {
        let rest = u32::from(self.nsn_len - self.prefix_len);
        let mut digits = self.prefix;
        for i in 0..rest {
            // A national number never starts with 0.
            let lo = if self.prefix_len == 0 && i == 0 { 1 } else { 0 };
            digits = digits * 10 + rng.u64(lo..10);
        }
        Number { digits, len: self.nsn_len, cc: self.cc, form }
    }

    /// The charge of an answered call of `secs` seconds.
    pub fn charge(&self, secs: u32) -> u32 {
        secs.div_ceil(60) * self.yen_per_min
    }
}

/// Domestic number kinds and their tariffs (IP phone to Japanese numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domestic {
    /// Fixed line (0AB-J): 8 yen per 3 minutes.
    Fixed,
    /// Mobile (070/080/090): 16 yen per minute.
    Mobile,
    /// IP phone (050): 8 yen per 3 minutes.
    Ip,
    /// Free dial (0120): free.
    FreeDial,
    /// Navi dial (0570): 10 yen per 20 seconds.
    NaviDial,
}

/// Area codes without the leading 0, with the digits of the whole national number.
const AREAS: &[(u64, u8)] = &[(3, 1), (6, 1), (52, 2), (45, 2), (11, 2), (92, 2), (75, 2), (78, 2), (22, 2), (82, 2)];

impl Domestic {
    /// A random kind, weighted like ordinary traffic.
    pub fn pick(rng: &mut fastrand::Rng) -> Self {
        match rng.u32(0..100) {
            0..55 => Domestic::Fixed,
            55..88 => Domestic::Mobile,
            88..94 => Domestic::Ip,
            94..98 => Domestic::FreeDial,
            _ => Domestic::NaviDial,
        }
    }

    /// A random number of this kind.
    pub fn number(self, rng: &mut fastrand::Rng, form: Form) -> Number {
        let (prefix, prefix_len, len) = match self {
            Domestic::Fixed => {
                let (area, area_len) = AREAS[rng.usize(0..AREAS.len())];
                (area, area_len, 9)
            }
            Domestic::Mobile => ([70, 80, 90][rng.usize(0..3)], 2, 10),
            Domestic::Ip => (50, 2, 10),
            Domestic::FreeDial => (120, 3, 9),
            Domestic::NaviDial => (570, 3, 9),
        };
        let mut digits = prefix;
        for _ in 0..(len - prefix_len) {
            digits = digits * 10 + rng.u64(0..10);
        }
        Number { digits, len, cc: 81, form }
    }

    /// The charge of an answered call of `secs` seconds.
    pub fn charge(self, secs: u32) -> u32 {
        match self {
            Domestic::Fixed | Domestic::Ip => secs.div_ceil(180) * 8,
            Domestic::Mobile => secs.div_ceil(60) * 16,
            Domestic::FreeDial => 0,
            Domestic::NaviDial => secs.div_ceil(20) * 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_constants_name_the_right_rows() {
        assert_eq!(DESTINATIONS[FIRST_PREMIUM].cc, 881);
        assert_eq!(DESTINATIONS[FIRST_PREMIUM - 1].class, Class::Ordinary);
        assert_eq!(DESTINATIONS[INMARSAT].cc, 870);
        assert_eq!(DESTINATIONS[IRIDIUM].cc, 881);
        assert_eq!(DESTINATIONS[CUBA].cc, 53);
        for &i in FRAUD.iter().chain(RARE) {
            assert_eq!(DESTINATIONS[i].class, Class::Premium, "{i}");
        }
        for &i in TRADE_ASIA.iter().chain(TRADE_EUROPE).chain(TRADE_AMERICAS) {
            assert_eq!(DESTINATIONS[i].class, Class::Ordinary, "{i}");
        }
        for d in DESTINATIONS {
            assert!(d.prefix_len < d.nsn_len && d.prefix < 10u64.pow(u32::from(d.prefix_len)).max(1), "{d:?}");
            let premium = d.yen_per_min >= 150;
            assert_eq!(premium, d.class == Class::Premium, "{d:?}");
        }
    }

    #[test]
    fn charges_round_up_to_the_unit() {
        let us = DESTINATIONS[0];
        assert_eq!(us.charge(0), 0);
        assert_eq!(us.charge(1), 12);
        assert_eq!(us.charge(60), 12);
        assert_eq!(us.charge(61), 24);
        assert_eq!(Domestic::Fixed.charge(181), 16);
        assert_eq!(Domestic::NaviDial.charge(21), 20);
    }
}
