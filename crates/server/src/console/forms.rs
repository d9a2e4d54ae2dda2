//! Form posts: login, logout, language, and the governance changes of the console. Each checks
//! the Origin, the session's CSRF token and the role before anything else.

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mamori_core::account::{Role, UiLanguage};

use super::{error_box, esc, page, t};
use crate::AppState;
use crate::auth::{PagePerson, Person, Right, SESSION_COOKIE};
use crate::controllers::{ApiError, ProposeBody, off_thread, proposal_from};
use crate::metrics_names as m;

/// Form fields; malformed or oversized bodies are refused cleanly and counted.
pub(crate) struct Fields(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(Form(v)) => Ok(Fields(v.into_iter().collect())),
            Err(rejection) => {
                metrics::counter!(m::HTTP_BAD_REQUEST).increment(1);
                let status = rejection.status();
                let why = match rejection {
                    FormRejection::InvalidFormContentType(_) => {
                        "send the form as application/x-www-form-urlencoded".into()
                    }
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => "the body is too large".into(),
                    other => other.body_text(),
                };
                Err(ApiError(status, why))
            }
        }
    }
}

impl Fields {
    fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Refuses a post whose `Origin` is another site (a cross-site form), before anything else.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    if origin == format!("http://{host}") || origin == format!("https://{host}") {
        return Ok(());
    }
    metrics::counter!(m::HTTP_CSRF_REFUSED).increment(1);
    tracing::warn!("refused a post from another origin");
    Err(ApiError(StatusCode::FORBIDDEN, "refused: the form was posted from another site".into()))
}

/// Origin, CSRF token and role, in that order.
fn guard(p: &Person, headers: &HeaderMap, f: &Fields, right: Option<Right>) -> Result<(), ApiError> {
    same_origin(headers)?;
    p.check_csrf(Some(f.get("csrf")))?;
    if let Some(r) = right {
        p.require(r)?;
    }
    Ok(())
}

/// An error as a console page with the error's status.
pub(crate) fn error_page(p: &Person, e: ApiError) -> Response {
    (e.0, Html(page(p, t(p.language, "Dashboard"), &error_box(&e.1)))).into_response()
}

fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') { next } else { "/" }
}

fn login_form(lang: UiLanguage, next: &str, error: Option<&str>) -> String {
    format!(
        "<!doctype html><html lang={l}><head><meta charset=utf-8><title>mamori</title><style>{style}</style></head><body>\
         <header><span class=brand>mamori 守り</span></header><main><h1>{title}</h1>{err}\
         <form id=login class=box method=post action=/login><input type=hidden name=next value='{next}'>\
         <label>{n}<input type=text name=name autocomplete=username required autofocus></label>\
         <label>{pw}<input type=password name=password autocomplete=current-password required></label>\
         <button id=login-submit>{title}</button></form></main></body></html>",
        l = lang.as_str(),
        style = super::STYLE,
        title = t(lang, "Log in"),
        err = error.map(error_box).unwrap_or_default(),
        next = esc(local_path(next)),
        n = t(lang, "Name"),
        pw = t(lang, "Password"),
    )
}

fn browser_language(headers: &HeaderMap) -> UiLanguage {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim_start().starts_with("en") { UiLanguage::En } else { UiLanguage::Ja }
}

