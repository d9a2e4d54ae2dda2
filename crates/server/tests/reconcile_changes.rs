//! The ledger's `reconciled` entry names what an actuator changed at its peer, when it says.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError, RecordingActuator};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::{Value, json};

/// Says it added one route and removed another.
struct Differ;

impl Actuator for Differ {
    fn name(&self) -> &str {
        "differ"
    }
    fn handles(&self, _: MeasureId) -> bool {
        true
    }
    fn apply(&self, _: &Authorization) -> Result<(), ActuatorError> {
        Ok(())
    }
    fn remove(&self, _: &ActionRecord) -> Result<(), ActuatorError> {
        Ok(())
    }
    fn reconcile(&self, _: &[&Authorization]) -> Result<(), ActuatorError> {
        Ok(())
    }
    fn reconcile_summary(&self, _: &[&Authorization]) -> Result<Option<Value>, ActuatorError> {
        Ok(Some(json!({"added": [{"route": "a"}], "removed": [{"route": "b"}]})))
    }
}

#[test]
fn the_reconciled_entry_names_the_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mamori.sqlite"), StoreOptions::default()).unwrap();
    let gov = Governance::new(Arc::new(store), Arc::new(WallClock), Arc::new(Config::default())).unwrap();
    let acts: Vec<Arc<dyn Actuator>> = vec![Arc::new(Differ), Arc::new(RecordingActuator::default())];
    mamori_server::reconcile(&gov, &acts).unwrap();
    let mut bodies = vec![];
    gov.store()
        .export_ledger(&Default::default(), &mut |e| {
            if e.kind == "reconciled" {
                bodies.push(serde_json::from_str::<Value>(&e.body).unwrap());
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let differ = bodies.iter().find(|b| b["actuator"] == "differ").unwrap();
    assert_eq!(differ["summary"]["changes"]["removed"][0]["route"], "b", "{differ}");
    assert_eq!(differ["summary"]["ok"], true);
    let other = bodies.iter().find(|b| b["actuator"] != "differ").unwrap();
    assert!(other["summary"].get("changes").is_none(), "an actuator that doesn't say: as before: {other}");
}
