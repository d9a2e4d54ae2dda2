// The governance cases, run by `governance.rs` on the threaded store and by
// `governance_single_thread.rs` on the single-connection one (`SINGLE_THREAD`, defined by each).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mamori_core::action::ActionState;
use mamori_core::catalog::{Field, MeasureId};
use mamori_core::clock::DataClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, GovernanceError, Proposal, SubscriberReply};
use mamori_core::ledger::ChainError;
use mamori_core::store::{Batch, Mutation, Store, StoreError, StoredRecord};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_core::view::{Admission, MeasureView, ViewGate, ViewToken};
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct Env {
    _dir: tempfile::TempDir,
    clock: DataClock,
    gov: Governance,
    store: Arc<SqliteStore>,
}

fn config() -> Config {
    let mut c = Config::default();
    c.roles.approvers = vec!["approver-a".into(), "approver-b".into(), "operator-1".into()];
    c
}

fn open(path: &Path, clock: &DataClock) -> (Governance, Arc<SqliteStore>) {
    let store = Arc::new(
        SqliteStore::open(
            path,
            StoreOptions { checkpoint_every: 5, group_commit_max: 64, durable: true, single_thread: SINGLE_THREAD },
        )
        .unwrap(),
    );
    let gov = Governance::new(store.clone(), Arc::new(clock.clone()), Arc::new(config())).unwrap();
    (gov, store)
}

fn env(at: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = DataClock::new(ts(at));
    let (gov, store) = open(&dir.path().join("m.sqlite"), &clock);
    Env { _dir: dir, clock, gov, store }
}

fn op() -> Actor {
    Actor("operator-1".into())
}

fn enable_surge(gov: &Governance) {
    gov.record_notice(
        MeasureId::PhoneSuspendLineOnSurge,
        "https://carrier.example/terms/ip-phone",
        "2026-04",
        Some("art. 31-2"),
        &op(),
    )
    .unwrap();
    gov.enable_measure(MeasureId::PhoneSuspendLineOnSurge, &op()).unwrap();
}

fn surge(line: &str) -> Proposal {
    let mut p = Proposal::new(
        MeasureId::PhoneSuspendLineOnSurge,
        Target::Line(line.into()),
        Actor("detector:phone-surge".into()),
        json!({"charge_jpy_last_hour": 480_000, "normal_jpy_per_hour": 1200}),
    );
    p.subscriber = Some(SubscriberId(format!("S-{line}")));
    p
}

