//! mamori's decisions enforced by a real Kamailio (examples/kamailio/kamailio.cfg), shown with
//! real SIP from sipp: governance grants an `Authorization`, `KamailioActuator` puts it in an
//! htable over JSON-RPC, the next INVITE or REGISTER is refused; the lift makes it succeed again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use mamori_core::action::ActionState;
use mamori_core::actuator::Actuator;
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, Proposal};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_kamailio::KamailioActuator;
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;
use support::*;

const LINE: &str = "0312340001";
const PASSWORD: &str = "line-1-secret";
const OTHER_LINE: &str = "0312340002";
const OTHER_PASSWORD: &str = "line-2-secret";
/// +882 (International Networks): a typical toll-fraud destination.
const INTERNATIONAL: &str = "01088213456789";
const INTERNATIONAL_E164: &str = "+88213456789";
const UK: &str = "0104420794600";
const DOMESTIC: &str = "0398765432";
const JAPAN_E164: &str = "+81398765432";
/// The R-URI user of a REGISTER scenario (unused by it).
const REGISTER: &str = "register";

struct Gov {
    _dir: tempfile::TempDir,
    gov: Arc<Governance>,
}

fn governance() -> Gov {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("mamori.sqlite"), StoreOptions::default()).unwrap());
    let mut config = Config::default();
    config.roles.approvers = vec!["suzuki".into(), "tanaka".into()];
    let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(config)).unwrap());
    Gov { _dir: dir, gov }
}

fn op() -> Actor {
    Actor("sato".into())
}

/// Records the public notice (where the measure needs one) and enables the measure.
fn enable(gov: &Governance, m: MeasureId) {
    if mamori_core::governance::requires_notice(m) {
        gov.record_notice(m, "https://carrier.example/terms/ip-phone", "2026-04", None, &op()).unwrap();
    }
    gov.enable_measure(m, &op()).unwrap();
}

/// Suspends the line's international calls under `phone.suspend-line-on-surge` with the
/// subscriber's consent (so the outcome doesn't depend on the time of day the test runs at).
fn suspend_line(gov: &Governance, line: &str) -> Authorization {
    let m = MeasureId::PhoneSuspendLineOnSurge;
    if !gov.is_enabled(m).unwrap() {
        enable(gov, m);
    }
    let sub = SubscriberId(line.into());
    gov.grant_consent(&sub, m, "test: signed consent form", &op()).unwrap();
    let mut p =
        Proposal::new(m, Target::Line(line.into()), Actor("detector:phone-surge".into()), json!({"test": true}));
    p.subscriber = Some(sub);
    let d = gov.propose(p).unwrap();
    assert_eq!(d.action.state, ActionState::Applied);
    d.authorization.expect("consent given: governance authorizes at once")
}

fn restrict_country(gov: &Governance, code: &str) -> Authorization {
    let m = MeasureId::PhoneRestrictCountry;
    enable(gov, m);
    let d = gov
        .propose(Proposal::new(
            m,
            Target::Country(code.into()),
            Actor("detector:phone-country".into()),
            json!({"concurrent_calls": 40, "normal_concurrent": 0.2}),
        ))
        .unwrap();
    assert_eq!(d.action.state, ActionState::PendingApproval);
    assert!(d.authorization.is_none(), "no enforcement before two approvals");
    let assess = || {
        BTreeMap::from([
            ("normal_volume".to_owned(), "0.2 concurrent calls".to_owned()),
            ("trade_relations".to_owned(), "negligible".to_owned()),
            ("emergency_calls".to_owned(), "none expected".to_owned()),
        ])
    };
    let first = gov.approve(&d.action.id, &Actor("suzuki".into()), assess()).unwrap();
    assert!(first.authorization.is_none());
    let second = gov.approve(&d.action.id, &Actor("tanaka".into()), assess()).unwrap();
    assert_eq!(second.action.state, ActionState::Applied);
    second.authorization.expect("authorized after two approvals")
}

fn start(peers: &Peers) -> (Uas, Kamailio) {
    let uas = Uas::start(peers);
    let k = Kamailio::start(peers, &[(LINE, PASSWORD), (OTHER_LINE, OTHER_PASSWORD)], uas.port);
    (uas, k)
}

