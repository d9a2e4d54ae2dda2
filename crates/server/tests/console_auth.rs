//! People and rights without a browser: logins and their ledger entries, roles refused with 403
//! by the server, CSRF, session fixation, hostile bodies, and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mamori_core::account::{Role, UiLanguage};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::store::LedgerFilter;
use mamori_core::subject::Actor;
use mamori_server::auth::Accounts;
use mamori_store::{SqliteStore, StoreOptions};
use tower::ServiceExt;

const PW: &str = "correct horse battery staple";

struct App {
    gov: Arc<Governance>,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap();
    // Everything the service keeps (the notice page's link key too) stays in the test's directory.
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let gov = Arc::new(Governance::new(Arc::new(store), Arc::new(WallClock), Arc::new(config)).unwrap());
    let accounts = Accounts::new(gov.clone(), jiff::SignedDuration::from_hours(1));
    let admin = Actor("setup".into());
    for (name, role) in [
        ("op", Role::Operator),
        ("alice", Role::Approver),
        ("bob", Role::Approver),
        ("carol", Role::Approver),
        ("audrey", Role::Auditor),
        ("root", Role::Admin),
    ] {
        accounts.create(name, role, PW, UiLanguage::En, &admin).unwrap();
    }
    gov.record_notice(MeasureId::PhoneRestrictCountry, "https://example.jp/terms", "2026-04", None, &admin).unwrap();
    gov.enable_measure(MeasureId::PhoneRestrictCountry, &admin).unwrap();
    let router = mamori_server::router(gov.clone(), BTreeMap::new());
    App { gov, router, _dir: dir }
}

struct Resp {
    status: StatusCode,
    cookie: Option<String>,
    location: Option<String>,
    body: String,
}

