//! The full loop with real peers: `mamori serve` (this binary) with `[phone.kamailio]` pointing at
//! a real Kamailio running `examples/kamailio/kamailio.cfg`; sipp places a burst of expensive
//! international calls with a line's stolen credentials; mamori learns of them from evapi within
//! seconds, suspends the line through governance, and Kamailio refuses the next international
//! INVITE; an operator's `mamori actions lift` makes it succeed again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../kamailio/tests/support/mod.rs"]
mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

mod common;
use common::bin;

const LINE: &str = "0312340001";
const PASSWORD: &str = "line-1-secret";
/// +882 (International Networks), 450 yen/min in the default tariff.
const EXPENSIVE: &str = "01088213456789";
const DOMESTIC: &str = "0398765432";

fn mamori(cfg: &Path, args: &[&str]) -> Output {
    let o = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env_remove("MAMORI_CONFIG")
        .env_remove("MAMORI_DATA_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mamori {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn actions(cfg: &Path) -> Vec<serde_json::Value> {
    let o = mamori(cfg, &["actions", "list", "--json"]);
    serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
}

#[test]
fn serve_detects_a_burst_from_evapi_and_suspends_the_line_in_kamailio() {
    let Some(peers) = peers() else { return };
    let uas = Uas::start(&peers);
    let k = Kamailio::start(&peers, &[(LINE, PASSWORD)], uas.port);

    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let cfg = dir.path().join("mamori.toml");
    fs::write(
        &cfg,
        format!(
            r#"data_dir = "{data}"

[server]
listen = "127.0.0.1:{port}"

[log]
level = "info"

[phone]
interval = "1s"
surge_floor_jpy = 1000

[phone.kamailio]
evapi = "{evapi}"
jsonrpc_url = "{rpc}"
"#,
            data = dir.path().join("data").display(),
            evapi = k.evapi_addr(),
            rpc = k.rpc_url(),
        ),
    )
    .unwrap();

    // The operator announces and enables the measure; the subscriber has agreed beforehand to
    // suspension on fraud (so the outcome is the same by day and by night: without consent,
    // governance would ask first by day and suspend first at night).
    let m = "phone.suspend-line-on-surge";
    mamori(
        &cfg,
        &[
            "measures",
            "notice",
            m,
            "--url",
            "https://carrier.example/terms/ip-phone",
            "--terms-version",
            "2026-04",
            "--by",
            "sato",
        ],
    );
    mamori(&cfg, &["measures", "enable", m, "--by", "sato"]);
    mamori(
        &cfg,
        &["consent", "grant", "--subscriber", LINE, "--measure", m, "--method", "signed form", "--by", "sato"],
    );

    let log_path = dir.path().join("serve.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&cfg)
        .arg("serve")
        .env_remove("MAMORI_CONFIG")
        .env_remove("MAMORI_DATA_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut serve = Proc::spawn("mamori serve", &mut cmd);
    let serve_log = || fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(20), || http_get(port, "/healthz")
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))),
        "mamori serve did not come up:\n{}",
        serve_log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || serve_log().contains("connected to Kamailio evapi")),
        "mamori did not connect to evapi:\n{}",
        serve_log()
    );

    // Before: the line calls abroad normally.
    let subscriber = Sipp::new(&peers, &k, LINE, PASSWORD);
    subscriber.expect(EXPENSIVE, Expect::Answered);

    // The fraud: 10 concurrent calls to +882 from another address with the line's credentials,
    // held for a minute.
    let fraudster = Sipp::new(&peers, &k, LINE, PASSWORD).from("127.0.0.2");
    let started = Instant::now();
    let burst = fraudster.burst(EXPENSIVE, 10, 60_000);

    // mamori sees the calls start over evapi, detects the surge within seconds and suspends.
    let mut refused_after = None;
    while started.elapsed() < Duration::from_secs(40) {
        if subscriber.try_expect(EXPENSIVE, Expect::RefusedAfterAuth(LINE_SUSPENDED)).is_ok() {
            refused_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let refused_after = refused_after.unwrap_or_else(|| {
        panic!(
            "the line was not suspended within 40 s of the burst\n--- mamori ---\n{}\n--- kamailio ---\n{}",
            serve_log(),
            k.log()
        )
    });
    eprintln!("burst → next international INVITE refused after {refused_after:.1?}");
    drop(burst);

    let applied: Vec<_> = actions(&cfg)
        .into_iter()
        .filter(|a| a["measure"] == m && a["target"] == format!("line:{LINE}") && a["state"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["legal_basis"], "consent");
    let id = applied[0]["id"].as_str().unwrap().to_owned();

    // The evapi feed is visible in the metrics.
    let metrics = http_get(port, "/metrics").unwrap_or_default();
    assert!(metrics.contains("mamori_kamailio_evapi_events_total"), "{metrics}");

    // Domestic calls are unaffected.
    subscriber.expect(DOMESTIC, Expect::Answered);

    // The subscriber is reached and it was not them: the operator lifts (another process, the
    // CLI); the running server carries the lift to Kamailio.
    mamori(
        &cfg,
        &["actions", "lift", &id, "--reason", "subscriber reached: not their calls, password changed", "--by", "sato"],
    );
    let lifted = wait_until(Duration::from_secs(15), || subscriber.try_expect(EXPENSIVE, Expect::Answered).is_ok());
    assert!(lifted, "international calls not restored after the lift\n--- mamori ---\n{}", serve_log());

    // Clean stop, an intact ledger with the whole story, and no subscriber data in the log.
    serve.stop(Duration::from_secs(10));
    // The engine's learned levels were written at the stop, for the next start.
    let learned: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("data/phone-learned.json")).unwrap()).unwrap();
    assert!(
        learned["lines"].as_array().unwrap().iter().any(|l| l["line_id"] == LINE),
        "the suspended line's levels are not in the learned state: {learned}"
    );
    let o = mamori(&cfg, &["audit", "verify"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ledger ok"));
    let o = mamori(&cfg, &["audit", "export", "--measure", m]);
    let kinds: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].as_str().unwrap().to_owned())
        .collect();
    for k in ["finding", "proposed", "applied", "lifted"] {
        assert!(kinds.iter().any(|x| x == k), "no `{k}` entry in {kinds:?}");
    }
    let text = serve_log();
    for secret in [LINE, PASSWORD, "88213456789", "127.0.0.2"] {
        assert!(!text.contains(secret), "the server log contains subscriber data or a secret ({secret}):\n{text}");
    }
}

