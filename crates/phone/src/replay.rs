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
    let mut released: Vec<Cdr> = Vec::with_capacity(1024);
    let mut last_end: Timestamp = first.end;
    reorder.push(first, &mut |c| released.push(c));
    loop {
        let row = match cdrs.next_ref() {
            Ok(r) => r,
            Err(e) => {
                sink.stopped(&e);
                break;
            }
        };
        match row {
            None => break,
            Some(Err(b)) => sink.bad_row(&b),
            Some(Ok(c)) => {
                last_end = last_end.max(c.end);
                if c.is_international() {
                    reorder.push(c.to_cdr(), &mut |c| released.push(c));
                } else if reorder.first_time(c.call_id, c.start) {
                    // Most rows: they teach a line its own addresses and numbers, in any order.
                    engine.on_domestic_cdr(&c);
                }
            }
        }
        if !released.is_empty() {
            for c in released.drain(..) {
                engine.on_cdr(&c)?;
            }
            emit(engine.take_events(), sink)?;
        }
    }
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
    Ok(Some(summary))
}
