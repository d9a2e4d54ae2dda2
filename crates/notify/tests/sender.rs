//! The delivery loop on the real store, with a mailer that records (or fails) instead of SMTP:
//! states, retries and backoff, the alert rate limit, late opt-outs, the ledger, retention.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use mamori_core::action::ActionState;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::{Clock, DataClock};
use mamori_core::config::Config;
use mamori_core::governance::{Governance, Proposal};
use mamori_core::store::{DeliveryState, LedgerFilter, Store};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_notify::{Email, LinkKey, Mailer, Notifier, SendError};
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;

/// Records what it sends; fails the next `fail` sends with `error`.
#[derive(Default)]
struct FakeMailer {
    sent: Mutex<Vec<Email>>,
    fail: Mutex<Vec<SendError>>,
}

impl Mailer for FakeMailer {
    fn send(&self, email: &Email) -> Result<(), SendError> {
        if let Some(e) = self.fail.lock().unwrap().pop() {
            return Err(e);
        }
        self.sent.lock().unwrap().push(email.clone());
        Ok(())
    }
}

struct Env {
    _dir: tempfile::TempDir,
    clock: DataClock,
    gov: Arc<Governance>,
    store: Arc<SqliteStore>,
    mailer: Arc<FakeMailer>,
    notifier: Notifier,
    key: LinkKey,
}

const BASE: &str = "https://carrier.example/notice";

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    // Tuesday 2026-11-24 10:00 JST: business hours.
    let clock = DataClock::new("2026-11-24T01:00:00Z".parse().unwrap());
    let mut cfg = Config::default();
    cfg.notify.public_base_url = BASE.into();
    cfg.notify.max_attempts = 3;
    cfg.notify.retry_initial = SignedDuration::from_mins(1);
    cfg.notify.retry_max = SignedDuration::from_mins(10);
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap());
    let gov = Arc::new(Governance::new(store.clone(), Arc::new(clock.clone()), Arc::new(cfg)).unwrap());
    let key = LinkKey::from_bytes(&[42u8; 32]).unwrap();
    let mailer = Arc::new(FakeMailer::default());
    let notifier = Notifier::new(gov.clone(), mailer.clone(), key.clone()).unwrap();
    let by = Actor("sato".into());
    gov.record_notice(MeasureId::IotAlertWeakCredentials, "https://carrier.example/terms", "2026-04", Some("12"), &by)
        .unwrap();
    for m in [MeasureId::IotAlertWeakCredentials, MeasureId::BotsAlertFromThirdParty, MeasureId::PhoneSuspendDormant] {
        gov.enable_measure(m, &by).unwrap();
    }
    let contacts = "subscriber_id,email,language\nS-ja,tanaka@example.jp,ja\nS-en,smith@example.com,en\nS-nomail,,ja\n";
    mamori_notify::contacts::import(&gov, contacts.as_bytes(), "test.csv", &by).unwrap();
    Env { _dir: dir, clock, gov, store, mailer, notifier, key }
}

fn alert(e: &Env, measure: MeasureId, sub: &str) -> String {
    let mut p = Proposal::new(
        measure,
        Target::Subscriber(sub.into()),
        Actor("detector:test".into()),
        json!({"report": "survey row 17"}),
    );
    p.subscriber = Some(SubscriberId(sub.into()));
    e.gov.propose(p).unwrap().action.id
}

fn ledger_kinds(e: &Env) -> Vec<(String, String)> {
    let mut out = Vec::new();
    e.store
        .export_ledger(&LedgerFilter::default(), &mut |en| {
            out.push((en.kind, en.body));
            Ok(())
        })
        .unwrap();
    out
}

fn count(e: &Env, kind: &str) -> usize {
    ledger_kinds(e).iter().filter(|(k, _)| k == kind).count()
}

