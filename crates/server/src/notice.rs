//! The subscriber's notice page (`/s/{token}`): reached by the signed, expiring link in every
//! message, it shows their messages, takes their answers to consent requests and emergency
//! notices, and their opt-outs. The content and the rules are `mamori-notify`'s
//! ([`mamori_notify::page`]); this module is the HTTP around them.
//!
//! An expired or forged link, or a form without the page's check value, gets a 403 page; the
//! refusal is logged and counted, without the token. Pages are never cached, never framed and
//! never leak their address in a `Referer`.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mamori_notify::metrics_names as nm;
use mamori_notify::page::{Done, FormError};
use mamori_notify::{Lang, LinkError};
use serde::Deserialize;

use crate::AppState;

/// `?lang=ja|en&done=…`
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    lang: Option<String>,
    done: Option<String>,
}

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

fn refused(s: &AppState, reason: &'static str) -> Response {
    metrics::counter!(nm::PAGE_REFUSED, "reason" => reason).increment(1);
    // Never the token: it is the subscriber's credential.
    tracing::warn!(reason, "notice page: request refused");
    let body = match &s.notice {
        Some(p) => p.refused(reason),
        None => "<!doctype html><title>403</title><h1>403</h1>".to_owned(),
    };
    secure((StatusCode::FORBIDDEN, Html(body)).into_response())
}

fn unavailable() -> Response {
    secure((StatusCode::SERVICE_UNAVAILABLE, Html("<!doctype html><title>503</title><h1>503</h1>")).into_response())
}

pub(crate) async fn page(State(s): State<AppState>, Path(token): Path<String>, Query(q): Query<PageQuery>) -> Response {
    let Some(pages) = s.notice.clone() else { return unavailable() };
    let gov = s.gov.clone();
    let subscriber = match pages.verify(&token, gov.now()) {
        Ok(sub) => sub,
        Err(e @ (LinkError::Expired | LinkError::Forged)) => return refused(&s, e.label()),
    };
    let lang = q.lang.as_deref().and_then(Lang::parse);
    let done = q.done.as_deref().and_then(Done::parse);
    let r = tokio::task::spawn_blocking(move || pages.render(&gov, &subscriber, &token, lang, done)).await;
    match r {
        Ok(Ok(html)) => secure(Html(html).into_response()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "notice page failed");
            secure(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(_) => secure(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
    Form(form): Form<mamori_notify::page::Form>,
) -> Response {
    let Some(pages) = s.notice.clone() else { return unavailable() };
    let gov = s.gov.clone();
    let subscriber = match pages.verify(&token, gov.now()) {
        Ok(sub) => sub,
        Err(e @ (LinkError::Expired | LinkError::Forged)) => return refused(&s, e.label()),
    };
    let r = tokio::task::spawn_blocking(move || pages.submit(&gov, &subscriber, &token, &form)).await;
    match r {
        Ok(Ok(done)) => {
            // Back to the page (relative: `/s/{token}` keeps its path), with a banner.
            let lang =
                q.lang.as_deref().and_then(Lang::parse).map(|l| format!("&lang={}", l.as_str())).unwrap_or_default();
            let to = format!("?done={}{lang}", done.as_str());
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            secure(resp)
        }
        Ok(Err(FormError::BadForm)) => refused(&s, "form"),
        Ok(Err(FormError::NotYours)) => refused(&s, "not-yours"),
        Ok(Err(FormError::BadRequest(msg))) => secure(
            (StatusCode::UNPROCESSABLE_ENTITY, Html(format!("<!doctype html><p>{}</p>", crate::console::esc(&msg))))
                .into_response(),
        ),
        Ok(Err(FormError::Notify(e))) => {
            tracing::error!(error = %e, "notice page form failed");
            secure(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(_) => secure(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}
