//! The real binary, run as an operator would: bad input, crash safety, the service.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::free_tcp_port;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mamori"))
}

fn mamori(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("MAMORI_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn broken_config_is_a_clear_error_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mamori.toml");
    std::fs::write(&cfg, "data_dir = \"x\"\n[calendar]\nbusiness_start = \"09:00\"\nbusiness_ends = \"18:00\"\n")
        .unwrap();
    let o = mamori(dir.path(), &["config", "check", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("line 4"), "{t}");
    assert!(t.contains("business_ends"), "{t}");
    // any command refuses to run on it, and creates nothing
    let data = dir.path().join("data");
    let o = Command::new(bin())
        .args(["--config", cfg.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "actions", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!data.exists());
    // the default configuration checks clean
    let def = mamori(dir.path(), &["config", "default"]);
    std::fs::write(&cfg, &def.stdout).unwrap();
    let o = mamori(dir.path(), &["config", "check", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn corrupt_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mamori.sqlite");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let o = mamori(dir.path(), &["actions", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("damaged or not a mamori database"), "{}", text(&o));
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "the file must not be modified");
    assert!(!dir.path().join("mamori.sqlite-wal").exists());
}

#[test]
fn unknown_measure_id_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = mamori(dir.path(), &["measures", "enable", "phone.suspend-everyone", "--by", "sato"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown measure id `phone.suspend-everyone`"), "{}", text(&o));
    let o = mamori(dir.path(), &["catalog", "--measure", "dns.nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn catalog_lists_every_measure_and_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let o = mamori(dir.path(), &["catalog", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 27);
    let cnc = rows.iter().find(|r| r["id"] == "cnc.detect-servers").unwrap();
    assert_eq!(cnc["provision"]["status"], "refused");
    let o = mamori(dir.path(), &["catalog"]);
    assert!(text(&o).contains("cnc.detect-servers                 REFUSED"), "{}", text(&o));
    let o = mamori(dir.path(), &["measures", "enable", "cnc.detect-servers", "--by", "sato"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not provided"), "{}", text(&o));
}

#[test]
fn worked_example_decision_and_ledger_via_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = mamori(d, &["measures", "enable", "phone.suspend-line-on-surge", "--by", "sato"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("must announce it first"), "{}", text(&o));
    assert!(
        mamori(
            d,
            &[
                "measures",
                "notice",
                "phone.suspend-line-on-surge",
                "--url",
                "https://carrier.example/terms",
                "--terms-version",
                "2026-04",
                "--by",
                "sato"
            ]
        )
        .status
        .success()
    );
    assert!(mamori(d, &["measures", "enable", "phone.suspend-line-on-surge", "--by", "sato"]).status.success());
    assert!(mamori(d, &["measures", "enable", "phone.suspend-on-request", "--by", "sato"]).status.success());
    let o = mamori(
        d,
        &[
            "actions",
            "propose",
            "--measure",
            "phone.suspend-on-request",
            "--target",
            "line:0312345678",
            "--subscriber",
            "S-1",
            "--requested-by-subscriber",
            "phone",
            "--reason",
            "subscriber called the desk",
            "--by",
            "sato",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("authorized under consent"), "{}", text(&o));
    let o = mamori(d, &["audit", "verify", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tip = v["report"]["tip_hash"].as_str().unwrap().to_owned();
    // export is JSON lines, filterable by measure
    let out = d.join("export.jsonl");
    assert!(
        mamori(d, &["audit", "export", "--measure", "phone.suspend-on-request", "--out", out.to_str().unwrap()])
            .status
            .success()
    );
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["measure-enabled", "consent-granted", "proposed", "applied", "notice-queued"]);
    // the recorded tip catches a deleted newest entry
    let conn = rusqlite::Connection::open(d.join("mamori.sqlite")).unwrap();
    conn.execute("DELETE FROM ledger WHERE seq = (SELECT max(seq) FROM ledger)", []).unwrap();
    drop(conn);
    let o = mamori(d, &["audit", "verify", "--expect-tip", &tip]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("LEDGER TAMPERED"), "{}", text(&o));
}

#[test]
fn tampered_entry_makes_verify_fail_and_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for m in ["ddos.block-to-protect-network", "net.drop-malformed", "net.drop-spoofed-source"] {
        assert!(mamori(d, &["measures", "enable", m, "--by", "sato"]).status.success());
    }
    let conn = rusqlite::Connection::open(d.join("mamori.sqlite")).unwrap();
    conn.execute("UPDATE ledger SET actor = 'satoh' WHERE seq = 2", []).unwrap();
    drop(conn);
    let o = mamori(d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("ledger entry 2: content does not match its hash"), "{}", text(&o));
}

/// kill -9 in the middle of a burst of writes: every acknowledged action and ledger entry is
/// there after a restart, and the chain verifies.
#[test]
fn sigkill_during_a_burst_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(d)
        .args(["internal", "burst", "--count", "200000", "--threads", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut acked = Vec::new();
    let mut line = String::new();
    while acked.len() < 600 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() == 3 && parts[0] == "ack" {
            acked.push((parts[1].to_owned(), parts[2].parse::<u64>().unwrap()));
        }
    }
    // SIGKILL: no destructor, no flush
    child.kill().unwrap();
    // collect what was acknowledged in the pipe before the kill landed
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    for l in rest.lines() {
        let parts: Vec<&str> = l.split_whitespace().collect();
        if parts.len() == 3 && parts[0] == "ack" {
            acked.push((parts[1].to_owned(), parts[2].parse().unwrap()));
        }
    }
    let _ = child.wait();
    assert!(acked.len() >= 600, "burst acknowledged only {}", acked.len());

    let o = mamori(d, &["audit", "verify", "--json"]);
    assert!(o.status.success(), "chain must verify after kill -9: {}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tip = v["report"]["tip_seq"].as_u64().unwrap();
    let conn = rusqlite::Connection::open(d.join("mamori.sqlite")).unwrap();
    for (id, seq) in &acked {
        let state: String = conn
            .query_row("SELECT state FROM actions WHERE id = ?1", [id], |r| r.get(0))
            .unwrap_or_else(|e| panic!("acknowledged action {id} lost: {e}"));
        assert_eq!(state, "applied");
        assert!(*seq <= tip, "acknowledged ledger entry {seq} beyond tip {tip}");
        let kind: String =
            conn.query_row("SELECT kind FROM ledger WHERE seq = ?1", [*seq as i64], |r| r.get(0)).unwrap();
        assert_eq!(kind, "applied");
    }
}

const TOKEN: &str = "s3cr3t-token-for-suzuki-0001";

fn http(port: u16, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_exposes_console_api_metrics_and_expires_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_tcp_port();
    let tokens = d.join("tokens");
    std::fs::write(&tokens, "# person token\nsuzuki s3cr3t-token-for-suzuki-0001\n").unwrap();
    let cfg = d.join("mamori.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\napi_tokens_file = \"{}\"\n[scheduler]\ntick = \"200ms\"\n",
            tokens.display()
        ),
    )
    .unwrap();
    assert!(
        mamori(
            d,
            &["--config", cfg.to_str().unwrap(), "measures", "enable", "ddos.block-to-protect-network", "--by", "sato"]
        )
        .status
        .success()
    );
    let child = Command::new(bin())
        .args(["--config", cfg.to_str().unwrap(), "--data-dir", d.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(port, "GET", "/healthz", None, None).0, 200);
    // The telephone family's public pages need no token and carry no subscriber data.
    let (st, page) = http(port, "GET", "/public/phone/advice?lang=en", None, None);
    assert_eq!(st, 200);
    assert!(page.contains("passwords"), "{page}");
    let (st, page) = http(port, "GET", "/public/phone/fraud-destinations.json", None, None);
    assert_eq!(st, 200);
    assert!(page.contains("\"min_published_lines\":3"), "{page}");
    // The console asks for a login; the governance API answers only people with a token or session.
    let (st, _) = http(port, "GET", "/", None, None);
    assert_eq!(st, 303);
    assert_eq!(http(port, "GET", "/api/actions", None, None).0, 401);
    let (st, page) = http(port, "GET", "/api/catalog", None, Some(TOKEN));
    assert_eq!(st, 200);
    assert!(page.contains("cnc.detect-servers"));

    // an operator proposes a short block through the CLI while the service runs
    let o = mamori(
        d,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "actions",
            "propose",
            "--measure",
            "ddos.block-to-protect-network",
            "--target",
            "prefix:203.0.113.0/24",
            "--duration",
            "2s",
            "--reason",
            "NTP reflection 40 Gbps",
            "--by",
            "sato",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let (st, body) = http(port, "GET", "/api/actions?state=applied", None, Some(TOKEN));
    assert_eq!(st, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, metrics) = http(port, "GET", "/metrics", None, None);
    assert!(metrics.contains("mamori_actions_in_force{measure=\"ddos.block-to-protect-network\"} 1"), "{metrics}");
    assert!(metrics.contains("mamori_ledger_entries"), "{metrics}");

    // the scheduler expires it on time, with no one touching it
    let start = Instant::now();
    loop {
        let (_, body) = http(port, "GET", "/api/actions?state=expired", None, Some(TOKEN));
        if serde_json::from_str::<serde_json::Value>(&body).unwrap().as_array().unwrap().len() == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not expired by the scheduler");
        std::thread::sleep(Duration::from_millis(200));
    }

    // mutations need a token; with one, they are recorded under the person's name
    let o = mamori(
        d,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "actions",
            "propose",
            "--measure",
            "ddos.block-to-protect-network",
            "--target",
            "prefix:198.51.100.0/24",
            "--reason",
            "SYN flood",
            "--by",
            "sato",
        ],
    );
    assert!(o.status.success());
    let (_, body) = http(port, "GET", "/api/actions?state=applied", None, Some(TOKEN));
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()[0]["id"].as_str().unwrap().to_owned();
    let (st, _) = http(port, "POST", &format!("/api/actions/{id}/lift"), Some("{\"reason\":\"attack over\"}"), None);
    assert_eq!(st, 401);
    let (st, _) = http(
        port,
        "POST",
        &format!("/api/actions/{id}/lift"),
        Some("{\"reason\":\"attack over\"}"),
        Some("wrong-token-wrong-token"),
    );
    assert_eq!(st, 401);
    let (st, body) = http(
        port,
        "POST",
        &format!("/api/actions/{id}/lift"),
        Some("{\"reason\":\"attack over\"}"),
        Some("s3cr3t-token-for-suzuki-0001"),
    );
    assert_eq!(st, 200, "{body}");
    let (st, _) = http(
        port,
        "POST",
        &format!("/api/actions/{id}/lift"),
        Some("{\"reason\":\"again\"}"),
        Some("s3cr3t-token-for-suzuki-0001"),
    );
    assert_eq!(st, 409);
    let (st, body) = http(port, "GET", "/api/ledger/verify", None, Some(TOKEN));
    assert_eq!(st, 200, "{body}");

    // secrets never reach the logs
    let _ = server.0.kill();
    let mut logs = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(!logs.contains("s3cr3t"), "token leaked into logs");
    assert!(!logs.contains("203.0.113.0"), "target leaked into logs");
}
