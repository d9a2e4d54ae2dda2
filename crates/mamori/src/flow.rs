//! `mamori flow …` (victim requests) and the flow collector and DDoS engine of `mamori serve`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use mamori_core::actuator::{Actuator, RecordingActuator};
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::subject::{Actor, SubscriberId};
use mamori_flow::bgp::gobgp::BgpSpeaker;
use mamori_flow::bgp::{BgpActuator, FlowAction, FlowMatch};
use mamori_flow::collector::Collector;
use mamori_flow::detect::engine::{FlowEngine, VictimReport, propose_victim_request};
use mamori_flow::detect::{DetectConfig, Detector, FlowLearned};
use mamori_flow::prefix::Prefix;

use crate::cli::By;

/// `flow`
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Record a subscriber's report of an attack on their address and propose the matching
    /// mitigation (`ddos.block-on-victim-request`): a FlowSpec rule for the attack's
    /// characteristics, or with `--blackhole` an RTBH of the whole destination.
    VictimRequest {
        /// The subscriber who reported it.
        #[arg(long)]
        subscriber: String,
        /// The attacked prefix (CIDR, or one address).
        #[arg(long)]
        prefix: String,
        /// How they reported it (phone, web, mail…).
        #[arg(long, default_value = "phone")]
        via: String,
        /// IP protocol number of the attack (17 = UDP, 6 = TCP).
        #[arg(long)]
        protocol: Option<u8>,
        /// Source ports of the attack (reflection: 53, 123, 389, 1900, 11211…).
        #[arg(long = "src-port")]
        src_ports: Vec<u16>,
        /// Destination ports of the attack.
        #[arg(long = "dst-port")]
        dst_ports: Vec<u16>,
        /// Rate-limit to this many bytes/s instead of discarding.
        #[arg(long)]
        rate_limit: Option<u32>,
        /// Blackhole the whole destination (the victim asked for it explicitly).
        #[arg(long)]
        blackhole: bool,
        /// A shorter duration than the measure's maximum, e.g. `2h`.
        #[arg(long)]
        duration: Option<jiff::SignedDuration>,
        #[command(flatten)]
        by: By,
    },
}

fn actuator(config: &Config, gov: &Governance) -> Option<Arc<BgpActuator>> {
    let b = config.flow.bgp.as_ref()?;
    let speaker = BgpSpeaker {
        gobgp: b.gobgp.clone(),
        api_host: b.api.ip().to_string(),
        api_port: b.api.port(),
        rtbh_next_hop: b.rtbh_next_hop.to_string(),
        rtbh_community: b.rtbh_community.clone(),
    };
    Some(Arc::new(BgpActuator::new(speaker, gov.store().clone()).with_owner_community(b.owner_community.clone())))
}