fn kinds(store: &SqliteStore, action_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    store
        .export_ledger(&Default::default(), &mut |e| {
            if e.action_id.as_deref() == Some(action_id) {
                out.push(e.kind);
            }
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn weekday_ten_am_jst_asks_the_subscriber_first() {
    let e = env("2026-11-24T10:00:00+09:00"); // Tuesday
    enable_surge(&e.gov);
    let d = e.gov.propose(surge("0312340001")).unwrap();
    assert_eq!(d.action.state, ActionState::AwaitingConsent);
    assert!(d.authorization.is_none(), "no authorization before consent by day");
    assert!(!d.action.emergency);
    assert_eq!(kinds(&e.store, &d.action.id), ["proposed", "consent-requested", "notice-queued"]);
    let outbox = e.store.outbox(10).unwrap();
    assert_eq!(outbox[0].purpose, "consent-request");

    // The subscriber answers "yes, suspend": applied on consent.
    e.clock.advance(SignedDuration::from_mins(20));
    let d = e.gov.subscriber_reply(&d.action.id, SubscriberReply::Agree, "notice-page").unwrap();
    assert_eq!(d.action.state, ActionState::Applied);
    let auth = d.authorization.expect("authorization after consent");
    assert_eq!(auth.legal_basis(), mamori_core::catalog::LegalBasis::Consent);
    assert!(!auth.is_emergency());
}

#[test]
fn weekday_ten_pm_jst_suspends_first_and_notifies() {
    let e = env("2026-11-24T22:00:00+09:00");
    enable_surge(&e.gov);
    let d = e.gov.propose(surge("0312340002")).unwrap();
    assert_eq!(d.action.state, ActionState::Applied);
    let auth = d.authorization.unwrap();
    assert!(auth.is_emergency());
    assert_eq!(auth.legal_basis(), mamori_core::catalog::LegalBasis::LegitimateBusiness);
    // ends at the latest after the catalog's 72 h
    assert_eq!(auth.expires_at(), Some(ts("2026-11-27T22:00:00+09:00")));
    assert_eq!(kinds(&e.store, &d.action.id), ["proposed", "applied", "notice-queued"]);
    assert_eq!(e.store.outbox(10).unwrap()[0].purpose, "emergency-notice");
    // the ledger entry named by the authorization is the `applied` one
    let mut applied_seq = 0;
    e.store
        .export_ledger(&Default::default(), &mut |en| {
            if en.kind == "applied" {
                applied_seq = en.seq;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(auth.ledger_seq(), applied_seq);
    assert_eq!(e.store.action(&d.action.id).unwrap().unwrap().grant_seq, Some(applied_seq));

    // Reached the next morning: "it was me" lifts the emergency suspension.
    e.clock.set(ts("2026-11-25T09:30:00+09:00"));
    let d = e.gov.subscriber_reply(&d.action.id, SubscriberReply::Decline, "phone").unwrap();
    assert_eq!(d.action.state, ActionState::Lifted);
    assert_eq!(d.action.end_reason.as_deref(), Some("the subscriber was reached: the use was theirs"));
}

#[test]
fn saturday_is_urgent() {
    let e = env("2026-11-28T11:00:00+09:00");
    enable_surge(&e.gov);
    let d = e.gov.propose(surge("0312340003")).unwrap();
    assert_eq!(d.action.state, ActionState::Applied);
    assert_eq!(d.action.time_class, "weekend");
    // confirmation by the subscriber keeps it, now on consent
    let d2 = e.gov.subscriber_reply(&d.action.id, SubscriberReply::Agree, "phone").unwrap();
    assert_eq!(d2.action.state, ActionState::Applied);
    assert_eq!(d2.action.legal_basis, mamori_core::catalog::LegalBasis::Consent);
}

#[test]
fn national_holiday_2026_11_23_is_urgent_even_at_ten() {
    let e = env("2026-11-23T10:00:00+09:00"); // Monday, 勤労感謝の日
    enable_surge(&e.gov);
    let d = e.gov.propose(surge("0312340004")).unwrap();
    assert_eq!(d.action.state, ActionState::Applied);
    assert!(d.action.emergency);
    assert!(d.action.time_class.contains("勤労感謝の日"), "{}", d.action.time_class);
}

#[test]
fn unanswered_request_escalates_when_night_falls() {
    let e = env("2026-11-24T17:30:00+09:00");
    enable_surge(&e.gov);
    let first = e.gov.propose(surge("0312340005")).unwrap();
    assert_eq!(first.action.state, ActionState::AwaitingConsent);
    // still business hours: the same open action, no new one
    e.clock.set(ts("2026-11-24T17:45:00+09:00"));
    let again = e.gov.propose(surge("0312340005")).unwrap();
    assert!(again.existing);
    assert_eq!(again.action.id, first.action.id);
    // 18:10: night, fraud goes on → emergency suspension of the same action
    e.clock.set(ts("2026-11-24T18:10:00+09:00"));
    let d = e.gov.propose(surge("0312340005")).unwrap();
    assert_eq!(d.action.id, first.action.id);
    assert_eq!(d.action.state, ActionState::Applied);
    assert!(d.authorization.unwrap().is_emergency());
}

#[test]
fn notice_prerequisite_blocks_enabling() {
    let e = env("2026-11-24T10:00:00+09:00");
    let err = e.gov.enable_measure(MeasureId::PhoneSuspendLineOnSurge, &op()).unwrap_err();
    assert!(matches!(err, GovernanceError::NoticeMissing { .. }), "{err}");
    let err = e.gov.propose(surge("0312340006")).unwrap_err();
    assert!(matches!(err, GovernanceError::NotEnabled { .. }), "{err}");
    // a measure that asks first needs no notice
    e.gov.enable_measure(MeasureId::PhoneSuspendOnRequest, &op()).unwrap();
    // bad URL is refused
    assert!(e.gov.record_notice(MeasureId::PhoneSuspendLineOnSurge, "terms page", "1", None, &op()).is_err());
}

#[test]
fn refused_measure_cannot_be_enabled_or_proposed() {
    let e = env("2026-11-24T10:00:00+09:00");
    let err = e.gov.enable_measure(MeasureId::CncDetectServers, &op()).unwrap_err();
    assert!(matches!(err, GovernanceError::Refused { .. }));
    let err = e
        .gov
        .propose(Proposal::new(MeasureId::CncDetectServers, Target::Ip("198.51.100.1".into()), op(), json!({})))
        .unwrap_err();
    assert!(matches!(err, GovernanceError::Refused { .. }));
}

fn enable_restrict(gov: &Governance) {
    gov.record_notice(MeasureId::PhoneRestrictCountry, "https://carrier.example/terms", "v3", None, &op()).unwrap();
    gov.enable_measure(MeasureId::PhoneRestrictCountry, &op()).unwrap();
}

fn assessments() -> BTreeMap<String, String> {
    [
        ("normal_volume", "3 calls/day"),
        ("trade_relations", "negligible"),
        ("emergency_calls", "no disaster or event under way"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn proposer_cannot_approve_and_two_distinct_approvers_are_needed() {
    let e = env("2026-11-24T03:00:00+09:00");
    enable_restrict(&e.gov);
    let p = Proposal::new(MeasureId::PhoneRestrictCountry, Target::Country("882".into()), op(), json!({"lines": 40}));
    let d = e.gov.propose(p).unwrap();
    assert_eq!(d.action.state, ActionState::PendingApproval);
    assert!(d.authorization.is_none());
    let id = d.action.id.clone();

    let err = e.gov.approve(&id, &op(), assessments()).unwrap_err();
    assert!(matches!(err, GovernanceError::ProposerCannotApprove { .. }), "{err}");
    let err = e.gov.approve(&id, &Actor("intruder".into()), assessments()).unwrap_err();
    assert!(matches!(err, GovernanceError::NotAnApprover { .. }), "{err}");
    let mut partial = assessments();
    partial.remove("trade_relations");
    let err = e.gov.approve(&id, &Actor("approver-a".into()), partial).unwrap_err();
    assert!(matches!(err, GovernanceError::MissingAssessment { field: "trade_relations", .. }), "{err}");

    let d = e.gov.approve(&id, &Actor("approver-a".into()), assessments()).unwrap();
    assert_eq!(d.action.state, ActionState::PendingApproval, "one approval is not enough");
    let err = e.gov.approve(&id, &Actor("approver-a".into()), assessments()).unwrap_err();
    assert!(matches!(err, GovernanceError::AlreadyApproved { .. }));
    let d = e.gov.approve(&id, &Actor("approver-b".into()), assessments()).unwrap();
    assert_eq!(d.action.state, ActionState::Applied);
    assert!(d.authorization.is_some());
    let stored = e.store.action(&id).unwrap().unwrap();
    assert_eq!(stored.approvals.len(), 2);
    assert_eq!(stored.approvals[0].assessments["trade_relations"], "negligible");
}

#[test]
fn unapproved_action_lapses() {
    let e = env("2026-11-24T03:00:00+09:00");
    enable_restrict(&e.gov);
    let d = e
        .gov
        .propose(Proposal::new(MeasureId::PhoneRestrictCountry, Target::Country("882".into()), op(), json!({})))
        .unwrap();
    e.clock.advance(SignedDuration::from_hours(9));
    let out = e.gov.tick().unwrap();
    assert_eq!(out.lapsed.len(), 1);
    assert_eq!(e.store.action(&d.action.id).unwrap().unwrap().state, ActionState::Lapsed);
}

/// A comprehensive-consent measure's view, as the DNS family will define it.
struct CncQueryView {
    qname: String,
}

struct Query {
    subscriber: SubscriberId,
    client: String,
    qname: String,
}

impl MeasureView for CncQueryView {
    type Record = Query;
    const MEASURE: MeasureId = MeasureId::BotsDetectCncQueries;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::QueryName, Field::ResolverClientAddress];
    fn subscriber(r: &Query) -> Option<&SubscriberId> {
        Some(&r.subscriber)
    }
    fn subject(r: &Query) -> Target {
        Target::Ip(r.client.clone())
    }
    fn project(r: &Query, _token: ViewToken) -> Self {
        CncQueryView { qname: r.qname.clone() }
    }
}

#[test]
fn opt_out_takes_effect_at_once() {
    let e = env("2026-11-24T10:00:00+09:00");
    e.gov
        .record_notice(MeasureId::BotsDetectCncQueries, "https://isp.example/terms", "2026", Some("art. 12"), &op())
        .unwrap();
    e.gov.enable_measure(MeasureId::BotsDetectCncQueries, &op()).unwrap();
    let gate: ViewGate<CncQueryView> = ViewGate::open(&e.gov, Arc::new(e.clock.clone())).unwrap();
    let q = Query { subscriber: SubscriberId("S-9".into()), client: "203.0.113.9".into(), qname: "cnc.example".into() };
    match gate.admit(&q) {
        Admission::Admitted(v) => assert_eq!(v.qname, "cnc.example"),
        _ => panic!("covered by terms: admitted"),
    }
    e.gov
        .opt_out(&q.subscriber, MeasureId::BotsDetectCncQueries, "notice-page", &Actor::subscriber(&q.subscriber))
        .unwrap();
    // the very next record is dropped before the detector
    assert!(matches!(gate.admit(&q), Admission::OptedOut));
    // and a proposal for them is refused, with a ledger entry
    let mut p = Proposal::new(
        MeasureId::BotsDetectCncQueries,
        Target::Ip(q.client.clone()),
        Actor("detector:cnc".into()),
        json!({}),
    );
    p.subscriber = Some(q.subscriber.clone());
    let d = e.gov.propose(p).unwrap();
    assert_eq!(d.action.state, ActionState::Refused);
    assert!(d.authorization.is_none());
    // opting back in restores it
    e.gov
        .opt_in(&q.subscriber, MeasureId::BotsDetectCncQueries, "notice-page", &Actor::subscriber(&q.subscriber))
        .unwrap();
    assert!(matches!(gate.admit(&q), Admission::Admitted(_)));
}

#[test]
fn opt_out_from_another_process_is_seen_before_the_next_batch() {
    let e = env("2026-11-24T10:00:00+09:00");
    e.gov.record_notice(MeasureId::BotsDetectCncQueries, "https://isp.example/terms", "2026", None, &op()).unwrap();
    e.gov.enable_measure(MeasureId::BotsDetectCncQueries, &op()).unwrap();
    let gate: ViewGate<CncQueryView> = ViewGate::open(&e.gov, Arc::new(e.clock.clone())).unwrap();
    // a second governance (the CLI) on the same database
    let other = Governance::new(e.store.clone(), Arc::new(e.clock.clone()), Arc::new(config())).unwrap();
    let sub = SubscriberId("S-10".into());
    other.opt_out(&sub, MeasureId::BotsDetectCncQueries, "phone", &op()).unwrap();
    assert!(e.gov.refresh_if_changed().unwrap());
    let q = Query { subscriber: sub, client: "203.0.113.10".into(), qname: "x".into() };
    assert!(matches!(gate.admit(&q), Admission::OptedOut));
}

/// A view that tries to read more than stage 1 of the surge measure allows.
struct GreedySurgeView;
impl MeasureView for GreedySurgeView {
    type Record = ();
    const MEASURE: MeasureId = MeasureId::PhoneSuspendLineOnSurge;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::LineChargeTotals, Field::SourceIp];
    fn subscriber(_: &()) -> Option<&SubscriberId> {
        None
    }
    fn subject(_: &()) -> Target {
        Target::Network
    }
    fn project(_: &(), _: ViewToken) -> Self {
        GreedySurgeView
    }
}

/// Stage 2 of the surge measure: that line's international calls.
struct SurgeCallsView {
    source_ip: String,
}
struct Call {
    line: String,
    source_ip: String,
}
impl MeasureView for SurgeCallsView {
    type Record = Call;
    const MEASURE: MeasureId = MeasureId::PhoneSuspendLineOnSurge;
    const STAGE: u8 = 2;
    const FIELDS: &'static [Field] = &[Field::CountryCode, Field::SourceIp];
    fn subscriber(_: &Call) -> Option<&SubscriberId> {
        None
    }
    fn subject(c: &Call) -> Target {
        Target::Line(c.line.clone())
    }
    fn project(c: &Call, _: ViewToken) -> Self {
        SurgeCallsView { source_ip: c.source_ip.clone() }
    }
}

#[test]
fn a_view_cannot_read_more_than_its_stage() {
    let e = env("2026-11-24T10:00:00+09:00");
    let err = ViewGate::<GreedySurgeView>::open(&e.gov, Arc::new(e.clock.clone())).unwrap_err();
    assert_eq!(
        err,
        mamori_core::view::ViewError::FieldNotAllowed {
            measure: MeasureId::PhoneSuspendLineOnSurge,
            stage: 1,
            field: Field::SourceIp
        }
    );
}

#[test]
fn stage_two_opens_per_subject_with_a_ledger_entry() {
    let e = env("2026-11-24T02:00:00+09:00");
    enable_surge(&e.gov);
    let gate = ViewGate::<SurgeCallsView>::open(&e.gov, Arc::new(e.clock.clone())).unwrap();
    let mine = Call { line: "0312340007".into(), source_ip: "198.51.100.7".into() };
    let other = Call { line: "0312340008".into(), source_ip: "198.51.100.8".into() };
    assert!(matches!(gate.admit(&mine), Admission::Locked));
    e.gov
        .unlock_stage(
            MeasureId::PhoneSuspendLineOnSurge,
            2,
            &Target::Line(mine.line.clone()),
            "charges 40x normal",
            &Actor::system(),
        )
        .unwrap();
    match gate.admit(&mine) {
        Admission::Admitted(v) => assert_eq!(v.source_ip, "198.51.100.7"),
        _ => panic!("unlocked line admitted"),
    }
    assert!(matches!(gate.admit(&other), Admission::Locked), "only that line");
    let mut seen = false;
    e.store
        .export_ledger(&Default::default(), &mut |en| {
            if en.kind == "stage-unlocked" {
                assert_eq!(en.subject.as_deref(), Some("line:0312340007"));
                seen = true;
            }
            Ok(())
        })
        .unwrap();
    assert!(seen);
    // the unlock ends
    e.clock.advance(SignedDuration::from_hours(25));
    assert!(matches!(gate.admit(&mine), Admission::Locked));
}

#[test]
fn expiry_happens_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let clock = DataClock::new(ts("2026-11-24T23:00:00+09:00"));
    let id = {
        let (gov, _store) = open(&path, &clock);
        enable_surge(&gov);
        let d = gov.propose(surge("0312340009")).unwrap();
        assert_eq!(d.action.state, ActionState::Applied);
        d.action.id
        // governance and store dropped: the process "stops"
    };
    clock.set(ts("2026-11-28T00:00:00+09:00")); // past the 72 h maximum
    let (gov, store) = open(&path, &clock);
    // before the tick it is still applied, and reconciliation would not re-apply it
    assert!(gov.reauthorize_applied().unwrap().is_empty());
    let out = gov.tick().unwrap();
    assert_eq!(out.expired.len(), 1);
    assert_eq!(out.expired[0].id, id);
    let rec = store.action(&id).unwrap().unwrap();
    assert_eq!(rec.state, ActionState::Expired);
    assert_eq!(rec.end_reason.as_deref(), Some("maximum duration reached"));
    store.verify_ledger(None).unwrap();
}

#[test]
fn reconciliation_reauthorizes_what_is_in_force() {
    let e = env("2026-11-24T23:00:00+09:00");
    enable_surge(&e.gov);
    let d = e.gov.propose(surge("0312340010")).unwrap();
    let auths = e.gov.reauthorize_applied().unwrap();
    assert_eq!(auths.len(), 1);
    assert_eq!(auths[0].1.action_id(), d.action.id);
    assert_eq!(auths[0].1.ledger_seq(), d.authorization.unwrap().ledger_seq());
}

#[test]
fn lift_only_from_applied_and_with_a_reason() {
    let e = env("2026-11-24T10:00:00+09:00");
    enable_surge(&e.gov);
    let d = e.gov.propose(surge("0312340011")).unwrap();
    let err = e.gov.lift(&d.action.id, &op(), "fraud over").unwrap_err();
    assert!(matches!(err, GovernanceError::InvalidTransition { from: ActionState::AwaitingConsent, .. }));
    let d = e.gov.subscriber_reply(&d.action.id, SubscriberReply::Agree, "web").unwrap();
    assert!(e.gov.lift(&d.action.id, &op(), " ").is_err());
    let r = e.gov.lift(&d.action.id, &op(), "subscriber asked to resume").unwrap();
    assert_eq!(r.state, ActionState::Lifted);
    assert!(e.gov.lift(&d.action.id, &op(), "again").is_err());
}

#[test]
fn ledger_tamper_is_detected_and_named() {
    let e = env("2026-11-24T22:00:00+09:00");
    enable_surge(&e.gov);
    for i in 0..6 {
        e.gov.propose(surge(&format!("03123400{i:02}"))).unwrap();
    }
    let report = e.store.verify_ledger(None).unwrap();
    assert!(report.entries >= 20);
    assert!(report.checkpoints >= 3);
    let path = e.store.path().to_owned();
    drop(e.gov);
    drop(e.store);
    // flip one byte of entry 7's body, directly in the database file's row
    let conn = rusqlite::Connection::open(&path).unwrap();
    let body: String = conn.query_row("SELECT body FROM ledger WHERE seq = 7", [], |r| r.get(0)).unwrap();
    let mut bytes = body.into_bytes();
    bytes[2] ^= 0x01;
    conn.execute("UPDATE ledger SET body = ?1 WHERE seq = 7", [String::from_utf8(bytes).unwrap()]).unwrap();
    drop(conn);
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    match store.verify_ledger(None) {
        Err(StoreError::Chain(e)) => {
            assert_eq!(e, ChainError::ContentMismatch { seq: 7 });
            assert!(e.to_string().contains("entry 7"));
        }
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[test]
fn ledger_deletion_and_truncation_are_detected() {
    let e = env("2026-11-24T22:00:00+09:00");
    enable_surge(&e.gov);
    for i in 0..5 {
        e.gov.propose(surge(&format!("03123410{i:02}"))).unwrap();
    }
    let (tip, tip_hash) = e.store.ledger_tip().unwrap();
    let path = e.store.path().to_owned();
    drop(e.gov);
    drop(e.store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM ledger WHERE seq = 4", []).unwrap();
    drop(conn);
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert!(matches!(store.verify_ledger(None), Err(StoreError::Chain(ChainError::Gap { expected: 4, .. }))));
    drop(store);
    // restore a clean copy? no: truncate the tail of another ledger instead
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM ledger WHERE seq >= 4", []).unwrap();
    drop(conn);
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    // checkpoint every 5 entries: entry 5 is named by a checkpoint but gone
    assert!(matches!(store.verify_ledger(None), Err(StoreError::Chain(ChainError::Truncated { seq: 5, tip: 3 }))));
    // and the auditor's recorded tip also catches it
    assert!(tip > 3);
    let _ = tip_hash;
}

#[test]
fn retention_sweep_deletes_what_is_due_and_ledgers_counts_only() {
    let e = env("2026-11-24T10:00:00+09:00");
    let put = |at: &str, measure: MeasureId| {
        e.store
            .commit(Batch {
                at: ts("2026-11-24T10:00:00+09:00"),
                mutations: vec![Mutation::PutRecord(StoredRecord {
                    measure,
                    subject: "line:0399990000".into(),
                    kind: "stage-2-calls".into(),
                    at: ts(at),
                    payload: "{\"source_ip\":\"198.51.100.99\"}".into(),
                })],
                ledger: vec![],
            })
            .unwrap();
    };
    // surge keeps 90 days by default; traffic overview 365
    put("2026-07-01T00:00:00+09:00", MeasureId::PhoneSuspendLineOnSurge); // 146 days old: due
    put("2026-08-20T00:00:00+09:00", MeasureId::PhoneSuspendLineOnSurge); // 96 days old: due
    put("2026-11-01T00:00:00+09:00", MeasureId::PhoneSuspendLineOnSurge); // 23 days: kept
    put("2026-07-01T00:00:00+09:00", MeasureId::NetTrafficOverview); // within 365: kept
    let out = e.gov.retention_sweep(&Actor::system()).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].measure, MeasureId::PhoneSuspendLineOnSurge);
    assert_eq!(out[0].deleted, 2);
    assert_eq!(out[0].oldest.as_deref(), Some("2026-06-30T15:00:00.000000Z"));
    if !SINGLE_THREAD {
        // (A single-threaded store holds its file: no other connection may read it meanwhile.)
        let conn = rusqlite::Connection::open(e.store.path()).unwrap();
        let left: i64 = conn.query_row("SELECT count(*) FROM records", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 2);
    }
    // the ledger says what was deleted, never the content
    let mut entries = vec![];
    e.store
        .export_ledger(&Default::default(), &mut |en| {
            if en.kind == "retention-swept" {
                entries.push(en);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].body.contains("\"deleted\":2"));
    assert!(!entries[0].body.contains("198.51.100.99"));
    // a second sweep deletes nothing and writes nothing
    assert!(e.gov.retention_sweep(&Actor::system()).unwrap().is_empty());
}

#[test]
fn consent_history_is_kept() {
    let e = env("2026-11-24T10:00:00+09:00");
    let s = SubscriberId("S-77".into());
    e.gov.grant_consent(&s, MeasureId::PhoneSuspendDormant, "written", &op()).unwrap();
    e.clock.advance(SignedDuration::from_hours(1));
    e.gov.opt_out(&s, MeasureId::PhoneSuspendDormant, "phone", &op()).unwrap();
    let (states, history) = e.gov.consent_overview(&s).unwrap();
    assert_eq!(history.len(), 2);
    let dormant = states.iter().find(|(m, _)| *m == MeasureId::PhoneSuspendDormant).unwrap();
    assert!(matches!(dormant.1, mamori_core::consent::ConsentState::OptedOut { .. }));
    // consent operations on a measure that doesn't rest on consent are refused
    assert!(matches!(
        e.gov.opt_out(&s, MeasureId::DdosBlockToProtectNetwork, "phone", &op()),
        Err(GovernanceError::ConsentNotApplicable { .. })
    ));
}

#[test]
fn subscriber_request_is_recorded_as_consent_and_applied() {
    let e = env("2026-11-24T11:00:00+09:00");
    e.gov.enable_measure(MeasureId::PhoneSuspendOnRequest, &op()).unwrap();
    let mut p = Proposal::new(MeasureId::PhoneSuspendOnRequest, Target::Line("0312349999".into()), op(), json!({}));
    p.subscriber = Some(SubscriberId("S-5".into()));
    p.subscriber_request = Some("phone call to the contact desk".into());
    let d = e.gov.propose(p).unwrap();
    assert_eq!(d.action.state, ActionState::Applied);
    assert_eq!(d.authorization.unwrap().legal_basis(), mamori_core::catalog::LegalBasis::Consent);
    let h = e.store.consent_history(&SubscriberId("S-5".into())).unwrap();
    assert_eq!(h.len(), 1);
}

#[test]
fn action_state_is_the_records_state_and_sees_other_processes() {
    if SINGLE_THREAD {
        // Other processes cannot open a single-threaded store's file: nothing to see.
        return;
    }
    let e = env("2026-11-24T10:00:00+09:00");
    enable_surge(&e.gov);
    let id = e.gov.propose(surge("0312340021")).unwrap().action.id;
    assert_eq!(e.store.action_state(&id).unwrap(), Some(ActionState::AwaitingConsent));
    assert_eq!(e.store.action_state("A20261124-none").unwrap(), None);
    // Another process (its own store on the same file): the subscriber agrees, then a person lifts.
    let (other, other_store) = open(&e._dir.path().join("m.sqlite"), &e.clock);
    other.subscriber_reply(&id, SubscriberReply::Agree, "web").unwrap();
    assert_eq!(e.store.action_state(&id).unwrap(), Some(ActionState::Applied));
    other.lift(&id, &op(), "subscriber asked to resume").unwrap();
    assert_eq!(e.store.action_state(&id).unwrap(), Some(ActionState::Lifted));
    for s in [&e.store, &other_store] {
        assert_eq!(s.action_state(&id).unwrap(), s.action(&id).unwrap().map(|a| a.state));
    }
}
