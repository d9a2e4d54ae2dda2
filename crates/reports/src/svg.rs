//! Inline SVG charts for the HTML report. Every text that reaches the markup goes through
//! [`escape_html`]; numbers are formatted by us.

use std::fmt::Write as _;

use jiff::SignedDuration;
use jiff::civil::Date;

use crate::html::{escape_html, human_duration};
use crate::stats::TransparencyReport;

/// At most this many bars in the time chart; longer periods group several days per bar.
pub(crate) const MAX_BARS: i64 = 92;

/// A distinct colour for the `i`-th measure (golden-angle hues, so any number stays distinct).
pub(crate) fn measure_colour(i: usize) -> String {
    let hue = (i as f64 * 137.508) % 360.0;
    format!("hsl({hue:.0},62%,42%)")
}

/// A "nice" axis: the top value and the tick step (1, 2 or 5 × 10ⁿ), covering `max` with about five
/// ticks. `min_step` keeps counts on whole numbers.
pub(crate) fn nice_axis(max: f64, min_step: f64) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (min_step.max(1.0), min_step.max(1.0));
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag).max(min_step);
    let top = (max / step).ceil() * step;
    (top.max(step), step)
}

/// Formats an axis tick without float noise (`0.5`, `2`, `1500`).
fn tick_label(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 { format!("{r:.0}") } else { format!("{r}") }
}

/// How the period's Japan days are grouped into bars.
pub(crate) struct DayBins {
    /// The first day of the period.
    pub first: Date,
    /// Days per bar.
    pub days_per_bar: i64,
    /// Number of bars.
    pub bars: usize,
}

impl DayBins {
    pub(crate) fn new(report: &TransparencyReport) -> DayBins {
        let (first, last) = report.period.japan_days();
        let n_days = last.duration_since(first).as_hours() / 24 + 1;
        let days_per_bar = ((n_days + MAX_BARS - 1) / MAX_BARS).max(1);
        let bars = ((n_days + days_per_bar - 1) / days_per_bar).max(1);
        DayBins { first, days_per_bar, bars: usize::try_from(bars).unwrap_or(1) }
    }

    /// The bar a day falls into (clamped to the chart).
    pub(crate) fn index(&self, day: Date) -> usize {
        let offset = day.duration_since(self.first).as_hours() / 24;
        let i = (offset / self.days_per_bar).max(0);
        usize::try_from(i).unwrap_or(0).min(self.bars - 1)
    }

    /// The first day of bar `i`.
    pub(crate) fn start(&self, i: usize) -> Date {
        let days = i64::try_from(i).unwrap_or(0) * self.days_per_bar;
        self.first.saturating_add(SignedDuration::from_hours(24 * days))
    }
}

