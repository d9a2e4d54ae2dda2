//! Governance rules end to end on the embedded store, with real Japan-time dates: the
//! single-connection store a replay uses (`StoreOptions::single_thread`), same cases; and that
//! store when it need not be durable: it commits every few hundred batches, yet a failed batch is
//! rolled back alone, reads and the ledger's verification see everything applied, and dropping
//! the store commits the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

const SINGLE_THREAD: bool = true;

include!("cases/governance.rs");

use mamori_core::ledger::{EventKind, LedgerDraft};
use mamori_core::store::ActionFilter;

#[test]
fn batches_commit_together_fail_alone_and_all_are_kept_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mamori.sqlite");
    let at: Timestamp = "2026-11-24T10:00:00+09:00".parse().unwrap();
    let store = Arc::new(
        SqliteStore::open(&path, StoreOptions { durable: false, single_thread: true, ..StoreOptions::default() })
            .unwrap(),
    );
    let gov = Governance::new(store.clone(), Arc::new(DataClock::new(at)), Arc::new(Config::default())).unwrap();
    gov.record_notice(MeasureId::PhoneSuspendLineOnSurge, "https://carrier.example/terms", "2026-04", None, &op())
        .unwrap();
    // The switches the store answers follow each batch that switches one (the store keeps them).
    assert!(!gov.is_enabled(MeasureId::PhoneSuspendLineOnSurge).unwrap());
    gov.enable_measure(MeasureId::PhoneSuspendLineOnSurge, &op()).unwrap();
    assert!(gov.is_enabled(MeasureId::PhoneSuspendLineOnSurge).unwrap());
    gov.disable_measure(MeasureId::PhoneSuspendLineOnSurge, &op()).unwrap();
    assert_eq!(store.measure_switches().unwrap().get(&MeasureId::PhoneSuspendLineOnSurge), Some(&false));
    gov.enable_measure(MeasureId::PhoneSuspendLineOnSurge, &op()).unwrap();
    assert_eq!(store.measure_switches().unwrap().get(&MeasureId::PhoneSuspendLineOnSurge), Some(&true));
    // More batches than one transaction takes, so some were committed and some are still open.
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(gov.propose(surge(&format!("03123{i:05}"))).unwrap().action.id);
    }
    let (tip_before, _) = store.ledger_tip().unwrap();

    // A batch that fails (its update expects a state the action is not in) leaves nothing behind:
    // neither its change nor its ledger entry, and the batches before it stay.
    let mut record = store.action(&ids[0]).unwrap().unwrap();
    let state = record.state;
    // Asked before the batch (so the store holds both answers), and again after it below.
    assert_eq!(store.action_state(&ids[0]).unwrap(), Some(state));
    assert_eq!(store.action_state("A20261124-rolled-back").unwrap(), None);
    let mut inserted = record.clone();
    inserted.id = "A20261124-rolled-back".into();
    record.end_reason = Some("changed by a batch that fails".into());
    let failed = store.commit(Batch {
        at,
        mutations: vec![
            // Written first, then undone with the rest of its batch.
            Mutation::InsertAction(Box::new(inserted)),
            Mutation::UpdateAction { record: Box::new(record), expect: mamori_core::action::ActionState::Lifted },
        ],
        ledger: vec![LedgerDraft::new(EventKind::Lifted, op(), json!({"why": "should not stay"}))],
    });
    assert!(matches!(failed, Err(StoreError::Conflict { .. })), "{failed:?}");
    assert_eq!(store.ledger_tip().unwrap().0, tip_before);
    assert_eq!(store.action(&ids[0]).unwrap().unwrap().end_reason, None);
    assert_eq!(store.action(&ids[0]).unwrap().unwrap().state, state);
    assert!(store.action("A20261124-rolled-back").unwrap().is_none());
    assert_eq!(store.action_state(&ids[0]).unwrap(), Some(state));
    assert_eq!(store.action_state("A20261124-rolled-back").unwrap(), None);
    // A batch that succeeds changes the state the store answers.
    assert_eq!(store.action_state(&ids[1]).unwrap(), Some(state));
    gov.subscriber_reply(&ids[1], SubscriberReply::Agree, "web").unwrap();
    assert_eq!(store.action_state(&ids[1]).unwrap(), Some(mamori_core::action::ActionState::Applied));
    assert_eq!(store.action_state(&ids[1]).unwrap(), store.action(&ids[1]).unwrap().map(|a| a.state));

    for i in 300..310 {
        ids.push(gov.propose(surge(&format!("03123{i:05}"))).unwrap().action.id);
    }
    let report = store.verify_ledger(None).unwrap();
    let (tip, _) = store.ledger_tip().unwrap();
    assert_eq!(report.entries, tip);
    let mut exported = 0;
    store
        .export_ledger(&Default::default(), &mut |_| {
            exported += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(exported, tip);
    // Applying goes on after a verification (which ends its own read).
    ids.push(gov.propose(surge("0312399999")).unwrap().action.id);
    let (tip_after, tip_hash) = store.ledger_tip().unwrap();
    assert!(tip_after > tip);
    let tip = tip_after;

    // Dropped: what was still open is committed; another process then finds it all.
    drop(gov);
    drop(store);
    let reopened = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(reopened.ledger_tip().unwrap(), (tip, tip_hash));
    assert_eq!(reopened.verify_ledger(Some(&tip_hash)).unwrap().entries, tip);
    let actions = reopened.actions(&ActionFilter::default()).unwrap();
    assert_eq!(actions.len(), ids.len());
}

#[test]
fn a_database_held_by_a_single_threaded_store_is_reported_in_use_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mamori.sqlite");
    let holder = SqliteStore::open(&path, StoreOptions { single_thread: true, ..StoreOptions::default() }).unwrap();
    // Another opener waits the busy timeout, then says who is to blame.
    let other = SqliteStore::open(&path, StoreOptions::default());
    match other {
        Err(e @ StoreError::InUse { .. }) => {
            let text = e.to_string();
            assert!(text.contains("in use by another process") && text.contains("mamori.sqlite"), "{text}");
        }
        Err(e) => panic!("expected InUse, got {e}"),
        Ok(_) => panic!("opened a database another store holds"),
    }
    // Once the holder is gone, the file opens and is intact.
    drop(holder);
    let again = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert!(again.verify_ledger(None).is_ok());
}
