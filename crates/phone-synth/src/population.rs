//! The subscriber lines: who they are, where they call from, and how they normally call.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::number::{Form, Number};
use crate::rng::{RngExt, lognormal};
use crate::tariff;

/// What sort of customer a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// A household: a few domestic calls a day, international rarely or to family.
    Residential,
    /// A small business: weekday business hours, some regular trade partners abroad.
    Business,
    /// A PBX or call centre: many concurrent calls by day, several presented numbers.
    Pbx,
}

/// Weights of the 24 hours of a day (Japan time) for placing calls.
pub(crate) type Hours = [u16; 24];

/// Households: mornings and evenings.
pub(crate) const RESIDENTIAL_HOURS: Hours =
    [1, 0, 0, 0, 0, 1, 2, 5, 8, 10, 12, 11, 9, 9, 9, 9, 10, 12, 14, 15, 14, 11, 6, 3];
/// Offices: 9–18 with a lunch dip.
pub(crate) const OFFICE_HOURS: Hours = [0, 0, 0, 0, 0, 0, 0, 1, 6, 16, 18, 17, 9, 16, 17, 16, 14, 10, 4, 2, 1, 0, 0, 0];
/// Call centres: long days.
pub(crate) const CALL_CENTRE_HOURS: Hours =
    [0, 0, 0, 0, 0, 0, 0, 1, 5, 14, 15, 15, 12, 14, 15, 14, 13, 12, 10, 8, 6, 2, 0, 0];
/// Calls to Europe: the Japanese late afternoon and evening is their morning.
pub(crate) const EUROPE_HOURS: Hours = [1, 0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 3, 4, 6, 9, 12, 12, 10, 8, 5, 3, 1];
/// Calls to the Americas: the Japanese early morning is their afternoon.
pub(crate) const AMERICAS_HOURS: Hours = [2, 1, 0, 0, 0, 1, 4, 10, 14, 12, 6, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 2];
/// Calls home to family: evenings, and late at night to the Americas.
pub(crate) const FAMILY_HOURS: Hours = [3, 2, 1, 0, 0, 0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 6, 8, 12, 14, 14, 12, 8, 5];
/// Ships at sea: any hour.
pub(crate) const ANY_HOURS: Hours = [4, 3, 3, 3, 3, 3, 4, 6, 8, 9, 9, 9, 8, 9, 9, 9, 8, 7, 6, 6, 5, 5, 5, 4];

/// One subscriber line.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// The line id written in the CDR (the line's main number).
    pub id: String,
    /// The subscriber who holds it (several business lines may share one).
    pub subscriber: String,
    /// `ja` or `en`: the language notices go out in.
    pub language: &'static str,
    /// Customer type.
    pub kind: LineKind,
    /// The numbers it presents (a PBX presents several).
    pub numbers: Vec<Number>,
    /// The SIP client address it normally calls from.
    pub home_ip: u32,
    /// A permanent change of address (router replaced, new DHCP lease) from this instant.
    pub moved: Option<(i64, u32)>,
    /// Calls from elsewhere for a while (a subscriber travelling with a softphone).
    pub away: Option<(i64, i64, u32)>,
    /// Expected domestic calls on a workday.
    pub domestic_per_day: f64,
    /// Expected international calls on a workday.
    pub intl_per_day: f64,
    /// Usual destinations abroad, most frequent first.
    pub intl: Vec<usize>,
    /// A new ordinary destination called from this instant on, at this rate per workday.
    pub new_destination: Option<(i64, usize, f64)>,
    /// When domestic calls happen.
    pub hours: &'static Hours,
    /// When international calls happen.
    pub intl_hours: &'static Hours,
    /// Activity on weekends relative to a workday.
    pub weekend_factor: f64,
    /// Activity on holidays relative to a workday.
    pub holiday_factor: f64,
    /// International activity on weekends and holidays relative to a workday.
    pub intl_off_day_factor: f64,
    /// Median length of an answered domestic call, seconds.
    pub domestic_median_secs: f64,
    /// Median length of an answered international call, seconds.
    pub intl_median_secs: f64,
    /// Share of attempts nobody answers.
    pub unanswered: f64,
}

