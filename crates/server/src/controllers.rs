//! The JSON API: thin handlers that check the caller's role, call governance on the blocking
//! pool, and answer JSON. Every route is described in the OpenAPI document (`/openapi.json`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::SignedDuration;
use mamori_core::account::{Role, UiLanguage};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::{CATALOG, MeasureId};
use mamori_core::governance::{Governance, GovernanceError, Proposal, SubscriberReply};
use mamori_core::ledger::LedgerEntry;
use mamori_core::store::{ActionFilter, LedgerFilter, StoreError};
use mamori_core::subject::{SubscriberId, Target};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Right;
use crate::auth::{AccountError, ApiPerson};
use crate::metrics_names as m;

/// A JSON error answer.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl ApiError {
    pub(crate) fn internal() -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    }
}

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
                return ApiError::internal();
            }
        };
        if status == StatusCode::FORBIDDEN {
            metrics::counter!(m::HTTP_FORBIDDEN).increment(1);
        }
        ApiError(status, e.to_string())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::BadName | AccountError::WeakPassword => {
                ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            AccountError::Exists(_) => ApiError(StatusCode::CONFLICT, e.to_string()),
            AccountError::Unknown(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
            AccountError::BadCredentials => ApiError(StatusCode::UNAUTHORIZED, e.to_string()),
            AccountError::Governance(g) => g.into(),
            AccountError::Store(s) => GovernanceError::Store(s).into(),
            AccountError::Crypto(_) => {
                tracing::error!(error = %e, "account operation failed");
                ApiError::internal()
            }
        }
    }
}

/// A JSON body whose rejections (bad JSON, wrong type, too large) are clean JSON errors,
/// counted, without echoing the body.
pub(crate) struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                metrics::counter!(m::HTTP_BAD_REQUEST).increment(1);
                let status = rejection.status();
                let why = match &rejection {
                    JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_owned(),
                    JsonRejection::JsonDataError(e) => format!("the JSON does not fit: {}", e.body_text()),
                    JsonRejection::MissingJsonContentType(_) => "send Content-Type: application/json".to_owned(),
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => "the body is too large".to_owned(),
                    other => other.body_text(),
                };
                tracing::info!(%status, "refused a malformed JSON body");
                Err(ApiError(status, why))
            }
        }
    }
}

/// Runs blocking work (SQLite, password hashing) on tokio's blocking pool; its error becomes the
/// answer.
pub(crate) async fn off_thread<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|_| ApiError::internal())?.map_err(Into::into)
}

/// [`off_thread`] with the governance kernel.
pub(crate) async fn blocking<T: Send + 'static>(
    gov: &Arc<Governance>,
    f: impl FnOnce(&Governance) -> Result<T, GovernanceError> + Send + 'static,
) -> Result<T, ApiError> {
    let gov = gov.clone();
    off_thread(move || f(&gov)).await
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}

pub(crate) fn parse_measure(s: &str) -> Result<MeasureId, ApiError> {
    s.parse::<MeasureId>().map_err(bad)
}

/// The API's routes; file uploads (CDR replays, subscriber lists) may be up to `max_upload` bytes.
pub(crate) fn routes(max_upload: usize) -> Router<AppState> {
    let upload = axum::extract::DefaultBodyLimit::max(max_upload);
    Router::new()
        .route("/api/whoami", get(whoami))
        .route("/api/catalog", get(catalog))
        .route("/api/measures", get(measures))
        .route("/api/measures/{measure}/enable", post(enable_measure))
        .route("/api/measures/{measure}/disable", post(disable_measure))
        .route("/api/measures/{measure}/notice", post(record_notice))
        .route("/api/actions", get(list_actions).post(propose))
        .route("/api/actions/{id}", get(show_action))
        .route("/api/actions/{id}/ledger", get(action_ledger))
        .route("/api/actions/{id}/approve", post(approve))
        .route("/api/actions/{id}/reject", post(reject))
        .route("/api/actions/{id}/lift", post(lift))
        .route("/api/actions/{id}/reply", post(reply))
        .route("/api/consent/{subscriber}", get(consent_show))
        .route("/api/consent/{subscriber}/{measure}", post(consent_change))
        .route("/api/ledger", get(ledger_page))
        .route("/api/ledger/verify", get(verify_ledger))
        .route("/api/report", get(report))
        .route("/api/retention/sweep", post(retention_sweep))
        .route("/api/flow/victim-requests", post(victim_request))
        .route("/api/subscribers/import", post(import_subscribers).layer(upload))
        .route("/api/replay/cdr", post(replay_cdr).layer(upload))
        .route("/api/reports/import", post(crate::imports::import_report).layer(upload))
        .route("/api/attribution/import-detail", post(crate::imports::import_detail).layer(upload))
        .route("/api/attribution/lookup", get(crate::imports::lookup))
        .route("/api/dns/lists", post(crate::imports::load_dns_list).layer(upload))
        .route("/api/phone/publish", post(publish_fraud_destinations))
        .route("/api/config/default", get(config_default))
        .route("/api/config/check", post(config_check))
        .route("/api/ledger/export", get(export_ledger))
        .route("/api/accounts", get(list_accounts).post(create_account))
        .route("/api/accounts/{name}", post(change_account))
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

/// Who the caller is.
#[utoipa::path(get, path = "/api/whoami", tag = "people",
    responses((status = 200, description = "name, role and language of the caller"), (status = 401, description = "not logged in")))]
