//! The console's overview page: measures, actions waiting for a person, actions in force, the
//! ledger's tip. Server-rendered, no script, every value escaped.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog;
use mamori_core::ledger::format_time;
use mamori_core::store::ActionFilter;

use crate::AppState;
use crate::controllers::ApiError;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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

fn action_rows(out: &mut String, actions: &[ActionRecord]) {
    if actions.is_empty() {
        out.push_str("<tr><td colspan=7><em>none</em></td></tr>");
    }
    for a in actions {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.id),
            esc(a.measure.as_str()),
            esc(&a.target.to_string()),
            esc(a.state.as_str()),
            esc(a.legal_basis.as_str()),
            if a.emergency { " (emergency)" } else { "" },
            esc(&a.time_class),
            a.deadline.map(format_time).map(|d| esc(&d)).unwrap_or_default(),
        );
    }
}

pub(crate) async fn index(State(s): State<AppState>) -> Result<Html<String>, ApiError> {
    let gov = s.gov.clone();
    let (status, waiting, applied, recent, tip) = tokio::task::spawn_blocking(move || {
        let store = gov.store();
        let by = |st| store.actions(&ActionFilter { state: Some(st), limit: Some(200), ..Default::default() });
        let mut waiting = by(ActionState::PendingApproval)?;
        waiting.extend(by(ActionState::AwaitingConsent)?);
        let applied = by(ActionState::Applied)?;
        let recent = store.actions(&ActionFilter { limit: Some(50), ..Default::default() })?;
        Ok::<_, mamori_core::governance::GovernanceError>((
            gov.measure_status()?,
            waiting,
            applied,
            recent,
            store.ledger_tip()?,
        ))
    })
    .await
    .map_err(|_| ApiError(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))??;

    let mut h = String::with_capacity(16 * 1024);
    h.push_str(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>mamori console</title><style>\
         body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.9em}\
         th{background:#f3f3f3}.on{color:#070}.off{color:#888}.refused{color:#a00}</style></head><body>\
         <h1>mamori <small>守り</small></h1><p>Lawful countermeasures under the secrecy of communications \
         (電気通信事業法第4条).</p>",
    );
    let _ = write!(h, "<p>Audit ledger: <b>{}</b> entries, tip <code>{}</code></p>", tip.0, esc(&tip.1.to_hex()));
    h.push_str("<h2>Waiting for a person</h2><table><tr><th>action</th><th>measure</th><th>target</th><th>state</th><th>legal basis</th><th>time class</th><th>deadline</th></tr>");
    action_rows(&mut h, &waiting);
    h.push_str("</table><h2>In force</h2><table><tr><th>action</th><th>measure</th><th>target</th><th>state</th><th>legal basis</th><th>time class</th><th>ends at the latest</th></tr>");
    action_rows(&mut h, &applied);
    h.push_str("</table><h2>Recent actions</h2><table><tr><th>action</th><th>measure</th><th>target</th><th>state</th><th>legal basis</th><th>time class</th><th>deadline</th></tr>");
    action_rows(&mut h, &recent);
    h.push_str("</table><h2>Measures</h2><table><tr><th>measure</th><th>措置</th><th>legal basis</th><th>status</th><th>public notice</th></tr>");
    for st in &status {
        let m = catalog::measure(st.measure);
        let basis: Vec<_> = m.legal_basis.iter().map(|b| b.as_str()).collect();
        let state = if st.refused {
            "<span class=refused>refused by the working group</span>".to_string()
        } else if st.enabled {
            "<span class=on>enabled</span>".to_string()
        } else {
            "<span class=off>disabled</span>".to_string()
        };
        let notice = match (&st.notice, st.requires_notice) {
            (Some(n), _) => format!("{} ({})", esc(&n.url), esc(&n.version)),
            (None, true) => "<b>required before enabling</b>".into(),
            (None, false) => "not required".into(),
        };
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(m.id_str),
            esc(m.title_ja),
            esc(&basis.join(", ")),
            state,
            notice
        );
    }
    h.push_str("</table><p><a href=/metrics>metrics</a> · <a href=/api/catalog>catalog (JSON)</a> · <a href=/api/ledger/verify>verify the ledger</a></p></body></html>");
    Ok(Html(h))
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<script>\"x\"&'"), "&lt;script&gt;&quot;x&quot;&amp;&#39;");
    }
}
