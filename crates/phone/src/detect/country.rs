//! `phone.restrict-country` (T7): very many simultaneous calls from many lines to one country
//! whose normal volume is tiny.

use serde::Serialize;

use crate::views::CountryView;

/// Settings (from `[phone]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountrySettings {
    /// At least this many calls in progress.
    pub min_calls: u32,
    /// From at least this many lines.
    pub min_lines: u32,
    /// And this many times the normal concurrent volume.
    pub factor: f64,
}

/// The evidence the seed asks for: normal volume, current volume, lines and addresses involved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryEvidence {
    /// Calling code.
    pub country: u16,
    /// Normal concurrent calls (decayed peak).
    pub normal_calls: f64,
    /// Calls in progress now.
    pub calls_in_progress: u32,
    /// Lines calling.
    pub lines: u32,
    /// Source addresses.
    pub sources: u32,
    /// The most active addresses.
    pub top_sources: Vec<String>,
}

/// Is the country being flooded?
pub fn flooded(v: &CountryView, s: &CountrySettings) -> Option<CountryEvidence> {
    let over_normal = f64::from(v.calls_in_progress) >= s.factor * v.normal_calls.max(1.0);
    (v.calls_in_progress >= s.min_calls && v.lines >= s.min_lines && over_normal).then(|| CountryEvidence {
        country: v.country.0,
        normal_calls: (v.normal_calls * 10.0).round() / 10.0,
        calls_in_progress: v.calls_in_progress,
        lines: v.lines,
        sources: v.sources,
        top_sources: v.top_sources.iter().map(ToString::to_string).collect(),
    })
}

/// Has the flood ended (at most twice the normal volume, and under the minimum)?
pub fn calm(v: &CountryView, s: &CountrySettings) -> bool {
    f64::from(v.calls_in_progress) <= (2.0 * v.normal_calls).max(f64::from(s.min_calls) / 4.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbering::CountryCode;

    const S: CountrySettings = CountrySettings { min_calls: 20, min_lines: 5, factor: 10.0 };

    fn view(calls: u32, lines: u32, normal: f64) -> CountryView {
        CountryView {
            country: CountryCode(882),
            calls_in_progress: calls,
            lines,
            top_sources: vec![],
            sources: 3,
            normal_calls: normal,
        }
    }

    #[test]
    fn flood_needs_volume_breadth_and_rarity() {
        assert!(flooded(&view(40, 12, 0.5), &S).is_some());
        assert!(flooded(&view(40, 2, 0.5), &S).is_none(), "two lines are for the line measures");
        assert!(flooded(&view(40, 12, 30.0), &S).is_none(), "a country with big normal volume (trade)");
        assert!(flooded(&view(10, 10, 0.0), &S).is_none());
        assert!(calm(&view(2, 1, 0.5), &S));
        assert!(!calm(&view(30, 9, 0.5), &S));
    }
}
