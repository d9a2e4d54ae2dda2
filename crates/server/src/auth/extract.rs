//! Who is calling: a console session (cookie) or an API token (bearer). Handlers take
//! [`ApiPerson`] (answers 401 JSON) or [`PagePerson`] (redirects to the login page), then ask
//! [`Person::require`] for the right their action needs, so a refused change is a 403 from the
//! server whatever the page showed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_core::account::{Role, UiLanguage};
use mamori_core::subject::Actor;

use super::same_secret;
use crate::AppState;
use crate::controllers::{ApiError, off_thread};
use crate::metrics_names as m;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "mamori_session";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Their name (the ledger's actor).
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Their console language.
    pub language: UiLanguage,
    /// The session's CSRF token (cookie sessions only; bearer calls carry no ambient authority).
    pub csrf: Option<String>,
}

/// What a right check refused.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Right {
    /// Change anything (operators, approvers, admins).
    Operate,
    /// Approve or reject (approvers).
    Approve,
    /// Accounts and measure switches (admins).
    Administer,
}

impl Person {
    /// The ledger's name for them.
    pub fn actor(&self) -> Actor {
        Actor(self.name.clone())
    }

    /// Refuses (403) unless their role has the right. Refusals are counted and logged without
    /// secrets.
    pub fn require(&self, right: Right) -> Result<(), ApiError> {
        let ok = match right {
            Right::Operate => self.role.may_operate(),
            Right::Approve => self.role.may_approve(),
            Right::Administer => self.role.may_administer(),
        };
        if ok {
            return Ok(());
        }
        metrics::counter!(m::HTTP_FORBIDDEN).increment(1);
        tracing::warn!(person = %self.name, role = %self.role, ?right, "refused: the role lacks the right");
        let why = match right {
            Right::Operate => "your role (auditor) may read but not change anything",
            Right::Approve => "only approvers may approve or reject",
            Right::Administer => "only administrators may do this",
        };
        Err(ApiError(StatusCode::FORBIDDEN, why.into()))
    }

    /// Checks a form's or header's CSRF token against the session's (bearer calls need none).
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ApiError> {
        match &self.csrf {
            None => Ok(()),
            Some(expected) if presented.is_some_and(|p| same_secret(p, expected)) => Ok(()),
            Some(_) => {
                metrics::counter!(m::HTTP_CSRF_REFUSED).increment(1);
                tracing::warn!(person = %self.name, "refused: missing or wrong CSRF token");
                Err(ApiError(StatusCode::FORBIDDEN, "missing or wrong CSRF token; reload the page".into()))
            }
        }
    }
}

/// The session secret from the `Cookie` header. Written by hand: one cookie of ours, read only.
pub(crate) fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Resolves the caller; `Ok(None)` when nobody is logged in.
async fn resolve(parts: &Parts, state: &AppState) -> Result<Option<Person>, ApiError> {
    if let Some(token) = bearer(parts) {
        let Some(name) = state.tokens.iter().find(|(t, _)| same_secret(t, token)).map(|(_, n)| n.clone()) else {
            return Ok(None);
        };
        let accounts = state.accounts.clone();
        let gov = state.gov.clone();
        let lookup = name.clone();
        let found = off_thread(move || {
            let account = accounts.get(&lookup)?;
            let approver = gov.is_approver(&Actor(lookup))?;
            Ok::<_, crate::auth::AccountError>((account, approver))
        })
        .await?;
        // A token's person has their account's role; without an account, approvers listed in
        // the configuration approve and everyone else operates.
        let person = match found {
            (Some(a), _) if a.disabled => return Ok(None),
            (Some(a), _) => Person { name, role: a.role, language: a.language, csrf: None },
            (None, true) => Person { name, role: Role::Approver, language: UiLanguage::Ja, csrf: None },
            (None, false) => Person { name, role: Role::Operator, language: UiLanguage::Ja, csrf: None },
        };
        return Ok(Some(person));
    }
    let Some(secret) = session_cookie(&parts.headers) else { return Ok(None) };
    let accounts = state.accounts.clone();
    let found = off_thread(move || accounts.session(&secret)).await?;
    Ok(found.map(|(a, s)| Person { name: a.name, role: a.role, language: a.language, csrf: Some(s.csrf_token) }))
}

/// A caller of the JSON API: 401 without credentials; cookie sessions must send the CSRF token
/// in `X-CSRF-Token` on anything but GET/HEAD.
pub(crate) struct ApiPerson(pub Person);

impl FromRequestParts<AppState> for ApiPerson {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(person) = resolve(parts, state).await? else {
            metrics::counter!(m::HTTP_UNAUTHORIZED).increment(1);
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "log in, or send a valid bearer token (see [server] api_tokens_file)".into(),
            ));
        };
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let presented = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
            person.check_csrf(presented)?;
        }
        Ok(ApiPerson(person))
    }
}

/// A visitor of a console page: redirected to the login page when not logged in.
pub(crate) struct PagePerson(pub Person);

/// Redirect to the login page, or an API-style error if resolution itself failed.
pub(crate) enum PageRejection {
    /// Not logged in.
    Login(String),
    /// Something failed.
    Error(ApiError),
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        match self {
            PageRejection::Login(next) => Redirect::to(&format!("/login?next={next}")).into_response(),
            PageRejection::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for PagePerson {
    type Rejection = PageRejection;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match resolve(parts, state).await.map_err(PageRejection::Error)? {
            Some(p) => Ok(PagePerson(p)),
            None => {
                // Only a local path goes into `next`, so the login page cannot be made to
                // redirect elsewhere.
                let path = parts.uri.path();
                let next = if path.starts_with('/') && !path.starts_with("//") { path } else { "/" };
                let next: String =
                    next.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')).collect();
                Err(PageRejection::Login(next))
            }
        }
    }
}
