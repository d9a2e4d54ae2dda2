//! Japan time for every legal rule: business hours, nights, weekends, national holidays.
//!
//! The emergency rule of `phone.suspend-line-on-surge` (seed 003 別紙(1)) and of the other
//! "contact first where possible" measures turns on this: by day on a business day the subscriber
//! is asked first; at night, on weekends and on national holidays mamori may act first and notify
//! promptly. National holidays come from the `jpholiday` crate (computed from the Holiday Act,
//! including substitute holidays and 国民の休日), not from a hand-kept list.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};
use serde::{Deserialize, Serialize};

/// Business hours and closed days, as configured (`[calendar]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// Start of business hours, Japan time, `HH:MM`.
    pub business_start: Time,
    /// End of business hours (exclusive), Japan time, `HH:MM`.
    pub business_end: Time,
    /// Extra days the carrier's subscriber contact desk is closed, as `MM-DD` (e.g. the year-end
    /// break). National holidays and weekends need not be listed.
    pub closed_days: Vec<String>,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            business_start: Time::constant(9, 0, 0, 0),
            business_end: Time::constant(18, 0, 0, 0),
            closed_days: vec!["12-29".into(), "12-30".into(), "12-31".into(), "01-02".into(), "01-03".into()],
        }
    }
}

/// Why an instant is or isn't business time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum TimeClass {
    /// Inside business hours on a business day: ask first.
    BusinessHours,
    /// Outside business hours on a business day.
    Night,
    /// Saturday or Sunday.
    Weekend,
    /// A national holiday (its Japanese name).
    NationalHoliday(String),
    /// A configured closed day (year-end break, …).
    ClosedDay,
}

impl TimeClass {
    /// Whether acting first (and notifying promptly) is allowed for measures with an emergency
    /// exception: everything except business hours.
    pub fn is_urgent(&self) -> bool {
        !matches!(self, TimeClass::BusinessHours)
    }

    /// Short label for the ledger.
    pub fn label(&self) -> String {
        match self {
            TimeClass::BusinessHours => "business-hours".into(),
            TimeClass::Night => "night".into(),
            TimeClass::Weekend => "weekend".into(),
            TimeClass::NationalHoliday(n) => format!("national-holiday ({n})"),
            TimeClass::ClosedDay => "closed-day".into(),
        }
    }
}

/// A configuration error in `[calendar]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A closed day isn't `MM-DD`.
    #[error("calendar.closed_days: `{0}` is not a month-day like `12-31`")]
    BadClosedDay(String),
    /// Business hours end before they start.
    #[error("calendar: business_end must be after business_start")]
    EmptyBusinessHours,
}

/// The Japan-time calendar used by every legal rule.
#[derive(Debug, Clone)]
pub struct JapanCalendar {
    tz: TimeZone,
    start: Time,
    end: Time,
    closed: Vec<(i8, i8)>,
    /// Holidays already looked up (shared by clones): the rules take about 12,000 instructions
    /// a date, and a replay or a busy service asks about the same few dates again and again.
    holidays: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Date, Option<String>>>>,
}

/// Dates remembered before the memo starts again (a few years of dates).
const HOLIDAY_MEMO: usize = 4096;

/// The time zone of every legal rule.
pub fn japan() -> TimeZone {
    // Japan has had no DST since 1951; a fixed +09:00 offset is exact for every date mamori sees
    // and does not depend on the host's tzdb.
    TimeZone::fixed(jiff::tz::offset(9))
}

