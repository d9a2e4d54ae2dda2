//! The telephone engine over a billing file, on the data's own clock: what `mamori replay cdr`
//! and the API's replay run. Actuators are recorded, not called.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use jiff::Timestamp;
use mamori_core::actuator::{Actuator, RecordingActuator};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::DataClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, GovernanceError, requires_notice};
use mamori_core::store::Store;
use mamori_core::subject::Actor;

use crate::cdr::Cdr;
use crate::cdr::order::Reorder;
use crate::cdr::reader::{BadRow, CdrFileError, CdrReader};
use crate::domestic::DomesticBatch;
use crate::engine::{Engine, EngineError, Mode, PhoneEvent, Subscribers};
use crate::numbering::NumberingPlan;

/// The measures a replay runs (the others are publications and requests, not detections).
pub const REPLAYED: [MeasureId; 5] = [
    MeasureId::PhoneSuspendOnRequest,
    MeasureId::PhoneSuspendDormant,
    MeasureId::PhoneSuspendLineOnSurge,
    MeasureId::PhoneSuspendSipAuthFromIp,
    MeasureId::PhoneRestrictCountry,
];

/// Where a replay's output goes.
pub trait ReplaySink {
    /// A governance event, in data-time order.
    fn event(&mut self, e: &PhoneEvent) -> std::io::Result<()>;
    /// A malformed row, skipped.
    fn bad_row(&mut self, b: &BadRow);
    /// The rest of the input could not be read; what was read still counts.
    fn stopped(&mut self, e: &CdrFileError);
    /// A measure the replay will not act on (disabled in a database replayed into).
    fn not_enabled(&mut self, _m: MeasureId) {}
}

/// Where a replay writes its ledger and actions.
pub enum Database {
    /// A fresh store: the replay enables its measures there itself, with a stand-in notice.
    Fresh(Arc<dyn Store>),
    /// An existing store (e.g. a running server's): its switches, notices and consent are used
    /// as they are.
    Existing(Arc<dyn Store>),
}