/// Chart 1: actions per measure over time, as stacked bars (one bar per day or group of days),
/// with a y axis, date labels and a legend.
pub(crate) fn actions_over_time(report: &TransparencyReport) -> String {
    let bins = DayBins::new(report);
    // counts[bar][measure]
    let mut counts = vec![vec![0u64; report.measures.len()]; bins.bars];
    for (mi, m) in report.measures.iter().enumerate() {
        for (day, n) in &m.per_day {
            counts[bins.index(*day)][mi] += n;
        }
    }
    let max_total = counts.iter().map(|c| c.iter().sum::<u64>()).max().unwrap_or(0);
    let (top, step) = nice_axis(max_total as f64, 1.0);

    let (width, left, right, top_margin, plot_h) = (960.0, 56.0, 16.0, 16.0, 260.0);
    let plot_w = width - left - right;
    let axis_y = top_margin + plot_h;
    let legend_cols = 3usize;
    let legend_rows = report.measures.len().div_ceil(legend_cols);
    let legend_top = axis_y + 58.0;
    let height = legend_top + 22.0 * legend_rows as f64 + 8.0;
    let unit = if bins.days_per_bar == 1 { "day".to_owned() } else { format!("{} days", bins.days_per_bar) };

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0}" width="100%" role="img" aria-labelledby="c1t c1d" class="chart">"#
    );
    let _ = write!(
        s,
        r#"<title id="c1t">Actions per measure per {unit}</title><desc id="c1d">Stacked bars: actions proposed per {unit} (Japan time), one colour per measure.</desc>"#,
        unit = escape_html(&unit)
    );

    // y grid and ticks
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = axis_y - v / top * plot_h;
        let _ = write!(
            s,
            r#"<line x1="{left}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{label}</text>"#,
            x2 = left + plot_w,
            tx = left - 6.0,
            ty = y + 4.0,
            label = tick_label(v)
        );
        v += step;
    }
    let _ = write!(
        s,
        r#"<text x="14" y="{my:.1}" class="axis" text-anchor="middle" transform="rotate(-90 14 {my:.1})">actions</text>"#,
        my = top_margin + plot_h / 2.0
    );

    // bars
    let bar_w = plot_w / bins.bars as f64;
    let gap = if bar_w > 4.0 { bar_w * 0.15 } else { 0.0 };
    for (bi, per_measure) in counts.iter().enumerate() {
        let x = left + bi as f64 * bar_w + gap / 2.0;
        let w = (bar_w - gap).max(0.5);
        let mut y = axis_y;
        for (mi, n) in per_measure.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let h = *n as f64 / top * plot_h;
            y -= h;
            let _ = write!(
                s,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="{c}"><title>{day}: {id} — {n}</title></rect>"#,
                c = measure_colour(mi),
                day = bins.start(bi),
                id = escape_html(&report.measures[mi].measure),
            );
        }
    }

    // x axis and date labels (at most about eight)
    let _ =
        write!(s, r#"<line x1="{left}" y1="{axis_y}" x2="{x2}" y2="{axis_y}" class="axisline"/>"#, x2 = left + plot_w);
    let every = bins.bars.div_ceil(8).max(1);
    for bi in (0..bins.bars).step_by(every) {
        let cx = left + (bi as f64 + 0.5) * bar_w;
        let _ = write!(
            s,
            r#"<line x1="{cx:.1}" y1="{axis_y}" x2="{cx:.1}" y2="{y2}" class="axisline"/><text x="{cx:.1}" y="{ty}" class="tick" text-anchor="middle">{day}</text>"#,
            y2 = axis_y + 4.0,
            ty = axis_y + 18.0,
            day = bins.start(bi)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{cx}" y="{ty}" class="axis" text-anchor="middle">Japan {unit} (+09:00) the action was proposed{suffix}</text>"#,
        cx = left + plot_w / 2.0,
        ty = axis_y + 40.0,
        unit = if bins.days_per_bar == 1 { "day" } else { "days" },
        suffix = if bins.days_per_bar == 1 { String::new() } else { format!(", {} days per bar", bins.days_per_bar) }
    );

    // legend
    let col_w = plot_w / legend_cols as f64;
    for (mi, m) in report.measures.iter().enumerate() {
        let lx = left + (mi % legend_cols) as f64 * col_w;
        let ly = legend_top + (mi / legend_cols) as f64 * 22.0;
        let _ = write!(
            s,
            r#"<rect x="{lx:.1}" y="{ry:.1}" width="12" height="12" fill="{c}"/><text x="{tx:.1}" y="{ty:.1}" class="legend">{id} ({n})</text>"#,
            ry = ly - 10.0,
            c = measure_colour(mi),
            tx = lx + 18.0,
            ty = ly,
            id = escape_html(&m.measure),
            n = m.actions
        );
    }
    s.push_str("</svg>");
    s
}

/// Chart 2: time in force per measure: the median and the longest, as horizontal bars in hours.
/// Measures without an action in force are left out; `None` when that leaves nothing.
pub(crate) fn durations(report: &TransparencyReport) -> Option<String> {
    let rows: Vec<(&str, f64, f64)> = report
        .measures
        .iter()
        .filter_map(|m| Some((m.measure.as_str(), m.duration_median_seconds?, m.duration_max_seconds? as f64)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let max_h = rows.iter().map(|r| r.2 / 3600.0).fold(0.0, f64::max);
    let (top, step) = nice_axis(max_h, 0.0);

    let (width, left, right, top_margin, row_h) = (960.0, 290.0, 110.0, 40.0, 36.0);
    let plot_w = width - left - right;
    let plot_h = row_h * rows.len() as f64;
    let axis_y = top_margin + plot_h;
    let height = axis_y + 44.0;
    let x_of = |secs: f64| left + (secs / 3600.0) / top * plot_w;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0}" width="100%" role="img" aria-labelledby="c2t c2d" class="chart">"#
    );
    s.push_str(
        r#"<title id="c2t">Time in force per measure</title><desc id="c2d">For each measure, the median and the longest time an action was in force, in hours.</desc>"#,
    );
    // legend
    let _ = write!(
        s,
        r#"<rect x="{left}" y="8" width="12" height="12" class="median"/><text x="{t1}" y="18" class="legend">median</text><rect x="{l2}" y="8" width="12" height="12" class="max"/><text x="{t2}" y="18" class="legend">longest</text>"#,
        t1 = left + 18.0,
        l2 = left + 100.0,
        t2 = left + 118.0
    );
    // x grid
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let x = left + v / top * plot_w;
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" y1="{top_margin}" x2="{x:.1}" y2="{axis_y}" class="grid"/><text x="{x:.1}" y="{ty}" class="tick" text-anchor="middle">{label}</text>"#,
            ty = axis_y + 16.0,
            label = tick_label(v)
        );
        v += step;
    }
    let _ = write!(
        s,
        r#"<text x="{cx}" y="{ty}" class="axis" text-anchor="middle">hours in force (an action still in force counts until the report was generated)</text>"#,
        cx = left + plot_w / 2.0,
        ty = axis_y + 36.0
    );
    for (i, (id, median, max)) in rows.iter().enumerate() {
        let y = top_margin + i as f64 * row_h;
        let id = escape_html(id);
        let _ = write!(
            s,
            r#"<text x="{tx}" y="{ty:.1}" class="label" text-anchor="end">{id}</text>"#,
            tx = left - 8.0,
            ty = y + row_h / 2.0 + 4.0
        );
        for (k, (secs, class, what)) in
            [(*median, "median", "median"), (*max, "max", "longest")].into_iter().enumerate()
        {
            let by = y + 5.0 + k as f64 * 13.0;
            let w = (x_of(secs) - left).max(if secs > 0.0 { 1.0 } else { 0.0 });
            let human = escape_html(&human_duration(secs));
            let _ = write!(
                s,
                r#"<rect x="{left}" y="{by:.1}" width="{w:.2}" height="12" class="{class}"><title>{id}: {what} {human}</title></rect><text x="{vx:.1}" y="{vy:.1}" class="value">{human}</text>"#,
                vx = left + w + 4.0,
                vy = by + 10.0
            );
        }
    }
    let _ = write!(s, r#"<line x1="{left}" y1="{top_margin}" x2="{left}" y2="{axis_y}" class="axisline"/>"#);
    s.push_str("</svg>");
    Some(s)
}
