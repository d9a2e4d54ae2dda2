//! The grant (the sequence number of an action's `applied` entry) is written with the action's
//! row when the same batch writes both, instead of by a later read-modify-write of the row: the
//! row must hold the same record (every field, the grant included) and the `grant_seq` column
//! the last `applied` entry's number, on every path (`propose`, `propose_many`, a batch of its
//! own with two `applied` entries, an entry for an action the batch doesn't write, which is
//! still updated after the fact as before).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use mamori_core::action::ActionRecord;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::DataClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, Proposal};
use mamori_core::ledger::{EventKind, LedgerDraft};
use mamori_core::store::{Batch, Mutation, Store};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;

/// What the write-back used to store for `stored` (the row as read now) with grant `seq`.
fn written_back(stored: &str, seq: i64) -> String {
    let mut rec: ActionRecord = serde_json::from_str(stored).unwrap();
    rec.grant_seq = None;
    let mut v: serde_json::Value = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
    v["grant_seq"] = json!(seq);
    v.to_string()
}

/// Per action: (record text, grant_seq column, number of the last `applied` entry).
fn rows(path: &std::path::Path) -> Vec<(String, String, Option<i64>, Option<i64>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare(
            "SELECT id, record, grant_seq,
                    (SELECT max(seq) FROM ledger WHERE kind = 'applied' AND action_id = actions.id)
             FROM actions ORDER BY id",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(|r| r.unwrap()).collect()
}

#[test]
fn grant_written_with_the_row_is_what_the_write_back_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let store = Arc::new(SqliteStore::open(&path, StoreOptions::default()).unwrap());
    let clock = DataClock::new("2026-11-24T13:00:00Z".parse().unwrap());
    let gov = Governance::new(store.clone(), Arc::new(clock), Arc::new(Config::default())).unwrap();
    let by = Actor("sato".into());
    for m in [MeasureId::IotAlertWeakCredentials, MeasureId::DdosBlockToProtectNetwork] {
        gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &by).unwrap();
        gov.enable_measure(m, &by).unwrap();
    }
    gov.opt_out(&SubscriberId("S2".into()), MeasureId::IotAlertWeakCredentials, "web", &by).unwrap();
    let p = |m: MeasureId, target: Target, sub: Option<&str>| {
        let mut p = Proposal::new(m, target, Actor("report:test".into()), json!({"rows": 3, "ratio": 0.1}));
        p.subscriber = sub.map(|s| SubscriberId(s.into()));
        p
    };
    // `propose`: inserted, updated and applied in one batch.
    let applied = gov.propose(p(MeasureId::DdosBlockToProtectNetwork, Target::Ip("192.0.2.1".into()), None)).unwrap();
    assert!(applied.authorization.is_some());
    // `propose_many`: inserted in the decided state; S2 refused (no grant).
    let subs = ["S1", "S2", "S3", "S4"];
    let many = subs.iter().map(|s| p(MeasureId::IotAlertWeakCredentials, Target::Subscriber((*s).into()), Some(s)));
    gov.propose_many(many.collect(), 2).unwrap();
    // A batch of its own: one action, two `applied` entries (the last one's number is kept), and
    // an `applied` entry for an action the batch doesn't write (updated after the fact).
    let mut rec = applied.action.clone();
    rec.id = "A20261124-0000000001".into();
    rec.grant_seq = None;
    let entry = |id: &str| {
        LedgerDraft::new(EventKind::Applied, Actor::system(), json!({"test": true}))
            .measure(MeasureId::DdosBlockToProtectNetwork)
            .action(id.to_owned())
    };
    store
        .commit(Batch {
            at: "2026-11-24T13:00:01Z".parse().unwrap(),
            mutations: vec![Mutation::InsertAction(Box::new(rec.clone()))],
            ledger: vec![entry(&rec.id), entry(&applied.action.id), entry(&rec.id)],
        })
        .unwrap();

    let rows = rows(&path);
    assert_eq!(rows.len(), 6);
    let mut granted = 0;
    for (id, record, grant_col, last_applied) in &rows {
        assert_eq!(grant_col, last_applied, "{id}");
        let r: ActionRecord = serde_json::from_str(record).unwrap();
        assert_eq!(r.grant_seq, last_applied.and_then(|s| u64::try_from(s).ok()), "{id}");
        if *id == applied.action.id {
            // Granted again by a batch that doesn't write it: read back, parsed, written again.
            assert_eq!(record, &written_back(record, last_applied.unwrap()), "{id}");
        } else {
            // Written once: the record as serialised, its grant in it.
            assert_eq!(record, &serde_json::to_string(&r).unwrap(), "{id}");
        }
        granted += usize::from(last_applied.is_some());
    }
    assert_eq!(granted, 5, "{rows:?}");
    // What `propose` and `propose_many` answered is what was stored.
    let stored = store.action(&applied.action.id).unwrap().unwrap();
    assert_eq!(stored.grant_seq.map(|g| g > applied.authorization.as_ref().unwrap().ledger_seq()), Some(true));
    store.verify_ledger(None).unwrap();
}