async fn send(app: &App, req: Request<Body>) -> Resp {
    let r = app.router.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let cookie = r.headers().get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_owned());
    let location = r.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    Resp { status, cookie, location, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn form(uri: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn get(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri).header(header::COOKIE, cookie).body(Body::empty()).unwrap()
}

/// Logs in; returns the cookie pair and the page's CSRF token.
async fn login(app: &App, name: &str) -> (String, String) {
    let r = send(app, form("/login", None, &format!("name={name}&password={}", PW.replace(' ', "+")))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = r.cookie.unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = send(app, get("/", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.body.split("name=csrf-token content='").nth(1).unwrap().split('\'').next().unwrap().to_owned();
    (cookie, csrf)
}

fn ledger_kinds(gov: &Governance) -> Vec<(String, String)> {
    let mut out = Vec::new();
    gov.store()
        .export_ledger(&LedgerFilter::default(), &mut |e| {
            out.push((e.kind, e.actor));
            Ok(())
        })
        .unwrap();
    out
}

#[tokio::test]
async fn logins_are_ledgered_and_limited_and_never_reuse_a_planted_session() {
    let app = app();
    let r = send(&app, form("/login", None, "name=alice&password=wrong-password-123")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("id=error"));
    let r = send(&app, form("/login", None, "name=nobody&password=wrong-password-123")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let kinds = ledger_kinds(&app.gov);
    assert!(kinds.contains(&("login-failed".into(), "alice".into())));
    // An unknown name may be a mistyped password: it is not recorded.
    assert!(kinds.contains(&("login-failed".into(), "unknown".into())));
    assert!(!kinds.iter().any(|(_, a)| a == "nobody"));

    // Session fixation: a planted cookie is ignored and replaced by a fresh one.
    let planted = format!("mamori_session={}", "ab".repeat(32));
    let mut req = form("/login", Some(&planted), &format!("name=bob&password={}", PW.replace(' ', "+")));
    req.headers_mut().insert(header::ORIGIN, "http://localhost".parse().unwrap());
    req.headers_mut().insert(header::HOST, "localhost".parse().unwrap());
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!r.cookie.unwrap().contains(&"ab".repeat(32)));
    assert_eq!(
        send(&app, get("/", &planted)).await.status,
        StatusCode::SEE_OTHER,
        "the planted id must not log anyone in"
    );
    assert!(ledger_kinds(&app.gov).contains(&("login-succeeded".into(), "bob".into())));

    // Five failures for one name block it, even with the right password.
    for _ in 0..5 {
        send(&app, form("/login", None, "name=carol&password=wrong-password-123")).await;
    }
    let r = send(&app, form("/login", None, &format!("name=carol&password={}", PW.replace(' ', "+")))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn roles_are_enforced_by_the_server_and_the_proposer_cannot_approve() {
    let app = app();
    let (alice, alice_csrf) = login(&app, "alice").await;
    // A form post without the CSRF token is refused.
    let r = send(
        &app,
        form("/actions/propose", Some(&alice), "measure=phone.restrict-country&target=country:882&reason=flood"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // From another site, refused even with the token.
    let mut req = form(
        "/actions/propose",
        Some(&alice),
        &format!("csrf={alice_csrf}&measure=phone.restrict-country&target=country:882&reason=flood"),
    );
    req.headers_mut().insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    req.headers_mut().insert(header::HOST, "localhost".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);

    let r = send(
        &app,
        form(
            "/actions/propose",
            Some(&alice),
            &format!("csrf={alice_csrf}&measure=phone.restrict-country&target=country:882&reason=flood"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = r.location.unwrap().trim_start_matches("/actions/").to_owned();
    let assess = "assess.normal_volume=2+calls%2Fday&assess.trade_relations=none&assess.emergency_calls=unaffected";
    let r =
        send(&app, form(&format!("/actions/{id}/approve"), Some(&alice), &format!("csrf={alice_csrf}&{assess}"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("id=error") && r.body.contains("<dd id=state>pending-approval</dd>"), "{}", r.body);

    // An operator may propose but not approve; an auditor may do neither (403 from the server).
    let (op, op_csrf) = login(&app, "op").await;
    let r = send(&app, form(&format!("/actions/{id}/approve"), Some(&op), &format!("csrf={op_csrf}&{assess}"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (audrey, audrey_csrf) = login(&app, "audrey").await;
    let page = send(&app, get(&format!("/actions/{id}"), &audrey)).await;
    assert!(page.status == StatusCode::OK && !page.body.contains("id=approve") && !page.body.contains("id=lift"));
    let r = send(&app, form(&format!("/actions/{id}/approve"), Some(&audrey), &format!("csrf={audrey_csrf}&{assess}")))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut req = Request::post(format!("/api/actions/{id}/reject"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &audrey)
        .header("x-csrf-token", &audrey_csrf)
        .body(Body::from("{\"reason\":\"x\"}"))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);
    // The JSON API with a session needs the CSRF header.
    req = Request::post("/api/actions")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &op)
        .body(Body::from("{\"measure\":\"phone.restrict-country\",\"target\":\"country:883\",\"reason\":\"x\"}"))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);

    // Two other approvers apply it.
    for name in ["bob", "carol"] {
        let (c, t) = login(&app, name).await;
        let r = send(&app, form(&format!("/actions/{id}/approve"), Some(&c), &format!("csrf={t}&{assess}"))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let page = send(&app, get(&format!("/actions/{id}"), &audrey)).await;
    assert!(page.body.contains("<dd id=state>applied</dd>"), "{}", page.body);
    assert!(page.body.contains("data-kind='approved'") && page.body.contains("data-kind='applied'"));
    // The auditor verifies the ledger.
    let page = send(&app, get("/ledger?verify=1", &audrey)).await;
    assert!(page.body.contains("id=verify-result class=ok"), "{}", page.body);
}

#[tokio::test]
async fn hostile_bodies_are_refused_cleanly() {
    let app = app();
    let (op, csrf) = login(&app, "op").await;
    let json = |body: Body| {
        Request::post("/api/actions")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &op)
            .header("x-csrf-token", &csrf)
            .body(body)
            .unwrap()
    };
    let r = send(&app, json(Body::from("{not json"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("\"error\""));
    let r = send(&app, json(Body::from("{\"measure\":1}"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let big = format!("{{\"reason\":\"{}\"}}", "x".repeat(2 << 20));
    assert_eq!(send(&app, json(Body::from(big))).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Without any credentials the API answers 401 and the console redirects to the login.
    let r = send(&app, Request::get("/api/actions").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, Request::get("/ledger").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location.as_deref(), Some("/login?next=/ledger"));
}

#[tokio::test]
async fn the_openapi_document_describes_the_api_and_pages_speak_both_languages() {
    let app = app();
    let r = send(&app, Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/actions/{id}/approve"]["post"].is_object());
    let (root, csrf) = login(&app, "root").await;
    let page = send(&app, get("/", &root)).await;
    assert!(page.body.starts_with("<!doctype html><html lang=en>") && page.body.contains("Dashboard"));
    let r = send(&app, form("/language", Some(&root), &format!("csrf={csrf}&language=ja"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = send(&app, get("/", &root)).await;
    assert!(page.body.starts_with("<!doctype html><html lang=ja>") && page.body.contains("ダッシュボード"));
    assert!(ledger_kinds(&app.gov).iter().any(|(k, a)| k == "account-changed" && a == "root"));
}

#[tokio::test]
async fn an_operator_records_a_victim_request_over_the_api() {
    let app = app();
    app.gov.enable_measure(MeasureId::DdosBlockOnVictimRequest, &Actor("setup".into())).unwrap();
    let (op, csrf) = login(&app, "op").await;
    let req = |body: &str| {
        Request::post("/api/flow/victim-requests")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &op)
            .header("x-csrf-token", &csrf)
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let r = send(&app, req(r#"{"subscriber":"S1","prefix":"203.0.113.0/24","via":"phone","protocol":17,"src_ports":[123],"duration":"2h"}"#)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["action"]["measure"], "ddos.block-on-victim-request");
    assert_eq!(v["action"]["state"], "applied");
    assert_eq!(v["action"]["target"], "prefix:203.0.113.0/24");
    let r = send(&app, req(r#"{"subscriber":"S1","prefix":"not-a-prefix","via":"phone"}"#)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Two weeks of quiet calls on three lines, then a night burst to an expensive satellite network
/// on L1 (2026-11-15 02:00 Japan time, a Sunday).
fn fraud_night_cdr() -> String {
    let at = |s: i64| {
        jiff::Timestamp::from_second(s)
            .unwrap()
            .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    let first: i64 = "2026-11-01T00:00:00+09:00".parse::<jiff::Timestamp>().unwrap().as_second();
    let mut rows = vec![];
    let mut n = 0;
    let mut call =
        |rows: &mut Vec<(i64, String)>, start: i64, secs: i64, line: &str, called: &str, ip: &str, yen: u32| {
            n += 1;
            rows.push((
                start,
                format!("c{n},{},{},{line},0312340000,{called},{ip},{yen}\n", at(start), at(start + secs)),
            ));
        };
    for day in 0..14 {
        for h in [10, 13, 16] {
            let t = first + day * 86_400 + h * 3600;
            call(&mut rows, t, 200, "L1", "0312345678", "192.0.2.10", 0);
            call(&mut rows, t + 600, 300, "L1", "+12125550000", "192.0.2.10", 45);
            call(&mut rows, t + 1200, 600, "L2", "0104420794600", "192.0.2.20", 200);
        }
    }
    let onset = first + 14 * 86_400 + 2 * 3600;
    for i in 0..10 {
        call(&mut rows, onset + 4 * i, 1500, "L1", &format!("01088216{i:07}"), "203.0.113.66", 11_250);
    }
    rows.sort_by_key(|r| r.0);
    let mut out =
        String::from("call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy\n");
    out.extend(rows.into_iter().map(|r| r.1));
    out
}

#[tokio::test]
async fn a_cdr_file_is_replayed_over_the_api_on_its_own_clock() {
    let app = app();
    let (op, csrf) = login(&app, "op").await;
    let post = |cookie: &str, token: &str, body: String| {
        Request::post("/api/replay/cdr")
            .header(header::CONTENT_TYPE, "text/csv")
            .header(header::COOKIE, cookie)
            .header("x-csrf-token", token)
            .body(Body::from(body))
            .unwrap()
    };
    let r = send(&app, post(&op, &csrf, fraud_night_cdr())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["database"], "scratch");
    assert_eq!(v["summary"]["rows"], 14 * 3 * 3 + 10);
    let events = v["events"].as_array().unwrap();
    let applied = events
        .iter()
        .find(|e| e["measure"] == "phone.suspend-line-on-surge" && e["event"] == "applied" && e["target"] == "line:L1")
        .unwrap_or_else(|| panic!("no suspension of L1 in {events:?}"));
    // On data time: the night of the burst, not the wall clock.
    assert!(applied["at"].as_str().unwrap().starts_with("2026-11-15T02:"), "{applied}");
    // A scratch replay leaves this server's actions alone.
    assert!(app.gov.store().actions(&Default::default()).unwrap().is_empty());

    let r = send(&app, post(&op, &csrf, "not,a,cdr\n1,2,3\n".into())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let (audrey, audrey_csrf) = login(&app, "audrey").await;
    assert_eq!(send(&app, post(&audrey, &audrey_csrf, fraud_night_cdr())).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn radius_detail_reports_and_lookups_over_the_api() {
    let app = app();
    let (op, csrf) = login(&app, "op").await;
    let upload = |uri: &str, body: Vec<u8>| {
        Request::post(uri)
            .header(header::CONTENT_TYPE, "text/plain")
            .header(header::COOKIE, &op)
            .header("x-csrf-token", &csrf)
            .body(Body::from(body))
            .unwrap()
    };
    // Before any session is known, a lookup says so.
    let r = send(&app, get("/api/attribution/lookup?addr=100.64.0.7&at=2026-11-24T13:20:00Z", &op)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let detail = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../attribution/testdata/detail/freeradius-3.2.1.detail"),
    )
    .unwrap();
    let r = send(&app, upload("/api/attribution/import-detail", detail)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(v["written"].as_u64().unwrap() > 0, "{v}");
    let r = send(&app, get("/api/attribution/lookup?addr=100.64.0.7&at=2026-11-24T13:20:00Z", &op)).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["attribution"], "unique", "{v}");
    assert_eq!(v["subscribers"][0], "alice@isp.example");
    let r = send(&app, get("/api/attribution/lookup?addr=100.64.0.7&at=2026-11-20T00:00:00Z", &op)).await;
    assert!(r.body.contains("\"unknown\""), "{}", r.body);
    // An auditor may not link addresses to people.
    let (audrey, _) = login(&app, "audrey").await;
    let r = send(&app, get("/api/attribution/lookup?addr=100.64.0.7&at=2026-11-24T13:20:00Z", &audrey)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    app.gov.enable_measure(MeasureId::BotsAlertFromThirdParty, &Actor("setup".into())).unwrap();
    let report = "timestamp,ip,port,infection\n2026-11-24 13:20:00,100.64.0.7,1500,mirai\n2026-11-24 13:20:00,192.0.2.99,80,mirai\n";
    let uri = "/api/reports/import?kind=shadowserver-sinkhole&source=shadowserver";
    let r = send(&app, upload(uri, report.as_bytes().to_vec())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["summary"]["attributed"], 1, "{v}");
    assert_eq!(v["summary"]["unmatched"], 1, "{v}");
    assert_eq!(v["unattributed"].as_array().unwrap().len(), 1);
    // Again: duplicates, nothing new.
    let v: serde_json::Value =
        serde_json::from_str(&send(&app, upload(uri, report.as_bytes().to_vec())).await.body).unwrap();
    assert_eq!(v["summary"]["findings"], 0, "{v}");
    let r = send(&app, upload("/api/reports/import?kind=shadowserver-sinkhole&source=x", b"a,b\n1,2\n".to_vec())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // A C&C list, kept for the DNS engine and recorded in the ledger.
    let r =
        send(&app, upload("/api/dns/lists?kind=cnc&source=abuse-feed", b"# feed\nc2.example\nnot a name\n".to_vec()))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!((v["names"].as_u64(), v["skipped"].as_u64()), (Some(1), Some(1)), "{v}");
    let kept = mamori_dns::lists::read_metas(&mamori_dns::lists::lists_dir(app.gov.config()));
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1.source, "abuse-feed");
    let r = send(&app, upload("/api/dns/lists?kind=nonsense&source=x", b"a.example\n".to_vec())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}