impl Line {
    /// The address calls come from at `t`.
    pub fn ip_at(&self, t: i64) -> u32 {
        if let Some((from, to, ip)) = self.away
            && t >= from
            && t < to
        {
            return ip;
        }
        match self.moved {
            Some((from, ip)) if t >= from => ip,
            _ => self.home_ip,
        }
    }

    /// The number a call presents: the main number mostly, otherwise one of the line's other numbers
    /// (a PBX's direct lines, a small office's second and third number), the same way for ordinary
    /// calls and for calls of an episode, so that only fraud presents numbers the line never uses.
    pub fn presented(&self, rng: &mut fastrand::Rng) -> Number {
        if self.numbers.len() > 1 && rng.chance(0.4) {
            self.numbers[rng.usize(1..self.numbers.len())]
        } else {
            self.numbers[0]
        }
    }

    /// Did this line ever call abroad in its normal pattern?
    pub fn calls_abroad(&self) -> bool {
        self.intl_per_day > 0.0
    }
}

/// Every SIP client address in the data, as text, each stored once.
#[derive(Debug, Default)]
pub(crate) struct IpTable {
    /// Address text by index.
    pub text: Vec<String>,
    seen: HashSet<IpAddr>,
}

/// Kinds of addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IpKind {
    /// The carrier's closed network for IP phones (10/8).
    CarrierPrivate,
    /// A Japanese access network address (fibre, cable, mobile), v4 or v6.
    JapanPublic,
    /// A Japanese cloud / VPS range (fraud from a domestic server).
    JapanCloud,
    /// Anywhere else in the world (fraudsters, hotels abroad).
    Foreign,
}

const JP_V4: &[(u8, u8, u8)] =
    &[(153, 128, 255), (126, 0, 255), (60, 32, 47), (219, 96, 127), (114, 144, 191), (180, 0, 63), (49, 96, 111)];
const JP_CLOUD_V4: &[(u8, u8, u8)] = &[(133, 125, 130), (160, 16, 16), (153, 120, 127), (163, 43, 44)];
const FOREIGN_FIRST_OCTETS: &[u8] = &[
    5, 31, 37, 41, 45, 46, 62, 77, 78, 80, 85, 89, 91, 92, 94, 102, 103, 105, 141, 154, 176, 178, 179, 181, 185, 186,
    188, 190, 193, 194, 195, 196, 197, 200, 201, 212, 213,
];

impl IpTable {
    /// A new address of `kind`, never handed out before.
    pub fn fresh(&mut self, rng: &mut fastrand::Rng, kind: IpKind) -> u32 {
        loop {
            let ip = Self::random(rng, kind);
            if self.seen.insert(ip) {
                self.text.push(ip.to_string());
                return (self.text.len() - 1) as u32;
            }
        }
    }

    fn random(rng: &mut fastrand::Rng, kind: IpKind) -> IpAddr {
        let host = |rng: &mut fastrand::Rng| rng.u8(1..255);
        match kind {
            IpKind::CarrierPrivate => IpAddr::V4(Ipv4Addr::new(10, rng.u8(..), rng.u8(..), host(rng))),
            IpKind::JapanPublic if rng.chance(0.12) => {
                IpAddr::V6(Ipv6Addr::new(0x2400, 0x4050, rng.u16(..), rng.u16(..), 0, 0, 0, rng.u16(1..)))
            }
            IpKind::JapanPublic => {
                let (a, lo, hi) = JP_V4[rng.usize(0..JP_V4.len())];
                IpAddr::V4(Ipv4Addr::new(a, rng.u8(lo..=hi), rng.u8(..), host(rng)))
            }
            IpKind::JapanCloud => {
                let (a, lo, hi) = JP_CLOUD_V4[rng.usize(0..JP_CLOUD_V4.len())];
                IpAddr::V4(Ipv4Addr::new(a, rng.u8(lo..=hi), rng.u8(..), host(rng)))
            }
            IpKind::Foreign if rng.chance(0.08) => {
                IpAddr::V6(Ipv6Addr::new(0x2a00 | rng.u16(1..16), rng.u16(..), rng.u16(..), 0, 0, 0, 0, rng.u16(1..)))
            }
            IpKind::Foreign => {
                let a = FOREIGN_FIRST_OCTETS[rng.usize(0..FOREIGN_FIRST_OCTETS.len())];
                IpAddr::V4(Ipv4Addr::new(a, rng.u8(..), rng.u8(..), host(rng)))
            }
        }
    }
}

