//! Live operation with Kamailio (`[phone.kamailio]`): the actuator the server registers, and the
//! live source feeding the telephone-fraud engine on the wall clock.
//!
//! Two threads, stopped with the server:
//!
//! - **evapi**: a [`mamori_kamailio::EvapiClient`] connected to Kamailio's evapi listener, turning
//!   its messages into call events (reconnecting with backoff when Kamailio restarts);
//! - **engine**: owns the [`Engine`] (not `Sync`); takes the events, evaluates every second on
//!   the wall clock, and keeps Kamailio's htables equal to what governance has in force:
//!   - whenever evapi (re)connects (Kamailio may have restarted with empty tables): a full
//!     reconciliation with a `reconciled` ledger entry, as at server start;
//!   - whenever the set of actions in force changes in the store without the engine (an
//!     operator's `mamori actions approve|lift|reply`, the API, another process): the change is
//!     carried to Kamailio within [`SYNC_EVERY`], with a `reconciled` entry when it changed
//!     something. (The engine's own decisions are applied at once through the same actuator;
//!     expiries are removed by the server's scheduler.)
//!
//! The engine's learned levels ([`mamori_phone::learned`]) are read from
//! `DATA_DIR/phone-learned.json` at start and written back every [`SAVE_EVERY`] and when the
//! server stops, so a restart does not make every line learn its normal level again.
//!
//! Logs carry action ids and measures, never targets (line ids, addresses) at info level.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::Timestamp;
use mamori_core::actuator::Actuator;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_kamailio::{EvapiClient, Feed, KamailioActuator};
use mamori_phone::engine::{Engine, Mode, Subscribers};
use mamori_phone::learned::Learned;
use serde_json::json;

/// How often the engine evaluates (it evaluates every `[phone] interval` of wall time due).
const TICK: Duration = Duration::from_secs(1);
/// How often the actions in force are compared with what Kamailio was last made to hold.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);
/// How often the engine's learned levels are written to disk (and once more at stop).
pub const SAVE_EVERY: Duration = Duration::from_secs(300);
/// The learned levels' file in the data directory.
pub const LEARNED_FILE: &str = "phone-learned.json";
/// Events waiting for the engine before the evapi reader pauses (TCP then pushes back).
const QUEUE: usize = 100_000;

/// The live part of `mamori serve`: nothing when `[phone.kamailio]` is absent.
pub struct Live {
    actuators: Vec<Arc<dyn Actuator>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Live {
    /// Builds the Kamailio actuator and starts the evapi reader and the engine, when configured.
    pub fn start(config: &Config, gov: Arc<Governance>) -> anyhow::Result<Live> {
        let stop = Arc::new(AtomicBool::new(false));
        let Some(k) = &config.phone.kamailio else {
            return Ok(Live { actuators: Vec::new(), stop, threads: Vec::new() });
        };
        let kamailio = Arc::new(KamailioActuator::new(&k.jsonrpc_url));
        let actuators: Vec<Arc<dyn Actuator>> = vec![kamailio.clone()];
        let mut engine = Engine::new(gov.clone(), &config.phone, Subscribers::default(), actuators.clone(), Mode::Live)
            .context("starting the telephone-fraud engine")?;
        let learned_path = config.data_dir.join(LEARNED_FILE);
        match Learned::load(&learned_path) {
            Ok(Some(learned)) => {
                let lines = engine.restore(learned);
                tracing::info!(lines, "telephone-fraud engine: learned levels restored");
            }
            Ok(None) => tracing::info!("telephone-fraud engine: no learned levels yet; learning from the first call"),
            // Not fatal: the engine learns again, and the next save replaces the file.
            Err(e) => tracing::warn!(error = %e, "telephone-fraud engine: learned levels not restored; learning again"),
        }
        tracing::info!(evapi = %k.evapi, jsonrpc = %k.jsonrpc_url, "Kamailio configured: live call events and enforcement");

        // Install the server's Prometheus recorder first, so the help texts land in it.
        let _ = mamori_server::metrics_handle();
        mamori_kamailio::evapi::metric::describe();
        let (tx, rx) = mpsc::sync_channel::<Feed>(QUEUE);
        let evapi = EvapiClient::new(k.evapi);
        let evapi_thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kamailio-evapi".into())
                .spawn(move || evapi_loop(&evapi, &stop, &tx))
                .context("starting the evapi thread")?
        };
        let engine_thread = {
            let stop = stop.clone();
            let runner = Runner {
                engine,
                gov,
                kamailio,
                actuators: actuators.clone(),
                synced: None,
                sync_failing: false,
                learned_path,
            };
            std::thread::Builder::new()
                .name("phone-engine".into())
                .spawn(move || runner.run(&rx, &stop))
                .context("starting the engine thread")?
        };
        Ok(Live { actuators, stop, threads: vec![evapi_thread, engine_thread] })
    }

