//! One call, and a line's ordinary traffic on one day.

use crate::number::{Form, Number};
use crate::population::{Hours, Line};
use crate::rng::{RngExt, lognormal};
use crate::tariff::{DESTINATIONS, Destination, Domestic};
use crate::time::{DayKind, HOUR, Period};

/// One call as the switch records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    /// Identifier (unique per call; written as 16 hex digits).
    pub id: u64,
    /// Start, Unix seconds.
    pub start: i64,
    /// Answered length in seconds (0: unanswered).
    pub secs: u32,
    /// Charge in yen.
    pub charge: u32,
    /// Index of the billed line.
    pub line: u32,
    /// Index of the SIP client address.
    pub ip: u32,
    /// Presented calling number.
    pub calling: Number,
    /// Dialled number.
    pub called: Number,
}

/// Hands out call ids: a counter through a bijective mixer, so ids are unique yet look random.
#[derive(Debug)]
pub(crate) struct IdSource {
    next: u64,
    key: u64,
}

/// SplitMix64's finaliser: a bijection on `u64`.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl IdSource {
    /// Ids for the data set generated from `seed`.
    pub fn new(seed: u64) -> Self {
        IdSource { next: 0, key: mix(seed ^ 0x6d61_6d6f_7269) }
    }

    /// The next id.
    pub fn next_id(&mut self) -> u64 {
        self.next += 1;
        mix(self.next.wrapping_add(self.key))
    }
}

/// A start time on day `day` with the hour drawn from `hours`.
pub(crate) fn start_in_day(rng: &mut fastrand::Rng, period: &Period, day: usize, hours: &Hours) -> i64 {
    period.day_start(day) + rng.weighted(hours) as i64 * HOUR + rng.i64(0..HOUR)
}

/// The dialled form of an international number: `010…` as dialled in Japan, sometimes E.164.
pub(crate) fn dialled_abroad(rng: &mut fastrand::Rng, e164_rate: f64) -> Form {
    if rng.chance(e164_rate) { Form::E164 } else { Form::InternationalPrefix }
}

/// What a call is, before knowing who places it.
#[derive(Debug, Clone, Copy)]
struct Leg {
    start: i64,
    secs: u32,
    charge: u32,
    called: Number,
}

/// Generates a line's ordinary traffic (domestic and usual international calls).
#[derive(Debug)]
pub(crate) struct Ordinary<'a> {
    /// The period.
    pub period: &'a Period,
    /// Multiplier on every rate (to reach a target row count).
    pub scale: f64,
    /// Share of numbers written in E.164.
    pub e164_rate: f64,
}

impl Ordinary<'_> {
    /// Expected calls of `line` on a day of `kind` (before scaling).
    pub fn expected(line: &Line, kind: DayKind, day_start: i64) -> f64 {
        let (f, fi) = match kind {
            DayKind::Workday => (1.0, 1.0),
            DayKind::Weekend => (line.weekend_factor, line.intl_off_day_factor),
            DayKind::Holiday => (line.holiday_factor, line.intl_off_day_factor),
        };
        let extra = match line.new_destination {
            Some((from, _, rate)) if day_start >= from => rate,
            _ => 0.0,
        };
        line.domestic_per_day * f + (line.intl_per_day + extra) * fi
    }

    /// Appends the calls of line `index` on day `day` to `out`.
    pub fn line_day(
        &self,
        rng: &mut fastrand::Rng,
        ids: &mut IdSource,
        line: &Line,
        index: u32,
        day: usize,
        out: &mut Vec<Call>,
    ) {
        let kind = self.period.kinds[day];
        let (f, fi) = match kind {
            DayKind::Workday => (1.0, 1.0),
            DayKind::Weekend => (line.weekend_factor, line.intl_off_day_factor),
            DayKind::Holiday => (line.holiday_factor, line.intl_off_day_factor),
        };
        for _ in 0..rng.poisson(line.domestic_per_day * f * self.scale) {
            let start = start_in_day(rng, self.period, day, line.hours);
            let dest = Domestic::pick(rng);
            let form = if rng.chance(self.e164_rate) { Form::E164 } else { Form::National };
            let called = dest.number(rng, form);
            let secs = self.answered(rng, line, line.domestic_median_secs, 7200.0);
            out.push(self.call(rng, ids, line, index, Leg { start, secs, charge: dest.charge(secs), called }));
        }
        if !line.intl.is_empty() {
            for _ in 0..rng.poisson(line.intl_per_day * fi * self.scale) {
                // Zipf-like: the first usual destination is called most.
                let k = usize::min(rng.weighted(&[6, 3, 2, 1, 1, 1, 1, 1]), line.intl.len() - 1);
                let dest = &DESTINATIONS[line.intl[k]];
                let start = start_in_day(rng, self.period, day, line.intl_hours);
                out.push(self.abroad(rng, ids, line, index, start, dest));
            }
        }
        if let Some((from, d, rate)) = line.new_destination {
            let day_end = self.period.day_start(day + 1);
            if day_end > from {
                for _ in 0..rng.poisson(rate * fi * self.scale) {
                    let start = start_in_day(rng, self.period, day, line.intl_hours).max(from);
                    out.push(self.abroad(rng, ids, line, index, start, &DESTINATIONS[d]));
                }
            }
        }
    }

    /// A call to one of the line's contacts at `dest`.
    fn abroad(
        &self,
        rng: &mut fastrand::Rng,
        ids: &mut IdSource,
        line: &Line,
        index: u32,
        start: i64,
        dest: &Destination,
    ) -> Call {
        // People call the same few numbers abroad: derive them from the line and the destination.
        let contact = rng.u64(0..4);
        let mut contact_rng = fastrand::Rng::with_seed(u64::from(index) << 24 ^ u64::from(dest.cc) << 4 ^ contact);
        let called = dest.number(&mut contact_rng, dialled_abroad(rng, self.e164_rate));
        let secs = self.answered(rng, line, line.intl_median_secs, 3.0 * 3600.0);
        self.call(rng, ids, line, index, Leg { start, secs, charge: dest.charge(secs), called })
    }

    /// A call length: 0 if unanswered, else log-normal around the median.
    fn answered(&self, rng: &mut fastrand::Rng, line: &Line, median: f64, cap: f64) -> u32 {
        if rng.chance(line.unanswered) { 0 } else { lognormal(rng, median, 0.9).clamp(3.0, cap) as u32 }
    }

    fn call(&self, rng: &mut fastrand::Rng, ids: &mut IdSource, line: &Line, index: u32, leg: Leg) -> Call {
        let calling = line.presented(rng);
        let Leg { start, secs, charge, called } = leg;
        Call { id: ids.next_id(), start, secs, charge, line: index, ip: line.ip_at(start), calling, called }
    }
}