/// Kamailio restarts while mamori runs: its htables come back empty; mamori notices the evapi
/// reconnection and puts the suspension back.
#[test]
fn serve_reconciles_when_kamailio_restarts() {
    let Some(peers) = peers() else { return };
    let uas = Uas::start(&peers);
    let mut k = Kamailio::start(&peers, &[(LINE, PASSWORD)], uas.port);
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let cfg = dir.path().join("mamori.toml");
    fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[phone.kamailio]\nevapi = \"{}\"\njsonrpc_url = \"{}\"\n",
            dir.path().join("data").display(),
            k.evapi_addr(),
            k.rpc_url()
        ),
    )
    .unwrap();
    // The subscriber asks for their international calls to be suspended (T2), through the CLI.
    let m = "phone.suspend-on-request";
    mamori(&cfg, &["measures", "enable", m, "--by", "sato"]);
    let log_path = dir.path().join("serve.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&cfg)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let _serve = Proc::spawn("mamori serve", &mut cmd);
    let serve_log = || fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(20), || http_get(port, "/healthz")
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))),
        "mamori serve did not come up:\n{}",
        serve_log()
    );
    assert!(
        wait_until(Duration::from_secs(20), || serve_log().contains("connected to Kamailio evapi")),
        "mamori did not connect to evapi:\n{}",
        serve_log()
    );
    mamori(
        &cfg,
        &[
            "actions",
            "propose",
            "--measure",
            m,
            "--target",
            &format!("line:{LINE}"),
            "--subscriber",
            LINE,
            "--requested-by-subscriber",
            "phone",
            "--reason",
            "going abroad",
            "--by",
            "sato",
        ],
    );
    // Decided in another process: the server's sync carries it to Kamailio.
    let subscriber = Sipp::new(&peers, &k, LINE, PASSWORD);
    assert!(
        wait_until(Duration::from_secs(15), || subscriber
            .try_expect(EXPENSIVE, Expect::RefusedAfterAuth(LINE_SUSPENDED))
            .is_ok()),
        "the suspension decided through the CLI was not enforced\n--- mamori ---\n{}\n--- kamailio ---\n{}",
        serve_log(),
        k.log()
    );

    k.restart();
    let subscriber = Sipp::new(&peers, &k, LINE, PASSWORD);
    // mamori reconnects to evapi (backoff ≤ 5 s) and reconciles.
    assert!(
        wait_until(Duration::from_secs(20), || subscriber
            .try_expect(EXPENSIVE, Expect::RefusedAfterAuth(LINE_SUSPENDED))
            .is_ok()),
        "the suspension was not restored after Kamailio restarted\n--- mamori ---\n{}\n--- kamailio ---\n{}",
        serve_log(),
        k.log()
    );
    assert!(serve_log().matches("connected to Kamailio evapi").count() >= 2, "{}", serve_log());
}
