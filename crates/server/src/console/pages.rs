//! The console's pages. Each reads through governance on the blocking pool and renders HTML.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use mamori_core::account::{Role, UiLanguage};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::{self, MeasureId};
use mamori_core::ledger::format_time;
use mamori_core::store::{ActionFilter, LedgerFilter};
use mamori_core::subject::SubscriberId;

use super::{csrf_field, error_box, esc, page, t};
use crate::AppState;
use crate::auth::{PagePerson, Person};
use crate::controllers::{ApiError, action_entries, blocking, build_report, ledger_entries, off_thread, verify};

/// An error already rendered as a console page (boxed: responses are large).
pub(crate) struct PageError(Box<Response>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

type PageResult = Result<Response, PageError>;

fn fail(p: &Person) -> impl FnOnce(ApiError) -> PageError + '_ {
    move |e| PageError(Box::new(super::forms::error_page(p, e)))
}

fn ok(p: &Person, title: &str, body: &str) -> PageResult {
    Ok(Html(page(p, title, body)).into_response())
}

/// Japan time, to the minute, for people.
fn jst(t: Timestamp) -> String {
    t.in_tz("Asia/Tokyo").map(|z| z.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|_| format_time(t))
}

fn measure_title(lang: UiLanguage, m: MeasureId) -> &'static str {
    let c = catalog::measure(m);
    match lang {
        UiLanguage::Ja => c.title_ja,
        UiLanguage::En => c.title_en,
    }
}

fn action_table(p: &Person, id: &str, actions: &[ActionRecord], last: &'static str) -> String {
    let l = p.language;
    let mut h = format!(
        "<table id={id}><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(l, "action"),
        t(l, "measure"),
        t(l, "target"),
        t(l, "state"),
        t(l, "legal basis"),
        t(l, "time class"),
        t(l, last)
    );
    if actions.is_empty() {
        let _ = write!(h, "<tr><td colspan=7><em>{}</em></td></tr>", t(l, "none"));
    }
    for a in actions {
        let _ = write!(
            h,
            "<tr data-action-id='{id}' data-measure='{m}' data-state='{st}'><td><a class=action-link href='/actions/{id}'><code>{id}</code></a></td>\
             <td title='{m}'>{title}</td><td>{target}</td><td>{st}</td><td>{basis}{em}</td><td>{tc}</td><td>{dl}</td></tr>",
            id = esc(&a.id),
            m = esc(a.measure.as_str()),
            title = esc(measure_title(l, a.measure)),
            target = esc(&a.target.to_string()),
            st = esc(a.state.as_str()),
            basis = esc(a.legal_basis.as_str()),
            em = if a.emergency { format!(" ({})", t(l, "emergency")) } else { String::new() },
            tc = esc(&a.time_class),
            dl = a.deadline.map(jst).map(|d| esc(&d)).unwrap_or_default(),
        );
    }
    h.push_str("</table>");
    h
}

/// A bar chart as inline SVG (no script, no external files).
fn bar_chart(id: &str, bars: &[(String, u64)], label: &str) -> String {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let (w, hgt, pad) = (40usize, 160usize, 24usize);
    let width = bars.len() * w + 2 * pad;
    let mut s = format!(
        "<svg id={id} role=img aria-label='{}' width={width} height={} viewBox='0 0 {width} {}' xmlns='http://www.w3.org/2000/svg'>",
        esc(label),
        hgt + 2 * pad,
        hgt + 2 * pad
    );
    for (i, (name, v)) in bars.iter().enumerate() {
        let bh = (*v as f64 / max as f64 * hgt as f64).round() as usize;
        let x = pad + i * w;
        let y = pad + hgt - bh;
        let _ = write!(
            s,
            "<rect class=bar data-label='{n}' data-value={v} x={x} y={y} width={bw} height={bh} fill='#457b9d'><title>{n}: {v}</title></rect>\
             <text x={tx} y={ty} font-size=9 text-anchor=middle>{short}</text><text x={tx} y={vy} font-size=9 text-anchor=middle>{v}</text>",
            n = esc(name),
            bw = w - 6,
            tx = x + (w - 6) / 2,
            ty = pad + hgt + 12,
            vy = y.saturating_sub(3).max(9),
            short = esc(name.get(5..).unwrap_or(name)),
        );
    }
    s.push_str("</svg>");
    s
}

