//! The HTML rendering: one self-contained page (inline CSS and SVG, no script, no external resource).

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::stats::{MeasureStats, TransparencyReport};
use crate::svg;

/// Escapes text for HTML element content and (double- or single-quoted) attribute values:
/// `&`, `<`, `>`, `"` and `'`.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An instant in Japan time, e.g. `2026-11-20 22:00 +09:00`.
pub(crate) fn japan_time(t: Timestamp) -> String {
    t.to_zoned_datetime(mamori_core::calendar::japan()).strftime("%Y-%m-%d %H:%M %:z").to_string()
}

/// A duration for people: `45 s`, `12 min`, `3 h 12 min`, `2 d 3 h`.
pub(crate) fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "–".to_owned();
    }
    let s = secs.round() as u64;
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI","Hiragino Sans","Noto Sans JP",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1d1d1f;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem}
.ja{color:#555}.muted{color:#666;font-size:.9rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.88rem;width:100%}
th,td{border:1px solid #d5d5d5;padding:.3rem .45rem;vertical-align:top}
th{background:#f3f4f6;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-size:.85rem}
.empty{padding:1rem;background:#f6f6f6;border:1px dashed #bbb}
svg.chart{max-width:100%;height:auto;font-family:inherit}
svg .grid{stroke:#e3e3e3;stroke-width:1}
svg .axisline{stroke:#555;stroke-width:1}
svg .tick{font-size:11px;fill:#444}
svg .axis{font-size:12px;fill:#222}
svg .legend,svg .label{font-size:12px;fill:#222}
svg .value{font-size:11px;fill:#333}
svg .median{fill:#3b6ea8}svg .max{fill:#c0504d}
"#;

fn duration_cell(secs: Option<f64>) -> String {
    secs.map_or_else(|| "–".to_owned(), |s| escape_html(&human_duration(s)))
}

fn measure_row(out: &mut String, m: &MeasureStats) {
    let s = &m.by_state;
    let bases = m.by_legal_basis.iter().map(|(b, n)| format!("{b}: {n}")).collect::<Vec<_>>().join(", ");
    let _ = write!(
        out,
        "<tr><td><code>{id}</code><br>{en}<br><span class=\"ja\" lang=\"ja\">{ja}</span></td>\
         <td>{basis}<br><span class=\"muted\">actions: {bases}</span></td>",
        id = escape_html(&m.measure),
        en = escape_html(&m.title_en),
        ja = escape_html(&m.title_ja),
        basis = escape_html(&m.legal_basis.join(", ")),
        bases = escape_html(&bases),
    );
    for n in [
        m.actions,
        s.applied,
        s.lifted,
        s.expired,
        s.completed,
        s.rejected,
        s.refused,
        s.lapsed,
        s.open(),
        m.emergency_actions,
        m.subscribers_affected,
    ] {
        let _ = write!(out, "<td class=\"n\">{n}</td>");
    }
    let _ = write!(
        out,
        "<td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        duration_cell(m.duration_median_seconds),
        duration_cell(m.duration_max_seconds.map(|s| s as f64)),
    );
}

impl TransparencyReport {
    /// The report as a self-contained HTML page: summary, per-measure table, an SVG chart of actions
    /// per measure over time, an SVG chart of times in force, the published targets, the measures
    /// never provided, and how to read the figures. Every untrusted string is escaped; the page loads
    /// nothing and runs no script (its Content-Security-Policy forbids both).
    pub fn to_html(&self) -> String {
        let from = japan_time(self.period.from);
        let to = japan_time(self.period.to);
        let mut h = String::with_capacity(16 * 1024);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>mamori transparency report {f} – {t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            f = escape_html(&from),
            t = escape_html(&to),
        );
        let _ = write!(
            h,
            "<header><h1>Transparency report <span class=\"ja\" lang=\"ja\">透明性レポート</span></h1>\n\
             <p>The countermeasures against attacks and fraud taken in this period: how often each measure \
             acted, for how long, and how many subscribers were affected.</p>\n\
             <p><strong>Period:</strong> {f} to {t} (Japan time; actions proposed from the first instant up to, \
             not including, the second). <strong>Generated:</strong> {g}.</p></header>\n",
            f = escape_html(&from),
            t = escape_html(&to),
            g = escape_html(&japan_time(self.generated_at)),
        );

        h.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
        if self.is_empty() {
            h.push_str("<p class=\"empty\">No actions in this period.</p>\n");
        } else {
            let t = &self.totals;
            let _ = writeln!(
                h,
                "<table class=\"summary\"><tbody>\
                 <tr><th>Actions proposed</th><td class=\"n\">{}</td></tr>\
                 <tr><th>Measures that acted</th><td class=\"n\">{}</td></tr>\
                 <tr><th>Actions that took effect (in force, lifted, expired or completed)</th><td class=\"n\">{}</td></tr>\
                 <tr><th>Still in force when generated</th><td class=\"n\">{}</td></tr>\
                 <tr><th>Declined, refused or lapsed</th><td class=\"n\">{}</td></tr>\
                 <tr><th>Not decided yet</th><td class=\"n\">{}</td></tr>\
                 <tr><th>Taken before consent under the emergency rule</th><td class=\"n\">{}</td></tr>\
                 <tr><th>Distinct subscribers affected</th><td class=\"n\">{}</td></tr>\
                 </tbody></table>",
                t.actions,
                t.measures_with_actions,
                t.by_state.carried_out(),
                t.by_state.applied,
                t.by_state.rejected + t.by_state.refused + t.by_state.lapsed,
                t.by_state.open(),
                t.emergency_actions,
                t.subscribers_affected,
            );
        }
        h.push_str("</section>\n");

        if !self.is_empty() {
            h.push_str(
                "<section id=\"measures\"><h2>Per measure</h2>\n<div class=\"scroll\"><table class=\"measures\">\
                 <thead><tr><th>Measure</th><th>Legal basis</th><th>Actions</th><th>In force</th><th>Lifted</th>\
                 <th>Expired</th><th>Completed</th><th>Rejected</th><th>Refused</th><th>Lapsed</th><th>Open</th>\
                 <th>Emergency</th><th>Subscribers affected</th><th>Median time in force</th><th>Longest</th></tr></thead>\n<tbody>\n",
            );
            for m in &self.measures {
                measure_row(&mut h, m);
                h.push('\n');
            }
            h.push_str("</tbody></table></div></section>\n");

            h.push_str("<section id=\"chart-actions\"><h2>Actions per measure over time</h2>\n");
            h.push_str(&svg::actions_over_time(self));
            h.push_str("\n</section>\n<section id=\"chart-durations\"><h2>Time in force</h2>\n");
            match svg::durations(self) {
                Some(chart) => h.push_str(&chart),
                None => h.push_str("<p class=\"empty\">No action of this period was in force.</p>"),
            }
            h.push_str("\n</section>\n");

            h.push_str("<section id=\"targets\"><h2>Published targets</h2>\n");
            let publishing: Vec<&MeasureStats> = self.measures.iter().filter(|m| m.publishes_targets).collect();
            if publishing.is_empty() {
                h.push_str("<p>No measure that acted in this period may publish its targets.</p>\n");
            }
            for m in publishing {
                let _ = writeln!(h, "<h3><code>{}</code></h3>", escape_html(&m.measure));
                if m.published_targets.is_empty() {
                    h.push_str(
                        "<p class=\"muted\">No publishable target (country or whole network) took effect.</p>\n",
                    );
                } else {
                    h.push_str(
                        "<table class=\"targets\"><thead><tr><th>Target</th><th>Actions</th></tr></thead><tbody>",
                    );
                    for t in &m.published_targets {
                        let _ = write!(
                            h,
                            "<tr><td><code>{}</code></td><td class=\"n\">{}</td></tr>",
                            escape_html(&t.target),
                            t.actions
                        );
                    }
                    h.push_str("</tbody></table>\n");
                }
            }
            h.push_str("</section>\n");
        }

        if !self.not_provided.is_empty() {
            h.push_str(
                "<section id=\"not-provided\"><h2>Measures never provided</h2>\n\
                 <p>The working group refused these measures; mamori cannot enable them.</p>\n<ul>\n",
            );
            for n in &self.not_provided {
                let _ = writeln!(
                    h,
                    "<li><code>{id}</code>: {en} <span class=\"ja\" lang=\"ja\">{ja}</span><br>\
                     <span class=\"muted\">{reason}. Actions in this period: {count}.</span></li>",
                    id = escape_html(&n.measure),
                    en = escape_html(&n.title_en),
                    ja = escape_html(&n.title_ja),
                    reason = escape_html(n.reason.trim_end_matches('.')),
                    count = n.actions_in_period,
                );
            }
            h.push_str("</ul></section>\n");
        }

        h.push_str(
            "<section id=\"method\"><h2>How to read this report</h2>\n<ul>\n\
             <li>An action counts in the period when it was proposed in it; its state is the state when the \
             report was generated.</li>\n\
             <li><em>Subscribers affected</em> counts distinct subscribers concerned by an action that took effect \
             (in force, lifted, expired or completed). Subscriber identities are never published.</li>\n\
             <li><em>Time in force</em> runs from application to lifting or expiry; an action still in force counts \
             until the report was generated. The median of an even number of actions is the mean of the two \
             middle ones.</li>\n\
             <li>Targets are published only where the measure's catalog entry allows it, only for countries and \
             the whole network, and only for actions that took effect. Lines, addresses, prefixes, domains and \
             subscribers are never published.</li>\n\
             <li>Days are Japan days (UTC+09:00).</li>\n</ul></section>\n",
        );
        h.push_str("</body>\n</html>\n");
        h
    }
}