#[test]
fn an_alert_is_sent_in_the_subscribers_language_with_a_working_link() {
    let e = env();
    let id = alert(&e, MeasureId::IotAlertWeakCredentials, "S-en");
    let r = e.notifier.run_once().unwrap();
    assert_eq!(r.sent, 1, "{r:?}");
    let sent = e.mailer.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.to, "smith@example.com");
    assert_eq!(m.subject, "Alert: check the password of your connected devices");
    assert!(m.text.contains("Legal ground: your prior consent in our terms of service"), "{}", m.text);
    assert!(m.text.contains("Opting out of this measure"), "{}", m.text);
    assert!(m.text.contains(&id), "reference");
    // the link opens this subscriber's page
    let start = m.text.find(&format!("{BASE}/s/")).unwrap() + BASE.len() + 3;
    let token: String = m.text[start..].chars().take_while(|c| c.is_ascii_hexdigit() || *c == '.').collect();
    assert_eq!(e.key.verify(&token, e.clock.now()).unwrap().0, "S-en");
    // delivery state, kept body (link redacted), ledger entry without body or address
    let d = e.store.subscriber_deliveries(&SubscriberId("S-en".into()), 10).unwrap();
    assert_eq!(d[0].state, DeliveryState::Sent);
    assert_eq!(d[0].attempts, 1);
    let body = e.store.delivery_body(d[0].id).unwrap().unwrap();
    assert_eq!(body.language, "en");
    assert!(body.text.contains(&format!("{BASE}/s/<redacted>")) && !body.text.contains(&token), "{}", body.text);
    let sent_entries: Vec<_> = ledger_kinds(&e).into_iter().filter(|(k, _)| k == "notice-sent").collect();
    assert_eq!(sent_entries.len(), 1);
    assert!(sent_entries[0].1.contains("\"language\":\"en\""), "{}", sent_entries[0].1);
    for (kind, b) in ledger_kinds(&e) {
        assert!(!b.contains("example.com") && !b.contains("password") && !b.contains(&token), "{kind}: {b}");
    }
    // nothing left to do
    assert!(e.notifier.run_once().unwrap().is_empty());
}

#[test]
fn a_storm_of_findings_is_one_message_and_the_rest_are_suppressed_and_ledgered() {
    let e = env();
    for _ in 0..120 {
        alert(&e, MeasureId::BotsAlertFromThirdParty, "S-ja");
    }
    // another measure and another subscriber are limited separately
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-ja");
    alert(&e, MeasureId::BotsAlertFromThirdParty, "S-en");
    let mut total = mamori_notify::RoundReport::default();
    loop {
        let r = e.notifier.run_once().unwrap();
        if r.is_empty() {
            break;
        }
        total.sent += r.sent;
        total.suppressed += r.suppressed;
    }
    assert_eq!(total.sent, 3, "{total:?}");
    assert_eq!(total.suppressed, 119, "{total:?}");
    let to_ja: Vec<_> = e.mailer.sent.lock().unwrap().iter().filter(|m| m.to == "tanaka@example.jp").cloned().collect();
    assert_eq!(to_ja.len(), 2);
    assert_eq!(count(&e, "notice-suppressed"), 119);
    assert!(ledger_kinds(&e).iter().any(|(k, b)| k == "notice-suppressed" && b.contains("\"reason\":\"rate-limit\"")));
    assert_eq!(e.store.delivery_counts().unwrap()[&DeliveryState::Suppressed], 119);
    // within the period: still limited; after it: one more
    e.clock.advance(SignedDuration::from_hours(23));
    alert(&e, MeasureId::BotsAlertFromThirdParty, "S-ja");
    assert_eq!(e.notifier.run_once().unwrap().suppressed, 1);
    e.clock.advance(SignedDuration::from_hours(2));
    alert(&e, MeasureId::BotsAlertFromThirdParty, "S-ja");
    assert_eq!(e.notifier.run_once().unwrap().sent, 1);
}

