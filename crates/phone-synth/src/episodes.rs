//! Labelled episodes: toll fraud in its usual shapes, and the legitimate behaviour that looks like it.
//!
//! Fraud episodes (`fraud-*`) add calls. Hard negatives (`negative-*`) either add legitimate calls
//! (a business campaign, a long holiday call home, a ship in a storm, a night negotiation) or change
//! a line for good or for a while (new address, a trip, a new trade partner). Each episode takes its
//! lines for its time plus a day either side, so a line is never in two episodes at once and every
//! alarm can be attributed to exactly one label (or to none).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::calls::{Call, IdSource, dialled_abroad};
use crate::number::{Form, Number};
use crate::population::{IpKind, IpTable, Line, LineKind};
use crate::rng::{RngExt, lognormal};
use crate::tariff::{self, Class, DESTINATIONS, Domestic};
use crate::time::{DAY, DayKind, HOUR, MINUTE, Period, rfc3339};

/// One line of the truth file: what happened, to which lines, from where, to which countries, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthEpisode {
    /// Sequence number of the episode in this data set.
    pub episode: u32,
    /// `fraud-…` (should be acted on) or `negative-…` (legitimate; acting on it is a false positive).
    pub kind: String,
    /// The lines involved (`line_id` as in the CDR).
    pub line_ids: Vec<String>,
    /// First call (or the change) of the episode, RFC 3339 Japan time.
    pub start: String,
    /// End of the last call of the episode (for lasting changes: the end of the data).
    pub end: String,
    /// SIP client addresses the episode's calls came from.
    pub source_ips: Vec<String>,
    /// Calling codes called abroad (e.g. `"688"`).
    pub countries: Vec<String>,
    /// What those calling codes are (ISO regions, or the network for non-geographic codes).
    pub regions: Vec<String>,
    /// When it started for mamori's legal calendar: `day`, `night`, `weekend` or `holiday`.
    pub time_class: String,
    /// Calls the episode added to the CDR (0 for changes of a line's ordinary behaviour).
    pub calls: u64,
    /// Charges of those calls, yen.
    pub charge_jpy: u64,
    /// Most calls in progress at once (0 for changes of behaviour).
    pub max_concurrent: u32,
}

/// The time of day an episode is placed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Business hours on a workday.
    Day,
    /// Evening or night of a workday.
    Night,
    /// Any hour of a weekend or holiday.
    OffDay,
}

/// How a fraudster presents calling numbers.
#[derive(Debug, Clone, Copy)]
enum Calling {
    /// The line's own numbers (registered with its credentials, or a hijacked PBX).
    Own,
    /// One made-up number for every call.
    Fixed(Number),
    /// A different made-up number on every call.
    Random,
}

/// Calls on several parallel channels, each placing one call after another.
#[derive(Debug, Clone)]
struct Burst {
    line: u32,
    ip: u32,
    from: i64,
    until: i64,
    channels: u32,
    /// Channels start spread over this many seconds.
    ramp: i64,
    /// Destination index and the numbers called there.
    pool: Vec<(usize, Number)>,
    calling: Calling,
    /// Answered calls last this many minutes (uniform).
    minutes: (u32, u32),
    /// Share of attempts not answered.
    unanswered: f64,
    /// Share of short answered calls (testing the route).
    short: f64,
    /// Seconds between calls on one channel.
    gap: (i64, i64),
}

/// Totals of calls added by one episode.
#[derive(Debug, Default, Clone, Copy)]
struct Added {
    calls: u64,
    charge: u64,
    first: Option<i64>,
    last_end: i64,
}

impl Added {
    fn add(&mut self, other: Added) {
        self.calls += other.calls;
        self.charge += other.charge;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_end = self.last_end.max(other.last_end);
    }
}

/// Plans episodes and generates their calls.
pub(crate) struct Planner<'a> {
    rng: &'a mut fastrand::Rng,
    period: &'a Period,
    lines: &'a mut [Line],
    ips: &'a mut IpTable,
    ids: &'a mut IdSource,
    e164_rate: f64,
    reserved: Vec<Vec<(i64, i64)>>,
    /// Calls added by episodes, unsorted.
    pub calls: Vec<Call>,
    /// The truth, in planning order.
    pub truth: Vec<TruthEpisode>,
}

