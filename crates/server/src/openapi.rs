//! The OpenAPI document, generated from the handlers' annotations (utoipa) and served at
//! `/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::controllers as c;

/// Adds the two ways to authenticate: a bearer token (automation) or the console's session
/// cookie (with `X-CSRF-Token` on changes).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

/// mamori's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "mamori API", description = "Lawful countermeasures under the secrecy of communications: measures, actions, consent, the audit ledger, reports and people. Every change is checked against the caller's role and recorded in the ledger."),
    paths(
        c::whoami, c::catalog, c::measures, c::enable_measure, c::disable_measure, c::record_notice,
        c::list_actions, c::propose, c::show_action, c::action_ledger, c::approve, c::reject, c::lift, c::reply,
        c::consent_show, c::consent_change, c::ledger_page, c::verify_ledger, c::report, c::retention_sweep,
        c::victim_request, c::import_subscribers, c::export_ledger, c::replay_cdr, c::publish_fraud_destinations, c::config_default, c::config_check,
        crate::imports::import_report, crate::imports::import_detail, crate::imports::lookup, crate::imports::load_dns_list, c::list_accounts, c::create_account, c::change_account,
    ),
    components(schemas(c::NoticeBody, c::ProposeBody, c::ApproveBody, c::ReasonBody, c::ReplyBody, c::ConsentBody,
        c::NewAccountBody, c::AccountChangeBody, c::VictimRequestBody, c::PublishBody)),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
)]
pub(crate) struct ApiDoc;

/// `GET /openapi.json`
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_is_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/actions",
            "/api/actions/{id}/approve",
            "/api/ledger/verify",
            "/api/accounts",
            "/api/consent/{subscriber}/{measure}",
        ] {
            assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