#[test]
fn a_failed_attempt_is_retried_with_backoff_then_given_up() {
    let e = env();
    let transient = || SendError::Transient { kind: "connect".into() };
    e.mailer.fail.lock().unwrap().extend([transient(), transient()]);
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-ja");
    assert_eq!(e.notifier.run_once().unwrap().retried, 1);
    let d = &e.store.deliveries_in_state(DeliveryState::Queued, 10).unwrap()[0];
    assert_eq!((d.attempts, d.reason.as_deref()), (1, Some("connect")));
    assert_eq!(d.next_attempt_at, Some(e.clock.now() + SignedDuration::from_mins(1)));
    // not due yet
    assert!(e.notifier.run_once().unwrap().is_empty());
    e.clock.advance(SignedDuration::from_mins(1));
    assert_eq!(e.notifier.run_once().unwrap().retried, 1);
    let d = &e.store.deliveries_in_state(DeliveryState::Queued, 10).unwrap()[0];
    assert_eq!(d.next_attempt_at, Some(e.clock.now() + SignedDuration::from_mins(2)), "doubled");
    e.clock.advance(SignedDuration::from_mins(2));
    assert_eq!(e.notifier.run_once().unwrap().sent, 1);
    let d = &e.store.subscriber_deliveries(&SubscriberId("S-ja".into()), 1).unwrap()[0];
    assert_eq!((d.state, d.attempts), (DeliveryState::Sent, 3));
    assert!(ledger_kinds(&e).iter().any(|(k, b)| k == "notice-sent" && b.contains("\"attempts\":3")));

    // max_attempts = 3: three failures and it is given up, with a ledger entry
    e.mailer.fail.lock().unwrap().extend([transient(), transient(), transient()]);
    alert(&e, MeasureId::BotsAlertFromThirdParty, "S-ja");
    for _ in 0..3 {
        e.notifier.run_once().unwrap();
        e.clock.advance(SignedDuration::from_mins(10));
    }
    let d = &e.store.deliveries_in_state(DeliveryState::Failed, 10).unwrap()[0];
    assert_eq!((d.attempts, d.reason.as_deref()), (3, Some("connect")));
    assert!(ledger_kinds(&e).iter().any(|(k, b)| k == "notice-failed" && b.contains("\"attempts\":3")));

    // a permanent refusal is not retried; the reply text (which may quote the address) is not kept
    e.mailer.fail.lock().unwrap().push(SendError::Permanent { code: "550".into() });
    e.clock.advance(SignedDuration::from_hours(25));
    alert(&e, MeasureId::BotsAlertFromThirdParty, "S-en");
    assert_eq!(e.notifier.run_once().unwrap().failed, 1);
    let failed = e.store.deliveries_in_state(DeliveryState::Failed, 10).unwrap();
    assert_eq!(failed[1].reason.as_deref(), Some("smtp-permanent 550"));
}

#[test]
fn messages_to_subscribers_without_an_address_fail_at_once() {
    let e = env();
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-nomail");
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-unknown");
    assert_eq!(e.notifier.run_once().unwrap().failed, 2);
    let reasons: Vec<_> = e
        .store
        .deliveries_in_state(DeliveryState::Failed, 10)
        .unwrap()
        .into_iter()
        .map(|d| d.reason.unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["no-email", "no-contact"]);
    assert_eq!(count(&e, "notice-failed"), 2);
}

#[test]
fn an_opt_out_after_queueing_stops_the_alert_and_the_next_finding_queues_nothing() {
    let e = env();
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-ja");
    e.gov
        .opt_out(
            &SubscriberId("S-ja".into()),
            MeasureId::IotAlertWeakCredentials,
            "notice-page",
            &Actor("subscriber:S-ja".into()),
        )
        .unwrap();
    let r = e.notifier.run_once().unwrap();
    assert_eq!((r.sent, r.suppressed), (0, 1));
    assert!(ledger_kinds(&e).iter().any(|(k, b)| k == "notice-suppressed" && b.contains("opted-out")));
    // the next finding is refused by governance: nothing queued at all
    let mut p = Proposal::new(
        MeasureId::IotAlertWeakCredentials,
        Target::Subscriber("S-ja".into()),
        Actor("detector:test".into()),
        json!({}),
    );
    p.subscriber = Some(SubscriberId("S-ja".into()));
    assert_eq!(e.gov.propose(p).unwrap().action.state, ActionState::Refused);
    assert!(e.notifier.run_once().unwrap().is_empty());
    assert!(e.mailer.sent.lock().unwrap().is_empty());
}

#[test]
fn a_consent_request_answered_before_it_went_out_is_not_sent() {
    let e = env();
    let mut p = Proposal::new(
        MeasureId::PhoneSuspendDormant,
        Target::Line("L1".into()),
        Actor("detector:test".into()),
        json!({}),
    );
    p.subscriber = Some(SubscriberId("S-ja".into()));
    let id = e.gov.propose(p).unwrap().action.id;
    e.gov.subscriber_reply(&id, mamori_core::governance::SubscriberReply::Decline, "phone").unwrap();
    assert_eq!(e.notifier.run_once().unwrap().suppressed, 1);
}

