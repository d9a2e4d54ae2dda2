//! `mamori dns …` and the DNS part of `mamori serve` (`[dns]`).
//!
//! In `serve`, each part runs only when configured, on its own runtime:
//! - `[dns.dnstap]`: the dnstap listener (unix socket and/or TCP) feeding the DNS engine (the
//!   random-subdomain, amplification and C&C detectors) on a thread of its own;
//! - `[dns.rpz]`: the response-policy zone served by AXFR/IXFR with NOTIFY;
//! - `[dns.filter]`: the inline filter (and the warning page when `warn_page_listen` is set).
//!
//! The policy zone is the actuator of `dns.block-fqdn-list` (the inline filter applies its
//! entries too). A sync loop keeps it equal to the actions in force in the store, so entries
//! decided elsewhere (`mamori dns block`, `mamori actions lift`, the API) reach the resolvers
//! within [`SYNC_EVERY`].
//!
//! Lists: `[[dns.lists]]` files and the lists `mamori dns load-list` keeps under
//! `DATA_DIR/dns-lists/` are loaded at start; the inline filter reloads them when the kept ones
//! change (the dnstap engine reads its C&C lists at start only). Logs never carry client
//! addresses or query names.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::Subcommand;
use jiff::SignedDuration;
use mamori_attribution::{Attribution, Index};
use mamori_core::action::ActionState;
use mamori_core::actuator::Actuator;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::{Config, DnsListFormat, DnsListKind};
use mamori_core::governance::{Governance, Proposal};
use mamori_core::ledger::format_time;
use mamori_core::store::ActionFilter;
use mamori_core::subject::SubscriberId;
use mamori_core::subject::{Actor, Target};
use mamori_dns::dnstap::{self, DnsEvent, IngestStats};
use mamori_dns::engine::{DnsEngine, EngineConfig, SubscriberLookup};
use mamori_dns::filter::{self, Filter, warn_page};
use mamori_dns::lists::{keep_list, lists_dir, read_metas};
use mamori_dns::names::{SuffixMap, normalize};
use mamori_dns::reputation::{self, ListFormat, ReputationList};
use mamori_dns::rpz::{self, PolicyZone, ServeOptions, Zone};
use serde_json::json;

use crate::cli::By;

/// How often the policy zone is compared with the actions in force and list files with disk.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Events waiting for the engine before dnstap events are dropped (counted).
const QUEUE: usize = 100_000;

/// `dns`
#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Load a list file (C&C names, malware sites, or names to block) under a source name. The
    /// loading (source, date, size, lines skipped) is a ledger entry; the list is kept in the data
    /// directory and a running `mamori serve` picks it up within seconds. Loading a list with
    /// the same kind and source again replaces it.
    LoadList {
        /// The file: plain (one name a line), hosts, or an RPZ zone file.
        file: PathBuf,
        /// What it holds.
        #[arg(long, value_parser = ["cnc", "malware", "block"])]
        kind: String,
        /// The source's name (feed or provider).
        #[arg(long)]
        source: String,
        /// `plain`, `hosts` or `rpz` (default: guessed from the file name).
        #[arg(long, value_parser = ["plain", "hosts", "rpz"])]
        format: Option<String>,
        /// Your name, as recorded in the ledger.
        #[arg(long, env = "MAMORI_ACTOR", value_name = "NAME")]
        by: Option<String>,
    },
    /// The FQDN list entries in force (with their expiry) and the lists loaded.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Put a name (and the names below it) on the FQDN list (`dns.block-fqdn-list`) through
    /// governance, for a time; a running `mamori serve` publishes it in the policy zone and the
    /// inline filter within seconds. Lift early with `mamori actions lift`.
    Block {
        /// The name.
        fqdn: String,
        /// How long, e.g. `30m`, `12h` (at most the measure's maximum).
        #[arg(long = "for", value_name = "DURATION")]
        for_: String,
        /// Why (kept as evidence).
        #[arg(long, default_value = "operator decision")]
        reason: String,
        #[command(flatten)]
        by: By,
    },
}