pub(crate) async fn whoami(ApiPerson(p): ApiPerson) -> Json<serde_json::Value> {
    Json(json!({"name": p.name, "role": p.role, "language": p.language}))
}

/// The measure catalog.
#[utoipa::path(get, path = "/api/catalog", tag = "measures",
    responses((status = 200, description = "every measure with legal ground, fields per stage, consent, approvals, durations")))]
pub(crate) async fn catalog(ApiPerson(_): ApiPerson) -> Response {
    Json(&CATALOG[..]).into_response()
}

/// Every measure's standing: enabled, notice, refused.
#[utoipa::path(get, path = "/api/measures", tag = "measures", responses((status = 200, description = "standing per measure")))]
pub(crate) async fn measures(State(s): State<AppState>, ApiPerson(_): ApiPerson) -> Result<Response, ApiError> {
    Ok(Json(blocking(&s.gov, |g| g.measure_status()).await?).into_response())
}

/// Enables a measure (administrators).
#[utoipa::path(post, path = "/api/measures/{measure}/enable", tag = "measures",
    params(("measure" = String, Path, description = "measure id")),
    responses((status = 200, description = "enabled; the ledger entry"), (status = 403, description = "not an administrator, refused measure, or notice missing")))]
pub(crate) async fn enable_measure(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(measure): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Administer)?;
    let measure = parse_measure(&measure)?;
    let who = p.actor();
    let seq = blocking(&s.gov, move |g| g.enable_measure(measure, &who)).await?;
    Ok(Json(json!({"measure": measure, "enabled": true, "ledger_entry": seq})))
}

/// Disables a measure (administrators); actions in force stay until lifted or expired.
#[utoipa::path(post, path = "/api/measures/{measure}/disable", tag = "measures",
    params(("measure" = String, Path, description = "measure id")),
    responses((status = 200, description = "disabled; the ledger entry"), (status = 403, description = "not an administrator")))]
pub(crate) async fn disable_measure(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(measure): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Administer)?;
    let measure = parse_measure(&measure)?;
    let who = p.actor();
    let seq = blocking(&s.gov, move |g| g.disable_measure(measure, &who)).await?;
    Ok(Json(json!({"measure": measure, "enabled": false, "ledger_entry": seq})))
}

/// Where the terms of service or website announce a measure.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoticeBody {
    /// Where (http or https URL).
    url: String,
    /// Version of the terms or page.
    terms_version: String,
    /// The clause carrying comprehensive consent, if any.
    #[serde(default)]
    clause: Option<String>,
}

/// Records the public notice a measure requires (administrators).
#[utoipa::path(post, path = "/api/measures/{measure}/notice", tag = "measures", request_body = NoticeBody,
    params(("measure" = String, Path, description = "measure id")),
    responses((status = 200, description = "recorded"), (status = 403, description = "not an administrator")))]
pub(crate) async fn record_notice(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(measure): Path<String>,
    ApiJson(body): ApiJson<NoticeBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Administer)?;
    let measure = parse_measure(&measure)?;
    let who = p.actor();
    let seq = blocking(&s.gov, move |g| {
        g.record_notice(measure, &body.url, &body.terms_version, body.clause.as_deref(), &who)
    })
    .await?;
    Ok(Json(json!({"measure": measure, "ledger_entry": seq})))
}

/// Filters for listing actions.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ActionQuery {
    /// Only this state (proposed, awaiting-consent, pending-approval, applied, lifted, expired, …).
    state: Option<String>,
    /// Only this measure.
    measure: Option<String>,
    /// At most this many (default 200, at most 10000), newest first.
    limit: Option<usize>,
}

/// Lists actions, newest first.
#[utoipa::path(get, path = "/api/actions", tag = "actions", params(ActionQuery),
    responses((status = 200, description = "actions"), (status = 400, description = "bad filter")))]
pub(crate) async fn list_actions(
    State(s): State<AppState>,
    ApiPerson(_): ApiPerson,
    Query(q): Query<ActionQuery>,
) -> Result<Json<Vec<ActionRecord>>, ApiError> {
    let state = q.state.map(|st| st.parse::<ActionState>().map_err(bad)).transpose()?;
    let measure = q.measure.as_deref().map(parse_measure).transpose()?;
    let filter = ActionFilter { state, measure, limit: Some(q.limit.unwrap_or(200).min(10_000)), ..Default::default() };
    Ok(Json(blocking(&s.gov, move |g| Ok(g.store().actions(&filter)?)).await?))
}

