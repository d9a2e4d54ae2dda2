//! Thin handlers: parse, call governance on the blocking pool, answer JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::{CATALOG, MeasureId};
use mamori_core::governance::{Governance, GovernanceError};
use mamori_core::store::{ActionFilter, StoreError};
use mamori_core::subject::Actor;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::metrics_names as m;

/// A JSON error answer.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<GovernanceError> for ApiError {
    fn from(e: GovernanceError) -> Self {
        let status = match &e {
            GovernanceError::NotAnApprover { .. }
            | GovernanceError::ProposerCannotApprove { .. }
            | GovernanceError::AlreadyApproved { .. }
            | GovernanceError::Refused { .. }
            | GovernanceError::NotEnabled { .. }
            | GovernanceError::NoticeMissing { .. } => StatusCode::FORBIDDEN,
            GovernanceError::InvalidTransition { .. } => StatusCode::CONFLICT,
            GovernanceError::UnknownAction(_) => StatusCode::NOT_FOUND,
            GovernanceError::MissingAssessment { .. }
            | GovernanceError::BadRequest(_)
            | GovernanceError::ConsentNotApplicable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            GovernanceError::Store(StoreError::Conflict { .. }) => StatusCode::CONFLICT,
            _ => {
                tracing::error!(error = %e, "request failed");
                return ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into());
            }
        };
        ApiError(status, e.to_string())
    }
}

async fn blocking<T: Send + 'static>(
    gov: &Arc<Governance>,
    f: impl FnOnce(&Governance) -> Result<T, GovernanceError> + Send + 'static,
) -> Result<T, ApiError> {
    let gov = gov.clone();
    tokio::task::spawn_blocking(move || f(&gov))
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?
        .map_err(ApiError::from)
}

/// The person behind an API call, from `Authorization: Bearer <token>` (tokens from
/// `[server] api_tokens_file`). Mutating endpoints take one, so needing a person is part of
/// their signature.
pub(crate) struct Operator(pub Actor);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match token.and_then(|t| state.tokens.get(t)) {
            Some(name) => Ok(Operator(Actor(name.clone()))),
            None => {
                metrics::counter!(m::HTTP_UNAUTHORIZED).increment(1);
                Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "a valid bearer token is required (see [server] api_tokens_file)".into(),
                ))
            }
        }
    }
}

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let (applied, waiting, ledger) = blocking(&s.gov, |g| {
        let store = g.store();
        let applied = store.actions(&ActionFilter { state: Some(ActionState::Applied), ..Default::default() })?;
        let mut waiting =
            store.actions(&ActionFilter { state: Some(ActionState::AwaitingConsent), ..Default::default() })?;
        waiting
            .extend(store.actions(&ActionFilter { state: Some(ActionState::PendingApproval), ..Default::default() })?);
        Ok((applied, waiting, store.ledger_tip()?.0))
    })
    .await?;
    let mut per: BTreeMap<MeasureId, (u64, u64)> = MeasureId::ALL.iter().map(|m| (*m, (0, 0))).collect();
    for a in &applied {
        per.entry(a.measure).or_default().0 += 1;
    }
    for a in &waiting {
        per.entry(a.measure).or_default().1 += 1;
    }
    for (measure, (in_force, wait)) in per {
        metrics::gauge!(m::IN_FORCE, "measure" => measure.as_str()).set(in_force as f64);
        metrics::gauge!(m::WAITING, "measure" => measure.as_str()).set(wait as f64);
    }
    metrics::gauge!(m::LEDGER_ENTRIES).set(ledger as f64);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response())
}

pub(crate) async fn catalog() -> Response {
    Json(&CATALOG[..]).into_response()
}

pub(crate) async fn measures(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(&s.gov, |g| g.measure_status()).await?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ActionQuery {
    state: Option<String>,
    measure: Option<String>,
    limit: Option<usize>,
}

pub(crate) async fn list_actions(
    State(s): State<AppState>,
    Query(q): Query<ActionQuery>,
) -> Result<Json<Vec<ActionRecord>>, ApiError> {
    let state =
        q.state.map(|st| st.parse::<ActionState>().map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))).transpose()?;
    let measure = q
        .measure
        .map(|mm| mm.parse::<MeasureId>().map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string())))
        .transpose()?;
    let filter = ActionFilter { state, measure, limit: Some(q.limit.unwrap_or(200).min(10_000)), ..Default::default() };
    Ok(Json(blocking(&s.gov, move |g| Ok(g.store().actions(&filter)?)).await?))
}

pub(crate) async fn show_action(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ActionRecord>, ApiError> {
    let found = blocking(&s.gov, move |g| Ok(g.store().action(&id)?)).await?;
    found.map(Json).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such action".into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveBody {
    #[serde(default)]
    assessments: BTreeMap<String, String>,
}

pub(crate) async fn approve(
    State(s): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
    Json(body): Json<ApproveBody>,
) -> Result<Json<ActionRecord>, ApiError> {
    let d = blocking(&s.gov, move |g| g.approve(&id, &who, body.assessments)).await?;
    Ok(Json(d.action))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    reason: String,
}

pub(crate) async fn reject(
    State(s): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
    Json(body): Json<ReasonBody>,
) -> Result<Json<ActionRecord>, ApiError> {
    Ok(Json(blocking(&s.gov, move |g| g.reject(&id, &who, &body.reason)).await?))
}

pub(crate) async fn lift(
    State(s): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
    Json(body): Json<ReasonBody>,
) -> Result<Json<ActionRecord>, ApiError> {
    Ok(Json(blocking(&s.gov, move |g| g.lift(&id, &who, &body.reason)).await?))
}

pub(crate) async fn verify_ledger(State(s): State<AppState>) -> Result<Response, ApiError> {
    let gov = s.gov.clone();
    let r = tokio::task::spawn_blocking(move || gov.store().verify_ledger(None))
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    Ok(match r {
        Ok(report) => Json(json!({"ok": true, "report": report})).into_response(),
        Err(StoreError::Chain(e)) => {
            (StatusCode::CONFLICT, Json(json!({"ok": false, "first_bad_entry": e.seq(), "error": e.to_string()})))
                .into_response()
        }
        Err(e) => return Err(GovernanceError::Store(e).into()),
    })
}