/// `GET /`: actions in force by measure, waiting ones, findings over time, what expires next.
pub(crate) async fn dashboard(State(s): State<AppState>, PagePerson(p): PagePerson) -> PageResult {
    let since = s.gov.now().checked_sub(SignedDuration::from_hours(24 * 14)).unwrap_or_else(|_| s.gov.now());
    let (waiting, applied, recent, findings) = blocking(&s.gov, move |g| {
        let store = g.store();
        let by = |st| store.actions(&ActionFilter { state: Some(st), limit: Some(500), ..Default::default() });
        let mut waiting = by(ActionState::PendingApproval)?;
        waiting.extend(by(ActionState::AwaitingConsent)?);
        let applied = by(ActionState::Applied)?;
        let recent = store.actions(&ActionFilter { limit: Some(20), ..Default::default() })?;
        let mut findings: BTreeMap<String, u64> = BTreeMap::new();
        store.export_ledger(&LedgerFilter { since: Some(since), ..Default::default() }, &mut |e| {
            if e.kind == "finding" {
                let day = e.at.parse::<Timestamp>().map(|t| jst(t)[..10].to_owned()).unwrap_or_default();
                *findings.entry(day).or_default() += 1;
            }
            Ok(())
        })?;
        Ok((waiting, applied, recent, findings))
    })
    .await
    .map_err(fail(&p))?;
    let l = p.language;
    let mut h = String::new();
    let mut per: BTreeMap<MeasureId, u64> = BTreeMap::new();
    for a in &applied {
        *per.entry(a.measure).or_default() += 1;
    }
    let _ = write!(
        h,
        "<h2>{}</h2><table id=by-measure><tr><th>{}</th><th>#</th></tr>",
        t(l, "Active actions by measure"),
        t(l, "measure")
    );
    if per.is_empty() {
        let _ = write!(h, "<tr><td colspan=2><em>{}</em></td></tr>", t(l, "none"));
    }
    for (m, n) in &per {
        let _ =
            write!(h, "<tr data-measure='{}'><td>{}</td><td>{n}</td></tr>", esc(m.as_str()), esc(measure_title(l, *m)));
    }
    h.push_str("</table>");
    // Every day of the window, zero days included, so the chart's time axis is honest.
    let mut days = Vec::new();
    let mut d = since;
    while d <= s.gov.now() {
        let key = jst(d)[..10].to_owned();
        if days.last().is_none_or(|(k, _): &(String, u64)| *k != key) {
            days.push((key.clone(), findings.get(&key).copied().unwrap_or(0)));
        }
        d = d
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(s.gov.now().checked_add(SignedDuration::from_secs(1)).unwrap_or(d));
    }
    let _ = write!(
        h,
        "<h2>{}</h2>{}",
        t(l, "Findings per day (last 14 days)"),
        bar_chart("findings-chart", &days, t(l, "Findings per day (last 14 days)"))
    );
    let _ = write!(h, "<h2>{}</h2>{}", t(l, "Waiting for a person"), action_table(&p, "waiting", &waiting, "deadline"));
    let _ = write!(h, "<h2>{}</h2>{}", t(l, "In force"), action_table(&p, "in-force", &applied, "ends at the latest"));
    let mut expiring: Vec<_> = applied.iter().filter(|a| a.deadline.is_some()).cloned().collect();
    expiring.sort_by_key(|a| a.deadline);
    expiring.truncate(10);
    let _ = write!(
        h,
        "<h2>{}</h2>{}",
        t(l, "Expiring next"),
        action_table(&p, "expiring", &expiring, "ends at the latest")
    );
    let _ = write!(h, "<h2>{}</h2>{}", t(l, "Recent actions"), action_table(&p, "recent", &recent, "deadline"));
    ok(&p, t(l, "Dashboard"), &h)
}

