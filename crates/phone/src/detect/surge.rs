//! `phone.suspend-line-on-surge` (T5): stage 1 finds a sharp rise of a line's international
//! charges over its own normal level; stage 2 (unlocked for that line only) judges whether
//! someone other than the subscriber is very probably using it.

use serde::Serialize;

use crate::views::{SurgeCallDetails, SurgeTotals};

/// Calls at once from which a surge has the support of parallel calls.
pub const PARALLEL_CALLS: u32 = 2;

/// Detector settings (from `[phone]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurgeSettings {
    /// Never a surge below this many yen per window.
    pub floor_jpy: f64,
    /// A surge is this many times the line's normal level.
    pub factor: f64,
    /// Minutes in the window (to project the rate of calls in progress over it).
    pub window_mins: f64,
    /// Yen per minute from which a call counts as expensive (satellite, premium-prone).
    pub expensive_jpy_per_min: f64,
    /// Never a sustained rise below this many yen over the hours.
    pub sustained_floor_jpy: f64,
}

/// Stage 1's finding: a sharp rise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rise {
    /// Charges in the window, plus calls in progress projected to its end, yen.
    pub projected_jpy: f64,
    /// The threshold it crossed, yen.
    pub threshold_jpy: f64,
    /// The line's normal level, yen per window.
    pub normal_jpy: f64,
    /// Calls in progress.
    pub calls_in_progress: u32,
    /// The charge has been high for hours, not just in the window.
    pub sustained: bool,
}

impl Rise {
    /// How far over the threshold.
    pub fn ratio(&self) -> f64 {
        if self.threshold_jpy > 0.0 { self.projected_jpy / self.threshold_jpy } else { f64::INFINITY }
    }
}

/// The threshold for a line with this normal level.
pub fn threshold(normal_jpy: f64, s: &SurgeSettings) -> f64 {
    s.floor_jpy.max(s.factor * normal_jpy)
}

/// What the window would hold if the calls in progress go on until it ends: a burst of parallel
/// expensive calls is seen at its first evaluation, not ten minutes later.
pub fn projected(v: &SurgeTotals, s: &SurgeSettings) -> f64 {
    v.window_jpy.max(v.rate_jpy_per_min * s.window_mins)
}

/// Stage 1: is this a sharp rise over the line's normal level, in the window or over the hours?
pub fn rise(v: &SurgeTotals, s: &SurgeSettings) -> Option<Rise> {
    let projected_jpy = projected(v, s);
    let threshold_jpy = threshold(v.normal_jpy, s);
    let sustained = v.sustained_jpy >= s.sustained_floor_jpy.max(s.factor * v.normal_sustained_jpy);
    (projected_jpy >= threshold_jpy || sustained).then_some(Rise {
        projected_jpy,
        threshold_jpy,
        normal_jpy: v.normal_jpy,
        calls_in_progress: v.calls_in_progress,
        sustained,
    })
}

/// Stage 2's judgement, with the reasons (they go into the evidence).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// Use by someone other than the subscriber is highly probable.
    pub other_user_highly_probable: bool,
    /// Share of the window's charge to countries the line never called.
    pub new_country_share: f64,
    /// Share from addresses the line never used.
    pub new_source_share: f64,
    /// Share under calling numbers the line never presented.
    pub unfamiliar_calling_share: f64,
    /// Share at expensive per-minute rates.
    pub expensive_share: f64,
    /// The anomalies that counted.
    pub anomalies: Vec<&'static str>,
    /// The supporting signs that counted.
    pub support: Vec<&'static str>,
    /// The *where* kind of sign counted: new expensive destinations (or, for a line with too
    /// little past, expensive ones).
    pub unfamiliar: bool,
}