impl JapanCalendar {
    /// Builds the calendar from configuration.
    pub fn new(config: &CalendarConfig) -> Result<Self, CalendarError> {
        if config.business_end <= config.business_start {
            return Err(CalendarError::EmptyBusinessHours);
        }
        let mut closed = Vec::new();
        for d in &config.closed_days {
            let (m, day) = d.split_once('-').ok_or_else(|| CalendarError::BadClosedDay(d.clone()))?;
            let m: i8 = m.parse().map_err(|_| CalendarError::BadClosedDay(d.clone()))?;
            let day: i8 = day.parse().map_err(|_| CalendarError::BadClosedDay(d.clone()))?;
            if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
                return Err(CalendarError::BadClosedDay(d.clone()));
            }
            closed.push((m, day));
        }
        Ok(JapanCalendar {
            tz: japan(),
            start: config.business_start,
            end: config.business_end,
            closed,
            holidays: Default::default(),
        })
    }

    /// The instant in Japan time.
    pub fn local(&self, at: Timestamp) -> ZonedDateTime {
        at.to_zoned_datetime(self.tz.clone())
    }

    /// The national holiday on this date, if any.
    pub fn holiday_name(date: Date) -> Option<String> {
        let d = chrono::NaiveDate::from_ymd_opt(date.year().into(), date.month() as u32, date.day() as u32)?;
        jpholiday::jpholiday::JPHoliday::new().is_holiday_name(&d)
    }

    /// [`Self::holiday_name`], remembered per date. A poisoned memo is bypassed, not trusted.
    fn memo_holiday_name(&self, date: Date) -> Option<String> {
        if let Ok(memo) = self.holidays.lock() {
            if let Some(name) = memo.get(&date) {
                return name.clone();
            }
        }
        let name = Self::holiday_name(date);
        if let Ok(mut memo) = self.holidays.lock() {
            if memo.len() >= HOLIDAY_MEMO {
                memo.clear();
            }
            memo.insert(date, name.clone());
        }
        name
    }

    /// Classifies an instant for the emergency rule.
    pub fn classify(&self, at: Timestamp) -> TimeClass {
        let local = self.local(at);
        let date = local.date();
        if let Some(name) = self.memo_holiday_name(date) {
            return TimeClass::NationalHoliday(name);
        }
        if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
            return TimeClass::Weekend;
        }
        if self.closed.contains(&(date.month(), date.day())) {
            return TimeClass::ClosedDay;
        }
        let t = local.time();
        if t >= self.start && t < self.end { TimeClass::BusinessHours } else { TimeClass::Night }
    }

    /// The next instant at or after `at` that is business time (when a consent request sent at
    /// night can first be answered by the contact desk).
    pub fn next_business_start(&self, at: Timestamp) -> Timestamp {
        if self.classify(at) == TimeClass::BusinessHours {
            return at;
        }
        let mut date = self.local(at).date();
        // Bounded: no stretch of closed days in Japan reaches 30 days.
        for _ in 0..30 {
            if let Ok(zoned) = date.to_datetime(self.start).to_zoned_datetime(self.tz.clone()) {
                let ts = zoned.timestamp();
                if ts >= at && self.classify(ts) == TimeClass::BusinessHours {
                    return ts;
                }
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> JapanCalendar {
        JapanCalendar::new(&CalendarConfig::default()).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn remembered_holidays_are_the_rules_answers() {
        // Every day of three years at noon, asked twice (the second from the memo), and a memo
        // that starts again when full: the same class as the rules give.
        let c = cal();
        let mut day: Date = "2025-01-01".parse().unwrap();
        let mut holidays = 0;
        for _ in 0..(3 * 366) {
            let at = day.to_datetime(Time::constant(12, 0, 0, 0)).to_zoned_datetime(japan()).unwrap().timestamp();
            let expected = match JapanCalendar::holiday_name(day) {
                Some(name) => TimeClass::NationalHoliday(name),
                None => JapanCalendar { holidays: Default::default(), ..c.clone() }.classify(at),
            };
            assert_eq!(c.classify(at), expected, "{day}");
            assert_eq!(c.classify(at), expected, "{day}, remembered");
            holidays += usize::from(matches!(expected, TimeClass::NationalHoliday(_)));
            day = day.tomorrow().unwrap();
        }
        assert!(holidays > 40, "{holidays}");
    }

    #[test]
    fn weekday_ten_am_jst_is_business_hours() {
        // Tuesday 2026-11-24 10:00 JST
        assert_eq!(cal().classify(ts("2026-11-24T10:00:00+09:00")), TimeClass::BusinessHours);
        // the same instant given in UTC
        assert_eq!(cal().classify(ts("2026-11-24T01:00:00Z")), TimeClass::BusinessHours);
    }

    #[test]
    fn weekday_ten_pm_jst_is_night() {
        let c = cal().classify(ts("2026-11-24T22:00:00+09:00"));
        assert_eq!(c, TimeClass::Night);
        assert!(c.is_urgent());
        // 18:00 is the exclusive end
        assert_eq!(cal().classify(ts("2026-11-24T18:00:00+09:00")), TimeClass::Night);
        assert_eq!(cal().classify(ts("2026-11-24T08:59:59+09:00")), TimeClass::Night);
    }

    #[test]
    fn saturday_is_weekend() {
        assert_eq!(cal().classify(ts("2026-11-28T11:00:00+09:00")), TimeClass::Weekend);
    }

    #[test]
    fn labour_thanksgiving_day_is_a_national_holiday() {
        // Monday 2026-11-23, 勤労感謝の日
        match cal().classify(ts("2026-11-23T10:00:00+09:00")) {
            TimeClass::NationalHoliday(name) => assert_eq!(name, "勤労感謝の日"),
            other => panic!("expected holiday, got {other:?}"),
        }
        // 01:00 UTC on the 23rd is still the 23rd in Japan, 23:30 UTC on the 22nd already is
        assert!(matches!(cal().classify(ts("2026-11-22T23:30:00Z")), TimeClass::NationalHoliday(_)));
    }

    #[test]
    fn citizens_holiday_between_two_holidays_counts() {
        // 2026-09-22 (Tue) is 国民の休日 between 敬老の日 and 秋分の日
        assert!(matches!(cal().classify(ts("2026-09-22T10:00:00+09:00")), TimeClass::NationalHoliday(_)));
    }

    #[test]
    fn year_end_break_is_closed_by_default_and_configurable() {
        assert_eq!(cal().classify(ts("2026-12-29T10:00:00+09:00")), TimeClass::ClosedDay);
        let open = JapanCalendar::new(&CalendarConfig { closed_days: vec![], ..Default::default() }).unwrap();
        assert_eq!(open.classify(ts("2026-12-29T10:00:00+09:00")), TimeClass::BusinessHours);
    }

    #[test]
    fn configurable_business_hours() {
        let c = JapanCalendar::new(&CalendarConfig {
            business_start: Time::constant(8, 30, 0, 0),
            business_end: Time::constant(20, 0, 0, 0),
            closed_days: vec![],
        })
        .unwrap();
        assert_eq!(c.classify(ts("2026-11-24T19:00:00+09:00")), TimeClass::BusinessHours);
        assert_eq!(c.classify(ts("2026-11-24T08:00:00+09:00")), TimeClass::Night);
    }

    #[test]
    fn next_business_start_skips_holiday_and_weekend() {
        // Saturday night 2026-11-21 → Sunday → Monday 23rd holiday → Tuesday 24th 09:00
        let next = cal().next_business_start(ts("2026-11-21T22:00:00+09:00"));
        assert_eq!(next, ts("2026-11-24T09:00:00+09:00"));
    }

    #[test]
    fn bad_closed_day_is_rejected() {
        let err = JapanCalendar::new(&CalendarConfig { closed_days: vec!["13-01".into()], ..Default::default() })
            .unwrap_err();
        assert_eq!(err, CalendarError::BadClosedDay("13-01".into()));
    }
}