/// A proposal made by a person.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposeBody {
    /// Measure id.
    pub(crate) measure: String,
    /// Target: line:ID, ip:ADDR, country:CODE, prefix:CIDR, fqdn:NAME, subscriber:ID or network.
    pub(crate) target: String,
    /// The subscriber concerned.
    #[serde(default)]
    pub(crate) subscriber: Option<String>,
    /// The subscriber asked for it; how (phone, web, …). Recorded as their consent.
    #[serde(default)]
    pub(crate) requested_by_subscriber: Option<String>,
    /// Shorter than the measure's maximum, e.g. `12h`.
    #[serde(default)]
    pub(crate) duration: Option<String>,
    /// Why (kept as evidence).
    pub(crate) reason: String,
}

/// Builds a person's proposal; for a country restriction the evidence mamori computed (its
/// latest finding for that country) is attached beside the person's reason.
pub(crate) fn proposal_from(
    g: &Governance,
    body: ProposeBody,
    who: mamori_core::subject::Actor,
) -> Result<Proposal, GovernanceError> {
    let measure = body.measure.parse::<MeasureId>().map_err(|e| GovernanceError::BadRequest(e.to_string()))?;
    let target: Target =
        body.target.parse().map_err(|e: mamori_core::subject::BadTarget| GovernanceError::BadRequest(e.to_string()))?;
    if body.reason.trim().is_empty() {
        return Err(GovernanceError::BadRequest("give a reason".into()));
    }
    let mut evidence = json!({"reason": body.reason});
    if let Some(found) = latest_finding(g, measure, &target)? {
        evidence["computed"] = found;
    }
    let mut p = Proposal::new(measure, target, who, evidence);
    p.subscriber = body.subscriber.filter(|s| !s.trim().is_empty()).map(SubscriberId);
    p.subscriber_request = body.requested_by_subscriber.filter(|s| !s.trim().is_empty());
    p.duration = body
        .duration
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            d.parse::<SignedDuration>()
                .map_err(|_| GovernanceError::BadRequest(format!("bad duration {d:?} (e.g. 12h, 30m)")))
        })
        .transpose()?;
    Ok(p)
}

/// The body of the newest `finding` ledger entry for a measure and target, if any.
pub(crate) fn latest_finding(
    g: &Governance,
    measure: MeasureId,
    target: &Target,
) -> Result<Option<serde_json::Value>, GovernanceError> {
    let subject = target.to_string();
    let mut found = None;
    g.store().export_ledger(&LedgerFilter { measure: Some(measure), ..Default::default() }, &mut |e| {
        if e.kind == "finding" && e.subject.as_deref() == Some(subject.as_str()) {
            found = serde_json::from_str(&e.body).ok();
        }
        Ok(())
    })?;
    Ok(found)
}

/// Proposes an action (operators, approvers, administrators).
#[utoipa::path(post, path = "/api/actions", tag = "actions", request_body = ProposeBody,
    responses((status = 200, description = "the decision: applied, awaiting consent, pending approval, or the open action on that target"),
              (status = 403, description = "auditor, or the measure is not enabled"), (status = 422, description = "bad target or reason")))]
pub(crate) async fn propose(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    ApiJson(body): ApiJson<ProposeBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Operate)?;
    let who = p.actor();
    let d = blocking(&s.gov, move |g| g.propose(proposal_from(g, body, who)?)).await?;
    Ok(Json(json!({"action": d.action, "existing": d.existing})))
}

/// One action.
#[utoipa::path(get, path = "/api/actions/{id}", tag = "actions", params(("id" = String, Path, description = "action id")),
    responses((status = 200, description = "the action"), (status = 404, description = "no such action")))]
pub(crate) async fn show_action(
    State(s): State<AppState>,
    ApiPerson(_): ApiPerson,
    Path(id): Path<String>,
) -> Result<Json<ActionRecord>, ApiError> {
    let found = blocking(&s.gov, move |g| Ok(g.store().action(&id)?)).await?;
    found.map(Json).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such action".into()))
}

/// An action's ledger entries, oldest first.
#[utoipa::path(get, path = "/api/actions/{id}/ledger", tag = "actions", params(("id" = String, Path, description = "action id")),
    responses((status = 200, description = "ledger entries of the action")))]
pub(crate) async fn action_ledger(
    State(s): State<AppState>,
    ApiPerson(_): ApiPerson,
    Path(id): Path<String>,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    Ok(Json(blocking(&s.gov, move |g| action_entries(g, &id)).await?))
}

pub(crate) fn action_entries(g: &Governance, id: &str) -> Result<Vec<LedgerEntry>, GovernanceError> {
    let mut out = Vec::new();
    g.store().export_ledger(&LedgerFilter { action_id: Some(id.to_owned()), ..Default::default() }, &mut |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

/// An approval with the assessments the measure asks for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveBody {
    /// field → text, e.g. `trade_relations`, `emergency_calls`, `normal_volume` for phone.restrict-country.
    #[serde(default)]
    assessments: BTreeMap<String, String>,
}

/// Approves a pending action (approvers; never the proposer).
#[utoipa::path(post, path = "/api/actions/{id}/approve", tag = "actions", request_body = ApproveBody,
    params(("id" = String, Path, description = "action id")),
    responses((status = 200, description = "the action (applied once enough approvers approved)"),
              (status = 403, description = "not an approver, or the proposer"), (status = 422, description = "assessments missing")))]