async fn approvals_body(s: &AppState, p: &Person) -> Result<String, ApiError> {
    let pending = blocking(&s.gov, |g| {
        Ok(g.store().actions(&ActionFilter {
            state: Some(ActionState::PendingApproval),
            limit: Some(500),
            ..Default::default()
        })?)
    })
    .await?;
    let l = p.language;
    let mut h = format!(
        "<table id=approvals><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(l, "action"),
        t(l, "measure"),
        t(l, "target"),
        t(l, "proposer"),
        t(l, "approvals"),
        t(l, "Evidence mamori computed"),
        t(l, "deadline")
    );
    if pending.is_empty() {
        let _ = write!(h, "<tr><td colspan=7><em>{}</em></td></tr>", t(l, "none"));
    }
    for a in &pending {
        let needed = catalog::measure(a.measure).approval.map(|r| r.distinct_approvers).unwrap_or(0);
        let evidence = serde_json::to_string(&a.evidence).unwrap_or_default();
        let short: String = evidence.chars().take(200).collect();
        let _ = write!(
            h,
            "<tr data-action-id='{id}' data-measure='{m}'><td><a class=action-link href='/actions/{id}'><code>{id}</code></a></td><td>{title}</td>\
             <td>{target}</td><td>{prop}</td><td>{n} / {needed}</td><td><code>{ev}</code></td><td>{dl}</td></tr>",
            id = esc(&a.id),
            m = esc(a.measure.as_str()),
            title = esc(measure_title(l, a.measure)),
            target = esc(&a.target.to_string()),
            prop = esc(&a.proposer.0),
            n = a.approvals.len(),
            ev = esc(&short),
            dl = a.deadline.map(jst).map(|d| esc(&d)).unwrap_or_default(),
        );
    }
    h.push_str("</table>");
    if p.role.may_operate() {
        let _ = write!(
            h,
            "<h2>{title}</h2><form id=propose class=box method=post action=/actions/propose>{csrf}\
             <label>{m}<select name=measure>",
            title = t(l, "Propose an action"),
            csrf = csrf_field(p),
            m = t(l, "measure"),
        );
        for m in catalog::CATALOG.iter().filter(|m| m.restrictive) {
            let sel = if m.id == MeasureId::PhoneRestrictCountry { " selected" } else { "" };
            let _ = write!(
                h,
                "<option value='{}'{sel}>{} — {}</option>",
                esc(m.id_str),
                esc(m.id_str),
                esc(measure_title(l, m.id))
            );
        }
        let _ = write!(
            h,
            "</select></label><label>{tg}<input type=text name=target placeholder='country:882 · line:L-0001 · ip:192.0.2.1' required></label>\
             <label>{sub}<input type=text name=subscriber></label>\
             <label>{r}<textarea name=reason rows=3 required></textarea></label><button id=propose-submit>{b}</button></form>",
            tg = t(l, "target"),
            sub = t(l, "subscriber"),
            r = t(l, "Reason"),
            b = t(l, "Propose"),
        );
    }
    Ok(h)
}

/// `GET /approvals`: what waits for approvers, with the evidence, and the proposal form.
pub(crate) async fn approvals(State(s): State<AppState>, PagePerson(p): PagePerson) -> PageResult {
    let body = approvals_body(&s, &p).await.map_err(fail(&p))?;
    ok(&p, t(p.language, "Approvals"), &body)
}

/// The approvals page with an error on top, answered with the error's status.
pub(crate) async fn approvals_with_error(s: &AppState, p: &Person, e: ApiError) -> Response {
    let body = approvals_body(s, p).await.unwrap_or_default();
    (e.0, Html(page(p, t(p.language, "Approvals"), &format!("{}{body}", error_box(&e.1))))).into_response()
}

/// `GET /actions/{id}`
pub(crate) async fn action(State(s): State<AppState>, PagePerson(p): PagePerson, Path(id): Path<String>) -> Response {
    action_response(&s, &p, &id, None).await
}

