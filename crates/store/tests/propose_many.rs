//! `Governance::propose_many` against `propose` one by one, on two real stores with the same
//! data clock: the same decisions, the same ledger entries (kind, measure, subject, actor, body)
//! in the same order, the same outbox — opt-outs refused, repeated targets of a restrictive
//! measure answered with the open action, measures outside the batched path (and their errors)
//! decided by `propose`, in the caller's order.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use mamori_core::action::ActionState;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::DataClock;
use mamori_core::config::Config;
use mamori_core::governance::{Decision, Governance, GovernanceError, Proposal};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;

fn open(dir: &tempfile::TempDir, name: &str) -> Governance {
    let clock = DataClock::new("2026-11-24T13:00:00Z".parse().unwrap());
    let store = Arc::new(SqliteStore::open(&dir.path().join(name), StoreOptions::default()).unwrap());
    let gov = Governance::new(store, Arc::new(clock), Arc::new(Config::default())).unwrap();
    let by = Actor("sato".into());
    for m in
        [MeasureId::BotsAlertFromThirdParty, MeasureId::IotAlertWeakCredentials, MeasureId::DdosBlockToProtectNetwork]
    {
        gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &by).unwrap();
        gov.enable_measure(m, &by).unwrap();
    }
    gov.opt_out(&SubscriberId("S2".into()), MeasureId::IotAlertWeakCredentials, "web", &by).unwrap();
    gov
}

fn proposals() -> Vec<Proposal> {
    let p = |m: MeasureId, target: Target, sub: Option<&str>| {
        let mut p = Proposal::new(m, target, Actor("report:test".into()), json!({"rows": 3, "seen": ["mirai"]}));
        p.subscriber = sub.map(|s| SubscriberId(s.into()));
        p
    };
    let sub = |s: &str| Target::Subscriber(s.into());
    let mut v = Vec::new();
    for s in ["S1", "S2", "S3", "S4", "S5"] {
        v.push(p(MeasureId::BotsAlertFromThirdParty, sub(s), Some(s)));
    }
    for s in ["S1", "S2", "S3"] {
        v.push(p(MeasureId::IotAlertWeakCredentials, sub(s), Some(s)));
    }
    // outside the batched path: not enabled (an error), a consent request, an alert without a subscriber
    v.push(p(MeasureId::PhoneSuspendDormant, Target::Line("L1".into()), Some("S9")));
    v.push(p(MeasureId::BotsAlertFromThirdParty, Target::Network, None));
    // a restrictive measure, the same target twice in one chunk and again later
    v.push(p(MeasureId::DdosBlockToProtectNetwork, Target::Ip("192.0.2.1".into()), None));
    v.push(p(MeasureId::DdosBlockToProtectNetwork, Target::Ip("192.0.2.1".into()), None));
    v.push(p(MeasureId::BotsAlertFromThirdParty, sub("S6"), Some("S6")));
    v.push(p(MeasureId::DdosBlockToProtectNetwork, Target::Ip("192.0.2.1".into()), None));
    v
}

/// kind, measure, subject, actor, body
type Row = (String, Option<String>, Option<String>, String, String);

fn ledger(gov: &Governance) -> Vec<Row> {
    let mut out = Vec::new();
    gov.store()
        .export_ledger(&Default::default(), &mut |e| {
            out.push((e.kind.clone(), e.measure.clone(), e.subject.clone(), e.actor.clone(), e.body.clone()));
            Ok(())
        })
        .unwrap();
    out
}

fn summary(r: &Result<Decision, GovernanceError>) -> String {
    match r {
        Ok(d) => format!(
            "{} {} {} existing={} auth={}",
            d.action.measure,
            d.action.target,
            d.action.state,
            d.existing,
            d.authorization.as_ref().map(|a| a.ledger_seq() > 0).unwrap_or(false)
        ),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn propose_many_decides_and_records_exactly_as_propose() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(&dir, "one.sqlite");
    let many = open(&dir, "many.sqlite");

    let expected: Vec<String> = proposals().into_iter().map(|p| summary(&one.propose(p))).collect();
    let got: Vec<String> = many.propose_many(proposals(), 3).unwrap().iter().map(summary).collect();
    assert_eq!(got, expected);
    assert!(expected[6].contains(&ActionState::Refused.to_string()), "S2 opted out: {expected:?}");
    assert!(expected[8].starts_with("error:") && expected[9].starts_with("error:"), "{expected:?}");
    assert!(expected[11].contains("existing=true") && expected[13].contains("existing=true"), "{expected:?}");

    let (a, b) = (ledger(&one), ledger(&many));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    let outbox = |g: &Governance| {
        g.store().outbox(100).unwrap().into_iter().map(|m| (m.subscriber.0, m.measure, m.purpose)).collect::<Vec<_>>()
    };
    assert_eq!(outbox(&one), outbox(&many));
    // The stored actions are the same (ids and times aside), each with its grant.
    let actions = |g: &Governance| {
        let mut v: Vec<String> = g
            .store()
            .actions(&Default::default())
            .unwrap()
            .into_iter()
            .map(|a| {
                format!(
                    "{} {} {} {} {:?} {:?} {}",
                    a.measure,
                    a.target,
                    a.state,
                    a.legal_basis,
                    a.end_reason,
                    a.deadline.is_some(),
                    a.grant_seq.is_some()
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(actions(&one), actions(&many));
    assert_eq!(outbox(&many).len(), 8);
    many.store().verify_ledger(None).unwrap();

    // Every applied action carries its grant.
    for r in many.propose_many(proposals(), 1000).unwrap().into_iter().flatten() {
        if let Some(auth) = &r.authorization {
            let stored = many.store().action(&r.action.id).unwrap().unwrap();
            assert_eq!(stored.grant_seq, Some(auth.ledger_seq()));
        }
    }
}

/// With every chunk size, including those where a chunk is still being committed when the next
/// proposal names one of its targets (`propose_many` decides the next chunk meanwhile): the same
/// decisions, ledger and outbox as `propose` one by one.
#[test]
fn every_chunk_size_decides_as_propose() {
    let mut list = proposals();
    // Targets repeated across chunk boundaries, restrictive and not.
    list.extend(proposals());
    let expected_dir = tempfile::tempdir().unwrap();
    let one = open(&expected_dir, "one.sqlite");
    let expected: Vec<String> = list.clone().into_iter().map(|p| summary(&one.propose(p))).collect();
    for chunk in [1, 2, 4, 5, 7] {
        let dir = tempfile::tempdir().unwrap();
        let many = open(&dir, "many.sqlite");
        let got: Vec<String> = many.propose_many(list.clone(), chunk).unwrap().iter().map(summary).collect();
        assert_eq!(got, expected, "chunk {chunk}");
        assert_eq!(ledger(&one), ledger(&many), "chunk {chunk}");
        let outbox = |g: &Governance| {
            g.store()
                .outbox(100)
                .unwrap()
                .into_iter()
                .map(|m| (m.subscriber.0, m.measure, m.purpose))
                .collect::<Vec<_>>()
        };
        assert_eq!(outbox(&one), outbox(&many), "chunk {chunk}");
        many.store().verify_ledger(None).unwrap();
    }
}
