//! Japan time: the kind of each day, and RFC 3339 text written without a date library in the hot path.
//!
//! Instants are Unix seconds (`i64`). Japan has no DST, so every local day is exactly 86,400 s and
//! local time is UTC + 9 h.

use jiff::Timestamp;
use jiff::civil::Date;
use mamori_core::calendar::{CalendarConfig, JapanCalendar, TimeClass};

use crate::number::push_padded;

/// Seconds east of UTC.
pub(crate) const JST_OFFSET: i64 = 9 * 3600;
/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;
/// Seconds in an hour.
pub(crate) const HOUR: i64 = 3_600;
/// Seconds in a minute.
pub(crate) const MINUTE: i64 = 60;

/// What kind of day a date is for the people making calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayKind {
    /// Monday to Friday, not a holiday.
    Workday,
    /// Saturday or Sunday.
    Weekend,
    /// A national holiday or the year-end/new-year break: businesses are closed.
    Holiday,
}

/// The days of the generated period.
#[derive(Debug, Clone)]
pub(crate) struct Period {
    /// Unix seconds of 00:00 JST of the first day.
    pub start: i64,
    /// Kind of each day.
    pub kinds: Vec<DayKind>,
    calendar: JapanCalendar,
}

/// The year-end/new-year break (12-29 .. 01-03), when most businesses close.
fn in_year_end_break(date: Date) -> bool {
    matches!((date.month(), date.day()), (12, 29..=31) | (1, 1..=3))
}

impl Period {
    /// `days` days from 00:00 JST on `first`.
    pub fn new(first: Date, days: u32) -> Result<Period, String> {
        let calendar = JapanCalendar::new(&CalendarConfig::default()).map_err(|e| e.to_string())?;
        let start = first
            .to_zoned_datetime(mamori_core::calendar::japan())
            .map_err(|e| format!("start date {first}: {e}"))?
            .timestamp()
            .as_second();
        let mut kinds = Vec::with_capacity(days as usize);
        let mut date = first;
        for _ in 0..days {
            let weekend = matches!(date.weekday(), jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday);
            let kind = if JapanCalendar::holiday_name(date).is_some() || in_year_end_break(date) {
                DayKind::Holiday
            } else if weekend {
                DayKind::Weekend
            } else {
                DayKind::Workday
            };
            kinds.push(kind);
            date = date.tomorrow().map_err(|e| format!("date after {date}: {e}"))?;
        }
        Ok(Period { start, kinds, calendar })
    }

    /// Unix seconds of 00:00 JST of day `d`.
    pub fn day_start(&self, d: usize) -> i64 {
        self.start + d as i64 * DAY
    }

    /// Unix seconds just after the period.
    pub fn end(&self) -> i64 {
        self.day_start(self.kinds.len())
    }

    /// Number of days.
    pub fn days(&self) -> usize {
        self.kinds.len()
    }

    /// Day index of an instant, if inside the period.
    pub fn day_of(&self, t: i64) -> Option<usize> {
        let d = (t - self.start).div_euclid(DAY);
        usize::try_from(d).ok().filter(|d| *d < self.kinds.len())
    }

    /// The label of the truth file's `time_class`, from mamori's own legal calendar: `day` (business
    /// hours), `night`, `weekend` or `holiday` (national holiday or closed day).
    pub fn time_class(&self, t: i64) -> &'static str {
        let Ok(ts) = Timestamp::from_second(t) else { return "night" };
        match self.calendar.classify(ts) {
            TimeClass::BusinessHours => "day",
            TimeClass::Night => "night",
            TimeClass::Weekend => "weekend",
            TimeClass::NationalHoliday(_) | TimeClass::ClosedDay => "holiday",
        }
    }
}

/// Civil date of a count of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `t` as RFC 3339 in Japan time, e.g. `2026-11-20T01:02:03+09:00`.
pub(crate) fn push_rfc3339(out: &mut Vec<u8>, t: i64) {
    let local = t + JST_OFFSET;
    let (y, m, d) = civil_from_days(local.div_euclid(DAY));
    let sod = local.rem_euclid(DAY);
    push_padded(out, y.max(0) as u64, 4);
    out.push(b'-');
    push_padded(out, u64::from(m), 2);
    out.push(b'-');
    push_padded(out, u64::from(d), 2);
    out.push(b'T');
    push_padded(out, (sod / HOUR) as u64, 2);
    out.push(b':');
    push_padded(out, (sod % HOUR / MINUTE) as u64, 2);
    out.push(b':');
    push_padded(out, (sod % MINUTE) as u64, 2);
    out.extend_from_slice(b"+09:00");
}

/// `t` as RFC 3339 text in Japan time.
pub(crate) fn rfc3339(t: i64) -> String {
    let mut v = Vec::with_capacity(25);
    push_rfc3339(&mut v, t);
    String::from_utf8_lossy(&v).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_agrees_with_jiff() {
        for t in [0i64, 1_795_000_000, 1_798_729_199, 1_798_729_200, 1_803_000_123, 951_782_400] {
            let ours = rfc3339(t);
            let theirs = Timestamp::from_second(t).unwrap();
            assert_eq!(ours.parse::<Timestamp>().unwrap(), theirs, "{ours}");
            assert!(ours.ends_with("+09:00"));
        }
        assert_eq!(rfc3339(1_795_104_123), "2026-11-20T01:02:03+09:00");
    }

    #[test]
    fn november_2026_has_two_holidays_and_the_year_end_is_closed() {
        let p = Period::new(jiff::civil::date(2026, 11, 1), 70).unwrap();
        assert_eq!(p.kinds[0], DayKind::Weekend, "2026-11-01 is a Sunday");
        assert_eq!(p.kinds[1], DayKind::Workday);
        assert_eq!(p.kinds[2], DayKind::Holiday, "11-03 文化の日");
        assert_eq!(p.kinds[22], DayKind::Holiday, "11-23 勤労感謝の日");
        assert_eq!(p.kinds[58], DayKind::Holiday, "12-29 year-end break");
        assert_eq!(p.kinds[63], DayKind::Holiday, "01-03");
        assert_eq!(p.kinds[64], DayKind::Workday, "01-04 is a Monday");
        assert_eq!(p.time_class(p.day_start(2) + 10 * HOUR), "holiday");
        assert_eq!(p.time_class(p.day_start(1) + 10 * HOUR), "day");
        assert_eq!(p.time_class(p.day_start(1) + 23 * HOUR), "night");
        assert_eq!(p.time_class(p.day_start(0) + 10 * HOUR), "weekend");
        assert_eq!(p.day_of(p.day_start(3) + 5), Some(3));
        assert_eq!(p.day_of(p.start - 1), None);
    }
}
