//! An approval or lift made by another process (the CLI) reaches the actuators at the next tick.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use mamori_core::actuator::{Actuator, RecordingActuator};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, Proposal};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_server::Scheduler;
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;

fn governance(dir: &std::path::Path) -> Arc<Governance> {
    let store = SqliteStore::open(&dir.join("mamori.sqlite"), StoreOptions::default()).unwrap();
    Arc::new(Governance::new(Arc::new(store), Arc::new(WallClock), Arc::new(Config::default())).unwrap())
}

#[test]
fn changes_made_elsewhere_reach_the_actuators_at_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let served = governance(dir.path());
    let recorder = Arc::new(RecordingActuator::default());
    let scheduler = Scheduler::new(served.clone(), vec![recorder.clone() as Arc<dyn Actuator>]);
    scheduler.tick().unwrap();
    assert!(recorder.calls().is_empty(), "the first tick only takes note of the state");

    // Another process (the CLI) applies a subscriber's request on the same database.
    let cli = governance(dir.path());
    cli.enable_measure(MeasureId::PhoneSuspendOnRequest, &Actor("sato".into())).unwrap();
    let d = cli
        .propose(Proposal {
            subscriber: Some(SubscriberId("S1".into())),
            subscriber_request: Some("phone".into()),
            ..Proposal::new(
                MeasureId::PhoneSuspendOnRequest,
                Target::Line("L1".into()),
                Actor("sato".into()),
                json!({}),
            )
        })
        .unwrap();
    assert!(d.authorization.is_some());
    scheduler.tick().unwrap();
    let calls = recorder.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].call, calls[0].target.as_str()), ("reconcile", "line:L1"));

    // Nothing changed: nothing is called.
    scheduler.tick().unwrap();
    assert_eq!(recorder.calls().len(), 1);

    // The CLI lifts it: the actuator is made to hold nothing.
    cli.lift(&d.action.id, &Actor("sato".into()), "the subscriber asked to resume").unwrap();
    scheduler.tick().unwrap();
    assert_eq!(recorder.calls().len(), 1, "an empty reconcile records no per-action call");
    let mut kinds = vec![];
    served
        .store()
        .export_ledger(&Default::default(), &mut |e| {
            kinds.push(e.kind);
            Ok(())
        })
        .unwrap();
    assert_eq!(kinds.iter().filter(|k| *k == "reconciled").count(), 2, "{kinds:?}");
}
