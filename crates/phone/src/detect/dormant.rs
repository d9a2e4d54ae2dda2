//! `phone.suspend-dormant` (T3): lines with no international call for a long time.

use jiff::{SignedDuration, Timestamp};

use crate::views::DormantView;

/// Has the line been quiet abroad for at least `days`?
pub fn is_dormant(v: &DormantView, now: Timestamp, days: u32) -> bool {
    now.duration_since(v.quiet_since) >= SignedDuration::from_hours(24 * i64::from(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_for_the_configured_days() {
        let now: Timestamp = "2026-11-24T01:00:00Z".parse().unwrap();
        let v = |s: &str| DormantView { quiet_since: s.parse().unwrap() };
        assert!(is_dormant(&v("2026-05-20T00:00:00Z"), now, 180));
        assert!(!is_dormant(&v("2026-06-20T00:00:00Z"), now, 180));
    }
}