/// `GET /login`
pub(crate) async fn login_page(
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Html<String> {
    Html(login_form(browser_language(&headers), q.get("next").map(String::as_str).unwrap_or("/"), None))
}

/// `POST /login`: a new session on success (never the one the browser presented).
pub(crate) async fn login(State(s): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let from = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let lang = browser_language(&headers);
    let f = match Fields::from_request(req, &s).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = same_origin(&headers) {
        return e.into_response();
    }
    let name = f.get("name").trim().to_owned();
    let next = local_path(f.get("next")).to_owned();
    if let Some(wait) = s.limiter.blocked_for(&name, from) {
        metrics::counter!(m::LOGINS, "outcome" => "limited").increment(1);
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Html(login_form(lang, &next, Some(t(lang, "Too many failed logins; try again later.")))),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let accounts = s.accounts.clone();
    let password = f.get("password").to_owned();
    let who = name.clone();
    let from_text = from.map(|a| a.to_string());
    let outcome = tokio::task::spawn_blocking(move || accounts.login(&who, &password, from_text.as_deref())).await;
    match outcome {
        Ok(Ok(o)) => {
            s.limiter.succeeded(&name);
            metrics::counter!(m::LOGINS, "outcome" => "ok").increment(1);
            tracing::info!(person = %o.account.name, role = %o.account.role, "logged in");
            let ttl = s.gov.config().server.session_ttl.as_secs();
            let secure = if s.gov.config().server.secure_cookies { "; Secure" } else { "" };
            let cookie =
                format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}", o.secret);
            let mut r = Redirect::to(&next).into_response();
            match HeaderValue::from_str(&cookie) {
                Ok(v) => {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                Err(_) => return ApiError::internal().into_response(),
            }
            r
        }
        Ok(Err(crate::auth::AccountError::BadCredentials)) => {
            s.limiter.failed(&name, from);
            metrics::counter!(m::LOGINS, "outcome" => "failed").increment(1);
            tracing::info!("a login failed");
            (StatusCode::UNAUTHORIZED, Html(login_form(lang, &next, Some(t(lang, "Wrong name or password.")))))
                .into_response()
        }
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(_) => ApiError::internal().into_response(),
    }
}

/// `POST /logout`
pub(crate) async fn logout(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    if let Err(e) = guard(&p, &headers, &f, None) {
        return error_page(&p, e);
    }
    if let Some(secret) = crate::auth::session_cookie_value(&headers) {
        let accounts = s.accounts.clone();
        let _ = tokio::task::spawn_blocking(move || accounts.logout(&secret)).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("mamori_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// `POST /language`: the person's console language, kept with their account.
pub(crate) async fn language(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    if let Err(e) = guard(&p, &headers, &f, None) {
        return error_page(&p, e);
    }
    let Ok(lang) = f.get("language").parse::<UiLanguage>() else {
        return error_page(&p, ApiError(StatusCode::BAD_REQUEST, "language is ja or en".into()));
    };
    let accounts = s.accounts.clone();
    let name = p.name.clone();
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap_or_else(|| "/".into());
    match off_thread(move || accounts.set_language(&name, lang, &mamori_core::subject::Actor(name.clone()))).await {
        Ok(_) => Redirect::to(local_path(&back)).into_response(),
        Err(e) => error_page(&p, e),
    }
}

/// `POST /actions/propose`
pub(crate) async fn propose(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    if let Err(e) = guard(&p, &headers, &f, Some(Right::Operate)) {
        return error_page(&p, e);
    }
    let body = ProposeBody {
        measure: f.get("measure").to_owned(),
        target: f.get("target").trim().to_owned(),
        subscriber: Some(f.get("subscriber").to_owned()),
        requested_by_subscriber: None,
        duration: Some(f.get("duration").to_owned()),
        reason: f.get("reason").to_owned(),
    };
    let who = p.actor();
    match govern(&s, &p, move |g| g.propose(proposal_from(g, body, who)?)).await {
        Ok(d) => Redirect::to(&format!("/actions/{}", d.action.id)).into_response(),
        Err(e) => super::pages::approvals_with_error(&s, &p, e).await,
    }
}

/// [`crate::controllers::blocking`] for a person's change: a governance refusal comes back in their language.
async fn govern<T: Send + 'static>(
    s: &AppState,
    p: &Person,
    f: impl FnOnce(&mamori_core::governance::Governance) -> Result<T, mamori_core::governance::GovernanceError>
    + Send
    + 'static,
) -> Result<T, ApiError> {
    let (lang, gov) = (p.language, s.gov.clone());
    off_thread(move || {
        f(&gov).map_err(|e| {
            let text = super::i18n::refusal(lang, &e);
            let mut refused = ApiError::from(e);
            if let Some(text) = text.filter(|_| refused.0 != StatusCode::INTERNAL_SERVER_ERROR) {
                refused.1 = text;
            }
            refused
        })
    })
    .await
}

async fn action_post(
    s: AppState,
    p: Person,
    id: String,
    headers: HeaderMap,
    f: Fields,
    right: Right,
    run: impl FnOnce(
        &mamori_core::governance::Governance,
        &str,
        &mamori_core::subject::Actor,
        &Fields,
    ) -> Result<(), mamori_core::governance::GovernanceError>
    + Send
    + 'static,
) -> Response {
    if let Err(e) = guard(&p, &headers, &f, Some(right)) {
        return error_page(&p, e);
    }
    let who = p.actor();
    let aid = id.clone();
    match govern(&s, &p, move |g| run(g, &aid, &who, &f)).await {
        Ok(()) => Redirect::to(&format!("/actions/{id}")).into_response(),
        Err(e) => super::pages::action_response(&s, &p, &id, Some(e)).await,
    }
}

/// `POST /actions/{id}/approve`: fields `assess.<field>` carry the assessments.
pub(crate) async fn approve(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    Path(id): Path<String>,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    action_post(s, p, id, headers, f, Right::Approve, |g, id, who, f| {
        let assessments: BTreeMap<String, String> =
            f.0.iter()
                .filter_map(|(k, v)| k.strip_prefix("assess.").map(|k| (k.to_owned(), v.trim().to_owned())))
                .collect();
        g.approve(id, who, assessments).map(|_| ())
    })
    .await
}

/// `POST /actions/{id}/reject`
pub(crate) async fn reject(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    Path(id): Path<String>,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    action_post(s, p, id, headers, f, Right::Approve, |g, id, who, f| g.reject(id, who, f.get("reason")).map(|_| ()))
        .await
}

/// `POST /actions/{id}/lift`
pub(crate) async fn lift(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    Path(id): Path<String>,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    action_post(s, p, id, headers, f, Right::Operate, |g, id, who, f| g.lift(id, who, f.get("reason")).map(|_| ()))
        .await
}

/// `POST /accounts` (administrators)
pub(crate) async fn create_account(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    if let Err(e) = guard(&p, &headers, &f, Some(Right::Administer)) {
        return error_page(&p, e);
    }
    let role = match f.get("role").parse::<Role>() {
        Ok(r) => r,
        Err(e) => return error_page(&p, ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    };
    let language = f.get("language").parse::<UiLanguage>().unwrap_or_default();
    let accounts = s.accounts.clone();
    let who = p.actor();
    let (name, password) = (f.get("name").to_owned(), f.get("password").to_owned());
    match off_thread(move || accounts.create(&name, role, &password, language, &who)).await {
        Ok(_) => Redirect::to("/accounts").into_response(),
        Err(e) => error_page(&p, e),
    }
}

/// `POST /accounts/{name}`: role change or disable/enable (administrators).
pub(crate) async fn change_account(
    State(s): State<AppState>,
    PagePerson(p): PagePerson,
    Path(name): Path<String>,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    if let Err(e) = guard(&p, &headers, &f, Some(Right::Administer)) {
        return error_page(&p, e);
    }
    let accounts = s.accounts.clone();
    let who = p.actor();
    let role = match f.get("role") {
        "" => None,
        r => match r.parse::<Role>() {
            Ok(r) => Some(r),
            Err(e) => return error_page(&p, ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
        },
    };
    let disabled = f.get("disabled").to_owned();
    let r = off_thread(move || {
        if let Some(role) = role {
            accounts.set_role(&name, role, &who)?;
        }
        if !disabled.is_empty() {
            accounts.set_disabled(&name, disabled == "true", &who)?;
        }
        Ok::<_, crate::auth::AccountError>(())
    })
    .await;
    match r {
        Ok(()) => Redirect::to("/accounts").into_response(),
        Err(e) => error_page(&p, e),
    }
}
