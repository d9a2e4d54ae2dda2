//! The scheduler: expiry, lapses and retention on time (DESIGN.md invariant 3). Its state is the
//! store's, so after a restart the first tick catches up with everything that fell due meanwhile.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mamori_core::action::ActionRecord;
use mamori_core::actuator::Actuator;
use mamori_core::governance::{Governance, GovernanceError};
use mamori_core::subject::Actor;
use serde_json::json;

use crate::metrics_names as m;

/// Runs governance's tick and the retention sweep at their configured intervals.
pub struct Scheduler {
    gov: Arc<Governance>,
    actuators: Vec<Arc<dyn Actuator>>,
    /// Per actuator, the actions in force it was last made to hold; `None` until the first tick
    /// (the server reconciles everything at start).
    synced: Mutex<Vec<Option<BTreeSet<String>>>>,
}

impl Scheduler {
    /// A scheduler over governance and the actuators that must remove what ends.
    pub fn new(gov: Arc<Governance>, actuators: Vec<Arc<dyn Actuator>>) -> Self {
        let synced = Mutex::new(vec![None; actuators.len()]);
        Scheduler { gov, actuators, synced }
    }

    /// One tick: end what is due and tell the actuators; then carry to them what changed in the
    /// store by other hands (an approval, a lift or a subscriber's reply made through the CLI in
    /// another process). Returns how many actions ended.
    pub fn tick(&self) -> Result<usize, GovernanceError> {
        let out = self.gov.tick()?;
        for r in &out.expired {
            remove_everywhere(&self.actuators, r);
        }
        if !self.actuators.is_empty() {
            self.sync_changes()?;
        }
        metrics::counter!(m::EXPIRED).increment(out.expired.len() as u64);
        metrics::counter!(m::LAPSED).increment(out.lapsed.len() as u64);
        if !out.expired.is_empty() || !out.lapsed.is_empty() {
            tracing::info!(expired = out.expired.len(), lapsed = out.lapsed.len(), "scheduler ended due actions");
        }
        Ok(out.expired.len() + out.lapsed.len())
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let cfg = self.gov.config().scheduler.clone();
        let tick = Duration::try_from(cfg.tick).unwrap_or(Duration::from_secs(1));
        let sweep_every = Duration::try_from(cfg.retention_every).unwrap_or(Duration::from_secs(3600));
        let mut tick_iv = tokio::time::interval(tick);
        let mut sweep_iv = tokio::time::interval(sweep_every);
        tick_iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep_iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let this = Arc::new(self);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick_iv.tick() => {
                    let s = this.clone();
                    match tokio::task::spawn_blocking(move || s.tick()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            metrics::counter!(m::SCHEDULER_ERRORS).increment(1);
                            tracing::error!(error = %e, "scheduler tick failed; retrying at the next tick");
                        }
                        Err(e) => tracing::error!(error = %e, "scheduler tick panicked"),
                    }
                }
                _ = sweep_iv.tick() => {
                    let gov = this.gov.clone();
                    match tokio::task::spawn_blocking(move || gov.retention_sweep(&Actor::system())).await {
                        Ok(Ok(out)) => {
                            let n: u64 = out.iter().map(|o| o.deleted).sum();
                            metrics::counter!(m::RETENTION_DELETED).increment(n);
                            if n > 0 {
                                tracing::info!(deleted = n, "retention sweep");
                            }
                        }
                        Ok(Err(e)) => {
                            metrics::counter!(m::SCHEDULER_ERRORS).increment(1);
                            tracing::error!(error = %e, "retention sweep failed");
                        }
                        Err(e) => tracing::error!(error = %e, "retention sweep panicked"),
                    }
                }
            }
        }
    }
}

