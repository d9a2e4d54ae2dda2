//! The browser console for operators, approvers, auditors and administrators: server-rendered
//! HTML, no script needed, every value escaped, Japanese or English per person.
//!
//! Pages read through the same governance calls as the API; forms post back with the session's
//! CSRF token and are refused (403) when the role lacks the right, whatever the page showed.

mod forms;
mod i18n;
mod pages;

use std::fmt::Write;

use axum::Router;
use axum::routing::{get, post};
use mamori_core::account::{Role, UiLanguage};

pub(crate) use i18n::t;

use crate::AppState;
use crate::auth::Person;

/// The console's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(forms::login_page).post(forms::login))
        .route("/logout", post(forms::logout))
        .route("/language", post(forms::language))
        .route("/approvals", get(pages::approvals))
        .route("/actions/propose", post(forms::propose))
        .route("/actions/{id}", get(pages::action))
        .route("/actions/{id}/approve", post(forms::approve))
        .route("/actions/{id}/reject", post(forms::reject))
        .route("/actions/{id}/lift", post(forms::lift))
        .route("/consent", get(pages::consent))
        .route("/ledger", get(pages::ledger))
        .route("/report", get(pages::report))
        .route("/report.html", get(pages::report_html))
        .route("/catalog", get(pages::catalog))
        .route("/accounts", get(pages::accounts).post(forms::create_account))
        .route("/accounts/{name}", post(forms::change_account))
}

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

const STYLE: &str = "body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;margin:0;color:#222}\
header{background:#1d3557;color:#fff;padding:.6em 1.5em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}\
header a{color:#fff;text-decoration:none}header a:hover{text-decoration:underline}header .brand{font-weight:bold;font-size:1.2em}\
header form{display:inline;margin:0}header button{font-size:.8em}#whoami{margin-left:auto}\
main{padding:1em 1.5em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.9em;vertical-align:top}\
th{background:#f3f3f3}#error{background:#fde2e2;border:1px solid #c00;padding:.6em;color:#900}.notice{background:#e7f5e7;border:1px solid #393;padding:.6em}\
.ok{color:#070;font-weight:bold}.bad{color:#a00;font-weight:bold}.on{color:#070}.off{color:#888}.refused{color:#a00}\
form.box{border:1px solid #ddd;padding:.8em;margin:1em 0;max-width:44em}form.box label{display:block;margin:.4em 0}\
form.box input[type=text],form.box input[type=password],form.box textarea,form.box select{width:100%;box-sizing:border-box}\
pre{background:#f7f7f7;padding:.6em;overflow:auto;max-width:60em;white-space:pre-wrap;word-break:break-all}dl.kv dt{font-weight:bold;float:left;clear:left;width:14em}dl.kv dd{margin-left:15em}";

/// Renders a whole page around `body` for a logged-in person.
pub(crate) fn page(p: &Person, title: &str, body: &str) -> String {
    let lang = p.language;
    let mut h = String::with_capacity(body.len() + 4096);
    let _ = write!(
        h,
        "<!doctype html><html lang={l}><head><meta charset=utf-8><meta name=viewport content='width=device-width'>\
         <meta name=csrf-token content='{csrf}'><title>{title} · mamori</title><style>{STYLE}</style></head><body><header>\
         <span class=brand>mamori 守り</span><a href=/>{d}</a><a href=/approvals>{a}</a><a href=/consent>{c}</a>\
         <a href=/ledger>{lg}</a><a href=/report>{r}</a><a href=/catalog>{cat}</a>",
        l = lang.as_str(),
        csrf = esc(p.csrf.as_deref().unwrap_or("")),
        title = esc(title),
        d = t(lang, "Dashboard"),
        a = t(lang, "Approvals"),
        c = t(lang, "Consent"),
        lg = t(lang, "Ledger"),
        r = t(lang, "Report"),
        cat = t(lang, "Catalog"),
    );
    if p.role == Role::Admin {
        let _ = write!(h, "<a href=/accounts>{}</a>", t(lang, "Accounts"));
    }
    let _ = write!(
        h,
        "<span id=whoami data-role={role}>{} ({})</span>{}\
         <form id=logout method=post action=/logout>{}<button id=logout-submit>{}</button></form></header><main><h1>{}</h1>{}</main></body></html>",
        esc(&p.name),
        t(lang, p.role.as_str()),
        language_form(p),
        csrf_field(p),
        t(lang, "Log out"),
        esc(title),
        body,
        role = p.role.as_str(),
    );
    h
}

fn language_form(p: &Person) -> String {
    let other = match p.language {
        UiLanguage::Ja => ("en", "English"),
        UiLanguage::En => ("ja", "日本語"),
    };
    format!(
        "<form id=language method=post action=/language>{}<button name=language value={}>{}</button></form>",
        csrf_field(p),
        other.0,
        other.1
    )
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_field(p: &Person) -> String {
    format!("<input type=hidden name=csrf value='{}'>", esc(p.csrf.as_deref().unwrap_or("")))
}

/// An error box.
pub(crate) fn error_box(msg: &str) -> String {
    format!("<p id=error role=alert>{}</p>", esc(msg))
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<script>\"x\"&'"), "&lt;script&gt;&quot;x&quot;&amp;&#39;");
    }
}