    /// The actuators the server reconciles at start and calls on expiry.
    pub fn actuators(&self) -> Vec<Arc<dyn Actuator>> {
        self.actuators.clone()
    }

    /// Stops the threads and waits for them.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a live thread panicked");
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

fn evapi_loop(client: &EvapiClient, stop: &AtomicBool, tx: &SyncSender<Feed>) {
    client.run(stop, &mut |feed| {
        if tx.send(feed).is_err() {
            // The engine is gone: nothing more to do.
            stop.store(true, Ordering::Relaxed);
        }
    });
}

struct Runner {
    engine: Engine,
    gov: Arc<Governance>,
    kamailio: Arc<KamailioActuator>,
    actuators: Vec<Arc<dyn Actuator>>,
    /// The action ids in force that Kamailio was last made to hold (`None`: not known yet).
    synced: Option<BTreeSet<String>>,
    sync_failing: bool,
    learned_path: PathBuf,
}

impl Runner {
    fn run(mut self, rx: &Receiver<Feed>, stop: &AtomicBool) {
        let mut next_tick = Instant::now() + TICK;
        let mut next_sync = Instant::now() + SYNC_EVERY;
        let mut next_save = Instant::now() + SAVE_EVERY;
        while !stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(Feed::Event(ev)) => self.engine.on_call_event(ev),
                Ok(Feed::Connected) => self.reconcile_all(),
                Ok(Feed::Disconnected) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick();
                next_tick = (next_tick + TICK).max(now);
            }
            if now >= next_sync {
                self.sync();
                next_sync = now + SYNC_EVERY;
            }
            if now >= next_save {
                self.save_learned();
                next_save = now + SAVE_EVERY;
            }
        }
        self.save_learned();
        tracing::info!(counters = ?self.engine.counters, "telephone-fraud engine stopped");
    }

    fn save_learned(&self) {
        if let Err(e) = self.engine.learned().save(&self.learned_path) {
            tracing::error!(error = %e, "telephone-fraud engine: cannot save its learned levels");
        }
    }

    fn tick(&mut self) {
        if let Err(e) = self.engine.advance_to(Timestamp::now()) {
            tracing::error!(error = %e, "telephone-fraud evaluation failed; retrying at the next tick");
        }
        for ev in self.engine.take_events() {
            tracing::info!(
                measure = ev.measure,
                event = ev.event,
                action = ev.action_id.as_deref().unwrap_or("-"),
                "phone event"
            );
            tracing::debug!(measure = ev.measure, event = ev.event, target = %ev.target, "phone event target");
        }
    }

    /// After a (re)connection: Kamailio may have restarted with empty tables.
    fn reconcile_all(&mut self) {
        match mamori_server::reconcile(&self.gov, &self.actuators) {
            Ok(()) => self.synced = self.in_force_ids().ok(),
            Err(e) => tracing::error!(error = %e, "reconciliation with Kamailio failed"),
        }
    }

    fn in_force_ids(&self) -> Result<BTreeSet<String>, mamori_core::governance::GovernanceError> {
        Ok(self
            .gov
            .reauthorize_applied()?
            .into_iter()
            .filter(|(r, _)| self.kamailio.handles(r.measure))
            .map(|(r, _)| r.id)
            .collect())
    }

    /// Carries changes made elsewhere (operators, the API, other processes) to Kamailio.
    fn sync(&mut self) {
        let in_force = match self.gov.reauthorize_applied() {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the actions in force");
                return;
            }
        };
        let mine: Vec<_> = in_force.iter().filter(|(r, _)| self.kamailio.handles(r.measure)).collect();
        let ids: BTreeSet<String> = mine.iter().map(|(r, _)| r.id.clone()).collect();
        if self.synced.as_ref() == Some(&ids) {
            return;
        }
        let auths: Vec<_> = mine.iter().map(|(_, a)| a).collect();
        match self.kamailio.reconcile_counts(&auths) {
            Ok(counts) => {
                if self.sync_failing {
                    tracing::info!("Kamailio reachable again: enforcement in sync");
                    self.sync_failing = false;
                }
                let changed: usize = counts.values().map(|c| c.added + c.updated + c.removed).sum();
                if changed > 0 {
                    let summary: serde_json::Map<String, serde_json::Value> = counts
                        .iter()
                        .map(|(t, c)| {
                            (t.clone(), json!({"added": c.added, "updated": c.updated, "removed": c.removed}))
                        })
                        .collect();
                    let body = json!({"trigger": "actions in force changed", "in_force": ids.len(), "tables": summary, "ok": true});
                    if let Err(e) = self.gov.record_reconciled(self.kamailio.name(), body) {
                        tracing::error!(error = %e, "cannot record the reconciliation in the ledger");
                    }
                }
                self.synced = Some(ids);
            }
            Err(e) => {
                if !self.sync_failing {
                    tracing::warn!(error = %e, "cannot bring Kamailio in line with the actions in force; retrying");
                    self.sync_failing = true;
                }
            }
        }
    }
}
