//! Command implementations. `anyhow` lives here, at the binary's edge.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use jiff::{SignedDuration, Timestamp};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::{self, CATALOG, MeasureId};
use mamori_core::clock::WallClock;
use mamori_core::config::{Config, LogFormat};
use mamori_core::governance::{Governance, Proposal, SubscriberReply};
use mamori_core::ledger::{ChainHash, format_time};
use mamori_core::store::{ActionFilter, LedgerFilter, Store, StoreError};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_store::{SqliteStore, StoreOptions};
use serde_json::json;

use crate::cli::*;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Config(ConfigCommand::Default) => {
            print!("{}", Config::default_toml());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Config(ConfigCommand::Check { file }) => {
            return config_check(file.as_deref().or(cli.config.as_deref()));
        }
        Command::Catalog(args) => return catalog_cmd(args),
        _ => {}
    }
    let config = load_config(&cli)?;
    init_logging(&config, cli.verbose);
    match cli.command {
        Command::Replay(ReplayCommand::Cdr { file, subscribers, keep_db, append, quiet }) => {
            crate::replay::replay_cdr(config, &file, subscribers.as_deref(), keep_db.as_deref(), append, quiet)
        }
        Command::Serve(args) => serve(config, args),
        Command::Measures(c) => measures_cmd(&open(&config)?, c),
        Command::Consent(c) => consent_cmd(&open(&config)?, c),
        Command::Actions(c) => actions_cmd(&open(&config)?, c),
        Command::Audit(c) => audit_cmd(&config, c),
        Command::Report(ReportCommand::Transparency { from, to, out }) => {
            transparency(&open(&config)?, &from, &to, &out)
        }
        Command::Retention(RetentionCommand::Sweep) => {
            let gov = open(&config)?;
            let by = Actor("mamori retention sweep".into());
            let out = gov.retention_sweep(&by)?;
            let sessions = crate::attribution::retention_sweep(&config, &gov, &by)?.filter(|s| s.deleted > 0);
            if let Some(s) = &sessions {
                println!("{:<34} {:<14} deleted {:>8}  (cut-off {})", "attribution", "sessions", s.deleted, s.cutoff);
            }
            if out.is_empty() && sessions.is_none() {
                println!("nothing due");
            }
            for o in out {
                println!(
                    "{:<34} {:<14} deleted {:>8}  (data from {} to {}, cut-off {})",
                    o.measure.as_str(),
                    o.table,
                    o.deleted,
                    o.oldest.unwrap_or_default(),
                    o.newest.unwrap_or_default(),
                    o.before
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Phone(c) => crate::phone::phone_cmd(&open(&config)?, c),
        Command::Subscribers(c) => crate::subscribers::subscribers_cmd(&open(&config)?, c),
        Command::Accounts(c) => crate::accounts::accounts_cmd(open(&config)?, c),
        Command::Attribution(c) => crate::attribution::attribution_cmd(&config, c),
        Command::Dns(c) => crate::dns::dns_cmd(&config, &open(&config)?, c),
        Command::Flow(c) => crate::flow::flow_cmd(&config, &open(&config)?, c),
        Command::Reports(c) => crate::reports_import::reports_cmd(&config, c),
        Command::Internal(InternalCommand::Burst { count, threads }) => burst(&open(&config)?, count, threads),
        Command::Config(_) | Command::Catalog(_) => Ok(ExitCode::SUCCESS),
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path).map_err(|errs| config_errors(&errs))?,
        None => Config::default(),
    };
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    Ok(config)
}

fn config_errors(errs: &[mamori_core::config::ConfigError]) -> anyhow::Error {
    let lines: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
    anyhow::anyhow!(
        "invalid configuration ({} error{}):\n{}",
        errs.len(),
        if errs.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )
}

fn init_logging(config: &Config, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => config.log.level.clone(),
        1 => "debug".into(),
        _ => "trace".into(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only for a person at a terminal; log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn open_store(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let path = config.database_path();
    let store = SqliteStore::open(
        &path,
        StoreOptions {
            checkpoint_every: config.ledger.checkpoint_every,
            group_commit_max: config.ledger.group_commit_max,
            durable: true,
            single_thread: false,
        },
    )
    .with_context(|| format!("opening the store at {}", path.display()))?;
    Ok(Arc::new(store))
}

pub(crate) fn open(config: &Config) -> anyhow::Result<Governance> {
    let store = open_store(config)?;
    Ok(Governance::new(store, Arc::new(WallClock), Arc::new(config.clone()))?)
}

fn measure(id: &str) -> anyhow::Result<MeasureId> {
    Ok(id.parse::<MeasureId>()?)
}

/// RFC 3339, or a date taken as 00:00 Japan time.
pub(crate) fn instant(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: jiff::civil::Date =
        s.parse().with_context(|| format!("`{s}` is neither an RFC 3339 time nor a date like 2026-11-01"))?;
    Ok(date.to_zoned_datetime(mamori_core::calendar::japan())?.timestamp())
}

// ── config ─────────────────────────────────────────────────────────────────────────────────

fn config_check(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(file) = file else { bail!("no file to check: pass FILE or --config FILE") };
    match Config::load(file) {
        Ok(c) => {
            println!("{}: ok", file.display());
            let enable_later: Vec<_> = c.measures.keys().map(|m| m.as_str()).collect();
            if !enable_later.is_empty() {
                println!("measure settings for: {}", enable_later.join(", "));
            }
            if c.roles.approvers.is_empty() {
                println!(
                    "note: no [roles] approvers: measures that need approval (phone.restrict-country) cannot be applied"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            eprintln!("{}", config_errors(&errs));
            Ok(ExitCode::from(2))
        }
    }
}

// ── catalog ────────────────────────────────────────────────────────────────────────────────

fn catalog_cmd(args: &CatalogArgs) -> anyhow::Result<ExitCode> {
    let rows: Vec<&catalog::Measure> = match &args.measure {
        Some(id) => vec![catalog::measure(measure(id)?)],
        None => CATALOG.iter().collect(),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.measure.is_some() {
        for m in rows {
            writeln!(out, "{}\n  {}\n  {}", m.id_str, m.title_en, m.title_ja)?;
            writeln!(out, "  source:            {}", m.source)?;
            match m.provision {
                catalog::Provision::Refused(why) => writeln!(out, "  status:            REFUSED: {why}")?,
                catalog::Provision::Provided => writeln!(out, "  status:            provided")?,
            }
            let basis: Vec<_> = m.legal_basis.iter().map(|b| b.as_str()).collect();
            writeln!(out, "  legal basis:       {}", basis.join(", "))?;
            writeln!(out, "  consent:           {}", serde_json::to_value(m.consent)?.as_str().unwrap_or_default())?;
            writeln!(
                out,
                "  acts before consent (public notice required): {}",
                if m.acts_before_consent { "yes" } else { "no" }
            )?;
            match m.approval {
                Some(a) => writeln!(
                    out,
                    "  approval:          {} distinct approvers (never the proposer), assessing: {}",
                    a.distinct_approvers,
                    a.assessments.join(", ")
                )?,
                None => writeln!(out, "  approval:          not needed")?,
            }
            match m.max_duration {
                Some(d) => writeln!(out, "  max duration:      {d:#}; lifted when {}", m.lift_condition)?,
                None => writeln!(out, "  max duration:      one-shot (nothing stays in force)")?,
            }
            writeln!(
                out,
                "  notification:      {}",
                serde_json::to_value(m.notification)?.as_str().unwrap_or_default()
            )?;
            writeln!(out, "  retention:         {} days", m.retention_days)?;
            for s in m.stages {
                let fields: Vec<_> = s
                    .fields
                    .iter()
                    .map(|f| serde_json::to_value(f).unwrap_or_default().as_str().unwrap_or_default().to_owned())
                    .collect();
                writeln!(
                    out,
                    "  stage {}{}: {} — reads {}",
                    s.number,
                    if s.unlocked_per_subject { " (unlocked per subject by governance)" } else { "" },
                    s.purpose,
                    fields.join(", ")
                )?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<34} {:<30} {:<22} {:<7} {:<9} {:<9} {:>6}",
        "MEASURE", "LEGAL BASIS", "CONSENT", "NOTICE", "APPROVAL", "MAX", "KEEP"
    )?;
    for m in rows {
        if let catalog::Provision::Refused(_) = m.provision {
            writeln!(out, "{:<34} REFUSED by the working group (cannot be enabled)", m.id_str)?;
            continue;
        }
        let basis: Vec<_> = m.legal_basis.iter().map(|b| b.as_str()).collect();
        writeln!(
            out,
            "{:<34} {:<30} {:<22} {:<7} {:<9} {:<9} {:>5}d",
            m.id_str,
            basis.join(","),
            serde_json::to_value(m.consent)?.as_str().unwrap_or_default(),
            if mamori_core::governance::requires_notice(m.id) { "needed" } else { "-" },
            m.approval.map(|a| format!("{} people", a.distinct_approvers)).unwrap_or_else(|| "-".into()),
            m.max_duration.map(|d| format!("{d:#}")).unwrap_or_else(|| "one-shot".into()),
            m.retention_days
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

// ── measures ───────────────────────────────────────────────────────────────────────────────

fn measures_cmd(gov: &Governance, c: MeasuresCommand) -> anyhow::Result<ExitCode> {
    match c {
        MeasuresCommand::List { json } => {
            let st = gov.measure_status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                for s in st {
                    let state = if s.refused {
                        "refused"
                    } else if s.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    };
                    let notice = match (&s.notice, s.requires_notice) {
                        (Some(n), _) => format!("notice {} ({})", n.url, n.version),
                        (None, true) => "notice required before enabling".into(),
                        (None, false) => String::new(),
                    };
                    println!("{:<34} {:<9} {}", s.measure.as_str(), state, notice);
                }
            }
        }
        MeasuresCommand::Enable { measure: m, by } => {
            let seq = gov.enable_measure(measure(&m)?, &Actor(by.by))?;
            println!("{m} enabled (ledger entry {seq})");
        }
        MeasuresCommand::Disable { measure: m, by } => {
            let seq = gov.disable_measure(measure(&m)?, &Actor(by.by))?;
            println!("{m} disabled (ledger entry {seq})");
        }
        MeasuresCommand::Notice { measure: m, url, terms_version, clause, by } => {
            let seq = gov.record_notice(measure(&m)?, &url, &terms_version, clause.as_deref(), &Actor(by.by))?;
            println!("notice for {m} recorded (ledger entry {seq})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ── consent ────────────────────────────────────────────────────────────────────────────────

fn consent_cmd(gov: &Governance, c: ConsentCommand) -> anyhow::Result<ExitCode> {
    match c {
        ConsentCommand::Grant(a) => {
            let seq = gov.grant_consent(
                &SubscriberId(a.subscriber.clone()),
                measure(&a.measure)?,
                &a.method,
                &Actor(a.by.by),
            )?;
            println!("consent of {} for {} recorded (ledger entry {seq})", a.subscriber, a.measure);
        }
        ConsentCommand::OptOut(a) => {
            let seq =
                gov.opt_out(&SubscriberId(a.subscriber.clone()), measure(&a.measure)?, &a.method, &Actor(a.by.by))?;
            println!("{} opted out of {} (effective now; ledger entry {seq})", a.subscriber, a.measure);
        }
        ConsentCommand::OptIn(a) => {
            let seq =
                gov.opt_in(&SubscriberId(a.subscriber.clone()), measure(&a.measure)?, &a.method, &Actor(a.by.by))?;
            println!("{} opted back in to {} (ledger entry {seq})", a.subscriber, a.measure);
        }
        ConsentCommand::Show { subscriber, json } => {
            let (states, history) = gov.consent_overview(&SubscriberId(subscriber.clone()))?;
            if json {
                let states: BTreeMap<_, _> = states.into_iter().map(|(m, s)| (m.as_str(), s)).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"subscriber": subscriber, "measures": states, "history": history})
                    )?
                );
            } else {
                println!("subscriber {subscriber}");
                for (m, s) in states {
                    println!("  {:<34} {}", m.as_str(), serde_json::to_string(&s)?);
                }
                println!("history:");
                if history.is_empty() {
                    println!("  (none)");
                }
                for h in history {
                    println!(
                        "  {}  {:<34} {:<10} via {} (recorded by {})",
                        format_time(h.at),
                        h.measure.as_str(),
                        h.change.as_str(),
                        h.method,
                        h.recorded_by
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ── actions ────────────────────────────────────────────────────────────────────────────────

fn print_action_line(a: &ActionRecord) {
    println!(
        "{:<22} {:<34} {:<26} {:<17} {:<22} {}",
        a.id,
        a.measure.as_str(),
        a.target.to_string(),
        a.state.as_str(),
        format!("{}{}", a.legal_basis.as_str(), if a.emergency { " (emergency)" } else { "" }),
        a.deadline.map(format_time).unwrap_or_default()
    );
}

fn report_decision(d: &mamori_core::governance::Decision) {
    let a = &d.action;
    match (&d.authorization, a.state) {
        (Some(auth), _) => println!(
            "{}: {} on {} — authorized under {} (ledger entry {}), in force until {}",
            a.id,
            a.state,
            a.target,
            auth.legal_basis(),
            auth.ledger_seq(),
            auth.expires_at().map(format_time).unwrap_or_else(|| "done (one-shot)".into())
        ),
        (None, ActionState::AwaitingConsent) => {
            println!(
                "{}: awaiting the subscriber's consent (request queued; answer by {})",
                a.id,
                a.deadline.map(format_time).unwrap_or_default()
            )
        }
        (None, ActionState::PendingApproval) => println!(
            "{}: pending approval ({} of {} so far)",
            a.id,
            a.approvals.len(),
            catalog::measure(a.measure).approval.map(|r| r.distinct_approvers).unwrap_or(0)
        ),
        (None, s) => {
            println!("{}: {s}{}", a.id, a.end_reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default())
        }
    }
}

fn actions_cmd(gov: &Governance, c: ActionsCommand) -> anyhow::Result<ExitCode> {
    match c {
        ActionsCommand::List { state, measure: m, limit, json } => {
            let filter = ActionFilter {
                state: state.map(|s| s.parse::<ActionState>().map_err(anyhow::Error::msg)).transpose()?,
                measure: m.map(|m| measure(&m)).transpose()?,
                limit: Some(limit),
                ..Default::default()
            };
            let actions = gov.store().actions(&filter)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&actions)?);
            } else {
                println!(
                    "{:<22} {:<34} {:<26} {:<17} {:<22} DEADLINE",
                    "ACTION", "MEASURE", "TARGET", "STATE", "BASIS"
                );
                for a in &actions {
                    print_action_line(a);
                }
            }
        }
        ActionsCommand::Show { id } => {
            let Some(a) = gov.store().action(&id)? else { bail!("no action {id}") };
            println!("{}", serde_json::to_string_pretty(&a)?);
            println!("ledger:");
            gov.store().export_ledger(&LedgerFilter { measure: Some(a.measure), ..Default::default() }, &mut |e| {
                if e.action_id.as_deref() == Some(id.as_str()) {
                    println!("  #{:<8} {} {:<18} by {:<24} {}", e.seq, e.at, e.kind, e.actor, e.body);
                }
                Ok(())
            })?;
        }
        ActionsCommand::Propose { measure: m, target, subscriber, requested_by_subscriber, duration, reason, by } => {
            let target: Target = target.parse()?;
            let mut p = Proposal::new(measure(&m)?, target, Actor(by.by), json!({"reason": reason}));
            p.subscriber = subscriber.map(SubscriberId);
            p.subscriber_request = requested_by_subscriber;
            p.duration = duration
                .map(|d| d.parse::<SignedDuration>().with_context(|| format!("bad duration `{d}` (e.g. 12h, 30m)")))
                .transpose()?;
            let d = gov.propose(p)?;
            if d.existing {
                println!("an action is already open on this target:");
            }
            report_decision(&d);
        }
        ActionsCommand::Approve { id, assessments, by } => {
            let mut map = BTreeMap::new();
            for a in assessments {
                let (k, v) = a.split_once('=').with_context(|| format!("--assess `{a}`: expected FIELD=TEXT"))?;
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            report_decision(&gov.approve(&id, &Actor(by.by), map)?);
        }
        ActionsCommand::Reject { id, reason, by } => {
            let a = gov.reject(&id, &Actor(by.by), &reason)?;
            println!("{}: {}", a.id, a.state);
        }
        ActionsCommand::Lift { id, reason, by } => {
            let a = gov.lift(&id, &Actor(by.by), &reason)?;
            println!("{}: {} (the scheduler of a running `mamori serve` removes it from the peers)", a.id, a.state);
        }
        ActionsCommand::Reply { id, answer, method } => {
            let reply = if answer == "agree" { SubscriberReply::Agree } else { SubscriberReply::Decline };
            report_decision(&gov.subscriber_reply(&id, reply, &method)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ── audit ──────────────────────────────────────────────────────────────────────────────────

fn audit_cmd(config: &Config, c: AuditCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    match c {
        AuditCommand::Verify { expect_tip, json } => {
            let tip = expect_tip
                .map(|h| {
                    ChainHash::from_hex(&h).with_context(|| format!("--expect-tip `{h}` is not a 64-digit hex hash"))
                })
                .transpose()?;
            let started = std::time::Instant::now();
            match store.verify_ledger(tip.as_ref()) {
                Ok(r) => {
                    if json {
                        println!("{}", serde_json::to_string(&json!({"ok": true, "report": r}))?);
                    } else {
                        println!(
                            "ledger ok: {} entries, {} checkpoints, verified in {:.2?}\ntip: entry {} hash {}\n(keep the tip hash outside this machine and pass it back with --expect-tip)",
                            r.entries,
                            r.checkpoints,
                            started.elapsed(),
                            r.tip_seq,
                            r.tip_hash
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::Chain(e)) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string(
                                &json!({"ok": false, "first_bad_entry": e.seq(), "error": e.to_string()})
                            )?
                        );
                    } else {
                        println!("LEDGER TAMPERED: {e}\nfirst bad entry: {}", e.seq());
                    }
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
        AuditCommand::Export { from, to, measure: m, out } => {
            let filter = LedgerFilter {
                action_id: None,
                before_seq: None,
                limit: None,
                since: from.as_deref().map(instant).transpose()?,
                until: to.as_deref().map(instant).transpose()?,
                measure: m.as_deref().map(measure).transpose()?,
            };
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(BufWriter::new(
                    std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let n = store.export_ledger(&filter, &mut |e| {
                serde_json::to_writer(&mut w, &e).map_err(|e| StoreError::Io(e.into()))?;
                w.write_all(b"\n")?;
                Ok(())
            })?;
            w.flush()?;
            if let Some(p) = out {
                eprintln!("{n} entries written to {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ── report ─────────────────────────────────────────────────────────────────────────────────

fn transparency(gov: &Governance, from: &str, to: &str, out: &Path) -> anyhow::Result<ExitCode> {
    let from = instant(from)?;
    let to = instant(to)?;
    if to <= from {
        bail!("--to must be after --from");
    }
    let actions = gov.store().actions(&ActionFilter { since: Some(from), until: Some(to), ..Default::default() })?;
    let report = mamori_reports::build(&actions, mamori_reports::Period { from, to }, gov.now());
    let files = mamori_reports::write_all(&report, out)?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

// ── serve ──────────────────────────────────────────────────────────────────────────────────

fn read_tokens(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading api_tokens_file {}", path.display()))?;
    let mut tokens = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((person, token)) = line.split_once(char::is_whitespace) else {
            bail!("{}:{}: expected `person token`", path.display(), i + 1);
        };
        let token = token.trim();
        if token.len() < 16 {
            bail!("{}:{}: the token of {person} is shorter than 16 characters", path.display(), i + 1);
        }
        tokens.insert(token.to_owned(), person.to_owned());
    }
    Ok(tokens)
}

fn serve(config: Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = args.listen.unwrap_or(config.server.listen);
    let tokens = match &config.server.api_tokens_file {
        Some(p) => read_tokens(p)?,
        None => BTreeMap::new(),
    };
    let gov = Arc::new(open(&config)?);
    tracing::info!(data_dir = %config.data_dir.display(), "store opened");
    let mut live = crate::live::Live::start(&config, gov.clone())?;
    let mut radius = crate::attribution::Listener::start(&config, gov.clone())?;
    let mut dns = crate::dns::Dns::start(&config, gov.clone(), radius.index())?;
    let mut flow = crate::flow::Flow::start(&config, gov.clone())?;
    let mut actuators = live.actuators();
    actuators.extend(dns.actuators());
    actuators.extend(flow.actuators());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let served = rt.block_on(async move {
        let listener = mamori_server::bind(listen).await?;
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            #[cfg(not(unix))]
            {
                let _ = ctrl_c.await;
            }
            tracing::info!("shutting down");
        };
        // Measure families register their actuators here as they arrive (issues #4–#7).
        mamori_server::serve(gov, actuators, listener, tokens, shutdown).await
    });
    live.stop();
    radius.stop();
    dns.stop();
    flow.stop();
    served?;
    Ok(ExitCode::SUCCESS)
}

// ── internal ───────────────────────────────────────────────────────────────────────────────

fn burst(gov: &Governance, count: u64, threads: u64) -> anyhow::Result<ExitCode> {
    let m = MeasureId::DdosBlockToProtectNetwork;
    if !gov.is_enabled(m)? {
        gov.enable_measure(m, &Actor("drill".into()))?;
    }
    let threads = threads.clamp(1, 64);
    let out = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let out = &out;
                s.spawn(move || -> anyhow::Result<()> {
                    let mut i = t;
                    while i < count {
                        let target = Target::Prefix(format!("198.51.{}.{}/32", (i / 256) % 256, i % 256));
                        let d = gov.propose(Proposal::new(m, target, Actor("drill".into()), json!({"n": i})))?;
                        let seq = d.authorization.as_ref().map(|a| a.ledger_seq()).unwrap_or_default();
                        let mut o = out.lock().map_err(|_| anyhow::anyhow!("stdout lock poisoned"))?;
                        writeln!(o, "ack {} {}", d.action.id, seq)?;
                        o.flush()?;
                        i += threads;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a burst thread panicked"))??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
