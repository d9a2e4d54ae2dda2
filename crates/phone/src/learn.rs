//! A normal level learned from history with a lag, so an attack that ramps up is never learned
//! as normal while it ramps.
//!
//! Values observed in the current and the previous clock hour are held back; an hour's maximum
//! joins the learned peak only once the next hour has ended, and only if nothing suspicious
//! ("spoiled") happened in it. The peak decays with a half-life, so a line's level follows its
//! use over weeks.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A lagged, decaying peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaggedPeak {
    peak: f64,
    peak_at: Option<Timestamp>,
    hour: i64,
    current: f64,
    previous: f64,
    current_spoiled: bool,
    previous_spoiled: bool,
}

impl Default for LaggedPeak {
    fn default() -> Self {
        LaggedPeak {
            peak: 0.0,
            peak_at: None,
            hour: i64::MIN,
            current: 0.0,
            previous: 0.0,
            current_spoiled: false,
            previous_spoiled: false,
        }
    }
}

fn decay(value: f64, since: Timestamp, t: Timestamp, half_life: SignedDuration) -> f64 {
    let half = half_life.as_secs_f64().max(1.0);
    value * half_power(t.duration_since(since).as_secs_f64().max(0.0) / half)
}

/// Places of [`half_power`]'s memo.
const POWERS: usize = 64;

thread_local! {
    /// Exponents and their powers (as bits); the exponent `u64::MAX` (a NaN, which `decay` never
    /// asks for) marks an empty place.
    static HALF_POWERS: std::cell::RefCell<[(u64, u64); POWERS]> =
        const { std::cell::RefCell::new([(u64::MAX, 0); POWERS]) };
}

/// `0.5^x`, remembered for the last exponents by their bits, so the same `x` gives the same
/// number. Levels learned in the same hour are committed at the same instant, so every
/// evaluation asks for the same few exponents many times over (the countries', the lines' over
/// the floor), and `powf` was the largest single cost of an evaluation.
fn half_power(x: f64) -> f64 {
    let key = x.to_bits();
    let place = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % POWERS;
    HALF_POWERS.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else { return 0.5f64.powf(x) };
        match memo.get_mut(place) {
            Some((k, power)) if *k == key => f64::from_bits(*power),
            Some(slot) => {
                let power = 0.5f64.powf(x);
                *slot = (key, power.to_bits());
                power
            }
            None => 0.5f64.powf(x),
        }
    })
}

impl LaggedPeak {
    /// The learned normal level at `t`.
    pub fn normal(&self, t: Timestamp, half_life: SignedDuration) -> f64 {
        self.peak_at.map_or(0.0, |at| decay(self.peak, at, t, half_life))
    }

    /// A time before which [`normal`](Self::normal) is surely above `level` (until the next
    /// [`observe`](Self::observe)), or `None` if there is none worth having. The bound is 1 %
    /// short of the exact crossing and a second earlier, a margin far beyond floating-point
    /// rounding, so a caller may skip computing the normal before it and get the same answers.
    pub fn surely_above_until(&self, level: f64, half_life: SignedDuration) -> Option<Timestamp> {
        let at = self.peak_at?;
        // (Also false for NaN.)
        let worth_it = level > 0.0 && self.peak > 2.0 * level;
        if !worth_it {
            return None;
        }
        let half = half_life.as_secs_f64().max(1.0);
        let secs = half * (self.peak / level).log2() * 0.99 - 1.0;
        let sane = secs > 0.0 && secs < 1e12;
        if !sane {
            return None;
        }
        at.checked_add(SignedDuration::from_secs_f64(secs)).ok()
    }

    /// When the learned peak was last committed (what [`surely_above_until`](Self::surely_above_until)
    /// depends on).
    pub fn peak_at(&self) -> Option<Timestamp> {
        self.peak_at
    }