/// The action's page, with an error on top (and its status) when a change was refused.
pub(crate) async fn action_response(s: &AppState, p: &Person, id: &str, error: Option<ApiError>) -> Response {
    let aid = id.to_owned();
    let loaded = blocking(&s.gov, move |g| {
        let Some(a) = g.store().action(&aid)? else { return Ok(None) };
        let entries = action_entries(g, &aid)?;
        let target = a.target.clone();
        let unlocks: Vec<_> = g
            .store()
            .active_unlocks(g.now())?
            .into_iter()
            .filter(|u| u.measure == a.measure && u.subject == target)
            .collect();
        Ok(Some((a, entries, unlocks)))
    })
    .await;
    let (a, entries, unlocks) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => return super::forms::error_page(p, ApiError(StatusCode::NOT_FOUND, format!("no action {id}"))),
        Err(e) => return super::forms::error_page(p, e),
    };
    let l = p.language;
    let m = catalog::measure(a.measure);
    let mut h = String::new();
    let status = match error {
        Some(e) => {
            h.push_str(&error_box(&e.1));
            e.0
        }
        None => StatusCode::OK,
    };
    let _ = write!(
        h,
        "<dl id=action class=kv><dt>{}</dt><dd><code>{}</code></dd><dt>{}</dt><dd>{} <code>{}</code></dd><dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd id=state>{}</dd><dt>{}</dt><dd>{}{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>",
        t(l, "action"),
        esc(&a.id),
        t(l, "measure"),
        esc(measure_title(l, a.measure)),
        esc(a.measure.as_str()),
        t(l, "target"),
        esc(&a.target.to_string()),
        t(l, "state"),
        esc(a.state.as_str()),
        t(l, "legal basis"),
        esc(a.legal_basis.as_str()),
        if a.emergency { format!(" ({})", t(l, "emergency")) } else { String::new() },
        t(l, "time class"),
        esc(&a.time_class),
        t(l, "proposer"),
        esc(&a.proposer.0),
        t(l, "proposed at"),
        esc(&jst(a.proposed_at)),
    );
    for (k, v) in [("applied at", a.applied_at), ("ended at", a.ended_at), ("deadline", a.deadline)] {
        if let Some(v) = v {
            let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", t(l, k), esc(&jst(v)));
        }
    }
    if let Some(sub) = &a.subscriber {
        let _ = write!(
            h,
            "<dt>{}</dt><dd><a href='/consent?subscriber={s}'>{s}</a></dd>",
            t(l, "subscriber"),
            s = esc(&sub.0)
        );
    }
    let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", t(l, "lift condition"), esc(&a.lift_condition));
    if let Some(rule) = m.approval {
        let _ = write!(
            h,
            "<dt>{}</dt><dd id=approval-count>{} / {}</dd>",
            t(l, "approvals"),
            a.approvals.len(),
            rule.distinct_approvers
        );
    }
    h.push_str("</dl>");
    if !a.approvals.is_empty() {
        h.push_str("<ul id=approvals-given>");
        for ap in &a.approvals {
            let assess: Vec<String> = ap.assessments.iter().map(|(k, v)| format!("{}: {}", esc(k), esc(v))).collect();
            let _ = write!(h, "<li><b>{}</b> {} — {}</li>", esc(&ap.approver.0), esc(&jst(ap.at)), assess.join("; "));
        }
        h.push_str("</ul>");
    }
    let _ = write!(
        h,
        "<h2>{}</h2><table id=stages><tr><th>stage</th><th>until</th><th>{}</th></tr>",
        t(l, "Data stages unlocked"),
        t(l, "Reason")
    );
    if unlocks.is_empty() {
        let _ = write!(h, "<tr><td colspan=3><em>{}</em></td></tr>", t(l, "none"));
    }
    for u in &unlocks {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", u.stage, esc(&jst(u.until)), esc(&u.reason));
    }
    let pretty = serde_json::to_string_pretty(&a.evidence).unwrap_or_default();
    let _ = write!(h, "</table><h2>{}</h2><pre id=evidence>{}</pre>", t(l, "evidence"), esc(&pretty));
    if a.state == ActionState::PendingApproval && p.role.may_approve() {
        let _ = write!(
            h,
            "<form id=approve class=box method=post action='/actions/{}/approve'>{}",
            esc(&a.id),
            csrf_field(p)
        );
        if let Some(rule) = m.approval {
            let _ = write!(h, "<p>{}</p>", t(l, "Assessments the approver must record"));
            for field in rule.assessments {
                let _ = write!(
                    h,
                    "<label>{f}<textarea name='assess.{f}' rows=2 required></textarea></label>",
                    f = esc(field)
                );
            }
        }
        let _ = write!(h, "<button id=approve-submit>{}</button></form>", t(l, "Approve"));
        let _ = write!(
            h,
            "<form id=reject class=box method=post action='/actions/{}/reject'>{}<label>{}<textarea name=reason rows=2 required></textarea></label><button id=reject-submit>{}</button></form>",
            esc(&a.id),
            csrf_field(p),
            t(l, "Reason"),
            t(l, "Reject")
        );
    }
    if a.state == ActionState::Applied && p.role.may_operate() {
        let _ = write!(
            h,
            "<form id=lift class=box method=post action='/actions/{}/lift'>{}<label>{}<textarea name=reason rows=2 required></textarea></label><button id=lift-submit>{}</button></form>",
            esc(&a.id),
            csrf_field(p),
            t(l, "Reason"),
            t(l, "Lift")
        );
    }
    let _ = write!(h, "<h2>{}</h2><ol id=timeline>", t(l, "Timeline (ledger)"));
    for e in &entries {
        let _ = write!(
            h,
            "<li data-kind='{k}'><code>#{seq}</code> {at} <b>{k}</b> — {actor} <code>{body}</code></li>",
            k = esc(&e.kind),
            seq = e.seq,
            at = esc(&e.at.parse::<Timestamp>().map(jst).unwrap_or_else(|_| e.at.clone())),
            actor = esc(&e.actor),
            body = esc(&e.body),
        );
    }
    h.push_str("</ol>");
    (status, Html(page(p, &format!("{} {}", t(l, "action"), a.id), &h))).into_response()
}