pub(crate) async fn approve(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Result<Json<ActionRecord>, ApiError> {
    p.require(Right::Approve)?;
    let who = p.actor();
    let d = blocking(&s.gov, move |g| g.approve(&id, &who, body.assessments)).await?;
    Ok(Json(d.action))
}

/// A reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    /// Why.
    reason: String,
}

/// Rejects a pending action (approvers).
#[utoipa::path(post, path = "/api/actions/{id}/reject", tag = "actions", request_body = ReasonBody,
    params(("id" = String, Path, description = "action id")),
    responses((status = 200, description = "rejected"), (status = 403, description = "not an approver")))]
pub(crate) async fn reject(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<ActionRecord>, ApiError> {
    p.require(Right::Approve)?;
    let who = p.actor();
    Ok(Json(blocking(&s.gov, move |g| g.reject(&id, &who, &body.reason)).await?))
}

/// Lifts an action in force (operators, approvers, administrators).
#[utoipa::path(post, path = "/api/actions/{id}/lift", tag = "actions", request_body = ReasonBody,
    params(("id" = String, Path, description = "action id")),
    responses((status = 200, description = "lifted"), (status = 403, description = "auditor"), (status = 409, description = "not in force")))]
pub(crate) async fn lift(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<ActionRecord>, ApiError> {
    p.require(Right::Operate)?;
    let who = p.actor();
    Ok(Json(blocking(&s.gov, move |g| g.lift(&id, &who, &body.reason)).await?))
}

/// A subscriber's answer, recorded by an operator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyBody {
    /// `agree` ("yes, suspend") or `decline` ("it was me").
    answer: String,
    /// How the answer came (phone, web, email-reply, …).
    method: String,
}

/// Records a subscriber's answer to a consent request or an emergency notice.
#[utoipa::path(post, path = "/api/actions/{id}/reply", tag = "actions", request_body = ReplyBody,
    params(("id" = String, Path, description = "action id")),
    responses((status = 200, description = "the decision"), (status = 403, description = "auditor")))]
pub(crate) async fn reply(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplyBody>,
) -> Result<Json<ActionRecord>, ApiError> {
    p.require(Right::Operate)?;
    let answer = match body.answer.as_str() {
        "agree" => SubscriberReply::Agree,
        "decline" => SubscriberReply::Decline,
        _ => return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "answer is agree or decline".into())),
    };
    Ok(Json(blocking(&s.gov, move |g| g.subscriber_reply(&id, answer, &body.method)).await?.action))
}

/// A subscriber's position for every consent-based measure, and their history.
#[utoipa::path(get, path = "/api/consent/{subscriber}", tag = "consent", params(("subscriber" = String, Path, description = "subscriber id")),
    responses((status = 200, description = "positions and history")))]
pub(crate) async fn consent_show(
    State(s): State<AppState>,
    ApiPerson(_): ApiPerson,
    Path(subscriber): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = SubscriberId(subscriber.clone());
    let (states, history) = blocking(&s.gov, move |g| g.consent_overview(&id)).await?;
    let states: BTreeMap<_, _> = states.into_iter().map(|(m, s)| (m.as_str(), s)).collect();
    Ok(Json(json!({"subscriber": subscriber, "measures": states, "history": history})))
}

/// A consent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentBody {
    /// `grant`, `opt-out` or `opt-in`.
    change: String,
    /// How the subscriber expressed it (phone, web, written, email-reply, …).
    method: String,
}

/// Records a subscriber's consent, opt-out (effective at once) or opt-in (operators).
#[utoipa::path(post, path = "/api/consent/{subscriber}/{measure}", tag = "consent", request_body = ConsentBody,
    params(("subscriber" = String, Path, description = "subscriber id"), ("measure" = String, Path, description = "measure id")),
    responses((status = 200, description = "recorded; the ledger entry"), (status = 403, description = "auditor"), (status = 422, description = "not a consent-based measure")))]
pub(crate) async fn consent_change(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path((subscriber, measure)): Path<(String, String)>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Operate)?;
    let measure = parse_measure(&measure)?;
    let who = p.actor();
    let id = SubscriberId(subscriber);
    let change = body.change.clone();
    let seq = blocking(&s.gov, move |g| match change.as_str() {
        "grant" => g.grant_consent(&id, measure, &body.method, &who),
        "opt-out" => g.opt_out(&id, measure, &body.method, &who),
        "opt-in" => g.opt_in(&id, measure, &body.method, &who),
        other => Err(GovernanceError::BadRequest(format!("change {other:?}: expected grant, opt-out or opt-in"))),
    })
    .await?;
    Ok(Json(json!({"ledger_entry": seq, "change": body.change})))
}