/// What a replay did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplaySummary {
    /// Rows read.
    pub rows: u64,
    /// Malformed rows, skipped.
    pub bad_rows: u64,
    /// Duplicate call ids, counted once.
    pub duplicates: u64,
    /// Rows later than the reorder window.
    pub late: u64,
    /// Lines seen.
    pub lines: usize,
    /// International calls.
    pub international: u64,
    /// Events per kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Actuator calls recorded.
    pub actuator_calls: usize,
    /// Stage-2 unlocks.
    pub unlocks: u64,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file is not a CDR file (its header).
    #[error(transparent)]
    File(#[from] CdrFileError),
    /// The engine stopped.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Governance failed (enabling measures, the store).
    #[error(transparent)]
    Governance(#[from] GovernanceError),
    /// The sink failed (e.g. stdout closed).
    #[error("writing the events: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs the engine over `input` (mamori's generic CDR CSV). `None` when the file has no usable row.
pub fn replay(
    config: Config,
    input: impl Read,
    subscribers: Subscribers,
    db: Database,
    sink: &mut dyn ReplaySink,
) -> Result<Option<ReplaySummary>, ReplayError> {
    Ok(replay_rows(config, input, subscribers, db, sink, true)?.map(|(summary, _)| summary))
}

/// [`replay`], with its domestic rows taken in batches ([`DomesticBatch`]) or, for the test that
/// compares the two, one at a time.
fn replay_rows(
    config: Config,
    input: impl Read,
    subscribers: Subscribers,
    db: Database,
    sink: &mut dyn ReplaySink,
    batched: bool,
) -> Result<Option<(ReplaySummary, Engine)>, ReplayError> {
    let mut cdrs = CdrReader::new(input, NumberingPlan::new())?;
    // The first good row sets the data clock before anything is written to the ledger.
    let first = loop {
        match cdrs.next_row()? {
            None => break None,
            Some(Ok(c)) => break Some(c),
            Some(Err(b)) => sink.bad_row(&b),
        }
    };
    let Some(first) = first else { return Ok(None) };
    let clock = DataClock::new(first.start);
    let phone = config.phone.clone();
    let (store, fresh) = match db {
        Database::Fresh(s) => (s, true),
        Database::Existing(s) => (s, false),
    };
    let gov = Arc::new(Governance::new(store, Arc::new(clock.clone()), Arc::new(config))?);
    let replayer = Actor("mamori replay".into());
    for m in REPLAYED {
        if !fresh {
            if !gov.is_enabled(m)? {
                sink.not_enabled(m);
            }
            continue;
        }
        if requires_notice(m) {
            gov.record_notice(m, "https://replay.invalid/terms", "replay", None, &replayer)?;
        }
        gov.enable_measure(m, &replayer)?;
    }
    let recorder = Arc::new(RecordingActuator::default());
    let mut engine = Engine::new(
        gov.clone(),
        &phone,
        subscribers,
        vec![recorder.clone() as Arc<dyn Actuator>],
        Mode::Replay(clock),
    )?;

    let mut summary = ReplaySummary::default();
    let mut emit = |events: Vec<PhoneEvent>, sink: &mut dyn ReplaySink| -> std::io::Result<()> {
        for e in events {
            *summary.events.entry(e.event).or_default() += 1;
            sink.event(&e)?;
        }
        Ok(())
    };

    let mut reorder = Reorder::new(phone.reorder_lateness);
    let mut domestic = DomesticBatch::new();
    let mut released: Vec<Cdr> = Vec::with_capacity(1024);
    let mut last_end: Timestamp = first.end;
    reorder.push(first, &mut |c| released.push(c));
    loop {
        // The row is used where the reader parsed it (by reference, not returned and moved).
        let step = cdrs.next_with(|row| match row {
            Err(b) => sink.bad_row(b),
            Ok(c) => {
                last_end = last_end.max(c.end);
                if c.is_international() {
                    domestic.take(&mut reorder, &mut engine);
                    reorder.push(c.to_cdr(), &mut |c| released.push(c));
                } else if batched && domestic.push(c, &engine) {
                    // Most rows: they teach a line its own addresses and numbers, in any order,
                    // and are taken a batch at a time.
                    if domestic.is_full() {
                        domestic.take(&mut reorder, &mut engine);
                    }
                } else {
                    domestic.take(&mut reorder, &mut engine);
                    if reorder.first_time(c.call_id, c.start) {
                        engine.on_domestic_cdr(c);
                    }
                }
            }
        });
        match step {
            Err(e) => {
                sink.stopped(&e);
                break;
            }
            Ok(None) => break,
            Ok(Some(())) => {}
        }
        if !released.is_empty() {
            for c in released.drain(..) {
                engine.on_cdr(&c)?;
            }
            emit(engine.take_events(), sink)?;
        }
    }
    domestic.take(&mut reorder, &mut engine);
    reorder.finish(&mut |c| released.push(c));
    for c in released.drain(..) {
        engine.on_cdr(&c)?;
    }
    // Let the last calls leave the window and the cool-downs run, on data time.
    let tail = phone.window + phone.ip_cooldown.max(phone.country_cooldown) + phone.interval;
    engine.finish(last_end.checked_add(tail).unwrap_or(last_end))?;
    emit(engine.take_events(), sink)?;
    summary.rows = cdrs.rows;
    summary.bad_rows = cdrs.bad_rows;
    summary.duplicates = reorder.duplicates;
    summary.late = reorder.late;
    summary.lines = engine.lines();
    summary.international = engine.counters.international;
    summary.actuator_calls = recorder.calls().len();
    summary.unlocks = engine.counters.unlocks;
    Ok(Some((summary, engine)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mamori_phone_synth::{SynthConfig, generate};
    use mamori_store::{SqliteStore, StoreOptions};

    #[derive(Default)]
    struct Collect {
        events: Vec<serde_json::Value>,
        bad: Vec<String>,
    }

    impl ReplaySink for Collect {
        fn event(&mut self, e: &PhoneEvent) -> std::io::Result<()> {
            let mut v = serde_json::to_value(e)?;
            // Action ids are random; everything else must match.
            if let Some(o) = v.as_object_mut() {
                o.remove("action_id");
            }
            self.events.push(v);
            Ok(())
        }
        fn bad_row(&mut self, b: &BadRow) {
            self.bad.push(b.to_string());
        }
        fn stopped(&mut self, e: &CdrFileError) {
            self.bad.push(format!("stopped: {e}"));
        }
    }

    fn run(csv: &[u8], batched: bool) -> (Collect, ReplaySummary, String) {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions { durable: false, single_thread: true, ..StoreOptions::default() };
        let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite"), options).unwrap());
        let mut sink = Collect::default();
        let (summary, engine) =
            replay_rows(Config::default(), csv, Subscribers::default(), Database::Fresh(store), &mut sink, batched)
                .unwrap()
                .unwrap();
        (sink, summary, engine.learned_state())
    }

    #[test]
    fn domestic_rows_in_batches_give_what_one_at_a_time_gives() {
        let cfg = SynthConfig {
            lines: 300,
            days: 3,
            seed: 31,
            fraud_episodes: Some(6),
            negative_episodes: Some(4),
            duplicate_rate: 0.01,
            malformed_rate: 0.002,
            ..SynthConfig::default()
        };
        let mut csv = Vec::new();
        generate(&cfg, &mut csv, std::io::sink(), std::io::sink()).unwrap();
        // Some lines get ids too long to be held in a batch (they are taken one at a time, after
        // the batch): the order of rows must not change for them either.
        let mut long_ids = Vec::with_capacity(csv.len() * 2);
        for row in csv.split_inclusive(|b| *b == b'\n') {
            let fields: Vec<&[u8]> = row.split(|b| *b == b',').collect();
            if fields.len() == 8 && fields[3].ends_with(b"7") {
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        long_ids.push(b',');
                    }
                    long_ids.extend_from_slice(f);
                    if i == 3 {
                        long_ids.extend_from_slice(b"-an-account-code-longer-than-24-bytes");
                    }
                }
            } else {
                long_ids.extend_from_slice(row);
            }
        }
        let csv = long_ids;
        let (batched, batched_summary, batched_state) = run(&csv, true);
        let (single, single_summary, single_state) = run(&csv, false);
        // What every line learned (its own clients and numbers, its counts, its gate), line by
        // line: the events alone would miss a row taken out of turn.
        assert_eq!(batched_state, single_state);
        assert!(batched_summary.duplicates > 0 && batched_summary.bad_rows > 0, "{batched_summary:?}");
        assert!(batched.events.len() > 10, "the file has frauds to act on: {}", batched.events.len());
        assert_eq!(batched.events, single.events);
        assert_eq!(batched.bad, single.bad);
        assert_eq!(serde_json::to_value(&batched_summary).unwrap(), serde_json::to_value(&single_summary).unwrap());
    }
}