/// `GET /consent?subscriber=ID`: the consent registry for one subscriber.
pub(crate) async fn consent(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let l = p.language;
    let sub = q.get("subscriber").map(|s| s.trim().to_owned()).unwrap_or_default();
    let mut h = format!(
        "<form id=consent-search class=box method=get action=/consent><label>{}<input type=text name=subscriber value='{}'></label><button id=consent-submit>{}</button></form>",
        t(l, "Subscriber id"),
        esc(&sub),
        t(l, "Search")
    );
    if !sub.is_empty() {
        let id = SubscriberId(sub.clone());
        let (states, history) = blocking(&s.gov, move |g| g.consent_overview(&id)).await.map_err(fail(&p))?;
        let _ = write!(h, "<table id=consent><tr><th>{}</th><th>{}</th></tr>", t(l, "measure"), t(l, "position"));
        for (m, st) in &states {
            let st = serde_json::to_value(st).map(|v| v.to_string()).unwrap_or_default();
            let _ = write!(
                h,
                "<tr data-measure='{}'><td>{}</td><td><code>{}</code></td></tr>",
                esc(m.as_str()),
                esc(measure_title(l, *m)),
                esc(&st)
            );
        }
        let _ = write!(
            h,
            "</table><h2>{}</h2><table id=consent-history><tr><th>at</th><th>{}</th><th>change</th><th>method</th><th>by</th></tr>",
            t(l, "History"),
            t(l, "measure")
        );
        for e in &history {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
                esc(&jst(e.at)),
                esc(e.measure.as_str()),
                e.change,
                esc(&e.method),
                esc(&e.recorded_by.0)
            );
        }
        h.push_str("</table>");
    }
    ok(&p, t(l, "Consent"), &h)
}