#[test]
fn a_suspended_line_cannot_call_abroad_until_lifted() {
    let Some(peers) = peers() else { return };
    let (_uas, k) = start(&peers);
    let g = governance();
    let act = KamailioActuator::new(&k.rpc_url());
    let line = Sipp::new(&peers, &k, LINE, PASSWORD);
    let other = Sipp::new(&peers, &k, OTHER_LINE, OTHER_PASSWORD);

    // Before: an authenticated international call goes through.
    line.expect(INTERNATIONAL, Expect::Answered);
    // A wrong password is not let through (digest authentication is real).
    let wrong = Sipp::new(&peers, &k, LINE, "wrong-password");
    assert!(wrong.try_expect(INTERNATIONAL, Expect::Answered).is_err(), "a wrong password must not be answered");

    let auth = suspend_line(&g.gov, LINE);
    act.apply(&auth).unwrap();

    line.expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    line.expect(INTERNATIONAL_E164, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    line.expect(UK, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    // Domestic calls (national, and +81) still go through; so do other lines' international calls.
    line.expect(DOMESTIC, Expect::Answered);
    line.expect(JAPAN_E164, Expect::Answered);
    other.expect(INTERNATIONAL, Expect::Answered);

    // The lift (a person, through governance) and the removal: calls abroad work again.
    let rec = g.gov.lift(auth.action_id(), &op(), "the subscriber confirmed the calls were theirs").unwrap();
    assert_eq!(rec.state, ActionState::Lifted);
    act.remove(&rec).unwrap();
    line.expect(INTERNATIONAL, Expect::Answered);
}

#[test]
fn two_actions_on_one_line_hold_the_block_until_both_end() {
    let Some(peers) = peers() else { return };
    let (_uas, k) = start(&peers);
    let g = governance();
    let act = KamailioActuator::new(&k.rpc_url());
    let line = Sipp::new(&peers, &k, LINE, PASSWORD);

    let surge = suspend_line(&g.gov, LINE);
    act.apply(&surge).unwrap();
    // The subscriber also asks for their international calls to be suspended (T2).
    let m = MeasureId::PhoneSuspendOnRequest;
    enable(&g.gov, m);
    let mut p = Proposal::new(m, Target::Line(LINE.into()), op(), json!({"reason": "going abroad, no use"}));
    p.subscriber = Some(SubscriberId(LINE.into()));
    p.subscriber_request = Some("phone call to the support desk".into());
    let request = g.gov.propose(p).unwrap().authorization.expect("a subscriber's request is their consent");
    act.apply(&request).unwrap();
    // Applying twice is harmless.
    act.apply(&request).unwrap();

    line.expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    let rec = g.gov.lift(surge.action_id(), &op(), "subscriber reached").unwrap();
    act.remove(&rec).unwrap();
    // Still suspended: the subscriber's own request holds.
    line.expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    // Removing the same action again changes nothing.
    act.remove(&rec).unwrap();
    line.expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    let rec = g.gov.lift(request.action_id(), &op(), "the subscriber asked to resume").unwrap();
    act.remove(&rec).unwrap();
    line.expect(INTERNATIONAL, Expect::Answered);
}

#[test]
fn a_suspended_source_ip_cannot_authenticate() {
    let Some(peers) = peers() else { return };
    let (_uas, k) = start(&peers);
    let g = governance();
    let act = KamailioActuator::new(&k.rpc_url());
    let fraudster = Sipp::new(&peers, &k, LINE, PASSWORD).from("127.0.0.2");
    let subscriber = Sipp::new(&peers, &k, LINE, PASSWORD).from("127.0.0.1");

    fraudster.expect(REGISTER, Expect::Registered);
    fraudster.expect(INTERNATIONAL, Expect::Answered);

    let m = MeasureId::PhoneSuspendSipAuthFromIp;
    enable(&g.gov, m);
    let d = g
        .gov
        .propose(Proposal::new(
            m,
            Target::Ip("127.0.0.2".into()),
            Actor("detector:phone-source".into()),
            json!({"international_calls": 40, "lines": 3}),
        ))
        .unwrap();
    let auth = d.authorization.expect("legitimate business, no consent needed");
    act.apply(&auth).unwrap();

    // From that address: refused before any challenge, REGISTER and INVITE, even domestic.
    fraudster.expect(REGISTER, Expect::RegisterRefused(IP_SUSPENDED));
    fraudster.expect(INTERNATIONAL, Expect::RefusedBeforeAuth(IP_SUSPENDED));
    fraudster.expect(DOMESTIC, Expect::RefusedBeforeAuth(IP_SUSPENDED));
    // The same line from its usual address is unaffected.
    subscriber.expect(REGISTER, Expect::Registered);
    subscriber.expect(INTERNATIONAL, Expect::Answered);

    let rec = g
        .gov
        .lift(auth.action_id(), &Actor::system(), "no international call from this address for the cool-down")
        .unwrap();
    act.remove(&rec).unwrap();
    fraudster.expect(REGISTER, Expect::Registered);
    fraudster.expect(INTERNATIONAL, Expect::Answered);
}

#[test]
fn a_restricted_country_cannot_be_dialled() {
    let Some(peers) = peers() else { return };
    let (_uas, k) = start(&peers);
    let g = governance();
    let act = KamailioActuator::new(&k.rpc_url());
    let line = Sipp::new(&peers, &k, LINE, PASSWORD);
    let other = Sipp::new(&peers, &k, OTHER_LINE, OTHER_PASSWORD);

    line.expect(INTERNATIONAL, Expect::Answered);
    let auth = restrict_country(&g.gov, "882");
    act.apply(&auth).unwrap();

    // Every line, both dialling forms; other countries and domestic calls go through.
    line.expect(INTERNATIONAL, Expect::RefusedAfterAuth(COUNTRY_RESTRICTED));
    other.expect(INTERNATIONAL_E164, Expect::RefusedAfterAuth(COUNTRY_RESTRICTED));
    // +881 is a different (assigned) code: calling codes are matched exactly, not as prefixes
    // of each other.
    line.expect("010881612345678", Expect::Answered);
    line.expect(UK, Expect::Answered);
    line.expect(DOMESTIC, Expect::Answered);

    let rec = g.gov.lift(auth.action_id(), &op(), "the fraud toward the country has stopped").unwrap();
    act.remove(&rec).unwrap();
    line.expect(INTERNATIONAL, Expect::Answered);
}

/// Restart of Kamailio (its htables are empty) and of mamori (an action ended while mamori was
/// down, an entry nobody granted): reconciliation makes Kamailio hold exactly what is in force.
#[test]
fn reconcile_after_a_restart_of_either_side() {
    let Some(peers) = peers() else { return };
    let (_uas, mut k) = start(&peers);
    let g = governance();
    let act: Arc<dyn Actuator> = Arc::new(KamailioActuator::new(&k.rpc_url()));

    let auth = suspend_line(&g.gov, LINE);
    act.apply(&auth).unwrap();
    let uk = restrict_country(&g.gov, "44");
    act.apply(&uk).unwrap();
    Sipp::new(&peers, &k, LINE, PASSWORD).expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));

    // Kamailio restarts: its tables are empty, the line could call abroad again…
    k.restart();
    let line = Sipp::new(&peers, &k, LINE, PASSWORD);
    let other = Sipp::new(&peers, &k, OTHER_LINE, OTHER_PASSWORD);
    line.expect(INTERNATIONAL, Expect::Answered);
    // …until mamori reconciles (the server does this at start and whenever evapi reconnects).
    mamori_server::reconcile(&g.gov, std::slice::from_ref(&act)).unwrap();
    line.expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    other.expect(UK, Expect::RefusedAfterAuth(COUNTRY_RESTRICTED));

    // mamori restarts: meanwhile the line's suspension was lifted without the actuator being
    // told (a crash between the commit and the removal), and someone left an entry in the
    // table that no action in force explains.
    g.gov.lift(auth.action_id(), &op(), "subscriber reached").unwrap();
    let rpc = mamori_kamailio::jsonrpc::RpcClient::new(&k.rpc_url(), std::time::Duration::from_secs(5));
    rpc.call("htable.sets", &["mamori_lines", OTHER_LINE, "A20260101-orphan"]).unwrap();
    line.expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));
    other.expect(INTERNATIONAL, Expect::RefusedAfterAuth(LINE_SUSPENDED));

    let counts = KamailioActuator::new(&k.rpc_url())
        .reconcile_counts(&g.gov.reauthorize_applied().unwrap().iter().map(|(_, a)| a).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(counts["mamori_lines"].removed, 2, "{counts:?}");
    assert_eq!(counts["mamori_countries"].unchanged, 1, "{counts:?}");
    line.expect(INTERNATIONAL, Expect::Answered);
    other.expect(INTERNATIONAL, Expect::Answered);
    other.expect(UK, Expect::RefusedAfterAuth(COUNTRY_RESTRICTED));

    // The reconciliations are in the ledger.
    let mut reconciled = 0;
    g.gov
        .store()
        .export_ledger(&Default::default(), &mut |e| {
            if e.kind == "reconciled" {
                reconciled += 1;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(reconciled, 1);
}

#[test]
fn an_unreachable_kamailio_is_reported_not_fatal() {
    let Some(peers) = peers() else { return };
    let (_uas, k) = start(&peers);
    let g = governance();
    let url = k.rpc_url();
    drop(k);
    let act = KamailioActuator::with(&url, Default::default(), std::time::Duration::from_secs(2));
    let auth = suspend_line(&g.gov, LINE);
    let err = act.apply(&auth).unwrap_err();
    assert!(matches!(err, mamori_core::actuator::ActuatorError::PeerUnavailable(_)), "{err}");
    assert!(!err.to_string().contains(LINE), "errors carry no subscriber data: {err}");
}