/// Stage 2: weighs what the calls look like against the line's own past.
///
/// Signs fall in three kinds: *who* calls (an address or calling numbers the line never used),
/// *where* (countries the line never called, or, for a line with too little past to compare,
/// mostly expensive destinations), and *how much* (several calls at once, far over the threshold,
/// or high for hours). Use by someone other than the subscriber is highly probable when two kinds
/// agree. So a business's burst to the countries it always calls, a long call home on a holiday,
/// a ship's satellite call, a first call to an ordinary new destination or a changed address is
/// not enough on its own.
pub fn judge(v: &SurgeCallDetails, rise: &Rise, s: &SurgeSettings) -> Judgement {
    let total: f64 = v.calls.iter().map(|c| c.window_jpy).sum::<f64>().max(f64::MIN_POSITIVE);
    let share = |f: &dyn Fn(&crate::views::CallDetail) -> bool| -> f64 {
        v.calls.iter().filter(|c| f(c)).map(|c| c.window_jpy).sum::<f64>() / total
    };
    let expensive = |c: &crate::views::CallDetail| c.jpy_per_min >= s.expensive_jpy_per_min;
    let new_country_share = share(&|c| c.new_country);
    let new_source_share = share(&|c| c.new_source_ip);
    let unfamiliar_calling_share = share(&|c| c.unfamiliar_calling_number);
    let expensive_share = share(&expensive);
    let new_and_expensive_share = share(&|c| c.new_country && expensive(c));
    let mut anomalies = Vec::new();
    let (mut who, mut destination) = (false, false);
    if v.history_known {
        if new_source_share >= 0.5 {
            anomalies.push("new-source-ip");
            who = true;
        }
        if unfamiliar_calling_share >= 0.5 && v.calling_numbers_stable {
            anomalies.push("unfamiliar-calling-numbers");
            who = true;
        }
        if new_country_share >= 0.5 {
            anomalies.push("new-countries");
        }
        // A new ordinary destination is a trip or a new customer; a new expensive one is the
        // fraudster's revenue share.
        destination = new_and_expensive_share >= 0.5;
    }
    if expensive_share >= 0.5 {
        anomalies.push("expensive-destinations");
        destination |= !v.history_known;
    }
    let mut support = Vec::new();
    if rise.calls_in_progress >= PARALLEL_CALLS {
        support.push("parallel-calls");
    }
    // One call, however dear (a ship's satellite call), is a destination, not a volume.
    if rise.ratio() >= 3.0 && v.calls.len() >= 2 {
        support.push("far-over-threshold");
    }
    if rise.sustained {
        support.push("sustained-for-hours");
    }
    let kinds = u8::from(who) + u8::from(destination) + u8::from(!support.is_empty());
    Judgement {
        other_user_highly_probable: kinds >= 2,
        new_country_share,
        new_source_share,
        unfamiliar_calling_share,
        expensive_share,
        anomalies,
        support,
        unfamiliar: destination,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbering::CountryCode;
    use crate::views::CallDetail;

    const S: SurgeSettings = SurgeSettings {
        floor_jpy: 3000.0,
        factor: 4.0,
        window_mins: 10.0,
        expensive_jpy_per_min: 150.0,
        sustained_floor_jpy: 20_000.0,
    };

    fn totals(window: f64, rate: f64, calls: u32, normal: f64) -> SurgeTotals {
        SurgeTotals {
            window_jpy: window,
            rate_jpy_per_min: rate,
            calls_in_progress: calls,
            normal_jpy: normal,
            sustained_jpy: window,
            normal_sustained_jpy: normal,
        }
    }

    fn call(cc: u16, jpy_per_min: f64, new_country: bool, new_ip: bool) -> CallDetail {
        CallDetail {
            country: CountryCode(cc),
            source_ip: "198.51.100.9".parse().unwrap(),
            window_jpy: jpy_per_min * 10.0,
            jpy_per_min,
            new_country,
            new_source_ip: new_ip,
            unfamiliar_calling_number: false,
        }
    }

    #[test]
    fn rise_is_relative_to_the_lines_own_normal() {
        // A burst of 10 calls at 450 yen/min is seen at once, from the rate in progress.
        assert!(rise(&totals(75.0, 4500.0, 10, 0.0), &S).is_some());
        // A business line whose normal window is 20,000 yen: 30,000 is not a sharp rise.
        assert!(rise(&totals(30_000.0, 0.0, 0, 20_000.0), &S).is_none());
        // Nor is anything under the floor.
        assert!(rise(&totals(2_000.0, 100.0, 1, 0.0), &S).is_none());
    }

    #[test]
    fn stolen_credentials_and_hijacked_pbx_are_judged_fraud() {
        let r = rise(&totals(0.0, 4500.0, 10, 0.0), &S).unwrap();
        let stolen = SurgeCallDetails {
            calls: (0..10).map(|_| call(882, 450.0, true, true)).collect(),
            history_known: true,
            calling_numbers_stable: true,
        };
        assert!(judge(&stolen, &r, &S).other_user_highly_probable);
        // Same address as always (the PBX itself), but new expensive countries, in parallel.
        let pbx = SurgeCallDetails {
            calls: (0..6).map(|_| call(252, 300.0, true, false)).collect(),
            history_known: true,
            calling_numbers_stable: true,
        };
        assert!(judge(&pbx, &r, &S).other_user_highly_probable);
    }

    #[test]
    fn hard_negatives_are_not() {
        // A business burst to its usual countries at ordinary rates.
        let r = rise(&totals(9_000.0, 600.0, 8, 1_500.0), &S).unwrap();
        let burst = SurgeCallDetails {
            calls: (0..8).map(|_| call(1, 20.0, false, false)).collect(),
            history_known: true,
            calling_numbers_stable: true,
        };
        assert!(!judge(&burst, &r, &S).other_user_highly_probable);
        // A long call home on a holiday, first ever abroad, moderately priced: one anomaly, no support.
        let r = rise(&totals(3_200.0, 120.0, 1, 0.0), &S).unwrap();
        let holiday = SurgeCallDetails {
            calls: vec![call(63, 120.0, true, false)],
            history_known: true,
            calling_numbers_stable: true,
        };
        let j = judge(&holiday, &r, &S);
        assert!(!j.other_user_highly_probable, "{j:?}");
        // A ship's satellite call, a country it never called before: where, but not who or how much.
        let r = rise(&totals(3_500.0, 350.0, 1, 0.0), &S).unwrap();
        let ship = SurgeCallDetails {
            calls: vec![call(870, 350.0, true, false)],
            history_known: true,
            calling_numbers_stable: true,
        };
        assert!(!judge(&ship, &r, &S).other_user_highly_probable);
        // A business calling an expensive country it always calls, several lines at once.
        let r = rise(&totals(9_000.0, 900.0, 4, 1_000.0), &S).unwrap();
        let usual = SurgeCallDetails {
            calls: (0..4).map(|_| call(66, 200.0, false, false)).collect(),
            history_known: true,
            calling_numbers_stable: true,
        };
        assert!(!judge(&usual, &r, &S).other_user_highly_probable);
    }

    #[test]
    fn slow_fraud_is_seen_over_the_hours() {
        // One call at a time to an expensive new country, for hours.
        let mut v = totals(3_500.0, 350.0, 1, 0.0);
        v.sustained_jpy = 40_000.0;
        let r = rise(&v, &S).unwrap();
        assert!(r.sustained);
        let slow = SurgeCallDetails {
            calls: vec![call(688, 350.0, true, false)],
            history_known: true,
            calling_numbers_stable: true,
        };
        let j = judge(&slow, &r, &S);
        assert!(j.other_user_highly_probable, "{j:?}");
        assert!(j.support.contains(&"sustained-for-hours"));
    }
}