/// `GET /ledger?before=N&measure=M&verify=1`: the ledger browser with verification status.
pub(crate) async fn ledger(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let l = p.language;
    let mut h = String::new();
    h.push_str("<form id=verify method=get action=/ledger><input type=hidden name=verify value=1>");
    let _ = write!(h, "<button id=verify-submit>{}</button></form>", t(l, "Verify the ledger"));
    if q.get("verify").is_some_and(|v| v == "1") {
        match verify(&s).await.map_err(fail(&p))? {
            Ok(r) => {
                let _ = write!(
                    h,
                    "<p id=verify-result class=ok>✔ {} — <code>{}</code></p>",
                    t(l, "The hash chain is intact"),
                    esc(&serde_json::to_value(&r).map(|v| v.to_string()).unwrap_or_default()),
                );
            }
            Err((seq, why)) => {
                let _ = write!(
                    h,
                    "<p id=verify-result class=bad>✘ {} — #{seq}: {}</p>",
                    t(l, "The ledger has been tampered with"),
                    esc(&why)
                );
            }
        }
    }
    let before = q.get("before").and_then(|b| b.parse::<u64>().ok());
    let measure = q.get("measure").filter(|m| !m.is_empty()).and_then(|m| m.parse::<MeasureId>().ok());
    let filter = LedgerFilter { before_seq: before, limit: Some(100), measure, ..Default::default() };
    let entries = blocking(&s.gov, move |g| ledger_entries(g, &filter)).await.map_err(fail(&p))?;
    h.push_str("<table id=ledger><tr><th>#</th><th>at</th><th>kind</th><th>measure</th><th>action</th><th>actor</th><th>body</th><th>hash</th></tr>");
    for e in &entries {
        let _ = write!(
            h,
            "<tr data-seq={seq}><td>{seq}</td><td>{at}</td><td>{k}</td><td>{m}</td><td>{a}</td><td>{actor}</td><td><code>{body}</code></td><td><code title='{hash}'>{short}</code></td></tr>",
            seq = e.seq,
            at = esc(&e.at),
            k = esc(&e.kind),
            m = esc(e.measure.as_deref().unwrap_or("")),
            a = e
                .action_id
                .as_deref()
                .map(|a| format!("<a href='/actions/{x}'>{x}</a>", x = esc(a)))
                .unwrap_or_default(),
            actor = esc(&e.actor),
            body = esc(&e.body.chars().take(300).collect::<String>()),
            hash = esc(&e.hash),
            short = esc(e.hash.get(..12).unwrap_or("")),
        );
    }
    h.push_str("</table>");
    if let Some(last) = entries.last().filter(|e| e.seq > 1) {
        let _ = write!(h, "<p><a id=older href='/ledger?before={}'>{} →</a></p>", last.seq, t(l, "Older entries"));
    }
    ok(&p, t(l, "Ledger"), &h)
}

/// `GET /report?from=&to=`: the transparency report with its charts.
pub(crate) async fn report(
    State(_s): State<AppState>,
    PagePerson(p): PagePerson,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let l = p.language;
    let from = q.get("from").cloned().unwrap_or_default();
    let to = q.get("to").cloned().unwrap_or_default();
    let qs = format!("from={}&to={}", esc(&from), esc(&to));
    let h = format!(
        "<form id=period class=box method=get action=/report><label>{} ({})<input type=text name=from value='{}' placeholder=YYYY-MM-DD></label>\
         <label>{}<input type=text name=to value='{}' placeholder=YYYY-MM-DD></label><button id=period-submit>{}</button></form>\
         <p><a href='/report.html?{qs}'>HTML</a> · <a href='/api/report?{qs}'>JSON</a></p>\
         <iframe id=report-frame title=report src='/report.html?{qs}' style='width:100%;height:80vh;border:1px solid #ccc'></iframe>",
        t(l, "Period"),
        t(l, "from"),
        esc(&from),
        t(l, "to"),
        esc(&to),
        t(l, "Show"),
    );
    ok(&p, t(l, "Report"), &h)
}

/// `GET /report.html`: the report page itself (self-contained, no script).
pub(crate) async fn report_html(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let r =
        build_report(&s, q.get("from").map(String::as_str), q.get("to").map(String::as_str)).await.map_err(fail(&p))?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], r.to_html()).into_response())
}