/// Area codes (without 0) and the digits of the subscriber part for the lines' own numbers.
const OWN_AREAS: &[(u64, u32)] = &[(3, 8), (6, 8), (52, 7), (45, 7), (11, 7), (92, 7), (75, 7), (22, 7)];

struct Numbers {
    used: HashSet<u64>,
}

impl Numbers {
    /// A fresh geographic (0AB-J) or 050 number; `block` consecutive numbers are reserved after it.
    fn fresh(&mut self, rng: &mut fastrand::Rng, ip_phone: bool, block: u64) -> Number {
        loop {
            let (area, sub_digits) = if ip_phone { (50, 8) } else { OWN_AREAS[rng.usize(0..OWN_AREAS.len())] };
            let scale = 10u64.pow(sub_digits);
            // Blocks start on a round number, as DID ranges do.
            let base = (rng.u64(scale / 10..scale - block) / block.max(1)) * block.max(1);
            let digits = area * scale + base;
            if (0..block.max(1)).all(|k| !self.used.contains(&(digits + k))) {
                for k in 0..block.max(1) {
                    self.used.insert(digits + k);
                }
                return Number { digits, len: 9 + u8::from(ip_phone), cc: 81, form: Form::National };
            }
        }
    }
}

/// Picks `n` distinct entries of `from`.
fn pick_distinct(rng: &mut fastrand::Rng, from: &[usize], n: usize) -> Vec<usize> {
    let mut v = from.to_vec();
    rng.shuffle(&mut v);
    v.truncate(n.min(from.len()));
    v
}

/// Trade destinations and the hours they're called in, by region.
fn trade_partners(rng: &mut fastrand::Rng, n: usize) -> (Vec<usize>, &'static Hours) {
    match rng.u32(0..100) {
        0..60 => (pick_distinct(rng, tariff::TRADE_ASIA, n), &OFFICE_HOURS),
        60..80 => (pick_distinct(rng, tariff::TRADE_EUROPE, n), &EUROPE_HOURS),
        _ => (pick_distinct(rng, tariff::TRADE_AMERICAS, n), &AMERICAS_HOURS),
    }
}

/// Family destinations; a few families are in Cuba, a premium-priced country.
fn family(rng: &mut fastrand::Rng) -> Vec<usize> {
    let n = 1 + usize::from(rng.chance(0.3));
    let mut v = pick_distinct(rng, tariff::FAMILY, n);
    if rng.chance(0.03) {
        v.insert(0, tariff::CUBA);
    }
    v
}

/// Builds `n` lines with their subscribers and addresses.
pub(crate) fn populate(rng: &mut fastrand::Rng, n: usize, ips: &mut IpTable) -> Vec<Line> {
    let mut numbers = Numbers { used: HashSet::with_capacity(n * 2) };
    let mut lines: Vec<Line> = Vec::with_capacity(n);
    let mut subscribers = 0u32;
    while lines.len() < n {
        let roll = rng.f64();
        let kind = if roll < 0.75 {
            LineKind::Residential
        } else if roll < 0.95 {
            LineKind::Business
        } else {
            LineKind::Pbx
        };
        subscribers += 1;
        let subscriber = format!("S{subscribers:07}");
        let language = if rng.chance(0.05) { "en" } else { "ja" };
        // Some businesses have two or three lines behind one router: one address, several lines.
        let siblings = if kind == LineKind::Business && rng.chance(0.3) { rng.usize(2..=3) } else { 1 };
        let home_ip = match kind {
            LineKind::Residential if rng.chance(0.6) => ips.fresh(rng, IpKind::CarrierPrivate),
            LineKind::Residential => ips.fresh(rng, IpKind::JapanPublic),
            _ if rng.chance(0.4) => ips.fresh(rng, IpKind::CarrierPrivate),
            _ => ips.fresh(rng, IpKind::JapanPublic),
        };
        for _ in 0..siblings {
            if lines.len() >= n {
                break;
            }
            let line = match kind {
                LineKind::Residential => residential(rng, &mut numbers),
                LineKind::Business => business(rng, &mut numbers),
                LineKind::Pbx => pbx(rng, &mut numbers),
            };
            lines.push(Line { subscriber: subscriber.clone(), language, home_ip, ..line });
        }
    }
    lines
}

