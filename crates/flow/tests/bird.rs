//! RTBH and FlowSpec through a real BGP speaker (GoBGP, Debian `gobgpd`) to a real router (BIRD,
//! Debian `bird2`): both run as the test's user on loopback, each with its config and socket in a
//! tempdir, and are killed on drop. The tests read BIRD's tables with `birdc`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use mamori_core::actuator::Actuator;
use mamori_core::catalog::MeasureId;
use mamori_core::clock::DataClock;
use mamori_core::governance::Governance;
use mamori_core::subject::{Actor, SubscriberId};
use mamori_flow::bgp::gobgp::BgpSpeaker;
use mamori_flow::bgp::{BgpActuator, FlowAction, FlowMatch};
use mamori_flow::detect::engine::{VictimReport, propose_victim_request};

fn which(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn peers() -> Option<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let found = (|| Some((which("bird")?, which("birdc")?, which("gobgpd")?, which("gobgp")?)))();
    if found.is_none() {
        assert!(std::env::var_os("MAMORI_REQUIRE_PEERS").is_none(), "bird2 and gobgpd are required");
        eprintln!("SKIPPED: bird2 or gobgpd is not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Lab {
    _dir: tempfile::TempDir,
    bird: Child,
    gobgpd: Child,
    birdc: PathBuf,
    sock: PathBuf,
    speaker: BgpSpeaker,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.bird.kill();
        let _ = self.gobgpd.kill();
        let _ = self.bird.wait();
        let _ = self.gobgpd.wait();
    }
}

impl Lab {
    fn start() -> Option<Lab> {
        let (bird, birdc, gobgpd, gobgp) = peers()?;
        let dir = tempfile::tempdir().unwrap();
        let (bird_port, gobgp_port, api_port) = (free_port(), free_port(), free_port());
        let bird_conf = dir.path().join("bird.conf");
        std::fs::write(
            &bird_conf,
            format!(
                "router id 10.255.0.2;\ntimeformat route iso long ms;\nprotocol device {{}}\nflow4 table flowtab;\n\
                 protocol bgp mamori {{\n  local 127.0.0.1 port {bird_port} as 65001;\n  \
                 neighbor 127.0.0.1 port {gobgp_port} as 65000;\n  passive on;\n  multihop;\n  \
                 ipv4 {{ import all; export none; gateway recursive; igp table master4; }};\n  \
                 flow4 {{ table flowtab; import all; export none; }};\n}}\n"
            ),
        )
        .unwrap();
        let gobgp_conf = dir.path().join("gobgp.toml");
        std::fs::write(
            &gobgp_conf,
            format!(
                "[global.config]\n  as = 65000\n  router-id = \"10.255.0.1\"\n  port = {gobgp_port}\n  \
                 local-address-list = [\"127.0.0.1\"]\n[[neighbors]]\n  [neighbors.config]\n    \
                 neighbor-address = \"127.0.0.1\"\n    peer-as = 65001\n  [neighbors.transport.config]\n    \
                 remote-port = {bird_port}\n    local-address = \"127.0.0.1\"\n  [neighbors.timers.config]\n    \
                 connect-retry = 1\n  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = 2\n  \
                 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n  \
                 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-flowspec\"\n"
            ),
        )
        .unwrap();
        let sock = dir.path().join("bird.ctl");
        let bird = Command::new(bird)
            .arg("-f")
            .arg("-c")
            .arg(&bird_conf)
            .arg("-s")
            .arg(&sock)
            .arg("-P")
            .arg(dir.path().join("bird.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gobgpd = Command::new(gobgpd)
            .arg("-f")
            .arg(&gobgp_conf)
            .arg("--api-hosts")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg("--pprof-disable")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lab = Lab {
            _dir: dir,
            bird,
            gobgpd,
            birdc,
            sock,
            speaker: BgpSpeaker { gobgp, api_port, ..BgpSpeaker::default() },
        };
        lab.wait_for(|| lab.birdc(&["show", "protocols", "mamori"]).contains("Established"), "BGP session");
        Some(lab)
    }

    fn birdc(&self, args: &[&str]) -> String {
        let out = Command::new(&self.birdc).arg("-s").arg(&self.sock).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn flows(&self) -> String {
        self.birdc(&["show", "route", "table", "flowtab", "all"])
    }

    fn unicast(&self) -> String {
        self.birdc(&["show", "route", "table", "master4", "all"])
    }

    /// BIRD's `[mamori <since>]` of the route whose line contains `needle` in the FlowSpec table:
    /// it changes whenever the route is withdrawn and announced again.
    fn flow_since(&self, needle: &str) -> String {
        let flows = self.flows();
        let line = flows.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} not in {flows}"));
        let start = line.find("[mamori ").unwrap_or_else(|| panic!("no since in {line}"));
        line[start..].split(']').next().unwrap().to_owned()
    }

    /// The (updates, withdraws) BIRD received on its FlowSpec channel from GoBGP.
    fn flow_changes(&self) -> (u64, u64) {
        let out = self.birdc(&["show", "protocols", "all", "mamori"]);
        let chan = out.split("Channel ").find(|c| c.starts_with("flow4")).unwrap_or_else(|| panic!("{out}"));
        let received = |what: &str| -> u64 {
            let line = chan.lines().find(|l| l.trim_start().starts_with(what)).unwrap_or_else(|| panic!("{chan}"));
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        (received("Import updates:"), received("Import withdraws:"))
    }

    fn wait_for(&self, mut f: impl FnMut() -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {}\n{}", self.flows(), self.unicast());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn governance(dir: &Path, clock: Arc<DataClock>) -> (Arc<Governance>, Arc<dyn mamori_core::store::Store>) {
    let store: Arc<dyn mamori_core::store::Store> = Arc::new(
        mamori_store::SqliteStore::open(&dir.join("m.sqlite"), mamori_store::StoreOptions::default()).unwrap(),
    );
    let g = Governance::new(store.clone(), clock, Arc::new(mamori_core::config::Config::default())).unwrap();
    g.enable_measure(MeasureId::DdosBlockOnVictimRequest, &Actor("operator:test".into())).unwrap();
    (Arc::new(g), store)
}

fn report(dst: &str, blackhole: bool, hours: i64) -> VictimReport {
    VictimReport {
        subscriber: SubscriberId("S-2001".into()),
        via: "phone".into(),
        operator: Actor("operator:noc".into()),
        attack: FlowMatch {
            dst: dst.parse().unwrap(),
            src: None,
            protocol: Some(17),
            src_ports: vec![53, 123],
            dst_ports: vec![],
            tcp_flags: None,
            fragment: false,
            action: FlowAction::Discard,
        },
        blackhole,
        duration: Some(SignedDuration::from_hours(hours)),
    }
}

#[test]
fn flowspec_and_rtbh_announced_lifted_expired_and_reconciled() {
    let Some(lab) = Lab::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(DataClock::new(Timestamp::from_second(1_795_000_000).unwrap()));
    let (g, store) = governance(dir.path(), clock.clone());
    let act = BgpActuator::new(lab.speaker.clone(), store);

    // FlowSpec for a reflection attack: only UDP from ports 53 and 123 toward the victim.
    let (d, err) = propose_victim_request(&g, &act, report("203.0.113.5/32", false, 1)).unwrap();
    assert!(d.authorization.is_some(), "{:?}", d.action);
    assert!(err.is_none(), "{err:?}");
    lab.wait_for(|| lab.flows().contains("dst 203.0.113.5/32; proto 17; sport 53,123;"), "flowspec route");
    assert!(lab.flows().contains("0x80060000"), "traffic-rate 0 (discard) extended community");

    // RTBH for another victim, at the victim's explicit request.
    let (rtbh, err) = propose_victim_request(&g, &act, report("203.0.113.66/32", true, 3)).unwrap();
    assert!(err.is_none(), "{err:?}");
    lab.wait_for(|| lab.unicast().contains("203.0.113.66/32"), "rtbh route");
    assert!(lab.unicast().contains("(65535,666)"));

    // Lift the RTBH: withdrawn.
    let lifted = g.lift(&rtbh.action.id, &Actor("operator:noc".into()), "victim withdrew").unwrap();
    act.remove(&lifted).unwrap();
    lab.wait_for(|| !lab.unicast().contains("203.0.113.66/32"), "rtbh withdrawal");
    assert!(lab.flows().contains("203.0.113.5/32"), "the other action stays");

    // Expiry: the scheduler's tick after the duration withdraws the FlowSpec rule.
    clock.advance(SignedDuration::from_mins(61));
    let t = g.tick().unwrap();
    assert_eq!(t.expired.len(), 1);
    for a in &t.expired {
        act.remove(a).unwrap();
    }
    lab.wait_for(|| !lab.flows().contains("203.0.113.5/32"), "flowspec withdrawal on expiry");

    // Reconcile after a restart of mamori's side: one rule still in force, one that expired while
    // mamori was down (the store says so, the speaker still has it), and a route mamori didn't make.
    let (d, err) = propose_victim_request(&g, &act, report("203.0.113.7/32", false, 2)).unwrap();
    assert!(d.authorization.is_some() && err.is_none(), "{err:?}");
    let (d, err) = propose_victim_request(&g, &act, report("203.0.113.8/32", false, 1)).unwrap();
    assert!(d.authorization.is_some() && err.is_none(), "{err:?}");
    let stray = Command::new(&lab.speaker.gobgp)
        .args(["-u", "127.0.0.1", "-p", &lab.speaker.api_port.to_string()])
        .args([
            "global",
            "rib",
            "add",
            "-a",
            "ipv4-flowspec",
            "match",
            "destination",
            "192.0.2.99/32",
            "then",
            "discard",
        ])
        .status()
        .unwrap();
    assert!(stray.success());
    lab.wait_for(
        || ["192.0.2.99/32", "203.0.113.7/32", "203.0.113.8/32"].iter().all(|p| lab.flows().contains(p)),
        "stray, kept and expiring",
    );
    let kept_since = lab.flow_since("203.0.113.7/32");
    let (updates, withdraws) = lab.flow_changes();
    drop(act);
    drop(g);
    // BIRD's route times have millisecond precision: a withdrawal and re-announcement would move it.
    std::thread::sleep(Duration::from_millis(20));
    clock.advance(SignedDuration::from_mins(61));
    let store: Arc<dyn mamori_core::store::Store> = Arc::new(
        mamori_store::SqliteStore::open(&dir.path().join("m.sqlite"), mamori_store::StoreOptions::default()).unwrap(),
    );
    let g = Governance::new(store.clone(), clock.clone(), Arc::new(mamori_core::config::Config::default())).unwrap();
    let act = BgpActuator::new(lab.speaker.clone(), store);
    assert_eq!(g.tick().unwrap().expired.len(), 1, "203.0.113.8 expired while mamori was down");
    let in_force = g.reauthorize_applied().unwrap();
    let auths: Vec<_> = in_force.iter().map(|(_, a)| a).collect();
    assert_eq!(auths.len(), 1);
    let r = act.reconcile_report(&auths).unwrap();
    assert!(r.added.is_empty() && r.updated.is_empty(), "{r:?}");
    assert_eq!(r.unchanged, 1, "{r:?}");
    assert_eq!(r.foreign, 1, "the stray route is not mamori's: {r:?}");
    assert_eq!(r.removed.len(), 1, "{r:?}");
    assert!(r.removed[0].route.contains("destination 203.0.113.8/32"), "{r:?}");
    lab.wait_for(|| !lab.flows().contains("203.0.113.8/32"), "the expired rule withdrawn");
    // Give any (wrong) re-announcement time to arrive before looking.
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.flows().contains("192.0.2.99/32"), "a route mamori did not make is left alone");
    assert_eq!(lab.flow_since("203.0.113.7/32"), kept_since, "the kept rule was never withdrawn nor re-announced");
    assert_eq!(lab.flow_changes(), (updates, withdraws + 1), "BIRD saw exactly one withdrawal and no update");

    // A second reconciliation finds everything in line and touches nothing; what the server's
    // `reconciled` ledger entry gets as `changes` says so.
    let j = act.reconcile_summary(&auths).unwrap().unwrap();
    assert_eq!(j["unchanged"], 1, "{j}");
    assert_eq!(j["foreign"], 1, "{j}");
    for k in ["added", "updated", "removed"] {
        assert_eq!(j[k], serde_json::json!([]), "{j}");
    }

    // The speaker restarts empty (here: its RIB is cleared): the rule in force is announced again.
    let cleared = Command::new(&lab.speaker.gobgp)
        .args(["-u", "127.0.0.1", "-p", &lab.speaker.api_port.to_string()])
        .args(["global", "rib", "-a", "ipv4-flowspec", "del", "all"])
        .status()
        .unwrap();
    assert!(cleared.success());
    lab.wait_for(|| !lab.flows().contains("203.0.113.7/32"), "speaker's RIB cleared");
    let r = act.reconcile_report(&auths).unwrap();
    assert_eq!(r.added.len(), 1, "{r:?}");
    assert_eq!(r.added[0].actions, vec![auths[0].action_id().to_owned()]);
    lab.wait_for(|| lab.flows().contains("203.0.113.7/32"), "re-announced after the speaker's restart");
}

#[test]
fn a_bot_inside_a_customer_prefix_is_filtered_on_its_source_and_released() {
    use mamori_flow::collector::FlowRecord;
    use mamori_flow::detect::engine::FlowEngine;
    use mamori_flow::detect::{DetectConfig, Detector};

    let Some(lab) = Lab::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(DataClock::new(Timestamp::from_second(1_795_000_000).unwrap()));
    let (g, store) = governance(dir.path(), clock.clone());
    g.enable_measure(MeasureId::DdosBlockUnintendedSource, &Actor("operator:test".into())).unwrap();
    let act = Arc::new(BgpActuator::new(lab.speaker.clone(), store));
    let detect = DetectConfig {
        customer_prefixes: vec!["203.0.113.0/24".parse().unwrap()],
        source_pps: 10_000.0,
        ..DetectConfig::default()
    };
    let mut e = FlowEngine::new(g.clone(), clock, Detector::new(detect), act).unwrap();
    e.cooldown_windows = 2;
    // A customer host floods one outside victim's UDP port 80.
    let flood: Vec<_> = (0..50u16)
        .map(|i| FlowRecord {
            exporter: "192.0.2.1:2055".parse().unwrap(),
            export_secs: 0,
            src: "203.0.113.77".parse().unwrap(),
            dst: "198.18.0.10".parse().unwrap(),
            protocol: 17,
            src_port: 2000 + i,
            dst_port: 80,
            tcp_flags: 0,
            input_if: 1,
            packets: 1000,
            bytes: 1000 * 512,
        })
        .collect();
    e.ingest(&flood);
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.decisions.len(), 1, "{r:?}");
    assert!(r.actuator_errors.is_empty(), "{r:?}");
    lab.wait_for(
        || lab.flows().contains("dst 198.18.0.10/32; src 203.0.113.77/32; proto 17; dport 80;"),
        "flowspec route on the bot's source",
    );
    // The bot goes quiet: lifted after the cool-down and withdrawn.
    assert!(e.close_window(1.0).unwrap().lifted.is_empty());
    let r = e.close_window(1.0).unwrap();
    assert_eq!(r.lifted.len(), 1, "{r:?}");
    assert!(r.actuator_errors.is_empty(), "{r:?}");
    lab.wait_for(|| !lab.flows().contains("203.0.113.77/32"), "withdrawal of the bot's rule");
}