    /// Records a value seen at `t`; `spoiled` keeps its hour (and what else it saw) out of the
    /// learned level.
    #[inline]
    pub fn observe(&mut self, t: Timestamp, value: f64, spoiled: bool, half_life: SignedDuration) {
        // Every hot line observes twice per evaluation, and nearly always within the same hour:
        // only the change of hour, which commits, is out of line.
        let hour = t.as_second().div_euclid(3600);
        if hour != self.hour {
            self.roll(hour, t, half_life);
        }
        if value > self.current {
            self.current = value;
        }
        self.current_spoiled |= spoiled;
    }

    fn commit(&mut self, value: f64, t: Timestamp, half_life: SignedDuration) {
        let normal = self.normal(t, half_life);
        self.peak = normal.max(value);
        self.peak_at = Some(t);
    }

    /// Moves to `hour` (that of `t`, not the current one), committing what the lag allows.
    #[cold]
    #[inline(never)]
    fn roll(&mut self, hour: i64, t: Timestamp, half_life: SignedDuration) {
        if self.hour != i64::MIN {
            if !self.previous_spoiled {
                self.commit(self.previous, t, half_life);
            }
            if hour > self.hour + 1 {
                // The current hour is now at least two hours old.
                if !self.current_spoiled {
                    self.commit(self.current, t, half_life);
                }
                self.previous = 0.0;
                self.previous_spoiled = false;
            } else {
                self.previous = self.current;
                self.previous_spoiled = self.current_spoiled;
            }
        }
        self.current = 0.0;
        self.current_spoiled = false;
        self.hour = hour;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_powers_are_powf_bit_for_bit() {
        // Exponents that repeat, collide in the memo and differ by the last bit.
        let mut x = 0.0f64;
        for i in 0..20_000u32 {
            let e = if i % 3 == 0 { f64::from(i % 97) / 7.0 } else { x };
            let e = if i % 11 == 0 { f64::from_bits(e.to_bits() + 1) } else { e };
            assert_eq!(half_power(e).to_bits(), 0.5f64.powf(e).to_bits(), "{e}");
            assert_eq!(half_power(e).to_bits(), 0.5f64.powf(e).to_bits(), "{e} again");
            x += 0.37;
        }
    }

    const HALF: SignedDuration = SignedDuration::from_hours(24 * 14);

    fn at(mins: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 / 3600 * 3600 + mins * 60).unwrap()
    }

    #[test]
    fn a_ramp_is_not_learned_while_it_ramps() {
        let mut p = LaggedPeak::default();
        for m in 0..=180 {
            p.observe(at(m), 100.0, false, HALF);
        }
        assert!(p.normal(at(180), HALF) > 99.0, "ordinary use learned after the lag");
        // A ramp within the next hour: none of it is normal yet.
        for (i, m) in (181..240).enumerate() {
            p.observe(at(m), 100.0 * (i as f64 + 1.0), false, HALF);
            assert!(p.normal(at(m), HALF) < 101.0);
        }
    }

    #[test]
    fn surely_above_until_is_a_lower_bound() {
        let mut p = LaggedPeak::default();
        for m in [0, 60, 120, 180] {
            p.observe(at(m), 3.0, false, HALF);
        }
        let until = p.surely_above_until(0.01, HALF).unwrap();
        assert!(p.normal(until, HALF) > 0.01);
        let exact = p.peak_at().unwrap().checked_add(SignedDuration::from_secs_f64(
            HALF.as_secs_f64() * (p.normal(p.peak_at().unwrap(), HALF) / 0.01).log2(),
        ));
        let exact = exact.unwrap();
        assert!(until < exact && p.normal(exact.checked_add(SignedDuration::from_hours(1)).unwrap(), HALF) < 0.01);
        assert_eq!(LaggedPeak::default().surely_above_until(0.01, HALF), None);
    }

    #[test]
    fn spoiled_hours_are_never_learned() {
        let mut p = LaggedPeak::default();
        p.observe(at(0), 5000.0, true, HALF);
        p.observe(at(300), 10.0, false, HALF);
        p.observe(at(600), 10.0, false, HALF);
        assert!(p.normal(at(600), HALF) < 11.0);
    }
}