fn blank(kind: LineKind, numbers: Vec<Number>) -> Line {
    Line {
        id: numbers.first().map(|n| n.to_text()).unwrap_or_default(),
        subscriber: String::new(),
        language: "ja",
        kind,
        numbers,
        home_ip: 0,
        moved: None,
        away: None,
        domestic_per_day: 0.0,
        intl_per_day: 0.0,
        intl: Vec::new(),
        new_destination: None,
        hours: &RESIDENTIAL_HOURS,
        intl_hours: &FAMILY_HOURS,
        weekend_factor: 1.0,
        holiday_factor: 1.0,
        intl_off_day_factor: 1.0,
        domestic_median_secs: 100.0,
        intl_median_secs: 300.0,
        unanswered: 0.2,
    }
}

fn residential(rng: &mut fastrand::Rng, numbers: &mut Numbers) -> Line {
    let ip_phone = rng.chance(0.4);
    let own = numbers.fresh(rng, ip_phone, 1);
    let mut line = blank(LineKind::Residential, vec![own]);
    line.domestic_per_day = lognormal(rng, 2.0, 0.7).min(15.0);
    line.weekend_factor = 1.0 + rng.f64() * 0.5;
    line.holiday_factor = line.weekend_factor;
    line.unanswered = 0.2 + rng.f64() * 0.1;
    let roll = rng.f64();
    if roll < 0.24 {
        // Calls family abroad now and then: once a week to once a month.
        line.intl = family(rng);
        line.intl_per_day = 1.0 / rng.f64_in(7.0, 30.0);
    } else if roll < 0.30 {
        // A family with relatives abroad: several calls a week.
        line.intl = family(rng);
        line.intl_per_day = rng.f64_in(0.3, 1.5);
    }
    line.intl_hours = &FAMILY_HOURS;
    line.intl_off_day_factor = 1.5;
    line.intl_median_secs = rng.f64_in(300.0, 1200.0);
    line
}

fn business(rng: &mut fastrand::Rng, numbers: &mut Numbers) -> Line {
    let block = if rng.chance(0.3) { 10 } else { 1 };
    let first = numbers.fresh(rng, false, block);
    let presented: Vec<Number> = (0..block.min(3)).map(|k| Number { digits: first.digits + k, ..first }).collect();
    let mut line = blank(LineKind::Business, presented);
    line.hours = &OFFICE_HOURS;
    line.domestic_per_day = lognormal(rng, 15.0, 0.6).min(120.0);
    line.weekend_factor = if rng.chance(0.3) { rng.f64_in(0.15, 0.4) } else { rng.f64_in(0.0, 0.08) };
    line.holiday_factor = rng.f64_in(0.0, 0.06);
    line.intl_off_day_factor = line.weekend_factor;
    line.domestic_median_secs = rng.f64_in(80.0, 200.0);
    line.unanswered = 0.15 + rng.f64() * 0.1;
    line.intl_median_secs = rng.f64_in(150.0, 480.0);
    if rng.chance(0.01) {
        // A fishing or shipping company calling its vessels over satellite: legitimate premium calls.
        line.intl = vec![tariff::INMARSAT, tariff::IRIDIUM];
        line.intl_per_day = rng.f64_in(0.3, 1.0);
        line.intl_hours = &ANY_HOURS;
        line.intl_off_day_factor = 0.8;
        line.intl_median_secs = rng.f64_in(120.0, 300.0);
    } else if rng.chance(0.55) {
        let n = rng.usize(1..=4);
        let (intl, hours) = trade_partners(rng, n);
        line.intl = intl;
        line.intl_hours = hours;
        line.intl_per_day = lognormal(rng, 0.8, 0.9).min(8.0);
    }
    line
}