/// A page of the ledger.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct LedgerQuery {
    /// Entries before this sequence number (default: from the newest).
    before: Option<u64>,
    /// Page size (default 100, at most 1000).
    limit: Option<usize>,
    /// Only this measure.
    measure: Option<String>,
}

/// A page of the audit ledger, newest first.
#[utoipa::path(get, path = "/api/ledger", tag = "ledger", params(LedgerQuery), responses((status = 200, description = "entries")))]
pub(crate) async fn ledger_page(
    State(s): State<AppState>,
    ApiPerson(_): ApiPerson,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    let filter = LedgerFilter {
        measure: q.measure.as_deref().filter(|m| !m.is_empty()).map(parse_measure).transpose()?,
        before_seq: q.before,
        limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
        ..Default::default()
    };
    Ok(Json(blocking(&s.gov, move |g| ledger_entries(g, &filter)).await?))
}

pub(crate) fn ledger_entries(g: &Governance, filter: &LedgerFilter) -> Result<Vec<LedgerEntry>, GovernanceError> {
    let mut out = Vec::new();
    g.store().export_ledger(filter, &mut |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

/// Verifies the whole hash chain and its checkpoints.
#[utoipa::path(get, path = "/api/ledger/verify", tag = "ledger",
    responses((status = 200, description = "intact"), (status = 409, description = "tampered: the first bad entry")))]
pub(crate) async fn verify_ledger(State(s): State<AppState>, ApiPerson(_): ApiPerson) -> Result<Response, ApiError> {
    Ok(match verify(&s).await? {
        Ok(report) => Json(json!({"ok": true, "report": report})).into_response(),
        Err((seq, error)) => {
            (StatusCode::CONFLICT, Json(json!({"ok": false, "first_bad_entry": seq, "error": error}))).into_response()
        }
    })
}

/// The ledger verified: the report, or the first bad entry and why.
pub(crate) async fn verify(s: &AppState) -> Result<Result<mamori_core::ledger::VerifyReport, (i64, String)>, ApiError> {
    let gov = s.gov.clone();
    let r =
        tokio::task::spawn_blocking(move || gov.store().verify_ledger(None)).await.map_err(|_| ApiError::internal())?;
    match r {
        Ok(report) => Ok(Ok(report)),
        Err(StoreError::Chain(e)) => Ok(Err((e.seq(), e.to_string()))),
        Err(e) => Err(GovernanceError::Store(e).into()),
    }
}

/// A report period.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ReportQuery {
    /// Period start (RFC 3339 or a date, Japan time); default 30 days ago.
    from: Option<String>,
    /// Period end (exclusive); default now.
    to: Option<String>,
}

/// Parses an instant: RFC 3339, or a date meaning midnight Japan time.
pub(crate) fn instant(s: &str) -> Result<jiff::Timestamp, ApiError> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let d: jiff::civil::Date = s.parse().map_err(|_| bad(format!("{s:?}: expected RFC 3339 or YYYY-MM-DD")))?;
    d.in_tz("Asia/Tokyo").map(|z| z.timestamp()).map_err(bad)
}

/// The transparency report data for a period, given as query strings.
pub(crate) async fn build_report(
    s: &AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<mamori_reports::TransparencyReport, ApiError> {
    let now = s.gov.now();
    let to = to.filter(|t| !t.is_empty()).map(instant).transpose()?.unwrap_or(now);
    let from = from
        .filter(|t| !t.is_empty())
        .map(instant)
        .transpose()?
        .unwrap_or_else(|| to.checked_sub(SignedDuration::from_hours(24 * 30)).unwrap_or(to));
    let period = mamori_reports::Period::new(from, to).map_err(bad)?;
    let actions = blocking(&s.gov, move |g| {
        Ok(g.store().actions(&ActionFilter { since: Some(from), until: Some(to), ..Default::default() })?)
    })
    .await?;
    Ok(mamori_reports::build(&actions, period, now))
}

/// The transparency report (aggregates only) for a period.
#[utoipa::path(get, path = "/api/report", tag = "reports", params(ReportQuery), responses((status = 200, description = "the report")))]
pub(crate) async fn report(
    State(s): State<AppState>,
    ApiPerson(_): ApiPerson,
    Query(q): Query<ReportQuery>,
) -> Result<Json<mamori_reports::TransparencyReport>, ApiError> {
    Ok(Json(build_report(&s, q.from.as_deref(), q.to.as_deref()).await?))
}

/// Runs the retention sweep now (administrators).
#[utoipa::path(post, path = "/api/retention/sweep", tag = "retention", responses((status = 200, description = "what was deleted, per measure"), (status = 403, description = "not an administrator")))]
pub(crate) async fn retention_sweep(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Administer)?;
    let who = p.actor();
    let out = blocking(&s.gov, move |g| g.retention_sweep(&who)).await?;
    Ok(Json(json!({"swept": out})))
}