/// Fraud kinds with their weights; the first pass places one of each.
const FRAUD_KINDS: &[(&str, u32)] = &[
    ("fraud-stolen-credentials", 35),
    ("fraud-pbx-hijack", 25),
    ("fraud-campaign", 15),
    ("fraud-slow", 15),
    ("fraud-country-campaign", 6),
];

/// Country campaigns hit dozens of lines each: at most one fraud episode in ten is one.
const MAX_COUNTRY_CAMPAIGN_SHARE: usize = 10;

/// Hard-negative kinds with their weights.
const NEGATIVE_KINDS: &[(&str, u32)] = &[
    ("negative-business-burst", 20),
    ("negative-holiday-long-call", 18),
    ("negative-ip-change", 18),
    ("negative-traveller", 14),
    ("negative-new-destination", 12),
    ("negative-night-calls", 12),
    ("negative-maritime", 6),
];

fn kinds_in_order(rng: &mut fastrand::Rng, table: &[(&'static str, u32)], n: usize) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = table.iter().map(|(k, _)| *k).take(n).collect();
    let weights: Vec<u16> = table.iter().map(|(_, w)| *w as u16).collect();
    while out.len() < n {
        out.push(table[rng.weighted(&weights)].0);
    }
    rng.shuffle(&mut out);
    out
}

impl<'a> Planner<'a> {
    /// A planner over the population.
    pub fn new(
        rng: &'a mut fastrand::Rng,
        period: &'a Period,
        lines: &'a mut [Line],
        ips: &'a mut IpTable,
        ids: &'a mut IdSource,
        e164_rate: f64,
    ) -> Self {
        let reserved = vec![Vec::new(); lines.len()];
        Planner { rng, period, lines, ips, ids, e164_rate, reserved, calls: Vec::new(), truth: Vec::new() }
    }

    /// Places `negatives` hard negatives, then `frauds` fraud episodes. Episodes that find no free
    /// line are skipped (small populations).
    pub fn plan(&mut self, frauds: usize, negatives: usize) {
        // Negatives first: they change lines (addresses, trips) that fraud on a PBX must then respect.
        for kind in kinds_in_order(self.rng, NEGATIVE_KINDS, negatives) {
            self.negative(kind);
        }
        let mut whens: Vec<When> = (0..frauds).map(|i| [When::Night, When::Day, When::OffDay][i % 3]).collect();
        self.rng.shuffle(&mut whens);
        let mut kinds = kinds_in_order(self.rng, FRAUD_KINDS, frauds);
        let mut country_campaigns = 0;
        for kind in &mut kinds {
            if *kind == "fraud-country-campaign" {
                country_campaigns += 1;
                if country_campaigns > (frauds / MAX_COUNTRY_CAMPAIGN_SHARE).max(1) {
                    *kind = "fraud-stolen-credentials";
                }
            }
        }
        for (kind, when) in kinds.into_iter().zip(whens) {
            self.fraud(kind, when);
        }
    }

    // ---- choosing times and lines ------------------------------------------------------------

    fn days_of(&self, pred: impl Fn(DayKind) -> bool) -> Vec<usize> {
        (0..self.period.days()).filter(|&d| pred(self.period.kinds[d])).collect()
    }

    /// A start time of the given sort, leaving room for `length` seconds where possible.
    fn pick_start(&mut self, when: When, length: i64) -> i64 {
        let days = match when {
            When::Day | When::Night => self.days_of(|k| k == DayKind::Workday),
            When::OffDay => self.days_of(|k| k != DayKind::Workday),
        };
        let days = if days.is_empty() { (0..self.period.days()).collect() } else { days };
        let day = days[self.rng.usize(0..days.len())];
        let hour = match when {
            When::Day => self.rng.i64(9..17),
            When::Night => [19, 20, 21, 22, 23, 24, 25, 26, 27, 28][self.rng.usize(0..10)],
            When::OffDay => self.rng.i64(0..24),
        };
        let t = self.period.day_start(day) + hour * HOUR + self.rng.i64(0..HOUR);
        // Keep the episode inside the data where the period allows it.
        t.min(self.period.end() - length).max(self.period.start)
    }

    fn is_free(&self, line: usize, from: i64, to: i64) -> bool {
        self.reserved[line].iter().all(|&(a, b)| to + DAY <= a || from - DAY >= b)
    }

    fn reserve(&mut self, line: u32, from: i64, to: i64) {
        self.reserved[line as usize].push((from, to));
    }

    /// A random free line satisfying `pred`, reserved for `[from, to)`.
    fn pick_line(&mut self, from: i64, to: i64, pred: impl Fn(&Line) -> bool) -> Option<u32> {
        for _ in 0..1000 {
            let i = self.rng.usize(0..self.lines.len());
            if pred(&self.lines[i]) && self.is_free(i, from, to) {
                let i = i as u32;
                self.reserve(i, from, to);
                return Some(i);
            }
        }
        None
    }

    // ---- numbers and calls -------------------------------------------------------------------

    /// A pool of numbers in `dests`: fraud pumps a handful of revenue-share numbers per range.
    fn pool(&mut self, dests: &[usize], per_dest: (usize, usize)) -> Vec<(usize, Number)> {
        let mut pool = Vec::new();
        for &d in dests {
            for _ in 0..self.rng.usize(per_dest.0..=per_dest.1) {
                pool.push((d, DESTINATIONS[d].number(self.rng, Form::InternationalPrefix)));
            }
        }
        pool
    }

    fn distinct(&mut self, from: &[usize], n: usize) -> Vec<usize> {
        let mut v = from.to_vec();
        self.rng.shuffle(&mut v);
        v.truncate(n.clamp(1, from.len()));
        v
    }

    fn spoofed_number(&mut self) -> Number {
        let rng = &mut *self.rng;
        match rng.u32(0..10) {
            0..4 => Domestic::pick(rng).number(rng, Form::National),
            4..6 => Number { digits: rng.u64(100..100_000), len: rng.u8(3..=5), cc: 0, form: Form::Bare },
            6..9 => {
                let d = &DESTINATIONS[rng.usize(0..tariff::FIRST_PREMIUM)];
                d.number(rng, Form::E164)
            }
            _ => Number { digits: 0, len: 0, cc: 0, form: Form::Anonymous },
        }
    }

    /// Adds a call, giving it the next id.
    fn push_call(&mut self, call: Call) {
        self.calls.push(Call { id: self.ids.next_id(), ..call });
    }

    /// Places a burst's calls; returns what it added and the most calls in progress at once.
    fn burst(&mut self, b: &Burst) -> (Added, u32) {
        let mut added = Added::default();
        let until = b.until.min(self.period.end());
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for channel in 0..b.channels {
            let mut t = b.from + if channel == 0 { 0 } else { self.rng.i64(0..=b.ramp.max(1)) };
            while t < until {
                let (d, number) = b.pool[self.rng.usize(0..b.pool.len())];
                let dest = &DESTINATIONS[d];
                let roll = self.rng.f64();
                let secs = if roll < b.unanswered {
                    0
                } else if roll < b.unanswered + b.short {
                    self.rng.u32(3..60)
                } else {
                    self.rng.u32(b.minutes.0 * 60..=b.minutes.1 * 60)
                };
                let called = number.with_form(dialled_abroad(self.rng, self.e164_rate));
                let line = &self.lines[b.line as usize];
                let calling = match b.calling {
                    Calling::Own => line.presented(self.rng),
                    Calling::Fixed(n) => n,
                    Calling::Random => self.spoofed_number(),
                };
                let charge = dest.charge(secs);
                self.push_call(Call { id: 0, start: t, secs, charge, line: b.line, ip: b.ip, calling, called });
                added.calls += 1;
                added.charge += u64::from(charge);
                added.first = Some(added.first.map_or(t, |f| f.min(t)));
                added.last_end = added.last_end.max(t + i64::from(secs));
                spans.push((t, t + i64::from(secs).max(1)));
                t += i64::from(secs) + self.rng.i64(b.gap.0..=b.gap.1);
            }
        }
        (added, max_concurrent(&mut spans))
    }

    fn record(&mut self, kind: &str, lines: &[u32], ips: &[u32], dests: &[usize], added: Added, concurrent: u32) {
        let start = added.first.unwrap_or(self.period.start);
        let countries: BTreeSet<String> = dests.iter().map(|&d| DESTINATIONS[d].cc.to_string()).collect();
        let regions: BTreeSet<&str> = dests.iter().map(|&d| DESTINATIONS[d].region).collect();
        let ips: BTreeSet<u32> = ips.iter().copied().collect();
        self.truth.push(TruthEpisode {
            episode: self.truth.len() as u32 + 1,
            kind: kind.to_owned(),
            line_ids: lines.iter().map(|&l| self.lines[l as usize].id.clone()).collect(),
            start: rfc3339(start),
            end: rfc3339(added.last_end.max(start)),
            source_ips: ips.iter().map(|&i| self.ips.text[i as usize].clone()).collect(),
            countries: countries.into_iter().collect(),
            regions: regions.into_iter().map(str::to_owned).collect(),
            time_class: self.period.time_class(start).to_owned(),
            calls: added.calls,
            charge_jpy: added.charge,
            max_concurrent: concurrent,
        });
    }

    /// Records a lasting change of a line (no calls of its own).
    fn record_change(&mut self, kind: &str, line: u32, from: i64, to: i64, ip: Option<u32>, dest: Option<usize>) {
        let added = Added { calls: 0, charge: 0, first: Some(from), last_end: to };
        let ips: Vec<u32> = ip.into_iter().collect();
        let dests: Vec<usize> = dest.into_iter().collect();
        self.record(kind, &[line], &ips, &dests, added, 0);
    }

    // ---- fraud -------------------------------------------------------------------------------

    fn fraud(&mut self, kind: &str, when: When) {
        match kind {
            "fraud-stolen-credentials" => self.stolen_credentials(when),
            "fraud-pbx-hijack" => self.pbx_hijack(when),
            "fraud-campaign" => self.campaign(when),
            "fraud-slow" => self.slow(when),
            _ => self.country_campaign(when),
        }
    }

    fn fraud_ip(&mut self) -> u32 {
        let kind = if self.rng.chance(0.8) { IpKind::Foreign } else { IpKind::JapanCloud };
        self.ips.fresh(self.rng, kind)
    }

    fn calling_style(&mut self) -> Calling {
        match self.rng.u32(0..10) {
            0..3 => Calling::Own,
            3..5 => Calling::Fixed(self.spoofed_number()),
            _ => Calling::Random,
        }
    }

    /// A few short test calls before the real traffic: the fraudster checks the route works.
    fn probe(&mut self, line: u32, ip: u32, at: i64, pool: &[(usize, Number)], calling: Calling) -> (Added, i64) {
        if self.rng.chance(0.5) {
            return (Added::default(), at);
        }
        let probes = Burst {
            line,
            ip,
            from: at,
            until: at + 5 * MINUTE,
            channels: self.rng.u32(1..=3),
            ramp: 4 * MINUTE,
            pool: pool.to_vec(),
            calling,
            minutes: (0, 0),
            unanswered: 0.5,
            short: 0.5,
            gap: (DAY, DAY),
        };
        let (added, _) = self.burst(&probes);
        (added, at + self.rng.i64(MINUTE..=6 * MINUTE))
    }

    /// Stolen SIP credentials: a new address, many parallel calls to premium ranges.
    fn stolen_credentials(&mut self, when: When) {
        let length = (lognormal(self.rng, 2.0 * HOUR as f64, 0.6) as i64).clamp(30 * MINUTE, 8 * HOUR);
        let start = self.pick_start(when, length);
        let Some(line) = self.pick_line(start, start + length, |l| l.kind != LineKind::Pbx) else { return };
        let ip = self.fraud_ip();
        let n = self.rng.usize(1..=3);
        let dests = self.distinct(tariff::FRAUD, n);
        let pool = self.pool(&dests, (2, 12));
        let calling = self.calling_style();
        let (mut added, from) = self.probe(line, ip, start, &pool, calling);
        let channels = 3 + (lognormal(self.rng, 5.0, 0.7) as u32).min(27);
        let burst = Burst {
            line,
            ip,
            from,
            until: start + length,
            channels,
            ramp: self.rng.i64(MINUTE..=10 * MINUTE),
            pool,
            calling,
            minutes: (8, 60),
            unanswered: self.rng.f64_in(0.05, 0.3),
            short: 0.1,
            gap: (2, 40),
        };
        let (more, concurrent) = self.burst(&burst);
        added.add(more);
        self.record("fraud-stolen-credentials", &[line], &[ip], &dests, added, concurrent);
    }

    /// A hijacked PBX or router: from the line's own address and numbers.
    fn pbx_hijack(&mut self, when: When) {
        let length = (lognormal(self.rng, 2.0 * HOUR as f64, 0.6) as i64).clamp(30 * MINUTE, 6 * HOUR);
        let start = self.pick_start(when, length);
        // Mostly business PBXs; sometimes a household's IP-phone router (seed 003 names both).
        let router = self.rng.chance(0.2);
        let pred = move |l: &Line| (l.kind == LineKind::Residential) == router;
        let Some(line) = self.pick_line(start, start + length, pred) else { return };
        let ip = self.lines[line as usize].ip_at(start);
        let n = self.rng.usize(1..=4);
        let dests = self.distinct(tariff::FRAUD, n);
        let pool = self.pool(&dests, (2, 10));
        let (mut added, from) = self.probe(line, ip, start, &pool, Calling::Own);
        // A home router carries two or three calls at once; a PBX as many as its trunks.
        let channels = match self.lines[line as usize].kind {
            LineKind::Residential => self.rng.u32(2..=3),
            LineKind::Business => 3 + (lognormal(self.rng, 5.0, 0.7) as u32).min(7),
            LineKind::Pbx => 3 + (lognormal(self.rng, 5.0, 0.7) as u32).min(27),
        };
        let burst = Burst {
            line,
            ip,
            from,
            until: start + length,
            channels,
            ramp: self.rng.i64(MINUTE..=15 * MINUTE),
            pool,
            calling: Calling::Own,
            minutes: (5, 60),
            unanswered: self.rng.f64_in(0.05, 0.3),
            short: 0.1,
            gap: (2, 60),
        };
        let (more, concurrent) = self.burst(&burst);
        added.add(more);
        self.record("fraud-pbx-hijack", &[line], &[ip], &dests, added, concurrent);
    }

    /// One fraudster address working through several stolen lines in one night (or day).
    fn campaign(&mut self, when: When) {
        let spread = if when == When::Day { 2 * HOUR } else { 3 * HOUR };
        let start = self.pick_start(when, spread + 3 * HOUR);
        let ip = self.fraud_ip();
        let n = self.rng.usize(1..=2);
        let dests = self.distinct(tariff::FRAUD, n);
        let pool = self.pool(&dests, (3, 15));
        let calling = self.calling_style();
        let wanted = self.rng.usize(2..=10);
        let (mut added, mut lines, mut concurrent) = (Added::default(), Vec::new(), 0);
        for k in 0..wanted {
            let from = if k == 0 { start } else { start + self.rng.i64(0..spread) };
            let length = self.rng.i64(30 * MINUTE..=3 * HOUR);
            let Some(line) = self.pick_line(from, from + length, |l| l.kind != LineKind::Pbx) else { continue };
            let burst = Burst {
                line,
                ip,
                from,
                until: from + length,
                channels: self.rng.u32(2..=10),
                ramp: self.rng.i64(MINUTE..=5 * MINUTE),
                pool: pool.clone(),
                calling,
                minutes: (8, 60),
                unanswered: 0.15,
                short: 0.1,
                gap: (2, 30),
            };
            let (more, c) = self.burst(&burst);
            added.add(more);
            concurrent += c;
            lines.push(line);
        }
        if !lines.is_empty() {
            self.record("fraud-campaign", &lines, &[ip], &dests, added, concurrent);
        }
    }

    /// Many lines, many addresses, one rare country, all at once: what `phone.restrict-country` is for.
    fn country_campaign(&mut self, when: When) {
        let start = self.pick_start(when, 4 * HOUR);
        let dest = self.distinct(tariff::RARE, 1);
        let pool = self.pool(&dest, (5, 25));
        let bots: Vec<u32> = (0..self.rng.usize(5..=20)).map(|_| self.ips.fresh(self.rng, IpKind::Foreign)).collect();
        let most = (self.lines.len() / 50).clamp(5, 60);
        let wanted = self.rng.usize((most / 4).max(5).min(most)..=most);
        let length = self.rng.i64(HOUR..=4 * HOUR);
        let (mut added, mut lines, mut used_ips, mut concurrent) = (Added::default(), Vec::new(), Vec::new(), 0);
        for k in 0..wanted {
            let from = if k == 0 { start } else { start + self.rng.i64(0..20 * MINUTE) };
            let Some(line) = self.pick_line(from, from + length, |_| true) else { continue };
            let ip = bots[self.rng.usize(0..bots.len())];
            let calling = self.calling_style();
            let burst = Burst {
                line,
                ip,
                from,
                until: from + length,
                channels: self.rng.u32(3..=12),
                ramp: self.rng.i64(MINUTE..=5 * MINUTE),
                pool: pool.clone(),
                calling,
                minutes: (10, 60),
                unanswered: 0.15,
                short: 0.1,
                gap: (2, 30),
            };
            let (more, c) = self.burst(&burst);
            added.add(more);
            concurrent += c;
            lines.push(line);
            used_ips.push(ip);
        }
        if !lines.is_empty() {
            self.record("fraud-country-campaign", &lines, &used_ips, &dest, added, concurrent);
        }
    }

    /// Slow fraud: one to three calls at a time for many hours, to stay under the radar.
    fn slow(&mut self, when: When) {
        let length = self.rng.i64(6 * HOUR..=48 * HOUR);
        let start = self.pick_start(when, length);
        let Some(line) = self.pick_line(start, start + length, |_| true) else { return };
        let (ip, calling) = if self.rng.chance(0.5) {
            (self.lines[line as usize].ip_at(start), Calling::Own)
        } else {
            (self.fraud_ip(), self.calling_style())
        };
        let from_list = if self.rng.chance(0.5) { tariff::MODERATE_FRAUD } else { tariff::FRAUD };
        let n = self.rng.usize(1..=2);
        let dests = self.distinct(from_list, n);
        let pool = self.pool(&dests, (1, 5));
        let burst = Burst {
            line,
            ip,
            from: start,
            until: start + length,
            channels: self.rng.u32(1..=3),
            ramp: 30 * MINUTE,
            pool,
            calling,
            minutes: (3, 20),
            unanswered: 0.1,
            short: 0.05,
            gap: (5 * MINUTE, 90 * MINUTE),
        };
        let (added, concurrent) = self.burst(&burst);
        self.record("fraud-slow", &[line], &[ip], &dests, added, concurrent);
    }

    // ---- hard negatives ----------------------------------------------------------------------

    fn negative(&mut self, kind: &str) {
        match kind {
            "negative-business-burst" => self.business_burst(),
            "negative-holiday-long-call" => self.holiday_long_call(),
            "negative-ip-change" => self.ip_change(),
            "negative-traveller" => self.traveller(),
            "negative-new-destination" => self.new_destination(),
            "negative-night-calls" => self.night_calls(),
            _ => self.maritime(),
        }
    }

    /// A business campaign abroad in business hours: usual countries, sometimes new ones too.
    fn business_burst(&mut self) {
        let length = self.rng.i64(2 * HOUR..=6 * HOUR);
        let mut start = self.pick_start(When::Day, length);
        start = start.min(self.period.day_start(self.period.day_of(start).unwrap_or(0)) + 14 * HOUR);
        let Some(line) = self.pick_line(start, start + length, |l| l.kind != LineKind::Residential) else { return };
        let usual = self.lines[line as usize].intl.clone();
        let mut dests: Vec<usize> =
            usual.iter().copied().filter(|&d| DESTINATIONS[d].class == Class::Ordinary).collect();
        if dests.is_empty() || self.rng.chance(0.4) {
            let n = self.rng.usize(1..=3);
            dests.extend(self.distinct(tariff::TRADE_ASIA, n));
            dests.sort_unstable();
            dests.dedup();
        }
        let pool = self.pool(&dests, (20, 80));
        let channels =
            if self.lines[line as usize].kind == LineKind::Pbx { self.rng.u32(2..=10) } else { self.rng.u32(1..=3) };
        let burst = Burst {
            line,
            ip: self.lines[line as usize].ip_at(start),
            from: start,
            until: start + length,
            channels,
            ramp: 30 * MINUTE,
            pool,
            calling: Calling::Own,
            minutes: (1, 15),
            unanswered: 0.25,
            short: 0.15,
            gap: (30, 10 * MINUTE),
        };
        let (added, concurrent) = self.burst(&burst);
        self.record("negative-business-burst", &[line], &[burst.ip], &dests, added, concurrent);
    }

    /// A household calling family abroad for hours on a holiday, sometimes its first call abroad ever.
    fn holiday_long_call(&mut self) {
        let length = 4 * HOUR;
        let day_start = {
            let t = self.pick_start(When::OffDay, length);
            self.period.day_start(self.period.day_of(t).unwrap_or(0))
        };
        let start = day_start + self.rng.i64(8..21) * HOUR + self.rng.i64(0..HOUR);
        let first_ever = self.rng.chance(0.5);
        let pred = move |l: &Line| l.kind == LineKind::Residential && (l.intl.is_empty() == first_ever);
        let Some(line) = self.pick_line(start, start + length, pred) else { return };
        let dest = match self.lines[line as usize].intl.first() {
            Some(&d) if self.rng.chance(0.5) => d,
            _ => tariff::FAMILY[self.rng.usize(0..tariff::FAMILY.len())],
        };
        let number = DESTINATIONS[dest].number(self.rng, Form::InternationalPrefix);
        let ip = self.lines[line as usize].ip_at(start);
        let calling = self.lines[line as usize].presented(self.rng);
        let mut added = Added::default();
        let mut t = start;
        // One to three long calls: the line drops and they call back.
        for _ in 0..self.rng.u32(1..=3) {
            let secs = self.rng.u32(40 * 60..=120 * 60);
            let charge = DESTINATIONS[dest].charge(secs);
            let called = number.with_form(dialled_abroad(self.rng, self.e164_rate));
            self.push_call(Call { id: 0, start: t, secs, charge, line, ip, calling, called });
            added.add(Added { calls: 1, charge: u64::from(charge), first: Some(t), last_end: t + i64::from(secs) });
            t += i64::from(secs) + self.rng.i64(5..120);
        }
        self.record("negative-holiday-long-call", &[line], &[ip], &[dest], added, 1);
    }

    /// A router replaced or a new lease: the line's address changes for good.
    fn ip_change(&mut self) {
        let at = self.period.start + self.rng.i64(0..(self.period.end() - self.period.start).max(1));
        let Some(line) = self.pick_line(at, at + DAY, |l| l.moved.is_none() && l.away.is_none()) else { return };
        let kind = if self.ips.text[self.lines[line as usize].home_ip as usize].starts_with("10.") {
            IpKind::CarrierPrivate
        } else {
            IpKind::JapanPublic
        };
        let ip = self.ips.fresh(self.rng, kind);
        self.lines[line as usize].moved = Some((at, ip));
        let end = self.period.end();
        self.record_change("negative-ip-change", line, at, end, Some(ip), None);
    }

    /// A subscriber travelling with a softphone: ordinary calls from elsewhere for a few days.
    fn traveller(&mut self) {
        let length = self.rng.i64(2..=7) * DAY;
        let from = self.pick_start(When::OffDay, length);
        let pred = |l: &Line| l.kind != LineKind::Pbx && l.moved.is_none() && l.away.is_none();
        let Some(line) = self.pick_line(from, from + length, pred) else { return };
        let abroad = self.rng.chance(0.6);
        let ip = self.ips.fresh(self.rng, if abroad { IpKind::Foreign } else { IpKind::JapanPublic });
        let to = (from + length).min(self.period.end());
        self.lines[line as usize].away = Some((from, to, ip));
        let mut added = Added { calls: 0, charge: 0, first: Some(from), last_end: to };
        let mut dests = Vec::new();
        if abroad && self.rng.chance(0.5) {
            // Calls to local numbers where they are (a hotel, a restaurant).
            let d = [0usize, 1, 2, 14, 6, 7, 9, 16][self.rng.usize(0..8)];
            dests.push(d);
            let calling = self.lines[line as usize].presented(self.rng);
            for _ in 0..self.rng.u32(1..=5) {
                let t = from + self.rng.i64(0..(to - from).max(1));
                let secs = self.rng.u32(30..900);
                let charge = DESTINATIONS[d].charge(secs);
                let form = dialled_abroad(self.rng, self.e164_rate);
                let called = DESTINATIONS[d].number(self.rng, form);
                self.push_call(Call { id: 0, start: t, secs, charge, line, ip, calling, called });
                added.calls += 1;
                added.charge += u64::from(charge);
            }
        }
        self.record("negative-traveller", &[line], &[ip], &dests, added, u32::from(added.calls > 0));
    }

    /// A line starts calling a new ordinary country regularly (a new trade partner, a relative moved).
    fn new_destination(&mut self) {
        let span = self.period.end() - self.period.start;
        let at = self.period.start + self.rng.i64(span / 6..=span * 2 / 3);
        let pred = |l: &Line| l.new_destination.is_none() && (l.kind != LineKind::Residential || l.calls_abroad());
        let Some(line) = self.pick_line(at, at + 2 * DAY, pred) else { return };
        let usual = self.lines[line as usize].intl.clone();
        let fresh: Vec<usize> = (0..tariff::FIRST_PREMIUM).filter(|d| !usual.contains(d)).collect();
        let dest = fresh[self.rng.usize(0..fresh.len())];
        let rate = match self.lines[line as usize].kind {
            LineKind::Residential => self.rng.f64_in(0.2, 1.0),
            LineKind::Business => self.rng.f64_in(0.5, 3.0),
            LineKind::Pbx => self.rng.f64_in(2.0, 10.0),
        };
        self.lines[line as usize].new_destination = Some((at, dest, rate));
        let end = self.period.end();
        self.record_change("negative-new-destination", line, at, end, None, Some(dest));
    }

    /// Legitimate calls abroad at night: a negotiation with a partner in another time zone.
    fn night_calls(&mut self) {
        let length = self.rng.i64(HOUR..=5 * HOUR);
        let start = self.pick_start(When::Night, length);
        let pred = |l: &Line| l.kind != LineKind::Residential && l.calls_abroad();
        let Some(line) = self.pick_line(start, start + length, pred) else { return };
        let mut dests: Vec<usize> = self.lines[line as usize].intl.iter().copied().take(2).collect();
        if dests.is_empty() || self.rng.chance(0.3) {
            dests.push(tariff::TRADE_AMERICAS[self.rng.usize(0..tariff::TRADE_AMERICAS.len())]);
        }
        let pool = self.pool(&dests, (1, 4));
        let burst = Burst {
            line,
            ip: self.lines[line as usize].ip_at(start),
            from: start,
            until: start + length,
            channels: self.rng.u32(1..=2),
            ramp: 20 * MINUTE,
            pool,
            calling: Calling::Own,
            minutes: (5, 40),
            unanswered: 0.2,
            short: 0.1,
            gap: (2 * MINUTE, 30 * MINUTE),
        };
        let (added, concurrent) = self.burst(&burst);
        self.record("negative-night-calls", &[line], &[burst.ip], &dests, added, concurrent);
    }

    /// A shipping company calling its vessels over satellite through a storm, night included.
    fn maritime(&mut self) {
        let length = self.rng.i64(4 * HOUR..=12 * HOUR);
        let when = [When::Day, When::Night, When::OffDay][self.rng.usize(0..3)];
        let start = self.pick_start(when, length);
        let Some(line) = self.pick_line(start, start + length, |l| l.kind == LineKind::Business) else { return };
        // It has always called its ships now and then: make that its ordinary pattern.
        let l = &mut self.lines[line as usize];
        if !l.intl.contains(&tariff::INMARSAT) {
            l.intl = vec![tariff::INMARSAT, tariff::IRIDIUM];
            l.intl_per_day = 0.5;
            l.intl_hours = &crate::population::ANY_HOURS;
            l.intl_off_day_factor = 0.8;
        }
        let dests = vec![tariff::INMARSAT, tariff::IRIDIUM];
        let pool = self.pool(&dests, (1, 3));
        let burst = Burst {
            line,
            ip: self.lines[line as usize].ip_at(start),
            from: start,
            until: start + length,
            channels: self.rng.u32(1..=2),
            ramp: HOUR,
            pool,
            calling: Calling::Own,
            minutes: (2, 10),
            unanswered: 0.3,
            short: 0.1,
            gap: (10 * MINUTE, 60 * MINUTE),
        };
        let (added, concurrent) = self.burst(&burst);
        self.record("negative-maritime", &[line], &[burst.ip], &dests, added, concurrent);
    }
}

/// Most intervals overlapping at one instant.
fn max_concurrent(spans: &mut [(i64, i64)]) -> u32 {
    let mut events: Vec<(i64, i32)> = spans.iter().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    // Ends before starts at the same instant: back-to-back calls don't overlap.
    events.sort_unstable();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    most as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_back_calls_are_not_concurrent() {
        assert_eq!(max_concurrent(&mut [(0, 10), (10, 20), (5, 15)]), 2);
        assert_eq!(max_concurrent(&mut []), 0);
    }
}