fn pbx(rng: &mut fastrand::Rng, numbers: &mut Numbers) -> Line {
    let block = [10u64, 20, 50, 100][rng.usize(0..4)];
    let first = numbers.fresh(rng, false, block);
    let presented_count = rng.u64(2..=block.min(12));
    let presented: Vec<Number> = (0..presented_count).map(|k| Number { digits: first.digits + k, ..first }).collect();
    let mut line = blank(LineKind::Pbx, presented);
    line.hours = &CALL_CENTRE_HOURS;
    line.domestic_per_day = lognormal(rng, 400.0, 0.7).min(3000.0);
    if rng.chance(0.3) {
        // Open seven days a week.
        line.weekend_factor = rng.f64_in(0.4, 0.8);
        line.holiday_factor = line.weekend_factor;
    } else {
        line.weekend_factor = rng.f64_in(0.02, 0.12);
        line.holiday_factor = rng.f64_in(0.01, 0.06);
    }
    line.intl_off_day_factor = line.weekend_factor;
    line.domestic_median_secs = rng.f64_in(120.0, 300.0);
    line.unanswered = 0.25 + rng.f64() * 0.1;
    line.intl_median_secs = rng.f64_in(180.0, 600.0);
    if rng.chance(0.7) {
        let n = rng.usize(1..=4);
        let (mut intl, hours) = trade_partners(rng, n);
        if rng.chance(0.3) {
            intl.extend(pick_distinct(rng, tariff::FAMILY, 2));
            intl.dedup();
        }
        line.intl = intl;
        line.intl_hours = hours;
        line.intl_per_day = line.domestic_per_day * rng.f64_in(0.005, 0.06);
    }
    line
}

/// The profiles file (see `generate_with_profiles`).
pub(crate) fn profiles(lines: &[Line]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(lines.len() * 48);
    out.push_str(crate::PROFILES_HEADER);
    out.push('\n');
    for l in lines {
        let kind = match l.kind {
            LineKind::Residential => "residential",
            LineKind::Business => "business",
            LineKind::Pbx => "pbx",
        };
        let usual: Vec<String> = l.intl.iter().map(|&d| tariff::DESTINATIONS[d].cc.to_string()).collect();
        let new = match l.new_destination {
            Some((from, d, _)) => format!("{}@{}", tariff::DESTINATIONS[d].cc, crate::time::rfc3339(from)),
            None => String::new(),
        };
        let intl = if l.intl.is_empty() { 0.0 } else { l.intl_per_day };
        let _ = writeln!(out, "{},{kind},{},{:.2},{:.2},{new}", l.id, usual.join(";"), l.domestic_per_day, intl);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_has_every_kind_with_unique_ids_and_stable_addresses() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut ips = IpTable::default();
        let lines = populate(&mut rng, 2000, &mut ips);
        assert_eq!(lines.len(), 2000);
        let ids: HashSet<_> = lines.iter().map(|l| l.id.clone()).collect();
        assert_eq!(ids.len(), 2000, "line ids are unique");
        let count = |k| lines.iter().filter(|l| l.kind == k).count();
        assert!((1300..1700).contains(&count(LineKind::Residential)));
        assert!(count(LineKind::Pbx) > 40);
        assert!(lines.iter().filter(|l| l.kind == LineKind::Pbx).all(|l| l.numbers.len() >= 2));
        let shared = lines.windows(2).filter(|w| w[0].home_ip == w[1].home_ip).count();
        assert!(shared > 10, "some business lines share a router");
        let abroad = lines.iter().filter(|l| l.calls_abroad()).count();
        assert!((400..1200).contains(&abroad), "{abroad}");
        assert!(lines.iter().all(|l| l.id.starts_with('0') && (10..=11).contains(&l.id.len())));
    }
}