/// Every account (administrators).
#[utoipa::path(get, path = "/api/accounts", tag = "people", responses((status = 200, description = "accounts (never password hashes)"), (status = 403, description = "not an administrator")))]
pub(crate) async fn list_accounts(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Administer)?;
    let accounts = s.accounts.clone();
    let list = off_thread(move || accounts.list()).await?;
    Ok(Json(json!(
        list.iter()
            .map(|a| json!({"name": a.name, "role": a.role, "language": a.language, "disabled": a.disabled}))
            .collect::<Vec<_>>()
    )))
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountBody {
    /// Login name.
    name: String,
    /// operator, approver, auditor or admin.
    role: String,
    /// At least 12 characters.
    password: String,
    /// ja or en (default ja).
    #[serde(default)]
    language: Option<String>,
}

/// Creates an account (administrators).
#[utoipa::path(post, path = "/api/accounts", tag = "people", request_body = NewAccountBody,
    responses((status = 200, description = "created"), (status = 403, description = "not an administrator"), (status = 409, description = "exists"), (status = 422, description = "bad name or weak password")))]
pub(crate) async fn create_account(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Administer)?;
    let role: Role = body.role.parse().map_err(|e: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let language: UiLanguage = body
        .language
        .as_deref()
        .unwrap_or("ja")
        .parse()
        .map_err(|e: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let accounts = s.accounts.clone();
    let who = p.actor();
    let a = off_thread(move || accounts.create(&body.name, role, &body.password, language, &who)).await?;
    Ok(Json(json!({"name": a.name, "role": a.role, "language": a.language})))
}

/// A change to an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountChangeBody {
    /// New role.
    #[serde(default)]
    role: Option<String>,
    /// New password.
    #[serde(default)]
    password: Option<String>,
    /// Disable (true) or re-enable (false).
    #[serde(default)]
    disabled: Option<bool>,
}

/// Changes an account's role, password or disabled flag (administrators); each change is a ledger entry.
#[utoipa::path(post, path = "/api/accounts/{name}", tag = "people", request_body = AccountChangeBody,
    params(("name" = String, Path, description = "account name")),
    responses((status = 200, description = "changed"), (status = 403, description = "not an administrator"), (status = 404, description = "no such account")))]
pub(crate) async fn change_account(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AccountChangeBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Administer)?;
    let role = body
        .role
        .as_deref()
        .map(str::parse::<Role>)
        .transpose()
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let accounts = s.accounts.clone();
    let who = p.actor();
    let a = off_thread(move || {
        let mut a = accounts.get(&name)?.ok_or_else(|| AccountError::Unknown(name.clone()))?;
        if let Some(role) = role {
            a = accounts.set_role(&name, role, &who)?;
        }
        if let Some(pw) = &body.password {
            a = accounts.set_password(&name, pw, &who)?;
        }
        if let Some(d) = body.disabled {
            a = accounts.set_disabled(&name, d, &who)?;
        }
        Ok::<_, AccountError>(a)
    })
    .await?;
    Ok(Json(json!({"name": a.name, "role": a.role, "language": a.language, "disabled": a.disabled})))
}

/// A subscriber's report of an attack on their prefix (`ddos.block-on-victim-request`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VictimRequestBody {
    /// The subscriber who reported it.
    subscriber: String,
    /// Their prefix under attack (CIDR).
    prefix: String,
    /// How they reported it (phone, web, mail…).
    via: String,
    /// IP protocol number of the attack (17 = UDP, 6 = TCP).
    #[serde(default)]
    protocol: Option<u8>,
    /// Source ports of the attack (e.g. 123 for NTP reflection).
    #[serde(default)]
    src_ports: Vec<u16>,
    /// Destination ports of the attack.
    #[serde(default)]
    dst_ports: Vec<u16>,
    /// Rate-limit to this many bytes/s instead of discarding.
    #[serde(default)]
    rate_limit: Option<u32>,
    /// Blackhole the whole prefix (only when the victim asked for it).
    #[serde(default)]
    blackhole: bool,
    /// Shorter than the measure's maximum, e.g. `2h`.
    #[serde(default)]
    duration: Option<String>,
}

/// Records a victim's report and proposes the matching FlowSpec rule (or RTBH on request); the
/// running service announces it at its next scheduler tick.
#[utoipa::path(post, path = "/api/flow/victim-requests", tag = "flows", request_body = VictimRequestBody,
    responses((status = 200, description = "the decision"), (status = 403, description = "auditor, or the measure is not enabled"), (status = 422, description = "bad prefix or duration")))]