fn format_of(f: Option<DnsListFormat>) -> Option<ListFormat> {
    f.map(|f| match f {
        DnsListFormat::Plain => ListFormat::Plain,
        DnsListFormat::Hosts => ListFormat::Hosts,
        DnsListFormat::Rpz => ListFormat::Rpz,
    })
}

/// Runs one `dns` subcommand.
pub fn dns_cmd(config: &Config, gov: &Governance, c: DnsCommand) -> anyhow::Result<ExitCode> {
    match c {
        DnsCommand::LoadList { file, kind, source, format, by } => {
            let kind: DnsListKind = kind.parse().map_err(anyhow::Error::msg)?;
            if source.trim().is_empty() {
                bail!("--source must not be empty");
            }
            let format = match format.as_deref() {
                Some("plain") => ListFormat::Plain,
                Some("hosts") => ListFormat::Hosts,
                Some("rpz") => ListFormat::Rpz,
                _ => ListFormat::guess(&file),
            };
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let date = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .map(|t| t.to_string());
            let (list, seq) = keep_list(config, gov, kind, &source, format, date, &bytes, by.as_deref())
                .with_context(|| format!("{}", file.display()))?;
            for e in list.skipped.iter().take(20) {
                eprintln!("{}:{}: skipped: {}", file.display(), e.line, e.reason);
            }
            println!(
                "{} list `{source}` loaded: {} names, {} lines skipped (ledger entry {seq})",
                kind.as_str(),
                list.names.len(),
                list.skipped.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        DnsCommand::List { json } => {
            let filter = ActionFilter {
                state: Some(ActionState::Applied),
                measure: Some(MeasureId::DnsBlockFqdnList),
                ..Default::default()
            };
            let now = gov.now();
            let entries: Vec<_> =
                gov.store().actions(&filter)?.into_iter().filter(|a| a.deadline.is_none_or(|d| d > now)).collect();
            let lists = read_metas(&lists_dir(config));
            if json {
                let e: Vec<_> = entries
                    .iter()
                    .map(|a| json!({"action": a.id, "target": a.target.to_string(), "expires": a.deadline.map(|d| d.to_string())}))
                    .collect();
                let l: Vec<_> = lists.iter().map(|(_, m)| m).collect();
                let c: Vec<_> = config
                    .dns
                    .lists
                    .iter()
                    .map(|l| json!({"kind": l.kind.as_str(), "source": l.source, "path": l.path}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&json!({"entries": e, "lists": l, "config_lists": c}))?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("FQDN list entries in force (dns.block-fqdn-list):");
            if entries.is_empty() {
                println!("  (none)");
            }
            for a in &entries {
                let name = match &a.target {
                    Target::Fqdn(n) => n.clone(),
                    t => t.to_string(),
                };
                println!("  {:<40} until {:<26} {}", name, a.deadline.map(format_time).unwrap_or_default(), a.id);
            }
            println!("lists:");
            if lists.is_empty() && config.dns.lists.is_empty() {
                println!("  (none)");
            }
            for (_, m) in &lists {
                println!(
                    "  {:<8} {:<28} {:>9} names  date {}  loaded {} (ledger entry {})",
                    m.kind.as_str(),
                    m.source,
                    m.names,
                    m.date.as_deref().unwrap_or("-"),
                    m.loaded_at,
                    m.ledger_seq
                );
            }
            for l in &config.dns.lists {
                println!("  {:<8} {:<28} (configured: {})", l.kind.as_str(), l.source, l.path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        DnsCommand::Block { fqdn, for_, reason, by } => {
            let name = normalize(&fqdn);
            if !valid_name(&name) {
                bail!("`{fqdn}` is not a domain name that can be listed");
            }
            let d: SignedDuration =
                for_.parse().with_context(|| format!("--for `{for_}`: expected a duration like 30m or 12h"))?;
            if d <= SignedDuration::ZERO {
                bail!("--for must be positive");
            }
            if !gov.is_enabled(MeasureId::DnsBlockFqdnList)? {
                bail!("dns.block-fqdn-list is not enabled (mamori measures enable dns.block-fqdn-list --by NAME)");
            }
            let mut p = Proposal::new(
                MeasureId::DnsBlockFqdnList,
                Target::Fqdn(name),
                Actor(by.by),
                json!({"reason": reason, "source": "operator"}),
            );
            p.duration = Some(d);
            let dec = gov.propose(p)?;
            let a = &dec.action;
            match &dec.authorization {
                Some(auth) => println!(
                    "{}: {} on {} — authorized under {} (ledger entry {}), in force until {}",
                    a.id,
                    a.state,
                    a.target,
                    auth.legal_basis(),
                    auth.ledger_seq(),
                    auth.expires_at().map(format_time).unwrap_or_default()
                ),
                None => println!("{}: {}", a.id, a.state),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn valid_name(n: &str) -> bool {
    n != "."
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Fingerprint of the kept lists (names and modification times), to notice changes.
fn lists_fingerprint(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<_> = rd
        .filter_map(Result::ok)
        .map(|e| (e.path(), e.metadata().and_then(|m| m.modified()).ok()))
        .filter(|(p, _)| p.extension().is_some_and(|x| x == "json" || x == "list"))
        .collect();
    v.sort();
    v
}

/// Every list (configured and kept), by kind.
fn load_all(config: &Config) -> BTreeMap<DnsListKind, Vec<ReputationList>> {
    let mut out: BTreeMap<DnsListKind, Vec<ReputationList>> = BTreeMap::new();
    for l in &config.dns.lists {
        match reputation::load(&l.path, format_of(l.format), Some(&l.source)) {
            Ok(list) => out.entry(l.kind).or_default().push(list),
            Err(e) => tracing::error!(source = %l.source, error = %e, "dns list not loaded"),
        }
    }
    for (path, m) in read_metas(&lists_dir(config)) {
        match reputation::load(&path, Some(m.format), Some(&m.source)) {
            Ok(mut list) => {
                list.date = m.date.clone();
                out.entry(m.kind).or_default().push(list);
            }
            Err(e) => tracing::error!(source = %m.source, error = %e, "dns list not loaded"),
        }
    }
    for (k, v) in &out {
        let names: usize = v.iter().map(|l| l.names.len()).sum();
        tracing::info!(kind = k.as_str(), lists = v.len(), names, "dns lists loaded");
    }
    out
}

fn merged(lists: Option<&Vec<ReputationList>>) -> SuffixMap<()> {
    let Some(lists) = lists else { return SuffixMap::new() };
    let mut m = SuffixMap::with_capacity(lists.iter().map(|l| l.names.len()).sum());
    for l in lists {
        for (n, k, ()) in l.names.iter() {
            m.insert(n, k, ());
        }
    }
    m
}

/// Who held a client address, from the attribution index (RADIUS sessions and imported
/// `detail` files). Only a unique answer names a subscriber; an ambiguous or unknown one leaves
/// the finding against the address alone, and is counted.
#[derive(Debug, Default)]
pub struct IndexLookup {
    index: Option<Arc<RwLock<Index>>>,
    /// Lookups answered with one subscriber.
    pub unique: AtomicU64,
    /// Lookups answered with several candidates (overlapping sessions, shared CGNAT address).
    pub ambiguous: AtomicU64,
    /// Lookups no session covered (or no attribution store).
    pub unknown: AtomicU64,
}

impl IndexLookup {
    /// Over `index` (`None`: every answer is unknown).
    pub fn new(index: Option<Arc<RwLock<Index>>>) -> IndexLookup {
        IndexLookup { index, ..Default::default() }
    }
}

impl SubscriberLookup for IndexLookup {
    fn subscriber_at(&self, ip: IpAddr, at: jiff::Timestamp) -> Option<SubscriberId> {
        let Some(ix) = &self.index else {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let ix = mamori_attribution::read(ix);
        match ix.lookup(ip, None, at) {
            Attribution::Unique(s) => match ix.subscriber(s) {
                Some(id) if !id.is_empty() => {
                    self.unique.fetch_add(1, Ordering::Relaxed);
                    Some(SubscriberId(id.to_owned()))
                }
                _ => {
                    self.unknown.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
            Attribution::Ambiguous(_) => {
                self.ambiguous.fetch_add(1, Ordering::Relaxed);
                None
            }
            Attribution::Unknown => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// The DNS part of `mamori serve`: nothing when `[dns]` configures nothing.
pub struct Dns {
    zone: Option<Arc<PolicyZone>>,
    rt: Option<tokio::runtime::Runtime>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Dns {
    /// Starts what `[dns]` configures; `attribution` names the subscriber behind a client
    /// address (C&C findings and alerts, the filter's per-subscriber opt-out exceptions).
    pub fn start(
        config: &Config,
        gov: Arc<Governance>,
        attribution: Option<Arc<RwLock<Index>>>,
    ) -> anyhow::Result<Dns> {
        let d = &config.dns;
        let stop = Arc::new(AtomicBool::new(false));
        if d.dnstap.is_none() && d.rpz.is_none() && d.filter.is_none() {
            return Ok(Dns { zone: None, rt: None, stop, threads: Vec::new() });
        }
        // The filter's UDP path runs on threads of its own; this runtime carries TCP, the zone
        // transfers and dnstap.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dns")
            .enable_all()
            .build()
            .context("starting the DNS runtime")?;
        let zone = if d.rpz.is_some() || d.filter.is_some() {
            let (origin, dry) = d.rpz.as_ref().map_or(("rpz.mamori.", false), |r| (r.zone.as_str(), r.dry_run));
            // The serial file keeps the zone's serial moving forward across restarts.
            Some(PolicyZone::with_serial_file(
                Zone::new(origin, dry, jiff::Timestamp::now()).context("[dns.rpz] zone")?,
                config.data_dir.join("rpz-serial"),
            ))
        } else {
            None
        };
        let lists = load_all(config);
        let lookup = Arc::new(IndexLookup::new(attribution));
        let mut threads = Vec::new();

        if let (Some(r), Some(z)) = (&d.rpz, &zone) {
            let _ = mamori_server::metrics_handle();
            rpz::metric::describe();
            let opts =
                ServeOptions { listen: r.listen, allow_transfer: r.allow_transfer.clone(), notify: r.notify.clone() };
            let (addr, _tasks) = rt
                .block_on(rpz::serve(z.clone(), opts))
                .with_context(|| format!("cannot serve the policy zone on {}", r.listen))?;
            tracing::info!(%addr, zone = %r.zone, "dns policy zone served");
        }

        let filter = match &d.filter {
            Some(f) => {
                let flt = Arc::new(
                    Filter::new(&gov, Arc::new(WallClock), zone.clone(), lookup.clone(), f.warn_address)
                        .context("opening the inline filter's views")?,
                );
                set_filter_lists(&flt, &lists);
                flt.enable_cache(f.cache_entries);
                flt.set_busy_poll(std::time::Duration::from_micros(f.busy_poll_us));
                flt.set_udp_workers(f.udp_workers);
                let (addr, _tasks) = rt
                    .block_on(filter::serve(flt.clone(), f.listen, f.upstream))
                    .with_context(|| format!("cannot listen for DNS on {}", f.listen))?;
                if let Some(w) = f.warn_page_listen {
                    rt.block_on(warn_page::serve(flt.clone(), w))
                        .with_context(|| format!("cannot serve the warning page on {w}"))?;
                }
                tracing::info!(%addr, "dns inline filter started");
                Some(flt)
            }
            None => None,
        };

        if let Some(t) = &d.dnstap {
            let (tx, rx) = tokio::sync::mpsc::channel::<DnsEvent>(QUEUE);
            let stats = Arc::new(IngestStats::default());
            if let Some(p) = &t.socket_path {
                let _guard = rt.enter();
                dnstap::spawn_unix(p, tx.clone(), stats.clone())
                    .with_context(|| format!("cannot listen for dnstap on {}", p.display()))?;
            }
            if let Some(a) = t.tcp_listen {
                rt.block_on(dnstap::spawn_tcp(a, tx.clone(), stats.clone()))
                    .with_context(|| format!("cannot listen for dnstap on {a}"))?;
            }
            drop(tx);
            let cfg = EngineConfig { auto_apply: d.auto_apply, block_for: d.block_for, ..Default::default() };
            let actuators: Vec<Arc<dyn Actuator>> = zone.iter().map(|z| z.clone() as Arc<dyn Actuator>).collect();
            let mut engine = DnsEngine::new(gov.clone(), Arc::new(WallClock), cfg, lookup.clone(), actuators)
                .context("opening the DNS views")?;
            for l in lists.get(&DnsListKind::Cnc).into_iter().flatten() {
                engine.add_cnc_list(l)?;
            }
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("dns-engine".into())
                    .spawn({
                        let lookup = lookup.clone();
                        move || engine_loop(engine, rx, &stop, &stats, &lookup)
                    })
                    .context("starting the DNS engine thread")?,
            );
        }

        {
            let (stop, gov, zone, config) = (stop.clone(), gov.clone(), zone.clone(), config.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("dns-sync".into())
                    .spawn(move || sync_loop(&config, &gov, zone.as_deref(), filter.as_deref(), &stop))
                    .context("starting the DNS sync thread")?,
            );
        }
        Ok(Dns { zone, rt: Some(rt), stop, threads })
    }

    /// The actuators the server reconciles at start and calls on expiry.
    pub fn actuators(&self) -> Vec<Arc<dyn Actuator>> {
        self.zone.iter().map(|z| z.clone() as Arc<dyn Actuator>).collect()
    }

    /// Stops everything and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a DNS thread panicked");
            }
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_filter_lists(f: &Filter, lists: &BTreeMap<DnsListKind, Vec<ReputationList>>) {
    f.set_static_list(merged(lists.get(&DnsListKind::Block)));
    f.set_cnc(merged(lists.get(&DnsListKind::Cnc)));
    f.set_malware(merged(lists.get(&DnsListKind::Malware)));
}

fn engine_loop(
    mut engine: DnsEngine,
    mut rx: tokio::sync::mpsc::Receiver<DnsEvent>,
    stop: &AtomicBool,
    stats: &IngestStats,
    lookup: &IndexLookup,
) {
    let mut last_report = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match rx.try_recv() {
            Ok(ev) => engine.on_event(&ev),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
        }
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = std::time::Instant::now();
            tracing::info!(
                events = engine.stats.events,
                findings = engine.stats.findings,
                malformed = IngestStats::get(&stats.malformed),
                dropped = IngestStats::get(&stats.dropped),
                attributed = lookup.unique.load(Ordering::Relaxed),
                ambiguous = lookup.ambiguous.load(Ordering::Relaxed),
                unattributed = lookup.unknown.load(Ordering::Relaxed),
                "dns engine"
            );
        }
    }
    tracing::info!(
        stats = ?engine.stats,
        attributed = lookup.unique.load(Ordering::Relaxed),
        ambiguous = lookup.ambiguous.load(Ordering::Relaxed),
        unattributed = lookup.unknown.load(Ordering::Relaxed),
        "dns engine stopped"
    );
}

/// Keeps the zone equal to the actions in force, and reloads kept lists that changed.
fn sync_loop(config: &Config, gov: &Governance, zone: Option<&PolicyZone>, filter: Option<&Filter>, stop: &AtomicBool) {
    let dir = lists_dir(config);
    let mut fingerprint = lists_fingerprint(&dir);
    let mut synced: Option<Vec<String>> = None;
    let mut next = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Sleep in short steps so a stop is quick.
        std::thread::sleep(Duration::from_millis(100));
        if std::time::Instant::now() < next {
            continue;
        }
        next = std::time::Instant::now() + SYNC_EVERY;
        if let Some(z) = zone {
            match gov.reauthorize_applied() {
                Ok(in_force) => {
                    let mine: Vec<_> = in_force.iter().filter(|(r, _)| z.handles(r.measure)).collect();
                    let ids: Vec<String> = mine.iter().map(|(r, _)| r.id.clone()).collect();
                    if synced.as_ref() != Some(&ids) {
                        let auths: Vec<_> = mine.iter().map(|(_, a)| a).collect();
                        if z.reconcile(&auths).is_ok() {
                            tracing::info!(in_force = ids.len(), "dns policy zone in line with the actions in force");
                            synced = Some(ids);
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the actions in force"),
            }
        }
        if let Some(f) = filter {
            let now = lists_fingerprint(&dir);
            if now != fingerprint {
                fingerprint = now;
                set_filter_lists(f, &load_all(config));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::net::Ipv4Addr;

    use jiff::Timestamp;
    use mamori_attribution::index::unix_secs;
    use mamori_attribution::session::{SessionKey, SessionRow};
    use mamori_core::config::Config;
    use mamori_dns::dnstap::Role;
    use mamori_dns::reputation::parse;
    use mamori_store::{SqliteStore, StoreOptions};

    use super::*;

    fn session(sub: &str, id: &str, ip: [u8; 4], start: u32) -> SessionRow {
        SessionRow {
            key: SessionKey::new("nas", id.as_bytes(), sub),
            subscriber: sub.into(),
            nas: "nas".into(),
            start,
            last: start,
            interim: 3600,
            stop: None,
            framed_ipv4: Some(Ipv4Addr::from(ip)),
            port_blocks: Vec::new(),
            ipv6: Vec::new(),
        }
    }

    fn query(client: &str) -> DnsEvent {
        DnsEvent {
            role: Role::ClientQuery,
            client: Some(client.parse().unwrap()),
            client_port: Some(5000),
            time: Some(Timestamp::now()),
            qname: "cnc.test".into(),
            qtype: 1,
            rcode: None,
            response_size: None,
        }
    }

    #[test]
    fn cnc_queries_from_an_attributed_address_name_the_subscriber_and_others_stay_address_only() {
        let start = unix_secs(Timestamp::now()) - 60;
        let mut ix = Index::new();
        ix.insert(&session("S-1", "a", [192, 0, 2, 1], start));
        ix.insert(&session("S-2", "b", [192, 0, 2, 2], start)); // opted out
        ix.insert(&session("S-3", "c", [192, 0, 2, 3], start)); // overlapping: ambiguous
        ix.insert(&session("S-4", "d", [192, 0, 2, 3], start));
        let lookup = Arc::new(IndexLookup::new(Some(Arc::new(RwLock::new(ix)))));

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap());
        let gov = Arc::new(Governance::new(store, Arc::new(WallClock), Arc::new(Config::default())).unwrap());
        let op = Actor("sato".into());
        let m = MeasureId::BotsDetectCncQueries;
        if mamori_core::governance::requires_notice(m) {
            gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &op).unwrap();
        }
        gov.enable_measure(m, &op).unwrap();
        let s2 = SubscriberId("S-2".into());
        gov.opt_out(&s2, m, "web", &Actor::subscriber(&s2)).unwrap();

        let mut e =
            DnsEngine::new(gov.clone(), Arc::new(WallClock), EngineConfig::default(), lookup.clone(), vec![]).unwrap();
        e.add_cnc_list(&parse("cnc.test\n", ListFormat::Plain, "feed", None)).unwrap();

        e.on_event(&query("192.0.2.1"));
        assert_eq!((e.stats.findings, e.stats.proposals), (1, 1), "{:?}", e.stats);
        let actions = gov.store().actions(&ActionFilter { measure: Some(m), ..Default::default() }).unwrap();
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].subscriber, Some(SubscriberId("S-1".into())));

        e.on_event(&query("192.0.2.2")); // opted out: never reaches the detector
        assert_eq!((e.stats.findings, e.stats.cnc_opted_out), (1, 1));
        e.on_event(&query("192.0.2.3")); // ambiguous: address only
        e.on_event(&query("192.0.2.9")); // unknown: address only
        assert_eq!((e.stats.findings, e.stats.proposals), (3, 1), "{:?}", e.stats);
        assert_eq!(lookup.unique.load(Ordering::Relaxed), 2);
        assert_eq!(lookup.ambiguous.load(Ordering::Relaxed), 1);
        assert_eq!(lookup.unknown.load(Ordering::Relaxed), 1);

        // No store: unknown, nothing named.
        let none = IndexLookup::new(None);
        assert_eq!(none.subscriber_at("192.0.2.1".parse().unwrap(), Timestamp::now()), None);
        assert!(gov.store().verify_ledger(None).is_ok());
    }
}