/// Runs `mamori flow …`.
pub fn flow_cmd(config: &Config, gov: &Governance, cmd: FlowCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FlowCommand::VictimRequest {
            subscriber,
            prefix,
            via,
            protocol,
            src_ports,
            dst_ports,
            rate_limit,
            blackhole,
            duration,
            by,
        } => {
            let dst: Prefix = prefix.parse()?;
            let attack = FlowMatch {
                protocol,
                src_ports,
                dst_ports,
                action: rate_limit.map_or(FlowAction::Discard, |bytes_per_sec| FlowAction::RateLimit { bytes_per_sec }),
                ..FlowMatch::discard_to(dst)
            };
            let report = VictimReport {
                subscriber: SubscriberId(subscriber),
                via,
                operator: Actor(by.by),
                attack,
                blackhole,
                duration,
            };
            let bgp = actuator(config, gov);
            let recorder = RecordingActuator::default();
            let act: &dyn Actuator = match &bgp {
                Some(a) => a.as_ref(),
                None => &recorder,
            };
            let (d, err) = propose_victim_request(gov, act, report)?;
            print_decision(&d, err.as_ref());
            if bgp.is_none() && d.authorization.is_some() {
                println!("no [flow.bgp] speaker configured: `mamori serve` announces it at its next reconciliation");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_decision(d: &mamori_core::governance::Decision, err: Option<&mamori_core::actuator::ActuatorError>) {
    println!("{} {} {} {}", d.action.id, d.action.state.as_str(), d.action.measure, d.action.target);
    if d.existing {
        println!("an action on this target is already open");
    }
    if let Some(e) = err {
        println!("not announced yet: {e}");
    }
}

/// How often the detector's learned normal rates are written to disk (and once more at stop).
const SAVE_EVERY: Duration = Duration::from_secs(300);
/// The learned normal rates' file in the data directory, read at start.
pub const LEARNED_FILE: &str = "flow-learned.json";

/// The collector and engine threads of `mamori serve`.
pub struct Flow {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    actuator: Option<Arc<BgpActuator>>,
}

impl Flow {
    /// Starts the collectors when `[flow] listen` (NetFlow/IPFIX) or `sflow_listen` (sFlow) is
    /// set; both feed one engine.
    pub fn start(config: &Config, gov: Arc<Governance>) -> anyhow::Result<Flow> {
        let stop = Arc::new(AtomicBool::new(false));
        let actuator = actuator(config, &gov);
        let f = &config.flow;
        if f.listen.is_none() && f.sflow_listen.is_none() {
            return Ok(Flow { stop, thread: None, actuator });
        }
        let detect = DetectConfig {
            customer_prefixes: f.customer_prefixes.iter().map(|p| p.parse()).collect::<Result<_, _>>()?,
            host_pps: f.host_pps as f64,
            host_bps: f.host_bps as f64,
            host_fps: f.host_fps as f64,
            prefix_pps: f.prefix_pps as f64,
            prefix_bps: f.prefix_bps as f64,
            prefix_fps: f.prefix_fps as f64,
            source_pps: f.source_pps as f64,
            source_bps: f.source_bps as f64,
            source_fps: f.source_fps as f64,
            top_talkers: f.top_talkers as usize,
            normal_factor: f64::from(f.normal_factor),
            min_pps: f.min_pps as f64,
            learned_forget_after: f.learned_forget_after.as_secs_f64(),
            learned_max_entries: f.learned_max_entries as usize,
            ..DetectConfig::default()
        };
        let act: Arc<dyn Actuator> = match &actuator {
            Some(a) => a.clone(),
            None => Arc::new(RecordingActuator::default()),
        };
        let mut engine = FlowEngine::new(gov, Arc::new(WallClock), Detector::new(detect), act)?;
        let learned_path = config.data_dir.join(LEARNED_FILE);
        match FlowLearned::load(&learned_path) {
            Ok(Some(learned)) => {
                let in_file = learned.hosts.len() + learned.prefixes.len() + learned.outbound.len();
                let normals = engine.restore(learned);
                // Fewer when some were idle past `learned_forget_after` or over `learned_max_entries`.
                tracing::info!(normals, in_file, "flow engine: learned normal rates restored");
            }
            Ok(None) => {}
            // Not fatal: the detector learns again, and the next save replaces the file.
            Err(e) => tracing::warn!(error = %e, "flow engine: learned normal rates not restored; learning again"),
        }
        let _ = mamori_server::metrics_handle();
        mamori_flow::collector::metric::describe();
        mamori_flow::overview::metric::describe();
        mamori_flow::detect::metric::describe();
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let mut collectors = Vec::new();
        if let Some(listen) = f.listen {
            collectors
                .push(Collector::spawn(listen, tx.clone()).with_context(|| format!("flow collector on {listen}"))?);
        }
        if let Some(listen) = f.sflow_listen {
            collectors
                .push(Collector::spawn_sflow(listen, tx).with_context(|| format!("sFlow collector on {listen}"))?);
        }
        let window = Duration::from_secs_f64(f.window.as_secs_f64().max(1.0));
        engine.expect_window(window.as_secs_f64());
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new().name("flow-engine".into()).spawn(move || {
            let _collectors = collectors;
            let mut started = Instant::now();
            let mut next_save = Instant::now() + SAVE_EVERY;
            let save = |engine: &FlowEngine| {
                if let Err(e) = engine.learned().save(&learned_path) {
                    tracing::error!(error = %e, "flow engine: cannot save its learned normal rates");
                }
            };
            while !stop2.load(Ordering::Relaxed) {
                if let Ok(batch) = rx.recv_timeout(Duration::from_millis(200)) {
                    engine.ingest(&batch);
                }
                // Early when a host already spent a whole window's budget (time to detect).
                if started.elapsed() >= window || engine.urgent() {
                    let secs = started.elapsed().as_secs_f64();
                    started = Instant::now();
                    if let Err(e) = engine.close_window(secs) {
                        tracing::warn!(error = %e, "flow window not evaluated");
                    }
                }
                if Instant::now() >= next_save {
                    save(&engine);
                    next_save = Instant::now() + SAVE_EVERY;
                }
            }
            save(&engine);
        })?;
        Ok(Flow { stop, thread: Some(thread), actuator })
    }

    /// The BGP actuator, when a speaker is configured.
    pub fn actuators(&self) -> Vec<Arc<dyn Actuator>> {
        self.actuator.iter().map(|a| a.clone() as Arc<dyn Actuator>).collect()
    }

    /// Stops the threads and waits for them.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