impl Scheduler {
    fn sync_changes(&self) -> Result<(), GovernanceError> {
        let in_force = self.gov.reauthorize_applied()?;
        let Ok(mut synced) = self.synced.lock() else { return Ok(()) };
        for (i, a) in self.actuators.iter().enumerate() {
            let mine: Vec<_> = in_force.iter().filter(|(r, _)| a.handles(r.measure)).collect();
            let ids: BTreeSet<String> = mine.iter().map(|(r, _)| r.id.clone()).collect();
            let Some(slot) = synced.get_mut(i) else { continue };
            match slot {
                None => *slot = Some(ids),
                Some(last) if *last == ids => {}
                Some(last) => {
                    let auths: Vec<_> = mine.iter().map(|(_, auth)| auth).collect();
                    let (added, removed) = (ids.difference(last).count(), last.difference(&ids).count());
                    let result = a.reconcile_summary(&auths);
                    if let Err(e) = &result {
                        metrics::counter!(m::ACTUATOR_ERRORS).increment(1);
                        tracing::warn!(actuator = a.name(), error = %e, "sync with the store failed; retrying at the next tick");
                    } else {
                        *slot = Some(ids);
                    }
                    let mut summary = json!({"in_force": auths.len(), "added": added, "removed": removed, "ok": result.is_ok(), "why": "changed in the store"});
                    with_changes(&mut summary, result);
                    self.gov.record_reconciled(a.name(), summary)?;
                }
            }
        }
        Ok(())
    }
}

fn remove_everywhere(actuators: &[Arc<dyn Actuator>], r: &ActionRecord) {
    for a in actuators.iter().filter(|a| a.handles(r.measure)) {
        if let Err(e) = a.remove(r) {
            metrics::counter!(m::ACTUATOR_ERRORS).increment(1);
            // The action id and measure are not subscriber data; the target may be, so it is not logged.
            tracing::warn!(actuator = a.name(), action = %r.id, measure = %r.measure, error = %e, "removal failed; reconciliation will retry");
        }
    }
}

/// Makes every actuator hold exactly the actions in force (after a restart of mamori or a peer),
/// and writes the result to the ledger.
pub fn reconcile(gov: &Governance, actuators: &[Arc<dyn Actuator>]) -> Result<(), GovernanceError> {
    // Catch up first, so nothing that expired while stopped is re-applied.
    let out = gov.tick()?;
    for r in &out.expired {
        remove_everywhere(actuators, r);
    }
    let in_force = gov.reauthorize_applied()?;
    for a in actuators {
        let mine: Vec<_> = in_force.iter().filter(|(r, _)| a.handles(r.measure)).map(|(_, auth)| auth).collect();
        let result = a.reconcile_summary(&mine);
        if let Err(e) = &result {
            metrics::counter!(m::ACTUATOR_ERRORS).increment(1);
            tracing::warn!(actuator = a.name(), error = %e, "reconciliation failed; the scheduler keeps the store's state");
        }
        let mut summary =
            json!({"in_force": mine.len(), "expired_while_stopped": out.expired.len(), "ok": result.is_ok()});
        with_changes(&mut summary, result);
        gov.record_reconciled(a.name(), summary)?;
    }
    Ok(())
}

/// Adds what the actuator changed at the peer (e.g. the BGP routes added and removed), when it says.
fn with_changes(
    summary: &mut serde_json::Value,
    result: Result<Option<serde_json::Value>, mamori_core::actuator::ActuatorError>,
) {
    if let (Ok(Some(changes)), Some(obj)) = (result, summary.as_object_mut()) {
        obj.insert("changes".to_owned(), changes);
    }
}

/// Runs the notification sender every `poll` until `stop` turns true: queues again what a
/// previous run left mid-send, then delivers due messages round after round.
pub(crate) async fn run_notifier(
    notifier: mamori_notify::Notifier,
    poll: jiff::SignedDuration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let notifier = Arc::new(notifier);
    {
        let n = notifier.clone();
        match tokio::task::spawn_blocking(move || n.recover()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "notifications: recovery failed"),
            Err(e) => tracing::error!(error = %e, "notifications: recovery panicked"),
        }
    }
    let mut iv = tokio::time::interval(Duration::try_from(poll).unwrap_or(Duration::from_secs(5)));
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = iv.tick() => {
                let n = notifier.clone();
                match tokio::task::spawn_blocking(move || n.run_once()).await {
                    Ok(Ok(r)) if !r.is_empty() => {
                        tracing::info!(sent = r.sent, retried = r.retried, failed = r.failed, suppressed = r.suppressed, "notifications");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        metrics::counter!(m::SCHEDULER_ERRORS).increment(1);
                        tracing::error!(error = %e, "notifications round failed; retrying at the next poll");
                    }
                    Err(e) => tracing::error!(error = %e, "notifications round panicked"),
                }
            }
        }
    }
}