pub(crate) async fn victim_request(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    ApiJson(body): ApiJson<VictimRequestBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use mamori_flow::bgp::{FlowAction, FlowMatch};
    p.require(Right::Operate)?;
    let unprocessable = |e: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e);
    let dst: mamori_flow::prefix::Prefix =
        body.prefix.parse().map_err(|e: mamori_flow::prefix::BadPrefix| unprocessable(e.to_string()))?;
    let duration = body
        .duration
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<SignedDuration>().map_err(|_| unprocessable(format!("bad duration {d:?} (e.g. 2h)"))))
        .transpose()?;
    let report = mamori_flow::detect::engine::VictimReport {
        subscriber: SubscriberId(body.subscriber),
        via: body.via,
        operator: p.actor(),
        attack: FlowMatch {
            protocol: body.protocol,
            src_ports: body.src_ports,
            dst_ports: body.dst_ports,
            action: body
                .rate_limit
                .map_or(FlowAction::Discard, |bytes_per_sec| FlowAction::RateLimit { bytes_per_sec }),
            ..FlowMatch::discard_to(dst)
        },
        blackhole: body.blackhole,
        duration,
    };
    let gov = s.gov.clone();
    let d = off_thread(move || {
        // The scheduler of this service announces what governance applied at its next tick.
        let pending = mamori_core::actuator::RecordingActuator::default();
        mamori_flow::detect::engine::propose_victim_request(&gov, &pending, report).map_err(|e| match e {
            mamori_flow::detect::engine::EngineError::Governance(g) => ApiError::from(g),
            other => ApiError(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
        })
    })
    .await?
    .0;
    Ok(Json(json!({"action": d.action, "existing": d.existing})))
}

/// Imports subscriber contacts (operators): the body is the CSV `subscriber_id,email,language`
/// with its header; bad rows are listed and skipped, the rest imported.
#[utoipa::path(post, path = "/api/subscribers/import", tag = "subscribers",
    request_body(content = String, content_type = "text/csv", description = "subscriber_id,email,language"),
    responses((status = 200, description = "rows imported and rows rejected with their line"), (status = 403, description = "auditor"), (status = 422, description = "wrong header")))]
pub(crate) async fn import_subscribers(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Operate)?;
    let who = p.actor();
    let gov = s.gov.clone();
    let r = off_thread(move || {
        mamori_notify::contacts::import(&gov, &body[..], "request body", &who)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
    })
    .await?;
    let rejected: Vec<serde_json::Value> =
        r.rejected.iter().map(|e| json!({"line": e.line, "reason": e.reason})).collect();
    Ok(Json(json!({"imported": r.imported, "rejected": rejected})))
}

/// Ledger entries to export for an auditor.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ExportQuery {
    /// Entries written at or after (RFC 3339 or a date, Japan time).
    from: Option<String>,
    /// Entries written before.
    to: Option<String>,
    /// Only this measure.
    measure: Option<String>,
}

/// The ledger as JSON Lines, oldest first, for an outside auditor (`mamori audit export`).
#[utoipa::path(get, path = "/api/ledger/export", tag = "ledger", params(ExportQuery),
    responses((status = 200, description = "one entry per line (application/x-ndjson)")))]
pub(crate) async fn export_ledger(
    State(s): State<AppState>,
    ApiPerson(_): ApiPerson,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let filter = LedgerFilter {
        since: q.from.as_deref().filter(|x| !x.is_empty()).map(instant).transpose()?,
        until: q.to.as_deref().filter(|x| !x.is_empty()).map(instant).transpose()?,
        measure: q.measure.as_deref().filter(|m| !m.is_empty()).map(parse_measure).transpose()?,
        ..Default::default()
    };
    let text = blocking(&s.gov, move |g| {
        let mut out = String::new();
        g.store().export_ledger(&filter, &mut |e| {
            out.push_str(&serde_json::to_string(&e).unwrap_or_default());
            out.push('\n');
            Ok(())
        })?;
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response())
}

/// Where a replay goes.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ReplayQuery {
    /// `true`: into this server's own database, so the console shows what it decided (with the
    /// measures as switched here); default: a scratch database thrown away afterwards.
    #[serde(default)]
    append: bool,
}

/// Collects a replay's output for one answer.
#[derive(Default)]
struct Collected {
    events: Vec<serde_json::Value>,
    dropped_events: u64,
    bad_rows: Vec<String>,
    stopped: Option<String>,
    not_enabled: Vec<&'static str>,
}

/// Events and bad rows kept in one answer (the counts are always complete).
const REPLAY_KEPT: usize = 10_000;

impl mamori_phone::replay::ReplaySink for Collected {
    fn event(&mut self, e: &mamori_phone::engine::PhoneEvent) -> std::io::Result<()> {
        if self.events.len() < REPLAY_KEPT {
            self.events.push(serde_json::to_value(e).map_err(std::io::Error::other)?);
        } else {
            self.dropped_events += 1;
        }
        Ok(())
    }
    fn bad_row(&mut self, b: &mamori_phone::cdr::reader::BadRow) {
        if self.bad_rows.len() < 100 {
            self.bad_rows.push(b.to_string());
        }
    }
    fn stopped(&mut self, e: &mamori_phone::cdr::reader::CdrFileError) {
        self.stopped = Some(e.to_string());
    }
    fn not_enabled(&mut self, m: MeasureId) {
        self.not_enabled.push(m.as_str());
    }
}

