//! The subscriber notice page through the router (and once over a real socket): signed links,
//! expiry and forgery refused with a 403 page, CSRF on forms, replies and opt-outs through
//! governance.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiff::SignedDuration;
use mamori_core::action::ActionState;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::{Clock, DataClock};
use mamori_core::config::Config;
use mamori_core::consent::ConsentState;
use mamori_core::governance::{Governance, Proposal};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_notify::LinkKey;
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    clock: DataClock,
    gov: Arc<Governance>,
    key: LinkKey,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("link.key");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef-test-secret\n").unwrap();
    let mut cfg = Config { data_dir: dir.path().to_owned(), ..Default::default() };
    cfg.notify.link_secret_file = Some(secret.clone());
    // Tuesday 2026-11-24 10:00 JST.
    let clock = DataClock::new("2026-11-24T01:00:00Z".parse().unwrap());
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap());
    let gov = Arc::new(Governance::new(store, Arc::new(clock.clone()), Arc::new(cfg)).unwrap());
    let by = Actor("sato".into());
    gov.record_notice(MeasureId::IotAlertWeakCredentials, "https://carrier.example/terms", "2026-04", Some("12"), &by)
        .unwrap();
    for m in [MeasureId::IotAlertWeakCredentials, MeasureId::PhoneSuspendDormant] {
        gov.enable_measure(m, &by).unwrap();
    }
    mamori_notify::contacts::import(
        &gov,
        &b"subscriber_id,email,language\nS1,s1@example.jp,ja\nS2,s2@example.com,en\n"[..],
        "t",
        &by,
    )
    .unwrap();
    let key = LinkKey::load(&secret, false).unwrap();
    Env { _dir: dir, clock, gov, key }
}

fn ask_dormant(e: &Env, sub: &str) -> String {
    let mut p = Proposal::new(
        MeasureId::PhoneSuspendDormant,
        Target::Line(format!("L-{sub}")),
        Actor("detector:dormant".into()),
        json!({}),
    );
    p.subscriber = Some(SubscriberId(sub.into()));
    let d = e.gov.propose(p).unwrap();
    assert_eq!(d.action.state, ActionState::AwaitingConsent);
    d.action.id
}

fn token(e: &Env, sub: &str) -> String {
    e.key.sign(&SubscriberId(sub.into()), e.clock.now() + SignedDuration::from_hours(24))
}