#[test]
fn a_consent_request_names_the_line_and_the_deadline() {
    let e = env();
    let mut p = Proposal::new(
        MeasureId::PhoneSuspendDormant,
        Target::Line("0312340002".into()),
        Actor("detector:test".into()),
        json!({}),
    );
    p.subscriber = Some(SubscriberId("S-ja".into()));
    e.gov.propose(p).unwrap();
    assert_eq!(e.notifier.run_once().unwrap().sent, 1);
    let m = e.mailer.sent.lock().unwrap()[0].clone();
    assert_eq!(m.subject, "国際電話の利用休止のご案内（ご意向の確認）");
    assert!(m.text.contains("回線 0312340002"), "{}", m.text);
    // consent_request_ttl 24 h after 2026-11-24 10:00 JST
    assert!(m.text.contains("2026年11月25日 10:00 までにご回答がない場合も、休止は行いません"), "{}", m.text);
    assert!(!m.text.contains("オプトアウト"), "individual consent: answered, not opted out of");
}

#[test]
fn a_message_interrupted_mid_send_is_queued_again_at_start() {
    let e = env();
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-ja");
    let d = e.store.due_deliveries(e.clock.now(), 10).unwrap().remove(0);
    // what a crash between claim and result leaves behind
    e.store
        .commit(mamori_core::store::Batch {
            at: e.clock.now(),
            mutations: vec![mamori_core::store::Mutation::Delivery(mamori_core::store::DeliveryUpdate {
                id: d.id,
                expect: DeliveryState::Queued,
                state: DeliveryState::Sending,
                attempts: 1,
                next_attempt_at: None,
                at: e.clock.now(),
                reason: None,
                body: None,
            })],
            ledger: vec![],
        })
        .unwrap();
    assert!(e.notifier.run_once().unwrap().is_empty());
    assert_eq!(e.notifier.recover().unwrap(), 1);
    assert_eq!(e.notifier.run_once().unwrap().sent, 1);
}

#[test]
fn bodies_are_kept_for_the_measures_retention_then_swept_and_counted() {
    let e = env();
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-ja");
    assert_eq!(e.notifier.run_once().unwrap().sent, 1);
    let id = e.store.subscriber_deliveries(&SubscriberId("S-ja".into()), 1).unwrap()[0].id;
    assert!(e.store.delivery_body(id).unwrap().is_some());
    // iot.alert-weak-credentials keeps 180 days by default
    e.clock.advance(SignedDuration::from_hours(24 * 179));
    let out = e.gov.retention_sweep(&Actor::system()).unwrap();
    assert!(out.iter().all(|o| o.table != "outbox_bodies"), "{out:?}");
    assert!(e.store.delivery_body(id).unwrap().is_some());
    e.clock.advance(SignedDuration::from_hours(48));
    let out = e.gov.retention_sweep(&Actor::system()).unwrap();
    let bodies = out.iter().find(|o| o.table == "outbox_bodies").expect("bodies swept");
    assert_eq!(bodies.deleted, 1);
    assert!(e.store.delivery_body(id).unwrap().is_none());
    assert!(ledger_kinds(&e).iter().any(|(k, b)| k == "retention-swept" && b.contains("\"table\":\"outbox_bodies\"")));
}

#[test]
fn queued_messages_survive_the_sweep_until_delivered() {
    let e = env();
    alert(&e, MeasureId::IotAlertWeakCredentials, "S-ja");
    e.clock.advance(SignedDuration::from_hours(24 * 200));
    e.gov.retention_sweep(&Actor::system()).unwrap();
    assert_eq!(e.store.due_deliveries(e.clock.now(), 10).unwrap().len(), 1, "a duty not yet done is kept");
}

#[test]
fn time_is_japan_time() {
    let t: Timestamp = "2026-11-24T15:30:00Z".parse().unwrap();
    assert_eq!(mamori_notify::templates::format_time(t, mamori_notify::Lang::Ja), "2026年11月25日 00:30");
}