/// Replays a CDR file (mamori's generic CDR CSV as the body) through the telephone measures on
/// the data's own clock, actuators recorded (`mamori replay cdr`). Operators.
#[utoipa::path(post, path = "/api/replay/cdr", tag = "phone", params(ReplayQuery),
    request_body(content = String, content_type = "text/csv", description = "call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy"),
    responses((status = 200, description = "summary, governance events (first 10000), bad rows (first 100)"),
              (status = 403, description = "auditor"), (status = 413, description = "larger than [server] max_upload_bytes"), (status = 422, description = "not a CDR file")))]
pub(crate) async fn replay_cdr(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    Query(q): Query<ReplayQuery>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    use mamori_phone::replay::{Database, replay};
    p.require(Right::Operate)?;
    tracing::info!(person = %p.name, bytes = body.len(), append = q.append, "replaying a CDR file");
    let gov = s.gov.clone();
    let out = off_thread(move || {
        let config = gov.config().clone();
        let mut sink = Collected::default();
        let scratch;
        let db = if q.append {
            Database::Existing(gov.store().clone())
        } else {
            scratch = tempfile::tempdir().map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let store = mamori_store::SqliteStore::open(
                &scratch.path().join("mamori.sqlite"),
                mamori_store::StoreOptions { durable: false, single_thread: true, ..Default::default() },
            )
            .map_err(|e| ApiError::from(GovernanceError::Store(e)))?;
            Database::Fresh(Arc::new(store))
        };
        let summary = replay(config, &body[..], mamori_phone::engine::Subscribers::default(), db, &mut sink).map_err(
            |e| match e {
                mamori_phone::replay::ReplayError::File(f) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, f.to_string()),
                mamori_phone::replay::ReplayError::Governance(g) => ApiError::from(g),
                other => {
                    tracing::error!(error = %other, "replay failed");
                    ApiError::internal()
                }
            },
        )?;
        Ok::<_, ApiError>((summary, sink))
    })
    .await?;
    let (summary, sink) = out;
    Ok(Json(json!({
        "summary": summary,
        "events": sink.events,
        "events_not_listed": sink.dropped_events,
        "bad_rows": sink.bad_rows,
        "stopped": sink.stopped,
        "not_enabled": sink.not_enabled,
        "database": if q.append { "this server's" } else { "scratch" },
    })))
}

/// A publication period.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishBody {
    /// Period start (RFC 3339 or a date, Japan time).
    from: String,
    /// Period end (exclusive).
    to: String,
}

/// Publishes the countries targeted by fraud in a period (`phone.publish-fraud-destinations`):
/// aggregates only; the publication is an action with the aggregate as evidence. The pages are
/// served at `/public/phone/fraud-destinations[.json]`.
#[utoipa::path(post, path = "/api/phone/publish", tag = "phone", request_body = PublishBody,
    responses((status = 200, description = "the aggregate published and its action"), (status = 403, description = "auditor, or the measure is not enabled")))]
pub(crate) async fn publish_fraud_destinations(
    State(s): State<AppState>,
    ApiPerson(p): ApiPerson,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Right::Operate)?;
    let (from, to) = (instant(&body.from)?, instant(&body.to)?);
    if from >= to {
        return Err(bad("from must be before to"));
    }
    let who = p.actor();
    let (d, decision) = blocking(&s.gov, move |g| {
        let actions = g.store().actions(&ActionFilter::default())?;
        let d = mamori_phone::publish::fraud_destinations(&actions, from, to);
        let codes: Vec<u16> = d.countries.iter().map(|c| c.calling_code).collect();
        let decision = g.propose(Proposal::new(
            MeasureId::PhonePublishFraudDestinations,
            Target::Network,
            who,
            json!({"from": d.from, "to": d.to, "countries": codes}),
        ))?;
        Ok((d, decision))
    })
    .await?;
    Ok(Json(json!({"published": d, "action": decision.action})))
}

/// The default configuration, commented (`mamori config default`).
#[utoipa::path(get, path = "/api/config/default", tag = "config", responses((status = 200, description = "TOML")))]
pub(crate) async fn config_default(ApiPerson(_): ApiPerson) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], mamori_core::config::Config::default_toml()).into_response()
}

/// Checks a configuration file (the TOML body): every error with its key and line
/// (`mamori config check`).
#[utoipa::path(post, path = "/api/config/check", tag = "config",
    request_body(content = String, content_type = "text/plain", description = "mamori.toml"),
    responses((status = 200, description = "ok, or the errors with key and line")))]
pub(crate) async fn config_check(ApiPerson(_): ApiPerson, body: axum::body::Bytes) -> Json<serde_json::Value> {
    let Ok(text) = std::str::from_utf8(&body) else {
        return Json(json!({"ok": false, "errors": ["the file is not UTF-8"]}));
    };
    match mamori_core::config::Config::parse(text, "request body") {
        Ok(_) => Json(json!({"ok": true, "errors": []})),
        Err(errors) => Json(json!({"ok": false, "errors": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()})),
    }
}
