//! Public pages, without authentication: the telephone family's guidance for users
//! (`phone.advise-users`) and the countries targeted by fraud over the last 30 days
//! (`phone.publish-fraud-destinations`: aggregates only, counts under 3 hidden).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jiff::SignedDuration;
use mamori_core::store::ActionFilter;
use mamori_phone::publish::{self, FraudDestinations, Lang};
use serde::Deserialize;

use crate::AppState;

/// `?lang=ja|en`
#[derive(Debug, Deserialize)]
pub(crate) struct LangQuery {
    lang: Option<String>,
}

fn lang(q: &LangQuery) -> Lang {
    Lang::parse(q.lang.as_deref().unwrap_or("ja"))
}

pub(crate) async fn advice(Query(q): Query<LangQuery>) -> Html<String> {
    Html(publish::advice_html(lang(&q)))
}

async fn destinations(s: &AppState) -> Result<FraudDestinations, Response> {
    let gov = s.gov.clone();
    let r = tokio::task::spawn_blocking(move || {
        let to = gov.now();
        let from = to.checked_sub(SignedDuration::from_hours(24 * 30)).unwrap_or(to);
        gov.store().actions(&ActionFilter::default()).map(|a| publish::fraud_destinations(&a, from, to))
    })
    .await;
    match r {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "public fraud destinations: store error");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

pub(crate) async fn fraud_destinations_html(State(s): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    match destinations(&s).await {
        Ok(d) => Html(publish::fraud_destinations_html(&d, lang(&q))).into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn fraud_destinations_json(State(s): State<AppState>) -> Response {
    match destinations(&s).await {
        Ok(d) => Json(d).into_response(),
        Err(r) => r,
    }
}