/// `GET /catalog`: every measure, whether it is enabled and why (notice prerequisites).
pub(crate) async fn catalog(State(s): State<AppState>, PagePerson(p): PagePerson) -> PageResult {
    let status = blocking(&s.gov, |g| g.measure_status()).await.map_err(fail(&p))?;
    let l = p.language;
    let mut h = format!(
        "<table id=catalog><tr><th>id</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(l, "measure"),
        t(l, "legal basis"),
        t(l, "consent"),
        t(l, "approval rule"),
        t(l, "max duration"),
        t(l, "stages and fields"),
        t(l, "status"),
        t(l, "public notice"),
    );
    for st in &status {
        let m = catalog::measure(st.measure);
        let basis: Vec<_> = m.legal_basis.iter().map(|b| b.as_str()).collect();
        let state = if st.refused {
            format!("<span class=refused>{}</span>", t(l, "refused by the working group"))
        } else if st.enabled {
            format!("<span class=on>{}</span>", t(l, "enabled"))
        } else {
            format!("<span class=off>{}</span>", t(l, "disabled"))
        };
        let notice = match (&st.notice, st.requires_notice) {
            (Some(n), _) => format!("<a href='{u}' rel=noreferrer>{u}</a> ({})", esc(&n.version), u = esc(&n.url)),
            (None, true) => format!("<b>{}</b>", t(l, "required before enabling")),
            (None, false) => t(l, "not required").to_owned(),
        };
        let stages: Vec<String> = m
            .stages
            .iter()
            .map(|s| {
                let fields: Vec<String> = s.fields.iter().map(|f| format!("{f:?}")).collect();
                format!("{}: {}", s.number, esc(&fields.join(", ")))
            })
            .collect();
        let _ = write!(
            h,
            "<tr data-measure='{id}' data-enabled={en}><td><code>{id}</code></td><td>{title}</td><td>{basis}</td><td>{consent}</td><td>{appr}</td><td>{dur}</td><td>{stages}</td><td>{state}</td><td>{notice}</td></tr>",
            id = esc(m.id_str),
            en = st.enabled,
            title = esc(measure_title(l, m.id)),
            basis = esc(&basis.join(", ")),
            consent =
                esc(&serde_json::to_value(m.consent).map(|v| v.as_str().unwrap_or("").to_owned()).unwrap_or_default()),
            appr = m
                .approval
                .map(|r| format!("{} ({})", r.distinct_approvers, esc(&r.assessments.join(", "))))
                .unwrap_or_else(|| "—".into()),
            dur = m.max_duration.map(|d| format!("{}h", d.as_secs() / 3600)).unwrap_or_else(|| "—".into()),
            stages = stages.join("<br>"),
        );
    }
    h.push_str("</table>");
    ok(&p, t(l, "Catalog"), &h)
}

/// `GET /accounts` (administrators): people, roles, and forms to add and change them.
pub(crate) async fn accounts(State(s): State<AppState>, PagePerson(p): PagePerson) -> PageResult {
    p.require(crate::auth::Right::Administer).map_err(fail(&p))?;
    let accounts = s.accounts.clone();
    let list = off_thread(move || accounts.list()).await.map_err(fail(&p))?;
    let l = p.language;
    let mut h = format!(
        "<table id=accounts><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        t(l, "Name"),
        t(l, "role"),
        t(l, "language")
    );
    for a in &list {
        let options: String = Role::ALL
            .iter()
            .map(|r| {
                format!(
                    "<option value={v}{sel}>{n}</option>",
                    v = r.as_str(),
                    sel = if *r == a.role { " selected" } else { "" },
                    n = t(l, r.as_str())
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr data-account='{n}'><td>{n}{dis}</td><td><form method=post action='/accounts/{n}'>{csrf}<select name=role>{options}</select><button>{cr}</button></form></td><td>{lang}</td>\
             <td><form method=post action='/accounts/{n}'>{csrf}<input type=hidden name=disabled value={d}><button>{db}</button></form></td></tr>",
            n = esc(&a.name),
            dis = if a.disabled { format!(" ({})", t(l, "disabled")) } else { String::new() },
            csrf = csrf_field(&p),
            cr = t(l, "Change role"),
            lang = a.language.as_str(),
            d = !a.disabled,
            db = if a.disabled { t(l, "Enable") } else { t(l, "Disable") },
        );
    }
    let options: String =
        Role::ALL.iter().map(|r| format!("<option value={}>{}</option>", r.as_str(), t(l, r.as_str()))).collect();
    let _ = write!(
        h,
        "</table><h2>{title}</h2><form id=new-account class=box method=post action=/accounts>{csrf}<label>{n}<input type=text name=name required></label>\
         <label>{pw}<input type=password name=password minlength=12 required autocomplete=new-password></label><label>{r}<select name=role>{options}</select></label>\
         <label>{lg}<select name=language><option value=ja>日本語</option><option value=en>English</option></select></label><button id=new-account-submit>{title}</button></form>",
        title = t(l, "Create account"),
        csrf = csrf_field(&p),
        n = t(l, "Name"),
        pw = t(l, "Password"),
        r = t(l, "role"),
        lg = t(l, "language"),
    );
    ok(&p, t(l, "Accounts"), &h)
}