async fn get(e: &Env, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let app = mamori_server::router(e.gov.clone(), BTreeMap::new());
    let resp = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn post(e: &Env, uri: &str, form: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let app = mamori_server::router(e.gov.clone(), BTreeMap::new());
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_page_shows_requests_in_the_subscribers_language_and_refuses_bad_links() {
    let e = env();
    let id = ask_dormant(&e, "S1");
    let t = token(&e, "S1");
    let (status, headers, html) = get(&e, &format!("/s/{t}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert!(html.contains("<html lang=\"ja\">"), "{html}");
    assert!(html.contains("ご回答をお待ちしているもの"));
    assert!(html.contains(&format!("value=\"{id}\"")), "the request has a form");
    assert!(html.contains("はい、休止してください") && html.contains("いいえ、国際電話を使います"));
    assert!(html.contains(&format!("value=\"{}\"", e.key.form_token(&t))), "CSRF value");
    assert!(
        html.contains("脆弱なID・パスワードのIoT機器利用者への注意喚起"),
        "opt-out choice for the comprehensive-consent measure"
    );
    // English on request
    let (_, _, html) = get(&e, &format!("/s/{t}?lang=en")).await;
    assert!(html.contains("Waiting for your answer") && html.contains("Yes, suspend them"), "{html}");

    // expired
    let old = e.key.sign(&SubscriberId("S1".into()), e.clock.now() - SignedDuration::from_secs(1));
    let (status, headers, html) = get(&e, &format!("/s/{old}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(html.contains("有効期限が切れています") && html.contains("This link has expired"), "{html}");
    // forged: someone else's id under this signature, or no signature at all
    let forged = t.replacen(&hex_of("S1"), &hex_of("S2"), 1);
    for bad in [forged.as_str(), "deadbeef", "53312e.1.00"] {
        let (status, _, html) = get(&e, &format!("/s/{bad}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        assert!(html.contains("このリンクは正しくありません") && html.contains("This link is not valid"), "{html}");
    }
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn answering_a_request_on_the_page_goes_through_governance() {
    let e = env();
    let id = ask_dormant(&e, "S1");
    let t = token(&e, "S1");
    let csrf = e.key.form_token(&t);
    // without or with a wrong CSRF value: refused, nothing recorded
    for bad in ["", "00ff", &e.key.form_token(&token(&e, "S2"))] {
        let (status, _, html) =
            post(&e, &format!("/s/{t}"), &format!("csrf={bad}&op=reply&action_id={id}&answer=agree")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        assert!(html.contains("この操作は受け付けられませんでした"), "{html}");
    }
    assert_eq!(e.gov.store().action(&id).unwrap().unwrap().state, ActionState::AwaitingConsent);
    // another subscriber's link can't answer S1's request
    let t2 = token(&e, "S2");
    let (status, _, _) =
        post(&e, &format!("/s/{t2}"), &format!("csrf={}&op=reply&action_id={id}&answer=agree", e.key.form_token(&t2)))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // "yes, suspend"
    let (status, headers, _) =
        post(&e, &format!("/s/{t}"), &format!("csrf={csrf}&op=reply&action_id={id}&answer=agree")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "?done=reply");
    let rec = e.gov.store().action(&id).unwrap().unwrap();
    assert_eq!(rec.state, ActionState::Applied);
    assert_eq!(rec.legal_basis.as_str(), "consent");
    // answering twice is harmless
    let (status, headers, _) =
        post(&e, &format!("/s/{t}"), &format!("csrf={csrf}&op=reply&action_id={id}&answer=decline")).await;
    assert_eq!(
        (status, &headers[header::LOCATION]),
        (StatusCode::SEE_OTHER, &"?done=already".parse::<axum::http::HeaderValue>().unwrap())
    );
    let (_, _, html) = get(&e, &format!("/s/{t}?done=reply")).await;
    assert!(html.contains("ご回答を承りました"), "{html}");
    assert!(html.contains("ご回答が必要なものはありません"));

    // "it was me" on another request
    let id2 = ask_dormant(&e, "S2");
    let csrf2 = e.key.form_token(&t2);
    let (status, _, _) =
        post(&e, &format!("/s/{t2}?lang=en"), &format!("csrf={csrf2}&op=reply&action_id={id2}&answer=decline")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(e.gov.store().action(&id2).unwrap().unwrap().state, ActionState::Rejected);
}

#[tokio::test]
async fn opting_out_on_the_page_takes_effect_at_once_and_can_be_undone() {
    let e = env();
    let t = token(&e, "S1");
    let csrf = e.key.form_token(&t);
    let sub = SubscriberId("S1".into());
    let m = MeasureId::IotAlertWeakCredentials;
    let (status, headers, _) = post(&e, &format!("/s/{t}"), &format!("csrf={csrf}&op=opt-out&measure={m}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "?done=opt-out");
    assert!(e.gov.is_opted_out(&sub, m), "effective at once in the views");
    assert!(matches!(e.gov.consent_state(&sub, m).unwrap(), ConsentState::OptedOut { .. }));
    // the next finding for them is refused: no alert
    let mut p = Proposal::new(m, Target::Subscriber("S1".into()), Actor("detector:t".into()), json!({}));
    p.subscriber = Some(sub.clone());
    assert_eq!(e.gov.propose(p).unwrap().action.state, ActionState::Refused);
    let (_, _, html) = get(&e, &format!("/s/{t}")).await;
    assert!(html.contains("オプトアウト中です") && html.contains("この対策の対象に戻る"), "{html}");
    // measures without an opt-out can't be opted out of here
    let (status, _, _) =
        post(&e, &format!("/s/{t}"), &format!("csrf={csrf}&op=opt-out&measure=bots.alert-from-third-party")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // back in
    let (status, _, _) = post(&e, &format!("/s/{t}"), &format!("csrf={csrf}&op=opt-in&measure={m}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!e.gov.is_opted_out(&sub, m));
    // the history records who and how
    let (_, history) = e.gov.consent_overview(&sub).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|h| h.method == "notice-page" && h.recorded_by.0 == "subscriber:S1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_over_a_real_socket() {
    let e = env();
    ask_dormant(&e, "S2");
    let app = mamori_server::router(e.gov.clone(), BTreeMap::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let t = token(&e, "S2");
    let fetch = move |path: String| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    };
    let (ok, bad) =
        tokio::task::spawn_blocking(move || (fetch(format!("/s/{t}")), fetch(format!("/s/{t}0")))).await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("Waiting for your answer") && ok.contains("No, I still call abroad"), "{ok}");
    assert!(bad.starts_with("HTTP/1.1 403"), "{bad}");
    server.abort();
}
